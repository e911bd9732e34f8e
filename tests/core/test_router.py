"""The pure core driven directly: handshake, broker, dealer, authorization."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from tests.helpers import ROLES, Harness
from wamp_router.core.messages import (
    Abort,
    Authenticate,
    Call,
    Challenge,
    Error,
    Event,
    Goodbye,
    Hello,
    Invocation,
    Publish,
    Published,
    Register,
    Registered,
    Result,
    Subscribe,
    Subscribed,
    Unregister,
    Unregistered,
    Unsubscribe,
    Unsubscribed,
    Welcome,
    Yield,
)


@pytest.fixture
def h() -> Harness:
    return Harness()


def test_welcome_announces_roles_and_identity(h: Harness) -> None:
    conn = h.connect()
    [welcome] = h.send(conn, Hello("realm1", {"roles": ROLES}))
    assert isinstance(welcome, Welcome)
    assert 1 <= welcome.session <= 2**53
    d = welcome.details
    assert d["authrole"] == "anonymous" and d["authmethod"] == "anonymous"
    assert d["realm"] == "realm1" and d["authprovider"] == "static"
    assert set(d["roles"]) == {"broker", "dealer"}
    # only implemented features are announced
    assert set(d["roles"]["broker"]["features"]) == {
        "publisher_exclusion", "subscriber_blackwhite_listing", "publisher_identification",
        "pattern_based_subscription", "event_retention", "session_meta_api",
        "subscription_meta_api"}
    assert set(d["roles"]["dealer"]["features"]) == {
        "progressive_call_results", "progressive_call_invocations", "call_timeout",
        "call_canceling", "caller_identification", "pattern_based_registration",
        "shared_registration", "call_reroute", "registration_meta_api", "session_meta_api",
        "testament_meta_api", "registration_revocation"}


def test_session_ids_are_distinct(h: Harness) -> None:
    ids = set()
    for _ in range(200):
        conn = h.connect()
        [welcome] = h.send(conn, Hello("realm1", {"roles": ROLES}))
        assert isinstance(welcome, Welcome)
        ids.add(welcome.session)
    assert len(ids) == 200


def test_pubsub_fanout_excludes_publisher(h: Harness) -> None:
    pub, s1, s2 = h.join(), h.join(), h.join()
    [sub1] = h.send(s1, Subscribe(1, {}, "com.t"))
    [sub2] = h.send(s2, Subscribe(1, {}, "com.t"))
    assert isinstance(sub1, Subscribed) and isinstance(sub2, Subscribed)
    assert sub1.subscription == sub2.subscription  # one subscription per topic
    h.send(pub, Subscribe(1, {}, "com.t"))
    h.take(pub)
    assert h.send(pub, Publish(2, {}, "com.t", [1], {"a": 2})) == []
    for s in (s1, s2):
        [ev] = h.take(s)
        assert isinstance(ev, Event)
        assert (ev.subscription, ev.args, ev.kwargs, ev.details) == (
            sub1.subscription, [1], {"a": 2}, {})
    own, ack = h.send(pub, Publish(3, {"acknowledge": True, "exclude_me": False}, "com.t"))
    assert isinstance(own, Event) and isinstance(ack, Published)
    assert own.publication == ack.publication


def test_unsubscribe_and_errors(h: Harness) -> None:
    s = h.join()
    [sub] = h.send(s, Subscribe(1, {}, "com.t"))
    assert isinstance(sub, Subscribed)
    [err] = h.send(s, Unsubscribe(2, 12345))
    assert isinstance(err, Error) and err.error == "wamp.error.no_such_subscription"
    assert err.request_type == Unsubscribe.TYPE and err.request == 2
    [ok] = h.send(s, Unsubscribe(3, sub.subscription))
    assert isinstance(ok, Unsubscribed) and ok.request == 3
    [err] = h.send(s, Unsubscribe(4, sub.subscription))
    assert isinstance(err, Error)


def test_rpc_round_trip_and_callee_error(h: Harness) -> None:
    callee, caller = h.join(), h.join()
    [reg] = h.send(callee, Register(1, {}, "com.add"))
    assert isinstance(reg, Registered)
    h.send(caller, Call(7, {}, "com.add", [1, 2], {"k": 1}))
    [inv] = h.take(callee)
    assert isinstance(inv, Invocation) and inv.registration == reg.registration
    assert (inv.args, inv.kwargs) == ([1, 2], {"k": 1})
    h.send(callee, Yield(inv.request, {}, [3]))
    [res] = h.take(caller)
    assert isinstance(res, Result) and (res.request, res.args) == (7, [3])
    h.send(caller, Call(8, {}, "com.add"))
    [inv2] = h.take(callee)
    assert inv2.request == inv.request + 1  # session scope ids
    h.send(callee, Error(Invocation.TYPE, inv2.request, {}, "com.err", ["x"], {"y": 1}))
    [err] = h.take(caller)
    assert isinstance(err, Error)
    assert (err.request_type, err.request, err.error, err.args, err.kwargs) == (
        Call.TYPE, 8, "com.err", ["x"], {"y": 1})
    # a second YIELD for the same invocation is ignored
    assert h.send(callee, Yield(inv.request, {}, [3])) == []
    assert h.take(caller) == []


def test_register_conflicts_and_unregister(h: Harness) -> None:
    a, b = h.join(), h.join()
    [reg] = h.send(a, Register(1, {}, "com.p"))
    [err] = h.send(b, Register(1, {}, "com.p"))
    assert isinstance(err, Error) and err.error == "wamp.error.procedure_already_exists"
    [err] = h.send(b, Unregister(2, reg.registration))  # not b's registration
    assert isinstance(err, Error) and err.error == "wamp.error.no_such_registration"
    [ok] = h.send(a, Unregister(2, reg.registration))
    assert isinstance(ok, Unregistered)
    [reg2] = h.send(b, Register(3, {}, "com.p"))
    assert isinstance(reg2, Registered)


def test_callee_loss_cancels_calls_and_removes_registrations(h: Harness) -> None:
    callee, caller = h.join(), h.join()
    h.send(callee, Register(1, {}, "com.p"))
    h.send(caller, Call(1, {}, "com.p"))
    h.send(caller, Call(2, {}, "com.p"))
    h.lose(callee)
    errs = h.take(caller)
    assert [(e.request, e.error) for e in errs if isinstance(e, Error)] == [
        (1, "wamp.error.canceled"), (2, "wamp.error.canceled")]
    [err] = h.send(caller, Call(3, {}, "com.p"))
    assert isinstance(err, Error) and err.error == "wamp.error.no_such_procedure"
    assert len(h.router.realms["realm1"].dealer.calls) == 0


def test_caller_loss_drops_late_result(h: Harness) -> None:
    callee, caller = h.join(), h.join()
    h.send(callee, Register(1, {}, "com.p"))
    h.send(caller, Call(1, {}, "com.p"))
    [inv] = h.take(callee)
    h.lose(caller)
    assert h.send(callee, Yield(inv.request, {}, [1])) == []
    assert len(h.router.realms["realm1"].dealer.calls) == 0


def test_goodbye_from_peer(h: Harness) -> None:
    s = h.join()
    h.send(s, Register(1, {}, "com.p"))
    [bye] = h.send(s, Goodbye({}, "wamp.close.close_realm"))
    assert isinstance(bye, Goodbye) and bye.reason == "wamp.close.goodbye_and_out"
    other = h.join()
    [err] = h.send(other, Call(1, {}, "com.p"))
    assert err.error == "wamp.error.no_such_procedure"
    [welcome] = h.send(s, Hello("realm1", {"roles": ROLES}))
    assert isinstance(welcome, Welcome)


def test_shutdown_says_goodbye(h: Harness) -> None:
    a, b = h.join(), h.join()
    h.apply(h.router.shutdown())
    for c in (a, b):
        [bye] = h.take(c)
        assert isinstance(bye, Goodbye) and bye.reason == "wamp.close.system_shutdown"
    assert h.send(a, Goodbye({}, "wamp.close.goodbye_and_out")) == []
    assert a in h.closed


def test_authorization_gate(h: Harness) -> None:
    conn = h.connect()
    [ch] = h.send(conn, Hello("realm2", {"roles": ROLES, "authmethods": ["ticket"],
                                         "authid": "alice"}))
    assert isinstance(ch, Challenge) and ch.method == "ticket"
    [welcome] = h.send(conn, Authenticate("secret123", {}))
    assert isinstance(welcome, Welcome) and welcome.details["authrole"] == "user"
    for msg in (Call(1, {}, "org.x"), Register(1, {}, "org.x"), Subscribe(1, {}, "org.x"),
                Publish(1, {"acknowledge": True}, "org.x")):
        [err] = h.send(conn, msg)
        assert isinstance(err, Error) and err.error == "wamp.error.not_authorized"
        assert err.request_type == msg.TYPE
    [ok] = h.send(conn, Subscribe(2, {}, "com.example.x"))
    assert isinstance(ok, Subscribed)
    # publish without acknowledge that is denied: the spec says ERROR anyway
    [err] = h.send(conn, Publish(3, {}, "org.x"))
    assert isinstance(err, Error)


def _cra_sign(key: bytes, challenge: str) -> str:
    return base64.b64encode(hmac.new(key, challenge.encode(), hashlib.sha256).digest()).decode()


def test_wampcra_unsalted_and_salted(h: Harness) -> None:
    conn = h.connect()
    [ch] = h.send(conn, Hello("realm2", {"roles": ROLES, "authmethods": ["wampcra"],
                                         "authid": "bob"}))
    assert isinstance(ch, Challenge) and "salt" not in ch.extra
    challenge = ch.extra["challenge"]
    fields = json.loads(challenge)
    assert fields["authid"] == "bob" and fields["authmethod"] == "wampcra"
    [welcome] = h.send(conn, Authenticate(_cra_sign(b"bobsecret", challenge), {}))
    assert isinstance(welcome, Welcome) and welcome.session == fields["session"]

    conn = h.connect()
    [ch] = h.send(conn, Hello("realm2", {"roles": ROLES, "authmethods": ["wampcra"],
                                         "authid": "carol"}))
    assert ch.extra["salt"] == "pepper" and ch.extra["iterations"] == 100
    key = base64.b64encode(hashlib.pbkdf2_hmac("sha256", b"carolsecret", b"pepper", 100, 32))
    [welcome] = h.send(conn, Authenticate(_cra_sign(key, ch.extra["challenge"]), {}))
    assert isinstance(welcome, Welcome)

    conn = h.connect()
    [ch] = h.send(conn, Hello("realm2", {"roles": ROLES, "authmethods": ["wampcra"],
                                         "authid": "bob"}))
    [abort] = h.send(conn, Authenticate(_cra_sign(b"wrong", ch.extra["challenge"]), {}))
    assert isinstance(abort, Abort) and abort.reason == "wamp.error.authentication_failed"
    assert conn in h.closed


def test_unknown_principal_is_challenged_like_a_known_one(h: Harness) -> None:
    conn = h.connect()
    [ch] = h.send(conn, Hello("realm2", {"roles": ROLES, "authmethods": ["wampcra"],
                                         "authid": "nobody"}))
    assert isinstance(ch, Challenge) and "challenge" in ch.extra
    [abort] = h.send(conn, Authenticate("x", {}))
    assert isinstance(abort, Abort) and abort.reason == "wamp.error.authentication_failed"


def test_auth_method_preference_follows_client_order(h: Harness) -> None:
    conn = h.connect()
    [ch] = h.send(conn, Hello("realm2", {"roles": ROLES, "authmethods": ["wampcra", "ticket"],
                                         "authid": "bob"}))
    assert isinstance(ch, Challenge) and ch.method == "wampcra"


def test_violation_aborts_and_cleans_up(h: Harness) -> None:
    callee, caller = h.join(), h.join()
    h.send(callee, Register(1, {}, "com.p"))
    h.send(caller, Call(1, {}, "com.p"))
    h.take(callee)
    [abort] = h.send(callee, Hello("realm1", {"roles": ROLES}))
    assert isinstance(abort, Abort) and abort.reason == "wamp.error.protocol_violation"
    assert callee in h.closed
    [err] = h.take(caller)
    assert isinstance(err, Error) and err.error == "wamp.error.canceled"


def test_pattern_subscription_does_not_leak_denied_topics() -> None:
    from wamp_router.config.loader import load_config_text

    config = load_config_text("""
[[listeners]]
transport = "websocket"
endpoint = "127.0.0.1:0"
[[realms]]
name = "realm1"
[[realms.roles]]
name = "anonymous"
[[realms.roles.permissions]]
uri = "com."
match = "prefix"
allow = ["publish", "subscribe"]
[[realms.roles.permissions]]
uri = "com.secret."
match = "prefix"
allow = ["publish"]
""", "<test>")
    h = Harness(config)
    pub, sub = h.join(), h.join()
    [ok] = h.send(sub, Subscribe(1, {"match": "prefix"}, "com."))
    assert isinstance(ok, Subscribed)
    h.send(pub, Publish(1, {"retain": True}, "com.secret.x", ["hidden"]))
    h.send(pub, Publish(2, {}, "com.public.x", ["visible"]))
    assert [m.args for m in h.take(sub)] == [["visible"]]
    [again, *retained] = h.send(sub, Subscribe(3, {"match": "prefix", "get_retained": True},
                                               "com."))
    assert retained == []
