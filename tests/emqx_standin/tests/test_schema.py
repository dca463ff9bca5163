"""Config schema: defaults, precedence, EMQX_* overrides, and refusals that name the key."""

import os
import subprocess

import pytest

from emqx_standin import hocon, schema
from emqx_standin.schema import ConfigError

import standin


def check(text):
    return schema.check(hocon.merge(schema.builtin_defaults(), hocon.parse(text)))


def test_defaults_match_emqx():
    c = check('node.data_dir = "/var/lib/emqx"')
    assert c["node"]["name"] == "emqx@127.0.0.1"
    assert c["node"]["role"] == "core"
    assert c["node"]["max_ports"] == 1048576
    assert c["node"]["dist_net_ticktime"] == 120000
    assert c["cluster"]["name"] == "emqxcl"
    assert c["cluster"]["discovery_strategy"] == "manual"
    assert c["cluster"]["static"]["seeds"] == []
    assert c["cluster"]["autoclean"] == 24 * 3600 * 1000 and c["cluster"]["autoheal"] is True
    assert c["cluster"]["proto_dist"] == "inet_tcp"
    assert c["rpc"]["port_discovery"] == "stateless" and c["rpc"]["server_port"] == 5369
    assert c["dashboard"]["listeners"]["http"]["bind"] == 18083
    assert c["dashboard"]["default_username"] == "admin" and c["dashboard"]["default_password"] == "public"
    tcp = c["listeners"]["tcp"]["default"]
    assert tcp["bind"] == "0.0.0.0:1883" and tcp["acceptors"] == 16 and tcp["max_connections"] == "infinity"
    assert tcp["proxy_protocol"] is False and tcp["proxy_protocol_timeout"] == 3000
    assert c["listeners"]["ssl"]["default"]["bind"] == "0.0.0.0:8883"
    assert c["listeners"]["ssl"]["default"]["ssl_options"]["verify"] == "verify_none"
    assert c["listeners"]["ws"]["default"]["websocket"]["mqtt_path"] == "/mqtt"
    assert c["listeners"]["ws"]["default"]["websocket"]["proxy_address_header"] == "x-forwarded-for"
    assert c["listeners"]["wss"]["default"]["bind"] == "0.0.0.0:8084"
    assert c["mqtt"]["peer_cert_as_username"] == "disabled"
    assert c["mqtt"]["max_packet_size"] == 1024 * 1024


def test_operator_config_is_accepted():
    c = check("""
node { name = "emqx@10.0.0.1", cookie = "s3cret", data_dir = "/var/lib/emqx", max_ports = 2097152,
       process_limit = 2097152, dist_net_ticktime = 2m, role = core }
cluster {
  name = prod
  discovery_strategy = static
  static.seeds = ["emqx@10.0.0.1", "emqx@10.0.0.2"]
  dns { name = "emqx.example.com", record_type = srv }
  etcd { server = "http://10.0.0.9:2379", prefix = emqxcl, node_ttl = 1m }
  autoclean = 24h
  autoheal = true
  proto_dist = inet_tcp
}
rpc { protocol = ssl, port_discovery = manual, server_port = 5369,
      certfile = "/etc/emqx/certs/cert.pem", keyfile = "/etc/emqx/certs/key.pem",
      cacertfile = "/etc/emqx/certs/cacert.pem" }
listeners.tcp.default { bind = "0.0.0.0:1883", acceptors = 64, max_connections = 1024000,
  proxy_protocol = true, proxy_protocol_timeout = 5s, enable_authn = true,
  access_rules = ["allow all"], tcp_options { backlog = 16384, nodelay = true } }
listeners.ssl.default { bind = "0.0.0.0:8883", ssl_options { certfile = "/c.pem", keyfile = "/k.pem",
  cacertfile = "/ca.pem", verify = verify_peer, fail_if_no_peer_cert = true,
  versions = ["tlsv1.3", "tlsv1.2"], ciphers = "ECDHE-RSA-AES256-GCM-SHA384,TLS_AES_256_GCM_SHA384" } }
listeners.ws.default { bind = "0.0.0.0:8083", websocket { mqtt_path = "/mqtt",
  proxy_address_header = "x-forwarded-for", proxy_port_header = "x-forwarded-port" } }
listeners.wss.default = marked_for_deletion
listeners.tcp.internal { enable = false, bind = "127.0.0.1:11883" }
dashboard { listeners.http { bind = 18083, enable = true }, default_username = admin,
            default_password = "P@ssw0rd123" }
api_key.bootstrap_file = "/etc/emqx/api_keys"
license.key = "default"
log { console { enable = true, level = info }
      file { enable = true, level = warning, path = "/var/log/emqx/emqx.log", rotation_count = 10,
             rotation_size = 50MB } }
mqtt { max_packet_size = 1MB, max_clientid_len = 65535, peer_cert_as_username = cn,
       peer_cert_as_clientid = disabled, retain_available = true, keepalive_multiplier = 1.5 }
authorization { no_match = allow, deny_action = ignore, sources = [] }
authentication = []
force_shutdown { max_heap_size = 32MB }
sysmon.vm.long_gc = disabled
""")
    assert c["cluster"]["static"]["seeds"] == ["emqx@10.0.0.1", "emqx@10.0.0.2"]
    assert c["listeners"]["wss"]["default"] == "marked_for_deletion"
    assert c["listeners"]["tcp"]["default"]["proxy_protocol_timeout"] == 5000
    assert c["listeners"]["ssl"]["default"]["ssl_options"]["ciphers"] == [
        "ECDHE-RSA-AES256-GCM-SHA384", "TLS_AES_256_GCM_SHA384"]
    assert c["rpc"]["protocol"] == "ssl"


