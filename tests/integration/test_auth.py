"""Authentication (ticket, WAMP-CRA) and static authorization on realm2 of
realms/interop.toml, with real autobahn-python clients."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from autobahn.wamp import types
from autobahn.wamp.exception import ApplicationError

from .clients import JoinFailed, close, join
from .router_process import RouterProcess


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


@pytest.mark.parametrize("transport", ["ws", "rs"])
def test_ticket_and_cra_join_with_right_secrets(router: RouterProcess, transport: str) -> None:
    url = router.ws_url if transport == "ws" else router.raw_url

    async def scenario() -> None:
        alice = await join(url, "realm2", authmethods=["ticket"], authid="alice",
                           secret="secret123")
        assert (alice.details.authid, alice.details.authrole, alice.details.authmethod) == (
            "alice", "user", "ticket")
        bob = await join(url, "realm2", serializer="msgpack", authmethods=["wampcra"],
                         authid="bob", secret="bobsecret")
        assert (bob.details.authid, bob.details.authrole, bob.details.authmethod) == (
            "bob", "user", "wampcra")
        assert bob.challenges[0].method == "wampcra"
        assert '"authid":"bob"' in bob.challenges[0].extra["challenge"]
        # both may work under com.example.
        await bob.register(lambda x: x * 2, "com.example.double")
        assert await alice.call("com.example.double", 21) == 42
        await close(alice, bob)

    run(scenario())


@pytest.mark.parametrize("method,authid,secret", [
    ("ticket", "alice", "wrong"),
    ("ticket", "nobody", "secret123"),
    ("wampcra", "bob", "wrong"),
    ("wampcra", "nobody", "bobsecret"),
    ("ticket", "bob", "bobsecret"),  # bob is a CRA principal, not a ticket one
])
def test_wrong_secrets_are_rejected(router: RouterProcess, method: str, authid: str,
                                    secret: str) -> None:
    async def scenario() -> None:
        with pytest.raises(JoinFailed) as failed:
            await join(router.ws_url, "realm2", authmethods=[method], authid=authid,
                       secret=secret)
        assert failed.value.reason == "wamp.error.authentication_failed"

    run(scenario())


def test_anonymous_is_refused_on_realm2(router: RouterProcess) -> None:
    async def scenario() -> None:
        with pytest.raises(JoinFailed) as failed:
            await join(router.ws_url, "realm2")
        assert failed.value.reason == "wamp.error.no_auth_method"

    run(scenario())


def test_authorization_denial(router: RouterProcess) -> None:
    async def scenario() -> None:
        alice = await join(router.ws_url, "realm2", authmethods=["ticket"], authid="alice",
                           secret="secret123")
        for action in ("call", "register", "subscribe", "publish"):
            with pytest.raises(ApplicationError) as err:
                if action == "call":
                    await alice.call("org.other.proc")
                elif action == "register":
                    await alice.register(lambda: None, "org.other.proc")
                elif action == "subscribe":
                    await alice.subscribe(lambda: None, "org.other.topic")
                else:
                    await alice.publish("org.other.topic",
                                        options=types.PublishOptions(acknowledge=True))
            assert err.value.error == "wamp.error.not_authorized", action
        # still allowed under com.example.
        await alice.subscribe(lambda: None, "com.example.topic")
        assert alice.is_attached()
        await close(alice)

    run(scenario())


def test_realms_are_isolated(router: RouterProcess) -> None:
    async def scenario() -> None:
        anon = await join(router.ws_url, "realm1")
        alice = await join(router.ws_url, "realm2", authmethods=["ticket"], authid="alice",
                           secret="secret123")
        await anon.register(lambda: "realm1", "com.example.where")
        with pytest.raises(ApplicationError) as err:
            await alice.call("com.example.where")
        assert err.value.error == "wamp.error.no_such_procedure"
        await close(anon, alice)

    run(scenario())
