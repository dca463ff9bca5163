"""The whole deployment, as an operator meets it: site.yml converged the five containers (and changed
nothing the second time, Molecule's idempotence step); these tests then act as devices from the
controller (172.30.5.1 on the scenario's bridge) and run the day-2 playbooks against the same inventory.

The tests run in file order and leave the deployment whole after each one: later tests use what earlier
ones restarted, killed or removed and brought back.
"""

import json
import os
import pathlib
import re
import shlex
import subprocess
import sys
import time

import pytest
import testinfra

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "_shared"))
import lbtest  # noqa: E402  (molecule/_shared: helpers the load-balancer scenarios share)

NODES = {"site-emqx-1": "172.30.5.11", "site-emqx-2": "172.30.5.12", "site-emqx-3": "172.30.5.13"}
NODE_NAMES = {h: "emqx@" + a for h, a in NODES.items()}
LBS = {"site-haproxy": "172.30.5.20", "site-nginx": "172.30.5.21"}
CLIENT_IP = "172.30.5.1"  # the controller, as EMQX should see it through either LB
API = lbtest.EmqxApi(NODES, "molecule", "molecule-site-api-secret-7d2b")
EPHEMERAL = pathlib.Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
# The collection as Galaxy installs it (molecule/site/prepare.yml); every playbook here runs from it.
INSTALLED = EPHEMERAL / "galaxy" / "ansible_collections" / "iothub" / "emq"
# The lab CA, where the roles put it by default: beside the inventory (Molecule's), not in the collection.
CA = pathlib.Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent / ".lab-ca" / "ca.pem"
MQTTS = 8883
WSS = 8084


def _host(name):
    # docker:// directly: Molecule's ansible backend would write every check into ANSIBLE_LOG_PATH.
    return testinfra.get_host("docker://" + name)


def _cluster(node="site-emqx-1"):
    return json.loads(_host(node).check_output("emqx ctl cluster status --json"))


def _wait_running(expected, timeout=90, node="site-emqx-1"):
    """Wait until node sees exactly the expected running nodes and none stopped; the last status."""
    deadline = time.time() + timeout
    status = {}
    while time.time() < deadline:
        try:
            status = _cluster(node)
        except AssertionError:
            status = {}
        if sorted(status.get("running_nodes", [])) == sorted(expected) and not status.get("stopped_nodes"):
            return status
        time.sleep(1)
    raise AssertionError("cluster on %s: %s, expected running %s" % (node, status, sorted(expected)))


def _device(lb, transport="mqtts"):
    return lbtest.Device(LBS[lb], MQTTS if transport == "mqtts" else WSS, CA, transport=transport)


def _playbook(name, *args, timeout=600):
    """Run the installed collection's playbook iothub.emq.<name> on the scenario's inventory; it must pass."""
    result = lbtest.playbook("iothub.emq." + name, "all", *args, timeout=timeout)
    assert result.returncode == 0, "%s failed:\n%s\n%s" % (name, result.stdout[-6000:], result.stderr[-2000:])
    return result


def _invocation(node):
    """systemd's id of the current run of emqx.service: it changes on every (re)start."""
    return _host(node).check_output("systemctl show -P InvocationID emqx.service")


def test_the_playbooks_come_from_the_installed_collection():
    """Galaxy path: iothub.emq resolves to the tarball's install only, and it ships no development files."""
    listed = subprocess.run(["ansible-galaxy", "collection", "list", "iothub.emq", "--format", "json"],
                            capture_output=True, text=True, check=True)
    paths = {path for path, found in json.loads(listed.stdout).items() if "iothub.emq" in found}
    assert paths == {str(INSTALLED.parents[1])}, "iothub.emq resolves from %s, not only the install" % paths
    shipped = {f["name"] for f in json.loads((INSTALLED / "FILES.json").read_text())["files"]}
    for unwanted in ("molecule", "tests", "scripts", "Makefile", "changelogs/fragments",
                     "inventories/lab", "requirements-dev.txt", "bench"):
        assert not any(n == unwanted or n.startswith(unwanted + "/") for n in shipped), "the tarball ships " + unwanted
    for wanted in ("requirements.txt", "meta/execution-environment.yml", "CHANGELOG.rst", "playbooks/site.yml",
                   "inventories/private/hosts.yml"):
        assert wanted in shipped, "the tarball lacks " + wanted


