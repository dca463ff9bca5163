#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


DOCUMENTATION = r"""
module: emq_api_keys
short_description: Check the API keys EMQX 5 loaded from its bootstrap file, and revoke the ones removed from it
version_added: 0.1.0
description:
  - Compares the API keys that EMQX loaded from C(api_key.bootstrap_file) with O(keys), the keys that file
    holds now, through the REST API of the dashboard listener.
  - Fails when a key of O(keys) is not loaded. EMQX's loader stops at the first line it refuses and leaves
    the later lines unloaded without any other sign than a line in its log.
  - Revokes (C(DELETE /api_key/<name>)) every key loaded from the bootstrap file that O(keys) does not list,
    because EMQX's loader only adds and updates keys, so a key removed from the file stays valid until deleted.
  - Keys created in the dashboard or through the API are never touched; the module recognises bootstrap keys
    by the description EMQX gives them, C(Bootstrapped From File).
  - Logs in as a dashboard user (O(username), O(password)), because EMQX does not let API keys manage API keys.
author:
  - iothub.emq maintainers (@iothub)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - iothub.emq.emqx_api
attributes:
  check_mode:
    support: full
    details:
      - In check mode the module reads the keys and reports what it would revoke, and deletes nothing.
  diff_mode:
    support: full
    details:
      - The diff lists the key values (C(api_key), not secrets) loaded from the bootstrap file before and after.
  platform:
    support: full
    platforms: posix
options:
  keys:
    description:
      - The C(api_key) values, the part before the first C(:) of each line, that the bootstrap file holds now,
        for example V([ops, monitor]).
      - Never the secrets.
      - An empty list with O(revoke_unlisted=true) revokes every key loaded from the bootstrap file.
    type: list
    elements: str
    required: true
  revoke_unlisted:
    description:
      - Whether to revoke the keys loaded from the bootstrap file that O(keys) does not list.
      - With V(false) the module only checks that the keys of O(keys) are loaded, and warns about the others.
    type: bool
    default: true
notes:
  - API keys are shared by the whole cluster, so the task needs to run against one node only. Core nodes load
    the bootstrap file when they start; give every core node the same file, or a node that starts with an older
    file loads a revoked key again.
  - A key of O(keys) that EMQX loaded but that is disabled or expired (in the dashboard) gives a warning.
seealso:
  - module: iothub.emq.emq_dashboard_password
    description: Set the dashboard password this module logs in with.
  - name: EMQX API keys
    description: The bootstrap file and the C(/api_key) endpoints.
    link: https://docs.emqx.com/en/emqx/latest/admin/api.html
"""

