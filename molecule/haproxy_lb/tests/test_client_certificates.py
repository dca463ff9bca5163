"""Devices that prove who they are with a client certificate (emq_node_authentication: client_certificate):
HAProxy refuses a device without a certificate from the CA, and EMQX takes the CN that HAProxy forwards
in the PROXY v2 header as the username. The scenario is converged that way for these tests and then back
to its own inventory (passwords), so the tests after this file see the deployment they expect.
"""

import json
import os
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "_shared"))
import lbtest  # noqa: E402  (molecule/_shared: helpers the load-balancer scenarios share)

LB_IP = "172.30.3.10"
NODES = {"haproxy-lb-emqx-1": "172.30.3.11", "haproxy-lb-emqx-2": "172.30.3.12"}
MQTTS = 8883
API = lbtest.EmqxApi(NODES, "molecule", "molecule-api-secret-0123456789")
SCENARIO = pathlib.Path(__file__).resolve().parents[1]
EPHEMERAL = pathlib.Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
CA_DIR = EPHEMERAL / "lab-ca"
CA = CA_DIR / "ca.pem"


def _converge(*args):
    result = lbtest.playbook(SCENARIO / "converge.yml", "all", *args, timeout=900)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    return result


@pytest.fixture(scope="module")
def client_certificates(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("devices")
    cert = lbtest.client_certificate(workdir, CA_DIR, "sensor-cert-7")
    _converge("-e", json.dumps({"emq_node_authentication": "client_certificate", "haproxy_lb_tls_client_ca_file": str(CA)}))
    try:
        yield cert
    finally:
        _converge()


def test_a_device_with_a_certificate_from_the_ca_connects_as_its_cn(client_certificates):
    device = lbtest.Device(LB_IP, MQTTS, CA, clientid="sensor-cert-7", credentials=None, certificate=client_certificates)
    try:
        info = API.client_info(device.clientid, "haproxy-lb-emqx-1")
        assert info["username"] == "sensor-cert-7", info
    finally:
        device.close()


def test_a_device_without_a_certificate_is_refused_at_the_lb(client_certificates):
    refused = lbtest.connack(LB_IP, MQTTS, CA, credentials=None)
    assert refused is not None and not refused.startswith("CONNACK"), refused  # no MQTT exchange at all


def test_a_certificate_from_another_ca_is_refused_at_the_lb(client_certificates, tmp_path):
    other_ca = tmp_path / "other-ca"
    other_ca.mkdir()
    stranger_cert, _ = lbtest.expired_certificate(other_ca, "stranger")  # self-signed: not from the lab CA
    with pytest.raises(AssertionError):
        lbtest.Device(LB_IP, MQTTS, CA, credentials=None, certificate=(stranger_cert, other_ca / "expired.key"))
