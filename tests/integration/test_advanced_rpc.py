"""Advanced Profile RPC with real autobahn-python clients (and raw peers for
what autobahn cannot send): progressive results and invocations, timeouts,
cancel, caller disclosure, patterns, shared registrations, concurrency,
rerouting, the registration meta API."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from autobahn.wamp import types
from autobahn.wamp.exception import ApplicationError

from .clients import close, join
from .rawclient import WsPeer
from .router_process import RouterProcess

CANCEL_ROLES = {"caller": {"features": {"progressive_call_invocations": True}},
                "callee": {"features": {"call_canceling": True,
                                        "progressive_call_invocations": True}}}


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


@pytest.mark.parametrize("transport", ["ws", "rs"])
def test_progressive_call_results(router: RouterProcess, transport: str) -> None:
    url = router.ws_url if transport == "ws" else router.raw_url

    async def scenario() -> None:
        callee = await join(url, serializer="msgpack")
        caller = await join(url)

        async def countdown(n: int, details: types.CallDetails) -> str:
            for i in range(n, 0, -1):
                if details.progress:
                    details.progress(i)
                await asyncio.sleep(0)
            return "liftoff"

        await callee.register(countdown, "com.example.countdown",
                              options=types.RegisterOptions(details_arg="details"))
        seen: list[int] = []
        result = await caller.call("com.example.countdown", 3,
                                   options=types.CallOptions(on_progress=seen.append))
        assert (result, seen) == ("liftoff", [3, 2, 1])
        # a caller that did not ask gets only the final result
        assert await caller.call("com.example.countdown", 2) == "liftoff"
        await close(callee, caller)

    run(scenario())


def test_call_timeout_in_milliseconds_interrupts_callee(router: RouterProcess) -> None:
    async def scenario() -> None:
        callee = await join(router.ws_url)
        caller = await join(router.raw_url)
        interrupted = asyncio.get_running_loop().create_future()

        async def slow() -> str:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                interrupted.set_result(True)
                raise
            return "late"

        await callee.register(slow, "com.example.slow")
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(ApplicationError) as err:
            await caller.call("com.example.slow", options=types.CallOptions(timeout=300))
        elapsed = loop.time() - start
        assert err.value.error == "wamp.error.timeout"
        assert 0.25 <= elapsed < 3.0, elapsed  # 300 ms, not 300 s
        assert await asyncio.wait_for(interrupted, 5)
        await close(callee, caller)

    run(scenario())


def test_cancel_interrupts_callee(router: RouterProcess) -> None:
    async def scenario() -> None:
        callee = await join(router.ws_url)
        caller = await join(router.ws_url, serializer="cbor")
        started = asyncio.get_running_loop().create_future()
        interrupted = asyncio.get_running_loop().create_future()

        async def slow() -> None:
            started.set_result(True)
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                interrupted.set_result(True)
                raise

        await callee.register(slow, "com.example.cancelme")
        call = asyncio.ensure_future(caller.call("com.example.cancelme"))
        await asyncio.wait_for(started, 5)
        call.cancel()  # autobahn sends CANCEL (the router's default mode: killnowait)
        assert await asyncio.wait_for(interrupted, 5)
        # the router and both sessions go on
        await callee.register(lambda: 1, "com.example.after")
        assert await caller.call("com.example.after") == 1
        await close(callee, caller)

    run(scenario())


def raw_joined(router: RouterProcess, roles: dict[str, Any] | None = None) -> WsPeer:
    peer = WsPeer(router.ws_port)
    details: dict[str, Any] = {"roles": roles} if roles else {}
    assert peer.hello(**details)[0] == 2
    return peer


@pytest.mark.parametrize("mode", ["skip", "kill", "killnowait"])
def test_cancel_modes_on_the_wire(router: RouterProcess, mode: str) -> None:
    callee = raw_joined(router, CANCEL_ROLES)
    caller = raw_joined(router)
    proc = f"com.example.cancel.{mode}"
    callee.send([64, 1, {}, proc])
    assert callee.recv()[0] == 65
    caller.send([48, 2, {}, proc])
    invocation = callee.recv()
    caller.send([49, 2, {"mode": mode}])
    if mode == "kill":
        assert callee.recv()[:3] == [69, invocation[1], {"mode": "kill",
                                                         "reason": "wamp.error.canceled"}]
        callee.send([8, 68, invocation[1], {}, "wamp.error.canceled"])
        assert caller.recv()[:5] == [8, 48, 2, {}, "wamp.error.canceled"]
    else:
        assert caller.recv()[:5] == [8, 48, 2, {}, "wamp.error.canceled"]
        if mode == "killnowait":
            assert callee.recv()[0] == 69
        callee.send([70, invocation[1], {}, ["late"]])  # dropped
    caller.send([48, 3, {}, "com.example.none"])
    assert caller.recv()[:5] == [8, 48, 3, {}, "wamp.error.no_such_procedure"]


def test_progressive_call_invocations_on_the_wire(router: RouterProcess) -> None:
    callee = raw_joined(router, CANCEL_ROLES)
    caller = raw_joined(router, CANCEL_ROLES)
    callee.send([64, 1, {}, "com.example.upload"])
    assert callee.recv()[0] == 65
    for chunk in ("a", "b"):
        caller.send([48, 7, {"progress": True}, "com.example.upload", [chunk]])
    caller.send([48, 7, {}, "com.example.upload", ["c"]])
    invocations = [callee.recv() for _ in range(3)]
    assert len({inv[1] for inv in invocations}) == 1
    assert [(inv[3], inv[4]) for inv in invocations] == [
        ({"progress": True}, ["a"]), ({"progress": True}, ["b"]), ({}, ["c"])]
    callee.send([70, invocations[0][1], {}, ["abc"]])
    assert caller.recv() == [50, 7, {}, ["abc"]]


def test_caller_disclosure(router: RouterProcess) -> None:
    async def scenario() -> None:
        callee = await join(router.ws_url)
        caller = raw_joined(router)

        def whoami(details: types.CallDetails) -> list[Any]:
            return [details.caller, details.caller_authid, details.caller_authrole]

        await callee.register(whoami, "com.example.whoami",
                              options=types.RegisterOptions(details_arg="details"))
        caller.send([48, 1, {"disclose_me": True}, "com.example.whoami"])
        result = await asyncio.get_running_loop().run_in_executor(None, caller.recv)
        assert result[0] == 50 and result[3][0][0] >= 1 and result[3][0][2] == "anonymous"
        caller.send([48, 2, {}, "com.example.whoami"])
        result = await asyncio.get_running_loop().run_in_executor(None, caller.recv)
        assert result[3] == [[None, None, None]]
        await close(callee)

    run(scenario())


def test_pattern_registrations(router: RouterProcess) -> None:
    async def scenario() -> None:
        callee = await join(router.ws_url)
        caller = await join(router.raw_url)

        def which(name: str) -> Any:
            return lambda details: [name, details.procedure]

        opts = {"details_arg": "details"}
        await callee.register(which("prefix"), "com.example.pat",
                              options=types.RegisterOptions(match="prefix", **opts))
        await callee.register(which("wildcard"), "com.example..get",
                              options=types.RegisterOptions(match="wildcard", **opts))
        await callee.register(which("exact"), "com.example.pat.exact",
                              options=types.RegisterOptions(**opts))
        assert (await caller.call("com.example.pat.exact"))[0] == "exact"
        assert await caller.call("com.example.pat.x") == ["prefix", "com.example.pat.x"]
        assert await caller.call("com.example.thing.get") == ["wildcard",
                                                              "com.example.thing.get"]
        await close(callee, caller)

    run(scenario())


def test_shared_registration_round_robin_and_concurrency(router: RouterProcess) -> None:
    async def scenario() -> None:
        a = await join(router.ws_url)
        b = await join(router.raw_url, serializer="msgpack")
        caller = await join(router.ws_url)
        opts = types.RegisterOptions(invoke="roundrobin")
        await a.register(lambda: "a", "com.example.rr", options=opts)
        await b.register(lambda: "b", "com.example.rr", options=opts)
        got = [await caller.call("com.example.rr") for _ in range(4)]
        assert got == ["a", "b", "a", "b"]
        with pytest.raises(ApplicationError) as err:
            await caller.register(lambda: "c", "com.example.rr",
                                  options=types.RegisterOptions(invoke="random"))
        assert err.value.error == "wamp.error.procedure_already_exists"

        release = asyncio.Event()

        async def busy() -> str:
            await release.wait()
            return "done"

        limited = types.RegisterOptions(invoke="roundrobin", concurrency=1)
        await a.register(busy, "com.example.limited", options=limited)
        await b.register(busy, "com.example.limited", options=limited)
        first = asyncio.ensure_future(caller.call("com.example.limited"))
        second = asyncio.ensure_future(caller.call("com.example.limited"))
        await asyncio.sleep(0.3)
        with pytest.raises(ApplicationError) as err:
            await caller.call("com.example.limited")
        assert err.value.error == "wamp.error.no_available_callee"
        release.set()
        assert await first == "done" and await second == "done"
        await close(a, b, caller)

    run(scenario())


def test_rerouting_on_unavailable(router: RouterProcess) -> None:
    async def scenario() -> None:
        a = await join(router.ws_url)
        b = await join(router.ws_url)
        caller = await join(router.ws_url)

        def unavailable() -> None:
            raise ApplicationError("wamp.error.unavailable")

        opts = types.RegisterOptions(invoke="first")
        await a.register(unavailable, "com.example.reroute", options=opts)
        await b.register(lambda: "b answered", "com.example.reroute", options=opts)
        assert await caller.call("com.example.reroute") == "b answered"
        await close(a, b, caller)

    run(scenario())


def test_registration_meta_api(router: RouterProcess) -> None:
    async def scenario() -> None:
        watcher = await join(router.ws_url)
        callee = await join(router.raw_url)
        events: asyncio.Queue[Any] = asyncio.Queue()
        for topic in ("on_create", "on_register", "on_unregister", "on_delete"):
            await watcher.subscribe(lambda *a, t=topic: events.put_nowait((t, a)),
                                    f"wamp.registration.{topic}")
        reg = await callee.register(lambda: None, "com.example.meta")
        sid = callee.details.session
        got = [await asyncio.wait_for(events.get(), 5) for _ in range(2)]
        assert got[0][0] == "on_create" and got[0][1][0] == sid
        assert got[0][1][1]["uri"] == "com.example.meta"
        assert got[1] == ("on_register", (sid, reg.id))
        assert await watcher.call("wamp.registration.lookup", "com.example.meta") == reg.id
        assert await watcher.call("wamp.registration.match", "com.example.meta") == reg.id
        details = await watcher.call("wamp.registration.get", reg.id)
        assert details["match"] == "exact" and details["invoke"] == "single"
        assert await watcher.call("wamp.registration.list_callees", reg.id) == [sid]
        assert await watcher.call("wamp.registration.count_callees", reg.id) == 1
        listing = await watcher.call("wamp.registration.list")
        assert reg.id in listing["exact"]
        callee.disconnect()  # abrupt: unregister and delete still fire
        got = [await asyncio.wait_for(events.get(), 5) for _ in range(2)]
        assert got == [("on_unregister", (sid, reg.id)), ("on_delete", (sid, reg.id))]
        with pytest.raises(ApplicationError) as err:
            await watcher.call("wamp.registration.get", reg.id)
        assert err.value.error == "wamp.error.no_such_registration"
        await close(watcher)

    run(scenario())
