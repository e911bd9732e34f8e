"""``MemoryStore``: the record store of ``store: memory`` domains (and of tests).

Pure: plain dicts and sorted lists, nothing durable. The rules shared with the
SQLite store (``wamp_router.stores.sqlite``):

* History: after a write to a record, its patch log keeps the versions
  ``v > row.v - keep_versions`` (``keep_versions`` 0: all), and then drops its
  oldest patches while they are older than ``min_ts``. The log is always
  trimmed from the oldest end, so the kept patches stay a contiguous run of
  versions (a resync replays them without gaps).
* Checkpoints: one at ``row.v`` when ``checkpoint_every`` divides it. When a
  write trimmed the log, the checkpoints older than the newest one at or below
  ``oldest kept patch - 1`` go (that one is where a ``get_at`` replay starts;
  with no patch kept it is the newest at or below ``row.v``).
* ``list``/``count`` match an exact text prefix; ``limit`` 0 means no limit.
"""

from __future__ import annotations

import builtins
from bisect import bisect_left, bisect_right, insort
from typing import Any

from .store import PatchRow, RecordRow, Write

__all__ = ["MemoryStore", "ReplicaStore", "prefix_upper"]

_MAX_CHAR = 0x10FFFF
_SURROGATES = (0xD800, 0xDFFF)


def prefix_upper(prefix: str) -> str | None:
    """The least string greater than every string that starts with ``prefix``
    (None: no bound, for ``""`` or a prefix of only U+10FFFF characters).
    Surrogates are skipped so the bound encodes to UTF-8."""
    stripped = prefix.rstrip(chr(_MAX_CHAR))
    if not stripped:
        return None
    code = ord(stripped[-1]) + 1
    if _SURROGATES[0] <= code <= _SURROGATES[1]:
        code = _SURROGATES[1] + 1
    return stripped[:-1] + chr(code)


def _patch_v(patch: PatchRow) -> int:
    return patch.v


def _checkpoint_v(checkpoint: tuple[int, Any, bool]) -> int:
    return checkpoint[0]


class MemoryStore:
    """A ``RecordStore`` in memory. ``epoch`` is given (a new one per start)."""

    def __init__(self, epoch: str) -> None:
        self.epoch = epoch
        self._rows: dict[str, RecordRow] = {}
        self._uris: list[str] = []  # every key of _rows, sorted
        self._logs: dict[str, list[PatchRow]] = {}  # ascending v
        self._checkpoints: dict[str, list[tuple[int, Any, bool]]] = {}  # ascending v

    # ------------------------------------------------------------------ reads
    def load(self, uri: str) -> RecordRow | None:
        row = self._rows.get(uri)
        if row is None:
            return None
        return RecordRow(row.uri, row.v, row.value, row.deleted, row.ts, row.by)

    def patches(self, uri: str, after: int, upto: int, limit: int = 0) -> list[PatchRow]:
        log = self._logs.get(uri)
        if not log:
            return []
        lo = bisect_right(log, after, key=_patch_v)
        hi = bisect_right(log, upto, key=_patch_v)
        if limit > 0:
            hi = min(hi, lo + limit)
        return log[lo:hi]

    def checkpoint(self, uri: str, at_most: int) -> tuple[int, Any, bool] | None:
        checkpoints = self._checkpoints.get(uri)
        if not checkpoints:
            return None
        i = bisect_right(checkpoints, at_most, key=_checkpoint_v)
        return checkpoints[i - 1] if i else None

    def version_at(self, uri: str, ts: str) -> int | None:
        for patch in reversed(self._logs.get(uri, ())):
            if patch.ts <= ts:
                return patch.v
        return None

    def list(self, prefix: str, after: str | None, limit: int) -> list[str]:
        uris = self._uris
        if after is not None and after >= prefix:
            i = bisect_right(uris, after)
        else:
            i = bisect_left(uris, prefix)
        found: list[str] = []
        while i < len(uris) and uris[i].startswith(prefix):
            if not self._rows[uris[i]].deleted:
                found.append(uris[i])
                if len(found) == limit:
                    break
            i += 1
        return found

    def count(self, prefix: str) -> int:
        upper = prefix_upper(prefix)
        hi = len(self._uris) if upper is None else bisect_left(self._uris, upper)
        return hi - bisect_left(self._uris, prefix)

    # ----------------------------------------------------------------- writes
    def commit(self, writes: builtins.list[Write]) -> None:  # `list` is a method here
        for write in writes:
            self._apply(write)

    def close(self) -> None:
        pass

    def _apply(self, write: Write) -> None:
        row, patch = write.row, write.patch
        uri = row.uri
        if uri not in self._rows:
            insort(self._uris, uri)
        self._rows[uri] = RecordRow(uri, row.v, row.value, row.deleted, row.ts, row.by)
        log = self._logs.setdefault(uri, [])
        _put(log, patch, patch.v, _patch_v)
        if write.checkpoint_every > 0 and row.v % write.checkpoint_every == 0:
            checkpoints = self._checkpoints.setdefault(uri, [])
            _put(checkpoints, (row.v, row.value, row.deleted), row.v, _checkpoint_v)
        if _trim_log(log, row.v, write.keep_versions, write.min_ts):
            start = log[0].v - 1 if log else row.v
            _trim_checkpoints(self._checkpoints.get(uri), start)