def test_the_copied_inventory_finds_its_certificates_beside_itself():
    """The README's Galaxy steps copy inventories/private out: its paths follow the copy, not the collection."""
    copy = EPHEMERAL / "my-inventory"
    result = subprocess.run(["ansible", "-i", str(copy), "lb-1", "-m", "ansible.builtin.debug",
                             "-a", "var=haproxy_lb_tls_cert_file"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    # The scenario's result format is YAML: compare without its line folding.
    assert "%s/tls/mqtt.example.com.crt" % copy in "".join(result.stdout.split()), result.stdout


def test_three_nodes_run_in_one_cluster():
    for node in NODES:
        status = _cluster(node)
        assert sorted(status["running_nodes"]) == sorted(NODE_NAMES.values()), (node, status)
        assert status["stopped_nodes"] == [], (node, status)


@pytest.mark.parametrize("sub_lb, pub_lb, transport", [
    ("site-nginx", "site-haproxy", "mqtts"),
    ("site-haproxy", "site-nginx", "mqtts"),
    ("site-haproxy", "site-nginx", "wss"),
])
def test_a_message_crosses_from_one_load_balancer_to_the_other(sub_lb, pub_lb, transport):
    sub, pub = _device(sub_lb, transport), _device(pub_lb, transport)
    try:
        assert lbtest.publish_and_receive(sub, pub), "published through %s, not received through %s" % (pub_lb, sub_lb)
    finally:
        sub.close()
        pub.close()


@pytest.mark.parametrize("lb", sorted(LBS))
def test_an_anonymous_device_is_refused_through_each_load_balancer(lb):
    # MQTT 3.1.1 return code 4, bad user name or password: EMQX has an authenticator by default.
    assert lbtest.connack(LBS[lb], MQTTS, CA, credentials=None) == "CONNACK 20020004"
    assert lbtest.connack(LBS[lb], MQTTS, CA, credentials=(lbtest.SENSOR[0], "wrong")) == "CONNACK 20020004"


@pytest.mark.parametrize("lb", sorted(LBS))
def test_a_device_logs_in_and_keeps_to_its_own_topics_through_each_load_balancer(lb):
    backend = _device(lb)
    sensor = lbtest.Device(LBS[lb], MQTTS, CA, clientid="sensor-1", credentials=lbtest.SENSOR)
    try:
        assert lbtest.publish_and_receive(backend, sensor, topic="devices/sensor-1/telemetry")
        assert not lbtest.publish_and_receive(backend, sensor, topic="devices/sensor-2/telemetry"), \
            "sensor-1 published into sensor-2's topics"
    finally:
        sensor.close()
        backend.close()


@pytest.mark.parametrize("lb", sorted(LBS))
def test_emqx_sees_the_device_address_through_each_load_balancer(lb):
    device = _device(lb)
    try:
        info = API.client_info(device.clientid, "site-emqx-1")
        assert info["ip_address"] == CLIENT_IP, info
        assert info["ip_address"] not in LBS.values()
    finally:
        device.close()


def test_the_summary_commands_work_as_pasted():
    """make lab's promise: the mosquitto pair the summary prints logs in and carries a message."""
    result = _playbook("site", "--tags", "summary")
    commands = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith(("mosquitto_sub ", "mosquitto_pub "))]
    assert [c.split()[0] for c in commands] == ["mosquitto_sub", "mosquitto_pub"], result.stdout[-3000:]
    sub = subprocess.Popen(shlex.split(commands[0]) + ["-C", "1", "-W", "20"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2)  # subscribed, and the route reached the other nodes
        pub = subprocess.run(shlex.split(commands[1]), capture_output=True, text=True, timeout=20, check=False)
        assert pub.returncode == 0, pub.stderr
        out, err = sub.communicate(timeout=25)
    finally:
        sub.kill()
    assert "devices/sensor-1/hello hi from the front door" in out, (out, err)


def test_verify_playbook_passes_and_warns_of_a_certificate_that_expires_soon():
    # The lab certificates run for years: a warning threshold beyond that makes verify.yml warn for each
    # LB's TLS endpoints (the check itself still passes).
    result = _playbook("verify", "-e", "verify_cert_warn_days=100000")
    assert "failed=0" in result.stdout
    said = " ".join((result.stdout + result.stderr).split())
    for lb, address in LBS.items():
        assert re.search(r"%s mqtts://%s:8883: the certificate expires in \d+ days" % (re.escape(lb.split("-")[1] + "_lb"), re.escape(address)),
                         said), said[-4000:]


def _runs(node):
    """systemd's record of the current run of emqx.service: its id, and when the unit last went inactive
    (the stop of a restart) and active (microseconds of CLOCK_MONOTONIC, which the containers share)."""
    shown = _host(node).check_output(
        "systemctl show -p InvocationID -p InactiveEnterTimestampMonotonic -p ActiveEnterTimestampMonotonic emqx.service")
    values = dict(line.split("=", 1) for line in shown.splitlines())
    return values["InvocationID"], int(values["InactiveEnterTimestampMonotonic"]), int(values["ActiveEnterTimestampMonotonic"])


def _starts_since(node, since):
    """How many times systemd started emqx.service on node since the epoch second since."""
    log = _host(node).check_output("journalctl -u emqx.service --since @%d -o cat --no-pager" % since)
    return len(re.findall(r"^Started ", log, re.M))


def _assert_one_at_a_time(before, since):
    """Every node restarted exactly once since `since`, and never two at once: each node stopped only
    after the one before it was active again."""
    after = {node: _runs(node) for node in NODES}
    assert all(before[n][0] != after[n][0] for n in NODES), "not every node was restarted: %s -> %s" % (before, after)
    starts = {node: _starts_since(node, since) for node in NODES}
    assert all(count == 1 for count in starts.values()), "each node must start exactly once: %s" % starts
    order = sorted(NODES, key=lambda n: after[n][1])
    for earlier, later in zip(order, order[1:]):
        assert after[later][1] > after[earlier][2], (
            "%s stopped before %s was back: %s" % (later, earlier, {n: after[n][1:] for n in order}))
    return order


def _probes(request, what, probes):
    # Written past pytest's capture, so the figures are in the log of a passing run too.
    for lb, probe in probes.items():
        _report(request, "%s through %s, a new device every 0.2 s: %d connects, %d failed: %s"
                % (what, lb, len(probe.results), len(probe.failures()), probe.failures()))
    for lb, probe in probes.items():
        assert len(probe.results) >= 50, "the probe through %s hardly ran: %s" % (lb, probe.results)
        assert probe.failures() == [], "failed connects through %s: %s" % (lb, probe.failures())


def _assert_every_node_in_service():
    for backend in ("emqx_mqtt", "emqx_ws"):
        states = lbtest.haproxy_servers_state(_host("site-haproxy"), backend)
        assert all(states[n] == (2, 0) for n in NODES), "a node was left drained or down in %s: %s" % (backend, states)
    nginx_conf = _host("site-nginx").file("/etc/nginx/nginx.conf").content_string
    assert " down;" not in nginx_conf, "a node was left down in NGINX's upstreams"


RETAINED = "molecule/retained"


def _retained_seen(lb, wait=1.5):
    """How many retained messages a fresh subscriber to RETAINED/# gets through lb."""
    device = _device(lb)
    try:
        device.subscribe(RETAINED + "/#")
        time.sleep(wait)
        return len({topic for topic, _ in device.messages})
    finally:
        device.close()


FIGURES = pathlib.Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", ".")) / "tests" / "output" / "site-figures.txt"


def _report(request, line):
    """A measured figure: into tests/output/site-figures.txt (make test prints it after the scenario) and
    past pytest's capture."""
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    with FIGURES.open("a", encoding="utf-8") as fh:
        fh.write("%s %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%S"), line))
    request.config.pluginmanager.getplugin("terminalreporter").write_line(line)


