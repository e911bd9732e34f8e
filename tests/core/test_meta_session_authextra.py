"""Session meta API and authextra: ``wamp.session.get`` (and the details of
``wamp.session.on_join``) carry the session's WELCOME.Details.authextra when it has
one, and no ``authextra`` key when it has none."""

from __future__ import annotations

from typing import Any

from tests.helpers import ROLES, Harness
from wamp_router.config.loader import load_config_text
from wamp_router.core.messages import (
    Authenticate,
    Call,
    Challenge,
    Event,
    Hello,
    Invocation,
    Register,
    Registered,
    Result,
    Subscribe,
    Subscribed,
    Welcome,
    Yield,
)

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
uri = "wamp.session."
match = "prefix"
allow = ["call", "subscribe"]
"""

SPEC_KEYS = {"session", "authid", "authrole", "authmethod", "authprovider", "transport"}


def ticket_join(h: Harness, callee: int, authid: str, answer: Any) -> tuple[int, Welcome]:
    """Join realm "app" with a ticket; the dynamic authenticator answers ``answer``."""
    conn = h.connect()
    [ch] = h.send(conn, Hello("app", {"roles": ROLES, "authmethods": ["ticket"],
                                      "authid": authid}))
    assert isinstance(ch, Challenge)
    assert h.send(conn, Authenticate("t", {})) == []
    [inv] = h.take(callee)
    assert isinstance(inv, Invocation)
    h.send(callee, Yield(inv.request, {}, [answer]))
    [welcome] = h.take(conn)
    assert isinstance(welcome, Welcome), welcome
    return conn, welcome


def call(h: Harness, conn: int, procedure: str, *args: Any) -> Any:
    [result] = h.send(conn, Call(7, {}, procedure, list(args)))
    assert isinstance(result, Result), result
    assert result.args is not None
    return result.args[0]


def test_session_get_and_on_join_carry_authextra() -> None:
    h = Harness(load_config_text(CONFIG, "<test>"))
    backend = h.connect()
    [welcome] = h.send(backend, Hello("internal", {"roles": ROLES}))
    assert isinstance(welcome, Welcome)
    [registered] = h.send(backend, Register(1, {}, AUTHENTICATE))
    assert isinstance(registered, Registered)

    plain, w_plain = ticket_join(h, backend, "plain", "user")  # a role only: no authextra
    assert "authextra" not in w_plain.details
    [subscribed] = h.send(plain, Subscribe(2, {}, "wamp.session.on_join"))
    assert isinstance(subscribed, Subscribed)

    extra = {"plan": "gold", "limits": [1, 2]}
    rich, w_rich = ticket_join(h, backend, "rich", {"role": "user", "extra": extra})
    assert w_rich.details["authextra"] == extra
    [event] = h.take(plain)
    assert isinstance(event, Event) and event.args is not None
    joined = event.args[0]
    assert joined["session"] == w_rich.session and joined["authextra"] == extra

    info = call(h, plain, "wamp.session.get", w_rich.session)
    assert set(info) == SPEC_KEYS | {"authextra"}
    assert (info["authid"], info["authrole"], info["authmethod"], info["authprovider"]) == (
        "rich", "user", "ticket", "dynamic")
    assert info["authextra"] == extra

    info = call(h, rich, "wamp.session.get", w_plain.session)
    assert set(info) == SPEC_KEYS  # no authextra: no key (not an empty dict)
    assert info["authid"] == "plain"
