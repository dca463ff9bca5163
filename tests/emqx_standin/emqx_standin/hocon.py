"""A HOCON reader following the dialect EMQX 5 accepts (the Erlang `hocon` library).

Output is plain Python data: dict (insertion ordered), list, str, int, float, bool, None.
Duration, byte-size and percent literals (`15s`, `1MB`, `80%`) are returned as the strings
written; converting them is the schema's job, as in EMQX.

Lexical rules mirror hocon_scanner.xrl: an unquoted string starts with a letter and continues
with letters, digits and `_ . @ % - |` (so `0.0.0.0:1883` or `/etc/x` must be quoted), `#` and
`//` start comments, `true/false/on/off` are booleans, `${VAR}` / `${?VAR}` are substitutions.
Errors raise HoconError with the line number.
"""

import errno
import json
import os
import re

__all__ = ["HoconError", "parse", "parse_file", "parse_value", "merge", "Subst"]


class HoconError(Exception):
    def __init__(self, message, line=None, filename=None):
        self.message = message
        self.line = line
        self.filename = filename
        where = ""
        if filename:
            where += "%s:" % filename
        if line is not None:
            where += "%d:" % line
        super().__init__(("%s %s" % (where, message)).strip())


class Subst:
    """An unresolved `${path}` reference (kept until resolve())."""

    __slots__ = ("name", "optional", "line")

    def __init__(self, name, optional, line):
        self.name = name
        self.optional = optional
        self.line = line

    def __repr__(self):
        return "${%s%s}" % ("?" if self.optional else "", self.name)


class _Concat:
    __slots__ = ("parts", "line")

    def __init__(self, parts, line):
        self.parts = parts
        self.line = line


# ---------------------------------------------------------------------------------------------
# lexer

_WS = " \t\x0b\x0c\xa0"
_NL = "\n\r\u2028\u2029"
_UNQ_START = re.compile(r"[A-Za-z]")
_UNQ = re.compile(r"[A-Za-z][A-Za-z0-9_.@%\-|]*")
_NUMLIKE = [
    ("bytesize", re.compile(r"[0-9]+(?:kb|KB|mb|MB|gb|GB)")),
    ("duration", re.compile(r"[0-9]+(?:ms|MS|d|D|h|H|m|M|s|S)")),
    ("percent", re.compile(r"[0-9]+%")),
    ("float", re.compile(r"[+-]?(?:[0-9]+\.[0-9]+[eE][+-]?[0-9]+|[0-9]*\.[0-9]+)")),
    ("integer", re.compile(r"[+-]?[0-9]+")),
]
_REQUIRED = re.compile(r'required\("((?:[^"\\\n\r\u2028\u2029]|\\.)*)"\)')
_VAR = re.compile(r"\$\{(\??)\s*([A-Za-z][A-Za-z0-9_.@%\-|]*)\s*\}")
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def _unescape(raw, err):
    out = []
    j = 0
    while j < len(raw):
        ch = raw[j]
        if ch == "\\":
            e = raw[j + 1] if j + 1 < len(raw) else ""
            if e in _ESCAPES:
                out.append(_ESCAPES[e])
                j += 2
                continue
            if e == "u" and re.match(r"[0-9A-Fa-f]{4}", raw[j + 2:j + 6]):
                out.append(chr(int(raw[j + 2:j + 6], 16)))
                j += 6
                continue
            err("bad escape \\%s in string" % e)
        out.append(ch)
        j += 1
    return "".join(out)


def _unindent(chars):
    """hocon_scanner.xrl unindent/1: a triple-quoted string that starts with `~` + newline has its
    lines' common indentation removed; a last line ending in `~` loses the `~`."""
    if chars.startswith("~\r\n"):
        chars = chars[3:]
    elif chars.startswith("~\n"):
        chars = chars[2:]
    else:
        return chars
    lines = chars.split("\n")
    if lines[-1].endswith("~"):
        lines[-1] = lines[-1][:-1]

    def level(line):
        if line in ("", "\r"):
            return None
        return len(line) - len(line.lstrip(" "))
    if len(lines) == 1:
        indent = level(lines[0]) or 0
    else:
        last = lines[-1]
        found = [x for x in (level(x) for x in lines[:-1]) if x is not None]
        mn = min(found) if found else 0
        if last != "" and all(ch == " " for ch in last):
            indent = mn
        else:
            lv = level(last)
            indent = mn if lv is None else min(lv, mn)   # erlang: min(ignore, N) is N (atom > number)

    def trim(line):
        if line in ("", "\r"):
            return line
        k = 0
        while k < indent and k < len(line) and line[k] == " ":
            k += 1
        return line[k:]
    return "\n".join(trim(x) for x in lines)


