# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Prometheus scrape jobs and alert rules for an EMQX deployment (the iothub.emq.emq_deployment lookup's result)."""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError
from ansible.utils.unsafe_proxy import wrap_var

# The blackbox exporter's module that opens a TLS connection and reads the certificate (blackbox.yml).
BLACKBOX_MODULE = 'tls_connect'
DURATION = re.compile(r'^([0-9]+(ms|s|m|h|d|w|y))+$')


def _deployment(value, name):
    if not isinstance(value, dict) or not isinstance(value.get('nodes'), list) or not isinstance(value.get('lbs', []), list):
        raise AnsibleFilterError('%s expects the result of the iothub.emq.emq_deployment lookup' % name)
    return value


def _job(name, targets, path, labels_of=None, basic_auth=None, job_label=None):
    job = {
        'job_name': name,
        'metrics_path': path,
        'static_configs': [{'targets': [t['target']], 'labels': dict(labels_of(t) if labels_of else {})} for t in targets],
    }
    if basic_auth:
        job['basic_auth'] = basic_auth
    if job_label:
        job['relabel_configs'] = [{'target_label': 'job', 'replacement': job_label}]
    return job


def prometheus_password_file(host, secrets_dir):
    """Where Prometheus reads the stats password of one HAProxy load balancer."""
    return '%s/haproxy-%s' % (secrets_dir.rstrip('/'), re.sub(r'[^A-Za-z0-9_.-]', '_', host))


def prometheus_basic_auth_hosts(deployment):
    """The load balancers whose metrics are behind a user and password (HAProxy's stats listener)."""
    d = _deployment(deployment, 'prometheus_basic_auth_hosts')
    return [lb['host'] for lb in d.get('lbs', []) if lb.get('metrics') and lb['metrics'].get('basic_auth_user')]


def prometheus_scrape_configs(deployment, secrets_dir='/etc/prometheus/iothub-secrets', blackbox=None):
    """Scrape jobs: `emqx` (every node's /api/v5/prometheus/stats), `haproxy` and `nginx` (each load balancer's
    exporter; HAProxy's behind its stats user, the password in a file of secrets_dir), and `frontdoor` (the
    blackbox exporter at `blackbox`, host:port, opening TLS to every device endpoint of the load balancers
    for the certificate's expiry). Each target is labelled with its inventory host (`host`)."""
    d = _deployment(deployment, 'prometheus_scrape_configs')
    jobs = []
    nodes = [dict(target=n['metrics']['target'], path=n['metrics']['path'], host=n['host'], node=n['name']) for n in d['nodes']]
    if nodes:
        jobs.append(_job('emqx', nodes, nodes[0]['path'], lambda t: {'host': t['host'], 'node': t['node']}))
    for kind, label in (('haproxy_lb', 'haproxy'), ('nginx_lb', 'nginx')):
        lbs = [lb for lb in d.get('lbs', []) if lb['kind'] == kind and lb.get('metrics')]
        for lb in lbs:
            m = lb['metrics']
            auth = None
            if m.get('basic_auth_user'):
                auth = {'username': m['basic_auth_user'], 'password_file': prometheus_password_file(lb['host'], secrets_dir)}
            jobs.append(_job('%s-%s' % (label, lb['host']), [dict(target=m['target'], host=lb['host'])], m['path'],
                             lambda t: {'host': t['host']}, auth, label))
    if blackbox:
        probes = [dict(target='%s:%d' % (e['host'] if ':' not in e['host'] else '[%s]' % e['host'], e['port']),
                       host=lb['host'], endpoint=e['type'])
                  for lb in d.get('lbs', []) for e in lb['endpoints'] if e['type'] in ('mqtts', 'wss')]
        if probes:
            job = _job('frontdoor', probes, '/probe', lambda t: {'host': t['host'], 'endpoint': t['endpoint']})
            job['params'] = {'module': [BLACKBOX_MODULE]}
            job['relabel_configs'] = [
                {'source_labels': ['__address__'], 'target_label': '__param_target'},
                {'source_labels': ['__param_target'], 'target_label': 'instance'},
                {'target_label': '__address__', 'replacement': blackbox},
            ]
            jobs.append(job)
    return jobs


