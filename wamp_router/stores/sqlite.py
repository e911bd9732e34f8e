"""``SqliteStore``: the durable record store (design DATASYNC.md 6.13).

One database file, four tables::

    records(uri PK, v, value JSON, deleted, ts, by)         the committed state
    patches(uri, v, ops, value, deleted, by, cid, ts, units) the patch log
    checkpoints(uri, v, value, deleted)                     values at some versions
    meta(key PK, value)                                     epoch, clean, schema

WAL journal with ``synchronous=NORMAL``: a committed transaction survives the
process being killed (not necessarily a power loss). ``commit`` is one
transaction per batch (group commit). History trimming and checkpoints follow
the same rules as ``MemoryStore`` (see ``wamp_router.core.sync.memory``).

Epoch: a new random id with a new database, and again at open when the
previous process did not ``close()`` the store (``meta.clean`` is ``"0"``):
clients then resync from snapshots instead of trusting versions that may have
been broadcast but never committed (``durability: async``).

Synchronous and single-threaded: use the store from one thread only.
"""

from __future__ import annotations

import builtins
import os
import secrets
import sqlite3
from pathlib import Path
from typing import Any, Final

import orjson

from wamp_router.core.sync.memory import prefix_upper
from wamp_router.core.sync.store import PatchRow, RecordRow, Write

__all__ = ["SCHEMA_VERSION", "SqliteStore", "StoreError"]

SCHEMA_VERSION: Final = "1"

