# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Check a config mapping (emq_node_extra_config) against EMQX 5.8.9's schema before it is written.

EMQX drops an unknown root key with a warning, but refuses to boot on an unknown key inside a struct
and on a value of the wrong type. The tables of the structs are in
plugins/module_utils/emqx_schema_58.py (from tag v5.8.9 of emqx/emqx); how each value is read follows
emqx/hocon 0.44.0 (hocon_tconf, hocon_schema_builtin, hocon_postprocess), typerefl 0.9.6 and the
typerefl converters of apps/emqx/src/emqx_schema.erl (to_duration/1, to_bytesize/1, to_percent/1,
to_ip_port/1). Messages never quote a value EMQX marks sensitive.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import math
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence
from ansible.module_utils.six import string_types
from ansible_collections.iothub.emq.plugins.module_utils.emqx_schema_58 import ROOTS, TLS_VERSIONS

# hocon_tconf ?MAP_KEY_RE, and the 255-character limit of default_map_key_name_validator/1.
_MAP_KEY_RE = re.compile(r"^[A-Za-z0-9]+[A-Za-z0-9_-]*\Z")
# hocon_postprocess:duration/1: number+unit pairs, units f w d h m s ms (each all lower or all upper case).
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(ms|MS|[fFwWdDhHmMsS])")
_DURATION_MS = {"f": 1209600000, "w": 604800000, "d": 86400000, "h": 3600000, "m": 60000, "s": 1000, "ms": 1}
# hocon_postprocess:bytesize/1.
_BYTESIZE_RE = re.compile(r"^ *(\d+)(b|B|kb|KB|mb|MB|gb|GB)\Z")
_BYTESIZE_UNITS = {"b": 1, "kb": 1024, "mb": 1024 ** 2, "gb": 1024 ** 3}
# emqx_schema:to_integer/1 (string:to_integer/1 with nothing left over; no spaces).
_ERL_INT_RE = re.compile(r"^[+-]?\d+\Z")
# typerefl to_integer/1 (trims white space first).
_TRIMMED_INT_RE = re.compile(r"^\s*[+-]?\d+\s*\Z")
_NUMBER_RE = re.compile(r"^\s*[+-]?(\d+|\d+\.\d+(?:[eE][+-]?\d+)?)\s*\Z")
# hocon_postprocess:percent/1 (the regex is not anchored at the start).
_PERCENT_RE = re.compile(r"([0-9.]+)%\Z")
# emqx_conf_schema:validate_time_offset/1.
_TIME_OFFSET_RE = re.compile(r"^([-+][0-1][0-9]:[0-6][0-9]|system|utc)\Z")
MAX_PACKET_SIZE = 268435455          # emqx_schema ?MAX_INT_MQTT_PACKET_SIZE
MAX_HEAP_BYTES = 128 * 1024 ** 3     # emqx_schema:validate_heap_size/1 (128 GB)
_NO_VALUE = object()


class _Bad(Exception):
    """A value EMQX refuses: text says what is wrong and what to write instead."""


def _show(value, secret=False):
    if secret:
        return "the value (not shown)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a {...} block"
    if is_sequence(value):
        return "a list"
    if isinstance(value, string_types):
        text = json.dumps(str(value), ensure_ascii=False)
        return text if len(text) <= 60 else text[:57] + '..."'
    return str(value)


def _range_text(lo, hi):
    if lo is not None and hi is not None:
        return "from %d to %d" % (lo, hi)
    if lo is not None:
        return "%d or more" % lo
    if hi is not None:
        return "%d or less" % hi
    return ""


