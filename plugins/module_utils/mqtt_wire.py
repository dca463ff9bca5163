# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The MQTT and WebSocket bytes the port check and the round trip need, with the standard library only.

MQTT 3.1.1 (protocol level 4) and MQTT 5 (level 5), client side: CONNECT, CONNACK, SUBSCRIBE,
SUBACK, PUBLISH (QoS 0 and 1), PUBACK, PINGREQ/PINGRESP and DISCONNECT, plus ``MqttClient``, a
small blocking client session over a stream with deadlines.
WebSocket (RFC 6455): the client upgrade handshake and binary frames, as MQTT over
WebSocket uses them (subprotocol ``mqtt``).
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import struct
import time


class WireError(Exception):
    """The peer sent something unexpected, or closed the connection."""


class WireTimeout(WireError):
    """Nothing (or not all of a packet) arrived before the deadline."""


# MQTT control packet types (first nibble of the fixed header).
CONNECT = 1
CONNACK = 2
PUBLISH = 3
PUBACK = 4
SUBSCRIBE = 8
SUBACK = 9
PINGREQ = 12
PINGRESP = 13
DISCONNECT_TYPE = 14

PACKET_NAMES = {
    1: 'CONNECT', 2: 'CONNACK', 3: 'PUBLISH', 4: 'PUBACK', 5: 'PUBREC', 6: 'PUBREL', 7: 'PUBCOMP',
    8: 'SUBSCRIBE', 9: 'SUBACK', 10: 'UNSUBSCRIBE', 11: 'UNSUBACK', 12: 'PINGREQ', 13: 'PINGRESP',
    14: 'DISCONNECT', 15: 'AUTH',
}


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

# MQTT 3.1.1, section 3.9.3: SUBACK return codes.
SUBACK_V4_NAMES = {
    0: 'Success - Maximum QoS 0',
    1: 'Success - Maximum QoS 1',
    2: 'Success - Maximum QoS 2',
    128: 'Failure',
}

# MQTT 5, section 2.4: the reason codes of SUBACK, PUBACK and DISCONNECT (CONNACK has its own table above).
REASON_V5_NAMES = {
    0: 'Success',
    1: 'Granted QoS 1',
    2: 'Granted QoS 2',
    4: 'Disconnect with Will Message',
    16: 'No matching subscribers',
    17: 'No subscription existed',
    24: 'Continue authentication',
    25: 'Re-authenticate',
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
    139: 'Server shutting down',
    140: 'Bad authentication method',
    141: 'Keep Alive timeout',
    142: 'Session taken over',
    143: 'Topic Filter invalid',
    144: 'Topic Name invalid',
    145: 'Packet Identifier in use',
    146: 'Packet Identifier not found',
    147: 'Receive Maximum exceeded',
    148: 'Topic Alias invalid',
    149: 'Packet too large',
    150: 'Message rate too high',
    151: 'Quota exceeded',
    152: 'Administrative action',
    153: 'Payload format invalid',
    154: 'Retain not supported',
    155: 'QoS not supported',
    156: 'Use another server',
    157: 'Server moved',
    158: 'Shared Subscriptions not supported',
    159: 'Connection rate exceeded',
    160: 'Maximum connect time',
    161: 'Subscription Identifiers not supported',
    162: 'Wildcard Subscriptions not supported',
}

# MQTT 5 properties (section 2.2.2.2) of CONNACK, PUBLISH, PUBACK, SUBACK and DISCONNECT:
# id -> (name, kind).
_V5_PROPERTIES = {
    0x01: ('payload_format_indicator', 'u8'),
    0x02: ('message_expiry_interval', 'u32'),
    0x03: ('content_type', 'str'),
    0x08: ('response_topic', 'str'),
    0x09: ('correlation_data', 'bin'),
    0x0B: ('subscription_identifier', 'varint'),
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
    0x23: ('topic_alias', 'u16'),
    0x24: ('maximum_qos', 'u8'),
    0x25: ('retain_available', 'u8'),
    0x26: ('user_property', 'pair'),
    0x27: ('maximum_packet_size', 'u32'),
    0x28: ('wildcard_subscription_available', 'u8'),
    0x29: ('subscription_identifiers_available', 'u8'),
    0x2A: ('shared_subscription_available', 'u8'),
}

