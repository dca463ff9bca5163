# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

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
