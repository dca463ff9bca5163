"""Fixtures for the load generator's tests: a stand-in EMQX node on loopback with TCP and TLS listeners."""

import os
import shutil
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "emqx_standin", "tests"))

import standin  # noqa: E402  (test equipment: tests/emqx_standin/tests/standin.py)

SSL_LISTENER = """
listeners.ssl.default {
  bind = "%s:8883"
  max_connections = infinity
  ssl_options {
    certfile = "${EMQX_ETC_DIR}/certs/cert.pem"
    keyfile = "${EMQX_ETC_DIR}/certs/key.pem"
    versions = ["tlsv1.3", "tlsv1.2"]
  }
}
"""


def _certs(tmp_path_factory, name):
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make test certificates")
    return standin.make_certs(str(tmp_path_factory.mktemp(name)))


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """CA and a server certificate for DNS:localhost / IP:127.0.0.1 (directory path)."""
    return _certs(tmp_path_factory, "certs")


@pytest.fixture(scope="session")
def other_certs(tmp_path_factory):
    """An unrelated CA: verifying the node's certificate with it must fail."""
    return _certs(tmp_path_factory, "other-certs")


def _running_node(tmp_path_factory, certs, extra=""):
    host = standin.next_host()
    n = standin.StandinNode(str(tmp_path_factory.mktemp("node")), host, certs=certs, extra=extra)
    with open(os.path.join(n.etc, "emqx.conf")) as fh:
        conf = fh.read().replace("listeners.ssl.default = marked_for_deletion\n", "")
    n.write_conf(conf + SSL_LISTENER % host)
    n.start()
    yield n
    try:
        n.stop(timeout=5)
    except Exception:
        n.kill()


@pytest.fixture(scope="session")
def node(tmp_path_factory, certs):
    """One running stand-in node: plain MQTT on host:1883, MQTT/TLS on host:8883."""
    yield from _running_node(tmp_path_factory, certs)


@pytest.fixture(scope="session")
def tight_node(tmp_path_factory, certs):
    """A node whose sessions queue 10 messages at most: a fast publisher makes it drop messages."""
    yield from _running_node(tmp_path_factory, certs, "mqtt.max_mqueue_len = 10\nmqtt.max_inflight = 1\n")


@pytest.fixture(scope="session")
def proxy_node(tmp_path_factory, certs):
    """A node whose plain MQTT listener expects a PROXY protocol header first, as behind a load balancer."""
    yield from _running_node(tmp_path_factory, certs, "listeners.tcp.default.proxy_protocol = true\n")
