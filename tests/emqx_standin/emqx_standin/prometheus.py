"""EMQX 5.8.9's Prometheus scrape endpoint, GET /api/v5/prometheus/stats on the dashboard listener, and the
gauges and counters behind it (test equipment: a stand-in, not EMQX).

Read in EMQX v5.8.9 (none of its code is copied):
- apps/emqx_prometheus/src/emqx_prometheus_api.erl: `security()` is [] unless prometheus.enable_basic_auth
  (default false), so the scrape needs no credentials by default; with it on, the dashboard's authorize/2
  (API key and secret as HTTP Basic, or a Bearer token). `mode` (query, enum, default `node`); `Accept:
  application/json` (that exact value) gives JSON, anything else the text format with `content-type:
  text/plain` (gen_response/2; minirest 1.4.8 minirest_handler:reply/3 keeps that header).
- include/emqx_prometheus.hrl: the modes node, all_nodes_aggregated, all_nodes_unaggregated.
- emqx_prometheus.erl: collect_mf/2 (the families, their order, help text <<"">>), *_metric_meta/0 (names,
  types, the emqx_stats / emqx_metrics keys behind them), with_node_label/2 and the per-family labels,
  cert_data/0 (emqx_cert_expiry_at{listener_type, listener_name}), collect/1 (the JSON shape).
- emqx_prometheus_cluster.erl: raw_data/2 (node: this node; the other modes: every node of
  mria:running_nodes/0 (sorted), summed (aggre_cluster/3) or listed (zip_cluster/2), failed nodes left
  out; the cluster-consistent part and the certificates always from this node).
- apps/emqx/src/emqx_stats.erl (a 1 s tick; *.max keeps the highest value set), emqx_cm.erl stats_fun/0,
  emqx_broker_helper.erl stats_fun/0, emqx_router_helper.erl stats_fun/0, emqx_shared_sub.erl
  update_stats/0, apps/emqx_retainer/src/emqx_retainer.erl stats_fun/0; emqx_metrics.erl inc_recv/1,
  inc_sent/1 (called by emqx_connection.erl for every packet), emqx_broker.erl publish/2 and do_route/3
  ('messages.publish', 'messages.dropped', 'messages.dropped.no_subscribers'; never for $SYS messages),
  emqx_channel.erl do_deliver/2 ('messages.delivered') and after_message_acked/3 ('messages.acked').
- apps/emqx_management/src/emqx_mgmt.erl vm_stats/0 (it has no `process_total_messages`, so
  emqx_vm_process_messages_in_queues is always 0).
- prometheus.erl v4.10.0 (the release EMQX's fork v4.10.0.2 is tagged from; the fork itself was not
  available) src/formats/prometheus_text_format.erl: per family "# TYPE <name> <type>" then "# HELP <name> "
  (help <<"">>), one line per point, labels in their order, an empty line at the very end.
"""

import asyncio
import base64
import calendar
import collections
import json
import re
import urllib.parse

MODES = ("node", "all_nodes_aggregated", "all_nodes_unaggregated")

# emqx_stats.erl: the stats it creates at init, all 0 (CONNECTION_, CHANNEL_, SESSION_, PUBSUB_, RETAINED_STATS)
STAT_NAMES = (
    "connections.count", "connections.max", "live_connections.count", "live_connections.max",
    "channels.count", "channels.max",
    "sessions.count", "sessions.max", "cluster_sessions.count", "cluster_sessions.max",
    "durable_subscriptions.count", "durable_subscriptions.max", "topics.count", "topics.max",
    "suboptions.count", "suboptions.max", "subscribers.count", "subscribers.max",
    "subscriptions.count", "subscriptions.max", "subscriptions.shared.count", "subscriptions.shared.max",
    "retained.count", "retained.max",
)

