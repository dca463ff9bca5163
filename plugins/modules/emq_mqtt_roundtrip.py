#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


DOCUMENTATION = r"""
module: emq_mqtt_roundtrip
short_description: Prove that an MQTT message published through one endpoint arrives through another
version_added: 0.1.0
description:
  - Connects an MQTT subscriber to endpoint A (O(subscriber)) and subscribes to O(topic), connects an
    MQTT publisher to endpoint B (O(publisher), by default the same endpoint as A), publishes O(payload)
    at QoS O(qos), and waits up to O(timeout) seconds for the message to arrive at the subscriber.
  - With A and B on two load balancers of one EMQX cluster, this proves that both load balancers reach
    the cluster and that the cluster routes messages between the nodes behind them.
  - Each endpoint is reached over plain TCP, TLS, WebSocket or secure WebSocket (O(subscriber.transport)),
    with the TLS version and the CONNACK codes reported for both.
  - Fails when a step does not succeed, with one sentence that names the step (RV(failed_step)) -
    C(connect A), C(subscribe), C(connect B), C(publish) or C(receive) - and says why.
  - Uses only the Python standard library on the host it runs on (usually the controller with
    C(delegate_to), or a load balancer).
author:
  - iothub.emq maintainers (@iothub)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - The module changes nothing on any host, so it runs the same round trip in check mode, and reports
        a real result there too. The only trace it leaves is two short client sessions and one message on
        its own topic in the broker.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
options:
  subscriber:
    description:
      - Endpoint A, where the subscriber connects, subscribes to O(topic) and waits for the message.
    type: dict
    required: true
    suboptions:
      host:
        description:
          - Host name or IP address to connect to.
        type: str
        required: true
      port:
        description:
          - TCP port. Defaults to the standard port of O(subscriber.transport) - V(1883) for V(tcp), V(8883) for
            V(tls), V(8083) for V(ws) and V(8084) for V(wss).
        type: int
      transport:
        description:
          - V(tcp) speaks MQTT over plain TCP, V(tls) over TLS.
          - V(ws) speaks MQTT over a WebSocket at O(subscriber.path) (subprotocol C(mqtt)), V(wss) over a
            secure WebSocket.
        type: str
        choices: [tcp, tls, ws, wss]
        default: tls
      path:
        description:
          - HTTP path of the WebSocket endpoint, for V(ws) and V(wss).
        type: str
        default: /mqtt
      server_name:
        description:
          - Name sent as TLS SNI and checked against the certificate. Defaults to O(subscriber.host).
        type: str
      ca_path:
        description:
          - PEM file with the CA certificates to verify the server certificate against.
          - Without it, the system CA store of the host is used.
        type: path
      validate_certs:
        description:
          - Whether to verify the server certificate against O(subscriber.ca_path) and O(subscriber.server_name).
            A certificate that does not verify fails the step C(connect A).
        type: bool
        default: true
        aliases: [verify]
      client_cert:
        description:
          - PEM client certificate for listeners that require one (mutual TLS).
        type: path
      client_key:
        description:
          - PEM private key of O(subscriber.client_cert), when it is not in the same file.
        type: path
      username:
        description:
          - MQTT user name sent in the CONNECT.
        type: str
      password:
        description:
          - MQTT password sent in the CONNECT. With O(protocol_version=4) it needs O(subscriber.username).
        type: str
      client_id:
        description:
          - MQTT client identifier of the subscriber. Defaults to a random C(emq-roundtrip-sub-...), so no real
            client is kicked out.
        type: str
  publisher:
    description:
      - Endpoint B, where the publisher connects and publishes the message.
      - Every suboption that is not set takes the value of the same suboption of O(subscriber), except
        O(publisher.client_id) (always a different client) and O(publisher.port) when O(publisher.transport)
        differs from the subscriber's (then the standard port of O(publisher.transport)).
      - Omit it to publish through endpoint A as well.
    type: dict
    suboptions:
      host:
        description:
          - Host name or IP address to connect to.
        type: str
      port:
        description:
          - TCP port.
        type: int
      transport:
        description:
          - V(tcp), V(tls), V(ws) or V(wss), as O(subscriber.transport).
        type: str
        choices: [tcp, tls, ws, wss]
      path:
        description:
          - HTTP path of the WebSocket endpoint, for V(ws) and V(wss).
        type: str
      server_name:
        description:
          - Name sent as TLS SNI and checked against the certificate. Defaults to O(publisher.host) when
            O(publisher.host) is set, else to the subscriber's server name.
        type: str
      ca_path:
        description:
          - PEM file with the CA certificates to verify the server certificate against.
          - An empty string means the system CA store of the host, also when O(subscriber.ca_path) is set.
        type: path
      validate_certs:
        description:
          - Whether to verify the server certificate. A certificate that does not verify fails the step
            C(connect B).
        type: bool
        aliases: [verify]
      client_cert:
        description:
          - PEM client certificate (mutual TLS).
        type: path
      client_key:
        description:
          - PEM private key of O(publisher.client_cert), when it is not in the same file.
        type: path
      username:
        description:
          - MQTT user name sent in the CONNECT.
        type: str
      password:
        description:
          - MQTT password sent in the CONNECT.
        type: str
      client_id:
        description:
          - MQTT client identifier of the publisher. Defaults to a random C(emq-roundtrip-pub-...). It must
            differ from the subscriber's.
        type: str
  topic:
    description:
      - Topic to subscribe and publish to. No wildcards (C(+), C(#)).
      - Defaults to a new C(iothub-emq/verify/<random>) for each run, so an earlier or concurrent run never
        delivers a message that counts.
      - With EMQX authorization (ACLs) in place, both clients need the right to use this topic.
    type: str
  payload:
    description:
      - Message text. Defaults to a random C(iothub.emq roundtrip <random>).
      - Only a message with exactly this payload on O(topic) counts as received.
    type: str
  qos:
    description:
      - QoS of the subscription and of the message. With V(1) the publisher waits for the PUBACK and the
        subscriber acknowledges the message.
    type: int
    choices: [0, 1]
    default: 1
  protocol_version:
    description:
      - MQTT protocol level of both clients, V(4) for MQTT 3.1.1 or V(5) for MQTT 5.
    type: int
    choices: [4, 5]
    default: 4
  timeout:
    description:
      - Seconds to wait for the message at the subscriber after publishing it.
    type: float
    default: 10
  connect_timeout:
    description:
      - Seconds for each network step before the message is sent - TCP connection, TLS handshake, WebSocket
        upgrade, CONNACK, SUBACK - and for the PUBACK.
    type: float
    default: 5
notes:
  - The clients connect with a clean session (MQTT 5 - clean start and no session expiry), so the broker
    forgets the subscription when the module disconnects. The message is not retained.
  - Both clients run in the module's process, so RV(latency_ms) is measured on one clock, from just before
    the PUBLISH is sent to when the subscriber has read it. It includes the time through both load
    balancers and, when A and B lead to different nodes, the hop between the nodes.
  - A load balancer may send A and B to the same EMQX node. To prove routing between two given nodes, point
    O(subscriber) and O(publisher) at the nodes themselves (their listeners must not expect a PROXY header then).
  - Messages on O(topic) with another payload are acknowledged and ignored.
seealso:
  - module: iothub.emq.emq_port_check
    description: Check that endpoints are open or closed, their TLS certificates and CONNACK codes.
  - name: MQTT 5 reason codes
    description: The meaning of the CONNACK, SUBACK and PUBACK codes.
    link: https://docs.oasis-open.org/mqtt/mqtt/v5.0/os/mqtt-v5.0-os.html#_Toc3901031
"""