def test_fifty_retained_messages_are_seen_through_both_load_balancers():
    """Kept across the upgrade and the rolling restart below (EMQX keeps them in a table every node holds)."""
    device = _device("site-haproxy")
    try:
        for n in range(50):
            device.publish("%s/%02d" % (RETAINED, n), b"kept %d" % n, retain=True)
    finally:
        device.close()
    assert {lb: _retained_seen(lb) for lb in LBS} == {lb: 50 for lb in LBS}


def test_upgrade_through_site_moves_one_node_at_a_time_without_a_failed_connect(request):
    """issue 15: emq_node_version 5.8.8 -> 5.8.9 in group_vars (here: SITE_EMQX_VERSION, which the scenario's
    group_vars read), then site.yml: each node out of both LBs, upgraded, back, one after the other."""
    for node in NODES:
        assert " 5.8.8 is started" in _host(node).check_output("emqx ctl status"), "converge must have installed 5.8.8"
    before = {node: _runs(node) for node in NODES}
    since = int(time.time()) - 1
    os.environ["SITE_EMQX_VERSION"] = "5.8.9"  # from here on, every run of the tests says 5.8.9
    probes = {lb: lbtest.Probe(LBS[lb], MQTTS, CA, interval=0.2, limit=6000) for lb in LBS}
    traffic = lbtest.SessionTraffic(LBS["site-nginx"], LBS["site-haproxy"], MQTTS, CA)
    for probe in probes.values():
        probe.__enter__()
    try:
        with traffic:
            _playbook("site")
            time.sleep(2)  # a few probes after the last node is back in service
    finally:
        for probe in probes.values():
            probe.stop()
    _probes(request, "upgrade through site.yml", probes)
    _report(request, "upgrade through site.yml, QoS 1 to a persistent session (subscriber through NGINX): %s"
            % traffic.report())
    assert traffic.report()["received"] > 0
    order = _assert_one_at_a_time(before, since)
    for node in NODES:
        assert _host(node).check_output("emqx ctl status") == "Node '%s' 5.8.9 is started" % NODE_NAMES[node]
        assert _host(node).package("emqx").version.startswith("5.8.9")
    _wait_running(NODE_NAMES.values(), timeout=30)
    _assert_every_node_in_service()
    _report(request, "upgrade order: %s" % order)
    assert {lb: _retained_seen(lb) for lb in LBS} == {lb: 50 for lb in LBS}, "retained messages lost in the upgrade"


