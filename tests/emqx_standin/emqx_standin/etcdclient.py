"""An etcd v3 client for discovery_strategy = etcd, in the manner of eetcd v0.6.0 (the client ekka 0.23.2 uses).

EMQX speaks gRPC (HTTP/2 + protobuf) to etcd through eetcd. The stand-in has the Python standard library
only, so it sends the same requests to etcd's JSON gRPC gateway, which etcd 3.5 serves on the same client
URLs: POST /v3/kv/range, /v3/kv/put, /v3/kv/deleterange, /v3/lease/grant, /v3/lease/revoke,
/v3/lease/keepalive, /v3/lease/timetolive, /v3/lock/lock, /v3/lock/unlock, /v3/maintenance/status, with
keys and values base64 in JSON and 64-bit integers as JSON strings. The requests, keys, leases and the
lock are the ones eetcd sends for ekka; only the wire differs.

What is taken from eetcd v0.6.0 (src/eetcd.erl, src/eetcd_conn.erl, src/eetcd_lease.erl):
- endpoints(): ekka_cluster_etcd:init/1 strips a leading "http://" or "https://" and eetcd:open/3 splits
  what is left at ":" into exactly host and port (string:tokens/2 then list_to_integer/1). Anything else
  (no port, a trailing "/", a path, an IPv6 literal) crashes ekka_cluster_etcd:init/1: EndpointError here.
- open(): eetcd_conn connect_all mode: connect to every endpoint (1 s connect timeout), check it
  (grpc health, then Maintenance/Status must name a leader: here POST /v3/maintenance/status); the
  connection opens when more endpoints answer than fail (length(Ok) > length(Failed)), so with two
  endpoints both must answer. The failed ones are retried in the background (200 ms doubling to 25.6 s).
- requests go round robin over the open endpoints (eetcd_conn:round_robin_select/1); the reply timeout
  is 9 s (eetcd_stream:unary/6), except where the caller says otherwise (ekka's lock: infinity).
"""

import asyncio
import base64
import json
import ssl

CONNECT_TIMEOUT = 1.0       # eetcd_conn: connect_timeout default 1000 ms
REPLY_TIMEOUT = 9.0         # eetcd_stream:unary/6: eetcd_reply_timeout default 9000 ms
MIN_RECONN, MAX_RECONN = 0.2, 25.6


class EtcdError(Exception):
    """A failed request: unreachable endpoint, timeout, or an error answer (gRPC code and message)."""

    def __init__(self, reason, code=None):
        Exception.__init__(self, reason)
        self.reason = reason
        self.code = code


class EndpointError(ValueError):
    pass


