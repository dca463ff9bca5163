"""The file log handler as EMQX 5.8.9 runs it (apps/emqx/src/config/emqx_config_logger.erl tr_file_handler/1):
OTP's logger_disk_log_h, a `wrap` disk_log (<path>.1 .. <path>.<rotation_count>, each up to rotation_size)
or, with rotation_size = infinity, a `halt` log (one file <path>); the `json` formatter
(apps/emqx/src/emqx_logger_jsonfmt.erl) writes one object per line with an epoch-microsecond `time`."""

import json
import os
import socket

import pytest
import standin


def _connect_and_leave(host, n):
    """n MQTT 3.1.1 clients connect and disconnect (each is logged at debug: client_disconnected)."""
    for i in range(n):
        cid = ("log-%04d" % i).encode()
        body = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(cid).to_bytes(2, "big") + cid
        with socket.create_connection((host, 1883), timeout=5) as s:
            s.sendall(bytes([0x10, len(body)]) + body)
            assert s.recv(4)[:2] == b"\x20\x02"
            s.sendall(b"\xe0\x00")


@pytest.fixture
def root():
    return standin.new_root()


def _files(node):
    return sorted(os.listdir(node.logdir))


def test_wrap_log_rotates_over_count_files_of_at_most_size_in_json(root):
    node = standin.StandinNode(root, standin.next_host(), extra="""
log.file { level = debug, formatter = json, rotation_size = 2KB, rotation_count = 3 }
""")
    node.start()
    try:
        _connect_and_leave(node.host, 80)
        standin.wait_for(lambda: "emqx.log.3" in _files(node) and "log-0079" in node.logtext(), what="three files")
    finally:
        node.stop()
    files = _files(node)
    logs = [f for f in files if f.startswith("emqx.log")]
    assert set(logs) == {"emqx.log.1", "emqx.log.2", "emqx.log.3", "emqx.log.idx", "emqx.log.siz"}, files
    for name in ("emqx.log.1", "emqx.log.2", "emqx.log.3"):
        assert os.path.getsize(os.path.join(node.logdir, name)) <= 2048, name
        with open(os.path.join(node.logdir, name)) as fh:
            for line in fh:
                entry = json.loads(line)
                assert isinstance(entry["time"], int) and entry["level"] in ("debug", "info", "warning") and entry["msg"]
    # 80 clients' lines are far more than 3 x 2 KB: the oldest were overwritten, the newest are kept.
    text = node.logtext()
    assert "log-0079" in text and "log-0000" not in text


def test_infinity_is_one_file_that_is_never_rotated_in_text(root):
    node = standin.StandinNode(root, standin.next_host(), extra="""
log.file { level = debug, rotation_size = infinity }
""")
    node.start()
    try:
        _connect_and_leave(node.host, 20)
        standin.wait_for(lambda: "log-0019" in node.logtext(), what="the last client's line")
    finally:
        node.stop()
    assert [f for f in _files(node) if f.startswith("emqx.log")] == ["emqx.log"]
    text = node.logtext()
    assert "log-0000" in text and "[debug]" in text


def test_level_filters_what_is_written(root):
    node = standin.StandinNode(root, standin.next_host(), extra="log.file.level = warning\n")
    node.start()
    try:
        _connect_and_leave(node.host, 3)
    finally:
        node.stop()
    assert "[info]" not in node.logtext() and "[debug]" not in node.logtext()


def test_under_the_unit_the_console_is_off_unless_enabled(root):
    """bin/emqx maybe_log_to_console/0 and emqx_conf_schema.erl log_handler_common_confs/2: the unit's
    EMQX_DEFAULT_LOG_HANDLER=file leaves the console handler off and the file handler on by default;
    foreground without it makes the console the default and the file handler off."""
    unit = standin.StandinNode(root, standin.next_host(), extra="")
    unit.start(env={"EMQX_DEFAULT_LOG_HANDLER": "file"})
    unit.stop()
    assert "[info]" not in unit.console() and "[info]" in unit.logtext()
    bare = standin.StandinNode(root, standin.next_host(), extra="log.file.enable = false\n")
    bare.start()
    bare.stop()
    assert "[info]" in bare.console() or "[warning]" in bare.console() or "[notice]" in bare.console()
    console = standin.StandinNode(root, standin.next_host(), extra="log.console { enable = true, level = info }\n")
    console.start(env={"EMQX_DEFAULT_LOG_HANDLER": "file"})
    console.stop()
    assert "[info]" in console.console()
