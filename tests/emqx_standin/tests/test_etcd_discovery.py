"""etcd discovery as ekka 0.23.2 runs it (src/ekka_cluster_etcd.erl, v3 API, under src/ekka_autocluster.erl),
against a fake etcd that answers the JSON gRPC gateway the stand-in talks to (etcd 3.5 serves it on the
client URL): keys <prefix>/ekkacl/nodes/<node> with a 5 s lease kept alive, the etcd lock
<prefix>/ekkacl/lock/ around discover-and-join, discovery reading every key >= the nodes key."""

import asyncio
import base64
import json
import random
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from standin import wait_for

from emqx_standin import cluster as cl
from emqx_standin import etcdclient, hocon, schema
from emqx_standin.schema import ConfigError


def _b(text):
    return base64.b64decode(text or "")


def _e(data):
    return base64.b64encode(data).decode()


class FakeEtcd(object):
    """The etcd v3 JSON gateway on loopback: kv range/put/deleterange (range_end "\\0" = every key >= key),
    leases that expire by their TTL (keys go with them), keepalive, timetolive, revoke, and the lock
    service (key <name>/<lease hex>, held by the oldest create revision under <name>/)."""

    def __init__(self):
        self.cond = threading.Condition()
        self.rev = 1
        self.kv = {}        # key bytes -> dict(value, lease, create, mod, version)
        self.leases = {}    # id -> dict(ttl, expires)
        self.requests = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n) or b"{}")
                fake.requests.append((self.path, body))
                code, resp = fake.handle(self.path, body)
                data = json.dumps(resp).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self._stop = threading.Event()
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        threading.Thread(target=self._reaper, daemon=True).start()

    def close(self):
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()

    # ---- state
    def _header(self):
        return {"cluster_id": "1", "member_id": "1", "revision": str(self.rev), "raft_term": "2"}

    def _reaper(self):
        while not self._stop.wait(0.05):
            with self.cond:
                now = time.monotonic()
                for lid in [i for i, le in self.leases.items() if le["expires"] <= now]:
                    self._drop_lease(lid)

    def _drop_lease(self, lid):
        del self.leases[lid]
        for k in [k for k, v in self.kv.items() if v["lease"] == lid]:
            del self.kv[k]
        self.rev += 1
        self.cond.notify_all()

    def _range(self, key, end):
        if not end:
            return [key] if key in self.kv else []
        return sorted(k for k in self.kv if k >= key and (end == b"\x00" or k < end))

    def _put(self, key, value, lease):
        self.rev += 1
        old = self.kv.get(key)
        self.kv[key] = {"value": value, "lease": lease, "create": old["create"] if old else self.rev,
                        "mod": self.rev, "version": (old["version"] + 1) if old else 1}
        self.cond.notify_all()

    def keys(self, prefix=b""):
        with self.cond:
            return {k.decode(): (v["value"].decode(), v["lease"]) for k, v in self.kv.items() if k.startswith(prefix)}

    def put(self, key, value):
        with self.cond:
            self._put(key.encode(), value.encode(), 0)

    @staticmethod
    def _err(code, msg):
        http = {5: 404, 3: 400}.get(code, 500)
        return http, {"error": msg, "code": code, "message": msg}

    def handle(self, path, body):
        with self.cond:
            if path == "/v3/maintenance/status":
                return 200, {"header": self._header(), "version": "3.5.16", "leader": "1"}
            if path == "/v3/kv/range":
                keys = self._range(_b(body.get("key")), _b(body.get("range_end")))
                if body.get("sort_order") == "DESCEND":
                    keys.reverse()
                kvs = [{"key": _e(k), "value": _e(self.kv[k]["value"]), "create_revision": str(self.kv[k]["create"]),
                        "mod_revision": str(self.kv[k]["mod"]), "version": str(self.kv[k]["version"]),
                        "lease": str(self.kv[k]["lease"])} for k in keys]
                resp = {"header": self._header(), "count": str(len(kvs))}
                if kvs:
                    resp["kvs"] = kvs
                return 200, resp
            if path == "/v3/kv/put":
                lease = int(body.get("lease", 0) or 0)
                if lease and lease not in self.leases:
                    return self._err(5, "etcdserver: requested lease not found")
                self._put(_b(body.get("key")), _b(body.get("value")), lease)
                return 200, {"header": self._header()}
            if path == "/v3/kv/deleterange":
                keys = self._range(_b(body.get("key")), _b(body.get("range_end")))
                for k in keys:
                    del self.kv[k]
                self.rev += 1
                self.cond.notify_all()
                return 200, {"header": self._header(), "deleted": str(len(keys))}
            if path == "/v3/lease/grant":
                ttl = int(body.get("TTL", 0))
                lid = random.randint(1, 2 ** 62)
                self.leases[lid] = {"ttl": ttl, "expires": time.monotonic() + ttl}
                return 200, {"header": self._header(), "ID": str(lid), "TTL": str(ttl)}
            if path == "/v3/lease/keepalive":
                lid = int(body.get("ID", 0))
                le = self.leases.get(lid)
                result = {"header": self._header(), "ID": str(lid)}
                if le:
                    le["expires"] = time.monotonic() + le["ttl"]
                    result["TTL"] = str(le["ttl"])
                return 200, {"result": result}
            if path == "/v3/lease/timetolive":
                lid = int(body.get("ID", 0))
                le = self.leases.get(lid)
                ttl = int(le["expires"] - time.monotonic()) if le else -1
                return 200, {"header": self._header(), "ID": str(lid), "TTL": str(ttl)}
            if path == "/v3/lease/revoke":
                lid = int(body.get("ID", 0))
                if lid not in self.leases:
                    return self._err(5, "etcdserver: requested lease not found")
                self._drop_lease(lid)
                return 200, {"header": self._header()}
            if path == "/v3/lock/lock":
                name, lease = _b(body.get("name")), int(body.get("lease", 0) or 0)
                if lease not in self.leases:
                    return self._err(5, "etcdserver: requested lease not found")
                pfx = name + b"/"
                mine = pfx + (b"%x" % lease)
                if mine not in self.kv:
                    self._put(mine, b"", lease)
                while True:
                    if mine not in self.kv:
                        return self._err(5, "mutex: session is expired")
                    owner = min((v["create"], k) for k, v in self.kv.items() if k.startswith(pfx))[1]
                    if owner == mine:
                        return 200, {"header": self._header(), "key": _e(mine)}
                    self.cond.wait(0.5)
            if path == "/v3/lock/unlock":
                key = _b(body.get("key"))
                self.kv.pop(key, None)
                self.rev += 1
                self.cond.notify_all()
                return 200, {"header": self._header()}
        return 404, {"error": "Not Found", "code": 5, "message": "Not Found"}


