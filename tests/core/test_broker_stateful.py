"""Stateful property of the broker, over the pure core (``Harness``): random
subscribe (exact / prefix / wildcard) / unsubscribe / publish (exclude_me and
eligible / exclude session lists) / leave, checked against a simple model.

Invariants: every eligible subscriber gets exactly one EVENT per matching
subscription per publication and nobody else gets one (never the publisher
when exclude_me); subscription ids are shared per (uri, policy); and the
subscription meta procedures, called as CALLs through the core, agree with
the model.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.helpers import Harness
from wamp_router.core.messages import (
    Call,
    Error,
    Event,
    Goodbye,
    Message,
    Publish,
    Published,
    Result,
    Subscribe,
    Subscribed,
    Unsubscribe,
    Unsubscribed,
)

TOPICS = ["a.b", "a.c", "a.b.c", "a.x.c", "b.b"]
PATTERNS = [
    ("a.b", "exact"), ("a.c", "exact"), ("a.b.c", "exact"),
    ("a.", "prefix"), ("a.b", "prefix"),
    ("a..c", "wildcard"), (".b", "wildcard"),
]
UNKNOWN_SESSION = 4242  # a session id no harness session has (ids are random 53-bit)


def matches(uri: str, policy: str, topic: str) -> bool:
    if policy == "exact":
        return uri == topic
    if policy == "prefix":
        return topic.startswith(uri)
    pattern, parts = uri.split("."), topic.split(".")
    return len(pattern) == len(parts) and all(p in ("", t) for p, t in zip(pattern, parts,
                                                                             strict=True))


@dataclass
class ModelSub:
    id: int
    members: set[int] = field(default_factory=set)  # conns


class BrokerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.h = Harness()
        self.sids: dict[int, int] = {}  # conn -> session id, live sessions only
        self.subs: dict[tuple[str, str], ModelSub] = {}
        self.held: dict[int, dict[int, tuple[str, str]]] = {}  # conn -> sub id -> key
        self.request = 0
        self.publications = 0
        for _ in range(3):
            self._join()

    # -- helpers --------------------------------------------------------------
    def _join(self) -> None:
        conn = self.h.join()
        realm = self.h.router.realms["realm1"]
        [session] = [s for s in realm.sessions.values() if s.conn == conn]
        self.sids[conn] = session.session_id
        self.held[conn] = {}

    def _next(self) -> int:
        self.request += 1
        return self.request

    def _call(self, conn: int, procedure: str, args: list[Any]) -> Message:
        [reply] = self.h.send(conn, Call(self._next(), {}, procedure, args))
        return reply

    def _result(self, conn: int, procedure: str, args: list[Any]) -> Any:
        reply = self._call(conn, procedure, args)
        assert isinstance(reply, Result), (procedure, args, reply)
        assert reply.args is not None and len(reply.args) == 1, reply
        return reply.args[0]

    def _forget(self, conn: int) -> None:
        for sub_id, key in self.held.pop(conn).items():
            sub = self.subs[key]
            assert sub.id == sub_id
            sub.members.discard(conn)
            if not sub.members:
                del self.subs[key]
        del self.sids[conn]

    def _quiet(self) -> None:
        for conn in self.sids:
            assert self.h.take(conn) == []

    # -- rules ----------------------------------------------------------------
    @precondition(lambda self: len(self.sids) < 5)
    @rule()
    def join(self) -> None:
        self._join()

    @precondition(lambda self: bool(self.sids))
    @rule(data=st.data(), pattern=st.sampled_from(PATTERNS))
    def subscribe(self, data: st.DataObject, pattern: tuple[str, str]) -> None:
        conn = data.draw(st.sampled_from(sorted(self.sids)))
        uri, policy = pattern
        options = {} if policy == "exact" and data.draw(st.booleans()) else {"match": policy}
        request = self._next()
        [reply] = self.h.send(conn, Subscribe(request, options, uri))
        assert isinstance(reply, Subscribed) and reply.request == request, reply
        sub = self.subs.get(pattern)
        if sub is None:
            assert reply.subscription not in {s.id for s in self.subs.values()}
            sub = self.subs[pattern] = ModelSub(reply.subscription)
        assert reply.subscription == sub.id, (pattern, reply, sub)
        sub.members.add(conn)
        self.held[conn][sub.id] = pattern
        self._quiet()

    @precondition(lambda self: any(self.held.values()))
    @rule(data=st.data())
    def unsubscribe(self, data: st.DataObject) -> None:
        conn = data.draw(st.sampled_from(sorted(c for c, held in self.held.items() if held)))
        sub_id = data.draw(st.sampled_from(sorted(self.held[conn])))
        request = self._next()
        assert self.h.send(conn, Unsubscribe(request, sub_id)) == [Unsubscribed(request)]
        key = self.held[conn].pop(sub_id)
        self.subs[key].members.discard(conn)
        if not self.subs[key].members:
            del self.subs[key]
        self._quiet()

    @precondition(lambda self: bool(self.sids))
    @rule(data=st.data())
    def unsubscribe_not_held(self, data: st.DataObject) -> None:
        conn = data.draw(st.sampled_from(sorted(self.sids)))
        others = sorted({s.id for s in self.subs.values()} - set(self.held[conn]))
        sub_id = data.draw(st.sampled_from([*others, 10**9]))
        request = self._next()
        [reply] = self.h.send(conn, Unsubscribe(request, sub_id))
        assert isinstance(reply, Error) and reply.request == request, reply
        assert reply.error == "wamp.error.no_such_subscription"

    def _draw_list(self, data: st.DataObject) -> list[int] | None:
        pool = sorted([*self.sids.values(), UNKNOWN_SESSION])
        return data.draw(st.none() | st.lists(st.sampled_from(pool), unique=True))

    def _expected(self, publisher: int, topic: str, exclude_me: bool,
                  eligible: list[int] | None, exclude: list[int] | None) -> Counter[Any]:
        expected: Counter[Any] = Counter()
        for (uri, policy), sub in self.subs.items():
            if not matches(uri, policy, topic):
                continue
            for conn in sub.members:
                sid = self.sids[conn]
                if (conn == publisher and exclude_me) or (
                        eligible is not None and sid not in eligible) or (
                        exclude is not None and sid in exclude):
                    continue
                expected[(conn, sub.id, policy)] += 1
        return expected

    @precondition(lambda self: bool(self.sids))
    @rule(data=st.data(), topic=st.sampled_from(TOPICS), exclude_me=st.booleans(),
          acknowledge=st.booleans())
    def publish(self, data: st.DataObject, topic: str, exclude_me: bool,
                acknowledge: bool) -> None:
        publisher = data.draw(st.sampled_from(sorted(self.sids)))
        eligible, exclude = self._draw_list(data), self._draw_list(data)
        options: dict[str, Any] = {}
        if not exclude_me or data.draw(st.booleans()):
            options["exclude_me"] = exclude_me
        if eligible is not None:
            options["eligible"] = eligible
        if exclude is not None:
            options["exclude"] = exclude
        if acknowledge:
            options["acknowledge"] = True
        self.publications += 1
        marker = self.publications
        request = self._next()
        self.h.apply(self.h.router.receive(publisher, Publish(request, options, topic, [marker]),
                                           self.h.now))
        got: Counter[Any] = Counter()
        publication_ids = set()
        policies = {sub.id: policy for (_, policy), sub in self.subs.items()}
        for conn in self.sids:
            for msg in self.h.take(conn):
                if isinstance(msg, Published):
                    assert conn == publisher and acknowledge and msg.request == request, msg
                    publication_ids.add(msg.publication)
                    continue
                assert isinstance(msg, Event) and msg.args == [marker], (conn, msg)
                policy = policies[msg.subscription]
                assert msg.details == ({} if policy == "exact" else {"topic": topic}), msg
                publication_ids.add(msg.publication)
                got[(conn, msg.subscription, policy)] += 1
        assert len(publication_ids) <= 1, publication_ids  # one publication id for all
        assert got == self._expected(publisher, topic, exclude_me, eligible, exclude), (
            topic, options, self.subs)

    @precondition(lambda self: bool(self.sids))
    @rule(data=st.data(), goodbye=st.booleans())
    def leave(self, data: st.DataObject, goodbye: bool) -> None:
        conn = data.draw(st.sampled_from(sorted(self.sids)))
        if goodbye:
            [reply] = self.h.send(conn, Goodbye({}, "wamp.close.close_realm"))
            assert isinstance(reply, Goodbye) and reply.reason == "wamp.close.goodbye_and_out"
        self.h.lose(conn)
        self._forget(conn)
        self._quiet()

    # -- invariants -----------------------------------------------------------
    @invariant()
    def meta_api_agrees(self) -> None:
        if not self.sids:
            return
        caller = min(self.sids)
        lists = self._result(caller, "wamp.subscription.list", [])
        assert {p: sorted(ids) for p, ids in lists.items()} == {
            p: sorted(s.id for (_, pol), s in self.subs.items() if pol == p)
            for p in ("exact", "prefix", "wildcard")}
        for (uri, policy), sub in self.subs.items():
            assert self._result(caller, "wamp.subscription.lookup",
                                [uri, {"match": policy}]) == sub.id
            assert self._result(caller, "wamp.subscription.count_subscribers",
                                [sub.id]) == len(sub.members)
            assert sorted(self._result(caller, "wamp.subscription.list_subscribers",
                                       [sub.id])) == sorted(self.sids[c] for c in sub.members)
            details = self._result(caller, "wamp.subscription.get", [sub.id])
            assert (details["id"], details["uri"], details["match"]) == (sub.id, uri, policy)
        for topic in TOPICS:
            found = self._result(caller, "wamp.subscription.match", [topic])
            want = sorted(s.id for (u, p), s in self.subs.items() if matches(u, p, topic))
            assert (sorted(found) if found is not None else []) == want, (topic, found)
            assert found is None or found, "an empty match must be null"
        self._quiet()

    @invariant()
    def deleted_subscriptions_are_gone(self) -> None:
        if not self.sids:
            return
        caller = min(self.sids)
        live = {s.id for s in self.subs.values()}
        for sub_id in range(1, max(live, default=0) + 2):
            if sub_id in live:
                continue
            reply = self._call(caller, "wamp.subscription.count_subscribers", [sub_id])
            assert isinstance(reply, Error) and reply.error == "wamp.error.no_such_subscription"

    def teardown(self) -> None:
        for conn in list(self.sids):
            self.h.lose(conn)
            self._forget(conn)
        broker = self.h.router.realms["realm1"].broker
        assert broker.subscriptions() == []


TestBroker = BrokerMachine.TestCase
TestBroker.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
