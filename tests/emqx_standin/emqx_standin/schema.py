"""The part of EMQX 5.8's configuration schema that an operator writes, kept as data.

To accept a new key, add it to the tables below (`F(type, default)`). Roots listed in
`LOOSE_ROOTS` are accepted without looking inside (EMQX checks them; the stand-in does not).

load_config() applies EMQX's precedence (lowest first): etc/base.hocon, data/configs/cluster.hocon,
etc/emqx.conf, then EMQX_<PATH> environment variables (`__` between levels), and checks the result.
Errors raise ConfigError carrying the dotted key path, as EMQX names it in its refusal to start.
"""

import ipaddress
import math
import os
import re

from . import hocon

NODEFAULT = object()


class ErlString(str):
    """A reason that EMQX's validator throws as a string: printed quoted, as ~0p prints it."""


class ErlAtom(str):
    """A value hocon has converted to an atom (an enum symbol): printed bare."""


def _edition_name():
    from . import EDITION
    return EDITION


class ConfigError(Exception):
    def __init__(self, path, reason, value=NODEFAULT, unknown=None, line=None, filename=None):
        self.path = path
        self.reason = reason
        self.value = value
        self.unknown = unknown
        self.line = line
        self.filename = filename
        super().__init__(self.describe())

    def key_path(self):
        if self.unknown:
            return "%s.%s" % (self.path, self.unknown) if self.path else self.unknown
        return self.path

    def describe(self):
        if self.reason == "integrity_validation_failure":
            # hocon_tconf:assert_integrity/3 error as hocon_cli logs it (~0p)
            return ("failed_to_check_schema: emqx_conf_schema {error,#{kind => validation_error,"
                    "reason => integrity_validation_failure,result => %s,"
                    "validation_name => check_node_name_and_discovery_strategy}}" % self.value)
        if self.reason == "syntax_error":
            where = self.filename or "config"
            return "failed_to_parse_config: %s line %s: %s" % (where, self.line, self.value)
        reason = '"%s"' % self.reason if isinstance(self.reason, ErlString) else self.reason
        parts = ["kind => validation_error", 'path => "%s"' % self.path, "reason => %s" % reason]
        if self.unknown:
            parts.append('unknown => <<"%s">>' % self.unknown)
        if self.value is not NODEFAULT:
            parts.append("value => %s" % _show(self.value))
        return "#{%s}" % ", ".join(parts)


def _show(v):
    if isinstance(v, ErlAtom):
        return str(v)
    if isinstance(v, str):
        return '"%s"' % v
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (list, dict)):
        return repr(v)
    return str(v)


# ---------------------------------------------------------------------------------------------
# value types: each is a callable(value, path) -> converted value, raising ConfigError

class T:
    def __call__(self, v, path):
        raise NotImplementedError


class Any_(T):
    def __call__(self, v, path):
        return v


class Str(T):
    def __init__(self, allow_empty=True, pattern=None):
        self.allow_empty = allow_empty
        self.pattern = re.compile(pattern) if pattern else None

    def __call__(self, v, path):
        if isinstance(v, bool) or isinstance(v, (dict, list)) or v is None:
            raise ConfigError(path, "unable_to_convert_to_string", v)
        v = str(v)
        if not self.allow_empty and v == "":
            raise ConfigError(path, "empty_string_not_allowed", v)
        if self.pattern and not self.pattern.fullmatch(v):
            raise ConfigError(path, "bad_format", v)
        return v


class FilePath(Str):
    """A string path; `${EMQX_ETC_DIR}` style references are expanded like EMQX does."""

    def __call__(self, v, path):
        v = super().__call__(v, path)
        return interpolate_env(v)


def interpolate_env(s):
    def rep(m):
        name = m.group(1) or m.group(2)
        return os.environ.get(name, m.group(0))
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)", rep, s)


class Bool(T):
    def __call__(self, v, path):
        if isinstance(v, bool):
            return v
        if isinstance(v, str) and v in ("true", "false"):
            return v == "true"
        raise ConfigError(path, "unable_to_convert_to_boolean_type", v)


class Int(T):
    def __init__(self, lo=None, hi=None):
        self.lo, self.hi = lo, hi

    def __call__(self, v, path):
        if isinstance(v, bool):
            raise ConfigError(path, "unable_to_convert_to_integer_type", v)
        if isinstance(v, str) and re.fullmatch(r"[+-]?[0-9]+", v):
            v = int(v)
        if not isinstance(v, int):
            raise ConfigError(path, "unable_to_convert_to_integer_type", v)
        if self.lo is not None and v < self.lo:
            raise ConfigError(path, "value_too_small (min %s)" % self.lo, v)
        if self.hi is not None and v > self.hi:
            raise ConfigError(path, "value_too_large (max %s)" % self.hi, v)
        return v


class Num(T):
    def __init__(self, lo=None, hi=None):
        self.lo, self.hi = lo, hi

    def __call__(self, v, path):
        if isinstance(v, bool):
            raise ConfigError(path, "unable_to_convert_to_float_type", v)
        if isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                pass
        if not isinstance(v, (int, float)):
            raise ConfigError(path, "unable_to_convert_to_float_type", v)
        if (self.lo is not None and v < self.lo) or (self.hi is not None and v > self.hi):
            raise ConfigError(path, "out_of_range (min %s, max %s)" % (self.lo, self.hi), v)
        return float(v)


_DUR_UNITS = {"ms": 1, "s": 1000, "m": 60000, "h": 3600000, "d": 86400000, "w": 7 * 86400000,
              "f": 14 * 86400000}
# hocon 0.44.0 hocon_postprocess:do_duration/2: number ([0-9.]+) and unit, repeated; each unit all
# lower or all upper case (f F w W d D h H m M s S ms MS); decimals allowed, the sum is rounded.
_DUR_RE = re.compile(r"(?:[0-9.]+(?:ms|MS|[fFwWdDhHmMsS]))+")
_DUR_PART = re.compile(r"([0-9.]+)(ms|MS|[fFwWdDhHmMsS])")


def _decimal(text):
    """hocon_postprocess:get_decimal/1: "1", "1.5", ".5"; None where EMQX's parse fails."""
    if re.fullmatch(r"[0-9]+", text):
        return int(text)
    if re.fullmatch(r"[0-9]*\.[0-9]+", text):
        return float(text)
    return None


def parse_duration_ms(s):
    if not isinstance(s, str) or not _DUR_RE.fullmatch(s):
        return None
    total = 0
    for num, unit in _DUR_PART.findall(s):
        val = _decimal(num)
        if val is None:
            return None
        total += val * _DUR_UNITS[unit.lower()]
    return int(math.floor(total + 0.5))  # erlang:round/1 (half away from zero; total >= 0)


class Duration(T):
    """Duration, converted to milliseconds (an integer means milliseconds)."""

    def __init__(self, allow_infinity=False, allow_disabled=False):
        self.allow_infinity = allow_infinity
        self.allow_disabled = allow_disabled

    def __call__(self, v, path):
        if self.allow_infinity and v == "infinity":
            return "infinity"
        if self.allow_disabled and v in ("disabled", False):
            return "disabled"
        if isinstance(v, bool):
            raise ConfigError(path, "not_a_duration", v)
        if isinstance(v, int):
            return v
        if isinstance(v, str):
            if re.fullmatch(r"[+-]?[0-9]+", v):
                return int(v)
            ms = parse_duration_ms(v)
            if ms is not None:
                return ms
        raise ConfigError(path, "not_a_duration", v)


_SIZE_UNITS = {"": 1, "b": 1, "kb": 1024, "mb": 1024 ** 2, "gb": 1024 ** 3}


