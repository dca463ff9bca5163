"""`emqx ctl data export` / `emqx ctl data import <File>` as EMQX 5.8.9 does them.

Sources (v5.8.9): apps/emqx_management/src/emqx_mgmt_cli.erl data/1 (messages; every branch returns
`ok`, so the CLI exits 0 unless the command crashes: bin/nodetool rpc_infinity halts 1 on anything but
`ok`), apps/emqx_management/src/emqx_mgmt_data_backup.erl (archive name and layout, checks, the
progress lines printed through emqx_ctl:print/2), apps/emqx/src/bhvrs/emqx_db_backup.erl (the modules
with backup_tables/0: emqx_banned, emqx_mgmt_auth, emqx_dashboard_admin, emqx_authn_mnesia,
emqx_authn_scram_mnesia, emqx_authz_mnesia, emqx_psk, emqx_retainer_mnesia), the emqx_config_backup
modules emqx_authn, emqx_authz, emqx_mgmt_listeners_conf (import_config/1), hocon 0.44.0 hocon_pp.erl.

Archive: <dir>/emqx-export-<Y>-<MM>-<DD>-<HH>-<MM>-<SS>.<mmm>.tar.gz (local time; <dir> is
node.data_dir/backup unless --dir), members under emqx-export-.../ : META.hocon (edition, version),
cluster.hocon (base.hocon + data/configs/cluster.hocon, data_dir files inlined), mnesia/<table> per
table. Stand-in difference: a mnesia/<table> member is JSON of the stand-in's own (Mnesia's backup
format cannot be reproduced); the rest is as EMQX writes it.
"""

import datetime
import io
import json
import os
import shutil
import tarfile
import time

from . import EDITION, VERSION, erlfmt, hocon, schema

TAR_SUFFIX = ".tar.gz"
META_FILENAME = "META.hocon"
CLUSTER_HOCON_FILENAME = "cluster.hocon"

# emqx_mgmt_data_backup ?CONF_KEYS (imported with emqx_conf:update/3, override_to => cluster)
CONF_KEYS = [["delayed"], ["rewrite"], ["retainer"], ["mqtt"], ["alarm"], ["sysmon"], ["sys_topics"],
             ["limiter"], ["log"], ["persistent_session_store"], ["durable_sessions"], ["prometheus"],
             ["crl_cache"], ["conn_congestion"], ["force_shutdown"], ["flapping_detect"], ["broker"],
             ["force_gc"], ["zones"], ["slow_subs"], ["cluster", "links"]]

# (table set, table, stand-in store, record attributes) for every emqx_db_backup module of 5.8.9 open
# source. EMQX's order follows application:loaded_applications/0 (not knowable here): this one is the
# stand-in's. Tables the stand-in does not model are exported empty.
TABLES = [
    ("banned", "emqx_banned_rules", None, ["who", "by", "reason", "at", "until"]),
    ("banned", "emqx_banned", None, ["who", "by", "reason", "at", "until"]),
    ("api_keys", "emqx_app", "api_keys",
     ["name", "api_key", "api_secret_hash", "enable", "extra", "expired_at", "created_at"]),
    ("dashboard_users", "emqx_admin", "users", ["username", "pwdhash", "description", "role", "extra"]),
    ("builtin_authn", "emqx_authn_mnesia", "authn_users", ["user_id", "password_hash", "salt", "is_superuser"]),
    ("builtin_authn", "emqx_authn_scram_mnesia", None,
     ["user_id", "stored_key", "server_key", "salt", "is_superuser"]),
    ("builtin_authz", "emqx_acl", None, ["who", "rules"]),
    ("psk", "emqx_psk", None, ["psk_id", "shared_secret", "extra"]),
    ("builtin_retainer", "emqx_retainer_message", "retainer", ["topic", "msg", "expiry_time"]),
]
DUMP_FORMAT = "emqx-standin-table-dump"
REINDEX_BATCH_SIZE = 1000     # emqx_retainer_mnesia ?REINDEX_BATCH_SIZE

USAGE = [("data import <File>", "Import data from the specified tar archive file"),
         ("data export \\\n  [--root-keys key1,key2,key3] \\\n  [--table-sets set1,set2,set3] \\\n  [--dir out_dir]",
          "Export data")]


