"""MQTT 3.1 / 3.1.1 / 5.0 packet codec (standard library only).

Part of the EMQX stand-in used as test equipment. Decoders take the packet body (everything after the
fixed header) and raise MalformedPacket on anything invalid; encoders return complete packets.
"""

import struct

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = 8, 9, 10, 11, 12, 13, 14, 15

PACKET_NAMES = {
    1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL", 7: "PUBCOMP",
    8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK", 12: "PINGREQ", 13: "PINGRESP",
    14: "DISCONNECT", 15: "AUTH",
}

MQTT_V3, MQTT_V4, MQTT_V5 = 3, 4, 5

# MQTT 5 reason codes used by the broker
RC_SUCCESS = 0x00
RC_NO_MATCHING_SUBSCRIBERS = 0x10
RC_NO_SUBSCRIPTION_EXISTED = 0x11
RC_UNSPECIFIED_ERROR = 0x80
RC_MALFORMED_PACKET = 0x81
RC_PROTOCOL_ERROR = 0x82
RC_IMPLEMENTATION_SPECIFIC_ERROR = 0x83
RC_UNSUPPORTED_PROTOCOL_VERSION = 0x84
RC_CLIENT_IDENTIFIER_NOT_VALID = 0x85
RC_BAD_USER_NAME_OR_PASSWORD = 0x86
RC_NOT_AUTHORIZED = 0x87
RC_SERVER_UNAVAILABLE = 0x88
RC_SERVER_BUSY = 0x89
RC_BAD_AUTHENTICATION_METHOD = 0x8C
RC_KEEP_ALIVE_TIMEOUT = 0x8D
RC_SESSION_TAKEN_OVER = 0x8E
RC_TOPIC_FILTER_INVALID = 0x8F
RC_TOPIC_NAME_INVALID = 0x90
RC_PACKET_IDENTIFIER_IN_USE = 0x91
RC_PACKET_IDENTIFIER_NOT_FOUND = 0x92
RC_RECEIVE_MAXIMUM_EXCEEDED = 0x93
RC_TOPIC_ALIAS_INVALID = 0x94
RC_PACKET_TOO_LARGE = 0x95
RC_QUOTA_EXCEEDED = 0x97
RC_RETAIN_NOT_SUPPORTED = 0x9A
RC_QOS_NOT_SUPPORTED = 0x9B
RC_SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9E
RC_SERVER_SHUTTING_DOWN = 0x8B
RC_ADMINISTRATIVE_ACTION = 0x98
RC_WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED = 0xA2
RC_DISCONNECT_WITH_WILL = 0x04

# MQTT 3.1.1 CONNACK return codes
V3_ACCEPTED = 0
V3_BAD_PROTOCOL_VERSION = 1
V3_IDENTIFIER_REJECTED = 2
V3_SERVER_UNAVAILABLE = 3
V3_BAD_USERNAME_OR_PASSWORD = 4
V3_NOT_AUTHORIZED = 5


class MalformedPacket(Exception):
    """Invalid bytes on the wire. reason_code is the MQTT 5 reason code to report."""

    def __init__(self, text, reason_code=RC_MALFORMED_PACKET):
        super().__init__(text)
        self.reason_code = reason_code


class PacketTooLarge(MalformedPacket):
    def __init__(self, size, limit):
        super().__init__("packet of %d bytes exceeds max_packet_size %d" % (size, limit), RC_PACKET_TOO_LARGE)
        self.size = size


# ---------------------------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------------------------
_BYTE, _U16, _U32, _VARINT, _STR, _BIN, _PAIR = range(7)

PROPERTIES = {
    0x01: ("payload_format_indicator", _BYTE),
    0x02: ("message_expiry_interval", _U32),
    0x03: ("content_type", _STR),
    0x08: ("response_topic", _STR),
    0x09: ("correlation_data", _BIN),
    0x0B: ("subscription_identifier", _VARINT),
    0x11: ("session_expiry_interval", _U32),
    0x12: ("assigned_client_identifier", _STR),
    0x13: ("server_keep_alive", _U16),
    0x15: ("authentication_method", _STR),
    0x16: ("authentication_data", _BIN),
    0x17: ("request_problem_information", _BYTE),
    0x18: ("will_delay_interval", _U32),
    0x19: ("request_response_information", _BYTE),
    0x1A: ("response_information", _STR),
    0x1C: ("server_reference", _STR),
    0x1F: ("reason_string", _STR),
    0x21: ("receive_maximum", _U16),
    0x22: ("topic_alias_maximum", _U16),
    0x23: ("topic_alias", _U16),
    0x24: ("maximum_qos", _BYTE),
    0x25: ("retain_available", _BYTE),
    0x26: ("user_property", _PAIR),
    0x27: ("maximum_packet_size", _U32),
    0x28: ("wildcard_subscription_available", _BYTE),
    0x29: ("subscription_identifier_available", _BYTE),
    0x2A: ("shared_subscription_available", _BYTE),
}
PROPERTY_IDS = {name: (pid, ptype) for pid, (name, ptype) in PROPERTIES.items()}
# properties that may appear more than once: kept as lists
_MULTI = {"user_property", "subscription_identifier"}

