# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import base64

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.iothub.emq.plugins.filter.aws_nlb import (
    aws_nlb_listeners,
    aws_nlb_plan,
    aws_nlb_problems,
    aws_nlb_resources,
    aws_nlb_subnet_problems,
    certificate_differs,
)

SUBNETS = ['subnet-0a1b2c3d4e5f60718', 'subnet-0f1e2d3c4b5a69788']
FOUND = [
    {'subnet_id': SUBNETS[0], 'vpc_id': 'vpc-1', 'availability_zone': 'eu-west-1a', 'cidr_block': '10.20.1.0/24'},
    {'subnet_id': SUBNETS[1], 'vpc_id': 'vpc-1', 'availability_zone': 'eu-west-1b', 'cidr_block': '10.20.2.0/24'},
]
LISTENERS = {'tcp': {'enabled': True, 'port': 1883}, 'ws': {'enabled': True, 'port': 8083},
             'ssl': {'enabled': False, 'port': 8883}, 'wss': {'enabled': False, 'port': 8084}}


def node(host, address, proxy=True, **listeners):
    return {'host': host, 'address': address, 'mqtt_port': 1883, 'ws_port': 8083, 'dashboard_port': 18083,
            'listeners': dict(LISTENERS, **listeners), 'proxy_protocol': {'tcp': proxy, 'ws': proxy, 'ssl': False, 'wss': False}}


def inputs(**overrides):
    base = {
        'inventory_hostname': 'nlb-1', 'aws_nlb_state': 'present', 'aws_nlb_region': 'eu-west-1', 'aws_nlb_name': 'emqx-front',
        'aws_nlb_subnets': list(SUBNETS), 'aws_nlb_scheme': 'internet-facing', 'aws_nlb_certificate_arn': '',
        'aws_nlb_certificate_file': '/inv/tls/server.pem', 'aws_nlb_private_key_file': '/inv/tls/server.key',
        'aws_nlb_certificate_chain_file': '', 'aws_nlb_proxy_protocol': True, 'aws_nlb_mqtts_port': 8883, 'aws_nlb_wss_port': 8084,
        'aws_nlb_check_port': 18083, 'aws_nlb_check_path': '/status', 'aws_nlb_node_group': 'emq_nodes', 'aws_nlb_allowed_cidrs': [],
        'aws_nlb_endpoint_url': '', 'aws_nlb_ssl_policy': 'ELBSecurityPolicy-TLS13-1-2-2021-06', 'aws_nlb_check_interval': 10,
        'aws_nlb_healthy_threshold': 3, 'aws_nlb_unhealthy_threshold': 3, 'aws_nlb_deregistration_delay': 30,
        'nodes': [node('emqx-1', '10.20.1.11'), node('emqx-2', '10.20.2.12')],
        'files_found': {'/inv/tls/server.pem': True, '/inv/tls/server.key': True},
    }
    base.update(overrides)
    return base


def one(problems, *words):
    joined = ' | '.join(problems)
    for word in words:
        assert word in joined, joined
    return joined


def test_valid_inputs_have_no_problem():
    assert aws_nlb_problems(inputs()) == []
    assert aws_nlb_problems(inputs(aws_nlb_certificate_file='', aws_nlb_private_key_file='',
                                   aws_nlb_certificate_arn='arn:aws:acm:eu-west-1:123456789012:certificate/0f0e-11')) == []


