"""The cluster as a user sees it: membership, cross-node delivery, firewall."""

import json
import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest
import testinfra

NODES = {
    "emq-cluster-1": "172.30.2.11",
    "emq-cluster-2": "172.30.2.12",
    "emq-cluster-3": "172.30.2.13",
}
NAMES = sorted("emqx@" + ip for ip in NODES.values())


def _host(name):
    return testinfra.get_host("docker://" + name)


@pytest.mark.parametrize("name", sorted(NODES))
def test_every_node_sees_three_running(name):
    status = json.loads(_host(name).check_output("emqx ctl cluster status --json"))
    assert sorted(status["running_nodes"]) == NAMES
    assert status["stopped_nodes"] == []


def _client(ip, cid, received=None):
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv311)
    connected = threading.Event()
    client.on_connect = lambda c, u, f, rc, p=None: connected.set()
    if received is not None:
        client.on_message = lambda c, u, msg: received.append((msg.topic, msg.payload))
    client.connect(ip, 1883, keepalive=30)
    client.loop_start()
    assert connected.wait(10), "no CONNACK from %s" % ip
    return client


def test_publish_on_node1_reaches_subscribers_on_node2_and_node3():
    topic = "molecule/%s/telemetry" % uuid.uuid4().hex
    inboxes = {}
    subs = []
    for name in ("emq-cluster-2", "emq-cluster-3"):
        inboxes[name] = []
        client = _client(NODES[name], "sub-" + name, inboxes[name])
        done = threading.Event()
        client.on_subscribe = lambda c, u, mid, rc, p=None, done=done: done.set()
        client.subscribe("molecule/+/telemetry", qos=1)
        assert done.wait(10)
        subs.append(client)
    time.sleep(1)  # routes reach the other nodes
    pub = _client(NODES["emq-cluster-1"], "pub-1")
    pub.publish(topic, b"hello from node 1", qos=1).wait_for_publish(10)
    deadline = time.time() + 10
    while time.time() < deadline and not all(inboxes.values()):
        time.sleep(0.2)
    time.sleep(1)  # any duplicate would arrive by now
    for client in subs + [pub]:
        client.loop_stop()
        client.disconnect()
    for name, inbox in inboxes.items():
        assert inbox == [(topic, b"hello from node 1")], name


def test_dashboard_closed_to_peers():
    # node 2 is a cluster peer, not an admin network: 18083 on node 1 is closed to it ...
    peer = _host("emq-cluster-2")
    cmd = "curl -s -o /dev/null -m 3 -w '%%{http_code}' http://%s:18083/status" % NODES["emq-cluster-1"]
    assert peer.run(cmd).stdout != "200"
    # ... while the cluster port is open to it.
    assert peer.run("timeout 3 bash -c '</dev/tcp/%s/4370'" % NODES["emq-cluster-1"]).rc == 0
