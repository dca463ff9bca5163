"""`emqx ctl data export` / `emqx ctl data import <File>` (emqx_mgmt_cli.erl data/1,
emqx_mgmt_data_backup.erl at v5.8.9): archive name and layout, the lines printed, exit codes, the
error messages, and an import that reaches the whole cluster."""

import io
import json
import os
import re
import shutil
import tarfile
import threading
import time

import paho.mqtt.client as mqtt

from standin import wait_for

AUTHN = """
authentication = [{mechanism = password_based, backend = built_in_database}]
"""
AUTHN_ID = "password_based:built_in_database"
TABLES = ["emqx_banned_rules", "emqx_banned", "emqx_app", "emqx_admin", "emqx_authn_mnesia",
          "emqx_authn_scram_mnesia", "emqx_acl", "emqx_psk", "emqx_retainer_message"]
NAME_RE = r"emqx-export-\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d\.\d{3}"


def all_running(nodes_):
    names = sorted(n.name for n in nodes_)
    return all(n.cluster_status() == {"running_nodes": names, "stopped_nodes": []} for n in nodes_)


def pair(nodes, **kw):
    a, b = nodes(2, **kw)
    a.start()
    b.start()
    rc, out, _ = b.ctl("cluster", "join", a.name)
    assert rc == 0 and out.startswith("Join the cluster successfully."), out
    wait_for(lambda: all_running([a, b]), what="pair formed")
    return a, b


def token(node, user="admin", password="public"):
    st, body = node.api_json("POST", "/api/v5/login", {"username": user, "password": password}, auth=None)
    assert st == 200, body
    return "Bearer " + body["token"]


def mqtt_connect(node, username=None, password=None, cid="c"):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv311)
    if username is not None:
        c.username_pw_set(username, password)
    result = {}
    ev = threading.Event()

    def on_connect(_c, _u, _f, rc, _p=None):
        result["rc"] = rc
        ev.set()
    c.on_connect = on_connect
    c.connect(node.host, 1883)
    c.loop_start()
    assert ev.wait(5)
    return c, (result["rc"].value if hasattr(result["rc"], "value") else result["rc"])


def can_connect(node, username, password):
    c, rc = mqtt_connect(node, username, password, cid="chk-%d" % time.monotonic_ns())
    c.loop_stop()
    c.disconnect()
    return rc == 0


def retained(node, tf="ret/#", expect=None):
    got = {}
    c, rc = mqtt_connect(node, "mqttuser", "mqttPass1", cid="rsub-%d" % time.monotonic_ns())
    assert rc == 0
    c.on_message = lambda _c, _u, m: got.__setitem__(m.topic, m.payload.decode()) if m.retain else None
    c.subscribe(tf, qos=1)
    end = time.monotonic() + 5
    while time.monotonic() < end and (expect is None or len(got) < expect):
        time.sleep(0.05)
    time.sleep(0.3)
    c.loop_stop()
    c.disconnect()
    return got


def export_lines(node, path, data_dir):
    return ["Exporting data to \"%s\"...\n" % path, "Exporting cluster configuration...\n",
            "Exporting additional files from EMQX data_dir: \"%s\"...\n" % data_dir,
            "Exporting built-in database...\n"] + \
        ["Exporting %s database table...\n" % t for t in TABLES] + \
        ["Data has been successfully exported to %s.\n" % path]


