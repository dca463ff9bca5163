# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""site.yml (and each day-2 playbook) checks every role's inputs on every host before the first change anywhere.

The real ``playbooks/site.yml`` runs against an inventory of local hosts (two EMQX nodes, one HAProxy
and one NGINX load balancer) whose Python is the guard of test_bad_inputs.py: it answers fact
gathering with the facts the test chose, lets read-only modules (slurp, stat) through and refuses any
other. A bad input for one role must stop the run in the preflight plays, so:

* every task that ran belongs to playbooks/preflight.yml's plays (a role's argument validation or a
  task of its preflight), none of a play that changes a host;
* every host of the inventory is in the PLAY RECAP with changed=0, and no module but the read-only
  ones reached a host;
* the failing task is the check the case is about, on the hosts of the role it belongs to.

A control runs the same inventory with valid inputs through playbooks/preflight.yml and passes.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from filelock import FileLock
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from test_bad_inputs import HOSTS, NODE_CHECK, READ_ONLY, REMOVE, SECRETS, ROOT, Run, base_vars, run_playbook

SITE = ROOT / "playbooks" / "site.yml"
PREFLIGHT = ROOT / "playbooks" / "preflight.yml"
LBS = {"haproxy_lb": ("hlb1", "10.0.1.1"), "nginx_lb": ("nlb1", "10.0.1.2")}
ALL_HOSTS = sorted(list(HOSTS) + [lb[0] for lb in LBS.values()])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def make_cert(directory: Path, stem: str, names: list[str]) -> tuple[Path, Path]:
    """A self-signed certificate for these names (IP addresses become IP SANs) and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for name in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(_pem_key(key))
    key_path.chmod(0o600)
    return cert_path, key_path


def lb_groups(tmp: Path, overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Valid inputs for one HAProxy and one NGINX load balancer, each with a certificate naming its address."""
    groups = {}
    for group, (name, address) in LBS.items():
        cert, key = make_cert(tmp / "certs", name, [address])
        group_vars = {
            "preflight_test_os": base_vars()["preflight_test_os"],
            f"{group}_tls_source": "files",
            f"{group}_tls_cert_file": str(cert),
            f"{group}_tls_key_file": str(key),
            f"{group}_sysctl_apply": False,
            f"{group}_target_connections": 1000,
        }
        if group == "haproxy_lb":  # every status page asks who is there: stats need a password
            group_vars.update(haproxy_lb_stats_user="ops", haproxy_lb_stats_password=STATS_PASSWORD)
        for key_name, value in (overrides or {}).get(group, {}).items():
            if value is REMOVE:
                group_vars.pop(key_name, None)
            else:
                group_vars[key_name] = value(tmp) if callable(value) else value
        groups[group] = {"hosts": {name: {"ansible_host": address}}, "vars": group_vars}
    return groups


def _inputs(tmp: Path, case: SiteCase | None) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    group_vars = base_vars()
    host_vars = {name: {"emq_node_cluster_address": address} for name, address in HOSTS.items()}
    for key, value in (case.node_vars if case else {}).items():
        group_vars[key] = value
    return group_vars, host_vars, lb_groups(tmp, case.lb_vars if case else None)


def _preflight_task_names() -> set[str]:
    """Every task a preflight play may run: playbooks/preflight.yml's includes and the roles' preflight tasks."""
    names = set()
    for play in yaml.safe_load(PREFLIGHT.read_text()):
        names.update(task["name"] for task in play["tasks"])
    return names


