"""The floating address of two load balancers (iothub.emq.lb_vip), as devices see it: the tests the haproxy_lb and
nginx_lb scenarios share. A scenario's tests/test_a_vip.py defines the fixture ``vip`` (a Vip) and imports these.

Every check runs from the controller, on the scenario's own bridge; the failover is caused by stopping the
holder's load balancer service, then the holder's container (both started again by the test), and timed by a
new device every 0.2 s through the floating address. The times are printed and written to
tests/output/vip-figures.txt, never asserted: these machines are shared and noisy.
"""

import dataclasses
import os
import pathlib
import subprocess
import threading
import time

import testinfra

import lbtest

AUTH_FILE = "/etc/keepalived/iothub-vrrp-auth.conf"
CONF_FILE = "/etc/keepalived/keepalived.conf"
PROBE_INTERVAL = 0.2
FIGURES = pathlib.Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", ".")) / "tests" / "output" / "vip-figures.txt"


@dataclasses.dataclass
class Vip:
    lbs: dict  # {container name: private address}, the preferred holder first
    address: str
    service: str  # the load balancer's systemd unit
    kind: str  # its inventory group
    ca: pathlib.Path
    password: str
    port: int = 8883
    wss_port: int = 8084

    def other(self, name):
        return next(n for n in self.lbs if n != name)


def _host(name):
    return testinfra.get_host("docker://" + name)


def _running(name):
    out = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", name], capture_output=True, text=True)
    return out.stdout.strip() == "true"


def holders(vip):
    """The load balancers (of those running) whose interfaces hold the floating address now."""
    out = []
    for name in vip.lbs:
        if _running(name):
            addresses = _host(name).run("ip -4 -o addr show").stdout
            if " %s/" % vip.address in addresses:
                out.append(name)
    return out


def wait_for_holder(vip, expected=None, timeout=30):
    """The one holder, once exactly one load balancer holds the address (expected, when given)."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        seen = holders(vip)
        if len(seen) == 1 and (expected is None or seen == [expected]):
            return seen[0]
        time.sleep(0.3)
    raise AssertionError("the floating address %s is held by %s, expected %s" % (vip.address, seen, expected or "one load balancer"))


def stays_with(vip, holder, seconds):
    """Assert the address stays on holder for seconds (no flap back to a returning load balancer)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert holders(vip) == [holder], "the floating address moved from %s: %s" % (holder, holders(vip))
        time.sleep(0.5)


def report(request, line):
    """A measured figure: into tests/output/vip-figures.txt (make test prints it) and past pytest's capture."""
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    with FIGURES.open("a", encoding="utf-8") as fh:
        fh.write("%s %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%S"), line))
    request.config.pluginmanager.getplugin("terminalreporter").write_line(line)


def outage(probe, since):
    """(seconds the devices could not connect, failed connects) after `since` on the probe's clock: from the first
    failed connect to the first one that succeeded after it; (0.0, 0) when none failed."""
    after = [(t, err) for t, err in probe.results if t >= since]
    first_fail = next((t for t, err in after if err), None)
    if first_fail is None:
        return 0.0, 0
    back = next((t for t, err in after if t > first_fail and not err), None)
    assert back is not None, "no device connected through the floating address after the failover: %s" % after[-10:]
    return round(back - first_fail, 2), sum(1 for t, err in after if err and t < back)


