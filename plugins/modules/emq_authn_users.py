#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


DOCUMENTATION = r"""
module: emq_authn_users
short_description: Provision the users of EMQX 5's built-in database password authenticator through the REST API
version_added: 0.2.0
description:
  - Makes the users of EMQX's built-in database authenticator (O(authenticator)) hold the records of O(users),
    through the REST API of the dashboard listener, and deletes the users this collection provisioned before
    (O(previous)) that O(users) no longer lists.
  - Reads the users EMQX holds (C(GET /authentication/<id>/users), page by page). EMQX shows their user ids and
    superuser flags only, never their hashes.
  - Imports the records of O(users) with their hashes (C(POST /authentication/<id>/import_users?type=hash) with a
    JSON list). EMQX adds a user it lacks, leaves alone a user whose record (hash, salt and superuser flag) is
    identical, and overwrites the others, and answers how many of each it did; the module reports a change only
    when EMQX added or overwrote a user, so a second run reports no change.
  - Deletes (C(DELETE /authentication/<id>/users/<user id>)) the users of O(previous) that O(users) no longer lists,
    or with O(exclusive=true) every user that O(users) does not list.
  - Users created in the dashboard or through the API are left alone unless O(exclusive=true), or unless O(users)
    lists them (then their record is replaced by the one of O(users)).
  - Logs in as a dashboard user (O(username), O(password)).
author:
  - iothub.emq maintainers (@iothub)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - iothub.emq.emqx_api
attributes:
  check_mode:
    support: full
    details:
      - In check mode the module only reads the user list, and predicts; because EMQX never shows a hash, it
        compares the records of O(users) with those of O(previous), which this collection wrote last.
      - A user EMQX lacks would be added; a user EMQX holds with another superuser flag, or whose record in
        O(previous) differs from the one in O(users), would be updated; a user EMQX holds that O(previous) does
        not list cannot be compared, so it is reported in RV(maybe_updated) and does not make the task changed.
      - A user that O(previous) lists identically is predicted unchanged, even if someone changed its password in
        the dashboard since; the real run finds and reverts such a change.
  diff_mode:
    support: full
    details:
      - The diff lists the user ids EMQX holds, each with its superuser flag, before and after; never a hash or a
        salt, so a user whose hash alone changes looks the same on both sides (see RV(updated)).
  platform:
    support: full
    platforms: posix
options:
  users:
    description:
      - The users EMQX must hold, each with the hash and salt EMQX stores for its password under the authenticator's
        C(password_hash_algorithm).
      - Make the hash with the P(iothub.emq.emqx_password_hash#filter) filter, for example
        C("{{ 'the-password' | iothub.emq.emqx_password_hash('the-salt') }}") for sha256 with the salt after the password.
      - Each user_id may appear once.
    type: list
    elements: dict
    required: true
    suboptions:
      user_id:
        description:
          - The MQTT username (or client id, with an authenticator whose C(user_id_type) is C(clientid)).
        type: str
        required: true
      password_hash:
        description:
          - The hash EMQX stores, for example 64 lower-case hex digits for sha256.
          - Never appears in the module's results or messages.
        type: str
        required: true
      salt:
        description:
          - The salt the hash was made with; empty for none.
          - Never appears in the module's results or messages.
        type: str
        default: ""
      is_superuser:
        description:
          - Whether EMQX lets this user skip authorization.
        type: bool
        default: false
  previous:
    description:
      - The users this collection provisioned on its last run, in the shape of O(users); the role reads them from the
        bootstrap file it wrote then (P(iothub.emq.emqx_bootstrap_users#filter)).
      - A user listed here but not in O(users) is deleted from EMQX.
      - In check mode, the records here tell which users of O(users) would change.
    type: list
    elements: dict
    default: []
    suboptions:
      user_id:
        description: The user id.
        type: str
        required: true
      password_hash:
        description: The hash provisioned last.
        type: str
        required: true
      salt:
        description: The salt provisioned last.
        type: str
        default: ""
      is_superuser:
        description: The superuser flag provisioned last.
        type: bool
        default: false
  exclusive:
    description:
      - Whether to delete every user of the authenticator that O(users) does not list, also those created in the
        dashboard or through the API.
      - With V(false) only the users of O(previous) that O(users) no longer lists are deleted.
    type: bool
    default: false
  authenticator:
    description:
      - The id of the built-in database password authenticator, C(<mechanism>:<backend>).
    type: str
    default: password_based:built_in_database
notes:
  - The user database is shared by the whole cluster, so the task needs to run against one node only.
  - EMQX also loads users from the authenticator's C(bootstrap_file) when it starts, but only adds users it lacks;
    this module is what updates and deletes them.
  - The hash must be the one the authenticator's C(password_hash_algorithm) gives, or the user cannot log in; EMQX
    does not check it on import.
  - When EMQX's counts for one import request cannot tell which of its users changed (someone changed users in
    between), those users are listed in RV(maybe_updated) and the counts in RV(counts) stay exact.
seealso:
  - module: iothub.emq.emq_dashboard_password
    description: Set the dashboard password this module logs in with.
  - plugin: iothub.emq.emqx_password_hash
    plugin_type: filter
    description: Make the hash of a password.
  - plugin: iothub.emq.emqx_authn_user_problems
    plugin_type: filter
    description: Check a list of users before provisioning it.
  - name: EMQX password authentication with the built-in database
    description: The authenticator, its bootstrap file and the user import.
    link: https://docs.emqx.com/en/emqx/latest/access-control/authn/mnesia.html
"""

