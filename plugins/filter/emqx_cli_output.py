# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Parsed output of EMQX's CLI, for tasks that read ``emqx ctl`` with the command module."""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types

from ansible_collections.iothub.emq.plugins.module_utils.emqx_cli import parse_status_json


def emqx_cluster_status(stdout):
    """``emqx ctl cluster status --json`` output as {running_nodes, stopped_nodes}; {} when it is not that JSON (node down)."""
    if stdout is None:
        return {}
    if not isinstance(stdout, string_types):
        raise AnsibleFilterError("emqx_cluster_status expects the command's stdout (a string), got %s" % type(stdout).__name__)
    return parse_status_json(stdout) or {}


def emqx_cluster_members(hosts, roles=None):
    """One line per node, sorted: "<node>  running|<state>  <version>[  <role>]", or "<name>  not responding".

    ``hosts`` are the play's hosts' variables (``ansible_play_hosts | map('extract', hostvars)``): each host's
    ``__emq_cluster_status`` (what iothub.emq.emq_cluster_info returned), or, when the role skipped that
    read because discovery had already formed the expected cluster, ``__emq_cluster_settle`` (the same
    module's earlier read); hosts without either, or that skipped both, are left out; and ``__emq_node_name``
    or the inventory name for a node that did not answer. ``roles``: {node name: core|replicant} (the
    ``role_by_name`` of iothub.emq.emq_deployment); each node's role ends its line when given.
    """
    roles = roles if isinstance(roles, Mapping) else {}
    lines = []
    for host in hosts or []:
        status = host.get("__emq_cluster_status")
        if not isinstance(status, Mapping) or status.get("skipped"):
            status = host.get("__emq_cluster_settle")
        if not isinstance(status, Mapping) or status.get("skipped"):
            continue
        if status.get("node"):
            state = "running" if status.get("state") == "started" else status.get("state")
            line = "%s  %s  %s" % (status["node"], state, status.get("version"))
            name = status["node"]
        else:
            name = host.get("__emq_node_name") or host.get("inventory_hostname")
            line = "%s  not responding" % name
        if roles.get(name):
            line += "  %s" % roles[name]
        lines.append(line)
    return sorted(lines)


class FilterModule(object):
    def filters(self):
        return {"emqx_cluster_status": emqx_cluster_status, "emqx_cluster_members": emqx_cluster_members}
