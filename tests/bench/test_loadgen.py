"""bench/loadgen.py against a local stand-in node (loopback only), run as a subprocess like `make bench` does."""

import importlib.util
import json
import os
import resource
import socket
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOADGEN = os.path.join(ROOT, "bench", "loadgen.py")
HANDSHAKE_KEYS = {"count", "p50", "p90", "p99", "max", "mean"}


def run(*args, timeout=60, preexec_fn=None):
    """Run loadgen; returns (exit status, parsed stdout or None, stderr)."""
    p = subprocess.run([sys.executable, LOADGEN] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=timeout, preexec_fn=preexec_fn)
    return p.returncode, (json.loads(p.stdout) if p.stdout.strip() else None), p.stderr


def tls_args(node, certs):
    # the test server certificate names localhost / 127.0.0.1, the node listens on another loopback address
    return ["--host", node.host, "--port", 8883, "--tls", "--cafile", os.path.join(certs, "cacert.pem"),
            "--servername", "localhost"]


def test_codec_round_trip():
    spec = importlib.util.spec_from_file_location("loadgen", LOADGEN)
    loadgen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loadgen)
    for n in (0, 127, 128, 16383, 16384, 2097151, 2097152, 268435455):
        encoded = loadgen.encode_length(n)
        assert loadgen.decode_length(b"\x30" + encoded, 0) == (n, 1 + len(encoded))
    stream = (loadgen.publish_packet("t/1", b"x" * 200, 1, 7) + loadgen.puback_packet(7)
              + loadgen.publish_packet("t", b"", 0, 0))
    buf, got = bytearray(), []
    for byte in stream:   # byte by byte: every split point of every packet
        buf.append(byte)
        got += loadgen.take_packets(buf)
    assert [(t, f) for t, f, _b in got] == [(3, 2), (4, 0), (3, 0)] and not buf
    assert loadgen.parse_publish(got[0][1], got[0][2]) == (1, 7, b"x" * 200)
    with pytest.raises(ValueError):
        loadgen.take_packets(bytearray(b"\x30\xff\xff\xff\xff\x01"))


def test_connections_over_tls(node, certs):
    rc, out, err = run("connections", *tls_args(node, certs), "--count", 200, "--rate", 0, "--concurrency", 50,
                       "--hold", 1, "--timeout", 30)
    assert rc == 0, err
    assert out["mode"] == "connections" and out["target"]["tls"] is True
    assert out["attempted"] == out["connected"] == out["peak_held"] == out["held_at_end"] == 200, out
    assert out["failed"] == 0 and out["errors"] == {} and out["dropped_during_run"] == 0
    assert out["aborted"] is False
    assert set(out["handshake_ms"]) == HANDSHAKE_KEYS and out["handshake_ms"]["count"] == 200
    assert out["handshake_ms"]["p50"] <= out["handshake_ms"]["p99"] <= out["handshake_ms"]["max"]
    assert out["handshakes_per_second"] > 0 and out["open_seconds"] > 0 and out["hold_seconds"] == 1.0
    assert out["rss_kib"] > 0 and out["peak_rss_kib"] >= out["rss_kib"] // 2 and out["nofile_limit"] >= 264


def test_connection_rate_is_a_ceiling(node):
    rc, out, err = run("connections", "--host", node.host, "--port", 1883, "--count", 40, "--rate", 100,
                       "--hold", 0, "--timeout", 30, "--source-addresses", "127.0.0.1,127.0.0.2")
    assert rc == 0, err
    assert out["connected"] == 40, out
    assert out["open_seconds"] >= 0.39   # the 40th connection may start 39/100 s after the first


def test_wrong_ca_counts_ssl_failures(node, other_certs):
    rc, out, err = run("connections", *tls_args(node, other_certs), "--count", 20, "--hold", 0, "--timeout", 30)
    assert rc == 0, err
    assert out["connected"] == 0 and out["failed"] == out["attempted"] == 20, out
    assert out["errors"] and all(kind.startswith("ssl.") for kind in out["errors"]), out["errors"]


