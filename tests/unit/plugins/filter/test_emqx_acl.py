# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for the iothub.emq.emqx_acl_problems, emqx_acl_conf and emqx_acl_guard_rules filters."""

from __future__ import annotations

import re

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.iothub.emq.plugins.filter.emqx_acl import (
    HEADER,
    FilterModule,
    emqx_acl_conf,
    emqx_acl_guard_rules,
    emqx_acl_problems,
    erlang_string,
)

V = "emq_node_authz_rules"


def rule(**kwargs):
    base = {"permission": "allow", "who": "all", "action": "publish", "topics": ["a/b"]}
    base.update(kwargs)
    return base


def body(rules):
    """The rendered rule lines, without the header."""
    text = emqx_acl_conf(rules)
    assert text.startswith(HEADER)
    return text[len(HEADER):]


def problems_of(**kwargs):
    return emqx_acl_problems([rule(**kwargs)])


# ---- a tiny reader of the Erlang terms the filter writes, for the round trip ---------------------

_TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<atom>[a-z][A-Za-z0-9_]*|\'[^\']*\')|(?P<int>[0-9]+)|(?P<punct>[{}\[\],.]))')
_ESCAPE = re.compile(r'\\(x\{([0-9A-Fa-f]+)\}|.)')


def _unescape(literal):
    def one(match):
        if match.group(2):
            return chr(int(match.group(2), 16))
        return match.group(1)
    return _ESCAPE.sub(one, literal[1:-1])


def _tokens(text):
    pos, out = 0, []
    while pos < len(text.rstrip()):
        match = _TOKEN.match(text, pos)
        assert match, "cannot read %r" % text[pos:]
        pos = match.end()
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "str":
            out.append(("str", _unescape(value)))
        elif kind == "atom":
            out.append(("atom", value.strip("'")))
        elif kind == "int":
            out.append(("int", int(value)))
        else:
            out.append(("p", value))
    return out


def _term(tokens, i):
    kind, value = tokens[i]
    if kind != "p":
        return value if kind != "atom" else ("atom", value), i + 1
    close = {"{": "}", "[": "]"}[value]
    items, i = [], i + 1
    while tokens[i] != ("p", close):
        item, i = _term(tokens, i)
        items.append(item)
        if tokens[i] == ("p", ","):
            i += 1
    return (tuple(items) if value == "{" else items), i + 1


def read_terms(text):
    """file:consult/1 in miniature: comments dropped, one term per `.`; atoms as ('atom', name)."""
    lines = [line for line in text.splitlines() if not line.startswith("%")]
    terms = []
    for line in lines:
        tokens = _tokens(line)
        term, end = _term(tokens, 0)
        assert tokens[end:] == [("p", ".")], line
        terms.append(term)
    return terms


def A(name):
    return ("atom", name)


# ---- rendering -----------------------------------------------------------------------------------

def test_header_says_rendered_and_ordered_and_is_utf8():
    text = emqx_acl_conf([])
    assert text == HEADER
    lines = text.splitlines()
    assert lines[0] == "%% -*- coding: utf-8 -*-"
    assert all(line.startswith("%%") for line in lines)
    assert "iothub.emq" in text and "in order" in text


def test_none_is_no_rules():
    assert emqx_acl_conf(None) == HEADER
    assert emqx_acl_problems(None) == []


def test_catch_all_forms():
    assert body([{"permission": "deny"}, {"permission": "allow", "who": "all"},
                 {"permission": "deny", "who": "all", "action": "all"}]) == "{deny, all}.\n{allow, all}.\n{deny, all}.\n"


def test_simple_actions_and_default_who_and_action():
    assert body([
        {"permission": "allow", "action": "publish", "topics": ["a"]},
        {"permission": "deny", "who": "all", "action": "subscribe", "topics": ["b"]},
        {"permission": "allow", "topics": ["c"]},
    ]) == (
        '{allow, all, publish, ["a"]}.\n'
        '{deny, all, subscribe, ["b"]}.\n'
        '{allow, all, all, ["c"]}.\n'
    )


