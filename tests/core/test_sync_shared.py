"""Shared data-sync records across cluster nodes (a property test on the pure core).

Three routers share ``store = "redis"`` records through a model of what the
Redis backplane does: a compare-and-set per version executed when Redis gets
to the command (each node's commands in order), its answer on the node's
command connection, and the version pushed to the other nodes on their
subscriber connection. Hypothesis picks the interleaving of every step
(writes, commits, Redis executing a command, an answer arriving, a push
arriving) and lost connections (unexecuted commands fail, answers turn into
errors, pushes are lost, the node reloads every record on reconnect).

At the end: every node answers Redis's state, every observer on every node
saw contiguous versions ending at it, Redis's log has every version once,
and the counter equals the sum of the increments whose writers were told
they were applied, plus some of those told the outcome is unknown (the
connection was lost during the commit), and none of the refused ones.
"""

from __future__ import annotations

import copy
import random
from collections import deque
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import ROLES
from tests.sync_client import RecordState
from wamp_router.config.loader import load_config_text
from wamp_router.core.effects import (
    Broadcast,
    Effect,
    Hold,
    Send,
    SyncCommit,
    SyncFetch,
    SyncReset,
)
from wamp_router.core.effects import Commit as CommitEffect
from wamp_router.core.messages import Call, Error, Event, Hello, Message, Result, Subscribe
from wamp_router.core.router import Router
from wamp_router.core.session import TransportInfo

CONFIG = """
[[listeners]]
transport = "websocket"
endpoint = "127.0.0.1:0"
[listeners.auth.anonymous]
role = "anonymous"
[[realms]]
name = "realm1"
[[realms.roles]]
name = "anonymous"
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = ["call", "publish", "subscribe"]
[realms.sync]
[[realms.sync.domains]]
prefix = "app.doc."
store = "redis"
conflict = "%s"
checkpoint_every = 4
[cluster]
backplane = "redis://127.0.0.1"
"""
URI = "app.doc.x"
EPOCH = "e0"


class SharedRedis:
    """The Lua commit script and the record reads, as a Python model."""

    def __init__(self) -> None:
        self.recs: dict[str, dict[str, Any]] = {}
        self.logs: dict[str, list[dict[str, Any]]] = {}
        self.cps: dict[str, list[tuple[int, Any, bool]]] = {}

    def commit(self, item: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any] | None]:
        uri, p = item["u"], item["p"]
        cur = self.recs.get(uri)
        v, t = (cur["v"], cur["t"]) if cur else (0, "")
        if v != item["pv"] or t != item["pt"]:
            return ("conflict", v, t), None
        if v == 0 and item["max"] and sum(u.startswith(item["dom"]) for u in self.recs) >= \
                item["max"]:
            return ("too_many",), None
        value = orjson.loads(item["value"])
        self.recs[uri] = {"v": p["v"], "t": p["t"], "value": value, "d": p["d"], "ts": p["ts"],
                          "by": p["by"]}
        self.logs.setdefault(uri, []).append(copy.deepcopy(p))
        if p["c"] and p["v"] % p["c"] == 0:
            self.cps.setdefault(uri, []).append((p["v"], value, p["d"]))
        return ("ok",), {"u": uri, "p": copy.deepcopy(p), "i": item["i"]}

    def read(self, uri: str, after: int = 0) -> tuple[Any, ...]:
        state = copy.deepcopy(self.recs.get(uri))
        log = [p for p in self.logs.get(uri, []) if p["v"] > after]
        return (state, copy.deepcopy(log), list(self.cps.get(uri, [])) if not after else [])

    def all(self) -> list[Any]:
        return [(uri, *self.read(uri)) for uri in sorted(self.recs)]


