# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.iothub.emq.plugins.filter.last_good_copies import last_good_copies

FILES = ['/etc/emqx/emqx.conf', '/etc/emqx-secrets/secrets.conf', '/etc/emqx/emqx.conf']


def test_each_file_to_its_copy_once_with_its_owner():
    assert last_good_copies(FILES, '.last-good', owner='root', group='emqx', owners={'/etc/emqx/emqx.conf': 'emqx'}) == [
        {'src': '/etc/emqx/emqx.conf', 'path': '/etc/emqx/emqx.conf.last-good', 'missing': 'skip', 'owner': 'emqx', 'group': 'emqx'},
        {'src': '/etc/emqx-secrets/secrets.conf', 'path': '/etc/emqx-secrets/secrets.conf.last-good', 'missing': 'skip',
         'owner': 'root', 'group': 'emqx'},
    ]


def test_restore_copies_back_and_unset_owner_and_group_are_left_out():
    assert last_good_copies(['/etc/nginx/nginx.conf'], '.ok', restore=True, missing='fail') == [
        {'src': '/etc/nginx/nginx.conf.ok', 'path': '/etc/nginx/nginx.conf', 'missing': 'fail'}]


@pytest.mark.parametrize('files, kwargs, message', [
    ('/etc/emqx/emqx.conf', {}, 'list of absolute paths'),
    (['emqx.conf'], {}, 'list of absolute paths'),
    (['/etc/a'], {'suffix': ''}, 'suffix must be'),
    (['/etc/a'], {'suffix': '/x'}, 'suffix must be'),
    (['/etc/a'], {'missing': 'ignore'}, 'missing must be skip or fail'),
    (['/etc/a'], {'owners': ['root']}, 'owners must map'),
])
def test_bad_input_is_refused(files, kwargs, message):
    with pytest.raises(AnsibleFilterError, match=message):
        last_good_copies(files, **kwargs)
