"""MQTT authentication (built-in database) and authorization (file source) as EMQX 5.8.9 does them."""

import hashlib
import json
import os
import socket
import struct
import sys
import time
import urllib.parse

import pytest

from standin import wait_for
from test_broker import RawClient, packet, proxy_v2, s16, subscribe_pkt

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from emqx_standin import acl, authn, schema  # noqa: E402

AID = "password_based:built_in_database"
USERS = "/api/v5/authentication/%s/users" % urllib.parse.quote(AID)


def sha256_suffix(password, salt):
    return hashlib.sha256(password.encode() + salt.encode()).hexdigest()


def connect_pkt(clientid, proto=4, username=None, password=None, clean=True, will=None):
    flags = 0x02 if clean else 0
    payload = s16(clientid)
    if will:
        topic, msg, qos = will
        flags |= 0x04 | (qos << 3)
        payload += (b"\x00" if proto == 5 else b"") + s16(topic) + s16(msg)
    if username is not None:
        flags |= 0x80
        payload += s16(username)
    if password is not None:
        flags |= 0x40
        payload += s16(password)
    vh = s16("MQTT") + bytes((proto, flags)) + struct.pack("!H", 60) + (b"\x00" if proto == 5 else b"")
    return packet(0x10, vh + payload)


def pub_pkt(topic, payload, qos, pid, proto):
    body = s16(topic) + (struct.pack("!H", pid) if qos else b"") + (b"\x00" if proto == 5 else b"") + payload
    return packet(0x30 | (qos << 1), body)


def client(node, clientid, proto=4, username=None, password=None, src=None, prefix=b""):
    """-> (RawClient, CONNACK return code)."""
    sock = socket.create_connection((node.host, 1883), timeout=5, source_address=(src, 0) if src else None)
    c = RawClient(0, prefix=prefix, sock=sock)
    c.send(connect_pkt(clientid, proto, username, password))
    t, _f, body = c.read()
    assert t == 2
    return c, body[1]


def sub(c, pid, topic, qos=0, proto=4):
    c.send(subscribe_pkt(pid, topic, qos, proto))
    t, _f, body = c.read()
    assert t == 9
    return body[-1]


def puback(c, topic, pid, proto, qos=1):
    """QoS 1/2 PUBLISH -> (ack type, reason code: 0 when the v5 ack has none)."""
    c.send(pub_pkt(topic, b"x", qos, pid, proto))
    while True:
        t, _f, body = c.read()
        if t != 3:
            break
        c.__dict__.setdefault("pubs", []).append(body[2:2 + struct.unpack("!H", body[:2])[0]].decode())
    assert struct.unpack("!H", body[:2])[0] == pid, (t, body, getattr(c, "pubs", None))
    return t, (body[2] if len(body) > 2 else 0)


ACL = b"""%% -*- coding: utf-8 -*-
{allow, all, publish, ["devices/${clientid}/#"]}.
{deny, all, publish, ["devices/#"]}.
{deny, all, subscribe, [{eq, "#"}, {eq, "+/#"}, "$SYS/#"]}.
{allow, all}.
"""


def write_users(node, users, name="users.json"):
    path = os.path.join(node.etc, name)
    with open(path, "w") as fh:
        json.dump(users, fh)
    return path


def authn_conf(path, algo='{name = sha256, salt_position = suffix}', btype="hash", extra=""):
    return """
authentication = [{mechanism = password_based, backend = built_in_database, user_id_type = username,
  password_hash_algorithm = %s, bootstrap_file = "%s", bootstrap_type = %s}]
%s
""" % (algo, path, btype, extra)


def authz_conf(path, no_match="allow", deny_action="ignore"):
    return """
authorization { no_match = %s, deny_action = %s, sources = [{type = file, path = "%s"}] }
""" % (no_match, deny_action, path)


@pytest.fixture
def secured(nodes):
    """A node with the built-in database (sha256, salt suffix; bootstrap JSON, hash) and an ACL file."""
    node = nodes.one()
    users = write_users(node, [
        {"user_id": "alice", "password_hash": sha256_suffix("alice-pw", "s1"), "salt": "s1", "is_superuser": False},
        {"user_id": "svc", "password_hash": sha256_suffix("svc-pw", "s2"), "salt": "s2", "is_superuser": True},
    ])
    aclf = os.path.join(node.etc, "iothub-acl.conf")
    with open(aclf, "wb") as fh:
        fh.write(ACL)
    with open(os.path.join(node.etc, "emqx.conf"), "a") as fh:
        fh.write(authn_conf(users) + authz_conf(aclf))
    return node.start()


