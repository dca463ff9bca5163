# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for the iothub.emq.missing_python_libraries filter."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.iothub.emq.plugins.filter.python_libraries import missing_python_libraries


def test_libraries_that_are_there_are_not_listed():
    assert missing_python_libraries(["json", "netaddr"]) == []


def test_a_library_that_is_not_there_is_named_in_order():
    assert missing_python_libraries(["iothub_no_such_lib_b", "json", "iothub_no_such_lib_a"]) == [
        "iothub_no_such_lib_b", "iothub_no_such_lib_a"]


def test_a_submodule_of_a_missing_package_is_missing_not_an_error():
    assert missing_python_libraries(["iothub_no_such_pkg.sub"]) == ["iothub_no_such_pkg.sub"]


@pytest.mark.parametrize("value", ["netaddr", None, 3])
def test_not_a_list_is_refused(value):
    with pytest.raises(AnsibleFilterError, match="expects a list"):
        missing_python_libraries(value)


def test_an_empty_name_is_refused():
    with pytest.raises(AnsibleFilterError, match="empty library name"):
        missing_python_libraries(["netaddr", " "])
