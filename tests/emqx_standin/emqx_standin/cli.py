"""`emqx` command line: start | stop | restart | ping | pid | foreground | console | ctl ... | version.

Run as `python3 -m emqx_standin <command>`; the packaged /usr/bin/emqx wrapper switches to the emqx
user first (as EMQX's bin/emqx does). Directories come from the environment:
  EMQX_ETC_DIR (default /etc/emqx), EMQX_LOG_DIR (default /var/log/emqx),
  node.data_dir from the config (or EMQX_NODE__DATA_DIR).
Commands other than start/foreground reach the running node through its dist port, with the node
name and cookie the node booted with (data_dir/configs/vm.<time>.args), like EMQX's nodetool.
"""

import asyncio
import glob
import os
import subprocess
import sys
import time

from . import VERSION, erlfmt, schema

USAGE = ("Usage: emqx {start|foreground|stop|pid|ping|console|restart|ctl|version} <help>\n")


def _etc_dir():
    return os.environ.get("EMQX_ETC_DIR") or "/etc/emqx"


def _setup_env():
    os.environ.setdefault("EMQX_ETC_DIR", "/etc/emqx")
    os.environ.setdefault("EMQX_LOG_DIR", "/var/log/emqx")


def _log_config_error(err):
    """Print a refused config the way the operator will look for it: stderr and emqx.log."""
    text = err.describe()
    lines = ["ERROR: failed_to_check_config", text]
    if err.reason != "syntax_error":
        lines.append("ERROR: bad config key: %s (%s)" % (err.key_path(), err.reason))
    for line in lines:
        sys.stderr.write(line + "\n")
    log_dir = os.environ.get("EMQX_LOG_DIR", "/var/log/emqx")
    try:
        os.makedirs(log_dir, exist_ok=True)
        from .node import now_iso
        with open(os.path.join(log_dir, "emqx.log"), "a", encoding="utf-8") as fh:
            fh.write("%s [error] msg: failed_to_load_config, path: %s, %s\n"
                     % (now_iso(), err.key_path() or err.filename, text))
    except OSError:
        pass


def load_boot_config():
    try:
        return schema.load_config(_etc_dir())
    except schema.ConfigError as e:
        _log_config_error(e)
        return None


def target_node():
    """(name, cookie) of the node this CLI talks to."""
    name = os.environ.get("EMQX_NODE__NAME")
    cookie = os.environ.get("EMQX_NODE__COOKIE")
    data_dir = os.environ.get("EMQX_NODE__DATA_DIR")
    raw_node = {}
    raw = {}
    try:
        raw = schema.load_raw(_etc_dir())
        if isinstance(raw.get("node"), dict):
            raw_node = raw["node"]
    except schema.ConfigError:
        pass
    if not data_dir:
        data_dir = schema.interpolate_env(str(raw_node.get("data_dir") or os.environ.get("RUNNER_DATA_DIR")
                                              or "data"))
    vm_name = vm_cookie = None
    files = sorted(glob.glob(os.path.join(data_dir, "configs", "vm.*.args")))
    if files:
        try:
            with open(files[-1], encoding="utf-8") as fh:
                for line in fh:
                    parts = line.split()
                    if len(parts) == 2 and parts[0] in ("-name", "-sname"):
                        vm_name = parts[1]
                    elif len(parts) == 2 and parts[0] == "-setcookie":
                        vm_cookie = parts[1]
        except OSError:
            pass
    name = name or vm_name or str(raw_node.get("name", "emqx@127.0.0.1"))
    cookie = cookie or vm_cookie or str(raw_node.get("cookie", "emqxsecretcookie"))
    _cli_dist_tls(data_dir, raw)
    return name, cookie


