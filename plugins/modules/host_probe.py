#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


DOCUMENTATION = r"""
module: host_probe
short_description: Read, in one call, the packages, files, paths and services a role needs to know about a host
version_added: 0.3.0
description:
  - Reads everything a role asks about the host at one stage of its run in a single module call, instead of one
    task per C(package_facts), C(slurp), C(stat) and C(systemctl) question. It returns the installed version of each
    package of O(packages), the text of each file of O(read), whether each path of O(exists) exists, and whether each
    systemd unit of O(services) is enabled and running.
  - It never changes anything, and runs the same in check mode.
  - A file that does not exist, or cannot be read, is returned as V(null) in RV(files) (with the reason in
    RV(unreadable)); the module does not fail for it. A file larger than O(max_bytes) is an error.
  - Package versions come from C(dpkg-query) (Debian and Ubuntu, the platforms of the roles). On a host without
    C(dpkg-query) every package is reported as not installed.
author:
  - iothub.emq maintainers (@iothub)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - The module only reads; it reads the same in check mode.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
options:
  packages:
    description:
      - Names of packages whose installed version to report.
    type: list
    elements: str
    default: []
  read:
    description:
      - Absolute paths of text files to read (for example under C(/proc), or a file the role wrote on an earlier run).
      - Give the task C(no_log) when one of them holds a secret.
    type: list
    elements: path
    default: []
  exists:
    description:
      - Absolute paths to look for (files, directories or links, which are followed).
    type: list
    elements: path
    default: []
  services:
    description:
      - Names of systemd units (for example V(emqx.service)) whose state to report.
    type: list
    elements: str
    default: []
  checksums:
    description:
      - Absolute paths of files whose SHA-1 checksum to report, for example a live configuration and the copy kept
        beside it, to tell whether they are the same without reading either (which may hold a secret).
    type: list
    elements: path
    default: []
    version_added: 0.4.0
  count:
    description:
      - Files to count the lines of that match a regular expression. Only the count is returned, never a line,
        so a file that may hold a secret can be asked whether it holds a line of that kind.
    type: list
    elements: dict
    default: []
    version_added: 0.4.0
    suboptions:
      path:
        description:
          - Absolute path of the file. Each path may appear once.
        type: path
        required: true
      pattern:
        description:
          - A Python regular expression, searched in each line (C(re.search)); anchor it with C(^) to match at the
            start of a line.
        type: str
        required: true
  max_bytes:
    description:
      - The largest file of O(read) to return; a larger one fails the module (it is not what a role means to read).
    type: int
    default: 1048576
notes:
  - Text is decoded as UTF-8, with bytes that are not UTF-8 replaced.
"""

EXAMPLES = r"""
- name: Read what the node has now
  iothub.emq.host_probe:
    packages: [emqx]
    read:
      - /proc/sys/fs/nr_open
      - /etc/emqx-secrets/first-boot.json
    exists:
      - /etc/emqx/emqx.conf.last-good
    services:
      - emqx.service
    checksums:
      - /etc/haproxy/haproxy.cfg
      - /etc/haproxy/haproxy.cfg.last-good
    count:
      - path: /etc/haproxy/haproxy.cfg
        pattern: '^\s*stats\s+auth\s'
  register: __probe
  no_log: true  # first-boot.json holds a password

- name: Use it
  ansible.builtin.debug:
    msg: >-
      emqx {{ __probe.packages.emqx or 'is not installed' }},
      nr_open {{ __probe.files['/proc/sys/fs/nr_open'] | trim }},
      last good configuration: {{ __probe.exists['/etc/emqx/emqx.conf.last-good'] }},
      emqx.service {{ __probe.services['emqx.service'].active }},
      last good haproxy.cfg is the live one: {{ __probe.checksums['/etc/haproxy/haproxy.cfg']
      == __probe.checksums['/etc/haproxy/haproxy.cfg.last-good'] }},
      stats auth lines: {{ __probe.counts['/etc/haproxy/haproxy.cfg'] }}
"""

RETURN = r"""
packages:
  description: Each package of O(packages) and its installed version, or V(null) when it is not installed.
  returned: always
  type: dict
  sample: {"emqx": "5.8.9", "nftables": null}
files:
  description: Each path of O(read) and its text, or V(null) when it does not exist or cannot be read.
  returned: always
  type: dict
  sample: {"/proc/sys/fs/nr_open": "1048576\n"}
unreadable:
  description: Each path of O(read) that could not be read, with the reason (for example C(does not exist)).
  returned: always
  type: dict
  sample: {"/etc/emqx-secrets/authn-users.json": "does not exist"}
exists:
  description: Each path of O(exists) and whether it exists.
  returned: always
  type: dict
  sample: {"/etc/emqx/emqx.conf.last-good": true}
services:
  description:
    - Each unit of O(services) with systemd's C(LoadState) (V(not-found) for a unit systemd does not know),
      C(UnitFileState) (V(enabled), V(disabled), V(static), or empty) and C(ActiveState) (V(active), V(inactive),
      V(failed), ...). V(null) for every unit on a host without C(systemctl), or whose systemd does not answer
      (not booted with systemd).
  returned: always
  type: dict
  sample: {"emqx.service": {"load": "loaded", "enabled": "enabled", "active": "active"}}
checksums:
  description: Each path of O(checksums) and the SHA-1 checksum of its content, or V(null) when it does not exist.
  returned: always
  type: dict
  sample: {"/etc/haproxy/haproxy.cfg": "2aae6c35c94fcfb415dbe95f408b9ce91ee846ed", "/etc/haproxy/haproxy.cfg.last-good": null}
counts:
  description: Each path of O(count) and how many of its lines match its pattern, or V(null) when it does not exist.
  returned: always
  type: dict
  sample: {"/etc/haproxy/haproxy.cfg": 0}
"""

