# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Parsed output of EMQX's CLI, for tasks that read ``emqx ctl`` with the command module."""

from __future__ import annotations

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


class FilterModule(object):
    def filters(self):
        return {"emqx_cluster_status": emqx_cluster_status}
