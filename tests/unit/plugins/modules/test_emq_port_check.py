# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""emq_port_check against real servers on 127.0.0.1 started by the tests (loopback only)."""

from __future__ import annotations

import socket
import ssl
import threading
from unittest import mock

import pytest

from ansible_collections.iothub.emq.plugins.module_utils import port_probe
from ansible_collections.iothub.emq.plugins.modules import emq_port_check
from ansible_collections.iothub.emq.tests.unit.plugins.modules.loopback import (
    LOOPBACK,
    TIMEOUT,
    closed_port,
    connack,
    parse_connect,
    read_mqtt,
    recv_exact,
    server_context,
    ws_upgrade,
)


# -- servers -------------------------------------------------------------------------------


class Server(object):
    """Accepts connections on 127.0.0.1 in a thread and hands each to handler(conn, server)."""

    def __init__(self, handler, tls=None):
        self.handler = handler
        self.tls = tls
        self.seen = []
        self.errors = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((LOOPBACK, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stopped.is_set():
            try:
                conn, addr = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(TIMEOUT)
            try:
                if self.tls is not None:
                    conn = self.tls.wrap_socket(conn, server_side=True)
                self.handler(conn, self)
            except Exception as exc:  # the client may abort on purpose (failed verification)
                self.errors.append(exc)
            finally:
                conn.close()

    def close(self):
        self.stopped.set()
        self.sock.close()
        self.thread.join(5)


@pytest.fixture
def serve():
    servers = []

    def start(handler, tls=None):
        server = Server(handler, tls)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def mqtt_broker(rc=0, reason_string=None):
    def handler(conn, server):
        header, body = read_mqtt(lambda n: recv_exact(conn, n))
        assert header == 0x10
        fields = parse_connect(body)
        server.seen.append(fields)
        conn.sendall(connack(rc, fields['level'], reason_string))
        try:
            server.seen.append(('after', conn.recv(2)))
        except OSError:
            pass
    return handler


def silent_broker(conn, server):
    read_mqtt(lambda n: recv_exact(conn, n))
    server.seen.append('connect')


def just_close(conn, server):
    server.seen.append('accepted')


def ws_broker(path='/mqtt', rc=0):
    def handler(conn, server):
        ws = ws_upgrade(conn, path, server.seen)
        if ws is None:
            return
        try:
            header, body = read_mqtt(ws.read)
        except EOFError:
            server.seen.append('no mqtt')
            return
        fields = parse_connect(body)
        server.seen.append(fields)
        ws.send(connack(rc, fields['level']))
        try:
            conn.recv(16)
        except OSError:
            pass
    return handler


# -- helpers ---------------------------------------------------------------------------------


def check(run_module, endpoints, **kwargs):
    args = dict(endpoints=endpoints, timeout=TIMEOUT)
    return run_module(emq_port_check.main, args, **kwargs)


# -- TCP ---------------------------------------------------------------------------------------


def test_tcp_open_and_closed(run_module, serve):
    server = serve(just_close)
    free = closed_port()
    result = check(run_module, [
        dict(host=LOOPBACK, port=server.port),
        dict(host=LOOPBACK, port=free, state='closed'),
    ])
    assert not result['failed']
    assert result['changed'] is False
    first, second = result['results']
    assert first['ok'] and first['reachable'] and first['address'] == LOOPBACK
    assert first['error'] is None and first['failures'] == []
    assert second['ok'] and not second['reachable']
    assert second['error'] == 'connection refused'
    assert result['failed_endpoints'] == []
    assert result['msg'] == 'All 2 endpoints met their expectations.'


def test_expectations_not_met_listed_one_per_line(run_module, serve):
    server = serve(just_close)
    free = closed_port()
    result = check(run_module, [
        dict(host=LOOPBACK, port=server.port, state='closed', name='dashboard'),
        dict(host=LOOPBACK, port=free),
        dict(host=LOOPBACK, port=server.port),
    ])
    assert result['failed']
    lines = result['msg'].splitlines()
    assert lines[0] == '2 of 3 endpoints failed:'
    assert lines[1] == 'dashboard: the port is open, expected closed'
    assert lines[2] == 'tcp://127.0.0.1:{0}: cannot connect: connection refused'.format(free)
    assert len(lines) == 3
    assert result['failed_endpoints'] == ['dashboard', 'tcp://127.0.0.1:{0}'.format(free)]
    assert [r['ok'] for r in result['results']] == [False, False, True]


def test_check_mode_runs_the_same_checks(run_module, serve):
    server = serve(just_close)
    result = check(run_module, [dict(host=LOOPBACK, port=server.port)], check_mode=True)
    assert not result['failed'] and result['changed'] is False
    assert result['results'][0]['reachable']


def test_unresolvable_host_fails_even_when_closed_is_expected(run_module):
    error = socket.gaierror(socket.EAI_NONAME, 'Name or service not known')
    with mock.patch.object(port_probe.socket, 'create_connection', side_effect=error):
        result = check(run_module, [dict(host='broker.invalid', port=1883, state='closed')])
    assert result['failed']
    assert 'cannot resolve the host name' in result['msg']


def test_filtered_port_counts_as_closed(run_module):
    with mock.patch.object(port_probe.socket, 'create_connection', side_effect=socket.timeout('timed out')):
        result = check(run_module, [dict(host='10.255.255.1', port=18083, state='closed', timeout=1.5)])
    assert not result['failed']
    assert result['results'][0]['error'] == 'timed out after 1.5 seconds'


# -- TLS ---------------------------------------------------------------------------------------


def test_tls_verified(run_module, serve, pki):
    server = serve(just_close, tls=server_context(pki))
    result = check(run_module, [dict(host=LOOPBACK, port=server.port, type='tls', ca_path=pki['ca.pem'],
                                     server_name='localhost', min_days_to_expiry=7)])
    assert not result['failed'], result['msg']
    tls = result['results'][0]['tls']
    assert tls['verified'] is True
    assert tls['verify_error'] is None
    assert tls['version'].startswith('TLSv1.')
    assert tls['cipher'] and tls['cipher_bits'] >= 128
    assert tls['subject'] == 'CN=localhost,O=iothub'
    assert tls['issuer'] == 'CN=Test CA,O=iothub'
    assert tls['subject_alt_names'] == ['DNS:localhost', 'IP:127.0.0.1']
    assert tls['days_to_expiry'] in (29, 30)
    assert tls['not_after'].endswith('Z')
    assert tls['serial_number']


def test_tls_verified_by_ip_san(run_module, serve, pki):
    server = serve(just_close, tls=server_context(pki))
    result = check(run_module, [dict(host=LOOPBACK, port=server.port, type='tls', ca_path=pki['ca.pem'])])
    assert not result['failed'], result['msg']
    assert result['results'][0]['tls']['server_name'] == LOOPBACK


def test_tls_hostname_mismatch(run_module, serve, pki):
    server = serve(just_close, tls=server_context(pki))
    result = check(run_module, [dict(host=LOOPBACK, port=server.port, type='tls', ca_path=pki['ca.pem'],
                                     server_name='mqtt.example.com')])
    assert result['failed']
    tls = result['results'][0]['tls']
    assert tls['verified'] is False
    assert 'mqtt.example.com' in tls['verify_error'] or 'mismatch' in tls['verify_error'].lower()
    # details come from the second, unverified handshake
    assert tls['subject'] == 'CN=localhost,O=iothub'
    assert 'does not verify against' in result['msg']
    assert len(result['msg'].splitlines()) == 2


def test_tls_unknown_ca(run_module, serve, pki):
    server = serve(just_close, tls=server_context(pki))
    result = check(run_module, [dict(host=LOOPBACK, port=server.port, type='tls', server_name='localhost')])
    assert result['failed']
    tls = result['results'][0]['tls']
    assert tls['verified'] is False
    assert 'issuer' in tls['verify_error'] or 'self' in tls['verify_error']
    assert 'the system CA store' in result['msg']
    assert tls['issuer'] == 'CN=Test CA,O=iothub'


@pytest.mark.parametrize('use_cryptography', [True, False])
def test_tls_not_verified_still_decodes_certificate(run_module, serve, pki, use_cryptography):
    if use_cryptography and not port_probe.HAS_CRYPTOGRAPHY:
        pytest.skip('cryptography is not installed')
    server = serve(just_close, tls=server_context(pki))
    with mock.patch.object(port_probe, 'HAS_CRYPTOGRAPHY', use_cryptography):
        result = check(run_module, [dict(host=LOOPBACK, port=server.port, type='tls', verify=False)])
    assert not result['failed'], result['msg']
    tls = result['results'][0]['tls']
    assert tls['verified'] is None
    assert tls['decoder'] == ('cryptography' if use_cryptography else 'ssl')
    assert tls['subject'] == 'CN=localhost,O=iothub'
    assert tls['issuer'] == 'CN=Test CA,O=iothub'
    assert tls['subject_alt_names'] == ['DNS:localhost', 'IP:127.0.0.1']
    assert tls['days_to_expiry'] in (29, 30)


def test_decoders_agree(pki):
    with open(pki['server.pem']) as handle:
        der = ssl.PEM_cert_to_DER_cert(handle.read())
    stdlib = port_probe.certificate_details(der, use_cryptography=False)
    assert stdlib['decoder'] == 'ssl'
    if port_probe.HAS_CRYPTOGRAPHY:
        crypto = port_probe.certificate_details(der, use_cryptography=True)
        for key in ('subject', 'issuer', 'subject_alt_names', 'serial_number', 'not_before', 'not_after',
                    'days_to_expiry'):
            assert crypto[key] == stdlib[key], key


def test_no_decoder_left(pki):
    with open(pki['server.pem']) as handle:
        der = ssl.PEM_cert_to_DER_cert(handle.read())
    with mock.patch.object(port_probe, 'details_from_stdlib', return_value=None):
        assert port_probe.certificate_details(der, use_cryptography=False) is None


def test_tls_expiry_too_close(run_module, serve, pki):
    server = serve(just_close, tls=server_context(pki))
    result = check(run_module, [dict(host=LOOPBACK, port=server.port, type='tls', ca_path=pki['ca.pem'],
                                     server_name='localhost', min_days_to_expiry=60)])
    assert result['failed']
    assert 'fewer than the 60 required' in result['msg']
    assert result['results'][0]['tls']['verified'] is True


def test_tls_expiry_within_the_warning_days_warns_and_passes(run_module, serve, pki):
    server = serve(just_close, tls=server_context(pki))
    result = check(run_module, [dict(host=LOOPBACK, port=server.port, type='tls', ca_path=pki['ca.pem'], name='front',
                                     server_name='localhost', warn_days_to_expiry=45, min_days_to_expiry=7)])
    assert not result['failed'], result['msg']
    assert result['expiring_endpoints'] == ['front']
    assert any('front: the certificate expires in' in w and 'fewer than the 45 of warn_days_to_expiry' in w
               for w in result.get('warnings', [])), result.get('warnings')


def test_tls_expiry_beyond_the_warning_days_is_quiet(run_module, serve, pki):
    server = serve(just_close, tls=server_context(pki))
    result = check(run_module, [dict(host=LOOPBACK, port=server.port, type='tls', ca_path=pki['ca.pem'],
                                     server_name='localhost', warn_days_to_expiry=7)])
    assert not result['failed'], result['msg']
    assert result['expiring_endpoints'] == []
    assert not result.get('warnings')


def test_tls_on_a_plain_port(run_module, serve):
    server = serve(just_close)
    result = check(run_module, [dict(host=LOOPBACK, port=server.port, type='tls', verify=False)])
    assert result['failed']
    assert 'TLS handshake failed' in result['results'][0]['error']


def test_mutual_tls_with_client_certificate(run_module, serve, pki):
    server = serve(lambda conn, srv: srv.seen.append(conn.getpeercert()),
                   tls=server_context(pki, require_client_cert=True))
    result = check(run_module, [dict(host=LOOPBACK, port=server.port, type='tls', ca_path=pki['ca.pem'],
                                     server_name='localhost', client_cert=pki['client.pem'],
                                     client_key=pki['client.key'])])
    assert not result['failed'], result['msg']


# -- MQTT --------------------------------------------------------------------------------------


def test_mqtt_accepted_with_credentials(run_module, serve):
    server = serve(mqtt_broker(rc=0))
    result = check(run_module, [dict(host=LOOPBACK, port=server.port, type='mqtt', username='probe',
                                     password='s3cret', client_id='probe-1')])
    assert not result['failed'], result['msg']
    mqtt = result['results'][0]['mqtt']
    assert mqtt == dict(protocol_version=4, client_id='probe-1', return_code=0,
                        return_code_name='Connection Accepted', session_present=False, properties={})
    fields = server.seen[0]
    assert fields == dict(protocol='MQTT', level=4, clean=True, keepalive=30, client_id='probe-1',
                          username='probe', password='s3cret')
    assert 's3cret' not in repr(result['results'])


def test_mqtt_default_client_id_is_random(run_module, serve):
    server = serve(mqtt_broker(rc=0))
    result = check(run_module, [dict(host=LOOPBACK, port=server.port, type='mqtt')] * 2)
    ids = [r['mqtt']['client_id'] for r in result['results']]
    assert ids[0].startswith('emq-port-check-') and ids[0] != ids[1]
    assert server.seen[0]['username'] is None and server.seen[0]['password'] is None


def test_mqtt_refused(run_module, serve):
    server = serve(mqtt_broker(rc=5))
    result = check(run_module, [dict(host=LOOPBACK, port=server.port, type='mqtt', name='anon')])
    assert result['failed']
    assert result['msg'].splitlines()[1] == 'anon: CONNACK 5 (Not authorized), expected 0 (Connection Accepted)'
    assert result['results'][0]['mqtt']['return_code'] == 5


def test_mqtt_refusal_expected(run_module, serve):
    server = serve(mqtt_broker(rc=5))
    result = check(run_module, [dict(host=LOOPBACK, port=server.port, type='mqtt', expect_rc=5)])
    assert not result['failed']
    assert result['results'][0]['mqtt']['return_code_name'] == 'Not authorized'


def test_mqtt5_reason_code_and_properties(run_module, serve):
    server = serve(mqtt_broker(rc=135, reason_string='not allowed'))
    result = check(run_module, [dict(host=LOOPBACK, port=server.port, type='mqtt', protocol_version=5,
                                     password='only-a-password')])
    assert result['failed']
    mqtt = result['results'][0]['mqtt']
    assert mqtt['protocol_version'] == 5
    assert mqtt['return_code'] == 135
    assert mqtt['return_code_name'] == 'Not authorized'
    assert mqtt['properties'] == dict(reason_string='not allowed', maximum_qos=1)
    assert 'CONNACK 135 (Not authorized), expected 0 (Success)' in result['msg']
    assert server.seen[0]['level'] == 5 and server.seen[0]['password'] == 'only-a-password'


def test_mqtt_no_connack(run_module, serve):
    server = serve(silent_broker)
    result = check(run_module, [dict(host=LOOPBACK, port=server.port, type='mqtt')])
    assert result['failed']
    assert 'no CONNACK' in result['results'][0]['error']
    assert result['results'][0]['reachable'] is True


def test_mqtts(run_module, serve, pki):
    server = serve(mqtt_broker(rc=0), tls=server_context(pki))
    result = check(run_module, [dict(host=LOOPBACK, port=server.port, type='mqtts', ca_path=pki['ca.pem'],
                                     server_name='localhost')])
    assert not result['failed'], result['msg']
    res = result['results'][0]
    assert res['tls']['verified'] is True
    assert res['mqtt']['return_code'] == 0


def test_mqtts_unverified_certificate_still_reports_connack(run_module, serve, pki):
    server = serve(mqtt_broker(rc=0), tls=server_context(pki))
    result = check(run_module, [dict(host=LOOPBACK, port=server.port, type='mqtts', server_name='localhost')])
    assert result['failed']
    res = result['results'][0]
    assert res['tls']['verified'] is False
    assert res['mqtt']['return_code'] == 0
    assert len(res['failures']) == 1


# -- WebSocket -----------------------------------------------------------------------------------


def test_ws(run_module, serve):
    server = serve(ws_broker())
    result = check(run_module, [dict(host=LOOPBACK, port=server.port, type='ws')])
    assert not result['failed'], result['msg']
    res = result['results'][0]
    assert res['websocket'] == dict(path='/mqtt', status=101, subprotocol='mqtt')
    assert res['mqtt']['return_code'] == 0
    request = server.seen[0]
    assert request['path'] == '/mqtt'
    assert request['headers']['sec-websocket-protocol'] == 'mqtt'
    assert request['headers']['upgrade'].lower() == 'websocket'
    assert request['headers']['host'] == '127.0.0.1:{0}'.format(server.port)


def test_ws_wrong_path(run_module, serve):
    server = serve(ws_broker(path='/mqtt'))
    result = check(run_module, [dict(host=LOOPBACK, port=server.port, type='ws', path='/other')])
    assert result['failed']
    res = result['results'][0]
    assert res['websocket']['status'] == 404
    assert 'HTTP 404 Not Found' in res['error']


def test_ws_upgrade_only(run_module, serve):
    server = serve(ws_broker())
    result = check(run_module, [dict(host=LOOPBACK, port=server.port, type='ws', mqtt_connect=False)])
    assert not result['failed'], result['msg']
    assert result['results'][0]['mqtt'] is None
    assert result['results'][0]['websocket']['status'] == 101


def test_ws_refused_connack(run_module, serve):
    server = serve(ws_broker(rc=4))
    result = check(run_module, [dict(host=LOOPBACK, port=server.port, type='ws')])
    assert result['failed']
    assert 'CONNACK 4 (Bad user name or password)' in result['msg']


def test_wss(run_module, serve, pki):
    server = serve(ws_broker(), tls=server_context(pki))
    result = check(run_module, [dict(host=LOOPBACK, port=server.port, type='wss', ca_path=pki['ca.pem'],
                                     server_name='localhost', path='/mqtt')])
    assert not result['failed'], result['msg']
    res = result['results'][0]
    assert res['tls']['verified'] is True
    assert res['websocket']['status'] == 101
    assert res['mqtt']['return_code'] == 0


# -- arguments -------------------------------------------------------------------------------------


@pytest.mark.parametrize('endpoint, message', [
    (dict(host=LOOPBACK, port=0), 'port must be between 1 and 65535'),
    (dict(host=LOOPBACK, port=1883, type='mqtt', password='x'), 'without a username'),
    (dict(host=LOOPBACK, port=8883, type='tls', ca_path='/nonexistent/ca.pem'), 'is not a file'),
    (dict(host=LOOPBACK, port=8883, type='tls', client_key='/etc/hostname'), 'client_key needs client_cert'),
    (dict(host=LOOPBACK, port=8083, type='ws', path='mqtt'), 'path must start with /'),
    (dict(host=LOOPBACK, port=1883, min_days_to_expiry=3), 'need type tls'),
    (dict(host=LOOPBACK, port=1883, timeout=0), 'timeout must be more than 0'),
    (dict(host=LOOPBACK, port=1883, type='quic'), 'value of type must be one of'),
])
def test_bad_endpoints(run_module, endpoint, message):
    result = check(run_module, [endpoint])
    assert result['failed']
    assert message in result['msg']
    assert 'results' not in result


def test_unexpected_error_is_reported_not_raised(run_module, serve):
    server = serve(just_close)
    with mock.patch.object(port_probe, '_probe', side_effect=RuntimeError('boom')):
        result = check(run_module, [dict(host=LOOPBACK, port=server.port), dict(host=LOOPBACK, port=server.port)])
    assert result['failed']
    assert len(result['results']) == 2
    assert result['results'][0]['error'] == 'unexpected error: RuntimeError: boom'
