# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""emq_dashboard_password against canned answers of EMQX 5.8's dashboard API (open_url is mocked)."""

from __future__ import annotations

import email.message
import io
import json
import urllib.error
from unittest import mock

import pytest

from ansible.module_utils import basic
from ansible_collections.iothub.emq.plugins.module_utils import emqx_api
from ansible_collections.iothub.emq.plugins.modules import emq_dashboard_password


API = 'http://10.0.0.1:18083/api/v5'
USER = 'admin'
# Passwords with the characters that `su - emqx -c` used to mangle.
NEW = 'N3w$ecret`"q\'x'
OLD = 'Old-Pa55!word'
OTHER = 'public'
SECRETS = (NEW, OLD, OTHER)

BAD_LOGIN = {'code': 'BAD_USERNAME_OR_PWD', 'message': 'Auth failed'}
NOT_MATCH = {'code': 'ERROR_PWD_NOT_MATCH', 'message': 'Old password not match'}
BAD_TOKEN = {'code': 'BAD_TOKEN', 'message': 'Get a token by POST /login'}
TOO_SHORT = {'code': 'BAD_REQUEST', 'message': 'The range of password length is 8~64'}
NO_USER = {'code': 'USER_NOT_FOUND', 'message': 'User not found'}


class Response(object):
    def __init__(self, status, payload):
        self.status = status
        self.payload = payload

    def getcode(self):
        return self.status

    def read(self):
        return self.payload


class FakeEmqx(object):
    """Plays a script of (method, path, body, token, status, answer) and checks each request."""

    def __init__(self, script):
        self.script = list(script)
        self.calls = []

    def __call__(self, url, data=None, headers=None, method=None, timeout=None, validate_certs=None,
                 follow_redirects=None, use_netrc=None, **kwargs):
        assert follow_redirects == 'none', 'a password must never follow a redirect'
        assert use_netrc is False
        body = json.loads(data) if data else None
        auth = (headers or {}).get('Authorization')
        self.calls.append((method, url, body, auth))
        assert self.script, 'unexpected request {0} {1}'.format(method, url)
        exp_method, exp_path, exp_body, exp_token, status, answer = self.script.pop(0)
        assert (method, url) == (exp_method, API + exp_path)
        assert body == exp_body
        assert auth == ('Bearer ' + exp_token if exp_token else None)
        payload = json.dumps(answer).encode() if answer is not None else b''
        if status >= 400:
            raise urllib.error.HTTPError(url, status, 'error', email.message.Message(), io.BytesIO(payload))
        return Response(status, payload)


def login(password, token=None):
    """POST /login that works (with a token) or is refused (token None)."""
    body = {'username': USER, 'password': password}
    if token:
        return ('POST', '/login', body, None, 200, {'token': token, 'version': '5.8.9', 'role': 'administrator'})
    return ('POST', '/login', body, None, 401, BAD_LOGIN)


def logout(token):
    return ('POST', '/logout', {'username': USER}, token, 204, None)


def change(token, old, status=204, answer=None, user=USER):
    return ('POST', '/users/{0}/change_pwd'.format(emqx_api.EmqxApi.quote(user)),
            {'old_pwd': old, 'new_pwd': NEW}, token, status, answer)


def assert_no_secret(result):
    text = json.dumps(result)
    for secret in SECRETS:
        assert json.dumps(secret)[1:-1] not in text and secret not in text, 'a password leaked into the result'
    assert 'tok-' not in text, 'a token leaked into the result'


@pytest.fixture
def emqx(run_module):
    """emqx(script, previous=(), check_mode=False, diff=False, **args) -> (result, fake)."""

    def run(script, previous=(), check_mode=False, diff=False, **args):
        fake = FakeEmqx(script)
        params = dict(api_url=API, password=NEW, previous_passwords=list(previous))
        params.update(args)
        with mock.patch.object(emqx_api, 'open_url', side_effect=fake):
            result = run_module(emq_dashboard_password.main, params, check_mode=check_mode, diff=diff)
        assert not fake.script, 'requests not sent: {0}'.format(fake.script)
        assert_no_secret(result)
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


def test_changes_from_previous_password(emqx):
    result, fake = emqx([
        login(NEW),
        login(OLD, 'tok-1'),
        change('tok-1', OLD),
        login(NEW, 'tok-2'),
        logout('tok-2'),
    ], previous=[OLD])
    assert not result['failed']
    assert result['changed'] is True
    assert result['logged_in_with'] == 'previous_passwords[0]'
    assert result['msg'] == 'Changed the password of dashboard user admin.'
    assert result['requests'] == ['POST /login 401', 'POST /login 200', 'POST /users/admin/change_pwd 204',
                                  'POST /login 200', 'POST /logout 204']


