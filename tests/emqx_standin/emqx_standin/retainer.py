"""Retained messages: the stand-in's `emqx_retainer` with the built-in database backend.

What EMQX 5.8.9 does (apps/emqx_retainer/src/ at v5.8.9):
- emqx_retainer.erl on_message_publish/1 (hook `message.publish`, on the node where the message is
  published): an empty retained payload deletes the topic (and with stop_publish_clear_msg the message
  is not published); any other retained message is stored. get_expiry_time/1: Message-Expiry-Interval
  0 -> never, N -> timestamp + N s; no property -> timestamp + retainer.msg_expiry_interval (0: never).
- emqx_retainer_publisher.erl store_retained/1: payloads larger than retainer.max_payload_size are not
  stored (warning retain_failed_for_payload_size_exceeded_limit).
- emqx_retainer_mnesia.erl: one table `emqx_retainer_message` (record retained_message {topic, msg,
  expiry_time}) created with mria:create_table as ram_copies or disc_copies (backend.storage_type,
  default ram) on every core node; store_retained/2 writes with mria:dirty_write_sync (synchronously
  on all core nodes); when max_retained_messages > 0 and the table holds that many, a NEW topic is not
  stored (error failed_to_retain_message, reason table_is_full); reads skip expired records
  (match_messages: expiry_time =:= 0 orelse > now; read_message: >= now) without deleting them.
- emqx_retainer_gc.erl: every msg_clear_interval (0: never) the first of the sorted running core nodes
  deletes expired records (clear_expired/3, msg_expiry_interval_override / allow_never_expire).
- mria/mnesia (mria 0.8.18 src/mria_schema.erl, mria_mnesia.erl; OTP mnesia_controller.erl): a core
  node that (re)starts loads the table from a running node that has it loaded; with none, a ram copy
  starts empty and a disc copy is read from the node's own disc. A join (mria:join) deletes the local
  schema and copies the cluster's tables; a leave (mria:leave) deletes the schema, so the tables start
  again empty.

The table lives in this object; the cluster layer (cluster.py) replicates every write and delete to the
running peers as `retainer` frames on the gen_rpc stand-in and copies the whole table from a running
peer with the dist op `retainer_copy`. Disc copies are kept under node.data_dir/mnesia/<node>/ as
emqx_retainer_message.DCD (JSON snapshot) + emqx_retainer_message.DCL (JSON lines log), named after
Mnesia's files but in the stand-in's own format.
"""

import json
import os
import time

from . import mqtt_codec as mc
from .broker import Message

TABLE = "emqx_retainer_message"
ATTRIBUTES = ["topic", "msg", "expiry_time"]   # record retained_message


def _now_ms():
    return int(time.time() * 1000)


def default_conf():
    return {"enable": True, "msg_expiry_interval": 0, "msg_expiry_interval_override": "disabled",
            "allow_never_expire": True, "msg_clear_interval": 0, "msg_clear_limit": 50000,
            "max_payload_size": 1024 * 1024, "stop_publish_clear_msg": False,
            "backend": {"type": "built_in_database", "storage_type": "ram", "max_retained_messages": 0,
                        "enable": True}}


def expiry_time(msg, conf_interval_ms):
    """emqx_retainer:get_expiry_time/1 (milliseconds since the epoch, 0 = never)."""
    ts = int(msg.timestamp * 1000)
    exp = (msg.properties or {}).get("message_expiry_interval")
    if exp is not None:
        return 0 if exp == 0 else ts + int(exp) * 1000
    return 0 if not conf_interval_ms else ts + int(conf_interval_ms)


