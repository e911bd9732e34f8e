"""What the driver holds for a connection in a cluster (``Hold``) until the
backplane's barrier completes, with a fake backplane and long-poll transports:
the connection may go away while its output is released, and a registration
taken back while its REGISTERED is held takes its invocations with it."""
from __future__ import annotations

import json
from typing import Any

from twisted.internet.task import Clock

from tests.helpers import OPEN_REALM
from wamp_router.config.loader import load_config_text
from wamp_router.twisted.driver import Driver
from wamp_router.twisted.longpoll import LongPollResource, LongPollTransport

CONFIG = """
[[listeners]]
transport = "websocket"
endpoint = "127.0.0.1:0"
longpoll = { path = "/lp", max_queue = 5 }
""" + OPEN_REALM + """
[cluster]
backplane = "redis://127.0.0.1:1"
"""


class FakeCluster:
    def __init__(self) -> None:
        self.pending: list[Any] = []

    def barrier(self, done: Any) -> None:
        self.pending.append(done)

    def __getattr__(self, name: str) -> Any:
        return lambda *a, **k: None


def setup() -> tuple[Driver, FakeCluster, LongPollResource]:
    config = load_config_text(CONFIG, "<t>")
    clock = Clock()
    driver = Driver(config, clock)
    cluster = FakeCluster()
    driver.cluster = cluster
    res = LongPollResource(driver, config.listeners[0], clock)
    return driver, cluster, res


def lp(driver: Driver, res: LongPollResource) -> LongPollTransport:
    from wamp_router.core.session import TransportInfo
    from wamp_router.wire.serializers import SERIALIZERS
    t = LongPollTransport(res, "t1", SERIALIZERS["json"], "longpoll:x")
    t.cid = driver.attach(t, TransportInfo("longpoll", "longpoll:x", res.listener, "json"))
    res.transports["t1"] = t
    return t


def send(driver: Driver, cid: int, msg: list[Any]) -> None:
    driver.received(cid, json.dumps(msg).encode())
    driver.flush()


def release_all(cluster: FakeCluster) -> None:
    pending, cluster.pending = cluster.pending, []
    for done in pending:
        done()


def test_slow_consumer_while_releasing_held_output() -> None:
    driver, cluster, res = setup()
    sub = lp(driver, res)
    send(driver, sub.cid, [1, "realm1", {"roles": {"subscriber": {}}}])
    release_all(cluster)                       # WELCOME out
    sub.queue.clear()
    pub = lp(driver, res)
    res.transports["t2"] = pub
    send(driver, pub.cid, [1, "realm1", {"roles": {"publisher": {}}}])
    release_all(cluster)
    send(driver, sub.cid, [32, 1, {}, "com.t"])   # SUBSCRIBED held
    for i in range(10):                            # events queue behind it
        send(driver, pub.cid, [16, 100 + i, {}, "com.t", [i]])
    assert driver._held
    release_all(cluster)   # writes > max_queue: slow consumer -> close -> detach
    assert not driver._held
    assert sub.cid not in driver._conns and pub.cid in driver._conns
    send(driver, pub.cid, [16, 200, {"acknowledge": True}, "com.t", []])  # still serving
    release_all(cluster)
    assert json.loads(pub.queue[-1])[:2] == [17, 200]


def test_a_registration_taken_back_before_its_registered_left_takes_its_calls() -> None:
    driver, cluster, res = setup()
    callee = lp(driver, res)
    send(driver, callee.cid, [1, "realm1", {"roles": {"callee": {}}}])
    caller = lp(driver, res)
    send(driver, caller.cid, [1, "realm1", {"roles": {"caller": {}}}])
    release_all(cluster)
    callee.queue.clear()
    driver._clock = lambda: 100.0
    send(driver, callee.cid, [64, 7, {}, "com.p"])      # REGISTERED held
    send(driver, caller.cid, [48, 9, {}, "com.p", []])  # local call: INVOCATION queued behind
    # another node's earlier registration of the same single procedure arrives
    driver.remote_directory("realm1", "b" * 16, "reg+", {
        "proc": "com.p", "match": "exact", "invoke": "single", "conc": 0, "ft": False,
        "sid": 424242, "authid": "", "authrole": "anonymous", "features": [],
        "created": 50.0})
    release_all(cluster)
    got = [json.loads(m) for m in callee.queue]
    assert [m[:2] for m in got] == [[8, 64]], got  # refused, and no INVOCATION
    assert got[0][4] == "wamp.error.procedure_already_exists"
    answer = json.loads(caller.queue[-1])
    assert answer[:3] == [8, 48, 9] and answer[4] == "wamp.error.no_available_callee"


class SocketPeer:
    """A socket transport as the driver sees it (send buffer bound included)."""

    max_out = 1 << 62
    frame_key = ("fake",)
    _max_buffer = 4096

    def __init__(self) -> None:
        from wamp_router.wire.serializers import SERIALIZERS

        self.serializer = SERIALIZERS["json"]
        self.out: list[bytes] = []
        self.dropped: list[int] = []

    def frame(self, payload: bytes) -> bytes:
        return payload

    def write(self, data: bytes) -> None:
        if not self.dropped:  # (a dropped peer takes nothing more, as WampProtocolBase)
            self.out.append(data)

    def flush(self) -> None: ...
    def queued(self) -> int:
        return 0

    def rate_limited(self) -> bool:
        return False

    def close_after_send(self, reason: str) -> None: ...
    def slow_consumer(self, buffered: int) -> None:
        self.dropped.append(buffered)


def test_held_output_is_bounded_like_a_send_buffer() -> None:
    """While the cluster does not confirm, what waits for a peer counts against
    its send buffer bound: past it, the peer is dropped as a slow consumer."""
    from wamp_router.core.session import TransportInfo

    driver, cluster, res = setup()
    peer = SocketPeer()
    cid = driver.attach(peer, TransportInfo("websocket", "x", res.listener, "json"))
    pub = lp(driver, res)
    send(driver, cid, [1, "realm1", {"roles": {"subscriber": {}}}])
    send(driver, pub.cid, [1, "realm1", {"roles": {"publisher": {}}}])
    release_all(cluster)
    written = len(peer.out)
    send(driver, cid, [32, 1, {}, "com.t"])  # SUBSCRIBED held: the cluster is slow
    for i in range(40):
        send(driver, pub.cid, [16, 100 + i, {}, "com.t", ["x" * 200]])
    assert peer.dropped and peer.dropped[0] > SocketPeer._max_buffer
    assert len(peer.out) == written and cid not in driver._held
    release_all(cluster)  # nothing more for it
    assert len(peer.out) == written