class Failed(Exception):
    """{error, Reason}: `text` is Reason as ~p prints it."""

    def __init__(self, text):
        super().__init__(text)
        self.text = text


# ---------------------------------------------------------------------------------------------
# Erlang printing helpers

def erl_str(s):
    """~p of a printable string (io_lib:write_string/2)."""
    out = []
    for c in s:
        if c in '"\\':
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        elif c == "\x0b":
            out.append("\\v")
        elif c == "\x08":
            out.append("\\b")
        elif c == "\x0c":
            out.append("\\f")
        elif c == "\x1b":
            out.append("\\e")
        elif c == "\x7f":
            out.append("\\d")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def erl_join(*parts):
    """filename:join/2 for the paths printed here: later absolute parts win, `//` and trailing `/` go."""
    path = ""
    for p in parts:
        p = str(p)
        path = p if p.startswith("/") or not path else path + "/" + p
    while "//" in path:
        path = path.replace("//", "/")
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    return path


def format_usage(entries):
    """emqx_ctl:format_usage/1: the width is the longest command text (newlines included) + 1."""
    width = max(len(cmd.encode("utf-8")) for cmd, _ in entries)
    out = []
    for cmd, desc in entries:
        clines = [x for x in cmd.split("\n") if x]
        dlines = [x for x in desc.split("\n") if x]
        n = max(len(clines), len(dlines))
        clines += [""] * (n - len(clines))
        dlines += [""] * (n - len(dlines))
        for c, d in zip(clines, dlines):
            out.append("%-*s# %s\n" % (width + 1, c, d))
    return "".join(out)


# ---------------------------------------------------------------------------------------------