class Node:
    def __init__(self, index: int, world: World, policy: str, load: bool = True) -> None:
        self.world = world
        self.config = load_config_text(CONFIG % policy, "<node>")
        self.router = Router(self.config, random.Random(index))
        self.cmds: deque[tuple[Any, ...]] = deque()  # sent to Redis, not yet executed
        self.replies: deque[Any] = deque()  # answers on their way back
        self.pushes: deque[dict[str, Any]] = deque()  # other nodes' versions on their way
        self.fetches: deque[str] = deque()  # read-backs waiting their short delay
        self.commit_due = False
        self.up = True
        self.inbox: dict[int, list[Message]] = {}
        self.held: list[tuple[int, int]] = []  # Hold: (conn, index in its inbox it precedes)
        self._conns = 0
        if load:
            self.apply(self.router.sync_loaded("realm1", EPOCH, []))

    def connect(self) -> int:
        self._conns += 1
        conn = self._conns
        self.inbox[conn] = []
        self.router.open(conn, TransportInfo("websocket", f"c{conn}",
                                             self.config.listeners[0], "json"))
        self.send(conn, Hello("realm1", {"roles": ROLES}))
        self.inbox[conn].clear()
        return conn

    def send(self, conn: int, msg: Message) -> None:
        self.apply(self.router.receive(conn, msg, self.world.now))

    def apply(self, effects: list[Effect]) -> None:
        for e in effects:
            if isinstance(e, Hold | Send):
                self._to_client(e)
            elif isinstance(e, Broadcast):
                for c in e.conns:
                    self.inbox[c].append(e.msg)
            elif isinstance(e, CommitEffect):
                self.commit_due = True
            elif isinstance(e, SyncCommit):
                if self.up:
                    self.cmds.append(("commit", e))
                else:  # the backplane refuses at once while Redis is unreachable
                    self.replies.append(("committed", e.batch,
                                         [("refused", "Redis is not reachable")] * len(e.items)))
            elif isinstance(e, SyncFetch) and self.up:
                self.fetches.append(e.uri)  # asked for after a short wait
            elif isinstance(e, SyncReset) and self.up:
                self.cmds.append(("reset", e.epoch))

    def _to_client(self, e: Hold | Send) -> None:
        if isinstance(e, Hold):  # what follows to e.conn waits for every node
            self.held.append((e.conn, len(self.inbox[e.conn])))
        else:
            self.inbox[e.conn].append(e.msg)

    # -- what the adapter does when each thing happens ---------------------------
    def commit(self) -> None:
        self.commit_due = False
        self.apply(self.router.commit())

    def redis_runs_one(self) -> None:
        kind, arg = self.cmds.popleft()
        redis = self.world.redis
        if kind == "commit":
            self.replies.append(("committed", arg.batch, self._commit(arg)))
        elif kind == "fetch":
            uri, after = arg
            self.replies.append(("fetched", uri, after, *redis.read(uri, after)))
        elif kind == "reset":  # a new epoch if still the same; every node reloads
            if self.world.epoch == arg:
                self.world.epoch = arg + "+"
            for node in self.world.nodes:
                if node.up:
                    node.load()
        else:
            self.replies.append(("loaded", self.world.epoch, redis.all()))

    def _commit(self, effect: SyncCommit) -> list[tuple[Any, ...]]:
        results = []
        for item in effect.items:
            result, event = self.world.redis.commit(item)
            results.append(result)
            if event is not None:
                for other in self.world.nodes:
                    if other is not self and other.up:
                        other.pushes.append(event)
        return results

    def fetch_due(self) -> None:
        """A read-back's delay is over: the node says from which version, if at all."""
        uri = self.fetches.popleft()
        after = self.router.sync_fetch_from("realm1", uri)
        if after is not None and self.up:
            self.cmds.append(("fetch", (uri, after)))

    def reply_arrives(self) -> None:
        reply = self.replies.popleft()
        if reply[0] == "committed":
            self.apply(self.router.sync_committed("realm1", reply[1], reply[2]))
        elif reply[0] == "fetched":
            self.apply(self.router.sync_fetched("realm1", *reply[1:]))
        else:
            self.apply(self.router.sync_loaded("realm1", reply[1], reply[2]))

    def push_arrives(self) -> None:
        self.apply(self.router.sync_remote("realm1", self.pushes.popleft()))

    def connection_lost(self) -> None:
        """Unexecuted commands fail; executed ones answer with an error (the outcome
        is unknown to the node); pushes in flight are lost."""
        failed: deque[Any] = deque()
        for reply in self.replies:
            if reply[0] == "committed":
                failed.append(("committed", reply[1], [("error", "lost")] * len(reply[2])))
        for kind, arg in self.cmds:  # (the node cannot tell these from the ones above)
            if kind == "commit":
                failed.append(("committed", arg.batch, [("error", "lost")] * len(arg.items)))
        self.replies, self.cmds = failed, deque()
        self.pushes.clear()
        self.up = False

    def reconnect(self) -> None:
        self.up = True
        self.load()

    def load(self) -> None:
        self.router.sync_loading("realm1")
        self.cmds.append(("load", None))

    def busy(self) -> bool:
        return bool(self.commit_due or self.cmds or self.replies or self.pushes
                    or self.fetches)