# =============================================================================================
# authentication
# =============================================================================================
def test_connack_codes_v311_and_v5(secured):
    node = secured
    cases = [
        (None, None, 4, 0x86),                  # anonymous: no password -> bad_username_or_password
        ("alice", None, 4, 0x86),               # user name without password: the same
        ("alice", "wrong", 4, 0x86),            # wrong password
        ("nobody", "pw", 5, 0x87),              # unknown user: ignore -> end of chain -> not_authorized
        ("alice", "alice-pw", 0, 0),
    ]
    for i, (user, pw, rc3, rc5) in enumerate(cases):
        for proto, want in ((4, rc3), (5, rc5)):
            c, rc = client(node, "c%d-%d" % (i, proto), proto, user, pw)
            assert rc == want, (user, pw, proto, rc)
            if want:
                assert c.expect_closed() == []
            c.close()
    assert "authentication_failure, reason: bad_username_or_password" in node.logtext()
    assert "authentication_failure, reason: not_authorized" in node.logtext()


def test_authz_file_rules_and_superuser(secured):
    node = secured
    a5, rc = client(node, "alice", 5, "alice", "alice-pw")
    assert rc == 0
    a3, rc = client(node, "alice3", 4, "alice", "alice-pw")
    assert rc == 0
    # subscribe to "#": SUBACK 0x87 in v5, 0x80 in v3.1.1 (emqx_reason_codes:compat(suback, _))
    assert sub(a5, 1, "#", 1, 5) == 0x87
    assert sub(a3, 1, "#", 1, 4) == 0x80
    assert sub(a5, 2, "+/#", 0, 5) == 0x87
    assert sub(a5, 3, "news/#", 1, 5) == 1
    # publish: own topic through ${clientid}; another device's topic is denied
    assert puback(a5, "devices/alice/t", 10, 5) == (4, 0)
    assert puback(a5, "devices/bob/t", 11, 5) == (4, 0x87)
    assert puback(a5, "devices/bob/t", 12, 5, qos=2) == (5, 0x87)
    assert puback(a3, "devices/bob/t", 13, 4) == (4, 0)      # MQTT 3.1.1 PUBACK has no reason code
    # the superuser skips authorization
    su, rc = client(node, "svc-1", 5, "svc", "svc-pw")
    assert rc == 0
    assert sub(su, 1, "#", 0, 5) == 0
    assert puback(su, "devices/bob/t", 5, 5) == (4, 0)
    got = list(getattr(su, "pubs", []))
    try:
        while True:
            t, _f, body = su.read(timeout=1.0)
            if t == 3:
                got.append(body[2:2 + struct.unpack("!H", body[:2])[0]].decode())
    except AssertionError:
        pass
    # su receives its own publish; alice's denied ones never reached the broker
    assert got.count("devices/bob/t") == 1 and "devices/alice/t" not in got
    # QoS 0 denied: dropped silently, the connection stays
    a5.send(pub_pkt("devices/bob/q0", b"x", 0, None, 5))
    assert sub(a5, 4, "news/x", 0, 5) == 0
    assert "cannot_publish_to_topic_due_to_not_authorized" in node.logtext()
    for c in (a5, a3, su):
        c.close()


def test_deny_action_disconnect(nodes):
    node = nodes.one()
    aclf = os.path.join(node.etc, "a.conf")
    with open(aclf, "wb") as fh:
        fh.write(ACL)
    with open(os.path.join(node.etc, "emqx.conf"), "a") as fh:
        fh.write(authz_conf(aclf, deny_action="disconnect"))
    node.start()
    c, rc = client(node, "dev1", 5)
    assert rc == 0                               # no authenticator: anonymous is allowed
    c.send(subscribe_pkt(1, "#", 0, 5))
    assert [p[0] for p in c.expect_closed()] == [14]   # DISCONNECT 0x87, no SUBACK
    c, rc = client(node, "dev1", 5)
    c.send(pub_pkt("devices/other/t", b"x", 1, 7, 5))
    got = c.expect_closed()
    assert got and got[0][0] == 14 and got[0][2][0] == 0x87


