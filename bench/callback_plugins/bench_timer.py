# Benchmark instrument, not collection content: records how long each task and each role took and
# the recap of a playbook run, as JSON, for bench/run.py.
"""Callback plugin bench_timer: per-task, per-role and per-play wall time of a playbook run, and how many
task results touched a host (ran something on it) against those that stayed on the controller, as JSON."""

import json
import os
import time

# Actions that run on the controller only (no connection to the host): asserts, facts, includes, messages.
CONTROLLER_ACTIONS = frozenset(
    prefix + name for prefix in ("", "ansible.builtin.", "ansible.legacy.")
    for name in ("assert", "set_fact", "debug", "fail", "meta", "include_tasks", "import_tasks", "include_role",
                 "import_role", "include_vars", "add_host", "group_by", "set_stats", "validate_argument_spec"))

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
        self._plays = []
        # Task results per host: "host" ran something on a managed host, "controller" stayed on the
        # controller (an action above, or a task delegated to localhost), "skipped" ran nothing.
        self._results = {"host": 0, "controller": 0, "skipped": 0}
        self._per_host = {}

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

    def v2_playbook_on_play_start(self, play):
        now = time.monotonic()
        if self._plays:
            self._plays[-1]["seconds"] = round(now - self._plays[-1].pop("began"), 3)
        self._plays.append({"name": play.get_name(), "began": now})

    def _count(self, result, skipped=False):
        task = result._task
        delegate = task.delegate_to or ""
        if skipped:
            kind = "skipped"
        elif task.action in CONTROLLER_ACTIONS or delegate in ("localhost", "127.0.0.1"):
            kind = "controller"
        else:
            kind = "host"
        self._results[kind] += 1
        if kind == "host":
            name = result._host.get_name()
            self._per_host[name] = self._per_host.get(name, 0) + 1

    def v2_runner_on_ok(self, result):
        self._count(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._count(result)

    def v2_runner_on_unreachable(self, result):
        self._count(result)

    def v2_runner_on_skipped(self, result):
        self._count(result, skipped=True)

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
        if self._plays:
            self._plays[-1]["seconds"] = round(time.monotonic() - self._plays[-1].pop("began"), 3)
        hosts = {h: stats.summarize(h) for h in sorted(stats.processed)}
        result = {
            "wall_seconds": round(time.monotonic() - self._start, 3),
            "tasks": len(self._tasks),
            "roles": roles,
            "plays": self._plays,
            "task_results": dict(self._results),
            "host_tasks": self._results["host"],
            "host_tasks_per_host": dict(sorted(self._per_host.items())),
            "changed": sum(h["changed"] for h in hosts.values()),
            "failed": sum(h["failures"] + h["unreachable"] for h in hosts.values()),
            "hosts": hosts,
            "slowest_tasks": sorted(self._tasks, key=lambda t: -t["seconds"])[:10],
            "all_tasks": self._tasks,
        }
        path = os.environ.get("BENCH_TIMER_FILE")
        if path:
            with open(path, "w") as out:
                json.dump(result, out, indent=1)
