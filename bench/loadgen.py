#!/usr/bin/env python3
"""MQTT load generator for `make bench` (issue 7): held connections, TLS handshakes, publish latency.

Python 3.11+ standard library only; MQTT 3.1.1 through a small codec of its own. Each subcommand prints
ONE JSON object of figures on stdout and never judges them. Exit status 0 when the figures are printed,
2 when the arguments are refused (bounds, file descriptors, target outside the allowed networks).

    # hold 5000 TLS connections through HAProxy, opened at 500/s with at most 200 handshakes in flight
    bench/loadgen.py connections --host 172.30.10.20 --port 8883 --tls --cafile playbooks/.lab-ca/ca.pem \\
        --allow-network 172.30.10.0/24 --count 5000 --rate 500 --concurrency 200 --hold 30 --timeout 120
    # connect (TCP+TLS+CONNECT/CONNACK) and disconnect again and again for 20 s, 50 at a time
    bench/loadgen.py handshakes --host 172.30.10.21 --port 8883 --tls --cafile playbooks/.lab-ca/ca.pem \\
        --allow-network 172.30.10.0/24 --duration 20 --concurrency 50
    # QoS 1 latency, publishing through HAProxy and receiving through NGINX (--rate 0: throughput mode)
    bench/loadgen.py latency --pub-host 172.30.10.20 --pub-port 8883 --sub-host 172.30.10.21 \\
        --sub-port 8883 --tls --cafile playbooks/.lab-ca/ca.pem --allow-network 172.30.10.0/24 \\
        --messages 5000 --rate 500 --qos 1 --payload-bytes 256 --timeout 60

    # 15000 devices over two load balancers (the second twice as often), all subscribed to one topic; then
    # commands on stdin: "publish 1" (a stamped message to every device), "status", "report", "close"
    bench/loadgen.py fanout --targets 172.30.20.20:8883,172.30.20.21:8883,172.30.20.21:8883 --tls \\
        --cafile ca.pem --allow-network 172.30.20.0/24 --count 15000 --source-addresses 172.30.20.2,172.30.20.3

Safety: traffic goes only to loopback (127.0.0.0/8, ::1) and to the networks given with --allow-network
(repeatable). Every target is resolved and checked before the first connection, and the checked address
is the one connected to. --servername is the TLS name to send and verify (default: the host). Counts and
times are bounded: a run ends within --timeout (max 3600 s), reporting "aborted": true if cut short.
latency's --window counts messages published and not yet received (and PUBACKed, at QoS 1), so a fast
publisher cannot overflow the subscriber's queue; lost messages end the run after --stall-timeout.
"""

import argparse
import asyncio
import asyncio.sslproto
import collections
import ipaddress
import json
import math
import os
import resource
import socket
import ssl
import struct
import sys
import time

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
MAX_COUNT = 20000
MAX_MESSAGES = 1_000_000
MAX_TIMEOUT = 3600.0
FD_MARGIN = 64                # descriptors kept for stdio, the event loop and the like
CONNACK, PUBLISH, PUBACK, SUBACK = 2, 3, 4, 9
DISCONNECT = b"\xe0\x00"
PINGREQ = b"\xc0\x00"
STAMP = struct.Struct("!QQ")  # start of a latency payload: sequence number, perf_counter_ns at send


# ---------------------------------------------------------------------------------------- MQTT codec
def encode_length(n):
    """MQTT remaining length (variable byte integer)."""
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def decode_length(buf, pos):
    """(remaining length, offset of the body) of the packet at buf[pos], or None while incomplete."""
    length = 0
    for i in range(pos + 1, min(pos + 5, len(buf))):
        length |= (buf[i] & 0x7F) << 7 * (i - pos - 1)
        if not buf[i] & 0x80:
            return length, i + 1
    if len(buf) >= pos + 5:
        raise ValueError("malformed remaining length")
    return None


def take_packets(buf):
    """Remove the complete packets at the start of bytearray buf; return them as (type, flags, body)."""
    packets, pos = [], 0
    while (header := decode_length(buf, pos)) is not None and sum(header) <= len(buf):
        length, start = header
        packets.append((buf[pos] >> 4, buf[pos] & 0x0F, bytes(buf[start:start + length])))
        pos = start + length
    del buf[:pos]
    return packets


def packet(first_byte, body):
    return bytes((first_byte,)) + encode_length(len(body)) + body


def utf8(text):
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def connect_packet(client_id, keepalive):
    """CONNECT, MQTT 3.1.1, clean session, no will, no credentials."""
    return packet(0x10, utf8("MQTT") + bytes((4, 0x02)) + struct.pack("!H", keepalive) + utf8(client_id))


