"""A realm: its sessions, the authorization gate, and dispatch of established
sessions' messages to the broker and dealer.

Every request is checked here, in this order: URI syntax (the realm's
``uri_check`` rule; ``wamp.error.invalid_uri``), then authorization
(``wamp.error.not_authorized``), then handed to broker or dealer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..config.model import Realm as RealmConfig
from .authorizer import Authorizer
from .broker import Broker
from .dealer import Dealer
from .effects import Effect, Send
from .errors import INVALID_URI, NOT_AUTHORIZED, ProtocolViolation, WampError
from .ids import RandomSource
from .messages import (
    Call,
    Error,
    Invocation,
    Message,
    Publish,
    Register,
    Subscribe,
    Unregister,
    Unsubscribe,
    Yield,
)
from .session import Session
from .uri import is_valid_pattern, is_valid_uri

_MATCH_POLICIES = ("exact", "prefix", "wildcard")


class Realm:
    def __init__(self, config: RealmConfig, rng: RandomSource) -> None:
        self.name = config.name
        self.config = config
        self.uri_check = config.uri_check
        self.authorizer = Authorizer(config.roles)
        self.broker = Broker(rng)
        self.dealer = Dealer()
        self.sessions: dict[int, Session] = {}  # session id -> session
        self._handlers: dict[type[Message], Callable[[Session, Any, float], list[Effect]]] = {
            Publish: self._publish,
            Subscribe: self._subscribe,
            Unsubscribe: self._unsubscribe,
            Call: self._call,
            Register: self._register,
            Unregister: self._unregister,
            Yield: self._yield,
            Error: self._error,
        }

    # -- membership -------------------------------------------------------
    def join(self, session: Session) -> None:
        self.sessions[session.session_id] = session

    def leave(self, session: Session) -> list[Effect]:
        self.sessions.pop(session.session_id, None)
        self.broker.session_left(session)
        return self.dealer.session_left(session)

    # -- dispatch ---------------------------------------------------------
    def handle(self, session: Session, msg: Message, now: float) -> list[Effect]:
        handler = self._handlers.get(type(msg))
        if handler is None:
            raise ProtocolViolation(
                f"{type(msg).__name__.upper()} is not a message a client may send to a router"
            )
        return handler(session, msg, now)

    def _check_uri(self, uri: str, what: str) -> None:
        if not is_valid_uri(uri, self.uri_check):
            raise WampError(INVALID_URI, f"invalid {what} URI {uri!r} ({self.uri_check} rules)")

    def _match(self, options: dict[str, Any], uri: str, what: str) -> str:
        match = options.get("match", "exact")
        if match not in _MATCH_POLICIES:
            raise WampError(INVALID_URI, f"unknown match policy {match!r}")
        if not is_valid_pattern(uri, match, self.uri_check):
            raise WampError(
                INVALID_URI, f"invalid {what} URI {uri!r} for match {match!r} ({self.uri_check} rules)"
            )
        return str(match)

    def _authorize(self, session: Session, action: str, uri: str) -> None:
        if not self.authorizer.allowed(session.authrole, action, uri):
            raise WampError(
                NOT_AUTHORIZED,
                f"session {session.session_id} (authrole {session.authrole!r}) "
                f"is not authorized to {action} {uri!r}",
            )

    def _publish(self, session: Session, msg: Publish, now: float) -> list[Effect]:
        self._check_uri(msg.topic, "topic")
        self._authorize(session, "publish", msg.topic)
        return self.broker.publish(session, msg)

    def _subscribe(self, session: Session, msg: Subscribe, now: float) -> list[Effect]:
        match = self._match(msg.options, msg.topic, "topic")
        self._authorize(session, "subscribe", msg.topic)
        return self.broker.subscribe(session, msg, match, now)

    def _unsubscribe(self, session: Session, msg: Unsubscribe, now: float) -> list[Effect]:
        return self.broker.unsubscribe(session, msg)

    def _call(self, session: Session, msg: Call, now: float) -> list[Effect]:
        self._check_uri(msg.procedure, "procedure")
        self._authorize(session, "call", msg.procedure)
        return self.dealer.call(session, msg)

    def _register(self, session: Session, msg: Register, now: float) -> list[Effect]:
        match = self._match(msg.options, msg.procedure, "procedure")
        if msg.procedure.startswith("wamp."):
            raise WampError(
                INVALID_URI, f"procedure {msg.procedure!r}: the wamp. prefix is reserved"
            )
        self._authorize(session, "register", msg.procedure)
        invoke = msg.options.get("invoke", "single")
        if invoke != "single":
            raise WampError(
                "wamp.error.invalid_argument",
                f"invocation policy {invoke!r} is not supported (only 'single')",
            )
        return self.dealer.register(session, msg, match, now)

    def _unregister(self, session: Session, msg: Unregister, now: float) -> list[Effect]:
        return self.dealer.unregister(session, msg)

    def _yield(self, session: Session, msg: Yield, now: float) -> list[Effect]:
        return self.dealer.yield_(session, msg)

    def _error(self, session: Session, msg: Error, now: float) -> list[Effect]:
        if msg.request_type != Invocation.TYPE:
            raise ProtocolViolation(
                f"ERROR for request type {msg.request_type}: a client may only answer INVOCATION"
            )
        return self.dealer.error(session, msg)


def error_reply(session: Session, msg: Message, exc: WampError) -> Send:
    """The ERROR answering request ``msg`` with ``exc``."""
    request = getattr(msg, "request", 0)
    return Send(session.conn, Error(msg.TYPE, request, {}, exc.uri, exc.args_, exc.kwargs))
