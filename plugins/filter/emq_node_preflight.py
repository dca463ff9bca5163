# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every per-host check of emq_node's preflight in one function: what is wrong with the inputs of one host.

The role's preflight used to run one assert task per check (operating system, install source, cookie,
listeners, ...). Each task result costs the controller about the same CPU time, asserts included, and
the first failing assert hid every later problem. emq_node_problems runs them all in one go, for one
task per host, and lists every problem at once.

It is a pure function of the mapping it is given (roles/emq_node/tasks/preflight.yml hands the role's
variables, the role vars it needs, a few facts and what the preflight read over to it), so the tests
can call it directly. Each message is the one the assert of that check printed, one list entry per
problem. None of them ever quotes a secret (the cookie, the passwords, the API key secrets, the
license, the users' hashes): those checks name the variable only.

The checks that depend on the EMQX version (API key roles, the extra_config schema and root keys, the
license) wait until emq_node_version is an EMQX 5 version: what they say about another one would be
wrong, and the version's own problem is in the list.
"""

from __future__ import annotations

import json
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.compat.version import LooseVersion
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.module_utils.six import string_types
from ansible_collections.iothub.emq.plugins.filter.config_words import config_word_problems
from ansible_collections.iothub.emq.plugins.filter.emqx_acl import emqx_acl_problems
from ansible_collections.iothub.emq.plugins.filter.emqx_authn import emqx_authn_user_problems
from ansible_collections.iothub.emq.plugins.filter.emqx_config import emqx_config_problems
from ansible_collections.iothub.emq.plugins.filter.emqx_rules import (
    emqx_api_key_problems,
    emqx_api_roles,
    emqx_dns_problem,
    emqx_password_problem,
    emqx_roots,
    emqx_unknown_roots,
)
from ansible_collections.iothub.emq.plugins.filter.emq_node_sizing import RESERVE, emq_node_sizing
from ansible_collections.iothub.emq.plugins.filter.invalid_cidrs import invalid_cidrs
from ansible_collections.iothub.emq.plugins.module_utils.emqx_schema_58 import LOG_LEVELS

# What the filter reads; a key missing from its input is a mistake in the task that calls it.
INPUTS = (
    # facts and the inventory
    "inventory_hostname", "distribution", "distribution_major_version", "distribution_version",
    # the role's constants and the values roles/emq_node/vars/main.yml works out
    "_emq_node_supported_os", "_emq_node_install_sources", "_emq_node_discovery_strategies", "_emq_node_listener_types",
    "_emq_node_group_names", "_emq_node_group_cores", "_emq_node_group_roles", "_emq_node_node_roles",
    "_emq_node_bind_errors", "_emq_node_ports", "_emq_node_tls_missing",
    # the role's variables
    "emq_node_group", "emq_node_version", "emq_node_install_source", "emq_node_package_url", "emq_node_package_sha256",
    "emq_node_package_file", "emq_node_cookie", "emq_node_dashboard_password", "emq_node_dashboard_password_previous",
    "emq_node_name", "emq_node_allow_numbered_name", "emq_node_role", "emq_node_discovery", "emq_node_dns_name", "emq_node_dns_record_type",
    "emq_node_etcd_server", "emq_node_etcd_prefix", "emq_node_etcd_node_ttl",
    "emq_node_static_seeds", "emq_node_listeners", "emq_node_api_keys", "emq_node_extra_config",
    "emq_node_durable_sessions", "emq_node_tls_versions", "emq_node_tls_ciphers",
    "emq_node_data_dir", "emq_node_secrets_dir", "emq_node_api_key_file", "emq_node_dashboard_username",
    "emq_node_firewall_enabled", "emq_node_firewall_client_networks", "emq_node_firewall_admin_networks",
    "emq_node_firewall_lb_addresses", "emq_node_firewall_plain_client_networks", "emq_node_license_key",
    "emq_node_authn_password_hash_algorithm",
    "emq_node_authz_topic_prefix", "emq_node_authz_rules", "emq_node_authentication", "emq_node_allow_anonymous",
    "emq_node_authn_users", "emq_node_target_connections", "emq_node_tuning_enabled", "emq_node_sysctl_apply",
    "emq_node_open_files", "emq_node_open_files_headroom",
    "emq_node_log_level", "emq_node_log_file_enabled", "emq_node_log_file_rotation_size",
    "emq_node_log_file_rotation_count", "emq_node_log_console_enabled", "emq_node_log_formatter",
    "emq_node_cluster_tls", "emq_node_cluster_tls_source", "emq_node_cluster_tls_ca_file", "emq_node_cluster_tls_cert_file",
    "emq_node_cluster_tls_key_file", "emq_node_cluster_tls_lab_ca_dir", "emq_node_cluster_tls_lab_days",
    "emq_node_tls_lab_ca_dir", "_emq_node_ssl_dist_file",
    # what the preflight read: the controller's stat of the package file (empty when not looked for), this host's
    # fs.nr_open (empty when not read), the load balancers (only with client certificates), and whether the cluster CA
    # file is a file on the controller (emq_node_cluster_tls with source files only)
    "package_file_stat", "nr_open", "nginx_lb_hosts", "haproxy_lb_client_ca_files", "cluster_tls_ca_file_found",
)

DNS_RECORD_TYPES = ("a", "aaaa", "srv")
HASH_NAMES = ("plain", "md5", "sha", "sha256", "sha512")
SALT_POSITIONS = ("prefix", "suffix", "disable")
FIREWALL_LISTS = ("emq_node_firewall_client_networks", "emq_node_firewall_plain_client_networks",
                  "emq_node_firewall_admin_networks", "emq_node_firewall_lb_addresses")
# The TLS versions the nodes may offer: the load balancers' floor (TLS 1.2). EMQX also refuses 1.3 with an older
# version but without 1.2 (apps/emqx/src/emqx_schema.erl validate_tls_version_gap/1); 1.2 and 1.3 only cannot.
TLS_VERSIONS = ("tlsv1.3", "tlsv1.2")


# ---- Jinja's tests and filters, as the asserts used them ----------------------------------------------
def _match(value, pattern):
    """`value is match(pattern)`: re.match, anchored at the start only."""
    return bool(re.match(pattern, to_text(value, errors="surrogate_or_strict")))


def _bool(value):
    """`value | bool`."""
    return boolean(value, strict=False)


def _int(value):
    """`value | int`: 0 for what is not a number ("42.5" gives 42)."""
    try:
        if isinstance(value, string_types):
            return int(value, 10)
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError, OverflowError):
            return 0


def _length(value):
    """`value | length` (0 for what has none, where Jinja would have stopped)."""
    try:
        return len(value)
    except TypeError:
        return 0


def _difference(items, other):
    """`items | difference(other)` on lists: the items not in other, each once, in their order."""
    out = []
    for item in items:
        if item not in other and item not in out:
            out.append(item)
    return out


def _repeated(items):
    """`items | community.general.counter | dict2items | selectattr('value', '>', 1) | map(attribute='key')`."""
    out = []
    for item in items:
        if item not in out and list(items).count(item) > 1:
            out.append(item)
    return out


def _join(items, sep=", "):
    return sep.join(to_text(item) for item in items)


def _sentence(text):
    """One list entry: the message, its parts' separator (;) turned into a full stop."""
    if text.endswith(";"):
        return text[:-1] + "."
    return text if text.endswith(".") else text + "."


def _version_ok(version):
    return _match(version, r"^[0-9]+\.[0-9]+\.[0-9]+$") and LooseVersion(to_text(version)) >= LooseVersion("5.0.0")


# ---- the checks, in the order of the former assert tasks ----------------------------------------------
def _operating_system(v):
    supported = v["_emq_node_supported_os"].get(v["distribution"], []) if isinstance(v["_emq_node_supported_os"], dict) else []
    if v["distribution_major_version"] in supported:
        return []
    return ["%s runs %s %s, which emq_node does not support. Supported: Debian 12 (bookworm) and Debian 13 (trixie), the "
            "releases the collection is tested on. Move the host to one of these, or remove it from the group %s."
            % (v["inventory_hostname"], v["distribution"], v["distribution_version"], v["emq_node_group"])]


def _install_source(v):
    source, version = v["emq_node_install_source"], v["emq_node_version"]
    sha256 = v["emq_node_package_sha256"]
    out = []
    if source not in v["_emq_node_install_sources"]:
        out.append('emq_node_install_source must be one of %s (got "%s");' % (_join(v["_emq_node_install_sources"]), source))
    if not _version_ok(version):
        out.append('emq_node_version must be an EMQX 5 version like 5.8.9 (got "%s");' % version)
    if source == "url" and not _match(v["emq_node_package_url"], r"^https?://"):
        out.append("with install_source=url set emq_node_package_url to the http(s) address of the .deb;")
    if source == "url" and sha256 != "" and not _match(sha256, r"^[0-9a-fA-F]{64}$"):
        out.append("emq_node_package_sha256 must be the package's 64-digit hex sha256, or empty to read <url>.sha256;")
    if source == "package" and _length(v["emq_node_package_file"]) == 0:
        out.append("with install_source=package set emq_node_package_file to the path of the .deb on the controller.")
    return out


def _package_file(v):
    # Only for a package file that was named: without one, the install source check says so.
    if v["emq_node_install_source"] != "package" or _length(v["emq_node_package_file"]) == 0:
        return []
    stat = v["package_file_stat"] if isinstance(v["package_file_stat"], dict) else {}
    if stat.get("exists") and stat.get("isreg") and _match(v["emq_node_package_file"], r".*\.deb$"):
        return []
    return ['emq_node_package_file is "%s", which is not a .deb file on the controller. Give the path of the EMQX package '
            "you downloaded (e.g. files/emqx-5.8.9-debian12-amd64.deb)." % v["emq_node_package_file"]]


def _cookie(v):
    cookie = v["emq_node_cookie"]
    if (isinstance(cookie, string_types) and len(cookie) >= 16 and cookie != "emqxsecretcookie"
            and _match(cookie, r"^[!-~]+\Z") and not _match(cookie, "REPLACE")):
        return []
    return ["emq_node_cookie must be set to a secret of at least 16 printable ASCII characters without spaces or a trailing "
            'newline (what "echo ... | ansible-vault encrypt_string --stdin-name ..." gives: use printf \'%%s\'), the same '
            'on every node, and not EMQX\'s public default "emqxsecretcookie" nor the REPLACE-... placeholder of '
            "vault.yml.example. Generate one (openssl rand -hex 24) and store it with ansible-vault in "
            "group_vars/%s/vault.yml." % v["emq_node_group"]]


def _dashboard_password(v):
    password, previous = v["emq_node_dashboard_password"], v["emq_node_dashboard_password_previous"]
    problem = emqx_password_problem(password) if isinstance(password, string_types) else ""
    previous_ok = isinstance(previous, string_types) or (hasattr(previous, "__len__") and len(previous) == 0)
    if (isinstance(password, string_types) and password != "public" and not _match(password, "REPLACE") and problem == ""
            and previous_ok):
        return []
    refused = ("; the one given would be refused when the role changes it (EMQX checks every new password, only the "
               "first-boot default skips the check): %s" % problem) if problem else ""
    return ['emq_node_dashboard_password must be set, and not EMQX\'s default "public" nor the REPLACE-... placeholder of '
            "vault.yml.example%s. Store it with ansible-vault next to emq_node_cookie." % refused]


def _node_name(v):
    name = v["emq_node_name"]
    if (_match(name, r"^[0-9A-Za-z_-]+@[0-9A-Za-z._-]+\Z")
            and (_bool(v["emq_node_allow_numbered_name"]) or not _match(to_text(name).split("@")[0], ".*[0-9]$"))):
        return []
    ipv6 = (" IPv6 cluster addresses are not supported: the nodes' distribution (cluster.proto_dist inet_tcp), binds, "
            "firewall and load balancer backends are IPv4; set emq_node_cluster_address to the node's private IPv4 "
            "address.") if _match(name, r"^[^@]*@.*:") else ""
    return ["emq_node_name %s is not usable. It must look like emqx@<IPv4 address or FQDN> (letters, digits, _ and - "
            "before the @), with no space or trailing newline (check emq_node_cluster_address too, which it is made of).%s"
            " A first part ending in digits (emqx1@...) moves the cluster ports to 4370+N/5370+N; use emqx@<host> on every "
            "node, or set emq_node_allow_numbered_name: true and open those ports yourself." % (json.dumps(name), ipv6)]


def _discovery(v):
    discovery, record_type = v["emq_node_discovery"], v["emq_node_dns_record_type"]
    strategies, group_names = v["_emq_node_discovery_strategies"], v["_emq_node_group_names"]
    out = []
    if discovery not in strategies:
        out.append('emq_node_discovery must be one of %s (got "%s");' % (_join(strategies), discovery))
    if discovery == "dns" and _length(v["emq_node_dns_name"]) == 0:
        out.append("emq_node_discovery=dns needs emq_node_dns_name, the DNS name whose records list the nodes;")
    if record_type not in DNS_RECORD_TYPES:
        out.append('emq_node_dns_record_type must be a, aaaa or srv (got "%s");' % record_type)
    if discovery == "etcd":
        out.extend(_etcd(v))
    strangers = _difference(v["emq_node_static_seeds"], group_names)
    if strangers:
        out.append("emq_node_static_seeds lists %s, which are not nodes of the group %s (%s): remove them, or add those "
                   "hosts to the group." % (_join(strangers), v["emq_node_group"], _join(group_names)))
    if discovery == "dns" and record_type in DNS_RECORD_TYPES:
        problem = emqx_dns_problem(v["emq_node_name"], record_type)
        if problem:
            out.append("emq_node_discovery=dns with emq_node_dns_record_type=%s: %s. Set emq_node_cluster_address (or "
                       "emq_node_name) to what the DNS records return, or change emq_node_dns_record_type (see the role's "
                       "README, DNS discovery)." % (record_type, problem))
    return out


def etcd_servers(value):
    """emq_node_etcd_server as the role renders it (a list is joined with ", ") and EMQX reads it:
    emqx_schema:to_comma_separated_list/1 is string:tokens(S, ", "), commas and blanks both separate."""
    if isinstance(value, string_types):
        text = value
    elif isinstance(value, (list, tuple)):
        text = ", ".join(to_text(item) for item in value)
    else:
        return None
    return [item for item in re.split("[, ]", text) if item]


def _etcd_endpoint_problem(server):
    """ekka_cluster_etcd:init/1 drops a leading http:// or https://, then eetcd:open/3 (eetcd v0.6.0) splits the rest
    at ":" into exactly [Host, Port] and list_to_integer(Port): anything else crashes the init, and the node's boot."""
    rest = server
    for scheme in ("http://", "https://"):
        if rest.startswith(scheme):
            rest = rest[len(scheme):]
            break
    parts = [p for p in rest.split(":") if p]
    if len(parts) != 2 or not parts[1].isdigit() or not 0 < int(parts[1]) < 65536:
        return "not <host>:<port>"
    if server.startswith("https://"):
        return "https"
    return None


def _etcd(v):
    out = []
    servers = etcd_servers(v["emq_node_etcd_server"])
    if servers is None:
        out.append("emq_node_etcd_server must be a string of etcd URLs separated by commas (or a list of them);")
    elif not servers:
        out.append("emq_node_discovery=etcd needs emq_node_etcd_server, the etcd address (e.g. http://10.0.0.5:2379);")
    else:
        bad = [s for s in servers if _etcd_endpoint_problem(s) == "not <host>:<port>"]
        if bad:
            out.append("emq_node_etcd_server has %s: EMQX 5.8 (ekka/eetcd) takes only http://<host>:<port>, the port "
                       "written and nothing after it (no trailing /, no path, no IPv6 literal in brackets); anything else "
                       "crashes its etcd client and the node does not boot;" % _join(json.dumps(s) for s in bad))
        tls = [s for s in servers if _etcd_endpoint_problem(s) == "https"]
        if tls:
            out.append("emq_node_etcd_server has %s: the role does not configure cluster.etcd.ssl_options, and without it "
                       "EMQX speaks plain text whatever the scheme; use an http:// client URL of etcd;"
                       % _join(json.dumps(s) for s in tls))
    prefix = v["emq_node_etcd_prefix"]
    if isinstance(prefix, bool) or not isinstance(prefix, string_types + (int,)):
        out.append("emq_node_etcd_prefix must be a string, the etcd key prefix (got %s);" % json.dumps(to_text(prefix)))
    # emqx_schema:duration(): hocon_postprocess:duration/1 (number+unit pairs, each unit all lower or all upper
    # case), else an integer of milliseconds. EMQX 5.8.9 checks it and then never uses it (ekka's v3 lease is 5 s).
    ttl = v["emq_node_etcd_node_ttl"]
    if isinstance(ttl, bool) or not (isinstance(ttl, int) or (isinstance(ttl, string_types) and re.match(
            r"^(((\d+(\.\d+)?|\.\d+)(ms|MS|[fFwWdDhHmMsS]))+|\d+)\Z", ttl))):
        out.append('emq_node_etcd_node_ttl must be a duration such as "1m" or "30s" (got %s);' % json.dumps(to_text(ttl)))
    return out


def _listeners(v):
    listeners, types = v["emq_node_listeners"], v["_emq_node_listener_types"]
    unknown = _difference(list(listeners.keys()) if isinstance(listeners, dict) else [], types)
    ports, tls_missing, bind_errors = v["_emq_node_ports"], v["_emq_node_tls_missing"], v["_emq_node_bind_errors"]
    out = []
    if unknown:
        out.append("unknown listener types %s (use %s);" % (_join(unknown), _join(types)))
    if bind_errors:
        out.append('binds EMQX refuses at boot: %s (EMQX takes "IP:port" or a port 1-65535, IPv6 as "::1:1883" or '
                   '"[::1]:1883", never a host name: write the address);' % _join(bind_errors))
    if _repeated(ports):
        out.append("two listeners (or a listener and the dashboard 18083 or the cluster ports 4370/5370) use the same port: "
                   "%s \u2014 give each its own port;" % _join(_repeated(ports)))
    if tls_missing:
        out.append("TLS listeners %s have one of certfile and keyfile without the other: set both (files on the node), "
                   "or neither to have the role install emq_node_tls_cert_file and emq_node_tls_key_file (or a lab "
                   "certificate with emq_node_tls_source: lab)." % _join(tls_missing))
    return ["emq_node_listeners is wrong: " + text for text in out]


def _tls_options(v):
    """emq_node_tls_versions and emq_node_tls_ciphers, rendered into every TLS listener's ssl_options."""
    versions, ciphers = v["emq_node_tls_versions"], v["emq_node_tls_ciphers"]
    out = []
    if not isinstance(versions, list) or not versions or _difference(versions, TLS_VERSIONS):
        out.append("emq_node_tls_versions must list TLS versions of %s, at least one (got %s): older versions are "
                   "refused here as on the load balancers." % (_join(TLS_VERSIONS), versions))
    bad = [c for c in ciphers if not isinstance(c, str) or not re.match(r"^[A-Z0-9_-]+$", c)] if isinstance(ciphers, list) else None
    if bad is None or bad:
        out.append("emq_node_tls_ciphers must be a list of OpenSSL cipher names, one an entry (TLS 1.3 suites like "
                   "TLS_AES_128_GCM_SHA256 and TLS 1.2 ciphers like ECDHE-RSA-AES128-GCM-SHA256; got %s)."
                   % (_join(bad) if bad else ciphers))
    elif isinstance(versions, list) and "tlsv1.2" in versions and all(c.startswith("TLS_") for c in ciphers):
        out.append("emq_node_tls_ciphers has only TLS 1.3 suites, but emq_node_tls_versions offers TLS 1.2, which then "
                   "has no cipher: EMQX would refuse every TLS 1.2 device. Add TLS 1.2 ciphers, or offer tlsv1.3 only.")
    return out


def _api_keys(v):
    version = v["emq_node_version"]
    problems = emqx_api_key_problems(v["emq_node_api_keys"], version)
    if not problems:
        return []
    return ["emq_node_api_keys is wrong for EMQX %s: %s. Each entry is {key, secret, role}: key of letters, digits, _ and -; "
            "secret of at least 16 printable characters without ':' or spaces; role one of %s (default administrator)."
            % (version, "; ".join(problems), _join(emqx_api_roles(version)))]


def _extra_config_schema(v):
    version = v["emq_node_version"]
    problems = emqx_config_problems(v["emq_node_extra_config"], version)
    if not problems:
        return []
    return ["EMQX %s would refuse to start on emq_node_extra_config: %s. Fix these keys in emq_node_extra_config (for "
            "example {mqtt: {max_packet_size: 2MB}}); nothing was changed on any node." % (version, "; ".join(problems))]


def _config_words(v):
    problems = config_word_problems({name: v[name] for name in (
        "emq_node_data_dir", "emq_node_secrets_dir", "emq_node_api_key_file", "emq_node_dashboard_username")})
    if not problems:
        return []
    return ["These values cannot be written into emqx.conf as they are: %s. Remove the character (a trailing newline "
            'usually comes from "echo ... | ansible-vault encrypt_string": use printf \'%%s\').' % "; ".join(problems)]


def _unknown_roots(v):
    version = v["emq_node_version"]
    roots = emqx_unknown_roots(v["emq_node_extra_config"], version)
    if not roots:
        return []
    return ["emq_node_extra_config has root keys EMQX %s does not know: %s. EMQX would drop them with only a warning in its "
            "log, so they would do nothing: fix the spelling (known roots: %s);" % (version, _join(roots), _join(emqx_roots(version)))]


def _secrets_paths(v):
    secrets_dir, key_file = v["emq_node_secrets_dir"], v["emq_node_api_key_file"]
    out = []
    if not _match(secrets_dir, "^/") or _match(to_text(secrets_dir) + "/", "^/etc/emqx/"):
        out.append('emq_node_secrets_dir is "%s": it must be an absolute path outside /etc/emqx, whose files EMQX\'s package '
                   "makes world-readable (chmod 0644 /etc/emqx/*) on every install and upgrade, e.g. /etc/emqx-secrets;"
                   % secrets_dir)
    if not _match(key_file, "^/") or _match(key_file, "^/etc/emqx/"):
        out.append('emq_node_api_key_file is "%s": it holds secrets, so it must be an absolute path outside /etc/emqx '
                   "(default <emq_node_secrets_dir>/api_keys)." % key_file)
    return out


def _firewall_networks(v):
    if not _bool(v["emq_node_firewall_enabled"]):
        return []
    bad = {name: invalid_cidrs(v[name]) for name in FIREWALL_LISTS}
    if not any(bad.values()):
        return []
    lists = " ".join("%s has %s;" % (name, _join(bad[name])) for name in FIREWALL_LISTS if bad[name])
    lb_hint = (" emq_node_firewall_lb_addresses defaults to each load balancer's haproxy_lb_private_address / "
               "nginx_lb_private_address, else its ansible_host: set one of those to the LB's address in the private "
               "network, or list the addresses in emq_node_firewall_lb_addresses.") if bad["emq_node_firewall_lb_addresses"] else ""
    return ["Not IP networks: %s these take CIDRs like 10.0.0.0/8 or addresses like 192.168.0.10.%s" % (lists, lb_hint)]


def _license(v):
    version, license_key = v["emq_node_version"], v["emq_node_license_key"]
    enterprise = LooseVersion(to_text(version)) >= LooseVersion("5.9.0")
    nodes = _length(v["_emq_node_group_names"])
    if enterprise and nodes > 1 and _length(license_key) == 0:
        return ["EMQX %s is the enterprise edition: clustering %d nodes needs a license key. Set emq_node_license_key (in "
                "ansible-vault), or use an open-source 5.8.x version." % (version, nodes)]
    if not enterprise and _length(license_key) > 0:
        return ["emq_node_license_key is set, but EMQX %s is the open-source build, which has no license setting: it would "
                "drop license.key with only a warning in its log. Remove emq_node_license_key, or set emq_node_version to "
                "the enterprise release (5.9 or later) the license is for." % version]
    return []


def _node_role(v):
    """node.role: core (the default) or, in the enterprise edition only, replicant (apps/emqx_conf/src/emqx_conf_schema.erl
    validate_node_role/1; apps/emqx_enterprise/src/emqx_enterprise_schema.erl adds replicant). A replicant finds its cores
    through the discovery strategy (mria_lb.erl, ekka's core_node_discovery_callback: [] for manual) and is never a seed."""
    role, version, discovery = v["emq_node_role"], v["emq_node_version"], v["emq_node_discovery"]
    roles, cores, group = v["_emq_node_node_roles"], v["_emq_node_group_cores"], v["emq_node_group"]
    out = []
    if role not in roles:
        return ['emq_node_role is "%s": write core (the default) or replicant.' % role]
    if role == "replicant" and LooseVersion(to_text(version)) < LooseVersion("5.9.0"):
        out.append("emq_node_role is replicant, but EMQX %s is the open-source build: it refuses node.role = replicant at boot "
                   "(\"Node role 'replicant' is only allowed in Enterprise edition since 5.8.0\"). Set emq_node_role: core, or "
                   "emq_node_version to an enterprise release (5.9 or later) with emq_node_license_key." % version)
    if role == "replicant" and discovery == "manual":
        out.append("emq_node_role is replicant with emq_node_discovery=manual: a replicant finds its cores only through "
                   "discovery (static, dns or etcd; manual finds none), so it would wait with no listener until someone runs "
                   "\"emqx ctl cluster join\" on it. Use emq_node_discovery: static (the cores are the seeds) or dns/etcd.")
    if _length(cores) == 0:
        out.append("The group %s has no core node (emq_node_role: core on every node by default): replicants need at least "
                   "one core to copy the database from. Make one node or more a core, three for a large cluster." % group)
    role_by_name = v["_emq_node_group_roles"] if isinstance(v["_emq_node_group_roles"], dict) else {}
    seeds = [seed for seed in (v["emq_node_static_seeds"] or []) if role_by_name.get(seed) == "replicant"]
    if seeds:
        out.append("emq_node_static_seeds lists %s, which %s replicant%s: replicants are never seeds (EMQX ignores them when "
                   "looking for cores). List cores only, or leave emq_node_static_seeds empty for every core of the group."
                   % (_join(seeds), "is a" if len(seeds) == 1 else "are", "" if len(seeds) == 1 else "s"))
    return out


def _durable_sessions(v):
    """builtin_local (the only backend of the open-source build, apps/emqx/src/emqx_ds_schema.erl) stores a message
    on the node that received it and lists that node's shards only (apps/emqx_ds_builtin_local/src/
    emqx_ds_builtin_local.erl get_streams/3), and a durable subscription has no broker route
    (emqx_persistent_session_ds_subs.erl): in a cluster a durable session misses what other nodes received."""
    version, extra = v["emq_node_version"], v["emq_node_extra_config"]
    extra = extra if isinstance(extra, dict) else {}
    enabled = _bool(v["emq_node_durable_sessions"]) or (extra.get("durable_sessions") or {}).get("enable") is True
    nodes = _length(v["_emq_node_group_names"])
    if not enabled or nodes <= 1:
        return []
    enterprise = LooseVersion(to_text(version)) >= LooseVersion("5.9.0")
    messages = ((extra.get("durable_storage") or {}).get("messages") or {})
    backend = messages.get("backend", "builtin_raft" if enterprise else "builtin_local")
    if backend != "builtin_local":
        return []
    where = ("EMQX %s is the open-source build, whose only storage for durable sessions is builtin_local" % version
             if not enterprise else "emq_node_extra_config sets durable_storage.messages.backend to builtin_local")
    return ["Durable sessions are on for the %d nodes of %s, but %s: it keeps each message on the node that received "
            "it and a durable session reads only its own node's storage (EMQX: \"cannot be used in a clustered EMQX "
            "setup\"), so devices whose session is on one node would never get what is published through another. Set "
            "emq_node_durable_sessions to false for a cluster, run a single node, or use the enterprise edition (5.9 or "
            "later) with its replicated builtin_raft storage." % (nodes, v["emq_node_group"], where)]


def _hashing_and_acl(v):
    algorithm, prefix = v["emq_node_authn_password_hash_algorithm"], v["emq_node_authz_topic_prefix"]
    settings = algorithm if isinstance(algorithm, dict) else {}
    out = []
    if settings.get("name", "") not in HASH_NAMES or settings.get("salt_position", "prefix") not in SALT_POSITIONS:
        out.append("emq_node_authn_password_hash_algorithm must be {name: plain|md5|sha|sha256|sha512, salt_position: "
                   "prefix|suffix|disable} (bcrypt and pbkdf2 hashes are not provisioned by this role);")
    if not _match(prefix, r"^[^#+$/][^#+]*$") or "${" in to_text(prefix):
        out.append('emq_node_authz_topic_prefix is "%s": it is the first topic levels of the device topics, like devices or '
                   "acme/devices, without wildcards (+ #), placeholders, a leading $ or /;" % prefix)
    return out + list(emqx_acl_problems(v["emq_node_authz_rules"], "emq_node_authz_rules"))


def _authentication(v):
    authentication, anonymous = v["emq_node_authentication"], _bool(v["emq_node_allow_anonymous"])
    users = v["emq_node_authn_users"]
    out = []
    if authentication not in ("password", "client_certificate"):
        out.append('emq_node_authentication is "%s": write password (devices log in with a username and password from '
                   "emq_node_authn_users) or client_certificate (the load balancers check a client certificate);"
                   % authentication)
    if anonymous and _length(users) > 0:
        out.append("emq_node_allow_anonymous is true, which configures no authenticator, so the users of emq_node_authn_users "
                   "would never be asked for: remove one of the two;")
    if authentication == "password" and not anonymous:
        out.extend(emqx_authn_user_problems(users, v["emq_node_authn_password_hash_algorithm"]))
    if authentication == "client_certificate":
        nginx_hosts = list(v["nginx_lb_hosts"] or [])
        ca_files = v["haproxy_lb_client_ca_files"] or {}
        without_ca = [host for host in ca_files if not ca_files[host]]
        if nginx_hosts:
            out.append("emq_node_authentication is client_certificate, but %s in nginx_lb cannot forward a client "
                       "certificate's CN to EMQX (NGINX's stream module sends PROXY protocol v1 only), so devices behind it "
                       "would reach EMQX without any identity: use password, or put only haproxy_lb hosts in front;"
                       % _join(nginx_hosts))
        if without_ca:
            out.append("emq_node_authentication is client_certificate, but %s have no haproxy_lb_tls_client_ca_file, so they "
                       "would let devices in without a certificate: set haproxy_lb_tls_client_ca_file to the CA that signs "
                       "the devices' certificates." % _join(without_ca))
    return out


def _open_files(v):
    out = []
    target = _int(v["emq_node_target_connections"])
    explicit = _int(v["emq_node_open_files"])
    headroom = _int(v["emq_node_open_files_headroom"])
    if headroom < 0:
        out.append("emq_node_open_files_headroom=%s is below 0: write the percent of emq_node_target_connections "
                   "the node keeps beyond one open file per device (25 by default)." % v["emq_node_open_files_headroom"])
        headroom = 0
    if explicit < 0 or (0 < explicit < target + RESERVE):
        out.append("emq_node_open_files=%s cannot hold emq_node_target_connections=%s: EMQX takes one open file and one "
                   "Erlang port per device and about %d for itself. Write %d or more, or 0 to size it from the target."
                   % (v["emq_node_open_files"], target, RESERVE, target + RESERVE))
    # Only when the role will not raise fs.nr_open itself (the preflight read it then).
    if _bool(v["emq_node_tuning_enabled"]) and _bool(v["emq_node_sysctl_apply"]):
        return out
    nr_open = to_text(v["nr_open"] if v["nr_open"] is not None else "")
    sizing = emq_node_sizing(max(target, 0), headroom, max(explicit, 0), _int(nr_open))
    if target > 0 and sizing["fits"] and _int(nr_open) > 0:
        return out
    lower = ("Lower emq_node_target_connections to %d or less" % sizing["max_target"]
             if not sizing["explicit"] and sizing["max_target"] is not None else "Lower emq_node_open_files")
    out.append("emq_node_target_connections=%s needs LimitNOFILE=%s, above this host's fs.nr_open=%s, and the role will not "
               "raise fs.nr_open (emq_node_tuning_enabled or emq_node_sysctl_apply is false). %s, or let the role "
               "apply its sysctls." % (v["emq_node_target_connections"], sizing["nofile"], nr_open.strip(), lower))
    return out


def _logs(v):
    out = []
    level = to_text(v["emq_node_log_level"])
    if level not in LOG_LEVELS:
        out.append("emq_node_log_level=%s is not a level EMQX knows: write one of %s." % (level, _join(LOG_LEVELS)))
    if to_text(v["emq_node_log_formatter"]) not in ("text", "json"):
        out.append("emq_node_log_formatter=%s is not a format EMQX knows: write text or json." % v["emq_node_log_formatter"])
    count = v["emq_node_log_file_rotation_count"]
    if not 1 <= _int(count) <= 128:
        out.append("emq_node_log_file_rotation_count=%s is outside 1..128, what EMQX accepts for log.file.rotation_count: "
                   "write how many log files to keep, e.g. 10." % count)
    size = to_text(v["emq_node_log_file_rotation_size"]).strip()
    if emqx_config_problems({"log": {"file": {"rotation_size": size}}}, "5.8.9"):
        out.append("emq_node_log_file_rotation_size=%s is not a size EMQX reads: write a number with B, KB, MB or GB "
                   "(e.g. 50MB), or infinity for one file that is never rotated." % size)
    if not _bool(v["emq_node_log_file_enabled"]) and not _bool(v["emq_node_log_console_enabled"]):
        out.append("emq_node_log_file_enabled and emq_node_log_console_enabled are both false: EMQX would log nowhere, "
                   "and a node that fails to start could not say why. Turn one of them on (the journal takes the console).")
    return out


def _cluster_tls(v):
    """TLS between the nodes: cluster.proto_dist = inet_tls with the options file bin/emqx passes as -ssl_dist_optfile
    (bin/emqx refuses to boot when its path has a space), and rpc.protocol = ssl."""
    if not _bool(v["emq_node_cluster_tls"]):
        return []
    source, out = v["emq_node_cluster_tls_source"], []
    if source not in ("files", "lab"):
        return ['emq_node_cluster_tls_source is "%s": write files (your cluster CA and one certificate per node) or lab (a '
                "cluster CA and certificates made on the controller)." % source]
    if source == "files":
        empty = [name for name in ("emq_node_cluster_tls_ca_file", "emq_node_cluster_tls_cert_file",
                                   "emq_node_cluster_tls_key_file") if _length(v[name]) == 0]
        if empty:
            out.append("emq_node_cluster_tls is on with emq_node_cluster_tls_source=files, but %s %s empty: give the cluster CA "
                       "certificate and this node's certificate and key (PEM files on the controller; the certificate for "
                       "serverAuth and clientAuth, naming %s), or use emq_node_cluster_tls_source: lab for a lab."
                       % (_join(empty), "is" if len(empty) == 1 else "are", to_text(v["emq_node_name"]).split("@")[-1]))
        elif not _bool(v["cluster_tls_ca_file_found"]):
            out.append('emq_node_cluster_tls_ca_file = "%s" is not a readable file on the controller: give the absolute path '
                       "of the cluster CA certificate (PEM)." % v["emq_node_cluster_tls_ca_file"])
    else:
        lab_dir = to_text(v["emq_node_cluster_tls_lab_ca_dir"]).rstrip("/")
        if not lab_dir:
            out.append("emq_node_cluster_tls_lab_ca_dir is empty: give a directory on the controller for the cluster's lab CA.")
        elif lab_dir == to_text(v["emq_node_tls_lab_ca_dir"]).rstrip("/"):
            out.append('emq_node_cluster_tls_lab_ca_dir is "%s", the lab CA directory of the devices (emq_node_tls_lab_ca_dir): '
                       "devices hold that CA, and the nodes must trust only a CA of their own. Give it another directory, e.g. "
                       "the .cluster-ca directory beside the inventory (the default)." % lab_dir)
        days = _int(v["emq_node_cluster_tls_lab_days"])
        if days is None or not 1 <= days <= 366:
            out.append("emq_node_cluster_tls_lab_days=%s is outside 1..366: write the days a lab node certificate lasts, e.g. "
                       "365." % v["emq_node_cluster_tls_lab_days"])
    if _match(v["_emq_node_ssl_dist_file"], r".*\s"):
        out.append('The TLS distribution options file would be "%s", and bin/emqx refuses to boot with a space in that path '
                   "(\"No space is allowed for Erlang distribution over SSL option file path\"): give emq_node_secrets_dir a path "
                   "without spaces." % v["_emq_node_ssl_dist_file"])
    return out


CHECKS = (_operating_system, _install_source, _package_file, _cookie, _dashboard_password, _node_name, _discovery,
          _listeners, _tls_options, _api_keys, _extra_config_schema, _config_words, _unknown_roots, _secrets_paths,
          _firewall_networks, _license, _node_role, _durable_sessions, _hashing_and_acl, _authentication, _open_files, _logs,
          _cluster_tls)
# These read emq_node_version: they run once it is an EMQX 5 version.
VERSION_CHECKS = (_api_keys, _extra_config_schema, _unknown_roots, _license, _node_role, _durable_sessions)


def emq_node_problems(inputs):
    """Every problem with the emq_node inputs of one host, one sentence each; empty when there is none."""
    if not isinstance(inputs, dict):
        raise AnsibleFilterError("emq_node_problems expects a mapping of the inputs, got %s" % type(inputs).__name__)
    missing = [name for name in INPUTS if name not in inputs]
    if missing:
        raise AnsibleFilterError("emq_node_problems is missing the inputs %s" % ", ".join(missing))
    version_ok = _version_ok(inputs["emq_node_version"])
    problems = []
    for check in CHECKS:
        if version_ok or check not in VERSION_CHECKS:
            problems.extend(_sentence(text) for text in check(inputs))
    return problems


class FilterModule(object):
    def filters(self):
        return {"emq_node_problems": emq_node_problems}