def test_export_then_import_into_a_fresh_cluster(nodes, tmp_path):
    a, b = pair(nodes, extra=AUTHN)
    # data: a dashboard user, an API key made through the REST API, a built-in database MQTT user,
    # retained messages
    assert a.ctl("admins", "add", "ops", "opsPass123", "operators") == (0, "ok\n", "")
    st, body = a.api_json("POST", "/api/v5/api_key", {"name": "ansible", "desc": "automation", "enable": True},
                          auth=token(a))
    assert st == 200, body
    key, secret = body["api_key"], body["api_secret"]
    st, body = a.api_json("POST", "/api/v5/authentication/%s/users" % AUTHN_ID,
                          {"user_id": "mqttuser", "password": "mqttPass1", "is_superuser": False})
    assert st == 201, body
    wait_for(lambda: can_connect(b, "mqttuser", "mqttPass1"), what="MQTT user replicated")
    c, rc = mqtt_connect(b, "mqttuser", "mqttPass1", cid="pub")
    assert rc == 0
    for i in range(20):
        c.publish("ret/%d" % i, "v%d" % i, qos=1, retain=True).wait_for_publish(5)
    c.loop_stop()
    c.disconnect()

    rc, out, err = a.ctl("data", "export")
    assert rc == 0, err
    m = re.match(r'Exporting data to "(%s/backup/(%s)\.tar\.gz)"\.\.\.\n' % (re.escape(a.data), NAME_RE), out)
    assert m, out
    path, base = m.group(1), m.group(2)
    assert out == "".join(export_lines(a, path, a.data))
    assert os.path.isfile(path)
    with tarfile.open(path, "r:gz") as tar:
        names = tar.getnames()
        assert names == ["%s/META.hocon" % base, "%s/cluster.hocon" % base] + \
            ["%s/mnesia/%s" % (base, t) for t in TABLES]
        assert tar.extractfile("%s/META.hocon" % base).read() == b'edition = ce\nversion = "5.8.9"\n'
    # the temporary directory is gone, the archive stays
    assert sorted(os.listdir(os.path.join(a.data, "backup"))) == [base + ".tar.gz"]

    # a fresh cluster (empty data dirs) imports it on one node: every node gets the data
    c1, c2 = pair(nodes, extra=AUTHN)
    dest = str(tmp_path / os.path.basename(path))
    shutil.copyfile(path, dest)
    rc, out, err = c1.ctl("data", "import", dest)
    assert rc == 0, err
    assert out == "".join([
        "Importing data from \"%s\"...\n" % dest,
        "Importing cluster configuration...\n",
        "Importing built-in database...\n",
        "Importing emqx_retainer_message database table...\n",
        "Starting reindexing retained messages \n",
        "Reindexed 20 messages\n",
        "Reindexing retained messages finished\n"] +
        ["Importing %s database table...\n" % t for t in reversed(TABLES[:-1])] +
        ["Data has been imported successfully.\n"]), out
    assert not os.path.exists(os.path.join(c1.data, "backup", base))
    for n in (c1, c2):
        wait_for(lambda n=n: n.api_json("POST", "/api/v5/login", {"username": "ops", "password": "opsPass123"},
                                        auth=None)[0] == 200, what="dashboard user on %s" % n.name)
        wait_for(lambda n=n: n.api_json("GET", "/api/v5/nodes", auth=(key, secret))[0] == 200,
                 what="API key on %s" % n.name)
        wait_for(lambda n=n: can_connect(n, "mqttuser", "mqttPass1"), what="MQTT user on %s" % n.name)
        assert retained(n, expect=20) == {"ret/%d" % i: "v%d" % i for i in range(20)}, n.name
    # records are merged into the tables (mnesia:restore keep_tables): the fresh admin stays
    assert c2.api_json("POST", "/api/v5/login", {"username": "admin", "password": "public"}, auth=None)[0] == 200

    # a bare file name is looked up in node.data_dir/backup
    os.makedirs(os.path.join(c2.data, "backup"), exist_ok=True)
    shutil.copyfile(path, os.path.join(c2.data, "backup", base + ".tar.gz"))
    rc, out, _ = c2.ctl("data", "import", base + ".tar.gz")
    assert rc == 0 and out.startswith('Importing data from "%s/backup/%s.tar.gz"...\n' % (c2.data, base)), out
    assert out.endswith("Data has been imported successfully.\n")


