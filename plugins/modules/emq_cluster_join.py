#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


DOCUMENTATION = r"""
module: emq_cluster_join
short_description: Join an EMQX 5 node to a cluster, or make a node leave it
version_added: 0.1.0
description:
  - Makes the EMQX 5 node on the managed host a member of the cluster that O(peer) belongs to
    (C(emqx ctl cluster join)), makes it leave its cluster (C(emqx ctl cluster leave)), or removes
    another node from the cluster (C(emqx ctl cluster force-leave)).
  - "Reads the membership first (C(emqx ctl cluster status --json), falling back to the
    C(Cluster status: #{...}) form) and does nothing when the node is already where it should be."
  - Decides from what EMQX prints, not from its exit code, because EMQX 5.8 exits 0 when a join fails.
  - Retries the join while the peer is down or still starting, up to O(timeout) seconds, then reads the
    membership again to confirm the result.
author:
  - iothub.emq maintainers (@iothub)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - iothub.emq.emqx_cli
attributes:
  check_mode:
    support: full
    details:
      - In check mode the module reads the membership, reports whether it would act, and runs no join or leave.
  diff_mode:
    support: full
    details:
      - The diff shows the running and stopped nodes before and after.
      - In check mode the predicted O(state=present) result lists only the local node and O(peer), because
        the other members of the peer's cluster are not known before the join.
  platform:
    support: full
    platforms: posix
options:
  state:
    description:
      - V(present) makes the local node a member of the cluster of O(peer).
      - V(absent) without O(node) makes the local node leave its cluster.
      - V(absent) with O(node) removes that node from the local node's cluster (force-leave).
    type: str
    choices: [present, absent]
    default: present
  peer:
    description:
      - Name of a node of the cluster to join, for example V(emqx@10.0.0.1).
      - Required with O(state=present). It must be a core node; replicants cannot be joined through.
      - When O(peer) is the local node itself, nothing is done, so the same task can run on every node
        of a group with the first node as peer.
    type: str
  node:
    description:
      - With O(state=absent), the name of another node to remove from the cluster
        (C(emqx ctl cluster force-leave)); it may be running or stopped.
      - Omit it to make the local node leave (C(emqx ctl cluster leave)).
    type: str
  leave_current_cluster:
    description:
      - What to do when the local node already runs in a cluster with other nodes, none of which is O(peer).
      - V(false) fails with an explanation, so that a node is never moved between clusters by accident.
      - V(true) makes the node leave its current cluster first and then join O(peer).
        Joining drops the node's local data and syncs it from the cluster of O(peer).
    type: bool
    default: false
  timeout:
    description:
      - Seconds to keep retrying while the peer is down or still starting (C({node_down, ...})), and,
        after an accepted action, seconds to wait until the membership shows the result.
      - Also how long to wait for the local node while C(emqx ctl status) says it is starting.
      - V(0) tries once.
    type: int
    default: 60
  delay:
    description:
      - Seconds between two attempts, and between two reads of the membership while confirming.
      - V(0) is taken as V(1).
    type: int
    default: 5
notes:
  - The join runs on the node that joins, and that node drops its own data (including dashboard users) and
    syncs it from the cluster. Put API keys in the bootstrap file on every node.
  - EMQX 5 has no epmd. Nodes reach each other on TCP 4370 (Erlang distribution) and 5370 (gen_rpc),
    plus N for node names like C(emqx1@host). C(node.cookie) must be the same on every node. A wrong cookie
    or a closed port both show up as C({node_down, ...}).
  - EMQX Enterprise 5.9 and later needs a license key that allows clustering; the default license is
    single-node and joining is refused.
  - A node that is listed among the stopped nodes of the local cluster is a member already; the module
    then reports no change and a warning.
  - "C(emqx ctl cluster leave) refuses when no other node is running. When the local node only lists stopped
    nodes, O(state=absent) without O(node) changes nothing and warns; remove those nodes with O(node)."
seealso:
  - module: iothub.emq.emq_port_check
    description: Check from a node that the ports of its peers are open.
  - name: EMQX clustering
    description: How EMQX 5 nodes form a cluster, and the C(emqx ctl cluster) commands.
    link: https://docs.emqx.com/en/emqx/latest/deploy/cluster/introduction.html
  - name: EMQX command line
    description: Reference of C(emqx ctl).
    link: https://docs.emqx.com/en/emqx/latest/admin/cli.html
"""

