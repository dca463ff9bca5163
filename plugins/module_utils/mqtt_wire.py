# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The few MQTT and WebSocket bytes a port check needs, with the standard library only.

MQTT 3.1.1 (protocol level 4) and MQTT 5 (level 5): CONNECT, CONNACK and DISCONNECT.
WebSocket (RFC 6455): the client upgrade handshake and binary frames, as MQTT over
WebSocket uses them (subprotocol ``mqtt``).
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct


class WireError(Exception):
    """The peer sent something unexpected, or closed the connection."""


# MQTT 3.1.1, section 3.2.2.3.
CONNACK_V4_NAMES = {
    0: 'Connection Accepted',
    1: 'Unacceptable protocol version',
    2: 'Identifier rejected',
    3: 'Server unavailable',
    4: 'Bad user name or password',
    5: 'Not authorized',
}

# MQTT 5, section 3.2.2.2.
CONNACK_V5_NAMES = {
    0: 'Success',
    128: 'Unspecified error',
    129: 'Malformed Packet',
    130: 'Protocol Error',
    131: 'Implementation specific error',
    132: 'Unsupported Protocol Version',
    133: 'Client Identifier not valid',
    134: 'Bad User Name or Password',
    135: 'Not authorized',
    136: 'Server unavailable',
    137: 'Server busy',
    138: 'Banned',
    140: 'Bad authentication method',
    144: 'Topic Name invalid',
    149: 'Packet too large',
    151: 'Quota exceeded',
    153: 'Payload format invalid',
    154: 'Retain not supported',
    155: 'QoS not supported',
    156: 'Use another server',
    157: 'Server moved',
    159: 'Connection rate exceeded',
}

# MQTT 5 properties that may appear in a CONNACK: id -> (name, kind).
_V5_PROPERTIES = {
    0x11: ('session_expiry_interval', 'u32'),
    0x12: ('assigned_client_identifier', 'str'),
    0x13: ('server_keep_alive', 'u16'),
    0x15: ('authentication_method', 'str'),
    0x16: ('authentication_data', 'bin'),
    0x1A: ('response_information', 'str'),
    0x1C: ('server_reference', 'str'),
    0x1F: ('reason_string', 'str'),
    0x21: ('receive_maximum', 'u16'),
    0x22: ('topic_alias_maximum', 'u16'),
    0x24: ('maximum_qos', 'u8'),
    0x25: ('retain_available', 'u8'),
    0x26: ('user_property', 'pair'),
    0x27: ('maximum_packet_size', 'u32'),
    0x28: ('wildcard_subscription_available', 'u8'),
    0x29: ('subscription_identifiers_available', 'u8'),
    0x2A: ('shared_subscription_available', 'u8'),
}

DISCONNECT = b'\xe0\x00'
WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'


def connack_name(code, protocol_version):
    names = CONNACK_V5_NAMES if protocol_version == 5 else CONNACK_V4_NAMES
    return names.get(code, 'Unknown code {0}'.format(code))


def encode_varint(value):
    if value < 0 or value > 268435455:
        raise ValueError('remaining length out of range')
    out = bytearray()
    while True:
        byte = value % 128
        value //= 128
        if value:
            byte |= 0x80
        out.append(byte)
        if not value:
            return bytes(out)


def decode_varint(data, pos=0):
    """Decode an MQTT variable byte integer; returns (value, next position)."""
    multiplier = 1
    value = 0
    for count in range(4):
        if pos >= len(data):
            raise WireError('truncated variable byte integer')
        byte = data[pos]
        pos += 1
        value += (byte & 0x7F) * multiplier
        if not byte & 0x80:
            return value, pos
        multiplier *= 128
    raise WireError('malformed variable byte integer')


def _utf8(value):
    raw = value.encode('utf-8') if not isinstance(value, bytes) else value
    if len(raw) > 65535:
        raise ValueError('string too long for MQTT')
    return struct.pack('!H', len(raw)) + raw


