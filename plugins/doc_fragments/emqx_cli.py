# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment(object):

    # Options of modules that drive the EMQX command line (emqx ctl).
    # The code side is iothub.emq.plugins.module_utils.emqx_cli.emqx_cli_argument_spec().
    DOCUMENTATION = r"""
options:
  cli_path:
    description:
      - Path of the C(emqx) script on the managed node. The module runs C(<cli_path> ctl ...).
      - A bare command name is looked up in E(PATH).
      - When Ansible runs as root, the C(emqx) script re-runs itself as the C(emqx) user through a login
        shell, which drops C(EMQX_*) environment variables; the module passes everything as arguments.
    type: path
    default: /usr/bin/emqx
requirements:
  - EMQX 5 installed and running on the managed node.
"""