def _describe(typ):
    """What to write for a type, with an example."""
    kind = typ[0]
    if kind == "bool":
        return "true or false"
    if kind == "int":
        return ("an integer " + ("(%s)" % _range_text(typ[1], typ[2]) if typ[1] is not None or typ[2] is not None else "")).strip()
    if kind == "number":
        return "a number such as 1.5"
    if kind == "enum":
        return "one of " + ", ".join(_symbol_text(s) for s in typ[1])
    if kind == "duration":
        plain = "seconds" if typ[1] == "s" else "milliseconds"
        return 'a duration such as "30s", "5m", "1h" or "500ms" (a plain integer is %s)' % plain
    if kind == "bytesize":
        return 'a byte size such as "1MB", "512KB" or "1GB" (a plain integer is bytes)'
    if kind == "percent":
        return 'a percentage such as "80%"'
    if kind in ("string", "secret"):
        return "a string"
    if kind == "atom":
        return "a name (a string)"
    if kind == "ip_port":
        return 'an "IP:port" or a port, such as "0.0.0.0:1883", "[::]:1883" or 1883 (no host names)'
    if kind == "comma_list":
        return 'a comma-separated string such as "a, b" (or a list)'
    if kind == "comma_string":
        return 'a comma-separated string such as "a, b" (not a list)'
    if kind == "array":
        return "a list of " + _describe(typ[1])
    if kind == "union":
        return " or ".join(m if isinstance(m, string_types) else _describe(m) for m in typ[1])
    if kind == "check":
        return _describe(typ[2])
    return "a {...} block (a mapping)"


def _symbol_text(symbol):
    if symbol is True:
        return "true"
    if symbol is False:
        return "false"
    return str(symbol)


# ---- leaf values: each returns the value EMQX would hold, or raises _Bad ----------------------------
def _wrong(value, typ, secret=False, note=""):
    return _Bad("wrong type: %s is not %s%s" % (_show(value, secret), _describe(typ), note))


def _as_text(value):
    """hocon_schema_builtin:convert/2: integers are read as their decimal text, strings as themselves."""
    if isinstance(value, bool) or not isinstance(value, (int,) + tuple(string_types)):
        return None
    return str(value)


def _to_bool(value, typ, secret):
    if isinstance(value, bool):
        return value
    text = value.strip() if isinstance(value, string_types) else None
    if text in ("true", "false"):
        return text == "true"
    raise _wrong(value, typ, secret, ' (EMQX reads only true/false or the strings "true"/"false", not yes/no/on/1)')


def _in_range(number, lo, hi, shown):
    if (lo is not None and number < lo) or (hi is not None and number > hi):
        raise _Bad("out of range: %s is not %s" % (shown, _range_text(lo, hi)))
    return number


def _to_int(value, typ, secret):
    if isinstance(value, bool) or isinstance(value, float):
        raise _wrong(value, typ, secret)
    if isinstance(value, int):
        number = value
    elif isinstance(value, string_types) and _TRIMMED_INT_RE.match(value):
        number = int(value.strip())
    else:
        raise _wrong(value, typ, secret)
    return _in_range(number, typ[1], typ[2], _show(value, secret))


def _to_number(value, typ, secret):
    if isinstance(value, bool):
        raise _wrong(value, typ, secret)
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, string_types) and _NUMBER_RE.match(value):
        return float(value)
    raise _wrong(value, typ, secret)


def _parse_duration_ms(text):
    """hocon_postprocess:duration/1 in milliseconds, or None when it is not a duration."""
    pos, total = 0, 0.0
    while pos < len(text):
        part = _DURATION_PART.match(text, pos)
        if not part:
            return None
        total += float(part.group(1)) * _DURATION_MS[part.group(2).lower()]
        pos = part.end()
    return total if text else None


def _to_duration(value, typ, secret):
    unit, top = typ[1], typ[2]
    text = _as_text(value)
    if text is None:
        raise _wrong(value, typ, secret)
    millis = _parse_duration_ms(text)
    if millis is not None:
        number = int(math.floor(millis + 0.5)) if unit == "ms" else int(math.ceil(millis / 1000.0))
    elif _ERL_INT_RE.match(text):
        number = int(text)
    else:
        raise _wrong(value, typ, secret)
    if top is not None and number > top:
        raise _Bad("out of range: %s is more than %d %s (the longest timeout EMQX takes)" % (_show(value, secret), top, unit))
    if top is not None and number < 0:
        raise _Bad("out of range: %s is negative" % _show(value, secret))
    return number


def _to_bytesize(value, typ, secret):
    text = _as_text(value)
    if text is None:
        raise _wrong(value, typ, secret)
    sized = _BYTESIZE_RE.match(text)
    if sized:
        return int(sized.group(1)) * _BYTESIZE_UNITS[sized.group(2).lower()]
    if _ERL_INT_RE.match(text):
        return int(text)
    raise _wrong(value, typ, secret, '; units are B, KB, MB, GB, in all lower or all upper case' if re.search("[a-zA-Z]", text) else "")


