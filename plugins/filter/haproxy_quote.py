# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write any text as one word of haproxy.cfg that HAProxy reads back exactly (a password, a user name).

HAProxy's configuration manual, section 2.2 "Quoting and escaping" (2.4 to 3.x alike): a line is cut
into words at spaces and tabs, ``#`` starts a comment, ``'...'`` quotes strongly (nothing inside is
interpreted, so a single quote, a line feed or a carriage return cannot be written there) and ``"..."``
quotes weakly: inside it a space, a tab, ``#`` and ``'`` are plain characters, a backslash escapes
(``\\\\``, ``\\"``, ``\\$``, ``\\xNN``...) and ``$NAME`` / ``${NAME}`` is replaced by an environment
variable. So the word is written inside double quotes with a backslash before each backslash, double
quote and dollar sign, and every control character as ``\\xNN``: it survives the parser byte for byte.
A NUL cannot be carried (HAProxy keeps words as C strings) and is refused.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types

_ESCAPED = {"\\": "\\\\", '"': '\\"', "$": "\\$"}


def _char(char):
    if char in _ESCAPED:
        return _ESCAPED[char]
    if ord(char) < 32 or ord(char) == 127:
        return "\\x%02x" % ord(char)
    return char


def haproxy_quote(value):
    """The value as one double-quoted haproxy.cfg word. Errors never quote the value (it may be a secret)."""
    if value is None or isinstance(value, bool) or not isinstance(value, string_types + (int, float)):
        raise AnsibleFilterError("haproxy_quote expects a string, got %s" % type(value).__name__)
    text = str(value)
    if "\x00" in text:
        raise AnsibleFilterError("haproxy_quote: the value has a NUL character at position %d, which haproxy.cfg cannot carry"
                                 % (text.index("\x00") + 1))
    return '"' + "".join(_char(c) for c in text) + '"'


class FilterModule(object):
    def filters(self):
        return {"haproxy_quote": haproxy_quote}
