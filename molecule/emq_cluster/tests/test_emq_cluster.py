"""The cluster as a user sees it: membership, cross-node delivery, firewall."""

import json
import os
import subprocess
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
    client.username_pw_set("molecule-backend", "molecule-backend-pw")  # a superuser of the scenario's inventory
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


# ---- a rollout that stops at the first node that does not come back --------------------------------
WATCHED = ("/etc/emqx/emqx.conf", "/etc/emqx-secrets/secrets.conf", "/etc/emqx-secrets/api_keys")


def _state(name):
    """What a user compares before and after: the service's InvocationID and the files EMQX starts on."""
    host = _host(name)
    sums = host.check_output("sha256sum %s" % " ".join(WATCHED))
    return {
        "invocation": host.check_output("systemctl show -p InvocationID --value emqx.service"),
        "active": host.check_output("systemctl is-active emqx.service || true"),
        "files": dict(reversed(line.split(None, 1)) for line in sums.splitlines()),
    }


def _run_converge(*extra):
    scenario = os.environ.get("MOLECULE_SCENARIO_DIRECTORY", os.path.dirname(os.path.dirname(__file__)))
    cmd = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], *extra, os.path.join(scenario, "converge.yml")]
    env = dict(os.environ, ANSIBLE_LOG_PATH="", ANSIBLE_FORCE_COLOR="false")
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, check=False)
    return run.returncode, run.stdout + run.stderr


@pytest.fixture(scope="module")
def cookie_change():
    """A cookie changed on every node (one value, so the preflight cannot tell): node 1 restarts on it,
    cannot reach the two others, and the rollout must stop there and put node 1 back."""
    before = {name: _state(name) for name in NODES}
    new_cookie = "changed-cookie-" + uuid.uuid4().hex
    started = time.monotonic()
    rc, out = _run_converge("-e", "emq_node_cookie=" + new_cookie, "-e", "emq_node_start_timeout=30")
    took = time.monotonic() - started
    after = {name: _state(name) for name in NODES}
    return {"before": before, "after": after, "rc": rc, "out": out, "cookie": new_cookie, "took": took}


def test_the_rollout_stops_with_what_was_wrong_and_what_was_restored(cookie_change):
    out = cookie_change["out"]
    assert cookie_change["rc"] == 2, out[-4000:]
    assert "EMQX on emq-cluster-1 did not come back after its restart" in out, out[-4000:]
    assert "no other node was restarted" in out
    assert "emq-cluster-1:/etc/emqx-secrets/secrets.conf" in out, "the message names the file put back"
    assert "answers /status again on its last good configuration" in out
    assert cookie_change["cookie"] not in out, "the new cookie was printed"
    print("rollout stopped after %.0f s" % cookie_change["took"])


def test_only_the_first_node_was_restarted(cookie_change):
    before, after = cookie_change["before"], cookie_change["after"]
    assert after["emq-cluster-1"]["invocation"] != before["emq-cluster-1"]["invocation"]
    for name in ("emq-cluster-2", "emq-cluster-3"):
        assert after[name]["invocation"] == before[name]["invocation"], name + " was restarted"
        assert after[name]["active"] == "active", name


def test_every_node_is_back_on_the_files_it_ran_before(cookie_change):
    before, after = cookie_change["before"], cookie_change["after"]
    for name in NODES:
        assert after[name]["files"] == before[name]["files"], name


def test_the_cluster_is_whole_again_after_the_stopped_rollout(cookie_change):
    deadline = time.monotonic() + 60
    while True:
        status = json.loads(_host("emq-cluster-1").check_output("emqx ctl cluster status --json"))
        if sorted(status["running_nodes"]) == NAMES or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert sorted(status["running_nodes"]) == NAMES
