# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for the iothub.emq.emq_deployment lookup: the pure shape functions on dictionaries, and the
lookup itself on the collection's real role defaults (templated with Ansible's own templar)."""

from __future__ import annotations

import os
import re

import pytest
import yaml

from ansible import constants as C
from ansible.errors import AnsibleLookupError
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

from ansible_collections.iothub.emq.plugins.lookup import emq_deployment as lookup_mod
from ansible_collections.iothub.emq.plugins.module_utils.emqx_cli import dist_ports
from ansible_collections.iothub.emq.plugins.plugin_utils import emq_deployment as shape

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


def _role_yaml(role, kind='defaults'):
    with open(os.path.join(ROOT, 'roles', role, kind, 'main.yml'), encoding='utf-8') as fh:
        return yaml.safe_load(fh) or {}


def _plain(value, variables):
    """A tiny stand-in for the templar: "{{ name }}" and "x{{ name }}y" only, enough for these tests."""
    if isinstance(value, str):
        return re.sub(r'\{\{\s*(\w+)\s*\}\}', lambda m: str(variables[m.group(1)]), value)
    return value


def _getter(hostvars, defaults=None):
    """get(host, name) over {host: vars} and plain (non-Jinja) defaults, hostvars first."""
    defaults = defaults or {}

    def get(host, name):
        variables = dict(defaults, inventory_hostname=host, **hostvars.get(host, {}))
        if name not in variables:
            return shape.MISSING
        return _plain(variables[name], variables)

    return get


# The roles' defaults these tests rely on, with their Jinja replaced by what it gives for these hosts.
DEFAULTS = {
    'emq_node_name': 'emqx@{{ emq_node_cluster_address }}',
    'emq_node_listeners': {'tcp': {'enable': True, 'bind': '0.0.0.0:1883'}, 'ws': {'enable': True, 'bind': '0.0.0.0:8083'},
                           'ssl': {'enable': False, 'bind': '0.0.0.0:8883'}, 'wss': {'enable': False, 'bind': '0.0.0.0:8084'}},
    'emq_node_dashboard_bind': '{{ emq_node_cluster_address }}:18083',
    'emq_node_authz_topic_prefix': 'devices',
    'emq_node_proxy_protocol': True,
    'emq_node_data_dir': '/var/lib/emqx',
    'emq_node_secrets_dir': '/etc/emqx-secrets',
    'emq_node_api_key_file': '/etc/emqx-secrets/api_keys',
    'emq_cluster_cli_path': '/usr/bin/emqx',
    'emq_node_target_connections': 1000000,
    'emq_node_role': 'core',
    '_lb_common_backend_group': 'emq_nodes',
    '_lb_common_tls_lab_ca_dir': '{{ inventory_dir }}/.lab-ca',
}
for _kind in shape.LB_KINDS:
    DEFAULTS.update({_kind + '_' + k: v for k, v in {
        'backend_group': 'emq_nodes', 'backends': [], 'backend_mqtt_port': 1883, 'backend_ws_port': 8083,
        'mqtts_port': 8883, 'wss_enabled': True, 'wss_port': 8084, 'mqtt_enabled': False, 'mqtt_port': 1883,
        'tls_source': 'files', 'private_address': '{{ ansible_host }}', 'prefer_replicants': True}.items()})
DEFAULTS.update(nginx_lb_balance='least_conn')
DEFAULTS.update(haproxy_lb_backend_check_port=18083, haproxy_lb_admin_socket='/run/haproxy/admin.sock',
                haproxy_lb_source_addresses=[])
DEFAULTS.update(haproxy_lb_prometheus_enabled=True, haproxy_lb_prometheus_path='/metrics', haproxy_lb_prometheus_bind_address='',
                haproxy_lb_prometheus_port=8405, haproxy_lb_stats_enabled=True, haproxy_lb_stats_port=8404,
                haproxy_lb_stats_bind_address='{{ ansible_host }}', haproxy_lb_stats_user='',
                nginx_lb_status_enabled=True, nginx_lb_exporter_enabled=True, nginx_lb_exporter_port=9113,
                nginx_lb_exporter_bind_address='{{ ansible_host }}')

NODES = {'emqx-1': {'emq_node_cluster_address': '10.0.0.1'},
         'emqx-2': {'emq_node_cluster_address': '10.0.0.2'},
         'emqx-3': {'emq_node_cluster_address': '10.0.0.3'}}
GROUPS = {'emq_nodes': list(NODES), 'haproxy_lb': ['lb-1'], 'nginx_lb': ['lb-2']}
LBS = {'lb-1': {'ansible_host': '10.0.0.10', 'inventory_dir': '/inv'}, 'lb-2': {'ansible_host': '10.0.0.11', 'inventory_dir': '/inv'}}


def _deployment(hostvars=None, groups=None, **kwargs):
    hostvars = dict(NODES, **LBS) if hostvars is None else hostvars
    return shape.deployment(groups or GROUPS, _getter(hostvars, DEFAULTS), **kwargs)


# ---- small helpers -------------------------------------------------------------------------------

@pytest.mark.parametrize('value, hosts', [
    (None, []), ('', []), ('emqx-3', ['emqx-3']), (' emqx-2, emqx-3 ,,emqx-2', ['emqx-2', 'emqx-3']),
    (['emqx-1', ' emqx-2', ''], ['emqx-1', 'emqx-2']), (['a,b'], ['a', 'b']),
])
def test_split_hosts(value, hosts):
    assert shape.split_hosts(value) == hosts


def test_split_hosts_refuses_a_mapping():
    with pytest.raises(shape.DeploymentError, match='list of host names'):
        shape.split_hosts({'emqx-1': 1})


@pytest.mark.parametrize('bind, host, port', [
    ('0.0.0.0:1883', '0.0.0.0', 1883), ('10.0.0.1:18083', '10.0.0.1', 18083), ('[::]:8083', '::', 8083),
    ('8084', '', 8084), (8084, '', 8084),
])
def test_bind_host_and_port(bind, host, port):
    assert (shape.bind_host(bind), shape.bind_port(bind)) == (host, port)


def test_server_name_replaces_what_haproxy_refuses():
    assert shape.server_name('emqx 1/a') == 'emqx_1_a'
    assert shape.server_name('emqx-1.example:x') == 'emqx-1.example:x'


# ---- nodes ---------------------------------------------------------------------------------------

def test_node_name_address_and_ports_from_the_defaults():
    node = _deployment()['node_by_host']['emqx-2']
    assert node['name'] == 'emqx@10.0.0.2'
    assert node['address'] == '10.0.0.2'
    assert (node['dist_port'], node['rpc_port']) == dist_ports('emqx@10.0.0.2') == (4370, 5370)
    assert (node['mqtt_port'], node['ws_port'], node['dashboard_port']) == (1883, 8083, 18083)
    assert node['status_url'] == 'http://10.0.0.2:18083/status'
    assert node['cli_path'] == '/usr/bin/emqx'
    assert node['cluster_endpoints'] == [
        {'name': 'emqx@10.0.0.2 distribution 10.0.0.2:4370', 'host': '10.0.0.2', 'port': 4370},
        {'name': 'emqx@10.0.0.2 rpc 10.0.0.2:5370', 'host': '10.0.0.2', 'port': 5370}]


def test_a_numbered_name_moves_the_cluster_ports():
    hostvars = {'n': {'emq_node_cluster_address': '10.0.0.5', 'emq_node_name': 'emqx7@{{ emq_node_cluster_address }}'}}
    node = _deployment(hostvars, {'emq_nodes': ['n']})['nodes'][0]
    assert (node['name'], node['dist_port'], node['rpc_port']) == ('emqx7@10.0.0.5', 4377, 5377)


def test_the_name_emq_node_noted_in_this_run_wins():
    hostvars = {'n': {'emq_node_cluster_address': '10.0.0.5', '__emq_node_name': 'emqx@node5.internal',
                      '__emq_node_authz_topic_prefix': 'plant'}}
    node = _deployment(hostvars, {'emq_nodes': ['n']})['nodes'][0]
    assert node['name'] == 'emqx@node5.internal'
    assert node['authz_topic_prefix'] == 'plant'


def test_a_dashboard_on_every_address_is_reached_on_the_cluster_address():
    hostvars = {'n': {'emq_node_cluster_address': '10.0.0.5', 'emq_node_dashboard_bind': '0.0.0.0:18084'}}
    node = _deployment(hostvars, {'emq_nodes': ['n']})['nodes'][0]
    assert (node['dashboard_host'], node['dashboard_port'], node['status_url']) == ('10.0.0.5', 18084, 'http://10.0.0.5:18084/status')


def test_which_listeners_wait_for_a_proxy_header():
    configured = {'tcp': {'bind': '0.0.0.0:1883'}, 'ws': {'bind': '8083', 'proxy_protocol': False}, 'wss': {'bind': '8084'}}
    listeners = shape.node_listeners(configured)
    assert shape.listener_proxy_protocol(listeners, configured, True) == {'tcp': True, 'ws': False, 'ssl': False, 'wss': False}
    assert shape.listener_proxy_protocol(listeners, configured, False) == {'tcp': False, 'ws': False, 'ssl': False, 'wss': False}
    off = {'tcp': {'enable': False, 'proxy_protocol': True}}
    assert shape.listener_proxy_protocol(shape.node_listeners(off), off, True)['tcp'] is False


def test_listeners_left_out_are_emqx_own():
    listeners = shape.node_listeners({'tcp': {'bind': '0.0.0.0:1884'}, 'ws': {'enable': 'no', 'bind': '8085'}})
    assert listeners['tcp'] == {'enabled': True, 'port': 1884, 'bind': '0.0.0.0:1884', 'configured': True}
    assert listeners['ws'] == {'enabled': False, 'port': 8085, 'bind': '8085', 'configured': True}
    assert listeners['wss'] == {'enabled': True, 'port': 8084, 'bind': '0.0.0.0:8084', 'configured': False}


@pytest.mark.parametrize('name, value, words', [
    ('emq_node_dashboard_bind', '10.0.0.1:', 'emq_node_dashboard_bind'),
    ('emq_node_listeners', ['tcp'], 'emq_node_listeners'),
])
def test_a_bad_node_value_names_the_host_and_the_variable(name, value, words):
    hostvars = {'n': {'emq_node_cluster_address': '10.0.0.5', name: value}}
    with pytest.raises(shape.DeploymentError, match='n: ' + words):
        _deployment(hostvars, {'emq_nodes': ['n']})


def test_a_variable_nobody_sets_is_an_error():
    with pytest.raises(shape.DeploymentError, match='emq_node_cluster_address is not set'):
        shape.deployment({'emq_nodes': ['n']}, _getter({}, {'emq_node_name': 'emqx@x'}))


# ---- load balancers ------------------------------------------------------------------------------

def test_haproxy_endpoints_and_backends_from_the_defaults():
    lb = _deployment()['lb_by_host']['lb-1']
    assert (lb['kind'], lb['address'], lb['mqtts_port'], lb['wss_port']) == ('haproxy_lb', '10.0.0.10', 8883, 8084)
    assert lb['urls'] == {'mqtts': 'mqtts://10.0.0.10:8883', 'wss': 'wss://10.0.0.10:8084/mqtt'}
    assert lb['endpoints'] == [
        {'name': 'haproxy_lb mqtts://10.0.0.10:8883', 'type': 'mqtts', 'host': '10.0.0.10', 'port': 8883},
        {'name': 'haproxy_lb wss://10.0.0.10:8084/mqtt', 'type': 'wss', 'host': '10.0.0.10', 'port': 8084, 'path': '/mqtt'}]
    assert lb['admin_socket'] == '/run/haproxy/admin.sock'
    assert lb['backends'] == ['emqx_mqtt', 'emqx_ws']
    assert lb['backend_ports'] == {'mqtt': 1883, 'ws': 8083, 'check': 18083}
    assert lb['servers'] == {'emqx-1': ['emqx-1'], 'emqx-2': ['emqx-2'], 'emqx-3': ['emqx-3']}
    assert lb['lab_ca'] == '' and lb['tls_source'] == 'files'
    assert [e['name'] for e in lb['backend_endpoints'][:3]] == ['emqx-1 10.0.0.1:1883', 'emqx-1 10.0.0.1:18083', 'emqx-1 10.0.0.1:8083']
    assert len(lb['backend_endpoints']) == 9


def test_nginx_without_wss_with_plain_mqtt_and_a_lab_ca():
    lbs = dict(LBS, **{'lb-2': dict(LBS['lb-2'], nginx_lb_wss_enabled='false', nginx_lb_mqtt_enabled='yes',
                                    nginx_lb_tls_source='lab', nginx_lb_private_address='192.0.2.7')})
    lb = _deployment(dict(NODES, **lbs))['lb_by_host']['lb-2']
    assert lb['admin_socket'] is None
    assert lb['backends'] == ['emqx_mqtt']
    assert lb['backend_ports'] == {'mqtt': 1883, 'ws': 8083}
    assert [e['type'] for e in lb['endpoints']] == ['mqtts', 'mqtt']
    assert lb['urls'] == {'mqtts': 'mqtts://192.0.2.7:8883', 'mqtt': 'mqtt://192.0.2.7:1883'}
    assert lb['lab_ca'] == '/inv/.lab-ca/ca.pem'
    # NGINX has no health check: from it, the nodes' MQTT and dashboard ports.
    assert [e['port'] for e in lb['backend_endpoints'][:2]] == [1883, 18083]
    assert len(lb['backend_endpoints']) == 6


def test_lb_values_fall_back_to_the_lb_common_defaults():
    defaults = dict((k, v) for k, v in DEFAULTS.items() if k != 'haproxy_lb_tls_lab_ca_dir')
    hostvars = dict(NODES, **{'lb-1': dict(LBS['lb-1'], haproxy_lb_tls_source='lab')})
    lb = shape.deployment({'emq_nodes': list(NODES), 'haproxy_lb': ['lb-1']}, _getter(hostvars, defaults))['lbs'][0]
    assert lb['lab_ca'] == '/inv/.lab-ca/ca.pem'


def test_haproxy_source_addresses_give_one_server_per_address():
    hostvars = dict(NODES, **{'lb-1': dict(LBS['lb-1'], haproxy_lb_source_addresses=['10.0.1.5', '10.0.1.6'])})
    d = _deployment(hostvars, {'emq_nodes': list(NODES), 'haproxy_lb': ['lb-1']})
    assert d['lbs'][0]['servers']['emqx-1'] == ['emqx-1_s1', 'emqx-1_s2']
    assert d['node_by_host']['emqx-1']['haproxy_servers'] == [
        {'lb': 'lb-1', 'socket': '/run/haproxy/admin.sock', 'backend': b, 'server': s}
        for b in ('emqx_mqtt', 'emqx_ws') for s in ('emqx-1_s1', 'emqx-1_s2')]


def test_nginx_servers_name_each_node_line_once_whatever_the_upstreams():
    d = _deployment()
    assert d['node_by_host']['emqx-2']['nginx_servers'] == [{'lb': 'lb-2', 'config': shape.NGINX_CONF, 'service': 'nginx',
                                                            'server': 'emqx-2'}]
    assert d['node_by_host']['emqx-2']['haproxy_servers'][0]['lb'] == 'lb-1'
    assert shape.deployment(GROUPS, _getter(dict(NODES, **LBS), DEFAULTS), nginx_conf='/x/n.conf')[
        'node_by_host']['emqx-1']['nginx_servers'][0]['config'] == '/x/n.conf'
    assert all(n['nginx_servers'] == [] for n in _deployment(load_balancers=False)['nodes'])


def test_explicit_backends_replace_the_group():
    backends = [{'name': 'node one', 'address': '10.0.0.1'}, {'name': 'two', 'address': '10.0.0.2', 'host': 'emqx-2'},
                {'address': '10.9.9.9'}]
    hostvars = dict(NODES, **{'lb-1': dict(LBS['lb-1'], haproxy_lb_backends=backends)})
    d = _deployment(hostvars, {'emq_nodes': list(NODES), 'haproxy_lb': ['lb-1']}, remove='emqx-1')
    lb = d['lbs'][0]
    assert lb['backend_list'] == [{'name': 'node_one', 'address': '10.0.0.1', 'host': '', 'role': '', 'backup': False},
                                  {'name': 'two', 'address': '10.0.0.2', 'host': 'emqx-2', 'role': 'core', 'backup': False},
                                  {'name': '10.9.9.9', 'address': '10.9.9.9', 'host': '', 'role': '', 'backup': False}]
    # The first entry is emqx-1 by its address: its server is drained, and it leaves with it.
    assert lb['servers'] == {'emqx-1': ['node_one'], 'emqx-2': ['two']}
    assert [b['name'] for b in lb['remaining_backends']] == ['two', '10.9.9.9']
    assert d['node_by_host']['emqx-3']['haproxy_servers'] == []


def test_a_port_that_is_not_a_number_names_the_host_and_the_variable():
    hostvars = dict(NODES, **{'lb-1': dict(LBS['lb-1'], haproxy_lb_mqtts_port='eighty')})
    with pytest.raises(shape.DeploymentError, match='lb-1: haproxy_lb_mqtts_port must be a port number'):
        _deployment(hostvars)


def test_a_flag_that_is_not_a_boolean_names_the_host_and_the_variable():
    hostvars = dict(NODES, **dict(LBS, **{'lb-2': dict(LBS['lb-2'], nginx_lb_wss_enabled='perhaps')}))
    with pytest.raises(shape.DeploymentError, match='lb-2: nginx_lb_wss_enabled must be true or false'):
        _deployment(hostvars)


# ---- removing nodes ------------------------------------------------------------------------------

def test_remove_lists_what_stays():
    d = _deployment(remove='emqx-3, emqx-9')
    assert d['remove'] == ['emqx-3', 'emqx-9']
    assert d['remove_unknown'] == ['emqx-9']
    assert (d['removed_hosts'], d['removed_names']) == (['emqx-3'], ['emqx@10.0.0.3'])
    assert d['remaining_hosts'] == ['emqx-1', 'emqx-2']
    assert d['remaining_names'] == ['emqx@10.0.0.1', 'emqx@10.0.0.2']
    assert [n['removed'] for n in d['nodes']] == [False, False, True]
    for lb in d['lbs']:
        assert lb['remaining_backends'] == [
            {'name': 'emqx-1', 'address': '10.0.0.1', 'host': 'emqx-1', 'role': 'core', 'backup': False},
            {'name': 'emqx-2', 'address': '10.0.0.2', 'host': 'emqx-2', 'role': 'core', 'backup': False}]


def test_nothing_removed_and_no_load_balancers():
    d = _deployment(dict(NODES), {'emq_nodes': list(NODES)})
    assert d['lbs'] == [] and d['lb_by_host'] == {}
    assert d['remove'] == [] and d['removed_hosts'] == []
    assert d['remaining_names'] == d['node_names'] == ['emqx@10.0.0.1', 'emqx@10.0.0.2', 'emqx@10.0.0.3']
    assert all(n['haproxy_servers'] == [] for n in d['nodes'])


# ---- cores and replicants ------------------------------------------------------------------------

REPLICATED = dict(NODES, **{'emqx-3': dict(NODES['emqx-3'], emq_node_role='replicant')})


def test_roles_name_the_cores_and_the_replicants():
    d = _deployment(dict(REPLICATED, **LBS))
    assert [n['role'] for n in d['nodes']] == ['core', 'core', 'replicant']
    assert d['core_names'] == ['emqx@10.0.0.1', 'emqx@10.0.0.2']
    assert d['replicant_names'] == ['emqx@10.0.0.3']
    assert d['role_by_name'] == {'emqx@10.0.0.1': 'core', 'emqx@10.0.0.2': 'core', 'emqx@10.0.0.3': 'replicant'}
    assert _deployment(dict(REPLICATED, **LBS), remove='emqx-2')['remaining_core_names'] == ['emqx@10.0.0.1']


def test_load_balancers_keep_the_cores_as_backups_of_the_replicants():
    d = _deployment(dict(REPLICATED, **LBS))
    for lb in d['lbs']:
        assert [(b['name'], b['role'], b['backup']) for b in lb['backend_list']] == [
            ('emqx-1', 'core', True), ('emqx-2', 'core', True), ('emqx-3', 'replicant', False)]
        # The backups are still drained and put back in a rollout.
        assert sorted(lb['servers']) == ['emqx-1', 'emqx-2', 'emqx-3']


def test_prefer_replicants_off_treats_every_node_alike():
    lbs = {'lb-1': dict(LBS['lb-1'], haproxy_lb_prefer_replicants=False), 'lb-2': LBS['lb-2']}
    d = _deployment(dict(REPLICATED, **lbs))
    assert [b['backup'] for b in d['lb_by_host']['lb-1']['backend_list']] == [False, False, False]
    assert [b['backup'] for b in d['lb_by_host']['lb-2']['backend_list']] == [True, True, False]


def test_nginx_hashing_leaves_the_cores_out_instead():
    lbs = dict(LBS, **{'lb-2': dict(LBS['lb-2'], nginx_lb_balance='hash')})
    d = _deployment(dict(REPLICATED, **lbs))
    assert [b['name'] for b in d['lb_by_host']['lb-2']['backend_list']] == ['emqx-3']
    assert d['lb_by_host']['lb-2']['servers'] == {'emqx-3': ['emqx-3']}


def test_an_empty_inventory():
    assert _deployment({}, {'all': []})['nodes'] == []


# ---- the lookup, on the collection's own role files ------------------------------------------------

@pytest.fixture
def run_lookup():
    """run(hostvars, groups, **options) -> the lookup's dictionary, with Ansible's DataLoader and Templar."""
    name = 'iothub.emq.emq_deployment'
    C.config.initialize_plugin_configuration_definitions('lookup', name, yaml.safe_load(lookup_mod.DOCUMENTATION)['options'])

    def run(hostvars, groups, terms=None, **options):
        loader = DataLoader()
        lookup = lookup_mod.LookupModule(loader=loader, templar=Templar(loader=loader))
        lookup._load_name = name
        result = lookup.run(terms or [], variables={'hostvars': hostvars, 'groups': groups}, **options)
        assert len(result) == 1
        return result[0]

    return run


INVENTORY = {
    'emqx-1': {'inventory_hostname': 'emqx-1', 'inventory_dir': '/srv/inv', 'ansible_host': '192.168.0.2'},
    'emqx-2': {'inventory_hostname': 'emqx-2', 'inventory_dir': '/srv/inv', 'ansible_host': '192.168.0.3'},
    'lb-1': {'inventory_hostname': 'lb-1', 'inventory_dir': '/srv/inv', 'ansible_host': '192.168.0.10',
             'haproxy_lb_tls_source': 'lab'},
    'lb-2': {'inventory_hostname': 'lb-2', 'inventory_dir': '/srv/inv', 'ansible_host': '192.168.0.11',
             'nginx_lb_tls_source': 'lab'},
}
INVENTORY_GROUPS = {'all': list(INVENTORY), 'emq_nodes': ['emqx-1', 'emqx-2'], 'haproxy_lb': ['lb-1'], 'nginx_lb': ['lb-2']}


def test_the_role_files_are_found_beside_the_plugin():
    assert os.path.realpath(shape.collection_root()) == os.path.realpath(ROOT)
    for role in shape.ROLES:
        assert os.path.isfile(shape.role_file(role)), role


@pytest.mark.parametrize('group, expected', [('haproxy_lb', True), ('aws_nlb', True), ('other', False)])
def test_proxy_protocol_is_on_by_default_behind_any_load_balancer(run_lookup, group, expected):
    """emq_node's default for emq_node_proxy_protocol counts haproxy_lb, nginx_lb and aws_nlb hosts."""
    inventory = {'emqx-1': INVENTORY['emqx-1'], 'front': {'inventory_hostname': 'front'}}
    d = run_lookup(inventory, {'all': list(inventory), 'emq_nodes': ['emqx-1'], group: ['front']}, load_balancers=False)
    assert d['node_by_host']['emqx-1']['proxy_protocol'] == {'tcp': expected, 'ws': expected, 'ssl': False, 'wss': False}


