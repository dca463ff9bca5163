"""issue 17: devices straight to the nodes through a DNS round-robin name, the guide's third front door.

The role turns on the nodes' TLS listeners (8883, 8084) with lab certificates that name mqtt.cluster.test,
which dnsmasq (conftest.py) serves with one A record per node. The host firewall then lets the device
networks reach only TLS: plain 1883/8083 are dropped. A device is the emq-cluster-dns container with
Debian's mosquitto-clients: it resolves the name, verifies the certificate and publishes; a subscriber on
another node gets the message. With two of the three nodes stopped, the device still gets in: its client
tries the next address of the name.
"""

import json
import os
import pathlib
import socket
import sys
import time
import uuid

import pytest

from cluster_lab import EVERYONE, INFRA_HOST, NODES, converge, host, members, running, unchanged, wait

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "_shared"))
import lbtest  # noqa: E402  (molecule/_shared: helpers the scenarios share)

DEVICE = INFRA_HOST
NAME = "mqtt.cluster.test"
CA_DIR = pathlib.Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/tmp")) / "direct-tls-ca"
DEVICE_CA = "/etc/ssl/certs/iothub-lab-ca.pem"
TLS_VARS = {
    "emq_node_listeners": {
        "tcp": {"enable": True, "bind": "0.0.0.0:1883"},
        "ws": {"enable": True, "bind": "0.0.0.0:8083"},
        "ssl": {"enable": True, "bind": "0.0.0.0:8883"},
        "wss": {"enable": True, "bind": "0.0.0.0:8084"},
    },
    "emq_node_tls_source": "lab",
    "emq_node_tls_lab_ca_dir": str(CA_DIR),
    "emq_node_tls_server_names": [NAME],
    # The controller and the device container are the device networks.
    "emq_node_firewall_client_networks": ["172.30.2.1/32", "172.30.2.20/32"],
}


def _converge():
    return converge("-e", json.dumps(TLS_VARS))


def _device_publish(payload):
    """mosquitto_pub on the device: the name, the lab CA, QoS 1 (exits 0 once the broker acknowledged)."""
    return host(DEVICE).run(
        "mosquitto_pub -h %s -p 8883 --cafile %s -i sensor-1 -u sensor-1 -P %s -q 1 -t devices/sensor-1/direct -m %s"
        % (NAME, DEVICE_CA, "'sensor-1 pw#\"x'", payload))


def _tcp_open(address, port, timeout=3.0):
    try:
        socket.create_connection((address, port), timeout=timeout).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def direct_tls(dns_server):
    rc, out = _converge()
    ca = CA_DIR / "ca.pem"
    if ca.exists():
        dns_server.check_output("printf '%%s' '%s' > %s" % (ca.read_text(), DEVICE_CA))
    return rc, out, ca


def test_the_role_turns_on_tls_on_the_nodes(direct_tls):
    rc, out, ca = direct_tls
    assert rc == 0, out[-4000:]
    assert "BEGIN" not in out, "a certificate or key was printed"
    for name, ip in NODES.items():
        key = host(name).file("/etc/emqx-secrets/tls/server.key")
        assert (key.user, key.group, key.mode) == ("emqx", "emqx", 0o600)
        for port in (8883, 8084):
            version, names = lbtest.peer_names(ip, port, ca, NAME)
            assert version == "TLSv1.3" and NAME in names, (name, port, version, names)


def test_a_second_run_with_tls_changes_nothing(direct_tls):
    rc, out = _converge()
    assert unchanged(rc, out), out[-3000:]


def test_the_nodes_offer_what_the_load_balancers_offer(direct_tls):
    """sslyze's Mozilla intermediate check, which the load balancers pass: versions, ciphers and certificate
    comply. Only the curves may not: EMQX 5.8.9's ssl_options have no option for them (apps/emqx/src/
    emqx_schema.erl, common_ssl_opts_schema), so a node also accepts curves the profile leaves out."""
    result = lbtest.sslyze_intermediate(NAME, NODES["emq-cluster-1"], [8883, 8084], direct_tls[2])
    compliance = result.stdout.split("COMPLIANCE AGAINST TLS CONFIGURATION")[-1]
    verdicts = [line.strip() for line in compliance.splitlines() if line.strip().startswith("%s:" % NAME)]
    problems = [line.strip() for line in compliance.splitlines() if line.strip().startswith("* ")]
    assert len(verdicts) == 2, result.stdout[-3000:] + result.stderr[-2000:]
    assert all(p.startswith("* tls_curves:") for p in problems), problems


def test_devices_reach_tls_only(direct_tls):
    device = host(DEVICE)
    for ip in NODES.values():
        assert _tcp_open(ip, 8883) and _tcp_open(ip, 8084)
        assert not _tcp_open(ip, 1883) and not _tcp_open(ip, 8083), "plain MQTT is open to a device network on %s" % ip
        assert device.run("timeout 3 bash -c 'exec 3<>/dev/tcp/%s/8883'" % ip).rc == 0
        assert device.run("timeout 3 bash -c 'exec 3<>/dev/tcp/%s/1883'" % ip).rc != 0


def test_a_device_resolving_the_name_reaches_a_subscriber_on_another_node(direct_tls):
    ca = direct_tls[2]
    assert host(DEVICE).check_output("getent ahostsv4 %s | awk '{print $1}' | sort -u" % NAME).split() == sorted(NODES.values())
    sub = lbtest.Device(NODES["emq-cluster-3"], 8883, ca, credentials=lbtest.BACKEND)
    wss = lbtest.Device(NODES["emq-cluster-2"], 8084, ca, transport="wss", credentials=lbtest.BACKEND)
    try:
        sub.subscribe("devices/sensor-1/#")
        wss.subscribe("devices/sensor-1/#")
        time.sleep(0.5)
        payload = "direct-" + uuid.uuid4().hex[:8]
        run = _device_publish(payload)
        assert run.rc == 0, run.stderr
        for device in (sub, wss):
            assert device.wait_for(("devices/sensor-1/direct", payload.encode())), device.messages
    finally:
        sub.close()
        wss.close()


def test_with_two_nodes_stopped_the_device_gets_in_through_the_next_address(direct_tls):
    ca = direct_tls[2]
    stopped = ["emq-cluster-1", "emq-cluster-2"]
    sub = lbtest.Device(NODES["emq-cluster-3"], 8883, ca, credentials=lbtest.BACKEND)
    try:
        sub.subscribe("devices/sensor-1/#")
        for name in stopped:
            host(name).check_output("systemctl stop emqx")
        payloads = ["failover-%d-%s" % (i, uuid.uuid4().hex[:6]) for i in range(5)]
        results = [_device_publish(p) for p in payloads]
        assert [r.rc for r in results] == [0] * 5, [r.stderr for r in results]
        for p in payloads:
            assert sub.wait_for(("devices/sensor-1/direct", p.encode())), sub.messages
    finally:
        sub.close()
        for name in stopped:
            host(name).run("systemctl start emqx")
    assert wait(lambda: all(running(n) == EVERYONE for n in NODES)), \
        "the stopped nodes did not come back into the cluster: %s" % members(NODES)
