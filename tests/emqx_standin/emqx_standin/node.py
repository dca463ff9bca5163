"""One stand-in node: config, logging, broker, cluster, REST API and the `emqx ctl` commands."""

import asyncio
import datetime
import glob
import hashlib
import json
import os
import random
import re
import resource
import secrets
import signal
import sys
import time

from . import EDITION, FAIL_BOOT, VERSION, erlfmt, schema
from .cluster import ClusterManager, parse_name

LEVELS = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"]
DEFAULT_COOKIE = "emqxsecretcookie"
# emqx_mgmt_auth:valid_role/1: open source knows only the default role; enterprise (5.9+) asks
# emqx_dashboard_rbac:valid_api_role/1 (viewer, publisher, administrator)
API_ROLE_DEFAULT = "administrator"
API_ROLES = ("administrator", "viewer", "publisher") if EDITION == "enterprise" else ("administrator",)
# emqx_mgmt_auth:init_bootstrap_file/1 compiles "(.+):(.+)(?::(.+))?$" with [ungreedy]: every
# quantifier is lazy, the optional role group included
_BOOTSTRAP_RE = re.compile(r"(.+?):(.+?)(?::(.+?))??$")
# string:trim/1 trims Unicode white space at both ends
_ERL_WHITESPACE = " \t\n\x0b\x0c\r\x85\u200e\u200f\u2028\u2029"


