"""Cluster edge cases on the pure core (routers joined by the in-memory backplane
of test_cluster_equivalence): a node declared dead while alive, a chunk of a
progressive call arriving after the call ended, two nodes taking a "single"
registration at once, a relay that cannot be sent."""

from __future__ import annotations

from wamp_router.core.effects import Relay, Send
from wamp_router.core.messages import (
    Call,
    Error,
    Goodbye,
    Invocation,
    Register,
    Registered,
    Result,
    Unregister,
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


def test_two_nodes_taking_a_single_registration_at_once_heal_when_one_leaves() -> None:
    w = World(2, [0, 1, 1])  # callees on n0 and n1, a caller on n1
    for client in (0, 1):
        node, conn = w.clients[client]
        w.apply(node, w.routers[node].receive(conn, Register(1, {}, "p.one"), w.now))
    w.drain()  # both announcements cross: both registered (the race the README admits)
    assert all(isinstance(w.inbox[c][-1], Registered) for c in (0, 1))
    reg_id = w.inbox[1][-1].registration
    w.send(1, Unregister(2, reg_id))
    w.send(2, Call(3, {}, "p.one", [5]))
    [result] = [m for m in w.inbox[2] if isinstance(m, Result)]
    assert result.args == [0, 5]  # n0's callee takes the calls now


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