@pytest.fixture
def etcd():
    server = FakeEtcd()
    yield server
    server.close()


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _conf(server, prefix="emqxcl"):
    return '\ncluster.etcd.server = "%s"\ncluster.etcd.prefix = "%s"\ncluster.etcd.node_ttl = 1m\n' % (server, prefix)


def _running(n):
    st = n.cluster_status()
    return sorted(st["running_nodes"]), sorted(st["stopped_nodes"])


# ---------------------------------------------------------------------------------------------- config

def check(text):
    return schema.check(hocon.merge(schema.builtin_defaults(), hocon.parse(text)))


def test_server_is_a_comma_separated_string_not_an_array():
    c = check('cluster { discovery_strategy = etcd, etcd.server = "http://10.0.0.1:2379, http://10.0.0.2:2379 '
              'http://10.0.0.3:2379" }')
    assert c["cluster"]["etcd"]["server"] == ["http://10.0.0.1:2379", "http://10.0.0.2:2379", "http://10.0.0.3:2379"]
    assert c["cluster"]["etcd"]["prefix"] == "emqxcl" and c["cluster"]["etcd"]["node_ttl"] == 60000
    # typerefl list(string()) refuses the array hocon gives (a list of binaries)
    with pytest.raises(ConfigError) as e:
        check('cluster { discovery_strategy = etcd, etcd.server = ["http://10.0.0.1:2379"] }')
    assert "cluster.etcd.server" in str(e.value)


def test_endpoints_as_eetcd_open_splits_them():
    assert etcdclient.endpoints(["http://10.0.0.1:2379", "https://etcd:2379", "etcd2:2380"]) == [
        ("10.0.0.1", 2379), ("etcd", 2379), ("etcd2", 2380)]
    for bad in ("http://etcd", "http://etcd:2379/", "http://[::1]:2379", "etcd:2379/v3", "http://a:b:1"):
        with pytest.raises(etcdclient.EndpointError):
            etcdclient.endpoints([bad])


