"""Core and replicant node roles (EMQX 5.8.9, ekka 0.23.2, mria 0.8.18; see the README's "Node roles"):
- open source refuses `node.role = replicant` at boot (emqx_conf_schema:validate_node_role/1);
- enterprise: replicants wait for a core (node up, applications not), find the cores through their seeds
  (replicants in the seeds are ignored) or `cluster join`, list in running_nodes and /api/v5/nodes with
  role replicant, cannot be joined, carry messages both ways, disappear (not "stopped") when they stop
  and come back by themselves, leave and are force-left."""

import os
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request

import paho.mqtt.client as mqtt
import pytest

from emqx_standin import erlfmt, rlog

import standin
from standin import wait_for

LICENSE = 'license.key = "stand-in-license-key"\n'
REPLICANT = "node.role = replicant\n"


@pytest.fixture
def ee_code(tmp_path):
    dest = tmp_path / "code" / "emqx_standin"
    shutil.copytree(os.path.join(standin.STANDIN_DIR, "emqx_standin"), str(dest),
                    ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "VERSION").write_text("5.10.4\n")
    (dest / "EDITION").write_text("enterprise\n")
    return str(tmp_path / "code")


def running(node):
    return node.cluster_status()["running_nodes"]


def status_port_open(node):
    try:
        with urllib.request.urlopen("http://%s:18083/status" % node.host, timeout=1) as r:
            return r.status == 200
    except (OSError, urllib.error.URLError):
        return False


def mqtt_client(cid, node, received=None, lock=None):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv311)
    if received is not None:
        def on_message(_c, _u, m):
            with lock:
                received.append((m.topic, m.payload.decode(), m.retain))
        c.on_message = on_message
    c.connect(node.host, 1883, keepalive=30)
    c.loop_start()
    return c


def roles(node):
    st, body = node.api_json("GET", "/api/v5/nodes")
    assert st == 200, body
    return {x["node"]: (x["role"], x["node_status"]) for x in body}


# ------------------------------------------------------------------------------------- open source
def test_open_source_refuses_the_replicant_role(tmp_path):
    node_dir = str(tmp_path)
    os.makedirs(os.path.join(node_dir, "etc"))
    with open(os.path.join(node_dir, "etc", "emqx.conf"), "w") as fh:
        fh.write('node.data_dir = "%s/data"\nnode.role = replicant\n' % node_dir)
    p = subprocess.run([standin.PYTHON, "-m", "emqx_standin", "foreground"], env=standin.env_for(node_dir),
                       capture_output=True, text=True, timeout=30, cwd=node_dir)
    assert p.returncode == 1, p.stdout + p.stderr
    # hocon_tconf runs the field validator (on the value converted to an existing atom) before the enum
    assert ('#{kind => validation_error, path => "node.role", reason => "Node role \'replicant\' is only allowed '
            'in Enterprise edition since 5.8.0", value => replicant}') in p.stderr
    assert "EMQX 5.8.9 is running now!" not in p.stdout
    # `core` (the default) and the alias db_role are fine
    from emqx_standin import hocon, schema
    assert schema.check(hocon.parse("node.db_role = core\n"))["node"]["role"] == "core"


def test_enterprise_has_no_cluster_core_nodes(tmp_path, ee_code):
    # removed from emqx_conf_schema in 5.8.0 for both editions (changes/ce/breaking-13526.en.md)
    node_dir = str(tmp_path / "n")
    os.makedirs(os.path.join(node_dir, "etc"))
    with open(os.path.join(node_dir, "etc", "emqx.conf"), "w") as fh:
        fh.write('node.data_dir = "%s/data"\nnode.role = replicant\ncluster.core_nodes = "emqx@10.0.0.1"\n'
                 % node_dir)
    p = subprocess.run([standin.PYTHON, "-m", "emqx_standin", "foreground"],
                       env=standin.env_for(node_dir, ee_code), capture_output=True, text=True, timeout=30,
                       cwd=node_dir)
    assert p.returncode == 1 and "bad config key: cluster.core_nodes (unknown_fields)" in p.stderr, p.stderr


