# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""emq_cluster_join against canned EMQX 5 command line output (run_command is mocked)."""

from __future__ import annotations

from unittest import mock

import pytest

from ansible.module_utils import basic
from ansible_collections.iothub.emq.plugins.module_utils.emqx_cli import EmqxCli
from ansible_collections.iothub.emq.plugins.modules import emq_cluster_join


SELF = 'emqx@10.0.0.2'
PEER = 'emqx@10.0.0.1'
OTHER = 'emqx@10.0.0.3'

STATUS = "Node 'emqx@10.0.0.2' 5.8.9 is started\n"
STATUS_STARTING = "Node 'emqx@10.0.0.2' 5.8.9 is starting\n"
NOT_RUNNING = "Node 'emqx@10.0.0.2' not responding to pings.\n"


def status_json(running, stopped=()):
    """What `emqx ctl cluster status --json` prints: pretty JSON, sorted lists."""
    def block(items):
        if not items:
            return '[]'
        return '[\n' + ',\n'.join('    "{0}"'.format(i) for i in sorted(items)) + '\n  ]'
    return '{{\n  "running_nodes": {0},\n  "stopped_nodes": {1}\n}}\n'.format(block(running), block(stopped))


ALONE = status_json([SELF])
WITH_PEER = status_json([PEER, SELF])
WITH_OTHER = status_json([OTHER, SELF])
PEER_STOPPED = status_json([SELF], [PEER])
EMPTY = status_json([])

WRAPPED_TERM = (
    "Cluster status: #{running_nodes =>\n"
    "                      ['emqx@10.0.0.1','emqx@10.0.0.2',\n"
    "                       'emqx@10.0.0.3'],\n"
    "                  stopped_nodes => [emqx@localhost]}\n"
)
USAGE = (
    "cluster join <Node>                     # Join the cluster\n"
    "cluster leave                           # Leave the cluster\n"
    "cluster force-leave <Node>              # Force the node leave from cluster\n"
    "cluster status                          # Cluster status\n"
)

JOIN_OK = (
    "Join the cluster successfully.\n"
    "Cluster status: #{running_nodes => ['emqx@10.0.0.1','emqx@10.0.0.2'],\n"
    "                  stopped_nodes => []}\n"
)
JOIN_NODE_DOWN = "Failed to join the cluster: {node_down,'emqx@10.0.0.1'}\n"
JOIN_ALREADY = "Failed to join the cluster: {already_in_cluster,'emqx@10.0.0.1'}\n"
JOIN_REPLICANT = "Failed to join the cluster: {cannot_join_to_replicant,'emqx@10.0.0.1'}\n"
JOIN_LICENSE = "Failed to join the cluster: 'SINGLE_NODE_LICENSE'\n"
JOIN_OTHER = "Failed to join the cluster: {aborted,{bad_type,schema}}\n"
IGNORE = "Ignore.\n"

AUTOCLUSTER = (
    "Automatic cluster discovery is disabled on this node: 'emqx@10.0.0.2' to avoid re-joining the same "
    "cluster again, if the node is not stopped soon. To enable it run: 'emqx ctl cluster discovery enable' "
    "or restart the node.\n"
)
LEAVE_OK = AUTOCLUSTER + (
    "Leave the cluster successfully.\n"
    "Cluster status: #{running_nodes => ['emqx@10.0.0.2'],stopped_nodes => []}\n"
)
LEAVE_NOT_IN = "Failed to leave the cluster: node_not_in_cluster\n"
LEAVE_OTHER = "Failed to leave the cluster: {aborted,timeout}\n"

FORCE_OK = (
    "Remove the node from cluster successfully.\n"
    "Cluster status: #{running_nodes => ['emqx@10.0.0.2'],stopped_nodes => []}\n"
)
FORCE_NOT_IN = "Failed to remove the node from cluster: node_not_in_cluster\n"
FORCE_FAILED = "Failed to remove the node from cluster: {badrpc,nodedown}\n"
FORCE_RPC_FAILED = "Failed to remove the node from cluster_rpc.\n{timeout,'emqx@10.0.0.3'}\n"

