# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Values the load balancer roles write as one word of haproxy.cfg or nginx.conf, checked for what breaks them.

HAProxy splits a line into words at spaces and tabs, reads ``#`` as the start of a comment and quotes
and backslashes as quoting; NGINX splits at whitespace too and ends a directive at ``;`` and blocks at
``{`` ``}``. A newline, even a trailing one (what a careless ``ansible-vault encrypt_string`` gives),
ends the directive in both. A word with any of these characters is misread or refused, so it is
refused before it is written. Non-ASCII is refused as well: neither reads an encoding.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types

_SPECIAL = {
    "#": "'#' (HAProxy reads the rest of the line as a comment)",
    ";": "';' (NGINX ends the directive there)",
    "{": "'{' (NGINX opens a block)",
    "}": "'}' (NGINX closes a block)",
    '"': "a double quote (both read it as quoting)",
    "'": "a single quote (both read it as quoting)",
    "\\": "a backslash (both read it as an escape)",
}


def _what(char):
    if char == "\n":
        return "a newline"
    if char in " \t":
        return "a space or tab (the word would be split in two)"
    if ord(char) < 32 or ord(char) == 127:
        return "a control character (U+%04X)" % ord(char)
    if ord(char) > 126:
        return "a non-ASCII character"
    return _SPECIAL.get(char)


def config_word_problems(values):
    """One sentence per variable whose value cannot be written as one config word; never quotes the value."""
    if not isinstance(values, dict):
        raise AnsibleFilterError("config_word_problems expects a mapping of variable names to values, got %s" % type(values).__name__)
    problems = []
    for name in sorted(values):
        value = values[name]
        if value is None or isinstance(value, bool) or not isinstance(value, string_types + (int, float)):
            continue
        text = str(value)
        found = []
        for index, char in enumerate(text):
            what = _what(char)
            if what and what not in [f[0] for f in found]:
                where = "at the end" if index == len(text) - 1 else "at position %d" % (index + 1)
                found.append((what, where))
        if found:
            problems.append("%s has %s" % (name, ", ".join("%s %s" % pair for pair in found)))
    return problems


class FilterModule(object):
    def filters(self):
        return {"config_word_problems": config_word_problems}
