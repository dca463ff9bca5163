"""issue 17: DNS discovery that really clusters, on the scenario's nodes after the other tests.

A name server from Debian (dnsmasq) in its own container (conftest.py) serves emqx.cluster.test with one A
record per published node; the nodes' resolv.conf points at it (the operator's job, not the role's). The role moves
the nodes to emq_node_discovery: dns; then every node's cluster data is wiped and the nodes boot with no
`cluster join` from anyone: the two published nodes form the cluster through DNS, and the third, once its
record is published, joins by itself when it boots. A second run of the role changes nothing.
"""

import json
import os
import pathlib
import subprocess
import time

import pytest
import testinfra

SCENARIO = pathlib.Path(__file__).resolve().parents[1]
NODES = {
    "emq-cluster-1": "172.30.2.11",
    "emq-cluster-2": "172.30.2.12",
    "emq-cluster-3": "172.30.2.13",
}
DNS_HOST = "emq-cluster-dns"
NAME = "emqx.cluster.test"
RECORDS = "/etc/dnsmasq-emqx.hosts"
DNS_VARS = ["-e", "emq_node_discovery=dns", "-e", "emq_node_dns_name=" + NAME]


def _host(name):
    return testinfra.get_host("docker://" + name)


def _converge(*extra):
    cmd = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], *extra, str(SCENARIO / "converge.yml")]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False,
                         env=dict(os.environ, ANSIBLE_LOG_PATH="", ANSIBLE_FORCE_COLOR="false"))
    return run.returncode, run.stdout + run.stderr


def _publish(names):
    dns = _host(DNS_HOST)
    lines = "".join("%s %s\\n" % (NODES[n], NAME) for n in names)
    dns.check_output("printf '%s' > %s && systemctl reload dnsmasq" % (lines, RECORDS))


def _running(name):
    out = _host(name).run("emqx ctl cluster status --json")
    return sorted(json.loads(out.stdout)["running_nodes"]) if out.rc == 0 else []


def _wait_running(names, expected, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = {n: _running(n) for n in names}
        if all(v == expected for v in seen.values()):
            return seen
        time.sleep(2)
    return seen


@pytest.fixture(scope="module")
def moved_to_dns(dns_server):
    rc, out = _converge(*DNS_VARS)
    return rc, out


def test_the_role_moves_the_cluster_to_dns_discovery(moved_to_dns):
    rc, out = moved_to_dns
    assert rc == 0, out[-4000:]
    for name in NODES:
        conf = _host(name).file("/etc/emqx/emqx.conf").content_string
        assert 'discovery_strategy = "dns"' in conf and 'name = "%s"' % NAME in conf, conf
    expected = sorted("emqx@" + ip for ip in NODES.values())
    assert _wait_running(sorted(NODES), expected, timeout=30) == {n: expected for n in NODES}


def test_a_second_run_with_dns_discovery_changes_nothing(moved_to_dns):
    rc, out = _converge(*DNS_VARS)
    recap = [line for line in out.splitlines() if line.startswith("emq-cluster-") and "ok=" in line]
    assert rc == 0 and len(recap) == 3 and all("changed=0" in line for line in recap), out[-3000:]


def test_nodes_with_no_cluster_data_form_the_cluster_through_dns_and_a_later_node_joins(moved_to_dns):
    names = sorted(NODES)
    for name in names:
        _host(name).check_output("systemctl stop emqx && rm -rf /var/lib/emqx/mnesia")
    _publish(names[:2])
    for name in names[:2]:
        _host(name).check_output("systemctl start emqx")
    first = sorted("emqx@" + NODES[n] for n in names[:2])
    seen = _wait_running(names[:2], first)
    assert seen == {n: first for n in names[:2]}, "the two published nodes did not cluster through DNS: %s" % seen

    _publish(names)
    _host(names[2]).check_output("systemctl start emqx")
    everyone = sorted("emqx@" + ip for ip in NODES.values())
    seen = _wait_running(names, everyone)
    assert seen == {n: everyone for n in names}, "the node added later did not join by itself: %s" % seen