ST = ('status',)
CS = ('cluster', 'status', '--json')
CS_PLAIN = ('cluster', 'status')


class FakeEmqx(object):
    """Plays a script of (arguments after `ctl`, (rc, stdout, stderr)) and checks each command."""

    def __init__(self, cli, script):
        self.cli = cli
        self.script = list(script)
        self.calls = []

    def __call__(self, cmd, check_rc=False, **kwargs):
        assert isinstance(cmd, list), 'commands must be argument lists, never shell strings'
        assert check_rc is False
        assert not kwargs.get('use_unsafe_shell')
        self.calls.append(cmd)
        assert self.script, 'unexpected command {0}'.format(cmd)
        args, answer = self.script.pop(0)
        assert cmd == [self.cli, 'ctl'] + list(args)
        return answer


class FakeClock(object):
    def __init__(self):
        self.t = 1000.0
        self.sleeps = []

    def now(self):
        return self.t

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.t += seconds


@pytest.fixture
def cli_path(tmp_path):
    path = tmp_path / 'emqx'
    path.write_text('#!/bin/sh\nexit 99\n')
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def emqx(cli_path, run_module):
    """emqx(script, args, check_mode=False, diff=False) -> (result, fake, clock)."""

    def run(script, args, check_mode=False, diff=False):
        fake = FakeEmqx(cli_path, script)
        clock = FakeClock()
        args = dict(args, cli_path=cli_path)
        with mock.patch.object(basic.AnsibleModule, 'run_command', side_effect=fake), \
                mock.patch.object(EmqxCli, 'now', side_effect=clock.now), \
                mock.patch.object(EmqxCli, 'sleep', side_effect=clock.sleep):
            result = run_module(emq_cluster_join.main, args, check_mode=check_mode, diff=diff)
        assert not fake.script, 'commands not run: {0}'.format(fake.script)
        return result, fake, clock

    return run


def ok(out):
    return (0, out, '')


# -- state=present ---------------------------------------------------------------------


def test_already_member(emqx):
    result, fake, clock = emqx([(ST, ok(STATUS)), (CS, ok(WITH_PEER))], dict(peer=PEER))
    assert not result['failed']
    assert result['changed'] is False
    assert result['running_nodes'] == [PEER, SELF]
    assert result['stopped_nodes'] == []
    assert result['node'] == SELF
    assert result['version'] == '5.8.9'
    assert result['attempts'] == 0
    assert result['stdout'] == ''
    assert len(result['commands']) == 2
    assert result['commands'][1].endswith('emqx ctl cluster status --json')


def test_peer_is_self_is_a_no_op(emqx):
    result, fake, clock = emqx([(ST, ok(STATUS)), (CS, ok(ALONE))], dict(peer=SELF))
    assert result['changed'] is False
    assert 'local node itself' in result['msg']


def test_peer_stopped_member_warns(emqx):
    result, fake, clock = emqx([(ST, ok(STATUS)), (CS, ok(PEER_STOPPED))], dict(peer=PEER))
    assert result['changed'] is False
    assert result['stopped_nodes'] == [PEER]
    assert any('stopped' in w for w in result['warnings'])
    assert result['msg'] == '{0} is already in the cluster of {1}; {1} is stopped.'.format(SELF, PEER)


def test_needs_join_and_joins(emqx):
    result, fake, clock = emqx([
        (ST, ok(STATUS)),
        (CS, ok(ALONE)),
        (('cluster', 'join', PEER), ok(JOIN_OK)),
        (CS, ok(WITH_PEER)),
    ], dict(peer=PEER))
    assert not result['failed']
    assert result['changed'] is True
    assert result['running_nodes'] == [PEER, SELF]
    assert result['stdout'] == JOIN_OK
    assert result['attempts'] == 1
    assert result['msg'] == 'Joined the cluster through {0}.'.format(PEER)
    assert 'diff' not in result
    assert clock.sleeps == []


def test_join_exit_code_1_on_5_10_is_parsed_too(emqx):
    result, fake, clock = emqx([
        (ST, ok(STATUS)),
        (CS, ok(ALONE)),
        (('cluster', 'join', PEER), (1, JOIN_REPLICANT, '')),
    ], dict(peer=PEER))
    assert result['failed']
    assert result['rc'] == 1
    assert 'replicant' in result['msg']
    assert 'core' in result['msg']