EXAMPLES = r"""
- name: Send a message through the first load balancer and receive it through the second
  iothub.emq.emq_mqtt_roundtrip:
    subscriber:
      host: lb-1.example.com
      port: 8883
      transport: tls
      ca_path: files/ca.pem
    publisher:
      host: lb-2.example.com
  delegate_to: localhost
  register: emq_roundtrip

- name: Show how long the message took
  ansible.builtin.debug:
    msg: "{{ emq_roundtrip.latency_ms }} ms, TLS {{ emq_roundtrip.subscriber.tls.version }}"

- name: Subscribe over secure WebSocket, publish over MQTT over TLS, with credentials and MQTT 5
  iothub.emq.emq_mqtt_roundtrip:
    subscriber:
      host: mqtt.example.com
      transport: wss
      path: /mqtt
      username: probe
      password: "{{ vault_probe_password }}"
    publisher:
      transport: tls
    protocol_version: 5
    topic: probes/roundtrip
    qos: 1
    timeout: 5
  delegate_to: localhost

- name: From a load balancer, prove that two EMQX nodes route messages to each other (plain TCP, no PROXY header)
  iothub.emq.emq_mqtt_roundtrip:
    subscriber:
      host: 10.0.0.11
      transport: tcp
    publisher:
      host: 10.0.0.12
    qos: 0
"""

