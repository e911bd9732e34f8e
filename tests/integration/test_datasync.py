"""Data-sync end to end with autobahn-python (asyncio) clients against the
router started from ``realms/datasync.toml`` (free ports, a temporary SQLite
file): observe, write by PUBLISH and CALL, conflicts and rebase, resync after
a disconnect, delete and re-create, every serializer, and a ``kill -9``."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from autobahn.wamp import types
from autobahn.wamp.exception import ApplicationError

from tests.sync_client import RecordState

from .clients import Client, close, join
from .router_process import ROOT, RouterProcess, run_router

ACK = types.PublishOptions(acknowledge=True)
ECHO = types.PublishOptions(acknowledge=True, exclude_me=False)


def datasync_config(database: Path) -> str:
    text = (ROOT / "realms" / "datasync.toml").read_text()
    text = text.replace("127.0.0.1:8080", "127.0.0.1:0").replace("127.0.0.1:8081", "127.0.0.1:0")
    assert 'database = "data/datasync.sqlite3"' in text
    return text.replace('database = "data/datasync.sqlite3"', f'database = "{database}"')


@pytest.fixture(scope="module")
def db_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("datasync")


@pytest.fixture(scope="module")
def router(db_dir: Path) -> Iterator[RouterProcess]:
    with run_router(datasync_config(db_dir / "records.sqlite3")) as rp:
        yield rp


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


class Replica(RecordState):
    """A record replica fed by an autobahn subscription."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = asyncio.Event()

    def on_event(self, *args: Any, details: types.EventDetails | None = None,
                 **kw: Any) -> None:
        assert args == ()
        if details is not None and details.retained:
            self.snapshot(kw)
        else:
            self.patch(kw)
        self.changed.set()

    async def wait_for(self, v: int, timeout: float = 5) -> None:
        async def until() -> None:
            while self.v < v:
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(until(), timeout)


async def observe(session: Client, uri: str) -> Replica:
    replica = Replica()
    await session.subscribe(replica.on_event, uri,
                            options=types.SubscribeOptions(get_retained=True, details=True))
    await replica.wait_for(0)
    return replica


@pytest.mark.parametrize("serializer", ["json", "msgpack", "cbor"])
def test_observe_and_write_by_publish_and_by_call(router: RouterProcess,
                                                  serializer: str) -> None:
    uri = f"app.doc.basic_{serializer}"

    async def main() -> None:
        a = await join(router.ws_url, serializer=serializer)
        b = await join(router.raw_url, serializer=serializer)
        try:
            ra = await observe(a, uri)
            assert ra.log == [("snapshot", 0)] and ra.value is None
            await b.publish(uri, ops=[{"op": "add", "path": "/title", "value": "Hello"}],
                            cid="c-1", options=ACK)
            res = await b.call("sync.patch", uri,
                               [{"op": "add", "path": "/tags", "value": ["a"]},
                                {"op": "x-append-unique", "path": "/tags", "value": "b"}])
            assert res == {"v": 2, "rebased": False}
            res = await b.call("sync.merge", uri, {"title": "Hi", "n": 1})
            assert res["v"] == 3
            await ra.wait_for(3)
            assert ra.value == {"title": "Hi", "tags": ["a", "b"], "n": 1}
            assert ra.log == [("snapshot", 0), ("patch", 1), ("patch", 2), ("patch", 3)]
            got = await b.call("sync.get", uri)
            assert got["v"] == 3 and got["value"] == ra.value and got["epoch"] == ra.epoch
            # a second observer gets the state at once, then follows
            rb = await observe(b, uri)
            assert rb.v == 3 and rb.value == ra.value
        finally:
            await close(a, b)

    run(main())


def test_own_patch_event_arrives_before_the_result(router: RouterProcess) -> None:
    uri = "app.doc.echo"

    async def main() -> None:
        a = await join(router.ws_url)
        try:
            ra = await observe(a, uri)
            for i in range(5):
                res = await a.call("sync.set", uri, {"i": i})
                assert ra.v == res["v"] and ra.value == {"i": i}  # already applied
            await a.publish(uri, value={"i": 99}, options=ECHO)
            assert ra.value == {"i": 99}  # the echo came before PUBLISHED
        finally:
            await close(a)

    run(main())


