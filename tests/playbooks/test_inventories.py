"""The inventories and playbooks operators start from: they parse, they hold the groups the roles read,
and the private one keeps its secrets in the vault."""

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest
import yaml

TOP = pathlib.Path(__file__).resolve().parents[2]
# The ansible commands of the interpreter running the tests (the project's virtualenv).
BIN = str(pathlib.Path(sys.executable).parent)
ENV = dict(os.environ, PATH=os.pathsep.join([BIN, os.environ.get("PATH", "")]), ANSIBLE_COLLECTIONS_PATH=str(TOP / ".collections"), ANSIBLE_NOCOLOR="1")
SECRET_VARS = ("emq_node_cookie", "emq_node_dashboard_password", "emq_node_authn_users", "haproxy_lb_stats_password")


def ansible(*args):
    return subprocess.run(list(args), cwd=TOP, env=ENV, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("inventory, nodes, haproxy", [
    ("inventories/private", ["emqx-1", "emqx-2"], ["lb-1"]),
    ("inventories/lab", ["lab-emqx-1", "lab-emqx-2", "lab-emqx-3"], ["lab-haproxy"]),
])
def test_inventory_has_the_groups_the_roles_read(inventory, nodes, haproxy):
    result = ansible("ansible-inventory", "-i", inventory, "--list")
    assert result.returncode == 0, result.stderr
    groups = json.loads(result.stdout)
    assert groups["emq_nodes"]["hosts"] == nodes
    assert groups["haproxy_lb"]["hosts"] == haproxy
    assert "nginx_lb" in groups or inventory.endswith("private")


@pytest.mark.parametrize("playbook", ["site.yml", "iothub.emq.site", "playbooks/verify.yml",
                                      "playbooks/rolling_restart.yml", "playbooks/remove_node.yml",
                                      "iothub.emq.rolling_restart", "playbooks/aws_nlb.yml", "iothub.emq.aws_nlb"])
@pytest.mark.parametrize("inventory", ["inventories/private", "inventories/lab"])
def test_playbooks_pass_syntax_check(playbook, inventory):
    result = ansible("ansible-playbook", "-i", inventory, "--syntax-check", playbook)
    assert result.returncode == 0, result.stdout + result.stderr


def test_private_inventory_keeps_every_secret_in_the_vault():
    """Each secret variable of the private inventory's group_vars is a reference to a vault_ variable, and
    the example vault holds only placeholders the preflight refuses."""
    seen = {}
    for path in (TOP / "inventories/private/group_vars").rglob("*.yml"):
        data = yaml.safe_load(path.read_text()) or {}
        for key in SECRET_VARS:
            if key in data:
                seen[key] = data[key]
        for key in data.get("emq_node_api_keys", []) or []:
            seen["api secret " + key["key"]] = key["secret"]
    assert set(SECRET_VARS) <= set(seen), seen
    for key, value in seen.items():
        assert re.fullmatch(r"\{\{ vault_\w+ \}\}", value), "%s is not a vault reference: %r" % (key, value)
    example = yaml.safe_load((TOP / "inventories/private/group_vars/all/vault.yml.example").read_text())
    # Plain values are placeholders; the device users' list holds placeholders for every hash and salt.
    placeholders = []
    for value in example.values():
        if isinstance(value, list):
            placeholders += [u[k] for u in value for k in ("password_hash", "salt")]
        else:
            placeholders.append(value)
    assert all(str(v).startswith("REPLACE") for v in placeholders), example
    assert not (TOP / "inventories/private/group_vars/all/vault.yml").exists() or \
        (TOP / "inventories/private/group_vars/all/vault.yml").read_text().startswith("$ANSIBLE_VAULT")
