# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for iothub.emq.emqx_proto_dist: which distribution protocol an emqx.conf boots the node with."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.iothub.emq.plugins.filter.emqx_proto_dist import emqx_proto_dist
from ansible_collections.iothub.emq.plugins.filter.to_hocon import to_hocon


def test_what_the_role_renders():
    conf = to_hocon({'node': {'name': 'emqx@10.0.0.1'}, 'cluster': {'name': 'emqxcl', 'proto_dist': 'inet_tls'}})
    assert emqx_proto_dist(conf) == 'inet_tls'


def test_default_is_tcp():
    assert emqx_proto_dist(to_hocon({'cluster': {'name': 'emqxcl', 'discovery_strategy': 'static'}})) == 'inet_tcp'


@pytest.mark.parametrize('text, expected', [
    ('cluster.proto_dist = inet6_tls\n', 'inet6_tls'),
    ('cluster {\n  proto_dist: "inet_tls"\n}\n', 'inet_tls'),
    ('cluster { "proto_dist" = "inet_tls" }\ncluster.proto_dist = inet_tcp\n', 'inet_tcp'),
    ('# cluster.proto_dist = inet_tls\nnode.name = "emqx@h"\n', 'inet_tcp'),
])
def test_forms_and_last_one_wins(text, expected):
    assert emqx_proto_dist(text) == expected


@pytest.mark.parametrize('text', [None, '', '   \n'])
def test_no_file(text):
    assert emqx_proto_dist(text) == ''


def test_value_emqx_refuses():
    with pytest.raises(AnsibleFilterError, match='inet_udp'):
        emqx_proto_dist('cluster.proto_dist = inet_udp\n')


def test_not_text():
    with pytest.raises(AnsibleFilterError, match='text of emqx.conf'):
        emqx_proto_dist({'cluster': {}})