RETURN = r"""
msg:
  description: What happened, in one sentence; when a step failed, which one and why.
  returned: always
  type: str
  sample: "Step 'receive' failed: the message published through tls://lb-2:8883 to iothub-emq/verify/3f2a1b0c9d8e was not
    received through tls://lb-1:8883 within 10 seconds."
received:
  description: Whether the subscriber received the message.
  returned: always
  type: bool
  sample: true
latency_ms:
  description: Milliseconds from sending the PUBLISH to reading it at the subscriber; V(null) when not received.
  returned: always
  type: float
  sample: 3.217
failed_step:
  description: The step that failed, V(connect A), V(subscribe), V(connect B), V(publish) or V(receive);
    V(null) on success.
  returned: always
  type: str
  sample: null
topic:
  description: The topic used.
  returned: always
  type: str
  sample: iothub-emq/verify/3f2a1b0c9d8e
payload:
  description: The message text sent.
  returned: always
  type: str
  sample: iothub.emq roundtrip 3f2a1b0c9d8e
qos:
  description: The QoS of the subscription and of the PUBLISH.
  returned: always
  type: int
  sample: 1
received_qos:
  description: The QoS the message arrived with (the lower of the PUBLISH and the granted subscription QoS);
    V(null) when not received.
  returned: always
  type: int
  sample: 1
protocol_version:
  description: The MQTT protocol level used (4 or 5).
  returned: always
  type: int
  sample: 4
subscriber:
  description: Endpoint A and what its subscriber saw. Keys are V(null) for the steps that were not reached.
  returned: always
  type: dict
  contains:
    endpoint:
      description: The endpoint, as C(<transport>://<host>:<port>), with the path for WebSockets.
      returned: always
      type: str
      sample: tls://lb-1.example.com:8883
    host:
      description: The host connected to.
      returned: always
      type: str
      sample: lb-1.example.com
    port:
      description: The port connected to.
      returned: always
      type: int
      sample: 8883
    transport:
      description: V(tcp), V(tls), V(ws) or V(wss).
      returned: always
      type: str
      sample: tls
    client_id:
      description: The MQTT client identifier used.
      returned: always
      type: str
      sample: emq-roundtrip-sub-3f2a1b0c9d8e
    address:
      description: The IP address connected to.
      returned: always
      type: str
      sample: 192.0.2.10
    tls:
      description: The TLS session, for V(tls) and V(wss) once the handshake succeeded; else V(null).
      returned: always
      type: dict
      contains:
        version:
          description: Negotiated protocol version.
          type: str
          returned: always
          sample: TLSv1.3
        cipher:
          description: Negotiated cipher suite.
          type: str
          returned: always
          sample: TLS_AES_256_GCM_SHA384
        cipher_bits:
          description: Secret bits of the cipher.
          type: int
          returned: always
          sample: 256
        server_name:
          description: The name sent as SNI and verified.
          type: str
          returned: always
          sample: lb-1.example.com
        verified:
          description: V(true) when the certificate was verified, V(null) with O(subscriber.validate_certs=false).
          type: bool
          returned: always
          sample: true
    websocket:
      description: The WebSocket upgrade, for V(ws) and V(wss) once it was answered; else V(null).
      returned: always
      type: dict
      contains:
        path:
          description: The HTTP path requested.
          type: str
          returned: always
          sample: /mqtt
        status:
          description: HTTP status of the upgrade answer (101 on success).
          type: int
          returned: always
          sample: 101
        subprotocol:
          description: The subprotocol the server selected.
          type: str
          returned: always
          sample: mqtt
    connack:
      description: The CONNACK, once received; else V(null).
      returned: always
      type: dict
      contains:
        return_code:
          description: CONNACK return code (MQTT 3.1.1) or reason code (MQTT 5); 0 means accepted.
          type: int
          returned: always
          sample: 0
        return_code_name:
          description: The name of RV(subscriber.connack.return_code) in the MQTT specification.
          type: str
          returned: always
          sample: Connection Accepted
        session_present:
          description: The session present flag.
          type: bool
          returned: always
          sample: false
        properties:
          description: MQTT 5 CONNACK properties.
          type: dict
          returned: always
          sample: {}
    suback:
      description: The SUBACK, once received; else V(null).
      returned: always
      type: dict
      contains:
        reason_code:
          description: SUBACK return code (MQTT 3.1.1) or reason code (MQTT 5); 0 to 2 is the granted QoS,
            128 and more a refusal.
          type: int
          returned: always
          sample: 1
        reason_code_name:
          description: Its name in the MQTT specification.
          type: str
          returned: always
          sample: Success - Maximum QoS 1
        granted_qos:
          description: The QoS granted, V(null) when the subscription was refused.
          type: int
          returned: always
          sample: 1
publisher:
  description: Endpoint B and what its publisher saw. Keys are V(null) for the steps that were not reached.
  returned: always
  type: dict
  contains:
    endpoint:
      description: The endpoint, as C(<transport>://<host>:<port>), with the path for WebSockets.
      returned: always
      type: str
      sample: tls://lb-2.example.com:8883
    host:
      description: The host connected to.
      returned: always
      type: str
      sample: lb-2.example.com
    port:
      description: The port connected to.
      returned: always
      type: int
      sample: 8883
    transport:
      description: V(tcp), V(tls), V(ws) or V(wss).
      returned: always
      type: str
      sample: tls
    client_id:
      description: The MQTT client identifier used.
      returned: always
      type: str
      sample: emq-roundtrip-pub-3f2a1b0c9d8e
    address:
      description: The IP address connected to.
      returned: always
      type: str
      sample: 192.0.2.11
    tls:
      description: The TLS session, as RV(subscriber.tls).
      returned: always
      type: dict
      sample: {"version": "TLSv1.3", "cipher": "TLS_AES_256_GCM_SHA384", "cipher_bits": 256,
               "server_name": "lb-2.example.com", "verified": true}
    websocket:
      description: The WebSocket upgrade, as RV(subscriber.websocket).
      returned: always
      type: dict
      sample: null
    connack:
      description: The CONNACK, as RV(subscriber.connack).
      returned: always
      type: dict
      sample: {"return_code": 0, "return_code_name": "Connection Accepted", "session_present": false, "properties": {}}
    puback:
      description: The PUBACK of a QoS 1 message, once received; V(null) for QoS 0 or before.
      returned: always
      type: dict
      contains:
        reason_code:
          description: 0 (MQTT 3.1.1, or MQTT 5 success), else the MQTT 5 reason code; 128 and more is a refusal.
          type: int
          returned: always
          sample: 0
        reason_code_name:
          description: Its name in the MQTT specification.
          type: str
          returned: always
          sample: Success
"""