@pytest.mark.parametrize("who, text", [
    ({"username": "alice"}, '{username, "alice"}'),
    ({"clientid": "dev-1"}, '{clientid, "dev-1"}'),
    ({"username_re": "^dashboard$"}, '{username, {re, "^dashboard$"}}'),
    ({"clientid_re": "^sensor-\\d+$"}, '{clientid, {re, "^sensor-\\\\d+$"}}'),
    ({"ipaddr": "127.0.0.1"}, '{ipaddr, "127.0.0.1"}'),
    ({"ipaddr": "10.0.0.0/8"}, '{ipaddr, "10.0.0.0/8"}'),
    ({"ipaddr": "2001:db8::/32"}, '{ipaddr, "2001:db8::/32"}'),
    ({"ipaddrs": ["10.0.0.0/8", "192.0.2.10", "::1"]}, '{ipaddrs, ["10.0.0.0/8", "192.0.2.10", "::1"]}'),
    ({"and": [{"username": "u"}, {"ipaddr": "10.0.0.0/8"}]}, "{'and', [{username, \"u\"}, {ipaddr, \"10.0.0.0/8\"}]}"),
    ({"or": [{"clientid": "c"}, {"and": [{"username_re": "^x"}, {"ipaddrs": ["10.1.0.0/16"]}]}]},
     "{'or', [{clientid, \"c\"}, {'and', [{username, {re, \"^x\"}}, {ipaddrs, [\"10.1.0.0/16\"]}]}]}"),
])
def test_who_forms(who, text):
    assert body([rule(who=who)]) == '{allow, %s, publish, ["a/b"]}.\n' % text


@pytest.mark.parametrize("extra, text", [
    ({"action": "publish", "qos": [0, 1], "retain": True}, "{publish, [{qos, [0, 1]}, {retain, true}]}"),
    ({"action": "publish", "qos": [2, 0, 2]}, "{publish, [{qos, [0, 2]}]}"),
    ({"action": "publish", "qos": 1}, "{publish, [{qos, [1]}]}"),
    ({"action": "publish", "qos": ["1", "2"]}, "{publish, [{qos, [1, 2]}]}"),
    ({"action": "publish", "retain": False}, "{publish, [{retain, false}]}"),
    ({"action": "publish", "retain": "all"}, "{publish, [{retain, all}]}"),
    ({"action": "publish", "retain": "true"}, "{publish, [{retain, true}]}"),
    ({"action": "subscribe", "qos": [1, 2]}, "{subscribe, [{qos, [1, 2]}]}"),
    ({"action": "all", "qos": [0], "retain": False}, "{all, [{qos, [0]}, {retain, false}]}"),
])
def test_complex_actions(extra, text):
    assert body([rule(**extra)]) == '{allow, all, %s, ["a/b"]}.\n' % text


def test_topic_forms():
    assert body([
        rule(topics=["devices/${clientid}/#", {"eq": "#"}, {"eq": "+/#"}, "$SYS/#", "${client_attrs.group}/+/${username}"]),
        rule(permission="deny", action="all", topics="all"),
    ]) == (
        '{allow, all, publish, ["devices/${clientid}/#", {eq, "#"}, {eq, "+/#"}, "$SYS/#", "${client_attrs.group}/+/${username}"]}.\n'
        '{deny, all, all, all}.\n'
    )


def test_the_example_of_emqx_default_acl_conf():
    rules = [
        {"permission": "allow", "who": {"username_re": "^dashboard$"}, "action": "subscribe", "topics": ["$SYS/#"]},
        {"permission": "allow", "who": {"ipaddr": "127.0.0.1"}, "action": "all", "topics": ["$SYS/#", "#"]},
        {"permission": "deny", "who": "all", "action": "subscribe", "topics": ["$SYS/#", {"eq": "#"}, {"eq": "+/#"}]},
        {"permission": "allow"},
    ]
    assert body(rules) == (
        '{allow, {username, {re, "^dashboard$"}}, subscribe, ["$SYS/#"]}.\n'
        '{allow, {ipaddr, "127.0.0.1"}, all, ["$SYS/#", "#"]}.\n'
        '{deny, all, subscribe, ["$SYS/#", {eq, "#"}, {eq, "+/#"}]}.\n'
        '{allow, all}.\n'
    )


# ---- escaping ------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, literal", [
    ("plain", '"plain"'),
    ('say "hi"', '"say \\"hi\\""'),
    ("back\\slash", '"back\\\\slash"'),
    ("end\\", '"end\\\\"'),
    (u"caf\u00e9/\u6e29\u5ea6/\U0001F600", u'"caf\u00e9/\u6e29\u5ea6/\U0001F600"'),
    ("tab\there\nnl\x7f", '"tab\\x{9}here\\x{A}nl\\x{7F}"'),
    (u"nb\u00a0sp\u2028", '"nb\\x{A0}sp\\x{2028}"'),
    ("$~'%", "\"$~'%\""),
])
def test_erlang_string(value, literal):
    assert erlang_string(value) == literal


