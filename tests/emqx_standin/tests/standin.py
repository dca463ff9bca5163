"""Helpers to run stand-in nodes as local processes on loopback addresses (test equipment)."""

import base64
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
STANDIN_DIR = os.path.dirname(HERE)          # tests/emqx_standin
PYTHON = sys.executable

# a /16 of the loopback range per test run, so parallel runs (or the broker's own tests on
# 127.0.0.1) do not collide
_NET = 60 + os.getpid() % 150
_hosts = ("127.%d.%d.%d" % (_NET, a, b) for a, b in itertools.product(range(1, 250), range(2, 250)))


# apps/emqx_auth/etc/acl.conf at v5.8.9 (rules only)
DEFAULT_ACL_CONF = """{allow, {username, {re, "^dashboard$"}}, subscribe, ["$SYS/#"]}.

{allow, {ipaddr, "127.0.0.1"}, all, ["$SYS/#", "#"]}.

{deny, all, subscribe, ["$SYS/#", {eq, "#"}, {eq, "+/#"}]}.

{allow, all}.
"""


def next_host():
    return next(_hosts)


def env_for(node_dir, code_dir=None):
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("EMQX_"):
            del env[k]
    env["EMQX_ETC_DIR"] = os.path.join(node_dir, "etc")
    env["EMQX_LOG_DIR"] = os.path.join(node_dir, "log")
    code = code_dir or STANDIN_DIR
    env["PYTHONPATH"] = code + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["EMQX_WAIT_FOR_START"] = "30"
    return env


def make_certs(dest):
    """CA, server (CN=Server, SAN 127.0.0.1/localhost), client (CN=device-42) and node (both
    purposes, for rpc.protocol = ssl) certificates."""
    os.makedirs(dest, exist_ok=True)
    ext = os.path.join(dest, "ext.cnf")
    with open(ext, "w") as fh:
        fh.write("[server]\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
                 "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                 "[client]\nbasicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"
                 "[node]\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n")

    def run(*args):
        subprocess.run(["openssl"] + list(args), cwd=dest, check=True, capture_output=True)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=TestCA",
        "-keyout", "ca.key", "-out", "cacert.pem")
    for name, cn, sect in (("", "Server", "server"), ("client-", "device-42", "client"),
                           ("node-", "node", "node")):
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=%s" % cn, "-keyout", name + "key.pem",
            "-out", name + "req.csr")
        run("x509", "-req", "-in", name + "req.csr", "-CA", "cacert.pem", "-CAkey", "ca.key", "-CAserial",
            "ca.srl", "-CAcreateserial", "-days", "30", "-extfile", "ext.cnf", "-extensions", sect,
            "-out", name + "cert.pem")
    return dest


