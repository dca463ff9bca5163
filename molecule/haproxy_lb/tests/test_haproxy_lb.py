"""HAProxy in front of two EMQX nodes, as devices and operators see it.

Every check runs from the controller, which reaches the containers on the scenario's own bridge
(172.30.3.0/24, the controller is 172.30.3.1) and talks only to them and to loopback.
"""

import base64
import json
import os
import pathlib
import re
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
import uuid

import paho.mqtt.client as mqtt
import pytest
import testinfra

LB = "haproxy-lb-1"
LB_IP = "172.30.3.10"
NODES = {"haproxy-lb-emqx-1": "172.30.3.11", "haproxy-lb-emqx-2": "172.30.3.12"}
CLIENT_IP = "172.30.3.1"  # the controller, as the nodes should see it through the LB
MQTTS, WSS = 8883, 8084
API_KEY, API_SECRET = "molecule", "molecule-api-secret-0123456789"
PROJECT = pathlib.Path(__file__).resolve().parents[3]
SCENARIO = pathlib.Path(__file__).resolve().parents[1]
EPHEMERAL = pathlib.Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
CA = EPHEMERAL / "lab-ca" / "ca.pem"
SSLYZE = PROJECT / ".venv" / "sslyze" / "bin" / "sslyze"
# Health checks every 2 s, down after 3 failures, up after 2 passes (the role's defaults).
CHECK_WINDOW = 2 * 3 + 4


def _host(name):
    return testinfra.get_host("docker://" + name)


def _runtime_api(command):
    """One command on HAProxy's runtime API socket, from inside the LB."""
    return _host(LB).check_output("echo %s | socat stdio /run/haproxy/admin.sock" % _quote(command))


def _quote(text):
    return "'" + text.replace("'", "'\\''") + "'"


def _servers_state(backend="emqx_mqtt"):
    """{server name: (operational state, admin state)} from "show servers state"."""
    lines = _runtime_api("show servers state %s" % backend).splitlines()
    header = next(line for line in lines if line.startswith("# be_id")).lstrip("# ").split()
    out = {}
    for line in lines:
        fields = line.split()
        if len(fields) == len(header) and fields[0].isdigit():
            row = dict(zip(header, fields))
            out[row["srv_name"]] = (int(row["srv_op_state"]), int(row["srv_admin_state"]))
    return out


