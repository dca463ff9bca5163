"""issue 17: etcd discovery that really clusters, after the DNS discovery tests.

etcd from Debian (etcd-server, API v3) runs in the emq-cluster-dns container. The role moves the nodes to
emq_node_discovery: etcd; each node then keeps <prefix>/ekkacl/nodes/<its name> on a lease in etcd. Every
node's cluster data is wiped and two nodes boot with no `cluster join` from anyone: they find each other in
etcd; the third, started later, joins by itself. A node that stops takes its key out of etcd (ekka revokes
its lease). A second run of the role changes nothing.
"""

import pytest

from cluster_lab import EVERYONE, INFRA_ADDR, INFRA_HOST, NODES, converge, host, members, running, unchanged, wait

ETCD_URL = "http://%s:2379" % INFRA_ADDR
PREFIX = "emqxcl"
ETCD_VARS = ["-e", "emq_node_discovery=etcd", "-e", "emq_node_etcd_server=" + ETCD_URL]


def _registered():
    """The node names etcd holds under <prefix>/ekkacl/nodes/, as etcdctl lists them."""
    out = host(INFRA_HOST).check_output(
        "ETCDCTL_API=3 etcdctl --endpoints=%s get --prefix %s/ekkacl/nodes/ --print-value-only" % (ETCD_URL, PREFIX))
    return sorted(line for line in out.splitlines() if line.strip())


@pytest.fixture(scope="module")
def etcd(dns_server):
    dns_server.check_output(
        "printf 'ETCD_LISTEN_CLIENT_URLS=%s,http://127.0.0.1:2379\\nETCD_ADVERTISE_CLIENT_URLS=%s\\n' > /etc/default/etcd"
        " && systemctl restart etcd" % (ETCD_URL, ETCD_URL))
    assert wait(lambda: host(INFRA_HOST).run("ETCDCTL_API=3 etcdctl --endpoints=%s endpoint health" % ETCD_URL).rc == 0, 30)
    return dns_server


@pytest.fixture(scope="module")
def moved_to_etcd(etcd):
    return converge(*ETCD_VARS)


def test_the_role_moves_the_cluster_to_etcd_discovery(moved_to_etcd):
    rc, out = moved_to_etcd
    assert rc == 0, out[-4000:]
    for name in NODES:
        conf = host(name).file("/etc/emqx/emqx.conf").content_string
        assert 'discovery_strategy = "etcd"' in conf and ETCD_URL in conf, conf
    assert wait(lambda: _registered() == EVERYONE, 30), _registered()
    assert members(NODES) == {n: EVERYONE for n in NODES}


def test_a_second_run_with_etcd_discovery_changes_nothing(moved_to_etcd):
    rc, out = converge(*ETCD_VARS)
    assert unchanged(rc, out), out[-3000:]


def test_nodes_with_no_cluster_data_form_the_cluster_through_etcd_and_a_later_node_joins(moved_to_etcd):
    names = sorted(NODES)
    for name in names:
        host(name).check_output("systemctl stop emqx && rm -rf /var/lib/emqx/mnesia")
    # A node that stops revokes its lease: its key leaves etcd at once.
    assert _registered() == [], "stopped nodes are still registered in etcd: %s" % _registered()
    for name in names[:2]:
        host(name).check_output("systemctl start emqx")
    first = sorted("emqx@" + NODES[n] for n in names[:2])
    assert wait(lambda: all(running(n) == first for n in names[:2])), \
        "the two nodes did not cluster through etcd: %s" % members(names[:2])

    host(names[2]).check_output("systemctl start emqx")
    assert wait(lambda: all(running(n) == EVERYONE for n in names)), \
        "the node started later did not join by itself: %s" % members(names)
    assert wait(lambda: _registered() == EVERYONE, 20), _registered()