def test_bootstrap_override_false_on_restart(nodes):
    node = nodes.one()
    path = write_users(node, [{"user_id": "alice", "password_hash": sha256_suffix("old-pw", "s1"), "salt": "s1"}])
    with open(os.path.join(node.etc, "emqx.conf"), "a") as fh:
        fh.write(authn_conf(path))
    node.start()
    c, rc = client(node, "a", 4, "alice", "old-pw")
    assert rc == 0
    c.close()
    node.stop()
    write_users(node, [{"user_id": "alice", "password_hash": sha256_suffix("new-pw", "s9"), "salt": "s9"},
                       {"user_id": "bob", "password_hash": sha256_suffix("bob-pw", "s3"), "salt": "s3"}])
    node.start()
    assert client(node, "a", 4, "alice", "old-pw")[1] == 0     # existing user: not changed
    assert client(node, "a2", 4, "alice", "new-pw")[1] == 4
    assert client(node, "b", 4, "bob", "bob-pw")[1] == 0       # a new user is added
    assert "import_an_exists_userid_into_authentication_database_failed" in node.logtext()


def test_bootstrap_csv_plain(nodes):
    node = nodes.one()
    path = os.path.join(node.etc, "boot.csv")
    with open(path, "w") as fh:
        fh.write("user_id,password,is_superuser\r\ncsv1,pw-one,true\n\ncsv2,pw-two,false\n")
    with open(os.path.join(node.etc, "emqx.conf"), "a") as fh:
        fh.write(authn_conf(path, algo="{name = pbkdf2, mac_fun = sha256, iterations = 10}", btype="plain"))
    node.start()
    assert client(node, "x", 4, "csv1", "pw-one")[1] == 0
    assert client(node, "y", 4, "csv2", "pw-one")[1] == 4
    status, body = node.api_json("GET", USERS)
    assert status == 200
    assert body == {"data": [{"user_id": "csv2", "is_superuser": False}, {"user_id": "csv1", "is_superuser": True}],
                    "meta": {"page": 1, "limit": 100, "count": 2, "hasnext": False}}


# =============================================================================================
# REST API
# =============================================================================================
def test_rest_import_list_crud(secured, nodes):
    node = secured
    status, body = node.api_json("GET", "/api/v5/authentication")
    assert status == 200 and [a["id"] for a in body] == [AID]
    assert body[0]["password_hash_algorithm"] == {"name": "sha256", "salt_position": "suffix"}
    # import (JSON body, plain): override = true
    imp = "/api/v5/authentication/%s/import_users?type=plain" % urllib.parse.quote(AID)
    status, body = node.api_json("POST", imp, [
        {"user_id": "alice", "password": "changed", "is_superuser": False},
        {"user_id": "new/one", "password": "n1", "is_superuser": "true"},
        {"user_id": "svc", "password": "svc-pw", "is_superuser": True}])
    assert status == 200
    assert body == {"total": 3, "success": 1, "override": 2, "skipped": 0, "failed": 0}
    assert client(node, "a", 4, "alice", "changed")[1] == 0
    assert client(node, "a", 4, "alice", "alice-pw")[1] == 4
    # hash import of a record that is already there: skipped
    h = sha256_suffix("h-pw", "zz")
    hashed = "/api/v5/authentication/%s/import_users?type=hash" % urllib.parse.quote(AID)
    rec = [{"user_id": "h1", "password_hash": h, "salt": "zz"}]
    assert node.api_json("POST", hashed, rec)[1]["success"] == 1
    assert node.api_json("POST", hashed, rec)[1] == {"total": 1, "success": 0, "override": 0, "skipped": 1, "failed": 0}
    assert node.api_json("POST", hashed, [{"user_id": "h2"}]) == (
        400, {"code": "BAD_REQUEST", "message": '"hash_import_requires_password_hash_field"'})
    assert node.api_json("POST", hashed, []) == (400, {"code": "BAD_REQUEST", "message": "empty_users"})
    # list: reverse key order, paging
    status, body = node.api_json("GET", USERS + "?page=1&limit=2")
    assert status == 200
    assert [u["user_id"] for u in body["data"]] == ["svc", "new/one"]
    assert body["meta"] == {"page": 1, "limit": 2, "count": 4, "hasnext": True}
    status, body = node.api_json("GET", USERS + "?like_user_id=e")
    assert sorted(u["user_id"] for u in body["data"]) == ["alice", "new/one"]
    assert "count" not in body["meta"]
    # one user: URL-encoded id
    one = USERS + "/" + urllib.parse.quote("new/one", safe="")
    assert node.api_json("GET", one) == (200, {"user_id": "new/one", "is_superuser": True})
    assert node.api_json("PUT", one, {"is_superuser": False}) == (200, {"user_id": "new/one", "is_superuser": False})
    assert node.api_json("DELETE", one) == (204, None)
    assert node.api_json("GET", one) == (404, {"code": "NOT_FOUND", "message": "User not found"})
    assert node.api_json("DELETE", one)[0] == 404
    # create
    assert node.api_json("POST", USERS, {"user_id": "carol", "password": "c-pw"}) == (
        201, {"user_id": "carol", "is_superuser": False})
    assert node.api_json("POST", USERS, {"user_id": "carol", "password": "x"}) == (
        409, {"code": "ALREADY_EXISTS", "message": "User already exists"})
    assert node.api_json("POST", USERS, {"user_id": "dave"}) == (
        400, {"code": "BAD_REQUEST", "message": "Missing required parameter: password"})
    assert client(node, "c", 5, "carol", "c-pw")[1] == 0
    # unknown authenticator
    bad = "/api/v5/authentication/password_based:http/import_users"
    assert node.api_json("POST", bad, rec) == (
        404, {"code": "NOT_FOUND", "message": "Authenticator 'password_based:http' does not exist"})
    # a node without authenticators: no chain
    other = nodes.one().start()
    assert other.api_json("GET", USERS) == (
        404, {"code": "NOT_FOUND", "message": "Authenticator not found in the 'global' scope"})
    assert other.api_json("GET", "/api/v5/authentication") == (200, [])