def _wait_for_state(name, op_state, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        states = [_servers_state(b)[name][0] for b in ("emqx_mqtt", "emqx_ws")]
        if all(s == op_state for s in states):
            return time.time()
        time.sleep(0.5)
    raise AssertionError("%s did not reach op_state %d within %ss: %s" % (name, op_state, timeout, _servers_state()))


def _api(path, node="haproxy-lb-emqx-1"):
    req = urllib.request.Request("http://%s:18083/api/v5/%s" % (NODES[node], path))
    token = base64.b64encode(("%s:%s" % (API_KEY, API_SECRET)).encode()).decode()
    req.add_header("Authorization", "Basic " + token)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _client_info(clientid, timeout=10, node="haproxy-lb-emqx-1"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        data = _api("clients?clientid=%s" % clientid, node)["data"]
        if data:
            return data[0]
        time.sleep(0.3)
    raise AssertionError("client %s is not listed by /api/v5/clients" % clientid)


def _tls_context():
    ctx = ssl.create_default_context(cafile=str(CA))
    ctx.check_hostname = True
    return ctx


class Device:
    """A paho MQTT client through the load balancer: MQTT over TLS or over secure WebSocket."""

    def __init__(self, transport="mqtts", clientid=None, keepalive=60):
        self.clientid = clientid or "molecule-%s-%s" % (transport, uuid.uuid4().hex[:8])
        self.messages = []
        self.connected = threading.Event()
        self.disconnects = []
        ws = transport == "wss"
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.clientid,
                                  protocol=mqtt.MQTTv311, transport="websockets" if ws else "tcp")
        if ws:
            self.client.ws_set_options(path="/mqtt")
        # The certificate names the LB's address as well as its name: paho verifies both the
        # chain (lab CA) and the address it connects to.
        self.client.tls_set_context(_tls_context())
        self.client.on_connect = lambda c, u, f, rc, p=None: self.connected.set()
        self.client.on_disconnect = lambda c, u, f, rc, p=None: self.disconnects.append(str(rc))
        self.client.on_message = lambda c, u, msg: self.messages.append((msg.topic, msg.payload))
        self.client.reconnect_delay_set(60, 60)  # a drop must show, not be hidden by a reconnect
        self.client.connect(LB_IP, WSS if ws else MQTTS, keepalive=keepalive)
        self.client.loop_start()
        assert self.connected.wait(10), "no CONNACK through the load balancer for %s" % self.clientid

    def subscribe(self, topic):
        done = threading.Event()
        self.client.on_subscribe = lambda c, u, mid, rc, p=None: done.set()
        self.client.subscribe(topic, qos=1)
        assert done.wait(10), "no SUBACK for %s" % self.clientid

    def publish(self, topic, payload):
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(10)
        assert info.is_published()

    def wait_for(self, expected, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline and expected not in self.messages:
            time.sleep(0.1)
        return expected in self.messages

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


# ---- configuration and files ----------------------------------------------------------------

def test_config_is_managed_and_valid():
    lb = _host(LB)
    cfg = lb.file("/etc/haproxy/haproxy.cfg")
    assert cfg.content_string.startswith("#\n# Ansible managed")
    assert cfg.mode == 0o640 and cfg.group == "haproxy"
    assert lb.run("haproxy -c -f /etc/haproxy/haproxy.cfg").rc == 0
    assert lb.service("haproxy").is_running and lb.service("haproxy").is_enabled
    text = cfg.content_string
    assert "ssl-min-ver TLSv1.2" in text
    # 4 x the 60 s keepalive by default (the reload test at the end raises it): above 1.5 x keepalive.
    for side in ("client", "server"):
        assert int(re.search(r"^\s+timeout %s (\d+)s" % side, text, re.M).group(1)) >= 240
    assert "balance leastconn" in text
    assert "send-proxy-v2" in text
    assert "server haproxy-lb-emqx-1 172.30.3.11:1883" in text
    assert "server haproxy-lb-emqx-2 172.30.3.12:8083" in text


def test_key_and_certificate_files():
    lb = _host(LB)
    key = lb.file("/etc/haproxy/certs/emqx-lb.pem.key")
    assert key.user == "haproxy" and key.group == "haproxy" and key.mode == 0o600
    cert = lb.file("/etc/haproxy/certs/emqx-lb.pem")
    assert cert.mode == 0o644 and "PRIVATE KEY" not in cert.content_string
    assert lb.file("/etc/haproxy/certs").mode == 0o750


def test_limits_are_consistent():
    lb = _host(LB)
    cfg = lb.file("/etc/haproxy/haproxy.cfg").content_string
    maxconn = int(re.search(r"^\s+maxconn (\d+)", cfg, re.M).group(1))
    ulimit = int(re.search(r"^\s+ulimit-n (\d+)", cfg, re.M).group(1))
    dropin = lb.file("/etc/systemd/system/haproxy.service.d/10-iothub-emq-limits.conf").content_string
    assert "LimitNOFILE=%d" % ulimit in dropin
    assert ulimit >= 2 * maxconn
    sysctl = lb.file("/etc/sysctl.d/60-haproxy-lb.conf").content_string
    assert int(re.search(r"^fs.nr_open = (\d+)", sysctl, re.M).group(1)) >= ulimit
    assert re.search(r"^net.ipv4.ip_local_reserved_ports = .*8883", sysctl, re.M)
    info = _runtime_api("show info")
    assert "Ulimit-n: %d" % ulimit in info
    assert "Maxconn: %d" % maxconn in info


def test_stats_and_metrics_on_the_private_address_only():
    lb = _host(LB)
    listening = lb.socket.get_listening_sockets()
    assert "tcp://%s:8404" % LB_IP in listening
    assert "tcp://0.0.0.0:8404" not in listening
    with urllib.request.urlopen("http://%s:8404/metrics" % LB_IP, timeout=10) as resp:
        metrics = resp.read().decode()
    assert 'haproxy_server_status{proxy="emqx_mqtt",server="haproxy-lb-emqx-1"' in metrics
    with urllib.request.urlopen("http://%s:8404/stats" % LB_IP, timeout=10) as resp:
        assert resp.status == 200 and "emqx_mqtt" in resp.read().decode()


def test_no_secret_in_ansible_output():
    log = (EPHEMERAL / "ansible.log").read_text()
    assert "Lab CA for clients" in log  # the log is the one the converge wrote
    assert "PRIVATE KEY" not in log
    assert API_SECRET not in log
    assert "molecule-haproxy-lb-cookie-3b9d" not in log


# ---- TLS ------------------------------------------------------------------------------------

@pytest.mark.parametrize("port", [MQTTS, WSS])
def test_tls_verifies_against_the_lab_ca_for_the_lb_name(port):
    with socket.create_connection((LB_IP, port), timeout=10) as raw:
        with _tls_context().wrap_socket(raw, server_hostname=LB) as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            names = [v for k, v in tls.getpeercert()["subjectAltName"] if k == "DNS"]
            assert LB in names
    # The same certificate does not verify for another name, nor without the lab CA.
    with pytest.raises(ssl.SSLCertVerificationError):
        with socket.create_connection((LB_IP, port), timeout=10) as raw:
            _tls_context().wrap_socket(raw, server_hostname="mqtt.example.invalid")
    with pytest.raises(ssl.SSLCertVerificationError):
        with socket.create_connection((LB_IP, port), timeout=10) as raw:
            ssl.create_default_context().wrap_socket(raw, server_hostname=LB)


def _old_tls_context(version):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer TLS 1.0/1.1 at all
    ctx.minimum_version = version
    ctx.maximum_version = version
    return ctx


@pytest.fixture(scope="module")
def old_tls_server(tmp_path_factory):
    """A loopback server that accepts TLS 1.0 and 1.1: proof the client below can speak them."""
    tmp = tmp_path_factory.mktemp("oldtls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-keyout", str(tmp / "key.pem"), "-out", str(tmp / "cert.pem")], check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(tmp / "cert.pem"), str(tmp / "key.pem"))
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        listener.settimeout(0.5)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                continue
            try:
                ctx.wrap_socket(conn, server_side=True).close()
            except (ssl.SSLError, OSError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(2)
    listener.close()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1], ids=["TLSv1.0", "TLSv1.1"])
