"""REST API of the rule engine's rules (the subset the tests use), as EMQX 5.8.9 does it:
apps/emqx_rule_engine/src/emqx_rule_engine_api.erl ('/rules' get and post, '/rules/:id' get and delete,
format_rule_info_resp/1, add_metadata/1, filter_out_request_body/1), emqx_rule_engine_schema.erl
(fields "rules": name default "", sql required, actions default [], enable default true, description
default "", metadata), emqx_utils:gen_id/1 (an id of 8 hex digits when the body has none).

Rules live where EMQX keeps them: the cluster configuration, rule_engine.rules.<id> in every node's
data/configs/cluster.hocon (emqx_conf:update/3 with override_to => cluster), so `data export` carries
them and `data import` merges them back (emqx_rule_engine:import_config/1, in backup.py).

Stand-in differences: EMQX parses the SQL with emqx_rule_sqlparser; the stand-in accepts only
`SELECT <fields> FROM "<topic>"[, "<topic>"...] [WHERE ...]` and refuses anything else (FOREACH too),
so it is stricter, never kinder. Actions are stored and returned as given (no bridge is checked).
Rules are not applied to messages.
"""

import datetime
import json
import re
import secrets
import time

from . import schema
from .backup import cluster_conf_update

SELECT_RE = re.compile(r'^\s*select\s+.+?\s+from\s+((?:"[^"]*"\s*,\s*)*"[^"]*")(?:\s+where\s+.+)?\s*$',
                       re.IGNORECASE | re.DOTALL)
REQUEST_ONLY = ("id", "status", "node_status", "node_metrics", "metrics", "node")


def _json(status, obj):
    return status, {"content-type": "application/json"}, json.dumps(obj).encode()


def _err(status, code, message):
    return _json(status, {"code": code, "message": message})


def parse_from(sql):
    """The topics of the FROM clause, or None when the stand-in cannot parse the SQL."""
    m = SELECT_RE.match(sql) if isinstance(sql, str) else None
    if not m:
        return None
    return re.findall(r'"([^"]*)"', m.group(1))


def _rfc3339_ms(ms):
    """emqx_utils_calendar:epoch_to_rfc3339(Ms, millisecond): local time, milliseconds, offset."""
    t = datetime.datetime.fromtimestamp(ms / 1000.0).astimezone()
    off = t.strftime("%z")
    return t.strftime("%Y-%m-%dT%H:%M:%S") + ".%03d" % (ms % 1000) + off[:3] + ":" + off[3:]


def rules(node):
    """The rules of the node's configuration, by id."""
    raw = schema.load_raw(node.etc_dir, data_dir=node.data_dir)
    found = (raw.get("rule_engine") or {}).get("rules") or {}
    return found if isinstance(found, dict) else {}


def info(rid, conf):
    """format_rule_info_resp/1."""
    meta = conf.get("metadata") or {}
    now = int(time.time() * 1000)
    created = meta.get("created_at", now)
    return {"id": rid, "name": conf.get("name", ""), "from": parse_from(conf.get("sql", "")) or [],
            "actions": conf.get("actions", []), "sql": conf.get("sql", ""), "enable": conf.get("enable", True),
            "created_at": _rfc3339_ms(created), "last_modified_at": _rfc3339_ms(meta.get("last_modified_at", created)),
            "description": conf.get("description", "")}


def check(conf):
    """The rule schema's checks (emqx_rule_engine_schema fields "rules"): None or the error message."""
    if "sql" not in conf:
        return "required_field: sql"
    if not isinstance(conf["sql"], str) or parse_from(conf["sql"]) is None:
        return "{select_and_transform_error,%s}" % json.dumps(conf["sql"])
    if not isinstance(conf.get("actions", []), list):
        return "bad_value: actions"
    if not isinstance(conf.get("enable", True), bool):
        return "bad_value: enable"
    for key in ("name", "description"):
        if not isinstance(conf.get(key, ""), str):
            return "bad_value: %s" % key
    return None


async def handle(node, req, method, pattern, parts):
    have = rules(node)
    if pattern == "rules" and method == "GET":
        data = [info(rid, conf) for rid, conf in sorted(have.items())]
        return _json(200, {"data": data, "meta": {"page": 1, "limit": 100, "count": len(data), "hasnext": False}})
    if pattern == "rules":   # POST
        try:
            body = req.json() if req.body else {}
        except ValueError:
            return _err(400, "BAD_REQUEST", "invalid json")
        if not isinstance(body, dict):
            return _err(400, "BAD_REQUEST", "bad request body")
        rid = body.get("id", secrets.token_hex(4))
        if rid == "":
            return _err(400, "BAD_REQUEST", "empty rule id is not allowed")
        if not isinstance(rid, str):
            return _err(400, "BAD_REQUEST", "rule id must be a string")
        if rid in have:
            return _err(400, "BAD_REQUEST", "rule id already exists")
        now = int(time.time() * 1000)
        conf = {k: v for k, v in body.items() if k not in REQUEST_ONLY}
        conf["metadata"] = {"created_at": now, "last_modified_at": now}
        problem = check(conf)
        if problem:
            return _err(400, "BAD_REQUEST", "Bad Arguments: %s" % problem)
        conf = {"name": "", "actions": [], "enable": True, "description": "", **conf}
        raw = schema.load_raw(node.etc_dir, data_dir=node.data_dir)
        engine = dict(raw.get("rule_engine") or {})
        engine["rules"] = {**have, rid: conf}
        await cluster_conf_update(node, "rule_engine", engine)
        return _json(201, info(rid, conf))
    rid = parts[1]
    if rid not in have:
        return _err(404, "NOT_FOUND", "Rule Id Not Found")
    if method == "GET":
        return _json(200, info(rid, have[rid]))
    raw = schema.load_raw(node.etc_dir, data_dir=node.data_dir)   # DELETE
    engine = dict(raw.get("rule_engine") or {})
    engine["rules"] = {k: v for k, v in have.items() if k != rid}
    await cluster_conf_update(node, "rule_engine", engine)
    return 204, {}, b""