def _check_duration(value, name):
    if not DURATION.match(str(value)):
        raise AnsibleFilterError('prometheus_alert_rules: %s must be a Prometheus duration such as 1m or 30s, got %r' % (name, value))
    return str(value)


def prometheus_alert_rules(deployment, alert_for='1m', certificate_days=14, connections_percent=80):
    """The alert rules: a node down, the cluster not whole, a load balancer or its backend down, a device
    endpoint not answering or its certificate expiring within certificate_days, a node near its sized
    connections (connections_percent of each node's target_connections)."""
    d = _deployment(deployment, 'prometheus_alert_rules')
    wait = _check_duration(alert_for, 'alert_for')
    nodes = d['nodes']
    rules = []

    def rule(name, expr, summary, severity='critical'):
        rules.append({'alert': name, 'expr': expr, 'for': wait, 'labels': {'severity': severity},
                      'annotations': {'summary': summary}})

    if nodes:
        rule('EMQXNodeDown', 'up{job="emqx"} == 0',
             'EMQX node {{ $labels.node }} ({{ $labels.host }}) does not answer Prometheus')
        rule('EMQXClusterNotWhole', 'emqx_cluster_nodes_running{job="emqx"} < %d' % len(nodes),
             '{{ $labels.node }} sees {{ $value }} of the %d nodes of the cluster running' % len(nodes))
        near = []
        for n in nodes:
            target = int(n.get('target_connections') or 0)
            if target > 0:
                near.append('emqx_connections_count{job="emqx",host="%s"} > %d' % (n['host'], target * int(connections_percent) // 100))
        if near:
            rule('EMQXConnectionsNearTarget', ' or '.join(near),
                 '{{ $labels.node }} holds {{ $value }} connections, over %d%% of what it is sized for '
                 '(emq_node_target_connections)' % int(connections_percent), 'warning')
    lbs = [lb for lb in d.get('lbs', []) if lb.get('metrics')]
    if lbs:
        rule('LoadBalancerDown', 'up{job=~"haproxy|nginx"} == 0 or nginx_up{job="nginx"} == 0',
             'Load balancer {{ $labels.host }} ({{ $labels.job }}) does not answer')
    haproxy = [lb for lb in lbs if lb['kind'] == 'haproxy_lb']
    if haproxy:
        expected = []
        for lb in haproxy:
            servers = sum(len(names) for names in lb['servers'].values()) or len(lb['backend_list'])
            for backend in lb['backends']:
                expected.append('haproxy_backend_active_servers{job="haproxy",host="%s",proxy="%s"} < %d'
                                % (lb['host'], backend, servers))
        rule('LoadBalancerBackendDown', ' or '.join(expected),
             '{{ $labels.host }} backend {{ $labels.proxy }} has {{ $value }} servers up, not all of them')
    if any(e['type'] in ('mqtts', 'wss') for lb in d.get('lbs', []) for e in lb['endpoints']):
        rule('FrontDoorDown', 'probe_success{job="frontdoor"} == 0',
             'Devices cannot open TLS to {{ $labels.instance }} ({{ $labels.endpoint }} on {{ $labels.host }})')
        rule('CertificateExpiringSoon',
             'probe_ssl_earliest_cert_expiry{job="frontdoor"} - time() < %d' % (int(certificate_days) * 86400),
             'The certificate of {{ $labels.instance }} expires in less than %d days' % int(certificate_days), 'warning')
    # The annotations hold Prometheus's own {{ $labels... }} templates: never Jinja's.
    return wrap_var({'groups': [{'name': 'iothub-emq', 'rules': rules}]})


class FilterModule(object):
    def filters(self):
        return {'prometheus_scrape_configs': prometheus_scrape_configs, 'prometheus_alert_rules': prometheus_alert_rules,
                'prometheus_basic_auth_hosts': prometheus_basic_auth_hosts, 'prometheus_password_file': prometheus_password_file}
