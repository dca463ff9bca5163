# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Test equipment shared by the module tests: certificates made with the openssl command, and the
server side of MQTT and WebSocket, written independently of the module code so that the tests check
what the modules put on the wire. Everything listens on 127.0.0.1 only."""

from __future__ import annotations

import base64
import hashlib
import socket
import ssl
import struct
import subprocess


LOOPBACK = '127.0.0.1'
TIMEOUT = 3


# -- certificates ------------------------------------------------------------------------


def _openssl(*args, cwd):
    subprocess.run(['openssl'] + list(args), cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(d):
    """A CA, a server certificate for localhost/127.0.0.1 valid 30 days, and a client certificate, in d."""
    ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
    _openssl('req', '-x509', *ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '30',
             '-subj', '/O=iothub/CN=Test CA',
             '-addext', 'basicConstraints=critical,CA:TRUE',
             '-addext', 'keyUsage=critical,keyCertSign,cRLSign', cwd=d)
    (d / 'server.ext').write_text(
        'subjectAltName=DNS:localhost,IP:127.0.0.1\n'
        'basicConstraints=CA:FALSE\n'
        'keyUsage=critical,digitalSignature\n'
        'extendedKeyUsage=serverAuth\n'
        'subjectKeyIdentifier=hash\n'
        'authorityKeyIdentifier=keyid,issuer\n')
    (d / 'client.ext').write_text(
        'basicConstraints=CA:FALSE\n'
        'keyUsage=critical,digitalSignature\n'
        'extendedKeyUsage=clientAuth\n')
    for name, subj in (('server', '/O=iothub/CN=localhost'), ('client', '/O=iothub/CN=probe')):
        _openssl('req', *ec, '-keyout', name + '.key', '-out', name + '.csr', '-subj', subj, cwd=d)
        _openssl('x509', '-req', '-in', name + '.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
                 '-out', name + '.pem', '-days', '30', '-extfile', name + '.ext', cwd=d)
    return dict((n, str(d / n)) for n in ('ca.pem', 'server.pem', 'server.key', 'client.pem', 'client.key'))


def server_context(pki, require_client_cert=False):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki['server.pem'], pki['server.key'])
    if require_client_cert:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(pki['ca.pem'])
    return ctx


# -- sockets -------------------------------------------------------------------------------


def closed_port():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((LOOPBACK, 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def recv_exact(conn, count):
    data = b''
    while len(data) < count:
        chunk = conn.recv(count - len(data))
        if not chunk:
            raise EOFError('closed')
        data += chunk
    return data


# -- MQTT, server side -------------------------------------------------------------------------


def read_mqtt(read):
    header = read(1)[0]
    length, multiplier = 0, 1
    while True:
        byte = read(1)[0]
        length += (byte & 0x7F) * multiplier
        multiplier *= 128
        if not byte & 0x80:
            break
    return header, read(length)


def varint(value):
    out = bytearray()
    while True:
        byte, value = value % 128, value // 128
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def skip_properties(body, pos):
    """Position after the MQTT 5 properties at pos (a variable byte integer length, then the properties)."""
    length, multiplier = 0, 1
    while True:
        byte = body[pos]
        pos += 1
        length += (byte & 0x7F) * multiplier
        multiplier *= 128
        if not byte & 0x80:
            return pos + length


def string_at(body, pos):
    n = struct.unpack('!H', body[pos:pos + 2])[0]
    return body[pos + 2:pos + 2 + n], pos + 2 + n


def parse_connect(body):
    """Decode a CONNECT independently of the module code, to check what the module sends."""
    name, pos = string_at(body, 0)
    level, flags, keepalive = struct.unpack('!BBH', body[pos:pos + 4])
    pos += 4
    if level == 5:
        assert body[pos] == 0  # no properties
        pos += 1
    client_id, pos = string_at(body, pos)
    fields = dict(protocol=name.decode(), level=level, clean=bool(flags & 0x02), keepalive=keepalive,
                  client_id=client_id.decode(), username=None, password=None)
    if flags & 0x80:
        value, pos = string_at(body, pos)
        fields['username'] = value.decode()
    if flags & 0x40:
        value, pos = string_at(body, pos)
        fields['password'] = value.decode()
    assert pos == len(body)
    return fields


def connack(rc, level=4, reason_string=None):
    if level == 5:
        props = b''
        if reason_string:
            raw = reason_string.encode()
            props = b'\x1f' + struct.pack('!H', len(raw)) + raw
        props += b'\x24\x01'  # maximum QoS 1
        body = bytes([0, rc, len(props)]) + props
    else:
        body = bytes([0, rc])
    return bytes([0x20, len(body)]) + body


# -- WebSocket, server side ----------------------------------------------------------------------


class WsConn(object):
    """Server side of a WebSocket: unmasks client frames, sends unmasked frames."""

    def __init__(self, conn):
        self.conn = conn
        self.buf = b''

    def read(self, count):
        while len(self.buf) < count:
            first, second = recv_exact(self.conn, 2)
            opcode = first & 0x0F
            assert second & 0x80, 'client frames must be masked'
            length = second & 0x7F
            if length == 126:
                length = struct.unpack('!H', recv_exact(self.conn, 2))[0]
            elif length == 127:
                length = struct.unpack('!Q', recv_exact(self.conn, 8))[0]
            mask = recv_exact(self.conn, 4)
            data = recv_exact(self.conn, length)
            if opcode == 0x8:
                raise EOFError('close frame')
            assert opcode == 0x2, 'MQTT must travel in binary frames'
            self.buf += bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        data, self.buf = self.buf[:count], self.buf[count:]
        return data

    def send(self, payload):
        length = len(payload)
        if length < 126:
            head = bytes([0x82, length])
        elif length < 65536:
            head = bytes([0x82, 126]) + struct.pack('!H', length)
        else:
            head = bytes([0x82, 127]) + struct.pack('!Q', length)
        self.conn.sendall(head + payload)


def ws_upgrade(conn, path='/mqtt', seen=None):
    """Answer a WebSocket upgrade for path with subprotocol mqtt; returns a WsConn, or None after a 404."""
    request = b''
    while b'\r\n\r\n' not in request:
        chunk = conn.recv(4096)
        if not chunk:
            raise EOFError('closed during the upgrade')
        request += chunk
    lines = request.decode().split('\r\n')
    got_path = lines[0].split(' ')[1]
    headers = dict((k.strip().lower(), v.strip()) for k, v in (line.split(':', 1) for line in lines[1:] if ':' in line))
    if seen is not None:
        seen.append(dict(path=got_path, headers=headers))
    if got_path != path:
        conn.sendall(b'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n')
        return None
    accept = base64.b64encode(hashlib.sha1(
        (headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').encode()).digest()).decode()
    conn.sendall(('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
                  'Sec-WebSocket-Accept: {0}\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n').format(accept).encode())
    return WsConn(conn)
