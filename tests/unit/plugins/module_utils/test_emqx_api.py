# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""emqx_api against a small HTTP server on 127.0.0.1 that answers like EMQX 5.8's dashboard API."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time

import pytest

from ansible_collections.iothub.emq.plugins.module_utils import emqx_api
from ansible_collections.iothub.emq.plugins.module_utils.emqx_api import EmqxApi, EmqxApiError


PASSWORD = 'Pa$$w0rd`"\'x'
TOKEN = 'eyJhbGciOiJIUzI1NiJ9.test.token'


class Server(object):
    """Answers each request with routes[(method, path)] = (status, body, headers) and records it."""

    def __init__(self):
        self.routes = {}
        self.seen = []
        self.delay = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self):
                length = int(self.headers.get('Content-Length') or 0)
                raw = self.rfile.read(length) if length else b''
                server.seen.append(dict(method=self.command, path=self.path, headers=dict(self.headers),
                                        body=json.loads(raw) if raw else None))
                if server.delay:
                    time.sleep(server.delay)
                status, body, headers = server.routes.get((self.command, self.path), (404, {'code': 'NOT_FOUND'}, {}))
                payload = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else b'')
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if payload:
                    self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = _answer

        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.httpd.daemon_threads = True
        self.base = 'http://127.0.0.1:{0}/api/v5'.format(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = Server()
    yield srv
    srv.close()


def closed_port():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


# -- the client ------------------------------------------------------------------------


def test_login_ok_sends_json_and_returns_the_token(server):
    server.routes[('POST', '/api/v5/login')] = (200, {'token': TOKEN, 'version': '5.8.9', 'role': 'administrator'}, {})
    api = EmqxApi(server.base + '/', timeout=5)
    assert api.login('admin', PASSWORD) == TOKEN
    seen = server.seen[0]
    assert seen['body'] == {'username': 'admin', 'password': PASSWORD}
    assert seen['headers']['Content-Type'] == 'application/json'
    assert 'Authorization' not in seen['headers']
    assert api.requests == ['POST /login 200']


def test_login_wrong_password_is_none(server):
    server.routes[('POST', '/api/v5/login')] = (401, {'code': 'BAD_USERNAME_OR_PWD', 'message': 'Auth failed'}, {})
    api = EmqxApi(server.base)
    assert api.login('admin', PASSWORD) is None
    assert api.requests == ['POST /login 401']


def test_login_404_says_where_the_api_is(server):
    api = EmqxApi(server.base.replace('/api/v5', ''))
    with pytest.raises(EmqxApiError) as caught:
        api.login('admin', PASSWORD)
    assert caught.value.status == 404
    assert '/api/v5' in caught.value.msg
    assert PASSWORD not in caught.value.msg


def test_login_other_status_names_url_status_and_code(server):
    server.routes[('POST', '/api/v5/login')] = (500, {'code': 'INTERNAL_ERROR', 'message': 'boom'}, {})
    api = EmqxApi(server.base)
    with pytest.raises(EmqxApiError) as caught:
        api.login('admin', PASSWORD)
    msg = caught.value.msg
    assert server.base + '/login' in msg
    assert '500 INTERNAL_ERROR (boom)' in msg
    assert PASSWORD not in msg and TOKEN not in msg


def test_login_200_without_token(server):
    server.routes[('POST', '/api/v5/login')] = (200, b'<html>proxy</html>', {})
    with pytest.raises(EmqxApiError) as caught:
        EmqxApi(server.base).login('admin', PASSWORD)
    assert 'without a token' in caught.value.msg


def test_request_with_token_and_empty_204(server):
    server.routes[('DELETE', '/api/v5/api_key/from_bootstrap_file_x')] = (204, None, {})
    api = EmqxApi(server.base)
    assert api.request('DELETE', '/api_key/from_bootstrap_file_x', token=TOKEN) == (204, None)
    assert server.seen[0]['headers']['Authorization'] == 'Bearer ' + TOKEN
    assert server.seen[0]['body'] is None


def test_request_error_body_is_parsed(server):
    server.routes[('POST', '/api/v5/users/admin/change_pwd')] = (
        400, {'code': 'ERROR_PWD_NOT_MATCH', 'message': 'Old password not match'}, {})
    status, data = EmqxApi(server.base).request('POST', '/users/admin/change_pwd', token=TOKEN,
                                                body={'old_pwd': 'a', 'new_pwd': 'b'})
    assert status == 400
    assert emqx_api.error_code(data) == 'ERROR_PWD_NOT_MATCH'


def test_request_non_json_body_is_none(server):
    server.routes[('GET', '/api/v5/api_key')] = (502, b'<html>Bad Gateway</html>', {})
    assert EmqxApi(server.base).request('GET', '/api_key', token=TOKEN) == (502, None)


def test_redirect_is_not_followed(server):
    server.routes[('POST', '/api/v5/login')] = (301, None, {'Location': 'https://elsewhere.example/api/v5/login'})
    api = EmqxApi(server.base)
    with pytest.raises(EmqxApiError) as caught:
        api.login('admin', PASSWORD)
    assert 'https://elsewhere.example/api/v5/login' in caught.value.msg
    assert caught.value.status == 301
    assert len(server.seen) == 1
    assert PASSWORD not in caught.value.msg


def test_connection_refused_names_the_url():
    url = 'http://127.0.0.1:{0}/api/v5'.format(closed_port())
    api = EmqxApi(url, timeout=3)
    with pytest.raises(EmqxApiError) as caught:
        api.login('admin', PASSWORD)
    assert caught.value.msg.startswith('No answer to POST {0}/login: '.format(url))
    assert caught.value.status is None
    assert PASSWORD not in caught.value.msg
    assert api.requests == ['POST /login no answer']


def test_timeout_hint(server):
    server.delay = 2
    with pytest.raises(EmqxApiError) as caught:
        EmqxApi(server.base, timeout=1).request('GET', '/api_key', token=TOKEN)
    assert 'raise timeout' in caught.value.msg
    assert TOKEN not in caught.value.msg


def test_logout_never_raises(server):
    server.routes[('POST', '/api/v5/logout')] = (204, None, {})
    assert EmqxApi(server.base).logout('admin', TOKEN) is True
    assert server.seen[0]['body'] == {'username': 'admin'}
    assert server.seen[0]['headers']['Authorization'] == 'Bearer ' + TOKEN
    assert EmqxApi('http://127.0.0.1:{0}/api/v5'.format(closed_port()), timeout=2).logout('admin', TOKEN) is False


def test_quote_path_segment():
    assert EmqxApi.quote('ops team/1') == 'ops%20team%2F1'


# -- helpers ----------------------------------------------------------------------------


def test_argument_spec_hides_the_password():
    spec = emqx_api.emqx_api_argument_spec()
    assert spec['password'] == dict(type='str', required=True, no_log=True)
    assert spec['username']['default'] == 'admin'
    assert spec['timeout']['default'] == 10
    assert spec['validate_certs']['default'] is True


def test_bootstrap_key_name_matches_emqx():
    # The example of emqx_mgmt_auth.erl: `example-api-key:secret_xxxx` is named from_bootstrap_file_53280fb165b6cd37.
    assert emqx_api.bootstrap_key_name('example-api-key') == 'from_bootstrap_file_53280fb165b6cd37'


@pytest.mark.parametrize('password, problem', [
    ('123', 'The range of password length is 8~64'),
    ('a' * 65, 'The range of password length is 8~64'),
    ('12345678', 'Bad password.'),
    ('abcdefghij', 'Bad password.'),
    ('!@#$%^&*()', 'Bad password.'),
    ('abcd\\\\efgh', 'Bad password.'),  # a backslash is not one of EMQX's special characters
    ('test_for_non_ascii1\u4e2d', 'Only ascii characters'),
    ('abckldiekflkdf12', None),
    ('# 12344858', None),
    ('abckldiekflkdf w', None),
    ('Pa$$w0rd`"\'x', None),
])
def test_password_problem(password, problem):
    found = emqx_api.password_problem(password)
    if problem is None:
        assert found is None
    else:
        assert found.startswith(problem)


@pytest.mark.parametrize('url, ok', [
    ('http://10.0.0.1:18083/api/v5', True),
    ('https://emqx.example.com:18084/api/v5/', True),
    ('10.0.0.1:18083/api/v5', False),
    ('ftp://10.0.0.1/api/v5', False),
    ('http://admin:secret@10.0.0.1:18083/api/v5', False),
    ('http://10.0.0.1:18083/api/v5?x=1', False),
])
def test_check_api_url(url, ok):
    problem = emqx_api.check_api_url(url)
    assert (problem is None) == ok
    if problem:
        assert 'secret' not in problem


def test_describe_and_redact():
    assert emqx_api.describe(401, {'code': 'BAD_USERNAME_OR_PWD', 'message': 'Auth failed'}) == \
        '401 BAD_USERNAME_OR_PWD (Auth failed)'
    assert emqx_api.describe(502, None) == '502'
    assert emqx_api.error_message({'message': {'reason': 'x'}}) == '{"reason": "x"}'
    assert emqx_api.redact('a secret and secretive', ['secret', '', None]) == 'a ******** and ********ive'