def wait_for_devices(probe, since, successes=5, timeout=30):
    """Wait until the probe has connected `successes` devices in a row after a failure past `since`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        after = [err for t, err in probe.results if t >= since]
        if any(after) and len(after) >= successes and not any(after[-successes:]):
            return
        time.sleep(0.2)


def device_roundtrip(vip):
    """A device over TLS and one over secure WebSocket through the floating address exchange a message."""
    sub = lbtest.Device(vip.address, vip.wss_port, vip.ca, "wss")
    pub = lbtest.Device(vip.address, vip.port, vip.ca, "mqtts")
    try:
        lbtest.publish_and_receive(sub, pub, payload=b"through the floating address")
    finally:
        sub.close()
        pub.close()


# ---- the tests --------------------------------------------------------------------------------------

def test_vip_is_held_by_the_preferred_load_balancer_only(vip):
    first = list(vip.lbs)[0]
    assert wait_for_holder(vip, first) == first
    for name, address in vip.lbs.items():
        host = _host(name)
        assert host.service("keepalived").is_running and host.service("keepalived").is_enabled
        peers = [a for n, a in vip.lbs.items() if n != name]
        conf = host.file(CONF_FILE).content_string
        assert "nopreempt" in conf and "unicast_src_ip %s" % address in conf
        assert all(peer in conf for peer in peers)
        assert vip.password not in conf
        auth = host.file(AUTH_FILE)
        assert (auth.user, auth.group, auth.mode) == ("root", "root", 0o600)
        # VRRP only from the other load balancer.
        table = host.check_output("nft list table inet iothub_lb_vip")
        accepts = [line for line in table.splitlines() if "ip protocol vrrp ip saddr" in line and line.strip().endswith("accept")]
        assert len(accepts) == 1 and all(peer in accepts[0] for peer in peers), table
        assert "ip protocol vrrp drop" in table, table


def test_devices_connect_through_the_vip(vip):
    assert lbtest.connack(vip.address, vip.port, vip.ca) is None
    device_roundtrip(vip)


def test_summary_and_verify_name_the_holder(vip):
    """playbooks/summary.yml and verify.yml (tag verify_vip) name the floating address and the load balancer holding
    it, and verify checks MQTT over TLS and secure WebSocket through it as a device."""
    holder = wait_for_holder(vip)
    playbooks = pathlib.Path(__file__).resolve().parents[2] / "playbooks"
    members = "(%s %s)" % (vip.kind, ", ".join(vip.lbs))
    verify = lbtest.playbook(playbooks / "verify.yml", "all", "--tags", "verify_vip",
                             "-e", "verify_mqtt_username=%s" % lbtest.BACKEND[0], "-e", "verify_mqtt_password=%s" % lbtest.BACKEND[1])
    out = " ".join(verify.stdout.split())
    assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr[-2000:]
    assert "Floating address %s %s: held by %s." % (vip.address, members, holder) in out, out[-3000:]
    assert "Every check passed." in out, out[-3000:]
    summary = lbtest.playbook(playbooks / "summary.yml", "all")
    out = " ".join(summary.stdout.split())
    assert summary.returncode == 0, summary.stdout[-3000:] + summary.stderr[-2000:]
    assert "Floating address %s %s: mqtts://%s:%d wss://%s:%d/mqtt - held by %s" % (
        vip.address, members, vip.address, vip.port, vip.address, vip.wss_port, holder) in out, out[-3000:]


def test_the_vrrp_password_is_never_logged(vip):
    log = pathlib.Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "ansible.log"
    assert log.exists() and vip.password not in log.read_text(errors="replace")


def test_vip_moves_when_the_holders_load_balancer_stops(vip, request):
    holder = wait_for_holder(vip)
    other = vip.other(holder)
    # A device with a short keepalive: its next PINGREQ after the failover reaches the new holder, which knows no
    # such connection and resets it, as a real device's keepalive finds out.
    device = lbtest.Device(vip.address, vip.port, vip.ca, "mqtts", keepalive=5)
    try:
        with lbtest.Probe(vip.address, vip.port, vip.ca, interval=PROBE_INTERVAL, limit=400) as probe:
            time.sleep(1.5)
            since = probe.results[-1][0]
            _host(holder).run("systemctl stop %s" % vip.service)
            wait_for_holder(vip, other, timeout=30)
            wait_for_devices(probe, since)
        seconds, failed = outage(probe, since)
        report(request, "%s stopped on %s: the floating address moved to %s; devices could not connect for %.1f s "
               "(%d failed of %d, a new device every %.1f s)" % (vip.service, holder, other, seconds, failed,
                                                                 len(probe.results), PROBE_INTERVAL))
        # The connected device lost its load balancer (closed by HAProxy's stop, or reset by the new holder at its
        # next keepalive when NGINX's graceful stop outlasts the failover); it connects again through the same
        # address (device_roundtrip below).
        deadline = time.monotonic() + 30
        while not device.disconnects and time.monotonic() < deadline:
            time.sleep(0.5)
        assert device.disconnects, "the device on the stopped load balancer was not disconnected"
    finally:
        device.close()
    device_roundtrip(vip)
    # The load balancer returns: its check passes again, but the address stays where it is (nopreempt).
    _host(holder).run("systemctl start %s" % vip.service)
    stays_with(vip, other, 8)
    assert _host(holder).service(vip.service).is_running


def test_vip_moves_when_the_holders_host_stops(vip, request):
    holder = wait_for_holder(vip)
    other = vip.other(holder)
    stopper = threading.Thread(target=subprocess.run, args=(["docker", "stop", holder],), kwargs={"capture_output": True})
    try:
        with lbtest.Probe(vip.address, vip.port, vip.ca, interval=PROBE_INTERVAL, limit=600) as probe:
            time.sleep(1.5)
            since = probe.results[-1][0]
            stopper.start()
            wait_for_holder(vip, other, timeout=40)
            wait_for_devices(probe, since)
        seconds, failed = outage(probe, since)
        report(request, "container %s stopped: the floating address moved to %s; devices could not connect for %.1f s "
               "(%d failed of %d, a new device every %.1f s)" % (holder, other, seconds, failed, len(probe.results), PROBE_INTERVAL))
        device_roundtrip(vip)
    finally:
        stopper.join(60)
        subprocess.run(["docker", "start", holder], capture_output=True, check=True)
    # The host returns, its load balancer and keepalived start at boot; the address stays (nopreempt).
    deadline = time.monotonic() + 90
    host = _host(holder)
    while time.monotonic() < deadline:
        if host.run("systemctl is-active keepalived %s" % vip.service).stdout.split() == ["active", "active"]:
            break
        time.sleep(1)
    assert host.service("keepalived").is_running and host.service(vip.service).is_running
    stays_with(vip, other, 8)
    assert lbtest.connack(vip.address, vip.port, vip.ca) is None
