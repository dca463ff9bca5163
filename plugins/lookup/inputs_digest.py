# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: inputs_digest
author: iothub.emq maintainers (@iothub)
version_added: 0.3.0
short_description: A digest of the values of every variable whose name starts with the given prefixes
description:
  - Returns one SHA-256 hex digest of the templated values of all variables of the current host (inventory, facts,
    extra vars, role defaults and parameters in scope) whose names start with one of the prefixes given as terms.
  - The roles of this collection note it at the end of their preflight and skip the preflight when a later play of
    the same run reaches the role with the same digest. C(site.yml) checks every host of every group before the first
    change, so the roles that follow do not check the same inputs a second time. Any changed input (another
    C(vars:) on a second use of the role, an extra var) changes the digest, and the checks run again.
  - The digest is not a secret-free summary to print; it only tells whether two sets of values are the same.
  - Runs on the controller and reads nothing else.
options:
  _terms:
    description: Variable name prefixes, for example C(emq_node_).
    type: list
    elements: str
    required: true
notes:
  - Only variables whose names start with a prefix count; the role-internal ones (C(_emq_node_...), C(__emq_node_...))
    and the host's facts do not.
"""

EXAMPLES = r"""
- name: Note that the emq_node inputs passed their checks in this run
  ansible.builtin.set_fact:
    __emq_node_preflight_passed: "{{ lookup('iothub.emq.inputs_digest', 'emq_node_') }}"
"""

RETURN = r"""
_raw:
  description: One element, the SHA-256 hex digest (64 characters) of the sorted names and their templated values.
  type: list
  elements: str
"""

import hashlib
import json

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase


def digest(values):
    """SHA-256 of {name: value}, independent of the order of the names; values that JSON cannot write are
    written as their text."""
    text = json.dumps(values, sort_keys=True, default=str, separators=(',', ':'))
    return hashlib.sha256(text.encode('utf-8')).hexdigest()


def selected_names(names, prefixes):
    """The names that start with one of the prefixes, sorted."""
    return sorted(name for name in names if name.startswith(tuple(prefixes)))


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        prefixes = [str(term) for term in terms or []]
        if not prefixes or not all(prefixes):
            raise AnsibleLookupError('iothub.emq.inputs_digest needs one or more non-empty variable name prefixes, '
                                     "for example lookup('iothub.emq.inputs_digest', 'emq_node_').")
        variables = variables or {}
        values = {}
        for name in selected_names(variables, prefixes):
            try:
                values[name] = self._templar.template(variables[name])
            except Exception as exc:  # pylint: disable=broad-except
                # An undefined or broken value is an input the preflight reports; here it only has to differ
                # from any value that templates.
                values[name] = 'untemplatable: %s' % type(exc).__name__
        return [digest(values)]
