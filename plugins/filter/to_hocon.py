# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Render a dict as HOCON for EMQX's emqx.conf."""

from __future__ import annotations

import json
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence
from ansible.module_utils.six import string_types

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(key):
    key = str(key)
    return key if _BARE_KEY.match(key) else json.dumps(key)


def _scalar(value, path):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, string_types):
        return json.dumps(str(value), ensure_ascii=False)
    if value is None:
        raise AnsibleFilterError("to_hocon: %s is null; give it a value or leave the key out" % path)
    raise AnsibleFilterError("to_hocon: %s has a value of type %s that HOCON cannot hold" % (path, type(value).__name__))


def _value(value, path, indent):
    pad = "  " * indent
    if isinstance(value, dict):
        if not value:
            return "{}"
        lines = ["{"]
        for key in sorted(value, key=str):
            lines.append("%s  %s %s" % (pad, _key(key), _assign(value[key], "%s.%s" % (path, key), indent + 1)))
        lines.append(pad + "}")
        return "\n".join(lines)
    if is_sequence(value):
        return "[" + ", ".join(_value(item, "%s[%d]" % (path, i), indent) for i, item in enumerate(value)) + "]"
    return _scalar(value, path)


def _assign(value, path, indent):
    rendered = _value(value, path, indent)
    # "key { ... }" for objects, "key = value" otherwise, as EMQX's own files are written.
    return rendered if isinstance(value, dict) and value else "= " + rendered


def to_hocon(data):
    """Render a mapping as HOCON text: one top-level block per key, keys sorted."""
    if not isinstance(data, dict):
        raise AnsibleFilterError("to_hocon expects a dictionary, got %s" % type(data).__name__)
    blocks = []
    for key in sorted(data, key=str):
        blocks.append("%s %s" % (_key(key), _assign(data[key], str(key), 0)))
    return "\n\n".join(blocks) + "\n"


class FilterModule(object):
    def filters(self):
        return {"to_hocon": to_hocon}
