"""MQTT broker core of the EMQX 5.8 stand-in (test equipment; Python standard library only).

One asyncio event loop, no thread per connection. Listeners: tcp, ssl, ws, wss, each optionally behind
the PROXY protocol (v1/v2). MQTT 3.1, 3.1.1 and 5.0.

Public interface (used by the node / cluster layer):
    Message                         dataclass: topic, payload, qos, retain, properties, origin_node
    Broker(node_name, listeners, mqtt_conf, forward, log)
        await start() / await stop()
        deliver_remote(msg)         message from another node: local delivery only (the retained store is
                                    replicated by the cluster layer, see retainer.py)
        clients() -> list[dict]     connected clients
        subscriptions_count() -> int
        listener_ports() -> dict    {"tcp:default": 1883, ...}
    extras: publish(msg) (local publish as if from a client: deliver + retain + forward),
            kick(clientid) -> bool, retained_count() -> int, connection_count() -> int
"""

import asyncio
import base64
import collections
import datetime
import errno
import hashlib
import os
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field

try:
    from . import acl
    from . import authn as authn_mod
    from . import mqtt_codec as mc
    from . import proxyproto
    from . import wsframe
except ImportError:  # pragma: no cover - when imported as a top-level module
    import acl  # type: ignore
    import authn as authn_mod  # type: ignore
    import mqtt_codec as mc  # type: ignore
    import proxyproto  # type: ignore
    import wsframe  # type: ignore

# The rules of EMQX 5.8.9's etc/acl.conf (apps/emqx_auth/etc/acl.conf), the file source that
# authorization.sources defaults to (emqx_authz_schema:default_authz/0). Used when the broker runs
# without a node (the node passes the sources of its config).
DEFAULT_ACL_CONF = b"""
{allow, {username, {re, "^dashboard$"}}, subscribe, ["$SYS/#"]}.
{allow, {ipaddr, "127.0.0.1"}, all, ["$SYS/#", "#"]}.
{deny, all, subscribe, ["$SYS/#", {eq, "#"}, {eq, "+/#"}]}.
{allow, all}.
"""

try:
    import resource
except ImportError:  # pragma: no cover
    resource = None

__all__ = ["Message", "Broker"]

_now = time.monotonic


# =============================================================================================
# messages
# =============================================================================================
@dataclass
class Message:
    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    properties: dict = field(default_factory=dict)
    origin_node: str = ""
    # extras (defaults keep the documented positional interface intact)
    from_clientid: str = ""          # publisher's client id (for the MQTT 5 No Local option)
    timestamp: float = field(default_factory=time.time)  # wall clock when published (message expiry)

    def to_wire(self):
        """JSON-safe dict (bytes as base64) for the cluster layer."""
        props = {}
        for k, v in (self.properties or {}).items():
            if isinstance(v, (bytes, bytearray)):
                props[k] = {"$b64": base64.b64encode(bytes(v)).decode("ascii")}
            elif k == "user_property":
                props[k] = [list(p) for p in v]
            else:
                props[k] = v
        return {"topic": self.topic, "payload": base64.b64encode(bytes(self.payload)).decode("ascii"),
                "qos": self.qos, "retain": self.retain, "properties": props, "origin_node": self.origin_node,
                "from_clientid": self.from_clientid, "timestamp": self.timestamp}

    @classmethod
    def from_wire(cls, d):
        props = {}
        for k, v in (d.get("properties") or {}).items():
            if isinstance(v, dict) and "$b64" in v:
                props[k] = base64.b64decode(v["$b64"])
            elif k == "user_property":
                props[k] = [tuple(p) for p in v]
            else:
                props[k] = v
        return cls(topic=d["topic"], payload=base64.b64decode(d.get("payload") or ""), qos=int(d.get("qos", 0)),
                   retain=bool(d.get("retain", False)), properties=props, origin_node=d.get("origin_node", ""),
                   from_clientid=d.get("from_clientid", ""), timestamp=float(d.get("timestamp") or time.time()))


# =============================================================================================
# helpers
# =============================================================================================
def _duration(v, default):
    """Seconds from a number or an EMQX duration string ("15s", "2h", "100ms", "infinity")."""
    if v is None:
        return default
    if isinstance(v, bool):
        return default
    if isinstance(v, (int, float)):
        return float(v)
    s = str(v).strip().lower()
    if s in ("infinity", "disabled"):
        return None
    units = (("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400), ("w", 604800))
    for suffix, mult in units:
        if s.endswith(suffix) and s[:-len(suffix)].replace(".", "", 1).isdigit():
            return float(s[:-len(suffix)]) * mult
    try:
        return float(s)
    except ValueError:
        return default


def _bytesize(v, default):
    if v is None or isinstance(v, bool):
        return default
    if isinstance(v, (int, float)):
        return int(v)
    s = str(v).strip().upper()
    for suffix, mult in (("KB", 1024), ("MB", 1024 ** 2), ("GB", 1024 ** 3), ("B", 1)):
        if s.endswith(suffix) and s[:-len(suffix)].strip().isdigit():
            return int(s[:-len(suffix)]) * mult
    try:
        return int(s)
    except ValueError:
        return default


def _iso(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).astimezone().isoformat(timespec="milliseconds")


def _parse_bind(bind):
    """-> (host, port, family). Accepts 1883, "1883", ":1883", "0.0.0.0:1883", "[::]:1883"."""
    if isinstance(bind, int):
        return "0.0.0.0", bind, socket.AF_INET
    s = str(bind).strip()
    if s.isdigit():
        return "0.0.0.0", int(s), socket.AF_INET
    if s.startswith("["):
        end = s.find("]")
        if end < 0 or not s[end + 1:].startswith(":"):
            raise ValueError("bad bind %r" % bind)
        return s[1:end], int(s[end + 2:]), socket.AF_INET6
    host, sep, port = s.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError("bad bind %r" % bind)
    if not host:
        host = "0.0.0.0"
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    return host, int(port), fam


def _format_bind(bind, port):
    """EMQX style: ":1883" for a bare port, "0.0.0.0:1883", "[::]:1883"."""
    if isinstance(bind, int) or str(bind).strip().isdigit():
        return ":%d" % port
    try:
        host, _p, fam = _parse_bind(bind)
    except (ValueError, TypeError):
        return str(bind)
    if fam == socket.AF_INET6:
        return "[%s]:%d" % (host, port)
    return "%s:%d" % (host, port)


def _cert_cn(peercert):
    if not peercert:
        return None
    for rdn in peercert.get("subject", ()):
        for k, v in rdn:
            if k == "commonName":
                return v
    return None


_DN_ABBR = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU", "countryName": "C",
            "stateOrProvinceName": "ST", "localityName": "L", "emailAddress": "emailAddress"}


def _cert_dn(peercert):
    if not peercert:
        return None
    parts = []
    for rdn in peercert.get("subject", ()):
        for k, v in rdn:
            parts.append("%s=%s" % (_DN_ABBR.get(k, k), v))
    return ",".join(reversed(parts)) or None


_TLS_VERSIONS = {
    "tlsv1.3": ssl.TLSVersion.TLSv1_3, "tlsv1.2": ssl.TLSVersion.TLSv1_2,
    "tlsv1.1": ssl.TLSVersion.TLSv1_1, "tlsv1": ssl.TLSVersion.TLSv1, "tlsv1.0": ssl.TLSVersion.TLSv1,
}


def _make_ssl_context(opts, log, lid):
    opts = opts or {}
    certfile = opts.get("certfile")
    keyfile = opts.get("keyfile")
    if not certfile:
        raise ValueError("ssl_options.certfile is required")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certfile, keyfile or None, password=opts.get("password") or None)
    cacert = opts.get("cacertfile")
    if cacert:
        ctx.load_verify_locations(cafile=cacert)
    verify = str(opts.get("verify", "verify_none"))
    if verify == "verify_peer":
        ctx.verify_mode = ssl.CERT_REQUIRED if opts.get("fail_if_no_peer_cert", False) else ssl.CERT_OPTIONAL
    else:
        ctx.verify_mode = ssl.CERT_NONE
    versions = opts.get("versions") or ["tlsv1.3", "tlsv1.2"]
    if isinstance(versions, str):
        versions = [v.strip() for v in versions.split(",") if v.strip()]
    vs = []
    for v in versions:
        key = str(v).strip().lower()
        if key not in _TLS_VERSIONS:
            raise ValueError("unsupported TLS version %r" % v)
        vs.append(_TLS_VERSIONS[key])
    ctx.minimum_version = min(vs)
    ctx.maximum_version = max(vs)
    old = min(vs) < ssl.TLSVersion.TLSv1_2
    ciphers = opts.get("ciphers")
    if isinstance(ciphers, str):
        ciphers = [c.strip() for c in ciphers.split(",") if c.strip()]
    if ciphers:
        tls12 = [c for c in ciphers if not c.startswith("TLS_")]
        tls13 = [c for c in ciphers if c.startswith("TLS_")]
        if tls13:
            log("debug", "listener %s: TLS 1.3 cipher suites %s cannot be restricted by this stand-in; "
                "OpenSSL defaults used for TLS 1.3" % (lid, ",".join(tls13)))
        if tls12:
            ctx.set_ciphers(":".join(tls12) + (":@SECLEVEL=0" if old else ""))
        elif ssl.TLSVersion.TLSv1_3 not in vs:
            raise ValueError("no TLS 1.2 cipher in ciphers")
    elif old:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


