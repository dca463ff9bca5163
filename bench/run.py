#!/usr/bin/env python3
"""make bench: how fast the collection deploys, and what the deployment it builds carries.

Everything runs in one go, side by side, so that the figures are ratios taken on the same noisy machine:

1. converge  cold site.yml on fresh containers (3 EMQX, HAProxy, NGINX), wall time, time per play and role and
             the task results that touched a host, against the floor: the same package installs and service
             starts done with `docker exec`; and the same cold converge and no-op rerun of the baseline commit
             (BENCH_BASELINE, a git worktree of this repository) side by side, as ratios.
2. noop      site.yml again on the converged lab, with the defaults of ansible.cfg and with one of
             pipelining, fact caching and forks changed at a time (interleaved rounds, median).
Each run records the Ansible settings it ran with and where each came from (ansible-config dump).
3. scaling   cold converge and no-op rerun with 3, 5 and 7 EMQX nodes.
4. frontdoor MQTT over TLS connections held through HAProxy and NGINX as the collection tunes them, and
             through the same two installed with the distribution's defaults and a hand-written minimal
             front end; memory per connection on the LB, TLS handshakes per second (bench/loadgen.py).
5. latency   QoS 1 publish-to-receive latency and messages per second through each LB, and straight
             to a node (plain TCP with the PROXY header the node expects), as ratios.

The containers live on their own docker network (172.30.20.0/24, names bench-*); the load generator is
allowed that network and loopback only. Counts and times are bounded; nothing here fails on a time.
Writes bench/results/bench.json and bench/results/*.png; prints a table.

    python bench/run.py [--only converge,noop,scaling,frontdoor,latency] [--sizes 3,5,7] [--rounds 2]
                        [--baseline REF | --baseline none]
"""

import argparse
import concurrent.futures
import datetime
import importlib.util
import json
import os
import pathlib
import platform
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TOP = pathlib.Path(__file__).resolve().parents[1]
RESULTS = TOP / "bench" / "results"
WORK = RESULTS / "tmp"
SHARED = TOP / "molecule" / "_shared"
LOADGEN = TOP / "bench" / "loadgen.py"
STANDIN_DEB = TOP / "tests" / "output" / "standin" / "emqx_5.8.9_all.deb"
NETWORK, SUBNET, GATEWAY = "iothub-emq-bench", "172.30.20.0/24", "172.30.20.1"
IMAGE = "iothub-emq/debian-systemd:12"
HAPROXY, NGINX = ("bench-haproxy", "172.30.20.20"), ("bench-nginx", "172.30.20.21")
STOCK_HAPROXY, STOCK_NGINX = ("bench-haproxy-stock", "172.30.20.22"), ("bench-nginx-stock", "172.30.20.23")
DEFAULT_BASELINE = "bfe6cdf"  # the commit the converge targets of issue 16 are measured against
SETTINGS = ("ANSIBLE_PIPELINING", "DEFAULT_FORKS", "CACHE_PLUGIN", "DEFAULT_GATHERING", "DEFAULT_STRATEGY")
NOOP_VARIANTS = [
    ("ansible.cfg defaults", {}),
    ("pipelining off", {"ANSIBLE_PIPELINING": "false"}),
    ("fact cache off", {"ANSIBLE_CACHE_PLUGIN": "memory"}),
    ("forks 2", {"ANSIBLE_FORKS": "2"}),
]


def log(text):
    print("==> %s" % text, flush=True)


def run(cmd, env=None, check=True, logfile=None, timeout=1800, cwd=TOP):
    """Run a command; its output goes to logfile (or is returned). Returns CompletedProcess."""
    full_env = dict(os.environ, **(env or {}))
    if logfile:
        with open(logfile, "w") as out:
            result = subprocess.run(cmd, env=full_env, stdout=out, stderr=subprocess.STDOUT, text=True,
                                    timeout=timeout, cwd=cwd)
    else:
        result = subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    if check and result.returncode != 0:
        raise SystemExit("failed (%d): %s%s" % (result.returncode, " ".join(map(str, cmd)),
                                                " - see " + str(logfile) if logfile else "\n" + result.stderr))
    return result


def dexec(container, *cmd, check=True, timeout=600):
    return run(["docker", "exec", container] + list(cmd), check=check, timeout=timeout)


# ---- the bench lab --------------------------------------------------------------------------------

class Lab:
    """size EMQX nodes + HAProxy + NGINX (+ the two stock LBs) in containers, and an inventory for them
    that takes its settings from inventories/lab."""

    def __init__(self, size, stock_lbs=False, tree=None, haproxy=None, nginx=None, spare_nodes=0, name=None,
                 extra=None):
        self.size = size
        nodes = [("bench-emqx-%d" % i, "172.30.20.%d" % (10 + i)) for i in range(1, size + spare_nodes + 1)]
        # Spare nodes: containers made and prepared with the others, in the inventory only after add_nodes().
        self.nodes, self.spare = nodes[:size], nodes[size:]
        self.haproxy, self.nginx = haproxy or [HAPROXY], nginx or [NGINX]
        self.stock = [STOCK_HAPROXY, STOCK_NGINX] if stock_lbs else []
        self.extra = extra or {}
        # The checkout whose site.yml, roles and inventories/lab run (another commit's worktree for the baseline).
        self.tree = tree or Tree(TOP)
        self.dir = WORK / ("lab-%s%s" % (name or size, self.tree.suffix))
        self.inventory = self.dir / "inventory"
        self.ca = self.dir / "state" / "ca" / "ca.pem"

    def containers(self):
        return self.nodes + self.spare + self.haproxy + self.nginx + self.stock

    def add_nodes(self):
        """Put the spare nodes into the inventory (the next site.yml joins them to the cluster)."""
        self.nodes, self.spare = self.nodes + self.spare, []
        self.size = len(self.nodes)
        self._write_hosts()

    def _write_files(self):
        (self.inventory).mkdir(parents=True, exist_ok=True)
        (self.dir / "state").mkdir(exist_ok=True)
        link = self.inventory / "group_vars"
        if not link.exists():
            link.symlink_to(self.tree.path / "inventories" / "lab" / "group_vars")
        self._write_hosts()
        extra = {
            "lab_state_dir": str(self.dir / "state"),
            "lab_emq_node_cookie": secrets.token_hex(24),
            "lab_emq_node_dashboard_password": "Bench-" + secrets.token_hex(12),
            "lab_emq_node_api_secret": secrets.token_hex(24),
            "lab_haproxy_lb_stats_password": secrets.token_hex(12),
            "lab_backend_password": secrets.token_hex(12), "lab_backend_salt": secrets.token_hex(8),
            "lab_device_password": secrets.token_hex(12), "lab_device_salt": secrets.token_hex(8),
            "emq_node_package_file": str(self.tree.standin_deb),
            # The load generator connects without credentials and publishes anywhere: the bench measures
            # connections and latency, not EMQX's authentication (the lab's default, left out here on purpose).
            "emq_node_allow_anonymous": True, "emq_node_authn_users": [], "emq_node_authz_enabled": False,
            # As high as these containers' 20000 open files allow the preflight to accept.
            "haproxy_lb_target_connections": 6000,
            "nginx_lb_target_connections": 3800,
            # The controller is the admin network; the controller and the stock LBs are clients too.
            "emq_node_firewall_admin_networks": [GATEWAY + "/32"],
            "emq_node_firewall_client_networks": [GATEWAY + "/32"] + [a + "/32" for _, a in self.stock],
        }
        extra.update(self.extra)
        (self.dir / "extra.json").write_text(json.dumps(extra))
        (self.dir / "extra.json").chmod(0o600)  # it holds the bench lab's cookie and passwords
        platforms = {"molecule_scenario_name": "bench", "molecule_yml": {
            "driver": {"docker_networks": [{"name": NETWORK, "subnet": SUBNET}]},
            "platforms": [{"name": n, "image": IMAGE, "networks": [{"name": NETWORK, "ipv4_address": a}]}
                          for n, a in self.containers()]}}
        (self.dir / "platforms.json").write_text(json.dumps(platforms))

    def _write_hosts(self):
        hosts = ["all:", "  vars:", "    ansible_connection: community.docker.docker", "    ansible_user: root",
                 "  children:", "    emq_nodes:", "      hosts:"]
        for name, address in self.nodes:
            hosts += ["        %s:" % name, "          emq_node_cluster_address: %s" % address]
        for group, members in (("haproxy_lb", self.haproxy), ("nginx_lb", self.nginx)):
            hosts += ["    %s:" % group, "      hosts:"]
            for name, address in members:
                hosts += ["        %s:" % name, "          lab_address: %s" % address]
        (self.inventory / "hosts.yml").write_text("\n".join(hosts) + "\n")

    def _controller_play(self, playbook):
        run(["ansible-playbook", str(SHARED / playbook), "-i", "localhost,", "-c", "local",
             "-e", "ansible_python_interpreter=" + sys.executable, "-e", "@" + str(self.dir / "platforms.json"),
             "-e", "molecule_instance_config=" + str(self.dir / "instances.yml")],
            logfile=self.dir / ("%s.log" % playbook.split(".")[0]))

    def create(self):
        """Fresh containers (any old ones removed), booted and prepared as the Molecule scenarios do."""
        self._write_files()
        self._controller_play("destroy.yml")
        # A cold run starts with no facts: forget what the fact cache knows about earlier bench containers.
        for cached in (self.tree.path / ".cache" / "facts").glob("*bench-*"):
            cached.unlink()
        self._controller_play("create.yml")
        run(["ansible-playbook", str(SHARED / "prepare.yml"), "-i", str(self.inventory), "-i", self._stock_inventory()],
            logfile=self.dir / "prepare.log")

    def _stock_inventory(self):
        path = self.dir / "stock-hosts.yml"
        extra = self.stock + self.spare   # prepared like the others, not in the inventory of site.yml (yet)
        lines = ["all:", "  hosts:"] + ["    %s:" % n for n, _ in extra] + [
            "  vars:", "    ansible_connection: community.docker.docker"]
        path.write_text("\n".join(lines) + "\n" if extra else "all: {}\n")
        return str(path)

    def destroy(self):
        if self.dir.exists():
            self._controller_play("destroy.yml")

    def site(self, env=None, label="site"):
        """ansible-playbook site.yml against the lab; the bench_timer figures of the run."""
        timer = self.dir / ("%s.timer.json" % label)
        env = dict(env or {})
        env.update({"BENCH_TIMER_FILE": str(timer), "ANSIBLE_CALLBACK_PLUGINS": str(TOP / "bench" / "callback_plugins"),
                    "ANSIBLE_CALLBACKS_ENABLED": "bench_timer"})
        env.update(self.tree.env)
        started = time.monotonic()
        run(["ansible-playbook", "site.yml", "-i", str(self.inventory), "-e", "@" + str(self.dir / "extra.json")],
            env=env, logfile=self.dir / ("%s.log" % label), cwd=self.tree.path)
        figures = json.loads(timer.read_text())
        figures["process_seconds"] = round(time.monotonic() - started, 2)
        figures["settings"] = self.tree.settings(env)
        return figures


