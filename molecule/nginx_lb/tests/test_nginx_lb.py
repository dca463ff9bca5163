"""NGINX in front of two EMQX nodes, as devices and operators see it.

Every check runs from the controller, which reaches the containers on the scenario's own bridge
(172.30.4.0/24, the controller is 172.30.4.1) and talks only to them and to loopback.
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
import urllib.error
import urllib.request
import uuid

import pytest
import testinfra

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "_shared"))
import lbtest  # noqa: E402  (molecule/_shared: helpers the load-balancer scenarios share)

LB = "nginx-lb-1"
LB_IP = "172.30.4.10"
NODES = {"nginx-lb-emqx-1": "172.30.4.11", "nginx-lb-emqx-2": "172.30.4.12"}
NODE1, NODE2 = "emqx@172.30.4.11", "emqx@172.30.4.12"
CLIENT_IP = "172.30.4.1"  # the controller, as the nodes should see it through the LB
MQTTS, WSS = 8883, 8084
API_SECRET = "molecule-api-secret-0123456789"
API = lbtest.EmqxApi(NODES, "molecule", API_SECRET)
SCENARIO = pathlib.Path(__file__).resolve().parents[1]
EPHEMERAL = pathlib.Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
CA = EPHEMERAL / "lab-ca" / "ca.pem"
CONF = "/etc/nginx/nginx.conf"
# The role's default: a node that refused a connection gets no new one for this long.
FAIL_TIMEOUT = 10


def _host(name):
    return testinfra.get_host("docker://" + name)


def _device(transport="mqtts", **kwargs):
    return lbtest.Device(LB_IP, WSS if transport == "wss" else MQTTS, CA, transport, **kwargs)


def _conf():
    return _host(LB).file(CONF).content_string


def _directive(name, text=None):
    match = re.search(r"^\s*%s\s+([^;]+);" % re.escape(name), text or _conf(), re.M)
    assert match, "%s is not in %s" % (name, CONF)
    return match.group(1)


def _master_and_workers():
    lb = _host(LB)
    master = lb.check_output("cat /run/nginx.pid").strip()
    workers = {}
    for line in lb.check_output("ps -o pid=,ppid=,args= -C nginx").splitlines():
        pid, ppid, args = line.split(None, 2)
        if ppid == master:
            workers[pid] = args
    return master, workers


# ---- configuration and files ----------------------------------------------------------------

def test_packages_and_stream_module():
    lb = _host(LB)
    assert lb.package("nginx").is_installed
    assert lb.package("libnginx-mod-stream").is_installed
    assert "--with-stream=dynamic" in lb.run("nginx -V").stderr
    assert lb.file("/etc/nginx/modules-enabled/50-mod-stream.conf").exists
    assert lb.service("nginx").is_running and lb.service("nginx").is_enabled


def test_config_is_managed_and_valid():
    lb = _host(LB)
    cfg = lb.file(CONF)
    assert cfg.content_string.startswith("#\n# Ansible managed")
    assert cfg.user == "root" and cfg.mode == 0o644
    assert lb.run("nginx -t -q").rc == 0
    text = cfg.content_string
    assert _directive("ssl_protocols", text) == "TLSv1.2 TLSv1.3"
    assert _directive("ssl_session_cache", text).startswith("shared:emqx_tls:")
    assert _directive("ssl_session_tickets", text) == "off"
    assert _directive("proxy_protocol", text) == "on"
    assert _directive("proxy_next_upstream", text) == "on"
    # 4 x the 60 s keepalive by default (the reload test at the end raises it): above 1.5 x keepalive.
    assert int(_directive("proxy_timeout", text).rstrip("s")) >= 240
    assert int(_directive("proxy_connect_timeout", text).rstrip("s")) <= 5
    assert re.search(r"upstream emqx_mqtt \{\s+zone emqx_mqtt \S+;\s+least_conn;", text)
    assert "server 172.30.4.11:1883 max_fails=1 fail_timeout=%ds;  # nginx-lb-emqx-1" % FAIL_TIMEOUT in text
    assert "server 172.30.4.12:8083 max_fails=1 fail_timeout=%ds;  # nginx-lb-emqx-2" % FAIL_TIMEOUT in text
    # Only the device listeners: no plain MQTT (off by default), no packaged default site on port 80.
    listening = lb.socket.get_listening_sockets()
    assert {"tcp://0.0.0.0:8883", "tcp://0.0.0.0:8084"} <= set(listening)
    assert not [s for s in listening if s.endswith(":1883") or s.endswith(":80")], listening


def test_key_and_certificate_files():
    lb = _host(LB)
    # The master (root) loads the key with the configuration; the workers (www-data) never open it.
    assert lb.check_output("ps -o user= -p $(cat /run/nginx.pid)") == "root"
    key = lb.file("/etc/nginx/certs/emqx-lb.key")
    assert key.user == "root" and key.group == "root" and key.mode == 0o600
    cert = lb.file("/etc/nginx/certs/emqx-lb.pem")
    assert cert.mode == 0o644 and "PRIVATE KEY" not in cert.content_string
    assert lb.file("/etc/nginx/certs").mode == 0o750
    assert "DH PARAMETERS" in lb.file("/etc/nginx/certs/dhparam.pem").content_string


def test_limits_are_consistent():
    lb = _host(LB)
    text = _conf()
    worker_connections = int(_directive("worker_connections", text))
    rlimit = int(_directive("worker_rlimit_nofile", text))
    workers = int(_directive("worker_processes", text))
    target = int(re.search(r"Sized for (\d+) connections", text).group(1))
    # A device takes two slots (its own and the one to EMQX); the workers share the devices.
    assert workers * worker_connections >= 2 * target
    assert worker_connections < rlimit
    # Several workers: the kernel spreads new connections over one reuseport socket per worker.
    listens = re.findall(r"^\s*listen (.*);$", text, re.M)
    device_listens = [line for line in listens if " ssl" in line]
    assert device_listens and all(("reuseport" in line) == (workers > 1) for line in device_listens), listens
    dropin = lb.file("/etc/systemd/system/nginx.service.d/10-iothub-emq-limits.conf").content_string
    assert "LimitNOFILE=%d" % rlimit in dropin
    sysctl = lb.file("/etc/sysctl.d/60-nginx-lb.conf").content_string
    assert int(re.search(r"^fs.nr_open = (\d+)", sysctl, re.M).group(1)) >= rlimit
    assert re.search(r"^net.ipv4.ip_local_reserved_ports = 8084,8405,8883,9113$", sysctl, re.M)
    # Every running worker holds the limit the configuration sets.
    _, running = _master_and_workers()
    assert len([a for a in running.values() if "shutting down" not in a]) == workers, running
    for pid in running:
        limits = lb.file("/proc/%s/limits" % pid).content_string
        assert re.search(r"Max open files\s+%d\s+%d" % (rlimit, rlimit), limits), limits


# Who may read the status page (molecule.yml: nginx_lb_status_allow: [172.30.4.11/32]): the LB itself and
# node 1; node 2 and the controller are refused. Every address here is a test container's or loopback.
STATUS_ALLOWED, STATUS_REFUSED = "nginx-lb-emqx-1", "nginx-lb-emqx-2"


def _status_from(container, path="/status"):
    """(HTTP status, body) of the status page asked from inside a container (curl, from its own address)."""
    out = _host(container).check_output("curl -s -o /dev/stdout -w '\\n%%{http_code}' --max-time 10 http://%s:8405%s", LB_IP, path)
    body, _, code = out.rpartition("\n")
    return int(code), body


def _status_from_controller(path="/status"):
    try:
        with urllib.request.urlopen("http://%s:8405%s" % (LB_IP, path), timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, ""


def test_status_page_on_the_private_address_only():
    listening = _host(LB).socket.get_listening_sockets()
    assert "tcp://%s:8405" % LB_IP in listening
    assert "tcp://0.0.0.0:8405" not in listening
    device = _device("mqtts")
    try:
        status, text = _status_from(STATUS_ALLOWED)
        assert status == 200, (status, text)
        # The device's connection counts: stub_status sees stream connections too.
        assert int(re.search(r"Active connections: (\d+)", text).group(1)) >= 2, text
    finally:
        device.close()
    assert _status_from(STATUS_ALLOWED, "/")[0] == 404


def test_status_page_answers_the_lb_itself_and_the_allowed_host():
    assert _status_from(LB)[0] == 200  # from its own address (nginx_lb_status_bind_address)
    assert _status_from(STATUS_ALLOWED)[0] == 200
    assert "allow 172.30.4.11/32;" in _conf() and "deny all;" in _conf()


@pytest.mark.parametrize("path", ["/status", "/"])
def test_status_page_refuses_hosts_not_allowed(path):
    assert _status_from(STATUS_REFUSED, path)[0] == 403
    assert _status_from_controller(path)[0] == 403


def test_the_prometheus_exporter_serves_nginx_metrics_on_the_private_address():
    lb = _host(LB)
    listening = lb.socket.get_listening_sockets()
    assert "tcp://%s:9113" % LB_IP in listening and "tcp://0.0.0.0:9113" not in listening, listening
    assert lb.service("prometheus-nginx-exporter").is_enabled
    device = _device("mqtts")
    try:
        with urllib.request.urlopen("http://%s:9113/metrics" % LB_IP, timeout=10) as resp:
            text = resp.read().decode()
    finally:
        device.close()
    # It reads the status page (which answers the LB itself): NGINX is up, and the device is counted.
    assert re.search(r"^nginx_up 1$", text, re.M), text[-2000:]
    assert int(float(re.search(r"^nginx_connections_active (\S+)$", text, re.M).group(1))) >= 2, text[-2000:]


def test_no_secret_in_ansible_output():
    log = (EPHEMERAL / "ansible.log").read_text()
    assert "Lab CA for clients" in log  # the log is the one the converge wrote
    assert "PRIVATE KEY" not in log
    assert API_SECRET not in log
    assert "molecule-nginx-lb-cookie-7c1e" not in log


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
        info = API.client_info(device.clientid, "nginx-lb-emqx-1")
        assert info["ip_address"] == CLIENT_IP, info
        assert info["ip_address"] != LB_IP
    finally:
        device.close()


# ---- passive failover -------------------------------------------------------------------------

def _refused_connects(upstream_port):
    """Lines of NGINX's error log where a connect to node 1 failed and the device went on."""
    log = _host(LB).file("/var/log/nginx/error.log").content_string
    return [line for line in log.splitlines()
            if "connect() failed" in line and 'upstream: "172.30.4.11:%d"' % upstream_port in line]


