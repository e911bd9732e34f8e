"""The HTTP bridge: publish and call from services that only speak HTTP, and
webhook receivers that turn any incoming POST into an event.

    POST <path>/publish   {"topic", "args"?, "kwargs"?, "options"?}      -> 200 {"publication"}
    POST <path>/call      {"procedure", "args"?, "kwargs"?, "timeout"?}  -> 200 {"args", "kwargs"}
    POST <path>/webhook/<name>  any body  -> 202, published on the webhook's topic

Requests authenticate with ``Authorization: Bearer <token>`` (and, for tokens
with an ``hmac_secret``, ``X-Timestamp`` + ``X-Signature``). Each principal is
one internal session of the bridge's realm, authorized like any session of its
role. Errors answer with an HTTP status and a JSON body carrying the WAMP error
URI: ``{"error": uri, "args": [...], "kwargs": {...}}``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import orjson
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from ..config.model import Bridge, Listener
from ..core.messages import Call, Publish
from ..core.session import State, TransportInfo
from ..wire.serializers import SERIALIZERS
from .base import TokenBucket, log
from .driver import Driver

STATUS_BY_URI = {
    "wamp.error.not_authorized": 403,
    "wamp.error.authorization_failed": 403,
    "wamp.error.no_such_procedure": 404,
    "wamp.error.no_such_realm": 404,
    "wamp.error.invalid_uri": 400,
    "wamp.error.invalid_argument": 400,
    "wamp.error.protocol_violation": 400,
    "wamp.error.timeout": 504,
    "wamp.error.no_available_callee": 503,
    "wamp.error.canceled": 502,
    "wamp.error.payload_size_exceeded": 413,
    "router.error.rate_limit_exceeded": 429,
}


class BridgeSession:
    """One principal's internal session: the driver's Connection for it. What
    the router sends it (PUBLISHED, RESULT, ERROR) completes HTTP requests."""

    serializer = SERIALIZERS["json"]
    frame_key = ("bridge",)
    max_out = 1 << 62
    rate_limit_action = "error"

    def __init__(self, driver: Driver, listener: Listener, realm: str, authid: str,
                 role: str, max_rate: float, clock: Any) -> None:
        self.driver = driver
        self.listener = listener
        self.realm, self.authid, self.role = realm, authid, role
        self.pending: dict[int, Any] = {}  # request id -> HTTP request
        self.next_request = 0
        self.cid = 0
        self.bucket = TokenBucket(max_rate, 0, clock)

    def frame(self, payload: bytes) -> bytes:
        return payload

    def flush(self) -> None:
        pass

    def queued(self) -> int:
        return 0

    def rate_limited(self) -> bool:
        return self.bucket.rate != 0 and self.bucket.exceeded()

    def close_after_send(self, reason: str) -> None:
        cid, self.cid = self.cid, 0
        if cid:
            self.driver.detach(cid)

    def ensure_joined(self) -> bool:
        if self.cid and self.driver.established(self.cid):
            return True
        if self.cid:
            self.driver.detach(self.cid)
        info = TransportInfo("http-bridge", f"bridge:{self.authid}", self.listener, "json")
        self.cid = self.driver.attach(self, info)
        self.driver.apply(self.driver.router.join_internal(
            self.cid, self.realm, self.authid, self.role, "bridge"))
        session = self.driver.router.session(self.cid)
        return session is not None and session.state is State.ESTABLISHED

    def submit(self, request: Any, msg: Any) -> None:
        self.pending[msg.request] = request
        request.notifyFinish().addErrback(lambda _: self.pending.pop(msg.request, None))
        self.driver.inject(self.cid, msg)

    def new_request_id(self) -> int:
        self.next_request += 1
        return self.next_request

    def write(self, data: bytes) -> None:
        msg = orjson.loads(data)
        code = msg[0]
        if code == 17:  # PUBLISHED
            self._finish(msg[1], 200, {"publication": msg[2]})
        elif code == 50:  # RESULT
            if msg[2].get("progress"):
                return
            self._finish(msg[1], 200, {"args": msg[3] if len(msg) > 3 else [],
                                       "kwargs": msg[4] if len(msg) > 4 else {}})
        elif code == 8:  # ERROR
            body = {"error": msg[4], "args": msg[5] if len(msg) > 5 else [],
                    "kwargs": msg[6] if len(msg) > 6 else {}}
            self._finish(msg[2], STATUS_BY_URI.get(msg[4], 500), body)

    def _finish(self, request_id: int, status: int, body: dict[str, Any]) -> None:
        request = self.pending.pop(request_id, None)
        if request is None:
            return
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"application/json")
        request.write(json.dumps(body).encode())
        request.finish()


def _json_error(request: Any, status: int, uri: str, message: str) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json")
    return json.dumps({"error": uri, "args": [message], "kwargs": {}}).encode() + b"\n"


class BridgeResource(Resource):
    isLeaf = True

    def __init__(self, driver: Driver, listener: Listener, clock: Any) -> None:
        super().__init__()
        assert listener.bridge is not None
        self.config: Bridge = listener.bridge
        self.driver = driver
        self.listener = listener
        self.clock = clock
        self.sessions: dict[str, BridgeSession] = {}

    def reconfigure(self, listener: Listener) -> None:
        """A reload: new tokens, webhooks and limits for new requests."""
        if listener.bridge is not None:
            self.config = listener.bridge
            self.listener = listener

    def _session(self, key: str, authid: str, role: str) -> BridgeSession:
        session = self.sessions.get(key)
        if session is None:
            session = BridgeSession(self.driver, self.listener, self.config.realm, authid, role,
                                    self.config.max_rate, self.clock)
            self.sessions[key] = session
        return session

    def render_POST(self, request: Any) -> Any:
        body = request.content.read(self.listener.max_message_size + 1)
        if len(body) > self.listener.max_message_size:
            return _json_error(request, 413, "wamp.error.payload_size_exceeded",
                               f"request body larger than {self.listener.max_message_size} bytes")
        parts = [p.decode("utf-8", "replace") for p in request.postpath if p]
        if len(parts) == 2 and parts[0] == "webhook":
            return self._webhook(request, parts[1], body)
        if parts not in (["publish"], ["call"]):
            return _json_error(request, 404, "wamp.error.invalid_argument",
                               "unknown bridge path (publish, call or webhook/<name>)")
        principal = self._authenticate(request, body)
        if isinstance(principal, bytes):
            return principal
        session = self._session("token:" + principal.authid, principal.authid, principal.role)
        return self._request(request, session, parts[0], body)

    def render_GET(self, request: Any) -> bytes:
        request.setHeader(b"allow", b"POST")
        return _json_error(request, 405, "wamp.error.invalid_argument", "use POST")

    def _authenticate(self, request: Any, body: bytes) -> Any:
        header = (request.getHeader(b"authorization") or b"").decode("latin-1")
        given = header[7:] if header.lower().startswith("bearer ") else ""
        for principal in self.config.tokens:
            if given and hmac.compare_digest(given.encode(), principal.token.encode()):
                if principal.hmac_secret is not None:
                    problem = self._check_signature(request, body, principal.hmac_secret)
                    if problem:
                        return self._denied(request, problem)
                return principal
        return self._denied(request, "missing or unknown bearer token")

    def _check_signature(self, request: Any, body: bytes, secret: str) -> str | None:
        stamp = (request.getHeader(b"x-timestamp") or b"").decode("latin-1")
        signature = (request.getHeader(b"x-signature") or b"").decode("latin-1")
        try:
            age = abs(self.clock.seconds() - float(stamp))
        except ValueError:
            return "missing or invalid X-Timestamp"
        if age > self.config.max_skew:
            return "X-Timestamp too old or in the future (replay protection)"
        expected = hmac.new(secret.encode(), stamp.encode() + b"." + body,
                            hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature.lower().encode(), expected.encode()):
            return "invalid X-Signature"
        return None

    def _denied(self, request: Any, why: str) -> bytes:
        log.info("rejected peer=bridge:{host} reason=bridge_authentication detail={why!r}",
                 host=request.getClientAddress().host, why=why)
        request.setHeader(b"www-authenticate", b"Bearer")
        return _json_error(request, 401, "wamp.error.not_authorized", why)

    def _request(self, request: Any, session: BridgeSession, action: str, body: bytes) -> Any:
        try:
            data = json.loads(body)
        except ValueError:
            return _json_error(request, 400, "wamp.error.invalid_argument",
                               "the request body must be JSON")
        msg = self._message(session, action, data)
        if isinstance(msg, str):
            return _json_error(request, 400, "wamp.error.invalid_argument", msg)
        if not session.ensure_joined():
            return _json_error(request, 503, "wamp.error.no_such_realm",
                               f"cannot join realm {self.config.realm!r}")
        session.submit(request, msg)
        return NOT_DONE_YET

    @staticmethod
    def _message(session: BridgeSession, action: str, data: Any) -> Any:
        if not isinstance(data, dict):
            return "the request body must be a JSON object"
        uri_key = "topic" if action == "publish" else "procedure"
        uri, args, kwargs = data.get(uri_key), data.get("args"), data.get("kwargs")
        if not isinstance(uri, str):
            return f'"{uri_key}" (a string) is required'
        if args is not None and not isinstance(args, list):
            return '"args" must be a list'
        if kwargs is not None and not isinstance(kwargs, dict):
            return '"kwargs" must be an object'
        request_id = session.new_request_id()
        if action == "publish":
            options = data.get("options") or {}
            if not isinstance(options, dict):
                return '"options" must be an object'
            return Publish(request_id, {**options, "acknowledge": True}, uri, args, kwargs)
        timeout = data.get("timeout", 0)
        if type(timeout) is not int or timeout < 0:
            return '"timeout" must be an integer number of milliseconds'
        return Call(request_id, {"timeout": timeout} if timeout else {}, uri, args, kwargs)

    def _webhook(self, request: Any, name: str, body: bytes) -> Any:
        hook = next((w for w in self.config.webhooks if w.name == name), None)
        if hook is None:
            return _json_error(request, 404, "wamp.error.invalid_argument",
                               f"no webhook {name!r}")
        if hook.token is not None:
            given = (request.getHeader(b"x-webhook-token") or b"").decode("latin-1")
            if not hmac.compare_digest(given.encode(), hook.token.encode()):
                return self._denied(request, f"webhook {name!r}: wrong or missing X-Webhook-Token")
        session = self._session("webhook:" + name, hook.authid, hook.role)
        if not session.ensure_joined():
            return _json_error(request, 503, "wamp.error.no_such_realm",
                               f"cannot join realm {self.config.realm!r}")
        text = body.decode("utf-8", "replace")
        try:
            payload: Any = json.loads(text) if text else None
        except ValueError:
            payload = text
        headers = {k.decode("latin-1").lower(): v[0].decode("latin-1")
                   for k, v in request.requestHeaders.getAllRawHeaders()}
        msg = Publish(session.new_request_id(), {"acknowledge": True}, hook.topic, [payload],
                      {"headers": headers, "method": request.method.decode()})
        session.submit(request, msg)
        return NOT_DONE_YET
