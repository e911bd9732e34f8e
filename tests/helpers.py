"""A Harness of N fake sessions driving the pure core directly (no sockets,
no reactor): messages in, effects out, per-connection inboxes."""

from __future__ import annotations

import random
from typing import Any

from wamp_router.config.loader import load_config_text
from wamp_router.config.model import NodeConfig
from wamp_router.core.effects import Broadcast, Close, Commit, Effect, Send, Timer
from wamp_router.core.messages import Hello, Message, Welcome
from wamp_router.core.router import Router
from wamp_router.core.session import TransportInfo

# realm1, where the anonymous role may do everything (for configs the tests build)
OPEN_REALM = """
[[realms]]
name = "realm1"
[[realms.roles]]
name = "anonymous"
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = ["call", "register", "publish", "subscribe"]
"""

CONFIG = """
[[listeners]]
transport = "websocket"
endpoint = "127.0.0.1:0"
[listeners.auth.anonymous]
role = "anonymous"
realms = ["realm1"]
[[listeners.auth.ticket]]
authid = "alice"
ticket = "secret123"
role = "user"
realm = "realm2"
[[listeners.auth.wampcra]]
authid = "bob"
secret = "bobsecret"
role = "user"
realm = "realm2"
[[listeners.auth.wampcra]]
authid = "carol"
secret = "carolsecret"
salt = "pepper"
iterations = 100
keylen = 32
role = "user"
realm = "realm2"
""" + OPEN_REALM + """
[[realms]]
name = "realm2"
[[realms.roles]]
name = "user"
[[realms.roles.permissions]]
uri = "com.example."
match = "prefix"
allow = ["call", "register", "publish", "subscribe"]
"""

ROLES = {"caller": {}, "callee": {}, "publisher": {}, "subscriber": {}}


class Harness:
    def __init__(self, config: NodeConfig | None = None, seed: int = 1) -> None:
        self.config = config or load_config_text(CONFIG, "<test>")
        self.router = Router(self.config, random.Random(seed))
        self.inbox: dict[int, list[Message]] = {}
        self.closed: dict[int, str] = {}
        self.timers: list[float] = []
        self._next = 0
        self.now = 1_700_000_000.0
        self.auto_commit = True  # False: data-sync commits wait for commit()
        self.commits_due = False

    def connect(self) -> int:
        self._next += 1
        conn = self._next
        self.inbox[conn] = []
        self.router.open(conn, TransportInfo("websocket", f"test:{conn}",
                                             self.config.listeners[0], "json"))
        return conn

    def apply(self, effects: list[Effect]) -> None:
        commit = False
        for e in effects:
            if isinstance(e, Send):
                self.inbox[e.conn].append(e.msg)
            elif isinstance(e, Broadcast):
                for c in e.conns:
                    self.inbox[c].append(e.msg)
            elif isinstance(e, Close):
                self.closed[e.conn] = e.reason
            elif isinstance(e, Timer):
                self.timers.append(e.at)
            elif isinstance(e, Commit):
                commit = True
                self.commits_due = True
        if commit and self.auto_commit:
            self.commit()

    def commit(self) -> None:
        """What the adapter does after a reactor turn that queued data-sync writes."""
        self.commits_due = False
        self.apply(self.router.commit())

    def send(self, conn: int, msg: Message) -> list[Message]:
        """Feed ``msg`` and return what ``conn`` itself received as a result."""
        before = len(self.inbox[conn])
        self.apply(self.router.receive(conn, msg, self.now))
        out = self.inbox[conn][before:]
        del self.inbox[conn][before:]
        return out

    def take(self, conn: int) -> list[Message]:
        out, self.inbox[conn] = self.inbox[conn], []
        return out

    def advance(self, seconds: float) -> None:
        """Move the clock and run the core's timers that are due."""
        self.now += seconds
        self.apply(self.router.on_timer(self.now))

    def lose(self, conn: int) -> None:
        self.apply(self.router.lost(conn))

    def join(self, realm: str = "realm1", **details: Any) -> int:
        conn = self.connect()
        [welcome] = self.send(conn, Hello(realm, {"roles": ROLES, **details}))
        assert isinstance(welcome, Welcome), welcome
        self.take(conn)
        return conn
