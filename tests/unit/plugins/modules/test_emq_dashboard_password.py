# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""emq_dashboard_password against canned answers of EMQX 5.8's dashboard API (open_url is mocked)."""

from __future__ import annotations

import json
import urllib.error
from unittest import mock

import pytest

from ansible.module_utils import basic
from ansible_collections.iothub.emq.plugins.module_utils import emqx_api
from ansible_collections.iothub.emq.plugins.modules import emq_dashboard_password
from ansible_collections.iothub.emq.tests.unit.plugins.modules.emqx_api_fake import (
    API,
    BAD_LOGIN,
    USER,
    FakeEmqx,
    assert_no_secret,
    login,
    logout,
    play,
)


# Passwords with the characters that `su - emqx -c` used to mangle.
NEW = 'N3w$ecret`"q\'x'
OLD = 'Old-Pa55!word'
OTHER = 'public'
SECRETS = (NEW, OLD, OTHER)
TOKENS = ('tok-',)

NOT_MATCH = {'code': 'ERROR_PWD_NOT_MATCH', 'message': 'Old password not match'}
BAD_TOKEN = {'code': 'BAD_TOKEN', 'message': 'Get a token by POST /login'}
TOO_SHORT = {'code': 'BAD_REQUEST', 'message': 'The range of password length is 8~64'}
NO_USER = {'code': 'USER_NOT_FOUND', 'message': 'User not found'}
ECHO = {'code': 'BAD_REQUEST', 'message': 'cannot use ' + NEW + ' instead of ' + OLD}


def change(token, old, status=204, answer=None, user=USER):
    return ('POST', '/users/{0}/change_pwd'.format(emqx_api.EmqxApi.quote(user)),
            {'old_pwd': old, 'new_pwd': NEW}, token, status, answer)


def from_old(*then):
    """NEW is refused, OLD logs in (tok-1), then the steps ``then``."""
    return [login(NEW), login(OLD, 'tok-1')] + list(then)


def refused_change(status, answer):
    """From OLD, EMQX refuses the change with ``status`` and ``answer``, and the module logs out."""
    return from_old(change('tok-1', OLD, status, answer), logout('tok-1'))


def changed(user=USER, refused=()):
    """NEW and each of ``refused`` are refused, OLD logs in, the change works, NEW logs in (tok-2)."""
    return ([login(NEW, user=user)] + [login(value, user=user) for value in refused]
            + [login(OLD, 'tok-1', user=user), change('tok-1', OLD, user=user), login(NEW, 'tok-2', user=user),
               logout('tok-2', user=user)])


@pytest.fixture
def emqx(run_module):
    """emqx(script, previous=(), check_mode=False, diff=False, **args) -> (result, fake)."""

    def run(script, previous=(), check_mode=False, diff=False, **args):
        params = dict(api_url=API, password=NEW, previous_passwords=list(previous))
        params.update(args)
        result, fake = play(run_module, emq_dashboard_password.main, params, script,
                            check_mode=check_mode, diff=diff)
        assert_no_secret(result, SECRETS, TOKENS)
        return result, fake

    return run


# -- already right -----------------------------------------------------------------------


def test_already_right(emqx):
    result, fake = emqx([login(NEW, 'tok-1'), logout('tok-1')], previous=[OLD])
    assert not result['failed']
    assert result['changed'] is False
    assert result['logged_in_with'] == 'password'
    assert result['username'] == USER
    assert result['requests'] == ['POST /login 200', 'POST /logout 204']
    assert 'already' in result['msg']
    assert 'diff' not in result


def test_already_right_diff(emqx):
    result, fake = emqx([login(NEW, 'tok-1'), logout('tok-1')], diff=True)
    assert result['diff'] == dict(before=dict(password='<unchanged>'), after=dict(password='<unchanged>'))


# -- needs a change ----------------------------------------------------------------------


