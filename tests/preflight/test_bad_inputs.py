# Copyright (c) iothub.emq contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bad inputs stop emq_node and emq_cluster before any host changes, with a message that says what to fix.

Each case runs the real role (the whole role, not only its preflight) with ``ansible-playbook`` against
inventory hosts that are all ``ansible_connection=local``, in a fresh temporary directory, and changes
exactly one input of a valid base set (one case changes two: emq_node lists every problem of a host at
once). The operating system facts come from the test (no fact gathering), so the run does not depend
on the machine running it.

"Before any host changes" is shown three ways:

* every task that ran is the role's argument validation or a task of its preflight
  (``Validate the emq_node inputs`` / ``Validate the emq_cluster inputs``), and the failing task is
  the check the case is about (for emq_node, one task checks every input of a host on its own:
  ``NODE_CHECK``; the checks across hosts are tasks of their own);
* the PLAY RECAP lists every host with ``changed=0``;
* the hosts' Python is a guard that runs only ``slurp`` (the preflight reads
  ``/proc/sys/fs/nr_open``) and refuses and records any other module: were a bad input to get past
  the checks, the install or configure tasks could not touch this machine, and the test would see it.

The positive controls run the same harness with the valid base inputs (``--tags`` stops after the
preflight) and pass, so each failure comes from the one bad value, not from the harness.

The aws_nlb cases run playbooks/aws_nlb.yml the same way and show that its checks stop the run before any AWS request.

