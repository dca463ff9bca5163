# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""host:port as a listen directive or a URL wants it: an IPv6 address in brackets."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.iothub.emq.plugins.plugin_utils.emq_deployment import url_host


def host_port(host, port):
    """'10.0.0.1', 9113 -> '10.0.0.1:9113'; 'fd00::1', 9113 -> '[fd00::1]:9113' (a bracketed one stays as it is)."""
    host = '' if host is None else str(host).strip()
    if not host:
        raise AnsibleFilterError('host_port: the host is empty')
    try:
        number = int(str(port).strip())
    except ValueError:
        raise AnsibleFilterError('host_port: %r is not a port number' % (port,)) from None
    if not 1 <= number <= 65535:
        raise AnsibleFilterError('host_port: %d is not a port number (1-65535)' % number)
    return '%s:%d' % (url_host(host), number)


class FilterModule(object):
    def filters(self):
        return {'host_port': host_port}
