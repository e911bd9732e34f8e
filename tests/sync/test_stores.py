"""The record stores (``core.sync.memory.MemoryStore``, ``stores.sqlite.SqliteStore``)
against the ``RecordStore`` contract (``core.sync.store``).

One suite runs over both stores; then what only SQLite has: atomic rollback
of a failing batch, the epoch across clean and unclean stops, a corrupt file,
and durability of committed batches when the writing process is killed -9.
A hypothesis property checks that both stores answer the same to random
write sequences.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wamp_router.core.sync.memory import MemoryStore, prefix_upper
from wamp_router.core.sync.store import PatchRow, RecordRow, RecordStore, Unit, Write
from wamp_router.stores import SqliteStore, StoreError

ROOT = Path(__file__).resolve().parents[2]
MODEST = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def ts(n: int) -> str:
    """An ISO time, ``n`` seconds after a fixed start (ordered as text)."""
    return f"2024-01-01T{n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z"


def write(
    uri: str,
    v: int,
    value: Any = None,
    *,
    ops: list[dict[str, Any]] | None = None,
    deleted: bool = False,
    at: int | None = None,
    keep: int = 0,
    min_ts: str | None = None,
    every: int = 0,
    by: str | None = "alice",
    cid: str | None = None,
    units: list[Unit] | None = None,
) -> Write:
    """A write of version ``v`` (value ``{"n": v}`` unless given, time ``ts(v)``)."""
    if value is None and not deleted:
        value = {"n": v}
    if deleted:
        value = None
    when = ts(v if at is None else at)
    row = RecordRow(uri, v, value, deleted, when, by)
    patch_value = None if (deleted or ops is not None) else value
    patch = PatchRow(v, ops, patch_value, deleted, by, cid, when, units or [("", "set")])
    return Write(row, patch, orjson.dumps(value), keep, min_ts, every)


def commit_versions(store: RecordStore, uri: str, upto: int, start: int = 1, **kw: Any) -> None:
    for v in range(start, upto + 1):
        store.commit([write(uri, v, **kw)])


def kept(store: RecordStore, uri: str) -> list[int]:
    return [p.v for p in store.patches(uri, 0, 10**9)]


def checkpoints(store: RecordStore, uri: str, upto: int) -> list[int]:
    return [v for v in range(upto + 1) if (cp := store.checkpoint(uri, v)) and cp[0] == v]


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RecordStore]:
    s: RecordStore = (
        MemoryStore("e1") if request.param == "memory" else SqliteStore(tmp_path / "s.db")
    )
    yield s
    s.close()


# ================================================================ the contract
def test_load_and_overwrite(store: RecordStore) -> None:
    assert store.load("app.a") is None
    store.commit([write("app.a", 1, {"x": [1, 2.5, "é", None, True]})])
    assert store.load("app.a") == RecordRow(
        "app.a", 1, {"x": [1, 2.5, "é", None, True]}, False, ts(1), "alice"
    )
    store.commit([write("app.a", 2, "plain", by=None)])
    assert store.load("app.a") == RecordRow("app.a", 2, "plain", False, ts(2), None)
    store.commit([write("app.a", 3, deleted=True)])
    assert store.load("app.a") == RecordRow("app.a", 3, None, True, ts(3), "alice")
    assert store.load("app.b") is None


def test_commit_applies_a_batch_in_order(store: RecordStore) -> None:
    store.commit([])
    store.commit([write("app.a", 1), write("app.b", 1), write("app.a", 2, {"last": True})])
    assert store.load("app.a") == RecordRow("app.a", 2, {"last": True}, False, ts(2), "alice")
    assert kept(store, "app.a") == [1, 2]
    assert kept(store, "app.b") == [1]


def test_patch_rows_round_trip(store: RecordStore) -> None:
    ops: list[dict[str, Any]] = [
        {"op": "add", "path": "/a/-", "value": {"k": [1]}},
        {"op": "remove", "path": "/b"},
    ]
    units: list[Unit] = [("/a", "append"), ("/b", "set")]
    store.commit([write("app.a", 1, {"b": 1, "a": []}, cid="c1")])
    store.commit([write("app.a", 2, {"a": [{"k": [1]}]}, ops=ops, units=units, by=None)])
    store.commit([write("app.a", 3, deleted=True, cid="c3")])
    assert store.patches("app.a", 0, 3) == [
        PatchRow(1, None, {"b": 1, "a": []}, False, "alice", "c1", ts(1), [("", "set")]),
        PatchRow(2, ops, None, False, None, None, ts(2), units),
        PatchRow(3, None, None, True, "alice", "c3", ts(3), [("", "set")]),
    ]
    assert all(type(u) is tuple for p in store.patches("app.a", 0, 3) for u in p.units)


def test_patch_ranges_and_limit(store: RecordStore) -> None:
    commit_versions(store, "app.a", 10)
    assert store.patches("app.none", 0, 10) == []
    assert [p.v for p in store.patches("app.a", 3, 7)] == [4, 5, 6, 7]
    assert [p.v for p in store.patches("app.a", 3, 7, limit=2)] == [4, 5]
    assert [p.v for p in store.patches("app.a", 3, 7, limit=0)] == [4, 5, 6, 7]
    assert [p.v for p in store.patches("app.a", 8, 100)] == [9, 10]
    assert store.patches("app.a", 10, 10) == []
    assert store.patches("app.a", 5, 4) == []
    assert [p.value for p in store.patches("app.a", 0, 2)] == [{"n": 1}, {"n": 2}]


def test_history_bounded_by_versions(store: RecordStore) -> None:
    commit_versions(store, "app.a", 10, keep=3)
    assert kept(store, "app.a") == [8, 9, 10]
    commit_versions(store, "app.b", 4, keep=0)
    assert kept(store, "app.b") == [1, 2, 3, 4]  # 0: all, and per record
    commit_versions(store, "app.c", 2, keep=5)
    assert kept(store, "app.c") == [1, 2]


def test_history_bounded_by_age(store: RecordStore) -> None:
    commit_versions(store, "app.a", 9)
    store.commit([write("app.a", 10, min_ts=ts(6))])
    assert kept(store, "app.a") == [6, 7, 8, 9, 10]
    store.commit([write("app.a", 11, min_ts=ts(6), keep=3)])  # both bounds
    assert kept(store, "app.a") == [9, 10, 11]


def test_age_trimming_keeps_the_log_contiguous(store: RecordStore) -> None:
    # the clock went back at v2: only the oldest patches go while they are too old
    store.commit([write("app.a", 1, at=50), write("app.a", 2, at=10), write("app.a", 3, at=60)])
    store.commit([write("app.a", 4, at=61, min_ts=ts(30))])
    assert kept(store, "app.a") == [1, 2, 3, 4]
    store.commit([write("app.a", 5, at=62, min_ts=ts(55))])
    assert kept(store, "app.a") == [3, 4, 5]


def test_age_trimming_can_drop_every_patch(store: RecordStore) -> None:
    commit_versions(store, "app.a", 3, every=2)
    store.commit([write("app.a", 4, min_ts=ts(99), every=2)])
    assert kept(store, "app.a") == []
    assert checkpoints(store, "app.a", 4) == [4]  # the newest at or below row.v stays
    assert store.load("app.a") == RecordRow("app.a", 4, {"n": 4}, False, ts(4), "alice")


def test_checkpoints_every_n(store: RecordStore) -> None:
    commit_versions(store, "app.a", 10, every=3)
    assert checkpoints(store, "app.a", 10) == [3, 6, 9]
    assert store.checkpoint("app.a", 10) == (9, {"n": 9}, False)
    assert store.checkpoint("app.a", 5) == (3, {"n": 3}, False)
    assert store.checkpoint("app.a", 2) is None
    assert store.checkpoint("app.none", 10) is None
    commit_versions(store, "app.b", 5, every=0)
    assert store.checkpoint("app.b", 5) is None
    store.commit([write("app.a", 11), write("app.a", 12, deleted=True, every=3)])
    assert store.checkpoint("app.a", 12) == (12, None, True)


def test_checkpoint_trimming_keeps_the_replay_base(store: RecordStore) -> None:
    commit_versions(store, "app.a", 10, keep=3, every=4)
    # patches 8..10 kept: the newest checkpoint at or below 7 (4) stays, and 8
    assert kept(store, "app.a") == [8, 9, 10]
    assert checkpoints(store, "app.a", 10) == [4, 8]
    commit_versions(store, "app.a", 12, start=11, keep=3, every=4)
    assert kept(store, "app.a") == [10, 11, 12]
    assert checkpoints(store, "app.a", 12) == [8, 12]
    assert store.checkpoint("app.a", 7) is None


def test_checkpoints_stay_with_unbounded_history(store: RecordStore) -> None:
    commit_versions(store, "app.a", 12, every=2)
    assert checkpoints(store, "app.a", 12) == [2, 4, 6, 8, 10, 12]


def test_version_at(store: RecordStore) -> None:
    for v in range(1, 11):  # v at 10 * v seconds; kept: 6..10
        store.commit([write("app.a", v, at=10 * v, keep=5)])
    assert store.version_at("app.a", ts(80)) == 8
    assert store.version_at("app.a", ts(85)) == 8  # between versions 8 and 9
    assert store.version_at("app.a", ts(999)) == 10
    assert store.version_at("app.a", ts(60)) == 6
    assert store.version_at("app.a", ts(59)) is None  # only trimmed versions are that old
    assert store.version_at("app.none", ts(99)) is None


URIS = ["app.a_b.1", "app.a_b.2", "app.aXb.1", "app.a%b.1", "app.a%b.2", "app.a", "app.b.1"]


def test_list_and_count_match_an_exact_text_prefix(store: RecordStore) -> None:
    store.commit([write(uri, 1) for uri in reversed(URIS)])
    store.commit([write("app.a%b.2", 2, deleted=True), write("app.a_b.0", 1, deleted=True)])
    assert store.list("app.a_", None, 100) == ["app.a_b.1", "app.a_b.2"]
    assert store.list("app.a%", None, 100) == ["app.a%b.1"]
    assert store.list("app.a", None, 100) == [
        "app.a",
        "app.a%b.1",
        "app.aXb.1",
        "app.a_b.1",
        "app.a_b.2",
    ]
    assert store.list("", None, 0) == sorted(set(URIS) - {"app.a%b.2"})
    assert store.list("app.c", None, 10) == []
    assert store.count("app.a_") == 3  # deleted rows count
    assert store.count("app.a%") == 2
    assert store.count("app.a") == 7
    assert store.count("") == 8
    assert store.count("app.c") == 0


def test_list_after_and_limit(store: RecordStore) -> None:
    store.commit([write(f"app.r.{i:02d}", 1) for i in range(10)])
    store.commit([write("app.r.03", 2, deleted=True)])
    assert store.list("app.r.", None, 3) == ["app.r.00", "app.r.01", "app.r.02"]
    assert store.list("app.r.", "app.r.02", 3) == ["app.r.04", "app.r.05", "app.r.06"]
    assert store.list("app.r.", "app.r.08", 3) == ["app.r.09"]
    assert store.list("app.r.", "app.r.09", 3) == []
    assert store.list("app.r.", "app.a", 2) == ["app.r.00", "app.r.01"]  # after < prefix
    assert store.list("app.r.", "app.z", 2) == []  # after > every match
    assert len(store.list("app.r.", None, 0)) == 9  # 0: no limit


def test_list_orders_by_code_point(store: RecordStore) -> None:
    uris = ["app.é", "app.z", "app.\U0001f600", "app.\uffff", "app.Z", "app.\x7f"]
    store.commit([write(uri, 1) for uri in uris])
    assert store.list("app.", None, 0) == sorted(uris)
    assert store.list("app.\U0001f600", None, 0) == ["app.\U0001f600"]
    assert store.count("app.\uffff") == 1


def test_prefix_upper() -> None:
    assert prefix_upper("app.a") == "app.b"
    assert prefix_upper("") is None
    assert prefix_upper("\U0010ffff\U0010ffff") is None
    assert prefix_upper("a\U0010ffff") == "b"
    assert prefix_upper("a\ud7ff") == "a\ue000"  # no surrogates: it must encode as UTF-8


# ============================================================== SQLite only
def test_sqlite_batch_with_a_failing_write_commits_nothing(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "s.db")
    s.commit([write("app.a", 1)])
    with pytest.raises(sqlite3.IntegrityError):  # a duplicate patch (uri, v), third in line
        s.commit([write("app.a", 2), write("app.b", 1), write("app.a", 2), write("app.c", 1)])
    bad = write("app.b", 1, ops=[{"op": "add", "path": "/x", "value": {1, 2}}])  # not JSON
    with pytest.raises(TypeError):
        s.commit([write("app.a", 2, every=2), bad])
    for _ in range(2):  # nothing of either batch, in this connection and the next one
        assert s.load("app.a") == RecordRow("app.a", 1, {"n": 1}, False, ts(1), "alice")
        assert kept(s, "app.a") == [1]
        assert s.load("app.b") is None
        assert s.load("app.c") is None
        assert s.checkpoint("app.a", 2) is None
        assert s.count("app.") == 1
        s.close()
        s = SqliteStore(tmp_path / "s.db")
    s.commit([write("app.a", 2)])  # and the store still works
    assert kept(s, "app.a") == [1, 2]
    s.close()


def test_sqlite_rollback_when_the_connection_fails_mid_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = SqliteStore(tmp_path / "s.db")
    original = SqliteStore._write
    calls: list[str] = []

    def failing(self: SqliteStore, w: Write) -> None:
        calls.append(w.row.uri)
        if len(calls) == 3:
            raise sqlite3.OperationalError("disk I/O error")
        original(self, w)

    monkeypatch.setattr(SqliteStore, "_write", failing)
    with pytest.raises(sqlite3.OperationalError):
        s.commit([write("app.a", 1), write("app.b", 1), write("app.c", 1)])
    monkeypatch.undo()
    assert [s.load(u) for u in ("app.a", "app.b", "app.c")] == [None, None, None]
    assert s.count("") == 0
    s.close()


def test_sqlite_keeps_data_and_epoch_across_a_clean_close(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "s.db"  # parent directories are created
    s = SqliteStore(path)
    epoch = s.epoch
    assert len(epoch) == 16 and int(epoch, 16) >= 0
    commit_versions(s, "app.a", 5, keep=3, every=2)
    s.close()
    s.close()  # idempotent
    s = SqliteStore(path)
    assert s.epoch == epoch
    assert s.load("app.a") == RecordRow("app.a", 5, {"n": 5}, False, ts(5), "alice")
    assert kept(s, "app.a") == [3, 4, 5]
    assert s.checkpoint("app.a", 5) == (4, {"n": 4}, False)
    s.close()
    other = SqliteStore(tmp_path / "other.db")
    assert other.epoch != epoch  # a new database, a new epoch
    other.close()


def test_sqlite_epoch_changes_after_an_unclean_stop(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    first = SqliteStore(path)
    first.commit([write("app.a", 1)])
    # a second open while the first never closed: what a restart after a crash sees
    second = SqliteStore(path)
    assert second.epoch != first.epoch
    assert second.load("app.a") is not None
    second.close()
    first.close()
    third = SqliteStore(path)
    assert third.epoch == second.epoch  # the last close was clean
    third.close()


def test_memory_store_epoch_is_given() -> None:
    assert MemoryStore("abc").epoch == "abc"


@pytest.mark.parametrize(
    "content",
    [b"this is not a database\n" * 200, b"SQLite format 3\x00" + b"\xff" * 4000],
    ids=["text", "corrupt-header"],
)
def test_sqlite_rejects_a_non_database_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(content)
    with pytest.raises(StoreError, match=str(path)):
        SqliteStore(path)


def test_sqlite_rejects_a_foreign_or_newer_database(tmp_path: Path) -> None:
    path = tmp_path / "foreign.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE users (name TEXT)")
    db.close()
    with pytest.raises(StoreError, match="not a record store"):
        SqliteStore(path)
    path = tmp_path / "newer.db"
    SqliteStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    db.close()
    with pytest.raises(StoreError, match="schema '99'"):
        SqliteStore(path)


def test_sqlite_rejects_a_path_it_cannot_open(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=f"{tmp_path}: cannot open"):
        SqliteStore(tmp_path)  # a directory
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError, match="cannot open"):
        SqliteStore(tmp_path / "file" / "s.db")  # its parent is a file


CHILD = """
import sys
import orjson
from wamp_router.core.sync.store import PatchRow, RecordRow, Write
from wamp_router.stores import SqliteStore

