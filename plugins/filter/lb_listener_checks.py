# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The endpoints iothub.emq.emq_port_check checks on a load balancer for its own listeners."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError


def _port(value, what):
    try:
        port = int(value)
    except (TypeError, ValueError):
        port = 0
    if not 0 < port < 65536:
        raise AnsibleFilterError("lb_listener_checks: %s must be TCP ports (1-65535), got %r" % (what, value))
    return port


def lb_listener_checks(ports, host, tls_ports=None, names=None):
    """One endpoint per port, in order and once each: a TLS handshake for the ports of tls_ports, a TCP
    connect for the others. Certificates are not verified: the load balancer's name is checked by the
    preflight (tls_names), and from the host itself the address is not a name devices use."""
    if not isinstance(ports, (list, tuple)):
        raise AnsibleFilterError("lb_listener_checks: expects a list of ports, got %r" % (ports,))
    if not host:
        raise AnsibleFilterError("lb_listener_checks: the address to connect to is empty")
    tls = set(_port(port, 'tls_ports') for port in (tls_ports or []))
    names = dict((_port(port, 'names'), name) for port, name in (names or {}).items())
    endpoints, seen = [], set()
    for value in ports:
        port = _port(value, 'the listener ports')
        if port in seen:
            continue
        seen.add(port)
        kind = 'tls' if port in tls else 'tcp'
        endpoint = {'name': names.get(port, '%s://%s:%d' % (kind, host, port)), 'host': host, 'port': port, 'type': kind}
        if kind == 'tls':
            endpoint['validate_certs'] = False
        endpoints.append(endpoint)
    return endpoints


class FilterModule(object):
    def filters(self):
        return {'lb_listener_checks': lb_listener_checks}
