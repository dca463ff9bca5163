# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: lab_certificate
author: iothub.emq maintainers (@iothub)
version_added: 0.3.0
short_description: Whether a load balancer's lab CA, key and certificate on the controller are all as the roles make them
description:
  - Reads the lab CA (key and certificate) and one load balancer's lab key and certificate on the controller, and
    tells whether every one of them is already what the roles' lab certificate tasks would leave, so that those tasks
    (a dozen C(community.crypto) module runs per load balancer) can be skipped on a run that would change nothing.
  - Current means all of these hold. The four files exist with their modes (keys V(0600), certificates V(0644)). The
    CA key is an EC P-384 key, the server key an EC P-256 key. The CA certificate is the CA key's, self-signed, and
    valid now. The server certificate is the server key's and is signed by the CA. Its common name is O(common_name)
    and its subjectAltName entries are exactly O(sans), in any order. It stays valid for more than O(renew_days)
    days.
  - Anything else (a missing or unreadable file, another key, a name added, a certificate about to expire) gives
    RV(_raw[0].current) V(false) with the first reason found, and the roles run their tasks, which make or renew what
    is needed.
  - Runs on the controller and changes nothing. Needs the Python library C(cryptography), which C(community.crypto)
    needs too.
options:
  ca_key:
    description: Path of the lab CA's private key.
    type: path
    required: true
  ca_cert:
    description: Path of the lab CA's certificate.
    type: path
    required: true
  key:
    description: Path of the load balancer's private key.
    type: path
    required: true
  cert:
    description: Path of the load balancer's certificate.
    type: path
    required: true
  sans:
    description: The subjectAltName entries the certificate must carry, as C(DNS:name) or C(IP:address).
    type: list
    elements: str
    required: true
  common_name:
    description: The certificate's subject common name.
    type: str
    required: true
  renew_days:
    description: The certificate counts as current only when it is valid for more than this many days from now.
    type: int
    default: 30
"""

EXAMPLES = r"""
- name: Tell whether the lab certificate tasks would change anything
  ansible.builtin.set_fact:
    __lab: >-
      {{ lookup('iothub.emq.lab_certificate', ca_key=dir ~ '/ca.key', ca_cert=dir ~ '/ca.pem',
                key=dir ~ '/lb1.key', cert=dir ~ '/lb1.pem', sans=['DNS:lb1', 'IP:10.0.0.5'], common_name='lb1') }}
  vars:
    dir: "{{ inventory_dir }}/.lab-ca"
"""

RETURN = r"""
_raw:
  description: One element, a dictionary.
  type: list
  elements: dict
  contains:
    current:
      description: Whether every file is as the roles would leave it.
      type: bool
    reason:
      description: Why not, or an empty string.
      type: str
    subject_alt_name:
      description: The certificate's subjectAltName entries as C(DNS:name) / C(IP:address) (empty when it cannot be read).
      type: list
      elements: str
"""

import datetime
import os
import stat

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible_collections.iothub.emq.plugins.filter.tls_names import parse_sans

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - community.crypto needs it on the controller anyway
    HAS_CRYPTOGRAPHY = False

KEY_MODE = 0o600
CERT_MODE = 0o644
CURVES = {'ca_key': 'secp384r1', 'key': 'secp256r1'}


class NotCurrent(Exception):
    pass


def _mode(path, expected):
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        raise NotCurrent('%s does not exist' % path)
    if mode != expected:
        raise NotCurrent('%s has mode %04o, not %04o' % (path, mode, expected))


def _read(path):
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except OSError as exc:
        raise NotCurrent('%s cannot be read: %s' % (path, exc.strerror or exc))


def _key(path, curve):
    try:
        key = serialization.load_pem_private_key(_read(path), password=None)
    except (ValueError, TypeError) as exc:
        raise NotCurrent('%s is not an unencrypted PEM private key (%s)' % (path, exc))
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != curve:
        raise NotCurrent('%s is not an EC %s key' % (path, curve))
    return key


def _cert(path):
    try:
        return x509.load_pem_x509_certificate(_read(path))
    except ValueError as exc:
        raise NotCurrent('%s is not a PEM certificate (%s)' % (path, exc))


def _spki(public_key):
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _same_names(found, wanted):
    """Whether two subjectAltName lists name the same DNS names and addresses, in any order and however an
    address is written (iothub.emq.tls_name_problems's reading of the entries)."""
    found_dns, found_ips = parse_sans(found)
    wanted_dns, wanted_ips = parse_sans(wanted)
    return set(found_dns) == set(wanted_dns) and set(found_ips) == set(wanted_ips)


def subject_alt_names(cert):
    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names = ['DNS:' + name for name in extension.get_values_for_type(x509.DNSName)]
    names += ['IP:' + str(address) for address in extension.get_values_for_type(x509.IPAddress)]
    return names


def check(ca_key, ca_cert, key, cert, sans, common_name, renew_days, now=None):
    """{'current': bool, 'reason': str, 'subject_alt_name': [...]} for the four files."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    found = []
    try:
        for path, mode in ((ca_key, KEY_MODE), (ca_cert, CERT_MODE), (key, KEY_MODE), (cert, CERT_MODE)):
            _mode(path, mode)
        authority_key = _key(ca_key, CURVES['ca_key'])
        server_key = _key(key, CURVES['key'])
        authority = _cert(ca_cert)
        server = _cert(cert)
        found = subject_alt_names(server)
        if _spki(authority.public_key()) != _spki(authority_key.public_key()):
            raise NotCurrent('%s is not the certificate of %s' % (ca_cert, ca_key))
        if not authority.not_valid_before_utc <= now < authority.not_valid_after_utc:
            raise NotCurrent('%s is not valid now' % ca_cert)
        if _spki(server.public_key()) != _spki(server_key.public_key()):
            raise NotCurrent('%s is not the certificate of %s' % (cert, key))
        try:
            server.verify_directly_issued_by(authority)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise NotCurrent('%s is not signed by the lab CA %s (%s)' % (cert, ca_cert, exc.__class__.__name__))
        if server.not_valid_before_utc > now:
            raise NotCurrent('%s is not valid yet' % cert)
        if server.not_valid_after_utc <= now + datetime.timedelta(days=renew_days):
            raise NotCurrent('%s expires within %d days' % (cert, renew_days))
        names = server.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if [n.value for n in names] != [common_name]:
            raise NotCurrent('%s names %s, not %s' % (cert, [n.value for n in names], common_name))
        if not _same_names(found, sans):
            raise NotCurrent('%s has the subjectAltName entries %s, not %s' % (cert, ', '.join(found), ', '.join(sans)))
    except NotCurrent as exc:
        return {'current': False, 'reason': str(exc), 'subject_alt_name': found}
    return {'current': True, 'reason': '', 'subject_alt_name': found}


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        if not HAS_CRYPTOGRAPHY:
            raise AnsibleLookupError('iothub.emq.lab_certificate needs the Python library cryptography on the controller')
        self.set_options(var_options=variables, direct=kwargs)
        return [check(self.get_option('ca_key'), self.get_option('ca_cert'), self.get_option('key'),
                      self.get_option('cert'), self.get_option('sans'), self.get_option('common_name'),
                      self.get_option('renew_days'))]