def _cli_dist_tls(data_dir, raw):
    """bin/emqx for a non-boot command: the running node's `-ekka_proto_dist` and `-ssl_dist_optfile` (from its
    command line in `ps -ef`; here the file the node wrote at boot), so nodetool connects over TLS with the
    node's own options file. No such record: the config's cluster.proto_dist and the boot-time path
    (EMQX_SSL_DIST_OPTFILE or $EMQX_ETC_DIR/ssl_dist.conf)."""
    from . import ssldist
    from .cluster import set_dist_tls
    proto = optfile = None
    try:
        with open(os.path.join(data_dir, "configs", "standin.cmdline"), encoding="utf-8") as fh:
            parts = fh.read().split()
        for i, p in enumerate(parts[:-1]):
            if p == "-ekka_proto_dist":
                proto = parts[i + 1]
            elif p == "-ssl_dist_optfile":
                optfile = parts[i + 1]
    except OSError:
        pass
    if proto is None:
        proto = os.environ.get("EMQX_CLUSTER__PROTO_DIST")
        if not proto:
            cl = raw.get("cluster") if isinstance(raw, dict) else None
            proto = str(cl.get("proto_dist", "inet_tcp")) if isinstance(cl, dict) else "inet_tcp"
    if proto not in ssldist.DIST_TLS_PROTOS:
        set_dist_tls(None)
        return
    optfile = optfile or ssldist.optfile_for_boot(_etc_dir())
    try:
        set_dist_tls(ssldist.load(optfile))
    except ssldist.OptfileError as e:
        sys.stderr.write("ERROR: cannot use -ssl_dist_optfile %s: %s\n" % (optfile, e))
        set_dist_tls(None)


def _hidden_name(target):
    host = target.split("@", 1)[1] if "@" in target else "127.0.0.1"
    return "remsh%s@%s" % (str(os.getpid())[::-1][:3], host)


def call(name, cookie, op, timeout=10.0, **args):
    from .cluster import sync_call
    return sync_call(_hidden_name(name), cookie, name, op, timeout=timeout, **args)


def _not_responding(name):
    sys.stderr.write("Node %s not responding to pings.\n" % erlfmt.atom(name))


def ping(name, cookie):
    from .cluster import NodeDown
    try:
        return call(name, cookie, "ping", timeout=5.0).get("pong") is True
    except (NodeDown, OSError, ValueError):
        return False


def is_running(name, cookie):
    """`nodetool eval 'emqx:is_running()'` (bin/emqx start waits for it): the node answers and EMQX's
    applications are up (a replicant answers pings long before, while it waits for a core)."""
    from .cluster import NodeDown
    try:
        resp = call(name, cookie, "ping", timeout=5.0)
    except (NodeDown, OSError, ValueError):
        return False
    return resp.get("pong") is True and resp.get("status") == "running" and resp.get("apps", True) is True


# ---------------------------------------------------------------------------------------------

def _boot_dist_optfile(conf):
    """bin/emqx for a boot command: with inet_tls / inet6_tls the VM gets
    `-ssl_dist_optfile ${EMQX_SSL_DIST_OPTFILE:-$EMQX_ETC_DIR/ssl_dist.conf}`, refused when it has a space.
    -> (optfile or None, ok)."""
    from . import ssldist
    if conf["cluster"]["proto_dist"] not in ssldist.DIST_TLS_PROTOS:
        return None, True
    optfile = ssldist.optfile_for_boot(_etc_dir())
    if " " in optfile:
        for line in ssldist.space_refusal(optfile, os.environ.get("RUNNER_ROOT_DIR") or "/usr/lib/emqx"):
            sys.stderr.write(line + "\n")
        return None, False
    return optfile, True


def cmd_foreground():
    # bin/emqx (maybe_log_to_console/0): foreground and console, not the daemon `start`, make the console the
    # default log handler unless the environment names one (the package's unit: file) or EMQX_LOG__TO=default.
    if os.environ.get("_EMQX_START_MODE") != "start" and os.environ.get("EMQX_LOG__TO") != "default":
        os.environ.setdefault("EMQX_DEFAULT_LOG_HANDLER", "console")
    conf = load_boot_config()
    if conf is None:
        return 1
    optfile, ok = _boot_dist_optfile(conf)
    if not ok:
        return 1
    from .node import Node
    foreground = os.environ.get("_EMQX_START_MODE") != "start"
    node = Node(conf, _etc_dir(), foreground=foreground)
    node.ssl_dist_optfile = optfile
    return asyncio.run(node.run())