EXAMPLES = r"""
- name: Join every node to the cluster of the first node
  iothub.emq.emq_cluster_join:
    peer: "emqx@{{ hostvars[groups['emq_nodes'][0]]['ansible_facts']['default_ipv4']['address'] }}"
    timeout: 120
  register: emq_join

- name: Show the members
  ansible.builtin.debug:
    msg: "{{ emq_join.running_nodes }}"

- name: Make this node leave its cluster
  iothub.emq.emq_cluster_join:
    state: absent

- name: Remove a dead node from the cluster, from any member
  iothub.emq.emq_cluster_join:
    state: absent
    node: emqx@10.0.0.9
  run_once: true

- name: Move a node that formed a cluster of its own (split brain) back to the main cluster
  iothub.emq.emq_cluster_join:
    peer: emqx@10.0.0.1
    leave_current_cluster: true

- name: Use an EMQX installed from a tarball
  iothub.emq.emq_cluster_join:
    peer: emqx@10.0.0.1
    cli_path: /opt/emqx/bin/emqx
"""

RETURN = r"""
node:
  description: Name of the local node, from C(emqx ctl status).
  returned: success
  type: str
  sample: emqx@10.0.0.2
version:
  description: EMQX version of the local node, from C(emqx ctl status).
  returned: success
  type: str
  sample: 5.8.9
running_nodes:
  description:
    - Running members of the local node's cluster, sorted, after the action (in check mode, before it).
    - A node outside any cluster lists only itself.
  returned: always
  type: list
  elements: str
  sample: [emqx@10.0.0.1, emqx@10.0.0.2]
stopped_nodes:
  description: Members of the local node's cluster that are down, sorted, after the action (in check mode, before it).
  returned: always
  type: list
  elements: str
  sample: []
commands:
  description: Every command the module ran, in order, as shell-quoted strings.
  returned: always
  type: list
  elements: str
  sample:
    - /usr/bin/emqx ctl status
    - /usr/bin/emqx ctl cluster status --json
    - /usr/bin/emqx ctl cluster join emqx@10.0.0.1
    - /usr/bin/emqx ctl cluster status --json
stdout:
  description: Standard output of the last join, leave or force-leave; empty when none ran.
  returned: always
  type: str
  sample: |
    Join the cluster successfully.
    Cluster status: #{running_nodes => ['emqx@10.0.0.1','emqx@10.0.0.2'],
                      stopped_nodes => []}
stderr:
  description: Standard error of the last join, leave or force-leave; on failure, of the failed command.
  returned: always
  type: str
  sample: ""
rc:
  description: Exit code of the last command that failed. EMQX 5.8 exits 0 even when a join fails.
  returned: failure
  type: int
  sample: 0
attempts:
  description: How many times the join or leave command ran (retries while the peer was down count).
  returned: always
  type: int
  sample: 1
msg:
  description: What the module did or found, in one sentence; on failure, the reason and a hint.
  returned: always
  type: str
  sample: Joined the cluster through emqx@10.0.0.1.
diff:
  description: Membership before and after, in diff mode.
  returned: when diff mode is on
  type: dict
  contains:
    before:
      description: Membership before the action.
      type: dict
      returned: when diff mode is on
      contains:
        running_nodes:
          description: Running nodes before.
          type: list
          elements: str
          returned: when diff mode is on
        stopped_nodes:
          description: Stopped nodes before.
          type: list
          elements: str
          returned: when diff mode is on
    after:
      description: Membership after the action (predicted in check mode).
      type: dict
      returned: when diff mode is on
      contains:
        running_nodes:
          description: Running nodes after.
          type: list
          elements: str
          returned: when diff mode is on
        stopped_nodes:
          description: Stopped nodes after.
          type: list
          elements: str
          returned: when diff mode is on
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.iothub.emq.plugins.module_utils.emqx_cli import (
    FAILED,
    FAILED_FORCE_LEAVE,
    FAILED_JOIN,
    FAILED_LEAVE,
    IGNORED,
    OK,
    SUCCESS_FORCE_LEAVE,
    SUCCESS_JOIN,
    SUCCESS_LEAVE,
    EmqxCli,
    EmqxCliError,
    emqx_cli_argument_spec,
    explain_join_failure,
    is_retryable,
    is_valid_node_name,
    parse_action_output,
    reason_key,
)


def _members(status):
    return dict(running_nodes=list(status['running_nodes']), stopped_nodes=list(status['stopped_nodes']))


class ClusterJoin(object):

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.cli = EmqxCli(module, module.params['cli_path'])
        self.self_node = None
        self.version = None
        self.before = None
        self.after = None
        self.changed = False
        self.attempts = 0
        self.stdout = ''
        self.stderr = ''
        self.warnings = []

    # -- results -----------------------------------------------------------------------

    def _result(self, msg, **extra):
        current = self.after or self.before or dict(running_nodes=[], stopped_nodes=[])
        result = dict(
            changed=self.changed,
            msg=msg,
            node=self.self_node,
            version=self.version,
            running_nodes=current['running_nodes'],
            stopped_nodes=current['stopped_nodes'],
            commands=list(self.cli.commands),
            stdout=self.stdout,
            stderr=self.stderr,
            attempts=self.attempts,
        )
        if self.module._diff and self.before is not None:
            result['diff'] = dict(before=_members(self.before), after=_members(current))
        result.update(extra)
        return result

    def exit(self, msg, predicted=None):
        for warning in self.warnings:
            self.module.warn(warning)
        result = self._result(msg)
        if predicted is not None and self.module._diff:
            result['diff']['after'] = predicted
        self.module.exit_json(**result)

    def fail(self, msg, rc=None, stdout=None, stderr=None):
        for warning in self.warnings:
            self.module.warn(warning)
        result = self._result(msg)
        result['rc'] = rc
        if stdout is not None:
            result['stdout'] = stdout
        if stderr is not None:
            result['stderr'] = stderr
        self.module.fail_json(**result)

    # -- reading -----------------------------------------------------------------------

    def read_local_node(self):
        """Name and version of the local node; waits while it is still starting."""
        deadline = self.cli.now() + max(0, self.params['timeout'])
        while True:
            status = self.cli.node_status()
            if status['state'] == 'started':
                break
            if self.cli.now() + self.params['delay'] > deadline:
                raise EmqxCliError(
                    'The local EMQX node {0} is still {1} after {2} seconds; wait until "emqx ctl status" '
                    'says "is started", or raise timeout.'.format(status['node'], status['state'], self.params['timeout']),
                    rc=0, cmd=self.cli.commands[-1])
            self.cli.sleep(self.params['delay'])
        self.self_node = status['node']
        self.version = status['version']

    def others(self, status):
        return [n for n in status['running_nodes'] if n != self.self_node]

    def confirm(self, predicate, what):
        status, done = self.cli.wait_for(predicate, self.params['timeout'], self.params['delay'])
        self.after = status
        if not done:
            self.fail('{0}, but the membership does not show it after {1} seconds: running_nodes={2}, '
                      'stopped_nodes={3}.'.format(what, self.params['timeout'], status['running_nodes'],
                                                  status['stopped_nodes']))

    # -- actions -----------------------------------------------------------------------

    def run_action(self, args, success_line, failure_prefix):
        self.attempts += 1
        rc, out, err = self.cli.ctl('cluster', *args)
        self.stdout, self.stderr = out, err
        outcome, reason = parse_action_output(out, success_line, failure_prefix)
        return rc, out, err, outcome, reason

    def unexpected(self, what, rc, out, err):
        first = (out.strip() or err.strip() or 'nothing').splitlines()[0]
        self.fail('"emqx ctl cluster {0}" printed something this module does not understand (exit code {1}): '
                  '{2}'.format(what, rc, first), rc=rc, stdout=out, stderr=err)

    def leave(self):
        rc, out, err, outcome, reason = self.run_action(['leave'], SUCCESS_LEAVE, FAILED_LEAVE)
        if outcome == OK:
            return True
        if outcome == FAILED and reason_key(reason) == 'node_not_in_cluster':
            return False
        if outcome == FAILED:
            self.fail('Cannot make {0} leave its cluster: EMQX refused with {1}.'.format(self.self_node, reason),
                      rc=rc, stdout=out, stderr=err)
        self.unexpected('leave', rc, out, err)
        return False

    def join(self):
        peer = self.params['peer']
        delay = self.params['delay']
        deadline = self.cli.now() + max(0, self.params['timeout'])
        while True:
            rc, out, err, outcome, reason = self.run_action(['join', peer], SUCCESS_JOIN, FAILED_JOIN)
            if outcome == OK:
                return True
            if outcome == IGNORED:
                return False
            if outcome == FAILED:
                if reason_key(reason) == 'already_in_cluster':
                    return False
                if is_retryable(reason) and self.cli.now() + delay <= deadline:
                    self.cli.sleep(delay)
                    continue
                msg = explain_join_failure(peer, reason)
                if self.attempts > 1:
                    msg += ' Tried {0} times over {1} seconds.'.format(self.attempts, self.params['timeout'])
                self.fail(msg, rc=rc, stdout=out, stderr=err)
            self.unexpected('join', rc, out, err)

    def present(self):
        peer = self.params['peer']
        before = self.before
        if peer == self.self_node:
            self.exit('{0} is the local node itself; nothing to join.'.format(peer))
        if peer in before['running_nodes']:
            self.exit('{0} is already in the cluster of {1}.'.format(self.self_node, peer))
        if peer in before['stopped_nodes']:
            self.warnings.append('{0} is a member of the cluster of {1} but is stopped.'.format(peer, self.self_node))
            self.exit('{0} is already in the cluster of {1}; {1} is stopped.'.format(self.self_node, peer))

        others = self.others(before)
        if others and not self.params['leave_current_cluster']:
            self.fail('{0} already runs in a cluster with {1}, which does not include {2}. Joining {2} would move '
                      'it to another cluster and drop its data. Make {0} leave first (state=absent), set '
                      'leave_current_cluster=true, or check that peer names the right cluster.'
                      .format(self.self_node, ', '.join(others), peer))

        predicted = dict(running_nodes=sorted({self.self_node, peer}), stopped_nodes=[])
        self.changed = True
        if self.module.check_mode:
            self.exit('Would join the cluster through {0}.'.format(peer), predicted=predicted)

        self.changed = False
        if others:
            self.changed = self.leave()
            self.confirm(lambda s: not self.others(s), 'Left the cluster of {0}'.format(', '.join(others)))

        joined = self.join()
        if joined:
            self.changed = True
            self.confirm(lambda s: peer in s['running_nodes'], 'EMQX accepted the join through {0}'.format(peer))
            self.exit('Joined the cluster through {0}.'.format(peer))
        # "Ignore." or already_in_cluster: someone else did it in the meantime.
        self.after = self.cli.cluster_status()
        self.exit('{0} is already in the cluster of {1}.'.format(self.self_node, peer))

    def absent_self(self):
        before = self.before
        others = self.others(before)
        if not others:
            if before['stopped_nodes']:
                self.warnings.append(
                    '{0} runs alone but still lists stopped members {1}; "emqx ctl cluster leave" needs a running '
                    'peer. Remove them with state=absent and node=<name>.'.format(self.self_node, ', '.join(before['stopped_nodes'])))
            self.exit('{0} is not in a cluster with other running nodes.'.format(self.self_node))
        predicted = dict(running_nodes=[self.self_node], stopped_nodes=[])
        self.changed = True
        if self.module.check_mode:
            self.exit('Would make {0} leave the cluster.'.format(self.self_node), predicted=predicted)
        self.changed = False
        if not self.leave():
            self.after = self.cli.cluster_status()
            self.exit('{0} is not in a cluster.'.format(self.self_node))
        self.changed = True
        self.confirm(lambda s: s['running_nodes'] == [self.self_node], '{0} left the cluster'.format(self.self_node))
        self.exit('{0} left the cluster.'.format(self.self_node))

    def absent_node(self):
        node = self.params['node']
        before = self.before
        if node == self.self_node:
            self.fail('{0} is the local node. To make the local node leave its cluster, omit node; to remove it '
                      'from another member, run the task on that member.'.format(node))
        if node not in before['running_nodes'] and node not in before['stopped_nodes']:
            self.exit('{0} is not a member of the cluster of {1}.'.format(node, self.self_node))
        predicted = dict(running_nodes=[n for n in before['running_nodes'] if n != node],
                         stopped_nodes=[n for n in before['stopped_nodes'] if n != node])
        self.changed = True
        if self.module.check_mode:
            self.exit('Would remove {0} from the cluster.'.format(node), predicted=predicted)
        self.changed = False
        rc, out, err, outcome, reason = self.run_action(['force-leave', node], SUCCESS_FORCE_LEAVE, FAILED_FORCE_LEAVE)
        if outcome == OK:
            self.changed = True
            self.confirm(lambda s: node not in s['running_nodes'] and node not in s['stopped_nodes'],
                         'EMQX removed {0}'.format(node))
            self.exit('Removed {0} from the cluster.'.format(node))
        if outcome == IGNORED or (outcome == FAILED and reason_key(reason) == 'node_not_in_cluster'):
            self.after = self.cli.cluster_status()
            self.exit('{0} is not a member of the cluster of {1}.'.format(node, self.self_node))
        if outcome == FAILED and reason.startswith('cluster_rpc_cleanup'):
            self.changed = True
            self.after = self.cli.cluster_status()
            self.fail('{0} was removed from the database cluster, but cleaning up its configuration sync state '
                      '(cluster_rpc) failed: {1}. Run the task again, and check the EMQX log of {2}.'
                      .format(node, reason, self.self_node), rc=rc, stdout=out, stderr=err)
        if outcome == FAILED:
            self.fail('Cannot remove {0} from the cluster: EMQX refused with {1}.'.format(node, reason),
                      rc=rc, stdout=out, stderr=err)
        self.unexpected('force-leave', rc, out, err)

    def run(self):
        self.read_local_node()
        self.before = self.cli.cluster_status()
        if self.params['state'] == 'present':
            self.present()
        elif self.params['node']:
            self.absent_node()
        else:
            self.absent_self()


def main():
    argument_spec = dict(
        state=dict(type='str', default='present', choices=['present', 'absent']),
        peer=dict(type='str'),
        node=dict(type='str'),
        leave_current_cluster=dict(type='bool', default=False),
        timeout=dict(type='int', default=60),
        delay=dict(type='int', default=5),
    )
    argument_spec.update(emqx_cli_argument_spec())
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_if=[('state', 'present', ['peer'])],
        mutually_exclusive=[('peer', 'node')],
        supports_check_mode=True,
    )
    params = module.params
    for option in ('peer', 'node'):
        value = params[option]
        if value is not None and not is_valid_node_name(value):
            module.fail_json(msg='{0}={1!r} is not an EMQX node name; use name@host, for example emqx@10.0.0.1 '
                                 '(the name is letters, digits, "_" and "-").'.format(option, value))
    if params['timeout'] < 0 or params['delay'] < 0:
        module.fail_json(msg='timeout and delay must be 0 or more seconds.')
    if params['delay'] == 0:
        params['delay'] = 1

    job = ClusterJoin(module)
    try:
        job.run()
    except EmqxCliError as exc:
        result = job._result(exc.msg)
        result.update(exc.fail_kwargs())
        module.fail_json(**result)


if __name__ == '__main__':
    main()
