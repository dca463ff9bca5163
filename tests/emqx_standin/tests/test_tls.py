"""TLS listener configured through emqx.conf, mutual TLS with the CN as username, and TLS gen_rpc."""

import os
import ssl
import time

import paho.mqtt.client as mqtt

from standin import wait_for


def tls_client(cid, host, certs, client_cert=False):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5)
    kw = {}
    if client_cert:
        kw = {"certfile": os.path.join(certs, "client-cert.pem"), "keyfile": os.path.join(certs, "client-key.pem")}
    c.tls_set(ca_certs=os.path.join(certs, "cacert.pem"), cert_reqs=ssl.CERT_REQUIRED, **kw)
    c.tls_insecure_set(True)   # the test server certificate names 127.0.0.1, not this loopback address
    return c


def connects(client, host):
    """True when an MQTT session on host:8883 gets established."""
    try:
        client.connect(host, 8883)
        for _ in range(20):
            if client.loop(timeout=0.1) != mqtt.MQTT_ERR_SUCCESS:
                return False
            if client.is_connected():
                return True
    except (OSError, ssl.SSLError):
        return False
    return client.is_connected()


def ssl_listener(host, mutual):
    opts = ['certfile = "${EMQX_ETC_DIR}/certs/cert.pem"', 'keyfile = "${EMQX_ETC_DIR}/certs/key.pem"',
            'cacertfile = "${EMQX_ETC_DIR}/certs/cacert.pem"', 'versions = ["tlsv1.3", "tlsv1.2"]']
    if mutual:
        opts += ["verify = verify_peer", "fail_if_no_peer_cert = true"]
    return ('listeners.ssl.default {\n  bind = "%s:8883"\n  ssl_options {\n    %s\n  }\n}\n'
            % (host, "\n    ".join(opts)))


def test_tls_listener_from_config(nodes, certs):
    n = nodes.one(certs=certs)
    n.write_conf(open(os.path.join(n.etc, "emqx.conf")).read().replace(
        "listeners.ssl.default = marked_for_deletion\n", "") + ssl_listener(n.host, mutual=False))
    n.start()
    got = []
    c = tls_client("tls-1", n.host, certs)
    c.on_message = lambda _c, _u, m: got.append(m.payload)
    c.connect(n.host, 8883)
    c.loop_start()
    c.subscribe("tls/t", 1)
    time.sleep(0.3)
    c.publish("tls/t", b"over-tls", qos=1).wait_for_publish(5)
    wait_for(lambda: got == [b"over-tls"], what="TLS round trip")
    c.loop_stop()
    c.disconnect()
    # plain MQTT on the TLS port does not work
    assert connects(tls_client("tls-2", n.host, certs), n.host)
    plain = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="plain")
    assert not connects(plain, n.host)


def test_mutual_tls_cn_as_username(nodes, certs):
    n = nodes.one(certs=certs, extra="mqtt.peer_cert_as_username = cn\n")
    n.write_conf(open(os.path.join(n.etc, "emqx.conf")).read().replace(
        "listeners.ssl.default = marked_for_deletion\n", "") + ssl_listener(n.host, mutual=True))
    n.start()
    c = tls_client("mtls-1", n.host, certs, client_cert=True)
    c.connect(n.host, 8883)
    c.loop_start()
    try:
        def listed():
            st, body = n.api_json("GET", "/api/v5/clients?clientid=mtls-1")
            return body["data"] if st == 200 and body["data"] else None
        data = wait_for(listed, what="mTLS client listed")
        assert data[0]["username"] == "device-42"
    finally:
        c.loop_stop()
        c.disconnect()
    nocert = tls_client("mtls-2", n.host, certs, client_cert=False)
    assert not connects(nocert, n.host)


def test_rpc_over_tls(nodes, certs):
    rpc = ('rpc { protocol = ssl, certfile = "${EMQX_ETC_DIR}/certs/node-cert.pem", '
           'keyfile = "${EMQX_ETC_DIR}/certs/node-key.pem", cacertfile = "${EMQX_ETC_DIR}/certs/cacert.pem" }\n')
    a, b = nodes(2, certs=certs, extra=rpc)
    a.start()
    b.start()
    assert b.ctl("cluster", "join", a.name)[1].startswith("Join the cluster successfully.")
    got = []
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="rpc-sub")
    sub.on_message = lambda _c, _u, m: got.append(m.payload)
    sub.connect(b.host, 1883)
    sub.loop_start()
    sub.subscribe("r/#", 1)
    time.sleep(0.5)
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="rpc-pub")
    pub.connect(a.host, 1883)
    pub.loop_start()
    pub.publish("r/1", b"via-tls-rpc", qos=1).wait_for_publish(5)
    wait_for(lambda: got == [b"via-tls-rpc"], what="delivery over TLS gen_rpc")
    for c in (sub, pub):
        c.loop_stop()
        c.disconnect()