class Tree:
    """A checkout of the collection: this one, or a commit checked out as a git worktree (the baseline)."""

    def __init__(self, path, ref=None):
        self.path = pathlib.Path(path)
        self.ref = ref
        self.suffix = "" if ref is None else "-baseline"
        self.standin_deb = self.path / "tests" / "output" / "standin" / "emqx_5.8.9_all.deb"
        # Its own collection link and ansible.cfg, whatever make exported for this checkout.
        self.env = {"ANSIBLE_CONFIG": str(self.path / "ansible.cfg"),
                    "ANSIBLE_COLLECTIONS_PATH": "%s/.collections:%s/.ansible/collections:/usr/share/ansible/collections"
                                                % (self.path, os.environ.get("HOME", "/root"))}

    @classmethod
    def worktree(cls, ref):
        """The commit ref checked out (detached) under bench/results/tmp/baseline, with its own stand-in package."""
        path = WORK / "baseline"
        commit = run(["git", "rev-parse", "--verify", ref + "^{commit}"]).stdout.strip()
        if path.exists() and run(["git", "-C", str(path), "rev-parse", "HEAD"], check=False).stdout.strip() != commit:
            run(["git", "worktree", "remove", "--force", str(path)])
        if not path.exists():
            run(["git", "worktree", "prune"])
            run(["git", "worktree", "add", "--detach", "--force", str(path), commit])
        tree = cls(path, ref=ref)
        tree.commit = commit
        if not tree.standin_deb.exists():
            run([str(path / "tests" / "emqx_standin" / "build_deb.sh"), "--version", "5.8.9",
                 "--output", str(tree.standin_deb.parent)], cwd=path)
        return tree

    def settings(self, env=None):
        """The Ansible settings a run in this checkout uses (of SETTINGS), as ansible-config reports them."""
        out = run(["ansible-config", "dump"], env=dict(env or {}, **self.env), cwd=self.path).stdout
        return parse_settings(out)


def parse_settings(dump):
    """SETTINGS from `ansible-config dump` lines ("ANSIBLE_PIPELINING(/path/ansible.cfg) = True") as "True
    (/path/ansible.cfg)": the value and where it came from (a file, "env: NAME" or "default")."""
    found = {}
    for line in dump.splitlines():
        name, _, value = line.partition("=")
        key = name.split("(")[0].strip()
        if key in SETTINGS:
            found[key] = "%s (%s)" % (value.strip(), name[name.find("(") + 1:name.rfind(")")]) if "(" in name else value.strip()
    return dict((key, found.get(key, "unknown")) for key in SETTINGS)


# ---- 1. cold converge against the floor -----------------------------------------------------------

def floor(lab):
    """The same package installs and service starts as site.yml, by hand with docker exec, in parallel."""
    def node(name):
        # /root, not /tmp: /tmp is a tmpfs that docker cp cannot write into.
        run(["docker", "cp", str(STANDIN_DEB), "%s:/root/emqx.deb" % name])
        dexec(name, "apt-get", "install", "-y", "-q", "/root/emqx.deb")
        dexec(name, "systemctl", "start", "emqx")
        for _ in range(240):
            if dexec(name, "curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:18083/status", check=False).returncode == 0:
                return
            time.sleep(0.5)
        raise SystemExit("floor: EMQX on %s did not answer /status" % name)

    def lb(name, packages, service):
        dexec(name, "apt-get", "install", "-y", "-q", *packages)
        dexec(name, "systemctl", "restart", service)

    jobs = ([(node, (n,)) for n, _ in lab.nodes] + [(lb, (n, ["haproxy", "socat"], "haproxy")) for n, _ in lab.haproxy]
            + [(lb, (n, ["nginx", "libnginx-mod-stream"], "nginx")) for n, _ in lab.nginx])
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
        for future in [pool.submit(f, *a) for f, a in jobs]:
            future.result()
    return round(time.monotonic() - started, 2)


def bench_converge(results, lab):
    log("floor: package installs and service starts by hand on fresh containers (%d nodes)" % lab.size)
    lab.create()
    results["converge"] = {"floor_seconds": floor(lab)}
    log("cold converge: site.yml on fresh containers")
    lab.create()
    cold = lab.site(label="cold")
    results["converge"].update({"cold_seconds": cold["wall_seconds"], "tasks": cold["tasks"],
                                "host_tasks": cold["host_tasks"], "task_results": cold["task_results"],
                                "changed": cold["changed"], "roles": cold["roles"], "plays": cold["plays"],
                                "slowest_tasks": cold["slowest_tasks"], "settings": cold["settings"]})
    results["converge"]["ratio"] = round(cold["wall_seconds"] / results["converge"]["floor_seconds"], 2)


