"""What an operator checks on a node that emq_node converged."""

import json
import os

import pytest
import testinfra
import yaml

SCENARIO = os.environ.get("MOLECULE_SCENARIO_DIRECTORY", os.path.dirname(os.path.dirname(__file__)))
with open(os.path.join(SCENARIO, "molecule.yml"), encoding="utf-8") as fh:
    GROUP_VARS = yaml.safe_load(fh)["provisioner"]["inventory"]["group_vars"]["emq_nodes"]
ADDR = "172.30.1.11"


@pytest.fixture(scope="module")
def host():
    # docker exec, not Ansible: Ansible's log (checked for secrets below) must hold only what the
    # role printed, not what these tests read.
    return testinfra.get_host("docker://emq-node-1")


def test_package_and_user(host):
    pkg = host.package("emqx")
    assert pkg.is_installed
    assert pkg.version.startswith("5.8.9")
    user = host.user("emqx")
    assert user.exists
    assert user.group == "emqx"


def test_config_not_world_readable(host):
    for path in ("/etc/emqx/emqx.conf", "/etc/emqx/api_keys"):
        f = host.file(path)
        assert f.exists, path
        assert f.user == "root"
        assert f.group == "emqx"
        assert f.mode == 0o640, "%s is %o" % (path, f.mode)


def test_rendered_config(host):
    conf = host.file("/etc/emqx/emqx.conf").content_string
    assert 'name = "emqx@%s"' % ADDR in conf
    assert 'discovery_strategy = "static"' in conf
    assert 'bind = "%s:18083"' % ADDR in conf
    assert GROUP_VARS["emq_node_cookie"] in conf
    assert "emqxsecretcookie" not in conf


def test_data_dir(host):
    d = host.file("/var/lib/emqx")
    assert d.is_directory
    assert d.user == "emqx"
    assert d.mode & 0o007 == 0


def test_limits_from_dropin(host):
    dropin = host.file("/etc/systemd/system/emqx.service.d/10-iothub-emq.conf")
    assert "LimitNOFILE=1048576" in dropin.content_string
    assert host.check_output("systemctl show emqx -p LimitNOFILE --value") == "1048576"
    packaged = host.file("/lib/systemd/system/emqx.service").content_string
    assert "iothub" not in packaged


def test_sysctl_file_is_consistent(host):
    conf = host.file("/etc/sysctl.d/60-emqx-tuning.conf").content_string
    values = dict(
        (k.strip(), v.strip())
        for k, v in (line.split("=", 1) for line in conf.splitlines() if "=" in line and not line.startswith("#"))
    )
    assert int(values["fs.nr_open"]) >= 1048576
    assert values["net.core.somaxconn"] == "32768"
    assert "net.ipv4.tcp_tw_reuse" not in values


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


def _login(host, password):
    body = json.dumps({"username": "admin", "password": password})
    return host.run(
        "curl -s -o /dev/null -w '%%{http_code}' -H 'Content-Type: application/json' -d '%s' http://%s:18083/api/v5/login"
        % (body, ADDR)
    ).stdout


def test_dashboard_password_set(host):
    assert _login(host, GROUP_VARS["emq_node_dashboard_password"]) == "200"
    assert _login(host, "public") == "401"


def test_api_key_works(host):
    key = GROUP_VARS["emq_node_api_keys"][0]
    out = host.check_output("curl -s -u %s:%s http://%s:18083/api/v5/nodes" % (key["key"], key["secret"], ADDR))
    nodes = json.loads(out)
    assert [n["node"] for n in nodes] == ["emqx@%s" % ADDR]
    assert nodes[0]["node_status"] == "running"


def test_firewall_table_loaded(host):
    ruleset = host.check_output("nft list table inet iothub_emqx")
    assert "tcp dport 18083 ip saddr @admins4 accept" in ruleset
    assert "172.30.1.1" in ruleset


def test_no_secret_in_ansible_output():
    log = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "ansible.log")
    with open(log, encoding="utf-8") as fh:
        text = fh.read()
    assert "emq-node-1" in text  # the log is the converge output
    for secret in (
        GROUP_VARS["emq_node_cookie"],
        GROUP_VARS["emq_node_dashboard_password"],
        GROUP_VARS["emq_node_api_keys"][0]["secret"],
    ):
        assert secret not in text


def test_check_and_diff_mode_on_converged_node_change_nothing_and_hide_secrets():
    import subprocess

    scenario = os.environ["MOLECULE_SCENARIO_DIRECTORY"]
    env = dict(os.environ, ANSIBLE_LOG_PATH="", ANSIBLE_FORCE_COLOR="false")
    run = subprocess.run(
        ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], "--check", "--diff",
         os.path.join(scenario, "converge.yml")],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    recap = [line for line in out.splitlines() if line.startswith("emq-node-1") and "ok=" in line]
    assert recap and "changed=0" in recap[-1] and "failed=0" in recap[-1], out[-3000:]
    for secret in (GROUP_VARS["emq_node_cookie"], GROUP_VARS["emq_node_dashboard_password"]):
        assert secret not in out
