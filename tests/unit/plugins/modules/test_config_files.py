# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""config_files on real files in a temporary directory: written only when they differ, modes set,
check mode and diff mode truthful, validation keeps a bad file off the path."""

from __future__ import annotations

import grp
import os
import pwd
import stat
import sys

import pytest

from ansible_collections.iothub.emq.plugins.modules import config_files

ME = pwd.getpwuid(os.getuid()).pw_name
MY_GROUP = grp.getgrgid(os.getgid()).gr_name


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def write(run_module):
    def run(files=(), directories=(), check_mode=False, diff=False):
        return run_module(config_files.main, dict(files=list(files), directories=list(directories)),
                          check_mode=check_mode, diff=diff)
    return run


def item(path, content, mode='0640', **more):
    return dict(path=str(path), content=content, owner=ME, group=MY_GROUP, mode=mode, **more)


def test_writes_new_files_then_changes_nothing(write, tmp_path):
    files = [item(tmp_path / 'emqx.conf', 'node.name = "emqx@10.0.0.1"\n', '0644'),
             item(tmp_path / 'secrets.conf', 'node.cookie = "x"\n')]
    first = write(files)
    assert first['failed'] is False and first['changed'] is True
    assert first['changed_paths'] == first['written'] == [f['path'] for f in files]
    assert (tmp_path / 'emqx.conf').read_text() == 'node.name = "emqx@10.0.0.1"\n'
    assert mode_of(tmp_path / 'emqx.conf') == 0o644 and mode_of(tmp_path / 'secrets.conf') == 0o640
    again = write(files)
    assert again['changed'] is False and again['changed_paths'] == [] and again['written'] == []


def test_only_the_file_that_differs_is_written(write, tmp_path):
    (tmp_path / 'a').write_text('same\n')
    (tmp_path / 'b').write_text('old\n')
    os.chmod(tmp_path / 'a', 0o640)
    os.chmod(tmp_path / 'b', 0o640)
    before = os.stat(tmp_path / 'a').st_ino
    result = write([item(tmp_path / 'a', 'same\n'), item(tmp_path / 'b', 'new\n')], diff=True)
    assert result['changed_paths'] == [str(tmp_path / 'b')] and result['written'] == [str(tmp_path / 'b')]
    assert os.stat(tmp_path / 'a').st_ino == before, 'an unchanged file must not be rewritten'
    assert (tmp_path / 'b').read_text() == 'new\n'
    assert result['diff'] == [{'before_header': str(tmp_path / 'b'), 'after_header': str(tmp_path / 'b'),
                               'before': 'old\n', 'after': 'new\n'}]


def test_a_mode_that_differs_is_set_without_rewriting(write, tmp_path):
    (tmp_path / 'a').write_text('same\n')
    os.chmod(tmp_path / 'a', 0o644)
    result = write([item(tmp_path / 'a', 'same\n', '0600')], diff=True)
    assert result['changed_paths'] == [str(tmp_path / 'a')] and result['written'] == []
    assert mode_of(tmp_path / 'a') == 0o600
    assert result['diff'][0]['before']['mode'] == '0644' and result['diff'][0]['after']['mode'] == '0600'


def test_check_mode_reports_and_writes_nothing(write, tmp_path):
    (tmp_path / 'b').write_text('old\n')
    os.chmod(tmp_path / 'b', 0o644)
    files = [item(tmp_path / 'new', 'x\n'), item(tmp_path / 'b', 'new\n'),
             item(tmp_path / 'missing-dir' / 'c', 'y\n')]
    result = write(files, directories=[dict(path=str(tmp_path / 'missing-dir'), mode='0750')],
                   check_mode=True, diff=True)
    assert result['changed'] is True
    assert result['changed_paths'] == [str(tmp_path / 'missing-dir')] + [f['path'] for f in files]
    assert not (tmp_path / 'new').exists() and not (tmp_path / 'missing-dir').exists()
    assert (tmp_path / 'b').read_text() == 'old\n' and mode_of(tmp_path / 'b') == 0o644
    assert [d.get('after') for d in result['diff'][1:]] == ['x\n', 'new\n', 'y\n']


def test_directories_are_made_before_the_files(write, tmp_path):
    secrets = tmp_path / 'etc' / 'emqx-secrets'
    directory = dict(path=str(secrets), owner=ME, group=MY_GROUP, mode='0750')
    result = write([item(secrets / 'api_keys', 'ops:secret:administrator\n')], directories=[directory])
    assert result['changed_paths'] == [str(secrets), str(secrets / 'api_keys')]
    assert mode_of(secrets) == 0o750 and (secrets / 'api_keys').read_text() == 'ops:secret:administrator\n'
    assert write([item(secrets / 'api_keys', 'ops:secret:administrator\n')], directories=[directory])['changed'] is False


def test_validation_keeps_a_bad_file_off_the_path(write, tmp_path):
    (tmp_path / 'rules.nft').write_text('good\n')
    os.chmod(tmp_path / 'rules.nft', 0o640)
    checker = tmp_path / 'check.py'
    checker.write_text('import sys\nsys.exit(0 if open(sys.argv[1]).read() == "good\\n" else 3)\n')
    command = '%s %s %%s' % (sys.executable, checker)
    bad = write([item(tmp_path / 'rules.nft', 'bad\n', validate=command)])
    assert bad['failed'] is True and 'failed to validate' in bad['msg'] and 'exited 3' in bad['msg']
    assert (tmp_path / 'rules.nft').read_text() == 'good\n'
    assert sorted(os.listdir(tmp_path)) == ['check.py', 'rules.nft'], 'the temporary file must be gone'
    good = write([item(tmp_path / 'rules.nft', 'good\n', validate=command)])
    assert good['failed'] is False and good['changed'] is False


def test_validate_needs_the_placeholder(write, tmp_path):
    result = write([item(tmp_path / 'x', 'x\n', validate='true')])
    assert result['failed'] is True and '%s' in result['msg']


@pytest.mark.parametrize('paths, message', [
    (['relative/file'], 'not an absolute path'),
    (['/tmp/x', '/tmp/x'], 'given twice'),
])
def test_bad_paths_are_refused(write, paths, message):
    result = write([dict(path=p, content='') for p in paths])
    assert result['failed'] is True and message in result['msg']


def test_a_missing_directory_fails_with_its_name(write, tmp_path):
    result = write([item(tmp_path / 'nowhere' / 'file', 'x\n')])
    assert result['failed'] is True and 'the directory %s does not exist' % (tmp_path / 'nowhere') in result['msg']


def test_text_is_written_byte_for_byte(write, tmp_path):
    content = 'no newline at the end \u00e4'
    write([item(tmp_path / 'f', content)])
    assert (tmp_path / 'f').read_bytes() == content.encode('utf-8')


@pytest.fixture
def copy(run_module):
    def run(copies, files=(), check_mode=False, diff=False):
        return run_module(config_files.main, dict(files=list(files), copies=list(copies)), check_mode=check_mode, diff=diff)
    return run


def test_copies_keep_the_mode_and_are_made_once(copy, tmp_path):
    secret = 'node.cookie = "S3cretCookie0123456789"\n'
    (tmp_path / 'secrets.conf').write_text(secret)
    os.chmod(tmp_path / 'secrets.conf', 0o640)
    (tmp_path / 'emqx.conf').write_text('node.name = "emqx@10.0.0.1"\n')
    os.chmod(tmp_path / 'emqx.conf', 0o644)
    copies = [dict(src=str(tmp_path / name), path=str(tmp_path / name) + '.last-good', owner=ME, group=MY_GROUP)
              for name in ('secrets.conf', 'emqx.conf')]
    first = copy(copies, diff=True)
    assert first['failed'] is False and first['changed'] is True
    assert first['written'] == [c['path'] for c in copies] and first['missing'] == []
    assert (tmp_path / 'secrets.conf.last-good').read_text() == secret
    assert mode_of(tmp_path / 'secrets.conf.last-good') == 0o640 and mode_of(tmp_path / 'emqx.conf.last-good') == 0o644
    # The diff names the source and checksums, never the content of a file that may hold a secret.
    assert 'S3cretCookie' not in repr(first['diff']) and 'copy of %s' % copies[0]['src'] in first['diff'][0]['after']
    again = copy(copies)
    assert again['changed'] is False and again['written'] == []


def test_a_copy_that_differs_is_replaced_and_check_mode_only_reports(copy, tmp_path):
    (tmp_path / 'emqx.conf').write_text('new\n')
    (tmp_path / 'emqx.conf.last-good').write_text('old\n')
    copies = [dict(src=str(tmp_path / 'emqx.conf'), path=str(tmp_path / 'emqx.conf.last-good'), mode='0644')]
    checked = copy(copies, check_mode=True, diff=True)
    assert checked['changed'] is True and (tmp_path / 'emqx.conf.last-good').read_text() == 'old\n'
    assert checked['diff'][0]['before'].startswith('sha1 ')
    done = copy(copies)
    assert done['changed'] is True and (tmp_path / 'emqx.conf.last-good').read_text() == 'new\n'
    assert mode_of(tmp_path / 'emqx.conf.last-good') == 0o644


def test_a_missing_source_is_skipped_or_fails_before_anything_is_copied(copy, tmp_path):
    (tmp_path / 'emqx.conf').write_text('x\n')
    present = dict(src=str(tmp_path / 'emqx.conf'), path=str(tmp_path / 'emqx.conf.last-good'))
    absent = dict(src=str(tmp_path / 'acl.conf'), path=str(tmp_path / 'acl.conf.last-good'))
    skipped = copy([present, dict(absent, missing='skip')])
    assert skipped['failed'] is False and skipped['missing'] == [absent['src']] and skipped['written'] == [present['path']]
    os.unlink(present['path'])
    failed = copy([present, absent])
    assert failed['failed'] is True and 'acl.conf does not exist' in failed['msg']
    assert not os.path.exists(present['path'])


def test_a_copy_source_must_be_an_absolute_regular_file(copy, tmp_path):
    assert 'not an absolute path' in copy([dict(src='emqx.conf', path=str(tmp_path / 'x'))])['msg']
    assert 'not a regular file' in copy([dict(src=str(tmp_path), path=str(tmp_path / 'x'))])['msg']