def test_users_are_cluster_wide(nodes):
    n1, n2 = nodes(2)
    for n in (n1, n2):
        with open(os.path.join(n.etc, "emqx.conf"), "a") as fh:
            fh.write(authn_conf(""))
        n.start()
    assert n1.api_json("POST", USERS, {"user_id": "u1", "password": "p1"})[0] == 201
    assert n2.api_json("POST", USERS, {"user_id": "local-only", "password": "p"})[0] == 201
    rc, out, _ = n2.ctl("cluster", "join", n1.name)
    assert "successfully" in out, out
    # the joiner takes the cluster's users (its own table is replaced)
    assert client(n2, "x", 4, "u1", "p1")[1] == 0
    assert client(n2, "y", 4, "local-only", "p")[1] == 5
    assert n2.api_json("DELETE", USERS + "/u1")[0] == 204
    wait_for(lambda: client(n1, "z", 4, "u1", "p1")[1] == 5, what="delete replicated")


# =============================================================================================
# default authorization, PROXY protocol
# =============================================================================================
def test_default_authorization_is_etc_acl_conf(nodes):
    node = nodes.one().start()
    far, rc = client(node, "far", 5, src="127.0.0.5")
    assert rc == 0
    assert sub(far, 1, "#", 0, 5) == 0x87
    assert sub(far, 2, "+/#", 0, 5) == 0x87
    assert sub(far, 3, "$SYS/brokers", 0, 5) == 0x87
    assert sub(far, 4, "a/#", 0, 5) == 0
    near, rc = client(node, "near", 5, src="127.0.0.1")
    assert sub(near, 1, "#", 0, 5) == 0
    dash, rc = client(node, "dash", 4, username="dashboard", src="127.0.0.5")
    assert sub(dash, 1, "$SYS/#", 0, 4) == 0 and sub(dash, 2, "#", 0, 4) == 0x80


def test_peer_cert_cn_via_proxy_v2_and_username_rule(nodes):
    node = nodes.one(extra="""
listeners.tcp.default.proxy_protocol = true
mqtt.peer_cert_as_username = cn
""")
    aclf = os.path.join(node.etc, "cn.conf")
    with open(aclf, "w") as fh:
        fh.write('{allow, all, publish, ["devices/${username}/#"]}.\n{deny, all, publish, ["#"]}.\n'
                 '{allow, all, subscribe, ["devices/${cert_common_name}/#"]}.\n{deny, all}.\n')
    with open(os.path.join(node.etc, "emqx.conf"), "a") as fh:
        fh.write(authz_conf(aclf))
    node.start()
    pp = proxy_v2("10.1.2.3", "10.0.0.1", 40000, 1883, cn="device-42")
    sock = socket.create_connection((node.host, 1883), timeout=5)
    c = RawClient(0, prefix=pp, sock=sock)
    c.send(connect_pkt("dev", 5, username="ignored"))
    assert c.read()[2][1] == 0
    assert puback(c, "devices/device-42/t", 1, 5) == (4, 0)
    assert puback(c, "devices/ignored/t", 2, 5) == (4, 0x87)
    assert sub(c, 3, "devices/device-42/cmd", 1, 5) == 1
    assert sub(c, 4, "devices/x/cmd", 1, 5) == 0x87
    status, body = node.api_json("GET", "/api/v5/clients/dev")
    assert status == 200 and body["username"] == "device-42" and body["ip_address"] == "10.1.2.3"
    # without the SSL TLV there is no certificate: the CONNECT user name is used, ${cert_common_name}
    # cannot be rendered
    sock = socket.create_connection((node.host, 1883), timeout=5)
    c2 = RawClient(0, prefix=proxy_v2("10.1.2.4", "10.0.0.1", 40001, 1883), sock=sock)
    c2.send(connect_pkt("dev2", 5, username="plain"))
    assert c2.read()[2][1] == 0
    assert puback(c2, "devices/plain/t", 1, 5) == (4, 0)
    assert sub(c2, 2, "devices/plain/cmd", 0, 5) == 0x87


