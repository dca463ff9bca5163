# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for the iothub.emq.config_word_problems filter."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.iothub.emq.plugins.filter.config_words import config_word_problems


def test_clean_words_pass():
    values = {"a": "/stats", "b": "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256", "c": "$remote_addr$server_port",
              "d": "10.0.0.1", "e": "[2001:db8::1]", "f": 8404, "g": "X25519:P-256", "h": "p@ss!w0rd%&*"}
    assert config_word_problems(values) == []


@pytest.mark.parametrize("value, words", [
    ("/stats\n", ["a newline at the end"]),
    ("my user", ["a space or tab", "position 3"]),
    ("pa#ss", ["'#'", "comment"]),
    ("a;b", ["';'", "NGINX ends the directive"]),
    ("x{y}", ["'{'", "'}'"]),
    ('"q"', ["a double quote"]),
    ("it's", ["a single quote"]),
    ("back\\slash", ["a backslash"]),
    ("t\x01", ["a control character (U+0001) at the end"]),
    ("caf\u00e9", ["a non-ASCII character at the end"]),
])
def test_breaking_characters_are_named_with_their_position(value, words):
    problems = config_word_problems({"haproxy_lb_stats_password": value})
    assert len(problems) == 1 and problems[0].startswith("haproxy_lb_stats_password has ")
    for word in words:
        assert word in problems[0]


def test_the_value_is_never_quoted():
    secret = "s3cret with space"
    assert secret not in config_word_problems({"pw": secret})[0]
    assert "s3cret" not in config_word_problems({"pw": secret})[0]


def test_each_kind_once_and_sorted_by_name():
    problems = config_word_problems({"z": "a b c", "a": "x\ny\n"})
    assert [p.split()[0] for p in problems] == ["a", "z"]
    assert problems[0].count("a newline") == 1 and problems[1].count("a space") == 1


def test_non_strings_other_than_numbers_are_skipped_and_a_mapping_is_required():
    assert config_word_problems({"a": None, "b": True, "c": ["x y"]}) == []
    with pytest.raises(AnsibleFilterError, match="mapping"):
        config_word_problems(["a"])
