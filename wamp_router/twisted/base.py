"""What the WebSocket and RawSocket adapters share: attaching to the driver,
heartbeats (ping when idle, drop when no answer), closing, peer names.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger

from ..config.model import Listener
from ..wire.serializers import Serializer
from .driver import Driver
from .sockets import is_socket, write_now

log = Logger(namespace="wamp_router")

OPENING_TIMEOUT = 30.0  # seconds from TCP connect to WELCOME before a peer is dropped


def peer_name(transport: Any) -> str:
    peer = transport.getPeer()
    host = getattr(peer, "host", None)
    if host is not None:
        return f"{peer.type.lower()}:{host}:{peer.port}"
    return f"unix:{getattr(peer, 'name', '') or 'socket'}"


class TokenBucket:
    """``rate`` events per second with bursts of ``burst`` (0 = the rate)."""

    __slots__ = ("rate", "_burst", "_tokens", "_stamp", "_clock")

    def __init__(self, rate: float, burst: int, clock: Any) -> None:
        self.rate = rate
        self._burst = float(burst or max(1, int(rate)))
        self._tokens = self._burst
        self._stamp = clock.seconds()
        self._clock = clock

    def exceeded(self) -> bool:
        now = self._clock.seconds()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens < 1.0:
            return True
        self._tokens -= 1.0
        return False


class Beat(Enum):
    OPENING = "opening"  # connected, WELCOME not sent yet
    OFF = "off"
    IDLE = "idle"  # waiting for the next interval
    AWAITING_PONG = "awaiting_pong"  # pinged, waiting for any data or a pong


class Heartbeat:
    """One timer per connection. While OPENING it drops a peer that has not
    joined a realm within ``OPENING_TIMEOUT``; then it pings a peer that has been
    silent for ``interval`` s and drops it if it stays silent ``timeout`` s
    more. Any received data counts as a sign of life."""

    __slots__ = ("_owner", "_clock", "_interval", "_timeout", "_call", "state", "alive",
                 "_opened")

    def __init__(self, owner: WampProtocolBase, clock: Any,
                 interval: float, timeout: float) -> None:
        self._owner = owner
        self._clock = clock
        self._interval = interval
        self._timeout = timeout
        self._call: Any = None
        self.state = Beat.OFF
        self.alive = False

    def start(self) -> None:
        self.state = Beat.OPENING
        self._opened = self._clock.seconds()
        self._later(self._opening_delay(OPENING_TIMEOUT))

    def _opening_delay(self, remaining: float) -> float:
        return min(remaining, self._interval) if self._interval > 0 else remaining

    def stop(self) -> None:
        self.state = Beat.OFF
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _later(self, delay: float) -> None:
        self._call = self._clock.callLater(delay, self._tick)

    def _tick(self) -> None:
        state = self.state
        if state is Beat.OPENING:
            if not self._owner.joined():
                remaining = OPENING_TIMEOUT - (self._clock.seconds() - self._opened)
                if remaining > 0:
                    self._later(self._opening_delay(remaining))
                else:
                    self.state = Beat.OFF
                    self._owner.opening_timeout()
                return
            if self._interval <= 0:
                self.state = Beat.OFF
                return
            self.state = state = Beat.IDLE
        if state is Beat.IDLE:
            if self.alive:
                self.alive = False
                self._later(self._interval)
            elif self._owner.send_ping():
                self.state = Beat.AWAITING_PONG
                self._later(self._timeout or self._interval)
            else:
                self.state = Beat.OFF
        elif state is Beat.AWAITING_PONG:
            if self.alive:
                self.alive = False
                self.state = Beat.IDLE
                self._later(self._interval)
            else:
                self.state = Beat.OFF
                self._owner.heartbeat_timeout()


class WampProtocolBase(Protocol):
    """Shared part of the transport adapters (one level below Protocol)."""

    cid = 0
    max_out = 1 << 62
    serializer: Serializer  # set when the transport handshake picks one
    frame_key: Any = None
    transport: Any  # ITransport; typed loosely (zope interfaces confuse mypy)

    def __init__(self, driver: Driver, listener: Listener, clock: Any,
                 factory: WampFactory | None = None) -> None:
        self.driver = driver
        self.listener = listener
        self.clock = clock
        self.owner = factory
        self.heartbeat = Heartbeat(self, clock, listener.heartbeat.interval,
                                   listener.heartbeat.timeout)
        self._closing = False
        self._out: list[bytes] = []
        self._direct = False  # may bypass Twisted's write buffer (real TCP/Unix sockets)
        limits = listener.limits
        self.rate_limit_action: str = limits.rate_limit_action
        self._bucket = TokenBucket(limits.max_message_rate, limits.message_burst, clock)
        self._max_buffer = limits.max_send_buffer

    def rate_limited(self) -> bool:
        """True when this message is over the listener's ``max_message_rate``."""
        return self._bucket.rate != 0 and self._bucket.exceeded()

    def makeConnection(self, transport: Any) -> None:
        self._direct = is_socket(transport)
        super().makeConnection(transport)

    def tune_socket(self) -> None:
        """TCP_NODELAY (a message is sent now, not held back by Nagle's algorithm
        waiting for the peer's delayed ACK: that costs 40 ms stalls) and TCP
        keep-alive. On a TLS listener ``self.transport`` is Twisted's TLS wrapper,
        which forwards both setters to the TCP connection underneath
        (tests/twisted/test_tls_socket.py checks the socket itself)."""
        for name in ("setTcpNoDelay", "setTcpKeepAlive"):
            setter = getattr(self.transport, name, None)
            if setter is not None:
                try:
                    setter(1)
                except OSError:  # Unix sockets and some platforms
                    pass

    def connectionMade(self) -> None:
        self.heartbeat.start()  # the opening timeout, then the heartbeat
        self.tune_socket()
        if not self.over_capacity():
            self.setup()

    def setup(self) -> None:
        """Create the transport's pure protocol state (subclasses)."""
        raise NotImplementedError

    def over_capacity(self) -> bool:
        """Count this connection; True (and refuse it) when over ``max_sessions``."""
        if self.owner is None:
            return False
        self.owner.open_connections += 1
        limit = self.listener.limits.max_sessions
        if limit and self.owner.open_connections > limit:
            log.info("rejected peer={peer} reason=max_sessions limit={limit}",
                     peer=self.peer, limit=limit)
            self.driver.stats.rejected_connections += 1
            self.refuse_overload()
            return True
        return False

    def refuse_overload(self) -> None:
        """Tell the peer the listener is full (transport specific), then close."""
        raise NotImplementedError

    def joined(self) -> bool:
        return bool(self.cid) and self.driver.established(self.cid)

    def opening_timeout(self) -> None:
        log.info("rejected peer={peer} reason=handshake_timeout", peer=self.peer)
        self.transport.abortConnection()

    def write(self, data: bytes) -> None:
        """Queue framed bytes; the driver flushes every queued connection once per
        inbound chunk, so several messages to one peer leave in one send."""
        if self._closing:
            return
        out = self._out
        if not out:
            self.driver.mark_dirty(self)
        out.append(data)

    def flush(self) -> None:
        """Send what is queued (see sockets.write_now)."""
        out = self._out
        if not out:
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        if self._closing:
            return
        t = self.transport
        write_now(t, data, self._direct)
        if self._direct:
            buffered = len(t.dataBuffer) - t.offset + t._tempDataLen
            if buffered > self._max_buffer:
                self.slow_consumer(buffered)

    def queued(self) -> int:
        """Bytes waiting to be sent to this peer."""
        t = self.transport
        if not self._direct or t is None:
            return 0
        return int(len(t.dataBuffer) - t.offset + t._tempDataLen) + sum(map(len, self._out))

    def slow_consumer(self, buffered: int) -> None:
        """The peer does not read fast enough: drop it instead of growing memory."""
        log.info("dropped peer={peer} reason=slow_consumer buffered={buffered}",
                 peer=self.peer, buffered=buffered)
        self.driver.stats.slow_consumers += 1
        self._closing = True
        self.transport.abortConnection()

    def send_ping(self) -> bool:
        """Send a ping if the connection is open; False if it is not."""
        raise NotImplementedError

    def heartbeat_timeout(self) -> None:
        log.info("dropped peer={peer} reason=heartbeat_timeout", peer=self.peer)
        self.transport.abortConnection()

    @property
    def peer(self) -> str:
        return peer_name(self.transport)

    def drop(self, data: bytes = b"") -> None:
        """Write ``data`` (if any) and close the connection."""
        if self._closing:
            return
        if self.driver.cluster is not None:  # (what went to Redis leaves first, as in flush)
            self.driver.cluster.flush()
        self.flush()
        if data:
            self.transport.write(data)
        self._closing = True
        self.transport.loseConnection()

    def connectionLost(self, reason: Any = None) -> None:
        if self.owner is not None:
            self.owner.open_connections -= 1
        self.heartbeat.stop()
        self._closing = True
        if self.cid:
            cid, self.cid = self.cid, 0
            self.driver.detach(cid)


class WampFactory(Factory):
    """Builds the protocol of one listener and counts its open connections."""

    noisy = False
    protocol_class: type[WampProtocolBase] = WampProtocolBase
    http_site: Any = None  # a twisted.web Site sharing the port (long-poll), if any

    def __init__(self, driver: Driver, listener: Listener, clock: Any) -> None:
        self.driver = driver
        self.listener = listener
        self.clock = clock
        self.open_connections = 0

    def buildProtocol(self, addr: Any) -> WampProtocolBase:
        return self.protocol_class(self.driver, self.listener, self.clock, self)
