"""issue 15: a persistent session across a restart of its node, without and then with emq_node_durable_sessions.

Runs after test_emq_node.py (the day-2 state) and before test_restore_from_backup.py, which keeps the durable
sessions this module turns on (durable-vars.yml). The devices are paho clients on the controller, straight to
the node's plain MQTT listener (the scenario's firewall lets the controller in as a client network):
- traffic: a subscriber with clean session off and a publisher sending QoS 1 every 0.05 s while the node
  restarts (lbtest.SessionTraffic): acknowledged to the publisher, received, lost, duplicated;
- owed: the subscriber offline while 50 QoS 1 messages are published, then the node restarts, then the
  subscriber comes back: how many of the 50 it gets.
The figures go to tests/output/site-figures.txt (printed at the end of make test).
"""

import os
import pathlib
import subprocess
import sys
import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest
import testinfra
import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "_shared"))
import lbtest  # noqa: E402

SCENARIO = pathlib.Path(__file__).resolve().parents[1]
ADDR = "172.30.1.11"
EPHEMERAL = pathlib.Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "."))
FIGURES = pathlib.Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", ".")) / "tests" / "output" / "site-figures.txt"


def _host():
    return testinfra.get_host("docker://emq-node-1")


def _report(request, line):
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    with FIGURES.open("a", encoding="utf-8") as fh:
        fh.write("%s emq_node: %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%S"), line))
    request.config.pluginmanager.getplugin("terminalreporter").write_line(line)


def _restart(host):
    """systemctl restart, then wait until the node takes MQTT connections again."""
    host.check_output("systemctl restart emqx.service")
    deadline = time.time() + 60
    while time.time() < deadline:
        if host.run("emqx ctl status").rc == 0 and lbtest.connack(ADDR, 1883, None, timeout=2.0) is None:
            return
        time.sleep(0.5)
    raise AssertionError("EMQX did not come back: %s" % host.run("journalctl -u emqx --no-pager -n 30").stdout)


def _client(clientid, clean):
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=clientid, protocol=mqtt.MQTTv311, clean_session=clean)
    client.username_pw_set(*lbtest.BACKEND)
    return client


def _owed_after_restart(host, count=50):
    """(session present after the restart, how many of count messages published while it was offline it got)."""
    topic, clientid = "molecule/owed/%s" % uuid.uuid4().hex[:8], "molecule-owed-%s" % uuid.uuid4().hex[:6]
    got, present, subscribed = set(), [], threading.Event()
    sub = _client(clientid, clean=False)
    sub.on_connect = lambda c, u, flags, rc, p=None: present.append(flags.session_present)
    sub.on_subscribe = lambda c, u, mid, rc, p=None: subscribed.set()
    sub.on_message = lambda c, u, msg: got.add(msg.payload)
    sub.connect(ADDR, 1883)
    sub.loop_start()
    sub.subscribe(topic, qos=1)
    assert subscribed.wait(10), "no SUBACK"
    sub.disconnect()
    sub.loop_stop()
    pub = _client("molecule-owed-pub-%s" % uuid.uuid4().hex[:6], clean=True)
    pub.connect(ADDR, 1883)
    pub.loop_start()
    for n in range(count):
        pub.publish(topic, b"%d" % n, qos=1).wait_for_publish(10)
    pub.disconnect()
    pub.loop_stop()
    _restart(host)
    sub.connect(ADDR, 1883)
    sub.loop_start()
    deadline = time.time() + 10
    while time.time() < deadline and len(got) < count:
        time.sleep(0.2)
    time.sleep(0.5)
    sub.disconnect()
    sub.loop_stop()
    return present[-1], len(got)


def _traffic_through_restart(host):
    with lbtest.SessionTraffic(ADDR, ADDR, 1883, None) as traffic:
        time.sleep(3)
        _restart(host)
        time.sleep(3)
    return traffic.report()


def _converge(extra_vars_file):
    cmd = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"]]
    for name in ("day2-vars.yml", "third-password.yml", extra_vars_file):
        inputs = EPHEMERAL / name
        if inputs.exists():
            cmd += ["-e", "@%s" % inputs]
    cmd.append(str(SCENARIO / "converge.yml"))
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False,
                         env=dict(os.environ, ANSIBLE_LOG_PATH="", ANSIBLE_FORCE_COLOR="false"))
    return run.returncode, run.stdout + run.stderr


@pytest.fixture(scope="module")
def host():
    return _host()


def test_without_durable_sessions_a_restart_ends_the_session(host, request):
    assert "durable_sessions" not in host.file("/etc/emqx/emqx.conf").content_string
    figures = _traffic_through_restart(host)
    present, owed = _owed_after_restart(host)
    _report(request, "restart of the node WITHOUT durable sessions: QoS 1 to a persistent session %s; "
            "50 published while it was offline: %d received after the restart" % (figures, owed))
    assert figures["fresh_sessions"] == 1, figures
    assert present is False and owed == 0


def test_turning_durable_sessions_on_restarts_the_node_once(host):
    cursor = host.check_output("journalctl --no-pager -n 0 --show-cursor | sed -n 's/^-- cursor: //p'")
    (EPHEMERAL / "durable-vars.yml").write_text(yaml.safe_dump({"emq_node_durable_sessions": True}))
    rc, out = _converge("durable-vars.yml")
    assert rc == 0, out[-4000:]
    assert "durable_sessions" in host.file("/etc/emqx/emqx.conf").content_string
    starts = host.check_output("journalctl --no-pager -o cat -u emqx.service --after-cursor='%s'" % cursor)
    assert len([line for line in starts.splitlines() if line.startswith("Started emqx")]) == 1
    rc, out = _converge("durable-vars.yml")
    recap = [line for line in out.splitlines() if line.startswith("emq-node-1") and "ok=" in line]
    assert rc == 0 and recap and "changed=0" in recap[-1], out[-3000:]


def test_with_durable_sessions_the_session_and_what_it_is_owed_survive_a_restart(host, request):
    figures = _traffic_through_restart(host)
    present, owed = _owed_after_restart(host)
    _report(request, "restart of the node WITH durable sessions: QoS 1 to a persistent session %s; "
            "50 published while it was offline: %d received after the restart" % (figures, owed))
    assert figures["fresh_sessions"] == 0, figures
    assert figures["lost"] == 0, figures
    assert present is True and owed == 50