def _to_percent(value, typ, secret):
    if isinstance(value, float):
        return value
    if isinstance(value, string_types):
        found = _PERCENT_RE.search(value)
        if found:
            digits = found.group(1)
            if re.match(r"^\d+\Z", digits):
                share = int(digits) / 100.0
            elif re.match(r"^\d+\.\d+\Z", digits):
                share = float(digits) / 100.0
            else:
                raise _wrong(value, typ, secret)
            if share > 1.0:
                raise _Bad("out of range: %s is more than 100%%" % _show(value, secret))
            return share
    raise _wrong(value, typ, secret)


def _ipv4_short(host):
    """inet:parse_address/1 also takes a.b.c (16-bit c) and a.b (24-bit b)."""
    parts = host.split(".")
    limits = {2: (255, 16777215), 3: (255, 255, 65535), 4: (255, 255, 255, 255)}.get(len(parts))
    return bool(limits) and all(p.isdigit() and int(p) <= top for p, top in zip(parts, limits))


def _to_ip_port(value, typ, secret):
    text = _as_text(value)
    if text is None:
        raise _wrong(value, typ, secret)
    text = text.replace(" ", "")
    host, colon, port = text.rpartition(":")
    if colon and host.startswith("["):
        if not host.endswith("]"):
            raise _wrong(value, typ, secret)
        host = host[1:-1]
    if not re.match(r"^\s*[+-]?\d+\s*\Z", port) or not 0 <= int(port) <= 65535:
        raise _wrong(value, typ, secret, " (ports are 0 to 65535)")
    if host:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if not _ipv4_short(host):
                raise _wrong(value, typ, secret)
    return text


def _to_enum(value, typ, secret):
    symbols = typ[1]
    if isinstance(value, bool):
        candidate = value
    elif isinstance(value, int):
        candidate = value
    elif isinstance(value, string_types):
        candidate = int(value) if re.match(r"^[+-]?\d+\Z", value) else str(value)
        candidate = {"true": True, "false": False}.get(candidate, candidate) if isinstance(candidate, str) else candidate
    else:
        raise _wrong(value, typ, secret)
    # Same kind and value; isinstance, not type(): Ansible hands filters tagged subclasses of str and int.
    for symbol in symbols:
        same_kind = all(isinstance(symbol, kind) == isinstance(candidate, kind) for kind in (bool, int, string_types))
        if same_kind and symbol == candidate:
            return symbol
    names = [_symbol_text(s) for s in symbols]
    close = difflib.get_close_matches(_symbol_text(candidate), names, n=1, cutoff=0.5)
    raise _Bad("%s is not one of %s%s" % (_show(value, secret), ", ".join(names), "; did you mean %s?" % close[0] if close else ""))


def _to_string(value, typ, secret):
    if isinstance(value, (dict, bool, float)) or value is None or is_sequence(value):
        raise _wrong(value, typ, secret)
    return str(value)


def _to_atom(value, typ, secret):
    if isinstance(value, (dict, float)) or value is None or is_sequence(value):
        raise _wrong(value, typ, secret)
    return str(value)


def _to_comma_list(value, typ, secret):
    if isinstance(value, string_types):
        return [item for item in re.split("[, ]", value) if item]
    if is_sequence(value) and all(isinstance(item, string_types) for item in value):
        return list(value)
    raise _wrong(value, typ, secret)


def _to_comma_string(value, typ, secret):
    text = _as_text(value)
    if text is None:
        raise _wrong(value, typ, secret)
    return [item for item in re.split("[, ]", text) if item]


_LEAVES = {
    "bool": _to_bool, "int": _to_int, "number": _to_number, "duration": _to_duration, "bytesize": _to_bytesize,
    "percent": _to_percent, "ip_port": _to_ip_port, "enum": _to_enum, "string": _to_string, "secret": _to_string,
    "atom": _to_atom, "comma_list": _to_comma_list, "comma_string": _to_comma_string,
}


# ---- the validators and converters EMQX attaches to single fields ----------------------------------
def _check_max_packet_size(raw, value):
    # emqx_schema:convert_max_packet_size/2 reads "256MB" as the largest size; validate_max_packet_size/1.
    if raw == "256MB":
        return
    if value < 1 or value > MAX_PACKET_SIZE:
        raise _Bad('out of range: %s is not from 1 byte to %d bytes (write "256MB" for the largest)' % (_show(raw), MAX_PACKET_SIZE))


