"""realms/secure.toml as shipped (on free ports): every method joins with its
test principal, and the trusted backend provides the dynamic authenticator and
authorizer the config names."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from autobahn.wamp.exception import ApplicationError

from tests.core.auth_helpers import PRIVATE_1, PRIVATE_2, public_key

from .auth_clients import join_as
from .clients import JoinFailed, close
from .router_process import ROOT, RouterProcess, run_router

FAILED = "wamp.error.authentication_failed"


@pytest.fixture(scope="module")
def router() -> Iterator[RouterProcess]:
    text = (ROOT / "realms" / "secure.toml").read_text()
    text = text.replace("127.0.0.1:8080", "127.0.0.1:0").replace("127.0.0.1:8081", "127.0.0.1:0")
    text = text.replace('file = "secrets/', f'file = "{ROOT / "realms" / "secrets"}/')
    with run_router(text) as rp:
        yield rp


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


@pytest.mark.parametrize(("method", "authid", "secret", "key"), [
    ("ticket", "alice", "alice-test-ticket", None),
    ("ticket", "henry", "henry-test-ticket", None),
    ("ticket", "ivy", "ivy-test-ticket", None),
    ("wampcra", "bob", "bob-test-secret", None),
    ("cryptosign", None, None, PRIVATE_1),
    ("wamp-scram", "dave", "dave-test-password", None),
    ("wamp-scram", "erin", "erin-test-password", None),
])
def test_static_methods(router: RouterProcess, method: str, authid: str | None,
                        secret: str | None, key: str | None) -> None:
    async def scenario() -> None:
        s = await join_as(router.ws_url, "app", method, authid, secret, key)
        assert s.details.realm == "app" and s.details.authrole == "user"
        assert s.details.authmethod == method and s.details.authprovider == "static"
        with pytest.raises(ApplicationError) as err:  # static: allowed, nobody registered it
            await s.call("com.app.public.nothing")
        assert err.value.error == "wamp.error.no_such_procedure"
        await close(s)

    run(scenario())


def test_anonymous_guest_and_a_wrong_ticket(router: RouterProcess) -> None:
    async def scenario() -> None:
        guest = await join_as(router.ws_url, "public", "anonymous")
        assert guest.details.authrole == "guest"
        await guest.subscribe(lambda: None, "public.news")
        with pytest.raises(ApplicationError):
            await guest.call("public.anything")
        await close(guest)
        with pytest.raises(JoinFailed) as failed:  # after the listener's 1 s delay
            await join_as(router.ws_url, "app", "ticket", "alice", "wrong")
        assert failed.value.reason == FAILED
        with pytest.raises(JoinFailed) as failed:
            await join_as(router.ws_url, "app", "anonymous")
        assert failed.value.reason == "wamp.error.no_auth_method"

    run(scenario())


def test_backend_dynamic_authentication_and_authorization(router: RouterProcess) -> None:
    url = router.raw_url

    def authenticate(realm: str, authid: str | None, details: dict[str, Any]) -> Any:
        if details["authmethod"] == "wampcra" and authid == "frank":
            return {"role": "user", "secret": "frank-test-secret"}
        if details["authmethod"] == "cryptosign":
            return {"role": "user", "authid": "sensor", "pubkey": public_key(PRIVATE_2)}
        raise ApplicationError("com.example.unknown", f"unknown principal {authid}")

    def authorize(session: dict[str, Any], uri: str, action: str, options: Any) -> Any:
        return {"allow": uri.startswith("com.app.private."), "cache": True}

    async def scenario() -> None:
        internal = await join_as(url, "internal", "ticket", "backend", "backend-test-ticket")
        app = await join_as(url, "app", "ticket", "backend", "backend-test-ticket")
        await internal.register(authenticate, "com.example.authenticate")
        await app.register(authorize, "com.example.authorize")
        await app.register(lambda: "private", "com.app.private.data")
        await app.register(lambda: "secret", "com.app.secret.data")
        frank = await join_as(url, "app", "wampcra", "frank", "frank-test-secret")
        sensor = await join_as(url, "app", "cryptosign", private_key=PRIVATE_2)
        assert (frank.details.authprovider, sensor.details.authid) == ("dynamic", "sensor")
        assert await frank.call("com.app.private.data") == "private"
        with pytest.raises(ApplicationError) as err:
            await sensor.call("com.app.secret.data")
        assert err.value.error == "wamp.error.not_authorized"
        with pytest.raises(JoinFailed) as failed:
            await join_as(url, "app", "wampcra", "mallory", "x")
        assert failed.value.message == "unknown principal mallory"
        await close(frank, sensor, internal, app)

    run(scenario())
