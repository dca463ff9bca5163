"""Config schema details checked against EMQX v5.8.9 (emqx_schema.erl, emqx_conf_schema.erl,
emqx_dashboard_schema.erl, emqx_mgmt_api_key_schema.erl, emqx_auth_ext_schema.erl) and hocon 0.44.0
(hocon_postprocess.erl, hocon_tconf.erl): refused with the dotted key path, or accepted."""

import pytest

from emqx_standin import hocon, schema
from emqx_standin.schema import ConfigError


def check(text):
    return schema.check(hocon.merge(schema.builtin_defaults(), hocon.parse(text)))


def refused(text):
    with pytest.raises(ConfigError) as err:
        check(text)
    return err.value


@pytest.mark.parametrize("text, path", [
    ('listeners.tcp.default.id = "x"', "listeners.tcp.default.id"),
    ("mqtt.max_awaiting_rel_timeout = 10s", "mqtt.max_awaiting_rel_timeout"),
    ("mqtt.limiter {}", "mqtt.limiter"),
    ('rpc.password = "x"', "rpc.password"),
    ("log.audit {}", "log.audit"),
    ("api_key.enable = true", "api_key.enable"),
    ("dashboard.password_expired_time = 1d", "dashboard.password_expired_time"),
    ("dashboard.unsuccessful_login_max_attempts = 5", "dashboard.unsuccessful_login_max_attempts"),
    ("dashboard.sso {}", "dashboard.sso"),
    ("dashboard.monitor {}", "dashboard.monitor"),
    ("node.broker_shared_dispatch = true", "node.broker_shared_dispatch"),
    ("listeners.ssl.default.ssl_options.partial_chain = true", "listeners.ssl.default.ssl_options.partial_chain"),
    ('listeners.ssl.default.ssl_options.verify_peer_ext_key_usage = "clientAuth"',
     "listeners.ssl.default.ssl_options.verify_peer_ext_key_usage"),
    ("listeners.ssl.default.ssl_options.enable = true", "listeners.ssl.default.ssl_options.enable"),
    ('listeners.ssl.default.ssl_options.server_name_indication = "a"',
     "listeners.ssl.default.ssl_options.server_name_indication"),
    ("listeners.wss.default.ssl_options.gc_after_handshake = true", "listeners.wss.default.ssl_options.gc_after_handshake"),
    ("listeners.wss.default.ssl_options.enable_crl_check = true", "listeners.wss.default.ssl_options.enable_crl_check"),
    ("listeners.wss.default.ssl_options.ocsp {}", "listeners.wss.default.ssl_options.ocsp"),
    ("dashboard.listeners.https.ssl_options.gc_after_handshake = true",
     "dashboard.listeners.https.ssl_options.gc_after_handshake"),
])
def test_keys_emqx_589_does_not_know_are_refused(text, path):
    if schema._edition_name() == "enterprise":
        pytest.skip("open-source schema")
    assert refused(text).key_path() == path


def test_keys_emqx_589_knows_are_accepted():
    c = check("""
        listeners.tcp.default.tcp_options.nolinger = true
        sysmon.mnesia_tm_mailbox_size_alarm_threshold = 100
        sysmon.broker_pool_mailbox_size_alarm_threshold = 200
        listeners.ssl.default.ssl_options { gc_after_handshake = true, enable_crl_check = false, log_level = none }
    """)
    assert c["listeners"]["tcp"]["default"]["tcp_options"]["nolinger"] is True
    assert c["sysmon"]["mnesia_tm_mailbox_size_alarm_threshold"] == 100
    assert c["sysmon"]["broker_pool_mailbox_size_alarm_threshold"] == 200
    assert c["listeners"]["ssl"]["default"]["ssl_options"]["log_level"] == "none"


def test_aliases_as_hocon_tconf_resolves_them():
    c = check("""
        listeners.tcp.default.enabled = false
        rpc { driver = ssl, tcp_server_port = 5370, tcp_client_num = 3 }
        log.console.format = json
        log.file { to = "/tmp/x.log", rotation { count = 4 }, max_size = 10MB }
        node.db_role = core
        force_shutdown.max_message_queue_len = 5
    """)
    assert c["listeners"]["tcp"]["default"]["enable"] is False
    assert c["rpc"]["protocol"] == "ssl" and c["rpc"]["server_port"] == 5370 and c["rpc"]["client_num"] == 3
    assert c["log"]["console"]["formatter"] == "json"
    handler = c["log"]["file"]["default"]
    assert handler["path"] == "/tmp/x.log" and handler["rotation_count"] == 4 and handler["rotation_size"] == 10 * 1024 ** 2
    assert c["force_shutdown"]["max_mailbox_size"] == 5
    # the real name wins over an alias
    assert check("listeners.tcp.default { enable = true, enabled = false }")["listeners"]["tcp"]["default"]["enable"] is True


def test_log_file_mixes_default_and_named_handlers():
    c = check('log.file { level = info, audit2 { path = "/tmp/a.log" } }')
    assert c["log"]["file"]["default"]["level"] == "info"
    assert c["log"]["file"]["audit2"]["path"] == "/tmp/a.log"


def test_dashboard_https_tls_fields_next_to_bind_move_into_ssl_options():
    c = check('dashboard.listeners.https { bind = 18084, certfile = "/c.pem", keyfile = "/k.pem" }')
    https = c["dashboard"]["listeners"]["https"]
    assert https["ssl_options"]["certfile"] == "/c.pem" and https["ssl_options"]["keyfile"] == "/k.pem"
    err = refused('dashboard.listeners.https { ssl_options {}, certfile = "/c.pem" }')
    assert err.key_path() == "dashboard.listeners.https.certfile"