def _check_max_heap_size(raw, value):
    if value // 8 > MAX_HEAP_BYTES // 8:
        raise _Bad('out of range: %s is more than "128GB"' % _show(raw))


def _check_keepalive_multiplier(raw, value):
    if not 1.0 <= float(value) <= 65535.0:
        raise _Bad("out of range: %s is not from 1 to 65535" % _show(raw))


def _check_time_offset(raw, value):
    if not _TIME_OFFSET_RE.match(value):
        raise _Bad('%s is not a time offset: write "system", "utc" or "+hh:mm" / "-hh:mm" such as "+08:00"' % _show(raw))


def _check_tcp_keepalive(raw, value):
    if value == "none":
        return
    parts = [p for p in re.split("[, ]", value) if p]
    limits = (("Idle", 72000), ("Interval", 750), ("Probes", 90))
    if len(parts) != 3 or not all(re.match(r"^\d+\Z", p) for p in parts):
        raise _Bad('%s is not "none" or "Idle,Interval,Probes" (three positive integers such as "240,30,5")' % _show(raw))
    for part, (name, top) in zip(parts, limits):
        if not 1 <= int(part) <= top:
            raise _Bad("out of range: %s %s is not from 1 to %d" % (name, part, top))


def _check_access_rules(raw, value):
    # emqx_schema:access_rules_converter/1 splits each string at commas; is_invalid_rule/1.
    for text in value:
        for rule in [r.strip() for r in re.split(r"\s*,\s*", text)]:
            words = rule.split()
            good = len(words) == 2 and words[0] in ("allow", "deny")
            if good and words[1] != "all":
                try:
                    ipaddress.ip_network(words[1], strict=False)
                except ValueError:
                    good = False
            if not good:
                raise _Bad('%s is not an access rule: write "allow all", "deny all" or "allow 10.0.0.0/8"' % _show(rule))


def _check_tls_versions(raw, value):
    unknown = [v for v in value if v not in TLS_VERSIONS]
    if unknown:
        raise _Bad("%s not supported; the TLS versions are %s" % (", ".join(unknown), ", ".join(TLS_VERSIONS)))
    if "tlsv1.3" in value and len(value) >= 2 and "tlsv1.2" not in value:
        raise _Bad("a list with tlsv1.3 and an older version must include tlsv1.2 (EMQX refuses the gap)")


def _check_sample_interval(raw, value):
    if not (1 <= value <= 60 and 60 % value == 0):
        raise _Bad('out of range: %s must be from 1s to 60s and divide 60s, such as "10s" or "30s"' % _show(raw))


_CHECKS = {
    "max_packet_size": _check_max_packet_size, "max_heap_size": _check_max_heap_size,
    "keepalive_multiplier": _check_keepalive_multiplier, "time_offset": _check_time_offset,
    "tcp_keepalive": _check_tcp_keepalive, "access_rules": _check_access_rules, "tls_versions": _check_tls_versions,
    "sample_interval": _check_sample_interval,
}