@pytest.mark.parametrize('previous, refused, label, user, path', [
    ([OLD], [], 'previous_passwords[0]', USER, '/users/admin/change_pwd'),
    ([OTHER, OLD], [OTHER], 'previous_passwords[1]', USER, '/users/admin/change_pwd'),
    (['', NEW, OLD, OLD], [], 'previous_passwords[2]', USER, '/users/admin/change_pwd'),
    ([OLD], [], 'previous_passwords[0]', 'ops team', '/users/ops%20team/change_pwd'),
], ids=['from-previous-password', 'tries-previous-in-order', 'skips-empty-and-repeated', 'user-name-quoted'])
def test_changes_from_previous_password(emqx, previous, refused, label, user, path):
    result, fake = emqx(changed(user, refused), previous=previous, username=user, diff=True)
    assert not result['failed']
    assert result['changed'] is True
    assert result['logged_in_with'] == label
    assert result['msg'] == 'Changed the password of dashboard user {0}.'.format(user)
    assert result['requests'] == ['POST /login 401'] * (1 + len(refused)) + [
        'POST /login 200', 'POST {0} 204'.format(path), 'POST /login 200', 'POST /logout 204']
    assert result['diff'] == dict(before=dict(password='<old>'), after=dict(password='<changed>'))


# -- races with another node ----------------------------------------------------------------


@pytest.mark.parametrize('status, answer', [(400, NOT_MATCH), (401, BAD_TOKEN)],
                         ids=['old-password-no-longer-matches', 'token-dropped-by-the-other-change'])
def test_race_changed_meanwhile(emqx, status, answer):
    result, fake = emqx(from_old(change('tok-1', OLD, status, answer), login(NEW, 'tok-2'), logout('tok-2')),
                        previous=[OLD], diff=True)
    assert not result['failed']
    assert result['changed'] is False
    assert 'meanwhile' in result['msg']
    assert result['diff']['before'] == result['diff']['after']


@pytest.mark.parametrize('status, answer, was_changed, fragments', [
    (400, NOT_MATCH, False, ['ERROR_PWD_NOT_MATCH', 'run the task again']),
    (204, None, True, ['accepted']),
], ids=['race-and-the-configured-password-does-not-log-in', 'changed-but-does-not-log-in-afterwards'])
def test_configured_password_does_not_log_in_after_the_change(emqx, status, answer, was_changed, fragments):
    result, fake = emqx(from_old(change('tok-1', OLD, status, answer), login(NEW)), previous=[OLD])
    assert result['failed']
    assert result['changed'] is was_changed
    assert all(fragment in result['msg'] for fragment in fragments)


# -- nothing logs in ---------------------------------------------------------------------------


def test_none_logs_in(emqx):
    result, fake = emqx([login(NEW), login(OLD), login(OTHER)], previous=[OLD, OTHER])
    assert result['failed']
    assert result['changed'] is False
    assert result['logged_in_with'] == ''
    msg = result['msg']
    assert msg.startswith('Neither the configured password nor any of the 2 previous passwords logs in')
    assert API + '/login' in msg
    assert 'emq_node_dashboard_password_previous' in msg
    assert 'emqx ctl admins passwd admin' in msg
    assert 'emqx user' in msg
    assert '\n' not in msg


def test_none_logs_in_without_previous(emqx):
    result, fake = emqx([login(NEW)])
    assert result['failed']
    assert 'no previous password is given' in result['msg']
    assert 'emq_node_dashboard_password_previous' in result['msg']


# -- EMQX refuses --------------------------------------------------------------------------------


def test_new_password_refused(emqx):
    result, fake = emqx(refused_change(400, TOO_SHORT), previous=[OLD])
    assert result['failed']
    assert result['changed'] is False
    assert result['msg'] == 'EMQX refused the new password of dashboard user admin: The range of password length is 8~64.'
    assert result['status'] == 400
    assert result['url'] == API + '/users/admin/change_pwd'