# ---------------------------------------------------------------------------------------------- in-process

class _Mgr(object):
    def __init__(self, name, server, prefix="emqxcl"):
        self.name = name
        self.conf = {"cluster": {"etcd": {"server": [server], "prefix": prefix}}}
        self.lines = []

    def log(self, level, text):
        self.lines.append((level, text))


def test_discovery_reads_every_key_from_the_nodes_key_on(etcd):
    """v3_nodes_context/1: key <prefix>/ekkacl/nodes/ with range_end "\\0": every key >= it, in the whole
    keyspace (not a prefix range), and the values, not the keys, are the nodes."""
    async def go():
        e = cl.EkkaEtcd(_Mgr("emqx@10.0.0.1", etcd.url))
        await e.start()
        try:
            assert await e.register() == "ok"
            etcd.put("emqxcl/ekkacl/nodes/emqx@10.0.0.2", "emqx@10.0.0.2")
            etcd.put("emqxcm/ekkacl/nodes/other@10.9.9.9", "other@10.9.9.9")    # another cluster's prefix
            etcd.put("zzz/app", "not-a-node")
            etcd.put("emqxcl/ekkacl/lock/x", "before the nodes key")
            etcd.put("aaa/ekkacl/nodes/x@y", "x@y")
            return await e.discover(), e.lease
        finally:
            await e.stop()
    nodes, lease = asyncio.run(go())
    assert nodes == ["emqx@10.0.0.1", "emqx@10.0.0.2", "other@10.9.9.9", "not-a-node"]
    rng = [b for p, b in etcd.requests if p == "/v3/kv/range"][0]
    assert _b(rng["key"]) == b"emqxcl/ekkacl/nodes/" and _b(rng["range_end"]) == b"\x00"
    assert rng["sort_target"] == "KEY" and rng["sort_order"] == "ASCEND"
    grant = [b for p, b in etcd.requests if p == "/v3/lease/grant"][0]
    assert int(grant["TTL"]) == 5     # not node_ttl
    assert lease not in etcd.leases and "emqxcl/ekkacl/nodes/emqx@10.0.0.1" not in etcd.keys()   # revoked


def test_the_lock_is_the_etcd_lock_service_with_the_node_lease(etcd):
    async def go():
        a = cl.EkkaEtcd(_Mgr("emqx@10.0.0.1", etcd.url))
        b = cl.EkkaEtcd(_Mgr("emqx@10.0.0.2", etcd.url))
        await a.start()
        await b.start()
        try:
            assert await a.lock() == "ok"
            assert a.lock_key == b"emqxcl/ekkacl/lock//%x" % a.lease
            waiter = asyncio.ensure_future(b.lock())
            await asyncio.sleep(0.5)
            assert not waiter.done()          # timeout infinity: b waits for a
            assert await a.unlock() == "ok"
            assert await asyncio.wait_for(waiter, 5) == "ok"
            assert await b.unlock() == "ok"
            assert await b.unlock() == ("error", "lock_lose")
        finally:
            await a.stop()
            await b.stop()
    asyncio.run(go())


def test_a_lease_lost_restarts_the_etcd_process_without_putting_the_key_again(etcd):
    async def go():
        e = cl.EkkaEtcd(_Mgr("emqx@10.0.0.1", etcd.url))
        await e.start()
        try:
            await e.register()
            first = e.lease
            with etcd.cond:
                etcd._drop_lease(first)       # e.g. expired while etcd was unreachable
            for _ in range(60):
                if e.running and e.lease not in (None, first):
                    break
                await asyncio.sleep(0.1)
            assert e.running and e.lease not in (None, first)
            return etcd.keys(b"emqxcl/")
        finally:
            await e.stop()
    assert asyncio.run(go()) == {}


