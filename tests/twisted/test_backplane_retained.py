"""Retained events in a cluster: every node ends with the one Redis stored last,
in Redis's order, including its own (fake Redis connections: what the retain
script would publish is pushed back by hand)."""

from __future__ import annotations

from typing import Any

import msgpack

from tests.twisted.test_backplane_barrier import B, backplane
from wamp_router.cluster.redis import TAG, RedisBackplane
from wamp_router.core.effects import Forward


def publish(bp: RedisBackplane, pub: int, value: str) -> bytes:
    """This node publishes a retained event; what Redis's script will publish."""
    bp.forward(Forward("realm1", {"t": "t", "p": pub, "a": [value], "r": True}, False))
    sent = bp.cmd.sent[-1]  # type: ignore[union-attr]
    assert sent[0] == "EVAL"
    return bytes(sent[7])


def other(bp: RedisBackplane, pub: int, value: str) -> bytes:
    env = {"t": "t", "p": pub, "a": [value], "r": True}
    return B.encode() + bp._envelope("retained", "realm1", msgpack.packb(env))[TAG:]


def test_every_node_ends_with_the_retained_event_redis_stored_last() -> None:
    bp, _, _ = backplane({B})
    stored: list[Any] = []
    bp.deliver = lambda realm, env, kind: stored.append(env["a"][0])  # type: ignore[method-assign]
    channel = bp._retained_channel("realm1").encode()
    mine1, mine2 = publish(bp, 1, "mine 1"), publish(bp, 2, "mine 2")
    assert mine1[:TAG] == bp._tag
    # Redis stored: mine 1, theirs, mine 2 -- the last one must win here too
    bp._push(channel, mine1)  # (a later one of ours is on its way: ours stays newest)
    bp._push(channel, other(bp, 7, "theirs"))
    bp._push(channel, mine2)
    assert stored == ["theirs", "mine 2"]
    # Redis stored: mine 3, then theirs: theirs wins on this node too
    mine3 = publish(bp, 3, "mine 3")
    bp._push(channel, mine3)
    bp._push(channel, other(bp, 8, "theirs 2"))
    assert stored[-2:] == ["mine 3", "theirs 2"]
    assert bp._own_retained == {}