def _assert_nothing_changed(run: Run, all_hosts: list[str] = ALL_HOSTS) -> None:
    preflight_plays = [play["name"] for play in yaml.safe_load(PREFLIGHT.read_text())]
    plays = re.findall(r"^PLAY \[(.*)\] \**$", run.output, re.M)
    assert plays and set(plays) <= set(preflight_plays), "a play after the preflight started:" + run.explain()
    for task in run.tasks:
        role_task = " : " in task
        # Unprefixed: the plays' own tasks, fact gathering, and the include_role tasks inside a role's preflight.
        assert role_task or task in _preflight_task_names() or task == "Gathering Facts" \
            or any(_in_preflight(role, task) for role in ("emq_node", "emq_cluster", "haproxy_lb", "nginx_lb")), \
            f"unexpected task {task!r}" + run.explain()
        if role_task:
            role, name = task.split(" : ", 1)
            assert role.startswith("iothub.emq."), run.explain()
            # Role tasks here come from tasks_from: preflight only (and the _lb_common parts it includes).
            assert name.startswith("Validating arguments against arg spec '") or _in_preflight(role, name), \
                f"{task!r} is not a preflight task" + run.explain()
    # The hosts of every play that started are in the recap; a failed play ends the run, so later
    # groups never start (the NGINX hosts after a HAProxy failure).
    assert set(HOSTS) <= set(run.recap) <= set(all_hosts), "hosts missing from the PLAY RECAP" + run.explain()
    assert all(counts["changed"] == 0 for counts in run.recap.values()), run.explain()
    assert all(m in READ_ONLY for m in run.modules), "a module that could change a host ran:" + run.explain()
    for secret in SECRETS + (STATS_PASSWORD, VIP["lb_vip_password"], LONG_VRRP_PASSWORD):
        assert secret not in run.output, f"a secret ({secret[:3]}...) appears in the output" + run.explain()


def _task_names(tasks: list[dict[str, Any]] | None) -> set[str]:
    names: set[str] = set()
    for task in tasks or []:
        if "name" in task:
            names.add(task["name"])
        for key in ("block", "rescue", "always"):
            names |= _task_names(task.get(key))
    return names


def _in_preflight(role: str, name: str) -> bool:
    short = role.split(".")[-1]
    files = [ROOT / "roles" / short / "tasks" / "preflight.yml"]
    if short == "_lb_common":
        files = [ROOT / "roles" / "_lb_common" / "tasks" / f for f in ("backends.yml", "sizing.yml", "tls_preflight.yml")]
    return any(name in _task_names(yaml.safe_load(f.read_text())) for f in files)


@dataclass(frozen=True)
class SiteCase:
    id: str
    play: str  # the preflight play that must stop the run
    check: str  # the failing task (without the role prefix)
    expect: tuple[str, ...]
    node_vars: dict[str, Any] = field(default_factory=dict)
    lb_vars: dict[str, dict[str, Any]] = field(default_factory=dict)


def _other_key(tmp: Path) -> str:
    return str(make_cert(tmp / "other", "other", ["10.9.9.9"])[1])


def _cert_for(name: str) -> tuple[Any, Any]:
    """(cert, key) callables for a certificate naming only `name`, made once per test directory."""
    made: dict[Path, tuple[Path, Path]] = {}

    def pair(tmp: Path) -> tuple[Path, Path]:
        if tmp not in made:
            made[tmp] = make_cert(tmp / "named", "named", [name])
        return made[tmp]
    return (lambda tmp: str(pair(tmp)[0])), (lambda tmp: str(pair(tmp)[1]))


MQTT_EXAMPLE_CERT, MQTT_EXAMPLE_KEY = _cert_for("mqtt.example.com")
STATS_PASSWORD = "st#ts-" + uuid.uuid4().hex  # a secret: must never be printed
# Both kinds of load balancer are checked in one play (free strategy); the gate play after it fails every
# load balancer when one of them failed, so the run ends there.
LB_PLAY = "Check the load balancer inputs"
GATE_PLAY = "Stop unless every load balancer passed its checks"
GATE_TASK = "Check every load balancer passed its checks"
OTHER_IP_CERT, OTHER_IP_KEY = _cert_for("10.0.1.99")

# A valid floating address for the HAProxy load balancer (10.0.1.1 on a /24, see test_bad_inputs._facts).
VIP = {"lb_vip_address": "10.0.1.100", "lb_vip_virtual_router_id": 100, "lb_vip_password": "vrrp-" + uuid.uuid4().hex[:3]}
LONG_VRRP_PASSWORD = "vrrp-" + uuid.uuid4().hex[:7]

