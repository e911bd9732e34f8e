"""Data-sync records shared by router processes through one ``redis-server``
(``store = "redis"``; started by the tests on a free loopback port): a write on
any node reaches observers on every node with contiguous versions, concurrent
writers on several nodes lose nothing, conflicts follow the policy across
nodes, a node started later (or restarted after ``kill -9``) has every record
with its history, and a Redis restart stops writes (clear error) but not
reads, then writes go on."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from autobahn.wamp.exception import ApplicationError

from .clients import close, join
from .redis_server import RedisServer, redis_server
from .router_process import RouterProcess
from .test_cluster import health, run
from .test_cluster import start_node as cluster_node
from .test_datasync import ECHO, Replica, observe
from .test_operations import scrape

CONFIG = """
[[listeners]]
transport = "websocket"
endpoint = "127.0.0.1:0"
[listeners.auth.anonymous]
role = "anonymous"

[[realms]]
name = "realm1"
[[realms.roles]]
name = "anonymous"
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = ["call", "register", "publish", "subscribe"]
[realms.sync]
[[realms.sync.domains]]
prefix = "app.doc."
store = "redis"
checkpoint_every = 3
[[realms.sync.domains]]
prefix = "app.strict."
store = "redis"
conflict = "reject"

[metrics]
endpoint = "127.0.0.1:0"

