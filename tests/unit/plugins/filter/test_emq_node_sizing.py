# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for the iothub.emq.emq_node_sizing filter."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.iothub.emq.plugins.filter.emq_node_sizing import emq_node_sizing, open_files_for


@pytest.mark.parametrize("target, nofile", [
    (1000000, 1254400),   # the default target: 1.25 M, where the role used to give 2 M
    (100000, 130048),
    (1000, 6144),
    (0, 4096),
])
def test_one_file_per_device_plus_headroom_and_reserve_rounded_to_1024(target, nofile):
    s = emq_node_sizing(target)
    assert s["nofile"] == nofile and s["max_ports"] == nofile and s["nr_open"] == nofile
    assert s["nofile"] % 1024 == 0 and s["nofile"] >= target * 1.25 + 4096
    assert s["file_max"] == 2 * nofile


def test_headroom_is_a_percent_of_the_target():
    assert emq_node_sizing(1000000, headroom_percent=0)["nofile"] == 1004544
    assert emq_node_sizing(1000000, headroom_percent=100)["nofile"] == 2004992


def test_an_explicit_value_wins_and_max_ports_stays_in_emqx_range():
    s = emq_node_sizing(1000000, open_files=2097152)
    assert s["explicit"] and s["nofile"] == 2097152 and s["max_ports"] == 2097152
    assert emq_node_sizing(0, open_files=512)["max_ports"] == 1024   # node.max_ports is range(1024, 134217727)


@pytest.mark.parametrize("nr_open", [1048576, 524288, 20000, 4096])
def test_max_target_is_the_largest_that_fits(nr_open):
    s = emq_node_sizing(10 ** 9, nr_open=nr_open)
    assert not s["fits"]
    best = s["max_target"]
    assert open_files_for(best, 25) <= nr_open < open_files_for(best + 1, 25)
    assert emq_node_sizing(best, nr_open=nr_open)["fits"]


def test_nothing_fits_under_the_reserve():
    assert emq_node_sizing(10, nr_open=1024)["max_target"] == 0


@pytest.mark.parametrize("kwargs", [{"target": "many"}, {"target": -1}, {"target": True}, {"target": 1, "headroom_percent": -1}])
def test_bad_input_is_an_error(kwargs):
    with pytest.raises(AnsibleFilterError):
        emq_node_sizing(**kwargs)