EXAMPLES = r"""
- name: Provision the device users
  iothub.emq.emq_authn_users:
    api_url: "http://{{ ansible_facts['default_ipv4']['address'] }}:18083/api/v5"
    password: "{{ emq_node_dashboard_password }}"
    users:
      - user_id: sensor-0001
        password_hash: "{{ vault_sensor_0001_password | iothub.emq.emqx_password_hash('f3a9c2d1') }}"
        salt: f3a9c2d1
      - user_id: backend
        password_hash: "{{ vault_backend_password | iothub.emq.emqx_password_hash('0b7e44aa') }}"
        salt: 0b7e44aa
        is_superuser: true
    previous: "{{ lookup('ansible.builtin.file', 'last_users.json') | iothub.emq.emqx_bootstrap_users }}"
  run_once: true

- name: Make the built-in database hold exactly these users
  iothub.emq.emq_authn_users:
    api_url: https://emqx1.example.com:18084/api/v5
    password: "{{ vault_emqx_admin_password }}"
    users: "{{ device_users }}"
    exclusive: true
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
added:
  description: The user ids EMQX did not hold and the module added (in check mode, would add), sorted.
  returned: always
  type: list
  elements: str
  sample: [sensor-0002]
updated:
  description:
    - The user ids whose record EMQX replaced (in check mode, would replace), sorted.
  returned: always
  type: list
  elements: str
  sample: [sensor-0001]
removed:
  description: The user ids the module deleted (in check mode, would delete), sorted.
  returned: always
  type: list
  elements: str
  sample: [sensor-0099]
maybe_updated:
  description:
    - In check mode, the users of O(users) that EMQX holds with the same superuser flag but O(previous) does not list,
      whose hash the module cannot compare; the real run updates those whose record differs.
    - After a real run, the users of an import request whose counts from EMQX do not tell which of them changed;
      usually empty.
  returned: always
  type: list
  elements: str
  sample: []
counts:
  description:
    - How many users were added, updated, left unchanged and removed; after a real run the first three are EMQX's own
      counts of the import.
  returned: always
  type: dict
  contains:
    added:
      description: Users added (would be added).
      type: int
      returned: always
    updated:
      description: Users whose record was replaced (would be replaced).
      type: int
      returned: always
    unchanged:
      description: Users of O(users) whose record EMQX already held (predicted so).
      type: int
      returned: always
    removed:
      description: Users deleted (would be deleted).
      type: int
      returned: always
    maybe_updated:
      description: The length of RV(maybe_updated).
      type: int
      returned: always
  sample: {added: 1, updated: 1, unchanged: 40, removed: 1, maybe_updated: 0}
requests:
  description: Every HTTP request the module sent, as method, path below O(api_url) and status.
  returned: always
  type: list
  elements: str
  sample:
    - POST /login 200
    - GET /authentication/password_based%3Abuilt_in_database/users?page=1&limit=1000 200
    - POST /authentication/password_based%3Abuilt_in_database/import_users?type=hash 200
    - DELETE /authentication/password_based%3Abuilt_in_database/users/sensor-0099 204
    - POST /logout 204
msg:
  description: What the module did or found, in one sentence; on failure, the reason and a hint.
  returned: always
  type: str
  sample: Added 1 user (sensor-0002), updated 1 (sensor-0001) and removed 1 (sensor-0099); 40 unchanged.
url:
  description: The URL of the request that failed.
  returned: failure
  type: str
  sample: http://10.0.0.1:18083/api/v5/authentication/password_based%3Abuilt_in_database/users?page=1&limit=1000
status:
  description: The HTTP status of the request that failed, when an answer arrived.
  returned: failure
  type: int
  sample: 404
diff:
  description: The users EMQX holds before and after, in diff mode; user ids and superuser flags only.
  returned: when diff mode is on
  type: dict
  contains:
    before:
      description: The users before the run.
      type: dict
      returned: when diff mode is on
      contains:
        users:
          description: One C({user_id, is_superuser}) per user, sorted by user id.
          type: list
          elements: dict
          returned: when diff mode is on
    after:
      description: The users after the run (predicted in check mode).
      type: dict
      returned: when diff mode is on
      contains:
        users:
          description: One C({user_id, is_superuser}) per user, sorted by user id.
          type: list
          elements: dict
          returned: when diff mode is on
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.iothub.emq.plugins.module_utils.emqx_api import (
    EmqxApiJob,
    api_params_problem,
    describe,
    emqx_api_argument_spec,
    error_code,
    error_message,
    redact,
)

DEFAULT_AUTHENTICATOR = 'password_based:built_in_database'
# Users per page of GET .../users (EMQX allows 1 to 10000) and per import request.
PAGE_LIMIT = 1000
IMPORT_CHUNK = 1000
# A listing longer than this many pages is taken as a server that ignores the page parameter.
MAX_PAGES = 10000
# How many user ids a message names before it says "and N more".
SHOWN_IDS = 10


def _plural(count, one, many):
    return '{0} {1}'.format(count, one if count == 1 else many)


def _ids(user_ids):
    user_ids = sorted(user_ids)
    shown = ', '.join(user_ids[:SHOWN_IDS])
    if len(user_ids) > SHOWN_IDS:
        shown += ' and {0} more'.format(len(user_ids) - SHOWN_IDS)
    return shown


def _record(entry):
    """A user as EMQX stores it: (password_hash, salt, is_superuser)."""
    return (entry.get('password_hash') or '', entry.get('salt') or '', bool(entry.get('is_superuser')))


class AuthnUsers(EmqxApiJob):

    def __init__(self, module):
        super(AuthnUsers, self).__init__(module)
        self.wanted = {}
        self.order = []
        for entry in module.params['users']:
            self.wanted[entry['user_id']] = entry
            self.order.append(entry['user_id'])
        self.previous = {}
        for entry in module.params['previous'] or []:
            if entry.get('user_id'):
                self.previous[entry['user_id']] = entry
        self.authenticator = module.params['authenticator']
        self.base = '/authentication/{0}'.format(self.api.quote(self.authenticator))
        self.before = None
        self.after = None
        self.added = []
        self.updated = []
        self.removed = []
        self.maybe_updated = []
        self.counts = dict(added=0, updated=0, unchanged=0, removed=0)

    # -- what never leaves the module ----------------------------------------------------

    def secrets(self):
        hashes = [e.get('password_hash') for e in list(self.wanted.values()) + list(self.previous.values())]
        return [self.params['password']] + [h for h in hashes if h]

    def _salts(self):
        salts = [e.get('salt') for e in list(self.wanted.values()) + list(self.previous.values())]
        return [s for s in salts if s]

    def emqx_says(self, status, data):
        """describe() of an answer, with any hash or salt EMQX's message might quote masked."""
        message = redact(error_message(data), self.secrets() + self._salts())
        return describe(status, dict(code=error_code(data) or None, message=message or None))

    # -- results -------------------------------------------------------------------------

    def fields(self):
        counts = dict(self.counts)
        counts['maybe_updated'] = len(self.maybe_updated)
        return dict(added=sorted(self.added), updated=sorted(self.updated), removed=sorted(self.removed),
                    maybe_updated=sorted(self.maybe_updated), counts=counts)

    @staticmethod
    def _listing(users):
        return [dict(user_id=user_id, is_superuser=users[user_id]) for user_id in sorted(users)]

    def diff(self):
        if self.before is None:
            return None
        after = self.after if self.after is not None else self.before
        return dict(before=dict(users=self._listing(self.before)), after=dict(users=self._listing(after)))

    # -- requests ------------------------------------------------------------------------

    def log_in(self):
        token = self.api.login(self.username, self.params['password'])
        if token is None:
            self.fail('Cannot log in as dashboard user {0} at {1}: EMQX says the user name or the password is wrong '
                      '(401); set the password the dashboard user has now, for example with '
                      'iothub.emq.emq_dashboard_password first.'.format(self.username, self.api.url('/login')),
                      url=self.api.url('/login'), status=401)
        self.token = token

    def check_authenticator(self, method, path, status, data):
        """Fail with a clear message when EMQX says the authenticator does not exist or keeps no users."""
        message = error_message(data)
        missing = status == 404 or (status == 400 and 'not_found' in message and 'authenticator' in message)
        if missing:
            self.fail('No built-in-database authenticator {0} is configured in EMQX: {1} {2} answered {3}. Configure '
                      'password authentication with the built_in_database backend (the iothub.emq.emq_node role '
                      'configures it with emq_node_authentication: password), or set authenticator to its id.'
                      .format(self.authenticator, method, self.api.url(path), self.emqx_says(status, data)),
                      url=self.api.url(path), status=status)
        if status == 400 and 'unsupported_operation' in message:
            self.fail('The authenticator {0} keeps no users of its own (EMQX answered {1} to {2} {3}); set '
                      'authenticator to the id of the built-in database one, such as {4}.'
                      .format(self.authenticator, self.emqx_says(status, data), method, self.api.url(path),
                              DEFAULT_AUTHENTICATOR),
                      url=self.api.url(path), status=status)

    def read_users(self):
        """{user_id: is_superuser} of every user of the authenticator, read page by page."""
        users = {}
        page = 1
        while True:
            path = '{0}/users?page={1}&limit={2}'.format(self.base, page, PAGE_LIMIT)
            status, data = self.api.request('GET', path, token=self.token)
            if status != 200:
                self.check_authenticator('GET', path, status, data)
                self.fail('Cannot list the users of the authenticator {0}: GET {1} answered {2}.'
                          .format(self.authenticator, self.api.url(path), self.emqx_says(status, data)),
                          url=self.api.url(path), status=status)
            rows = data.get('data') if isinstance(data, dict) else None
            if not isinstance(rows, list) or not all(isinstance(r, dict) and r.get('user_id') for r in rows):
                self.fail('GET {0} answered 200 but not with a page of users ({{data: [...], meta: {{...}}}}); is '
                          'api_url the EMQX 5 dashboard API?'.format(self.api.url(path)),
                          url=self.api.url(path), status=status)
            for row in rows:
                users[row['user_id']] = row.get('is_superuser') is True
            meta = data.get('meta') if isinstance(data.get('meta'), dict) else {}
            more = meta.get('hasnext')
            if not isinstance(more, bool):
                more = len(rows) >= PAGE_LIMIT
            if not rows or not more:
                return users
            page += 1
            if page > MAX_PAGES:
                self.fail('GET {0} still says there are more users after {1} pages; giving up.'
                          .format(self.api.url(path), MAX_PAGES), url=self.api.url(path), status=status)

    def import_users(self, user_ids):
        """POST one import request; returns EMQX's counts {success, override, skipped, failed}."""
        path = '{0}/import_users?type=hash'.format(self.base)
        body = [dict(user_id=u, password_hash=self.wanted[u]['password_hash'], salt=self.wanted[u]['salt'] or '',
                     is_superuser=bool(self.wanted[u]['is_superuser'])) for u in user_ids]
        status, data = self.api.request('POST', path, token=self.token, body=body)
        if status != 200:
            self.check_authenticator('POST', path, status, data)
            self.fail('Cannot import {0} ({1}): POST {2} answered {3}.'
                      .format(_plural(len(user_ids), 'user', 'users'), _ids(user_ids), self.api.url(path),
                              self.emqx_says(status, data)),
                      url=self.api.url(path), status=status)
        keys = ('success', 'override', 'skipped', 'failed')
        if not isinstance(data, dict) or not all(isinstance(data.get(k, 0), int) and not isinstance(data.get(k, 0), bool)
                                                 for k in keys) or not any(k in data for k in keys):
            self.fail('POST {0} answered 200 but not with the counts of an import (success, override, skipped, failed); '
                      'is api_url the EMQX 5 dashboard API?'.format(self.api.url(path)),
                      url=self.api.url(path), status=status)
        return dict((k, data.get(k, 0)) for k in keys)

    def delete(self, user_id):
        """DELETE one user; True when this run deleted it, False when it was gone already."""
        path = '{0}/users/{1}'.format(self.base, self.api.quote(user_id))
        status, data = self.api.request('DELETE', path, token=self.token)
        if status in (200, 204):
            return True
        if status == 404 and 'user' in error_message(data).lower():
            return False
        self.check_authenticator('DELETE', path, status, data)
        self.fail('Cannot delete the user {0}: DELETE {1} answered {2}.'
                  .format(user_id, self.api.url(path), self.emqx_says(status, data)),
                  url=self.api.url(path), status=status)
        return False

    # -- the plan --------------------------------------------------------------------------

    def classify(self, emqx):
        """The users of O(users) as (to add, to update, unchanged, cannot tell), each in the order of users."""
        add, update, same, unknown = [], [], [], []
        for user_id in self.order:
            entry = self.wanted[user_id]
            if user_id not in emqx:
                add.append(user_id)
            elif emqx[user_id] != bool(entry['is_superuser']):
                update.append(user_id)
            elif user_id in self.previous:
                (same if _record(self.previous[user_id]) == _record(entry) else update).append(user_id)
            else:
                unknown.append(user_id)
        return add, update, same, unknown

    def to_remove(self, emqx):
        if self.params['exclusive']:
            return sorted(u for u in emqx if u not in self.wanted)
        return sorted(u for u in self.previous if u in emqx and u not in self.wanted)

    def predict_after(self, emqx, removed):
        after = dict((u, flag) for u, flag in emqx.items() if u not in removed)
        for user_id in self.order:
            after[user_id] = bool(self.wanted[user_id]['is_superuser'])
        return after

    def apply(self, user_ids):
        """Import user_ids in chunks and sort them by what EMQX says it did."""
        for start in range(0, len(user_ids), IMPORT_CHUNK):
            chunk = user_ids[start:start + IMPORT_CHUNK]
            counts = self.import_users(chunk)
            self.counts['added'] += counts['success']
            self.counts['updated'] += counts['override']
            self.counts['unchanged'] += counts['skipped']
            if counts['success'] or counts['override']:
                self.changed = True
            if counts['failed']:
                self.fail('EMQX refused {0} of the {1} imported in one request ({2}); see its log for '
                          'import_an_exists_userid_into_authentication_database_failed.'
                          .format(counts['failed'], _plural(len(chunk), 'user', 'users'), _ids(chunk)))
            if counts['success'] == len(chunk):
                self.added.extend(chunk)
            elif counts['override'] == len(chunk):
                self.updated.extend(chunk)
            elif counts['skipped'] != len(chunk):
                self.maybe_updated.extend(chunk)

    # -- messages ---------------------------------------------------------------------------

    def summary(self, verbs):
        """'Added 2 users (a, b), updated 1 (c) and removed 1 (d)' for the verbs of added, updated, removed; or ''."""
        parts = []
        for verb, user_ids in zip(verbs, (self.added, self.updated, self.removed)):
            if user_ids:
                noun = '' if parts else (' user' if len(user_ids) == 1 else ' users')
                parts.append('{0} {1}{2} ({3})'.format(verb, len(user_ids), noun, _ids(user_ids)))
        if not parts:
            return ''
        text = parts[0] if len(parts) == 1 else ', '.join(parts[:-1]) + ' and ' + parts[-1]
        return text[0].upper() + text[1:]

    def run(self):
        self.log_in()
        emqx = self.read_users()
        self.before = dict(emqx)
        add, update, same, unknown = self.classify(emqx)
        removals = self.to_remove(emqx)
        where = 'the built-in database of {0}'.format(self.authenticator)

        if self.module.check_mode:
            self.added, self.updated, self.removed, self.maybe_updated = add, update, removals, unknown
            self.counts.update(added=len(add), updated=len(update), unchanged=len(same), removed=len(removals))
            self.after = self.predict_after(emqx, set(removals))
            self.changed = bool(add or update or removals)
            text = self.summary(('would add', 'update', 'remove'))
            if unknown:
                maybe = ('{0} that EMQX holds but previous does not list may be updated (EMQX shows no hashes to '
                         'compare): {1}'.format(_plural(len(unknown), 'user', 'users'), _ids(unknown)))
                text = (text + '; ' + maybe) if text else maybe[0].upper() + maybe[1:]
            if not text:
                text = 'Nothing to change in {0}: its {1} as provisioned'.format(
                    where, _plural(len(same), 'user is', 'users are'))
            self.exit(text + '.')

        batches = [add, update, same, unknown]
        for batch in batches:
            if batch:
                self.apply(batch)
        gone = []
        for user_id in removals:
            if self.delete(user_id):
                self.removed.append(user_id)
                self.counts['removed'] += 1
                self.changed = True
            else:
                gone.append(user_id)
        self.after = self.predict_after(emqx, set(removals))

        text = self.summary(('added', 'updated', 'removed'))
        if self.maybe_updated:
            did = [words for words in (
                'added {0}'.format(self.counts['added'] - len(self.added)) if self.counts['added'] > len(self.added) else '',
                'updated {0}'.format(self.counts['updated'] - len(self.updated))
                if self.counts['updated'] > len(self.updated) else '') if words]
            maybe = ('EMQX {0} of {1} without saying which ({2})'
                     .format(' and '.join(did) or 'changed none', _plural(len(self.maybe_updated), 'user', 'users'),
                             _ids(self.maybe_updated)))
            text = (text + '; ' + maybe) if text else maybe
        if text:
            text += '; {0} unchanged'.format(self.counts['unchanged'])
        else:
            text = '{0} holds the {1} as listed; nothing changed'.format(
                where[0].upper() + where[1:], _plural(len(self.order), 'user', 'users'))
        if gone:
            text += '; {0} deleted meanwhile: {1}'.format(
                _plural(len(gone), 'user was', 'users were'), _ids(gone))
        self.exit(text + '.')


