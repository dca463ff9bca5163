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
import json
import os
import pathlib
import platform
import secrets
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

    def __init__(self, size, stock_lbs=False, tree=None):
        self.size = size
        self.nodes = [("bench-emqx-%d" % i, "172.30.20.%d" % (10 + i)) for i in range(1, size + 1)]
        self.stock = [STOCK_HAPROXY, STOCK_NGINX] if stock_lbs else []
        # The checkout whose site.yml, roles and inventories/lab run (another commit's worktree for the baseline).
        self.tree = tree or Tree(TOP)
        self.dir = WORK / ("lab-%d%s" % (size, self.tree.suffix))
        self.inventory = self.dir / "inventory"
        self.ca = self.dir / "state" / "ca" / "ca.pem"

    def containers(self):
        return self.nodes + [HAPROXY, NGINX] + self.stock

    def _write_files(self):
        (self.inventory).mkdir(parents=True, exist_ok=True)
        (self.dir / "state").mkdir(exist_ok=True)
        link = self.inventory / "group_vars"
        if not link.exists():
            link.symlink_to(self.tree.path / "inventories" / "lab" / "group_vars")
        hosts = ["all:", "  vars:", "    ansible_connection: community.docker.docker", "    ansible_user: root",
                 "  children:", "    emq_nodes:", "      hosts:"]
        for name, address in self.nodes:
            hosts += ["        %s:" % name, "          emq_node_cluster_address: %s" % address]
        for group, (name, address) in (("haproxy_lb", HAPROXY), ("nginx_lb", NGINX)):
            hosts += ["    %s:" % group, "      hosts:", "        %s:" % name, "          lab_address: %s" % address]
        (self.inventory / "hosts.yml").write_text("\n".join(hosts) + "\n")
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
        (self.dir / "extra.json").write_text(json.dumps(extra))
        (self.dir / "extra.json").chmod(0o600)  # it holds the bench lab's cookie and passwords
        platforms = {"molecule_scenario_name": "bench", "molecule_yml": {
            "driver": {"docker_networks": [{"name": NETWORK, "subnet": SUBNET}]},
            "platforms": [{"name": n, "image": IMAGE, "networks": [{"name": NETWORK, "ipv4_address": a}]}
                          for n, a in self.containers()]}}
        (self.dir / "platforms.json").write_text(json.dumps(platforms))

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
        lines = ["all:", "  hosts:"] + ["    %s:" % n for n, _ in self.stock] + [
            "  vars:", "    ansible_connection: community.docker.docker"]
        path.write_text("\n".join(lines) + "\n" if self.stock else "all: {}\n")
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

    jobs = [(node, (n,)) for n, _ in lab.nodes] + [(lb, (HAPROXY[0], ["haproxy", "socat"], "haproxy")),
                                                    (lb, (NGINX[0], ["nginx", "libnginx-mod-stream"], "nginx"))]
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
    results["scaling"] = {}
    for size in sizes:
        if first and size == first[0]:
            cold, noop = first[1], first[2]
        else:
            lab = Lab(size)
            log("scaling: %d EMQX nodes, cold converge and a no-op rerun" % size)
            try:
                lab.create()
                cold = lab.site(label="cold")["wall_seconds"]
                noop = lab.site(label="noop")["wall_seconds"]
            finally:
                lab.destroy()
        results["scaling"][str(size)] = {"cold_seconds": cold, "noop_seconds": noop}
    if len(sizes) > 1:
        low, high = results["scaling"][str(sizes[0])], results["scaling"][str(sizes[-1])]
        results["scaling"]["ratio_%d_to_%d" % (sizes[-1], sizes[0])] = {
            "cold": round(high["cold_seconds"] / low["cold_seconds"], 2),
            "noop": round(high["noop_seconds"] / low["noop_seconds"], 2)}


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


PHASES = ("baseline", "converge", "noop", "scaling", "frontdoor", "latency", "versus_baseline")


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
            rows.append(("scaling " + size.replace("ratio_", "").replace("_to_", "/") + " nodes", "cold / no-op",
                         "%.2f / %.2f" % (v["cold"], v["noop"])))
        else:
            rows.append(("%s nodes: cold, no-op" % size, "%.0f s, %.1f s" % (v["cold_seconds"], v["noop_seconds"]), ""))
    for name, v in results.get("frontdoor", {}).items():
        rows.append((name, "held %d/%d, %s KiB/conn, %.0f hs/s" % (v["held"], v["attempted"], v["lb_kib_per_connection"],
                                                                   v["handshakes_per_second"]), ""))
    for name, v in results.get("latency", {}).items():
        lat = v["paced"]["latency_ms"]
        rows.append(("latency " + name, "p50 %.2f p99 %.2f ms, %.0f msg/s" % (
            lat["p50"], lat["p99"], v["throughput"]["messages_per_second"] or 0),
            "%.2f / %.2f" % (v["p50_ratio_to_node_to_node"], v["throughput_ratio_to_node_to_node"])))
    width = max(len(r[0]) for r in rows) if rows else 10
    print("\n%-*s  %-44s  %s" % (width, "measure", "figure", "ratio"))
    for r in rows:
        print("%-*s  %-44s  %s" % (width, *r))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="converge,noop,scaling,frontdoor,latency")
    parser.add_argument("--sizes", default="3,5,7")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=3600, help="held through each LB (container cap: 20000 files)")
    parser.add_argument("--hold", type=int, default=10)
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
        if "converge" in only:
            bench_converge(results, lab)
            save(results, previous)
        elif only & {"noop", "frontdoor", "latency", "scaling"}:
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