CASES = [
    # The row: a wrong LB key was refused only after every EMQX node had been reconfigured.
    SiteCase("haproxy-key-not-for-certificate", LB_PLAY, "Check the certificate, its key and its chain",
             ("haproxy_lb_tls_key_file",), lb_vars={"haproxy_lb": {"haproxy_lb_tls_key_file": _other_key}}),
    SiteCase("nginx-key-not-for-certificate", LB_PLAY, "Check the certificate, its key and its chain",
             ("nginx_lb_tls_key_file",), lb_vars={"nginx_lb": {"nginx_lb_tls_key_file": _other_key}}),
    SiteCase("nginx-certificate-missing", LB_PLAY, "Check the certificate files exist",
             ("nginx_lb_tls_cert_file", "Not a readable file"), lb_vars={"nginx_lb": {"nginx_lb_tls_cert_file": "/nonexistent/lb.pem"}}),
    SiteCase("haproxy-timeout-below-keepalive", LB_PLAY, "Check the timeouts outlast the MQTT keepalive",
             ("haproxy_lb_timeout_client", "1.5 x haproxy_lb_mqtt_keepalive"), lb_vars={"haproxy_lb": {"haproxy_lb_timeout_client": 60}}),
    SiteCase("haproxy-proxy-protocol-off-nodes-expect-it", LB_PLAY,
             "Check the EMQX listeners expect what the load balancer sends (PROXY protocol)",
             ("haproxy_lb_proxy_protocol: true",), lb_vars={"haproxy_lb": {"haproxy_lb_proxy_protocol": False}}),
    SiteCase("nginx-balance-unknown", LB_PLAY, "argspec",
             ("nginx_lb_balance", "ip_hash"), lb_vars={"nginx_lb": {"nginx_lb_balance": "ip_hash"}}),
    # The row: a certificate that does not name the LB's address was accepted silently.
    SiteCase("haproxy-certificate-without-the-lb-address", LB_PLAY,
             "Check the certificate names every address devices use",
             ("haproxy_lb_tls_server_names", "{address}", "DNS:mqtt.example.com", "haproxy_lb_tls_check_server_names: false"),
             lb_vars={"haproxy_lb": {"haproxy_lb_tls_cert_file": MQTT_EXAMPLE_CERT, "haproxy_lb_tls_key_file": MQTT_EXAMPLE_KEY}}),
    SiteCase("nginx-certificate-for-another-address", LB_PLAY,
             "Check the certificate names every address devices use", ("nginx_lb_tls_server_names", "{address}", "IP:10.0.1.99"),
             lb_vars={"nginx_lb": {"nginx_lb_tls_cert_file": OTHER_IP_CERT, "nginx_lb_tls_key_file": OTHER_IP_KEY}}),
    SiteCase("haproxy-server-name-not-a-name", LB_PLAY, "Check the names devices use to reach this host",
             ("haproxy_lb_tls_server_names",), lb_vars={"haproxy_lb": {"haproxy_lb_tls_server_names": ["mqtt example com"]}}),
    # The issue's row: the health check sent to the nodes' MQTT port, a PROXY protocol listener.
    SiteCase("haproxy-health-check-on-the-mqtt-listener", LB_PLAY,
             "Check the health checks go to a port that answers them, not to a PROXY protocol listener",
             ("haproxy_lb_backend_check_port=1883", "18083"), lb_vars={"haproxy_lb": {"haproxy_lb_backend_check_port": 1883}}),
    SiteCase("haproxy-health-check-on-the-ws-listener", LB_PLAY,
             "Check the health checks go to a port that answers them, not to a PROXY protocol listener",
             ("haproxy_lb_backend_check_port=8083",), lb_vars={"haproxy_lb": {"haproxy_lb_backend_check_port": 8083}}),
    # Values written as one word of haproxy.cfg / nginx.conf: '#' starts a comment, a newline ends the line.
    SiteCase("haproxy-stats-without-a-password", LB_PLAY, "Check the stats listener has a user and password",
             ("haproxy_lb_stats_password", "haproxy_lb_stats_enabled: false"),
             lb_vars={"haproxy_lb": {"haproxy_lb_stats_password": ""}}),
    SiteCase("nginx-status-path-trailing-newline", LB_PLAY, "Check the values written into nginx.conf",
             ("nginx_lb_status_path has a newline at the end",), lb_vars={"nginx_lb": {"nginx_lb_status_path": "/status\n"}}),
    SiteCase("nginx-hash-key-with-a-semicolon", LB_PLAY, "Check the values written into nginx.conf",
             ("nginx_lb_hash_key has ';'",), lb_vars={"nginx_lb": {"nginx_lb_balance": "hash", "nginx_lb_hash_key": "$remote_addr;"}}),
    # issue 18: a floating address that cannot work stops the run before keepalived is installed anywhere.
    SiteCase("vip-password-longer-than-vrrp-carries", LB_PLAY, "Check the VRRP password",
             ("lb_vip_password has 12 characters", "at most 8"), lb_vars={"haproxy_lb": dict(VIP, lb_vip_password=LONG_VRRP_PASSWORD)}),
    SiteCase("vip-outside-the-load-balancers-subnet", LB_PLAY, "Check the floating address fits this host's network",
             ("lb_vip_address 10.0.2.100 is outside 10.0.1.0/24",), lb_vars={"haproxy_lb": dict(VIP, lb_vip_address="10.0.2.100")}),
    SiteCase("vip-is-a-nodes-address", LB_PLAY, "Check the floating address, its router ID and the priorities agree across its load balancers",
             ("lb_vip_address 10.0.0.1 is the address of n1",), lb_vars={"nginx_lb": dict(VIP, lb_vip_address="10.0.0.1")}),
    SiteCase("vip-without-router-id", LB_PLAY, "Check the floating address, its router ID and the priorities agree across its load balancers",
             ("lb_vip_virtual_router_id is not set for 10.0.1.100",), lb_vars={"haproxy_lb": dict(VIP, lb_vip_virtual_router_id=REMOVE)}),
    # A bad EMQX input stops in the first play: no load balancer is touched either.
    SiteCase("node-cookie-trailing-newline", "Check the EMQX node and cluster inputs", NODE_CHECK,
             ("emq_node_cookie", "trailing newline"), node_vars={"emq_node_cookie": base_vars()["emq_node_cookie"] + "\n"}),
    # issue 13: client certificates checked by the LBs, but NGINX cannot forward the CN and HAProxy has no CA.
    SiteCase("client-certificates-behind-nginx-and-an-haproxy-without-ca", "Check the EMQX node and cluster inputs",
             NODE_CHECK,
             ("emq_node_authentication is client_certificate", "cannot forward a client certificate's CN", "haproxy_lb_tls_client_ca_file"),
             node_vars={"emq_node_authentication": "client_certificate"}),
    SiteCase("cluster-discovery-unknown", "Check the EMQX node and cluster inputs", "argspec",
             ("emq_cluster_discovery", "gossip"), node_vars={"emq_cluster_discovery": "gossip"}),
]