def subscribe_packet(packet_id, topic, qos):
    return packet(0x82, struct.pack("!H", packet_id) + utf8(topic) + bytes((qos,)))


def publish_packet(topic, payload, qos, packet_id):
    return packet(0x30 | qos << 1, utf8(topic) + (struct.pack("!H", packet_id) if qos else b"") + payload)


def puback_packet(packet_id):
    return b"\x40\x02" + struct.pack("!H", packet_id)


def parse_publish(flags, body):
    """(qos, packet id or None, payload) of a PUBLISH body."""
    qos = (flags >> 1) & 3
    pos = 2 + struct.unpack_from("!H", body)[0]
    if not qos:
        return qos, None, body[pos:]
    return qos, struct.unpack_from("!H", body, pos)[0], body[pos + 2:]


# ---------------------------------------------------------------------------------------- connections
class ConnackRefused(Exception):
    def __init__(self, rc):
        super().__init__("CONNACK return code %d" % rc)
        self.rc = rc


class TargetRefused(Exception):
    pass


class MqttConnection(asyncio.Protocol):
    """One MQTT client connection; packets other than CONNACK go to on_packet(conn, type, flags, body)."""

    def __init__(self, on_packet=None):
        loop = asyncio.get_running_loop()
        self.on_packet = on_packet
        self.transport = None
        self.buffer = bytearray()
        self.connack = loop.create_future()   # return code, or the exception that ended the connection
        self.closed = loop.create_future()    # done when the connection is gone

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buffer += data
        try:
            packets = take_packets(self.buffer)
        except ValueError as exc:
            self._settle(exc)
            self.transport.abort()
            return
        for ptype, flags, body in packets:
            if ptype == CONNACK:
                self._settle(body[1] if len(body) == 2 else ValueError("malformed CONNACK"))
            elif self.on_packet is not None:
                self.on_packet(self, ptype, flags, body)

    def connection_lost(self, exc):
        self._settle(exc or EOFError("connection closed before CONNACK"))
        if not self.closed.done():
            self.closed.set_result(exc)

    def _settle(self, result):
        if not self.connack.done():
            self.connack.set_result(result)

    def send(self, data):
        if not self.transport.is_closing():
            self.transport.write(data)

    def disconnect(self):
        """Send DISCONNECT and close (a TLS close_notify follows the buffered data)."""
        self.send(DISCONNECT)
        self.transport.close()


class Target:
    """An endpoint whose resolved address was checked against the allowed networks."""

    def __init__(self, host, port, address, ssl_context, servername, proxy_protocol=False):
        self.host, self.port, self.address, self.ssl_context = host, port, address, ssl_context
        self.servername = (servername or host) if ssl_context else None
        self.proxy_protocol = proxy_protocol  # send a PROXY v1 header first, as a load balancer does

    def describe(self):
        return {"host": self.host, "address": self.address, "port": self.port,
                "tls": self.ssl_context is not None, "servername": self.servername}


def resolve_target(host, port, allowed, ssl_context, servername, proxy_protocol=False):
    """Resolve host (no traffic but DNS); refuse it unless every address is in an allowed network."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise TargetRefused("cannot resolve %s: %s" % (host, exc)) from exc
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    outside = [a for a in addresses if not any(ipaddress.ip_address(a) in net for net in allowed)]
    if outside:
        raise TargetRefused("target %s (%s) is outside the allowed networks %s; allow it with "
                            "--allow-network CIDR" % (host, ", ".join(outside), ", ".join(map(str, allowed))))
    return Target(host, port, addresses[0], ssl_context, servername, proxy_protocol)


def proxy_v1_header(transport):
    """PROXY protocol v1 line naming this connection's own ends (what EMQX behind an LB expects first)."""
    src, dst = transport.get_extra_info("sockname")[:2], transport.get_extra_info("peername")[:2]
    family = "TCP6" if ":" in src[0] else "TCP4"
    return ("PROXY %s %s %s %d %d\r\n" % (family, src[0], dst[0], src[1], dst[1])).encode()


async def open_session(target, client_id, keepalive, timeout, on_packet=None, local_addr=None):
    """TCP (+TLS) connect, CONNECT, CONNACK with rc 0. Returns (connection, milliseconds it took)."""
    loop = asyncio.get_running_loop()
    conn = MqttConnection(on_packet)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            await loop.create_connection(lambda: conn, target.address, target.port, ssl=target.ssl_context,
                                         server_hostname=target.servername, local_addr=local_addr)
            if target.proxy_protocol:
                conn.send(proxy_v1_header(conn.transport))
            conn.send(connect_packet(client_id, keepalive))
            result = await conn.connack
        if isinstance(result, BaseException):
            raise result
        if result != 0:
            raise ConnackRefused(result)
    except BaseException:
        if conn.transport is not None:
            conn.transport.abort()
        raise
    return conn, (time.perf_counter() - started) * 1000.0


