"""HAProxy in front of two EMQX nodes, as devices and operators see it.

Every check runs from the controller, which reaches the containers on the scenario's own bridge
(172.30.3.0/24, the controller is 172.30.3.1) and talks only to them and to loopback.
"""

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
}


@pytest.fixture(scope="module", autouse=True)
def playbook_runs(tmp_path_factory):
    """Every preflight refusal (preflight tags only) and one check-mode run, started in the background
    with the first test (they change nothing) and collected by the tests that need them."""
    from concurrent.futures import ThreadPoolExecutor

    cert, key = lbtest.expired_certificate(tmp_path_factory.mktemp("expired"), LB)
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
        assert re.search(r"RUNNING HANDLER \[iothub\.emq\.haproxy_lb : Reload HAProxy \(new processes", run.stdout)
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