def test_tries_previous_passwords_in_order(emqx):
    result, fake = emqx([
        login(NEW),
        login(OTHER),
        login(OLD, 'tok-1'),
        change('tok-1', OLD),
        login(NEW, 'tok-2'),
        logout('tok-2'),
    ], previous=[OTHER, OLD], diff=True)
    assert result['changed'] is True
    assert result['logged_in_with'] == 'previous_passwords[1]'
    assert result['diff'] == dict(before=dict(password='<old>'), after=dict(password='<changed>'))


def test_skips_empty_and_repeated_previous_passwords(emqx):
    result, fake = emqx([
        login(NEW),
        login(OLD, 'tok-1'),
        change('tok-1', OLD),
        login(NEW, 'tok-2'),
        logout('tok-2'),
    ], previous=['', NEW, OLD, OLD])
    assert result['changed'] is True
    assert result['logged_in_with'] == 'previous_passwords[2]'


def test_user_name_is_quoted_in_the_path(emqx):
    user = 'ops team'

    def as_user(step):
        method, path, body, token, status, answer = step
        if body and 'username' in body:
            body = dict(body, username=user)
        return (method, path, body, token, status, answer)

    result, fake = emqx([as_user(s) for s in (
        login(NEW),
        login(OLD, 'tok-1'),
        change('tok-1', OLD, user=user),
        login(NEW, 'tok-2'),
        logout('tok-2'),
    )], previous=[OLD], username=user)
    assert result['changed'] is True
    assert 'POST /users/ops%20team/change_pwd 204' in result['requests']


# -- races with another node ----------------------------------------------------------------


def test_race_old_password_no_longer_matches(emqx):
    result, fake = emqx([
        login(NEW),
        login(OLD, 'tok-1'),
        change('tok-1', OLD, 400, NOT_MATCH),
        login(NEW, 'tok-2'),
        logout('tok-2'),
    ], previous=[OLD], diff=True)
    assert not result['failed']
    assert result['changed'] is False
    assert 'meanwhile' in result['msg']
    assert result['diff']['before'] == result['diff']['after']


def test_race_token_dropped_by_the_other_change(emqx):
    result, fake = emqx([
        login(NEW),
        login(OLD, 'tok-1'),
        change('tok-1', OLD, 401, BAD_TOKEN),
        login(NEW, 'tok-2'),
        logout('tok-2'),
    ], previous=[OLD])
    assert not result['failed']
    assert result['changed'] is False


def test_race_and_the_configured_password_does_not_log_in(emqx):
    result, fake = emqx([
        login(NEW),
        login(OLD, 'tok-1'),
        change('tok-1', OLD, 400, NOT_MATCH),
        login(NEW),
    ], previous=[OLD])
    assert result['failed']
    assert 'ERROR_PWD_NOT_MATCH' in result['msg']
    assert 'run the task again' in result['msg']


def test_changed_but_does_not_log_in_afterwards(emqx):
    result, fake = emqx([
        login(NEW),
        login(OLD, 'tok-1'),
        change('tok-1', OLD),
        login(NEW),
    ], previous=[OLD])
    assert result['failed']
    assert result['changed'] is True
    assert 'accepted' in result['msg']


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
    result, fake = emqx([
        login(NEW),
        login(OLD, 'tok-1'),
        change('tok-1', OLD, 400, TOO_SHORT),
        logout('tok-1'),
    ], previous=[OLD])
    assert result['failed']
    assert result['changed'] is False
    assert result['msg'] == 'EMQX refused the new password of dashboard user admin: The range of password length is 8~64.'
    assert result['status'] == 400
    assert result['url'] == API + '/users/admin/change_pwd'


def test_refusal_that_echoes_a_password_is_redacted(emqx):
    echo = {'code': 'BAD_REQUEST', 'message': 'cannot use ' + NEW + ' instead of ' + OLD}
    result, fake = emqx([
        login(NEW),
        login(OLD, 'tok-1'),
        change('tok-1', OLD, 400, echo),
        logout('tok-1'),
    ], previous=[OLD])
    assert result['failed']
    assert '********' in result['msg']


def test_user_gone(emqx):
    result, fake = emqx([
        login(NEW),
        login(OLD, 'tok-1'),
        change('tok-1', OLD, 404, NO_USER),
        logout('tok-1'),
    ], previous=[OLD])
    assert result['failed']
    assert 'USER_NOT_FOUND' in result['msg']


def test_unexpected_status(emqx):
    result, fake = emqx([
        login(NEW),
        login(OLD, 'tok-1'),
        change('tok-1', OLD, 403, {'code': 'UNAUTHORIZED_ROLE', 'message': 'no'}),
        logout('tok-1'),
    ], previous=[OLD])
    assert result['failed']
    assert result['msg'].startswith('Cannot change the password of dashboard user admin: POST ' + API)
    assert '403 UNAUTHORIZED_ROLE' in result['msg']


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
    assert_no_secret(result)


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
