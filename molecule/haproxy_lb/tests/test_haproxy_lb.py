"""HAProxy in front of two EMQX nodes, as devices and operators see it.

Every check runs from the controller, which reaches the containers on the scenario's own bridge
(172.30.3.0/24, the controller is 172.30.3.1) and talks only to them and to loopback.
"""

import datetime
import ipaddress
import json
import os
import pathlib
import re
import ssl
import sys
import time
import urllib.request
import uuid

import pytest
import testinfra

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "_shared"))
import lbtest  # noqa: E402  (molecule/_shared: helpers the load-balancer scenarios share)

LB = "haproxy-lb-1"
LB_IP = "172.30.3.10"
NODES = {"haproxy-lb-emqx-1": "172.30.3.11", "haproxy-lb-emqx-2": "172.30.3.12"}
NODE1, NODE2 = "emqx@172.30.3.11", "emqx@172.30.3.12"
CLIENT_IP = "172.30.3.1"  # the controller, as the nodes should see it through the LB
MQTTS, WSS = 8883, 8084
API_SECRET = "molecule-api-secret-0123456789"
API = lbtest.EmqxApi(NODES, "molecule", API_SECRET)
SCENARIO = pathlib.Path(__file__).resolve().parents[1]
EPHEMERAL = pathlib.Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
CA = EPHEMERAL / "lab-ca" / "ca.pem"
CONF = "/etc/haproxy/haproxy.cfg"
BACKENDS = ("emqx_mqtt", "emqx_ws")
# Health checks every 2 s, down after 3 failures, up after 2 passes (the role's defaults).
CHECK_WINDOW = 2 * 3 + 4


def _host(name):
    return testinfra.get_host("docker://" + name)


def _device(transport="mqtts", **kwargs):
    return lbtest.Device(LB_IP, WSS if transport == "wss" else MQTTS, CA, transport, **kwargs)


def _runtime_api(command):
    """One command on HAProxy's runtime API socket, from inside the LB."""
    quoted = "'" + command.replace("'", "'\\''") + "'"
    return _host(LB).check_output("echo %s | socat stdio /run/haproxy/admin.sock" % quoted)


def _servers_state(backend="emqx_mqtt"):
    """{server name: (operational state, admin state)} from "show servers state"."""
    return lbtest.haproxy_servers_state(_host(LB), backend)


def _wait_for_state(name, op_state, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        states = [_servers_state(b)[name][0] for b in BACKENDS]
        if all(s == op_state for s in states):
            return time.time()
        time.sleep(0.5)
    raise AssertionError("%s did not reach op_state %d within %ss: %s" % (name, op_state, timeout, _servers_state()))


# ---- configuration and files ----------------------------------------------------------------

def test_config_is_managed_and_valid():
    lb = _host(LB)
    cfg = lb.file(CONF)
    assert cfg.content_string.startswith("#\n# Ansible managed")
    assert cfg.mode == 0o640 and cfg.group == "haproxy"
    assert lb.run("haproxy -c -f %s" % CONF).rc == 0
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
    cfg = lb.file(CONF).content_string
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
    version, names = lbtest.peer_names(LB_IP, port, CA, LB)
    assert version in ("TLSv1.2", "TLSv1.3")
    assert LB in names
    # The same certificate does not verify for another name, nor without the lab CA.
    assert lbtest.verify_fails(LB_IP, port, lbtest.tls_context(CA), "mqtt.example.invalid")
    assert lbtest.verify_fails(LB_IP, port, ssl.create_default_context(), LB)


@pytest.fixture(scope="module")
def old_tls_server(tmp_path_factory):
    """A loopback server that accepts TLS 1.0 and 1.1: proof the client below can speak them."""
    with lbtest.old_tls_server(tmp_path_factory.mktemp("oldtls")) as port:
        yield port


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1], ids=["TLSv1.0", "TLSv1.1"])
@pytest.mark.parametrize("port", [MQTTS, WSS])
def test_tls_1_0_and_1_1_are_refused(old_tls_server, version, port):
    # Control: this client completes a TLS 1.0/1.1 handshake with a server that allows it ...
    assert lbtest.old_tls_version_speaks(old_tls_server, version) == lbtest.TLS_NAMES[version]
    # ... and the load balancer answers the same client with a protocol_version alert.
    assert lbtest.old_tls_refusal(LB_IP, port, version) == "TLSV1_ALERT_PROTOCOL_VERSION"