def test_export_options(nodes, tmp_path):
    n = nodes.one()
    n.start()
    assert n.ctl("data", "export", "--root-keys", "mqtt,nosuch,alsobad") == (
        0, "Invalid root keys: alsobad, nosuch\n", "")
    assert n.ctl("data", "export", "--table-sets", "api_keys,bad_set") == (0, "Invalid table sets: bad_set\n", "")
    rc, out, _ = n.ctl("data", "export", "--bogus")
    assert rc == 0 and out.startswith("[error] Data export failed, reason: ")
    # --dir that does not exist: the command crashes after its first line, exit 1
    rc, out, _ = n.ctl("data", "export", "--dir", str(tmp_path / "missing" / "dir"))
    assert rc == 1 and re.fullmatch(r'Exporting data to "%s/missing/dir/%s\.tar\.gz"\.\.\.\n'
                                    % (re.escape(str(tmp_path)), NAME_RE), out), out
    # cluster.hocon (base.hocon + data/configs/cluster.hocon) filtered by --root-keys; one table set
    with open(os.path.join(n.data, "configs", "cluster.hocon"), "w") as fh:
        fh.write('mqtt { max_packet_size = "2MB" }\nsysmon.os.cpu_check_interval = 60s\n')
    rc, out, _ = n.ctl("data", "export", "--root-keys", "mqtt", "--table-sets", "api_keys", "--dir", str(tmp_path))
    assert rc == 0
    path = out.splitlines()[-1][len("Data has been successfully exported to "):-1]
    assert os.path.dirname(path) == str(tmp_path)
    assert "Exporting emqx_app database table...\n" in out and "emqx_admin" not in out
    with tarfile.open(path, "r:gz") as tar:
        names = [x.split("/", 1)[1] for x in tar.getnames()]
        assert names == ["META.hocon", "cluster.hocon", "mnesia/emqx_app"]
        base = tar.getnames()[0].split("/")[0]
        assert tar.extractfile(base + "/cluster.hocon").read() == b'mqtt {\n  max_packet_size = "2MB"\n}\n'
    # usage: emqx_ctl:format_usage/1 pads to the longest command text + 1; the export entry's text,
    # newlines included, is 98 characters long
    rc, out, _ = n.ctl("data")
    assert rc == 0 and out == "".join(c.ljust(99) + "# " + d + "\n" for c, d in (
        ("data import <File>", "Import data from the specified tar archive file"),
        ("data export \\", "Export data"),
        ("  [--root-keys key1,key2,key3] \\", ""),
        ("  [--table-sets set1,set2,set3] \\", ""),
        ("  [--dir out_dir]", ""))), out
    assert n.ctl("data", "import")[1] == out