class _Tok:
    __slots__ = ("kind", "value", "line", "ws_before", "raw")

    def __init__(self, kind, value, line, ws_before, raw=None):
        self.raw = raw
        self.kind = kind          # punct, string, qstring, integer, float, bool, null, variable,
        self.value = value        # duration, bytesize, percent, nl, eof
        self.line = line
        self.ws_before = ws_before

    def __repr__(self):
        return "<%s %r @%d>" % (self.kind, self.value, self.line)


def _lex(text, filename=None):
    toks = []
    i = 0
    n = len(text)
    line = 1
    ws = ""

    def err(msg):
        raise HoconError(msg, line, filename)

    while i < n:
        c = text[i]
        if c in _WS:
            ws += c
            i += 1
            continue
        if c in _NL:
            if c == "\r" and i + 1 < n and text[i + 1] == "\n":
                i += 1
            toks.append(_Tok("nl", None, line, ws))
            ws = ""
            line += 1
            i += 1
            continue
        if c == "#" or text.startswith("//", i):
            while i < n and text[i] not in _NL:
                i += 1
            continue
        if text.startswith("+=", i):
            toks.append(_Tok("punct", "+=", line, ws))
            ws = ""
            i += 2
            continue
        if c in "{}[],:=":
            toks.append(_Tok("punct", c, line, ws))
            ws = ""
            i += 1
            continue
        if text.startswith('"""', i):
            end = text.find('"""', i + 3)
            if end < 0:
                err("unterminated triple-quoted string")
            # a run of more than three quotes ends at the last three
            while end + 3 < n and text[end + 3] == '"':
                end += 1
            raw = text[i + 3:end]
            toks.append(_Tok("qstring", _unindent(raw), line, ws))
            line += sum(raw.count(x) for x in "\n")
            ws = ""
            i = end + 3
            continue
        if c == '"':
            j = i + 1
            out = []
            while True:
                if j >= n or text[j] in _NL:
                    err("unterminated string")
                ch = text[j]
                if ch == '"':
                    break
                if ch == "\\":
                    if j + 1 >= n:
                        err("bad escape in string")
                    e = text[j + 1]
                    if e in _ESCAPES:
                        out.append(_ESCAPES[e])
                        j += 2
                        continue
                    if e == "u" and re.match(r"[0-9A-Fa-f]{4}", text[j + 2:j + 6]):
                        out.append(chr(int(text[j + 2:j + 6], 16)))
                        j += 6
                        continue
                    err("bad escape \\%s in string" % e)
                out.append(ch)
                j += 1
            toks.append(_Tok("qstring", "".join(out), line, ws))
            ws = ""
            i = j + 1
            continue
        if c == "$":
            m = _VAR.match(text, i)
            if not m:
                err("bad substitution syntax")
            toks.append(_Tok("variable", (m.group(2), m.group(1) == "?"), line, ws))
            ws = ""
            i = m.end()
            continue
        if _UNQ_START.match(c):
            m = _REQUIRED.match(text, i)
            if m:
                # hocon_scanner.xrl {Required}: required("file"), no blanks inside
                toks.append(_Tok("required", _unescape(m.group(1), err), line, ws))
                ws = ""
                i = m.end()
                continue
            m = _UNQ.match(text, i)
            word = m.group(0)
            if word in ("true", "on"):
                tok = _Tok("bool", True, line, ws)
            elif word in ("false", "off"):
                tok = _Tok("bool", False, line, ws)
            elif word == "null":
                tok = _Tok("null", None, line, ws)
            elif word == "include":
                tok = _Tok("include", word, line, ws)
            else:
                tok = _Tok("string", word, line, ws)
            toks.append(tok)
            ws = ""
            i = m.end()
            continue
        if c.isdigit() or c in "+-.":
            best = None
            for kind, rx in _NUMLIKE:
                m = rx.match(text, i)
                if m and (best is None or m.end() > best[1].end()):
                    best = (kind, m)
            if best is None:
                err("unexpected character %r" % c)
            kind, m = best
            s = m.group(0)
            if kind == "integer":
                val = int(s)
            elif kind == "float":
                val = float(s)
            else:
                val = s
            toks.append(_Tok(kind, val, line, ws, raw=s))
            ws = ""
            i = m.end()
            continue
        err("unexpected character %r" % c)
    toks.append(_Tok("eof", None, line, ws))
    return toks


