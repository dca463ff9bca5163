#!/usr/bin/env python3
"""Benchmark: how many idle MQTT connections one stand-in broker process holds, and at what memory cost.

Starts one broker (a subprocess running emqx_standin.broker on 127.0.0.1, port chosen by the kernel), opens
N idle MQTT 3.1.1 connections from this process with asyncio (loopback only, several 127.0.0.x source
addresses), waits for every CONNACK, prints the broker's RSS before/after and the memory per connection,
then closes everything. Bounded by --connections and --timeout.

    python3 tests/emqx_standin/bench_connections.py [--connections 10000] [--timeout 180]
"""

import argparse
import asyncio
import json
import os
import resource
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

RUNNER = r"""
import asyncio, json, sys
sys.path.insert(0, sys.argv[1])
from emqx_standin.broker import Broker

def log(level, text):
    if level in ("warning", "error"):
        print("LOG %s %s" % (level, text), file=sys.stderr, flush=True)

async def main():
    b = Broker("bench@127.0.0.1", {"tcp": {"default": {"enable": True, "bind": "127.0.0.1:0",
               "max_connections": "infinity"}}}, {}, lambda m: None, log)
    await b.start()
    loop = asyncio.get_running_loop()
    print(json.dumps({"port": b.listener_ports()["tcp:default"]}), flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line or line.strip() == b"stop":
            break
        if line.strip() == b"count":
            print(json.dumps({"connections": b.connection_count()}), flush=True)
    await b.stop()

asyncio.run(main())
"""


def rss_kib(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                k, v = line.split(":", 1)
                out[k] = int(v.split()[0])
    return out


def connect_packet(clientid, keepalive):
    cid = clientid.encode()
    vh = b"\x00\x04MQTT\x04\x02" + struct.pack("!H", keepalive)
    body = vh + struct.pack("!H", len(cid)) + cid
    return bytes((0x10, len(body))) + body  # body < 128 bytes


class Idle(asyncio.Protocol):
    def __init__(self, done):
        self.done = done
        self.buf = b""
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buf += data
        if len(self.buf) >= 4 and not self.done.done():
            self.done.set_result(self.buf[:4] == b"\x20\x02\x00\x00")

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(False)


async def open_all(port, n, concurrency, keepalive, deadline, sources):
    loop = asyncio.get_running_loop()
    sem = asyncio.Semaphore(concurrency)
    transports = []
    failures = {"refused": 0, "error": 0}

    async def one(i):
        async with sem:
            if time.monotonic() > deadline:
                failures["error"] += 1
                return
            done = loop.create_future()
            try:
                tr, _p = await asyncio.wait_for(loop.create_connection(
                    lambda: Idle(done), "127.0.0.1", port, local_addr=("127.0.0.%d" % (1 + i % sources), 0)), 10)
                tr.write(connect_packet("bench-%d" % i, keepalive))
                ok = await asyncio.wait_for(done, 10)
            except (OSError, asyncio.TimeoutError):
                failures["error"] += 1
                return
            if ok:
                transports.append(tr)
            else:
                failures["refused"] += 1
                tr.close()

    await asyncio.gather(*(one(i) for i in range(n)))
    return transports, failures


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--connections", "-n", type=int, default=10000)
    ap.add_argument("--concurrency", type=int, default=256, help="connections being set up at once")
    ap.add_argument("--keepalive", type=int, default=600, help="MQTT keepalive of the idle clients (s)")
    ap.add_argument("--timeout", type=float, default=180.0, help="overall limit for opening connections (s)")
    ap.add_argument("--sources", type=int, default=8, help="number of 127.0.0.x source addresses")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.connections + 256
    if hard != resource.RLIM_INFINITY and hard < want:
        print("RLIMIT_NOFILE hard limit %d < %d: reducing connections to %d" % (hard, want, hard - 256))
        args.connections = hard - 256
        want = hard
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    broker = subprocess.Popen([sys.executable, "-c", RUNNER, HERE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        port = json.loads(broker.stdout.readline())["port"]
        time.sleep(0.5)
        before = rss_kib(broker.pid)
        t0 = time.monotonic()
        loop = asyncio.new_event_loop()
        transports, failures = loop.run_until_complete(
            open_all(port, args.connections, args.concurrency, args.keepalive, t0 + args.timeout, args.sources))
        elapsed = time.monotonic() - t0
        loop.run_until_complete(asyncio.sleep(2.0))  # let the broker settle
        broker.stdin.write("count\n")
        broker.stdin.flush()
        held = json.loads(broker.stdout.readline())["connections"]
        after = rss_kib(broker.pid)
        n = len(transports)
        per = (after["VmRSS"] - before["VmRSS"]) / n if n else float("nan")
        print("connections requested      : %d" % args.connections)
        print("connections held (client)  : %d  (refused %d, errors %d)"
              % (n, failures["refused"], failures["error"]))
        print("connections held (broker)  : %d" % held)
        print("time to open               : %.1f s  (%.0f conn/s)" % (elapsed, n / elapsed if elapsed else 0))
        print("broker RSS before          : %d KiB" % before["VmRSS"])
        print("broker RSS after           : %d KiB  (peak %d KiB)" % (after["VmRSS"], after["VmHWM"]))
        print("memory per connection      : %.2f KiB" % per)
        for tr in transports:
            tr.close()
        loop.run_until_complete(asyncio.sleep(0.5))
        loop.close()
        broker.stdin.write("stop\n")
        broker.stdin.flush()
        broker.wait(30)
        return 0 if n == args.connections and held == n else 1
    finally:
        if broker.poll() is None:
            broker.kill()
            broker.wait(10)


if __name__ == "__main__":
    sys.exit(main())
