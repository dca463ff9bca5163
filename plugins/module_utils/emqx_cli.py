# -*- coding: utf-8 -*-

# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Run ``emqx ctl`` and understand what EMQX 5 prints.

EMQX 5.8 exits 0 even when a cluster command fails, so everything here reads stdout
instead of trusting the exit code. The option ``cli_path`` is documented by the doc
fragment ``iothub.emq.emqx_cli``; :func:`emqx_cli_argument_spec` is its code side.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import time


DEFAULT_CLI_PATH = '/usr/bin/emqx'

# The part before the @ is what EMQX accepts for node.name; the host is an IP
# address (v4 or v6) or a DNS name.
NODE_NAME_RE = re.compile(r'^[0-9A-Za-z_-]+@[0-9A-Za-z_.:-]+$')

# `emqx ctl status`: Node 'emqx@10.0.0.1' 5.8.9 is started
_STATUS_RE = re.compile(r"Node\s+'?(?P<node>[^'\s]+@[^'\s]+)'?\s+(?P<version>\S+)\s+is\s+(?P<state>\w+)")

SUCCESS_JOIN = 'Join the cluster successfully.'
SUCCESS_LEAVE = 'Leave the cluster successfully.'
SUCCESS_FORCE_LEAVE = 'Remove the node from cluster successfully.'
IGNORE = 'Ignore.'
FAILED_JOIN = 'Failed to join the cluster:'
FAILED_LEAVE = 'Failed to leave the cluster:'
FAILED_FORCE_LEAVE = 'Failed to remove the node from cluster:'
FAILED_FORCE_LEAVE_RPC = 'Failed to remove the node from cluster_rpc.'

# Outcomes of a cluster action, as parse_action_output() reports them.
OK = 'ok'
IGNORED = 'ignored'
FAILED = 'failed'
UNKNOWN = 'unknown'


def emqx_cli_argument_spec():
    """Argument spec for the options of the doc fragment ``iothub.emq.emqx_cli``."""
    return dict(
        cli_path=dict(type='path', default=DEFAULT_CLI_PATH),
    )


class EmqxCliError(Exception):
    """A command could not run or printed something this module does not understand."""

    def __init__(self, msg, rc=None, stdout='', stderr='', cmd=None):
        super(EmqxCliError, self).__init__(msg)
        self.msg = msg
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.cmd = cmd

    def fail_kwargs(self):
        return dict(msg=self.msg, rc=self.rc, stdout=self.stdout, stderr=self.stderr, cmd=self.cmd)


def is_valid_node_name(name):
    return bool(name) and NODE_NAME_RE.match(name) is not None


def dist_ports(node):
    """Ports that cluster peers must reach for ``node``: (Erlang distribution, gen_rpc).

    EMQX 5 has no epmd: it listens on 4370 + N and 5370 + N, where N is the number at the
    end of the part before the @ (``emqx1@h`` -> 4371/5371, ``emqx@h`` -> 4370/5370).
    """
    name = (node or '').split('@', 1)[0]
    match = re.search(r'(\d+)$', name)
    offset = int(match.group(1)) if match else 0
    return 4370 + offset, 5370 + offset


def _atoms(text):
    """Node names inside an Erlang list body such as ``'emqx@a','emqx@b'`` or ``emqx@localhost``."""
    nodes = []
    for item in re.findall(r"'((?:[^'\\]|\\.)*)'|([A-Za-z0-9_@.:-]+)", text):
        value = item[0] or item[1]
        if value:
            nodes.append(value)
    return nodes


def parse_status_term(text):
    """Parse ``Cluster status: #{running_nodes => [...], stopped_nodes => [...]}``.

    The Erlang pretty printer wraps long lists over several lines and quotes atoms that
    contain dots, so both ``'emqx@10.0.0.1'`` and ``emqx@localhost`` occur. Returns a dict
    with ``running_nodes`` and ``stopped_nodes`` (sorted lists), or None when the text
    holds no such map.
    """
    if not text:
        return None
    flat = ' '.join(text.split())
    result = {}
    for key in ('running_nodes', 'stopped_nodes'):
        match = re.search(key + r'\s*=>\s*\[([^\]]*)\]', flat)
        if match is None:
            return None
        result[key] = sorted(_atoms(match.group(1)))
    return result


