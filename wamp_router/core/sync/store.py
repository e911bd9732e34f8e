"""What the sync engine needs of a record store, and the rows it exchanges.

A store keeps, per record URI, the committed state (``RecordRow``), the patch
log (``PatchRow`` per version, bounded by the domain's history settings) and
periodic checkpoints (the value at some versions, for ``get_at``). Stores are
synchronous: the engine reads while handling a request and commits a batch of
writes at the end of a reactor turn (group commit). ``MemoryStore``
(``memory.py``) is pure; the SQLite store lives in ``wamp_router.stores``.

Values are JSON values (dict/list/str/int/float/bool/None) and are never
mutated once handed to or returned by a store (structure is shared).
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Any, Protocol

# A conflict unit of a patch: (JSON Pointer, kind). kind is "set" (a plain change),
# "append" (appends commute with appends to the same array) or "inc" (increments
# commute with increments of the same number).
Unit = tuple[str, str]


@dataclass(slots=True)
class RecordRow:
    """The committed state of one record."""

    uri: str
    v: int  # 0: never existed
    value: Any  # None when deleted
    deleted: bool
    ts: str  # ISO 8601 time of the last write ("" when never written)
    by: str | None  # authid of the last writer


@dataclass(slots=True)
class PatchRow:
    """One version of a record: what changed from ``v - 1`` to ``v``."""

    v: int
    ops: list[dict[str, Any]] | None  # normalised RFC 6902 ops, or None (value / deleted)
    value: Any  # the whole new value when ``ops`` is None and not ``deleted``
    deleted: bool
    by: str | None
    cid: str | None
    ts: str
    units: list[Unit]  # what the write touched (rebase conflict detection)


@dataclass(slots=True)
class Write:
    """One new version to commit: the record's new state and its patch."""

    row: RecordRow
    patch: PatchRow
    value_json: bytes  # ``row.value`` as JSON (already encoded for the size check)
    keep_versions: int  # history bound: keep patches with v > row.v - keep_versions (0 = all)
    min_ts: str | None  # history bound by age: drop patches older than this ISO time
    checkpoint_every: int  # store a checkpoint when row.v % checkpoint_every == 0 (0 = never)


class RecordStore(Protocol):
    epoch: str  # changes when the store's history can no longer be trusted by clients

    def load(self, uri: str) -> RecordRow | None:
        """The committed state, or None if the record was never written."""

    def patches(self, uri: str, after: int, upto: int, limit: int = 0) -> list[PatchRow]:
        """The patches with ``after < v <= upto`` that are still kept, ascending
        (``limit`` > 0: at most that many, the oldest first)."""

    def checkpoint(self, uri: str, at_most: int) -> tuple[int, Any, bool] | None:
        """The newest checkpoint ``(v, value, deleted)`` with ``v <= at_most``."""

    def version_at(self, uri: str, ts: str) -> int | None:
        """The newest kept version written at or before ISO time ``ts``."""

    def list(self, prefix: str, after: str | None, limit: int) -> list[str]:
        """URIs of existing (not deleted) records starting with ``prefix``, sorted,
        greater than ``after``, at most ``limit``."""

    def count(self, prefix: str) -> int:
        """How many records (deleted ones included) start with ``prefix``."""

    def commit(self, writes: builtins.list[Write]) -> None:  # `list` is a method here
        """Make all ``writes`` durable, atomically, in order (raises on failure,
        and then none of them is committed)."""

    def close(self) -> None:
        """Release the store (a clean shutdown)."""
