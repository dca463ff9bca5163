"""Core and replicant node roles (mria's "rlog" backend) for the EMQX stand-in.

EMQX 5.8.9 pins ekka 0.23.2, which pins mria 0.8.18; the behaviours here are read from those sources
(the file named at each one) and from EMQX's own. e5.8.9 is the same commit as v5.8.9.

A core is a member of the Mnesia cluster (cluster.py's membership). A replicant is not: it keeps no
membership on disk, asks a core cluster for everything and holds a copy of the cluster-wide data.

Replicant side, `ReplicantLB` (mria 0.8.18 `src/mria_lb.erl`, the replicant half of
`src/mria_membership.erl`, `src/mria.erl` `join1/2`, `leave/0`):
- every 1 to 2 s (`start_timer/1`: `lb_poll_interval` 1000 ms, plus `rand:uniform` of it; the first
  one 1 to 2 s after mria starts) the core nodes are discovered: the node written in the seed file
  `<mnesia dir>/mria_replicant_cluster_seed` by `cluster join` (then that node's Mnesia `db_nodes`,
  or the node alone if it does not answer), else, while core node discovery is enabled, ekka's
  `core_node_discovery_callback/0` (ekka 0.23.2 `src/ekka_autocluster.erl`: the strategy's
  `discover/1`, `[]` for manual and singleton); every discovered node is asked `lb_callback/0`
  (3 s timeout), the `db_nodes` of the cores that answer add more nodes, and only the nodes that
  answer `whoami = core`, mria running and discovery enabled remain (other replicants in a seed list
  are ignored). They are grouped into clusters (nodes listing each other, `mria_lib:find_clusters/1`)
  and the best one kept (`find_best_cluster/2`: most nodes of the previous choice, then the largest).
- the replicant takes its data from one core of that cluster whose EMQX application version is its own
  (`emqx_machine:mria_lb_custom_info_check/1`, `verify_node_compatibility/1`); without one its shards
  stay down, and a booting replicant waits (`emqx_conf_app:start/2` waits for its tables), forever.
- it pings the chosen cores and the replicants they report (`discover_replicants/1`,
  `ping_new_nodes/2`); membership is watched both ways (`monitor_if_replicant/2`): a replicant that
  stops is gone from `running_nodes` at once, and is never a stopped node (`mria:cluster_nodes/1`).
"""

import asyncio
import base64
import os
import random
import re
import time

from . import EDITION, VERSION, erlfmt

# mria_config: rlog_lb_update_interval (1000 ms) and rlog_lb_update_timeout (3000 ms), not set by EMQX
LB_POLL_INTERVAL = 1.0
LB_TIMEOUT = 3.0
# emqx_machine_replicant_health_probe: ?INITIAL_COUNT_CORE_INTERVAL, ?COUNT_CORE_INTERVAL
HEALTH_PROBE_FIRST = 10.0
HEALTH_PROBE_EVERY = 30.0
HEALTH_PROBE_TIMEOUT = 15.0
# emqx_conf_app:sync_delay_timeout/0: 10_000 + rand:uniform(2000) ms
CONF_SYNC_DELAY = 10.0
CONF_SYNC_JITTER = 2.0
# emqx_conf_app ?DATA_DIRS: what sync_data_from_node/0 zips from the core's data dir
CONF_SYNC_DATA_DIRS = ("authz", "certs")
SEED_FILE = "mria_replicant_cluster_seed"

# The `vsn` of the `emqx` OTP application (apps/emqx/src/emqx.app.src at each release tag), which is what
# emqx_machine:mria_lb_custom_info/0 reports and a replicant compares with its own. It is not the
# release version: e5.8.9, e5.9.2 and e5.10.1 all say "5.5.5".
EMQX_APP_VSN = {
    "5.7.0": "5.3.0", "5.7.1": "5.3.2", "5.7.2": "5.3.3",
    "5.8.0": "5.4.0", "5.8.1": "5.4.1", "5.8.2": "5.4.2", "5.8.3": "5.4.3", "5.8.4": "5.5.0",
    "5.8.5": "5.5.1", "5.8.6": "5.5.2", "5.8.7": "5.5.3", "5.8.8": "5.5.4", "5.8.9": "5.5.5",
    "5.8.10": "5.5.6", "5.8.11": "5.5.7",
    "5.9.0": "5.5.3", "5.9.1": "5.5.4", "5.9.2": "5.5.5", "5.9.3": "5.5.6",
    "5.10.0": "5.5.4", "5.10.1": "5.5.5", "5.10.2": "5.5.6", "5.10.3": "5.5.7", "5.10.4": "5.5.8",
}