def test_the_lookup_reads_the_real_role_defaults(run_lookup):
    d = run_lookup(INVENTORY, INVENTORY_GROUPS)
    emq_node, emq_cluster = _role_yaml('emq_node'), _role_yaml('emq_cluster')
    haproxy, nginx = _role_yaml('haproxy_lb'), _role_yaml('nginx_lb')
    node = d['node_by_host']['emqx-1']
    # emq_node_cluster_address defaults to ansible_host, emq_node_name to emqx@<it>.
    assert node['address'] == '192.168.0.2' and node['name'] == 'emqx@192.168.0.2'
    assert node['mqtt_port'] == shape.bind_port(emq_node['emq_node_listeners']['tcp']['bind'])
    assert node['ws_port'] == shape.bind_port(emq_node['emq_node_listeners']['ws']['bind'])
    assert node['dashboard_port'] == shape.bind_port(emq_node['emq_node_dashboard_bind'])
    assert node['cli_path'] == emq_cluster['emq_cluster_cli_path']
    assert node['authz_topic_prefix'] == emq_node['emq_node_authz_topic_prefix']
    assert node['data_dir'] == emq_node['emq_node_data_dir']
    assert node['secrets_dir'] == emq_node['emq_node_secrets_dir']
    assert node['api_key_file'] == emq_node['emq_node_api_key_file'].replace('{{ emq_node_secrets_dir }}', node['secrets_dir'])
    hlb, nlb = d['lb_by_host']['lb-1'], d['lb_by_host']['lb-2']
    assert hlb['address'] == '192.168.0.10'
    assert hlb['mqtts_port'] == haproxy['haproxy_lb_mqtts_port']
    assert hlb['wss_port'] == haproxy['haproxy_lb_wss_port']
    assert hlb['mqtt_port'] == haproxy['haproxy_lb_mqtt_port']
    assert hlb['mqtt_enabled'] is haproxy['haproxy_lb_mqtt_enabled']
    assert hlb['admin_socket'] == haproxy['haproxy_lb_admin_socket']
    assert hlb['backend_ports'] == {'mqtt': haproxy['haproxy_lb_backend_mqtt_port'], 'ws': haproxy['haproxy_lb_backend_ws_port'],
                                    'check': haproxy['haproxy_lb_backend_check_port']}
    assert nlb['mqtts_port'] == nginx['nginx_lb_mqtts_port']
    assert nlb['backend_ports'] == {'mqtt': nginx['nginx_lb_backend_mqtt_port'], 'ws': nginx['nginx_lb_backend_ws_port']}
    # The file nginx_lb writes, from its role vars, where the node's lines are marked down to drain it.
    nginx_vars = _role_yaml('nginx_lb', 'vars')
    assert node['nginx_servers'] == [{'lb': 'lb-2', 'config': nginx_vars['_nginx_lb_conf_file'],
                                      'service': nginx_vars['_nginx_lb_service'], 'server': nlb['servers']['emqx-1'][0]}]