# ------------------------------------------------------------------------------------- mria_lb parts
def test_lb_cluster_choice_and_seed_file():
    # mria_lb / mria_lib eunit expectations (find_clusters_test_, find_best_cluster_test_)
    assert sorted(rlog.find_clusters({1: [1, 2, 3], 2: [2, 1, 3], 3: [2, 3, 1]})) == [[1, 2, 3]]
    assert sorted(rlog.find_clusters({1: [1, 2, 3], 2: [2, 3], 3: [3, 2]})) == [[1], [2, 3]]
    assert sorted(rlog.find_clusters({1: [1, 2, 3], 2: [1, 2, 3], 3: [3, 2, 1], 4: [4, 5], 5: [4, 5],
                                      6: [6, 4, 5]})) == [[1, 2, 3], [4, 5], [6]]
    assert rlog.find_best_cluster([], []) == (False, [])
    assert rlog.find_best_cluster([1], []) == (True, [])
    assert rlog.find_best_cluster([1, 2], [[1, 2]]) == (False, [1, 2])
    assert rlog.find_best_cluster([1, 2], [[1, 2, 3]]) == (True, [1, 2, 3])
    assert rlog.find_best_cluster([1, 2, 3], [[1, 2]]) == (True, [1, 2])
    assert rlog.find_best_cluster([1, 2], [[1, 2], [3, 4, 5], [6, 7]]) == (False, [1, 2])
    assert rlog.find_best_cluster([6, 7, 8], [[1, 2], [3, 4, 5], [6, 7]]) == (True, [6, 7])
    assert rlog.find_best_cluster([], [[1, 2], [3, 4, 5]]) == (True, [3, 4, 5])
    # the seed file is io:format("~p.", [Node]), read back with file:consult/1
    assert rlog.format_seed("emqx@10.0.0.1") == "'emqx@10.0.0.1'."
    assert rlog.parse_seed(rlog.format_seed("emqx@10.0.0.1")) == "emqx@10.0.0.1"
    assert rlog.parse_seed("emqx@localhost.\n") == "emqx@localhost"
    assert rlog.parse_seed("garbage") is None
    # a replicant takes its data from a core of the same `emqx` application version, not release
    assert rlog.emqx_app_vsn("5.8.9") == rlog.emqx_app_vsn("5.10.1") == "5.5.5"
    assert rlog.emqx_app_vsn("5.8.8") != rlog.emqx_app_vsn("5.8.9")


