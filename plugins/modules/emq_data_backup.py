#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


DOCUMENTATION = r"""
module: emq_data_backup
short_description: Export the data of an EMQX 5 cluster to an archive, or import such an archive
version_added: 0.3.0
description:
  - With O(state=exported), runs C(emqx ctl data export) on the managed host. EMQX writes one C(.tar.gz) archive with the
    cluster's configuration (what was changed through the dashboard, the REST API or C(emqx ctl), with the files it
    refers to under the node's data directory) and its built-in database (users of the built-in authenticator, API keys,
    dashboard users, retained messages, rules and the like). The module returns its path.
  - With O(state=imported), runs C(emqx ctl data import) with the archive O(src). EMQX writes its configuration and tables
    into the cluster, so an import on one core node reaches every node.
  - Decides from what EMQX prints, not from its exit code, because EMQX 5.8 exits 0 when an export or an import fails.
  - Reads C(emqx ctl status) first, and fails with a message saying what it printed when EMQX does not answer.
author:
  - iothub.emq maintainers (@iothub)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - iothub.emq.emqx_cli
attributes:
  check_mode:
    support: full
    details:
      - In check mode the module runs no C(emqx ctl) command. It checks O(src) (it must exist and be an archive of
        C(emqx ctl data export)) and reports a change for both states.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
options:
  state:
    description:
      - V(exported) writes a new archive of the cluster's data (C(emqx ctl data export)); every run writes one more file.
      - V(imported) imports the archive O(src) into the cluster (C(emqx ctl data import)); every run writes the data again.
    type: str
    choices: [exported, imported]
    required: true
  dir:
    description:
      - With O(state=exported), the directory on the managed host where EMQX writes the archive (C(--dir)). Absolute path.
      - It must exist and the C(emqx) user must be able to write to it, because the EMQX node writes the file itself. The
        module does not create it (see the examples).
      - Omitted, EMQX writes to C(backup) under the node's data directory (C(/var/lib/emqx/backup) for the package).
      - Not allowed with O(state=imported).
    type: path
  src:
    description:
      - With O(state=imported), path of the archive on the managed host. Absolute path. Required with O(state=imported).
      - The C(emqx) user must be able to read it, because the EMQX node reads the file itself.
      - EMQX only imports a file whose name is the name of the directory inside it plus C(.tar.gz), that is the name
        C(emqx ctl data export) gave it (C(emqx-export-<date>.tar.gz)). An archive that was renamed is imported through
        a hard link (or a copy) with that name beside it, removed afterwards.
      - Not allowed with O(state=exported).
    type: path
notes:
  - The archive holds secrets (hashes of the passwords of devices and dashboard users, API key secrets, the keys of
    certificates kept in the data directory). Keep it as you keep the cookie.
  - "It does not hold the node's own files: C(/etc/emqx/emqx.conf), the cookie, the bootstrap files. The playbook
    C(iothub.emq.backup) saves those next to it."
  - "C(emqx ctl) passes its arguments to the C(emqx) user through C(su -c \"...\"), so O(dir) and O(src) must not contain
    C(\"), C($), C(`) or C(\\)."
  - An import needs a core node (every node of this collection's deployments is one), and the archive must come from an
    EMQX whose minor version is not newer than the cluster's (an archive of 5.9 does not go into 5.8).
  - What EMQX logs while it exports or imports goes to its log file, C(/var/log/emqx/emqx.log.*) for the package.
seealso:
  - module: iothub.emq.emq_cluster_info
    description: Read the state of the node and the members of its cluster.
  - name: EMQX data import and export
    description: What C(emqx ctl data export) saves and how an import applies it.
    link: https://docs.emqx.com/en/emqx/latest/operations/import-export.html
  - name: EMQX command line
    description: Reference of C(emqx ctl).
    link: https://docs.emqx.com/en/emqx/latest/admin/cli.html
"""