@pytest.mark.parametrize("port", [MQTTS, WSS])
def test_tls_1_0_and_1_1_are_refused(old_tls_server, version, port):
    # Control: this client completes a TLS 1.0/1.1 handshake with a server that allows it ...
    with socket.create_connection(("127.0.0.1", old_tls_server), timeout=5) as raw:
        with _old_tls_context(version).wrap_socket(raw) as tls:
            assert tls.version() == {ssl.TLSVersion.TLSv1: "TLSv1", ssl.TLSVersion.TLSv1_1: "TLSv1.1"}[version]
    # ... and the load balancer answers the same client with a protocol_version alert.
    with pytest.raises(ssl.SSLError) as err:
        with socket.create_connection((LB_IP, port), timeout=5) as raw:
            _old_tls_context(version).wrap_socket(raw)
    assert err.value.reason == "TLSV1_ALERT_PROTOCOL_VERSION", err.value


def test_sslyze_finds_mozilla_intermediate_compliance():
    assert SSLYZE.exists(), "sslyze is missing: run `make sslyze` (its own venv, .venv/sslyze)"
    targets = ["%s:%d{%s}" % (LB, port, LB_IP) for port in (MQTTS, WSS)]
    result = subprocess.run([str(SSLYZE), "--mozilla_config=intermediate", "--certinfo_ca_file", str(CA)] + targets,
                            capture_output=True, text=True, timeout=240)
    print(result.stdout[-4000:])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert result.stdout.count(": OK - Compliant.") == 2, result.stdout[-3000:]


# ---- MQTT through the load balancer -----------------------------------------------------------

@pytest.mark.parametrize("sub_transport,pub_transport", [("mqtts", "wss"), ("wss", "mqtts"), ("mqtts", "mqtts")])
def test_publish_and_subscribe_through_the_lb(sub_transport, pub_transport):
    topic = "molecule/lb/%s" % uuid.uuid4().hex
    sub = Device(sub_transport)
    pub = Device(pub_transport)
    try:
        sub.subscribe(topic)
        time.sleep(0.5)  # the route reaches the other node
        pub.publish(topic, b"through the load balancer")
        assert sub.wait_for((topic, b"through the load balancer")), sub.messages
    finally:
        sub.close()
        pub.close()


@pytest.mark.parametrize("transport", ["mqtts", "wss"])
def test_emqx_sees_the_device_address_not_the_lbs(transport):
    device = Device(transport)
    try:
        info = _client_info(device.clientid)
        assert info["ip_address"] == CLIENT_IP, info
        assert info["ip_address"] != LB_IP
    finally:
        device.close()


