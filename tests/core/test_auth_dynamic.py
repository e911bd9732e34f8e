"""Dynamic authentication through the pure core: the router calls a procedure a
trusted session registered (a router-originated invocation), the joining session
waits and the callee's YIELD / ERROR (or the timeout) resumes it."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.helpers import ROLES, Harness
from wamp_router.config.loader import load_config_text
from wamp_router.core.auth.wampcra import sign
from wamp_router.core.messages import (
    Abort,
    Authenticate,
    Call,
    Challenge,
    Error,
    Hello,
    Interrupt,
    Invocation,
    Register,
    Registered,
    Result,
    Welcome,
    Yield,
)
from wamp_router.core.session import State

from .auth_helpers import PBKDF2_CRED, PRIVATE_1, cryptosign_signature, public_key, scram_proof

FAILED = "wamp.error.authentication_failed"
AUTHENTICATE = "com.example.authenticate"

CONFIG = f"""
[[listeners]]
transport = "websocket"
endpoint = "127.0.0.1:0"

[listeners.auth.anonymous]
role = "backend"
realms = ["internal"]

[listeners.auth.ticket]
authenticator = "{AUTHENTICATE}"
authenticator_realm = "internal"
authenticator_timeout = 2.0

[listeners.auth.wampcra]
authenticator = "{AUTHENTICATE}"
authenticator_realm = "internal"

[listeners.auth.cryptosign]
authenticator = "{AUTHENTICATE}"
authenticator_realm = "internal"

[listeners.auth.scram]
authenticator = "{AUTHENTICATE}"
authenticator_realm = "internal"

[[realms]]
name = "internal"
[[realms.roles]]
name = "backend"
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = ["call", "register", "publish", "subscribe"]

[[realms]]
name = "app"
[[realms.roles]]
name = "user"
[[realms.roles.permissions]]
uri = "com.app."
match = "prefix"
allow = ["call"]

