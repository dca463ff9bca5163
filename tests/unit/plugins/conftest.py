# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Shared fixtures for the unit tests of the iothub.emq modules."""

from __future__ import annotations

from unittest import mock

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args


class ModuleExit(Exception):
    """Raised instead of exit_json/fail_json so a test can read what the module returned."""

    def __init__(self, failed, result):
        super().__init__(result.get('msg'))
        self.failed = failed
        self.result = result


def _exit_json(self, **kwargs):
    kwargs.setdefault('changed', False)
    raise ModuleExit(False, kwargs)


def _fail_json(self, msg=None, **kwargs):
    kwargs['msg'] = msg
    kwargs['failed'] = True
    raise ModuleExit(True, kwargs)


@pytest.fixture
def run_module():
    """run(main, args, check_mode=False, diff=False) -> result dict with 'failed' and 'warnings' added."""

    def run(main, args, check_mode=False, diff=False):
        args = dict(args)
        if check_mode:
            args['_ansible_check_mode'] = True
        if diff:
            args['_ansible_diff'] = True
        warnings = []
        with patch_module_args(args), mock.patch.multiple(
            basic.AnsibleModule,
            exit_json=_exit_json,
            fail_json=_fail_json,
            warn=lambda self, warning: warnings.append(warning),
        ):
            with pytest.raises(ModuleExit) as caught:
                main()
        result = caught.value.result
        result['failed'] = caught.value.failed
        result['warnings'] = warnings
        return result

    return run
