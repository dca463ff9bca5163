"""GET /api/v5/prometheus/stats on the dashboard listener, as EMQX 5.8.9 serves it (emqx_prometheus_api.erl,
emqx_prometheus.erl, emqx_prometheus_cluster.erl): no credentials unless prometheus.enable_basic_auth, the
text format of prometheus.erl, `mode` node / all_nodes_aggregated / all_nodes_unaggregated, gauges that
follow real MQTT clients (emqx_stats, refreshed every second) and counters (emqx_metrics)."""

import json
import os
import re
import ssl
import subprocess
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
import pytest

from emqx_standin import prometheus, schema

from standin import wait_for

PATH = "/api/v5/prometheus/stats"
LINE = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)')


def scrape(node, mode=None, auth=None, accept=None):
    headers = {"Accept": accept} if accept else None
    st, h, body = node.api("GET", PATH + ("?mode=" + mode if mode else ""), auth=auth, headers=headers)
    assert st == 200, (st, body)
    return body if accept == "application/json" else body.decode()


def samples(text):
    """[(name, ((label, value), ...), value)] in the order of the scrape."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = LINE.fullmatch(line)
        assert m, line
        out.append((m.group(1), tuple(re.findall(r'([a-z_]+)="([^"]*)"', m.group(2) or "")), int(m.group(3))))
    return out


def value(node, name, mode=None):
    """The value of an unlabelled sample."""
    got = [v for n, labels, v in samples(scrape(node, mode)) if n == name and not labels]
    assert len(got) == 1, (name, got)
    return got[0]


def values(node, names, mode=None):
    s = {n: v for n, labels, v in samples(scrape(node, mode)) if not labels}
    return {n: s.get(n) for n in names}


def client(cid, host, v5=False, expiry=0):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid,
                    protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311)
    c.received = []
    c.on_message = lambda _c, _u, m: c.received.append((m.topic, m.payload))
    if v5:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = expiry
        c.connect(host, 1883, clean_start=True, properties=props)
    else:
        c.connect(host, 1883)
    c.loop_start()
    wait_for(c.is_connected, timeout=5, what="%s connected" % cid)
    return c


def close(*clients):
    for c in clients:
        c.disconnect()
        c.loop_stop()


def not_after(certfile):
    out = subprocess.run(["openssl", "x509", "-enddate", "-noout", "-in", certfile], capture_output=True,
                         text=True, check=True).stdout
    return int(ssl.cert_time_to_seconds(out.strip().split("=", 1)[1]))


def test_scrape_needs_no_credentials_by_default(nodes, certs):
    n = nodes.one(certs=certs)
    tls = ('listeners.ssl.%s {\n  bind = "%s:%d"\n  ssl_options {\n    certfile = "${EMQX_ETC_DIR}/certs/cert.pem"\n'
           '    keyfile = "${EMQX_ETC_DIR}/certs/key.pem"\n  }\n}\n')
    n.write_conf(open(os.path.join(n.etc, "emqx.conf")).read().replace(
        "listeners.ssl.default = marked_for_deletion\n", "")
        + tls % ("default", n.host, 8883) + tls % ("alt", n.host, 8884))
    n.start()
    # security() is [] while enable_basic_auth is false: no authorization at all, a bad header is ignored
    for auth in (None, ("nobody", "wrong"), "Bearer nothing"):
        st, headers, body = n.api("GET", PATH, auth=auth)
        assert st == 200 and headers["content-type"] == "text/plain", (auth, st)
    text = body.decode()
    assert text.startswith("# TYPE emqx_connections_count gauge\n# HELP emqx_connections_count \n"
                           "emqx_connections_count 0\n# TYPE emqx_connections_max gauge\n")
    assert "# TYPE emqx_messages_received counter\n# HELP emqx_messages_received \nemqx_messages_received 0\n" in text
    assert "\nemqx_cluster_nodes_running 1\n" in text and "\nemqx_cluster_nodes_stopped 0\n" in text
    # node mode: no label but the certificate's listener_type and listener_name; names in reverse order
    expiry = not_after(os.path.join(certs, "cert.pem"))
    assert [s for s in samples(text) if s[1]] == [
        ("emqx_cert_expiry_at", (("listener_type", "ssl"), ("listener_name", "default")), expiry),
        ("emqx_cert_expiry_at", (("listener_type", "ssl"), ("listener_name", "alt")), expiry)]
    assert text.endswith("emqx_cert_expiry_at{listener_type=\"ssl\",listener_name=\"alt\"} %d\n\n" % expiry)
    names = [s[0] for s in samples(text)]
    assert names.index("emqx_connections_count") < names.index("emqx_topics_count") \
        < names.index("emqx_cluster_nodes_running") < names.index("emqx_messages_received") \
        < names.index("emqx_cert_expiry_at")
    # Accept: application/json exactly: JSON (objects in node mode, certs a list)
    st, headers, body = n.api("GET", PATH, auth=None, headers={"Accept": "application/json"})
    assert st == 200 and headers["content-type"] == "application/json"
    data = json.loads(body)
    assert data["stats"]["emqx_connections_count"] == 0 and "node" not in data["stats"]
    assert data["cluster"] == {"emqx_cluster_nodes_running": 1, "emqx_cluster_nodes_stopped": 0}
    assert data["certs"][0] == {"listener_type": "ssl", "listener_name": "alt", "emqx_cert_expiry_at": expiry}
    assert data["olp"] == {}
    assert n.api("GET", PATH, auth=None, headers={"Accept": "application/json, text/plain"})[1][
        "content-type"] == "text/plain"
    # `mode` is an enum checked by the schema: anything else (or twice) is a 400
    for q in ("?mode=bad", "?mode=NODE", "?mode=", "?mode=node&mode=node"):
        st, _, body = n.api("GET", PATH + q, auth=None)
        assert st == 400 and json.loads(body)["code"] == "BAD_REQUEST", q
    assert n.api("GET", PATH + "?mode=node", auth=None)[0] == 200
    assert n.api("POST", PATH, body={}, auth=None)[0] == 405


def test_gauges_and_counters_follow_mqtt_clients(nodes):
    n = nodes.one()
    n.start()
    gauges = ["emqx_connections_count", "emqx_live_connections_count", "emqx_sessions_count",
              "emqx_connections_max", "emqx_subscriptions_count", "emqx_topics_count",
              "emqx_subscriptions_shared_count", "emqx_cluster_sessions_count"]
    c1 = client("c1", n.host)                                  # MQTT 3.1.1 clean session: expiry 0
    c2 = client("c2", n.host, v5=True, expiry=300)             # kept 300 s after it disconnects
    c1.subscribe("t/1", 1)
    c2.subscribe("$share/g/t/#", 0)
    # emqx_stats is refreshed by a 1 s tick, so the gauges follow within a second or two
    wait_for(lambda: values(n, gauges) == {
        "emqx_connections_count": 2, "emqx_live_connections_count": 2, "emqx_sessions_count": 2,
        "emqx_connections_max": 2, "emqx_subscriptions_count": 2, "emqx_topics_count": 2,
        "emqx_subscriptions_shared_count": 1, "emqx_cluster_sessions_count": 2}, timeout=5, what="gauges")

    c2.publish("t/1", b"one", qos=1).wait_for_publish(5)      # to c1 (QoS 1) and the shared group (QoS 0)
    c2.publish("nobody/listens", b"two", qos=0).wait_for_publish(5)
    wait_for(lambda: len(c1.received) == 1 and len(c2.received) == 1, timeout=5, what="deliveries")
    counters = {"emqx_messages_received": 2, "emqx_messages_qos0_received": 1, "emqx_messages_qos1_received": 1,
                "emqx_messages_publish": 2, "emqx_messages_dropped": 1, "emqx_messages_dropped_no_subscribers": 1,
                "emqx_messages_sent": 2, "emqx_messages_qos1_sent": 1, "emqx_messages_qos0_sent": 1,
                "emqx_messages_delivered": 2, "emqx_messages_acked": 1, "emqx_packets_publish_received": 2,
                "emqx_packets_publish_sent": 2, "emqx_messages_retained": 0}
    wait_for(lambda: values(n, counters) == counters, timeout=5, what="message counters")

    close(c1)     # clean session: the channel goes
    wait_for(lambda: values(n, gauges[:4]) == {"emqx_connections_count": 1, "emqx_live_connections_count": 1,
                                               "emqx_sessions_count": 1, "emqx_connections_max": 2},
             timeout=5, what="c1 gone")
    close(c2)     # session expiry 300: the channel (and its subscription) stays, disconnected
    wait_for(lambda: values(n, gauges) == {
        "emqx_connections_count": 1, "emqx_live_connections_count": 0, "emqx_sessions_count": 1,
        "emqx_connections_max": 2, "emqx_subscriptions_count": 1, "emqx_topics_count": 1,
        "emqx_subscriptions_shared_count": 1, "emqx_cluster_sessions_count": 1}, timeout=5, what="c2 kept")
    assert value(n, "emqx_live_connections_max") == 2


def test_two_nodes_modes_and_a_stopped_node(nodes):
    a, b = nodes(2)
    a.start()
    b.start()
    assert b.ctl("cluster", "join", a.name)[1].startswith("Join the cluster successfully.")
    wait_for(lambda: value(a, "emqx_cluster_nodes_running") == 2 and value(b, "emqx_cluster_nodes_running") == 2,
             what="cluster of 2")
    ca = client("ca", a.host)
    cb1 = client("cb1", b.host)
    cb2 = client("cb2", b.host)
    ca.subscribe("x/a", 0)
    cb1.subscribe("x/b", 0)
    # node: this node's connections; the cluster-wide registry and routes; the node's own view of the cluster
    want_a = {"emqx_connections_count": 1, "emqx_cluster_sessions_count": 3, "emqx_topics_count": 2,
              "emqx_cluster_nodes_running": 2, "emqx_cluster_nodes_stopped": 0}
    wait_for(lambda: values(a, want_a) == want_a, timeout=8, what="node mode on a")
    assert values(b, want_a) == dict(want_a, emqx_connections_count=2)

    # all_nodes_aggregated: summed, no label; vm and cluster gauges one point per node, labelled
    hi, lo = sorted([a.name, b.name], reverse=True)
    agg = samples(scrape(a, "all_nodes_aggregated"))
    assert [s for s in agg if s[0] == "emqx_connections_count"] == [("emqx_connections_count", (), 3)]
    assert [s for s in agg if s[0] == "emqx_topics_count"] == [("emqx_topics_count", (), 2)]
    assert [s for s in agg if s[0] == "emqx_cluster_nodes_running"] == [
        ("emqx_cluster_nodes_running", (("node", hi),), 2), ("emqx_cluster_nodes_running", (("node", lo),), 2)]
    # all_nodes_unaggregated: every per-node family labelled with the node (last node first)
    unagg = samples(scrape(a, "all_nodes_unaggregated"))
    conns = {a.name: 1, b.name: 2}
    assert [s for s in unagg if s[0] == "emqx_connections_count"] == [
        ("emqx_connections_count", (("node", hi),), conns[hi]), ("emqx_connections_count", (("node", lo),), conns[lo])]
    assert [s for s in unagg if s[0] == "emqx_cluster_sessions_count"] == [("emqx_cluster_sessions_count", (), 3)]
    data = json.loads(scrape(a, "all_nodes_aggregated", accept="application/json"))
    assert data["stats"]["emqx_connections_count"] == 3 and "node" not in data["stats"]
    assert data["cluster"] == {"node": lo, "emqx_cluster_nodes_running": 2, "emqx_cluster_nodes_stopped": 0}
    assert [m["node"] for m in data["metrics"]] == [lo, hi]
    data = json.loads(scrape(a, "all_nodes_unaggregated", accept="application/json"))
    assert [(s["node"], s["emqx_connections_count"]) for s in data["stats"]] == [(lo, conns[lo]), (hi, conns[hi])]

    # a publish whose only subscriber is on the peer is not dropped; one nobody subscribed to is
    ca.publish("x/b", b"to-b", qos=0).wait_for_publish(5)
    wait_for(lambda: cb1.received == [("x/b", b"to-b")], what="cross-node delivery")
    time.sleep(0.5)      # the stand-in asks the peers after the publish
    assert value(a, "emqx_messages_dropped") == 0
    ca.publish("x/none", b"lost", qos=0).wait_for_publish(5)
    wait_for(lambda: value(a, "emqx_messages_dropped") == 1, timeout=5, what="drop counted")
    assert value(a, "emqx_messages_dropped_no_subscribers") == 1 and value(b, "emqx_messages_dropped") == 0
    assert value(b, "emqx_messages_sent") == 1 and value(a, "emqx_messages_publish") == 2
    assert value(a, "emqx_messages_sent", "all_nodes_aggregated") == 1

    close(ca, cb1, cb2)
    b.stop()
    want = {"emqx_cluster_nodes_running": 1, "emqx_cluster_nodes_stopped": 1, "emqx_connections_count": 0,
            "emqx_cluster_sessions_count": 0}
    wait_for(lambda: values(a, want) == want, timeout=10, what="b reported stopped")
    agg = samples(scrape(a, "all_nodes_aggregated"))
    assert [s for s in agg if s[0] == "emqx_cluster_nodes_stopped"] == [
        ("emqx_cluster_nodes_stopped", (("node", a.name),), 1)]
    assert [s for s in agg if s[0] == "emqx_messages_received"] == [("emqx_messages_received", (), 2)]


def test_basic_auth_when_enabled(nodes):
    n = nodes.one(api_keys=("prom:s3cret-key",), extra='prometheus.enable_basic_auth = true\n'
                                                       'dashboard.default_password = "first-Boot1"\n')
    n.start()
    st, headers, body = n.api("GET", PATH, auth=None)
    assert st == 401 and json.loads(body) == {"code": "AUTHORIZATION_HEADER_ERROR",
                                              "message": "Support authorization: basic/bearer "}
    assert headers["www-authenticate"] == 'Basic Realm="emqx-dashboard"'
    # Basic is an API key and its secret (emqx_mgmt_auth), not a dashboard user's password
    for auth in (("prom", "wrong"), ("admin", "first-Boot1")):
        st, _, body = n.api("GET", PATH, auth=auth)
        assert st == 401 and json.loads(body)["code"] == "BAD_API_KEY_OR_SECRET", auth
    st, headers, body = n.api("GET", PATH, auth=("prom", "s3cret-key"))
    assert st == 200 and headers["content-type"] == "text/plain" and b"emqx_connections_count 0\n" in body
    st, login = n.api_json("POST", "/api/v5/login", {"username": "admin", "password": "first-Boot1"}, auth=None)
    assert st == 200
    assert n.api("GET", PATH + "?mode=all_nodes_aggregated", auth="Bearer " + login["token"])[0] == 200


def test_prometheus_config_schema():
    check = schema.PrometheusSetting()
    # the recommended layout: every key is one of its fields (an empty root too)
    assert check({}, "prometheus")["enable_basic_auth"] is False
    assert check({"enable_basic_auth": "true"}, "prometheus")["enable_basic_auth"] is True
    c = check({"collectors": {"vm_dist": "enabled"}}, "prometheus")["collectors"]
    assert c["vm_dist"] == "enabled" and c["mnesia"] == "disabled"
    # the legacy layout as soon as one key is not: its own keys, and no enable_basic_auth
    legacy = check({"push_gateway_server": "http://pgw:9091", "enable": True}, "prometheus")
    assert legacy["vm_memory_collector"] == "disabled" and "enable_basic_auth" not in legacy
    with pytest.raises(schema.ConfigError) as e:
        check({"push_gateway_server": "http://pgw:9091", "enable_basic_auth": True}, "prometheus")
    assert e.value.reason == "unknown_fields" and e.value.unknown == "enable_basic_auth"
    for bad, path in (({"enable_basic_auth": "yes"}, "prometheus.enable_basic_auth"),
                      ({"push_gateway": {"url": "pgw:9091"}}, "prometheus.push_gateway.url"),
                      ({"collectors": {"vm_dist": "on"}}, "prometheus.collectors.vm_dist")):
        with pytest.raises(schema.ConfigError) as e:
            check(bad, "prometheus")
        assert e.value.path == path
    assert "prometheus" not in schema.LOOSE_ROOTS


def test_cert_expiry_of_unreadable_or_keyfirst_files(tmp_path, certs):
    assert prometheus.cert_expiry_at(str(tmp_path / "missing.pem")) == 0
    keyfirst = tmp_path / "key-then-cert.pem"
    keyfirst.write_bytes(open(os.path.join(certs, "key.pem"), "rb").read()
                         + open(os.path.join(certs, "cert.pem"), "rb").read())
    assert prometheus.cert_expiry_at(str(keyfirst)) == 0          # the first PEM entry is not a certificate
    assert prometheus.cert_expiry_at(os.path.join(certs, "cert.pem")) == not_after(os.path.join(certs, "cert.pem"))
