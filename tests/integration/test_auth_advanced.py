"""Advanced authentication and authorization with real autobahn-python clients
against a router process: WAMP-Cryptosign, WAMP-SCRAM (pbkdf2 and argon2id13),
hashed tickets, secrets from the environment and files, a dynamic
authenticator and a dynamic authorizer registered by a trusted component, and
TLS (wss:// and RawSocket over TLS with a throw-away self-signed certificate)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions

from tests.core.auth_helpers import (
    ARGON_CRED,
    PBKDF2_CRED,
    PRIVATE_1,
    PRIVATE_2,
    PRIVATE_3,
    public_key,
    scram_toml,
)

from .auth_clients import join_as
from .clients import JoinFailed, close
from .router_process import RouterProcess, run_router
from .tls_certs import self_signed

FAILED = "wamp.error.authentication_failed"
HASHED = "pbkdf2-sha256$1000$c2FsdHNhbHRzYWx0$wUsiOCD46dEeuIHviolrs2K71zdJhPOlw4/y1jkVoow="

CONFIG = f"""
[[listeners]]                      # static principals
transport = "websocket"
endpoint = "127.0.0.1:0"

[[listeners.auth.ticket]]
authid = "alice"
ticket = {{ env = "WAMP_TEST_ALICE_TICKET" }}
role = "user"
realm = "realm2"

[[listeners.auth.ticket]]
authid = "hashed"
ticket_hash = "{HASHED}"
role = "user"
realm = "realm2"

[[listeners.auth.wampcra]]
authid = "bob"
secret = {{ file = "bob.secret" }}
role = "user"
realm = "realm2"

[[listeners.auth.cryptosign]]
authid = "carol"
pubkeys = ["{public_key(PRIVATE_1)}"]
role = "user"
realm = "realm2"

{scram_toml("dave", PBKDF2_CRED)}
{scram_toml("erin", ARGON_CRED)}

[[listeners]]                      # dynamic authentication, and the trusted backend
transport = "rawsocket"
endpoint = "127.0.0.1:0"

[listeners.auth.anonymous]
role = "backend"
realms = ["internal", "app"]

[listeners.auth.ticket]
authenticator = "com.example.authenticate"
authenticator_realm = "internal"
authenticator_timeout = 1.0

[listeners.auth.cryptosign]
authenticator = "com.example.authenticate"
authenticator_realm = "internal"

[[realms]]
name = "realm2"
[[realms.roles]]
name = "user"
[[realms.roles.permissions]]
uri = "com.example."
match = "prefix"
allow = ["call", "register", "publish", "subscribe"]

[[realms]]
name = "internal"
[[realms.roles]]
name = "backend"
[[realms.roles.permissions]]
uri = "com.example."
match = "prefix"
allow = ["register"]

