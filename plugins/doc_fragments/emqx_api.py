# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment(object):

    # Options of modules that talk to the EMQX 5 REST API on the dashboard listener.
    # The code side is iothub.emq.plugins.module_utils.emqx_api.emqx_api_argument_spec().
    DOCUMENTATION = r"""
options:
  api_url:
    description:
      - Base URL of the EMQX REST API on the dashboard listener, scheme, host, port and the path C(/api/v5),
        for example V(http://10.0.0.1:18083/api/v5) or V(https://emqx1.example.com:18084/api/v5).
      - The module sends its requests from the host the task runs on; use C(delegate_to) to send them from
        elsewhere.
      - Redirects are not followed, so that a password is never sent to another address.
    type: str
    required: true
  username:
    description:
      - Dashboard user to log in as (C(POST /login)); the module then uses the bearer token EMQX returns.
      - API keys are not used, because EMQX 5.8 refuses them on C(/users), C(/users/<name>), C(/logout) and
        C(/api_key) (C(API_KEY_NOT_ALLOW)), and changing a password needs the old one anyway.
    type: str
    default: admin
  password:
    description:
      - Password of O(username), used to log in.
      - It is sent in the body of C(POST /login) only, and never appears in the module's results or messages.
    type: str
    required: true
  timeout:
    description:
      - Seconds to wait for the answer to each HTTP request.
    type: int
    default: 10
  validate_certs:
    description:
      - With an C(https://) O(api_url), whether to verify the dashboard's certificate against the trusted
        certificate authorities of the host the task runs on.
      - Set it to V(false) only for a dashboard listener with a self-signed certificate on a trusted network.
    type: bool
    default: true
requirements:
  - EMQX 5 running, with its dashboard listener reachable from the host the task runs on.
"""
