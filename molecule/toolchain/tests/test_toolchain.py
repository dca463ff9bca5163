"""Testinfra checks that the container platform behaves like a real systemd host."""


def test_systemd_is_pid_1_and_running(host):
    assert host.file("/proc/1/comm").content_string.strip() == "systemd"
    state = host.run("systemctl is-system-running")
    assert state.stdout.strip() in ("running", "degraded"), state.stdout


def test_service_enabled_and_running(host):
    svc = host.service("toolchain-echo")
    assert svc.is_enabled
    assert svc.is_running


def test_service_listens(host):
    assert host.socket("tcp://0.0.0.0:7777").is_listening


def test_debian_release(host):
    assert host.system_info.distribution == "debian"
    assert host.system_info.release.split(".")[0] in ("12", "13")


def test_service_answers_http(host):
    out = host.check_output("curl -fsS http://127.0.0.1:7777/os-release")
    assert "ID=debian" in out