class Bytesize(T):
    """emqx_schema:to_bytesize/1: hocon_postprocess:bytesize/1 (`^ *([0-9]+)(b|B|kb|KB|mb|MB|gb|GB)$`:
    no blank before the unit, the unit all lower or all upper case) or an integer string.
    `lo`/`hi` are a validator's bounds (bytes)."""

    def __init__(self, allow_infinity=False, lo=None, hi=None, reason="not_a_bytesize"):
        self.allow_infinity = allow_infinity
        self.lo, self.hi, self.reason = lo, hi, reason

    def __call__(self, v, path):
        size = self._size(v, path)
        if size == "infinity":
            return size
        if self.lo is not None and size < self.lo:
            raise ConfigError(path, "%s_too_small (minimum %s)" % (self.reason, self.lo), v)
        if self.hi is not None and size > self.hi:
            raise ConfigError(path, "%s_too_large (maximum %s)" % (self.reason, self.hi), v)
        return size

    def _size(self, v, path):
        if self.allow_infinity and v == "infinity":
            return "infinity"
        if isinstance(v, bool):
            raise ConfigError(path, "not_a_bytesize", v)
        if isinstance(v, int):
            return v
        if isinstance(v, str):
            m = re.fullmatch(r" *([0-9]+)(b|B|kb|KB|mb|MB|gb|GB)", v)
            if m:
                return int(m.group(1)) * _SIZE_UNITS[m.group(2).lower()]
            if re.fullmatch(r"[+-]?[0-9]+", v):
                return int(v)
        raise ConfigError(path, "not_a_bytesize", v)


class Percent(T):
    """emqx_schema:percent() is a float(): a float value as it is, or a string through
    to_percent/1 (hocon_postprocess:percent/1, `([0-9.]+)(%)$`), which must give 0.0..1.0."""

    def __call__(self, v, path):
        if isinstance(v, float):
            return v
        if isinstance(v, str):
            m = re.search(r"([0-9.]+)%$", v)
            if m and re.fullmatch(r"[0-9]+(\.[0-9]+)?", m.group(1)):
                num = m.group(1)
                pct = int(num) / 100 if num.isdigit() else math.floor(float(num) * 100 + 0.5) / 10000
                if 0.0 <= pct <= 1.0:
                    return pct
        raise ConfigError(path, "not_a_percent", v)


class Enum(T):
    def __init__(self, *choices):
        self.choices = choices

    @staticmethod
    def _text(v):
        if v is True:
            return "true"
        if v is False:
            return "false"
        return str(v)

    def __call__(self, v, path):
        if isinstance(v, (str, int, bool)):
            sv = self._text(v)
            for c in self.choices:
                if self._text(c) == sv:
                    return c
        raise ConfigError(path, "unable_to_convert_to_enum_symbol (expected one of: %s)"
                          % ", ".join(self._text(c) for c in self.choices), v)


class OneOf(T):
    """Union: try each type in turn."""

    def __init__(self, *types):
        self.types = types

    def __call__(self, v, path):
        first = None
        for t in self.types:
            try:
                return t(v, path)
            except ConfigError as e:
                if first is None or (e.reason == "unknown_fields" and first.reason != "unknown_fields"):
                    first = e
        raise first


class InfOr(T):
    def __init__(self, inner):
        self.inner = inner

    def __call__(self, v, path):
        if v == "infinity":
            return "infinity"
        return self.inner(v, path)


NODE_NAME_RE = re.compile(r"[0-9A-Za-z_\-]+@[0-9A-Za-z_.\-:\[\]]+")


def valid_node_name(s):
    if not isinstance(s, str) or not NODE_NAME_RE.fullmatch(s):
        return False
    host = s.split("@", 1)[1]
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        pass
    label = r"[A-Za-z0-9]([A-Za-z0-9\-]*[A-Za-z0-9])?"
    return bool(re.fullmatch(r"%s(\.%s)*" % (label, label), host))


class NodeName(T):
    def __call__(self, v, path):
        if not isinstance(v, str) or not valid_node_name(v):
            raise ConfigError(path, "bad_node_name (expected name@host, name matching [0-9A-Za-z_-]+)", v)
        return v


def inet_address_family(text):
    """inet:parse_address/1 as EMQX calls it: "ipv4", "ipv6" or None. IPv4 also takes the short
    forms inet_parse accepts (a.b.c with a 16-bit c, a.b with a 24-bit b)."""
    if not isinstance(text, str) or not text:
        return None
    parts = text.split(".")
    if ":" not in text and 2 <= len(parts) <= 4 and all(p.isdigit() for p in parts):
        limits = {4: [255] * 4, 3: [255, 255, 65535], 2: [255, 16777215]}[len(parts)]
        return "ipv4" if all(int(p) <= lim for p, lim in zip(parts, limits)) else None
    if ":" in text:
        try:
            ipaddress.IPv6Address(text)
            return "ipv6"
        except ValueError:
            return None
    return None


def _parse_port(text):
    """emqx_schema:parse_port/1 -> (port, None) or (None, reason)."""
    t = text.strip()
    m = re.fullmatch(r"[+-]?[0-9]+", t)
    if not m:
        return None, "bad_port_number"
    p = int(t)
    if p < 0:
        return None, "port_number_must_be_positive"
    if p > 65535:
        return None, "port_number_too_large"
    return p, None


class Bind(T):
    """emqx_schema:ip_port(): an integer, or a string as to_ip_port/1 takes it: spaces removed,
    split at the LAST colon, `[...]` brackets dropped, the part before it an IP address
    (inet:parse_address/1: `0.0.0.0:1883`, `::1:1883`, `[::1]:1883`, `:::1883`), empty for a
    local port (`:1883`, `1883`). A host name (`localhost:1883`) is refused: bad_ip_port."""

    def __init__(self, allow_zero=False):
        self.allow_zero = allow_zero

    def __call__(self, v, path):
        lo = 0 if self.allow_zero else 1
        if isinstance(v, int) and not isinstance(v, bool):
            if lo <= v <= 65535:
                return v
            raise ConfigError(path, "bad_port_number", v)
        if not isinstance(v, str):
            raise ConfigError(path, "bad_ip_port", v)
        s = v.replace(" ", "")
        ip, sep, port_text = s.rpartition(":")
        if not sep:
            port, err = _parse_port(s)
            if err:
                raise ConfigError(path, err, v)
            return s
        if ip.startswith("["):
            if not ip.endswith("]"):
                raise ConfigError(path, "bad_ip_port", v)
            ip = ip[1:-1]
        port, err = _parse_port(port_text)
        if not ip:
            if err:
                raise ConfigError(path, err, v)
            return s
        if err or inet_address_family(ip) is None:
            raise ConfigError(path, "bad_ip_port", v)
        return s


class ListOf(T):
    def __init__(self, inner, comma_string=False):
        self.inner = inner
        self.comma_string = comma_string

    def __call__(self, v, path):
        if isinstance(v, str) and self.comma_string:
            v = [x.strip() for x in v.split(",") if x.strip()] if v.strip() else []
        if isinstance(v, dict) and all(k.isdigit() for k in v):
            # EMQX accepts arrays written as indexed objects (e.g. from env: a.1 = x)
            v = [v[k] for k in sorted(v, key=int)]
        if not isinstance(v, list):
            raise ConfigError(path, "not_array", v)
        return [self.inner(x, "%s.%d" % (path, i + 1)) for i, x in enumerate(v)]


class CommaSeparatedList(T):
    """emqx_schema:comma_separated_list(): typerefl list(string()) read from a string with
    to_comma_separated_list/1, string:tokens(Str, ", ") (commas and spaces both separate, empty parts
    vanish). hocon_schema_builtin:convert/2 only turns a printable string into the type; an array stays a
    list of binaries, which the typecheck of list(string()) refuses."""

    def __call__(self, v, path):
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            v = str(v)
        if not isinstance(v, str):
            raise ConfigError(path, "expected: emqx_schema:comma_separated_list()", v)
        return [x for x in re.split(r"[, ]", v) if x]


class F:
    """A field: type (a T or an Obj/MapOf) and default."""

    __slots__ = ("type", "default")

    def __init__(self, type_, default=NODEFAULT):
        self.type = type_
        self.default = default


