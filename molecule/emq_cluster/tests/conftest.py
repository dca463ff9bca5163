"""What the scenario's later tests share: the emq-cluster-dns container, with its name server (and etcd)."""

import pytest

from cluster_lab import INFRA_ADDR, INFRA_HOST, NODES, host

# Hosts files dnsmasq serves: the discovery name's records (test_then_dns_discovery.py rewrites it) and the
# name devices use to reach the nodes directly (test_then_direct_tls.py).
RECORD_FILES = {"emqx.cluster.test": "/etc/dnsmasq-emqx.hosts", "mqtt.cluster.test": "/etc/dnsmasq-mqtt.hosts"}


@pytest.fixture(scope="session")
def dns_server():
    """dnsmasq from Debian on emq-cluster-dns, one A record per node for each name; the nodes and the
    container itself resolve through it (the operator's job, not the role's)."""
    dns = host(INFRA_HOST)
    # Also mosquitto's clients (the container is the device of test_then_direct_tls.py) and etcd (the store of
    # test_then_etcd_discovery.py): all before its resolv.conf points at dnsmasq, which answers for the test
    # names only.
    dns.check_output("DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dnsmasq mosquitto-clients etcd-server "
                     "etcd-client >/dev/null")
    conf = "no-resolv\\nno-hosts\\nlisten-address=%s\\nbind-interfaces\\n" % INFRA_ADDR
    conf += "".join("addn-hosts=%s\\n" % path for path in RECORD_FILES.values())
    dns.check_output("printf '%s' > /etc/dnsmasq.d/emqx.conf" % conf)
    for name, path in RECORD_FILES.items():
        dns.check_output("printf '%s' > %s" % ("".join("%s %s\\n" % (ip, name) for ip in NODES.values()), path))
    dns.check_output("systemctl restart dnsmasq")
    for name in list(NODES) + [INFRA_HOST]:
        host(name).check_output("printf 'nameserver %s\\n' > /etc/resolv.conf" % INFRA_ADDR)
    return dns