async def close_all(conns, grace):
    """Disconnect every connection; abort those not closed within grace seconds. Returns seconds spent."""
    started = time.monotonic()
    for conn in conns:
        if not conn.closed.done():
            conn.disconnect()
    pending = [c.closed for c in conns if not c.closed.done()]
    if pending:
        await asyncio.wait(pending, timeout=grace)
    for conn in conns:
        if not conn.closed.done():
            conn.transport.abort()
    await asyncio.sleep(0)
    return round(time.monotonic() - started, 3)


async def take_slot(semaphore, due, deadline):
    """Wait until monotonic time `due`, then for a free slot; False when the deadline comes first."""
    await asyncio.sleep(max(0.0, min(due, deadline) - time.monotonic()))
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return False
    try:
        async with asyncio.timeout(remaining):
            await semaphore.acquire()
    except TimeoutError:
        return False
    return True


async def open_paced(args, open_one, tasks, in_flight, started, deadline, errors, stop=None):
    """Start open_one(i) for i < --count, paced by --rate and the in_flight semaphore, until the deadline (or
    `stop` is set); wait for them, cancelling those the deadline cuts. Appends to tasks; True when cut short."""
    aborted = False
    for i in range(args.count):
        if stop is not None and stop.is_set():
            break
        if not await take_slot(in_flight, started + i / args.rate if args.rate else 0.0, deadline):
            aborted = True
            break
        tasks.append(asyncio.create_task(open_one(i)))
    if tasks:
        _done, pending = await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic()))
        if pending:
            aborted = True
            errors["aborted"] += len(pending)
            for task in pending:
                task.cancel()
            await asyncio.wait(pending)
    return aborted


def error_kind(exc):
    if isinstance(exc, ConnackRefused):
        return "connack rc=%d" % exc.rc
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ssl.SSLError):
        return "ssl." + type(exc).__name__
    return type(exc).__name__


def summary_ms(values):
    """Nearest-rank percentiles of a list of milliseconds."""
    if not values:
        return {"count": 0}
    ordered = sorted(values)

    def rank(p):
        return round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)], 3)
    return {"count": len(ordered), "p50": rank(50), "p90": rank(90), "p99": rank(99),
            "max": round(ordered[-1], 3), "mean": round(sum(ordered) / len(ordered), 3)}


def grace_for(timeout):
    """Part of --timeout kept for closing connections at the end."""
    return min(5.0, timeout / 10)


# ---------------------------------------------------------------------------------------- subcommands
async def run_connections(args, target):
    """Open up to --count connections (paced by --rate and --concurrency), hold them, close them."""
    started = time.monotonic()
    grace = grace_for(args.timeout)
    deadline = started + args.timeout - grace
    errors, handshake_ms, held, tasks = collections.Counter(), [], set(), []
    state = {"peak": 0, "dropped": 0, "closing": False}
    in_flight = asyncio.Semaphore(args.concurrency)
    sources = args.source_addresses

    def on_closed(conn):
        held.discard(conn)
        state["dropped"] += not state["closing"]

    async def open_one(i):
        local = (sources[i % len(sources)], 0) if sources else None
        try:
            conn, ms = await open_session(target, "%s%d" % (args.client_id_prefix, i), args.keepalive,
                                          args.connect_timeout, local_addr=local)
        except Exception as exc:   # every failure is a figure
            errors[error_kind(exc)] += 1
            return
        finally:
            in_flight.release()
        handshake_ms.append(ms)
        held.add(conn)
        state["peak"] = max(state["peak"], len(held))
        conn.closed.add_done_callback(lambda _f: on_closed(conn))

    aborted = await open_paced(args, open_one, tasks, in_flight, started, deadline, errors)
    opened = time.monotonic()
    hold_until = opened + args.hold
    if hold_until > deadline:
        aborted, hold_until = True, deadline
    await asyncio.sleep(max(0.0, hold_until - time.monotonic()))
    held_at_end = len(held)
    state["closing"] = True
    close_seconds = await close_all(list(held), grace)
    connected, open_seconds = len(handshake_ms), opened - started
    return {
        "mode": "connections", "target": target.describe(),
        "attempted": len(tasks), "connected": connected, "failed": sum(errors.values()), "errors": dict(errors),
        "peak_held": state["peak"], "held_at_end": held_at_end, "dropped_during_run": state["dropped"],
        "open_seconds": round(open_seconds, 3),
        "handshakes_per_second": round(connected / open_seconds, 1) if open_seconds else None,
        "handshake_ms": summary_ms(handshake_ms),
        "hold_seconds": round(max(0.0, hold_until - opened), 3), "close_seconds": close_seconds,
        "aborted": aborted,
        "settings": {"count": args.count, "rate": args.rate, "concurrency": args.concurrency,
                     "hold": args.hold, "timeout": args.timeout, "keepalive": args.keepalive},
    }