def test_conditional_writes_conflict_and_rebase(router: RouterProcess) -> None:
    uri = "app.doc.conflict"

    async def main() -> None:
        a = await join(router.ws_url)
        b = await join(router.ws_url)
        try:
            await a.call("sync.set", uri, {"title": "t", "body": "b", "items": []})  # v1
            await b.call("sync.patch", uri, [{"op": "replace", "path": "/title",
                                              "value": "B"}], base=1)  # v2
            # a, still at v1, edits another field: rebased
            res = await a.call("sync.patch", uri, [{"op": "replace", "path": "/body",
                                                    "value": "A"}], base=1)
            assert res == {"v": 3, "rebased": True}
            # a, still at v1, edits the title b changed: conflict with what it missed
            with pytest.raises(ApplicationError) as exc:
                await a.call("sync.patch", uri, [{"op": "replace", "path": "/title",
                                                  "value": "A"}], base=1)
            err = exc.value
            assert err.error == "sync.error.conflict"
            assert err.kwargs["conflicts"] == ["/title"] and err.kwargs["v"] == 3
            assert [p["v"] for p in err.kwargs["patches"]] == [2, 3]
            assert "version conflict" in err.args[0]
            # the same by PUBLISH with acknowledge
            with pytest.raises(ApplicationError) as exc:
                await a.publish(uri, base=1, ops=[{"op": "remove", "path": "/title"}],
                                options=ACK)
            assert exc.value.error == "sync.error.conflict"
            await b.publish(uri, base=1, ops=[{"op": "add", "path": "/items/-", "value": 1}],
                            options=ACK)
            got = await a.call("sync.get", uri)
            assert got["v"] == 4 and got["value"] == {"title": "B", "body": "A", "items": [1]}
            with pytest.raises(ApplicationError) as exc:
                await a.call("sync.patch", uri, [{"op": "test", "path": "/title",
                                                  "value": "nope"}])
            assert exc.value.error == "sync.error.test_failed"
        finally:
            await close(a, b)

    run(main())


def test_resync_after_a_disconnect_by_delta_and_by_snapshot(router: RouterProcess) -> None:
    uri = "app.doc.resync"

    async def main() -> None:
        a = await join(router.ws_url)
        b = await join(router.ws_url)
        try:
            ra = await observe(a, uri)
            await b.call("sync.set", uri, {"n": 0})
            await ra.wait_for(1)
        finally:
            await close(a)
        try:
            for _ in range(3):
                await b.call("sync.patch", uri, [{"op": "x-inc", "path": "/n", "by": 1}])
            a = await join(router.ws_url)
            # delta: subscribe (buffer), then get since the version held
            buffered: list[dict[str, Any]] = []
            await a.subscribe(lambda **kw: buffered.append(kw), uri)
            got = await a.call("sync.get", uri, since=ra.v, epoch=ra.epoch)
            assert [p["v"] for p in got["patches"]] == [2, 3, 4]
            ra.resync(got)
            for p in buffered:
                ra.patch(p)
            assert ra.v == 4 and ra.value == {"n": 3}
            # an unknown epoch: a full snapshot
            got = await a.call("sync.get", uri, since=1, epoch="not-the-epoch")
            assert got["value"] == {"n": 3} and got["v"] == 4 and "patches" not in got
        finally:
            await close(a, b)

    run(main())


def test_delete_and_recreate(router: RouterProcess) -> None:
    uri = "app.doc.deleted"

    async def main() -> None:
        a = await join(router.ws_url)
        b = await join(router.ws_url)
        try:
            ra = await observe(a, uri)
            await b.call("sync.create", uri, {"x": 1})
            with pytest.raises(ApplicationError) as exc:
                await b.call("sync.create", uri, {"x": 2})
            assert exc.value.error == "sync.error.exists"
            assert (await b.call("sync.delete", uri))["v"] == 2
            await ra.wait_for(2)
            assert ra.deleted and ra.value is None
            head = await b.call("sync.head", uri)
            assert head["deleted"] is True and head["exists"] is False and head["v"] == 2
            assert (await b.call("sync.create", uri, {"x": 3}))["v"] == 3
            await ra.wait_for(3)
            assert not ra.deleted and ra.value == {"x": 3}
            assert ra.log == [("snapshot", 0), ("patch", 1), ("patch", 2), ("patch", 3)]
        finally:
            await close(a, b)

    run(main())


