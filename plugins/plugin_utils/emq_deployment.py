# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The shape of an iothub.emq deployment, worked out the way the roles work it out.

Every value comes from one place: a host's own variable when the inventory (or a fact, or an extra var)
sets it, else the default of the role that uses it, read from ``roles/<role>/defaults/main.yml`` of this
collection and templated with that host's variables. The lookup plugin ``iothub.emq.emq_deployment`` does
the reading and templating; everything else here is plain Python over a ``get(host, name)`` callable, so
unit tests call it with dictionaries.
"""

from __future__ import annotations

import ipaddress
import os
import re

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.iothub.emq.plugins.module_utils.emqx_cli import dist_ports

# The inventory groups the roles and playbooks are written for; a load balancer's kind is its group and
# the prefix of its role's variables.
NODE_GROUP = 'emq_nodes'
LB_KINDS = ('haproxy_lb', 'nginx_lb')
# nginx_lb's _nginx_lb_conf_file (roles/nginx_lb/vars/main.yml; the lookup reads it from there).
NGINX_CONF = '/etc/nginx/nginx.conf'
EMQX_CONF_DIR = '/etc/emqx'  # emq_node's _emq_node_conf_dir (the package's; a unit test holds them equal)
NGINX_SERVICE = 'nginx'  # nginx_lb's _nginx_lb_service
# Roles whose defaults describe a host, in the order their files are read (no two share a variable name).
# _lb_common holds the defaults the load-balancer roles hand on to it (<kind>_x -> _lb_common_x).
ROLES = ('emq_node', 'emq_cluster', 'haproxy_lb', 'nginx_lb', '_lb_common', 'lb_vip', 'prometheus')
# The monitoring hosts' inventory group (the prometheus role).
MONITOR_GROUP = 'prometheus'
LB_COMMON_PREFIX = '_lb_common_'
# Constants of the roles that are not variables: the HAProxy backends (haproxy.cfg.j2) and NGINX
# upstreams (nginx_lb's _nginx_lb_upstreams), each with the node port it forwards to; the WebSocket path
# EMQX serves; the characters of a server name _lb_common replaces (its vars, _lb_common_name_bad_chars,
# read from the file when the lookup runs).
BACKENDS = (('emqx_mqtt', 'mqtt'), ('emqx_ws', 'ws'))
WS_PATH = '/mqtt'
NAME_BAD_CHARS = r'[^A-Za-z0-9_.:-]'
# EMQX's own listeners (what a node runs for a listener type emq_node_listeners leaves out): enabled, on
# these ports. The same ports as emq_node's default emq_node_listeners (a unit test holds them together).
EMQX_LISTENER_PORTS = {'tcp': 1883, 'ssl': 8883, 'ws': 8083, 'wss': 8084}
# Bind addresses that mean "every address": the node is reached on its cluster address instead.
WILDCARDS = ('', '*', '0.0.0.0', '::', '[::]')
# EMQX's node roles (node.role): replicants are the enterprise edition's (emqx_enterprise_schema.erl).
NODE_ROLES = ('core', 'replicant')


class _Missing(object):
    """A variable that neither the host nor any role default sets."""

    def __repr__(self):
        return 'MISSING'

    def __bool__(self):
        return False


MISSING = _Missing()


class DeploymentError(Exception):
    """A value the roles would refuse too; the message names the host and the variable."""


def collection_root():
    """The collection's top directory (this file is plugins/plugin_utils/emq_deployment.py in it)."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def role_file(role, kind='defaults', root=None):
    """Path of ``roles/<role>/<kind>/main.yml`` of this collection (a checkout or a Galaxy install)."""
    return os.path.join(root or collection_root(), 'roles', role, kind, 'main.yml')


def merge_defaults(per_role):
    """One dict of every role's defaults ({role: {var: value}}), in ROLES order; a repeated name is an error."""
    merged = {}
    for role in ROLES:
        for name, value in (per_role.get(role) or {}).items():
            if name in merged:
                raise DeploymentError('Two roles have a default for %s (the second in %s).' % (name, role))
            merged[name] = value
    return merged


