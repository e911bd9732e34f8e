"""Redis Sentinel: an endpoint that asks the Sentinels, in turn, which server is
the master of a service, then connects to it. Each (re)connection asks again,
so after a failover the backplane's reconnect reaches the new master; the
connection's opening commands end with ROLE, and a server that is not (or no
longer) a master is refused, as is a write answered with READONLY (see
resp.py): the next attempt asks the Sentinels again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import CancelledError, Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint, connectProtocol
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.python.failure import Failure
from zope.interface import implementer

from .resp import RedisError, RespProtocol


class SentinelError(Exception):
    """No master from a Sentinel (the backplane's service retries)."""


def _tcp(reactor: Any, host: str, port: int, timeout: float) -> Any:
    make = TCP6ClientEndpoint if ":" in host else TCP4ClientEndpoint
    return make(reactor, host, port, timeout=timeout)


def is_master(role: Any) -> str | None:
    """Check the reply to ROLE: None for a master, else why not. A user the ACL
    does not let run ROLE (it is an admin command) is not checked: a server that
    is no master answers its writes with READONLY, which reconnects."""
    if isinstance(role, list) and role and role[0] == b"master":
        return None
    if isinstance(role, RedisError) and str(role).startswith("NOPERM"):
        return None
    kind = role[0].decode(errors="replace") if isinstance(role, list) and role else role
    return f"it is a {kind}, not the master (a failover is under way?)"


@implementer(IStreamClientEndpoint)
class SentinelEndpoint:
    def __init__(self, reactor: Any, sentinels: tuple[tuple[str, int], ...], service: str,
                 password: str | None, timeout: float,
                 found: Callable[[str, int], None]) -> None:
        self.reactor = reactor
        self.sentinels = list(sentinels)  # the one that answered last comes first
        self.service = service
        self.password = password  # the Sentinels' own (sentinel_password)
        self.timeout = timeout  # per Sentinel asked, and for the connection to the master
        self._found = found  # (host, port) of the master about to be connected to

    @inlineCallbacks
    def connect(self, factory: Any) -> Any:
        problems: list[str] = []
        for host, port in list(self.sentinels):
            try:
                master = yield self._ask(host, port)
            except CancelledError:
                raise  # (the service stops)
            except Exception as exc:  # (unreachable, refused, timed out: the next one)
                problems.append(f"{host}:{port}: {exc}")
                continue
            if master is None:
                problems.append(f"{host}:{port}: knows no master of {self.service!r}")
                continue
            self.sentinels.remove((host, port))  # (a silent one is not asked first again)
            self.sentinels.insert(0, (host, port))
            self._found(*master)
            proto = yield _tcp(self.reactor, master[0], master[1], self.timeout).connect(factory)
            return proto
        raise SentinelError("no Sentinel named the master: " + "; ".join(problems))

    def _ask(self, host: str, port: int) -> Deferred[tuple[str, int] | None]:
        """The master's address as one Sentinel sees it (None: unknown service)."""

        def cancel(_: Any) -> None:  # (stopService: the lookup ends here)
            if timer.active():
                timer.cancel()
            proto.close()

        answer: Deferred[tuple[str, int] | None] = Deferred(cancel)

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