def parse_status_json(text):
    """Parse the output of ``emqx ctl cluster status --json``; None when it is not that JSON."""
    if not text:
        return None
    start = text.find('{')
    end = text.rfind('}')
    if start < 0 or end < start:
        return None
    try:
        data = json.loads(text[start:end + 1])
    except ValueError:
        return None
    if not isinstance(data, dict) or 'running_nodes' not in data:
        return None
    result = {}
    for key in ('running_nodes', 'stopped_nodes'):
        value = data.get(key) or []
        if not isinstance(value, list):
            return None
        result[key] = sorted(str(v) for v in value)
    return result


def parse_node_status(text):
    """Parse ``emqx ctl status``: returns dict(node, version, state) or None."""
    match = _STATUS_RE.search(text or '')
    if match is None:
        return None
    return dict(node=match.group('node'), version=match.group('version'), state=match.group('state'))


def parse_action_output(stdout, success_line, failure_prefix):
    """Classify what ``emqx ctl cluster join|leave|force-leave`` printed.

    Returns ``(outcome, reason)``: outcome is one of OK, IGNORED, FAILED, UNKNOWN and
    reason is the Erlang term after the failure prefix (FAILED only).
    """
    lines = [line.strip() for line in (stdout or '').splitlines()]
    for index, line in enumerate(lines):
        if line == success_line:
            return OK, None
        if line == IGNORE:
            return IGNORED, None
        if line.startswith(failure_prefix):
            return FAILED, line[len(failure_prefix):].strip()
        if line.startswith(FAILED_FORCE_LEAVE_RPC):
            # The node left the database cluster; only the cleanup of the
            # configuration sync state failed. Its reason is on the next lines.
            rest = ' '.join(x for x in lines[index + 1:] if x)
            return FAILED, 'cluster_rpc_cleanup: ' + rest if rest else 'cluster_rpc_cleanup'
    return UNKNOWN, None


def reason_key(reason):
    """The leading atom of an Erlang error term: ``{node_down,'emqx@h'}`` -> ``node_down``."""
    match = re.match(r"\s*\{?\s*'?([A-Za-z_][A-Za-z0-9_]*)", reason or '')
    return match.group(1).lower() if match else ''


_LICENSE_RE = re.compile(r'single[ _]node[ _]license|licen[cs]e', re.IGNORECASE)
_BOOTING_RE = re.compile(r'not[_ ](yet[_ ])?(ready|started|running)|starting|booting', re.IGNORECASE)


def is_retryable(reason):
    """A join failure that goes away once the peer has finished booting."""
    return reason_key(reason) == 'node_down' or bool(_BOOTING_RE.search(reason or ''))


