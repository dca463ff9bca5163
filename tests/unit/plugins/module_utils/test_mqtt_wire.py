# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import socket
import time

import pytest

from ansible_collections.iothub.emq.plugins.module_utils import mqtt_wire


@pytest.mark.parametrize('value, encoded', [
    (0, b'\x00'),
    (127, b'\x7f'),
    (128, b'\x80\x01'),
    (16383, b'\xff\x7f'),
    (16384, b'\x80\x80\x01'),
    (268435455, b'\xff\xff\xff\x7f'),
])
def test_varint(value, encoded):
    assert mqtt_wire.encode_varint(value) == encoded
    assert mqtt_wire.decode_varint(encoded) == (value, len(encoded))


def test_varint_errors():
    with pytest.raises(ValueError):
        mqtt_wire.encode_varint(268435456)
    with pytest.raises(mqtt_wire.WireError):
        mqtt_wire.decode_varint(b'\xff\xff\xff\xff\x01')
    with pytest.raises(mqtt_wire.WireError):
        mqtt_wire.decode_varint(b'\x80')


def test_connect_v311_bytes():
    packet = mqtt_wire.build_connect('c1', 'u', 'p', protocol_version=4, keepalive=30)
    assert packet == (b'\x10\x14' b'\x00\x04MQTT' b'\x04' b'\xc2' b'\x00\x1e'
                      b'\x00\x02c1' b'\x00\x01u' b'\x00\x01p')


def test_connect_v5_anonymous_bytes():
    packet = mqtt_wire.build_connect('c1', protocol_version=5, keepalive=10)
    assert packet == b'\x10\x0f\x00\x04MQTT\x05\x02\x00\x0a\x00\x00\x02c1'


def test_connect_rejects_other_versions():
    with pytest.raises(ValueError):
        mqtt_wire.build_connect('c', protocol_version=3)


def test_parse_connack_v4():
    assert mqtt_wire.parse_connack(0x20, b'\x01\x00', 4) == dict(
        session_present=True, return_code=0, return_code_name='Connection Accepted', properties={})


def test_parse_connack_v5_properties():
    props = (b'\x1f\x00\x02no' b'\x12\x00\x03abc' b'\x21\x00\x0a' b'\x27\x00\x01\x00\x00'
             b'\x26\x00\x01k\x00\x01v' b'\x24\x01')
    body = b'\x00\x87' + mqtt_wire.encode_varint(len(props)) + props
    result = mqtt_wire.parse_connack(0x20, body, 5)
    assert result['return_code'] == 135
    assert result['return_code_name'] == 'Not authorized'
    assert result['properties'] == dict(reason_string='no', assigned_client_identifier='abc', receive_maximum=10,
                                        maximum_packet_size=65536, user_properties=[['k', 'v']], maximum_qos=1)


def test_parse_connack_errors():
    with pytest.raises(mqtt_wire.WireError):
        mqtt_wire.parse_connack(0x30, b'\x00\x00', 4)
    with pytest.raises(mqtt_wire.WireError):
        mqtt_wire.parse_connack(0x20, b'\x00', 4)
    assert mqtt_wire.connack_name(77, 4) == 'Unknown code 77'


def test_ws_accept_key_rfc6455_example():
    assert mqtt_wire.ws_accept_key('dGhlIHNhbXBsZSBub25jZQ==') == 's3pPLMBiTxaQ9kYGzzhZRbK+xOo='


@pytest.mark.parametrize('size, header_len', [(5, 2), (200, 4), (70000, 10)])
def test_ws_frame_is_masked(size, header_len):
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    frame = mqtt_wire.ws_frame(payload, mask_key=b'\x01\x02\x03\x04')
    assert frame[0] == 0x82
    assert frame[1] & 0x80
    mask = frame[header_len:header_len + 4]
    data = frame[header_len + 4:]
    assert bytes(b ^ mask[i % 4] for i, b in enumerate(data)) == payload


