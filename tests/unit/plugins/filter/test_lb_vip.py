# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of the lb_vip filters on canned facts."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.iothub.emq.plugins.filter.lb_vip import lb_vip_interface, lb_vip_lines, lb_vip_password_problems

FACTS = {
    'interfaces': ['lo', 'eth0', 'eth-mgmt'],
    'lo': {'ipv4': {'address': '127.0.0.1', 'netmask': '255.0.0.0'}},
    'eth0': {'ipv4': {'address': '10.0.1.11', 'netmask': '255.255.255.0'}},
    'eth_mgmt': {'ipv4': {'address': '192.168.9.11', 'netmask': '255.255.255.0'}},
}
VIP = {'address': '10.0.1.100'}


def test_interface_is_the_one_holding_the_private_address():
    where = lb_vip_interface(FACTS, VIP, '10.0.1.11')
    assert where == {'interface': 'eth0', 'prefix': 24, 'network': '10.0.1.0/24', 'problems': []}


def test_a_held_address_is_not_the_hosts_own():
    facts = dict(FACTS, eth0={'ipv4': FACTS['eth0']['ipv4'],
                              'ipv4_secondaries': [{'address': '10.0.1.100', 'netmask': '255.255.255.0'}]})
    assert lb_vip_interface(facts, VIP, '10.0.1.11')['problems'] == []


def test_interface_given_with_a_dash():
    where = lb_vip_interface(FACTS, {'address': '192.168.9.100'}, '10.0.1.11', 'eth-mgmt')
    assert where['interface'] == 'eth-mgmt' and where['network'] == '192.168.9.0/24' and where['problems'] == []


@pytest.mark.parametrize('vip, private, interface, expected', [
    ('10.0.2.100', '10.0.1.11', '', 'is outside 10.0.1.0/24, the subnet of eth0'),
    ('10.0.1.11', '10.0.1.11', '', "this host's own address on eth0"),
    ('192.168.9.11', '10.0.1.11', '', "this host's own address on eth-mgmt"),
    ('10.0.1.100', '10.0.1.99', '', 'No interface of this host has its private address 10.0.1.99'),
    ('10.0.1.100', '10.0.1.11', 'eth9', 'lb_vip_interface is eth9, but this host has no such interface'),
])
def test_interface_problems(vip, private, interface, expected):
    problems = lb_vip_interface(FACTS, {'address': vip}, private, interface)['problems']
    assert any(expected in p for p in problems), problems


def test_interface_needs_dictionaries():
    with pytest.raises(AnsibleFilterError):
        lb_vip_interface([], VIP, '10.0.1.11')


@pytest.mark.parametrize('password', ['a', 'Vrrp-8ch', 'x_y.z:1%'])
def test_passwords_keepalived_can_hold(password):
    assert lb_vip_password_problems(password) == []


@pytest.mark.parametrize('password, expected', [
    (None, 'lb_vip_password is not set'),
    ('', 'lb_vip_password is not set'),
    ('nine-char', 'has 9 characters'),
    ('a b', 'holds a space'),
    ('p#ss', 'holds a space'),
    ('p"ss', 'holds a space'),
    ('päss', 'outside printable ASCII'),
])
def test_password_problems_never_show_it(password, expected):
    problems = lb_vip_password_problems(password)
    assert any(expected in p for p in problems), problems
    if password:
        assert not any(password in p for p in problems)


VIPS = [{'address': '10.0.1.100', 'kind': 'haproxy_lb', 'hosts': ['lb-1', 'lb-2'],
         'urls': {'mqtts': 'mqtts://10.0.1.100:8883', 'wss': 'wss://10.0.1.100:8084/mqtt'}}]


def test_lines_name_the_holder():
    held = {'lb-1': '', 'lb-2': '3: eth0    inet 10.0.1.100/24 scope global secondary eth0'}
    assert lb_vip_lines(VIPS, held) == [
        'Floating address 10.0.1.100 (haproxy_lb lb-1, lb-2): mqtts://10.0.1.100:8883  wss://10.0.1.100:8084/mqtt - held by lb-2']


def test_lines_say_when_no_one_holds_it_or_two_do():
    assert lb_vip_lines(VIPS, {})[0].endswith('- held by no load balancer')
    assert lb_vip_lines(VIPS, {'lb-1': 'x', 'lb-2': 'y'})[0].endswith('- held by lb-1, lb-2')
    assert lb_vip_lines([], {}) == []
    with pytest.raises(AnsibleFilterError):
        lb_vip_lines(VIPS, [])
