"""MQTT authentication and authorization of the stand-in, as EMQX 5.8.9 does them (test equipment).

Authentication (apps/emqx/src/emqx_access_control.erl authenticate/1,
apps/emqx_auth/src/emqx_authn/emqx_authn_chains.erl authenticate/2 and do_authenticate/3): the global
chain `mqtt:global`; no enabled authenticator -> anonymous success; each enabled authenticator may
answer ignore (next one), {ok, #{is_superuser}} or {error, Reason}; the end of the chain is
{error, not_authorized}. The only provider is password_based + built_in_database
(apps/emqx_auth_mnesia/src/emqx_authn_mnesia.erl), whose users live in the cluster-wide table
`authn_users` of the cluster layer (Mnesia `emqx_authn_mnesia`, key {UserGroup = chain name, UserID}).

Password hashing: apps/emqx_auth/src/emqx_authn/emqx_authn_password_hashing.erl and
apps/emqx/src/emqx_passwd.erl (bcrypt is refused at boot: Python's standard library has none).

Authorization (apps/emqx/src/emqx_access_control.erl authorize/3, apps/emqx_auth/src/emqx_authz/
emqx_authz.erl authorize/5): superusers are allowed before any source; the enabled sources in order
(only `file`, see acl.py); nothing matched -> authorization.no_match.
"""

import hashlib
import json
import os
import secrets

from . import acl

GROUP = "mqtt:global"
AUTHN_ID = "password_based:built_in_database"
TABLE = "authn_users"


class Unsupported(Exception):
    """Configuration the stand-in cannot model: it refuses to boot rather than accept it."""


# ==============================================================================================
# password hashing (emqx_authn_password_hashing / emqx_passwd)
# ==============================================================================================
_PBKDF2_DK = {"sha": 20, "sha224": 28, "sha256": 32, "sha384": 48, "sha512": 64}
_PBKDF2_HASHLIB = {"sha": "sha1", "sha224": "sha224", "sha256": "sha256", "sha384": "sha384", "sha512": "sha512"}
_SIMPLE = {"md5": "md5", "sha": "sha1", "sha256": "sha256", "sha512": "sha512"}


class HashError(Exception):
    pass


def _b(v):
    if isinstance(v, bytes):
        return v
    if isinstance(v, str):
        return v.encode("utf-8", "surrogateescape")
    raise HashError("not_a_string")


def gen_salt(algo):
    """gen_salt/1: plain -> empty; otherwise 32 lowercase hex digits of 16 random bytes."""
    if algo["name"] == "plain":
        return b""
    return ("%032x" % int.from_bytes(secrets.token_bytes(16), "big")).encode()


def hash_data(name, data):
    if name == "plain":
        return data
    return hashlib.new(_SIMPLE[name], data).hexdigest().encode()


def _pbkdf2(algo, password, salt):
    mac = algo["mac_fun"]
    dk = algo.get("dk_length")
    if mac not in _PBKDF2_HASHLIB:     # md4/md5/ripemd160: accepted by the schema, crash in EMQX >= 5.8.3
        raise HashError("unsupported mac_fun %s" % mac)
    if dk is None:
        dk = _PBKDF2_DK[mac]
    if dk > (1 << 32) - 1:
        raise HashError("dklength_too_long")
    return hashlib.pbkdf2_hmac(_PBKDF2_HASHLIB[mac], password, salt, int(algo["iterations"]), dk).hex().encode()


def hash_password(algo, password):
    """emqx_authn_password_hashing:hash/2 -> (hash, salt), both bytes."""
    password = _b(password)
    name = algo["name"]
    if name == "bcrypt":
        raise HashError("bcrypt is not available in the stand-in")
    if name == "pbkdf2":
        salt = gen_salt(algo)
        return _pbkdf2(algo, password, salt), salt
    pos = algo.get("salt_position", "prefix")
    salt = b"" if pos == "disable" else gen_salt(algo)
    return _simple_hash(name, salt, pos, password), salt


def _simple_hash(name, salt, pos, password):
    if pos == "disable":
        return hash_data(name, password)
    if pos == "prefix":
        return hash_data(name, salt + password)
    return hash_data(name, password + salt)


def _lower_latin1(b):
    """string:lowercase/1 on binary_to_list/1 of the value (each byte a code point)."""
    return "".join(ch.lower() if len(ch.lower()) == 1 else ch for ch in b.decode("latin-1"))