# =============================================================================================
# subscriptions
# =============================================================================================
SubOpts = collections.namedtuple("SubOpts", "qos nl rap rh subid")


def _split_share(tf):
    """'$share/g/t' -> ('g', 't'); '$queue/t' -> ('$queue', 't'); 't' -> (None, 't'). None on bad share."""
    if tf.startswith("$share/"):
        parts = tf.split("/", 2)
        if len(parts) < 3 or not parts[1] or not parts[2] or "+" in parts[1] or "#" in parts[1]:
            return None
        return parts[1], parts[2]
    if tf.startswith("$queue/"):
        real = tf[len("$queue/"):]
        return ("$queue", real) if real else None
    return None, tf


class _Node:
    __slots__ = ("children", "subs", "shared")

    def __init__(self):
        self.children = {}
        self.subs = None     # {session: SubOpts}
        self.shared = None   # {group: {session: SubOpts}}


class _TopicTree:
    def __init__(self):
        self.root = _Node()

    def add(self, real, group, session, opts):
        node = self.root
        for w in real.split("/"):
            nxt = node.children.get(w)
            if nxt is None:
                nxt = node.children[w] = _Node()
            node = nxt
        if group is None:
            if node.subs is None:
                node.subs = {}
            node.subs[session] = opts
        else:
            if node.shared is None:
                node.shared = {}
            node.shared.setdefault(group, {})[session] = opts

    def remove(self, real, group, session):
        path = [self.root]
        words = real.split("/")
        node = self.root
        for w in words:
            node = node.children.get(w)
            if node is None:
                return
            path.append(node)
        if group is None:
            if node.subs:
                node.subs.pop(session, None)
                if not node.subs:
                    node.subs = None
        elif node.shared and group in node.shared:
            node.shared[group].pop(session, None)
            if not node.shared[group]:
                del node.shared[group]
            if not node.shared:
                node.shared = None
        # prune empty nodes
        for i in range(len(words), 0, -1):
            n = path[i]
            if n.children or n.subs or n.shared:
                break
            del path[i - 1].children[words[i - 1]]

    def match(self, topic):
        """-> (list of (session, opts), list of (key, {session: opts})) for shared groups."""
        words = topic.split("/")
        normal = []
        shared = []
        dollar = topic.startswith("$")
        nwords = len(words)

        def collect(node, fkey):
            if node.subs:
                normal.extend(node.subs.items())
            if node.shared:
                for g, members in node.shared.items():
                    shared.append(((g, fkey, id(node)), members))

        def walk(node, i):
            if i == nwords:
                collect(node, i)
                h = node.children.get("#")
                if h is not None:
                    collect(h, i)
                return
            w = words[i]
            nxt = node.children.get(w)
            if nxt is not None:
                walk(nxt, i + 1)
            if i == 0 and dollar:
                return
            nxt = node.children.get("+")
            if nxt is not None:
                walk(nxt, i + 1)
            h = node.children.get("#")
            if h is not None:
                collect(h, i)

        walk(self.root, 0)
        return normal, shared


class _Session:
    __slots__ = ("clientid", "subs", "conn", "inflight", "mqueue", "awaiting_rel", "next_pid", "expiry",
                 "expiry_timer", "created_at", "disconnected_at", "durable")

    def __init__(self, clientid):
        self.clientid = clientid
        self.subs = {}          # full filter (incl. $share/...) -> SubOpts
        self.conn = None
        self.inflight = None    # pid -> [msg, qos, retain_flag, subid, state]   (lazy)
        self.mqueue = None      # deque of (msg, qos, retain_flag, subid)          (lazy)
        self.awaiting_rel = None  # set of incoming QoS 2 packet ids              (lazy)
        self.next_pid = 1
        self.expiry = 0
        self.expiry_timer = None
        self.created_at = time.time()
        self.disconnected_at = None
        self.durable = False    # kept in the node's durable storage (durable.py), not only in memory

    def alloc_pid(self):
        inflight = self.inflight
        for _ in range(65536):
            pid = self.next_pid
            self.next_pid = 1 if pid >= 65535 else pid + 1
            if pid not in inflight:
                return pid
        return None


# =============================================================================================
# listeners
# =============================================================================================
class _Listener:
    __slots__ = ("ltype", "name", "lid", "conf", "bind", "ssl_ctx", "is_ws", "proxy", "proxy_timeout",
                 "max_conns", "count", "sock", "port", "fd", "ws_conf", "pending", "last_reject_log",
                 "paused")

    def __init__(self, ltype, name, conf):
        self.ltype = ltype
        self.name = name
        self.lid = "%s:%s" % (ltype, name)
        self.conf = conf
        self.bind = conf.get("bind", {"tcp": "0.0.0.0:1883", "ssl": "0.0.0.0:8883", "ws": "0.0.0.0:8083",
                                      "wss": "0.0.0.0:8084"}[ltype])
        self.ssl_ctx = None
        self.is_ws = ltype in ("ws", "wss")
        self.proxy = bool(conf.get("proxy_protocol", False))
        self.proxy_timeout = _duration(conf.get("proxy_protocol_timeout"), 3.0) or 3.0
        mc_ = conf.get("max_connections", "infinity")
        self.max_conns = None if mc_ in (None, "infinity") else int(mc_)
        self.count = 0
        self.sock = None
        self.port = None
        self.fd = None
        ws = dict(conf.get("websocket") or {})
        self.ws_conf = ws
        self.pending = {}   # fd -> _PendingProxy
        self.last_reject_log = 0.0
        self.paused = False


class _PendingProxy:
    __slots__ = ("sock", "addr", "buf", "timer", "L", "fd")

    def __init__(self, sock, addr, L):
        self.sock = sock
        self.addr = addr
        self.buf = b""
        self.timer = None
        self.L = L
        self.fd = sock.fileno()


# =============================================================================================
# connection
# =============================================================================================
ST_HTTP, ST_CONNECT, ST_CONNECTED, ST_CLOSED = 0, 1, 2, 3
_REQUIRED_FLAGS = {mc.PUBREL: 2, mc.SUBSCRIBE: 2, mc.UNSUBSCRIBE: 2}
_SUPPORTED_WS_SUBPROTOCOLS = ("mqtt", "mqtt-v3", "mqtt-v3.1.1", "mqtt-v5")


class _WsState:
    __slots__ = ("handshaken", "hbuf", "decoder")

    def __init__(self):
        self.handshaken = False
        self.hbuf = b""
        self.decoder = None


