# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.iothub.emq.plugins.module_utils import emqx_cli


def test_parse_status_json_with_noise_before():
    text = 'WARNING: something\n{\n  "running_nodes": ["emqx@b", "emqx@a"],\n  "stopped_nodes": []\n}\n'
    assert emqx_cli.parse_status_json(text) == dict(running_nodes=['emqx@a', 'emqx@b'], stopped_nodes=[])


@pytest.mark.parametrize('text', ['', 'usage text', '{not json}', '{"other": 1}', '{"running_nodes": "x"}'])
def test_parse_status_json_rejects(text):
    assert emqx_cli.parse_status_json(text) is None


def test_parse_status_term_one_line():
    text = "Cluster status: #{running_nodes => ['emqx@10.0.0.1','emqx@10.0.0.2'], stopped_nodes => []}\n"
    assert emqx_cli.parse_status_term(text) == dict(
        running_nodes=['emqx@10.0.0.1', 'emqx@10.0.0.2'], stopped_nodes=[])


def test_parse_status_term_wrapped_and_unquoted_atoms():
    text = (
        "Cluster status: #{running_nodes =>\n"
        "                      ['emqx@10.0.0.3',\n"
        "                       emqx@localhost,'emqx@node-1.example.com'],\n"
        "                  stopped_nodes =>\n"
        "                      ['emqx@10.0.0.9']}\n"
    )
    assert emqx_cli.parse_status_term(text) == dict(
        running_nodes=['emqx@10.0.0.3', 'emqx@localhost', 'emqx@node-1.example.com'],
        stopped_nodes=['emqx@10.0.0.9'])


def test_parse_status_term_rejects_other_text():
    assert emqx_cli.parse_status_term('Node not responding to pings.') is None
    assert emqx_cli.parse_status_term('') is None


def test_parse_node_status():
    assert emqx_cli.parse_node_status("Node 'emqx@10.0.0.1' 5.8.9 is started\n") == dict(
        node='emqx@10.0.0.1', version='5.8.9', state='started')
    assert emqx_cli.parse_node_status("Node emqx@localhost 5.10.4 is starting\n")['state'] == 'starting'
    assert emqx_cli.parse_node_status("Node 'emqx@h' not responding to pings.") is None


@pytest.mark.parametrize('out, expected', [
    ('Join the cluster successfully.\nCluster status: #{...}\n', (emqx_cli.OK, None)),
    ('Ignore.\n', (emqx_cli.IGNORED, None)),
    ("Failed to join the cluster: {node_down,'emqx@h'}\n", (emqx_cli.FAILED, "{node_down,'emqx@h'}")),
    ('something else\n', (emqx_cli.UNKNOWN, None)),
    ('', (emqx_cli.UNKNOWN, None)),
])
def test_parse_join_output(out, expected):
    assert emqx_cli.parse_action_output(out, emqx_cli.SUCCESS_JOIN, emqx_cli.FAILED_JOIN) == expected


def test_parse_force_leave_rpc_failure():
    out = "Failed to remove the node from cluster_rpc.\n{timeout,x}\n"
    outcome, reason = emqx_cli.parse_action_output(out, emqx_cli.SUCCESS_FORCE_LEAVE, emqx_cli.FAILED_FORCE_LEAVE)
    assert outcome == emqx_cli.FAILED
    assert reason == 'cluster_rpc_cleanup: {timeout,x}'


@pytest.mark.parametrize('reason, key', [
    ("{node_down,'emqx@h'}", 'node_down'),
    ('node_not_in_cluster', 'node_not_in_cluster'),
    ("'SINGLE_NODE_LICENSE'", 'single_node_license'),
    ('', ''),
])
def test_reason_key(reason, key):
    assert emqx_cli.reason_key(reason) == key


@pytest.mark.parametrize('node, ports', [
    ('emqx@h', (4370, 5370)),
    ('emqx1@h', (4371, 5371)),
    ('node12@10.0.0.1', (4382, 5382)),
])
def test_dist_ports(node, ports):
    assert emqx_cli.dist_ports(node) == ports


@pytest.mark.parametrize('name, valid', [
    ('emqx@10.0.0.1', True),
    ('emqx_core-1@node1.example.com', True),
    ('emqx@::1', True),
    ('emqx', False),
    ('@h', False),
    ('emqx@h extra', False),
    ('-x@h; ls', False),
    ('', False),
    (None, False),
])
def test_node_name(name, valid):
    assert emqx_cli.is_valid_node_name(name) is valid


def test_retryable():
    assert emqx_cli.is_retryable("{node_down,'emqx@h'}")
    assert emqx_cli.is_retryable('{error,node_not_ready}')
    assert not emqx_cli.is_retryable("{already_in_cluster,'emqx@h'}")
    assert not emqx_cli.is_retryable("'SINGLE_NODE_LICENSE'")


def test_explanations_are_single_sentences_with_hints():
    down = emqx_cli.explain_join_failure('emqx@h', "{node_down,'emqx@h'}")
    assert 'node.cookie' in down and '4370' in down and '5370' in down
    lic = emqx_cli.explain_join_failure('emqx@h', "'SINGLE_NODE_LICENSE'")
    assert 'license.key' in lic
    rep = emqx_cli.explain_join_failure('emqx@h', "{cannot_join_to_replicant,'emqx@h'}")
    assert 'core' in rep
    role = emqx_cli.explain_join_failure('emqx@h', '{replicant_cannot_join,x}')
    assert 'node.role' in role
    other = emqx_cli.explain_join_failure('emqx@h', '{weird}')
    assert other == 'Cannot join the cluster through emqx@h: EMQX refused with {weird}.'
    for text in (down, lic, rep, role, other):
        assert '\n' not in text


def test_argument_spec_matches_doc_fragment_default():
    assert emqx_cli.emqx_cli_argument_spec() == dict(cli_path=dict(type='path', default='/usr/bin/emqx'))


def test_parse_status_json_jiffy_pretty_style():
    # jiffy's pretty printer: " : " between key and value, empty lists on three lines
    text = '{\n  "stopped_nodes" : [\n    \n  ],\n  "running_nodes" : [\n    "emqx@127.0.0.3"\n  ]\n}\n'
    assert emqx_cli.parse_status_json(text) == dict(running_nodes=['emqx@127.0.0.3'], stopped_nodes=[])


def test_license_restriction_term():
    reason = '{license_restriction,<<"single node license">>}'
    assert not emqx_cli.is_retryable(reason)
    assert 'license.key' in emqx_cli.explain_join_failure('emqx@h', reason)
