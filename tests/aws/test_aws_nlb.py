# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The aws_nlb role against moto's emulation of AWS (not against AWS itself).

Each test starts moto's server (``moto.server.ThreadedMotoServer``) on 127.0.0.1 on a free port, makes a VPC
with two subnets in it through boto3, writes an inventory of three EMQX nodes with fixed private addresses
and one aws_nlb host (``ansible_connection: local``, ``aws_nlb_endpoint_url`` pointing at the server), and
runs ``playbooks/aws_nlb.yml``, the playbook operators run. What the role made is read back through boto3.
Credentials are fake and live in the environment; nothing leaves the loopback interface. The TLS
certificate, its CA and the private key are made in the test's temporary directory and never committed.

Run: ``.venv/bin/python -m pytest -p no:cacheprovider tests/aws -q``
"""

from __future__ import annotations

import datetime
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")
x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = ROOT / "playbooks" / "aws_nlb.yml"
REGION = "eu-west-1"
NAME = "emqx-front"
NODES = {"emqx-1": "10.20.1.11", "emqx-2": "10.20.2.12", "emqx-3": "10.20.1.13"}
SUBNETS = (("10.20.1.0/24", "eu-west-1a"), ("10.20.2.0/24", "eu-west-1b"))


def _ansible_playbook() -> str:
    for candidate in (ROOT / ".venv" / "bin" / "ansible-playbook", Path(sys.executable).parent / "ansible-playbook"):
        if candidate.is_file():
            return str(candidate)
    pytest.fail("ansible-playbook not found: run `make venv` first")


# ---- the emulated AWS ------------------------------------------------------------------------------------
@pytest.fixture()
def aws(tmp_path, monkeypatch):
    """A moto server of this test's own on a free loopback port, the environment that points boto3 at it, a VPC."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = "http://%s:%d" % (host, port)
    env = {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
        # No profile or file of the machine's: the fake credentials above only.
        "AWS_CONFIG_FILE": str(tmp_path / "aws-config"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-credentials"),
        "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1",
    }
    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    try:
        def client(service):
            return boto3.client(service, region_name=REGION, endpoint_url=endpoint)

        ec2 = client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=zone)["Subnet"]["SubnetId"] for cidr, zone in SUBNETS]
        yield dict(endpoint=endpoint, client=client, vpc=vpc, subnets=subnets, env=env)
    finally:
        server.stop()