class World:
    def __init__(self, policy: str) -> None:
        self.now = 1_700_000_000.0
        self.redis = SharedRedis()
        self.epoch = EPOCH  # a Redis that comes back empty has a new one
        self.nodes: list[Node] = []
        self.nodes = [Node(i, self, policy) for i in range(3)]
        self.observers: list[tuple[Node, int, RecordState]] = []
        self.writers: list[tuple[Node, int]] = []
        self.request = 0
        self.calls: dict[tuple[int, int, int], tuple[str, int]] = {}  # -> (kind, amount)
        self.applied_incs = 0
        self.unknown_incs = 0  # the connection was lost while they were committed
        for node in self.nodes:
            obs = node.connect()
            self.request += 1
            node.send(obs, Subscribe(self.request, {"get_retained": True}, URI))
            self.observers.append((node, obs, RecordState()))
            self.writers.append((node, node.connect()))

    def write(self, i: int, kind: str, amount: int, conditional: bool) -> None:
        node, conn = self.writers[i]
        self.request += 1
        kwargs: dict[str, Any] = {}
        if conditional:
            kwargs["base"] = max(self.observers[i][2].v, 0)
        if kind == "inc":
            ops = [{"op": "x-inc", "path": "/n", "by": amount}]
        elif kind == "append":
            ops = [{"op": "x-append-unique", "path": "/items", "value": amount}]
        else:
            ops = [{"op": "x-set", "path": f"/f{amount % 3}", "value": amount}]
        self.calls[(i, conn, self.request)] = (kind, amount)
        node.send(conn, Call(self.request, {}, "sync.patch", [URI, ops], kwargs))

    def collect(self) -> None:
        for i, (node, conn) in enumerate(self.writers):
            for msg in node.inbox[conn]:
                key = (i, conn, getattr(msg, "request", 0))
                kind, amount = self.calls.pop(key, ("", 0))
                if isinstance(msg, Result) and kind == "inc":
                    self.applied_incs += amount
                elif isinstance(msg, Error):
                    assert msg.error in ("sync.error.conflict", "sync.error.unavailable",
                                         "sync.error.contention"), msg
                    if "may or may not" in msg.args[0] and kind == "inc":
                        self.unknown_incs += amount
            node.inbox[conn].clear()
        for node, conn, state in self.observers:
            for msg in node.inbox[conn]:
                if isinstance(msg, Event):
                    if msg.details.get("retained"):
                        state.snapshot(msg.kwargs)
                    else:
                        state.patch(msg.kwargs)  # a gap fails here
            node.inbox[conn].clear()

    def wipe(self) -> None:
        """Redis restarts empty: every node loses it; a new epoch."""
        for node in self.nodes:
            if node.up:
                node.connection_lost()
        self.collect()
        self.redis = SharedRedis()
        self.epoch += "+"
        self.applied_incs = self.unknown_incs = 0  # (what was applied is gone)

    def settle(self) -> None:
        for node in self.nodes:
            if not node.up:
                node.reconnect()
        for _ in range(10_000):
            busy = [n for n in self.nodes if n.busy()]
            if not busy:
                return
            for node in busy:
                if node.commit_due:
                    node.commit()
                elif node.cmds:
                    node.redis_runs_one()
                elif node.replies:
                    node.reply_arrives()
                elif node.pushes:
                    node.push_arrives()
                else:
                    node.fetch_due()
            self.collect()
        raise AssertionError("the nodes never settled")