def test_join_node_down_retries_then_succeeds(emqx):
    result, fake, clock = emqx([
        (ST, ok(STATUS)),
        (CS, ok(ALONE)),
        (('cluster', 'join', PEER), ok(JOIN_NODE_DOWN)),
        (('cluster', 'join', PEER), ok(JOIN_NODE_DOWN)),
        (('cluster', 'join', PEER), ok(JOIN_OK)),
        (CS, ok(ALONE)),  # the membership may lag behind the join
        (CS, ok(WITH_PEER)),
    ], dict(peer=PEER, timeout=60, delay=5))
    assert not result['failed']
    assert result['changed'] is True
    assert result['attempts'] == 3
    assert clock.sleeps == [5, 5, 5]
    assert result['running_nodes'] == [PEER, SELF]


def test_join_node_down_until_timeout(emqx):
    script = [(ST, ok(STATUS)), (CS, ok(ALONE))]
    # timeout 20, delay 5: attempts at t=0, 5, 10, 15, 20 -> 5 attempts, then give up
    script += [(('cluster', 'join', PEER), ok(JOIN_NODE_DOWN))] * 5
    result, fake, clock = emqx(script, dict(peer=PEER, timeout=20, delay=5))
    assert result['failed']
    assert result['changed'] is False
    assert result['attempts'] == 5
    assert result['rc'] == 0
    assert result['stdout'] == JOIN_NODE_DOWN
    msg = result['msg']
    assert 'node.cookie' in msg
    assert '4370' in msg and '5370' in msg
    assert 'Tried 5 times over 20 seconds' in msg
    assert '\n' not in msg


def test_join_node_down_timeout_0_tries_once(emqx):
    result, fake, clock = emqx([
        (ST, ok(STATUS)),
        (CS, ok(ALONE)),
        (('cluster', 'join', PEER), ok(JOIN_NODE_DOWN)),
    ], dict(peer=PEER, timeout=0))
    assert result['failed']
    assert result['attempts'] == 1
    assert 'Tried' not in result['msg']


def test_join_numbered_peer_hint_names_shifted_ports(emqx):
    peer = 'emqx3@10.0.0.1'
    result, fake, clock = emqx([
        (ST, ok(STATUS)),
        (CS, ok(ALONE)),
        (('cluster', 'join', peer), ok("Failed to join the cluster: {node_down,'emqx3@10.0.0.1'}\n")),
    ], dict(peer=peer, timeout=0))
    assert '4373' in result['msg'] and '5373' in result['msg']


def test_join_already_in_cluster_is_not_a_change(emqx):
    result, fake, clock = emqx([
        (ST, ok(STATUS)),
        (CS, ok(ALONE)),
        (('cluster', 'join', PEER), ok(JOIN_ALREADY)),
        (CS, ok(WITH_PEER)),
    ], dict(peer=PEER))
    assert not result['failed']
    assert result['changed'] is False
    assert result['running_nodes'] == [PEER, SELF]


def test_join_ignore_is_not_a_change(emqx):
    result, fake, clock = emqx([
        (ST, ok(STATUS)),
        (CS, ok(ALONE)),
        (('cluster', 'join', PEER), ok(IGNORE)),
        (CS, ok(ALONE)),
    ], dict(peer=PEER))
    assert not result['failed']
    assert result['changed'] is False


def test_join_license_refused(emqx):
    result, fake, clock = emqx([
        (ST, ok(STATUS)),
        (CS, ok(ALONE)),
        (('cluster', 'join', PEER), ok(JOIN_LICENSE)),
    ], dict(peer=PEER))
    assert result['failed']
    assert 'license' in result['msg']
    assert 'license.key' in result['msg']
    assert result['attempts'] == 1


def test_join_license_restriction_term(emqx):
    out = 'Failed to join the cluster: {license_restriction,<<"single node license">>}\n'
    result, fake, clock = emqx([
        (ST, ok(STATUS)),
        (CS, ok(ALONE)),
        (('cluster', 'join', PEER), (1, out, '')),
    ], dict(peer=PEER))
    assert result['failed']
    assert 'license.key' in result['msg']