def test_the_lab_ca_is_where_the_role_default_puts_it(run_lookup):
    """Whatever the defaults file says (today "{{ inventory_dir }}/.lab-ca"), templated for that host."""
    d = run_lookup(INVENTORY, INVENTORY_GROUPS)
    for kind, host in (('haproxy_lb', 'lb-1'), ('nginx_lb', 'lb-2')):
        raw = _role_yaml(kind)[kind + '_tls_lab_ca_dir']
        variables = dict(INVENTORY[host], playbook_dir='/srv/playbooks')
        expected = _plain(raw, variables)
        assert '{{' not in expected, raw
        assert d['lb_by_host'][host]['lab_ca'] == os.path.join(expected, 'ca.pem')


def test_the_lookup_templates_inventory_values_over_the_defaults(run_lookup):
    hostvars = dict(INVENTORY, **{'lb-1': dict(INVENTORY['lb-1'], haproxy_lb_private_address='203.0.113.5',
                                               haproxy_lb_tls_lab_ca_dir='/etc/lab-ca')})
    d = run_lookup(hostvars, INVENTORY_GROUPS, remove='emqx-2')
    assert d['lb_by_host']['lb-1']['address'] == '203.0.113.5'
    assert d['lb_by_host']['lb-1']['lab_ca'] == '/etc/lab-ca/ca.pem'
    assert d['removed_names'] == ['emqx@192.168.0.3']
    assert d['remaining_names'] == ['emqx@192.168.0.2']


