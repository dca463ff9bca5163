"""HAProxy in front of two EMQX nodes, as devices and operators see it.

Every check runs from the controller, which reaches the containers on the scenario's own bridge
(172.30.3.0/24, the controller is 172.30.3.1) and talks only to them and to loopback.
"""

import base64
import datetime
import ipaddress
import json
import os
import pathlib
import re
import ssl
import sys
import time
import urllib.error
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
SECRETS = "/etc/haproxy/iothub-secrets.cfg"
CONFIG_DROPIN = "/etc/systemd/system/haproxy.service.d/20-iothub-emq-config.conf"
# The stats user of the scenario's inventory (molecule.yml): a password with a space, a '#', double quotes
# and a backslash. TOKEN is a part of it that nothing else prints: it must never show in Ansible's output.
STATS_USER = "molecule-ops"
STATS_PASSWORD = 'stats pw#1 "q" \\ pw-7c3e91'
STATS_TOKEN = "pw-7c3e91"
BACKENDS = ("emqx_mqtt", "emqx_ws")
# Health checks every 2 s, down after 3 failures, up after 2 passes (the role's defaults).
CHECK_WINDOW = 2 * 3 + 4


def _host(name):
    return testinfra.get_host("docker://" + name)


def _device(transport="mqtts", **kwargs):
    return lbtest.Device(LB_IP, WSS if transport == "wss" else MQTTS, CA, transport, **kwargs)


def _http(url, credentials=None):
    """(status, headers, body) of a GET, with HTTP basic auth when credentials (user, password) are given."""
    request = urllib.request.Request(url)
    if credentials is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(("%s:%s" % credentials).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.headers, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read().decode(errors="replace")


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
    # Checked as HAProxy loads it: haproxy.cfg, then the secrets file (the userlist it names).
    assert lb.run("haproxy -c -f %s -f %s" % (CONF, SECRETS)).rc == 0
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


def test_haproxy_cfg_holds_no_secret_and_the_secrets_file_is_private():
    lb = _host(LB)
    text = lb.file(CONF).content_string
    assert STATS_TOKEN not in text
    assert "stats auth" not in text and "insecure-password" not in text
    assert "http_auth(iothub_stats)" in text
    secrets = lb.file(SECRETS)
    assert secrets.user == "root" and secrets.group == "haproxy" and secrets.mode == 0o640
    # The password is written quoted for HAProxy: the double quotes and the backslash escaped.
    assert 'user "molecule-ops" insecure-password "stats pw#1 \\"q\\" \\\\ pw-7c3e91"' in secrets.content_string


def test_haproxy_reads_the_secrets_file_after_haproxy_cfg():
    lb = _host(LB)
    dropin = lb.file(CONFIG_DROPIN)
    assert dropin.user == "root" and dropin.mode == 0o644
    for prop in ("ExecStart", "ExecReload"):
        assert "-f %s" % SECRETS in _unit(prop), _unit(prop)
    # The running master has it on its command line, so every reload re-reads it.
    cmdline = lb.file("/proc/%s/cmdline" % _unit("MainPID")).content.split(b"\0")
    assert SECRETS.encode() in cmdline and cmdline.index(SECRETS.encode()) > cmdline.index(CONF.encode())


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
    status, _, metrics = _http("http://%s:8404/metrics" % LB_IP, (STATS_USER, STATS_PASSWORD))
    assert status == 200
    assert 'haproxy_server_status{proxy="emqx_mqtt",server="haproxy-lb-emqx-1"' in metrics
    status, _, page = _http("http://%s:8404/stats" % LB_IP, (STATS_USER, STATS_PASSWORD))
    assert status == 200 and "emqx_mqtt" in page


@pytest.mark.parametrize("path", ["/stats", "/metrics", "/"])
def test_every_page_of_the_stats_listener_asks_who_is_there(path):
    url = "http://%s:8404%s" % (LB_IP, path)
    status, headers, _ = _http(url)
    assert status == 401 and headers.get("WWW-Authenticate", "").startswith("Basic realm="), (status, dict(headers))
    for wrong in [(STATS_USER, "wrong"), (STATS_USER, STATS_PASSWORD[:-1]), (STATS_USER, STATS_PASSWORD.replace("\\", "")),
                  ("admin", STATS_PASSWORD)]:
        assert _http(url, wrong)[0] == 401, wrong[0]


@pytest.mark.parametrize("path", ["/stats", "/metrics"])
def test_the_password_with_a_space_a_hash_and_quotes_logs_in(path):
    # All of it counts: HAProxy read the quoted word back exactly (not cut at the space or the '#').
    assert " " in STATS_PASSWORD and "#" in STATS_PASSWORD and '"' in STATS_PASSWORD and "\\" in STATS_PASSWORD
    assert _http("http://%s:8404%s" % (LB_IP, path), (STATS_USER, STATS_PASSWORD))[0] == 200


def test_no_secret_in_ansible_output():
    log = (EPHEMERAL / "ansible.log").read_text()
    assert "Lab CA for clients" in log  # the log is the one the converge wrote
    assert "PRIVATE KEY" not in log
    assert API_SECRET not in log
    assert "molecule-haproxy-lb-cookie-3b9d" not in log
    assert STATS_TOKEN not in log


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
    # The first load balancer only: these tests change its settings (the second shares its floating address, test_a_vip.py).
    return lbtest.playbook(SCENARIO / playbook, LB, *args)


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
    # Every status page asks who is there: stats without a password are refused, saying what to write instead.
    "stats_without_a_password": (
        {"haproxy_lb_stats_password": ""},
        ["haproxy_lb_stats_enabled is true but haproxy_lb_stats_password is empty",
         "the stats page and the Prometheus metrics on %s:8404 would answer anyone" % LB_IP,
         "vault_haproxy_lb_stats_password", "haproxy_lb_stats_enabled: false"]),
    "stats_without_a_user_or_password": (
        {"haproxy_lb_stats_user": "", "haproxy_lb_stats_password": ""},
        ["haproxy_lb_stats_user and haproxy_lb_stats_password are empty", "haproxy_lb_stats_enabled: false"]),
    # A careless vault string; the message names the variable and the character, never the password.
    "stats_password_with_a_trailing_newline": (
        {"haproxy_lb_stats_password": "refused-pw-4b7d19\n"},
        ["haproxy_lb_stats_password has a newline at the end", "printf '%s'"]),
    "stats_user_with_a_colon": (
        {"haproxy_lb_stats_user": "ops:1"},
        ["haproxy_lb_stats_user may not hold ':'"]),
    # Metrics without a password only on an address of their own, never on every address.
    "metrics_without_a_password_on_every_address": (
        {"haproxy_lb_prometheus_bind_address": "0.0.0.0"},
        ["haproxy_lb_prometheus_bind_address serves the Prometheus metrics without a password", "not every address",
         'haproxy_lb_prometheus_bind_address: ""']),
}