def test_join_other_failure(emqx):
    result, fake, clock = emqx([
        (ST, ok(STATUS)),
        (CS, ok(ALONE)),
        (('cluster', 'join', PEER), ok(JOIN_OTHER)),
    ], dict(peer=PEER))
    assert result['failed']
    assert '{aborted,{bad_type,schema}}' in result['msg']


def test_join_unexpected_output(emqx):
    result, fake, clock = emqx([
        (ST, ok(STATUS)),
        (CS, ok(ALONE)),
        (('cluster', 'join', PEER), (1, '', NOT_RUNNING)),
    ], dict(peer=PEER))
    assert result['failed']
    assert result['rc'] == 1
    assert result['stderr'] == NOT_RUNNING
    assert 'does not understand' in result['msg']
    assert 'not responding to pings' in result['msg']


def test_join_accepted_but_never_confirmed(emqx):
    script = [(ST, ok(STATUS)), (CS, ok(ALONE)), (('cluster', 'join', PEER), ok(JOIN_OK))]
    script += [(CS, ok(ALONE))] * 3  # timeout 10, delay 5: reads at 0, 5, 10
    result, fake, clock = emqx(script, dict(peer=PEER, timeout=10, delay=5))
    assert result['failed']
    assert result['changed'] is True
    assert 'does not show it' in result['msg']


def test_join_check_mode(emqx):
    result, fake, clock = emqx([(ST, ok(STATUS)), (CS, ok(ALONE))], dict(peer=PEER), check_mode=True)
    assert not result['failed']
    assert result['changed'] is True
    assert result['running_nodes'] == [SELF]
    assert all(' join ' not in c for c in result['commands'])
    assert 'diff' not in result


def test_join_check_mode_with_diff(emqx):
    result, fake, clock = emqx([(ST, ok(STATUS)), (CS, ok(ALONE))], dict(peer=PEER), check_mode=True, diff=True)
    assert result['changed'] is True
    assert result['diff'] == dict(
        before=dict(running_nodes=[SELF], stopped_nodes=[]),
        after=dict(running_nodes=[PEER, SELF], stopped_nodes=[]),
    )


def test_join_diff(emqx):
    three = status_json([PEER, SELF, OTHER])
    result, fake, clock = emqx([
        (ST, ok(STATUS)),
        (CS, ok(ALONE)),
        (('cluster', 'join', PEER), ok(JOIN_OK)),
        (CS, ok(three)),
    ], dict(peer=PEER), diff=True)
    assert result['changed'] is True
    assert result['diff'] == dict(
        before=dict(running_nodes=[SELF], stopped_nodes=[]),
        after=dict(running_nodes=[PEER, SELF, OTHER], stopped_nodes=[]),
    )


def test_diff_when_unchanged(emqx):
    result, fake, clock = emqx([(ST, ok(STATUS)), (CS, ok(WITH_PEER))], dict(peer=PEER), diff=True)
    assert result['changed'] is False
    assert result['diff']['before'] == result['diff']['after']


def test_in_another_cluster_refuses(emqx):
    result, fake, clock = emqx([(ST, ok(STATUS)), (CS, ok(WITH_OTHER))], dict(peer=PEER))
    assert result['failed']
    assert result['changed'] is False
    assert OTHER in result['msg']
    assert 'leave_current_cluster' in result['msg']


def test_in_another_cluster_leaves_then_joins(emqx):
    result, fake, clock = emqx([
        (ST, ok(STATUS)),
        (CS, ok(WITH_OTHER)),
        (('cluster', 'leave'), ok(LEAVE_OK)),
        (CS, ok(ALONE)),
        (('cluster', 'join', PEER), ok(JOIN_OK)),
        (CS, ok(WITH_PEER)),
    ], dict(peer=PEER, leave_current_cluster=True))
    assert not result['failed']
    assert result['changed'] is True
    assert result['attempts'] == 2
    assert result['running_nodes'] == [PEER, SELF]