@pytest.mark.parametrize("value, size", [("1MB", 1024 ** 2), ("1mb", 1024 ** 2), ('"2KB"', 2048), ('"10b"', 10),
                                         ('"1024"', 1024), ("3GB", 3 * 1024 ** 3)])
def test_bytesize_forms_accepted(value, size):
    assert check("listeners.tcp.default.tcp_options.buffer = %s" % value)[
        "listeners"]["tcp"]["default"]["tcp_options"]["buffer"] == size


@pytest.mark.parametrize("value", ['"1Mb"', '"1 MB"', '"1mB"', '"1K"', '"1.5MB"'])
def test_bytesize_forms_refused(value):
    assert refused("listeners.tcp.default.tcp_options.buffer = %s" % value).path == "listeners.tcp.default.tcp_options.buffer"


@pytest.mark.parametrize("value, ms", [('"1.5s"', 1500), ('"1w"', 7 * 86400000), ('"1f"', 14 * 86400000), ("1MS", 1),
                                       ('"1m30s"', 90000), ('"1ms5s"', 5001), ("2H", 7200000), ('"15"', 15)])
def test_duration_forms_accepted(value, ms):
    assert check("mqtt.await_rel_timeout = %s" % value)["mqtt"]["await_rel_timeout"] == ms


@pytest.mark.parametrize("value", ['"1Ms"', '"1mS"', '"1 s"', '"1.s"', '"1y"'])
def test_duration_forms_refused(value):
    assert refused("mqtt.await_rel_timeout = %s" % value).path == "mqtt.await_rel_timeout"


def test_percent_is_nn_percent_up_to_100_or_a_float():
    pct = schema.Percent()
    assert pct("80%", "p") == 0.8 and pct("12.5%", "p") == 0.125 and pct(0.5, "p") == 0.5
    for bad in ("101%", "0.8", "80", 1):
        with pytest.raises(ConfigError):
            pct(bad, "p")


def test_map_keys_must_not_start_with_underscore_or_dash():
    for name in ("_x", "-x"):
        err = refused('listeners.tcp.%s.bind = "0.0.0.0:1999"' % name)
        assert err.path == "listeners.tcp" and err.reason == "invalid_map_key"
    assert "a_b-1" in check('listeners.tcp.a_b-1.bind = "0.0.0.0:1999"')["listeners"]["tcp"]


@pytest.mark.parametrize("text, path", [
    ("cluster.autoclean = infinity", "cluster.autoclean"),
    ("listeners.ws.default.websocket.idle_timeout = infinity", "listeners.ws.default.websocket.idle_timeout"),
    ("log.console.max_depth = infinity", "log.console.max_depth"),
    ('listeners.ssl.default.ssl_options.versions = "tlsv1.2"', "listeners.ssl.default.ssl_options.versions"),
    ('rpc.tls_versions = "tlsv1.2"', "rpc.tls_versions"),
    ('listeners.tcp.default.access_rules = "allow all"', "listeners.tcp.default.access_rules"),
    ('listeners.tcp.default.access_rules = ["permit all"]', "listeners.tcp.default.access_rules"),
    ('authorization.cache.excludes = "a/#"', "authorization.cache.excludes"),
    ('node.config_files = "/a.conf"', "node.config_files"),
    ('log.file.rotation_count = "5"', "log.file.default.rotation_count"),
    ("rpc.server_port = 0", "rpc.server_port"),
    ('rpc.server_port = "0.0.0.0:5369"', "rpc.server_port"),
    ("node.cluster_call.max_history = 99", "node.cluster_call.max_history"),
    ("node.cluster_call.max_history = 10241", "node.cluster_call.max_history"),
    ("authorization.cache.max_size = 1048577", "authorization.cache.max_size"),
    ("mqtt.max_packet_size = 257MB", "mqtt.max_packet_size"),
    ("mqtt.max_packet_size = 0", "mqtt.max_packet_size"),
    ("force_shutdown.max_heap_size = 129GB", "force_shutdown.max_heap_size"),
    ("mqtt.keepalive_multiplier = 0.5", "mqtt.keepalive_multiplier"),
    ("mqtt.keepalive_multiplier = 65536", "mqtt.keepalive_multiplier"),
    ("dashboard.sample_interval = 7s", "dashboard.sample_interval"),
    ("log.console.chars_limit = 99", "log.console.chars_limit"),
])
def test_types_and_ranges_refused(text, path):
    assert refused(text).path == path


def test_types_and_ranges_accepted():
    c = check("""
        log.console { max_depth = unlimited, chars_limit = unlimited }
        log.file.max_depth = 0
        mqtt { max_packet_size = 256MB, keepalive_multiplier = 65535 }
        node.cluster_call.max_history = 100
        authorization.cache { max_size = 1048576, excludes = ["a/#"] }
        listeners.tcp.default.access_rules = ["allow 10.0.0.0/8, deny all"]
        listeners.ssl.default.ssl_options { versions = [tlsv1.2], ciphers = "TLS_AES_256_GCM_SHA384,TLS_AES_128_GCM_SHA256" }
        node.applications = "a, b"
        rpc.server_port = 5370
    """)
    assert c["log"]["console"]["max_depth"] == "unlimited" and c["log"]["file"]["default"]["max_depth"] == 0
    assert c["mqtt"]["max_packet_size"] == 268435455
    assert c["listeners"]["tcp"]["default"]["access_rules"] == ["allow 10.0.0.0/8", "deny all"]
    assert c["listeners"]["ssl"]["default"]["ssl_options"]["ciphers"] == ["TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256"]
    assert c["node"]["applications"] == ["a", "b"]
