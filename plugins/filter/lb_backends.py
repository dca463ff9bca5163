# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The EMQX nodes a load balancer forwards to, as haproxy_lb and nginx_lb write their server lines."""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible_collections.iothub.emq.plugins.plugin_utils.emq_deployment import NAME_BAD_CHARS, prefer_replicants, server_name


def _text(value):
    return '' if value is None else str(value)


def lb_backend_list(backends, hosts, hostvars, prefer=True, backup_allowed=True, bad_chars=NAME_BAD_CHARS):
    """[{name, address, host, role, backup}]: the explicit backends, else one entry per host of the node group.

    backends: <kind>_backends ([{name, address[, host]}], empty for the group); hosts: the group's hosts;
    hostvars: Ansible's hostvars (a host's address is emq_node_cluster_address, else ansible_host, else its name;
    its role emq_node_role, else core); prefer: with replicants among the entries, the cores become backups
    (left out when backup_allowed is false).
    """
    if not isinstance(backends, list):
        raise AnsibleFilterError('lb_backend_list: the backends must be a list of {name, address}, got %s' % type(backends).__name__)
    hostvars = hostvars if isinstance(hostvars, Mapping) else {}
    entries = []
    if backends:
        for entry in backends:
            entry = entry if isinstance(entry, Mapping) else {}
            address = _text(entry.get('address'))
            name = entry.get('name', address)
            entries.append(dict(name=server_name(_text(name), bad_chars), address=address, host=_text(entry.get('host'))))
    else:
        for host in hosts or []:
            variables = hostvars.get(host) or {}
            address = variables.get('emq_node_cluster_address')
            if address is None:
                address = variables.get('ansible_host', host)
            entries.append(dict(name=server_name(host, bad_chars), address=_text(address), host=_text(host)))
    roles = {}
    for entry in entries:
        if entry['host'] and entry['host'] in hostvars:
            roles[entry['host']] = _text((hostvars.get(entry['host']) or {}).get('emq_node_role', 'core'))
    return prefer_replicants(entries, roles, boolean(prefer, strict=False), boolean(backup_allowed, strict=False))


class FilterModule(object):
    def filters(self):
        return {'lb_backend_list': lb_backend_list}