import math
import os
import socket
import ssl
import time
import uuid

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.iothub.emq.plugins.module_utils.mqtt_wire import (
    MqttClient,
    WireError,
    WireTimeout,
)
from ansible_collections.iothub.emq.plugins.module_utils.port_probe import (
    ConnectError,
    describe_socket_error,
    open_stream,
)


DEFAULT_PORTS = dict(tcp=1883, tls=8883, ws=8083, wss=8084)
TRANSPORTS = ['tcp', 'tls', 'ws', 'wss']
TLS_TRANSPORTS = ('tls', 'wss')
WS_TRANSPORTS = ('ws', 'wss')
USER_AGENT = 'iothub.emq.emq_mqtt_roundtrip'


def _endpoint_spec(defaults):
    spec = dict(
        host=dict(type='str'),
        port=dict(type='int'),
        transport=dict(type='str', choices=TRANSPORTS),
        path=dict(type='str'),
        server_name=dict(type='str'),
        ca_path=dict(type='path'),
        validate_certs=dict(type='bool', aliases=['verify']),
        client_cert=dict(type='path'),
        client_key=dict(type='path', no_log=False),
        username=dict(type='str'),
        password=dict(type='str', no_log=True),
        client_id=dict(type='str'),
    )
    if defaults:
        spec['host']['required'] = True
        spec['transport']['default'] = 'tls'
        spec['path']['default'] = '/mqtt'
        spec['validate_certs']['default'] = True
    return spec