class Obj(T):
    def __init__(self, fields, aliases=None):
        self.fields = fields
        self.aliases = aliases or {}

    def __call__(self, v, path):
        if v is None:
            v = {}
        if not isinstance(v, dict):
            raise ConfigError(path, "not_a_struct_value", v)
        for alias, real in self.aliases.items():
            if alias in v:
                val = v.pop(alias)
                if isinstance(val, dict) and isinstance(v.get(real), dict):
                    v[real] = hocon.merge(val, v[real])
                elif real not in v:
                    v[real] = val
        unknown = [k for k in v if k not in self.fields]
        if unknown:
            raise ConfigError(path, "unknown_fields", unknown=unknown[0])
        out = {}
        for name, f in self.fields.items():
            sub = "%s.%s" % (path, name) if path else name
            if name in v:
                out[name] = f.type(v[name], sub)
            elif f.default is not NODEFAULT:
                d = f.default() if callable(f.default) else f.default
                out[name] = f.type(_copy(d), sub) if d is not None else None
            elif isinstance(f.type, Obj):
                out[name] = f.type({}, sub)
            elif isinstance(f.type, MapOf):
                out[name] = {}
        return out


def _copy(v):
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy(x) for x in v]
    return v


class MapOf(T):
    """hocon_tconf map field: keys must match ^[A-Za-z0-9]+[A-Za-z0-9-_]*$ (MAP_KEY_RE), else
    invalid_map_key at the map's path."""

    def __init__(self, inner, key_pattern=r"[A-Za-z0-9][A-Za-z0-9_\-]*"):
        self.inner = inner
        self.key_re = re.compile(key_pattern)

    def __call__(self, v, path):
        if not isinstance(v, dict):
            raise ConfigError(path, "not_a_struct_value", v)
        out = {}
        for k, x in v.items():
            sub = "%s.%s" % (path, k)
            if not self.key_re.fullmatch(k):
                raise ConfigError(path, "invalid_map_key", k)
            out[k] = self.inner(x, sub)
        return out


class MarkedOr(T):
    """A listener: the string `marked_for_deletion` or the listener struct."""

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, v, path):
        if v == "marked_for_deletion":
            return "marked_for_deletion"
        return self.inner(v, path)


MAX_INT_MQTT_PACKET_SIZE = 268435455


class MaxPacketSize(Bytesize):
    """mqtt.max_packet_size: convert_max_packet_size/2 turns "256MB" into 268435455B, then
    validate_max_packet_size/1 wants 1..268435455."""

    def __call__(self, v, path):
        if v == "256MB":
            v = MAX_INT_MQTT_PACKET_SIZE
        return super().__call__(v, path)


def _access_rule_ok(rule):
    """emqx_schema is_invalid_rule/1: "allow|deny all" or "allow|deny <CIDR>" (esockd_cidr:parse)."""
    parts = rule.split()
    if len(parts) != 2 or parts[0] not in ("allow", "deny"):
        return False
    if parts[1] == "all":
        return True
    try:
        ipaddress.ip_network(parts[1], strict=False)
        return True
    except ValueError:
        return False


class AccessRules(T):
    """Listener access_rules: an array of strings (a bare string is refused); access_rules_converter/1
    splits each element at commas, access_rules_validator/1 checks every rule."""

    def __call__(self, v, path):
        rules = ListOf(STR)(v, path)
        flat = [r.strip() for rule in rules for r in re.split(r"\s*,\s*", rule)]
        bad = [r for r in flat if not _access_rule_ok(r)]
        if bad:
            raise ConfigError(path, "invalid_rule(s): %s" % ", ".join(bad), v)
        return flat


ANY = Any_()
STR = Str()
BOOL = Bool()
DUR = Duration()
TLS_VERSIONS = ("tlsv1.3", "tlsv1.2", "tlsv1.1", "tlsv1")
LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency", "all")

# ---------------------------------------------------------------------------------------------
# the schema

NODE = Obj({
    "name": F(NodeName(), "emqx@127.0.0.1"),
    "cookie": F(Str(allow_empty=False), "emqxsecretcookie"),
    "data_dir": F(FilePath(allow_empty=False), "data"),
    "role": F(Enum("core", "replicant"), "core"),  # alias db_role
    "max_ports": F(Int(1024, 134217727), 1048576),
    "dist_net_ticktime": F(DUR, "2m"),
    "process_limit": F(Int(1024, 134217727), 2097152),
    "config_files": F(ListOf(STR)),
    "global_gc_interval": F(Duration(allow_disabled=True), "15m"),
    "crash_dump_file": F(FilePath()),
    "crash_dump_seconds": F(DUR),
    "crash_dump_bytes": F(Bytesize()),
    "dist_buffer_size": F(Int(1, 2097151)),
    "max_ets_tables": F(Int(1)),
    "broker_pool_size": F(Int(1)),
    "generic_pool_size": F(Int(1)),
    "channel_cleanup_batch_size": F(Int(1)),
    "backtrace_depth": F(Int()),
    "applications": F(ListOf(STR, comma_string=True)),
    "etc_dir": F(FilePath()),
    "cluster_call": F(Obj({"retry_interval": F(DUR), "max_history": F(Int(100, 10240)),
                           "cleanup_interval": F(DUR)})),
    "db_backend": F(Enum("mnesia", "rlog")),
    "rpc_module": F(Enum("rpc", "gen_rpc")),
    "tlog_push_mode": F(Enum("sync", "async")),
    "default_bootstrap_batch_size": F(Int(1)),
    "default_shard_transport": F(Enum("gen_rpc", "distr")),
    "shard_transports": F(ANY),
    "shard_full_resync_timeout": F(DUR),
}, aliases={"db_role": "role"})

# emqx_conf_schema fields("cluster") at v5.8.9, the same for both editions: `core_nodes` was removed from
# the schema in 5.8.0 (commit "fix(mria): Reserve replicant role for EE only", changes/ce/breaking-13526:
# "Obsolete and unused `cluster.core_nodes` configuration parameter has been removed"), so it is an
# unknown field (the boot stops) in open source and enterprise alike
_CLUSTER_FIELDS = {
    "name": F(STR, "emqxcl"),
    "discovery_strategy": F(Enum("manual", "static", "singleton", "dns", "etcd", "k8s"), "manual"),
    "autoclean": F(DUR, "24h"),
    "autoheal": F(BOOL, True),
    "proto_dist": F(Enum("inet_tcp", "inet6_tcp", "inet_tls", "inet6_tls"), "inet_tcp"),
    "quic_lb_mode": F(ANY),
    "static": F(Obj({"seeds": F(ListOf(NodeName(), comma_string=True), [])})),
    "dns": F(Obj({"name": F(STR, "localhost"), "record_type": F(Enum("a", "aaaa", "srv"), "a")})),
    "etcd": F(Obj({
        "server": F(CommaSeparatedList()),
        "prefix": F(STR, "emqxcl"),
        "node_ttl": F(DUR, "1m"),
        "ssl_options": F(ANY),
        "ssl": F(ANY),
    })),
    "k8s": F(Obj({
        "apiserver": F(STR), "service_name": F(STR), "address_type": F(Enum("ip", "dns", "hostname")),
        "namespace": F(STR), "suffix": F(STR),
    })),
    "prevent_overlapping_partitions": F(BOOL),
}
CLUSTER = Obj(_CLUSTER_FIELDS)

