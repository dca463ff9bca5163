"""API keys, dashboard users and passwords as EMQX 5.8.9 has them:
apps/emqx_management/src/emqx_mgmt_auth.erl (bootstrap file, authorize/4),
apps/emqx_management/src/emqx_mgmt_api_api_keys.erl, apps/emqx_dashboard/src/emqx_dashboard_api.erl,
apps/emqx_dashboard/src/emqx_dashboard.erl (authorize/2), emqx_dashboard_admin.erl (legal_password)
and emqx_dashboard_cli.erl (`Error: ...`, exit 0)."""

import hashlib
import json

from emqx_standin import node as standin_node
from standin import wait_for

LEN_MSG = "The range of password length is 8~64"
KIND_MSG = ("Bad password. At least two different kind of characters from groups of letters, numbers, "
            "and special characters. For example, if password is composed from letters, it must contain "
            "at least one number or a special character.")
ASCII_MSG = "Only ascii characters are allowed in the password"


# ---------------------------------------------------------------------------------- pure functions

def test_bootstrap_line_regex_is_ungreedy():
    parse = standin_node.parse_bootstrap_line
    assert parse("key1:secret1") == ("key1", "secret1", "administrator")
    assert parse("key1:secret1:administrator") == ("key1", "secret1", "administrator")
    # a `:` inside the secret makes its tail the role: refused, it is not "administrator"
    assert parse("key1:sec:ret") == '{"invalid_role",<<"ret">>}'
    assert parse("key1:sec:ret:administrator") == '{"invalid_role",<<"ret:administrator">>}'
    # ... unless nothing follows it, or it comes first in the secret
    assert parse("key1:secret:") == ("key1", "secret:", "administrator")
    assert parse("key1::secret") == ("key1", ":secret", "administrator")
    assert parse(":key1:secret") == (":key1", "secret", "administrator")
    assert parse("no colon here") == "invalid_format"
    # open source knows only administrator; enterprise (emqx_dashboard_rbac:valid_api_role/1) more
    assert parse("k:s:viewer") == '{"invalid_role",<<"viewer">>}'
    ee = ("administrator", "viewer", "publisher")
    assert parse("k:s:viewer", ee) == ("k", "s", "viewer")
    assert parse("k:s:publisher", ee) == ("k", "s", "publisher")


def test_bootstrap_name_is_sha512_prefix():
    # the example in emqx_mgmt_auth.erl's maybe_cleanup_api_key/1 comment
    assert standin_node.bootstrap_name("example-api-key") == "from_bootstrap_file_53280fb165b6cd37"
    assert standin_node.bootstrap_name("k") == "from_bootstrap_file_" + hashlib.sha512(b"k").hexdigest()[:16]


def test_legal_password():
    legal = standin_node.legal_password
    assert legal("abcdefg1") is None
    assert legal("abcdefg") == LEN_MSG
    assert legal("a1" * 32) is None and legal("a1" * 32 + "x") == LEN_MSG
    assert legal("abcdefgh") == KIND_MSG and legal("12345678") == KIND_MSG
    # backslash is not one of ?SPECIAL_CHARS
    assert legal("abcdefg\\") == KIND_MSG
    assert legal("abcdefg!") is None and legal("Abc$HOME12x") is None
    # ASCII outside the three groups is allowed once two groups are there
    assert legal("abc\\def1") is None and legal("abc\tdef1") is None
    # the length is counted in UTF-8 bytes (binary_to_list/1), and the kinds come before ASCII
    assert legal("abcdeé1") == ASCII_MSG           # 7 characters, 8 bytes
    assert legal("abcé1") == LEN_MSG               # 5 characters, 6 bytes
    assert legal("映映映映无天在请") == KIND_MSG


# ---------------------------------------------------------------------------------- one node

def _login(n, password, user="admin"):
    return n.api_json("POST", "/api/v5/login", {"username": user, "password": password}, auth=None)


def test_bootstrap_file_loading(nodes):
    lines = ("  key1:secret1  ", "", "   ", "key2:sec:ret2", "key3:secret3:administrator", "key4:secret4")
    n = nodes.one(api_keys=lines)
    n.start()
    # trimmed and blank lines skipped; the first bad line (4: role "ret2") stops loading there
    assert n.api_json("GET", "/api/v5/nodes", auth=("key1", "secret1"))[0] == 200
    for key, secret in (("key2", "sec:ret2"), ("key2", "sec"), ("key3", "secret3"), ("key4", "secret4")):
        assert n.api_json("GET", "/api/v5/nodes", auth=(key, secret))[0] == 401, key
    log = n.logtext()
    assert "msg: failed_to_load_bootstrap_file" in log and "line: 4," in log and "invalid_role" in log
    st, tok = _login(n, "public")
    assert st == 200
    bearer = "Bearer " + tok["token"]
    st, apps = n.api_json("GET", "/api/v5/api_key", auth=bearer)
    assert st == 200 and len(apps) == 1
    app = apps[0]
    assert sorted(app) == ["api_key", "created_at", "desc", "enable", "expired", "expired_at", "name"]
    assert app["name"] == "from_bootstrap_file_" + hashlib.sha512(b"key1").hexdigest()[:16]
    assert (app["api_key"], app["desc"], app["expired_at"], app["enable"], app["expired"]) == \
        ("key1", "Bootstrapped From File", "infinity", True, False)
    # the file without the bad line: key3, key4 load; then key1 leaves the file but stays valid
    with open(n.keyfile, "w") as fh:
        fh.write("key3:secret3\nkey4:secret4\n")
    n.stop()
    n.start()
    for key, secret in (("key1", "secret1"), ("key3", "secret3"), ("key4", "secret4")):
        assert n.api_json("GET", "/api/v5/nodes", auth=(key, secret))[0] == 200, key
    # ... until deleted through the API (Bearer only)
    st, tok = _login(n, "public")
    bearer = "Bearer " + tok["token"]
    name = app["name"]
    assert n.api_json("GET", "/api/v5/api_key/" + name, auth=bearer)[1]["api_key"] == "key1"
    st, headers, body = n.api("DELETE", "/api/v5/api_key/" + name, auth=("key3", "secret3"))
    assert st == 401 and headers["www-authenticate"] == 'Basic Realm="emqx-dashboard"'
    assert json.loads(body) == {"code": "API_KEY_NOT_ALLOW", "message": "Please use bearer Token instead, "
                                "using API key/secret in api_key path is not permitted"}
    assert n.api("DELETE", "/api/v5/api_key/" + name, auth=bearer)[0] == 204
    assert n.api_json("DELETE", "/api/v5/api_key/" + name, auth=bearer) == \
        (404, {"code": "NOT_FOUND", "message": "Name NOT FOUND"})
    assert n.api_json("GET", "/api/v5/api_key/" + name, auth=bearer)[0] == 404
    assert n.api_json("GET", "/api/v5/nodes", auth=("key1", "secret1"))[0] == 401


