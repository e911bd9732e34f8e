"""A reply the cluster must already stand behind: WELCOME, SUBSCRIBED and
REGISTERED leave a node only once every other node knows the new session,
subscription or registration (real clients, router processes and
``redis-server``). So a client that got SUBSCRIBED receives the publications
any node takes after it, and a procedure can be called from any node as soon as
its callee got REGISTERED, as on one router."""

from __future__ import annotations

import asyncio
import os
import signal
from contextlib import ExitStack
from typing import Any

from autobahn.wamp import types

from .clients import close, join
from .redis_server import redis_server
from .test_cluster import ACK, Inbox, run, start_node, subscribe


async def pending(task: asyncio.Future[Any], seconds: float) -> bool:
    """Is ``task`` still not done after ``seconds``?"""
    done, _ = await asyncio.wait({task}, timeout=seconds)
    return not done


def test_replies_wait_until_every_node_knows() -> None:
    """With node B stopped (SIGSTOP, shorter than node_ttl), a join, a pattern
    subscription and a registration on node A get no answer; once B runs again
    they are answered, and B routes to them at once. A publication made on A
    while the SUBSCRIBED was held reaches the subscriber after it."""
    with redis_server() as redis, ExitStack() as stack:
        a, b = start_node(stack, redis), start_node(stack, redis)

        async def main() -> None:
            on_b = await join(b.ws_url)
            local = await join(a.ws_url)
            subscriber = await join(a.ws_url)
            callee = await join(a.ws_url)
            inbox = Inbox()
            os.kill(b.proc.pid, signal.SIGSTOP)
            try:
                joining = asyncio.ensure_future(join(a.ws_url))
                subscribing = asyncio.ensure_future(subscribe(
                    subscriber, inbox, "wild", "com.vis..x", match="wildcard"))
                registering = asyncio.ensure_future(callee.register(
                    lambda n: n * 2, "com.vis.double"))
                assert await pending(joining, 0.4)
                assert await pending(subscribing, 0.01)
                assert await pending(registering, 0.01)
                # taken by A while the SUBSCRIBED waits: delivered after it
                await local.publish("com.vis.a.x", "early", options=ACK)
            finally:
                os.kill(b.proc.pid, signal.SIGCONT)
            joined = await asyncio.wait_for(joining, 5)
            await asyncio.wait_for(subscribing, 5)
            await asyncio.wait_for(registering, 5)
            name, args, _, details = await inbox.get(5)
            assert (name, args, details.topic) == ("wild", ("early",), "com.vis.a.x")
            # B knows all three already: no retry, no wait
            await on_b.publish("com.vis.b.x", "from-b", options=ACK)
            name, args, _, details = await inbox.get(5)
            assert (name, args, details.topic) == ("wild", ("from-b",), "com.vis.b.x")
            assert await on_b.call("com.vis.double", 21) == 42
            info = await on_b.call("wamp.session.get", joined.details.session)
            assert info["session"] == joined.details.session
            await close(on_b, local, subscriber, callee, joined)

        run(main())


def test_what_one_node_confirmed_every_node_serves_at_once() -> None:
    """Subscribe or register on one node, then at once publish or call from the
    others: nothing is lost and no call fails, round after round (exact, prefix
    and wildcard subscriptions; three nodes)."""
    with redis_server() as redis, ExitStack() as stack:
        a, b, c = (start_node(stack, redis) for _ in range(3))

        async def main() -> None:
            here = await join(a.ws_url)
            others = [await join(b.ws_url), await join(c.ws_url)]
            inbox = Inbox()
            for i in range(25):
                for match, topic, published in (
                        ("exact", f"com.now.e{i}", f"com.now.e{i}"),
                        ("prefix", f"com.now.{i}.p", f"com.now.{i}.p.x"),
                        ("wildcard", f"com.now..w{i}", f"com.now.y.w{i}")):
                    await subscribe(here, inbox, match, topic, match=match)
                    for n, there in enumerate(others):
                        await there.publish(published, i, n, options=ACK)
                    got = sorted([(await inbox.get(5))[:2] for _ in others])
                    assert got == [(match, (i, 0)), (match, (i, 1))]
                await here.register(lambda i=i: i, f"com.now.proc{i}")
                for there in others:
                    assert await there.call(f"com.now.proc{i}") == i
            assert inbox.events.empty()
            await close(here, *others)

        run(main())


def test_a_reply_waits_no_longer_than_the_cluster_needs_to_drop_a_dead_node() -> None:
    """A node stopped for good (SIGSTOP past node_ttl) is declared dead; what
    waited for it goes out then, and the cluster serves on without it."""
    with redis_server() as redis, ExitStack() as stack:
        a, b = start_node(stack, redis), start_node(stack, redis)

        async def main() -> None:
            subscriber = await join(a.ws_url)
            publisher = await join(a.ws_url)
            inbox = Inbox()
            os.kill(b.proc.pid, signal.SIGSTOP)
            try:
                subscribing = asyncio.ensure_future(subscribe(
                    subscriber, inbox, "s", "com.dead", match="prefix"))
                assert await pending(subscribing, 0.5)
                await asyncio.wait_for(subscribing, 10)  # node_ttl 1.5 s + a heartbeat
                await publisher.publish("com.dead.x", "after", options=ACK)
                assert (await inbox.get(5))[:2] == ("s", ("after",))
                # with B gone, replies are immediate again
                await asyncio.wait_for(subscriber.register(lambda: 1, "com.dead.p"), 1)
            finally:
                os.kill(b.proc.pid, signal.SIGCONT)
            await close(subscriber, publisher)

        run(main())