import errno
import os
import re

from ansible.module_utils.basic import AnsibleModule

# dpkg-query prints "<Package>\t<db:Status-Status>\t<Version>" for each name it knows.
DPKG_FORMAT = '${Package}\\t${db:Status-Status}\\t${Version}\\n'


def parse_dpkg(output, names):
    """Installed version of each name from dpkg-query output (None: not installed, or not known to dpkg)."""
    versions = dict((name, None) for name in names)
    for line in output.splitlines():
        fields = line.split('\t')
        if len(fields) != 3:
            continue
        package, status, version = fields
        # A multi-arch package is printed as name:arch by some dpkg versions.
        package = package.split(':', 1)[0]
        if package in versions and status == 'installed' and version:
            versions[package] = version
    return versions


SYSTEMCTL_PROPERTIES = {'LoadState': 'load', 'UnitFileState': 'enabled', 'ActiveState': 'active'}


def parse_systemctl_show(output, names):
    """State of each unit from "systemctl show --property=Id,LoadState,UnitFileState,ActiveState" output.

    systemctl prints one block of Key=Value lines per unit, in the order asked, separated by a blank line.
    """
    blocks = [block for block in output.strip().split('\n\n') if block.strip()]
    states = dict((name, None) for name in names)
    for name, block in zip(names, blocks):
        fields = dict(line.split('=', 1) for line in block.splitlines() if '=' in line)
        states[name] = dict((key, fields.get(prop, '')) for prop, key in SYSTEMCTL_PROPERTIES.items())
    return states


def read_text(path, max_bytes):
    """(text, None) or (None, reason); raises ValueError for a file larger than max_bytes."""
    try:
        with open(path, 'rb') as handle:
            data = handle.read(max_bytes + 1)
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None, 'does not exist'
        return None, exc.strerror or str(exc)
    if len(data) > max_bytes:
        raise ValueError('%s is larger than max_bytes (%d)' % (path, max_bytes))
    return data.decode('utf-8', errors='replace'), None


def count_matching_lines(path, pattern):
    """How many lines of the file match the compiled pattern, or None when it does not exist. Lines never leave."""
    try:
        with open(path, 'rb') as handle:
            return sum(1 for line in handle if pattern.search(line.decode('utf-8', errors='replace')))
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise


def main():
    module = AnsibleModule(
        argument_spec=dict(
            packages=dict(type='list', elements='str', default=[]),
            read=dict(type='list', elements='path', default=[]),
            exists=dict(type='list', elements='path', default=[]),
            services=dict(type='list', elements='str', default=[]),
            max_bytes=dict(type='int', default=1048576),
            checksums=dict(type='list', elements='path', default=[]),
            count=dict(type='list', elements='dict', default=[], options=dict(
                path=dict(type='path', required=True),
                pattern=dict(type='str', required=True),
            )),
        ),
        supports_check_mode=True,
    )
    names = module.params['packages']
    packages = dict((name, None) for name in names)
    if names:
        dpkg_query = module.get_bin_path('dpkg-query')
        if dpkg_query:
            # Exit 1 only means some name is unknown to dpkg: the others are still printed.
            rc, out, err = module.run_command([dpkg_query, '-W', '-f', DPKG_FORMAT] + names)
            if rc not in (0, 1):
                module.fail_json(msg='dpkg-query failed (%d): %s' % (rc, err.strip()))
            packages = parse_dpkg(out, names)

    files, unreadable = {}, {}
    for path in module.params['read']:
        try:
            files[path], reason = read_text(path, module.params['max_bytes'])
        except ValueError as exc:
            module.fail_json(msg=str(exc))
        if reason:
            unreadable[path] = reason

    exists = dict((path, os.path.exists(path)) for path in module.params['exists'])

    checksums = {}
    for path in module.params['checksums']:
        if os.path.isdir(path):
            module.fail_json(msg='%s is a directory: checksums takes files' % path)
        checksums[path] = module.sha1(path) if os.path.exists(path) else None

    counts = {}
    for item in module.params['count']:
        path = item['path']
        if path in counts:
            module.fail_json(msg='%s appears more than once in count: give each file one pattern' % path)
        try:
            pattern = re.compile(item['pattern'])
        except re.error as exc:
            module.fail_json(msg='The pattern for %s is not a regular expression: %s' % (path, exc))
        try:
            counts[path] = count_matching_lines(path, pattern)
        except (IOError, OSError) as exc:
            module.fail_json(msg='Cannot read %s: %s' % (path, exc.strerror or exc))

    units = module.params['services']
    services = dict((name, None) for name in units)
    systemctl = module.get_bin_path('systemctl') if units else None
    if systemctl:
        rc, out, err = module.run_command([systemctl, 'show', '--property=Id,' + ','.join(SYSTEMCTL_PROPERTIES)] + units)
        # Not booted with systemd (a container without it, a chroot): the states are unknown, not an error.
        if rc == 0:
            services = parse_systemctl_show(out, units)
    module.exit_json(changed=False, packages=packages, files=files, unreadable=unreadable, exists=exists,
                     services=services, checksums=checksums, counts=counts)


if __name__ == '__main__':
    main()
