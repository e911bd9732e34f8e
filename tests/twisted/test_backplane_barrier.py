"""The backplane's barrier (what WELCOME / SUBSCRIBED / REGISTERED wait for in a
cluster), on fake Redis connections and a fake clock: who must answer, what one
answer covers, and what ends the wait when an answer cannot come."""

from __future__ import annotations

from typing import Any

import msgpack
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock

from tests.twisted.test_backplane_liveness import Recorder
from wamp_router.cluster.redis import TAG, RedisBackplane
from wamp_router.config.model import Cluster
from wamp_router.core.effects import Interest


class FakeResp:
    """A Redis connection that records the commands sent on it."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []
        self.open = True

    def command(self, *args: Any) -> Deferred[Any]:
        self.sent.append(args)
        return succeed(1)

    def send(self, *args: Any) -> None:
        self.sent.append(args)

    fire = send


class Directory(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.changes: list[tuple[str, str, str]] = []

    def remote_directory(self, realm: str, node: str, op: str, entry: Any) -> None:
        self.changes.append((node, op, entry["n"]))


B, C = "b" * TAG, "c" * TAG  # node ids are TAG characters long


def backplane(known: set[str]) -> tuple[RedisBackplane, Clock, Directory]:
    clock = Clock()
    driver = Directory()
    bp = RedisBackplane(Cluster("redis://x", node_ttl=3.0), clock, driver,  # type: ignore[arg-type]
                        lambda: ["realm1"], lambda realm: [])
    bp.cmd, bp.sub = FakeResp(), FakeResp()  # type: ignore[assignment]
    bp._synced = True
    bp.known = set(known)
    return bp, clock, driver


def pong(bp: RedisBackplane, node: str, n: int) -> None:
    bp._push(bp.ch_inbox.encode(), node.encode() + msgpack.packb(["pong", "", n]))


def control(bp: RedisBackplane, *msg: Any) -> None:
    bp._push(bp.ch_ctl.encode(), msgpack.packb(list(msg)))


def subscribed(bp: RedisBackplane, topic: str = "t") -> None:
    """This node's first exact subscriber to ``topic``: a SUBSCRIBE to its channel."""
    bp.interest(Interest("realm1", topic, "exact", True))


def test_a_barrier_waits_for_redis_and_every_other_node() -> None:
    bp, _, _ = backplane({B, C})
    done: list[int] = []
    subscribed(bp)
    bp.barrier(lambda: done.append(1))
    assert ("PING", "1") in bp.sub.sent  # type: ignore[union-attr]
    assert ("PUBLISH", bp.ch_ctl, msgpack.packb(["ping", bp.node_id, 1])) in bp.cmd.sent  # type: ignore[union-attr]
    pong(bp, B, 1)
    bp._push(b"", b"1")  # the PING on the subscriber connection came back
    assert done == []
    pong(bp, C, 1)
    assert done == [1]


def test_alone_it_waits_only_for_its_own_subscribes() -> None:
    bp, _, _ = backplane(set())
    done: list[int] = []
    bp.barrier(lambda: done.append(1))
    assert done == [1] and bp.sub.sent == []  # type: ignore[union-attr]
    subscribed(bp)
    bp.barrier(lambda: done.append(2))
    assert done == [1]  # Redis has not confirmed the SUBSCRIBE yet
    (ping,) = [c for c in bp.sub.sent if c[0] == "PING"]  # type: ignore[union-attr]
    bp._push(b"", ping[1].encode())  # Redis answers it
    assert done == [1, 2]


def test_a_later_answer_covers_the_earlier_barriers_in_order() -> None:
    bp, _, _ = backplane({B})
    done: list[int] = []
    for i in (1, 2, 3):
        bp.barrier(lambda i=i: done.append(i))  # type: ignore[misc]
    bp._push(b"", b"3")
    pong(bp, B, 2)
    assert done == [1, 2]
    pong(bp, B, 3)
    assert done == [1, 2, 3]


def test_a_node_that_leaves_or_stays_silent_is_not_waited_for() -> None:
    bp, clock, _ = backplane({B, C})
    done: list[int] = []
    bp.barrier(lambda: done.append(1))
    bp._push(b"", b"1")
    pong(bp, B, 1)
    control(bp, "down", C)  # c left (or was declared dead)
    assert done == [1]
    bp.known = {B}
    bp.barrier(lambda: done.append(2))
    bp._push(b"", b"2")
    clock.advance(2.9)
    assert done == [1]
    clock.advance(0.2)  # node_ttl without an answer from b
    assert done == [1, 2] and bp.counters["barrier_timeouts"] == 1


def test_losing_redis_releases_every_waiting_reply() -> None:
    bp, _, _ = backplane({B})
    done: list[int] = []
    bp.barrier(lambda: done.append(1))
    bp.barrier(lambda: done.append(2))
    bp._lost(bp.cmd)  # type: ignore[arg-type]
    assert done == [1, 2]
    bp.barrier(lambda: done.append(3))  # and while it is away: at once
    assert done == [1, 2, 3]