step = st.one_of(
    st.tuples(st.just("write"), st.integers(0, 2), st.sampled_from(["inc", "inc", "append", "set"]),
              st.integers(1, 4), st.booleans()),
    st.tuples(st.sampled_from(["commit", "redis", "reply", "push", "push", "fetch"]),
              st.integers(0, 2)),
    st.tuples(st.just("lose"), st.integers(0, 2)),
    st.tuples(st.just("reconnect"), st.integers(0, 2)),
    st.tuples(st.just("wipe"), st.just(0)),  # Redis restarts empty (a new epoch)
)


def _run(world: World, action: tuple[Any, ...]) -> None:
    node = world.nodes[action[1]]
    if action[0] == "write":
        world.write(action[1], action[2], action[3], action[4])
    elif action[0] == "commit" and node.commit_due:
        node.commit()
    elif action[0] == "redis" and node.cmds:
        node.redis_runs_one()
    elif action[0] == "reply" and node.replies:
        node.reply_arrives()
    elif action[0] == "push" and node.pushes:
        node.push_arrives()
    elif action[0] == "fetch" and node.fetches:
        node.fetch_due()
    elif action[0] == "lose" and node.up:
        node.connection_lost()
    elif action[0] == "reconnect" and not node.up:
        node.reconnect()
    elif action[0] == "wipe":
        world.wipe()
    world.collect()


@settings(max_examples=200, deadline=None)
@given(policy=st.sampled_from(["rebase", "reject", "lww"]),
       actions=st.lists(step, min_size=10, max_size=120))
def test_nodes_agree_on_every_version(policy: str, actions: list[Any]) -> None:
    world = World(policy)
    for action in actions:
        _run(world, action)
    world.settle()
    state = world.redis.recs.get(URI)
    v = state["v"] if state else 0
    assert [p["v"] for p in world.redis.logs.get(URI, [])] == list(range(1, v + 1))
    assert not world.calls, f"writes never answered: {world.calls}"
    for node, _, seen in world.observers:
        assert seen.v == v
        if state is not None:
            assert seen.value == state["value"]
        probe = node.connect()
        node.send(probe, Call(1, {}, "sync.get", [URI], {}))
        [res] = node.inbox[probe]
        assert isinstance(res, Result) and res.args[0]["v"] == v
        assert res.args[0]["value"] == (state["value"] if state else None)
    final = state["value"].get("n", 0) if state else 0
    assert world.applied_incs <= final <= world.applied_incs + world.unknown_incs


def test_a_lost_compare_and_set_applies_on_the_winner() -> None:
    """Two nodes increment at once: one compare-and-set loses, waits for the
    winner's version and applies on top of it (both writers are answered)."""
    world = World("rebase")
    a, b = world.nodes[0], world.nodes[1]
    world.write(0, "inc", 1, False)
    world.write(1, "inc", 2, False)
    a.commit()
    b.commit()
    a.redis_runs_one()  # a wins v1
    b.redis_runs_one()  # b loses: Redis is at v1
    b.reply_arrives()  # the loser waits for v1
    assert world.redis.recs[URI]["v"] == 1
    world.settle()
    assert world.redis.recs[URI]["value"] == {"n": 3}
    assert world.applied_incs == 3
    for _, _, seen in world.observers:
        assert [entry for entry in seen.log if entry[0] == "patch"] == [("patch", 1), ("patch", 2)]
    assert b.router.realms["realm1"].sync is not None
    assert b.router.realms["realm1"].sync.counters["cas_retries"] == 1


def test_the_answer_to_a_shared_write_waits_for_every_node() -> None:
    """The writer's RESULT follows a Hold: the driver sends it once every other
    node has handled what came before (the version Redis pushed to them)."""
    world = World("rebase")
    a, writer = world.writers[0]
    world.write(0, "inc", 1, False)
    a.commit()
    a.redis_runs_one()
    before, holds = len(a.inbox[writer]), len(a.held)
    a.reply_arrives()
    results = [i for i, m in enumerate(a.inbox[writer]) if isinstance(m, Result)]
    assert results == [before] and a.held[holds:] == [(writer, before)]


