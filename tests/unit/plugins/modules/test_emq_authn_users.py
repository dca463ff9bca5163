# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""emq_authn_users against canned answers of EMQX 5.8.9's dashboard API (open_url is mocked).

The answers follow the 5.8.9 source: GET /authentication/:id/users answers {data: [{user_id, is_superuser}],
meta: {page, limit, hasnext, count}} (emqx_authn_api.erl, emqx_mgmt_api:node_query/6); POST
/authentication/:id/import_users?type=hash with a JSON list answers {total, success, override, skipped, failed}
(emqx_authn_user_import_api.erl, emqx_authn_mnesia:do_import_users/2); DELETE /authentication/:id/users/:user_id
answers 204, or 404 "User not found"; an unknown authenticator gives 404 when no authenticator exists at all and
400 "User error: {not_found,{authenticator,...}}" when others do.
"""

from __future__ import annotations

import hashlib
import urllib.parse

import pytest

from ansible_collections.iothub.emq.plugins.modules import emq_authn_users
from ansible_collections.iothub.emq.tests.unit.plugins.modules.emqx_api_fake import (
    API,
    assert_no_secret,
    login,
    logout,
    play,
)


PASSWORD = 'Adm1n$`"\'pw'
TOKEN = 'tok-authn-users'
LOGIN = login(PASSWORD, TOKEN)
LOGOUT = logout(TOKEN)
BASE = '/authentication/password_based%3Abuilt_in_database'


def sha256(password, salt):
    return hashlib.sha256((password + salt).encode()).hexdigest()


def user(user_id, password='pw-' , salt=None, is_superuser=False):
    """A user as the options users and previous take it, with a distinctive salt and its sha256 hash."""
    salt = 'NaCl-{0}-9f8e7d'.format(user_id) if salt is None else salt
    return dict(user_id=user_id, password_hash=sha256(password + user_id, salt), salt=salt, is_superuser=is_superuser)


A, B, C = user('sensor-a'), user('sensor-b'), user('backend', is_superuser=True)
A2 = user('sensor-a', password='new-')  # sensor-a with another password
SECRETS = [PASSWORD] + [u[k] for u in (A, B, C, A2) for k in ('password_hash', 'salt')]


def listing(*rows, page=1, hasnext=False, limit=1000, count=None):
    """One page of GET .../users; rows are user ids, or (user_id, is_superuser)."""
    data = []
    for row in rows:
        user_id, flag = row if isinstance(row, tuple) else (row, False)
        data.append({'user_id': user_id, 'is_superuser': flag})
    meta = {'page': page, 'limit': limit, 'hasnext': hasnext}
    if count is not None:
        meta['count'] = count
    return ('GET', '{0}/users?page={1}&limit={2}'.format(BASE, page, limit), None, TOKEN, 200,
            {'data': data, 'meta': meta})


def importing(users, success=0, override=0, skipped=0, failed=0, status=200, answer=None):
    body = [dict(user_id=u['user_id'], password_hash=u['password_hash'], salt=u['salt'], is_superuser=u['is_superuser'])
            for u in users]
    if answer is None:
        answer = {'total': len(users), 'success': success, 'override': override, 'skipped': skipped, 'failed': failed}
    return ('POST', BASE + '/import_users?type=hash', body, TOKEN, status, answer)


def delete(user_id, status=204, answer=None):
    return ('DELETE', '{0}/users/{1}'.format(BASE, urllib.parse.quote(user_id, safe='')), None, TOKEN, status, answer)


@pytest.fixture
def emqx(run_module):
    """emqx(script, users, check_mode=False, diff=False, **args) -> (result, fake)."""

    def run(script, users, check_mode=False, diff=False, **args):
        params = dict(api_url=API, password=PASSWORD, users=[dict(u) for u in users])
        params.update(args)
        result, fake = play(run_module, emq_authn_users.main, params, script, check_mode=check_mode, diff=diff)
        assert_no_secret(result, SECRETS, [TOKEN])
        return result, fake

    return run


# -- real runs ---------------------------------------------------------------------------------


def test_first_run_adds_every_user(emqx):
    result, fake = emqx([LOGIN, listing(), importing([A, B, C], success=3), LOGOUT], [A, B, C], diff=True)
    assert not result['failed']
    assert result['changed'] is True
    assert result['added'] == ['backend', 'sensor-a', 'sensor-b']
    assert result['updated'] == result['removed'] == result['maybe_updated'] == []
    assert result['counts'] == dict(added=3, updated=0, unchanged=0, removed=0, maybe_updated=0)
    assert result['requests'] == [
        'POST /login 200',
        'GET {0}/users?page=1&limit=1000 200'.format(BASE),
        'POST {0}/import_users?type=hash 200'.format(BASE),
        'POST /logout 204',
    ]
    assert result['msg'] == 'Added 3 users (backend, sensor-a, sensor-b); 0 unchanged.'
    assert result['diff'] == dict(
        before=dict(users=[]),
        after=dict(users=[dict(user_id='backend', is_superuser=True), dict(user_id='sensor-a', is_superuser=False),
                          dict(user_id='sensor-b', is_superuser=False)]))


def test_the_import_request_carries_hash_salt_and_flag(emqx):
    result, fake = emqx([LOGIN, listing(), importing([C], success=1), LOGOUT], [C])
    method, url, body, auth = fake.calls[2]
    assert (method, url) == ('POST', API + BASE + '/import_users?type=hash')
    assert body == [{'user_id': 'backend', 'password_hash': C['password_hash'], 'salt': C['salt'], 'is_superuser': True}]
    assert auth == 'Bearer ' + TOKEN


def test_second_run_is_no_change(emqx):
    result, fake = emqx([LOGIN, listing('sensor-a', 'sensor-b'), importing([A, B], skipped=2), LOGOUT], [A, B],
                        previous=[A, B], diff=True)
    assert not result['failed']
    assert result['changed'] is False
    assert result['added'] == result['updated'] == result['removed'] == []
    assert result['counts'] == dict(added=0, updated=0, unchanged=2, removed=0, maybe_updated=0)
    assert 'nothing changed' in result['msg']
    assert result['diff']['before'] == result['diff']['after']


def test_changed_hash_is_an_override(emqx):
    result, fake = emqx([
        LOGIN,
        listing('sensor-a', 'sensor-b'),
        importing([A2], override=1),
        importing([B], skipped=1),
        LOGOUT,
    ], [A2, B], previous=[A, B])
    assert result['changed'] is True
    assert result['updated'] == ['sensor-a']
    assert result['added'] == []
    assert result['counts'] == dict(added=0, updated=1, unchanged=1, removed=0, maybe_updated=0)
    assert result['msg'].startswith('Updated 1 user (sensor-a)')
    assert result['msg'].endswith('; 1 unchanged.')


def test_a_password_changed_in_the_dashboard_is_reverted(emqx):
    # previous says sensor-a is as wanted, but someone changed it: EMQX overrides it and says so.
    result, fake = emqx([LOGIN, listing('sensor-a'), importing([A], override=1), LOGOUT], [A], previous=[A])
    assert result['changed'] is True
    assert result['updated'] == ['sensor-a']


def test_superuser_flag_change_is_an_update(emqx):
    flagged = dict(A, is_superuser=True)
    result, fake = emqx([LOGIN, listing('sensor-a'), importing([flagged], override=1), LOGOUT], [flagged], diff=True)
    assert result['updated'] == ['sensor-a']
    assert result['diff']['after'] == dict(users=[dict(user_id='sensor-a', is_superuser=True)])


def test_users_not_provisioned_before_are_imported_and_skipped_when_identical(emqx):
    # First run after the bootstrap file loaded the users at start: previous is empty, EMQX holds them already.
    result, fake = emqx([LOGIN, listing('sensor-a', 'sensor-b'), importing([A, B], skipped=2), LOGOUT], [A, B])
    assert result['changed'] is False
    assert result['maybe_updated'] == []
    assert result['counts']['unchanged'] == 2


def test_removes_users_that_left_the_list_and_leaves_others(emqx):
    result, fake = emqx([
        LOGIN,
        listing('sensor-a', 'sensor-b', 'backend', 'made-in-dashboard'),
        importing([A], skipped=1),
        delete('backend'),
        delete('sensor-b'),
        LOGOUT,
    ], [A], previous=[A, B, C, user('long-gone')], diff=True)
    assert result['changed'] is True
    assert result['removed'] == ['backend', 'sensor-b']
    assert result['counts']['removed'] == 2
    assert all('made-in-dashboard' not in r and 'long-gone' not in r for r in result['requests'])
    assert result['diff']['after'] == dict(users=[dict(user_id='made-in-dashboard', is_superuser=False),
                                                  dict(user_id='sensor-a', is_superuser=False)])
    assert result['msg'].startswith('Removed 2 users (backend, sensor-b)')


def test_exclusive_removes_every_unlisted_user(emqx):
    result, fake = emqx([
        LOGIN,
        listing('sensor-a', 'made-in-dashboard', 'odd/id %+'),
        importing([A], skipped=1),
        delete('made-in-dashboard'),
        delete('odd/id %+'),
        LOGOUT,
    ], [A], exclusive=True)
    assert result['removed'] == ['made-in-dashboard', 'odd/id %+']
    assert 'DELETE {0}/users/odd%2Fid%20%25%2B 204'.format(BASE) in result['requests']


def test_empty_list_with_previous_removes_them_and_imports_nothing(emqx):
    result, fake = emqx([LOGIN, listing('sensor-a'), delete('sensor-a'), LOGOUT], [], previous=[A])
    assert result['changed'] is True
    assert result['removed'] == ['sensor-a']
    assert all('import_users' not in r for r in result['requests'])


def test_user_deleted_meanwhile_is_no_change(emqx):
    result, fake = emqx([
        LOGIN,
        listing('sensor-a', 'sensor-b'),
        importing([A], skipped=1),
        delete('sensor-b', 404, {'code': 'NOT_FOUND', 'message': 'User not found'}),
        LOGOUT,
    ], [A], previous=[A, B])
    assert not result['failed']
    assert result['changed'] is False
    assert result['removed'] == []
    assert 'deleted meanwhile: sensor-b' in result['msg']


def test_partial_counts_leave_users_in_maybe_updated(emqx):
    # Neither listed before nor told apart by EMQX's counts: the counts stay exact, the ids go to maybe_updated.
    result, fake = emqx([LOGIN, listing('sensor-a', 'sensor-b'), importing([A, B], override=1, skipped=1), LOGOUT],
                        [A, B])
    assert result['changed'] is True
    assert result['updated'] == []
    assert result['maybe_updated'] == ['sensor-a', 'sensor-b']
    assert result['counts'] == dict(added=0, updated=1, unchanged=1, removed=0, maybe_updated=2)
    assert result['msg'] == 'EMQX updated 1 of 2 users without saying which (sensor-a, sensor-b); 1 unchanged.'


def test_imports_are_sent_in_chunks(emqx, monkeypatch):
    monkeypatch.setattr(emq_authn_users, 'IMPORT_CHUNK', 2)
    result, fake = emqx([LOGIN, listing(), importing([A, B], success=2), importing([C], success=1), LOGOUT], [A, B, C])
    assert result['added'] == ['backend', 'sensor-a', 'sensor-b']
    assert result['counts']['added'] == 3


def test_pagination_reads_every_page(emqx, monkeypatch):
    monkeypatch.setattr(emq_authn_users, 'PAGE_LIMIT', 2)
    result, fake = emqx([
        LOGIN,
        listing('sensor-a', 'x1', page=1, hasnext=True, limit=2, count=5),
        listing('x2', 'x3', page=2, hasnext=True, limit=2, count=5),
        listing('x4', page=3, hasnext=False, limit=2, count=5),
        importing([A], skipped=1),
        delete('x1'), delete('x2'), delete('x3'), delete('x4'),
        LOGOUT,
    ], [A], exclusive=True)
    assert result['removed'] == ['x1', 'x2', 'x3', 'x4']


def test_pagination_without_hasnext_stops_at_a_short_page(emqx, monkeypatch):
    monkeypatch.setattr(emq_authn_users, 'PAGE_LIMIT', 2)
    page1 = listing('sensor-a', 'x1', page=1, limit=2)
    page2 = listing(page=2, limit=2)
    for step in (page1, page2):
        del step[5]['meta']['hasnext']
    result, fake = emqx([LOGIN, page1, page2, importing([A], skipped=1), LOGOUT], [A])
    assert result['changed'] is False
    assert len([r for r in result['requests'] if r.startswith('GET')]) == 2


# -- check mode -----------------------------------------------------------------------------------


def test_check_mode_predicts_from_previous(emqx):
    d_flagged = user('sensor-d', is_superuser=True)
    result, fake = emqx([
        LOGIN,
        listing('sensor-a', 'sensor-b', ('backend', True), 'sensor-d', 'gone-next'),
        LOGOUT,
    ], [A2, B, dict(C), d_flagged, user('sensor-new')],
        previous=[A, B, user('gone-next')], check_mode=True, diff=True)
    assert not result['failed']
    assert result['changed'] is True
    assert result['added'] == ['sensor-new']
    # sensor-a: previous differs; sensor-d: EMQX shows another superuser flag.
    assert result['updated'] == ['sensor-a', 'sensor-d']
    # backend: EMQX holds it with the same flag, previous does not list it: cannot tell.
    assert result['maybe_updated'] == ['backend']
    assert result['removed'] == ['gone-next']
    assert result['counts'] == dict(added=1, updated=2, unchanged=1, removed=1, maybe_updated=1)
    assert all(not r.startswith(('POST /auth', 'DELETE')) for r in result['requests'])
    assert 'may be updated' in result['msg'] and result['msg'].startswith('Would add 1 user (sensor-new)')
    assert result['diff']['after'] == dict(users=[
        dict(user_id='backend', is_superuser=True), dict(user_id='sensor-a', is_superuser=False),
        dict(user_id='sensor-b', is_superuser=False), dict(user_id='sensor-d', is_superuser=True),
        dict(user_id='sensor-new', is_superuser=False)])


def test_check_mode_maybe_updated_alone_is_not_a_change(emqx):
    result, fake = emqx([LOGIN, listing('sensor-a', 'sensor-b'), LOGOUT], [A, B], check_mode=True)
    assert result['changed'] is False
    assert result['maybe_updated'] == ['sensor-a', 'sensor-b']
    assert result['msg'].startswith('2 users that EMQX holds but previous does not list may be updated')


def test_check_mode_nothing_to_do(emqx):
    result, fake = emqx([LOGIN, listing('sensor-a', 'sensor-b'), LOGOUT], [A, B], previous=[A, B], check_mode=True)
    assert result['changed'] is False
    assert result['counts'] == dict(added=0, updated=0, unchanged=2, removed=0, maybe_updated=0)
    assert result['msg'].startswith('Nothing to change')


def test_check_mode_exclusive(emqx):
    result, fake = emqx([LOGIN, listing('sensor-a', 'made-in-dashboard'), LOGOUT], [A], previous=[A],
                        exclusive=True, check_mode=True)
    assert result['changed'] is True
    assert result['removed'] == ['made-in-dashboard']


# -- secrets --------------------------------------------------------------------------------------


def test_diff_and_results_never_show_a_hash_or_salt(emqx):
    result, fake = emqx([
        LOGIN, listing('sensor-a', 'backend'), importing([B], success=1), importing([A2], override=1), LOGOUT,
    ], [A2, B], previous=[A], diff=True)
    for side in ('before', 'after'):
        for entry in result['diff'][side]['users']:
            assert set(entry) == {'user_id', 'is_superuser'}
    # assert_no_secret (in the fixture) checked every hash and salt is absent from the whole result.


def test_emqx_error_quoting_a_hash_is_masked(emqx):
    answer = {'code': 'BAD_REQUEST', 'message': 'bad record {{{0}, {1}}}'.format(A['password_hash'], A['salt'])}
    result, fake = emqx([LOGIN, listing(), importing([A], status=400, answer=answer), LOGOUT], [A])
    assert result['failed']
    assert result['status'] == 400
    assert 'Cannot import 1 user (sensor-a)' in result['msg'] and '400 BAD_REQUEST' in result['msg']


# -- failures --------------------------------------------------------------------------------------


@pytest.mark.parametrize('status, answer', [
    (404, {'code': 'NOT_FOUND', 'message': "Authenticator not found in the 'global' scope"}),
    (400, {'code': 'BAD_REQUEST', 'message': 'User error: {not_found,{authenticator,<<"password_based:built_in_database">>}}'}),
])
def test_missing_authenticator(emqx, status, answer):
    result, fake = emqx([
        LOGIN,
        ('GET', BASE + '/users?page=1&limit=1000', None, TOKEN, status, answer),
        LOGOUT,
    ], [A])
    assert result['failed']
    assert result['status'] == status
    assert 'No built-in-database authenticator password_based:built_in_database is configured' in result['msg']
    assert result['changed'] is False


def test_authenticator_that_keeps_no_users(emqx):
    base = '/authentication/password_based%3Ahttp'
    result, fake = emqx([
        LOGIN,
        ('GET', base + '/users?page=1&limit=1000', None, TOKEN, 400,
         {'code': 'BAD_REQUEST', 'message': 'User error: unsupported_operation'}),
        LOGOUT,
    ], [A], authenticator='password_based:http')
    assert result['failed']
    assert 'keeps no users' in result['msg']


def test_authenticator_vanishing_before_the_import(emqx):
    answer = {'code': 'NOT_FOUND', 'message': "Authenticator 'password_based:built_in_database' does not exist"}
    result, fake = emqx([LOGIN, listing(), importing([A], status=404, answer=answer), LOGOUT], [A])
    assert result['failed']
    assert 'No built-in-database authenticator' in result['msg']


def test_failed_count_fails(emqx):
    result, fake = emqx([LOGIN, listing(), importing([A], failed=1), LOGOUT], [A])
    assert result['failed']
    assert 'refused 1 of the 1 user' in result['msg']


def test_listing_not_a_page(emqx):
    result, fake = emqx([LOGIN, ('GET', BASE + '/users?page=1&limit=1000', None, TOKEN, 200, [{'user_id': 'x'}]),
                         LOGOUT], [A])
    assert result['failed']
    assert 'not with a page of users' in result['msg']


def test_import_answer_without_counts(emqx):
    result, fake = emqx([LOGIN, listing(), importing([A], answer={'ok': True}), LOGOUT], [A])
    assert result['failed']
    assert 'not with the counts of an import' in result['msg']


def test_delete_refused(emqx):
    result, fake = emqx([
        LOGIN, listing('sensor-a', 'sensor-b'), importing([A], skipped=1),
        delete('sensor-b', 403, {'code': 'UNAUTHORIZED_ROLE', 'message': "You don't have permission"}),
        LOGOUT,
    ], [A], previous=[A, B])
    assert result['failed']
    assert result['status'] == 403
    assert 'Cannot delete the user sensor-b' in result['msg']


def test_login_refused(emqx):
    result, fake = emqx([login(PASSWORD)], [A])
    assert result['failed']
    assert result['status'] == 401
    assert result['requests'] == ['POST /login 401']


@pytest.mark.parametrize('users, message', [
    ([A, dict(B, user_id='sensor-a')], 'users lists the user_id sensor-a twice (users[0] and users[1])'),
    ([dict(A, user_id='')], 'users[0] has an empty user_id'),
    ([A, dict(B, password_hash='')], 'users[1] (user sensor-b) has an empty password_hash'),
])
def test_bad_users_fail_before_any_request(emqx, users, message):
    result, fake = emqx([], users)
    assert result['failed']
    assert message in result['msg']
    assert fake.calls == []


def test_bad_api_url(emqx):
    result, fake = emqx([], [A], api_url='ftp://10.0.0.1/api/v5')
    assert result['failed']
    assert fake.calls == []


def test_defaults_of_salt_and_superuser(emqx):
    bare = dict(user_id='bare', password_hash=sha256('x', ''))
    expected = dict(bare, salt='', is_superuser=False)
    result, fake = emqx([LOGIN, listing(), importing([expected], success=1), LOGOUT], [bare])
    assert result['added'] == ['bare']
