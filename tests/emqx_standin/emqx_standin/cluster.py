"""Clustering for the EMQX stand-in.

Two TCP services per node, as EMQX has:
- "dist" on host:4370+N (Erlang distribution stand-in): cookie challenge handshake, membership,
  heartbeats, cluster operations and the CLI's control channel (the CLI connects like a hidden node).
- "rpc" on host:5370+N (gen_rpc stand-in, stateless port discovery; `rpc.port_discovery = manual`
  uses rpc.server_port): forwarding of PUBLISHes between nodes. TLS when rpc.protocol = ssl.
N is the number that ends the node name's first part (emqx1@h -> 4371/5371).

Membership (mnesia/mria stand-in) is a last-writer-wins map node -> {in, v} plus the cluster-wide
data (dashboard users, API keys, the built-in database's MQTT users), gossiped with every heartbeat and persisted under
node.data_dir/mnesia/<node name>/. Joining adopts the target cluster's id, members and data.

Retained messages (retainer.py, the emqx_retainer_message table) are not gossiped: a write or delete
goes to every running peer as a `{"t": "retainer", ...}` frame on the rpc channel (ordered with the
PUBLISH forwards, as mria:dirty_write_sync writes to every running core), and a node that boots or
joins copies the whole table from a running peer with the dist op `retainer_copy`.
"""

import asyncio
import hashlib
import hmac
import ipaddress
import json
import os
import random
import re
import secrets
import socket
import ssl
import struct
import time

from . import dnsquery, erlfmt, etcdclient
from .broker import Message
from .rlog import ReplicantLB, emqx_app_vsn

DIST_BASE = 4370
RPC_BASE = 5370
HEARTBEAT_INTERVAL = 1.0
HEARTBEAT_TIMEOUT = 4.0
CONNECT_TIMEOUT = 3.0
# ekka_autocluster: ?DISCOVER_AND_JOIN_RETRY_INTERVAL is 5000 ms, a macro (not configurable); a
# strategy whose lock/1 returns `ignore` (static) sleeps rand:uniform(3000) ms before discovering
AUTOCLUSTER_RETRY_INTERVAL = 5.0
AUTOCLUSTER_LOCK_IGNORE_SLEEP = 3.0


class NodeDown(Exception):
    pass


# Erlang distribution over TLS (ssldist.DistTLS) when cluster.proto_dist is inet_tls / inet6_tls: set once
# per process (the node at boot, the CLI before it connects), used by every dist listener and connection
DIST_TLS = None


def set_dist_tls(tls):
    global DIST_TLS
    DIST_TLS = tls


def _client_tls(target):
    """(ssl context, server_hostname) for a dist connection to `target`, or (None, None)."""
    tls = DIST_TLS
    if tls is None:
        return None, None
    return tls.client_ctx, tls.server_hostname(node_host(target)) or ""


class DiscoveryError(Exception):
    pass


class NoProc(Exception):
    """gen_server:call/3 to a process that is not running (exit noproc)."""


# ---------------------------------------------------------------------------------------------
# ekka_cluster_etcd (ekka 0.23.2, v3 API) over etcdclient.py

# ekka_cluster_etcd:init/1: eetcd_lease:grant(?MODULE, 5): the lease TTL is 5 s, whatever node_ttl says
# (node_ttl is read by the v2 code only)
ETCD_LEASE_TTL = 5
# eetcd_lease: keepalive every max(round(TTL / 3), 1) s; a broken stream is retried every 1 s, and given
# up (the keepalive process stops, so does the linked ekka_cluster_etcd) once it has been down longer than
# the TTL and LeaseTimeToLive fails
ETCD_KEEPALIVE_INTERVAL = max(int(ETCD_LEASE_TTL / 3.0 + 0.5), 1)
ETCD_KEEPALIVE_RETRY = 1.0
# ekka_cluster_sup: {one_for_one, 10, 100} with ekka_cluster_etcd permanent; ekka_cluster_sup itself is a
# temporary child of ekka_sup: past 10 restarts in 100 s it is gone until ekka restarts
ETCD_MAX_RESTARTS, ETCD_RESTART_PERIOD = 10, 100.0


class EkkaEtcd:
    """The ekka_cluster_etcd gen_server: one etcd connection and one lease per start; keys
    <prefix>/ekkacl/nodes/<node> (value: the node name, with the lease) and the lock <prefix>/ekkacl/lock/."""

    def __init__(self, mgr):
        self.mgr = mgr
        self.log = mgr.log
        etcd = mgr.conf["cluster"].get("etcd") or {}
        self.servers = list(etcd.get("server") or [])
        self.prefix = str(etcd.get("prefix", "emqxcl"))
        self.ssl_options = etcd.get("ssl_options") or etcd.get("ssl") or {}
        self.client = None
        self.lease = None
        self.lock_key = None        # persistent_term ekka_cluster_etcd_lock_key
        self.running = False
        self.dead = False           # ekka_cluster_sup gave up (or ekka failed to restart)
        self.restarts = []
        self._keepalive = None

    # keys
    def nodes_key(self):
        return self.prefix + "/ekkacl/nodes/"

    def node_key(self):
        return self.nodes_key() + self.mgr.name

    def lock_name(self):
        return self.prefix + "/ekkacl/lock/"

    def _ssl_ctx(self):
        o = self.ssl_options
        if not o or not o.get("enable", False):   # ekka ssl_options/1; EMQX's ssl_client_opts enable = false
            return None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        if str(o.get("verify", "verify_none")) == "verify_peer":
            ctx.verify_mode = ssl.CERT_REQUIRED
            if o.get("cacertfile"):
                ctx.load_verify_locations(o["cacertfile"])
        else:
            ctx.verify_mode = ssl.CERT_NONE
        if o.get("certfile"):
            ctx.load_cert_chain(o["certfile"], o.get("keyfile") or None)
        return ctx

    async def start(self):
        """ekka_cluster_etcd:init/1. Raises RuntimeError (the crash) when etcd cannot be used."""
        try:
            hosts = etcdclient.endpoints(self.servers)
        except etcdclient.EndpointError as e:
            raise RuntimeError("ekka_cluster_etcd:init/1 crashed: %s" % e)
        if self.client is not None:
            self.client.close()
        self.client = etcdclient.Client(hosts, ssl_ctx=self._ssl_ctx(), log=self.log)
        try:
            await self.client.open()
        except etcdclient.EtcdError as e:
            self.client.close()
            raise RuntimeError("ekka_cluster_etcd:init/1 crashed: {badmatch,%s} (eetcd:open/3)" % e.reason)
        try:
            self.lease = await self.client.lease_grant(ETCD_LEASE_TTL)
            ttl = await self.client.lease_keepalive(self.lease)    # eetcd_lease:keep_alive/2's first one
            if ttl <= 0:
                raise etcdclient.EtcdError("etcdserver: requested lease not found", 5)
        except etcdclient.EtcdError as e:
            self.client.close()
            raise RuntimeError("ekka_cluster_etcd:init/1 crashed: {badmatch,{error,%s}} (eetcd_lease)" % e.reason)
        self.running = True
        self._keepalive = asyncio.ensure_future(self._keepalive_loop(self.lease))
        self.log("info", "Ekka(etcd): connected to %s, lease %x" % (",".join("%s:%d" % h for h in hosts), self.lease))

    async def stop(self):
        """terminate/2: revoke the lease (its keys, the node key and a held lock, go with it), close."""
        self.running = False
        if self._keepalive is not None and self._keepalive is not asyncio.current_task():
            self._keepalive.cancel()
        self._keepalive = None
        if self.client is not None and self.lease is not None:
            try:
                await asyncio.wait_for(self.client.lease_revoke(self.lease), 5.0)
            except (etcdclient.EtcdError, asyncio.TimeoutError):
                pass
        if self.client is not None:
            self.client.close()
        self.lease = None

    async def _keepalive_loop(self, lease):
        down_since = None
        while self.running and self.lease == lease:
            try:
                ttl = await self.client.lease_keepalive(lease)
                down_since = None
            except etcdclient.EtcdError as e:
                now = time.monotonic()
                down_since = down_since or now
                if now - down_since > ETCD_LEASE_TTL:
                    try:
                        await self.client.lease_time_to_live(lease)
                        down_since = None
                    except etcdclient.EtcdError as e2:
                        return await self._crashed("KeepAliveHalted, lease %x: %s" % (lease, e2.reason))
                self.log("debug", "Ekka(etcd): lease keepalive: %s" % e.reason)
                await asyncio.sleep(ETCD_KEEPALIVE_RETRY)
                continue
            if ttl <= 0:
                return await self._crashed("KeepAliveHalted, lease %x: etcdserver: requested lease not found"
                                           % lease)
            await asyncio.sleep(ETCD_KEEPALIVE_INTERVAL)

    async def _crashed(self, reason):
        """The keepalive process stopped; the linked ekka_cluster_etcd stops too and ekka_cluster_sup
        restarts it (a new connection and a new lease; nothing puts the node key again)."""
        self.log("error", "Ekka(etcd): ekka_cluster_etcd terminating: %s" % reason)
        self.running = False
        self._keepalive = None
        if self.client is not None:
            self.client.close()
        self.lease = None     # (the lock key stays: ekka keeps it in a persistent_term)
        while True:
            now = time.monotonic()
            self.restarts = [t for t in self.restarts if now - t < ETCD_RESTART_PERIOD] + [now]
            if len(self.restarts) > ETCD_MAX_RESTARTS:
                self.dead = True
                self.log("error", "Ekka(etcd): ekka_cluster_sup reached_max_restart_intensity: shutdown "
                         "(no etcd client until ekka restarts)")
                return
            try:
                await self.start()
                return
            except RuntimeError as e:
                self.log("error", "Ekka(etcd): %s" % e)

    def _check(self):
        if not self.running or self.dead:
            raise NoProc("{noproc,{gen_server,call,[ekka_cluster_etcd,...]}}")

    # ekka_cluster_strategy callbacks; {error, Reason} is ("error", text)
    async def discover(self):
        """v3_discover: key <prefix>/ekkacl/nodes/, range_end "\0" (every key >= it, in the whole
        keyspace), sorted by key; the VALUES are the node names (binary_to_atom)."""
        self._check()
        try:
            kvs = await self.client.range_from(self.nodes_key())
        except etcdclient.EtcdError as e:
            return ("error", e.reason)
        return [v.decode("utf-8", "replace") for _k, v in kvs]

    async def lock(self):
        self._check()
        try:
            self.lock_key = await self.client.lock(self.lock_name(), self.lease)
        except etcdclient.EtcdError as e:
            return ("error", e.reason)
        return "ok"

    async def unlock(self):
        self._check()
        if self.lock_key is None:
            return ("error", "lock_lose")
        try:
            await self.client.unlock(self.lock_key)
        except etcdclient.EtcdError as e:
            return ("error", e.reason)
        self.lock_key = None
        return "ok"

    async def register(self):
        self._check()
        try:
            await self.client.put(self.node_key(), self.mgr.name, lease=self.lease)
        except etcdclient.EtcdError as e:
            return ("error", e.reason)
        return "ok"

    async def unregister(self):
        self._check()
        try:
            await self.client.delete(self.node_key())
        except etcdclient.EtcdError as e:
            return ("error", e.reason)
        return "ok"

    async def ekka_restart(self):
        """mria:join/leave restart mria, whose stop/start callbacks stop and start ekka: this process
        terminates (lease revoked) and a new one starts (new lease). A failed start is a crashed mria
        callback, only logged: ekka then runs without its etcd process."""
        if not self.running and not self.dead:
            return
        await self.stop()
        self.dead = False
        self.restarts = []
        try:
            await self.start()
        except RuntimeError as e:
            self.dead = True
            self.log("error", "Mria callback crashed: callback: start, %s" % e)