# -- reading the membership --------------------------------------------------------------


def test_erlang_term_fallback_with_wrapped_lines(emqx):
    result, fake, clock = emqx([
        (ST, ok(STATUS)),
        (CS, ok(USAGE)),
        (CS_PLAIN, ok(WRAPPED_TERM)),
    ], dict(peer=PEER))
    assert not result['failed']
    assert result['changed'] is False
    assert result['running_nodes'] == [PEER, SELF, OTHER]
    assert result['stopped_nodes'] == ['emqx@localhost']


def test_erlang_term_printed_for_json_request(emqx):
    result, fake, clock = emqx([(ST, ok(STATUS)), (CS, ok(WRAPPED_TERM))], dict(peer=PEER))
    assert result['changed'] is False
    assert result['running_nodes'] == [PEER, SELF, OTHER]


def test_unreadable_membership(emqx):
    result, fake, clock = emqx([
        (ST, ok(STATUS)),
        (CS, (1, NOT_RUNNING, '')),
        (CS_PLAIN, (1, NOT_RUNNING, '')),
    ], dict(peer=PEER))
    assert result['failed']
    assert result['rc'] == 1
    assert 'Cannot read the cluster membership' in result['msg']


def test_local_node_not_running(emqx):
    result, fake, clock = emqx([(ST, (1, NOT_RUNNING, ''))], dict(peer=PEER))
    assert result['failed']
    assert result['rc'] == 1
    assert 'does not answer' in result['msg']
    assert result['stdout'] == NOT_RUNNING


def test_local_node_starting_then_started(emqx):
    result, fake, clock = emqx([
        (ST, ok(STATUS_STARTING)),
        (ST, ok(STATUS)),
        (CS, ok(WITH_PEER)),
    ], dict(peer=PEER, delay=2))
    assert not result['failed']
    assert clock.sleeps == [2]


def test_local_node_stays_starting(emqx):
    result, fake, clock = emqx([(ST, ok(STATUS_STARTING))] * 3, dict(peer=PEER, timeout=4, delay=2))
    assert result['failed']
    assert 'still starting' in result['msg']


# -- state=absent, local node leaves -------------------------------------------------------


def test_leave_ok(emqx):
    result, fake, clock = emqx([
        (ST, ok(STATUS)),
        (CS, ok(WITH_PEER)),
        (('cluster', 'leave'), ok(LEAVE_OK)),
        (CS, ok(EMPTY)),  # mria restarts after leaving
        (CS, ok(ALONE)),
    ], dict(state='absent'), diff=True)
    assert not result['failed']
    assert result['changed'] is True
    assert result['running_nodes'] == [SELF]
    assert result['stdout'] == LEAVE_OK
    assert result['diff']['before']['running_nodes'] == [PEER, SELF]
    assert result['diff']['after']['running_nodes'] == [SELF]


def test_leave_not_in_cluster_no_command(emqx):
    result, fake, clock = emqx([(ST, ok(STATUS)), (CS, ok(ALONE))], dict(state='absent'))
    assert not result['failed']
    assert result['changed'] is False
    assert result['attempts'] == 0


def test_leave_not_in_cluster_reported_by_emqx(emqx):
    result, fake, clock = emqx([
        (ST, ok(STATUS)),
        (CS, ok(WITH_PEER)),
        (('cluster', 'leave'), ok(LEAVE_NOT_IN)),
        (CS, ok(ALONE)),
    ], dict(state='absent'))
    assert not result['failed']
    assert result['changed'] is False


def test_leave_refused(emqx):
    result, fake, clock = emqx([
        (ST, ok(STATUS)),
        (CS, ok(WITH_PEER)),
        (('cluster', 'leave'), ok(LEAVE_OTHER)),
    ], dict(state='absent'))
    assert result['failed']
    assert '{aborted,timeout}' in result['msg']


def test_leave_with_only_stopped_members_warns(emqx):
    result, fake, clock = emqx([(ST, ok(STATUS)), (CS, ok(PEER_STOPPED))], dict(state='absent'))
    assert result['changed'] is False
    assert any('node=<name>' in w for w in result['warnings'])


