"""A realm served by three router processes through one ``redis-server``
(started by the tests on a free loopback port): publications cross nodes with
every option, a node gets only what its sessions subscribed to, retained
events and meta events are cluster-wide, a node killed with SIGKILL leaves the
cluster, and a Redis outage leaves local traffic running."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from autobahn.wamp import types

from .clients import Client, close, join
from .redis_server import RedisServer, redis_server
from .router_process import RouterProcess, run_router
from .test_operations import scrape

ACK = types.PublishOptions(acknowledge=True)

CONFIG = """
[[listeners]]
transport = "websocket"
endpoint = "127.0.0.1:0"
[listeners.auth.anonymous]
role = "anonymous"
[[listeners.auth.ticket]]
authid = "alice"
ticket = "alice-secret"
role = "user"
[[listeners.auth.ticket]]
authid = "bob"
ticket = "bob-secret"
role = "admin"

[[listeners]]
transport = "rawsocket"
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
[[realms.roles]]
name = "user"
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = ["call", "register", "publish", "subscribe"]
[[realms.roles]]
name = "admin"
disclose = { publisher = true }
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = ["call", "register", "publish", "subscribe"]

[metrics]
endpoint = "127.0.0.1:0"

[cluster]
backplane = "redis://127.0.0.1:%d"
node_ttl = 1.5
heartbeat = 0.3
"""


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


def start_node(stack: ExitStack, redis: RedisServer, config: str = CONFIG,
               listeners: int = 3) -> RouterProcess:
    """A node of ``config`` (its ``%d``: Redis's port), joined to the cluster."""
    rp = stack.enter_context(run_router(config % redis.port, expect_listeners=listeners))
    rp.wait_for_line("cluster backplane: connected", timeout=15)
    return rp


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[RedisServer, list[RouterProcess]]]:
    with redis_server() as redis, ExitStack() as stack:
        nodes = [start_node(stack, redis) for _ in range(3)]
        yield redis, nodes


def health(rp: RouterProcess) -> dict[str, Any]:
    url = rp.metrics_url.rsplit("/", 1)[0] + "/health"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return dict(json.loads(resp.read()))
    except urllib.error.HTTPError as exc:
        return dict(json.loads(exc.read()))


class Inbox:
    def __init__(self) -> None:
        self.events: asyncio.Queue[tuple[str, tuple[Any, ...], dict[str, Any], Any]] = (
            asyncio.Queue())

    def handler(self, name: str) -> Any:
        def on_event(*args: Any, details: Any = None, **kwargs: Any) -> None:
            self.events.put_nowait((name, args, kwargs, details))
        return on_event

    async def get(self, timeout: float = 5) -> tuple[str, tuple[Any, ...], dict[str, Any], Any]:
        return await asyncio.wait_for(self.events.get(), timeout)

    async def until(self, marker: str, timeout: float = 5) -> list[tuple[str, tuple[Any, ...]]]:
        """Everything received up to a publication whose first arg is ``marker``."""
        out = []
        while True:
            name, args, _, _ = await self.get(timeout)
            if args and args[0] == marker:
                return out
            out.append((name, args))


async def subscribe(session: Client, inbox: Inbox, name: str, topic: str,
                    **options: Any) -> None:
    await session.subscribe(inbox.handler(name), topic,
                            options=types.SubscribeOptions(details=True, **options))