RPC = Obj({
    "mode": F(Enum("sync", "async")),
    "protocol": F(Enum("tcp", "ssl"), "tcp"),  # alias driver
    "async_batch_size": F(Int(1)),
    "port_discovery": F(Enum("manual", "stateless"), "stateless"),
    "server_port": F(Int(1), 5369),  # pos_integer(), aliases tcp_server_port, ssl_server_port
    "client_num": F(Int(1, 256)),  # alias tcp_client_num
    "connect_timeout": F(DUR),
    "certfile": F(FilePath()),
    "keyfile": F(FilePath()),
    "cacertfile": F(FilePath()),
    "send_timeout": F(DUR),
    "authentication_timeout": F(DUR),
    "call_receive_timeout": F(DUR),
    "socket_keepalive_idle": F(DUR),
    "socket_keepalive_interval": F(DUR),
    "socket_keepalive_count": F(Int(0)),
    "socket_sndbuf": F(Bytesize()),
    "socket_recbuf": F(Bytesize()),
    "socket_buffer": F(Bytesize()),
    "insecure_fallback": F(BOOL),
    "ciphers": F(ListOf(STR, comma_string=True)),
    "tls_versions": F(ListOf(Enum(*TLS_VERSIONS))),
    "listen_address": F(STR),
    "ipv6_only": F(BOOL),
}, aliases={"driver": "protocol", "tcp_server_port": "server_port", "ssl_server_port": "server_port",
            "tcp_client_num": "client_num"})

# emqx_schema:common_ssl_opts_schema/2 + server_ssl_opts_schema/2 (listener_ssl_opts); the
# wss listener and the dashboard use it with IsRanchListener = true: no gc_after_handshake, ocsp,
# enable_crl_check. partial_chain and verify_peer_ext_key_usage are injected by emqx_auth_ext_schema
# only in the enterprise build (emqx_conf_schema_inject:auth_ext/1).
_SSL_FIELDS = {
    "cacertfile": F(FilePath()),
    "cacerts": F(BOOL),
    "certfile": F(FilePath()),
    "keyfile": F(FilePath()),
    "password": F(STR),
    "verify": F(Enum("verify_peer", "verify_none"), "verify_none"),
    "fail_if_no_peer_cert": F(BOOL, False),
    "versions": F(ListOf(Enum(*TLS_VERSIONS)), ["tlsv1.3", "tlsv1.2"]),
    "ciphers": F(ListOf(STR, comma_string=True), []),
    "depth": F(Int(0), 10),
    "reuse_sessions": F(BOOL, True),
    "secure_renegotiate": F(BOOL, True),
    "honor_cipher_order": F(BOOL, True),
    "client_renegotiation": F(BOOL, True),
    "handshake_timeout": F(DUR, "15s"),
    "dhfile": F(FilePath()),
    "log_level": F(Enum("emergency", "alert", "critical", "error", "warning", "notice", "info", "debug",
                        "none", "all")),
    "hibernate_after": F(DUR),
    "user_lookup_fun": F(STR),
}
if _edition_name() == "enterprise":
    _SSL_FIELDS["partial_chain"] = F(Enum(True, False, "two_cacerts_from_cacertfile", "cacert_from_cacertfile"))
    _SSL_FIELDS["verify_peer_ext_key_usage"] = F(STR)
RANCH_SSL_OPTIONS = Obj(dict(_SSL_FIELDS))
SSL_OPTIONS = Obj(dict(_SSL_FIELDS, gc_after_handshake=F(BOOL), ocsp=F(ANY), enable_crl_check=F(BOOL)))

TCP_OPTIONS = Obj({
    "active_n": F(Int(0), 100),
    "backlog": F(Int(1), 1024),
    "send_timeout": F(DUR, "15s"),
    "send_timeout_close": F(BOOL, True),
    "recbuf": F(Bytesize()),
    "sndbuf": F(Bytesize()),
    "buffer": F(Bytesize()),
    "high_watermark": F(Bytesize(), "1MB"),
    "nodelay": F(BOOL, True),
    "nolinger": F(BOOL, False),
    "reuseaddr": F(BOOL, True),
    "keepalive": F(STR, "none"),
})

WEBSOCKET = Obj({
    "mqtt_path": F(STR, "/mqtt"),
    "mqtt_piggyback": F(Enum("single", "multiple"), "multiple"),
    "compress": F(BOOL, False),
    "idle_timeout": F(DUR, "7200s"),
    "max_frame_size": F(InfOr(Int(1)), "infinity"),
    "fail_if_no_subprotocol": F(BOOL, True),
    "supported_subprotocols": F(ListOf(STR, comma_string=True), ["mqtt", "mqtt-v3", "mqtt-v3.1.1", "mqtt-v5"]),
    "check_origin_enable": F(BOOL, False),
    "allow_origin_absence": F(BOOL, True),
    "check_origins": F(ListOf(STR, comma_string=True), []),
    "proxy_address_header": F(STR, "x-forwarded-for"),
    "proxy_port_header": F(STR, "x-forwarded-port"),
    "deflate_opts": F(ANY),
    "validate_utf8": F(BOOL, True),
})


class ListenerAuthn(T):
    """Listener `authentication` (hidden in 5.8.9): a listener-level chain replaces the global one
    for that listener (emqx_authn_chains:get_authenticators/2). The stand-in does not model it."""

    def __call__(self, v, path):
        if v in (None, [], {}):
            return []
        raise ConfigError(path, "unsupported_by_the_standin (listener authentication chains are not modelled)")


def _listener(kind):
    fields = {
        "enable": F(BOOL, True),
        "bind": F(Bind(allow_zero=True)),
        "acceptors": F(Int(1), 16),
        "max_connections": F(InfOr(Int(1)), "infinity"),
        "mountpoint": F(STR, ""),
        "zone": F(STR, "default"),
        "limiter": F(ANY),
        "enable_authn": F(Enum(True, False, "quick_deny_anonymous"), True),
        "max_conn_rate": F(ANY),
        "messages_rate": F(ANY),
        "bytes_rate": F(ANY),
        "access_rules": F(AccessRules(), ["allow all"]),
        "proxy_protocol": F(BOOL, False),
        "proxy_protocol_timeout": F(DUR, "3s"),
        "authentication": F(ListenerAuthn(), []),
        "tcp_options": F(TCP_OPTIONS),
    }
    if kind == "ssl":
        fields["ssl_options"] = F(SSL_OPTIONS)
    if kind == "wss":
        fields["ssl_options"] = F(RANCH_SSL_OPTIONS)
    if kind in ("ws", "wss"):
        fields["websocket"] = F(WEBSOCKET)
    return Obj(fields, aliases={"enabled": "enable"})


LISTENERS = Obj({
    "tcp": F(MapOf(MarkedOr(_listener("tcp")))),
    "ssl": F(MapOf(MarkedOr(_listener("ssl")))),
    "ws": F(MapOf(MarkedOr(_listener("ws")))),
    "wss": F(MapOf(MarkedOr(_listener("wss")))),
    "quic": F(ANY),
})

DASHBOARD_HTTP = {
    "enable": F(BOOL, True),
    "bind": F(Bind(allow_zero=True), 18083),
    "num_acceptors": F(Int(1)),
    "max_connections": F(Int(1)),
    "backlog": F(Int(1)),
    "send_timeout": F(DUR),
    "inet6": F(BOOL),
    "ipv6_v6only": F(BOOL),
    "proxy_header": F(BOOL),
}
DASHBOARD_HTTPS = dict(DASHBOARD_HTTP, bind=F(Bind(allow_zero=True), 0), enable=F(BOOL, False),
                       ssl_options=F(RANCH_SSL_OPTIONS))


class DashboardHttps(Obj):
    """emqx_dashboard_schema https_converter/2 (convert_ssl_layout): without an `ssl_options` key,
    the TLS fields written next to `bind` are moved into it."""

    def __call__(self, v, path):
        if isinstance(v, dict) and "ssl_options" not in v:
            tls = RANCH_SSL_OPTIONS.fields
            v = dict({k: x for k, x in v.items() if k not in tls},
                     ssl_options={k: x for k, x in v.items() if k in tls})
        return super().__call__(v, path)


class SampleInterval(Duration):
    """dashboard.sample_interval: timeout_duration_s, validate_sample_interval/1 (1..60 s, divides 60)."""

    def __call__(self, v, path):
        ms = super().__call__(v, path)
        sec = int(math.ceil(ms / 1000.0))
        if not (1 <= sec <= 60 and 60 % sec == 0):
            raise ConfigError(path, "must be between 1 and 60 and be a divisor of 60.", v)
        return ms