def test_the_lookup_takes_a_remove_list_and_another_node_group(run_lookup):
    groups = {'nodes': ['emqx-1', 'emqx-2']}
    d = run_lookup(INVENTORY, groups, remove=['emqx-1'], node_group='nodes')
    assert d['remaining_hosts'] == ['emqx-2'] and d['lbs'] == []


def test_the_lookup_refuses_terms(run_lookup):
    with pytest.raises(AnsibleLookupError, match='no terms'):
        run_lookup(INVENTORY, INVENTORY_GROUPS, terms=['emqx-1'])


def test_the_lookup_names_a_bad_value(run_lookup):
    hostvars = dict(INVENTORY, **{'lb-2': dict(INVENTORY['lb-2'], nginx_lb_mqtts_port='x')})
    with pytest.raises(AnsibleLookupError, match='lb-2: nginx_lb_mqtts_port must be a port number'):
        run_lookup(hostvars, INVENTORY_GROUPS)


# ---- the constants mirror the roles ------------------------------------------------------------------

def test_backend_names_are_the_roles():
    with open(os.path.join(ROOT, 'roles', 'haproxy_lb', 'templates', 'haproxy.cfg.j2'), encoding='utf-8') as fh:
        haproxy_cfg = fh.read()
    upstreams = _role_yaml('nginx_lb', 'vars')['_nginx_lb_upstreams']
    for name, port in shape.BACKENDS:
        assert re.search(r'^backend %s$' % name, haproxy_cfg, re.M), name
        assert "'name': '%s', 'port': nginx_lb_backend_%s_port" % (name, port) in upstreams