def test_passwords_cli_and_rest(nodes):
    n = nodes.one()
    n.start()
    # CLI: emqx_dashboard_cli prints `Error: <reason>` and exits 0; legal_password before the lookup
    assert n.ctl("admins", "passwd", "admin", "abcdefg\\") == (0, "Error: %s\n" % KIND_MSG, "")
    assert n.ctl("admins", "passwd", "nobody", "short") == (0, "Error: %s\n" % LEN_MSG, "")
    assert n.ctl("admins", "passwd", "nobody", "n3wPassword") == (0, "Error: username_not_found\n", "")
    assert n.ctl("admins", "passwd", "admin", "abcdé1xy") == (0, "Error: %s\n" % ASCII_MSG, "")
    assert n.ctl("admins", "add", "bad-name", "n3wPassword") == \
        (0, "Error: Bad Username. Only upper and lower case letters, numbers and underscores are supported\n", "")
    assert n.ctl("admins", "passwd", "admin", "Cli\\Pass1") == (0, "ok\n", "")
    assert _login(n, "Cli\\Pass1")[0] == 200
    # REST: login, then change_pwd
    st, body = _login(n, "wrong")
    assert (st, body) == (401, {"code": "BAD_USERNAME_OR_PWD", "message": "Auth failed"})
    bearer = "Bearer " + _login(n, "Cli\\Pass1")[1]["token"]
    url = "/api/v5/users/admin/change_pwd"
    assert n.api_json("POST", url, {"old_pwd": "nope-Nope1", "new_pwd": "Rest-Pass1"}, auth=bearer) == \
        (400, {"code": "ERROR_PWD_NOT_MATCH", "message": "Old password not match"})
    assert n.api_json("POST", url, {"old_pwd": "Cli\\Pass1", "new_pwd": "onlyletters"}, auth=bearer) == \
        (400, {"code": "BAD_REQUEST", "message": KIND_MSG})
    assert n.api_json("POST", "/api/v5/users/nobody/change_pwd", {"old_pwd": "x", "new_pwd": "Rest-Pass1"},
                      auth=bearer)[0] == 404
    assert n.api("POST", url, {"old_pwd": "Cli\\Pass1", "new_pwd": "Rest-Pass1"}, auth=bearer)[0] == 204
    assert _login(n, "Cli\\Pass1")[0] == 401 and _login(n, "Rest-Pass1")[0] == 200
    # the change destroyed the user's tokens
    assert n.api_json("GET", "/api/v5/nodes", auth=bearer)[0] == 401
    # API keys are refused on the users and logout paths (emqx_mgmt_auth:authorize/4) ...
    for method, path in (("GET", "/api/v5/users"), ("DELETE", "/api/v5/users/someone"),
                         ("POST", "/api/v5/logout"), ("GET", "/api/v5/api_key")):
        st, body = n.api_json(method, path, {} if method == "POST" else None)
        assert st == 401 and body["code"] == "API_KEY_NOT_ALLOW", path
        assert body["message"].endswith(" in %s path is not permitted" % path.split("/")[3])
    # ... but not on change_pwd, which is not in that list
    assert n.api("POST", url, {"old_pwd": "Rest-Pass1", "new_pwd": "Key-Pass1"})[0] == 204
    # no password reaches the log
    log = n.logtext() + n.console()
    for pw in ("Cli\\Pass1", "Rest-Pass1", "Key-Pass1", "n3wPassword", "onlyletters"):
        assert pw not in log, pw


def test_api_key_delete_is_seen_cluster_wide(nodes):
    a, b = nodes(2)
    a.start()
    b.start()
    assert b.ctl("cluster", "join", a.name)[1].startswith("Join the cluster successfully.")
    bearer = "Bearer " + _login(b, "public")[1]["token"]
    name = standin_node.bootstrap_name("key1")
    assert b.api("DELETE", "/api/v5/api_key/" + name, auth=bearer)[0] == 204
    wait_for(lambda: a.api_json("GET", "/api/v5/nodes")[0] == 401, what="key1 deleted on a too")
    assert a.api_json("GET", "/api/v5/api_key", auth="Bearer " + _login(a, "public")[1]["token"]) == (200, [])