def test_escaping_in_rules_and_utf8_text():
    text = body([rule(who={"username": u'J\u00f6rg "the" \\admin'}, topics=[u"d/\u00e9t\u00e9/#", {"eq": 'q"\\'}])])
    assert text == u'{allow, {username, "J\u00f6rg \\"the\\" \\\\admin"}, publish, ["d/\u00e9t\u00e9/#", {eq, "q\\"\\\\"}]}.\n'
    text.encode("utf-8")


def test_same_rules_same_text():
    rules = [rule(who={"or": [{"username": "a"}, {"ipaddrs": ["10.0.0.0/8"]}]}, qos=[2, 1], retain=True), {"permission": "deny"}]
    reordered = [dict(reversed(list(rules[0].items()))), {"permission": "deny"}]
    assert emqx_acl_conf(rules) == emqx_acl_conf(rules) == emqx_acl_conf(reordered)


def test_round_trip_through_a_reader():
    rules = emqx_acl_guard_rules("site1/devices") + [
        rule(who={"and": [{"username": u'we"ird\\ \u00fc'}, {"or": [{"clientid_re": "^c[0-9]+$"}, {"ipaddrs": ["10.0.0.0/8", "::1"]}]}]},
             action="all", qos=[1], retain="all", topics=[u"x/\u00e9\t/${username}", {"eq": "#"}]),
        rule(permission="deny", who={"ipaddr": "192.0.2.0/24"}, action="subscribe", topics="all"),
        {"permission": "deny"},
    ]
    terms = read_terms(emqx_acl_conf(rules))
    assert terms == [
        (A("deny"), A("all"), A("subscribe"), [(A("eq"), "#"), (A("eq"), "+/#"), "$SYS/#"]),
        (A("allow"), A("all"), A("publish"), ["site1/devices/${clientid}/#"]),
        (A("deny"), A("all"), A("publish"), ["site1/devices/#"]),
        (A("allow"),
         (A("and"), [(A("username"), u'we"ird\\ \u00fc'),
                     (A("or"), [(A("clientid"), (A("re"), "^c[0-9]+$")), (A("ipaddrs"), ["10.0.0.0/8", "::1"])])]),
         (A("all"), [(A("qos"), [1]), (A("retain"), A("all"))]),
         [u"x/\u00e9\t/${username}", (A("eq"), "#")]),
        (A("deny"), (A("ipaddr"), "192.0.2.0/24"), A("subscribe"), A("all")),
        (A("deny"), A("all")),
    ]


def test_conf_refuses_rules_with_problems():
    with pytest.raises(AnsibleFilterError, match=r"emq_node_authz_rules\[1\]\.permission: \"maybe\" is not a permission"):
        emqx_acl_conf([{"permission": "deny"}, rule(permission="maybe")])
    with pytest.raises(AnsibleFilterError, match=r"^emqx_acl_conf: .*my_rules\[0\]\.topics\[0\]"):
        emqx_acl_conf([rule(topics=["a/#/b"])], variable="my_rules")


# ---- problems ------------------------------------------------------------------------------------

def test_valid_rules_have_no_problems():
    rules = emqx_acl_guard_rules() + [
        rule(who={"and": [{"username_re": "^(?:a|b)+[0-9]{2,}$"}, {"ipaddrs": ["10.0.0.1/8", "fd00::/8", "192.0.2.1"]}]},
             qos=[0, 1, 2], retain=False, topics=["devices/${clientid}/${.username}/+/#", "${client_attrs.site_1}/x",
                                                  "${zone}/${cert_common_name}", "price/${$}{usd}", "a//b", "#", {"eq": "a/+/#"}]),
        rule(action="subscribe", qos=[1], topics=["+"]),
        rule(who={"username": ""}, action="all", retain="all", topics="all"),
        {"permission": "deny", "who": "all", "action": "all"},
    ]
    assert emqx_acl_problems(rules) == []


@pytest.mark.parametrize("rules, shown", [("rules", '"rules"'), ({"permission": "allow"}, "a mapping"), (3, "3")])
def test_rules_must_be_a_list(rules, shown):
    assert emqx_acl_problems(rules, variable="x") == [
        "x: %s is not a list; write a list of rules, each a mapping with permission, who, action and topics" % shown]