def test_failover_to_the_other_node_and_back():
    node1 = _host("nginx-lb-emqx-1")
    devices = []
    refused_before = {port: len(_refused_connects(port)) for port in (1883, 8083)}
    node1.check_output("systemctl stop emqx")
    try:
        # No waiting for a health check: NGINX finds out with the first connection it sends to node 1,
        # hands that device to node 2 (proxy_next_upstream) and sends node 1 nothing for fail_timeout.
        devices = [_device("mqtts") for _ in range(3)] + [_device("wss") for _ in range(2)]
        assert set(API.nodes_of(devices, "nginx-lb-emqx-2")) == {NODE2}
        assert len(_refused_connects(1883)) > refused_before[1883], "no connection went to the stopped node first"
        assert len(_refused_connects(8083)) > refused_before[8083], "no WebSocket went to the stopped node first"
        assert all(not d.disconnects for d in devices)
    finally:
        node1.check_output("systemctl start emqx")
    back = time.time()
    API.wait_status("nginx-lb-emqx-1", timeout=60)
    # Node 2 holds every device, so least_conn sends a new one to node 1 as soon as NGINX tries it
    # again (fail_timeout after its last refused connect). The MQTT and WebSocket upstreams keep their
    # own failure state (node 1's last refused WebSocket connect may come later than its last refused
    # MQTT one), so each transport is watched on its own. Bounded: at most 2 x fail_timeout.
    fresh = []
    try:
        for transport in ("mqtts", "wss"):
            landed = None
            while time.time() < back + 2 * FAIL_TIMEOUT + 10:
                fresh.append(_device(transport))
                if API.client_info(fresh[-1].clientid, "nginx-lb-emqx-2")["node"] == NODE1:
                    landed = time.time() - back
                    break
                time.sleep(2)
            assert landed is not None, "node 1 got no new %s connection within %ss of its return" % (
                transport, 2 * FAIL_TIMEOUT + 10)
            print("node 1 used again for %s %.1fs after it started" % (transport, landed))
    finally:
        for d in devices + fresh:
            d.close()


