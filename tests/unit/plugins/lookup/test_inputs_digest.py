# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for the iothub.emq.inputs_digest lookup: which names count, that the digest follows the values and
not their order, and that templates are rendered (with Ansible's own templar) before they are hashed."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleLookupError
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from ansible_collections.iothub.emq.plugins.lookup import inputs_digest as lookup_mod


def _run(variables, *prefixes):
    lookup = lookup_mod.LookupModule(loader=DataLoader(), templar=Templar(loader=DataLoader(), variables=variables))
    return lookup.run(list(prefixes), variables=variables)


def test_selected_names_take_the_prefix_only():
    names = ['emq_node_a', '_emq_node_b', '__emq_node_c', 'emq_nodes', 'emq_cluster_x', 'emq_node_']
    assert lookup_mod.selected_names(names, ['emq_node_']) == ['emq_node_', 'emq_node_a']
    assert lookup_mod.selected_names(names, ['emq_node_', 'emq_cluster_']) == ['emq_cluster_x', 'emq_node_', 'emq_node_a']


def test_digest_ignores_the_order_of_names():
    assert lookup_mod.digest({'a': 1, 'b': [1, 2]}) == lookup_mod.digest({'b': [1, 2], 'a': 1})
    assert len(lookup_mod.digest({})) == 64


def test_digest_follows_every_value():
    base = {'emq_node_cookie': 'x', 'emq_node_ports': {'mqtt': 1883}}
    changed = {'emq_node_cookie': 'x', 'emq_node_ports': {'mqtt': 1884}}
    assert lookup_mod.digest(base) != lookup_mod.digest(changed)


def test_lookup_renders_templates_before_hashing():
    # Inventory and role defaults are trusted templates; a plain string from elsewhere is not rendered.
    template = trust_as_template('{{ emq_node_b | upper }}')
    one = _run({'emq_node_a': template, 'emq_node_b': 'x'}, 'emq_node_')
    two = _run({'emq_node_a': 'X', 'emq_node_b': 'x'}, 'emq_node_')
    three = _run({'emq_node_a': template, 'emq_node_b': 'y'}, 'emq_node_')
    assert one == two
    assert one != three
    assert len(one) == 1 and len(one[0]) == 64


def test_lookup_ignores_other_variables():
    one = _run({'emq_node_a': 1, 'haproxy_lb_x': 1, '__emq_node_preflight_passed': 'abc'}, 'emq_node_')
    two = _run({'emq_node_a': 1, 'haproxy_lb_x': 2}, 'emq_node_')
    assert one == two


def test_an_undefined_value_still_gives_a_digest():
    assert len(_run({'emq_node_a': trust_as_template('{{ nowhere }}')}, 'emq_node_')[0]) == 64


@pytest.mark.parametrize('prefixes', [(), ('',)])
def test_lookup_needs_a_prefix(prefixes):
    with pytest.raises(AnsibleLookupError, match='prefixes'):
        _run({'emq_node_a': 1}, *prefixes)
