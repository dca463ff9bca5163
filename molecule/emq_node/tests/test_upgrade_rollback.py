"""issue 15: an upgrade whose node does not come back is put back on the package it ran before.

Runs last. The node runs 5.8.9 (day 2), installed from a package file, so emq_node keeps that file as the
last good package. The upgrade goes to a 5.8.10 stand-in built with --fail-boot (a node that never boots):
the rollout must stop, reinstall 5.8.9 from the last good package, restart the node on its last good
configuration, and say so; the node then serves as before, and a run with the inventory's version
changes nothing.
"""

import os
import pathlib
import subprocess

import pytest
import testinfra

SCENARIO = pathlib.Path(__file__).resolve().parents[1]
PROJECT = pathlib.Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", SCENARIO.parents[1]))
EPHEMERAL = pathlib.Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "."))


def _converge(*extra):
    cmd = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"]]
    for name in ("day2-vars.yml", "third-password.yml", "durable-vars.yml"):
        if (EPHEMERAL / name).exists():
            cmd += ["-e", "@%s" % (EPHEMERAL / name)]
    cmd += list(extra) + [str(SCENARIO / "converge.yml")]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False,
                         env=dict(os.environ, ANSIBLE_LOG_PATH="", ANSIBLE_FORCE_COLOR="false"))
    return run.returncode, run.stdout + run.stderr


@pytest.fixture(scope="module")
def failed_upgrade(tmp_path_factory):
    host = testinfra.get_host("docker://emq-node-1")
    assert host.package("emqx").version.startswith("5.8.9")
    out_dir = tmp_path_factory.mktemp("broken")
    subprocess.run([str(PROJECT / "tests/emqx_standin/build_deb.sh"), "--version", "5.8.10", "--fail-boot",
                    "--output", str(out_dir)], check=True, capture_output=True)
    before = host.check_output("systemctl show -p InvocationID --value emqx.service")
    rc, out = _converge("-e", "emq_node_version=5.8.10", "-e", "emq_node_package_file=%s" % (out_dir / "emqx_5.8.10_all.deb"),
                        "-e", "emq_node_start_timeout=20")
    return {"host": host, "rc": rc, "out": out, "before": before}


def test_the_rollout_stops_and_says_the_package_was_put_back(failed_upgrade):
    out = failed_upgrade["out"]
    assert failed_upgrade["rc"] == 2, out[-4000:]
    assert "EMQX on emq-node-1 did not come back after its restart" in out, out[-4000:]
    assert "The package was put back: emq-node-1 has emqx 5.8.9 installed again (/var/cache/iothub-emq/last-good.deb)" in out, \
        out[-4000:]
    assert "answers /status again on its last good configuration" in out


def test_the_node_runs_the_previous_version_again(failed_upgrade):
    host = failed_upgrade["host"]
    assert host.package("emqx").version.startswith("5.8.9")
    assert host.check_output("emqx ctl status").startswith("Node 'emqx@172.30.1.11' 5.8.9 is started")
    assert host.check_output("systemctl is-active emqx.service") == "active"
    assert host.check_output("systemctl show -p InvocationID --value emqx.service") != failed_upgrade["before"]


def test_a_run_with_the_inventorys_version_then_changes_nothing(failed_upgrade):
    rc, out = _converge()
    recap = [line for line in out.splitlines() if line.startswith("emq-node-1") and "ok=" in line]
    assert rc == 0 and recap and "changed=0" in recap[-1], out[-3000:]
