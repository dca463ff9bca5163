"""Retained messages are one cluster-wide table, as EMQX 5.8.9's emqx_retainer_message (mria, ram_copies
by default): visible on every node, kept through rolling restarts, copied by a node that joins, lost
only when no node keeps a copy (ram) or kept on disc (storage_type = disc); max_retained_messages and
message expiry as emqx_retainer_mnesia.erl / emqx_retainer.erl."""

import os
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from standin import wait_for

_ids = iter(range(1, 1000000))


def all_running(nodes_):
    names = sorted(n.name for n in nodes_)
    for n in nodes_:
        st = n.cluster_status()
        if st["running_nodes"] != names or st["stopped_nodes"] != []:
            return False
    return True


def cluster_of(nodes, n, extra=""):
    hosts = nodes(n, extra=extra)
    for h in hosts:
        h.start()
    for h in hosts[1:]:
        rc, out, _ = h.ctl("cluster", "join", hosts[0].name)
        assert rc == 0 and out.startswith("Join the cluster successfully."), out
    wait_for(lambda: all_running(hosts), timeout=30, what="cluster formed")
    return hosts


def publish(node, items, qos=1, properties=None):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="pub-%d" % next(_ids), protocol=mqtt.MQTTv5)
    c.connect(node.host, 1883)
    c.loop_start()
    try:
        for topic, payload in items:
            c.publish(topic, payload, qos=qos, retain=True, properties=properties).wait_for_publish(5)
    finally:
        c.loop_stop()
        c.disconnect()


def retained(node, tf="ret/#", settle=0.6, expect=None):
    """A fresh subscriber on `node`: {topic: payload} of the retained messages it gets."""
    got = {}
    lock = threading.Lock()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="sub-%d" % next(_ids), protocol=mqtt.MQTTv5)

    def on_message(_c, _u, m):
        if m.retain:
            with lock:
                got[m.topic] = m.payload.decode()
    c.on_message = on_message
    c.connect(node.host, 1883)
    c.loop_start()
    try:
        c.subscribe(tf, qos=1)
        deadline = time.monotonic() + 10
        last, stable_since = -1, time.monotonic()
        while time.monotonic() < deadline:
            with lock:
                n = len(got)
            if expect is not None and n >= expect:
                time.sleep(0.2)
                break
            if n != last:
                last, stable_since = n, time.monotonic()
            elif time.monotonic() - stable_since >= settle:
                break
            time.sleep(0.05)
    finally:
        c.loop_stop()
        c.disconnect()
    with lock:
        return dict(got)


EXPECTED = {"ret/%02d" % i: "v%02d" % i for i in range(50)}


def test_retained_survive_rolling_restart_delete_join_and_full_stop(nodes):
    a, b, c = cluster_of(nodes, 3)
    trio = [a, b, c]
    # 50 retained messages, published round-robin on the three nodes
    for i, n in enumerate(trio):
        publish(n, [(t, p) for t, p in sorted(EXPECTED.items()) if int(t[-2:]) % 3 == i])
    for n in trio:
        assert retained(n, expect=50) == EXPECTED, n.name

    # rolling restart: stop, start, wait until running, one node after the other
    for n in trio:
        n.stop()
        n.start()
        wait_for(lambda: all_running(trio), timeout=30, what="%s back" % n.name)
        assert retained(n, expect=50) == EXPECTED, "after restarting %s" % n.name
    for n in trio:
        assert retained(n, expect=50) == EXPECTED, n.name

    # a delete (empty retained payload) on one node is seen on every node
    publish(b, [("ret/07", b"")])
    want = dict(EXPECTED)
    del want["ret/07"]
    for n in trio:
        wait_for(lambda n=n: retained(n, expect=49) == want, timeout=10, what="delete seen on %s" % n.name)

    # a node that joins later copies the cluster's table (its own retained messages are dropped)
    d = nodes.one()
    d.start()
    publish(d, [("ret/own", "dropped-at-join")])
    rc, out, _ = d.ctl("cluster", "join", a.name)
    assert rc == 0 and out.startswith("Join the cluster successfully."), out
    assert retained(d, expect=49) == want
    # writes on the new member reach the others
    publish(d, [("ret/from-d", "x")])
    want["ret/from-d"] = "x"
    for n in trio + [d]:
        wait_for(lambda n=n: retained(n, expect=50) == want, timeout=10, what="write from d on %s" % n.name)

    # ram_copies (the default): when every node is stopped, no copy is left
    for n in trio + [d]:
        n.stop()
    for n in trio + [d]:
        n.start(wait=False)
    for n in trio + [d]:
        n.wait_up()
    wait_for(lambda: all_running(trio + [d]), timeout=30, what="cluster back after full stop")
    for n in trio + [d]:
        assert retained(n) == {}, n.name
    assert not os.path.exists(os.path.join(a.data, "mnesia", a.name, "emqx_retainer_message.DCD"))