@pytest.mark.parametrize("text,path,reason", [
    ("node.nmae = x", "node.nmae", "unknown_fields"),
    ("listeners.tcp.default.bindd = 1883", "listeners.tcp.default.bindd", "unknown_fields"),
    ("cluster.mcast.ports = [4369]", "cluster.mcast", "unknown_fields"),   # not in 5.8.9's cluster
    ('node.name = "emqx"', "node.name", "bad_node_name"),
    ('node.name = "em qx@host"', "node.name", "bad_node_name"),
    ('listeners.tcp.default.bind = "0.0.0.0:99999"', "listeners.tcp.default.bind", "bad_ip_port"),
    ('listeners.tcp.default.bind = "999.0.0.1:1883"', "listeners.tcp.default.bind", "bad_ip_port"),
    ('listeners.tcp.default.bind = "localhost"', "listeners.tcp.default.bind", "bad_port_number"),
    ("cluster.discovery_strategy = gossip", "cluster.discovery_strategy", "enum"),
    ("cluster.autoheal = 3", "cluster.autoheal", "boolean"),
    ('mqtt.idle_timeout = "15 seconds"', "mqtt.idle_timeout", "not_a_duration"),
    ('listeners.ssl.default.ssl_options.verify = verify_all', "listeners.ssl.default.ssl_options.verify", "enum"),
    ("mqtt.peer_cert_as_username = cname", "mqtt.peer_cert_as_username", "enum"),
    ("node.max_ports = lots", "node.max_ports", "integer"),
    ('cluster.static.seeds = ["emqx@a", "bad"]', "cluster.static.seeds.2", "bad_node_name"),
])
def test_bad_values_name_the_key(text, path, reason):
    with pytest.raises(ConfigError) as ei:
        check(text)
    assert ei.value.key_path() == path
    assert reason in ei.value.reason


def write(etc, name, text):
    os.makedirs(etc, exist_ok=True)
    with open(os.path.join(etc, name), "w") as fh:
        fh.write(text)


def test_precedence_base_cluster_hocon_emqx_conf_env(tmp_path):
    etc, data = str(tmp_path / "etc"), str(tmp_path / "data")
    write(etc, "base.hocon", 'cluster.name = from_base\nmqtt.max_clientid_len = 100\nlog.console.level = debug\n')
    write(os.path.join(data, "configs"), "cluster.hocon",
          'cluster.name = from_cluster_hocon\nmqtt.max_clientid_len = 200\nmqtt.max_topic_levels = 9\n')
    write(etc, "emqx.conf", 'node.data_dir = "%s"\ncluster.name = from_emqx_conf\n'
          'mqtt.max_topic_levels = 10\n' % data)
    env = {"EMQX_CLUSTER__NAME": "from_env", "EMQX_NODE__NAME": "emqx@10.1.1.1",
           "EMQX_CLUSTER__STATIC__SEEDS": "[emqx@h1,emqx@h2]", "EMQX_ETC_DIR": "/ignored/not/a/key",
           "EMQX_LISTENERS__TCP__DEFAULT__BIND": "127.0.0.1:2883"}
    c = schema.check(schema.load_raw(etc, env))
    assert c["cluster"]["name"] == "from_env"
    assert c["node"]["name"] == "emqx@10.1.1.1"
    assert c["cluster"]["static"]["seeds"] == ["emqx@h1", "emqx@h2"]
    assert c["listeners"]["tcp"]["default"]["bind"] == "127.0.0.1:2883"
    assert c["mqtt"]["max_clientid_len"] == 200      # cluster.hocon beats base.hocon
    assert c["mqtt"]["max_topic_levels"] == 10       # emqx.conf beats cluster.hocon
    assert c["log"]["console"]["level"] == "debug"   # base.hocon still applies


def test_env_override_with_unknown_subkey_is_refused(tmp_path):
    etc = str(tmp_path / "etc")
    write(etc, "emqx.conf", 'node.data_dir = "%s"\n' % tmp_path)
    with pytest.raises(ConfigError) as ei:
        schema.check(schema.load_raw(etc, {"EMQX_NODE__NAEM": "x"}))
    assert ei.value.key_path() == "node.naem"


@pytest.mark.parametrize("conf,expect", [
    ('node.name = "emqx@127.0.0.1"\nnode.cookei = abc\n', ["node.cookei", "unknown_fields"]),
    ('node.name = "emqx"\n', ["node.name", "bad_node_name"]),
    ('node {\n  name = "emqx@127.0.0.1"\n  bind = 0.0.0.0:1883\n}\n', ["line 4", "syntax error before: '.0'"]),
])
def test_node_refuses_to_start_and_logs_the_key(tmp_path, conf, expect):
    node_dir = str(tmp_path)
    write(os.path.join(node_dir, "etc"), "emqx.conf", 'node.data_dir = "%s/data"\n%s' % (node_dir, conf))
    for cmd in ("foreground", "start"):
        p = subprocess.run([standin.PYTHON, "-m", "emqx_standin", cmd], env=standin.env_for(node_dir),
                           capture_output=True, text=True, timeout=30, cwd=node_dir)
        assert p.returncode != 0
        for frag in expect:
            assert frag in p.stderr, p.stderr
    with open(os.path.join(node_dir, "log", "emqx.log")) as fh:
        log = fh.read()
    assert "failed_to_load_config" in log
    assert all(frag in log for frag in expect), log


def test_insecure_cookie_warns_but_starts(nodes):
    n = nodes.one(cookie="emqxsecretcookie")
    n.start()
    assert n.ctl("status")[0] == 0
    assert "Default (insecure) Erlang cookie is in use." in n.console()
    assert "Default (insecure) Erlang cookie is in use." in n.logtext()
