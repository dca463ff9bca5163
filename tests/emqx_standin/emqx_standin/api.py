"""The dashboard listener's REST API (the subset of EMQX 5.8's /api/v5 the collection uses).

No auth: GET /status, /api/v5/status (text or ?format=json; 503 + retry-after while not running).
POST /api/v5/login {username, password} -> token. Everything else under /api/v5 needs HTTP Basic
with an API key:secret (from api_key.bootstrap_file) or a Bearer token from /login, as
emqx_dashboard:authorize/2 and emqx_mgmt_auth:authorize/4 decide (API keys are refused on the
users, logout and api_key paths). Unknown paths are 404 before any auth.
"""

import asyncio
import base64
import datetime
import hashlib
import json
import re
import secrets
import ssl
import time
import urllib.parse

from . import VERSION, EDITION
from .broker import Message
from .cluster import NodeDown, DistConn
from .node import check_password

REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 401: "Unauthorized",
           403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 413: "Payload Too Large",
           415: "Unsupported Media Type", 500: "Internal Server Error", 503: "Service Unavailable"}


def _bind_host_port(bind):
    if isinstance(bind, int):
        return "0.0.0.0", bind
    s = str(bind)
    if s.isdigit():
        return "0.0.0.0", int(s)
    if s.startswith("["):
        host, _, port = s[1:].partition("]:")
        return host, int(port)
    host, _, port = s.rpartition(":")
    return host or "0.0.0.0", int(port)


class Request:
    def __init__(self, method, target, headers, body, peer):
        self.method = method
        parsed = urllib.parse.urlsplit(target)
        self.path = urllib.parse.unquote(parsed.path)
        self.raw_path = parsed.path
        self.query = dict(urllib.parse.parse_qsl(parsed.query))
        self.raw_query = parsed.query
        self.headers = headers
        self.body = body
        self.peer = peer

    def json(self):
        if not self.body:
            return {}
        return json.loads(self.body)


def _json(status, obj, headers=None):
    return status, dict({"content-type": "application/json"}, **(headers or {})), json.dumps(obj).encode()


def _error(status, code, message):
    return _json(status, {"code": code, "message": message})


API_KEY_NOT_ALLOW_MSG = "This API Key don't have permission to access this resource"


def _unauthorized(code, message):
    """emqx_dashboard:return_unauthorized/2."""
    return _json(401, {"code": code, "message": message},
                 {"WWW-Authenticate": 'Basic Realm="emqx-dashboard"'})


def _rfc3339(epoch):
    """calendar:system_time_to_rfc3339(Epoch, [{unit, second}]): local time with its offset."""
    t = datetime.datetime.fromtimestamp(int(epoch)).astimezone()
    off = t.strftime("%z")
    return t.strftime("%Y-%m-%dT%H:%M:%S") + off[:3] + ":" + off[3:]


def _base62(data):
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    n, out = int.from_bytes(data, "big"), ""
    while n:
        n, r = divmod(n, 62)
        out = alphabet[r] + out
    return out or "0"


