# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Fixtures shared by the module tests that talk to real servers on 127.0.0.1."""

from __future__ import annotations

import shutil

import pytest

from ansible_collections.iothub.emq.tests.unit.plugins.modules.loopback import make_pki


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    """A CA, a server certificate for localhost/127.0.0.1 valid 30 days, and a client certificate."""
    if shutil.which('openssl') is None:
        pytest.skip('the openssl command is needed to make test certificates')
    return make_pki(tmp_path_factory.mktemp('pki'))