async def run_handshakes(args, target):
    """--concurrency workers connect, CONNECT/CONNACK, DISCONNECT, over again, for --duration seconds."""
    started = time.monotonic()
    errors, handshake_ms = collections.Counter(), []

    async def worker(w):
        n = 0
        while time.monotonic() < started + args.duration:
            n += 1
            try:
                conn, ms = await open_session(target, "%s%d-%d" % (args.client_id_prefix, w, n), args.keepalive,
                                              args.connect_timeout)
            except Exception as exc:   # every failure is a figure
                errors[error_kind(exc)] += 1
                await asyncio.sleep(0.05)   # no busy loop against a refusing target
                continue
            handshake_ms.append(ms)
            await close_all([conn], 1.0)

    workers = [asyncio.create_task(worker(w)) for w in range(args.concurrency)]
    _done, pending = await asyncio.wait(workers, timeout=args.timeout - grace_for(args.timeout))
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
    elapsed = time.monotonic() - started
    return {
        "mode": "handshakes", "target": target.describe(),
        "handshakes": len(handshake_ms), "failed": sum(errors.values()), "errors": dict(errors),
        "duration_seconds": round(elapsed, 3), "handshakes_per_second": round(len(handshake_ms) / elapsed, 1),
        "handshake_ms": summary_ms(handshake_ms), "aborted": bool(pending),
        "settings": {"duration": args.duration, "concurrency": args.concurrency, "timeout": args.timeout},
    }


class LatencyRun:
    """One latency run. A message stays in the window until it is received and, at QoS 1, PUBACKed."""
    RECEIVED, ACKED = 1, 2

    def __init__(self, args):
        loop = asyncio.get_running_loop()
        self.args = args
        self.window = asyncio.Semaphore(args.window)
        self.state = bytearray(args.messages)   # RECEIVED | ACKED bits per sequence number
        self.unacked = {}                       # packet id -> sequence number
        self.latency_ms = []
        self.sent = self.completed = self.duplicates = self.unexpected = 0
        self.first_send_ns = self.last_receive_ns = None
        self.last_progress = time.monotonic()
        self.sending_done = False
        self.finished, self.suback = loop.create_future(), loop.create_future()

    def on_subscriber_packet(self, conn, ptype, flags, body):
        if ptype == SUBACK and not self.suback.done():
            self.suback.set_result(body[2] if len(body) >= 3 else 0x80)
        if ptype != PUBLISH:
            return
        now = time.perf_counter_ns()
        qos, packet_id, payload = parse_publish(flags, body)
        if qos:
            conn.send(puback_packet(packet_id))
        seq, sent_ns = STAMP.unpack_from(payload) if len(payload) >= STAMP.size else (None, 0)
        if seq is None or seq >= self.sent:
            self.unexpected += 1
        elif self.state[seq] & self.RECEIVED:
            self.duplicates += 1
        else:
            self.latency_ms.append((now - sent_ns) / 1e6)
            self.last_receive_ns = now
            self.mark(seq, self.RECEIVED)

    def on_publisher_packet(self, _conn, ptype, _flags, body):
        if ptype == PUBACK and (seq := self.unacked.pop(struct.unpack_from("!H", body)[0], None)) is not None:
            self.mark(seq, self.ACKED)

    def mark(self, seq, bit):
        self.state[seq] |= bit
        self.last_progress = time.monotonic()
        if self.state[seq] == self.RECEIVED | self.ACKED:
            self.completed += 1
            self.window.release()
            self.check_finished()

    def check_finished(self):
        if self.sending_done and self.completed == self.sent and not self.finished.done():
            self.finished.set_result(None)

    async def publish_all(self, publisher, topic, deadline):
        """Publish --messages paced by --rate (0: by the window only), until done or the deadline."""
        args = self.args
        padding = b"\0" * (args.payload_bytes - STAMP.size)
        started = time.monotonic()
        for seq in range(args.messages):
            if not await take_slot(self.window, started + seq / args.rate if args.rate else 0.0, deadline):
                return
            packet_id = seq % 65535 + 1
            stamp = time.perf_counter_ns()
            self.first_send_ns = self.first_send_ns or stamp
            if args.qos:
                self.unacked[packet_id] = seq
            else:
                self.state[seq] = self.ACKED   # QoS 0: complete once received
            self.sent += 1
            self.last_progress = time.monotonic()
            publisher.send(publish_packet(topic, STAMP.pack(seq, stamp) + padding, args.qos, packet_id))
        self.sending_done = True
        self.check_finished()


