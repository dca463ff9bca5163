"""Tests of the stand-in's MQTT broker core with real clients (paho-mqtt 2.2, mosquitto_pub/sub, raw sockets).

The broker runs in-process in a background thread with its own event loop, bound to 127.0.0.1 port 0.
Only loopback traffic; every wait has a timeout.
"""

import asyncio
import os
import queue
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time

import pytest

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from emqx_standin.broker import Broker, Message  # noqa: E402

HOST = "127.0.0.1"
NODE = "emqx@127.0.0.1"
WAIT = 5.0


# =============================================================================================
# harness
# =============================================================================================
class Harness:
    """A Broker running in a background thread with its own event loop."""

    def __init__(self, listeners, mqtt_conf=None, node=NODE):
        self.logs = []
        self.forwarded = []
        self.loop = asyncio.new_event_loop()
        self.broker = Broker(node, listeners, mqtt_conf or {}, self.forwarded.append, self._log)
        self._ready = threading.Event()
        self._error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self._ready.wait(WAIT), "broker did not start"
        if self._error is not None:
            raise self._error

    def _log(self, level, text):
        self.logs.append((level, text))

    def _run(self):
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.broker.start())
        except BaseException as e:  # reported to the test thread
            self._error = e
            self._ready.set()
            self.loop.close()
            return
        self._ready.set()
        self.loop.run_forever()
        self.loop.close()

    def call(self, fn, *args):
        async def wrapper():
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(wrapper(), self.loop).result(WAIT)

    def port(self, lid="tcp:default"):
        return self.call(self.broker.listener_ports)[lid]

    def clients(self):
        return self.call(self.broker.clients)

    def client(self, clientid):
        for c in self.clients():
            if c["clientid"] == clientid:
                return c
        return None

    def wait_for(self, pred, timeout=WAIT, what="condition"):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pred():
                return
            time.sleep(0.02)
        raise AssertionError("timed out waiting for " + what)

    def log_text(self):
        return "\n".join("%s %s" % lt for lt in self.logs)

    def stop(self):
        if self.loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(self.broker.stop(), self.loop).result(WAIT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT)


def tcp_listener(**kw):
    conf = {"enable": True, "bind": "127.0.0.1:0", "max_connections": "infinity", "proxy_protocol": False,
            "proxy_protocol_timeout": 3.0}
    conf.update(kw)
    return conf


@pytest.fixture
def make_broker():
    started = []

    def make(listeners=None, mqtt_conf=None, node=NODE):
        h = Harness(listeners or {"tcp": {"default": tcp_listener()}}, mqtt_conf, node)
        started.append(h)
        return h

    yield make
    for h in started:
        h.stop()


@pytest.fixture
def broker(make_broker):
    return make_broker()


# =============================================================================================
# paho wrapper
# =============================================================================================
class PahoClient:
    def __init__(self, port, clientid="", proto=5, transport="tcp", clean=True, tls=None, ws_headers=None,
                 will=None, keepalive=30, client_cls=mqtt.Client, connect=True, ws_path="/mqtt"):
        self.messages = queue.Queue()
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.subacks = {}
        self.connack = None
        self.connack_props = None
        self.disconnect_rc = None
        self.proto = proto
        kw = {}
        if proto != 5:
            kw["clean_session"] = clean
        p = {5: mqtt.MQTTv5, 4: mqtt.MQTTv311, 3: mqtt.MQTTv31}[proto]
        c = client_cls(mqtt.CallbackAPIVersion.VERSION2, client_id=clientid, protocol=p, transport=transport, **kw)
        self.c = c
        c.on_connect = self._on_connect
        c.on_message = lambda _c, _u, m: self.messages.put(m)
        c.on_subscribe = self._on_subscribe
        c.on_disconnect = self._on_disconnect
        if transport == "websockets":
            c.ws_set_options(path=ws_path, headers=ws_headers)
        if tls:
            c.tls_set(**tls)
        if will:
            c.will_set(*will)
        if connect:
            self.connect(port, keepalive, clean)

    def connect(self, port, keepalive=30, clean=True):
        if self.proto == 5:
            self.c.connect(HOST, port, keepalive, clean_start=clean)
        else:
            self.c.connect(HOST, port, keepalive)
        self.c.loop_start()
        assert self.connected.wait(WAIT), "no CONNACK"
        assert not self.connack.is_failure, "CONNACK refused: %s" % self.connack

    def _on_connect(self, _c, _u, flags, rc, props):
        self.connack = rc
        self.connack_flags = flags
        self.connack_props = props
        self.connected.set()

    def _on_subscribe(self, _c, _u, mid, rcs, props):
        self.subacks[mid] = rcs

    def _on_disconnect(self, _c, _u, flags, rc, props):
        self.disconnect_rc = rc
        self.disconnected.set()

    def sub(self, topic, qos=0):
        res, mid = self.c.subscribe(topic, qos)
        assert res == mqtt.MQTT_ERR_SUCCESS
        end = time.monotonic() + WAIT
        while mid not in self.subacks:
            assert time.monotonic() < end, "no SUBACK"
            time.sleep(0.01)
        return self.subacks[mid]

    def pub(self, topic, payload, qos=0, retain=False, properties=None):
        info = self.c.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        info.wait_for_publish(WAIT)
        assert info.is_published()

    def get(self, timeout=3.0):
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            return None

    def drain(self, wait=0.3):
        time.sleep(wait)
        out = []
        while True:
            try:
                out.append(self.messages.get_nowait())
            except queue.Empty:
                return out

    def close(self, **kw):
        try:
            self.c.disconnect(**kw)
        finally:
            self.c.loop_stop()


@pytest.fixture
def paho():
    made = []

    def make(*a, **kw):
        pc = PahoClient(*a, **kw)
        made.append(pc)
        return pc

    yield make
    for pc in made:
        try:
            pc.c.disconnect()
        except Exception:
            pass
        pc.c.loop_stop()


# =============================================================================================
# raw MQTT (independent of the broker's codec)
# =============================================================================================
def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def s16(b):
    if isinstance(b, str):
        b = b.encode()
    return struct.pack("!H", len(b)) + b


def packet(first, body):
    return bytes((first,)) + varint(len(body)) + body


def props5(*items):
    """Raw MQTT 5 property block; items are already-encoded (id byte + value) byte strings."""
    body = b"".join(items)
    return varint(len(body)) + body