def b64(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64.b64encode(data).decode("ascii")


def unb64(text):
    return base64.b64decode(text or "")


def endpoints(servers):
    """cluster.etcd.server (already a list: emqx_schema:comma_separated_list) -> [(host, port)], as
    ekka_cluster_etcd:init/1 (remove_scheme/1) and eetcd:open/3 make them."""
    out = []
    for server in servers or []:
        s = str(server)
        for scheme in ("http://", "https://"):
            if s.startswith(scheme):
                s = s[len(scheme):]
                break
        parts = [p for p in s.split(":") if p]
        if len(parts) != 2:
            raise EndpointError("{badmatch,%s}: eetcd:open/3 needs host:port in %r" % (parts, server))
        host, port = parts
        if not port.isdigit() and not (port[:1] in "+-" and port[1:].isdigit()):
            raise EndpointError("badarg: list_to_integer(%r) in eetcd:open/3 for %r" % (port, server))
        out.append((host, int(port)))
    return out


def _parse_chunked(data):
    out, i = b"", 0
    while True:
        j = data.find(b"\r\n", i)
        if j < 0:
            return out
        size = int(data[i:j].split(b";")[0] or b"0", 16)
        if size == 0:
            return out
        out += data[j + 2:j + 2 + size]
        i = j + 2 + size + 2


async def http_post(host, port, path, body, timeout=REPLY_TIMEOUT, ssl_ctx=None, connect_timeout=CONNECT_TIMEOUT):
    """One POST of a JSON body on a new connection; returns (status, parsed JSON or None)."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=ssl_ctx, server_hostname=host if ssl_ctx else None),
            connect_timeout)
    except (OSError, asyncio.TimeoutError, ssl.SSLError) as e:
        raise EtcdError("{gun_down,%s}" % (str(e) or type(e).__name__))
    try:
        data = json.dumps(body).encode()
        writer.write(("POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                      "Content-Length: %d\r\nConnection: close\r\n\r\n" % (path, host, port, len(data))).encode()
                     + data)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(-1), timeout)
    except asyncio.TimeoutError:
        raise EtcdError("timeout")
    except (OSError, ssl.SSLError) as e:
        raise EtcdError("{gun_down,%s}" % (str(e) or type(e).__name__))
    finally:
        writer.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        raise EtcdError("{gun_down,bad_response}")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        payload = _parse_chunked(payload)
    text = payload.decode("utf-8", "replace").strip()
    if not text:
        return status, None
    try:
        # a streaming call (lease keepalive) answers one JSON object per line: the first is the answer
        return status, json.loads(text.splitlines()[0])
    except ValueError:
        raise EtcdError("{bad_json,%r}" % text[:80])


class Client:
    """eetcd_conn in connect_all mode, over the JSON gateway."""

    def __init__(self, hosts, ssl_ctx=None, log=None):
        self.hosts = list(hosts)
        self.ssl_ctx = ssl_ctx
        self.log = log or (lambda level, text: None)
        self.active = []
        self.frozen = {}     # host -> next reconnect delay
        self._rr = 0
        self._reconn = None
        self.closed = False

    async def _check(self, host):
        status, resp = await http_post(host[0], host[1], "/v3/maintenance/status", {}, timeout=10.0,
                                       ssl_ctx=self.ssl_ctx)
        if status != 200 or not isinstance(resp, dict):
            raise EtcdError(_error_text(resp, status), _error_code(resp))
        if int(resp.get("leader", 0) or 0) <= 0:
            raise EtcdError("{no_leader,%s}" % resp.get("errors", []))

    async def open(self):
        """eetcd_conn:init/1 connect_all: raise EtcdError unless more endpoints answer than fail."""
        ok, failed = [], []
        for host in self.hosts:
            try:
                await self._check(host)
                ok.append(host)
            except EtcdError as e:
                self.log("error", "Failed to connect ETCD: {\"%s\",%d} by %s" % (host[0], host[1], e.reason))
                failed.append((host, e.reason))
        if failed and not len(ok) > len(failed):
            raise EtcdError("[%s]" % ",".join("{{\"%s\",%d},%s}" % (h[0], h[1], r) for h, r in failed))
        self.active = ok
        self.frozen = {h: MIN_RECONN for h, _ in failed}
        if self.frozen:
            self._reconn = asyncio.ensure_future(self._reconnect_loop())

    async def _reconnect_loop(self):
        while self.frozen and not self.closed:
            delay = min(self.frozen.values())
            await asyncio.sleep(delay)
            for host, d in list(self.frozen.items()):
                try:
                    await self._check(host)
                except EtcdError:
                    d = d * 2
                    self.frozen[host] = MIN_RECONN if d > MAX_RECONN else d
                    continue
                self.frozen.pop(host, None)
                if host not in self.active:
                    self.active.append(host)

    def _freeze(self, host):
        if host in self.active:
            self.active.remove(host)
        if host not in self.frozen:
            self.frozen[host] = MIN_RECONN
            if self._reconn is None or self._reconn.done():
                self._reconn = asyncio.ensure_future(self._reconnect_loop())

    async def call(self, path, body, timeout=REPLY_TIMEOUT):
        if self.closed or not self.active:
            raise EtcdError("eetcd_conn_unavailable")
        self._rr = (self._rr + 1) % len(self.active)
        host = self.active[self._rr]
        try:
            status, resp = await http_post(host[0], host[1], path, body, timeout=timeout, ssl_ctx=self.ssl_ctx)
        except EtcdError as e:
            if e.reason.startswith("{gun_down"):
                self._freeze(host)
            raise
        if status != 200 or not isinstance(resp, dict) or "error" in resp and "result" not in resp:
            raise EtcdError(_error_text(resp, status), _error_code(resp))
        return resp

    def close(self):
        self.closed = True
        if self._reconn is not None:
            self._reconn.cancel()
        self.active = []

    # ---- the calls ekka makes
    async def range_from(self, key, sort_key_ascend=True):
        body = {"key": b64(key), "range_end": b64(b"\x00")}
        if sort_key_ascend:
            body.update(sort_order="ASCEND", sort_target="KEY")
        resp = await self.call("/v3/kv/range", body)
        return [(unb64(kv.get("key")), unb64(kv.get("value"))) for kv in resp.get("kvs", [])]

    async def put(self, key, value, lease=None):
        body = {"key": b64(key), "value": b64(value)}
        if lease:
            body["lease"] = str(lease)
        return await self.call("/v3/kv/put", body)

    async def delete(self, key):
        return await self.call("/v3/kv/deleterange", {"key": b64(key)})

    async def lease_grant(self, ttl):
        resp = await self.call("/v3/lease/grant", {"TTL": str(ttl)})
        if resp.get("error"):
            raise EtcdError(str(resp["error"]))
        return int(resp["ID"])

    async def lease_keepalive(self, lease):
        """One keepalive on the stream; returns the new TTL (0: the lease is gone)."""
        resp = await self.call("/v3/lease/keepalive", {"ID": str(lease)}, timeout=5.0)
        result = resp.get("result", resp)
        return int(result.get("TTL", 0) or 0)

    async def lease_time_to_live(self, lease):
        resp = await self.call("/v3/lease/timetolive", {"ID": str(lease)})
        ttl = int(resp.get("TTL", 0) or 0)
        if ttl <= 0:
            raise EtcdError("etcdserver: requested lease not found", 5)
        return ttl

    async def lease_revoke(self, lease):
        return await self.call("/v3/lease/revoke", {"ID": str(lease)})

    async def lock(self, name, lease):
        resp = await self.call("/v3/lock/lock", {"name": b64(name), "lease": str(lease)}, timeout=None)
        return unb64(resp.get("key"))

    async def unlock(self, key):
        return await self.call("/v3/lock/unlock", {"key": b64(key)})


def _error_code(resp):
    if isinstance(resp, dict):
        err = resp.get("error", resp)
        if isinstance(err, dict):
            return err.get("grpc_code", err.get("code"))
    return None


def _error_text(resp, status):
    if isinstance(resp, dict):
        err = resp.get("error", resp)
        if isinstance(err, dict):
            return "{grpc_error,#{'grpc-status' => %s,'grpc-message' => <<\"%s\">>}}" % (
                err.get("grpc_code", err.get("code")), err.get("message", err.get("error", "")))
        return str(err)
    return "{http_status,%d}" % status