# ---------------------------------------------------------------------------------------------
# parser

_SCALAR_KINDS = ("string", "qstring", "integer", "float", "bool", "null", "duration", "bytesize", "percent")
_CONCAT_KINDS = ("string", "qstring", "variable")


class _Parser:
    def __init__(self, toks, filename, include_dir, depth, include_dirs=(), stack=()):
        self.t = toks
        self.i = 0
        self.filename = filename
        self.include_dir = include_dir
        self.depth = depth
        self.include_dirs = list(include_dirs)
        self.stack = stack          # real paths of the files being included (cycle check)

    def peek(self):
        return self.t[self.i]

    def next(self):
        tok = self.t[self.i]
        self.i += 1
        return tok

    def err(self, msg, tok=None):
        tok = tok or self.peek()
        raise HoconError(msg, tok.line, self.filename)

    def skip_nl(self):
        while self.peek().kind == "nl":
            self.i += 1

    def skip_nl_commas(self):
        while self.peek().kind == "nl" or (self.peek().kind == "punct" and self.peek().value == ","):
            self.i += 1

    # root := '{' fields '}' | fields
    def parse_root(self):
        self.skip_nl()
        tok = self.peek()
        if tok.kind == "punct" and tok.value == "{":
            self.next()
            obj = self.parse_fields("}")
            self.skip_nl()
            if self.peek().kind != "eof":
                self.err("syntax error before: %s" % _show(self.peek()))
            return obj
        return self.parse_fields(None)

    def parse_fields(self, closer):
        obj = {}
        while True:
            self.skip_nl_commas()
            tok = self.peek()
            if closer is None and tok.kind == "eof":
                return obj
            if closer is not None and tok.kind == "punct" and tok.value == closer:
                self.next()
                return obj
            if tok.kind == "eof":
                self.err("syntax error: unexpected end of input, missing '%s'" % closer)
            if tok.kind == "include":
                self.next()
                self.do_include(obj)
                continue
            if tok.kind not in ("string", "qstring"):
                self.err("syntax error before: %s" % _show(tok))
            self.next()
            path = tok.value.split(".") if tok.kind == "string" else [tok.value]
            if any(p == "" for p in path):
                self.err("bad key %r" % tok.value, tok)
            sep = self.peek()
            if sep.kind == "punct" and sep.value in ("=", ":"):
                self.next()
                self.skip_nl()
                value = self.parse_value()
                _set_path(obj, path, value, append=False)
            elif sep.kind == "punct" and sep.value == "+=":
                self.next()
                self.skip_nl()
                value = self.parse_value()
                _set_path(obj, path, value, append=True)
            elif sep.kind == "punct" and sep.value == "{":
                value = self.parse_value()
                _set_path(obj, path, value, append=False)
            else:
                self.err("syntax error before: %s (expected '=', ':' or '{' after key '%s')"
                         % (_show(sep), tok.value), sep)
            # a field ends at a newline, a comma, the closer or EOF
            end = self.peek()
            if end.kind in ("nl", "eof"):
                continue
            if end.kind == "punct" and end.value == ",":
                continue
            if closer is not None and end.kind == "punct" and end.value == closer:
                continue
            if end.kind in ("string", "qstring", "include"):
                continue  # fields may follow each other without a separator
            self.err("syntax error before: %s" % _show(end), end)

    def do_include(self, obj):
        """hocon_token:load_include/2 (hocon 0.44.0): `include "f"`, `include f` or
        `include required("f")`; the name is searched in the including file's directory, then in
        include_dirs (filename:join, so an absolute name is used as is); the first that exists
        is read. Missing: ignored, or `{enoent,<<"f">>}` when required. An existing file that
        cannot be read, or a directory that cannot be searched, is an error either way."""
        tok = self.next()
        required = tok.kind == "required"
        if tok.kind not in ("qstring", "string", "required"):
            self.err("syntax error before: %s" % _show(tok), tok)
        name = tok.value
        dirs = [self.include_dir or "."] + self.include_dirs
        found, reasons = None, []
        for d in dirs:
            path = os.path.join(d, name)
            try:
                os.stat(path)
            except FileNotFoundError:
                continue
            except OSError as e:
                reasons.append("{%s,\"%s\"}" % (_errno_atom(e), path))
                continue
            found = path
            break
        if found is None:
            if reasons:
                self.err("[%s]" % ",".join(reversed(reasons)), tok)
            if required:
                self.err('{enoent,<<"%s">>}' % name, tok)
            return
        real = os.path.realpath(found)
        if real in self.stack:
            self.err("{cycle,%s}" % [os.path.basename(p) for p in self.stack], tok)
        try:
            text = _read_text(found)
        except OSError as e:
            self.err('{%s,"%s"}' % (_errno_atom(e), found), tok)
        sub = parse(text, filename=found, _depth=self.depth + 1, resolve=False,
                    include_dirs=self.include_dirs, _stack=self.stack + (real,))
        for k, v in sub.items():
            _set_path(obj, [k], v, append=False)

    def parse_value(self):
        parts = []
        first = self.peek()
        while True:
            tok = self.peek()
            if parts and (tok.kind == "nl" or tok.kind == "eof"):
                break
            if tok.kind == "punct" and tok.value == "{":
                self.next()
                parts.append((tok, self.parse_fields("}")))
            elif tok.kind == "punct" and tok.value == "[":
                self.next()
                parts.append((tok, self.parse_array()))
            elif tok.kind in _CONCAT_KINDS:
                self.next()
                if tok.kind == "variable":
                    parts.append((tok, Subst(tok.value[0], tok.value[1], tok.line)))
                else:
                    parts.append((tok, tok.value))
            elif tok.kind in _SCALAR_KINDS and not parts:
                self.next()
                # numbers, booleans, durations... stand alone
                nxt = self.peek()
                if not (nxt.kind in ("nl", "eof") or (nxt.kind == "punct" and nxt.value in (",", "}", "]"))):
                    self.err("syntax error before: %s" % _show(nxt), nxt)
                return tok.value
            else:
                if not parts:
                    self.err("syntax error before: %s" % _show(tok), tok)
                break
            nxt = self.peek()
            if nxt.kind in ("nl", "eof") or (nxt.kind == "punct" and nxt.value in (",", "}", "]")):
                break
            if self._key_ahead():
                break
            if not (nxt.kind in _CONCAT_KINDS or (nxt.kind == "punct" and nxt.value in ("{", "["))):
                self.err("syntax error before: %s" % _show(nxt), nxt)
        if len(parts) == 1:
            return parts[0][1]
        return _Concat(parts, first.line)

    def _key_ahead(self):
        tok = self.t[self.i]
        if tok.kind not in ("string", "qstring"):
            return False
        nxt = self.t[self.i + 1] if self.i + 1 < len(self.t) else None
        return nxt is not None and nxt.kind == "punct" and nxt.value in ("=", ":", "+=", "{")

    def parse_array(self):
        out = []
        while True:
            self.skip_nl_commas()
            tok = self.peek()
            if tok.kind == "punct" and tok.value == "]":
                self.next()
                return out
            if tok.kind == "eof":
                self.err("syntax error: unexpected end of input, missing ']'")
            out.append(self.parse_value())
            end = self.peek()
            if end.kind == "nl" or (end.kind == "punct" and end.value in (",", "]")):
                continue
            self.err("syntax error before: %s" % _show(end), end)


