#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


DOCUMENTATION = r"""
module: emq_cluster_info
short_description: Read the state of an EMQX 5 node and the cluster as that node sees it
version_added: 0.2.0
description:
  - "Reads the name, version and state of the EMQX 5 node on the managed host (C(emqx ctl status)) and the members
    of its cluster as that node sees them (C(emqx ctl cluster status --json), falling back to the
    C(Cluster status: #{...}) form)."
  - Changes nothing, and runs in check mode too, so tasks can wait on its results with C(until).
  - A node that does not answer is not an error. The module then returns RV(running=false), empty lists and a
    message that says what C(emqx ctl status) printed and how to look further. It fails only when the C(emqx)
    command itself is missing or cannot run.
author:
  - iothub.emq maintainers (@iothub)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - iothub.emq.emqx_cli
attributes:
  check_mode:
    support: full
    details:
      - The module only reads; it runs the same commands in check mode.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
notes:
  - Each call runs C(emqx ctl status) and, when the node answers, C(emqx ctl cluster status --json) (plus
    C(emqx ctl cluster status) when the JSON form is not understood). Each C(emqx ctl) call starts a short-lived
    Erlang node, so a read is not instant; keep C(delay) of a waiting task at a few seconds.
  - The membership is what the local node sees. After a network split the nodes on each side may see different
    lists; read it on every node to compare.
  - RV(stopped_nodes) lists members the local node knows but cannot reach; they stay members until they come back
    or are removed (M(iothub.emq.emq_cluster_join) with C(state=absent) and C(node)).
seealso:
  - module: iothub.emq.emq_cluster_join
    description: Join a node to a cluster, make it leave, or remove another node.
  - name: EMQX command line
    description: Reference of C(emqx ctl).
    link: https://docs.emqx.com/en/emqx/latest/admin/cli.html
"""

EXAMPLES = r"""
- name: Read the node and its cluster
  iothub.emq.emq_cluster_info:
  register: emq_info

- name: Show what the node sees
  ansible.builtin.debug:
    msg: "{{ emq_info.msg }}"

- name: Wait until the cluster runs the three expected nodes
  iothub.emq.emq_cluster_info:
  register: emq_info
  until: emq_info.running_nodes == ['emqx@10.0.0.1', 'emqx@10.0.0.2', 'emqx@10.0.0.3']
  retries: 60
  delay: 3

- name: Refuse to go on while a member is down
  ansible.builtin.assert:
    that:
      - emq_info.running
      - emq_info.stopped_nodes | length == 0
    fail_msg: "{{ emq_info.msg }}"

- name: Use an EMQX installed from a tarball
  iothub.emq.emq_cluster_info:
    cli_path: /opt/emqx/bin/emqx
"""