PROBE_HINT = ("There are no core EMQX nodes running the same version as this node. If you are performing a "
              "rolling upgrade, please keep different core node versions (both old and new) around until all "
              "replicant nodes are migrated.")


def emqx_app_vsn(version=None):
    version = version or VERSION
    return EMQX_APP_VSN.get(version, version)


def release_with_prefix():
    """emqx_release:version_with_prefix/0."""
    return ("e" if EDITION == "enterprise" else "v") + VERSION


def _parse_vsn(v):
    m = re.match(r"^[ve]?(\d+)\.(\d+)\.(\d+)", str(v))
    if not m:
        raise ValueError(v)
    return tuple(int(x) for x in m.groups())


def is_older_or_same_version(remote_release):
    """emqx_conf_app:is_older_or_same_version/1 with emqx_release:vsn_compare/1 (an invalid version
    string counts as older)."""
    try:
        return _parse_vsn(remote_release) <= _parse_vsn(VERSION)
    except ValueError:
        return True


def find_clusters(view):
    """mria_lib:find_clusters/1 over {node: db_nodes}: take the first remaining node (sorted, as the
    keys of a small Erlang map), put it with the nodes that list it back, drop those, go on. The
    result is in the order Erlang accumulates it (the last found first)."""
    remaining = sorted(view)
    clusters = []
    while remaining:
        node = remaining.pop(0)
        mutual = [p for p in view[node] if p in view and node in view[p]]
        clusters.insert(0, sorted(set([node] + mutual)))
        remaining = [n for n in remaining if n not in mutual]
    return clusters


def find_best_cluster(old, clusters):
    """mria_lb:find_best_cluster/2 -> (changed, cluster): the cluster with most nodes of the previous
    choice, then the largest (a stable sort: the first of equals)."""
    if not clusters:
        return (bool(old), [])

    def score(c):
        return (sum(1 for n in c if n in old), len(c))
    best = sorted(clusters, key=score, reverse=True)[0]
    return (list(old) != best, best)


def format_seed(node):
    """mria_lb:join_cluster/1: io:format(FD, "~p.", [Node])."""
    return erlfmt.atom(node) + "."


def parse_seed(text):
    """file:consult/1 of the seed file: one atom, else None (corrupt)."""
    m = re.fullmatch(r"\s*(?:'((?:[^'\\]|\\.)*)'|([a-z][A-Za-z0-9_@]*))\s*\.\s*", text)
    if not m:
        return None
    if m.group(2) is not None:
        return m.group(2)
    return re.sub(r"\\(.)", r"\1", m.group(1))


class CorruptSeed(Exception):
    pass