def test_etcd_unreachable_crashes_init(etcd):
    async def go(servers):
        m = _Mgr("emqx@10.0.0.1", "x")
        m.conf["cluster"]["etcd"]["server"] = servers
        e = cl.EkkaEtcd(m)
        try:
            await e.start()
        except RuntimeError as err:
            return str(err)
        await e.stop()
        return "ok"
    dead = "http://127.0.0.1:%d" % _free_port()
    assert "eetcd:open" in asyncio.run(go([dead]))
    # connect_all: more endpoints must answer than fail; 1 of 2 is not enough, 2 of 3 is
    assert "eetcd:open" in asyncio.run(go([etcd.url, dead]))
    assert asyncio.run(go([etcd.url, dead, etcd.url])) == "ok"
    # no server at all: no connection, the lease grant fails
    assert "eetcd_conn_unavailable" in asyncio.run(go([]))


# ---------------------------------------------------------------------------------------------- nodes

def test_nodes_cluster_through_etcd_and_a_node_added_later_joins(nodes, etcd):
    group = nodes(4, discovery="etcd", extra=_conf(etcd.url))
    for n in group[:3]:
        n.start(wait=False)
    for n in group[:3]:
        n.wait_up()
    first = sorted(n.name for n in group[:3])
    wait_for(lambda: all(_running(n) == (first, []) for n in group[:3]), timeout=30,
             what="three nodes to cluster through etcd")
    wait_for(lambda: sorted(etcd.keys(b"emqxcl/ekkacl/nodes/")) == ["emqxcl/ekkacl/nodes/" + n for n in first],
             timeout=10, what="every node registered")
    for key, (value, lease) in etcd.keys(b"emqxcl/ekkacl/nodes/").items():
        assert key.endswith(value) and lease in etcd.leases and etcd.leases[lease]["ttl"] == 5
    assert any(p == "/v3/lock/lock" and _b(b["name"]) == b"emqxcl/ekkacl/lock/" for p, b in etcd.requests)

    group[3].start()
    everyone = sorted(n.name for n in group)
    wait_for(lambda: all(_running(n) == (everyone, []) for n in group), timeout=30,
             what="the node started later to join by itself")
    wait_for(lambda: len(etcd.keys(b"emqxcl/ekkacl/nodes/")) == 4, timeout=10, what="the fourth key")

    # a stopped node revokes its lease (ekka_cluster_etcd:terminate/2): its key goes at once
    group[3].stop()
    assert "emqxcl/ekkacl/nodes/" + group[3].name not in etcd.keys()
    # a killed node's key goes when its 5 s lease runs out (node_ttl = 1m plays no part)
    group[2].kill()
    t0 = time.monotonic()
    wait_for(lambda: "emqxcl/ekkacl/nodes/" + group[2].name not in etcd.keys(), timeout=10,
             what="the killed node's key to expire")
    assert time.monotonic() - t0 < 8


def test_cluster_leave_revokes_the_lease_and_does_not_register_again(nodes, etcd):
    a, b = nodes(2, discovery="etcd", extra=_conf(etcd.url))
    a.start()
    b.start()
    both = sorted([a.name, b.name])
    wait_for(lambda: _running(a) == (both, []) and len(etcd.keys(b"emqxcl/ekkacl/nodes/")) == 2, timeout=30,
             what="two nodes to cluster through etcd")
    rc, out, _ = b.ctl("cluster", "leave")
    assert rc == 0 and "Leave the cluster successfully" in out
    # mria:leave restarts ekka: the old lease is revoked, a new one granted, nothing registers again
    assert sorted(etcd.keys(b"emqxcl/ekkacl/nodes/")) == ["emqxcl/ekkacl/nodes/" + a.name]
    time.sleep(2.5)
    assert sorted(etcd.keys(b"emqxcl/ekkacl/nodes/")) == ["emqxcl/ekkacl/nodes/" + a.name]
    assert _running(b) == ([b.name], [])


def test_etcd_unreachable_at_boot_fails_the_boot(nodes):
    n = nodes.one(discovery="etcd", extra=_conf("http://127.0.0.1:%d" % _free_port()))
    n.start(wait=False)
    rc = n.proc.wait(30)
    assert rc != 0
    assert "ekka_cluster_etcd" in n.console() + n.logtext()


def test_a_server_without_port_fails_the_boot(nodes, etcd):
    n = nodes.one(discovery="etcd", extra=_conf("http://127.0.0.1"))
    n.start(wait=False)
    assert n.proc.wait(30) != 0
    assert "eetcd:open/3" in n.console() + n.logtext()