def bench_baseline(results, size, ref, rounds):
    """The baseline commit's cold converge and no-op reruns on the same kind of fresh lab, for the ratios."""
    tree = Tree.worktree(ref)
    log("baseline %s (%s): cold converge and %d no-op rerun(s) of its site.yml" % (ref, tree.commit[:10], rounds))
    lab = Lab(size, tree=tree)
    try:
        lab.create()
        cold = lab.site(label="cold")
        noops = [lab.site(label="noop-%d" % r) for r in range(rounds)]
    finally:
        lab.destroy()
    results["baseline"] = {
        "ref": ref, "commit": tree.commit, "cold_seconds": cold["wall_seconds"], "cold_tasks": cold["tasks"],
        "cold_host_tasks": cold["host_tasks"], "noop_median_seconds": round(statistics.median(
            n["wall_seconds"] for n in noops), 2), "noop_runs_seconds": [n["wall_seconds"] for n in noops],
        "noop_tasks": noops[-1]["tasks"], "noop_host_tasks": noops[-1]["host_tasks"], "settings": cold["settings"]}
    print("    baseline cold %.1f s (%d tasks, %d on hosts), no-op %.1f s (%d tasks, %d on hosts)" % (
        cold["wall_seconds"], cold["tasks"], cold["host_tasks"], results["baseline"]["noop_median_seconds"],
        noops[-1]["tasks"], noops[-1]["host_tasks"]), flush=True)


def compare_to_baseline(results):
    base, conv, noop = results.get("baseline"), results.get("converge"), results.get("noop")
    if not base:
        return
    versus = {}
    if conv:
        versus["cold"] = round(conv["cold_seconds"] / base["cold_seconds"], 2)
    if noop:
        versus["noop"] = round(noop[NOOP_VARIANTS[0][0]]["median_seconds"] / base["noop_median_seconds"], 2)
    results["versus_baseline"] = versus


# ---- 2. no-op rerun variants ------------------------------------------------------------------------

def bench_noop(results, lab, rounds):
    log("no-op reruns: %d round(s) of %d variants, interleaved" % (rounds, len(NOOP_VARIANTS)))
    runs = {name: [] for name, _ in NOOP_VARIANTS}
    for r in range(rounds):
        for name, env in NOOP_VARIANTS:
            figures = lab.site(env=env, label="noop-%d-%s" % (r, name.replace(" ", "-").replace(".", "")))
            runs[name].append(figures)
            print("    %-22s %6.1f s  tasks %d (%d on hosts)  changed %d  pipelining %s" % (
                name, figures["wall_seconds"], figures["tasks"], figures["host_tasks"], figures["changed"],
                figures["settings"]["ANSIBLE_PIPELINING"]), flush=True)
    base = statistics.median(f["wall_seconds"] for f in runs[NOOP_VARIANTS[0][0]])
    results["noop"] = {name: {"median_seconds": round(statistics.median(f["wall_seconds"] for f in fs), 2),
                              "runs_seconds": [f["wall_seconds"] for f in fs], "tasks": fs[-1]["tasks"],
                              "host_tasks": fs[-1]["host_tasks"], "settings": fs[-1]["settings"],
                              "changed": max(f["changed"] for f in fs),
                              "ratio_to_defaults": round(statistics.median(f["wall_seconds"] for f in fs) / base, 2),
                              "env": dict(NOOP_VARIANTS)[name]}
                       for name, fs in runs.items()}


# ---- 3. scaling -------------------------------------------------------------------------------------

def bench_scaling(results, sizes, first=None):
    """Cold converge and no-op rerun per size, beside the floor of that size (the same installs and starts by
    docker exec, in parallel): how much of the growth with the hosts is the machine's, not site.yml's."""
    results["scaling"] = {}
    for size in sizes:
        lab = Lab(size)
        log("scaling: %d EMQX nodes, the floor%s" % (size, "" if first and size == first[0] else
                                                        ", a cold converge and a no-op rerun"))
        try:
            lab.create()
            floor_seconds = floor(lab)
            if first and size == first[0]:
                cold, noop = first[1], first[2]
            else:
                lab.create()
                cold = lab.site(label="cold")["wall_seconds"]
                noop = lab.site(label="noop")["wall_seconds"]
        finally:
            lab.destroy()
        results["scaling"][str(size)] = {"cold_seconds": cold, "noop_seconds": noop, "floor_seconds": floor_seconds}
    if len(sizes) > 1:
        low, high = results["scaling"][str(sizes[0])], results["scaling"][str(sizes[-1])]
        results["scaling"]["ratio_%d_to_%d" % (sizes[-1], sizes[0])] = {
            "cold": round(high["cold_seconds"] / low["cold_seconds"], 2),
            "noop": round(high["noop_seconds"] / low["noop_seconds"], 2),
            "floor": round(high["floor_seconds"] / low["floor_seconds"], 2)}


# ---- 4. front door capacity --------------------------------------------------------------------------

STOCK_HAPROXY_FRONTEND = """
# --- added by bench/run.py: the minimal TLS front end an operator would add to the stock file ---
frontend mqtts
    mode tcp
    bind :8883 ssl crt /etc/haproxy/bench.pem
    timeout client 3m
    default_backend emqx
backend emqx
    mode tcp
    timeout server 3m
{servers}
"""

STOCK_NGINX_STREAM = """
# --- added by bench/run.py: the minimal TLS front end an operator would add to the stock file ---
stream {{
    upstream emqx {{
{servers}
    }}
    server {{
        listen 8883 ssl;
        ssl_certificate /etc/nginx/bench.pem;
        ssl_certificate_key /etc/nginx/bench.pem;
        proxy_pass emqx;
        proxy_protocol on;
    }}
}}
"""


def setup_stock_lbs(lab):
    """Debian's haproxy and nginx with their shipped configuration plus a minimal TLS front end, using the
    tuned LBs' certificate (it names the tuned LB's address: the load generator verifies that name)."""
    pem = dexec(HAPROXY[0], "sh", "-c", "cat /etc/haproxy/certs/emqx-lb.pem /etc/haproxy/certs/emqx-lb.pem.key").stdout
    for (name, _), (packages, path, block, conf, service) in zip(lab.stock, [
            (["haproxy"], "/etc/haproxy/bench.pem", STOCK_HAPROXY_FRONTEND, "/etc/haproxy/haproxy.cfg", "haproxy"),
            (["nginx", "libnginx-mod-stream"], "/etc/nginx/bench.pem", STOCK_NGINX_STREAM, "/etc/nginx/nginx.conf",
             "nginx")]):
        dexec(name, "apt-get", "install", "-y", "-q", *packages)
        with tempfile.NamedTemporaryFile("w", delete=False) as tmp:
            tmp.write(pem)
        run(["docker", "cp", tmp.name, "%s:%s" % (name, path)])
        os.unlink(tmp.name)
        if service == "haproxy":
            servers = "\n".join("    server %s %s:1883 send-proxy-v2 check" % (n, a) for n, a in lab.nodes)
        else:
            servers = "\n".join("        server %s:1883;" % a for _, a in lab.nodes)
        dexec(name, "sh", "-c", "cat >> %s <<'EOF'\n%s\nEOF" % (conf, block.format(servers=servers)))
        dexec(name, "systemctl", "restart", service)


def lb_rss_kib(container, process):
    """Resident memory of every process of that name in the container, KiB."""
    script = ("t=0; for d in /proc/[0-9]*; do [ \"$(cat $d/comm 2>/dev/null)\" = %s ] && "
              "t=$((t + $(awk '/^VmRSS/ {print $2}' $d/status))); done; echo $t" % process)
    return int(dexec(container, "sh", "-c", script).stdout.strip() or 0)


def loadgen(*args, timeout=600):
    cmd = [sys.executable, str(LOADGEN)] + [str(a) for a in args] + ["--allow-network", SUBNET]
    result = run(cmd, check=False, timeout=timeout)
    if result.returncode != 0 or not result.stdout.strip():
        raise SystemExit("loadgen failed: %s\n%s" % (" ".join(cmd), result.stderr))
    return json.loads(result.stdout)


