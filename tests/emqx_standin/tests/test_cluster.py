"""Clustering: static seeds and manual join, exactly-once delivery across nodes, cookie mismatch,
restart keeps membership, stopped nodes, force-leave, leave, data replaced on join, REST invite."""

import json
import os
import threading
import time

import paho.mqtt.client as mqtt

from emqx_standin import erlfmt

from standin import wait_for


def mk_client(cid, host, port=1883):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv311)
    c.connect(host, port, keepalive=30)
    c.loop_start()
    return c


def running(node):
    return node.cluster_status()["running_nodes"]


def stopped(node):
    return node.cluster_status()["stopped_nodes"]


def all_running(nodes_):
    names = sorted(n.name for n in nodes_)
    return all(running(n) == names and stopped(n) == [] for n in nodes_)


def test_static_seeds_three_nodes_exactly_once_delivery(nodes):
    hosts = nodes(3)
    seeds = ['"%s"' % n.name for n in hosts]
    for n in hosts:
        n.write_conf(open(os.path.join(n.etc, "emqx.conf")).read().replace(
            "discovery_strategy = manual", "discovery_strategy = static").replace(
            "static.seeds = []", "static.seeds = [%s]" % ", ".join(seeds)))
    for n in hosts:
        n.start(wait=False)
    for n in hosts:
        n.wait_up()
    wait_for(lambda: all_running(hosts), timeout=60, what="static cluster of 3")

    # one subscriber on every node, `+` and `#` filters
    received = {n.name: [] for n in hosts}
    lock = threading.Lock()
    subs = []
    for i, n in enumerate(hosts):
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="sub-%d" % i, protocol=mqtt.MQTTv5)

        def on_message(_c, _u, m, name=n.name):
            with lock:
                received[name].append((m.topic, m.payload.decode()))
        c.on_message = on_message
        c.connect(n.host, 1883)
        c.loop_start()
        c.subscribe("fleet/+/telemetry" if i == 0 else "fleet/#", qos=1)
        subs.append(c)
    time.sleep(0.5)
    pubs = [mk_client("pub-%d" % i, n.host) for i, n in enumerate(hosts)]
    expected = []
    for i, p in enumerate(pubs):
        for j in range(10):
            topic = "fleet/dev%d/telemetry" % i
            payload = "m-%d-%d" % (i, j)
            p.publish(topic, payload, qos=[0, 1, 2][j % 3]).wait_for_publish(5)
            expected.append((topic, payload))
    wait_for(lambda: all(len(v) >= len(expected) for v in received.values()), timeout=30,
             what="cross-node delivery")
    time.sleep(0.5)  # anything extra would be a duplicate
    for name, got in received.items():
        assert sorted(got) == sorted(expected), name   # each message exactly once on each node
    for c in subs + pubs:
        c.loop_stop()
        c.disconnect()
    # /api/v5/cluster and /api/v5/nodes agree
    st, body = hosts[1].api_json("GET", "/api/v5/cluster")
    assert st == 200 and body["name"] == "emqxcl" and body["self"] == hosts[1].name
    assert sorted(body["nodes"]) == sorted(n.name for n in hosts)
    st, body = hosts[2].api_json("GET", "/api/v5/nodes")
    assert st == 200 and sorted(x["node"] for x in body) == sorted(n.name for n in hosts)
    for x in body:
        assert x["node_status"] == "running" and x["version"] == "5.8.9" and x["edition"] == "Opensource"
        assert x["role"] == "core" and isinstance(x["uptime"], int) and x["max_fds"] > 0
        assert "connections" in x and "live_connections" in x


def test_own_only_seed_stays_alone(nodes):
    n = nodes.one(discovery="static")
    n.write_conf(open(os.path.join(n.etc, "emqx.conf")).read().replace(
        "static.seeds = []", 'static.seeds = ["%s"]' % n.name))
    n.start()
    time.sleep(1.0)
    assert n.cluster_status() == {"running_nodes": [n.name], "stopped_nodes": []}