def cmd_start(args):
    conf = load_boot_config()
    if conf is None:
        return 1
    optfile, ok = _boot_dist_optfile(conf)
    if not ok:
        return 1
    if optfile is not None:
        # nodetool (the ping, emqx:is_running()) connects with the same options file
        from . import ssldist
        from .cluster import set_dist_tls
        try:
            set_dist_tls(ssldist.load(optfile))
        except ssldist.OptfileError:
            pass   # the node itself reports it and stops
    name, cookie = conf["node"]["name"], conf["node"]["cookie"]
    if ping(name, cookie):
        sys.stderr.write("ERROR: node_is_already_running!\n")
        return 1
    log_dir = os.environ.get("EMQX_LOG_DIR", "/var/log/emqx")
    os.makedirs(log_dir, exist_ok=True)
    env = dict(os.environ, _EMQX_START_MODE="start")
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = pkg_parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    out = open(os.path.join(log_dir, "erlang.log.1"), "ab")
    proc = subprocess.Popen([sys.executable, "-m", "emqx_standin", "foreground"], stdin=subprocess.DEVNULL,
                            stdout=out, stderr=out, env=env, start_new_session=True, close_fds=True)
    out.close()
    wait = int(os.environ.get("EMQX_WAIT_FOR_START", "120"))
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if is_running(name, cookie):
            print("EMQX %s is started successfully!" % VERSION)
            return 0
        time.sleep(0.2)
    print("EMQX %s failed to start in %d seconds." % (VERSION, wait))
    print("See more information in logs in %s" % log_dir)
    return 1


def cmd_stop():
    from .cluster import NodeDown
    name, cookie = target_node()
    try:
        pid = call(name, cookie, "getpid", timeout=5.0).get("pid")
        call(name, cookie, "stop", timeout=10.0)
    except (NodeDown, OSError, ValueError):
        _not_responding(name)
        sys.stderr.write("Graceful shutdown failed PID=[]\n")
        return 1
    wait = int(os.environ.get("EMQX_WAIT_FOR_STOP", "120"))
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        except PermissionError:
            pass
        if not ping(name, cookie) and not _pid_alive(pid):
            break
        time.sleep(0.1)
    else:
        sys.stderr.write("stop failed, dangling after %d seconds\n" % wait)
        print("ERROR: %s is still around" % pid)
        return 1
    print("ok")
    return 0


def _pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def cmd_ping():
    name, cookie = target_node()
    if ping(name, cookie):
        print("pong")
        return 0
    _not_responding(name)
    return 1


def cmd_pid():
    from .cluster import NodeDown
    name, cookie = target_node()
    try:
        print(call(name, cookie, "getpid", timeout=5.0)["pid"])
        return 0
    except (NodeDown, OSError, ValueError, KeyError):
        _not_responding(name)
        print("")
        return 1


def cmd_ctl(args):
    from .cluster import NodeDown
    name, cookie = target_node()
    if not ping(name, cookie):
        _not_responding(name)
        return 1
    try:
        resp = call(name, cookie, "ctl", timeout=600.0, args=args)
    except (NodeDown, OSError, ValueError) as e:
        print("RPC to %s failed: %s" % (name, e))
        return 1
    if resp.get("exception"):
        # emqx_ctl:run_command/2 catches the crash (ctl_command_crashed) and returns {error, Reason};
        # nodetool rpc_infinity prints nothing for it and halts 1
        return 1
    sys.stdout.write(resp.get("out", ""))
    sys.stdout.flush()
    return int(resp.get("rc", 0))


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    _setup_env()
    cmd = argv[0] if argv else ""
    rest = argv[1:]
    if cmd in ("foreground", "console"):
        return cmd_foreground()
    if cmd == "start":
        return cmd_start(rest)
    if cmd == "stop":
        return cmd_stop()
    if cmd in ("restart", "reboot"):
        rc = cmd_stop()
        if rc not in (0, 1):
            return rc
        return cmd_start(rest)
    if cmd == "ping":
        return cmd_ping()
    if cmd == "pid":
        return cmd_pid()
    if cmd == "ctl":
        return cmd_ctl(rest)
    if cmd == "version":
        print(VERSION)
        return 0
    sys.stdout.write(USAGE)
    return 1


if __name__ == "__main__":
    sys.exit(main())
