#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


DOCUMENTATION = r"""
module: emq_port_check
short_description: Check from a host that MQTT, TLS and WebSocket endpoints answer as expected
version_added: 0.1.0
description:
  - Connects, from the host the task runs on (a managed node, or the controller with C(delegate_to)),
    to each endpoint of O(endpoints) and checks that it is open or closed as expected.
  - For C(tls), C(mqtts) and C(wss) it reports the negotiated TLS version and cipher and the server
    certificate (subject, issuer, subject alternative names, expiry), and whether the certificate verifies
    against a given CA and name.
  - For C(mqtt), C(mqtts), C(ws) and C(wss) it sends an MQTT CONNECT and reports the CONNACK return code
    (MQTT 3.1.1) or reason code (MQTT 5), with its name. C(ws) and C(wss) first upgrade to a WebSocket
    with subprotocol C(mqtt).
  - It never changes anything. It fails when an expectation is not met, with one line per failed
    endpoint in RV(msg), and still returns the results of every endpoint.
  - Uses only the Python standard library on the host it runs on.
author:
  - iothub.emq maintainers (@iothub)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - The module only reads; it runs the same checks in check mode.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
options:
  endpoints:
    description:
      - The endpoints to check, in order.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - A label for messages and results. Defaults to C(<type>://<host>:<port>).
        type: str
      host:
        description:
          - Host name or IP address to connect to.
        type: str
        required: true
      port:
        description:
          - TCP port.
        type: int
        required: true
      type:
        description:
          - V(tcp) only connects.
          - V(tls) connects and completes a TLS handshake.
          - V(mqtt) sends an MQTT CONNECT over plain TCP; V(mqtts) does so over TLS.
          - V(ws) upgrades to a WebSocket at O(endpoints[].path) and, unless O(endpoints[].mqtt_connect=false),
            sends an MQTT CONNECT over it; V(wss) does the same over TLS.
        type: str
        choices: [tcp, tls, mqtt, mqtts, ws, wss]
        default: tcp
      state:
        description:
          - V(open) expects the port to accept a connection and the protocol checks to pass.
          - V(closed) expects the TCP connection to fail (refused or timed out); no protocol check runs.
        type: str
        choices: [open, closed]
        default: open
      timeout:
        description:
          - Seconds for the connection and for each read. Defaults to O(timeout).
        type: float
      server_name:
        description:
          - Name sent as TLS SNI and checked against the certificate. Defaults to O(endpoints[].host).
        type: str
      ca_path:
        description:
          - PEM file with the CA certificates to verify the server certificate against.
          - Without it, the system CA store of the host is used.
        type: path
      validate_certs:
        description:
          - Whether to verify the server certificate against O(endpoints[].ca_path) and
            O(endpoints[].server_name). A certificate that does not verify is a failed expectation.
          - With V(false) no verification is made and RV(results[].tls.verified) is V(null).
        type: bool
        default: true
        aliases: [verify]
      client_cert:
        description:
          - PEM client certificate for listeners that require one (mutual TLS).
        type: path
      client_key:
        description:
          - PEM private key of O(endpoints[].client_cert), when it is not in the same file.
        type: path
      min_days_to_expiry:
        description:
          - Fail when the server certificate expires in fewer days than this.
        type: int
      warn_days_to_expiry:
        description:
          - Warn (the endpoint still passes) when the server certificate expires in fewer days than this, so that it is
            renewed before O(endpoints[].min_days_to_expiry) or the clients refuse it. RV(expiring_endpoints) lists them.
        type: int
        version_added: 0.3.0
      username:
        description:
          - MQTT user name sent in the CONNECT.
        type: str
      password:
        description:
          - MQTT password sent in the CONNECT. With O(endpoints[].protocol_version=4) it needs
            O(endpoints[].username).
        type: str
      client_id:
        description:
          - MQTT client identifier. Defaults to a random C(emq-port-check-...) so no real client is kicked out.
        type: str
      protocol_version:
        description:
          - MQTT protocol level, V(4) for MQTT 3.1.1 or V(5) for MQTT 5.
        type: int
        choices: [4, 5]
        default: 4
      expect_rc:
        description:
          - The CONNACK return code (MQTT 3.1.1) or reason code (MQTT 5) expected, for example V(0) for an
            accepted connection, V(5) (MQTT 3.1.1) or V(135) (MQTT 5) for a listener that must refuse
            anonymous clients.
        type: int
        default: 0
      path:
        description:
          - HTTP path of the WebSocket endpoint, for V(ws) and V(wss).
        type: str
        default: /mqtt
      mqtt_connect:
        description:
          - For V(ws) and V(wss), whether to send an MQTT CONNECT after the WebSocket upgrade.
            With V(false) only the upgrade (HTTP 101 with subprotocol C(mqtt)) is checked.
        type: bool
        default: true
  timeout:
    description:
      - Default of O(endpoints[].timeout), in seconds.
    type: float
    default: 5
notes:
  - The checks run from the host of the task. To test what clients see, run it on the controller or on a
    client host (C(delegate_to)); to test what cluster peers see, run it on the peers.
  - A port that is filtered (no answer) counts as closed once O(endpoints[].timeout) passes.
  - "Certificate details without verification: C(ssl.getpeercert()) returns nothing for a certificate that was
    not verified, so the module decodes the DER certificate itself, with the C(cryptography) library when it is
    installed on the host, else with the private C(ssl._ssl._test_decode_cert) function of the standard library
    (through a temporary PEM file). RV(results[].tls.decoder) tells which one was used; when neither works the
    details are V(null) and O(endpoints[].min_days_to_expiry) fails."
  - When verification fails the module connects a second time without verification, to still report the
    certificate and the MQTT result.
  - A successful MQTT check connects with a clean session and disconnects at once; it shows up in the
    broker log as a short client connection.
seealso:
  - module: iothub.emq.emq_cluster_join
    description: Join EMQX nodes into a cluster once their ports are reachable.
  - module: ansible.builtin.wait_for
    description: Wait until a port opens, or check a port without protocol checks.
  - name: MQTT 5 CONNACK reason codes
    description: The meaning of each reason code.
    link: https://docs.oasis-open.org/mqtt/mqtt/v5.0/os/mqtt-v5.0-os.html#_Toc3901079
"""

