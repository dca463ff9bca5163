# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Size an EMQX node's open-file limit (LimitNOFILE) and Erlang port table (node.max_ports)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

# Open files and Erlang ports a node keeps beyond its device connections: listeners, cluster and RPC
# sockets to every peer, Mnesia/RocksDB files, logs, the dashboard and its API clients.
RESERVE = 4096
# Limits are rounded up to a multiple of this (what operators read back from systemctl show).
STEP = 1024
# node.max_ports: emqx_conf_schema.erl fields("node") max_ports is range(1024, 134217727) (Erlang +Q).
MAX_PORTS_RANGE = (1024, 134217727)


def _int(value, name):
    if isinstance(value, bool):
        raise AnsibleFilterError("emq_node_sizing: %s must be a whole number, got %r" % (name, value))
    try:
        return int(value)
    except (TypeError, ValueError):
        raise AnsibleFilterError("emq_node_sizing: %s must be a whole number, got %r" % (name, value))


def open_files_for(target, headroom_percent):
    """Open files for `target` connections: one per device socket, plus headroom, plus RESERVE, rounded up."""
    needed = target + -(-target * headroom_percent // 100) + RESERVE
    return -(-needed // STEP) * STEP


def max_target_for(limit, headroom_percent):
    """The largest target whose sized limit stays at or below `limit` (0 when none does)."""
    lo, hi = 0, max(0, limit)
    if open_files_for(0, headroom_percent) > limit:
        return 0
    while lo < hi:  # open_files_for is monotonic in the target
        mid = (lo + hi + 1) // 2
        if open_files_for(mid, headroom_percent) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo


def emq_node_sizing(target, headroom_percent=25, open_files=0, nr_open=0):
    """LimitNOFILE and node.max_ports for an EMQX node that should hold `target` device connections.

    EMQX takes one socket (one file, one Erlang port) per device, MQTT or WebSocket, behind a load
    balancer or not; the port table costs memory per slot, so the limit follows the target instead of
    being as large as the kernel allows. open_files > 0 is an operator's explicit value and wins.
    nr_open (the host's fs.nr_open, 0 when unknown) gives `fits` and `max_target`.
    """
    target = _int(target, "target")
    headroom = _int(headroom_percent, "headroom_percent")
    explicit = _int(open_files or 0, "open_files")
    nr_open = _int(nr_open or 0, "nr_open")
    if target < 0:
        raise AnsibleFilterError("emq_node_sizing: target must be 0 or more, got %d" % target)
    if headroom < 0:
        raise AnsibleFilterError("emq_node_sizing: headroom_percent must be 0 or more, got %d" % headroom)
    nofile = explicit if explicit > 0 else open_files_for(target, headroom)
    max_ports = min(max(nofile, MAX_PORTS_RANGE[0]), MAX_PORTS_RANGE[1])
    return {
        "target": target,
        "headroom_percent": headroom,
        "explicit": explicit > 0,
        "nofile": nofile,
        "max_ports": max_ports,
        # fs.nr_open bounds LimitNOFILE; fs.file-max counts the whole host's files: twice the node's, so a
        # node at its limit leaves the rest of the host (sshd, journald, the agent) as many again.
        "nr_open": nofile,
        "file_max": 2 * nofile,
        "fits": nr_open <= 0 or nofile <= nr_open,
        "max_target": max_target_for(nr_open, headroom) if nr_open > 0 else None,
    }


class FilterModule(object):
    def filters(self):
        return {"emq_node_sizing": emq_node_sizing}
