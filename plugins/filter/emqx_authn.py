# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Users of EMQX 5's built-in database password authenticator: their hashes, their checks, the bootstrap file.

What EMQX 5.8.9 does, and these filters follow (tag v5.8.9 of emqx/emqx):

* apps/emqx/src/emqx_passwd.erl, hash/2: the simple algorithms hash ``salt ++ password`` (salt_position
  prefix), ``password ++ salt`` (suffix) or the password alone (disable), both taken as UTF-8 bytes, and
  write the digest as lower-case hex; ``plain`` stores that concatenation itself. PBKDF2 is
  ``pbkdf2_hmac(mac_fun, password, salt, iterations, dk_length)`` in lower-case hex, dk_length defaulting
  to the digest size of mac_fun. bcrypt draws a random salt for every hash.
* apps/emqx_auth/src/emqx_authn/emqx_authn_password_hashing.erl: salt_position defaults to prefix; PBKDF2
  takes mac_fun sha, sha224, sha256, sha384 or sha512 (md4, md5 and ripemd160 are refused since 5.8.3).
* apps/emqx_auth_mnesia/src/emqx_authn_mnesia.erl: the JSON bootstrap file is a list of objects decoded by
  jiffy; user_id, password_hash and salt are stored as they decode (a JSON number stays a number, which no
  MQTT username ever equals and which EMQX cannot hash with), is_superuser is true only for true or "true".
* apps/emqx/src/emqx_frame.erl, validate_utf8/1: MQTT forbids U+0000 in a username, and EMQX's strict mode
  refuses U+0001-U+001F and U+007F-U+009F, so a user_id holding one can never log in.