DISCONNECT = b'\xe0\x00'
PINGREQ_PACKET = b'\xc0\x00'
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
        elif kind == 'varint':
            value, pos = decode_varint(data, pos)
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


def packet_name(header):
    """Name of the MQTT packet type of a fixed header byte."""
    return PACKET_NAMES.get(header >> 4, 'packet type {0}'.format(header >> 4))


def suback_name(code, protocol_version):
    if protocol_version == 5:
        if code == 0:
            return 'Granted QoS 0'
        return REASON_V5_NAMES.get(code, 'Unknown code {0}'.format(code))
    return SUBACK_V4_NAMES.get(code, 'Unknown code {0}'.format(code))


def reason_name(code, protocol_version=5):
    """Name of an MQTT 5 reason code of PUBACK or DISCONNECT (MQTT 3.1.1 has none: 0 is Success)."""
    if protocol_version != 5 and code == 0:
        return 'Success'
    return REASON_V5_NAMES.get(code, 'Unknown code {0}'.format(code))


def _check_packet_id(packet_id):
    if not 0 < packet_id < 65536:
        raise ValueError('packet identifier must be between 1 and 65535')


def _check_qos(qos):
    if qos not in (0, 1, 2):
        raise ValueError('QoS must be 0, 1 or 2')


def _expect_type(header, wanted):
    if header >> 4 != wanted:
        raise WireError('expected {0}, got {1}'.format(PACKET_NAMES[wanted], packet_name(header)))


def _read_properties(body, pos, what):
    """Decode the MQTT 5 properties at pos; returns (properties, next position)."""
    length, pos = decode_varint(body, pos)
    if pos + length > len(body):
        raise WireError('{0} properties run past the end of the packet'.format(what))
    try:
        props = _parse_properties(body[pos:pos + length])
    except (IndexError, struct.error, WireError):
        props = {'malformed': True}
    return props, pos + length


def build_subscribe(packet_id, topic_filter, qos=0, protocol_version=4):
    """Bytes of a SUBSCRIBE to one topic filter (MQTT 5: no properties, default subscription options)."""
    _check_packet_id(packet_id)
    _check_qos(qos)
    variable = struct.pack('!H', packet_id)
    if protocol_version == 5:
        variable += encode_varint(0)
    body = variable + _utf8(topic_filter) + struct.pack('!B', qos)
    return b'\x82' + encode_varint(len(body)) + body


def parse_suback(header, body, protocol_version):
    """Decode a SUBACK: dict(packet_id, reason_codes, reason_code_names, properties)."""
    _expect_type(header, SUBACK)
    if len(body) < 3:
        raise WireError('SUBACK too short')
    packet_id = struct.unpack('!H', body[:2])[0]
    pos = 2
    props = {}
    if protocol_version == 5:
        props, pos = _read_properties(body, pos, 'SUBACK')
    codes = list(bytearray(body[pos:]))
    if not codes:
        raise WireError('SUBACK without a reason code')
    return dict(packet_id=packet_id, reason_codes=codes,
                reason_code_names=[suback_name(c, protocol_version) for c in codes], properties=props)


def build_publish(topic, payload, qos=0, packet_id=None, retain=False, dup=False, protocol_version=4):
    """Bytes of a PUBLISH (MQTT 5: no properties). packet_id is needed for QoS 1 and 2 only."""
    _check_qos(qos)
    if isinstance(payload, str):
        payload = payload.encode('utf-8')
    flags = (qos << 1) | (0x01 if retain else 0) | (0x08 if dup and qos else 0)
    variable = _utf8(topic)
    if qos:
        if packet_id is None:
            raise ValueError('a QoS {0} PUBLISH needs a packet identifier'.format(qos))
        _check_packet_id(packet_id)
        variable += struct.pack('!H', packet_id)
    if protocol_version == 5:
        variable += encode_varint(0)
    body = variable + payload
    return struct.pack('!B', 0x30 | flags) + encode_varint(len(body)) + body