# ------------------------------------------------------------------------------------- enterprise
def test_cores_and_replicants_form_one_cluster(nodes, ee_code):
    c1, c2 = nodes(2, code_dir=ee_code, extra=LICENSE)
    r2 = nodes.one(code_dir=ee_code, extra=LICENSE + REPLICANT)               # manual: `cluster join`
    # static seeds: another replicant (ignored: mria_lb keeps cores only) and one core (its db_nodes
    # bring the other)
    r1 = nodes.one(code_dir=ee_code, extra=LICENSE + REPLICANT, discovery="static",
                   seeds=('"%s"' % r2.name, '"%s"' % c1.name))
    everyone = [c1, c2, r1, r2]
    names = sorted(n.name for n in everyone)

    # replicants before any core: the node answers, its applications wait (no dashboard, no listener)
    r1.start(wait=False)
    r2.start(wait=False)
    wait_for(lambda: r1.cli("ping")[0] == 0 and r2.cli("ping")[0] == 0, what="replicants answer pings")
    assert r1.ctl("status") == (0, "Node '%s' 5.10.4 is starting\n" % r1.name, "")
    assert r1.cluster_status() == {"running_nodes": [r1.name], "stopped_nodes": []}
    assert not status_port_open(r1) and not status_port_open(r2)

    for n in (c1, c2):
        n.start(wait=False)
    for n in (c1, c2):
        n.wait_up()
    rc, out, _ = c2.ctl("cluster", "join", c1.name)
    assert rc == 0 and out.startswith("Join the cluster successfully.\nCluster status: "), out
    r1.wait_up(timeout=30)                   # found c1 through its seeds, then c2 through c1's db_nodes
    # r2 (manual) still waits; a join during its boot writes the seed file; a replicant prints no status
    assert r2.ctl("status")[1] == "Node '%s' 5.10.4 is starting\n" % r2.name
    assert r2.ctl("cluster", "join", c2.name) == (0, "Join the cluster successfully.\n", "")
    r2.wait_up(timeout=30)
    wait_for(lambda: all(running(n) == names for n in everyone), timeout=20, what="one cluster of 4")
    for n in everyone:
        assert n.cluster_status() == {"running_nodes": names, "stopped_nodes": []}
    assert r2.ctl("cluster", "status") == (0, erlfmt.cluster_status_text(names, []), "")

    # /api/v5/nodes and /api/v5/cluster, on a core and on a replicant
    want = {c1.name: ("core", "running"), c2.name: ("core", "running"),
            r1.name: ("replicant", "running"), r2.name: ("replicant", "running")}
    assert roles(c1) == want and roles(r1) == want
    st, body = r2.api_json("GET", "/api/v5/cluster")
    assert st == 200 and body["nodes"] == names and body["self"] == r2.name
    st, body = r1.api_json("GET", "/api/v5/nodes/%s" % r1.name)
    assert st == 200 and body["role"] == "replicant" and body["edition"] == "Enterprise"

    # joining TO a replicant is refused (mria:join1/2); a member, replicant or not, is already in it
    c3 = nodes.one(code_dir=ee_code, extra=LICENSE)
    c3.start()
    assert c3.ctl("cluster", "join", r1.name) == (
        1, "Failed to join the cluster: {cannot_join_to_replicant,'%s'}\n" % r1.name, "")
    assert r1.ctl("cluster", "join", r2.name) == (
        1, "Failed to join the cluster: {already_in_cluster,'%s'}\n" % r2.name, "")
    assert c1.ctl("cluster", "join", r1.name) == (
        1, "Failed to join the cluster: {already_in_cluster,'%s'}\n" % r1.name, "")
    # REST invite by a replicant: the invited node runs ekka:join(replicant)
    st, body = r1.api_json("PUT", "/api/v5/cluster/%s/invite" % c3.name, {})
    assert st == 400 and body == {"code": "BAD_REQUEST", "message": "{cannot_join_to_replicant,'%s'}" % r1.name}
    assert running(c3) == [c3.name]
    # data import is for cores only (emqx_mgmt_data_backup:validate_import_allowed/0)
    rc, out, _ = r1.ctl("data", "import", "emqx-export-x.tar.gz")
    assert rc == 0 and out == ('[error] Data import failed, reason: "backup data import is only allowed on core '
                               'EMQX nodes, but requested node \'%s\' is not core".\n' % r1.name)

    # messages across roles: core -> replicant, replicant -> core, replicant -> replicant, exactly once
    received = {n.name: [] for n in everyone}
    lock = threading.Lock()
    subs = []
    for i, n in enumerate(everyone):
        c = mqtt_client("sub-%d" % i, n, received[n.name], lock)
        c.subscribe("fleet/#", qos=1)
        subs.append(c)
    time.sleep(0.5)
    pubs = [mqtt_client("pub-c1", c1), mqtt_client("pub-r1", r1)]
    expected = []
    for p, who in zip(pubs, ("c1", "r1")):
        for j in range(3):
            p.publish("fleet/%s/%d" % (who, j), "m-%s-%d" % (who, j), qos=1).wait_for_publish(5)
            expected.append(("fleet/%s/%d" % (who, j), "m-%s-%d" % (who, j), False))
    wait_for(lambda: all(len(v) >= len(expected) for v in received.values()), what="delivery across roles")
    # a retained message stored on a replicant is found by a subscriber on a core
    pubs[1].publish("fleet/retained", "kept", qos=1, retain=True).wait_for_publish(5)
    time.sleep(0.5)
    late = []
    lc = mqtt_client("late-c2", c2, late, lock)
    lc.subscribe("fleet/retained", qos=1)
    wait_for(lambda: late == [("fleet/retained", "kept", True)], what="retained from a replicant")
    for name, got in received.items():
        assert sorted(x for x in got if x[0] != "fleet/retained") == sorted(expected), name
    for c in subs + pubs + [lc]:
        c.loop_stop()
        c.disconnect()

    # a replicant that stops is not a stopped node (mria:cluster_nodes(all) has no stopped replicant);
    # restarted, it finds its cores again by itself (the seed file of its join)
    r2.stop()
    three = sorted([c1.name, c2.name, r1.name])
    wait_for(lambda: c1.cluster_status() == {"running_nodes": three, "stopped_nodes": []}
             and running(r1) == three, what="r2 gone")
    assert r2.name not in roles(c1)
    r2.start(wait=False)
    r2.wait_up(timeout=30)
    wait_for(lambda: all(running(n) == names for n in everyone), timeout=20, what="r2 back by itself")

    # force-leave of a running replicant: announced to the members, it is gone from their views
    rc, out, _ = c1.ctl("cluster", "force-leave", r1.name)
    rest = sorted([c1.name, c2.name, r2.name])
    assert (rc, out) == (0, "Remove the node from cluster successfully.\n" + erlfmt.cluster_status_text(rest, []))
    wait_for(lambda: running(c2) == rest and running(r2) == rest, what="force-leave seen by all")

    # leave on a replicant with static discovery: autocluster (and core discovery) off, mria restarted
    # with no core: the applications stay stopped until discovery is enabled again
    rc, out, _ = r1.ctl("cluster", "leave")
    assert (rc, out) == (0, "Automatic cluster discovery is disabled on this node: '%s' to avoid re-joining the "
                         "same cluster again, if the node is not stopped soon. To enable it run: 'emqx ctl "
                         "cluster discovery enable' or restart the node.\nLeave the cluster successfully.\n%s"
                         % (r1.name, erlfmt.cluster_status_text([r1.name], [])))
    assert not status_port_open(r1)
    assert r1.cli("ping")[0] == 0
    assert r1.ctl("cluster", "leave") == (1, "Failed to leave the cluster: node_not_in_cluster\n", "")
    assert r1.ctl("cluster", "discovery", "enable") == (0, "Automatic cluster discovery enabled.\n", "")
    r1.wait_up(timeout=30)
    wait_for(lambda: all(running(n) == names for n in everyone), timeout=20, what="r1 back after discovery")