EXAMPLES = r"""
- name: Check the listeners of every EMQX node from the load balancer
  iothub.emq.emq_port_check:
    endpoints:
      - host: "{{ item }}"
        port: 1883
        type: mqtt
      - host: "{{ item }}"
        port: 8083
        type: ws
      - host: "{{ item }}"
        port: 18083
  loop: "{{ groups['emq_nodes'] }}"

- name: Check the TLS front end as clients see it, from the controller
  iothub.emq.emq_port_check:
    endpoints:
      - host: mqtt.example.com
        port: 8883
        type: mqtts
        ca_path: files/ca.pem
        min_days_to_expiry: 30
        username: probe
        password: "{{ vault_probe_password }}"
        protocol_version: 5
      - host: mqtt.example.com
        port: 8084
        type: wss
        path: /mqtt
        ca_path: files/ca.pem
  delegate_to: localhost
  register: emq_front

- name: Show the certificate expiry
  ansible.builtin.debug:
    msg: "{{ emq_front.results[0].tls.not_after }} ({{ emq_front.results[0].tls.days_to_expiry }} days)"

- name: Anonymous clients must be refused, and the dashboard must not be reachable from outside
  iothub.emq.emq_port_check:
    endpoints:
      - host: mqtt.example.com
        port: 1883
        type: mqtt
        expect_rc: 5
      - host: mqtt.example.com
        port: 18083
        state: closed
        timeout: 2
  delegate_to: localhost

- name: Check that this node reaches its peers on the Erlang distribution and RPC ports
  iothub.emq.emq_port_check:
    endpoints:
      - host: "{{ item }}"
        port: 4370
      - host: "{{ item }}"
        port: 5370
  loop: "{{ groups['emq_nodes'] | difference([inventory_hostname]) }}"
"""