class _Conn(asyncio.Protocol):
    __slots__ = ("broker", "L", "transport", "peer_ip", "peer_port", "ws", "buf", "stage", "proto_ver",
                 "proto_name", "clientid", "username", "keepalive", "clean_start", "will", "session", "last_rx",
                 "created", "connected_at", "peercert_cn", "peercert", "aliases", "out_aliases", "alias_max_out", "inflight_max", "max_pkt_out",
                 "recv_msg", "send_msg", "proxy_info", "counted", "closing_reason", "is_superuser")

    def __init__(self, broker, L, peer, proxy_info):
        self.broker = broker
        self.L = L
        self.transport = None
        self.peer_ip, self.peer_port = peer
        self.ws = None
        self.buf = None
        self.stage = ST_CONNECT
        self.proto_ver = 4
        self.proto_name = "MQTT"
        self.clientid = None
        self.username = None
        self.keepalive = 0
        self.clean_start = True
        self.will = None
        self.session = None
        self.last_rx = self.created = _now()
        self.connected_at = None
        self.peercert_cn = proxy_info.ssl_cn if proxy_info is not None else None
        self.peercert = None
        self.aliases = None
        self.out_aliases = {}       # topic -> alias this channel assigned (emqx_channel topic_aliases.outbound)
        self.alias_max_out = 0      # the client's CONNECT Topic-Alias-Maximum (init_alias_maximum)
        self.inflight_max = 32
        self.max_pkt_out = None
        self.recv_msg = 0
        self.send_msg = 0
        self.proxy_info = proxy_info
        self.counted = False
        self.closing_reason = None
        self.is_superuser = False

    def client_info(self):
        """The parts of emqx_channel's clientinfo that authentication/authorization read. `cn` is
        there only when the connection has a peer certificate (set_peercert_infos/3)."""
        ci = {"username": self.username, "clientid": self.clientid, "peerhost": self.peer_ip,
              "zone": "default", "is_superuser": self.is_superuser}
        if self.peercert_cn is not None:
            ci["cn"] = self.peercert_cn
        return ci

    # ---------------------------------------------------------------- transport callbacks
    def connection_made(self, transport):
        self.transport = transport
        self.counted = True
        b = self.broker
        b._conns.add(self)
        if self.L.ssl_ctx is not None:
            pc = transport.get_extra_info("peercert")
            if pc:
                self.peercert = pc
                self.peercert_cn = _cert_cn(pc)
        if self.L.is_ws:
            self.ws = _WsState()
            self.stage = ST_HTTP

    def connection_lost(self, exc):
        b = self.broker
        if self.counted:
            self.counted = False
            self.L.count -= 1
        b._conns.discard(self)
        if self.stage == ST_CONNECTED:
            reason = self.closing_reason or ("sock_closed" if exc is None else "sock_error: %s" % (exc,))
            b.log("debug", "msg: client_disconnected, clientid: %s, reason: %s" % (self.clientid, reason))
            self._detach(publish_will=True)
        self.stage = ST_CLOSED
        self.transport = None

    def eof_received(self):
        return False  # close our side too

    def data_received(self, data):
        if self.stage == ST_CLOSED:
            return
        self.last_rx = _now()
        try:
            if self.ws is not None:
                self._ws_data(data)
            else:
                self._mqtt_data(data)
        except Exception as e:  # never let a bug kill the loop; drop the client instead
            self.broker.log("error", "msg: connection_crashed, clientid: %s, peername: %s, reason: %r"
                            % (self.clientid, self._peername(), e))
            self._close("internal_error", rc=mc.RC_UNSPECIFIED_ERROR)

    # ---------------------------------------------------------------- output
    def _raw_write(self, data):
        t = self.transport
        if t is not None and not t.is_closing():
            t.write(data)

    def write(self, data):
        if self.stage == ST_CLOSED:
            return
        if self.ws is not None:
            data = wsframe.encode_frame(wsframe.OP_BINARY, data)
        self._raw_write(data)

    def _close(self, reason, rc=None, publish_will=True, connack_rc=None):
        """Close the connection from the server side. rc: MQTT 5 DISCONNECT reason (if connected)."""
        if self.stage == ST_CLOSED:
            return
        self.closing_reason = reason
        if self.stage == ST_CONNECTED:
            if rc is not None and self.proto_ver == 5:
                self.write(mc.encode_disconnect(5, rc))
            self.broker.log("debug", "msg: client_disconnected, clientid: %s, reason: %s" % (self.clientid, reason))
            self._detach(publish_will=publish_will)
        elif connack_rc is not None:
            self.write(connack_rc)
        if self.ws is not None and self.ws.handshaken:
            self._raw_write(wsframe.close_frame(1000))
        self.stage = ST_CLOSED
        t = self.transport
        if t is not None:
            t.close()

    def _peername(self):
        if self.peer_ip and ":" in self.peer_ip:
            return "[%s]:%s" % (self.peer_ip, self.peer_port)
        return "%s:%s" % (self.peer_ip, self.peer_port)

    # ---------------------------------------------------------------- websocket
    def _ws_data(self, data):
        ws = self.ws
        if not ws.handshaken:
            ws.hbuf += data
            if self.broker._looks_like_proxy_header(ws.hbuf) and not self.L.proxy:
                self._refuse_proxy_header()
                return
            try:
                req = wsframe.parse_request(ws.hbuf)
            except wsframe.HttpError as e:
                self._http_fail(e.status, str(e))
                return
            if req is None:
                return
            method, path, headers, consumed = req
            rest = ws.hbuf[consumed:]
            ws.hbuf = None
            wconf = self.L.ws_conf
            if method != "GET":
                self._http_fail(405, "method %s" % method)
                return
            if path != wconf.get("mqtt_path", "/mqtt"):
                self._http_fail(404, "path %s" % path)
                return
            if "websocket" not in headers.get("upgrade", "").lower() or \
                    "upgrade" not in headers.get("connection", "").lower():
                self._http_fail(400, "not a websocket upgrade")
                return
            key = headers.get("sec-websocket-key")
            if not key:
                self._http_fail(400, "no sec-websocket-key")
                return
            if headers.get("sec-websocket-version", "").strip() != "13":
                self._http_fail(426, "sec-websocket-version", {"sec-websocket-version": "13"})
                return
            supported = wconf.get("supported_subprotocols") or _SUPPORTED_WS_SUBPROTOCOLS
            if isinstance(supported, str):
                supported = [p.strip() for p in supported.split(",") if p.strip()]
            offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
            chosen = next((p for p in offered if p in supported), None)
            if chosen is None and wconf.get("fail_if_no_subprotocol", True):
                self._http_fail(400, "no supported subprotocol in %r" % offered)
                return
            hdr = str(wconf.get("proxy_address_header", "x-forwarded-for") or "").lower()
            if hdr and headers.get(hdr):
                self.peer_ip = headers[hdr].split(",")[0].strip()
            phdr = str(wconf.get("proxy_port_header", "x-forwarded-port") or "").lower()
            if phdr and headers.get(phdr, "").strip().isdigit():
                self.peer_port = int(headers[phdr].strip())
            self._raw_write(wsframe.handshake_response(key, chosen))
            ws.handshaken = True
            ws.decoder = wsframe.FrameDecoder(self.broker.max_packet_size + 65536)
            self.stage = ST_CONNECT
            if not rest:
                return
            data = bytes(rest)
        try:
            events = ws.decoder.feed(data)
        except wsframe.WsError as e:
            self.broker.log("info", "msg: websocket_error, peername: %s, reason: %s" % (self._peername(), e))
            self._raw_write(wsframe.close_frame(e.close_code))
            ws.handshaken = False  # do not send a second close frame
            self._close("websocket_error")
            return
        for ev in events:
            if self.stage == ST_CLOSED:
                return
            kind = ev[0]
            if kind == "data":
                self._mqtt_data(ev[1])
            elif kind == "ping":
                self._raw_write(wsframe.encode_frame(wsframe.OP_PONG, ev[1]))
            elif kind == "close":
                code = ev[1]
                self._raw_write(wsframe.close_frame(1000 if code in (1005, 1006) else code))
                ws.handshaken = False
                self._close("websocket_closed")
            elif kind == "text":
                self._raw_write(wsframe.close_frame(1003))
                ws.handshaken = False
                self._close("websocket_text_frame")

    def _http_fail(self, status, text, headers=None):
        self.broker.log("info", "msg: websocket_handshake_refused, listener: %s, peername: %s, status: %d, reason: %s"
                        % (self.L.lid, self._peername(), status, text))
        self._raw_write(wsframe.http_error_response(status, headers))
        self.ws.handshaken = False
        self._close("http_%d" % status)

    # ---------------------------------------------------------------- MQTT stream
    def _refuse_proxy_header(self):
        self.broker.log("error", "msg: frame_error, listener: %s, peername: %s, reason: malformed_packet "
                        "(connection starts with a PROXY protocol header but proxy_protocol is false on this "
                        "listener)" % (self.L.lid, self._peername()))
        self._close("proxy_header_not_expected")

    def _mqtt_data(self, data):
        if self.buf:
            self.buf += data
            data = self.buf
        elif self.stage == ST_CONNECT and not self.L.proxy and self.broker._looks_like_proxy_header(data):
            self._refuse_proxy_header()
            return
        pos = 0
        b = self.broker
        n = len(data)
        try:
            while pos < n and self.stage != ST_CLOSED:
                r = mc.next_packet(data, pos, b.max_packet_size)
                if r is None:
                    break
                first, body_start, end = r
                body = bytes(data[body_start:end])
                pos = end
                self._packet(first >> 4, first & 0x0F, body)
        except mc.MalformedPacket as e:
            self._frame_error(e)
            return
        if self.stage == ST_CLOSED:
            self.buf = None
        elif pos < n:
            if data is self.buf:
                del data[:pos]
            else:
                self.buf = bytearray(data[pos:])
        else:
            self.buf = None

    def _frame_error(self, e):
        self.broker.log("error" if self.stage != ST_CONNECTED else "warning",
                        "msg: frame_error, clientid: %s, peername: %s, reason: %s"
                        % (self.clientid, self._peername(), e))
        self.buf = None
        self._close("frame_error", rc=e.reason_code)

    def _packet(self, ptype, flags, body):
        # emqx_frame.erl parse/2 checks the fixed header's flags (validate_header/4) only in strict mode
        # (mqtt.strict_mode, false by default); otherwise it takes SUBSCRIBE, UNSUBSCRIBE and PUBREL with any flags.
        if self.broker.strict_mode and ptype != mc.PUBLISH and flags != _REQUIRED_FLAGS.get(ptype, 0):
            raise mc.MalformedPacket("bad_frame_header (%s)" % mc.PACKET_NAMES.get(ptype, ptype))
        if self.stage == ST_CONNECT:
            if ptype != mc.CONNECT:
                raise mc.MalformedPacket("unexpected %s before CONNECT" % mc.PACKET_NAMES.get(ptype, ptype),
                                         mc.RC_PROTOCOL_ERROR)
            self._on_connect(body)
            return
        ver = self.proto_ver
        if ptype == mc.PUBLISH:
            self._on_publish(flags, body)
        elif ptype == mc.PUBACK:
            pid, _rc, _p = mc.decode_ack(body, ver)
            self._on_puback(pid)
        elif ptype == mc.PUBREC:
            pid, rc, _p = mc.decode_ack(body, ver)
            self._on_pubrec(pid, rc)
        elif ptype == mc.PUBREL:
            pid, _rc, _p = mc.decode_ack(body, ver)
            ar = self.session.awaiting_rel
            found = bool(ar) and pid in ar
            if found:
                ar.discard(pid)
            self.write(mc.encode_ack(mc.PUBCOMP, pid, ver, 0 if found else mc.RC_PACKET_IDENTIFIER_NOT_FOUND))
        elif ptype == mc.PUBCOMP:
            pid, _rc, _p = mc.decode_ack(body, ver)
            self._on_pubcomp(pid)
        elif ptype == mc.SUBSCRIBE:
            self._on_subscribe(body)
        elif ptype == mc.UNSUBSCRIBE:
            self._on_unsubscribe(body)
        elif ptype == mc.PINGREQ:
            self.write(mc.PINGRESP_PACKET)
        elif ptype == mc.DISCONNECT:
            self._on_disconnect(body)
        elif ptype == mc.CONNECT:
            raise mc.MalformedPacket("second CONNECT", mc.RC_PROTOCOL_ERROR)
        else:
            raise mc.MalformedPacket("unexpected %s from client" % mc.PACKET_NAMES.get(ptype, ptype),
                                     mc.RC_PROTOCOL_ERROR)

    # ---------------------------------------------------------------- CONNECT
    def _refuse(self, ver, rc5, rc3, reason):
        b = self.broker
        b.log("info", "msg: connection_refused, clientid: %s, peername: %s, listener: %s, reason: %s"
              % (self.clientid, self._peername(), self.L.lid, reason))
        pkt = mc.encode_connack(5, False, rc5) if ver == 5 else mc.encode_connack(ver, False, rc3)
        self._close(reason, connack_rc=pkt)

    def _on_connect(self, body):
        b = self.broker
        pkt = mc.decode_connect(body)
        ver = pkt["proto_ver"]
        if pkt.get("unsupported"):
            self._refuse(ver, mc.RC_UNSUPPORTED_PROTOCOL_VERSION, mc.V3_BAD_PROTOCOL_VERSION,
                         "unsupported_protocol_version %r/%r" % (pkt["proto_name"], ver))
            return
        self.proto_ver = ver
        if ver == 5:
            self.alias_max_out = int(pkt["properties"].get("topic_alias_maximum", 0) or 0)
        self.proto_name = pkt["proto_name"]
        props = pkt["properties"]
        clientid = pkt["clientid"]
        self.clientid = clientid or None
        clean_start = pkt["clean_start"]
        if props.get("authentication_method") and not (b.authn is not None and b.authn.enabled()):
            # no authenticator: EMQX would accept and echo the method; the stand-in refuses (harsher)
            self._refuse(ver, mc.RC_BAD_AUTHENTICATION_METHOD, mc.V3_NOT_AUTHORIZED, "bad_authentication_method")
            return
        if props.get("receive_maximum", 1) == 0 or props.get("maximum_packet_size", 1) == 0:
            self._refuse(ver, mc.RC_PROTOCOL_ERROR, mc.V3_SERVER_UNAVAILABLE, "protocol_error")
            return
        # peer certificate as username / client id
        username = pkt["username"]
        pmode = str(b.mqtt_conf.get("peer_cert_as_username", "disabled"))
        if pmode != "disabled":
            v = self._cert_field(pmode)
            if v is not None:
                username = v
        cmode = str(b.mqtt_conf.get("peer_cert_as_clientid", "disabled"))
        if cmode != "disabled":
            v = self._cert_field(cmode)
            if v is not None:
                clientid = v
        assigned = False
        if not clientid:
            if not clean_start:
                self._refuse(ver, mc.RC_CLIENT_IDENTIFIER_NOT_VALID, mc.V3_IDENTIFIER_REJECTED,
                             "empty_clientid_with_clean_start_false")
                return
            clientid = b._gen_clientid()
            assigned = True
        if len(clientid) > b.max_clientid_len:
            self._refuse(ver, mc.RC_CLIENT_IDENTIFIER_NOT_VALID, mc.V3_IDENTIFIER_REJECTED, "clientid_too_long")
            return
        will = pkt["will"]
        if will is not None:
            if will["qos"] > b.max_qos_allowed:
                self._refuse(ver, mc.RC_QOS_NOT_SUPPORTED, mc.V3_SERVER_UNAVAILABLE, "will_qos_not_supported")
                return
            if will["retain"] and not b.retain_available:
                self._refuse(ver, mc.RC_RETAIN_NOT_SUPPORTED, mc.V3_SERVER_UNAVAILABLE, "will_retain_not_supported")
                return
            if not mc.valid_topic_name(will["topic"]):
                self._refuse(ver, mc.RC_TOPIC_NAME_INVALID, mc.V3_SERVER_UNAVAILABLE, "will_topic_invalid")
                return
        self.clientid = clientid
        self.username = username
        # ---- authentication: emqx_channel process_connect/2 runs it after check_connect, enrich_client
        # (client id assignment) and check_banned, before the session is opened or taken over; a
        # refusal drops the will (handle_out(connack, ...) sets will_msg = undefined)
        if b.authn is not None:
            ok, sup, reason = b.authn.authenticate(
                self.client_info(), pkt["password"], auth_method=props.get("authentication_method"),
                enable_authn=self.L.conf.get("enable_authn", True))
            if not ok:
                b.log("warning", "msg: authentication_failure, reason: %s, clientid: %s, username: %s, peername: %s"
                      % (reason, clientid, username, self._peername()))
                if reason == "bad_username_or_password":
                    self._refuse(ver, mc.RC_BAD_USER_NAME_OR_PASSWORD, mc.V3_BAD_USERNAME_OR_PASSWORD, reason)
                else:
                    self._refuse(ver, mc.RC_NOT_AUTHORIZED, mc.V3_NOT_AUTHORIZED, reason)
                return
            self.is_superuser = sup
        self.clean_start = clean_start
        keepalive = pkt["keepalive"]
        connack_props = {}
        if ver == 5 and b.server_keepalive is not None:
            keepalive = b.server_keepalive
            connack_props["server_keep_alive"] = keepalive
        self.keepalive = keepalive
        if ver == 5:
            expiry = props.get("session_expiry_interval", 0)
            self.inflight_max = max(1, min(props.get("receive_maximum", 65535), b.max_inflight))
            self.max_pkt_out = props.get("maximum_packet_size")
        else:
            expiry = 0 if clean_start else b.session_expiry_interval
            self.inflight_max = b.max_inflight
        if will is not None:
            wprops = will["properties"]
            self.will = (Message(topic=will["topic"], payload=will["payload"], qos=will["qos"],
                                 retain=will["retain"],
                                 properties={k: wprops[k] for k in mc.MESSAGE_PROPERTIES if k in wprops},
                                 origin_node=b.node_name, from_clientid=clientid),
                         wprops.get("will_delay_interval", 0))
        # ---- session: takeover / resume / new
        old = b._sessions.get(clientid)
        if old is not None and old.conn is not None and old.conn is not self:
            b.log("info", "msg: session_takeover, clientid: %s, old_peername: %s, new_peername: %s"
                  % (clientid, old.conn._peername(), self._peername()))
            # the old connection's will goes out now unless it has a will delay (then it is cancelled below)
            old.conn._close("takenover" if not clean_start else "discarded", rc=mc.RC_SESSION_TAKEN_OVER)
            old = b._sessions.get(clientid)
        b._cancel_delayed_will(clientid)
        present = False
        if old is not None and not clean_start and old.conn is None:
            session = old
            present = True
            if session.expiry_timer is not None:
                session.expiry_timer.cancel()
                session.expiry_timer = None
        else:
            if old is not None:
                b._destroy_session(old)
            session = _Session(clientid)
            b._sessions[clientid] = session
        session.conn = self
        session.expiry = expiry
        session.disconnected_at = None
        # emqx_session:choose_impl_candidates/2: with durable sessions on, an expiry above 0 makes it durable
        if b.durable is not None and (session.durable or expiry > 0):
            session.durable = True
            b.durable.save_session(clientid, expiry)
        self.session = session
        self.stage = ST_CONNECTED
        self.connected_at = time.time()
        if ver == 5:
            if assigned:
                connack_props["assigned_client_identifier"] = clientid
            connack_props.update(b.connack_props)
        self.write(mc.encode_connack(ver, present, 0, connack_props))
        b.log("debug", "msg: client_connected, clientid: %s, username: %s, peername: %s, listener: %s, proto_ver: %d"
              % (clientid, username, self._peername(), self.L.lid, ver))
        if present:
            self._resend_inflight()
            b._pump(session)

    def _cert_field(self, mode):
        pc = self.peercert
        if mode == "cn":
            return self.peercert_cn
        if not pc:
            return None
        if mode == "dn":
            return _cert_dn(pc)
        t = self.transport
        sslobj = t.get_extra_info("ssl_object") if t is not None else None
        der = sslobj.getpeercert(True) if sslobj is not None else None
        if not der:
            return None
        if mode == "crt":
            return base64.b64encode(der).decode("ascii")
        pem = ssl.DER_cert_to_PEM_cert(der)
        if mode == "pem":
            return pem
        if mode == "md5":
            return hashlib.md5(pem.encode("ascii")).hexdigest()
        return None

    def _resend_inflight(self):
        s = self.session
        if not s.inflight:
            return
        for pid, entry in list(s.inflight.items()):
            msg, qos, retain_flag, subid, state = entry
            if state == 1:
                self.write(mc.encode_ack(mc.PUBREL, pid, self.proto_ver))
            else:
                self._send_publish(msg, qos, retain_flag, pid, subid, dup=True)

    # ---------------------------------------------------------------- session end
    def _detach(self, publish_will):
        """Connection ends: publish the will if needed, keep or destroy the session."""
        b = self.broker
        s = self.session
        self.session = None
        will = self.will
        self.will = None
        if s is None:
            return
        if s.conn is self:
            s.conn = None
        s.disconnected_at = time.time()
        if s.durable and s.conn is None:
            b.durable.save_session(s.clientid, s.expiry, s.disconnected_at)
        if will is not None and publish_will and not b._stopping and b.authz is not None:
            wmsg = will[0]
            # emqx_channel:prepare_will_message_for_publishing/2
            if b.authz.authorize(self.client_info(), {"type": "publish", "qos": wmsg.qos, "retain": wmsg.retain},
                                 wmsg.topic) != "allow":
                b.log("warning", "msg: last_will_testament_publish_denied, clientid: %s, topic: %s, "
                      "client_banned: false, publishing_disallowed: true" % (self.clientid, wmsg.topic))
                will = None
        if will is not None and publish_will and not b._stopping:
            wmsg, delay = will
            if delay and s.expiry:
                b._schedule_will(s.clientid, wmsg, min(delay, s.expiry))
            else:
                b._publish_will(wmsg)
        if s.expiry == 0 or b._stopping:
            b._destroy_session(s)
        elif s.expiry < 0xFFFFFFFF:
            s.expiry_timer = b._loop.call_later(s.expiry, b._expire_session, s)

    def _on_disconnect(self, body):
        rc, props = mc.decode_disconnect(body, self.proto_ver)
        if rc != mc.RC_DISCONNECT_WITH_WILL:
            self.will = None
        s = self.session
        if "session_expiry_interval" in props and s is not None:
            if s.expiry == 0 and props["session_expiry_interval"] != 0:
                self.broker.log("warning", "msg: protocol_error, clientid: %s, reason: session expiry set in "
                                "DISCONNECT after 0 in CONNECT" % self.clientid)
            else:
                s.expiry = props["session_expiry_interval"]
                if s.durable:
                    self.broker.durable.save_session(s.clientid, s.expiry)
        self._close("normal" if rc == 0 else "client_disconnect_rc_0x%02x" % rc)

    # ---------------------------------------------------------------- PUBLISH in
    def _on_publish(self, flags, body):
        b = self.broker
        ver = self.proto_ver
        topic, pid, qos, retain, _dup, props, payload = mc.decode_publish(flags, body, ver)
        b.count_recv_publish(qos)
        if ver == 5 and "topic_alias" in props:
            alias = props.pop("topic_alias")
            if alias == 0 or alias > b.max_topic_alias:
                raise mc.MalformedPacket("topic alias %d out of range" % alias, mc.RC_TOPIC_ALIAS_INVALID)
            if self.aliases is None:
                self.aliases = {}
            if topic:
                self.aliases[alias] = topic
            else:
                topic = self.aliases.get(alias)
                if topic is None:
                    raise mc.MalformedPacket("unknown topic alias %d" % alias, mc.RC_PROTOCOL_ERROR)
        if not mc.valid_topic_name(topic):
            raise mc.MalformedPacket("invalid topic name %r" % topic, mc.RC_TOPIC_NAME_INVALID)
        # emqx_channel process_publish/2: check_pub_authz comes before check_pub_caps
        if b.authz is not None and b.authz.authorize(self.client_info(), {"type": "publish", "qos": qos,
                                                                           "retain": retain}, topic) != "allow":
            b.log("warning", "msg: cannot_publish_to_topic_due_to_not_authorized, reason: not_authorized, "
                  "topic: %s, clientid: %s" % (topic, self.clientid))
            if b.authz.deny_action == "disconnect":
                self._close("not_authorized", rc=mc.RC_NOT_AUTHORIZED)
            elif qos == 1:
                self.write(mc.encode_ack(mc.PUBACK, pid, ver, mc.RC_NOT_AUTHORIZED))
            elif qos == 2:
                self.write(mc.encode_ack(mc.PUBREC, pid, ver, mc.RC_NOT_AUTHORIZED))
            return
        if qos > b.max_qos_allowed:
            raise mc.MalformedPacket("QoS %d not supported" % qos, mc.RC_QOS_NOT_SUPPORTED)
        if retain and not b.retain_available:
            raise mc.MalformedPacket("retain not available", mc.RC_RETAIN_NOT_SUPPORTED)
        self.recv_msg += 1
        s = self.session
        if qos == 2:
            ar = s.awaiting_rel
            if ar is None:
                ar = s.awaiting_rel = set()
            if pid in ar:  # retransmission: acknowledge again, deliver nothing
                self.write(mc.encode_ack(mc.PUBREC, pid, ver))
                return
            ar.add(pid)
        mprops = {k: props[k] for k in mc.MESSAGE_PROPERTIES if k in props} if props else {}
        msg = Message(topic=topic, payload=payload, qos=qos, retain=retain, properties=mprops,
                      origin_node=b.node_name, from_clientid=self.clientid)
        b._publish_local(msg)
        if qos == 1:
            self.write(mc.encode_ack(mc.PUBACK, pid, ver))
        elif qos == 2:
            self.write(mc.encode_ack(mc.PUBREC, pid, ver))

    # ---------------------------------------------------------------- PUBLISH out
    def _send_publish(self, msg, qos, retain_flag, pid, subid, dup=False):
        ver = self.proto_ver
        props = None
        if ver == 5:
            mp = msg.properties
            if mp or subid:
                props = dict(mp) if mp else {}
                exp = props.get("message_expiry_interval")
                if exp is not None:
                    props["message_expiry_interval"] = max(1, int(exp - (time.time() - msg.timestamp)))
                if subid:
                    props["subscription_identifier"] = [subid]
        topic = msg.topic
        self.broker.metrics["messages.delivered"] += 1
        if ver == 5:
            topic, props = self._packing_alias(topic, props)
        pkt = mc.encode_publish(ver, topic, msg.payload, qos, retain_flag, dup, pid, props)
        if self.max_pkt_out and len(pkt) > self.max_pkt_out:
            self.broker.log("debug", "msg: dropped_msg_due_to_max_packet_size, clientid: %s, topic: %s"
                            % (self.clientid, msg.topic))
            return False
        self.write(pkt)
        self.send_msg += 1
        if self.stage != ST_CLOSED:
            self.broker.count_sent_publish(msg.topic, qos)
        return True

    def _packing_alias(self, topic, props):
        """emqx_channel:packing_alias/2: a topic that has an alias goes out as an empty topic name
        plus the alias; a new topic gets the next alias (size of the map + 1) with its full name
        while that number is within the client's Topic-Alias-Maximum; after that, no alias."""
        alias = self.out_aliases.get(topic)
        if alias is not None:
            props = dict(props or {}, topic_alias=alias)
            return "", props
        alias = len(self.out_aliases) + 1
        if alias <= self.alias_max_out:
            self.out_aliases[topic] = alias
            props = dict(props or {}, topic_alias=alias)
        return topic, props

    def _on_puback(self, pid):
        s = self.session
        if s.inflight and pid in s.inflight and s.inflight[pid][1] == 1:
            self.broker.metrics["messages.acked"] += 1
            self.broker._done(s, s.inflight.pop(pid)[0])
            self.broker._pump(s)

    def _on_pubrec(self, pid, rc):
        s = self.session
        entry = s.inflight.get(pid) if s.inflight else None
        if entry is None or entry[1] != 2:
            self.write(mc.encode_ack(mc.PUBREL, pid, self.proto_ver, mc.RC_PACKET_IDENTIFIER_NOT_FOUND))
            return
        self.broker.metrics["messages.acked"] += 1
        if rc >= 0x80:  # receiver refused: message done
            self.broker._done(s, s.inflight.pop(pid)[0])
            self.broker._pump(s)
            return
        entry[4] = 1
        self.write(mc.encode_ack(mc.PUBREL, pid, self.proto_ver))

    def _on_pubcomp(self, pid):
        s = self.session
        if s.inflight and pid in s.inflight and s.inflight[pid][4] == 1:
            self.broker._done(s, s.inflight.pop(pid)[0])
            self.broker._pump(s)

    # ---------------------------------------------------------------- SUBSCRIBE / UNSUBSCRIBE
    def _on_subscribe(self, body):
        b = self.broker
        ver = self.proto_ver
        pid, props, topics = mc.decode_subscribe(body, ver)
        subids = props.get("subscription_identifier")
        subid = None
        if subids:
            if len(subids) > 1 or subids[0] == 0:
                raise mc.MalformedPacket("bad subscription identifier", mc.RC_PROTOCOL_ERROR)
            subid = subids[0]
        s = self.session
        codes = []
        retained_jobs = []
        # emqx_channel process_subscribe/2: check_sub_authzs for every filter first (the real filter
        # of a shared subscription); with deny_action = disconnect one denial disconnects (0x87, no
        # SUBACK, nothing subscribed); then check_sub_caps for the allowed ones
        allowed = []
        for tf, (qos, _nl, _rap, _rh) in topics:
            share = _split_share(tf)
            if share is None or not mc.valid_topic_filter(share[1]):
                allowed.append(None)
                continue
            allowed.append(b._authorize(self, {"type": "subscribe", "qos": qos}, share[1]))
        if b.authz is not None and b.authz.deny_action == "disconnect" and False in allowed:
            self._close("not_authorized", rc=mc.RC_NOT_AUTHORIZED)
            return
        for (tf, (qos, nl, rap, rh)), is_allowed in zip(topics, allowed):
            fail = 0x80
            share = _split_share(tf)
            if share is None or not mc.valid_topic_filter(share[1]):
                code = mc.RC_TOPIC_FILTER_INVALID if ver == 5 else fail
            else:
                group, real = share
                if not is_allowed:
                    code = mc.RC_NOT_AUTHORIZED if ver == 5 else fail   # compat(suback, 0x87) = 0x80
                elif group is not None and not b.shared_subscription:
                    code = mc.RC_SHARED_SUBSCRIPTIONS_NOT_SUPPORTED if ver == 5 else fail
                elif ("+" in real or "#" in real) and not b.wildcard_subscription:
                    code = mc.RC_WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED if ver == 5 else fail
                else:
                    granted = min(qos, b.max_qos_allowed)
                    existed = tf in s.subs
                    opts = SubOpts(granted, nl, rap, rh, subid)
                    s.subs[tf] = opts
                    b._tree.add(real, group, s, opts)
                    if s.durable and group is None:
                        b.durable.save_sub(s.clientid, tf, opts)
                    code = granted
                    if group is None and (rh == 0 or (rh == 1 and not existed)):
                        retained_jobs.append((real, opts))
            codes.append(code)
        self.write(mc.encode_suback(ver, pid, codes))
        for real, opts in retained_jobs:
            b._send_retained(s, real, opts)

    def _on_unsubscribe(self, body):
        b = self.broker
        ver = self.proto_ver
        pid, _props, filters = mc.decode_unsubscribe(body, ver)
        s = self.session
        codes = []
        for tf in filters:
            if tf in s.subs:
                del s.subs[tf]
                share = _split_share(tf)
                b._tree.remove(share[1], share[0], s)
                if s.durable:
                    b.durable.delete_sub(s.clientid, tf)
                codes.append(0)
            else:
                codes.append(mc.RC_NO_SUBSCRIPTION_EXISTED)
        self.write(mc.encode_unsuback(ver, pid, codes))

    # ---------------------------------------------------------------- info
    def info(self):
        s = self.session
        b = self.broker
        return {
            "clientid": self.clientid,
            "username": self.username,
            "ip_address": self.peer_ip,
            "port": self.peer_port,
            "node": b.node_name,
            "proto_name": self.proto_name,
            "proto_ver": self.proto_ver,
            "keepalive": self.keepalive,
            "clean_start": self.clean_start,
            "connected": True,
            "connected_at": _iso(self.connected_at),
            "created_at": _iso(s.created_at if s else self.connected_at),
            "listener": self.L.lid,
            "subscriptions_cnt": len(s.subs) if s else 0,
            "peercert_cn": self.peercert_cn,
            "expiry_interval": s.expiry if s else 0,
            "inflight_cnt": len(s.inflight) if s and s.inflight else 0,
            "mqueue_len": len(s.mqueue) if s and s.mqueue else 0,
            "recv_msg": self.recv_msg,
            "send_msg": self.send_msg,
            "is_bridge": False,
            "zone": "default",
            "mountpoint": None,
            "enable_authn": True,
        }


