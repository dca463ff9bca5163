# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""emq_mqtt_roundtrip against a tiny MQTT broker the tests start on 127.0.0.1 (loopback only).

The broker decodes and encodes MQTT on its own (not with the module's code), so the tests check the
bytes the module sends: CONNECT, SUBSCRIBE, PUBLISH, PUBACK and DISCONNECT.
"""

from __future__ import annotations

import socket
import struct
import threading
import time

import pytest

from ansible_collections.iothub.emq.plugins.modules import emq_mqtt_roundtrip
from ansible_collections.iothub.emq.tests.unit.plugins.modules.loopback import (
    LOOPBACK,
    closed_port,
    connack,
    parse_connect,
    read_mqtt,
    recv_exact,
    server_context,
    skip_properties,
    string_at,
    varint,
    ws_upgrade,
)


CONN_TIMEOUT = 10  # the broker drops a connection that says nothing for this long


class Client(object):
    """One connection to the broker, as the broker sees it."""

    def __init__(self, send, listener):
        self._send = send
        self.lock = threading.Lock()
        self.listener = listener
        self.fields = None
        self.level = 4
        self.next_id = 0

    def send(self, data):
        with self.lock:
            self._send(data)

    @property
    def client_id(self):
        return self.fields['client_id'] if self.fields else None


class Broker(object):
    """A tiny MQTT 3.1.1/5 broker: CONNACK, SUBACK, PUBACK, PINGRESP, routes a PUBLISH to the
    subscribers of exactly its topic. Each listener (plain, TLS, WebSocket, secure WebSocket) gets its own
    port on 127.0.0.1; all share one routing table. The knobs make it misbehave for the failure tests."""

    def __init__(self, listeners=None, connack_rc=0, answer_connect=True, suback_code=None, answer_subscribe=True,
                 puback_code=0, answer_publish=True, route=True, stray_first=False, kick_on_publish=None,
                 ws_path='/mqtt'):
        self.connack_rc = connack_rc
        self.answer_connect = answer_connect
        self.suback_code = suback_code
        self.answer_subscribe = answer_subscribe
        self.puback_code = puback_code
        self.answer_publish = answer_publish
        self.route = route
        self.stray_first = stray_first
        self.kick_on_publish = kick_on_publish
        self.ws_path = ws_path
        self.lock = threading.Lock()
        self.subscriptions = []  # (Client, topic, granted qos)
        self.events = []
        self.errors = []
        self.requests = []  # WebSocket upgrade requests
        self.stopped = threading.Event()
        self.threads = []
        self.socks = []
        self.conns = []
        self.ports = []
        for listener in listeners or [dict()]:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((LOOPBACK, 0))
            sock.listen(16)
            sock.settimeout(0.2)
            self.socks.append(sock)
            self.ports.append(sock.getsockname()[1])
            self._start(self._accept, sock, listener)

    @property
    def port(self):
        return self.ports[0]

    def _start(self, target, *args):
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _accept(self, sock, listener):
        while not self.stopped.is_set():
            try:
                conn, addr = sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.conns.append(conn)
            self._start(self._serve, conn, listener)

    def record(self, *event):
        with self.lock:
            self.events.append(event)

    def kinds(self, kind):
        return [e for e in self.events if e[0] == kind]

    def wait_for(self, kind, count=1, timeout=3):
        """Wait until the broker recorded count events of a kind (its threads run behind the module)."""
        deadline = time.monotonic() + timeout
        while len(self.kinds(kind)) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.kinds(kind)

    def _serve(self, conn, listener):
        try:
            conn.settimeout(CONN_TIMEOUT)
            if listener.get('tls') is not None:
                conn = listener['tls'].wrap_socket(conn, server_side=True)
            if listener.get('ws'):
                ws = ws_upgrade(conn, self.ws_path, self.requests)
                if ws is None:
                    return
                read, send = ws.read, ws.send
            else:
                def read(n):
                    return recv_exact(conn, n)
                send = conn.sendall
            self._session(Client(send, listener.get('name')), read)
        except EOFError:
            pass
        except Exception as exc:  # a client that aborts on purpose (failed verification) lands here too
            self.errors.append(exc)
        finally:
            conn.close()

    def _session(self, client, read):
        header, body = read_mqtt(read)
        assert header == 0x10, 'the first packet must be CONNECT'
        client.fields = parse_connect(body)
        client.level = client.fields['level']
        self.record('connect', client.listener, client.fields)
        if not self.answer_connect:
            read(1)
            return
        client.send(connack(self.connack_rc, client.level))
        if self.connack_rc:
            return
        while True:
            header, body = read_mqtt(read)
            kind = header >> 4
            if kind == 8:
                assert header & 0x0F == 0x02, 'SUBSCRIBE flags must be 0010'
                self._subscribe(client, body)
            elif kind == 3:
                self._publish(client, header, body)
            elif kind == 4:
                self.record('puback', client.client_id, struct.unpack('!H', body[:2])[0], body[2:])
            elif kind == 12:
                client.send(b'\xd0\x00')
            elif kind == 14:
                self.record('disconnect', client.client_id, body)
                with self.lock:
                    self.subscriptions = [s for s in self.subscriptions if s[0] is not client]
                return
            else:
                raise AssertionError('unexpected packet type {0}'.format(kind))

    def _subscribe(self, client, body):
        packet_id = struct.unpack('!H', body[:2])[0]
        pos = 2
        if client.level == 5:
            pos = skip_properties(body, pos)
        topic, pos = string_at(body, pos)
        options = body[pos]
        assert pos + 1 == len(body), 'one topic filter per SUBSCRIBE'
        qos = options & 0x03
        self.record('subscribe', client.client_id, topic.decode(), qos, options)
        if not self.answer_subscribe:
            return
        code = qos if self.suback_code is None else self.suback_code
        if code < 0x80:
            with self.lock:
                self.subscriptions.append((client, topic.decode(), code))
        props = b'\x00' if client.level == 5 else b''
        reply = struct.pack('!H', packet_id) + props + bytes([code])
        client.send(bytes([0x90]) + varint(len(reply)) + reply)

    def _publish(self, client, header, body):
        qos = (header >> 1) & 0x03
        topic, pos = string_at(body, 0)
        packet_id = None
        if qos:
            packet_id = struct.unpack('!H', body[pos:pos + 2])[0]
            pos += 2
        if client.level == 5:
            pos = skip_properties(body, pos)
        payload = body[pos:]
        self.record('publish', client.client_id, topic.decode(), qos, payload, bool(header & 0x01))
        with self.lock:
            targets = [(c, q) for c, t, q in self.subscriptions if t == topic.decode()]
        if self.kick_on_publish is not None:
            for target, granted in targets:
                target.send(b'\xe0\x02' + bytes([self.kick_on_publish, 0]))
        elif self.route:
            for target, granted in targets:
                if self.stray_first:
                    self._deliver(target, topic, b'stray ' + payload, min(qos, granted))
                self._deliver(target, topic, payload, min(qos, granted))
        if qos and self.answer_publish:
            reply = struct.pack('!H', packet_id)
            if client.level == 5 and self.puback_code:
                reply += bytes([self.puback_code, 0])
            client.send(bytes([0x40]) + varint(len(reply)) + reply)

    def _deliver(self, target, topic, payload, qos):
        var = struct.pack('!H', len(topic)) + topic
        if qos:
            target.next_id += 1
            var += struct.pack('!H', target.next_id)
        if target.level == 5:
            var += b'\x00'
        packet = var + payload
        target.send(bytes([0x30 | (qos << 1)]) + varint(len(packet)) + packet)
        self.record('deliver', target.client_id, qos, payload)

    def close(self):
        self.stopped.set()
        for sock in self.socks + self.conns:
            try:
                sock.close()
            except OSError:
                pass
        for thread in self.threads:
            thread.join(5)


@pytest.fixture
def broker():
    brokers = []

    def start(**kwargs):
        b = Broker(**kwargs)
        brokers.append(b)
        return b

    yield start
    for b in brokers:
        b.close()


def roundtrip(run_module, subscriber, publisher=None, check_mode=False, **kwargs):
    args = dict(subscriber=subscriber, timeout=2, connect_timeout=2)
    if publisher is not None:
        args['publisher'] = publisher
    args.update(kwargs)
    return run_module(emq_mqtt_roundtrip.main, args, check_mode=check_mode)


def tcp(port, **kwargs):
    return dict(host=LOOPBACK, port=port, transport='tcp', **kwargs)


# -- the round trip ----------------------------------------------------------------------------


def test_qos1_roundtrip_over_tcp(run_module, broker):
    b = broker()
    result = roundtrip(run_module, tcp(b.port))
    assert not result['failed'], result['msg']
    assert result['changed'] is False
    assert result['received'] is True
    assert result['failed_step'] is None
    assert result['latency_ms'] >= 0
    assert result['topic'].startswith('iothub-emq/verify/')
    assert result['qos'] == 1 and result['received_qos'] == 1
    assert result['protocol_version'] == 4
    sub, pub = result['subscriber'], result['publisher']
    endpoint = 'tcp://127.0.0.1:{0}'.format(b.port)
    assert sub['endpoint'] == pub['endpoint'] == endpoint
    assert sub['address'] == LOOPBACK
    assert sub['connack'] == dict(return_code=0, return_code_name='Connection Accepted', session_present=False,
                                  properties={})
    assert pub['connack']['return_code'] == 0
    assert sub['suback'] == dict(reason_code=1, reason_code_name='Success - Maximum QoS 1', granted_qos=1)
    assert pub['puback'] == dict(reason_code=0, reason_code_name='Success')
    assert sub['tls'] is None and sub['websocket'] is None
    assert result['msg'].startswith('The message published through {0} was received through {0} after'.format(endpoint))
    assert result['warnings'] == []

    # what went over the wire, as the broker decoded it
    token = result['topic'].rsplit('/', 1)[1]
    connects = [e[2] for e in b.kinds('connect')]
    assert [c['client_id'] for c in connects] == ['emq-roundtrip-sub-' + token, 'emq-roundtrip-pub-' + token]
    assert all(c['clean'] and c['level'] == 4 and c['keepalive'] >= 60 for c in connects)
    assert b.kinds('subscribe') == [('subscribe', sub['client_id'], result['topic'], 1, 1)]
    assert b.kinds('publish') == [('publish', pub['client_id'], result['topic'], 1,
                                   result['payload'].encode(), False)]
    # the subscriber acknowledged the QoS 1 delivery, and both clients said goodbye
    assert b.wait_for('puback') == [('puback', sub['client_id'], 1, b'')]
    assert len(b.wait_for('disconnect', 2)) == 2
    assert not b.errors


def test_qos0_mqtt5_between_two_listeners(run_module, broker):
    b = broker(listeners=[dict(name='a'), dict(name='b')])
    result = roundtrip(run_module, tcp(b.ports[0], client_id='sub-1'), dict(port=b.ports[1], client_id='pub-1'),
                       qos=0, protocol_version=5, topic='probes/roundtrip', payload='hello')
    assert not result['failed'], result['msg']
    assert result['received_qos'] == 0
    assert result['publisher']['puback'] is None
    assert result['subscriber']['suback']['reason_code_name'] == 'Granted QoS 0'
    assert result['publisher']['endpoint'] == 'tcp://127.0.0.1:{0}'.format(b.ports[1])
    assert [(e[1], e[2]['client_id'], e[2]['level']) for e in b.kinds('connect')] == [('a', 'sub-1', 5), ('b', 'pub-1', 5)]
    assert b.kinds('publish') == [('publish', 'pub-1', 'probes/roundtrip', 0, b'hello', False)]
    assert b.kinds('puback') == []


def test_publisher_inherits_the_subscriber_and_credentials_stay_out_of_the_result(run_module, broker):
    b = broker()
    result = roundtrip(run_module, tcp(b.port, username='probe', password='s3cret'))
    assert not result['failed'], result['msg']
    connects = [e[2] for e in b.kinds('connect')]
    assert [(c['username'], c['password']) for c in connects] == [('probe', 's3cret')] * 2
    assert connects[0]['client_id'] != connects[1]['client_id']
    assert 's3cret' not in repr(result)


def test_other_messages_on_the_topic_are_skipped(run_module, broker):
    b = broker(stray_first=True)
    result = roundtrip(run_module, tcp(b.port))
    assert not result['failed'], result['msg']
    # both deliveries were acknowledged, only the right one counted
    assert [e[3] for e in b.wait_for('deliver', 2)] == [b'stray ' + result['payload'].encode(), result['payload'].encode()]
    assert len(b.wait_for('puback', 2)) == 2


def test_granted_qos_lower_than_asked(run_module, broker):
    b = broker(suback_code=0)
    result = roundtrip(run_module, tcp(b.port))
    assert not result['failed'], result['msg']
    assert result['subscriber']['suback']['granted_qos'] == 0
    assert result['received_qos'] == 0


def test_check_mode_still_runs(run_module, broker):
    b = broker()
    result = roundtrip(run_module, tcp(b.port), check_mode=True)
    assert not result['failed'] and result['changed'] is False
    assert result['received'] is True
    assert len(b.kinds('publish')) == 1


def test_ws_subscriber_and_tcp_publisher(run_module, broker):
    b = broker(listeners=[dict(ws=True), dict()])
    result = roundtrip(run_module, dict(host=LOOPBACK, port=b.ports[0], transport='ws'),
                       dict(transport='tcp', port=b.ports[1]))
    assert not result['failed'], result['msg']
    assert result['subscriber']['websocket'] == dict(path='/mqtt', status=101, subprotocol='mqtt')
    assert result['subscriber']['endpoint'] == 'ws://127.0.0.1:{0}/mqtt'.format(b.ports[0])
    assert result['publisher']['websocket'] is None
    request = b.requests[0]
    assert request['headers']['user-agent'] == 'iothub.emq.emq_mqtt_roundtrip'
    assert request['headers']['sec-websocket-protocol'] == 'mqtt'


# -- TLS ---------------------------------------------------------------------------------------------


def test_tls_subscriber_and_wss_publisher_verified(run_module, broker, pki):
    ctx = server_context(pki)
    b = broker(listeners=[dict(tls=ctx), dict(tls=ctx, ws=True)])
    result = roundtrip(run_module,
                       dict(host=LOOPBACK, port=b.ports[0], transport='tls', ca_path=pki['ca.pem'], server_name='localhost'),
                       dict(port=b.ports[1], transport='wss'))
    assert not result['failed'], result['msg']
    for side in ('subscriber', 'publisher'):
        tls = result[side]['tls']
        assert tls['version'].startswith('TLSv1.'), side
        assert tls['verified'] is True
        assert tls['server_name'] == 'localhost'
        assert tls['cipher'] and tls['cipher_bits'] >= 128
    assert result['publisher']['websocket']['status'] == 101
    assert result['received'] is True


def test_tls_by_ip_san_and_client_certificate(run_module, broker, pki):
    b = broker(listeners=[dict(tls=server_context(pki, require_client_cert=True))])
    result = roundtrip(run_module, dict(host=LOOPBACK, port=b.port, transport='tls', ca_path=pki['ca.pem'],
                                        client_cert=pki['client.pem'], client_key=pki['client.key']))
    assert not result['failed'], result['msg']
    assert result['subscriber']['tls']['server_name'] == LOOPBACK


def test_tls_not_verified_when_asked(run_module, broker, pki):
    b = broker(listeners=[dict(tls=server_context(pki))])
    result = roundtrip(run_module, dict(host=LOOPBACK, port=b.port, validate_certs=False))
    assert not result['failed'], result['msg']
    assert result['subscriber']['tls']['verified'] is None
    assert result['subscriber']['endpoint'] == 'tls://127.0.0.1:{0}'.format(b.port)


# -- each step that can fail -------------------------------------------------------------------------


def test_connect_a_refused_port(run_module):
    port = closed_port()
    result = roundtrip(run_module, tcp(port))
    assert result['failed']
    assert result['failed_step'] == 'connect A'
    assert result['msg'] == ("Step 'connect A' failed: the subscriber could not connect to tcp://127.0.0.1:{0}: "
                             "connection refused.".format(port))
    assert result['received'] is False and result['latency_ms'] is None
    assert result['subscriber']['connack'] is None


def test_connect_a_certificate_does_not_verify(run_module, broker, pki):
    b = broker(listeners=[dict(tls=server_context(pki))])
    result = roundtrip(run_module, dict(host=LOOPBACK, port=b.port, server_name='localhost'))
    assert result['failed']
    assert result['failed_step'] == 'connect A'
    assert 'the certificate does not verify against the system CA store for localhost' in result['msg']
    assert result['msg'].count('.') >= 1 and not result['msg'].endswith('..')
    assert b.kinds('connect') == []


def test_connect_a_connack_refused(run_module, broker):
    b = broker(connack_rc=5)
    result = roundtrip(run_module, tcp(b.port))
    assert result['failed_step'] == 'connect A'
    assert result['msg'] == ("Step 'connect A' failed: tcp://127.0.0.1:{0} refused the subscriber: "
                             "CONNACK 5 (Not authorized).".format(b.port))
    assert result['subscriber']['connack']['return_code'] == 5


def test_connect_a_no_connack(run_module, broker):
    b = broker(answer_connect=False)
    started = time.monotonic()
    result = roundtrip(run_module, tcp(b.port), connect_timeout=0.5)
    assert time.monotonic() - started < 3
    assert result['failed_step'] == 'connect A'
    assert 'got no CONNACK from tcp://127.0.0.1:{0} within 0.5 seconds'.format(b.port) in result['msg']


def test_connect_a_wrong_websocket_path(run_module, broker):
    b = broker(listeners=[dict(ws=True)])
    result = roundtrip(run_module, dict(host=LOOPBACK, port=b.port, transport='ws', path='/other'))
    assert result['failed_step'] == 'connect A'
    assert 'HTTP 404 Not Found' in result['msg']
    assert result['subscriber']['websocket']['status'] == 404


def test_subscribe_refused(run_module, broker):
    b = broker(suback_code=0x80)
    result = roundtrip(run_module, tcp(b.port), topic='t/1')
    assert result['failed_step'] == 'subscribe'
    assert result['msg'] == ("Step 'subscribe' failed: tcp://127.0.0.1:{0} refused the subscription to t/1: "
                             "SUBACK 128 (Failure).".format(b.port))
    assert result['subscriber']['suback']['granted_qos'] is None
    assert len(b.kinds('connect')) == 1  # the publisher never connected
    assert b.wait_for('disconnect')


def test_subscribe_refused_mqtt5(run_module, broker):
    b = broker(suback_code=0x87)
    result = roundtrip(run_module, tcp(b.port), protocol_version=5)
    assert result['failed_step'] == 'subscribe'
    assert 'SUBACK 135 (Not authorized)' in result['msg']


def test_subscribe_no_suback(run_module, broker):
    b = broker(answer_subscribe=False)
    result = roundtrip(run_module, tcp(b.port), connect_timeout=0.5, topic='t/2')
    assert result['failed_step'] == 'subscribe'
    assert 'no SUBACK from tcp://127.0.0.1:{0} for t/2 within 0.5 seconds'.format(b.port) in result['msg']


def test_connect_b_fails_and_the_subscriber_disconnects(run_module, broker):
    b = broker()
    port = closed_port()
    result = roundtrip(run_module, tcp(b.port), dict(port=port))
    assert result['failed_step'] == 'connect B'
    assert result['msg'] == ("Step 'connect B' failed: the publisher could not connect to tcp://127.0.0.1:{0}: "
                             "connection refused.".format(port))
    assert result['subscriber']['suback']['reason_code'] == 1
    assert [e[1] for e in b.wait_for('disconnect')] == [result['subscriber']['client_id']]


def test_connect_b_certificate_does_not_verify(run_module, broker, pki):
    ctx = server_context(pki)
    b = broker(listeners=[dict(tls=ctx), dict(tls=ctx)])
    result = roundtrip(run_module,
                       dict(host=LOOPBACK, port=b.ports[0], ca_path=pki['ca.pem'], server_name='localhost'),
                       dict(port=b.ports[1], server_name='mqtt.example.com'))
    assert result['failed_step'] == 'connect B'
    assert 'the certificate does not verify against {0} for mqtt.example.com'.format(pki['ca.pem']) in result['msg']


def test_publisher_empty_ca_path_means_the_system_store(run_module, broker, pki):
    b = broker(listeners=[dict(tls=server_context(pki))])
    result = roundtrip(run_module, dict(host=LOOPBACK, port=b.port, ca_path=pki['ca.pem'], server_name='localhost'),
                       dict(ca_path=''))
    assert result['failed_step'] == 'connect B'
    assert 'the certificate does not verify against the system CA store for localhost' in result['msg']


def test_publish_refused_mqtt5(run_module, broker):
    b = broker(puback_code=0x87, route=False)
    result = roundtrip(run_module, tcp(b.port), protocol_version=5, topic='t/3', timeout=0.3)
    assert result['failed_step'] == 'publish'
    assert result['msg'] == ("Step 'publish' failed: tcp://127.0.0.1:{0} refused the message to t/3: "
                             "PUBACK 135 (Not authorized).".format(b.port))
    assert result['publisher']['puback'] == dict(reason_code=135, reason_code_name='Not authorized')


def test_publish_no_puback(run_module, broker):
    b = broker(answer_publish=False, route=False)
    result = roundtrip(run_module, tcp(b.port), timeout=0.3, connect_timeout=0.6)
    assert result['failed_step'] == 'publish'
    assert 'no PUBACK from tcp://127.0.0.1:{0} within 0.6 seconds'.format(b.port) in result['msg']


def test_received_without_puback_warns(run_module, broker):
    b = broker(answer_publish=False)
    result = roundtrip(run_module, tcp(b.port), connect_timeout=0.5)
    assert not result['failed'], result['msg']
    assert result['received'] is True
    assert result['warnings'] == ['The message was received, but no PUBACK from tcp://127.0.0.1:{0} within 0.5 seconds.'
                                  .format(b.port)]


@pytest.mark.parametrize('qos', [0, 1])
def test_not_received(run_module, broker, qos):
    b = broker(route=False)
    started = time.monotonic()
    result = roundtrip(run_module, tcp(b.port), topic='t/4', qos=qos, timeout=0.5)
    assert time.monotonic() - started < 3
    assert result['failed']
    assert result['failed_step'] == 'receive'
    assert result['msg'] == ("Step 'receive' failed: the message published through tcp://127.0.0.1:{0} to t/4 "
                             "was not received through tcp://127.0.0.1:{0} within 0.5 seconds.".format(b.port))
    assert result['received'] is False and result['latency_ms'] is None and result['received_qos'] is None
    assert len(b.kinds('publish')) == 1


def test_not_received_says_no_matching_subscribers(run_module, broker):
    b = broker(route=False, puback_code=16)
    result = roundtrip(run_module, tcp(b.port), protocol_version=5, timeout=0.3)
    assert result['failed_step'] == 'receive'
    assert result['msg'].endswith('(tcp://127.0.0.1:{0} answered PUBACK 16, No matching subscribers).'.format(b.port))


def test_subscriber_kicked_out_while_waiting(run_module, broker):
    b = broker(kick_on_publish=0x8E)
    result = roundtrip(run_module, tcp(b.port), protocol_version=5, timeout=1)
    assert result['failed_step'] == 'receive'
    assert "the subscriber's connection failed: the server sent DISCONNECT 142 (Session taken over)" in result['msg']


# -- arguments ----------------------------------------------------------------------------------------


def test_endpoint_defaults():
    params = dict(subscriber=dict(host='lb-1', port=None, transport='tls', path='/mqtt', server_name='lb.example.com',
                                  ca_path='/ca.pem', validate_certs=True, client_cert=None, client_key=None,
                                  username='u', password='p', client_id=None),
                  publisher=None)
    sub, pub = emq_mqtt_roundtrip.resolve_endpoints(params, 'tok')
    assert sub['port'] == 8883 and sub['client_id'] == 'emq-roundtrip-sub-tok'
    assert pub == dict(sub, client_id='emq-roundtrip-pub-tok')

    params['publisher'] = dict((k, None) for k in params['subscriber'])
    params['publisher'].update(host='lb-2', transport='wss')
    sub, pub = emq_mqtt_roundtrip.resolve_endpoints(params, 'tok')
    assert (pub['host'], pub['port'], pub['transport'], pub['server_name']) == ('lb-2', 8084, 'wss', None)
    assert (pub['ca_path'], pub['username'], pub['password']) == ('/ca.pem', 'u', 'p')

    params['publisher'].update(transport=None, port=None, host=None, ca_path='')
    sub, pub = emq_mqtt_roundtrip.resolve_endpoints(params, 'tok')
    assert (pub['port'], pub['server_name'], pub['ca_path']) == (8883, 'lb.example.com', None)


@pytest.mark.parametrize('args, message', [
    (dict(topic='a/+/b'), 'must not contain the wildcards'),
    (dict(topic='a/#'), 'must not contain the wildcards'),
    (dict(topic=''), 'topic must not be empty'),
    (dict(timeout=0), 'timeout must be more than 0 seconds'),
    (dict(connect_timeout=-1), 'connect_timeout must be more than 0 seconds'),
    (dict(publisher=dict(client_id='same')), 'different client ids'),
    (dict(subscriber=dict(host=LOOPBACK, transport='tcp', password='x')), 'without a username'),
    (dict(subscriber=dict(host=LOOPBACK, ca_path='/nonexistent/ca.pem')), 'subscriber: ca_path /nonexistent/ca.pem is not a file'),
    (dict(publisher=dict(client_key='/etc/hostname')), 'publisher: client_key needs client_cert'),
    (dict(subscriber=dict(host=LOOPBACK, transport='tcp', client_cert='/etc/hostname')), 'client_cert needs transport'),
    (dict(subscriber=dict(host=LOOPBACK, transport='ws', path='mqtt')), 'path must start with /'),
    (dict(subscriber=dict(host=LOOPBACK, port=70000)), 'port must be between 1 and 65535'),
    (dict(qos=2), 'value of qos must be one of'),
    (dict(subscriber=dict(port=1883)), 'missing required arguments: host'),
])
def test_bad_arguments(run_module, args, message):
    full = dict(subscriber=dict(host=LOOPBACK, client_id='same'), timeout=1)
    full.update(args)
    result = run_module(emq_mqtt_roundtrip.main, full)
    assert result['failed']
    assert message in result['msg']
    assert 'received' not in result