class FakeSock(object):
    def __init__(self, data):
        self.data = data
        self.sent = b''

    def recv(self, count):
        chunk, self.data = self.data[:min(count, 3)], self.data[min(count, 3):]
        return chunk

    def sendall(self, data):
        self.sent += data


def test_websocket_stream_reassembles_frames_and_skips_pings():
    connack = b'\x20\x02\x00\x00'
    frames = b'\x89\x00' + b'\x02\x02' + connack[:2] + b'\x80\x02' + connack[2:]
    stream = mqtt_wire.WebSocketStream(FakeSock(frames))
    assert mqtt_wire.read_packet(stream) == (0x20, b'\x00\x00')


def test_websocket_stream_close_frame():
    stream = mqtt_wire.WebSocketStream(FakeSock(b'\x88\x02\x03\xe8'))
    with pytest.raises(mqtt_wire.WireError, match='close code 1000'):
        stream.recv_exact(1)


def test_socket_stream_eof():
    with pytest.raises(mqtt_wire.WireError):
        mqtt_wire.SocketStream(FakeSock(b'ab')).recv_exact(4)


# -- SUBSCRIBE / SUBACK ----------------------------------------------------------------------


def test_subscribe_v311_bytes():
    assert mqtt_wire.build_subscribe(1, 'a/b', 1, protocol_version=4) == b'\x82\x08\x00\x01\x00\x03a/b\x01'


def test_subscribe_v5_bytes():
    # packet id, no properties, topic filter, options (QoS 0, no local off, retain as published off)
    assert mqtt_wire.build_subscribe(258, 't', 0, protocol_version=5) == b'\x82\x07\x01\x02\x00\x00\x01t\x00'


@pytest.mark.parametrize('args', [(0, 't', 0), (65536, 't', 0), (1, 't', 3)])
def test_subscribe_rejects_bad_values(args):
    with pytest.raises(ValueError):
        mqtt_wire.build_subscribe(*args)


def test_parse_suback_v311():
    assert mqtt_wire.parse_suback(0x90, b'\x00\x07\x01', 4) == dict(
        packet_id=7, reason_codes=[1], reason_code_names=['Success - Maximum QoS 1'], properties={})
    assert mqtt_wire.parse_suback(0x90, b'\x00\x07\x80', 4)['reason_code_names'] == ['Failure']


def test_parse_suback_v5_with_reason_string():
    body = b'\x00\x02' + b'\x06\x1f\x00\x03acl' + b'\x87'
    assert mqtt_wire.parse_suback(0x90, body, 5) == dict(
        packet_id=2, reason_codes=[135], reason_code_names=['Not authorized'], properties={'reason_string': 'acl'})
    assert mqtt_wire.parse_suback(0x90, b'\x00\x02\x00\x00', 5)['reason_code_names'] == ['Granted QoS 0']


def test_parse_suback_errors():
    with pytest.raises(mqtt_wire.WireError, match='expected SUBACK, got PUBLISH'):
        mqtt_wire.parse_suback(0x30, b'\x00\x01\x00', 4)
    with pytest.raises(mqtt_wire.WireError):
        mqtt_wire.parse_suback(0x90, b'\x00\x01', 4)
    with pytest.raises(mqtt_wire.WireError):
        mqtt_wire.parse_suback(0x90, b'\x00\x01\x05\x00', 5)  # properties longer than the packet


# -- PUBLISH / PUBACK ------------------------------------------------------------------------


def test_publish_v311_qos0_bytes():
    assert mqtt_wire.build_publish('a/b', b'hi') == b'\x30\x07\x00\x03a/bhi'


def test_publish_v5_qos1_retain_bytes():
    packet = mqtt_wire.build_publish('t', 'hé', qos=1, packet_id=5, retain=True, protocol_version=5)
    assert packet == b'\x33\x09\x00\x01t\x00\x05\x00h\xc3\xa9'


def test_publish_dup_only_with_qos():
    assert mqtt_wire.build_publish('t', b'', dup=True)[0] == 0x30
    assert mqtt_wire.build_publish('t', b'', qos=1, packet_id=1, dup=True)[0] == 0x3a


