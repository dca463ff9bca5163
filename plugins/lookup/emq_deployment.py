# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: emq_deployment
author: iothub.emq maintainers (@iothub)
version_added: 0.2.0
short_description: The shape of the deployment in the inventory - nodes, load balancers, ports, endpoints
description:
  - Returns one dictionary that describes the deployment of the current inventory the way the roles of this
    collection deploy it. For every host of the group O(node_group) (C(emq_nodes)) the EMQX node name, cluster
    address, Erlang distribution and RPC ports, listener ports, dashboard port and C(/status) URL and the path of the
    C(emqx) command; for every host of the groups C(haproxy_lb) and C(nginx_lb) its kind, private address, device
    endpoints, lab CA, runtime API socket, backends and the server lines of each node; and the lists the day-2
    playbooks need (the names of the nodes that stay when some are removed, see O(remove)).
  - Each value is the host's own variable when the inventory, a fact or an extra var sets it, else the default of
    the role that uses it, read from C(roles/<role>/defaults/main.yml) of this collection (C(emq_node), C(emq_cluster),
    C(haproxy_lb), C(nginx_lb), C(lb_vip), and C(_lb_common) for what the load-balancer roles hand on to it) and templated with
    that host's variables, as the role itself would template it. The files are found beside this plugin, so the same
    holds in a checkout and in a collection installed from Galaxy.
  - A node's name is the one the C(emq_node) role noted for it in this run (its preflight sets the fact
    C(__emq_node_name)), else the one its variables and defaults give (C(emq_node_name), by default
    C(emqx@<emq_node_cluster_address>)).
  - Runs on the controller and reads nothing else; it never connects to a host.