# =============================================================================================
# config checks and the ACL file reader
# =============================================================================================
@pytest.mark.parametrize("conf, path", [
    ({"authentication": [{"mechanism": "password_based", "backend": "built_in_database", "bogus": 1}]},
     "authentication.1"),
    ({"authentication": [{"mechanism": "password_based", "backend": "built_in_database",
                          "password_hash_algorithm": {"name": "sha1"}}]}, "authentication.1.password_hash_algorithm.name"),
    ({"authentication": [{"mechanism": "password_based", "backend": "built_in_database",
                          "password_hash_algorithm": {"name": "bcrypt"}}]}, "authentication.1.password_hash_algorithm.name"),
    ({"authentication": [{"mechanism": "password_based", "backend": "built_in_database",
                          "password_hash_algorithm": {"name": "pbkdf2", "mac_fun": "sha256"}}]},
     "authentication.1.password_hash_algorithm.iterations"),
    ({"authentication": [{"backend": "built_in_database"}]}, "authentication.1"),
    ({"authentication": [{"mechanism": "password_based", "backend": "built_in_database", "bootstrap_type": "x"}]},
     "authentication.1.bootstrap_type"),
    ({"authorization": {"sources": [{"type": "file", "rules": "{allow, all}."}]}}, "authorization.sources.1"),
    ({"authorization": {"sources": [{"type": "file", "path": "/a", "rules": "x"}]}}, "authorization.sources.1"),
    ({"authorization": {"sources": [{"path": "/a"}]}}, "authorization.sources.1"),
    ({"authorization": {"sources": [{"type": "file", "path": "/a"}, {"type": "file", "path": "/b"}]}},
     "authorization.sources"),
    ({"authorization": {"no_match": "maybe"}}, "authorization.no_match"),
])
def test_schema_refuses(conf, path):
    with pytest.raises(schema.ConfigError) as e:
        schema.check(conf)
    assert e.value.key_path().startswith(path), e.value


def test_schema_defaults():
    c = schema.check({"authentication": {"mechanism": "password_based", "backend": "built_in_database"}})
    a = c["authentication"][0]
    assert a["password_hash_algorithm"] == {"name": "sha256", "salt_position": "prefix"}
    assert (a["user_id_type"], a["bootstrap_type"], a["enable"]) == ("username", "plain", True)
    assert a["bootstrap_file"] == "${EMQX_ETC_DIR}/auth-built-in-db-bootstrap.csv"
    assert c["authorization"]["sources"] == [{"type": "file", "enable": True, "path": "${EMQX_ETC_DIR}/acl.conf"}]
    assert schema.check({})["authentication"] == []


@pytest.mark.parametrize("text, kind", [
    (b"{allow, all}", "bad_acl_file_content"),                              # no final dot
    (b"{allow, and, publish, [\"t\"]}.", "bad_acl_file_content"),           # and is an operator
    (b"{permit, all}.", "invalid_authorization_rule"),
    (b"{permit, all, publish, [\"t\"]}.", "invalid_authorization_permission"),
    (b"{allow, {user, x}, publish, [\"t\"]}.", "invalid_authorization_rule"),
    (b"{allow, nobody, publish, [\"t\"]}.", "invalid_client_match_condition"),
    (b"{allow, all, pub, [\"t\"]}.", "invalid_authorization_action"),
    (b"{allow, all, {publish, [{qos, 3}]}, [\"t\"]}.", "invalid_authorization_qos"),
    (b"{allow, all, {publish, [{retain, yes}]}, [\"t\"]}.", "invalid_authorization_retain"),
    (b"{allow, {ipaddr, \"10.0.0.300\"}, all, [\"t\"]}.", "invalid_client_match_condition"),
])
def test_acl_refused(tmp_path, text, kind):
    p = tmp_path / "acl.conf"
    p.write_bytes(text)
    with pytest.raises(acl.AclError) as e:
        acl.load_rules(str(p))
    assert e.value.kind == kind