class Retainer:
    def __init__(self, conf=None, log=None, disc_dir=None):
        conf = conf or default_conf()
        self.log = log or (lambda level, text: None)
        self.enabled = bool(conf.get("enable", True))
        backend = conf.get("backend") or {}
        self.storage_type = backend.get("storage_type", "ram")
        self.max_retained = int(backend.get("max_retained_messages", 0) or 0)
        self.msg_expiry_interval = int(conf.get("msg_expiry_interval", 0) or 0)
        self.override = conf.get("msg_expiry_interval_override", "disabled")
        self.allow_never_expire = bool(conf.get("allow_never_expire", True))
        self.clear_interval = int(conf.get("msg_clear_interval", 0) or 0)
        self.clear_limit = conf.get("msg_clear_limit", 50000)
        self.max_payload_size = int(conf.get("max_payload_size", 1024 * 1024) or 0)
        self.stop_publish_clear_msg = bool(conf.get("stop_publish_clear_msg", False))
        self.table = {}          # topic -> (Message, expiry_time ms)
        self.replicate = None    # callable(op dict): send a write/delete to the running peers
        self.disc_dir = disc_dir
        self.loading = False     # while a copy is being fetched, remote ops are buffered
        self._buffer = []
        self._dcl = None

    # ------------------------------------------------------------------ hooks
    def on_message_publish(self, msg):
        """The `message.publish` hook: returns False when the message must not be published."""
        if not self.enabled or not msg.retain:
            return True
        if not msg.payload:
            self.delete_message(msg.topic)
            return not self.stop_publish_clear_msg
        size = len(msg.payload)
        if 0 < self.max_payload_size < size:
            self.log("warning", "msg: retain_failed_for_payload_size_exceeded_limit, topic: %s, "
                     "config: retainer.max_payload_size, size: %d, limit: %d"
                     % (msg.topic, size, self.max_payload_size))
            return True
        self.store_retained(msg)
        return True

    def store_retained(self, msg):
        exp = expiry_time(msg, self.msg_expiry_interval)
        if self.max_retained > 0 and len(self.table) >= self.max_retained and msg.topic not in self.table:
            self.log("error", "msg: failed_to_retain_message, reason: table_is_full, topic: %s" % msg.topic)
            return
        stored = Message(topic=msg.topic, payload=bytes(msg.payload), qos=msg.qos, retain=True,
                         properties=dict(msg.properties or {}), origin_node=msg.origin_node,
                         from_clientid=msg.from_clientid, timestamp=msg.timestamp)
        self._write(msg.topic, stored, exp)
        self._send({"t": "retainer", "op": "write", "msg": stored.to_wire(), "expiry": exp})

    def delete_message(self, topic):
        if topic in self.table:
            self._delete(topic)
        # mria:dirty_delete_object runs on every core node even when this copy has no record
        self._send({"t": "retainer", "op": "delete", "topic": topic})

    def _send(self, op):
        if self.replicate is not None:
            try:
                self.replicate(op)
            except Exception as e:  # never fail the publisher
                self.log("error", "msg: retainer_replication_failed, reason: %r" % (e,))

    # ------------------------------------------------------------------ reads
    def match(self, tf, now_ms=None):
        """Retained messages for a new subscription on filter tf (emqx_retainer_dispatcher:dispatch)."""
        if not self.enabled:
            return []
        now = _now_ms() if now_ms is None else now_ms
        if "+" not in tf and "#" not in tf:
            rec = self.table.get(tf)      # read_message/2: expiry_time =:= 0 orelse >= now
            if rec is None or not (rec[1] == 0 or rec[1] >= now):
                return []
            return [rec[0]]
        out = [(m.timestamp, m) for topic, (m, exp) in list(self.table.items())
               if (exp == 0 or exp > now) and mc.topic_matches(tf, topic)]
        return [m for _, m in sorted(out, key=lambda x: x[0])]

    def count(self):
        return len(self.table) if self.enabled else 0

    # ------------------------------------------------------------------ replication (remote side)
    def apply_remote(self, op):
        if not self.enabled:
            return
        if self.loading:
            self._buffer.append(op)
            return
        self._apply(op)

    def _apply(self, op):
        if op.get("op") == "write":
            msg = Message.from_wire(op["msg"])
            self._write(msg.topic, msg, int(op.get("expiry", 0)))
        elif op.get("op") == "delete":
            if op.get("topic") in self.table:
                self._delete(op["topic"])

    def dump(self):
        """The records of the table, for a peer that copies it or for a data export."""
        return [{"topic": t, "msg": m.to_wire(), "expiry_time": exp} for t, (m, exp) in self.table.items()]

    def begin_load(self):
        self.loading = True
        self._buffer = []

    def finish_load(self, records):
        """Install a copy taken from a running peer (None: no peer had one), then the writes that
        arrived meanwhile."""
        if records is not None:
            self.table = {}
            for r in records:
                self.table[r["topic"]] = (Message.from_wire(r["msg"]), int(r.get("expiry_time", 0)))
        self.loading = False
        buf, self._buffer = self._buffer, []
        for op in buf:
            self._apply(op)
        self._snapshot()

    def clear(self):
        """mria:leave deleted the schema: the table starts again, empty."""
        self.table = {}
        self._snapshot()

    def import_records(self, records):
        """mnesia:restore/2 with keep_tables: the records are written into the table (replicated to every
        replica), records not in the backup stay."""
        for r in records:
            msg = Message.from_wire(r["msg"])
            exp = int(r.get("expiry_time", 0))
            self._write(msg.topic, msg, exp)
            self._send({"t": "retainer", "op": "write", "msg": msg.to_wire(), "expiry": exp})
        return len(records)

    # ------------------------------------------------------------------ expiry GC
    def clear_expired(self, deadline_ms=None, limit="all"):
        """emqx_retainer_mnesia:clear_expired/3; returns (complete, n_cleared)."""
        deadline = _now_ms() if deadline_ms is None else deadline_ms
        override = self.override

        def expired(m, exp):
            if override == "disabled":
                return exp != 0 and exp < deadline
            ts = int(m.timestamp * 1000)
            if exp == 0:
                return (ts + override < deadline) if not self.allow_never_expire else False
            return min(ts + override, exp) < deadline
        victims = [t for t, (m, exp) in list(self.table.items()) if expired(m, exp)]
        if limit != "all" and len(victims) > int(limit):
            victims, complete = victims[:int(limit)], False
        else:
            complete = True
        for t in victims:
            self._delete(t)
            self._send({"t": "retainer", "op": "delete", "topic": t})
        return complete, len(victims)

    # ------------------------------------------------------------------ storage
    def _write(self, topic, msg, exp):
        self.table[topic] = (msg, exp)
        self._log_op({"op": "write", "topic": topic, "msg": msg.to_wire(), "expiry": exp})

    def _delete(self, topic):
        self.table.pop(topic, None)
        self._log_op({"op": "delete", "topic": topic})

    def _paths(self):
        return (os.path.join(self.disc_dir, TABLE + ".DCD"), os.path.join(self.disc_dir, TABLE + ".DCL"))

    def _log_op(self, op):
        if self.storage_type != "disc" or not self.disc_dir or self.loading:
            return
        try:
            if self._dcl is None:
                self._dcl = open(self._paths()[1], "a", encoding="utf-8")
            self._dcl.write(json.dumps(op, separators=(",", ":")) + "\n")
            self._dcl.flush()
        except OSError as e:
            self.log("error", "msg: retainer_disc_write_failed, reason: %s" % e)

    def read_disc(self):
        """The node's own disc copy (DCD + DCL), or None when there is none."""
        if not self.disc_dir:
            return None
        dcd, dcl = self._paths()
        if not os.path.exists(dcd) and not os.path.exists(dcl):
            return None
        table = {}
        try:
            with open(dcd, encoding="utf-8") as fh:
                for r in json.load(fh).get("records", []):
                    table[r["topic"]] = r
        except (OSError, ValueError):
            pass
        try:
            with open(dcl, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        op = json.loads(line)
                    except ValueError:
                        break        # a torn last line
                    if op.get("op") == "write":
                        table[op["topic"]] = {"topic": op["topic"], "msg": op["msg"], "expiry_time": op["expiry"]}
                    elif op.get("op") == "delete":
                        table.pop(op.get("topic"), None)
        except OSError:
            pass
        return list(table.values())

    def _snapshot(self):
        """Write the disc copy (disc_copies), or drop it (ram_copies: mnesia:change_table_copy_type)."""
        if not self.disc_dir:
            return
        dcd, dcl = self._paths()
        if self._dcl is not None:
            try:
                self._dcl.close()
            except OSError:
                pass
            self._dcl = None
        try:
            if self.storage_type == "disc" and self.enabled:
                tmp = dcd + ".tmp"
                with open(tmp, "w", encoding="utf-8") as fh:
                    json.dump({"table": TABLE, "attributes": ATTRIBUTES, "records": self.dump()}, fh)
                os.replace(tmp, dcd)
            elif os.path.exists(dcd):
                os.unlink(dcd)
            if os.path.exists(dcl):
                os.unlink(dcl)
        except OSError as e:
            self.log("error", "msg: retainer_disc_write_failed, reason: %s" % e)

    def close(self):
        self._snapshot()
