# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The part of EMQX 5.8.9's configuration schema that operators write, as data.

Every table below lists the names, types and ranges of one struct of EMQX's schema as tag v5.8.9 of
emqx/emqx defines it (the open-source build); the source file and function are named above each one.
Types and converters follow emqx/hocon 0.44.0 and typerefl 0.9.6 (the versions v5.8.9 pins). The
filter iothub.emq.emqx_config_problems reads these tables; nothing here runs on a managed host.

A struct lists ALL of its fields, hidden and deprecated ones too (EMQX accepts them), so that a key not
in the table is one EMQX 5.8.9 refuses at boot (hocon_tconf: unknown_fields). ANY marks a field whose
value is not checked (a union of structs, an array of unions, or a type this module does not model).
"""

from __future__ import annotations


class Struct(object):
    """A struct of EMQX's schema: its fields (name -> type), the aliases EMQX also accepts (alias -> name)
    and the fields only the enterprise build knows (refused by the open-source 5.8 build)."""

    def __init__(self, source, fields, aliases=None, enterprise=None):
        self.source = source
        self.fields = dict(fields)
        self.aliases = dict(aliases or {})
        self.enterprise = dict(enterprise or {})


# ---- types ---------------------------------------------------------------------------------------
# Each type is a tuple whose first item names its kind; the filter knows how to check each kind.
ANY = ("any",)                      # not checked
DEPRECATED = ("deprecated",)        # accepted and dropped unchecked (hocon_tconf map_fields/4)
BOOL = ("bool",)                    # true/false, or the strings "true"/"false" (typerefl to_boolean/1)
STRING = ("string",)                # string() / binary(): a string or a number, not a boolean
SECRET = ("secret",)                # a string whose value is never quoted back
ATOM = ("atom",)                    # atom(): a string, a number or a boolean
IP_PORT = ("ip_port",)              # emqx_schema:ip_port(): "IP:port", ":port", "port" or a port number
PERCENT = ("percent",)              # emqx_schema:percent(): "NN%" (0..100%) or a float
NUMBER = ("number",)                # number(): an integer or a float
COMMA_LIST = ("comma_list",)        # comma_separated_list/binary/atoms: "a, b" (or an array)
# comma_separated_list() where it was checked against hocon 0.44.0 hocon_schema_builtin:convert/2: only a string is
# turned into the list (string:tokens(S, ", ")); an array stays binaries, which typerefl list(string()) refuses
COMMA_STRING = ("comma_string",)
BYTESIZE = ("bytesize",)            # emqx_schema:bytesize(): "10MB" / "512KB" / "1GB" / "100B" or bytes
WORDSIZE = ("bytesize",)            # emqx_schema:wordsize(): written as a bytesize
DURATION = ("duration", "ms", None)  # emqx_schema:duration(): "30s", "1h5m", "500ms" or milliseconds
DURATION_S = ("duration", "s", None)
DURATION_MS = ("duration", "ms", None)
TIMEOUT = ("duration", "ms", 4294967295)      # timeout_duration(): 0..2^32-1 ms
TIMEOUT_MS = ("duration", "ms", 4294967295)   # timeout_duration_ms()
TIMEOUT_S = ("duration", "s", 4294967)        # timeout_duration_s(): 0..4294967 s


def INT(lo=None, hi=None):
    """integer() / range(lo, hi) / pos_integer() (INT(1)) / non_neg_integer() (INT(0)); None: unbounded."""
    return ("int", lo, hi)


POS_INT = INT(1)
NON_NEG_INT = INT(0)


def ENUM(*symbols):
    """hoconsc:enum([...]): one of the symbols (integers are written as numbers)."""
    return ("enum", tuple(symbols))


def UNION(*members):
    """hoconsc:union([...]) of simple members; a plain string is a literal symbol such as infinity."""
    return ("union", tuple(members))


def ARRAY(inner):
    """hoconsc:array(Type)."""
    return ("array", inner)


def MAP(inner):
    """hoconsc:map(name, Type): keys match ^[A-Za-z0-9]+[A-Za-z0-9-_]*$ (hocon_tconf ?MAP_KEY_RE)."""
    return ("map", inner)


def TOMBSTONE_MAP(inner):
    """emqx_schema:tombstone_map/2: a map whose values are the struct or "marked_for_deletion"."""
    return ("tombstone_map", inner)


def CHECK(name, base):
    """base, plus the validator or converter EMQX attaches to that one field (named for the filter)."""
    return ("check", name, base)


def STRUCT(struct):
    return ("struct", struct)


LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency", "all")
SHARED_SUB_STRATEGIES = ("random", "round_robin", "round_robin_per_group", "sticky", "local", "hash_topic", "hash_clientid")
PEER_CERT_AS = ("disabled", "cn", "dn", "crt", "pem", "md5")
# emqx_tls_lib:available_versions(tls) on the OTP EMQX 5.8.9 ships.
TLS_VERSIONS = ("tlsv1.3", "tlsv1.2", "tlsv1.1", "tlsv1")


# ---- mqtt -----------------------------------------------------------------------------------------
# %% from apps/emqx/src/emqx_schema.erl fields("client_attrs_init")
CLIENT_ATTRS_INIT = Struct('apps/emqx/src/emqx_schema.erl fields("client_attrs_init")', {
    "expression": STRING,
    "set_as_attr": STRING,
})

# %% from apps/emqx/src/emqx_schema.erl fields("mqtt") = mqtt_general() ++ mqtt_session()
MQTT = Struct('apps/emqx/src/emqx_schema.erl fields("mqtt")', {
    "idle_timeout": UNION("infinity", DURATION),
    "max_packet_size": CHECK("max_packet_size", BYTESIZE),
    "max_clientid_len": INT(23, 65535),
    "max_topic_levels": INT(1, 65535),
    "max_topic_alias": INT(0, 65535),
    "retain_available": BOOL,
    "wildcard_subscription": BOOL,
    "shared_subscription": BOOL,
    "shared_subscription_strategy": ENUM(*SHARED_SUB_STRATEGIES),
    "shared_subscription_initial_sticky_pick": ENUM("random", "local", "hash_topic", "hash_clientid"),
    "exclusive_subscription": BOOL,
    "ignore_loop_deliver": BOOL,
    "strict_mode": BOOL,
    "response_information": STRING,
    "server_keepalive": UNION(POS_INT, "disabled"),
    "keepalive_backoff": NUMBER,                      # hidden
    "keepalive_multiplier": CHECK("keepalive_multiplier", NUMBER),
    "keepalive_check_interval": TIMEOUT,
    "retry_interval": UNION("infinity", TIMEOUT),
    "use_username_as_clientid": BOOL,
    "peer_cert_as_username": ENUM(*PEER_CERT_AS),
    "peer_cert_as_clientid": ENUM(*PEER_CERT_AS),
    "client_attrs_init": ARRAY(STRUCT(CLIENT_ATTRS_INIT)),
    "clientid_override": ANY,                         # disabled | a variform expression
    "session_expiry_interval": DURATION,
    "message_expiry_interval": UNION(DURATION, "infinity"),
    "max_awaiting_rel": UNION(NON_NEG_INT, "infinity"),
    "max_qos_allowed": ENUM(0, 1, 2),                 # emqx_schema:qos()
    "mqueue_priorities": ANY,                         # disabled | a map of topic -> priority
    "mqueue_default_priority": ENUM("highest", "lowest"),
    "mqueue_store_qos0": BOOL,
    "max_mqueue_len": UNION(NON_NEG_INT, "infinity"),
    "max_inflight": INT(1, 65535),
    "max_subscriptions": UNION(POS_INT, "infinity"),
    "upgrade_qos": BOOL,
    "await_rel_timeout": DURATION,
})

# ---- listeners ------------------------------------------------------------------------------------
# %% from apps/emqx/src/emqx_schema.erl fields("tcp_opts")
TCP_OPTS = Struct('apps/emqx/src/emqx_schema.erl fields("tcp_opts")', {
    "active_n": NON_NEG_INT,
    "backlog": POS_INT,
    "send_timeout": DURATION,
    "send_timeout_close": BOOL,
    "recbuf": BYTESIZE,
    "sndbuf": BYTESIZE,
    "buffer": BYTESIZE,
    "high_watermark": BYTESIZE,
    "nodelay": BOOL,
    "nolinger": BOOL,
    "reuseaddr": BOOL,
    "keepalive": CHECK("tcp_keepalive", STRING),
})

# %% from apps/emqx/src/emqx_schema.erl fields("deflate_opts")
DEFLATE_OPTS = Struct('apps/emqx/src/emqx_schema.erl fields("deflate_opts")', {
    "level": ENUM("none", "default", "best_compression", "best_speed"),
    "mem_level": INT(1, 9),
    "strategy": ENUM("default", "filtered", "huffman_only", "rle"),
    "server_context_takeover": ENUM("takeover", "no_takeover"),
    "client_context_takeover": ENUM("takeover", "no_takeover"),
    "server_max_window_bits": INT(8, 15),
    "client_max_window_bits": INT(8, 15),
})

# %% from apps/emqx/src/emqx_schema.erl fields("ws_opts")
WS_OPTS = Struct('apps/emqx/src/emqx_schema.erl fields("ws_opts")', {
    "mqtt_path": STRING,
    "mqtt_piggyback": ENUM("single", "multiple"),
    "compress": BOOL,
    "idle_timeout": DURATION,
    "max_frame_size": UNION("infinity", POS_INT),
    "fail_if_no_subprotocol": BOOL,
    "supported_subprotocols": COMMA_LIST,
    "check_origin_enable": BOOL,
    "allow_origin_absence": BOOL,
    "check_origins": COMMA_LIST,
    "proxy_address_header": STRING,
    "proxy_port_header": STRING,
    "deflate_opts": STRUCT(DEFLATE_OPTS),
    "validate_utf8": BOOL,
})

# %% from apps/emqx/src/emqx_schema.erl fields("ocsp")
OCSP = Struct('apps/emqx/src/emqx_schema.erl fields("ocsp")', {
    "enable_ocsp_stapling": BOOL,
    "responder_url": STRING,
    "issuer_pem": STRING,
    "refresh_interval": DURATION,
    "refresh_http_timeout": DURATION,
})

# %% from apps/emqx/src/emqx_schema.erl common_ssl_opts_schema/2; the two fields of
# %% apps/emqx_auth_ext/src/emqx_auth_ext_schema.erl fields(auth_ext) are injected by the enterprise build only
# %% (apps/emqx_conf/src/emqx_conf_schema_inject.erl auth_ext(ce) -> []).
_COMMON_SSL = {
    "cacertfile": STRING,
    "cacerts": DEPRECATED,
    "certfile": STRING,
    "keyfile": STRING,
    "verify": ENUM("verify_peer", "verify_none"),
    "reuse_sessions": BOOL,
    "depth": NON_NEG_INT,
    "password": SECRET,
    "versions": CHECK("tls_versions", ARRAY(ATOM)),
    "ciphers": ANY,                                   # an array of names or one comma-separated string
    "secure_renegotiate": BOOL,
    "log_level": ENUM("emergency", "alert", "critical", "error", "warning", "notice", "info", "debug", "none", "all"),
    "hibernate_after": DURATION,
}
_ENTERPRISE_SSL = {
    "partial_chain": ENUM(True, False, "two_cacerts_from_cacertfile", "cacert_from_cacertfile"),
    "verify_peer_ext_key_usage": STRING,
}
# %% from apps/emqx/src/emqx_schema.erl server_ssl_opts_schema/2
_SERVER_SSL = dict(_COMMON_SSL, **{
    "dhfile": STRING,
    "fail_if_no_peer_cert": BOOL,
    "honor_cipher_order": BOOL,
    "client_renegotiation": BOOL,
    "handshake_timeout": DURATION,
    "user_lookup_fun": ANY,                           # hidden
})
# %% from apps/emqx/src/emqx_schema.erl fields("listener_ssl_opts") (server_ssl_opts_schema(_, false))
LISTENER_SSL_OPTS = Struct('apps/emqx/src/emqx_schema.erl fields("listener_ssl_opts")', dict(_SERVER_SSL, **{
    "gc_after_handshake": BOOL,
    "ocsp": STRUCT(OCSP),
    "enable_crl_check": BOOL,
}), enterprise=_ENTERPRISE_SSL)
# %% from apps/emqx/src/emqx_schema.erl fields("listener_wss_opts") (server_ssl_opts_schema(_, true))
LISTENER_WSS_OPTS = Struct('apps/emqx/src/emqx_schema.erl fields("listener_wss_opts")', _SERVER_SSL,
                           enterprise=_ENTERPRISE_SSL)
# %% from apps/emqx/src/emqx_schema.erl fields("ssl_client_opts") (client_ssl_opts_schema/1)
SSL_CLIENT_OPTS = Struct('apps/emqx/src/emqx_schema.erl fields("ssl_client_opts")', dict(_COMMON_SSL, **{
    "enable": BOOL,
    "server_name_indication": STRING,                 # disable | a host name
    "user_lookup_fun": DEPRECATED,
}), enterprise=_ENTERPRISE_SSL)

# %% from apps/emqx/src/emqx_schema.erl base_listener/1 ++ emqx_limiter_schema:short_paths_fields/0
# %% (apps/emqx/src/emqx_limiter/src/emqx_limiter_schema.erl) ++ mqtt_listener/1, with `authentication`
# %% injected at 'mqtt.listener' by apps/emqx_auth/src/emqx_authn/emqx_authn_schema.erl
_MQTT_LISTENER = {
    "enable": BOOL,
    "bind": IP_PORT,
    "acceptors": POS_INT,
    "max_connections": UNION("infinity", POS_INT),
    "mountpoint": STRING,
    "zone": ATOM,
    "limiter": ANY,                                   # hidden, emqx_limiter_schema listener_fields
    "enable_authn": ENUM(True, False, "quick_deny_anonymous"),
    "max_conn_rate": ANY,                             # a rate: infinity | "1000/s"
    "messages_rate": ANY,
    "bytes_rate": ANY,
    "access_rules": CHECK("access_rules", ARRAY(STRING)),
    "proxy_protocol": BOOL,
    "proxy_protocol_timeout": DURATION,
    "authentication": ANY,                            # hidden; an array of authenticator unions
    "tcp_options": STRUCT(TCP_OPTS),
}
_LISTENER_ALIASES = {"enabled": "enable"}
# %% from apps/emqx/src/emqx_schema.erl fields("mqtt_tcp_listener")
MQTT_TCP_LISTENER = Struct('apps/emqx/src/emqx_schema.erl fields("mqtt_tcp_listener")', _MQTT_LISTENER, _LISTENER_ALIASES)
# %% from apps/emqx/src/emqx_schema.erl fields("mqtt_ssl_listener")
MQTT_SSL_LISTENER = Struct('apps/emqx/src/emqx_schema.erl fields("mqtt_ssl_listener")',
                           dict(_MQTT_LISTENER, ssl_options=STRUCT(LISTENER_SSL_OPTS)), _LISTENER_ALIASES)
# %% from apps/emqx/src/emqx_schema.erl fields("mqtt_ws_listener")
MQTT_WS_LISTENER = Struct('apps/emqx/src/emqx_schema.erl fields("mqtt_ws_listener")',
                          dict(_MQTT_LISTENER, websocket=STRUCT(WS_OPTS)), _LISTENER_ALIASES)
# %% from apps/emqx/src/emqx_schema.erl fields("mqtt_wss_listener")
MQTT_WSS_LISTENER = Struct('apps/emqx/src/emqx_schema.erl fields("mqtt_wss_listener")',
                           dict(_MQTT_LISTENER, ssl_options=STRUCT(LISTENER_WSS_OPTS), websocket=STRUCT(WS_OPTS)),
                           _LISTENER_ALIASES)

# %% from apps/emqx/src/emqx_schema.erl fields("listeners") (listeners/0)
LISTENERS = Struct('apps/emqx/src/emqx_schema.erl fields("listeners")', {
    "tcp": TOMBSTONE_MAP(STRUCT(MQTT_TCP_LISTENER)),
    "ssl": TOMBSTONE_MAP(STRUCT(MQTT_SSL_LISTENER)),
    "ws": TOMBSTONE_MAP(STRUCT(MQTT_WS_LISTENER)),
    "wss": TOMBSTONE_MAP(STRUCT(MQTT_WSS_LISTENER)),
    "quic": ANY,                                      # fields("mqtt_quic_listener"): not modelled
})

# ---- node, cluster, rpc, log ----------------------------------------------------------------------
# %% from apps/emqx_conf/src/emqx_conf_schema.erl fields("cluster_call")
CLUSTER_CALL = Struct('apps/emqx_conf/src/emqx_conf_schema.erl fields("cluster_call")', {
    "retry_interval": DURATION,
    "max_history": INT(100, 10240),
    "cleanup_interval": DURATION,
})

# %% from apps/emqx_conf/src/emqx_conf_schema.erl fields("node")
NODE = Struct('apps/emqx_conf/src/emqx_conf_schema.erl fields("node")', {
    "name": STRING,
    "cookie": SECRET,
    "process_limit": DEPRECATED,
    "max_ports": INT(1024, 134217727),
    "dist_buffer_size": INT(1, 2097151),
    "max_ets_tables": POS_INT,
    "data_dir": STRING,
    "config_files": ARRAY(STRING),
    "global_gc_interval": UNION("disabled", DURATION),
    "crash_dump_file": STRING,
    "crash_dump_seconds": TIMEOUT_S,
    "crash_dump_bytes": BYTESIZE,
    "dist_net_ticktime": TIMEOUT_S,
    "backtrace_depth": INT(),
    "applications": COMMA_LIST,
    "etc_dir": DEPRECATED,
    "cluster_call": STRUCT(CLUSTER_CALL),
    "db_backend": ENUM("mnesia", "rlog"),
    "role": CHECK("node_role", ENUM("core", "replicant")),
    "rpc_module": ENUM("gen_rpc", "rpc"),
    "tlog_push_mode": DEPRECATED,
    "default_shard_transport": ENUM("gen_rpc", "distr"),
    "shard_transports": MAP(ENUM("gen_rpc", "distr")),
    "default_bootstrap_batch_size": POS_INT,
    "broker_pool_size": POS_INT,
    "generic_pool_size": POS_INT,
    "channel_cleanup_batch_size": POS_INT,
}, aliases={"db_role": "role"})

# %% from apps/emqx_conf/src/emqx_conf_schema.erl fields(cluster_static)
CLUSTER_STATIC = Struct('apps/emqx_conf/src/emqx_conf_schema.erl fields(cluster_static)', {
    "seeds": COMMA_LIST,                              # node_array(): "a@h1, b@h2" or an array
})
# %% from apps/emqx_conf/src/emqx_conf_schema.erl fields(cluster_dns)
CLUSTER_DNS = Struct('apps/emqx_conf/src/emqx_conf_schema.erl fields(cluster_dns)', {
    "name": STRING,
    "record_type": ENUM("a", "aaaa", "srv"),
})
# %% from apps/emqx_conf/src/emqx_conf_schema.erl fields(cluster_etcd)
CLUSTER_ETCD = Struct('apps/emqx_conf/src/emqx_conf_schema.erl fields(cluster_etcd)', {
    "server": COMMA_STRING,
    "prefix": STRING,
    "node_ttl": DURATION,
    "ssl_options": STRUCT(SSL_CLIENT_OPTS),
}, aliases={"ssl": "ssl_options"})
# %% from apps/emqx_conf/src/emqx_conf_schema.erl fields(cluster_k8s)
CLUSTER_K8S = Struct('apps/emqx_conf/src/emqx_conf_schema.erl fields(cluster_k8s)', {
    "apiserver": STRING,
    "service_name": STRING,
    "address_type": ENUM("ip", "dns", "hostname"),
    "namespace": STRING,
    "suffix": STRING,
})
# %% from apps/emqx_conf/src/emqx_conf_schema.erl fields("cluster") (nothing injected at `cluster` in 5.8.9)
CLUSTER = Struct('apps/emqx_conf/src/emqx_conf_schema.erl fields("cluster")', {
    "name": ATOM,
    "discovery_strategy": ENUM("manual", "static", "singleton", "dns", "etcd", "k8s"),
    "autoclean": DURATION,
    "autoheal": BOOL,
    "proto_dist": ENUM("inet_tcp", "inet6_tcp", "inet_tls", "inet6_tls"),
    "quic_lb_mode": ANY,                              # hidden; integer | string
    "static": STRUCT(CLUSTER_STATIC),
    "dns": STRUCT(CLUSTER_DNS),
    "etcd": STRUCT(CLUSTER_ETCD),
    "k8s": STRUCT(CLUSTER_K8S),
    "prevent_overlapping_partitions": BOOL,
})

# %% from apps/emqx_conf/src/emqx_conf_schema.erl fields("rpc")
RPC = Struct('apps/emqx_conf/src/emqx_conf_schema.erl fields("rpc")', {
    "mode": ENUM("sync", "async"),
    "protocol": ENUM("tcp", "ssl"),
    "async_batch_size": INT(),
    "port_discovery": ENUM("manual", "stateless"),
    "server_port": POS_INT,
    "client_num": INT(1, 256),
    "connect_timeout": DURATION,
    "certfile": STRING,
    "keyfile": STRING,
    "cacertfile": STRING,
    "send_timeout": DURATION,
    "authentication_timeout": DURATION,
    "call_receive_timeout": DURATION,
    "socket_keepalive_idle": TIMEOUT_S,
    "socket_keepalive_interval": TIMEOUT_S,
    "socket_keepalive_count": INT(),
    "socket_sndbuf": BYTESIZE,
    "socket_recbuf": BYTESIZE,
    "socket_buffer": BYTESIZE,
    "insecure_fallback": BOOL,
    "ciphers": ANY,
    "tls_versions": CHECK("tls_versions", ARRAY(ATOM)),
    "listen_address": STRING,
    "ipv6_only": BOOL,
}, aliases={"driver": "protocol", "tcp_server_port": "server_port", "ssl_server_port": "server_port",
            "tcp_client_num": "client_num"})

# %% from apps/emqx_conf/src/emqx_conf_schema.erl fields("log_overload_kill")
LOG_OVERLOAD_KILL = Struct('apps/emqx_conf/src/emqx_conf_schema.erl fields("log_overload_kill")', {
    "enable": BOOL,
    "mem_size": BYTESIZE,
    "qlen": POS_INT,
    "restart_after": UNION(TIMEOUT_MS, "infinity"),
})
# %% from apps/emqx_conf/src/emqx_conf_schema.erl fields("log_burst_limit")
LOG_BURST_LIMIT = Struct('apps/emqx_conf/src/emqx_conf_schema.erl fields("log_burst_limit")', {
    "enable": BOOL,
    "max_count": POS_INT,
    "window_time": DURATION,
})
# %% from apps/emqx_conf/src/emqx_conf_schema.erl log_handler_common_confs/2
_LOG_HANDLER_COMMON = {
    "level": ENUM(*LOG_LEVELS),
    "enable": BOOL,
    "formatter": ENUM("text", "json"),
    "timestamp_format": ENUM("auto", "epoch", "rfc3339"),
    "time_offset": CHECK("time_offset", STRING),
    "chars_limit": UNION("unlimited", INT(100)),
    "single_line": BOOL,
    "sync_mode_qlen": NON_NEG_INT,
    "drop_mode_qlen": POS_INT,
    "flush_qlen": POS_INT,
    "overload_kill": STRUCT(LOG_OVERLOAD_KILL),
    "burst_limit": STRUCT(LOG_BURST_LIMIT),
    "supervisor_reports": ENUM("error", "progress"),
    "max_depth": UNION("unlimited", NON_NEG_INT),
    "with_mfa": BOOL,
    "payload_encode": ENUM("hex", "text", "hidden"),
}
# %% from apps/emqx_conf/src/emqx_conf_schema.erl fields("console_handler")
LOG_CONSOLE = Struct('apps/emqx_conf/src/emqx_conf_schema.erl fields("console_handler")', _LOG_HANDLER_COMMON,
                     aliases={"format": "formatter"})
# %% from apps/emqx_conf/src/emqx_conf_schema.erl fields("log_file_handler")
LOG_FILE_HANDLER = Struct('apps/emqx_conf/src/emqx_conf_schema.erl fields("log_file_handler")', dict(_LOG_HANDLER_COMMON, **{
    "path": STRING,
    "rotation_count": CHECK("rotation_count", INT(1, 128)),
    "rotation_size": UNION("infinity", BYTESIZE),
}), aliases={"format": "formatter", "file": "path", "to": "path", "rotation": "rotation_count", "max_size": "rotation_size"})
# %% from apps/emqx_conf/src/emqx_conf_schema.erl fields("log_throttling")
LOG_THROTTLING = Struct('apps/emqx_conf/src/emqx_conf_schema.erl fields("log_throttling")', {
    "time_window": TIMEOUT_S,
    "msgs": ANY,                                      # hidden; an array of message names
})
# %% from apps/emqx_conf/src/emqx_conf_schema.erl fields("log"); `file` is a union of one handler and a map of
# %% named handlers, which the converter ensure_file_handlers/2 turns into the map (unnamed fields -> "default")
LOG = Struct('apps/emqx_conf/src/emqx_conf_schema.erl fields("log")', {
    "console": STRUCT(LOG_CONSOLE),
    "file": ("log_file", LOG_FILE_HANDLER),
    "throttling": STRUCT(LOG_THROTTLING),
}, aliases={"console_handler": "console", "file_handlers": "file"})

# ---- dashboard, api_key, retainer -----------------------------------------------------------------
# %% from apps/emqx_dashboard/src/emqx_dashboard_schema.erl common_listener_fields/0, enable/1, bind/1
_DASHBOARD_LISTENER = {
    "enable": DEPRECATED,
    "bind": IP_PORT,
    "num_acceptors": INT(),
    "max_connections": INT(),
    "backlog": INT(),
    "send_timeout": DURATION,
    "inet6": BOOL,
    "ipv6_v6only": BOOL,
    "proxy_header": BOOL,
}
# %% from apps/emqx_dashboard/src/emqx_dashboard_schema.erl fields("ssl_options") (server_ssl_opts_schema(#{}, true))
DASHBOARD_SSL_OPTS = Struct('apps/emqx_dashboard/src/emqx_dashboard_schema.erl fields("ssl_options")', _SERVER_SSL,
                            enterprise=_ENTERPRISE_SSL)
# %% from apps/emqx_dashboard/src/emqx_dashboard_schema.erl fields("http")
DASHBOARD_HTTP = Struct('apps/emqx_dashboard/src/emqx_dashboard_schema.erl fields("http")', _DASHBOARD_LISTENER)
# %% from apps/emqx_dashboard/src/emqx_dashboard_schema.erl fields("https"); https_converter/2 moves TLS fields
# %% written next to bind into ssl_options when there is no ssl_options block
DASHBOARD_HTTPS = Struct('apps/emqx_dashboard/src/emqx_dashboard_schema.erl fields("https")',
                         dict(_DASHBOARD_LISTENER, ssl_options=STRUCT(DASHBOARD_SSL_OPTS)))
# %% from apps/emqx_dashboard/src/emqx_dashboard_schema.erl fields("listeners")
DASHBOARD_LISTENERS = Struct('apps/emqx_dashboard/src/emqx_dashboard_schema.erl fields("listeners")', {
    "http": STRUCT(DASHBOARD_HTTP),
    "https": ("dashboard_https", DASHBOARD_HTTPS),
})
# %% from apps/emqx_dashboard/src/emqx_dashboard_schema.erl fields("dashboard") (sso_fields() is [] in the
# %% open-source build)
DASHBOARD = Struct('apps/emqx_dashboard/src/emqx_dashboard_schema.erl fields("dashboard")', {
    "listeners": STRUCT(DASHBOARD_LISTENERS),
    "default_username": STRING,
    "default_password": SECRET,
    "sample_interval": CHECK("sample_interval", TIMEOUT_S),
    "token_expired_time": DURATION,
    "cors": BOOL,
    "swagger_support": BOOL,
    "i18n_lang": ENUM("en", "zh"),
    "bootstrap_users_file": DEPRECATED,
}, enterprise={"sso": ANY})

# %% from apps/emqx_management/src/emqx_mgmt_api_key_schema.erl fields("api_key")
API_KEY = Struct('apps/emqx_management/src/emqx_mgmt_api_key_schema.erl fields("api_key")', {
    "bootstrap_file": STRING,
})

# %% from apps/emqx_retainer/src/emqx_retainer_schema.erl fields(flow_control)
RETAINER_FLOW_CONTROL = Struct('apps/emqx_retainer/src/emqx_retainer_schema.erl fields(flow_control)', {
    "batch_read_number": NON_NEG_INT,
    "batch_deliver_number": NON_NEG_INT,
    "batch_deliver_limiter": ANY,                     # emqx_limiter_schema internal
})
# %% from apps/emqx_retainer/src/emqx_retainer_schema.erl fields(mnesia_config)
RETAINER_MNESIA = Struct('apps/emqx_retainer/src/emqx_retainer_schema.erl fields(mnesia_config)', {
    "type": ENUM("built_in_database"),
    "storage_type": ENUM("ram", "disc"),
    "max_retained_messages": NON_NEG_INT,
    "index_specs": ANY,                               # a list of arrays of positions
    "enable": BOOL,
})
# %% from apps/emqx_retainer/src/emqx_retainer_schema.erl fields("retainer")
RETAINER = Struct('apps/emqx_retainer/src/emqx_retainer_schema.erl fields("retainer")', {
    "enable": BOOL,
    "msg_expiry_interval": DURATION_MS,
    "msg_expiry_interval_override": UNION("disabled", DURATION_MS),
    "allow_never_expire": BOOL,
    "msg_clear_interval": TIMEOUT_MS,
    "msg_clear_limit": POS_INT,
    "flow_control": STRUCT(RETAINER_FLOW_CONTROL),
    "max_payload_size": BYTESIZE,
    "stop_publish_clear_msg": BOOL,
    "delivery_rate": ANY,                             # a rate: infinity | "1000/s"
    "max_publish_rate": ANY,
    "backend": STRUCT(RETAINER_MNESIA),
    "external_backends": ANY,                         # hidden injection point, empty in the open-source build
}, aliases={"deliver_rate": "delivery_rate"})

# ---- the smaller roots of emqx_schema -------------------------------------------------------------
# %% from apps/emqx/src/emqx_schema.erl fields("flapping_detect") (flapping_detect_converter/2 also takes
# %% window_time = disable)
FLAPPING_DETECT = Struct('apps/emqx/src/emqx_schema.erl fields("flapping_detect")', {
    "enable": BOOL,
    "window_time": UNION("disable", DURATION),
    "max_count": NON_NEG_INT,
    "ban_time": DURATION,
})
# %% from apps/emqx/src/emqx_schema.erl fields("force_shutdown")
FORCE_SHUTDOWN = Struct('apps/emqx/src/emqx_schema.erl fields("force_shutdown")', {
    "enable": BOOL,
    "max_mailbox_size": NON_NEG_INT,
    "max_heap_size": CHECK("max_heap_size", WORDSIZE),
}, aliases={"max_message_queue_len": "max_mailbox_size"})
# %% from apps/emqx/src/emqx_schema.erl fields("overload_protection")
OVERLOAD_PROTECTION = Struct('apps/emqx/src/emqx_schema.erl fields("overload_protection")', {
    "enable": BOOL,
    "backoff_delay": NON_NEG_INT,
    "backoff_gc": BOOL,
    "backoff_hibernation": BOOL,
    "backoff_new_conn": BOOL,
})
# %% from apps/emqx/src/emqx_schema.erl fields("conn_congestion")
CONN_CONGESTION = Struct('apps/emqx/src/emqx_schema.erl fields("conn_congestion")', {
    "enable_alarm": BOOL,
    "min_alarm_sustain_duration": DURATION,
})
# %% from apps/emqx/src/emqx_schema.erl fields("force_gc")
FORCE_GC = Struct('apps/emqx/src/emqx_schema.erl fields("force_gc")', {
    "enable": BOOL,
    "count": NON_NEG_INT,
    "bytes": BYTESIZE,
})
# %% from apps/emqx/src/emqx_schema.erl fields("stats")
STATS = Struct('apps/emqx/src/emqx_schema.erl fields("stats")', {"enable": BOOL})
# %% from apps/emqx/src/emqx_schema.erl fields("sysmon_vm")
SYSMON_VM = Struct('apps/emqx/src/emqx_schema.erl fields("sysmon_vm")', {
    "process_check_interval": DURATION,
    "process_high_watermark": PERCENT,
    "process_low_watermark": PERCENT,
    "long_gc": UNION("disabled", DURATION),
    "long_schedule": UNION("disabled", DURATION),
    "large_heap": UNION("disabled", BYTESIZE),
    "busy_dist_port": BOOL,
    "busy_port": BOOL,
})
# %% from apps/emqx/src/emqx_schema.erl fields("sysmon_os")
SYSMON_OS = Struct('apps/emqx/src/emqx_schema.erl fields("sysmon_os")', {
    "cpu_check_interval": DURATION,
    "cpu_high_watermark": PERCENT,
    "cpu_low_watermark": PERCENT,
    "mem_check_interval": UNION("disabled", DURATION),
    "sysmem_high_watermark": PERCENT,
    "procmem_high_watermark": PERCENT,
})
# %% from apps/emqx/src/emqx_schema.erl fields("sysmon_top")
SYSMON_TOP = Struct('apps/emqx/src/emqx_schema.erl fields("sysmon_top")', {
    "num_items": NON_NEG_INT,
    "sample_interval": DURATION,
    "max_procs": NON_NEG_INT,
    "db_hostname": STRING,
    "db_port": INT(),
    "db_username": STRING,
    "db_password": SECRET,
    "db_name": STRING,
})
# %% from apps/emqx/src/emqx_schema.erl fields("sysmon")
SYSMON = Struct('apps/emqx/src/emqx_schema.erl fields("sysmon")', {
    "vm": STRUCT(SYSMON_VM),
    "os": STRUCT(SYSMON_OS),
    "top": STRUCT(SYSMON_TOP),
    "mnesia_tm_mailbox_size_alarm_threshold": POS_INT,
    "broker_pool_mailbox_size_alarm_threshold": POS_INT,
})
# %% from apps/emqx/src/emqx_schema.erl fields("alarm")
ALARM = Struct('apps/emqx/src/emqx_schema.erl fields("alarm")', {
    "actions": ARRAY(ENUM("log", "publish")),
    "size_limit": INT(1, 3000),
    "validity_period": DURATION,
})
# %% from apps/emqx/src/emqx_schema.erl fields("event_names")
EVENT_NAMES = Struct('apps/emqx/src/emqx_schema.erl fields("event_names")', {
    "client_connected": BOOL,
    "client_disconnected": BOOL,
    "client_subscribed": BOOL,
    "client_unsubscribed": BOOL,
})
# %% from apps/emqx/src/emqx_schema.erl fields("sys_topics")
SYS_TOPICS = Struct('apps/emqx/src/emqx_schema.erl fields("sys_topics")', {
    "sys_msg_interval": UNION("disabled", DURATION),
    "sys_heartbeat_interval": UNION("disabled", DURATION),
    "sys_event_messages": STRUCT(EVENT_NAMES),
})
# %% from apps/emqx/src/emqx_schema.erl fields("durable_sessions")
DURABLE_SESSIONS = Struct('apps/emqx/src/emqx_schema.erl fields("durable_sessions")', {
    "enable": BOOL,
    "batch_size": POS_INT,
    "idle_poll_interval": TIMEOUT,
    "heartbeat_interval": TIMEOUT,
    "renew_streams_interval": TIMEOUT,
    "session_gc_interval": TIMEOUT,
    "session_gc_batch_size": POS_INT,
    "subscription_count_refresh_interval": TIMEOUT,
    "disconnected_session_count_refresh_interval": TIMEOUT,
    "message_retention_period": TIMEOUT,
    "force_persistence": BOOL,
})
# %% from apps/emqx/src/emqx_schema.erl fields("crl_cache")
CRL_CACHE = Struct('apps/emqx/src/emqx_schema.erl fields("crl_cache")', {
    "refresh_interval": DURATION,
    "http_timeout": DURATION,
    "capacity": POS_INT,
})
# %% from apps/emqx/src/emqx_schema.erl fields("banned")
BANNED = Struct('apps/emqx/src/emqx_schema.erl fields("banned")', {"bootstrap_file": STRING})
# %% from apps/emqx/src/emqx_schema.erl fields("trace")
TRACE = Struct('apps/emqx/src/emqx_schema.erl fields("trace")', {"payload_encode": DEPRECATED})
# %% from apps/emqx/src/emqx_schema.erl fields("broker_perf")
BROKER_PERF = Struct('apps/emqx/src/emqx_schema.erl fields("broker_perf")', {
    "route_lock_type": ENUM("key", "tab", "global"),
    "trie_compaction": BOOL,
})
# %% from apps/emqx/src/emqx_schema.erl fields("broker_routing_batch_sync")
BROKER_ROUTING_BATCH_SYNC = Struct('apps/emqx/src/emqx_schema.erl fields("broker_routing_batch_sync")', {
    "enable_on": ENUM("none", "core", "replicant", "all"),
})
# %% from apps/emqx/src/emqx_schema.erl fields("broker_routing")
BROKER_ROUTING = Struct('apps/emqx/src/emqx_schema.erl fields("broker_routing")', {
    "storage_schema": ENUM("v1", "v2"),
    "batch_sync": STRUCT(BROKER_ROUTING_BATCH_SYNC),
})
# %% from apps/emqx/src/emqx_schema.erl fields("shared_subscription_group")
SHARED_SUBSCRIPTION_GROUP = Struct('apps/emqx/src/emqx_schema.erl fields("shared_subscription_group")', {
    "strategy": ENUM(*SHARED_SUB_STRATEGIES),
    "initial_sticky_pick": ENUM("random", "local", "hash_topic", "hash_clientid"),
})
# %% from apps/emqx/src/emqx_schema.erl fields("broker")
BROKER = Struct('apps/emqx/src/emqx_schema.erl fields("broker")', {
    "enable_session_registry": BOOL,
    "session_history_retain": DURATION_S,
    "session_locking_strategy": ENUM("local", "leader", "quorum", "all"),
    "shared_subscription_strategy": DEPRECATED,
    "shared_dispatch_ack_enabled": DEPRECATED,
    "route_batch_clean": BOOL,
    "perf": STRUCT(BROKER_PERF),
    "routing": STRUCT(BROKER_ROUTING),
    "shared_subscription_group": MAP(STRUCT(SHARED_SUBSCRIPTION_GROUP)),
})
# %% from apps/emqx/src/emqx_schema.erl fields("authz_cache")
AUTHZ_CACHE = Struct('apps/emqx/src/emqx_schema.erl fields("authz_cache")', {
    "enable": BOOL,
    "max_size": INT(1, 1048576),
    "ttl": DURATION,
    "excludes": ARRAY(STRING),
})
# %% from apps/emqx_conf/src/emqx_conf_schema.erl fields("authorization") = emqx_schema:authz_fields() ++
# %% apps/emqx_auth/src/emqx_authz/emqx_authz_schema.erl authz_fields() (sources: an array of unions)
AUTHORIZATION = Struct('apps/emqx_conf/src/emqx_conf_schema.erl fields("authorization")', {
    "no_match": ENUM("allow", "deny"),
    "deny_action": ENUM("ignore", "disconnect"),
    "cache": STRUCT(AUTHZ_CACHE),
    "sources": ANY,
})
# %% from apps/emqx/src/emqx_zone_schema.erl roots/0 and fields/1: the same structs without defaults
ZONE = Struct('apps/emqx/src/emqx_zone_schema.erl roots/0', {
    "mqtt": STRUCT(MQTT),
    "stats": STRUCT(STATS),
    "flapping_detect": STRUCT(FLAPPING_DETECT),
    "force_shutdown": STRUCT(FORCE_SHUTDOWN),
    "conn_congestion": STRUCT(CONN_CONGESTION),
    "force_gc": STRUCT(FORCE_GC),
    "overload_protection": STRUCT(OVERLOAD_PROTECTION),
    "durable_sessions": STRUCT(DURABLE_SESSIONS),
})

# The roots whose contents are checked, and the type of each.
ROOTS = {
    "mqtt": STRUCT(MQTT),
    "listeners": STRUCT(LISTENERS),
    "zones": MAP(STRUCT(ZONE)),
    "authorization": STRUCT(AUTHORIZATION),
    "node": STRUCT(NODE),
    "cluster": STRUCT(CLUSTER),
    "log": STRUCT(LOG),
    "rpc": STRUCT(RPC),
    "broker": STRUCT(BROKER),
    "sys_topics": STRUCT(SYS_TOPICS),
    "force_shutdown": STRUCT(FORCE_SHUTDOWN),
    "overload_protection": STRUCT(OVERLOAD_PROTECTION),
    "force_gc": STRUCT(FORCE_GC),
    "conn_congestion": STRUCT(CONN_CONGESTION),
    "stats": STRUCT(STATS),
    "sysmon": STRUCT(SYSMON),
    "alarm": STRUCT(ALARM),
    "flapping_detect": STRUCT(FLAPPING_DETECT),
    "durable_sessions": STRUCT(DURABLE_SESSIONS),
    "trace": STRUCT(TRACE),
    "crl_cache": STRUCT(CRL_CACHE),
    "banned": STRUCT(BANNED),
    "retainer": STRUCT(RETAINER),
    "dashboard": STRUCT(DASHBOARD),
    "api_key": STRUCT(API_KEY),
}