ARGUMENT_SPEC = dict(
    subscriber=dict(type='dict', required=True, options=_endpoint_spec(True)),
    publisher=dict(type='dict', options=_endpoint_spec(False)),
    topic=dict(type='str'),
    payload=dict(type='str'),
    qos=dict(type='int', default=1, choices=[0, 1]),
    protocol_version=dict(type='int', default=4, choices=[4, 5]),
    timeout=dict(type='float', default=10.0),
    connect_timeout=dict(type='float', default=5.0),
)


class StepFailed(Exception):
    def __init__(self, step, message):
        super(StepFailed, self).__init__(message)
        self.step = step


def resolve_endpoints(params, token):
    """The subscriber's and the publisher's endpoint dicts, with every default filled in."""
    sub = dict(params['subscriber'])
    if not sub.get('port'):
        sub['port'] = DEFAULT_PORTS[sub['transport']]
    sub['client_id'] = sub.get('client_id') or 'emq-roundtrip-sub-' + token
    given = params.get('publisher') or {}
    pub = {}
    for key, value in sub.items():
        pub[key] = given.get(key) if given.get(key) is not None else value
    pub['client_id'] = given.get('client_id') or 'emq-roundtrip-pub-' + token
    if given.get('port') is None and given.get('transport') not in (None, sub['transport']):
        pub['port'] = DEFAULT_PORTS[pub['transport']]
    if given.get('server_name') is None and given.get('host') is not None:
        pub['server_name'] = None  # the publisher's own host, not the subscriber's name
    for ep in (sub, pub):
        for option in ('ca_path', 'server_name', 'client_cert', 'client_key'):
            ep[option] = ep[option] or None  # '' = not set (for ca_path: the system CA store)
    return sub, pub


def label(ep):
    host = '[{0}]'.format(ep['host']) if ':' in ep['host'] else ep['host']
    text = '{0}://{1}:{2}'.format(ep['transport'], host, ep['port'])
    if ep['transport'] in WS_TRANSPORTS:
        text += ep['path']
    return text


def validate(module, sub, pub, params):
    problems = []
    for name in ('timeout', 'connect_timeout'):
        if params[name] <= 0:
            problems.append('{0} must be more than 0 seconds'.format(name))
    for role, ep in (('subscriber', sub), ('publisher', pub)):
        if not 0 < ep['port'] < 65536:
            problems.append('{0}: port must be between 1 and 65535'.format(role))
        for option in ('ca_path', 'client_cert', 'client_key'):
            if ep[option] and not os.path.isfile(ep[option]):
                problems.append('{0}: {1} {2} is not a file on this host'.format(role, option, ep[option]))
        if ep['client_key'] and not ep['client_cert']:
            problems.append('{0}: client_key needs client_cert'.format(role))
        if ep['client_cert'] and ep['transport'] not in TLS_TRANSPORTS:
            problems.append('{0}: client_cert needs transport tls or wss'.format(role))
        if ep['password'] is not None and ep['username'] is None and params['protocol_version'] == 4:
            problems.append('{0}: MQTT 3.1.1 does not allow a password without a username; set username, '
                            'or protocol_version: 5'.format(role))
        if not (ep['path'] or '').startswith('/'):
            problems.append('{0}: path must start with /'.format(role))
    if sub['client_id'] == pub['client_id']:
        problems.append('the subscriber and the publisher need different client ids (the broker would '
                        'disconnect one when the other connects)')
    topic = params['topic']
    if topic is not None:
        if not topic:
            problems.append('topic must not be empty')
        elif '+' in topic or '#' in topic or '\x00' in topic:
            problems.append('topic must not contain the wildcards + or #, or a NUL character')
        elif len(topic.encode('utf-8')) > 65535:
            problems.append('topic is longer than 65535 bytes')
    if problems:
        module.fail_json(msg='Invalid arguments: ' + '; '.join(problems) + '.')