# stats_metric_meta/0, in its order (gauges; this node's emqx_stats). Not emitted: emqx_delayed_count and
# emqx_delayed_max (the stand-in has no delayed publish).
STATS = [
    ("emqx_connections_count", "connections.count"), ("emqx_connections_max", "connections.max"),
    ("emqx_live_connections_count", "live_connections.count"),
    ("emqx_live_connections_max", "live_connections.max"),
    ("emqx_sessions_count", "sessions.count"), ("emqx_sessions_max", "sessions.max"),
    ("emqx_channels_count", "channels.count"), ("emqx_channels_max", "channels.max"),
    ("emqx_suboptions_count", "suboptions.count"), ("emqx_suboptions_max", "suboptions.max"),
    ("emqx_subscribers_count", "subscribers.count"), ("emqx_subscribers_max", "subscribers.max"),
    ("emqx_subscriptions_count", "subscriptions.count"), ("emqx_subscriptions_max", "subscriptions.max"),
    ("emqx_durable_subscriptions_count", "durable_subscriptions.count"),
    ("emqx_durable_subscriptions_max", "durable_subscriptions.max"),
]
# stats_metric_cluster_consistented_meta/0, in its order (gauges read from this node's copy of cluster-wide
# tables: never a label). Not emitted: emqx_cluster_sessions_max, emqx_topics_max,
# emqx_subscriptions_shared_max (each node's tick would need the whole cluster's tables).
CONSISTENT = ["emqx_cluster_sessions_count", "emqx_topics_count", "emqx_retained_count", "emqx_retained_max",
              "emqx_subscriptions_shared_count"]
# vm_metric_meta/0: only the one whose value is known (always 0); cpu, run queue, memory and mailbox sizes
# are Erlang VM figures the stand-in does not have.
VM = [("emqx_vm_process_messages_in_queues", None)]
# cluster_metric_meta/0
CLUSTER = ["emqx_cluster_nodes_running", "emqx_cluster_nodes_stopped"]
# emqx_packet_metric_meta/0: the two counted where the stand-in counts messages (counters)
PACKETS = [("emqx_packets_publish_received", "packets.publish.received"),
           ("emqx_packets_publish_sent", "packets.publish.sent")]
# message_metric_meta/0, in its order (counters). Not emitted: emqx_messages_dropped_expired
# (await_pubrel_timeout), emqx_messages_forward, emqx_messages_delayed. 'messages.retained' is never
# incremented by EMQX 5.8.9 (its emqx_metrics index is commented out), so emqx_messages_retained is 0.
MESSAGES = [
    ("emqx_messages_received", "messages.received"), ("emqx_messages_sent", "messages.sent"),
    ("emqx_messages_qos0_received", "messages.qos0.received"), ("emqx_messages_qos0_sent", "messages.qos0.sent"),
    ("emqx_messages_qos1_received", "messages.qos1.received"), ("emqx_messages_qos1_sent", "messages.qos1.sent"),
    ("emqx_messages_qos2_received", "messages.qos2.received"), ("emqx_messages_qos2_sent", "messages.qos2.sent"),
    ("emqx_messages_publish", "messages.publish"), ("emqx_messages_dropped", "messages.dropped"),
    ("emqx_messages_dropped_no_subscribers", "messages.dropped.no_subscribers"),
    ("emqx_messages_retained", "messages.retained"),
    ("emqx_messages_delivered", "messages.delivered"), ("emqx_messages_acked", "messages.acked"),
]
CERT_LISTENER_TYPES = ("ssl", "wss", "quic")   # ?LISTENER_TYPES

PEER_TIMEOUT = 5.0


def is_sys(topic):
    """emqx_message:is_sys/1 for the stand-in's messages (no sys flag): a $SYS/ topic."""
    return topic.startswith("$SYS/")


