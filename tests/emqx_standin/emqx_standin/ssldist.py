"""Erlang distribution over TLS (`cluster.proto_dist = inet_tls | inet6_tls`), as EMQX 5.8.9 sets it up.

Sources (EMQX v5.8.9 on OTP 26.2.5.14, `.tool-versions`):
- `bin/emqx`: for a boot command the options file is `${EMQX_SSL_DIST_OPTFILE:-$EMQX_ETC_DIR/ssl_dist.conf}`,
  refused when it contains a space, and passed as `-ssl_dist_optfile` (non-boot commands take it from the
  running node's command line in `ps -ef`).
- OTP `lib/ssl/src/ssl_dist_sup.erl` `start_link/0`, `consult/1`: the file is read when distribution starts
  (kernel boot) as ONE Erlang expression ended by a dot; an unreadable file, a scan or parse error stops the
  VM (`{bad_ssl_dist_optfile, ...}`), the value goes into an ets table (`[{server, Opts}, {client, Opts}]`).
- OTP `lib/ssl/src/inet_tls_dist.erl` `get_ssl_options/1`: the listener hands `server` options to
  `ssl:handshake/3`, the connecting side the `client` options to `ssl:connect/4` (to the host of the node name).
- OTP `lib/ssl/src/ssl.erl` `opt_verification/3`, `opt_cacerts/3`: `verify` defaults to verify_peer for a
  client, verify_none for a server; verify_peer without cacerts/cacertfile is
  `{options, incompatible, [{verify,verify_peer},{cacerts,undefined}]}`; `fail_if_no_peer_cert` is server only,
  incompatible with verify_none, and defaults to true with verify_peer.

This module is the stand-in's own code: an Erlang term reader for the options file, the option checks,
and Python ssl contexts built from them.
"""

import os
import re
import ssl

DIST_TLS_PROTOS = ("inet_tls", "inet6_tls")


class OptfileError(Exception):
    """The options file cannot be used: the text is an Erlang term as OTP would raise it."""


# ---------------------------------------------------------------------------------------------
# a reader for the Erlang terms an options file holds (lists, tuples, atoms, strings, integers)

_TOKEN = re.compile(r"""
    (?P<ws>\s+|%[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<qatom>'(?:[^'\\]|\\.)*')
  | (?P<int>-?[0-9]+)
  | (?P<atom>[a-z][A-Za-z0-9_@]*)
  | (?P<var>[A-Z_][A-Za-z0-9_@]*)
  | (?P<punct>[\[\]{},.:])
""", re.VERBOSE)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "s": " ", "e": "\x1b"}


class Atom(str):
    pass


def _unescape(body):
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


def _tokens(text):
    pos, line = 0, 1
    out = []
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise OptfileError("{bad_ssl_dist_optfile,{scan_error,{illegal,char},%d}}" % line)
        kind = m.lastgroup
        val = m.group(kind)
        if kind != "ws":
            out.append((kind, val, line))
        line += val.count("\n")
        pos = m.end()
    return out


def parse_term(text):
    """The single expression of the file, ended by a dot (ssl_dist_sup:consult/1)."""
    toks = _tokens(text)
    i = [0]

    def err(what):
        line = toks[i[0]][2] if i[0] < len(toks) else (toks[-1][2] if toks else 1)
        return OptfileError("{bad_ssl_dist_optfile,{parse_error,{%d,erl_parse,%s}}}" % (line, what))

    def peek():
        return toks[i[0]] if i[0] < len(toks) else ("eof", "", 0)

    def take():
        t = peek()
        i[0] += 1
        return t

    def value():
        kind, val, _ = take()
        if kind == "string":
            s = _unescape(val[1:-1])
            while peek()[0] == "string":      # adjacent strings concatenate
                s += _unescape(take()[1][1:-1])
            return s
        if kind == "qatom":
            return Atom(_unescape(val[1:-1]))
        if kind == "atom":
            if peek()[1] == ":":
                raise err('"function calls are not supported by the stand-in"')
            return Atom(val)
        if kind == "int":
            return int(val)
        if kind == "var":
            raise err('"variables are not allowed (unbound: %s)"' % val)
        if val == "[":
            items = []
            if peek()[1] == "]":
                take()
                return items
            while True:
                items.append(value())
                k, v, _ = take()
                if v == "]":
                    return items
                if v != ",":
                    i[0] -= 1
                    raise err('["syntax error before: ",%s]' % (repr(v) if v else "eof"))
        if val == "{":
            items = []
            if peek()[1] == "}":
                take()
                return tuple(items)
            while True:
                items.append(value())
                k, v, _ = take()
                if v == "}":
                    return tuple(items)
                if v != ",":
                    i[0] -= 1
                    raise err('["syntax error before: ",%s]' % (repr(v) if v else "eof"))
        i[0] -= 1
        raise err('["syntax error before: ",%s]' % (repr(val) if val else "eof"))

    if not toks:
        raise OptfileError("{bad_ssl_dist_optfile,{parse_error,[]}}")
    term = value()
    k, v, _ = take()
    if v != ".":
        i[0] -= 1
        raise err('["syntax error before: ",%s]' % (repr(v) if v else "eof"))
    if i[0] != len(toks):
        raise OptfileError("{bad_ssl_dist_optfile,{parse_error,more_than_one_expression}}")
    return term


