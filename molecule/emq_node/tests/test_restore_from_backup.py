"""issue 15: backup.yml and restore.yml round trip on the converged node (after test_emq_node.py's day-2 run).

A dashboard user, an API key and a rule of the rule engine made by hand (not from the inventory), and
retained messages, are in the backup; the node's data is then destroyed (EMQX stopped, its data directory emptied), the role rebuilds the
node, which then has none of them; restore.yml puts them back.
"""

import base64
import json
import os
import pathlib
import stat
import subprocess
import urllib.error
import urllib.request

import pytest
import testinfra

SCENARIO = pathlib.Path(os.environ.get("MOLECULE_SCENARIO_DIRECTORY", pathlib.Path(__file__).resolve().parents[1]))
PROJECT = pathlib.Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", SCENARIO.parents[1]))
ADDR = "172.30.1.11"
API = "http://%s:18083/api/v5" % ADDR
# EMQX takes letters, digits and underscores in a dashboard user name (emqx_dashboard_admin:legal_username/1).
OPS_USER, OPS_PASSWORD = "restore_ops", "Restore-ops-pw-7c1e"
RETAINED = ["molecule/backup/%d" % n for n in range(5)]
RULE = {"id": "restore_rule", "sql": 'SELECT payload, clientid FROM "molecule/backup/#"', "description": "made by hand",
        "actions": [{"function": "console"}]}


def _host():
    return testinfra.get_host("docker://emq-node-1")


def _playbook(path, *args):
    """ansible-playbook on the scenario's inventory, with the inputs test_emq_node.py put in force last (its
    day-2 inputs, then the third dashboard password it leaves the node with)."""
    cmd = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"]]
    for name in ("day2-vars.yml", "third-password.yml", "durable-vars.yml"):
        inputs = pathlib.Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / name
        if inputs.exists():
            cmd += ["-e", "@%s" % inputs]
    cmd += list(args) + [str(path)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False,
                         env=dict(os.environ, ANSIBLE_LOG_PATH="", ANSIBLE_FORCE_COLOR="false"))
    assert run.returncode == 0, "%s failed:\n%s\n%s" % (path.name, run.stdout[-5000:], run.stderr[-2000:])
    return run.stdout


def _call(method, path, body=None, token=None, key=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    if key:
        headers["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % key).encode()).decode()
    req = urllib.request.Request(API + path, data=json.dumps(body).encode() if body is not None else None,
                                 headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, {}


def _login(user, password):
    status, body = _call("POST", "/login", {"username": user, "password": password})
    return body.get("token") if status == 200 else None


def _retained():
    """The retained topics a fresh subscriber gets (EMQX's own client list: emqx ctl retainer topics)."""
    return sorted(t for t in _host().check_output("emqx ctl retainer topics").split() if t.startswith("molecule/backup/"))


@pytest.fixture(scope="module")
def made_by_hand():
    host = _host()
    assert host.check_output("emqx ctl admins add %s %s 'made by hand'" % (OPS_USER, OPS_PASSWORD)) == "ok"
    token = _login(OPS_USER, OPS_PASSWORD)
    assert token, "the hand-made dashboard user cannot log in"
    status, key = _call("POST", "/api_key", {"name": "restore-key", "desc": "made by hand", "enable": True,
                                             "role": "administrator"}, token=token)
    assert status == 200, (status, key)
    for topic in RETAINED:
        status, _ = _call("POST", "/publish", {"topic": topic, "payload": "kept", "qos": 1, "retain": True},
                          key=(key["api_key"], key["api_secret"]))
        assert status in (200, 202), status
    assert _retained() == sorted(RETAINED)
    status, rule = _call("POST", "/rules", RULE, key=(key["api_key"], key["api_secret"]))
    assert status == 201 and rule["from"] == ["molecule/backup/#"], (status, rule)
    return (key["api_key"], key["api_secret"])


def _rule(key):
    """The hand-made rule as the rule engine's API lists it, or None."""
    status, body = _call("GET", "/rules/" + RULE["id"], key=key)
    return {k: body.get(k) for k in ("sql", "description", "actions", "enable")} if status == 200 else None


def test_backup_destroy_rebuild_restore(made_by_hand, tmp_path):
    host = _host()
    out = _playbook(PROJECT / "playbooks" / "backup.yml", "-e", "backup_dir=%s" % tmp_path)
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    files = sorted(p.name for p in run_dir.iterdir())
    assert files == ["emqx-data-5.8.9-emq-node-1.tar.gz", "etc-emqx-5.8.9-emq-node-1.tar.gz"], files
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in run_dir.iterdir()), "the archives hold secrets"
    assert str(run_dir) in out
    assert host.check_output("ls -A /var/lib/emqx/iothub-backup 2>/dev/null || true") == "", "the export was left on the node"

    # Destroy the node's data, then rebuild it with the role (as site.yml would).
    host.check_output("systemctl stop emqx.service && find /var/lib/emqx -mindepth 1 -delete")
    _playbook(SCENARIO / "converge.yml")
    assert _login(OPS_USER, OPS_PASSWORD) is None, "the hand-made user survived: nothing was destroyed"
    assert _call("GET", "/nodes", key=made_by_hand)[0] == 401
    assert _retained() == []
    assert host.check_output("grep -c restore_rule /var/lib/emqx/configs/cluster.hocon 2>/dev/null || true") in ("", "0")

    invocation = host.check_output("systemctl show -P InvocationID emqx.service")
    _playbook(PROJECT / "playbooks" / "restore.yml", "-e", "backup_dir=%s" % run_dir)
    assert _login(OPS_USER, OPS_PASSWORD), "the dashboard user did not come back"
    assert _call("GET", "/nodes", key=made_by_hand)[0] == 200, "the API key did not come back"
    assert _retained() == sorted(RETAINED), "the retained messages did not come back"
    assert _rule(made_by_hand) == {"sql": RULE["sql"], "description": RULE["description"], "actions": RULE["actions"],
                                   "enable": True}, "the rule did not come back"
    # A data import restarts nothing.
    assert host.check_output("systemctl show -P InvocationID emqx.service") == invocation
    # The role's own inputs are untouched: a converge after the restore changes nothing.
    second = _playbook(SCENARIO / "converge.yml")
    recap = [line for line in second.splitlines() if line.startswith("emq-node-1") and "ok=" in line]
    assert recap and "changed=0" in recap[-1], second[-3000:]
