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

import base64
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

        def missing():
            return [(s, p) for s, sub in subs.items() for p in publishers if not sub.has((topics[p], b"from " + p.encode()))]

        # A node that has just (re)started may learn a route some seconds later still: a publisher whose message
        # has not reached everyone sends again, three rounds at most. What is checked is that messages cross.
        for attempt in range(3):
            for name in (sorted(set(pub for _sub, pub in missing())) if attempt else publishers):
                pubs[name].client.publish(topics[name], b"from " + name.encode(), qos=1).wait_for_publish(5)
            if wait(lambda: not missing(), 10):
                break
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


# ---- issue 19 part 2: TLS between the nodes, on the same four nodes -------------------------------------------
# A packet reader run inside a node (Python's AF_PACKET socket; Docker gives containers CAP_NET_RAW): the TCP
# payload of every packet to or from the cluster ports (distribution 4370, RPC 5370) for some seconds, into a file.
SNIFFER = r'''
import socket, struct, sys, time
out, seconds = sys.argv[1], float(sys.argv[2])
ports = {4370, 5370}
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(3))
s.settimeout(0.2)
end, data, packets = time.time() + seconds, bytearray(), 0
while time.time() < end:
    try:
        frame = s.recv(65535)
    except socket.timeout:
        continue
    if frame[12:14] != b"\x08\x00":
        continue
    ip = frame[14:]
    if ip[9] != 6:
        continue
    ihl, total = (ip[0] & 15) * 4, struct.unpack("!H", ip[2:4])[0]
    tcp = ip[ihl:total]
    sport, dport = struct.unpack("!HH", tcp[:4])
    payload = tcp[(tcp[12] >> 4) * 4:]
    if payload and (sport in ports or dport in ports):
        data += payload
        packets += 1
open(out + ".tmp", "wb").write(bytes(data))
open(out + ".count", "w").write(str(packets))
__import__("os").rename(out + ".tmp", out)
'''
CLUSTER_CA = "cluster-ca"
SECRETS = "/etc/emqx-secrets"


def _cluster_traffic_while_crossing(node, publisher):
    """What node's cluster ports carried while a QoS 1 message went from a client on publisher to one on node (it
    crosses by RPC): (bytes seen, packets, the marker in the topic and payload, whether the message arrived)."""
    marker = "plaintext-marker-" + uuid.uuid4().hex[:8]
    box = host(node)
    box.check_output("printf '%%s' %s | base64 -d > /tmp/sniff.py; rm -f /tmp/sniff.out*" % _b64(SNIFFER))
    box.check_output("nohup python3 /tmp/sniff.py /tmp/sniff.out 8 >/dev/null 2>&1 &")
    time.sleep(1)
    sub, pub = _Client(ALL[node]), _Client(ALL[publisher])
    try:
        topic = "molecule/tls/" + marker
        sub.client.subscribe(topic, 1)
        assert sub.subscribed.wait(10), "no SUBACK"
        time.sleep(3)
        pub.client.publish(topic, marker.encode(), qos=1).wait_for_publish(5)
        arrived = wait(lambda: sub.has((topic, marker.encode())), 10)
    finally:
        sub.close()
        pub.close()
    assert wait(lambda: box.file("/tmp/sniff.out").exists, 15), "the packet reader wrote nothing"
    data = box.check_output("base64 -w0 /tmp/sniff.out")
    return base64.b64decode(data), int(box.file("/tmp/sniff.out.count").content_string), marker.encode(), arrived


def _b64(text):
    return base64.b64encode(text.encode()).decode()


def test_without_tls_the_cluster_ports_carry_messages_in_plaintext(enterprise):
    # The control for the test after the switch: the same reading sees the message while the nodes talk TCP.
    data, packets, marker, arrived = _cluster_traffic_while_crossing("emq-cluster-1", "emq-cluster-2")
    assert arrived and packets > 0
    assert marker in data, "the marker did not cross the cluster ports in plaintext over TCP: the reading cannot tell"