def split_hosts(value):
    """Host names from a list or a comma-separated string, trimmed, empty ones dropped, first seen kept."""
    if value is None:
        return []
    if isinstance(value, str):
        items = value.split(',')
    elif isinstance(value, (list, tuple)):
        items = []
        for item in value:
            items.extend(str(item).split(','))
    else:
        raise DeploymentError('Expected a list of host names or a comma-separated string, got %r.' % (value,))
    out = []
    for item in items:
        item = item.strip()
        if item and item not in out:
            out.append(item)
    return out


def bind_port(bind):
    """The port of an EMQX bind (``0.0.0.0:1883``, ``[::]:1883``, ``1883``): the digits at its end."""
    match = re.search(r'([0-9]+)$', str(bind).strip())
    if match is None:
        raise ValueError('no port at the end of %r' % (bind,))
    return int(match.group(1))


def bind_host(bind):
    """The address of an EMQX bind, without brackets; '' for a bare port."""
    text = str(bind).strip()
    if ':' not in text:
        return ''
    host = text.rsplit(':', 1)[0]
    return host[1:-1] if host.startswith('[') and host.endswith(']') else host


def url_host(address):
    """An address as a URL wants it (IPv6 in brackets)."""
    address = str(address)
    return '[%s]' % address if ':' in address and not address.startswith('[') else address


def server_name(name, bad_chars=NAME_BAD_CHARS):
    """A backend's server name as _lb_common writes it: characters HAProxy refuses become '_'."""
    return re.sub(bad_chars, '_', str(name))


class _Host(object):
    """One host's values: get(name) from the resolver, converted and checked like the roles' filters do."""

    def __init__(self, get, host):
        self._get = get
        self.host = host

    def raw(self, name):
        return self._get(self.host, name)

    def value(self, name, *fallbacks):
        """The first of name, *fallbacks that is set; an error when none is."""
        for candidate in (name,) + fallbacks:
            value = self._get(self.host, candidate)
            if value is not MISSING:
                return value
        raise DeploymentError('%s: %s is not set and no role of this collection has a default for it.' % (self.host, name))

    def text(self, name, *fallbacks):
        value = self.value(name, *fallbacks)
        return '' if value is None else str(value)

    def integer(self, name, *fallbacks):
        value = self.value(name, *fallbacks)
        try:
            if isinstance(value, bool):
                raise ValueError(value)
            return int(str(value).strip())
        except ValueError:
            raise DeploymentError('%s: %s must be a port number, got %r.' % (self.host, name, value)) from None

    def flag(self, name, *fallbacks):
        value = self.value(name, *fallbacks)
        try:
            return boolean(value, strict=True)
        except TypeError:
            raise DeploymentError('%s: %s must be true or false, got %r.' % (self.host, name, value)) from None


def _lb(get, host, kind):
    """A load balancer's value <kind>_<suffix>, else the _lb_common default it hands on."""
    h = _Host(get, host)

    def value(suffix, convert='value'):
        return getattr(h, convert)(kind + '_' + suffix, LB_COMMON_PREFIX + suffix)

    return h, value


def node_listeners(configured):
    """{type: {enabled, port, bind, configured}} for tcp, ssl, ws and wss.

    A type emq_node_listeners lists is what the role renders (enable defaults to true); a type it leaves
    out is EMQX's own listener, enabled on its default port.
    """
    configured = configured or {}
    if not isinstance(configured, dict):
        raise ValueError('emq_node_listeners must be a dictionary of listener types')
    out = {}
    for kind in sorted(set(EMQX_LISTENER_PORTS) | set(configured)):
        conf = configured.get(kind)
        if isinstance(conf, dict):
            bind = conf.get('bind', EMQX_LISTENER_PORTS.get(kind, ''))
            out[kind] = dict(enabled=boolean(conf.get('enable', True), strict=False), port=bind_port(bind),
                             bind=str(bind), configured=True)
        else:
            port = EMQX_LISTENER_PORTS[kind]
            out[kind] = dict(enabled=True, port=port, bind='0.0.0.0:%d' % port, configured=False)
    return out