options:
  remove:
    description:
      - Inventory names of hosts of O(node_group) that are being taken out of the deployment, as a list or a
        comma-separated string. They are marked C(removed) and left out of C(remaining_names), C(remaining_hosts) and each load
        balancer's C(remaining_backends).
      - A name that is not a host of O(node_group) is listed in C(remove_unknown); the lookup does not fail.
    type: list
    elements: str
    default: []
  node_group:
    description:
      - Inventory group of the EMQX nodes (the roles' C(emq_node_group)).
    type: str
    default: emq_nodes
  hosts:
    description:
      - Describe these hosts as the EMQX nodes (C(nodes), in this order) instead of the hosts of O(node_group),
        for example the hosts of the current play.
    type: list
    elements: str
  load_balancers:
    description:
      - Whether to describe the load balancers. V(false) leaves C(lbs) empty and reads no load-balancer
        variable (the roles of the nodes use it so, for the node names).
    type: bool
    default: true
notes:
  - Variables set only in a play (C(vars:), role parameters) are not seen, since the values are read per host from
    its host variables (C(hostvars)), like the roles read other hosts' variables.
  - Raises an error naming the host and the variable when a value cannot be templated or is not what the role
    accepts (a port that is not a number, a flag that is not a boolean).
seealso:
  - module: iothub.emq.emq_cluster_info
    description: The running and stopped members of the cluster, as a node sees them.
  - module: iothub.emq.emq_port_check
    description: Check endpoints; C(endpoints) and C(backend_endpoints) of a load balancer and C(cluster_endpoints) of a node
      are in the form of its O(iothub.emq.emq_port_check#module:endpoints).
  - module: community.general.haproxy
    description: Drain a node on HAProxy and put it back; C(haproxy_servers) of a node lists its server lines.
"""

EXAMPLES = r"""
- name: Show the node names and the device endpoints
  ansible.builtin.debug:
    msg:
      - "{{ lookup('iothub.emq.emq_deployment').node_names }}"
      - "{{ lookup('iothub.emq.emq_deployment').lbs | map(attribute='urls') }}"

- name: Read the cluster through the emqx command the roles use
  iothub.emq.emq_cluster_info:
    cli_path: "{{ lookup('iothub.emq.emq_deployment').node_by_host[inventory_hostname].cli_path }}"
  register: cluster

- name: Drain this node on every HAProxy load balancer
  community.general.haproxy:
    state: drain
    socket: "{{ item.socket }}"
    backend: "{{ item.backend }}"
    host: "{{ item.server }}"
    fail_on_not_found: true
  delegate_to: "{{ item.lb }}"
  loop: "{{ lookup('iothub.emq.emq_deployment').node_by_host[inventory_hostname].haproxy_servers }}"

- name: Render the static seeds of the nodes that stay
  ansible.builtin.include_role:
    name: iothub.emq.emq_node
  vars:
    emq_node_static_seeds: "{{ lookup('iothub.emq.emq_deployment', remove=['emqx-3']).remaining_core_names }}"
"""

RETURN = r"""
_raw:
  description: One dictionary (a list of one item, as lookups return).
  type: list
  elements: dict
  contains:
    nodes:
      description: The EMQX nodes, in the order of the group (or of O(hosts)).
      type: list
      elements: dict
      contains:
        host:
          description: Inventory name.
          type: str
          sample: emqx-1
        name:
          description: EMQX node name.
          type: str
          sample: emqx@192.168.0.2
        address:
          description: Cluster (private) address, C(emq_node_cluster_address).
          type: str
          sample: 192.168.0.2
        dist_port:
          description: Erlang distribution port (4370 plus the number at the end of the first part of the name).
          type: int
          sample: 4370
        rpc_port:
          description: gen_rpc port (5370 plus that number).
          type: int
          sample: 5370
        cluster_endpoints:
          description: The distribution and RPC ports as M(iothub.emq.emq_port_check) endpoints (C(name), C(host), C(port)).
          type: list
          elements: dict
        listeners:
          description:
            - C(tcp), C(ssl), C(ws) and C(wss), each C({enabled, port, bind, configured}).
            - C(configured=false) for a type C(emq_node_listeners) leaves out, which EMQX runs with its own default.
          type: dict
        proxy_protocol:
          description:
            - C(tcp), C(ssl), C(ws) and C(wss), each V(true) when that listener is on and waits for a PROXY protocol header
              (C(emq_node_listeners.<type>.proxy_protocol), else C(emq_node_proxy_protocol) for C(tcp) and C(ws)).
          type: dict
          sample: {tcp: true, ws: true, ssl: false, wss: false}
        mqtt_port:
          description: Port of the MQTT (tcp) listener.
          type: int
          sample: 1883
        ws_port:
          description: Port of the WebSocket listener.
          type: int
          sample: 8083
        dashboard_port:
          description: Port of the dashboard and REST API listener, where C(/status) answers.
          type: int
          sample: 18083
        dashboard_host:
          description: Address of that listener (the cluster address when it binds every address).
          type: str
          sample: 192.168.0.2
        status_url:
          description: URL of C(/status).
          type: str
          sample: http://192.168.0.2:18083/status
        target_connections:
          description: The connections the node is sized for (C(emq_node_target_connections)).
          type: int
          sample: 1000000
        metrics:
          description: Where Prometheus scrapes the node, C(scheme), C(target) (host:port) and C(path) (C(/api/v5/prometheus/stats)).
          type: dict
        cli_path:
          description: Path of the C(emqx) command on the node (C(emq_cluster_cli_path)).
          type: str
          sample: /usr/bin/emqx
        authz_topic_prefix:
          description: First topic level of the devices' topics (C(emq_node_authz_topic_prefix)).
          type: str
          sample: devices
        removed:
          description: Whether the host is in O(remove).
          type: bool
        conf_dir:
          description: EMQX's configuration directory, C(emqx.conf) and the files beside it.
          type: str
          sample: /etc/emqx
        data_dir:
          description: EMQX's data directory (C(emq_node_data_dir)).
          type: str
          sample: /var/lib/emqx
        secrets_dir:
          description: Where emq_node keeps the node's secret files (C(emq_node_secrets_dir)).
          type: str
          sample: /etc/emqx-secrets
        api_key_file:
          description: The API key bootstrap file (C(emq_node_api_key_file)).
          type: str
          sample: /etc/emqx-secrets/api_keys
        haproxy_servers:
          description: The server lines of the node on every HAProxy load balancer, each C({lb, socket, backend, server}).
          type: list
          elements: dict
        nginx_servers:
          description:
            - The node's upstream server lines on every NGINX load balancer, each C({lb, config, service, server}).
            - C(config) is the file nginx_lb writes, where each of the node's lines ends with C(# <server>) (the roles mark
              it C(down) to drain the node); C(service) is NGINX's systemd service.
          type: list
          elements: dict
    lbs:
      description: The load balancers, C(haproxy_lb) hosts first, each group in its order.
      type: list
      elements: dict
      contains:
        host:
          description: Inventory name.
          type: str
          sample: lb-1
        kind:
          description: C(haproxy_lb) or C(nginx_lb), its group and role.
          type: str
          sample: haproxy_lb
        address:
          description: The private address (C(<kind>_private_address)), where devices are sent.
          type: str
          sample: 192.168.0.10
        mqtts_port:
          description: MQTT over TLS port.
          type: int
          sample: 8883
        wss_enabled:
          description: Whether MQTT over secure WebSocket is served.
          type: bool
        wss_port:
          description: Secure WebSocket port.
          type: int
          sample: 8084
        wss_path:
          description: HTTP path of the WebSocket.
          type: str
          sample: /mqtt
        mqtt_enabled:
          description: Whether plain MQTT is served.
          type: bool
        mqtt_port:
          description: Plain MQTT port, served only when C(mqtt_enabled) is true.
          type: int
          sample: 1883
        urls:
          description: The device URLs served, by type (C(mqtts), C(wss), C(mqtt)).
          type: dict
          sample: {mqtts: "mqtts://192.168.0.10:8883", wss: "wss://192.168.0.10:8084/mqtt"}
        endpoints:
          description: The device endpoints served, as M(iothub.emq.emq_port_check) endpoints (C(name), C(type), C(host), C(port), C(path)).
          type: list
          elements: dict
        tls_source:
          description: C(files) or C(lab).
          type: str
        lab_ca:
          description: The lab CA certificate on the controller (C(<kind>_tls_lab_ca_dir/ca.pem)) with C(tls_source=lab), else empty.
          type: str
        admin_socket:
          description: HAProxy's runtime API socket; V(null) for NGINX.
          type: str
          sample: /run/haproxy/admin.sock
        backends:
          description: Names of the HAProxy backends or NGINX upstreams.
          type: list
          elements: str
          sample: [emqx_mqtt, emqx_ws]
        backend_ports:
          description: The node ports it forwards to (C(mqtt), C(ws)) and, for HAProxy, its health check port (C(check)).
          type: dict
        backend_list:
          description:
            - Its backend entries C({name, address, host, role, backup}) as the role makes them. C(role) is the node's
              C(emq_node_role) (empty for an entry that is no host of the inventory).
            - With replicants among them and C(<kind>_prefer_replicants) on, the cores have C(backup=true) (the load
              balancer sends them devices only when no replicant is up); NGINX with C(hash) balancing, which cannot have
              backup servers, leaves the cores out instead.
          type: list
          elements: dict
        remaining_backends:
          description: The entries of C(backend_list) that stay after O(remove).
          type: list
          elements: dict
        backend_endpoints:
          description:
            - What it connects to on every backend, as M(iothub.emq.emq_port_check) endpoints - the MQTT port, the health
              check port (HAProxy) or the dashboard port (NGINX), and the WebSocket port when it serves secure WebSocket.
          type: list
          elements: dict
        servers:
          description: Server names by node inventory name (HAProxy writes one per source address).
          type: dict
        metrics:
          description:
            - Where Prometheus scrapes this load balancer, or V(null) when it serves no metrics. C(scheme), C(target)
              (host:port), C(path), and C(basic_auth_user) (HAProxy's C(haproxy_lb_stats_user) when the metrics are on
              the stats listener; the password is not read).
          type: dict
        vip:
          description:
            - The floating address this load balancer holds with others (role C(iothub.emq.lb_vip)), or V(null) when its
              C(lb_vip_address) is empty.
            - C(address), C(virtual_router_id), C(priority) (C(lb_vip_priority), else 150 for the first load balancer of
              the address, 10 less for each next one), C(peers) (the private addresses of the other load balancers of the
              address), C(check_ports) (C(lb_vip_check_ports), else the load balancer's device ports), C(advert_interval),
              C(preempt), C(unicast), C(firewall).
          type: dict
    monitors:
      description: The monitoring hosts (group C(prometheus), role C(iothub.emq.prometheus)) with C(host), C(address)
        (C(prometheus_listen_address)) and C(url); the nodes' firewall lets them reach the dashboard port.
      type: list
      elements: dict
    vips:
      description:
        - One entry per floating address (C(lb_vip_address)) of the load balancers, with what is wrong with it.
      type: list
      elements: dict
      contains:
        address:
          description: The floating address.
          type: str
          sample: 10.0.1.100
        kind:
          description: The group of its load balancers.
          type: str
          sample: haproxy_lb
        virtual_router_id:
          description: Its VRRP router ID (V(null) when unset).
          type: int
          sample: 100
        members:
          description: Its load balancers, each C({host, address, priority}), in the order of the group.
          type: list
          elements: dict
        hosts:
          description: Their inventory names.
          type: list
          elements: str
        preferred:
          description: The load balancer with the highest priority, which holds the address first.
          type: str
        preempt:
          description: Whether the preferred load balancer takes the address back when it returns.
          type: bool
        urls:
          description: The device URLs through the floating address (C(mqtts), and C(wss) and C(mqtt) when on).
          type: dict
        endpoints:
          description: The same as M(iothub.emq.emq_port_check) endpoints.
          type: list
          elements: dict
        problems:
          description:
            - What the role C(iothub.emq.lb_vip) refuses, each naming the variable and what to write instead (an address
              that is not IPv4 or is a host's own, router IDs or settings that differ between its load balancers, a
              router ID another address uses, priorities given twice, a load balancer bound to another address).
          type: list
          elements: str
    vip_by_address:
      description: C(vips) by address.
      type: dict
    node_by_host:
      description: C(nodes) by inventory name.
      type: dict
    lb_by_host:
      description: C(lbs) by inventory name.
      type: dict
    node_hosts:
      description: Inventory names of the nodes.
      type: list
      elements: str
    node_names:
      description: Node names, in the same order.
      type: list
      elements: str
    core_names:
      description: The node names of the cores (C(emq_node_role=core)), in the same order; the default static seeds.
      type: list
      elements: str
      version_added: 0.5.0
    replicant_names:
      description: The node names of the replicants, in the same order.
      type: list
      elements: str
      version_added: 0.5.0
    role_by_name:
      description: Each node's role (C(core) or C(replicant)) by node name.
      type: dict
      version_added: 0.5.0
    remove:
      description: O(remove) as a list.
      type: list
      elements: str
    remove_unknown:
      description: Names in O(remove) that are not nodes.
      type: list
      elements: str
    removed_hosts:
      description: Inventory names of the nodes in O(remove).
      type: list
      elements: str
    removed_names:
      description: Their node names.
      type: list
      elements: str
    remaining_hosts:
      description: Inventory names of the other nodes.
      type: list
      elements: str
    remaining_names:
      description: Their node names.
      type: list
      elements: str
    remaining_core_names:
      description: The node names of the cores among them (the static seeds without the removed nodes).
      type: list
      elements: str
      version_added: 0.5.0
"""

from collections.abc import Mapping

from ansible.errors import AnsibleError, AnsibleLookupError
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.lookup import LookupBase

from ansible_collections.iothub.emq.plugins.plugin_utils import emq_deployment as shape

try:  # ansible-core 2.19+: only strings trusted as templates are templated
    from ansible.template import trust_as_template
except ImportError:  # earlier versions template every string
    trust_as_template = None


def _trusted(value):
    """A role file's values, trusted as templates the way Ansible trusts a role's own defaults."""
    if trust_as_template is None:
        return value
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, Mapping):
        return dict((key, _trusted(item)) for key, item in value.items())
    if isinstance(value, list):
        return [_trusted(item) for item in value]
    return value


class _Resolver(object):
    """get(host, name): the host's variable, else the role default, templated with the host's variables."""

    def __init__(self, templar, hostvars, defaults, shared):
        self._templar = templar
        self._hostvars = hostvars
        self._defaults = defaults
        self._shared = shared
        self._templars = {}
        self._values = {}

    def _templar_of(self, host):
        if host not in self._templars:
            # The host's variables unrendered (what HostVars renders on access), over the roles' defaults,
            # as a role run on that host sees them.
            raw_get = getattr(self._hostvars, 'raw_get', None)
            raw = raw_get(host) if raw_get is not None else self._hostvars.get(host)
            variables = dict(self._defaults)
            variables.update(self._shared)
            variables.update(raw if isinstance(raw, Mapping) else {})
            variables.setdefault('inventory_hostname', host)
            self._templars[host] = (variables, self._templar.copy_with_new_env(available_variables=variables))
        return self._templars[host]

    def get(self, host, name):
        key = (host, name)
        if key not in self._values:
            variables, templar = self._templar_of(host)
            if name not in variables:
                self._values[key] = shape.MISSING
            else:
                try:
                    self._values[key] = templar.template(variables[name])
                except AnsibleError as exc:
                    raise AnsibleLookupError('iothub.emq.emq_deployment cannot work out %s for %s: %s' % (name, host, to_native(exc))) from exc
        return self._values[key]


class LookupModule(LookupBase):

    def _role_file(self, role, kind='defaults'):
        path = shape.role_file(role, kind)
        try:
            # unsafe: the loader's cached copy itself, not a deep copy (nothing here changes it).
            try:
                data = self._loader.load_from_file(path, unsafe=True, trusted_as_template=True)
            except TypeError:  # ansible-core before 2.19
                data = self._loader.load_from_file(path, unsafe=True)
        except AnsibleError as exc:
            raise AnsibleLookupError('iothub.emq.emq_deployment cannot read %s: %s' % (path, to_native(exc))) from exc
        return _trusted(data or {})

    def run(self, terms, variables=None, **kwargs):
        if terms:
            raise AnsibleLookupError('iothub.emq.emq_deployment takes no terms, only options (remove, node_group, hosts, load_balancers).')
        self.set_options(var_options=variables, direct=kwargs)
        variables = variables or {}
        groups = variables.get('groups') or {}
        hostvars = variables.get('hostvars') or {}
        try:
            defaults = shape.merge_defaults(dict((role, self._role_file(role)) for role in shape.ROLES))
            load_balancers = self.get_option('load_balancers')
            bad_chars, nginx_conf, nginx_service = shape.NAME_BAD_CHARS, shape.NGINX_CONF, shape.NGINX_SERVICE
            if load_balancers:
                bad_chars = self._role_file('_lb_common', 'vars').get('_lb_common_name_bad_chars', bad_chars)
                nginx_vars = self._role_file('nginx_lb', 'vars')
                nginx_conf = nginx_vars.get('_nginx_lb_conf_file', nginx_conf)
                nginx_service = nginx_vars.get('_nginx_lb_service', nginx_service)
            resolver = _Resolver(self._templar, hostvars, defaults, dict(groups=groups, hostvars=hostvars))
            return [shape.deployment(groups, resolver.get, remove=self.get_option('remove'), node_group=self.get_option('node_group'),
                                     hosts=self.get_option('hosts'), load_balancers=load_balancers,
                                     bad_chars=str(bad_chars), nginx_conf=str(nginx_conf),
                                     nginx_service=str(nginx_service))]
        except shape.DeploymentError as exc:
            raise AnsibleLookupError('iothub.emq.emq_deployment: %s' % to_native(exc)) from None