def test_manual_join_leave_cookie_mismatch_and_exit_codes(nodes):
    a, b, c = nodes(3)
    bad = nodes.one(cookie="wrongcookie")
    for n in (a, b, c, bad):
        n.start()
    rc, out, err = b.ctl("cluster", "join", a.name)
    assert rc == 0
    assert out.startswith("Join the cluster successfully.\nCluster status: #{running_nodes => [")
    assert "'%s','%s'" % tuple(sorted([a.name, b.name])) in out
    rc, out, _ = c.ctl("cluster", "join", b.name)
    assert rc == 0 and out.startswith("Join the cluster successfully.\n")
    wait_for(lambda: all_running([a, b, c]), what="3 nodes running")

    # joining again / itself
    assert c.ctl("cluster", "join", a.name) == (0, "Failed to join the cluster: {already_in_cluster,'%s'}\n"
                                                % a.name, "")
    assert c.ctl("cluster", "join", c.name) == (0, "Ignore.\n", "")

    # a different cookie is refused: node_down, exit 0 (5.8), and 'Invalid challenge reply' in the log
    rc, out, err = bad.ctl("cluster", "join", a.name)
    assert (rc, out) == (0, "Failed to join the cluster: {node_down,'%s'}\n" % a.name)
    wait_for(lambda: "Invalid challenge reply" in a.logtext(), what="challenge log line")
    assert "** Connection attempt from node '%s' rejected. Invalid challenge reply. **" % bad.name in a.logtext()
    assert bad.cluster_status() == {"running_nodes": [bad.name], "stopped_nodes": []}

    # leave
    rc, out, _ = c.ctl("cluster", "leave")
    assert rc == 0
    assert out == "Leave the cluster successfully.\n" + erlfmt.cluster_status_text([c.name], [])
    wait_for(lambda: running(a) == sorted([a.name, b.name]) and stopped(a) == [], what="leave seen by a")
    assert c.ctl("cluster", "leave") == (0, "Failed to leave the cluster: node_not_in_cluster\n", "")
    assert c.ctl("cluster", "force-leave", a.name) == (
        0, "Failed to remove the node from cluster: node_not_in_cluster\n", "")
    assert a.ctl("cluster", "force-leave", a.name) == (0, "Ignore.\n", "")
    # node down
    rc, out, _ = a.ctl("cluster", "join", "emqx@127.255.255.254")
    assert (rc, out) == (0, "Failed to join the cluster: {node_down,'emqx@127.255.255.254'}\n")


def test_restart_keeps_membership_and_stopped_nodes(nodes):
    a, b, c = nodes(3)
    for n in (a, b, c):
        n.start()
    assert b.ctl("cluster", "join", a.name)[1].startswith("Join the cluster successfully.")
    assert c.ctl("cluster", "join", a.name)[1].startswith("Join the cluster successfully.")
    wait_for(lambda: all_running([a, b, c]), what="cluster formed")

    c.stop()
    wait_for(lambda: stopped(a) == [c.name] and stopped(b) == [c.name], what="c reported stopped")
    assert running(a) == sorted([a.name, b.name])
    rc, out, _ = a.ctl("cluster", "status")
    assert rc == 0 and ("stopped_nodes => ['%s']" % c.name) in out
    st, body = a.api_json("GET", "/api/v5/nodes")
    assert st == 200
    by = {x["node"]: x for x in body}
    assert by[c.name] == {"node": c.name, "node_status": "stopped", "role": "core"}
    assert by[a.name]["node_status"] == "running" and by[b.name]["node_status"] == "running"
    st, body = a.api_json("GET", "/api/v5/cluster")
    assert sorted(body["nodes"]) == sorted([a.name, b.name])

    # the stopped member comes back by itself (membership under data_dir/mnesia/<name>/)
    assert os.path.isdir(os.path.join(c.data, "mnesia", c.name))
    c.start()
    # like mria waiting for its peers' tables: the restarted node sees its running peers at once
    assert c.cluster_status() == {"running_nodes": sorted([a.name, b.name, c.name]), "stopped_nodes": []}
    wait_for(lambda: all_running([a, b, c]), what="c rejoined after restart")

    # messages flow to the restarted node again
    got = []
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="s-c")
    sub.on_message = lambda _c, _u, m: got.append(m.payload)
    sub.connect(c.host, 1883)
    sub.loop_start()
    sub.subscribe("x/y", 1)
    time.sleep(0.4)
    pub = mk_client("p-a", a.host)
    pub.publish("x/y", b"after-restart", qos=1).wait_for_publish(5)
    wait_for(lambda: got == [b"after-restart"], what="delivery to restarted node")
    for cl in (sub, pub):
        cl.loop_stop()
        cl.disconnect()

    # force-leave a stopped member: everyone forgets it; when it returns it runs alone
    c.stop()
    wait_for(lambda: stopped(a) == [c.name], what="c stopped again")
    rc, out, _ = a.ctl("cluster", "force-leave", c.name)
    assert rc == 0
    assert out == "Remove the node from cluster successfully.\n" + erlfmt.cluster_status_text(
        sorted([a.name, b.name]), [])
    wait_for(lambda: b.cluster_status() == {"running_nodes": sorted([a.name, b.name]), "stopped_nodes": []},
             what="b sees force-leave")
    c.start()
    wait_for(lambda: running(c) == [c.name], what="force-left node alone")
    time.sleep(1.5)
    assert a.cluster_status() == {"running_nodes": sorted([a.name, b.name]), "stopped_nodes": []}