# properties of a PUBLISH / will message that travel with the application message
MESSAGE_PROPERTIES = (
    "payload_format_indicator", "message_expiry_interval", "content_type", "response_topic",
    "correlation_data", "user_property",
)


def encode_varint(n):
    if n < 0 or n > 268435455:
        raise ValueError("variable byte integer out of range: %r" % n)
    if n < 128:
        return bytes((n,))
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def decode_varint(buf, pos, end=None):
    """Return (value, new_pos). Raise MalformedPacket if invalid or running past end."""
    if end is None:
        end = len(buf)
    mult = 1
    value = 0
    for i in range(4):
        if pos >= end:
            raise MalformedPacket("truncated variable byte integer")
        b = buf[pos]
        pos += 1
        value += (b & 0x7F) * mult
        if not b & 0x80:
            return value, pos
        mult <<= 7
    raise MalformedPacket("variable byte integer longer than 4 bytes")


def next_packet(buf, pos, max_size):
    """Look for one complete packet in buf starting at pos.

    Returns None if more bytes are needed, else (first_byte, body_start, end) (absolute offsets).
    Raises PacketTooLarge / MalformedPacket.
    """
    n = len(buf)
    if n - pos < 2:
        return None
    mult = 1
    value = 0
    i = pos + 1
    while True:
        if i >= n:
            return None
        b = buf[i]
        i += 1
        value += (b & 0x7F) * mult
        if not b & 0x80:
            break
        mult <<= 7
        if i - pos > 4:
            raise MalformedPacket("remaining length longer than 4 bytes")
    total = (i - pos) + value
    if max_size and total > max_size:
        raise PacketTooLarge(total, max_size)
    if n - pos < total:
        return None
    return buf[pos], i, pos + total


class _Reader:
    """Bounds-checked reader over a bytes object."""

    __slots__ = ("b", "pos", "end")

    def __init__(self, b, pos=0, end=None):
        self.b = b
        self.pos = pos
        self.end = len(b) if end is None else end

    def remaining(self):
        return self.end - self.pos

    def _need(self, n):
        if self.pos + n > self.end:
            raise MalformedPacket("packet truncated")

    def u8(self):
        self._need(1)
        v = self.b[self.pos]
        self.pos += 1
        return v

    def u16(self):
        self._need(2)
        v = (self.b[self.pos] << 8) | self.b[self.pos + 1]
        self.pos += 2
        return v

    def u32(self):
        self._need(4)
        v = struct.unpack_from("!I", self.b, self.pos)[0]
        self.pos += 4
        return v

    def varint(self):
        v, self.pos = decode_varint(self.b, self.pos, self.end)
        return v

    def binary(self):
        n = self.u16()
        self._need(n)
        v = bytes(self.b[self.pos:self.pos + n])
        self.pos += n
        return v

    def string(self):
        raw = self.binary()
        try:
            s = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedPacket("invalid UTF-8 string") from None
        if "\x00" in s:
            raise MalformedPacket("UTF-8 string contains U+0000")
        return s

    def rest(self):
        v = bytes(self.b[self.pos:self.end])
        self.pos = self.end
        return v

    def properties(self):
        length = self.varint()
        self._need(length)
        end = self.pos + length
        props = {}
        sub = _Reader(self.b, self.pos, end)
        while sub.pos < end:
            pid = sub.varint()
            try:
                name, ptype = PROPERTIES[pid]
            except KeyError:
                raise MalformedPacket("unknown property 0x%02x" % pid) from None
            if ptype == _BYTE:
                v = sub.u8()
            elif ptype == _U16:
                v = sub.u16()
            elif ptype == _U32:
                v = sub.u32()
            elif ptype == _VARINT:
                v = sub.varint()
            elif ptype == _STR:
                v = sub.string()
            elif ptype == _BIN:
                v = sub.binary()
            else:
                v = (sub.string(), sub.string())
            if name in _MULTI:
                props.setdefault(name, []).append(v)
            elif name in props:
                raise MalformedPacket("property %s given twice" % name, RC_PROTOCOL_ERROR)
            else:
                props[name] = v
        self.pos = end
        return props