def _sentence(detail):
    return str(detail).strip().rstrip('.')


def _endpoint_result(ep):
    return dict(endpoint=label(ep), host=ep['host'], port=ep['port'], transport=ep['transport'],
                client_id=ep['client_id'], address=None, tls=None, websocket=None, connack=None)


def connect_client(step, role, ep, res, params, keepalive):
    """Open the connection and send CONNECT; returns an MqttClient or raises StepFailed."""
    where = label(ep)
    timeout = params['connect_timeout']
    try:
        stream, info = open_stream(
            ep['host'], ep['port'], ep['transport'], timeout=timeout, path=ep['path'],
            server_name=ep['server_name'], ca_path=ep['ca_path'], validate_certs=ep['validate_certs'],
            client_cert=ep['client_cert'], client_key=ep['client_key'], user_agent=USER_AGENT)
    except ConnectError as exc:
        res.update(exc.info)
        raise StepFailed(step, 'the {0} could not connect to {1}: {2}'.format(role, where, _sentence(exc)))
    res.update(info)
    client = MqttClient(stream, params['protocol_version'])
    try:
        connack = client.connect(ep['client_id'], ep['username'], ep['password'], keepalive,
                                 deadline=time.monotonic() + timeout)
    except WireTimeout:
        client.disconnect()
        raise StepFailed(step, 'the {0} got no CONNACK from {1} within {2:g} seconds'.format(role, where, timeout))
    except (WireError, OSError, socket.error) as exc:
        client.disconnect()
        raise StepFailed(step, 'the {0} could not connect to {1}: {2}'.format(role, where, _detail(exc, timeout)))
    res['connack'] = dict((k, connack[k]) for k in ('return_code', 'return_code_name', 'session_present',
                                                    'properties'))
    if connack['return_code'] != 0:
        client.disconnect()
        raise StepFailed(step, '{0} refused the {1}: CONNACK {2} ({3})'.format(
            where, role, connack['return_code'], connack['return_code_name']))
    return client


def _detail(exc, timeout):
    if isinstance(exc, WireError):
        return _sentence(exc)
    if isinstance(exc, ssl.SSLError):
        return _sentence(getattr(exc, 'reason', None) or exc)
    return _sentence(describe_socket_error(exc, timeout))