def test_run_is_cut_at_timeout(node):
    # 200 connections at 20/s need 10 s; --timeout 3 must cut the run short and still print the figures
    rc, out, err = run("connections", "--host", node.host, "--port", 1883, "--count", 200, "--rate", 20,
                       "--hold", 5, "--timeout", 3, timeout=15)
    assert rc == 0, err
    assert out["aborted"] is True and 0 < out["connected"] == out["attempted"] < 200, out
    assert out["held_at_end"] == out["connected"]


def test_handshakes(node, certs):
    rc, out, err = run("handshakes", *tls_args(node, certs), "--duration", 1.5, "--concurrency", 8,
                       "--timeout", 20)
    assert rc == 0, err
    assert out["mode"] == "handshakes" and out["failed"] == 0 and out["aborted"] is False, out
    assert out["handshakes"] > 0 and out["handshake_ms"]["count"] == out["handshakes"]
    assert out["handshakes_per_second"] > 0


@pytest.mark.parametrize("tls,qos,rate", [(True, 1, 0), (False, 1, 400), (False, 0, 0)])
def test_latency(node, certs, tls, qos, rate):
    if tls:
        ends = ["--pub-host", node.host, "--pub-port", 8883, "--sub-host", node.host, "--sub-port", 8883,
                "--tls", "--cafile", os.path.join(certs, "cacert.pem"), "--servername", "localhost"]
    else:
        ends = ["--pub-host", node.host, "--pub-port", 1883, "--sub-host", node.host, "--sub-port", 1883]
    rc, out, err = run("latency", *ends, "--messages", 200, "--rate", rate, "--qos", qos, "--payload-bytes", 100,
                       "--timeout", 30)
    assert rc == 0, err
    assert "error" not in out, out
    assert out["sent"] == out["received"] == 200 and out["lost"] == 0 and out["duplicates"] == 0, out
    assert out["acked"] == (200 if qos else None)
    assert out["aborted"] is False and out["connections_lost"] == []
    lat = out["latency_ms"]
    assert set(lat) == HANDSHAKE_KEYS and lat["count"] == 200 and 0 < lat["p50"] <= lat["p90"] <= lat["p99"]
    assert out["messages_per_second"] > 0


def test_lost_messages_are_counted_and_a_stalled_run_ends(tight_node):
    rc, out, err = run("latency", "--pub-host", tight_node.host, "--pub-port", 1883, "--sub-host", tight_node.host,
                       "--sub-port", 1883, "--messages", 500, "--rate", 0, "--window", 500, "--stall-timeout", 1,
                       "--timeout", 30)
    assert rc == 0, err
    assert out["stalled"] is True and out["aborted"] is False, out
    assert out["sent"] == out["acked"] == 500 and 0 < out["received"] < 500
    assert out["lost"] == out["sent"] - out["received"] and out["latency_ms"]["count"] == out["received"]


def test_target_outside_allowed_networks_is_refused_before_any_connection():
    rc, out, err = run("connections", "--host", "192.0.2.1", "--port", 1883, "--count", 1, timeout=20)
    assert rc == 2 and out is None
    assert "outside the allowed networks" in err and "192.0.2.1" in err
    # latency connects the subscriber first: a late check would reach this local socket before refusing
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        rc, out, err = run("latency", "--sub-host", "127.0.0.1", "--sub-port", listener.getsockname()[1],
                           "--pub-host", "192.0.2.1", "--pub-port", 1883, "--messages", 1, timeout=20)
        assert rc == 2 and out is None and "outside the allowed networks" in err
        with pytest.raises(BlockingIOError):
            listener.accept()


def test_count_above_the_descriptor_limit_is_refused():
    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    rc, out, err = run("connections", "--host", "127.0.0.1", "--port", 1, "--count", 1000, preexec_fn=low_limit)
    assert rc == 2 and out is None and "RLIMIT_NOFILE" in err


def test_proxy_protocol_reaches_a_node_that_expects_it(proxy_node):
    ends = ["--pub-host", proxy_node.host, "--pub-port", 1883, "--sub-host", proxy_node.host, "--sub-port", 1883,
            "--messages", 50, "--rate", 0, "--timeout", 20]
    rc, out, err = run("latency", *ends, "--proxy-protocol")
    assert rc == 0, err
    assert out["sent"] == out["received"] == 50 and out["lost"] == 0, out
    # The control: without the header the same node refuses the session.
    rc, out, err = run("latency", *ends)
    assert rc == 0, err
    assert "error" in out and out.get("received", 0) == 0, out


