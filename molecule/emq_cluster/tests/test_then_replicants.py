"""issue 19: cores and replicants (EMQX enterprise), after the discovery tests.

The three nodes and the emq-cluster-dns container become a fresh enterprise cluster (the stand-in's
emqx-enterprise package, a license key): emq-cluster-1 and -2 are cores, emq-cluster-3 and the dns
container are replicants (emq_node_role), static discovery. The role makes the cores the seeds; the
replicants find them by themselves. Messages cross between cores and replicants both ways, EMQX's own API
names each node's role, a replicant that restarts comes back into the cluster, and a second run changes
nothing.
"""

import json
import os
import subprocess
import threading
import time
import urllib.request
import uuid

import paho.mqtt.client as mqtt
import pytest

from cluster_lab import INFRA_ADDR, INFRA_HOST, NODES, SCENARIO, host, members, running, wait

PROJECT = SCENARIO.parents[1]
EE_VERSION = "5.10.4"
EE_PACKAGE = PROJECT / "tests" / "output" / "standin" / ("emqx-enterprise_%s_all.deb" % EE_VERSION)
CORES = {"emq-cluster-1": NODES["emq-cluster-1"], "emq-cluster-2": NODES["emq-cluster-2"]}
REPLICANTS = {"emq-cluster-3": NODES["emq-cluster-3"], INFRA_HOST: INFRA_ADDR}
ALL = dict(CORES, **REPLICANTS)
EVERYONE = sorted("emqx@" + ip for ip in ALL.values())
BACKEND = ("molecule-backend", "molecule-backend-pw")
DASHBOARD = ("admin", "molecule-Cluster-pw")
EE_VARS = ["-e", "emq_node_discovery=static", "-e", "emq_node_version=" + EE_VERSION,
           "-e", "emq_node_package_file=" + str(EE_PACKAGE), "-e", "emq_node_license_key=molecule-license-key"]
# The replicants, and the dns container as a fourth node (an inventory of its own beside Molecule's).
INVENTORY = """emq_nodes:
  hosts:
    emq-cluster-3:
      emq_node_role: replicant
    %s:
      emq_node_role: replicant
      emq_node_cluster_address: %s
""" % (INFRA_HOST, INFRA_ADDR)


def _converge(inventory):
    cmd = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], "-i", str(inventory), *EE_VARS,
           str(SCENARIO / "converge.yml")]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False,
                         env=dict(os.environ, ANSIBLE_LOG_PATH="", ANSIBLE_FORCE_COLOR="false"))
    return run.returncode, run.stdout + run.stderr


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    path = tmp_path_factory.mktemp("replicants") / "replicants.yml"
    path.write_text(INVENTORY)
    return path


@pytest.fixture(scope="module")
def enterprise(dns_server, inventory):
    """A fresh enterprise deployment: the open-source package and its data purged, then the role's run."""
    for name in ALL:
        # Back to Docker's resolver: the DNS tests pointed every container at dnsmasq, which answers test names only.
        host(name).check_output(
            "printf 'nameserver 127.0.0.11\\n' > /etc/resolv.conf; systemctl stop emqx 2>/dev/null;"
            " (dpkg -s emqx >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq emqx >/dev/null); "
            "rm -rf /var/lib/emqx /etc/emqx /etc/emqx-secrets /var/log/emqx /var/cache/iothub-emq; true")
    return _converge(inventory)


def _api(address, path, token=None, body=None):
    req = urllib.request.Request("http://%s:18083/api/v5/%s" % (address, path),
                                 data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _roles(address):
    """{node: role} as EMQX's /api/v5/nodes lists the running nodes."""
    token = _api(address, "login", body={"username": DASHBOARD[0], "password": DASHBOARD[1]})["token"]
    return {n["node"]: n.get("role") for n in _api(address, "nodes", token) if n.get("node_status") == "running"}


class _Client:
    """A plain MQTT client (the controller is in the nodes' client network) straight to one node."""

    def __init__(self, address):
        self.messages, self.lock, self.connected = [], threading.Lock(), threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="molecule-" + uuid.uuid4().hex[:10])
        self.client.username_pw_set(*BACKEND)
        self.client.on_connect = lambda c, u, f, rc, p=None: rc == 0 and self.connected.set()
        self.client.on_message = self._message
        self.client.connect(address, 1883, keepalive=30)
        self.client.loop_start()
        assert self.connected.wait(10), "no CONNACK from %s" % address

    def _message(self, _client, _userdata, message):
        with self.lock:
            self.messages.append((message.topic, message.payload))

    def has(self, item):
        with self.lock:
            return item in self.messages

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def _crosses(subscribers, publishers):
    """Every subscriber gets what every publisher sends (QoS 1, one topic per publisher); the misses."""
    subs = {name: _Client(ALL[name]) for name in subscribers}
    pubs = {name: _Client(ALL[name]) for name in publishers}
    try:
        topics = dict((name, "molecule/roles/%s/%s" % (name, uuid.uuid4().hex[:6])) for name in publishers)
        for sub in subs.values():
            for topic in topics.values():
                sub.client.subscribe(topic, qos=1)
        time.sleep(1)  # the routes reach every node
        for name, pub in pubs.items():
            pub.client.publish(topics[name], b"from " + name.encode(), qos=1).wait_for_publish(5)
        def missing():
            return [(s, p) for s, sub in subs.items() for p in publishers if not sub.has((topics[p], b"from " + p.encode()))]

        wait(lambda: not missing(), 10)
        return missing()
    finally:
        for client in list(subs.values()) + list(pubs.values()):
            client.close()


def test_cores_are_the_seeds_and_replicants_join_them(enterprise):
    rc, out = enterprise
    assert rc == 0, out[-5000:]
    seeds = 'seeds = ["emqx@%s", "emqx@%s"]' % (CORES["emq-cluster-1"], CORES["emq-cluster-2"])
    for name in ALL:
        conf = host(name).file("/etc/emqx/emqx.conf").content_string
        assert seeds in conf, conf
        assert ('role = "replicant"' in conf) == (name in REPLICANTS), conf
    assert members(ALL) == {n: EVERYONE for n in ALL}
    # emq_cluster's report names each node's role; an even number of cores is warned about.
    for name, address in ALL.items():
        role = "replicant" if name in REPLICANTS else "core"
        assert "emqx@%s  running  %s  %s" % (address, EE_VERSION, role) in out, out[-3000:]
    assert "EMQ recommends an odd number of cores" in out


def test_emqx_lists_each_node_with_its_role(enterprise):
    expected = dict(("emqx@" + ip, "replicant" if name in REPLICANTS else "core") for name, ip in ALL.items())
    for name in ("emq-cluster-1", "emq-cluster-3"):
        assert _roles(ALL[name]) == expected


def test_messages_cross_between_cores_and_replicants(enterprise):
    assert _crosses(["emq-cluster-1", INFRA_HOST], ["emq-cluster-2", "emq-cluster-3"]) == []


def test_a_replicant_that_restarts_comes_back(enterprise):
    host("emq-cluster-3").check_output("systemctl restart emqx")
    assert wait(lambda: all(running(n) == EVERYONE for n in ALL), 120), members(ALL)
    assert _crosses(["emq-cluster-3"], ["emq-cluster-1", INFRA_HOST]) == []


def test_a_second_run_with_replicants_changes_nothing(enterprise, inventory):
    rc, out = _converge(inventory)
    recap = [line for line in out.splitlines() if "ok=" in line and line.split()[0] in ALL]
    assert rc == 0 and len(recap) == 4 and all("changed=0" in line for line in recap), out[-3000:]
