#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


DOCUMENTATION = r"""
module: config_files
short_description: Write several configuration files of a host in one call, each only when it differs
version_added: 0.3.0
description:
  - Writes each file of O(files) with the content, owner, group and mode given, in a single module call, where
    C(ansible.builtin.template) or C(ansible.builtin.copy) take two calls per file (a C(stat), then a C(file) or
    a copy) even when nothing changes. Render the content on the controller first, for example with
    C(lookup('ansible.builtin.template', 'emqx.conf.j2')).
  - A file whose content is already the one given is not written again; its owner, group and mode are still
    set when they differ. A file whose content differs is written to a temporary file next to it, checked with
    its O(files[].validate) command when there is one, and moved over the old file in one step, so a reader
    never sees half a file.
  - O(directories) are created (with their parents) or given their owner, group and mode first, so the files
    may go into them.
  - Check mode reports what would change, and diff mode shows it, without writing anything. A file whose
    directory is missing in check mode is reported as a change (the run would create it).
  - Give the task C(no_log) and C(diff) V(false) when a file holds a secret (the content travels in the
    module's arguments), and keep secret files in a task of their own so the other files still show their diff.
  - The task is C(changed) when any file or directory changed; RV(changed_paths) names them, for a
    handler that only some files need.
author:
  - iothub.emq maintainers (@iothub)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - Nothing is written; the result says what would change.
  diff_mode:
    support: full
    details:
      - One entry per changed file (content, owner, group, mode) or directory.
  platform:
    support: full
    platforms: posix
options:
  files:
    description:
      - The files to write.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path of the file.
        type: path
        required: true
      content:
        description: The whole text of the file (written as UTF-8, byte for byte, with no newline added).
        type: str
        required: true
      owner:
        description: Owner of the file (name or number). Unset keeps the owner a new file gets, root when run as root.
        type: str
      group:
        description: Group of the file (name or number).
        type: str
      mode:
        description: Permissions of the file, as an octal string like V('0640').
        type: raw
      validate:
        description:
          - A command that checks a new content before it replaces the file, with C(%s) where the path of the
            temporary file goes (for example V(nft -c -f %s)). The file is not written when the command fails.
          - Run without a shell.
        type: str
  copies:
    description:
      - Files of the host to copy to another path of the host, after O(files), each only when the copy differs
        (for example a configuration to the C(.last-good) copy kept beside it).
      - The content never travels in the module's arguments, and the diff names the source and the checksums, never
        the content, so copies of files that hold secrets need neither C(no_log) nor C(diff=false).
    type: list
    elements: dict
    default: []
    version_added: 0.4.0
    suboptions:
      src:
        description: Absolute path of the file to copy.
        type: path
        required: true
      path:
        description: Absolute path of the copy.
        type: path
        required: true
      owner:
        description: Owner of the copy (name or number).
        type: str
      group:
        description: Group of the copy (name or number).
        type: str
      mode:
        description: Permissions of the copy, as an octal string like V('0640'). Unset gives the copy the mode of O(copies[].src).
        type: raw
      missing:
        description:
          - What to do when O(copies[].src) does not exist. V(fail) fails the task before anything is copied; V(skip)
            leaves that copy out (RV(missing) names it).
        type: str
        choices: [fail, skip]
        default: fail
  directories:
    description:
      - Directories to create (parents included) or to give their owner, group and mode, before the files.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path of the directory.
        type: path
        required: true
      owner:
        description: Owner of the directory.
        type: str
      group:
        description: Group of the directory.
        type: str
      mode:
        description: Permissions of the directory, as an octal string like V('0750').
        type: raw
notes:
  - Paths must be absolute, and a path may appear only once.
seealso:
  - module: ansible.builtin.template
  - module: ansible.builtin.copy
"""

