"""The built .deb installs in a Debian 12 systemd container, is enabled like the real package,
starts with systemctl and answers `emqx ctl status`; an upgrade 5.8.8 -> 5.8.9 works.

Skips only when Docker is unavailable and IOTHUB_REQUIRE_DOCKER is unset.
"""

import os
import shutil
import subprocess
import time
import uuid

import pytest

import standin

IMAGE = os.environ.get("IOTHUB_IMAGE_DEBIAN12", "iothub-emq/debian-systemd:12")
BUILD = os.path.join(standin.STANDIN_DIR, "build_deb.sh")


def docker_ok():
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="module")
def docker():
    if not docker_ok():
        if os.environ.get("IOTHUB_REQUIRE_DOCKER"):
            pytest.fail("Docker is required (IOTHUB_REQUIRE_DOCKER is set) but `docker info` fails")
        pytest.skip("Docker is not available")
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True).returncode != 0:
        pytest.fail("image %s is missing: build it with `make host` (scripts/container-host.sh images)" % IMAGE)


def sh(args, timeout=120, check=True):
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(args), p.returncode, p.stdout, p.stderr))
    return p


class Container:
    def __init__(self, name):
        self.name = name

    def exec(self, cmd, timeout=120, check=True):
        return sh(["docker", "exec", self.name, "bash", "-c", cmd], timeout=timeout, check=check)

    def wait(self, cmd, expect_rc=0, timeout=60, what=""):
        deadline = time.monotonic() + timeout
        p = None
        while time.monotonic() < deadline:
            p = self.exec(cmd, check=False)
            if p.returncode == expect_rc:
                return p
            time.sleep(0.5)
        raise AssertionError("timeout: %s: %s\n%s%s" % (what, cmd, p.stdout if p else "", p.stderr if p else ""))


@pytest.fixture
def container(docker):
    name = "emqx-standin-test-%s" % uuid.uuid4().hex[:8]
    sh(["docker", "run", "-d", "--name", name, "--cgroupns=host", "--cap-add", "SYS_ADMIN", "--cap-add",
        "NET_ADMIN", "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
        "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp",
        IMAGE, "/lib/systemd/systemd"])
    c = Container(name)
    try:
        c.wait("s=$(systemctl is-system-running); [ \"$s\" = running ] || [ \"$s\" = degraded ]",
               what="systemd up")
        yield c
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)


def build(tmp_path, version):
    out = sh([BUILD, "--version", version, "--output", str(tmp_path)]).stdout.strip().splitlines()[-1]
    assert os.path.basename(out) == "emqx_%s_all.deb" % version
    return out


def test_package_installs_and_runs_under_systemd(container, tmp_path):
    c = container
    deb = build(tmp_path, "5.8.9")
    sh(["docker", "cp", deb, "%s:/root/" % c.name])
    c.exec("cd /root && DEBIAN_FRONTEND=noninteractive apt-get install -y ./emqx_5.8.9_all.deb", timeout=300)

    # files, user and unit as the real package has them
    c.exec("test -f /etc/emqx/emqx.conf && test -f /etc/emqx/vm.args && test -d /var/lib/emqx "
           "&& test -d /var/log/emqx && test -x /usr/bin/emqx && test -x /usr/bin/emqx_ctl "
           "&& test -d /usr/lib/emqx && test -f /lib/systemd/system/emqx.service")
    assert "/etc/emqx/emqx.conf" in c.exec("cat /var/lib/dpkg/info/emqx.conffiles").stdout
    assert c.exec("getent passwd emqx | cut -d: -f6,7").stdout.strip() == "/var/lib/emqx:/bin/bash"
    assert c.exec("stat -c %U:%G /var/lib/emqx /var/log/emqx").stdout.split() == ["emqx:emqx", "emqx:emqx"]
    props = c.exec("systemctl show emqx -p User -p Group -p Type -p LimitNOFILE -p Restart -p RestartUSec "
                   "-p TimeoutStopUSec -p ExecStart").stdout
    for want in ("User=emqx", "Group=emqx", "Type=simple", "LimitNOFILE=1048576", "Restart=on-failure",
                 "RestartUSec=2min", "TimeoutStopUSec=2min", "path=/bin/bash ; argv[]=/bin/bash /usr/bin/emqx "
                 "foreground"):
        assert want in props, props
    # enabled on install, like EMQX's postinst (which does not start it)
    assert c.exec("systemctl is-enabled emqx").stdout.strip() == "enabled"

    c.exec("systemctl start emqx")
    c.wait("emqx ping", what="node answers ping")
    assert c.exec("systemctl is-active emqx").stdout.strip() == "active"
    p = c.exec("emqx ctl status")
    assert p.stdout == "Node 'emqx@127.0.0.1' 5.8.9 is started\n"
    assert c.exec("emqx_ctl status").stdout == p.stdout
    assert c.exec("emqx ctl cluster status").stdout == \
        "Cluster status: #{running_nodes => ['emqx@127.0.0.1'],stopped_nodes => []}\n"
    assert c.exec("ps -o user= -p $(systemctl show -p MainPID --value emqx)").stdout.strip() == "emqx"
    status = c.exec("python3 -c \"import urllib.request as u; r=u.urlopen('http://127.0.0.1:18083/status'); "
                    "print(r.status); print(r.read().decode())\"").stdout
    assert status == "200\nNode emqx@127.0.0.1 is started\nemqx is running\n"
    assert "Default (insecure) Erlang cookie is in use." in c.exec("journalctl -u emqx --no-pager").stdout

    c.exec("systemctl stop emqx")
    assert c.exec("systemctl is-active emqx", check=False).stdout.strip() == "inactive"
    p = c.exec("emqx ctl status", check=False)
    assert (p.returncode, p.stderr) == (1, "Node 'emqx@127.0.0.1' not responding to pings.\n")


