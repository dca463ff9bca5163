"""bench/run.py's bookkeeping: the settings a run records, the figures kept across BENCH_ONLY runs, the baseline
ratios, and the bench_timer callback's count of task results that touched a host. No lab is built here."""

import importlib.util
import os
import sys
from types import SimpleNamespace

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load("bench_run", "bench/run.py")

DUMP = """ANSIBLE_NOCOWS(/w/ansible.cfg) = True
ANSIBLE_PIPELINING(env: ANSIBLE_PIPELINING) = False
CACHE_PLUGIN(/w/ansible.cfg) = jsonfile
DEFAULT_FORKS(/w/ansible.cfg) = 10
DEFAULT_GATHERING(/w/ansible.cfg) = smart
DEFAULT_STRATEGY(default) = linear
"""

MACHINE_OLD = {"date": "2026-11-25 07:59 UTC", "cpus": 2, "load_average_at_start": [0.7, 3.6, 4.0]}
MACHINE_NEW = {"date": "2026-12-01 10:40 UTC", "cpus": 2, "load_average_at_start": [1.0, 1.0, 1.0]}


def test_settings_say_value_and_source():
    settings = bench.parse_settings(DUMP)
    assert settings == {"ANSIBLE_PIPELINING": "False (env: ANSIBLE_PIPELINING)", "DEFAULT_FORKS": "10 (/w/ansible.cfg)",
                        "CACHE_PLUGIN": "jsonfile (/w/ansible.cfg)", "DEFAULT_GATHERING": "smart (/w/ansible.cfg)",
                        "DEFAULT_STRATEGY": "linear (default)"}
    assert bench.parse_settings("")["ANSIBLE_PIPELINING"] == "unknown"


def test_a_partial_run_keeps_the_other_phases_with_their_date():
    previous = {"machine": MACHINE_OLD, "converge": {"cold_seconds": 112}, "frontdoor": {"x": 1}}
    results = {"machine": MACHINE_NEW, "converge": {"cold_seconds": 80}, "noop": None}
    out = bench.merged(results, previous)
    assert out["converge"] == {"cold_seconds": 80} and out["frontdoor"] == {"x": 1}
    assert out["machine"] == MACHINE_NEW and "noop" not in out
    assert out["measured"]["converge"]["date"] == MACHINE_NEW["date"]
    assert out["measured"]["frontdoor"]["date"] == MACHINE_OLD["date"]
    # Once stamped, a phase keeps its date through later partial runs.
    again = bench.merged({"machine": dict(MACHINE_NEW, date="2026-12-02 09:00 UTC"), "latency": {"y": 2}}, out)
    assert again["measured"]["frontdoor"]["date"] == MACHINE_OLD["date"]
    assert again["measured"]["converge"]["date"] == MACHINE_NEW["date"]
    assert again["measured"]["latency"]["date"] == "2026-12-02 09:00 UTC"


def test_ratios_against_the_baseline():
    results = {"baseline": {"cold_seconds": 120.0, "noop_median_seconds": 100.0},
               "converge": {"cold_seconds": 60.0},
               "noop": {bench.NOOP_VARIANTS[0][0]: {"median_seconds": 25.0}}}
    bench.compare_to_baseline(results)
    assert results["versus_baseline"] == {"cold": 0.5, "noop": 0.25}
    only_noop = {"baseline": {"cold_seconds": 1.0, "noop_median_seconds": 50.0},
                 "noop": {bench.NOOP_VARIANTS[0][0]: {"median_seconds": 25.0}}}
    bench.compare_to_baseline(only_noop)
    assert only_noop["versus_baseline"] == {"noop": 0.5}
    nothing = {"converge": {"cold_seconds": 1.0}}
    bench.compare_to_baseline(nothing)
    assert "versus_baseline" not in nothing


@pytest.fixture
def timer():
    pytest.importorskip("ansible")
    sys.modules.pop("bench_timer", None)
    return _load("bench_timer", "bench/callback_plugins/bench_timer.py").CallbackModule()


def _result(action, host="n1", delegate=None):
    task = SimpleNamespace(action=action, delegate_to=delegate)
    return SimpleNamespace(_task=task, _host=SimpleNamespace(get_name=lambda: host))


def test_timer_counts_results_that_touch_a_host(timer):
    timer.v2_runner_on_ok(_result("ansible.builtin.template"))
    timer.v2_runner_on_ok(_result("ansible.builtin.template", host="n2"))
    timer.v2_runner_on_failed(_result("iothub.emq.host_probe"))
    timer.v2_runner_on_ok(_result("ansible.builtin.assert"))
    timer.v2_runner_on_ok(_result("set_fact"))
    timer.v2_runner_on_ok(_result("community.crypto.openssl_privatekey", delegate="localhost"))
    timer.v2_runner_on_skipped(_result("ansible.builtin.copy"))
    assert timer._results == {"host": 3, "controller": 3, "skipped": 1}
    assert timer._per_host == {"n1": 2, "n2": 1}