def _tls_args(workdir, *extra):
    return ("-e", "emq_node_cluster_tls=true", "-e", "emq_node_cluster_tls_source=lab",
            "-e", "emq_node_cluster_tls_lab_ca_dir=%s" % (workdir / CLUSTER_CA), *extra)


def test_turning_tls_on_in_a_running_cluster_is_refused_without_a_full_restart(enterprise, inventory, workdir):
    rc, out = _converge(inventory, SCENARIO / "replicants.yml", *_tls_args(workdir))
    assert rc != 0
    assert "A node on TLS and a node on TCP cannot talk" in " ".join(out.split()), out[-3000:]
    for name in ALL:
        assert "proto_dist" not in host(name).file("/etc/emqx/emqx.conf").content_string
        assert not host(name).file(SECRETS + "/ssl_dist.conf").exists
    assert all(running(n) == EVERYONE for n in ALL), members(ALL)


def test_a_full_restart_of_part_of_the_cluster_is_refused(enterprise, inventory, workdir):
    # --limit would move two nodes to TLS and leave the other two on TCP, cut off from them.
    rc, out = _converge(inventory, SCENARIO / "replicants.yml",
                        *_tls_args(workdir, "-e", "emq_node_cluster_tls_allow_full_restart=true", "--limit", "emq-cluster-1,emq-cluster-2"))
    assert rc != 0
    text = " ".join(out.split())
    left_out = text.split("The run leaves out ", 1)[-1].split(" of the group emq_nodes (--limit)", 1)[0]
    assert sorted(left_out.split(", ")) == sorted(["emq-cluster-3", INFRA_HOST]), out[-3000:]
    for name in ALL:
        assert "proto_dist" not in host(name).file("/etc/emqx/emqx.conf").content_string
    assert all(running(n) == EVERYONE for n in ALL), members(ALL)


@pytest.fixture(scope="module")
def cluster_tls(enterprise, inventory, workdir):
    return _converge(inventory, SCENARIO / "replicants.yml",
                     *_tls_args(workdir, "-e", "emq_node_cluster_tls_allow_full_restart=true"))


def test_the_cluster_forms_over_tls(cluster_tls):
    rc, out = cluster_tls
    assert rc == 0, out[-5000:]
    for name, address in ALL.items():
        box = host(name)
        conf = box.file("/etc/emqx/emqx.conf").content_string
        assert 'proto_dist = "inet_tls"' in conf and 'protocol = "ssl"' in conf, conf
        dist = box.file(SECRETS + "/ssl_dist.conf")
        assert dist.user == "root" and dist.group == "emqx" and dist.mode == 0o640
        assert dist.content_string.count("{verify, verify_peer}") == 2 and "{fail_if_no_peer_cert, true}" in dist.content_string
        key = box.file(SECRETS + "/cluster-tls/node.key")
        assert key.user == "emqx" and key.mode == 0o600
        # bin/emqx hands the file named here to the VM (-ssl_dist_optfile).
        env = box.check_output("systemctl show -p Environment emqx")
        assert "EMQX_SSL_DIST_OPTFILE=%s/ssl_dist.conf" % SECRETS in env, env
    assert wait(lambda: all(running(n) == EVERYONE for n in ALL), 120), members(ALL)
    assert _crosses(["emq-cluster-1", INFRA_HOST], ["emq-cluster-2", "emq-cluster-3"]) == []


def test_with_tls_no_cluster_traffic_is_plaintext(cluster_tls):
    data, packets, marker, arrived = _cluster_traffic_while_crossing("emq-cluster-1", "emq-cluster-2")
    assert arrived and packets > 0
    assert marker not in data
    # Every record on those ports is TLS: a handshake (0x16), application data (0x17), alert (0x15) or change cipher.
    assert data[:1] in (b"\x14", b"\x15", b"\x16", b"\x17"), data[:40]


