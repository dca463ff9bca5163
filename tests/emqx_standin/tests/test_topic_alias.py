"""MQTT 5 topic aliases on outgoing PUBLISH, as emqx_channel:packing_alias/2 (EMQX 5.8.9) does:
with a Topic-Alias-Maximum > 0 in the client's CONNECT, the first message on a topic carries the
topic name and a new alias, later ones an empty topic name and that alias; aliases are numbered
from 1 and new topics past the maximum go out without one. Raw sockets: paho-mqtt 2.2 does not
resolve inbound aliases itself, so the test resolves them as a client must."""

import struct

from test_broker import (RawClient, broker, connect_pkt, make_broker, packet, props5,  # noqa: F401
                         publish_pkt, s16, varint)


def _decode_varint(b, i):
    n, mult = 0, 1
    while True:
        c = b[i]
        i += 1
        n += (c & 0x7F) * mult
        mult <<= 7
        if not c & 0x80:
            return n, i


def _publish_fields(flags, body):
    """(topic, topic_alias or None, payload) of a v5 PUBLISH body."""
    tlen = struct.unpack("!H", body[:2])[0]
    topic = body[2:2 + tlen].decode()
    i = 2 + tlen
    if (flags >> 1) & 3:
        i += 2
    plen, i = _decode_varint(body, i)
    end = i + plen
    alias = None
    while i < end:
        pid, i = _decode_varint(body, i)
        if pid == 0x23:
            alias = struct.unpack("!H", body[i:i + 2])[0]
            i += 2
        elif pid == 0x01:          # payload format indicator
            i += 1
        elif pid in (0x02,):       # message expiry
            i += 4
        elif pid == 0x0B:          # subscription identifier
            _, i = _decode_varint(body, i)
        elif pid in (0x03, 0x08):  # content type, response topic
            n = struct.unpack("!H", body[i:i + 2])[0]
            i += 2 + n
        elif pid == 0x09:          # correlation data
            n = struct.unpack("!H", body[i:i + 2])[0]
            i += 2 + n
        elif pid == 0x26:          # user property
            for _ in range(2):
                n = struct.unpack("!H", body[i:i + 2])[0]
                i += 2 + n
        else:
            raise AssertionError("unexpected property 0x%02x" % pid)
    return topic, alias, body[end:]


def _subscriber(port, clientid, alias_max):
    c = RawClient(port)
    props = props5(bytes((0x22,)) + struct.pack("!H", alias_max)) if alias_max is not None else b"\x00"
    c.send(connect_pkt(clientid, proto=5, props=props))
    ptype, _, body = c.read()
    assert ptype == 2 and body[1] == 0, body
    c.send(packet(0x82, struct.pack("!H", 1) + b"\x00" + s16("t/#") + bytes((0,))))
    assert c.read()[0] == 9
    return c


def _receive(c, n):
    got = []
    for _ in range(n):
        ptype, flags, body = c.read()
        assert ptype == 3
        got.append(_publish_fields(flags, body))
    return got


def test_outgoing_publish_gets_topic_aliases_up_to_the_clients_maximum(broker):
    port = broker.port()
    with_alias = _subscriber(port, "alias-2", 2)
    without = _subscriber(port, "alias-none", None)     # no Topic-Alias-Maximum: 0
    zero = _subscriber(port, "alias-0", 0)
    pub = RawClient(port)
    pub.send(connect_pkt("pub", proto=4))
    assert pub.read()[0] == 2
    sent = [("t/a", b"1"), ("t/a", b"2"), ("t/b", b"3"), ("t/a", b"4"), ("t/c", b"5"), ("t/c", b"6"),
            ("t/b", b"7")]
    for topic, payload in sent:
        pub.send(publish_pkt(topic, payload))

    got = _receive(with_alias, len(sent))
    assert [(t, a) for t, a, _ in got] == [
        ("t/a", 1), ("", 1), ("t/b", 2), ("", 1),
        ("t/c", None), ("t/c", None),               # a third topic is past the maximum of 2
        ("", 2)]
    # the client resolves the aliases and sees every message on its own topic
    table, resolved = {}, []
    for topic, alias, payload in got:
        if alias is not None:
            if topic:
                table[alias] = topic
            topic = table[alias]
        resolved.append((topic, payload))
    assert resolved == sent

    for c in (without, zero):
        assert [(t, a, p) for t, a, p in _receive(c, len(sent))] == [(t, None, p) for t, p in sent]