EXAMPLES = r"""
- name: Make the directory the archive goes to (EMQX writes it as the emqx user)
  ansible.builtin.file:
    path: /var/lib/emqx/iothub-backup
    state: directory
    owner: emqx
    group: emqx
    mode: "0700"

- name: Export the data of the cluster
  iothub.emq.emq_data_backup:
    state: exported
    dir: /var/lib/emqx/iothub-backup
  register: emq_export

- name: Bring the archive to the controller
  ansible.builtin.fetch:
    src: "{{ emq_export.path }}"
    dest: /srv/backups/emqx/
    flat: true

- name: Import an archive into the cluster, on one node
  iothub.emq.emq_data_backup:
    state: imported
    src: /var/lib/emqx/iothub-backup/emqx-export-2025-01-31-02-00-00.123.tar.gz
  run_once: true
"""

RETURN = r"""
path:
  description:
    - O(state=exported), the archive EMQX wrote, as C(emqx ctl data export) printed it; V(null) in check mode.
    - O(state=imported), O(src).
  returned: always
  type: str
  sample: /var/lib/emqx/iothub-backup/emqx-export-2025-01-31-02-00-00.123.tar.gz
size:
  description: Size of the archive at RV(path), in bytes; V(null) in check mode with O(state=exported).
  returned: always
  type: int
  sample: 48127
node:
  description: Name of the local node, from C(emqx ctl status); V(null) when the module did not read it (check mode).
  returned: always
  type: str
  sample: emqx@10.0.0.1
version:
  description: EMQX version of the local node, from C(emqx ctl status); V(null) when the module did not read it.
  returned: always
  type: str
  sample: 5.8.9
stdout:
  description:
    - What C(emqx ctl data export) or C(emqx ctl data import) printed (the progress lines, then the result).
    - Empty when it did not run (check mode, EMQX not answering).
  returned: always
  type: str
  sample: |
    Exporting data to "/var/lib/emqx/iothub-backup/emqx-export-2025-01-31-02-00-00.123.tar.gz"...
    Exporting cluster configuration...
    Exporting additional files from EMQX data_dir: "/var/lib/emqx"...
    Exporting built-in database...
    Exporting emqx_app database table...
    Data has been successfully exported to /var/lib/emqx/iothub-backup/emqx-export-2025-01-31-02-00-00.123.tar.gz.
stderr:
  description: Standard error of the last command the module ran.
  returned: always
  type: str
  sample: ""
rc:
  description: Exit code of the last command the module ran. EMQX 5.8 exits 0 when an export or an import fails.
  returned: failure
  type: int
  sample: 0
commands:
  description: Every command the module ran, in order, as shell-quoted strings; empty in check mode.
  returned: always
  type: list
  elements: str
  sample:
    - /usr/bin/emqx ctl status
    - /usr/bin/emqx ctl data export --dir /var/lib/emqx/iothub-backup
msg:
  description:
    - What the module did, in one sentence; in check mode what it would do (C(would export ...), C(would import ...)).
    - On failure, what EMQX printed and what to do.
  returned: always
  type: str
  sample: Exported the data of the cluster to /var/lib/emqx/iothub-backup/emqx-export-2025-01-31-02-00-00.123.tar.gz (48127 bytes).
"""

import os
import re
import shutil
import tarfile
import zlib

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.iothub.emq.plugins.module_utils.emqx_cli import (
    EmqxCli,
    EmqxCliError,
    emqx_cli_argument_spec,
)


# What `emqx ctl data ...` prints (EMQX 5.8, emqx_mgmt_cli:data/1). Every form exits 0.
EXPORTED_RE = re.compile(r'^Data has been successfully exported to (?P<path>.+)\.$')
IMPORTED = 'Data has been imported successfully.'
IMPORTED_PARTLY = 'Data has been imported, but some errors occurred, see the log above.'
FAILED_RE = re.compile(r'^\[error\] Data (?:export|import) failed, reason: (?P<reason>.*)$')
# The lines an import prints for each part it could not write, before IMPORTED_PARTLY.
PART_FAILED_RE = re.compile(r'^(?:\[error\] Failed to import built-in database table: |Failed to import the following config path: )')