# ---- operations: drain, failover --------------------------------------------------------------

def _nodes_of(devices, api_node="haproxy-lb-emqx-1"):
    """The EMQX node each device landed on, asked from api_node (the cluster lists every client)."""
    return [_client_info(d.clientid, node=api_node)["node"] for d in devices]


def test_drain_and_ready_through_the_runtime_api():
    for backend in ("emqx_mqtt", "emqx_ws"):
        _runtime_api("set server %s/haproxy-lb-emqx-1 state drain" % backend)
    devices = []
    try:
        assert _servers_state()["haproxy-lb-emqx-1"][1] & 0x08  # SRV_ADMF_DRAIN
        devices = [Device("mqtts") for _ in range(3)] + [Device("wss")]
        assert set(_nodes_of(devices)) == {"emqx@172.30.3.12"}
    finally:
        for backend in ("emqx_mqtt", "emqx_ws"):
            _runtime_api("set server %s/haproxy-lb-emqx-1 state ready" % backend)
    try:
        assert _servers_state()["haproxy-lb-emqx-1"][1] == 0
        # leastconn: node 2 holds the drained-time devices, so new ones go to node 1.
        fresh = [Device("mqtts") for _ in range(2)]
        devices += fresh
        assert set(_nodes_of(fresh)) == {"emqx@172.30.3.11"}
    finally:
        for d in devices:
            d.close()


def test_failover_to_the_other_node_and_back():
    node1 = _host("haproxy-lb-emqx-1")
    devices = []
    node1.check_output("systemctl stop emqx")
    try:
        stopped = time.time()
        down_at = _wait_for_state("haproxy-lb-emqx-1", 0, CHECK_WINDOW + 5)
        print("node 1 marked down %.1fs after it stopped" % (down_at - stopped))
        devices = [Device("mqtts") for _ in range(3)] + [Device("wss")]
        assert set(_nodes_of(devices, api_node="haproxy-lb-emqx-2")) == {"emqx@172.30.3.12"}
    finally:
        node1.check_output("systemctl start emqx")
    up_at = _wait_for_state("haproxy-lb-emqx-1", 2, 90)
    print("node 1 back up %.1fs after it started" % (up_at - stopped))
    try:
        fresh = [Device("mqtts") for _ in range(2)]
        devices += fresh
        assert "emqx@172.30.3.11" in _nodes_of(fresh)
    finally:
        for d in devices:
            d.close()


# ---- preflight refusals and check mode (ansible-playbook runs, side by side) -----------------

