"""The Lua scripts of shared data-sync records against a real ``redis-server``
(started on a free loopback port): routers of the pure core drive the real
backplane code (commit, read back, load) over a plain synchronous connection.
The history rules Redis applies (versions kept, age, checkpoints) must be the
ones every node's replica applies (MemoryStore), for every node, including one
that loads later; ``max_records`` counts per domain."""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Iterator
from typing import Any

import hiredis
import pytest
from twisted.internet.defer import fail, succeed

from tests.helpers import ROLES
from tests.integration.redis_server import RedisServer, redis_server
from wamp_router.cluster.redis import _COMMIT, _READ, RedisBackplane
from wamp_router.cluster.resp import RedisError, encode
from wamp_router.config.loader import load_config_text
from wamp_router.core.effects import Broadcast, Commit, Send, SyncCommit, SyncFetch
from wamp_router.core.messages import Call, Error, Hello, Result
from wamp_router.core.router import Router
from wamp_router.core.session import TransportInfo


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server() as s:
        yield s


class Conn:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.reader = hiredis.Reader()

    def raw(self, *args: Any) -> Any:
        self.sock.sendall(encode(args))
        while True:
            reply = self.reader.gets()
            if reply is not False:
                return reply
            self.reader.feed(self.sock.recv(1 << 20))

    def command(self, *args: Any) -> Any:  # the RespProtocol interface
        reply = self.raw(*args)
        if isinstance(reply, hiredis.ReplyError):
            return fail(RedisError(str(reply)))
        return succeed(reply)

    def fire(self, *args: Any) -> None:  # (an answer nobody waits for)
        self.raw(*args)

    def pushes(self) -> list[Any]:
        self.sock.setblocking(False)
        try:
            while True:
                try:
                    data = self.sock.recv(1 << 20)
                except BlockingIOError:
                    break
                if not data:
                    break
                self.reader.feed(data)
        finally:
            self.sock.setblocking(True)
        out = []
        while (r := self.reader.gets()) is not False:
            out.append(r)
        return out


class Driver:
    """What the backplane calls: straight into the node's router."""
    def __init__(self, node: RNode) -> None:
        self.node = node

    def remote(self, *a: Any) -> None: ...
    def sync_domains(self) -> dict[str, list[str]]:
        return self.node.router.sync_domains()

    def sync_committed(self, realm: str, batch: int, results: Any) -> None:
        self.node.apply(self.node.router.sync_committed(realm, batch, results))

    def sync_remote(self, realm: str, env: Any) -> None:
        self.node.apply(self.node.router.sync_remote(realm, env))

    def sync_fetch_from(self, realm: str, uri: str) -> int | None:
        return self.node.router.sync_fetch_from(realm, uri)

    def sync_fetched(self, realm: str, uri: str, *r: Any) -> None:
        self.node.apply(self.node.router.sync_fetched(realm, uri, *r))

    def sync_loading(self, realm: str) -> None:
        self.node.router.sync_loading(realm)

    def sync_loaded(self, realm: str, epoch: str, records: Any) -> None:
        self.node.apply(self.node.router.sync_loaded(realm, epoch, records))


class Reactor:
    """Calls at once (the harness has no event loop)."""

    def callLater(self, _d: float, f: Any, *a: Any) -> None:
        f(*a)


class RNode:
    def __init__(self, config_text: str, port: int, seed: int) -> None:
        self.config = load_config_text(config_text, "<n>")
        self.router = Router(self.config, random.Random(seed))
        assert self.config.cluster is not None
        self.bp = RedisBackplane(self.config.cluster, Reactor(), Driver(self),  # type: ignore[arg-type]
                                 lambda: ["realm1"], lambda r: [])
        self.cmd = Conn(port)
        self.sub = Conn(port)
        self.bp.cmd = self.cmd  # type: ignore[assignment]
        self.bp._synced = True
        for script in (_COMMIT, _READ):
            self.cmd.raw("SCRIPT", "LOAD", script)
        self.sub.raw("SUBSCRIBE", self.bp._sync_channel("realm1"))
        self.commit_due = False
        self.inbox: dict[int, list[Any]] = {}
        self._conns = 0
        self.bp._load_records("realm1", self.router.sync_domains()["realm1"])

    def apply(self, effects: list[Any]) -> None:
        for e in effects:
            if isinstance(e, Send):
                self.inbox.setdefault(e.conn, []).append(e.msg)
            elif isinstance(e, Broadcast):
                for c in e.conns:
                    self.inbox.setdefault(c, []).append(e.msg)
            elif isinstance(e, Commit):
                self.commit_due = True
            elif isinstance(e, SyncCommit):
                self.bp.sync_commit(e)
            elif isinstance(e, SyncFetch):
                self.bp.sync_fetch(e)

    def connect(self) -> int:
        self._conns += 1
        conn = self._conns
        self.inbox[conn] = []
        self.router.open(conn, TransportInfo("websocket", f"c{conn}",
                                             self.config.listeners[0], "json"))
        self.apply(self.router.receive(conn, Hello("realm1", {"roles": ROLES}), 0.0))
        self.inbox[conn].clear()
        return conn

    def call(self, conn: int, proc: str, args: list[Any], kw: dict[str, Any] | None = None,
             now: float = 1_700_000_000.0) -> Any:
        self.inbox[conn].clear()
        self.apply(self.router.receive(conn, Call(1, {}, proc, args, kw or {}), now))
        self.run()
        return self.inbox[conn][-1]

    def run(self) -> None:
        while self.commit_due:
            self.commit_due = False
            self.apply(self.router.commit())

    def poll(self) -> None:
        for r in self.sub.pushes():
            if isinstance(r, list) and r and r[0] == b"message":
                self.bp._push(r[1], r[2])
        self.run()


