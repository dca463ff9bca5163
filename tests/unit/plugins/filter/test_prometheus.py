# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for the iothub.emq.prometheus_* filters."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.iothub.emq.plugins.filter.prometheus import (
    prometheus_alert_rules,
    prometheus_basic_auth_hosts,
    prometheus_password_file,
    prometheus_scrape_configs,
)


def _node(i, target=100000):
    return {'host': 'emqx-%d' % i, 'name': 'emqx@10.0.0.%d' % i, 'target_connections': target,
            'metrics': {'scheme': 'http', 'target': '10.0.0.%d:18083' % i, 'path': '/api/v5/prometheus/stats'}}


HAPROXY = {'host': 'lb-1', 'kind': 'haproxy_lb', 'backends': ['emqx_mqtt', 'emqx_ws'],
           'servers': {'emqx-1': ['emqx-1'], 'emqx-2': ['emqx-2'], 'emqx-3': ['emqx-3']}, 'backend_list': [{}, {}, {}],
           'metrics': {'scheme': 'http', 'target': '10.0.0.10:8404', 'path': '/metrics', 'basic_auth_user': 'ops'},
           'endpoints': [{'type': 'mqtts', 'host': '10.0.0.10', 'port': 8883}, {'type': 'wss', 'host': '10.0.0.10', 'port': 8084},
                         {'type': 'mqtt', 'host': '10.0.0.10', 'port': 1883}]}
NGINX = {'host': 'lb-2', 'kind': 'nginx_lb', 'backends': ['emqx_mqtt'], 'servers': {}, 'backend_list': [{}],
         'metrics': {'scheme': 'http', 'target': '10.0.0.11:9113', 'path': '/metrics', 'basic_auth_user': None},
         'endpoints': [{'type': 'mqtts', 'host': 'fd00::11', 'port': 8883}]}
DEPLOYMENT = {'nodes': [_node(1), _node(2), _node(3, target=0)], 'lbs': [HAPROXY, NGINX]}


def _jobs(**kwargs):
    return dict((j['job_name'], j) for j in prometheus_scrape_configs(DEPLOYMENT, **kwargs))


def test_every_node_is_one_target_of_the_emqx_job_labelled_with_host_and_node():
    emqx = _jobs()['emqx']
    assert emqx['metrics_path'] == '/api/v5/prometheus/stats'
    assert emqx['static_configs'][0] == {'targets': ['10.0.0.1:18083'], 'labels': {'host': 'emqx-1', 'node': 'emqx@10.0.0.1'}}
    assert len(emqx['static_configs']) == 3


def test_haproxy_scrapes_with_the_stats_user_and_a_password_file_never_the_password():
    job = _jobs(secrets_dir='/etc/p/s/')['haproxy-lb-1']
    assert job['basic_auth'] == {'username': 'ops', 'password_file': '/etc/p/s/haproxy-lb-1'}
    assert job['relabel_configs'] == [{'target_label': 'job', 'replacement': 'haproxy'}]
    assert 'basic_auth' not in _jobs()['nginx-lb-2']
    assert prometheus_basic_auth_hosts(DEPLOYMENT) == ['lb-1']
    assert prometheus_password_file('lb/../x', '/s') == '/s/haproxy-lb_.._x'


def test_frontdoor_probes_tls_endpoints_only_through_the_blackbox_exporter():
    assert 'frontdoor' not in _jobs()
    job = _jobs(blackbox='127.0.0.1:9115')['frontdoor']
    assert [c['targets'][0] for c in job['static_configs']] == ['10.0.0.10:8883', '10.0.0.10:8084', '[fd00::11]:8883']
    assert job['params'] == {'module': ['tls_connect']}
    assert {'target_label': '__address__', 'replacement': '127.0.0.1:9115'} in job['relabel_configs']


def _rules(**kwargs):
    groups = prometheus_alert_rules(DEPLOYMENT, **kwargs)['groups']
    return dict((r['alert'], r) for r in groups[0]['rules'])


def test_alert_rules_name_what_an_operator_is_paged_for():
    rules = _rules(alert_for='30s', certificate_days=10, connections_percent=90)
    assert set(rules) == {'EMQXNodeDown', 'EMQXClusterNotWhole', 'EMQXConnectionsNearTarget', 'LoadBalancerDown',
                          'LoadBalancerBackendDown', 'FrontDoorDown', 'CertificateExpiringSoon'}
    assert all(r['for'] == '30s' for r in rules.values())
    assert rules['EMQXClusterNotWhole']['expr'] == 'emqx_cluster_nodes_running{job="emqx"} < 3'
    # A node sized 0 gets no threshold; the others 90% of their target.
    assert rules['EMQXConnectionsNearTarget']['expr'] == (
        'emqx_connections_count{job="emqx",host="emqx-1"} > 90000 or emqx_connections_count{job="emqx",host="emqx-2"} > 90000')
    assert rules['LoadBalancerBackendDown']['expr'] == (
        'haproxy_backend_active_servers{job="haproxy",host="lb-1",proxy="emqx_mqtt"} < 3 or '
        'haproxy_backend_active_servers{job="haproxy",host="lb-1",proxy="emqx_ws"} < 3')
    assert rules['CertificateExpiringSoon']['expr'] == 'probe_ssl_earliest_cert_expiry{job="frontdoor"} - time() < 864000'
    assert '{{ $labels.node }}' in rules['EMQXNodeDown']['annotations']['summary']


def test_a_deployment_without_load_balancers_has_only_the_node_rules():
    rules = prometheus_alert_rules({'nodes': [_node(1)], 'lbs': []})['groups'][0]['rules']
    assert [r['alert'] for r in rules] == ['EMQXNodeDown', 'EMQXClusterNotWhole', 'EMQXConnectionsNearTarget']


@pytest.mark.parametrize('bad', ['1 minute', '', '5'])
def test_a_duration_prometheus_cannot_read_is_an_error(bad):
    with pytest.raises(AnsibleFilterError, match='alert_for'):
        prometheus_alert_rules(DEPLOYMENT, alert_for=bad)


def test_not_a_deployment_is_an_error():
    with pytest.raises(AnsibleFilterError, match='emq_deployment'):
        prometheus_scrape_configs({'hosts': []})


def test_the_grafana_dashboard_reads_the_metrics_of_these_jobs():
    import json
    import pathlib
    root = pathlib.Path(__file__).resolve().parents[4]
    dashboard = json.loads((root / 'roles' / 'prometheus' / 'files' / 'grafana' / 'iothub-emq.json').read_text())
    exprs = [t['expr'] for p in dashboard['panels'] for t in p['targets']]
    assert dashboard['uid'] == 'iothub-emq' and len(exprs) == len(dashboard['panels']) >= 10
    jobs = set(j['relabel_configs'][0]['replacement'] if j['job_name'] not in ('emqx', 'frontdoor') else j['job_name']
               for j in prometheus_scrape_configs(DEPLOYMENT, blackbox='127.0.0.1:9115'))
    named = set(e.split('job="')[1].split('"')[0] for e in exprs if 'job="' in e)
    assert named <= jobs, named - jobs
    assert any('emqx_connections_count' in e for e in exprs)