DASHBOARD = Obj({
    "listeners": F(Obj({"http": F(Obj(DASHBOARD_HTTP)), "https": F(DashboardHttps(DASHBOARD_HTTPS))})),
    "default_username": F(Str(allow_empty=False), "admin"),
    "default_password": F(STR, "public"),
    "sample_interval": F(SampleInterval(), "10s"),
    "token_expired_time": F(DUR, "60m"),
    "cors": F(BOOL, False),
    "i18n_lang": F(Enum("en", "zh")),
    "swagger_support": F(BOOL, True),
    "bootstrap_users_file": F(FilePath()),
})
if _edition_name() == "enterprise":
    # sso is the enterprise build's sso_fields(); the others are not in 5.8.9 (kept for the 5.9+
    # enterprise stand-in, not checked against the e5.x source)
    DASHBOARD.fields.update({
        "password_expired_time": F(DUR),
        "unsuccessful_login_max_attempts": F(Int(1)),
        "unsuccessful_login_lock_duration": F(DUR),
        "unsuccessful_login_interval": F(DUR),
        "sso": F(ANY),
        "monitor": F(ANY),
    })

API_KEY = Obj({"bootstrap_file": F(FilePath(), "")})

LICENSE = Obj({
    "key": F(STR, "default"),
    "connection_low_watermark": F(Percent()),
    "connection_high_watermark": F(Percent()),
    "dynamic_max_connections": F(Int(0)),
})

_LOG_COMMON = {
    "enable": F(BOOL),
    "level": F(Enum(*LEVELS), "warning"),
    "formatter": F(Enum("text", "json"), "text"),
    "time_offset": F(STR, "system"),
    "single_line": F(BOOL, True),
    "chars_limit": F(OneOf(Enum("unlimited"), Int(100))),
    "max_depth": F(OneOf(Enum("unlimited"), Int(0))),
    "timestamp_format": F(Enum("auto", "epoch", "rfc3339")),
    "payload_encode": F(Enum("hex", "text", "hidden")),
    "sync_mode_qlen": F(Int(0)),
    "drop_mode_qlen": F(Int(0)),
    "flush_qlen": F(Int(0)),
    "overload_kill": F(ANY),
    "burst_limit": F(ANY),
    "supervisor_reports": F(Enum("error", "progress")),
    "with_mfa": F(BOOL),
}
_LOG_ALIASES = {"format": "formatter"}


def _console_enabled_by_default():
    """emqx_conf_schema.erl log_handler_common_confs/2: the console handler's `enable` defaults to whether
    EMQX_DEFAULT_LOG_HANDLER is console or both (bin/emqx sets it to console for foreground/console when it is
    unset; the package's unit sets it to file)."""
    return os.environ.get("EMQX_DEFAULT_LOG_HANDLER") in ("console", "both")


def _file_enabled_by_default():
    """The same for the file handler: file, both, "" or unset (os:getenv/1 gives false)."""
    return os.environ.get("EMQX_DEFAULT_LOG_HANDLER") in (None, "file", "both", "")


LOG_CONSOLE = Obj(dict(_LOG_COMMON, enable=F(BOOL, _console_enabled_by_default)), aliases=_LOG_ALIASES)


class RotationCount(Int):
    """log file rotation_count (alias rotation): convert_rotation/2 takes an integer or a
    `rotation {count = N}` object (count defaults to 10); anything else (a string) is bad_rotation."""

    def __call__(self, v, path):
        if isinstance(v, dict):
            v = v.get("count", 10)
        if isinstance(v, bool) or not isinstance(v, int):
            raise ConfigError(path, "bad_rotation", v)
        return super().__call__(v, path)


LOG_FILE_HANDLER = Obj(dict(
    _LOG_COMMON, enable=F(BOOL, _file_enabled_by_default),
    path=F(FilePath(), "${EMQX_LOG_DIR}/emqx.log"),
    rotation_count=F(RotationCount(1, 128), 10),
    rotation_size=F(Bytesize(allow_infinity=True), "50MB"),
), aliases=dict(_LOG_ALIASES, file="path", to="path", rotation="rotation_count", max_size="rotation_size"))


class LogFile(MapOf):
    """log.file (alias file_handlers): ensure_file_handlers/2 moves the handler fields (and their
    aliases) written directly under `file` into the handler `default`; the rest are named handlers."""

    def __call__(self, v, path):
        if isinstance(v, dict):
            own = set(LOG_FILE_HANDLER.fields) | set(LOG_FILE_HANDLER.aliases)
            named = {k: x for k, x in v.items() if k not in own}
            plain = {k: x for k, x in v.items() if k in own}
            if plain:
                old = named.get("default")
                named["default"] = hocon.merge(plain, old) if isinstance(old, dict) else plain
            v = named
        return super().__call__(v, path)


_LOG_FIELDS = {
    "console": F(LOG_CONSOLE),
    "file": F(LogFile(LOG_FILE_HANDLER), {"level": "warning"}),
    "throttling": F(ANY),
}
if _edition_name() == "enterprise":
    _LOG_FIELDS["audit"] = F(ANY)  # injected only by the enterprise schema
LOG = Obj(_LOG_FIELDS, aliases={"console_handler": "console", "file_handlers": "file"})

MQTT = Obj({
    "idle_timeout": F(Duration(allow_infinity=True), "15s"),
    "max_packet_size": F(MaxPacketSize(lo=1, hi=MAX_INT_MQTT_PACKET_SIZE, reason="max_mqtt_packet_size"), "1MB"),
    "max_clientid_len": F(Int(23, 65535), 65535),
    "max_topic_levels": F(Int(1, 65535), 128),
    "max_qos_allowed": F(Enum(0, 1, 2), 2),
    "max_topic_alias": F(Int(0, 65535), 65535),
    "retain_available": F(BOOL, True),
    "wildcard_subscription": F(BOOL, True),
    "shared_subscription": F(BOOL, True),
    "shared_subscription_strategy": F(Enum("random", "round_robin", "round_robin_per_group", "sticky",
                                           "local", "hash_topic", "hash_clientid"), "round_robin"),
    "shared_subscription_initial_sticky_pick": F(ANY),
    "exclusive_subscription": F(BOOL, False),
    "ignore_loop_deliver": F(BOOL, False),
    "strict_mode": F(BOOL, False),
    "response_information": F(STR, ""),
    "server_keepalive": F(OneOf(Enum("disabled"), Int(1, 65535)), "disabled"),
    "keepalive_multiplier": F(Num(1.0, 65535.0), 1.5),
    "keepalive_check_interval": F(DUR, "30s"),
    "keepalive_backoff": F(Num()),
    "retry_interval": F(Duration(allow_infinity=True), "30s"),
    "use_username_as_clientid": F(BOOL, False),
    "peer_cert_as_username": F(Enum("disabled", "cn", "dn", "crt", "pem", "md5"), "disabled"),
    "peer_cert_as_clientid": F(Enum("disabled", "cn", "dn", "crt", "pem", "md5"), "disabled"),
    "client_attrs_init": F(ANY),
    "clientid_override": F(ANY),
    "session_expiry_interval": F(DUR, "2h"),
    "message_expiry_interval": F(Duration(allow_infinity=True), "infinity"),
    "max_awaiting_rel": F(InfOr(Int(0)), 100),
    "await_rel_timeout": F(DUR, "300s"),
    "max_mqueue_len": F(InfOr(Int(0)), 1000),
    "mqueue_priorities": F(ANY, "disabled"),
    "mqueue_default_priority": F(Enum("highest", "lowest"), "lowest"),
    "mqueue_store_qos0": F(BOOL, True),
    "max_inflight": F(Int(1, 65535), 32),
    "max_subscriptions": F(InfOr(Int(1)), "infinity"),
    "upgrade_qos": F(BOOL, False),
})

