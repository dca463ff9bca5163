"""What an operator checks on a node that emq_node converged, after a day-2 run of the role.

Converge installed EMQX 5.8.8 (and Molecule's idempotence step ran it again). The module fixture
``day2`` then runs the role once more as an operator would on day 2: the package goes to 5.8.9, the
dashboard password changes to one full of characters a shell interprets (root's ``emqx ctl`` goes
through ``su - emqx -c`` and mangles them), and one API key leaves the list. During that run a sampler
inside the node records, every 0.1 s, the mode and owner of every file under /etc/emqx and the
secrets directory, and which files under /etc/emqx hold a secret. The tests below check the result.
"""

import json
import os
import subprocess
import time

import pytest
import testinfra
import yaml

SCENARIO = os.environ.get("MOLECULE_SCENARIO_DIRECTORY", os.path.dirname(os.path.dirname(__file__)))
with open(os.path.join(SCENARIO, "molecule.yml"), encoding="utf-8") as fh:
    GROUP_VARS = yaml.safe_load(fh)["provisioner"]["inventory"]["group_vars"]["emq_nodes"]
ADDR = "172.30.1.11"
PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.path.dirname(os.path.dirname(SCENARIO)))
SECRETS_DIR = "/etc/emqx-secrets"
KEPT_KEY, RETIRED_KEY = GROUP_VARS["emq_node_api_keys"]
# What root's `su - emqx -c "..."` would expand or cut: $HOME, a backquoted command, quotes, a backslash.
NEW_PASSWORD = 'N3w-$HOME-"q"-`id`-\\x'
DAY2_VARS = {
    "emq_node_version": "5.8.9",
    "emq_node_package_file": os.path.join(PROJECT, "tests/output/standin/emqx_5.8.9_all.deb"),
    "emq_node_dashboard_password": NEW_PASSWORD,
    "emq_node_api_keys": [KEPT_KEY],
}
SECRETS = (GROUP_VARS["emq_node_cookie"], GROUP_VARS["emq_node_dashboard_password"], NEW_PASSWORD,
           KEPT_KEY["secret"], RETIRED_KEY["secret"])
SAMPLER = r"""
while [ ! -e /root/sampler.stop ]; do
  stat -c '%a %U %G %n' /etc/emqx /etc/emqx/* {dir} {dir}/* 2>/dev/null
  grep -rlF -f /root/sampler.needles /etc/emqx | sed 's/^/SECRET-IN /'
  echo ---
  sleep 0.1
done
""".format(dir=SECRETS_DIR)


@pytest.fixture(scope="module")
def host():
    # docker exec, not Ansible: Ansible's log (checked for secrets below) must hold only what the
    # role printed, not what these tests read.
    return testinfra.get_host("docker://emq-node-1")


def _converge(*args, extra=None):
    """Run the scenario's converge playbook (with the day-2 inputs once they are in force)."""
    vars_file = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "day2-vars.yml")
    cmd = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], *args]
    if os.path.exists(vars_file):
        cmd += ["-e", "@" + vars_file]
    if extra:
        cmd += extra
    env = dict(os.environ, ANSIBLE_LOG_PATH="", ANSIBLE_FORCE_COLOR="false")
    cmd.append(os.path.join(SCENARIO, "converge.yml"))
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, check=False)
    return run.returncode, run.stdout + run.stderr


def _emqx_starts(host, since):
    """How many times systemd started emqx.service since the journal cursor."""
    out = host.check_output("journalctl --no-pager -o cat -u emqx.service --after-cursor='%s'" % since)
    return len([line for line in out.splitlines() if line.startswith("Started emqx")])


@pytest.fixture(scope="module", autouse=True)
def day2(host):
    assert host.package("emqx").version.startswith("5.8.8"), "converge must have installed 5.8.8"
    cursor = host.check_output("journalctl --no-pager -n 0 --show-cursor | sed -n 's/^-- cursor: //p'")
    host.check_output("install -m 0600 /dev/null /root/sampler.needles && rm -f /root/sampler.stop")
    for secret in SECRETS:
        host.check_output("printf '%%s\\n' %s >> /root/sampler.needles" % _sh(secret))
    host.check_output("nohup sh -c %s > /root/sampler.log 2>&1 &" % _sh(SAMPLER))
    vars_file = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "day2-vars.yml")
    with open(vars_file, "w", encoding="utf-8") as fh:
        yaml.safe_dump(DAY2_VARS, fh)
    rc, out = _converge()
    host.check_output("touch /root/sampler.stop")
    time.sleep(0.5)
    samples = host.check_output("cat /root/sampler.log").split("---")
    host.check_output("rm -f /root/sampler.needles /root/sampler.log /root/sampler.stop")
    return {"rc": rc, "out": out, "samples": [s for s in samples if s.strip()], "cursor": cursor}