def connect_pkt(clientid, proto=4, keepalive=60, clean=True, will=None, username=None, props=b"\x00",
                will_props=b"\x00"):
    flags = 0x02 if clean else 0
    payload = s16(clientid)
    if will:
        topic, msg, qos, retain = will
        flags |= 0x04 | (qos << 3) | (0x20 if retain else 0)
        payload += (will_props if proto == 5 else b"") + s16(topic) + s16(msg)
    if username is not None:
        flags |= 0x80
        payload += s16(username)
    vh = s16("MQTT") + bytes((proto, flags)) + struct.pack("!H", keepalive) + (props if proto == 5 else b"")
    return packet(0x10, vh + payload)


def subscribe_pkt(pid, topic, qos, proto=4):
    return packet(0x82, struct.pack("!H", pid) + (b"\x00" if proto == 5 else b"") + s16(topic) + bytes((qos,)))


def publish_pkt(topic, payload, qos=0, pid=None, dup=False, retain=False, proto=4, props=b"\x00"):
    body = s16(topic) + (struct.pack("!H", pid) if qos else b"") + (props if proto == 5 else b"") + payload
    return packet(0x30 | (qos << 1) | (0x08 if dup else 0) | (0x01 if retain else 0), body)


class RawClient:
    def __init__(self, port, prefix=b"", sock=None):
        self.sock = sock or socket.create_connection((HOST, port), timeout=WAIT)
        self.sock.settimeout(WAIT)
        self.buf = b""
        if prefix:
            self.sock.sendall(prefix)

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise AssertionError("timed out waiting for data") from None
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise EOFError
        self.buf += chunk

    def read(self, timeout=WAIT):
        """-> (type, flags, body); raises EOFError when the broker closed the connection."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 2:
                n, mult, i = 0, 1, 1
                while i < len(self.buf):
                    b = self.buf[i]
                    n += (b & 0x7F) * mult
                    mult <<= 7
                    i += 1
                    if not b & 0x80:
                        if len(self.buf) >= i + n:
                            first = self.buf[0]
                            body = self.buf[i:i + n]
                            self.buf = self.buf[i + n:]
                            return first >> 4, first & 0x0F, body
                        break
            self._fill(deadline)

    def expect_closed(self, timeout=WAIT):
        """Read until EOF; return the packets received before it."""
        got = []
        try:
            while True:
                got.append(self.read(timeout))
        except EOFError:
            return got

    def connect(self, clientid, **kw):
        self.send(connect_pkt(clientid, **kw))
        t, _f, body = self.read()
        assert t == 2, "expected CONNACK, got type %d" % t
        return body

    def close(self):
        self.sock.close()


def is_closed_quickly(sock, timeout=2.0):
    sock.settimeout(timeout)
    try:
        data = sock.recv(1024)
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    return data == b""


# =============================================================================================
# MQTT basics
# =============================================================================================
def test_connect_v311_and_v5_and_assigned_clientid(broker, paho):
    port = broker.port()
    c4 = paho(port, "c-v311", proto=4)
    c5 = paho(port, "c-v5", proto=5)
    anon = paho(port, "", proto=5)
    assigned = anon.connack_props.AssignedClientIdentifier
    assert assigned
    info = {c["clientid"]: c for c in broker.clients()}
    assert info["c-v311"]["proto_ver"] == 4 and info["c-v311"]["proto_name"] == "MQTT"
    assert info["c-v5"]["proto_ver"] == 5
    assert info["c-v5"]["connected"] is True and info["c-v5"]["listener"] == "tcp:default"
    assert info["c-v5"]["ip_address"] == "127.0.0.1" and info["c-v5"]["node"] == NODE
    assert info["c-v5"]["connected_at"][:4].isdigit() and "T" in info["c-v5"]["connected_at"]
    assert assigned in info
    # MQTT 3.1 (MQIsdp) is accepted too
    c3 = paho(port, "c-v31", proto=3)
    assert broker.client("c-v31")["proto_ver"] == 3
    for c in (c4, c5, anon, c3):
        c.close()
    broker.wait_for(lambda: not broker.clients(), what="clients gone")


def test_raw_connect_unsupported_version_and_empty_id_v311(broker):
    port = broker.port()
    r = RawClient(port)
    body = r.connect("", proto=4, clean=False)
    assert body == b"\x00\x02"  # identifier rejected
    assert r.expect_closed() == []
    r = RawClient(port)
    r.send(packet(0x10, s16("MQTT") + bytes((9, 2)) + b"\x00\x3c" + s16("x")))
    t, _f, body = r.read()
    assert t == 2 and body == b"\x00\x01"  # unacceptable protocol version
    # a packet other than CONNECT first is a protocol error: closed, nothing registered
    r = RawClient(port)
    r.send(b"\xc0\x00")
    assert r.expect_closed() == []
    assert broker.clients() == []


def test_wildcards_and_dollar_topics(broker, paho):
    port = broker.port()
    plus = paho(port, "plus")
    hash_ = paho(port, "hash")
    allc = paho(port, "all")
    sysc = paho(port, "sys")
    assert plus.sub("w/+/t", 1)[0].value == 1
    hash_.sub("w/#", 1)
    allc.sub("#", 1)
    sysc.sub("$SYS/#", 1)
    pub = paho(port, "pub-w", proto=4)
    for t in ("w/x/t", "w/x/y/t", "w", "$SYS/brokers/x"):
        pub.pub(t, t.encode(), qos=1)
    time.sleep(0.3)
    assert sorted(m.topic for m in plus.drain()) == ["w/x/t"]
    assert sorted(m.topic for m in hash_.drain()) == ["w", "w/x/t", "w/x/y/t"]
    assert sorted(m.topic for m in allc.drain()) == ["w", "w/x/t", "w/x/y/t"]  # no $SYS via '#'
    assert [m.topic for m in sysc.drain()] == ["$SYS/brokers/x"]
    assert broker.call(broker.broker.subscriptions_count) == 4
    # invalid filter -> failure return code (paho refuses to send one, so raw)
    r = RawClient(port)
    r.connect("bad-filter")
    r.send(subscribe_pkt(9, "bad/#/x", 0))
    assert r.read() == (9, 0, b"\x00\x09\x80")
    r5 = RawClient(port)
    r5.connect("bad-filter5", proto=5)
    r5.send(subscribe_pkt(9, "bad/#/x", 0, proto=5))
    assert r5.read() == (9, 0, b"\x00\x09\x00\x8f")
    r.close()
    r5.close()


def test_unsubscribe(broker, paho):
    port = broker.port()
    s = paho(port, "unsub")
    s.sub("u/1", 1)
    p = paho(port, "unsub-pub")
    p.pub("u/1", b"one", qos=1)
    m = s.get()
    assert m is not None and m.payload == b"one"
    res, mid = s.c.unsubscribe("u/1")
    assert res == 0
    broker.wait_for(lambda: broker.client("unsub")["subscriptions_cnt"] == 0, what="unsubscribed")
    p.pub("u/1", b"two", qos=1)
    assert s.drain(0.4) == []


@pytest.mark.parametrize("proto", [4, 5])
def test_qos_round_trip_and_downgrade(broker, paho, proto):
    port = broker.port()
    s2 = paho(port, "q-sub2-%d" % proto, proto=proto)
    s0 = paho(port, "q-sub0-%d" % proto, proto=proto)
    s2.sub("q/t", 2)
    s0.sub("q/t", 0)
    p = paho(port, "q-pub-%d" % proto, proto=proto)
    for qos in (0, 1, 2):
        p.pub("q/t", b"m%d" % qos, qos=qos)
    got2 = s2.drain(0.5)
    got0 = s0.drain(0.1)
    assert [(m.payload, m.qos) for m in got2] == [(b"m0", 0), (b"m1", 1), (b"m2", 2)]
    assert [(m.payload, m.qos) for m in got0] == [(b"m0", 0), (b"m1", 0), (b"m2", 0)]


def test_qos2_no_duplicates_both_directions(broker, paho):
    port = broker.port()
    # raw subscriber checks the outgoing QoS 2 flow byte by byte
    sub = RawClient(port)
    sub.connect("raw-q2-sub")
    sub.send(subscribe_pkt(1, "d/t", 2))
    t, _f, body = sub.read()
    assert t == 9 and body == b"\x00\x01\x02"
    watcher = paho(port, "q2-watch")
    watcher.sub("d/t", 2)
    # raw publisher sends the same QoS 2 packet twice (second with DUP) before PUBREL
    pub = RawClient(port)
    pub.connect("raw-q2-pub")
    pub.send(publish_pkt("d/t", b"once", qos=2, pid=7))
    assert pub.read() == (5, 0, b"\x00\x07")  # PUBREC
    pub.send(publish_pkt("d/t", b"once", qos=2, pid=7, dup=True))
    assert pub.read() == (5, 0, b"\x00\x07")  # PUBREC again, no second delivery
    pub.send(packet(0x62, b"\x00\x07"))       # PUBREL
    assert pub.read() == (7, 0, b"\x00\x07")  # PUBCOMP
    # subscriber side: exactly one PUBLISH, then PUBREC -> PUBREL -> PUBCOMP
    t, flags, body = sub.read()
    assert t == 3 and (flags >> 1) & 3 == 2
    tl = struct.unpack("!H", body[:2])[0]
    assert body[2:2 + tl] == b"d/t"
    spid = body[2 + tl:4 + tl]
    assert body[4 + tl:] == b"once"
    sub.send(packet(0x50, spid))             # PUBREC
    assert sub.read() == (6, 2, spid)        # PUBREL
    sub.send(packet(0x70, spid))             # PUBCOMP
    with pytest.raises(AssertionError):      # nothing else arrives
        sub.read(timeout=0.4)
    assert [m.payload for m in watcher.drain(0.1)] == [b"once"]
    # the same packet id can be used again after PUBCOMP
    pub.send(publish_pkt("d/t", b"again", qos=2, pid=7))
    assert pub.read() == (5, 0, b"\x00\x07")
    pub.send(packet(0x62, b"\x00\x07"))
    assert pub.read() == (7, 0, b"\x00\x07")
    assert [m.payload for m in watcher.drain(0.3)] == [b"again"]
    assert len(broker.forwarded) == 2
    sub.close()
    pub.close()


def test_retained_late_subscriber_and_clear(broker, paho):
    port = broker.port()
    p = paho(port, "ret-pub")
    p.pub("r/a", b"kept", qos=1, retain=True)
    p.pub("r/b", b"other", qos=0, retain=True)
    late = paho(port, "ret-late")
    late.sub("r/a", 1)
    m = late.get()
    assert m is not None and m.payload == b"kept" and m.retain and m.qos == 1
    # a live (non-retained) delivery has the retain flag cleared
    p.pub("r/a", b"kept2", qos=1, retain=True)
    m = late.get()
    assert m is not None and m.payload == b"kept2" and not m.retain
    assert broker.call(broker.broker.retained_count) == 2
    p.pub("r/a", b"", qos=1, retain=True)  # clears
    broker.wait_for(lambda: broker.call(broker.broker.retained_count) == 1, what="retained cleared")
    later = paho(port, "ret-later")
    later.sub("r/#", 1)
    got = later.drain(0.5)
    assert [(m.topic, m.payload, m.retain) for m in got] == [("r/b", b"other", True)]


def test_will_on_abnormal_close_not_on_disconnect(broker, paho):
    port = broker.port()
    watcher = paho(port, "will-watch")
    watcher.sub("will/#", 1)
    # abnormal: socket closed without DISCONNECT
    r = RawClient(port)
    r.connect("will-raw", will=("will/raw", b"gone", 1, False))
    r.close()
    m = watcher.get()
    assert m is not None and m.topic == "will/raw" and m.payload == b"gone"
    # clean DISCONNECT: no will
    c = paho(port, "will-clean", proto=4, will=("will/clean", b"should-not", 1, False))
    c.close()
    # MQTT 5 DISCONNECT with reason 0x04: will is published
    c5 = paho(port, "will-04", proto=5, will=("will/04", b"with-will", 1, False))
    c5.close(reasoncode=ReasonCode(PacketTypes.DISCONNECT, identifier=4))
    got = watcher.drain(0.6)
    assert [(m.topic, m.payload) for m in got] == [("will/04", b"with-will")]
    # will messages are local publishes too: forwarded to the cluster
    assert sorted(m.topic for m in broker.forwarded) == ["will/04", "will/raw"]


def test_keepalive_timeout(broker, paho):
    port = broker.port()
    watcher = paho(port, "ka-watch")
    watcher.sub("ka/will", 0)
    r = RawClient(port)
    r.connect("ka-1", keepalive=1, will=("ka/will", b"timeout", 0, False))
    t0 = time.monotonic()
    assert r.expect_closed(timeout=4) == []
    elapsed = time.monotonic() - t0
    assert 1.2 <= elapsed <= 3.0, elapsed
    m = watcher.get()
    assert m is not None and m.payload == b"timeout"
    assert "keepalive_timeout" in broker.log_text()
    # PINGREQ keeps a connection alive
    r = RawClient(port)
    r.connect("ka-2", keepalive=1)
    for _ in range(4):
        time.sleep(0.5)
        r.send(b"\xc0\x00")
        assert r.read() == (13, 0, b"")
    assert broker.client("ka-2") is not None
    r.close()


def test_session_takeover(broker, paho):
    port = broker.port()
    first = RawClient(port)
    assert first.connect("same-id", proto=5)[1] == 0
    first.send(subscribe_pkt(1, "to/t", 1, proto=5))
    assert first.read()[0] == 9
    first_port = first.sock.getsockname()[1]
    assert broker.client("same-id")["port"] == first_port
    second = paho(port, "same-id", proto=5, clean=True)
    pkts = first.expect_closed()
    assert pkts and pkts[0][0] == 14 and pkts[0][2][0] == 0x8E  # DISCONNECT, session taken over
    clients = [c for c in broker.clients() if c["clientid"] == "same-id"]
    assert len(clients) == 1
    assert clients[0]["port"] == second.c.socket().getsockname()[1]
    assert clients[0]["subscriptions_cnt"] == 0  # clean start discarded the old session
    first.close()


def test_persistent_session_resumed(broker, paho):
    port = broker.port()
    c = paho(port, "persist", proto=4, clean=False)
    c.sub("ps/t", 1)
    c.close()
    broker.wait_for(lambda: broker.client("persist") is None, what="disconnect")
    p = paho(port, "persist-pub")
    p.pub("ps/t", b"while-away-1", qos=1)
    p.pub("ps/t", b"while-away-2", qos=1)
    c2 = paho(port, "persist", proto=4, clean=False)
    assert c2.connack_flags.session_present
    got = c2.drain(0.5)
    assert [m.payload for m in got] == [b"while-away-1", b"while-away-2"]


@pytest.mark.parametrize("strict", [False, True])
def test_fixed_header_flags_are_checked_only_in_strict_mode(make_broker, strict):
    # SUBSCRIBE with flags 0000 instead of 0010, as tsung 1.7's MQTT plugin sends it: EMQX 5.8.9 takes it unless
    # mqtt.strict_mode is on (emqx_frame.erl parse/2, validate_header/4).
    h = make_broker(mqtt_conf={"strict_mode": True} if strict else None)
    r = RawClient(h.port())
    assert r.connect("flags") == b"\x00\x00"
    r.send(packet(0x80, b"\x00\x01" + s16("t/flags") + b"\x00"))
    if strict:
        assert r.expect_closed() == []
        assert "bad_frame_header" in h.log_text()
    else:
        t, _f, body = r.read()
        assert t == 9 and body == b"\x00\x01\x00"  # SUBACK, packet id 1, granted QoS 0
        r.close()


def test_max_connections(make_broker):
    h = make_broker({"tcp": {"default": tcp_listener(max_connections=3)}})
    port = h.port()
    held = []
    for i in range(3):
        r = RawClient(port)
        assert r.connect("mc-%d" % i) == b"\x00\x00"
        held.append(r)
    # the 4th connection is accepted by the kernel and reset by the broker at once; the reset may already
    # be seen by connect() when this thread runs late
    try:
        extra = socket.create_connection((HOST, port), timeout=WAIT)
    except ConnectionResetError:
        pass
    else:
        try:
            extra.sendall(connect_pkt("mc-extra"))
        except OSError:
            pass
        assert is_closed_quickly(extra)
        extra.close()
    assert len(h.clients()) == 3
    assert "max_connections_reached" in h.log_text()
    held.pop().close()
    listener = h.broker._listeners[0]
    h.wait_for(lambda: len(h.clients()) == 2 and listener.count == 2, what="slot freed")
    r = RawClient(port)
    assert r.connect("mc-again") == b"\x00\x00"
    for r in held + [r]:
        r.close()


def test_max_packet_size(make_broker):
    h = make_broker(mqtt_conf={"max_packet_size": 1024})
    port = h.port()
    r = RawClient(port)
    body = r.connect("big-5", proto=5)
    assert body[:2] == b"\x00\x00"
    assert b"\x27\x00\x00\x04\x00" in body  # CONNACK Maximum-Packet-Size 1024
    r.send(publish_pkt("big/t", b"x" * 900, proto=5))   # fits
    r.send(b"\xc0\x00")
    assert r.read() == (13, 0, b"")
    r.send(publish_pkt("big/t", b"x" * 2000, proto=5))  # too large
    assert r.expect_closed() == [(14, 0, b"\x95")]
    r = RawClient(port)
    r.connect("big-4")
    r.send(publish_pkt("big/t", b"x" * 2000))
    assert r.expect_closed() == []
    assert h.clients() == []


def test_bind_failure_names_listener(broker, make_broker):
    port = broker.port()
    with pytest.raises(OSError) as ei:
        make_broker({"tcp": {"default": tcp_listener(bind="127.0.0.1:%d" % port)}})
    assert "tcp:default" in str(ei.value) and "eaddrinuse" in str(ei.value)


def test_disabled_and_deleted_listeners_not_started(make_broker):
    h = make_broker({"tcp": {"default": tcp_listener(), "off": tcp_listener(enable=False)},
                     "ssl": {"default": "marked_for_deletion"}})
    assert list(h.call(h.broker.listener_ports)) == ["tcp:default"]
    assert any("Listener tcp:default on 127.0.0.1:" in t for _l, t in h.logs)


def test_mqtt5_no_local_subscription_id_shared_topic_alias(broker, paho):
    from paho.mqtt.subscribeoptions import SubscribeOptions
    port = broker.port()
    me = paho(port, "v5-me")
    res, mid = me.c.subscribe("nl/t", options=SubscribeOptions(qos=1, noLocal=True))
    other = paho(port, "v5-other")
    sp = Properties(PacketTypes.SUBSCRIBE)
    sp.SubscriptionIdentifier = 42
    res, mid2 = other.c.subscribe("nl/#", options=SubscribeOptions(qos=1), properties=sp)
    broker.wait_for(lambda: mid in me.subacks and mid2 in other.subacks, what="subacks")
    me.pub("nl/t", b"mine", qos=1)
    m = other.get()
    assert m is not None and m.payload == b"mine" and m.properties.SubscriptionIdentifier == [42]
    assert me.drain(0.3) == []  # No Local: not echoed to the publisher
    # shared subscription: each message goes to exactly one member of the group
    g1, g2 = paho(port, "g1"), paho(port, "g2")
    g1.sub("$share/grp/sh/t", 1)
    g2.sub("$share/grp/sh/t", 1)
    for i in range(6):
        other.pub("sh/t", b"%d" % i, qos=1)
    a = [m.payload for m in g1.drain(0.5)]
    b = [m.payload for m in g2.drain(0.1)]
    assert sorted(a + b) == [b"%d" % i for i in range(6)] and a and b
    # topic alias from the client (raw): first PUBLISH sets alias 3, second uses it with an empty topic
    r = RawClient(port)
    r.connect("v5-alias", proto=5)
    alias = props5(b"\x23\x00\x03")
    r.send(publish_pkt("nl/alias", b"first", proto=5, props=alias))
    r.send(publish_pkt("", b"second", proto=5, props=alias))
    got = [(m.topic, m.payload) for m in other.drain(0.4)]
    assert got == [("nl/alias", b"first"), ("nl/alias", b"second")]
    r.close()


def test_will_delay_and_session_expiry(broker, paho):
    port = broker.port()
    watcher = paho(port, "wd-watch")
    watcher.sub("wd/#", 0)
    r = RawClient(port)
    # session expiry 30 s, will delay 1 s
    r.connect("wd-1", proto=5, props=props5(b"\x11" + struct.pack("!I", 30)),
              will=("wd/late", b"delayed", 0, False), will_props=props5(b"\x18" + struct.pack("!I", 1)))
    t0 = time.monotonic()
    r.close()
    m = watcher.get(timeout=3)
    assert m is not None and m.payload == b"delayed"
    assert time.monotonic() - t0 >= 0.8
    assert any(c["clientid"] == "wd-1" and not c["connected"]
               for c in broker.call(broker.broker.clients, True))  # session kept (expiry 30 s)
    # reconnecting within the delay cancels the will
    r = RawClient(port)
    r.connect("wd-2", proto=5, props=props5(b"\x11" + struct.pack("!I", 30)),
              will=("wd/never", b"x", 0, False), will_props=props5(b"\x18" + struct.pack("!I", 1)))
    r.close()
    time.sleep(0.2)
    r = RawClient(port)
    body = r.connect("wd-2", proto=5, clean=False, props=props5(b"\x11" + struct.pack("!I", 30)))
    assert body[:2] == b"\x01\x00"  # session present
    assert watcher.drain(1.3) == []
    r.close()


def test_kick_and_api_publish(broker, paho):
    port = broker.port()
    s = paho(port, "api-sub")
    s.sub("api/t", 1)
    broker.call(broker.broker.publish, Message("api/t", b"from-api", 1, False))
    m = s.get()
    assert m is not None and m.payload == b"from-api"
    assert [f.topic for f in broker.forwarded] == ["api/t"]
    r = RawClient(port)
    r.connect("to-kick", proto=5)
    assert broker.call(broker.broker.kick, "to-kick") is True
    pkts = r.expect_closed()
    assert pkts == [(14, 0, b"\x98")]
    assert broker.call(broker.broker.kick, "nobody") is False


# =============================================================================================
# PROXY protocol
# =============================================================================================
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v2(src, dst, sport, dport, cn=None, local=False, six=False):
    if local:
        return V2_SIG + bytes((0x20, 0x00)) + b"\x00\x00"
    if six:
        addrs = socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
        fam = 0x21
    else:
        addrs = socket.inet_aton(src) + socket.inet_aton(dst)
        fam = 0x11
    addrs += struct.pack("!HH", sport, dport)
    tlvs = b""
    if cn is not None:
        cnb = cn.encode()
        sub = bytes((0x21,)) + struct.pack("!H", 7) + b"TLSv1.3" + bytes((0x22,)) + struct.pack("!H", len(cnb)) + cnb
        ssl_val = bytes((0x07,)) + struct.pack("!I", 0) + sub  # client: SSL|CERT_CONN|CERT_SESS, verify ok
        tlvs += bytes((0x20,)) + struct.pack("!H", len(ssl_val)) + ssl_val
    tlvs += bytes((0x04,)) + struct.pack("!H", 3) + b"\x00\x00\x00"  # NOOP
    body = addrs + tlvs
    return V2_SIG + bytes((0x21, fam)) + struct.pack("!H", len(body)) + body


@pytest.fixture
def proxy_broker(make_broker):
    return make_broker({"tcp": {"default": tcp_listener(proxy_protocol=True, proxy_protocol_timeout=0.5)}},
                       {"peer_cert_as_username": "cn"})


def test_proxy_v1_tcp4_tcp6_unknown(proxy_broker, paho):
    h = proxy_broker
    port = h.port()
    # header and CONNECT in one segment: the broker must not over-read
    r4 = RawClient(port)
    r4.send(b"PROXY TCP4 1.2.3.4 5.6.7.8 1111 1883\r\n" + connect_pkt("pp-v1-4"))
    assert r4.read() == (2, 0, b"\x00\x00")
    # header split over several segments
    r6 = RawClient(port)
    hdr = b"PROXY TCP6 2001:db8::1 2001:db8::2 4444 1883\r\n"
    r6.send(hdr[:9])
    time.sleep(0.05)
    r6.send(hdr[9:30])
    time.sleep(0.05)
    r6.send(hdr[30:] + connect_pkt("pp-v1-6"))
    assert r6.read() == (2, 0, b"\x00\x00")
    ru = RawClient(port, prefix=b"PROXY UNKNOWN\r\n")
    ru.connect("pp-v1-unknown")
    c4, c6, cu = h.client("pp-v1-4"), h.client("pp-v1-6"), h.client("pp-v1-unknown")
    assert (c4["ip_address"], c4["port"]) == ("1.2.3.4", 1111)
    assert (c6["ip_address"], c6["port"]) == ("2001:db8::1", 4444)
    assert cu["ip_address"] == "127.0.0.1" and cu["port"] == ru.sock.getsockname()[1]
    # proxied client does real MQTT: subscribe and receive
    r4.send(subscribe_pkt(3, "pp/t", 0))
    assert r4.read() == (9, 0, b"\x00\x03\x00")
    # EMQX's default ACL: "#" only from 127.0.0.1; the device address here is 1.2.3.4
    r4.send(subscribe_pkt(4, "#", 0))
    assert r4.read() == (9, 0, b"\x00\x04\x80")
    ru.send(publish_pkt("pp/t", b"via-proxy"))
    t, _f, body = r4.read()
    assert t == 3 and body.endswith(b"via-proxy")
    for r in (r4, r6, ru):
        r.close()
    assert "recv_proxy_info_error" not in h.log_text()


def test_proxy_v2_with_ssl_cn_and_paho(proxy_broker, paho):
    h = proxy_broker
    port = h.port()
    r = RawClient(port, prefix=proxy_v2("10.1.2.3", "10.0.0.1", 40000, 1883, cn="device-007"))
    r.connect("pp-v2", username="ignored")
    c = h.client("pp-v2")
    assert (c["ip_address"], c["port"]) == ("10.1.2.3", 40000)
    assert c["peercert_cn"] == "device-007"
    assert c["username"] == "device-007"  # peer_cert_as_username = cn
    r6 = RawClient(port, prefix=proxy_v2("2001:db8::7", "2001:db8::1", 5555, 1883, six=True))
    r6.connect("pp-v2-6")
    c6 = h.client("pp-v2-6")
    assert (c6["ip_address"], c6["port"], c6["peercert_cn"]) == ("2001:db8::7", 5555, None)

    class ProxiedClient(mqtt.Client):
        def _create_socket_connection(self):
            sock = super()._create_socket_connection()
            sock.sendall(proxy_v2("192.0.2.9", "10.0.0.1", 12345, 1883, cn="paho-cn"))
            return sock

    sub = paho(port, "pp-paho", client_cls=ProxiedClient)
    sub.sub("ppp/t", 1)
    c = h.client("pp-paho")
    assert (c["ip_address"], c["port"], c["peercert_cn"]) == ("192.0.2.9", 12345, "paho-cn")
    r.send(publish_pkt("ppp/t", b"hello", qos=1, pid=1))
    assert r.read() == (4, 0, b"\x00\x01")
    m = sub.get()
    assert m is not None and m.payload == b"hello"
    r.close()
    r6.close()


def test_proxy_v2_local_health_check_is_quiet(proxy_broker):
    h = proxy_broker
    port = h.port()
    s = socket.create_connection((HOST, port), timeout=WAIT)
    s.sendall(proxy_v2(None, None, 0, 0, local=True))
    time.sleep(0.1)
    s.close()
    r = RawClient(port, prefix=proxy_v2(None, None, 0, 0, local=True))
    r.connect("pp-local")
    c = h.client("pp-local")
    assert c["ip_address"] == "127.0.0.1" and c["port"] == r.sock.getsockname()[1]
    r.close()
    time.sleep(0.7)  # longer than proxy_protocol_timeout
    assert "recv_proxy_info_error" not in h.log_text()
    assert not any(level == "error" for level, _t in h.logs), h.log_text()


def test_proxy_protocol_on_ws_and_ssl_listeners(make_broker, certs):
    h = make_broker({"ws": {"default": ws_listener(proxy_protocol=True)},
                     "ssl": {"default": dict(ssl_listener(certs), proxy_protocol=True)}})
    # ws: PROXY v1 header, then the HTTP upgrade, then MQTT in a WebSocket frame
    s = socket.create_connection((HOST, h.port("ws:default")), timeout=WAIT)
    s.sendall(b"PROXY TCP4 198.51.100.7 10.0.0.1 3333 8083\r\n"
              b"GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
              b"Sec-WebSocket-Protocol: mqtt\r\n\r\n" + _ws_frame(0x2, connect_pkt("pp-ws")))
    data = b""
    while b"\x82\x04\x20\x02\x00\x00" not in data:
        chunk = s.recv(4096)
        assert chunk, data
        data += chunk
    c = h.client("pp-ws")
    assert (c["ip_address"], c["port"]) == ("198.51.100.7", 3333)
    # ssl: PROXY v2 header in clear, then the TLS handshake
    raw = socket.create_connection((HOST, h.port("ssl:default")), timeout=WAIT)
    raw.sendall(proxy_v2("198.51.100.8", "10.0.0.1", 4444, 8883))
    t = tls_client_ctx(certs, client_cert=False).wrap_socket(raw, server_hostname="127.0.0.1")
    r = RawClient(None, sock=t)
    assert r.connect("pp-ssl") == b"\x00\x00"
    c = h.client("pp-ssl")
    assert (c["ip_address"], c["port"], c["listener"]) == ("198.51.100.8", 4444, "ssl:default")
    r.close()
    s.close()


def test_proxy_header_required_when_enabled(proxy_broker):
    h = proxy_broker
    port = h.port()
    r = RawClient(port)
    r.send(connect_pkt("no-header"))
    assert r.expect_closed() == []
    # plain TCP check that sends nothing: closed after proxy_protocol_timeout (0.5 s)
    s = socket.create_connection((HOST, port), timeout=WAIT)
    t0 = time.monotonic()
    assert is_closed_quickly(s, timeout=3)
    assert 0.3 <= time.monotonic() - t0 < 2.0
    s.close()
    # a garbled header
    r = RawClient(port, prefix=b"PROXY TCP4 1.2.3 5.6.7.8 x y\r\n")
    assert r.expect_closed() == []
    assert h.clients() == []
    errors = [t for level, t in h.logs if "recv_proxy_info_error" in t]
    assert len(errors) == 3, h.log_text()
    assert any("timeout" in t for t in errors)


def test_proxy_header_refused_when_disabled(broker):
    port = broker.port()
    for hdr in (b"PROXY TCP4 1.2.3.4 5.6.7.8 1111 1883\r\n", proxy_v2("1.2.3.4", "5.6.7.8", 1111, 1883)):
        r = RawClient(port, prefix=hdr + connect_pkt("should-not-connect"))
        assert r.expect_closed() == []
    assert broker.clients() == []
    assert "PROXY protocol header" in broker.log_text()


# =============================================================================================
# TLS
# =============================================================================================
def _openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.skip("openssl CLI not installed")
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Standin Test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             cwd=d)
    for name, cn, san, eku in (("server", "localhost", "IP:127.0.0.1,DNS:localhost", "serverAuth"),
                               ("client", "device-42", "DNS:device-42", "clientAuth")):
        (d / (name + ".ext")).write_text(
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=%s\nsubjectAltName=%s\nsubjectKeyIdentifier=hash\n"
            "authorityKeyIdentifier=keyid\n" % (eku, san))
        _openssl("req", *ec, "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/O=Standin/CN=" + cn, cwd=d)
        _openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", name + ".pem", "-days", "2", "-extfile", name + ".ext", cwd=d)
    return {"ca": str(d / "ca.pem"), "cert": str(d / "server.pem"), "key": str(d / "server.key"),
            "client_cert": str(d / "client.pem"), "client_key": str(d / "client.key")}


def ssl_listener(certs, **kw):
    conf = tcp_listener()
    conf["ssl_options"] = {"certfile": certs["cert"], "keyfile": certs["key"], "cacertfile": certs["ca"],
                           "verify": "verify_none", "fail_if_no_peer_cert": False,
                           "versions": ["tlsv1.3", "tlsv1.2"]}
    conf["ssl_options"].update(kw)
    return conf


def tls_client_ctx(certs, minv=None, maxv=None, client_cert=True):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(certs["ca"])
    if client_cert:
        ctx.load_cert_chain(certs["client_cert"], certs["client_key"])
    if minv or maxv:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    if minv:
        ctx.minimum_version = minv
    if maxv:
        ctx.maximum_version = maxv
    return ctx


def tls_raw(port, ctx):
    s = socket.create_connection((HOST, port), timeout=WAIT)
    try:
        return ctx.wrap_socket(s, server_hostname="127.0.0.1")
    except BaseException:
        s.close()
        raise


def test_tls_listener_paho_verifies_ca_and_records_cn(make_broker, paho, certs):
    h = make_broker({"ssl": {"default": ssl_listener(certs, verify="verify_peer", fail_if_no_peer_cert=True)}},
                    {"peer_cert_as_username": "cn"})
    port = h.port("ssl:default")
    tls = {"ca_certs": certs["ca"], "certfile": certs["client_cert"], "keyfile": certs["client_key"]}
    c = paho(port, "tls-1", tls=tls)
    c.sub("tls/t", 1)
    c.pub("tls/t", b"secure", qos=1)
    m = c.get()
    assert m is not None and m.payload == b"secure"
    info = h.client("tls-1")
    assert info["peercert_cn"] == "device-42" and info["username"] == "device-42"
    assert info["listener"] == "ssl:default"
    # fail_if_no_peer_cert: a client without a certificate is refused
    try:
        s = tls_raw(port, tls_client_ctx(certs, client_cert=False))
        s.sendall(connect_pkt("tls-nocert"))  # TLS 1.3: the refusal may arrive after the handshake
        refused = s.recv(10) == b""
        s.close()
    except (ssl.SSLError, ConnectionError):
        refused = True
    assert refused, "server accepted a client without certificate"
    assert h.client("tls-nocert") is None
    # paho refuses a server whose CA it does not trust
    other = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="tls-untrusted", protocol=mqtt.MQTTv5)
    other.tls_set(ca_certs=certs["client_cert"])
    with pytest.raises(ssl.SSLError):
        other.connect(HOST, port, 10)


def test_tls_versions_enforced(make_broker, certs):
    h = make_broker({"ssl": {"default": ssl_listener(certs), "only12": ssl_listener(certs, versions=["tlsv1.2"])}})
    p_default, p_12 = h.port("ssl:default"), h.port("ssl:only12")
    V = ssl.TLSVersion
    # TLS 1.1 client refused by versions = [tlsv1.3, tlsv1.2]
    with pytest.raises((ssl.SSLError, ConnectionError)):
        tls_raw(p_default, tls_client_ctx(certs, minv=V.TLSv1_1, maxv=V.TLSv1_1)).close()
    for v in (V.TLSv1_2, V.TLSv1_3):
        s = tls_raw(p_default, tls_client_ctx(certs, minv=v, maxv=v))
        assert s.version() == {V.TLSv1_2: "TLSv1.2", V.TLSv1_3: "TLSv1.3"}[v]
        r = RawClient(None, sock=s)
        assert r.connect("tls-v-%s" % s.version()) == b"\x00\x00"
        r.close()
    # versions = [tlsv1.2]: a TLS 1.3-only client is refused, 1.2 works
    with pytest.raises((ssl.SSLError, ConnectionError)):
        tls_raw(p_12, tls_client_ctx(certs, minv=V.TLSv1_3)).close()
    s = tls_raw(p_12, tls_client_ctx(certs))
    assert s.version() == "TLSv1.2"
    s.close()
    assert "ssl_handshake_failed" in h.log_text()


# =============================================================================================
# WebSocket
# =============================================================================================
def ws_listener(**kw):
    conf = tcp_listener(**kw)
    conf.setdefault("websocket", {"mqtt_path": "/mqtt", "proxy_address_header": "x-forwarded-for"})
    return conf


def test_ws_paho_round_trip_and_forwarded_for(make_broker, paho):
    h = make_broker({"tcp": {"default": tcp_listener()}, "ws": {"default": ws_listener()}})
    ws_port, tcp_port = h.port("ws:default"), h.port("tcp:default")
    w = paho(ws_port, "ws-1", transport="websockets", ws_headers={"X-Forwarded-For": "203.0.113.5, 10.0.0.2"})
    w4 = paho(ws_port, "ws-2", transport="websockets", proto=4)
    w.sub("ws/#", 2)
    t = paho(tcp_port, "ws-tcp")
    t.pub("ws/a", b"to-ws", qos=2)
    w4.pub("ws/b", b"x" * 70000, qos=1)  # > 65535: 64-bit WebSocket length
    got = [w.get(), w.get()] + w.drain(0.2)
    assert None not in got, "a message did not arrive"
    # Two publishers: MQTT orders messages per publisher only, so compare the set that arrived.
    assert sorted((m.topic, m.payload[:5], len(m.payload)) for m in got) == [("ws/a", b"to-ws", 5), ("ws/b", b"xxxxx", 70000)]
    info = h.client("ws-1")
    assert info["ip_address"] == "203.0.113.5" and info["listener"] == "ws:default"
    assert h.client("ws-2")["ip_address"] == "127.0.0.1"
    # wrong path -> 404
    s = socket.create_connection((HOST, ws_port), timeout=WAIT)
    s.sendall(b"GET /other HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
              b"Sec-WebSocket-Protocol: mqtt\r\n\r\n")
    assert s.recv(100).startswith(b"HTTP/1.1 404")
    s.close()


def _ws_frame(opcode, payload, fin=True, mask=b"\x11\x22\x33\x44"):
    n = len(payload)
    head = bytes(((0x80 if fin else 0) | opcode,))
    head += bytes((0x80 | n,)) if n < 126 else bytes((0x80 | 126,)) + struct.pack("!H", n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


def test_ws_raw_fragmentation_ping_close(make_broker, paho):
    h = make_broker({"ws": {"default": ws_listener()}})
    port = h.port("ws:default")
    s = socket.create_connection((HOST, port), timeout=WAIT)
    s.sendall(b"GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
              b"Sec-WebSocket-Protocol: mqtt\r\n\r\n")
    resp = b""
    while b"\r\n\r\n" not in resp:
        chunk = s.recv(4096)
        assert chunk
        resp += chunk
    head, _sep, rest = resp.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    assert b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head  # RFC 6455 example accept key
    assert b"sec-websocket-protocol: mqtt" in head.lower()
    conn = connect_pkt("ws-raw", will=("wsraw/will", b"bye", 0, False))
    # CONNECT split over a binary frame + continuation frame, with a ping in between
    s.sendall(_ws_frame(0x2, conn[:7], fin=False) + _ws_frame(0x9, b"hi") + _ws_frame(0x0, conn[7:]))
    data = rest
    while len(data) < 10:
        chunk = s.recv(4096)
        assert chunk
        data += chunk
    assert data[:4] == b"\x8a\x02hi"      # pong first (control frames may interleave)
    assert data[4:10] == b"\x82\x04\x20\x02\x00\x00"  # binary frame with CONNACK
    watcher = paho(port, "ws-watch", transport="websockets")
    watcher.sub("wsraw/will", 0)
    # WebSocket close without MQTT DISCONNECT: the will goes out
    s.sendall(_ws_frame(0x8, struct.pack("!H", 1000)))
    reply = data[10:]
    while len(reply) < 2:
        chunk = s.recv(4096)
        if not chunk:
            break
        reply += chunk
    assert reply[:1] == b"\x88"
    s.close()
    m = watcher.get()
    assert m is not None and m.payload == b"bye"


def test_wss_paho(make_broker, paho, certs):
    wss = ssl_listener(certs)
    wss["websocket"] = {"mqtt_path": "/mqtt"}
    h = make_broker({"wss": {"default": wss}})
    port = h.port("wss:default")
    c = paho(port, "wss-1", transport="websockets", tls={"ca_certs": certs["ca"]})
    c.sub("wss/t", 1)
    c.pub("wss/t", b"over-wss", qos=1)
    m = c.get()
    assert m is not None and m.payload == b"over-wss"
    assert h.client("wss-1")["listener"] == "wss:default"


# =============================================================================================
# cluster hooks
# =============================================================================================
def test_forward_and_deliver_remote(broker, paho):
    port = broker.port()
    s = paho(port, "cl-sub")
    s.sub("cl/#", 2)
    p = paho(port, "cl-pub")
    p.pub("cl/local", b"L", qos=1,
          properties=_props(UserProperty=[("k", "v")], ContentType="text/plain"))
    m = s.get()
    assert m is not None and m.payload == b"L"
    assert m.properties.UserProperty == [("k", "v")] and m.properties.ContentType == "text/plain"
    broker.wait_for(lambda: len(broker.forwarded) == 1, what="forward")
    f = broker.forwarded[0]
    assert isinstance(f, Message)
    assert (f.topic, f.payload, f.qos, f.retain, f.origin_node) == ("cl/local", b"L", 1, False, NODE)
    assert f.properties.get("user_property") == [("k", "v")]
    assert Message.from_wire(f.to_wire()) == f
    # a message from another node: delivered locally, never forwarded (called from a foreign thread)
    broker.broker.deliver_remote(Message(topic="cl/remote", payload=b"R", qos=2, retain=False, properties={},
                                         origin_node="emqx@10.0.0.2"))
    m = s.get()
    assert m is not None and (m.topic, m.payload, m.qos) == ("cl/remote", b"R", 2)
    # a forwarded retained message is delivered but NOT stored here: EMQX runs the retainer's
    # `message.publish` hook on the publishing node only and replicates the table through mria
    # (the stand-in: retainer `write`/`delete` ops, applied with Retainer.apply_remote)
    broker.call(broker.broker.deliver_remote, Message("cl/ret", b"RR", 1, True, {}, "emqx@10.0.0.2"))
    assert broker.call(broker.broker.retained_count) == 0
    r = broker.broker.retainer
    stored = Message("cl/ret", b"RR", 1, True, {}, "emqx@10.0.0.2")
    broker.call(r.apply_remote, {"t": "retainer", "op": "write", "msg": stored.to_wire(), "expiry": 0})
    late = paho(port, "cl-late")
    late.sub("cl/ret", 1)
    m = late.get()
    assert m is not None and m.payload == b"RR" and m.retain
    broker.call(r.apply_remote, {"t": "retainer", "op": "delete", "topic": "cl/ret"})
    assert broker.call(broker.broker.retained_count) == 0
    time.sleep(0.2)
    assert len(broker.forwarded) == 1


def _props(**kw):
    pr = Properties(PacketTypes.PUBLISH)
    for k, v in kw.items():
        setattr(pr, k, v)
    return pr


# =============================================================================================
# mosquitto clients
# =============================================================================================
@pytest.mark.skipif(not (shutil.which("mosquitto_pub") and shutil.which("mosquitto_sub")),
                    reason="mosquitto-clients not installed (apt-get install -y mosquitto-clients)")
@pytest.mark.parametrize("version", ["mqttv311", "mqttv5"])
def test_mosquitto_clients(broker, version):
    port = str(broker.port())
    sub = subprocess.Popen(["mosquitto_sub", "-h", HOST, "-p", port, "-V", version, "-i", "mosq-sub",
                            "-t", "mosq/#", "-q", "2", "-v", "-C", "3", "-W", "10"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        broker.wait_for(lambda: (broker.client("mosq-sub") or {}).get("subscriptions_cnt") == 1,
                        what="mosquitto_sub subscribed")
        for qos, topic, msg in (("0", "mosq/a", "zero"), ("1", "mosq/b", "one"), ("2", "mosq/c/d", "two")):
            subprocess.run(["mosquitto_pub", "-h", HOST, "-p", port, "-V", version, "-q", qos, "-t", topic,
                            "-m", msg], check=True, timeout=10, capture_output=True)
        out, err = sub.communicate(timeout=10)
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait(5)
    assert sub.returncode == 0, err
    assert out.splitlines() == ["mosq/a zero", "mosq/b one", "mosq/c/d two"]
    # retained + mosquitto_sub late subscription
    subprocess.run(["mosquitto_pub", "-h", HOST, "-p", port, "-V", version, "-r", "-q", "1", "-t", "mosq/ret",
                    "-m", "kept"], check=True, timeout=10, capture_output=True)
    res = subprocess.run(["mosquitto_sub", "-h", HOST, "-p", port, "-V", version, "-t", "mosq/ret", "-C", "1",
                          "-W", "5", "-F", "%r %p"], timeout=10, capture_output=True, text=True)
    assert res.stdout.strip() == "1 kept"