def _show(tok):
    if tok.kind == "eof":
        return "end of input"
    if tok.kind == "nl":
        return "newline"
    if tok.kind == "qstring":
        return json.dumps(tok.value)
    if tok.kind == "variable":
        return "${%s}" % tok.value[0]
    if tok.raw is not None:
        return "'%s'" % tok.raw
    return "'%s'" % (tok.value,)


def _set_path(obj, path, value, append):
    cur = obj
    for key in path[:-1]:
        nxt = cur.get(key)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[key] = nxt
        cur = nxt
    last = path[-1]
    if append:
        old = cur.get(last)
        if old is None:
            cur[last] = [value]
        elif isinstance(old, list):
            old.append(value)
        else:
            cur[last] = _Concat([(None, old), (None, [value])], 0)
        return
    old = cur.get(last)
    if isinstance(old, dict) and isinstance(value, dict):
        cur[last] = merge(old, value)
    else:
        cur[last] = value


def merge(base, over):
    """Deep-merge two parsed objects (HOCON object merging): `over` wins, objects merge."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


# ---------------------------------------------------------------------------------------------
# substitution

def _lookup(root, name):
    cur = root
    for part in name.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return False, None
        cur = cur[part]
    return True, cur


def _resolve(value, root, env, filename, stack=()):
    if isinstance(value, dict):
        return {k: _resolve(v, root, env, filename, stack) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, root, env, filename, stack) for v in value]
    if isinstance(value, Subst):
        if value.name in stack:
            raise HoconError("circular substitution ${%s}" % value.name, value.line, filename)
        found, v = _lookup(root, value.name)
        if found and not isinstance(v, Subst):
            return _resolve(v, root, env, filename, stack + (value.name,))
        if found:
            return _resolve(v, root, env, filename, stack + (value.name,))
        if value.name in env:
            return env[value.name]
        if value.optional:
            return _MISSING
        raise HoconError("unresolved substitution ${%s}" % value.name, value.line, filename)
    if isinstance(value, _Concat):
        vals = []
        for tok, part in value.parts:
            r = _resolve(part, root, env, filename, stack)
            if r is _MISSING:
                continue
            vals.append((tok, r))
        if not vals:
            return _MISSING
        if all(isinstance(v, dict) for _, v in vals):
            out = {}
            for _, v in vals:
                out = merge(out, v)
            return out
        if all(isinstance(v, list) for _, v in vals):
            out = []
            for _, v in vals:
                out.extend(v)
            return out
        if any(isinstance(v, (dict, list)) for _, v in vals):
            raise HoconError("cannot concatenate an object or array with a string", value.line, filename)
        s = ""
        for idx, (tok, v) in enumerate(vals):
            if idx and tok is not None:
                s += tok.ws_before
            s += _scalar_text(v)
        return s
    return value


def _scalar_text(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    return str(v)


class _Missing:
    def __repr__(self):
        return "<missing>"


_MISSING = _Missing()


def _drop_missing(value):
    if isinstance(value, dict):
        return {k: _drop_missing(v) for k, v in value.items() if v is not _MISSING}
    if isinstance(value, list):
        return [_drop_missing(v) for v in value if v is not _MISSING]
    return value


def resolve(obj, env=None, filename=None):
    env = os.environ if env is None else env
    return _drop_missing(_resolve(obj, obj, env, filename))


# ---------------------------------------------------------------------------------------------
# public API

def _errno_atom(e):
    return errno.errorcode.get(e.errno, "error").lower() if e.errno else "error"


def _read_text(path):
    """hocon_token:read/1: the file's bytes as UTF-8, a leading BOM dropped."""
    with open(path, "rb") as fh:
        data = fh.read()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.decode("utf-8")