# Run on a peer (the nodes' firewall opens the cluster ports to the peers only): a TLS client that trusts the
# cluster CA and shows the certificate given (none without). It sends nothing and prints what it saw within 1 s
# (a node closes a connection that has not spoken within the handshake time, a few seconds).
TLS_CLIENT = r'''
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.check_hostname = False
if len(sys.argv) > 3:
    ctx.load_cert_chain(sys.argv[3], sys.argv[4])
try:
    with socket.create_connection((sys.argv[1], 4370), timeout=10) as raw, ctx.wrap_socket(raw) as tls:
        print("server certificate verified:", dict(x[0] for x in tls.getpeercert()["subject"]).get("commonName"))
        tls.settimeout(1)
        try:
            print("answered" if tls.recv(1) else "closed")
        except socket.timeout:
            print("open")
except (ssl.SSLError, OSError) as e:
    print("refused:", type(e).__name__, e)
'''


def test_a_peer_without_a_certificate_of_the_cluster_ca_is_refused(cluster_tls):
    peer = host("emq-cluster-2")
    peer.check_output("printf '%%s' %s | base64 -d > /tmp/tlsclient.py" % _b64(TLS_CLIENT))
    client = "python3 /tmp/tlsclient.py %s %s/cluster-tls/ca.pem" % (ALL["emq-cluster-1"], SECRETS)
    # The node shows a certificate of the cluster CA (the client verified it) and wants one back: in TLS 1.3 the
    # server checks the client's after the client's side of the handshake, so the refusal comes on the first read.
    without = peer.check_output(client)
    assert "server certificate verified: emq-cluster-1" in without, without
    assert without.splitlines()[-1].startswith(("refused:", "closed")), without
    # The control: the same client with the peer's own certificate is kept (the node waits for it to speak).
    with_cert = peer.check_output(client + " %s/cluster-tls/node.pem %s/cluster-tls/node.key" % (SECRETS, SECRETS))
    assert with_cert.splitlines()[-1] in ("open", "answered"), with_cert


def _other_ca(workdir, address):
    """A CA of someone else and a certificate from it for address (serverAuth, clientAuth), with openssl."""
    other = workdir / "other-ca"
    other.mkdir(exist_ok=True)
    cmds = [
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=other-CA",
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout node.key -out node.csr -subj /CN=intruder",
        "printf 'subjectAltName=IP:%s\\nextendedKeyUsage=serverAuth,clientAuth\\n' > ext.cnf" % address,
        "openssl x509 -req -in node.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out node.pem -days 2 -extfile ext.cnf",
    ]
    for cmd in cmds:
        subprocess.run(cmd, shell=True, cwd=other, check=True, capture_output=True)
    return other


def test_a_node_with_a_certificate_of_another_ca_cannot_join(cluster_tls, workdir):
    # A core: it boots on its own (a replicant would wait for a core) and then tries to reach the other core.
    name, address = "emq-cluster-2", ALL["emq-cluster-2"]
    other = _other_ca(workdir, address)
    box = host(name)
    box.check_output("systemctl stop emqx; cd %s/cluster-tls && for f in node.pem node.key ca.pem; do cp -p $f $f.good; done" % SECRETS)
    try:
        for f in ("node.pem", "node.key", "ca.pem"):
            box.check_output("printf '%%s' %s | base64 -d > %s/cluster-tls/%s" % (_b64((other / f).read_text()), SECRETS, f))
        box.check_output("systemctl start emqx")
        others = sorted("emqx@" + ip for n, ip in ALL.items() if n != name)
        # The others go on without it; it stays alone: 30 s is long past the static discovery's first rounds.
        time.sleep(30)
        assert all(running(n) == others for n in ALL if n != name), members(ALL)
        assert running(name) in ([], ["emqx@" + address])
        out = box.run("emqx ctl cluster join emqx@%s" % ALL["emq-cluster-1"])
        assert "emqx@" + address not in running("emq-cluster-1"), out.stdout + out.stderr
    finally:
        box.check_output("systemctl stop emqx; cd %s/cluster-tls && for f in node.pem node.key ca.pem; do mv $f.good $f; done;"
                         " systemctl start emqx" % SECRETS)
    # With its own certificate back, it is a member again: the certificate was what kept it out.
    assert wait(lambda: all(running(n) == EVERYONE for n in ALL), 120), members(ALL)
