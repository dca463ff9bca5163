# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for the iothub.emq.emqx_password_hash, emqx_authn_user_problems and emqx_bootstrap_users filters.

The expected hashes are computed here with hashlib, following emqx_passwd:hash/2 of EMQX 5.8.9: the hex digest,
lower case, of salt ++ password (prefix), password ++ salt (suffix) or the password (disable).
"""

from __future__ import annotations

import hashlib
import json

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.iothub.emq.plugins.filter.emqx_authn import (
    FilterModule,
    emqx_authn_user_problems,
    emqx_bootstrap_users,
    emqx_password_hash,
)


PW = 'S3cret-pw \u00e9'
SALT = 'c0ffee\u00fc'
SHA256 = hashlib.sha256(b'x').hexdigest()


def test_the_filters_are_registered():
    assert set(FilterModule().filters()) == {'emqx_password_hash', 'emqx_authn_user_problems', 'emqx_bootstrap_users'}


# -- emqx_password_hash ------------------------------------------------------------------------


@pytest.mark.parametrize('name, hashlib_name', [('md5', 'md5'), ('sha', 'sha1'), ('sha256', 'sha256'), ('sha512', 'sha512')])
@pytest.mark.parametrize('position', ['prefix', 'suffix', 'disable'])
def test_simple_hashes(name, hashlib_name, position):
    data = {'prefix': SALT + PW, 'suffix': PW + SALT, 'disable': PW}[position].encode('utf-8')
    assert emqx_password_hash(PW, SALT, name, position) == hashlib.new(hashlib_name, data).hexdigest()


def test_defaults_are_sha256_with_the_salt_after_the_password():
    assert emqx_password_hash('pw', 'salt') == hashlib.sha256(b'pwsalt').hexdigest()
    assert emqx_password_hash('pw') == hashlib.sha256(b'pw').hexdigest()


def test_known_vector():
    # sha256("passwordsalt"), independent of any code here.
    assert emqx_password_hash('password', 'salt') == '7a37b85c8918eac19a9089c0fa5a2ab4dce3f90528dcdeec108b23ddf3607b99'


def test_hashes_are_lower_case_hex():
    value = emqx_password_hash('pw', 'salt', 'sha512', 'prefix')
    assert value == value.lower() and len(value) == 128


@pytest.mark.parametrize('position, expected', [('prefix', 'saltpw'), ('suffix', 'pwsalt'), ('disable', 'pw')])
def test_plain(position, expected):
    assert emqx_password_hash('pw', 'salt', 'plain', position) == expected


def test_mapping_algorithm_follows_emqx_defaults():
    assert emqx_password_hash('pw', 'salt', {'name': 'sha256', 'salt_position': 'suffix'}) == hashlib.sha256(b'pwsalt').hexdigest()
    # A mapping without salt_position means EMQX's default, prefix.
    assert emqx_password_hash('pw', 'salt', {'name': 'md5'}) == hashlib.md5(b'saltpw').hexdigest()
    # An explicit argument wins over the mapping.
    assert emqx_password_hash('pw', 'salt', {'name': 'md5', 'salt_position': 'prefix'}, 'disable') == hashlib.md5(b'pw').hexdigest()


@pytest.mark.parametrize('mac_fun, hashlib_name, size', [
    ('sha', 'sha1', 20), ('sha224', 'sha224', 28), ('sha256', 'sha256', 32), ('sha384', 'sha384', 48), ('sha512', 'sha512', 64),
])
def test_pbkdf2(mac_fun, hashlib_name, size):
    expected = hashlib.pbkdf2_hmac(hashlib_name, PW.encode('utf-8'), SALT.encode('utf-8'), 17, size).hex()
    algorithm = {'name': 'pbkdf2', 'mac_fun': mac_fun, 'iterations': 17}
    assert emqx_password_hash(PW, SALT, algorithm) == expected
    assert emqx_password_hash(PW, SALT, 'pbkdf2', mac_fun=mac_fun, iterations=17) == expected


def test_pbkdf2_dk_length():
    expected = hashlib.pbkdf2_hmac('sha256', b'pw', b'salt', 3, 16).hex()
    assert emqx_password_hash('pw', 'salt', {'name': 'pbkdf2', 'mac_fun': 'sha256', 'iterations': 3, 'dk_length': 16}) == expected


@pytest.mark.parametrize('algorithm, words', [
    ('bcrypt', ['bcrypt is not supported', 'random salt']),
    ({'name': 'bcrypt', 'salt_rounds': 10}, ['bcrypt is not supported']),
    ('sha3', ['unknown password hash algorithm']),
    (42, ['must be a name']),
    ({'name': 'pbkdf2', 'mac_fun': 'md5', 'iterations': 1}, ['refused by EMQX since 5.8.3']),
    ({'name': 'pbkdf2', 'iterations': 1}, ['needs mac_fun']),
    ({'name': 'pbkdf2', 'mac_fun': 'sha256'}, ['needs iterations']),
    ({'name': 'pbkdf2', 'mac_fun': 'sha256', 'iterations': 0}, ['needs iterations']),
    ({'name': 'sha256', 'salt_position': 'middle'}, ['salt_position must be one of']),
])
def test_refused_algorithms(algorithm, words):
    with pytest.raises(AnsibleFilterError) as caught:
        emqx_password_hash('Very-Secret-1', 'Salty-Salt-2', algorithm)
    message = str(caught.value)
    for word in words:
        assert word in message
    assert 'Very-Secret-1' not in message and 'Salty-Salt-2' not in message


@pytest.mark.parametrize('password, salt', [(None, ''), (1234, ''), ('pw', 1234)])
def test_non_string_inputs_are_refused(password, salt):
    with pytest.raises(AnsibleFilterError):
        emqx_password_hash(password, salt)


def test_none_salt_is_empty():
    assert emqx_password_hash('pw', None) == hashlib.sha256(b'pw').hexdigest()


# -- emqx_authn_user_problems --------------------------------------------------------------------


def good(user_id='sensor-0001', **extra):
    entry = dict(user_id=user_id, password_hash=emqx_password_hash('pw-' + user_id, 'salt-' + user_id),
                 salt='salt-' + user_id, is_superuser=False)
    entry.update(extra)
    return entry


def test_a_good_list_has_no_problem():
    users = [good(), good('backend', is_superuser=True), {'user_id': 'bare', 'password_hash': SHA256}]
    assert emqx_authn_user_problems(users) == []
    assert emqx_authn_user_problems([]) == []


@pytest.mark.parametrize('value, words', [
    ('sensor', ['must be a list', 'a string']),
    ({'user_id': 'a'}, ['must be a list', 'dict']),
    (None, ['must be a list']),
])
def test_not_a_list(value, words):
    problems = emqx_authn_user_problems(value)
    assert len(problems) == 1
    assert problems[0].startswith('emq_node_authn_users ')
    for word in words:
        assert word in problems[0]


def test_entry_not_a_mapping():
    assert emqx_authn_user_problems([good(), 'sensor-2']) == [
        'emq_node_authn_users[1] is not a mapping; write {user_id: ..., password_hash: ..., salt: ..., is_superuser: ...}']


def test_unknown_keys_name_the_known_ones():
    problems = emqx_authn_user_problems([good(passwd='x', superuser=True)])
    assert len(problems) == 1
    assert problems[0].startswith('emq_node_authn_users[0] (user sensor-0001) has the unknown keys passwd, superuser')
    assert 'user_id, password_hash, salt, is_superuser' in problems[0]


def test_a_password_key_gets_the_hash_hint_and_is_never_quoted():
    problems = emqx_authn_user_problems([good(password='Plain-Text-Pw-77')])
    assert len(problems) == 1
    assert 'never put a password here' in problems[0]
    assert "iothub.emq.emqx_password_hash('the-salt'" in problems[0]
    assert 'Plain-Text-Pw-77' not in problems[0]


@pytest.mark.parametrize('entry, text', [
    ({'password_hash': SHA256}, 'emq_node_authn_users[0] has no user_id'),
    ({'user_id': '', 'password_hash': SHA256}, 'emq_node_authn_users[0] has no user_id'),
    ({'user_id': None, 'password_hash': SHA256}, 'emq_node_authn_users[0] has no user_id'),
    ({'user_id': 1, 'password_hash': SHA256}, 'emq_node_authn_users[0]: user_id must be a string, quote it'),
    ({'user_id': 'u'}, 'emq_node_authn_users[0] (user u) has no password_hash; write password_hash: "{{'),
    ({'user_id': 'u', 'password_hash': ''}, 'emq_node_authn_users[0] (user u) has no password_hash'),
    ({'user_id': 'u', 'password_hash': 12345}, 'emq_node_authn_users[0] (user u): password_hash must be a string'),
])
def test_missing_or_mistyped_fields(entry, text):
    problems = emqx_authn_user_problems([entry])
    assert len(problems) == 1
    assert problems[0].startswith(text)


def test_duplicate_user_id():
    problems = emqx_authn_user_problems([good('a'), good('b'), good('a')])
    assert problems == ['emq_node_authn_users[2] (user a): user_id a is listed twice (first at emq_node_authn_users[0]); '
                        'EMQX keeps one record per user_id']


@pytest.mark.parametrize('bad_hash', [
    SHA256.upper(),                # EMQX writes lower case
    SHA256[:-1],                   # too short
    SHA256 + 'ab',                 # too long
    'g' * 64,                      # not hex
    hashlib.md5(b'x').hexdigest(),  # another algorithm's length
])
def test_hash_of_the_wrong_shape(bad_hash):
    problems = emqx_authn_user_problems([good(password_hash=bad_hash)])
    assert len(problems) == 1
    text = problems[0]
    assert text.startswith('emq_node_authn_users[0] (user sensor-0001): password_hash cannot be a sha256 hash')
    assert '64 lower-case hex digits' in text
    assert "{{ 'the-password' | iothub.emq.emqx_password_hash('the-salt'" in text
    assert bad_hash not in text


@pytest.mark.parametrize('algorithm, good_hash, bad_hash', [
    ('md5', hashlib.md5(b'x').hexdigest(), SHA256),
    ('sha', hashlib.sha1(b'x').hexdigest(), SHA256),
    ('sha512', hashlib.sha512(b'x').hexdigest(), SHA256),
    ({'name': 'sha256', 'salt_position': 'prefix'}, SHA256, hashlib.md5(b'x').hexdigest()),
    ('plain', 'any text at all', ''),
    ('pbkdf2', 'ab' * 20, 'abc'),
    ({'name': 'pbkdf2', 'mac_fun': 'sha512', 'iterations': 2}, 'ab' * 64, 'ab' * 32),
    ({'name': 'pbkdf2', 'mac_fun': 'sha256', 'iterations': 2, 'dk_length': 8}, 'ab' * 8, 'ab' * 32),
    ('bcrypt', '$2b$10$' + 'a' * 53, SHA256),
])
def test_hash_shape_follows_the_algorithm(algorithm, good_hash, bad_hash):
    assert emqx_authn_user_problems([good(password_hash=good_hash)], algorithm) == []
    problems = emqx_authn_user_problems([good(password_hash=bad_hash)], algorithm)
    assert len(problems) == 1 and 'password_hash' in problems[0]


def test_unknown_algorithm_is_a_problem_not_a_crash():
    problems = emqx_authn_user_problems([good()], 'sha3')
    assert problems == ["emq_node_authn_users cannot be checked: unknown password hash algorithm 'sha3'; EMQX knows "
                        "plain, md5, sha, sha256, sha512, pbkdf2 and bcrypt"]


@pytest.mark.parametrize('user_id, code', [('sensor\n', 'U+000A'), ('a\x00b', 'U+0000'), ('tab\there', 'U+0009'),
                                           ('del\x7f', 'U+007F'), ('c1\x85', 'U+0085')])
def test_user_id_with_characters_mqtt_cannot_carry(user_id, code):
    problems = emqx_authn_user_problems([good(user_id)])
    assert len(problems) == 1
    assert problems[0].startswith('emq_node_authn_users[0]: user_id holds the control character ' + code)
    assert 'could never log in' in problems[0]


def test_user_id_with_unicode_and_punctuation_is_fine():
    assert emqx_authn_user_problems([good('capteur-\u00e9t\u00e9/7 #1')]) == []


def test_lone_surrogate():
    problems = emqx_authn_user_problems([good(salt='ab\ud800')])
    assert len(problems) == 1 and 'salt holds U+D800' in problems[0]


@pytest.mark.parametrize('salt, text', [
    (None, "salt is null (an empty YAML value); write salt: '' or leave the key out"),
    (1234, 'salt must be a string, quote it'),
    (12.5, 'salt must be a string, quote it'),
])
def test_salt_that_is_not_a_string(salt, text):
    problems = emqx_authn_user_problems([good(salt=salt)])
    assert problems == ['emq_node_authn_users[0] (user sensor-0001): ' + text + (
        '' if salt is None else ' (the bootstrap file would otherwise hold a number, and EMQX cannot hash with a salt '
        'that is not a string)')]


@pytest.mark.parametrize('flag, kind', [('yes', 'a string'), (1, 'int'), (None, 'NoneType')])
def test_is_superuser_not_a_boolean(flag, kind):
    problems = emqx_authn_user_problems([good(is_superuser=flag)])
    assert problems == ['emq_node_authn_users[0] (user sensor-0001): is_superuser must be true or false, not ' + kind]


def test_no_message_ever_quotes_a_hash_or_salt():
    users = [good('a', password_hash='DEADBEEF' * 8, salt=5), good('a', password='Hunter2-Secret', salt='Salt-Of-A'),
             {'user_id': 'b\n', 'password_hash': 'ZZ-Not-Hex-ZZ', 'salt': 'Salt-Of-B', 'is_superuser': 'no'}]
    text = ' '.join(emqx_authn_user_problems(users))
    for secret in ('DEADBEEF', 'Hunter2-Secret', 'Salt-Of-A', 'ZZ-Not-Hex-ZZ', 'Salt-Of-B', users[1]['password_hash']):
        assert secret not in text


# -- emqx_bootstrap_users ----------------------------------------------------------------------------


def test_reads_back_what_the_role_writes():
    users = [good(), good('backend', is_superuser=True), good('no-salt', salt='')]
    text = json.dumps(users, indent=2, sort_keys=True)  # what to_nice_json writes
    assert emqx_bootstrap_users(text) == users
    assert emqx_bootstrap_users(text.encode('utf-8')) == users


@pytest.mark.parametrize('text', [None, '', '   \n', 'not json', '{"user_id": "a"}', '[1, 2', b'\xff\xfe', 42, '"text"'])
def test_empty_or_unreadable_gives_nothing(text):
    assert emqx_bootstrap_users(text) == []


def test_entries_are_read_as_emqx_reads_them():
    text = json.dumps([
        {'user_id': 'a', 'password_hash': 'h1', 'is_superuser': 'true'},   # no salt, "true"
        {'user_id': 'a', 'password_hash': 'h2', 'salt': 's'},              # second record of a: dropped
        {'user_id': 'b', 'password_hash': 'h3', 'salt': 7, 'is_superuser': 1},
        {'user_id': 12, 'password_hash': 'h4'},                             # not a string user_id
        {'password_hash': 'h5'},
        'stray',
        {'user_id': 'c'},
    ])
    assert emqx_bootstrap_users(text) == [
        {'user_id': 'a', 'password_hash': 'h1', 'salt': '', 'is_superuser': True},
        {'user_id': 'b', 'password_hash': 'h3', 'salt': '', 'is_superuser': False},
        {'user_id': 'c', 'password_hash': '', 'salt': '', 'is_superuser': False},
    ]