def _read_lines(raw):
    """file:read_line/1 over the whole file: lines split after each newline."""
    parts = raw.decode("utf-8", "surrogateescape").split("\n")
    return [x + "\n" for x in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def parse_bootstrap_line(line, roles=None):
    """emqx_mgmt_auth:parse_bootstrap_line/2 on a trimmed line: (key, secret, role) or the error reason."""
    m = _BOOTSTRAP_RE.search(line)
    if not m:
        return "invalid_format"
    key, secret, role = m.group(1), m.group(2), m.group(3)
    if role is None:
        return key, secret, API_ROLE_DEFAULT
    if role not in (API_ROLES if roles is None else roles):
        return '{"invalid_role",<<"%s">>}' % role
    return key, secret, role


def bootstrap_name(api_key):
    """generate_unique_name(<<"from_bootstrap_file_">>, ApiKey): the first 16 lowercase hex digits of
    sha512(ApiKey)."""
    return "from_bootstrap_file_" + hashlib.sha512(api_key.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def level_no(level):
    if level == "all":
        return 0
    try:
        return LEVELS.index(level)
    except ValueError:
        return 3


def now_iso():
    return datetime.datetime.now().astimezone().isoformat(timespec="microseconds")


class WrapLog:
    """The file handler as EMQX runs it (apps/emqx/src/config/emqx_config_logger.erl tr_file_handler/1):
    OTP's logger_disk_log_h, a disk_log of type `wrap` (files <path>.1 .. <path>.<rotation_count>, with
    <path>.idx holding the current file and <path>.siz the sizes) when rotation_size is a size, or of type
    `halt` (one file <path>, never rotated) when it is `infinity`. A wrap log moves to the next file (which
    it empties) when an item would take the current one past max_no_bytes, and goes back to .1 after the
    last; reopened, it goes on in the file the index names."""

    def __init__(self, path, size, count):
        self.path, self.size, self.count = path, size, count
        self.fh = None
        if size == "infinity":
            self.fh = open(path, "a", encoding="utf-8", buffering=1)
            return
        self.index = 1
        try:
            with open(path + ".idx", encoding="ascii") as fh:
                self.index = min(max(int(fh.read().strip() or 1), 1), count)
        except (OSError, ValueError):
            pass
        self._open(truncate=False)
        with open(path + ".siz", "w", encoding="ascii") as fh:
            fh.write("%d %d\n" % (size, count))

    def _open(self, truncate):
        if self.fh:
            self.fh.close()
        self.fh = open("%s.%d" % (self.path, self.index), "w" if truncate else "a", encoding="utf-8", buffering=1)
        with open(self.path + ".idx", "w", encoding="ascii") as fh:
            fh.write("%d\n" % self.index)

    def write(self, line):
        if self.size != "infinity":
            data = len(line.encode("utf-8"))
            if self.fh.tell() > 0 and self.fh.tell() + data > self.size:
                self.index = self.index % self.count + 1
                self._open(truncate=True)
        self.fh.write(line)


def format_line(formatter, level, text):
    """emqx_logger_textfmt (`<time> [<level>] <text>`) or emqx_logger_jsonfmt (apps/emqx/src/emqx_logger_jsonfmt.erl:
    one object per line; timestamp_format `auto` gives `time` as epoch microseconds)."""
    if formatter == "json":
        return json.dumps({"time": int(time.time() * 1000000), "level": level, "msg": text}) + "\n"
    return "%s [%s] %s\n" % (now_iso(), level, text)


class Log:
    """EMQX-like log lines to a file and to stderr (the journal under systemd)."""

    def __init__(self):
        self.file = None
        self.file_level = level_no("warning")
        self.file_format = "text"
        self.console = True
        self.console_level = level_no("warning")
        self.console_format = "text"

    def configure(self, conf, foreground):
        lc = conf["log"]["console"]
        self.console = bool(lc.get("enable"))
        self.console_level = level_no(lc.get("level", "warning"))
        self.console_format = lc.get("formatter", "text")
        lf = conf["log"]["file"]
        if isinstance(lf, dict) and "path" not in lf:       # map of named handlers
            lf = lf.get("default") or next(iter(lf.values()), {"enable": False})
        if lf.get("enable"):
            path = schema.interpolate_env(lf.get("path") or "${EMQX_LOG_DIR}/emqx.log")
            try:
                os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
                self.file = WrapLog(path, lf.get("rotation_size", 50 * 1024 * 1024), lf.get("rotation_count", 10))
            except OSError as e:
                self.file = None
                sys.stderr.write("WARNING: cannot open log file %s: %s\n" % (path, e))
            self.file_level = level_no(lf.get("level", "warning"))
            self.file_format = lf.get("formatter", "text")

    def file_only(self, level, text):
        if self.file and level_no(level) >= self.file_level:
            try:
                self.file.write(format_line(self.file_format, level, text))
            except (OSError, ValueError):
                pass

    def __call__(self, level, text):
        n = level_no(level)
        if self.console and n >= self.console_level:
            try:
                sys.stderr.write(format_line(self.console_format, level, text))
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
        self.file_only(level, text)


def hash_password(password, salt=None):
    salt = salt or secrets.token_hex(8)
    return salt, hashlib.sha256((salt + password).encode()).hexdigest()


def check_password(rec, password):
    if not rec:
        return False
    _, h = hash_password(password, rec.get("salt", ""))
    return secrets.compare_digest(h, rec.get("hash", ""))


# emqx_dashboard_admin.erl: ?LETTER, ?NUMBER, ?SPECIAL_CHARS (no backslash among the specials)
_LETTERS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_NUMBERS = frozenset(b"0123456789")
_SPECIALS = frozenset(b"!@#$%^&*()_+-=[]{}\"|;':,./<>?`~ ")
BAD_PASSWORD_LEN = "The range of password length is 8~64"
INVALID_PASSWORD_MSG = ("Bad password. At least two different kind of characters from groups of letters, numbers, "
                        "and special characters. For example, if password is composed from letters, it must "
                        "contain at least one number or a special character.")
NON_ASCII_MSG = "Only ascii characters are allowed in the password"


def _utf8(s):
    return s.encode("utf-8", "surrogateescape") if isinstance(s, str) else bytes(s)


def legal_password(pw):
    """emqx_dashboard_admin:legal_password/1: the length is counted in UTF-8 bytes (binary_to_list),
    8..64; then at least two kinds among letters / digits / ?SPECIAL_CHARS; then ASCII only.
    Returns None when legal, else EMQX's message."""
    b = _utf8(pw)
    if not 8 <= len(b) <= 64:
        return BAD_PASSWORD_LEN
    kinds = sum(1 for group in (_NUMBERS, _LETTERS, _SPECIALS) if any(c in group for c in b))
    if kinds < 2:
        return INVALID_PASSWORD_MSG
    if any(c > 0x7F for c in b):
        return NON_ASCII_MSG
    return None


def legal_username(name):
    """emqx_dashboard_admin:legal_username/1."""
    if name == "":
        return "Username cannot be empty"
    if not re.fullmatch(r"[_a-zA-Z0-9]*", name):
        return "Bad Username. Only upper and lower case letters, numbers and underscores are supported"
    return None


def usage(entries):
    return "".join("%-48s# %s\n" % (cmd, desc) for cmd, desc in entries)


CLUSTER_USAGE = [
    ("cluster join <Node>", "Join the cluster"),
    ("cluster leave", "Leave the cluster"),
    ("cluster force-leave <Node>", "Force the node leave from cluster"),
    ("cluster status [--json]", "Cluster status"),
    ("cluster discovery enable", "Enable and run automatic cluster discovery (if configured)"),
]
ADMINS_USAGE = [
    ("admins add <Username> <Password> <Description>", "Add dashboard user"),
    ("admins passwd <Username> <Password>", "Reset dashboard user password"),
    ("admins del <Username>", "Delete dashboard user"),
]
CLIENTS_USAGE = [
    ("clients list", "List all clients"),
    ("clients show <ClientId>", "Show a client"),
    ("clients kick <ClientId>", "Kick out a client"),
]
ALL_USAGE = [("status", "Show broker status")] + CLUSTER_USAGE + ADMINS_USAGE + CLIENTS_USAGE + [
    ("listeners", "List listeners"),
    ("broker", "Show broker version, uptime and description"),
    ("data import <File>", "Import data from the specified tar archive file"),
    ("data export [--root-keys key1,key2,key3] [--table-sets set1,set2,set3] [--dir out_dir]", "Export data"),
]


class BootError(Exception):
    pass


class StoppedDuringBoot(Exception):
    """`emqx stop` (or SIGTERM) while the boot was still waiting (a replicant waiting for a core)."""


class Node:
    def __init__(self, conf, etc_dir, foreground=True):
        self.conf = conf
        self.etc_dir = etc_dir
        self.name = conf["node"]["name"]
        self.data_dir = os.path.abspath(conf["node"]["data_dir"])
        self.log = Log()
        self.foreground = foreground
        self.status = "booting"
        self.broker = None
        self.cluster = None
        self.authn = None
        self.authz = None
        self.retainer = None
        self.api = None
        self.started_at = time.time()
        self._stop = None
        self.exit_code = 0
        # emqx:is_running/0: EMQX's applications are up (false while booting, and on a replicant whose
        # applications mria stopped for a join or a leave until a core's shards are up again)
        self.apps_running = False
        self._apps_restart = None
        self._retainer_gc = None
        # bin/emqx: -ssl_dist_optfile for inet_tls / inet6_tls (cli.py sets it), None for inet_tcp
        self.ssl_dist_optfile = None

    # ------------------------------------------------------------------ boot
    async def run(self):
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self.request_stop)
            except (NotImplementedError, RuntimeError):
                pass
        self.log.configure(self.conf, self.foreground)
        if getattr(self.conf, "unknown_roots", ()):   # emqx_config:warning_deprecated_root_key/1
            self.log("warning", "msg: config_key_not_recognized, unknown_config_keys: %s"
                     % ",".join(self.conf.unknown_roots))
        try:
            await self._boot()
        except StoppedDuringBoot:
            self.log("warning", "EMQX %s is stopping" % VERSION)
            await self._shutdown()
            return self.exit_code
        except BootError as e:
            self.log("critical", str(e))
            await self._shutdown()
            return 1
        except Exception as e:  # anything unexpected during boot: report and fail like a crashed boot
            self.log("critical", "boot failed: %r" % (e,))
            await self._shutdown()
            return 1
        self.status = "running"
        msg = "EMQX %s is running now!" % VERSION
        self.log.file_only("notice", msg)
        try:
            sys.stdout.write(msg + "\n")
            sys.stdout.flush()
        except (OSError, ValueError):
            pass
        await self._stop.wait()
        self.log("warning", "EMQX %s is stopping" % VERSION)
        await self._shutdown()
        try:
            sys.stdout.write("EMQX %s is stopped\n" % VERSION)
            sys.stdout.flush()
        except (OSError, ValueError):
            pass
        return self.exit_code

    def request_stop(self):
        if self._stop is not None and not self._stop.is_set():
            self.status = "stopping"
            self._stop.set()

    async def _boot(self):
        conf = self.conf
        if FAIL_BOOT:
            raise BootError("emqx_standin: this package was built with --fail-boot (test equipment): it never boots")
        from .cluster import NodeDown, DistConn, set_dist_tls
        if self.ssl_dist_optfile is not None:
            # OTP ssl_dist_sup:start_link/0 reads -ssl_dist_optfile when distribution starts: a file it cannot
            # read or parse stops the VM before EMQX starts. The options themselves are checked by ssl at the
            # first connection in OTP; the stand-in checks them here and refuses the boot (stricter).
            from . import ssldist
            try:
                tls = ssldist.load(self.ssl_dist_optfile)
            except ssldist.OptfileError as e:
                raise BootError("Erlang distribution over TLS (cluster.proto_dist = %s) cannot start with "
                                "-ssl_dist_optfile %s: %s" % (conf["cluster"]["proto_dist"],
                                                             self.ssl_dist_optfile, e))
            for err in tls.errors:
                self.log("error", "TLS distribution: %s (every TLS handshake will fail)" % err)
            set_dist_tls(tls)
        try:
            conn = await DistConn.open("probe%d@%s" % (os.getpid(), self.name.split("@", 1)[1]),
                                       conf["node"]["cookie"], self.name, hidden=True, timeout=1.0)
            conn.close()
            raise BootError("Protocol '%s': the name %s seems to be in use by another Erlang node"
                            % (conf["cluster"]["proto_dist"], self.name))
        except NodeDown:
            pass
        if conf["node"]["cookie"] == DEFAULT_COOKIE:
            for line in ("Default (insecure) Erlang cookie is in use.",
                         "Configure node.cookie in %s/emqx.conf or override from environment variable "
                         "EMQX_NODE__COOKIE" % self.etc_dir,
                         "NOTE: Use the same cookie for all nodes in the cluster."):
                self.log.file_only("warning", line)
                try:
                    sys.stderr.write("WARNING: %s\n" % line)
                except (OSError, ValueError):
                    pass
        try:
            os.makedirs(os.path.join(self.data_dir, "configs"), exist_ok=True)
            self._write_vm_args()
        except OSError as e:
            raise BootError("cannot write to node.data_dir %s: %s" % (self.data_dir, e))
        if EDITION == "opensource" and conf["cluster"]["discovery_strategy"] == "singleton":
            pass
        self.cluster = ClusterManager(self)
        try:
            self.cluster.load()
        except OSError as e:
            raise BootError("cannot open mnesia dir %s: %s" % (self.cluster.state_dir, e))
        try:
            self.cluster.rpc_tls_check()
        except RuntimeError as e:
            raise BootError(str(e))
        try:
            await self.cluster.start_ekka()
        except RuntimeError as e:
            raise BootError("{application_start_failure,emqx_machine,...}: ekka did not start: %s" % e)
        if self.cluster.role == "replicant":
            await self._boot_replicant()
            return
        self._ensure_default_user()
        self._load_bootstrap_keys()
        self._init_access_control()
        from .broker import Broker
        from .retainer import Retainer
        self.broker = Broker(self.name, self.broker_listeners(), self.broker_mqtt(), self.cluster.forward, self.log)
        self.broker.authn = self.authn
        self.broker.authz = self.authz
        self.broker.durable = self._durable_store(conf)
        # emqx_retainer: the emqx_retainer_message table, cluster-wide (loaded in cluster.start())
        self.retainer = Retainer(conf["retainer"], self.log, disc_dir=self.cluster.state_dir)
        self.retainer.replicate = self.cluster.replicate_retained
        self.broker.retainer = self.retainer
        try:
            await self.broker.start()
        except Exception as e:
            raise BootError("failed_to_start_listeners: %s" % (e,))
        from .api import ApiServer
        self.api = ApiServer(self)
        try:
            await self.api.start()
        except Exception as e:
            raise BootError("failed_to_start_dashboard_listener: %s" % (e,))
        try:
            await self.cluster.start()
        except RuntimeError as e:
            raise BootError(str(e))
        if self.retainer.enabled and self.retainer.clear_interval > 0:
            self._retainer_gc = asyncio.ensure_future(self._retainer_gc_loop())
        self.apps_running = True

    # ------------------------------------------------------------------ replicant boot
    async def _until_stopped(self, coro):
        """Await `coro`, or raise StoppedDuringBoot when a stop is requested first."""
        task = asyncio.ensure_future(coro)
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            done, _ = await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if task not in done:
            task.cancel()
            raise StoppedDuringBoot()
        return task.result()

    async def _boot_replicant(self):
        """A replicant boots as EMQX's does: the Erlang node, mria and ekka are up (`emqx ping` answers,
        `emqx ctl` works, `ctl status` says starting) while emqx_machine_boot:post_boot/0 starts the
        applications; the first one, emqx_conf (emqx_conf_app:start/2), waits for its tables, i.e. for a
        core's shards (forever if there is none), then copies the cluster config from a core
        (sync_cluster_conf/0: a replicant never boots without it). No listener, no dashboard before."""
        self.cluster.rlb.on_shards_up = self._on_shards_up
        try:
            await self.cluster.start_replicant()
        except RuntimeError as e:
            raise BootError(str(e))
        await self._until_stopped(self.cluster.rlb.shards_up.wait())
        await self._until_stopped(self._sync_cluster_conf())
        await self._start_apps()

    async def _start_apps(self):
        """emqx_machine_boot:ensure_apps_started/0 on a replicant (its first boot, and after mria restarted
        for a join or a leave): every application from the current config."""
        from .broker import Broker
        from .retainer import Retainer
        from .api import ApiServer
        conf = self.conf
        self._ensure_default_user()
        self._load_bootstrap_keys()
        self._init_access_control()
        self.broker = Broker(self.name, self.broker_listeners(), self.broker_mqtt(), self.cluster.forward, self.log)
        self.broker.authn = self.authn
        self.broker.authz = self.authz
        self.broker.durable = self._durable_store(conf)
        self.retainer = Retainer(conf["retainer"], self.log, disc_dir=self.cluster.state_dir)
        self.retainer.replicate = self.cluster.replicate_retained
        self.broker.retainer = self.retainer
        await self.cluster.copy_retained(prefer=self.cluster.rlb.upstream)
        try:
            await self.broker.start()
        except Exception as e:
            raise BootError("failed_to_start_listeners: %s" % (e,))
        self.api = ApiServer(self)
        try:
            await self.api.start()
        except Exception as e:
            raise BootError("failed_to_start_dashboard_listener: %s" % (e,))
        if self.retainer.enabled and self.retainer.clear_interval > 0:
            self._retainer_gc = asyncio.ensure_future(self._retainer_gc_loop())
        self.apps_running = True

    async def stop_apps_for_mria_restart(self):
        """emqx_machine_boot:stop_apps/0, the stop callback of a mria restart (join, leave): listeners,
        dashboard and sessions go; they come back when the applications start again."""
        if self._apps_restart is not None:
            self._apps_restart.cancel()
            self._apps_restart = None
        if not self.apps_running:
            return
        self.log("notice", "msg: stopping_emqx_apps")
        self.apps_running = False
        if self._retainer_gc is not None:
            self._retainer_gc.cancel()
            self._retainer_gc = None
        if self.api is not None:
            await self.api.stop()
            self.api = None
        if self.broker is not None:
            try:
                await self.broker.stop()
            except Exception:
                pass
            self.broker = None
        if self.retainer is not None:
            self.retainer.close()
            self.retainer = None

    def _on_shards_up(self):
        """mria_sup post_init: once a core's shards are up after a mria restart, the start callback
        starts the applications again (at the first boot _boot_replicant does it)."""
        if self.status == "running" and not self.apps_running and self._apps_restart is None:
            self._apps_restart = asyncio.ensure_future(self._restart_apps())

    async def _restart_apps(self):
        try:
            self.log("notice", "msg: (re)starting_emqx_apps")
            await self._sync_cluster_conf()
            await self._start_apps()
        except BootError as e:
            self.log("critical", str(e))
            self.exit_code = 1
            self.request_stop()
        except asyncio.CancelledError:
            raise
        finally:
            self._apps_restart = None

    async def _sync_cluster_conf(self):
        """emqx_conf_app:sync_cluster_conf/0 on a replicant: ask every core (mria:cluster_nodes(cores));
        none ready: warning sync_cluster_conf_retry and again in 10-12 s; cores running a newer
        release are skipped (all of them: warning all_available_nodes_running_newer_version, no copy);
        else the one with the longest uptime (the stand-in has no cluster_rpc tnx_id) gives its
        cluster.hocon (emqx_config:save_to_override_conf/3: written with EMQX's header, the previous
        file kept as .bak) and its data_dir authz/ and certs/ files (sync_data_from_node/1); the
        config is then loaded again (emqx_config:init_load/1)."""
        from . import rlog
        from .cluster import NodeDown
        while True:
            nodes = [n for n in self.cluster.core_nodes() if n != self.name]
            if not nodes:
                self.log("info", "msg: skip_sync_cluster_conf, reason: This is a single node, or the first "
                         "node in the cluster")
                return

            async def one(n):
                try:
                    return n, await self.cluster._call(n, "conf_sync", timeout=15.0)
                except (NodeDown, RuntimeError) as e:
                    return n, {"failed": str(e)}
            results = await asyncio.gather(*(one(n) for n in nodes))
            ready = [(n, r) for n, r in results if r.get("ok")]
            not_ready = [n for n, r in results if not r.get("ok")]
            if not_ready:
                self.log("warning", "msg: cluster_config_fetch_failures, peer_nodes: %s, self_node: %s, "
                         "failed_nodes: %s" % (erlfmt.term_list(nodes), erlfmt.atom(self.name),
                                               erlfmt.term_list(not_ready)))
            if ready:
                break
            delay = rlog.CONF_SYNC_DELAY + random.uniform(0.001, rlog.CONF_SYNC_JITTER)
            self.log("warning", "msg: sync_cluster_conf_retry, peer_nodes: %s, self_node: %s, role: replicant, "
                     "explain: Cannot boot alone due to potentially stale data. Will try sync cluster config "
                     "again after delay, delay: %d" % (erlfmt.term_list(nodes), erlfmt.atom(self.name),
                                                       int(delay * 1000)))
            await asyncio.sleep(delay)
        usable = [(n, r) for n, r in ready if rlog.is_older_or_same_version(r.get("release", ""))]
        if not usable:
            versions = ",".join('#{node => %s,version => "%s"}' % (erlfmt.atom(n), r.get("release"))
                                for n, r in ready)
            self.log("warning", "msg: all_available_nodes_running_newer_version, explain: Booting this node "
                     "without syncing cluster config from core nodes because other nodes are running a newer "
                     "version, versions: [%s]" % versions)
            return
        node, info = sorted(usable, key=lambda x: -int(x[1].get("wall_clock", 0)))[0]
        from .backup import write_cluster_hocon_raw
        write_cluster_hocon_raw(self, info.get("conf") or {})
        rlog.write_data_files(self.data_dir, info.get("files") or {})
        self.log("info", "msg: sync_cluster_conf_success, synced_from_node: %s, local_release: %s, "
                 "remote_release: %s, data_dir: %s" % (erlfmt.atom(node), rlog.release_with_prefix(),
                                                       info.get("release"), self.data_dir))
        try:
            self.conf = schema.load_config(self.etc_dir)
        except schema.ConfigError as e:
            # init_load/1 crashes: emqx_conf_app logs failed_to_load_config and the node exits 1
            raise BootError("msg: failed_to_load_config, reason: %s" % e.describe())

    def conf_sync_info(self):
        """emqx_conf_app:get_override_config_file/0 and sync_data_from_node/0, for a replicant."""
        from . import hocon, rlog
        if self.status != "running":
            return {"ok": False, "msg": "init_conf_load_not_done"}
        path = os.path.join(self.data_dir, "configs", "cluster.hocon")
        conf = {}
        if os.path.exists(path):
            try:
                conf = hocon.parse_file(path, include_dirs=[os.path.dirname(path)])
            except hocon.HoconError:
                conf = {}
        return {"ok": True, "conf": conf, "release": rlog.release_with_prefix(),
                "wall_clock": int((time.time() - self.started_at) * 1000),
                "files": rlog.collect_data_files(self.data_dir)}

    def _durable_store(self, conf):
        """durable_sessions.enable (read once at boot: emqx_persistent_message:init/0; a hot update is refused)
        with the storage backend of durable_storage.messages: builtin_local, the only one of the open-source
        build and the one the stand-in implements (durable.py); the enterprise default builtin_raft is not."""
        ds = conf.get("durable_sessions") or {}
        if not ds.get("enable", False):
            return None
        default = "builtin_raft" if EDITION == "enterprise" else "builtin_local"
        backend = ((conf.get("durable_storage") or {}).get("messages") or {}).get("backend", default)
        if backend != "builtin_local":
            raise BootError("emqx_standin: durable_storage.messages.backend = %s is not implemented by the stand-in "
                            "(builtin_local only)" % backend)
        from .broker import _duration
        from .durable import DurableStore
        self.log("notice", "Session durability is enabled")
        return DurableStore(self.data_dir, _duration(ds.get("message_retention_period"), 86400.0) or 86400.0, self.log)

    async def _retainer_gc_loop(self):
        """emqx_retainer: every msg_clear_interval start emqx_retainer_gc, which does the work only on the
        first of the sorted running core nodes (is_responsible/0)."""
        while True:
            await asyncio.sleep(self.retainer.clear_interval / 1000.0)
            cores = self.cluster.running_core_nodes() if self.cluster else []
            if cores and cores[0] == self.name:
                complete, n = self.retainer.clear_expired(limit=self.retainer.clear_limit)
                self.log("debug", "msg: emqx_retainer_cleared_expired, complete: %s, n_cleared: %d"
                         % ("true" if complete else "false", n))

    async def _shutdown(self):
        gc = getattr(self, "_retainer_gc", None)
        if gc is not None:
            gc.cancel()
        if self._apps_restart is not None:
            self._apps_restart.cancel()
        if self.api:
            try:
                await self.api.stop()
            except Exception:
                pass
        if self.cluster:
            await self.cluster.stop()
        if self.broker:
            try:
                await self.broker.stop()
            except Exception:
                pass
        if self.retainer:
            self.retainer.close()

    def _write_vm_args(self):
        cfg_dir = os.path.join(self.data_dir, "configs")
        stamp = time.strftime("%Y.%m.%d.%H.%M.%S")
        path = os.path.join(cfg_dir, "vm.%s.args" % stamp)
        text = "-name %s\n-setcookie %s\n+P %d\n+Q %d\n" % (
            self.name, self.conf["node"]["cookie"], self.conf["node"]["process_limit"],
            self.conf["node"]["max_ports"])
        fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(path + ".tmp", path)
        # what bin/emqx appends to the boot command (`-ekka_proto_dist`, `-emqx_data_dir`, and
        # `-ssl_dist_optfile` in the VM args for inet_tls), where its non-boot commands find them in `ps -ef`;
        # the stand-in's CLI reads this file instead
        line = "-ekka_proto_dist %s -emqx_data_dir %s" % (self.conf["cluster"]["proto_dist"], self.data_dir)
        if self.ssl_dist_optfile is not None:
            line = "-ssl_dist_optfile %s %s" % (self.ssl_dist_optfile, line)
        with open(os.path.join(cfg_dir, "standin.cmdline.tmp"), "w") as fh:
            fh.write(line + "\n")
        os.replace(os.path.join(cfg_dir, "standin.cmdline.tmp"), os.path.join(cfg_dir, "standin.cmdline"))
        for old in sorted(glob.glob(os.path.join(cfg_dir, "vm.*.args")))[:-3]:
            if old != path:
                try:
                    os.unlink(old)
                except OSError:
                    pass

    # ------------------------------------------------------------------ broker config
    def broker_listeners(self):
        out = {}
        for kind in ("tcp", "ssl", "ws", "wss"):
            group = {}
            for name, lconf in self.conf["listeners"].get(kind, {}).items():
                if lconf == "marked_for_deletion":
                    group[name] = "marked_for_deletion"
                    continue
                group[name] = schema.seconds_view(schema.LISTENERS.fields[kind].type.inner.inner, lconf)
            out[kind] = group
        return out

    def broker_mqtt(self):
        return schema.seconds_view(schema.MQTT, self.conf["mqtt"])

    # ------------------------------------------------------------------ data: users and keys
    def _ensure_default_user(self):
        d = self.conf["dashboard"]
        user, pw = d["default_username"], d["default_password"]
        if user and pw and self.get_user(user) is None:
            salt, h = hash_password(pw)
            self.cluster.put_record("users", user, {"salt": salt, "hash": h, "role": "administrator",
                                                    "description": "administrator"})
            self.log("info", "dashboard user %s created" % user)

    def _load_bootstrap_keys(self):
        """emqx_mgmt_auth:try_init_bootstrap_file/0 (core nodes only, at every start)."""
        if self.conf["node"].get("role", "core") != "core":
            return
        path = self.conf["api_key"].get("bootstrap_file") or ""
        if not path:
            return
        path = schema.interpolate_env(str(path))
        try:
            with open(path, "rb") as fh:
                raw = fh.read()
        except OSError as e:
            self.log("error", "msg: failed_to_open_the_bootstrap_file, file: %s, reason: %s"
                     % (path, (e.strerror or str(e)).lower()))
            return
        for lineno, text in enumerate(_read_lines(raw), 1):
            line = text.strip(_ERL_WHITESPACE)
            if not line:
                continue
            parsed = parse_bootstrap_line(line)
            if isinstance(parsed, str):
                # the first bad line stops loading: it and every later line are not loaded
                self.log("error", "msg: failed_to_load_bootstrap_file, file: %s, line: %d, content: %s, "
                         "reason: %s" % (path, lineno, line, parsed))
                return
            self.force_create_app(*parsed)

    def api_apps(self):
        """The emqx_app table: name -> record (api_key, salt, hash, enable, desc, role, expired_at,
        created_at); deleted names are tombstones."""
        return {n: r for n, r in self.cluster.state["data"]["api_keys"].items() if not r.get("deleted")}

    def find_api_key(self, key):
        for name, rec in self.api_apps().items():
            if rec.get("api_key", name) == key:
                return name, rec
        return None, None

    def delete_api_key(self, name):
        if name not in self.api_apps():
            return False
        self.cluster.put_record("api_keys", name, {"deleted": True})
        return True

    def force_create_app(self, api_key, secret, role):
        """emqx_mgmt_auth:force_create_app/1 with maybe_cleanup_api_key/1: insert or overwrite the
        record named after the key; other names holding the same key are deleted. Never deletes a
        key that is no longer in the file."""
        name = bootstrap_name(api_key)
        for other, rec in self.api_apps().items():
            if rec.get("api_key", other) == api_key and other != name:
                self.cluster.put_record("api_keys", other, {"deleted": True})
        salt, h = hash_password(secret)
        self.cluster.put_record("api_keys", name, {
            "api_key": api_key, "salt": salt, "hash": h, "enable": True, "desc": "Bootstrapped From File",
            "role": role, "expired_at": "infinity", "created_at": int(time.time())})

    def after_join(self):
        """Joining replaced local data with the cluster's (dashboard users, API keys, the built-in
        database's MQTT users). mria restarts the apps after a join (emqx_machine_boot registers
        stop_apps/ensure_apps_started as ekka callbacks), so the authenticators are created again and
        their bootstrap files imported again with override=false into the cluster's table."""
        if self.authn is not None:
            self.authn.bootstrap()

    def _init_access_control(self):
        """emqx_authn_chains (authenticators + bootstrap files) and emqx_authz (sources). A file
        source that cannot be read or compiled fails the config check of its `path`
        (emqx_authz_file_schema: validator emqx_authz_file:validate/1): the node does not boot."""
        from . import acl
        from .authn import Authn, Authz
        self.authn = Authn(self, self.conf["authentication"])
        self.authn.bootstrap()
        az = self.conf["authorization"]
        for i, src in enumerate(az.get("sources") or []):
            path = schema.interpolate_env(src["path"])
            try:
                src["_rules"] = acl.load_rules(path)
            except acl.AclError as e:
                if e.kind == "failed_to_read_acl_file":
                    self.log("critical", "msg: failed_to_read_acl_file, path: %s, explain: %s" % (path, e.detail))
                elif e.kind == "bad_acl_file_content":
                    self.log("critical", "msg: bad_acl_file_content, path: %s, reason: %s" % (path, e.detail))
                raise BootError('failed_to_check_schema: #{kind => validation_error, path => '
                                '"authorization.sources.%d.path", reason => %s, value => "%s"}'
                                % (i + 1, e, src["path"]))
        self.authz = Authz(az, self.log)

    # ------------------------------------------------------------------ info
    def node_info(self):
        clients = self.broker.clients() if self.broker else []
        try:
            max_fds = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        except (ValueError, OSError):
            max_fds = 1024
        try:
            load1, load5, load15 = os.getloadavg()
        except OSError:
            load1 = load5 = load15 = 0.0
        mem_used = 0
        try:
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        mem_used = int(line.split()[1]) * 1024
        except OSError:
            pass
        mem_total = 0
        try:
            with open("/proc/meminfo") as fh:
                for line in fh:
                    if line.startswith("MemTotal:"):
                        mem_total = int(line.split()[1]) * 1024
        except OSError:
            pass
        return {
            "node": self.name,
            "node_status": "running",
            "version": VERSION,
            "edition": "Enterprise" if EDITION == "enterprise" else "Opensource",
            "role": self.cluster.role if self.cluster else self.conf["node"]["role"],   # mria_rlog:role()
            "connections": len(clients),
            "live_connections": sum(1 for c in clients if c.get("connected", True)),
            "cluster_sessions": len(clients),
            "uptime": int((time.time() - self.started_at) * 1000),
            "max_fds": max_fds,
            "otp_release": "26.2.5.2-1/14.2.5.2",
            "memory_total": mem_total,
            "memory_used": mem_used,
            "process_available": self.conf["node"]["process_limit"],
            "process_used": len(clients) * 2 + 600,
            "load1": round(load1, 2), "load5": round(load5, 2), "load15": round(load15, 2),
            "sys_path": os.environ.get("RUNNER_ROOT_DIR", "/usr/lib/emqx"),
            "log_path": os.environ.get("EMQX_LOG_DIR", "/var/log/emqx"),
        }

    # ------------------------------------------------------------------ dist ops
    async def handle_op(self, req, peer, hidden):
        op = req.get("op")
        c = self.cluster
        if op == "ping":
            return {"pong": True, "status": self.status, "apps": self.apps_running}
        if op == "heartbeat":
            return c.handle_heartbeat(req.get("state") or {}, peer)
        if op == "get_state":
            return {"status": self.status, "state": c.export(), "role": c.role,
                    "mria_running": self.status != "stopping" and (c.role == "replicant" or self.status == "running"),
                    "license_refused": self.license_refusal(req)}
        if op == "lb_info":       # mria_lb:lb_callback/0
            return c.lb_info()
        if op == "db_nodes":      # mria_mnesia:db_nodes/0 (a replicant's own Mnesia: itself)
            return {"db_nodes": c.members_in() if c.role == "core" else [self.name]}
        if op == "member_leaving":   # mria_membership {leaving, Node}
            c.mark_leaving(req.get("node"), req.get("guid"))
            return {"result": "ok"}
        if op == "conf_sync":     # emqx_conf_app:get_override_config_file/0 + sync_data_from_node/0
            return self.conf_sync_info()
        if op == "join_request":
            refusal = self.license_refusal(req)
            if refusal:
                return {"error": refusal}
            return await c.handle_join_request(req["joiner"])
        if op == "leave":
            r = await c.leave()
            return {"result": "ok" if r == "ok" else "error"}
        if op == "join_cluster":  # REST invite: make this node join `target`
            r = await c.join(req["target"])
            if r == "ok":
                return {"result": "ok"}
            if r == "ignore":
                return {"result": "ignore"}
            return {"result": "error", "reason": r[1]}
        if op == "retainer_copy":   # a peer that starts or joins loads the table from this node
            r = self.retainer
            if r is None or not r.enabled or r.loading:
                return {"enabled": False, "records": None}
            return {"enabled": True, "records": r.dump()}
        if op == "conf_update":   # emqx_conf:update/3 from another node (cluster-wide config change)
            from .backup import write_cluster_hocon
            write_cluster_hocon(self, req["root"], req["value"])
            return {"result": "ok"}
        if op == "node_info":
            return {"info": self.node_info()}
        if op == "prometheus":    # emqx_prometheus_proto_v2:raw_prom_data/4 (and the stand-in's route check)
            from . import prometheus
            return prometheus.handle_op(self, req)
        if op == "clients":
            return {"clients": self.broker.clients() if self.broker else []}
        if op == "getpid":
            return {"pid": os.getpid()}
        if op == "stop":
            asyncio.get_running_loop().call_later(0.05, self.request_stop)
            return {"result": "ok", "pid": os.getpid()}
        if op == "ctl":
            out, rc = await self.ctl([str(a) for a in req.get("args", [])])
            return {"out": out, "rc": rc}
        return {"error": "unknown_op"}

    def license_refusal(self, req):
        """Enterprise (5.9+) builds refuse to form a multi-node cluster without a license key."""
        if EDITION != "enterprise":
            return None
        key = self.conf.get("license", {}).get("key", "default")
        if key in ("", "default", None):
            return "{license_restriction,<<\"single node license\">>}"
        return None

    # ------------------------------------------------------------------ emqx ctl
    async def ctl(self, args):
        if not args:
            return usage(ALL_USAGE), 0
        cmd, rest = args[0], args[1:]
        if cmd == "status":
            if rest:
                return usage([("status", "Show broker status")]), 0
            state = {"booting": "starting", "stopping": "stopping"}.get(self.status, "started")
            return "Node %s %s is %s\n" % (erlfmt.atom(self.name), VERSION, state), 0
        if cmd == "cluster":
            out = await self.ctl_cluster(rest)
            # 5.8 exits 0 even when a join/leave fails (parse stdout!); 5.10 exits 1
            failed = out.startswith("Failed to") or "\nFailed to" in out
            return out, (1 if failed and _vsn() >= (5, 10) else 0)
        if cmd == "admins":
            return self.ctl_admins(rest), 0
        if cmd == "retainer":
            return self.ctl_retainer(rest), 0
        if cmd == "clients":
            return self.ctl_clients(rest), 0
        if cmd == "broker":
            up = int(time.time() - self.started_at)
            return ("sysdescr  : EMQX\nversion   : %s\ndatetime  : %s\nuptime    : %d seconds\n"
                    % (VERSION, time.strftime("%Y-%m-%dT%H:%M:%S%z"), up)), 0
        if cmd == "listeners":
            return self.ctl_listeners(), 0
        if cmd == "data":
            return await self.ctl_data(rest)
        if cmd == "license" and EDITION == "enterprise":
            return self.ctl_license(rest), 0
        return usage(ALL_USAGE), 1

    async def ctl_data(self, args):
        """emqx_mgmt_cli:data/1 (see backup.py)."""
        from .backup import USAGE, DataBackup, format_usage
        b = DataBackup(self)
        if args[:1] == ["export"]:
            rc = await b.export(args[1:])
        elif len(args) == 2 and args[0] == "import":
            rc = await b.import_local(args[1])
        else:
            return format_usage(USAGE), 0
        return "".join(b.out), rc

    def ctl_license(self, args):
        """Enterprise: `license update KEY` stores the key in data/configs/cluster.hocon (any key other
        than "default" counts as a multi-node license in the stand-in)."""
        if len(args) == 2 and args[0] == "update":
            import json
            from . import hocon
            path = os.path.join(self.data_dir, "configs", "cluster.hocon")
            try:
                doc = hocon.parse_file(path) if os.path.exists(path) else {}
            except hocon.HoconError:
                doc = {}
            doc.setdefault("license", {})["key"] = args[1]
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(json.dumps(doc, indent=2) + "\n")
            self.conf.setdefault("license", {})["key"] = args[1]
            return "ok\n"
        if args == ["info"]:
            key = self.conf.get("license", {}).get("key", "default")
            kind = "community" if key in ("", "default") else "official"
            return "customer        : stand-in\nmax_connections : %s\ntype            : %s\n" % (
                10 if kind == "community" else 10000000, kind)
        return usage([("license info", "Show license info"),
                      ("license update <License>", "Update license given as a string")])

    def _cluster_status(self):
        return erlfmt.cluster_status_text(self.cluster.running_nodes(), self.cluster.stopped_nodes())

    async def ctl_cluster(self, args):
        c = self.cluster
        if len(args) == 2 and args[0] == "join":
            r = await c.join(parse_name(args[1], self.name))
            if r == "ok":
                # emqx_mgmt_cli: `mria_rlog:role() =:= core andalso cluster(["status"])`: a replicant
                # prints no status after a join
                if c.role == "replicant":
                    return "Join the cluster successfully.\n"
                return "Join the cluster successfully.\n" + self._cluster_status()
            if r == "ignore":
                return "Ignore.\n"
            return "Failed to join the cluster: %s\n" % r[1]
        if args == ["leave"]:
            out = ""
            if c.autocluster_enabled:
                # ekka:disable_autocluster/0: cluster_enable false, mria core node discovery off,
                # ekka_autocluster stopped
                c.autocluster_enabled = False
                c.core_discovery = False
                if c.autocluster_task:
                    c.autocluster_task.cancel()
                out += ("Automatic cluster discovery is disabled on this node: %s to avoid re-joining the same "
                        "cluster again, if the node is not stopped soon. To enable it run: 'emqx ctl cluster "
                        "discovery enable' or restart the node.\n" % erlfmt.atom(self.name))
            r = await c.leave()
            if r == "ok":
                return out + "Leave the cluster successfully.\n" + self._cluster_status()
            return out + "Failed to leave the cluster: %s\n" % r[1]
        if len(args) == 2 and args[0] == "force-leave":
            r = await c.force_leave(parse_name(args[1], self.name))
            if r == "ok":
                return "Remove the node from cluster successfully.\n" + self._cluster_status()
            if r == "ignore":
                return "Ignore.\n"
            return "Failed to remove the node from cluster: %s\n" % r[1]
        if args == ["status"]:
            return self._cluster_status()
        if args == ["status", "--json"]:
            return erlfmt.cluster_status_json(c.running_nodes(), c.stopped_nodes())
        if args == ["discovery", "enable"]:
            # ekka:enable_autocluster/0 (cluster_enable true, mria core node discovery on), then
            # ekka:autocluster(emqx): the loop runs on a core with a strategy, and only if not running
            c.core_discovery = True
            strategy = self.conf["cluster"]["discovery_strategy"]
            if strategy not in ("manual", "singleton"):
                c.autocluster_enabled = True
                if c.role == "core" and (c.autocluster_task is None or c.autocluster_task.done()):
                    c.autocluster_task = asyncio.ensure_future(c._autocluster())
            return "Automatic cluster discovery enabled.\n"
        return usage(CLUSTER_USAGE)

    def get_user(self, username):
        rec = self.cluster.state["data"]["users"].get(username)
        if rec is None or rec.get("deleted"):
            return None
        return rec

    def change_password(self, username, password):
        """emqx_dashboard_admin:change_password/2: legal_password first, then the user lookup.
        Returns None or EMQX's error text."""
        err = legal_password(password)
        if err:
            return err
        if self.get_user(username) is None:
            return "username_not_found"
        salt, h = hash_password(password)
        rec = dict(self.cluster.state["data"]["users"][username], salt=salt, hash=h)
        self.cluster.put_record("users", username, rec)
        if self.api:
            self.api.drop_tokens(username)
        return None

    def ctl_retainer(self, args):
        """emqx_retainer_cli:retainer/1 (info, topics [Start Len]; clean and reindex are not in the stand-in).
        `topics` prints the count, then the topics of page Start of Len messages (emqx_retainer:page_read):
        the stand-in pages its topics sorted, Mnesia in its table order."""
        from .backup import format_usage
        r = self.retainer
        if args in (["info"], ["topics"]) or (len(args) == 3 and args[0] == "topics"
                                             and all(a.isdigit() for a in args[1:])):
            if r is None or not r.enabled:
                return "Retainer is not enabled\n"
            out = "Number of retained messages: %d\n" % r.count()
            if args[0] == "topics":
                start, size = (int(args[1]), int(args[2])) if len(args) == 3 else (1, 1000)
                now = time.time() * 1000
                live = sorted(t for t, (_m, exp) in list(r.table.items()) if exp == 0 or exp > now)
                out += "".join("%s\n" % t for t in live[(start - 1) * size:start * size])
            return out
        return format_usage([
            ("retainer info", "Show the count of retained messages"),
            ("retainer topics", "Same as retainer topic 1 1000"),
            ("retainer topics <Start> <Limit>", "Show topics of retained messages by the specified range"),
            ("retainer clean", "Clean all retained messages"),
            ("retainer clean <Topic>", "Clean retained messages by the specified topic filter"),
            ("retainer reindex status", "Show reindex status.\nOnly available for built-in backend."),
            ("retainer reindex start [force]", "Generate new retainer topic indices from config settings.\n"
             "Pass true as <Force> to ignore previously started reindexing.\nOnly available for built-in backend."),
        ])

    def ctl_admins(self, args):
        """emqx_dashboard_cli:admins/1: failures print `Error: <reason>` and exit 0."""
        if len(args) == 3 and args[0] == "passwd":
            err = self.change_password(args[1], args[2])
            return "ok\n" if err is None else "Error: %s\n" % err
        if len(args) in (3, 4) and args[0] == "add":
            username, password = args[1], args[2]
            err = legal_username(username) or legal_password(password)
            if not err and self.get_user(username) is not None:
                err = "username_already_exists"
            if err:
                return "Error: %s\n" % err
            salt, h = hash_password(password)
            self.cluster.put_record("users", username, {
                "salt": salt, "hash": h, "role": "administrator",
                "description": args[3] if len(args) > 3 else ""})
            return "ok\n"
        if len(args) == 2 and args[0] == "del":
            if self.get_user(args[1]) is None:
                return "Error: username_not_found\n"
            # deletion is replicated as a tombstone record
            self.cluster.put_record("users", args[1], {"deleted": True, "salt": "", "hash": ""})
            if self.api:
                self.api.drop_tokens(args[1])
            return "ok\n"
        return usage(ADMINS_USAGE)

    def ctl_clients(self, args):
        clients = self.broker.clients() if self.broker else []
        if args == ["list"]:
            if not clients:
                return "No clients.\n"
            return "".join(_client_line(c) for c in clients)
        if len(args) == 2 and args[0] == "show":
            for c in clients:
                if c.get("clientid") == args[1]:
                    return _client_line(c)
            return "Not Found.\n"
        if len(args) == 2 and args[0] == "kick":
            if hasattr(self.broker, "kick"):
                self.broker.kick(args[1])
            return "ok\n"
        return usage(CLIENTS_USAGE)

    def ctl_listeners(self):
        out = []
        ports = self.broker.listener_ports() if self.broker else {}
        for kind in ("tcp", "ssl", "ws", "wss"):
            for name, lconf in self.conf["listeners"].get(kind, {}).items():
                if not isinstance(lconf, dict):
                    continue
                lid = "%s:%s" % (kind, name)
                running = lid in ports
                out.append("%s\n  listen_on       : %s\n  acceptors       : %s\n  proxy_protocol  : %s\n"
                           "  running         : %s\n" % (
                               lid, lconf.get("bind"), lconf.get("acceptors"),
                               "true" if lconf.get("proxy_protocol") else "false",
                               "true" if running else "false"))
        return "".join(out)


def _vsn():
    try:
        return tuple(int(x) for x in VERSION.split(".")[:2])
    except ValueError:
        return (5, 8)


def _client_line(c):
    def ms(v):
        if isinstance(v, (int, float)):
            return int(v * 1000) if v < 1e11 else int(v)
        if isinstance(v, str):
            try:
                return int(datetime.datetime.fromisoformat(v).timestamp() * 1000)
            except ValueError:
                return 0
        return 0

    def tf(v):
        return "true" if v else "false"

    ip = c.get("ip_address") or ""
    peer = "%s:%s" % (ip, c.get("port"))   # emqx_mgmt_util:ntoa/1 + ":~p", no brackets for IPv6
    expiry = c.get("expiry_interval", 0) or 0
    return ("Client(%s, username=%s, peername=%s, clean_start=%s, keepalive=%s, session_expiry_interval=%s, "
            "subscriptions=%s, inflight=%s, awaiting_rel=%s, delivered_msgs=%s, enqueued_msgs=%s, "
            "dropped_msgs=%s, connected=%s, created_at=%s, connected_at=%s)\n" % (
                c.get("clientid"), c.get("username") if c.get("username") is not None else "undefined",
                peer, tf(c.get("clean_start", True)), c.get("keepalive", 0), int(expiry),
                c.get("subscriptions_cnt", 0), c.get("inflight_cnt", 0), c.get("awaiting_rel_cnt", 0),
                c.get("send_msg", 0), c.get("mqueue_len", 0), c.get("mqueue_dropped", 0),
                tf(c.get("connected", True)), ms(c.get("created_at", c.get("connected_at"))),
                ms(c.get("connected_at"))))