def test_rule_must_be_a_mapping():
    assert emqx_acl_problems(["allow all"]) == [
        V + '[0]: "allow all" is not a rule; write a mapping such as {permission: allow, who: all, action: publish, '
            'topics: ["devices/${clientid}/#"]}']


def test_unknown_key_and_missing_topics():
    assert emqx_acl_problems([{"permission": "allow", "action": "publish", "topic": ["a"]}]) == [
        V + '[0]: "topic" is not a rule key (did you mean topics?); the keys are permission, who, action, qos, retain, topics',
        V + "[0]: topics is missing; list the topic filters the rule applies to, or write topics: all for every topic "
            "(only a rule with nothing but permission, who: all and action: all may leave it out)",
    ]


@pytest.mark.parametrize("rule_, expected", [
    ({"who": "all"}, "[0]: permission is missing; write permission: allow or permission: deny"),
    ({"permission": "permit"}, '[0].permission: "permit" is not a permission; write allow or deny'),
    ({"permission": True}, "[0].permission: true is not a permission; write allow or deny"),
])
def test_permission(rule_, expected):
    assert emqx_acl_problems([rule_]) == [V + expected]


@pytest.mark.parametrize("who, path, fragment", [
    ("everyone", ".who", '"everyone" is not a client condition; write all, or a mapping such as {username: NAME}'),
    (None, ".who", "null (nothing) is not a client condition; write all or a mapping with exactly one of the keys username, "),
    ({"username": "a", "clientid": "b"}, ".who", "a mapping with 2 keys is not a client condition"),
    ({"user": "a"}, ".who", '"user" is not a client condition (did you mean username?); use one of username, clientid'),
    ({"username": 5}, ".who.username", "5 is not a string; write the exact user name (quote it if it looks like a number)"),
    ({"clientid": ["a"]}, ".who.clientid", "a list is not a string; write the exact client ID"),
    ({"username": "a\x00b"}, ".who.username", "it holds a NUL character"),
    ({"clientid": u"a\ud800"}, ".who.clientid", "it is not valid Unicode text"),
    ({"username_re": "(abc"}, ".who.username_re", "it is not a regular expression (missing ), unterminated subpattern at position 0). "
                                                  "EMQX compiles it with Erlang's re (PCRE); this collection checks it with Python's re"),
    ({"clientid_re": "[z-a]"}, ".who.clientid_re", "it is not a regular expression (bad character range z-a"),
    ({"clientid_re": 7}, ".who.clientid_re", '7 is not a string; write a regular expression such as "^sensor-[0-9]+$"'),
    ({"username_re": "^\\u00e9$"}, ".who.username_re", "it uses the escape \\u, which Python's re knows but the PCRE of Erlang's re "
                                                       "refuses; write the character itself instead"),
    ({"username_re": "\\N{DIGIT ONE}"}, ".who.username_re", "it uses the escape \\N{"),
    ({"username_re": "\\U0001F600"}, ".who.username_re", "it uses the escape \\U"),
    ({"ipaddr": "10.0.0.0/33"}, ".who.ipaddr", '"10.0.0.0/33" is not an IPv4/IPv6 address or network; write an address '
                                               '("192.0.2.10") or an address with a prefix length ("10.0.0.0/8", "2001:db8::/32"), '
                                               'without spaces, netmasks or zone IDs; for several networks use ipaddrs: [...]'),
    ({"ipaddr": "300.1.1.1"}, ".who.ipaddr", '"300.1.1.1" is not an IPv4/IPv6 address or network'),
    ({"ipaddr": "10.0.0.0/255.0.0.0"}, ".who.ipaddr", "is not an IPv4/IPv6 address or network"),
    ({"ipaddr": " 10.0.0.1"}, ".who.ipaddr", "is not an IPv4/IPv6 address or network"),
    ({"ipaddr": "fe80::1%eth0"}, ".who.ipaddr", "is not an IPv4/IPv6 address or network"),
    ({"ipaddr": "10.0.0.0/8/1"}, ".who.ipaddr", "is not an IPv4/IPv6 address or network"),
    ({"ipaddr": ["10.0.0.0/8"]}, ".who.ipaddr", 'a list is not a string; write an address or a network such as "10.0.0.0/8"'),
    ({"ipaddrs": "10.0.0.0/8"}, ".who.ipaddrs", '"10.0.0.0/8" is not a list; write a list of addresses or networks'),
    ({"ipaddrs": []}, ".who.ipaddrs", "the list is empty, so the rule matches no client"),
    ({"ipaddrs": ["10.0.0.0/8", "nope"]}, ".who.ipaddrs[1]", '"nope" is not an IPv4/IPv6 address or network'),
    ({"and": []}, ".who.and", "the list is empty, so the rule matches every client; list at least one client condition"),
    ({"or": []}, ".who.or", "the list is empty, so the rule matches no client"),
    ({"or": {"username": "a"}}, ".who.or", "a mapping is not a list; write a list of client conditions"),
    ({"and": [{"username": "a"}, {"or": [{"ipaddr": "1.2.3"}]}]}, ".who.and[1].or[0].ipaddr", '"1.2.3" is not an IPv4/IPv6 address'),
])
def test_who_problems(who, path, fragment):
    found = problems_of(who=who)
    assert len(found) == 1, found
    assert found[0].startswith(V + "[0]" + path + ": "), found
    assert fragment in found[0]


