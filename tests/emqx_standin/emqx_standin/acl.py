"""The file authorization source of EMQX 5.8.9 (test equipment; own Python, written from the sources).

- reading acl.conf: file:consult/1 semantics (Erlang terms, each ended by a dot; UTF-8 unless a
  `coding:` comment in the first two lines says latin-1); a read error is `failed_to_read_acl_file`,
  a syntax error `bad_acl_file_content` (apps/emqx_auth/src/emqx_authz/sources/emqx_authz_file.erl
  validate/1);
- compiling each term as apps/emqx_auth/src/emqx_authz/emqx_authz_rule.erl compile/1 does (errors
  raise AclError, EMQX throws and the source / the node's config check fails);
- matching (emqx_authz_rule:matches/4, match_action, match_who, match_topics) with topic matching as
  apps/emqx/src/emqx_topic.erl match/2 and placeholders as apps/emqx_utils/src/emqx_template.erl
  (parse/render_strict) through apps/emqx_auth/src/emqx_auth_utils.erl (parse_str, render_strict).
"""

import ipaddress
import re

__all__ = ["AclError", "Atom", "consult", "consult_file", "compile_rule", "load_rules", "matches",
           "topic_words", "topic_match"]


class AclError(Exception):
    """A file EMQX refuses: `kind` is failed_to_read_acl_file | bad_acl_file_content | a compile
    reason (invalid_authorization_rule, invalid_client_match_condition, ...)."""

    def __init__(self, kind, detail=""):
        self.kind = kind
        self.detail = detail
        super().__init__("%s%s" % (kind, (": %s" % detail) if detail else ""))


class Atom(str):
    """An Erlang atom (a str subclass so it compares with plain names)."""

    def __repr__(self):
        return "Atom(%s)" % str.__repr__(self)


# ==============================================================================================
# Erlang term reader (what file:consult/1 accepts)
# ==============================================================================================
_RESERVED = {"after", "and", "andalso", "band", "begin", "bnot", "bor", "bsl", "bsr", "bxor", "case",
             "catch", "cond", "div", "end", "fun", "if", "let", "not", "of", "or", "orelse", "receive",
             "rem", "try", "when", "xor", "maybe", "else"}
_ESC = {"b": 8, "d": 127, "e": 27, "f": 12, "n": 10, "r": 13, "s": 32, "t": 9, "v": 11}