@pytest.mark.parametrize('overrides, words', [
    ({'aws_nlb_region': ''}, ('aws_nlb_region is not set', 'eu-west-1')),
    ({'aws_nlb_region': 'Europe'}, ('aws_nlb_region is "Europe"', 'describe-regions')),
    ({'aws_nlb_subnets': []}, ('aws_nlb_subnets is empty', 'one per availability zone')),
    ({'aws_nlb_subnets': ['subnet-xyz']}, ('subnet-xyz', 'not a subnet ID')),
    ({'aws_nlb_subnets': [SUBNETS[0], SUBNETS[0]]}, ('names a subnet twice',)),
    ({'aws_nlb_certificate_file': '', 'aws_nlb_private_key_file': ''}, ('No certificate', 'aws_nlb_certificate_arn', 'imports')),
    ({'aws_nlb_private_key_file': ''}, ('go together', 'set aws_nlb_private_key_file')),
    ({'files_found': {'/inv/tls/server.pem': False, '/inv/tls/server.key': True}},
     ('aws_nlb_certificate_file is /inv/tls/server.pem', 'not a file on the controller')),
    ({'aws_nlb_certificate_arn': 'arn:aws:acm:eu-west-1:123456789012:certificate/1'}, ('not both',)),
    ({'aws_nlb_certificate_arn': 'my-cert', 'aws_nlb_certificate_file': '', 'aws_nlb_private_key_file': ''}, ('not an ACM certificate ARN',)),
    ({'aws_nlb_certificate_arn': 'arn:aws:acm:us-east-1:123456789012:certificate/1', 'aws_nlb_certificate_file': '',
      'aws_nlb_private_key_file': ''}, ('region us-east-1', 'aws_nlb_region eu-west-1')),
    ({'aws_nlb_name': 'emqx_front'}, ('aws_nlb_name is "emqx_front"', 'letters, digits and hyphens')),
    ({'aws_nlb_name': 'x' * 28}, ('1 to 27',)),
    ({'aws_nlb_mqtts_port': 8084}, ('both 8084',)),
    ({'aws_nlb_allowed_cidrs': ['0.0.0.0/0']}, ('0.0.0.0/0', 'whole internet')),
    ({'aws_nlb_allowed_cidrs': ['10.0.0.0/33']}, ('10.0.0.0/33', 'not an IPv4 network')),
    ({'aws_nlb_state': 'gone'}, ('present or absent',)),
    ({'aws_nlb_endpoint_url': 'localhost:5000'}, ('aws_nlb_endpoint_url',)),
    ({'nodes': []}, ('no target', 'emq_nodes')),
    ({'nodes': [node('emqx-1', 'emqx-1.internal')]}, ('emqx-1', 'not an IPv4 address')),
])
def test_each_bad_input_is_named_with_its_fix(overrides, words):
    one(aws_nlb_problems(inputs(**overrides)), *words)


def test_proxy_protocol_on_the_nlb_but_off_on_a_node():
    text = one(aws_nlb_problems(inputs(nodes=[node('emqx-1', '10.20.1.11'), node('emqx-2', '10.20.2.12', proxy=False)])),
               'aws_nlb_proxy_protocol is true', 'emqx-2 (tcp listener: proxy_protocol = false)',
               'emqx-2 (ws listener: proxy_protocol = false)', 'emq_node_proxy_protocol: true', 'aws_nlb_proxy_protocol: false')
    assert 'emqx-1' not in text


def test_proxy_protocol_off_on_the_nlb_but_on_the_nodes():
    one(aws_nlb_problems(inputs(aws_nlb_proxy_protocol=False)), 'aws_nlb_proxy_protocol is false',
        'emqx-1 (tcp listener: proxy_protocol = true)', 'proxy_protocol_timeout', 'aws_nlb_proxy_protocol: true',
        'emq_node_proxy_protocol: false')
    assert aws_nlb_problems(inputs(aws_nlb_proxy_protocol=False, nodes=[node('emqx-1', '10.20.1.11', proxy=False)])) == []


def test_health_checks_on_a_proxy_listener_are_refused():
    one(aws_nlb_problems(inputs(aws_nlb_check_port=1883)), 'aws_nlb_check_port=1883', 'emqx-1 (tcp listener, port 1883)', '18083')


def test_a_listener_that_is_off_is_named():
    one(aws_nlb_problems(inputs(nodes=[node('emqx-1', '10.20.1.11', ws={'enabled': False, 'port': 8083})])),
        'emqx-1: its EMQX ws listener is off')


def test_absent_needs_only_region_and_name():
    assert aws_nlb_problems(inputs(aws_nlb_state='absent', aws_nlb_subnets=[], aws_nlb_certificate_file='',
                                   aws_nlb_private_key_file='', nodes=[])) == []


def test_every_problem_at_once():
    problems = aws_nlb_problems(inputs(aws_nlb_region='', aws_nlb_subnets=[], aws_nlb_certificate_file='', aws_nlb_private_key_file=''))
    assert len(problems) == 3


def test_a_missing_input_is_a_mistake_of_the_task():
    data = inputs()
    del data['nodes']
    with pytest.raises(AnsibleFilterError, match='no nodes'):
        aws_nlb_problems(data)


def test_subnets_aws_returned():
    assert aws_nlb_subnet_problems(FOUND, SUBNETS) == []
    one(aws_nlb_subnet_problems(FOUND[:1], SUBNETS), SUBNETS[1], 'region does not have')
    one(aws_nlb_subnet_problems([FOUND[0], dict(FOUND[1], vpc_id='vpc-2')], SUBNETS), 'several VPCs', 'vpc-1, vpc-2')
    one(aws_nlb_subnet_problems([FOUND[0], dict(FOUND[1], availability_zone='eu-west-1a')], SUBNETS), 'two subnets in eu-west-1a')