TAR_SUFFIX = '.tar.gz'
META = 'META.hocon'
EMQX_LOG = '/var/log/emqx/emqx.log.*'
HOW_TO_CHECK = 'Check the service with "systemctl status emqx" and its log with "journalctl -u emqx".'
# `emqx ctl` re-runs itself as the emqx user with su -c "<script> \"arg\" ...": these would be read by that shell.
UNSAFE_CHARS = '"$`\\'

_ERLANG_ESCAPES = {'n': '\n', 't': '\t', 'r': '\r', 'b': '\b', 'f': '\f', 'v': '\v', 'e': '\x1b', 's': ' ', 'd': '\x7f'}
_STRING_RE = re.compile(r'^"(?:[^"\\]|\\.)*"(?:\s*"(?:[^"\\]|\\.)*")*$', re.DOTALL)


def _first_line(*texts):
    for text in texts:
        for line in (text or '').splitlines():
            if line.strip():
                return line.strip().rstrip('.')
    return ''


def _unescape(body):
    """The characters of the body of an Erlang string literal (between the quotes)."""
    out = []
    i = 0
    while i < len(body):
        char = body[i]
        i += 1
        if char != '\\' or i >= len(body):
            out.append(char)
            continue
        esc = body[i]
        i += 1
        if esc in _ERLANG_ESCAPES:
            out.append(_ERLANG_ESCAPES[esc])
        elif esc in '01234567':
            digits = esc
            while i < len(body) and len(digits) < 3 and body[i] in '01234567':
                digits += body[i]
                i += 1
            out.append(chr(int(digits, 8)))
        elif esc == 'x' and body[i:i + 1] == '{':
            end = body.find('}', i)
            out.append(chr(int(body[i + 1:end], 16)) if end > i + 1 else '\\x')
            i = end + 1 if end > i + 1 else i
        elif esc == 'x' and re.match(r'[0-9A-Fa-f]{2}', body[i:i + 2]):
            out.append(chr(int(body[i:i + 2], 16)))
            i += 2
        else:
            out.append(esc)
    return ''.join(out)


def erlang_reason(term):
    """The reason EMQX printed with ~p: the text of a string (or of strings the printer split), else the term as printed."""
    term = term.strip()
    if _STRING_RE.match(term):
        parts = re.findall(r'"((?:[^"\\]|\\.)*)"', term, re.DOTALL)
        return ''.join(_unescape(p) for p in parts).strip()
    return term


def _with_continuation(lines, index):
    """A printed line and the indented lines after it (the Erlang pretty printer wraps long terms so), as one line."""
    parts = [lines[index].rstrip()]
    for line in lines[index + 1:]:
        if not line[:1].isspace() or not line.strip():
            break
        parts.append(line.strip())
    return ' '.join(parts)


def parse_data_output(stdout):
    """Classify what ``emqx ctl data export|import`` printed.

    Returns ``(outcome, value)``: ('exported', path), ('imported', None), ('partly', [lines of the parts that
    failed]), ('failed', reason) or ('unknown', None).
    """
    lines = (stdout or '').splitlines()
    for index, raw in enumerate(lines):
        line = raw.strip()
        match = EXPORTED_RE.match(line)
        if match:
            return 'exported', match.group('path')
        if line == IMPORTED:
            return 'imported', None
        if line == IMPORTED_PARTLY:
            failed = [_with_continuation(lines, i).strip() for i in range(index) if PART_FAILED_RE.match(lines[i].strip())]
            return 'partly', failed
        if FAILED_RE.match(line):
            reason = FAILED_RE.match(_with_continuation(lines, index).strip()).group('reason')
            return 'failed', erlang_reason(reason[:-1] if reason.endswith('.') else reason)
    return 'unknown', None