EXAMPLES = r"""
- name: Write the files EMQX reads at start
  iothub.emq.config_files:
    directories:
      - {path: /etc/emqx-secrets, owner: root, group: emqx, mode: "0750"}
    files:
      - path: /etc/emqx/emqx.conf
        content: "{{ lookup('ansible.builtin.template', 'emqx.conf.j2') }}"
        owner: emqx
        group: emqx
        mode: "0644"
      - path: /etc/emqx/acl.conf
        content: "{{ lookup('ansible.builtin.template', 'acl.conf.j2') }}"
        owner: emqx
        group: emqx
        mode: "0644"
  notify: Restart EMQX

- name: Write the firewall table, checked by nft before it replaces the old one
  iothub.emq.config_files:
    files:
      - path: /etc/nftables-emqx.nft
        content: "{{ lookup('ansible.builtin.template', 'emqx.nft.j2') }}"
        mode: "0644"
        validate: nft -c -f %s
  register: __firewall
- name: Keep the configuration EMQX runs healthy on beside it, in one module run
  iothub.emq.config_files:
    copies:
      - {src: /etc/emqx/emqx.conf, path: /etc/emqx/emqx.conf.last-good, owner: emqx, group: emqx}
      - {src: /etc/emqx/acl.conf, path: /etc/emqx/acl.conf.last-good, owner: emqx, group: emqx, missing: skip}
"""

RETURN = r"""
changed_paths:
  description: The files and directories that changed (or would change, in check mode), in the order given.
  returned: always
  type: list
  elements: str
  sample: ["/etc/emqx/emqx.conf"]
written:
  description: The files whose content was written (or would be), a subset of RV(changed_paths).
  returned: always
  type: list
  elements: str
  sample: ["/etc/emqx/emqx.conf"]
missing:
  description: The O(copies[].src) files that did not exist and were skipped (O(copies[].missing=skip)).
  returned: always
  type: list
  elements: str
  sample: ["/etc/emqx/acl.conf"]
  version_added: 0.4.0
"""

import hashlib
import os
import shlex
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native, to_text


def read_bytes(path):
    """The file's bytes, or None when it does not exist."""
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except (IOError, OSError) as exc:
        if not os.path.exists(path):
            return None
        raise exc


def file_args(module, item, path=None):
    """The common file arguments AnsibleModule's attribute helpers take."""
    params = {
        'path': path or item['path'], 'owner': item.get('owner'), 'group': item.get('group'),
        'mode': item.get('mode'), 'seuser': None, 'serole': None, 'setype': None, 'selevel': None,
        'attributes': None, 'unsafe_writes': False,
    }
    return module.load_file_common_arguments(params)


def check_unique(module, items):
    """Fail when a path is relative or given twice."""
    seen = set()
    for item in items:
        path = item['path']
        if not os.path.isabs(path):
            module.fail_json(msg='%s is not an absolute path' % path)
        if path in seen:
            module.fail_json(msg='%s is given twice' % path)
        seen.add(path)


def ensure_directory(module, item):
    """(changed, diff) for one directory, created with its parents when missing."""
    path = item['path']
    diff = {'before': {'path': path}, 'after': {'path': path}}
    if not os.path.isdir(path):
        if os.path.exists(path):
            module.fail_json(msg='%s exists and is not a directory' % path)
        diff['before']['state'] = 'absent'
        diff['after']['state'] = 'directory'
        if module.check_mode:
            return True, diff
        os.makedirs(path)
        module.set_fs_attributes_if_different(file_args(module, item), True)
        return True, diff
    changed = module.set_fs_attributes_if_different(file_args(module, item), False, diff=diff)
    return changed, diff


def validate(module, command, path):
    if '%s' not in command:
        module.fail_json(msg='validate must contain %%s, where the path of the new file goes: %s' % command)
    argv = [arg.replace('%s', path) for arg in shlex.split(command)]
    rc, out, err = module.run_command(argv)
    if rc != 0:
        # Worded as ansible.builtin.template and copy word it.
        module.fail_json(msg='failed to validate (%s exited %d): %s' % (argv[0], rc, (err or out).strip()),
                         rc=rc, stdout=out, stderr=err)