# A case that fails one load balancer's own checks does not need a run of its own: they share one run, each
# on a load balancer of its own (site.yml checks the load balancers with the free strategy, every host on
# its own), beside one valid load balancer of each kind that the gate play then stops. The floating address
# cases stay apart: their checks compare the load balancers that share an address. One run of about 55 s
# instead of 14 of about 20 s each.
SHARED = [c for c in CASES if c.play == LB_PLAY and not c.id.startswith("vip-")]
ALONE = [c for c in CASES if c not in SHARED]
SHARED_HOSTS = {c.id: (("hlb-" if "haproxy_lb" in c.lb_vars else "nlb-") + c.id.split("-", 1)[1], "10.0.1.%d" % (10 + i))
                for i, c in enumerate(SHARED)}


def _shared_run(tmp: Path) -> tuple[Run, list[str]]:
    """site.yml once, with every case of SHARED on a load balancer of its own. (run, every host of the inventory)."""
    tmp.mkdir(parents=True, exist_ok=True)
    group_vars, host_vars, groups = _inputs(tmp, None)
    for case in SHARED:
        (group, overrides), = case.lb_vars.items()
        name, address = SHARED_HOSTS[case.id]
        cert, key = make_cert(tmp / "certs", name, [address])
        own = {"ansible_host": address, f"{group}_tls_cert_file": str(cert), f"{group}_tls_key_file": str(key)}
        for key_name, value in overrides.items():
            assert value is not REMOVE, "a shared case removes no group variable: " + case.id
            own[key_name] = value(tmp / case.id) if callable(value) else value
        groups[group]["hosts"][name] = own
    run = run_playbook(tmp, SITE, group_vars, host_vars, groups=groups)
    return run, sorted(list(HOSTS) + [h for g in groups.values() for h in g["hosts"]])


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> tuple[Run, list[str]]:
    """The shared run, made once per test session: under pytest-xdist the first worker that needs it runs
    it and the other waits for it and reads it (the directory above the workers' is the session's)."""
    root = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        root = root.parent
    cache = root / "site-preflight-shared-run.json"
    with FileLock(str(cache) + ".lock"):
        if not cache.is_file():
            run, hosts = _shared_run(root / "site-preflight-shared-run")
            cache.write_text(json.dumps({"run": dataclasses.asdict(run), "hosts": hosts}))
        made = json.loads(cache.read_text())
    return Run(**made["run"]), made["hosts"]