def build_connect(client_id, username=None, password=None, protocol_version=4, keepalive=30, clean_start=True):
    """Bytes of an MQTT CONNECT packet."""
    if protocol_version not in (4, 5):
        raise ValueError('protocol_version must be 4 (MQTT 3.1.1) or 5 (MQTT 5)')
    flags = 0x02 if clean_start else 0x00
    payload = _utf8(client_id or '')
    if username is not None:
        flags |= 0x80
    if password is not None:
        flags |= 0x40
    variable = _utf8('MQTT') + struct.pack('!BBH', protocol_version, flags, keepalive)
    if protocol_version == 5:
        variable += encode_varint(0)  # no CONNECT properties
    if username is not None:
        payload += _utf8(username)
    if password is not None:
        payload += _utf8(password)
    body = variable + payload
    return b'\x10' + encode_varint(len(body)) + body


def _parse_properties(data):
    props = {}
    pos = 0
    while pos < len(data):
        ident = data[pos]
        pos += 1
        if ident not in _V5_PROPERTIES:
            props['unparsed_property_0x{0:02x}'.format(ident)] = True
            break
        name, kind = _V5_PROPERTIES[ident]
        if kind == 'u8':
            value = data[pos]
            pos += 1
        elif kind == 'u16':
            value = struct.unpack('!H', data[pos:pos + 2])[0]
            pos += 2
        elif kind == 'u32':
            value = struct.unpack('!I', data[pos:pos + 4])[0]
            pos += 4
        elif kind in ('str', 'bin'):
            length = struct.unpack('!H', data[pos:pos + 2])[0]
            raw = data[pos + 2:pos + 2 + length]
            pos += 2 + length
            value = raw.decode('utf-8', 'replace') if kind == 'str' else base64.b64encode(raw).decode('ascii')
        else:  # user property: a string pair
            klen = struct.unpack('!H', data[pos:pos + 2])[0]
            key = data[pos + 2:pos + 2 + klen].decode('utf-8', 'replace')
            pos += 2 + klen
            vlen = struct.unpack('!H', data[pos:pos + 2])[0]
            val = data[pos + 2:pos + 2 + vlen].decode('utf-8', 'replace')
            pos += 2 + vlen
            props.setdefault('user_properties', []).append([key, val])
            continue
        props[name] = value
    return props


def parse_connack(header, body, protocol_version):
    """Decode a CONNACK: dict(session_present, return_code, return_code_name, properties)."""
    if header >> 4 != 2:
        raise WireError('expected CONNACK, got MQTT packet type {0}'.format(header >> 4))
    if len(body) < 2:
        raise WireError('CONNACK too short')
    result = dict(
        session_present=bool(body[0] & 0x01),
        return_code=body[1],
        return_code_name=connack_name(body[1], protocol_version),
        properties={},
    )
    if protocol_version == 5 and len(body) > 2:
        length, pos = decode_varint(body, 2)
        try:
            result['properties'] = _parse_properties(body[pos:pos + length])
        except (IndexError, struct.error):
            result['properties'] = {'malformed': True}
    return result


def read_packet(stream):
    """Read one MQTT packet from stream (an object with recv_exact(n)); returns (header byte, body)."""
    header = stream.recv_exact(1)[0]
    multiplier = 1
    length = 0
    for count in range(4):
        byte = stream.recv_exact(1)[0]
        length += (byte & 0x7F) * multiplier
        if not byte & 0x80:
            break
        multiplier *= 128
    else:
        raise WireError('malformed remaining length')
    return header, stream.recv_exact(length) if length else b''


class SocketStream(object):
    """Exact reads and writes on a (possibly TLS) socket."""

    def __init__(self, sock):
        self.sock = sock

    def send(self, data):
        self.sock.sendall(data)

    def recv_exact(self, count):
        chunks = []
        remaining = count
        while remaining:
            chunk = self.sock.recv(remaining)
            if not chunk:
                raise WireError('the server closed the connection')
            chunks.append(chunk)
            remaining -= len(chunk)
        return b''.join(chunks)


def ws_accept_key(key):
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode('ascii')).digest()).decode('ascii')


def ws_frame(payload, opcode=0x2, mask_key=None):
    """A masked client frame (every client frame must be masked)."""
    mask_key = mask_key if mask_key is not None else os.urandom(4)
    length = len(payload)
    head = bytearray([0x80 | opcode])
    if length < 126:
        head.append(0x80 | length)
    elif length < 65536:
        head.append(0x80 | 126)
        head += struct.pack('!H', length)
    else:
        head.append(0x80 | 127)
        head += struct.pack('!Q', length)
    masked = bytes(b ^ mask_key[i % 4] for i, b in enumerate(payload))
    return bytes(head) + mask_key + masked