async def run_latency(args, pub_target, sub_target):
    """One subscriber, one publisher; each payload carries its sequence number and send time."""
    deadline = time.monotonic() + args.timeout - grace_for(args.timeout)
    run = LatencyRun(args)
    topic = "loadgen/%s/%d" % (args.client_id_prefix.strip("-"), time.time_ns())
    report = {"mode": "latency", "publisher": pub_target.describe(), "subscriber": sub_target.describe(),
              "topic": topic, "aborted": False, "stalled": False}
    conns = []
    try:
        subscriber, _ms = await open_session(sub_target, args.client_id_prefix + "sub", args.keepalive,
                                             args.connect_timeout, run.on_subscriber_packet)
        conns.append(subscriber)
        subscriber.send(subscribe_packet(1, topic, args.qos))
        async with asyncio.timeout(args.connect_timeout):
            if await run.suback == 0x80:
                raise ConnectionError("subscription refused (SUBACK 0x80)")
        publisher, _ms = await open_session(pub_target, args.client_id_prefix + "pub", args.keepalive,
                                            args.connect_timeout, run.on_publisher_packet)
        conns.append(publisher)
    except Exception as exc:   # no message can be sent: report why
        report["error"] = "%s: %s" % (error_kind(exc), exc)
        await close_all(conns, grace_for(args.timeout))
        return report

    sending = asyncio.create_task(run.publish_all(publisher, topic, deadline))
    ends = {run.finished, publisher.closed, subscriber.closed}
    while not any(f.done() for f in ends) and time.monotonic() < deadline:
        if time.monotonic() - run.last_progress > args.stall_timeout:
            report["stalled"] = True   # messages lost (e.g. dropped by a full queue) keep their window slots
            break
        await asyncio.wait(ends, timeout=min(0.5, max(0.0, deadline - time.monotonic())))
    sending.cancel()
    await asyncio.wait({sending})
    lost_connections = [name for name, c in (("publisher", publisher), ("subscriber", subscriber))
                        if c.closed.done()]
    await close_all(conns, grace_for(args.timeout))
    received = len(run.latency_ms)
    span_ns = (run.last_receive_ns or 0) - (run.first_send_ns or 0)
    report.update({
        "sent": run.sent, "acked": run.sent - len(run.unacked) if args.qos else None,
        "received": received, "lost": run.sent - received, "duplicates": run.duplicates,
        "unexpected": run.unexpected, "latency_ms": summary_ms(run.latency_ms),
        "messages_per_second": round(received / (span_ns / 1e9), 1) if received and span_ns > 0 else None,
        "aborted": not run.finished.done() and not report["stalled"], "connections_lost": lost_connections,
        "settings": {"messages": args.messages, "rate": args.rate, "qos": args.qos, "window": args.window,
                     "payload_bytes": args.payload_bytes, "timeout": args.timeout,
                     "stall_timeout": args.stall_timeout},
    })
    return report


