# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Probe one endpoint (TCP, TLS, MQTT, MQTT over TLS, WebSocket, secure WebSocket), or open one.

``probe()`` checks an endpoint for emq_port_check; ``open_stream()`` opens a TCP, TLS, WebSocket or
secure WebSocket connection that MQTT can run over (emq_mqtt_roundtrip), with the same TLS and
WebSocket code.

Standard library only. Certificate details of a connection that was not verified come
from the DER bytes of the peer certificate: through ``cryptography`` when it can be
imported, else through the standard library's private ``ssl._ssl._test_decode_cert``
(which reads a PEM file), else they are left empty and ``decoder`` says why.
"""

from __future__ import annotations

import datetime
import os
import socket
import ssl
import tempfile
import time
import uuid

from ansible_collections.iothub.emq.plugins.module_utils.mqtt_wire import (
    DISCONNECT,
    SocketStream,
    WebSocketStream,
    WireError,
    connack_name,
    mqtt_connect,
)

try:
    from cryptography import x509 as _x509
    from cryptography.x509.oid import ExtensionOID as _ExtensionOID
    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - depends on the target host
    HAS_CRYPTOGRAPHY = False


TLS_TYPES = ('tls', 'mqtts', 'wss')
MQTT_TYPES = ('mqtt', 'mqtts')
WS_TYPES = ('ws', 'wss')

# Long attribute names (as ssl.getpeercert() and cryptography name them) -> RFC 4514 short names.
_SHORT_NAMES = {
    'commonName': 'CN',
    'countryName': 'C',
    'localityName': 'L',
    'stateOrProvinceName': 'ST',
    'organizationName': 'O',
    'organizationalUnitName': 'OU',
    'streetAddress': 'STREET',
    'domainComponent': 'DC',
    'userId': 'UID',
    'emailAddress': 'emailAddress',
    'serialNumber': 'serialNumber',
}


def _escape(value):
    out = []
    for index, char in enumerate(value):
        if char in ',+"\\<>;=' or (index == 0 and char in '# ') or (index == len(value) - 1 and char == ' '):
            out.append('\\' + char)
        else:
            out.append(char)
    return ''.join(out)


def format_name(rdns):
    """RFC 4514 string from a list of RDNs (each a list of (long name, value)), most specific first."""
    parts = []
    for rdn in reversed(list(rdns)):
        parts.append('+'.join('{0}={1}'.format(_SHORT_NAMES.get(k, k), _escape(v)) for k, v in rdn))
    return ','.join(parts)


def _iso(dt):
    return dt.strftime('%Y-%m-%dT%H:%M:%SZ')


def _from_epoch(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)


def _details(subject, issuer, sans, serial, not_before, not_after, decoder):
    now = datetime.datetime.now(datetime.timezone.utc)
    return dict(
        subject=subject,
        issuer=issuer,
        subject_alt_names=sans,
        serial_number=serial,
        not_before=_iso(not_before) if not_before else None,
        not_after=_iso(not_after) if not_after else None,
        days_to_expiry=int((not_after - now).total_seconds() // 86400) if not_after else None,
        decoder=decoder,
    )


def details_from_peercert(cert, decoder):
    """Details from the dict form of ssl.getpeercert() or ssl._ssl._test_decode_cert()."""
    sans = []
    for kind, value in cert.get('subjectAltName', ()):
        sans.append('{0}:{1}'.format('IP' if kind == 'IP Address' else kind, value))
    not_before = cert.get('notBefore')
    not_after = cert.get('notAfter')
    return _details(
        subject=format_name(cert.get('subject', ())),
        issuer=format_name(cert.get('issuer', ())),
        sans=sans,
        serial=cert.get('serialNumber'),
        not_before=_from_epoch(ssl.cert_time_to_seconds(not_before)) if not_before else None,
        not_after=_from_epoch(ssl.cert_time_to_seconds(not_after)) if not_after else None,
        decoder=decoder,
    )


def _crypto_rdns(name):
    rdns = []
    for rdn in name.rdns:
        rdns.append([(getattr(attr.oid, '_name', None) or attr.oid.dotted_string, attr.value) for attr in rdn])
    return rdns


def _hex_serial(number):
    """Upper-case hex with an even number of digits, as OpenSSL (and so the ssl module) prints serials."""
    text = '{0:X}'.format(number)
    return '0' + text if len(text) % 2 else text


def details_from_cryptography(der):
    cert = _x509.load_der_x509_certificate(der)
    sans = []
    try:
        ext = cert.extensions.get_extension_for_oid(_ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        sans.extend('DNS:' + v for v in ext.get_values_for_type(_x509.DNSName))
        sans.extend('IP:' + str(v) for v in ext.get_values_for_type(_x509.IPAddress))
        sans.extend('email:' + v for v in ext.get_values_for_type(_x509.RFC822Name))
        sans.extend('URI:' + v for v in ext.get_values_for_type(_x509.UniformResourceIdentifier))
    except _x509.ExtensionNotFound:
        pass
    if hasattr(cert, 'not_valid_after_utc'):
        not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    else:  # cryptography < 42
        not_before = cert.not_valid_before.replace(tzinfo=datetime.timezone.utc)
        not_after = cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)
    return _details(
        subject=format_name(_crypto_rdns(cert.subject)),
        issuer=format_name(_crypto_rdns(cert.issuer)),
        sans=sans,
        serial=_hex_serial(cert.serial_number),
        not_before=not_before,
        not_after=not_after,
        decoder='cryptography',
    )


def details_from_stdlib(der):
    decode = getattr(getattr(ssl, '_ssl', None), '_test_decode_cert', None)
    if decode is None:
        return None
    fd, path = tempfile.mkstemp(suffix='.pem')
    try:
        with os.fdopen(fd, 'w') as handle:
            handle.write(ssl.DER_cert_to_PEM_cert(der))
        return details_from_peercert(decode(path), 'ssl')
    finally:
        os.unlink(path)


def certificate_details(der, peercert=None, use_cryptography=None):
    """Details of a DER certificate; falls back to peercert (the verified dict form)."""
    use_cryptography = HAS_CRYPTOGRAPHY if use_cryptography is None else use_cryptography
    if der:
        if use_cryptography:
            try:
                return details_from_cryptography(der)
            except Exception:  # unusual certificate: try the next decoder
                pass
        try:
            details = details_from_stdlib(der)
            if details is not None:
                return details
        except Exception:
            pass
    if peercert:
        return details_from_peercert(peercert, 'getpeercert')
    return None


def _connect(host, port, timeout):
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def describe_socket_error(exc, timeout):
    if isinstance(exc, socket.gaierror):
        return 'cannot resolve the host name: {0}'.format(exc.strerror or exc)
    if isinstance(exc, socket.timeout):
        return 'timed out after {0:g} seconds'.format(timeout)
    if isinstance(exc, ConnectionRefusedError):
        return 'connection refused'
    if isinstance(exc, ConnectionResetError):
        return 'connection reset by the server'
    return getattr(exc, 'strerror', None) or str(exc) or exc.__class__.__name__


def _tls_context(verify, ca_path, client_cert, client_key):
    if verify:
        ctx = ssl.create_default_context(cafile=ca_path)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if client_cert:
        ctx.load_cert_chain(client_cert, client_key)
    return ctx


def tls_handshake(sock, server_name, verify=True, ca_path=None, client_cert=None, client_key=None):
    """Wrap a connected socket in TLS; raises ssl.SSLCertVerificationError, ssl.SSLError or OSError."""
    ctx = _tls_context(verify, ca_path, client_cert, client_key)
    return ctx.wrap_socket(sock, server_hostname=server_name)


def _verify_message(exc):
    return getattr(exc, 'verify_message', None) or getattr(exc, 'reason', None) or str(exc)


def verify_failure(ca_path, server_name, exc):
    """The sentence for a certificate that did not verify."""
    return 'the certificate does not verify against {0} for {1}: {2}'.format(
        ca_path or 'the system CA store', server_name, _verify_message(exc))


def handshake_failure(exc, timeout):
    """The sentence for a TLS handshake that failed for another reason than verification."""
    if isinstance(exc, ssl.SSLError):
        detail = getattr(exc, 'reason', None) or str(exc)
    else:
        detail = describe_socket_error(exc, timeout)
    return 'TLS handshake failed: {0}'.format(detail)


def _fail(result, message):
    result['failures'].append(message)


def _handshake_failed(result, exc, timeout):
    result['error'] = handshake_failure(exc, timeout)
    _fail(result, result['error'])


def probe(ep, default_timeout=5.0):
    """Check one endpoint; returns its result dict (see the RETURN docs of emq_port_check)."""
    host = ep['host']
    port = ep['port']
    kind = ep.get('type') or 'tcp'
    expected = ep.get('state') or 'open'
    timeout = ep.get('timeout') or default_timeout
    result = dict(
        name=ep.get('name') or '{0}://{1}:{2}'.format(kind, host, port),
        host=host,
        port=port,
        type=kind,
        state=expected,
        reachable=False,
        address=None,
        ok=False,
        error=None,
        failures=[],
        elapsed=None,
        tls=None,
        websocket=None,
        mqtt=None,
    )
    started = time.monotonic()
    try:
        _probe(ep, result, host, port, kind, expected, timeout)
    except Exception as exc:  # never let one odd endpoint hide the results of the others
        result['error'] = 'unexpected error: {0}: {1}'.format(exc.__class__.__name__, exc)
        _fail(result, result['error'])
    finally:
        result['elapsed'] = round(time.monotonic() - started, 3)
        result['ok'] = not result['failures']
    return result


def _probe(ep, result, host, port, kind, expected, timeout):
    try:
        sock = _connect(host, port, timeout)
    except (OSError, socket.error) as exc:
        result['error'] = describe_socket_error(exc, timeout)
        if isinstance(exc, socket.gaierror):
            _fail(result, result['error'])
        elif expected == 'open':
            _fail(result, 'cannot connect: {0}'.format(result['error']))
        return
    result['reachable'] = True
    try:
        result['address'] = sock.getpeername()[0]
    except OSError:
        pass
    if expected == 'closed':
        sock.close()
        _fail(result, 'the port is open, expected closed')
        return

    try:
        if kind in TLS_TYPES:
            sock = _tls(ep, result, sock, host, port, timeout)
            if sock is None:
                return
        if kind in WS_TYPES:
            path = ep.get('path') or '/mqtt'
            stream = WebSocketStream(sock)
            try:
                stream.handshake(host, port, path)
            finally:
                result['websocket'] = dict(path=path, status=stream.status, subprotocol=stream.subprotocol)
            if ep.get('mqtt_connect') is False:
                return
        else:
            stream = SocketStream(sock)
        if kind in MQTT_TYPES or kind in WS_TYPES:
            _mqtt(ep, result, stream)
    except (WireError, OSError, socket.error, ssl.SSLError) as exc:
        if isinstance(exc, WireError):
            result['error'] = str(exc)
        else:
            result['error'] = describe_socket_error(exc, timeout)
        _fail(result, result['error'])
    finally:
        try:
            sock.close()
        except Exception:
            pass


def _tls(ep, result, sock, host, port, timeout):
    """Handshake; on a verification failure, record it and handshake again without verifying."""
    verify = ep.get('validate_certs', True)
    server_name = ep.get('server_name') or host
    client_cert, client_key = ep.get('client_cert'), ep.get('client_key')
    tls = dict(version=None, cipher=None, cipher_bits=None, server_name=server_name,
               verified=None, verify_error=None)
    result['tls'] = tls
    ssock = None
    if verify:
        try:
            ssock = tls_handshake(sock, server_name, True, ep.get('ca_path'), client_cert, client_key)
            tls['verified'] = True
        except ssl.SSLCertVerificationError as exc:
            tls['verified'] = False
            tls['verify_error'] = _verify_message(exc)
            _fail(result, verify_failure(ep.get('ca_path'), server_name, exc))
            sock.close()
            try:
                sock = _connect(host, port, timeout)
            except (OSError, socket.error) as exc2:
                result['error'] = describe_socket_error(exc2, timeout)
                _fail(result, 'cannot connect again after the verification failure: {0}'.format(result['error']))
                return None
        except (ssl.SSLError, OSError, socket.error) as exc:
            _handshake_failed(result, exc, timeout)
            sock.close()
            return None
    if ssock is None:
        try:
            ssock = tls_handshake(sock, server_name, False, None, client_cert, client_key)
        except (ssl.SSLError, OSError, socket.error) as exc:
            _handshake_failed(result, exc, timeout)
            sock.close()
            return None
    tls['version'] = ssock.version()
    cipher = ssock.cipher() or (None, None, None)
    tls['cipher'], tls['cipher_bits'] = cipher[0], cipher[2]
    der = ssock.getpeercert(binary_form=True)
    details = certificate_details(der, ssock.getpeercert() if tls['verified'] else None)
    if details is None:
        details = dict(subject=None, issuer=None, subject_alt_names=[], serial_number=None, not_before=None,
                       not_after=None, days_to_expiry=None, decoder=None)
    tls.update(details)
    minimum = ep.get('min_days_to_expiry')
    if minimum is not None:
        if tls['days_to_expiry'] is None:
            _fail(result, 'cannot read the certificate expiry date (no decoder available)')
        elif tls['days_to_expiry'] < minimum:
            _fail(result, 'the certificate expires in {0} days ({1}), fewer than the {2} required'.format(
                tls['days_to_expiry'], tls['not_after'], minimum))
    return ssock


def _mqtt(ep, result, stream):
    version = ep.get('protocol_version') or 4
    client_id = ep.get('client_id') or 'emq-port-check-' + uuid.uuid4().hex[:12]
    connack = mqtt_connect(stream, client_id, ep.get('username'), ep.get('password'), version)
    result['mqtt'] = dict(
        protocol_version=version,
        client_id=client_id,
        return_code=connack['return_code'],
        return_code_name=connack['return_code_name'],
        session_present=connack['session_present'],
        properties=connack['properties'],
    )
    expect = ep.get('expect_rc')
    expect = 0 if expect is None else expect
    if connack['return_code'] != expect:
        _fail(result, 'CONNACK {0} ({1}), expected {2} ({3})'.format(
            connack['return_code'], connack['return_code_name'], expect, connack_name(expect, version)))
    if connack['return_code'] == 0:
        try:
            stream.send(DISCONNECT)
        except (OSError, socket.error):
            pass


class ConnectError(Exception):
    """open_stream() could not open the connection; str() says why, as a sentence fragment."""

    def __init__(self, message, info=None):
        super(ConnectError, self).__init__(message)
        self.info = info or {}


def tls_summary(ssock, server_name, verified):
    """The negotiated TLS session of a wrapped socket: version, cipher, server name, verified."""
    cipher = ssock.cipher() or (None, None, None)
    return dict(version=ssock.version(), cipher=cipher[0], cipher_bits=cipher[2], server_name=server_name,
                verified=verified)


def open_stream(host, port, transport='tcp', timeout=5.0, path='/mqtt', server_name=None, ca_path=None,
                validate_certs=True, client_cert=None, client_key=None, user_agent='iothub.emq'):
    """Open a connection MQTT can run over: tcp, tls (also mqtt/mqtts), ws or wss.

    Returns (stream, info): a SocketStream or WebSocketStream (its .sock is the socket, with timeout set)
    and dict(address, tls, websocket) where tls is tls_summary() for TLS transports and websocket is
    dict(path, status, subprotocol) for WebSocket ones (else None). A certificate that does not verify
    is an error (no second, unverified handshake as probe() makes). Raises ConnectError, whose info
    holds what was learnt before the failure.
    """
    info = dict(address=None, tls=None, websocket=None)
    try:
        sock = _connect(host, port, timeout)
    except (OSError, socket.error) as exc:
        raise ConnectError(describe_socket_error(exc, timeout), info)
    try:
        try:
            info['address'] = sock.getpeername()[0]
        except OSError:
            pass
        if transport in TLS_TYPES:
            name = server_name or host
            try:
                sock = tls_handshake(sock, name, validate_certs, ca_path, client_cert, client_key)
            except ssl.SSLCertVerificationError as exc:
                raise ConnectError(verify_failure(ca_path, name, exc), info)
            except (ssl.SSLError, OSError, socket.error) as exc:
                raise ConnectError(handshake_failure(exc, timeout), info)
            info['tls'] = tls_summary(sock, name, True if validate_certs else None)
        if transport in WS_TYPES:
            stream = WebSocketStream(sock)
            try:
                stream.handshake(host, port, path, user_agent=user_agent)
            finally:
                info['websocket'] = dict(path=path, status=stream.status, subprotocol=stream.subprotocol)
        else:
            stream = SocketStream(sock)
    except ConnectError:
        sock.close()
        raise
    except WireError as exc:
        sock.close()
        raise ConnectError(str(exc), info)
    except (OSError, socket.error) as exc:
        sock.close()
        raise ConnectError(describe_socket_error(exc, timeout), info)
    return stream, info
