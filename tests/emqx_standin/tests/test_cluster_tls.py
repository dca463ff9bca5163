"""Erlang distribution over TLS (cluster.proto_dist = inet_tls, -ssl_dist_optfile) and gen_rpc TLS
(rpc.protocol = ssl) as strict as EMQX 5.8.9 / OTP 26 / gen_rpc 3.5.1."""

import json
import os
import socket
import ssl
import subprocess
import threading
import time

import paho.mqtt.client as mqtt
import pytest

from emqx_standin import erlfmt, ssldist

from standin import STANDIN_DIR, wait_for


def _openssl(cwd, *args):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True)


def make_ca(d, name):
    os.makedirs(d, exist_ok=True)
    _openssl(d, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=%s" % name,
             "-keyout", name + ".key", "-out", name + ".pem")
    return os.path.join(d, name + ".pem")


def make_node_cert(d, ca, name, ip):
    """A node certificate for both purposes (it serves and connects), with the node's address as SAN."""
    ca_name = os.path.basename(ca)[:-4]
    with open(os.path.join(d, name + ".cnf"), "w") as fh:
        fh.write("[ext]\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n"
                 "subjectAltName=IP:%s\n" % ip)
    _openssl(d, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=%s" % name, "-keyout", name + "-key.pem",
             "-out", name + ".csr")
    _openssl(d, "x509", "-req", "-in", name + ".csr", "-CA", ca, "-CAkey", ca_name + ".key", "-CAcreateserial",
             "-days", "30", "-extfile", name + ".cnf", "-extensions", "ext", "-out", name + "-cert.pem")
    return os.path.join(d, name + "-cert.pem"), os.path.join(d, name + "-key.pem")


def strict_optfile(path, cert, key, ca, extra=""):
    """What the role writes: mutual verification."""
    with open(path, "w") as fh:
        fh.write("""%% written by the test
[{server,
  [{certfile, "%(c)s"}, {keyfile, "%(k)s"}, {cacertfile, "%(ca)s"},
   {verify, verify_peer}, {fail_if_no_peer_cert, true}, {secure_renegotiate, true},
   {versions, ['tlsv1.3', 'tlsv1.2']}%(x)s]},
 {client,
  [{certfile, "%(c)s"}, {keyfile, "%(k)s"}, {cacertfile, "%(ca)s"},
   {verify, verify_peer}, {secure_renegotiate, true}, {depth, 10}]}].
""" % dict(c=cert, k=key, ca=ca, x=extra))
    return path


@pytest.fixture
def pki(tmp_path):
    d = str(tmp_path / "pki")
    ca = make_ca(d, "clusterca")
    other = make_ca(d, "otherca")
    return d, ca, other


def tls_node(nodes, pki, ca_for_cert=None, rpc=True, optfile_in_env=True, extra_conf="", trust=None):
    d, ca, _ = pki
    ca = trust or ca
    n = nodes.one()
    cert, key = make_node_cert(d, ca_for_cert or ca, n.name.replace("@", "_"), n.host)
    optfile = strict_optfile(os.path.join(n.dir, "ssl_dist.conf"), cert, key, ca)
    conf = "\ncluster.proto_dist = inet_tls\n" + extra_conf
    if rpc:
        conf += ('rpc { protocol = ssl, certfile = "%s", keyfile = "%s", cacertfile = "%s" }\n'
                 % (cert, key, ca))
    n.write_conf(open(os.path.join(n.etc, "emqx.conf")).read() + conf)
    n.boot_env = {"EMQX_SSL_DIST_OPTFILE": optfile} if optfile_in_env else {}
    if not optfile_in_env:
        os.replace(optfile, os.path.join(n.etc, "ssl_dist.conf"))
    n.cert, n.key, n.optfile = cert, key, (optfile if optfile_in_env else os.path.join(n.etc, "ssl_dist.conf"))
    return n


def running(node):
    return node.cluster_status()["running_nodes"]


def boot_fails(node, env=None, timeout=20):
    node.start(wait=False, env=env)
    rc = node.proc.wait(timeout)
    node.proc = None
    return rc, node.console()