def test_publish_qos1_needs_packet_id():
    with pytest.raises(ValueError):
        mqtt_wire.build_publish('t', b'x', qos=1)


def test_publish_large_payload_roundtrips():
    payload = bytes(range(256)) * 600
    packet = mqtt_wire.build_publish('big', payload, qos=1, packet_id=9, protocol_version=4)
    header, body = mqtt_wire.read_packet(mqtt_wire.SocketStream(FakeSock(packet)))
    message = mqtt_wire.parse_publish(header, body, 4)
    assert message['payload'] == payload and message['packet_id'] == 9 and message['qos'] == 1


@pytest.mark.parametrize('version', [4, 5])
@pytest.mark.parametrize('qos', [0, 1])
def test_publish_parse_roundtrip(version, qos):
    packet = mqtt_wire.build_publish('x/y', b'payload', qos=qos, packet_id=3 if qos else None, protocol_version=version)
    header, body = mqtt_wire.read_packet(mqtt_wire.SocketStream(FakeSock(packet)))
    assert mqtt_wire.parse_publish(header, body, version) == dict(
        topic='x/y', payload=b'payload', qos=qos, retain=False, dup=False, packet_id=3 if qos else None, properties={})


def test_parse_publish_v5_properties():
    props = b'\x01\x01' b'\x02\x00\x00\x00\x3c' b'\x03\x00\x04text' b'\x0b\x81\x01' b'\x23\x00\x02'
    body = b'\x00\x01t' + b'\x00\x04' + mqtt_wire.encode_varint(len(props)) + props + b'data'
    message = mqtt_wire.parse_publish(0x32, body, 5)
    assert message['payload'] == b'data'
    assert message['properties'] == dict(payload_format_indicator=1, message_expiry_interval=60,
                                         content_type='text', subscription_identifier=129, topic_alias=2)


def test_parse_publish_errors():
    with pytest.raises(mqtt_wire.WireError):
        mqtt_wire.parse_publish(0x36, b'\x00\x01t\x00\x01', 4)  # QoS 3
    with pytest.raises(mqtt_wire.WireError):
        mqtt_wire.parse_publish(0x30, b'\x00\x09t', 4)
    with pytest.raises(mqtt_wire.WireError):
        mqtt_wire.parse_publish(0x32, b'\x00\x01t\x00', 4)


@pytest.mark.parametrize('version, code, packet', [
    (4, 0, b'\x40\x02\x00\x07'),
    (5, 0, b'\x40\x02\x00\x07'),
    (5, 0x10, b'\x40\x03\x00\x07\x10'),
])
def test_puback_bytes(version, code, packet):
    assert mqtt_wire.build_puback(7, code, version) == packet


def test_parse_puback():
    assert mqtt_wire.parse_puback(0x40, b'\x00\x07', 4) == dict(
        packet_id=7, reason_code=0, reason_code_name='Success', properties={})
    assert mqtt_wire.parse_puback(0x40, b'\x00\x07', 5)['reason_code'] == 0
    assert mqtt_wire.parse_puback(0x40, b'\x00\x07\x10', 5)['reason_code_name'] == 'No matching subscribers'
    result = mqtt_wire.parse_puback(0x40, b'\x00\x07\x87\x05\x1f\x00\x02no', 5)
    assert result == dict(packet_id=7, reason_code=135, reason_code_name='Not authorized',
                          properties={'reason_string': 'no'})
    with pytest.raises(mqtt_wire.WireError, match='expected PUBACK, got SUBACK'):
        mqtt_wire.parse_puback(0x90, b'\x00\x07', 4)


def test_parse_disconnect():
    assert mqtt_wire.parse_disconnect(0xe0, b'', 4)['reason_code_name'] == 'Normal disconnection'
    assert mqtt_wire.parse_disconnect(0xe0, b'\x8e\x00', 5) == dict(
        reason_code=142, reason_code_name='Session taken over', properties={})