# ---- walking the config ---------------------------------------------------------------------------
class _Walk(object):
    def __init__(self, version, strict):
        self.version = version
        self.strict = strict
        self.problems = []

    def add(self, path, text):
        self.problems.append("%s: %s" % (path, text))

    def leaf(self, value, typ, path):
        """Convert one value; record what is wrong and return _NO_VALUE when EMQX would refuse it."""
        try:
            return self.convert(value, typ, path)
        except _Bad as bad:
            self.add(path, str(bad))
            return _NO_VALUE

    def convert(self, value, typ, path):
        kind = typ[0]
        if kind in ("any", "deprecated"):
            return value
        if value is None:
            raise _Bad("has no value (null); give it one or leave the key out")
        if kind in _LEAVES:
            return _LEAVES[kind](value, typ, kind == "secret")
        if kind == "union":
            return self.union(value, typ)
        if kind == "array":
            return self.array(value, typ, path)
        if kind == "check":
            return self.checked(value, typ, path)
        if kind == "struct":
            return self.struct(value, typ[1], path)
        if kind in ("map", "tombstone_map"):
            return self.mapping(value, typ, path)
        if kind == "log_file":
            return self.log_file(value, typ[1], path)
        if kind == "dashboard_https":
            return self.dashboard_https(value, typ[1], path)
        raise AnsibleFilterError("emqx_config_problems: no rule for type %r at %s" % (kind, path))

    def union(self, value, typ):
        range_error = None
        for member in typ[1]:
            if isinstance(member, string_types):
                if isinstance(value, string_types) and value == member:
                    return member
                continue
            try:
                return self.convert(value, member, "")
            except _Bad as bad:
                if str(bad).startswith("out of range") and range_error is None:
                    range_error = bad
        if range_error is not None:
            literals = [m for m in typ[1] if isinstance(m, string_types)]
            raise _Bad("%s (or write %s)" % (range_error, " or ".join(literals)) if literals else str(range_error))
        raise _wrong(value, typ)

    def array(self, value, typ, path):
        if not is_sequence(value) or isinstance(value, string_types):
            raise _wrong(value, typ, note=" (a YAML list)")
        out = []
        for index, item in enumerate(value):
            out.append(self.leaf(item, typ[1], "%s.%d" % (path, index + 1)))
        if any(item is _NO_VALUE for item in out):
            return _NO_VALUE
        return out

    def checked(self, value, typ, path):
        name, base = typ[1], typ[2]
        if name == "rotation_count":
            # emqx_conf_schema:convert_rotation/2: an integer, or the old {count = N} block; a string is refused.
            if isinstance(value, dict):
                value = value.get("count", 10)
            if isinstance(value, bool) or not isinstance(value, int):
                raise _wrong(value, base, note=" (a number, not a string)")
            return self.convert(value, base, path)
        if name == "node_role":
            role = self.convert(value, base, path)
            if role != "core" and self.strict:
                raise _Bad("EMQX %s (open source) runs core nodes only; role %s needs the enterprise edition (5.9+)"
                           % (self.version, role))
            return role
        converted = self.convert(value, base, path)
        if converted is not _NO_VALUE:
            _CHECKS[name](value, converted)
        return converted

    def struct(self, value, struct, path):
        if not isinstance(value, dict):
            raise _wrong(value, ("struct",))
        for key, item in value.items():
            name = struct.aliases.get(key, key)
            sub = "%s.%s" % (path, key)
            if name in struct.fields:
                self.leaf(item, struct.fields[name], sub)
            elif name in struct.enterprise:
                if self.strict:
                    self.add(sub, "only the enterprise edition (5.9+) knows this key; EMQX %s refuses to boot on it" % self.version)
                else:
                    self.leaf(item, struct.enterprise[name], sub)
            elif self.strict:
                self.add(sub, self.unknown_text(key, struct))
        return value

    def unknown_text(self, key, struct, extra=""):
        names = sorted(struct.fields)
        close = difflib.get_close_matches(key, names, n=3, cutoff=0.6)
        hint = ("did you mean %s?" % " or ".join(close)) if close else ("the keys it knows are: %s" % ", ".join(names))
        return "unknown key%s; EMQX %s refuses to boot on it (%s): %s" % (extra, self.version, struct.source, hint)

    def map_key(self, key, path):
        if not _MAP_KEY_RE.match(key) or len(key) > 255:
            self.add(path, "bad name %s: names are letters, digits, _ and -, starting with a letter or digit" % _show(key))
            return False
        return True

    def mapping(self, value, typ, path):
        if not isinstance(value, dict):
            raise _wrong(value, ("map",))
        for key, item in value.items():
            sub = "%s.%s" % (path, key)
            if not self.map_key(key, sub):
                continue
            if typ[0] == "tombstone_map" and item == "marked_for_deletion":
                continue
            self.leaf(item, typ[1], sub)
        return value

    def log_file(self, value, handler, path):
        # emqx_conf_schema:ensure_file_handlers/2: handler fields (and their aliases) written directly under
        # log.file belong to the handler named "default"; every other key names a handler of its own.
        if not isinstance(value, dict):
            raise _wrong(value, ("struct",))
        known = set(handler.fields) | set(handler.aliases)
        unnamed = dict((k, v) for k, v in value.items() if k in known)
        if unnamed:
            self.struct(unnamed, handler, path)
        for key, item in value.items():
            if key in known:
                continue
            sub = "%s.%s" % (path, key)
            if not isinstance(item, dict):
                if self.strict:
                    self.add(sub, self.unknown_text(key, handler, " (not a field of a log file handler, and a handler named %s"
                                                                  " would be a {...} block)" % key))
                continue
            if self.map_key(key, sub):
                self.leaf(item, ("struct", handler), sub)
        return value

    def dashboard_https(self, value, https, path):
        # emqx_dashboard_schema:https_converter/2: without an ssl_options block, TLS fields written next to
        # bind are moved into one.
        if not isinstance(value, dict):
            raise _wrong(value, ("struct",))
        ssl = https.fields["ssl_options"][1]
        if "ssl_options" not in value:
            moved = dict((k, v) for k, v in value.items() if k in ssl.fields)
            self.struct(moved, ssl, path)
            value = dict((k, v) for k, v in value.items() if k not in ssl.fields)
        return self.struct(value, https, path)