None of the filters ever returns or raises a password, a hash or a salt.
"""

from __future__ import annotations

import hashlib
import json
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence
from ansible.module_utils.six import string_types

VARIABLE = "emq_node_authn_users"
KNOWN_KEYS = ("user_id", "password_hash", "salt", "is_superuser")

SIMPLE = ("plain", "md5", "sha", "sha256", "sha512")
SALT_POSITIONS = ("prefix", "suffix", "disable")
# hashlib's name and the digest size in bytes of each hash EMQX offers.
_DIGESTS = {"md5": ("md5", 16), "sha": ("sha1", 20), "sha224": ("sha224", 28), "sha256": ("sha256", 32),
            "sha384": ("sha384", 48), "sha512": ("sha512", 64)}
PBKDF2_MAC_FUNS = ("sha", "sha224", "sha256", "sha384", "sha512")
_NO_LONGER_MAC_FUNS = ("md4", "md5", "ripemd160")

_HEX_RE = re.compile(r"^[0-9a-f]+\Z")
_BCRYPT_RE = re.compile(r"^\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}\Z")

HASH_HINT = "{{ 'the-password' | iothub.emq.emqx_password_hash('the-salt', emq_node_authn_password_hash_algorithm) }}"


# ---- the algorithm ------------------------------------------------------------------------------


def _algorithm(algorithm, salt_position=None, mac_fun=None, iterations=None, dk_length=None, allow_bcrypt=False):
    """(name, settings) from a name or an EMQX password_hash_algorithm mapping; raises AnsibleFilterError."""
    if isinstance(algorithm, dict):
        settings = dict(algorithm)
        name = settings.get("name")
        settings.setdefault("salt_position", "prefix")  # EMQX's default when the mapping does not say
    elif isinstance(algorithm, string_types):
        name, settings = algorithm, {"salt_position": "suffix"}
    else:
        raise AnsibleFilterError("the algorithm must be a name such as sha256 or a mapping like {name: sha256, salt_position: suffix}, "
                                 "not %s" % type(algorithm).__name__)
    for key, value in (("salt_position", salt_position), ("mac_fun", mac_fun), ("iterations", iterations),
                       ("dk_length", dk_length)):
        if value is not None:
            settings[key] = value
    name = str(name).strip().lower() if name is not None else ""
    if name == "bcrypt" and allow_bcrypt:
        return name, settings
    if name == "bcrypt":
        raise AnsibleFilterError(
            "bcrypt is not supported for provisioning: every bcrypt hash embeds a fresh random salt, so the same password "
            "gives a different hash on every run and every user would be updated on every run; use sha256 (or pbkdf2)")
    if name not in SIMPLE and name != "pbkdf2":
        raise AnsibleFilterError("unknown password hash algorithm %r; EMQX knows %s, pbkdf2 and bcrypt"
                                 % (name, ", ".join(SIMPLE)))
    if name in SIMPLE and settings.get("salt_position") not in SALT_POSITIONS:
        raise AnsibleFilterError("salt_position must be one of %s, not %r"
                                 % (", ".join(SALT_POSITIONS), settings.get("salt_position")))
    return name, settings


def _pbkdf2_settings(settings, strict):
    """(hashlib name, iterations, derived key length) of a pbkdf2 algorithm; None values when not strict."""
    mac_fun = settings.get("mac_fun")
    if mac_fun is None and not strict:
        return None, None, _positive(settings.get("dk_length"), "dk_length", required=False)
    mac_fun = str(mac_fun).lower()
    if mac_fun in _NO_LONGER_MAC_FUNS:
        raise AnsibleFilterError("pbkdf2 with mac_fun %s is refused by EMQX since 5.8.3; use one of %s"
                                 % (mac_fun, ", ".join(PBKDF2_MAC_FUNS)))
    if mac_fun not in PBKDF2_MAC_FUNS:
        raise AnsibleFilterError("pbkdf2 needs mac_fun, one of %s" % ", ".join(PBKDF2_MAC_FUNS))
    iterations = _positive(settings.get("iterations"), "iterations", required=strict)
    dk_length = _positive(settings.get("dk_length"), "dk_length", required=False) or _DIGESTS[mac_fun][1]
    return _DIGESTS[mac_fun][0], iterations, dk_length


def _positive(value, name, required):
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, (int,) + string_types) or not str(value).isdigit() or int(value) < 1:
        raise AnsibleFilterError("pbkdf2 needs %s, a whole number of 1 or more" % name)
    return int(value)


def _text(value, what):
    if value is None:
        return ""
    if not isinstance(value, string_types):
        raise AnsibleFilterError("emqx_password_hash: the %s must be a string, not %s" % (what, type(value).__name__))
    return str(value)


def emqx_password_hash(password, salt="", algorithm="sha256", salt_position=None, mac_fun=None, iterations=None, dk_length=None):
    """The password_hash EMQX stores for ``password`` and ``salt`` under ``algorithm``."""
    if password is None or not isinstance(password, string_types):
        raise AnsibleFilterError("emqx_password_hash: the password must be a string")
    name, settings = _algorithm(algorithm, salt_position, mac_fun, iterations, dk_length)
    secret = str(password).encode("utf-8")
    salt_bytes = _text(salt, "salt").encode("utf-8")
    if name == "pbkdf2":
        digest, rounds, length = _pbkdf2_settings(settings, strict=True)
        return hashlib.pbkdf2_hmac(digest, secret, salt_bytes, rounds, length).hex()
    position = settings["salt_position"]
    if position == "prefix":
        data = salt_bytes + secret
    elif position == "suffix":
        data = secret + salt_bytes
    else:
        data = secret
    if name == "plain":
        return data.decode("utf-8")
    return hashlib.new(_DIGESTS[name][0], data).hexdigest()


# ---- checking emq_node_authn_users ----------------------------------------------------------------


def _shape(name, settings):
    """(hex length or None for any even length, what it looks like) for a hash of this algorithm; None: no check."""
    if name in _DIGESTS:
        return _DIGESTS[name][1] * 2
    if name == "pbkdf2":
        length = _pbkdf2_settings(settings, strict=False)[2]
        return length * 2 if length else 0
    return None


def _surrogate_problem(text):
    for char in text:
        if 0xD800 <= ord(char) <= 0xDFFF:
            return ("holds U+%04X, a lone surrogate that UTF-8 cannot encode (the bootstrap file and the API would not carry "
                    "it as written)" % ord(char))
    return None


def _mqtt_char_problem(text):
    for char in text:
        code = ord(char)
        if code <= 0x1F or 0x7F <= code <= 0x9F:
            return ("holds the control character U+%04X, which an MQTT client cannot send (MQTT forbids U+0000, EMQX's "
                    "strict mode refuses U+0001-U+001F and U+007F-U+009F), so this user could never log in" % code)
    return _surrogate_problem(text)


def _is_bool(value):
    return isinstance(value, bool)


def emqx_authn_user_problems(users, algorithm="sha256"):
    """One sentence per problem of ``emq_node_authn_users``; empty when the list is fine. Never shows a hash."""
    if not is_sequence(users):
        return ["%s must be a list of {user_id, password_hash, salt, is_superuser} mappings, not %s"
                % (VARIABLE, "a string" if isinstance(users, string_types) else type(users).__name__)]
    try:
        name, settings = _algorithm(algorithm, allow_bcrypt=True)
        hex_length = _shape(name, settings)
    except AnsibleFilterError as exc:
        return ["%s cannot be checked: %s" % (VARIABLE, exc.message)]
    problems, seen = [], {}
    for index, entry in enumerate(users):
        where = "%s[%d]" % (VARIABLE, index)
        if not isinstance(entry, dict):
            problems.append("%s is not a mapping; write {user_id: ..., password_hash: ..., salt: ..., is_superuser: ...}" % where)
            continue
        user_id = entry.get("user_id")
        if isinstance(user_id, string_types) and user_id and not _mqtt_char_problem(user_id):
            where += " (user %s)" % user_id
        unknown = sorted(str(k) for k in entry if k not in KNOWN_KEYS)
        if unknown:
            hint = ""
            if "password" in unknown:
                hint = ("; never put a password here: write password_hash: \"%s\", with the entry's salt in place of "
                        "the-salt (and keep the list in ansible-vault)" % HASH_HINT)
            problems.append("%s has the unknown key%s %s; the known keys are %s%s"
                            % (where, "" if len(unknown) == 1 else "s", ", ".join(unknown), ", ".join(KNOWN_KEYS), hint))
        # user_id
        if user_id is None or user_id == "":
            problems.append("%s has no user_id (the MQTT username, or client id with emq_node_authn_user_id_type: clientid)" % where)
        elif not isinstance(user_id, string_types):
            problems.append("%s: user_id must be a string, quote it (YAML reads 0001 as the number 1, and the bootstrap "
                            "file would then hold a number, which EMQX never matches against an MQTT username)" % where)
        else:
            trouble = _mqtt_char_problem(user_id)
            if trouble:
                problems.append("%s: user_id %s" % (where, trouble))
            if user_id in seen:
                problems.append("%s: user_id %s is listed twice (first at %s[%d]); EMQX keeps one record per user_id"
                                % (where, user_id, VARIABLE, seen[user_id]))
            else:
                seen[user_id] = index
        # password_hash: never quoted
        password_hash = entry.get("password_hash")
        if password_hash is None or password_hash == "":
            problems.append("%s has no password_hash; write password_hash: \"%s\"" % (where, HASH_HINT))
        elif not isinstance(password_hash, string_types):
            problems.append("%s: password_hash must be a string, quote it (the bootstrap file would otherwise hold a "
                            "number, which EMQX cannot compare with a hash)" % where)
        elif name == "bcrypt":
            if not _BCRYPT_RE.match(password_hash):
                problems.append("%s: password_hash is not a bcrypt hash ($2b$ and 56 more characters)" % where)
        elif hex_length is not None and (not _HEX_RE.match(password_hash) or len(password_hash) % 2
                                         or (hex_length and len(password_hash) != hex_length)):
            shape = "%d lower-case hex digits" % hex_length if hex_length else "an even number of lower-case hex digits"
            problems.append("%s: password_hash cannot be a %s hash (EMQX stores %s); write password_hash: \"%s\""
                            % (where, name, shape, HASH_HINT))
        # salt
        salt = entry.get("salt", "")
        if salt is None:
            problems.append("%s: salt is null (an empty YAML value); write salt: '' or leave the key out" % where)
        elif not isinstance(salt, string_types):
            problems.append("%s: salt must be a string, quote it (the bootstrap file would otherwise hold a number, "
                            "and EMQX cannot hash with a salt that is not a string)" % where)
        elif _surrogate_problem(salt):
            problems.append("%s: salt %s" % (where, _surrogate_problem(salt)))
        # is_superuser
        if "is_superuser" in entry and not _is_bool(entry["is_superuser"]):
            problems.append("%s: is_superuser must be true or false, not %s"
                            % (where, "a string" if isinstance(entry["is_superuser"], string_types)
                               else type(entry["is_superuser"]).__name__))
    return problems


# ---- the bootstrap file -----------------------------------------------------------------------------


def emqx_bootstrap_users(text):
    """The users of a JSON bootstrap file (its text); [] for no, empty or unreadable text."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            return []
    if not isinstance(text, string_types) or not text.strip():
        return []
    try:
        data = json.loads(text)
    except ValueError:
        return []
    if not isinstance(data, list):
        return []
    users, seen = [], set()
    for entry in data:
        if not isinstance(entry, dict):
            continue
        user_id = entry.get("user_id")
        if not isinstance(user_id, string_types) or not user_id or user_id in seen:
            continue  # EMQX's loader keeps the first record of a user_id and refuses the later ones
        seen.add(user_id)
        password_hash = entry.get("password_hash")
        salt = entry.get("salt", "")
        users.append({
            "user_id": user_id,
            "password_hash": password_hash if isinstance(password_hash, string_types) else "",
            "salt": salt if isinstance(salt, string_types) else "",
            "is_superuser": entry.get("is_superuser") is True or entry.get("is_superuser") == "true",
        })
    return users


class FilterModule(object):
    def filters(self):
        return {
            "emqx_password_hash": emqx_password_hash,
            "emqx_authn_user_problems": emqx_authn_user_problems,
            "emqx_bootstrap_users": emqx_bootstrap_users,
        }