def test_the_shared_run_stops_at_the_gate(shared_run: tuple[Run, list[str]]) -> None:
    """The valid load balancers pass their own checks and the gate stops them; no host changed."""
    run, all_hosts = shared_run
    assert run.rc == 2, "the run must fail on a host (rc 2), not on the harness" + run.explain()
    _assert_nothing_changed(run, all_hosts)
    plays = re.findall(r"^PLAY \[(.*)\] \**$", run.output, re.M)
    assert plays[-1] == GATE_PLAY, "the run did not stop at the gate" + run.explain()
    valid = {lb[0] for lb in LBS.values()}
    assert not valid & {failure[0] for failure in run.failed if failure[1] != GATE_TASK}, run.explain()
    # The gate runs once (on the first valid load balancer) and ends the playbook for every host.
    gated = {failure[0] for failure in run.failed if failure[1] == GATE_TASK}
    assert gated and gated <= valid, "the gate did not stop the valid ones" + run.explain()
    named = " ".join(m for host in gated for m in run.host_messages[host])
    assert all(SHARED_HOSTS[c.id][0] in named for c in SHARED), "the gate does not name every host that failed" + run.explain()


@pytest.mark.parametrize("case", SHARED, ids=[c.id for c in SHARED])
def test_a_load_balancer_with_a_bad_input_stops_in_its_checks(shared_run: tuple[Run, list[str]], case: SiteCase) -> None:
    run = shared_run[0]
    host, address = SHARED_HOSTS[case.id]
    tasks = {failure[1] for failure in run.failed if failure[0] == host}
    assert tasks, f"{host} did not fail" + run.explain()
    if case.check == "argspec":
        assert all("Validating arguments against arg spec 'preflight'" in t for t in tasks), run.explain()
    else:
        assert all(t.endswith(" : " + case.check) for t in tasks), "not the failure expected" + run.explain()
    message = " ".join(run.host_messages.get(host, []))
    for text in case.expect:
        assert text.format(address=address) in message, f"the message does not contain {text!r}: {message}"
    print(f"{case.id}: {message}")


