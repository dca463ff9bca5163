"""What the scenario's later tests (test_then_*.py) share: its nodes, a run of the role with more inputs, and
the running members as a node reports them."""

import json
import os
import pathlib
import subprocess
import time

import testinfra

SCENARIO = pathlib.Path(__file__).resolve().parents[1]
NODES = {
    "emq-cluster-1": "172.30.2.11",
    "emq-cluster-2": "172.30.2.12",
    "emq-cluster-3": "172.30.2.13",
}
EVERYONE = sorted("emqx@" + ip for ip in NODES.values())
INFRA_HOST, INFRA_ADDR = "emq-cluster-dns", "172.30.2.20"


def host(name):
    return testinfra.get_host("docker://" + name)


def converge(*extra):
    """The scenario's converge playbook with extra arguments (-e ...): (rc, output)."""
    cmd = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], *extra, str(SCENARIO / "converge.yml")]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False,
                         env=dict(os.environ, ANSIBLE_LOG_PATH="", ANSIBLE_FORCE_COLOR="false"))
    return run.returncode, run.stdout + run.stderr


def unchanged(rc, out):
    """True when the run passed and changed nothing on any of the three nodes."""
    recap = [line for line in out.splitlines() if line.startswith("emq-cluster-") and "ok=" in line]
    return rc == 0 and len(recap) == 3 and all("changed=0" in line for line in recap)


def running(name):
    """The running members as the node reports them (empty when EMQX does not answer)."""
    out = host(name).run("emqx ctl cluster status --json")
    return sorted(json.loads(out.stdout)["running_nodes"]) if out.rc == 0 else []


def wait(check, timeout=90):
    """Poll check every 2 s until it holds or timeout seconds passed; its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(2)
    return bool(check())


def members(names):
    return {n: running(n) for n in names}