class StandinNode:
    def __init__(self, root, host, name=None, cookie="testcookie", extra="", certs=None, discovery="manual",
                 seeds=(), conf=None, api_keys=("key1:secret1",), code_dir=None):
        self.host = host
        self.code_dir = code_dir
        self.name = name or "emqx@%s" % host
        self.cookie = cookie
        self.dir = os.path.join(root, self.name.replace("@", "_"))
        self.etc = os.path.join(self.dir, "etc")
        self.data = os.path.join(self.dir, "data")
        self.logdir = os.path.join(self.dir, "log")
        for d in (self.etc, self.data, self.logdir):
            os.makedirs(d, exist_ok=True)
        if certs:
            shutil.copytree(certs, os.path.join(self.etc, "certs"), dirs_exist_ok=True)
        # the package ships etc/acl.conf (EMQX's default), the file the default authorization source reads
        with open(os.path.join(self.etc, "acl.conf"), "w") as fh:
            fh.write(DEFAULT_ACL_CONF)
        self.keyfile = os.path.join(self.etc, "api_keys")
        with open(self.keyfile, "w") as fh:
            fh.write("".join(k + "\n" for k in api_keys))
        self.api_key = api_keys[0].split(":")[:2] if api_keys else None
        self.proc = None
        if conf is None:
            seeds_s = ", ".join(seeds)
            conf = """
node {
  name = "%(name)s"
  cookie = "%(cookie)s"
  data_dir = "%(data)s"
}
cluster {
  name = emqxcl
  discovery_strategy = %(discovery)s
  static.seeds = [%(seeds)s]
}
listeners.tcp.default.bind = "%(host)s:1883"
listeners.ssl.default = marked_for_deletion
listeners.ws.default.bind = "%(host)s:8083"
listeners.wss.default = marked_for_deletion
dashboard.listeners.http.bind = "%(host)s:18083"
api_key.bootstrap_file = "%(keyfile)s"
log.file.enable = true
log.file.level = info
""" % dict(name=self.name, cookie=cookie, data=self.data, discovery=discovery, seeds=seeds_s,
                host=host, keyfile=self.keyfile)
        self.write_conf(conf + extra)

    def write_conf(self, text):
        with open(os.path.join(self.etc, "emqx.conf"), "w") as fh:
            fh.write(text)

    @property
    def env(self):
        return env_for(self.dir, self.code_dir)

    # ---- processes
    def cli(self, *args, timeout=60, env=None):
        e = self.env
        if env:
            e.update(env)
        p = subprocess.run([PYTHON, "-m", "emqx_standin"] + list(args), env=e, capture_output=True,
                           text=True, timeout=timeout, cwd=self.dir)
        return p.returncode, p.stdout, p.stderr

    def ctl(self, *args, timeout=60):
        return self.cli("ctl", *args, timeout=timeout)

    def start(self, wait=True, env=None):
        """Run `emqx foreground` as a child process (so the test owns it)."""
        e = self.env
        if env:
            e.update(env)
        out = open(os.path.join(self.logdir, "console.log"), "ab")
        self.proc = subprocess.Popen([PYTHON, "-m", "emqx_standin", "foreground"], env=e, stdout=out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.dir)
        out.close()
        if wait:
            self.wait_up()
        return self

    def wait_up(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError("node %s exited with %s:\n%s"
                                     % (self.name, self.proc.returncode, self.console()))
            try:
                with urllib.request.urlopen("http://%s:18083/status" % self.host, timeout=1) as r:
                    if r.status == 200 and self.cli("ping")[0] == 0:
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.1)
        raise AssertionError("node %s did not come up:\n%s" % (self.name, self.console()))

    def stop(self, timeout=15):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def console(self):
        try:
            with open(os.path.join(self.logdir, "console.log"), errors="replace") as fh:
                return fh.read()[-4000:]
        except OSError:
            return ""

    def logtext(self):
        """The node's log: emqx.log (halt log, or what a refused boot printed) and the wrap log emqx.log.1 .. .N,
        oldest file first."""
        names = [n for n in os.listdir(self.logdir) if re.match(r"^emqx\.log(\.[0-9]+)?$", n)] if os.path.isdir(self.logdir) else []
        paths = sorted((os.path.join(self.logdir, n) for n in names), key=os.path.getmtime)
        text = ""
        for path in paths:
            try:
                with open(path, errors="replace") as fh:
                    text += fh.read()
            except OSError:
                pass
        return text

    # ---- REST
    def api(self, method, path, body=None, auth="key", headers=None, timeout=20):
        url = "http://%s:18083%s" % (self.host, path)
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            req.add_header("content-type", "application/json")
        if auth == "key" and self.api_key:
            tok = base64.b64encode(("%s:%s" % tuple(self.api_key)).encode()).decode()
            req.add_header("authorization", "Basic " + tok)
        elif isinstance(auth, tuple):
            tok = base64.b64encode(("%s:%s" % auth).encode()).decode()
            req.add_header("authorization", "Basic " + tok)
        elif isinstance(auth, str) and auth.startswith("Bearer "):
            req.add_header("authorization", auth)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                raw = r.read()
                return r.status, dict((k.lower(), v) for k, v in r.getheaders()), raw
        except urllib.error.HTTPError as e:
            return e.code, dict((k.lower(), v) for k, v in e.headers.items()), e.read()

    def api_json(self, method, path, body=None, auth="key"):
        status, _, raw = self.api(method, path, body, auth)
        return status, (json.loads(raw) if raw else None)

    def cluster_status(self):
        rc, out, _ = self.ctl("cluster", "status", "--json")
        assert rc == 0, out
        return json.loads(out)


def wait_for(pred, timeout=15.0, interval=0.2, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


def new_root():
    return tempfile.mkdtemp(prefix="emqx-standin-test-")