def test_two_tls_nodes_cluster_and_route(nodes, pki):
    # n1 reads the options file from EMQX_SSL_DIST_OPTFILE (the unit's drop-in), n2 from etc/ssl_dist.conf
    n1 = tls_node(nodes, pki)
    n2 = tls_node(nodes, pki, optfile_in_env=False)
    n1.start(env=n1.boot_env)
    n2.start(env=n2.boot_env)
    # the CLI has no EMQX_SSL_DIST_OPTFILE: it uses the running node's file, as bin/emqx takes it from `ps -ef`
    rc, out, err = n2.ctl("cluster", "join", n1.name)
    assert rc == 0 and out.startswith("Join the cluster successfully."), (out, err)
    wait_for(lambda: running(n1) == sorted([n1.name, n2.name]) and running(n2) == running(n1), timeout=20,
             what="TLS cluster of 2")

    got = []
    ev = threading.Event()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="tls-sub", protocol=mqtt.MQTTv311)
    sub.on_message = lambda _c, _u, m: (got.append(m.payload), ev.set())
    sub.connect(n1.host, 1883)
    sub.loop_start()
    sub.subscribe("tls/t", qos=1).__class__  # noqa
    time.sleep(1.0)
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="tls-pub", protocol=mqtt.MQTTv311)
    pub.connect(n2.host, 1883)
    pub.loop_start()
    pub.publish("tls/t", b"over-tls", qos=1).wait_for_publish(5)
    assert ev.wait(10), "PUBLISH not forwarded over gen_rpc TLS"
    assert got == [b"over-tls"]
    for c in (sub, pub):
        c.loop_stop()
        c.disconnect()


def test_dist_port_speaks_tls_only(nodes, pki):
    n1 = tls_node(nodes, pki)
    n1.start(env=n1.boot_env)
    port = 4370
    hello = json.dumps({"t": "hello", "from": "probe@%s" % n1.host, "to": n1.name, "hidden": True}).encode() + b"\n"
    # plaintext: no protocol answer
    with socket.create_connection((n1.host, port), timeout=5) as s:
        s.sendall(hello)
        s.settimeout(5)
        try:
            data = s.recv(4096)
        except (socket.timeout, ConnectionResetError):
            data = b""
    assert b"challenge" not in data
    # TLS without a client certificate: the server (verify_peer, fail_if_no_peer_cert) refuses it
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    answer = b""
    try:
        with socket.create_connection((n1.host, port), timeout=5) as raw:
            with ctx.wrap_socket(raw) as s:
                s.sendall(hello)
                answer = s.recv(4096)
    except (ssl.SSLError, OSError):
        pass
    assert b"challenge" not in answer
    # while a peer with a certificate of the cluster's CA gets the cookie challenge
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.load_verify_locations(pki[1])
    cctx.load_cert_chain(n1.cert, n1.key)
    with socket.create_connection((n1.host, port), timeout=5) as raw:
        with cctx.wrap_socket(raw, server_hostname=n1.host) as s:
            s.sendall(hello)
            assert json.loads(s.makefile("rb").readline())["t"] == "challenge"


def test_node_with_another_ca_cannot_join(nodes, pki):
    n1 = tls_node(nodes, pki)
    # its certificate is signed by another CA; it trusts both CAs (so its own CLI reaches it: nodetool uses the
    # same options file), the cluster only its own
    bundle = os.path.join(pki[0], "both.pem")
    with open(bundle, "w") as fh:
        fh.write(open(pki[1]).read() + open(pki[2]).read())
    bad = tls_node(nodes, pki, ca_for_cert=pki[2], trust=bundle)
    n1.start(env=n1.boot_env)
    bad.start(env=bad.boot_env)
    rc, out, _ = bad.ctl("cluster", "join", n1.name)
    # mria:join/1 -> join1/2: the peer is not reachable over the distribution -> node_down; exit 0 (5.8)
    assert rc == 0
    assert out == "Failed to join the cluster: {node_down,%s}\n" % erlfmt.atom(n1.name)
    # and the other way round: n1 cannot reach it either
    rc, out, _ = n1.ctl("cluster", "join", bad.name)
    assert out == "Failed to join the cluster: {node_down,%s}\n" % erlfmt.atom(bad.name)
    assert running(n1) == [n1.name]
    assert bad.name not in json.dumps(n1.cluster_status())
    assert running(bad) == [bad.name]


def test_optfile_syntax_error_or_unknown_option_refuses_boot(nodes, pki):
    n = tls_node(nodes, pki)
    with open(n.optfile, "w") as fh:
        fh.write('[{server, [{verify, verify_none}]}, {client, [{verify, verify_none}]}]\n')  # no final dot
    rc, out = boot_fails(n, env=n.boot_env)
    assert rc == 1
    assert "bad_ssl_dist_optfile" in out and n.optfile in out
    strict_optfile(n.optfile, n.cert, n.key, pki[1], extra=", {no_such_option, true}")
    rc, out = boot_fails(n, env=n.boot_env)
    assert rc == 1 and "no_such_option" in out
    # a missing file stops it too
    rc, out = boot_fails(n, env={"EMQX_SSL_DIST_OPTFILE": n.optfile + ".missing"})
    assert rc == 1 and "{bad_ssl_dist_optfile,\"%s.missing\"}" % n.optfile in out
    # verify_peer on the client side needs a CA (ssl: incompatible options); the client default is verify_peer
    with open(n.optfile, "w") as fh:
        fh.write('[{server, [{verify, verify_none}]}, {client, []}].\n')
    rc, out = boot_fails(n, env=n.boot_env)
    assert rc == 1 and "{options,incompatible,[{verify,verify_peer},{cacerts,undefined}]}" in out