def check_password(algo, salt, password_hash, password):
    """emqx_authn_password_hashing:check_password/4: simple algorithms and pbkdf2 compare the hex
    digests without regard to case (compare_secure_caseless), so does `plain`."""
    if password is None:
        return False
    name = algo["name"]
    password = _b(password)
    salt = _b(salt)
    password_hash = _b(password_hash)
    if name == "bcrypt":
        raise HashError("bcrypt is not available in the stand-in")
    if name == "pbkdf2":
        mine = _pbkdf2(algo, password, salt)
    else:
        mine = _simple_hash(name, salt, algo.get("salt_position", "prefix"), password)
    a, b = _lower_latin1(mine), _lower_latin1(password_hash)
    return len(a) == len(b) and secrets.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


# ==============================================================================================
# import files (emqx_authn_mnesia:parse_import_users/3, reader_fn/2, convert_user/3)
# ==============================================================================================
class ImportError_(Exception):
    """import_users error: `reason` as EMQX's serialize_error/1 prints it (~0p)."""

    def __init__(self, reason):
        self.reason = reason
        super().__init__(reason)


def parse_csv(data):
    """emqx_utils_stream:csv/1: the data split at every \\r and \\n (empty lines dropped); each line
    split at ',', ' ' and '\\n' with empty fields DROPPED (no quoting); a line whose field count
    differs from the header's is bad_format."""
    text = data if isinstance(data, bytes) else _b(data)
    import re
    lines = [x for x in re.split(rb"[\r\n]", text) if x]
    if not lines:
        return []

    def fields(line):
        return [x.decode("utf-8", "surrogateescape") for x in re.split(rb"[, \n]", line) if x]
    headers = fields(lines[0])
    out = []
    for line in lines[1:]:
        f = fields(line)
        if len(f) != len(headers):
            raise ImportError_("bad_format")
        out.append(dict(zip(headers, f)))
    return out


def read_users(filename, data):
    """reader_fn/2: by the file name's extension (.json: a JSON array; .csv); `prepared_user_list`:
    the decoded JSON body of the REST import."""
    if filename is None:
        if not isinstance(data, list):
            raise ImportError_("function_clause")
        return data
    ext = os.path.splitext(filename)[1]
    if ext == ".json":
        try:
            doc = json.loads(data.decode("utf-8") if isinstance(data, bytes) else data)
        except (ValueError, UnicodeDecodeError) as e:
            raise ImportError_("{invalid_json,%s}" % str(e).replace(" ", "_")[:60])
        if not isinstance(doc, list):
            raise ImportError_("unknown_file_format")
        return doc
    if ext == ".csv":
        return parse_csv(data)
    if ext == "":
        raise ImportError_("unknown_file_format")
    raise ImportError_('{unsupported_file_format,<<"%s">>}' % ext)


def _is_superuser(u):
    v = u.get("is_superuser")
    return v is True or v == "true"


def convert_users(users, ptype, algo):
    """convert_user/3 over the list: -> [(user_id, hash, salt, is_superuser)]; the first bad
    record fails the whole import."""
    out = []
    for u in users:
        if not isinstance(u, dict) or "user_id" not in u:
            raise ImportError_("bad_format")
        if ptype == "hash":
            if "password_hash" not in u:
                raise ImportError_('"hash_import_requires_password_hash_field"')
            h, salt = u["password_hash"], u.get("salt", "")
        else:
            if "password" not in u:
                raise ImportError_('"plain_import_requires_password_field"')
            try:
                hb, sb = hash_password(algo, u["password"])
            except HashError as e:
                raise ImportError_(str(e))
            h, salt = hb.decode("utf-8", "surrogateescape"), sb.decode("utf-8", "surrogateescape")
        uid = u["user_id"]
        if not isinstance(uid, str):
            uid = json.dumps(uid)
        out.append((uid, h if isinstance(h, str) else json.dumps(h),
                    salt if isinstance(salt, str) else json.dumps(salt), _is_superuser(u)))
    return out