def parse_publish(header, body, protocol_version):
    """Decode a PUBLISH: dict(topic, payload (bytes), qos, retain, dup, packet_id, properties)."""
    _expect_type(header, PUBLISH)
    qos = (header >> 1) & 0x03
    if qos == 3:
        raise WireError('PUBLISH with QoS 3')
    if len(body) < 2:
        raise WireError('PUBLISH too short')
    length = struct.unpack('!H', body[:2])[0]
    pos = 2 + length
    if pos > len(body):
        raise WireError('PUBLISH topic runs past the end of the packet')
    topic = body[2:pos].decode('utf-8', 'replace')
    packet_id = None
    if qos:
        if pos + 2 > len(body):
            raise WireError('PUBLISH without its packet identifier')
        packet_id = struct.unpack('!H', body[pos:pos + 2])[0]
        pos += 2
    props = {}
    if protocol_version == 5:
        props, pos = _read_properties(body, pos, 'PUBLISH')
    return dict(topic=topic, payload=bytes(body[pos:]), qos=qos, retain=bool(header & 0x01),
                dup=bool(header & 0x08), packet_id=packet_id, properties=props)


def build_puback(packet_id, reason_code=0, protocol_version=4):
    """Bytes of a PUBACK. MQTT 5 with reason code 0 uses the short form (no reason code, no properties)."""
    _check_packet_id(packet_id)
    body = struct.pack('!H', packet_id)
    if protocol_version == 5 and reason_code:
        body += struct.pack('!B', reason_code)
    return b'\x40' + encode_varint(len(body)) + body


def parse_puback(header, body, protocol_version):
    """Decode a PUBACK: dict(packet_id, reason_code, reason_code_name, properties)."""
    _expect_type(header, PUBACK)
    if len(body) < 2:
        raise WireError('PUBACK too short')
    packet_id = struct.unpack('!H', body[:2])[0]
    code = 0
    props = {}
    if protocol_version == 5 and len(body) > 2:
        code = body[2]
        if len(body) > 3:
            props = _read_properties(body, 3, 'PUBACK')[0]
    return dict(packet_id=packet_id, reason_code=code, reason_code_name=reason_name(code, protocol_version),
                properties=props)


def parse_disconnect(header, body, protocol_version):
    """Decode a DISCONNECT sent by the server (MQTT 5): dict(reason_code, reason_code_name, properties)."""
    _expect_type(header, DISCONNECT_TYPE)
    code = body[0] if protocol_version == 5 and body else 0
    props = {}
    if protocol_version == 5 and len(body) > 1:
        props = _read_properties(body, 1, 'DISCONNECT')[0]
    name = 'Normal disconnection' if code == 0 else reason_name(code)
    return dict(reason_code=code, reason_code_name=name, properties=props)


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

    def handshake(self, host, port, path, subprotocol='mqtt', user_agent='iothub.emq.emq_port_check'):
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
            'User-Agent: {agent}\r\n'
            '\r\n'
        ).format(path=path, host=host_header, port=port, key=key, proto=subprotocol, agent=user_agent)
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


def mqtt_connect(stream, client_id, username=None, password=None, protocol_version=4, keepalive=30,
                 clean_start=True):
    """Send a CONNECT and read the CONNACK; returns the parse_connack dict. Raises WireError."""
    stream.send(build_connect(client_id, username, password, protocol_version, keepalive, clean_start))
    try:
        header, body = read_packet(stream)
    except WireError as exc:
        raise exc.__class__('no CONNACK: {0}'.format(exc))
    return parse_connack(header, body, protocol_version)