def test_the_conf_dir_is_emq_nodes():
    assert _role_yaml('emq_node', 'vars')['_emq_node_conf_dir'] == shape.EMQX_CONF_DIR


def test_server_name_characters_are_lb_common():
    assert _role_yaml('_lb_common', 'vars')['_lb_common_name_bad_chars'] == shape.NAME_BAD_CHARS


def test_emqx_listener_ports_are_emq_node_default_binds():
    listeners = _role_yaml('emq_node')['emq_node_listeners']
    assert dict((k, shape.bind_port(v['bind'])) for k, v in listeners.items()) == shape.EMQX_LISTENER_PORTS


def test_the_role_defaults_do_not_collide():
    merged = shape.merge_defaults(dict((role, _role_yaml(role)) for role in shape.ROLES))
    assert 'emq_node_name' in merged and 'haproxy_lb_admin_socket' in merged and '_lb_common_tls_lab_ca_dir' in merged
    with pytest.raises(shape.DeploymentError, match='x'):
        shape.merge_defaults({'emq_node': {'x': 1}, 'emq_cluster': {'x': 2}})


def test_hosts_describe_other_nodes_and_load_balancers_can_be_left_out():
    d = _deployment(hosts=['emqx-3', 'emqx-1'], load_balancers=False)
    assert d['node_hosts'] == ['emqx-3', 'emqx-1']
    assert d['node_names'] == ['emqx@10.0.0.3', 'emqx@10.0.0.1']
    assert d['lbs'] == []