# ---------------------------------------------------------------------------------------------
# names, hosts, ports

def name_offset(node_name):
    m = re.search(r"([0-9]+)$", node_name.split("@", 1)[0])
    return int(m.group(1)) if m else 0


def dist_port(node_name):
    return DIST_BASE + name_offset(node_name)


def rpc_port(node_name, rpc_conf=None):
    rpc_conf = rpc_conf or {}
    if rpc_conf.get("port_discovery") == "manual":
        p = rpc_conf.get("server_port", 5369)
        return int(str(p).rsplit(":", 1)[-1])
    return RPC_BASE + name_offset(node_name)


def node_host(node_name):
    return node_name.split("@", 1)[1] if "@" in node_name else "127.0.0.1"


def resolve_host(host, inet6=False):
    h = host.strip("[]")
    try:
        return str(ipaddress.ip_address(h))
    except ValueError:
        pass
    fams = (socket.AF_INET6, socket.AF_INET) if inet6 else (socket.AF_INET, socket.AF_INET6)
    for fam in fams:
        try:
            infos = socket.getaddrinfo(h, None, fam, socket.SOCK_STREAM)
            if infos:
                return infos[0][4][0]
        except OSError:
            continue
    raise NodeDown("cannot resolve %s" % host)


def bind_address(node_name, inet6=False):
    """Address the node's cluster services bind: the name's address when it is a loopback one
    (so several nodes can share a machine), otherwise all addresses, as Erlang does."""
    try:
        ip = resolve_host(node_host(node_name), inet6)
    except NodeDown:
        return "::" if inet6 else "0.0.0.0"
    if ipaddress.ip_address(ip).is_loopback:
        return ip
    return "::" if inet6 or ":" in ip else "0.0.0.0"


def parse_name(snode, self_name):
    """ekka_node:parse_name/1: 'emqx' -> 'emqx@<this host>'."""
    if "@" in snode:
        return snode
    return "%s@%s" % (snode, node_host(self_name))


def digest(cookie, challenge):
    return hmac.new(cookie.encode(), challenge.encode(), hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------------------------------
# dist wire protocol: newline-delimited JSON

async def _send(writer, obj):
    writer.write(json.dumps(obj, separators=(",", ":")).encode() + b"\n")
    await writer.drain()


async def _recv(reader, timeout):
    line = await asyncio.wait_for(reader.readline(), timeout)
    if not line:
        raise ConnectionError("closed")
    return json.loads(line)


class DistConn:
    """Client side of a dist connection (async)."""

    def __init__(self, reader, writer, peer):
        self.reader = reader
        self.writer = writer
        self.peer = peer
        self._id = 0
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, self_name, cookie, target, hidden=False, timeout=CONNECT_TIMEOUT, inet6=False, log=None):
        try:
            host = resolve_host(node_host(target), inet6)
            ctx, sni = _client_tls(target)
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, dist_port(target), ssl=ctx, server_hostname=sni), timeout)
        except ssl.SSLError as e:
            # inet_tls_dist: ssl:connect/4 failed (the peer's certificate, or ours, was refused)
            if log:
                log("warning", "TLS distribution connection to node %s failed: %s" % (erlfmt.atom(target), e))
            raise NodeDown("TLS handshake failed: %s" % e)
        except (OSError, asyncio.TimeoutError, NodeDown) as e:
            raise NodeDown(str(e) or "connect failed")
        try:
            await _send(writer, {"t": "hello", "from": self_name, "to": target, "hidden": hidden})
            ch = await _recv(reader, timeout)
            if ch.get("t") != "challenge":
                raise NodeDown("refused: %s" % ch.get("reason"))
            mine = secrets.token_hex(16)
            await _send(writer, {"t": "reply", "digest": digest(cookie, ch["challenge"]), "challenge": mine})
            ack = await _recv(reader, timeout)
            if ack.get("t") != "ack":
                raise NodeDown("refused")
            if not hmac.compare_digest(ack.get("digest", ""), digest(cookie, mine)):
                if log:
                    log("error", "** Connection attempt to node %s cancelled. Invalid challenge ack. **"
                        % erlfmt.atom(target))
                raise NodeDown("invalid challenge ack")
        except (OSError, asyncio.TimeoutError, ValueError, ConnectionError, KeyError) as e:
            writer.close()
            raise NodeDown(str(e) or "handshake failed")
        except NodeDown:
            writer.close()
            raise
        return cls(reader, writer, target)

    async def call(self, op, timeout=10.0, **args):
        async with self._lock:
            self._id += 1
            req = dict(args, op=op, id=self._id)
            try:
                await _send(self.writer, req)
                resp = await _recv(self.reader, timeout)
            except (OSError, asyncio.TimeoutError, ValueError, ConnectionError) as e:
                self.close()
                raise NodeDown(str(e) or "call failed")
            if "error" in resp and resp.get("exception"):
                raise RuntimeError(resp["error"])
            return resp

    def close(self):
        try:
            self.writer.close()
        except Exception:
            pass