class _Lexer:
    def __init__(self, text):
        self.s = text
        self.i = 0
        self.line = 1

    def err(self, what):
        raise AclError("bad_acl_file_content", "{%d,erl_parse,%s}" % (self.line, what))

    def skip(self):
        s = self.s
        while self.i < len(s):
            c = s[self.i]
            if c == "\n":
                self.line += 1
                self.i += 1
            elif c.isspace():
                self.i += 1
            elif c == "%":
                while self.i < len(s) and s[self.i] != "\n":
                    self.i += 1
            else:
                break

    def escape(self):
        """After a backslash inside a quoted string/atom or a $ char literal: the code point."""
        s = self.s
        if self.i >= len(s):
            self.err("unterminated")
        c = s[self.i]
        self.i += 1
        if c in "01234567":
            j = self.i
            while j < len(s) and j - self.i < 2 and s[j] in "01234567":
                j += 1
            v = int(c + s[self.i:j], 8)
            self.i = j
            return v
        if c == "x":
            if self.i < len(s) and s[self.i] == "{":
                end = s.find("}", self.i)
                if end < 0:
                    self.err("bad escape")
                try:
                    v = int(s[self.i + 1:end], 16)
                except ValueError:
                    self.err("bad escape")
                self.i = end + 1
                return v
            h = s[self.i:self.i + 2]
            if len(h) < 2 or not all(x in "0123456789abcdefABCDEF" for x in h):
                self.err("bad escape")
            self.i += 2
            return int(h, 16)
        if c == "^":
            if self.i >= len(s):
                self.err("bad escape")
            v = ord(s[self.i]) & 31
            self.i += 1
            return v
        if c in _ESC:
            return _ESC[c]
        if c == "\n":
            self.line += 1
        return ord(c)

    def quoted(self, q):
        s = self.s
        out = []
        while True:
            if self.i >= len(s):
                self.err("unterminated string")
            c = s[self.i]
            self.i += 1
            if c == q:
                return out
            if c == "\\":
                out.append(self.escape())
            else:
                if c == "\n":
                    self.line += 1
                out.append(ord(c))

    def next(self):
        """-> (kind, value): 'atom', 'str' (list of code points), 'int', 'float', 'var', 'punct', 'dot', 'eof'."""
        self.skip()
        s = self.s
        if self.i >= len(s):
            return ("eof", None)
        c = s[self.i]
        if c == "." and (self.i + 1 >= len(s) or s[self.i + 1].isspace() or s[self.i + 1] == "%"):
            self.i += 1
            return ("dot", None)
        if c.isdigit():
            m = re.compile(r"([0-9][0-9_]*)#([0-9A-Za-z_]+)|[0-9][0-9_]*\.[0-9][0-9_]*(?:[eE][+-]?[0-9]+)?"
                           r"|[0-9][0-9_]*").match(s, self.i)
            text = m.group(0)
            self.i = m.end()
            try:
                if m.group(1):
                    return ("int", int(m.group(2).replace("_", ""), int(m.group(1).replace("_", ""))))
                if "." in text:
                    return ("float", float(text.replace("_", "")))
                return ("int", int(text.replace("_", "")))
            except ValueError:
                self.err("bad number")
        if c == "$":
            self.i += 1
            if self.i >= len(s):
                self.err("bad char")
            ch = s[self.i]
            self.i += 1
            if ch == "\\":
                return ("int", self.escape())
            return ("int", ord(ch))
        if c.isalpha() or c == "_":
            m = re.compile(r"[A-Za-z_\u00c0-\u00ff][A-Za-z0-9_@\u00c0-\u00ff]*").match(s, self.i)
            word = m.group(0)
            self.i = m.end()
            if word[0].isupper() or word[0] == "_":
                return ("var", word)
            if word in _RESERVED:
                return ("reserved", word)
            return ("atom", Atom(word))
        if c == "'":
            self.i += 1
            return ("atom", Atom("".join(chr(x) for x in self.quoted("'"))))
        if c == '"':
            self.i += 1
            return ("str", self.quoted('"'))
        for p in ("<<", ">>", "{", "}", "[", "]", ",", "|", "-", "+", "/", ":"):
            if s.startswith(p, self.i):
                self.i += len(p)
                return ("punct", p)
        self.err("illegal character %r" % c)