_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS records (
        uri TEXT PRIMARY KEY, v INTEGER NOT NULL, value TEXT, deleted INTEGER NOT NULL,
        ts TEXT NOT NULL, "by" TEXT)""",
    """CREATE TABLE IF NOT EXISTS patches (
        uri TEXT NOT NULL, v INTEGER NOT NULL, ops TEXT, value TEXT, deleted INTEGER NOT NULL,
        "by" TEXT, cid TEXT, ts TEXT NOT NULL, units TEXT NOT NULL,
        PRIMARY KEY (uri, v)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS checkpoints (
        uri TEXT NOT NULL, v INTEGER NOT NULL, value TEXT, deleted INTEGER NOT NULL,
        PRIMARY KEY (uri, v)) WITHOUT ROWID""",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)

_UPSERT_RECORD: Final = """INSERT INTO records (uri, v, value, deleted, ts, "by")
    VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (uri) DO UPDATE SET v = excluded.v, value = excluded.value,
        deleted = excluded.deleted, ts = excluded.ts, "by" = excluded."by"
"""
_INSERT_PATCH: Final = """INSERT INTO patches (uri, v, ops, value, deleted, "by", cid, ts, units)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"""
_PUT_CHECKPOINT: Final = (
    "INSERT OR REPLACE INTO checkpoints (uri, v, value, deleted) VALUES (?, ?, ?, ?)"
)
_TRIM_BY_VERSION: Final = "DELETE FROM patches WHERE uri = ? AND v <= ?"
# drop the oldest patches while they are older than min_ts (all of them if every one is)
_TRIM_BY_AGE: Final = """DELETE FROM patches WHERE uri = ?1 AND v < coalesce(
    (SELECT v FROM patches WHERE uri = ?1 AND ts >= ?2 ORDER BY v LIMIT 1), ?3)"""
# keep the newest checkpoint at or below (oldest kept patch - 1), or at or below row.v
_TRIM_CHECKPOINTS: Final = """DELETE FROM checkpoints WHERE uri = ?1 AND v < (
    SELECT max(v) FROM checkpoints WHERE uri = ?1
    AND v <= coalesce((SELECT min(v) FROM patches WHERE uri = ?1), ?2 + 1) - 1)"""

_LOAD: Final = 'SELECT v, value, deleted, ts, "by" FROM records WHERE uri = ?'
_PATCHES: Final = """SELECT v, ops, value, deleted, "by", cid, ts, units FROM patches
    WHERE uri = ? AND v > ? AND v <= ? ORDER BY v LIMIT ?"""
_CHECKPOINT: Final = """SELECT v, value, deleted FROM checkpoints
    WHERE uri = ? AND v <= ? ORDER BY v DESC LIMIT 1"""
_VERSION_AT: Final = "SELECT v FROM patches WHERE uri = ? AND ts <= ? ORDER BY v DESC LIMIT 1"

_NO_LIMIT: Final = -1  # SQLite's LIMIT for "all rows"
_PAST_ALL: Final = 2**63 - 1  # a version above any stored one


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _unjson(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


class StoreError(Exception):
    """The store cannot be opened (not a database, a corrupt or foreign one)."""


class SqliteStore:
    """A ``RecordStore`` in a SQLite database file (created with its parent
    directories if missing). ``close()`` marks a clean shutdown."""

    epoch: str

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{self.path}: cannot open: {exc}") from exc
        try:
            self._open()
        except (sqlite3.Error, StoreError) as exc:
            self._db.close()
            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"{self.path}: not a usable record store: {exc}") from exc
        self._closed = False

    def _open(self) -> None:
        db = self._db
        db.execute("PRAGMA journal_mode=WAL").fetchone()
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("BEGIN IMMEDIATE")
        try:
            tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
            if tables and "meta" not in tables:
                raise StoreError(f"{self.path}: a SQLite database, but not a record store")
            for statement in _SCHEMA:
                db.execute(statement)
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            schema = meta.get("schema", SCHEMA_VERSION)
            if schema != SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: record store schema {schema!r}, expected {SCHEMA_VERSION!r}"
                )
            epoch = meta.get("epoch")
            if epoch is None or meta.get("clean") != "1":  # new, or an unclean shutdown
                epoch = secrets.token_hex(8)
            db.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                [("schema", SCHEMA_VERSION), ("epoch", epoch), ("clean", "0")],
            )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        self.epoch = epoch

    # ------------------------------------------------------------------ reads
    def load(self, uri: str) -> RecordRow | None:
        found = self._db.execute(_LOAD, (uri,)).fetchone()
        if found is None:
            return None
        v, value, deleted, ts, by = found
        return RecordRow(uri, v, _unjson(value), bool(deleted), ts, by)

    def patches(self, uri: str, after: int, upto: int, limit: int = 0) -> list[PatchRow]:
        cursor = self._db.execute(_PATCHES, (uri, after, upto, limit if limit > 0 else _NO_LIMIT))
        return [
            PatchRow(
                v,
                _unjson(ops),
                _unjson(value),
                bool(deleted),
                by,
                cid,
                ts,
                [(pointer, kind) for pointer, kind in orjson.loads(units)],
            )
            for v, ops, value, deleted, by, cid, ts, units in cursor
        ]

    def checkpoint(self, uri: str, at_most: int) -> tuple[int, Any, bool] | None:
        found = self._db.execute(_CHECKPOINT, (uri, at_most)).fetchone()
        if found is None:
            return None
        v, value, deleted = found
        return v, _unjson(value), bool(deleted)

    def version_at(self, uri: str, ts: str) -> int | None:
        found = self._db.execute(_VERSION_AT, (uri, ts)).fetchone()
        return None if found is None else int(found[0])

    def list(self, prefix: str, after: str | None, limit: int) -> builtins.list[str]:
        where, params = _prefix_range(prefix)
        if after is not None:
            where += " AND uri > ?"
            params.append(after)
        params.append(limit if limit > 0 else _NO_LIMIT)
        sql = f"SELECT uri FROM records WHERE {where} AND deleted = 0 ORDER BY uri LIMIT ?"
        return [uri for (uri,) in self._db.execute(sql, params)]

    def count(self, prefix: str) -> int:
        where, params = _prefix_range(prefix)
        (n,) = self._db.execute(f"SELECT count(*) FROM records WHERE {where}", params).fetchone()
        return int(n)

    # ----------------------------------------------------------------- writes
    def commit(self, writes: builtins.list[Write]) -> None:
        if not writes:
            return
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for write in writes:
                self._write(write)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _write(self, write: Write) -> None:
        db, row, patch = self._db, write.row, write.patch
        uri, v = row.uri, row.v
        value_text = write.value_json.decode()
        db.execute(_UPSERT_RECORD, (uri, v, value_text, int(row.deleted), row.ts, row.by))
        if patch.value is row.value:
            patch_value: str | None = value_text
        else:
            patch_value = None if patch.value is None else _json(patch.value)
        db.execute(
            _INSERT_PATCH,
            (
                uri,
                patch.v,
                None if patch.ops is None else _json(patch.ops),
                patch_value,
                int(patch.deleted),
                patch.by,
                patch.cid,
                patch.ts,
                _json(patch.units),
            ),
        )
        if write.checkpoint_every > 0 and v % write.checkpoint_every == 0:
            db.execute(_PUT_CHECKPOINT, (uri, v, value_text, int(row.deleted)))
        trimmed = 0
        if write.keep_versions > 0:
            trimmed += db.execute(_TRIM_BY_VERSION, (uri, v - write.keep_versions)).rowcount
        if write.min_ts is not None:
            trimmed += db.execute(_TRIM_BY_AGE, (uri, write.min_ts, _PAST_ALL)).rowcount
        if trimmed:
            db.execute(_TRIM_CHECKPOINTS, (uri, v))

    def close(self) -> None:
        """A clean shutdown: the next open keeps the epoch."""
        if self._closed:
            return
        self._closed = True
        try:
            self._db.execute("UPDATE meta SET value = '1' WHERE key = 'clean'")
        finally:
            self._db.close()


def _prefix_range(prefix: str) -> tuple[str, builtins.list[Any]]:
    """A WHERE clause (fixed text) and its parameters for ``uri`` starting with
    ``prefix``: a range on the primary key (LIKE would treat ``_``/``%`` specially)."""
    upper = prefix_upper(prefix)
    if upper is None:
        return "uri >= ?", [prefix]
    return "uri >= ? AND uri < ?", [prefix, upper]
