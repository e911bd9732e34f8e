"""Pub/sub and RPC between real autobahn-python clients over WebSocket and
RawSocket, with every serializer, against the router started from
realms/interop.toml."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from autobahn.wamp import types
from autobahn.wamp.exception import ApplicationError

from .clients import close, join
from .router_process import RouterProcess

SERIALIZERS = ["json", "msgpack", "cbor"]
TRANSPORTS = ["ws", "rs"]


def url(router: RouterProcess, transport: str) -> str:
    return router.ws_url if transport == "ws" else router.raw_url


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_join_welcome_details(router: RouterProcess, transport: str, serializer: str) -> None:
    async def scenario() -> None:
        s = await join(url(router, transport), serializer=serializer)
        assert s.details.realm == "realm1"
        assert s.details.authrole == "anonymous"
        assert s.details.authmethod == "anonymous"
        assert 1 <= s.details.session <= 2**53
        assert "broker" in s._router_roles and "dealer" in s._router_roles
        await close(s)

    run(scenario())


# publisher/subscriber pairs across serializers and transports
MIXES = [
    (t1, s1, t2, s2)
    for (t1, s1), (t2, s2) in itertools.product(
        itertools.product(TRANSPORTS, SERIALIZERS), repeat=2
    )
    if (t1, s1) <= (t2, s2)
]


@pytest.mark.parametrize("pub_t,pub_s,sub_t,sub_s", MIXES)
def test_pubsub_across_serializers(router: RouterProcess, pub_t: str, pub_s: str,
                                   sub_t: str, sub_s: str) -> None:
    async def scenario() -> None:
        pub = await join(url(router, pub_t), serializer=pub_s)
        sub = await join(url(router, sub_t), serializer=sub_s)
        got: asyncio.Queue[Any] = asyncio.Queue()
        topic = f"com.example.t.{pub_t}{pub_s}.{sub_t}{sub_s}"
        await sub.subscribe(lambda *a, **kw: got.put_nowait((a, kw)), topic)
        payload = {"n": 1, "s": "ünïcode", "f": 1.5, "none": None, "bin": b"\x00\x01\xff"}
        pub_ack = await pub.publish(topic, 1, "two", b"\x00\xfe", options=types.PublishOptions(
            acknowledge=True), **payload)
        assert pub_ack.id >= 1
        args, kwargs = await asyncio.wait_for(got.get(), 5)
        assert list(args) == [1, "two", b"\x00\xfe"]
        assert kwargs == payload
        await close(pub, sub)

    run(scenario())


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_rpc_and_errors(router: RouterProcess, transport: str, serializer: str) -> None:
    async def scenario() -> None:
        callee = await join(url(router, transport), serializer=serializer)
        caller = await join(url(router, "ws"), serializer="json")
        proc = f"com.example.add.{transport}.{serializer}"

        def add(a: int, b: int, **kw: Any) -> Any:
            return types.CallResult(a + b, echo=kw, blob=b"\x01\x02")

        def fail(*args: Any) -> None:
            raise ApplicationError("com.example.oops", "bad thing", 42, detail={"x": [1]})

        reg = await callee.register(add, proc)
        await callee.register(fail, proc + ".fail")
        res = await caller.call(proc, 2, 3, k="v")
        assert list(res.results) == [5]
        assert res.kwresults == {"echo": {"k": "v"}, "blob": b"\x01\x02"}
        with pytest.raises(ApplicationError) as err:
            await caller.call(proc + ".fail")
        assert err.value.error == "com.example.oops"
        assert list(err.value.args) == ["bad thing", 42]
        assert err.value.kwargs == {"detail": {"x": [1]}}
        with pytest.raises(ApplicationError) as err:
            await caller.call("com.example.missing")
        assert err.value.error == "wamp.error.no_such_procedure"
        with pytest.raises(ApplicationError) as err:
            await caller.register(lambda: None, proc)
        assert err.value.error == "wamp.error.procedure_already_exists"
        await reg.unregister()
        with pytest.raises(ApplicationError) as err:
            await caller.call(proc, 1, 2)
        assert err.value.error == "wamp.error.no_such_procedure"
        await close(callee, caller)

    run(scenario())


def test_publisher_is_excluded_by_default_and_included_on_request(router: RouterProcess) -> None:
    async def scenario() -> None:
        s = await join(router.ws_url)
        got: asyncio.Queue[Any] = asyncio.Queue()
        await s.subscribe(lambda x: got.put_nowait(x), "com.example.self")
        await s.publish("com.example.self", 1, options=types.PublishOptions(acknowledge=True))
        await s.publish("com.example.self", 2, options=types.PublishOptions(
            acknowledge=True, exclude_me=False))
        assert await asyncio.wait_for(got.get(), 5) == 2
        assert got.empty()
        await close(s)

    run(scenario())


def test_unsubscribe_stops_events(router: RouterProcess) -> None:
    async def scenario() -> None:
        pub = await join(router.ws_url)
        sub = await join(router.raw_url, serializer="msgpack")
        got: list[Any] = []
        subscription = await sub.subscribe(got.append, "com.example.unsub")
        await pub.publish("com.example.unsub", 1, options=types.PublishOptions(acknowledge=True))
        await asyncio.sleep(0.2)
        await subscription.unsubscribe()
        await pub.publish("com.example.unsub", 2, options=types.PublishOptions(acknowledge=True))
        await asyncio.sleep(0.2)
        assert got == [1]
        await close(pub, sub)

    run(scenario())


def test_callee_leaving_cancels_pending_calls(router: RouterProcess) -> None:
    async def scenario() -> None:
        callee = await join(router.ws_url)
        caller = await join(router.raw_url)
        started = asyncio.get_running_loop().create_future()

        async def slow() -> int:
            started.set_result(True)
            await asyncio.sleep(30)
            return 1

        await callee.register(slow, "com.example.slow")
        call = asyncio.ensure_future(caller.call("com.example.slow"))
        await asyncio.wait_for(started, 5)
        callee.disconnect()  # transport closed, no GOODBYE
        with pytest.raises(ApplicationError) as err:
            await asyncio.wait_for(call, 5)
        assert err.value.error == "wamp.error.canceled"
        # the procedure is gone with its callee
        with pytest.raises(ApplicationError) as err:
            await caller.call("com.example.slow")
        assert err.value.error == "wamp.error.no_such_procedure"
        await close(caller)

    run(scenario())


def test_caller_leaving_does_not_disturb_callee(router: RouterProcess) -> None:
    async def scenario() -> None:
        callee = await join(router.ws_url)
        caller = await join(router.ws_url)
        release = asyncio.Event()
        invoked = asyncio.Event()

        async def slow(x: int) -> int:
            invoked.set()
            await release.wait()
            return x

        await callee.register(slow, "com.example.slow2")
        pending = asyncio.ensure_future(caller.call("com.example.slow2", 1))
        await asyncio.wait_for(invoked.wait(), 5)
        caller.disconnect()
        await asyncio.sleep(0.2)
        release.set()  # the late YIELD goes nowhere and must not break anything
        await asyncio.sleep(0.2)
        pending.cancel()
        other = await join(router.ws_url)
        invoked.clear()
        assert await other.call("com.example.slow2", 7) == 7
        await close(callee, other)

    run(scenario())