def test_sslyze_finds_mozilla_intermediate_compliance():
    result = lbtest.sslyze_intermediate(LB, LB_IP, (MQTTS, WSS), CA)
    print(result.stdout[-4000:])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert result.stdout.count(": OK - Compliant.") == 2, result.stdout[-3000:]


# ---- MQTT through the load balancer -----------------------------------------------------------

@pytest.mark.parametrize("sub_transport,pub_transport", [("mqtts", "wss"), ("wss", "mqtts"), ("mqtts", "mqtts")])
def test_publish_and_subscribe_through_the_lb(sub_transport, pub_transport):
    sub = _device(sub_transport)
    pub = _device(pub_transport)
    try:
        assert lbtest.publish_and_receive(sub, pub), sub.messages
    finally:
        sub.close()
        pub.close()


@pytest.mark.parametrize("transport", ["mqtts", "wss"])
def test_emqx_sees_the_device_address_not_the_lbs(transport):
    device = _device(transport)
    try:
        info = API.client_info(device.clientid, "haproxy-lb-emqx-1")
        assert info["ip_address"] == CLIENT_IP, info
        assert info["ip_address"] != LB_IP
    finally:
        device.close()


# ---- operations: drain, failover --------------------------------------------------------------

def test_drain_and_ready_through_the_runtime_api():
    for backend in BACKENDS:
        _runtime_api("set server %s/haproxy-lb-emqx-1 state drain" % backend)
    devices = []
    try:
        assert _servers_state()["haproxy-lb-emqx-1"][1] & 0x08  # SRV_ADMF_DRAIN
        devices = [_device("mqtts") for _ in range(3)] + [_device("wss")]
        assert set(API.nodes_of(devices, "haproxy-lb-emqx-1")) == {NODE2}
    finally:
        for backend in BACKENDS:
            _runtime_api("set server %s/haproxy-lb-emqx-1 state ready" % backend)
    try:
        assert _servers_state()["haproxy-lb-emqx-1"][1] == 0
        # leastconn: node 2 holds the drained-time devices, so new ones go to node 1.
        fresh = [_device("mqtts") for _ in range(2)]
        devices += fresh
        assert set(API.nodes_of(fresh, "haproxy-lb-emqx-1")) == {NODE1}
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
        devices = [_device("mqtts") for _ in range(3)] + [_device("wss")]
        assert set(API.nodes_of(devices, "haproxy-lb-emqx-2")) == {NODE2}
    finally:
        node1.check_output("systemctl start emqx")
    up_at = _wait_for_state("haproxy-lb-emqx-1", 2, 90)
    print("node 1 back up %.1fs after it started" % (up_at - stopped))
    try:
        fresh = [_device("mqtts") for _ in range(2)]
        devices += fresh
        assert NODE1 in API.nodes_of(fresh, "haproxy-lb-emqx-1")
    finally:
        for d in devices:
            d.close()


# ---- preflight refusals and check mode (ansible-playbook runs, side by side) -----------------

