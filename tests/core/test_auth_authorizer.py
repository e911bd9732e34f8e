"""Authorization through the pure core: the dynamic authorizer (allow, deny,
raise, time out, cache, invalidation, ordering, pattern subscriptions,
disclosure), per-permission static disclosure, and a property: the static
authorizer decides like a naive reference implementation."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import Harness
from wamp_router.config.loader import load_config_text
from wamp_router.config.model import Permission, Role
from wamp_router.core.authorizer import Authorizer
from wamp_router.core.messages import (
    Authenticate,
    Call,
    Error,
    Event,
    Hello,
    Interrupt,
    Invocation,
    Publish,
    Published,
    Register,
    Registered,
    Result,
    Subscribe,
    Subscribed,
    Unsubscribe,
    Welcome,
    Yield,
)

AUTHORIZE = "com.example.authorize"
NOT_AUTHORIZED = "wamp.error.not_authorized"
FAILED = "wamp.error.authorization_failed"

CONFIG = f"""
[[listeners]]
transport = "websocket"
endpoint = "127.0.0.1:0"
[listeners.auth.anonymous]
role = "user"
realms = ["app"]
[[listeners.auth.ticket]]
authid = "backend"
ticket = "backend-ticket"
role = "backend"
[[listeners.auth.ticket]]
authid = "auditor"
ticket = "auditor-ticket"
role = "auditor"

[[realms]]
name = "app"
authorizer = "{AUTHORIZE}"
authorizer_timeout = 2.0

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
name = "auditor"
[[realms.roles.permissions]]
uri = "com.audit."
match = "prefix"
allow = ["call"]
disclose = {{ caller = true }}