def roundtrip(params, sub, pub, result, warnings):
    """Run the five steps; fills result; raises StepFailed at the first step that fails."""
    timeout = params['timeout']
    connect_timeout = params['connect_timeout']
    qos = params['qos']
    topic = result['topic']
    payload = result['payload']
    keepalive = int(min(65535, max(60, math.ceil(2 * (timeout + 4 * connect_timeout)))))
    a, b = label(sub), label(pub)
    subscriber = publisher = None
    try:
        subscriber = connect_client('connect A', 'subscriber', sub, result['subscriber'], params, keepalive)

        try:
            suback = subscriber.subscribe(topic, qos, time.monotonic() + connect_timeout)
        except WireTimeout:
            raise StepFailed('subscribe', 'no SUBACK from {0} for {1} within {2:g} seconds'.format(
                a, topic, connect_timeout))
        except (WireError, OSError, socket.error) as exc:
            raise StepFailed('subscribe', 'the subscription to {0} through {1} failed: {2}'.format(
                topic, a, _detail(exc, connect_timeout)))
        code = suback['reason_codes'][0]
        result['subscriber']['suback'] = dict(reason_code=code, reason_code_name=suback['reason_code_names'][0],
                                              granted_qos=code if code < 0x80 else None)
        if code >= 0x80:
            raise StepFailed('subscribe', '{0} refused the subscription to {1}: SUBACK {2} ({3})'.format(
                a, topic, code, suback['reason_code_names'][0]))

        publisher = connect_client('connect B', 'publisher', pub, result['publisher'], params, keepalive)

        sent = time.monotonic()
        try:
            packet_id = publisher.publish(topic, payload, qos)
        except (OSError, socket.error, WireError) as exc:
            raise StepFailed('publish', 'the message to {0} could not be sent through {1}: {2}'.format(
                topic, b, _detail(exc, connect_timeout)))

        message = None
        receive_error = None
        try:
            message = subscriber.wait_message(topic, payload, sent + timeout)
        except WireTimeout:
            pass
        except (WireError, OSError, socket.error) as exc:
            receive_error = _detail(exc, timeout)
        if message is not None:
            result['received'] = True
            result['received_qos'] = message['qos']
            result['latency_ms'] = round((message['arrived'] - sent) * 1000.0, 3)

        puback_problem = None
        if qos:
            try:
                puback = publisher.wait_puback(packet_id, max(sent + connect_timeout, time.monotonic() + 0.05))
            except WireTimeout:
                puback_problem = 'no PUBACK from {0} within {1:g} seconds'.format(b, connect_timeout)
            except (WireError, OSError, socket.error) as exc:
                puback_problem = 'the publisher\'s connection to {0} failed before the PUBACK: {1}'.format(
                    b, _detail(exc, connect_timeout))
            else:
                result['publisher']['puback'] = dict(reason_code=puback['reason_code'],
                                                     reason_code_name=puback['reason_code_name'])
                if puback['reason_code'] >= 0x80:
                    puback_problem = '{0} refused the message to {1}: PUBACK {2} ({3})'.format(
                        b, topic, puback['reason_code'], puback['reason_code_name'])

        if message is not None:
            if puback_problem:
                warnings.append('The message was received, but ' + puback_problem + '.')
            return
        if puback_problem:
            raise StepFailed('publish', puback_problem)
        text = 'the message published through {0} to {1} was not received through {2} within {3:g} seconds'.format(
            b, topic, a, timeout)
        if receive_error:
            text += ': the subscriber\'s connection failed: {0}'.format(receive_error)
        puback = result['publisher']['puback']
        if puback and puback['reason_code']:
            text += ' ({0} answered PUBACK {1}, {2})'.format(b, puback['reason_code'], puback['reason_code_name'])
        raise StepFailed('receive', text)
    finally:
        for client in (publisher, subscriber):
            if client is not None:
                client.disconnect()


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    token = uuid.uuid4().hex[:12]
    sub, pub = resolve_endpoints(params, token)
    validate(module, sub, pub, params)

    result = dict(
        changed=False,
        received=False,
        latency_ms=None,
        failed_step=None,
        topic=params['topic'] or 'iothub-emq/verify/' + token,
        payload=params['payload'] if params['payload'] is not None else 'iothub.emq roundtrip ' + token,
        qos=params['qos'],
        received_qos=None,
        protocol_version=params['protocol_version'],
        subscriber=_endpoint_result(sub),
        publisher=_endpoint_result(pub),
    )
    result['subscriber']['suback'] = None
    result['publisher']['puback'] = None

    warnings = []
    try:
        roundtrip(params, sub, pub, result, warnings)
    except StepFailed as exc:
        result['failed_step'] = exc.step
        module.fail_json(msg="Step '{0}' failed: {1}.".format(exc.step, exc), **result)
    for warning in warnings:
        module.warn(warning)
    result['msg'] = 'The message published through {0} was received through {1} after {2:g} ms (topic {3}, QoS {4}).'.format(
        label(pub), label(sub), result['latency_ms'], result['topic'], result['received_qos'])
    module.exit_json(**result)


if __name__ == '__main__':
    main()