def test_resources_from_the_nodes_and_subnets():
    r = aws_nlb_resources(inputs(), FOUND)
    assert r['names'] == {'nlb': 'emqx-front', 'mqtt': 'emqx-front-mqtt', 'ws': 'emqx-front-ws',
                          'security_group': 'emqx-front-emqx-nodes', 'certificate': 'emqx-front-tls'}
    assert r['vpc_id'] == 'vpc-1'
    mqtt, ws = r['target_groups']
    assert (mqtt['name'], mqtt['port'], mqtt['protocol'], mqtt['target_type'], mqtt['proxy_protocol_v2']) == ('emqx-front-mqtt', 1883, 'TCP', 'ip', True)
    assert mqtt['targets'] == [{'Id': '10.20.1.11', 'Port': 1883}, {'Id': '10.20.2.12', 'Port': 1883}]
    assert ws['port'] == 8083 and mqtt['health_check']['port'] == '18083' and mqtt['health_check']['path'] == '/status'
    assert r['listeners'] == [{'port': 8883, 'protocol': 'TLS', 'target_group': 'emqx-front-mqtt'},
                              {'port': 8084, 'protocol': 'TLS', 'target_group': 'emqx-front-ws'}]
    assert sorted((x['from_port'], x['cidr_ip']) for x in r['security_group_rules']) == [
        (p, c) for p in (1883, 8083, 18083) for c in ('10.20.1.0/24', '10.20.2.0/24')]


def test_allowed_cidrs_replace_the_subnets():
    r = aws_nlb_resources(inputs(aws_nlb_allowed_cidrs=['10.20.0.0/16']), FOUND)
    assert sorted(set(x['cidr_ip'] for x in r['security_group_rules'])) == ['10.20.0.0/16']


def test_listeners_as_elb_network_lb_takes_them():
    r = aws_nlb_resources(inputs(), FOUND)
    arn = 'arn:aws:acm:eu-west-1:123456789012:certificate/abc'
    mqtt, ws = aws_nlb_listeners(r, arn)
    assert mqtt == {'Protocol': 'TLS', 'Port': 8883, 'SslPolicy': r['ssl_policy'], 'Certificates': [{'CertificateArn': arn}],
                    'DefaultActions': [{'Type': 'forward', 'TargetGroupName': 'emqx-front-mqtt'}]}
    assert (ws['Port'], ws['DefaultActions'][0]['TargetGroupName']) == (8084, 'emqx-front-ws')
    with pytest.raises(AnsibleFilterError, match='no certificate ARN'):
        aws_nlb_listeners(r, '')


def test_nodes_on_different_ports_cannot_share_a_target_group():
    other = node('emqx-2', '10.20.2.12')
    other['mqtt_port'] = 1884
    with pytest.raises(AnsibleFilterError, match='different ports'):
        aws_nlb_resources(inputs(nodes=[node('emqx-1', '10.20.1.11'), other]), FOUND)


def pem(*ders):
    return ''.join('-----BEGIN CERTIFICATE-----\n%s\n-----END CERTIFICATE-----\n' % base64.b64encode(d).decode() for d in ders)


def test_certificate_comparison_takes_moto_extra_chain_certificate():
    leaf, ca, extra = b'leaf-der', b'ca-der', b'moto-der'
    assert certificate_differs(None, pem(leaf), pem(ca))
    assert not certificate_differs({'certificate': pem(leaf), 'certificate_chain': pem(ca, extra)}, pem(leaf), pem(ca))
    assert certificate_differs({'certificate': pem(leaf), 'certificate_chain': pem(extra)}, pem(leaf), pem(ca))
    assert certificate_differs({'certificate': pem(b'other'), 'certificate_chain': pem(ca)}, pem(leaf), pem(ca))


def built(r, cert_arn='arn:cert'):
    """What the *_info modules return once the role built r."""
    tgs = [dict(target_group_name=tg['name'], target_group_arn='arn:' + tg['name'], port=tg['port'], protocol='TCP', target_type='ip',
                health_check_protocol='HTTP', health_check_port='18083', health_check_path='/status', health_check_interval_seconds=10,
                healthy_threshold_count=3, unhealthy_threshold_count=3, proxy_protocol_v2_enabled='true',
                preserve_client_ip_enabled='false', deregistration_delay_timeout_seconds='30',
                targets_health_description=[{'target': {'id': t['Id'], 'port': t['Port']}} for t in tg['targets']])
           for tg in r['target_groups']]
    lb = dict(load_balancer_name='emqx-front', scheme='internet-facing', dns_name='emqx-front.elb',
              availability_zones=[{'subnet_id': s} for s in SUBNETS],
              listeners=[dict(port=li['port'], protocol='TLS', ssl_policy='ELBSecurityPolicy-TLS13-1-2-2021-06',
                              certificates=[{'certificate_arn': cert_arn}],
                              default_actions=[{'target_group_arn': 'arn:' + li['target_group']}]) for li in r['listeners']])
    perms = [dict(ip_protocol='tcp', from_port=p, to_port=p, ip_ranges=[{'cidr_ip': c} for c in ('10.20.1.0/24', '10.20.2.0/24')])
             for p in (1883, 8083, 18083)]
    sg = dict(group_name='emqx-front-emqx-nodes', group_id='sg-1', ip_permissions=perms)
    return dict(load_balancers=[lb], target_groups=tgs, security_groups=[sg],
                certificates=[dict(certificate_arn=cert_arn, certificate=pem(b'leaf'), certificate_chain=pem(b'ca', b'moto'))])