# =============================================================================================
# per broker: emqx_stats and the drop count of emqx_broker:do_route/3
# =============================================================================================
class BrokerStats:
    """emqx_stats of one broker: every second (the stats tick, each update fun's interval 1 s) the counts of
    emqx_cm, emqx_broker_helper and emqx_retainer are set, and each *.max keeps the highest *.count seen;
    `contrib` is this node's share of the cluster-wide tables (channel registry, routes, shared
    subscriptions) that EMQX reads from its local copy. It lives and dies with the broker (EMQX's emqx
    application, whose restart resets emqx_stats and emqx_metrics)."""

    TICK = 1.0

    def __init__(self, broker):
        self.broker = broker
        self.table = dict.fromkeys(STAT_NAMES, 0)
        self.contrib = {"cluster_sessions": 0, "routes": 0, "shared": 0}
        self._loop = None
        self._handle = None
        self._pending = collections.Counter()
        self._resolver = None

    def start(self, loop):
        self._loop = loop
        self._handle = loop.call_later(self.TICK, self._tick)

    def stop(self):
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._resolver is not None:
            self._resolver.cancel()
            self._resolver = None

    def _tick(self):
        self._handle = self._loop.call_later(self.TICK, self._tick)
        try:
            self.sample()
        except Exception as e:  # a stats fun that crashes is logged; the tick goes on
            self.broker.log("error", "msg: stats_update_failed, reason: %r" % (e,))

    def setstat(self, stat, value):
        """emqx_stats:setstat/3: the max first (when the value is higher), then the count."""
        mx = stat[:-len("count")] + "max"
        if value > self.table.get(mx, 0):
            self.table[mx] = value
        self.table[stat] = value

    def sample(self):
        from .broker import _split_share
        b = self.broker
        chans = subs = shared = dsubs = ds_routes = 0
        routes = set()
        for s in list(b._sessions.values()):
            if s.durable:
                # emqx_persistent_session_ds: subscriptions outside the broker's tables, persistent routes;
                # a channel process only while connected
                dsubs += len(s.subs)
                ds_routes += len(s.subs)
                if s.conn is not None:
                    chans += 1
                continue
            # an in-memory session keeps its channel process (and its subscriptions) while disconnected
            chans += 1
            for tf in s.subs:
                subs += 1
                share = _split_share(tf)
                if share is None or share[0] is None:
                    routes.add(tf)                 # route {Topic, node()}
                else:
                    shared += 1                    # emqx_shared_subscription record
                    routes.add(share)              # route {Topic, {Group, node()}}
        # emqx_cm:stats_fun/0: ?CHAN_TAB (channels, sessions), ?CHAN_CONN_TAB (connections), ?CHAN_LIVE_TAB
        for stat in ("channels.count", "sessions.count", "connections.count"):
            self.setstat(stat, chans)
        self.setstat("live_connections.count", b.connection_count())
        # emqx_broker_helper:stats_fun/0: ?SUBSCRIBER (+ ?SHARED_SUBSCRIBER), ?SUBSCRIPTION, ?SUBOPTION
        for stat in ("subscribers.count", "subscriptions.count", "suboptions.count"):
            self.setstat(stat, subs)
        # emqx_persistent_session_bookkeeper:get_subscription_count/0: 0 without durable sessions
        self.setstat("durable_subscriptions.count", dsubs if b.durable is not None else 0)
        # emqx_retainer:stats_fun/0 runs only while the retainer is enabled (the value stays otherwise)
        r = b.retainer
        if r is not None and getattr(r, "enabled", False):
            self.setstat("retained.count", r.count())
        self.contrib = {"cluster_sessions": chans, "routes": len(routes) + (ds_routes if b.durable is not None else 0),
                        "shared": shared}

    # ---- emqx_broker:do_route/3 with no route at all
    def drop_no_subscribers(self, n=1):
        m = self.broker.metrics
        m["messages.dropped"] += n
        m["messages.dropped.no_subscribers"] += n

    def unrouted(self, msg):
        """A message published here matched no subscription of this node. EMQX looks at its cluster-wide
        route table; the stand-in has none, so with running peers it asks them (batched, after the publish)
        whether any of their subscriptions match, and counts the drop when none does."""
        if is_sys(msg.topic):
            return
        cm = cluster_of(self.broker)
        peers = [] if cm is None else [n for n in cm.running_nodes() if n != cm.name]
        if not peers:
            self.drop_no_subscribers()
            return
        self._pending[msg.topic] += 1
        if self._resolver is None or self._resolver.done():
            self._resolver = asyncio.ensure_future(self._resolve(cm))

    async def _resolve(self, cm):
        while self._pending:
            batch, self._pending = self._pending, collections.Counter()
            topics = list(batch)
            peers = [n for n in cm.running_nodes() if n != cm.name]

            async def ask(p):
                try:
                    return (await peer_call(cm, p, "prometheus", what="match", topics=topics)).get("matched") or []
                except Exception:
                    return []
            found = set()
            for res in await asyncio.gather(*(ask(p) for p in peers)):
                found.update(t for t, hit in zip(topics, res) if hit)
            for t, n in batch.items():
                if t not in found:
                    self.drop_no_subscribers(n)


