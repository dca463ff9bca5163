"""Every emqx.conf that emq_node can write is accepted by EMQX's config schema (the stand-in's).

The role's own templates, defaults and internal vars render the file (and the secrets file it
includes) for a 3-node inventory under each variant below; the stand-in parses it as HOCON,
follows the include and checks the result against its EMQX 5.8 schema, which refuses unknown keys
and bad values exactly as EMQX refuses to boot on them. emqx.conf itself must hold no secret.
"""

import os
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "emqx_standin"))

from emqx_standin import acl, schema  # noqa: E402

SECRETS = {"emq_node_cookie": "render-test-cookie-123456", "emq_node_dashboard_password": "render-Test-pw"}
VARIANTS = {
    "static-default": {},
    "manual": {"emq_node_discovery": "manual"},
    "dns": {"emq_node_discovery": "dns", "emq_node_dns_name": "emqx.example.internal", "emq_node_dns_record_type": "a"},
    "etcd": {"emq_node_discovery": "etcd", "emq_node_etcd_server": "http://10.0.0.9:2379"},
    # a list is rendered as the comma-separated string EMQX needs (it refuses an array there)
    "etcd-server-list": {"emq_node_discovery": "etcd", "emq_node_etcd_server": ["http://10.0.0.9:2379", "http://10.0.0.10:2379"]},
    "explicit-seeds": {"emq_node_static_seeds": ["emqx@10.9.0.1", "emqx@10.9.0.2"]},
    "behind-lb-proxy-protocol": {"emq_node_proxy_protocol": True},
    "tls-listeners": {"emq_node_listeners": {
        "tcp": {"bind": "0.0.0.0:1883"},
        "ssl": {"enable": True, "bind": "0.0.0.0:8883", "certfile": "/etc/emqx/certs/cert.pem",
                "keyfile": "/etc/emqx/certs/key.pem", "cacertfile": "/etc/emqx/certs/ca.pem"},
        "ws": {"enable": False, "bind": "0.0.0.0:8083"},
        "wss": {"enable": True, "bind": "8084", "certfile": "/etc/emqx/certs/cert.pem", "keyfile": "/etc/emqx/certs/key.pem",
                "max_connections": "infinity"}}},
    # Direct access (issue 17): TLS on the nodes with the certificate the role installs from emq_node_tls_*.
    "direct-tls": {"emq_node_listeners": {"ssl": {"enable": True, "bind": "0.0.0.0:8883"},
                                          "wss": {"enable": True, "bind": "0.0.0.0:8084"}}},
    "enterprise-license": {"emq_node_version": "5.10.4", "emq_node_license_key": "MjIwMTExCjAKMTAK..."},
    "tuned-small": {"emq_node_target_connections": 50000, "emq_node_listener_defaults": {"acceptors": 64, "max_connections": 60000}},
    "extra-config": {"emq_node_extra_config": {"mqtt": {"max_packet_size": "2MB", "peer_cert_as_username": "cn"},
                                               "log": {"console": {"level": "debug"}},
                                               "listeners": {"tcp": {"default": {"proxy_protocol_timeout": "5s"}}}}},
    "dashboard-everywhere": {"emq_node_dashboard_bind": "0.0.0.0:18083"},
    "client-certificates": {"emq_node_authentication": "client_certificate"},
    "anonymous-no-acl": {"emq_node_allow_anonymous": True, "emq_node_authz_enabled": False},
    "cluster-tls": {"emq_node_cluster_tls": True, "emq_node_cluster_tls_source": "lab"},
    "users-by-client-id-sha512-prefix": {
        "emq_node_authn_user_id_type": "clientid",
        "emq_node_authn_password_hash_algorithm": {"name": "sha512", "salt_position": "prefix"},
        "emq_node_authz_no_match": "allow", "emq_node_authz_deny_action": "disconnect"},
}


def _render(tmp_path, variant):
    inventory = tmp_path / "inventory.yml"
    # Role defaults are the weakest variables, below inventory host vars: give them that place here.
    with open(os.path.join(ROOT, "roles", "emq_node", "defaults", "main.yml"), encoding="utf-8") as fh:
        defaults = yaml.safe_load(fh)
    hosts = dict(("node%d" % i, {"emq_node_cluster_address": "10.9.0.%d" % i}) for i in (1, 2, 3))
    inventory.write_text(yaml.safe_dump({"all": {
        "vars": dict(defaults, ansible_python_interpreter=sys.executable),
        "children": {"emq_nodes": {"hosts": hosts}}}}))
    variant_file = tmp_path / "variant.yml"
    variant_file.write_text(yaml.safe_dump(dict(SECRETS, **variant)))
    out = tmp_path / "out"
    out.mkdir()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"), ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    env.pop("ANSIBLE_LOG_PATH", None)
    run = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(inventory),
         os.path.join(ROOT, "tests", "roles", "render.yml"),
         "-e", "output_dir=%s" % out, "-e", "emq_node_secrets_dir=%s" % secrets, "-e", "@%s" % variant_file],
        capture_output=True, text=True, env=env, timeout=300, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    # Each host's emqx.conf includes <secrets>/secrets.conf and dashboard.conf: its files go there when it is checked.
    return {p.stem: (p, secrets) for p in out.iterdir() if p.suffix == ".conf"}