def explain_join_failure(peer, reason):
    """One human sentence, with a hint, for a refused ``cluster join``."""
    key = reason_key(reason)
    if key == 'node_down':
        dist, rpc = dist_ports(peer)
        return ('Cannot join the cluster through {peer}: EMQX reports it as down ({reason}). '
                'Check that EMQX is running on {peer}, that node.cookie is the same on both nodes, '
                'and that TCP ports {dist} (Erlang distribution) and {rpc} (gen_rpc) are open between '
                'the two nodes; a wrong cookie shows up as "Invalid challenge reply" in the EMQX log.'
                .format(peer=peer, reason=reason, dist=dist, rpc=rpc))
    if _LICENSE_RE.search(reason or ''):
        return ('Cannot join the cluster through {peer}: EMQX refused because of its license ({reason}). '
                'EMQX Enterprise 5.9 and later needs a license key that allows clustering: set '
                'license.key in emqx.conf (or run "emqx ctl license update KEY") on every node, then retry.'
                .format(peer=peer, reason=reason))
    if key == 'cannot_join_to_replicant':
        return ('Cannot join the cluster through {peer}: it is a replicant node ({reason}). '
                'Nodes join through a core node only; pass a node with node.role = core as peer.'
                .format(peer=peer, reason=reason))
    if 'replicant' in (reason or '') or 'role' in key:
        return ('Cannot join the cluster through {peer}: the node roles do not allow it ({reason}). '
                'Core nodes join core nodes, and replicants join through a core node; check node.role '
                'on both nodes.'.format(peer=peer, reason=reason))
    if is_retryable(reason):
        return ('Cannot join the cluster through {peer}: a node is still starting ({reason}). '
                'Wait until "emqx ctl status" says "is started" on both nodes, or raise timeout.'
                .format(peer=peer, reason=reason))
    return 'Cannot join the cluster through {peer}: EMQX refused with {reason}.'.format(peer=peer, reason=reason)


class EmqxCli(object):
    """Runs ``<cli_path> ctl ...`` through ``module.run_command`` with an argument list."""

    def __init__(self, module, cli_path=None):
        self.module = module
        self.cli = self._resolve(cli_path or DEFAULT_CLI_PATH)
        self.commands = []

    @staticmethod
    def now():
        return time.monotonic()

    @staticmethod
    def sleep(seconds):
        time.sleep(seconds)

    def _resolve(self, cli_path):
        if '/' not in cli_path:
            return self.module.get_bin_path(cli_path, required=True)
        if not os.path.exists(cli_path):
            self.module.fail_json(
                msg='The EMQX command line tool {0} does not exist. Install EMQX on this host, or set '
                    'cli_path to where the emqx script is.'.format(cli_path))
        return cli_path

    def ctl(self, *args):
        """Run ``emqx ctl ARGS``; returns (rc, stdout, stderr) and records the command."""
        cmd = [self.cli, 'ctl'] + [str(a) for a in args]
        self.commands.append(' '.join(shlex.quote(c) for c in cmd))
        rc, out, err = self.module.run_command(cmd, check_rc=False)
        return rc, out or '', err or ''

    def node_status(self):
        """Name, version and state of the local node (``emqx ctl status``)."""
        rc, out, err = self.ctl('status')
        status = parse_node_status(out) if rc == 0 else None
        if status is None:
            raise EmqxCliError(
                'EMQX does not answer on this host ("emqx ctl status" exited {0}). Start the emqx service '
                'and wait until "emqx ctl status" says "is started".'.format(rc),
                rc=rc, stdout=out, stderr=err, cmd=self.commands[-1])
        return status

    def cluster_status(self):
        """Membership as the local node sees it: dict(running_nodes, stopped_nodes).

        Reads ``cluster status --json`` and falls back to the Erlang-term form, also by
        running ``cluster status`` without ``--json`` (versions before --json existed).
        """
        rc, out, err = self.ctl('cluster', 'status', '--json')
        status = parse_status_json(out) or parse_status_term(out)
        if status is None:
            rc, out, err = self.ctl('cluster', 'status')
            status = parse_status_term(out) or parse_status_json(out)
        if status is None:
            raise EmqxCliError(
                'Cannot read the cluster membership: "emqx ctl cluster status" printed neither JSON nor '
                'the "Cluster status: #{{...}}" term (exit code {0}). Check that EMQX is running on this '
                'host.'.format(rc),
                rc=rc, stdout=out, stderr=err, cmd=self.commands[-1])
        return status

    def wait_for(self, predicate, timeout, delay):
        """Read the membership until predicate(status) holds or timeout seconds pass.

        Always reads at least once. Returns (status, satisfied).
        """
        deadline = self.now() + max(0, timeout)
        while True:
            status = self.cluster_status()
            if predicate(status):
                return status, True
            if self.now() + delay > deadline:
                return status, False
            self.sleep(delay)