def test_the_lookup_leaves_the_load_balancers_unread(run_lookup):
    """What the node roles call: a load balancer's bad value does not stop them."""
    hostvars = dict(INVENTORY, **{'lb-2': dict(INVENTORY['lb-2'], nginx_lb_mqtts_port='x')})
    d = run_lookup(hostvars, INVENTORY_GROUPS, hosts=['emqx-2'], load_balancers=False)
    assert d['node_names'] == ['emqx@192.168.0.3'] and d['lbs'] == []


# ---- floating addresses (lb_vip) -----------------------------------------------------------------
VIP_DEFAULTS = dict(DEFAULTS, **_role_yaml('lb_vip'))
VIP_GROUPS = {'emq_nodes': list(NODES), 'haproxy_lb': ['ha-1', 'ha-2'], 'nginx_lb': ['ng-1', 'ng-2']}
VIP_LBS = {
    'ha-1': {'ansible_host': '10.0.1.11', 'lb_vip_address': '10.0.1.100', 'lb_vip_virtual_router_id': 100},
    'ha-2': {'ansible_host': '10.0.1.12', 'lb_vip_address': '10.0.1.100', 'lb_vip_virtual_router_id': 100},
    'ng-1': {'ansible_host': '10.0.1.21'},
    'ng-2': {'ansible_host': '10.0.1.22'},
}


