"""Who may connect, publish and subscribe, as a device sees it on the wire (MQTT 3.1.1 and 5, straight to
the nodes): the users of emq_node_authn_users log in on every node, anyone else is refused with the code
EMQX 5.8.9 sends, and the default ACL keeps a device to its own topics."""

import hashlib
import json
import os
import socket
import subprocess
import time
import urllib.request
import uuid

import pytest

NODES = {
    "emq-cluster-1": "172.30.2.11",
    "emq-cluster-2": "172.30.2.12",
    "emq-cluster-3": "172.30.2.13",
}
BACKEND = ("molecule-backend", "molecule-backend-pw")
SENSOR = ("sensor-1", "sensor-1 pw#\"x")
DASHBOARD = ("admin", "molecule-Cluster-pw")
# CONNACK codes (emqx_reason_codes.erl: 0x86 bad_username_or_password -> 4, 0x87 not_authorized -> 5 in 3.1.1)
V3_BAD_CREDENTIALS, V3_NOT_AUTHORIZED = 4, 5
V5_BAD_CREDENTIALS, V5_NOT_AUTHORIZED = 0x86, 0x87


def _utf8(text):
    data = text.encode()
    return len(data).to_bytes(2, "big") + data


def _varint(n):
    out = b""
    while True:
        n, digit = n >> 7, n & 0x7F
        out += bytes([digit | (0x80 if n else 0)])
        if not n:
            return out


def _packet(kind, body):
    return bytes([kind]) + _varint(len(body)) + body


def _read_packet(sock):
    head = sock.recv(1)
    if not head:
        return None, b""
    length, shift = 0, 0
    while True:
        byte = sock.recv(1)[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    body = b""
    while len(body) < length:
        chunk = sock.recv(length - len(body))
        if not chunk:
            break
        body += chunk
    return head[0], body


class Wire:
    """One MQTT connection on a raw socket, so the test sees the exact codes EMQX sends."""

    def __init__(self, ip, credentials=None, version=4, clientid=None):
        self.version = version
        self.clientid = clientid or "wire-%s" % uuid.uuid4().hex[:10]
        self.sock = socket.create_connection((ip, 1883), timeout=10)
        flags = 0x02 | ((0xC0 if credentials else 0))
        variable = _utf8("MQTT") + bytes([version, flags]) + (30).to_bytes(2, "big") + (b"\x00" if version == 5 else b"")
        payload = _utf8(self.clientid) + ((_utf8(credentials[0]) + _utf8(credentials[1])) if credentials else b"")
        self.sock.sendall(_packet(0x10, variable + payload))
        kind, body = _read_packet(self.sock)
        assert kind == 0x20, "no CONNACK from %s: %r" % (ip, kind)
        self.code = body[1]

    def subscribe(self, topic, packet_id=1):
        props = b"\x00" if self.version == 5 else b""
        self.sock.sendall(_packet(0x82, packet_id.to_bytes(2, "big") + props + _utf8(topic) + b"\x01"))
        while True:
            kind, body = _read_packet(self.sock)
            if kind is None:
                return "closed"
            if kind == 0x90:
                return body[-1]

    def publish(self, topic, payload, packet_id=2):
        """QoS 1; the PUBACK reason code (5) or 0 (3.1.1 has none)."""
        props = b"\x00" if self.version == 5 else b""
        self.sock.sendall(_packet(0x32, _utf8(topic) + packet_id.to_bytes(2, "big") + props + payload))
        while True:
            kind, body = _read_packet(self.sock)
            if kind is None:
                return "closed"
            if kind == 0x40:
                return body[2] if len(body) > 2 else 0

    def receive(self, timeout=3):
        """The (topic, payload) of PUBLISH packets that arrive within timeout seconds."""
        got, deadline = [], time.time() + timeout
        while time.time() < deadline:
            self.sock.settimeout(max(0.1, deadline - time.time()))
            try:
                kind, body = _read_packet(self.sock)
            except socket.timeout:
                break
            if kind is None:
                break
            if kind & 0xF0 == 0x30:
                tlen = int.from_bytes(body[:2], "big")
                topic = body[2:2 + tlen].decode()
                rest = body[2 + tlen:]
                if kind & 0x06:
                    packet_id, rest = rest[:2], rest[2:]
                    self.sock.sendall(_packet(0x40, packet_id))
                if self.version == 5:
                    plen = rest[0]  # short property lists only
                    rest = rest[1 + plen:]
                got.append((topic, rest))
        return got

    def close(self):
        try:
            self.sock.sendall(b"\xe0\x00")
        finally:
            self.sock.close()


@pytest.mark.parametrize("version,expected", [(4, V3_BAD_CREDENTIALS), (5, V5_BAD_CREDENTIALS)])
def test_a_client_without_credentials_is_refused(version, expected):
    wire = Wire(NODES["emq-cluster-1"], None, version)
    assert wire.code == expected
    wire.close()


@pytest.mark.parametrize("version,expected", [(4, V3_BAD_CREDENTIALS), (5, V5_BAD_CREDENTIALS)])
def test_a_wrong_password_is_refused(version, expected):
    wire = Wire(NODES["emq-cluster-2"], (SENSOR[0], "not-the-password"), version)
    assert wire.code == expected
    wire.close()


def test_an_unknown_user_is_not_authorized():
    wire = Wire(NODES["emq-cluster-3"], ("nobody", "whatever"), 4)
    assert wire.code == V3_NOT_AUTHORIZED
    wire.close()


@pytest.mark.parametrize("name", sorted(NODES))
def test_the_provisioned_users_log_in_on_every_node(name):
    for credentials in (BACKEND, SENSOR):
        wire = Wire(NODES[name], credentials, 4)
        assert wire.code == 0, "%s refused on %s with %d" % (credentials[0], name, wire.code)
        wire.close()


@pytest.mark.parametrize("topic", ["#", "+/#", "$SYS/#", "$SYS/brokers"])
@pytest.mark.parametrize("version,expected", [(4, 0x80), (5, 0x87)])
def test_a_device_may_not_subscribe_to_everything(topic, version, expected):
    wire = Wire(NODES["emq-cluster-1"], SENSOR, version)
    assert wire.code == 0
    assert wire.subscribe(topic) == expected
    wire.close()


def test_a_device_publishes_under_its_own_client_id_only():
    backend = Wire(NODES["emq-cluster-2"], BACKEND, 4)
    assert backend.subscribe("devices/#") == 1  # a superuser is not restricted
    time.sleep(1)  # the route reaches the other nodes
    device = Wire(NODES["emq-cluster-1"], SENSOR, 5, clientid="sensor-1")
    assert device.publish("devices/sensor-1/telemetry", b"mine") == 0
    assert device.publish("devices/sensor-2/telemetry", b"not mine") == V5_NOT_AUTHORIZED
    got = backend.receive()
    assert ("devices/sensor-1/telemetry", b"mine") in got
    assert all(topic != "devices/sensor-2/telemetry" for topic, _ in got)
    device.close()
    backend.close()


def test_a_device_subscribes_to_its_own_topics():
    device = Wire(NODES["emq-cluster-3"], SENSOR, 4, clientid="sensor-1")
    assert device.subscribe("devices/sensor-1/commands") == 1
    assert device.subscribe("other/topic") == 0x80  # no rule allows it: authorization.no_match = deny
    device.close()


# ---- Provisioning: a user that leaves the list is deleted, without a restart -----------------------------

def _api_users(ip):
    base = "http://%s:18083/api/v5" % ip
    login = urllib.request.Request(base + "/login", data=json.dumps({"username": DASHBOARD[0], "password": DASHBOARD[1]}).encode(),
                                   headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(login, timeout=10) as answer:
        token = json.load(answer)["token"]
    ask = urllib.request.Request(base + "/authentication/password_based:built_in_database/users?limit=1000",
                                 headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(ask, timeout=10) as answer:
        return sorted(u["user_id"] for u in json.load(answer)["data"])


def _converge(*extra):
    scenario = os.environ.get("MOLECULE_SCENARIO_DIRECTORY", os.path.dirname(os.path.dirname(__file__)))
    cmd = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], *extra, os.path.join(scenario, "converge.yml")]
    env = dict(os.environ, ANSIBLE_LOG_PATH="", ANSIBLE_FORCE_COLOR="false")
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, check=False)
    return run.returncode, run.stdout + run.stderr