def test_disc_copies_survive_a_full_stop(nodes):
    a, b = cluster_of(nodes, 2, extra="retainer.backend.storage_type = disc\n")
    publish(a, [("ret/%d" % i, "d%d" % i) for i in range(10)])
    want = {"ret/%d" % i: "d%d" % i for i in range(10)}
    assert retained(b, expect=10) == want
    publish(b, [("ret/3", b"")])
    del want["ret/3"]
    wait_for(lambda: retained(a, expect=9) == want, what="delete on a")
    a.stop()
    b.stop()
    assert os.path.exists(os.path.join(b.data, "mnesia", b.name, "emqx_retainer_message.DCD"))
    b.start()
    a.start()
    wait_for(lambda: all_running([a, b]), timeout=30, what="cluster back")
    for n in (a, b):
        assert retained(n, expect=9) == want, n.name


def test_max_retained_messages_and_expiry(nodes):
    n = nodes.one(extra="retainer.backend.max_retained_messages = 3\nretainer.msg_expiry_interval = 5s\n")
    n.start()
    publish(n, [("ret/a", "1"), ("ret/b", "2"), ("ret/c", "3"), ("ret/d", "4")])
    # the table is full: a new topic is not stored, an existing one is replaced
    assert retained(n, expect=3) == {"ret/a": "1", "ret/b": "2", "ret/c": "3"}
    assert "failed_to_retain_message, reason: table_is_full, topic: ret/d" in n.logtext()
    publish(n, [("ret/a", "1b")])
    assert retained(n, expect=3) == {"ret/a": "1b", "ret/b": "2", "ret/c": "3"}
    # Message-Expiry-Interval 0: never expires, whatever retainer.msg_expiry_interval says
    props = Properties(PacketTypes.PUBLISH)
    props.MessageExpiryInterval = 0
    publish(n, [("ret/b", "forever")], properties=props)
    time.sleep(5.3)
    # retainer.msg_expiry_interval = 5s: the others are expired (not delivered, still counted)
    assert retained(n) == {"ret/b": "forever"}
    publish(n, [("ret/e", "5")])
    assert retained(n) == {"ret/b": "forever"}


def test_retainer_disabled_stores_nothing(nodes):
    n = nodes.one(extra="retainer.enable = false\n")
    n.start()
    publish(n, [("ret/x", "y")])
    assert retained(n) == {}


def test_ctl_retainer_info_and_topics(nodes):
    """emqx_retainer_cli: `retainer info` prints the count; `retainer topics [Start Len]` the count, then a page
    of topics; a disabled retainer prints "Retainer is not enabled"; anything else prints the usage. All exit 0."""
    n = nodes.one()
    n.start()
    publish(n, [("ret/%d" % i, "v") for i in range(3)])
    assert n.ctl("retainer", "info")[:2] == (0, "Number of retained messages: 3\n")
    rc, out, _ = n.ctl("retainer", "topics")
    assert rc == 0 and out == "Number of retained messages: 3\nret/0\nret/1\nret/2\n"
    assert n.ctl("retainer", "topics", "2", "2")[1] == "Number of retained messages: 3\nret/2\n"
    rc, out, _ = n.ctl("retainer", "bogus")
    assert rc == 0 and out.startswith("retainer info ") and "# Show the count of retained messages\n" in out
    off = nodes.one(extra="retainer.enable = false\n")
    off.start()
    assert off.ctl("retainer", "topics")[:2] == (0, "Retainer is not enabled\n")
