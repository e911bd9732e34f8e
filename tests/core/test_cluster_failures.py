"""Cluster edge cases on the pure core (routers joined by the in-memory backplane
of test_cluster_equivalence): a node declared dead while alive, a chunk of a
progressive call arriving after the call ended, two nodes taking a "single"
registration at once, a relay that cannot be sent, a session id drawn twice."""

from __future__ import annotations

from wamp_router.core.effects import Relay, Send
from wamp_router.core.messages import (
    Call,
    Error,
    Event,
    Goodbye,
    Invocation,
    Register,
    Registered,
    Result,
    Subscribe,
    Unregistered,
    Yield,
)

from .test_cluster_equivalence import World

CALLER_FEATURES = {"progressive_call_invocations": True}


def test_a_fenced_node_answers_its_callers_and_closes_its_sessions() -> None:
    w = World(2, [0, 1])  # callee on n0, caller on n1
    w.auto_answer = False
    w.send(0, Register(1, {}, "p.one"))
    w.send(1, Call(2, {}, "p.one", [1]))
    [inv] = [m for m in w.inbox[0] if isinstance(m, Invocation)]
    # n0 declares n1 dead (a long pause); n1 notices and fences itself
    w.apply(0, w.routers[0].node_gone("n1", dead=True))
    w.apply(1, w.routers[1].fence())
    w.drain()
    answers = [m for m in w.inbox[1] if isinstance(m, Error | Result)]
    assert len(answers) == 1 and isinstance(answers[0], Error)  # not left hanging
    assert any(isinstance(m, Goodbye) for m in w.inbox[1])
    w.send(0, Yield(inv.request, {}, ["late"]))  # the late answer goes nowhere
    assert len([m for m in w.inbox[1] if isinstance(m, Error | Result)]) == 1


def test_a_chunk_after_the_end_of_a_progressive_call_is_discarded() -> None:
    w = World(2, [0, 1])
    w.auto_answer = False
    w.routers[1].conns[w.clients[1][1]].caller_features = frozenset(CALLER_FEATURES)
    callee = w.routers[0].conns[w.clients[0][1]]
    callee.callee_features = frozenset({"progressive_call_invocations", "call_canceling"})
    w.send(0, Register(1, {}, "p.one"))
    w.send(1, Call(2, {"progress": True}, "p.one", ["chunk1"]))
    [inv] = [m for m in w.inbox[0] if isinstance(m, Invocation)]
    # the callee answers while the caller's next chunk is on its way
    node, conn = w.clients[1]
    effects = w.routers[node].receive(conn, Call(2, {"progress": True}, "p.one", ["chunk2"]),
                                      w.now)
    w.send(0, Yield(inv.request, {}, ["done"]))
    w.apply(node, effects)
    w.drain()
    invocations = [m for m in w.inbox[0] if isinstance(m, Invocation)]
    assert [i.args for i in invocations] == [["chunk1"]]  # chunk2 never became a new call
    assert w.routers[0].realms["realm1"].dealer.calls.of_callee(conn) == []
    assert [m.args for m in w.inbox[1] if isinstance(m, Result)] == [["done"]]


def test_two_nodes_taking_a_single_registration_at_once_keep_one() -> None:
    """Both nodes register the same "single" procedure before hearing of the other:
    when the announcements cross, the later registration (here: the same moment, so
    the greater node id) is revoked -- UNREGISTERED(0, details) to a callee that
    announced registration_revocation -- and every caller reaches the other one."""
    w = World(2, [0, 1, 1])  # callees on n0 and n1, a caller on n1
    sid = next(s for s, c in w.session_ids.items() if c == 1)
    w.routers[1].realms["realm1"].sessions[sid].callee_features = frozenset(
        {"registration_revocation"})
    for client in (0, 1):
        node, conn = w.clients[client]
        w.apply(node, w.routers[node].receive(conn, Register(1, {}, "p.one"), w.now))
    w.drain()
    assert isinstance(w.inbox[0][-1], Registered)
    registered, revoked = w.inbox[1][-2:]
    assert isinstance(registered, Registered) and isinstance(revoked, Unregistered)
    assert revoked.request == 0 and revoked.details is not None
    assert revoked.details["registration"] == registered.registration
    assert "registered this procedure first" in revoked.details["reason"]
    for node in (0, 1):  # one callee left, on n0, known to both nodes
        reg = w.routers[node].realms["realm1"].dealer.get_exact("p.one", "exact")
        assert reg is not None and len(reg.callees) == 1
    w.send(2, Call(3, {}, "p.one", [5]))
    [result] = [m for m in w.inbox[2] if isinstance(m, Result)]
    assert result.args == [0, 5]  # n0's callee takes the calls
    w.send(1, Register(4, {}, "p.one"))  # and n1's callee cannot take it back
    assert isinstance(w.inbox[1][-1], Error)
    assert w.inbox[1][-1].error == "wamp.error.procedure_already_exists"


