"""Advanced Profile RPC features on the pure core."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import ROLES, Harness
from wamp_router.core.messages import (
    Call,
    Cancel,
    Error,
    Hello,
    Interrupt,
    Invocation,
    Message,
    Register,
    Registered,
    Result,
    Subscribe,
    Unregister,
    Welcome,
    Yield,
)

CANCELING = {**ROLES, "callee": {"features": {"call_canceling": True,
                                              "progressive_call_invocations": True}},
             "caller": {"features": {"progressive_call_invocations": True}}}


@pytest.fixture
def h() -> Harness:
    return Harness()


def join(h: Harness, roles: dict[str, Any] | None = None) -> int:
    conn = h.connect()
    [welcome] = h.send(conn, Hello("realm1", {"roles": roles or ROLES}))
    assert isinstance(welcome, Welcome)
    return conn


def only(msgs: list[Message], cls: type) -> Any:
    assert len(msgs) == 1 and isinstance(msgs[0], cls), msgs
    return msgs[0]


def calls_empty(h: Harness) -> None:
    assert h.router.realms["realm1"].dealer.calls.index_sizes() == (0, 0, 0, 0)


def test_progressive_results_only_to_callers_that_asked(h: Harness) -> None:
    callee, asking, plain = join(h), join(h), join(h)
    h.send(callee, Register(1, {}, "com.p"))
    h.send(asking, Call(1, {"receive_progress": True}, "com.p"))
    inv = only(h.take(callee), Invocation)
    assert inv.details == {"receive_progress": True}
    h.send(callee, Yield(inv.request, {"progress": True}, [1]))
    h.send(callee, Yield(inv.request, {"progress": True}, [2]))
    h.send(callee, Yield(inv.request, {}, [3]))
    results = h.take(asking)
    assert [(r.details, r.args) for r in results] == [
        ({"progress": True}, [1]), ({"progress": True}, [2]), ({}, [3])]
    h.send(plain, Call(1, {}, "com.p"))
    inv = only(h.take(callee), Invocation)
    assert inv.details == {}
    h.send(callee, Yield(inv.request, {"progress": True}, [1]))  # not asked for: dropped
    h.send(callee, Yield(inv.request, {}, [9]))
    assert only(h.take(plain), Result).args == [9]
    calls_empty(h)


def test_progressive_call_invocations(h: Harness) -> None:
    callee, caller = join(h, CANCELING), join(h, CANCELING)
    h.send(callee, Register(1, {}, "com.upload"))
    h.send(caller, Call(5, {"progress": True}, "com.upload", ["a"]))
    first = only(h.take(callee), Invocation)
    assert first.details == {"progress": True} and first.args == ["a"]
    h.send(caller, Call(5, {"progress": True}, "com.upload", ["b"]))
    h.send(caller, Call(5, {}, "com.upload", ["c"]))
    rest = h.take(callee)
    assert [(m.request, m.details, m.args) for m in rest] == [
        (first.request, {"progress": True}, ["b"]), (first.request, {}, ["c"])]
    h.send(callee, Yield(first.request, {}, ["abc"]))
    assert only(h.take(caller), Result).args == ["abc"]
    # a late chunk of the completed call is discarded, no answer
    assert h.send(caller, Call(5, {"progress": True}, "com.upload", ["d"])) == []
    assert h.take(callee) == []
    calls_empty(h)


def test_progressive_invocation_needs_callee_support(h: Harness) -> None:
    callee, caller = join(h), join(h, CANCELING)
    h.send(callee, Register(1, {}, "com.upload"))
    err = only(h.send(caller, Call(5, {"progress": True}, "com.upload")), Error)
    assert err.error == "wamp.error.feature_not_supported"
    plain = join(h)
    [abort] = h.send(plain, Call(6, {"progress": True}, "com.upload"))
    assert abort.reason == "wamp.error.protocol_violation"  # type: ignore[attr-defined]
    calls_empty(h)


@pytest.mark.parametrize("supports", [True, False])
def test_timeout_is_in_milliseconds(h: Harness, supports: bool) -> None:
    callee = join(h, CANCELING if supports else ROLES)
    caller = join(h)
    h.send(callee, Register(1, {}, "com.slow"))
    h.send(caller, Call(3, {"timeout": 250}, "com.slow"))
    inv = only(h.take(callee), Invocation)
    assert "timeout" not in inv.details  # the dealer enforces it
    assert h.timers == [h.now + 0.25]
    h.advance(0.2)
    assert h.take(caller) == []
    h.advance(0.1)
    err = only(h.take(caller), Error)
    assert (err.request, err.error) == (3, "wamp.error.timeout")
    interrupts = h.take(callee)
    if supports:
        assert only(interrupts, Interrupt).options["mode"] == "killnowait"
    else:
        assert interrupts == []
    assert h.send(callee, Yield(inv.request, {}, [1])) == []  # late answer dropped
    assert h.take(caller) == []
    calls_empty(h)


def test_forward_timeout_hands_it_to_the_callee(h: Harness) -> None:
    callee, caller = join(h, CANCELING), join(h)
    h.send(callee, Register(1, {"forward_timeout": True}, "com.slow"))
    h.send(caller, Call(3, {"timeout": 250}, "com.slow"))
    assert only(h.take(callee), Invocation).details == {"timeout": 250}
    assert h.timers == []


@pytest.mark.parametrize("mode", ["skip", "kill", "killnowait"])
def test_cancel_modes(h: Harness, mode: str) -> None:
    callee, caller = join(h, CANCELING), join(h)
    h.send(callee, Register(1, {}, "com.slow"))
    h.send(caller, Call(3, {}, "com.slow"))
    inv = only(h.take(callee), Invocation)
    to_caller = h.send(caller, Cancel(3, {"mode": mode}))
    to_callee = h.take(callee)
    if mode == "skip":
        assert to_callee == []
        assert only(to_caller, Error).error == "wamp.error.canceled"
    elif mode == "killnowait":
        assert only(to_callee, Interrupt).options["mode"] == "killnowait"
        assert only(to_caller, Error).error == "wamp.error.canceled"
    else:
        assert only(to_callee, Interrupt).options["mode"] == "kill"
        assert to_caller == []  # waits for the callee
        h.send(callee, Error(Invocation.TYPE, inv.request, {}, "wamp.error.canceled"))
        assert only(h.take(caller), Error).error == "wamp.error.canceled"
    h.send(callee, Yield(inv.request, {}, [1]))
    assert h.take(caller) == []
    calls_empty(h)


def test_cancel_without_callee_support_is_skip(h: Harness) -> None:
    callee, caller = join(h), join(h)
    h.send(callee, Register(1, {}, "com.slow"))
    h.send(caller, Call(3, {}, "com.slow"))
    h.take(callee)
    to_caller = h.send(caller, Cancel(3, {"mode": "kill"}))
    assert h.take(callee) == []
    assert only(to_caller, Error).error == "wamp.error.canceled"
    calls_empty(h)


def test_caller_disclosure(h: Harness) -> None:
    callee, caller = join(h), join(h)
    h.send(callee, Register(1, {}, "com.p"))
    h.send(caller, Call(3, {"disclose_me": True}, "com.p"))
    details = only(h.take(callee), Invocation).details
    session = h.router.session(caller)
    assert session is not None
    assert details == {"caller": session.session_id, "caller_authid": session.authid,
                       "caller_authrole": "anonymous"}


def test_pattern_registrations_precedence(h: Harness) -> None:
    c_exact, c_prefix, c_long, c_wild = join(h), join(h), join(h), join(h)
    caller = join(h)
    h.send(c_exact, Register(1, {}, "com.a.b.c"))
    h.send(c_prefix, Register(1, {"match": "prefix"}, "com.a"))
    h.send(c_long, Register(1, {"match": "prefix"}, "com.a.b"))
    h.send(c_wild, Register(1, {"match": "wildcard"}, "com..b.x"))
    for uri, callee, details in [
        ("com.a.b.c", c_exact, {}),
        ("com.a.b.d", c_long, {"procedure": "com.a.b.d"}),
        ("com.a.x", c_prefix, {"procedure": "com.a.x"}),
        ("com.z.b.x", c_wild, {"procedure": "com.z.b.x"}),
    ]:
        h.send(caller, Call(9, {}, uri))
        inv = only(h.take(callee), Invocation)
        assert inv.details == details, uri
        h.send(callee, Yield(inv.request, {}))
        h.take(caller)


@pytest.mark.parametrize("policy,expected", [
    ("roundrobin", [0, 1, 2, 0, 1, 2]),
    ("first", [0, 0, 0, 0, 0, 0]),
    ("last", [2, 2, 2, 2, 2, 2]),
])
def test_shared_registration_policies(h: Harness, policy: str, expected: list[int]) -> None:
    callees = [join(h) for _ in range(3)]
    caller = join(h)
    regs = [only(h.send(c, Register(1, {"invoke": policy}, "com.p")), Registered)
            for c in callees]
    assert len({r.registration for r in regs}) == 1
    got = []
    for i in range(6):
        h.send(caller, Call(10 + i, {}, "com.p"))
        for index, c in enumerate(callees):
            for m in h.take(c):
                got.append(index)
                h.send(c, Yield(m.request, {}))
    assert got == expected


def test_random_policy_uses_every_callee(h: Harness) -> None:
    callees = [join(h) for _ in range(3)]
    caller = join(h)
    for c in callees:
        h.send(c, Register(1, {"invoke": "random"}, "com.p"))
    seen = set()
    for i in range(60):
        h.send(caller, Call(10 + i, {}, "com.p"))
        for index, c in enumerate(callees):
            for m in h.take(c):
                seen.add(index)
                h.send(c, Yield(m.request, {}))
    assert seen == {0, 1, 2}


def test_policy_mismatch_and_single_conflict(h: Harness) -> None:
    a, b, c = join(h), join(h), join(h)
    h.send(a, Register(1, {"invoke": "roundrobin"}, "com.p"))
    err = only(h.send(b, Register(1, {"invoke": "random"}, "com.p")), Error)
    assert err.error == "wamp.error.procedure_already_exists"
    err = only(h.send(c, Register(1, {}, "com.p")), Error)
    assert err.error == "wamp.error.procedure_already_exists"
    err = only(h.send(c, Register(2, {"invoke": "bogus"}, "com.q")), Error)
    assert err.error == "wamp.error.invalid_argument"


def test_concurrency_limits(h: Harness) -> None:
    a, b, caller = join(h), join(h), join(h)
    h.send(a, Register(1, {"invoke": "roundrobin", "concurrency": 1}, "com.p"))
    h.send(b, Register(1, {"invoke": "roundrobin", "concurrency": 1}, "com.p"))
    h.send(caller, Call(1, {}, "com.p"))
    h.send(caller, Call(2, {}, "com.p"))
    inv_a, inv_b = only(h.take(a), Invocation), only(h.take(b), Invocation)
    err = only(h.send(caller, Call(3, {}, "com.p")), Error)
    assert err.error == "wamp.error.no_available_callee"
    h.send(a, Yield(inv_a.request, {}))
    h.take(caller)
    h.send(caller, Call(4, {}, "com.p"))
    assert only(h.take(a), Invocation)  # a is free again
    h.send(b, Yield(inv_b.request, {}))


def test_rerouting_on_unavailable(h: Harness) -> None:
    a, b, caller = join(h), join(h), join(h)
    h.send(a, Register(1, {"invoke": "first"}, "com.p"))
    h.send(b, Register(1, {"invoke": "first"}, "com.p"))
    h.send(caller, Call(1, {}, "com.p", [7]))
    inv = only(h.take(a), Invocation)
    h.send(a, Error(Invocation.TYPE, inv.request, {}, "wamp.error.unavailable"))
    inv_b = only(h.take(b), Invocation)
    assert inv_b.args == [7]
    h.send(b, Error(Invocation.TYPE, inv_b.request, {}, "wamp.error.unavailable"))
    err = only(h.take(caller), Error)
    assert err.error == "wamp.error.no_available_callee"
    calls_empty(h)


def test_single_registration_unavailable_is_no_available_callee(h: Harness) -> None:
    a, caller = join(h), join(h)
    h.send(a, Register(1, {}, "com.p"))
    h.send(caller, Call(1, {}, "com.p"))
    inv = only(h.take(a), Invocation)
    h.send(a, Error(Invocation.TYPE, inv.request, {}, "wamp.error.unavailable"))
    assert only(h.take(caller), Error).error == "wamp.error.no_available_callee"


def test_caller_leaving_interrupts_callee_that_cancels(h: Harness) -> None:
    callee, caller = join(h, CANCELING), join(h)
    h.send(callee, Register(1, {}, "com.p"))
    h.send(caller, Call(1, {"receive_progress": True}, "com.p"))
    h.take(callee)
    h.lose(caller)
    assert only(h.take(callee), Interrupt).options["mode"] == "killnowait"
    calls_empty(h)


def call_meta(h: Harness, conn: int, procedure: str, *args: Any) -> Any:
    res = h.send(conn, Call(99, {}, procedure, list(args)))
    return only(res, Result).args


def test_registration_meta_api_and_events(h: Harness) -> None:
    watcher, callee = join(h), join(h)
    for topic in ("on_create", "on_register", "on_unregister", "on_delete"):
        h.send(watcher, Subscribe(1, {}, f"wamp.registration.{topic}"))
    reg = only(h.send(callee, Register(1, {"match": "prefix"}, "com.x")), Registered)
    events = h.take(watcher)
    session = h.router.session(callee)
    assert session is not None
    sid = session.session_id
    assert events[0].args[0] == sid and events[0].args[1]["uri"] == "com.x"  # on_create
    assert events[0].args[1]["match"] == "prefix" and events[0].args[1]["invoke"] == "single"
    assert events[1].args == [sid, reg.registration]  # on_register
    assert call_meta(h, watcher, "wamp.registration.list") == [
        {"exact": [], "prefix": [reg.registration], "wildcard": []}]
    assert call_meta(h, watcher, "wamp.registration.lookup", "com.x") == [None]
    assert call_meta(h, watcher, "wamp.registration.lookup", "com.x",
                     {"match": "prefix"}) == [reg.registration]
    assert call_meta(h, watcher, "wamp.registration.match", "com.x.y") == [reg.registration]
    assert call_meta(h, watcher, "wamp.registration.get", reg.registration)[0]["uri"] == "com.x"
    assert call_meta(h, watcher, "wamp.registration.list_callees", reg.registration) == [[sid]]
    assert call_meta(h, watcher, "wamp.registration.count_callees", reg.registration) == [1]
    err = only(h.send(watcher, Call(5, {}, "wamp.registration.get", [424242])), Error)
    assert err.error == "wamp.error.no_such_registration"
    h.send(callee, Unregister(2, reg.registration))
    events = h.take(watcher)
    assert [e.args for e in events] == [[sid, reg.registration], [sid, reg.registration]]