def test_leave_check_mode(emqx):
    result, fake, clock = emqx([(ST, ok(STATUS)), (CS, ok(WITH_PEER))], dict(state='absent'),
                               check_mode=True, diff=True)
    assert result['changed'] is True
    assert result['diff']['after'] == dict(running_nodes=[SELF], stopped_nodes=[])
    assert result['running_nodes'] == [PEER, SELF]


# -- state=absent, force-leave another node ----------------------------------------------


def test_force_leave_ok(emqx):
    result, fake, clock = emqx([
        (ST, ok(STATUS)),
        (CS, ok(status_json([PEER, SELF], [OTHER]))),
        (('cluster', 'force-leave', OTHER), ok(FORCE_OK)),
        (CS, ok(WITH_PEER)),
    ], dict(state='absent', node=OTHER))
    assert not result['failed']
    assert result['changed'] is True
    assert result['stopped_nodes'] == []
    assert result['stdout'] == FORCE_OK


def test_force_leave_not_member_no_command(emqx):
    result, fake, clock = emqx([(ST, ok(STATUS)), (CS, ok(WITH_PEER))], dict(state='absent', node=OTHER))
    assert result['changed'] is False
    assert result['attempts'] == 0


def test_force_leave_not_in_cluster_reported_by_emqx(emqx):
    result, fake, clock = emqx([
        (ST, ok(STATUS)),
        (CS, ok(WITH_OTHER)),
        (('cluster', 'force-leave', OTHER), ok(FORCE_NOT_IN)),
        (CS, ok(ALONE)),
    ], dict(state='absent', node=OTHER))
    assert not result['failed']
    assert result['changed'] is False


def test_force_leave_failed(emqx):
    result, fake, clock = emqx([
        (ST, ok(STATUS)),
        (CS, ok(WITH_OTHER)),
        (('cluster', 'force-leave', OTHER), ok(FORCE_FAILED)),
    ], dict(state='absent', node=OTHER))
    assert result['failed']
    assert result['changed'] is False
    assert result['rc'] == 0
    assert result['stdout'] == FORCE_FAILED
    assert '{badrpc,nodedown}' in result['msg']


def test_force_leave_cluster_rpc_cleanup_failed(emqx):
    result, fake, clock = emqx([
        (ST, ok(STATUS)),
        (CS, ok(WITH_OTHER)),
        (('cluster', 'force-leave', OTHER), ok(FORCE_RPC_FAILED)),
        (CS, ok(ALONE)),
    ], dict(state='absent', node=OTHER))
    assert result['failed']
    assert result['changed'] is True
    assert 'cluster_rpc' in result['msg']


def test_force_leave_self_refused(emqx):
    result, fake, clock = emqx([(ST, ok(STATUS)), (CS, ok(WITH_PEER))], dict(state='absent', node=SELF))
    assert result['failed']
    assert 'omit node' in result['msg']


def test_force_leave_check_mode(emqx):
    result, fake, clock = emqx([(ST, ok(STATUS)), (CS, ok(WITH_OTHER))], dict(state='absent', node=OTHER),
                               check_mode=True, diff=True)
    assert result['changed'] is True
    assert result['diff']['after'] == dict(running_nodes=[SELF], stopped_nodes=[])


# -- arguments ------------------------------------------------------------------------------


@pytest.mark.parametrize('args, message', [
    (dict(peer='not a node'), 'not an EMQX node name'),
    (dict(peer='emqx@10.0.0.1; rm -rf /'), 'not an EMQX node name'),
    (dict(state='absent', node='emqx'), 'not an EMQX node name'),
    (dict(), 'peer'),
    (dict(peer=PEER, timeout=-1), 'timeout and delay'),
])
def test_bad_arguments(emqx, args, message):
    result, fake, clock = emqx([], args)
    assert result['failed']
    assert message in result['msg']
    assert fake.calls == []


def test_missing_cli(run_module, tmp_path):
    result = run_module(emq_cluster_join.main, dict(peer=PEER, cli_path=str(tmp_path / 'nowhere' / 'emqx')))
    assert result['failed']
    assert 'does not exist' in result['msg']