def cluster_of(broker):
    """The node's ClusterManager (the broker's `forward` is its bound method), or None."""
    cm = getattr(broker.forward, "__self__", None)
    return cm if hasattr(cm, "running_nodes") else None


async def peer_call(cm, peer, op, timeout=PEER_TIMEOUT, **args):
    from .cluster import DistConn
    conn = await DistConn.open(cm.name, cm.cookie, peer, inet6=cm.inet6)
    try:
        return await conn.call(op, timeout=timeout, **args)
    finally:
        conn.close()


# =============================================================================================
# one node's data (emqx_prometheus:fetch_from_local_node/1), also asked by peers (dist op `prometheus`)
# =============================================================================================
def _registry_enabled(conf):
    """broker.enable_session_registry (default true): without it emqx_cm_registry registers nothing."""
    b = conf.get("broker") if isinstance(conf, dict) else None
    return not (isinstance(b, dict) and b.get("enable_session_registry") in (False, "false"))


def local_data(node):
    b = node.broker
    st = getattr(b, "stats", None) if b is not None else None
    table = st.table if st is not None else dict.fromkeys(STAT_NAMES, 0)
    contrib = dict(st.contrib) if st is not None else {"cluster_sessions": 0, "routes": 0, "shared": 0}
    if not _registry_enabled(node.conf):
        contrib["cluster_sessions"] = 0
    m = getattr(b, "metrics", None) or {}
    c = node.cluster
    return {
        "node": node.name,
        "stats": {name: table.get(key, 0) for name, key in STATS},
        "vm": {name: 0 for name, _ in VM},
        "cluster": {"emqx_cluster_nodes_running": len(c.running_nodes()),
                    "emqx_cluster_nodes_stopped": len(c.stopped_nodes())},
        "packets": {name: m.get(key, 0) for name, key in PACKETS},
        "messages": {name: m.get(key, 0) for name, key in MESSAGES},
        "contrib": contrib,
        "retained": {"emqx_retained_count": table["retained.count"], "emqx_retained_max": table["retained.max"]},
    }


def handle_op(node, req):
    """The dist op `prometheus`: this node's data (emqx_prometheus_proto_v2:raw_prom_data/4), or which of
    `topics` a subscription of this node matches (the route check of BrokerStats.unrouted)."""
    if req.get("what") == "match":
        b = node.broker
        out = []
        for t in req.get("topics") or []:
            if b is None:
                out.append(False)
                continue
            normal, shared = b._tree.match(str(t))
            out.append(bool(normal) or any(members for _, members in shared))
        return {"matched": out}
    return {"data": local_data(node)}


# =============================================================================================
# certificates (cert_data/0)
# =============================================================================================
def _tlv(der, i):
    """(tag, start, end) of the DER value at i."""
    tag = der[i]
    n = der[i + 1]
    i += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(der[i:i + k], "big")
        i += k
    return tag, i, i + n


def _asn1_time(tag, text):
    """pubkey_cert:time_str_2_gregorian_sec/1 minus the epoch: UTCTime YYMMDDHHMMSSZ (YY >= 50: 19YY, else
    20YY, RFC 5280 4.1.2.5.1) or GeneralizedTime YYYYMMDDHHMMSSZ."""
    s = text.decode("ascii")
    if tag == 0x17:
        yy = int(s[0:2])
        s = ("19" if yy >= 50 else "20") + s
    return calendar.timegm((int(s[0:4]), int(s[4:6]), int(s[6:8]), int(s[8:10]), int(s[10:12]), int(s[12:14])))


def cert_expiry_at(path):
    """cert_expiry_at_from_path/1: notAfter of the file's first PEM entry as Unix seconds; 0 when the file
    cannot be read, the first entry is not a certificate or anything fails."""
    try:
        with open(path, "rb") as fh:
            pem = fh.read()
        m = re.search(rb"-----BEGIN ([^-\r\n]+)-----(.*?)-----END \1-----", pem, re.S)
        if m is None or m.group(1) != b"CERTIFICATE":
            return 0
        der = base64.b64decode(b"".join(m.group(2).split()))
        _, i, _ = _tlv(der, 0)              # Certificate
        _, i, _ = _tlv(der, i)              # TBSCertificate
        if der[i] == 0xA0:                  # [0] version
            i = _tlv(der, i)[2]
        for _ in range(3):                  # serialNumber, signature, issuer
            i = _tlv(der, i)[2]
        _, i, _ = _tlv(der, i)              # validity
        i = _tlv(der, i)[2]                 # notBefore
        tag, a, e = _tlv(der, i)            # notAfter
        return _asn1_time(tag, der[a:e])
    except Exception:
        return 0