Run: ``.venv/bin/python -m pytest -p no:cacheprovider tests/preflight -q`` (``-rP`` prints each case's message).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
ROLES = ROOT / "roles"


def _ansible_playbook() -> Path:
    for candidate in (ROOT / ".venv" / "bin" / "ansible-playbook", Path(sys.executable).parent / "ansible-playbook"):
        if candidate.is_file():
            return candidate
    pytest.fail("ansible-playbook not found: run `make venv` first")


# Secrets of the valid base inputs. Random per test session: none of them may ever appear in the output.
COOKIE = "ck-" + uuid.uuid4().hex
DASHBOARD_PASSWORD = "pw-" + uuid.uuid4().hex[:20]
API_SECRET = "as-" + uuid.uuid4().hex
DEVICE_SALT = "salt-" + uuid.uuid4().hex[:12]
DEVICE_HASH = hashlib.sha256(("dev-" + uuid.uuid4().hex + DEVICE_SALT).encode()).hexdigest()
SECRETS = (COOKIE, DASHBOARD_PASSWORD, API_SECRET, DEVICE_HASH)
DEVICE = {"user_id": "sensor-1", "password_hash": DEVICE_HASH, "salt": DEVICE_SALT}

DEBIAN_12 = {"distribution": "Debian", "major_version": "12", "version": "12.7", "os_family": "Debian"}
HOSTS = {"n1": "10.0.0.1", "n2": "10.0.0.2"}
REMOVE = object()  # an override value that deletes the variable from the base inputs


def base_vars() -> dict[str, Any]:
    """Valid inputs under which every preflight check runs and passes (see the controls).

    The install source stays the default (repository): the package-file cases and a control switch to
    package_inputs(), which adds a controller-side stat to the run.
    """
    return {
        "preflight_test_os": dict(DEBIAN_12),
        "emq_node_cookie": COOKIE,
        "emq_node_dashboard_password": DASHBOARD_PASSWORD,
        "emq_node_api_keys": [{"key": "ops", "secret": API_SECRET, "role": "administrator"}],
        "emq_node_authn_users": [dict(DEVICE)],
        "emq_node_firewall_enabled": True,
        "emq_node_firewall_admin_networks": ["10.0.0.0/8"],
        "emq_node_firewall_client_networks": ["192.168.0.0/16", "2001:db8::/32"],
        # Do not apply sysctls, so the preflight reads this host's fs.nr_open (through the guard)
        # and checks the open-file limit against it: 1000 connections need 1048576, the kernel default.
        "emq_node_sysctl_apply": False,
        "emq_node_target_connections": 1000,
    }


def package_inputs(tmp: Path) -> dict[str, Any]:
    """install_source=package with a real (small) .deb file on the controller."""
    package = tmp / "emqx-5.8.9-debian12-amd64.deb"
    package.write_bytes(b"!<arch>\n")
    return {"emq_node_install_source": "package", "emq_node_package_file": str(package)}


# ---- the role's own task names -----------------------------------------------------------------
def _task_names(tasks: list[dict[str, Any]]) -> list[str]:
    names = []
    for task in tasks or []:
        if "name" in task:
            names.append(task["name"])
        for key in ("block", "rescue", "always"):
            names.extend(_task_names(task.get(key, [])))
    return names


def _argspec_task(role: str) -> str:
    spec = yaml.safe_load((ROLES / role / "meta" / "argument_specs.yml").read_text())
    return "Validating arguments against arg spec 'main' - " + spec["argument_specs"]["main"]["short_description"]


PREFLIGHT_BLOCK = {"emq_node": "Validate the emq_node inputs", "emq_cluster": "Validate the emq_cluster inputs"}


def _preflight_checks(role: str) -> set[str]:
    """Names of the tasks inside the role's validation block."""
    blocks = [t for t in yaml.safe_load((ROLES / role / "tasks" / "preflight.yml").read_text()) if t.get("name") == PREFLIGHT_BLOCK[role]]
    assert blocks, f"{role}/tasks/preflight.yml has no block named {PREFLIGHT_BLOCK[role]!r}"
    return set(_task_names(blocks[0]["block"]))


def _preflight_include(role: str) -> set[str]:
    """The task of main.yml that includes preflight.yml (once per run for the same inputs)."""
    tasks = yaml.safe_load((ROLES / role / "tasks" / "main.yml").read_text())
    return {t["name"] for t in tasks if (t.get("ansible.builtin.include_tasks") or {}).get("file") == "preflight.yml"}


def _lb_common_tls_checks(role: str) -> set[str]:
    """The TLS checks emq_node's preflight includes from _lb_common (tls_preflight.yml), as the log names them."""
    if role != "emq_node":
        return set()
    tasks = yaml.safe_load((ROLES / "_lb_common" / "tasks" / "tls_preflight.yml").read_text())
    spec = yaml.safe_load((ROLES / "_lb_common" / "meta" / "argument_specs.yml").read_text())
    argspec = "Validating arguments against arg spec 'tls_preflight' - " + spec["argument_specs"]["tls_preflight"]["short_description"]
    return {"iothub.emq._lb_common : " + name for name in _task_names(tasks) + [argspec]}


def _always_tasks(role: str) -> set[str]:
    """Tasks of the role tagged always outside its preflight: they run under --tags <role>_preflight too
    (the handler flush, and the restart of nodes a handler marked, which does nothing when none is)."""
    names: set[str] = set()
    for path in (ROLES / role / "tasks").glob("*.yml"):
        if path.name not in ("preflight.yml", "main.yml"):
            names.update(t["name"] for t in yaml.safe_load(path.read_text()) or [] if "always" in (t.get("tags") or []))
    return names


def _later_tasks(role: str) -> set[str]:
    """Names of every task of the role outside its preflight (install, configure, join, ...), but the always ones."""
    names: set[str] = set()
    for path in (ROLES / role / "tasks").glob("*.yml"):
        if path.name not in ("preflight.yml", "main.yml"):
            names.update(_task_names(yaml.safe_load(path.read_text())))
    return names - _always_tasks(role)


# ---- running a case ----------------------------------------------------------------------------
GUARD = """\
#!/bin/sh
# Python for one test host. The preflight may read the host (slurp, stat, the collection's read-only
# host_probe) and gather facts (answered with the facts the test chose); any other module could change
# it, so it is refused and recorded.
case "$(basename -- "${{1:-}}")" in
  AnsiballZ_slurp.py) echo "ran slurp" >> '{log}'; exec '{python}' "$@" ;;
  AnsiballZ_host_probe.py) echo "ran host_probe" >> '{log}'; exec '{python}' "$@" ;;
  AnsiballZ_stat.py) echo "ran stat" >> '{log}'; exec '{python}' "$@" ;;
  AnsiballZ_setup.py) echo "ran setup" >> '{log}'; cat '{facts}'; exit 0 ;;
esac
echo "refused ${{1:-a module on stdin}}" >> '{log}'
echo '{{"failed": true, "msg": "preflight test guard: this host runs no module that could change it"}}'
exit 1
"""
READ_ONLY = ("ran slurp", "ran stat", "ran host_probe", "ran setup")  # what the guard lets through


@dataclass
class Run:
    rc: int
    output: str
    modules: list[str]
    cmd: list[str]

    @property
    def tasks(self) -> list[str]:
        """Task headers in the order they ran, e.g. 'iothub.emq.emq_node : Check the cookie'."""
        return re.findall(r"^TASK \[(.*)\] \**$", self.output, re.M)

    @property
    def failed(self) -> set[tuple[str, str]]:
        """(host, task) of every failure."""
        out, task = set(), None
        for line in self.output.splitlines():
            header = re.match(r"^TASK \[(.*)\] \**$", line)
            if header:
                task = header.group(1)
            failure = re.match(r"^(?:fatal|failed): \[([^\]]+)\]", line)
            if failure:
                out.add((failure.group(1), task))
        return out

    @property
    def recap(self) -> dict[str, dict[str, int]]:
        tail = self.output.split("PLAY RECAP", 1)[1] if "PLAY RECAP" in self.output else ""
        return {
            host: dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", counts))
            for host, counts in re.findall(r"^(\S+)\s+:\s+(.*)$", tail, re.M)
        }

    @property
    def messages(self) -> list[str]:
        """The error messages Ansible printed ('[ERROR]: Task failed: Action failed: ...' up to 'Origin:')."""
        found = re.findall(r"^\[ERROR\]: Task failed: (?:Action failed: )?(.*?)(?=^Origin:|\Z)", self.output, re.M | re.S)
        return [" ".join(m.split()) for m in found]

    @property
    def host_messages(self) -> dict[str, list[str]]:
        """{host: the msg of each of its failures}, from the result lines ('fatal: [host]: FAILED! => {...}')."""
        out: dict[str, list[str]] = {}
        for host, result in re.findall(r"^(?:fatal|failed): \[([^\]]+)\][^\n]*? => (\{.*\})$", self.output, re.M):
            try:
                msg = json.loads(result).get("msg", "")
            except ValueError:
                msg = result
            out.setdefault(host, []).append(" ".join(str(msg).split()))
        return out

    def explain(self) -> str:
        return "\n$ " + " ".join(self.cmd) + f"\nrc={self.rc}\nmodules: {self.modules}\n" + self.output[-8000:]


def _facts(name: str, address: str, os_facts: dict[str, str]) -> dict[str, Any]:
    """What the guard answers to fact gathering for one host."""
    facts = {
        "distribution": os_facts["distribution"], "distribution_major_version": os_facts["major_version"],
        "distribution_version": os_facts["version"], "os_family": os_facts["os_family"], "processor_vcpus": 2,
        "hostname": name, "fqdn": name, "all_ipv4_addresses": [address], "all_ipv6_addresses": [],
        # One interface on a /24 holding the address (lb_vip's checks read it).
        "interfaces": ["lo", "eth0"], "eth0": {"ipv4": {"address": address, "netmask": "255.255.255.0"}},
    }
    return {"ansible_facts": {"ansible_" + key: value for key, value in facts.items()}, "changed": False}


def _harness(tmp: Path, group_vars: dict[str, Any], host_vars: dict[str, dict[str, Any]],
             groups: dict[str, dict[str, Any]] | None = None) -> tuple[Path, dict[str, str]]:
    """Write a guard per host, an inventory of local hosts and an ansible.cfg into tmp; return the inventory and the environment.

    host_vars are the emq_nodes hosts with group_vars; groups adds other groups as {group: {"hosts": {name: vars}, "vars": {...}}}.
    """
    log = tmp / "modules.log"
    inventory_groups = {"emq_nodes": {"hosts": host_vars, "vars": group_vars}, **(groups or {})}
    children: dict[str, Any] = {}
    for group, content in inventory_groups.items():
        hosts = {}
        for name, extra in content["hosts"].items():
            merged = {**content.get("vars", {}), **extra}
            facts = tmp / f"facts-{name}.json"
            address = merged.get("emq_node_cluster_address") or merged.get("ansible_host") or "127.0.0.1"
            facts.write_text(json.dumps(_facts(name, str(address).strip(), merged.get("preflight_test_os", DEBIAN_12))))
            guard = tmp / f"host-python-{name}"
            guard.write_text(GUARD.format(log=log, python=sys.executable, facts=facts))
            guard.chmod(0o755)
            hosts[name] = {"ansible_connection": "local", "ansible_python_interpreter": str(guard), **extra}
        children[group] = {"hosts": hosts, "vars": content.get("vars", {})}
    inventory = tmp / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": children}}, sort_keys=False))
    config = tmp / "ansible.cfg"
    config.write_text("[defaults]\nretry_files_enabled = false\nstdout_callback = ansible.builtin.default\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        ANSIBLE_CONFIG=str(config),
        ANSIBLE_HOME=str(tmp / "ansible-home"),
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"),
        ANSIBLE_ROLES_PATH=str(ROLES),
        ANSIBLE_FORCE_COLOR="false",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCAL_TEMP=str(tmp / "local-tmp"),
        ANSIBLE_REMOTE_TEMP=str(tmp / "remote-tmp"),
        ANSIBLE_CACHE_PLUGIN="memory",
        ANSIBLE_PIPELINING="false",  # the guard sees the module's file name
        PYTHONDONTWRITEBYTECODE="1",
    )
    return inventory, env


def run_playbook(tmp: Path, playbook: Path, group_vars: dict[str, Any], host_vars: dict[str, dict[str, Any]], tags: str = "",
                 groups: dict[str, dict[str, Any]] | None = None) -> Run:
    inventory, env = _harness(tmp, group_vars, host_vars, groups)
    cmd = [str(_ansible_playbook()), "-i", str(inventory), str(playbook)]
    if tags:
        cmd += ["--tags", tags]
    proc = subprocess.run(cmd, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120, check=False)
    log = tmp / "modules.log"
    modules = log.read_text().splitlines() if log.exists() else []
    return Run(proc.returncode, proc.stdout, modules, cmd)


def run_role(tmp: Path, role: str, group_vars: dict[str, Any], host_vars: dict[str, dict[str, Any]], tags: str = "") -> Run:
    """Run tests/preflight/<role>.yml (the whole role) against local hosts with these inputs."""
    return run_playbook(tmp, HERE / f"{role}.yml", group_vars, host_vars, tags)


# ---- the cases ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    id: str
    check: str  # the task that must fail ("argspec" for the role's argument validation)
    expect: tuple[str, ...]  # text the message must contain: the variable and the fix
    group_vars: dict[str, Any] = field(default_factory=dict)  # overrides of base_vars; REMOVE deletes
    host_vars: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-host additions
    role: str = "emq_node"
    secrets: tuple[str, ...] = ()  # bad values that are secret too and must not be printed
    not_expect: tuple[str, ...] = ()  # text that would blame a variable that is fine
    failing_hosts: tuple[str, ...] = ()  # hosts the check fails on; default every host
    argspec_fails_on: tuple[str, ...] = ()  # hosts that fail the argument validation before the check


def _missing_package(tmp: Path) -> str:
    return str(tmp / "files" / "emqx-5.8.9-debian12-amd64.deb")


def _not_a_package(tmp: Path) -> str:
    path = tmp / "emqx-5.8.9.tar.gz"
    path.write_bytes(b"\x1f\x8b")
    return str(path)


# Every check of one host's own inputs is this one task (the filter iothub.emq.emq_node_problems): the cases of
# those checks name it, and their expected texts are the problems it lists.
NODE_CHECK = "Check the emq_node inputs of this host"
SHORT_COOKIE = "sh0rtC00k1e"
COLON_SECRET = "left:" + uuid.uuid4().hex
LICENSE = "lic-" + uuid.uuid4().hex
OTHER_COOKIE = "ck-other-" + uuid.uuid4().hex
LONG_PASSWORD = "Pw1-" + uuid.uuid4().hex + uuid.uuid4().hex[:29]  # 65 characters
LETTERS_PASSWORD = "onlyletters" + "".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex[:8])
UMLAUT_PASSWORD = "p\u00e4ssw0rd-" + uuid.uuid4().hex[:6]
SPACED_COOKIE = "a cookie with spaces " + uuid.uuid4().hex[:8]