def test_space_in_optfile_path_refuses_boot(nodes, pki, tmp_path):
    n = tls_node(nodes, pki)
    spaced = tmp_path / "with space"
    spaced.mkdir()
    path = str(spaced / "ssl_dist.conf")
    os.replace(n.optfile, path)
    rc, out, err = n.cli("foreground", env={"EMQX_SSL_DIST_OPTFILE": path}, timeout=30)
    assert rc == 1
    assert err.splitlines()[:3] == [
        "ERROR: Got space in: %s" % path,
        "ERROR: No space is allowed for Erlang distribution over SSL option file path.",
        "ERROR: Configure it from environment variable EMQX_SSL_DIST_OPTFILE."]
    assert err.splitlines()[3].startswith("ERROR: Or make sure emqx root path '")


def test_default_package_optfile_is_verify_none_and_clusters(nodes, pki, certs):
    with open(os.path.join(STANDIN_DIR, "etc", "ssl_dist.conf")) as fh:
        template = fh.read()
    opts = ssldist.read_optfile(os.path.join(STANDIN_DIR, "etc", "ssl_dist.conf"))
    assert opts["server"]["verify"] == "verify_none" and opts["client"]["verify"] == "verify_none"
    assert opts["server"]["fail_if_no_peer_cert"] is False
    ns = []
    for _ in range(2):
        n = nodes.one(certs=certs)
        with open(os.path.join(n.etc, "ssl_dist.conf"), "w") as fh:
            fh.write(template.replace("{{ platform_etc_dir }}", n.etc))
        n.write_conf(open(os.path.join(n.etc, "emqx.conf")).read() + "\ncluster.proto_dist = inet_tls\n")
        ns.append(n.start())
    rc, out, _ = ns[1].ctl("cluster", "join", ns[0].name)
    assert out.startswith("Join the cluster successfully."), out
    # verify_none: a TLS client without any certificate gets the cookie challenge
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    hello = json.dumps({"t": "hello", "from": "probe@x", "to": ns[0].name, "hidden": True}).encode() + b"\n"
    with socket.create_connection((ns[0].host, 4370), timeout=5) as raw:
        with ctx.wrap_socket(raw) as s:
            s.sendall(hello)
            assert json.loads(s.makefile("rb").readline())["t"] == "challenge"


def test_rpc_ssl_without_cacertfile_refuses_boot(nodes, pki):
    d, ca, _ = pki
    n = nodes.one()
    cert, key = make_node_cert(d, ca, "rpc-only", n.host)
    n.write_conf(open(os.path.join(n.etc, "emqx.conf")).read()
                 + '\nrpc { protocol = ssl, certfile = "%s", keyfile = "%s" }\n' % (cert, key))
    rc, out = boot_fails(n)
    assert rc == 1
    assert "{options,incompatible,[{verify,verify_peer},{cacerts,undefined}]}" in out


def test_rpc_ssl_peer_of_another_ca_gets_no_forwards(nodes, pki):
    """Distribution works (inet_tcp), but the gen_rpc certificates come from different CAs: both sides verify
    the peer, so no PUBLISH crosses."""
    d, ca, other = pki
    ns = []
    for i, cafile in enumerate((ca, other)):
        n = nodes.one()
        cert, key = make_node_cert(d, cafile, "rpc%d" % i, n.host)
        n.write_conf(open(os.path.join(n.etc, "emqx.conf")).read()
                     + '\nrpc { protocol = ssl, certfile = "%s", keyfile = "%s", cacertfile = "%s" }\n'
                     % (cert, key, ca))
        ns.append(n.start())
    rc, out, _ = ns[1].ctl("cluster", "join", ns[0].name)
    assert out.startswith("Join the cluster successfully."), out
    got = []
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="s", protocol=mqtt.MQTTv311)
    sub.on_message = lambda _c, _u, m: got.append(m.payload)
    sub.connect(ns[0].host, 1883)
    sub.loop_start()
    sub.subscribe("x/y", qos=1)
    time.sleep(1.0)
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="p", protocol=mqtt.MQTTv311)
    pub.connect(ns[1].host, 1883)
    pub.loop_start()
    pub.publish("x/y", b"nope", qos=1).wait_for_publish(5)
    time.sleep(3)
    assert got == []
    for c in (sub, pub):
        c.loop_stop()
        c.disconnect()
