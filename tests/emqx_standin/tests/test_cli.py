"""`emqx` / `emqx ctl` output, byte for byte, and exit codes (EMQX 5.8, see emqx-5.md)."""

import json
import os
import time

from emqx_standin import erlfmt

from standin import wait_for


def test_erlang_term_printing_matches_emqx():
    # outputs as printed by EMQX (io_lib:format("Cluster status: ~p~n", ...), 80 columns)
    assert erlfmt.cluster_status_text(["emqx@127.0.0.1"], []) == \
        "Cluster status: #{running_nodes => ['emqx@127.0.0.1'],stopped_nodes => []}\n"
    assert erlfmt.cluster_status_text(["emqx@node1.emqx.io", "emqx@node2.emqx.io"], []) == (
        "Cluster status: #{running_nodes => ['emqx@node1.emqx.io','emqx@node2.emqx.io'],\n"
        "                  stopped_nodes => []}\n")
    assert erlfmt.cluster_status_text(["emqx@node1.emqx.com", "emqx@node2.emqx.com"], []) == (
        "Cluster status: #{running_nodes =>\n"
        "                      ['emqx@node1.emqx.com','emqx@node2.emqx.com'],\n"
        "                  stopped_nodes => []}\n")
    k8s = ["emqx@emqx-%d.emqx-headless.default.svc.cluster.local" % i for i in range(3)]
    assert erlfmt.cluster_status_text(k8s, []) == (
        "Cluster status: #{running_nodes =>\n"
        "                      ['emqx@emqx-0.emqx-headless.default.svc.cluster.local',\n"
        "                       'emqx@emqx-1.emqx-headless.default.svc.cluster.local',\n"
        "                       'emqx@emqx-2.emqx-headless.default.svc.cluster.local'],\n"
        "                  stopped_nodes => []}\n")
    assert erlfmt.atom("emqx@localhost") == "emqx@localhost"
    assert erlfmt.atom("emqx@10.0.0.1") == "'emqx@10.0.0.1'"
    assert erlfmt.atom("emqx-1@h") == "'emqx-1@h'"
    # emqx_logger_jsonfmt:best_effort_json/1 (jiffy, pretty): lists sorted, empty list as "[\n    \n  ]"
    out = erlfmt.cluster_status_json(["emqx@b", "emqx@a"], [])
    assert out == ('{\n  "stopped_nodes" : [\n    \n  ],\n  "running_nodes" : [\n'
                   '    "emqx@a",\n    "emqx@b"\n  ]\n}\n')
    assert json.loads(out) == {"running_nodes": ["emqx@a", "emqx@b"], "stopped_nodes": []}


def test_start_ping_pid_status_stop_outputs(nodes):
    n = nodes.one()
    rc, out, err = n.cli("start")
    try:
        assert (rc, out) == (0, "EMQX 5.8.9 is started successfully!\n"), err
        rc, out, err = n.cli("start")
        assert rc == 1 and "node_is_already_running!" in err
        assert n.cli("ping") == (0, "pong\n", "")
        rc, out, _ = n.cli("pid")
        pid = int(out)
        assert rc == 0 and os.path.exists("/proc/%d" % pid)
        assert n.ctl("status") == (0, "Node '%s' 5.8.9 is started\n" % n.name, "")
        assert n.ctl("cluster", "status") == (
            0, "Cluster status: #{running_nodes => ['%s'],stopped_nodes => []}\n" % n.name, "")
        assert n.ctl("cluster", "status", "--json") == (
            0, '{\n  "stopped_nodes" : [\n    \n  ],\n  "running_nodes" : [\n    "%s"\n  ]\n}\n' % n.name, "")
        assert n.ctl("clients", "list") == (0, "No clients.\n", "")
        assert n.cli("stop") == (0, "ok\n", "")
        wait_for(lambda: not os.path.exists("/proc/%d" % pid) or
                 open("/proc/%d/stat" % pid).read().split(") ")[1][0] == "Z", what="process gone")
    finally:
        if n.cli("ping")[0] == 0:
            n.cli("stop")
    down = "Node '%s' not responding to pings.\n" % n.name
    assert n.cli("ping") == (1, "", down)
    assert n.ctl("status") == (1, "", down)
    assert n.ctl("cluster", "status") == (1, "", down)
    rc, out, err = n.cli("pid")
    assert rc == 1 and err == down
    rc, out, err = n.cli("stop")
    assert rc == 1 and err.startswith(down)


def test_cli_uses_the_name_and_cookie_the_node_booted_with(nodes):
    n = nodes.one()
    n.start()
    conf = open(os.path.join(n.etc, "emqx.conf")).read()
    n.write_conf(conf.replace('cookie = "testcookie"', 'cookie = "changed-but-not-restarted"'))
    assert n.ctl("status") == (0, "Node '%s' 5.8.9 is started\n" % n.name, "")


def test_admins_passwd(nodes):
    n = nodes.one()
    n.start()
    assert n.ctl("admins", "passwd", "admin", "n3wPassword") == (0, "ok\n", "")
    assert n.ctl("admins", "passwd", "admin", "short1") == (0, "Error: The range of password length is 8~64\n", "")
    rc, out, _ = n.ctl("admins", "passwd", "admin", "onlyletters")
    assert rc == 0 and out.startswith("Error: Bad password. At least two different kind of characters")
    assert n.ctl("admins", "passwd", "nobody", "n3wPassword") == (0, "Error: username_not_found\n", "")
    assert n.api_json("POST", "/api/v5/login", {"username": "admin", "password": "n3wPassword"},
                      auth=None)[0] == 200


def test_clients_list_line(nodes):
    import paho.mqtt.client as mqtt
    n = nodes.one()
    n.start()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="cli-dev-1", protocol=mqtt.MQTTv311)
    c.username_pw_set("alice", "pw")
    c.connect(n.host, 1883, keepalive=45)
    c.loop_start()
    c.subscribe("a/b", 1)
    try:
        def listed():
            rc, out, _ = n.ctl("clients", "list")
            return out if "cli-dev-1" in out and "subscriptions=1" in out else None
        out = wait_for(listed, what="client listed")
        line = out.splitlines()[0]
        assert line.startswith("Client(cli-dev-1, username=alice, peername=127.0.0.1:")
        assert ", clean_start=true, keepalive=45, session_expiry_interval=0, subscriptions=1, " in line
        assert ", connected=true, created_at=" in line and line.endswith(")")
    finally:
        c.loop_stop()
        c.disconnect()


def test_unknown_ctl_command_prints_usage(nodes):
    n = nodes.one()
    n.start()
    rc, out, _ = n.ctl("cluster")
    assert rc == 0 and "cluster join <Node>" in out and "# Join the cluster" in out
    rc, out, _ = n.ctl("no-such-command")
    assert rc == 1 and "status" in out
    t0 = time.monotonic()
    assert n.cli("no-such-command")[0] == 1
    assert time.monotonic() - t0 < 10