# ==============================================================================================
# the authenticator chain and its users
# ==============================================================================================
class Authn:
    def __init__(self, node, authenticators):
        """authenticators: the checked `authentication` list (schema.py). Duplicates of an ID are
        dropped with EMQX's error log (emqx_authn_chains: already_exists)."""
        self.node = node
        self.chain = []
        seen = set()
        for conf in authenticators or []:
            aid = "%s:%s" % (conf["mechanism"], conf["backend"])
            if aid in seen:
                node.log("error", "msg: failed_to_create_authenticator, authenticator: %s, reason: "
                         "{already_exists,{authenticator,<<\"%s\">>}}" % (aid, aid))
                continue
            seen.add(aid)
            self.chain.append(dict(conf, id=aid))

    # ---- table
    def _table(self):
        return self.node.cluster.state["data"].setdefault(TABLE, {})

    def _get(self, user_id):
        rec = self._table().get(user_id)
        if rec is None or rec.get("deleted"):
            return None
        return rec

    def _put(self, user_id, h, salt, sup):
        self.node.cluster.put_record(TABLE, user_id, {"password_hash": h, "salt": salt, "is_superuser": bool(sup)})

    def users(self):
        return {k: v for k, v in self._table().items() if not v.get("deleted")}

    def find(self, aid):
        """-> (authenticator, None) or (None, error tuple as serialize_error/1 takes it)."""
        if not self.chain:
            return None, ("chain_not_found",)
        for a in self.chain:
            if a["id"] == aid:
                return a, None
        return None, ("authenticator_not_found", aid)

    # ---- bootstrap and import
    def bootstrap(self):
        """emqx_authn_mnesia:boostrap_user_from_file/2 for every configured built-in database
        authenticator (at boot and when the apps restart after a cluster join)."""
        for a in self.chain:
            path = a.get("bootstrap_file") or ""
            if not path:
                continue
            from .schema import interpolate_env
            path = interpolate_env(path)
            try:
                with open(path, "rb") as fh:
                    data = fh.read()
            except OSError as e:
                import errno
                reason = errno.errorcode.get(e.errno, str(e)).lower() if e.errno else str(e)
                self.node.log("warning", "msg: boostrap_authn_built_in_database_failed, boostrap_file: %s, "
                              "boostrap_type: %s, reason: %s" % (path, a["bootstrap_type"], reason))
                continue
            try:
                self.import_users(a, a["bootstrap_type"], path, data, override=False)
            except ImportError_ as e:
                if e.reason != "empty_users":
                    pass   # logged by import_users

    def import_users(self, a, ptype, filename, data, override=True):
        """import_users/3 -> {success, skipped, override, failed, total}; raises ImportError_."""
        try:
            users = convert_users(read_users(filename, data), ptype, a["password_hash_algorithm"])
        except ImportError_ as e:
            self.node.log("warning", "msg: parse_authn_users_failed, reason: %s, type: %s, filename: %s"
                          % (e.reason, ptype, filename if filename is not None else "prepared_user_list"))
            raise
        if not users:
            raise ImportError_("empty_users")
        res = {"success": 0, "skipped": 0, "override": 0, "failed": 0}
        for uid, h, salt, sup in users:
            cur = self._get(uid)
            if cur is None:
                self._put(uid, h, salt, sup)
                res["success"] += 1
            elif (cur.get("password_hash"), cur.get("salt"), bool(cur.get("is_superuser"))) == (h, salt, sup):
                res["skipped"] += 1
            elif override:
                self._put(uid, h, salt, sup)
                self.node.log("warning", "msg: override_an_exists_userid_into_authentication_database_ok, "
                              "user_id: %s, group_id: %s, bootstrap_file: %s"
                              % (uid, GROUP, filename if filename is not None else "prepared_user_list"))
                res["override"] += 1
            else:
                self.node.log("warning", "msg: import_an_exists_userid_into_authentication_database_failed, "
                              "user_id: %s, group_id: %s, bootstrap_file: %s"
                              % (uid, GROUP, filename if filename is not None else "prepared_user_list"))
                res["failed"] += 1
        res["total"] = len(users)
        return res

    # ---- user management (add_user/2, update_user/3, delete_user/2, lookup_user/2)
    def add_user(self, a, user_id, password, is_superuser):
        if self._get(user_id) is not None:
            return None, "already_exist"
        h, salt = hash_password(a["password_hash_algorithm"], password)
        self._put(user_id, h.decode("utf-8", "surrogateescape"), salt.decode("utf-8", "surrogateescape"),
                  is_superuser)
        return {"user_id": user_id, "is_superuser": bool(is_superuser)}, None

    def update_user(self, a, user_id, fields):
        cur = self._get(user_id)
        if cur is None:
            return None, "not_found"
        h, salt, sup = cur.get("password_hash"), cur.get("salt"), bool(cur.get("is_superuser"))
        if "password" in fields:
            hb, sb = hash_password(a["password_hash_algorithm"], fields["password"])
            h, salt = hb.decode("utf-8", "surrogateescape"), sb.decode("utf-8", "surrogateescape")
        if "is_superuser" in fields:
            sup = bool(fields["is_superuser"])
        self._put(user_id, h, salt, sup)
        return {"user_id": user_id, "is_superuser": sup}, None

    def delete_user(self, user_id):
        if self._get(user_id) is None:
            return "not_found"
        self.node.cluster.put_record(TABLE, user_id, {"deleted": True})
        return None

    # ---- authenticate
    def enabled(self):
        return [a for a in self.chain if a.get("enable", True)]

    def authenticate(self, ci, password, auth_method=None, enable_authn=True):
        """-> (True, is_superuser, None) or (False, False, reason)."""
        if enable_authn is False or enable_authn == "false":
            return True, False, None
        if enable_authn == "quick_deny_anonymous" and not ci.get("username"):
            return False, False, "not_authorized"
        chain = self.enabled()
        if not chain:
            return True, False, None
        for a in chain:
            try:
                r = self._provider_authenticate(a, ci, password, auth_method)
            except (HashError, ValueError, TypeError, KeyError) as e:
                self.node.log("warning", "msg: authenticator_error, authenticator: %s, exception: error, reason: %s"
                              % (a["id"], e))
                continue
            if r is None:
                continue
            return r
        return False, False, "not_authorized"

    def _provider_authenticate(self, a, ci, password, auth_method):
        if auth_method is not None:
            return None
        if password is None:
            return False, False, "bad_username_or_password"
        uid = ci.get(a.get("user_id_type", "username"))
        rec = self._get(uid) if uid is not None else None
        if rec is None:
            return None
        ok = check_password(a["password_hash_algorithm"], rec.get("salt", ""), rec.get("password_hash", ""), password)
        if ok:
            return True, bool(rec.get("is_superuser")), None
        return False, False, "bad_username_or_password"