# ---------------------------------------------------------------------------------------------
# options

_BOOL = (True, False)
_TLS_VERSIONS = {"tlsv1.2": ssl.TLSVersion.TLSv1_2, "tlsv1.3": ssl.TLSVersion.TLSv1_3}


def _as_bool(v):
    if isinstance(v, Atom) and v in ("true", "false"):
        return v == "true"
    return None


def _check_opts(role, opts):
    """ssl's option checks for one role -> dict. Raises OptfileError with ssl's error term."""
    if not isinstance(opts, list):
        raise OptfileError("{options,{%s,not_a_proplist}}" % role)
    out = {}
    for o in opts:
        if not (isinstance(o, tuple) and len(o) == 2 and isinstance(o[0], Atom)):
            raise OptfileError("{options,{not_a_proplist,%r}}" % (o,))
        k, v = o
        if k in ("certfile", "keyfile", "cacertfile", "password"):
            if not isinstance(v, str) or isinstance(v, Atom):
                raise OptfileError("{options,{%s,%r}}" % (k, v))
        elif k == "verify":
            if v not in ("verify_peer", "verify_none"):
                raise OptfileError("{options,{verify,%s}}" % v)
        elif k in ("fail_if_no_peer_cert", "secure_renegotiate", "reuse_sessions", "honor_cipher_order"):
            if _as_bool(v) is None:
                raise OptfileError("{options,{%s,%r}}" % (k, v))
            v = _as_bool(v)
            if k in ("fail_if_no_peer_cert", "honor_cipher_order") and role == "client":
                raise OptfileError("{options,{option,server_only,%s}}" % k)
        elif k == "depth":
            if not isinstance(v, int) or not 0 <= v <= 255:
                raise OptfileError("{options,{depth,%r}}" % (v,))
        elif k == "versions":
            if not isinstance(v, list) or not v or any(x not in _TLS_VERSIONS for x in v):
                raise OptfileError("{options,{versions,%r}}" % (v,))
        elif k == "server_name_indication":
            if role == "server":
                raise OptfileError("{options,{option,client_only,server_name_indication}}")
            if not (v == "disable" or (isinstance(v, str) and not isinstance(v, Atom) and v)):
                raise OptfileError("{options,{server_name_indication,%r}}" % (v,))
        elif k in ("log_level",):
            pass
        else:
            # options the stand-in does not implement (verify_fun, customize_hostname_check, crl_check,
            # ciphers, ...) are refused rather than silently ignored
            raise OptfileError("{options,{unknown_or_unsupported_option,%s}}" % k)
        out[str(k)] = v
    verify = out.get("verify", "verify_peer" if role == "client" else "verify_none")
    out["verify"] = verify
    if verify == "verify_peer" and not out.get("cacertfile"):
        raise OptfileError("{options,incompatible,[{verify,verify_peer},{cacerts,undefined}]}")
    if role == "server":
        fail = out.get("fail_if_no_peer_cert", verify == "verify_peer")
        if fail and verify == "verify_none":
            raise OptfileError("{options,incompatible,[{verify,verify_none},{fail_if_no_peer_cert,true}]}")
        out["fail_if_no_peer_cert"] = fail
    return out


