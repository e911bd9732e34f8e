"""``[cluster] prefer_local_callees = true``: a shared registration (roundrobin,
random) sends a node's calls to that node's own callees while it has one
available, and to the other nodes' callees when it has none (real clients,
two router processes, ``redis-server``)."""

from __future__ import annotations

from contextlib import ExitStack

import pytest
from autobahn.wamp import types

from .clients import close, join
from .redis_server import redis_server
from .test_cluster import CONFIG, run, start_node

LOCAL_FIRST = CONFIG + "prefer_local_callees = true\n"


@pytest.mark.parametrize("policy", ["roundrobin", "random"])
def test_calls_stay_on_their_node_while_it_has_a_callee(policy: str) -> None:
    with redis_server() as redis, ExitStack() as stack:
        a, b = start_node(stack, redis, LOCAL_FIRST), start_node(stack, redis, LOCAL_FIRST)

        async def main() -> None:
            options = types.RegisterOptions(invoke=policy)
            callees = {}
            for name, node in (("a1", a), ("a2", a), ("b1", b)):
                callees[name] = await join(node.ws_url)
                await callees[name].register(lambda name=name: name, "com.local.who",
                                             options=options)
            on_a, on_b = await join(a.ws_url), await join(b.ws_url)
            from_a = {await on_a.call("com.local.who") for _ in range(40)}
            from_b = {await on_b.call("com.local.who") for _ in range(40)}
            assert from_b == {"b1"}
            assert from_a == {"a1", "a2"}  # both local callees share A's calls
            await close(callees.pop("b1"))  # B has none left: its calls cross to A
            assert {await on_b.call("com.local.who") for _ in range(40)} == {"a1", "a2"}
            await close(on_a, on_b, *callees.values())

        run(main())


def test_without_the_option_calls_spread_over_every_node() -> None:
    with redis_server() as redis, ExitStack() as stack:
        a, b = start_node(stack, redis), start_node(stack, redis)

        async def main() -> None:
            options = types.RegisterOptions(invoke="roundrobin")
            callees = []
            for name, node in (("a1", a), ("b1", b)):
                callee = await join(node.ws_url)
                await callee.register(lambda name=name: name, "com.spread.who", options=options)
                callees.append(callee)
            caller = await join(a.ws_url)
            assert {await caller.call("com.spread.who") for _ in range(10)} == {"a1", "b1"}
            await close(caller, *callees)

        run(main())