CASES = [
    Case("cookie-missing", "argspec", ("missing required arguments: emq_node_cookie",), {"emq_node_cookie": REMOVE}),
    # n1 fails the argument validation and leaves the play; n2 (valid) must not go on alone.
    Case("cookie-missing-on-one-host", "Check no host of the play failed before these checks",
         ("missing required arguments: emq_node_cookie", "n1 failed before emq_node's checks", "--limit"),
         {"emq_node_cookie": REMOVE}, host_vars={"n2": {"emq_node_cookie": COOKIE}}, failing_hosts=("n2",), argspec_fails_on=("n1",)),
    # issue 19: replicants are the enterprise edition's, and only beside a core.
    Case("replicant-on-open-source", NODE_CHECK,
         ("emq_node_role is replicant, but EMQX 5.8.9 is the open-source build", "emq_node_role: core"),
         {}, host_vars={"n2": {"emq_node_role": "replicant"}}, failing_hosts=("n2",)),
    # issue 19: TLS between the nodes needs the cluster CA and each node's certificate and key.
    Case("cluster-tls-without-files", NODE_CHECK,
         ("emq_node_cluster_tls is on with emq_node_cluster_tls_source=files", "emq_node_cluster_tls_cert_file",
          "emq_node_cluster_tls_source: lab"),
         {"emq_node_cluster_tls": True}),
    Case("cookie-default", NODE_CHECK, ("emq_node_cookie", "emqxsecretcookie", "openssl rand -hex 24", "ansible-vault"),
         {"emq_node_cookie": "emqxsecretcookie"}),
    Case("cookie-short", NODE_CHECK, ("emq_node_cookie", "at least 16", "openssl rand -hex 24"),
         {"emq_node_cookie": SHORT_COOKIE}, secrets=(SHORT_COOKIE,)),
    Case("cookie-spaces", NODE_CHECK, ("emq_node_cookie", "without spaces"), {"emq_node_cookie": SPACED_COOKIE}, secrets=(SPACED_COOKIE,)),
    # issue 12's table: a cookie with a trailing newline (encrypt_string of a file) was accepted and the cluster
    # never formed; a cookie that differed on one host split the cluster.
    Case("cookie-trailing-newline", NODE_CHECK, ("emq_node_cookie", "trailing newline", "encrypt_string"),
         {"emq_node_cookie": COOKIE + "\n"}),
    Case("cookie-differs-on-one-host", "Check every node has the same cookie",
         ("emq_node_cookie is not the same on every node: n2 has another value than n1", "group_vars/emq_nodes/vault.yml"),
         host_vars={"n2": {"emq_node_cookie": OTHER_COOKIE}}, secrets=(OTHER_COOKIE,), failing_hosts=("n1",)),
    Case("node-name-trailing-newline", NODE_CHECK, ("emq_node_name", '"emqx@10.0.0.1\\n"', "trailing newline"),
         host_vars={"n1": {"emq_node_name": "emqx@10.0.0.1\n"}}, failing_hosts=("n1",)),
    Case("cluster-address-trailing-newline", NODE_CHECK, ('"emqx@10.0.0.2\\n"', "emq_node_cluster_address"),
         host_vars={"n2": {"emq_node_cluster_address": "10.0.0.2\n"}}, failing_hosts=("n2",)),
    Case("cluster-address-ipv6", NODE_CHECK, ("IPv6 cluster addresses are not supported", "private IPv4 address"),
         host_vars={"n1": {"emq_node_cluster_address": "2001:db8::1"}}, failing_hosts=("n1",)),
    Case("cookie-vault-example-placeholder", NODE_CHECK, ("emq_node_cookie", "vault.yml.example"),
         {"emq_node_cookie": "REPLACE-with-openssl-rand-hex-24"}),
    Case("dashboard-password-public", NODE_CHECK, ("emq_node_dashboard_password", '"public"', "ansible-vault"),
         {"emq_node_dashboard_password": "public"}),
    Case("dashboard-password-missing", "argspec", ("missing required arguments: emq_node_dashboard_password",),
         {"emq_node_dashboard_password": REMOVE}),
    Case("node-name-double-at", NODE_CHECK, ("emq_node_name", "emqx@@x", "emqx@<IPv4 address or FQDN>"),
         host_vars={"n1": {"emq_node_name": "emqx@@x"}}, failing_hosts=("n1",)),
    Case("node-name-space", NODE_CHECK, ("emq_node_name", "emqx 1@h", "emqx@<IPv4 address or FQDN>"),
         host_vars={"n1": {"emq_node_name": "emqx 1@h"}}, failing_hosts=("n1",)),
    Case("node-name-numbered", NODE_CHECK, ("emqx1@h", "4370+N", "emq_node_allow_numbered_name: true"),
         host_vars={"n1": {"emq_node_name": "emqx1@h"}}, failing_hosts=("n1",)),
    Case("node-names-duplicate", "Check every node of the group has its own name", ("emqx@10.0.0.1", "emq_node_cluster_address"),
         host_vars={"n2": {"emq_node_cluster_address": "10.0.0.1"}}, failing_hosts=("n1",)),
    Case("install-source-unknown", "argspec", ("emq_node_install_source", "repository, url, package", "ftp"), {"emq_node_install_source": "ftp"}),
    Case("package-file-missing", NODE_CHECK, ("emq_node_package_file", "files/emqx-5.8.9-debian12-amd64.deb", "not a .deb file"),
         {"emq_node_install_source": "package", "emq_node_package_file": _missing_package}),
    Case("package-file-not-a-package", NODE_CHECK, ("emq_node_package_file", "emqx-5.8.9.tar.gz", "not a .deb file"),
         {"emq_node_install_source": "package", "emq_node_package_file": _not_a_package}),
    Case("package-file-empty", NODE_CHECK, ("emq_node_package_file", "install_source=package", ".deb on the controller"),
         {"emq_node_install_source": "package"}, not_expect=("emq_node_version must", "emq_node_package_url")),
    Case("package-url-not-http", NODE_CHECK, ("emq_node_package_url", "http(s) address"),
         {"emq_node_install_source": "url", "emq_node_package_url": "ftp://mirror.example/emqx.deb"},
         not_expect=("emq_node_version must", "emq_node_install_source must", "emq_node_package_file")),
    Case("version-not-emqx5", NODE_CHECK, ("emq_node_version", "like 5.8.9", "4.4.19"), {"emq_node_version": "4.4.19"},
         not_expect=("emq_node_package_url", "emq_node_install_source must")),
    Case("firewall-cidr-bad", NODE_CHECK, ("emq_node_firewall_admin_networks has 10.0.0.0/33", "CIDRs like 10.0.0.0/8"),
         {"emq_node_firewall_admin_networks": ["10.0.0.0/8", "10.0.0.0/33"]}, not_expect=("emq_node_firewall_client_networks",)),
    Case("firewall-lb-address-bad", NODE_CHECK, ("emq_node_firewall_lb_addresses has lb1.example", "addresses like 192.168.0.10"),
         {"emq_node_firewall_lb_addresses": ["lb1.example"]}, not_expect=("emq_node_firewall_admin_networks",)),
    Case("static-seeds-not-in-group", NODE_CHECK, ("emq_node_static_seeds lists emqx@10.9.9.9", "add those hosts to the group"),
         {"emq_node_static_seeds": ["emqx@10.0.0.1", "emqx@10.9.9.9"]}, not_expect=("emq_node_discovery must",)),
    Case("discovery-dns-without-name", NODE_CHECK, ("emq_node_dns_name",), {"emq_node_discovery": "dns"},
         not_expect=("emq_node_static_seeds", "emq_node_discovery must")),
    Case("discovery-etcd-server-without-port", NODE_CHECK, ("emq_node_etcd_server", '"http://etcd.example"', "http://<host>:<port>"),
         {"emq_node_discovery": "etcd", "emq_node_etcd_server": "http://etcd.example"}, not_expect=("emq_node_discovery must",)),
    Case("os-unsupported", NODE_CHECK, ("Alpine 3.20", "Supported:", "remove it from the group emq_nodes"),
         {"preflight_test_os": {"distribution": "Alpine", "major_version": "3", "version": "3.20", "os_family": "Alpine"}}),
    Case("os-version-unsupported", NODE_CHECK, ("Debian 11.9", "Supported:"),
         {"preflight_test_os": {"distribution": "Debian", "major_version": "11", "version": "11.9", "os_family": "Debian"}}),
    Case("listener-ports-conflict", NODE_CHECK, ("emq_node_listeners", "use the same port: 1883 ", "give each its own port"),
         {"emq_node_listeners": {"tcp": {"enable": True, "bind": "0.0.0.0:1883"}, "ws": {"enable": True, "bind": "0.0.0.0:1883"}}}),
    Case("listener-port-is-dashboard-port", NODE_CHECK, ("emq_node_listeners", "use the same port: 18083 ", "give each its own port"),
         {"emq_node_listeners": {"tcp": {"enable": True, "bind": "0.0.0.0:1883"}, "ws": {"enable": True, "bind": "0.0.0.0:18083"}}}),
    # issue 17: a TLS listener on the nodes without a certificate of its own takes emq_node_tls_*, which must be given.
    Case("tls-listener-without-a-certificate", "iothub.emq._lb_common : Check the TLS settings",
         ("This host terminates TLS and needs a certificate", "emq_node_tls_cert_file", "emq_node_tls_source: lab"),
         {"emq_node_listeners": {"tcp": {"enable": True, "bind": "0.0.0.0:1883"}, "ssl": {"enable": True, "bind": "0.0.0.0:8883"}}}),
    Case("tls-listener-cert-without-key", NODE_CHECK,
         ("emq_node_listeners", "TLS listeners ssl have one of certfile and keyfile without the other"),
         {"emq_node_listeners": {"ssl": {"enable": True, "bind": "0.0.0.0:8883", "certfile": "/etc/emqx/certs/cert.pem"}}}),
    # issue 13: devices authenticate unless the inventory says otherwise; bad users and ACL rules stop the run.
    Case("authentication-unknown", "argspec", ("emq_node_authentication", "password, client_certificate"),
         {"emq_node_authentication": "token"}),
    Case("anonymous-with-users", NODE_CHECK, ("emq_node_allow_anonymous", "emq_node_authn_users", "remove one"),
         {"emq_node_allow_anonymous": True}),
    Case("device-hash-not-sha256", NODE_CHECK, ("emq_node_authn_users", "sensor-1", "emqx_password_hash"),
         {"emq_node_authn_users": [dict(DEVICE, password_hash="not-a-hash")]}),
    Case("device-user-twice", NODE_CHECK, ("emq_node_authn_users", "sensor-1"),
         {"emq_node_authn_users": [dict(DEVICE), dict(DEVICE)]}),
    Case("device-without-user-id", NODE_CHECK, ("emq_node_authn_users", "user_id"),
         {"emq_node_authn_users": [{"password_hash": DEVICE_HASH, "salt": DEVICE_SALT}]}),
    Case("hash-algorithm-bcrypt", NODE_CHECK, ("emq_node_authn_password_hash_algorithm", "bcrypt"),
         {"emq_node_authn_password_hash_algorithm": {"name": "bcrypt", "salt_rounds": 10}}),
    Case("acl-topic-prefix-wildcard", NODE_CHECK, ("emq_node_authz_topic_prefix", "devices/#"),
         {"emq_node_authz_topic_prefix": "devices/#"}),
    Case("acl-rule-bad-topic", NODE_CHECK, ("emq_node_authz_rules", "a/#/b"),
         {"emq_node_authz_rules": [{"permission": "allow", "action": "all", "topics": ["a/#/b"]}]}),
    Case("acl-rule-bad-permission", NODE_CHECK, ("emq_node_authz_rules", "permit"),
         {"emq_node_authz_rules": [{"permission": "permit", "action": "all", "topics": ["a/b"]}]}),
    Case("acl-rule-bad-cidr", NODE_CHECK, ("emq_node_authz_rules", "10.0.0.300/8"),
         {"emq_node_authz_rules": [{"permission": "allow", "who": {"ipaddr": "10.0.0.300/8"}, "topics": ["a/b"]}]}),
    Case("api-key-bad-role", NODE_CHECK, ("emq_node_api_keys", "role 'superuser' is not one of administrator"),
         {"emq_node_api_keys": [{"key": "ops", "secret": API_SECRET, "role": "superuser"}]}),
    Case("api-key-short-secret", NODE_CHECK, ("emq_node_api_keys", "at least 16 characters"),
         {"emq_node_api_keys": [{"key": "ops", "secret": "tiny-Secret"}]}, secrets=("tiny-Secret",)),
    # EMQX 5.8's loader stops at a role it does not know, leaving that key and every later key unloaded.
    Case("api-key-viewer-on-open-source", NODE_CHECK,
         ("emq_node_api_keys is wrong for EMQX 5.8.9", "key grafana: role viewer needs the enterprise edition (5.9+)",
          "every key after it"),
         {"emq_node_api_keys": [{"key": "ops", "secret": API_SECRET}, {"key": "grafana", "secret": API_SECRET, "role": "viewer"}]},
         not_expect=("key ops",)),
    Case("api-key-colon-in-secret", NODE_CHECK, ("key ops: secret must be printable ASCII without spaces or ':'",),
         {"emq_node_api_keys": [{"key": "ops", "secret": COLON_SECRET}]}, secrets=(COLON_SECRET,)),
    Case("dashboard-password-too-long", NODE_CHECK, ("emq_node_dashboard_password", "8 to 64 characters (this one has 65)"),
         {"emq_node_dashboard_password": LONG_PASSWORD}, secrets=(LONG_PASSWORD,)),
    Case("dashboard-password-one-kind", NODE_CHECK, ("emq_node_dashboard_password", "two kinds of characters"),
         {"emq_node_dashboard_password": LETTERS_PASSWORD}, secrets=(LETTERS_PASSWORD,)),
    Case("dashboard-password-not-ascii", NODE_CHECK, ("emq_node_dashboard_password", "ASCII characters only"),
         {"emq_node_dashboard_password": UMLAUT_PASSWORD}, secrets=(UMLAUT_PASSWORD,)),
    Case("dns-a-with-host-names", NODE_CHECK,
         ("emq_node_dns_record_type=a", "unless the node name is name@<IPv4 address>", "emqx@n1.mqtt.example"),
         {"emq_node_discovery": "dns", "emq_node_dns_name": "mqtt.example"},
         host_vars={"n1": {"emq_node_name": "emqx@n1.mqtt.example"}, "n2": {"emq_node_name": "emqx@n2.mqtt.example"}},
         not_expect=("emq_node_static_seeds",)),
    Case("dns-srv-with-ip-names", NODE_CHECK, ("emq_node_dns_record_type=srv", "<name>@<SRV target host>"),
         {"emq_node_discovery": "dns", "emq_node_dns_name": "_emqx._tcp.mqtt.example", "emq_node_dns_record_type": "srv"}),
    # Unknown nested keys and wrong values: EMQX refuses to boot on them, so a restart would take the node down.
    Case("extra-config-nested-typo", NODE_CHECK, ("emq_node_extra_config", "mqtt.max_packet_sise", "did you mean max_packet_size"),
         {"emq_node_extra_config": {"mqtt": {"max_packet_sise": "2MB"}}}),
    Case("extra-config-deep-typo", NODE_CHECK, ("listeners.tcp.default.tcp_option", "did you mean tcp_options"),
         {"emq_node_extra_config": {"listeners": {"tcp": {"default": {"tcp_option": {"backlog": 1024}}}}}}),
    Case("extra-config-boolean-yes", NODE_CHECK, ("mqtt.retain_available", "not true or false"),
         {"emq_node_extra_config": {"mqtt": {"retain_available": "yes"}}}),
    Case("extra-config-bytesize-unit", NODE_CHECK, ("mqtt.max_packet_size", "byte size such as"),
         {"emq_node_extra_config": {"mqtt": {"max_packet_size": "2Mb"}}}),
    Case("extra-config-log-level-warn", NODE_CHECK, ("log.console.level", "did you mean warning"),
         {"emq_node_extra_config": {"log": {"console": {"level": "warn"}}}}),
    Case("extra-config-dotted-key", NODE_CHECK, ("mqtt.max_packet_size", "write it nested", "{mqtt: {max_packet_size: ...}}"),
         {"emq_node_extra_config": {"mqtt.max_packet_size": "2MB"}}),
    Case("extra-config-out-of-range", NODE_CHECK, ("mqtt.max_inflight", "out of range"),
         {"emq_node_extra_config": {"mqtt": {"max_inflight": 0}}}),
    Case("extra-config-duration-words", NODE_CHECK, ("mqtt.idle_timeout", "duration such as"),
         {"emq_node_extra_config": {"mqtt": {"idle_timeout": "15 seconds"}}}),
    # Values emqx.conf carries in quotes or EMQX's scripts use: a trailing newline or a quote breaks them.
    Case("secrets-dir-trailing-newline", NODE_CHECK,
         ("emq_node_secrets_dir has a newline at the end", "printf"), {"emq_node_secrets_dir": "/etc/emqx-secrets\n"}),
    Case("dashboard-username-with-a-quote", NODE_CHECK,
         ("emq_node_dashboard_username has a double quote",), {"emq_node_dashboard_username": 'ad"min'}),
    Case("extra-config-unknown-root", NODE_CHECK,
         ("emq_node_extra_config has root keys EMQX 5.8.9 does not know: mqqt", "drop them", "known roots:"),
         {"emq_node_extra_config": {"mqqt": {"max_packet_size": "2MB"}, "mqtt": {"max_qos_allowed": 1}}},
         not_expect=("emq_node_secrets_dir", "emq_node_api_key_file")),
    Case("secrets-dir-in-etc-emqx", NODE_CHECK,
         ("emq_node_secrets_dir", "/etc/emqx/secrets", "chmod 0644 /etc/emqx/*"),
         {"emq_node_secrets_dir": "/etc/emqx/secrets"}, not_expect=("emq_node_extra_config",)),
    Case("api-key-file-in-etc-emqx", NODE_CHECK,
         ("emq_node_api_key_file", "/etc/emqx/api_keys", "outside /etc/emqx"),
         {"emq_node_api_key_file": "/etc/emqx/api_keys"}, not_expect=("emq_node_secrets_dir is",)),
    Case("listener-bind-host-name", NODE_CHECK, ("emq_node_listeners", "binds EMQX refuses at boot: localhost:1883", "never a host name"),
         {"emq_node_listeners": {"tcp": {"enable": True, "bind": "localhost:1883"}}}),
    Case("dashboard-bind-host-name", NODE_CHECK, ("binds EMQX refuses at boot: emqx-1.example:18083",),
         {"emq_node_dashboard_bind": "emqx-1.example:18083"}),
    Case("enterprise-cluster-without-license", NODE_CHECK, ("5.10.4", "emq_node_license_key", "open-source 5.8.x"),
         {"emq_node_version": "5.10.4"}),
    Case("license-on-open-source", NODE_CHECK, ("emq_node_license_key", "open-source build", "drop license.key"),
         {"emq_node_license_key": LICENSE}, secrets=(LICENSE,), not_expect=("clustering",)),
    Case("target-connections-above-nr-open", NODE_CHECK, ("emq_node_target_connections", "fs.nr_open", "Lower"),
         {"emq_node_target_connections": 600000000}),
    # Every problem of a host at once, not only the first: a short cookie and a network that is none.
    Case("two-bad-inputs-at-once", NODE_CHECK,
         ("(2 problems)", "emq_node_cookie", "at least 16", "openssl rand -hex 24",
          "emq_node_firewall_admin_networks has 10.0.0.0/33", "CIDRs like 10.0.0.0/8"),
         {"emq_node_cookie": SHORT_COOKIE, "emq_node_firewall_admin_networks": ["10.0.0.0/8", "10.0.0.0/33"]},
         secrets=(SHORT_COOKIE,), not_expect=("emq_node_firewall_client_networks",)),
    Case("cluster-remove-unknown-node", "Check the discovery strategy and the node lists",
         ("emq_cluster_remove_nodes names emqx@10.9.9.9", "emqx@10.0.0.1, emqx@10.0.0.2", "emqx@<address>"),
         {"emq_cluster_remove_nodes": ["emqx@10.9.9.9"]}, role="emq_cluster", not_expect=("emq_cluster_discovery must", "emq_cluster_join_peer"),
         failing_hosts=("n1",)),
    Case("cluster-discovery-unknown", "argspec", ("emq_cluster_discovery", "static, manual, dns, etcd", "gossip"),
         {"emq_cluster_discovery": "gossip"}, role="emq_cluster"),
    Case("cluster-join-peer-unknown", "Check the discovery strategy and the node lists", ("emq_cluster_join_peer", "emqx@10.9.9.9", "name one of them"),
         {"emq_cluster_discovery": "manual", "emq_cluster_join_peer": "emqx@10.9.9.9"}, role="emq_cluster",
         not_expect=("emq_cluster_remove_nodes", "emq_cluster_discovery must"), failing_hosts=("n1",)),
    Case("cluster-remove-every-node", "Check the discovery strategy and the node lists", ("no node is left", "emq_cluster_remove_nodes"),
         {"emq_cluster_remove_nodes": ["emqx@10.0.0.1", "emqx@10.0.0.2"]}, role="emq_cluster", not_expect=("emq_cluster_join_peer",),
         failing_hosts=("n1",)),
    Case("cluster-discovery-wrong-on-one-host", "Check no host of the play failed before these checks",
         ("emq_cluster_discovery", "gossip", "n2 failed before emq_cluster's checks"),
         host_vars={"n2": {"emq_cluster_discovery": "gossip"}}, role="emq_cluster", failing_hosts=("n1",), argspec_fails_on=("n2",)),
]


