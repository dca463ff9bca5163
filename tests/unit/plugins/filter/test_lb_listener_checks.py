# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.iothub.emq.plugins.filter.lb_listener_checks import lb_listener_checks


def test_tls_ports_get_a_handshake_and_the_others_a_connect():
    assert lb_listener_checks([8883, '8084', 1883], '10.0.0.5', [8883, 8084], {8883: 'mqtts', '8084': 'wss'}) == [
        {'name': 'mqtts', 'host': '10.0.0.5', 'port': 8883, 'type': 'tls', 'validate_certs': False},
        {'name': 'wss', 'host': '10.0.0.5', 'port': 8084, 'type': 'tls', 'validate_certs': False},
        {'name': 'tcp://10.0.0.5:1883', 'host': '10.0.0.5', 'port': 1883, 'type': 'tcp'},
    ]


def test_without_tls_ports_every_port_is_only_connected_to():
    assert [e['type'] for e in lb_listener_checks([8883, 8084], '127.0.0.1')] == ['tcp', 'tcp']


def test_each_port_once_in_the_order_given():
    assert [e['port'] for e in lb_listener_checks([8084, 8883, 8084], '127.0.0.1')] == [8084, 8883]


def test_no_ports_no_endpoints():
    assert lb_listener_checks([], '127.0.0.1', [8883]) == []


@pytest.mark.parametrize('ports, host, tls, message', [
    ('8883', '127.0.0.1', [], 'expects a list of ports'),
    ([8883], '', [], 'address to connect to is empty'),
    ([0], '127.0.0.1', [], 'the listener ports must be TCP ports'),
    (['mqtts'], '127.0.0.1', [], 'the listener ports must be TCP ports'),
    ([8883], '127.0.0.1', [70000], 'tls_ports must be TCP ports'),
])
def test_bad_input_is_refused_with_what_is_wrong(ports, host, tls, message):
    with pytest.raises(AnsibleFilterError, match=message):
        lb_listener_checks(ports, host, tls)