def cert_points(conf):
    """[(labels, epoch)]: for ssl, wss (and quic) listeners, each enabled one with a certfile; per type the
    names folded from maps:keys/1 (sorted) onto the front of the list, i.e. in reverse order."""
    points = []
    listeners = conf.get("listeners") or {}
    for ltype in CERT_LISTENER_TYPES:
        group = listeners.get(ltype)
        if not isinstance(group, dict):
            continue
        for name in sorted(group, reverse=True):
            lc = group[name]
            if not isinstance(lc, dict) or lc.get("enable") is not True:
                continue
            certfile = (lc.get("ssl_options") or {}).get("certfile")
            if certfile is None:
                continue
            points.append(([("listener_type", ltype), ("listener_name", name)], cert_expiry_at(certfile)))
    return points


# =============================================================================================
# the endpoint
# =============================================================================================
def basic_auth_enabled(node):
    """emqx_prometheus_api:security/0: emqx_config:get([prometheus, enable_basic_auth], false), read when the
    dashboard's dispatch is built (the stand-in: at boot)."""
    p = node.conf.get("prometheus") if isinstance(node.conf, dict) else None
    return isinstance(p, dict) and p.get("enable_basic_auth") is True


def _response(status, content_type, body):
    return status, {"content-type": content_type}, body


def _bad_request(message):
    return _response(400, "application/json", json.dumps({"code": "BAD_REQUEST", "message": message}).encode())


def _mode(req):
    """The `mode` query parameter (enum, default node) as emqx_dashboard_swagger's schema check takes it:
    an unknown value, an empty one or the parameter given twice is a 400."""
    raw = getattr(req, "raw_query", None)
    if raw is None:
        values = [req.query["mode"]] if "mode" in req.query else []
    else:
        values = [v for k, v in urllib.parse.parse_qsl(raw, keep_blank_values=True) if k == "mode"]
    if not values:
        return "node", None
    if len(values) == 1 and values[0] in MODES:
        return values[0], None
    value = values[0] if len(values) == 1 else values
    return None, _bad_request(json.dumps({"kind": "validation_error", "path": "mode",
                                          "reason": "unable_to_convert_to_enum_symbol", "value": value},
                                         separators=(",", ":")))


async def _gather(api, mode):
    """Every running node's data: this node's own, the others' by the dist op (a node that fails is left
    out, as emqx_prometheus_cluster leaves out the failed rpc results), in mria:running_nodes/0 order."""
    node = api.node
    c = node.cluster
    names = c.running_nodes()

    async def one(n):
        if n == node.name:
            return local_data(node)
        try:
            return (await peer_call(c, n, "prometheus", what="data", mode=mode))["data"]
        except Exception:
            return None
    out = await asyncio.gather(*(one(n) for n in names))
    return [d for d in out if d]


async def stats(api, req):
    node = api.node
    mode, err = _mode(req)
    if err is not None:
        return err
    as_json = req.headers.get("accept") == "application/json"
    datas = await _gather(api, mode)
    me = next((d for d in datas if d["node"] == node.name), None) or local_data(node)
    consistent = {
        "emqx_cluster_sessions_count": sum(d["contrib"]["cluster_sessions"] for d in datas),
        "emqx_topics_count": sum(d["contrib"]["routes"] for d in datas),
        "emqx_retained_count": me["retained"]["emqx_retained_count"],
        "emqx_retained_max": me["retained"]["emqx_retained_max"],
        "emqx_subscriptions_shared_count": sum(d["contrib"]["shared"] for d in datas),
    }
    certs = cert_points(node.conf)
    olp = _olp_enabled(node.conf)
    if as_json:
        body = json.dumps(_json_data(mode, datas, me, consistent, certs, olp), sort_keys=True,
                          separators=(",", ":")).encode()
        return _response(200, "application/json", body)
    return _response(200, "text/plain", render(_families(mode, datas, me, consistent, certs)).encode())


