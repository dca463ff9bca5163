# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for the iothub.emq.lab_certificate lookup on real key and certificate files made here, the way the
roles' lab tasks make them (EC P-384 CA, EC P-256 server key, modes 0600/0644): current as made, and not current
for each thing that would make those tasks change something."""

from __future__ import annotations

import datetime
import ipaddress
import os

import pytest
import yaml

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible import constants as C
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

from ansible_collections.iothub.emq.plugins.lookup import lab_certificate as lookup_mod

NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.timezone.utc)
SANS = ('DNS:lb1', 'IP:10.0.0.5', 'IP:2001:db8::10')


def _write_key(path, key):
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    os.chmod(path, 0o600)


def _write_cert(path, cert):
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    os.chmod(path, 0o644)


def _san(name):
    kind, value = name.split(':', 1)
    return x509.IPAddress(ipaddress.ip_address(value)) if kind == 'IP' else x509.DNSName(value)


def make_lab(tmp, sans=SANS, common_name='lb1', days=365, ca_key=None, server_key=None, issuer_key=None):
    """The four files as the lab tasks leave them; returns the lookup's keyword arguments."""
    ca_key = ca_key or ec.generate_private_key(ec.SECP384R1())
    server_key = server_key or ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'iothub.emq lab CA')])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(NOW - datetime.timedelta(days=1)).not_valid_after(NOW + datetime.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True).sign(ca_key, hashes.SHA256()))
    server = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
              .issuer_name(ca_name).public_key(server_key.public_key()).serial_number(2)
              .not_valid_before(NOW - datetime.timedelta(hours=1)).not_valid_after(NOW + datetime.timedelta(days=days))
              .add_extension(x509.SubjectAlternativeName([_san(n) for n in sans]), critical=False)
              .sign(issuer_key or ca_key, hashes.SHA256()))
    files = {'ca_key': tmp / 'ca.key', 'ca_cert': tmp / 'ca.pem', 'key': tmp / 'lb1.key', 'cert': tmp / 'lb1.pem'}
    _write_key(files['ca_key'], ca_key)
    _write_cert(files['ca_cert'], ca)
    _write_key(files['key'], server_key)
    _write_cert(files['cert'], server)
    return {name: str(path) for name, path in files.items()}


def check(files, sans=SANS, common_name='lb1', renew_days=30):
    return lookup_mod.check(files['ca_key'], files['ca_cert'], files['key'], files['cert'], sans, common_name,
                            renew_days, now=NOW)


def test_current_as_the_lab_tasks_make_it(tmp_path):
    result = check(make_lab(tmp_path))
    assert result == {'current': True, 'reason': '', 'subject_alt_name': list(SANS)}


def test_names_compare_in_any_order_and_however_an_address_is_written(tmp_path):
    files = make_lab(tmp_path)
    assert check(files, sans=['IP:2001:DB8:0::10', 'DNS:LB1', 'IP:10.0.0.5'])['current'] is True


def test_the_lookup_reads_its_options(tmp_path):
    name = 'iothub.emq.lab_certificate'
    C.config.initialize_plugin_configuration_definitions('lookup', name, yaml.safe_load(lookup_mod.DOCUMENTATION)['options'])
    files = make_lab(tmp_path, days=4000)  # valid past the real clock's renew window
    lookup = lookup_mod.LookupModule(loader=DataLoader(), templar=Templar(loader=DataLoader()))
    lookup._load_name = name
    result = lookup.run([], variables={}, sans=list(SANS), common_name='lb1', **files)
    assert result[0]['current'] is True


@pytest.mark.parametrize('change, reason', [
    (lambda f: os.unlink(f['cert']), 'lb1.pem does not exist'),
    (lambda f: os.unlink(f['ca_key']), 'ca.key does not exist'),
    (lambda f: os.chmod(f['key'], 0o644), 'lb1.key has mode 0644, not 0600'),
    (lambda f: open(f['cert'], 'w').write('garbage'), 'not a PEM certificate'),
    (lambda f: _write_key(__import__('pathlib').Path(f['key']), ec.generate_private_key(ec.SECP256R1())),
     'lb1.pem is not the certificate of'),
    (lambda f: _write_key(__import__('pathlib').Path(f['key']), ec.generate_private_key(ec.SECP384R1())),
     'is not an EC secp256r1 key'),
    (lambda f: _write_key(__import__('pathlib').Path(f['ca_key']), ec.generate_private_key(ec.SECP384R1())),
     'ca.pem is not the certificate of'),
])
def test_not_current_when_a_file_is_missing_or_wrong(tmp_path, change, reason):
    files = make_lab(tmp_path)
    change(files)
    result = check(files)
    assert result['current'] is False and reason in result['reason'], result


def test_not_current_when_a_name_is_added_or_removed(tmp_path):
    files = make_lab(tmp_path)
    added = check(files, sans=list(SANS) + ['DNS:mqtt.example.com'])
    assert added['current'] is False and 'subjectAltName' in added['reason'] and added['subject_alt_name'] == list(SANS)
    assert check(files, sans=list(SANS[:1]))['current'] is False


def test_not_current_for_another_common_name(tmp_path):
    assert 'names' in check(make_lab(tmp_path), common_name='lb2')['reason']


def test_not_current_when_it_expires_within_the_renew_days(tmp_path):
    files = make_lab(tmp_path, days=20)
    result = check(files, renew_days=30)
    assert result['current'] is False and 'expires within 30 days' in result['reason']
    assert check(files, renew_days=10)['current'] is True


def test_not_current_when_another_ca_signed_it(tmp_path):
    files = make_lab(tmp_path, issuer_key=ec.generate_private_key(ec.SECP384R1()))
    result = check(files)
    assert result['current'] is False and 'not signed by the lab CA' in result['reason']