def _archive(path, base, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(base + "/" + name if base else name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_import_errors(nodes, tmp_path):
    n = nodes.one()
    n.start()
    fail = "[error] Data import failed, reason: %s.\n"
    assert n.ctl("data", "import", str(tmp_path / "nope.tar.gz")) == (0, fail % '"backup file not found"', "")
    assert n.ctl("data", "import", "nope.tar.gz") == (0, fail % '"backup file not found"', "")
    txt = tmp_path / "backup.txt"
    txt.write_text("x")
    assert n.ctl("data", "import", str(txt)) == (
        0, 'Importing data from "%s"...\n' % txt +
        fail % '"invalid backup name: file name must have .tar.gz extension"', "")

    good = "emqx-export-2025-01-01-00-00-00.000"
    meta = b'edition = ce\nversion = "5.8.9"\n'

    def run(name, base, members):
        p = str(tmp_path / name)
        _archive(p, base, members)
        rc, out, err = n.ctl("data", "import", p)
        assert rc == 0, err
        head = 'Importing data from "%s"...\n' % p
        assert out.startswith(head), out
        return out[len(head):]

    # renamed archive: its members are not under <file name>/
    assert run("renamed.tar.gz", good, {"META.hocon": meta}) == fail % (
        '"invalid backup archive content: all files in the archive must be under <backup name> directory"')
    assert run(good + ".tar.gz", good, {"cluster.hocon": b""}) == fail % (
        '"invalid backup archive file: missing META.hocon"')
    assert run(good + ".tar.gz", good, {"META.hocon": b'edition = ee\nversion = "5.8.9"\n'}) == fail % (
        '"importing EMQX Enterprise data backup to EMQX is not allowed"')
    assert run(good + ".tar.gz", good, {"META.hocon": b'edition = xx\nversion = "5.8.9"\n'}) == fail % (
        '"invalid backup archive content: wrong EMQX edition value in META.hocon"')
    assert run(good + ".tar.gz", good, {"META.hocon": b'edition = ce\nversion = "5"\n'}) == fail % (
        '"invalid backup archive content: wrong EMQX version value in META.hocon"')
    assert run(good + ".tar.gz", good, {"META.hocon": b'edition = ce\nversion = "5.9.0"\n'}) == fail % (
        '"[warning] Backup version \\"5.9.0\\" is newer than EMQX version \\"5.8.9\\", import is not allowed.\\n"')
    # an older patch or minor release is accepted; no cluster.hocon, no table files
    out = run(good + ".tar.gz", good, {"META.hocon": b'edition = ce\nversion = "5.7.2"\n'})
    assert out == ("No cluster configuration to be imported.\nImporting built-in database...\n" +
                   "".join("No backup file for %s database table...\n" % t for t in reversed(TABLES)) +
                   "Data has been imported successfully.\n")
    # a table dump of another shape: reported, the import goes on
    bad = json.dumps({"format": "emqx-standin-table-dump", "table": "emqx_admin", "attributes": ["x"],
                      "records": []}).encode()
    out = run(good + ".tar.gz", good, {"META.hocon": meta, "mnesia/emqx_admin": bad})
    assert "Importing emqx_admin database table...\n[error] Failed to import built-in database table: " \
           "emqx_admin, reason: {error,different_table_schema}\n" in out
    assert out.endswith("Data has been imported, but some errors occurred, see the log above.\n")
    # not an archive at all
    junk = tmp_path / (good + ".tar.gz")
    junk.write_bytes(b"not a tar file\n" * 100)
    rc, out, _ = n.ctl("data", "import", str(junk))
    assert rc == 0 and out.startswith('Importing data from "%s"...\n[error] Data import failed, reason: "' % junk)


def test_import_merges_config_into_cluster_hocon_on_every_node(nodes, tmp_path):
    a, b = pair(nodes)
    good = "emqx-export-2025-01-01-00-00-00.000"
    p = str(tmp_path / (good + ".tar.gz"))
    _archive(p, good, {"META.hocon": b'edition = ce\nversion = "5.8.9"\n',
                       "cluster.hocon": b'mqtt {max_packet_size = "3MB"}\nretainer {msg_expiry_interval = "1h"}\n'})
    rc, out, _ = a.ctl("data", "import", p)
    assert rc == 0 and out.endswith("Data has been imported successfully.\n"), out
    for n in (a, b):
        text = open(os.path.join(n.data, "configs", "cluster.hocon")).read()
        assert text.startswith("# This file is generated. Do not edit.\n")
        assert 'max_packet_size = "3MB"' in text and 'msg_expiry_interval = "1h"' in text, text
    # the file EMQX writes is read back at the next boot (cluster.hocon < emqx.conf)
    b.stop()
    b.start()
    # a config the schema refuses stops the import before anything is written
    _archive(p, good, {"META.hocon": b'edition = ce\nversion = "5.8.9"\n',
                       "cluster.hocon": b'mqtt {max_packet_size = "lots"}\n'})
    rc, out, _ = a.ctl("data", "import", p)
    assert rc == 0 and '[error] Data import failed, reason: ' in out and "mqtt.max_packet_size" in out, out


RULE_SQL = 'SELECT payload.t AS t, clientid FROM "sensors/+/temp", "sensors/+/hum" WHERE payload.t > 30'


def test_rules_live_in_the_cluster_config_and_travel_in_an_export(nodes, tmp_path):
    """emqx_rule_engine_api.erl '/rules' on one node is a cluster config change (cluster.hocon of every node);
    an export carries it in cluster.hocon and emqx_rule_engine:import_config/1 merges it back."""
    a, b = pair(nodes)
    auth = token(a)
    st, body = a.api_json("POST", "/api/v5/rules", {"id": "hot_sensors", "sql": RULE_SQL, "description": "hot",
                                                    "actions": [{"function": "console"}]}, auth=auth)
    assert st == 201 and body["id"] == "hot_sensors" and body["from"] == ["sensors/+/temp", "sensors/+/hum"], body
    assert body["enable"] is True and body["name"] == "" and re.match(r"\d{4}-\d\d-\d\dT[\d:]+\.\d{3}[+-]\d\d:\d\d$",
                                                                      body["created_at"]), body
    st, again = a.api_json("POST", "/api/v5/rules", {"id": "hot_sensors", "sql": RULE_SQL}, auth=auth)
    assert st == 400 and again == {"code": "BAD_REQUEST", "message": "rule id already exists"}
    st, bad = a.api_json("POST", "/api/v5/rules", {"id": "bad", "sql": "SELEKT * FROM x"}, auth=auth)
    assert st == 400 and bad["code"] == "BAD_REQUEST", bad
    st, empty = a.api_json("POST", "/api/v5/rules", {"id": "", "sql": RULE_SQL}, auth=auth)
    assert st == 400 and empty["message"] == "empty rule id is not allowed"
    st, gen = a.api_json("POST", "/api/v5/rules", {"sql": 'SELECT * FROM "t/#"'}, auth=auth)
    assert st == 201 and re.match(r"^[0-9a-f]{8}$", gen["id"]), gen
    # every node has it, and keeps it over a restart (data/configs/cluster.hocon)
    b.stop()
    b.start()
    st, listed = b.api_json("GET", "/api/v5/rules", auth=token(b))
    assert st == 200 and sorted(r["id"] for r in listed["data"]) == sorted(["hot_sensors", gen["id"]]), listed
    st, _ = a.api_json("DELETE", "/api/v5/rules/" + gen["id"], auth=auth)
    assert st == 204
    st, gone = a.api_json("GET", "/api/v5/rules/" + gen["id"], auth=auth)
    assert st == 404 and gone == {"code": "NOT_FOUND", "message": "Rule Id Not Found"}
    # export, then import into a fresh node that has a rule of its own: both are there after
    rc, out, _ = a.ctl("data", "export", "--dir", str(tmp_path))
    assert rc == 0, out
    archive = [f for f in os.listdir(tmp_path) if f.endswith(".tar.gz")][0]
    with tarfile.open(os.path.join(tmp_path, archive)) as tar:
        conf = [m for m in tar.getmembers() if m.name.endswith("/cluster.hocon")][0]
        assert "hot_sensors" in tar.extractfile(conf).read().decode()
    (c,) = nodes(1)
    c.start()
    st, _ = c.api_json("POST", "/api/v5/rules", {"id": "local_rule", "sql": 'SELECT * FROM "local/#"'}, auth=token(c))
    assert st == 201
    rc, out, _ = c.ctl("data", "import", os.path.join(tmp_path, archive))
    assert rc == 0 and out.endswith("Data has been imported successfully.\n"), out
    st, listed = c.api_json("GET", "/api/v5/rules", auth=token(c))
    assert sorted(r["id"] for r in listed["data"]) == ["hot_sensors", "local_rule"], listed
    st, rule = c.api_json("GET", "/api/v5/rules/hot_sensors", auth=token(c))
    assert st == 200 and rule["sql"] == RULE_SQL and rule["description"] == "hot"
    assert rule["actions"] == [{"function": "console"}], rule