def bench_frontdoor(results, lab, count, hold):
    log("front door: %d MQTT/TLS connections held through each LB, tuned and stock" % count)
    setup_stock_lbs(lab)
    results["frontdoor"] = {}
    # The name to verify: each tuned LB's certificate names its own address; both stock LBs serve the
    # tuned HAProxy's certificate.
    cases = [("HAProxy, collection", HAPROXY, "haproxy", HAPROXY[1]),
             ("HAProxy, Debian defaults", STOCK_HAPROXY, "haproxy", HAPROXY[1]),
             ("NGINX, collection", NGINX, "nginx", NGINX[1]),
             ("NGINX, Debian defaults", STOCK_NGINX, "nginx", HAPROXY[1])]
    for label, (container, address), process, server_name in cases:
        tls = ["--host", address, "--port", 8883, "--tls", "--cafile", lab.ca, "--servername", server_name]
        before = lb_rss_kib(container, process)
        cmd = [sys.executable, str(LOADGEN), "connections", *map(str, tls), "--count", str(count), "--rate", "1000",
               "--concurrency", "200", "--hold", str(hold), "--timeout", "240", "--allow-network", SUBNET]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=TOP)
        peak = before
        while proc.poll() is None:
            peak = max(peak, lb_rss_kib(container, process))
            time.sleep(1)
        out, err = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit("loadgen failed: %s\n%s" % (" ".join(cmd), err))
        held = json.loads(out)
        time.sleep(3)  # let the LB and the nodes close what was held
        shakes = loadgen("handshakes", *tls, "--duration", 10, "--concurrency", 50, "--timeout", 60)
        results["frontdoor"][label] = {
            "attempted": held["attempted"], "held": held["peak_held"], "failed": held["failed"],
            "errors": held["errors"], "lb_rss_before_kib": before, "lb_rss_peak_kib": peak,
            "lb_kib_per_connection": round((peak - before) / held["peak_held"], 1) if held["peak_held"] else None,
            "open_handshakes_per_second": held["handshakes_per_second"],
            "handshakes_per_second": shakes["handshakes_per_second"], "handshake_ms": shakes["handshake_ms"],
            "loadgen_rss_kib": held.get("rss_kib")}
        print("    %-26s held %5d/%d  %6.1f KiB/conn  %7.1f handshakes/s" % (
            label, held["peak_held"], count, results["frontdoor"][label]["lb_kib_per_connection"] or 0,
            shakes["handshakes_per_second"]), flush=True)
        time.sleep(3)


# ---- 6. scale: 100,000 TLS devices through the front door ---------------------------------------------

# Client addresses added on the bench network's bridge for the load generators (a bound source address
# has one ephemeral port range, about 28,000 ports, for all its connections).
SCALE_SOURCES = ["172.30.20.%d" % i for i in range(2, 10)]
SCALE_PER_CLIENT = 17000   # devices per load generator process (each holds one file per device, cap 20000)
SCALE_TOPIC = "bench/fanout"
# The devices' MQTT keepalive; loadgen pings within 0.9 x of it. The load balancers close a connection silent
# for 240 s (their timeouts outlast 1.5 x the 60 s keepalive they are set up for), so a device must speak
# more often than that; 180 s keeps the pings (about 1,200/s for 100,000 devices) cheap.
SCALE_KEEPALIVE = 180
NODE_PROCESS_SKIP = {"systemd", "systemd-journal", "systemd-logind", "systemd-udevd", "dbus-daemon", "cron",
                     "agetty", "sh", "bash", "sleep", "nft", "(sd-pam)"}