# ---- preflight refusals and check mode (ansible-playbook runs, side by side) -----------------

def _playbook(*args, playbook="converge.yml"):
    # The first load balancer only: these tests change its settings (the second shares its floating address, test_a_vip.py).
    return lbtest.playbook(SCENARIO / playbook, LB, *args)


PREFLIGHT_CASES = {
    # case: (extra vars, words the refusal must contain)
    "nodes_without_proxy_protocol": (
        {"emq_node_proxy_protocol": False},
        ["nginx_lb_proxy_protocol: true", "nginx-lb-emqx-1 (tcp listener: proxy_protocol = false)",
         "nginx-lb-emqx-2 (ws listener: proxy_protocol = false)", "emq_node_proxy_protocol: true"]),
    "proxy_protocol_off_but_nodes_expect_it": (
        {"nginx_lb_proxy_protocol": False},
        ["sends no PROXY protocol header", "nginx-lb-emqx-1 (tcp listener: proxy_protocol = true)"]),
    "key_of_another_certificate": (
        {"nginx_lb_tls_source": "files", "nginx_lb_tls_cert_file": str(EPHEMERAL / "lab-ca" / "nginx-lb-1.pem"),
         "nginx_lb_tls_key_file": str(EPHEMERAL / "lab-ca" / "ca.key")},
        ["does not belong to the certificate", "nginx_lb_tls_key_file"]),
    "expired_certificate": (
        {"nginx_lb_tls_source": "files"},  # files filled in by the fixture
        ["is not valid now", "renew it"]),
    "target_beyond_one_source_address": (
        {"nginx_lb_target_connections": 60000},
        ["Add source addresses", "nginx_lb_source_addresses", "30000 connections to each backend"]),
    "timeout_below_keepalive": (
        {"nginx_lb_proxy_timeout": 80},
        ["nginx_lb_proxy_timeout (80s) must be longer than 1.5 x nginx_lb_mqtt_keepalive"]),
    "ip_hash": (
        {"nginx_lb_balance": "ip_hash"},
        ["nginx_lb_balance must be one of", "ip_hash"]),
    "tls_1_1": (
        {"nginx_lb_tls_protocols": ["TLSv1.1", "TLSv1.2"]},
        ["nginx_lb_tls_protocols must list only", "TLS 1.0 and 1.1 are not offered"]),
    # One worker cannot hold 20000 devices under a container's open-file limit; "auto" would add workers.
    "one_worker_beyond_the_open_file_limit": (
        {"nginx_lb_worker_processes": "1", "nginx_lb_target_connections": 20000},
        ["for each of 1 process(es)", "init process may hand out at most", "set nginx_lb_worker_processes to auto"]),
    "worker_connections_too_few": (
        {"nginx_lb_worker_connections": 100},
        ["nginx_lb_worker_connections=100 does not fit", "Leave nginx_lb_worker_connections at 0"]),
    # The lab certificate (valid, with its key) names the LB's host names and addresses, not this name.
    "certificate_without_the_server_name": (
        {"nginx_lb_tls_source": "files", "nginx_lb_tls_cert_file": str(EPHEMERAL / "lab-ca" / "nginx-lb-1.pem"),
         "nginx_lb_tls_key_file": str(EPHEMERAL / "lab-ca" / "nginx-lb-1.key"), "nginx_lb_tls_server_names": ["mqtt.example.invalid"]},
        ["does not cover every name devices use", "mqtt.example.invalid: no DNS entry covers it", "Its subjectAltName entries:",
         "DNS:nginx-lb-1", "IP:%s" % LB_IP, "nginx_lb_tls_server_names", "nginx_lb_tls_check_server_names: false"]),
    # Certificates from the fixture (NAME_CASE_CERTS); the server names default to nginx_lb_private_address.
    "dns_san_spelling_the_address": (
        {"nginx_lb_tls_source": "files"},
        ["%s: an IP address, and the certificate has no IP:%s entry" % (LB_IP, LB_IP),
         "DNS:%s does not count for an address" % LB_IP, "nginx_lb_tls_check_server_names: false"]),
    "wildcard_covers_one_label_only": (
        {"nginx_lb_tls_source": "files", "nginx_lb_tls_server_names": ["mqtt.example.test", "a.b.example.test"]},
        ["a.b.example.test: no DNS entry covers it", "covers exactly one label in front of example.test, not a.b"]),
    # Who may read the status page: networks or addresses only.
    "status_allow_not_networks": (
        {"nginx_lb_status_allow": ["10.0.0.0/33", "all", "172.30.4.11/32"]},
        ["nginx_lb_status_allow lists who may read the status page", "these entries are neither: 10.0.0.0/33, all.",
         '"all" is not accepted']),
}

