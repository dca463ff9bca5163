# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for the iothub.emq.host_port filter."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.iothub.emq.plugins.filter.host_port import host_port


@pytest.mark.parametrize('host, port, expected', [
    ('10.0.0.1', 9113, '10.0.0.1:9113'),
    ('fd00::1', '8405', '[fd00::1]:8405'),
    ('[fd00::1]', 8405, '[fd00::1]:8405'),
    ('lb-1.example', 9090, 'lb-1.example:9090'),
])
def test_host_and_port_joined_ipv6_in_brackets(host, port, expected):
    assert host_port(host, port) == expected


@pytest.mark.parametrize('host, port', [('', 80), (None, 80), ('10.0.0.1', 0), ('10.0.0.1', 65536), ('10.0.0.1', 'http')])
def test_bad_input_is_an_error(host, port):
    with pytest.raises(AnsibleFilterError):
        host_port(host, port)
