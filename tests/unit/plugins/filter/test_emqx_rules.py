# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for the EMQX rule filters (iothub.emq.emqx_*): each case is a value EMQX 5.8.9 accepts or refuses."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.iothub.emq.plugins.filter.emqx_rules import (
    emqx_api_key_problems,
    emqx_api_roles,
    emqx_bind_problems,
    emqx_dns_problem,
    emqx_password_problem,
    emqx_roots,
    emqx_unknown_roots,
)

SECRET = "s3cret-0123456789abcdef"


# ---- dashboard password (emqx_dashboard_admin:legal_password/1) -------------------------------------
@pytest.mark.parametrize("password", [
    "abcdefg1",                       # letters + digits, 8 characters
    "a" * 63 + "1",                   # 64 characters
    'Pa$$w0rd"`\\x',                  # the characters root's `su - emqx -c` mangles
    "only letters and spaces",       # letters + special (space)
    "12345678!",                      # digits + special
    "abcdefg1\\",                     # a backslash is allowed, it just counts as no kind
])
def test_passwords_emqx_accepts(password):
    assert emqx_password_problem(password) == ""


@pytest.mark.parametrize("password, reason", [
    ("abc1", "8 to 64 characters (this one has 4)"),
    ("a" * 64 + "1", "8 to 64 characters (this one has 65)"),
    ("abcdefgh", "two kinds"),
    ("12345678", "two kinds"),
    ("#$#$#$#$", "two kinds"),
    ("abcdefgh\\\\\\", "two kinds"),           # backslashes are no kind
    (u"p\u00e4ssword1", "ASCII characters only"),
])
def test_passwords_emqx_refuses(password, reason):
    problem = emqx_password_problem(password)
    assert reason in problem
    assert password not in problem


def test_password_must_be_a_string():
    assert emqx_password_problem(12345678) == "it must be a string"


# ---- API keys (emqx_mgmt_auth.erl) ------------------------------------------------------------------
def test_api_keys_valid_on_open_source():
    keys = [{"key": "ops", "secret": SECRET}, {"key": "health_check", "secret": SECRET, "role": "administrator"}]
    assert emqx_api_key_problems(keys, "5.8.9") == []


def test_viewer_is_refused_on_open_source_with_the_reason():
    problems = emqx_api_key_problems([{"key": "grafana", "secret": SECRET, "role": "viewer"}], "5.8.9")
    assert len(problems) == 1
    assert "key grafana: role viewer needs the enterprise edition (5.9+)" in problems[0]
    assert "every key after it" in problems[0]
    assert SECRET not in problems[0]


def test_viewer_and_publisher_are_fine_on_enterprise():
    keys = [{"key": "a", "secret": SECRET, "role": "viewer"}, {"key": "b", "secret": SECRET, "role": "publisher"}]
    assert emqx_api_key_problems(keys, "5.10.4") == []
    assert emqx_api_roles("5.9.0") == ["administrator", "viewer", "publisher"]
    assert emqx_api_roles("5.8.9") == ["administrator"]


@pytest.mark.parametrize("item, text", [
    ({"key": "a:b", "secret": SECRET}, "entry 1: key must be letters, digits, _ and -"),
    ({"key": "ops", "secret": "left:right-0123456789"}, "key ops: secret must be printable ASCII without spaces or ':'"),
    ({"key": "ops", "secret": SECRET + " "}, "without spaces"),
    ({"key": "ops", "secret": SECRET + "\n"}, "without spaces"),
    ({"key": "ops", "secret": "short-1"}, "at least 16 characters"),
    ({"key": "ops", "secret": SECRET, "role": "superuser"}, "role 'superuser' is not one of administrator"),
    ({"secret": SECRET}, "entry 1: key must be"),
    ("ops:" + SECRET, "entry 1 is not a {key, secret, role} mapping"),
])
def test_api_key_problems_name_the_key_not_the_secret(item, text):
    problems = emqx_api_key_problems([item], "5.8.9")
    assert any(text in p for p in problems), problems
    assert not any(SECRET in p or "left:right" in p for p in problems)


def test_api_key_listed_twice():
    keys = [{"key": "ops", "secret": SECRET}, {"key": "ops", "secret": SECRET}]
    assert emqx_api_key_problems(keys, "5.8.9") == ["key ops is listed twice"]


def test_api_keys_need_a_list_and_a_version():
    assert emqx_api_key_problems("ops:secret", "5.8.9") == ["emq_node_api_keys must be a list of {key, secret, role}"]
    with pytest.raises(AnsibleFilterError, match="EMQX version"):
        emqx_api_key_problems([], "latest")


# ---- listener binds (emqx_schema:to_ip_port/1) ------------------------------------------------------
def test_binds_emqx_accepts():
    assert emqx_bind_problems(["0.0.0.0:1883", "10.0.0.1:8083", "1883", 18083, "::1:1883", "[::1]:1883", ":::8883",
                               "[2001:db8::1]:18083"]) == []


def test_binds_emqx_refuses():
    bad = ["localhost:1883", "emqx-1.example:18083", "0.0.0.0:0", "0.0.0.0:65536", "1883x", "[::1:1883", "10.0.0.1:"]
    assert emqx_bind_problems(["0.0.0.0:1883"] + bad) == bad


def test_one_bind():
    assert emqx_bind_problems("localhost:18083") == ["localhost:18083"]


# ---- DNS discovery (emqx_conf_schema:validate_cluster_strategy/1) ----------------------------------
@pytest.mark.parametrize("name, record_type", [
    ("emqx@10.0.0.1", "a"),
    ("emqx@2001:db8::1", "aaaa"),
    ("emqx@emqx-1.mqtt.example", "srv"),
])
def test_dns_names_emqx_boots_with(name, record_type):
    assert emqx_dns_problem(name, record_type) == ""


@pytest.mark.parametrize("name, record_type, text", [
    ("emqx@emqx-1.example", "a", "unless the node name is name@<IPv4 address>"),
    ("emqx@2001:db8::1", "a", "name@<IPv4 address>"),
    ("emqx@10.0.0.1", "aaaa", "name@<IPv6 address>"),
    ("emqx@10.0.0.1", "srv", "<name>@<SRV target host>"),
    ("emqx@10.0.0.1", "txt", "record type must be a, aaaa or srv"),
])
def test_dns_names_emqx_refuses(name, record_type, text):
    assert text in emqx_dns_problem(name, record_type)


# ---- root keys (emqx_conf_schema:roots/0) -------------------------------------------------------------
def test_known_roots_include_what_the_role_writes_and_trace():
    for root in ("node", "cluster", "listeners", "dashboard", "api_key", "log", "mqtt", "trace", "authentication",
                 "authorization", "durable_sessions", "retainer", "rpc"):
        assert root in emqx_roots("5.8.9"), root
    assert "license" not in emqx_roots("5.8.9")
    assert "license" in emqx_roots("5.10.4")


def test_unknown_roots_are_listed():
    config = {"mqtt": {"max_packet_size": "2MB"}, "mqqt": {}, "logs": {}, "trace": {}}
    assert emqx_unknown_roots(config, "5.8.9") == ["logs", "mqqt"]
    assert emqx_unknown_roots({}, "5.8.9") == []
    assert emqx_unknown_roots({"license": {"key": "x"}}, "5.8.9") == ["license"]
    assert emqx_unknown_roots({"license": {"key": "x"}}, "5.10.4") == []


def test_unknown_roots_needs_a_mapping():
    with pytest.raises(AnsibleFilterError, match="expects a mapping"):
        emqx_unknown_roots(["mqtt"], "5.8.9")
