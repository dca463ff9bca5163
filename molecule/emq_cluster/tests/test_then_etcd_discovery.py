"""issue 17: etcd discovery that really clusters, after the DNS discovery tests.

etcd from Debian (etcd-server, API v3) runs in the emq-cluster-dns container. The role moves the nodes to
emq_node_discovery: etcd; each node then keeps <prefix>/ekkacl/nodes/<its name> on a lease in etcd. Every
node's cluster data is wiped and two nodes boot with no `cluster join` from anyone: they find each other in
etcd; the third, started later, joins by itself. A node that stops takes its key out of etcd (ekka revokes
its lease). A second run of the role changes nothing.
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
ETCD_HOST, ETCD_URL = "emq-cluster-dns", "http://172.30.2.20:2379"
PREFIX = "emqxcl"
ETCD_VARS = ["-e", "emq_node_discovery=etcd", "-e", "emq_node_etcd_server=" + ETCD_URL]


def _host(name):
    return testinfra.get_host("docker://" + name)


def _converge(*extra):
    cmd = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], *extra, str(SCENARIO / "converge.yml")]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False,
                         env=dict(os.environ, ANSIBLE_LOG_PATH="", ANSIBLE_FORCE_COLOR="false"))
    return run.returncode, run.stdout + run.stderr


def _registered():
    """The node names etcd holds under <prefix>/ekkacl/nodes/, as etcdctl lists them."""
    out = _host(ETCD_HOST).check_output(
        "ETCDCTL_API=3 etcdctl --endpoints=%s get --prefix %s/ekkacl/nodes/ --print-value-only" % (ETCD_URL, PREFIX))
    return sorted(line for line in out.splitlines() if line.strip())


def _running(name):
    out = _host(name).run("emqx ctl cluster status --json")
    return sorted(json.loads(out.stdout)["running_nodes"]) if out.rc == 0 else []


def _wait(check, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(2)
    return check()


@pytest.fixture(scope="module")
def etcd(dns_server):
    dns_server.check_output(
        "printf 'ETCD_LISTEN_CLIENT_URLS=%s,http://127.0.0.1:2379\\nETCD_ADVERTISE_CLIENT_URLS=%s\\n' > /etc/default/etcd"
        " && systemctl restart etcd" % (ETCD_URL, ETCD_URL))
    assert _wait(lambda: _host(ETCD_HOST).run("ETCDCTL_API=3 etcdctl --endpoints=%s endpoint health" % ETCD_URL).rc == 0, 30)
    return dns_server


@pytest.fixture(scope="module")
def moved_to_etcd(etcd):
    return _converge(*ETCD_VARS)


def test_the_role_moves_the_cluster_to_etcd_discovery(moved_to_etcd):
    rc, out = moved_to_etcd
    assert rc == 0, out[-4000:]
    for name in NODES:
        conf = _host(name).file("/etc/emqx/emqx.conf").content_string
        assert 'discovery_strategy = "etcd"' in conf and ETCD_URL in conf, conf
    everyone = sorted("emqx@" + ip for ip in NODES.values())
    assert _wait(lambda: _registered() == everyone, 30), _registered()
    assert all(_running(n) == everyone for n in NODES)


def test_a_second_run_with_etcd_discovery_changes_nothing(moved_to_etcd):
    rc, out = _converge(*ETCD_VARS)
    recap = [line for line in out.splitlines() if line.startswith("emq-cluster-") and "ok=" in line]
    assert rc == 0 and len(recap) == 3 and all("changed=0" in line for line in recap), out[-3000:]


def test_nodes_with_no_cluster_data_form_the_cluster_through_etcd_and_a_later_node_joins(moved_to_etcd):
    names = sorted(NODES)
    for name in names:
        _host(name).check_output("systemctl stop emqx && rm -rf /var/lib/emqx/mnesia")
    # A node that stops revokes its lease: its key leaves etcd at once.
    assert _registered() == [], "stopped nodes are still registered in etcd: %s" % _registered()
    for name in names[:2]:
        _host(name).check_output("systemctl start emqx")
    first = sorted("emqx@" + NODES[n] for n in names[:2])
    assert _wait(lambda: all(_running(n) == first for n in names[:2])), \
        "the two nodes did not cluster through etcd: %s" % {n: _running(n) for n in names[:2]}

    _host(names[2]).check_output("systemctl start emqx")
    everyone = sorted("emqx@" + ip for ip in NODES.values())
    assert _wait(lambda: all(_running(n) == everyone for n in names)), \
        "the node started later did not join by itself: %s" % {n: _running(n) for n in names}
    assert _wait(lambda: _registered() == everyone, 20), _registered()
