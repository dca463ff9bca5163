# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""host_probe on canned dpkg-query output (run_command is mocked) and on real files in a temporary directory."""

from __future__ import annotations

import hashlib
from unittest import mock

import pytest

from ansible.module_utils import basic
from ansible_collections.iothub.emq.plugins.modules import host_probe

# What Debian 12's dpkg-query -W -f '${Package}\t${db:Status-Status}\t${Version}\n' prints: one package installed,
# one removed with its configuration kept, and an error on stderr for a name dpkg has never seen (exit 1).
DPKG_OUT = 'emqx\tinstalled\t5.8.9\nnginx\tconfig-files\t1.22.1-9\nlibnginx-mod-stream:amd64\tinstalled\t1.22.1-9\n'
DPKG_ERR = 'dpkg-query: no packages found matching haproxy\n'


def test_parse_dpkg_keeps_installed_packages_only():
    versions = host_probe.parse_dpkg(DPKG_OUT, ['emqx', 'nginx', 'libnginx-mod-stream', 'haproxy'])
    assert versions == {'emqx': '5.8.9', 'nginx': None, 'libnginx-mod-stream': '1.22.1-9', 'haproxy': None}


def test_parse_dpkg_ignores_lines_it_does_not_know():
    assert host_probe.parse_dpkg('garbage\nemqx\tinstalled\n\nother\tinstalled\t1\n', ['emqx']) == {'emqx': None}


def test_read_text(tmp_path):
    (tmp_path / 'a').write_bytes(b'1048576\n')
    (tmp_path / 'b').write_bytes(b'caf\xe9')
    assert host_probe.read_text(str(tmp_path / 'a'), 100) == ('1048576\n', None)
    assert host_probe.read_text(str(tmp_path / 'b'), 100) == ('caf\ufffd', None)
    assert host_probe.read_text(str(tmp_path / 'missing'), 100) == (None, 'does not exist')
    with pytest.raises(ValueError, match='larger than max_bytes'):
        host_probe.read_text(str(tmp_path / 'a'), 4)


@pytest.fixture
def probe(run_module, tmp_path):
    """probe(args, dpkg=(rc, out, err), check_mode=False) -> (result, commands run)."""

    def run(args, dpkg=(0, '', ''), check_mode=False):
        calls = []

        def fake(cmd, check_rc=False, **kwargs):
            assert isinstance(cmd, list) and not kwargs.get('use_unsafe_shell')
            calls.append(cmd)
            return dpkg

        with mock.patch.object(basic.AnsibleModule, 'get_bin_path', return_value='/usr/bin/dpkg-query'), \
                mock.patch.object(basic.AnsibleModule, 'run_command', side_effect=fake):
            result = run_module(host_probe.main, args, check_mode=check_mode)
        return result, calls

    return run


@pytest.mark.parametrize('check_mode', [False, True])
def test_everything_in_one_call(probe, tmp_path, check_mode):
    (tmp_path / 'nr_open').write_text('1048576\n')
    (tmp_path / 'dir').mkdir()
    args = dict(packages=['emqx', 'haproxy'], read=[str(tmp_path / 'nr_open'), str(tmp_path / 'missing')],
                exists=[str(tmp_path / 'dir'), str(tmp_path / 'nothing')])
    result, calls = probe(args, dpkg=(1, DPKG_OUT, DPKG_ERR), check_mode=check_mode)
    assert result['failed'] is False and result['changed'] is False
    assert calls == [['/usr/bin/dpkg-query', '-W', '-f', host_probe.DPKG_FORMAT, 'emqx', 'haproxy']]
    assert result['packages'] == {'emqx': '5.8.9', 'haproxy': None}
    assert result['files'] == {str(tmp_path / 'nr_open'): '1048576\n', str(tmp_path / 'missing'): None}
    assert result['unreadable'] == {str(tmp_path / 'missing'): 'does not exist'}
    assert result['exists'] == {str(tmp_path / 'dir'): True, str(tmp_path / 'nothing'): False}


def test_no_packages_runs_no_command(probe, tmp_path):
    result, calls = probe(dict(exists=[str(tmp_path)]))
    assert calls == [] and result['packages'] == {} and result['exists'] == {str(tmp_path): True}


def test_dpkg_query_failure_fails(probe):
    result, dummy = probe(dict(packages=['emqx']), dpkg=(2, '', 'dpkg-query: error: cannot read database\n'))
    assert result['failed'] is True
    assert 'dpkg-query failed (2)' in result['msg'] and 'cannot read database' in result['msg']


def test_a_host_without_dpkg_has_no_packages(run_module):
    with mock.patch.object(basic.AnsibleModule, 'get_bin_path', return_value=None):
        result = run_module(host_probe.main, dict(packages=['emqx']))
    assert result['failed'] is False and result['packages'] == {'emqx': None}


def test_a_file_too_large_fails(probe, tmp_path):
    (tmp_path / 'big').write_text('x' * 100)
    result, dummy = probe(dict(read=[str(tmp_path / 'big')], max_bytes=10))
    assert result['failed'] is True and 'larger than max_bytes (10)' in result['msg']