def _sh(text):
    return "'" + text.replace("'", "'\"'\"'") + "'"


def test_day2_run_passed(day2):
    assert day2["rc"] == 0, day2["out"][-5000:]
    recap = [line for line in day2["out"].splitlines() if line.startswith("emq-node-1") and "ok=" in line]
    assert recap and "failed=0" in recap[-1], day2["out"][-3000:]


def test_upgrade_restarted_the_node_once(host, day2):
    assert host.package("emqx").version.startswith("5.8.9")
    assert host.check_output("emqx ctl status") == "Node 'emqx@%s' 5.8.9 is started" % ADDR
    assert _emqx_starts(host, day2["cursor"]) == 1, host.run("journalctl -u emqx --no-pager -n 40").stdout


def test_no_secret_was_readable_by_others_at_any_moment(day2):
    assert len(day2["samples"]) > 20, "the sampler did not run through the role's run"
    for sample in day2["samples"]:
        assert "SECRET-IN" not in sample, "a file under /etc/emqx held a secret:\n" + sample
        rows = [line.split(None, 3) for line in sample.strip().splitlines()]
        modes = dict((row[3], row[:3]) for row in rows if len(row) == 4)
        if SECRETS_DIR in modes:
            mode, owner, group = modes[SECRETS_DIR]
            assert int(mode, 8) & 0o007 == 0 and (owner, group) == ("root", "emqx"), sample
        for path, (mode, owner, group) in modes.items():
            if path.startswith(SECRETS_DIR + "/"):
                assert int(mode, 8) & 0o007 == 0, "%s was %s at some moment" % (path, mode)


def test_secret_files(host):
    d = host.file(SECRETS_DIR)
    assert d.is_directory and (d.user, d.group, d.mode) == ("root", "emqx", 0o750)
    for name in ("secrets.conf", "dashboard.conf", "api_keys"):
        f = host.file("%s/%s" % (SECRETS_DIR, name))
        assert (f.user, f.group, f.mode) == ("root", "emqx", 0o640), name
    assert not host.file("/etc/emqx/api_keys").exists
    # emqx.conf stays as the package leaves it (so an upgrade is no change) and holds no secret.
    conf = host.file("/etc/emqx/emqx.conf")
    assert (conf.user, conf.group, conf.mode) == ("emqx", "emqx", 0o644)
    for secret in SECRETS:
        assert secret not in conf.content_string


def test_rendered_config(host):
    conf = host.file("/etc/emqx/emqx.conf").content_string
    assert 'name = "emqx@%s"' % ADDR in conf
    assert 'discovery_strategy = "static"' in conf
    assert 'bind = "%s:18083"' % ADDR in conf
    assert 'include required("%s/secrets.conf")' % SECRETS_DIR in conf
    assert 'include required("%s/dashboard.conf")' % SECRETS_DIR in conf
    secrets = json.loads(host.file(SECRETS_DIR + "/secrets.conf").content_string)
    assert secrets["node"]["cookie"] == GROUP_VARS["emq_node_cookie"]
    first_boot = json.loads(host.file(SECRETS_DIR + "/dashboard.conf").content_string)
    assert first_boot["dashboard"]["default_password"] == NEW_PASSWORD
    assert "emqxsecretcookie" not in conf


def test_data_dir(host):
    d = host.file("/var/lib/emqx")
    assert d.is_directory
    assert d.user == "emqx"
    assert d.mode & 0o007 == 0


def test_limits_follow_the_target_connections(host):
    # 100000 devices + 25% + 4096 for the node itself, rounded up to 1024 (emq_node_sizing), not 2 per device.
    assert GROUP_VARS["emq_node_target_connections"] == 100000
    dropin = host.file("/etc/systemd/system/emqx.service.d/10-iothub-emq.conf")
    assert "LimitNOFILE=130048" in dropin.content_string
    assert host.check_output("systemctl show emqx -p LimitNOFILE --value") == "130048"
    assert 'max_ports = 130048' in host.file("/etc/emqx/emqx.conf").content_string
    # EMQX hands node.max_ports to the Erlang VM as +Q in the vm.args it writes at every start.
    vm_args = host.check_output("ls -t /var/lib/emqx/configs/vm.*.args | head -1")
    assert "+Q 130048" in host.file(vm_args).content_string.splitlines()
    packaged = host.file("/lib/systemd/system/emqx.service").content_string
    assert "iothub" not in packaged


