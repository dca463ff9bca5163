# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A small client for the REST API of EMQX 5 on the dashboard listener (``/api/v5``).

It logs in as a dashboard user (``POST /login``) and sends JSON requests with the bearer
token it got. EMQX 5.8 refuses API keys (HTTP Basic) on ``/users``, ``/users/<name>``, ``/logout``
and ``/api_key`` (``API_KEY_NOT_ALLOW``), so this client only speaks bearer tokens.

Nothing here ever puts a password or a token into a message or an exception: errors name the
URL, the HTTP status and EMQX's error code and message. The options are documented by the doc
fragment ``iothub.emq.emqx_api``; :func:`emqx_api_argument_spec` is its code side.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import urllib.error
import urllib.parse

from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import open_url


DEFAULT_USERNAME = 'admin'
DEFAULT_TIMEOUT = 10

# API keys that EMQX loaded from api_key.bootstrap_file carry this description, and a name made
# of this prefix and the first 16 hex digits of the SHA-512 of the key (emqx_mgmt_auth.erl).
BOOTSTRAP_DESC = 'Bootstrapped From File'
BOOTSTRAP_NAME_PREFIX = 'from_bootstrap_file_'

# EMQX's error codes this collection reacts to (emqx_dashboard_api.erl).
BAD_USERNAME_OR_PWD = 'BAD_USERNAME_OR_PWD'
ERROR_PWD_NOT_MATCH = 'ERROR_PWD_NOT_MATCH'
USER_NOT_FOUND = 'USER_NOT_FOUND'

# What EMQX 5.8 counts as the three kinds of characters of a dashboard password.
_LETTERS = frozenset('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ')
_DIGITS = frozenset('0123456789')
_SPECIALS = frozenset('!@#$%^&*()_+-=[]{}"|;\':,./<>?`~ ')

_USER_AGENT = 'iothub.emq'


def emqx_api_argument_spec():
    """Argument spec for the options of the doc fragment ``iothub.emq.emqx_api``."""
    return dict(
        api_url=dict(type='str', required=True),
        username=dict(type='str', default=DEFAULT_USERNAME),
        password=dict(type='str', required=True, no_log=True),
        timeout=dict(type='int', default=DEFAULT_TIMEOUT),
        validate_certs=dict(type='bool', default=True),
    )


def check_api_url(api_url):
    """A sentence saying what is wrong with ``api_url``, or None when it is usable."""
    parsed = urllib.parse.urlsplit(api_url or '')
    if parsed.scheme not in ('http', 'https') or not parsed.netloc:
        return ('api_url={0!r} is not an http:// or https:// URL; use the dashboard listener and the API base '
                'path, for example http://10.0.0.1:18083/api/v5.'.format(api_url))
    if parsed.username is not None or parsed.password is not None:
        return 'api_url must not hold credentials; pass them as username and password.'
    if parsed.query or parsed.fragment:
        return 'api_url={0!r} must not have a query or a fragment.'.format(api_url)
    return None


def bootstrap_key_name(api_key):
    """The name EMQX gives to an API key it loaded from the bootstrap file."""
    digest = hashlib.sha512(api_key.encode('utf-8')).hexdigest()
    return BOOTSTRAP_NAME_PREFIX + digest[:16]


def password_problem(password):
    """Why EMQX 5.8 would refuse ``password`` as a dashboard password (close to its words); None when it would not.

    EMQX wants 8 to 64 characters, ASCII only, and at least two of the three kinds letters,
    digits and special characters (a backslash is none of them).
    """
    if not 8 <= len(password.encode('utf-8')) <= 64:
        return 'The range of password length is 8~64'
    kinds = sum(1 for kind in (_DIGITS, _LETTERS, _SPECIALS) if any(c in kind for c in password))
    if kinds < 2:
        return ('Bad password. At least two different kind of characters from groups of letters, numbers, '
                'and special characters.')
    if any(ord(c) > 127 for c in password):
        return 'Only ascii characters are allowed in the password'
    return None


def error_code(data):
    """EMQX's error code (``BAD_USERNAME_OR_PWD``, ...) from an error body, or ''."""
    if isinstance(data, dict) and data.get('code') is not None:
        return str(data['code'])
    return ''