# =============================================================================================
# broker
# =============================================================================================
class Broker:
    def __init__(self, node_name, listeners, mqtt_conf, forward, log):
        self.node_name = node_name
        self.listeners_conf = listeners or {}
        self.mqtt_conf = dict(mqtt_conf or {})
        self.forward = forward
        self.log = log or (lambda level, text: None)
        m = self.mqtt_conf
        self.max_packet_size = _bytesize(m.get("max_packet_size"), 1048576)
        self.max_clientid_len = int(m.get("max_clientid_len", 65535))
        self.max_qos_allowed = int(m.get("max_qos_allowed", 2))
        self.max_topic_alias = int(m.get("max_topic_alias", 65535))
        self.retain_available = bool(m.get("retain_available", True))
        self.wildcard_subscription = bool(m.get("wildcard_subscription", True))
        self.shared_subscription = bool(m.get("shared_subscription", True))
        self.max_inflight = int(m.get("max_inflight", 32))
        self.max_mqueue_len = m.get("max_mqueue_len", 1000)
        self.max_mqueue_len = None if self.max_mqueue_len == "infinity" else int(self.max_mqueue_len)
        self.mqueue_store_qos0 = bool(m.get("mqueue_store_qos0", True))
        self.keepalive_multiplier = float(m.get("keepalive_multiplier", 1.5))
        self.strict_mode = bool(m.get("strict_mode", False))
        self.idle_timeout = _duration(m.get("idle_timeout"), 15.0)
        sk = m.get("server_keepalive", "disabled")
        self.server_keepalive = None if sk in (None, "disabled") else int(_duration(sk, 0))
        exp = _duration(m.get("session_expiry_interval"), 7200.0)
        self.session_expiry_interval = 0xFFFFFFFF if exp is None else int(exp)
        self.ignore_loop_deliver = bool(m.get("ignore_loop_deliver", False))
        # Access control. The node sets `authn` (authn.Authn) and `authz` (authn.Authz) from its
        # config; a broker without a node has no authenticator and EMQX's default authorization:
        # the file source with the rules of etc/acl.conf (mqtt_conf default_acl = False: no source).
        self.default_acl = bool(m.get("default_acl", True))
        self.authn = None
        sources = [{"type": "file", "enable": True, "_rules": [acl.compile_rule(t) for t in acl.consult(DEFAULT_ACL_CONF)]}] \
            if self.default_acl else []
        self.authz = authn_mod.Authz({"no_match": "allow", "deny_action": "ignore", "sources": sources}, self.log)
        self.connack_props = {
            "retain_available": 1 if self.retain_available else 0,
            "shared_subscription_available": 1 if self.shared_subscription else 0,
            "subscription_identifier_available": 1,
            "topic_alias_maximum": self.max_topic_alias,
            "wildcard_subscription_available": 1 if self.wildcard_subscription else 0,
            "maximum_packet_size": self.max_packet_size,
        }
        if self.max_qos_allowed < 2:
            self.connack_props["maximum_qos"] = self.max_qos_allowed
        self._listeners = []
        self._conns = set()
        self._sessions = {}
        self._tree = _TopicTree()
        # durable sessions (durable.DurableStore, builtin_local): the node sets it when
        # durable_sessions.enable is true
        self.durable = None
        # the retainer (retainer.Retainer): the node sets its cluster-wide one; a broker without a node
        # keeps a local one with EMQX's default retainer config
        try:
            from .retainer import Retainer
        except ImportError:  # pragma: no cover - when imported as a top-level module
            from retainer import Retainer  # type: ignore
        self.retainer = Retainer(log=self.log)
        self._delayed_wills = {}
        self._rr = {}
        self._tasks = set()
        self._loop = None
        self._loop_thread = None
        self._sweep_handle = None
        self._stopping = False
        self._started = False
        self._cid_counter = 0
        # emqx_metrics counters this broker keeps ('messages.*', 'packets.publish.*') and its emqx_stats
        # (prometheus.BrokerStats, from start() to stop()): what /api/v5/prometheus/stats reports
        self.metrics = collections.Counter()
        self.stats = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self):
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._stopping = False
        self._raise_nofile()
        if self.durable is not None:
            self.durable.open()
            self._load_durable_sessions()
        try:
            for ltype in ("tcp", "ssl", "ws", "wss"):
                group = self.listeners_conf.get(ltype) or {}
                if not isinstance(group, dict):
                    continue
                for name, conf in group.items():
                    if not isinstance(conf, dict) or not conf.get("enable", True):
                        continue
                    self._start_listener(_Listener(ltype, name, conf))
        except BaseException:
            self._close_listeners(log_stop=False)
            raise
        self._started = True
        self._sweep_handle = self._loop.call_later(0.5, self._sweep)
        from .prometheus import BrokerStats
        self.stats = BrokerStats(self)
        self.stats.start(self._loop)

    def _start_listener(self, L):
        try:
            if L.ltype in ("ssl", "wss"):
                L.ssl_ctx = _make_ssl_context(L.conf.get("ssl_options"), self.log, L.lid)
            host, port, fam = _parse_bind(L.bind)
            sock = socket.socket(fam, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((host, port))
                sock.listen(int(L.conf.get("backlog", 1024)))
                sock.setblocking(False)
            except BaseException:
                sock.close()
                raise
        except (OSError, ValueError) as e:
            if isinstance(e, OSError) and e.errno in errno.errorcode:
                reason = errno.errorcode[e.errno].lower()
            else:
                reason = str(e)
            where = _format_bind(L.bind, _parse_bind_port(L.bind))
            text = "Failed to start listener %s on %s: %s." % (L.lid, where, reason)
            self.log("error", text)
            raise OSError(getattr(e, "errno", None) or errno.EINVAL, text) from e
        L.sock = sock
        L.fd = sock.fileno()
        L.port = sock.getsockname()[1]
        self._loop.add_reader(L.fd, self._on_accept, L)
        self._listeners.append(L)
        self.log("info", "Listener %s on %s started." % (L.lid, _format_bind(L.bind, L.port)))

    def _close_listeners(self, log_stop=True):
        for L in self._listeners:
            if L.sock is None:
                continue
            try:
                self._loop.remove_reader(L.fd)
            except Exception:
                pass
            L.sock.close()
            L.sock = None
            for p in list(L.pending.values()):
                if self._proxy_drop(p):
                    L.count -= 1
                    try:
                        p.sock.close()
                    except OSError:
                        pass
            if log_stop:
                self.log("info", "Listener %s on %s stopped." % (L.lid, _format_bind(L.bind, L.port)))
        self._listeners = [L for L in self._listeners if L.sock is not None]

    async def stop(self):
        if self._loop is None:
            return
        self._stopping = True
        if self._sweep_handle is not None:
            self._sweep_handle.cancel()
            self._sweep_handle = None
        if self.stats is not None:
            self.stats.stop()
        self._close_listeners()
        for t in list(self._tasks):
            t.cancel()
        for c in list(self._conns):
            c._close("server_shutdown", rc=mc.RC_SERVER_SHUTTING_DOWN, publish_will=False)
        for pending in self._delayed_wills.values():
            pending[0].cancel()
        self._delayed_wills.clear()
        for s in list(self._sessions.values()):
            if s.expiry_timer is not None:
                s.expiry_timer.cancel()
        self._sessions.clear()
        self._tree = _TopicTree()
        deadline = _now() + 2.0
        while (self._conns or self._tasks) and _now() < deadline:
            await asyncio.sleep(0.02)
        for c in list(self._conns):
            if c.transport is not None:
                c.transport.abort()
        await asyncio.sleep(0)
        if self.durable is not None:
            self.durable.close()
        self._started = False

    @staticmethod
    def _raise_nofile():
        if resource is None:
            return
        try:
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            if hard == resource.RLIM_INFINITY:
                hard = 1048576
            if soft != resource.RLIM_INFINITY and soft < hard:
                resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass

    # ------------------------------------------------------------------ accept path
    def _on_accept(self, L):
        loop = self._loop
        for _ in range(128):
            if L.sock is None:
                return
            try:
                csock, addr = L.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self.log("error", "msg: accept_error, listener: %s, reason: %s"
                             % (L.lid, errno.errorcode.get(e.errno, e).lower()))
                    loop.remove_reader(L.fd)
                    L.paused = True
                    loop.call_later(1.0, self._resume_accept, L)
                    return
                continue  # ECONNABORTED and friends
            csock.setblocking(False)
            if L.max_conns is not None and L.count >= L.max_conns:
                now = _now()
                if now - L.last_reject_log > 1.0:
                    L.last_reject_log = now
                    self.log("warning", "msg: max_connections_reached, listener: %s, max_connections: %d, "
                             "peername: %s:%s" % (L.lid, L.max_conns, addr[0], addr[1]))
                try:
                    csock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                except OSError:
                    pass
                csock.close()
                continue
            try:
                csock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            L.count += 1
            if L.proxy:
                self._proxy_start(L, csock, addr)
            else:
                self._hand_over(L, csock, (addr[0], addr[1]), None)

    def _resume_accept(self, L):
        if L.sock is not None and L.paused:
            L.paused = False
            self._loop.add_reader(L.fd, self._on_accept, L)

    def _hand_over(self, L, csock, peer, proxy_info):
        conn = _Conn(self, L, peer, proxy_info)
        if L.ssl_ctx is None:
            # plain socket: create the transport synchronously (no task per connection)
            try:
                self._loop._make_socket_transport(csock, conn)  # noqa: SLF001 - stable CPython API since 3.4
                return
            except AttributeError:
                pass
        task = self._loop.create_task(self._hand_over_async(L, csock, conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _hand_over_async(self, L, csock, conn):
        try:
            await self._loop.connect_accepted_socket(lambda: conn, csock, ssl=L.ssl_ctx,
                                                     ssl_handshake_timeout=_duration(
                                                         (L.conf.get("ssl_options") or {}).get("handshake_timeout"),
                                                         15.0) if L.ssl_ctx else None)
        except BaseException as e:
            if not conn.counted and conn.transport is None:
                L.count -= 1
            try:
                csock.close()
            except OSError:
                pass
            if isinstance(e, asyncio.CancelledError):
                return
            if isinstance(e, (OSError, asyncio.TimeoutError, ConnectionError)):
                reason = getattr(e, "reason", None) or type(e).__name__
                self.log("error" if L.ssl_ctx else "info",
                         "msg: %s, listener: %s, peername: %s, reason: %s"
                         % ("ssl_handshake_failed" if L.ssl_ctx else "socket_error", L.lid, conn._peername(),
                            reason if reason else e))
            else:
                self.log("error", "msg: accept_failed, listener: %s, reason: %r" % (L.lid, e))

    # ------------------------------------------------------------------ PROXY protocol
    def _proxy_start(self, L, csock, addr):
        p = _PendingProxy(csock, addr, L)
        L.pending[p.fd] = p
        self._loop.add_reader(p.fd, self._proxy_readable, p)
        p.timer = self._loop.call_later(L.proxy_timeout, self._proxy_fail, p, "timeout")

    def _proxy_drop(self, p):
        L = p.L
        if L.pending.pop(p.fd, None) is None:
            return False
        try:
            self._loop.remove_reader(p.fd)
        except Exception:
            pass
        if p.timer is not None:
            p.timer.cancel()
        return True

    def _proxy_fail(self, p, reason):
        if not self._proxy_drop(p):
            return
        p.L.count -= 1
        self.log("error", "msg: recv_proxy_info_error, listener: %s, peername: %s:%s, reason: %s"
                 % (p.L.lid, p.addr[0], p.addr[1], reason))
        try:
            p.sock.close()
        except OSError:
            pass

    def _proxy_readable(self, p):
        try:
            peek = p.sock.recv(1024, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self._proxy_fail(p, errno.errorcode.get(e.errno, str(e)).lower())
            return
        if not peek:
            self._proxy_fail(p, "closed")
            return
        combined = p.buf + peek
        try:
            total = proxyproto.header_length(combined)
        except proxyproto.ProxyError as e:
            self._proxy_fail(p, str(e))
            return
        take = len(peek) if total is None else min(len(peek), total - len(p.buf))
        try:
            got = p.sock.recv(take)
        except OSError as e:
            self._proxy_fail(p, str(e))
            return
        p.buf += got
        if total is None or len(p.buf) < total:
            if len(p.buf) > 65535 + 16:
                self._proxy_fail(p, "invalid_proxy_info: header too long")
            return
        try:
            info = proxyproto.parse(p.buf)
        except proxyproto.ProxyError as e:
            self._proxy_fail(p, str(e))
            return
        self._proxy_drop(p)
        if info.has_addresses:
            peer = (info.src_addr, info.src_port)
        else:
            peer = (p.addr[0], p.addr[1])
        self.log("debug", "msg: proxy_protocol_header, listener: %s, socket_peer: %s:%s, info: %r"
                 % (p.L.lid, p.addr[0], p.addr[1], info))
        self._hand_over(p.L, p.sock, peer, info)

    @staticmethod
    def _looks_like_proxy_header(data):
        if not data:
            return False
        head = bytes(data[:12])
        return head.startswith(b"PROXY ") or (len(head) >= 6 and proxyproto.V2_SIG.startswith(head))

    # ------------------------------------------------------------------ periodic checks
    def _sweep(self):
        self._sweep_handle = self._loop.call_later(0.5, self._sweep)
        now = _now()
        mult = self.keepalive_multiplier
        idle = self.idle_timeout
        for c in list(self._conns):
            st = c.stage
            if st == ST_CONNECTED:
                ka = c.keepalive
                if ka and now - c.last_rx > ka * mult:
                    self.log("info", "msg: keepalive_timeout, clientid: %s, peername: %s, keepalive: %d"
                             % (c.clientid, c._peername(), ka))
                    c._close("keepalive_timeout", rc=mc.RC_KEEP_ALIVE_TIMEOUT)
            elif st in (ST_CONNECT, ST_HTTP) and idle is not None and now - c.created > idle:
                self.log("debug", "msg: idle_timeout, peername: %s, listener: %s" % (c._peername(), c.L.lid))
                c._close("idle_timeout")

    # ------------------------------------------------------------------ sessions
    def _gen_clientid(self):
        self._cid_counter += 1
        return "%s-%s-%d" % (self.node_name.split("@")[0], os.urandom(6).hex(), self._cid_counter)

    def _destroy_session(self, s):
        for tf in list(s.subs):
            share = _split_share(tf)
            if share is not None:
                self._tree.remove(share[1], share[0], s)
        s.subs.clear()
        if s.expiry_timer is not None:
            s.expiry_timer.cancel()
            s.expiry_timer = None
        s.inflight = None
        s.mqueue = None
        s.awaiting_rel = None
        if self._sessions.get(s.clientid) is s:
            del self._sessions[s.clientid]
        # a node that stops keeps its durable sessions on disk
        if s.durable and not self._stopping:
            self.durable.delete_session(s.clientid)

    def _expire_session(self, s):
        s.expiry_timer = None
        if s.conn is None and self._sessions.get(s.clientid) is s:
            self.log("debug", "msg: session_expired, clientid: %s" % s.clientid)
            pending = self._delayed_wills.pop(s.clientid, None)
            if pending is not None:  # the session ends: a pending will goes out now
                pending[0].cancel()
                self._publish_will(pending[1])
            self._destroy_session(s)

    def _schedule_will(self, clientid, msg, delay):
        self._cancel_delayed_will(clientid)
        self._delayed_wills[clientid] = (self._loop.call_later(delay, self._fire_delayed_will, clientid, msg), msg)

    def _fire_delayed_will(self, clientid, msg):
        self._delayed_wills.pop(clientid, None)
        self._publish_will(msg)

    def _cancel_delayed_will(self, clientid):
        pending = self._delayed_wills.pop(clientid, None)
        if pending is not None:
            pending[0].cancel()

    def _publish_will(self, msg):
        self.log("debug", "msg: publish_will_message, clientid: %s, topic: %s" % (msg.from_clientid, msg.topic))
        msg.timestamp = time.time()
        self._publish_local(msg)

    def _authorize(self, conn, action, topic):
        """emqx_access_control:authorize/3 -> True (allow) / False (deny)."""
        if self.authz is None:
            return True
        return self.authz.authorize(conn.client_info(), action, topic) == "allow"

    # ------------------------------------------------------------------ routing
    def _publish_local(self, msg):
        """A message accepted from a local client (or its will): the `message.publish` hook of the
        retainer (emqx_retainer:on_message_publish/1, on this node only), then deliver here and forward."""
        sys_msg = msg.topic.startswith("$SYS/")   # emqx_message:is_sys/1: not counted
        if not sys_msg:
            self.metrics["messages.publish"] += 1
        if msg.retain and self.retain_available and self.retainer is not None:
            if not self.retainer.on_message_publish(msg):
                return    # retainer.stop_publish_clear_msg: an empty retained message is not published
        if self._route(msg) == 0 and not sys_msg:
            # emqx_broker:do_route/3 without a route: 'messages.dropped' (.no_subscribers)
            if self.stats is not None:
                self.stats.unrouted(msg)
            else:
                self.metrics["messages.dropped"] += 1
                self.metrics["messages.dropped.no_subscribers"] += 1
        fwd = self.forward
        if fwd is not None:
            try:
                fwd(msg)
            except Exception as e:
                self.log("error", "msg: forward_failed, topic: %s, reason: %r" % (msg.topic, e))

    def _route(self, msg):
        normal, shared = self._tree.match(msg.topic)
        if not normal and not shared:
            return 0
        exp = (msg.properties or {}).get("message_expiry_interval")
        if exp is not None and time.time() - msg.timestamp >= exp:
            return 0
        local_pub = msg.origin_node == self.node_name
        n = 0
        targets = []
        stored = []
        for session, opts in normal:
            if (opts.nl or self.ignore_loop_deliver) and local_pub and msg.from_clientid == session.clientid:
                continue
            delivery = (session, min(msg.qos, opts.qos), msg.retain if opts.rap else False, opts.subid)
            if session.durable:
                # builtin_local: a durable session reads this node's storage only, which holds what was
                # published here; it has no broker route for a peer to forward to
                if msg.origin_node not in ("", self.node_name):
                    continue
                stored.append(delivery)
            targets.append(delivery)
        if stored:
            msg.ds_seq = self.durable.store(msg, [(s.clientid, q, rf, sid) for s, q, rf, sid in stored])
        for session, qos, retain_flag, subid in targets:
            self._deliver(session, msg, qos, retain_flag, subid)
            n += 1
        for key, members in shared:
            if not members:
                continue
            sessions = list(members.items())
            online = [x for x in sessions if x[0].conn is not None] or sessions
            i = self._rr.get(key, 0)
            self._rr[key] = i + 1
            session, opts = online[i % len(online)]
            self._deliver(session, msg, min(msg.qos, opts.qos), msg.retain if opts.rap else False, opts.subid)
            n += 1
        return n

    def _deliver(self, s, msg, qos, retain_flag, subid):
        conn = s.conn
        if conn is not None and conn.stage == ST_CONNECTED:
            if qos == 0:
                conn._send_publish(msg, 0, retain_flag, None, subid)
                self._done(s, msg)
                return
            if s.inflight is None:
                s.inflight = {}
            if len(s.inflight) < conn.inflight_max and not s.mqueue:
                pid = s.alloc_pid()
                if pid is not None:
                    s.inflight[pid] = [msg, qos, retain_flag, subid, 0]
                    if not conn._send_publish(msg, qos, retain_flag, pid, subid):
                        del s.inflight[pid]
                    return
        elif qos == 0 and not self.mqueue_store_qos0:
            self._done(s, msg)
            return
        q = s.mqueue
        if q is None:
            q = s.mqueue = collections.deque()
        if self.max_mqueue_len is not None and len(q) >= self.max_mqueue_len:
            self._done(s, q.popleft()[0])
            self.log("debug", "msg: dropped_msg_due_to_mqueue_is_full, clientid: %s" % s.clientid)
        q.append((msg, qos, retain_flag, subid))

    def _pump(self, s):
        conn = s.conn
        q = s.mqueue
        if conn is None or not q or conn.stage != ST_CONNECTED:
            return
        if s.inflight is None:
            s.inflight = {}
        now = time.time()
        while q and len(s.inflight) < conn.inflight_max:
            msg, qos, retain_flag, subid = q.popleft()
            exp = (msg.properties or {}).get("message_expiry_interval")
            if exp is not None and now - msg.timestamp >= exp:
                self._done(s, msg)
                continue
            if qos == 0:
                conn._send_publish(msg, 0, retain_flag, None, subid)
                self._done(s, msg)
                continue
            pid = s.alloc_pid()
            if pid is None:
                q.appendleft((msg, qos, retain_flag, subid))
                break
            s.inflight[pid] = [msg, qos, retain_flag, subid, 0]
            if not conn._send_publish(msg, qos, retain_flag, pid, subid):
                del s.inflight[pid]
        if not q:
            s.mqueue = None

    def _done(self, s, msg):
        """The session no longer owes this stored message (durable sessions only)."""
        seq = getattr(msg, "ds_seq", None)
        if s.durable and seq is not None:
            self.durable.done(s.clientid, seq)

    def _load_durable_sessions(self):
        """At boot: the durable sessions this node kept, disconnected, with their subscriptions and what they
        are still owed (in the order it was stored), their expiry counted from when they were disconnected."""
        now = time.time()
        for clientid, expiry, disconnected_at, subs, owed in self.durable.load(Message):
            left = expiry - (now - (disconnected_at or now))
            if left <= 0:
                self.durable.delete_session(clientid)
                continue
            s = _Session(clientid)
            s.durable = True
            s.expiry = expiry
            s.disconnected_at = disconnected_at
            for tf, opts in subs.items():
                share = _split_share(tf)
                s.subs[tf] = SubOpts(*opts)
                self._tree.add(share[1], share[0], s, s.subs[tf])
            if owed:
                s.mqueue = collections.deque(owed)
            if expiry < 0xFFFFFFFF:
                s.expiry_timer = self._loop.call_later(left, self._expire_session, s)
            self._sessions[clientid] = s
        if self._sessions:
            self.log("info", "msg: durable_sessions_loaded, count: %d" % len(self._sessions))

    def _send_retained(self, s, real, opts):
        if self.retainer is None:
            return
        for msg in self.retainer.match(real):
            self._deliver(s, msg, min(msg.qos, opts.qos), True, opts.subid)

    # ------------------------------------------------------------------ public interface
    def deliver_remote(self, msg):
        """A PUBLISH that arrived from another node: local subscribers only; never forwarded. (EMQX runs
        the `message.publish` hooks, the retainer's included, on the publishing node only.)"""
        loop = self._loop
        if loop is not None and threading.get_ident() != self._loop_thread:
            loop.call_soon_threadsafe(self._route, msg)
            return
        self._route(msg)

    def publish(self, msg):
        """Publish as this node (e.g. REST API /publish): local delivery, retained store and forward()."""
        if not msg.origin_node:
            msg.origin_node = self.node_name
        loop = self._loop
        if loop is not None and threading.get_ident() != self._loop_thread:
            loop.call_soon_threadsafe(self._publish_local, msg)
            return
        self._publish_local(msg)

    def kick(self, clientid):
        """Disconnect a client (EMQX 'kick': MQTT 5 reason 0x98); True if it was connected."""
        s = self._sessions.get(clientid)
        if s is None or s.conn is None:
            return False
        s.conn._close("kicked", rc=mc.RC_ADMINISTRATIVE_ACTION)
        return True

    def clients(self, include_disconnected=False):
        out = [c.info() for c in list(self._conns) if c.stage == ST_CONNECTED]
        if include_disconnected:
            for s in list(self._sessions.values()):
                if s.conn is None:
                    out.append({"clientid": s.clientid, "username": None, "ip_address": None, "port": None,
                                "node": self.node_name, "connected": False, "created_at": _iso(s.created_at),
                                "disconnected_at": _iso(s.disconnected_at or s.created_at),
                                "subscriptions_cnt": len(s.subs), "expiry_interval": s.expiry,
                                "mqueue_len": len(s.mqueue) if s.mqueue else 0, "peercert_cn": None})
        return out

    def subscriptions_count(self):
        return sum(len(s.subs) for s in list(self._sessions.values()))

    def retained_count(self):
        return self.retainer.count() if self.retainer is not None else 0

    def connection_count(self):
        return sum(1 for c in list(self._conns) if c.stage == ST_CONNECTED)

    def count_recv_publish(self, qos):
        """emqx_metrics:inc_recv/1 of a PUBLISH packet."""
        m = self.metrics
        m["packets.publish.received"] += 1
        m["messages.received"] += 1
        if qos in (0, 1, 2):
            m["messages.qos%d.received" % qos] += 1

    def count_sent_publish(self, topic, qos):
        """emqx_metrics:inc_sent/1 of a PUBLISH packet (none for a $SYS/ topic)."""
        if topic.startswith("$SYS/"):
            return
        m = self.metrics
        m["packets.publish.sent"] += 1
        m["messages.sent"] += 1
        m["messages.qos%d.sent" % qos] += 1

    def listener_ports(self):
        return {L.lid: L.port for L in self._listeners if L.sock is not None}


def _parse_bind_port(bind):
    try:
        return _parse_bind(bind)[1]
    except (ValueError, TypeError):
        return 0