async def settled(publisher: Client, inbox: Inbox, topic: str, name: str) -> None:
    """Publish probes until one arrives: the subscriptions made before reached
    every node (pattern interest travels through Redis)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        await publisher.publish(topic, "probe", options=ACK)
        try:
            while True:
                got, args, _, _ = await inbox.get(0.3)
                if got == name and args == ("probe",):
                    await asyncio.sleep(0.2)
                    while not inbox.events.empty():  # drop the other probes
                        inbox.events.get_nowait()
                    return
        except TimeoutError:
            continue
    raise AssertionError(f"no probe on {topic} reached {name}")


def test_exact_prefix_and_wildcard_subscriptions_across_nodes(cluster: Any) -> None:
    _, (a, b, c) = cluster

    async def main() -> None:
        sub = await join(a.ws_url)
        other = await join(c.raw_url)
        pub = await join(b.ws_url, serializer="msgpack")
        try:
            inbox = Inbox()
            await subscribe(sub, inbox, "exact", "com.x1.orders.new")
            await subscribe(sub, inbox, "prefix", "com.x1.orders", match="prefix")
            await subscribe(sub, inbox, "wildcard", "com.x1..new", match="wildcard")
            await subscribe(other, inbox, "other", "com.x1", match="prefix")
            await settled(pub, inbox, "com.x1.orders.new", "wildcard")
            await settled(pub, inbox, "com.x1.orders.probe", "other")
            await pub.publish("com.x1.orders.new", 1, b"\x00\xff", k="v", options=ACK)
            await pub.publish("com.x1.orders.new", "end", options=ACK)
            got = await inbox.until("end")
            got += await inbox.until("end")
            got += await inbox.until("end")
            got += await inbox.until("end")
            assert sorted(name for name, _ in got) == ["exact", "other", "prefix", "wildcard"]
            assert all(args == (1, b"\x00\xff") for _, args in got)
        finally:
            await close(sub, other, pub)

    run(main())


def test_filters_and_disclosure_across_nodes(cluster: Any) -> None:
    _, (a, b, c) = cluster

    async def main() -> None:
        anon = await join(a.ws_url)
        alice = await join(c.ws_url, authmethods=["ticket"], authid="alice",
                           secret="alice-secret")
        bob = await join(a.ws_url, authmethods=["ticket"], authid="bob", secret="bob-secret")
        pub = await join(b.ws_url)
        topic = "com.x2.news"
        try:
            inbox = Inbox()
            for name, s in (("anon", anon), ("alice", alice), ("bob", bob), ("pub", pub)):
                await subscribe(s, inbox, name, topic)
            await asyncio.sleep(0.2)  # exact interest: a SUBSCRIBE on each node's connection

            async def publish(tag: str, **options: Any) -> set[str]:
                await pub.publish(topic, tag, options=types.PublishOptions(acknowledge=True,
                                                                           **options))
                await pub.publish(topic, "end", options=types.PublishOptions(
                    acknowledge=True, exclude_me=False))
                names: set[str] = set()
                done = 0
                while done < 4:  # "end" reaches all four subscribers
                    name, args, _, _ = await inbox.get()
                    if args == ("end",):
                        done += 1
                    else:
                        assert args == (tag,)
                        names.add(name)
                return names

            assert await publish("plain") == {"anon", "alice", "bob"}  # exclude_me
            assert await publish("me", exclude_me=False) == {"anon", "alice", "bob", "pub"}
            anon_id = anon._session_id
            alice_id = alice._session_id
            assert await publish("ex", exclude=[anon_id]) == {"alice", "bob"}
            assert await publish("el", eligible=[alice_id]) == {"alice"}
            assert await publish("exid", exclude_authid=["alice"]) == {"anon", "bob"}
            assert await publish("elrole", eligible_authrole=["admin"]) == {"bob"}
            # publisher disclosure (forced for bob's role) travels with the publication
            await bob.publish(topic, "who", options=types.PublishOptions(
                acknowledge=True, eligible=[alice_id]))
            name, args, _, details = await inbox.get()
            assert (name, args) == ("alice", ("who",))
            assert details.publisher == bob._session_id
            assert details.publisher_authid == "bob"
        finally:
            await close(anon, alice, bob, pub)

    run(main())


def test_retained_events_published_at_once_on_two_nodes_end_alike(cluster: Any) -> None:
    """Each node keeps its own publication at once and hears of the other's
    later: every node must still end with the one Redis kept (the last)."""
    redis, (a, b, c) = cluster
    retain = types.PublishOptions(acknowledge=True, retain=True)

    async def retained(session: Client, topic: str) -> Any:
        inbox = Inbox()
        sub = await session.subscribe(inbox.handler("r"), topic,
                                      options=types.SubscribeOptions(get_retained=True))
        _, args, _, _ = await inbox.get()
        await sub.unsubscribe()
        return args[0]

    async def main() -> None:
        on_a, on_b = await join(a.ws_url), await join(b.ws_url)
        observers = [await join(n.ws_url) for n in (a, b, c)]
        topics = [f"com.x3b.t{i}" for i in range(8)]
        for topic in topics:  # at once
            await asyncio.gather(on_a.publish(topic, "from a", options=retain),
                                 on_b.publish(topic, "from b", options=retain))
        for topic in topics[:4]:  # one after the other (acknowledged): the later one stays
            await on_a.publish(topic, "first", options=retain)
            await on_b.publish(topic, "second", options=retain)
        await asyncio.sleep(0.5)
        for i, topic in enumerate(topics):
            seen = {await retained(o, topic) for o in observers}
            assert len(seen) == 1, (topic, seen)  # one retained event, cluster-wide
            stored = redis.command("HGET", "wr:realm1:retained", topic)
            assert seen.pop().encode() in stored
            if i < 4:
                assert b"second" in stored
        await close(on_a, on_b, *observers)

    run(main())


def test_retained_events_are_cluster_wide(cluster: Any) -> None:
    _, (a, b, c) = cluster

    async def main() -> None:
        pub = await join(b.ws_url)
        try:
            await pub.publish("com.x3.state", 42, options=types.PublishOptions(
                acknowledge=True, retain=True))
            await pub.publish("com.x3.secret", 1, options=types.PublishOptions(
                acknowledge=True, retain=True, eligible_authid=["nobody"]))
            await asyncio.sleep(0.3)  # the retained event reaches every node
            late = await join(c.raw_url)
            inbox = Inbox()
            await subscribe(late, inbox, "late", "com.x3.state", get_retained=True)
            _, args, _, details = await inbox.get()
            assert args == (42,) and details.retained is True
            await subscribe(late, inbox, "secret", "com.x3.secret", get_retained=True)
            with pytest.raises(TimeoutError):  # its eligibility holds on every node
                await inbox.get(0.5)
            await close(late)
        finally:
            await close(pub)

    run(main())


def test_only_interested_nodes_receive_and_order_is_kept(cluster: Any) -> None:
    _, (a, b, c) = cluster

    async def main() -> None:
        sub = await join(a.ws_url)
        pub = await join(b.ws_url)
        try:
            inbox = Inbox()
            await subscribe(sub, inbox, "one", "com.x4.one")
            await subscribe(sub, inbox, "two", "com.x4.two")
            await settled(pub, inbox, "com.x4.one", "one")
            await settled(pub, inbox, "com.x4.two", "two")
            before = scrape(c.metrics_url)["wamp_cluster_received_total"]
            for i in range(300):
                pub.publish("com.x4.one" if i % 2 else "com.x4.two", i)
            await pub.publish("com.x4.one", "end", options=ACK)
            got = await inbox.until("end")
            assert [args[0] for _, args in got] == list(range(300))  # publication order
            assert [name for name, _ in got[:4]] == ["two", "one", "two", "one"]
            # node C has no subscriber: it received none of it
            assert scrape(c.metrics_url)["wamp_cluster_received_total"] == before
        finally:
            await close(sub, pub)

    run(main())


def test_meta_events_are_cluster_wide(cluster: Any) -> None:
    _, (a, b, c) = cluster

    async def main() -> None:
        watcher = await join(a.ws_url)
        try:
            inbox = Inbox()
            await subscribe(watcher, inbox, "join", "wamp.session.on_join")
            await asyncio.sleep(0.2)
            newcomer = await join(c.ws_url, authmethods=["ticket"], authid="alice",
                                  secret="alice-secret")
            while True:
                _, args, _, _ = await inbox.get()
                if args[0]["session"] == newcomer._session_id:
                    assert args[0]["authid"] == "alice"
                    break
            await close(newcomer)
        finally:
            await close(watcher)

    run(main())


def test_health_and_metrics_show_the_cluster(cluster: Any) -> None:
    _, nodes = cluster
    for rp in nodes:
        h = health(rp)
        assert h["status"] == "ok" and h["backplane"]["kind"] == "redis"
        assert h["backplane"]["up"] is True
        values = scrape(rp.metrics_url)
        assert values["wamp_cluster_connected"] == 1
    deadline = time.monotonic() + 5
    while scrape(nodes[0].metrics_url)["wamp_cluster_nodes"] != 3:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_a_killed_node_leaves_the_cluster_and_its_clients_carry_on_elsewhere() -> None:
    with redis_server() as redis, ExitStack() as stack:
        a, b = start_node(stack, redis), start_node(stack, redis)

        async def main() -> None:
            sub = await join(b.ws_url)
            pub = await join(a.ws_url)
            inbox = Inbox()
            await subscribe(sub, inbox, "pattern", "com.x5", match="prefix")
            await settled(pub, inbox, "com.x5.t", "pattern")
            os.kill(b.proc.pid, signal.SIGKILL)
            b.proc.wait(10)
            deadline = time.monotonic() + 10  # node_ttl 1.5 s + the reaper's period
            while scrape(a.metrics_url)["wamp_cluster_nodes_reaped_total"] < 1:
                assert time.monotonic() < deadline, "the dead node was not reaped"
                await asyncio.sleep(0.1)
            assert scrape(a.metrics_url)["wamp_cluster_nodes"] == 1
            # the dead node's pattern interest is gone: nothing is sent for it any more
            sent = scrape(a.metrics_url)["wamp_cluster_sent_total"]
            await pub.publish("com.x5.t", 1, options=ACK)
            assert scrape(a.metrics_url)["wamp_cluster_sent_total"] == sent  # no node wants it
            # its client reconnects to the surviving node and carries on
            again = await join(a.ws_url)
            await subscribe(again, inbox, "again", "com.x5", match="prefix")
            await pub.publish("com.x5.t", 2, options=types.PublishOptions(acknowledge=True))
            name, args, _, _ = await inbox.get()
            assert (name, args) == ("again", (2,))
            await close(pub, again)

        run(main())


def test_a_redis_outage_keeps_local_traffic_and_recovers() -> None:
    with redis_server() as redis, ExitStack() as stack:
        a, b = start_node(stack, redis), start_node(stack, redis)

        async def main() -> None:
            local_sub = await join(a.ws_url)
            local_pub = await join(a.raw_url)
            remote_sub = await join(b.ws_url)
            inbox = Inbox()
            await subscribe(local_sub, inbox, "local", "com.x6.t")
            await subscribe(remote_sub, inbox, "remote", "com.x6.t")
            await asyncio.sleep(0.3)
            redis.stop()
            deadline = time.monotonic() + 5
            while health(a)["status"] != "degraded":
                assert time.monotonic() < deadline, health(a)
                await asyncio.sleep(0.1)
            assert health(a)["backplane"]["up"] is False
            await local_pub.publish("com.x6.t", "during", options=ACK)
            name, args, _, _ = await inbox.get()
            assert (name, args) == ("local", ("during",))  # local traffic goes on
            # and replies do not wait for nodes that cannot be asked
            late = await asyncio.wait_for(join(a.ws_url), 2)
            await asyncio.wait_for(subscribe(late, inbox, "late-local", "com.x6.u"), 1)
            await asyncio.wait_for(late.register(lambda: 1, "com.x6.p"), 1)
            assert await asyncio.wait_for(local_pub.call("com.x6.p"), 1) == 1
            await local_pub.publish("com.x6.r", "kept", options=types.PublishOptions(
                acknowledge=True, retain=True))
            assert scrape(a.metrics_url)["wamp_cluster_dropped_total"] >= 1
            redis.start()  # an empty Redis again, on the same port
            deadline = time.monotonic() + 15
            while not (health(a)["backplane"]["up"] and health(b)["backplane"]["up"]):
                assert time.monotonic() < deadline, "the nodes did not reconnect"
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.3)
            await local_pub.publish("com.x6.t", "after", options=ACK)
            got = {(await inbox.get())[0] for _ in range(2)}
            assert got == {"local", "remote"}  # subscriptions were re-asserted
            # the retained event published while Redis was away reached the others
            await subscribe(remote_sub, inbox, "late", "com.x6.r", get_retained=True)
            name, args, _, details = await inbox.get()
            assert (name, args, details.retained) == ("late", ("kept",), True)
            await close(local_sub, local_pub, remote_sub, late)

        run(main())


async def call_until_routed(caller: Client, procedure: str, *args: Any) -> Any:
    """Call until the registration made on another node has reached this one."""
    from autobahn.wamp.exception import ApplicationError

    deadline = time.monotonic() + 10
    while True:
        try:
            return await caller.call(procedure, *args)
        except ApplicationError as exc:
            if exc.error != "wamp.error.no_such_procedure" or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


def test_calls_across_nodes(cluster: Any) -> None:
    from autobahn.wamp.exception import ApplicationError

    _, (a, b, c) = cluster

    async def main() -> None:
        callee = await join(a.ws_url)
        caller = await join(b.raw_url, serializer="cbor")
        bob = await join(c.ws_url, authmethods=["ticket"], authid="bob", secret="bob-secret")
        try:
            def add(x: int, y: int) -> int:
                return x + y

            def fail() -> None:
                raise ApplicationError("com.r1.oops", 1, "two", k=[3])

            async def count(n: int, details: Any = None) -> str:
                for i in range(n):
                    details.progress(i)
                    await asyncio.sleep(0.01)
                return "done"

            def whoami(details: Any = None) -> list[Any]:
                return [details.caller, details.caller_authid, details.procedure]

            await callee.register(add, "com.r1.add")
            await callee.register(fail, "com.r1.fail")
            await callee.register(count, "com.r1.count",
                                  options=types.RegisterOptions(details_arg="details"))
            await callee.register(whoami, "com.r1.who", options=types.RegisterOptions(
                details_arg="details", match="prefix"))
            assert await call_until_routed(caller, "com.r1.add", 2, 3) == 5
            with pytest.raises(ApplicationError) as exc:
                await caller.call("com.r1.fail")
            assert exc.value.error == "com.r1.oops"
            assert exc.value.args == (1, "two") and exc.value.kwargs == {"k": [3]}
            progress: list[int] = []
            result = await caller.call("com.r1.count", 4, options=types.CallOptions(
                on_progress=progress.append))
            assert result == "done" and progress == [0, 1, 2, 3]
            # caller disclosure (forced for bob's role? no: publisher only) and pattern
            # registrations: the procedure detail travels too
            await call_until_routed(bob, "com.r1.who.x")
            who = await bob.call("com.r1.who.x")
            assert who[2] == "com.r1.who.x"
            # many calls in flight at once, answered in any order, none lost
            results = await asyncio.gather(*(caller.call("com.r1.add", i, i) for i in range(200)))
            assert results == [2 * i for i in range(200)]
        finally:
            await close(callee, caller, bob)

    run(main())


def test_registrations_are_cluster_wide(cluster: Any) -> None:
    from autobahn.wamp.exception import ApplicationError

    _, (a, b, c) = cluster

    async def main() -> None:
        one = await join(a.ws_url)
        two = await join(b.ws_url)
        caller = await join(c.ws_url)
        try:
            await one.register(lambda: "one", "com.r2.single")
            await call_until_routed(caller, "com.r2.single")
            with pytest.raises(ApplicationError) as exc:  # single: taken on another node
                await two.register(lambda: "two", "com.r2.single")
            assert exc.value.error == "wamp.error.procedure_already_exists"
            rr = types.RegisterOptions(invoke="roundrobin")
            await one.register(lambda: "one", "com.r2.shared", options=rr)
            await two.register(lambda: "two", "com.r2.shared", options=rr)
            await call_until_routed(caller, "com.r2.shared")
            deadline = time.monotonic() + 10
            seen: set[str] = set()
            while seen != {"one", "two"}:  # both callees take calls from node C
                assert time.monotonic() < deadline, seen
                seen.add(await caller.call("com.r2.shared"))
            got = [await caller.call("com.r2.shared") for _ in range(6)]
            assert sorted(got) == ["one"] * 3 + ["two"] * 3  # round robin over both nodes
            # a callee leaving: the others stop routing to it
            await close(two)
            deadline = time.monotonic() + 5
            while True:
                got = [await caller.call("com.r2.shared") for _ in range(4)]
                if got == ["one"] * 4:
                    break
                assert time.monotonic() < deadline, got
        finally:
            await close(one, caller)

    run(main())


def test_timeouts_and_a_dead_callee_node_fail_calls_promptly() -> None:
    from autobahn.wamp.exception import ApplicationError

    with redis_server() as redis, ExitStack() as stack:
        a, b = start_node(stack, redis), start_node(stack, redis)

        async def main() -> None:
            callee = await join(b.ws_url)
            caller = await join(a.ws_url)

            async def slow() -> str:
                await asyncio.sleep(30)
                return "late"

            await callee.register(slow, "com.r3.slow")
            await callee.register(lambda: "ok", "com.r3.ok")
            await call_until_routed(caller, "com.r3.ok")
            started = time.monotonic()
            with pytest.raises(ApplicationError) as exc:
                await caller.call("com.r3.slow", options=types.CallOptions(timeout=300))
            assert exc.value.error in ("wamp.error.timeout", "wamp.error.canceled")
            assert time.monotonic() - started < 5
            # the callee's node dies with a call in flight: the caller hears at once
            pending = asyncio.ensure_future(caller.call("com.r3.slow"))
            await asyncio.sleep(0.3)
            started = time.monotonic()
            os.kill(b.proc.pid, signal.SIGKILL)
            b.proc.wait(10)
            with pytest.raises(ApplicationError) as exc:
                await asyncio.wait_for(pending, 10)
            assert exc.value.error == "wamp.error.canceled"
            assert "node" in str(exc.value.args[0])
            assert time.monotonic() - started < 5  # node_ttl 1.5 s + the reaper, not 30 s
            with pytest.raises(ApplicationError) as exc:
                await caller.call("com.r3.ok")
            assert exc.value.error == "wamp.error.no_such_procedure"
            await close(caller)

        run(main())


def test_workers_share_one_port_and_one_realm() -> None:
    import re

    from .redis_server import free_port

    with redis_server() as redis:
        ws_port, rs_port = free_port(), free_port()
        config = (CONFIG % redis.port).replace(
            'transport = "websocket"\nendpoint = "127.0.0.1:0"',
            f'transport = "websocket"\nendpoint = "127.0.0.1:{ws_port}"').replace(
            'transport = "rawsocket"\nendpoint = "127.0.0.1:0"',
            f'transport = "rawsocket"\nendpoint = "127.0.0.1:{rs_port}"')
        with run_router(config, expect_listeners=6, extra_args=("--workers", "2")) as rp:
            def count(fragment: str, n: int) -> None:
                deadline = time.monotonic() + 20
                while sum(fragment in line for line in list(rp.lines)) < n:
                    assert time.monotonic() < deadline, rp.output()
                    time.sleep(0.05)

            count("cluster backplane: connected", 2)
            metrics = re.findall(r"listening transport=metrics address=(\S+)", rp.output())
            assert len(metrics) == 2
            url = f"ws://127.0.0.1:{ws_port}/ws"

            async def main() -> None:
                clients = [await join(url) for _ in range(16)]
                inbox = Inbox()
                for i, s in enumerate(clients):
                    await subscribe(s, inbox, str(i), "com.w.t")
                await asyncio.sleep(0.3)
                await clients[0].publish("com.w.t", "hi", options=types.PublishOptions(
                    acknowledge=True, exclude_me=False))
                got = {(await inbox.get())[0] for _ in range(16)}
                assert got == {str(i) for i in range(16)}  # on both workers
                per_worker = [scrape(m)['wamp_sessions{realm="realm1",transport="websocket"}']
                              for m in metrics]
                assert sorted(per_worker) != [0, 16] and sum(per_worker) == 16
                await close(*clients)

            run(main())
            # a worker that dies is started again
            pid = int(re.findall(r"worker 0 started pid=(\d+)", rp.output())[0])
            os.kill(pid, signal.SIGKILL)
            count("starting it again", 1)
            count("cluster backplane: connected", 3)


def test_session_meta_api_is_cluster_wide(cluster: Any) -> None:
    _, (a, b, c) = cluster

    async def main() -> None:
        admin = await join(a.ws_url)
        alice = await join(c.ws_url, authmethods=["ticket"], authid="alice",
                           secret="alice-secret")
        other = await join(b.raw_url)
        try:
            ids = {alice._session_id, other._session_id}
            deadline = time.monotonic() + 5
            while not ids <= set(await admin.call("wamp.session.list")):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            assert await admin.call("wamp.session.count", ["user"]) >= 1
            info = await admin.call("wamp.session.get", alice._session_id)
            assert info["authid"] == "alice" and info["authrole"] == "user"
            # kill a session on another node, by id and by authid
            await admin.call("wamp.session.kill", other._session_id, reason="com.x.bye")
            details = await asyncio.wait_for(other.left, 5)
            assert details.reason == "com.x.bye"
            alice_id = alice._session_id  # (the client forgets it when it is killed)
            killed = await admin.call("wamp.session.kill_by_authid", "alice")
            assert killed == [alice_id]
            await asyncio.wait_for(alice.left, 5)
        finally:
            await close(admin, alice, other)

    run(main())


def test_subscription_meta_api_is_cluster_wide(cluster: Any) -> None:
    _, (a, b, c) = cluster

    async def main() -> None:
        admin = await join(a.ws_url)
        s1, s2 = await join(b.ws_url), await join(c.raw_url)
        try:
            topic = "com.x11.meta"
            got = [await s.subscribe(lambda *a: None, topic) for s in (s1, s2)]
            assert got[0].id == got[1].id  # one subscription id on every node
            deadline = time.monotonic() + 5
            while await admin.call("wamp.subscription.lookup", topic) is None:
                assert time.monotonic() < deadline, "the subscriptions never reached node a"
                await asyncio.sleep(0.05)
            sub_id = await admin.call("wamp.subscription.lookup", topic)
            assert sub_id == got[0].id
            while await admin.call("wamp.subscription.count_subscribers", sub_id) < 2:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            listed = await admin.call("wamp.subscription.list_subscribers", sub_id)
            assert sorted(listed) == sorted([s1._session_id, s2._session_id])
            info = await admin.call("wamp.subscription.get", sub_id)
            assert (info["uri"], info["match"]) == (topic, "exact")
            assert sub_id in await admin.call("wamp.subscription.match", topic)
            assert sub_id in (await admin.call("wamp.subscription.list"))["exact"]
            await got[0].unsubscribe()
            await close(s2)  # its session leaves: its subscription goes with it
            while await admin.call("wamp.subscription.lookup", topic) is not None:
                assert time.monotonic() < deadline, "node a still sees the subscribers"
                await asyncio.sleep(0.05)
        finally:
            await close(admin, s1)

    run(main())


def test_testaments_fire_when_a_node_dies() -> None:
    with redis_server() as redis, ExitStack() as stack:
        a, b = start_node(stack, redis), start_node(stack, redis)

        async def main() -> None:
            watcher = await join(a.ws_url)
            doomed = await join(b.ws_url)
            inbox = Inbox()
            await subscribe(watcher, inbox, "gone", "com.x7.gone")
            await subscribe(watcher, inbox, "leave", "wamp.session.on_leave")
            await doomed.call("wamp.session.add_testament", "com.x7.gone",
                              [doomed._session_id], {})
            await asyncio.sleep(0.3)  # the testament reaches the other node
            assert await watcher.call("wamp.session.count") == 2
            doomed_id = doomed._session_id  # (the client forgets it when its node dies)
            os.kill(b.proc.pid, signal.SIGKILL)
            b.proc.wait(10)
            got: dict[str, Any] = {}
            while len(got) < 2:
                name, args, _, _ = await inbox.get(10)
                if args and args[0] == doomed_id:
                    got[name] = args
            assert got["gone"] == (doomed_id,)
            assert await watcher.call("wamp.session.count") == 1
            await close(watcher)

        run(main())


def test_cancel_across_nodes(cluster: Any) -> None:
    _, (a, b, c) = cluster

    async def main() -> None:
        callee = await join(a.ws_url)
        caller = await join(b.ws_url)
        interrupted = asyncio.Event()
        try:
            async def slow() -> str:
                try:
                    await asyncio.sleep(30)
                except asyncio.CancelledError:  # the router's INTERRUPT
                    interrupted.set()
                    raise
                return "late"

            await callee.register(slow, "com.r4.slow")
            deadline = time.monotonic() + 10
            while True:  # wait until node B routes to the callee on A
                reg = await caller.call("wamp.registration.lookup", "com.r4.slow")
                if reg is not None:
                    break
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            pending = asyncio.ensure_future(caller.call(
                "com.r4.slow", options=types.CallOptions()))
            await asyncio.sleep(0.3)
            pending.cancel()  # autobahn sends CANCEL
            await asyncio.wait_for(interrupted.wait(), 5)
        finally:
            await close(callee, caller)

    run(main())


def test_a_paused_node_declared_dead_fences_itself_and_rejoins() -> None:
    with redis_server() as redis, ExitStack() as stack:
        a, b = start_node(stack, redis), start_node(stack, redis)

        async def main() -> None:
            sleeper = await join(b.ws_url)
            watcher = await join(a.ws_url)
            inbox = Inbox()
            await subscribe(watcher, inbox, "gone", "com.x8.gone")
            await sleeper.call("wamp.session.add_testament", "com.x8.gone", ["once"], {})
            await asyncio.sleep(0.3)
            os.kill(b.proc.pid, signal.SIGSTOP)  # silent for longer than node_ttl (1.5 s)
            try:
                name, args, _, _ = await inbox.get(10)  # declared dead: testament fired
                assert (name, args) == ("gone", ("once",))
            finally:
                os.kill(b.proc.pid, signal.SIGCONT)
            details = await asyncio.wait_for(sleeper.left, 10)  # it fences itself
            assert details.reason == "wamp.close.system_shutdown"
            b.wait_for_line("declared this node dead", timeout=10)
            with pytest.raises(TimeoutError):  # and does not fire the testament again
                await inbox.get(1)
            again = await join(b.ws_url)  # it serves again, as part of the cluster
            deadline = time.monotonic() + 10
            while await again.call("wamp.session.count") != 2:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
            await close(watcher, again)

        run(main())