# What systemd 252 (Debian 12) prints for
# systemctl show --property=Id,LoadState,UnitFileState,ActiveState emqx.service nftables.service nosuch.service
SYSTEMCTL_OUT = ('Id=emqx.service\nLoadState=loaded\nActiveState=active\nUnitFileState=enabled\n\n'
                 'Id=nftables.service\nLoadState=loaded\nActiveState=inactive\nUnitFileState=enabled\n\n'
                 'Id=nosuch.service\nLoadState=not-found\nActiveState=inactive\nUnitFileState=\n')


def test_parse_systemctl_show():
    states = host_probe.parse_systemctl_show(SYSTEMCTL_OUT, ['emqx.service', 'nftables.service', 'nosuch.service'])
    assert states == {
        'emqx.service': {'load': 'loaded', 'enabled': 'enabled', 'active': 'active'},
        'nftables.service': {'load': 'loaded', 'enabled': 'enabled', 'active': 'inactive'},
        'nosuch.service': {'load': 'not-found', 'enabled': '', 'active': 'inactive'},
    }


@pytest.mark.parametrize('check_mode', [False, True])
def test_services_in_one_systemctl_call(probe, check_mode):
    result, calls = probe(dict(services=['emqx.service', 'nftables.service', 'nosuch.service']),
                          dpkg=(0, SYSTEMCTL_OUT, ''), check_mode=check_mode)
    assert result['failed'] is False and result['changed'] is False
    assert len(calls) == 1 and calls[0][1:] == ['show', '--property=Id,LoadState,UnitFileState,ActiveState',
                                                'emqx.service', 'nftables.service', 'nosuch.service']
    assert result['services']['emqx.service'] == {'load': 'loaded', 'enabled': 'enabled', 'active': 'active'}
    assert result['services']['nosuch.service']['load'] == 'not-found'


def test_services_of_a_host_not_booted_with_systemd_are_null(probe):
    result, calls = probe(dict(services=['emqx.service']), dpkg=(1, '', 'System has not been booted with systemd as init system'))
    assert len(calls) == 1 and result['failed'] is False and result['services'] == {'emqx.service': None}


def test_services_without_systemctl_are_null(run_module):
    with mock.patch.object(basic.AnsibleModule, 'get_bin_path', return_value=None):
        result = run_module(host_probe.main, dict(services=['emqx.service']))
    assert result['failed'] is False and result['services'] == {'emqx.service': None}


def test_checksums_tell_equal_files_apart_from_changed_and_missing_ones(probe, tmp_path):
    (tmp_path / 'live').write_text('global\n  maxconn 100\n')
    (tmp_path / 'last-good').write_text('global\n  maxconn 100\n')
    (tmp_path / 'changed').write_text('global\n  maxconn 200\n')
    paths = [str(tmp_path / name) for name in ('live', 'last-good', 'changed', 'missing')]
    result, calls = probe(dict(checksums=paths))
    assert calls == [] and result['failed'] is False
    sums = result['checksums']
    # sha1 of the content, as the copy and stat modules report it
    assert sums[paths[0]] == hashlib.sha1(b'global\n  maxconn 100\n').hexdigest()
    assert sums[paths[0]] == sums[paths[1]] != sums[paths[2]]
    assert sums[paths[3]] is None


def test_checksum_of_a_directory_fails(probe, tmp_path):
    result, dummy = probe(dict(checksums=[str(tmp_path)]))
    assert result['failed'] is True and 'is a directory' in result['msg']


def test_count_returns_how_many_lines_match_and_never_a_line(probe, tmp_path):
    secret = 'S3cret-Passw0rd'
    (tmp_path / 'haproxy.cfg').write_text(
        'global\n  stats auth admin:%s \n userlist ops\n  user ops password %s \n  # stats auth commented\n' % (secret, secret))
    (tmp_path / 'clean.cfg').write_text('global\n  maxconn 100\n')
    pattern = r'^\s*(stats\s+auth|user\s.*password)\s'
    result, dummy = probe(dict(count=[{'path': str(tmp_path / 'haproxy.cfg'), 'pattern': pattern},
                                      {'path': str(tmp_path / 'clean.cfg'), 'pattern': pattern},
                                      {'path': str(tmp_path / 'missing.cfg'), 'pattern': pattern}]))
    assert result['failed'] is False
    assert result['counts'] == {str(tmp_path / 'haproxy.cfg'): 2, str(tmp_path / 'clean.cfg'): 0,
                                str(tmp_path / 'missing.cfg'): None}
    assert secret not in repr(dict((key, value) for key, value in result.items() if key != 'invocation'))


@pytest.mark.parametrize('count, message', [
    ([{'path': '/etc/a', 'pattern': 'x'}, {'path': '/etc/a', 'pattern': 'y'}], 'more than once'),
    ([{'path': '/etc/a', 'pattern': '('}], 'not a regular expression'),
])
def test_count_refuses_what_it_cannot_answer(probe, count, message):
    result, dummy = probe(dict(count=count))
    assert result['failed'] is True and message in result['msg']
