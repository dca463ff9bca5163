"""Config rules of EMQX 5.8.9 / hocon 0.44.0 that the stand-in must follow exactly:
- DNS discovery needs name@IP of the record type's family (emqx_conf_schema:validate_cluster_strategy);
- unknown ROOT keys are dropped with a warning, unknown keys below a root refuse the boot
  (hocon_tconf filter_by_roots, emqx_config:warning_deprecated_root_key); the 5.8.9 root list;
- listener binds as emqx_schema:to_ip_port/1 parses them;
- `include` / `include required(...)` as hocon_token:load_include/2 resolves them."""

import glob
import json
import os
import subprocess

import pytest

from emqx_standin import hocon, schema
from emqx_standin.schema import ConfigError

import standin


def check(text):
    return schema.check(hocon.merge(schema.builtin_defaults(), hocon.parse(text)))


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fh.write(text)


def boot_fails(tmp_path, conf):
    node_dir = str(tmp_path)
    write(os.path.join(node_dir, "etc", "emqx.conf"), 'node.data_dir = "%s/data"\n%s' % (node_dir, conf))
    p = subprocess.run([standin.PYTHON, "-m", "emqx_standin", "foreground"], env=standin.env_for(node_dir),
                       capture_output=True, text=True, timeout=30, cwd=node_dir)
    assert p.returncode != 0, p.stdout + p.stderr
    return p.stderr


# ------------------------------------------------------------------------------------- DNS rule
DNS_A_HOST = ("Node name must be of name@IP format for DNS cluster discovery strategy with 'a' record type.")


@pytest.mark.parametrize("name,rtype,error", [
    ("emqx@emqx1.example.com", "a", DNS_A_HOST),
    ("emqx@emqx1.example.com", "aaaa",
     "Node name must be of name@IP format for DNS cluster discovery strategy with 'aaaa' record type."),
    ("emqx@10.0.0.1", "aaaa", "Node name address ipv4 is incompatible with DNS record type aaaa"),
    ("emqx@10.0.0.1", "a", None),
    ("emqx@emqx1.example.com", "srv", None),      # ekka_cluster_dns: peers are name@<SRV target>
])
def test_dns_discovery_node_name_rule(name, rtype, error):
    text = ('node.name = "%s"\ncluster { discovery_strategy = dns, dns { name = "emqx.example.com", '
            'record_type = %s } }\n' % (name, rtype))
    if error is None:
        check(text)
        return
    with pytest.raises(ConfigError) as ei:
        check(text)
    assert ei.value.reason == "integrity_validation_failure"
    assert error in ei.value.describe()
    assert "validation_name => check_node_name_and_discovery_strategy" in ei.value.describe()
    # the rule is about dns only: the same name is fine with static discovery
    check(text.replace("discovery_strategy = dns", "discovery_strategy = static"))


def test_dns_discovery_with_a_host_name_refuses_to_boot(tmp_path):
    err = boot_fails(tmp_path, 'node.name = "emqx@emqx1.example.com"\ncluster.discovery_strategy = dns\n')
    assert DNS_A_HOST in err
    assert 'domain => "emqx1.example.com"' in err


def test_replicant_role_is_enterprise_only():
    with pytest.raises(ConfigError) as ei:
        check("node.role = replicant\n")
    assert ei.value.key_path() == "node.role"
    assert ei.value.reason == "Node role 'replicant' is only allowed in Enterprise edition since 5.8.0"


# ---------------------------------------------------------------------------- roots and keys
def test_root_list_is_emqx_5_8_9s():
    roots = schema.root_names("opensource")
    assert "trace" in roots and "banned" in roots and "crl_cache" in roots
    assert roots == list(schema.EMQX_5_8_9_ROOTS)
    assert "license" not in roots                 # enterprise only (emqx_enterprise_schema)
    for r in roots:
        assert r in schema.ROOTS
    c = check('trace { payload_encode = text }\nbanned {}\n')
    assert c["trace"] == {"payload_encode": "text"}


def test_unknown_root_is_dropped_unknown_key_below_a_root_is_refused():
    c = check('not_a_root { x = 1 }\nalso_unknown = 2\nnode.cookie = abcdefgh\n')
    assert "not_a_root" not in c and "also_unknown" not in c
    assert c.unknown_roots == ("not_a_root", "also_unknown")
    assert c["node"]["cookie"] == "abcdefgh"
    with pytest.raises(ConfigError) as ei:
        check("node.not_a_key = 1\n")
    assert ei.value.key_path() == "node.not_a_key" and ei.value.reason == "unknown_fields"
    with pytest.raises(ConfigError) as ei:
        check("trace.x = 1\ncluster.mcast.addr = x\n")    # cluster has no mcast in 5.8.9
    assert ei.value.key_path() == "cluster.mcast"


def test_node_with_an_unknown_root_starts_and_warns(nodes):
    n = nodes.one(extra="not_a_root { x = 1 }\n")
    n.start()
    assert n.ctl("status")[0] == 0
    assert "msg: config_key_not_recognized, unknown_config_keys: not_a_root" in n.logtext()


@pytest.mark.parametrize("bind", ["0.0.0.0:1883", "::1:1883", "[::1]:1883", ":1883", ":::1883", "1883",
                                  "[::]:1883", "127.0.0.1 : 1883", "::ffff:10.0.0.1:1883", 1883])
def test_listener_bind_forms_emqx_accepts(bind):
    check('listeners.tcp.default.bind = %s\n' % json.dumps(bind))