class FanoutRun:
    """Devices of one fan-out process: each held connection is subscribed to one topic; every message
    published on it is counted per sequence number with its delivery time (CLOCK_MONOTONIC is one clock for
    every process of the host, so a publisher in another process stamps comparable times)."""

    def __init__(self):
        self.received = collections.Counter()    # sequence number -> deliveries
        self.first_ns, self.last_ns = {}, {}     # sequence number -> first / last delivery
        self.latency_ms = collections.defaultdict(collections.Counter)   # seq -> {whole ms: deliveries}
        self.unexpected = 0
        self.pending_subacks = {}                # connection -> future of its SUBACK return code

    def on_packet(self, conn, ptype, flags, body):
        if ptype == SUBACK:
            future = self.pending_subacks.pop(conn, None)
            if future is not None and not future.done():
                future.set_result(body[2] if len(body) >= 3 else 0x80)
            return
        if ptype != PUBLISH:
            return
        now = time.monotonic_ns()
        qos, packet_id, payload = parse_publish(flags, body)
        if qos:
            conn.send(puback_packet(packet_id))
        if len(payload) < STAMP.size:
            self.unexpected += 1
            return
        seq, sent_ns = STAMP.unpack_from(payload)
        self.received[seq] += 1
        self.first_ns.setdefault(seq, now)
        self.last_ns[seq] = now
        self.latency_ms[seq][int((now - sent_ns) // 1_000_000)] += 1

    def report(self):
        return {str(seq): {"received": n, "first_ns": self.first_ns[seq], "last_ns": self.last_ns[seq],
                           "latency_ms_histogram": {str(k): v for k, v in sorted(self.latency_ms[seq].items())}}
                for seq, n in sorted(self.received.items())}


async def read_commands(queue):
    """Lines of stdin into queue (None at end of input)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            await queue.put(None)
            return
        await queue.put(line.decode().strip())


def emit(event, **figures):
    print(json.dumps(dict(figures, event=event)), flush=True)


async def run_fanout(args, targets):
    """Open --count subscribed connections over the targets, then obey stdin: publish SEQ, status, report,
    close (or end of input). Prints one JSON line per event; the run ends by itself at --timeout."""
    started = time.monotonic()
    grace = grace_for(args.timeout)
    deadline = started + args.timeout - grace
    cpu_at_start = resource.getrusage(resource.RUSAGE_SELF)
    run = FanoutRun()
    errors, handshake_ms, subscribe_ms = collections.Counter(), [], []
    held = {}                                   # connection -> index of its target
    state = {"dropped": 0, "closing": False, "failed": 0}
    in_flight = asyncio.Semaphore(args.concurrency)
    sources = args.source_addresses
    stop_opening = asyncio.Event()

    def on_closed(conn):
        if held.pop(conn, None) is not None:
            state["dropped"] += not state["closing"]

    async def open_one(i):
        t = i % len(targets)
        local = (sources[i % len(sources)], 0) if sources else None
        try:
            conn, ms = await open_session(targets[t], "%s%d" % (args.client_id_prefix, i), args.keepalive,
                                          args.connect_timeout, on_packet=run.on_packet, local_addr=local)
            sub_started = time.perf_counter()
            suback = asyncio.get_running_loop().create_future()
            run.pending_subacks[conn] = suback
            conn.send(subscribe_packet(1, args.topic, 0))
            try:
                async with asyncio.timeout(args.connect_timeout):
                    await asyncio.wait({suback, conn.closed}, return_when=asyncio.FIRST_COMPLETED)
                if not suback.done() or suback.result() == 0x80:
                    raise ConnectionError("subscription refused or connection closed before SUBACK")
            except BaseException:
                run.pending_subacks.pop(conn, None)
                conn.transport.abort()
                raise
        except Exception as exc:   # every failure is a figure
            errors[error_kind(exc)] += 1
            state["failed"] += 1
            if args.max_failures and state["failed"] >= args.max_failures:
                stop_opening.set()
            return
        finally:
            in_flight.release()
        handshake_ms.append(ms)
        subscribe_ms.append((time.perf_counter() - sub_started) * 1000.0)
        held[conn] = t
        conn.closed.add_done_callback(lambda _f: on_closed(conn))

    async def keep_alive():
        """PINGREQ on every held connection within 0.9 x keepalive (rounds of 0.45 x keepalive over the
        connections held when a round starts; one opened meanwhile joins the next), as a device does, so that
        neither EMQX (1.5 x keepalive) nor a load balancer's idle timeout closes it."""
        step = 1.0
        order, pos = [], 0
        while True:
            await asyncio.sleep(step)
            if pos >= len(order):
                order, pos = list(held), 0
            n = math.ceil(len(order) * step / (args.keepalive * 0.45))
            for conn in order[pos:pos + n]:
                if conn in held:
                    conn.send(PINGREQ)
            pos += n

    pinging = asyncio.create_task(keep_alive())
    tasks = []
    aborted = await open_paced(args, open_one, tasks, in_flight, started, deadline, errors, stop_opening)
    open_seconds = time.monotonic() - started
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    per_target = collections.Counter(targets[t].host for t in held.values())
    emit("ready", attempted=len(tasks), held=len(held), failed=sum(errors.values()), errors=dict(errors),
         dropped=state["dropped"],
         stopped_after_failures=stop_opening.is_set(), aborted=aborted, open_seconds=round(open_seconds, 3),
         handshakes_per_second=round(len(handshake_ms) / open_seconds, 1) if open_seconds else None,
         handshake_ms=summary_ms(handshake_ms), subscribe_ms=summary_ms(subscribe_ms),
         held_per_target=dict(per_target),
         cpu_seconds=round(cpu.ru_utime + cpu.ru_stime - cpu_at_start.ru_utime - cpu_at_start.ru_stime, 2),
         **memory_kib())

    commands = asyncio.Queue()
    reading = asyncio.create_task(read_commands(commands))
    publisher = next(iter(held), None)
    while True:
        remaining = deadline - time.monotonic()
        try:
            async with asyncio.timeout(max(0.0, remaining)):
                command = await commands.get()
        except TimeoutError:
            aborted = True
            break
        if command is None or command == "close":
            break
        word, _, arg = command.partition(" ")
        if word == "publish":
            seq = int(arg)
            if publisher is None or publisher not in held:
                publisher = next(iter(held), None)
            if publisher is None:
                emit("published", seq=seq, error="no connection held to publish from")
                continue
            sent_ns = time.monotonic_ns()
            publisher.send(publish_packet(args.topic, STAMP.pack(seq, sent_ns), 0, 0))
            emit("published", seq=seq, sent_ns=sent_ns)
        elif word == "status":
            emit("status", held=len(held), dropped=state["dropped"],
                 received={str(k): v for k, v in sorted(run.received.items())})
        elif word == "report":
            emit("report", held=len(held), dropped=state["dropped"], messages=run.report(),
                 unexpected=run.unexpected, held_per_target=dict(collections.Counter(
                     targets[t].host for t in held.values())), **memory_kib())
        else:
            emit("error", error="unknown command %r (publish SEQ, status, report, close)" % command)
    reading.cancel()
    pinging.cancel()
    state["closing"] = True
    close_seconds = await close_all(list(held), grace)
    emit("done", aborted=aborted, dropped=state["dropped"], close_seconds=close_seconds)
    return None


# ---------------------------------------------------------------------------------------- command line
def raise_nofile_limit():
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 1048576
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return soft


def memory_kib():
    """This process's current and peak resident set size, KiB (Linux)."""
    with open("/proc/self/statm") as fh:
        rss_pages = int(fh.read().split()[1])
    return {"rss_kib": rss_pages * os.sysconf("SC_PAGE_SIZE") // 1024,
            "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


def bounded(kind, low, high):
    """argparse type: a `kind` number within [low, high]."""
    def parse(text):
        value = kind(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError("%s is not within [%s, %s]" % (text, low, high))
        return value
    return parse


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    seconds = bounded(float, 0.0, MAX_TIMEOUT)
    rate = bounded(float, 0.0, 1e6)

    def common(sub):
        sub.add_argument("--tls", action="store_true", help="TLS to every target, verifying its certificate")
        sub.add_argument("--cafile", help="CA bundle to verify the server certificate (default: system CAs)")
        sub.add_argument("--servername", help="TLS server name to send and verify (default: the host)")
        sub.add_argument("--proxy-protocol", action="store_true",
                         help="plain TCP only: send a PROXY v1 header first, to reach an EMQX listener that expects one")
        sub.add_argument("--allow-network", action="append", default=[], type=ipaddress.ip_network,
                         metavar="CIDR", help="network targets may be in, repeatable (loopback always is)")
        sub.add_argument("--timeout", type=bounded(float, 1.0, MAX_TIMEOUT), default=120.0,
                         help="bound on the whole run, s")
        sub.add_argument("--connect-timeout", type=bounded(float, 0.1, 600.0), default=10.0,
                         help="bound on one TCP+TLS+CONNACK, s")
        sub.add_argument("--keepalive", type=bounded(int, 1, 65535), default=300, help="MQTT keepalive, s")
        sub.add_argument("--client-id-prefix", default="loadgen-%d-" % os.getpid())

    def endpoint(sub, role=""):
        sub.add_argument("--%shost" % role, required=True)
        sub.add_argument("--%sport" % role, type=bounded(int, 1, 65535), required=True)

    sub = commands.add_parser("connections", help="open, hold and close many connections")
    endpoint(sub)
    common(sub)
    sub.add_argument("--count", type=bounded(int, 1, MAX_COUNT), default=1000, help="connections to open")
    sub.add_argument("--rate", type=rate, default=500.0, help="new connections per second (0: unpaced)")
    sub.add_argument("--concurrency", type=bounded(int, 1, MAX_COUNT), default=100, help="handshakes in flight")
    sub.add_argument("--hold", type=seconds, default=10.0, help="seconds to hold them all open")
    sub.add_argument("--source-addresses", type=lambda s: [str(ipaddress.ip_address(a)) for a in s.split(",")],
                     default=[], help="comma-separated local addresses to bind, used in turn")

    sub = commands.add_parser("fanout", help="hold many subscribed connections, then publish to all of them on command")
    sub.add_argument("--targets", required=True, type=lambda s: [hp.rsplit(":", 1) for hp in s.split(",")],
                     help="comma-separated host:port endpoints, used in turn (repeat one to give it a larger share)")
    common(sub)
    sub.add_argument("--count", type=bounded(int, 1, MAX_COUNT), default=1000, help="connections to open")
    sub.add_argument("--rate", type=rate, default=0.0, help="new connections per second (0: unpaced)")
    sub.add_argument("--concurrency", type=bounded(int, 1, MAX_COUNT), default=64, help="handshakes in flight")
    sub.add_argument("--topic", default="loadgen/fanout", help="topic every connection subscribes to (QoS 0)")
    sub.add_argument("--max-failures", type=bounded(int, 0, MAX_COUNT), default=0,
                     help="stop opening connections after this many failed (0: try them all)")
    sub.add_argument("--source-addresses", type=lambda s: [str(ipaddress.ip_address(a)) for a in s.split(",")],
                     default=[], help="comma-separated local addresses to bind, used in turn")

    sub = commands.add_parser("handshakes", help="connect and disconnect repeatedly: handshakes per second")
    endpoint(sub)
    common(sub)
    sub.add_argument("--duration", type=seconds, default=10.0, help="seconds to keep starting handshakes")
    sub.add_argument("--concurrency", type=bounded(int, 1, MAX_COUNT), default=50, help="handshakes in flight")

    sub = commands.add_parser("latency", help="publish/subscribe latency and throughput")
    endpoint(sub, "pub-")
    endpoint(sub, "sub-")
    common(sub)
    sub.add_argument("--messages", type=bounded(int, 1, MAX_MESSAGES), default=1000, help="messages to publish")
    sub.add_argument("--rate", type=rate, default=200.0, help="messages per second (0: as the window allows)")
    sub.add_argument("--qos", type=int, choices=(0, 1), default=1)
    sub.add_argument("--payload-bytes", type=bounded(int, STAMP.size, 1048576), default=64)
    sub.add_argument("--window", type=bounded(int, 1, 65535), default=100,
                     help="messages in flight at most (published, not yet received and acknowledged)")
    sub.add_argument("--stall-timeout", type=seconds, default=10.0,
                     help="end the run when nothing was sent, received or acknowledged for this long, s")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.cafile or args.servername) and not args.tls:
        parser.error("--cafile and --servername need --tls")
    if args.proxy_protocol and args.tls:
        parser.error("--proxy-protocol is for plain TCP to a node; TLS ends at the load balancer")
    if args.command == "handshakes" and args.duration >= args.timeout:
        parser.error("--duration must be below --timeout")
    nofile = raise_nofile_limit()
    connections = args.count if args.command == "connections" else getattr(args, "concurrency", 2)
    if nofile != resource.RLIM_INFINITY and connections + FD_MARGIN > nofile:
        parser.error("%d connections need %d file descriptors but RLIMIT_NOFILE allows %d (raise the hard "
                     "limit, e.g. ulimit -Hn)" % (connections, connections + FD_MARGIN, nofile))
    # asyncio's TLS layer allocates and zero-fills a 256 KiB read buffer per connection (~0.3 MB RSS per
    # held TLS connection: this process would be the bottleneck); 32 KiB still holds two full TLS records.
    asyncio.sslproto.SSLProtocol.max_size = 32 * 1024
    allowed = LOOPBACK + [net for net in args.allow_network if net not in LOOPBACK]
    try:
        ssl_context = ssl.create_default_context(cafile=args.cafile) if args.tls else None
    except (OSError, ssl.SSLError) as exc:
        parser.error("cannot load --cafile %s: %s" % (args.cafile, exc))
    try:
        if args.command == "fanout":
            try:
                endpoints = [(host, int(port)) for host, port in args.targets]
            except ValueError:
                parser.error("--targets: each entry must be host:port")
            if any(not 1 <= port <= 65535 for _host, port in endpoints):
                parser.error("--targets: a port is not within [1, 65535]")
            resolved = {}
            for host, port in endpoints:
                if (host, port) not in resolved:
                    resolved[(host, port)] = resolve_target(host, port, allowed, ssl_context, args.servername,
                                                            args.proxy_protocol)
            asyncio.run(run_fanout(args, [resolved[e] for e in endpoints]))
            return 0
        if args.command == "latency":
            targets = [resolve_target(host, port, allowed, ssl_context, args.servername, args.proxy_protocol)
                       for host, port in ((args.pub_host, args.pub_port), (args.sub_host, args.sub_port))]
            report = asyncio.run(run_latency(args, *targets))
        else:
            target = resolve_target(args.host, args.port, allowed, ssl_context, args.servername, args.proxy_protocol)
            runner = run_connections if args.command == "connections" else run_handshakes
            report = asyncio.run(runner(args, target))
    except TargetRefused as exc:
        parser.error(str(exc))
    report.update(memory_kib())
    report["nofile_limit"] = nofile
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