class DataBackup:
    def __init__(self, node):
        self.node = node
        self.out = []

    def print(self, text):
        self.out.append(text)

    # ------------------------------------------------------------------ paths
    @property
    def data_dir_conf(self):
        """emqx:data_dir(): node.data_dir as configured."""
        return str(self.node.conf["node"]["data_dir"])

    def root_backup_dir(self):
        d = erl_join(self.data_dir_conf, "backup")
        os.makedirs(d, exist_ok=True)
        return d

    def tables(self):
        """tabs_to_backup(): emqx_retainer_mnesia exports its table only while the retainer is enabled."""
        ret = self.node.retainer
        out = []
        for tset, tab, store, attrs in TABLES:
            if store == "retainer" and (ret is None or not ret.enabled):
                continue
            out.append((tset, tab, store, attrs))
        return out

    # ------------------------------------------------------------------ export
    async def export(self, args):
        opts = {}
        rest = list(args)
        while rest:
            if len(rest) >= 2 and rest[0] == "--root-keys":
                opts["root_keys"] = [t for t in rest[1].split(",") if t]
            elif len(rest) >= 2 and rest[0] == "--table-sets":
                opts["table_sets"] = [t for t in rest[1].split(",") if t]
            elif len(rest) >= 2 and rest[0] == "--dir":
                opts["out_dir"] = rest[1]
            else:
                # {error, io_lib:format("unknown arguments: ~p", [Args])} printed with ~p (approximated)
                text = "unknown arguments: [%s]" % ",".join(erl_str(a) for a in rest)
                self.print("[error] Data export failed, reason: %s.\n" % erl_str(text))
                return 0
            rest = rest[2:]
        roots = schema.root_names()
        unknown = sorted(set(opts.get("root_keys", [])) - set(roots), key=lambda s: s.encode())
        if unknown:
            self.print("Invalid root keys: %s\n" % ", ".join(unknown))
            return 0
        sets = None
        if "table_sets" in opts:
            known = {t[0] for t in TABLES}
            bad = sorted({s for s in opts["table_sets"] if s not in known}, key=lambda s: s.encode())
            if bad:
                self.print("Invalid table sets: %s\n" % ", ".join(bad))
                return 0
            sets = set(opts["table_sets"])
        # prepare_new_backup/1
        ts = time.time()
        lt = datetime.datetime.fromtimestamp(ts)
        base = "emqx-export-%d-%02d-%02d-%02d-%02d-%02d.%03d" % (
            lt.year, lt.month, lt.day, lt.hour, lt.minute, lt.second, int(ts * 1000) % 1000)
        root = self.root_backup_dir()          # maps:get(out_dir, Opts, root_backup_dir()) runs it anyway
        out_dir = opts.get("out_dir", root)
        backup_name = erl_join(out_dir, base)
        tar_name = backup_name + TAR_SUFFIX
        self.print("Exporting data to %s...\n" % erl_str(tar_name))
        try:
            fh = open(tar_name, "wb")
        except OSError as e:
            # {ok, TarDescriptor} = ... fails: the command crashes, nodetool exits 1
            self.node.log("error", "msg: ctl_command_crashed, reason: {badmatch,{error,\"%s: %s\"}}"
                          % (tar_name, e.strerror))
            return 1
        try:
            tar = tarfile.open(fileobj=fh, mode="w:gz")
            try:
                try:
                    self._add(tar, base + "/" + META_FILENAME, hocon.pp(
                        {"version": VERSION, "edition": "ee" if EDITION == "enterprise" else "ce"}).encode())
                    self.print("Exporting cluster configuration...\n")
                    raw = self.read_override_conf()
                    self.print("Exporting additional files from EMQX data_dir: %s...\n" % erl_str(self.data_dir_conf))
                    raw = self.read_data_files(raw)
                    if "root_keys" in opts:
                        keys = set(opts["root_keys"])
                        raw = {k: v for k, v in raw.items() if k in keys}
                    self._add(tar, base + "/" + CLUSTER_HOCON_FILENAME, hocon.pp(raw).encode("utf-8"))
                    self.print("Exporting built-in database...\n")
                    for tset, tab, store, attrs in self.tables():
                        if sets is not None and tset not in sets:
                            continue
                        self.print("Exporting %s database table...\n" % tab)
                        self._add(tar, base + "/mnesia/" + tab, self.dump_table(tab, store, attrs))
                except (Failed, OSError, ValueError) as e:
                    # export/1 catches Class:Reason and returns {error, Reason}
                    text = e.text if isinstance(e, Failed) else erl_str(str(e))
                    self.node.log("error", "msg: emqx_data_export_failed, reason: %s" % text)
                    self.print("[error] Data export failed, reason: %s.\n" % text)
                    return 0
            finally:
                tar.close()
        finally:
            fh.close()
            shutil.rmtree(backup_name, ignore_errors=True)
        self.print("Data has been successfully exported to %s.\n" % tar_name)
        return 0

    @staticmethod
    def _add(tar, name, data):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mtime = int(time.time())
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))

    def read_override_conf(self):
        """emqx_config:read_override_conf/1: etc/base.hocon and data/configs/cluster.hocon, merged."""
        raw = {}
        for path in (os.path.join(self.node.etc_dir, "base.hocon"),
                     os.path.join(self.node.data_dir, "configs", "cluster.hocon")):
            if os.path.exists(path):
                try:
                    raw = hocon.merge(raw, hocon.parse_file(path, include_dirs=[
                        os.path.join(self.node.data_dir, "configs")]))
                except hocon.HoconError as e:
                    raise Failed(erl_str(str(e)))
        return raw

    def read_data_files(self, raw):
        """read_data_files/1: file authz sources get their file as `rules` (emqx_authz_file:read_files/1);
        any string value starting with the data dir is replaced by that file's content."""
        az = raw.get("authorization")
        if isinstance(az, dict) and isinstance(az.get("sources"), list):
            srcs = []
            for src in az["sources"]:
                if isinstance(src, dict) and src.get("type") == "file" and "path" in src:
                    path = schema.interpolate_env(str(src["path"]))
                    try:
                        with open(path, encoding="utf-8") as fh:
                            rules = fh.read()
                    except OSError as e:
                        raise Failed("{badmatch,{error,%s}}" % _errno_atom(e))
                    src = {k: v for k, v in src.items() if k != "path"}
                    src["rules"] = rules
                srcs.append(src)
            raw = dict(raw, authorization=dict(az, sources=srcs))
        dd = self.data_dir_conf
        abs_dd = erl_join(os.getcwd(), dd)

        def conv(v):
            if isinstance(v, dict):
                return {k: conv(x) for k, x in v.items()}
            if isinstance(v, list):
                return [conv(x) for x in v]
            if isinstance(v, str) and (v.startswith(dd) or v.startswith(abs_dd)):
                try:
                    with open(v, encoding="utf-8") as fh:
                        return fh.read()
                except (OSError, UnicodeDecodeError) as e:
                    self.node.log("warning", "msg: failed_to_read_data_file, filename: %s, reason: %s"
                                  % (v, _errno_atom(e) if isinstance(e, OSError) else "badarg"))
                    return v
            return v
        return conv(raw)

    def dump_table(self, tab, store, attrs):
        records = []
        if store == "retainer":
            records = self.node.retainer.dump()
        elif store is not None:
            for key, rec in sorted(self.node.cluster.state["data"].get(store, {}).items()):
                if rec.get("deleted"):
                    continue
                records.append({"key": key, "value": {k: v for k, v in rec.items() if k != "v"}})
        doc = {"format": DUMP_FORMAT, "table": tab, "attributes": attrs, "records": records}
        return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode("utf-8")

    # ------------------------------------------------------------------ import
    async def import_local(self, filename):
        """import_local/2: the path as given (relative to the node's working directory), else a file
        of that name in node.data_dir/backup. validate_import_allowed/0 comes first: a replicant refuses
        (not_core_node)."""
        try:
            if self.node.cluster.role != "core":
                raise Failed(erl_str("backup data import is only allowed on core EMQX nodes, but requested "
                                     "node %s is not core" % erlfmt.atom(self.node.name)))
            if os.path.isfile(filename):
                result = await self.do_import(filename)
            else:
                parts = [p for p in filename.split("/")]
                if len(parts) != 1 or not _good_basename(filename):
                    raise Failed(erl_str("backup file not found"))
                path = erl_join(self.root_backup_dir(), filename)
                if not os.path.isfile(path):
                    raise Failed(erl_str("backup file not found"))
                result = await self.do_import(path)
        except Failed as e:
            self.print("[error] Data import failed, reason: %s.\n" % e.text)
            return 0
        db_errors, conf_errors = result
        if not db_errors and not conf_errors:
            self.print("Data has been imported successfully.\n")
        else:
            self.print("Data has been imported, but some errors occurred, see the log above.\n")
        return 0

    async def do_import(self, path):
        self.print("Importing data from %s...\n" % erl_str(path))
        base = os.path.basename(path)
        name = base[:-len(TAR_SUFFIX)] if base.endswith(TAR_SUFFIX) else base
        root = self.root_backup_dir()
        backup_dir = erl_join(root, name)
        try:
            if not _good_basename(path):
                raise Failed(erl_str("invalid backup name: file name must have .tar.gz extension"))
            self.extract(path, name, root)
            self.validate_meta(backup_dir)
            conf_errors = await self.import_cluster_hocon(backup_dir)
            db_errors = self.import_tables(backup_dir)
            self.node.log("info", "msg: emqx_data_import_success")
            return db_errors, conf_errors
        except (Failed, OSError, ValueError, KeyError, TypeError) as e:
            # do_import/2 catches Class:Reason and returns {error, Reason}
            text = e.text if isinstance(e, Failed) else erl_str("%s: %s" % (type(e).__name__, e))
            self.node.log("error", "msg: emqx_data_import_failed, reason: %s, backup_file_path: %s" % (text, path))
            raise Failed(text)
        finally:
            shutil.rmtree(backup_dir, ignore_errors=True)

    def extract(self, path, name, root):
        """validate_filenames/1 (every member under <backup name>/) and erl_tar:extract/2."""
        try:
            with tarfile.open(path, "r:*") as tar:
                members = tar.getmembers()
                for m in members:
                    if m.name.split("/")[0] != name:
                        raise Failed(erl_str("invalid backup archive content: all files in the archive must "
                                             "be under <backup name> directory"))
                for m in members:
                    if m.name.startswith("/") or ".." in m.name.split("/"):
                        raise Failed(erl_str("The path points above the current working directory"))
                    if m.isdir():
                        os.makedirs(os.path.join(root, m.name), exist_ok=True)
                    elif m.isfile():
                        dest = os.path.join(root, m.name)
                        os.makedirs(os.path.dirname(dest), exist_ok=True)
                        with tar.extractfile(m) as src, open(dest, "wb") as dst:
                            shutil.copyfileobj(src, dst)
        except tarfile.ReadError as e:
            # erl_tar:format_error/1 (approximated: which reason erl_tar gives depends on its reader)
            text = "Unexpected end of file" if "empty" in str(e) or "truncated" in str(e) else "Checksum failed"
            raise Failed(erl_str(text))
        except (EOFError, OSError) as e:
            raise Failed(erl_str("Unexpected end of file" if isinstance(e, EOFError) else str(e)))

    def validate_meta(self, backup_dir):
        """validate_backup/1, check_edition/1, check_version/1."""
        try:
            meta = hocon.parse_file(os.path.join(backup_dir, META_FILENAME))
        except (hocon.HoconError, OSError):
            meta = None
        if not isinstance(meta, dict) or "edition" not in meta or "version" not in meta:
            self.node.log("error", "msg: missing_backup_meta, backup: %s" % backup_dir)
            raise Failed(erl_str("invalid backup archive file: missing META.hocon"))
        edition, version = str(meta["edition"]), str(meta["version"])
        if edition not in ("ce", "ee"):
            raise Failed(erl_str("invalid backup archive content: wrong EMQX edition value in META.hocon"))
        mine = "ee" if EDITION == "enterprise" else "ce"
        if edition == "ee" and mine == "ce":
            raise Failed(erl_str("importing EMQX Enterprise data backup to EMQX is not allowed"))
        parts = version.split(".")
        if len(parts) < 2:
            self.node.log("error", "msg: failed_to_parse_backup_version, version: %s" % version)
            raise Failed(erl_str("invalid backup archive content: wrong EMQX version value in META.hocon"))
        imp = (_leading_int(parts[0]), _leading_int(parts[1]))
        cur = VERSION.split(".")
        cur = (_leading_int(cur[0]), _leading_int(cur[1]))
        if imp[0] > cur[0] or imp[1] > cur[1]:
            raise Failed(erl_str("[warning] Backup version %s is newer than EMQX version %s, import is not "
                                 "allowed.\n" % (erl_str(version), erl_str(VERSION))))

    # ------------------------------------------------------------------ config
    async def import_cluster_hocon(self, backup_dir):
        path = os.path.join(backup_dir, CLUSTER_HOCON_FILENAME)
        if not os.path.isfile(path):
            self.print("No cluster configuration to be imported.\n")
            self.node.log("info", "msg: no_backup_hocon_config_to_import, backup: %s" % backup_dir)
            return {}
        try:
            imported = hocon.parse_file(path)
        except hocon.HoconError as e:
            raise Failed(erl_str(str(e)))
        current = self.current_raw()
        try:   # validate_cluster_hocon/1: the whole schema over the current raw config + the import
            schema.check(hocon.merge(current, imported))
        except schema.ConfigError as e:
            raise Failed(e.describe())
        self.print("Importing cluster configuration...\n")
        errors = {}
        for kp in CONF_KEYS:
            val = _deep_get(imported, kp)
            if val is None:
                continue
            if kp[0] not in schema.root_names():
                errors[".".join(kp)] = "{error,{config_not_found,[%s]}}" % ",".join(kp)
                continue
            old = _deep_get(current, kp)
            await self.conf_update(kp[0], {**old, **val} if isinstance(old, dict) and isinstance(val, dict)
                                   else val)
        for p, err in errors.items():
            self.print("Failed to import the following config path: %s, reason: %s\n" % (erl_str(p), err))
        # emqx_config_backup modules the stand-in has: emqx_authn, emqx_authz, emqx_rule_engine,
        # emqx_mgmt_listeners_conf
        changed = []
        new = imported.get("authentication", [])
        new = new if isinstance(new, list) else [new]
        old = current.get("authentication", [])
        old = old if isinstance(old, list) else [old]
        merged = _merge_lists(old, new, _authn_id)
        await self.conf_update("authentication", merged)
        changed += ["authentication.%s" % _authn_id(o) for o in old
                    if any(_authn_id(m) == _authn_id(o) and m != o for m in merged)]
        if isinstance(imported.get("authorization"), dict):
            az = imported["authorization"]
            old_az = current.get("authorization") if isinstance(current.get("authorization"), dict) else {}
            old_srcs = old_az.get("sources", [dict(schema.DEFAULT_AUTHZ_SOURCE)])
            srcs = self.write_acl_files(_merge_lists(old_srcs, az.get("sources", []), lambda s: s.get("type")))
            await self.conf_update("authorization", {**old_az, **az, "sources": srcs})
            changed += ["authorization.sources.%s" % o.get("type") for o in old_srcs
                        if any(s.get("type") == o.get("type") and s != o for s in srcs)]
        # emqx_rule_engine:import_config/1: the imported rule_engine root with its rules merged over the
        # rules the cluster has (an imported rule replaces the one with its id; the others stay).
        re_conf = imported.get("rule_engine")
        if isinstance(re_conf, dict) and isinstance(re_conf.get("rules"), dict):
            old_rules = (current.get("rule_engine") or {}).get("rules") or {}
            old_rules = old_rules if isinstance(old_rules, dict) else {}
            merged_rules = {**old_rules, **re_conf["rules"]}
            await self.conf_update("rule_engine", {**re_conf, "rules": merged_rules})
            changed += ["rule_engine.rules.%s" % rid for rid in sorted(old_rules)
                        if merged_rules.get(rid) != old_rules[rid]]
        new_l = imported.get("listeners") if isinstance(imported.get("listeners"), dict) else {}
        old_l = current.get("listeners") if isinstance(current.get("listeners"), dict) else {}
        merged_l = {}
        for ltype in sorted(set(old_l) | set(new_l)):
            merged_l[ltype] = {**(old_l.get(ltype) or {}), **(new_l.get(ltype) or {})}
        await self.conf_update("listeners", merged_l)
        for ltype, ls in merged_l.items():
            for lname, lconf in ls.items():
                if lname in (old_l.get(ltype) or {}) and old_l[ltype][lname] != lconf:
                    changed.append("listeners.%s.%s" % (ltype, lname))
        for p in changed:
            self.print("Config key path %s was present before import and has been overwritten.\n" % erl_str(p))
        return errors

    def current_raw(self):
        return schema.load_raw(self.node.etc_dir, data_dir=self.node.data_dir)

    def write_acl_files(self, sources):
        """emqx_authz_file:write_files/1: `rules` go to data_dir/authz/acl.conf, the source gets its path."""
        out = []
        for s in sources:
            if isinstance(s, dict) and s.get("type") == "file" and "rules" in s:
                path = erl_join(self.data_dir_conf, "authz", "acl.conf")
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w", encoding="utf-8") as fh:
                    fh.write(s["rules"])
                s = {k: v for k, v in s.items() if k != "rules"}
                s["path"] = path
            out.append(s)
        return out

    async def conf_update(self, root, value):
        await cluster_conf_update(self.node, root, value)

    # ------------------------------------------------------------------ tables
    def import_tables(self, backup_dir):
        self.print("Importing built-in database...\n")
        errors = {}
        for tset, tab, store, attrs in reversed(self.tables()):      # lists:foldr/3
            path = os.path.join(backup_dir, "mnesia", tab)
            if not os.path.isfile(path):
                self.print("No backup file for %s database table...\n" % tab)
                self.node.log("info", "msg: missing_mnesia_backup, table: %s, backup: %s" % (tab, backup_dir))
                continue
            self.print("Importing %s database table...\n" % tab)
            try:
                with open(path, encoding="utf-8") as fh:
                    doc = json.load(fh)
                if not isinstance(doc, dict) or doc.get("format") != DUMP_FORMAT:
                    raise ValueError("not a stand-in table dump")
            except (OSError, ValueError, UnicodeDecodeError):
                err = "{error,{\"Cannot open backup file\",%s}}" % erl_str(path)
                self.print("[error] Failed to import built-in database table: %s, reason: %s\n" % (tab, err))
                errors[tab] = err
                continue
            if doc.get("attributes") != attrs:
                err = "{error,different_table_schema}"
                self.node.log("error", "msg: failed_to_prepare_mnesia_backup_for_restoring, table: %s" % tab)
                self.print("[error] Failed to import built-in database table: %s, reason: %s\n" % (tab, err))
                errors[tab] = err
                continue
            records = doc.get("records") or []
            if store == "retainer":
                self.node.retainer.import_records(records)
                self.reindex_retained()
            elif store is not None:
                self.node.cluster.put_records(store, [(r["key"], r["value"]) for r in records])
        return errors

    def reindex_retained(self):
        """emqx_retainer_mnesia:on_backup_table_imported/2: reindex(false, StatusFun)."""
        self.print("Starting reindexing retained messages \n")
        self.node.log("warning", "msg: retainer_message_reindexing_started, hint: during reindexing, "
                      "subscription performance may degrade")
        total = self.node.retainer.count()
        done = 0
        while True:
            batch = min(REINDEX_BATCH_SIZE, total - done)
            done += batch
            self.print("Reindexed %d messages\n" % done)
            # consume(1000, S) returns {Rows, Rest} whenever it took 1000 rows, so a table of exactly
            # k*1000 records reports the last count twice
            if batch < REINDEX_BATCH_SIZE:
                break
        self.node.log("warning", "msg: retainer_message_reindexing_finished")
        self.print("Reindexing retained messages finished\n")