def _vip_shape(**changes):
    hostvars = dict(NODES)
    for host, lb in VIP_LBS.items():
        hostvars[host] = dict(lb, inventory_dir='/inv', **changes.get(host, {}))
    groups = dict(VIP_GROUPS, all=list(hostvars))
    return shape.deployment(groups, _getter(hostvars, VIP_DEFAULTS))


def test_vip_pairs_the_load_balancers_of_one_address():
    d = _vip_shape()
    assert [v['address'] for v in d['vips']] == ['10.0.1.100']
    vip = d['vip_by_address']['10.0.1.100']
    assert vip['problems'] == []
    assert vip['hosts'] == ['ha-1', 'ha-2'] and vip['kind'] == 'haproxy_lb'
    assert [m['priority'] for m in vip['members']] == [150, 140]
    assert vip['preferred'] == 'ha-1' and vip['preempt'] is False
    assert vip['urls'] == {'mqtts': 'mqtts://10.0.1.100:8883', 'wss': 'wss://10.0.1.100:8084/mqtt'}
    assert [(e['host'], e['port']) for e in vip['endpoints']] == [('10.0.1.100', 8883), ('10.0.1.100', 8084)]
    ha1 = d['lb_by_host']['ha-1']['vip']
    assert ha1['peers'] == ['10.0.1.12'] and ha1['priority'] == 150 and ha1['virtual_router_id'] == 100
    assert ha1['check_ports'] == [8883, 8084] and ha1['unicast'] is True and ha1['advert_interval'] == 1
    assert d['lb_by_host']['ha-2']['vip']['peers'] == ['10.0.1.11']
    assert d['lb_by_host']['ng-1']['vip'] is None


def test_vip_check_ports_follow_the_listeners_and_may_be_given():
    d = _vip_shape(**{'ha-1': {'haproxy_lb_wss_enabled': False, 'haproxy_lb_mqtt_enabled': True},
                      'ha-2': {'lb_vip_check_ports': [9000]}})
    assert d['lb_by_host']['ha-1']['vip']['check_ports'] == [8883, 1883]
    assert d['lb_by_host']['ha-2']['vip']['check_ports'] == [9000]


def test_vip_explicit_priority_decides_the_preferred_holder():
    d = _vip_shape(**{'ha-2': {'lb_vip_priority': 200}})
    vip = d['vips'][0]
    assert vip['preferred'] == 'ha-2' and vip['problems'] == []


