"""Redis Sentinel: an endpoint that asks the Sentinels, in turn, which server is
the master of a service, then connects to it. Each (re)connection asks again,
so after a failover the backplane's reconnect reaches the new master; the
connection's opening commands end with ROLE, and a server that is not (or no
longer) a master is refused, as is a write answered with READONLY (see
resp.py): the next attempt asks the Sentinels again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint, connectProtocol
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.python.failure import Failure
from zope.interface import implementer

from .resp import RespProtocol


class SentinelError(Exception):
    """No master from a Sentinel (the backplane's service retries)."""


def _tcp(reactor: Any, host: str, port: int, timeout: float) -> Any:
    make = TCP6ClientEndpoint if ":" in host else TCP4ClientEndpoint
    return make(reactor, host, port, timeout=timeout)


def is_master(role: Any) -> str | None:
    """Check the reply to ROLE: None for a master, else why not."""
    if isinstance(role, list) and role and role[0] == b"master":
        return None
    kind = role[0].decode(errors="replace") if isinstance(role, list) and role else role
    return f"it is a {kind}, not the master (a failover is under way?)"


@implementer(IStreamClientEndpoint)
class SentinelEndpoint:
    def __init__(self, reactor: Any, sentinels: tuple[tuple[str, int], ...], service: str,
                 password: str | None, timeout: float,
                 found: Callable[[str, int], None], failed: Callable[[str], None]) -> None:
        self.reactor = reactor
        self.sentinels = sentinels
        self.service = service
        self.password = password  # the Sentinels' own (sentinel_password)
        self.timeout = timeout
        self._found = found  # (host, port) of the master about to be connected to
        self._failed = failed  # why no Sentinel named a master

    @inlineCallbacks
    def connect(self, factory: Any) -> Any:
        problems: list[str] = []
        for host, port in self.sentinels:
            try:
                master = yield self._ask(host, port)
            except Exception as exc:  # (unreachable, refused, timed out: the next one)
                problems.append(f"{host}:{port}: {exc}")
                continue
            if master is None:
                problems.append(f"{host}:{port}: knows no master of {self.service!r}")
                continue
            self._found(*master)
            proto = yield _tcp(self.reactor, master[0], master[1], self.timeout).connect(factory)
            return proto
        why = "no Sentinel named the master: " + "; ".join(problems)
        self._failed(why)
        raise SentinelError(why)

    def _ask(self, host: str, port: int) -> Deferred[tuple[str, int] | None]:
        """The master's address as one Sentinel sees it (None: unknown service)."""
        answer: Deferred[tuple[str, int] | None] = Deferred()

        def settle(result: Any) -> None:
            if not answer.called:
                if timer.active():
                    timer.cancel()
                proto.close()
                (answer.errback if isinstance(result, Exception | Failure)
                 else answer.callback)(result)

        def ready(proto: RespProtocol) -> None:
            d = proto.command("SENTINEL", "get-master-addr-by-name", self.service)
            d.addCallback(lambda reply: (reply[0].decode(), int(reply[1])) if reply else None)
            d.addBoth(settle)

        def refused(what: str, why: str) -> None:
            settle(SentinelError(f"refused {what}: {why}"))

        hello = [("AUTH", self.password)] if self.password is not None else []
        proto = RespProtocol(ready, lambda _: settle(SentinelError("connection lost")),
                             hello=[*hello, ("PING",)], on_refused=refused,
                             clock=self.reactor)
        timer = self.reactor.callLater(self.timeout, settle, SentinelError("no answer"))
        connecting = connectProtocol(  # type: ignore[no-untyped-call]
            _tcp(self.reactor, host, port, self.timeout), proto)
        connecting.addErrback(settle)
        return answer