def config(extra: str, port: int) -> str:
    return f"""
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
{extra}
[cluster]
backplane = "redis://127.0.0.1:{port}"
"""


DOMAINS = """
[[realms.sync.domains]]
prefix = "app.doc."
store = "redis"
[[realms.sync.domains]]
prefix = "app.strict."
store = "redis"
limits = { max_records = 2 }
"""


def test_max_records_is_per_domain(server: RedisServer) -> None:
    n = RNode(config(DOMAINS, server.port), server.port, 1)
    c = n.connect()
    for i in range(3):  # three records in the unlimited domain
        r = n.call(c, "sync.set", [f"app.doc.{i}", {"i": i}])
        assert isinstance(r, Result), r
    r = n.call(c, "sync.set", ["app.strict.a", {"a": 1}])  # the first of at most 2
    assert isinstance(r, Result), r
    n.call(c, "sync.set", ["app.strict.b", {"b": 1}])
    r = n.call(c, "sync.set", ["app.strict.c", {"c": 1}])  # the third: refused
    assert isinstance(r, Error) and r.error == "sync.error.too_many_records", r


def _store_view(node: RNode, uri: str) -> tuple[Any, ...]:
    sync = node.router.realms["realm1"].sync
    store = sync.domains[0].store
    row = store.load(uri)
    return (row.v if row else 0, [p.v for p in store._logs.get(uri, [])],
            [(c[0], c[1], c[2]) for c in store._checkpoints.get(uri, [])])


def _redis_view(node: RNode, uri: str) -> tuple[Any, ...]:
    out: list[Any] = []
    node.bp._read_record("realm1", uri).addCallback(out.append)
    state, patches, cps = out[0]
    return (state["v"] if state else 0, [p["v"] for p in patches],
            sorted((c[0], c[1], c[2]) for c in cps))


@pytest.mark.parametrize("versions,age,every", [(5, 0, 3), (0, 30, 2), (4, 20, 3), (1, 10, 1),
                                                (3, 0, 0), (0, 0, 4), (2, 15, 5)])
def test_history_rules_match(server: RedisServer, versions: int, age: int, every: int) -> None:
    rng = random.Random(versions * 100 + age * 7 + every)
    dom = (f'[[realms.sync.domains]]\nprefix = "app.doc."\nstore = "redis"\n'
           f'history = {{ max_versions = {versions}, max_age = {age} }}\n'
           f'checkpoint_every = {every}\n')
    a = RNode(config(dom, server.port), server.port, 1)
    b = RNode(config(dom, server.port), server.port, 2)
    ca, cb = a.connect(), b.connect()
    uri = "app.doc.h"
    now = 1_700_000_000.25
    for i in range(60):
        now += rng.choice([0.5, 1, 3, 7, 12])
        node, conn = (a, ca) if rng.random() < 0.6 else (b, cb)
        skew = 0 if node is a else rng.choice([0, -4, 5])  # B's clock may differ
        kind = rng.random()
        if kind < 0.1:
            r = node.call(conn, "sync.delete", [uri], now=now + skew)
        else:
            r = node.call(conn, "sync.patch", [uri, [{"op": "x-inc", "path": "/n", "by": 1}]],
                          now=now + skew)
        if isinstance(r, Error) and r.error == "sync.error.not_found":
            continue
        assert isinstance(r, Result), r
        for _ in range(200):
            a.poll()
            b.poll()
            if _store_view(a, uri)[0] == _store_view(b, uri)[0] == _redis_view(a, uri)[0]:
                break
            time.sleep(0.005)
        ra, rb, rr = _store_view(a, uri), _store_view(b, uri), _redis_view(a, uri)
        assert ra == rr, (i, "A", ra, rr)
        assert rb == rr, (i, "B", rb, rr)
    c = RNode(config(dom, server.port), server.port, 3)
    assert _store_view(c, uri) == _redis_view(a, uri)


def test_age_trim_more_than_1000(server: RedisServer) -> None:
    dom = ('[[realms.sync.domains]]\nprefix = "app.doc."\nstore = "redis"\n'
           'history = { max_versions = 0, max_age = 60 }\ncheckpoint_every = 0\n')
    a = RNode(config(dom, server.port), server.port, 1)
    ca = a.connect()
    uri = "app.doc.age"
    now = 1_700_000_000.5
    for _i in range(1100):
        r = a.call(ca, "sync.patch", [uri, [{"op": "x-inc", "path": "/n", "by": 1}]], now=now)
        assert isinstance(r, Result)
    now += 120
    a.call(ca, "sync.patch", [uri, [{"op": "x-inc", "path": "/n", "by": 1}]], now=now)
    ra, rr = _store_view(a, uri), _redis_view(a, uri)
    assert ra == rr and rr[1] == [1101]  # every older change went, in Redis as here
    c = RNode(config(dom, server.port), server.port, 3)
    assert _store_view(c, uri) == rr