def sync_call(self_name, cookie, target, op, timeout=10.0, **args):
    """Blocking one-shot call (for the CLI). Raises NodeDown."""
    try:
        host = resolve_host(node_host(target))
        sock = socket.create_connection((host, dist_port(target)), timeout=CONNECT_TIMEOUT)
        ctx, sni = _client_tls(target)
        if ctx is not None:
            try:
                sock = ctx.wrap_socket(sock, server_hostname=sni or None)
            except OSError:
                sock.close()
                raise
    except OSError as e:
        raise NodeDown(str(e))
    f = sock.makefile("rwb")

    def send(obj):
        f.write(json.dumps(obj).encode() + b"\n")
        f.flush()

    def recv():
        line = f.readline()
        if not line:
            raise NodeDown("closed")
        return json.loads(line)

    try:
        send({"t": "hello", "from": self_name, "to": target, "hidden": True})
        ch = recv()
        if ch.get("t") != "challenge":
            raise NodeDown("refused")
        mine = secrets.token_hex(16)
        send({"t": "reply", "digest": digest(cookie, ch["challenge"]), "challenge": mine})
        ack = recv()
        if ack.get("t") != "ack" or not hmac.compare_digest(ack.get("digest", ""), digest(cookie, mine)):
            raise NodeDown("handshake failed")
        sock.settimeout(timeout)
        send(dict(args, op=op, id=1))
        return recv()
    except (OSError, ValueError) as e:
        raise NodeDown(str(e))
    finally:
        try:
            f.close()
            sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------------------------------------
# gen_rpc stand-in framing: 4-byte length + JSON

def _frame(obj):
    data = json.dumps(obj, separators=(",", ":")).encode()
    return struct.pack("!I", len(data)) + data


async def _read_frame(reader):
    hdr = await reader.readexactly(4)
    (n,) = struct.unpack("!I", hdr)
    if n > 256 * 1024 * 1024:
        raise ValueError("frame too large")
    return json.loads(await reader.readexactly(n))