[cluster]
backplane = "redis://127.0.0.1:%d"
node_ttl = 1.5
heartbeat = 0.3
"""


def start_node(stack: ExitStack, redis: RedisServer) -> RouterProcess:
    return cluster_node(stack, redis, CONFIG, listeners=2)  # websocket + metrics


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[RedisServer, list[RouterProcess]]]:
    with redis_server() as redis, ExitStack() as stack:
        yield redis, [start_node(stack, redis), start_node(stack, redis)]


def inc(n: int) -> list[dict[str, Any]]:
    return [{"op": "x-inc", "path": "/n", "by": n}]


def test_a_write_on_one_node_reaches_observers_on_every_node(pair: Any) -> None:
    _, (a, b) = pair
    uri = "app.doc.shared1"

    async def main() -> None:
        wa, wb = await join(a.ws_url), await join(b.ws_url)
        try:
            ra, rb = await observe(wa, uri), await observe(wb, uri)
            assert rb.log == [("snapshot", 0)] and rb.value is None
            assert (await wa.call("sync.create", uri, {"title": "Hello"}))["v"] == 1
            res = await wb.call("sync.patch", uri, [{"op": "add", "path": "/tags",
                                                     "value": ["x"]}])
            assert res == {"v": 2, "rebased": False}
            await wa.publish(uri, merge={"title": "Hi"}, options=ECHO)
            await ra.wait_for(3)
            await rb.wait_for(3)
            for r in (ra, rb):
                assert r.value == {"title": "Hi", "tags": ["x"]}
                assert r.log == [("snapshot", 0), ("patch", 1), ("patch", 2), ("patch", 3)]
                assert r.epoch == ra.epoch
            for w in (wa, wb):  # reads are answered by each node, from the same versions
                got = await w.call("sync.get", uri, since=1, epoch=ra.epoch)
                assert got["v"] == 3 and [p["v"] for p in got["patches"]] == [2, 3]
                history = await w.call("sync.history", uri)
                assert [p["v"] for p in history["patches"]] == [1, 2, 3]
                at = await w.call("sync.get_at", uri, v=2)
                assert at["value"] == {"title": "Hello", "tags": ["x"]}
                listed = await w.call("sync.list", "app.doc.")
                assert uri in listed["uris"]
            # a new observer on either node gets the current state, then the changes
            late = Replica()
            await wb.subscribe(late.on_event, uri, options=_retained())
            await late.wait_for(3)
            await wa.call("sync.delete", uri)
            await late.wait_for(4)
            assert late.deleted and late.log == [("snapshot", 3), ("patch", 4)]
        finally:
            await close(wa, wb)

    run(main())


def _retained() -> Any:
    from autobahn.wamp import types

    return types.SubscribeOptions(get_retained=True, details=True)


def test_a_read_on_another_node_after_the_answer_has_the_version(pair: Any) -> None:
    """The answer to a write leaves once every node has the version (as on one
    router: whoever reads after the writer was answered sees it)."""
    _, (a, b) = pair

    async def main() -> None:
        wa, wb = await join(a.ws_url), await join(b.ws_url)
        try:
            uri = "app.doc.ryw"
            assert (await wa.call("sync.create", uri, {"n": 0}))["v"] == 1
            assert (await wb.call("sync.get", uri))["v"] == 1
            for i in range(1, 30):
                writer, reader = (wa, wb) if i % 2 else (wb, wa)
                assert (await writer.call("sync.patch", uri, inc(1)))["v"] == i + 1
                got = await reader.call("sync.get", uri)
                assert (got["v"], got["value"]) == (i + 1, {"n": i})
        finally:
            await close(wa, wb)

    run(main())


def test_concurrent_writers_on_both_nodes_lose_nothing(pair: Any) -> None:
    _, (a, b) = pair
    uri = "app.doc.counter"

    def remote_versions() -> float:
        key = 'wamp_sync_remote_versions_total{realm="realm1"}'
        return sum(scrape(n.metrics_url).get(key, 0.0) for n in (a, b))

    async def main() -> None:
        wa, wb = await join(a.ws_url), await join(b.ws_url)
        before = remote_versions()
        try:
            ra, rb = await observe(wa, uri), await observe(wb, uri)
            calls = [w.call("sync.patch", uri, inc(1)) for _ in range(40) for w in (wa, wb)]
            results = await asyncio.gather(*calls)
            versions = sorted(r["v"] for r in results)
            assert versions == list(range(1, 81))  # each write got its own version
            await ra.wait_for(80)
            await rb.wait_for(80)
            for r in (ra, rb):  # every version, in order, on both nodes (a gap fails)
                assert r.value == {"n": 80}
                assert [v for kind, v in r.log if kind == "patch"] == list(range(1, 81))
        finally:
            await close(wa, wb)
        assert remote_versions() - before == 80  # each node applied the other's (40 + 40)

    run(main())


def test_conflicts_follow_the_policy_across_nodes(pair: Any) -> None:
    _, (a, b) = pair
    uri = "app.strict.doc"

    async def main() -> None:
        wa, wb = await join(a.ws_url), await join(b.ws_url)
        try:
            rb = await observe(wb, uri)
            await wa.call("sync.set", uri, {"a": 1})
            await rb.wait_for(1)
            await wa.call("sync.patch", uri, [{"op": "x-set", "path": "/a", "value": 2}],
                          base=1)
            with pytest.raises(ApplicationError) as info:  # b's base 1 is stale: v2 is a's
                await wb.call("sync.patch", uri, [{"op": "x-set", "path": "/b", "value": 3}],
                              base=1)
            assert info.value.error == "sync.error.conflict"
            assert info.value.kwargs["v"] == 2
            assert [p["v"] for p in info.value.kwargs["patches"]] == [2]
            res = await wb.call("sync.patch", uri, [{"op": "x-set", "path": "/b", "value": 3}],
                                base=2)
            assert res["v"] == 3
            await rb.wait_for(3)
            assert rb.value == {"a": 2, "b": 3}
        finally:
            await close(wa, wb)

    run(main())


async def patch_on(url: str, uri: str, n: int) -> dict[str, Any]:
    w = await join(url)
    try:
        return dict(await w.call("sync.patch", uri, inc(n)))
    finally:
        await close(w)


async def load_then_kill(b: RouterProcess, a: RouterProcess, uri: str) -> None:
    """b started after a's writes: it has the record with its history; then a
    dies and b goes on."""
    wb = await join(b.ws_url)
    try:
        got = await wb.call("sync.get", uri)
        assert got["v"] == 5 and got["value"] == {"n": 5}
        delta = await wb.call("sync.get", uri, since=3, epoch=got["epoch"])
        assert [p["v"] for p in delta["patches"]] == [4, 5]
        assert (await wb.call("sync.get_at", uri, v=2))["value"] == {"n": 2}
        rb = await observe(wb, uri)
        os.kill(a.proc.pid, signal.SIGKILL)
        a.proc.wait(10)
        assert (await wb.call("sync.patch", uri, inc(10)))["v"] == 6
        await rb.wait_for(6)
        assert rb.value == {"n": 15}
    finally:
        await close(wb)


async def replaced(c: RouterProcess, b: RouterProcess, uri: str) -> None:
    wc = await join(c.ws_url)
    try:
        rc = await observe(wc, uri)
        assert rc.v == 6 and rc.value == {"n": 15}
        assert (await patch_on(b.ws_url, uri, 1))["v"] == 7
        await rc.wait_for(7)
        assert rc.value == {"n": 16}
    finally:
        await close(wc)


def test_a_late_node_has_every_record_and_a_killed_node_loses_nothing() -> None:
    uri = "app.doc.late"
    with redis_server() as redis, ExitStack() as stack:
        a = start_node(stack, redis)

        async def before() -> None:
            for i in range(5):
                assert (await patch_on(a.ws_url, uri, 1))["v"] == i + 1

        run(before())
        b = start_node(stack, redis)  # loads the records written before it started
        run(load_then_kill(b, a, uri))
        c = start_node(stack, redis)  # in place of the killed node
        run(replaced(c, b, uri))


def test_a_redis_restart_stops_writes_not_reads_then_writes_go_on() -> None:
    with redis_server(persist=True) as redis, ExitStack() as stack:
        a, b = start_node(stack, redis), start_node(stack, redis)
        uri = "app.doc.outage"

        async def main() -> None:
            wa, wb = await join(a.ws_url), await join(b.ws_url)
            try:
                rb = await observe(wb, uri)
                await wa.call("sync.set", uri, {"n": 1})
                await rb.wait_for(1)
                epoch = rb.epoch
                redis.stop()
                deadline = time.monotonic() + 5
                while health(a)["status"] != "degraded":
                    assert time.monotonic() < deadline, health(a)
                    await asyncio.sleep(0.1)
                with pytest.raises(ApplicationError) as info:
                    await wa.call("sync.patch", uri, inc(1))
                assert info.value.error == "sync.error.unavailable"
                assert "Redis" in info.value.args[0]
                got = await wa.call("sync.get", uri)  # reads go on from the node's copy
                assert got["v"] == 1 and got["value"] == {"n": 1}
                await asyncio.sleep(2.0)  # longer than node_ttl: every deadline passes
                redis.start()  # the append-only file brings the records back (and the
                # nodes' old deadlines: nobody is declared dead for it, nobody fences)
                deadline = time.monotonic() + 15
                while not (health(a)["backplane"]["up"] and health(b)["backplane"]["up"]):
                    assert time.monotonic() < deadline, "the nodes did not reconnect"
                    await asyncio.sleep(0.1)
                res = await wa.call("sync.patch", uri, inc(1))
                assert res["v"] == 2
                await rb.wait_for(2)
                assert rb.value == {"n": 2} and rb.epoch == epoch
                assert [v for kind, v in rb.log if kind == "patch"] == [1, 2]
                assert wa.is_attached() and wb.is_attached()
                assert "declared this node dead" not in a.output() + b.output()
            finally:
                await close(wa, wb)

        run(main())