def parse(text, filename=None, env=None, resolve=True, _depth=0, include_dirs=(), _stack=None):
    """Parse a HOCON document and return a dict. include_dirs: where `include` looks after the
    including file's own directory (EMQX passes node.data_dir/configs)."""
    toks = _lex(text, filename)
    include_dir = os.path.dirname(filename) if filename else None
    if _stack is None:
        _stack = (os.path.realpath(filename),) if filename else ()
    obj = _Parser(toks, filename, include_dir, _depth, include_dirs, _stack).parse_root()
    if resolve:
        obj = globals()["resolve"](obj, env, filename)
    return obj


def parse_file(path, env=None, include_dirs=()):
    return parse(_read_text(path), filename=path, env=env, include_dirs=include_dirs)


def parse_value(text, env=None):
    """Parse one HOCON value (as given in an EMQX_* environment variable)."""
    toks = _lex(text)
    p = _Parser(toks, None, None, 0)
    p.skip_nl()
    if p.peek().kind == "eof":
        raise HoconError("empty value")
    v = p.parse_value()
    p.skip_nl()
    if p.peek().kind != "eof":
        raise HoconError("trailing input after value")
    wrapper = {"v": v}
    return resolve(wrapper, env)["v"]


# ---------------------------------------------------------------------------------------------
# hocon 0.44.0 src/hocon_pp.erl do/2: the HOCON text EMQX writes (cluster.hocon, a backup's META.hocon
# and cluster.hocon). The root map has no braces; map fields are sorted by key; `key = value` or
# `key {...}`; 2-space indentation; a map with fewer than 3 fields of numbers/atoms/simple short
# strings on one line; strings quoted unless "simple"; strings needing escapes as triple-quoted.

_PP_SIMPLE = re.compile(r'[^$"{}\[\]:=,+#`^?!@*& \\\n.\-]*')
_PP_UNQUOTED = re.compile(r"[A-Za-z][A-Za-z0-9_.@%\-|]*")
_PP_KEY = re.compile(r"[a-zA-Z]+[A-Za-z0-9\-_]*")
_PP_ESC = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v", "\f": "\\f", "\b": "\\b", "\x1b": "\\e",
           "\x7f": "\\d", '"': '\\"', "\\": "\\\\"}


