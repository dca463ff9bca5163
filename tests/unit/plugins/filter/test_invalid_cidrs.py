# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for the iothub.emq.invalid_cidrs filter."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.iothub.emq.plugins.filter.invalid_cidrs import invalid_cidrs


def test_valid_networks_and_addresses_pass():
    assert invalid_cidrs(["10.0.0.0/8", "192.168.0.10", "::/0", "2001:db8::/32", "172.30.1.1/32"]) == []


def test_invalid_entries_are_returned_in_order():
    bad = ["10.0.0.0/33", "300.1.1.1", "not-a-network", "10.0.0.0/8/1"]
    assert invalid_cidrs(["10.0.0.0/8"] + bad) == bad


def test_needs_a_list():
    with pytest.raises(AnsibleFilterError, match="expects a list"):
        invalid_cidrs("10.0.0.0/8")