def test_upgrade_keeps_config_and_data(container, tmp_path):
    c = container
    old, new = build(tmp_path, "5.8.8"), build(tmp_path, "5.8.9")
    for deb in (old, new):
        sh(["docker", "cp", deb, "%s:/root/" % c.name])
    c.exec("cd /root && DEBIAN_FRONTEND=noninteractive apt-get install -y ./emqx_5.8.8_all.deb", timeout=300)
    c.exec("sed -i 's/emqxsecretcookie/upgradecookie1/' /etc/emqx/emqx.conf && systemctl start emqx")
    c.wait("emqx ping", what="5.8.8 up")
    assert c.exec("emqx ctl status").stdout == "Node 'emqx@127.0.0.1' 5.8.8 is started\n"
    assert c.exec("emqx ctl admins passwd admin upgrade-Pass1").stdout == "ok\n"
    c.exec("cd /root && DEBIAN_FRONTEND=noninteractive apt-get install -y ./emqx_5.8.9_all.deb", timeout=300)
    c.exec("systemctl restart emqx")
    c.wait("emqx ctl status | grep -q 5.8.9", what="5.8.9 up")
    assert "upgradecookie1" in c.exec("cat /etc/emqx/emqx.conf").stdout
    out = c.exec("python3 -c \"import json, urllib.request as u; r=u.urlopen(u.Request("
                 "'http://127.0.0.1:18083/api/v5/login', data=json.dumps({'username':'admin',"
                 "'password':'upgrade-Pass1'}).encode(), headers={'content-type':'application/json'})); "
                 "print(r.status)\"").stdout
    assert out.strip() == "200"


LOGIN_PY = """import json, sys, urllib.error, urllib.request as u
req = u.Request('http://127.0.0.1:18083/api/v5/login', headers={'content-type': 'application/json'},
                data=json.dumps({'username': sys.argv[1], 'password': sys.argv[2]}).encode())
try:
    print(u.urlopen(req).status)
except urllib.error.HTTPError as e:
    print(e.code)
"""


def _login_status(c, password):
    import shlex
    return c.exec("python3 /root/login.py admin %s" % shlex.quote(password)).stdout.strip()


