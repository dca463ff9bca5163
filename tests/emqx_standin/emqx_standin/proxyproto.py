"""HAProxy PROXY protocol v1 (text) and v2 (binary) header parsing (standard library only).

Spec: https://www.haproxy.org/download/2.8/doc/proxy-protocol.txt
"""

import ipaddress
import struct

V1_PREFIX = b"PROXY "
V1_MAX = 107  # including the CRLF
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"

PP2_TYPE_ALPN = 0x01
PP2_TYPE_AUTHORITY = 0x02
PP2_TYPE_CRC32C = 0x03
PP2_TYPE_NOOP = 0x04
PP2_TYPE_UNIQUE_ID = 0x05
PP2_TYPE_SSL = 0x20
PP2_SUBTYPE_SSL_VERSION = 0x21
PP2_SUBTYPE_SSL_CN = 0x22
PP2_SUBTYPE_SSL_CIPHER = 0x23
PP2_SUBTYPE_SSL_SIG_ALG = 0x24
PP2_SUBTYPE_SSL_KEY_ALG = 0x25
PP2_TYPE_NETNS = 0x30


class ProxyError(Exception):
    """Invalid or unsupported PROXY header."""


class ProxyInfo:
    """Result of parsing one header.

    command: "PROXY" (addresses valid), "LOCAL" (v2 health check: use the real socket addresses),
    "UNKNOWN" (v1 UNKNOWN or v2 unspecified family: use the real socket addresses).
    """

    __slots__ = ("version", "command", "family", "src_addr", "src_port", "dst_addr", "dst_port", "tlvs",
                 "ssl_cn", "ssl_version", "ssl_client", "ssl_verify")

    def __init__(self, version, command, family=None, src=None, dst=None):
        self.version = version
        self.command = command
        self.family = family
        self.src_addr, self.src_port = src if src else (None, None)
        self.dst_addr, self.dst_port = dst if dst else (None, None)
        self.tlvs = {}
        self.ssl_cn = None
        self.ssl_version = None
        self.ssl_client = None
        self.ssl_verify = None

    @property
    def has_addresses(self):
        return self.command == "PROXY" and self.src_addr is not None

    def __repr__(self):
        return "ProxyInfo(v%d %s %s %s:%s -> %s:%s cn=%r)" % (
            self.version, self.command, self.family, self.src_addr, self.src_port, self.dst_addr,
            self.dst_port, self.ssl_cn)


def header_length(buf):
    """Total length of the header at the start of buf if it can be known yet, else None.

    Raises ProxyError as soon as the bytes cannot start a PROXY header.
    """
    n = len(buf)
    if n == 0:
        return None
    if buf[0] == 0x50:  # 'P'
        m = min(n, len(V1_PREFIX))
        if bytes(buf[:m]) != V1_PREFIX[:m]:
            raise ProxyError("invalid_proxy_info: not a PROXY header")
        idx = bytes(buf[:V1_MAX]).find(b"\r\n")
        if idx >= 0:
            return idx + 2
        if n >= V1_MAX:
            raise ProxyError("invalid_proxy_info: v1 header longer than 107 bytes")
        return None
    if buf[0] == 0x0D:
        m = min(n, 12)
        if bytes(buf[:m]) != V2_SIG[:m]:
            raise ProxyError("invalid_proxy_info: bad v2 signature")
        if n < 16:
            return None
        return 16 + struct.unpack_from("!H", buf, 14)[0]
    raise ProxyError("invalid_proxy_info: connection did not start with a PROXY header")


def _ip(text, version):
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise ProxyError("invalid_proxy_info: bad address %r" % text) from None
    if addr.version != version:
        raise ProxyError("invalid_proxy_info: address %r is not IPv%d" % (text, version))
    return str(addr)


def _port(text):
    if not text.isdigit() or len(text) > 5 or int(text) > 65535:
        raise ProxyError("invalid_proxy_info: bad port %r" % text)
    return int(text)


def parse(header):
    """Parse a complete header (exactly header_length() bytes) into a ProxyInfo."""
    header = bytes(header)
    if header.startswith(V1_PREFIX):
        return _parse_v1(header)
    if header.startswith(V2_SIG):
        return _parse_v2(header)
    raise ProxyError("invalid_proxy_info: not a PROXY header")


