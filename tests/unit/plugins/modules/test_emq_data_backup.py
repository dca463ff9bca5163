# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""emq_data_backup against canned EMQX 5.8 command line output (run_command is mocked).

The texts are those of emqx_mgmt_cli:data/1 and emqx_mgmt_data_backup (EMQX 5.8.9): progress lines, then one
result line, printed through emqx_ctl:print; `emqx ctl` exits 0 for every one of them, also for "[error] ...".
Reasons are printed with ~p: a string in quotes (format_error/1), any other term as the Erlang pretty printer
writes it, wrapped over indented lines when long.
"""

from __future__ import annotations

import io
import os
import shlex
import tarfile
from unittest import mock

import pytest

from ansible.module_utils import basic
from ansible_collections.iothub.emq.plugins.modules import emq_data_backup


STATUS = "Node 'emqx@10.0.0.1' 5.8.9 is started\n"
STATUS_STARTING = "Node 'emqx@10.0.0.1' 5.8.9 is starting\n"
NOT_RUNNING = "Node 'emqx@10.0.0.1' not responding to pings.\n"

EXPORT_NAME = 'emqx-export-2025-01-31-02-00-00.123'
LOG = '/var/log/emqx/emqx.log.*'

ST = ('status',)

KEYS = {'changed', 'failed', 'warnings', 'msg', 'path', 'size', 'node', 'version', 'stdout', 'stderr', 'commands'}


def export_output(path):
    return (
        'Exporting data to "{0}"...\n'
        'Exporting cluster configuration...\n'
        'Exporting additional files from EMQX data_dir: "/var/lib/emqx"...\n'
        'Exporting built-in database...\n'
        'Exporting emqx_acl database table...\n'
        'Exporting emqx_authn_mnesia database table...\n'
        'Exporting emqx_app database table...\n'
        'Data has been successfully exported to {0}.\n'
    ).format(path)


def import_output(path, result):
    return (
        'Importing data from "{0}"...\n'
        'Importing cluster configuration...\n'
        'Config key path "authentication" was present before import and has been overwritten.\n'
        'Importing built-in database...\n'
        'Importing emqx_acl database table...\n'
        'No backup file for emqx_retainer_message database table...\n'
        '{1}'
        '{2}\n'
    ).format(path, ''.join(PARTIAL_LINES) if result == emq_data_backup.IMPORTED_PARTLY else '', result)


PARTIAL_LINES = [
    "[error] Failed to import built-in database table: emqx_authn_mnesia, reason: {error,\n"
    "                                                                              {aborted,\n"
    "                                                                               {bad_type,\n"
    "                                                                                emqx_authn_mnesia}}}\n",
    'Failed to import the following config path: "rule_engine", reason: {error,\n'
    '                                                                    {config_update_crashed,\n'
    '                                                                     badarg}}\n',
]


def make_archive(path, root=EXPORT_NAME, meta=True, extra_root=None):
    """A tar.gz laid out as `emqx ctl data export` writes it: <root>/META.hocon, cluster.hocon, mnesia/<table>."""
    files = {}
    if meta:
        files[root + '/META.hocon'] = b'edition = ce\nversion = "5.8.9"\n'
    files[root + '/cluster.hocon'] = b'mqtt {max_packet_size = "2MB"}\n'
    files[root + '/mnesia/emqx_acl'] = b'\x00' * 64
    if extra_root:
        files[extra_root + '/other'] = b'x'
    with tarfile.open(str(path), 'w:gz') as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


class FakeEmqx(object):
    """Plays a script of (arguments after `ctl`, answer) and checks each command.

    An answer is (rc, stdout, stderr), or a callable that gets the command and returns one (to look at the files
    when EMQX would read or write them).
    """

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
        return answer(cmd) if callable(answer) else answer


@pytest.fixture
def cli_path(tmp_path):
    path = tmp_path / 'emqx'
    path.write_text('#!/bin/sh\nexit 99\n')
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def backup_dir(tmp_path):
    path = tmp_path / 'iothub-backup'
    path.mkdir()
    return str(path)


@pytest.fixture
def emqx(cli_path, run_module):
    """emqx(args, script, check_mode=False) -> (result, fake)."""

    def run(args, script, check_mode=False):
        fake = FakeEmqx(cli_path, script)
        with mock.patch.object(basic.AnsibleModule, 'run_command', side_effect=fake):
            result = run_module(emq_data_backup.main, dict(args, cli_path=cli_path), check_mode=check_mode)
        assert not fake.script, 'commands not run: {0}'.format(fake.script)
        expected = KEYS | ({'rc'} if result['failed'] else set())
        assert set(result) == expected, 'returned keys differ from the documented contract'
        assert result['commands'] == [' '.join(shlex.quote(a) for a in [cli_path, 'ctl'] + list(c[0])) for c in script]
        return result, fake

    return run


def ok(out):
    return (0, out, '')


def writes_archive(path, out):
    """The node writes the archive, then prints."""
    def answer(cmd):
        make_archive(path)
        return ok(out)
    return answer


# -- export ----------------------------------------------------------------------------------


def test_export_to_dir(emqx, backup_dir):
    archive = os.path.join(backup_dir, EXPORT_NAME + '.tar.gz')
    result, fake = emqx(dict(state='exported', dir=backup_dir), [
        (ST, ok(STATUS)),
        (('data', 'export', '--dir', backup_dir), writes_archive(archive, export_output(archive))),
    ])
    assert not result['failed']
    assert result['changed'] is True
    assert result['path'] == archive
    assert result['size'] == os.path.getsize(archive)
    assert result['node'] == 'emqx@10.0.0.1'
    assert result['version'] == '5.8.9'
    assert result['stdout'] == export_output(archive)
    assert result['msg'] == 'Exported the data of the cluster to {0} ({1} bytes).'.format(archive, result['size'])
    assert result['warnings'] == []


def test_export_to_emqx_default_directory(emqx):
    archive = '/var/lib/emqx/backup/' + EXPORT_NAME + '.tar.gz'
    result, fake = emqx(dict(state='exported'), [(ST, ok(STATUS)), (('data', 'export'), ok(export_output(archive)))])
    assert not result['failed']
    assert result['changed'] is True
    assert result['path'] == archive
    # The file is not on the machine the test runs on: said, not failed.
    assert result['size'] is None
    assert result['warnings'] == ['EMQX says it wrote {0}, but the module does not see that file on this host.'.format(archive)]


def test_export_path_with_dots_and_spaces(emqx, tmp_path):
    directory = tmp_path / 'my backups.d'
    directory.mkdir()
    archive = os.path.join(str(directory), EXPORT_NAME + '.tar.gz')
    result, fake = emqx(dict(state='exported', dir=str(directory)), [
        (ST, ok(STATUS)),
        (('data', 'export', '--dir', str(directory)), writes_archive(archive, export_output(archive))),
    ])
    assert result['path'] == archive


def test_export_failed_with_wrapped_term(emqx, backup_dir):
    out = ('Exporting data to "{0}/{1}.tar.gz"...\n'
           'Exporting cluster configuration...\n'
           '[error] Data export failed, reason: {{badmatch,\n'
           '                                     {{error,\n'
           '                                      "{0}/{1}/mnesia/emqx_acl: no such file or directory"}}}}.\n'
           ).format(backup_dir, EXPORT_NAME)
    result, fake = emqx(dict(state='exported', dir=backup_dir), [(ST, ok(STATUS)), (('data', 'export', '--dir', backup_dir), ok(out))])
    assert result['failed']
    assert result['changed'] is False
    assert result['rc'] == 0
    assert result['path'] is None
    assert result['msg'] == (
        'EMQX could not export the data: {{badmatch, {{error, "{0}/{1}/mnesia/emqx_acl: no such file or directory"}}}}. '
        'Nothing was written. See /var/log/emqx/emqx.log.* on this host (emqx_data_export_failed) for the details.'
    ).format(backup_dir, EXPORT_NAME)


def test_export_failed_with_string_reason(emqx, backup_dir):
    out = '[error] Data export failed, reason: "{0}/x.tar.gz: permission denied".\n'.format(backup_dir)
    result, fake = emqx(dict(state='exported', dir=backup_dir), [(ST, ok(STATUS)), (('data', 'export', '--dir', backup_dir), ok(out))])
    assert result['failed']
    assert result['msg'].startswith('EMQX could not export the data: {0}/x.tar.gz: permission denied. '.format(backup_dir))


def test_export_crash_when_emqx_cannot_write_the_archive(emqx, backup_dir):
    # emqx_mgmt_data_backup opens the tar outside its try: the command crashes, run_command returns
    # {error, _} and nodetool halts 1 after the first progress line.
    out = 'Exporting data to "{0}/{1}.tar.gz"...\n'.format(backup_dir, EXPORT_NAME)
    result, fake = emqx(dict(state='exported', dir=backup_dir), [(ST, ok(STATUS)), (('data', 'export', '--dir', backup_dir), (1, out, ''))])
    assert result['failed']
    assert result['rc'] == 1
    assert result['msg'] == (
        '"emqx ctl data export" printed no result (exit code 1; last line: Exporting data to "{0}/{1}.tar.gz"...). '
        'It started the archive but could not write it: {0} must be writable by the emqx user. '
        'See /var/log/emqx/emqx.log.* on this host (ctl_command_crashed) for the details.').format(backup_dir, EXPORT_NAME)


def test_export_dir_missing(emqx, tmp_path):
    missing = str(tmp_path / 'nowhere')
    result, fake = emqx(dict(state='exported', dir=missing), [])
    assert result['failed']
    assert fake.calls == []
    assert result['msg'].startswith('dir={0} is not a directory on this host. Create it, owned by the emqx user'.format(missing))


def test_export_check_mode_runs_nothing(emqx, backup_dir):
    result, fake = emqx(dict(state='exported', dir=backup_dir), [], check_mode=True)
    assert not result['failed']
    assert result['changed'] is True
    assert result['msg'] == 'would export the data of the cluster to {0} (check mode: nothing ran).'.format(backup_dir)
    assert result['path'] is None
    assert result['commands'] == []


def test_export_check_mode_dir_not_made_yet(emqx, tmp_path):
    # In check mode the task that makes the directory did not run either.
    missing = str(tmp_path / 'not-yet')
    result, fake = emqx(dict(state='exported', dir=missing), [], check_mode=True)
    assert not result['failed']
    assert result['changed'] is True
    assert result['msg'].startswith('would export the data of the cluster to {0} (it does not exist yet'.format(missing))


def test_export_check_mode_default_directory(emqx):
    result, fake = emqx(dict(state='exported'), [], check_mode=True)
    assert result['changed'] is True
    assert result['msg'].startswith("would export the data of the cluster to EMQX's default directory")


# -- import ----------------------------------------------------------------------------------


def test_import(emqx, backup_dir):
    src = make_archive(os.path.join(backup_dir, EXPORT_NAME + '.tar.gz'))
    out = import_output(src, emq_data_backup.IMPORTED)
    result, fake = emqx(dict(state='imported', src=src), [(ST, ok(STATUS)), (('data', 'import', src), ok(out))])
    assert not result['failed']
    assert result['changed'] is True
    assert result['path'] == src
    assert result['size'] == os.path.getsize(src)
    assert result['stdout'] == out
    assert result['msg'] == 'Imported {0} (exported from EMQX 5.8.9) into the cluster; EMQX replicates it to every node.'.format(src)


def test_import_renamed_archive_through_a_link(emqx, backup_dir):
    # EMQX imports a file only under the name of the directory inside it; the backup playbook renames it.
    src = make_archive(os.path.join(backup_dir, 'emqx-data-5.8.9-emqx-1.tar.gz'))
    target = os.path.join(backup_dir, EXPORT_NAME + '.tar.gz')

    def answer(cmd):
        assert os.path.isfile(target) and os.path.samefile(src, target)
        return ok(import_output(target, emq_data_backup.IMPORTED))

    result, fake = emqx(dict(state='imported', src=src), [(ST, ok(STATUS)), (('data', 'import', target), answer)])
    assert not result['failed']
    assert result['changed'] is True
    assert result['path'] == src
    assert not os.path.exists(target)
    assert os.path.isfile(src)


def test_import_renamed_archive_falls_back_to_a_copy(emqx, backup_dir):
    src = make_archive(os.path.join(backup_dir, 'emqx-data-5.8.9-emqx-1.tar.gz'))
    target = os.path.join(backup_dir, EXPORT_NAME + '.tar.gz')

    def answer(cmd):
        assert os.path.isfile(target) and not os.path.samefile(src, target)
        return ok(import_output(target, emq_data_backup.IMPORTED))

    with mock.patch('os.link', side_effect=OSError(18, 'Invalid cross-device link')):
        result, fake = emqx(dict(state='imported', src=src), [(ST, ok(STATUS)), (('data', 'import', target), answer)])
    assert not result['failed']
    assert not os.path.exists(target)


def test_import_link_removed_when_the_import_fails(emqx, backup_dir):
    src = make_archive(os.path.join(backup_dir, 'emqx-data-5.8.9-emqx-1.tar.gz'))
    target = os.path.join(backup_dir, EXPORT_NAME + '.tar.gz')
    out = '[error] Data import failed, reason: "backup file not found".\n'
    result, fake = emqx(dict(state='imported', src=src), [(ST, ok(STATUS)), (('data', 'import', target), ok(out))])
    assert result['failed']
    assert not os.path.exists(target)


def test_import_name_taken_by_another_file(emqx, backup_dir):
    src = make_archive(os.path.join(backup_dir, 'emqx-data-5.8.9-emqx-1.tar.gz'))
    other = os.path.join(backup_dir, EXPORT_NAME + '.tar.gz')
    with open(other, 'w') as handle:
        handle.write('something else\n')
    result, fake = emqx(dict(state='imported', src=src), [(ST, ok(STATUS))])
    assert result['failed']
    assert 'EMQX imports it only under the name {0}, which is another file on this host'.format(other) in result['msg']
    with open(other) as handle:
        assert handle.read() == 'something else\n'


def test_import_partly(emqx, backup_dir):
    src = make_archive(os.path.join(backup_dir, EXPORT_NAME + '.tar.gz'))
    out = import_output(src, emq_data_backup.IMPORTED_PARTLY)
    result, fake = emqx(dict(state='imported', src=src), [(ST, ok(STATUS)), (('data', 'import', src), ok(out))])
    assert result['failed']
    assert result['changed'] is True  # some data was written
    assert result['rc'] == 0
    assert result['stdout'] == out
    assert result['msg'] == (
        'EMQX imported {0} only in part: '
        '[error] Failed to import built-in database table: emqx_authn_mnesia, reason: {{error, {{aborted, {{bad_type, '
        'emqx_authn_mnesia}}}}}}; '
        'Failed to import the following config path: "rule_engine", reason: {{error, {{config_update_crashed, badarg}}}}. '
        'Some data was written. Look at /var/log/emqx/emqx.log.* on this host '
        '(failed_to_restore_mnesia_backup, emqx_data_import_failed) for why, fix it and import again.').format(src)


def test_import_partly_without_detail(emqx, backup_dir):
    src = make_archive(os.path.join(backup_dir, EXPORT_NAME + '.tar.gz'))
    result, fake = emqx(dict(state='imported', src=src), [
        (ST, ok(STATUS)), (('data', 'import', src), ok(emq_data_backup.IMPORTED_PARTLY + '\n'))])
    assert result['failed']
    assert '(it printed no detail)' in result['msg']
    assert LOG in result['msg']


# format_error/1 of emqx_mgmt_data_backup, each as `emqx ctl data import` prints it (~p), and the hint.
IMPORT_ERRORS = [
    ('"backup file not found"', 'backup file not found', 'regular file on this host that the emqx user can read'),
    ('"backup data import is only allowed on core EMQX nodes, but requested node \'emqx@10.0.0.1\' is not core"',
     "backup data import is only allowed on core EMQX nodes, but requested node 'emqx@10.0.0.1' is not core",
     'Run the import on a core node'),
    ('"importing EMQX Enterprise data backup to EMQX is not allowed"',
     'importing EMQX Enterprise data backup to EMQX is not allowed', 'only goes into an EMQX Enterprise cluster'),
    ('"invalid backup archive file: missing META.hocon"', 'invalid backup archive file: missing META.hocon',
     'not an archive made by "emqx ctl data export"'),
    ('"invalid backup archive content: wrong EMQX edition value in META.hocon"',
     'invalid backup archive content: wrong EMQX edition value in META.hocon', 'not an archive made by'),
    ('"invalid backup archive content: wrong EMQX version value in META.hocon"',
     'invalid backup archive content: wrong EMQX version value in META.hocon', 'not an archive made by'),
    ('"invalid backup archive content: all files in the archive must be under <backup name> directory"',
     'invalid backup archive content: all files in the archive must be under <backup name> directory', 'not an archive made by'),
    ('"invalid backup name: file name must have .tar.gz extension"',
     'invalid backup name: file name must have .tar.gz extension', LOG),
    ('"unsafe backup name"', 'unsafe backup name', LOG),
    ('"[warning] Backup version \\"5.9.0\\" is newer than EMQX version \\"5.8.9\\", import is not allowed.\\n"',
     '[warning] Backup version "5.9.0" is newer than EMQX version "5.8.9", import is not allowed.',
     'upgrade the cluster to that version first'),
    ('"/var/lib/emqx/iothub-backup/x.tar.gz: permission denied"', '/var/lib/emqx/iothub-backup/x.tar.gz: permission denied',
     'chown emqx'),
    ('different_table_schema', 'different_table_schema', LOG),
    ('{badmatch,\n                                     {error,enoent}}', '{badmatch, {error,enoent}}', LOG),
]


@pytest.mark.parametrize('printed,reason,hint', IMPORT_ERRORS, ids=[e[1][:40] for e in IMPORT_ERRORS])
def test_import_error(emqx, backup_dir, printed, reason, hint):
    src = make_archive(os.path.join(backup_dir, EXPORT_NAME + '.tar.gz'))
    out = 'Importing data from "{0}"...\n[error] Data import failed, reason: {1}.\n'.format(src, printed)
    result, fake = emqx(dict(state='imported', src=src), [(ST, ok(STATUS)), (('data', 'import', src), ok(out))])
    assert result['failed']
    assert result['changed'] is False
    assert result['rc'] == 0  # EMQX exits 0 on "[error] ..."
    assert result['msg'].startswith('EMQX did not import {0}: {1}. '.format(src, reason))
    assert hint in result['msg']


def test_import_src_missing(emqx, backup_dir):
    src = os.path.join(backup_dir, 'emqx-data-5.8.9-emqx-1.tar.gz')
    result, fake = emqx(dict(state='imported', src=src), [])
    assert result['failed']
    assert fake.calls == []
    assert result['msg'].startswith('src={0} does not exist on this host. Copy the archive'.format(src))


def test_import_src_missing_in_check_mode(emqx, backup_dir):
    src = os.path.join(backup_dir, 'emqx-data-5.8.9-emqx-1.tar.gz')
    result, fake = emqx(dict(state='imported', src=src), [], check_mode=True)
    assert result['failed']
    assert 'does not exist on this host' in result['msg']


def test_import_src_is_a_directory(emqx, backup_dir):
    result, fake = emqx(dict(state='imported', src=backup_dir), [])
    assert result['failed']
    assert result['msg'] == 'src={0} is not a file; give the path of the archive itself.'.format(backup_dir)


def test_import_src_not_an_archive(emqx, backup_dir):
    src = os.path.join(backup_dir, 'notes.tar.gz')
    with open(src, 'w') as handle:
        handle.write('not a tar\n')
    result, fake = emqx(dict(state='imported', src=src), [])
    assert result['failed']
    assert result['msg'].startswith('src={0} cannot be imported: it is not a gzip-compressed tar archive'.format(src))


def test_import_archive_without_meta(emqx, backup_dir):
    src = make_archive(os.path.join(backup_dir, EXPORT_NAME + '.tar.gz'), meta=False)
    result, fake = emqx(dict(state='imported', src=src), [])
    assert result['failed']
    assert 'it has no {0}/META.hocon'.format(EXPORT_NAME) in result['msg']


def test_import_archive_with_two_directories(emqx, backup_dir):
    src = make_archive(os.path.join(backup_dir, EXPORT_NAME + '.tar.gz'), extra_root='etc')
    result, fake = emqx(dict(state='imported', src=src), [])
    assert result['failed']
    assert 'its files are not all in one directory (it holds {0}, etc)'.format(EXPORT_NAME) in result['msg']


def test_import_check_mode(emqx, backup_dir):
    src = make_archive(os.path.join(backup_dir, 'emqx-data-5.8.9-emqx-1.tar.gz'))
    result, fake = emqx(dict(state='imported', src=src), [], check_mode=True)
    assert not result['failed']
    assert result['changed'] is True
    assert result['msg'] == 'would import {0} (exported from EMQX 5.8.9) into the cluster (check mode: nothing ran).'.format(src)
    assert result['path'] == src
    assert result['commands'] == []
    assert sorted(os.listdir(backup_dir)) == ['emqx-data-5.8.9-emqx-1.tar.gz']


# -- the node ------------------------------------------------------------------------------------


@pytest.mark.parametrize('state', ['exported', 'imported'])
def test_node_not_answering(emqx, backup_dir, state):
    src = make_archive(os.path.join(backup_dir, EXPORT_NAME + '.tar.gz'))
    args = dict(state=state, dir=backup_dir) if state == 'exported' else dict(state=state, src=src)
    # bin/emqx: `ctl` first runs `nodetool ping`, which prints this on stderr and exits 1.
    result, fake = emqx(args, [(ST, (1, '', NOT_RUNNING))])
    assert result['failed']
    assert result['changed'] is False
    assert result['rc'] == 1
    assert result['stderr'] == NOT_RUNNING
    assert result['msg'] == (
        'EMQX does not answer on this host: "emqx ctl status" exited 1 '
        "(Node 'emqx@10.0.0.1' not responding to pings). Nothing was {0}. Start EMQX (systemctl start emqx, or run "
        'site.yml) and run this again. Check the service with "systemctl status emqx" and its log with '
        '"journalctl -u emqx".').format(state)


def test_node_not_answering_prints_nothing(emqx, backup_dir):
    result, fake = emqx(dict(state='exported', dir=backup_dir), [(ST, (1, '', ''))])
    assert result['failed']
    assert 'exited 1 and printed nothing' in result['msg']


def test_not_root(emqx, backup_dir):
    result, fake = emqx(dict(state='exported', dir=backup_dir), [(ST, (1, 'You need to be root or use sudo to run this command\n', ''))])
    assert result['failed']
    assert 'become: true' in result['msg']


def test_node_starting(emqx, backup_dir):
    result, fake = emqx(dict(state='exported', dir=backup_dir), [(ST, ok(STATUS_STARTING))])
    assert result['failed']
    assert result['msg'] == (
        'EMQX on this host (emqx@10.0.0.1, 5.8.9) is starting, not started: nothing was exported. Wait until '
        '"emqx ctl status" says "is started", then run this again.')


def test_data_command_unknown(emqx, backup_dir):
    # An EMQX without the data command prints its usage (help()) and exits 1.
    src = make_archive(os.path.join(backup_dir, EXPORT_NAME + '.tar.gz'))
    usage = 'Usage: emqx ctl\n-----\nstatus                  # Show broker status\n'
    result, fake = emqx(dict(state='imported', src=src), [(ST, ok(STATUS)), (('data', 'import', src), (1, usage, ''))])
    assert result['failed']
    assert result['msg'].startswith('"emqx ctl data import" printed no result (exit code 1; last line: status ')
    assert LOG in result['msg']


# -- arguments -----------------------------------------------------------------------------------


@pytest.mark.parametrize('args,message', [
    (dict(state='exported', dir='relative/dir'), 'dir=relative/dir is not an absolute path'),
    (dict(state='exported', dir='/var/lib/emqx/`id`'), 'contains `'),
    (dict(state='imported', src='/var/lib/emqx/a\\b.tar.gz'), 'contains \\'),
    (dict(state='imported', src='/var/lib/emqx/a"b.tar.gz'), 'contains "'),
    (dict(state='exported', src='/x.tar.gz'), 'src is for state=imported'),
    (dict(state='imported', src='/x.tar.gz', dir='/tmp'), 'dir is for state=exported'),
    (dict(state='imported'), 'state is imported but all of the following are missing: src'),
    (dict(state='present'), 'value of state must be one of: exported, imported'),
    (dict(dir='/tmp'), 'missing required arguments: state'),
])
def test_bad_arguments(run_module, cli_path, args, message):
    with mock.patch.object(basic.AnsibleModule, 'run_command') as run_command:
        result = run_module(emq_data_backup.main, dict(args, cli_path=cli_path))
    assert result['failed']
    assert message in result['msg']
    run_command.assert_not_called()


def test_cli_path_missing(run_module, tmp_path, backup_dir):
    with mock.patch.object(basic.AnsibleModule, 'run_command') as run_command:
        result = run_module(emq_data_backup.main, dict(state='exported', dir=backup_dir, cli_path=str(tmp_path / 'nowhere' / 'emqx')))
    assert result['failed']
    assert 'does not exist' in result['msg']
    assert 'cli_path' in result['msg']
    run_command.assert_not_called()


def test_cli_path_not_executable(run_module, tmp_path, backup_dir):
    path = tmp_path / 'emqx'
    path.write_text('not a program\n')
    path.chmod(0o644)
    with mock.patch.object(basic.AnsibleModule, 'run_command') as run_command:
        result = run_module(emq_data_backup.main, dict(state='exported', dir=backup_dir, cli_path=str(path)))
    assert result['failed']
    assert 'not an executable file' in result['msg']
    run_command.assert_not_called()


def test_default_cli_path_is_the_package_one(run_module):
    archive = '/var/lib/emqx/backup/' + EXPORT_NAME + '.tar.gz'
    fake = FakeEmqx('/usr/bin/emqx', [(ST, ok(STATUS)), (('data', 'export'), ok(export_output(archive)))])
    with mock.patch.object(basic.AnsibleModule, 'run_command', side_effect=fake), \
            mock.patch('os.path.exists', return_value=True), \
            mock.patch('os.path.isfile', side_effect=lambda p: p == '/usr/bin/emqx'), \
            mock.patch('os.access', return_value=True):
        result = run_module(emq_data_backup.main, dict(state='exported'))
    assert not result['failed']
    assert result['commands'] == ['/usr/bin/emqx ctl status', '/usr/bin/emqx ctl data export']


# -- what EMQX prints --------------------------------------------------------------------------


@pytest.mark.parametrize('printed,reason', [
    ('"plain"', 'plain'),
    ('"a \\"quoted\\" \\\\ back\\tslash\\n"', 'a "quoted" \\ back\tslash'),
    ('"split "\n    "over lines"', 'split over lines'),
    ('"octal \\101 and hex \\x41 \\x{263a}"', 'octal A and hex A \u263a'),
    ('enoent', 'enoent'),
    ('{error,"x"}', '{error,"x"}'),
])
def test_erlang_reason(printed, reason):
    assert emq_data_backup.erlang_reason(printed) == reason


def test_parse_ignores_progress_lines():
    assert emq_data_backup.parse_data_output('Exporting data to "/x/y.tar.gz"...\n') == ('unknown', None)
    assert emq_data_backup.parse_data_output('') == ('unknown', None)