def read_optfile(path):
    """-> {"server": opts, "client": opts}. Raises OptfileError."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError:
        raise OptfileError("{bad_ssl_dist_optfile,%s}" % _erl_string(path))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    term = parse_term(text)
    if not isinstance(term, list) or any(not (isinstance(t, tuple) and len(t) >= 1) for t in term):
        raise OptfileError("{badarg,[{ets,insert,[ssl_dist_opts,%s]}]}" % _short(term))
    found = {}
    for t in term:
        if len(t) == 2 and t[0] in ("server", "client"):
            found.setdefault(str(t[0]), t[1])   # ets set: the last wins in OTP; a file has one of each
    return {"server": _check_opts("server", found.get("server", [])),
            "client": _check_opts("client", found.get("client", []))}


def _erl_string(s):
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')


def _short(term):
    s = repr(term)
    return s if len(s) < 60 else s[:57] + "..."


# ---------------------------------------------------------------------------------------------
# Python ssl contexts

def _versions(ctx, opts):
    vs = opts.get("versions")
    if vs:
        vals = sorted(_TLS_VERSIONS[v] for v in vs)
        ctx.minimum_version = vals[0]
        ctx.maximum_version = vals[-1]
    else:
        # ssl's default in OTP 26: tlsv1.3 and tlsv1.2
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2


def _load(ctx, opts, errors):
    """Certificates are read by ssl when a connection is set up (its PEM cache), not at boot: a file that
    cannot be read makes every handshake fail."""
    if opts.get("certfile"):
        try:
            pw = opts.get("password")
            ctx.load_cert_chain(opts["certfile"], opts.get("keyfile") or opts["certfile"],
                                password=(lambda: pw) if pw is not None else None)
        except (OSError, ssl.SSLError) as e:
            errors.append("certfile %s: %s" % (opts["certfile"], e))
    if opts.get("cacertfile"):
        try:
            ctx.load_verify_locations(opts["cacertfile"])
        except (OSError, ssl.SSLError) as e:
            errors.append("cacertfile %s: %s" % (opts["cacertfile"], e))


class DistTLS:
    """The TLS side of one node's (or one CLI's) distribution."""

    def __init__(self, optfile, opts):
        self.optfile = optfile
        self.opts = opts
        self.errors = []
        s = opts["server"]
        sc = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        _versions(sc, s)
        if s["verify"] == "verify_peer":
            sc.verify_mode = ssl.CERT_REQUIRED if s["fail_if_no_peer_cert"] else ssl.CERT_OPTIONAL
        else:
            sc.verify_mode = ssl.CERT_NONE
        _load(sc, s, self.errors)
        self.server_ctx = sc
        c = opts["client"]
        cc = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        _versions(cc, c)
        self.sni = c.get("server_name_indication")
        if c["verify"] == "verify_peer":
            # ssl checks the server's certificate against the host it connects to (the node name's host),
            # or the server_name_indication given; `disable` turns that check off
            cc.check_hostname = self.sni != "disable"
            cc.verify_mode = ssl.CERT_REQUIRED
        else:
            cc.check_hostname = False
            cc.verify_mode = ssl.CERT_NONE
        _load(cc, c, self.errors)
        self.client_ctx = cc

    def server_hostname(self, host):
        if self.sni == "disable":
            return None
        if isinstance(self.sni, str):
            return self.sni
        return host.strip("[]")


def optfile_for_boot(etc_dir):
    """bin/emqx for a boot command: ${EMQX_SSL_DIST_OPTFILE:-$EMQX_ETC_DIR/ssl_dist.conf}."""
    return os.environ.get("EMQX_SSL_DIST_OPTFILE") or os.path.join(etc_dir, "ssl_dist.conf")


def space_refusal(optfile, root_dir="/usr/lib/emqx"):
    """bin/emqx's four lines (logerr: `ERROR: ` on stderr) when the options file path has a space."""
    return ["ERROR: Got space in: %s" % optfile,
            "ERROR: No space is allowed for Erlang distribution over SSL option file path.",
            "ERROR: Configure it from environment variable EMQX_SSL_DIST_OPTFILE.",
            "ERROR: Or make sure emqx root path '%s' has no space" % root_dir]


def load(optfile):
    """Read and check the options file -> DistTLS. Raises OptfileError."""
    return DistTLS(optfile, read_optfile(optfile))
