#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
module: nginx_reload
short_description: Reload NGINX and wait until it runs the new configuration and its old workers take no new connection
version_added: 0.4.0
description:
  - Reloads a running NGINX through systemd (C(systemctl reload)), then watches the master's worker processes
    until the reload is observed, instead of waiting a fixed time.
  - The reload is taken when the master has started workers that were not there before. NGINX keeps its old workers
    when it cannot apply a configuration (a certificate it cannot load, an address it cannot bind), so no new
    worker within O(timeout) fails the task, and NGINX still runs the previous configuration.
  - With O(wait_old_workers), the task also waits until every old worker has either exited or closed its listening
    sockets (NGINX then titles it C(worker process is shutting down) and lets it finish its established
    connections only). From then on only the new workers accept connections, so a server marked C(down) in the new
    configuration receives no new connection from this load balancer.
  - Workers are read from C(/proc/<master>/task/<master>/children) and each worker's title from C(/proc/<pid>/cmdline).
author:
  - iothub.emq maintainers (@iothub)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - Nothing is reloaded; the task reports the change a reload is.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
options:
  service:
    description:
      - The systemd unit of NGINX, without C(.service).
    type: str
    default: nginx
  timeout:
    description:
      - Seconds to wait for new workers, and then for the old ones to stop accepting.
    type: int
    default: 30
  wait_old_workers:
    description:
      - Also wait until no old worker accepts new connections.
    type: bool
    default: true
  daemon_reload:
    description:
      - Run C(systemctl daemon-reload) first (a drop-in of the unit changed).
    type: bool
    default: false
notes:
  - Fails when the unit runs no process (C(MainPID) 0), since a stopped NGINX has nothing to reload.
seealso:
  - module: ansible.builtin.systemd_service
"""

EXAMPLES = r"""
- name: Reload NGINX so that the upstream server marked down gets no new connection
  iothub.emq.nginx_reload:
    service: nginx
  delegate_to: lb-nginx-1
  register: __reload

- name: Say which old workers still finish their connections
  ansible.builtin.debug:
    msg: "Workers {{ __reload.workers_draining | join(', ') or 'none' }} finish their established connections"
"""

RETURN = r"""
master_pid:
  description: The NGINX master process.
  returned: always
  type: int
  sample: 1342
workers_before:
  description: The master's worker processes before the reload.
  returned: always
  type: list
  elements: int
  sample: [1343, 1344]
workers_after:
  description: The worker processes that started with the reload (empty in check mode).
  returned: always
  type: list
  elements: int
  sample: [1390, 1391]
workers_draining:
  description: Old workers that still finish their established connections (they accept no new one).
  returned: always
  type: list
  elements: int
  sample: [1343]
seconds:
  description: How long the reload took to be observed.
  returned: always
  type: float
  sample: 0.4
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule

WORKER_TITLE = 'nginx: worker process'
SHUTTING_DOWN = 'is shutting down'
POLL_SECONDS = 0.1
PROC = '/proc'


def read_text(path):
    """The file's text, or None when it cannot be read (the process has exited)."""
    try:
        with open(path, 'rb') as handle:
            return handle.read().decode('utf-8', errors='replace')
    except (IOError, OSError):
        return None


def children(pid, proc=None):
    """The child process ids of pid, from the kernel's children list of its main thread."""
    text = read_text(os.path.join(proc or PROC, str(pid), 'task', str(pid), 'children')) or ''
    return sorted(int(field) for field in text.split() if field.isdigit())


def title(pid, proc=None):
    """The process title (NGINX writes it over its argv), or None when the process is gone."""
    text = read_text(os.path.join(proc or PROC, str(pid), 'cmdline'))
    return None if text is None else ' '.join(text.replace('\0', ' ').split())


def workers(pid, proc=None):
    """The children of the master that are worker processes (not the cache manager or loader)."""
    return [child for child in children(pid, proc) if (title(child, proc) or '').startswith(WORKER_TITLE)]


def accepting(pids, proc=None):
    """The old workers that still accept: alive, and not titled as shutting down."""
    still = []
    for pid in pids:
        name = title(pid, proc)
        if name is not None and name.startswith(WORKER_TITLE) and SHUTTING_DOWN not in name:
            still.append(pid)
    return still


def draining(pids, proc=None):
    """The old workers that finish their established connections."""
    return [pid for pid in pids if SHUTTING_DOWN in (title(pid, proc) or '')]


def watch(master, before, timeout, wait_old, proc=None, clock=time.monotonic, sleep=time.sleep):
    """(new workers, old ones still accepting, seconds) once the reload is observed or timeout passed."""
    start = clock()
    new, still = [], list(before)
    while True:
        new = [pid for pid in workers(master, proc) if pid not in before]
        still = accepting(before, proc) if wait_old else []
        if new and not still:
            break
        if clock() - start >= timeout:
            break
        sleep(POLL_SECONDS)
    return new, still, round(clock() - start, 3)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            service=dict(type='str', default='nginx'),
            timeout=dict(type='int', default=30),
            wait_old_workers=dict(type='bool', default=True),
            daemon_reload=dict(type='bool', default=False),
        ),
        supports_check_mode=True,
    )
    unit = module.params['service'] + '.service'
    systemctl = module.get_bin_path('systemctl', required=True)
    rc, out, err = module.run_command([systemctl, 'show', '-P', 'MainPID', unit])
    master = int(out.strip()) if rc == 0 and out.strip().isdigit() else 0
    if master == 0:
        module.fail_json(msg='%s runs no process (MainPID 0): there is no NGINX to reload. Start it first.' % unit,
                         master_pid=0, workers_before=[], workers_after=[], workers_draining=[], seconds=0.0)
    before = workers(master)
    result = dict(changed=True, master_pid=master, workers_before=before, workers_after=[], workers_draining=[],
                  seconds=0.0)
    if module.check_mode:
        module.exit_json(**result)

    if module.params['daemon_reload']:
        rc, out, err = module.run_command([systemctl, 'daemon-reload'])
        if rc != 0:
            module.fail_json(msg='systemctl daemon-reload failed: %s' % (err or out).strip(), **result)
    rc, out, err = module.run_command([systemctl, 'reload', unit])
    if rc != 0:
        module.fail_json(msg='systemctl reload %s failed: %s' % (unit, (err or out).strip()), **result)

    new, still, seconds = watch(master, before, module.params['timeout'], module.params['wait_old_workers'])
    result.update(workers_after=new, workers_draining=draining(before), seconds=seconds)
    if not new:
        module.fail_json(msg='NGINX (%s, master %d) started no new worker within %d s of the reload and still runs the '
                             'previous configuration (workers %s). Its error log and "journalctl -u %s" say why, for '
                             'example a certificate it cannot load or an address it cannot bind.'
                             % (unit, master, module.params['timeout'], ', '.join(str(p) for p in before) or 'none',
                                module.params['service']), **result)
    if still:
        module.fail_json(msg='NGINX (%s) runs the new configuration, but its old workers %s still accept connections '
                             '%d s after the reload.' % (unit, ', '.join(str(p) for p in still), module.params['timeout']),
                         **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
