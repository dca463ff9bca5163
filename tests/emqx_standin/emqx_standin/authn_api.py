"""REST API of the global authentication chain (the subset the collection uses), as EMQX 5.8.9:
apps/emqx_auth/src/emqx_authn/emqx_authn_api.erl (list, users CRUD, serialize_error/1) and
emqx_authn_user_import_api.erl (import_users), apps/emqx_management/src/emqx_mgmt_api.erl
(node_query/6 paging of the users list).

Request bodies pass emqx_dashboard_swagger's check_only filter with `required => false`: types are
checked, missing fields are not (the handlers answer "Missing required parameter: ..."), defaults
are not filled in (so PUT {password} keeps is_superuser).
"""

import json
import re

from .authn import HashError, ImportError_

GLOBAL_NOT_FOUND = "Authenticator not found in the 'global' scope"


def _json(status, obj):
    return status, {"content-type": "application/json"}, json.dumps(obj).encode()


def _err(status, code, message):
    return _json(status, {"code": code, "message": message})


def _user_error(err, aid):
    """serialize_error({user_error, Reason})."""
    if err == ("chain_not_found",):
        return _err(404, "NOT_FOUND", GLOBAL_NOT_FOUND)
    if isinstance(err, tuple) and err[0] == "authenticator_not_found":
        return _err(400, "BAD_REQUEST", 'User error: {not_found,{authenticator,<<"%s">>}}' % err[1])
    if err == "not_found":
        return _err(404, "NOT_FOUND", "User not found")
    if err == "already_exist":
        return _err(409, "ALREADY_EXISTS", "User already exists")
    return _err(400, "BAD_REQUEST", "User error: %s" % err)


def _plain_error(err):
    """serialize_error(Reason) (the import API passes the reason without user_error)."""
    if err == ("chain_not_found",):
        return _err(404, "NOT_FOUND", GLOBAL_NOT_FOUND)
    if isinstance(err, tuple) and err[0] == "authenticator_not_found":
        return _err(404, "NOT_FOUND", "Authenticator '%s' does not exist" % err[1])
    if isinstance(err, tuple) and err[0] == "missing_parameter":
        return _err(400, "BAD_REQUEST", "Missing required parameter: %s" % err[1])
    return _err(400, "BAD_REQUEST", str(err))


def _type_error(field, value, expected):
    return _err(400, "BAD_REQUEST", json.dumps({"kind": "validation_error", "path": "root.%s" % field,
                                                "reason": "unable_to_convert_to_%s_type" % expected,
                                                "value": value}, separators=(",", ":")))


def _bool(v):
    if isinstance(v, bool):
        return v
    if v in ("true", "false"):
        return v == "true"
    raise ValueError


def _public(conf):
    out = {k: v for k, v in conf.items() if not k.startswith("_")}
    return out


def handle(node, req, method, pattern, parts):
    a_n = node.authn
    configured = list(node.conf.get("authentication") or [])
    if pattern == "authentication":
        return _json(200, [dict(_public(c), id="%s:%s" % (c["mechanism"], c["backend"])) for c in configured])
    aid = parts[1]
    if pattern == "authentication/{}":
        for c in configured:
            if "%s:%s" % (c["mechanism"], c["backend"]) == aid:
                return _json(200, dict(_public(c), id=aid))
        return _err(404, "NOT_FOUND", "Authenticator '%s' does not exist" % aid)
    if pattern == "authentication/{}/import_users":
        return import_users(a_n, req, aid)
    a, err = a_n.find(aid)
    if pattern == "authentication/{}/users" and method == "GET":
        q = req.query
        try:
            page = int(q.get("page", "1"))
            limit = int(q.get("limit", "100"))
            if page < 1 or not 1 <= limit <= 10000:
                raise ValueError
            sup = _bool(q["is_superuser"]) if "is_superuser" in q else None
        except (ValueError, TypeError):
            return _err(400, "BAD_REQUEST", "bad page, limit or is_superuser")
        if err:
            return _user_error(err, aid)
        return _json(200, list_users(a_n, page, limit, q.get("like_user_id"), sup))
    if pattern == "authentication/{}/users":      # POST
        body = req.json() if req.body else {}
        if not isinstance(body, dict):
            return _err(400, "BAD_REQUEST", "request body must be an object")
        for f in ("user_id", "password"):
            if f in body and not isinstance(body[f], str):
                return _type_error(f, body[f], "binary")
        if "is_superuser" in body:
            try:
                body["is_superuser"] = _bool(body["is_superuser"])
            except ValueError:
                return _type_error("is_superuser", body["is_superuser"], "boolean")
        if "user_id" not in body:
            return _plain_error(("missing_parameter", "user_id"))
        if "password" not in body:
            return _plain_error(("missing_parameter", "password"))
        if body["user_id"] == "":                 # emqx_authn_chains:validate_user_id/1
            return _user_error("invalid_user_id", aid)
        if err:
            return _user_error(err, aid)
        try:
            user, uerr = a_n.add_user(a, body["user_id"], body["password"], body.get("is_superuser", False))
        except HashError as e:
            return _user_error("{exception,%s}" % e, aid)
        if uerr:
            return _user_error(uerr, aid)
        return _json(201, user)
    user_id = parts[3]
    if method == "GET":
        if err:
            return _user_error(err, aid)
        rec = a_n.users().get(user_id)
        if rec is None:
            return _user_error("not_found", aid)
        return _json(200, {"user_id": user_id, "is_superuser": bool(rec.get("is_superuser"))})
    if method == "DELETE":
        if err:
            return _user_error(err, aid)
        derr = a_n.delete_user(user_id)
        if derr:
            return _user_error(derr, aid)
        return 204, {}, b""
    # PUT
    body = req.json() if req.body else {}
    if not isinstance(body, dict):
        return _err(400, "BAD_REQUEST", "request body must be an object")
    if "password" in body and not isinstance(body["password"], str):
        return _type_error("password", body["password"], "binary")
    if "is_superuser" in body:
        try:
            body["is_superuser"] = _bool(body["is_superuser"])
        except ValueError:
            return _type_error("is_superuser", body["is_superuser"], "boolean")
    fields = {k: body[k] for k in ("password", "is_superuser") if k in body}
    if not fields:
        return _plain_error(("missing_parameter", "password"))
    if err:
        return _user_error(err, aid)
    try:
        user, uerr = a_n.update_user(a, user_id, fields)
    except HashError as e:
        return _user_error("{exception,%s}" % e, aid)
    if uerr:
        return _user_error(uerr, aid)
    return _json(200, user)