def error_message(data):
    """EMQX's error message from an error body, or ''."""
    if isinstance(data, dict) and data.get('message') is not None:
        message = data['message']
        return message if isinstance(message, str) else json.dumps(message, sort_keys=True)
    return ''


def describe(status, data):
    """``401 BAD_USERNAME_OR_PWD (Auth failed)``: a status and what EMQX said about it."""
    code, message = error_code(data), error_message(data)
    text = str(status)
    if code:
        text += ' ' + code
    if message:
        text += ' ({0})'.format(message.strip().rstrip('.'))
    return text


def redact(text, secrets):
    """``text`` with every non-empty value of ``secrets`` replaced by ``********``."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, '********')
    return text


class EmqxApiError(Exception):
    """A request could not be sent, or EMQX answered something the caller cannot use."""

    def __init__(self, msg, url=None, status=None, code=None):
        super(EmqxApiError, self).__init__(msg)
        self.msg = msg
        self.url = url
        self.status = status
        self.code = code

    def fail_kwargs(self):
        result = dict(msg=self.msg, url=self.url)
        if self.status is not None:
            result['status'] = self.status
        return result


class EmqxApi(object):
    """JSON requests to ``<api_url><path>``, with a bearer token when one is given."""

    def __init__(self, api_url, timeout=DEFAULT_TIMEOUT, validate_certs=True):
        self.base = api_url.rstrip('/')
        self.timeout = timeout
        self.validate_certs = validate_certs
        self.requests = []

    @classmethod
    def from_module(cls, module):
        params = module.params
        return cls(params['api_url'], timeout=params['timeout'], validate_certs=params['validate_certs'])

    def url(self, path):
        return self.base + path

    @staticmethod
    def quote(segment):
        """One path segment (a user name, a key name), percent-encoded."""
        return urllib.parse.quote(segment, safe='')

    def _record(self, method, path, status):
        self.requests.append('{0} {1} {2}'.format(method, path, status))

    def request(self, method, path, token=None, body=None):
        """Send one request; returns ``(status, parsed JSON body or None)`` for every HTTP status.

        Raises EmqxApiError when no HTTP answer arrives (refused, timeout, TLS, redirect).
        """
        url = self.url(path)
        headers = {'Accept': 'application/json'}
        data = None
        if body is not None:
            data = json.dumps(body).encode('utf-8')
            headers['Content-Type'] = 'application/json'
        if token is not None:
            headers['Authorization'] = 'Bearer ' + token
        try:
            response = open_url(url, data=data, headers=headers, method=method, timeout=self.timeout,
                                validate_certs=self.validate_certs, follow_redirects='none',
                                http_agent=_USER_AGENT, use_netrc=False)
            status = response.getcode()
            raw = response.read()
        except urllib.error.HTTPError as exc:
            status = exc.code
            if 300 <= status < 400:
                self._record(method, path, status)
                location = exc.headers.get('Location') if exc.headers is not None else None
                raise EmqxApiError(
                    '{0} {1} answered with a redirect ({2}) to {3}, which this module does not follow; set api_url '
                    'to the address the dashboard listener serves.'.format(method, url, status, location or exc.url),
                    url=url, status=status)
            try:
                raw = exc.read()
            except (OSError, http.client.HTTPException, AttributeError):
                raw = b''
        except (urllib.error.URLError, UrlsConnectionError, http.client.HTTPException, OSError, ValueError) as exc:
            self._record(method, path, 'no answer')
            raise EmqxApiError(self._transport_error(method, url, exc), url=url)
        self._record(method, path, status)
        return status, self._parse(raw)

    @staticmethod
    def _parse(raw):
        if not raw:
            return None
        try:
            return json.loads(raw.decode('utf-8'))
        except (ValueError, UnicodeDecodeError):
            return None

    def _transport_error(self, method, url, exc):
        reason = getattr(exc, 'reason', None) or exc
        text = str(reason).strip() or type(reason).__name__
        hint = 'check that EMQX runs and that its dashboard listener is reachable from this host'
        if 'CERTIFICATE_VERIFY_FAILED' in text or 'certificate' in text.lower():
            hint = 'the dashboard certificate does not verify; give it a certificate this host trusts, or set validate_certs=false'
        elif isinstance(reason, (socket.timeout, TimeoutError)) or 'timed out' in text:
            hint = 'raise timeout, or check that a firewall does not drop the dashboard port'
        return 'No answer to {0} {1}: {2}; {3}.'.format(method, url, text.rstrip('.'), hint)

    def error(self, what, method, path, status, data):
        """An EmqxApiError that says ``what`` failed, with the URL, the status and EMQX's words."""
        return EmqxApiError('{0}: {1} {2} answered {3}.'.format(what, method, self.url(path), describe(status, data)),
                            url=self.url(path), status=status, code=error_code(data))

    def login(self, username, password):
        """A bearer token for ``username``; None when EMQX says the credentials are wrong (401)."""
        status, data = self.request('POST', '/login', body=dict(username=username, password=password))
        if status == 200 and isinstance(data, dict) and data.get('token'):
            return data['token']
        if status == 401:
            return None
        if status == 404:
            raise EmqxApiError(
                'POST {0} answered 404: api_url must point at the API base path of the dashboard listener, '
                'for example http://10.0.0.1:18083/api/v5.'.format(self.url('/login')),
                url=self.url('/login'), status=status, code=error_code(data))
        if status == 200:
            raise EmqxApiError('POST {0} answered 200 without a token; is api_url the EMQX 5 dashboard API?'
                               .format(self.url('/login')), url=self.url('/login'), status=status)
        raise self.error('Cannot log in as dashboard user {0}'.format(username), 'POST', '/login', status, data)

    def logout(self, username, token):
        """Drop ``token`` on the EMQX side; never raises, returns whether EMQX confirmed it."""
        try:
            status, data = self.request('POST', '/logout', token=token, body=dict(username=username))
        except EmqxApiError:
            return False
        return status == 204


