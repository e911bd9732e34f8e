"""A thin Redis connection for Twisted: RESP requests out, replies parsed by
``hiredis.Reader`` (the sans-I/O RESP parser), one Deferred per command in
order. A connection in subscriber mode hands pushed messages to a callback.

Commands are never queued while Redis is unreachable: a command on a closed
connection fails at once (the backplane decides what to drop and counts it).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import hiredis
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory, Protocol


class RedisError(Exception):
    """An error reply, or the connection went away before the reply came."""


class RedisConnectionLost(RedisError):
    """The connection went away before the reply came: the command may have run."""


def encode(args: tuple[Any, ...]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode()
        elif isinstance(arg, int | float):
            arg = str(arg).encode()
        out.append(b"$%d\r\n" % len(arg))
        out.append(arg)
        out.append(b"\r\n")
    return b"".join(out)


# (channel, message) of a pub/sub push; (b"", token) answers PING token
Push = Callable[[bytes, bytes], None]


class RespProtocol(Protocol):
    transport: Any

    def __init__(self, on_ready: Callable[[RespProtocol], None],
                 on_lost: Callable[[RespProtocol], None], push: Push | None = None,
                 pushed: Callable[[], None] | None = None) -> None:
        self._reader = hiredis.Reader()
        self._pushed = pushed  # after the pushes of one read (the driver flushes once)
        self._waiting: deque[Deferred[Any]] = deque()
        self._on_ready = on_ready
        self._on_lost = on_lost
        self._push = push  # subscriber mode when set
        self.open = False

    def connectionMade(self) -> None:
        self.open = True
        tune = getattr(self.transport, "setTcpNoDelay", None)
        if tune is not None:
            tune(True)
        self._on_ready(self)

    def connectionLost(self, reason: Any = None) -> None:
        self.open = False
        waiting, self._waiting = self._waiting, deque()
        for d in waiting:
            d.errback(RedisConnectionLost("connection to Redis lost"))
        self._on_lost(self)

    def dataReceived(self, data: bytes) -> None:
        self._reader.feed(data)
        pushed = False
        try:
            self._replies()
        finally:
            pushed = self._any_push
            self._any_push = False
            if pushed and self._pushed is not None:
                self._pushed()

    _any_push = False

    def _replies(self) -> None:
        while True:
            reply = self._reader.gets()
            if reply is False:
                return
            if self._push is not None and isinstance(reply, list) and reply:
                kind = reply[0]
                if kind == b"message":
                    self._any_push = True
                    self._push(reply[1], reply[2])
                    continue
                if kind == b"pong":  # the answer to PING <token>: push(b"", token)
                    self._push(b"", reply[1] if len(reply) > 1 else b"")
                    continue
                if kind in (b"subscribe", b"unsubscribe"):
                    continue  # confirmations of a subscriber connection
            if not self._waiting:
                continue
            d = self._waiting.popleft()
            if isinstance(reply, hiredis.ReplyError):
                d.errback(RedisError(str(reply)))
            else:
                d.callback(reply)

    def command(self, *args: Any) -> Deferred[Any]:
        if not self.open:
            return _failed(RedisError("not connected to Redis"))
        assert self.transport is not None
        self.transport.write(encode(args))
        d: Deferred[Any] = Deferred()
        self._waiting.append(d)
        return d

    def send(self, *args: Any) -> None:
        """A command on a subscriber connection (no reply is tracked)."""
        if self.open:
            assert self.transport is not None
            self.transport.write(encode(args))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.loseConnection()


def _failed(exc: Exception) -> Deferred[Any]:
    d: Deferred[Any] = Deferred()
    d.errback(exc)
    return d


class RespFactory(Factory):
    def __init__(self, on_ready: Callable[[RespProtocol], None],
                 on_lost: Callable[[RespProtocol], None], push: Push | None = None,
                 pushed: Callable[[], None] | None = None) -> None:
        self._args = (on_ready, on_lost, push, pushed)

    def buildProtocol(self, addr: Any) -> RespProtocol:
        return RespProtocol(*self._args)