def listener_proxy_protocol(listeners, configured, node_default):
    """{type: bool}: whether each enabled listener waits for a PROXY protocol header, as emq_node renders it.

    A type emq_node_listeners lists takes its own proxy_protocol, else node_default (emq_node_proxy_protocol)
    for tcp and ws and false for ssl and wss; a type it leaves out is EMQX's own listener, without PROXY protocol.
    """
    configured = configured or {}
    out = {}
    for kind, listener in listeners.items():
        conf = configured.get(kind)
        if not listener['enabled']:
            out[kind] = False
        elif isinstance(conf, dict):
            out[kind] = boolean(conf.get('proxy_protocol', node_default if kind in ('tcp', 'ws') else False), strict=False)
        else:
            out[kind] = False
    return out


def node_entry(get, host):
    """What one EMQX node is, from its variables and emq_node's and emq_cluster's defaults."""
    h = _Host(get, host)
    # The name emq_node computed for the host in this run (its preflight notes it as a fact), else what the
    # defaults give: emq_node_name, itself "emqx@{{ emq_node_cluster_address }}" unless set.
    name = h.raw('__emq_node_name')
    name = str(name) if name else h.text('emq_node_name')
    address = h.text('emq_node_cluster_address')
    dist, rpc = dist_ports(name)
    try:
        listeners = node_listeners(h.value('emq_node_listeners'))
        proxy_protocol = listener_proxy_protocol(listeners, h.value('emq_node_listeners'), h.flag('emq_node_proxy_protocol'))
    except ValueError as exc:
        raise DeploymentError('%s: emq_node_listeners: %s.' % (host, exc)) from None
    bind = h.text('emq_node_dashboard_bind')
    try:
        dashboard_port = bind_port(bind)
    except ValueError:
        raise DeploymentError('%s: emq_node_dashboard_bind must end with a port, got %r.' % (host, bind)) from None
    dashboard_host = bind_host(bind)
    if dashboard_host in WILDCARDS:
        dashboard_host = address
    prefix = h.raw('__emq_node_authz_topic_prefix')
    return dict(
        host=host,
        name=name,
        address=address,
        # core or replicant (emq_node_role): cores are the static seeds and the nodes others join.
        role=node_role(get, host),
        dist_port=dist,
        rpc_port=rpc,
        cluster_endpoints=[
            dict(name='%s distribution %s:%d' % (name, address, dist), host=address, port=dist),
            dict(name='%s rpc %s:%d' % (name, address, rpc), host=address, port=rpc),
        ],
        listeners=listeners,
        # Whether each listener type waits for a PROXY protocol header (what a load balancer must send).
        proxy_protocol=proxy_protocol,
        mqtt_port=listeners['tcp']['port'],
        ws_port=listeners['ws']['port'],
        dashboard_port=dashboard_port,
        dashboard_host=dashboard_host,
        status_url='http://%s:%d/status' % (url_host(dashboard_host), dashboard_port),
        # EMQX's Prometheus endpoint on the dashboard listener (apps/emqx_prometheus/src/emqx_prometheus_api.erl).
        # What the node is sized for (emq_node_sizing; the prometheus role warns near it).
        target_connections=h.integer('emq_node_target_connections'),
        metrics=dict(scheme='http', target='%s:%d' % (url_host(dashboard_host), dashboard_port),
                     path='/api/v5/prometheus/stats'),
        cli_path=h.text('emq_cluster_cli_path'),
        authz_topic_prefix=str(prefix) if prefix is not MISSING else h.text('emq_node_authz_topic_prefix'),
        # What a backup takes besides EMQX's own export (playbooks/backup.yml, restore.yml).
        conf_dir=EMQX_CONF_DIR,
        data_dir=h.text('emq_node_data_dir'),
        secrets_dir=h.text('emq_node_secrets_dir'),
        api_key_file=h.text('emq_node_api_key_file'),
    )


def node_role(get, host):
    """The node's role (emq_node_role, with emq_node's default: core)."""
    return _Host(get, host).text('emq_node_role')