store = SqliteStore(sys.argv[1])
print("epoch", store.epoch, flush=True)
for v in range(1, 1_000_000):
    writes = []
    for uri in ("app.a", "app.b"):
        value = {"uri": uri, "v": v}
        row = RecordRow(uri, v, value, False, "2024-01-01T00:00:00Z", "w")
        patch = PatchRow(v, None, value, False, "w", None, row.ts, [("", "set")])
        writes.append(Write(row, patch, orjson.dumps(value), 0, None, 10))
    store.commit(writes)
    print("committed", v, flush=True)
"""


def test_sqlite_committed_batches_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True, env=env
    )
    reported = 0
    try:
        assert child.stdout is not None
        word, epoch = child.stdout.readline().split()
        assert word == "epoch"
        while reported < 30:
            line = child.stdout.readline()
            assert line.startswith("committed "), line
            reported = int(line.split()[1])
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    s = SqliteStore(path)
    try:
        assert s.epoch != epoch  # it never closed: an unclean stop
        for uri in ("app.a", "app.b"):
            row = s.load(uri)
            assert row is not None and row.v >= reported
            patches = s.patches(uri, 0, reported)
            assert [p.v for p in patches] == list(range(1, reported + 1))
            assert all(p.value == {"uri": uri, "v": p.v} for p in patches)
            assert s.checkpoint(uri, reported) == (
                reported // 10 * 10,
                {"uri": uri, "v": reported // 10 * 10},
                False,
            )
    finally:
        s.close()


# ============================================== both stores answer the same
def _writes() -> st.SearchStrategy[list[tuple[str, bool, int, int, int, int]]]:
    # (uri, deleted, time step back or forth, keep_versions, min_ts offset, checkpoint_every)
    return st.lists(
        st.tuples(
            st.sampled_from(["app.a", "app.a", "app.a", "app.b", "app.a_c", "app.%"]),
            st.booleans(),
            st.sampled_from([-9, -2, 0, 1, 4, 10]),
            st.sampled_from([0, 0, 2, 5]),
            st.sampled_from([0, 5, 5, 20]),
            st.sampled_from([0, 2, 3]),
        ),
        min_size=8,
        max_size=40,
    )


@MODEST
@given(_writes(), st.integers(1, 5))
def test_memory_and_sqlite_agree(
    plan: list[tuple[str, bool, int, int, int, int]], batch: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        stores: list[RecordStore] = [MemoryStore("e"), SqliteStore(Path(tmp) / "s.db")]
        versions: dict[str, int] = {}
        now = 200
        pending: list[Write] = []
        for i, (uri, deleted, step, keep, age, every) in enumerate(plan):
            now += step
            v = versions[uri] = versions.get(uri, 0) + 1
            min_ts = ts(now - age) if age else None
            value = None if deleted else {"i": i, "tags": ["x"] * (i % 3)}
            pending.append(
                write(uri, v, value, deleted=deleted, at=now, keep=keep, min_ts=min_ts, every=every)
            )
            if len(pending) >= batch or i == len(plan) - 1:
                for s in stores:
                    s.commit(pending)
                pending = []
        answers = [_everything(s, versions) for s in stores]
        for s in stores:
            s.close()
    assert answers[0] == answers[1]


def _everything(store: RecordStore, versions: dict[str, int]) -> list[Any]:
    out: list[Any] = [store.list("", None, 0), store.list("app.a", "app.a", 1), store.count("app.")]
    for uri, last in versions.items():
        out.append(store.load(uri))
        out.append(store.patches(uri, 0, last))
        out.append(store.patches(uri, 1, last, limit=2))
        out.extend(store.checkpoint(uri, v) for v in range(last + 1))
        out.extend(store.version_at(uri, ts(t)) for t in range(150, 700, 11))
    return out