@pytest.mark.parametrize("case", ALONE, ids=[c.id for c in ALONE])
def test_site_stops_before_any_host_changes(tmp_path: Path, case: SiteCase) -> None:
    group_vars, host_vars, groups = _inputs(tmp_path, case)
    run = run_playbook(tmp_path, SITE, group_vars, host_vars, groups=groups)

    assert run.rc == 2, "the run must fail on a host (rc 2), not on the harness" + run.explain()
    _assert_nothing_changed(run)
    plays = re.findall(r"^PLAY \[(.*)\] \**$", run.output, re.M)
    # When every load balancer failed its checks, the run ends in their play; otherwise the gate ends it.
    assert plays[-1] in ((LB_PLAY, GATE_PLAY) if case.play == LB_PLAY else (case.play,)), \
        "the run did not stop in the play expected" + run.explain()
    failed_hosts = {failure[0] for failure in run.failed if failure[1] != GATE_TASK}
    if plays[-1] == GATE_PLAY:
        # The other load balancer passed its own checks and is stopped by the gate.
        gated = {failure[0] for failure in run.failed if failure[1] == GATE_TASK}
        assert failed_hosts and gated == {lb[0] for lb in LBS.values()} - failed_hosts, "the gate did not stop the others" + run.explain()
    tasks = {failure[1] for failure in run.failed if failure[1] != GATE_TASK}
    if case.check == "argspec":
        assert all("Validating arguments against arg spec 'preflight'" in t for t in tasks), run.explain()
    else:
        assert all(t.endswith(" : " + case.check) for t in tasks), "not the failure expected" + run.explain()
    message = " ".join(run.messages)
    for text in case.expect:
        assert text in message, f"the message does not contain {text!r}: {message}"
    print(f"{case.id}: {run.messages[-1]}")


def test_valid_inputs_pass_the_site_preflight(tmp_path: Path) -> None:
    """Control: the base inputs pass every role's preflight on every host of every group."""
    group_vars, host_vars, groups = _inputs(tmp_path, None)
    run = run_playbook(tmp_path, PREFLIGHT, group_vars, host_vars, groups=groups)

    assert run.rc == 0, run.explain()
    assert not run.failed, run.explain()
    _assert_nothing_changed(run)
    plays = re.findall(r"^PLAY \[(.*)\] \**$", run.output, re.M)
    assert plays == [play["name"] for play in yaml.safe_load(PREFLIGHT.read_text())], run.explain()


def test_a_valid_floating_address_passes_the_site_preflight(tmp_path: Path) -> None:
    """Control for the vip cases: the same inventory with a valid floating address passes, lb_vip's checks included."""
    group_vars, host_vars, groups = _inputs(tmp_path, SiteCase("vip", LB_PLAY, "", (), lb_vars={"haproxy_lb": dict(VIP)}))
    run = run_playbook(tmp_path, PREFLIGHT, group_vars, host_vars, groups=groups)

    assert run.rc == 0, run.explain()
    assert any(task.startswith("iothub.emq.lb_vip : Check the VRRP password") for task in run.tasks), run.explain()
    _assert_nothing_changed(run)


def test_a_node_that_does_not_answer_stops_the_run_and_is_named(tmp_path: Path) -> None:
    """issue 15: a node down (UNREACHABLE) stops site.yml before anything changes, naming it and the two ways out."""
    group_vars, host_vars, groups = _inputs(tmp_path, None)
    down = sorted(HOSTS)[-1]
    # A port nothing listens on, on loopback: the connection is refused at once.
    host_vars[down] = dict(host_vars[down], ansible_connection="ssh", ansible_host="127.0.0.1", ansible_port=1,
                           ansible_ssh_args="-o ConnectTimeout=5")
    run = run_playbook(tmp_path, SITE, group_vars, host_vars, groups=groups)

    assert run.rc == 2, "the run must fail on a host (rc 2)" + run.explain()
    plays = re.findall(r"^PLAY \[(.*)\] \**$", run.output, re.M)
    assert plays == ["Check every host answers"], "the run went on past the reachability check" + run.explain()
    assert all(counts["changed"] == 0 for counts in run.recap.values()), run.explain()
    assert all(m in READ_ONLY for m in run.modules), "a module that could change a host ran:" + run.explain()
    message = " ".join(run.messages[-1:])
    for text in (down + " did not answer", "Nothing was changed", "bring it back", "--limit '!" + down + "'"):
        assert text in message, f"the message does not contain {text!r}: {message}"