def list_users(a_n, page, limit, like, sup):
    """emqx_authn_mnesia:list_users/2 through emqx_mgmt_api:node_query/6: rows in REVERSE key order
    (ets:select_reverse on the ordered_set, key {Group, UserID}: bytewise), read in chunks of
    `limit`; like_user_id is a fuzzy filter applied to each chunk (substring match), and then meta
    has no `count` (the total is not counted for fuzzy queries); hasnext is true when the page
    ended on a full chunk that was not known to be the last."""
    rows = sorted(a_n.users().items(), key=lambda kv: kv[0].encode("utf-8", "surrogateescape"), reverse=True)
    if sup is not None:
        rows = [r for r in rows if bool(r[1].get("is_superuser")) == sup]
    total = len(rows)
    page_start, page_end = (page - 1) * limit + 1, page * limit
    cursor, count, got, overflow, complete = 0, 0, [], False, False
    pos = 0
    while True:
        if pos >= len(rows):
            complete = True
            chunk = []
        else:
            chunk = rows[pos:pos + limit]
            pos += len(chunk)
            if len(chunk) < limit:
                complete = True          # {Rows, '$end_of_table'}
        if like is not None:
            chunk = [r for r in chunk if like.encode("utf-8") in r[0].encode("utf-8", "surrogateescape")]
        n = cursor + len(chunk)
        if n < page_start:
            cursor = n
            if complete:
                break
            continue
        if n < page_end:
            sub = chunk[max(0, page_start - cursor - 1):]
            got += sub
            count += len(sub)
            cursor = n
            if complete:
                break
            continue
        page_rows = chunk[max(0, page_start - cursor - 1):]
        sub = page_rows[:limit - count]
        overflow = (limit - count) < len(chunk)
        got += sub
        count += len(sub)
        cursor = n
        break
    meta = {"page": page, "limit": limit, "hasnext": overflow or not complete}
    if like is None:
        meta["count"] = total
    return {"data": [{"user_id": k, "is_superuser": bool(v.get("is_superuser"))} for k, v in got], "meta": meta}


def _multipart_file(req):
    """The `filename` part of a multipart/form-data body -> (file name, bytes) or None."""
    ctype = req.headers.get("content-type", "")
    m = re.search(r'boundary="?([^";]+)"?', ctype)
    if not ctype.startswith("multipart/form-data") or not m:
        return None
    boundary = b"--" + m.group(1).encode()
    for part in req.body.split(boundary)[1:]:
        if part.startswith(b"--"):
            break
        head, sep, data = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        head_text = head.decode("utf-8", "replace")
        nm = re.search(r'name="([^"]*)"', head_text)
        fn = re.search(r'filename="([^"]*)"', head_text)
        if nm and nm.group(1) == "filename" and fn:
            if data.endswith(b"\r\n"):
                data = data[:-2]
            return fn.group(1), data
    return None


def import_users(a_n, req, aid):
    """emqx_authn_user_import_api:authenticator_import_users/2: ?type=plain|hash (anything else,
    or none: hash); application/json: the body is the user list (prepared_user_list); otherwise a
    multipart `filename` file (.json or .csv). 200 {total, success, override, skipped, failed}."""
    ptype = "plain" if req.query.get("type") == "plain" else "hash"
    a, err = a_n.find(aid)
    if req.headers.get("content-type", "").startswith("application/json"):
        filename, data = None, req.json()
    else:
        f = _multipart_file(req)
        if f is None:
            return _plain_error(("missing_parameter", "filename"))
        filename, data = f
    if err:
        return _plain_error(err)
    try:
        res = a_n.import_users(a, ptype, filename, data, override=True)
    except ImportError_ as e:
        return _plain_error(e.reason)
    return _json(200, res)
