"""REST API on the dashboard listener: /status, auth, login, default password, clients + PROXY."""

import json
import socket
import struct

from standin import wait_for


def test_status_text_and_json_without_auth(nodes):
    n = nodes.one()
    n.start()
    for path in ("/status", "/api/v5/status"):
        st, headers, body = n.api("GET", path, auth=None)
        assert st == 200
        assert body == ("Node %s is started\nemqx is running" % n.name).encode()
        assert headers["retry-after"] == "15"
        assert headers["content-type"].startswith("text/plain")
    st, headers, body = n.api("GET", "/api/v5/status?format=json", auth=None)
    assert st == 200 and headers["content-type"] == "application/json"
    # emqx_mgmt_api_status.erl: exactly these four keys
    assert json.loads(body) == {"node_name": n.name, "rel_vsn": "v5.8.9",
                                "broker_status": "started", "app_status": "running"}
    st, headers, body = n.api("GET", "/status?format=json", auth=None)
    assert st == 200 and sorted(json.loads(body)) == ["app_status", "broker_status", "node_name", "rel_vsn"]


def test_api_needs_a_key(nodes):
    n = nodes.one(api_keys=("ops:s3cret:administrator", "ops2:s3cret2"))
    n.start()
    st, headers, body = n.api("GET", "/api/v5/nodes", auth=None)
    assert st == 401 and json.loads(body) == {"code": "AUTHORIZATION_HEADER_ERROR",
                                              "message": "Support authorization: basic/bearer "}
    assert headers["www-authenticate"] == 'Basic Realm="emqx-dashboard"'
    for auth in (("ops", "wrong"), ("nobody", "s3cret")):
        st, headers, body = n.api("GET", "/api/v5/nodes", auth=auth)
        assert st == 401, auth
        assert json.loads(body) == {"code": "BAD_API_KEY_OR_SECRET", "message": "Check api_key/api_secret"}
        assert headers["www-authenticate"] == 'Basic Realm="emqx-dashboard"'
    st, body = n.api_json("GET", "/api/v5/nodes", auth="Bearer not-a-token")
    assert st == 401 and body["code"] == "BAD_TOKEN"
    assert n.api_json("GET", "/api/v5/nodes", auth=("ops", "s3cret"))[0] == 200
    assert n.api_json("GET", "/api/v5/nodes", auth=("ops2", "s3cret2"))[0] == 200
    # unknown paths are 404 before any auth (emqx_dashboard_not_found)
    assert n.api_json("GET", "/api/v5/no/such/thing", auth=None)[0] == 404


def test_bootstrap_file_has_no_comments(nodes):
    # a "comment" with a colon is a key like any other line (key "# ops key for ansible"); a line
    # without one stops loading there: "ops2" after it is not loaded
    n = nodes.one(api_keys=("# ops key for ansible: do not edit", "ops:s3cret", "bad line", "ops2:s3cret2"))
    n.start()
    assert n.api_json("GET", "/api/v5/nodes", auth=("ops", "s3cret"))[0] == 200
    assert n.api_json("GET", "/api/v5/nodes", auth=("# ops key for ansible", " do not edit"))[0] == 200
    assert n.api_json("GET", "/api/v5/nodes", auth=("ops2", "s3cret2"))[0] == 401
    assert "msg: failed_to_load_bootstrap_file" in n.logtext()


def test_login_and_default_password_first_boot_only(nodes):
    n = nodes.one(extra='dashboard.default_password = "first-Boot1"\n')
    n.start()
    ok = {"username": "admin", "password": "first-Boot1"}
    st, body = n.api_json("POST", "/api/v5/login", ok, auth=None)
    # open source: filter_result drops `role`; emqx_release:edition() is `ce`
    assert st == 200 and sorted(body) == ["license", "token", "version"]
    assert body["version"] == "5.8.9" and body["license"] == {"edition": "ce"}
    # the token works on the API too
    assert n.api_json("GET", "/api/v5/nodes", auth="Bearer " + body["token"])[0] == 200
    st, body = n.api_json("POST", "/api/v5/login", {"username": "admin", "password": "nope"}, auth=None)
    assert st == 401 and body == {"code": "BAD_USERNAME_OR_PWD", "message": "Auth failed"}
    # changing default_password later does nothing
    n.stop()
    conf = open(n.etc + "/emqx.conf").read().replace("first-Boot1", "second-Boot2")
    n.write_conf(conf)
    n.start()
    assert n.api_json("POST", "/api/v5/login", ok, auth=None)[0] == 200
    assert n.api_json("POST", "/api/v5/login", {"username": "admin", "password": "second-Boot2"},
                      auth=None)[0] == 401
    # emqx ctl admins passwd changes it
    assert n.ctl("admins", "passwd", "admin", "third-Boot3") == (0, "ok\n", "")
    assert n.api_json("POST", "/api/v5/login", ok, auth=None)[0] == 401
    assert n.api_json("POST", "/api/v5/login", {"username": "admin", "password": "third-Boot3"},
                      auth=None)[0] == 200