def _user_spec():
    return dict(
        user_id=dict(type='str', required=True),
        password_hash=dict(type='str', required=True, no_log=True),
        salt=dict(type='str', default='', no_log=False),
        is_superuser=dict(type='bool', default=False),
    )


def users_problem(users):
    """A sentence saying what is wrong with the option users, or None; never shows a hash."""
    seen = {}
    for index, entry in enumerate(users):
        user_id = entry.get('user_id')
        if not user_id:
            return 'users[{0}] has an empty user_id; give each user the MQTT username it logs in with.'.format(index)
        if user_id in seen:
            return ('users lists the user_id {0} twice (users[{1}] and users[{2}]); EMQX keeps one record per user, '
                    'so list each user once.'.format(user_id, seen[user_id], index))
        seen[user_id] = index
        if not entry.get('password_hash'):
            return ('users[{0}] (user {1}) has an empty password_hash; make it with the iothub.emq.emqx_password_hash '
                    'filter.'.format(index, user_id))
    return None


def main():
    argument_spec = emqx_api_argument_spec()
    argument_spec.update(
        users=dict(type='list', elements='dict', required=True, options=_user_spec()),
        previous=dict(type='list', elements='dict', default=[], options=_user_spec()),
        exclusive=dict(type='bool', default=False),
        authenticator=dict(type='str', default=DEFAULT_AUTHENTICATOR),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    problem = api_params_problem(module.params)
    if problem:
        module.fail_json(msg=problem)
    if not module.params['authenticator']:
        module.fail_json(msg='authenticator must not be empty; the built-in database one is {0}.'.format(DEFAULT_AUTHENTICATOR))
    for entry in module.params['users'] + (module.params['previous'] or []):
        if entry.get('salt') is None:
            entry['salt'] = ''
        entry['is_superuser'] = bool(entry.get('is_superuser'))
    problem = users_problem(module.params['users'])
    if problem:
        module.fail_json(msg=problem)
    AuthnUsers(module).execute()


if __name__ == '__main__':
    main()