# ---- HOCON's dotted keys --------------------------------------------------------------------------
def _merge(old, new):
    if isinstance(old, dict) and isinstance(new, dict):
        out = dict(old)
        for key, value in new.items():
            out[key] = _merge(out[key], value) if key in out else value
        return out
    return new


def _expand(value, path, problems):
    """Refuse dotted keys: iothub.emq.to_hocon writes {"a.b": 1} as one quoted key "a.b", which HOCON
    does not split, so EMQX would read a key named "a.b" (and refuse it); nested mappings merge as meant."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            key = str(key)
            if "." in key:
                parts = [part.strip() for part in key.split(".")]
                nested = "{" + ": {".join(parts) + ": ...}" + "}" * (len(parts) - 1)
                problems.append("%s: a key with dots is written as one quoted key, which EMQX reads as a single name %s "
                                "and does not know; write it nested, as %s"
                                % ((path + "." if path else "") + key, _show(key), nested))
                continue
            out[key] = _expand(item, (path + "." if path else "") + key, problems)
        return out
    if is_sequence(value) and not isinstance(value, string_types):
        return [_expand(item, "%s.%d" % (path, i + 1), problems) for i, item in enumerate(value)]
    return value


# ---- cross-field validations (emqx_schema:validations/0) ------------------------------------------
def _watermarks(config, walk):
    sysmon = config.get("sysmon") if isinstance(config.get("sysmon"), dict) else {}
    pairs = (("vm", "process_low_watermark", "process_high_watermark", "60%", "80%"),
             ("os", "cpu_low_watermark", "cpu_high_watermark", "60%", "80%"))
    for group, low_key, high_key, low_default, high_default in pairs:
        block = sysmon.get(group) if isinstance(sysmon.get(group), dict) else {}
        if low_key not in block and high_key not in block:
            continue
        try:
            low = _to_percent(block.get(low_key, low_default), ("percent",), False)
            high = _to_percent(block.get(high_key, high_default), ("percent",), False)
        except _Bad:
            continue
        if not high > low:
            walk.add("sysmon.%s.%s" % (group, low_key), "must be below sysmon.%s.%s (%s is not below %s)"
                     % (group, high_key, _show(block.get(low_key, low_default)), _show(block.get(high_key, high_default))))


def _is_58(version):
    parts = re.match(r"^\s*(\d+)\.(\d+)", str(version))
    if not parts:
        raise AnsibleFilterError("expected an EMQX version like 5.8.9, got %r" % (version,))
    return (int(parts.group(1)), int(parts.group(2))) == (5, 8)


def emqx_config_problems(config, version):
    """What EMQX <version> would refuse to boot on in a config mapping (its schema as of 5.8.9), one sentence each."""
    if not isinstance(config, dict):
        raise AnsibleFilterError("emqx_config_problems expects a mapping, got %s" % type(config).__name__)
    walk = _Walk(str(version).strip(), _is_58(version))
    expanded = _expand(config, "", walk.problems)
    for root, value in expanded.items():
        if root in ROOTS:
            walk.leaf(value, ROOTS[root], root)
    _watermarks(expanded, walk)
    return walk.problems


class FilterModule(object):
    def filters(self):
        return {"emqx_config_problems": emqx_config_problems}
