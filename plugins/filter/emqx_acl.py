# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""ACL rules for EMQX 5.8.9's file authorization source: check them, render acl.conf, and the role's guard rules.

An operator writes the rules in YAML (emq_node_authz_rules), one mapping per rule:

    permission: allow | deny                      required
    who: all | {username: S} | {clientid: S}      default all
         | {username_re: R} | {clientid_re: R}
         | {ipaddr: CIDR} | {ipaddrs: [CIDR, ...]}
         | {and: [who, ...]} | {or: [who, ...]}
    action: publish | subscribe | all             default all
    qos: [0, 1, 2] (a subset; or one number)      optional, makes the action {Action, [{qos, [...]}, ...]}
    retain: true | false | all                    optional, publish and all only
    topics: [S | {eq: S}, ...] | all              required, except for the catch-all form below

A rule with only permission (who and action absent or all, no qos, retain or topics) is the catch-all
{allow, all} / {deny, all}. topics: all (not a list) is EMQX's `all` topic condition, which unlike "#" also
matches topics starting with $. A string topic is a topic filter and may hold the placeholders
${clientid}, ${username}, ${cert_common_name}, ${zone} and ${client_attrs.NAME}; {eq: S} compares the
topic (or a subscription's filter) literally, so {eq: "#"} is the subscription to "#" itself.

What EMQX 5.8.9 does with acl.conf (tag v5.8.9 of emqx/emqx): emqx_authz_file:validate/1 reads it with
file:consult/1 (UTF-8 unless a coding comment says otherwise) and compiles each term with
emqx_authz_rule:compile/1, which throws on an unknown permission, who, action, qos or retain value; a bad
regex fails re:compile/1 and a bad CIDR fails esockd_cidr:parse/2 (tag 5.13.0 of emqx/esockd). The file
source then does not load. Topic filters are not validated there (emqx_topic:words/1 only splits them), an
unknown placeholder is kept as literal text with only a warning (emqx_auth_utils:parse_str/2), placeholders
inside {eq, ...} are not rendered, and a string topic starting with "eq " is read as {eq, ...}: those load but
never match what the operator meant, so emqx_acl_problems refuses them too. Regexes are checked with
Python's re (close to the PCRE syntax Erlang's re uses); what it cannot compile is refused, and so are the
escapes Python knows but PCRE refuses (\\u, \\U, \\N{...}, \\l, \\L).

