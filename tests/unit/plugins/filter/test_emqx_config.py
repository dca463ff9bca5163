# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for iothub.emq.emqx_config_problems: each case is a config EMQX 5.8.9 boots with or refuses."""

from __future__ import annotations

import copy

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.iothub.emq.plugins.filter.emqx_config import emqx_config_problems

V = "5.8.9"


def _role_config(discovery="static", listeners=None):
    """The dict roles/emq_node/vars/main.yml (_emq_node_config) builds from the role's defaults, plus the secrets file."""
    cluster = {"name": "emqxcl", "discovery_strategy": discovery}
    if discovery == "static":
        cluster["static"] = {"seeds": ["emqx@10.9.0.1", "emqx@10.9.0.2", "emqx@10.9.0.3"]}
    elif discovery == "dns":
        cluster["dns"] = {"name": "emqx.example.internal", "record_type": "a"}
    elif discovery == "etcd":
        cluster["etcd"] = {"server": "http://10.0.0.9:2379", "prefix": "emqxcl", "node_ttl": "1m"}
    on = {"max_connections": 1024000, "acceptors": 16, "proxy_protocol": False}
    return {
        "node": {"name": "emqx@10.9.0.1", "data_dir": "/var/lib/emqx", "max_ports": 2000000, "cookie": "render-test-cookie"},
        "cluster": cluster,
        "listeners": listeners or {
            "tcp": {"default": dict(on, enable=True, bind="0.0.0.0:1883")},
            "ws": {"default": dict(on, enable=True, bind="0.0.0.0:8083")},
            "ssl": {"default": {"enable": False, "bind": "0.0.0.0:8883"}},
            "wss": {"default": {"enable": False, "bind": "0.0.0.0:8084"}},
        },
        "dashboard": {"listeners": {"http": {"bind": "10.9.0.1:18083"}}, "default_username": "admin",
                      "default_password": "render-Test-pw"},
        "api_key": {"bootstrap_file": "/etc/emqx-secrets/api_keys"},
        "log": {"file": {"enable": True, "level": "warning"}, "console": {"enable": True, "level": "warning"}},
    }


TLS_LISTENERS = {
    "tcp": {"default": {"enable": True, "bind": "0.0.0.0:1883", "max_connections": 1024000, "acceptors": 16, "proxy_protocol": True}},
    "ssl": {"default": {"enable": True, "bind": "0.0.0.0:8883", "max_connections": 1024000, "acceptors": 16, "proxy_protocol": False,
                        "ssl_options": {"certfile": "/etc/emqx/certs/cert.pem", "keyfile": "/etc/emqx/certs/key.pem",
                                        "cacertfile": "/etc/emqx/certs/ca.pem"}}},
    "ws": {"default": {"enable": False, "bind": "0.0.0.0:8083"}},
    "wss": {"default": {"enable": True, "bind": "8084", "max_connections": "infinity", "acceptors": 16, "proxy_protocol": False,
                        "ssl_options": {"certfile": "/etc/emqx/certs/cert.pem", "keyfile": "/etc/emqx/certs/key.pem"}}},
}


