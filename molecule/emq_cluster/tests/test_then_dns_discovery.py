"""issue 17: DNS discovery that really clusters, on the scenario's nodes after the other tests.

A name server from Debian (dnsmasq) in its own container (conftest.py) serves emqx.cluster.test with one A
record per published node; the nodes' resolv.conf points at it (the operator's job, not the role's). The role moves
the nodes to emq_node_discovery: dns; then every node's cluster data is wiped and the nodes boot with no
`cluster join` from anyone: the two published nodes form the cluster through DNS, and the third, once its
record is published, joins by itself when it boots. A second run of the role changes nothing.
"""

import pytest

from cluster_lab import EVERYONE, INFRA_HOST, NODES, converge, host, members, running, unchanged, wait

NAME = "emqx.cluster.test"
RECORDS = "/etc/dnsmasq-emqx.hosts"
DNS_VARS = ["-e", "emq_node_discovery=dns", "-e", "emq_node_dns_name=" + NAME]


def _publish(names):
    dns = host(INFRA_HOST)
    lines = "".join("%s %s\\n" % (NODES[n], NAME) for n in names)
    dns.check_output("printf '%s' > %s && systemctl reload dnsmasq" % (lines, RECORDS))


@pytest.fixture(scope="module")
def moved_to_dns(dns_server):
    return converge(*DNS_VARS)


def test_the_role_moves_the_cluster_to_dns_discovery(moved_to_dns):
    rc, out = moved_to_dns
    assert rc == 0, out[-4000:]
    for name in NODES:
        conf = host(name).file("/etc/emqx/emqx.conf").content_string
        assert 'discovery_strategy = "dns"' in conf and 'name = "%s"' % NAME in conf, conf
    assert wait(lambda: members(NODES) == {n: EVERYONE for n in NODES}, 30), members(NODES)


def test_a_second_run_with_dns_discovery_changes_nothing(moved_to_dns):
    rc, out = converge(*DNS_VARS)
    assert unchanged(rc, out), out[-3000:]


def test_nodes_with_no_cluster_data_form_the_cluster_through_dns_and_a_later_node_joins(moved_to_dns):
    names = sorted(NODES)
    for name in names:
        host(name).check_output("systemctl stop emqx && rm -rf /var/lib/emqx/mnesia")
    _publish(names[:2])
    for name in names[:2]:
        host(name).check_output("systemctl start emqx")
    first = sorted("emqx@" + NODES[n] for n in names[:2])
    assert wait(lambda: all(running(n) == first for n in names[:2])), \
        "the two published nodes did not cluster through DNS: %s" % members(names[:2])

    _publish(names)
    host(names[2]).check_output("systemctl start emqx")
    assert wait(lambda: all(running(n) == EVERYONE for n in names)), \
        "the node added later did not join by itself: %s" % members(names)
