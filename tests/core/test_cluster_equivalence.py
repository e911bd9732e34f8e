"""A cluster behaves like one router (a differential property test on the pure core).

The same random script of subscriptions, publications (with black/whitelists,
exclude_me, retain, acknowledge), registrations and calls runs once on one
router and once on three routers joined by an in-memory backplane that does
what the Redis backplane does (exact interest per topic, pattern interest per
node, retained events everywhere, registrations and sessions advertised,
calls relayed). Every client must see the same messages, action by action
(ids normalised).
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import CONFIG as BASE
from tests.helpers import ROLES
from wamp_router.config.loader import load_config_text
from wamp_router.core.effects import (
    Advertise,
    Broadcast,
    Effect,
    Forward,
    Interest,
    Relay,
    Send,
    Withdraw,
)
from wamp_router.core.messages import (
    Call,
    Error,
    Event,
    Hello,
    Invocation,
    Message,
    Publish,
    Register,
    Result,
    Subscribe,
    Subscribed,
    Unsubscribe,
    Welcome,
    Yield,
)
from wamp_router.core.router import Router
from wamp_router.core.session import TransportInfo
from wamp_router.core.urimap import UriMap

SINGLE = load_config_text(BASE, "<single>")
CLUSTERED = load_config_text(BASE + '[cluster]\nbackplane = "redis://127.0.0.1"\n', "<node>")
TOPICS = ["a.b.c", "a.b.d", "a.x.c"]
PATTERNS = [("a.b.c", "exact"), ("a.b.d", "exact"), ("a.b", "prefix"), ("a..c", "wildcard")]
PROCS = ["p.one", "p.two"]


class World:
    """N routers (1 = a plain router) and the clients connected to them."""

    def __init__(self, nodes: int, placement: list[int]) -> None:
        config = SINGLE if nodes == 1 else CLUSTERED
        self.routers = [Router(config, random.Random(i)) for i in range(nodes)]
        self.names = [f"n{i}" for i in range(nodes)]
        for router, name in zip(self.routers, self.names, strict=True):
            router.node_id = name
        self.exact: list[set[tuple[str, str]]] = [set() for _ in range(nodes)]
        self.patterns: list[UriMap[bool]] = [UriMap() for _ in range(nodes)]
        self.queue: deque[tuple[int, Effect]] = deque()
        self.now = 1_700_000_000.0
        self.clients: list[tuple[int, int]] = []  # client -> (node, conn)
        self.inbox: list[list[Message]] = []
        self.notes: list[list[Any]] = []  # meta API answers, normalised (see _meta)
        self.session_ids: dict[int, int] = {}  # session id -> client
        for i, node in enumerate(placement):
            conn = i + 1
            self.clients.append((node % nodes, conn))
            self.inbox.append([])
            self.notes.append([])
            router = self.routers[node % nodes]
            router.open(conn, TransportInfo("websocket", f"c{i}", config.listeners[0], "json"))
            self.send(i, Hello("realm1", {"roles": ROLES}))
            welcome = self.inbox[i].pop()
            assert isinstance(welcome, Welcome)
            self.session_ids[welcome.session] = i

    def send(self, client: int, msg: Message) -> None:
        node, conn = self.clients[client]
        self.apply(node, self.routers[node].receive(conn, msg, self.now))
        self.drain()

    def _client(self, node: int, conn: int) -> int:
        return self.clients.index((node, conn))

    def apply(self, node: int, effects: list[Effect]) -> None:
        for e in effects:
            self.queue.append((node, e))

    def drain(self) -> None:
        while self.queue:
            node, e = self.queue.popleft()
            self._one(node, e)

    def _one(self, node: int, e: Effect) -> None:
        router = self.routers[node]
        if isinstance(e, Send):
            if e.conn < 0:
                self.apply(node, router.outbound_remote(e.conn, e.msg))
            else:
                self._deliver(self._client(node, e.conn), e.msg)
        elif isinstance(e, Broadcast):
            for conn in e.conns:
                self._deliver(self._client(node, conn), e.msg)
        else:
            handler = {Interest: self._interest, Forward: self._forward,
                       Advertise: self._advertise, Withdraw: self._withdraw,
                       Relay: self._relay}.get(type(e))
            if handler is not None:
                handler(node, e)

    def _relay(self, node: int, e: Relay) -> None:
        target = self.names.index(e.node)
        self.apply(target, self.routers[target].remote_rpc(
            e.realm, self.names[node], e.payload, self.now))

    def _withdraw(self, node: int, e: Withdraw) -> None:
        """Replies are never held here: the REGISTERED has left."""
        if e.otherwise is not None:
            self._deliver(self._client(node, e.conn), e.otherwise)

    def _advertise(self, node: int, e: Advertise) -> None:
        for other in range(len(self.routers)):
            if other != node:
                self.apply(other, self.routers[other].remote_directory(
                    e.realm, self.names[node], e.op, e.entry, self.now))

    def _interest(self, node: int, e: Interest) -> None:
        if e.match == "exact":
            (self.exact[node].add if e.added else self.exact[node].discard)((e.realm, e.topic))
        elif e.added:
            self.patterns[node].set(e.topic, e.match, True)
        else:
            self.patterns[node].remove(e.topic, e.match)

    def _forward(self, node: int, e: Forward) -> None:
        """What the Redis backplane does with a publication."""
        topic = e.envelope["t"]
        for other in range(len(self.routers)):
            if other == node:
                continue
            kinds = []
            if (e.realm, topic) in self.exact[other] and e.exact:  # (else not published)
                kinds.append("exact")
            if self.patterns[other].all_matches(topic):
                kinds.append("pattern")
            if e.envelope.get("r"):
                kinds.append("retained")
            for kind in kinds:
                self.apply(other, self.routers[other].remote_publication(
                    e.realm, e.envelope, kind))

    auto_answer = True  # callees answer every INVOCATION at once

    def _deliver(self, client: int, msg: Message) -> None:
        if self.auto_answer and isinstance(msg, Invocation):  # who it is, and the args
            self.send(client, Yield(msg.request, {}, [client, *(msg.args or [])]))
            return
        self.inbox[client].append(msg)


def normalise(world: World, client: int, msg: Message, subs: dict[int, str]) -> Any:
    if isinstance(msg, Event):
        publisher = msg.details.get("publisher")
        return ("event", subs.get(msg.subscription), msg.details.get("topic"),
                tuple(msg.args or ()), world.session_ids.get(publisher, publisher),
                bool(msg.details.get("retained")))
    if isinstance(msg, Subscribed):
        return ("subscribed",)
    if isinstance(msg, Result):
        return ("result", msg.request, tuple(msg.args or ()))
    if isinstance(msg, Error):
        return ("error", msg.request_type, msg.request, msg.error)
    return (type(msg).__name__,)


def _act(world: World, subs: list[dict[int, str]], step: Any, request: int) -> None:
    n = len(world.clients)
    kind, who = step[0], step[1] % n
    if kind == "sub":
        topic, match = PATTERNS[step[2]]
        options: dict[str, Any] = {} if match == "exact" else {"match": match}
        if step[3]:
            options["get_retained"] = True
        world.send(who, Subscribe(request, options, topic))
        for msg in world.inbox[who]:
            if isinstance(msg, Subscribed) and msg.request == request:
                subs[who][msg.subscription] = f"{match}:{topic}"
    elif kind == "pub":
        _publish(world, who, step, request)
    elif kind == "reg":
        world.send(who, Register(request, {}, PROCS[step[2]]))
    elif kind == "unsub":
        _unsubscribe(world, subs[who], who, PATTERNS[step[2]], request)
    elif kind == "meta":
        world.notes[who].append(_meta(world, who, step[2], step[3], request))
    else:  # call
        world.send(who, Call(request, {}, PROCS[step[2]], [step[3]]))


def _publish(world: World, who: int, step: Any, request: int) -> None:
    _, _, t, flags, other, payload = step
    other_sid = [s for s, c in world.session_ids.items() if c == other % len(world.clients)][0]
    opts: dict[str, Any] = {"acknowledge": True}
    for bit, key, value in ((1, "exclude_me", False), (2, "retain", True),
                            (4, "exclude", [other_sid]), (8, "eligible", [other_sid]),
                            (16, "disclose_me", True)):
        if flags & bit:
            opts[key] = value
    world.send(who, Publish(request, opts, TOPICS[t], [payload]))


def _unsubscribe(world: World, subs: dict[int, str], who: int, pattern: tuple[str, str],
                 request: int) -> None:
    topic, match = pattern
    for sub_id, name in list(subs.items()):
        if name == f"{match}:{topic}":
            world.send(who, Unsubscribe(request, sub_id))
            del subs[sub_id]


def _ask(world: World, who: int, procedure: str, args: list[Any], request: int) -> Any:
    """A meta API call's result (or error URI), taken out of the client's inbox."""
    world.send(who, Call(request, {}, procedure, args))
    box = world.inbox[who]
    answer = next(m for m in box if isinstance(m, (Result, Error)) and m.request == request)
    box.remove(answer)
    if isinstance(answer, Error):
        return answer.error
    return answer.args[0] if answer.args else None


def _meta(world: World, who: int, what: int, pattern: int, request: int) -> Any:
    """The subscription / registration meta API, with ids and session ids replaced by
    what they stand for (a cluster derives its ids; one router counts them)."""
    clients = world.session_ids.get
    if what == 0:  # a subscription: lookup, then get / count / list_subscribers
        topic, match = PATTERNS[pattern]
        sub = _ask(world, who, "wamp.subscription.lookup", [topic, {"match": match}], request)
        if not isinstance(sub, int):
            return ("lookup", topic, match, sub)
        got = _ask(world, who, "wamp.subscription.get", [sub], request)
        count = _ask(world, who, "wamp.subscription.count_subscribers", [sub], request)
        listed = _ask(world, who, "wamp.subscription.list_subscribers", [sub], request)
        return ("sub", got["uri"], got["match"], count, sorted(clients(s, -1) for s in listed))
    if what == 1:  # match: the subscriptions a publication to a topic reaches
        topic = TOPICS[pattern % len(TOPICS)]
        ids = _ask(world, who, "wamp.subscription.match", [topic], request) or []
        return ("match", topic, sorted(
            (got["uri"], got["match"]) for got in
            (_ask(world, who, "wamp.subscription.get", [i], request) for i in ids)))
    if what == 2:  # list
        lists = _ask(world, who, "wamp.subscription.list", [], request)
        return ("list", sorted(
            (got["uri"], got["match"]) for ids in lists.values() for got in
            (_ask(world, who, "wamp.subscription.get", [i], request) for i in ids)))
    procedure = PROCS[pattern % len(PROCS)]  # a registration
    reg = _ask(world, who, "wamp.registration.lookup", [procedure], request)
    if not isinstance(reg, int):
        return ("reg", procedure, reg)
    callees = _ask(world, who, "wamp.registration.list_callees", [reg], request)
    count = _ask(world, who, "wamp.registration.count_callees", [reg], request)
    return ("reg", procedure, count, sorted(clients(s, -1) for s in callees))


def run_script(nodes: int, placement: list[int], script: list[Any]) -> list[list[Any]]:
    world = World(nodes, placement)
    n = len(placement)
    subs: list[dict[int, str]] = [{} for _ in range(n)]
    transcript: list[list[Any]] = []
    for i, step in enumerate(script):
        _act(world, subs, step, 101 + i)
        world.drain()
        transcript.append([sorted(normalise(world, c, m, subs[c]) for m in world.inbox[c])
                           + world.notes[c] for c in range(n)])
        for box in world.inbox:
            box.clear()
        for notes in world.notes:
            notes.clear()
    return transcript


step = st.one_of(
    st.tuples(st.just("sub"), st.integers(0, 5), st.integers(0, len(PATTERNS) - 1),
              st.booleans()),
    st.tuples(st.just("pub"), st.integers(0, 5), st.integers(0, len(TOPICS) - 1),
              st.integers(0, 31), st.integers(0, 5), st.integers(0, 9)),
    st.tuples(st.just("pub"), st.integers(0, 5), st.integers(0, len(TOPICS) - 1),
              st.integers(0, 31), st.integers(0, 5), st.integers(0, 9)),
    st.tuples(st.just("reg"), st.integers(0, 5), st.integers(0, 1)),
    st.tuples(st.just("call"), st.integers(0, 5), st.integers(0, 1), st.integers(0, 9)),
    st.tuples(st.just("meta"), st.integers(0, 5), st.integers(0, 3),
              st.integers(0, len(PATTERNS) - 1)),
    st.tuples(st.just("unsub"), st.integers(0, 5), st.integers(0, len(PATTERNS) - 1)),
)


@settings(max_examples=120, deadline=None)
@given(placement=st.lists(st.integers(0, 2), min_size=3, max_size=5),
       script=st.lists(step, min_size=4, max_size=30))
def test_three_nodes_behave_like_one_router(placement: list[int], script: list[Any]) -> None:
    assert run_script(3, placement, script) == run_script(1, placement, script)


def test_the_bus_routes_across_nodes() -> None:
    """The harness itself: a publication and a call really cross nodes."""
    script = [("sub", 0, 2, False), ("pub", 1, 0, 0, 0, 7), ("reg", 0, 0), ("call", 1, 0, 3)]
    single = run_script(1, [0, 1], script)
    cluster = run_script(3, [0, 1], script)
    assert cluster == single
    assert cluster[1][0] == [("event", "prefix:a.b", "a.b.c", (7,), None, False)]
    assert cluster[3][1] == [("result", 104, (0, 3))]


def test_subscription_meta_api_is_cluster_wide() -> None:
    """lookup, get, count and list subscribers on any node see every node's
    subscribers, with the same subscription id everywhere, and forget them when
    they unsubscribe."""
    script = [("sub", 0, 0, False), ("sub", 1, 0, False), ("sub", 2, 2, False),
              ("meta", 0, 0, 0), ("meta", 2, 1, 0), ("meta", 1, 2, 0),
              ("unsub", 0, 0), ("meta", 2, 0, 0), ("unsub", 1, 0), ("meta", 2, 0, 0),
              ("reg", 0, 0), ("meta", 1, 3, 0)]
    placement = [0, 1, 2]
    cluster = run_script(3, placement, script)
    assert cluster == run_script(1, placement, script)
    assert cluster[3][0] == [("sub", "a.b.c", "exact", 2, [0, 1])]
    assert cluster[4][2] == [("match", "a.b.c", [("a.b", "prefix"), ("a.b.c", "exact")])]
    assert cluster[7][2] == [("sub", "a.b.c", "exact", 1, [1])]
    assert cluster[9][2] == [("lookup", "a.b.c", "exact", None)]
    assert cluster[11][1] == [("reg", "p.one", 1, [0])]
    world = World(3, placement)
    for i in range(3):
        world.send(i, Subscribe(1, {}, "a.b.c"))
    ids = {m.subscription for box in world.inbox for m in box if isinstance(m, Subscribed)}
    assert len(ids) == 1  # one id for the subscription on every node