# ---- authentication (apps/emqx_auth/src/emqx_authn/emqx_authn_schema.erl global_auth_fields/0,
# apps/emqx_auth_mnesia/src/emqx_authn_mnesia_schema.erl, emqx_authn_password_hashing.erl)
class Required(T):
    """A field without default that the schema requires (hocon: required_field)."""

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, v, path):
        return self.inner(v, path)


def _check_required(fields, v, path):
    for name, f in fields.items():
        if isinstance(f.type, Required) and name not in v:
            raise ConfigError("%s.%s" % (path, name) if path else name, "required_field")


class ReqObj(Obj):
    def __call__(self, v, path):
        if isinstance(v, dict):
            _check_required(self.fields, v, path)
        return super().__call__(v, path)


class SaltRounds(Int):
    """bcrypt salt_rounds: salt_rounds_converter/2 clamps an integer to 5..10, then range(5, 10)."""

    def __call__(self, v, path):
        if isinstance(v, int) and not isinstance(v, bool):
            v = min(max(v, 5), 10)
        return super().__call__(v, path)


HASH_SIMPLE = ReqObj({
    "name": F(Required(Enum("plain", "md5", "sha", "sha256", "sha512"))),
    "salt_position": F(Enum("disable", "prefix", "suffix"), "prefix"),
})
HASH_PBKDF2 = ReqObj({
    "name": F(Required(Enum("pbkdf2"))),
    "mac_fun": F(Required(Enum("md4", "md5", "ripemd160", "sha", "sha224", "sha256", "sha384", "sha512"))),
    "iterations": F(Required(Int(1))),
    "dk_length": F(Int(1), None),
})
HASH_BCRYPT_RW = ReqObj({
    "name": F(Required(Enum("bcrypt"))),
    "salt_rounds": F(SaltRounds(5, 10), 10),
})


class HashAlgorithm(T):
    """emqx_authn_password_hashing:type_rw/1: a union chosen by `name` (bcrypt, pbkdf2, else simple)."""

    def __call__(self, v, path):
        if not isinstance(v, dict):
            raise ConfigError(path, "not_a_struct_value", v)
        if "name" not in v:
            raise ConfigError(path, "algorithm_name_missing")
        name = v["name"]
        t = HASH_BCRYPT_RW if name == "bcrypt" else HASH_PBKDF2 if name == "pbkdf2" else HASH_SIMPLE
        out = t(dict(v), path)
        if out.get("dk_length") is None:
            out.pop("dk_length", None)
        if out["name"] == "bcrypt":
            # the stand-in has no bcrypt (Python's standard library has none): refuse loudly
            raise ConfigError(path + ".name", "unsupported_by_the_standin (bcrypt needs the bcrypt NIF EMQX "
                              "ships; the stand-in cannot hash or check bcrypt passwords)", "bcrypt")
        return out


AUTHN_BUILTIN_DB = ReqObj({
    "password_hash_algorithm": F(HashAlgorithm(), {"name": "sha256", "salt_position": "prefix"}),
    "mechanism": F(Required(Enum("password_based"))),
    "backend": F(Required(Enum("built_in_database"))),
    "user_id_type": F(Enum("clientid", "username"), "username"),
    "bootstrap_file": F(STR, "${EMQX_ETC_DIR}/auth-built-in-db-bootstrap.csv"),
    "bootstrap_type": F(Enum("hash", "plain"), "plain"),
    "enable": F(BOOL, True),
})
# mechanism/backend pairs EMQX 5.8.9 (open source) has providers for, but the stand-in does not model
_AUTHN_OTHER = {
    "password_based": ("mysql", "postgresql", "mongodb", "redis", "http", "ldap"),
    "scram": ("built_in_database", "http"),
    "jwt": (None,),
    "gcp_device": (None,),
    "cinfo": (None,),
}


class Authenticators(T):
    """`authentication`: an array (a single object is wrapped: ensure_array/2) of authenticators,
    each selected by mechanism/backend (emqx_authn_schema:select_union_member/3)."""

    def __call__(self, v, path):
        if isinstance(v, dict) and not all(k.isdigit() for k in v):
            v = [v]
        items = ListOf(ANY)(v, path)
        out = []
        for i, a in enumerate(items):
            sub = "%s.%d" % (path, i + 1)
            if not isinstance(a, dict):
                raise ConfigError(sub, "not_a_struct", a)
            if "mechanism" not in a:
                raise ConfigError(sub, "missing_mechanism_field")
            mech, backend = a.get("mechanism"), a.get("backend")
            if mech == "password_based" and backend == "built_in_database":
                out.append(AUTHN_BUILTIN_DB(dict(a), sub))
                continue
            known = _AUTHN_OTHER.get(mech)
            if known is not None and (backend in known or known == (None,)):
                raise ConfigError(sub, "unsupported_by_the_standin (authenticator %s%s is valid in EMQX "
                                  "but not modelled; only password_based:built_in_database is)"
                                  % (mech, ":" + backend if backend else ""))
            if backend is not None:
                raise ConfigError(sub, "unsupported_mechanism (mechanism: %s, backend: %s)" % (mech, backend))
            raise ConfigError(sub, "unsupported_mechanism (mechanism: %s)" % mech)
        return out


# ---- authorization (apps/emqx/src/emqx_schema.erl authz_fields/0, apps/emqx_auth/src/emqx_authz/
# emqx_authz_schema.erl authz_fields/0 + default_authz/0, sources/emqx_authz_file_schema.erl)
AUTHZ_FILE = ReqObj({
    "type": F(Required(Enum("file"))),
    "enable": F(BOOL, True),
    "path": F(Required(STR)),
})
_AUTHZ_OTHER = ("built_in_database", "http", "mongodb", "mysql", "postgresql", "redis", "ldap")
DEFAULT_AUTHZ_SOURCE = {"type": "file", "enable": True, "path": "${EMQX_ETC_DIR}/acl.conf"}


class AuthzSources(T):
    """`authorization.sources`: union by `type` (missing: missing_type_field; unknown:
    unknown_authz_type). The file source has type, enable, path (`rules` exists only in the REST
    API's schema). The path's validator (emqx_authz_file:validate/1, reading and compiling the file)
    runs when the node boots (node.py), so rendered configs can be checked off the target host.
    Two sources of one type: duplicated_authz_source_type (emqx_authz:check_dup_types/1)."""

    def __call__(self, v, path):
        items = ListOf(ANY)(v, path)
        out = []
        seen = set()
        for i, s in enumerate(items):
            sub = "%s.%d" % (path, i + 1)
            if not isinstance(s, dict):
                raise ConfigError(sub, "not_a_struct_value", s)
            if "type" not in s:
                raise ConfigError(sub, "missing_type_field")
            t = s["type"]
            if t == "file":
                src = AUTHZ_FILE(dict(s), sub)
            elif t in _AUTHZ_OTHER:
                raise ConfigError(sub, "unsupported_by_the_standin (authorization source type %s is valid in "
                                  "EMQX but not modelled; only file is)" % t)
            else:
                raise ConfigError(sub, "unknown_authz_type (got: %s)" % _show(t))
            if src["type"] in seen:
                raise ConfigError(path, "duplicated_authz_source_type", src["type"])
            seen.add(src["type"])
            out.append(src)
        return out


AUTHORIZATION = Obj({
    "no_match": F(Enum("allow", "deny"), "allow"),
    "deny_action": F(Enum("ignore", "disconnect"), "ignore"),
    "cache": F(Obj({"enable": F(BOOL, True), "max_size": F(Int(1, 1048576), 32), "ttl": F(DUR, "1m"),
                    "excludes": F(ListOf(STR), [])})),
    "sources": F(AuthzSources(), [DEFAULT_AUTHZ_SOURCE]),
})

FORCE_SHUTDOWN = Obj({
    "enable": F(BOOL, True),
    "max_mailbox_size": F(Int(0), 1000),
    "max_heap_size": F(Bytesize(hi=128 * 1024 ** 3, reason="max_heap_size"), "32MB"),  # validate_heap_size/1
}, aliases={"max_message_queue_len": "max_mailbox_size"})

