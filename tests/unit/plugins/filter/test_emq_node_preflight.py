# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for the iothub.emq.emq_node_problems filter: every per-host check of emq_node's preflight.

BASE is what roles/emq_node/tasks/preflight.yml hands over for a valid host of a two-node group; each case
changes some of it and names text the problem it causes must hold: the variable and the fix.
"""

from __future__ import annotations

import hashlib

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.iothub.emq.plugins.filter.emq_node_preflight import INPUTS, FilterModule, emq_node_problems

COOKIE = "ck-0123456789abcdef0123"
PASSWORD = "pw-Secret-2024"
API_SECRET = "as-0123456789abcdef"
LICENSE = "lic-0123456789abcdef"
SALT = "salt-1"
DEVICE_HASH = hashlib.sha256(b"device-password" + SALT.encode()).hexdigest()
SECRETS = (COOKIE, PASSWORD, API_SECRET, LICENSE, DEVICE_HASH)

LISTENERS = {
    "tcp": {"enable": True, "bind": "0.0.0.0:1883"},
    "ws": {"enable": True, "bind": "0.0.0.0:8083"},
    "ssl": {"enable": False, "bind": "0.0.0.0:8883"},
    "wss": {"enable": False, "bind": "0.0.0.0:8084"},
}

BASE = {
    "inventory_hostname": "n1",
    "distribution": "Debian",
    "distribution_major_version": "12",
    "distribution_version": "12.7",
    "_emq_node_supported_os": {"Debian": ["12", "13"]},
    "_emq_node_install_sources": ["repository", "url", "package"],
    "_emq_node_discovery_strategies": ["static", "manual", "dns", "etcd"],
    "_emq_node_listener_types": ["tcp", "ssl", "ws", "wss"],
    "_emq_node_group_names": ["emqx@10.0.0.1", "emqx@10.0.0.2"],
    "_emq_node_group_cores": ["emqx@10.0.0.1", "emqx@10.0.0.2"],
    "_emq_node_group_roles": {"emqx@10.0.0.1": "core", "emqx@10.0.0.2": "core"},
    "_emq_node_node_roles": ["core", "replicant"],
    "_emq_node_bind_errors": [],
    "_emq_node_ports": [1883, 8083, 18083, 4370, 5370],
    "_emq_node_tls_missing": [],
    "emq_node_group": "emq_nodes",
    "emq_node_version": "5.8.9",
    "emq_node_install_source": "repository",
    "emq_node_package_url": "",
    "emq_node_package_sha256": "",
    "emq_node_package_file": "",
    "emq_node_cookie": COOKIE,
    "emq_node_dashboard_password": PASSWORD,
    "emq_node_dashboard_password_previous": "",
    "emq_node_name": "emqx@10.0.0.1",
    "emq_node_allow_numbered_name": False,
    "emq_node_role": "core",
    "emq_node_discovery": "static",
    "emq_node_dns_name": "",
    "emq_node_dns_record_type": "a",
    "emq_node_etcd_server": "",
    "emq_node_etcd_prefix": "emqxcl",
    "emq_node_etcd_node_ttl": "1m",
    "emq_node_static_seeds": [],
    "emq_node_listeners": LISTENERS,
    "emq_node_api_keys": [{"key": "ops", "secret": API_SECRET, "role": "administrator"}],
    "emq_node_extra_config": {"mqtt": {"max_packet_size": "2MB"}},
    "emq_node_durable_sessions": False,
    "emq_node_tls_versions": ["tlsv1.3", "tlsv1.2"],
    "emq_node_tls_ciphers": ["TLS_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"],
    "emq_node_data_dir": "/var/lib/emqx",
    "emq_node_secrets_dir": "/etc/emqx-secrets",
    "emq_node_api_key_file": "/etc/emqx-secrets/api_keys",
    "emq_node_dashboard_username": "admin",
    "emq_node_firewall_enabled": True,
    "emq_node_firewall_client_networks": ["192.168.0.0/16", "2001:db8::/32"],
    "emq_node_firewall_admin_networks": ["10.0.0.0/8"],
    "emq_node_firewall_lb_addresses": ["10.0.1.1"],
    "emq_node_firewall_plain_client_networks": ["192.168.0.0/16"],
    "emq_node_license_key": "",
    "emq_node_authn_password_hash_algorithm": {"name": "sha256", "salt_position": "suffix"},
    "emq_node_authz_topic_prefix": "devices",
    "emq_node_authz_rules": [{"permission": "allow", "action": "all", "topics": ["devices/${clientid}/#"]}],
    "emq_node_authentication": "password",
    "emq_node_allow_anonymous": False,
    "emq_node_authn_users": [{"user_id": "sensor-1", "password_hash": DEVICE_HASH, "salt": SALT}],
    "emq_node_target_connections": 1000,
    "emq_node_tuning_enabled": True,
    "emq_node_sysctl_apply": False,
    "emq_node_open_files": 0,
    "emq_node_open_files_headroom": 25,
    "emq_node_log_level": "warning",
    "emq_node_log_file_enabled": True,
    "emq_node_log_file_rotation_size": "50MB",
    "emq_node_log_file_rotation_count": 10,
    "emq_node_log_console_enabled": False,
    "emq_node_log_formatter": "text",
    "package_file_stat": {},
    "nr_open": "1048576\n",
    "nginx_lb_hosts": [],
    "haproxy_lb_client_ca_files": {},
    "emq_node_cluster_tls": False,
    "emq_node_cluster_tls_source": "files",
    "emq_node_cluster_tls_ca_file": "",
    "emq_node_cluster_tls_cert_file": "",
    "emq_node_cluster_tls_key_file": "",
    "emq_node_cluster_tls_lab_ca_dir": "/srv/inventory/.cluster-ca",
    "emq_node_cluster_tls_lab_days": 365,
    "emq_node_tls_lab_ca_dir": "/srv/inventory/.lab-ca",
    "_emq_node_ssl_dist_file": "/etc/emqx-secrets/ssl_dist.conf",
    "cluster_tls_ca_file_found": False,
}
CLUSTER_TLS_FILES = {"emq_node_cluster_tls": True, "emq_node_cluster_tls_ca_file": "/srv/ca.pem",
                     "emq_node_cluster_tls_cert_file": "/srv/n1.pem", "emq_node_cluster_tls_key_file": "/srv/n1.key",
                     "cluster_tls_ca_file_found": True}

PACKAGE = {"emq_node_install_source": "package", "emq_node_package_file": "files/emqx-5.8.9-debian12-amd64.deb",
           "package_file_stat": {"exists": True, "isreg": True}}
CLIENT_CERTIFICATE = {"emq_node_authentication": "client_certificate"}


# A group of one core (10.0.0.1) and one replicant (10.0.0.2).
REPLICANTS = {'_emq_node_group_cores': ['emqx@10.0.0.1'], '_emq_node_group_roles': {'emqx@10.0.0.1': 'core', 'emqx@10.0.0.2': 'replicant'}}


def problems_of(**changes):
    return emq_node_problems(dict(BASE, **changes))


def test_the_filter_is_registered():
    assert FilterModule().filters() == {"emq_node_problems": emq_node_problems}


def test_the_base_inputs_pass():
    assert emq_node_problems(dict(BASE)) == []


def test_the_base_names_every_input():
    assert sorted(BASE) == sorted(INPUTS)


@pytest.mark.parametrize("changes", [
    pytest.param({"distribution_major_version": "13", "distribution_version": "13.1"}, id="debian-13"),
    pytest.param(PACKAGE, id="package-file-found"),
    pytest.param({"emq_node_install_source": "url", "emq_node_package_url": "https://mirror.example/emqx.deb"}, id="url-without-sha256"),
    pytest.param({"emq_node_install_source": "url", "emq_node_package_url": "http://mirror.example/emqx.deb",
                  "emq_node_package_sha256": "AB" * 32}, id="url-with-sha256"),
    pytest.param({"emq_node_name": "emqx1@h", "emq_node_allow_numbered_name": True}, id="numbered-name-allowed"),
    pytest.param({"emq_node_tls_versions": ["tlsv1.3"], "emq_node_tls_ciphers": ["TLS_AES_256_GCM_SHA384"]}, id="tls-13-only"),
    pytest.param({"emq_node_name": "emqx@n1.mqtt.example", "emq_node_static_seeds": ["emqx@10.0.0.2"]}, id="fqdn-name-and-a-seed-of-the-group"),
    pytest.param({"emq_node_discovery": "dns", "emq_node_dns_name": "mqtt.example"}, id="dns-a-with-ip-names"),
    pytest.param({"emq_node_discovery": "etcd", "emq_node_etcd_server": "http://10.0.0.5:2379"}, id="etcd-with-server"),
    pytest.param({"emq_node_discovery": "etcd", "emq_node_etcd_server": "http://10.0.0.5:2379, 10.0.0.6:2379 http://etcd3:2379",
                  "emq_node_etcd_node_ttl": 60000}, id="etcd-servers-commas-blanks-no-scheme-ttl-ms"),
    pytest.param({"emq_node_discovery": "etcd", "emq_node_etcd_server": ["http://10.0.0.5:2379", "http://10.0.0.6:2379"],
                  "emq_node_etcd_node_ttl": "1h30m"}, id="etcd-servers-list"),
    pytest.param({"emq_node_etcd_server": "etcd", "emq_node_etcd_node_ttl": "soon"}, id="etcd-unread-without-etcd"),
    pytest.param({"emq_node_firewall_enabled": False, "emq_node_firewall_admin_networks": ["10.0.0.0/33"]}, id="firewall-off-networks-unread"),
    pytest.param({"emq_node_version": "5.10.4", "_emq_node_group_names": ["emqx@10.0.0.1"]}, id="one-enterprise-node-without-license"),
    pytest.param({"emq_node_version": "5.10.4", "emq_node_license_key": LICENSE}, id="enterprise-cluster-with-license"),
    pytest.param(dict(REPLICANTS, emq_node_version="5.10.4", emq_node_license_key=LICENSE, emq_node_role="replicant"),
                 id="enterprise-replicant"),
    pytest.param(dict(REPLICANTS, emq_node_version="5.10.4", emq_node_license_key=LICENSE, emq_node_discovery="dns",
                      emq_node_dns_name="mqtt.example", emq_node_role="replicant"), id="enterprise-replicant-dns"),
    pytest.param(dict(REPLICANTS, emq_node_version="5.10.4", emq_node_license_key=LICENSE, emq_node_static_seeds=["emqx@10.0.0.1"]),
                 id="core-with-core-seeds"),
    pytest.param({"emq_node_allow_anonymous": True, "emq_node_authn_users": []}, id="anonymous-without-users"),
    pytest.param({"emq_node_authentication": "client_certificate", "emq_node_authn_users": [{"bad": "ignored"}],
                  "haproxy_lb_client_ca_files": {"hlb1": "/etc/ca.pem"}}, id="client-certificates-through-haproxy-with-ca"),
    pytest.param({"emq_node_sysctl_apply": True, "nr_open": "", "emq_node_target_connections": 600000000}, id="sysctls-applied-nr-open-unread"),
    pytest.param({"emq_node_dashboard_password_previous": "Old-Password-1"}, id="previous-password"),
    pytest.param({"emq_node_secrets_dir": "/etc/emqx-secrets", "emq_node_api_key_file": "/etc/emqx-api/keys"}, id="key-file-elsewhere"),
    pytest.param(CLUSTER_TLS_FILES, id="cluster-tls-files"),
    pytest.param({"emq_node_cluster_tls": True, "emq_node_cluster_tls_source": "lab"}, id="cluster-tls-lab"),
    pytest.param({"emq_node_cluster_tls_source": "nonsense", "emq_node_cluster_tls_lab_days": 0}, id="cluster-tls-off-unread"),
])
def test_valid_inputs_give_no_problem(changes):
    assert problems_of(**changes) == []


CASES = [
    # TLS between the nodes
    ("cluster-tls-source-unknown", {"emq_node_cluster_tls": True, "emq_node_cluster_tls_source": "vault"},
     ('emq_node_cluster_tls_source is "vault"', "files", "lab")),
    ("cluster-tls-files-empty", {"emq_node_cluster_tls": True},
     ("emq_node_cluster_tls_ca_file, emq_node_cluster_tls_cert_file, emq_node_cluster_tls_key_file are empty", "naming 10.0.0.1")),
    ("cluster-tls-ca-missing", dict(CLUSTER_TLS_FILES, cluster_tls_ca_file_found=False),
     ('emq_node_cluster_tls_ca_file = "/srv/ca.pem" is not a readable file',)),
    ("cluster-tls-lab-shares-devices-ca", {"emq_node_cluster_tls": True, "emq_node_cluster_tls_source": "lab",
                                           "emq_node_cluster_tls_lab_ca_dir": "/srv/inventory/.lab-ca/"},
     ("the lab CA directory of the devices (emq_node_tls_lab_ca_dir)",)),
    ("cluster-tls-lab-days", {"emq_node_cluster_tls": True, "emq_node_cluster_tls_source": "lab", "emq_node_cluster_tls_lab_days": 400},
     ("emq_node_cluster_tls_lab_days=400 is outside 1..366",)),
    ("cluster-tls-space-in-path", dict(CLUSTER_TLS_FILES, _emq_node_ssl_dist_file="/etc/emqx secrets/ssl_dist.conf"),
     ("bin/emqx refuses to boot with a space", "emq_node_secrets_dir")),
    # operating system
    ("os-unsupported", {"distribution": "Alpine", "distribution_major_version": "3", "distribution_version": "3.20"},
     ("n1 runs Alpine 3.20", "Supported: Debian 12 (bookworm) and Debian 13 (trixie)", "remove it from the group emq_nodes")),
    ("os-version-unsupported", {"distribution_major_version": "11", "distribution_version": "11.9"}, ("Debian 11.9", "Supported:")),
    # install source
    ("install-source-unknown", {"emq_node_install_source": "ftp"},
     ("emq_node_install_source must be one of repository, url, package", '(got "ftp")')),
    ("version-not-emqx5", {"emq_node_version": "4.4.19"}, ("emq_node_version must be an EMQX 5 version like 5.8.9", '"4.4.19"')),
    ("version-two-parts", {"emq_node_version": "5.8"}, ("emq_node_version", "like 5.8.9")),
    ("version-a-word", {"emq_node_version": "latest"}, ("emq_node_version", '(got "latest")')),
    ("package-url-not-http", {"emq_node_install_source": "url", "emq_node_package_url": "ftp://mirror.example/emqx.deb"},
     ("emq_node_package_url", "http(s) address of the .deb")),
    ("package-sha256-short", {"emq_node_install_source": "url", "emq_node_package_url": "https://x.example/e.deb",
                              "emq_node_package_sha256": "abc"}, ("emq_node_package_sha256", "64-digit hex sha256", "<url>.sha256")),
    ("package-file-empty", {"emq_node_install_source": "package"},
     ("with install_source=package set emq_node_package_file", ".deb on the controller")),
    # the package file on the controller
    ("package-file-missing", dict(PACKAGE, package_file_stat={"exists": False}),
     ('emq_node_package_file is "files/emqx-5.8.9-debian12-amd64.deb"', "not a .deb file on the controller")),
    ("package-file-a-directory", dict(PACKAGE, package_file_stat={"exists": True, "isreg": False}), ("emq_node_package_file", "not a .deb file")),
    ("package-file-not-a-deb", dict(PACKAGE, emq_node_package_file="emqx-5.8.9.tar.gz"),
     ('"emqx-5.8.9.tar.gz"', "Give the path of the EMQX package you downloaded")),
    # cookie
    ("cookie-missing", {"emq_node_cookie": None}, ("emq_node_cookie must be set", "openssl rand -hex 24", "group_vars/emq_nodes/vault.yml")),
    ("cookie-a-number", {"emq_node_cookie": 12345678901234567890}, ("emq_node_cookie", "openssl rand -hex 24")),
    ("cookie-short", {"emq_node_cookie": "sh0rtC00k1e"}, ("emq_node_cookie", "at least 16")),
    ("cookie-default", {"emq_node_cookie": "emqxsecretcookie"}, ("emq_node_cookie", '"emqxsecretcookie"', "ansible-vault")),
    ("cookie-spaces", {"emq_node_cookie": "a cookie with spaces 1234"}, ("emq_node_cookie", "without spaces")),
    ("cookie-trailing-newline", {"emq_node_cookie": COOKIE + "\n"}, ("emq_node_cookie", "trailing newline", "printf '%s'")),
    ("cookie-placeholder", {"emq_node_cookie": "REPLACE-with-openssl-rand-hex-24"}, ("emq_node_cookie", "vault.yml.example")),
    # dashboard password
    ("password-missing", {"emq_node_dashboard_password": None}, ("emq_node_dashboard_password must be set", "ansible-vault")),
    ("password-public", {"emq_node_dashboard_password": "public"}, ("emq_node_dashboard_password", '"public"', "8 to 64 characters")),
    ("password-placeholder", {"emq_node_dashboard_password": "REPLACE-me-1"}, ("emq_node_dashboard_password", "REPLACE-...")),
    ("password-too-long", {"emq_node_dashboard_password": "Pw1-" + "x" * 61}, ("emq_node_dashboard_password", "(this one has 65)")),
    ("password-one-kind", {"emq_node_dashboard_password": "onlyletters"}, ("emq_node_dashboard_password", "two kinds of characters")),
    ("password-not-ascii", {"emq_node_dashboard_password": "p\u00e4ssw0rd-1"}, ("emq_node_dashboard_password", "ASCII characters only")),
    ("password-previous-a-number", {"emq_node_dashboard_password_previous": 1234}, ("emq_node_dashboard_password", "Store it with ansible-vault")),
    # node name
    ("node-name-double-at", {"emq_node_name": "emqx@@x"}, ('emq_node_name "emqx@@x" is not usable', "emqx@<IPv4 address or FQDN>")),
    ("node-name-space", {"emq_node_name": "emqx 1@h"}, ('"emqx 1@h"', "emq_node_cluster_address")),
    ("node-name-trailing-newline", {"emq_node_name": "emqx@10.0.0.1\n"}, ('"emqx@10.0.0.1\\n"', "trailing newline")),
    ("node-name-numbered", {"emq_node_name": "emqx1@h"}, ("emqx1@h", "4370+N", "emq_node_allow_numbered_name: true")),
    ("node-name-ipv6", {"emq_node_name": "emqx@2001:db8::1"}, ("IPv6 cluster addresses are not supported", "private IPv4 address")),
    # discovery
    ("discovery-unknown", {"emq_node_discovery": "gossip"}, ("emq_node_discovery must be one of static, manual, dns, etcd", '"gossip"')),
    ("discovery-dns-without-name", {"emq_node_discovery": "dns"}, ("emq_node_discovery=dns needs emq_node_dns_name",)),
    ("dns-record-type-unknown", {"emq_node_dns_record_type": "mx"}, ("emq_node_dns_record_type must be a, aaaa or srv", '"mx"')),
    ("discovery-etcd-without-server", {"emq_node_discovery": "etcd"}, ("emq_node_etcd_server", "http://10.0.0.5:2379")),
    ("discovery-etcd-blank-server", {"emq_node_discovery": "etcd", "emq_node_etcd_server": " , "},
     ("emq_node_discovery=etcd needs emq_node_etcd_server",)),
    ("etcd-server-without-port", {"emq_node_discovery": "etcd", "emq_node_etcd_server": "http://etcd.example"},
     ('"http://etcd.example"', "http://<host>:<port>", "does not boot")),
    ("etcd-server-trailing-slash", {"emq_node_discovery": "etcd", "emq_node_etcd_server": "http://10.0.0.5:2379/"},
     ('"http://10.0.0.5:2379/"', "no trailing /")),
    ("etcd-server-ipv6", {"emq_node_discovery": "etcd", "emq_node_etcd_server": "http://[2001:db8::5]:2379"},
     ('"http://[2001:db8::5]:2379"', "no IPv6 literal")),
    ("etcd-server-https", {"emq_node_discovery": "etcd", "emq_node_etcd_server": "https://10.0.0.5:2379"},
     ('"https://10.0.0.5:2379"', "cluster.etcd.ssl_options", "http://")),
    ("etcd-server-mapping", {"emq_node_discovery": "etcd", "emq_node_etcd_server": {"url": "http://10.0.0.5:2379"}},
     ("emq_node_etcd_server must be a string of etcd URLs",)),
    ("etcd-prefix-list", {"emq_node_discovery": "etcd", "emq_node_etcd_server": "http://10.0.0.5:2379", "emq_node_etcd_prefix": ["a"]},
     ("emq_node_etcd_prefix must be a string",)),
    ("etcd-node-ttl-not-a-duration", {"emq_node_discovery": "etcd", "emq_node_etcd_server": "http://10.0.0.5:2379",
                                      "emq_node_etcd_node_ttl": "1 minute"},
     ("emq_node_etcd_node_ttl must be a duration", '"1 minute"')),
    ("static-seeds-not-in-group", {"emq_node_static_seeds": ["emqx@10.0.0.1", "emqx@10.9.9.9"]},
     ("emq_node_static_seeds lists emqx@10.9.9.9,", "group emq_nodes (emqx@10.0.0.1, emqx@10.0.0.2)", "add those hosts to the group")),
    ("dns-a-with-host-names", {"emq_node_discovery": "dns", "emq_node_dns_name": "mqtt.example", "emq_node_name": "emqx@n1.mqtt.example"},
     ("emq_node_dns_record_type=a", "name@<IPv4 address>", "emqx@n1.mqtt.example", "change emq_node_dns_record_type")),
    ("dns-srv-with-ip-names", {"emq_node_discovery": "dns", "emq_node_dns_name": "_emqx._tcp.mqtt.example", "emq_node_dns_record_type": "srv"},
     ("emq_node_dns_record_type=srv", "<name>@<SRV target host>")),
    # listeners
    ("listener-type-unknown", {"emq_node_listeners": dict(LISTENERS, quic={"enable": True, "bind": "0.0.0.0:14567"})},
     ("emq_node_listeners is wrong: unknown listener types quic (use tcp, ssl, ws, wss)",)),
    ("listener-bind-host-name", {"_emq_node_bind_errors": ["localhost:1883"]},
     ("emq_node_listeners is wrong", "binds EMQX refuses at boot: localhost:1883", "write the address")),
    ("listener-ports-conflict", {"_emq_node_ports": [1883, 1883, 18083, 4370, 5370]},
     ("emq_node_listeners is wrong", "use the same port: 1883 ", "give each its own port")),
    ("tls-listener-cert-without-key", {"_emq_node_tls_missing": ["ssl"]},
     ("TLS listeners ssl have one of certfile and keyfile without the other", "or neither to have the role install "
      "emq_node_tls_cert_file")),
    ("tls-version-too-old", {"emq_node_tls_versions": ["tlsv1.2", "tlsv1.1"]},
     ("emq_node_tls_versions must list TLS versions of tlsv1.3, tlsv1.2", "'tlsv1.1'")),
    ("tls-versions-empty", {"emq_node_tls_versions": []}, ("emq_node_tls_versions must list", "at least one")),
    ("tls-ciphers-colon-string", {"emq_node_tls_ciphers": ["ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384"]},
     ("emq_node_tls_ciphers must be a list of OpenSSL cipher names, one an entry",)),
    ("tls-ciphers-not-a-list", {"emq_node_tls_ciphers": "ECDHE-RSA-AES128-GCM-SHA256"}, ("emq_node_tls_ciphers must be a list",)),
    ("tls-12-without-its-ciphers", {"emq_node_tls_ciphers": ["TLS_AES_128_GCM_SHA256"]},
     ("only TLS 1.3 suites", "offers TLS 1.2", "offer tlsv1.3 only")),
    ("plain-networks-not-cidrs", {"emq_node_firewall_plain_client_networks": ["lan"]},
     ("emq_node_firewall_plain_client_networks has lan",)),
    # API keys
    ("api-key-bad-role", {"emq_node_api_keys": [{"key": "ops", "secret": API_SECRET, "role": "superuser"}]},
     ("emq_node_api_keys is wrong for EMQX 5.8.9", "role 'superuser' is not one of administrator", "(default administrator)")),
    ("api-key-viewer-on-open-source", {"emq_node_api_keys": [{"key": "grafana", "secret": API_SECRET, "role": "viewer"}]},
     ("key grafana: role viewer needs the enterprise edition (5.9+)", "every key after it")),
    ("api-key-short-secret", {"emq_node_api_keys": [{"key": "ops", "secret": "tiny-Secret"}]}, ("emq_node_api_keys", "at least 16 characters")),
    # emq_node_extra_config against the schema, and its root keys
    ("extra-config-nested-typo", {"emq_node_extra_config": {"mqtt": {"max_packet_sise": "2MB"}}},
     ("EMQX 5.8.9 would refuse to start on emq_node_extra_config", "mqtt.max_packet_sise", "did you mean max_packet_size")),
    ("extra-config-boolean-yes", {"emq_node_extra_config": {"mqtt": {"retain_available": "yes"}}},
     ("mqtt.retain_available", "not true or false", "Fix these keys in emq_node_extra_config")),
    ("extra-config-unknown-root", {"emq_node_extra_config": {"mqqt": {"max_packet_size": "2MB"}}},
     ("emq_node_extra_config has root keys EMQX 5.8.9 does not know: mqqt", "drop them", "known roots: actions,")),
    # values written into emqx.conf
    ("secrets-dir-trailing-newline", {"emq_node_secrets_dir": "/etc/emqx-secrets\n"},
     ("cannot be written into emqx.conf", "emq_node_secrets_dir has a newline at the end", "use printf '%s'")),
    ("dashboard-username-with-a-quote", {"emq_node_dashboard_username": 'ad"min'}, ("emq_node_dashboard_username has a double quote",)),
    # where the secrets are kept
    ("secrets-dir-relative", {"emq_node_secrets_dir": "etc/emqx-secrets"},
     ('emq_node_secrets_dir is "etc/emqx-secrets"', "absolute path outside /etc/emqx", "chmod 0644 /etc/emqx/*")),
    ("secrets-dir-is-etc-emqx", {"emq_node_secrets_dir": "/etc/emqx"}, ('emq_node_secrets_dir is "/etc/emqx"', "e.g. /etc/emqx-secrets")),
    ("api-key-file-in-etc-emqx", {"emq_node_api_key_file": "/etc/emqx/api_keys"},
     ('emq_node_api_key_file is "/etc/emqx/api_keys"', "outside /etc/emqx", "<emq_node_secrets_dir>/api_keys")),
    # firewall networks
    ("firewall-admin-network-bad", {"emq_node_firewall_admin_networks": ["10.0.0.0/8", "10.0.0.0/33"]},
     ("Not IP networks: emq_node_firewall_admin_networks has 10.0.0.0/33;", "CIDRs like 10.0.0.0/8")),
    ("firewall-lb-address-bad", {"emq_node_firewall_lb_addresses": ["lb1.example"]},
     ("emq_node_firewall_lb_addresses has lb1.example", "haproxy_lb_private_address / nginx_lb_private_address")),
    # license
    ("enterprise-cluster-without-license", {"emq_node_version": "5.10.4"},
     ("EMQX 5.10.4 is the enterprise edition: clustering 2 nodes needs a license key", "emq_node_license_key", "open-source 5.8.x")),
    ("license-on-open-source", {"emq_node_license_key": LICENSE},
     ("emq_node_license_key is set, but EMQX 5.8.9 is the open-source build", "Remove emq_node_license_key")),
    # node roles
    ("replicant-on-open-source", dict(REPLICANTS, emq_node_role="replicant"),
     ("emq_node_role is replicant, but EMQX 5.8.9 is the open-source build", "only allowed in Enterprise edition",
      "emq_node_role: core", "5.9 or later")),
    ("replicant-with-manual-discovery", dict(REPLICANTS, emq_node_role="replicant", emq_node_version="5.10.4",
                                             emq_node_license_key=LICENSE, emq_node_discovery="manual"),
     ("emq_node_role is replicant with emq_node_discovery=manual", "emq_node_discovery: static")),
    ("no-core", {"_emq_node_group_cores": [], "emq_node_role": "replicant", "emq_node_version": "5.10.4",
                 "emq_node_license_key": LICENSE},
     ("The group emq_nodes has no core node", "Make one node or more a core")),
    ("role-unknown", {"emq_node_role": "leader"}, ('emq_node_role is "leader": write core (the default) or replicant',)),
    ("replicant-as-seed", dict(REPLICANTS, emq_node_version="5.10.4", emq_node_license_key=LICENSE,
                               emq_node_static_seeds=["emqx@10.0.0.1", "emqx@10.0.0.2"]),
     ("emq_node_static_seeds lists emqx@10.0.0.2, which is a replicant", "List cores only")),
    # password hashing and the ACL
    ("hash-algorithm-bcrypt", {"emq_node_authn_password_hash_algorithm": {"name": "bcrypt", "salt_rounds": 10}},
     ("emq_node_authn_password_hash_algorithm must be {name: plain|md5|sha|sha256|sha512", "bcrypt and pbkdf2")),
    ("hash-salt-position-unknown", {"emq_node_authn_password_hash_algorithm": {"name": "sha256", "salt_position": "middle"}},
     ("emq_node_authn_password_hash_algorithm must be", "salt_position: prefix|suffix|disable")),
    ("topic-prefix-wildcard", {"emq_node_authz_topic_prefix": "devices/#"},
     ('emq_node_authz_topic_prefix is "devices/#"', "without wildcards (+ #)")),
    ("topic-prefix-leading-slash", {"emq_node_authz_topic_prefix": "/devices"}, ("emq_node_authz_topic_prefix", "a leading $ or /")),
    ("topic-prefix-placeholder", {"emq_node_authz_topic_prefix": "dev/${clientid}"}, ("emq_node_authz_topic_prefix", "placeholders")),
    ("acl-rule-bad-permission", {"emq_node_authz_rules": [{"permission": "permit", "action": "all", "topics": ["a/b"]}]},
     ("emq_node_authz_rules[0].permission", "permit", "write allow or deny")),
    # authentication
    ("authentication-unknown", {"emq_node_authentication": "token"},
     ('emq_node_authentication is "token"', "write password", "client_certificate")),
    ("anonymous-with-users", {"emq_node_allow_anonymous": True}, ("emq_node_allow_anonymous is true", "emq_node_authn_users", "remove one of the two")),
    ("device-hash-not-sha256", {"emq_node_authn_users": [{"user_id": "sensor-1", "password_hash": "not-a-hash", "salt": SALT}]},
     ("emq_node_authn_users[0] (user sensor-1)", "emqx_password_hash")),
    ("client-certificates-behind-nginx", dict(CLIENT_CERTIFICATE, nginx_lb_hosts=["nlb1"]),
     ("emq_node_authentication is client_certificate, but nlb1 in nginx_lb", "cannot forward a client certificate's CN",
      "put only haproxy_lb hosts in front")),
    ("client-certificates-haproxy-without-ca", dict(CLIENT_CERTIFICATE, haproxy_lb_client_ca_files={"hlb1": "", "hlb2": "/etc/ca.pem"}),
     ("but hlb1 have no haproxy_lb_tls_client_ca_file", "set haproxy_lb_tls_client_ca_file")),
    # the open-file limit
    ("target-connections-above-nr-open", {"emq_node_target_connections": 600000000},
     ("emq_node_target_connections=600000000 needs LimitNOFILE=750004224", "fs.nr_open=1048576,",
      "Lower emq_node_target_connections to 835584 or less")),
    ("open-files-above-nr-open", {"emq_node_open_files": 2097152},
     ("needs LimitNOFILE=2097152", "fs.nr_open=1048576,", "Lower emq_node_open_files")),
    ("open-files-below-target", {"emq_node_open_files": 2000}, ("emq_node_open_files=2000 cannot hold emq_node_target_connections=1000",
                                                                "Write 5096 or more, or 0")),
    ("open-files-headroom-negative", {"emq_node_open_files_headroom": -5}, ("emq_node_open_files_headroom=-5 is below 0",)),
    # the logs
    ("log-level-unknown", {"emq_node_log_level": "warn"}, ("emq_node_log_level=warn is not a level EMQX knows", "warning")),
    ("log-formatter-unknown", {"emq_node_log_formatter": "logfmt"}, ("emq_node_log_formatter=logfmt", "text or json")),
    ("log-rotation-count-zero", {"emq_node_log_file_rotation_count": 0}, ("emq_node_log_file_rotation_count=0 is outside 1..128",)),
    ("log-rotation-count-too-many", {"emq_node_log_file_rotation_count": 129}, ("emq_node_log_file_rotation_count=129",)),
    ("log-rotation-size-words", {"emq_node_log_file_rotation_size": "50 MB"},
     ("emq_node_log_file_rotation_size=50 MB is not a size EMQX reads", "infinity")),
    ("log-nowhere", {"emq_node_log_file_enabled": False, "emq_node_log_console_enabled": False},
     ("EMQX would log nowhere", "Turn one of them on")),
    ("target-connections-zero", {"emq_node_target_connections": 0}, ("emq_node_target_connections=0", "fs.nr_open")),
    ("target-connections-not-a-number", {"emq_node_target_connections": "many"}, ("emq_node_target_connections=many",)),
    ("tuning-off-nr-open-low", {"emq_node_tuning_enabled": False, "emq_node_sysctl_apply": True, "nr_open": "524288",
                                "emq_node_target_connections": 500000},
     ("LimitNOFILE=629760", "fs.nr_open=524288", "to 416153 or less")),
]


@pytest.mark.parametrize("changes, expect", [pytest.param(c, e, id=i) for i, c, e in CASES])
def test_a_bad_input_is_named_with_its_fix(changes, expect):
    problems = problems_of(**changes)
    assert problems, "no problem found"
    assert [p for p in problems if all(text in p for text in expect)], problems
    assert all(isinstance(p, str) and p.endswith(".") for p in problems), problems
    assert not [secret for secret in SECRETS if secret in " ".join(problems)], "a secret appears in the problems"


@pytest.mark.parametrize("changes", [
    pytest.param({"emq_node_cookie": "sh0rtC00k1e"}, id="cookie"),
    pytest.param({"emq_node_dashboard_password": "onlyletters"}, id="password"),
    pytest.param({"emq_node_license_key": LICENSE}, id="license"),
    pytest.param({"emq_node_api_keys": [{"key": "ops", "secret": "tiny-Secret"}]}, id="api-secret"),
    pytest.param({"emq_node_authn_users": [{"user_id": "u", "password_hash": "0" * 63, "salt": SALT}]}, id="hash"),
])
def test_a_bad_secret_is_never_shown(changes):
    problems = problems_of(**changes)
    assert problems
    secret = list(changes.values())[0]
    shown = [secret] if isinstance(secret, str) else [e.get("secret") or e.get("password_hash") for e in secret]
    assert not [s for s in shown if s in " ".join(problems)]


def test_every_problem_at_once_in_the_order_of_the_checks():
    problems = problems_of(distribution_major_version="11", distribution_version="11.9", emq_node_cookie="sh0rtC00k1e",
                           emq_node_discovery="dns", emq_node_firewall_admin_networks=["10.0.0.0/33"],
                           emq_node_target_connections=600000000)
    assert len(problems) == 5, problems
    for problem, text in zip(problems, ("n1 runs Debian 11.9", "emq_node_cookie must be set", "emq_node_discovery=dns needs emq_node_dns_name",
                                        "emq_node_firewall_admin_networks has 10.0.0.0/33", "emq_node_target_connections=600000000")):
        assert text in problem
    assert "sh0rtC00k1e" not in " ".join(problems)


def test_several_problems_of_one_check_are_entries_of_their_own():
    problems = problems_of(emq_node_install_source="url", emq_node_version="4.4.19", emq_node_package_url="ftp://x")
    assert problems == ['emq_node_version must be an EMQX 5 version like 5.8.9 (got "4.4.19").',
                        "with install_source=url set emq_node_package_url to the http(s) address of the .deb."]


@pytest.mark.parametrize("version", ["latest", "5.8", "", "4.4.19"])
def test_the_version_checks_wait_for_an_emqx5_version(version):
    """API key roles, the schema, the root keys and the license are not checked against a version that is none."""
    problems = problems_of(emq_node_version=version, emq_node_license_key=LICENSE,
                           emq_node_api_keys=[{"key": "grafana", "secret": API_SECRET, "role": "viewer"}],
                           emq_node_extra_config={"mqqt": {}})
    assert len(problems) == 1 and problems[0].startswith("emq_node_version must be an EMQX 5 version"), problems


def test_the_firewall_lists_name_only_the_bad_ones():
    problems = problems_of(emq_node_firewall_client_networks=["nope"], emq_node_firewall_admin_networks=["10.0.0.0/8"],
                           emq_node_firewall_lb_addresses=["lb1.example"])
    assert problems == ["Not IP networks: emq_node_firewall_client_networks has nope; emq_node_firewall_lb_addresses has lb1.example;"
                        " these take CIDRs like 10.0.0.0/8 or addresses like 192.168.0.10. emq_node_firewall_lb_addresses defaults"
                        " to each load balancer's haproxy_lb_private_address / nginx_lb_private_address, else its ansible_host:"
                        " set one of those to the LB's address in the private network, or list the addresses in"
                        " emq_node_firewall_lb_addresses."]


@pytest.mark.parametrize("flag", ["yes", "True", 1, "on"])
def test_flags_read_as_ansible_booleans(flag):
    assert problems_of(emq_node_allow_numbered_name=flag, emq_node_name="emqx1@h") == []
    assert problems_of(emq_node_tuning_enabled=flag, emq_node_sysctl_apply=flag, nr_open="") == []


def test_a_missing_input_is_named():
    inputs = dict(BASE)
    del inputs["nr_open"]
    del inputs["emq_node_cookie"]
    with pytest.raises(AnsibleFilterError, match="missing the inputs emq_node_cookie, nr_open"):
        emq_node_problems(inputs)


def test_the_input_must_be_a_mapping():
    with pytest.raises(AnsibleFilterError, match="expects a mapping"):
        emq_node_problems([])


# ---- durable sessions: builtin_local cannot serve a cluster -------------------------------------------------
ONE_NODE = {"_emq_node_group_names": ["emqx@10.0.0.1"]}
EE = {"emq_node_version": "5.9.2", "emq_node_license_key": "a-license"}


@pytest.mark.parametrize("changes", [
    dict(emq_node_durable_sessions=True, **ONE_NODE),
    dict(emq_node_durable_sessions=True, **EE),
    dict(emq_node_extra_config={"durable_sessions": {"enable": True}}, **EE),
    dict(emq_node_extra_config={"durable_sessions": {"enable": False}}),
    dict(emq_node_durable_sessions=False),
])
def test_durable_sessions_where_the_storage_serves_them(changes):
    assert problems_of(**changes) == []


@pytest.mark.parametrize("changes, where", [
    (dict(emq_node_durable_sessions=True), "EMQX 5.8.9 is the open-source build"),
    (dict(emq_node_durable_sessions="yes"), "EMQX 5.8.9 is the open-source build"),
    (dict(emq_node_extra_config={"durable_sessions": {"enable": True}}), "EMQX 5.8.9 is the open-source build"),
    (dict(emq_node_durable_sessions=True, emq_node_extra_config={"durable_storage": {"messages": {"backend": "builtin_local"}}},
          **EE), "emq_node_extra_config sets durable_storage.messages.backend to builtin_local"),
])
def test_durable_sessions_on_builtin_local_are_refused_for_a_cluster(changes, where):
    found = problems_of(**changes)
    assert len(found) == 1, found
    assert found[0].startswith("Durable sessions are on for the 2 nodes of %s, but %s" % (BASE["emq_node_group"], where))
    assert "Set emq_node_durable_sessions to false for a cluster" in found[0]