async def cluster_conf_update(node, root, value):
    """emqx_conf:update([Root], Value, #{override_to => cluster}): every running node of the cluster
    writes the root into its data/configs/cluster.hocon."""
    write_cluster_hocon(node, root, value)
    from .cluster import NodeDown
    for peer in node.cluster.running_peers():    # replicants run the cluster_rpc MFAs too
        try:
            await node.cluster._call(peer, "conf_update", timeout=15.0, root=root, value=value)
        except (NodeDown, RuntimeError) as e:
            node.log("error", "msg: cluster_rpc_failed, node: %s, reason: %s" % (peer, e))


def write_cluster_hocon(node, root, value):
    """emqx_config:save_to_override_conf/3: read_override_conf (base.hocon + cluster.hocon), put the
    root, write data/configs/cluster.hocon with EMQX's header."""
    cfg_dir = os.path.join(node.data_dir, "configs")
    override = {}
    for path in (os.path.join(node.etc_dir, "base.hocon"), os.path.join(cfg_dir, "cluster.hocon")):
        if os.path.exists(path):
            try:
                override = hocon.merge(override, hocon.parse_file(path, include_dirs=[cfg_dir]))
            except hocon.HoconError:
                pass
    override[root] = value
    write_cluster_hocon_raw(node, override)


