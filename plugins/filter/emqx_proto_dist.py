# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The distribution protocol (cluster.proto_dist) an emqx.conf gives the node: inet_tcp unless the file says otherwise."""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text

# apps/emqx_conf/src/emqx_conf_schema.erl, field "proto_dist" of "cluster": an enum, default inet_tcp.
PROTO_DISTS = ("inet_tcp", "inet6_tcp", "inet_tls", "inet6_tls")
DEFAULT = "inet_tcp"
# "cluster.proto_dist = x", "proto_dist: x" inside cluster { }, quoted or not. EMQX's schema has one key of this
# name, so where it sits in the file needs no parsing of the HOCON around it. The last one wins, as in HOCON.
_LINE = re.compile(r'^[ \t]*(?:cluster\.)?"?proto_dist"?[ \t]*[=:][ \t]*"?([A-Za-z0-9_]+)"?', re.MULTILINE)
_COMMENT = re.compile(r'^[ \t]*(#|//).*$', re.MULTILINE)


def emqx_proto_dist(conf_text):
    """'cluster {\\n  proto_dist = "inet_tls"\\n}' -> 'inet_tls'; no such key -> 'inet_tcp'; None or '' (no file) -> ''."""
    if conf_text is None:
        return ''
    if not isinstance(conf_text, (str, bytes)):
        raise AnsibleFilterError('emqx_proto_dist expects the text of emqx.conf, got %s' % type(conf_text).__name__)
    text = _COMMENT.sub('', to_text(conf_text))
    if not text.strip():
        return ''
    found = _LINE.findall(text)
    if not found:
        return DEFAULT
    value = found[-1]
    if value not in PROTO_DISTS:
        raise AnsibleFilterError('emqx.conf sets cluster.proto_dist to "%s", which EMQX refuses (it takes %s)'
                                 % (value, ', '.join(PROTO_DISTS)))
    return value


class FilterModule(object):
    def filters(self):
        return {'emqx_proto_dist': emqx_proto_dist}
