# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""emq_cluster_info against canned EMQX 5 command line output (run_command is mocked)."""

from __future__ import annotations

from unittest import mock

import pytest

from ansible.module_utils import basic
from ansible_collections.iothub.emq.plugins.modules import emq_cluster_info


SELF = 'emqx@10.0.0.1'
TWO = 'emqx@10.0.0.2'
THREE = 'emqx@10.0.0.3'

STATUS = "Node 'emqx@10.0.0.1' 5.8.9 is started\n"
STATUS_STARTING = "Node 'emqx@10.0.0.1' 5.8.9 is starting\n"
NOT_RUNNING = "Node 'emqx@10.0.0.1' not responding to pings.\n"

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

ST = ('status',)
CS = ('cluster', 'status', '--json')
CS_PLAIN = ('cluster', 'status')

KEYS = {'changed', 'failed', 'warnings', 'msg', 'running', 'node', 'version', 'state',
        'running_nodes', 'stopped_nodes', 'members', 'commands'}


def status_json(running, stopped=()):
    """What `emqx ctl cluster status --json` prints: pretty JSON, sorted lists."""
    def block(items):
        if not items:
            return '[]'
        return '[\n' + ',\n'.join('    "{0}"'.format(i) for i in sorted(items)) + '\n  ]'
    return '{{\n  "running_nodes": {0},\n  "stopped_nodes": {1}\n}}\n'.format(block(running), block(stopped))


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


@pytest.fixture
def cli_path(tmp_path):
    path = tmp_path / 'emqx'
    path.write_text('#!/bin/sh\nexit 99\n')
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def emqx(cli_path, run_module):
    """emqx(script, check_mode=False) -> (result, fake)."""

    def run(script, check_mode=False):
        fake = FakeEmqx(cli_path, script)
        with mock.patch.object(basic.AnsibleModule, 'run_command', side_effect=fake):
            result = run_module(emq_cluster_info.main, dict(cli_path=cli_path), check_mode=check_mode)
        assert not fake.script, 'commands not run: {0}'.format(fake.script)
        assert set(result) == KEYS, 'returned keys differ from the documented contract'
        assert result['changed'] is False
        assert result['commands'] == [' '.join([cli_path, 'ctl'] + list(c[0])) for c in script]
        return result, fake

    return run


def ok(out):
    return (0, out, '')


def test_started_node_with_json_status(emqx):
    result, fake = emqx([(ST, ok(STATUS)), (CS, ok(status_json([THREE, SELF, TWO])))])
    assert not result['failed']
    assert result['running'] is True
    assert result['node'] == SELF
    assert result['version'] == '5.8.9'
    assert result['state'] == 'started'
    assert result['running_nodes'] == [SELF, TWO, THREE]
    assert result['stopped_nodes'] == []
    assert result['members'] == [SELF, TWO, THREE]
    assert result['msg'] == 'emqx@10.0.0.1 (5.8.9) is started; 3 running, 0 stopped'
    assert result['warnings'] == []


def test_node_alone(emqx):
    result, fake = emqx([(ST, ok(STATUS)), (CS, ok(status_json([SELF])))])
    assert result['running'] is True
    assert result['running_nodes'] == [SELF]
    assert result['members'] == [SELF]
    assert result['msg'] == 'emqx@10.0.0.1 (5.8.9) is started; 1 running, 0 stopped'


def test_stopped_nodes_present(emqx):
    result, fake = emqx([(ST, ok(STATUS)), (CS, ok(status_json([SELF], [THREE, TWO])))])
    assert not result['failed']
    assert result['running'] is True
    assert result['running_nodes'] == [SELF]
    assert result['stopped_nodes'] == [TWO, THREE]
    assert result['members'] == [SELF, TWO, THREE]
    assert result['msg'] == ('emqx@10.0.0.1 (5.8.9) is started; 1 running, 2 stopped '
                             '(emqx@10.0.0.2, emqx@10.0.0.3)')


def test_erlang_term_fallback_with_wrapped_lines(emqx):
    # An EMQX without --json prints its usage; the module then reads the Erlang term of `cluster status`.
    result, fake = emqx([(ST, ok(STATUS)), (CS, ok(USAGE)), (CS_PLAIN, ok(WRAPPED_TERM))])
    assert not result['failed']
    assert result['running'] is True
    assert result['running_nodes'] == [SELF, TWO, THREE]
    assert result['stopped_nodes'] == ['emqx@localhost']
    assert result['members'] == [SELF, TWO, THREE, 'emqx@localhost']
    assert result['msg'] == 'emqx@10.0.0.1 (5.8.9) is started; 3 running, 1 stopped (emqx@localhost)'


def test_erlang_term_printed_for_json_request(emqx):
    result, fake = emqx([(ST, ok(STATUS)), (CS, ok(WRAPPED_TERM))])
    assert result['running_nodes'] == [SELF, TWO, THREE]
    assert result['stopped_nodes'] == ['emqx@localhost']