def prefer_replicants(members, roles, prefer, backup_allowed=True):
    """The backend entries with their node's role, and the cores made backups when replicants take the devices.

    members: [{name, address, host}]; roles: {host: role} of the nodes (an entry whose host is not a node has
    role ''). With prefer and at least one replicant among the members, as EMQ recommends for core-replicant
    clusters, the cores get backup: true (the load balancer sends them devices only when no replicant is up; an
    entry of unknown role is left as it is),
    or are left out when the load balancer cannot have backups (backup_allowed false: NGINX with hash).
    """
    out = []
    for member in members:
        entry = dict(member)
        entry['role'] = roles.get(entry.get('host') or '', '')
        out.append(entry)
    replicants = [entry for entry in out if entry['role'] == 'replicant']
    for entry in out:
        entry['backup'] = bool(prefer and replicants and entry['role'] == 'core')
    if not backup_allowed:
        out = [entry for entry in out if not entry['backup']]
    return out


def node_address(get, host):
    """The private address a node is reached on (emq_node_cluster_address, with emq_node's default)."""
    return _Host(get, host).text('emq_node_cluster_address')


def backend_list(get, host, kind, groups, bad_chars=NAME_BAD_CHARS):
    """[{name, address, host}] as _lb_common makes it: <kind>_backends, else one entry per host of the group."""
    h, value = _lb(get, host, kind)
    explicit = value('backends') or []
    if not isinstance(explicit, list):
        raise DeploymentError('%s: %s_backends must be a list of {name, address}.' % (host, kind))
    out = []
    if explicit:
        for entry in explicit:
            entry = entry if isinstance(entry, dict) else {}
            address = '' if entry.get('address') is None else str(entry.get('address'))
            name = entry.get('name', address)
            out.append(dict(name=server_name('' if name is None else name, bad_chars), address=address,
                            host=str(entry.get('host') or '')))
        return out
    group = h.text(kind + '_backend_group', LB_COMMON_PREFIX + 'backend_group')
    for member in groups.get(group) or []:
        out.append(dict(name=server_name(member, bad_chars), address=node_address(get, member), host=member))
    return out


def lb_backends(get, host, kind, groups, nodes_by_host, bad_chars=NAME_BAD_CHARS):
    """backend_list with each entry's role and backup flag, as the load balancer writes its servers."""
    h, value = _lb(get, host, kind)
    members = backend_list(get, host, kind, groups, bad_chars)
    known = set(groups.get('all') or []) | set(nodes_by_host)
    roles = dict((m['host'], nodes_by_host[m['host']]['role'] if m['host'] in nodes_by_host else node_role(get, m['host']))
                 for m in members if m['host'] in known)
    backup_allowed = not (kind == 'nginx_lb' and h.text('nginx_lb_balance') == 'hash')
    return prefer_replicants(members, roles, value('prefer_replicants', 'flag'), backup_allowed)


