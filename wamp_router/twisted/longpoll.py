"""WAMP over HTTP long-poll (advanced profile, transport_http_longpoll), as a
twisted.web resource mounted under a websocket listener's ``longpoll.path``.

    POST <path>/open               {"protocols": [...]} -> {"protocol", "transport"}
    POST <path>/<id>/send          one WAMP message       -> 204
    POST <path>/<id>/receive       (parked until a message is queued) -> 200 + one message,
                                   or 204 after ``request_timeout`` with nothing to say
    POST <path>/<id>/close         -> 204

Each long-poll transport is one driver connection: the router sees it like a
WebSocket or RawSocket peer. A transport whose client stops polling for
``session_timeout`` is closed; one whose queue exceeds ``max_queue`` messages
is dropped as a slow consumer.
"""

from __future__ import annotations

import json
import secrets
from collections import deque
from enum import Enum
from typing import Any

from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from ..config.model import Listener, LongPoll
from ..core.session import TransportInfo
from ..wire.serializers import BY_SUBPROTOCOL, SERIALIZERS, Serializer
from .base import TokenBucket, log
from .driver import Driver


class LpState(Enum):
    OPEN = "open"
    CLOSING = "closing"  # the router closed it; the queue is still delivered
    CLOSED = "closed"


class LongPollTransport:
    """One long-poll session: the driver's Connection for it."""

    max_out = 1 << 62

    def __init__(self, resource: LongPollResource, tid: str, serializer: Serializer,
                 peer: str) -> None:
        self.resource = resource
        self.tid = tid
        self.serializer = serializer
        self.frame_key = ("longpoll", serializer.name)
        self.peer = peer
        self.queue: deque[bytes] = deque()
        self.waiting: Any = None  # the parked receive request
        self.waiting_timer: Any = None
        self.state = LpState.OPEN
        self.cid = 0
        limits = resource.listener.limits
        self.rate_limit_action = limits.rate_limit_action
        self.bucket = TokenBucket(limits.max_message_rate, limits.message_burst, resource.clock)
        self.last_seen = resource.clock.seconds()
        self.expiry: Any = resource.clock.callLater(resource.config.session_timeout,
                                                    self._check_expiry)

    # -- the driver's Connection interface ------------------------------------
    def frame(self, payload: bytes) -> bytes:
        return payload

    def write(self, data: bytes) -> None:
        if self.state is LpState.CLOSED:
            return
        self.queue.append(data)
        if len(self.queue) > self.resource.config.max_queue:
            log.info("dropped peer={peer} reason=slow_consumer transport=longpoll queued={n}",
                     peer=self.peer, n=len(self.queue))
            self.resource.driver.stats.slow_consumers += 1
            self.close()
            return
        self._deliver()

    def flush(self) -> None:
        pass

    def queued(self) -> int:
        return sum(map(len, self.queue))

    def rate_limited(self) -> bool:
        return self.bucket.rate != 0 and self.bucket.exceeded()

    def close_after_send(self, reason: str) -> None:
        if self.state is LpState.OPEN:
            self.state = LpState.CLOSING
            if not self.queue:
                self.close()

    # -- HTTP side --------------------------------------------------------------
    def receive(self, request: Any) -> Any:
        self.last_seen = self.resource.clock.seconds()
        if self.waiting is not None:  # a newer poll replaces an older one
            self._answer(self.waiting, None)
        if self.queue:
            return self._body(request, self.queue.popleft())
        if self.state is not LpState.OPEN:
            self.close()
            request.setResponseCode(410)
            return b"the transport is closed\n"
        self.waiting = request
        request.notifyFinish().addBoth(lambda _: self._forget(request))
        self.waiting_timer = self.resource.clock.callLater(
            self.resource.config.request_timeout, self._poll_timeout, request)
        return NOT_DONE_YET

    def send(self, body: bytes) -> None:
        self.last_seen = self.resource.clock.seconds()
        self.resource.driver.received(self.cid, body)
        self.resource.driver.flush()

    def _body(self, request: Any, data: bytes) -> bytes:
        ctype = b"application/json" if self.serializer.name == "json" else b"application/octet-stream"
        request.setHeader(b"content-type", ctype)
        if not self.queue and self.state is LpState.CLOSING:
            self.resource.clock.callLater(0, self.close)
        return data

    def _deliver(self) -> None:
        request = self.waiting
        if request is not None and self.queue:
            self._answer(request, self.queue.popleft())

    def _answer(self, request: Any, data: bytes | None) -> None:
        self._forget(request)
        if data is None:
            request.setResponseCode(204)
        else:
            request.write(self._body(request, data))
        request.finish()

    def _forget(self, request: Any) -> None:
        if self.waiting is request:
            self.waiting = None
            if self.waiting_timer is not None and self.waiting_timer.active():
                self.waiting_timer.cancel()
            self.waiting_timer = None

    def _poll_timeout(self, request: Any) -> None:
        self.waiting_timer = None
        if self.waiting is request:
            self._answer(request, None)

    def _check_expiry(self) -> None:
        idle = self.resource.clock.seconds() - self.last_seen
        timeout = self.resource.config.session_timeout
        if self.waiting is None and idle >= timeout:
            log.info("dropped peer={peer} reason=longpoll_session_timeout", peer=self.peer)
            self.close()
            return
        self.expiry = self.resource.clock.callLater(max(timeout - idle, 1.0), self._check_expiry)

    def close(self) -> None:
        if self.state is LpState.CLOSED:
            return
        self.state = LpState.CLOSED
        if self.waiting is not None:
            self._answer(self.waiting, None)
        if self.expiry is not None and self.expiry.active():
            self.expiry.cancel()
        self.resource.transports.pop(self.tid, None)
        cid, self.cid = self.cid, 0
        if cid:
            self.resource.driver.detach(cid)