def test_reject_policy_conflicts_across_nodes() -> None:
    """A conditional write on a base another node moved past is rejected, with the
    versions it missed."""
    world = World("reject")
    world.write(0, "set", 1, True)
    world.settle()
    world.write(1, "set", 2, True)  # observer 1 is at v1: base 1 holds
    world.write(2, "set", 3, False)
    world.settle()
    node, conn = world.writers[0]
    node.send(conn, Call(99, {}, "sync.patch",
                         [URI, [{"op": "x-set", "path": "/f0", "value": 9}]], {"base": 1}))
    node.commit()
    [err] = node.inbox[conn]
    assert isinstance(err, Error) and err.error == "sync.error.conflict"
    assert err.kwargs["v"] == 3 and [p["v"] for p in err.kwargs["patches"]] == [2, 3]



# -- scenarios ------------------------------------------------------------------


def patch(world: World, i: int, path: str, value: Any, **kw: Any) -> int:
    """Writer ``i`` sets ``path``; returns the request id (answers: see ``answer``)."""
    node, conn = world.writers[i]
    world.request += 1
    world.calls[(i, conn, world.request)] = ("set", value)
    node.send(conn, Call(world.request, {}, "sync.patch",
                         [URI, [{"op": "x-set", "path": path, "value": value}]], kw))
    return world.request


def keep_answers(world: World) -> list[Message]:
    """From now on, the writers' answers are kept (collect() clears inboxes)."""
    kept: list[Message] = []
    collect = world.collect

    def keep() -> None:
        for node, conn in world.writers:
            kept.extend(node.inbox[conn])
        collect()

    world.collect = keep  # type: ignore[method-assign]
    return kept


def values_of(world: World, path: str) -> list[Any]:
    return [p["ops"][0]["value"] for p in world.redis.logs.get(URI, [])
            if p["ops"] and p["ops"][0]["path"] == path]


def test_writes_of_one_client_keep_their_order_across_lost_races() -> None:
    world = World("lww")
    a, b = world.nodes[0], world.nodes[1]
    patch(world, 1, "/other", 0)
    b.commit()
    b.redis_runs_one()  # b's version is v1; a has not heard of it
    patch(world, 0, "/x", 1)
    a.commit()  # in flight
    patch(world, 0, "/x", 2)
    a.commit()  # in flight too
    a.redis_runs_one()
    a.redis_runs_one()  # both lose
    a.reply_arrives()  # the first waits for v1
    patch(world, 0, "/x", 3)  # the client's third write arrives meanwhile
    a.reply_arrives()  # the second loses too: it must still come before the third
    world.settle()
    assert values_of(world, "/x") == [1, 2, 3]


def test_a_queued_write_waits_with_the_one_it_was_computed_on() -> None:
    world = World("lww")
    a, b, c = world.nodes
    patch(world, 1, "/other", 0)
    b.commit()
    b.redis_runs_one()
    a.pushes.clear()  # a hears of v1 only later
    patch(world, 0, "/x", 1)
    a.commit()
    a.redis_runs_one()  # loses to v1
    patch(world, 0, "/x", 2)  # queued on the first one's head, not sent
    b.reply_arrives()
    a.pushes.append({"u": URI, "p": world.redis.logs[URI][0], "i": None})
    a.push_arrives()
    a.reply_arrives()  # the first runs again: it must not overtake the second
    c.push_arrives()
    patch(world, 2, "/other", 1)
    c.commit()
    c.redis_runs_one()  # and another node's version comes first once more
    a.commit()
    world.settle()
    assert values_of(world, "/x") == [1, 2]


def test_a_write_rebased_after_a_lost_race_says_so() -> None:
    world = World("rebase")
    a, b = world.nodes[0], world.nodes[1]
    patch(world, 0, "/a", 0)
    world.settle()
    kept = keep_answers(world)
    request = patch(world, 0, "/a", 1, base=1)  # on the head: not a rebase yet
    patch(world, 1, "/b", 1)
    b.commit()
    b.redis_runs_one()  # v2 is b's
    a.commit()
    a.redis_runs_one()
    a.reply_arrives()
    world.settle()
    [res] = [m for m in kept if isinstance(m, Result) and m.request == request]
    assert res.args[0] == {"v": 3, "rebased": True}