def lb_entry(get, host, kind, groups, nodes_by_host, bad_chars=NAME_BAD_CHARS):
    """What one load balancer is, from its variables and its role's (and _lb_common's) defaults."""
    h, value = _lb(get, host, kind)
    address = value('private_address', 'text')
    mqtts_port = value('mqtts_port', 'integer')
    wss_enabled = value('wss_enabled', 'flag')
    wss_port = value('wss_port', 'integer')
    mqtt_enabled = value('mqtt_enabled', 'flag')
    mqtt_port = value('mqtt_port', 'integer')
    tls_source = value('tls_source', 'text')
    lab_ca = os.path.join(value('tls_lab_ca_dir', 'text'), 'ca.pem') if tls_source == 'lab' else ''

    urls = dict(mqtts='mqtts://%s:%d' % (url_host(address), mqtts_port))
    endpoints = [dict(name='%s %s' % (kind, urls['mqtts']), type='mqtts', host=address, port=mqtts_port)]
    if wss_enabled:
        urls['wss'] = 'wss://%s:%d%s' % (url_host(address), wss_port, WS_PATH)
        endpoints.append(dict(name='%s %s' % (kind, urls['wss']), type='wss', host=address, port=wss_port, path=WS_PATH))
    if mqtt_enabled:
        urls['mqtt'] = 'mqtt://%s:%d' % (url_host(address), mqtt_port)
        endpoints.append(dict(name='%s %s' % (kind, urls['mqtt']), type='mqtt', host=address, port=mqtt_port))

    backend_ports = dict(mqtt=value('backend_mqtt_port', 'integer'), ws=value('backend_ws_port', 'integer'))
    if kind == 'haproxy_lb':
        backend_ports['check'] = h.integer('haproxy_lb_backend_check_port')
    backends = [name for name, port in BACKENDS if port == 'mqtt' or wss_enabled]

    members = lb_backends(get, host, kind, groups, nodes_by_host, bad_chars)
    # Which node each backend entry is: its host, else the node with its address.
    by_address = dict((node['address'], node['host']) for node in nodes_by_host.values())
    sources = (h.raw('haproxy_lb_source_addresses') or []) if kind == 'haproxy_lb' else []
    servers = {}
    backend_endpoints = []
    for member in members:
        node_host = member['host'] or by_address.get(member['address'], '')
        # haproxy_lb writes one server line per source address, named <name>_s<N>.
        names = ['%s_s%d' % (member['name'], n) for n in range(1, len(sources) + 1)] if sources else [member['name']]
        if node_host:
            servers.setdefault(node_host, []).extend(names)
        # What the load balancer connects to: the MQTT port, where the health check asks (NGINX has none:
        # the node's dashboard port), and the WebSocket port when it forwards secure WebSocket.
        check = backend_ports.get('check')
        if check is None and node_host in nodes_by_host:
            check = nodes_by_host[node_host]['dashboard_port']
        ports = [backend_ports['mqtt']] + ([check] if check is not None else []) + ([backend_ports['ws']] if wss_enabled else [])
        label = node_host or member['name']
        for port in ports:
            backend_endpoints.append(dict(name='%s %s:%d' % (label, member['address'], port), host=member['address'], port=port))

    return dict(
        host=host,
        kind=kind,
        address=address,
        metrics=lb_metrics(h, kind),
        mqtts_port=mqtts_port,
        wss_enabled=wss_enabled,
        wss_port=wss_port,
        wss_path=WS_PATH,
        mqtt_enabled=mqtt_enabled,
        mqtt_port=mqtt_port,
        urls=urls,
        endpoints=endpoints,
        tls_source=tls_source,
        lab_ca=lab_ca,
        admin_socket=h.text('haproxy_lb_admin_socket') if kind == 'haproxy_lb' else None,
        backends=backends,
        backend_ports=backend_ports,
        backend_list=members,
        backend_endpoints=backend_endpoints,
        servers=servers,
    )


def lb_metrics(h, kind):
    """Where Prometheus scrapes a load balancer: HAProxy's built-in exporter (on the stats listener behind its
    user and password, or on a listener of its own without them), NGINX's exporter on the load balancer; None
    when it serves none. The password is never read here: the prometheus role takes it from the host's variables."""
    if kind == 'haproxy_lb':
        if not h.flag('haproxy_lb_prometheus_enabled'):
            return None
        path = h.text('haproxy_lb_prometheus_path')
        separate = h.text('haproxy_lb_prometheus_bind_address')
        if separate:
            return dict(scheme='http', target='%s:%d' % (url_host(separate), h.integer('haproxy_lb_prometheus_port')),
                        path=path, basic_auth_user=None)
        if not h.flag('haproxy_lb_stats_enabled'):
            return None
        return dict(scheme='http', target='%s:%d' % (url_host(h.text('haproxy_lb_stats_bind_address')),
                                                     h.integer('haproxy_lb_stats_port')),
                    path=path, basic_auth_user=h.text('haproxy_lb_stats_user'))
    if not (h.flag('nginx_lb_exporter_enabled') and h.flag('nginx_lb_status_enabled')):
        return None
    return dict(scheme='http', target='%s:%d' % (url_host(h.text('nginx_lb_exporter_bind_address')),
                                                 h.integer('nginx_lb_exporter_port')),
                path='/metrics', basic_auth_user=None)


def monitor_entry(get, host):
    """A monitoring host (the prometheus role): where it listens, and so where its scrapes come from."""
    h = _Host(get, host)
    address = h.text('prometheus_listen_address')
    return dict(host=host, address=address, url='http://%s:%d' % (url_host(address), h.integer('prometheus_port')))


