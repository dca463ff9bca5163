# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Name the Python libraries of a list that the controller's Python cannot import."""

from __future__ import annotations

import importlib.util

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence


def missing_python_libraries(names):
    """The entries of names (import names such as "netaddr") that the running Python cannot find.

    Only looks the module up (importlib.util.find_spec); nothing is imported, so a broken library is
    reported where it is used, not here.
    """
    if isinstance(names, str) or not is_sequence(names):
        raise AnsibleFilterError("missing_python_libraries expects a list of import names, got %s" % type(names).__name__)
    missing = []
    for name in names:
        text = str(name).strip()
        if not text:
            raise AnsibleFilterError("missing_python_libraries: an empty library name in %r" % (list(names),))
        try:
            found = importlib.util.find_spec(text) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(text)
    return missing


class FilterModule(object):
    def filters(self):
        return {"missing_python_libraries": missing_python_libraries}