def _inputs(tmp: Path, case: Case | None, extra: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    group_vars = {**base_vars(), **(extra or {})}
    host_vars = {name: {"emq_node_cluster_address": address} for name, address in HOSTS.items()}
    if case is not None:
        for key, value in case.group_vars.items():
            if value is REMOVE:
                group_vars.pop(key, None)
            else:
                group_vars[key] = value(tmp) if callable(value) else value
        for host, more in case.host_vars.items():
            host_vars[host].update(more)
    return group_vars, host_vars


def _assert_nothing_changed(run: Run, role: str) -> None:
    allowed = {f"iothub.emq.{role} : {name}"
               for name in _preflight_checks(role) | {_argspec_task(role)} | _always_tasks(role) | _preflight_include(role)}
    allowed.add("Supply the operating system facts the test chose")
    # An include_role of the validation block is logged without the role's name when it is skipped.
    allowed |= _preflight_checks(role) | _lb_common_tls_checks(role)
    ran = run.tasks
    assert ran, run.explain()
    assert not [t for t in ran if t not in allowed], "tasks outside the preflight ran:" + run.explain()
    later = _later_tasks(role)
    assert not [t for t in ran if t.split(" : ", 1)[-1] in later], run.explain()
    assert sorted(run.recap) == sorted(HOSTS), "every host must be in the PLAY RECAP" + run.explain()
    assert all(counts["changed"] == 0 for counts in run.recap.values()), run.explain()
    assert all(m in READ_ONLY for m in run.modules), "a module that could change a host ran:" + run.explain()


def _assert_no_secret(run: Run, case: Case | None) -> None:
    for secret in SECRETS + (case.secrets if case else ()):
        assert secret not in run.output, f"a secret ({secret[:3]}...) appears in the output" + run.explain()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_stops_before_any_host_changes(tmp_path: Path, case: Case) -> None:
    group_vars, host_vars = _inputs(tmp_path, case)
    run = run_role(tmp_path, case.role, group_vars, host_vars)

    assert run.rc == 2, "the run must fail on a host (rc 2), not on the harness" + run.explain()
    if " : " in case.check:  # a check of _lb_common that the validation block includes
        check = case.check
        assert check in _lb_common_tls_checks(case.role), f"{check!r} is not a check the validation block includes"
    else:
        check = f"iothub.emq.{case.role} : " + (_argspec_task(case.role) if case.check == "argspec" else case.check)
    if case.check != "argspec" and " : " not in case.check:
        assert case.check in _preflight_checks(case.role), f"{case.check!r} is not a task of the validation block"
    expected = {(host, check) for host in case.failing_hosts or tuple(HOSTS)}
    expected |= {(host, f"iothub.emq.{case.role} : {_argspec_task(case.role)}") for host in case.argspec_fails_on}
    assert run.failed == expected, "not the failure expected" + run.explain()
    _assert_nothing_changed(run, case.role)
    _assert_no_secret(run, case)

    message = " ".join(run.messages)
    assert run.messages, "no error message printed" + run.explain()
    for text in case.expect:
        assert text in message, f"the message does not contain {text!r}: {message}"
    for text in case.not_expect:
        assert text not in message, f"the message blames a variable that is fine ({text!r}): {message}"
    print(f"{case.id}: {run.messages[-1]}")


@pytest.mark.parametrize("role, source", [("emq_node", "repository"), ("emq_node", "package"), ("emq_cluster", "repository")])
def test_valid_inputs_pass_every_check(tmp_path: Path, role: str, source: str) -> None:
    """Control: the base inputs (and with a package file) pass the whole preflight on every host."""
    group_vars, host_vars = _inputs(tmp_path, None, package_inputs(tmp_path) if source == "package" else None)
    run = run_role(tmp_path, role, group_vars, host_vars, tags=f"{role}_preflight")

    assert run.rc == 0, run.explain()
    assert not run.failed, run.explain()
    assert all(counts["failed"] == 0 and counts["unreachable"] == 0 for counts in run.recap.values()), run.explain()
    _assert_nothing_changed(run, role)
    _assert_no_secret(run, None)
    ran = {t.split(" : ", 1)[-1] for t in run.tasks}
    assert _preflight_checks(role) <= ran, f"checks that did not run: {_preflight_checks(role) - ran}" + run.explain()
    if role == "emq_node":
        # The guard let the nr_open read through on each host (and ran nothing else)...
        assert run.modules == ["ran slurp"] * len(HOSTS), run.explain()
        # ...and every check ran on every host; only the package-file lookup depends on the source.
        # The TLS listeners' certificate checks (an include_role, logged without the role's name when skipped)
        # run only for TLS listeners without a certificate of their own: none in the base inputs.
        package_tasks = {"Look for the package file on the controller"}
        tls_tasks = {"Check the certificate, its key and its chain of the TLS listeners",
                     "Check the certificate and key of TLS between the nodes"}
        # The even-cores warning: only for a group with replicants, none in the base inputs.
        warn_tasks = {"Warn about an even number of cores"}
        for task in _preflight_checks(role):
            header = f"TASK [{task}]" if task in tls_tasks else f"TASK [iothub.emq.emq_node : {task}]"
            body = run.output.split(header, 1)[1].split("TASK [", 1)[0]
            skipped = "skipping:" in body
            expected = (task in package_tasks and source != "package") or task in tls_tasks or task in warn_tasks
            assert skipped == expected, f"{task}: skipped={skipped}" + run.explain()


def test_guard_refuses_a_module_that_could_change_the_host(tmp_path: Path) -> None:
    """The hosts' guard Python refuses any module but slurp, so a check that let a bad input through could not touch this machine."""
    target = tmp_path / "must-not-exist"
    playbook = tmp_path / "touch.yml"
    playbook.write_text(textwrap.dedent(f"""\
        - name: Try to change the hosts
          hosts: emq_nodes
          gather_facts: false
          tasks:
            - name: Write a file
              ansible.builtin.copy:
                content: "x"
                dest: {target}
                mode: "0600"
        """))
    group_vars, host_vars = _inputs(tmp_path, None)
    run = run_playbook(tmp_path, playbook, group_vars, host_vars)

    assert run.rc == 2, run.explain()
    assert run.failed == {(host, "Write a file") for host in HOSTS}, run.explain()
    assert "preflight test guard" in run.output, run.explain()
    # copy's action stats the destination first (read only, let through), then its module is refused.
    assert [line for line in run.modules if line.startswith("refused") and line.endswith("AnsiballZ_copy.py")], run.explain()
    assert all(line.startswith("refused") or line in READ_ONLY for line in run.modules), run.explain()
    assert not target.exists()


# ---- aws_nlb: the checks run before any AWS request --------------------------------------------
# The aws_nlb host runs on the controller through the same guard Python: any module (an AWS request
# starts with one: ec2_vpc_subnet_info, elb_*) would be refused and recorded, and the endpoint is a
# closed loopback port with fake credentials besides.
AWS_NLB_PLAYBOOK = ROOT / "playbooks" / "aws_nlb.yml"
AWS_NLB_CHECK = "iothub.emq.aws_nlb : Check the aws_nlb inputs of this load balancer"


def _aws_nlb_vars(tmp: Path) -> dict[str, Any]:
    cert, key = tmp / "server.pem", tmp / "server.key"
    cert.write_text("not read by the preflight\n")
    key.write_text("not read by the preflight\n")
    return {"aws_nlb_region": "eu-west-1", "aws_nlb_subnets": ["subnet-0a1b2c3d4e5f60718", "subnet-0f1e2d3c4b5a69788"],
            "aws_nlb_certificate_file": str(cert), "aws_nlb_private_key_file": str(key),
            "aws_nlb_endpoint_url": "http://127.0.0.1:9"}


AWS_NLB_CASES = [
    ("region-missing", {"aws_nlb_region": ""}, {}, ("aws_nlb_region is not set", "aws_nlb_region: eu-west-1")),
    ("no-subnets", {"aws_nlb_subnets": []}, {}, ("aws_nlb_subnets is empty", "one per availability zone")),
    ("no-certificate", {"aws_nlb_certificate_file": "", "aws_nlb_private_key_file": ""}, {},
     ("No certificate for the TLS listeners", "aws_nlb_certificate_arn", "aws_nlb_certificate_file and aws_nlb_private_key_file")),
    # Both ways: the NLB sends PROXY v2 and the nodes do not expect it, and the reverse (emq_node's default is on with aws_nlb hosts).
    ("proxy-on-nodes-off", {}, {"emq_node_proxy_protocol": False},
     ("aws_nlb_proxy_protocol is true", "n1 (tcp listener: proxy_protocol = false)", "emq_node_proxy_protocol: true",
      "aws_nlb_proxy_protocol: false")),
    ("proxy-off-nodes-on", {"aws_nlb_proxy_protocol": False}, {},
     ("aws_nlb_proxy_protocol is false", "n2 (ws listener: proxy_protocol = true)", "aws_nlb_proxy_protocol: true",
      "emq_node_proxy_protocol: false")),
]


def _run_aws_nlb(tmp: Path, monkeypatch: pytest.MonkeyPatch, nlb_vars: dict[str, Any], node_vars: dict[str, Any], tags: str = "") -> Run:
    group_vars, host_vars = _inputs(tmp, None, node_vars)
    for key, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                       ("AWS_CONFIG_FILE", str(tmp / "aws-config")), ("AWS_SHARED_CREDENTIALS_FILE", str(tmp / "aws-credentials"))):
        monkeypatch.setenv(key, value)
    return run_playbook(tmp, AWS_NLB_PLAYBOOK, group_vars, host_vars, tags=tags, groups={"aws_nlb": {"hosts": {"nlb-1": nlb_vars}}})


