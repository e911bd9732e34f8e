"""Liveness of cluster nodes through a real ``redis-server`` (free loopback port): two
Redis backplanes on a private reactor instance (iterated by the test, never ``run()``)
with a driver that records what the backplane tells it.

- A node cut off from Redis for longer than ``node_ttl`` is declared dead by the other
  (which fires its sessions' testaments); when it is back it learns so and fences
  (ends its sessions) before announcing itself again.
- Redis restarted from its append-only file after being away longer than ``node_ttl``:
  every deadline in it is old, yet a node that reconnects within ``node_ttl`` of the
  first one is not declared dead and does not fence.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from twisted.internet.selectreactor import SelectReactor

from tests.integration.redis_server import RedisServer, redis_server
from wamp_router.cluster.redis import RedisBackplane
from wamp_router.config.model import Cluster

TTL, BEAT = 1.0, 0.2


class Recorder:
    """The driver side of a backplane: what it was told."""

    def __init__(self) -> None:
        self.fenced = 0
        self.gone: list[tuple[str, bool]] = []

    def fence(self) -> None:
        self.fenced += 1

    def node_gone(self, node: str, dead: bool = False) -> None:
        self.gone.append((node, dead))

    def remote(self, *args: Any) -> None: ...
    def remote_rpc(self, *args: Any) -> None: ...
    def remote_directory(self, *args: Any) -> None: ...
    def relay_failed(self, *args: Any) -> None: ...
    def isolate(self) -> None: ...
    def flush(self) -> None: ...
    def advertisements(self) -> list[Any]:
        return []

    def sync_domains(self) -> dict[str, list[str]]:
        return {}


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with redis_server(persist=True) as server:
        yield server


def until(reactor: SelectReactor, cond: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        reactor.iterate(0.01)


def spin(reactor: SelectReactor, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        reactor.iterate(0.01)


def pair(reactor: SelectReactor, port: int) -> list[tuple[RedisBackplane, Recorder]]:
    config = Cluster(backplane=f"redis://127.0.0.1:{port}", port=port, prefix="lv:",
                     node_ttl=TTL, heartbeat=BEAT)
    nodes = []
    for _ in range(2):
        recorder = Recorder()
        backplane = RedisBackplane(config, reactor, recorder,  # type: ignore[arg-type]
                                   lambda: ["realm1"], lambda realm: [])
        backplane.start()
        nodes.append((backplane, recorder))
    until(reactor, lambda: all(b.up for b, _ in nodes))
    return nodes


def stop_all(reactor: SelectReactor, nodes: list[tuple[RedisBackplane, Recorder]]) -> None:
    done: list[Any] = []
    for backplane, _ in nodes:
        backplane.stop().addBoth(done.append)
    until(reactor, lambda: len(done) == len(nodes))


def test_a_node_declared_dead_while_cut_off_fences_when_it_is_back(redis: RedisServer) -> None:
    reactor = SelectReactor()
    nodes = pair(reactor, redis.port)
    try:
        (a, ra), (b, rb) = nodes
        spin(reactor, TTL + BEAT)  # (b's reaper is armed)
        stopped: list[Any] = []
        for service in a._services:  # a loses Redis; b stays
            service.stopService().addBoth(stopped.append)
        until(reactor, lambda: len(stopped) == len(a._services))
        until(reactor, lambda: (a.node_id, True) in rb.gone)  # b declares a dead
        assert ra.fenced == 0
        for service in a._services:
            service.startService()
        until(reactor, lambda: a.up)
        spin(reactor, 3 * BEAT)
        assert ra.fenced == 1  # once: it ended its sessions before announcing itself
        assert rb.fenced == 0
    finally:
        stop_all(reactor, nodes)


def test_a_redis_restart_with_old_deadlines_declares_nobody_dead(redis: RedisServer) -> None:
    reactor = SelectReactor()
    nodes = pair(reactor, redis.port)
    try:
        (a, ra), (b, rb) = nodes
        spin(reactor, TTL + BEAT)
        redis.stop()
        until(reactor, lambda: not a.up and not b.up)
        stopped: list[Any] = []
        for service in a._services:  # a comes back a little after b
            service.stopService().addBoth(stopped.append)
        until(reactor, lambda: len(stopped) == len(a._services))
        spin(reactor, 2 * TTL)  # every deadline in Redis's file is now in the past
        redis.start()
        until(reactor, lambda: b.up, timeout=20)
        spin(reactor, TTL / 2)  # b's reaper runs; a's deadline is long past
        for service in a._services:
            service.startService()
        until(reactor, lambda: a.up)
        spin(reactor, 2 * TTL)  # several reaper runs
        assert not any(dead for _, dead in ra.gone + rb.gone)
        assert ra.fenced == rb.fenced == 0
    finally:
        stop_all(reactor, nodes)
