"""Durable sessions on the open-source storage backend (builtin_local), as EMQX 5.8.9 has them.

What EMQX does (read in the v5.8.9 source; the README's "Durable sessions" section names the files):
- ``durable_sessions.enable = true`` makes every session whose expiry interval is above 0 a durable
  one (emqx_session:choose_impl_candidates/2); a session with expiry 0 stays in memory.
- A durable subscription adds a *persistent* route only, never a broker route
  (emqx_persistent_session_ds_subs:on_subscribe -> emqx_persistent_session_ds_router:do_add_route).
  The session gets its messages from the durable storage, not from the broker's routing.
- A publish that a durable route matches is stored in the ``messages`` DB of the node that received it
  (emqx_broker:persist_publish -> emqx_persistent_message:persist -> emqx_ds:store_batch).
- builtin_local keeps that DB in the node's own RocksDB and lists streams of the local shards only
  (emqx_ds_builtin_local:get_streams/3); its README: "This backend cannot be used in a clustered EMQX
  setup". So a durable session on node B never sees what was published on node A.
- The session's state (subscriptions, what was acknowledged) lives in Mria tables with
  ``rocksdb_copies`` storage (emqx_persistent_session_ds_state:create_tables/0): on disk, so it survives a
  restart of the node, as do the stored messages.
- Delivery is at least once: what was sent and not acknowledged is sent again after the session resumes.

The stand-in keeps the same things in one SQLite file in the node's data_dir: the sessions, their
(non-shared) subscriptions, the stored messages, and which stored message each session still owes.
"""

import json
import os
import sqlite3
import time

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (clientid TEXT PRIMARY KEY, expiry INTEGER, disconnected_at REAL);
CREATE TABLE IF NOT EXISTS subs (clientid TEXT, filter TEXT, opts TEXT, PRIMARY KEY (clientid, filter));
CREATE TABLE IF NOT EXISTS messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, wire TEXT, stored_at REAL);
CREATE TABLE IF NOT EXISTS owed (clientid TEXT, seq INTEGER, qos INTEGER, retain_flag INTEGER, subid INTEGER,
                                 PRIMARY KEY (clientid, seq));
"""


class DurableStore(object):
    """builtin_local: this node's own disk. ``retention`` is durable_sessions.message_retention_period (s)."""

    def __init__(self, data_dir, retention, log):
        self.dir = os.path.join(data_dir, "ds")
        self.retention = retention
        self.log = log
        self.db = None

    def open(self):
        os.makedirs(self.dir, exist_ok=True)
        self.db = sqlite3.connect(os.path.join(self.dir, "builtin_local.sqlite3"), isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def close(self):
        if self.db is not None:
            self.db.close()
            self.db = None

    # ---- session state
    def save_session(self, clientid, expiry, disconnected_at=None):
        self.db.execute("INSERT OR REPLACE INTO sessions VALUES (?, ?, ?)", (clientid, int(expiry), disconnected_at))

    def delete_session(self, clientid):
        with self.db:
            self.db.execute("BEGIN")
            for table in ("sessions", "subs", "owed"):
                self.db.execute("DELETE FROM %s WHERE clientid = ?" % table, (clientid,))
        self._gc_messages()

    def save_sub(self, clientid, tf, opts):
        self.db.execute("INSERT OR REPLACE INTO subs VALUES (?, ?, ?)", (clientid, tf, json.dumps(list(opts))))

    def delete_sub(self, clientid, tf):
        self.db.execute("DELETE FROM subs WHERE clientid = ? AND filter = ?", (clientid, tf))

    # ---- messages
    def store(self, msg, deliveries):
        """Store one message for the durable sessions it matched: deliveries = [(clientid, qos, retain_flag,
        subid)]. Returns its sequence number."""
        with self.db:
            self.db.execute("BEGIN")
            cur = self.db.execute("INSERT INTO messages (wire, stored_at) VALUES (?, ?)",
                                  (json.dumps(msg.to_wire()), time.time()))
            seq = cur.lastrowid
            self.db.executemany("INSERT OR REPLACE INTO owed VALUES (?, ?, ?, ?, ?)",
                                [(cid, seq, qos, 1 if rf else 0, subid) for cid, qos, rf, subid in deliveries])
        return seq

    def done(self, clientid, seq):
        """The session has this message: acknowledged (QoS 1, 2), sent (QoS 0) or dropped."""
        self.db.execute("DELETE FROM owed WHERE clientid = ? AND seq = ?", (clientid, seq))

    def _gc_messages(self):
        self.db.execute("DELETE FROM messages WHERE seq NOT IN (SELECT seq FROM owed)")

    # ---- boot
    def load(self, message_cls):
        """Every stored session: [(clientid, expiry, disconnected_at, {filter: opts list},
        [(msg, qos, retain_flag, subid)] in the order they were stored)]. Messages older than the retention
        period are gone (emqx_persistent_message_ds_gc_worker)."""
        cutoff = time.time() - self.retention
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("DELETE FROM owed WHERE seq IN (SELECT seq FROM messages WHERE stored_at < ?)", (cutoff,))
            self.db.execute("DELETE FROM messages WHERE stored_at < ?", (cutoff,))
        out = []
        for clientid, expiry, disconnected_at in self.db.execute("SELECT * FROM sessions").fetchall():
            subs = {tf: json.loads(opts) for tf, opts in
                    self.db.execute("SELECT filter, opts FROM subs WHERE clientid = ?", (clientid,))}
            owed = []
            for seq, wire, qos, rf, subid in self.db.execute(
                    "SELECT o.seq, m.wire, o.qos, o.retain_flag, o.subid FROM owed o JOIN messages m ON m.seq = o.seq "
                    "WHERE o.clientid = ? ORDER BY o.seq", (clientid,)):
                msg = message_cls.from_wire(json.loads(wire))
                msg.ds_seq = seq
                owed.append((msg, qos, bool(rf), subid))
            out.append((clientid, expiry, disconnected_at, subs, owed))
        return out