# Preflight runs that must pass (and change nothing), with certificates from the fixture.
PREFLIGHT_PASSES = {
    "ip_san_covers_the_address": {"nginx_lb_tls_source": "files", "nginx_lb_tls_server_names": [LB_IP]},
    "wildcard_covers_one_label": {"nginx_lb_tls_source": "files", "nginx_lb_tls_server_names": ["mqtt.example.test"]},
    "name_check_turned_off": {"nginx_lb_tls_source": "files", "nginx_lb_tls_check_server_names": False},
}

# subjectAltName entries of the certificate the fixture makes for a case (the CN is the LB's address
# every time: clients, and the preflight, never read it).
NAME_CASE_CERTS = {
    "dns_san_spelling_the_address": ["DNS:%s" % LB_IP, "DNS:%s" % LB],
    "wildcard_covers_one_label_only": ["DNS:*.example.test"],
    "ip_san_covers_the_address": ["IP:%s" % LB_IP],
    "wildcard_covers_one_label": ["DNS:*.example.test"],
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


# The live configuration and master before the playbooks start.
LIVE_BEFORE = {}


@pytest.fixture(scope="module", autouse=True)
def playbook_runs(tmp_path_factory):
    """Every preflight refusal (preflight only), one check-mode run and one converge with a setting
    NGINX refuses, started in the background with the first test (none of them may change anything)
    and collected by the tests that need them."""
    from concurrent.futures import ThreadPoolExecutor

    cert, key = lbtest.expired_certificate(tmp_path_factory.mktemp("expired"), LB)
    cases = {k: dict(v[0]) for k, v in PREFLIGHT_CASES.items()}
    cases["expired_certificate"].update(nginx_lb_tls_cert_file=str(cert), nginx_lb_tls_key_file=str(key))
    cases.update({k: dict(v) for k, v in PREFLIGHT_PASSES.items()})
    for case, sans in NAME_CASE_CERTS.items():
        cert, key = _certificate(tmp_path_factory.mktemp(case), sans)
        cases[case].update(nginx_lb_tls_cert_file=str(cert), nginx_lb_tls_key_file=str(key))
    LIVE_BEFORE.update(checksum=_host(LB).file(CONF).sha256sum, master=_master_and_workers()[0])
    pool = ThreadPoolExecutor(3)
    futures = {"check": pool.submit(_playbook, "--check", "--diff"),
               # Passes the preflight, but NGINX refuses it: the validation must keep it off the live path.
               "refused_by_nginx": pool.submit(_playbook, "-e", "nginx_lb_tls_ciphers=NOT-A-CIPHER")}
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
    assert re.search(r"nginx-lb-1\s*:\s*ok=\d+\s+changed=0\s+unreachable=0\s+failed=0", run.stdout), run.stdout[-3000:]
    assert "PRIVATE KEY" not in run.stdout


def test_a_configuration_nginx_refuses_never_reaches_the_live_path(playbook_runs):
    run = playbook_runs["refused_by_nginx"].result()
    out = run.stdout + run.stderr
    assert run.returncode != 0, run.stdout[-3000:]
    assert "failed to validate" in out and "NOT-A-CIPHER" in out, out[-3000:]
    assert _host(LB).file(CONF).sha256sum == LIVE_BEFORE["checksum"]
    assert "NOT-A-CIPHER" not in _conf()
    assert _master_and_workers()[0] == LIVE_BEFORE["master"]
    assert not re.search(r"(TASK|RUNNING HANDLER) \[iothub\.emq\.nginx_lb : Reload NGINX \(new workers", run.stdout)
    version, _ = lbtest.peer_names(LB_IP, MQTTS, CA, LB)
    assert version in ("TLSv1.2", "TLSv1.3")


# ---- a changed setting reloads without dropping anyone (runs last) ----------------------------

def _task_output(stdout, task):
    """What ansible-playbook printed for one task of the role (handler tasks show as RUNNING HANDLER)."""
    match = re.search(r"(?:TASK|RUNNING HANDLER) \[iothub\.emq\.nginx_lb : %s.*?(?=\n(?:TASK|RUNNING HANDLER|PLAY) \[|\Z)"
                      % re.escape(task),
                      stdout, re.S)
    assert match, "task %s did not run" % task
    return match.group(0)


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
    timeout = int(_directive("proxy_timeout").rstrip("s")) + 60
    cert, key, der = lbtest.server_certificate(tmp_path, CA.parent, LB, LB_IP)
    # The new certificate names the load balancer's address only: so do the names it is checked against.
    rotated = {"nginx_lb_tls_source": "files", "nginx_lb_tls_cert_file": str(cert), "nginx_lb_tls_key_file": str(key),
               "nginx_lb_tls_server_names": [LB_IP]}
    assert lbtest.served_certificate(LB_IP, MQTTS, CA, LB) != der
    try:
        run = _playbook("-e", "nginx_lb_proxy_timeout=%d" % timeout, "-e", json.dumps(rotated))
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
        assert "changed: [%s]" % LB in _task_output(run.stdout, "Reload NGINX (new workers"), run.stdout[-4000:]
        assert "skipping: [%s]" % LB in _task_output(run.stdout, "Restart NGINX"), run.stdout[-4000:]
        assert _directive("proxy_timeout") == "%ds" % timeout
        # Same master (a reload, not a restart), new workers, and the old one that holds the device
        # still running, shutting down only once its connections close.
        master_after, workers_after = _master_and_workers()
        assert master_after == master_before
        assert set(workers_after) - set(workers_before), "no new worker after the reload"
        kept = set(workers_before) & set(workers_after)
        assert kept, "the old workers are gone: established connections were cut"
        assert all("shutting down" in workers_after[pid] for pid in kept), workers_after
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


# ---- systemd brings a killed NGINX back (runs last) ----------------------------------------------

RESTART_DROPIN = "/etc/systemd/system/nginx.service.d/10-iothub-emq-restart.conf"


def _unit(prop):
    """One property of nginx.service as systemd has it loaded."""
    return _host(LB).check_output("systemctl show -p %s --value nginx.service" % prop).strip()


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
    assert re.search(r"^Restart=on-failure$", dropin.content_string, re.M)
    # daemon-reload ran: systemd has the drop-in's values, not Debian's (no Restart= at all).
    assert _unit("Restart") == "on-failure"
    assert _unit("RestartUSec") == "2s"
    assert _unit("StartLimitBurst") == "5"
    assert _unit("StartLimitIntervalUSec") == "1min"


def test_a_killed_master_is_started_again_by_systemd(playbook_runs, request):
    for run in playbook_runs.values():  # no playbook may see NGINX down
        run.result()
    restart_sec = int(re.search(r"^RestartSec=(\d+)s$", _host(LB).file(RESTART_DROPIN).content_string, re.M).group(1))
    before, restarts = int(_unit("MainPID")), int(_unit("NRestarts"))
    assert before > 0 and _handshake_ok()
    _host(LB).check_output("kill -9 %d" % before)
    killed = time.time()
    # The orphaned workers may still answer for a moment, so a handshake alone proves nothing: wait for
    # a new master too. systemd kills the leftover workers, waits RestartSec and starts NGINX again.
    deadline = killed + restart_sec + 20
    pid = before
    while time.time() < deadline:
        pid = int(_unit("MainPID"))
        if pid not in (0, before) and _unit("ActiveState") == "active" and _handshake_ok():
            break
        time.sleep(0.5)
    else:
        raise AssertionError("NGINX did not come back within %ds of kill -9 %d: MainPID %d, %s/%s, %d restarts"
                             % (restart_sec + 20, before, pid, _unit("ActiveState"), _unit("SubState"), int(_unit("NRestarts"))))
    request.config.pluginmanager.getplugin("terminalreporter").write_line(
        "nginx master %d killed, master %d serving TLS again after %.1fs" % (before, pid, time.time() - killed))
    assert int(_unit("NRestarts")) == restarts + 1, "not restarted by systemd's Restart= logic"
    assert _host(LB).check_output("cat /run/nginx.pid").strip() == str(pid)
    sub, pub = _device("mqtts"), _device("wss")
    try:
        assert lbtest.publish_and_receive(sub, pub), sub.messages
    finally:
        sub.close()
        pub.close()