# ---- what EMQX accepts ----------------------------------------------------------------------------
@pytest.mark.parametrize("config", [
    {},
    {"mqtt": {"max_packet_size": "2MB"}, "log": {"console": {"level": "warning"}}},     # the example of defaults/main.yml
    _role_config(),
    _role_config("manual"),
    _role_config("dns"),
    _role_config("etcd"),
    _role_config(listeners=TLS_LISTENERS),
    {"mqtt": {"max_packet_size": "2MB", "peer_cert_as_username": "cn"}, "log": {"console": {"level": "debug"}},
     "listeners": {"tcp": {"default": {"proxy_protocol_timeout": "5s"}}}},               # the extra-config render variant
    {"mqtt": {"max_packet_size": "256MB", "idle_timeout": "infinity", "retry_interval": "30s", "max_inflight": 128,
              "max_qos_allowed": 1, "server_keepalive": "disabled", "session_expiry_interval": "1h30m",
              "keepalive_multiplier": 1.5, "retain_available": "true", "max_subscriptions": "infinity"}},
    {"listeners": {"tcp": {"default": {"tcp_options": {"backlog": 2048, "keepalive": "240,30,5", "sndbuf": "64KB",
                                                       "nolinger": True},
                           "access_rules": ["deny 10.1.0.0/16, allow all"], "enabled": True, "enable_authn": "quick_deny_anonymous"},
                           "internal": {"bind": ":1884"}, "old": "marked_for_deletion"},
                   "ws": {"default": {"websocket": {"mqtt_path": "/mqtt", "deflate_opts": {"level": "best_speed"}}}}}},
    {"log": {"file": {"level": "info", "rotation_count": 20, "rotation_size": "100MB", "time_offset": "+08:00",
                      "audit": {"path": "/var/log/emqx/audit.log", "formatter": "json"}}, "console_handler": {"enable": False}}},
    {"cluster": {"etcd": {"ssl": {"enable": True, "verify": "verify_peer", "server_name_indication": "etcd.local"}}}},
    {"sysmon": {"vm": {"long_gc": "disabled", "large_heap": "64MB", "process_high_watermark": "85%"},
                "os": {"cpu_high_watermark": "90%", "cpu_low_watermark": "75%", "mem_check_interval": "disabled"}},
     "force_shutdown": {"max_heap_size": "64MB", "max_message_queue_len": 2000},
     "overload_protection": {"enable": True}, "force_gc": {"count": 32000, "bytes": "32MB"},
     "flapping_detect": {"enable": True, "window_time": "1m", "ban_time": "5m", "max_count": 15},
     "retainer": {"max_payload_size": "2MB", "backend": {"max_retained_messages": 100000, "storage_type": "disc"},
                  "msg_expiry_interval": "0s", "deliver_rate": "1000/s"},
     "durable_sessions": {"enable": False, "heartbeat_interval": "5000ms"},
     "rpc": {"driver": "tcp", "tcp_server_port": 5370, "socket_keepalive_idle": "15m"},
     "node": {"process_limit": 4000000, "global_gc_interval": "15m", "db_role": "core"},
     "dashboard": {"sample_interval": "10s", "listeners": {"https": {"bind": 18084, "certfile": "/c.pem", "keyfile": "/k.pem"}}}},
    {"zones": {"internal": {"mqtt": {"max_inflight": 64}}}, "authorization": {"no_match": "deny", "sources": [{"type": "file"}]}},
    {"gateway": {"anything": {"goes": 1}}, "authentication": [{"mechanism": "password_based"}]},  # roots checked elsewhere
])
def test_configs_emqx_accepts(config):
    assert emqx_config_problems(copy.deepcopy(config), V) == []


# ---- unknown keys, at several depths --------------------------------------------------------------
@pytest.mark.parametrize("config, path, hint", [
    ({"mqtt": {"max_packet_sise": "2MB"}}, "mqtt.max_packet_sise", "did you mean max_packet_size?"),
    ({"listeners": {"tcp": {"default": {"tcp_option": {"backlog": 1}}}}}, "listeners.tcp.default.tcp_option", "did you mean tcp_options?"),
    ({"log": {"console": {"levle": "debug"}}}, "log.console.levle", "did you mean level?"),
    ({"log": {"file": {"levle": "debug"}}}, "log.file.levle", "did you mean level?"),
    ({"listeners": {"ws": {"default": {"websocket": {"mqtt_pth": "/m"}}}}}, "listeners.ws.default.websocket.mqtt_pth", "mqtt_path"),
    ({"listeners": {"ssl": {"default": {"ssl_options": {"verfy": "verify_peer"}}}}}, "listeners.ssl.default.ssl_options.verfy", "verify"),
    ({"cluster": {"static": {"seed": ["a@b"]}}}, "cluster.static.seed", "seeds"),
    ({"dashboard": {"listeners": {"http": {"port": 18083}}}}, "dashboard.listeners.http.port", "the keys it knows are: backlog, bind"),
    ({"api_key": {"enable": True}}, "api_key.enable", "bootstrap_file"),
    ({"listeners": {"wss": {"default": {"ssl_options": {"gc_after_handshake": True}}}}},
     "listeners.wss.default.ssl_options.gc_after_handshake", "unknown key"),
    ({"listeners": {"tcp": {"default": {"id": "x"}}}}, "listeners.tcp.default.id", "unknown key"),
])
def test_unknown_keys(config, path, hint):
    problems = emqx_config_problems(config, V)
    assert len(problems) == 1, problems
    assert problems[0].startswith(path + ": unknown key")
    assert "refuses to boot" in problems[0]
    assert hint in problems[0]