EXAMPLES = r"""
- name: Revoke the API keys that are no longer in the bootstrap file
  iothub.emq.emq_api_keys:
    api_url: "http://{{ ansible_facts['default_ipv4']['address'] }}:18083/api/v5"
    password: "{{ emq_node_dashboard_password }}"
    keys: "{{ emq_node_api_keys | map(attribute='key') | list }}"
  run_once: true

- name: Only check that every key of the file is loaded
  iothub.emq.emq_api_keys:
    api_url: https://emqx1.example.com:18084/api/v5
    password: "{{ vault_emqx_admin_password }}"
    keys: [ops, monitor]
    revoke_unlisted: false
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
keys:
  description:
    - The C(api_key) values EMQX holds from the bootstrap file after the run (predicted in check mode), sorted.
    - With O(revoke_unlisted=false) it may list keys that O(keys) does not.
  returned: success
  type: list
  elements: str
  sample: [monitor, ops]
revoked:
  description: The C(api_key) values the module revoked (in check mode, would revoke), sorted.
  returned: always
  type: list
  elements: str
  sample: [old-ci]
missing:
  description: The keys of O(keys) that EMQX has not loaded from the bootstrap file.
  returned: always
  type: list
  elements: str
  sample: []
requests:
  description: Every HTTP request the module sent, as method, path below O(api_url) and status.
  returned: always
  type: list
  elements: str
  sample:
    - POST /login 200
    - GET /api_key 200
    - DELETE /api_key/from_bootstrap_file_5f1b9c3b0f3c1d2a 204
    - POST /logout 204
msg:
  description: What the module did or found, in one sentence; on failure, the reason and a hint.
  returned: always
  type: str
  sample: Revoked 1 API key that is no longer in the bootstrap file.
url:
  description: The URL of the request that failed.
  returned: failure
  type: str
  sample: http://10.0.0.1:18083/api/v5/api_key
status:
  description: The HTTP status of the request that failed, when an answer arrived.
  returned: failure
  type: int
  sample: 401
diff:
  description: The keys loaded from the bootstrap file before and after, in diff mode.
  returned: when diff mode is on
  type: dict
  contains:
    before:
      description: The keys before the run.
      type: dict
      returned: when diff mode is on
      contains:
        keys:
          description: C(api_key) values loaded from the bootstrap file, sorted.
          type: list
          elements: str
          returned: when diff mode is on
    after:
      description: The keys after the run (predicted in check mode).
      type: dict
      returned: when diff mode is on
      contains:
        keys:
          description: C(api_key) values loaded from the bootstrap file, sorted.
          type: list
          elements: str
          returned: when diff mode is on
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.iothub.emq.plugins.module_utils.emqx_api import (
    BOOTSTRAP_DESC,
    EmqxApiJob,
    api_params_problem,
    describe,
    emqx_api_argument_spec,
)


def _plural(count, one, many):
    return '{0} {1}'.format(count, one if count == 1 else many)


class ApiKeys(EmqxApiJob):

    def __init__(self, module):
        super(ApiKeys, self).__init__(module)
        self.wanted = []
        for key in module.params['keys']:
            if key not in self.wanted:
                self.wanted.append(key)
        self.before = None
        self.after = None
        self.revoked = []
        self.missing = []

    # -- results -----------------------------------------------------------------------

    def fields(self):
        fields = dict(revoked=sorted(self.revoked), missing=list(self.missing))
        if self.after is not None:
            fields['keys'] = list(self.after)
        return fields

    def diff(self):
        if self.before is None:
            return None
        return dict(before=dict(keys=list(self.before)),
                    after=dict(keys=list(self.after if self.after is not None else self.before)))

    # -- steps -------------------------------------------------------------------------

    def log_in(self):
        token = self.api.login(self.username, self.params['password'])
        if token is None:
            self.fail('Cannot log in as dashboard user {0} at {1}: EMQX says the user name or the password is wrong '
                      '(401); set the password the dashboard user has now, for example with '
                      'iothub.emq.emq_dashboard_password first.'.format(self.username, self.api.url('/login')),
                      url=self.api.url('/login'), status=401)
        self.token = token

    def read_keys(self):
        status, data = self.api.request('GET', '/api_key', token=self.token)
        if status != 200:
            self.fail('Cannot list the API keys: GET {0} answered {1}.'
                      .format(self.api.url('/api_key'), describe(status, data)),
                      url=self.api.url('/api_key'), status=status)
        if not isinstance(data, list) or not all(isinstance(item, dict) and item.get('api_key') for item in data):
            self.fail('GET {0} answered 200 but not with a list of API keys; is api_url the EMQX 5 dashboard API?'
                      .format(self.api.url('/api_key')), url=self.api.url('/api_key'), status=status)
        return data

    def revoke(self, entry):
        """DELETE one key; True when this run deleted it, False when it was gone already."""
        name = entry.get('name') or ''
        path = '/api_key/{0}'.format(self.api.quote(name))
        status, data = self.api.request('DELETE', path, token=self.token)
        if status in (200, 204):
            return True
        if status == 404:
            return False
        self.fail('Cannot revoke the API key {0} (named {1}): DELETE {2} answered {3}.'
                  .format(entry['api_key'], name, self.api.url(path), describe(status, data)),
                  url=self.api.url(path), status=status)
        return False

    def run(self):
        self.log_in()
        entries = self.read_keys()
        bootstrap = dict((e['api_key'], e) for e in entries if e.get('desc') == BOOTSTRAP_DESC)
        self.before = sorted(bootstrap)

        self.missing = [key for key in self.wanted if key not in bootstrap]
        if self.missing:
            self.fail(
                'EMQX has not loaded the API {0} {1} from its bootstrap file: the loader stops at the first line '
                'it refuses (a role this edition does not know, such as viewer on the open source edition, or a ":" '
                'inside a key or secret) and leaves the later lines unloaded, so look for '
                'failed_to_load_bootstrap_file in /var/log/emqx/emqx.log.*, fix the file and restart EMQX.'
                .format('key' if len(self.missing) == 1 else 'keys', ', '.join(self.missing)))

        for key in self.wanted:
            entry = bootstrap[key]
            if entry.get('enable') is False:
                self.module.warn('The API key {0} from the bootstrap file is disabled in EMQX; enable it in the '
                                 'dashboard, or restart EMQX to load the file again.'.format(key))
            elif entry.get('expired') is True:
                self.module.warn('The API key {0} from the bootstrap file has expired in EMQX; restart EMQX to load '
                                 'the file again.'.format(key))

        unlisted = sorted(key for key in bootstrap if key not in self.wanted)
        if not unlisted:
            self.after = list(self.before)
            self.exit('EMQX holds exactly the {0} of the bootstrap file.'
                      .format(_plural(len(self.before), 'API key', 'API keys')))
        if not self.params['revoke_unlisted']:
            self.after = list(self.before)
            self.module.warn('EMQX still accepts the API {0} {1}, loaded from an earlier bootstrap file; set '
                             'revoke_unlisted=true to revoke them.'
                             .format('key' if len(unlisted) == 1 else 'keys', ', '.join(unlisted)))
            self.exit('Every API key of the bootstrap file is loaded; left {0} that the file no longer holds.'
                      .format(_plural(len(unlisted), 'API key', 'API keys')))

        if self.module.check_mode:
            self.revoked = list(unlisted)
            self.changed = True
            self.after = sorted(set(self.before) - set(unlisted))
            self.exit('Would revoke {0} that the bootstrap file no longer holds: {1}.'
                      .format(_plural(len(unlisted), 'API key', 'API keys'), ', '.join(unlisted)))

        gone = []
        for key in unlisted:
            if self.revoke(bootstrap[key]):
                self.revoked.append(key)
                self.changed = True
            else:
                gone.append(key)
        self.after = sorted(set(self.before) - set(unlisted))
        if not self.revoked:
            self.exit('The API {0} {1} no longer in the bootstrap file {2} revoked meanwhile, by another node or client.'
                      .format('key' if len(gone) == 1 else 'keys', ', '.join(gone),
                              'was' if len(gone) == 1 else 'were'))
        self.exit('Revoked {0} that the bootstrap file no longer holds: {1}.'
                  .format(_plural(len(self.revoked), 'API key', 'API keys'), ', '.join(sorted(self.revoked))))


def main():
    argument_spec = emqx_api_argument_spec()
    argument_spec.update(
        keys=dict(type='list', elements='str', required=True, no_log=False),
        revoke_unlisted=dict(type='bool', default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    problem = api_params_problem(module.params)
    if problem:
        module.fail_json(msg=problem)
    empty = [index for index, key in enumerate(module.params['keys']) if not key]
    if empty:
        module.fail_json(msg='keys holds an empty value at position {0}; list the api_key part of each line of the '
                             'bootstrap file.'.format(empty[0]))
    ApiKeys(module).execute()


if __name__ == '__main__':
    main()
