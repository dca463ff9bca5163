"""The monitoring host of the deployment (iothub.emq.prometheus, group prometheus), as an operator uses it:
Prometheus's own HTTP API on the host's private address. Runs after test_site.py, on the whole deployment it
leaves: every target is up, EMQX's connection count follows real devices, and stopping a node fires the
alerts an operator would be paged for, which clear once the node is back."""

import json
import os
import pathlib
import sys
import time
import urllib.parse
import urllib.request

import testinfra

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "_shared"))
import lbtest  # noqa: E402

PROMETHEUS = "http://172.30.5.30:9090"
NODES = {"site-emqx-1": "172.30.5.11", "site-emqx-2": "172.30.5.12", "site-emqx-3": "172.30.5.13"}
LBS = {"site-haproxy": "172.30.5.20", "site-nginx": "172.30.5.21"}
CA = pathlib.Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent / ".lab-ca" / "ca.pem"
STATS_PASSWORD = "molecule-site-stats-pw"


def _get(path, **params):
    url = PROMETHEUS + path + ("?" + urllib.parse.urlencode(params) if params else "")
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    return body["data"]


def _query(expr):
    return [(s["metric"], float(s["value"][1])) for s in _get("/api/v1/query", query=expr)["result"]]


def _firing():
    return [a for a in _get("/api/v1/alerts")["alerts"] if a["state"] == "firing"]


def _wait(what, check, timeout=60, interval=1):
    deadline, last = time.time() + timeout, None
    while time.time() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("%s within %ss; last: %r" % (what, timeout, last))


def test_every_node_and_load_balancer_is_scraped_and_up():
    def targets():
        active = _get("/api/v1/targets")["activeTargets"]
        by_job = {}
        for t in active:
            by_job.setdefault(t["labels"]["job"], []).append(t)
        whole = (len(by_job.get("emqx", [])) == 3 and len(by_job.get("haproxy", [])) == 1
                 and len(by_job.get("nginx", [])) == 1 and len(by_job.get("frontdoor", [])) == 4)
        return by_job if whole and all(t["health"] == "up" for t in active) else None
    by_job = _wait("every target up", targets)
    assert sorted(t["labels"]["node"] for t in by_job["emqx"]) == sorted("emqx@" + a for a in NODES.values())
    assert {t["labels"]["host"] for t in by_job["haproxy"] + by_job["nginx"]} == set(LBS)
    # The load balancers' metrics are their own: HAProxy's backends, NGINX's connections.
    assert _query('haproxy_backend_active_servers{job="haproxy",proxy="emqx_mqtt"}')[0][1] == 3
    assert _query('nginx_up{job="nginx"}')[0][1] == 1
    # The certificate of every device endpoint is read through TLS (the lab CA's, days ahead).
    expiries = _query('probe_ssl_earliest_cert_expiry{job="frontdoor"} - time()')
    assert len(expiries) == 4 and all(seconds > 86400 for _, seconds in expiries), expiries


def test_emqx_connections_count_follows_the_devices():
    def total():
        return sum(v for _, v in _query('emqx_connections_count{job="emqx"}'))
    before = _wait("EMQX's connection count", lambda: _query('emqx_connections_count{job="emqx"}'))
    base = sum(v for _, v in before)
    devices = [lbtest.Device(LBS[lb], port, CA, transport=t)
               for lb in LBS for port, t in ((8883, "mqtts"), (8084, "wss")) for _ in range(2)]
    try:
        _wait("8 more connections counted", lambda: total() >= base + 8, timeout=30)
    finally:
        for d in devices:
            d.close()
    _wait("the count back down", lambda: total() <= base, timeout=30)


def test_a_stopped_node_fires_its_alerts_and_they_clear_when_it_is_back():
    node = testinfra.get_host("docker://site-emqx-3")
    _wait("no alert firing before the node stops", lambda: not _firing() or None, timeout=60)
    node.check_output("systemctl stop emqx")
    try:
        def paged():
            names = {(a["labels"]["alertname"], a["labels"].get("node") or a["labels"].get("proxy")) for a in _firing()}
            wanted = {("EMQXNodeDown", "emqx@172.30.5.13"), ("LoadBalancerBackendDown", "emqx_mqtt")}
            return names if wanted <= names and any(n == "EMQXClusterNotWhole" for n, _ in names) else None
        print("alerts firing with site-emqx-3 stopped: %s" % sorted(_wait("the alerts of a stopped node", paged)))
    finally:
        node.check_output("systemctl start emqx")
    _wait("every alert cleared once the node is back", lambda: not _firing() or None, timeout=90)


def test_the_stats_password_is_only_in_its_own_file():
    monitor = testinfra.get_host("docker://site-monitor")
    assert STATS_PASSWORD not in monitor.file("/etc/prometheus/prometheus.yml").content_string
    secret = monitor.file("/etc/prometheus/iothub-secrets/haproxy-site-haproxy")
    assert (secret.user, secret.group, secret.mode) == ("root", "prometheus", 0o640)
    # Prometheus answers on the private address only.
    assert "127.0.0.1:9090" not in monitor.check_output("ss -ltn")