def test_enterprise_only_keys_are_refused_on_5_8_only():
    config = {"listeners": {"ssl": {"default": {"ssl_options": {"partial_chain": True}}}}, "node": {"role": "replicant"}}
    problems = emqx_config_problems(config, V)
    assert any(p.startswith("listeners.ssl.default.ssl_options.partial_chain: only the enterprise edition") for p in problems)
    assert any(p.startswith("node.role:") and "enterprise" in p for p in problems)
    assert emqx_config_problems(config, "5.10.4") == []


def test_other_versions_check_types_but_not_unknown_keys():
    config = {"mqtt": {"max_packet_sise": "2MB", "max_inflight": 0, "some_5_10_key": True}}
    assert emqx_config_problems(config, "5.10.4") == ["mqtt.max_inflight: out of range: 0 is not from 1 to 65535"]


# ---- wrong types and values -----------------------------------------------------------------------
@pytest.mark.parametrize("config, start, hint", [
    # hocon reads booleans with typerefl's to_boolean/1: "true"/"false" only.
    ({"mqtt": {"retain_available": "yes"}}, "mqtt.retain_available: wrong type", "true or false"),
    ({"mqtt": {"strict_mode": 1}}, "mqtt.strict_mode: wrong type", "true or false"),
    ({"log": {"console": {"level": "warn"}}}, "log.console.level:", "did you mean warning?"),
    ({"mqtt": {"shared_subscription_strategy": "roundrobin"}}, "mqtt.shared_subscription_strategy:", "round_robin"),
    ({"cluster": {"discovery_strategy": "Static"}}, "cluster.discovery_strategy:", "static"),
    ({"mqtt": {"max_inflight": 70000}}, "mqtt.max_inflight: out of range", "from 1 to 65535"),
    ({"mqtt": {"max_clientid_len": 10}}, "mqtt.max_clientid_len: out of range", "from 23 to 65535"),
    ({"node": {"max_ports": 100}}, "node.max_ports: out of range", "from 1024 to 134217727"),
    ({"listeners": {"tcp": {"default": {"max_connections": 0}}}}, "listeners.tcp.default.max_connections: out of range", "infinity"),
    ({"mqtt": {"session_expiry_interval": "2 hours"}}, "mqtt.session_expiry_interval: wrong type", '"30s"'),
    ({"mqtt": {"keepalive_check_interval": "10mS"}}, "mqtt.keepalive_check_interval: wrong type", "duration"),
    ({"mqtt": {"max_packet_size": "1Mb"}}, "mqtt.max_packet_size: wrong type", '"1MB"'),
    ({"mqtt": {"max_packet_size": "300MB"}}, "mqtt.max_packet_size: out of range", "256MB"),
    ({"force_gc": {"bytes": 16.5}}, "force_gc.bytes: wrong type", "byte size"),
    ({"sysmon": {"vm": {"process_high_watermark": 80}}}, "sysmon.vm.process_high_watermark: wrong type", '"80%"'),
    ({"listeners": {"tcp": {"default": {"bind": "localhost:1883"}}}}, "listeners.tcp.default.bind: wrong type", "no host names"),
    ({"listeners": {"tcp": {"default": {"tcp_options": {"keepalive": "240,30"}}}}}, "listeners.tcp.default.tcp_options.keepalive:",
     "Idle,Interval,Probes"),
    ({"listeners": {"tcp": {"default": {"access_rules": ["permit all"]}}}}, "listeners.tcp.default.access_rules:", "allow all"),
    ({"listeners": {"ssl": {"default": {"ssl_options": {"versions": ["tlsv1.3", "tlsv1.1"]}}}}}, "listeners.ssl.default.ssl_options.versions:",
     "tlsv1.2"),
    ({"log": {"file": {"rotation_count": "10"}}}, "log.file.rotation_count: wrong type", "not a string"),
    ({"log": {"console": {"time_offset": "+8"}}}, "log.console.time_offset:", '"+08:00"'),
    ({"dashboard": {"sample_interval": "7s"}}, "dashboard.sample_interval: out of range", "divide 60s"),
    ({"durable_sessions": {"heartbeat_interval": "60d"}}, "durable_sessions.heartbeat_interval: out of range", "4294967295"),
    ({"sysmon": {"os": {"cpu_low_watermark": "85%"}}}, "sysmon.os.cpu_low_watermark:", "below sysmon.os.cpu_high_watermark"),
    ({"mqtt": {"max_packet_size": None}}, "mqtt.max_packet_size: has no value", "null"),
    ({"mqtt": "big"}, "mqtt: wrong type", "{...} block"),
    ({"listeners": {"tcp": {"Default!": {}}}}, "listeners.tcp.Default!: bad name", "letters, digits"),
    ({"mqtt..max_packet_size": "2MB"}, "mqtt..max_packet_size:", "write it nested"),
    # emqx_schema:comma_separated_list(): hocon converts only a string; an array stays binaries, refused
    ({"cluster": {"etcd": {"server": ["http://10.0.0.9:2379"]}}}, "cluster.etcd.server: wrong type", "not a list"),
])
def test_values_emqx_refuses(config, start, hint):
    problems = emqx_config_problems(config, V)
    assert len(problems) == 1, problems
    assert problems[0].startswith(start), problems[0]
    assert hint in problems[0], problems[0]