# ---- a certificate made for the test ---------------------------------------------------------------------
def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _make_tls(directory: Path) -> dict[str, str]:
    """A CA, a server certificate it signs and the server's key, as PEM files; returns their paths and the key text."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("aws-nlb test CA")).issuer_name(_name("aws-nlb test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("mqtt.example.test")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("mqtt.example.test")]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    files = {"cert": directory / "server.pem", "key": directory / "server.key", "chain": directory / "ca.pem"}
    files["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files["chain"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files["key"].write_text(key_pem)
    files["key"].chmod(0o600)
    return dict({k: str(v) for k, v in files.items()}, key_pem=key_pem,
                cert_der=cert.public_bytes(serialization.Encoding.DER))


# ---- running the playbook --------------------------------------------------------------------------------
def _inventory(tmp: Path, aws: dict, tls: dict, **extra) -> Path:
    nlb_vars = {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "aws_nlb_region": REGION, "aws_nlb_name": NAME, "aws_nlb_subnets": aws["subnets"],
        "aws_nlb_endpoint_url": aws["endpoint"], "aws_nlb_certificate_file": tls["cert"],
        "aws_nlb_private_key_file": tls["key"], "aws_nlb_certificate_chain_file": tls["chain"],
        "aws_nlb_wait_timeout": 30, **extra,
    }
    inventory = {"all": {"children": {
        "emq_nodes": {"hosts": {host: {"ansible_host": address} for host, address in NODES.items()}},
        "aws_nlb": {"hosts": {"nlb-1": nlb_vars}},
    }}}
    path = tmp / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    return path


def _run(tmp: Path, aws: dict, inventory: Path, *args: str) -> tuple[int, str, dict[str, int]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(aws["env"])
    env.update(ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"), ANSIBLE_HOME=str(tmp / "ansible-home"),
               ANSIBLE_LOCAL_TEMP=str(tmp / "ansible-tmp"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="false",
               ANSIBLE_RETRY_FILES_ENABLED="false", ANSIBLE_CACHE_PLUGIN="memory", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
               ANSIBLE_PIPELINING="true", PYTHONDONTWRITEBYTECODE="1")
    cmd = [_ansible_playbook(), "-i", str(inventory), str(PLAYBOOK), "-v", *args]
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=240, check=False)
    print("ansible-playbook %s: %.1f s" % (" ".join(args) or "(present)", time.monotonic() - started))
    recap = re.search(r"^nlb-1\s+:\s+(.*)$", proc.stdout, re.M)
    counts = dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", recap.group(1))) if recap else {}
    return proc.returncode, proc.stdout, counts


def _assert_ok(rc, output, counts, changed=None):
    assert rc == 0 and counts.get("failed") == 0, output[-6000:]
    if changed is not None:
        assert (counts["changed"] > 0) == changed, ("expected changes" if changed else "expected no change") + output[-6000:]


# ---- what exists in the emulated AWS ---------------------------------------------------------------------
def _state(aws: dict) -> dict:
    elb, acm, ec2 = aws["client"]("elbv2"), aws["client"]("acm"), aws["client"]("ec2")
    lbs = elb.describe_load_balancers()["LoadBalancers"]
    tgs = elb.describe_target_groups()["TargetGroups"]
    sgs = [g for g in ec2.describe_security_groups()["SecurityGroups"] if g["GroupName"] != "default"]
    certs = acm.list_certificates()["CertificateSummaryList"]
    return dict(lbs=lbs, tgs=tgs, sgs=sgs, certs=certs, elb=elb, acm=acm)


def _assert_built(aws: dict, tls: dict) -> None:
    s = _state(aws)
    elb, acm = s["elb"], s["acm"]
    assert [lb["LoadBalancerName"] for lb in s["lbs"]] == [NAME]
    lb = s["lbs"][0]
    assert lb["Type"] == "network" and lb["Scheme"] == "internet-facing"
    assert sorted(z["SubnetId"] for z in lb["AvailabilityZones"]) == sorted(aws["subnets"])

    # One imported certificate, the test's own (the leaf compared byte for byte).
    assert len(s["certs"]) == 1, s["certs"]
    cert_arn = s["certs"][0]["CertificateArn"]
    got = acm.get_certificate(CertificateArn=cert_arn)["Certificate"]
    assert x509.load_pem_x509_certificate(got.encode()).public_bytes(serialization.Encoding.DER) == tls["cert_der"]
    tags = {t["Key"]: t["Value"] for t in acm.list_tags_for_certificate(CertificateArn=cert_arn)["Tags"]}
    assert tags.get("Name") == NAME + "-tls"

    tgs = {tg["TargetGroupName"]: tg for tg in s["tgs"]}
    assert sorted(tgs) == [NAME + "-mqtt", NAME + "-ws"]
    for suffix, port in (("-mqtt", 1883), ("-ws", 8083)):
        tg = tgs[NAME + suffix]
        assert (tg["Protocol"], tg["Port"], tg["TargetType"], tg["VpcId"]) == ("TCP", port, "ip", aws["vpc"])
        assert (tg["HealthCheckProtocol"], tg["HealthCheckPort"], tg["HealthCheckPath"]) == ("HTTP", "18083", "/status")
        attributes = {a["Key"]: a["Value"] for a in elb.describe_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"])["Attributes"]}
        assert attributes["proxy_protocol_v2.enabled"] == "true"
        targets = elb.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])["TargetHealthDescriptions"]
        assert sorted((t["Target"]["Id"], t["Target"]["Port"]) for t in targets) == sorted((a, port) for a in NODES.values())

    listeners = {li["Port"]: li for li in elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]}
    assert sorted(listeners) == [8084, 8883]
    for port, suffix in ((8883, "-mqtt"), (8084, "-ws")):
        li = listeners[port]
        assert li["Protocol"] == "TLS"
        assert [c["CertificateArn"] for c in li["Certificates"]] == [cert_arn]
        assert li["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
        assert [a["TargetGroupArn"] for a in li["DefaultActions"]] == [tgs[NAME + suffix]["TargetGroupArn"]]

    # The nodes' security group: 1883, 8083 and 18083 from the load balancer's subnets, nothing else.
    assert [g["GroupName"] for g in s["sgs"]] == [NAME + "-emqx-nodes"]
    sg = s["sgs"][0]
    assert sg["VpcId"] == aws["vpc"]
    rules = sorted((p["IpProtocol"], p["FromPort"], p["ToPort"], r["CidrIp"]) for p in sg["IpPermissions"] for r in p.get("IpRanges", []))
    assert rules == sorted(("tcp", port, port, cidr) for port in (1883, 8083, 18083) for cidr in (subnet[0] for subnet in SUBNETS))
    assert all(not p.get("Ipv6Ranges") and not p.get("UserIdGroupPairs") for p in sg["IpPermissions"])


def _assert_nothing(aws: dict) -> None:
    s = _state(aws)
    assert (s["lbs"], s["tgs"], s["sgs"], s["certs"]) == ([], [], [], []), s


# ---- the tests -------------------------------------------------------------------------------------------
def test_build_rerun_and_remove(tmp_path, aws):
    """Build, a second run and check mode change nothing, remove, a second removal changes nothing; the key is never printed."""
    tls = _make_tls(tmp_path)
    inventory = _inventory(tmp_path, aws, tls)
    outputs = []

    rc, out, counts = _run(tmp_path, aws, inventory)
    outputs.append(out)
    _assert_ok(rc, out, counts, changed=True)
    _assert_built(aws, tls)
    assert re.search(r"mqtts://\S+:8883", out), out[-3000:]

    rc, out, counts = _run(tmp_path, aws, inventory)
    outputs.append(out)
    _assert_ok(rc, out, counts, changed=False)

    rc, out, counts = _run(tmp_path, aws, inventory, "--check")
    outputs.append(out)
    _assert_ok(rc, out, counts, changed=False)
    assert "Nothing to change" in out
    _assert_built(aws, tls)

    rc, out, counts = _run(tmp_path, aws, inventory, "-e", "aws_nlb_state=absent")
    outputs.append(out)
    _assert_ok(rc, out, counts, changed=True)
    _assert_nothing(aws)

    rc, out, counts = _run(tmp_path, aws, inventory, "-e", "aws_nlb_state=absent")
    outputs.append(out)
    _assert_ok(rc, out, counts, changed=False)
    _assert_nothing(aws)

    key_body = "".join(tls["key_pem"].strip().splitlines()[1:-1])
    for out in outputs:
        assert "PRIVATE KEY" not in out
        for line in tls["key_pem"].strip().splitlines()[1:-1]:
            assert line not in out
        assert key_body[:40] not in out


def test_check_mode_on_a_fresh_account_reports_changes_and_creates_nothing(tmp_path, aws):
    tls = _make_tls(tmp_path)
    rc, out, counts = _run(tmp_path, aws, _inventory(tmp_path, aws, tls), "--check")
    _assert_ok(rc, out, counts, changed=True)
    for text in ("import the certificate " + NAME + "-tls", "create the target group " + NAME + "-mqtt",
                 "create the security group " + NAME + "-emqx-nodes", "create the network load balancer " + NAME):
        assert text in out, out[-4000:]
    _assert_nothing(aws)
    assert "PRIVATE KEY" not in out


def test_a_certificate_given_by_arn_is_used_and_kept(tmp_path, aws):
    """With aws_nlb_certificate_arn the role imports nothing, the listeners use that certificate, and removal leaves it."""
    tls = _make_tls(tmp_path)
    acm = aws["client"]("acm")
    arn = acm.import_certificate(Certificate=Path(tls["cert"]).read_bytes(), PrivateKey=tls["key_pem"].encode(),
                                 CertificateChain=Path(tls["chain"]).read_bytes())["CertificateArn"]
    inventory = _inventory(tmp_path, aws, tls, aws_nlb_certificate_arn=arn, aws_nlb_certificate_file="", aws_nlb_private_key_file="",
                           aws_nlb_certificate_chain_file="")

    rc, out, counts = _run(tmp_path, aws, inventory)
    _assert_ok(rc, out, counts, changed=True)
    s = _state(aws)
    assert [c["CertificateArn"] for c in s["certs"]] == [arn]
    listeners = s["elb"].describe_listeners(LoadBalancerArn=s["lbs"][0]["LoadBalancerArn"])["Listeners"]
    assert sorted((li["Port"], li["Certificates"][0]["CertificateArn"]) for li in listeners) == [(8084, arn), (8883, arn)]

    rc, out, counts = _run(tmp_path, aws, inventory, "-e", "aws_nlb_state=absent")
    _assert_ok(rc, out, counts, changed=True)
    s = _state(aws)
    assert (s["lbs"], s["tgs"], s["sgs"]) == ([], [], [])
    assert [c["CertificateArn"] for c in s["certs"]] == [arn], "the role deleted a certificate it did not import"