# ---- floating addresses (the lb_vip role) ---------------------------------------------------------
# lb_vip's default priorities: the first load balancer of an address gets FIRST_PRIORITY, each next one STEP less.
FIRST_PRIORITY = 150
PRIORITY_STEP = 10


def _optional_int(h, name, low, high, problems, what):
    """h's value of name as an int in [low, high]; None (and a problem) when it is unset or not one."""
    value = h.raw(name)
    if value is MISSING or value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        if isinstance(value, bool):
            raise ValueError(value)
        number = int(str(value).strip())
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        problems.append('%s: %s is %r; write %s, a whole number from %d to %d.' % (h.host, name, value, what, low, high))
        return None
    return number


def vip_settings(get, lb):
    """One load balancer's lb_vip variables, or None when it sets no lb_vip_address; bad values as problems."""
    h = _Host(get, lb['host'])
    address = h.raw('lb_vip_address')
    if address is MISSING or address is None or not str(address).strip():
        return None
    problems = []
    address = str(address).strip()
    try:
        parsed = ipaddress.ip_address(address)
        if parsed.version != 4:
            problems.append('%s: lb_vip_address is %s, an IPv6 address; the role floats one IPv4 address (VRRP version 2), '
                            'write one such as 10.0.1.100.' % (lb['host'], address))
        else:
            address = str(parsed)
    except ValueError:
        problems.append('%s: lb_vip_address is %r, not an IP address; write the floating IPv4 address the devices connect to, '
                        'such as 10.0.1.100.' % (lb['host'], address))
    flags = {}
    for name in ('lb_vip_preempt', 'lb_vip_unicast', 'lb_vip_firewall_enabled'):
        try:
            flags[name] = h.flag(name)
        except DeploymentError:
            problems.append('%s: %s is %r; write true or false.' % (lb['host'], name, h.raw(name)))
            flags[name] = False
    ports = h.raw('lb_vip_check_ports')
    if ports is MISSING or ports is None:
        ports = [lb['mqtts_port']] + ([lb['wss_port']] if lb['wss_enabled'] else []) + ([lb['mqtt_port']] if lb['mqtt_enabled'] else [])
    else:
        checked = []
        for port in ports if isinstance(ports, list) else [ports]:
            try:
                if isinstance(port, bool) or not 1 <= int(str(port)) <= 65535:
                    raise ValueError(port)
                checked.append(int(str(port)))
            except ValueError:
                problems.append('%s: lb_vip_check_ports holds %r; write a list of the TCP ports (1-65535) this load balancer '
                                'listens on, such as [8883, 8084].' % (lb['host'], port))
        ports = checked
    if not ports:
        problems.append('%s: lb_vip_check_ports is empty; list at least one port the load balancer listens on.' % lb['host'])
    bind = h.raw(lb['kind'] + '_bind_address')
    bind = '' if bind is MISSING or bind is None else str(bind).strip()
    if bind not in WILDCARDS:
        problems.append('%s: %s_bind_address is %s; with a floating address every load balancer listens on every address '
                        '(the one that takes %s over accepts devices on it at once, and its health check asks 127.0.0.1): '
                        'write "".' % (lb['host'], lb['kind'], bind, address))
    return dict(
        address=address,
        virtual_router_id=_optional_int(h, 'lb_vip_virtual_router_id', 1, 255, problems, 'the VRRP router ID of this address'),
        priority=_optional_int(h, 'lb_vip_priority', 1, 254, problems, 'its VRRP priority'),
        advert_interval=_optional_int(h, 'lb_vip_advert_interval', 1, 255, problems, 'the seconds between VRRP advertisements'),
        preempt=flags['lb_vip_preempt'],
        unicast=flags['lb_vip_unicast'],
        firewall=flags['lb_vip_firewall_enabled'],
        check_ports=ports,
        problems=problems,
    )


def _host_addresses(get, groups, nodes, lbs):
    """{address: host} of every address the inventory gives a host (ansible_host, node and LB private addresses)."""
    out = {}
    for host in groups.get('all') or []:
        value = get(host, 'ansible_host')
        if value is not MISSING and value:
            out.setdefault(str(value), host)
    for node in nodes:
        out.setdefault(node['address'], node['host'])
    for lb in lbs:
        out.setdefault(lb['address'], lb['host'])
    return out


