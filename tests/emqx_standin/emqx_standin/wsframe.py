"""Minimal RFC 6455 WebSocket server side: HTTP upgrade handshake and framing (standard library only)."""

import base64
import hashlib
import struct

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_HTTP_REQUEST = 16384

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

HTTP_REASONS = {400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 426: "Upgrade Required",
                431: "Request Header Fields Too Large"}


class WsError(Exception):
    """Protocol error; close_code is the WebSocket close status to send."""

    def __init__(self, text, close_code=1002):
        super().__init__(text)
        self.close_code = close_code


class HttpError(Exception):
    def __init__(self, status, text=""):
        super().__init__(text or HTTP_REASONS.get(status, ""))
        self.status = status


def parse_request(buf):
    """Parse an HTTP/1.1 request head. Returns None if incomplete, else
    (method, path, headers{lower-name: value}, consumed_bytes). Raises HttpError."""
    idx = buf.find(b"\r\n\r\n")
    if idx < 0:
        if len(buf) > MAX_HTTP_REQUEST:
            raise HttpError(431)
        return None
    head = bytes(buf[:idx]).decode("latin-1")
    lines = head.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise HttpError(400, "bad request line")
    method, target, _version = parts
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise HttpError(400, "bad header line")
        name = name.lower()
        value = value.strip()
        if name in headers:
            headers[name] = headers[name] + ", " + value
        else:
            headers[name] = value
    path = target.split("?", 1)[0]
    return method, path, headers, idx + 4


def accept_key(key):
    return base64.b64encode(hashlib.sha1(key.encode("latin-1") + WS_GUID).digest()).decode("ascii")


def handshake_response(key, subprotocol=None):
    lines = ["HTTP/1.1 101 Switching Protocols", "connection: Upgrade", "upgrade: websocket",
             "sec-websocket-accept: " + accept_key(key)]
    if subprotocol:
        lines.append("sec-websocket-protocol: " + subprotocol)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def http_error_response(status, extra_headers=None):
    reason = HTTP_REASONS.get(status, "Error")
    body = ("%d %s\n" % (status, reason)).encode("ascii")
    lines = ["HTTP/1.1 %d %s" % (status, reason), "content-length: %d" % len(body),
             "content-type: text/plain", "connection: close"]
    for k, v in (extra_headers or {}).items():
        lines.append("%s: %s" % (k, v))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def encode_frame(opcode, payload=b"", fin=True):
    """Server-to-client frame (never masked)."""
    n = len(payload)
    b0 = (0x80 if fin else 0) | opcode
    if n < 126:
        head = struct.pack("!BB", b0, n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, 126, n)
    else:
        head = struct.pack("!BBQ", b0, 127, n)
    return head + payload


def close_frame(code=1000, reason=b""):
    return encode_frame(OP_CLOSE, struct.pack("!H", code) + reason[:120])


def unmask(data, key):
    n = len(data)
    if not n:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


class FrameDecoder:
    """Incremental decoder of client frames. feed() returns a list of events:
    ("data", bytes) for (reassembled) binary messages, ("ping", bytes), ("pong", bytes),
    ("close", code, reason), ("text", bytes). Raises WsError on protocol errors."""

    __slots__ = ("buf", "frag", "frag_op", "max_size")

    def __init__(self, max_size):
        self.buf = bytearray()
        self.frag = None
        self.frag_op = None
        self.max_size = max_size

    def feed(self, data):
        self.buf += data
        events = []
        buf = self.buf
        pos = 0
        n = len(buf)
        while True:
            if n - pos < 2:
                break
            b0, b1 = buf[pos], buf[pos + 1]
            fin = bool(b0 & 0x80)
            if b0 & 0x70:
                raise WsError("reserved bits set (no extension negotiated)")
            op = b0 & 0x0F
            if not b1 & 0x80:
                raise WsError("client frame not masked")
            ln = b1 & 0x7F
            hdr = 2
            if ln == 126:
                if n - pos < 4:
                    break
                ln = struct.unpack_from("!H", buf, pos + 2)[0]
                hdr = 4
            elif ln == 127:
                if n - pos < 10:
                    break
                ln = struct.unpack_from("!Q", buf, pos + 2)[0]
                hdr = 10
            if ln > self.max_size:
                raise WsError("frame too large", 1009)
            if n - pos < hdr + 4 + ln:
                break
            key = bytes(buf[pos + hdr:pos + hdr + 4])
            start = pos + hdr + 4
            payload = unmask(bytes(buf[start:start + ln]), key)
            pos = start + ln
            if op >= 0x8:
                if not fin or ln > 125:
                    raise WsError("bad control frame")
                if op == OP_CLOSE:
                    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                    events.append(("close", code, payload[2:]))
                elif op == OP_PING:
                    events.append(("ping", payload))
                elif op == OP_PONG:
                    events.append(("pong", payload))
                else:
                    raise WsError("unknown control opcode %d" % op)
                continue
            if op == OP_CONT:
                if self.frag is None:
                    raise WsError("continuation frame without a message")
                self.frag += payload
                if len(self.frag) > self.max_size:
                    raise WsError("message too large", 1009)
                if fin:
                    events.append(("data" if self.frag_op == OP_BINARY else "text", bytes(self.frag)))
                    self.frag = None
                    self.frag_op = None
            elif op in (OP_BINARY, OP_TEXT):
                if self.frag is not None:
                    raise WsError("new data frame inside a fragmented message")
                if fin:
                    events.append(("data" if op == OP_BINARY else "text", payload))
                else:
                    self.frag = bytearray(payload)
                    self.frag_op = op
            else:
                raise WsError("unknown opcode %d" % op)
        if pos:
            del buf[:pos]
        return events
