# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The rules EMQX 5 applies to values the roles write, as filters a preflight can ask before anything changes.

Each rule follows EMQX's own source (tag v5.8.9 of emqx/emqx unless said otherwise); the file and
function are named next to each one. Every filter returns what is wrong (an empty string or list when
nothing is), in words a preflight can print. None of them ever returns a secret it was given.
"""

from __future__ import annotations

import ipaddress
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence
from ansible.module_utils.six import string_types

# ---- dashboard passwords: apps/emqx_dashboard/src/emqx_dashboard_admin.erl, legal_password/1 ----
_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DIGITS = frozenset("0123456789")
# ?SPECIAL_CHARS; the backslash is not among them (it is allowed, but counts as no kind).
_SPECIALS = frozenset("!@#$%^&*()_+-=[]{}\"|;':,./<>?`~ ")
SPECIALS_TEXT = "!@#$%^&*()_+-=[]{}\"|;':,./<>?`~ and space"


def emqx_password_problem(password):
    """Why EMQX would refuse this dashboard password ('' when it accepts it), without quoting it."""
    if not isinstance(password, string_types):
        return "it must be a string"
    length = len(password.encode("utf-8"))
    if not 8 <= length <= 64:
        return "EMQX accepts 8 to 64 characters (this one has %d)" % length
    kinds = sum(1 for group in (_DIGITS, _LETTERS, _SPECIALS) if any(c in group for c in password))
    if kinds < 2:
        return ("EMQX needs at least two kinds of characters among letters, digits and the special characters "
                + SPECIALS_TEXT + " (a backslash counts as none)")
    if any(ord(c) > 0x7F for c in password):
        return "EMQX accepts ASCII characters only"
    return ""


# ---- API key bootstrap file: apps/emqx_management/src/emqx_mgmt_auth.erl ---------------------------
# Lines are read as key:secret[:role] by an ungreedy regex, so a ':' in a key or secret shifts the
# fields; the open-source build (5.8) knows only the role administrator (valid_role/1), the enterprise
# build (5.9+) also viewer and publisher (emqx_dashboard_rbac:valid_api_role/1). The first line the
# loader refuses stops it: that key and every key after it are not loaded, and the node starts anyway.
API_ROLES_OPEN_SOURCE = ("administrator",)
API_ROLES_ENTERPRISE = ("administrator", "viewer", "publisher")
_API_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+\Z")
_PRINTABLE_RE = re.compile(r"^[\x21-\x7e]+\Z")
API_SECRET_MIN = 16


def _is_enterprise(version):
    parts = re.match(r"^\s*(\d+)\.(\d+)", str(version))
    if not parts:
        raise AnsibleFilterError("expected an EMQX version like 5.8.9, got %r" % (version,))
    return (int(parts.group(1)), int(parts.group(2))) >= (5, 9)


def emqx_api_roles(version):
    """The API key roles the EMQX build of this version knows."""
    return list(API_ROLES_ENTERPRISE if _is_enterprise(version) else API_ROLES_OPEN_SOURCE)


def emqx_api_key_problems(keys, version):
    """What is wrong with a list of {key, secret, role} for the bootstrap file of EMQX <version>."""
    if not is_sequence(keys):
        return ["emq_node_api_keys must be a list of {key, secret, role}"]
    roles = emqx_api_roles(version)
    problems, seen = [], set()
    for index, item in enumerate(keys):
        if not isinstance(item, dict):
            problems.append("entry %d is not a {key, secret, role} mapping" % (index + 1))
            continue
        key = item.get("key")
        name = "key %s" % key if isinstance(key, string_types) and _API_KEY_RE.match(key) else "entry %d" % (index + 1)
        if not isinstance(key, string_types) or not _API_KEY_RE.match(key):
            problems.append("%s: key must be letters, digits, _ and - (a ':' would shift the fields of the line)" % name)
        elif key in seen:
            problems.append("%s is listed twice" % name)
        else:
            seen.add(key)
        secret = item.get("secret")
        if not isinstance(secret, string_types) or not _PRINTABLE_RE.match(secret) or ":" in secret:
            problems.append("%s: secret must be printable ASCII without spaces or ':' (a ':' makes EMQX read part of it"
                            " as the role and stop loading the file there)" % name)
        elif len(secret) < API_SECRET_MIN:
            problems.append("%s: secret must have at least %d characters" % (name, API_SECRET_MIN))
        role = item.get("role", "administrator")
        if role not in roles:
            if role in API_ROLES_ENTERPRISE:
                problems.append("%s: role %s needs the enterprise edition (5.9+); EMQX %s knows only %s, and its loader"
                                " would stop at this line, leaving this key and every key after it unloaded"
                                % (name, role, version, ", ".join(roles)))
            else:
                problems.append("%s: role %r is not one of %s" % (name, role, ", ".join(roles)))
    return problems


# ---- listener binds: apps/emqx/src/emqx_schema.erl, to_ip_port/1 ------------------------------------
def _bind_ok(bind):
    text = str(bind).replace(" ", "")
    host, colon, port = text.rpartition(":")
    if not colon:
        host, port = "", text
    if not re.match(r"^\d{1,5}\Z", port) or not 1 <= int(port) <= 65535:
        return False
    if host == "" and not colon:
        return True
    if host.startswith("["):
        if not host.endswith("]"):
            return False
        host = host[1:-1]
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def emqx_bind_problems(binds):
    """The binds EMQX refuses at boot: anything but 'IP:port' (IPv6 as '::1:1883' or '[::1]:1883') or a port."""
    if not is_sequence(binds):
        binds = [binds]
    return [str(b) for b in binds if not _bind_ok(b)]


# ---- DNS discovery: apps/emqx_conf/src/emqx_conf_schema.erl, validate_cluster_strategy/1 ------------
def emqx_dns_problem(node_name, record_type):
    """Why EMQX would refuse to boot with this node name under DNS discovery ('' when it boots)."""
    host = str(node_name).partition("@")[2]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if record_type == "srv":
        if address is not None:
            return ("with record type srv EMQX names each peer <name>@<SRV target host>, so node names must use those"
                    " host names, not an IP address (%s)" % node_name)
        return ""
    family = {"a": 4, "aaaa": 6}.get(record_type)
    if family is None:
        return "record type must be a, aaaa or srv (got %r)" % (record_type,)
    if address is None or address.version != family:
        return ("with record type %s EMQX refuses to boot unless the node name is name@<IPv%d address> (got %s)"
                % (record_type, family, node_name))
    return ""


# ---- config roots: apps/emqx_conf/src/emqx_conf_schema.erl roots/0 ------------------------------------
# An unknown root key is dropped with a warning in the log (hocon_tconf, emqx/hocon 0.44.0), so a typo
# at the root does nothing at all: the preflight refuses it instead.
ROOTS_5_8 = frozenset("""
authentication authorization listeners mqtt zones node cluster log rpc broker sys_topics force_shutdown
overload_protection durable_storage force_gc conn_congestion stats sysmon alarm flapping_detect
durable_sessions trace crl_cache banned bridges connectors actions sources retainer auto_subscribe
telemetry delayed rewrite topic_metrics plugins dashboard gateway prometheus rule_engine exhook
psk_authentication limiter slow_subs api_key
""".split())
# Enterprise (tag e5.10.4): emqx_enterprise_schema:roots/0 adds these; the limiter root is gone.
ROOTS_ENTERPRISE = (ROOTS_5_8 - {"limiter"}) | frozenset("""
config_backup_interval opentelemetry license schema_registry schema_validation message_transformation
file_transfer durable_queues multi_tenancy ai
""".split())


def emqx_roots(version):
    """The root keys EMQX <version> reads from emqx.conf."""
    return sorted(ROOTS_ENTERPRISE if _is_enterprise(version) else ROOTS_5_8)


def emqx_unknown_roots(config, version):
    """The root keys of a config mapping that EMQX <version> does not know (and would silently drop)."""
    if not isinstance(config, dict):
        raise AnsibleFilterError("emqx_unknown_roots expects a mapping, got %s" % type(config).__name__)
    known = ROOTS_ENTERPRISE if _is_enterprise(version) else ROOTS_5_8
    return sorted(str(k) for k in config if str(k) not in known)


class FilterModule(object):
    def filters(self):
        return {
            "emqx_password_problem": emqx_password_problem,
            "emqx_api_key_problems": emqx_api_key_problems,
            "emqx_api_roles": emqx_api_roles,
            "emqx_bind_problems": emqx_bind_problems,
            "emqx_dns_problem": emqx_dns_problem,
            "emqx_roots": emqx_roots,
            "emqx_unknown_roots": emqx_unknown_roots,
        }