def test_a_node_answers_a_ping_after_what_came_before_it() -> None:
    """A ping is answered in control-channel order, and while the pinging node's
    directory is being loaded, only once it is loaded (with the changes before)."""
    bp, _, driver = backplane({B})
    control(bp, "reg+", B, "realm1", {"n": "first"})
    control(bp, "ping", B, 7)
    assert driver.changes == [(B, "reg+", "first")]
    assert bp.cmd.sent[-1] == ("PUBLISH", f"wr:n:{B}",  # type: ignore[union-attr]
                               bp.node_id.encode() + msgpack.packb(["pong", "", 7]))
    sent = len(bp.cmd.sent)  # type: ignore[union-attr]
    bp._loading[B] = []  # b's directory is being (re)loaded
    control(bp, "reg+", B, "realm1", {"n": "second"})
    control(bp, "ping", B, 8)
    assert len(bp.cmd.sent) == sent  # type: ignore[union-attr]
    for msg in bp._loading.pop(B):  # what got_directory does once it is in
        bp._apply_delta(msg)
    assert driver.changes[-1] == (B, "reg+", "second")
    assert bp.cmd.sent[-1][2].endswith(msgpack.packb(["pong", "", 8]))  # type: ignore[union-attr]


def test_a_rejoining_node_answers_pings_only_once_it_has_loaded_the_others() -> None:
    """A node that lost Redis for a moment missed control messages; a ping that
    comes while it rejoins is answered after it has loaded the pinging node's
    state, not at once (which would confirm what it never saw)."""
    bp, _, _ = backplane({B})
    bp._lost(bp.sub)  # type: ignore[arg-type]
    bp.sub = FakeResp()  # type: ignore[assignment]
    assert not bp._synced  # rejoining: ZRANGE, the nodes' patterns and directories
    control(bp, "ping", B, 5)
    assert not [c for c in bp.cmd.sent if c[:2] == ("PUBLISH", f"wr:n:{B}")]  # type: ignore[union-attr]
    bp._loading[B] = []  # it reads B's state ...
    bp._now_up()
    assert not [c for c in bp.cmd.sent if c[:2] == ("PUBLISH", f"wr:n:{B}")]  # type: ignore[union-attr]
    for msg in bp._loading.pop(B):  # ... and once it is in, answers
        bp._apply_delta(msg)
    assert bp.cmd.sent[-1][:2] == ("PUBLISH", f"wr:n:{B}")  # type: ignore[union-attr]


def test_a_node_that_let_a_barrier_time_out_is_not_waited_for_until_it_answers() -> None:
    bp, clock, _ = backplane({B, C})
    done: list[int] = []
    bp.barrier(lambda: done.append(1))
    bp._push(b"", b"1")
    pong(bp, B, 1)
    clock.advance(3.0)  # C never answers
    assert done == [1]
    bp.barrier(lambda: done.append(2))
    bp._push(b"", b"2")
    pong(bp, B, 2)
    assert done == [1, 2]  # C is still asked (the ping goes to all), not waited for
    assert bp.cmd.sent[-1][:2] == ("PUBLISH", bp.ch_ctl)  # type: ignore[union-attr]
    pong(bp, C, 2)  # C answers again: waited for from now on
    bp.barrier(lambda: done.append(3))
    bp._push(b"", b"3")
    pong(bp, B, 3)
    assert done == [1, 2]
    pong(bp, C, 3)
    assert done == [1, 2, 3]


def test_without_a_new_subscribe_only_the_nodes_are_asked() -> None:
    bp, _, _ = backplane({B})
    done: list[int] = []
    bp.barrier(lambda: done.append(1))  # a join, a register: no SUBSCRIBE to confirm
    assert bp.sub.sent == []  # type: ignore[union-attr]
    pong(bp, B, 1)
    assert done == [1]
    subscribed(bp)
    bp.barrier(lambda: done.append(2))
    bp.barrier(lambda: done.append(3))  # waits for the PING of 2 as well
    assert [c for c in bp.sub.sent if c[0] == "PING"] == [  # type: ignore[union-attr]
        ("PING", "2"), ("PING", "3")]
    pong(bp, B, 3)
    assert done == [1]
    bp._push(b"", b"2")
    assert done == [1, 2]
    bp._push(b"", b"3")
    assert done == [1, 2, 3]


def test_a_malformed_pong_is_ignored() -> None:
    bp, _, _ = backplane({B})
    done: list[int] = []
    bp.barrier(lambda: done.append(1))
    bp._push(bp.ch_inbox.encode(), B.encode() + msgpack.packb(["pong", "", "x"]))
    assert done == []
    pong(bp, B, 1)
    assert done == [1]