@pytest.mark.parametrize('changes, expected', [
    ({'ha-1': {'lb_vip_address': '10.0.1.12'}, 'ha-2': {'lb_vip_address': '10.0.1.12'}}, 'is the address of ha-2'),
    ({'ha-1': {'lb_vip_address': '10.0.0.1'}, 'ha-2': {'lb_vip_address': '10.0.0.1'}}, 'is the address of emqx-1'),
    ({'ha-2': {'lb_vip_virtual_router_id': 101}}, 'lb_vip_virtual_router_id differs'),
    ({'ha-1': {'lb_vip_virtual_router_id': None}, 'ha-2': {'lb_vip_virtual_router_id': None}},
     'lb_vip_virtual_router_id is not set for 10.0.1.100'),
    ({'ha-1': {'lb_vip_virtual_router_id': 256}}, 'a whole number from 1 to 255'),
    ({'ha-2': {'lb_vip_priority': 150}}, 'lb_vip_priority 150 is given to more than one'),
    ({'ha-1': {'lb_vip_priority': 'high'}}, "lb_vip_priority is 'high'"),
    ({'ha-2': {'lb_vip_preempt': True}}, 'lb_vip_preempt differs'),
    ({'ha-2': {'lb_vip_unicast': 'maybe'}}, "lb_vip_unicast is 'maybe'; write true or false"),
    ({'ha-1': {'lb_vip_address': 'vip.example'}, 'ha-2': {'lb_vip_address': 'vip.example'}}, 'not an IP address'),
    ({'ha-1': {'lb_vip_address': 'fd00::100'}, 'ha-2': {'lb_vip_address': 'fd00::100'}}, 'an IPv6 address'),
    ({'ha-1': {'haproxy_lb_bind_address': '10.0.1.11'}}, 'haproxy_lb_bind_address is 10.0.1.11'),
    ({'ha-1': {'lb_vip_check_ports': [8883, 'x']}}, "lb_vip_check_ports holds 'x'"),
    ({'ng-1': {'lb_vip_address': '10.0.1.100', 'lb_vip_virtual_router_id': 100}}, 'both haproxy_lb and nginx_lb'),
])
def test_vip_problems_name_the_variable(changes, expected):
    problems = [p for vip in _vip_shape(**changes)['vips'] for p in vip['problems']]
    assert any(expected in p for p in problems), problems


def test_vip_router_ids_must_differ_between_addresses():
    d = _vip_shape(**{'ng-1': {'lb_vip_address': '10.0.1.200', 'lb_vip_virtual_router_id': 100},
                      'ng-2': {'lb_vip_address': '10.0.1.200', 'lb_vip_virtual_router_id': 100}})
    assert len(d['vips']) == 2
    for vip in d['vips']:
        assert any('lb_vip_virtual_router_id 100 is used by the floating addresses' in p for p in vip['problems'])
    d = _vip_shape(**{'ng-1': {'lb_vip_address': '10.0.1.200', 'lb_vip_virtual_router_id': 200},
                      'ng-2': {'lb_vip_address': '10.0.1.200', 'lb_vip_virtual_router_id': 200}})
    assert [vip['problems'] for vip in d['vips']] == [[], []]
    assert d['vip_by_address']['10.0.1.200']['kind'] == 'nginx_lb'


def test_vip_bind_must_be_every_address():
    d = _vip_shape(**{'ha-1': {'haproxy_lb_bind_address': '10.0.1.100'}, 'ha-2': {'haproxy_lb_bind_address': '::'}})
    assert len(d['vips'][0]['problems']) == 1 and 'haproxy_lb_bind_address is 10.0.1.100' in d['vips'][0]['problems'][0]


def test_no_vip_without_the_address():
    hostvars = dict(NODES, **{h: dict(v, inventory_dir='/inv') for h, v in LBS.items()})
    d = shape.deployment(GROUPS, _getter(hostvars, VIP_DEFAULTS))
    assert d['vips'] == [] and d['vip_by_address'] == {}
    assert all(lb['vip'] is None for lb in d['lbs'])


# ---- where Prometheus scrapes ----------------------------------------------------------------------

def test_metrics_endpoints_of_nodes_and_load_balancers():
    d = _deployment(dict(NODES, **{'lb-1': dict(LBS['lb-1'], haproxy_lb_stats_user='ops'), 'lb-2': LBS['lb-2']}))
    assert d['nodes'][0]['metrics'] == {'scheme': 'http', 'target': '10.0.0.1:18083', 'path': '/api/v5/prometheus/stats'}
    haproxy, nginx = d['lbs']
    assert haproxy['metrics'] == {'scheme': 'http', 'target': '10.0.0.10:8404', 'path': '/metrics', 'basic_auth_user': 'ops'}
    assert nginx['metrics'] == {'scheme': 'http', 'target': '10.0.0.11:9113', 'path': '/metrics', 'basic_auth_user': None}


def test_metrics_on_a_listener_of_their_own_or_none():
    own = dict(LBS['lb-1'], haproxy_lb_prometheus_bind_address='10.9.0.5')
    off = dict(LBS['lb-2'], nginx_lb_exporter_enabled=False)
    d = _deployment(dict(NODES, **{'lb-1': own, 'lb-2': off}))
    assert d['lbs'][0]['metrics'] == {'scheme': 'http', 'target': '10.9.0.5:8405', 'path': '/metrics', 'basic_auth_user': None}
    assert d['lbs'][1]['metrics'] is None
    no_stats = dict(LBS['lb-1'], haproxy_lb_stats_enabled=False)
    assert _deployment(dict(NODES, **{'lb-1': no_stats, 'lb-2': LBS['lb-2']}))['lbs'][0]['metrics'] is None