def _playbook(*args, playbook="converge.yml"):
    return lbtest.playbook(SCENARIO / playbook, "haproxy_lb", *args)


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
    # The health check sends no PROXY header: on the nodes' MQTT or WebSocket port every node would go down.
    "health_check_on_the_mqtt_listener": (
        {"haproxy_lb_backend_check_port": 1883},
        ["haproxy_lb_backend_check_port=1883 is a listener of the EMQX nodes that waits for a PROXY protocol header",
         "haproxy-lb-emqx-1 (tcp listener, port 1883)", "haproxy-lb-emqx-2 (tcp listener, port 1883)",
         "haproxy_lb_backend_mqtt_port (HAProxy sends the PROXY header there", "haproxy_lb_backend_check_port: 18083"]),
    "health_check_on_the_ws_listener": (
        {"haproxy_lb_backend_check_port": 8083},
        ["haproxy_lb_backend_check_port=8083", "haproxy-lb-emqx-1 (ws listener, port 8083)",
         "haproxy_lb_backend_ws_port (HAProxy sends the PROXY header there", "haproxy_lb_backend_check_port: 18083"]),
    # The lab certificate (valid, with its key) names the LB's host names and addresses, not this name.
    "certificate_without_the_server_name": (
        {"haproxy_lb_tls_source": "files", "haproxy_lb_tls_cert_file": str(EPHEMERAL / "lab-ca" / "haproxy-lb-1.pem"),
         "haproxy_lb_tls_key_file": str(EPHEMERAL / "lab-ca" / "haproxy-lb-1.key"),
         "haproxy_lb_tls_server_names": ["mqtt.example.invalid"]},
        ["does not cover every name devices use", "mqtt.example.invalid: no DNS entry covers it", "Its subjectAltName entries:",
         "DNS:haproxy-lb-1", "IP:%s" % LB_IP, "haproxy_lb_tls_server_names", "haproxy_lb_tls_check_server_names: false"]),
    # Certificates from the fixture (NAME_CASE_CERTS); the server names default to haproxy_lb_private_address.
    "dns_san_spelling_the_address": (
        {"haproxy_lb_tls_source": "files"},
        ["%s: an IP address, and the certificate has no IP:%s entry" % (LB_IP, LB_IP),
         "DNS:%s does not count for an address" % LB_IP, "haproxy_lb_tls_check_server_names: false"]),
}

# Preflight runs that must pass (and change nothing), with certificates from the fixture.
PREFLIGHT_PASSES = {
    "ip_san_covers_the_address": {"haproxy_lb_tls_source": "files", "haproxy_lb_tls_server_names": [LB_IP]},
    "name_check_turned_off": {"haproxy_lb_tls_source": "files", "haproxy_lb_tls_check_server_names": False},
}

# subjectAltName entries of the certificate the fixture makes for a case (the CN is the LB's address
# every time: clients, and the preflight, never read it).
NAME_CASE_CERTS = {
    "dns_san_spelling_the_address": ["DNS:%s" % LB_IP, "DNS:%s" % LB],
    "ip_san_covers_the_address": ["IP:%s" % LB_IP],
    "name_check_turned_off": ["DNS:mqtt.example.test"],
}