[[realms]]
name = "other"
[[realms.roles]]
name = "user"
"""

CALLEE_ROLES = {"callee": {"features": {"call_canceling": True}}, "caller": {}}


@pytest.fixture
def h() -> Harness:
    return Harness(load_config_text(CONFIG, "<test>"))


def backend(h: Harness, procedure: str = AUTHENTICATE) -> int:
    conn = h.connect()
    [welcome] = h.send(conn, Hello("internal", {"roles": CALLEE_ROLES}))
    assert isinstance(welcome, Welcome)
    [registered] = h.send(conn, Register(1, {}, procedure))
    assert isinstance(registered, Registered)
    return conn


def hello(h: Harness, method: str, authid: str | None = "joe", **authextra: Any) -> tuple[
        int, list[Any]]:
    conn = h.connect()
    details: dict[str, Any] = {"roles": ROLES, "authmethods": [method]}
    if authid is not None:
        details["authid"] = authid
    if authextra:
        details["authextra"] = authextra
    return conn, h.send(conn, Hello("app", details))


def invocation(h: Harness, callee: int) -> Invocation:
    [inv] = h.take(callee)
    assert isinstance(inv, Invocation)
    return inv


def test_ticket_allowed(h: Harness) -> None:
    callee = backend(h)
    conn, [ch] = hello(h, "ticket", authextra_key="v")
    assert isinstance(ch, Challenge) and ch.method == "ticket"
    assert h.send(conn, Authenticate("the-ticket", {})) == []  # waiting for the authenticator
    assert h.router.session(conn).state is State.AUTHENTICATING  # type: ignore[union-attr]
    inv = invocation(h, callee)
    realm, authid, details = inv.args  # type: ignore[misc]
    assert (realm, authid) == ("app", "joe")
    assert details["authmethod"] == "ticket" and details["ticket"] == "the-ticket"
    assert details["authextra"] == {"authextra_key": "v"}
    assert details["transport"]["type"] == "websocket" and isinstance(details["session"], int)
    assert "caller" not in inv.details  # the router itself calls: no caller identity
    h.send(callee, Yield(inv.request, {}, [{"role": "user", "extra": {"greeting": "hi"}}]))
    [welcome] = h.take(conn)
    assert isinstance(welcome, Welcome)
    d = welcome.details
    assert (d["authid"], d["authrole"], d["authmethod"], d["authprovider"], d["realm"]) == (
        "joe", "user", "ticket", "dynamic", "app")
    assert d["authextra"] == {"greeting": "hi"}
    [result] = h.send(conn, Call(1, {}, "wamp.session.count"))  # works as the role allows
    assert isinstance(result, Error) and result.error == "wamp.error.not_authorized"


def test_answer_may_set_authid_and_realm(h: Harness) -> None:
    callee = backend(h)
    conn, _ = hello(h, "ticket")
    h.send(conn, Authenticate("t", {}))
    inv = invocation(h, callee)
    h.send(callee, Yield(inv.request, {}, [], {"role": "user", "authid": "joe@example.com",
                                                "realm": "other"}))
    [welcome] = h.take(conn)
    assert isinstance(welcome, Welcome)
    assert (welcome.details["authid"], welcome.details["realm"]) == ("joe@example.com", "other")


def test_plain_string_answer_is_the_role(h: Harness) -> None:
    callee = backend(h)
    conn, _ = hello(h, "ticket")
    h.send(conn, Authenticate("t", {}))
    h.send(callee, Yield(invocation(h, callee).request, {}, ["user"]))
    [welcome] = h.take(conn)
    assert isinstance(welcome, Welcome) and welcome.details["authrole"] == "user"


def test_authenticator_error_aborts_with_its_message(h: Harness) -> None:
    callee = backend(h)
    conn, _ = hello(h, "ticket")
    h.send(conn, Authenticate("bad", {}))
    inv = invocation(h, callee)
    h.send(callee, Error(Invocation.TYPE, inv.request, {}, "com.example.invalid_ticket",
                         ["no such ticket"]))
    [abort] = h.take(conn)
    assert isinstance(abort, Abort) and abort.reason == FAILED
    assert abort.details["message"] == "no such ticket"
    assert conn in h.closed


@pytest.mark.parametrize(("answer", "fragment"), [
    ({"authid": "x"}, "no role"), (42, "neither a dict nor a role"),
    ({"role": "nosuchrole"}, "does not exist")])
def test_unusable_answers(h: Harness, answer: Any, fragment: str) -> None:
    callee = backend(h)
    conn, _ = hello(h, "ticket")
    h.send(conn, Authenticate("t", {}))
    h.send(callee, Yield(invocation(h, callee).request, {}, [answer]))
    [abort] = h.take(conn)
    assert isinstance(abort, Abort) and fragment in abort.details["message"]


def test_no_registration_aborts_clearly(h: Harness) -> None:
    conn, _ = hello(h, "ticket")
    [abort] = h.send(conn, Authenticate("t", {}))
    assert isinstance(abort, Abort) and abort.reason == FAILED
    assert "not available" in abort.details["message"]
    assert AUTHENTICATE in abort.details["message"]


def test_timeout_aborts_and_interrupts(h: Harness) -> None:
    callee = backend(h)
    conn, _ = hello(h, "ticket")
    h.send(conn, Authenticate("t", {}))
    inv = invocation(h, callee)
    assert h.timers  # the dealer's deadline
    h.advance(1.9)
    assert h.take(conn) == []
    h.advance(0.2)
    [abort] = h.take(conn)
    assert isinstance(abort, Abort) and "no answer within 2.0 s" in abort.details["message"]
    [interrupt] = h.take(callee)
    assert isinstance(interrupt, Interrupt) and interrupt.request == inv.request
    h.send(callee, Yield(inv.request, {}, ["user"]))  # too late: ignored
    assert h.take(conn) == []


def test_other_sessions_are_not_blocked(h: Harness) -> None:
    callee = backend(h)
    conn, _ = hello(h, "ticket")
    h.send(conn, Authenticate("t", {}))
    other = h.join("internal")
    [result] = h.send(other, Call(1, {}, "wamp.session.count"))
    assert isinstance(result, Result)
    h.send(callee, Yield(invocation(h, callee).request, {}, ["user"]))
    assert isinstance(h.take(conn)[0], Welcome)


def test_joining_session_lost_while_waiting(h: Harness) -> None:
    callee = backend(h)
    conn, _ = hello(h, "ticket")
    h.send(conn, Authenticate("t", {}))
    inv = invocation(h, callee)
    h.lose(conn)
    [interrupt] = h.take(callee)  # the authenticator call is abandoned
    assert isinstance(interrupt, Interrupt)
    h.send(callee, Yield(inv.request, {}, ["user"]))
    assert len(h.router.realms["internal"].dealer.calls) == 0


def test_message_while_authenticating_is_a_violation(h: Harness) -> None:
    backend(h)
    conn, _ = hello(h, "ticket")
    h.send(conn, Authenticate("t", {}))
    [abort] = h.send(conn, Authenticate("again", {}))
    assert isinstance(abort, Abort) and abort.reason == "wamp.error.protocol_violation"


def test_authenticator_leaving_cancels(h: Harness) -> None:
    callee = backend(h)
    conn, _ = hello(h, "ticket")
    h.send(conn, Authenticate("t", {}))
    h.lose(callee)
    [abort] = h.take(conn)
    assert isinstance(abort, Abort) and "not available" in abort.details["message"]


@pytest.mark.parametrize("salted", [False, True])
def test_wampcra(h: Harness, salted: bool) -> None:
    callee = backend(h)
    conn, out = hello(h, "wampcra")
    assert out == []  # asked at HELLO: the router needs the secret to challenge
    inv = invocation(h, callee)
    assert inv.args[0:2] == ["app", "joe"] and inv.args[2]["authmethod"] == "wampcra"
    answer: dict[str, Any] = {"role": "user", "secret": "s3cret"}
    if salted:
        answer.update(salt="pepper", iterations=10, keylen=32)
    h.send(callee, Yield(inv.request, {}, [answer]))
    [ch] = h.take(conn)
    assert isinstance(ch, Challenge) and ch.method == "wampcra"
    assert ('"authprovider":"dynamic"' in ch.extra["challenge"])
    assert ("salt" in ch.extra) == salted
    from wamp_router.core.auth.wampcra import derive_key

    key = derive_key("s3cret", "pepper", 10, 32) if salted else b"s3cret"
    [welcome] = h.send(conn, Authenticate(sign(key, ch.extra["challenge"]), {}))
    assert isinstance(welcome, Welcome) and welcome.details["authprovider"] == "dynamic"


def test_wampcra_wrong_signature(h: Harness) -> None:
    callee = backend(h)
    conn, _ = hello(h, "wampcra")
    h.send(callee, Yield(invocation(h, callee).request, {}, [{"role": "user", "secret": "s"}]))
    [ch] = h.take(conn)
    [abort] = h.send(conn, Authenticate(sign(b"other", ch.extra["challenge"]), {}))
    assert isinstance(abort, Abort) and abort.reason == FAILED


@pytest.mark.parametrize("right_key", [True, False])
def test_cryptosign(h: Harness, right_key: bool) -> None:
    callee = backend(h)
    pubkey = public_key(PRIVATE_1)
    conn, _ = hello(h, "cryptosign", None, pubkey=pubkey)
    inv = invocation(h, callee)
    assert inv.args[1] is None and inv.args[2]["authextra"]["pubkey"] == pubkey
    h.send(callee, Yield(inv.request, {}, [{"role": "user", "authid": "device-1",
                                            "pubkey": pubkey}]))
    [ch] = h.take(conn)
    assert isinstance(ch, Challenge) and ch.method == "cryptosign"
    signer = PRIVATE_1 if right_key else "11" * 32
    [answer] = h.send(conn, Authenticate(cryptosign_signature(signer, ch.extra["challenge"]), {}))
    assert isinstance(answer, Welcome if right_key else Abort)
    if right_key:
        assert isinstance(answer, Welcome) and answer.details["authid"] == "device-1"


def test_scram(h: Harness) -> None:
    callee = backend(h)
    nonce = base64.b64encode(b"0123456789abcdef").decode()
    conn, _ = hello(h, "wamp-scram", "dave", nonce=nonce)
    inv = invocation(h, callee)
    h.send(callee, Yield(inv.request, {}, [{"role": "user", **PBKDF2_CRED}]))
    [ch] = h.take(conn)
    assert isinstance(ch, Challenge) and ch.method == "wamp-scram"
    proof, verifier = scram_proof("dave-password", "dave", nonce, ch.extra)
    [welcome] = h.send(conn, Authenticate(proof, {"nonce": ch.extra["nonce"]}))
    assert isinstance(welcome, Welcome)
    assert welcome.details["authextra"] == {"verifier": verifier}
    assert welcome.details["authprovider"] == "dynamic"
