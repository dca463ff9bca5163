"""DNS discovery as ekka 0.23.2 runs it (src/ekka_cluster_dns.erl under src/ekka_autocluster.erl): the
nodes are <name>@<each address of the A records> (or of each SRV target), asked of the resolv.conf name
servers only; the nodes cluster by themselves, and a node whose address is added later joins by itself."""

import os
import socket
import struct
import threading

import pytest

from standin import wait_for

from emqx_standin import dnsquery

NAME = "emqx.cluster.test"


class FakeDns(object):
    """A UDP name server on loopback that answers A and SRV questions from self.records, NXDOMAIN otherwise."""

    def __init__(self, host="127.0.0.1"):
        self.records = {}   # (name, qtype) -> list of answers (address text, or (prio, weight, port, target))
        self.queries = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @staticmethod
    def _labels(name):
        return b"".join(struct.pack("B", len(p)) + p.encode() for p in name.split(".")) + b"\x00"

    def _serve(self):
        while not self._stop.is_set():
            try:
                msg, peer = self.sock.recvfrom(512)
            except socket.timeout:
                continue
            self.queries += 1
            qid = msg[:2]
            off, labels = 12, []
            while msg[off]:
                labels.append(msg[off + 1:off + 1 + msg[off]].decode())
                off += 1 + msg[off]
            qtype = struct.unpack(">H", msg[off + 1:off + 3])[0]
            question = msg[12:off + 5]
            answers = self.records.get((".".join(labels).lower(), qtype))
            rcode = 3 if answers is None else 0
            body = b""
            for a in answers or []:
                if qtype == 1:
                    rdata = socket.inet_aton(a)
                else:
                    rdata = struct.pack(">HHH", *a[:3]) + self._labels(a[3])
                body += b"\xc0\x0c" + struct.pack(">HHIH", qtype, 1, 5, len(rdata)) + rdata
            header = qid + struct.pack(">HHHHH", 0x8180 | rcode, 1, len(answers or []), 0, 0)
            self.sock.sendto(header + question + body, peer)

    def close(self):
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def dns(tmp_path):
    server = FakeDns()
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("# the test's name server\nnameserver 127.0.0.1\n")
    env = {"EMQX_STANDIN_RESOLV_CONF": str(resolv), "EMQX_STANDIN_DNS_PORT": str(server.port)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield server, env
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    server.close()


def test_lookup_asks_the_resolv_conf_servers_for_a_and_srv(dns):
    server, _env = dns
    server.records[(NAME, 1)] = ["10.0.0.1", "10.0.0.2"]
    server.records[("_emqx._tcp." + NAME, 33)] = [(10, 5, 4370, "n2.cluster.test"), (10, 5, 4370, "n1.cluster.test")]
    assert dnsquery.lookup(NAME, "a") == ["10.0.0.1", "10.0.0.2"]
    assert sorted(t for *_, t in dnsquery.lookup("_emqx._tcp." + NAME, "srv")) == ["n1.cluster.test", "n2.cluster.test"]
    # NXDOMAIN and no answer at all are both "no node" for inet_res:lookup/3
    assert dnsquery.lookup("nothing.cluster.test", "a") == []
    assert dnsquery.lookup(NAME, "a", servers=[]) == []


def test_localhost_from_etc_hosts_is_not_a_dns_answer(dns):
    # EMQX's default cluster.dns.name is localhost; /etc/hosts knows it, inet_res does not read it
    assert dnsquery.lookup("localhost", "a") == []


def _running(n):
    st = n.cluster_status()
    return sorted(st["running_nodes"]), sorted(st["stopped_nodes"])


def test_nodes_cluster_by_themselves_and_a_node_added_later_joins(nodes, dns):
    server, env = dns
    extra = '\ncluster.dns.name = "%s"\ncluster.dns.record_type = a\n' % NAME
    group = nodes(3, discovery="dns", extra=extra)
    server.records[(NAME, 1)] = [n.host for n in group[:2]]
    for n in group[:2]:
        n.start(env=env)
    first = sorted(n.name for n in group[:2])
    wait_for(lambda: all(_running(n) == (first, []) for n in group[:2]), timeout=40,
             what="the two nodes in DNS to cluster by themselves")

    # a node added later: its address goes into the record, it boots and joins by itself
    server.records[(NAME, 1)] = [n.host for n in group]
    group[2].start(env=env)
    everyone = sorted(n.name for n in group)
    wait_for(lambda: all(_running(n) == (everyone, []) for n in group), timeout=40,
             what="the node added to DNS to join by itself")
