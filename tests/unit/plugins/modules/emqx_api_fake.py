# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Canned answers of EMQX 5.8's dashboard API for the tests of the modules built on emqx_api: a stand-in for
open_url that plays a script of requests and answers, the steps every such script shares, and the check
that no secret reached a result."""

from __future__ import annotations

import email.message
import io
import json
import urllib.error
from unittest import mock

from ansible_collections.iothub.emq.plugins.module_utils import emqx_api


API = 'http://10.0.0.1:18083/api/v5'
USER = 'admin'
BAD_LOGIN = {'code': 'BAD_USERNAME_OR_PWD', 'message': 'Auth failed'}


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


def login(password, token=None, user=USER):
    """POST /login that works (with a token) or is refused (token None)."""
    body = {'username': user, 'password': password}
    if token:
        return ('POST', '/login', body, None, 200, {'token': token, 'version': '5.8.9', 'role': 'administrator'})
    return ('POST', '/login', body, None, 401, BAD_LOGIN)


def logout(token, user=USER):
    return ('POST', '/logout', {'username': user}, token, 204, None)


def play(run_module, main, params, script, check_mode=False, diff=False):
    """Run ``main`` with ``params`` against ``script``, which it must play to the end -> (result, fake)."""
    fake = FakeEmqx(script)
    with mock.patch.object(emqx_api, 'open_url', side_effect=fake):
        result = run_module(main, params, check_mode=check_mode, diff=diff)
    assert not fake.script, 'requests not sent: {0}'.format(fake.script)
    return result, fake


def assert_no_secret(result, secrets, tokens):
    """No secret (raw or JSON-escaped) and no token (or token prefix) appears anywhere in ``result``."""
    text = json.dumps(result)
    for secret in secrets:
        assert json.dumps(secret)[1:-1] not in text and secret not in text, 'a password leaked into the result'
    for token in tokens:
        assert token not in text, 'a token leaked into the result'