def lb_sizing_filter():
    """The collection's own sizing (plugins/filter/lb_sizing.py): how many devices one HAProxy host carries."""
    spec = importlib.util.spec_from_file_location("lb_sizing", TOP / "plugins" / "filter" / "lb_sizing.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lb_sizing


def scale_lab(total, nodes, spare):
    """nodes EMQX nodes (+ spare ones to add later), an HAProxy tier and one NGINX, each kind sized by the roles
    for half the devices: the test sets only *_target_connections."""
    half = total // 2
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]   # what dockerd and so every container's init inherit
    per_host = lb_sizing_filter()(1, processes=1, init_nofile=hard, init_can_raise=False)["max_target"]
    # 1% beyond an even share: the generators spread the devices evenly, not exactly.
    hosts = -(-half * 101 // (100 * per_host))
    tier = [("bench-haproxy-%d" % i, "172.30.20.%d" % (30 + i)) for i in range(1, hosts + 1)]
    extra = {"haproxy_lb_target_connections": min(per_host, -(-half * 101 // (100 * hosts))),
             "nginx_lb_target_connections": total - half}
    return Lab(nodes, haproxy=tier, spare_nodes=spare, name="scale", extra=extra), per_host


def bridge_of(network):
    return "br-" + run(["docker", "network", "inspect", "-f", "{{.Id}}", network]).stdout.strip()[:12]


def processes_of(containers):
    """Per container and command name: processes, CPU seconds, RSS, open files (and the most one process holds,
    with its limit), read from the host's /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for name in containers:
        lines = run(["docker", "top", name, "-eo", "pid,comm"], check=False).stdout.splitlines()[1:]
        for line in lines:
            pid, comm = line.split(None, 1)
            try:
                stat = pathlib.Path("/proc/%s/stat" % pid).read_text()
                fields = stat[stat.rindex(")") + 2:].split()
                status = pathlib.Path("/proc/%s/status" % pid).read_text()
                limits = pathlib.Path("/proc/%s/limits" % pid).read_text()
                fds = len(os.listdir("/proc/%s/fd" % pid))
            except (OSError, ValueError):
                continue   # gone meanwhile
            rss = int(next((ln.split()[1] for ln in status.splitlines() if ln.startswith("VmRSS:")), 0))
            limit = int(next((ln.split()[4] for ln in limits.splitlines() if ln.startswith("Max open files")), 0))
            agg = out.setdefault(name, {}).setdefault(comm.strip(), {"processes": 0, "cpu_seconds": 0.0, "rss_kib": 0,
                                                                     "fds": 0, "most_fds": 0, "its_limit": 0})
            agg["processes"] += 1
            agg["cpu_seconds"] += (int(fields[11]) + int(fields[12])) / tick
            agg["rss_kib"] += rss
            agg["fds"] += fds
            if fds > agg["most_fds"]:
                agg["most_fds"], agg["its_limit"] = fds, limit
    return out


def kind_totals(snapshot, lab):
    """CPU, RSS and files of HAProxy (the whole tier), NGINX and the EMQX nodes' own processes."""
    kinds = {"haproxy": ([n for n, _ in lab.haproxy], {"haproxy"}), "nginx": ([n for n, _ in lab.nginx], {"nginx"}),
             "nodes": ([n for n, _ in lab.nodes], None)}
    totals = {}
    for kind, (names, comms) in kinds.items():
        t = {"cpu_seconds": 0.0, "rss_kib": 0, "fds": 0, "processes": 0, "fullest": None}
        for name in names:
            for comm, v in snapshot.get(name, {}).items():
                if (comms is not None and comm not in comms) or (comms is None and comm in NODE_PROCESS_SKIP):
                    continue
                for key in ("cpu_seconds", "rss_kib", "fds", "processes"):
                    t[key] += v[key]
                if t["fullest"] is None or v["most_fds"] > t["fullest"]["fds"]:
                    t["fullest"] = {"container": name, "process": comm, "fds": v["most_fds"], "limit": v["its_limit"]}
        t["cpu_seconds"] = round(t["cpu_seconds"], 1)
        totals[kind] = t
    return totals


class Clients:
    """The fan-out load generators (bench/loadgen.py fanout), one per SCALE_PER_CLIENT devices, driven over
    their stdin and stdout."""

    def __init__(self, lab, total, targets, max_failures, timeout, sources=None):
        count = -(-total // SCALE_PER_CLIENT)
        shares = [total // count + (1 if i < total % count else 0) for i in range(count)]
        self.log = open(lab.dir / "scale-clients.log", "a")
        # Each generator starts its turn over the targets at another one, so that their shares add up evenly.
        self.procs = [subprocess.Popen(
            [sys.executable, str(LOADGEN), "fanout", "--targets", ",".join(targets[2 * i % len(targets):]
                                                                            + targets[:2 * i % len(targets)]),
             "--tls", "--cafile", str(lab.ca),
             "--allow-network", SUBNET, "--count", str(n), "--concurrency", "64", "--connect-timeout", "20",
             "--keepalive", str(SCALE_KEEPALIVE),
             "--source-addresses", ",".join(sources or SCALE_SOURCES), "--topic", SCALE_TOPIC,
             "--max-failures", str(max_failures),
             "--client-id-prefix", "scale-%d-%d-" % (os.getpid(), i), "--timeout", str(timeout)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, cwd=TOP)
            for i, n in enumerate(shares)]

    def read(self, proc):
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("a load generator ended early: see %s" % self.log.name)
        return json.loads(line)

    def ask(self, proc, command):
        proc.stdin.write(command + "\n")
        proc.stdin.flush()
        return self.read(proc)

    def close(self):
        done = []
        for proc in self.procs:
            try:
                done.append(self.ask(proc, "close"))
            except (SystemExit, BrokenPipeError, ValueError):
                pass
        for proc in self.procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.log.close()
        return done


def scale_ramp(lab, total, max_failures, label):
    """Open `total` subscribed TLS devices through every LB (half through NGINX, half over the HAProxy tier)
    and hold them. Returns (clients, figures)."""
    tier = ["%s:8883" % a for _, a in lab.haproxy]
    targets = []
    for i in range(len(tier)):   # NGINX as often as the whole tier: half of the devices each
        targets += [tier[i], "%s:8883" % lab.nginx[0][1]]
    watched = [n for n, _ in lab.nodes + lab.haproxy + lab.nginx]
    before = kind_totals(processes_of(watched), lab)
    started = time.monotonic()
    clients = Clients(lab, total, targets, max_failures, timeout=2400)
    growth, readies = [], [None] * len(clients.procs)
    import select
    while any(r is None for r in readies):
        ready, _, _ = select.select([p.stdout for i, p in enumerate(clients.procs) if readies[i] is None], [], [], 10)
        for i, proc in enumerate(clients.procs):
            if readies[i] is None and proc.stdout in ready:
                readies[i] = clients.read(proc)
        now = kind_totals(processes_of([n for n, _ in lab.nodes]), lab)["nodes"]
        growth.append({"seconds": round(time.monotonic() - started, 1), "node_fds": now["fds"],
                       "fullest_node": now["fullest"]})
        print("    %s: %5.0f s, EMQX nodes hold %d open files (fullest %s: %d of %d), %d/%d generators ready" % (
            label, growth[-1]["seconds"], now["fds"], now["fullest"]["container"], now["fullest"]["fds"],
            now["fullest"]["limit"], sum(r is not None for r in readies), len(readies)), flush=True)
    ramp_seconds = time.monotonic() - started
    after = kind_totals(processes_of(watched), lab)
    held = sum(r["held"] for r in readies)
    per_target = collections_sum(r["held_per_target"] for r in readies)
    via_nginx = per_target.get(lab.nginx[0][1], 0)
    via_haproxy = held - via_nginx
    errors = collections_sum(r["errors"] for r in readies)
    fig = {
        "attempted": sum(r["attempted"] for r in readies), "held": held, "via_haproxy": via_haproxy,
        "via_nginx": via_nginx, "failed": sum(r["failed"] for r in readies), "errors": errors,
        "stopped_after_failures": sum(1 for r in readies if r["stopped_after_failures"]),
        "ramp_seconds": round(ramp_seconds, 1),
        "handshakes_per_second": round(held / ramp_seconds, 1) if ramp_seconds else None,
        "handshake_ms_p50_max": max(r["handshake_ms"].get("p50", 0) for r in readies),
        "handshake_ms_p99_max": max(r["handshake_ms"].get("p99", 0) for r in readies),
        "cpu_seconds": {"clients": round(sum(r["cpu_seconds"] for r in readies), 1),
                        **{k: round(after[k]["cpu_seconds"] - before[k]["cpu_seconds"], 1) for k in after}},
        "rss_kib": {"clients": sum(r["rss_kib"] for r in readies), **{k: after[k]["rss_kib"] for k in after}},
        "kib_per_connection": {
            "clients": round(sum(r["rss_kib"] for r in readies) / held, 1) if held else None,
            "haproxy": round((after["haproxy"]["rss_kib"] - before["haproxy"]["rss_kib"]) / via_haproxy, 1)
            if via_haproxy else None,
            "nginx": round((after["nginx"]["rss_kib"] - before["nginx"]["rss_kib"]) / via_nginx, 1) if via_nginx else None,
            "nodes": round((after["nodes"]["rss_kib"] - before["nodes"]["rss_kib"]) / held, 1) if held else None},
        "fullest": {k: after[k]["fullest"] for k in after}, "processes": {k: after[k]["processes"] for k in after},
        "generators": len(readies), "growth": growth,
    }
    fig["broke_first"] = what_broke(fig)
    return clients, fig


def collections_sum(dicts):
    out = {}
    for d in dicts:
        for k, v in d.items():
            out[k] = out.get(k, 0) + v
    return out


def what_broke(fig):
    """The first limit met, from the figures: an open-file limit within 1% (or 64 files), else the errors seen."""
    if not fig["failed"]:
        return None
    names = {"nodes": "the EMQX node process", "haproxy": "HAProxy", "nginx": "an NGINX worker"}
    full = [("%s (%s) on %s" % (names[k], f["process"], f["container"]), f) for k, f in fig["fullest"].items()
            if f and f["limit"] and f["fds"] >= min(f["limit"] * 0.99, f["limit"] - 64)]
    if full:
        return "; ".join("%s at its open-file limit (%d of %d)" % (who, f["fds"], f["limit"]) for who, f in full)
    return "failed handshakes: %s" % ", ".join("%s %d" % kv for kv in sorted(fig["errors"].items()))


def scale_fanout(clients, seq, stall=30):
    """One stamped message published to every device; how long until all of them (those held) had it."""
    first = clients.procs[0]
    published = clients.ask(first, "publish %d" % seq)
    if "sent_ns" not in published:
        return {"seq": seq, "error": published.get("error")}
    last_change, last_total = time.monotonic(), -1
    while True:
        statuses = [clients.ask(p, "status") for p in clients.procs]
        total = sum(st["received"].get(str(seq), 0) for st in statuses)
        held = sum(st["held"] for st in statuses)
        if total != last_total:
            last_change, last_total = time.monotonic(), total
        if total >= held or time.monotonic() - last_change > stall:
            break
        time.sleep(0.2)
    reports = [clients.ask(p, "report")["messages"].get(str(seq)) for p in clients.procs]
    reports = [r for r in reports if r]
    hist = collections_sum(r["latency_ms_histogram"] for r in reports)
    ordered = sorted((int(k), v) for k, v in hist.items())

    def pct(p):
        need, seen = p / 100 * sum(hist.values()), 0
        for ms, n in ordered:
            seen += n
            if seen >= need:
                return ms
        return None
    sent = published["sent_ns"]
    return {"seq": seq, "devices": held, "delivered": sum(r["received"] for r in reports),
            "first_ms": round((min(r["first_ns"] for r in reports) - sent) / 1e6, 1) if reports else None,
            "all_ms": round((max(r["last_ns"] for r in reports) - sent) / 1e6, 1) if reports else None,
            "p50_ms": pct(50), "p99_ms": pct(99)}


TSUNG_XML = """<?xml version="1.0"?>
<!DOCTYPE tsung SYSTEM "/usr/share/tsung/tsung-1.0.dtd">
<!-- written by bench/run.py: {count} MQTT/TLS devices through one load balancer, each subscribed, held -->
<tsung loglevel="notice" version="1.0">
  <clients>
    <client host="localhost" use_controller_vm="true" maxusers="{count}">
{ips}
    </client>
  </clients>
  <servers>
    <server host="{host}" port="8883" type="ssl"/>
  </servers>
  <load>
    <arrivalphase phase="1" duration="{duration}" unit="second">
      <users maxnumber="{count}" arrivalrate="{rate}" unit="second"/>
    </arrivalphase>
  </load>
  <sessions>
    <session name="device" probability="100" type="ts_mqtt">
      <request><mqtt type="connect" clean_start="true" keepalive="300"></mqtt></request>
      <request><mqtt type="subscribe" topic="{topic}" qos="0"></mqtt></request>
      <request><mqtt type="waitForMessages" timeout="{hold_ms}"></mqtt></request>
      <request><mqtt type="disconnect"></mqtt></request>
    </session>
  </sessions>
</tsung>
"""


def proc_cpu_rss_fds(pid):
    """CPU seconds, RSS (KiB) and open sockets of one process."""
    tick = os.sysconf("SC_CLK_TCK")
    stat = pathlib.Path("/proc/%d/stat" % pid).read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    status = pathlib.Path("/proc/%d/status" % pid).read_text()
    rss = int(next((ln.split()[1] for ln in status.splitlines() if ln.startswith("VmRSS:")), 0))
    sockets = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            sockets += os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("socket:")
        except OSError:
            pass
    return (int(fields[11]) + int(fields[12])) / tick, rss, sockets


def session_beams(leader):
    """The Erlang VMs (beam.smp) in the session of the tsung process `leader`: its controller, and the client
    VMs it starts on this host when one VM has as many users as it takes."""
    found = []
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        if comm.startswith("beam") and int(stat[stat.rindex(")") + 2:].split()[3]) == leader:
            found.append(int(entry.name))
    return found


def beams_cpu_rss_sockets(leader):
    """CPU seconds, RSS and sockets summed over the session's Erlang VMs."""
    total = [0.0, 0, 0]
    for pid in session_beams(leader):
        try:
            figures = proc_cpu_rss_fds(pid)
        except OSError:
            continue
        total = [t + f for t, f in zip(total, figures)]
    return tuple(total)


def raise_nofile():
    """In a child before exec: open files up to the hard limit, as loadgen does for itself."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def bench_generators(lab, count):
    """tsung (Debian's, Erlang, its MQTT plugin) beside bench/loadgen.py: the same devices through NGINX, one
    client process each; how fast each gets them all connected and subscribed, at what CPU and memory."""
    if shutil.which("tsung") is None:
        run(["apt-get", "install", "-y", "-q", "tsung"], check=False, timeout=600)
    if shutil.which("tsung") is None:
        return {"error": "tsung is not installable here (Debian package tsung)"}
    host = lab.nginx[0][1]
    nginx = [n for n, _ in lab.nginx]
    out = {"devices": count, "through": "NGINX %s" % host}
    # tsung: arrivals at a rate above what either client reaches, so the client and the LB set the pace.
    logdir = lab.dir / "tsung"
    shutil.rmtree(logdir, ignore_errors=True)
    logdir.mkdir(parents=True)
    xml = lab.dir / "tsung.xml"
    xml.write_text(TSUNG_XML.format(count=count, host=host, duration=count // 1000 + 30, rate=2000,
                                    topic=SCALE_TOPIC, hold_ms=600000,
                                    ips="\n".join('      <ip value="%s"/>' % a for a in SCALE_SOURCES[:2])))
    lb_before = kind_totals(processes_of(nginx), lab)["nginx"]["cpu_seconds"]
    started = time.monotonic()
    proc = subprocess.Popen(["tsung", "-f", str(xml), "-l", str(logdir), "start"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, cwd=lab.dir,
                            preexec_fn=raise_nofile)
    try:
        while not session_beams(proc.pid) and time.monotonic() - started < 30:
            time.sleep(0.2)
        if not session_beams(proc.pid):
            return dict(out, error="tsung's Erlang VM did not start")
        time.sleep(0.5)
        cpu0, _rss, fds0 = beams_cpu_rss_sockets(proc.pid)
        first = last_change = None
        peak = fds0
        while time.monotonic() - started < 600:
            time.sleep(0.5)
            cpu, rss, fds = beams_cpu_rss_sockets(proc.pid)
            if first is None and fds > fds0:
                first = time.monotonic()
            if fds > peak:
                peak, last_change = fds, time.monotonic()
                peak_cpu, peak_rss = cpu, rss
            if peak - fds0 >= count or (last_change and time.monotonic() - last_change > 15):
                break
        held = min(count, peak - fds0)   # a few sockets of its own appear too
        seconds = (last_change - first) if first and last_change else None
        out["tsung"] = {"held": held, "seconds": round(seconds, 1) if seconds else None,
                        "handshakes_per_second": round(held / seconds, 1) if seconds else None,
                        "cpu_seconds": round(peak_cpu - cpu0, 1) if held else None,
                        "rss_kib": peak_rss if held else None,
                        "kib_per_device": round(peak_rss / held, 1) if held else None,
                        "verifies_certificate": False}
        out["tsung"]["lb_cpu_seconds"] = round(kind_totals(processes_of(nginx), lab)["nginx"]["cpu_seconds"] - lb_before, 1)
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
    stats = sorted(logdir.glob("*/tsung.log"))
    if stats:
        text = stats[-1].read_text()
        connects = [ln.split() for ln in text.splitlines() if ln.startswith("stats: connect ")]
        if connects:
            out["tsung"]["connect_ms_mean"] = round(float(connects[-1][3]), 1)   # TCP + TLS, as tsung times it
        errors = {}
        for ln in text.splitlines():
            if ln.startswith("stats: error_"):
                name, n = ln.split()[1], int(ln.split()[3])
                errors[name] = max(errors.get(name, 0), n)
        out["tsung"]["errors"] = errors
    time.sleep(10)   # NGINX and the nodes close what tsung held
    lb_before = kind_totals(processes_of(nginx), lab)["nginx"]["cpu_seconds"]
    clients = Clients(lab, count, ["%s:8883" % host], 200, timeout=600, sources=SCALE_SOURCES[:2])
    try:
        ready = clients.read(clients.procs[0])
        out["loadgen"] = {"held": ready["held"], "seconds": ready["open_seconds"],
                          "handshakes_per_second": ready["handshakes_per_second"], "cpu_seconds": ready["cpu_seconds"],
                          "rss_kib": ready["rss_kib"], "kib_per_device": round(ready["rss_kib"] / ready["held"], 1)
                          if ready["held"] else None, "connect_ms_mean": ready["handshake_ms"].get("mean"),
                          "errors": ready["errors"], "verifies_certificate": True,
                          "lb_cpu_seconds": round(kind_totals(processes_of(nginx), lab)["nginx"]["cpu_seconds"]
                                                  - lb_before, 1)}
    finally:
        clients.close()
    for name in ("tsung", "loadgen"):
        g = out.get(name, {})
        print("    %-8s %5d devices in %5s s: %6s handshakes/s, client %s CPU-s (NGINX %s), %s KiB per device" % (
            name, g.get("held", 0), g.get("seconds"), g.get("handshakes_per_second"), g.get("cpu_seconds"),
            g.get("lb_cpu_seconds"), g.get("kib_per_device")), flush=True)
    return out


def add_sources(addresses):
    """Client addresses on the bench network's bridge; returns a function that takes them away again."""
    bridge = bridge_of(NETWORK)
    added = []
    for address in addresses:
        run(["ip", "addr", "add", address + "/32", "dev", bridge])
        added.append(address)

    def remove():
        for a in added:
            run(["ip", "addr", "del", a + "/32", "dev", bridge], check=False)
    return remove


def bench_generators_phase(results, count):
    """tsung beside loadgen on a lab of its own: 3 nodes, NGINX sized by nginx_lb for `count` devices."""
    lab = Lab(3, name="generators", extra={"nginx_lb_target_connections": count})
    log("load generators side by side: tsung and bench/loadgen.py, %d devices through NGINX each" % count)
    remove = None
    try:
        lab.create()
        lab.site(label="cold")
        remove = add_sources(SCALE_SOURCES[:2])
        results["generators"] = bench_generators(lab, count)
    finally:
        if remove:
            remove()
        lab.destroy()


def bench_scale(results, total, messages=3):
    """Stage 1: `total` devices into the 3-node cluster until something breaks. Stage 2: three more nodes joined
    through site.yml, `total` devices again, held, and a message fanned out to all of them."""
    lab, per_host = scale_lab(total, 3, 3)
    log("scale: %d MQTT/TLS devices, half through NGINX, half over %d HAProxy hosts (%d each at most under the "
        "containers' open-file limit, by iothub.emq.lb_sizing)" % (total, len(lab.haproxy), per_host))
    remove = None
    out = {"devices": total, "haproxy_hosts": len(lab.haproxy), "haproxy_max_per_host": per_host,
           "settings": dict(lab.extra), "source_addresses": len(SCALE_SOURCES)}
    results["scale"] = out
    try:
        lab.create()
        started = time.monotonic()
        lab.site(label="scale-cold")
        out["cold_converge_seconds"] = round(time.monotonic() - started, 1)
        text = dexec(lab.nginx[0][0], "cat", "/etc/nginx/nginx.conf").stdout
        out["nginx_workers"] = int(text.split("worker_processes", 1)[1].split(";")[0])
        remove = add_sources(SCALE_SOURCES)
        for stage, max_failures in (("3 nodes", 50), ("6 nodes", 1000)):
            if stage == "6 nodes":
                lab.add_nodes()
                started = time.monotonic()
                lab.site(label="scale-out")
                out["scale_out_seconds"] = round(time.monotonic() - started, 1)
                log("scale: three nodes added through site.yml in %.0f s" % out["scale_out_seconds"])
            log("scale: %s, opening %d devices" % (stage, total))
            clients, fig = scale_ramp(lab, total, max_failures, stage)
            try:
                print("    %s: held %d of %d (HAProxy %d, NGINX %d) in %.0f s, %.0f handshakes/s; broke first: %s" % (
                    stage, fig["held"], total, fig["via_haproxy"], fig["via_nginx"], fig["ramp_seconds"],
                    fig["handshakes_per_second"] or 0, fig["broke_first"]), flush=True)
                if stage == "6 nodes" and fig["held"]:
                    time.sleep(5)   # settle
                    fig["fanout"] = [scale_fanout(clients, seq) for seq in range(1, messages + 1)]
                    for f in fig["fanout"]:
                        print("    fan-out %d: %d of %d devices, first after %s ms, all after %s ms (p50 %s, p99 %s)" % (
                            f["seq"], f.get("delivered", 0), f["devices"] if "devices" in f else 0, f.get("first_ms"),
                            f.get("all_ms"), f.get("p50_ms"), f.get("p99_ms")), flush=True)
                    fig["still_held"] = sum(clients.ask(p, "status")["held"] for p in clients.procs)
            finally:
                done = clients.close()
                fig["dropped_while_held"] = sum(d.get("dropped", 0) for d in done)
            out[stage] = fig
            time.sleep(10)   # the nodes and LBs close what was held
    finally:
        if remove:
            remove()
        lab.destroy()


# ---- 5. message path ---------------------------------------------------------------------------------

def bench_latency(results, lab, messages, rate):
    log("message path: QoS 1 latency at %d msg/s and throughput, through each LB and straight to a node" % rate)
    node1, node2 = lab.nodes[0][1], lab.nodes[1][1]
    tls = ["--tls", "--cafile", lab.ca]
    paths = [
        ("node, same node", node1, 1883, node1, 1883, ["--proxy-protocol"]),
        ("node to node", node1, 1883, node2, 1883, ["--proxy-protocol"]),
        ("HAProxy", HAPROXY[1], 8883, HAPROXY[1], 8883, tls),
        ("NGINX", NGINX[1], 8883, NGINX[1], 8883, tls),
        ("HAProxy to NGINX", HAPROXY[1], 8883, NGINX[1], 8883, tls),
    ]
    results["latency"] = {}
    for label, ph, pp, sh, sp, extra in paths:
        ends = ["--pub-host", ph, "--pub-port", pp, "--sub-host", sh, "--sub-port", sp, *extra, "--qos", 1,
                "--payload-bytes", 256]
        paced = loadgen("latency", *ends, "--messages", messages, "--rate", rate, "--timeout", 120)
        flat = loadgen("latency", *ends, "--messages", messages * 2, "--rate", 0, "--timeout", 120)
        results["latency"][label] = {"paced": {k: paced.get(k) for k in ("sent", "received", "lost", "latency_ms")},
                                     "throughput": {k: flat.get(k) for k in ("sent", "received", "lost",
                                                                            "messages_per_second", "latency_ms")}}
        print("    %-18s p50 %6.2f ms  p99 %6.2f ms  %8.1f msg/s" % (
            label, paced["latency_ms"].get("p50", 0), paced["latency_ms"].get("p99", 0),
            flat.get("messages_per_second") or 0), flush=True)
    base = results["latency"]["node to node"]
    for label, entry in results["latency"].items():
        entry["p50_ratio_to_node_to_node"] = round(entry["paced"]["latency_ms"]["p50"] / base["paced"]["latency_ms"]["p50"], 2)
        entry["throughput_ratio_to_node_to_node"] = round(
            entry["throughput"]["messages_per_second"] / base["throughput"]["messages_per_second"], 2)


# ---- output -------------------------------------------------------------------------------------------

def machine():
    mem_kib = int(next(line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal")))
    versions = run(["ansible-playbook", "--version"]).stdout.splitlines()[0]
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cpus": os.cpu_count(), "memory_gib": round(mem_kib / 1048576, 1), "kernel": platform.release(),
            "python": platform.python_version(), "ansible": versions,
            "docker": run(["docker", "version", "--format", "{{.Server.Version}}"]).stdout.strip(),
            "load_average_at_start": os.getloadavg()}


PHASES = ("baseline", "converge", "noop", "scaling", "frontdoor", "latency", "scale", "generators",
          "versus_baseline")


def merged(results, previous):
    """What bench.json holds after this run: the phases it measured, and the earlier run's figures for the phases
    it did not (BENCH_ONLY reruns one measure); "measured" says when and on what machine each phase was taken."""
    out = dict(previous)
    out.update({k: v for k, v in results.items() if v is not None})
    stamps = dict(previous.get("measured", {}))
    if previous.get("machine"):  # files written before the stamps: every phase is from that run
        old = previous["machine"]
        for phase in PHASES:
            if previous.get(phase) is not None and phase not in stamps:
                stamps[phase] = {"date": old["date"], "cpus": old["cpus"],
                                 "load_average_at_start": old["load_average_at_start"]}
    for phase in PHASES:
        if results.get(phase) is not None:
            stamps[phase] = {"date": results["machine"]["date"], "cpus": results["machine"]["cpus"],
                             "load_average_at_start": results["machine"]["load_average_at_start"]}
    out["measured"] = stamps
    return out


def save(results, previous=None):
    """bench/results/bench.json as it stands: a run cut short keeps the phases it finished."""
    (RESULTS / "bench.json").write_text(json.dumps(merged(results, previous or {}), indent=1) + "\n")


def print_table(results):
    rows = []
    c = results.get("converge")
    if c:
        rows.append(("cold converge / floor", "%.0f s / %.0f s, %d tasks, %d on hosts" % (
            c["cold_seconds"], c["floor_seconds"], c["tasks"], c.get("host_tasks", 0)), "%.2f" % c["ratio"]))
    b, v = results.get("baseline"), results.get("versus_baseline", {})
    if b:
        rows.append(("baseline %s: cold, no-op" % b["ref"], "%.0f s (%d on hosts), %.1f s (%d on hosts)" % (
            b["cold_seconds"], b["cold_host_tasks"], b["noop_median_seconds"], b["noop_host_tasks"]), ""))
        if "cold" in v:
            rows.append(("cold converge / baseline", "%.0f s / %.0f s" % (c["cold_seconds"], b["cold_seconds"]),
                         "%.2f" % v["cold"]))
        if "noop" in v:
            rows.append(("no-op rerun / baseline", "%.1f s / %.1f s" % (
                results["noop"][NOOP_VARIANTS[0][0]]["median_seconds"], b["noop_median_seconds"]), "%.2f" % v["noop"]))
    for name, v in results.get("noop", {}).items():
        rows.append(("no-op rerun, " + name, "%.1f s, %d tasks, %d on hosts, changed %d" % (
            v["median_seconds"], v["tasks"], v.get("host_tasks", 0), v["changed"]),
                     "%.2f" % v["ratio_to_defaults"]))
    for size, v in results.get("scaling", {}).items():
        if size.startswith("ratio"):
            rows.append(("scaling " + size.replace("ratio_", "").replace("_to_", "/") + " nodes",
                         "cold / no-op / floor", "%.2f / %.2f / %s" % (v["cold"], v["noop"], v.get("floor", "-"))))
        else:
            rows.append(("%s nodes: cold, no-op, floor" % size, "%.0f s, %.1f s, %s s" % (
                v["cold_seconds"], v["noop_seconds"], v.get("floor_seconds", "-")), ""))
    for name, v in results.get("frontdoor", {}).items():
        rows.append((name, "held %d/%d, %s KiB/conn, %.0f hs/s" % (v["held"], v["attempted"], v["lb_kib_per_connection"],
                                                                   v["handshakes_per_second"]), ""))
    for name, v in results.get("latency", {}).items():
        lat = v["paced"]["latency_ms"]
        rows.append(("latency " + name, "p50 %.2f p99 %.2f ms, %.0f msg/s" % (
            lat["p50"], lat["p99"], v["throughput"]["messages_per_second"] or 0),
            "%.2f / %.2f" % (v["p50_ratio_to_node_to_node"], v["throughput_ratio_to_node_to_node"])))
    sc = results.get("scale")
    for stage in ("3 nodes", "6 nodes"):
        f = (sc or {}).get(stage)
        if not f:
            continue
        rows.append(("scale, %s: held / asked" % stage, "%d / %d (HAProxy %d, NGINX %d), %.0f hs/s" % (
            f["held"], sc["devices"], f["via_haproxy"], f["via_nginx"], f["handshakes_per_second"] or 0), ""))
        cpu = f["cpu_seconds"]
        rows.append(("scale, %s: CPU-s in the ramp" % stage, "clients %.0f, HAProxy %.0f, NGINX %.0f, nodes %.0f" % (
            cpu["clients"], cpu["haproxy"], cpu["nginx"], cpu["nodes"]), ""))
        k = f["kib_per_connection"]
        rows.append(("scale, %s: KiB per device" % stage, "HAProxy %s, NGINX %s, nodes %s, clients %s" % (
            k["haproxy"], k["nginx"], k["nodes"], k["clients"]), ""))
        if f.get("broke_first"):
            rows.append(("scale, %s: broke first" % stage, f["broke_first"][:44], ""))
        for fan in f.get("fanout", []):
            rows.append(("scale, fan-out %d" % fan["seq"], "%s of %s devices, all after %s ms (p99 %s)" % (
                fan.get("delivered"), fan.get("devices"), fan.get("all_ms"), fan.get("p99_ms")), ""))
    for name, g in (results.get("generators") or {}).items():
        if isinstance(g, dict) and "held" in g:
            rows.append(("generator %s, %d devices" % (name, results["generators"]["devices"]),
                         "%d held, %s hs/s, %s CPU-s (NGINX %s), %s KiB each" % (
                             g["held"], g["handshakes_per_second"], g["cpu_seconds"], g["lb_cpu_seconds"],
                             g["kib_per_device"]), ""))
    width = max(len(r[0]) for r in rows) if rows else 10
    print("\n%-*s  %-44s  %s" % (width, "measure", "figure", "ratio"))
    for r in rows:
        print("%-*s  %-44s  %s" % (width, *r))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="converge,noop,scaling,frontdoor,latency,scale,generators")
    parser.add_argument("--sizes", default="3,5,7")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=3600, help="held through each LB (container cap: 20000 files)")
    parser.add_argument("--hold", type=int, default=10)
    parser.add_argument("--devices", type=int, default=100000,
                        help="scale: MQTT/TLS devices held through the front door (bounded: 200000)")
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--rate", type=int, default=300)
    parser.add_argument("--baseline", default=DEFAULT_BASELINE,
                        help="commit to compare the cold converge and no-op rerun with (git ref), or none")
    parser.add_argument("--keep", action="store_true", help="leave the last lab running")
    parser.add_argument("--plots-only", action="store_true", help="draw the plots again from bench/results/bench.json")
    args = parser.parse_args()
    if args.plots_only:
        import plots
        for path in plots.draw(json.loads((RESULTS / "bench.json").read_text()), RESULTS):
            print("wrote", path.relative_to(TOP))
        return
    only = set(args.only.split(","))
    if not 1000 <= args.devices <= 200000:
        raise SystemExit("--devices must be within [1000, 200000]")
    sizes = [int(s) for s in args.sizes.split(",")]
    if not STANDIN_DEB.exists():
        raise SystemExit("%s is missing: run make standin" % STANDIN_DEB)
    WORK.mkdir(parents=True, exist_ok=True)
    results = {"machine": machine(), "settings": vars(args)}
    previous = json.loads((RESULTS / "bench.json").read_text()) if (RESULTS / "bench.json").exists() else {}
    started = time.monotonic()
    results["machine"]["settings"] = Tree(TOP).settings()
    if args.baseline != "none" and only & {"converge", "noop"}:
        bench_baseline(results, sizes[0], args.baseline, args.rounds)
        save(results, previous)
    lab = Lab(sizes[0], stock_lbs="frontdoor" in only)
    try:
        if "scale" in only:   # its own lab (an HAProxy tier, six nodes): first, on a quiet machine
            bench_scale(results, args.devices)
            save(results, previous)
        if "generators" in only:
            bench_generators_phase(results, min(15000, args.devices))
            save(results, previous)
        if "converge" in only:
            bench_converge(results, lab)
            save(results, previous)
        elif only & {"noop", "frontdoor", "latency"}:
            lab.create()
            results["converge"] = None
            lab.site(label="cold")
        first = None
        if "noop" in only:
            bench_noop(results, lab, args.rounds)
            save(results, previous)
        if "frontdoor" in only:
            bench_frontdoor(results, lab, args.connections, args.hold)
            save(results, previous)
        if "latency" in only:
            bench_latency(results, lab, args.messages, args.rate)
            save(results, previous)
        if "scaling" in only:
            if results.get("converge") and "noop" in results:
                first = (sizes[0], results["converge"]["cold_seconds"],
                         results["noop"][NOOP_VARIANTS[0][0]]["median_seconds"])
            if not args.keep:
                lab.destroy()
            bench_scaling(results, sizes, first)
            save(results, previous)
    finally:
        if not args.keep:
            lab.destroy()
    results = {k: v for k, v in results.items() if v is not None}
    compare_to_baseline(results)
    results["bench_seconds"] = round(time.monotonic() - started, 1)
    save(results, previous)
    print_table(results)
    try:
        import plots
    except ImportError as exc:
        print("no plots (%s): pip install -r bench/requirements.txt" % exc)
    else:
        for path in plots.draw(merged(results, previous), RESULTS):
            print("wrote", path.relative_to(TOP))
    print("wrote bench/results/bench.json")


if __name__ == "__main__":
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    main()