def api_params_problem(params):
    """A sentence saying what is wrong with the options of ``iothub.emq.emqx_api``, or None."""
    problem = check_api_url(params['api_url'])
    if problem:
        return problem
    if params['timeout'] <= 0:
        return 'timeout must be 1 or more seconds.'
    return None


class EmqxApiJob(object):
    """What a module that logs in as a dashboard user shares: its client, its token and its results.

    A subclass writes :meth:`run`, which calls :meth:`exit` or :meth:`fail` (both log out first), and
    :meth:`fields` (its own return values) and :meth:`diff`. Every message goes through :func:`redact`
    with :meth:`secrets`, so no password reaches a result.
    """

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.username = module.params['username']
        self.api = EmqxApi.from_module(module)
        self.changed = False
        self.token = None

    # -- what a subclass says about its results ---------------------------------------------

    def secrets(self):
        """Every value that must never appear in a result."""
        return [self.params['password']]

    def fields(self):
        """The module's own return values, besides changed, msg, requests and diff."""
        return {}

    def diff(self):
        """The diff in diff mode, or None for none."""
        return None

    def run(self):
        raise NotImplementedError

    # -- results -----------------------------------------------------------------------------

    def result(self, msg, **extra):
        result = dict(changed=self.changed, msg=redact(msg, self.secrets()))
        result.update(self.fields())
        result['requests'] = list(self.api.requests)
        if self.module._diff:
            diff = self.diff()
            if diff is not None:
                result['diff'] = diff
        result.update(extra)
        return result

    def _logout(self):
        if self.token is not None:
            self.api.logout(self.username, self.token)
            self.token = None

    def exit(self, msg):
        self._logout()
        self.module.exit_json(**self.result(msg))

    def fail(self, msg, **extra):
        self._logout()
        self.module.fail_json(**self.result(msg, **extra))

    def execute(self):
        """:meth:`run`; when a request gets no usable answer, fail with its URL and status (no logout)."""
        try:
            self.run()
        except EmqxApiError as exc:
            result = self.result(exc.msg)
            result.update(exc.fail_kwargs())
            result['msg'] = redact(result['msg'], self.secrets())
            self.module.fail_json(**result)
