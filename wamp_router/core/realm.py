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
    Cancel,
    Error,
    Invocation,
    Message,
    Publish,
    Register,
    Result,
    Subscribe,
    Unregister,
    Unsubscribe,
    Yield,
)
from .meta import Meta, session_info
from .session import Session
from .stats import Stats
from .uri import is_valid_pattern, is_valid_uri

KillSession = Callable[[Session, str, "str | None"], list[Effect]]

_MATCH_POLICIES = ("exact", "prefix", "wildcard")


class Realm:
    def __init__(self, config: RealmConfig, rng: RandomSource, stats: Stats | None = None) -> None:
        self.name = config.name
        self.config = config
        self.uri_check = config.uri_check
        self.authorizer = Authorizer(config.roles)
        self.roles = {role.name: role for role in config.roles}
        self.broker = Broker(rng, self.emit, self._may_receive)
        self.dealer = Dealer(rng, self.emit, stats)
        self.meta = Meta(self)
        self.sessions: dict[int, Session] = {}  # session id -> session
        self.kill_session: KillSession | None = None  # set by the router
        self._valid_uris: dict[str, bool] = {}  # URI syntax cache (bounded)
        self._handlers: dict[type[Message], Callable[[Session, Any, float], list[Effect]]] = {
            Publish: self._publish,
            Subscribe: self._subscribe,
            Unsubscribe: self._unsubscribe,
            Call: self._call,
            Cancel: self._cancel,
            Register: self._register,
            Unregister: self._unregister,
            Yield: self._yield,
            Error: self._error,
        }

    def reconfigure(self, config: RealmConfig) -> None:
        """New roles, permissions and limits from a reloaded config."""
        self.config = config
        self.uri_check = config.uri_check
        self.authorizer = Authorizer(config.roles)
        self.roles = {role.name: role for role in config.roles}
        self._valid_uris.clear()

    # -- membership -------------------------------------------------------
    def emit(self, topic: str, args: list[Any]) -> list[Effect]:
        """Publish a meta event (no-op when nobody subscribed to anything matching)."""
        return self.broker.publish_internal(topic, args)

    def join(self, session: Session) -> list[Effect]:
        self.sessions[session.session_id] = session
        return self.emit("wamp.session.on_join", [session_info(session)])

    def leave(self, session: Session) -> list[Effect]:
        self.sessions.pop(session.session_id, None)
        effects = self.broker.session_left(session)
        effects.extend(self.dealer.session_left(session))
        effects.extend(self._testaments(session))
        effects.extend(self.emit("wamp.session.on_leave",
                                 [session.session_id, session.authid, session.authrole]))
        return effects

    def _testaments(self, session: Session) -> list[Effect]:
        if session.testaments is None:
            return []
        effects: list[Effect] = []
        for scope in ("detached", "destroyed"):
            for topic, args, kwargs, options in session.testaments[scope]:
                msg = Publish(0, options, topic, args, kwargs)
                try:
                    effects.extend(self.broker.publish(session, msg, self._disclose_publisher(
                        session, options)))
                except WampError:  # options were checked when added; never block a leave
                    continue
        session.testaments = None
        return effects

    def kill(self, target: Session, reason: str, message: str | None) -> list[Effect]:
        assert self.kill_session is not None
        return self.kill_session(target, reason, message)

    def next_deadline(self) -> float | None:
        return self.dealer.next_deadline()

    def on_timer(self, now: float) -> list[Effect]:
        return self.dealer.on_timer(now)

    # -- dispatch ---------------------------------------------------------
    def handle(self, session: Session, msg: Message, now: float) -> list[Effect]:
        handler = self._handlers.get(type(msg))
        if handler is None:
            raise ProtocolViolation(
                f"{type(msg).__name__.upper()} is not a message a client may send to a router"
            )
        return handler(session, msg, now)

    def _check_uri(self, uri: str, what: str) -> None:
        valid = self._valid_uris.get(uri)
        if valid is None:
            valid = is_valid_uri(uri, self.uri_check)
            if len(self._valid_uris) >= 10_000:
                self._valid_uris.clear()
            self._valid_uris[uri] = valid
        if not valid:
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

    def check_publish(self, session: Session, topic: str) -> None:
        self._check_uri(topic, "topic")
        if topic.startswith("wamp."):
            raise WampError(INVALID_URI, f"topic {topic!r}: the wamp. prefix is reserved for "
                            "the router's own events")
        self._authorize(session, "publish", topic)

    def _disclose_publisher(self, session: Session, options: dict[str, Any]) -> bool:
        role = self.roles.get(session.authrole)
        forced = role.disclose_publisher if role is not None else None
        return forced if forced is not None else options.get("disclose_me") is True

    def _publish(self, session: Session, msg: Publish, now: float) -> list[Effect]:
        self.check_publish(session, msg.topic)
        disclose = self._disclose_publisher(session, msg.options)
        return self.broker.publish(session, msg, disclose)

    def _may_receive(self, session: Session, topic: str) -> bool:
        return self.authorizer.allowed(session.authrole, "subscribe", topic)

    def _subscribe(self, session: Session, msg: Subscribe, now: float) -> list[Effect]:
        match = self._match(msg.options, msg.topic, "topic")
        self._authorize(session, "subscribe", msg.topic)
        return self.broker.subscribe(session, msg, match, now)

    def _unsubscribe(self, session: Session, msg: Unsubscribe, now: float) -> list[Effect]:
        return self.broker.unsubscribe(session, msg)

    def _call(self, session: Session, msg: Call, now: float) -> list[Effect]:
        self._check_uri(msg.procedure, "procedure")
        self._authorize(session, "call", msg.procedure)
        handler = self.meta.handlers.get(msg.procedure)
        if handler is not None:
            args, effects = handler(session, msg.args or [], msg.kwargs or {})
            return [Send(session.conn, Result(msg.request, {}, args)), *effects]
        role = self.roles.get(session.authrole)
        forced = role.disclose_caller if role is not None else None
        disclose = forced if forced is not None else msg.options.get("disclose_me") is True
        return self.dealer.call(session, msg, now, disclose)

    def _cancel(self, session: Session, msg: Cancel, now: float) -> list[Effect]:
        return self.dealer.cancel(session, msg)

    def _register(self, session: Session, msg: Register, now: float) -> list[Effect]:
        match = self._match(msg.options, msg.procedure, "procedure")
        if msg.procedure.startswith("wamp."):
            raise WampError(
                INVALID_URI, f"procedure {msg.procedure!r}: the wamp. prefix is reserved"
            )
        self._authorize(session, "register", msg.procedure)
        return self.dealer.register(session, msg, match, now)

    def _unregister(self, session: Session, msg: Unregister, now: float) -> list[Effect]:
        return self.dealer.unregister(session, msg)

    def _yield(self, session: Session, msg: Yield, now: float) -> list[Effect]:
        return self.dealer.yield_(session, msg, now)

    def _error(self, session: Session, msg: Error, now: float) -> list[Effect]:
        if msg.request_type != Invocation.TYPE:
            raise ProtocolViolation(
                f"ERROR for request type {msg.request_type}: a client may only answer INVOCATION"
            )
        return self.dealer.error(session, msg, now)


def error_reply(session: Session, msg: Message, exc: WampError) -> Send:
    """The ERROR answering request ``msg`` with ``exc``."""
    request = getattr(msg, "request", 0)
    return Send(session.conn, Error(msg.TYPE, request, {}, exc.uri, exc.args_, exc.kwargs))