def test_acl_matching(tmp_path):
    p = tmp_path / "acl.conf"
    p.write_text("""% comment
{allow, {'and', [{clientid, {re, "^dev-"}}, {ipaddrs, ["10.0.0.0/8"]}]}, {publish, [{qos, [0, 1]}, {retain, false}]},
 ["d/${clientid}/#", {eq, "x/+"}, "eq y/#"]}.
{allow, {'or', [{user, "admin"}, {client, "c1"}]}, subscribe, all}.
{deny, all}.
""")
    rules = acl.load_rules(str(p))
    dev = {"clientid": "dev-1", "username": None, "peerhost": "10.1.1.1"}
    pub = {"type": "publish", "qos": 1, "retain": False}
    assert acl.matches(dev, pub, "d/dev-1/a/b", rules) == "allow"
    assert acl.matches(dev, dict(pub, qos=2), "d/dev-1/a", rules) == "deny"
    assert acl.matches(dev, dict(pub, retain=True), "d/dev-1/a", rules) == "deny"
    assert acl.matches(dev, pub, "x/+", rules) == "allow" and acl.matches(dev, pub, "x/a", rules) == "deny"
    assert acl.matches(dev, pub, "y/#", rules) == "allow"
    assert acl.matches(dict(dev, peerhost="11.0.0.1"), pub, "d/dev-1/a", rules) == "deny"
    adm = {"clientid": "z", "username": "admin", "peerhost": "1.1.1.1"}
    assert acl.matches(adm, {"type": "subscribe", "qos": 0}, "$SYS/brokers", rules) == "allow"
    assert acl.matches(adm, pub, "t", rules) == "deny"
    # ${username} of a client without one renders as "undefined" (emqx_template lookup of the atom key)
    p.write_text('{allow, all, publish, ["u/${username}"]}.\n')
    r2 = acl.load_rules(str(p))
    assert acl.matches({"clientid": "c", "username": None}, pub, "u/undefined", r2) == "allow"


def test_password_hashing_matches_emqx_passwd():
    for name in ("md5", "sha", "sha256", "sha512"):
        for pos in ("prefix", "suffix", "disable"):
            algo = {"name": name, "salt_position": pos}
            h, salt = authn.hash_password(algo, "pw")
            data = {"prefix": salt + b"pw", "suffix": b"pw" + salt, "disable": b"pw"}[pos]
            assert h == hashlib.new({"sha": "sha1"}.get(name, name), data).hexdigest().encode()
            assert authn.check_password(algo, salt, h.upper(), b"pw")      # caseless compare
            assert not authn.check_password(algo, salt, h, b"pW")
    algo = {"name": "pbkdf2", "mac_fun": "sha512", "iterations": 3, "dk_length": 16}
    h, salt = authn.hash_password(algo, "pw")
    assert h == hashlib.pbkdf2_hmac("sha512", b"pw", salt, 3, 16).hex().encode()
    assert authn.hash_password({"name": "plain", "salt_position": "prefix"}, "pw") == (b"pw", b"")
    assert authn.parse_csv(b"user_id, password\n a,,b \n") == [{"user_id": "a", "password": "b"}]
    with pytest.raises(authn.ImportError_):
        authn.parse_csv(b"user_id,password,is_superuser\nx,y\n")


def test_boot_refused_on_bad_acl_file(nodes):
    node = nodes.one()
    aclf = os.path.join(node.etc, "bad.conf")
    with open(aclf, "w") as fh:
        fh.write("{allow, all, publish, [\"t\"]}\n")
    with open(os.path.join(node.etc, "emqx.conf"), "a") as fh:
        fh.write(authz_conf(aclf))
    node.start(wait=False)
    assert node.proc.wait(20) == 1
    assert "authorization.sources.1.path" in node.logtext() + node.console()
    os.unlink(os.path.join(node.etc, "acl.conf"))
    node.write_conf(open(os.path.join(node.etc, "emqx.conf")).read().replace(authz_conf(aclf), ""))
    node.start(wait=False)
    assert node.proc.wait(20) == 1
    assert "failed_to_read_acl_file" in node.logtext() + node.console()
    time.sleep(0)