def test_sysctl_file_is_consistent(host):
    conf = host.file("/etc/sysctl.d/60-emqx-tuning.conf").content_string
    values = dict(
        (k.strip(), v.strip())
        for k, v in (line.split("=", 1) for line in conf.splitlines() if "=" in line and not line.startswith("#"))
    )
    assert values["fs.nr_open"] == "130048"
    assert values["fs.file-max"] == "260096"
    assert values["net.core.somaxconn"] == "32768"
    assert "net.ipv4.tcp_tw_reuse" not in values


def test_logs_follow_the_variables(host):
    conf = host.file("/etc/emqx/emqx.conf").content_string
    for line in ('level = "info"', 'formatter = "json"', 'rotation_size = "64KB"', "rotation_count = 3"):
        assert line in conf
    # Erlang's disk_log wrap log: emqx.log.1 .. emqx.log.3, none above 64 KB, no plain emqx.log.
    files = host.check_output("ls /var/log/emqx").split()
    data = sorted(f for f in files if f.startswith("emqx.log."))
    assert "emqx.log.1" in data and set(data) <= {"emqx.log.1", "emqx.log.2", "emqx.log.3", "emqx.log.idx", "emqx.log.siz"}, files
    for name in data:
        assert host.file("/var/log/emqx/" + name).size <= 64 * 1024 + 4096, name
    # JSON lines at info: the listeners' start is logged at info.
    lines = [json.loads(line) for name in data if name[-1].isdigit()
             for line in host.file("/var/log/emqx/" + name).content_string.splitlines() if line.strip()]
    assert any(entry.get("level") == "info" for entry in lines), lines[-5:]
    # The console handler is off: EMQX wrote nothing of its own to the journal since its last start.
    invocation = host.check_output("systemctl show emqx -p InvocationID --value")
    journal = host.check_output("journalctl --no-pager -o cat _SYSTEMD_INVOCATION_ID=%s" % invocation)
    assert not [line for line in journal.splitlines() if '"level"' in line or "[info]" in line or "[warning]" in line], journal


def test_service_running(host):
    svc = host.service("emqx")
    assert svc.is_enabled
    if not svc.is_running:
        pytest.fail(host.run("journalctl -u emqx --no-pager -n 50").stdout)


@pytest.mark.parametrize("port", [1883, 8083, 18083, 4370, 5370])
def test_listening(host, port):
    sockets = [s for s in host.socket.get_listening_sockets() if s.endswith(":%d" % port)]
    assert sockets, "nothing listens on %d" % port


def test_dashboard_is_private(host):
    assert host.socket("tcp://%s:18083" % ADDR).is_listening
    assert not host.socket("tcp://0.0.0.0:18083").is_listening


def test_status_ok(host):
    out = host.check_output("curl -s -o /dev/null -w '%%{http_code}' http://%s:18083/status" % ADDR)
    assert out == "200"


def test_ctl_status(host):
    out = host.check_output("emqx ctl status")
    assert out == "Node 'emqx@%s' 5.8.9 is started" % ADDR


def _login(password):
    """Log in from the controller (172.30.1.1, in emq_node_firewall_admin_networks)."""
    body = json.dumps({"username": "admin", "password": password}).encode()
    import urllib.error
    import urllib.request
    req = urllib.request.Request("http://%s:18083/api/v5/login" % ADDR, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def _api(key):
    import base64
    import urllib.error
    import urllib.request
    auth = base64.b64encode(("%s:%s" % (key["key"], key["secret"])).encode()).decode()
    req = urllib.request.Request("http://%s:18083/api/v5/nodes" % ADDR, headers={"Authorization": "Basic " + auth})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def test_dashboard_password_changed_to_the_shell_hostile_one():
    assert _login(NEW_PASSWORD) == 200
    assert _login(GROUP_VARS["emq_node_dashboard_password"]) == 401
    assert _login("public") == 401


def test_kept_api_key_works_and_the_retired_one_is_revoked():
    status, nodes = _api(KEPT_KEY)
    assert status == 200
    assert [n["node"] for n in nodes] == ["emqx@%s" % ADDR]
    assert nodes[0]["node_status"] == "running"
    status, body = _api(RETIRED_KEY)
    assert status == 401, body


def test_no_secret_in_the_journal_or_emqx_log(host):
    text = host.check_output("journalctl --no-pager -o cat") + host.check_output("cat /var/log/emqx/* 2>/dev/null || true")
    for secret in SECRETS:
        assert secret not in text


def test_firewall_table_loaded(host):
    ruleset = host.check_output("nft list table inet iothub_emqx")
    assert "tcp dport 18083 ip saddr @admins4 accept" in ruleset
    assert "172.30.1.1" in ruleset


def test_no_secret_in_ansible_output(day2):
    log = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "ansible.log")
    with open(log, encoding="utf-8") as fh:
        text = fh.read()
    assert "emq-node-1" in text  # the log is the converge output
    for secret in SECRETS:
        assert secret not in text
        assert secret not in day2["out"]