def _check(paths, tmp_path):
    conf_path, secrets_dir = paths
    text = conf_path.read_text()
    for secret in SECRETS.values():
        assert secret not in text, "emqx.conf (world-readable after every package upgrade) holds a secret"
    for name in ("secrets.conf", "dashboard.conf"):
        (secrets_dir / name).write_text((secrets_dir / ("%s.%s" % (conf_path.stem, name))).read_text())
    etc = tmp_path / ("etc-" + conf_path.stem)
    etc.mkdir()
    (etc / "emqx.conf").write_text(text)
    return schema.load_config(str(etc), environ={})


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_rendered_config_is_accepted(tmp_path, name):
    rendered = _render(tmp_path, VARIANTS[name])
    assert sorted(rendered) == ["node1", "node2", "node3"]
    for host, path in rendered.items():
        conf = _check(path, tmp_path)
        assert conf["node"]["name"] == "emqx@10.9.0.%s" % host[-1]
        assert conf["node"]["cookie"] == SECRETS["emq_node_cookie"]
        assert conf["dashboard"]["default_password"] == SECRETS["emq_node_dashboard_password"]
        # Devices must authenticate unless the variant says otherwise (issue 13).
        authn = ["%s/%s" % (a["mechanism"], a["backend"]) for a in conf.get("authentication") or []]
        assert authn == ([] if name in ("client-certificates", "anonymous-no-acl") else ["password_based/built_in_database"])
        if name == "client-certificates":
            assert conf["mqtt"]["peer_cert_as_username"] == "cn"
        if name == "direct-tls":
            for kind in ("ssl", "wss"):
                ssl = conf["listeners"][kind]["default"]["ssl_options"]
                assert (ssl["certfile"], ssl["keyfile"]) == (str(path[1] / "tls" / "server.pem"), str(path[1] / "tls" / "server.key"))
                assert ssl["versions"] == ["tlsv1.3", "tlsv1.2"] and "ECDHE-RSA-AES128-GCM-SHA256" in ssl["ciphers"]
        if name == "cluster-tls":
            tls = path[1] / "cluster-tls"
            assert conf["cluster"]["proto_dist"] == "inet_tls"
            assert conf["rpc"]["protocol"] == "ssl"
            assert (conf["rpc"]["certfile"], conf["rpc"]["keyfile"], conf["rpc"]["cacertfile"]) == (
                str(tls / "node.pem"), str(tls / "node.key"), str(tls / "ca.pem"))
        else:
            assert conf["cluster"].get("proto_dist", "inet_tcp") == "inet_tcp" and conf["rpc"].get("protocol", "tcp") == "tcp"
        if name.startswith("etcd"):
            assert conf["cluster"]["etcd"]["server"][0] == "http://10.0.0.9:2379"
            assert conf["cluster"]["etcd"]["prefix"] == "emqxcl" and conf["cluster"]["etcd"]["node_ttl"] == 60000
        if name == "etcd-server-list":
            assert conf["cluster"]["etcd"]["server"] == ["http://10.0.0.9:2379", "http://10.0.0.10:2379"]
        if conf["cluster"]["discovery_strategy"] == "static" and name != "explicit-seeds":
            assert sorted(conf["cluster"]["static"]["seeds"]) == ["emqx@10.9.0.1", "emqx@10.9.0.2", "emqx@10.9.0.3"]


def test_the_schema_check_catches_a_bad_key(tmp_path):
    # The negative control: the same path refuses what EMQX refuses.
    rendered = _render(tmp_path, {"emq_node_extra_config": {"mqtt": {"no_such_key": 1}}})
    with pytest.raises(schema.ConfigError) as err:
        _check(rendered["node1"], tmp_path)
    assert "no_such_key" in str(err.value)


# ---- the ACL file ------------------------------------------------------------------------------

ACL_VARIANTS = {
    "default": {},
    "every-construct": {"emq_node_authz_topic_prefix": "acme/devices", "emq_node_authz_rules": [
        {"permission": "allow", "who": {"username": "backend"}, "action": "subscribe", "topics": ["acme/devices/+/telemetry"]},
        {"permission": "allow", "who": {"or": [{"clientid_re": "^gw-[0-9]+$"}, {"ipaddrs": ["10.0.0.0/8", "192.168.1.7"]}]},
         "action": "publish", "qos": [0, 1], "retain": False, "topics": ["gateways/${clientid}/#", {"eq": "status/#"}]},
        {"permission": "deny", "who": {"and": [{"username": "ops \"admin\""}, {"ipaddr": "172.16.0.0/12"}]},
         "topics": ["\u00fcber/${username}/${cert_common_name}"]},
        {"permission": "deny"}]},
}


@pytest.mark.parametrize("name", sorted(ACL_VARIANTS))
def test_rendered_acl_is_loaded_by_emqx_rules(tmp_path, name):
    """The stand-in reads the file as file:consult does and compiles each rule as emqx_authz_rule does."""
    _render(tmp_path, ACL_VARIANTS[name])
    path = tmp_path / "out" / "node1.acl"
    rules = acl.load_rules(str(path))
    variant = ACL_VARIANTS[name]
    prefix = variant.get("emq_node_authz_topic_prefix", "devices")
    # Three guard rules first, then one per rule of emq_node_authz_rules (the role's default has one).
    assert len(rules) == 3 + len(variant.get("emq_node_authz_rules", [None]))
    device = {"clientid": "sensor-1", "username": "sensor-1", "peerhost": "203.0.113.9"}
    subscribe, publish = {"type": "subscribe", "qos": 1}, {"type": "publish", "qos": 1, "retain": False}
    assert acl.matches(device, subscribe, "#", rules) == "deny"
    assert acl.matches(device, subscribe, "$SYS/brokers", rules) == "deny"
    assert acl.matches(device, publish, prefix + "/sensor-2/x", rules) == "deny"
    assert acl.matches(device, publish, prefix + "/sensor-1/x", rules) == "allow"