@pytest.mark.parametrize("case_id, nlb, nodes, expect", AWS_NLB_CASES, ids=[c[0] for c in AWS_NLB_CASES])
def test_aws_nlb_bad_input_stops_before_any_aws_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case_id: str,
                                                        nlb: dict[str, Any], nodes: dict[str, Any], expect: tuple[str, ...]) -> None:
    run = _run_aws_nlb(tmp_path, monkeypatch, {**_aws_nlb_vars(tmp_path), **nlb}, nodes)

    assert run.rc == 2, run.explain()
    assert run.failed == {("nlb-1", AWS_NLB_CHECK)}, run.explain()
    assert run.modules == [], "a module ran (an AWS request) before the checks stopped the run" + run.explain()
    assert run.recap["nlb-1"]["changed"] == 0, run.explain()
    assert [t for t in run.tasks if not t.startswith("iothub.emq.aws_nlb : ")] == [], run.explain()
    message = " ".join(run.messages)
    for text in expect:
        assert text in message, f"{case_id}: the message does not contain {text!r}: {message}"
    print(f"{case_id}: {run.messages[-1]}")


def test_aws_nlb_valid_inputs_pass_the_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Control: the base inputs pass the preflight, and no module (no AWS request) ran."""
    run = _run_aws_nlb(tmp_path, monkeypatch, _aws_nlb_vars(tmp_path), {}, tags="aws_nlb_preflight")

    assert run.rc == 0, run.explain()
    assert AWS_NLB_CHECK in run.tasks, run.explain()
    assert run.modules == [], run.explain()