class _Parser:
    def __init__(self, text):
        self.lx = _Lexer(text)
        self.tok = self.lx.next()

    def advance(self):
        t = self.tok
        self.tok = self.lx.next()
        return t

    def expect(self, p):
        if self.tok != ("punct", p):
            self.lx.err("syntax error before: %s" % (self.tok[1],))
        self.advance()

    def term(self):
        kind, val = self.advance()
        if kind == "str":
            out = list(val)
            while self.tok[0] == "str":       # adjacent strings are concatenated by the scanner
                out += self.advance()[1]
            return out
        if kind in ("atom", "int", "float"):
            return val
        if kind == "punct" and val == "-" and self.tok[0] in ("int", "float"):
            return -self.advance()[1]
        if kind == "punct" and val == "+" and self.tok[0] in ("int", "float"):
            return self.advance()[1]
        if kind == "punct" and val == "{":
            items = []
            if self.tok == ("punct", "}"):
                self.advance()
                return tuple(items)
            while True:
                items.append(self.term())
                if self.tok == ("punct", ","):
                    self.advance()
                    continue
                self.expect("}")
                return tuple(items)
        if kind == "punct" and val == "[":
            items = []
            if self.tok == ("punct", "]"):
                self.advance()
                return items
            while True:
                items.append(self.term())
                if self.tok == ("punct", ","):
                    self.advance()
                    continue
                if self.tok == ("punct", "|"):
                    self.advance()
                    tail = self.term()
                    self.expect("]")
                    if isinstance(tail, list):
                        return items + tail
                    return _Improper(items, tail)
                self.expect("]")
                return items
        if kind == "punct" and val == "<<":
            data = bytearray()
            if self.tok == ("punct", ">>"):
                self.advance()
                return bytes(data)
            while True:
                k, v = self.advance()
                if k == "str":
                    data += "".join(chr(x) for x in v).encode("latin-1", "replace") \
                        if all(x < 256 for x in v) else bytes(x & 255 for x in v)
                    if self.tok == ("punct", "/"):
                        self.advance()
                        k2, v2 = self.advance()
                        if k2 != "atom" or v2 not in ("utf8", "binary"):
                            self.lx.err("bad binary segment")
                        if v2 == "utf8":
                            data = data[:len(data) - len(v)] + "".join(chr(x) for x in v).encode("utf-8")
                elif k == "int":
                    data.append(v & 255)
                else:
                    self.lx.err("bad binary segment")
                if self.tok == ("punct", ","):
                    self.advance()
                    continue
                self.expect(">>")
                return bytes(data)
        if kind == "eof":
            self.lx.err("premature end")
        self.lx.err("syntax error before: %s" % (val,))


class _Improper:
    def __init__(self, items, tail):
        self.items, self.tail = items, tail


def _coding(raw):
    """epp: a `coding:` comment on the first two lines selects latin-1; UTF-8 otherwise."""
    head = raw.split(b"\n", 2)[:2]
    for line in head:
        m = re.search(rb"coding\s*[:=]\s*([-a-zA-Z0-9_]+)", line)
        if m and line.lstrip().startswith(b"%"):
            enc = m.group(1).decode("ascii").lower()
            if enc in ("latin-1", "latin1", "iso-8859-1"):
                return "latin-1"
            return "utf-8"
    return "utf-8"


def consult(raw):
    """file:consult/1 on the bytes of a file: the list of terms."""
    try:
        text = raw.decode(_coding(raw))
    except UnicodeDecodeError:
        raise AclError("bad_acl_file_content", "{1,file_io_server,invalid_unicode}")
    p = _Parser(text)
    terms = []
    while p.tok[0] != "eof":
        terms.append(p.term())
        if p.tok[0] != "dot":
            p.lx.err("syntax error before: %s" % (p.tok[1],))
        p.advance()
    return terms


def consult_file(path):
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except IsADirectoryError:
        raise AclError("failed_to_read_acl_file", "eisdir")
    except FileNotFoundError:
        raise AclError("failed_to_read_acl_file", "enoent")
    except PermissionError:
        raise AclError("failed_to_read_acl_file", "eacces")
    except OSError as e:
        raise AclError("failed_to_read_acl_file", str(e))
    return consult(raw)


# ==============================================================================================
# compile (emqx_authz_rule:compile/1)
# ==============================================================================================
ALL_TOPICS = ("ALL_TOPICS",)
ALLOWED_VARS = ("username", "clientid", "cert_common_name", "zone")
_PLACEHOLDER = re.compile(r"\$\{[.]?([a-zA-Z0-9._]*)\}|\$\{(\$)\}")


def _is_charlist(v):
    return isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= 0x10FFFF
                                       for x in v)


def _bin(v, what="value"):
    """bin/1: a char list or a binary -> bytes; anything else crashes in EMQX (error, not throw)."""
    if isinstance(v, bytes):
        return v
    if _is_charlist(v):
        try:
            return "".join(chr(x) for x in v).encode("utf-8")
        except UnicodeEncodeError:
            raise AclError("invalid_authorization_rule", "badarg in %s" % what)
    raise AclError("invalid_authorization_rule", "function_clause: bin(%s)" % _show(v))