[[realms]]
name = "app"
authorizer = "com.example.authorize"
authorizer_timeout = 1.0
[[realms.roles]]
name = "backend"
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = ["call", "register", "publish", "subscribe"]
[[realms.roles.permissions]]
uri = "wamp.authorizer.invalidate"
allow = ["publish"]
[[realms.roles]]
name = "user"
[[realms.roles.permissions]]
uri = "com.static."
match = "prefix"
allow = ["call"]
"""


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterProcess]:
    secrets = tmp_path_factory.mktemp("secrets")
    (secrets / "bob.secret").write_text("bobsecret\n")
    text = CONFIG.replace('file = "bob.secret"', f'file = "{secrets / "bob.secret"}"')
    os.environ["WAMP_TEST_ALICE_TICKET"] = "secret123"
    try:
        with run_router(text) as rp:
            yield rp
    finally:
        del os.environ["WAMP_TEST_ALICE_TICKET"]


# --------------------------------------------------------------- static


@pytest.mark.parametrize("serializer", ["json", "msgpack", "cbor"])
def test_cryptosign(router: RouterProcess, serializer: str) -> None:
    async def scenario() -> None:
        carol = await join_as(router.ws_url, "realm2", "cryptosign", private_key=PRIVATE_1,
                              serializer=serializer)
        d = carol.details
        assert (d.authid, d.authrole, d.authmethod, d.authprovider) == (
            "carol", "user", "cryptosign", "static")
        await carol.register(lambda: "signed in", "com.example.hello")
        assert await carol.call("com.example.hello") == "signed in"
        await close(carol)
        for key in (PRIVATE_2, PRIVATE_3):  # not carol's key / unknown key
            with pytest.raises(JoinFailed) as failed:
                await join_as(router.ws_url, "realm2", "cryptosign", private_key=key)
            assert failed.value.reason == FAILED

    run(scenario())


def test_cryptosign_channel_binding_is_refused(router: RouterProcess) -> None:
    async def scenario() -> None:
        with pytest.raises(JoinFailed) as failed:
            await join_as(router.ws_url, "realm2", "cryptosign", private_key=PRIVATE_1,
                          authextra={"channel_binding": "tls-unique"})
        assert failed.value.reason == FAILED and "channel binding" in str(failed.value.message)

    run(scenario())


@pytest.mark.parametrize(("authid", "password"), [("dave", "dave-password"),
                                                  ("erin", "erin-password")])
def test_scram(router: RouterProcess, authid: str, password: str) -> None:
    async def scenario() -> None:
        s = await join_as(router.ws_url, "realm2", "wamp-scram", authid, password)
        assert (s.details.authid, s.details.authmethod) == (authid, "wamp-scram")
        assert s.verifier and s.details.authextra["verifier"] == s.verifier
        await close(s)
        for who, secret in ((authid, "wrong-password"), ("nobody", password)):
            with pytest.raises(JoinFailed) as failed:
                await join_as(router.ws_url, "realm2", "wamp-scram", who, secret)
            assert failed.value.reason == FAILED

    run(scenario())


@pytest.mark.parametrize(("method", "authid", "secret", "ok"), [
    ("ticket", "alice", "secret123", True),     # from the environment
    ("ticket", "alice", "secret", False),
    ("ticket", "hashed", "hashed-ticket", True),  # ticket_hash
    ("ticket", "hashed", HASHED, False),        # the hash itself is not the ticket
    ("wampcra", "bob", "bobsecret", True),      # from a file
    ("wampcra", "bob", "bobsecret\n", False),
])
def test_secrets_kept_out_of_the_config(router: RouterProcess, method: str, authid: str,
                                        secret: str, ok: bool) -> None:
    async def scenario() -> None:
        if ok:
            s = await join_as(router.ws_url, "realm2", method, authid, secret)
            assert s.details.authid == authid
            await close(s)
        else:
            with pytest.raises(JoinFailed) as failed:
                await join_as(router.ws_url, "realm2", method, authid, secret)
            assert failed.value.reason == FAILED

    run(scenario())


# -------------------------------------------------------------- dynamic


class Backend:
    """The trusted component: authenticator (realm internal) and authorizer (realm app)."""

    def __init__(self) -> None:
        self.authorizations: list[tuple[str, str]] = []
        self.sessions: list[Any] = []

    async def start(self, url: str) -> None:
        internal = await join_as(url, "internal", "anonymous")
        app = await join_as(url, "app", "anonymous")
        self.sessions = [internal, app]
        await internal.register(self.authenticate, "com.example.authenticate")
        await app.register(self.authorize, "com.example.authorize")
        await app.register(lambda: "dynamic ok", "com.app.allowed")
        await app.register(lambda: "static ok", "com.static.proc")

    def authenticate(self, realm: str, authid: str | None, details: dict[str, Any]) -> Any:
        if details["authmethod"] == "cryptosign":
            if details["authextra"]["pubkey"] != public_key(PRIVATE_2):
                raise ApplicationError("com.example.unknown_key", "unknown device key")
            return {"role": "user", "authid": "device-2", "pubkey": public_key(PRIVATE_2)}
        if details["ticket"] == "slow":
            return asyncio.sleep(3, result={"role": "user"})
        if details["ticket"] != f"{authid}-ok":
            raise ApplicationError("com.example.invalid_ticket", f"no ticket for {authid}")
        return {"role": "user", "realm": "app", "extra": {"plan": "gold",
                                                          "echo": details["authextra"]}}

    async def authorize(self, session: dict[str, Any], uri: str, action: str,
                        options: dict[str, Any]) -> Any:
        self.authorizations.append((action, uri))
        if uri == "com.app.allowed":
            return {"allow": True, "cache": True, "disclose": True}
        if uri == "com.app.raise":
            raise ApplicationError("com.example.broken", "authorizer is broken")
        if uri == "com.app.slow":
            await asyncio.sleep(3)
        return False

    async def stop(self) -> None:
        await close(*self.sessions)


def test_dynamic_authentication(router: RouterProcess) -> None:
    async def scenario() -> None:
        backend = Backend()
        await backend.start(router.raw_url)
        joe = await join_as(router.raw_url, "realm2", "ticket", "joe", "joe-ok",
                            authextra={"client": "test"})
        d = joe.details
        assert (d.realm, d.authid, d.authrole, d.authmethod, d.authprovider) == (
            "app", "joe", "user", "ticket", "dynamic")  # the authenticator chose the realm
        assert d.authextra == {"plan": "gold", "echo": {"client": "test"}}
        device = await join_as(router.raw_url, "realm2", "cryptosign", private_key=PRIVATE_2)
        assert (device.details.authid, device.details.authprovider) == ("device-2", "dynamic")
        with pytest.raises(JoinFailed) as failed:
            await join_as(router.raw_url, "realm2", "ticket", "joe", "bad")
        assert failed.value.reason == FAILED and failed.value.message == "no ticket for joe"
        with pytest.raises(JoinFailed) as failed:
            await join_as(router.raw_url, "realm2", "cryptosign", private_key=PRIVATE_1)
        assert failed.value.message == "unknown device key"
        with pytest.raises(JoinFailed) as failed:
            await join_as(router.raw_url, "realm2", "ticket", "joe", "slow")
        assert "no answer within 1.0 s" in str(failed.value.message)
        await close(joe, device)
        await backend.stop()
        with pytest.raises(JoinFailed) as failed:  # nobody registered it any more
            await join_as(router.raw_url, "realm2", "ticket", "joe", "joe-ok")
        assert "not available" in str(failed.value.message)

    run(scenario())


def test_dynamic_authorization(router: RouterProcess) -> None:
    async def scenario() -> None:
        backend = Backend()
        await backend.start(router.raw_url)
        joe = await join_as(router.raw_url, "app", "ticket", "joe", "joe-ok")
        assert await joe.call("com.static.proc") == "static ok"  # static: not asked
        assert backend.authorizations == []
        assert await joe.call("com.app.allowed") == "dynamic ok"
        assert await joe.call("com.app.allowed") == "dynamic ok"  # cached
        assert backend.authorizations == [("call", "com.app.allowed")]
        for uri, error in (("com.app.denied", "wamp.error.not_authorized"),
                           ("com.app.raise", "wamp.error.authorization_failed"),
                           ("com.app.slow", "wamp.error.authorization_failed")):
            with pytest.raises(ApplicationError) as err:
                await joe.call(uri)
            assert err.value.error == error, uri
        await backend.sessions[1].publish("wamp.authorizer.invalidate",
                                          options=PublishOptions(acknowledge=True))
        assert await joe.call("com.app.allowed") == "dynamic ok"
        assert backend.authorizations.count(("call", "com.app.allowed")) == 2  # asked again
        await close(joe)
        await backend.stop()

    run(scenario())


# ------------------------------------------------------------------ TLS


def test_tls_websocket_and_rawsocket(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    tls = f'tls = {{ certificate = "{cert}", key = "{key}" }}'
    text = f"""
[[listeners]]
transport = "websocket"
endpoint = "127.0.0.1:0"
{tls}
[[listeners]]
transport = "rawsocket"
endpoint = "127.0.0.1:0"
{tls}

[[realms]]
name = "realm1"
[[realms.roles]]
name = "anonymous"
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = ["call", "register", "publish", "subscribe"]
"""
    with run_router(text) as rp:
        assert rp.ws_url.startswith("wss://")
        raw = f"rs+tls://127.0.0.1:{rp.raw_port}"

        async def scenario() -> None:
            a = await join_as(rp.ws_url, "realm1", "anonymous", cafile=str(cert))
            b = await join_as(raw, "realm1", "anonymous", serializer="msgpack",
                              cafile=str(cert))
            await a.register(lambda x: x + 1, "com.example.inc")
            assert await b.call("com.example.inc", 41) == 42
            await close(a, b)
            with pytest.raises((ConnectionError, OSError, asyncio.TimeoutError)):
                # plain WebSocket on the TLS port: no session comes of it
                await join_as(rp.ws_url.replace("wss://", "ws://"), "realm1", "anonymous",
                              timeout=3)

        run(scenario())