[[realms.roles]]
name = "user"
[[realms.roles.permissions]]
uri = "com.static."
match = "prefix"
allow = ["call", "subscribe"]
"""

CALLEE = {"callee": {"features": {"call_canceling": True}}, "caller": {}, "publisher": {},
          "subscriber": {}}


@pytest.fixture
def h() -> Harness:
    return Harness(load_config_text(CONFIG, "<test>"))


def join_ticket(h: Harness, authid: str) -> int:
    conn = h.connect()
    h.send(conn, Hello("app", {"roles": CALLEE, "authmethods": ["ticket"], "authid": authid}))
    [welcome] = h.send(conn, Authenticate(f"{authid}-ticket", {}))
    assert isinstance(welcome, Welcome)
    return conn


def setup(h: Harness) -> tuple[int, int]:
    """(backend registered as the authorizer and as com.app.proc, user session)."""
    backend = join_ticket(h, "backend")
    [reg] = h.send(backend, Register(1, {}, AUTHORIZE))
    assert isinstance(reg, Registered)
    [reg] = h.send(backend, Register(2, {}, "com.app.proc"))
    assert isinstance(reg, Registered)
    user = h.join("app")
    return backend, user


def ask(h: Harness, backend: int) -> Invocation:
    out = h.take(backend)
    invs = [m for m in out if isinstance(m, Invocation) and m.registration == authorize_id(h)]
    assert len(invs) == 1, out
    return invs[0]


def authorize_id(h: Harness) -> int:
    reg = h.router.realms["app"].dealer.lookup(AUTHORIZE)
    assert reg is not None
    return reg.id


def answer(h: Harness, backend: int, inv: Invocation, value: Any) -> None:
    """The authorizer's YIELD; what it causes stays in the inboxes (also the backend's)."""
    h.apply(h.router.receive(backend, Yield(inv.request, {}, [value]), h.now))


def test_static_permission_needs_no_authorizer(h: Harness) -> None:
    backend, user = setup(h)
    [err] = h.send(user, Call(1, {}, "com.static.nothing"))
    assert isinstance(err, Error) and err.error == "wamp.error.no_such_procedure"
    assert h.take(backend) == []


@pytest.mark.parametrize("decision", [True, {"allow": True}])
def test_allow(h: Harness, decision: Any) -> None:
    backend, user = setup(h)
    assert h.send(user, Call(7, {"x": 1}, "com.app.proc", [1])) == []  # parked
    inv = ask(h, backend)
    details, uri, action, options = inv.args  # type: ignore[misc]
    assert (uri, action, options) == ("com.app.proc", "call", {"x": 1})
    assert details["authrole"] == "user" and details["session"]
    answer(h, backend, inv, decision)
    [call_inv] = h.take(backend)
    assert isinstance(call_inv, Invocation) and call_inv.args == [1]
    h.send(backend, Yield(call_inv.request, {}, ["done"]))
    [result] = h.take(user)
    assert isinstance(result, Result) and result.request == 7 and result.args == ["done"]


@pytest.mark.parametrize("decision", [False, {"allow": False}])
def test_deny(h: Harness, decision: Any) -> None:
    backend, user = setup(h)
    h.send(user, Call(7, {}, "com.app.proc"))
    answer(h, backend, ask(h, backend), decision)
    [err] = h.take(user)
    assert isinstance(err, Error) and err.error == NOT_AUTHORIZED and err.request == 7
    assert "dynamic authorizer" in err.args[0]  # type: ignore[index]


def test_authorizer_raises(h: Harness) -> None:
    backend, user = setup(h)
    h.send(user, Publish(3, {"acknowledge": True}, "com.app.topic"))
    inv = ask(h, backend)
    assert inv.args[2] == "publish"
    h.send(backend, Error(Invocation.TYPE, inv.request, {}, "com.example.oops", ["db down"]))
    [err] = h.take(user)
    assert isinstance(err, Error) and err.error == FAILED and "db down" in err.args[0]


def test_malformed_answer(h: Harness) -> None:
    backend, user = setup(h)
    h.send(user, Call(1, {}, "com.app.proc"))
    answer(h, backend, ask(h, backend), "yes")
    [err] = h.take(user)
    assert isinstance(err, Error) and err.error == FAILED


def test_timeout(h: Harness) -> None:
    backend, user = setup(h)
    h.send(user, Call(1, {}, "com.app.proc"))
    inv = ask(h, backend)
    h.advance(2.5)
    [err] = h.take(user)
    assert isinstance(err, Error) and err.error == FAILED and "did not answer" in err.args[0]
    [interrupt] = h.take(backend)
    assert isinstance(interrupt, Interrupt) and interrupt.request == inv.request
    answer(h, backend, inv, True)  # too late
    assert h.take(user) == [] and h.take(backend) == []


def test_no_authorizer_registered(h: Harness) -> None:
    user = h.join("app")
    [err] = h.send(user, Subscribe(1, {}, "com.app.topic"))
    assert isinstance(err, Error) and err.error == FAILED and AUTHORIZE in err.args[0]


def test_cache_hit_calls_once(h: Harness) -> None:
    backend, user = setup(h)
    h.send(user, Call(1, {}, "com.app.proc"))
    h.send(user, Call(2, {}, "com.app.proc"))  # waits behind the first
    inv = ask(h, backend)
    answer(h, backend, inv, {"allow": True, "cache": True})
    invs = h.take(backend)
    assert [type(m) for m in invs] == [Invocation, Invocation]  # both calls, one question
    h.send(user, Call(3, {}, "com.app.proc"))
    [third] = h.take(backend)
    assert isinstance(third, Invocation) and third.registration != authorize_id(h)


def test_without_cache_asks_every_time(h: Harness) -> None:
    backend, user = setup(h)
    for request in (1, 2):
        h.send(user, Call(request, {}, "com.app.proc"))
        answer(h, backend, ask(h, backend), True)
        [inv] = h.take(backend)
        assert isinstance(inv, Invocation)


def test_denial_can_be_cached(h: Harness) -> None:
    backend, user = setup(h)
    h.send(user, Call(1, {}, "com.app.proc"))
    answer(h, backend, ask(h, backend), {"allow": False, "cache": True})
    h.take(user)
    [err] = h.send(user, Call(2, {}, "com.app.proc"))
    assert isinstance(err, Error) and err.error == NOT_AUTHORIZED
    assert h.take(backend) == []


def test_invalidation(h: Harness) -> None:
    backend, user = setup(h)
    h.send(user, Call(1, {}, "com.app.proc"))
    answer(h, backend, ask(h, backend), {"allow": True, "cache": True})
    h.take(backend)
    [ack] = h.send(backend, Publish(9, {"acknowledge": True}, "wamp.authorizer.invalidate"))
    assert isinstance(ack, Published)
    h.send(user, Call(2, {}, "com.app.proc"))
    ask(h, backend)  # asked again


def test_invalidation_filters(h: Harness) -> None:
    backend, user = setup(h)
    h.send(user, Call(1, {}, "com.app.proc"))
    answer(h, backend, ask(h, backend), {"allow": True, "cache": True})
    h.take(backend)
    h.send(backend, Publish(9, {}, "wamp.authorizer.invalidate", [], {"authrole": "other"}))
    h.send(user, Call(2, {}, "com.app.proc"))
    [inv] = h.take(backend)
    assert inv.registration != authorize_id(h)  # still cached


def test_invalidation_needs_a_trusted_role(h: Harness) -> None:
    backend, user = setup(h)
    [err] = h.send(user, Publish(9, {"acknowledge": True}, "wamp.authorizer.invalidate"))
    assert isinstance(err, Error) and err.error == NOT_AUTHORIZED
    assert h.take(backend) == []  # never asked to the dynamic authorizer


def test_requests_keep_their_order(h: Harness) -> None:
    """A request that needs no authorizer waits behind one that does."""
    backend, user = setup(h)
    h.send(user, Call(1, {}, "com.app.proc"))
    assert h.send(user, Call(2, {}, "com.static.missing")) == []  # held, not answered yet
    answer(h, backend, ask(h, backend), True)
    [inv] = h.take(backend)  # call 1 went to its callee first, then call 2 was handled
    assert isinstance(inv, Invocation)
    [err] = h.take(user)
    assert isinstance(err, Error) and err.request == 2
    h.send(backend, Yield(inv.request, {}, []))
    [result] = h.take(user)
    assert isinstance(result, Result) and result.request == 1


def test_held_requests_are_answered_in_order(h: Harness) -> None:
    backend, user = setup(h)
    h.send(user, Subscribe(1, {}, "com.app.a"))
    h.send(user, Subscribe(2, {}, "com.static.b"))
    answer(h, backend, ask(h, backend), True)
    out = h.take(user)
    assert [(type(m), m.request) for m in out] == [(Subscribed, 1), (Subscribed, 2)]


def test_session_leaving_while_parked(h: Harness) -> None:
    backend, user = setup(h)
    h.send(user, Call(1, {}, "com.app.proc"))
    inv = ask(h, backend)
    h.lose(user)
    [interrupt] = h.take(backend)
    assert isinstance(interrupt, Interrupt)
    answer(h, backend, inv, True)
    assert h.take(backend) == []


def test_pattern_subscription_allowed_dynamically_gets_events(h: Harness) -> None:
    backend, user = setup(h)
    h.send(user, Subscribe(1, {"match": "prefix"}, "com.app."))
    inv = ask(h, backend)
    assert inv.args[3] == {"match": "prefix"} and inv.args[2] == "subscribe"
    answer(h, backend, inv, True)
    [sub] = h.take(user)
    assert isinstance(sub, Subscribed)
    h.send(backend, Publish(5, {}, "com.app.news", ["hello"]))
    [event] = h.take(user)
    assert isinstance(event, Event) and event.args == ["hello"]
    h.send(user, Unsubscribe(2, sub.subscription))
    assert h.router.session(user).authz.subscriptions == set()  # type: ignore[union-attr]


def test_dynamic_disclosure(h: Harness) -> None:
    backend, user = setup(h)
    h.send(user, Call(1, {}, "com.app.proc"))
    answer(h, backend, ask(h, backend), {"allow": True, "disclose": True})
    [inv] = h.take(backend)
    assert inv.details["caller_authrole"] == "user"


def test_static_permission_disclosure(h: Harness) -> None:
    backend = join_ticket(h, "backend")
    h.send(backend, Register(1, {}, "com.audit.log"))
    auditor = join_ticket(h, "auditor")
    h.send(auditor, Call(1, {}, "com.audit.log"))
    [inv] = h.take(backend)
    assert isinstance(inv, Invocation) and inv.details["caller_authid"] == "auditor"


# ------------------------------------------------------ static: a property

SEGMENTS = st.sampled_from(["a", "b", "c"])
URIS = st.lists(SEGMENTS, min_size=1, max_size=4).map(".".join)
ACTIONS = ("call", "register", "publish", "subscribe")


@st.composite
def permissions(draw: st.DrawFn) -> Permission:
    match = draw(st.sampled_from(["exact", "prefix", "wildcard"]))
    parts = draw(st.lists(SEGMENTS, min_size=1, max_size=4))
    if match == "prefix":
        uri = ".".join(parts) + draw(st.sampled_from(["", "."]))
        uri = draw(st.sampled_from([uri, ""]))
    elif match == "wildcard":
        uri = ".".join(p if draw(st.booleans()) else "" for p in parts)
        if not any(uri.split(".")):
            uri = "a" + uri
    else:
        uri = ".".join(parts)
    allow = draw(st.frozensets(st.sampled_from(ACTIONS)))
    return Permission(uri, match, allow)  # type: ignore[arg-type]


def reference(perms: list[Permission], action: str, uri: str) -> bool:
    """Naive: the last permission given for a (uri, match) counts; exact beats
    prefix, the longest prefix wins, prefix beats wildcard; among wildcards the
    one with literal components first, left to right (UriMap's rule)."""
    latest = {(p.uri, p.match): p for p in perms}
    parts = uri.split(".")
    exact = latest.get((uri, "exact"))
    if exact is not None:
        return action in exact.allow
    prefixes = [p for (u, m), p in latest.items() if m == "prefix" and uri.startswith(u)]
    if prefixes:
        return action in max(prefixes, key=lambda p: len(p.uri)).allow
    wild = [p for (u, m), p in latest.items() if m == "wildcard"
            and len(u.split(".")) == len(parts)
            and all(not w or w == x for w, x in zip(u.split("."), parts, strict=True))]
    if not wild:
        return False
    return action in wildcard_winner(wild).allow


def wildcard_winner(wild: list[Permission]) -> Permission:
    """Literal components beat wildcards, left to right; then the pattern's text."""
    return min(wild, key=lambda p: (tuple(c == "" for c in p.uri.split(".")), p.uri))


@settings(max_examples=300, deadline=None)
@given(st.lists(permissions(), max_size=8), URIS, st.sampled_from(ACTIONS))
def test_static_authorizer_matches_reference(perms: list[Permission], uri: str,
                                             action: str) -> None:
    authorizer = Authorizer((Role("r", tuple(perms)),))
    assert authorizer.allowed("r", action, uri) == reference(perms, action, uri)
    assert not authorizer.allowed("other", action, uri)