class Authz:
    """The `authorization` root: no_match, deny_action and the sources (file only)."""

    def __init__(self, conf, log):
        self.no_match = conf.get("no_match", "allow")
        self.deny_action = conf.get("deny_action", "ignore")
        self.log = log
        self.sources = []
        disabled = []
        for src in conf.get("sources") or []:
            if not src.get("enable", True):
                disabled.append(src)
            # emqx_authz:create_sources/1 creates disabled sources too (emqx_authz_file:create/1
            # reads and compiles the file)
            rules = src.get("_rules")
            if rules is None:
                from .schema import interpolate_env
                rules = acl.load_rules(interpolate_env(src["path"]))
            self.sources.append({"type": src["type"], "enable": src.get("enable", True), "rules": rules})
        if disabled:
            log("info", "msg: disabled_sources_ignored, sources: %s" % [s["type"] for s in disabled])

    def authorize(self, ci, action, topic):
        """emqx_access_control:authorize/3 -> "allow" | "deny"."""
        if topic.startswith("$delayed/"):
            rest = topic[len("$delayed/"):]
            if "/" not in rest:
                self.log("warning", "msg: invalid_delayed_topic_format, expected_example: $delayed/1/t/foo, got: %s"
                         % topic)
                return "deny"
            topic = rest.split("/", 1)[1]
        if ci.get("is_superuser"):
            result, source = "allow", "superuser"
        else:
            result, source = None, None
            for s in self.sources:
                if not s["enable"]:
                    continue
                try:
                    r = acl.matches(ci, action, topic, s["rules"])
                except Exception as e:   # unexpected_error_in_authorize: next source
                    self.log("warning", "msg: unexpected_error_in_authorize, reason: %r, authorize_type: %s"
                             % (e, s["type"]))
                    continue
                if r is not None:
                    result, source = r, s["type"]
                    break
            if result is None:
                result, source = self.no_match, "'authorization.no_match' config"
        if result == "deny":
            what = ("PUBLISH(Q%d,R%d)" % (action["qos"], 1 if action.get("retain") else 0)
                    if action["type"] == "publish" else "SUBSCRIBE(Q%d)" % action["qos"])
            self.log("info" if action["type"] == "publish" else "warning",
                     "msg: authorization_permission_denied, topic: %s, action: %s, source: %s, clientid: %s, "
                     "username: %s" % (topic, what, source, ci.get("clientid"), ci.get("username")))
        return result
