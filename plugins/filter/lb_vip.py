# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the role lb_vip checks on a host before anything changes: the interface of the floating address, and
the VRRP password keepalived can hold."""

from __future__ import annotations

import ipaddress
import re

from ansible.errors import AnsibleFilterError

# keepalived reads a configuration word up to white space; '#' and '!' start a comment; VRRP version 2's
# simple password is 8 bytes (keepalived keeps no more).
PASSWORD_MAX = 8
PASSWORD_BAD = re.compile(r'[\s#!"\'\\{}]')


def _interface_facts(facts, name):
    """Ansible's facts of an interface (its key has '-' and ':' as '_')."""
    return facts.get(name) or facts.get(re.sub(r'[-:]', '_', name)) or {}


def _ipv4_addresses(entry):
    """[(address, network)] of an interface's facts: its address and its secondaries."""
    out = []
    for item in [entry.get('ipv4') or {}] + list(entry.get('ipv4_secondaries') or []):
        address, netmask = item.get('address'), item.get('netmask')
        if address and netmask:
            out.append((address, ipaddress.ip_network('%s/%s' % (address, netmask), strict=False)))
    return out


def lb_vip_interface(facts, vip, private_address, interface=''):
    """{interface, prefix, network, problems}: where this host puts the floating address of vip (its lb['vip']).

    facts: the host's ansible_facts (interfaces and their ipv4); private_address: the load balancer's private
    address (the unicast source); interface: lb_vip_interface ('' = the one holding private_address).
    """
    if not isinstance(facts, dict) or not isinstance(vip, dict):
        raise AnsibleFilterError('lb_vip_interface expects the host facts and a load balancer vip entry (a dictionary each)')
    problems = []
    names = [str(n) for n in facts.get('interfaces') or []]
    address = ipaddress.ip_address(str(vip['address']))
    private_address = str(private_address)
    chosen = str(interface or '')
    if chosen:
        if chosen not in names:
            problems.append('lb_vip_interface is %s, but this host has no such interface (it has %s); write one of them, or '
                            '"" for the one holding %s.' % (chosen, ', '.join(sorted(names)), private_address))
    else:
        for name in sorted(names):
            if any(item[0] == private_address for item in _ipv4_addresses(_interface_facts(facts, name))):
                chosen = name
                break
        if not chosen:
            problems.append('No interface of this host has its private address %s (the unicast source of VRRP); set the '
                            'load balancer\'s private address to one of its IPv4 addresses, or lb_vip_interface.' % private_address)
    network, prefix = None, None
    if chosen in names:
        own = _ipv4_addresses(_interface_facts(facts, chosen))
        primary = own[0] if own else None
        if primary is None:
            problems.append('Interface %s has no IPv4 address, so the floating address %s has no subnet there; write '
                            'lb_vip_interface for the interface on the load balancers\' subnet.' % (chosen, address))
        else:
            network, prefix = primary[1], primary[1].prefixlen
            if address not in network:
                problems.append('lb_vip_address %s is outside %s, the subnet of %s on this host; devices and the other load '
                                'balancers reach it only inside that subnet: write a free address of %s.' % (address, network, chosen, network))
            if str(address) == primary[0]:
                problems.append('lb_vip_address %s is this host\'s own address on %s; write a free address of %s.' % (address, chosen, network))
    for name in names:
        if name == chosen:
            continue
        for item in _ipv4_addresses(_interface_facts(facts, name)):
            if item[0] == str(address):
                problems.append('lb_vip_address %s is this host\'s own address on %s; write a free address of the load '
                                'balancers\' subnet.' % (address, name))
    return dict(interface=chosen, prefix=prefix, network=str(network) if network else None, problems=problems)


def lb_vip_password_problems(password):
    """Why keepalived cannot use this VRRP password (never the password itself); [] when it can."""
    if password is None or str(password) == '':
        return ['lb_vip_password is not set; put a password of 1 to %d characters in a vault (ansible-vault encrypt_string).' % PASSWORD_MAX]
    text = str(password)
    problems = []
    if len(text.encode('utf-8')) > PASSWORD_MAX:
        problems.append('lb_vip_password has %d characters, but VRRP carries %d and keepalived drops the rest; write one of '
                        'at most %d.' % (len(text), PASSWORD_MAX, PASSWORD_MAX))
    if PASSWORD_BAD.search(text) or not text.isascii() or not text.isprintable():
        problems.append('lb_vip_password holds a space, quote, backslash, brace, # or ! or a character outside printable ASCII, '
                        'which keepalived\'s configuration cannot hold; use letters, digits and -_.,:;+=@%%*.')
    return problems


def lb_vip_lines(vips, held):
    """One summary line per floating address: its load balancers, device URLs and who holds it now.

    vips: the lookup emq_deployment's ``vips``; held: {host: what ``ip -4 -o addr show to <address>/32`` printed
    there} (empty or missing for a host that does not hold it, or was not asked).
    """
    if not isinstance(held, dict):
        raise AnsibleFilterError('lb_vip_lines expects a dictionary of host: output as its argument')
    lines = []
    for vip in vips or []:
        holders = [host for host in vip['hosts'] if str(held.get(host) or '').strip()]
        urls = [vip['urls'][kind] for kind in ('mqtts', 'wss', 'mqtt') if kind in vip['urls']]
        lines.append('Floating address %s (%s %s): %s - held by %s' % (
            vip['address'], vip['kind'], ', '.join(vip['hosts']), '  '.join(urls), ', '.join(holders) or 'no load balancer'))
    return lines


class FilterModule(object):
    def filters(self):
        return {'lb_vip_interface': lb_vip_interface, 'lb_vip_password_problems': lb_vip_password_problems,
                'lb_vip_lines': lb_vip_lines}