Topic layout the role's default ACL assumes: every device publishes and subscribes under
<prefix>/${clientid}/... (the role's default prefix is "devices"). emqx_acl_guard_rules(prefix) returns the
rules the role puts first, in the YAML shape above:
    deny  all subscribe  [{eq, "#"}, {eq, "+/#"}, "$SYS/#"]   no wildcard-everything or $SYS subscriptions
    allow all publish    ["<prefix>/${clientid}/#"]            a device publishes under its own client ID
    deny  all publish    ["<prefix>/#"]                        and nowhere else under the prefix
EMQX skips authorization for superusers, so backend services that authenticate as superusers are not bound by them.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence
from ansible.module_utils.six import string_types

PERMISSIONS = ("allow", "deny")
ACTIONS = ("publish", "subscribe", "all")
RULE_KEYS = ("permission", "who", "action", "qos", "retain", "topics")
WHO_KEYS = ("username", "clientid", "username_re", "clientid_re", "ipaddr", "ipaddrs", "and", "or")
# emqx_authz_rule ?ALLOWED_VARS: ${username}, ${clientid}, ${cert_common_name}, ${zone} and the namespace client_attrs.
PLACEHOLDERS = ("clientid", "username", "cert_common_name", "zone")
PLACEHOLDERS_TEXT = "${clientid}, ${username}, ${cert_common_name}, ${zone} or ${client_attrs.NAME}"
# emqx_template ?RE_PLACEHOLDER and ?RE_ESCAPE: ${var} (an optional leading dot) and ${$}, a literal $.
_PLACEHOLDER_RE = re.compile(r"\$\{[.]?([a-zA-Z0-9._]*)\}|\$\{\$\}")
_CLIENT_ATTR_RE = re.compile(r"client_attrs\.[A-Za-z0-9_]+\Z")
_PREFIX_LEN_RE = re.compile(r"[0-9]+\Z")
MAX_TOPIC_BYTES = 65535

HEADER = (
    "%% -*- coding: utf-8 -*-\n"
    "%% Rendered by iothub.emq (the emqx_acl_conf filter): do not edit by hand, the next run overwrites it.\n"
    "%% EMQX matches the rules in order: the first rule that matches the client, the action and the topic decides.\n"
    "%% A request no rule matches goes to the next authorization source, then to authorization.no_match.\n"
)


class _Problems(object):
    def __init__(self, variable):
        self.variable = variable
        self.items = []

    def add(self, path, text):
        self.items.append("%s%s: %s" % (self.variable, path, text))


def _show(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null (nothing)"
    if isinstance(value, Mapping):
        return "a mapping"
    if is_sequence(value):
        return "a list"
    if isinstance(value, string_types):
        text = json.dumps(str(value), ensure_ascii=False)
        return text if len(text) <= 80 else text[:77] + '..."'
    return str(value)


def _closest(word, choices):
    near = difflib.get_close_matches(str(word), choices, n=1, cutoff=0.6)
    return " (did you mean %s?)" % near[0] if near else ""


def _string_problem(value):
    """Why a string cannot be written into acl.conf ('' when it can)."""
    if "\x00" in value:
        return "it holds a NUL character, which no MQTT topic, client ID or user name may hold"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "it is not valid Unicode text (it holds a lone surrogate)"
    return ""


# ---- who ----------------------------------------------------------------------------------------

def _regex_problem(pattern):
    """Why Erlang's re:compile/1 would refuse the pattern, as far as Python's re can tell ('' when fine)."""
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            if nxt in "uUlL" or (nxt == "N" and pattern[i + 2:i + 3] == "{"):
                return ("it uses the escape \\%s, which Python's re knows but the PCRE of Erlang's re refuses; write the character "
                        "itself instead" % (nxt + "{" if nxt == "N" else nxt))
            i += 2
            continue
        i += 1
    try:
        re.compile(pattern)
    except re.error as exc:
        return ("it is not a regular expression (%s). EMQX compiles it with Erlang's re (PCRE); this collection checks it with "
                "Python's re, which reads the common syntax the same way, so write it without constructs only one of them knows" % exc)
    return ""


def _cidr_problem(value):
    """Why esockd_cidr:parse(CIDR, true) would refuse the text ('' when it accepts it)."""
    if not isinstance(value, string_types):
        return "%s is not a string; write an address or a network such as \"10.0.0.0/8\" or \"2001:db8::/32\"" % _show(value)
    text = str(value)
    address, slash, prefix = text.partition("/")
    try:
        if "%" in address:
            raise ValueError("scope")
        if slash:
            if not _PREFIX_LEN_RE.match(prefix):
                raise ValueError("prefix")
            ipaddress.ip_network(text, strict=False)
        else:
            ipaddress.ip_address(address)
    except ValueError:
        return ("%s is not an IPv4/IPv6 address or network; write an address (\"192.0.2.10\") or an address with a prefix length "
                "(\"10.0.0.0/8\", \"2001:db8::/32\"), without spaces, netmasks or zone IDs" % _show(value))
    return ""


def _check_who(who, path, problems, depth=0):
    if isinstance(who, string_types):
        if who != "all":
            problems.add(path, "%s is not a client condition; write all, or a mapping such as {username: NAME}, {clientid: ID}, "
                               "{username_re: REGEX}, {clientid_re: REGEX}, {ipaddr: CIDR}, {ipaddrs: [CIDR, ...]}, {and: [...]} "
                               "or {or: [...]}" % _show(who))
        return
    if not isinstance(who, Mapping) or len(who) != 1:
        problems.add(path, "%s is not a client condition; write all or a mapping with exactly one of the keys %s"
                     % (_show(who) if not isinstance(who, Mapping) else "a mapping with %d keys" % len(who), ", ".join(WHO_KEYS)))
        return
    key, value = list(who.items())[0]
    if key not in WHO_KEYS:
        problems.add(path, "%s is not a client condition%s; use one of %s" % (_show(key), _closest(key, WHO_KEYS), ", ".join(WHO_KEYS)))
        return
    sub = "%s.%s" % (path, key)
    if key in ("username", "clientid"):
        if not isinstance(value, string_types):
            problems.add(sub, "%s is not a string; write the exact %s (quote it if it looks like a number), or use %s_re for a regular expression"
                         % (_show(value), "user name" if key == "username" else "client ID", key))
        elif _string_problem(value):
            problems.add(sub, _string_problem(value))
    elif key in ("username_re", "clientid_re"):
        if not isinstance(value, string_types):
            problems.add(sub, "%s is not a string; write a regular expression such as \"^sensor-[0-9]+$\"" % _show(value))
        elif _string_problem(value) or _regex_problem(value):
            problems.add(sub, _string_problem(value) or _regex_problem(value))
    elif key == "ipaddr":
        if _cidr_problem(value):
            problems.add(sub, _cidr_problem(value) + "; for several networks use ipaddrs: [...]")
    elif key == "ipaddrs":
        if not is_sequence(value) or isinstance(value, string_types):
            problems.add(sub, "%s is not a list; write a list of addresses or networks, e.g. [\"10.0.0.0/8\", \"192.0.2.10\"]" % _show(value))
        elif not value:
            problems.add(sub, "the list is empty, so the rule matches no client; list at least one address or network, or drop the rule")
        else:
            for index, item in enumerate(value):
                if _cidr_problem(item):
                    problems.add("%s[%d]" % (sub, index), _cidr_problem(item))
    else:
        if not is_sequence(value) or isinstance(value, string_types):
            problems.add(sub, "%s is not a list; write a list of client conditions, e.g. [{username: alice}, {ipaddr: \"10.0.0.0/8\"}]"
                         % _show(value))
        elif not value:
            problems.add(sub, "the list is empty, so the rule matches %s; list at least one client condition"
                         % ("every client" if key == "and" else "no client"))
        elif depth > 20:
            problems.add(sub, "conditions nested this deep are not supported; flatten them")
        else:
            for index, item in enumerate(value):
                _check_who(item, "%s[%d]" % (sub, index), problems, depth + 1)


# ---- action -------------------------------------------------------------------------------------

def _qos_value(item):
    if isinstance(item, bool):
        return None
    if isinstance(item, int) and 0 <= item <= 2:
        return item
    if isinstance(item, string_types) and str(item).strip() in ("0", "1", "2"):
        return int(str(item).strip())
    return None


def _qos_list(qos):
    items = qos if is_sequence(qos) and not isinstance(qos, string_types) else [qos]
    values = [_qos_value(item) for item in items]
    return sorted(set(values))


def _retain_value(retain):
    """True, False, 'all', or None when EMQX would refuse the value."""
    if isinstance(retain, bool):
        return retain
    if isinstance(retain, string_types) and str(retain) in ("true", "false", "all"):
        return {"true": True, "false": False, "all": "all"}[str(retain)]
    return None


def _check_action(rule, path, problems):
    action = rule.get("action", "all")
    if not isinstance(action, string_types) or action not in ACTIONS:
        hint = _closest(action, ACTIONS) if isinstance(action, string_types) else ""
        problems.add(path + ".action", "%s is not an action%s; write publish, subscribe or all (and narrow it with qos and retain)"
                     % (_show(action), hint))
    if "qos" in rule:
        qos = rule["qos"]
        items = qos if is_sequence(qos) and not isinstance(qos, string_types) else [qos]
        if not items:
            problems.add(path + ".qos", "the list is empty, so the rule matches no message; list the QoS levels it applies to, "
                                        "e.g. [0, 1], or drop qos to match all three")
        for index, item in enumerate(items):
            if _qos_value(item) is None:
                where = path + ".qos" + ("[%d]" % index if items is qos else "")
                problems.add(where, "%s is not a QoS level; MQTT has QoS 0, 1 and 2, write a list of them such as [0, 1]" % _show(item))
    if "retain" in rule:
        retain = rule["retain"]
        if _retain_value(retain) is None:
            problems.add(path + ".retain", "%s is not a retain condition; write true (retained messages only), false (not retained) "
                                           "or all" % _show(retain))
        elif action == "subscribe":
            problems.add(path + ".retain", "EMQX ignores retain for subscribe rules, so this rule would apply to every subscription; "
                                           "drop retain, or use action publish or all")


# ---- topics -------------------------------------------------------------------------------------

def _wildcard_problem(topic):
    levels = topic.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            return ("'#' must be a whole level and the last one (\"a/#\", not \"a/#/b\" nor \"a#\"), or it is not a topic filter any "
                    "client can use")
        if "+" in level and level != "+":
            return "'+' must be a whole level (\"a/+/c\", not \"a/b+/c\"), or it is not a topic filter any client can use"
    return ""


def _placeholder_problems(topic):
    found = []
    rest = []
    last = 0
    for match in _PLACEHOLDER_RE.finditer(topic):
        rest.append(topic[last:match.start()])
        last = match.end()
        name = match.group(1)
        if name is None:
            continue
        if name in PLACEHOLDERS or _CLIENT_ATTR_RE.match(name):
            continue
        near = _closest(name, PLACEHOLDERS)
        found.append("${%s} is not a placeholder EMQX 5.8.9 renders in file rules%s (it would stay literal text); use one of %s, "
                     "or write ${$} for a literal $" % (name, near, PLACEHOLDERS_TEXT))
    rest.append(topic[last:])
    if "${" in "".join(rest):
        found.append("it holds \"${\" that does not form a placeholder (a name of letters, digits, _ and . in braces), so EMQX keeps it "
                     "as literal text; use one of %s, or write ${$} for a literal $" % PLACEHOLDERS_TEXT)
    return found


def _check_topic(topic, path, problems):
    if isinstance(topic, Mapping):
        if list(topic.keys()) != ["eq"] or not isinstance(topic["eq"], string_types):
            problems.add(path, "a topic mapping must be {eq: TOPIC} with TOPIC a string (it matches that exact topic or filter, "
                               "wildcards included); write a plain string for a topic filter")
            return
        text = str(topic["eq"])
        eq = True
    elif isinstance(topic, string_types):
        text = str(topic)
        eq = False
    else:
        problems.add(path, "%s is not a topic; write a topic filter string such as \"devices/${clientid}/#\" or {eq: \"#\"}" % _show(topic))
        return
    if not text:
        problems.add(path, "the topic is empty; MQTT has no empty topic or filter, write at least one character")
        return
    if _string_problem(text):
        problems.add(path, _string_problem(text))
        return
    if len(text.encode("utf-8")) > MAX_TOPIC_BYTES:
        problems.add(path, "the topic is longer than MQTT's %d bytes; shorten it" % MAX_TOPIC_BYTES)
    if not eq and text.startswith("eq "):
        problems.add(path, "EMQX reads a topic string starting with \"eq \" as {eq, ...}; write {eq: %s} if that is meant"
                     % _show(text[3:]))
        return
    wildcard = _wildcard_problem(text)
    if wildcard:
        problems.add(path, "%s: %s" % (_show(text), wildcard))
    if eq:
        if "${" in text:
            problems.add(path, "EMQX does not render placeholders inside {eq: ...}, it compares the text as written; write the topic "
                               "as a plain string to use placeholders")
        return
    for text_problem in _placeholder_problems(text):
        problems.add(path, text_problem)


def _is_catch_all(rule):
    return ("topics" not in rule and "qos" not in rule and "retain" not in rule
            and rule.get("who", "all") == "all" and rule.get("action", "all") == "all")


def _check_rule(rule, path, problems):
    if not isinstance(rule, Mapping):
        problems.add(path, "%s is not a rule; write a mapping such as {permission: allow, who: all, action: publish, "
                           "topics: [\"devices/${clientid}/#\"]}" % _show(rule))
        return
    for key in rule:
        if key not in RULE_KEYS:
            problems.add(path, "%s is not a rule key%s; the keys are %s" % (_show(key), _closest(key, RULE_KEYS), ", ".join(RULE_KEYS)))
    if "permission" not in rule:
        problems.add(path, "permission is missing; write permission: allow or permission: deny")
    elif not isinstance(rule["permission"], string_types) or rule["permission"] not in PERMISSIONS:
        problems.add(path + ".permission", "%s is not a permission; write allow or deny" % _show(rule["permission"]))
    _check_who(rule.get("who", "all"), path + ".who", problems)
    _check_action(rule, path, problems)
    if "topics" not in rule:
        if not _is_catch_all(rule):
            problems.add(path, "topics is missing; list the topic filters the rule applies to, or write topics: all for every topic "
                               "(only a rule with nothing but permission, who: all and action: all may leave it out)")
        return
    topics = rule["topics"]
    if isinstance(topics, string_types):
        if topics != "all":
            problems.add(path + ".topics", "%s is not a list; write a list of topic filters, e.g. [%s], or all for every topic"
                         % (_show(topics), _show(topics)))
        return
    if not is_sequence(topics):
        problems.add(path + ".topics", "%s is not a list; write a list of topic filters, or all for every topic" % _show(topics))
        return
    if not topics:
        problems.add(path + ".topics", "the list is empty, so the rule matches no topic; list the topic filters, or drop the rule")
    for index, topic in enumerate(topics):
        _check_topic(topic, "%s.topics[%d]" % (path, index), problems)


def emqx_acl_problems(rules, variable="emq_node_authz_rules"):
    """One sentence per problem EMQX 5.8.9 would have with these rules in acl.conf; empty when there is none."""
    problems = _Problems(str(variable))
    if rules is None:
        return problems.items
    if not is_sequence(rules) or isinstance(rules, string_types) or isinstance(rules, Mapping):
        problems.add("", "%s is not a list; write a list of rules, each a mapping with permission, who, action and topics" % _show(rules))
        return problems.items
    for index, rule in enumerate(rules):
        _check_rule(rule, "[%d]" % index, problems)
    return problems.items


# ---- rendering ----------------------------------------------------------------------------------

def erlang_string(value):
    """An Erlang string literal that file:consult/1 reads back as the same characters (the file is UTF-8)."""
    out = ['"']
    for char in str(value):
        code = ord(char)
        if char == "\\":
            out.append("\\\\")
        elif char == '"':
            out.append('\\"')
        elif code < 0x20 or code == 0x7F or (code > 0x7F and not char.isprintable()):
            out.append("\\x{%X}" % code)
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _render_who(who):
    if who == "all":
        return "all"
    key, value = list(who.items())[0]
    if key in ("username", "clientid"):
        return "{%s, %s}" % (key, erlang_string(value))
    if key in ("username_re", "clientid_re"):
        return "{%s, {re, %s}}" % (key[:-3], erlang_string(value))
    if key == "ipaddr":
        return "{ipaddr, %s}" % erlang_string(value)
    if key == "ipaddrs":
        return "{ipaddrs, [%s]}" % ", ".join(erlang_string(item) for item in value)
    return "{'%s', [%s]}" % (key, ", ".join(_render_who(item) for item in value))


def _render_action(rule):
    action = rule.get("action", "all")
    options = []
    if "qos" in rule:
        options.append("{qos, [%s]}" % ", ".join(str(level) for level in _qos_list(rule["qos"])))
    if "retain" in rule:
        retain = _retain_value(rule["retain"])
        options.append("{retain, %s}" % ("all" if retain == "all" else "true" if retain else "false"))
    if not options:
        return action
    return "{%s, [%s]}" % (action, ", ".join(options))


def _render_topic(topic):
    if isinstance(topic, Mapping):
        return "{eq, %s}" % erlang_string(topic["eq"])
    return erlang_string(topic)


def _render_rule(rule):
    permission = rule["permission"]
    if "topics" not in rule:
        return "{%s, all}." % permission
    topics = rule["topics"]
    topics_text = "all" if isinstance(topics, string_types) else "[%s]" % ", ".join(_render_topic(topic) for topic in topics)
    return "{%s, %s, %s, %s}." % (permission, _render_who(rule.get("who", "all")), _render_action(rule), topics_text)


def emqx_acl_conf(rules, variable="emq_node_authz_rules"):
    """The acl.conf text for the rules (one Erlang term per line); AnsibleFilterError when emqx_acl_problems finds any."""
    problems = emqx_acl_problems(rules, variable)
    if problems:
        raise AnsibleFilterError("emqx_acl_conf: the rules have problems: " + "; ".join(problems))
    return HEADER + "".join(_render_rule(rule) + "\n" for rule in (rules or []))


# ---- the role's guard rules ---------------------------------------------------------------------

def emqx_acl_guard_rules(prefix="devices"):
    """The rules the role puts before the operator's: see the module docstring for the topic layout they assume."""
    if not isinstance(prefix, string_types) or not prefix:
        raise AnsibleFilterError("emqx_acl_guard_rules: the prefix must be a non-empty string such as devices, got %s" % _show(prefix))
    prefix = str(prefix)
    if (prefix.startswith("/") or prefix.endswith("/") or prefix.startswith("$") or "//" in prefix
            or any(char in prefix for char in "+#\x00") or "${" in prefix or prefix.startswith("eq ")):
        raise AnsibleFilterError("emqx_acl_guard_rules: %s is not a topic prefix; write one or more plain topic levels such as devices "
                                 "or site1/devices, without wildcards, placeholders, a leading $ or leading/trailing /" % _show(prefix))
    return [
        {"permission": "deny", "who": "all", "action": "subscribe", "topics": [{"eq": "#"}, {"eq": "+/#"}, "$SYS/#"]},
        {"permission": "allow", "who": "all", "action": "publish", "topics": [prefix + "/${clientid}/#"]},
        {"permission": "deny", "who": "all", "action": "publish", "topics": [prefix + "/#"]},
    ]


class FilterModule(object):
    def filters(self):
        return {
            "emqx_acl_problems": emqx_acl_problems,
            "emqx_acl_conf": emqx_acl_conf,
            "emqx_acl_guard_rules": emqx_acl_guard_rules,
        }
