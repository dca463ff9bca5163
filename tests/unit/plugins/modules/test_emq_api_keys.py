# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""emq_api_keys against canned answers of EMQX 5.8's dashboard API (open_url is mocked)."""

from __future__ import annotations

import pytest

from ansible_collections.iothub.emq.plugins.module_utils.emqx_api import bootstrap_key_name
from ansible_collections.iothub.emq.plugins.modules import emq_api_keys
from ansible_collections.iothub.emq.tests.unit.plugins.modules.emqx_api_fake import (
    API,
    assert_no_secret,
    login,
    logout,
    play,
)


PASSWORD = 'Adm1n$`"\'pw'
TOKEN = 'tok-api-keys'


def boot(api_key, enable=True, expired=False):
    """An entry of GET /api_key for a key EMQX loaded from the bootstrap file."""
    return {'name': bootstrap_key_name(api_key), 'api_key': api_key, 'expired_at': 'infinity',
            'created_at': '2026-11-30T10:00:00+00:00', 'desc': 'Bootstrapped From File', 'enable': enable,
            'expired': expired}


def dash(api_key, name):
    """An entry of GET /api_key for a key created in the dashboard."""
    return {'name': name, 'api_key': api_key, 'expired_at': 'infinity', 'created_at': '2026-11-01T10:00:00+00:00',
            'desc': 'grafana', 'enable': True, 'expired': False}


LOGIN = login(PASSWORD, TOKEN)
LOGIN_REFUSED = login(PASSWORD)
LOGOUT = logout(TOKEN)


def listing(*entries):
    return ('GET', '/api_key', None, TOKEN, 200, list(entries))


def delete(api_key, status=204, answer=None):
    return ('DELETE', '/api_key/' + bootstrap_key_name(api_key), None, TOKEN, status, answer)


@pytest.fixture
def emqx(run_module):
    """emqx(script, keys, check_mode=False, diff=False, **args) -> (result, fake)."""

    def run(script, keys, check_mode=False, diff=False, **args):
        params = dict(api_url=API, password=PASSWORD, keys=list(keys))
        params.update(args)
        result, fake = play(run_module, emq_api_keys.main, params, script, check_mode=check_mode, diff=diff)
        assert_no_secret(result, [PASSWORD], [TOKEN])
        return result, fake

    return run


def test_nothing_to_do(emqx):
    result, fake = emqx([LOGIN, listing(boot('ops'), boot('monitor')), LOGOUT], ['ops', 'monitor'], diff=True)
    assert not result['failed']
    assert result['changed'] is False
    assert result['keys'] == ['monitor', 'ops']
    assert result['revoked'] == []
    assert result['missing'] == []
    assert result['requests'] == ['POST /login 200', 'GET /api_key 200', 'POST /logout 204']
    assert result['diff']['before'] == result['diff']['after'] == dict(keys=['monitor', 'ops'])
    assert result['warnings'] == []


def test_revokes_a_key_removed_from_the_file(emqx):
    result, fake = emqx([
        LOGIN,
        listing(boot('ops'), boot('monitor'), boot('old-ci')),
        delete('old-ci'),
        LOGOUT,
    ], ['ops', 'monitor'])
    assert not result['failed']
    assert result['changed'] is True
    assert result['revoked'] == ['old-ci']
    assert result['keys'] == ['monitor', 'ops']
    assert result['msg'] == 'Revoked 1 API key that the bootstrap file no longer holds: old-ci.'
    assert 'DELETE /api_key/{0} 204'.format(bootstrap_key_name('old-ci')) in result['requests']


def test_dashboard_created_keys_are_never_touched(emqx):
    result, fake = emqx([
        LOGIN,
        listing(boot('ops'), dash('grafana-key', 'grafana'), boot('old-ci')),
        delete('old-ci'),
        LOGOUT,
    ], ['ops'], diff=True)
    assert result['changed'] is True
    assert result['revoked'] == ['old-ci']
    assert all('grafana' not in r for r in result['requests'])
    assert result['diff'] == dict(before=dict(keys=['old-ci', 'ops']), after=dict(keys=['ops']))


def test_only_dashboard_keys_besides_the_file_is_no_change(emqx):
    result, fake = emqx([LOGIN, listing(boot('ops'), dash('grafana-key', 'grafana')), LOGOUT], ['ops'])
    assert result['changed'] is False
    assert result['keys'] == ['ops']


def test_missing_listed_key_fails_and_revokes_nothing(emqx):
    result, fake = emqx([LOGIN, listing(boot('ops'), boot('old-ci')), LOGOUT], ['ops', 'monitor', 'viewer-key'])
    assert result['failed']
    assert result['changed'] is False
    assert result['missing'] == ['monitor', 'viewer-key']
    msg = result['msg']
    assert 'monitor, viewer-key' in msg
    assert 'first line it refuses' in msg
    assert 'viewer' in msg and '":"' in msg
    assert '/var/log/emqx/emqx.log.*' in msg
    assert '\n' not in msg
    assert all(not r.startswith('DELETE') for r in result['requests'])