def _show(v):
    if isinstance(v, Atom):
        return str(v)
    if _is_charlist(v) and v:
        return '"%s"' % "".join(chr(x) for x in v)
    if isinstance(v, tuple):
        return "{%s}" % ",".join(_show(x) for x in v)
    if isinstance(v, list):
        return "[%s]" % ",".join(_show(x) for x in v)
    if isinstance(v, bytes):
        return '<<"%s">>' % v.decode("utf-8", "replace")
    return repr(v)


def topic_words(topic):
    """emqx_topic:words/1 on bytes: split at '/', '' / '+' / '#' become the atoms '' / '+' / '#'."""
    out = []
    for w in topic.split(b"/"):
        if w == b"":
            out.append(Atom(""))
        elif w == b"+":
            out.append(Atom("+"))
        elif w == b"#":
            out.append(Atom("#"))
        else:
            out.append(w)
    return out


def _is_wild(w):
    return isinstance(w, Atom) and w in ("+", "#")


def topic_match(name, filt):
    """emqx_topic:match/2 on word lists (name may hold wildcards when it is a subscription)."""
    if name and isinstance(name[0], bytes) and name[0].startswith(b"$") and filt and _is_wild(filt[0]):
        return False
    i = 0
    while True:
        if i == len(name) and i == len(filt):
            return True
        if i < len(filt) and filt[i] == Atom("#") and isinstance(filt[i], Atom) and i == len(filt) - 1:
            return True
        if i >= len(name) or i >= len(filt):
            return False
        a, b = name[i], filt[i]
        if type(a) is type(b) and a == b:
            i += 1
            continue
        if isinstance(b, Atom) and b == "+":
            i += 1
            continue
        return False


def _compile_regex(v):
    pat = _bin(v, "re")
    try:
        return re.compile(pat)
    except re.error as e:
        raise AclError("invalid_authorization_rule", "badmatch: re:compile(%s): %s" % (_show(v), e))


def _parse_cidr(v):
    if not _is_charlist(v):
        raise AclError("invalid_client_match_condition", "bad CIDR %s" % _show(v))
    text = "".join(chr(x) for x in v).strip()
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise AclError("invalid_client_match_condition", "bad CIDR %s" % _show(v))


def _compile_who(who):
    if who == Atom("all") and isinstance(who, Atom):
        return ("all",)
    if isinstance(who, tuple) and len(who) == 2 and isinstance(who[0], Atom):
        key, val = who
        if key in ("user", "username", "client", "clientid"):
            field = "username" if key in ("user", "username") else "clientid"
            if isinstance(val, tuple) and len(val) == 2 and val[0] == Atom("re") and isinstance(val[0], Atom):
                return (field, "re", _compile_regex(val[1]))
            return (field, "eq", _bin(val, key))
        if key == "ipaddr":
            return ("ipaddrs", [_parse_cidr(val)])
        if key == "ipaddrs":
            if not isinstance(val, list):
                raise AclError("invalid_client_match_condition", _show(who))
            return ("ipaddrs", [_parse_cidr(x) for x in val])
        if key in ("and", "or") and isinstance(val, list):
            return (str(key), [_compile_who(x) for x in val])
    if isinstance(who, tuple) and len(who) == 3 and who[0] == Atom("client_attr") and isinstance(who[0], Atom):
        name = _bin(who[1], "client_attr")
        val = who[2]
        if isinstance(val, tuple) and len(val) == 2 and val[0] == Atom("re"):
            return ("client_attr", name, "re", _compile_regex(val[1]))
        return ("client_attr", name, "eq", _bin(val, "client_attr"))
    raise AclError("invalid_client_match_condition", _show(who))