def test_rolling_restart_keeps_the_front_door_open(request):
    before = {node: _runs(node) for node in NODES}
    since = int(time.time()) - 1
    probes = {lb: lbtest.Probe(LBS[lb], MQTTS, CA, interval=0.2, limit=6000) for lb in LBS}
    traffic = lbtest.SessionTraffic(LBS["site-nginx"], LBS["site-haproxy"], MQTTS, CA)
    for probe in probes.values():
        probe.__enter__()
    try:
        with traffic:
            _playbook("rolling_restart")
            time.sleep(2)  # a few probes after the last node is back in service
    finally:
        for probe in probes.values():
            probe.stop()
    _probes(request, "rolling_restart.yml", probes)
    _report(request, "rolling_restart.yml, QoS 1 to a persistent session (subscriber through NGINX): %s"
            % traffic.report())
    assert traffic.report()["received"] > 0
    _assert_one_at_a_time(before, since)
    _wait_running(NODE_NAMES.values(), timeout=30)
    _assert_every_node_in_service()
    assert {lb: _retained_seen(lb) for lb in LBS} == {lb: 50 for lb in LBS}, "retained messages lost in the rolling restart"


def test_rolling_restart_refuses_while_a_node_is_down():
    _host("site-emqx-3").check_output("systemctl stop emqx.service")
    try:
        before = {node: _invocation(node) for node in ("site-emqx-1", "site-emqx-2")}
        result = lbtest.playbook("iothub.emq.rolling_restart", "all", timeout=300)
        assert result.returncode != 0
        said = result.stdout + result.stderr
        assert "The cluster is not whole" in said and "stopped: emqx@172.30.5.13" in said, said[-3000:]
        assert {node: _invocation(node) for node in before} == before, "a node was restarted anyway"
    finally:
        _host("site-emqx-3").check_output("systemctl start emqx.service")
    _wait_running(NODE_NAMES.values())


