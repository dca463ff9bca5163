"""A DNS client for discovery_strategy = dns, as Erlang's inet_res:lookup/3 that ekka 0.23.2 calls.

inet_res asks the name servers of the resolver configuration (on Unix, the nameserver lines of
/etc/resolv.conf) over UDP; it never reads /etc/hosts. So a name that only /etc/hosts knows finds no
node, here as in EMQX. lookup() returns the answers' data, [] on any failure (inet_res:lookup/3 returns
[] for NXDOMAIN, a timeout or a refusal alike).

Test equipment: EMQX_STANDIN_RESOLV_CONF names another resolv.conf and EMQX_STANDIN_DNS_PORT another port,
so the stand-in's own tests can run a name server on loopback without root.
"""

import ipaddress
import os
import random
import socket
import struct

TYPES = {"a": 1, "aaaa": 28, "srv": 33}
TIMEOUT = 2.0


def nameservers(path=None):
    path = path or os.environ.get("EMQX_STANDIN_RESOLV_CONF", "/etc/resolv.conf")
    out = []
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    try:
                        out.append(str(ipaddress.ip_address(parts[1].split("%")[0])))
                    except ValueError:
                        pass
    except OSError:
        pass
    return out


def _query(name, qtype):
    qid = random.randint(0, 0xFFFF)
    header = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)   # recursion desired, one question
    labels = b"".join(struct.pack("B", len(p)) + p.encode("idna") for p in name.rstrip(".").split(".") if p)
    return qid, header + labels + b"\x00" + struct.pack(">HH", qtype, 1)


def _name(msg, off):
    labels, jumped, end = [], False, off
    for _ in range(128):
        n = msg[off]
        if n == 0:
            off += 1
            break
        if n & 0xC0 == 0xC0:
            ptr = struct.unpack(">H", msg[off:off + 2])[0] & 0x3FFF
            if not jumped:
                end = off + 2
            jumped, off = True, ptr
            continue
        labels.append(msg[off + 1:off + 1 + n].decode("ascii", "replace"))
        off += 1 + n
    return ".".join(labels), (end if jumped else off)


def _parse(msg, qid, qtype):
    rid, flags, qd, an = struct.unpack(">HHHH", msg[:8])
    if rid != qid or not flags & 0x8000:
        return None
    if flags & 0x000F == 3:     # NXDOMAIN: the name does not exist, no other server is asked
        return []
    if flags & 0x000F:          # SERVFAIL, REFUSED, ...: the next server
        return None
    off = 12
    for _ in range(qd):
        _, off = _name(msg, off)
        off += 4
    out = []
    for _ in range(an):
        _, off = _name(msg, off)
        rtype, _cls, _ttl, rdlen = struct.unpack(">HHIH", msg[off:off + 10])
        off += 10
        data = msg[off:off + rdlen]
        if rtype == qtype == 1 and rdlen == 4:
            out.append(str(ipaddress.IPv4Address(data)))
        elif rtype == qtype == 28 and rdlen == 16:
            out.append(str(ipaddress.IPv6Address(data)))
        elif rtype == qtype == 33:
            prio, weight, port = struct.unpack(">HHH", data[:6])
            target, _ = _name(msg, off + 6)
            out.append((prio, weight, port, target))
        off += rdlen
    return out


def lookup(name, record_type, servers=None):
    """inet_res:lookup(Name, in, Type): addresses (a, aaaa) as text, or (priority, weight, port, target)
    tuples (srv); [] when no server answers or the name does not exist."""
    qtype = TYPES[record_type]
    port = int(os.environ.get("EMQX_STANDIN_DNS_PORT", "53"))
    for server in servers if servers is not None else nameservers():
        family = socket.AF_INET6 if ":" in server else socket.AF_INET
        qid, packet = _query(name, qtype)
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.settimeout(TIMEOUT)
                sock.sendto(packet, (server, port))
                msg, _ = sock.recvfrom(4096)
        except OSError:
            continue
        answer = _parse(msg, qid, qtype)
        if answer is not None:
            return answer
    return []