def _invocations():
    return {name: subprocess.run(["docker", "exec", name, "systemctl", "show", "-p", "InvocationID", "--value", "emqx.service"],
                                 capture_output=True, text=True, check=True).stdout.strip() for name in NODES}


@pytest.fixture(scope="module")
def sensor_removed():
    """emq_node_authn_users without sensor-1 (--diff on), then the scenario's own list again."""
    before = _invocations()
    only_backend = json.dumps({"emq_node_authn_users": [{
        "user_id": BACKEND[0], "salt": "salt-backend", "is_superuser": True,
        "password_hash": "{{ '%s' | iothub.emq.emqx_password_hash('salt-backend') }}" % BACKEND[1]}]})
    rc, out = _converge("--diff", "-e", only_backend)
    result = {"rc": rc, "out": out, "users": {name: _api_users(ip) for name, ip in NODES.items()}}
    wire = Wire(NODES["emq-cluster-2"], SENSOR, 4)
    result["code"] = wire.code
    wire.close()
    result["invocations"] = _invocations()
    result["before"] = before
    result["restore"] = _converge()
    result["users_after_restore"] = _api_users(NODES["emq-cluster-3"])
    return result


def test_a_user_that_left_the_list_is_deleted_everywhere(sensor_removed):
    assert sensor_removed["rc"] == 0, sensor_removed["out"][-3000:]
    for name, users in sensor_removed["users"].items():
        assert users == [BACKEND[0]], "%s still has %s" % (name, users)
    assert sensor_removed["code"] == V3_NOT_AUTHORIZED


def test_changing_the_users_restarts_no_node(sensor_removed):
    assert sensor_removed["invocations"] == sensor_removed["before"]


def test_no_password_hash_reaches_the_output(sensor_removed):
    out = sensor_removed["out"] + sensor_removed["restore"][1]
    for (_, password), salt in ((BACKEND, "salt-backend"), (SENSOR, "salt-sensor-1")):
        assert password not in out
        assert hashlib.sha256((password + salt).encode()).hexdigest() not in out


def test_the_user_is_back_when_the_list_has_it_again(sensor_removed):
    assert sensor_removed["restore"][0] == 0, sensor_removed["restore"][1][-3000:]
    assert sensor_removed["users_after_restore"] == sorted([BACKEND[0], SENSOR[0]])