def _parse_v1(header):
    if not header.endswith(b"\r\n"):
        raise ProxyError("invalid_proxy_info: v1 header without CRLF")
    try:
        line = header[:-2].decode("ascii")
    except UnicodeDecodeError:
        raise ProxyError("invalid_proxy_info: v1 header is not ASCII") from None
    parts = line.split(" ")
    if len(parts) >= 2 and parts[1] == "UNKNOWN":
        return ProxyInfo(1, "UNKNOWN", "UNKNOWN")
    if len(parts) != 6 or parts[1] not in ("TCP4", "TCP6"):
        raise ProxyError("invalid_proxy_info: malformed v1 header %r" % line)
    ver = 4 if parts[1] == "TCP4" else 6
    src = (_ip(parts[2], ver), _port(parts[4]))
    dst = (_ip(parts[3], ver), _port(parts[5]))
    return ProxyInfo(1, "PROXY", parts[1], src, dst)


def _parse_v2(header):
    if len(header) < 16:
        raise ProxyError("invalid_proxy_info: short v2 header")
    ver_cmd = header[12]
    fam = header[13]
    length = struct.unpack_from("!H", header, 14)[0]
    if len(header) != 16 + length:
        raise ProxyError("invalid_proxy_info: v2 length mismatch")
    if ver_cmd >> 4 != 2:
        raise ProxyError("invalid_proxy_info: v2 version %d" % (ver_cmd >> 4))
    cmd = ver_cmd & 0x0F
    if cmd not in (0, 1):
        raise ProxyError("invalid_proxy_info: v2 command %d" % cmd)
    body = header[16:]
    af, proto = fam >> 4, fam & 0x0F
    pos = 0
    src = dst = None
    family = "UNSPEC"
    if af == 1:
        if len(body) < 12:
            raise ProxyError("invalid_proxy_info: v2 AF_INET block too short")
        s, d, sp, dp = struct.unpack_from("!4s4sHH", body, 0)
        src = (str(ipaddress.IPv4Address(s)), sp)
        dst = (str(ipaddress.IPv4Address(d)), dp)
        pos = 12
        family = "TCP4" if proto == 1 else "UDP4"
    elif af == 2:
        if len(body) < 36:
            raise ProxyError("invalid_proxy_info: v2 AF_INET6 block too short")
        s, d, sp, dp = struct.unpack_from("!16s16sHH", body, 0)
        src = (str(ipaddress.IPv6Address(s)), sp)
        dst = (str(ipaddress.IPv6Address(d)), dp)
        pos = 36
        family = "TCP6" if proto == 1 else "UDP6"
    elif af == 3:
        if len(body) < 216:
            raise ProxyError("invalid_proxy_info: v2 AF_UNIX block too short")
        pos = 216
        family = "UNIX"
    elif af != 0:
        raise ProxyError("invalid_proxy_info: v2 address family %d" % af)
    if cmd == 0:
        info = ProxyInfo(2, "LOCAL", family)
    elif af in (1, 2):
        info = ProxyInfo(2, "PROXY", family, src, dst)
    else:
        info = ProxyInfo(2, "UNKNOWN", family)
    _parse_tlvs(body, pos, info)
    return info


def _parse_tlvs(body, pos, info):
    end = len(body)
    while pos < end:
        if end - pos < 3:
            raise ProxyError("invalid_proxy_info: truncated TLV")
        t = body[pos]
        ln = struct.unpack_from("!H", body, pos + 1)[0]
        pos += 3
        if pos + ln > end:
            raise ProxyError("invalid_proxy_info: TLV 0x%02x overruns header" % t)
        value = body[pos:pos + ln]
        pos += ln
        if t == PP2_TYPE_SSL:
            if len(value) < 5:
                raise ProxyError("invalid_proxy_info: PP2_TYPE_SSL too short")
            info.ssl_client = value[0]
            info.ssl_verify = struct.unpack_from("!I", value, 1)[0]
            sub = {}
            spos = 5
            while spos < len(value):
                if len(value) - spos < 3:
                    raise ProxyError("invalid_proxy_info: truncated SSL sub-TLV")
                st = value[spos]
                sl = struct.unpack_from("!H", value, spos + 1)[0]
                spos += 3
                if spos + sl > len(value):
                    raise ProxyError("invalid_proxy_info: SSL sub-TLV overruns")
                sub[st] = value[spos:spos + sl]
                spos += sl
            if PP2_SUBTYPE_SSL_CN in sub:
                info.ssl_cn = sub[PP2_SUBTYPE_SSL_CN].decode("utf-8", "replace")
            if PP2_SUBTYPE_SSL_VERSION in sub:
                info.ssl_version = sub[PP2_SUBTYPE_SSL_VERSION].decode("ascii", "replace")
            info.tlvs[t] = sub
        else:
            info.tlvs[t] = value