class _RpcSender:
    def __init__(self, mgr, peer):
        self.mgr = mgr
        self.peer = peer
        self.queue = asyncio.Queue(maxsize=200000)
        self.task = asyncio.ensure_future(self.run())
        self.writer = None

    def send(self, frame):
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.mgr.log("warning", "rpc queue to %s is full, message dropped" % self.peer)

    async def flush(self, timeout):
        """Wait until every queued frame has been handed to the socket (graceful stop)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            w = self.writer
            if self.queue.empty() and w is not None and w.transport.get_write_buffer_size() == 0:
                return True
            await asyncio.sleep(0.02)
        return False

    async def run(self):
        mgr = self.mgr
        while True:
            try:
                host = resolve_host(node_host(self.peer), mgr.inet6)
                ctx = mgr.rpc_client_ssl()
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, rpc_port(self.peer, mgr.rpc_conf), ssl=ctx,
                                            server_hostname=None if ctx is None else ""),
                    CONNECT_TIMEOUT)
                self.writer = writer
                writer.write(_frame({"from": mgr.name, "cluster_id": mgr.state["cluster_id"]}))
                await writer.drain()
                # the server accepts or refuses the hello: nothing is written into a refused connection
                ack = await asyncio.wait_for(_read_frame(reader), CONNECT_TIMEOUT)
                if not ack.get("ok"):
                    raise ConnectionError("refused by %s" % self.peer)
                while True:
                    frame = await self.queue.get()
                    writer.write(frame)
                    if writer.transport.get_write_buffer_size() > 1 << 20:
                        await writer.drain()
                    elif self.queue.empty():
                        await writer.drain()
            except asyncio.CancelledError:
                if self.writer:
                    self.writer.close()
                raise
            except Exception as e:  # connection problems: retry
                if self.writer:
                    self.writer.close()
                    self.writer = None
                mgr.log("debug", "rpc connection to %s: %s" % (self.peer, e))
                await asyncio.sleep(0.5)

    def stop(self):
        self.task.cancel()


# ---------------------------------------------------------------------------------------------
# the manager

class ClusterManager:
    def __init__(self, node):
        self.node = node
        self.conf = node.conf
        self.name = node.name
        self.cookie = node.conf["node"]["cookie"]
        self.rpc_conf = node.conf["rpc"]
        self.inet6 = node.conf["cluster"]["proto_dist"] in ("inet6_tcp", "inet6_tls")
        self.log = node.log
        self.state_dir = os.path.join(node.data_dir, "mnesia", self.name)
        self.state_file = os.path.join(self.state_dir, "cluster.json")
        self.state = None
        self.up = {}            # peer -> last heartbeat OK (monotonic) while connected
        self.links = {}         # peer -> task
        self.kicks = {}         # peer -> asyncio.Event that cuts a link's reconnect wait short
        self.senders = {}       # peer -> _RpcSender
        self.dist_server = None
        self.rpc_server = None
        self.op_lock = asyncio.Lock()
        # node.role (mria.node_role): core or replicant (replicant: enterprise only, schema.py)
        self.role = node.conf["node"].get("role", "core")
        # ekka:autocluster_enabled/0 (cluster_enable and a strategy other than manual/singleton); the
        # autocluster loop itself runs on cores only (ekka_autocluster:enabled/0)
        self.autocluster_enabled = node.conf["cluster"]["discovery_strategy"] not in ("manual", "singleton")
        self.autocluster_task = None
        # mria_config core_node_discovery (default true): `cluster leave` with autocluster configured
        # turns it off (ekka:disable_autocluster/0), `cluster discovery enable` on. A core that has it off
        # is ignored by replicants (mria_lb lb_callback discovery_enabled); a replicant stops discovering.
        self.core_discovery = True
        # core side: the replicants that ping this core (mria_membership replicant members, monitored)
        self.replicants = {}     # name -> {"conn", "guid", "seen", "upstream"}
        self.left_replicants = {}  # name -> guid announced as leaving (mria_membership status leaving)
        self.rsenders = {}       # rpc senders to replicants
        self._conn_seq = 0
        self.rlb = ReplicantLB(self) if self.role == "replicant" else None
        # ekka_cluster_sup starts ekka_cluster_etcd whenever the strategy is etcd (any role)
        self.etcd = EkkaEtcd(self) if node.conf["cluster"]["discovery_strategy"] == "etcd" else None
        self.first_boot = False
        # mria_membership's local member guid: made when mria (re)starts, i.e. at boot and again
        # after every join or leave; the smallest one is the "oldest" member (mria_membership:oldest)
        self.member_guid = _new_guid()
        self._stopping = False
        self._rpc_ssl_server = None
        self._rpc_ssl_client = None

    # ------------------------------------------------------------------ state
    def load(self):
        os.makedirs(self.state_dir, exist_ok=True)
        if self.role == "replicant":
            # a replicant keeps no membership and no tables on disk: everything comes from a core
            # (its shards bootstrap at every mria start); only the seed file of `cluster join` stays
            self.state = {"cluster_id": None, "clock": 1, "members": {},
                          "data": {"users": {}, "api_keys": {}, "authn_users": {}}}
            return
        try:
            with open(self.state_file, encoding="utf-8") as fh:
                self.state = json.load(fh)
        except (OSError, ValueError):
            self.first_boot = True
            self.state = {"cluster_id": secrets.token_hex(8), "clock": 1,
                          "members": {self.name: {"in": True, "v": 1}},
                          "data": {"users": {}, "api_keys": {}}}
            self.save()
        self.state.setdefault("data", {}).setdefault("users", {})
        self.state["data"].setdefault("api_keys", {})
        self.state["data"].setdefault("authn_users", {})
        me = self.state["members"].get(self.name)
        if not me or not me.get("in"):
            self._reset_standalone("own membership entry missing")

    def save(self):
        if self.role == "replicant":
            return
        tmp = self.state_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(self.state, fh, indent=1, sort_keys=True)
        os.replace(tmp, self.state_file)

    def tick(self):
        self.state["clock"] = self.state.get("clock", 0) + 1
        return self.state["clock"]

    def _observe(self, v):
        if v > self.state.get("clock", 0):
            self.state["clock"] = v

    def members_in(self):
        """Mnesia db_nodes: the core members (stopped ones too). A replicant has the db_nodes of a core
        its shards are up with (mria:db_nodes_maybe_rpc/0), else none."""
        if self.role == "replicant":
            return self.rlb.db_nodes()
        return sorted(n for n, e in self.state["members"].items() if e.get("in"))

    def peers(self):
        """The other core members (a replicant has none: it is not in the Mnesia cluster)."""
        if self.role == "replicant":
            return []
        return [n for n in self.members_in() if n != self.name]

    def is_up(self, peer):
        return peer in self.up

    def running_replicants(self):
        """mria_membership:running_replicant_nodelist/0 on a core: replicants that ping this core,
        without those announced as leaving."""
        limit = time.monotonic() - (HEARTBEAT_TIMEOUT + HEARTBEAT_INTERVAL)
        return sorted(n for n, r in self.replicants.items()
                      if r["seen"] >= limit and self.left_replicants.get(n) != r["guid"])

    def running_core_nodes(self):
        """mria_membership:running_core_nodelist/0."""
        if self.role == "replicant":
            return self.rlb.running_cores()
        return sorted([self.name] + [p for p in self.peers() if self.is_up(p)])

    def running_nodes(self):
        """mria:running_nodes/0: running cores (a core: Mnesia's running db nodes) and running
        replicants (mria_membership), usort'ed."""
        if self.role == "replicant":
            return sorted(set(self.rlb.running_cores()) | set(self.rlb.running_replicants()))
        return sorted(set(self.running_core_nodes()) | set(self.running_replicants()))

    def cluster_nodes_all(self):
        """mria:cluster_nodes(all): running nodes and db_nodes (stopped replicants are never in it)."""
        return sorted(set(self.running_nodes()) | set(self.members_in()))

    def stopped_nodes(self):
        """mria:cluster_nodes(stopped) = all -- running: stopped cores only."""
        running = set(self.running_nodes())
        return sorted(n for n in self.cluster_nodes_all() if n not in running)

    def running_peers(self):
        return [n for n in self.running_nodes() if n != self.name]

    def core_nodes(self):
        """mria:cluster_nodes(cores): a core's db_nodes; a replicant's mria_lb:core_nodes/0."""
        if self.role == "replicant":
            return list(self.rlb.core_nodes)
        return self.members_in()

    def export(self):
        return {"cluster_id": self.state["cluster_id"], "clock": self.state["clock"],
                "members": self.state["members"], "data": self.state["data"]}

    def merge_data(self, data, clock=0):
        """Merge the cluster-wide tables only (record by record, the newer wins). Returns True when
        something changed."""
        changed = False
        self._observe(int(clock))
        for table in ("users", "api_keys", "authn_users"):
            mine_t = self.state["data"].setdefault(table, {})
            for key, rec in (data or {}).get(table, {}).items():
                if key not in mine_t or int(rec.get("v", 0)) > int(mine_t[key].get("v", 0)):
                    mine_t[key] = rec
                    changed = True
        if changed:
            self.save()
        return changed

    def merge(self, remote):
        """Merge a peer's state (same cluster id). Returns True when something changed."""
        changed = False
        self._observe(int(remote.get("clock", 0)))
        for name, e in remote.get("members", {}).items():
            mine = self.state["members"].get(name)
            if mine is None or _newer(e, mine):
                self.state["members"][name] = {"in": bool(e.get("in")), "v": int(e.get("v", 0))}
                changed = True
        for table in ("users", "api_keys", "authn_users"):
            mine_t = self.state["data"].setdefault(table, {})
            for key, rec in remote.get("data", {}).get(table, {}).items():
                if key not in mine_t or int(rec.get("v", 0)) > int(mine_t[key].get("v", 0)):
                    mine_t[key] = rec
                    changed = True
        if changed:
            if not self.state["members"].get(self.name, {}).get("in") and self.node.status != "joining":
                self.log("warning", "this node was removed from cluster %s; it now runs alone"
                         % self.conf["cluster"]["name"])
                self._reset_standalone("removed from the cluster")
            self.save()
            self.sync_links()
        return changed

    def _reset_standalone(self, why):
        v = self.tick()
        self.state["cluster_id"] = secrets.token_hex(8)
        self.state["members"] = {self.name: {"in": True, "v": v}}
        self.log("info", "node %s is standalone now (%s)" % (self.name, why))

    def set_member(self, name, is_in):
        v = max([int(e.get("v", 0)) for e in self.state["members"].values()] + [self.state["clock"]]) + 1
        self.state["clock"] = v
        self.state["members"][name] = {"in": is_in, "v": v}

    def put_records(self, table, items):
        """Write many records at once (a data import: mnesia:restore/2 with keep_tables)."""
        t = self.state["data"].setdefault(table, {})
        for key, rec in items:
            t[key] = dict(rec, v=self.tick())
        self.save()
        self.push_soon()

    def put_record(self, table, key, rec):
        rec = dict(rec, v=self.tick())
        self.state["data"].setdefault(table, {})[key] = rec
        self.save()
        self.push_soon()

    # ------------------------------------------------------------------ servers
    async def start(self):
        await self.start_servers()
        await self._initial_contact()
        self.sync_links()
        await self.copy_retained()
        # ekka_autocluster:enabled/0: configured andalso mria_config:role() =:= core
        if self.autocluster_enabled and self.role == "core":
            self.autocluster_task = asyncio.ensure_future(self._autocluster())

    async def start_replicant(self):
        """A replicant: the node is reachable (Erlang distribution, mria) while its applications wait
        for a core; mria_lb starts balancing."""
        await self.start_servers()
        self.rlb.start()

    async def start_servers(self):
        bind = bind_address(self.name, self.inet6)
        dport = dist_port(self.name)
        try:
            self.dist_server = await asyncio.start_server(
                self._serve_dist, bind, dport, reuse_address=True,
                ssl=DIST_TLS.server_ctx if DIST_TLS is not None else None)
        except OSError as e:
            raise RuntimeError("Protocol '" + self.conf["cluster"]["proto_dist"] + "': could not listen on %s:%d (%s); the name %s seems to be "
                               "in use by another Erlang node" % (bind, dport, e.strerror or e, self.name))
        rport = rpc_port(self.name, self.rpc_conf)
        self.rpc_tls_check()
        try:
            self.rpc_server = await asyncio.start_server(self._serve_rpc, bind, rport, reuse_address=True,
                                                         ssl=self.rpc_server_ssl())
        except OSError as e:
            raise RuntimeError("gen_rpc: could not listen on %s:%d (%s)" % (bind, rport, e.strerror or e))
        self.log("info", "cluster services on %s: dist %d, rpc %d" % (bind, dport, rport))

    async def start_ekka(self):
        """ekka:start/0 in emqx_machine:start/0, before the business apps: with the etcd strategy,
        ekka_cluster_sup starts ekka_cluster_etcd; its init/1 crashing fails ekka's start, so
        emqx_machine's, so the node's boot (RuntimeError here)."""
        if self.etcd is not None:
            await self.etcd.start()

    async def _initial_contact(self, timeout=3.0):
        """At boot, reach the running members once (as mria waits for its peers' tables)."""
        async def one(p):
            try:
                conn = await DistConn.open(self.name, self.cookie, p, inet6=self.inet6, timeout=1.5)
            except NodeDown:
                return
            try:
                resp = await conn.call("heartbeat", timeout=timeout, state=self.export())
                if resp.get("cluster_id") == self.state["cluster_id"]:
                    self.merge(resp["state"])
                    if p in self.peers():
                        self._mark_up(p)
            except (NodeDown, RuntimeError, KeyError):
                pass
            finally:
                conn.close()
        peers = self.peers()
        if peers:
            try:
                await asyncio.wait_for(asyncio.gather(*(one(p) for p in peers)), timeout)
            except asyncio.TimeoutError:
                pass

    async def stop(self):
        self._stopping = True
        if self.autocluster_task:
            self.autocluster_task.cancel()
        if self.etcd is not None:
            await self.etcd.stop()
        if self.rlb is not None:
            await self.rlb.stop()
        # hand what is queued for the peers (forwards, retained writes) to the sockets first
        pending = [s.flush(2.0) for s in self._rpc_targets()]
        if pending:
            await asyncio.gather(*pending)
        for t in list(self.links.values()):
            t.cancel()
        for s in list(self.senders.values()) + list(self.rsenders.values()):
            s.stop()
        self.rsenders.clear()
        for srv in (self.dist_server, self.rpc_server):
            if srv:
                srv.close()
        self.links.clear()
        self.senders.clear()
        self.up.clear()

    # gen_rpc 3.5.1 `include/ssl.hrl`, `src/driver/gen_rpc_driver_ssl.erl` `merge_ssl_options/1`: both sides
    # always {verify, verify_peer}; the server adds {fail_if_no_peer_cert, true}; the client
    # {server_name_indication, disable} (no host name check); certfile, keyfile, cacertfile come from rpc.*
    # only when set. Without a cacertfile, ssl refuses verify_peer ({options, incompatible, ...}, OTP
    # ssl.erl opt_cacerts/3): ssl:listen/2 fails, gen_rpc_server:init/1 stops, gen_rpc (so EMQX) does not start.
    def rpc_tls_check(self):
        if self.rpc_conf.get("protocol") != "ssl":
            return
        if not self.rpc_conf.get("cacertfile"):
            raise RuntimeError("{failed_to_start_app,gen_rpc,...}: gen_rpc_server_ssl failed_to_setup_server: "
                               "{options,incompatible,[{verify,verify_peer},{cacerts,undefined}]} "
                               "(rpc.protocol = ssl needs rpc.cacertfile)")

    def _rpc_ctx(self, role):
        c = self.rpc_conf
        if role == "server":
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        else:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_REQUIRED
        versions = [v for v in (c.get("tls_versions") or []) if v in ("tlsv1.2", "tlsv1.3")]
        if versions:
            vals = sorted(ssl.TLSVersion.TLSv1_2 if v == "tlsv1.2" else ssl.TLSVersion.TLSv1_3 for v in versions)
            ctx.minimum_version, ctx.maximum_version = vals[0], vals[-1]
        # ssl reads the files when a connection is set up: one it cannot read fails every handshake
        # (no certificate to offer, or no CA to verify the peer against), it does not stop the node
        if c.get("certfile"):
            try:
                ctx.load_cert_chain(c["certfile"], c.get("keyfile") or c["certfile"])
            except (OSError, ssl.SSLError) as e:
                self.log("error", "gen_rpc: cannot use rpc.certfile %s: %s" % (c["certfile"], e))
        if c.get("cacertfile"):
            try:
                ctx.load_verify_locations(c["cacertfile"])
            except (OSError, ssl.SSLError) as e:
                self.log("error", "gen_rpc: cannot use rpc.cacertfile %s: %s" % (c["cacertfile"], e))
        return ctx

    def rpc_server_ssl(self):
        if self.rpc_conf.get("protocol") != "ssl":
            return None
        if self._rpc_ssl_server is None:
            self._rpc_ssl_server = self._rpc_ctx("server")
        return self._rpc_ssl_server

    def rpc_client_ssl(self):
        if self.rpc_conf.get("protocol") != "ssl":
            return None
        if self._rpc_ssl_client is None:
            self._rpc_ssl_client = self._rpc_ctx("client")
        return self._rpc_ssl_client

    async def _serve_dist(self, reader, writer):
        peer = None
        replicant_peer = conn_id = None
        try:
            hello = await _recv(reader, CONNECT_TIMEOUT)
            if hello.get("t") != "hello":
                return
            peer = str(hello.get("from", "?"))
            if hello.get("to") != self.name:
                await _send(writer, {"t": "refused", "reason": "wrong_node_name"})
                self.log("error", "** Connection attempt from node %s rejected: it asked for %s **"
                         % (erlfmt.atom(peer), erlfmt.atom(hello.get("to"))))
                return
            challenge = secrets.token_hex(16)
            await _send(writer, {"t": "challenge", "name": self.name, "challenge": challenge})
            reply = await _recv(reader, CONNECT_TIMEOUT)
            if not hmac.compare_digest(str(reply.get("digest", "")), digest(self.cookie, challenge)):
                self.log("error", "** Connection attempt from node %s rejected. Invalid challenge reply. **"
                         % erlfmt.atom(peer))
                return
            await _send(writer, {"t": "ack", "digest": digest(self.cookie, str(reply.get("challenge", "")))})
            hidden = bool(hello.get("hidden"))
            self._conn_seq += 1
            conn_id = self._conn_seq
            while True:
                line = await reader.readline()
                if not line:
                    return
                req = json.loads(line)
                try:
                    if req.get("op") == "local_member":
                        # mria_membership:local_member/0 looks up the local CORE member: false on a replicant
                        resp = ({"guid": self.member_guid, "node": self.name} if self.role == "core"
                                else {"member": False})
                    elif req.get("op") == "rheartbeat":
                        resp = self.handle_replicant_heartbeat(req, peer, conn_id)
                        replicant_peer = peer
                    else:
                        resp = await self.node.handle_op(req, peer, hidden)
                except Exception as e:  # report, keep the connection usable
                    self.log("error", "dist op %s from %s failed: %r" % (req.get("op"), peer, e))
                    resp = {"error": repr(e), "exception": True}
                resp["id"] = req.get("id")
                await _send(writer, resp)
                if resp.get("close"):
                    return
        except (asyncio.TimeoutError, ConnectionError, ValueError, OSError):
            return
        finally:
            try:
                writer.close()
            except Exception:
                pass
            if replicant_peer is not None:
                self._replicant_conn_closed(replicant_peer, conn_id)

    # ------------------------------------------------------------------ replicants, core side
    def handle_replicant_heartbeat(self, req, peer, conn_id):
        """A replicant's ping (mria_membership {ping, Member}, then its monitor) and the rlog stream of
        the cluster-wide tables (stand-in: the whole tables each time). A replicant announced as leaving
        stays out of running_nodes until it comes with a new membership guid (a mria restart)."""
        if self.role != "core":
            return {"error": "not_a_core_node"}
        refusal = self.node.license_refusal(req)
        if refusal:
            return {"error": refusal}
        guid = req.get("guid")
        if self.left_replicants.get(peer) not in (None, guid):
            self.left_replicants.pop(peer, None)
        entry = self.replicants.get(peer)
        was_running = entry is not None and peer in self.running_replicants()
        self.replicants[peer] = {"conn": conn_id, "guid": guid, "seen": time.monotonic(),
                                 "upstream": bool(req.get("upstream"))}
        if not was_running and peer in self.running_replicants():
            self.log("info", "node %s is up (replicant)" % erlfmt.atom(peer))
        if peer in self.running_replicants() and peer not in self.rsenders:
            self.rsenders[peer] = _RpcSender(self, peer)
        if req.get("cluster_id") == self.state["cluster_id"] and req.get("data"):
            if self.merge_data(req["data"]):
                self.push_soon()
        return {"cluster_id": self.state["cluster_id"], "clock": self.state["clock"],
                "members": self.state["members"], "data": self.state["data"],
                "replicants": self.running_replicants()}

    def _replicant_conn_closed(self, peer, conn_id):
        """The replicant's mria_membership went down (its monitor fires): not running any more."""
        entry = self.replicants.get(peer)
        if entry is None or entry.get("conn") != conn_id:
            return
        del self.replicants[peer]
        s = self.rsenders.pop(peer, None)
        if s:
            s.stop()
        if self.left_replicants.get(peer) != entry.get("guid"):
            self.log("info", "node %s is down (replicant)" % erlfmt.atom(peer))

    def mark_leaving(self, node, guid=None):
        """mria_membership {leaving, Node}: a replicant is no longer a running node here (and its routes
        are purged: emqx_router_helper record_node_left, so nothing is forwarded to it)."""
        if self.role == "replicant":
            self.rlb.announce_leaving(node)
            return
        entry = self.replicants.get(node)
        if entry is None:
            return
        self.left_replicants[node] = guid if guid is not None else entry.get("guid")
        s = self.rsenders.pop(node, None)
        if s:
            s.stop()

    async def announce_leaving(self, node, exclude=()):
        """mria_membership:announce(leave | {force_leave, Node}): {leaving, Node} cast to every member."""
        guid = None
        if node == self.name:
            guid = self.member_guid
        elif node in self.replicants:
            guid = self.replicants[node].get("guid")
        targets = [n for n in self.running_nodes() if n != self.name and n != node and n not in exclude]

        async def one(n):
            try:
                await self._call(n, "member_leaving", timeout=3.0, node=node, guid=guid)
            except (NodeDown, RuntimeError):
                pass
        if targets:
            await asyncio.gather(*(one(n) for n in targets))

    async def core_node_discovery(self):
        """ekka_autocluster:core_node_discovery_callback/0: the strategy's discover/1; manual and
        singleton give []; an error is logged and gives []."""
        strategy = self.conf["cluster"]["discovery_strategy"]
        if strategy in ("manual", "singleton"):
            return []
        if strategy not in ("static", "dns", "etcd"):
            return []
        try:
            return await self._discover()
        except (DiscoveryError, NoProc) as e:
            self.log("error", "Ekka(AutoCluster): Core node discovery error: %s" % e)
            return []

    def lb_info(self):
        """mria_lb:lb_callback/0: running (mria up), whoami, custom_info (emqx app vsn),
        discovery_enabled, and for a core its db_nodes and load (the replicants using it)."""
        info = {"running": self.node.status != "stopping", "whoami": self.role,
                "custom_info": emqx_app_vsn(), "discovery_enabled": self.core_discovery}
        if self.role == "core":
            info["db_nodes"] = self.members_in()
            info["agents"] = sum(1 for n in self.running_replicants() if self.replicants[n].get("upstream"))
            info["license_refused"] = self.node.license_refusal({})
        return info

    def _rpc_targets(self):
        """The rpc senders of the running nodes a PUBLISH or a retained write goes to."""
        out = [s for p, s in self.senders.items() if p in self.up]
        running = set(self.running_replicants()) if self.role == "core" else ()
        out += [s for p, s in self.rsenders.items() if p in running]
        return out

    def _rpc_accepts(self, sender, cluster_id):
        """A replicant takes forwards from any node of its cluster (it may hear of another replicant
        after that one has heard of it); a core from its members and the replicants that ping it."""
        if cluster_id is None or cluster_id != self.state["cluster_id"]:
            return False
        if self.role == "replicant":
            return True
        return sender in self.peers() or sender in self.replicants

    async def _serve_rpc(self, reader, writer):
        try:
            hello = await asyncio.wait_for(_read_frame(reader), CONNECT_TIMEOUT)
            sender = hello.get("from")
            cid = hello.get("cluster_id")
            if not self._rpc_accepts(sender, cid):
                self.log("debug", "gen_rpc: refused connection from %s (not a cluster member)" % sender)
                writer.write(_frame({"ok": False}))
                await writer.drain()
                return
            writer.write(_frame({"ok": True}))
            await writer.drain()
            while True:
                d = await _read_frame(reader)
                if not self._rpc_accepts(sender, cid):
                    return
                if d.get("t") == "retainer":
                    if self.node.retainer is not None:
                        self.node.retainer.apply_remote(d)
                elif self.node.broker is not None:
                    self.node.broker.deliver_remote(Message.from_wire(d))
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError, ValueError, OSError):
            return
        finally:
            writer.close()

    # ------------------------------------------------------------------ retained messages
    def replicate_retained(self, op):
        """A write/delete of the retained table to every running node (mria:dirty_write_sync reaches every
        running core node; the replicants get it through their shard's rlog)."""
        frame = None
        for sender in self._rpc_targets():
            if frame is None:
                frame = _frame(op)
            sender.send(frame)

    async def copy_retained(self, prefer=None, joined=False):
        """Load the retained table as mnesia does for a node that starts or joins: from a running peer
        that has it loaded; with none, the node's own disc copy (disc_copies) or nothing (ram_copies)."""
        ret = self.node.retainer
        if ret is None or not ret.enabled:
            return
        ret.begin_load()
        records = None
        if self.role == "replicant":
            peers = self.rlb.running_cores()
            joined = True     # a replicant has no table of its own: its shard bootstraps from a core
        else:
            peers = [p for p in self.peers() if self.is_up(p)]
        if prefer in peers:
            peers.remove(prefer)
            peers.insert(0, prefer)
        for p in peers:
            try:
                resp = await self._call(p, "retainer_copy", timeout=30.0)
            except (NodeDown, RuntimeError):
                continue
            if resp.get("enabled") and resp.get("records") is not None:
                records = resp["records"]
                self.log("info", "msg: retainer_table_copied, from: %s, count: %d" % (p, len(records)))
                break
        if records is None:
            # mria:join deleted the local schema; otherwise mnesia reads the local disc copy (a ram copy
            # has none, unless the table was disc_copies before: change_table_copy_type after loading)
            records = [] if joined else (ret.read_disc() or [])
        ret.finish_load(records)

    # ------------------------------------------------------------------ forwarding
    def forward(self, msg):
        if not self.senders and not self.rsenders:
            return
        frame = None
        for sender in self._rpc_targets():
            if frame is None:
                if not msg.origin_node:
                    msg.origin_node = self.name
                frame = _frame(msg.to_wire())
            sender.send(frame)

    # ------------------------------------------------------------------ heartbeats
    def sync_links(self):
        if self._stopping or self.role == "replicant":
            return
        wanted = set(self.peers())
        for p in list(self.links):
            if p not in wanted:
                self.links.pop(p).cancel()
                self._mark_down(p, quiet=True)
        for p in list(self.senders):
            if p not in wanted:
                self.senders.pop(p).stop()
        for p in wanted:
            if p not in self.links:
                self.links[p] = asyncio.ensure_future(self._link(p))

    def _mark_up(self, peer):
        if peer not in self.up:
            self.log("info", "node %s is up" % erlfmt.atom(peer))
        self.up[peer] = time.monotonic()
        if peer not in self.senders:
            self.senders[peer] = _RpcSender(self, peer)

    def _mark_down(self, peer, quiet=False):
        if peer in self.up:
            del self.up[peer]
            if not quiet:
                self.log("warning", "node %s is down" % erlfmt.atom(peer))
        s = self.senders.pop(peer, None)
        if s:
            s.stop()

    async def _link(self, peer):
        backoff = 0.5
        while not self._stopping:
            conn = None
            try:
                conn = await DistConn.open(self.name, self.cookie, peer, inet6=self.inet6, log=self.log)
                backoff = 0.5
                while True:
                    resp = await conn.call("heartbeat", timeout=HEARTBEAT_TIMEOUT, state=self.export())
                    if resp.get("cluster_id") != self.state["cluster_id"]:
                        self.log("warning", "node %s is not in this cluster any more" % erlfmt.atom(peer))
                        self._mark_down(peer)
                        if peer in self.peers():
                            self.set_member(peer, False)
                            self.save()
                            self.push_soon()
                            self.sync_links()
                        return
                    self.merge(resp["state"])
                    if peer not in self.peers():
                        return
                    self._mark_up(peer)
                    await asyncio.sleep(HEARTBEAT_INTERVAL)
            except asyncio.CancelledError:
                if conn:
                    conn.close()
                raise
            except (NodeDown, RuntimeError, OSError, KeyError, ValueError) as e:
                self.log("debug", "heartbeat to %s: %s" % (peer, e))
            if conn:
                conn.close()
            self._mark_down(peer)
            kick = self.kicks.setdefault(peer, asyncio.Event())
            kick.clear()
            try:
                await asyncio.wait_for(kick.wait(), backoff)
            except asyncio.TimeoutError:
                pass
            backoff = min(backoff * 2, 2.0)

    def handle_heartbeat(self, remote, sender=None):
        if remote.get("cluster_id") != self.state["cluster_id"]:
            return {"cluster_id": self.state["cluster_id"]}
        self.merge(remote)
        if sender in self.peers() and sender not in self.up:
            # an Erlang dist connection is symmetric: the peer that reached us is up for us too
            self._mark_up(sender)
            if sender in self.kicks:
                self.kicks[sender].set()   # it is back: reconnect now
        return {"cluster_id": self.state["cluster_id"], "state": self.export()}

    def push_soon(self):
        asyncio.ensure_future(self.push())

    async def push(self, timeout=3.0):
        """Send our state to every running peer now (instead of waiting for the next heartbeat). A
        replicant sends its writes to its cores (mria: a replicant's transaction runs on a core)."""
        if self.role == "replicant":
            self.rlb.kick()
            return
        peers = [p for p in self.peers() if self.is_up(p)]

        async def one(p):
            try:
                conn = await DistConn.open(self.name, self.cookie, p, inet6=self.inet6)
                try:
                    resp = await conn.call("heartbeat", timeout=timeout, state=self.export())
                    if resp.get("cluster_id") == self.state["cluster_id"]:
                        self.merge(resp["state"])
                finally:
                    conn.close()
            except (NodeDown, RuntimeError, KeyError):
                pass
        if peers:
            await asyncio.gather(*(one(p) for p in peers))

    # ------------------------------------------------------------------ operations
    async def _call(self, target, op, timeout=10.0, **args):
        conn = await DistConn.open(self.name, self.cookie, target, inet6=self.inet6, log=self.log)
        try:
            return await conn.call(op, timeout=timeout, **args)
        finally:
            conn.close()

    async def join(self, target):
        """mria:join/1 -> "ok" | "ignore" | ("error", erlang_term_text). join1/2 decides in this order:
        not in the cluster, mria running there and a core -> join; mria not running -> node_down; in the
        cluster (mria:cluster_nodes(all), running replicants included) -> already_in_cluster; a
        replicant -> cannot_join_to_replicant."""
        if target == self.name:
            return "ignore"
        node = self.node
        async with self.op_lock:
            in_cluster = target in self.cluster_nodes_all()
            try:
                resp = await self._call(target, "get_state", timeout=5.0)
            except (NodeDown, RuntimeError):
                resp = None
            # mria_node:is_running/1 (mria_sup up): a core once its dist services are up, a replicant
            # from the start of its boot (its applications may still wait for a core)
            if resp is None or not resp.get("mria_running", resp.get("status") == "running") \
                    or "state" not in resp:
                return ("error", "{node_down,%s}" % erlfmt.atom(target))
            if in_cluster:
                return ("error", "{already_in_cluster,%s}" % erlfmt.atom(target))
            if resp.get("role", "core") == "replicant":
                return ("error", "{cannot_join_to_replicant,%s}" % erlfmt.atom(target))
            if resp.get("license_refused"):
                return ("error", resp["license_refused"])
            if self.role == "replicant":
                return await self._replicant_join(target)
            prev_status = node.status
            node.status = "joining"
            try:
                if self.peers():
                    await self._leave_locked(quiet=True)
                remote = resp["state"]
                self.state["cluster_id"] = remote["cluster_id"]
                self._observe(int(remote.get("clock", 0)))
                self.state["members"] = {n: dict(e) for n, e in remote["members"].items() if n != self.name}
                self.state["members"][self.name] = {"in": False, "v": 0}
                self.state["data"] = remote.get("data") or {"users": {}, "api_keys": {}}
                for table in ("users", "api_keys", "authn_users"):
                    self.state["data"].setdefault(table, {})
                self.save()
                try:
                    r2 = await self._call(target, "join_request", timeout=15.0, joiner=self.name)
                except (NodeDown, RuntimeError):
                    self._reset_standalone("join failed")
                    self.save()
                    self.sync_links()
                    return ("error", "{node_down,%s}" % erlfmt.atom(target))
                if r2.get("error"):
                    self._reset_standalone("join refused")
                    self.save()
                    self.sync_links()
                    return ("error", r2["error"])
                self.merge(r2["state"])
                me = self.state["members"].get(self.name)
                if not me or not me.get("in"):
                    self._reset_standalone("join not applied")
                self.save()
                # consider the target up right away (its link will confirm), and reach the other
                # members once so `cluster status` right after the join lists them as running
                self._mark_up(target)
                await self._initial_contact(timeout=2.0)
                self.sync_links()
                self.member_guid = _new_guid()   # mria restarted to join
                self.log("warning", "joined cluster %s via %s" % (self.conf["cluster"]["name"], target))
                await self.copy_retained(prefer=target, joined=True)
                if self.etcd is not None:
                    await self.etcd.ekka_restart()
                node.after_join()
                return "ok"
            finally:
                node.status = prev_status if prev_status != "joining" else "running"

    async def _replicant_join(self, target):
        """mria:do_join(replicant, ...): prep_restart(join) stops mria (its stop callback stops EMQX's
        applications: emqx_machine_boot:stop_apps/0), mria_lb:join_cluster/1 writes the seed file, mria
        starts again; the applications start once a core's shards are up (mria_sup post_init)."""
        await self.node.stop_apps_for_mria_restart()
        self.rlb.write_seed(target)
        await self.rlb.restart()
        if self.etcd is not None:
            await self.etcd.ekka_restart()
        self.log("notice", "Mria has joined the cluster, seed: %s" % erlfmt.atom(target))
        return "ok"

    async def handle_join_request(self, joiner):
        async with self.op_lock:
            self.set_member(joiner, True)
            self.save()
            self.sync_links()
            await self.push()
            self.log("info", "node %s joined the cluster" % erlfmt.atom(joiner))
            return {"state": self.export()}

    async def leave(self):
        async with self.op_lock:
            if self.role == "replicant":
                return await self._replicant_leave()
            if not self.peers():
                return ("error", "node_not_in_cluster")
            await self._leave_locked()
            if self.etcd is not None:
                await self.etcd.ekka_restart()
            return "ok"

    async def _replicant_leave(self):
        """mria:leave/0 on a replicant: running_nodes() -- [node()] must not be empty; prep_restart(leave)
        announces {leaving, node()} to every member, stops mria (and EMQX's applications),
        mria_lb:leave_cluster/0 deletes the seed file, mria starts again. With core node discovery
        off (the CLI turned it off when autocluster is configured) or a manual strategy, no core is
        found any more: the applications stay stopped until `cluster join` or `cluster discovery
        enable` finds one (or a restart)."""
        if not self.running_peers():
            return ("error", "node_not_in_cluster")
        await self.announce_leaving(self.name)
        await self.node.stop_apps_for_mria_restart()
        self.rlb.delete_seed()
        await self.rlb.restart()
        if self.etcd is not None:
            await self.etcd.ekka_restart()
        self.log("warning", "left the cluster")
        return "ok"

    async def _leave_locked(self, quiet=False):
        self.set_member(self.name, False)
        self.save()
        await self.push()
        for p in self.peers():
            self._mark_down(p, quiet=True)
        self._reset_standalone("left the cluster")
        if self.node.retainer is not None:
            self.node.retainer.clear()    # mria:leave deletes the schema: tables start empty
        self.member_guid = _new_guid()   # mria:leave restarts mria
        self.save()
        self.sync_links()
        if not quiet:
            self.log("warning", "left the cluster")

    async def force_leave(self, target):
        """mria:force_leave/1: in the cluster and a running Mnesia db node (a running core seen from a
        core) -> it is told to leave; in the cluster otherwise (a stopped core, a replicant, anything
        seen from a replicant) -> {leaving, Node} announced to the members, then its schema copy
        deleted (which succeeds for a node that has none: mnesia_schema:make_del_table_copy/2)."""
        if target == self.name:
            return "ignore"
        if target not in self.cluster_nodes_all():
            return ("error", "node_not_in_cluster")
        if target not in self.peers():
            # a replicant (from a core), or any node seen from a replicant: the announce only
            if self.role == "core":
                self.mark_leaving(target)
            else:
                self.rlb.announce_leaving(target)
            await self.announce_leaving(target)
            self.log("warning", "node %s was removed from the cluster" % erlfmt.atom(target))
            return "ok"
        if self.is_up(target):
            try:
                resp = await self._call(target, "leave", timeout=15.0)
                if resp.get("result") == "ok":
                    await asyncio.sleep(0)
                    if target in self.peers():
                        self.set_member(target, False)
                        self.save()
                        self.sync_links()
                    return "ok"
            except (NodeDown, RuntimeError):
                pass
        async with self.op_lock:
            self.set_member(target, False)
            self._mark_down(target, quiet=True)
            self.save()
            self.sync_links()
            await self.push()
        self.log("warning", "node %s was removed from the cluster" % erlfmt.atom(target))
        return "ok"

    # ------------------------------------------------------------------ autocluster (ekka)
    async def _autocluster(self):
        """ekka_autocluster's loop (ekka 0.23.2): wait for the app, discover and join, and keep
        doing so every 5 s until discovery is complete (all seeds alive, and this node registered
        and clustered), then stop. Started once at boot (emqx_machine_boot:start_autocluster) and
        by `cluster discovery enable`; `cluster leave` stops it."""
        strategy = self.conf["cluster"]["discovery_strategy"]
        if self.role != "core":
            return     # ekka_autocluster:enabled/0 is false on a replicant (mria_lb discovers the cores)
        if strategy not in ("static", "dns", "etcd"):
            self.log("warning", "cluster discovery strategy %s is not implemented by this stand-in" % strategy)
            return
        while self.autocluster_enabled and not self._stopping:
            await self._wait_application_ready(10)
            try:
                result = await self._discover_and_join()
            except NoProc as e:
                # gen_server:call to ekka_cluster_etcd exits; nothing catches it: ekka_autocluster crashes
                self.log("error", "Ekka(AutoCluster): crashed: exit %s" % e)
                return
            if await self._is_discovery_complete(result):
                self.log("info", "Ekka(AutoCluster): discovery complete")
                return
            await asyncio.sleep(AUTOCLUSTER_RETRY_INTERVAL)

    async def _wait_application_ready(self, retries):
        while retries > 0 and self.node.status != "running":
            await asyncio.sleep(1.0)
            retries -= 1

    def _seeds(self):
        return list(self.conf["cluster"]["static"]["seeds"])

    async def _discover(self):
        """ekka_cluster_strategy:discover/2: static -> the seeds; dns (ekka_cluster_dns) -> one node per
        address (a, aaaa: <this node's name part>@<address>) or per SRV target host (srv, sorted, unique),
        from inet_res:lookup/3 (dnsquery.py: the resolv.conf name servers, never /etc/hosts); etcd ->
        EkkaEtcd.discover (("error", reason) becomes DiscoveryError)."""
        if self.conf["cluster"]["discovery_strategy"] == "etcd":
            r = await self.etcd.discover()
            if isinstance(r, tuple):
                raise DiscoveryError(r[1])
            return r
        if self.conf["cluster"]["discovery_strategy"] != "dns":
            return self._seeds()
        dns = self.conf["cluster"].get("dns") or {}
        name, rtype = str(dns.get("name", "localhost")), str(dns.get("record_type", "a"))
        answers = await asyncio.get_running_loop().run_in_executor(None, dnsquery.lookup, name, rtype)
        hosts = sorted(set(a[3] for a in answers)) if rtype == "srv" else list(answers)
        prefix = self.name.split("@", 1)[0]
        return ["%s@%s" % (prefix, h) for h in hosts]

    async def _is_aliving(self, node):
        """ekka_node:is_aliving/1: this node, a connected node, or net_adm:ping/1 = pong."""
        if node == self.name or node in self.up:
            return True
        if "@" not in node:   # net_adm:ping/1 of a name that is no node name: pang
            return False
        try:
            conn = await DistConn.open(self.name, self.cookie, node, inet6=self.inet6, log=self.log)
        except NodeDown:
            return False
        conn.close()
        return True

    async def _discover_and_join(self):
        """ekka_autocluster:discover_and_join/0: "ok" | "ignore" | "error". etcd: lock/1 (blocks until the
        etcd lock is ours), discover, join, register/1, and unlock/1 in an `after`."""
        if self.etcd is None:
            # ekka_cluster_static/dns lock/1 return ignore -> timer:sleep(rand:uniform(3000))
            await asyncio.sleep(random.uniform(0.001, AUTOCLUSTER_LOCK_IGNORE_SLEEP))
            if not self.autocluster_enabled or self._stopping:
                return "error"
            return await self._discover_and_join_locked()
        r = await self.etcd.lock()
        try:
            if r != "ok":
                self.log("error", "Ekka(AutoCluster): AutoCluster stopped for lock error: %s" % r[1])
                return "error"
            return await self._discover_and_join_locked()
        finally:
            u = await self.etcd.unlock()
            if isinstance(u, tuple):
                self.log("error", "Ekka(AutoCluster): Unlock error: %s" % u[1])

    async def _discover_and_join_locked(self):
        try:
            nodes = await self._discover()
        except DiscoveryError as e:
            self.log("error", "Ekka(AutoCluster): Discovery error: %s" % e)
            return "error"
        alive_flags = await asyncio.gather(*(self._is_aliving(n) for n in nodes))
        alive = [n for n, a in zip(nodes, alive_flags) if a]
        dead = [n for n, a in zip(nodes, alive_flags) if not a]
        res = await self._maybe_join(alive)
        if self.etcd is not None:    # register/1: ignore for static and dns
            reg = await self.etcd.register()
            if isinstance(reg, tuple):
                self.log("error", "Ekka(AutoCluster): Register error: %s" % reg[1])
        if dead:
            self.log("info", "Ekka(AutoCluster): discovered nodes are not responding: [%s]"
                     % ",".join(erlfmt.atom(n) for n in dead))
            return "error"
        return "error" if isinstance(res, tuple) else res

    async def _maybe_join(self, alive):
        if not alive:
            return "ignore"
        nodes = sorted(set(alive))
        if nodes == self.cluster_nodes_all():
            return "ignore"    # all discovered nodes already in cluster
        oldest = await self._find_oldest_node(nodes)
        if oldest is None or oldest == self.name:
            return "ignore"
        self.log("info", "Ekka(AutoCluster): joining with %s" % erlfmt.atom(oldest))
        res = await self.join(oldest)
        if isinstance(res, tuple) and res[1].startswith("{already_in_cluster,"):
            return "ignore"
        if res == "ok":
            self.log("warning", "autocluster: joined %s" % oldest)
        return res

    async def _find_oldest_node(self, nodes):
        """mria_membership:oldest/1 over every discovered node's local member: smallest guid."""
        if len(nodes) == 1:
            return nodes[0]

        async def guid_of(n):
            if n == self.name:
                return self.member_guid
            try:
                resp = await self._call(n, "local_member", timeout=5.0)
            except (NodeDown, RuntimeError):
                return None
            if resp.get("member") is False:
                return False       # a replicant: local_member/0 is false, not a #member{}
            return resp.get("guid")
        guids = await asyncio.gather(*(guid_of(n) for n in nodes))
        if any(g is None for g in guids):
            self.log("error", "Ekka(AutoCluster): bad_nodes_found, failed_nodes: [%s]"
                     % ",".join(erlfmt.atom(n) for n, g in zip(nodes, guids) if g is None))
            return None
        members = [(g, n) for g, n in zip(guids, nodes) if g is not False]
        if not members:
            self.log("error", "Ekka(AutoCluster): bad_members_found, all_nodes: %s" % erlfmt.term_list(nodes))
            return None
        return min(members)[1]

    async def _is_discovery_complete(self, result):
        # is_node_registered/0: core_node_discovery_callback/0 (discovery again; an error or a crash is [])
        # lists this node; register/1 is ignore for static and dns
        try:
            registered = self.name in await self._discover()
        except (DiscoveryError, NoProc):
            registered = False
        if result == "ignore":
            return registered
        in_cluster = self.cluster_nodes_all() != [self.name]
        return registered and in_cluster and result == "ok"


def _new_guid():
    """Like mria_guid: microsecond timestamp first, so a smaller guid is an older member."""
    return time.time_ns() // 1000


def _newer(a, b):
    va, vb = int(a.get("v", 0)), int(b.get("v", 0))
    if va != vb:
        return va > vb
    return bool(b.get("in")) and not a.get("in")   # on a tie, "out" wins