SYSMON = Obj({"vm": F(ANY), "os": F(ANY), "top": F(ANY),
              "mnesia_tm_mailbox_size_alarm_threshold": F(Int(1), 500),
              "broker_pool_mailbox_size_alarm_threshold": F(Int(1), 500)})

# apps/emqx_retainer/src/emqx_retainer_schema.erl at v5.8.9: fields("retainer"), fields(mnesia_config);
# validate_backends_enabled/1 wants exactly one enabled backend (built-in or external)
RETAINER_BACKEND = Obj({
    "type": F(Enum("built_in_database"), "built_in_database"),
    "storage_type": F(Enum("ram", "disc"), "ram"),
    "max_retained_messages": F(Int(0), 0),
    "index_specs": F(ANY, [[1, 2, 3], [1, 3], [2, 3], [3]]),
    "enable": F(BOOL, True),
})


class RetainerObj(Obj):
    def __call__(self, v, path):
        if isinstance(v, dict):
            backend = v.get("backend") if isinstance(v.get("backend"), dict) else {}
            externals = v.get("external_backends") if isinstance(v.get("external_backends"), dict) else {}
            enabled = [b for b in [backend] + list(externals.values())
                       if isinstance(b, dict) and BOOL(b.get("enable", True), path) is True]
            if len(enabled) > 1:
                raise ConfigError(path, "multiple_enabled_backends")
            if not enabled:
                raise ConfigError(path, "no_enabled_backend")
        return super().__call__(v, path)


RETAINER = RetainerObj({
    "enable": F(BOOL, True),
    "msg_expiry_interval": F(DUR, "0s"),
    "msg_expiry_interval_override": F(Duration(allow_disabled=True), "disabled"),
    "allow_never_expire": F(BOOL, True),
    "msg_clear_interval": F(DUR, "0s"),
    "msg_clear_limit": F(Int(1), 50000),
    "flow_control": F(ANY, {}),
    "max_payload_size": F(Bytesize(), "1MB"),
    "stop_publish_clear_msg": F(BOOL, False),
    "delivery_rate": F(ANY, "1000/s"),
    "max_publish_rate": F(ANY, "1000/s"),
    "backend": F(RETAINER_BACKEND),
    "external_backends": F(ANY, {}),
}, aliases={"deliver_rate": "delivery_rate"})

# apps/emqx_prometheus/src/emqx_prometheus_schema.erl at v5.8.9. The root is a union
# (setting_union_schema/0): the recommended layout when every key written is one of its fields
# (is_recommend_type/1; an absent or empty root too), else the legacy (deprecated) layout, which then
# refuses what it does not know. So `enable_basic_auth` next to `push_gateway_server` is an unknown field.
class PromTimeoutMs(Duration):
    """emqx_schema:timeout_duration_ms(): a duration up to 4294967295 ms (to_timeout_duration_ms/1)."""

    def __call__(self, v, path):
        ms = super().__call__(v, path)
        if ms > 4294967295 or ms < 0:
            raise ConfigError(path, ErlString("timeout value too large (max: 4294967295 ms)"), v)
        return ms


class PromUrl(Str):
    """validate_url/1: uri_string:parse/1 must give a scheme that is exactly http or https."""

    def __call__(self, v, path):
        v = super().__call__(v, path)
        m = re.match(r"([A-Za-z][A-Za-z0-9+.\-]*):", v)
        if m is None or m.group(1) not in ("http", "https") or re.search(r"[\s\x00-\x1f\x7f]", v):
            raise ConfigError(path, ErlString("Invalid url"), v)
        return v


class PromHeaders(T):
    """typerefl alias "map" of string to string with convert_headers/2: an object whose values are strings
    (binary_to_list/1 on anything else crashes the converter), or an empty string."""

    def __call__(self, v, path):
        if v == "":
            return {}
        if not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values()):
            raise ConfigError(path, "expected: map", v)
        return dict(v)


_PROM_COLLECTOR = F(Enum("enabled", "disabled"), "disabled")
_PROM_JOB_NAME = "${name}/instance/${name}~${host}"
PROMETHEUS_RECOMMEND = Obj({
    "enable_basic_auth": F(BOOL, False),
    "push_gateway": F(Obj({
        "enable": F(BOOL, False),
        "method": F(Enum("put", "post"), "put"),
        "url": F(PromUrl(), "http://127.0.0.1:9091"),
        "interval": F(PromTimeoutMs(), "15s"),
        "headers": F(PromHeaders(), {}),
        "job_name": F(STR, _PROM_JOB_NAME),
    }), None),
    "collectors": F(Obj({name: _PROM_COLLECTOR for name in (
        "vm_dist", "mnesia", "vm_statistics", "vm_system_info", "vm_memory", "vm_msacc")}), None),
})
PROMETHEUS_LEGACY = Obj(dict({
    "push_gateway_server": F(PromUrl(), "http://127.0.0.1:9091"),
    "interval": F(PromTimeoutMs(), "15s"),
    "headers": F(PromHeaders(), {}),
    "job_name": F(STR, _PROM_JOB_NAME),
    "enable": F(BOOL, False),
}, **{name + "_collector": _PROM_COLLECTOR for name in (
    "vm_dist", "mnesia", "vm_statistics", "vm_system_info", "vm_memory", "vm_msacc")}))


class PrometheusSetting(T):
    def __call__(self, v, path):
        if v is None:
            v = {}
        if not isinstance(v, dict):
            raise ConfigError(path, "not_a_struct_value", v)
        if all(k in PROMETHEUS_RECOMMEND.fields for k in v):
            return PROMETHEUS_RECOMMEND(v, path)
        return PROMETHEUS_LEGACY(v, path)


# Every root of the EMQX 5.8.9 open-source schema: emqx_conf_schema:roots/0 = emqx_schema:roots(high)
# (listeners, mqtt, zones, plus `authorization` and `authentication` injected by emqx_auth) ++ node,
# cluster, log, rpc ++ emqx_schema:roots(medium) ++ roots(low) ++ the roots of the ce MERGED_CONFIGS
# modules (bridge, connector, bridge_v2, retainer, auto_subscribe, telemetry, modules, plugins,
# dashboard, gateway, prometheus, rule_engine, exhook, psk, limiter, slow_subs, mgmt_api_key).
EMQX_5_8_9_ROOTS = (
    "listeners", "mqtt", "zones", "authorization", "authentication",
    "node", "cluster", "log", "rpc",
    "broker", "sys_topics", "force_shutdown", "overload_protection", "durable_storage",
    "force_gc", "conn_congestion", "stats", "sysmon", "alarm", "flapping_detect", "durable_sessions",
    "trace", "crl_cache", "banned",
    "bridges", "connectors", "actions", "sources", "retainer", "auto_subscribe", "telemetry", "delayed",
    "rewrite", "topic_metrics", "plugins", "dashboard", "gateway", "prometheus", "rule_engine", "exhook",
    "psk_authentication", "limiter", "slow_subs", "api_key",
)
# Enterprise (5.9+) roots on top of those (not checked against the e5.x source one by one).
ENTERPRISE_EXTRA_ROOTS = (
    "license", "opentelemetry", "file_transfer", "schema_registry", "schema_validation",
    "message_transformation", "cluster_link",
)

# roots whose contents the stand-in checks
CHECKED_ROOTS = {
    "node": F(NODE),
    "cluster": F(CLUSTER),
    "rpc": F(RPC),
    "listeners": F(LISTENERS),
    "dashboard": F(DASHBOARD),
    "api_key": F(API_KEY),
    "license": F(LICENSE),
    "log": F(LOG),
    "mqtt": F(MQTT),
    "authentication": F(Authenticators(), []),
    "authorization": F(AUTHORIZATION),
    "force_shutdown": F(FORCE_SHUTDOWN),
    "sysmon": F(SYSMON),
    "retainer": F(RETAINER),
    "prometheus": F(PrometheusSetting(), {}),
}