def _playbook(*args, playbook="converge.yml"):
    inventory = pathlib.Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
    cmd = ["ansible-playbook", "--inventory", str(inventory), "--limit", "haproxy_lb"] + list(args) + [str(SCENARIO / playbook)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def _expired_certificate(tmp):
    """A self-signed certificate that expired yesterday, and its key (made with cryptography)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, LB)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=30))
            .not_valid_after(now - datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    (tmp / "expired.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "expired.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))
    return tmp / "expired.pem", tmp / "expired.key"


PREFLIGHT_CASES = {
    # case: (extra vars, words the refusal must contain)
    "nodes_without_proxy_protocol": (
        {"emq_node_proxy_protocol": False},
        ["haproxy_lb_proxy_protocol: true", "haproxy-lb-emqx-1 (tcp listener: proxy_protocol = false)",
         "haproxy-lb-emqx-2 (ws listener: proxy_protocol = false)", "emq_node_proxy_protocol: true"]),
    "proxy_protocol_off_but_nodes_expect_it": (
        {"haproxy_lb_proxy_protocol": False},
        ["sends no PROXY protocol header", "haproxy-lb-emqx-1 (tcp listener: proxy_protocol = true)"]),
    "key_of_another_certificate": (
        {"haproxy_lb_tls_source": "files", "haproxy_lb_tls_cert_file": str(EPHEMERAL / "lab-ca" / "haproxy-lb-1.pem"),
         "haproxy_lb_tls_key_file": str(EPHEMERAL / "lab-ca" / "ca.key")},
        ["does not belong to the certificate", "haproxy_lb_tls_key_file"]),
    "expired_certificate": (
        {"haproxy_lb_tls_source": "files"},  # files filled in by the fixture
        ["is not valid now", "renew it"]),
    "target_beyond_one_source_address": (
        {"haproxy_lb_target_connections": 60000},
        ["Add source addresses", "haproxy_lb_source_addresses", "30000 connections to each backend"]),
    "timeout_below_keepalive": (
        {"haproxy_lb_timeout_client": 80},
        ["longer than 1.5 x haproxy_lb_mqtt_keepalive"]),
}


@pytest.fixture(scope="module", autouse=True)
def playbook_runs(tmp_path_factory):
    """Every preflight refusal (preflight tags only) and one check-mode run, started in the background
    with the first test (they change nothing) and collected by the tests that need them."""
    from concurrent.futures import ThreadPoolExecutor

    cert, key = _expired_certificate(tmp_path_factory.mktemp("expired"))
    cases = {k: dict(v[0]) for k, v in PREFLIGHT_CASES.items()}
    cases["expired_certificate"].update(haproxy_lb_tls_cert_file=str(cert), haproxy_lb_tls_key_file=str(key))
    pool = ThreadPoolExecutor(4)
    futures = {"check": pool.submit(_playbook, "--check", "--diff")}
    futures.update({k: pool.submit(_playbook, "-e", json.dumps(v), playbook="preflight.yml") for k, v in cases.items()})
    yield futures
    pool.shutdown(wait=True)


@pytest.mark.parametrize("case", sorted(PREFLIGHT_CASES))
def test_preflight_refuses(playbook_runs, case):
    run = playbook_runs[case].result()
    out = re.sub(r"\s+", " ", run.stdout + run.stderr)
    assert run.returncode != 0, run.stdout[-3000:]
    for words in PREFLIGHT_CASES[case][1]:
        assert words in out, out[-3000:]
    # Refused before anything changed on the load balancer.
    assert re.search(r"haproxy-lb-1\s*:\s*ok=\d+\s+changed=0\s", run.stdout), run.stdout[-2000:]


def test_check_mode_on_a_converged_lb_reports_no_change(playbook_runs):
    run = playbook_runs["check"].result()
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert re.search(r"haproxy-lb-1\s*:\s*ok=\d+\s+changed=0\s+unreachable=0\s+failed=0", run.stdout), run.stdout[-3000:]
    assert "PRIVATE KEY" not in run.stdout


# ---- a changed setting reloads without dropping anyone (runs last) ----------------------------

def _haproxy_processes():
    out = _host(LB).check_output("ps -o pid=,ppid=,args= -C haproxy")
    return [line.split(None, 2) for line in out.splitlines()]


def test_changed_setting_reloads_without_dropping_an_established_connection(playbook_runs):
    for run in playbook_runs.values():  # nothing else runs a playbook while this one changes the LB
        run.result()
    topic = "molecule/reload/%s" % uuid.uuid4().hex
    device = Device("mqtts")
    device.subscribe(topic)
    master_before = _host(LB).check_output("systemctl show -p MainPID --value haproxy")
    workers_before = {p[0] for p in _haproxy_processes() if p[1] == master_before}
    inventory = pathlib.Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
    cfg = _host(LB).file("/etc/haproxy/haproxy.cfg").content_string
    timeout = int(re.search(r"^\s+timeout client (\d+)s", cfg, re.M).group(1)) + 60
    try:
        run = subprocess.run(["ansible-playbook", "--inventory", str(inventory), "--limit", "haproxy_lb",
                              "-e", "haproxy_lb_timeout_client=%d" % timeout, "-e", "haproxy_lb_timeout_server=%d" % timeout,
                              str(SCENARIO / "converge.yml")], capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
        assert re.search(r"RUNNING HANDLER \[iothub\.emq\.haproxy_lb : Reload HAProxy \(new processes", run.stdout)
        assert "timeout client %ds" % timeout in _host(LB).file("/etc/haproxy/haproxy.cfg").content_string
        # Same master (a reload, not a restart), a new worker, and the old one still serving us.
        assert _host(LB).check_output("systemctl show -p MainPID --value haproxy") == master_before
        workers_after = {p[0] for p in _haproxy_processes() if p[1] == master_before}
        assert workers_after - workers_before, "no new worker after the reload"
        assert workers_before & workers_after, "the old worker is gone: established connections were cut"
        # The connection made before the reload still carries traffic both ways.
        assert device.disconnects == []
        device.publish(topic, b"after the reload")
        assert device.wait_for((topic, b"after the reload"))
        other = Device("mqtts")
        try:
            other.publish(topic, b"from a new connection")
            assert device.wait_for((topic, b"from a new connection"))
        finally:
            other.close()
        assert device.disconnects == []
    finally:
        device.close()