def test_bad_writes_get_specific_errors(router: RouterProcess) -> None:
    uri = "app.doc.bad"

    async def main() -> None:
        a = await join(router.ws_url)
        try:
            cases = [
                (dict(ops=[{"op": "add", "path": "/constructor", "value": 1}]),
                 "sync.error.invalid_key"),
                (dict(ops=[{"op": "jump", "path": "/a"}]), "sync.error.invalid_patch"),
                (dict(value={"a": 1}, merge={}), "sync.error.invalid_patch"),
                (dict(ops=[{"op": "remove", "path": "/missing"}]), "sync.error.invalid_patch"),
            ]
            for kwargs, uri_expected in cases:
                with pytest.raises(ApplicationError) as exc:
                    await a.publish(uri, options=ACK, **kwargs)
                assert exc.value.error == uri_expected, kwargs
                assert exc.value.args and isinstance(exc.value.args[0], str)
            with pytest.raises(ApplicationError) as exc:
                await a.publish(uri, value={}, options=types.PublishOptions(
                    acknowledge=True, eligible=[1]))
            assert exc.value.error == "sync.error.invalid_options"
            with pytest.raises(ApplicationError) as exc:
                await a.call("sync.get", "com.example.not_a_record")
            assert exc.value.error == "sync.error.not_managed"
            assert (await a.call("sync.head", uri))["v"] == 0
        finally:
            await close(a)

    run(main())


def test_acknowledged_writes_survive_kill_9(db_dir: Path) -> None:
    database = db_dir / "crash.sqlite3"
    config = datasync_config(database)
    uri = "app.doc.crash"
    seen: dict[str, Any] = {}

    async def write(rp: RouterProcess) -> None:
        a = await join(rp.ws_url)
        ra = await observe(await join(rp.raw_url), uri)
        last = {}
        for i in range(50):
            await a.publish(uri, ops=[{"op": "add", "path": f"/k{i}", "value": i}],
                            options=ACK)
            last = {"v": i + 1}
        await ra.wait_for(50)
        seen.update(v=ra.v, value=ra.value, epoch=ra.epoch, acked=last["v"])
        # more writes in flight when the router dies: none of them may be seen later
        # at a version with another value
        for i in range(50, 60):
            a.publish(uri, ops=[{"op": "add", "path": f"/k{i}", "value": i}])
        os.kill(rp.proc.pid, signal.SIGKILL)
        rp.proc.wait(10)
        seen["observed"] = dict(v=ra.v, value=ra.value)

    async def read(rp: RouterProcess) -> dict[str, Any]:
        a = await join(rp.ws_url)
        try:
            return dict(await a.call("sync.get", uri))
        finally:
            await close(a)

    with run_router(config) as rp:
        run(write(rp))
    with run_router(config) as rp:
        got = run(read(rp))
    assert got["v"] >= seen["acked"]
    assert {k: got["value"][k] for k in seen["value"]} == seen["value"]
    assert got["value"] == {f"k{i}": i for i in range(got["v"])}
    assert got["v"] >= seen["observed"]["v"]  # no client saw a version the store lost
    assert got["epoch"] != seen["epoch"]  # an unclean stop: clients take a snapshot


def test_metrics_count_sync_writes_and_conflicts(db_dir: Path) -> None:
    from .test_operations import scrape

    config = datasync_config(db_dir / "metrics.sqlite3")
    config = '[metrics]\nendpoint = "127.0.0.1:0"\n\n' + config
    uri = "app.doc.metrics"

    async def main(rp: RouterProcess) -> None:
        a = await join(rp.ws_url)
        try:
            await a.call("sync.set", uri, {"a": 1})
            await a.call("sync.set", uri, {"a": 2})
            with pytest.raises(ApplicationError):
                await a.call("sync.set", uri, {"a": 3}, base=1)
            await a.call("sync.get", uri)
        finally:
            await close(a)

    with run_router(config, expect_listeners=3) as rp:
        run(main(rp))
        values = scrape(rp.metrics_url)
    assert values['wamp_sync_writes_total{realm="realm1"}'] == 2
    assert values['wamp_sync_conflicts_total{realm="realm1"}'] == 1
    assert values['wamp_sync_commits_total{realm="realm1"}'] >= 1