@pytest.mark.parametrize("extra, expected", [
    ({"action": "pub"}, ['[0].action: "pub" is not an action (did you mean publish?); write publish, subscribe or all '
                         '(and narrow it with qos and retain)']),
    ({"action": ["publish"]}, ["[0].action: a list is not an action; write publish, subscribe or all (and narrow it with qos and retain)"]),
    ({"qos": [0, 3]}, ["[0].qos[1]: 3 is not a QoS level; MQTT has QoS 0, 1 and 2, write a list of them such as [0, 1]"]),
    ({"qos": -1}, ["[0].qos: -1 is not a QoS level; MQTT has QoS 0, 1 and 2, write a list of them such as [0, 1]"]),
    ({"qos": [True]}, ["[0].qos[0]: true is not a QoS level; MQTT has QoS 0, 1 and 2, write a list of them such as [0, 1]"]),
    ({"qos": "0,1"}, ['[0].qos: "0,1" is not a QoS level; MQTT has QoS 0, 1 and 2, write a list of them such as [0, 1]']),
    ({"qos": []}, ["[0].qos: the list is empty, so the rule matches no message; list the QoS levels it applies to, e.g. [0, 1], "
                   "or drop qos to match all three"]),
    ({"retain": "yes"}, ['[0].retain: "yes" is not a retain condition; write true (retained messages only), false (not retained) or all']),
    ({"retain": 1}, ["[0].retain: 1 is not a retain condition; write true (retained messages only), false (not retained) or all"]),
    ({"action": "subscribe", "retain": True}, ["[0].retain: EMQX ignores retain for subscribe rules, so this rule would apply to every "
                                               "subscription; drop retain, or use action publish or all"]),
])
def test_action_problems(extra, expected):
    assert problems_of(**extra) == [V + text for text in expected]