class LongPollResource(Resource):
    isLeaf = True

    def __init__(self, driver: Driver, listener: Listener, clock: Any) -> None:
        super().__init__()
        self.driver = driver
        self.listener = listener
        assert listener.longpoll is not None
        self.config: LongPoll = listener.longpoll
        self.clock = clock
        self.transports: dict[str, LongPollTransport] = {}

    def reconfigure(self, listener: Listener) -> None:
        """A reload: new timeouts and limits (existing transports go on)."""
        if listener.longpoll is not None:
            self.listener = listener
            self.config = listener.longpoll

    def render_GET(self, request: Any) -> bytes:
        request.setResponseCode(405)
        request.setHeader(b"allow", b"POST")
        return b"the WAMP long-poll transport takes POST requests\n"

    def render_POST(self, request: Any) -> Any:
        parts = [p.decode("utf-8", "replace") for p in request.postpath if p]
        body = request.content.read(self.listener.max_message_size + 1)
        if len(body) > self.listener.max_message_size:
            return self._fail(request, 413, "request body larger than max_message_size")
        if parts == ["open"]:
            return self._open(request, body)
        if len(parts) == 2 and parts[1] in ("send", "receive", "close"):
            transport = self.transports.get(parts[0])
            if transport is None:
                return self._fail(request, 404, f"no long-poll transport {parts[0]!r}")
            return self._session_request(request, transport, parts[1], body)
        return self._fail(request, 404, "unknown long-poll request path")

    def _session_request(self, request: Any, transport: LongPollTransport, action: str,
                         body: bytes) -> Any:
        if action == "receive":
            return transport.receive(request)
        if action == "send":
            if transport.state is not LpState.OPEN:
                return self._fail(request, 410, "the transport is closed")
            transport.send(body)
        else:
            transport.close()
        request.setResponseCode(204)  # "no content" (the spec's wording; see README)
        return b""

    def _open(self, request: Any, body: bytes) -> bytes:
        try:
            offered = json.loads(body or b"{}").get("protocols")
        except (ValueError, AttributeError):
            return self._fail(request, 400, "the open request body must be a JSON object")
        if not isinstance(offered, list):
            return self._fail(request, 400, 'the open request needs a "protocols" list')
        supported = [SERIALIZERS[name].subprotocol for name in self.listener.serializers]
        chosen = next((p for p in offered if p in supported), None)
        if chosen is None:
            return self._fail(request, 400, f"no supported protocol in {offered}; supported: "
                              f"{', '.join(supported)}")
        tid = secrets.token_urlsafe(12)
        peer = f"longpoll:{request.getClientAddress().host}"
        transport = LongPollTransport(self, tid, BY_SUBPROTOCOL[chosen], peer)
        info = TransportInfo("longpoll", peer, self.listener, transport.serializer.name)
        transport.cid = self.driver.attach(transport, info)
        self.transports[tid] = transport
        request.setHeader(b"content-type", b"application/json")
        return json.dumps({"protocol": chosen, "transport": tid}).encode()

    @staticmethod
    def _fail(request: Any, status: int, message: str) -> bytes:
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return message.encode() + b"\n"
