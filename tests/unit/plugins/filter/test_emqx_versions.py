# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.iothub.emq.plugins.filter.emqx_versions import FilterModule, emqx_version_change


@pytest.mark.parametrize('installed, wanted, change', [
    ('', '5.8.9', 'install'),
    (None, '5.8.9', 'install'),
    ('5.8.9', '5.8.9', 'same'),
    ('5.8.9-1', '5.8.9', 'same'),
    ('5.8.8', '5.8.9', 'upgrade'),
    ('5.8.9', '5.8.10', 'upgrade'),      # numbers, not text: 10 > 9
    ('5.8.9', '5.10.4', 'upgrade'),
    ('5.8.9', '6.0.0', 'upgrade'),
    ('5.8.9', '5.8.8', 'downgrade'),
    ('5.8.10~rc.1', '5.8.9', 'downgrade'),
    ('5.9.0', '5.8.9', 'minor_downgrade'),
    ('6.0.0', '5.10.4', 'minor_downgrade'),
])
def test_the_change_is_named(installed, wanted, change):
    assert emqx_version_change(installed, wanted) == change


@pytest.mark.parametrize('installed, wanted, what', [
    ('5.8', '5.8.9', 'the installed version'),
    ('5.8.9', 'latest', 'emq_node_version'),
    ('5.8.9', '', 'emq_node_version'),
])
def test_a_version_that_is_not_one_names_which(installed, wanted, what):
    with pytest.raises(AnsibleFilterError, match=what):
        emqx_version_change(installed, wanted)


def test_the_filter_is_registered():
    assert FilterModule().filters()['emqx_version_change'] is emqx_version_change