@pytest.mark.parametrize("topics, path, fragment", [
    ("a/b", ".topics", '"a/b" is not a list; write a list of topic filters, e.g. ["a/b"], or all for every topic'),
    ({"eq": "#"}, ".topics", "a mapping is not a list; write a list of topic filters, or all for every topic"),
    ([], ".topics", "the list is empty, so the rule matches no topic; list the topic filters, or drop the rule"),
    ([""], ".topics[0]", "the topic is empty; MQTT has no empty topic or filter, write at least one character"),
    ([{"eq": ""}], ".topics[0]", "the topic is empty"),
    ([5], ".topics[0]", '5 is not a topic; write a topic filter string such as "devices/${clientid}/#" or {eq: "#"}'),
    ([{"eq": "a", "re": "b"}], ".topics[0]", "a topic mapping must be {eq: TOPIC} with TOPIC a string"),
    ([{"equal": "a"}], ".topics[0]", "a topic mapping must be {eq: TOPIC}"),
    ([{"eq": 1}], ".topics[0]", "a topic mapping must be {eq: TOPIC} with TOPIC a string"),
    (["a/#/b"], ".topics[0]", '"a/#/b": \'#\' must be a whole level and the last one ("a/#", not "a/#/b" nor "a#"), or it is not a '
                              'topic filter any client can use'),
    (["a#"], ".topics[0]", "'#' must be a whole level and the last one"),
    (["#/a"], ".topics[0]", "'#' must be a whole level and the last one"),
    ([{"eq": "a/#/b"}], ".topics[0]", "'#' must be a whole level and the last one"),
    (["a/b+/c"], ".topics[0]", '"a/b+/c": \'+\' must be a whole level ("a/+/c", not "a/b+/c"), or it is not a topic filter any client '
                               'can use'),
    (["++"], ".topics[0]", "'+' must be a whole level"),
    (["a\x00b"], ".topics[0]", "it holds a NUL character"),
    (["a" * 65536], ".topics[0]", "the topic is longer than MQTT's 65535 bytes; shorten it"),
    (["eq #"], ".topics[0]", 'EMQX reads a topic string starting with "eq " as {eq, ...}; write {eq: "#"} if that is meant'),
    (["d/${client_id}/#"], ".topics[0]", "${client_id} is not a placeholder EMQX 5.8.9 renders in file rules (did you mean clientid?) "
                                         "(it would stay literal text); use one of ${clientid}, ${username}, ${cert_common_name}, "
                                         "${zone} or ${client_attrs.NAME}, or write ${$} for a literal $"),
    (["d/${peerhost}"], ".topics[0]", "${peerhost} is not a placeholder EMQX 5.8.9 renders in file rules"),
    (["d/${}"], ".topics[0]", "${} is not a placeholder"),
    (["d/${client_attrs}"], ".topics[0]", "${client_attrs} is not a placeholder"),
    (["d/${client_attrs.}"], ".topics[0]", "${client_attrs.} is not a placeholder"),
    (["d/${client_attrs.a.b}"], ".topics[0]", "${client_attrs.a.b} is not a placeholder"),
    (["d/${client-id}"], ".topics[0]", 'it holds "${" that does not form a placeholder (a name of letters, digits, _ and . in braces), '
                                       "so EMQX keeps it as literal text; use one of ${clientid}"),
    (["d/${clientid"], ".topics[0]", 'it holds "${" that does not form a placeholder'),
    ([{"eq": "d/${clientid}"}], ".topics[0]", "EMQX does not render placeholders inside {eq: ...}, it compares the text as written; "
                                              "write the topic as a plain string to use placeholders"),
])
def test_topic_problems(topics, path, fragment):
    found = problems_of(topics=topics)
    assert len(found) == 1, found
    assert found[0].startswith(V + "[0]" + path + ": "), found
    assert fragment in found[0]


def test_every_problem_is_reported_with_its_rule_index():
    found = emqx_acl_problems([
        {"permission": "deny"},
        rule(who={"ipaddr": "bad"}, topics=["a+", "${x}"]),
        rule(action="both"),
    ], variable="v")
    assert [text.split(":")[0] for text in found] == ["v[1].who.ipaddr", "v[1].topics[0]", "v[1].topics[1]", "v[2].action"]


# ---- guard rules ---------------------------------------------------------------------------------

def test_guard_rules_default_prefix():
    assert emqx_acl_guard_rules() == [
        {"permission": "deny", "who": "all", "action": "subscribe", "topics": [{"eq": "#"}, {"eq": "+/#"}, "$SYS/#"]},
        {"permission": "allow", "who": "all", "action": "publish", "topics": ["devices/${clientid}/#"]},
        {"permission": "deny", "who": "all", "action": "publish", "topics": ["devices/#"]},
    ]


def test_guard_rules_render():
    assert body(emqx_acl_guard_rules("fleet")) == (
        '{deny, all, subscribe, [{eq, "#"}, {eq, "+/#"}, "$SYS/#"]}.\n'
        '{allow, all, publish, ["fleet/${clientid}/#"]}.\n'
        '{deny, all, publish, ["fleet/#"]}.\n'
    )


def test_guard_rules_are_fresh_copies():
    first = emqx_acl_guard_rules()
    first[0]["topics"].append("x")
    assert emqx_acl_guard_rules()[0]["topics"] == [{"eq": "#"}, {"eq": "+/#"}, "$SYS/#"]


@pytest.mark.parametrize("prefix", ["", None, 5, "/devices", "devices/", "a//b", "dev/+", "dev/#", "$SYS", "d/${clientid}", "eq x",
                                    "a\x00"])
def test_guard_rules_refuse_bad_prefixes(prefix):
    with pytest.raises(AnsibleFilterError, match="emqx_acl_guard_rules: "):
        emqx_acl_guard_rules(prefix)


def test_filters_are_registered():
    assert FilterModule().filters() == {
        "emqx_acl_problems": emqx_acl_problems,
        "emqx_acl_conf": emqx_acl_conf,
        "emqx_acl_guard_rules": emqx_acl_guard_rules,
    }
