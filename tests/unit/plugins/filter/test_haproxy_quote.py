# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for the iothub.emq.haproxy_quote filter."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.iothub.emq.plugins.filter.haproxy_quote import haproxy_quote


def _haproxy_words(line):
    """The words HAProxy's parser makes of one line, after its configuration manual, section 2.2: spaces and
    tabs separate words, '#' outside quotes starts a comment, '...' quotes strongly (nothing interpreted),
    "..." quotes weakly (backslash escapes \\\\ \\" \\' \\# \\$ \\<space> \\n \\r \\t \\xNN; '$' would expand an
    environment variable, refused here so a test catches one that was not escaped)."""
    words, word, in_word, i, quote = [], [], False, 0, None
    escapes = {"n": "\n", "r": "\r", "t": "\t"}
    while i < len(line):
        c = line[i]
        if quote == "'":
            if c == "'":
                quote = None
            else:
                word.append(c)
        elif c == "\\":
            n = line[i + 1]
            if n == "x":
                word.append(chr(int(line[i + 2:i + 4], 16)))
                i += 3
            else:
                word.append(escapes.get(n, n))
                i += 1
            in_word = True
        elif quote == '"':
            if c == '"':
                quote = None
            elif c == "$":
                raise AssertionError("an unescaped $ inside double quotes: HAProxy would expand an environment variable")
            else:
                word.append(c)
        elif c in "\"'":
            quote, in_word = c, True
        elif c in " \t":
            if in_word:
                words.append("".join(word))
            word, in_word = [], False
        elif c == "#":
            break
        else:
            word.append(c)
            in_word = True
        i += 1
    assert quote is None, "unmatched quote"
    if in_word:
        words.append("".join(word))
    return words


@pytest.mark.parametrize("value, expected", [
    ("plain", '"plain"'),
    ("two words", '"two words"'),
    ("pw#1", '"pw#1"'),
    ('say "hi"', '"say \\"hi\\""'),
    ("back\\slash", '"back\\\\slash"'),
    ("$HOME and ${PATH}", '"\\$HOME and \\${PATH}"'),
    ("it's", "\"it's\""),
    ("tab\there", '"tab\\x09here"'),
    ("line\nfeed\r", '"line\\x0afeed\\x0d"'),
    ("", '""'),
    (1234, '"1234"'),
    ("pässwörd", '"pässwörd"'),
])
def test_quoted_word(value, expected):
    assert haproxy_quote(value) == expected


@pytest.mark.parametrize("value", [
    "sensor-1 pw#\"x",
    "a b # c \" d \\ e $f ${g} ' h",
    "\\\\\"\"$$##''  ",
    "ends with a backslash \\",
    "\\x41 is not an A",
    "\\$ stays \\$",
    "tabs\tand\nnewlines\r\x7f",
    "ünïcödé and ∑",
    ":colon:in:the:password",
])
def test_haproxy_reads_back_exactly_the_value(value):
    line = "    user ops insecure-password %s # a comment after it" % haproxy_quote(value)
    assert _haproxy_words(line) == ["user", "ops", "insecure-password", value]


def test_the_reference_parser_reads_the_manuals_examples():
    # Section 2.2: these log-format lines are strictly equivalent.
    expected = ["log-format", "%{+Q}o %t %s %{-Q}r"]
    for line in ["log-format %{+Q}o\\ %t\\ %s\\ %{-Q}r", 'log-format "%{+Q}o %t %s %{-Q}r"', "log-format '%{+Q}o %t %s %{-Q}r'",
                 "log-format \"%{+Q}o %t\"' %s %{-Q}r'", "log-format \"%{+Q}o %t\"' %s'\\ %{-Q}r"]:
        assert _haproxy_words(line) == expected, line


def test_a_nul_is_refused_without_showing_the_value():
    with pytest.raises(AnsibleFilterError, match="NUL character at position 7") as err:
        haproxy_quote("secret\x00tail")
    assert "secret" not in str(err.value)


@pytest.mark.parametrize("value", [None, True, ["a"], {"a": 1}])
def test_needs_a_string(value):
    with pytest.raises(AnsibleFilterError, match="expects a string"):
        haproxy_quote(value)