def _proplist_values(opts, key):
    out = []
    for o in opts:
        if isinstance(o, Atom) and o == key:
            out.append(Atom("true"))
        elif isinstance(o, tuple) and len(o) == 2 and isinstance(o[0], Atom) and o[0] == key:
            out.append(o[1])
    return out


def _qos_from_opts(opts):
    vals = _proplist_values(opts, "qos")
    if not vals:
        return [0, 1, 2]
    out = []
    for v in vals:
        items = [v] if (isinstance(v, int) and not isinstance(v, bool)) else v if isinstance(v, list) else None
        if items is None:
            raise AclError("invalid_authorization_rule", "function_clause: qos %s" % _show(v))
        for q in items:
            if not (isinstance(q, int) and 0 <= q <= 2):
                raise AclError("invalid_authorization_qos", _show(q))
            out.append(q)
    return out


def _retain_from_opts(opts):
    vals = _proplist_values(opts, "retain")
    v = vals[0] if vals else Atom("all")
    if isinstance(v, Atom) and v in ("all", "true", "false"):
        return "all" if v == "all" else (v == "true")
    raise AclError("invalid_authorization_retain", _show(v))


def _compile_action(a):
    if isinstance(a, Atom) and a in ("all", "publish", "subscribe"):
        return str(a)
    if isinstance(a, tuple) and len(a) == 2 and isinstance(a[0], Atom) and isinstance(a[1], list):
        if a[0] == "subscribe":
            return {"type": "subscribe", "qos": _qos_from_opts(a[1])}
        if a[0] in ("publish", "all"):
            return {"type": str(a[0]), "qos": _qos_from_opts(a[1]), "retain": _retain_from_opts(a[1])}
    raise AclError("invalid_authorization_action", _show(a))


def _parse_template(text):
    """emqx_template:parse/1 + emqx_auth_utils handle_disallowed_placeholders: a list of literal
    str parts and ('var', name) parts; disallowed placeholders stay literal text."""
    parts = []
    pos = 0
    for m in _PLACEHOLDER.finditer(text):
        if m.start() > pos:
            parts.append(text[pos:m.start()])
        if m.group(2) == "$":
            parts.append("$")
        else:
            name = m.group(1)
            if name in ALLOWED_VARS or name.startswith("client_attrs."):
                parts.append(("var", name))
            else:
                parts.append(m.group(0))
        pos = m.end()
    if pos < len(text):
        parts.append(text[pos:])
    return parts


def _compile_topic(t):
    if _is_charlist(t) and t[:3] == [ord("e"), ord("q"), ord(" ")]:
        return ("eq", topic_words(_bin(t[3:])))
    if isinstance(t, bytes) and t.startswith(b"eq "):
        return ("eq", topic_words(t[3:]))
    if isinstance(t, tuple) and len(t) == 2 and t[0] == Atom("eq") and isinstance(t[0], Atom):
        return ("eq", topic_words(_bin(t[1], "eq")))
    if not (isinstance(t, bytes) or _is_charlist(t)):
        raise AclError("invalid_authorization_rule", "badarg: topic %s" % _show(t))
    raw = _bin(t, "topic")
    tmpl = _parse_template(raw.decode("utf-8"))
    if all(isinstance(p, str) for p in tmpl):
        return ("words", topic_words(raw))
    return ("pattern", tmpl)


def compile_rule(term):
    """emqx_authz_rule:compile/1 -> (permission, who, action, [topic conditions])."""
    if isinstance(term, tuple) and len(term) == 2 and isinstance(term[0], Atom) and term[0] in ("allow", "deny") \
            and term[1] == Atom("all") and isinstance(term[1], Atom):
        return (str(term[0]), ("all",), "all", [ALL_TOPICS])
    if isinstance(term, tuple) and len(term) == 4:
        perm, who, action, topics = term
        if not (isinstance(perm, Atom) and perm in ("allow", "deny")):
            raise AclError("invalid_authorization_permission", _show(perm))
        if isinstance(topics, Atom) and topics == "all":
            return (str(perm), _compile_who(who), _compile_action(action), [ALL_TOPICS])
        if isinstance(topics, list):
            return (str(perm), _compile_who(who), _compile_action(action), [_compile_topic(t) for t in topics])
    raise AclError("invalid_authorization_rule", _show(term))