def test_root_cli_arguments_pass_through_a_login_shell(container, tmp_path):
    """bin/emqx check_user (v5.8.9): as root each argument is put in double quotes, unescaped, for
    `su - emqx -c`; that shell expands $HOME in the password. As the emqx user it is unchanged."""
    import shlex
    c = container
    deb = build(tmp_path, "5.8.9")
    sh(["docker", "cp", deb, "%s:/root/" % c.name])
    c.exec("cd /root && DEBIAN_FRONTEND=noninteractive apt-get install -y ./emqx_5.8.9_all.deb", timeout=300)
    c.exec("cat > /root/login.py <<'EOF'\n%sEOF" % LOGIN_PY)
    c.exec("systemctl start emqx")
    c.wait("emqx ping", what="node answers ping")
    literal = "Abc$HOME12x"
    # the login shell expands $HOME12x (unset): the password arrives as "Abc", too short
    assert c.exec("emqx ctl admins passwd admin %s" % shlex.quote(literal)).stdout == \
        "Error: The range of password length is 8~64\n"
    assert _login_status(c, literal) == "401"
    assert c.exec("emqx ctl admins passwd admin %s" % shlex.quote("Abc${HOME}12x")).stdout == "ok\n"
    assert _login_status(c, "Abc${HOME}12x") == "401"
    assert _login_status(c, "Abc/var/lib/emqx12x") == "200"
    # as the emqx user no su happens: the argument arrives as typed
    for cmd in ("runuser -u emqx -- /usr/bin/emqx ctl admins passwd admin %s" % shlex.quote(literal),
                "su emqx -s /bin/sh -c %s" % shlex.quote("/usr/bin/emqx ctl admins passwd admin "
                                                         + shlex.quote(literal + "2"))):
        assert c.exec(cmd).stdout == "ok\n"
    assert _login_status(c, literal + "2") == "200"


def test_upgrade_postinst_fixes_etc_modes_and_does_not_restart(container, tmp_path):
    """deploy/packages/deb/debian/postinst (v5.8.9) on upgrade: chown -R emqx:emqx /etc/emqx,
    chmod 0644 /etc/emqx/*, chmod -R +X /etc/emqx, links re-made, enable only (no restart); no prerm;
    postrm remove drops the /usr/bin links."""
    c = container
    old, new = build(tmp_path, "5.8.8"), build(tmp_path, "5.8.9")
    for deb in (old, new):
        sh(["docker", "cp", deb, "%s:/root/" % c.name])
    c.exec("cd /root && DEBIAN_FRONTEND=noninteractive apt-get install -y ./emqx_5.8.8_all.deb", timeout=300)
    assert c.exec("ls /var/lib/dpkg/info/emqx.*").stdout.split() == [
        "/var/lib/dpkg/info/emqx.conffiles", "/var/lib/dpkg/info/emqx.list", "/var/lib/dpkg/info/emqx.md5sums",
        "/var/lib/dpkg/info/emqx.postinst", "/var/lib/dpkg/info/emqx.postrm"]
    assert c.exec("readlink /usr/bin/emqx /usr/bin/emqx_ctl").stdout.split() == [
        "/usr/lib/emqx/bin/emqx", "/usr/lib/emqx/bin/emqx_ctl"]
    c.exec("systemctl start emqx")
    c.wait("emqx ping", what="5.8.8 up")
    pid = c.exec("systemctl show -p MainPID --value emqx").stdout.strip()
    # what a role might leave behind: private files in /etc/emqx, and a key file elsewhere
    c.exec("install -m 0640 -o root -g emqx /dev/null /etc/emqx/api_keys "
           "&& install -d -m 0750 -o root -g emqx /etc/emqx/private "
           "&& install -m 0600 -o root -g root /dev/null /etc/emqx/private/key.pem "
           "&& install -d -m 0750 /etc/emqx-extra && install -m 0640 -o root -g emqx /dev/null /etc/emqx-extra/keys")
    c.exec("cd /root && DEBIAN_FRONTEND=noninteractive apt-get install -y ./emqx_5.8.9_all.deb", timeout=300)
    assert c.exec("systemctl show -p MainPID --value emqx").stdout.strip() == pid
    assert c.exec("emqx ctl status").stdout == "Node 'emqx@127.0.0.1' 5.8.8 is started\n"
    modes = c.exec("stat -c '%n %a %U:%G' /etc/emqx /etc/emqx/api_keys /etc/emqx/private "
                   "/etc/emqx/private/key.pem /etc/emqx/emqx.conf /etc/emqx-extra/keys").stdout.splitlines()
    assert modes == ["/etc/emqx 755 emqx:emqx", "/etc/emqx/api_keys 644 emqx:emqx",
                     "/etc/emqx/private 755 emqx:emqx", "/etc/emqx/private/key.pem 600 emqx:emqx",
                     "/etc/emqx/emqx.conf 644 emqx:emqx", "/etc/emqx-extra/keys 640 root:emqx"]
    assert c.exec("systemctl is-enabled emqx").stdout.strip() == "enabled"
    c.exec("systemctl stop emqx")
    c.exec("DEBIAN_FRONTEND=noninteractive apt-get remove -y emqx", timeout=300)
    assert c.exec("ls /usr/bin/emqx /usr/bin/emqx_ctl", check=False).returncode != 0
