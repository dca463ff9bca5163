#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


DOCUMENTATION = r"""
module: emq_dashboard_password
short_description: Set the password of an EMQX 5 dashboard user through the REST API
version_added: 0.1.0
description:
  - Makes the password of the EMQX dashboard user O(username) equal to O(password), through the REST API
    of the dashboard listener, without a command line or a shell. The password travels in request bodies
    only, never in a process's arguments.
  - Logs in with O(password) first (C(POST /login)); when that works, nothing is to do.
  - Otherwise logs in with each of O(previous_passwords) in turn, and with the first that works changes the
    password (C(POST /users/<username>/change_pwd)), then logs in with O(password) to confirm it.
  - Dashboard users are shared by the whole cluster, so the task needs to run against one node only; when
    it runs on several nodes at once and another node changed the password first, EMQX answers that the old
    password does not match, the module logs in with O(password) and reports no change.
  - Replaces C(emqx ctl admins passwd), which, run as root, goes through C(su - emqx -c) and so alters
    passwords that hold C($), backquotes or quotes, and shows the password in the process list.
author:
  - iothub.emq maintainers (@iothub)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - iothub.emq.emqx_api
attributes:
  check_mode:
    support: full
    details:
      - In check mode the module only logs in, which changes no password, and reports whether it would change it.
  diff_mode:
    support: full
    details:
      - The diff never shows a password; it shows V(<unchanged>) on both sides, or V(<old>) and V(<changed>).
  platform:
    support: full
    platforms: posix
options:
  password:
    description:
      - The password O(username) must have. The module logs in with it first.
      - EMQX 5.8 accepts 8 to 64 ASCII characters with at least two kinds among letters, digits and special
        characters; it refuses other passwords and the module fails with EMQX's reason.
  previous_passwords:
    description:
      - Passwords the user may have now, tried in order when O(password) does not log in.
      - Pass the password set by the previous run (and, right after an install, the default V(public)).
      - Empty entries and entries equal to O(password) are skipped.
    type: list
    elements: str
    default: []
notes:
  - Changing the password makes EMQX drop every token of the user, so other API clients logged in as
    O(username) must log in again.
  - To recover when no password logs in, reset it on a node with C(emqx ctl admins passwd <username> <password>)
    run as the C(emqx) user, then run the task with that password among O(previous_passwords).
seealso:
  - module: iothub.emq.emq_api_keys
    description: Revoke API keys that were removed from the bootstrap file.
  - name: EMQX dashboard API
    description: The C(/login) and C(/users/{username}/change_pwd) endpoints.
    link: https://docs.emqx.com/en/emqx/latest/admin/api.html
"""