def test_a_burst_of_subscribes_and_registers_is_answered_in_full() -> None:
    """Subscribes and registers sent in a burst while a peer node is briefly
    stopped are all answered once it runs again."""
    with redis_server() as redis, ExitStack() as stack:
        a, b = start_node(stack, redis), start_node(stack, redis)

        async def main() -> None:
            client = await join(a.ws_url)
            os.kill(b.proc.pid, signal.SIGSTOP)
            try:
                tasks = [asyncio.ensure_future(client.subscribe(lambda *x: None, f"com.burst.{i}"))
                         for i in range(20)]
                tasks += [asyncio.ensure_future(client.register(lambda: 0, f"com.burst.p{i}",
                                                                options=types.RegisterOptions()))
                          for i in range(5)]
                assert await pending(asyncio.gather(*tasks), 0.3)
            finally:
                os.kill(b.proc.pid, signal.SIGCONT)
            results = await asyncio.wait_for(asyncio.gather(*tasks), 5)
            assert len({r.id for r in results}) == 25
            await close(client)

        run(main())


def test_two_nodes_registering_one_procedure_at_once_agree_on_one_callee() -> None:
    """Two callees on two nodes register the same ``single`` procedure at the
    same moment, round after round: exactly one gets REGISTERED, the other
    ``procedure_already_exists`` (never a REGISTERED taken back later), and
    calls from a third node reach the one that got REGISTERED."""
    from autobahn.wamp.exception import ApplicationError

    with redis_server() as redis, ExitStack() as stack:
        a, b, c = (start_node(stack, redis) for _ in range(3))

        async def main() -> None:
            callees = [await join(a.ws_url), await join(b.ws_url)]
            caller = await join(c.ws_url)
            for i in range(20):
                procedure = f"com.once.p{i}"
                outcomes = await asyncio.gather(
                    *[s.register(lambda n=n: n, procedure) for n, s in enumerate(callees)],
                    return_exceptions=True)
                won = [n for n, o in enumerate(outcomes) if not isinstance(o, BaseException)]
                lost = [o for o in outcomes if isinstance(o, BaseException)]
                assert len(won) == 1, outcomes
                assert isinstance(lost[0], ApplicationError)
                assert lost[0].error == "wamp.error.procedure_already_exists"
                assert await caller.call(procedure) == won[0]
            await close(caller, *callees)

        run(main())


def test_what_one_node_ended_no_node_serves_any_more() -> None:
    """After UNREGISTERED, a call from another node finds no such procedure;
    after a callee's GOODBYE, no node routes calls to it any more and the
    session is gone from every node's session list."""
    from autobahn.wamp.exception import ApplicationError

    with redis_server() as redis, ExitStack() as stack:
        a, b = start_node(stack, redis), start_node(stack, redis)

        async def main() -> None:
            there = await join(b.ws_url)
            for i in range(15):
                callee = await join(a.ws_url)
                reg = await callee.register(lambda: "here", f"com.end.p{i}")
                assert await there.call(f"com.end.p{i}") == "here"
                await reg.unregister()
                try:
                    await there.call(f"com.end.p{i}")
                    raise AssertionError("a call reached a procedure after UNREGISTERED")
                except ApplicationError as exc:
                    assert exc.error == "wamp.error.no_such_procedure", exc
                await callee.register(lambda: "here", f"com.end.q{i}")
                sid = callee.details.session
                await close(callee)
                try:
                    await there.call(f"com.end.q{i}")
                    raise AssertionError("a call reached a callee after its GOODBYE")
                except ApplicationError as exc:
                    assert exc.error == "wamp.error.no_such_procedure", exc
                try:
                    await there.call("wamp.session.get", sid)
                    raise AssertionError("a session outlived its GOODBYE on another node")
                except ApplicationError as exc:
                    assert exc.error == "wamp.error.no_such_session", exc
            await close(there)

        run(main())


def test_a_publication_no_other_node_wants_does_not_go_to_redis() -> None:
    """A node sends a publication to Redis only when another node has a
    subscriber for it, and from that subscriber's SUBSCRIBED on."""
    from .test_operations import scrape

    with redis_server() as redis, ExitStack() as stack:
        a, b = start_node(stack, redis), start_node(stack, redis)

        async def main() -> None:
            pub, local = await join(a.ws_url), await join(a.ws_url)
            inbox = Inbox()
            await subscribe(local, inbox, "local", "com.quiet")
            sent = scrape(a.metrics_url)["wamp_cluster_sent_total"]
            for i in range(5):
                await pub.publish("com.quiet", i, options=ACK)
            assert [(await inbox.get())[:2] for _ in range(5)] == [
                ("local", (i,)) for i in range(5)]
            assert scrape(a.metrics_url)["wamp_cluster_sent_total"] == sent
            remote = await join(b.ws_url)
            await subscribe(remote, inbox, "remote", "com.quiet")
            await pub.publish("com.quiet", "both", options=ACK)
            got = sorted([(await inbox.get())[:2] for _ in range(2)])
            assert got == [("local", ("both",)), ("remote", ("both",))]
            assert scrape(a.metrics_url)["wamp_cluster_sent_total"] == sent + 1
            await close(pub, local, remote)

        run(main())


def test_a_node_that_stops_leaves_cleanly_without_an_outage_warning() -> None:
    from .router_process import stop

    with redis_server() as redis, ExitStack() as stack:
        a, b = start_node(stack, redis), start_node(stack, redis)
        stop(b)  # SIGTERM
        assert b.proc.returncode == 0
        a.wait_for_line(f"node {b.wait_for_line('node=').split('node=')[1].split()[0]} left")
        assert "lost the connection to Redis" not in b.output()