def write_file(module, item):
    """(changed, written, diff) for one file."""
    path = item['path']
    new = item['data'] if item.get('data') is not None else to_bytes(item['content'], errors='surrogate_or_strict')
    old = read_bytes(path)
    diff = {'before_header': path, 'after_header': path}
    if old == new:
        changed = module.set_fs_attributes_if_different(file_args(module, item), False, diff=diff)
        return changed, False, diff

    diff['before'] = to_text(old, errors='surrogate_or_replace') if old is not None else ''
    diff['after'] = to_text(new, errors='surrogate_or_replace')
    directory = os.path.dirname(path)
    if module.check_mode:
        return True, True, diff
    if not os.path.isdir(directory):
        module.fail_json(msg='cannot write %s: the directory %s does not exist' % (path, directory))

    handle, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), dir=directory)
    try:
        with os.fdopen(handle, 'wb') as out:
            out.write(new)
        module.set_fs_attributes_if_different(file_args(module, item, tmp), True)
        if item.get('validate'):
            validate(module, item['validate'], tmp)
        module.atomic_move(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    # atomic_move keeps the old file's attributes: give the ones asked for.
    module.set_fs_attributes_if_different(file_args(module, item), True)
    return True, True, diff


def copy_file(module, item):
    """(changed, written, diff) for one copy; the diff holds checksums, never the content."""
    path, src = item['path'], item['src']
    new = read_bytes(src)
    if item.get('mode') is None:
        item = dict(item, mode='0%03o' % (os.stat(src).st_mode & 0o7777))
    old = read_bytes(path)
    diff = {'before_header': path, 'after_header': path}
    if old == new:
        changed = module.set_fs_attributes_if_different(file_args(module, item), False, diff=diff)
        return changed, False, diff
    diff['before'] = 'sha1 %s\n' % hashlib.sha1(old).hexdigest() if old is not None else ''
    diff['after'] = 'copy of %s, sha1 %s\n' % (src, hashlib.sha1(new).hexdigest())
    if module.check_mode:
        return True, True, diff
    return write_file(module, dict(item, content=None, data=new))[0], True, diff


def main():
    attributes = dict(owner=dict(type='str'), group=dict(type='str'), mode=dict(type='raw'))
    module = AnsibleModule(
        argument_spec=dict(
            files=dict(type='list', elements='dict', default=[], options=dict(
                path=dict(type='path', required=True),
                content=dict(type='str', required=True),
                validate=dict(type='str'),
                **attributes)),
            directories=dict(type='list', elements='dict', default=[], options=dict(
                path=dict(type='path', required=True),
                **attributes)),
            copies=dict(type='list', elements='dict', default=[], options=dict(
                src=dict(type='path', required=True),
                path=dict(type='path', required=True),
                missing=dict(type='str', choices=['fail', 'skip'], default='fail'),
                **attributes)),
        ),
        supports_check_mode=True,
    )
    check_unique(module, module.params['directories'] + module.params['files'] + module.params['copies'])
    copies, missing = [], []
    for item in module.params['copies']:
        if not os.path.isabs(item['src']):
            module.fail_json(msg='%s is not an absolute path' % item['src'])
        if os.path.isfile(item['src']):
            copies.append(item)
        elif os.path.exists(item['src']):
            module.fail_json(msg='cannot copy %s: it is not a regular file' % item['src'])
        elif item['missing'] == 'skip':
            missing.append(item['src'])
        else:
            module.fail_json(msg='cannot copy %s to %s: %s does not exist' % (item['src'], item['path'], item['src']))

    changed_paths, written, diffs = [], [], []
    try:
        for item in module.params['directories']:
            changed, diff = ensure_directory(module, item)
            if changed:
                changed_paths.append(item['path'])
                diffs.append(diff)
        for write, item in [(write_file, f) for f in module.params['files']] + [(copy_file, c) for c in copies]:
            changed, content_written, diff = write(module, item)
            if changed:
                changed_paths.append(item['path'])
                diffs.append(diff)
            if content_written:
                written.append(item['path'])
    except (IOError, OSError) as exc:
        module.fail_json(msg='cannot write %s: %s' % (getattr(exc, 'filename', None) or '', to_native(exc)))

    result = dict(changed=bool(changed_paths), changed_paths=changed_paths, written=written, missing=missing)
    if module._diff:
        result['diff'] = diffs
    module.exit_json(**result)


if __name__ == '__main__':
    main()