def root_names(edition=None):
    """The root names the schema of this edition knows (as emqx_config:get_root_names/0)."""
    edition = edition or _edition_name()
    names = list(EMQX_5_8_9_ROOTS)
    if edition == "enterprise":
        names += [r for r in ENTERPRISE_EXTRA_ROOTS if r not in names]
    return names


ROOTS = {}
for _r in root_names():
    ROOTS[_r] = CHECKED_ROOTS.get(_r) or F(ANY)
# roots the stand-in accepts without checking their contents (EMQX checks them)
LOOSE_ROOTS = tuple(r for r in ROOTS if r not in CHECKED_ROOTS)

SCHEMA = Obj(ROOTS)


# built-in defaults that are not simple field defaults (EMQX's listener defaults)
def builtin_defaults():
    certs = "${EMQX_ETC_DIR}/certs"
    ssl = {"cacertfile": certs + "/cacert.pem", "certfile": certs + "/cert.pem", "keyfile": certs + "/key.pem"}
    return {
        "listeners": {
            "tcp": {"default": {"bind": "0.0.0.0:1883", "max_connections": "infinity"}},
            "ssl": {"default": {"bind": "0.0.0.0:8883", "max_connections": "infinity",
                                "ssl_options": dict(ssl)}},
            "ws": {"default": {"bind": "0.0.0.0:8083", "max_connections": "infinity",
                               "websocket": {"mqtt_path": "/mqtt"}}},
            "wss": {"default": {"bind": "0.0.0.0:8084", "max_connections": "infinity",
                                "ssl_options": dict(ssl), "websocket": {"mqtt_path": "/mqtt"}}},
        },
    }


class CheckedConfig(dict):
    """The checked config (a dict); `unknown_roots` lists the root keys that were dropped."""

    unknown_roots = ()


def check(raw):
    """Validate a merged raw config dict; return the typed config with defaults filled in.

    Unknown ROOT keys are dropped (hocon_tconf filter_by_roots; emqx_config logs
    config_key_not_recognized); unknown keys below a known root are refused (unknown_fields).
    Then the schema's integrity validations run (emqx_conf_schema:validations/0)."""
    unknown = [k for k in raw if k not in ROOTS] if isinstance(raw, dict) else []
    known = {k: v for k, v in raw.items() if k in ROOTS} if isinstance(raw, dict) else raw
    out = CheckedConfig(SCHEMA(known, ""))
    out.unknown_roots = tuple(unknown)
    validate_node_role(out)
    validate_cluster_strategy(out)
    return out


def validate_node_role(conf):
    """emqx_conf_schema:validate_node_role/1 (node.role validator): the open-source 5.8 build
    knows only `core` (node_role_symbols/0: [core] plus the enterprise schema's injection, replicant).
    hocon_tconf runs the field's own validator before the enum check, on the value converted to an
    existing atom, so the open-source build refuses `replicant` with the validator's thrown string:
    #{kind => validation_error,path => "node.role",reason => "Node role ...",value => replicant}."""
    if conf["node"]["role"] == "replicant" and _edition_name() != "enterprise":
        raise ConfigError("node.role", ErlString("Node role 'replicant' is only allowed in Enterprise edition "
                                                 "since 5.8.0"), ErlAtom("replicant"))


def validate_cluster_strategy(conf):
    """emqx_conf_schema:validate_cluster_strategy/1 (check_node_name_and_discovery_strategy): with
    discovery `dns` and record type `a`/`aaaa` the node name's host must be an IP of that family."""
    name = conf["node"]["name"]
    host = name.split("@", 1)[1] if "@" in name else ""
    strategy = conf["cluster"]["discovery_strategy"]
    rtype = conf["cluster"]["dns"]["record_type"]
    if strategy != "dns" or rtype == "srv":
        return
    fam = inet_address_family(host)
    if fam is None:
        result = ('#{domain => "%s",explain => "Node name must be of name@IP format for DNS cluster '
                  'discovery strategy with \'%s\' record type."}' % (host, rtype))
    elif (fam, rtype) in (("ipv4", "a"), ("ipv6", "aaaa")):
        return
    else:
        result = ('#{address_type => %s,explain => "Node name address %s is incompatible with DNS record '
                  'type %s",record_type => %s}' % (fam, fam, rtype, rtype))
    raise ConfigError("node.name", "integrity_validation_failure", result)


# ---------------------------------------------------------------------------------------------
# loading

def env_overrides(environ):
    """EMQX_<PATH> variables as (path list, raw text), for roots the schema knows."""
    out = []
    for name in sorted(environ):
        if not name.startswith("EMQX_"):
            continue
        path = name[5:].lower().split("__")
        if not path or path[0] not in ROOTS or any(p == "" for p in path):
            continue
        out.append((path, environ[name]))
    return out


def _env_value(text):
    try:
        return hocon.parse_value(text, env={})
    except hocon.HoconError:
        return text


def _set(obj, path, value):
    cur = obj
    for p in path[:-1]:
        if not isinstance(cur.get(p), dict):
            cur[p] = {}
        cur = cur[p]
    old = cur.get(path[-1])
    if isinstance(old, dict) and isinstance(value, dict):
        cur[path[-1]] = hocon.merge(old, value)
    else:
        cur[path[-1]] = value


def _parse_file(path, include_dirs=()):
    try:
        return hocon.parse_file(path, include_dirs=include_dirs)
    except hocon.HoconError as e:
        raise ConfigError("", "syntax_error", e.message, line=e.line, filename=path)
    except UnicodeDecodeError as e:
        raise ConfigError("", "syntax_error", "not UTF-8: %s" % e, line=0, filename=path)


def load_raw(etc_dir, environ=None, data_dir=None):
    """Merge the config sources in EMQX's order and return the raw (unchecked) dict.

    As bin/emqx: node.data_dir is read from emqx.conf alone (call_hocon multi_get, no include
    dirs), then base.hocon, data_dir/configs/cluster.hocon and emqx.conf are read with
    data_dir/configs as the include dir (call_hocon ... -d data_dir/configs generate); `include`
    directives are followed in both reads."""
    environ = os.environ if environ is None else environ
    raw = builtin_defaults()
    conf_path = os.path.join(etc_dir, "emqx.conf")
    envs = env_overrides(environ)
    # node.data_dir decides where cluster.hocon lives: look at emqx.conf and env first
    if data_dir is None:
        probe = _parse_file(conf_path) if os.path.exists(conf_path) else {}
        for path, text in envs:
            _set(probe, path, _env_value(text))
        dd = probe.get("node", {}).get("data_dir") if isinstance(probe.get("node"), dict) else None
        data_dir = interpolate_env(str(dd)) if dd else "data"
    inc = [os.path.join(data_dir, "configs")]
    base = os.path.join(etc_dir, "base.hocon")
    if os.path.exists(base):
        raw = hocon.merge(raw, _parse_file(base, inc))
    cluster_hocon = os.path.join(data_dir, "configs", "cluster.hocon")
    if os.path.exists(cluster_hocon):
        raw = hocon.merge(raw, _parse_file(cluster_hocon, inc))
    conf = _parse_file(conf_path, inc) if os.path.exists(conf_path) else {}
    raw = hocon.merge(raw, conf)
    for path, text in envs:
        _set(raw, path, _env_value(text))
    return raw


def load_config(etc_dir, environ=None):
    raw = load_raw(etc_dir, environ)
    return check(raw)


def seconds_view(t, v):
    """Copy of a checked config value with durations as seconds (float), for the broker core."""
    if isinstance(t, F):
        t = t.type
    if isinstance(t, Duration):
        return v / 1000.0 if isinstance(v, int) and not isinstance(v, bool) else v
    if isinstance(t, Obj) and isinstance(v, dict):
        return {k: seconds_view(t.fields[k].type, x) if k in t.fields else x for k, x in v.items()}
    if isinstance(t, MapOf) and isinstance(v, dict):
        return {k: seconds_view(t.inner, x) for k, x in v.items()}
    if isinstance(t, (MarkedOr, InfOr)):
        return seconds_view(t.inner, v)
    return v