EXAMPLES = r"""
- name: Set the dashboard password of admin
  iothub.emq.emq_dashboard_password:
    api_url: "http://{{ ansible_facts['default_ipv4']['address'] }}:18083/api/v5"
    password: "{{ emq_node_dashboard_password }}"
    previous_passwords:
      - "{{ emq_node_dashboard_password_previous }}"
      - public
  run_once: true
  no_log: true

- name: Change the password of another dashboard user, from the controller
  iothub.emq.emq_dashboard_password:
    api_url: https://emqx1.example.com:18084/api/v5
    username: ops
    password: "{{ vault_emqx_ops_password }}"
    previous_passwords: ["{{ vault_emqx_ops_password_old }}"]
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
username:
  description: The dashboard user.
  returned: always
  type: str
  sample: admin
logged_in_with:
  description:
    - Which option held the password the user had when the module started, V(password) or
      V(previous_passwords[N]) (N counts from 0). Never the password itself.
    - Empty when no password logged in.
  returned: always
  type: str
  sample: previous_passwords[0]
requests:
  description: Every HTTP request the module sent, as method, path below O(api_url) and status.
  returned: always
  type: list
  elements: str
  sample:
    - POST /login 401
    - POST /login 200
    - POST /users/admin/change_pwd 204
    - POST /login 200
    - POST /logout 204
msg:
  description: What the module did or found, in one sentence; on failure, the reason and a hint.
  returned: always
  type: str
  sample: Changed the password of dashboard user admin.
url:
  description: The URL of the request that failed.
  returned: failure
  type: str
  sample: http://10.0.0.1:18083/api/v5/users/admin/change_pwd
status:
  description: The HTTP status of the request that failed, when an answer arrived.
  returned: failure
  type: int
  sample: 400
diff:
  description: Whether the password changed, in diff mode; never the password.
  returned: when diff mode is on
  type: dict
  contains:
    before:
      description: The password before the run.
      type: dict
      returned: when diff mode is on
      contains:
        password:
          description: V(<unchanged>) or V(<old>).
          type: str
          returned: when diff mode is on
    after:
      description: The password after the run (predicted in check mode).
      type: dict
      returned: when diff mode is on
      contains:
        password:
          description: V(<unchanged>) or V(<changed>).
          type: str
          returned: when diff mode is on
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.iothub.emq.plugins.module_utils.emqx_api import (
    ERROR_PWD_NOT_MATCH,
    USER_NOT_FOUND,
    EmqxApiJob,
    api_params_problem,
    describe,
    emqx_api_argument_spec,
    error_code,
    error_message,
    password_problem,
)


class DashboardPassword(EmqxApiJob):

    def __init__(self, module):
        super(DashboardPassword, self).__init__(module)
        self.password = module.params['password']
        self.logged_in_with = ''

    # -- results -----------------------------------------------------------------------

    def secrets(self):
        return [self.password] + list(self.params['previous_passwords'] or [])

    def fields(self):
        return dict(username=self.username, logged_in_with=self.logged_in_with)

    def diff(self):
        if self.changed:
            return dict(before=dict(password='<old>'), after=dict(password='<changed>'))
        return dict(before=dict(password='<unchanged>'), after=dict(password='<unchanged>'))

    # -- steps -------------------------------------------------------------------------

    def candidates(self):
        """(label, password) of the previous passwords worth trying, in order."""
        seen = set([self.password])
        for index, value in enumerate(self.params['previous_passwords'] or []):
            if not value or value in seen:
                continue
            seen.add(value)
            yield 'previous_passwords[{0}]'.format(index), value

    def find_current(self):
        """The previous password that logs in, or None; keeps its token."""
        for label, value in self.candidates():
            token = self.api.login(self.username, value)
            if token is not None:
                self.token = token
                self.logged_in_with = label
                return value
        return None

    def confirm_after_race(self, what):
        """After a refusal that says the password changed meanwhile: does the configured one log in now?"""
        token = self.api.login(self.username, self.password)
        if token is None:
            self.fail('{0}, and the configured password does not log in either: the password of dashboard user {1} '
                      'is changing elsewhere, run the task again when that is over.'.format(what, self.username))
        self.token = token
        self.exit('The password of dashboard user {0} was changed to the configured one meanwhile, by another '
                  'node or client.'.format(self.username))

    def run(self):
        token = self.api.login(self.username, self.password)
        if token is not None:
            self.token = token
            self.logged_in_with = 'password'
            self.exit('The password of dashboard user {0} is already the configured one.'.format(self.username))

        old = self.find_current()
        if old is None:
            tried = len(list(self.candidates()))
            if tried:
                what = ('Neither the configured password nor any of the {0} previous passwords logs in as dashboard '
                        'user {1} at {2}').format(tried, self.username, self.api.url('/login'))
            else:
                what = ('The configured password does not log in as dashboard user {0} at {1} and no previous '
                        'password is given').format(self.username, self.api.url('/login'))
            self.fail('{0}: set the role\'s emq_node_dashboard_password_previous to the current password, or reset it '
                      'on a node with "emqx ctl admins passwd {1} <password>" run as the emqx user.'
                      .format(what, self.username))

        if self.module.check_mode:
            self.changed = True
            problem = password_problem(self.password)
            if problem:
                self.module.warn('EMQX 5.8 will probably refuse the configured password: {0}.'.format(problem))
            self.exit('Would change the password of dashboard user {0} (it is {1} now).'
                      .format(self.username, self.logged_in_with))

        path = '/users/{0}/change_pwd'.format(self.api.quote(self.username))
        status, data = self.api.request('POST', path, token=self.token,
                                        body=dict(old_pwd=old, new_pwd=self.password))
        code = error_code(data)
        if status == 204 or (status == 200 and not code):
            self.token = None  # EMQX drops every token of the user when the password changes
            self.changed = True
            token = self.api.login(self.username, self.password)
            if token is None:
                self.fail('EMQX accepted the new password of dashboard user {0}, but it does not log in afterwards; '
                          'something else changed it meanwhile, run the task again.'.format(self.username))
            self.token = token
            self.exit('Changed the password of dashboard user {0}.'.format(self.username))
        if (status == 400 and code == ERROR_PWD_NOT_MATCH) or status == 401:
            self.token = None
            self.confirm_after_race('EMQX refused to change the password of dashboard user {0} with {1}'
                                    .format(self.username, describe(status, data)))
        if status == 404 or code == USER_NOT_FOUND:
            self.fail('EMQX has no dashboard user {0} any more ({1}); create it, or set username to an existing user.'
                      .format(self.username, describe(status, data)), url=self.api.url(path), status=status)
        if status == 400:
            reason = error_message(data) or code or 'no reason given'
            self.fail('EMQX refused the new password of dashboard user {0}: {1}.'
                      .format(self.username, reason.strip().rstrip('.')), url=self.api.url(path), status=status)
        self.fail('Cannot change the password of dashboard user {0}: POST {1} answered {2}.'
                  .format(self.username, self.api.url(path), describe(status, data)),
                  url=self.api.url(path), status=status)


def main():
    argument_spec = emqx_api_argument_spec()
    argument_spec.update(
        previous_passwords=dict(type='list', elements='str', default=[], no_log=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    problem = api_params_problem(module.params)
    if problem:
        module.fail_json(msg=problem)
    if not module.params['password']:
        module.fail_json(msg='password must not be empty.')
    DashboardPassword(module).execute()


if __name__ == '__main__':
    main()