def test_plan_of_a_fresh_account_creates_everything():
    r = aws_nlb_resources(inputs(), FOUND)
    plan = aws_nlb_plan(r, {}, certificate=pem(b'leaf'), chain=pem(b'ca'), scheme='internet-facing')
    assert plan['todo'] == {'certificate': True, 'security_group': True, 'target_groups': {'mqtt': True, 'ws': True}, 'nlb': True}
    one(plan['changes'], 'import the certificate emqx-front-tls', 'create the target group emqx-front-mqtt', 'create the security group',
        'create the network load balancer emqx-front')


def test_plan_of_what_was_built_changes_nothing():
    r = aws_nlb_resources(inputs(), FOUND)
    plan = aws_nlb_plan(r, built(r), certificate=pem(b'leaf'), chain=pem(b'ca'), scheme='internet-facing')
    assert plan['changes'] == []
    assert plan['todo'] == {'certificate': False, 'security_group': False, 'target_groups': {'mqtt': False, 'ws': False}, 'nlb': False}
    assert plan['certificate_arn'] == 'arn:cert'


def test_plan_sees_drift():
    r = aws_nlb_resources(inputs(), FOUND)
    current = built(r)
    current['target_groups'][0]['proxy_protocol_v2_enabled'] = 'false'
    current['target_groups'][1]['targets_health_description'].append({'target': {'id': '10.20.9.9', 'port': 8083}})
    current['security_groups'][0]['ip_permissions'].append(dict(ip_protocol='tcp', from_port=22, to_port=22, ip_ranges=[{'cidr_ip': '0.0.0.0/0'}]))
    current['load_balancers'][0]['listeners'][1]['protocol'] = 'TCP'
    plan = aws_nlb_plan(r, current, certificate=pem(b'leaf'), chain=pem(b'ca'), scheme='internet-facing')
    one(plan['changes'], 'turn PROXY protocol v2 on on emqx-front-mqtt', 'deregister 10.20.9.9:8083 from emqx-front-ws',
        'close tcp 22-22 from 0.0.0.0/0', 'change the listener 8084 of emqx-front to TLS')
    assert plan['todo'] == {'certificate': False, 'security_group': True, 'target_groups': {'mqtt': True, 'ws': True}, 'nlb': True}


def test_a_new_certificate_updates_the_listeners():
    r = aws_nlb_resources(inputs(), FOUND)
    plan = aws_nlb_plan(r, built(r), certificate=pem(b'renewed'), chain=pem(b'ca'), scheme='internet-facing')
    assert plan['todo']['certificate'] and plan['todo']['nlb']
    one(plan['changes'], 'import again (it differs)')


def test_a_given_arn_is_used_and_never_deleted():
    r = aws_nlb_resources(inputs(), FOUND)
    current = built(r, cert_arn='arn:given')
    current['certificates'] = []
    plan = aws_nlb_plan(r, current, certificate_arn='arn:given', scheme='internet-facing')
    assert plan['changes'] == [] and plan['certificate_arn'] == 'arn:given'
    gone = aws_nlb_plan(r, current, state='absent', certificate_arn='arn:given')
    assert not gone['todo']['certificate']


def test_plan_to_remove_lists_what_exists():
    r = aws_nlb_resources(inputs(aws_nlb_state='absent', nodes=[]), [])
    current = built(aws_nlb_resources(inputs(), FOUND))
    plan = aws_nlb_plan(r, current, state='absent')
    assert plan['todo'] == {'certificate': True, 'security_group': True, 'nlb': True, 'target_groups': {'mqtt': True, 'ws': True}}
    assert plan['exists']['security_group_id'] == 'sg-1'
    assert aws_nlb_plan(r, {}, state='absent')['changes'] == []