def floating_addresses(get, groups, lbs, nodes):
    """[vip]: the load balancers that share each lb_vip_address, their VRRP settings and what is wrong with them.

    Sets lb['vip'] on every load balancer (None when it floats no address): the address, its router ID, this
    host's priority, the private addresses of the other holders (its unicast peers), the ports its check asks.
    """
    by_address = {}
    for lb in lbs:
        lb['vip'] = vip_settings(get, lb)
        if lb['vip'] is not None:
            by_address.setdefault(lb['vip']['address'], []).append(lb)
    host_addresses = _host_addresses(get, groups, nodes, lbs)
    router_ids = {}
    vips = []
    for address, members in by_address.items():
        problems = []
        for lb in members:
            problems.extend(lb['vip'].pop('problems'))
        names = ', '.join(lb['host'] for lb in members)
        for index, lb in enumerate(members):
            if lb['vip']['priority'] is None:
                lb['vip']['priority'] = max(FIRST_PRIORITY - PRIORITY_STEP * index, 1)
            lb['vip']['peers'] = [other['address'] for other in members if other is not lb]
        if address in host_addresses:
            problems.append('lb_vip_address %s is the address of %s; the floating address must be one no host has, in the '
                            'subnet of %s.' % (address, host_addresses[address], names))
        kinds = sorted(set(lb['kind'] for lb in members))
        if len(kinds) > 1:
            problems.append('lb_vip_address %s is set on hosts of both %s: one address floats between load balancers of '
                            'one kind; give each group its own address.' % (address, ' and '.join(kinds)))
        for key, variable in (('virtual_router_id', 'lb_vip_virtual_router_id'), ('advert_interval', 'lb_vip_advert_interval'),
                              ('preempt', 'lb_vip_preempt'), ('unicast', 'lb_vip_unicast')):
            seen = sorted(set(str(lb['vip'][key]) for lb in members))
            if len(seen) > 1:
                problems.append('%s differs between the load balancers of %s (%s: %s); VRRP needs the same value on %s, '
                                'set it once for the group.' % (variable, address, names, ', '.join(seen), names))
        router_id = members[0]['vip']['virtual_router_id']
        if router_id is None and not any('lb_vip_virtual_router_id' in p for p in problems):
            problems.append('lb_vip_virtual_router_id is not set for %s (%s); write a number from 1 to 255 that no other VRRP '
                            'address on this network uses, such as the last number of the address.' % (address, names))
        if router_id is not None:
            router_ids.setdefault(router_id, []).append(address)
        priorities = [lb['vip']['priority'] for lb in members]
        repeated = sorted(set(p for p in priorities if priorities.count(p) > 1))
        if repeated:
            problems.append('lb_vip_priority %s is given to more than one load balancer of %s (%s); give each its own, the '
                            'highest to the preferred holder.' % (', '.join(str(p) for p in repeated), address, names))
        first = members[0]
        urls = dict(mqtts='mqtts://%s:%d' % (address, first['mqtts_port']))
        endpoints = [dict(name='%s vip %s' % (first['kind'], urls['mqtts']), type='mqtts', host=address, port=first['mqtts_port'])]
        if first['wss_enabled']:
            urls['wss'] = 'wss://%s:%d%s' % (address, first['wss_port'], WS_PATH)
            endpoints.append(dict(name='%s vip %s' % (first['kind'], urls['wss']), type='wss', host=address,
                                  port=first['wss_port'], path=WS_PATH))
        if first['mqtt_enabled']:
            urls['mqtt'] = 'mqtt://%s:%d' % (address, first['mqtt_port'])
            endpoints.append(dict(name='%s vip %s' % (first['kind'], urls['mqtt']), type='mqtt', host=address, port=first['mqtt_port']))
        preferred = max(members, key=lambda lb: lb['vip']['priority'])
        vips.append(dict(
            address=address,
            kind=first['kind'],
            virtual_router_id=router_id,
            members=[dict(host=lb['host'], address=lb['address'], priority=lb['vip']['priority']) for lb in members],
            hosts=[lb['host'] for lb in members],
            preferred=preferred['host'],
            preempt=first['vip']['preempt'],
            urls=urls,
            endpoints=endpoints,
            problems=problems,
        ))
    for router_id, addresses in router_ids.items():
        if len(addresses) > 1:
            for vip in vips:
                if vip['address'] in addresses:
                    vip['problems'].append('lb_vip_virtual_router_id %d is used by the floating addresses %s; VRRP tells them '
                                           'apart by this number, give each address its own.' % (router_id, ', '.join(addresses)))
    return vips


