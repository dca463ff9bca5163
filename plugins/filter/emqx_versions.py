# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What moving an EMQX node from the installed package version to the one asked for is."""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

# 5.8.9, and the Debian package's forms of it: 5.8.9-1, 5.8.9~rc.1, 5.8.9+build.2 (the suffix is ignored).
VERSION = re.compile(r'^\s*(\d+)\.(\d+)\.(\d+)(?:[-~+.][0-9A-Za-z.~+-]*)?\s*$')


def _parse(value, what):
    match = VERSION.match(str(value))
    if not match:
        raise AnsibleFilterError('emqx_version_change: %s is not an EMQX version such as 5.8.9 (got %r)' % (what, value))
    return tuple(int(part) for part in match.groups())


def emqx_version_change(installed, wanted):
    """One word for the change from installed to wanted.

    installed: the package version on the host ('' or None when EMQX is not installed); wanted: emq_node_version.
    Returns install (nothing installed), same, upgrade, downgrade (an older patch release of the same major.minor),
    or minor_downgrade (an older major or minor release: EMQX's data may not read back, so the roles refuse it
    unless told).
    """
    if installed is None or str(installed).strip() == '':
        return 'install'
    have, want = _parse(installed, 'the installed version'), _parse(wanted, 'emq_node_version')
    if have == want:
        return 'same'
    if want > have:
        return 'upgrade'
    return 'downgrade' if want[:2] == have[:2] else 'minor_downgrade'


class FilterModule(object):
    def filters(self):
        return {'emqx_version_change': emqx_version_change}