def import_hint(reason):
    """What to do about a refused import, from EMQX's reason."""
    text = (reason or '').lower()
    if 'only allowed on core' in text:
        return 'Run the import on a core node (node.role = core).'
    if 'is newer than emqx version' in text or 'unsupported_version' in text:
        return ('The archive comes from a newer EMQX: upgrade the cluster to that version first, or import it into a '
                'cluster of the version it came from.')
    if 'enterprise data backup' in text:
        return 'An archive of EMQX Enterprise only goes into an EMQX Enterprise cluster.'
    if 'permission denied' in text or 'eacces' in text:
        return 'The emqx user cannot read it: give it to that user (chown emqx) or make it readable, then import again.'
    if 'backup file not found' in text:
        return 'The EMQX node cannot see the file: it must be a regular file on this host that the emqx user can read.'
    if 'invalid backup archive' in text or 'meta.hocon' in text or 'bad_archive_dir' in text:
        return 'src is not an archive made by "emqx ctl data export".'
    return 'See {0} on this host (emqx_data_import_failed) for the details.'.format(EMQX_LOG)


def read_archive(path):
    """Check an archive of ``emqx ctl data export``; returns (its directory name, the version in META.hocon or None).

    Raises ValueError with a sentence when it is not one.
    """
    try:
        with tarfile.open(path, 'r:gz') as tar:
            members = dict((m.name[2:] if m.name.startswith('./') else m.name, m) for m in tar.getmembers())
            roots = sorted(set(name.split('/', 1)[0] for name in members))
            meta_member = members.get(roots[0] + '/' + META) if len(roots) == 1 else None
            meta = tar.extractfile(meta_member).read() if meta_member is not None and meta_member.isfile() else None
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise ValueError('it is not a gzip-compressed tar archive ({0})'.format(exc))
    if len(roots) != 1 or roots[0] in ('', '.', '..'):
        raise ValueError('its files are not all in one directory (it holds {0}), as in an archive of "emqx ctl data export"'.format(
            ', '.join(roots) or 'nothing'))
    if meta is None:
        raise ValueError('it has no {0}/{1}, which every archive of "emqx ctl data export" has'.format(roots[0], META))
    match = re.search(r'version\s*[=:]\s*"?([0-9][^"\s,}]*)', meta.decode('utf-8', 'replace'))
    return roots[0], match.group(1) if match else None