def deployment(groups, get, remove=None, node_group=NODE_GROUP, hosts=None, load_balancers=True, bad_chars=NAME_BAD_CHARS,
               nginx_conf=None, nginx_service=None):
    """The whole shape: nodes, load balancers, and the lists the day-2 playbooks need.

    groups: {group: [hosts]} (Ansible's ``groups``); get(host, name): the host's value of a variable, or
    MISSING; remove: hosts of node_group being taken out (a list or a comma-separated string); hosts: the
    nodes to describe instead of node_group's hosts; load_balancers: false leaves the load balancers out;
    nginx_conf, nginx_service: the file nginx_lb writes and its service (its role vars; NGINX_CONF and
    NGINX_SERVICE when not given).
    """
    nginx_conf, nginx_service = nginx_conf or NGINX_CONF, nginx_service or NGINX_SERVICE
    remove = split_hosts(remove)
    node_hosts = list(groups.get(node_group) or []) if hosts is None else split_hosts(hosts)
    nodes = [node_entry(get, host) for host in node_hosts]
    nodes_by_host = dict((node['host'], node) for node in nodes)

    lbs = []
    for kind in LB_KINDS if load_balancers else ():
        for host in groups.get(kind) or []:
            lbs.append(lb_entry(get, host, kind, groups, nodes_by_host, bad_chars))

    removed = [host for host in node_hosts if host in remove]
    removed_addresses = set(nodes_by_host[host]['address'] for host in removed)
    for lb in lbs:
        lb['remaining_backends'] = [
            member for member in lb['backend_list']
            if member['host'] not in removed and not (not member['host'] and member['address'] in removed_addresses)]
    for node in nodes:
        node['removed'] = node['host'] in removed
        # The server lines of this node on every HAProxy load balancer, to drain or put back into service.
        node['haproxy_servers'] = [
            dict(lb=lb['host'], socket=lb['admin_socket'], backend=backend, server=server)
            for lb in lbs if lb['kind'] == 'haproxy_lb'
            for backend in lb['backends']
            for server in lb['servers'].get(node['host'], [])]
        # Its upstream server lines on every NGINX load balancer (each ends with "# <server>" in nginx_conf).
        node['nginx_servers'] = [
            dict(lb=lb['host'], config=nginx_conf, service=nginx_service, server=server)
            for lb in lbs if lb['kind'] == 'nginx_lb'
            for server in lb['servers'].get(node['host'], [])]

    remaining = [node for node in nodes if not node['removed']]
    vips = floating_addresses(get, groups, lbs, nodes)
    monitors = [monitor_entry(get, host) for host in groups.get(MONITOR_GROUP) or []]
    return dict(
        nodes=nodes,
        lbs=lbs,
        monitors=monitors,
        vips=vips,
        vip_by_address=dict((vip['address'], vip) for vip in vips),
        node_by_host=nodes_by_host,
        lb_by_host=dict((lb['host'], lb) for lb in lbs),
        node_hosts=node_hosts,
        node_names=[node['name'] for node in nodes],
        core_names=[node['name'] for node in nodes if node['role'] == 'core'],
        replicant_names=[node['name'] for node in nodes if node['role'] == 'replicant'],
        role_by_name=dict((node['name'], node['role']) for node in nodes),
        remove=remove,
        remove_unknown=[host for host in remove if host not in nodes_by_host],
        removed_hosts=removed,
        removed_names=[nodes_by_host[host]['name'] for host in removed],
        remaining_hosts=[node['host'] for node in remaining],
        remaining_names=[node['name'] for node in remaining],
        remaining_core_names=[node['name'] for node in remaining if node['role'] == 'core'],
    )