def test_force_leave_running_node_and_invite_api(nodes):
    a, b = nodes(2)
    for n in (a, b):
        n.start()
    # REST invite: a invites b
    st, _, raw = a.api("PUT", "/api/v5/cluster/%s/invite" % b.name, {"timeout": 10000})
    assert st == 200, raw
    wait_for(lambda: all_running([a, b]), what="invited")
    st, body = a.api_json("PUT", "/api/v5/cluster/%s/invite" % a.name, {})
    assert st == 400 and body == {"code": "BAD_REQUEST", "message": "Cannot invite self"}
    st, body = a.api_json("PUT", "/api/v5/cluster/%s/invite" % b.name, {"timeout": 100})
    assert st == 400 and body["message"] == "timeout cannot be less than 5000ms"
    st, body = a.api_json("PUT", "/api/v5/cluster/emqx@127.255.255.254/invite", {})
    assert st == 400 and body["code"] == "BAD_REQUEST"
    # force-leave of a running node through the API: 204, both sides updated
    st, _, raw = a.api("DELETE", "/api/v5/cluster/%s/force_leave" % b.name)
    assert st == 204, raw
    wait_for(lambda: running(a) == [a.name] and running(b) == [b.name], what="both alone")
    st, body = a.api_json("DELETE", "/api/v5/cluster/%s/force_leave" % b.name)
    assert st == 400 and body["message"] == "node_not_in_cluster"


def test_join_replaces_local_dashboard_users(nodes):
    a, b = nodes(2)
    a.start()
    b.start()
    assert a.ctl("admins", "passwd", "admin", "clusterPass1") == (0, "ok\n", "")
    assert b.ctl("admins", "passwd", "admin", "localPass22") == (0, "ok\n", "")
    assert b.api_json("POST", "/api/v5/login", {"username": "admin", "password": "localPass22"},
                      auth=None)[0] == 200
    assert b.ctl("cluster", "join", a.name)[1].startswith("Join the cluster successfully.")
    # b's own user data was replaced by the cluster's
    st, body = b.api_json("POST", "/api/v5/login", {"username": "admin", "password": "localPass22"}, auth=None)
    assert st == 401 and body["code"] == "BAD_USERNAME_OR_PWD"
    assert b.api_json("POST", "/api/v5/login", {"username": "admin", "password": "clusterPass1"},
                      auth=None)[0] == 200
    # and so were its API keys (loaded again at its next start): b's own key1 is a's key1 now
    assert b.api_json("GET", "/api/v5/nodes")[0] == 200
    # a password change on one node reaches the other
    assert b.ctl("admins", "passwd", "admin", "changedOn_b1") == (0, "ok\n", "")
    wait_for(lambda: a.api_json("POST", "/api/v5/login", {"username": "admin", "password": "changedOn_b1"},
                                auth=None)[0] == 200, what="password replicated")


def test_api_keys_are_cluster_data_replaced_on_join(nodes):
    a = nodes.one(api_keys=("akey:asecret",))
    b = nodes.one(api_keys=("bkey:bsecret",))
    a.start()
    b.start()
    assert b.api_json("GET", "/api/v5/nodes", auth=("bkey", "bsecret"))[0] == 200
    assert b.ctl("cluster", "join", a.name)[1].startswith("Join the cluster successfully.")
    assert b.api_json("GET", "/api/v5/nodes", auth=("bkey", "bsecret"))[0] == 401
    assert b.api_json("GET", "/api/v5/nodes", auth=("akey", "asecret"))[0] == 200
    # at its next start b loads its bootstrap file again, into the cluster
    b.stop()
    b.start()
    wait_for(lambda: a.api_json("GET", "/api/v5/nodes", auth=("bkey", "bsecret"))[0] == 200,
             what="b's key back after restart")


def test_port_offset_from_node_name(nodes):
    host_a = nodes.one().host
    a = nodes.one(host=host_a, name="emqx1@%s" % host_a)
    b = nodes.one(name=None)
    a.write_conf(open(os.path.join(a.etc, "emqx.conf")).read().replace(":1883", ":1884").replace(
        ":8083", ":8084").replace(":18083", ":18084"))
    a.start(wait=False)
    b.start()
    wait_for(lambda: a.cli("ping")[0] == 0, what="emqx1 up")
    import socket
    for port in (4371, 5371):
        s = socket.create_connection((a.host, port), timeout=2)
        s.close()
    rc, out, _ = b.ctl("cluster", "join", a.name)
    assert rc == 0 and out.startswith("Join the cluster successfully."), out
    st = json.loads(b.ctl("cluster", "status", "--json")[1])
    assert st["running_nodes"] == sorted([a.name, b.name])
