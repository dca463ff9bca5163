# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""emq_cluster with static discovery waits for EMQX to merge clusters that booted apart, and joins only a node left alone.

EMQX's autocluster (ekka 0.23.2, ``ekka_autocluster.erl``) keeps retrying discovery until every seed
is reachable and joins the oldest member, so two clusters that booted apart merge by themselves. A
forced ``cluster join`` on a node that is already in a multi-node cluster fails instead. The role runs
here against three local hosts whose ``emqx`` command (``emq_cluster_cli_path``) answers with canned
EMQX 5.8 output: node 1 alone and nodes 2+3 together until the merge, then all three. The role must
wait through the split and pass, and must not have run a join; the earlier role (which joined after a
short settle) failed on node 2 here. A node that is alone once discovery settles (ekka stops retrying
once a node has joined, so a node whose cluster dissolved stays alone) is the one case the role joins.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
NAMES = {"n1": "emqx@10.0.0.1", "n2": "emqx@10.0.0.2", "n3": "emqx@10.0.0.3", "n4": "emqx@10.0.0.4"}
MERGE_AFTER = 12  # seconds after the run starts

# What `emqx ctl ...` prints on EMQX 5.8.9 for the commands the role runs; anything else is recorded and refused.
FAKE_EMQX = """#!{python}
import json, os, sys, time
me, merge_at, log, joined = {me!r}, float(open({start!r}).read()) + {merge_after}, {log!r}, {joined!r}
args = sys.argv[1:]
with open(log, "a") as fh:
    fh.write(me + " " + " ".join(args) + "\\n")
names = {names!r}
mine = [g for g in {groups!r} if me in g][0]
if args == ["ctl", "status"]:
    print("Node '%s' 5.8.9 is started" % me)
elif args[:3] == ["ctl", "cluster", "join"] and mine == [me] and not os.path.exists(joined):
    open(joined, "w").close()
    print("Join the cluster successfully.")
elif args[:3] == ["ctl", "cluster", "status"]:
    if time.time() >= merge_at or os.path.exists(joined):
        running = sorted(names)
    else:
        running = sorted(mine)
    if "--json" in args:
        print(json.dumps({{"running_nodes": running, "stopped_nodes": []}}, indent=2))
    else:
        print("Cluster status: #{{running_nodes => %s, stopped_nodes => []}}" % running)
else:
    print("refused by the test: " + " ".join(args))
    sys.exit(1)
"""

PLAYBOOK = """\
- name: Run emq_cluster
  hosts: emq_nodes
  gather_facts: false
  roles:
    - role: iothub.emq.emq_cluster
"""


def _run(tmp_path: Path, merge_after: float, groups: list, settle: int) -> tuple[subprocess.CompletedProcess, float, list[str]]:
    """Run emq_cluster on n1-n4, split into <groups> (host names) until <merge_after> s or a join of a lone node."""
    start, log, joined = tmp_path / "start", tmp_path / "calls.log", tmp_path / "joined"
    hosts = {}
    for host, name in NAMES.items():
        cli = tmp_path / ("emqx-" + host)
        cli.write_text(FAKE_EMQX.format(python=sys.executable, me=name, start=str(start), merge_after=merge_after,
                                        log=str(log), joined=str(joined), names=sorted(NAMES.values()),
                                        groups=[[NAMES[h] for h in g] for g in groups]))
        cli.chmod(0o755)
        hosts[host] = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                       "emq_node_name": name, "emq_cluster_cli_path": str(cli)}
    group_vars = {"emq_cluster_discovery": "static", "emq_cluster_wait_timeout": 60, "emq_cluster_join_timeout": 10,
                  "emq_cluster_static_settle_timeout": settle}
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"emq_nodes": {"hosts": hosts, "vars": group_vars}}}}))
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"), ANSIBLE_ROLES_PATH=str(ROOT / "roles"),
               ANSIBLE_HOME=str(tmp_path / "home"), ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CACHE_PLUGIN="memory", ANSIBLE_RETRY_FILES_ENABLED="false")
    start.write_text(str(time.time()))
    run = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(playbook)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    return run, time.time() - float(start.read_text()), log.read_text().splitlines()


def test_static_discovery_waits_for_clusters_that_booted_apart_to_merge(tmp_path: Path) -> None:
    # Nodes 1+2 (1 is the join peer) and 3+4, until EMQX merges them; the settle time is short, so a role that
    # joined after it would act on nodes 3 and 4 while they are in a multi-node cluster.
    run, elapsed, calls = _run(tmp_path, MERGE_AFTER, [["n1", "n2"], ["n3", "n4"]], settle=3)
    out = run.stdout + run.stderr

    assert run.returncode == 0, out[-4000:]
    assert elapsed >= MERGE_AFTER, "the role passed before the clusters merged"
    assert not [c for c in calls if " join" in c or " leave" in c], "the role forced a cluster change: %s" % calls
    assert "Cluster of 4 node(s):" in out
    # At least the settle read and one read of the wait on every node. How many more depends on how fast the
    # machine runs the role (pytest-xdist runs two tests at once): elapsed and the 4-node report above prove
    # the wait, this proves it was a read of every node, not a sleep.
    status_reads = [c for c in calls if c.endswith("ctl cluster status --json")]
    assert len(status_reads) >= 2 * len(NAMES), "the role did not read the nodes through the split: %s" % status_reads


def test_a_node_discovery_left_alone_is_joined_and_no_other(tmp_path: Path) -> None:
    # Node 3 alone for good, the others together: after the settle time only node 3 is joined, through node 1.
    run, _elapsed, calls = _run(tmp_path, 10 ** 6, [["n1", "n2", "n4"], ["n3"]], settle=3)
    out = run.stdout + run.stderr

    assert run.returncode == 0, out[-4000:]
    joins = [c for c in calls if " join" in c]
    assert joins == ["emqx@10.0.0.3 ctl cluster join emqx@10.0.0.1"], calls
    assert "Cluster of 4 node(s):" in out


def test_a_join_peer_left_alone_joins_the_others(tmp_path: Path) -> None:
    # Seen in the site scenario: the join peer (node 1) alone, the others together. Node 1 joins them.
    run, _elapsed, calls = _run(tmp_path, 10 ** 6, [["n1"], ["n2", "n3", "n4"]], settle=3)
    out = run.stdout + run.stderr

    assert run.returncode == 0, out[-4000:]
    joins = [c for c in calls if " join" in c]
    assert joins == ["emqx@10.0.0.1 ctl cluster join emqx@10.0.0.2"], calls
    assert "Cluster of 4 node(s):" in out