def test_a_relay_that_cannot_be_sent_fails_its_call() -> None:
    w = World(2, [0, 1])
    w.auto_answer = False
    w.send(0, Register(1, {}, "p.one"))
    node, conn = w.clients[1]
    effects = w.routers[node].receive(conn, Call(2, {}, "p.one", [1]), w.now)
    [send] = [e for e in effects if isinstance(e, Send) and e.conn < 0]  # to the proxy
    [relay] = w.routers[node].outbound_remote(send.conn, send.msg)
    assert isinstance(relay, Relay)
    out = w.routers[node].relay_failed("realm1", relay.node, relay.payload,
                                       "wamp.error.invalid_argument", "cannot carry it")
    w.apply(node, out)
    w.drain()
    [err] = [m for m in w.inbox[1] if isinstance(m, Error)]
    assert err.error == "wamp.error.invalid_argument" and err.args == ["cannot carry it"]


def test_a_session_id_drawn_on_two_nodes_at_once_is_ended_on_one() -> None:
    """Two nodes draw the same session id before either hears of the other's join
    (here: the same random sequence). When they do, the node with the greater id
    ends its session; the other keeps its own, and both stay consistent."""
    import random

    from wamp_router.core.effects import Advertise, Effect
    from wamp_router.core.messages import Hello, Welcome
    from wamp_router.core.router import Router
    from wamp_router.core.session import TransportInfo

    from .test_cluster_equivalence import CLUSTERED, ROLES

    now = 1_700_000_000.0
    routers = [Router(CLUSTERED, random.Random(5)) for _ in range(2)]
    joined: list[tuple[int, list[Advertise]]] = []
    for i, router in enumerate(routers):
        router.node_id = f"n{i}"
        router.open(1, TransportInfo("websocket", "c", CLUSTERED.listeners[0], "json"))
        effects = router.receive(1, Hello("realm1", {"roles": ROLES}), now)
        [welcome] = [e.msg for e in effects if isinstance(e, Send)
                     and isinstance(e.msg, Welcome)]
        joined.append((welcome.session, [e for e in effects if isinstance(e, Advertise)]))
    assert joined[0][0] == joined[1][0]
    sid = joined[0][0]

    def hear(i: int, node: str, adverts: list[Advertise]) -> list[Effect]:
        return [e for a in adverts
                for e in routers[i].remote_directory(a.realm, node, a.op, a.entry, now)]

    at_n0, at_n1 = hear(0, "n1", joined[1][1]), hear(1, "n0", joined[0][1])
    assert not any(isinstance(e, Send) and isinstance(e.msg, Goodbye) for e in at_n0)
    [bye] = [e.msg for e in at_n1 if isinstance(e, Send) and isinstance(e.msg, Goodbye)]
    assert bye.reason == "router.close.session_id_collision"
    assert sid in routers[0].realms["realm1"].sessions  # n0 kept its session
    assert sid not in routers[1].realms["realm1"].sessions
    # n1's leave reaches n0: n0's own session with that id is untouched
    hear(0, "n1", [e for e in at_n1 if isinstance(e, Advertise)])
    assert sid in routers[0].realms["realm1"].sessions
    assert routers[1].realms["realm1"].remote is not None
    assert sid in routers[1].realms["realm1"].remote.sessions  # n1 knows n0's session


def test_the_first_registration_of_the_cluster_wins_on_every_node() -> None:
    """n0 and n2 register a procedure roundrobin, n1 registers it single, all at the
    same moment: the roundrobin group wins (n0 is the smaller node id) on every node,
    so only n1's callee is revoked, and n2's member of the winning group stays."""
    w = World(3, [0, 1, 2])
    for client in range(3):
        node, conn = w.clients[client]
        w.routers[node].conns[conn].callee_features = frozenset({"registration_revocation"})
    for client, options in ((0, {"invoke": "roundrobin"}), (1, {}),
                            (2, {"invoke": "roundrobin"})):
        node, conn = w.clients[client]
        w.apply(node, w.routers[node].receive(conn, Register(1, options, "p.one"), w.now))
    w.drain()
    revoked = [c for c in range(3) if any(isinstance(m, Unregistered) for m in w.inbox[c])]
    assert revoked == [1]
    for node in range(3):
        reg = w.routers[node].realms["realm1"].dealer.get_exact("p.one", "exact")
        assert reg is not None and reg.invoke == "roundrobin" and len(reg.callees) == 2


