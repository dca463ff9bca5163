# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which server names a certificate does not cover, decided the way a client that checks the name decides.

The rules are RFC 6125 (section 6.4) as OpenSSL's X509_check_host and X509_check_ip apply them, with
the stricter choices of today's clients (browsers, Go, Python's ssl):

* a DNS name matches a DNS subjectAltName entry case-insensitively (a trailing dot is ignored);
* a wildcard counts only as the whole left-most label of an entry with at least two labels after it
  (``*.example.com``) and matches exactly one label made of letters, digits and hyphens: it covers
  ``a.example.com``, never ``example.com`` nor ``a.b.example.com``; partial wildcards (``f*.example.com``)
  match nothing;
* an IP address matches only an IP subjectAltName entry of the same address (compared parsed, so
  ``2001:db8::1`` and ``2001:0db8:0:0:0:0:0:1`` are one address; an IPv4 address never matches an
  IPv6 entry), never a DNS entry that spells it;
* the subject's CN is never consulted, and a certificate without subjectAltName entries covers nothing.
"""

from __future__ import annotations

import ipaddress
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence

# A DNS label as a host name uses it (underscores are let through: some internal names have them).
_LABEL_RE = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\Z")
# What a wildcard may stand for (OpenSSL's wildcard_match: letters, digits and hyphens, one label).
_WILDCARD_LABEL_RE = re.compile(r"^[a-z0-9-]+\Z")
# How community.crypto.x509_certificate_info (and OpenSSL's text output) prefix the entry types.
_DNS_PREFIXES = ("DNS:",)
_IP_PREFIXES = ("IP:", "IP Address:")


def _address(text):
    """The IP address text spells, or None."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _dns_name(text):
    """text as a lower-case ASCII DNS name (IDNA A-labels), or None when it is not a valid host name."""
    name = text[:-1] if text.endswith(".") else text
    try:
        name = name.encode("idna").decode("ascii") if any(ord(c) > 0x7F for c in name) else name
    except UnicodeError:
        return None
    name = name.lower()
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_LABEL_RE.match(label) for label in labels):
        return None
    # An all-numeric last label is an IPv4 address gone wrong (10.0.0.256), not a host name.
    if labels[-1].isdigit():
        return None
    return name


def parse_sans(sans):
    """([DNS entries as lower-case ASCII], [IP addresses]) of a subjectAltName list."""
    if sans is None:
        return [], []
    if not is_sequence(sans):
        raise AnsibleFilterError("tls_name_problems expects the subjectAltName entries as a list (like "
                                 "['DNS:mqtt.example.com', 'IP:192.0.2.10']), got %s" % type(sans).__name__)
    dns, ips = [], []
    for entry in sans:
        text = str(entry).strip()
        for prefix in _DNS_PREFIXES:
            if text.startswith(prefix):
                value = text[len(prefix):].strip().lower()
                dns.append(value[:-1] if value.endswith(".") else value)
        for prefix in _IP_PREFIXES:
            if text.startswith(prefix):
                address = _address(text[len(prefix):].strip())
                if address is not None:
                    ips.append(address)
    return dns, ips


def _wildcard_suffix(pattern):
    """The labels after a valid whole-label wildcard ('*.example.com' -> ['example', 'com']), else None."""
    labels = pattern.split(".")
    if labels[0] != "*" or len(labels) < 3 or any("*" in label or not label for label in labels[1:]):
        return None
    return labels[1:]


def _dns_matches(pattern, name):
    """Whether one DNS subjectAltName entry covers the (normalised) DNS name."""
    if "*" not in pattern:
        return pattern == name
    suffix = _wildcard_suffix(pattern)
    labels = name.split(".")
    return (suffix is not None and len(labels) == len(suffix) + 1 and labels[1:] == suffix
            and _WILDCARD_LABEL_RE.match(labels[0]) is not None)


def _dns_hint(name, dns):
    """Why the wildcard entries that come close do not cover name ('' when none comes close)."""
    labels = name.split(".")
    for pattern in dns:
        if "*" not in pattern or "." not in pattern:
            continue
        rest = pattern.split(".", 1)[1]
        if name != rest and not name.endswith("." + rest):
            continue
        suffix = _wildcard_suffix(pattern)
        if suffix is None:
            return (" (DNS:%s is no wildcard a client accepts: '*' must be the whole left-most label, with two or more"
                    " labels after it)" % pattern)
        if name == rest:
            return " (DNS:%s does not cover %s itself)" % (pattern, rest)
        if len(labels) > len(suffix) + 1:
            return " (DNS:%s covers exactly one label in front of %s, not %s)" % (pattern, rest, name[:-len(rest) - 1])
        return " (DNS:%s: a wildcard stands for letters, digits and hyphens only)" % pattern
    return ""


def tls_name_problems(sans, names):
    """The server names (DNS names or IP addresses) the subjectAltName entries sans do not cover, each with why.

    Returns one sentence per name that is not covered (or is not a DNS name or an IP address), in the
    order of names; an empty list when the certificate covers them all.
    """
    if not is_sequence(names):
        raise AnsibleFilterError("tls_name_problems expects the server names as a list, got %s" % type(names).__name__)
    dns, ips = parse_sans(sans)
    problems = []
    for raw in names:
        text = str(raw).strip()
        address = _address(text)
        if address is not None:
            if address in ips:
                continue
            spelled = [d for d in dns if _address(d) == address]
            problems.append("%s: an IP address, and the certificate has no IP:%s entry%s" % (
                text, address, " (DNS:%s does not count for an address)" % spelled[0] if spelled else ""))
            continue
        if "*" in text:
            problems.append("%s: a wildcard, not a name a device connects to; list the names themselves" % text)
            continue
        name = _dns_name(text)
        if name is None:
            problems.append('"%s": neither a DNS name nor an IP address (write IPv6 addresses without brackets)' % text)
            continue
        if any(_dns_matches(pattern, name) for pattern in dns):
            continue
        problems.append("%s: no DNS entry covers it%s" % (text, _dns_hint(name, dns)))
    return problems


class FilterModule(object):
    def filters(self):
        return {"tls_name_problems": tls_name_problems}