class MqttClient(object):
    """A blocking MQTT 3.1.1 or 5 client session over a SocketStream or WebSocketStream.

    Every wait takes a deadline (a time.monotonic() value) and raises WireTimeout when it passes.
    PUBLISH packets that arrive while waiting for something else are acknowledged (QoS 1) and kept
    for wait_message(). A DISCONNECT from the server raises WireError with its reason.
    """

    def __init__(self, stream, protocol_version=4):
        self.stream = stream
        self.protocol_version = protocol_version
        self.connack = None
        self.received = []  # PUBLISH dicts not yet looked at by wait_message()
        self._next_id = 0

    def next_packet_id(self):
        self._next_id = self._next_id % 65535 + 1
        return self._next_id

    def _settimeout(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WireTimeout('timed out')
        self.stream.sock.settimeout(remaining)

    def read(self, deadline):
        """Read the next packet before the deadline; returns (header, body)."""
        self._settimeout(deadline)
        try:
            header, body = read_packet(self.stream)
        except socket.timeout:
            raise WireTimeout('timed out')
        except (OSError, socket.error) as exc:
            raise WireError(getattr(exc, 'strerror', None) or str(exc) or exc.__class__.__name__)
        if header >> 4 == DISCONNECT_TYPE:
            info = parse_disconnect(header, body, self.protocol_version)
            if self.protocol_version == 5:
                raise WireError('the server sent DISCONNECT {0} ({1})'.format(
                    info['reason_code'], info['reason_code_name']))
            raise WireError('the server sent DISCONNECT')
        return header, body

    def connect(self, client_id, username=None, password=None, keepalive=30, clean_start=True, deadline=None):
        if deadline is not None:
            self._settimeout(deadline)
        try:
            self.connack = mqtt_connect(self.stream, client_id, username, password, self.protocol_version,
                                        keepalive, clean_start)
        except socket.timeout:
            raise WireTimeout('no CONNACK: timed out')
        except (OSError, socket.error) as exc:
            raise WireError('no CONNACK: {0}'.format(getattr(exc, 'strerror', None) or str(exc) or exc.__class__.__name__))
        return self.connack

    def _handle(self, header, body):
        """Keep a PUBLISH (acknowledging QoS 1); ignore PINGRESP and other packets of no interest."""
        if header >> 4 == PUBLISH:
            message = parse_publish(header, body, self.protocol_version)
            message['arrived'] = time.monotonic()
            if message['qos'] == 1:
                self.stream.send(build_puback(message['packet_id'], 0, self.protocol_version))
            self.received.append(message)

    def _wait_for(self, packet_type, packet_id, deadline):
        while True:
            header, body = self.read(deadline)
            if header >> 4 == packet_type and len(body) >= 2 and struct.unpack('!H', body[:2])[0] == packet_id:
                return header, body
            self._handle(header, body)

    def subscribe(self, topic_filter, qos, deadline):
        """Subscribe and wait for the SUBACK; returns the parse_suback dict."""
        packet_id = self.next_packet_id()
        self.stream.send(build_subscribe(packet_id, topic_filter, qos, self.protocol_version))
        try:
            header, body = self._wait_for(SUBACK, packet_id, deadline)
        except WireTimeout:
            raise WireTimeout('no SUBACK: timed out')
        return parse_suback(header, body, self.protocol_version)

    def publish(self, topic, payload, qos=0, retain=False):
        """Send a PUBLISH; returns its packet identifier (None for QoS 0)."""
        packet_id = self.next_packet_id() if qos else None
        self.stream.send(build_publish(topic, payload, qos, packet_id, retain, False, self.protocol_version))
        return packet_id

    def wait_puback(self, packet_id, deadline):
        """Wait for the PUBACK of a QoS 1 PUBLISH; returns the parse_puback dict."""
        try:
            header, body = self._wait_for(PUBACK, packet_id, deadline)
        except WireTimeout:
            raise WireTimeout('no PUBACK: timed out')
        return parse_puback(header, body, self.protocol_version)

    def wait_message(self, topic, payload, deadline):
        """Wait for a PUBLISH of payload on topic; returns its dict (with 'arrived', a monotonic time).

        Messages with another topic or payload are acknowledged and skipped."""
        if isinstance(payload, str):
            payload = payload.encode('utf-8')
        while True:
            while self.received:
                message = self.received.pop(0)
                if message['topic'] == topic and message['payload'] == payload:
                    return message
            self._handle(*self.read(deadline))

    def ping(self, deadline):
        """Send a PINGREQ and wait for the PINGRESP."""
        self.stream.send(PINGREQ_PACKET)
        while True:
            header, body = self.read(deadline)
            if header >> 4 == PINGRESP:
                return
            self._handle(header, body)

    def disconnect(self):
        """Send DISCONNECT (normal disconnection) and close the socket; never raises."""
        try:
            self.stream.send(DISCONNECT)
        except Exception:
            pass
        try:
            self.stream.sock.close()
        except Exception:
            pass