def test_a_session_id_collision_leaves_the_winner_known_to_third_nodes() -> None:
    """n0 and n1 draw the same session id; n0's session subscribes. Whatever order the
    announcements reach n2 in, n2 keeps n0's session and its subscription (n1's
    session, the one that is ended, leaves no trace there)."""
    import random

    from wamp_router.core.effects import Advertise
    from wamp_router.core.messages import Hello, Subscribe, Welcome
    from wamp_router.core.router import Router
    from wamp_router.core.session import TransportInfo

    from .test_cluster_equivalence import CLUSTERED, ROLES

    now = 1_700_000_000.0
    routers = [Router(CLUSTERED, random.Random(seed)) for seed in (5, 5, 99)]
    for i, router in enumerate(routers):
        router.node_id = f"n{i}"
    adverts: list[list[Advertise]] = [[], []]
    sids = []
    for i in (0, 1):
        routers[i].open(1, TransportInfo("websocket", "c", CLUSTERED.listeners[0], "json"))
        effects = routers[i].receive(1, Hello("realm1", {"roles": ROLES}), now)
        sids.append(next(e.msg.session for e in effects if isinstance(e, Send)
                         and isinstance(e.msg, Welcome)))
        adverts[i] += [e for e in effects if isinstance(e, Advertise)]
    adverts[0] += [e for e in routers[0].receive(1, Subscribe(1, {}, "a.b.c"), now)
                   if isinstance(e, Advertise)]
    assert sids[0] == sids[1]
    # n1 hears of n0's session and ends its own; n2 hears n0's news, then n1's
    at_n1 = [e for a in adverts[0] for e in routers[1].remote_directory(
        a.realm, "n0", a.op, a.entry, now) if isinstance(e, Advertise)]
    for node, news in (("n0", adverts[0]), ("n1", adverts[1] + at_n1)):
        for a in news:
            routers[2].remote_directory(a.realm, node, a.op, a.entry, now)
    remote = routers[2].realms["realm1"].remote
    assert remote is not None
    assert remote.remote_of(sids[0]) is not None and remote.remote_of(sids[0])[0] == "n0"
    assert list(remote.subs.get(("a.b.c", "exact"), {})) == [sids[0]]


def test_the_node_that_declares_a_death_sends_its_meta_events() -> None:
    """A node dies with a subscriber and a callee: the node that declares it dead
    sends on_unsubscribe / on_delete and on_unregister / on_delete for them."""
    w = World(2, [0, 1, 0])
    w.send(2, Subscribe(1, {"match": "prefix"}, "wamp.subscription"))
    w.send(2, Subscribe(2, {"match": "prefix"}, "wamp.registration"))
    w.send(1, Subscribe(3, {}, "a.b.c"))
    w.send(1, Register(4, {}, "p.one"))
    w.inbox[2].clear()
    w.apply(0, w.routers[0].node_gone("n1", dead=True))
    w.drain()
    topics = [m.details.get("topic") for m in w.inbox[2] if isinstance(m, Event)]
    assert topics == ["wamp.subscription.on_unsubscribe", "wamp.subscription.on_delete",
                      "wamp.registration.on_unregister", "wamp.registration.on_delete"]


def test_first_and_last_are_the_same_callee_seen_from_every_node() -> None:
    """Callees on three nodes register a "first" (then a "last") procedure at
    nearly the same moment; each node hears of the others' in a different order,
    yet every caller reaches the callee that registered first (last), because
    the callees are ordered by when they registered, not by when a node heard."""
    for policy, expected in (("first", 1), ("last", 2)):
        w = World(3, [0, 1, 2, 0, 1, 2])  # callees 0-2, a caller on every node
        w.auto_answer = True
        for client, at in ((2, 2.0), (1, 0.0), (0, 1.0)):  # n2 registers last, n1 first
            node, conn = w.clients[client]
            w.apply(node, w.routers[node].receive(
                conn, Register(client, {"invoke": policy}, "p.ordered"), w.now + at))
        w.drain()
        for caller in (3, 4, 5):
            w.send(caller, Call(caller, {}, "p.ordered", []))
            [result] = [m for m in w.inbox[caller] if isinstance(m, Result)]
            assert result.args == [expected], (policy, caller)
