# -*- coding: utf-8 -*-
# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Size a load balancer's processes and open-file limit from the connections it must hold."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

# Open files a process keeps beyond its connections: listeners, health checks, logs, the runtime API.
RESERVE = 4096
# Share of a process's connections kept beyond an even split when several processes accept (the kernel
# spreads connections over SO_REUSEPORT sockets by a hash of their addresses: close to even, not exactly).
SPREAD_MARGIN = (11, 10)


def maxconn_for(target):
    """Connections beyond the target kept for stats, health checks and the runtime API."""
    return target + max(1000, target // 100)


def _per_process_fds(maxconn, fds, processes):
    num, den = SPREAD_MARGIN if processes > 1 else (1, 1)
    return -(-maxconn * fds * num // (den * processes))  # whole-number ceiling


def _int(value, name):
    try:
        return int(value)
    except (TypeError, ValueError):
        raise AnsibleFilterError("lb_sizing: %s must be a whole number, got %r" % (name, value))


def lb_sizing(target, fds_per_connection=2, processes=1, cpus=1, init_nofile=0, init_can_raise=True):
    """Processes, connection slots and open-file limit per process for `target` device connections.

    processes: a number (fixed, e.g. 1 for HAProxy, which runs one process) or "auto": the host's CPUs,
    or more when one process's share would not fit the open files the service manager can grant
    (init_nofile, when it cannot raise it: init_can_raise false, as in a container without
    CAP_SYS_RESOURCE).
    """
    target = _int(target, "target")
    fds = _int(fds_per_connection, "fds_per_connection")
    cpus = max(1, _int(cpus, "cpus"))
    init_nofile = _int(init_nofile or 0, "init_nofile")
    if fds < 1:
        raise AnsibleFilterError("lb_sizing: fds_per_connection must be 1 or more, got %d" % fds)
    ceiling = init_nofile if not init_can_raise and init_nofile > 0 else None
    maxconn = maxconn_for(max(target, 0))
    auto = str(processes).strip() == "auto"
    if auto:
        count = cpus
        if ceiling is not None and ceiling > RESERVE:
            while count < 4096 and _per_process_fds(maxconn, fds, count) + RESERVE > ceiling:
                count += 1
    else:
        count = _int(processes, "processes")
        if count < 1:
            raise AnsibleFilterError("lb_sizing: processes must be \"auto\" or 1 or more, got %d" % count)
    per_process = _per_process_fds(maxconn, fds, count)
    nofile = per_process + RESERVE
    return {
        "target": target,
        "maxconn": maxconn,
        "processes": count,
        "processes_auto": auto,
        "per_process_fds": per_process,
        "nofile": nofile,
        "ceiling": ceiling,
        "fits": ceiling is None or nofile <= ceiling,
        "max_target": _max_target(fds, count, ceiling),
    }


def _max_target(fds, processes, ceiling):
    """The largest target this many processes carry under the ceiling (None when there is none)."""
    if ceiling is None:
        return None
    if ceiling <= RESERVE:
        return 0
    num, den = SPREAD_MARGIN if processes > 1 else (1, 1)
    maxconn = (ceiling - RESERVE) * processes * den // (fds * num)
    target = max(0, maxconn - max(1000, maxconn // 100))
    while target > 0 and _per_process_fds(maxconn_for(target), fds, processes) + RESERVE > ceiling:
        target -= 1
    while _per_process_fds(maxconn_for(target + 1), fds, processes) + RESERVE <= ceiling:
        target += 1
    return target


class FilterModule(object):
    def filters(self):
        return {"lb_sizing": lb_sizing}