def _olp_enabled(conf):
    """emqx_config_zones:is_olp_enabled/0 (overload_protection.enable, default false): the olp families."""
    o = conf.get("overload_protection") if isinstance(conf, dict) else None
    return isinstance(o, dict) and o.get("enable") in (True, "true")


def _node_points(mode, datas, me, group, name, summed=True):
    """Points of a per-node family: `node` mode this node's value, no label; all_nodes_aggregated the sum
    (no label) or, for families labelled with the node in that mode (vm, cluster), one point per node;
    all_nodes_unaggregated one point per node, labelled. Per-node points come out last node first (each
    node's points go in front of the accumulated ones)."""
    if mode == "node":
        return [([], me[group][name])]
    if mode == "all_nodes_aggregated" and summed:
        return [([], sum(d[group][name] for d in datas))]
    return [([("node", d["node"])], d[group][name]) for d in reversed(datas)]


def _families(mode, datas, me, consistent, certs):
    fams = []
    for name, _ in STATS:
        fams.append((name, "gauge", _node_points(mode, datas, me, "stats", name)))
    for name in CONSISTENT:
        fams.append((name, "gauge", [([], consistent[name])]))
    for name, _ in VM:
        fams.append((name, "gauge", _node_points(mode, datas, me, "vm", name, summed=False)))
    for name in CLUSTER:
        fams.append((name, "gauge", _node_points(mode, datas, me, "cluster", name, summed=False)))
    for name, _ in PACKETS:
        fams.append((name, "counter", _node_points(mode, datas, me, "packets", name)))
    for name, _ in MESSAGES:
        fams.append((name, "counter", _node_points(mode, datas, me, "messages", name)))
    fams.append(("emqx_cert_expiry_at", "gauge", certs))
    return fams


def _escape_label(v):
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _value(v):
    if v is None:
        return "NaN"
    return str(v) if isinstance(v, int) else repr(v)


def render(families):
    """prometheus_text_format:format/1 of the registry: "# TYPE" and "# HELP" (empty help) per family, even
    one without points, then its points; a final empty line."""
    out = []
    for name, typ, points in families:
        out.append("# TYPE %s %s\n# HELP %s \n" % (name, typ, name))
        for labels, value in points:
            lab = ",".join('%s="%s"' % (k, _escape_label(v)) for k, v in labels)
            out.append("%s%s %s\n" % (name, "{%s}" % lab if lab else "", _value(value)))
    out.append("\n")
    return "".join(out)


def _json_data(mode, datas, me, consistent, certs, olp_enabled):
    """collect(<<"json">>): per key an object in `node` and all_nodes_aggregated mode (json_obj_or_array/1:
    the first of the per-point rows), the list of per-node rows (with `node`, first node first) in
    all_nodes_unaggregated; `metrics` (vm) a list in both cluster modes; `certs` always a list."""
    def rows(group, names, summed=True):
        if mode == "node":
            return [{n: me[group][n] for n in names}]
        if mode == "all_nodes_aggregated" and summed:
            return [{n: sum(d[group][n] for d in datas) for n in names}]
        return [dict({n: d[group][n] for n in names}, node=d["node"]) for d in datas]

    def obj_or_array(rs):
        if mode == "all_nodes_unaggregated":
            return rs
        return rs[0] if rs else {}
    stats_rows = [dict(r, **consistent) for r in rows("stats", [n for n, _ in STATS])]
    vm_rows = rows("vm", [n for n, _ in VM], summed=False)
    out = {
        "stats": obj_or_array(stats_rows),
        "metrics": vm_rows[0] if mode == "node" else vm_rows,
        "packets": obj_or_array(rows("packets", [n for n, _ in PACKETS])),
        "messages": obj_or_array(rows("messages", [n for n, _ in MESSAGES])),
        "cluster": obj_or_array(rows("cluster", CLUSTER, summed=False)),
        "certs": [dict(labels, emqx_cert_expiry_at=v) for labels, v in reversed(certs)],
    }
    if not olp_enabled:
        out["olp"] = obj_or_array([])
    return out