def _mqtt_connect(clientid, username=None):
    var = b"\x00\x04MQTT\x04" + bytes([0x02 | (0x80 if username else 0)]) + b"\x00\x3c"
    payload = struct.pack("!H", len(clientid)) + clientid.encode()
    if username:
        payload += struct.pack("!H", len(username)) + username.encode()
    body = var + payload
    return b"\x10" + bytes([len(body)]) + body


def _connack(sock):
    sock.settimeout(5)
    data = b""
    while len(data) < 4:
        chunk = sock.recv(4 - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _proxy_v2(src, dst, sport, dport, tlvs=b""):
    addr = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    body = addr + tlvs
    return b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body


def _ssl_cn_tlv(cn):
    sub = bytes([0x22]) + struct.pack("!H", len(cn)) + cn.encode()
    value = bytes([0x01 | 0x02]) + struct.pack("!I", 0) + sub
    return bytes([0x20]) + struct.pack("!H", len(value)) + value


def test_clients_show_the_proxy_protocol_address(nodes):
    a, b = nodes(2, extra="listeners.tcp.default.proxy_protocol = true\nmqtt.peer_cert_as_username = cn\n")
    a.start()
    b.start()
    assert b.ctl("cluster", "join", a.name)[1].startswith("Join the cluster successfully.")
    s1 = socket.create_connection((a.host, 1883))
    s1.sendall(b"PROXY TCP4 203.0.113.7 %s 51234 1883\r\n" % a.host.encode() + _mqtt_connect("dev-v1"))
    assert _connack(s1) == b"\x20\x02\x00\x00"
    s2 = socket.create_connection((b.host, 1883))
    s2.sendall(_proxy_v2("198.51.100.20", b.host, 40000, 1883, _ssl_cn_tlv("device-cn-9"))
               + _mqtt_connect("dev-v2"))
    assert _connack(s2) == b"\x20\x02\x00\x00"
    # a client without the PROXY header is refused on this listener
    s3 = socket.create_connection((a.host, 1883))
    s3.sendall(_mqtt_connect("direct"))
    try:
        assert _connack(s3) != b"\x20\x02\x00\x00"
    except ConnectionResetError:
        pass
    try:
        def both():
            st, body = a.api_json("GET", "/api/v5/clients")
            assert st == 200
            return body if body["meta"]["count"] == 2 else None
        body = wait_for(both, what="two clients listed cluster-wide")
        by = {c["clientid"]: c for c in body["data"]}
        assert by["dev-v1"]["ip_address"] == "203.0.113.7" and by["dev-v1"]["port"] == 51234
        assert by["dev-v1"]["node"] == a.name
        assert by["dev-v2"]["ip_address"] == "198.51.100.20" and by["dev-v2"]["port"] == 40000
        assert by["dev-v2"]["node"] == b.name
        assert by["dev-v2"]["username"] == "device-cn-9"
        st, body = b.api_json("GET", "/api/v5/clients?clientid=dev-v1")
        assert st == 200 and [c["ip_address"] for c in body["data"]] == ["203.0.113.7"]
        st, body = a.api_json("GET", "/api/v5/clients/dev-v2")
        assert st == 200 and body["ip_address"] == "198.51.100.20"
        # the CLI lists the local clients only
        rc, out, _ = a.ctl("clients", "list")
        assert rc == 0 and out.startswith("Client(dev-v1, username=undefined, peername=203.0.113.7:51234, ")
        assert "dev-v2" not in out
    finally:
        for s in (s1, s2, s3):
            s.close()
    wait_for(lambda: a.ctl("clients", "list")[1] == "No clients.\n", what="no clients")


def test_status_503_while_booting_or_joining():
    from emqx_standin.api import ApiServer, Request

    class FakeNode:
        name = "emqx@10.0.0.1"
        conf = {"cluster": {"name": "emqxcl"}}
        status = "joining"
    api = ApiServer(FakeNode())
    for status in ("booting", "joining", "stopping"):
        FakeNode.status = status
        st, headers, body = api.status(Request("GET", "/status", {}, b"", None))
        assert (st, headers["retry-after"]) == (503, "15")
        assert body == b"Node emqx@10.0.0.1 is stopped\nemqx is not_running"
        st, headers, body = api.status(Request("GET", "/status?format=json", {}, b"", None))
        assert st == 503 and json.loads(body)["app_status"] == "not_running"