# Preflight runs that must pass (and change nothing), with certificates from the fixture.
PREFLIGHT_PASSES = {
    "ip_san_covers_the_address": {"haproxy_lb_tls_source": "files", "haproxy_lb_tls_server_names": [LB_IP]},
    "name_check_turned_off": {"haproxy_lb_tls_source": "files", "haproxy_lb_tls_check_server_names": False},
    # No stats listener: no password needed.
    "stats_off_without_a_password": {"haproxy_lb_stats_enabled": False, "haproxy_lb_stats_user": "", "haproxy_lb_stats_password": ""},
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
    assert "refused-pw-4b7d19" not in out and STATS_TOKEN not in out, "a password was printed"
    # Refused before anything changed on the load balancer.
    assert lbtest.recap_unchanged(run.stdout, LB), run.stdout[-2000:]


@pytest.mark.parametrize("case", sorted(PREFLIGHT_PASSES))
def test_preflight_accepts(playbook_runs, case):
    run = playbook_runs[case].result()
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert lbtest.recap_unchanged(run.stdout, LB), run.stdout[-2000:]


def test_check_mode_on_a_converged_lb_reports_no_change(playbook_runs):
    run = playbook_runs["check"].result()
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert re.search(r"haproxy-lb-1\s*:\s*ok=\d+\s+changed=0\s+unreachable=0\s+failed=0", run.stdout), run.stdout[-3000:]
    assert "PRIVATE KEY" not in run.stdout
    assert STATS_TOKEN not in run.stdout + run.stderr


# ---- the stats password: changed by a reload, never shown in a diff (changes the LB) ----------

# A new password with what a quoted HAProxy word must carry: a backslash, '$' (an environment variable
# inside double quotes, unless escaped), a double quote, '#' and spaces.
NEW_STATS_PASSWORD = 'new \\ $HOME ${PATH} "pw-51d0ae" #2'
NEW_STATS_TOKEN = "pw-51d0ae"


def _secret_free(run, *tokens):
    """Assert no password (the parts no other output has) is in the run's output, whichever way it was quoted."""
    out = run.stdout + run.stderr
    for token in (STATS_TOKEN, NEW_STATS_TOKEN, "refused-pw-4b7d19") + tokens:
        assert token not in out, "a password shows in the output of ansible-playbook --diff"
    return out


def _task_output(stdout, task):
    """What ansible-playbook printed for one task of the role, from its TASK line to the next one."""
    match = re.search(r"TASK \[iothub\.emq\.haproxy_lb : %s.*?(?=\n(?:TASK|RUNNING HANDLER|PLAY) \[|\Z)" % re.escape(task),
                      stdout, re.S)
    assert match, "task %s did not run" % task
    return match.group(0)


def _converge_lb(*args):
    run = _playbook("--diff", *args)
    out = _secret_free(run)
    assert run.returncode == 0, out[-4000:]
    return run


def test_a_changed_stats_password_applies_by_reload_and_shows_in_no_diff(playbook_runs):
    for run in playbook_runs.values():  # nothing else runs a playbook while this one changes the LB
        run.result()
    url = "http://%s:8404/stats" % LB_IP
    master = _unit("MainPID")
    try:
        run = _converge_lb("-e", json.dumps({"haproxy_lb_stats_password": NEW_STATS_PASSWORD}))
        assert "changed: [%s]" % LB in _task_output(run.stdout, "Write the secrets file of haproxy.cfg (no_log, no diff)]")
        # haproxy.cfg did not change (no secret in it), and the password applied with a reload (same master).
        assert "ok: [%s]" % LB in _task_output(run.stdout, "Write haproxy.cfg]"), run.stdout[-4000:]
        assert "changed: [%s]" % LB in _task_output(run.stdout, "Reload HAProxy (new processes"), run.stdout[-4000:]
        assert "skipping: [%s]" % LB in _task_output(run.stdout, "Restart HAProxy"), run.stdout[-4000:]
        assert _unit("MainPID") == master, "restarted, not reloaded"
        assert _http(url, (STATS_USER, NEW_STATS_PASSWORD))[0] == 200
        assert _http(url, (STATS_USER, STATS_PASSWORD))[0] == 401
        # HAProxy took the backslash and '$' literally ($HOME was not expanded).
        assert _http(url, (STATS_USER, NEW_STATS_PASSWORD.replace("$HOME", "/root")))[0] == 401
    finally:
        _converge_lb()  # back to the inventory's password
    assert _http(url, (STATS_USER, STATS_PASSWORD))[0] == 200
    assert _http(url, (STATS_USER, NEW_STATS_PASSWORD))[0] == 401
    assert _unit("MainPID") == master


def test_turning_stats_off_removes_the_password_and_shows_it_in_no_diff(playbook_runs):
    for run in playbook_runs.values():
        run.result()
    lb = _host(LB)
    try:
        _converge_lb("-e", json.dumps({"haproxy_lb_stats_enabled": False, "haproxy_lb_stats_user": "",
                                       "haproxy_lb_stats_password": ""}))
        assert STATS_TOKEN not in lb.file(SECRETS).content_string
        assert "userlist iothub_stats" in lb.file(SECRETS).content_string
        assert "tcp://%s:8404" % LB_IP not in lb.socket.get_listening_sockets()
    finally:
        _converge_lb()
    assert _http("http://%s:8404/metrics" % LB_IP, (STATS_USER, STATS_PASSWORD))[0] == 200


def test_a_password_left_in_haproxy_cfg_by_an_older_role_is_removed_without_a_diff(playbook_runs):
    """haproxy.cfg written before the secrets file existed held "stats auth user:password": the run that
    removes that line must not print it (the diff of haproxy.cfg stays off while the live file has one)."""
    for run in playbook_runs.values():
        run.result()
    lb = _host(LB)
    legacy = "legacy-stats-pw-93be04"
    lb.check_output("sed -i 's/^    stats enable$/    stats enable\\n    stats auth molecule-ops:%s/' %s" % (legacy, CONF))
    assert legacy in lb.file(CONF).content_string
    run = _converge_lb()
    _secret_free(run, legacy)
    written = _task_output(run.stdout, "Write haproxy.cfg]")
    assert "changed: [%s]" % LB in written and "--- before" not in written, written
    assert legacy not in lb.file(CONF).content_string
    # The next run has nothing to hide: the diff of haproxy.cfg is on again.
    assert lb.run("grep -c -E 'stats[[:space:]]+auth' %s" % CONF).stdout.strip() == "0"


def test_metrics_on_a_listener_of_their_own_answer_without_a_password(playbook_runs):
    """The other choice: /metrics without a password on an address only the monitoring host reaches
    (here the LB's address, port 8405); the stats listener keeps asking and no longer serves them."""
    for run in playbook_runs.values():
        run.result()
    try:
        _converge_lb("-e", json.dumps({"haproxy_lb_prometheus_bind_address": LB_IP}))
        status, _, metrics = _http("http://%s:8405/metrics" % LB_IP)
        assert status == 200 and "haproxy_process_" in metrics
        assert _http("http://%s:8405/stats" % LB_IP)[0] == 404
        assert _http("http://%s:8404/metrics" % LB_IP)[0] == 401
        assert _http("http://%s:8404/stats" % LB_IP, (STATS_USER, STATS_PASSWORD))[0] == 200
        assert "tcp://0.0.0.0:8405" not in _host(LB).socket.get_listening_sockets()
    finally:
        _converge_lb()
    assert "tcp://%s:8405" % LB_IP not in _host(LB).socket.get_listening_sockets()
    assert _http("http://%s:8404/metrics" % LB_IP, (STATS_USER, STATS_PASSWORD))[0] == 200


# ---- a changed setting reloads without dropping anyone (runs last) ----------------------------

def _master_and_workers():
    """HAProxy's master (systemd's MainPID) and the pids of its workers."""
    lb = _host(LB)
    master = lb.check_output("systemctl show -p MainPID --value haproxy")
    out = lb.check_output("ps -o pid=,ppid=,args= -C haproxy")
    return master, {p[0] for p in (line.split(None, 2) for line in out.splitlines()) if p[1] == master}


def test_changed_setting_and_a_rotated_certificate_reload_without_dropping_an_established_connection(
        playbook_runs, tmp_path):
    """issue 15: a new certificate (tls_source files, signed by the same CA) and a changed setting in one run:
    a reload, the device connected before keeps publishing, the next handshake gets the new certificate."""
    for run in playbook_runs.values():  # nothing else runs a playbook while this one changes the LB
        run.result()
    topic = "molecule/reload/%s" % uuid.uuid4().hex
    device = _device("mqtts")
    device.subscribe(topic)
    master_before, workers_before = _master_and_workers()
    cfg = _host(LB).file(CONF).content_string
    timeout = int(re.search(r"^\s+timeout client (\d+)s", cfg, re.M).group(1)) + 60
    cert, key, der = lbtest.server_certificate(tmp_path, CA.parent, LB, LB_IP)
    # The new certificate names the load balancer's address only: so do the names it is checked against.
    rotated = {"haproxy_lb_tls_source": "files", "haproxy_lb_tls_cert_file": str(cert), "haproxy_lb_tls_key_file": str(key),
               "haproxy_lb_tls_server_names": [LB_IP]}
    assert lbtest.served_certificate(LB_IP, MQTTS, CA, LB) != der
    try:
        run = _playbook("-e", "haproxy_lb_timeout_client=%d" % timeout, "-e", "haproxy_lb_timeout_server=%d" % timeout,
                        "-e", json.dumps(rotated))
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
        # The rotated certificate is what the next handshake gets.
        assert lbtest.served_certificate(LB_IP, MQTTS, CA, LB) == der, "the LB still serves the old certificate"
    finally:
        device.close()
        # Back to the lab certificate for the tests after this one.
        back = _playbook()
        assert back.returncode == 0, back.stdout[-4000:] + back.stderr[-2000:]


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
