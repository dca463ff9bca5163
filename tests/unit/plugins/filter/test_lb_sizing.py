# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for the iothub.emq.lb_sizing filter."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.iothub.emq.plugins.filter.lb_sizing import lb_sizing

CONTAINER = {"init_nofile": 20000, "init_can_raise": False}


def test_one_process_keeps_the_old_sizing():
    # HAProxy: one process, two files per device, 4096 spare: as the roles sized it before processes counted.
    s = lb_sizing(5000)
    assert (s["maxconn"], s["processes"], s["nofile"], s["ceiling"], s["fits"]) == (6000, 1, 16096, None, True)
    assert lb_sizing(500000)["maxconn"] == 505000  # 1% beyond a large target, at least 1000


def test_one_process_over_a_container_ceiling_does_not_fit_and_says_how_far_it_goes():
    s = lb_sizing(50000, processes=1, **CONTAINER)
    assert not s["fits"] and s["ceiling"] == 20000
    assert s["max_target"] == 6952
    assert lb_sizing(6952, **CONTAINER)["fits"] and not lb_sizing(6953, **CONTAINER)["fits"]


def test_auto_is_the_cpus_when_the_service_manager_can_raise_the_limit():
    s = lb_sizing(500000, processes="auto", cpus=4, init_nofile=20000, init_can_raise=True)
    assert s["processes"] == 4 and s["processes_auto"] and s["fits"] and s["max_target"] is None
    # 505000 connections x 2 files x 1.1 over 4 workers, plus 4096
    assert s["per_process_fds"] == 277750 and s["nofile"] == 281846


def test_auto_spreads_over_more_workers_under_a_container_ceiling():
    s = lb_sizing(50000, processes="auto", cpus=2, **CONTAINER)
    assert s["processes"] == 8 and s["fits"]
    assert (s["per_process_fds"], s["nofile"]) == (14025, 18121)
    # every worker's share fits, and together they carry the target with room to spare
    assert s["processes"] * s["per_process_fds"] >= 2 * s["maxconn"]
    assert s["max_target"] >= 50000


def test_auto_stays_at_the_cpus_when_they_suffice():
    s = lb_sizing(3000, processes="auto", cpus=2, **CONTAINER)
    assert s["processes"] == 2 and s["nofile"] == 4400 + 4096


@pytest.mark.parametrize("target", [1, 1000, 6952, 20000, 100000, 333333])
def test_auto_always_fits_a_container_and_carries_the_target(target):
    s = lb_sizing(target, processes="auto", cpus=1, **CONTAINER)
    assert s["fits"] and s["nofile"] <= 20000
    assert s["processes"] * s["per_process_fds"] >= 2 * s["maxconn"]
    # no fewer processes would do
    if s["processes"] > 1:
        assert not lb_sizing(target, processes=s["processes"] - 1, cpus=1, **CONTAINER)["fits"]


def test_a_fixed_count_is_kept_even_when_it_does_not_fit():
    s = lb_sizing(50000, processes=2, cpus=8, **CONTAINER)
    assert s["processes"] == 2 and not s["fits"]
    assert lb_sizing(s["max_target"], processes=2, **CONTAINER)["fits"]
    assert not lb_sizing(s["max_target"] + 1, processes=2, **CONTAINER)["fits"]


def test_strings_from_templating_are_read():
    assert lb_sizing("5000", fds_per_connection="2", processes="1", cpus="2", init_nofile="20000",
                     init_can_raise=False)["nofile"] == 16096


@pytest.mark.parametrize("kwargs, message", [
    ({"processes": 0}, "processes must be"),
    ({"processes": "many"}, "processes must be a whole number"),
    ({"fds_per_connection": 0}, "fds_per_connection must be 1 or more"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(AnsibleFilterError, match=message):
        lb_sizing(1000, **kwargs)


def test_a_tiny_ceiling_carries_nothing():
    assert lb_sizing(10, processes="auto", init_nofile=1024, init_can_raise=False)["max_target"] == 0
