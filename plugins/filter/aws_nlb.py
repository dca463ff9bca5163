# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the aws_nlb role checks, builds and compares, as pure functions its unit tests call directly.

aws_nlb_problems: every problem with one aws_nlb host's inputs, before any AWS call (region, subnets,
certificate, names, ports, the PROXY protocol pairing with the nodes both ways).
aws_nlb_subnet_problems: what is wrong with the subnets AWS returned (missing, several VPCs, one zone twice).
aws_nlb_resources: the AWS resources the role asks for (names, target groups and their targets, listeners,
the nodes' security group rules) from the inputs and the nodes the inventory describes.
aws_nlb_plan: what would change, from those resources and what the *_info modules read (check mode tells it,
and the certificate is imported only when it is missing or differs: see certificate_differs).
No function here ever returns the private key: it is never an input.
"""

from __future__ import annotations

import base64
import binascii
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

STATES = ('present', 'absent')
SCHEMES = ('internet-facing', 'internal')
# An AWS region such as eu-west-1, us-gov-west-1, cn-north-1, ap-southeast-3.
REGION = re.compile(r'^[a-z]{2}(-[a-z]+)+-[0-9]+$')
SUBNET = re.compile(r'^subnet-[0-9a-f]{8,17}$')
CERT_ARN = re.compile(r'^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/[0-9a-fA-F-]+$')
# Load balancer and target group names: 1-32 letters, digits and hyphens, no hyphen at either end. The role
# appends at most 5 characters (-mqtt), so the name it starts from has at most 27.
NAME = re.compile(r'^[A-Za-z0-9](?:[A-Za-z0-9-]{0,25}[A-Za-z0-9])?$')
NAME_MAX = 27
PEM_BLOCK = re.compile(r'-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----', re.S)
# The EMQX listeners the load balancer forwards to: device listener type -> (port key of the node, TLS port input).
FORWARDS = (('tcp', 'mqtt_port', 'aws_nlb_mqtts_port', 'mqtt'), ('ws', 'ws_port', 'aws_nlb_wss_port', 'ws'))

INPUTS = (
    'inventory_hostname', 'aws_nlb_state', 'aws_nlb_region', 'aws_nlb_name', 'aws_nlb_subnets', 'aws_nlb_scheme',
    'aws_nlb_certificate_arn', 'aws_nlb_certificate_file', 'aws_nlb_private_key_file', 'aws_nlb_certificate_chain_file',
    'aws_nlb_proxy_protocol', 'aws_nlb_mqtts_port', 'aws_nlb_wss_port', 'aws_nlb_check_port', 'aws_nlb_check_path',
    'aws_nlb_node_group', 'aws_nlb_allowed_cidrs', 'aws_nlb_endpoint_url', 'aws_nlb_ssl_policy', 'aws_nlb_check_interval',
    'aws_nlb_healthy_threshold', 'aws_nlb_unhealthy_threshold', 'aws_nlb_deregistration_delay',
    # the nodes of iothub.emq.emq_deployment (load_balancers=false), and which certificate files exist on the controller
    'nodes', 'files_found',
)


def _text(value):
    return '' if value is None else str(value)


def _port(value):
    try:
        port = int(value)
    except (TypeError, ValueError):
        return 0
    return port if 0 < port < 65536 else 0


def _flag(value):
    return boolean(value, strict=False)


def _check_inputs(inputs, keys):
    if not isinstance(inputs, dict):
        raise AnsibleFilterError('aws_nlb: expects a dictionary of inputs, got %r' % (type(inputs).__name__,))
    missing = [key for key in keys if key not in inputs]
    if missing:
        raise AnsibleFilterError('aws_nlb: the task hands over no %s' % ', '.join(missing))


def _subnets(value):
    if isinstance(value, str):
        value = [item for item in re.split(r'[,\s]+', value) if item]
    return [_text(item).strip() for item in value or []]


def _cidr_problem(value):
    """Why value is not an IPv4 network such as 10.0.0.0/16 ('' when it is one)."""
    match = re.match(r'^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})/([0-9]{1,2})$', _text(value))
    if not match or any(int(part) > 255 for part in match.groups()[:4]) or int(match.group(5)) > 32:
        return 'not an IPv4 network like 10.0.0.0/16'
    if int(match.group(5)) == 0:
        return 'the whole internet: the nodes would take MQTT from anyone'
    return ''


def certificate_problems(v):
    """The certificate: an ACM ARN, or a certificate and key (and chain) on the controller to import."""
    keys = ('aws_nlb_certificate_arn', 'aws_nlb_certificate_file', 'aws_nlb_private_key_file', 'aws_nlb_certificate_chain_file')
    arn, cert, key, chain = (_text(v[k]).strip() for k in keys)
    found = v.get('files_found') or {}
    if arn and (cert or key):
        return ['aws_nlb_certificate_arn is set and so are aws_nlb_certificate_file / aws_nlb_private_key_file: the listeners take one '
                'certificate. Keep aws_nlb_certificate_arn (a certificate already in ACM) or the files (the role imports them into '
                'ACM), not both.']
    if arn:
        if not CERT_ARN.match(arn):
            return ['aws_nlb_certificate_arn is "%s", not an ACM certificate ARN. Write it as '
                    'arn:aws:acm:<region>:<account>:certificate/<id> (aws acm list-certificates shows it).' % arn]
        region = _text(v['aws_nlb_region'])
        arn_region = arn.split(':')[3]
        if region and arn_region != region:
            return ['aws_nlb_certificate_arn is a certificate of region %s, but the load balancer is in aws_nlb_region %s: '
                    'a listener takes a certificate of its own region only. Import it into %s, or set aws_nlb_region: %s.'
                    % (arn_region, region, region, arn_region)]
        return []
    if not cert and not key:
        return ['No certificate for the TLS listeners: set aws_nlb_certificate_arn to a certificate in ACM, or '
                'aws_nlb_certificate_file and aws_nlb_private_key_file to PEM files on the controller (and '
                'aws_nlb_certificate_chain_file when it is signed by an intermediate CA), which the role imports into ACM.']
    out = []
    if not cert or not key:
        out.append('aws_nlb_certificate_file and aws_nlb_private_key_file go together: set %s too (a PEM file on the controller).'
                   % ('aws_nlb_certificate_file' if not cert else 'aws_nlb_private_key_file'))
    for name, path in (('aws_nlb_certificate_file', cert), ('aws_nlb_private_key_file', key), ('aws_nlb_certificate_chain_file', chain)):
        if path and not found.get(path):
            out.append('%s is %s, which is not a file on the controller: give the path of the PEM file.' % (name, path))
    return out


def proxy_problems(v):
    """The PROXY protocol pairing, both ways, and the health check port that must not wait for a PROXY header."""
    nlb = _flag(v['aws_nlb_proxy_protocol'])
    out, wrong, check_on_proxy = [], [], []
    check_port = _port(v['aws_nlb_check_port'])
    for node in v['nodes'] or []:
        proxy = node.get('proxy_protocol') or {}
        listeners = node.get('listeners') or {}
        for kind in ('tcp', 'ws'):
            listener = listeners.get(kind) or {}
            if not listener.get('enabled', True):
                out.append('%s: its EMQX %s listener is off (emq_node_listeners.%s.enable), but the load balancer forwards to it. '
                           'Turn it on for that node.' % (node['host'], kind, kind))
            elif bool(proxy.get(kind)) != nlb:
                wrong.append('%s (%s listener: proxy_protocol = %s)' % (node['host'], kind, str(bool(proxy.get(kind))).lower()))
        for kind, on in sorted(proxy.items()):
            if on and (listeners.get(kind) or {}).get('port') == check_port:
                check_on_proxy.append('%s (%s listener, port %d)' % (node['host'], kind, check_port))
    if wrong and nlb:
        out.append('aws_nlb_proxy_protocol is true: the target groups send a PROXY protocol v2 header on every connection, but '
                   'these EMQX listeners do not expect one: %s. EMQX would close every connection from the load balancer. Write '
                   'emq_node_proxy_protocol: true for those nodes (emq_node\'s default when the inventory has an aws_nlb group), '
                   'or aws_nlb_proxy_protocol: false (EMQX then sees the load balancer\'s addresses, not the devices\').' % ', '.join(wrong))
    elif wrong:
        out.append('aws_nlb_proxy_protocol is false: the target groups send no PROXY protocol header, but these EMQX listeners '
                   'wait for one: %s. EMQX would drop every connection after proxy_protocol_timeout. Write '
                   'aws_nlb_proxy_protocol: true (recommended: EMQX then sees each device\'s address), or '
                   'emq_node_proxy_protocol: false for those nodes.' % ', '.join(wrong))
    if check_on_proxy:
        out.append('aws_nlb_check_port=%d is a listener of the EMQX nodes that waits for a PROXY protocol header: %s. The '
                   'health check (HTTP GET %s) sends none, so every node would be marked unhealthy. Write aws_nlb_check_port: '
                   '18083, the nodes\' dashboard port, where EMQX answers /status.'
                   % (check_port, ', '.join(check_on_proxy), _text(v['aws_nlb_check_path'])))
    return out


def aws_nlb_problems(inputs):
    """One sentence per problem with the inputs of one aws_nlb host; empty when they are fine. No AWS call is needed."""
    _check_inputs(inputs, INPUTS)
    v = inputs
    out = []
    state = _text(v['aws_nlb_state'])
    if state not in STATES:
        out.append('aws_nlb_state must be present or absent (got "%s").' % state)
    region = _text(v['aws_nlb_region']).strip()
    if not region:
        out.append('aws_nlb_region is not set: write the AWS region of the load balancer, e.g. aws_nlb_region: eu-west-1.')
    elif not REGION.match(region):
        out.append('aws_nlb_region is "%s", not an AWS region: write one like eu-west-1 (aws ec2 describe-regions lists them).' % region)
    name = _text(v['aws_nlb_name'])
    if not NAME.match(name):
        out.append('aws_nlb_name is "%s": it names the load balancer, its target groups (<name>-mqtt, <name>-ws) and the nodes\' '
                   'security group, so it must be 1 to %d letters, digits and hyphens, with no hyphen at either end '
                   '(the inventory host name is the default).' % (name, NAME_MAX))
    endpoint = _text(v['aws_nlb_endpoint_url'])
    if endpoint and not re.match(r'^https?://[^\s/]+', endpoint):
        out.append('aws_nlb_endpoint_url is "%s": leave it empty for AWS itself, or write an http(s) URL (an emulator such as moto).'
                   % endpoint)
    if state == 'absent':
        return out

    subnets = _subnets(v['aws_nlb_subnets'])
    if not subnets:
        out.append('aws_nlb_subnets is empty: list the IDs of the subnets the load balancer serves from, one per availability '
                   'zone, in the nodes\' VPC (e.g. [subnet-0a1b2c3d4e5f60718, subnet-0f1e2d3c4b5a69788]).')
    else:
        bad = [s for s in subnets if not SUBNET.match(s)]
        if bad:
            out.append('aws_nlb_subnets has %s, which %s not a subnet ID: write IDs like subnet-0a1b2c3d4e5f60718.'
                       % (', '.join(bad) or '""', 'is' if len(bad) == 1 else 'are'))
        if len(set(subnets)) != len(subnets):
            out.append('aws_nlb_subnets names a subnet twice: list each subnet once.')
    if _text(v['aws_nlb_scheme']) not in SCHEMES:
        out.append('aws_nlb_scheme must be internet-facing or internal (got "%s").' % _text(v['aws_nlb_scheme']))
    for cidr in v['aws_nlb_allowed_cidrs'] or []:
        problem = _cidr_problem(cidr)
        if problem:
            out.append('aws_nlb_allowed_cidrs has %s: %s. List the networks the load balancer reaches the nodes from (empty: '
                       'its subnets\').' % (cidr, problem))
    if not _text(v['aws_nlb_ssl_policy']).startswith('ELBSecurityPolicy-'):
        out.append('aws_nlb_ssl_policy is "%s", not an ELB security policy: write one like ELBSecurityPolicy-TLS13-1-2-2021-06.'
                   % _text(v['aws_nlb_ssl_policy']))
    ports = dict((key, _port(v[key])) for key in ('aws_nlb_mqtts_port', 'aws_nlb_wss_port', 'aws_nlb_check_port'))
    for key, port in ports.items():
        if not port:
            out.append('%s must be a TCP port, 1 to 65535 (got %s).' % (key, v[key]))
    if ports['aws_nlb_mqtts_port'] and ports['aws_nlb_mqtts_port'] == ports['aws_nlb_wss_port']:
        out.append('aws_nlb_mqtts_port and aws_nlb_wss_port are both %d: each listener needs its own port (8883 and 8084).'
                   % ports['aws_nlb_mqtts_port'])
    if not _text(v['aws_nlb_check_path']).startswith('/'):
        out.append('aws_nlb_check_path must be an absolute path like /status (got "%s").' % _text(v['aws_nlb_check_path']))
    out.extend(certificate_problems(v))
    nodes = v['nodes'] or []
    if not nodes:
        out.append('The load balancer has no target: the inventory group %s (aws_nlb_node_group) has no hosts. Put the EMQX '
                   'nodes in it.' % _text(v['aws_nlb_node_group']))
    for node in nodes:
        if not re.match(r'^[0-9]{1,3}(\.[0-9]{1,3}){3}$', _text(node.get('address'))):
            out.append('%s: its address "%s" (emq_node_cluster_address, else ansible_host) is not an IPv4 address; the target '
                       'groups register the nodes by private IPv4 address.' % (node.get('host'), node.get('address')))
    out.extend(proxy_problems(v))
    return out


def aws_nlb_subnet_problems(found, asked):
    """What is wrong with the subnets ec2_vpc_subnet_info returned for aws_nlb_subnets (asked)."""
    found = found or []
    asked = _subnets(asked)
    ids = [s.get('subnet_id') for s in found]
    out = []
    missing = [s for s in asked if s not in ids]
    if missing:
        out.append('aws_nlb_subnets has %s, which the region does not have: check the IDs and aws_nlb_region.' % ', '.join(missing))
    vpcs = sorted(set(s.get('vpc_id') for s in found))
    if len(vpcs) > 1:
        out.append('aws_nlb_subnets are in several VPCs (%s): list subnets of the nodes\' VPC only.' % ', '.join(vpcs))
    zones = [s.get('availability_zone') for s in found]
    twice = sorted(set(z for z in zones if zones.count(z) > 1))
    if twice:
        out.append('aws_nlb_subnets has two subnets in %s: a load balancer takes one subnet per availability zone.' % ', '.join(twice))
    return out


def _names(name):
    return dict(nlb=name, mqtt=name + '-mqtt', ws=name + '-ws', security_group=name + '-emqx-nodes', certificate=name + '-tls')


def aws_nlb_resources(inputs, subnets=None):
    """The resources the role asks AWS for, from the inputs (as for aws_nlb_problems) and the subnets AWS returned."""
    _check_inputs(inputs, INPUTS)
    v = inputs
    subnets = subnets or []
    names = _names(_text(v['aws_nlb_name']))
    proxy = _flag(v['aws_nlb_proxy_protocol'])
    check_port, check_path = _port(v['aws_nlb_check_port']), _text(v['aws_nlb_check_path'])
    target_groups, listeners = [], []
    for kind, node_port, tls_port, short in FORWARDS:
        ports = sorted(set(int(node[node_port]) for node in v['nodes'] or []))
        if len(ports) > 1:
            raise AnsibleFilterError('aws_nlb: the nodes listen for %s on different ports (%s); a target group forwards to one port.'
                                     % (kind, ', '.join(str(p) for p in ports)))
        port = ports[0] if ports else 0
        target_groups.append(dict(
            key=short, name=names[short], port=port, protocol='TCP', target_type='ip', proxy_protocol_v2=proxy,
            health_check=dict(protocol='HTTP', port=str(check_port), path=check_path, interval=_text(v['aws_nlb_check_interval']),
                              healthy=_text(v['aws_nlb_healthy_threshold']), unhealthy=_text(v['aws_nlb_unhealthy_threshold'])),
            deregistration_delay=_text(v['aws_nlb_deregistration_delay']),
            targets=[dict(Id=_text(node['address']), Port=port) for node in v['nodes'] or []]))
        listeners.append(dict(port=_port(v[tls_port]), protocol='TLS', target_group=names[short]))
    cidrs = list(v['aws_nlb_allowed_cidrs'] or []) or sorted(set(s.get('cidr_block') for s in subnets if s.get('cidr_block')))
    rule_ports = sorted(set([tg['port'] for tg in target_groups] + [check_port]))
    rules = [dict(proto='tcp', from_port=port, to_port=port, cidr_ip=cidr,
                  rule_desc='%s: %s from the load balancer %s' % (names['nlb'], 'health check' if port == check_port
                                                                  else 'EMQX listener', names['nlb']))
             for port in rule_ports for cidr in cidrs]
    return dict(names=names, target_groups=target_groups, listeners=listeners, security_group_rules=rules,
                security_group_cidrs=cidrs, vpc_id=(subnets[0].get('vpc_id') if subnets else ''), ssl_policy=_text(v['aws_nlb_ssl_policy']),
                subnets=_subnets(v['aws_nlb_subnets']))


def aws_nlb_listeners(resources, certificate_arn):
    """The listeners of aws_nlb_resources as community.aws.elb_network_lb takes them: TLS with the certificate and the
    SSL policy, forwarding to the target group of the same kind."""
    arn = _text(certificate_arn)
    if not arn:
        raise AnsibleFilterError('aws_nlb_listeners: no certificate ARN for the TLS listeners.')
    return [dict(Protocol=listener['protocol'], Port=listener['port'], SslPolicy=resources['ssl_policy'],
                 Certificates=[dict(CertificateArn=arn)],
                 DefaultActions=[dict(Type='forward', TargetGroupName=listener['target_group'])])
            for listener in resources['listeners']]


def _der_list(pem):
    """The DER bytes of every certificate of a PEM text, in order."""
    out = []
    for block in PEM_BLOCK.findall(_text(pem)):
        try:
            out.append(base64.b64decode(''.join(block.split()), validate=True))
        except (binascii.Error, ValueError):
            raise AnsibleFilterError('aws_nlb: a certificate in the PEM text is not valid base64') from None
    return out


def certificate_differs(current, certificate, chain):
    """Whether the certificate in ACM (current: acm_certificate_info's entry, or none) is not the one on the controller.

    The leaf must be the same certificate, and every certificate of the chain file must be in ACM's chain. ACM
    returns the chain as imported; moto's emulation adds a certificate of its own to it, so a chain is compared as
    "contains", not as "equals" (an exact comparison would import again on every run against moto).
    """
    if not current:
        return True
    mine = _der_list(certificate)
    theirs = _der_list(current.get('certificate'))
    if not mine or not theirs or mine[0] != theirs[0]:
        return True
    their_chain = _der_list(current.get('certificate_chain'))
    return any(der not in their_chain for der in _der_list(chain) + mine[1:])


def _by(items, key, value):
    return [item for item in items or [] if item.get(key) == value]


def _target_group_changes(tg, have):
    """What differs between a target group the role asks for and the one AWS has (none: it is missing)."""
    if have is None:
        return ['create the target group %s (TCP %d, PROXY protocol v2 %s, health check HTTP %s %s) with %d targets'
                % (tg['name'], tg['port'], 'on' if tg['proxy_protocol_v2'] else 'off', tg['health_check']['port'],
                   tg['health_check']['path'], len(tg['targets']))]
    out = []
    if (have.get('port'), _text(have.get('protocol')), _text(have.get('target_type'))) != (tg['port'], tg['protocol'], tg['target_type']):
        out.append('replace the target group %s: %s %s (targets by %s) instead of %s %s (%s)' % (
            tg['name'], tg['protocol'], tg['port'], tg['target_type'], have.get('protocol'), have.get('port'), have.get('target_type')))
    hc = tg['health_check']
    have_hc = dict(protocol=_text(have.get('health_check_protocol')).upper(), port=_text(have.get('health_check_port')),
                   path=_text(have.get('health_check_path')), interval=have.get('health_check_interval_seconds'),
                   healthy=have.get('healthy_threshold_count'), unhealthy=have.get('unhealthy_threshold_count'))
    for key in ('protocol', 'port', 'path', 'interval', 'healthy', 'unhealthy'):
        if key in hc and _text(have_hc[key]) != _text(hc[key]):
            out.append('change the health check %s of %s to %s (AWS has %s)' % (key, tg['name'], hc[key], have_hc[key]))
    attributes = (('proxy_protocol_v2_enabled', tg['proxy_protocol_v2'], 'PROXY protocol v2'),
                  ('preserve_client_ip_enabled', False, 'client IP preservation'))
    for key, want, what in attributes:
        if _flag(have.get(key, False)) != want:
            out.append('turn %s %s on %s' % (what, 'on' if want else 'off', tg['name']))
    if 'deregistration_delay' in tg and _text(have.get('deregistration_delay_timeout_seconds')) != _text(tg['deregistration_delay']):
        out.append('change the deregistration delay of %s to %s s' % (tg['name'], tg['deregistration_delay']))
    registered = set()
    for entry in have.get('targets_health_description') or []:
        target = entry.get('target') or {}
        registered.add((_text(target.get('id')), int(target.get('port') or 0)))
    wanted = set((t['Id'], t['Port']) for t in tg['targets'])
    out.extend('register %s:%d in %s' % (t[0], t[1], tg['name']) for t in sorted(wanted - registered))
    out.extend('deregister %s:%d from %s' % (t[0], t[1], tg['name']) for t in sorted(registered - wanted))
    return out


def _security_group_changes(resources, sg):
    names = resources['names']
    if sg is None:
        return ['create the security group %s for the nodes (TCP %s from %s)' % (
            names['security_group'], ', '.join(sorted(set(str(r['from_port']) for r in resources['security_group_rules']), key=int)),
            ', '.join(resources['security_group_cidrs']))]
    have_rules = set()
    for perm in sg.get('ip_permissions') or []:
        key = (_text(perm.get('ip_protocol')), perm.get('from_port'), perm.get('to_port'))
        have_rules.update(key + (_text(r.get('cidr_ip')),) for r in perm.get('ip_ranges') or [])
        have_rules.update(key + (_text(r.get('cidr_ipv6')),) for r in perm.get('ipv6_ranges') or [])
        have_rules.update(key + ('group ' + _text(r.get('group_id')),) for r in perm.get('user_id_group_pairs') or [])
        have_rules.update(key + ('prefix list ' + _text(r.get('prefix_list_id')),) for r in perm.get('prefix_list_ids') or [])
    want_rules = set((r['proto'], r['from_port'], r['to_port'], r['cidr_ip']) for r in resources['security_group_rules'])
    out = ['open TCP %s to %s in %s' % (r[1], r[3], names['security_group']) for r in sorted(want_rules - have_rules, key=str)]
    out.extend('close %s %s-%s from %s in %s' % (r[0], r[1], r[2], r[3], names['security_group'])
               for r in sorted(have_rules - want_rules, key=str))
    return out


def _nlb_changes(resources, nlb, groups, certificate_arn, scheme):
    names = resources['names']
    if nlb is None:
        return ['create the network load balancer %s with TLS listeners on %s' % (
            names['nlb'], ', '.join(str(listener['port']) for listener in resources['listeners']))]
    out = []
    if scheme and _text(nlb.get('scheme')) != scheme:
        out.append('replace the load balancer %s: %s instead of %s' % (names['nlb'], scheme, nlb.get('scheme')))
    have_listeners = dict((listener.get('port'), listener) for listener in nlb.get('listeners') or [])
    group_arns = dict((g['target_group_name'], g.get('target_group_arn')) for g in groups.values() if g)
    for listener in resources['listeners']:
        have = have_listeners.pop(listener['port'], None)
        if have is None:
            out.append('add the TLS listener %d of %s' % (listener['port'], names['nlb']))
            continue
        certs_have = [c.get('certificate_arn') for c in have.get('certificates') or []]
        actions = [a.get('target_group_arn') for a in have.get('default_actions') or []]
        if _text(have.get('protocol')) != 'TLS' or not certificate_arn or certs_have != [certificate_arn]:
            out.append('change the listener %d of %s to TLS with the certificate %s'
                       % (listener['port'], names['nlb'], certificate_arn or names['certificate']))
        if resources.get('ssl_policy') and _text(have.get('ssl_policy')) != resources['ssl_policy']:
            out.append('change the TLS policy of the listener %d of %s to %s' % (listener['port'], names['nlb'], resources['ssl_policy']))
        if actions != [group_arns.get(listener['target_group'])]:
            out.append('forward the listener %d of %s to %s' % (listener['port'], names['nlb'], listener['target_group']))
    out.extend('remove the listener %s of %s' % (port, names['nlb']) for port in sorted(have_listeners, key=str))
    have_subnets = sorted(_text(z.get('subnet_id')) for z in nlb.get('availability_zones') or [])
    if have_subnets != sorted(resources['subnets']):
        out.append('serve %s from the subnets %s' % (names['nlb'], ', '.join(sorted(resources['subnets']))))
    return out


def aws_nlb_plan(resources, current, state='present', certificate='', chain='', certificate_arn='', scheme=''):
    """What would change, resource by resource.

    Returns {changes: [sentences], todo: {certificate, security_group, target_groups: {mqtt, ws}, nlb}, certificate_arn,
    exists: {...}}: the role runs a resource's module only when its todo is true, so a run with nothing to change asks
    AWS only the reads. current holds what the *_info modules returned: load_balancers (elb_application_lb_info),
    target_groups (elb_target_group_info with targets), security_groups (ec2_security_group_info), certificates
    (acm_certificate_info for the role's name tag). certificate and chain are the PEM texts on the controller (empty
    with certificate_arn, an ARN the role does not manage).
    """
    names = resources['names']
    current = current or {}
    nlb = (_by(current.get('load_balancers'), 'load_balancer_name', names['nlb']) or [None])[0]
    groups = dict((tg['key'], (_by(current.get('target_groups'), 'target_group_name', tg['name']) or [None])[0])
                  for tg in resources['target_groups'])
    sg = (_by(current.get('security_groups'), 'group_name', names['security_group']) or [None])[0]
    certs = [c for c in current.get('certificates') or [] if c.get('status') != 'FAILED']
    cert = certs[0] if certs else None
    exists = dict(nlb=nlb is not None, security_group=sg is not None, certificate=cert is not None,
                  target_groups=dict((k, g is not None) for k, g in groups.items()),
                  security_group_id=(sg or {}).get('group_id', ''), dns_name=(nlb or {}).get('dns_name', ''))
    if state == 'absent':
        changes = ['delete the load balancer %s' % names['nlb']] if nlb else []
        changes.extend('delete the target group %s' % g['target_group_name'] for g in groups.values() if g)
        if sg:
            changes.append('delete the security group %s (%s)' % (names['security_group'], sg.get('group_id')))
        if cert and not certificate_arn:
            changes.append('delete the imported certificate %s' % names['certificate'])
        return dict(changes=changes, certificate_arn=certificate_arn, exists=exists,
                    todo=dict(certificate=bool(cert) and not certificate_arn, security_group=bool(sg), nlb=bool(nlb),
                              target_groups=dict((k, g is not None) for k, g in groups.items())))

    changes = []
    import_certificate = False
    arn = certificate_arn
    if not certificate_arn:
        import_certificate = certificate_differs(cert, certificate, chain)
        if import_certificate:
            changes.append('%s the certificate %s in ACM' % ('import' if cert is None else 'import again (it differs)', names['certificate']))
        arn = (cert or {}).get('certificate_arn', '')
    tg_changes = dict((tg['key'], _target_group_changes(tg, groups[tg['key']])) for tg in resources['target_groups'])
    for tg in resources['target_groups']:
        changes.extend(tg_changes[tg['key']])
    sg_changes = _security_group_changes(resources, sg)
    changes.extend(sg_changes)
    nlb_changes = _nlb_changes(resources, nlb, groups, arn if not import_certificate else '', scheme)
    changes.extend(nlb_changes)
    todo = dict(certificate=import_certificate, security_group=bool(sg_changes),
                target_groups=dict((k, bool(v)) for k, v in tg_changes.items()),
                # a new target group (new ARN) or a new certificate changes the listeners too
                nlb=bool(nlb_changes) or import_certificate or any(g is None for g in groups.values()))
    return dict(changes=changes, todo=todo, certificate_arn=arn, exists=exists)


class FilterModule(object):
    def filters(self):
        return {
            'aws_nlb_problems': aws_nlb_problems,
            'aws_nlb_subnet_problems': aws_nlb_subnet_problems,
            'aws_nlb_resources': aws_nlb_resources,
            'aws_nlb_plan': aws_nlb_plan,
            'aws_nlb_listeners': aws_nlb_listeners,
        }
