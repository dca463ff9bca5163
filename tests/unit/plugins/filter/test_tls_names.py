# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for the iothub.emq.tls_name_problems filter, with subjectAltName lists as
community.crypto.x509_certificate_info returns them."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.iothub.emq.plugins.filter.tls_names import tls_name_problems

LB_CERT = ["DNS:mqtt.example.com", "DNS:*.devices.example.com", "IP:192.0.2.10", "IP:2001:db8::10"]


def _missing(sans, names):
    """The names tls_name_problems reports (each problem starts with its name), in its order."""
    problems = tls_name_problems(sans, names)
    return [n for p in problems for n in names if p.startswith(n + ": ") or p.startswith('"%s": ' % n)]


# ---- DNS names --------------------------------------------------------------------------------

def test_exact_dns_names_match_case_insensitively():
    assert tls_name_problems(LB_CERT, ["mqtt.example.com", "MQTT.Example.COM", "mqtt.example.com."]) == []
    assert tls_name_problems(["DNS:MQTT.EXAMPLE.COM"], ["mqtt.example.com"]) == []


def test_a_name_the_certificate_lacks_is_reported_with_the_name():
    problems = tls_name_problems(LB_CERT, ["mqtt.example.com", "broker.example.com"])
    assert len(problems) == 1
    assert problems[0].startswith("broker.example.com: no DNS entry covers it")


def test_names_are_reported_in_order():
    assert _missing(LB_CERT, ["b.example.org", "mqtt.example.com", "a.example.org"]) == ["b.example.org", "a.example.org"]


# ---- wildcards --------------------------------------------------------------------------------

def test_a_wildcard_covers_exactly_one_left_most_label():
    assert tls_name_problems(LB_CERT, ["a.devices.example.com", "XN--BCHER-KVA.devices.example.com", "a-1.devices.example.com"]) == []


def test_a_wildcard_does_not_cover_its_own_base_name():
    problems = tls_name_problems(["DNS:*.example.com"], ["example.com"])
    assert len(problems) == 1
    assert "does not cover example.com itself" in problems[0]


def test_a_wildcard_does_not_cover_two_labels():
    problems = tls_name_problems(["DNS:*.example.com"], ["a.b.example.com"])
    assert len(problems) == 1
    assert "covers exactly one label in front of example.com, not a.b" in problems[0]


def test_a_wildcard_stands_for_letters_digits_and_hyphens_only():
    problems = tls_name_problems(["DNS:*.example.com"], ["a_b.example.com"])
    assert len(problems) == 1 and "letters, digits and hyphens only" in problems[0]


@pytest.mark.parametrize("pattern, name", [
    ("f*.example.com", "foo.example.com"),      # partial wildcard
    ("*oo.example.com", "foo.example.com"),
    ("*.com", "example.com"),                   # fewer than two labels after the wildcard
    ("a.*.example.com", "a.b.example.com"),     # not the left-most label
    ("*.*.example.com", "a.b.example.com"),     # two wildcards
])
def test_wildcards_clients_refuse_match_nothing(pattern, name):
    assert _missing(["DNS:" + pattern], [name]) == [name]


def test_a_literal_pattern_without_wildcard_is_not_a_suffix_match():
    assert _missing(["DNS:example.com"], ["a.example.com"]) == ["a.example.com"]


# ---- IP addresses -----------------------------------------------------------------------------

def test_ip_addresses_match_ip_entries_compared_parsed():
    assert tls_name_problems(LB_CERT, ["192.0.2.10", "2001:db8::10", "2001:0DB8:0:0:0:0:0:10"]) == []


def test_an_ip_address_spelled_in_a_dns_entry_does_not_count():
    problems = tls_name_problems(["DNS:192.0.2.10", "DNS:mqtt.example.com"], ["192.0.2.10"])
    assert len(problems) == 1
    assert problems[0].startswith("192.0.2.10: an IP address, and the certificate has no IP:192.0.2.10 entry")
    assert "DNS:192.0.2.10 does not count for an address" in problems[0]


def test_an_ip_entry_does_not_cover_a_dns_name_that_spells_nothing_else():
    assert _missing(["IP:192.0.2.10"], ["mqtt.example.com"]) == ["mqtt.example.com"]


def test_ipv4_and_ipv6_are_different_addresses():
    # OpenSSL compares the address bytes: 4 bytes never equal 16, mapped or not.
    assert len(tls_name_problems(["IP:192.0.2.10"], ["::ffff:192.0.2.10"])) == 1
    assert len(tls_name_problems(["IP:::ffff:192.0.2.10"], ["192.0.2.10"])) == 1
    assert len(tls_name_problems(["IP:2001:db8::10"], ["2001:db8::11"])) == 1


def test_openssl_text_prefix_for_addresses_is_read_too():
    assert tls_name_problems(["IP Address:192.0.2.10"], ["192.0.2.10"]) == []


# ---- no subjectAltName, and the CN ----------------------------------------------------------

@pytest.mark.parametrize("sans", [None, []])
def test_a_certificate_without_subject_alt_names_covers_nothing(sans):
    assert _missing(sans, ["mqtt.example.com", "192.0.2.10"]) == ["mqtt.example.com", "192.0.2.10"]


def test_other_entry_types_cover_nothing():
    sans = ["email:ops@example.com", "URI:https://mqtt.example.com/", "dirName:/CN=mqtt.example.com"]
    assert _missing(sans, ["mqtt.example.com"]) == ["mqtt.example.com"]


# ---- names that are neither --------------------------------------------------------------------

@pytest.mark.parametrize("name", ["", "mqtt example.com", "[2001:db8::10]", "10.0.0.256", "-bad.example.com", "a..b"])
def test_names_that_are_neither_dns_names_nor_addresses_are_reported(name):
    problems = tls_name_problems(LB_CERT, [name])
    assert len(problems) == 1 and "neither a DNS name nor an IP address" in problems[0], problems


def test_a_wildcard_is_no_server_name():
    problems = tls_name_problems(LB_CERT, ["*.devices.example.com"])
    assert len(problems) == 1 and "a wildcard, not a name a device connects to" in problems[0]


def test_unicode_names_are_compared_as_idna_a_labels():
    assert tls_name_problems(["DNS:xn--bcher-kva.example.com"], ["bücher.example.com"]) == []


# ---- arguments ----------------------------------------------------------------------------------

def test_needs_a_list_of_names():
    with pytest.raises(AnsibleFilterError, match="server names as a list"):
        tls_name_problems(LB_CERT, "mqtt.example.com")


def test_needs_a_list_of_entries():
    with pytest.raises(AnsibleFilterError, match="subjectAltName entries as a list"):
        tls_name_problems("DNS:mqtt.example.com", ["mqtt.example.com"])
