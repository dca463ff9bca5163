# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Return the entries of a list that are not IPv4/IPv6 networks or addresses."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence

try:
    import netaddr
except ImportError:  # pragma: no cover - reported when the filter is used
    netaddr = None


def invalid_cidrs(values):
    """List the items that netaddr cannot read as an address or a network (e.g. 10.0.0.0/33)."""
    if netaddr is None:
        raise AnsibleFilterError("iothub.emq.invalid_cidrs needs the Python library netaddr on the controller: pip install netaddr")
    if not is_sequence(values):
        raise AnsibleFilterError("invalid_cidrs expects a list of networks, got %s" % type(values).__name__)
    bad = []
    for value in values:
        text = str(value).strip()
        try:
            if "/" in text:
                netaddr.IPNetwork(text)
            else:
                netaddr.IPAddress(text)
        except (netaddr.AddrFormatError, ValueError, TypeError):
            bad.append(value)
    return bad


class FilterModule(object):
    def filters(self):
        return {"invalid_cidrs": invalid_cidrs}
