"""A thin Redis connection for Twisted: RESP requests out, replies parsed by
``hiredis.Reader`` (the sans-I/O RESP parser), one Deferred per command in
order. A connection in subscriber mode hands pushed messages to a callback.
A connection is ready once its opening commands (AUTH, SELECT, PING) have
succeeded; one that fails closes it and is reported with Redis's reply.

Commands are never queued while Redis is unreachable: a command on a closed
connection fails at once (the backplane decides what to drop and counts it).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import hiredis
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger

from ..twisted.sockets import is_socket, write_now

log = Logger()


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
                 pushed: Callable[[], None] | None = None,
                 hello: Sequence[tuple[Any, ...]] = (),
                 on_refused: Callable[[str, str], None] | None = None,
                 verify: Callable[[Any], str | None] | None = None,
                 clock: Any = None) -> None:
        if clock is None:
            from twisted.internet import reactor as clock
        self._reader = hiredis.Reader()
        self._pushed = pushed  # after the pushes of one read (the driver flushes once)
        # per command sent, in order: its Deferred, or the name of a fire()d command
        self._waiting: deque[Deferred[Any] | str] = deque()
        self._on_ready = on_ready
        self._on_lost = on_lost
        self._push = push  # subscriber mode when set
        # commands run before the connection is ready (AUTH, SELECT, PING): one that
        # fails closes it, and on_refused(command, Redis's reply) says why
        self._hello = tuple(hello)
        self._on_refused = on_refused
        self._verify = verify  # the last opening command's reply: None if fine, else why not
        self.open = False
        self.ready = False
        self._out: list[bytes] = []
        self._flush_call: Any = None
        self._silent_since: float | None = None  # the oldest unanswered request's time
        self._direct = False  # a plain socket: written to at once (sockets.write_now)
        self._clock = clock

    def connectionMade(self) -> None:
        self.open = True
        self._direct = is_socket(self.transport)
        tune = getattr(self.transport, "setTcpNoDelay", None)
        if tune is not None:
            tune(True)
        if not self._hello:
            self._became_ready(None)
            return
        *first, last = self._hello
        for args in first:
            self.command(*args).addErrback(self._hello_failed, str(args[0]))
        self.command(*last).addCallbacks(self._became_ready, self._last_failed,
                                         errbackArgs=(str(last[0]),))
        self.flush()

    def _last_failed(self, failure: Any, what: str) -> None:
        """The last opening command was refused: ``verify`` may accept that (ROLE
        refused to a user without the right to run it: nothing to check)."""
        if self._verify is not None and failure.check(RedisError) and \
                not failure.check(RedisConnectionLost) and self._verify(failure.value) is None:
            self._became_ready(None, checked=True)
            return
        self._hello_failed(failure, what)

    def _became_ready(self, reply: Any, checked: bool = False) -> None:
        why = self._verify(reply) if self._verify is not None and not checked else None
        if why is not None:
            self._refuse(str(self._hello[-1][0]), why)
            return
        if self.open and not self.ready and self._on_refused is not _REFUSED:
            self.ready = True
            self._on_ready(self)

    def _hello_failed(self, failure: Any, what: str) -> None:
        self._refuse(what, failure.getErrorMessage())

    def _refuse(self, what: str, why: str) -> None:
        if self.open and self._on_refused is not _REFUSED:
            if self._on_refused is not None:
                self._on_refused(what, why)
            self._on_refused = _REFUSED  # (the commands after it fail too: say it once)
            self.close()

    def connectionLost(self, reason: Any = None) -> None:
        self.open = False
        self.flush()  # (drops what was not sent)
        waiting, self._waiting = self._waiting, deque()
        for d in waiting:
            if not isinstance(d, str):
                d.errback(RedisConnectionLost("connection to Redis lost"))
        if self.ready:
            self._on_lost(self)
        elif self._on_refused not in (None, _REFUSED):  # e.g. a refused TLS handshake
            assert self._on_refused is not None
            why = reason.getErrorMessage() if reason is not None else "closed"
            self._on_refused("connect", why)

    def stalled(self, now: float, limit: float) -> bool:
        """Sent something more than ``limit`` seconds ago and heard nothing since
        (a peer gone without a reset: the connection looks open forever)."""
        return self._silent_since is not None and now - self._silent_since > limit

    def dataReceived(self, data: bytes) -> None:
        self._reader.feed(data)
        pushed = False
        try:
            self._replies()
        finally:
            # (answers still due: the silence is counted from now)
            self._silent_since = self._clock.seconds() if self._waiting else None
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
            if self._push is not None and isinstance(reply, list) and reply \
                    and self._pushed_reply(reply):
                continue
            waiter = self._waiting.popleft() if self._waiting else "a command"
            if isinstance(reply, hiredis.ReplyError) and str(reply).startswith("READONLY"):
                # this server became a replica (a failover): reconnect, to the master
                log.warn("cluster backplane: Redis answered {why}; reconnecting",
                         why=str(reply))
                self.close()
            if isinstance(waiter, str):  # fire() or send(): only a refusal matters
                if isinstance(reply, hiredis.ReplyError):
                    log.error("cluster backplane: Redis refused {command}: {why}",
                              command=waiter, why=str(reply))
            elif isinstance(reply, hiredis.ReplyError):
                waiter.errback(RedisError(str(reply)))
            else:
                waiter.callback(reply)

    def _pushed_reply(self, reply: list[Any]) -> bool:
        """Handle what a subscriber connection gets unasked; False: a reply."""
        kind = reply[0]
        if kind == b"message":
            self._any_push = True
            self._push(reply[1], reply[2])  # type: ignore[misc]
            return True
        if kind == b"pong":  # the answer to PING <token>: push(b"", token)
            self._push(b"", reply[1] if len(reply) > 1 else b"")  # type: ignore[misc]
            return True
        return kind in (b"subscribe", b"unsubscribe")  # confirmations

    def command(self, *args: Any) -> Deferred[Any]:
        if not self.open:
            return _failed(RedisError("not connected to Redis"))
        assert self.transport is not None
        self._write(encode(args))
        d: Deferred[Any] = Deferred()
        self._waiting.append(d)
        return d

    def fire(self, *args: Any) -> None:
        """A command whose answer is not needed (no Deferred): a refusal is logged;
        nothing happens when the connection is closed (the backplane notices)."""
        if self.open:
            self._write(encode(args))
            self._waiting.append(str(args[0]))

    def send(self, *args: Any) -> None:
        """A command on a subscriber connection (no reply is tracked)."""
        if self.open:
            self._write(encode(args))

    def _write(self, data: bytes) -> None:
        """Commands of one reactor turn leave together: at flush() (the driver calls
        it before sending its clients what follows from them, e.g. PUBLISHED after
        the publication went to Redis), or at the latest in the next turn."""
        if not self._out:
            self._flush_call = self._clock.callLater(0, self.flush)
        if self._silent_since is None:
            self._silent_since = self._clock.seconds()
        self._out.append(data)

    def flush(self) -> None:
        if self._flush_call is not None:
            if self._flush_call.active():
                self._flush_call.cancel()
            self._flush_call = None
        if not self._out or not self.open:
            self._out.clear()
            return
        data = b"".join(self._out)
        self._out.clear()
        write_now(self.transport, data, self._direct)

    def abort(self) -> None:
        """Drop the connection at once (no answer is coming on it)."""
        if self.transport is not None:
            self.transport.abortConnection()

    def close(self) -> None:
        self.flush()
        if self.transport is not None:
            self.transport.loseConnection()


def _REFUSED(what: str, why: str) -> None:
    """(marks a connection whose opening commands failed and were reported)"""


def _failed(exc: Exception) -> Deferred[Any]:
    d: Deferred[Any] = Deferred()
    d.errback(exc)
    return d


class RespFactory(Factory):
    noisy = False  # (no "Starting factory" line per reconnect)

    def __init__(self, on_ready: Callable[[RespProtocol], None],
                 on_lost: Callable[[RespProtocol], None], push: Push | None = None,
                 pushed: Callable[[], None] | None = None,
                 hello: Sequence[tuple[Any, ...]] = (),
                 on_refused: Callable[[str, str], None] | None = None,
                 verify: Callable[[Any], str | None] | None = None,
                 clock: Any = None) -> None:
        self._args = (on_ready, on_lost, push, pushed, hello, on_refused, verify, clock)

    def buildProtocol(self, addr: Any) -> RespProtocol:
        return RespProtocol(*self._args)