def _put(items: list[Any], item: Any, v: int, key: Any) -> None:
    """Insert ``item`` at its place by version (replacing one of the same ``v``)."""
    if not items or key(items[-1]) < v:
        items.append(item)
        return
    i = bisect_left(items, v, key=key)
    if i < len(items) and key(items[i]) == v:
        items[i] = item
    else:
        items.insert(i, item)


def _trim_log(log: list[PatchRow], v: int, keep_versions: int, min_ts: str | None) -> bool:
    """Drop the patches beyond the history bounds; True if any went."""
    cut = bisect_right(log, v - keep_versions, key=_patch_v) if keep_versions > 0 else 0
    if min_ts is not None:
        while cut < len(log) and log[cut].ts < min_ts:
            cut += 1
    if cut:
        del log[:cut]
    return cut > 0


def _trim_checkpoints(checkpoints: list[tuple[int, Any, bool]] | None, start: int) -> None:
    """Keep the newest checkpoint at or below ``start`` and the newer ones."""
    if checkpoints:
        i = bisect_right(checkpoints, start, key=_checkpoint_v) - 1
        if i > 0:
            del checkpoints[:i]


class ReplicaStore(MemoryStore):
    """A node's copy of the records of a ``store = "redis"`` domain (a cluster).

    Redis holds the records and orders their versions (a compare-and-set per
    version); every node keeps all of them here, so reads, snapshots, deltas,
    rebases and ``get_at`` are answered locally. The engine fills it from what
    Redis confirmed: its own commits, the other nodes' versions (pushed by
    Redis) and what it reads back after a gap or a reconnect. ``tok`` is each
    record's version token (unique per version: a write is compared and set
    against the token it was computed from)."""

    shared = True

    def __init__(self) -> None:
        super().__init__("")
        self.ready = False  # loaded from Redis at least once
        self.tok: dict[str, str] = {}

    def add(self, write: Write, tok: str) -> None:
        """A version Redis committed (``tok``: its token)."""
        self.commit([write])
        self.tok[write.row.uri] = tok

    def replace(self, row: RecordRow, tok: str, patches: builtins.list[PatchRow],
                checkpoints: builtins.list[tuple[int, Any, bool]]) -> None:
        """Take Redis's copy of one record (after a gap this node cannot fill
        version by version)."""
        uri = row.uri
        if uri not in self._rows:
            insort(self._uris, uri)
        self._rows[uri] = row
        self._logs[uri] = sorted(patches, key=_patch_v)
        self._checkpoints[uri] = sorted(checkpoints, key=_checkpoint_v)
        self.tok[uri] = tok

    def rows(self) -> builtins.list[tuple[str, RecordRow]]:
        return list(self._rows.items())

    def forget(self, uri: str) -> None:
        """Drop one record (Redis no longer has it)."""
        if self._rows.pop(uri, None) is not None:
            self._uris.remove(uri)
        self._logs.pop(uri, None)
        self._checkpoints.pop(uri, None)
        self.tok.pop(uri, None)

    def clear(self) -> None:
        """Forget every record (Redis's records were replaced: a new epoch)."""
        self._rows.clear()
        self._uris.clear()
        self._logs.clear()
        self._checkpoints.clear()
        self.tok.clear()
