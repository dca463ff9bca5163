# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for the iothub.emq.emqx_cluster_status filter, on canned CLI output."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.iothub.emq.plugins.filter.emqx_cli_output import emqx_cluster_members, emqx_cluster_status


def test_running_and_stopped_nodes_sorted():
    out = '{"running_nodes":["emqx@10.0.0.2","emqx@10.0.0.1"],"stopped_nodes":["emqx@10.0.0.3"]}\n'
    assert emqx_cluster_status(out) == {"running_nodes": ["emqx@10.0.0.1", "emqx@10.0.0.2"], "stopped_nodes": ["emqx@10.0.0.3"]}


def test_a_warning_line_before_the_json_is_skipped():
    out = 'WARNING: something\n{"running_nodes": ["emqx@10.0.0.1"], "stopped_nodes": []}'
    assert emqx_cluster_status(out)["running_nodes"] == ["emqx@10.0.0.1"]


@pytest.mark.parametrize("out", ["", "Node 'emqx@10.0.0.1' not responding to pings.\n", '{"other": 1}', "{not json}", None])
def test_not_the_status_gives_an_empty_dict(out):
    assert emqx_cluster_status(out) == {}


def test_a_non_string_is_refused():
    with pytest.raises(AnsibleFilterError, match="stdout"):
        emqx_cluster_status(["emqx@10.0.0.1"])


def test_members_one_line_per_node_sorted():
    hosts = [
        {"inventory_hostname": "n2", "__emq_cluster_status": {"node": "emqx@10.0.0.2", "state": "started", "version": "5.8.9"}},
        {"inventory_hostname": "n1", "__emq_cluster_status": {"node": "emqx@10.0.0.1", "state": "stopped", "version": "5.8.9"}},
        {"inventory_hostname": "n3", "__emq_node_name": "emqx@10.0.0.3", "__emq_cluster_status": {"running": False}},
        {"inventory_hostname": "n4", "__emq_cluster_status": {"msg": "down"}},
        {"inventory_hostname": "n5", "__emq_cluster_status": {"skipped": True, "changed": False}},
        {"inventory_hostname": "n6"},
    ]
    assert emqx_cluster_members(hosts) == [
        "emqx@10.0.0.1  stopped  5.8.9", "emqx@10.0.0.2  running  5.8.9", "emqx@10.0.0.3  not responding", "n4  not responding"]


def test_members_from_the_settle_read_when_the_wait_was_skipped():
    hosts = [
        {"inventory_hostname": "n1", "__emq_cluster_status": {"skipped": True, "changed": False},
         "__emq_cluster_settle": {"node": "emqx@10.0.0.1", "state": "started", "version": "5.8.9"}},
        {"inventory_hostname": "n2", "__emq_cluster_settle": {"node": "emqx@10.0.0.2", "state": "started", "version": "5.8.9"}},
        {"inventory_hostname": "n3", "__emq_cluster_status": {"node": "emqx@10.0.0.3", "state": "started", "version": "5.8.9"},
         "__emq_cluster_settle": {"node": "emqx@10.0.0.3", "state": "stopped", "version": "5.8.9"}},
        {"inventory_hostname": "n4", "__emq_cluster_status": {"skipped": True}, "__emq_cluster_settle": {"skipped": True}},
    ]
    assert emqx_cluster_members(hosts) == [
        "emqx@10.0.0.1  running  5.8.9", "emqx@10.0.0.2  running  5.8.9", "emqx@10.0.0.3  running  5.8.9"]


def test_members_of_no_hosts():
    assert emqx_cluster_members([]) == [] and emqx_cluster_members(None) == []


def test_members_end_with_their_role_when_given():
    hosts = [
        {"inventory_hostname": "n1", "__emq_cluster_status": {"node": "emqx@10.0.0.1", "state": "started", "version": "5.9.1"}},
        {"inventory_hostname": "n2", "__emq_cluster_status": {"node": "emqx@10.0.0.2", "state": "started", "version": "5.9.1"}},
        {"inventory_hostname": "n3", "__emq_node_name": "emqx@10.0.0.3", "__emq_cluster_status": {"running": False}},
    ]
    roles = {"emqx@10.0.0.1": "core", "emqx@10.0.0.2": "replicant", "emqx@10.0.0.3": "replicant"}
    assert emqx_cluster_members(hosts, roles) == [
        "emqx@10.0.0.1  running  5.9.1  core", "emqx@10.0.0.2  running  5.9.1  replicant",
        "emqx@10.0.0.3  not responding  replicant"]
