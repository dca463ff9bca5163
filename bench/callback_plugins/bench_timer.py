# Benchmark instrument, not collection content: records how long each task and each role took and
# the recap of a playbook run, as JSON, for bench/run.py.
"""Callback plugin bench_timer: per-task and per-role wall time of a playbook run, written as JSON."""

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: bench_timer
type: aggregate
short_description: Write per-task and per-role durations and the recap to the file BENCH_TIMER_FILE names
description:
  - Used by bench/run.py. Enabled with ANSIBLE_CALLBACKS_ENABLED=bench_timer.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._start = time.monotonic()
        self._tasks = []
        self._current = None

    def _close(self):
        if self._current:
            self._current["seconds"] = round(time.monotonic() - self._current.pop("began"), 3)
            self._tasks.append(self._current)
            self._current = None

    def _open(self, task, handler=False):
        self._close()
        role = task._role.get_name() if task._role else "(play)"
        self._current = {"name": task.get_name(), "role": role.split(".")[-1], "handler": handler,
                         "began": time.monotonic()}

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._open(task)

    def v2_playbook_on_handler_task_start(self, task):
        self._open(task, handler=True)

    def v2_playbook_on_stats(self, stats):
        self._close()
        roles = {}
        for task in self._tasks:
            entry = roles.setdefault(task["role"], {"seconds": 0.0, "tasks": 0})
            entry["seconds"] = round(entry["seconds"] + task["seconds"], 3)
            entry["tasks"] += 1
        hosts = {h: stats.summarize(h) for h in sorted(stats.processed)}
        result = {
            "wall_seconds": round(time.monotonic() - self._start, 3),
            "tasks": len(self._tasks),
            "roles": roles,
            "changed": sum(h["changed"] for h in hosts.values()),
            "failed": sum(h["failures"] + h["unreachable"] for h in hosts.values()),
            "hosts": hosts,
            "slowest_tasks": sorted(self._tasks, key=lambda t: -t["seconds"])[:10],
        }
        path = os.environ.get("BENCH_TIMER_FILE")
        if path:
            with open(path, "w") as out:
                json.dump(result, out, indent=1)