class DataBackup(object):

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.cli = EmqxCli(module, module.params['cli_path'])
        self.result = dict(changed=False, msg='', path=None, size=None, node=None, version=None,
                           stdout='', stderr='', commands=self.cli.commands)

    def exit(self, msg, **values):
        self.result.update(values, msg=msg)
        self.module.exit_json(**self.result)

    def fail(self, msg, rc=None, **values):
        self.result.update(values, msg=msg, rc=rc)
        self.module.fail_json(**self.result)

    # -- checks --------------------------------------------------------------------------

    def check_path(self, option):
        path = self.params[option]
        if not os.path.isabs(path):
            self.fail('{0}={1} is not an absolute path; give the full path on the managed host.'.format(option, path))
        unsafe = sorted(set(c for c in path if c in UNSAFE_CHARS))
        if unsafe:
            self.fail('{0}={1} contains {2}, which "emqx ctl" would hand to a shell (it re-runs itself as the emqx user with '
                      'su -c); use a path without {3}.'.format(option, path, ' '.join(unsafe), ' '.join(UNSAFE_CHARS)))
        return path

    def read_node(self, action):
        """Run ``emqx ctl status``; fail when EMQX does not answer or is not started."""
        try:
            status = self.cli.node_status()
        except EmqxCliError as exc:
            printed = _first_line(exc.stderr, exc.stdout)
            hint = HOW_TO_CHECK
            if 'root or use sudo' in '{0} {1}'.format(exc.stdout, exc.stderr):
                hint = 'Run the task as root (become: true): "emqx ctl" runs as root or as the emqx user only.'
            self.fail('EMQX does not answer on this host: "emqx ctl status" exited {0}{1}. Nothing was {2}. Start EMQX '
                      '(systemctl start emqx, or run site.yml) and run this again. {3}'.format(
                          exc.rc, ' ({0})'.format(printed) if printed else ' and printed nothing', action, hint),
                      rc=exc.rc, stderr=exc.stderr)
        self.result.update(node=status['node'], version=status['version'])
        if status['state'] != 'started':
            self.fail('EMQX on this host ({node}, {version}) is {state}, not started: nothing was {0}. Wait until "emqx ctl '
                      'status" says "is started", then run this again.'.format(action, **status), rc=0)
        return status

    def run_data(self, *args):
        rc, out, err = self.cli.ctl('data', *args)
        self.result.update(stdout=out, stderr=err)
        return rc, out, err

    # -- export --------------------------------------------------------------------------

    def export(self):
        directory = self.check_path('dir') if self.params['dir'] else None
        where = directory or "EMQX's default directory, backup under the node's data directory"
        if directory is not None and not os.path.isdir(directory):
            if not self.module.check_mode:
                self.fail('dir={0} is not a directory on this host. Create it, owned by the emqx user (the EMQX node writes '
                          'the archive itself), for example with ansible.builtin.file state=directory owner=emqx '
                          'mode=0700, or leave dir out.'.format(directory))
            where += ' (it does not exist yet; it must when this runs)'
        if self.module.check_mode:
            self.exit('would export the data of the cluster to {0} (check mode: nothing ran).'.format(where), changed=True)

        self.read_node('exported')
        rc, out, err = self.run_data('export', *(['--dir', directory] if directory else []))
        outcome, value = parse_data_output(out)
        if outcome == 'exported':
            size = os.path.getsize(value) if os.path.isfile(value) else None
            if size is None:
                self.module.warn('EMQX says it wrote {0}, but the module does not see that file on this host.'.format(value))
            self.exit('Exported the data of the cluster to {0}{1}.'.format(
                value, ' ({0} bytes)'.format(size) if size is not None else ''), changed=True, path=value, size=size)
        if outcome == 'failed':
            self.fail('EMQX could not export the data: {0}. Nothing was written. See {1} on this host '
                      '(emqx_data_export_failed) for the details.'.format(value, EMQX_LOG), rc=rc)
        last = out.strip().splitlines()[-1] if out.strip() else _first_line(err)
        crashed = ('It started the archive but could not write it: {0} must be writable by the emqx user. '.format(directory)
                   if 'Exporting data to' in out and directory else '')
        self.fail('"emqx ctl data export" printed no result (exit code {0}{1}). {2}See {3} on this host '
                  '(ctl_command_crashed) for the details.'.format(
                      rc, '; last line: ' + last if last else ', nothing printed', crashed, EMQX_LOG), rc=rc)

    # -- import --------------------------------------------------------------------------

    def import_(self):
        src = self.check_path('src')
        if not os.path.exists(src):
            self.fail('src={0} does not exist on this host. Copy the archive (made by "emqx ctl data export", or the '
                      'emqx-data-*.tar.gz of the playbook iothub.emq.backup) there first.'.format(src))
        if not os.path.isfile(src):
            self.fail('src={0} is not a file; give the path of the archive itself.'.format(src))
        try:
            root, made_by = read_archive(src)
        except ValueError as exc:
            self.fail('src={0} cannot be imported: {1}. Give an archive made by "emqx ctl data export" (or the '
                      'emqx-data-*.tar.gz of the playbook iothub.emq.backup).'.format(src, exc))
        size = os.path.getsize(src)
        self.result.update(path=src, size=size)
        origin = ' (exported from EMQX {0})'.format(made_by) if made_by else ''
        if self.module.check_mode:
            self.exit('would import {0}{1} into the cluster (check mode: nothing ran).'.format(src, origin), changed=True)

        self.read_node('imported')
        # EMQX imports only a file named after the directory inside it.
        target = os.path.join(os.path.dirname(src), root + TAR_SUFFIX)
        if any(c in UNSAFE_CHARS for c in root):
            self.fail('src={0} holds the export {1}, whose name contains a character of {2}; EMQX imports it only under that '
                      'name, which "emqx ctl" would hand to a shell. It is not an archive of "emqx ctl data export".'.format(
                          src, root, ' '.join(UNSAFE_CHARS)))
        link = None
        if target != src:
            if os.path.lexists(target):
                if not os.path.isfile(target) or not os.path.samefile(src, target):
                    self.fail('src={0} holds the export {1}, and EMQX imports it only under the name {2}, which is another '
                              'file on this host. Move that file away, or import it instead.'.format(src, root, target))
            else:
                link = target
                self.make_link(src, link)
        try:
            rc, out, err = self.run_data('import', target)
        finally:
            if link is not None:
                os.unlink(link)

        outcome, value = parse_data_output(out)
        if outcome == 'imported':
            self.exit('Imported {0}{1} into the cluster; EMQX replicates it to every node.'.format(src, origin), changed=True)
        if outcome == 'partly':
            self.fail('EMQX imported {0} only in part{1}. Some data was written. Look at {2} on this host '
                      '(failed_to_restore_mnesia_backup, emqx_data_import_failed) for why, fix it and import again.'.format(
                          src, ': ' + '; '.join(value) if value else ' (it printed no detail)', EMQX_LOG),
                      changed=True, rc=rc)
        if outcome == 'failed':
            self.fail('EMQX did not import {0}: {1}. {2}'.format(src, value, import_hint(value)), rc=rc)
        printed = out.strip().splitlines()[-1] if out.strip() else _first_line(err)
        self.fail('"emqx ctl data import" printed no result (exit code {0}{1}). The import may have stopped half way: see '
                  '{2} on this host (ctl_command_crashed, emqx_data_import_failed), then import again.'.format(
                      rc, '; last line: ' + printed if printed else ', nothing printed', EMQX_LOG), rc=rc)

    def make_link(self, src, link):
        """A second name for src (a hard link, else a copy with the same owner and mode)."""
        try:
            os.link(src, link)
            return
        except OSError:
            pass
        try:
            shutil.copy2(src, link)
            info = os.stat(src)
            os.chown(link, info.st_uid, info.st_gid)
        except OSError as exc:
            if os.path.exists(link):
                os.unlink(link)
            self.fail('EMQX imports {0} only under the name {1}, and the module could not make that name: {2}. Copy the '
                      'archive to that name yourself and import it.'.format(src, link, exc))


def main():
    argument_spec = emqx_cli_argument_spec()
    argument_spec.update(
        state=dict(type='str', required=True, choices=['exported', 'imported']),
        dir=dict(type='path'),
        src=dict(type='path'),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_if=[('state', 'imported', ['src'])],
        supports_check_mode=True,
    )
    state = module.params['state']
    if state == 'exported' and module.params['src']:
        module.fail_json(msg='src is for state=imported; with state=exported give dir, the directory for the new archive.')
    if state == 'imported' and module.params['dir']:
        module.fail_json(msg='dir is for state=exported; with state=imported give src, the archive to import.')

    # Fails when cli_path does not exist (or a bare name is not found in PATH).
    backup = DataBackup(module)
    cli = backup.cli.cli
    if not os.path.isfile(cli) or not os.access(cli, os.X_OK):
        module.fail_json(
            msg='The EMQX command line tool {0} is not an executable file. Install EMQX on this host, or set '
                'cli_path to where the emqx script is.'.format(cli))

    if state == 'exported':
        backup.export()
    backup.import_()


if __name__ == '__main__':
    main()