class ReplicantLB:
    """mria_lb on a replicant, its links to the chosen cores and its view of the cluster."""

    def __init__(self, mgr):
        self.mgr = mgr
        self.log = mgr.log
        self.core_nodes = []          # mria_lb's #s.core_nodes: the chosen core cluster
        self.core_info = {}
        self.upstream = None          # the core the shards replicate from
        self.bootstrapped = False     # the upstream's data has been copied since mria (re)started
        self.links = {}               # core -> heartbeat task
        self.kicks = {}
        self.rep_lists = {}           # core -> the running replicants it reports
        self.replicants = set()       # replicants this node knows to be running (pinged)
        self.suppressed = set()       # nodes announced as leaving (mria_membership {leaving, Node})
        self.shards_up = asyncio.Event()
        self.on_shards_up = None      # callback(first_time) set by the node
        self.task = None
        self.probe_task = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._license_logged = set()

    # ------------------------------------------------------------------ seed file
    def seed_path(self):
        return os.path.join(self.mgr.state_dir, SEED_FILE)

    def read_seed(self):
        try:
            with open(self.seed_path(), encoding="utf-8") as fh:
                text = fh.read()
        except FileNotFoundError:
            return None
        node = parse_seed(text)
        if node is None:
            raise CorruptSeed(self.seed_path())
        return node

    def write_seed(self, node):
        os.makedirs(self.mgr.state_dir, exist_ok=True)
        with open(self.seed_path(), "w", encoding="utf-8") as fh:
            fh.write(format_seed(node))

    def delete_seed(self):
        try:
            os.unlink(self.seed_path())
        except FileNotFoundError:
            pass

    # ------------------------------------------------------------------ lifecycle
    def start(self):
        self._stopping = False
        self.task = asyncio.ensure_future(self._run())
        if self.probe_task is None:
            self.probe_task = asyncio.ensure_future(self._health_probe())

    async def stop(self):
        self._stopping = True
        for t in (self.task, self.probe_task):
            if t is not None:
                t.cancel()
        self.task = self.probe_task = None
        for t in list(self.links.values()):
            t.cancel()
        self.links.clear()

    async def restart(self):
        """mria stops and starts again (a join or a leave): new membership (new guid), no cores known
        until the next discovery, shards down, the data bootstrapped again from the next upstream."""
        from .cluster import _new_guid
        if self.task is not None:
            self.task.cancel()
        for t in list(self.links.values()):
            t.cancel()
        self.links.clear()
        for n in list(self.mgr.up):
            self.mgr._mark_down(n, quiet=True)
        self.rep_lists.clear()
        self.replicants.clear()
        self.suppressed.clear()
        self.core_nodes = []
        self.core_info = {}
        self.upstream = None
        self.bootstrapped = False
        self.shards_up.clear()
        self.mgr.member_guid = _new_guid()
        self.task = asyncio.ensure_future(self._run())

    async def _sleep(self, seconds):
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def _run(self):
        interval = LB_POLL_INTERVAL                        # start_timer(0)
        await self._sleep(interval + random.uniform(0.001, interval))
        while not self._stopping:
            t0 = time.monotonic()
            try:
                await self.update()
            except CorruptSeed as e:
                # manual_seed/0: logger:critical and exit(corrupt_seed): mria_lb keeps crashing, mria
                # (a permanent application) stops, so does the node
                self.log("critical", '"%s" is corrupt. Delete this file and re-join the node to the cluster. '
                         'Stopping.' % e)
                self.mgr.node.exit_code = 1
                self.mgr.node.request_stop()
                return
            except asyncio.CancelledError:
                raise
            except Exception as e:   # keep balancing
                self.log("error", "msg: mria_lb_update_failed, reason: %r" % (e,))
            interval = max(0.1, LB_POLL_INTERVAL - (time.monotonic() - t0))
            await self._sleep(interval + random.uniform(0.001, interval))

    # ------------------------------------------------------------------ discovery
    async def _call(self, node, op, timeout, **args):
        return await self.mgr._call(node, op, timeout=timeout, **args)

    async def _lb_info(self, node):
        from .cluster import NodeDown
        try:
            return await asyncio.wait_for(self._call(node, "lb_info", LB_TIMEOUT), LB_TIMEOUT + 0.5)
        except (NodeDown, RuntimeError, asyncio.TimeoutError, OSError, ValueError):
            return None

    async def _lb_infos(self, nodes):
        nodes = list(dict.fromkeys(nodes))
        infos = await asyncio.gather(*(self._lb_info(n) for n in nodes))
        return {n: i for n, i in zip(nodes, infos) if i is not None}

    async def discover_nodes(self):
        """discover_nodes/0: the manual seed overrides everything; else the discovery callback while
        core node discovery is enabled; else nothing."""
        seed = self.read_seed()
        if seed is not None:
            return await self._discover_manually(seed)
        if not self.mgr.core_discovery:
            return []
        return await self.mgr.core_node_discovery()

    async def _discover_manually(self, seed):
        """discover_manually/1: mria_mnesia:db_nodes() on the seed, or [Seed] when that fails."""
        from .cluster import NodeDown
        try:
            resp = await asyncio.wait_for(self._call(seed, "db_nodes", LB_TIMEOUT), LB_TIMEOUT + 0.5)
            nodes = resp.get("db_nodes")
            if isinstance(nodes, list):
                return nodes
        except (NodeDown, RuntimeError, asyncio.TimeoutError, OSError, ValueError):
            pass
        return [seed]

    def _compatible(self, info):
        """verify_node_compatibility/1 with emqx_machine:mria_lb_custom_info_check/1: the core's
        `emqx` application version must be this node's (undefined never is)."""
        other = info.get("custom_info")
        return other is not None and other == emqx_app_vsn()

    async def update(self):
        """mria_lb:do_update/1."""
        discovered = await self.discover_nodes()
        infos = await self._lb_infos(discovered)
        additional = sorted({n for i in infos.values() for n in (i.get("db_nodes") or [])} - set(discovered))
        infos.update(await self._lb_infos(additional))
        cores = {}
        for n, i in infos.items():
            if not (i.get("running") and i.get("discovery_enabled", True) and i.get("whoami") == "core"):
                continue
            if i.get("license_refused"):
                # (stand-in) a single-node-licensed core takes no replicant, as it takes no joining core
                if n not in self._license_logged:
                    self._license_logged.add(n)
                    self.log("error", "msg: core_node_refuses_replicant, node: %s, reason: %s"
                             % (erlfmt.atom(n), i["license_refused"]))
                continue
            cores[n] = i
        clusters = find_clusters({n: list(i.get("db_nodes") or []) for n, i in cores.items()})
        changed, new = find_best_cluster(self.core_nodes, clusters)
        if changed:
            self.log("info", "msg: mria_lb_core_discovery_new_nodes, previous_cores: %s, returned_cores: %s, "
                     "ignored_nodes: %s, node: %s"
                     % (erlfmt.term_list(self.core_nodes), erlfmt.term_list(new),
                        erlfmt.term_list([n for n in discovered if n not in new]), erlfmt.atom(self.mgr.name)))
        self.core_nodes = new
        self.core_info = {n: cores[n] for n in new}
        compatible = [n for n in new if self._compatible(cores[n])]
        if self.upstream not in compatible:
            old = self.upstream
            # shard_badness/1: the core with the fewest replicant agents (plus rand:uniform())
            self.upstream = (min(compatible, key=lambda n: float(cores[n].get("agents", 0)) + random.random())
                             if compatible else None)
            if self.upstream != old:
                self.bootstrapped = False
                if self.upstream is None:
                    self.shards_up.clear()
        # a ping to every new core (ping_new_nodes/2): the nodes announced as leaving come back
        self.suppressed.difference_update(new)
        for c in new:
            if c not in self.links:
                self.links[c] = asyncio.ensure_future(self._link(c))
            elif c in self.kicks and c == self.upstream and not self.bootstrapped:
                self.kicks[c].set()
        for c in list(self.links):
            if c not in new:
                self.links.pop(c).cancel()
                self._core_down(c, quiet=True)
        self._sync_replicants()

    # ------------------------------------------------------------------ links to the cores
    def _hb_args(self, core):
        st = self.mgr.state
        return {"cluster_id": st.get("cluster_id"), "guid": self.mgr.member_guid,
                "data": st.get("data") if self.bootstrapped else {}, "upstream": core == self.upstream}

    async def _link(self, core):
        from .cluster import DistConn, NodeDown, HEARTBEAT_INTERVAL, HEARTBEAT_TIMEOUT
        mgr = self.mgr
        backoff = 0.5
        while not self._stopping:
            conn = None
            try:
                conn = await DistConn.open(mgr.name, mgr.cookie, core, inet6=mgr.inet6, log=mgr.log)
                while True:
                    resp = await conn.call("rheartbeat", timeout=HEARTBEAT_TIMEOUT, **self._hb_args(core))
                    if resp.get("error"):
                        raise NodeDown(resp["error"])
                    self._on_reply(core, resp)
                    kick = self.kicks.setdefault(core, asyncio.Event())
                    kick.clear()
                    try:
                        await asyncio.wait_for(kick.wait(), HEARTBEAT_INTERVAL)
                    except asyncio.TimeoutError:
                        pass
            except asyncio.CancelledError:
                if conn:
                    conn.close()
                raise
            except (NodeDown, RuntimeError, OSError, KeyError, ValueError) as e:
                self.log("debug", "replicant heartbeat to %s: %s" % (core, e))
            if conn:
                conn.close()
            # the core's mria_membership is down: mnesia stopped for it, and mria_lb updates at once
            self._core_down(core)
            self._wake.set()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    def _on_reply(self, core, resp):
        mgr = self.mgr
        mgr._mark_up(core)
        self.rep_lists[core] = [r for r in resp.get("replicants", []) if r != mgr.name]
        cid = resp.get("cluster_id")
        if core == self.upstream:
            if not self.bootstrapped or cid != mgr.state.get("cluster_id"):
                # the shards bootstrap from the upstream: the local copy is replaced
                mgr.state = {"cluster_id": cid, "clock": int(resp.get("clock", 0)),
                             "members": resp.get("members") or {}, "data": resp.get("data") or {}}
                for table in ("users", "api_keys", "authn_users"):
                    mgr.state["data"].setdefault(table, {})
                self.bootstrapped = True
            else:
                mgr.state["members"] = resp.get("members") or {}
                mgr.merge_data(resp.get("data") or {}, int(resp.get("clock", 0)))
            if not self.shards_up.is_set():
                self.shards_up.set()
                if self.on_shards_up is not None:
                    self.on_shards_up()
        elif self.bootstrapped and cid == mgr.state.get("cluster_id"):
            mgr.merge_data(resp.get("data") or {}, int(resp.get("clock", 0)))
        self._sync_replicants()

    def _core_down(self, core, quiet=False):
        self.mgr._mark_down(core, quiet=quiet)
        self.rep_lists.pop(core, None)
        if core == self.upstream:
            self.upstream = None
            self.bootstrapped = False
            self.shards_up.clear()
        self._sync_replicants()

    def _sync_replicants(self):
        mgr = self.mgr
        known = set()
        for c, lst in self.rep_lists.items():
            if c in mgr.up:
                known.update(lst)
        known.discard(mgr.name)
        # a node announced as leaving stays out until the cores stop listing it; listed again after
        # that, it has come back (a new mria membership) and is pinged as a new node
        for s in list(self.suppressed):
            if s not in known and s not in self.core_nodes:
                self.suppressed.discard(s)
        known -= self.suppressed
        for r in known - self.replicants:
            mgr._mark_up(r)
        for r in self.replicants - known:
            mgr._mark_down(r, quiet=True)
        self.replicants = known

    def kick(self):
        """Send the local changes to the cores now (a write on a replicant goes to a core)."""
        for ev in self.kicks.values():
            ev.set()

    # ------------------------------------------------------------------ views
    def running_cores(self):
        """mria_membership:running_core_nodelist/0 on a replicant."""
        return sorted(c for c in self.core_nodes if c in self.mgr.up and c not in self.suppressed)

    def running_replicants(self):
        return sorted([self.mgr.name] + [r for r in self.replicants if r in self.mgr.up])

    def db_nodes(self):
        """mria:db_nodes_maybe_rpc/0: the Mnesia db_nodes of a core a shard is up with, else []."""
        if not self.shards_up.is_set():
            return []
        return sorted(n for n, e in (self.mgr.state.get("members") or {}).items() if e.get("in"))

    def announce_leaving(self, node):
        """{leaving, Node} received: the node is no longer running here until it is pinged again."""
        self.suppressed.add(node)
        if node in self.replicants:
            self.replicants.discard(node)
            self.mgr._mark_down(node, quiet=True)
        elif node in self.core_nodes:
            self.mgr._mark_down(node, quiet=True)

    # ------------------------------------------------------------------ health probe
    async def _health_probe(self):
        """emqx_machine_replicant_health_probe: 10 s after the start, then every 30 s, warn when no known
        core runs this node's version."""
        await asyncio.sleep(HEALTH_PROBE_FIRST)
        while True:
            try:
                await self._check_core_node_count()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.log("debug", "replicant health probe: %r" % (e,))
            await asyncio.sleep(HEALTH_PROBE_EVERY)

    async def _check_core_node_count(self):
        from .cluster import NodeDown
        known = list(self.core_nodes)

        async def one(n):
            try:
                r = await asyncio.wait_for(self._call(n, "lb_info", HEALTH_PROBE_TIMEOUT), HEALTH_PROBE_TIMEOUT)
                return ("ok", r.get("custom_info"))
            except (NodeDown, RuntimeError, asyncio.TimeoutError, OSError, ValueError) as e:
                return ("error", str(e) or type(e).__name__)
        results = await asyncio.gather(*(one(n) for n in known))
        if any(kind == "ok" and v is not None and v == emqx_app_vsn() for kind, v in results):
            return
        parts = []
        for n, (kind, v) in sorted(zip(known, results)):
            if kind == "ok":
                parts.append('%s => #{version => %s}' % (erlfmt.atom(n), '"%s"' % v if v is not None else "undefined"))
            else:
                parts.append('%s => #{probe_failure => %s}' % (erlfmt.atom(n), v))
        self.log("warning", "msg: no_available_core_node_at_same_version, hint: %s, known_cores: #{%s}"
                 % (PROBE_HINT, ",".join(parts)))


# ---------------------------------------------------------------------------------------------
# emqx_conf_app: the cluster config a replicant copies from a core at every (re)start of its apps

def collect_data_files(data_dir):
    """emqx_conf_app:sync_data_from_node/0: the regular files under data_dir/authz and data_dir/certs
    (symlinks and other non-regular files dropped), by data_dir-relative path."""
    out = {}
    for sub in CONF_SYNC_DATA_DIRS:
        top = os.path.join(data_dir, sub)
        for root, _dirs, files in os.walk(top):
            for f in files:
                p = os.path.join(root, f)
                if os.path.islink(p) or not os.path.isfile(p):
                    continue
                try:
                    with open(p, "rb") as fh:
                        out[os.path.relpath(p, data_dir)] = base64.b64encode(fh.read()).decode("ascii")
                except OSError:
                    continue
    return out


def write_data_files(data_dir, files):
    for rel, b64 in files.items():
        if rel.startswith("/") or ".." in rel.split("/"):
            continue
        dest = os.path.join(data_dir, rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "wb") as fh:
            fh.write(base64.b64decode(b64))
