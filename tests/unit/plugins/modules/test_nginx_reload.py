# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""nginx_reload on a fake /proc tree (the titles NGINX 1.22 gives its processes) and a mocked systemctl."""

from __future__ import annotations

from unittest import mock

import pytest

from ansible.module_utils import basic
from ansible_collections.iothub.emq.plugins.modules import nginx_reload

MASTER = 100


class FakeProc(object):
    """A /proc with an NGINX master and its children: set(pid, title) adds or retitles, gone(pid) removes."""

    def __init__(self, root):
        self.root = root
        self.kids = []
        self.set(MASTER, 'nginx: master process /usr/sbin/nginx -g daemon on; master_process on;')

    def _write_children(self):
        task = self.root / str(MASTER) / 'task' / str(MASTER)
        task.mkdir(parents=True, exist_ok=True)
        (task / 'children').write_text(' '.join(str(p) for p in self.kids) + (' ' if self.kids else ''))

    def set(self, pid, title):
        (self.root / str(pid)).mkdir(parents=True, exist_ok=True)
        # NGINX writes its title over argv: the rest of the old argv space is NUL bytes.
        (self.root / str(pid) / 'cmdline').write_bytes(title.encode() + b'\0' * 8)
        if pid != MASTER and pid not in self.kids:
            self.kids.append(pid)
        self._write_children()

    def gone(self, pid):
        (self.root / str(pid) / 'cmdline').unlink()
        self.kids.remove(pid)
        self._write_children()


@pytest.fixture
def proc(tmp_path, monkeypatch):
    fake = FakeProc(tmp_path)
    monkeypatch.setattr(nginx_reload, 'PROC', str(tmp_path))
    return fake


def test_workers_leave_out_the_cache_processes_and_accepting_leaves_out_the_draining(proc):
    proc.set(101, 'nginx: worker process')
    proc.set(102, 'nginx: worker process is shutting down')
    proc.set(103, 'nginx: cache manager process')
    assert nginx_reload.workers(MASTER) == [101, 102]
    assert nginx_reload.accepting([101, 102, 999]) == [101]
    assert nginx_reload.draining([101, 102, 999]) == [102]
    assert nginx_reload.title(999) is None


def test_watch_waits_for_new_workers_and_for_the_old_ones_to_stop_accepting(proc):
    proc.set(101, 'nginx: worker process')
    proc.set(102, 'nginx: worker process')
    steps = [lambda: proc.set(201, 'nginx: worker process'),                    # new workers start first,
             lambda: proc.set(101, 'nginx: worker process is shutting down'),   # then the old ones quit:
             lambda: proc.gone(102)]                                             # one drains, one exits
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds
        if steps:
            steps.pop(0)()

    new, still, seconds = nginx_reload.watch(MASTER, [101, 102], 30, True, clock=lambda: now[0], sleep=sleep)
    assert new == [201] and still == [] and steps == [] and seconds == pytest.approx(0.3)


def test_watch_without_waiting_for_old_workers_stops_at_the_first_new_one(proc):
    proc.set(101, 'nginx: worker process')
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds
        proc.set(201, 'nginx: worker process')

    new, still, dummy = nginx_reload.watch(MASTER, [101], 30, False, clock=lambda: now[0], sleep=sleep)
    assert new == [201] and still == []


def test_watch_gives_up_at_the_timeout(proc):
    proc.set(101, 'nginx: worker process')
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds

    new, still, seconds = nginx_reload.watch(MASTER, [101], 2, True, clock=lambda: now[0], sleep=sleep)
    assert new == [] and still == [101] and seconds >= 2


@pytest.fixture
def run(run_module, proc):
    """run(args, main_pid='100', on_reload=callable, check_mode=False) -> (result, systemctl commands)."""

    def go(args, main_pid=str(MASTER), on_reload=None, reload_rc=0, check_mode=False):
        calls = []

        def fake(cmd, check_rc=False, **kwargs):
            calls.append(cmd[1:])
            if cmd[1] == 'show':
                return 0, main_pid + '\n', ''
            if cmd[1] == 'reload':
                if on_reload:
                    on_reload()
                return (reload_rc, '', 'Job for nginx.service failed.' if reload_rc else '')
            return 0, '', ''

        with mock.patch.object(basic.AnsibleModule, 'get_bin_path', return_value='/usr/bin/systemctl'), \
                mock.patch.object(basic.AnsibleModule, 'run_command', side_effect=fake), \
                mock.patch.object(nginx_reload, 'POLL_SECONDS', 0.01):
            return run_module(nginx_reload.main, args, check_mode=check_mode), calls

    return go


def test_a_reload_that_is_taken(run, proc):
    proc.set(101, 'nginx: worker process')

    def reload():
        proc.set(201, 'nginx: worker process')
        proc.set(101, 'nginx: worker process is shutting down')

    result, calls = run(dict(service='nginx', daemon_reload=True), on_reload=reload)
    assert result['failed'] is False and result['changed'] is True
    assert calls == [['show', '-P', 'MainPID', 'nginx.service'], ['daemon-reload'], ['reload', 'nginx.service']]
    assert result['workers_before'] == [101] and result['workers_after'] == [201] and result['workers_draining'] == [101]


def test_a_reload_nginx_does_not_take_fails_naming_the_old_workers(run, proc):
    proc.set(101, 'nginx: worker process')
    result, dummy = run(dict(timeout=0))
    assert result['failed'] is True and 'started no new worker' in result['msg'] and '101' in result['msg']


def test_old_workers_still_accepting_fail(run, proc):
    proc.set(101, 'nginx: worker process')
    result, dummy = run(dict(timeout=0), on_reload=lambda: proc.set(201, 'nginx: worker process'))
    assert result['failed'] is True and 'still accept connections' in result['msg'] and result['workers_after'] == [201]


def test_a_stopped_nginx_fails_and_check_mode_reloads_nothing(run, proc):
    result, calls = run({}, main_pid='0')
    assert result['failed'] is True and 'MainPID 0' in result['msg'] and len(calls) == 1
    proc.set(101, 'nginx: worker process')
    result, calls = run({}, check_mode=True)
    assert result['failed'] is False and result['changed'] is True and result['workers_before'] == [101]
    assert [c[0] for c in calls] == ['show']


def test_a_failed_systemctl_reload_fails_with_its_message(run, proc):
    proc.set(101, 'nginx: worker process')
    result, dummy = run({}, reload_rc=1)
    assert result['failed'] is True and 'Job for nginx.service failed.' in result['msg']