def encode_string(s):
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    return struct.pack("!H", len(b)) + b


def encode_properties(props):
    if not props:
        return b"\x00"
    out = bytearray()
    for name, value in props.items():
        if value is None:
            continue
        try:
            pid, ptype = PROPERTY_IDS[name]
        except KeyError:
            continue  # unknown / private keys are not put on the wire
        values = value if (name in _MULTI and isinstance(value, (list, tuple))
                           and not (name == "user_property" and len(value) == 2
                                    and isinstance(value[0], str))) else [value]
        for v in values:
            out += encode_varint(pid)
            if ptype == _BYTE:
                out.append(int(v) & 0xFF)
            elif ptype == _U16:
                out += struct.pack("!H", int(v))
            elif ptype == _U32:
                out += struct.pack("!I", int(v))
            elif ptype == _VARINT:
                out += encode_varint(int(v))
            elif ptype == _STR:
                out += encode_string(v)
            elif ptype == _BIN:
                b = v if isinstance(v, (bytes, bytearray)) else str(v).encode("utf-8")
                out += struct.pack("!H", len(b)) + b
            else:
                k, val = v
                out += encode_string(k) + encode_string(val)
    return encode_varint(len(out)) + bytes(out)


def _packet(first_byte, body):
    return bytes((first_byte,)) + encode_varint(len(body)) + body


# ---------------------------------------------------------------------------------------------
# decoders (body = bytes after the fixed header)
# ---------------------------------------------------------------------------------------------
def decode_connect(body):
    r = _Reader(body)
    proto_name = r.string()
    proto_ver = r.u8()
    pkt = {"proto_name": proto_name, "proto_ver": proto_ver}
    if (proto_name, proto_ver) not in (("MQTT", 4), ("MQTT", 5), ("MQIsdp", 3)):
        # caller answers with "unsupported protocol version"
        pkt["unsupported"] = True
        return pkt
    flags = r.u8()
    if flags & 0x01:
        raise MalformedPacket("CONNECT reserved flag set")
    clean_start = bool(flags & 0x02)
    will_flag = bool(flags & 0x04)
    will_qos = (flags >> 3) & 0x03
    will_retain = bool(flags & 0x20)
    has_password = bool(flags & 0x40)
    has_username = bool(flags & 0x80)
    if not will_flag and (will_qos or will_retain):
        raise MalformedPacket("will QoS/retain set without will flag")
    if will_qos == 3:
        raise MalformedPacket("will QoS 3")
    if proto_ver != 5 and has_password and not has_username:
        raise MalformedPacket("password without user name")
    pkt["clean_start"] = clean_start
    pkt["keepalive"] = r.u16()
    pkt["properties"] = r.properties() if proto_ver == 5 else {}
    pkt["clientid"] = r.string()
    will = None
    if will_flag:
        wprops = r.properties() if proto_ver == 5 else {}
        wtopic = r.string()
        wpayload = r.binary()
        will = {"topic": wtopic, "payload": wpayload, "qos": will_qos, "retain": will_retain,
                "properties": wprops}
    pkt["will"] = will
    pkt["username"] = r.string() if has_username else None
    pkt["password"] = r.binary() if has_password else None
    if r.remaining():
        raise MalformedPacket("trailing bytes in CONNECT")
    return pkt


def decode_publish(flags, body, ver):
    qos = (flags >> 1) & 0x03
    if qos == 3:
        raise MalformedPacket("PUBLISH with QoS 3")
    if qos == 0 and flags & 0x08:
        raise MalformedPacket("DUP flag on QoS 0 PUBLISH")
    r = _Reader(body)
    topic = r.string()
    pid = None
    if qos:
        pid = r.u16()
        if pid == 0:
            raise MalformedPacket("packet identifier 0")
    props = r.properties() if ver == 5 else {}
    payload = r.rest()
    return topic, pid, qos, bool(flags & 0x01), bool(flags & 0x08), props, payload


def decode_ack(body, ver):
    """PUBACK / PUBREC / PUBREL / PUBCOMP: (pid, reason_code, props)."""
    r = _Reader(body)
    pid = r.u16()
    rc = 0
    props = {}
    if ver == 5 and r.remaining():
        rc = r.u8()
        if r.remaining():
            props = r.properties()
    return pid, rc, props