class WebSocketStream(object):
    """MQTT over WebSocket: upgrade once, then binary frames both ways."""

    MAX_HEADER = 16384

    def __init__(self, sock):
        self.raw = SocketStream(sock)
        self.sock = sock
        self.buffer = b''   # bytes read from the socket but not yet parsed as frames
        self.payload = b''  # application data received, not yet consumed
        self.status = None
        self.subprotocol = None

    def handshake(self, host, port, path, subprotocol='mqtt'):
        """Send the upgrade request and check the 101 answer. Returns (status, subprotocol)."""
        key = base64.b64encode(os.urandom(16)).decode('ascii')
        host_header = '[{0}]'.format(host) if ':' in host and not host.startswith('[') else host
        request = (
            'GET {path} HTTP/1.1\r\n'
            'Host: {host}:{port}\r\n'
            'Upgrade: websocket\r\n'
            'Connection: Upgrade\r\n'
            'Sec-WebSocket-Key: {key}\r\n'
            'Sec-WebSocket-Version: 13\r\n'
            'Sec-WebSocket-Protocol: {proto}\r\n'
            'User-Agent: iothub.emq.emq_port_check\r\n'
            '\r\n'
        ).format(path=path, host=host_header, port=port, key=key, proto=subprotocol)
        self.raw.send(request.encode('ascii'))
        data = b''
        while b'\r\n\r\n' not in data:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise WireError('the server closed the connection during the WebSocket upgrade')
            data += chunk
            if len(data) > self.MAX_HEADER:
                raise WireError('the WebSocket upgrade answer is too long')
        head, self.buffer = data.split(b'\r\n\r\n', 1)
        lines = head.decode('iso-8859-1').split('\r\n')
        parts = lines[0].split(' ', 2)
        try:
            self.status = int(parts[1])
        except (IndexError, ValueError):
            raise WireError('not an HTTP answer: {0!r}'.format(lines[0][:80]))
        headers = {}
        for line in lines[1:]:
            if ':' in line:
                name, value = line.split(':', 1)
                headers[name.strip().lower()] = value.strip()
        self.subprotocol = headers.get('sec-websocket-protocol')
        if self.status != 101:
            raise WireError('the WebSocket upgrade of {0} was answered with HTTP {1} instead of 101'
                            .format(path, lines[0][len(parts[0]) + 1:].strip() or self.status))
        if headers.get('sec-websocket-accept') != ws_accept_key(key):
            raise WireError('the WebSocket upgrade answer has a wrong Sec-WebSocket-Accept')
        if self.subprotocol != subprotocol:
            raise WireError('the WebSocket upgrade answer did not select subprotocol {0!r} (got {1!r})'
                            .format(subprotocol, self.subprotocol))
        return self.status, self.subprotocol

    def send(self, data):
        self.raw.send(ws_frame(data))

    def _fill(self, count):
        while len(self.buffer) < count:
            chunk = self.sock.recv(max(4096, count - len(self.buffer)))
            if not chunk:
                raise WireError('the server closed the connection')
            self.buffer += chunk

    def _take(self, count):
        self._fill(count)
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def _read_frame(self):
        first, second = self._take(2)
        opcode = first & 0x0F
        length = second & 0x7F
        if length == 126:
            length = struct.unpack('!H', self._take(2))[0]
        elif length == 127:
            length = struct.unpack('!Q', self._take(8))[0]
        mask = self._take(4) if second & 0x80 else None
        data = self._take(length) if length else b''
        if mask:
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        return opcode, data

    def recv_exact(self, count):
        while len(self.payload) < count:
            opcode, data = self._read_frame()
            if opcode in (0x0, 0x1, 0x2):
                self.payload += data
            elif opcode == 0x8:
                code = struct.unpack('!H', data[:2])[0] if len(data) >= 2 else None
                raise WireError('the server closed the WebSocket (close code {0})'.format(code))
            # ping (0x9) and pong (0xA) carry no MQTT data
        data, self.payload = self.payload[:count], self.payload[count:]
        return data