def test_listed_key_created_in_the_dashboard_is_not_loaded_from_the_file(emqx):
    result, fake = emqx([LOGIN, listing(dash('ops', 'ops-by-hand')), LOGOUT], ['ops'])
    assert result['failed']
    assert result['missing'] == ['ops']


def test_check_mode_reports_what_it_would_revoke(emqx):
    result, fake = emqx([LOGIN, listing(boot('ops'), boot('old-ci'), boot('older')), LOGOUT], ['ops'],
                        check_mode=True, diff=True)
    assert not result['failed']
    assert result['changed'] is True
    assert result['revoked'] == ['old-ci', 'older']
    assert result['keys'] == ['ops']
    assert all(not r.startswith('DELETE') for r in result['requests'])
    assert result['diff'] == dict(before=dict(keys=['old-ci', 'older', 'ops']), after=dict(keys=['ops']))
    assert result['msg'].startswith('Would revoke 2 API keys')


def test_check_mode_nothing_to_do(emqx):
    result, fake = emqx([LOGIN, listing(boot('ops')), LOGOUT], ['ops'], check_mode=True)
    assert result['changed'] is False


def test_revoke_unlisted_false_only_warns(emqx):
    result, fake = emqx([LOGIN, listing(boot('ops'), boot('old-ci')), LOGOUT], ['ops'], revoke_unlisted=False)
    assert result['changed'] is False
    assert result['revoked'] == []
    assert result['keys'] == ['old-ci', 'ops']
    assert any('old-ci' in w and 'revoke_unlisted' in w for w in result['warnings'])


def test_empty_list_revokes_every_bootstrap_key(emqx):
    result, fake = emqx([
        LOGIN,
        listing(boot('a-key'), dash('grafana-key', 'grafana'), boot('b-key')),
        delete('a-key'),
        delete('b-key'),
        LOGOUT,
    ], [])
    assert result['changed'] is True
    assert result['revoked'] == ['a-key', 'b-key']
    assert result['keys'] == []


def test_key_deleted_meanwhile_is_no_change(emqx):
    result, fake = emqx([
        LOGIN,
        listing(boot('ops'), boot('old-ci')),
        delete('old-ci', 404, {'code': 'NOT_FOUND', 'message': 'Name NOT FOUND'}),
        LOGOUT,
    ], ['ops'])
    assert not result['failed']
    assert result['changed'] is False
    assert result['revoked'] == []
    assert 'meanwhile' in result['msg']


def test_delete_refused(emqx):
    result, fake = emqx([
        LOGIN,
        listing(boot('ops'), boot('old-ci'), boot('older')),
        delete('old-ci'),
        delete('older', 403, {'code': 'UNAUTHORIZED_ROLE', 'message': "You don't have permission"}),
        LOGOUT,
    ], ['ops'])
    assert result['failed']
    assert result['changed'] is True
    assert result['revoked'] == ['old-ci']
    assert 'older' in result['msg'] and '403 UNAUTHORIZED_ROLE' in result['msg']
    assert result['status'] == 403


def test_disabled_or_expired_listed_key_warns(emqx):
    result, fake = emqx([LOGIN, listing(boot('ops', enable=False), boot('monitor', expired=True)), LOGOUT],
                        ['ops', 'monitor'])
    assert result['changed'] is False
    assert any('ops' in w and 'disabled' in w for w in result['warnings'])
    assert any('monitor' in w and 'expired' in w for w in result['warnings'])


def test_login_refused(emqx):
    result, fake = emqx([LOGIN_REFUSED], ['ops'])
    assert result['failed']
    assert result['status'] == 401
    assert 'emq_dashboard_password' in result['msg']
    assert result['requests'] == ['POST /login 401']


def test_listing_refused(emqx):
    result, fake = emqx([
        LOGIN,
        ('GET', '/api_key', None, TOKEN, 401, {'code': 'TOKEN_TIME_OUT', 'message': 'Token expired'}),
        LOGOUT,
    ], ['ops'])
    assert result['failed']
    assert result['msg'] == 'Cannot list the API keys: GET {0}/api_key answered 401 TOKEN_TIME_OUT (Token expired).'.format(API)


def test_listing_not_a_list(emqx):
    result, fake = emqx([LOGIN, ('GET', '/api_key', None, TOKEN, 200, {'data': []}), LOGOUT], ['ops'])
    assert result['failed']
    assert 'not with a list' in result['msg']


@pytest.mark.parametrize('args, message', [
    (dict(keys=['ops', '']), 'empty value at position 1'),
    (dict(api_url='http://10.0.0.1:18083/api/v5#x'), 'fragment'),
    (dict(timeout=-1), 'timeout'),
])
def test_bad_arguments(emqx, args, message):
    keys = args.pop('keys', ['ops'])
    result, fake = emqx([], keys, **args)
    assert result['failed']
    assert message in result['msg']
    assert fake.calls == []


def test_duplicates_in_keys_are_one_key(emqx):
    result, fake = emqx([LOGIN, listing(boot('ops')), LOGOUT], ['ops', 'ops'])
    assert result['changed'] is False
    assert result['msg'] == 'EMQX holds exactly the 1 API key of the bootstrap file.'
