"""Durable sessions on builtin_local, as EMQX 5.8.9 (emqx_standin/durable.py says where each behaviour is
in the source): a persistent session and what it is owed survive a restart of its node; without durable
sessions they do not; in a cluster, a durable session gets only what was published on its own node."""

import os
import shutil
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import standin
from standin import wait_for

DURABLE = "\ndurable_sessions.enable = true\n"
_ids = iter(range(1, 1000000))


class Subscriber(object):
    """An MQTT 5 client with a session that outlives its connection (expiry 1 h)."""

    def __init__(self, clientid="ds-sub"):
        self.clientid = clientid
        self.got = []
        self.present = None
        self.lock = threading.Lock()

    def connect(self, node, clean_start=False):
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.clientid, protocol=mqtt.MQTTv5)
        connected = threading.Event()

        def on_connect(_c, _u, flags, rc, _p):
            self.present = flags.session_present
            connected.set()

        def on_message(_c, _u, m):
            with self.lock:
                self.got.append(m.payload.decode())
        c.on_connect = on_connect
        c.on_message = on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        c.connect(node.host, 1883, clean_start=clean_start, properties=props)
        c.loop_start()
        assert connected.wait(10), "no CONNACK"
        self.client = c
        return self

    def subscribe(self, tf):
        self.client.subscribe(tf, qos=1)
        time.sleep(0.3)

    def disconnect(self):
        self.client.disconnect()
        self.client.loop_stop()

    def received(self, expect, settle=1.0, timeout=10):
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            with self.lock:
                n = len(self.got)
            if n >= expect and time.monotonic() - since >= 0.3:
                break
            if n != last:
                last, since = n, time.monotonic()
            elif time.monotonic() - since >= settle and n != 0 or time.monotonic() - since >= settle * 3:
                break
            time.sleep(0.05)
        with self.lock:
            return list(self.got)


def publish(node, topic, n, prefix="m"):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="pub-%d" % next(_ids), protocol=mqtt.MQTTv5)
    c.connect(node.host, 1883)
    c.loop_start()
    try:
        for i in range(n):
            c.publish(topic, "%s%03d" % (prefix, i), qos=1).wait_for_publish(5)
    finally:
        c.loop_stop()
        c.disconnect()
    return ["%s%03d" % (prefix, i) for i in range(n)]


def restart(node):
    node.stop()
    node.start()


def offline_subscriber(nodes, extra="", owed=30):
    """A started node, a subscriber to ds/# whose session outlives its connection, gone offline, and owed
    messages published to it meanwhile: (node, subscriber, what was sent)."""
    node = nodes.one(extra=extra)
    node.start()
    sub = Subscriber().connect(node, clean_start=True)
    sub.subscribe("ds/#")
    sub.disconnect()
    return node, sub, publish(node, "ds/a", owed)


def test_a_durable_session_and_what_it_is_owed_survive_a_restart(nodes):
    node, sub, sent = offline_subscriber(nodes, DURABLE)
    restart(node)
    assert "Session durability is enabled" in node.logtext()
    sub.got = []
    sub.connect(node)
    assert sub.present is True
    assert sorted(set(sub.received(30))) == sent
    # what it acknowledged is not owed any more: a second restart brings nothing again
    sub.disconnect()
    restart(node)
    sub.got = []
    sub.connect(node)
    assert sub.present is True
    assert sub.received(0, settle=1.0) == []
    # the subscription itself came through both restarts
    more = publish(node, "ds/b", 5, prefix="n")
    assert sorted(sub.received(5)) == more
    sub.disconnect()


def test_without_durable_sessions_a_restart_ends_the_session(nodes):
    node, sub, _sent = offline_subscriber(nodes)
    restart(node)
    sub.got = []
    sub.connect(node)
    assert sub.present is False
    assert sub.received(0, settle=1.0) == []
    sub.disconnect()


def test_clean_start_discards_the_stored_session(nodes):
    node, sub, _sent = offline_subscriber(nodes, DURABLE, owed=5)
    sub.connect(node, clean_start=True)
    assert sub.present is False
    sub.disconnect()
    restart(node)
    sub.got = []
    sub.connect(node)
    # the session of the clean start (expiry 1 h, so durable too) is back, empty: no message, no subscription
    assert sub.present is True and sub.received(0, settle=1.0) == []
    publish(node, "ds/a", 3)
    assert sub.received(0, settle=1.0) == []
    sub.disconnect()


def test_builtin_local_in_a_cluster_delivers_only_what_the_sessions_node_received(nodes):
    a, b = nodes(2, extra=DURABLE)
    a.start()
    b.start()
    rc, out, _ = b.ctl("cluster", "join", a.name)
    assert rc == 0, out
    wait_for(lambda: len(a.cluster_status()["running_nodes"]) == 2, timeout=30, what="cluster formed")
    sub = Subscriber().connect(b, clean_start=True)
    sub.subscribe("ds/#")
    # a session with expiry 0 stays in memory and gets messages from every node
    mem = Subscriber("mem-sub")
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="mem-sub", protocol=mqtt.MQTTv5)
    c.on_message = lambda _c, _u, m: mem.got.append(m.payload.decode())
    c.connect(b.host, 1883, clean_start=True)
    c.loop_start()
    c.subscribe("ds/#", qos=1)
    time.sleep(0.5)
    from_a = publish(a, "ds/x", 5, prefix="a")
    from_b = publish(b, "ds/x", 5, prefix="b")
    assert sorted(sub.received(5)) == from_b
    wait_for(lambda: len(mem.got) >= 10, timeout=10, what="the in-memory session got both nodes' messages")
    assert sorted(mem.got) == from_a + from_b
    c.loop_stop()
    c.disconnect()
    sub.disconnect()


def test_the_enterprise_default_backend_is_not_in_the_stand_in(nodes, tmp_path):
    dest = tmp_path / "code" / "emqx_standin"
    shutil.copytree(os.path.join(standin.STANDIN_DIR, "emqx_standin"), str(dest),
                    ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "VERSION").write_text("5.9.2\n")
    (dest / "EDITION").write_text("enterprise\n")
    node = nodes.one(extra=DURABLE, code_dir=str(tmp_path / "code"))
    node.start(wait=False)
    wait_for(lambda: node.proc.poll() is not None, timeout=20, what="the node refused to boot")
    assert "builtin_raft is not implemented by the stand-in" in node.console()