def test_names():
    assert mqtt_wire.packet_name(0xd0) == 'PINGRESP'
    assert mqtt_wire.packet_name(0x00) == 'packet type 0'
    assert mqtt_wire.reason_name(0, 4) == 'Success'
    assert mqtt_wire.reason_name(250) == 'Unknown code 250'
    assert mqtt_wire.suback_name(2, 4) == 'Success - Maximum QoS 2'


# -- MqttClient ----------------------------------------------------------------------------------


class TimedFakeSock(FakeSock):
    def settimeout(self, value):
        self.timeout = value

    def close(self):
        self.closed = True


def test_client_connect_subscribe_and_wait_message():
    incoming = (b'\x20\x02\x00\x00'                                   # CONNACK
                + b'\x33\x08\x00\x01t\x00\x01' + b'old'                # a retained QoS 1 message before the SUBACK
                + b'\x90\x03\x00\x01\x01'                             # SUBACK for packet id 1
                + b'\xd0\x00'                                         # PINGRESP
                + b'\x30\x08\x00\x01t' + b'other'                     # same topic, other payload
                + b'\x30\x07\x00\x01u' + b'mine'                      # other topic
                + b'\x32\x09\x00\x01t\x00\x02' + b'mine')             # the one
    sock = TimedFakeSock(incoming)
    client = mqtt_wire.MqttClient(mqtt_wire.SocketStream(sock), 4)
    deadline = time.monotonic() + 5
    assert client.connect('c', deadline=deadline)['return_code'] == 0
    suback = client.subscribe('t', 1, deadline)
    assert suback['reason_codes'] == [1] and suback['packet_id'] == 1
    message = client.wait_message('t', 'mine', deadline)
    assert message['payload'] == b'mine' and message['qos'] == 1 and message['packet_id'] == 2
    assert message['arrived'] <= time.monotonic()
    # both QoS 1 messages were acknowledged
    assert sock.sent.endswith(b'\x40\x02\x00\x01' + b'\x40\x02\x00\x02')
    client.disconnect()
    assert sock.sent.endswith(b'\xe0\x00') and sock.closed


def test_client_publish_and_puback():
    sock = TimedFakeSock(b'\x40\x02\x00\x01')
    client = mqtt_wire.MqttClient(mqtt_wire.SocketStream(sock), 5)
    packet_id = client.publish('t', b'x', qos=1)
    assert packet_id == 1
    assert sock.sent == b'\x32\x07\x00\x01t\x00\x01\x00x'
    assert client.wait_puback(packet_id, time.monotonic() + 5)['reason_code'] == 0
    assert client.publish('t', b'x', qos=0) is None


def test_client_server_disconnect_mqtt5():
    client = mqtt_wire.MqttClient(mqtt_wire.SocketStream(TimedFakeSock(b'\xe0\x01\x8b')), 5)
    with pytest.raises(mqtt_wire.WireError, match=r'DISCONNECT 139 \(Server shutting down\)'):
        client.wait_message('t', b'x', time.monotonic() + 5)


def test_client_ping():
    sock = TimedFakeSock(b'\xd0\x00')
    client = mqtt_wire.MqttClient(mqtt_wire.SocketStream(sock), 4)
    client.ping(time.monotonic() + 5)
    assert sock.sent == b'\xc0\x00'


def test_client_times_out_on_a_silent_peer():
    left, right = socket.socketpair()
    try:
        client = mqtt_wire.MqttClient(mqtt_wire.SocketStream(left), 4)
        started = time.monotonic()
        with pytest.raises(mqtt_wire.WireTimeout, match='no SUBACK'):
            client.subscribe('t', 0, time.monotonic() + 0.2)
        assert time.monotonic() - started < 2
        with pytest.raises(mqtt_wire.WireTimeout):
            client.wait_message('t', b'x', time.monotonic() - 1)  # deadline already passed
    finally:
        left.close()
        right.close()


def test_client_connect_errors():
    client = mqtt_wire.MqttClient(mqtt_wire.SocketStream(TimedFakeSock(b'')), 4)
    with pytest.raises(mqtt_wire.WireError, match='no CONNACK: the server closed the connection'):
        client.connect('c', deadline=time.monotonic() + 5)