def decode_subscribe(body, ver):
    r = _Reader(body)
    pid = r.u16()
    if pid == 0:
        raise MalformedPacket("packet identifier 0")
    props = r.properties() if ver == 5 else {}
    topics = []
    while r.remaining():
        tf = r.string()
        o = r.u8()
        if ver == 5:
            if o & 0xC0:
                raise MalformedPacket("reserved subscription option bits set")
            opts = (o & 0x03, bool(o & 0x04), bool(o & 0x08), (o >> 4) & 0x03)
            if opts[3] == 3:
                raise MalformedPacket("retain handling 3")
        else:
            if o & 0xFC:
                raise MalformedPacket("reserved subscription option bits set")
            opts = (o & 0x03, False, False, 0)
        if opts[0] == 3:
            raise MalformedPacket("subscription QoS 3")
        topics.append((tf, opts))  # opts = (qos, no_local, retain_as_published, retain_handling)
    if not topics:
        raise MalformedPacket("SUBSCRIBE without topic filters", RC_PROTOCOL_ERROR)
    return pid, props, topics


def decode_unsubscribe(body, ver):
    r = _Reader(body)
    pid = r.u16()
    if pid == 0:
        raise MalformedPacket("packet identifier 0")
    props = r.properties() if ver == 5 else {}
    filters = []
    while r.remaining():
        filters.append(r.string())
    if not filters:
        raise MalformedPacket("UNSUBSCRIBE without topic filters", RC_PROTOCOL_ERROR)
    return pid, props, filters


def decode_disconnect(body, ver):
    if ver != 5 or not body:
        return 0, {}
    r = _Reader(body)
    rc = r.u8()
    props = r.properties() if r.remaining() else {}
    return rc, props


# ---------------------------------------------------------------------------------------------
# encoders
# ---------------------------------------------------------------------------------------------
def encode_connack(ver, session_present, rc, props=None):
    body = bytes((1 if session_present else 0, rc))
    if ver == 5:
        body += encode_properties(props or {})
    return _packet(0x20, body)


def encode_publish(ver, topic, payload, qos, retain, dup=False, pid=None, props=None):
    first = 0x30 | (qos << 1) | (0x01 if retain else 0) | (0x08 if dup and qos else 0)
    body = encode_string(topic)
    if qos:
        body += struct.pack("!H", pid)
    if ver == 5:
        body += encode_properties(props or {})
    return _packet(first, body + payload)


def encode_ack(ptype, pid, ver, rc=0, props=None):
    first = (ptype << 4) | (0x02 if ptype == PUBREL else 0)
    body = struct.pack("!H", pid)
    if ver == 5 and (rc or props):
        body += bytes((rc,))
        if props:
            body += encode_properties(props)
    return _packet(first, body)


def encode_suback(ver, pid, codes, props=None):
    body = struct.pack("!H", pid)
    if ver == 5:
        body += encode_properties(props or {})
    return _packet(0x90, body + bytes(codes))


def encode_unsuback(ver, pid, codes, props=None):
    body = struct.pack("!H", pid)
    if ver == 5:
        body += encode_properties(props or {}) + bytes(codes)
    return _packet(0xB0, body)


PINGRESP_PACKET = b"\xd0\x00"


def encode_disconnect(ver, rc=0, props=None):
    if ver != 5:
        return b"\xe0\x00"
    body = bytes((rc,))
    if props:
        body += encode_properties(props)
    return _packet(0xE0, body)


# ---------------------------------------------------------------------------------------------
# topics
# ---------------------------------------------------------------------------------------------
def valid_topic_name(topic):
    return bool(topic) and "+" not in topic and "#" not in topic and "\x00" not in topic


def valid_topic_filter(tf):
    if not tf or "\x00" in tf:
        return False
    words = tf.split("/")
    for i, w in enumerate(words):
        if w == "#":
            if i != len(words) - 1:
                return False
        elif w == "+":
            continue
        elif "#" in w or "+" in w:
            return False
    return True


def topic_matches(tf, topic):
    """Does topic filter tf match topic name topic ('$' topics are not matched by leading wildcards)?"""
    fw = tf.split("/")
    tw = topic.split("/")
    if topic.startswith("$") and fw[0] in ("+", "#"):
        return False
    n = len(tw)
    for i, f in enumerate(fw):
        if f == "#":
            return True
        if i >= n:
            return False
        if f != "+" and f != tw[i]:
            return False
    return len(fw) == n