@pytest.mark.parametrize("bind,reason", [
    ("localhost:1883", "bad_ip_port"),
    ("emqx1.example.com:1883", "bad_ip_port"),
    ("[::1:1883", "bad_ip_port"),
    ("::1", "bad_ip_port"),
    ("10.0.0.1:", "bad_ip_port"),
    ("10.0.0.1:70000", "bad_ip_port"),
    ("localhost", "bad_port_number"),
    (":70000", "port_number_too_large"),
])
def test_listener_bind_forms_emqx_refuses(bind, reason):
    with pytest.raises(ConfigError) as ei:
        check('listeners.tcp.default.bind = "%s"\n' % bind)
    assert ei.value.key_path() == "listeners.tcp.default.bind" and ei.value.reason == reason


def test_listener_bound_to_a_host_name_refuses_to_boot(tmp_path):
    err = boot_fails(tmp_path, 'listeners.tcp.default.bind = "localhost:1883"\n')
    assert "listeners.tcp.default.bind" in err and "bad_ip_port" in err


# ------------------------------------------------------------------------------------ include
def test_include_required_json_at_the_end_overrides_and_deep_merges(tmp_path):
    secrets = str(tmp_path / "emqx-secrets" / "secrets.conf")
    write(secrets, json.dumps({"node": {"cookie": "from-secrets"},
                               "dashboard": {"default_password": "S3cret\u00e9-pw"}}, indent=2))
    etc = str(tmp_path / "etc")
    write(os.path.join(etc, "emqx.conf"),
          'node {\n  name = "emqx@10.0.0.1"\n  cookie = "in-emqx-conf"\n  data_dir = "%s/data"\n}\n'
          'dashboard { default_username = admin, default_password = public }\n'
          'include required("%s")\n' % (tmp_path, secrets))
    raw = schema.load_raw(etc, {})
    assert raw["node"] == {"name": "emqx@10.0.0.1", "cookie": "from-secrets", "data_dir": "%s/data" % tmp_path}
    assert raw["dashboard"]["default_username"] == "admin"
    assert raw["dashboard"]["default_password"] == "S3cret\u00e9-pw"
    # an include placed first is overridden by what follows it
    write(os.path.join(etc, "emqx.conf"), 'include required("%s")\nnode.cookie = later\n' % secrets)
    assert schema.load_raw(etc, {})["node"]["cookie"] == "later"


def test_include_search_order_missing_and_required(tmp_path):
    d = tmp_path / "conf"
    write(str(d / "main.conf"), 'a = 1\ninclude "sub/part.conf"\ninclude "only-in-incdir.conf"\n'
                                'include "nowhere.conf"\n')
    write(str(d / "sub" / "part.conf"), 'b = 2\ninclude "nested.conf"\n')   # relative to sub/
    write(str(d / "sub" / "nested.conf"), "c = 3\n")
    write(str(tmp_path / "incdir" / "only-in-incdir.conf"), "e = 5\n")
    write(str(tmp_path / "incdir" / "sub" / "part.conf"), "b = 99\n")      # the file's own dir wins
    got = hocon.parse_file(str(d / "main.conf"), include_dirs=[str(tmp_path / "incdir")])
    assert got == {"a": 1, "b": 2, "c": 3, "e": 5}
    assert hocon.parse_file(str(d / "main.conf")) == {"a": 1, "b": 2, "c": 3}   # no include dirs
    write(str(d / "req.conf"), 'a = 1\ninclude required("nowhere.conf")\n')
    with pytest.raises(hocon.HoconError) as ei:
        hocon.parse_file(str(d / "req.conf"))
    assert '{enoent,<<"nowhere.conf">>}' in str(ei.value)
    write(str(d / "blank.conf"), 'include required( "sub/nested.conf")\n')   # no blanks allowed
    with pytest.raises(hocon.HoconError):
        hocon.parse_file(str(d / "blank.conf"))
    write(str(d / "loop.conf"), 'include "loop2.conf"\n')
    write(str(d / "loop2.conf"), 'include "loop.conf"\n')
    with pytest.raises(hocon.HoconError) as ei:
        hocon.parse_file(str(d / "loop.conf"))
    assert "cycle" in str(ei.value)


def test_missing_required_include_stops_the_boot(tmp_path):
    missing = str(tmp_path / "emqx-secrets" / "secrets.conf")
    err = boot_fails(tmp_path, 'include required("%s")\n' % missing)
    assert '{enoent,<<"%s">>}' % missing in err


def test_node_and_cli_use_the_cookie_and_password_from_an_included_secrets_file(nodes, tmp_path):
    n = nodes.one()
    secrets = str(tmp_path / "emqx-secrets" / "secrets.conf")
    write(secrets, json.dumps({"node": {"cookie": "cookie-from-secrets"},
                               "dashboard": {"default_password": "Secr3t-from-file"}}))
    with open(os.path.join(n.etc, "emqx.conf")) as fh:
        text = fh.read()
    n.write_conf(text + 'include required("%s")\n' % secrets)
    n.start()
    assert n.ctl("status")[0] == 0                      # the CLI reached it with the merged cookie
    vm_args = sorted(glob.glob(os.path.join(n.data, "configs", "vm.*.args")))[-1]
    with open(vm_args) as fh:
        assert "-setcookie cookie-from-secrets\n" in fh.read()
    # what the CLI reads when it has no vm.args to go by (bin/emqx: call_hocon ... get node.cookie)
    assert schema.load_raw(n.etc, {})["node"]["cookie"] == "cookie-from-secrets"
    status, body = n.api_json("POST", "/api/v5/login", {"username": "admin", "password": "Secr3t-from-file"},
                              auth=None)
    assert status == 200, body