def test_redis_back_empty_fails_waiting_writes_and_observers_get_the_new_epoch() -> None:
    world = World("rebase")
    a, b = world.nodes[0], world.nodes[1]
    for i in range(3):
        patch(world, 0, "/a", i)
        world.settle()
    kept = keep_answers(world)
    request = patch(world, 0, "/a", 9)
    patch(world, 1, "/b", 1)
    b.commit()
    b.redis_runs_one()
    a.commit()
    a.redis_runs_one()
    a.reply_arrives()  # a's write waits for v4 ...
    for node in world.nodes:
        node.connection_lost()  # ... which never comes: Redis restarts empty
    world.redis = SharedRedis()
    world.epoch = "e1"
    world.settle()
    [answer] = [m for m in kept if getattr(m, "request", 0) == request]
    assert isinstance(answer, Error) and answer.error == "sync.error.unavailable"
    assert "new epoch" in answer.args[0]
    patch(world, 1, "/c", 1)  # v1 of the new epoch
    world.settle()
    assert world.redis.recs[URI]["v"] == 1
    for node, _, seen in world.observers:
        assert (seen.epoch, seen.v, seen.value) == ("e1", 1, {"c": 1})
        sync = node.router.realms["realm1"].sync
        assert sync is not None and sync.snapshot(URI) == {"v": 1, "epoch": "e1",
                                                          "value": {"c": 1}}


def test_redis_that_lost_its_last_version_starts_a_new_epoch() -> None:
    """Redis restarted from an append-only file that misses the last version
    (appendfsync everysec): the same epoch, one version behind every node. The
    nodes start a new epoch from what Redis has; observers replace their state."""
    world = World("lww")
    for i in range(3):
        patch(world, 0, "/a", i)
        world.settle()
    for node in world.nodes:
        node.connection_lost()
    world.redis.logs[URI].pop()
    world.redis.recs[URI] = {"v": 2, "t": world.redis.logs[URI][-1]["t"], "value": {"a": 1},
                             "d": False, "ts": "", "by": None}
    world.settle()
    kept = keep_answers(world)
    request = patch(world, 1, "/z", 9)
    world.settle()
    [answer] = [m for m in kept if getattr(m, "request", 0) == request]
    assert isinstance(answer, Result) and answer.args[0]["v"] == 3
    assert world.redis.recs[URI]["value"] == {"a": 1, "z": 9}
    assert world.epoch != EPOCH
    for _, _, seen in world.observers:
        assert (seen.epoch, seen.v, seen.value) == (world.epoch, 3, {"a": 1, "z": 9})


def _late_node(world: World) -> Node:
    """A node that joins now: not loaded yet."""
    node = Node(9, world, "lww", load=False)
    world.nodes.append(node)
    return node


def test_a_subscriber_before_the_first_load_gets_the_state_after_it() -> None:
    world = World("lww")
    for i in range(5):
        patch(world, 0, "/a", i)
        world.settle()
    late = _late_node(world)
    observer = late.connect()
    late.send(observer, Subscribe(77, {"get_retained": True}, URI))
    assert not [m for m in late.inbox[observer] if isinstance(m, Event)]  # nothing yet
    late.apply(late.router.sync_loaded("realm1", EPOCH, world.redis.all()))
    [event] = [m for m in late.inbox[observer] if isinstance(m, Event)]
    assert event.details.get("retained") and event.kwargs["v"] == 5


def test_a_version_pushed_before_the_first_load_is_kept() -> None:
    world = World("lww")
    for i in range(5):
        patch(world, 0, "/a", i)
        world.settle()
    seen_by_load = world.redis.all()  # what the late node's load read ...
    patch(world, 0, "/a", 99)
    world.settle()  # ... before v6, whose push reaches it before the load's answer
    late = _late_node(world)
    late.apply(late.router.sync_remote("realm1", {"u": URI, "p": world.redis.logs[URI][-1],
                                                  "i": None}))
    late.apply(late.router.sync_loaded("realm1", EPOCH, seen_by_load))
    sync = late.router.realms["realm1"].sync
    assert sync is not None and sync.snapshot(URI) == {"v": 6, "epoch": EPOCH,
                                                      "value": {"a": 99}}