def _certificate(workdir, sans):
    """A self-signed certificate valid now with these subjectAltName entries, and its key (PEM files)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.IPAddress(ipaddress.ip_address(v[3:])) if v.startswith("IP:") else x509.DNSName(v[4:]) for v in sans]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, LB_IP)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(names), critical=False).sign(key, hashes.SHA256()))
    (workdir / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (workdir / "server.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
    return workdir / "server.pem", workdir / "server.key"


@pytest.fixture(scope="module", autouse=True)
def playbook_runs(tmp_path_factory):
    """Every preflight refusal (preflight tags only) and one check-mode run, started in the background
    with the first test (they change nothing) and collected by the tests that need them."""
    from concurrent.futures import ThreadPoolExecutor

    cert, key = lbtest.expired_certificate(tmp_path_factory.mktemp("expired"), LB)
    cases = {k: dict(v[0]) for k, v in PREFLIGHT_CASES.items()}
    cases["expired_certificate"].update(haproxy_lb_tls_cert_file=str(cert), haproxy_lb_tls_key_file=str(key))
    cases.update({k: dict(v) for k, v in PREFLIGHT_PASSES.items()})
    for case, sans in NAME_CASE_CERTS.items():
        cert, key = _certificate(tmp_path_factory.mktemp(case), sans)
        cases[case].update(haproxy_lb_tls_cert_file=str(cert), haproxy_lb_tls_key_file=str(key))
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
    assert lbtest.recap_unchanged(run.stdout, LB), run.stdout[-2000:]


@pytest.mark.parametrize("case", sorted(PREFLIGHT_PASSES))
def test_preflight_accepts_a_certificate_that_names_the_lb(playbook_runs, case):
    run = playbook_runs[case].result()
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert lbtest.recap_unchanged(run.stdout, LB), run.stdout[-2000:]


def test_check_mode_on_a_converged_lb_reports_no_change(playbook_runs):
    run = playbook_runs["check"].result()
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert re.search(r"haproxy-lb-1\s*:\s*ok=\d+\s+changed=0\s+unreachable=0\s+failed=0", run.stdout), run.stdout[-3000:]
    assert "PRIVATE KEY" not in run.stdout


# ---- a changed setting reloads without dropping anyone (runs last) ----------------------------

def _master_and_workers():
    """HAProxy's master (systemd's MainPID) and the pids of its workers."""
    lb = _host(LB)
    master = lb.check_output("systemctl show -p MainPID --value haproxy")
    out = lb.check_output("ps -o pid=,ppid=,args= -C haproxy")
    return master, {p[0] for p in (line.split(None, 2) for line in out.splitlines()) if p[1] == master}


def test_changed_setting_reloads_without_dropping_an_established_connection(playbook_runs):
    for run in playbook_runs.values():  # nothing else runs a playbook while this one changes the LB
        run.result()
    topic = "molecule/reload/%s" % uuid.uuid4().hex
    device = _device("mqtts")
    device.subscribe(topic)
    master_before, workers_before = _master_and_workers()
    cfg = _host(LB).file(CONF).content_string
    timeout = int(re.search(r"^\s+timeout client (\d+)s", cfg, re.M).group(1)) + 60
    try:
        run = _playbook("-e", "haproxy_lb_timeout_client=%d" % timeout, "-e", "haproxy_lb_timeout_server=%d" % timeout)
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
        assert re.search(r"TASK \[iothub\.emq\.haproxy_lb : Reload HAProxy \(new processes", run.stdout)
        assert "timeout client %ds" % timeout in _host(LB).file(CONF).content_string
        # Same master (a reload, not a restart), a new worker, and the old one still serving us.
        master_after, workers_after = _master_and_workers()
        assert master_after == master_before
        assert workers_after - workers_before, "no new worker after the reload"
        assert workers_before & workers_after, "the old worker is gone: established connections were cut"
        # The connection made before the reload still carries traffic both ways.
        assert device.disconnects == []
        device.publish(topic, b"after the reload")
        assert device.wait_for((topic, b"after the reload"))
        other = _device("mqtts")
        try:
            other.publish(topic, b"from a new connection")
            assert device.wait_for((topic, b"from a new connection"))
        finally:
            other.close()
        assert device.disconnects == []
    finally:
        device.close()


# ---- a change HAProxy does not take is put back (the stats port held by another program) -----------

SQUATTED_PORT = 9999


def test_a_reload_haproxy_cannot_take_puts_the_last_good_configuration_back(playbook_runs):
    """haproxy -c accepts a stats port that another program holds; the reload fails to bind it. The role
    must put haproxy.cfg back to what runs, keep HAProxy serving, and fail saying so."""
    for run in playbook_runs.values():  # nothing else runs a playbook while this one changes the LB
        run.result()
    lb = _host(LB)
    lb.check_output("systemd-run --unit=port-squatter python3 -m http.server %d --bind %s" % (SQUATTED_PORT, LB_IP))
    try:
        deadline = time.time() + 20
        while lb.run("ss -Htln 'sport = :%d'" % SQUATTED_PORT).stdout.strip() == "" and time.time() < deadline:
            time.sleep(0.5)
        before = lb.check_output("sha256sum %s" % CONF)
        master = _unit("MainPID")
        run = _playbook("-e", "haproxy_lb_stats_port=%d" % SQUATTED_PORT)
        out = run.stdout + run.stderr
        assert run.returncode == 2, out[-4000:]
        assert "haproxy on %s did not take the new %s" % (LB, CONF) in out, out[-4000:]
        assert "was put back from %s.last-good" % CONF in out, out[-4000:]
        assert "haproxy kept running its previous configuration" in out, out[-4000:]
        assert lb.check_output("sha256sum %s" % CONF) == before, "haproxy.cfg is not the one that runs"
        assert lb.check_output("sha256sum %s.last-good | cut -d' ' -f1" % CONF) == before.split()[0]
        assert _unit("MainPID") == master and _handshake_ok(), "HAProxy stopped serving"
        device = _device("mqtts")
        device.close()
    finally:
        lb.run("systemctl stop port-squatter")


# ---- systemd brings a killed HAProxy back (runs last) --------------------------------------------

RESTART_DROPIN = "/etc/systemd/system/haproxy.service.d/10-iothub-emq-restart.conf"


def _unit(prop):
    """One property of haproxy.service as systemd has it loaded."""
    return _host(LB).check_output("systemctl show -p %s --value haproxy.service" % prop).strip()


def _handshake_ok():
    """True when a TLS handshake on the LB's 8883 completes and verifies (lab CA, the LB's name)."""
    try:
        version, _ = lbtest.peer_names(LB_IP, MQTTS, CA, LB)
    except OSError:  # refused, reset, timed out, or ssl.SSLError
        return False
    return version in ("TLSv1.2", "TLSv1.3")


def test_restart_policy_is_loaded():
    dropin = _host(LB).file(RESTART_DROPIN)
    assert dropin.exists and dropin.user == "root" and dropin.mode == 0o644
    # Debian's own Restart=always, kept; a 2 s pause and a start limit added (daemon-reload ran).
    assert _unit("Restart") == "always"
    assert _unit("RestartUSec") == "2s"
    assert _unit("StartLimitBurst") == "5"
    assert _unit("StartLimitIntervalUSec") == "1min"


def test_a_killed_master_is_started_again_by_systemd(playbook_runs, request):
    for run in playbook_runs.values():  # no playbook may see HAProxy down
        run.result()
    restart_sec = int(re.search(r"^RestartSec=(\d+)s$", _host(LB).file(RESTART_DROPIN).content_string, re.M).group(1))
    before, restarts = int(_unit("MainPID")), int(_unit("NRestarts"))
    assert before > 0 and _handshake_ok()
    _host(LB).check_output("kill -9 %d" % before)
    killed = time.time()
    deadline = killed + restart_sec + 20
    pid = before
    while time.time() < deadline:
        pid = int(_unit("MainPID"))
        if pid not in (0, before) and _unit("ActiveState") == "active" and _handshake_ok():
            break
        time.sleep(0.5)
    else:
        raise AssertionError("HAProxy did not come back within %ds of kill -9 %d: MainPID %d, %s/%s, %d restarts"
                             % (restart_sec + 20, before, pid, _unit("ActiveState"), _unit("SubState"), int(_unit("NRestarts"))))
    request.config.pluginmanager.getplugin("terminalreporter").write_line(
        "haproxy master %d killed, master %d serving TLS again after %.1fs" % (before, pid, time.time() - killed))
    assert int(_unit("NRestarts")) == restarts + 1, "not restarted by systemd's Restart= logic"
    # Back with its backends: both nodes up again after the health checks (rise 2 x inter 2 s).
    for node in NODES:
        _wait_for_state(node, 2, CHECK_WINDOW + 5)
    sub, pub = _device("mqtts"), _device("wss")
    try:
        assert lbtest.publish_and_receive(sub, pub), sub.messages
    finally:
        sub.close()
        pub.close()