def test_proxy_protocol_with_tls_is_refused(node, certs):
    rc, out, err = run("connections", "--host", node.host, "--port", 8883, "--tls", "--cafile",
                       os.path.join(certs, "cacert.pem"), "--proxy-protocol", "--count", 1)
    assert rc == 2 and "--proxy-protocol" in err and out is None


class Fanout:
    """bench/loadgen.py fanout as a subprocess driven through stdin/stdout, as bench/run.py drives it."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([sys.executable, LOADGEN, "fanout"] + [str(a) for a in args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def event(self):
        line = self.proc.stdout.readline()
        assert line, self.proc.stderr.read()
        return json.loads(line)

    def ask(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.event()


def test_fanout_delivers_one_message_to_every_held_device(node, certs):
    tls = ["--tls", "--cafile", os.path.join(certs, "cacert.pem"), "--servername", "localhost"]
    run_ = Fanout("--targets", "%s:8883,%s:1883" % (node.host, node.host), *tls[:3], "--servername", "localhost",
                  "--count", 10, "--timeout", 20)
    # plain 1883 with --tls fails every other handshake: those are counted, the TLS ones held
    ready = run_.event()
    assert ready["event"] == "ready" and ready["attempted"] == 10 and ready["held"] == 5, ready
    assert ready["failed"] == 5 and ready["held_per_target"] == {node.host: 5}
    run_.ask("close")
    run_.proc.wait(10)

    fan = Fanout("--targets", "%s:8883" % node.host, *tls, "--count", 300, "--concurrency", 50,
                 "--topic", "fanout/test", "--timeout", 60)
    ready = fan.event()
    assert ready["event"] == "ready" and ready["held"] == 300 and ready["failed"] == 0, ready
    assert ready["subscribe_ms"]["count"] == 300 and ready["cpu_seconds"] > 0 and ready["rss_kib"] > 0
    published = fan.ask("publish 7")
    assert published["event"] == "published" and published["seq"] == 7 and published["sent_ns"] > 0
    for _ in range(100):
        status = fan.ask("status")
        if status["received"].get("7") == 300:
            break
        time.sleep(0.1)
    assert status["received"] == {"7": 300} and status["held"] == 300, status
    report = fan.ask("report")
    message = report["messages"]["7"]
    assert message["received"] == 300 and message["last_ns"] >= message["first_ns"] > published["sent_ns"]
    assert sum(message["latency_ms_histogram"].values()) == 300
    assert fan.ask("bogus")["event"] == "error"
    done = fan.ask("close")
    assert done == {"event": "done", "aborted": False, "dropped": 0, "close_seconds": done["close_seconds"]}
    assert fan.proc.wait(10) == 0


def test_fanout_stops_opening_after_max_failures(node, certs):
    fan = Fanout("--targets", "%s:1883" % node.host, "--tls", "--cafile", os.path.join(certs, "cacert.pem"),
                 "--servername", "localhost", "--count", 500, "--concurrency", 5, "--max-failures", 20,
                 "--timeout", 30)
    ready = fan.event()
    assert ready["held"] == 0 and ready["stopped_after_failures"] is True
    assert 20 <= ready["failed"] <= 25 and ready["attempted"] < 500, ready   # the 5 in flight may fail too
    fan.proc.stdin.close()   # end of input closes the run
    assert fan.event()["event"] == "done" and fan.proc.wait(10) == 0


def test_fanout_devices_ping_within_their_keepalive(node, certs):
    # EMQX closes a connection silent for 1.5 x its keepalive (here 3 s): held devices must ping.
    fan = Fanout("--targets", "%s:8883" % node.host, "--tls", "--cafile", os.path.join(certs, "cacert.pem"),
                 "--servername", "localhost", "--count", 30, "--keepalive", 2, "--timeout", 30)
    ready = fan.event()
    assert ready["held"] == 30, ready
    time.sleep(6)
    status = fan.ask("status")
    assert status["held"] == 30 and status["dropped"] == 0, status
    assert fan.ask("close")["dropped"] == 0 and fan.proc.wait(10) == 0