@pytest.mark.parametrize('status, answer, start, fragments', [
    (400, ECHO, 'EMQX refused the new password of dashboard user admin: ', ['********']),
    (404, NO_USER, 'EMQX has no dashboard user admin any more', ['USER_NOT_FOUND']),
    (403, {'code': 'UNAUTHORIZED_ROLE', 'message': 'no'}, 'Cannot change the password of dashboard user admin: POST ' + API,
     ['403 UNAUTHORIZED_ROLE']),
], ids=['refusal-that-echoes-a-password-is-redacted', 'user-gone', 'unexpected-status'])
def test_change_refused(emqx, status, answer, start, fragments):
    result, fake = emqx(refused_change(status, answer), previous=[OLD])
    assert result['failed']
    assert result['changed'] is False
    assert result['msg'].startswith(start)
    assert all(fragment in result['msg'] for fragment in fragments)
    assert result['status'] == status


def test_login_answers_404(emqx):
    result, fake = emqx([('POST', '/login', {'username': USER, 'password': NEW}, None, 404, {'code': 'NOT_FOUND'})])
    assert result['failed']
    assert '/api/v5' in result['msg']
    assert result['status'] == 404


def test_no_answer(run_module):
    def refuse(url, **kwargs):
        raise urllib.error.URLError(ConnectionRefusedError(111, 'Connection refused'))

    with mock.patch.object(emqx_api, 'open_url', side_effect=refuse):
        result = run_module(emq_dashboard_password.main, dict(api_url=API, password=NEW, previous_passwords=[OLD]))
    assert result['failed']
    assert result['msg'].startswith('No answer to POST {0}/login'.format(API))
    assert result['url'] == API + '/login'
    assert_no_secret(result, SECRETS, TOKENS)


# -- check mode ------------------------------------------------------------------------------------


def test_check_mode_would_change(emqx):
    result, fake = emqx([login(NEW), login(OLD, 'tok-1'), logout('tok-1')], previous=[OLD],
                        check_mode=True, diff=True)
    assert not result['failed']
    assert result['changed'] is True
    assert result['logged_in_with'] == 'previous_passwords[0]'
    assert all('change_pwd' not in r for r in result['requests'])
    assert result['diff'] == dict(before=dict(password='<old>'), after=dict(password='<changed>'))
    assert result['warnings'] == []


def test_check_mode_already_right(emqx):
    result, fake = emqx([login(NEW, 'tok-1'), logout('tok-1')], previous=[OLD], check_mode=True)
    assert result['changed'] is False


def test_check_mode_warns_about_a_password_emqx_refuses(emqx):
    weak = 'abcdefghij'
    result, fake = emqx([
        ('POST', '/login', {'username': USER, 'password': weak}, None, 401, BAD_LOGIN),
        login(OLD, 'tok-1'),
        logout('tok-1'),
    ], previous=[OLD], check_mode=True, password=weak)
    assert result['changed'] is True
    assert any('Bad password' in w for w in result['warnings'])
    assert weak not in json.dumps(result)


def test_check_mode_none_logs_in_fails(emqx):
    result, fake = emqx([login(NEW), login(OLD)], previous=[OLD], check_mode=True)
    assert result['failed']


# -- arguments -------------------------------------------------------------------------------------


@pytest.mark.parametrize('args, message', [
    (dict(api_url='10.0.0.1:18083'), 'not an http:// or https:// URL'),
    (dict(timeout=0), 'timeout'),
    (dict(password=''), 'password must not be empty'),
])
def test_bad_arguments(emqx, args, message):
    result, fake = emqx([], **args)
    assert result['failed']
    assert message in result['msg']
    assert fake.calls == []


def test_secrets_are_no_log_in_the_spec(run_module):
    seen = {}
    real = basic.AnsibleModule.__init__

    def capture(self, argument_spec, **kwargs):
        seen.update(argument_spec)
        real(self, argument_spec, **kwargs)

    with mock.patch.object(basic.AnsibleModule, '__init__', capture), \
            mock.patch.object(emqx_api, 'open_url', side_effect=FakeEmqx([login(NEW, 'tok-1'), logout('tok-1')])):
        run_module(emq_dashboard_password.main, dict(api_url=API, password=NEW))
    assert seen['password']['no_log'] is True
    assert seen['previous_passwords']['no_log'] is True
