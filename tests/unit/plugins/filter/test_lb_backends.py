# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""iothub.emq.lb_backend_list: the servers haproxy_lb and nginx_lb write, with the cores as backups of replicants."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.iothub.emq.plugins.filter.lb_backends import lb_backend_list

HOSTVARS = {
    'emqx-1': {'emq_node_cluster_address': '10.0.0.1'},
    'emqx-2': {'ansible_host': '10.0.0.2', 'emq_node_role': 'core'},
    'emqx 3': {'emq_node_cluster_address': '10.0.0.3', 'emq_node_role': 'replicant'},
    'emqx-4': {},
}


def test_the_group_gives_one_entry_per_host_with_its_address_and_role():
    out = lb_backend_list([], ['emqx-1', 'emqx-2', 'emqx-4'], HOSTVARS)
    assert out == [{'name': 'emqx-1', 'address': '10.0.0.1', 'host': 'emqx-1', 'role': 'core', 'backup': False},
                   {'name': 'emqx-2', 'address': '10.0.0.2', 'host': 'emqx-2', 'role': 'core', 'backup': False},
                   {'name': 'emqx-4', 'address': 'emqx-4', 'host': 'emqx-4', 'role': 'core', 'backup': False}]


def test_with_a_replicant_the_cores_are_backups():
    out = lb_backend_list([], ['emqx-1', 'emqx-2', 'emqx 3'], HOSTVARS)
    assert [(b['name'], b['role'], b['backup']) for b in out] == [
        ('emqx-1', 'core', True), ('emqx-2', 'core', True), ('emqx_3', 'replicant', False)]


def test_not_preferred_every_node_is_alike():
    out = lb_backend_list([], ['emqx-1', 'emqx 3'], HOSTVARS, prefer=False)
    assert [b['backup'] for b in out] == [False, False]


def test_without_backups_the_cores_are_left_out():
    out = lb_backend_list([], ['emqx-1', 'emqx-2', 'emqx 3'], HOSTVARS, backup_allowed=False)
    assert [b['host'] for b in out] == ['emqx 3']
    # No replicant: nothing is left out.
    assert len(lb_backend_list([], ['emqx-1', 'emqx-2'], HOSTVARS, backup_allowed=False)) == 2


def test_explicit_backends_take_the_role_of_their_host():
    backends = [{'name': 'one', 'address': '10.0.0.1', 'host': 'emqx-1'}, {'address': '10.0.0.3', 'host': 'emqx 3'},
                {'name': 'outside', 'address': '10.9.9.9'}]
    out = lb_backend_list(backends, ['emqx-2'], HOSTVARS)
    assert [(b['name'], b['address'], b['role'], b['backup']) for b in out] == [
        ('one', '10.0.0.1', 'core', True), ('10.0.0.3', '10.0.0.3', 'replicant', False), ('outside', '10.9.9.9', '', False)]


def test_a_backend_list_that_is_no_list_is_refused():
    with pytest.raises(AnsibleFilterError, match='must be a list'):
        lb_backend_list({'name': 'x'}, [], HOSTVARS)
