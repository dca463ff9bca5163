# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for the iothub.emq.to_hocon filter."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.iothub.emq.plugins.filter.to_hocon import FilterModule, to_hocon


def test_nested_objects_lists_and_scalars():
    text = to_hocon({
        "node": {"name": "emqx@10.0.0.2", "max_ports": 2097152},
        "cluster": {"discovery_strategy": "static", "static": {"seeds": ["emqx@10.0.0.2", "emqx@10.0.0.3"]}},
        "listeners": {"tcp": {"default": {"enable": True, "proxy_protocol": False, "bind": "0.0.0.0:1883"}}},
    })
    assert text == (
        'cluster {\n'
        '  discovery_strategy = "static"\n'
        '  static {\n'
        '    seeds = ["emqx@10.0.0.2", "emqx@10.0.0.3"]\n'
        '  }\n'
        '}\n'
        '\n'
        'listeners {\n'
        '  tcp {\n'
        '    default {\n'
        '      bind = "0.0.0.0:1883"\n'
        '      enable = true\n'
        '      proxy_protocol = false\n'
        '    }\n'
        '  }\n'
        '}\n'
        '\n'
        'node {\n'
        '  max_ports = 2097152\n'
        '  name = "emqx@10.0.0.2"\n'
        '}\n'
    )


def test_strings_are_escaped_and_odd_keys_quoted():
    text = to_hocon({"a": {"key with space": 'say "hi"\\n', "ok_key-1": 1.5, "empty": {}}})
    assert '"key with space" = "say \\"hi\\"\\\\n"' in text
    assert "ok_key-1 = 1.5" in text
    assert "empty = {}" in text


def test_output_is_stable_whatever_the_key_order():
    assert to_hocon({"b": 1, "a": {"y": 2, "x": 3}}) == to_hocon({"a": {"x": 3, "y": 2}, "b": 1})


@pytest.mark.parametrize("value, message", [
    (None, "node.cookie is null"),
    (object(), "that HOCON cannot hold"),
])
def test_unrenderable_values_name_their_path(value, message):
    with pytest.raises(AnsibleFilterError, match=message):
        to_hocon({"node": {"cookie": value}})


def test_top_level_must_be_a_dict():
    with pytest.raises(AnsibleFilterError, match="expects a dictionary"):
        to_hocon(["a"])


def test_registered_name():
    assert FilterModule().filters()["to_hocon"] is to_hocon
