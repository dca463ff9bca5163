"""HOCON reader: the syntax EMQX accepts, and its refusals (with line numbers)."""

import pytest

from emqx_standin import hocon
from emqx_standin.hocon import HoconError, parse, parse_value


def test_objects_dotted_keys_and_separators():
    doc = parse("""
node {
  name = "emqx@127.0.0.1"
  cookie: secret
}
node.role = core
cluster { discovery_strategy = static, static.seeds = [emqx1@10.0.0.1, "emqx2@10.0.0.2"] }
a.b.c { d = 1 }
""")
    assert doc == {
        "node": {"name": "emqx@127.0.0.1", "cookie": "secret", "role": "core"},
        "cluster": {"discovery_strategy": "static",
                    "static": {"seeds": ["emqx1@10.0.0.1", "emqx2@10.0.0.2"]}},
        "a": {"b": {"c": {"d": 1}}},
    }


def test_root_braces_and_trailing_commas():
    assert parse('{ a = 1, b = [1, 2,], }') == {"a": 1, "b": [1, 2]}


def test_scalars():
    doc = parse("""
i = 1883
n = -3
f = 0.75
t = true
o = off
z = null
s = "quoted \\"x\\" \\u00e9 \\n"
u = emqx-1@host.example.com
d = 15s
d2 = 2m
d3 = 100ms
b = 1MB
p = 80%
""")
    assert doc["i"] == 1883 and doc["n"] == -3 and doc["f"] == 0.75
    assert doc["t"] is True and doc["o"] is False and doc["z"] is None
    assert doc["s"] == 'quoted "x" \u00e9 \n'
    assert doc["u"] == "emqx-1@host.example.com"
    assert (doc["d"], doc["d2"], doc["d3"], doc["b"], doc["p"]) == ("15s", "2m", "100ms", "1MB", "80%")


def test_triple_quoted_and_comments():
    doc = parse('''
# hash comment
// slash comment
key = """line1
"quoted" line2"""   # trailing comment
other = x // trailing
''')
    assert doc == {"key": 'line1\n"quoted" line2', "other": "x"}


def test_repeated_keys_merge_objects_and_replace_scalars():
    doc = parse("""
listeners.tcp.default { bind = "0.0.0.0:1883", max_connections = 10 }
listeners.tcp.default.max_connections = 20
listeners.tcp.default { proxy_protocol = true }
x = 1
x = 2
obj { a = 1 }
obj = marked_for_deletion
""")
    assert doc["listeners"]["tcp"]["default"] == {"bind": "0.0.0.0:1883", "max_connections": 20,
                                                  "proxy_protocol": True}
    assert doc["x"] == 2
    assert doc["obj"] == "marked_for_deletion"


def test_substitutions():
    doc = parse("""
base = "/etc/emqx"
path = ${base}
home = ${?HOME_FOR_TEST}
gone = ${?NOT_SET_ANYWHERE}
""", env={"HOME_FOR_TEST": "/var/lib/emqx"})
    assert doc == {"base": "/etc/emqx", "path": "/etc/emqx", "home": "/var/lib/emqx"}
    with pytest.raises(HoconError, match="unresolved substitution"):
        parse("a = ${NOPE}", env={})


def test_include(tmp_path):
    (tmp_path / "inc.conf").write_text('included { a = 1 }\n')
    main = tmp_path / "main.conf"
    main.write_text('include "inc.conf"\nincluded.b = 2\ninclude "missing.conf"\n')
    assert hocon.parse_file(str(main)) == {"included": {"a": 1, "b": 2}}


@pytest.mark.parametrize("text,line,fragment", [
    ('a = 1\nbind = 0.0.0.0:1883\n', 2, "syntax error"),        # ip:port must be quoted
    ('a = 1\n\ncertfile = /etc/emqx/cert.pem\n', 3, "unexpected character"),
    ('node {\n  name = "x"\n', 3, "missing '}'"),
    ('a = [1, 2\n', 2, "missing ']'"),
    ('a b\n', 1, "expected '=', ':' or '{'"),
    ('a = "unterminated\n', 1, "unterminated string"),
    ('1 = 2\n', 1, "syntax error"),
    ('x = 15x\n', 1, "syntax error"),
])
def test_syntax_errors_name_the_line(text, line, fragment):
    with pytest.raises(HoconError) as ei:
        parse(text)
    assert ei.value.line == line
    assert fragment in str(ei.value)


def test_env_style_values():
    assert parse_value("[a@h1,b@h2]") == ["a@h1", "b@h2"]
    assert parse_value("emqx@127.0.0.1") == "emqx@127.0.0.1"
    assert parse_value("true") is True
    assert parse_value("{a = 1}") == {"a": 1}
    with pytest.raises(HoconError):
        parse_value("0.0.0.0:1883")


def test_triple_quoted_unindent_and_hocon_pp_round_trip():
    # hocon_scanner.xrl unindent/1: """~ ... ~""" drops the common indentation and the `~` lines
    assert hocon.parse('a = """~\n    x\n      y\n  ~"""\n') == {"a": "x\n  y\n"}
    assert hocon.parse('a = """~\n  x\n  y~"""') == {"a": "x\ny"}
    assert hocon.parse('a = """ plain """') == {"a": " plain "}
    # hocon_pp:do/2: sorted keys, unquoted only what the scanner reads back as one unquoted string,
    # short maps/lists of simple values on one line, escaped strings triple-quoted
    doc = {"version": "5.8.9", "edition": "ce", "b": {"path": "/mqtt", "flag": True, "n": 2},
           "l": ["a", "b"], "m": [{"k": "v"}], "r": {"rules": "{allow, all}.\n"}, "e": "", "t": "true"}
    text = hocon.pp(doc)
    assert text == ('b {\n  flag = true\n  n = 2\n  path = "/mqtt"\n}\n'
                    'e = ""\nedition = ce\nl = [a, b]\nm = [\n  {k = v}\n]\n'
                    'r {\n  rules = """~\n    {allow, all}.\n  ~"""\n}\n'
                    't = "true"\nversion = "5.8.9"\n')
    assert hocon.parse(text) == doc
