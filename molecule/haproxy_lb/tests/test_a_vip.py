"""Two HAProxy load balancers share the floating address 172.30.3.100 (iothub.emq.lb_vip): the tests of
molecule/_shared/viptest.py. They run first in the scenario (the file name sorts first), right after the converge,
while the preferred load balancer holds the address (the later tests restart HAProxy/NGINX, which may move it); they
stop a load balancer and its container and start them again."""

import os
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "_shared"))
import viptest  # noqa: E402  (molecule/_shared: the floating-address tests the load-balancer scenarios share)
# In this order: the address on the preferred load balancer first, then the failovers.
from viptest import (  # noqa: E402,F401,I001  (collected by pytest here, in this order)
    test_vip_is_held_by_the_preferred_load_balancer_only,
    test_devices_connect_through_the_vip,
    test_summary_and_verify_name_the_holder,
    test_the_vrrp_password_is_never_logged,
    test_vip_moves_when_the_holders_load_balancer_stops,
    test_vip_moves_when_the_holders_host_stops,
)


@pytest.fixture(scope="module")
def vip():
    return viptest.Vip(
        lbs={"haproxy-lb-1": "172.30.3.10", "haproxy-lb-2": "172.30.3.13"},
        address="172.30.3.100",
        kind="haproxy_lb",
        service="haproxy",
        ca=pathlib.Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "lab-ca" / "ca.pem",
        password="vrrp30-x",
    )