def test_secrets_are_never_quoted():
    problems = emqx_config_problems({"node": {"cookie": ["s3cret-cookie"]}, "dashboard": {"default_password": True}}, V)
    assert len(problems) == 2
    assert not any("s3cret" in p for p in problems)


def test_dotted_keys_are_refused_with_the_nested_form():
    """iothub.emq.to_hocon writes a dotted key as one quoted key, which EMQX does not split: refuse it, show the nested form."""
    config = {"mqtt": {"max_packet_size": "2MB"}, "mqtt.max_inflight": 0, "listeners": {"tcp.default.tcp_options.backlog": 0}}
    assert emqx_config_problems(config, V) == [
        'mqtt.max_inflight: a key with dots is written as one quoted key, which EMQX reads as a single name "mqtt.max_inflight" '
        'and does not know; write it nested, as {mqtt: {max_inflight: ...}}',
        'listeners.tcp.default.tcp_options.backlog: a key with dots is written as one quoted key, which EMQX reads as a single name '
        '"tcp.default.tcp_options.backlog" and does not know; write it nested, as {tcp: {default: {tcp_options: {backlog: ...}}}}',
    ]


def test_every_problem_of_a_config_is_listed():
    config = _role_config()
    config["mqtt"] = {"max_packet_sise": "2MB", "retain_available": "no"}
    config["log"]["console"]["level"] = "verbose"
    assert [p.split(":")[0] for p in emqx_config_problems(config, V)] == [
        "log.console.level", "mqtt.max_packet_sise", "mqtt.retain_available"]


def test_needs_a_mapping_and_a_version():
    with pytest.raises(AnsibleFilterError, match="expects a mapping"):
        emqx_config_problems(["mqtt"], V)
    with pytest.raises(AnsibleFilterError, match="EMQX version"):
        emqx_config_problems({}, "latest")


def test_subclasses_of_str_and_int_as_ansible_passes_them():
    """ansible-core 2.19 hands filters tagged subclasses of str and int; they are the same values."""
    class TaggedStr(str):
        pass

    class TaggedInt(int):
        pass

    config = {"mqtt": {"max_qos_allowed": TaggedInt(1), "max_packet_size": TaggedStr("2MB")},
              "log": {"console": {"level": TaggedStr("warning")}}}
    assert emqx_config_problems(config, V) == []