def load_rules(path):
    """emqx_authz_file:validate/1: read and compile, or raise AclError."""
    return [compile_rule(t) for t in consult_file(path)]


# ==============================================================================================
# matching
# ==============================================================================================
def _match_action(req, cond):
    rtype = req["type"]
    if isinstance(cond, str):
        return cond == "all" or cond == rtype
    if cond["type"] not in (rtype, "all"):
        return False
    if req["qos"] not in cond["qos"]:
        return False
    if rtype == "publish":
        r = cond.get("retain", "all")
        return r == "all" or r == bool(req.get("retain"))
    return True


def _bytes(v):
    return v.encode("utf-8", "surrogateescape") if isinstance(v, str) else v


def _match_who(ci, cond):
    kind = cond[0]
    if kind == "all":
        return True
    if kind in ("username", "clientid"):
        val = ci.get(kind)
        if val is None:
            return False
        val = _bytes(val)
        if cond[1] == "eq":
            return val == cond[2]
        return cond[2].search(val) is not None
    if kind == "client_attr":
        val = (ci.get("client_attrs") or {}).get(cond[1])
        if val is None:
            return False
        return val == cond[3] if cond[2] == "eq" else cond[3].search(val) is not None
    if kind == "ipaddrs":
        host = ci.get("peerhost")
        if not host:
            return False
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(ip.version == net.version and ip in net for net in cond[1])
    if kind == "and":
        return all(_match_who(ci, c) for c in cond[1])
    if kind == "or":
        return any(_match_who(ci, c) for c in cond[1])
    return False


class _RenderError(Exception):
    pass


def _render(tmpl, ci):
    """emqx_auth_utils:render_strict/2: a missing binding is an error; a binding whose value is
    undefined renders as "undefined" (emqx_template:lookup/2 finds the atom key)."""
    out = []
    for p in tmpl:
        if isinstance(p, str):
            out.append(p.encode("utf-8"))
            continue
        name = p[1]
        if name == "zone":
            out.append(_bytes(ci.get("zone", "default")))
        elif name in ("username", "clientid"):
            v = ci.get(name)
            out.append(b"undefined" if v is None else _bytes(v))
        elif name == "cert_common_name":
            if "cn" not in ci:
                raise _RenderError(name)
            v = ci["cn"]
            out.append(b"undefined" if v is None else _bytes(v))
        else:   # client_attrs.NAME: the stand-in sets no client attributes
            attrs = ci.get("client_attrs") or {}
            v = attrs.get(name.split(".", 1)[1].encode())
            if v is None:
                raise _RenderError(name)
            out.append(v)
    return b"".join(out)


def _match_topics(ci, topic_words_, conds):
    for c in conds:
        if c is ALL_TOPICS:
            return True
        kind = c[0]
        if kind == "pattern":
            try:
                rendered = _render(c[1], ci)
            except _RenderError:
                continue
            if topic_match(topic_words_, topic_words(rendered)):
                return True
        elif kind == "eq":
            if [type(x) for x in topic_words_] == [type(x) for x in c[1]] and topic_words_ == c[1]:
                return True
        elif topic_match(topic_words_, c[1]):
            return True
    return False


def matches(ci, action, topic, rules):
    """emqx_authz_rule:matches/4 -> "allow" | "deny" | None (nomatch). `ci` is the client info:
    username, clientid, peerhost, cn (only when there is a peer certificate), zone."""
    words = topic_words(_bytes(topic))
    for perm, who, acond, tconds in rules:
        if _match_action(action, acond) and _match_who(ci, who) and _match_topics(ci, words, tconds):
            return perm
    return None