class ApiServer:
    def __init__(self, node):
        self.node = node
        self.servers = []
        self.tokens = {}   # token -> (username, expiry)

    async def start(self):
        d = self.node.conf["dashboard"]["listeners"]
        http = d["http"]
        if http.get("enable", True) and http.get("bind") not in (0, "0"):
            host, port = _bind_host_port(http["bind"])
            self.servers.append(await asyncio.start_server(self._serve, host, port, reuse_address=True))
            self.node.log("info", "dashboard http listener on %s:%d" % (host, port))
        https = d["https"]
        if https.get("bind") not in (0, "0", None) and https.get("enable", True) is not False:
            so = https.get("ssl_options") or {}
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(so.get("certfile"), so.get("keyfile"))
            host, port = _bind_host_port(https["bind"])
            self.servers.append(await asyncio.start_server(self._serve, host, port, ssl=ctx, reuse_address=True))

    async def stop(self):
        for s in self.servers:
            s.close()
        self.servers = []

    def drop_tokens(self, username):
        for t, (u, _) in list(self.tokens.items()):
            if u == username:
                del self.tokens[t]

    # ------------------------------------------------------------------ HTTP plumbing
    async def _serve(self, reader, writer):
        peer = writer.get_extra_info("peername")
        try:
            while True:
                try:
                    line = await asyncio.wait_for(reader.readline(), 60)
                except asyncio.TimeoutError:
                    return
                if not line:
                    return
                try:
                    method, target, version = line.decode("latin-1").strip().split(" ", 2)
                except ValueError:
                    return
                headers = {}
                while True:
                    h = await asyncio.wait_for(reader.readline(), 30)
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = h.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                n = int(headers.get("content-length", "0") or 0)
                if n > 10 * 1024 * 1024:
                    await self._write(writer, *_error(413, "BAD_REQUEST", "body too large"), keep=False)
                    return
                body = await reader.readexactly(n) if n else b""
                req = Request(method.upper(), target, headers, body, peer)
                try:
                    status, rheaders, rbody = await self.dispatch(req)
                except json.JSONDecodeError:
                    status, rheaders, rbody = _error(400, "BAD_REQUEST", "invalid JSON body")
                except Exception as e:  # keep serving
                    self.node.log("error", "api %s %s failed: %r" % (method, target, e))
                    status, rheaders, rbody = _error(500, "INTERNAL_ERROR", repr(e))
                keep = version.upper() == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
                await self._write(writer, status, rheaders, rbody, keep, head=req.method == "HEAD")
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError, OSError):
            return
        finally:
            try:
                writer.close()
            except Exception:
                pass

    async def _write(self, writer, status, headers, body, keep, head=False):
        lines = ["HTTP/1.1 %d %s" % (status, REASONS.get(status, "Unknown"))]
        headers = dict(headers)
        headers.setdefault("server", "Cowboy")
        headers["content-length"] = str(len(body))
        headers["connection"] = "keep-alive" if keep else "close"
        headers["date"] = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())
        for k, v in headers.items():
            lines.append("%s: %s" % (k, v))
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head else body))
        await writer.drain()

    # ------------------------------------------------------------------ routing
    # (path pattern, methods, api-key resource refused by emqx_mgmt_auth:authorize/4 or None).
    # `{x}` matches one path segment. Paths not listed are 404 before any auth, as EMQX's
    # emqx_dashboard_not_found catch-all.
    ROUTES = [
        ("login", {"POST"}, None),
        ("logout", {"POST"}, "logout"),
        ("users", {"GET"}, "users"),
        ("users/{}", {"DELETE"}, "users"),
        ("users/{}/change_pwd", {"POST"}, None),
        ("api_key", {"GET", "POST"}, "api_key"),
        ("api_key/{}", {"GET", "DELETE"}, "api_key"),
        ("nodes", {"GET"}, None),
        ("nodes/{}", {"GET"}, None),
        ("cluster", {"GET"}, None),
        ("cluster/{}/invite", {"PUT"}, None),
        ("cluster/{}/force_leave", {"DELETE"}, None),
        ("clients", {"GET"}, None),
        ("clients/{}", {"GET"}, None),
        ("listeners", {"GET"}, None),
        ("publish", {"POST"}, None),
        ("status", {"GET"}, None),
        ("authentication", {"GET"}, None),
        ("authentication/{}", {"GET"}, None),
        ("authentication/{}/users", {"GET", "POST"}, None),
        ("authentication/{}/users/{}", {"GET", "PUT", "DELETE"}, None),
        ("authentication/{}/import_users", {"POST"}, None),
        ("rules", {"GET", "POST"}, None),
        ("rules/{}", {"GET", "DELETE"}, None),
        ("prometheus/stats", {"GET"}, None),
    ]

    def _route(self, parts):
        for pattern, methods, refused in self.ROUTES:
            pp = pattern.split("/")
            if len(pp) == len(parts) and all(x == "{}" or x == y for x, y in zip(pp, parts)):
                return pattern, methods, refused
        return None

    async def dispatch(self, req):
        path = req.path.rstrip("/") or "/"
        method = "GET" if req.method == "HEAD" else req.method
        if path == "/status":
            if method != "GET":
                return _error(405, "METHOD_NOT_ALLOWED", "Method not allowed")
            return self.status(req)
        if not path.startswith("/api/v5/"):
            if path in ("/", "/index.html"):
                return 200, {"content-type": "text/html"}, b"<html><body>EMQX Dashboard (stand-in)</body></html>"
            return _error(404, "NOT_FOUND", "Request Path Not Found")
        # split the raw path, then decode each segment (cowboy_router), so %2F stays inside a binding
        raw = req.raw_path.rstrip("/")
        parts = [urllib.parse.unquote(x) for x in raw[len("/api/v5/"):].split("/")] \
            if raw.startswith("/api/v5/") else path[len("/api/v5/"):].split("/")
        route = self._route(parts)
        if route is None:
            return _error(404, "NOT_FOUND", "Request Path Not Found")
        pattern, methods, refused = route
        if method not in methods:
            return _error(405, "METHOD_NOT_ALLOWED", "Method not allowed")
        if pattern == "status":                      # security => []
            return self.status(req)
        if pattern == "login":
            return self.login(req)
        from . import prometheus     # emqx_prometheus_api.erl: security => [] unless enable_basic_auth
        if pattern == "prometheus/stats" and not prometheus.basic_auth_enabled(self.node):
            return await prometheus.stats(self, req)
        who, err = self.authenticate(req, refused)
        if err:
            return err
        role = who[1]
        if role == "viewer" and method != "GET":
            return _error(403, "UNAUTHORIZED_ROLE", API_KEY_NOT_ALLOW_MSG)
        if role == "publisher" and parts[0] != "publish":
            return _error(403, "UNAUTHORIZED_ROLE", API_KEY_NOT_ALLOW_MSG)
        if pattern == "nodes":
            return _json(200, await self.nodes())
        if pattern == "nodes/{}":
            for n in await self.nodes():
                if n["node"] == parts[1]:
                    return _json(200, n)
            return _error(404, "NOT_FOUND", "Node not found")
        if pattern == "cluster":
            c = self.node.cluster
            return _json(200, {"name": self.node.conf["cluster"]["name"], "nodes": c.running_nodes(),
                               "self": self.node.name})
        if pattern == "cluster/{}/invite":
            return await self.invite(req, parts[1])
        if pattern == "cluster/{}/force_leave":
            return await self.force_leave(parts[1])
        if pattern == "clients":
            return await self.clients(req)
        if pattern == "clients/{}":
            for c in await self.all_clients():
                if c.get("clientid") == parts[1]:
                    return _json(200, c)
            return _error(404, "CLIENTID_NOT_FOUND", "Client ID not found")
        if pattern == "users/{}/change_pwd":
            return self.change_pwd(req, parts[1])
        if pattern == "users":
            return _json(200, self.users())
        if pattern == "users/{}":
            return self.delete_user(req, parts[1], who)
        if pattern == "logout":
            return self.logout(req, who)
        if pattern == "api_key":
            return self.api_key_list() if method == "GET" else self.api_key_create(req)
        if pattern == "api_key/{}":
            return self.api_key_by_name(method, parts[1])
        if pattern == "listeners":
            return _json(200, self.listeners())
        if pattern == "publish":
            return self.publish(req)
        if pattern == "prometheus/stats":
            return await prometheus.stats(self, req)
        if pattern.startswith("rules"):
            from . import rules_api
            return await rules_api.handle(self.node, req, method, pattern, parts)
        if pattern.startswith("authentication"):
            from . import authn_api
            return authn_api.handle(self.node, req, method, pattern, parts)
        return _error(404, "NOT_FOUND", "Request Path Not Found")

    def authenticate(self, req, refused=None):
        """emqx_dashboard:authorize/2 (and emqx_mgmt_auth:authorize/4 for Basic): (who, None) or
        (None, error response)."""
        auth = req.headers.get("authorization", "")
        scheme, _, cred = auth.strip().partition(" ")
        scheme = scheme.lower()
        cred = cred.strip()
        if scheme == "basic" and cred:
            try:
                key, sep, secret = base64.b64decode(cred, validate=True).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                key, sep, secret = "", "", ""
            if not sep:
                return None, _error(400, "BAD_REQUEST", "Malformed authorization header")
            if refused:
                return None, _unauthorized(
                    "API_KEY_NOT_ALLOW", "Please use bearer Token instead, using API key/secret in %s path "
                    "is not permitted" % refused)
            _, rec = self.node.find_api_key(key)
            expired_at = rec.get("expired_at", "infinity") if rec else None
            if (rec and rec.get("enable", True) and check_password(rec, secret)
                    and (expired_at in ("infinity", None) or expired_at >= int(time.time()))):
                return (key, rec.get("role", "administrator")), None
            return None, _unauthorized("BAD_API_KEY_OR_SECRET", "Check api_key/api_secret")
        if scheme == "bearer" and cred:
            tok = self.tokens.get(cred)
            if tok is None:
                return None, _error(401, "BAD_TOKEN", "Get a token by POST /login")
            user = self.node.get_user(tok[0])
            if tok[1] <= time.time() or user is None:
                return None, _error(401, "TOKEN_TIME_OUT", "Token expired, get new token by POST /login")
            return (tok[0], user.get("role", "administrator"), cred), None
        return None, _unauthorized("AUTHORIZATION_HEADER_ERROR", "Support authorization: basic/bearer ")

    # ------------------------------------------------------------------ handlers
    def status(self, req):
        """emqx_mgmt_api_status.erl: exactly node_name, rel_vsn, broker_status, app_status."""
        n = self.node
        running = n.status == "running"
        fmt = req.query.get("format", "text")
        broker_status = "started" if running else "stopped"
        app_status = "running" if running else "not_running"
        headers = {"retry-after": "15"}
        if fmt == "json":
            body = json.dumps({"node_name": n.name,
                               "rel_vsn": ("e" if EDITION == "enterprise" else "v") + VERSION,
                               "broker_status": broker_status, "app_status": app_status}).encode()
            headers["content-type"] = "application/json"
        else:
            body = ("Node %s is %s\nemqx is %s" % (n.name, broker_status, app_status)).encode()
            headers["content-type"] = "text/plain"
        return (200 if running else 503), headers, body

    def login(self, req):
        """emqx_dashboard_api:login/2; open source drops `role` from the reply (filter_result)."""
        try:
            body = req.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        username = str(body.get("username", ""))
        password = str(body.get("password", ""))
        rec = self.node.get_user(username)
        if not rec or not check_password(rec, password):
            return _error(401, "BAD_USERNAME_OR_PWD", "Auth failed")
        token = secrets.token_urlsafe(32)
        ttl = self.node.conf["dashboard"].get("token_expired_time", 3600000) / 1000.0
        self.tokens[token] = (username, time.time() + ttl)
        out = {"token": token, "version": VERSION,
               "license": {"edition": "ee" if EDITION == "enterprise" else "ce"}}
        if EDITION == "enterprise":
            out["role"] = rec.get("role", "administrator")
        return _json(200, out)

    def logout(self, req, who):
        body = req.json() or {}
        username = body.get("username") if isinstance(body, dict) else None
        tok = self.tokens.get(who[2]) if len(who) > 2 else None
        if tok and tok[0] == username:
            del self.tokens[who[2]]
            return 204, {}, b""
        return _error(401, "WRONG_TOKEN_OR_USERNAME", "Ensure your token & username")

    def users(self):
        out = []
        for name, rec in sorted(self.node.cluster.state["data"]["users"].items()):
            if not rec.get("deleted"):
                u = {"username": name, "description": rec.get("description", "")}
                if EDITION == "enterprise":
                    u["role"] = rec.get("role", "administrator")
                out.append(u)
        return out

    def delete_user(self, req, username, who):
        if username == self.node.conf["dashboard"]["default_username"]:
            return _error(400, "NOT_ALLOWED", 'Cannot delete user <<"%s">>' % username)
        if username == who[0]:
            return _error(400, "NOT_ALLOWED", "Cannot delete self")
        if self.node.get_user(username) is None:
            return _error(404, "USER_NOT_FOUND", "username_not_found")
        self.node.cluster.put_record("users", username, {"deleted": True, "salt": "", "hash": ""})
        self.drop_tokens(username)
        return 204, {}, b""

    def change_pwd(self, req, username):
        """emqx_dashboard_api:change_pwd/2 -> emqx_dashboard_admin:change_password/3."""
        body = req.json()
        if not isinstance(body, dict):
            body = {}
        old, new = body.get("old_pwd"), body.get("new_pwd")
        if old in (None, "") or new in (None, ""):
            return _error(400, "BAD_REQUEST", "Old password or new password undefined")
        rec = self.node.get_user(username)
        if rec is None:
            return _error(404, "USER_NOT_FOUND", "User not found")
        if not check_password(rec, str(old)):
            return _error(400, "ERROR_PWD_NOT_MATCH", "Old password not match")
        err = self.node.change_password(username, str(new))
        if err == "username_not_found":
            return _error(404, "USER_NOT_FOUND", "User not found")
        if err:
            return _error(400, "BAD_REQUEST", err)
        return 204, {}, b""

    # ---- emqx_mgmt_api_api_keys.erl
    @staticmethod
    def _format_app(name, rec):
        """emqx_mgmt_auth:format/1 (open source: format_app_extend removes `role`); no api_secret."""
        expired_at = rec.get("expired_at", "infinity")
        out = {"name": name, "api_key": rec.get("api_key", name),
               "expired_at": "infinity" if expired_at in ("infinity", None) else _rfc3339(expired_at),
               "created_at": _rfc3339(rec.get("created_at", 0)),
               "desc": rec.get("desc", ""), "enable": rec.get("enable", True),
               "expired": expired_at not in ("infinity", None) and expired_at < int(time.time())}
        if EDITION == "enterprise":
            out["role"] = rec.get("role", "administrator")
        return out

    def api_key_list(self):
        return _json(200, [self._format_app(n, r) for n, r in sorted(self.node.api_apps().items())])

    def api_key_by_name(self, method, name):
        if not (0 < len(name.encode()) <= 256) or not re.match(r"^[A-Za-z]+[A-Za-z0-9-_]*$", name):
            return _error(400, "BAD_REQUEST", "Name should be ^[A-Za-z]+[A-Za-z0-9-_]*$")
        rec = self.node.api_apps().get(name)
        if rec is None:
            return _error(404, "NOT_FOUND", "Name NOT FOUND")
        if method == "DELETE":
            self.node.delete_api_key(name)
            return 204, {}, b""
        return _json(200, self._format_app(name, rec))

    def api_key_create(self, req):
        body = req.json()
        if not isinstance(body, dict):
            return _error(400, "BAD_REQUEST", "body must be an object")
        name = body.get("name")
        if not isinstance(name, str) or not re.match(r"^[A-Za-z]+[A-Za-z0-9-_]*$", name) or len(name) > 256:
            return _error(400, "BAD_REQUEST", "Name should be ^[A-Za-z]+[A-Za-z0-9-_]*$")
        role = body.get("role", "administrator")
        from .node import API_ROLES, hash_password
        if role not in API_ROLES:
            return _error(400, "BAD_REQUEST", '<<"Role does not exist">>')
        apps = self.node.api_apps()
        if len(apps) >= 100:
            return _error(400, "BAD_REQUEST", '"Maximum number of ApiKeys reached."')
        api_key = hashlib.sha512(name.encode()).hexdigest()[:16]
        if name in apps:
            return _error(400, "BAD_REQUEST", "name_already_existed")
        if any(r.get("api_key", n) == api_key for n, r in apps.items()):
            return _error(400, "BAD_REQUEST", "api_key_already_existed")
        secret = _base62(secrets.token_bytes(32))
        salt, h = hash_password(secret)
        expired_at = body.get("expired_at")
        rec = {"api_key": api_key, "salt": salt, "hash": h, "enable": bool(body.get("enable", True)),
               "desc": str(body.get("desc", "")), "role": role,
               "expired_at": expired_at if isinstance(expired_at, int) else "infinity",
               "created_at": int(time.time())}
        self.node.cluster.put_record("api_keys", name, rec)
        return _json(200, dict(self._format_app(name, rec), api_secret=secret))

    async def _peer_call(self, peer, op, timeout=5.0, **args):
        c = self.node.cluster
        conn = await DistConn.open(self.node.name, c.cookie, peer, inet6=c.inet6)
        try:
            return await conn.call(op, timeout=timeout, **args)
        finally:
            conn.close()

    async def nodes(self):
        """emqx_mgmt:list_nodes/0: node_info of every running node (mria:running_nodes/0, sorted: cores
        and replicants, `role` core|replicant), then the stopped ones (cluster_nodes(stopped): cores only)
        as {node, node_status: stopped, role: core}. A running node whose node_info call fails is left
        out (the list comprehension's pattern drops the error)."""
        c = self.node.cluster

        async def one(p):
            if p == self.node.name:
                return self.node.node_info()
            try:
                return (await self._peer_call(p, "node_info"))["info"]
            except (NodeDown, RuntimeError, KeyError):
                return None
        running = await asyncio.gather(*(one(p) for p in c.running_nodes()))
        out = [i for i in running if i is not None]
        out += [{"node": p, "node_status": "stopped", "role": "core"} for p in c.stopped_nodes()]
        return out

    async def invite(self, req, target):
        if "@" not in target:
            return _error(400, "BAD_REQUEST", "Bad node name")
        try:
            body = req.json()
        except ValueError:
            body = {}
        timeout = body.get("timeout", 15000) if isinstance(body, dict) else 15000
        if not isinstance(timeout, int) or isinstance(timeout, bool):
            return _error(400, "BAD_REQUEST", "timeout must be an integer")
        if timeout < 5000:
            return _error(400, "BAD_REQUEST", "timeout cannot be less than 5000ms")
        if target == self.node.name:
            return _error(400, "BAD_REQUEST", "Cannot invite self")
        try:
            r = await self._peer_call(target, "join_cluster", timeout=timeout / 1000.0, target=self.node.name)
        except (NodeDown, RuntimeError):
            return _error(400, "BAD_REQUEST", "nodedown")
        if r.get("result") == "ok":
            return 200, {"content-type": "application/json"}, b""
        if r.get("result") == "ignore":
            return _error(400, "BAD_REQUEST", "Cannot invite self")
        return _error(400, "BAD_REQUEST", r.get("reason", "error"))

    async def force_leave(self, target):
        if "@" not in target:
            return _error(400, "BAD_REQUEST", "Bad node name")
        r = await self.node.cluster.force_leave(target)
        if r == "ok":
            return 204, {}, b""
        if r == "ignore":
            return _error(400, "BAD_REQUEST", "Can't leave self")
        return _error(400, "BAD_REQUEST", r[1])

    async def all_clients(self):
        c = self.node.cluster
        out = list(self.node.broker.clients())

        async def one(p):
            try:
                return (await self._peer_call(p, "clients", timeout=10.0))["clients"]
            except (NodeDown, RuntimeError, KeyError):
                return []
        for lst in await asyncio.gather(*(one(p) for p in c.running_peers())):
            out.extend(lst)
        return out

    async def clients(self, req):
        q = req.query
        items = await self.all_clients()
        for key in ("clientid", "username", "ip_address", "node", "proto_ver", "clean_start", "conn_state"):
            if key in q:
                items = [c for c in items if str(c.get(key)).lower() == q[key].lower()
                         or (key == "conn_state" and q[key] == "connected" and c.get("connected", True))]
        if "like_clientid" in q:
            items = [c for c in items if q["like_clientid"] in str(c.get("clientid", ""))]
        if "like_username" in q:
            items = [c for c in items if q["like_username"] in str(c.get("username") or "")]
        try:
            page = max(1, int(q.get("page", 1)))
            limit = max(1, min(10000, int(q.get("limit", 100))))
        except ValueError:
            return _error(400, "BAD_REQUEST", "bad page or limit")
        total = len(items)
        chunk = items[(page - 1) * limit: page * limit]
        return _json(200, {"data": chunk, "meta": {"page": page, "limit": limit, "count": total,
                                                   "hasnext": page * limit < total}})

    def listeners(self):
        out = []
        ports = self.node.broker.listener_ports()
        for kind in ("tcp", "ssl", "ws", "wss"):
            for name, lconf in self.node.conf["listeners"].get(kind, {}).items():
                if not isinstance(lconf, dict):
                    continue
                lid = "%s:%s" % (kind, name)
                out.append({"id": lid, "type": kind, "name": name, "enable": lconf.get("enable", True),
                            "bind": lconf.get("bind"), "running": lid in ports,
                            "proxy_protocol": lconf.get("proxy_protocol", False),
                            "max_connections": lconf.get("max_connections")})
        return out

    def publish(self, req):
        body = req.json()
        topic = body.get("topic")
        if not isinstance(topic, str) or not topic:
            return _error(400, "BAD_REQUEST", "topic is required")
        payload = body.get("payload", "")
        if body.get("payload_encoding") == "base64":
            data = base64.b64decode(payload)
        else:
            data = str(payload).encode()
        msg = Message(topic=topic, payload=data, qos=int(body.get("qos", 0)), retain=bool(body.get("retain")),
                      properties={}, origin_node=self.node.name)
        if hasattr(self.node.broker, "publish"):
            self.node.broker.publish(msg)
        return _json(200, {"id": secrets.token_hex(16)})