def write_cluster_hocon_raw(node, override):
    """emqx_config:save_to_override_conf/3 with a whole raw config: EMQX's header, hocon_pp, the previous
    file kept as a backup (backup_and_write/2)."""
    cfg_dir = os.path.join(node.data_dir, "configs")
    text = ("# This file is generated. Do not edit.\n"
            "# The configs are results of online config changes from UI/API/CLI.\n"
            "# To persist configs in this file, copy the content to etc/base.hocon.\n") + hocon.pp(override)
    os.makedirs(cfg_dir, exist_ok=True)
    path = os.path.join(cfg_dir, "cluster.hocon")
    if os.path.exists(path):   # backup_and_write/2 keeps the previous file as cluster.hocon.<time>.bak
        shutil.copyfile(path, path + "." + time.strftime("%Y.%m.%d.%H.%M.%S") + ".bak")
    with open(path + ".tmp", "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(path + ".tmp", path)


def _good_basename(path):
    base = os.path.basename(path)
    return base.endswith(TAR_SUFFIX)


def _leading_int(text):
    digits = ""
    for ch in text:
        if not ch.isdigit():
            break
        digits += ch
    return int(digits) if digits else 0


def _deep_get(m, path):
    for p in path:
        if not isinstance(m, dict) or p not in m:
            return None
        m = m[p]
    return m


def _authn_id(c):
    """emqx_authn_config:authenticator_id/1: "<mechanism>:<backend>" (or the mechanism alone)."""
    if not isinstance(c, dict):
        return None
    mech, backend = c.get("mechanism"), c.get("backend")
    return "%s:%s" % (mech, backend) if backend else str(mech)


def _merge_lists(old, new, key):
    """emqx_utils:merge_lists/3: old entries replaced in place by new ones with the same key, the other
    new ones appended."""
    new_keys = [(key(e), e) for e in new]
    out = []
    seen = set()
    for e in old:
        k = key(e)
        rep = next((x for kk, x in new_keys if kk == k), None)
        out.append(rep if rep is not None else e)
        seen.add(k)
    out += [e for k, e in new_keys if k not in seen]
    return out


def _errno_atom(e):
    import errno
    return errno.errorcode.get(e.errno, "einval").lower() if getattr(e, "errno", None) else "einval"