RETURN = r"""
msg:
  description: A summary; when an expectation failed, one line per failed endpoint.
  returned: always
  type: str
  sample: "1 of 3 endpoints failed:\nmqtts://mqtt.example.com:8883: the certificate expires in 12 days (2026-06-01T00:00:00Z), fewer than the 30 required"
failed_endpoints:
  description: Names of the endpoints whose expectations were not met.
  returned: always
  type: list
  elements: str
  sample: ["mqtts://mqtt.example.com:8883"]
expiring_endpoints:
  description: Names of the endpoints whose certificate expires in fewer days than their O(endpoints[].warn_days_to_expiry).
  returned: always
  type: list
  elements: str
  sample: ["mqtts://mqtt.example.com:8883"]
  version_added: 0.3.0
results:
  description: One entry per endpoint, in the order of O(endpoints).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The label of the endpoint.
      returned: always
      type: str
      sample: mqtt://10.0.0.1:1883
    host:
      description: The host as given.
      returned: always
      type: str
      sample: 10.0.0.1
    port:
      description: The port.
      returned: always
      type: int
      sample: 1883
    type:
      description: The check type.
      returned: always
      type: str
      sample: mqtt
    state:
      description: The expected state.
      returned: always
      type: str
      sample: open
    reachable:
      description: Whether the TCP connection succeeded.
      returned: always
      type: bool
      sample: true
    address:
      description: The IP address connected to.
      returned: when reachable
      type: str
      sample: 10.0.0.1
    ok:
      description: Whether every expectation of the endpoint was met.
      returned: always
      type: bool
      sample: true
    error:
      description: Why the connection or a protocol step failed; V(null) when nothing failed.
        For O(endpoints[].state=closed) it tells how the connection failed (for example C(connection refused)).
      returned: always
      type: str
      sample: connection refused
    failures:
      description: The expectations that were not met, one sentence each.
      returned: always
      type: list
      elements: str
      sample: []
    elapsed:
      description: Seconds the check took.
      returned: always
      type: float
      sample: 0.012
    tls:
      description: The TLS session, for V(tls), V(mqtts) and V(wss) endpoints that were reached; else V(null).
      returned: always
      type: dict
      contains:
        version:
          description: Negotiated protocol version.
          type: str
          returned: after a handshake
          sample: TLSv1.3
        cipher:
          description: Negotiated cipher suite.
          type: str
          returned: after a handshake
          sample: TLS_AES_256_GCM_SHA384
        cipher_bits:
          description: Secret bits of the cipher.
          type: int
          returned: after a handshake
          sample: 256
        server_name:
          description: The name sent as SNI and verified.
          type: str
          returned: always
          sample: mqtt.example.com
        verified:
          description: Whether the certificate verified against the CA and the name; V(null) when
            O(endpoints[].validate_certs=false).
          type: bool
          returned: always
          sample: true
        verify_error:
          description: Why verification failed, as OpenSSL says it.
          type: str
          returned: always
          sample: "Hostname mismatch, certificate is not valid for 'mqtt.example.com'."
        subject:
          description: Certificate subject, RFC 4514 style (most specific first).
          type: str
          returned: after a handshake
          sample: CN=mqtt.example.com,O=Example
        issuer:
          description: Certificate issuer, RFC 4514 style.
          type: str
          returned: after a handshake
          sample: CN=Example CA,O=Example
        subject_alt_names:
          description: Subject alternative names, as C(DNS:name) and C(IP:address).
          type: list
          elements: str
          returned: after a handshake
          sample: ["DNS:mqtt.example.com", "IP:10.0.0.10"]
        serial_number:
          description: Serial number in hexadecimal.
          type: str
          returned: after a handshake
          sample: 1A2B3C
        not_before:
          description: Start of validity, UTC, ISO 8601.
          type: str
          returned: after a handshake
          sample: "2026-01-01T00:00:00Z"
        not_after:
          description: End of validity, UTC, ISO 8601.
          type: str
          returned: after a handshake
          sample: "2027-01-01T00:00:00Z"
        days_to_expiry:
          description: Whole days until RV(results[].tls.not_after); negative when expired.
          type: int
          returned: after a handshake
          sample: 210
        decoder:
          description: How the certificate was decoded, V(cryptography), V(ssl) (standard library) or
            V(getpeercert); V(null) when it could not be decoded.
          type: str
          returned: after a handshake
          sample: cryptography
    websocket:
      description: The WebSocket upgrade, for V(ws) and V(wss) endpoints that were reached; else V(null).
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
    mqtt:
      description: The MQTT connection, when a CONNACK was received; else V(null).
      returned: always
      type: dict
      contains:
        protocol_version:
          description: MQTT protocol level used (4 or 5).
          type: int
          returned: always
          sample: 4
        client_id:
          description: Client identifier sent.
          type: str
          returned: always
          sample: emq-port-check-3f2a1b0c9d8e
        return_code:
          description: CONNACK return code (MQTT 3.1.1) or reason code (MQTT 5).
          type: int
          returned: always
          sample: 0
        return_code_name:
          description: The name of RV(results[].mqtt.return_code) in the MQTT specification.
          type: str
          returned: always
          sample: Connection Accepted
        session_present:
          description: The session present flag of the CONNACK.
          type: bool
          returned: always
          sample: false
        properties:
          description: MQTT 5 CONNACK properties (for example C(reason_string), C(assigned_client_identifier)).
          type: dict
          returned: always
          sample: {"maximum_qos": 2, "retain_available": 1}
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.iothub.emq.plugins.module_utils.port_probe import TLS_TYPES, probe


ENDPOINT_SPEC = dict(
    name=dict(type='str'),
    host=dict(type='str', required=True),
    port=dict(type='int', required=True),
    type=dict(type='str', default='tcp', choices=['tcp', 'tls', 'mqtt', 'mqtts', 'ws', 'wss']),
    state=dict(type='str', default='open', choices=['open', 'closed']),
    timeout=dict(type='float'),
    server_name=dict(type='str'),
    ca_path=dict(type='path'),
    validate_certs=dict(type='bool', default=True, aliases=['verify']),
    client_cert=dict(type='path'),
    client_key=dict(type='path', no_log=False),
    min_days_to_expiry=dict(type='int'),
    warn_days_to_expiry=dict(type='int'),
    username=dict(type='str'),
    password=dict(type='str', no_log=True),
    client_id=dict(type='str'),
    protocol_version=dict(type='int', default=4, choices=[4, 5]),
    expect_rc=dict(type='int', default=0),
    path=dict(type='str', default='/mqtt'),
    mqtt_connect=dict(type='bool', default=True),
)


def _label(ep):
    return ep.get('name') or '{0}://{1}:{2}'.format(ep['type'], ep['host'], ep['port'])


def validate(module, endpoints, timeout):
    problems = []
    if timeout <= 0:
        problems.append('timeout must be more than 0 seconds')
    for index, ep in enumerate(endpoints):
        where = 'endpoints[{0}] ({1})'.format(index, _label(ep))
        if not 0 < ep['port'] < 65536:
            problems.append('{0}: port must be between 1 and 65535'.format(where))
        if ep['timeout'] is not None and ep['timeout'] <= 0:
            problems.append('{0}: timeout must be more than 0 seconds'.format(where))
        for option in ('ca_path', 'client_cert', 'client_key'):
            if ep[option] and not os.path.isfile(ep[option]):
                problems.append('{0}: {1} {2} is not a file on this host'.format(where, option, ep[option]))
        if ep['client_key'] and not ep['client_cert']:
            problems.append('{0}: client_key needs client_cert'.format(where))
        if ep['password'] is not None and ep['username'] is None and ep['protocol_version'] == 4:
            problems.append('{0}: MQTT 3.1.1 does not allow a password without a username; set username, '
                            'or protocol_version: 5'.format(where))
        if not (ep['path'] or '').startswith('/'):
            problems.append('{0}: path must start with /'.format(where))
        if ep['type'] not in TLS_TYPES and (ep['min_days_to_expiry'] is not None or ep['warn_days_to_expiry'] is not None
                                            or ep['client_cert']):
            problems.append('{0}: min_days_to_expiry, warn_days_to_expiry and client_cert need type tls, mqtts or wss'.format(where))
    if problems:
        module.fail_json(msg='Invalid endpoints: ' + '; '.join(problems) + '.')


def main():
    module = AnsibleModule(
        argument_spec=dict(
            endpoints=dict(type='list', elements='dict', required=True, options=ENDPOINT_SPEC),
            timeout=dict(type='float', default=5.0),
        ),
        supports_check_mode=True,
    )
    endpoints = module.params['endpoints']
    timeout = module.params['timeout']
    validate(module, endpoints, timeout)

    results = [probe(ep, default_timeout=timeout) for ep in endpoints]
    failed = [r for r in results if not r['ok']]
    failed_names = [r['name'] for r in failed]
    expiring = []
    for ep, r in zip(endpoints, results):
        days = (r.get('tls') or {}).get('days_to_expiry')
        if ep.get('warn_days_to_expiry') is not None and days is not None and days < ep['warn_days_to_expiry']:
            expiring.append(r['name'])
            module.warn('{0}: the certificate expires in {1} days ({2}), fewer than the {3} of warn_days_to_expiry: renew '
                        'it (a new certificate file and a run of the load balancer role reload it without dropping '
                        'connections)'.format(r['name'], days, r['tls']['not_after'], ep['warn_days_to_expiry']))

    if failed:
        lines = ['{0}: {1}'.format(r['name'], '; '.join(r['failures'])) for r in failed]
        msg = '{0} of {1} endpoints failed:\n{2}'.format(len(failed), len(results), '\n'.join(lines))
        module.fail_json(msg=msg, changed=False, results=results, failed_endpoints=failed_names, expiring_endpoints=expiring)
    module.exit_json(changed=False, msg='All {0} endpoints met their expectations.'.format(len(results)),
                     results=results, failed_endpoints=failed_names, expiring_endpoints=expiring)


if __name__ == '__main__':
    main()