def _pp_latin1_printable(s):
    return all(c in "\n\r\t\v\b\f\x1b" or 32 <= ord(c) <= 126 or 160 <= ord(c) <= 255 for c in s)


def _pp_is_simple(s):
    if s[:1].isdigit():
        return False
    return bool(_PP_SIMPLE.fullmatch(s))


def _pp_erl_quote(s):
    """io_lib:format("~0p", [S]) of a printable latin-1 string."""
    out = []
    for c in s:
        if c in '"\\':
            out.append("\\" + c)
        elif c in _PP_ESC and c not in '"\\':
            out.append(_PP_ESC[c])
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def _pp_str(s, indent):
    if '"""' not in s and any(c in _PP_ESC for c in s):
        if "\n" in s or s.startswith('"') or s.endswith('"'):
            lines = s.split("\n")
            body = []
            for i, line in enumerate(lines):
                last = i == len(lines) - 1
                if last and line in ("", "\r"):
                    body.append(" " * indent)
                elif last:
                    body.append(" " * (indent + 2) + line)
                elif line in ("", "\r"):
                    body.append(line + "\n")
                else:
                    body.append(" " * (indent + 2) + line + "\n")
            return '"""~\n' + "".join(body) + '~"""'
        return '"""' + s + '"""'
    if _pp_latin1_printable(s):
        # is_to_quote_str/1: unquoted only when hocon_scanner reads it back as one unquoted string
        # (Unquoted = {Letter}[A-Za-z0-9_.@%-|]*, not a bool/null/include) and it is "simple"
        simple = bool(_PP_UNQUOTED.fullmatch(s)) and _pp_is_simple(s) and \
            s not in ("true", "false", "null", "include")
        return s if simple else _pp_erl_quote(s)
    return '"' + "".join(_PP_ESC.get(c, c) for c in s) + '"'


def _pp_scalar(v, indent):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        text = ("%.6f" % v).rstrip("0")
        return text + "0" if text.endswith(".") else text
    if isinstance(v, bytes):
        v = v.decode("utf-8")
    return _pp_str(str(v), indent)


def _pp_key(k):
    k = str(k)
    if k != "null" and _pp_latin1_printable(k) and _PP_KEY.fullmatch(k):
        return k
    return '"' + "".join(_PP_ESC.get(c, c) for c in k) + '"'


def _pp_oneliner(v):
    if isinstance(v, list):
        return all(isinstance(x, (int, float)) and not isinstance(x, bool) or x is None or isinstance(x, bool)
                   or (isinstance(x, str) and len(x.encode()) <= 40 and _pp_is_simple(x)) for x in v)
    if isinstance(v, dict):
        return len(v) < 3 and _pp_oneliner(list(v.values()))
    return False


def _pp_value(v, indent, obj_nl=True):
    if isinstance(v, dict):
        if _pp_oneliner(v):
            text = "{" + ", ".join(_pp_field(k, x, indent) for k, x in _pp_items(v)) + "}"
        else:
            text = "{\n" + "".join(" " * (indent + 2) + _pp_field(k, x, indent + 2) + "\n"
                                   for k, x in _pp_items(v)) + " " * indent + "}"
        return text + ("\n" if obj_nl else "")
    if isinstance(v, list):
        if not v:
            return "[]"
        if _pp_oneliner(v):
            return "[" + ", ".join(_pp_value(x, indent) for x in v) + "]"
        inner = ",".join("\n" + " " * (indent + 2) + _pp_value(x, indent + 2, obj_nl=False) for x in v)
        return "[" + inner + "\n" + " " * indent + "]"
    return _pp_scalar(v, indent)


def _pp_items(m):
    return sorted(((str(k), x) for k, x in m.items()), key=lambda kv: kv[0].encode("utf-8"))


def _pp_field(k, v, indent):
    if isinstance(v, dict):
        return _pp_key(k) + " " + _pp_value(v, indent)
    return _pp_key(k) + " = " + _pp_value(v, indent)


def pp(root):
    """hocon_pp:do(Map, #{}) joined: one line per field of the root map, "\\n"-terminated, no empty lines."""
    text = "".join(_pp_field(k, v, 0) + "\n" for k, v in _pp_items(root))
    return "".join(line + "\n" for line in text.split("\n") if line != "")
