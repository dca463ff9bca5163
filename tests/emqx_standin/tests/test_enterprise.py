"""--edition enterprise (5.9+): clustering needs a license key ("single node license"), and 5.10's
`cluster join` exits 1 on failure."""

import os
import shutil

import pytest

import standin


@pytest.fixture
def ee_code(tmp_path):
    dest = tmp_path / "code" / "emqx_standin"
    shutil.copytree(os.path.join(standin.STANDIN_DIR, "emqx_standin"), str(dest),
                    ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "VERSION").write_text("5.10.4\n")
    (dest / "EDITION").write_text("enterprise\n")
    return str(tmp_path / "code")


def test_enterprise_join_needs_a_license(nodes, ee_code):
    a, b = nodes(2, code_dir=ee_code)
    a.start()
    b.start()
    assert a.ctl("status")[1] == "Node '%s' 5.10.4 is started\n" % a.name
    rc, out, _ = b.ctl("cluster", "join", a.name)
    assert rc == 1
    assert out.startswith("Failed to join the cluster: ") and "single node license" in out
    assert b.cluster_status()["running_nodes"] == [b.name]
    st, body = a.api_json("GET", "/api/v5/nodes")
    assert st == 200 and body[0]["edition"] == "Enterprise"
    assert a.api_json("GET", "/status?format=json", auth=None)[1]["rel_vsn"] == "e5.10.4"
    # a license key (set with the CLI here; license.key in emqx.conf works too) lifts the limit
    assert a.ctl("license", "update", "stand-in-license-key") == (0, "ok\n", "")
    rc, out, _ = b.ctl("cluster", "join", a.name)
    assert rc == 0 and out.startswith("Join the cluster successfully."), out