def test_a_killed_node_gets_no_new_clients_and_converging_brings_it_back():
    killed = "site-emqx-3"
    _host(killed).check_output("systemctl kill --signal=SIGKILL emqx.service")
    deadline = time.time() + 30
    while time.time() < deadline:
        states = lbtest.haproxy_servers_state(_host("site-haproxy"), "emqx_mqtt")
        if states[killed][0] == 0:
            break
        time.sleep(0.5)
    assert states[killed][0] == 0, "HAProxy still sends to the killed node: %s" % states

    devices = [_device(lb) for lb in sorted(LBS) for _ in range(6)]
    try:
        landed = API.nodes_of(devices, "site-emqx-1")
        assert NODE_NAMES[killed] not in landed, landed
        assert len(set(landed)) == 2, "new clients did not spread over the two live nodes: %s" % landed
    finally:
        for device in devices:
            device.close()

    result = _playbook("site")
    assert "failed=0" in result.stdout
    _wait_running(NODE_NAMES.values())
    assert _host(killed).service("emqx").is_running


def test_remove_node_takes_it_out_and_site_adds_it_back():
    removed = "site-emqx-3"
    refused = lbtest.playbook("iothub.emq.remove_node", "all", "-e", "remove_hosts=site-emqx-9")
    assert refused.returncode != 0 and "remove_hosts must name one or more hosts of the group emq_nodes" in (
        refused.stdout + refused.stderr), refused.stdout[-3000:]
    assert set(re.findall(r"changed=(\d+)", refused.stdout)) <= {"0"}, "the refused run changed something"
    _playbook("remove_node", "-e", "remove_hosts=" + removed)
    remaining = [NODE_NAMES[n] for n in NODES if n != removed]
    for node in ("site-emqx-1", "site-emqx-2"):
        _wait_running(remaining, node=node)
    assert not _host(removed).service("emqx").is_running
    assert not _host(removed).service("emqx").is_enabled
    assert NODES[removed] not in _host("site-haproxy").file("/etc/haproxy/haproxy.cfg").content_string
    assert NODES[removed] not in _host("site-nginx").file("/etc/nginx/nginx.conf").content_string
    sub, pub = _device("site-nginx"), _device("site-haproxy")
    try:
        assert lbtest.publish_and_receive(sub, pub), "the two-node deployment does not carry messages"
    finally:
        sub.close()
        pub.close()

    _playbook("site")
    _wait_running(NODE_NAMES.values())
    assert NODES[removed] in _host("site-haproxy").file("/etc/haproxy/haproxy.cfg").content_string
    assert NODES[removed] in _host("site-nginx").file("/etc/nginx/nginx.conf").content_string
    devices = [_device("site-haproxy") for _ in range(9)]
    try:
        assert NODE_NAMES[removed] in API.nodes_of(devices, "site-emqx-1"), "HAProxy sends no client to the re-added node"
    finally:
        for device in devices:
            device.close()


def test_the_deploy_wrote_nothing_into_the_installed_collection():
    """Last: after every deploy and day-2 playbook above, the installed tree holds exactly what the tarball had."""
    shipped = {f["name"] for f in json.loads((INSTALLED / "FILES.json").read_text())["files"] if f["ftype"] == "file"}
    # Python's bytecode cache (__pycache__, when PYTHONDONTWRITEBYTECODE is unset) is the interpreter's, not the deploy's.
    on_disk = {str(p.relative_to(INSTALLED)) for p in INSTALLED.rglob("*")
               if (p.is_file() or p.is_symlink()) and "__pycache__" not in p.parts}
    written = sorted(on_disk - shipped - {"MANIFEST.json", "FILES.json"})
    assert written == [], "files written under the installed collection %s: %s" % (INSTALLED, written)
    assert CA.is_file(), "the lab CA is not beside the inventory at %s" % CA