RETURN = r"""
running:
  description:
    - Whether C(emqx ctl status) answered and says the node C(is started).
    - V(false) when EMQX does not answer (service stopped, node down, still starting or stopping).
  returned: always
  type: bool
  sample: true
node:
  description: Name of the local node, from C(emqx ctl status); V(null) when EMQX does not answer.
  returned: always
  type: str
  sample: emqx@10.0.0.1
version:
  description: EMQX version of the local node, from C(emqx ctl status); V(null) when EMQX does not answer.
  returned: always
  type: str
  sample: 5.8.9
state:
  description:
    - State of the local node as C(emqx ctl status) prints it (C(Node 'emqx@10.0.0.1' 5.8.9 is started)), that is
      V(started), or V(starting) or V(stopping) while it boots or shuts down.
    - V(null) when EMQX does not answer.
  returned: always
  type: str
  sample: started
running_nodes:
  description:
    - Running members of the local node's cluster, sorted. A node outside any cluster lists only itself.
    - Empty when EMQX does not answer or the membership cannot be read.
  returned: always
  type: list
  elements: str
  sample: [emqx@10.0.0.1, emqx@10.0.0.2, emqx@10.0.0.3]
stopped_nodes:
  description:
    - Members of the local node's cluster that it cannot reach, sorted.
    - Empty when EMQX does not answer or the membership cannot be read.
  returned: always
  type: list
  elements: str
  sample: []
members:
  description: Every member of the local node's cluster, running or stopped, sorted (RV(running_nodes) and RV(stopped_nodes) together).
  returned: always
  type: list
  elements: str
  sample: [emqx@10.0.0.1, emqx@10.0.0.2, emqx@10.0.0.3]
commands:
  description: Every command the module ran, in order, as shell-quoted strings.
  returned: always
  type: list
  elements: str
  sample:
    - /usr/bin/emqx ctl status
    - /usr/bin/emqx ctl cluster status --json
msg:
  description:
    - What the module found, in one sentence.
    - When EMQX does not answer, what C(emqx ctl status) printed and how to look further.
  returned: always
  type: str
  sample: emqx@10.0.0.1 (5.8.9) is started; 3 running, 0 stopped
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.iothub.emq.plugins.module_utils.emqx_cli import (
    EmqxCli,
    EmqxCliError,
    emqx_cli_argument_spec,
)


HOW_TO_CHECK = 'Check the service with "systemctl status emqx" and its log with "journalctl -u emqx".'


def _first_line(*texts):
    for text in texts:
        for line in (text or '').splitlines():
            if line.strip():
                return line.strip().rstrip('.')
    return ''


def not_answering(exc):
    """One sentence for a node whose ``emqx ctl status`` failed or printed no status line."""
    printed = _first_line(exc.stderr, exc.stdout)
    return 'EMQX does not answer on this host: "emqx ctl status" exited {0}{1}. {2}'.format(
        exc.rc, ' ({0})'.format(printed) if printed else ' and printed nothing', HOW_TO_CHECK)


def describe(status, members, problem=None):
    """One sentence for a node that answered."""
    head = '{node} ({version}) is {state}'.format(**status)
    if status['state'] != 'started':
        head += ', not started yet' if status['state'] == 'starting' else ', not running'
    if problem is not None:
        return '{0}, but its cluster membership cannot be read: {1}. {2}'.format(head, problem, HOW_TO_CHECK)
    stopped = members['stopped_nodes']
    msg = '{0}; {1} running, {2} stopped'.format(head, len(members['running_nodes']), len(stopped))
    if stopped:
        msg += ' ({0})'.format(', '.join(stopped))
    return msg


def main():
    module = AnsibleModule(
        argument_spec=emqx_cli_argument_spec(),
        supports_check_mode=True,
    )
    # Fails when cli_path does not exist (or a bare name is not found in PATH).
    cli = EmqxCli(module, module.params['cli_path'])
    if not os.path.isfile(cli.cli) or not os.access(cli.cli, os.X_OK):
        module.fail_json(
            msg='The EMQX command line tool {0} is not an executable file. Install EMQX on this host, or set '
                'cli_path to where the emqx script is.'.format(cli.cli))

    result = dict(
        changed=False,
        running=False,
        node=None,
        version=None,
        state=None,
        running_nodes=[],
        stopped_nodes=[],
        members=[],
        commands=cli.commands,
    )

    try:
        status = cli.node_status()
    except EmqxCliError as exc:
        module.exit_json(msg=not_answering(exc), **result)

    result.update(node=status['node'], version=status['version'], state=status['state'],
                  running=status['state'] == 'started')
    try:
        members = cli.cluster_status()
    except EmqxCliError as exc:
        printed = _first_line(exc.stderr, exc.stdout)
        problem = '"emqx ctl cluster status" printed neither JSON nor the "Cluster status: #{{...}}" term (exit code {0}{1})'.format(
            exc.rc, ': ' + printed if printed else '')
        msg = describe(status, None, problem=problem)
        module.warn(msg)
        module.exit_json(msg=msg, **result)

    result.update(
        running_nodes=list(members['running_nodes']),
        stopped_nodes=list(members['stopped_nodes']),
        members=sorted(set(members['running_nodes']) | set(members['stopped_nodes'])),
    )
    module.exit_json(msg=describe(status, members), **result)


if __name__ == '__main__':
    main()
