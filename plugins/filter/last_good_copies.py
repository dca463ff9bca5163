# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The copies iothub.emq.config_files makes to keep files beside themselves as their last good versions."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types


def last_good_copies(files, suffix='.last-good', owner=None, group=None, owners=None, restore=False, missing='skip'):
    """One copy per file: <file> to <file><suffix> (or back, with restore), owner from owners or owner."""
    if not isinstance(files, (list, tuple)) or not all(isinstance(f, string_types) and f.startswith('/') for f in files):
        raise AnsibleFilterError("last_good_copies: expects a list of absolute paths, got %r" % (files,))
    if not isinstance(suffix, string_types) or not suffix or '/' in suffix:
        raise AnsibleFilterError("last_good_copies: the suffix must be a non-empty file name ending, got %r" % (suffix,))
    if missing not in ('skip', 'fail'):
        raise AnsibleFilterError("last_good_copies: missing must be skip or fail, got %r" % (missing,))
    owners = owners or {}
    if not isinstance(owners, dict):
        raise AnsibleFilterError("last_good_copies: owners must map files to owners, got %r" % (owners,))
    copies, seen = [], set()
    for path in files:
        if path in seen:
            continue
        seen.add(path)
        src, dest = (path + suffix, path) if restore else (path, path + suffix)
        copy = {'src': src, 'path': dest, 'missing': missing}
        if owners.get(path, owner) is not None:
            copy['owner'] = owners.get(path, owner)
        if group is not None:
            copy['group'] = group
        copies.append(copy)
    return copies


class FilterModule(object):
    def filters(self):
        return {'last_good_copies': last_good_copies}