def test_check_and_diff_mode_on_converged_node_change_nothing_and_hide_secrets():
    rc, out = _converge("--check", "--diff")
    assert rc == 0, out[-3000:]
    recap = [line for line in out.splitlines() if line.startswith("emq-node-1") and "ok=" in line]
    assert recap and "changed=0" in recap[-1] and "failed=0" in recap[-1], out[-3000:]
    for secret in SECRETS:
        assert secret not in out


def test_a_second_day2_run_changes_nothing():
    rc, out = _converge()
    assert rc == 0, out[-3000:]
    recap = [line for line in out.splitlines() if line.startswith("emq-node-1") and "ok=" in line]
    assert recap and "changed=0" in recap[-1], out[-3000:]


def test_a_password_change_alone_restarts_nothing(host):
    """Runs last: it leaves the node with a third password."""
    third = "Th1rd-pw-%s" % os.urandom(4).hex()
    before = host.check_output("systemctl show -P InvocationID emqx.service")
    vars_file = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "third-password.yml")
    with open(vars_file, "w", encoding="utf-8") as fh:
        yaml.safe_dump({"emq_node_dashboard_password": third}, fh)
    rc, out = _converge(extra=["-e", "@" + vars_file])
    assert rc == 0, out[-3000:]
    assert third not in out
    assert host.check_output("systemctl show -P InvocationID emqx.service") == before
    assert _login(third) == 200
    assert _login(NEW_PASSWORD) == 401


def test_a_configure_only_run_still_restarts_the_node_on_its_new_configuration(host):
    """Runs after the password test: --tags emq_node_configure changes emqx.conf, and the node must run it
    (the restart follows the change under any tag), with a last good copy of what it came back on."""
    third_vars = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "third-password.yml")
    before = host.check_output("systemctl show -P InvocationID emqx.service")
    rc, out = _converge("--tags", "emq_node_configure",
                        extra=["-e", "@" + third_vars, "-e", '{"emq_node_extra_config": {"mqtt": {"max_packet_size": "2MB"}}}'])
    assert rc == 0, out[-3000:]
    assert host.check_output("systemctl show -P InvocationID emqx.service") != before, "the node was not restarted"
    assert "max_packet_size" in host.file("/etc/emqx/emqx.conf").content_string
    assert host.file("/etc/emqx/emqx.conf.last-good").content_string == host.file("/etc/emqx/emqx.conf").content_string
    assert host.check_output("curl -s -o /dev/null -w '%%{http_code}' http://%s:18083/status" % ADDR) == "200"


def _recap(out):
    return [line for line in out.splitlines() if line.startswith("emq-node-1") and "ok=" in line]


def test_turning_the_firewall_off_takes_its_table_away_and_on_brings_it_back(host):
    """Runs last (only the firewall's tasks, --tags emq_node_firewall): check mode says what it would delete and
    deletes nothing; off removes the table, its file and the boot include, and changes nothing the second time;
    on brings the table back."""
    third_vars = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "third-password.yml")
    off = ["-e", "@" + third_vars, "-e", '{"emq_node_firewall_enabled": false}']
    rc, out = _converge("--tags", "emq_node_firewall", "--check", extra=off)
    assert rc == 0, out[-3000:]
    assert "Would delete the nftables table inet iothub_emqx" in out, out[-3000:]
    assert "table inet iothub_emqx" in host.check_output("nft list tables"), "check mode deleted the table"

    rc, out = _converge("--tags", "emq_node_firewall", extra=off)
    assert rc == 0, out[-3000:]
    assert "table inet iothub_emqx" not in host.check_output("nft list tables")
    assert not host.file("/etc/nftables-emqx.nft").exists
    assert "nftables-emqx" not in host.file("/etc/nftables.conf").content_string
    rc, out = _converge("--tags", "emq_node_firewall", extra=off)
    assert rc == 0 and _recap(out) and "changed=0" in _recap(out)[-1], out[-3000:]

    rc, out = _converge("--tags", "emq_node_firewall", extra=["-e", "@" + third_vars])
    assert rc == 0, out[-3000:]
    assert "172.30.1.1" in host.check_output("nft list table inet iothub_emqx")