def test_node_not_running(emqx):
    result, fake = emqx([(ST, (1, '', NOT_RUNNING))])
    assert not result['failed']
    assert result['running'] is False
    assert result['node'] is None
    assert result['version'] is None
    assert result['state'] is None
    assert result['running_nodes'] == []
    assert result['stopped_nodes'] == []
    assert result['members'] == []
    assert result['msg'] == (
        'EMQX does not answer on this host: "emqx ctl status" exited 1 '
        "(Node 'emqx@10.0.0.1' not responding to pings). "
        'Check the service with "systemctl status emqx" and its log with "journalctl -u emqx".')


def test_node_not_running_prints_nothing(emqx):
    result, fake = emqx([(ST, (1, '', ''))])
    assert result['running'] is False
    assert 'exited 1 and printed nothing' in result['msg']
    assert 'systemctl status emqx' in result['msg']


def test_status_exit_0_but_no_status_line(emqx):
    result, fake = emqx([(ST, ok('Node is not running\n'))])
    assert not result['failed']
    assert result['running'] is False
    assert result['node'] is None
    assert '"emqx ctl status" exited 0 (Node is not running)' in result['msg']


def test_node_starting(emqx):
    # EMQX answers while it boots: node and version are known, but it is not running yet.
    result, fake = emqx([(ST, ok(STATUS_STARTING)), (CS, ok(status_json([SELF])))])
    assert not result['failed']
    assert result['running'] is False
    assert result['node'] == SELF
    assert result['version'] == '5.8.9'
    assert result['state'] == 'starting'
    assert result['running_nodes'] == [SELF]
    assert result['msg'] == 'emqx@10.0.0.1 (5.8.9) is starting, not started yet; 1 running, 0 stopped'


def test_membership_unreadable_is_not_a_failure(emqx):
    result, fake = emqx([
        (ST, ok(STATUS)),
        (CS, (1, '', NOT_RUNNING)),
        (CS_PLAIN, (1, '', NOT_RUNNING)),
    ])
    assert not result['failed']
    assert result['running'] is True
    assert result['node'] == SELF
    assert result['running_nodes'] == []
    assert result['members'] == []
    assert result['msg'].startswith('emqx@10.0.0.1 (5.8.9) is started, but its cluster membership cannot be read: ')
    assert 'exit code 1' in result['msg']
    assert result['warnings'] == [result['msg']]


def test_check_mode_reads_the_same(emqx):
    result, fake = emqx([(ST, ok(STATUS)), (CS, ok(status_json([SELF, TWO], [THREE])))], check_mode=True)
    assert not result['failed']
    assert result['changed'] is False
    assert result['running'] is True
    assert result['running_nodes'] == [SELF, TWO]
    assert result['stopped_nodes'] == [THREE]
    assert len(fake.calls) == 2


def test_check_mode_node_not_running(emqx):
    result, fake = emqx([(ST, (1, '', NOT_RUNNING))], check_mode=True)
    assert not result['failed']
    assert result['running'] is False


def test_default_cli_path_is_the_package_one(run_module):
    fake = FakeEmqx('/usr/bin/emqx', [(ST, ok(STATUS)), (CS, ok(status_json([SELF])))])
    with mock.patch.object(basic.AnsibleModule, 'run_command', side_effect=fake), \
            mock.patch('os.path.exists', return_value=True), \
            mock.patch('os.path.isfile', return_value=True), \
            mock.patch('os.access', return_value=True):
        result = run_module(emq_cluster_info.main, {})
    assert not result['failed']
    assert result['commands'] == ['/usr/bin/emqx ctl status', '/usr/bin/emqx ctl cluster status --json']


def test_cli_path_missing(run_module, tmp_path):
    with mock.patch.object(basic.AnsibleModule, 'run_command') as run_command:
        result = run_module(emq_cluster_info.main, dict(cli_path=str(tmp_path / 'nowhere' / 'emqx')))
    assert result['failed']
    assert 'does not exist' in result['msg']
    assert 'cli_path' in result['msg']
    run_command.assert_not_called()


def test_cli_path_not_executable(run_module, tmp_path):
    path = tmp_path / 'emqx'
    path.write_text('not a program\n')
    path.chmod(0o644)
    with mock.patch.object(basic.AnsibleModule, 'run_command') as run_command:
        result = run_module(emq_cluster_info.main, dict(cli_path=str(path)))
    assert result['failed']
    assert 'not an executable file' in result['msg']
    run_command.assert_not_called()


def test_cli_path_is_a_directory(run_module, tmp_path):
    with mock.patch.object(basic.AnsibleModule, 'run_command') as run_command:
        result = run_module(emq_cluster_info.main, dict(cli_path=str(tmp_path)))
    assert result['failed']
    assert 'not an executable file' in result['msg']
    run_command.assert_not_called()


def test_bare_command_name_not_in_path(run_module, monkeypatch, tmp_path):
    monkeypatch.setenv('PATH', str(tmp_path))
    with mock.patch.object(basic.AnsibleModule, 'run_command') as run_command:
        result = run_module(emq_cluster_info.main, dict(cli_path='emqx-not-installed'))
    assert result['failed']
    run_command.assert_not_called()


def test_unknown_option_is_refused(run_module, cli_path):
    with mock.patch.object(basic.AnsibleModule, 'run_command') as run_command:
        result = run_module(emq_cluster_info.main, dict(cli_path=cli_path, peer=SELF))
    assert result['failed']
    assert 'peer' in result['msg']
    run_command.assert_not_called()
