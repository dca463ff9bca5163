"""issue 19: cores and replicants (EMQX enterprise), after the discovery tests.

The three nodes and the emq-cluster-dns container become a fresh enterprise cluster (the stand-in's
emqx-enterprise package, a license key): emq-cluster-1 and -2 are cores, emq-cluster-3 and the dns
container are replicants (emq_node_role), static discovery. The role makes the cores the seeds; the
replicants find them by themselves. HAProxy (haproxy_lb, on the dns container) sends devices to the
replicants and to the cores only while no replicant is up. Messages cross between cores and replicants both
ways, EMQX's own API names each node's role, and a replicant that restarts comes back into the cluster.
(The role's second run is proven by the scenario's idempotence step; this stage's only differences, node.role
and the seeds, are rendered the same way.)
"""

import json
import os
import subprocess
import threading
import time
import urllib.request
import uuid

import pathlib
import sys

import paho.mqtt.client as mqtt
import pytest

from cluster_lab import INFRA_ADDR, INFRA_HOST, NODES, SCENARIO, host, members, running, wait

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "_shared"))
from lbtest import Device  # noqa: E402  pylint: disable=wrong-import-position

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
# The replicants, the dns container as a fourth node and as HAProxy (an inventory of its own beside Molecule's).
# No PROXY protocol: the tests' clients also speak to the nodes straight.
INVENTORY = """emq_nodes:
  vars:
    emq_node_proxy_protocol: false
  hosts:
    emq-cluster-3:
      emq_node_role: replicant
    %(infra)s:
      emq_node_role: replicant
      emq_node_cluster_address: %(addr)s
haproxy_lb:
  hosts:
    %(infra)s:
      haproxy_lb_private_address: %(addr)s
      haproxy_lb_proxy_protocol: false
      haproxy_lb_tls_source: lab
      haproxy_lb_tls_lab_ca_dir: %(ca_dir)s
      haproxy_lb_stats_user: molecule-ops
      haproxy_lb_stats_password: molecule-stats-pw
      haproxy_lb_sysctl_apply: false
      haproxy_lb_target_connections: 5000
"""


def _converge(inventory, playbook=SCENARIO / "replicants.yml", *extra):
    cmd = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], "-i", str(inventory), *EE_VARS, *extra,
           str(playbook)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False,
                         env=dict(os.environ, ANSIBLE_LOG_PATH="", ANSIBLE_FORCE_COLOR="false"))
    return run.returncode, run.stdout + run.stderr


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("replicants")


@pytest.fixture(scope="module")
def inventory(workdir):
    path = workdir / "replicants.yml"
    path.write_text(INVENTORY % dict(infra=INFRA_HOST, addr=INFRA_ADDR, ca_dir=workdir / "lab-ca"))
    return path


@pytest.fixture(scope="module")
def enterprise(dns_server, inventory):
    """A fresh enterprise deployment: the open-source package and its data purged, then the role's run."""
    for name in ALL:
        # Back to Docker's resolver: the DNS tests pointed every container at dnsmasq, which answers test names only.
        host(name).check_output(
            "printf 'nameserver 127.0.0.11\\n' > /etc/resolv.conf; systemctl stop emqx 2>/dev/null;"
            " for p in emqx emqx-enterprise; do dpkg -s $p >/dev/null 2>&1 &&"
            " DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq $p >/dev/null; done;"
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
        self.subscribed = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p=None: rc == 0 and self.connected.set()
        self.client.on_subscribe = lambda c, u, mid, rc, p=None: self.subscribed.set()
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
            sub.client.subscribe([(topic, 1) for topic in topics.values()])
            assert sub.subscribed.wait(10), "no SUBACK"
        # A route made on one node reaches the others asynchronously (EMQX replicates routes; on a replicant
        # through its core): a publish right after SUBACK may find no route on another node yet.
        time.sleep(3)
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


def test_emqx_and_verify_list_each_node_with_its_role(enterprise, inventory):
    expected = dict(("emqx@" + ip, "replicant" if name in REPLICANTS else "core") for name, ip in ALL.items())
    for name in ("emq-cluster-1", "emq-cluster-3"):
        assert _roles(ALL[name]) == expected
    rc, out = _converge(inventory, PROJECT / "playbooks" / "verify.yml", "-v", "--tags", "verify_cluster")
    named = ", ".join("%s (%s)" % (node, expected[node]) for node in EVERYONE)
    # -v shows the check's message, wrapped over lines.
    assert rc == 0 and "All 4 nodes are running in the cluster: %s." % named in " ".join(out.split()), out[-3000:]


def test_messages_cross_between_cores_and_replicants(enterprise):
    assert _crosses(["emq-cluster-1", INFRA_HOST], ["emq-cluster-2", "emq-cluster-3"]) == []


def _landed(devices):
    """The node each device is connected to, as EMQX's /api/v5/clients lists it (asked of a core)."""
    core = ALL["emq-cluster-1"]
    token = _api(core, "login", body={"username": DASHBOARD[0], "password": DASHBOARD[1]})["token"]
    out = []
    for device in devices:
        listed = {}
        wait(lambda d=device: listed.update(found=_api(core, "clients?clientid=" + d.clientid, token)["data"]) or listed["found"], 10)
        out.append(listed["found"][0]["node"] if listed.get("found") else None)
    return out


def _through_haproxy(workdir, count):
    """The nodes that count devices connected through HAProxy's MQTT over TLS landed on."""
    devices = []
    try:
        for _ in range(count):
            devices.append(Device(INFRA_ADDR, 8883, str(workdir / "lab-ca" / "ca.pem")))
        return _landed(devices)
    finally:
        for device in devices:
            device.close()


def test_haproxy_sends_devices_to_the_replicants_and_to_the_cores_only_without_them(enterprise, workdir):
    config = host(INFRA_HOST).file("/etc/haproxy/haproxy.cfg").content_string
    for name in ALL:
        lines = [text for text in config.splitlines() if text.strip().startswith("server %s " % name)]
        assert lines and all(line.endswith(" backup") == (name in CORES) for line in lines), config
    cores = set("emqx@" + ip for ip in CORES.values())
    replicants = set("emqx@" + ip for ip in REPLICANTS.values())
    assert set(_through_haproxy(workdir, 6)) == replicants

    def on_cores():
        try:
            return set(_through_haproxy(workdir, 1)) <= cores
        except AssertionError:  # no CONNACK while HAProxy still tries a stopped replicant
            return False

    for name in REPLICANTS:
        host(name).check_output("systemctl stop emqx")
    try:
        # HAProxy's checks (every 2 s, down after 3 failures) take the replicants out; the backups take over.
        assert wait(on_cores, 30), "devices did not reach the cores with every replicant stopped"
        assert set(_through_haproxy(workdir, 4)) <= cores
    finally:
        for name in REPLICANTS:
            host(name).check_output("systemctl start emqx")
    assert wait(lambda: all(running(n) == EVERYONE for n in ALL), 120), members(ALL)


def test_a_replicant_that_restarts_comes_back(enterprise):
    host("emq-cluster-3").check_output("systemctl restart emqx")
    assert wait(lambda: all(running(n) == EVERYONE for n in ALL), 120), members(ALL)
    assert _crosses(["emq-cluster-3"], ["emq-cluster-1", INFRA_HOST]) == []
