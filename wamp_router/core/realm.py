"""A realm: its sessions, the authorization gate, and dispatch of established
sessions' messages to the broker and dealer.

Every request is checked here, in this order: URI syntax (the realm's
``uri_check`` rule; ``wamp.error.invalid_uri``), then authorization
(``wamp.error.not_authorized``), then handed to broker or dealer.
Authorization: the static permissions of the session's role, then, for what
they do not allow, the realm's dynamic authorizer if it has one (the request
waits for its answer; see ``auth/authorizer.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..config.model import Realm as RealmConfig
from .auth.authorizer import (
    INVALIDATE,
    DynamicAuthorizer,
    Proceed,
    SessionAuthz,
    denied,
    release,
)
from .authorizer import Authorizer, Decision
from .broker import Broker
from .dealer import Dealer
from .effects import Effect, Hold, Send
from .errors import INVALID_ARGUMENT, INVALID_URI, ProtocolViolation, WampError
from .ids import RandomSource, global_id
from .messages import (
    Call,
    Cancel,
    Error,
    Invocation,
    Message,
    Publish,
    Published,
    Register,
    Result,
    Subscribe,
    Unregister,
    Unsubscribe,
    Yield,
)
from .meta import Meta, session_info
from .session import Session, State, TransportInfo
from .stats import Stats
from .uri import is_valid_pattern, is_valid_uri

if TYPE_CHECKING:
    from .remote import RemoteRpc
    from .sync.engine import OpenStore, SyncEngine

KillSession = Callable[[Session, str, "str | None"], list[Effect]]

_MATCH_POLICIES = ("exact", "prefix", "wildcard")
# options that are true or false (anything else is refused, not guessed at)
_PUBLISH_FLAGS = ("acknowledge", "exclude_me", "retain", "disclose_me")
_SUBSCRIBE_FLAGS = ("get_retained",)
_CALL_FLAGS = ("receive_progress", "disclose_me", "progress")
_REGISTER_FLAGS = ("disclose_caller", "forward_timeout")


_NOT_FLAGS = (int, float, str, bytes, list, dict)  # (bool is an int: checked first)


def _check_flags(options: dict[str, Any], names: tuple[str, ...]) -> None:
    """Refuse a number, string, list or map where true or false belongs; nil and
    "undefined" (CBOR, or msgpack's extension for it: wampy.js sends them for
    options it was not given) count as not given."""
    if options:
        for name in names:
            value = options.get(name)
            if type(value) is not bool and isinstance(value, _NOT_FLAGS):
                raise WampError(INVALID_ARGUMENT, f"option {name!r} must be true or false, "
                                f"found {type(value).__name__} {value!r:.40}")


class Realm:
    def __init__(self, config: RealmConfig, rng: RandomSource, stats: Stats | None = None,
                 open_store: OpenStore | None = None) -> None:
        self.name = config.name
        self.config = config
        self._rng = rng
        self.uri_check = config.uri_check
        self.authorizer = Authorizer(config.roles)
        self.dynamic = self._dynamic(config)
        self.roles = {role.name: role for role in config.roles}
        self.broker = Broker(rng, self.emit, self._may_receive)
        self.dealer = Dealer(rng, self.emit, stats)
        self.meta = Meta(self)
        self.sync: SyncEngine | None = None
        self.remote: RemoteRpc | None = None  # calls across cluster nodes (set by the router)
        self._now = 0.0  # time of the last message handled (testaments run at leave)
        if config.sync is not None and config.sync.domains:
            from .sync.engine import SyncEngine, memory_store

            self.sync = SyncEngine(config.sync, open_store or memory_store(rng), rng,
                                   self.broker.publish_local, config.name)
            self.sync.gate = self._gate
            self.sync.allowed_now = lambda s, action, uri: self._allowed_now(s, action, uri)[0]
            self.sync.subscribed = lambda: [sub.topic for sub in self.broker.subscriptions()
                                            if sub.match == "exact"]
            self.broker.snapshot = self.sync.snapshot
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
        """New roles, permissions and limits from a reloaded config. Data-sync
        domains stay as they were started (changing a store needs a restart)."""
        self.config = config
        self.uri_check = config.uri_check
        self.authorizer = Authorizer(config.roles)
        self.dynamic = self._dynamic(config)
        self.roles = {role.name: role for role in config.roles}
        self._valid_uris.clear()

    def _dynamic(self, config: RealmConfig) -> DynamicAuthorizer | None:
        if config.authorizer is None:
            return None
        return DynamicAuthorizer(self, config.authorizer, config.authorizer_timeout)

    # -- membership -------------------------------------------------------
    def emit(self, topic: str, args: list[Any]) -> list[Effect]:
        """Publish a meta event (no-op when nobody subscribed to anything matching)."""
        return self.broker.publish_internal(topic, args)

    def join(self, session: Session) -> list[Effect]:
        self.sessions[session.session_id] = session
        effects = self.emit("wamp.session.on_join", [session_info(session)])
        if self.remote is not None:
            effects.append(self.remote.advertise("sess+", session_info(session)))
        return effects

    def leave(self, session: Session) -> list[Effect]:
        self.sessions.pop(session.session_id, None)
        effects = release(session) if session.authz is not None else []
        gone: list[tuple[str, str]] = []
        if self.remote is not None and session.registrations:
            effects.extend(self._advertise_leave(session))
            gone = [(r.procedure, r.match) for r in map(self.dealer.registration,
                                                         session.registrations) if r]
        effects.extend(self.broker.session_left(session))
        effects.extend(self.dealer.session_left(session))
        for procedure, match in gone:
            if self.remote is not None and self.dealer.get_exact(procedure, match) is None:
                self.remote.local_gone(procedure, match, self._now)
        effects.extend(self._testaments(session))
        effects.extend(self.emit("wamp.session.on_leave",
                                 [session.session_id, session.authid, session.authrole]))
        if self.remote is not None:
            effects.append(self.remote.advertise("sess-", {"session": session.session_id}))
        return effects

    def orphan_left(self, info: dict[str, Any],
                    testaments: dict[str, Any] | None) -> list[Effect]:
        """A session of a node that died: its testaments and its on_leave event, sent
        by the node that declared the death (authorized now, as at a normal leave)."""
        stand_in = Session(0, TransportInfo("cluster", "", None), State.CLOSED,
                           info["session"], None, self.name, info.get("authid", ""),
                           info.get("authrole", ""))
        effects: list[Effect] = []
        if testaments:
            stand_in.testaments = {scope: [tuple(t) for t in items]
                                   for scope, items in testaments.items()}
            effects.extend(self._testaments(stand_in))
        effects.extend(self.emit("wamp.session.on_leave",
                                 [stand_in.session_id, stand_in.authid, stand_in.authrole]))
        return effects

    def testaments_changed(self, session: Session) -> list[Effect]:
        """A session added or flushed testaments: the cluster keeps a copy, fired by
        another node if this one dies."""
        if self.remote is None:
            return []
        saved = {scope: [list(t) for t in items]
                 for scope, items in (session.testaments or {}).items()}
        return [self.remote.advertise("test", {"session": session.session_id,
                                               "testaments": saved})]

    def _testaments(self, session: Session) -> list[Effect]:
        if session.testaments is None:
            return []
        effects: list[Effect] = []
        for scope in ("detached", "destroyed"):
            for topic, args, kwargs, options in session.testaments[scope]:
                msg = Publish(0, options, topic, args, kwargs)
                try:
                    allowed, forced = self._allowed_now(session, "publish", topic)
                    if self.sync is not None and self.sync.managed(topic):
                        if allowed:  # a record write: authorized again when it fires
                            effects.extend(self.sync.testament(session, topic, kwargs,
                                                               self._now))
                        continue
                    effects.extend(self.broker.publish(session, msg, self._disclose_publisher(
                        session, options, forced)))
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
        self._now = now
        authz: SessionAuthz | None = session.authz
        if authz is not None and authz.request and type(msg) is not Yield and (
                type(msg) is not Error):
            return authz.hold(msg)  # behind a request waiting for the dynamic authorizer
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

    # -- the authorization gate ----------------------------------------------
    def _gate(self, session: Session, msg: Any, action: str, uri: str, now: float,
              proceed: Proceed, match: str = "exact") -> list[Effect]:
        """Static permissions first; what they do not allow goes to the dynamic
        authorizer (the request waits for its answer), or is refused."""
        allowed, disclose = self.authorizer.check(session.authrole, action, uri)
        if allowed:
            return proceed(session, msg, now, disclose)
        if self.dynamic is None:
            raise denied(session, action, uri)
        return self.dynamic.authorize(session, msg, action, uri, match, now, proceed)

    def _allowed_now(self, session: Session, action: str, uri: str) -> Decision:
        """A decision that cannot wait: static, else a cached dynamic one."""
        decision = self.authorizer.check(session.authrole, action, uri)
        authz = session.authz
        if not decision[0] and authz is not None:
            decision = authz.cache.get((action, uri, "exact"), decision)
        return decision

    def check_publish(self, session: Session, topic: str) -> None:
        """May ``session`` publish to ``topic`` now (testaments)? Raises WampError."""
        self._check_publish_uri(topic)
        if not self._allowed_now(session, "publish", topic)[0]:
            raise denied(session, "publish", topic)

    def _check_publish_uri(self, topic: str) -> None:
        self._check_uri(topic, "topic")
        if topic.startswith("wamp."):
            raise WampError(INVALID_URI, f"topic {topic!r}: the wamp. prefix is reserved for "
                            "the router's own events")

    def _disclose_publisher(self, session: Session, options: dict[str, Any],
                            forced: bool | None = None) -> bool:
        if forced is None:
            role = self.roles.get(session.authrole)
            forced = role.disclose_publisher if role is not None else None
        return forced if forced is not None else options.get("disclose_me") is True

    def _publish(self, session: Session, msg: Publish, now: float) -> list[Effect]:
        if msg.topic == INVALIDATE:
            return self._invalidate(session, msg)
        self._check_publish_uri(msg.topic)
        _check_flags(msg.options, _PUBLISH_FLAGS)
        return self._gate(session, msg, "publish", msg.topic, now, self._publish_ok)

    def _publish_ok(self, session: Session, msg: Publish, now: float,
                    forced: bool | None) -> list[Effect]:
        disclose = self._disclose_publisher(session, msg.options, forced)
        if self.sync is not None and self.sync.managed(msg.topic):
            identity = None
            if disclose:
                identity = {"publisher": session.session_id, "publisher_authid": session.authid,
                            "publisher_authrole": session.authrole}
            return self.sync.publish(session, msg, identity, now)
        return self.broker.publish(session, msg, disclose)

    def _invalidate(self, session: Session, msg: Publish) -> list[Effect]:
        """``wamp.authorizer.invalidate``: drop cached dynamic decisions. Only a role
        with a static publish permission on that topic may do it."""
        if not self.authorizer.allowed(session.authrole, "publish", INVALIDATE):
            raise denied(session, "publish", INVALIDATE)
        if self.dynamic is not None:
            self.dynamic.invalidate(msg.kwargs or {})
        if msg.options.get("acknowledge"):
            return [Send(session.conn, Published(msg.request, global_id(self._rng)))]
        return []

    def _may_receive(self, session: Session, topic: str, sub: Any) -> bool:
        if self.authorizer.allowed(session.authrole, "subscribe", topic):
            return True
        authz = session.authz  # a subscription the dynamic authorizer allowed
        return authz is not None and sub.id in authz.subscriptions

    def _subscribe(self, session: Session, msg: Subscribe, now: float) -> list[Effect]:
        match = self._match(msg.options, msg.topic, "topic")
        _check_flags(msg.options, _SUBSCRIBE_FLAGS)
        return self._gate(session, msg, "subscribe", msg.topic, now, self._subscribe_ok, match)

    def _subscribe_ok(self, session: Session, msg: Subscribe, now: float,
                      forced: bool | None) -> list[Effect]:
        return self.broker.subscribe(session, msg, msg.options.get("match", "exact"), now)

    def _unsubscribe(self, session: Session, msg: Unsubscribe, now: float) -> list[Effect]:
        if session.authz is not None:
            session.authz.subscriptions.discard(msg.subscription)
        return self.broker.unsubscribe(session, msg)

    def _call(self, session: Session, msg: Call, now: float) -> list[Effect]:
        self._check_uri(msg.procedure, "procedure")
        _check_flags(msg.options, _CALL_FLAGS)
        if self.sync is not None and self.sync.handles(msg.procedure):
            # any session may call these; each is authorized as the WAMP action it
            # performs on the record URI (read = subscribe, write = publish)
            return self.sync.call(session, msg, now)
        return self._gate(session, msg, "call", msg.procedure, now, self._call_ok)

    def _call_ok(self, session: Session, msg: Call, now: float,
                 forced: bool | None) -> list[Effect]:
        handler = self.meta.handlers.get(msg.procedure)
        if handler is not None:
            args, effects = handler(session, msg.args or [], msg.kwargs or {})
            return [Send(session.conn, Result(msg.request, {}, args)), *effects]
        if forced is None:
            role = self.roles.get(session.authrole)
            forced = role.disclose_caller if role is not None else None
        disclose = forced if forced is not None else msg.options.get("disclose_me") is True
        return self.dealer.call(session, msg, now, disclose)

    def _cancel(self, session: Session, msg: Cancel, now: float) -> list[Effect]:
        return self.dealer.cancel(session, msg)

    def _register(self, session: Session, msg: Register, now: float) -> list[Effect]:
        match = self._match(msg.options, msg.procedure, "procedure")
        _check_flags(msg.options, _REGISTER_FLAGS)
        if msg.procedure.startswith("wamp."):
            raise WampError(
                INVALID_URI, f"procedure {msg.procedure!r}: the wamp. prefix is reserved"
            )
        if self.sync is not None and msg.procedure.startswith(self.sync.api):
            raise WampError(INVALID_URI, f"procedure {msg.procedure!r}: the prefix "
                            f"{self.sync.api!r} is reserved for the data-sync procedures")
        return self._gate(session, msg, "register", msg.procedure, now, self._register_ok,
                          match)

    def _register_ok(self, session: Session, msg: Register, now: float,
                     forced: bool | None) -> list[Effect]:
        match = msg.options.get("match", "exact")
        effects = self.dealer.register(session, msg, match, now)
        if self.remote is not None:  # other nodes of the cluster route calls here too
            reg = self.dealer.get_exact(msg.procedure, match)
            assert reg is not None
            callee = next(c for c in reg.callees if c.session is session)
            effects.append(self.remote.advertise("reg+", self.remote.entry(
                session, reg.procedure, reg.match, reg.invoke, callee.concurrency,
                callee.forward_timeout, callee.created)))
            effects.insert(0, Hold(session.conn))  # REGISTERED once every node knows
        return effects

    def _unregister(self, session: Session, msg: Unregister, now: float) -> list[Effect]:
        reg = self.dealer.registration(msg.registration)
        effects = self.dealer.unregister(session, msg)
        if self.remote is not None and reg is not None:
            effects.insert(0, Hold(session.conn))  # UNREGISTERED once no node routes here
            effects.append(self.remote.advertise("reg-", self.remote.entry(
                session, reg.procedure, reg.match, reg.invoke, 0)))
            if self.dealer.get_exact(reg.procedure, reg.match) is None:
                self.remote.local_gone(reg.procedure, reg.match, now)
        return effects

    def _advertise_leave(self, session: Session) -> list[Effect]:
        assert self.remote is not None
        out: list[Effect] = []
        for reg_id in sorted(session.registrations):
            reg = self.dealer.registration(reg_id)
            if reg is not None:
                out.append(self.remote.advertise("reg-", self.remote.entry(
                    session, reg.procedure, reg.match, reg.invoke, 0)))
        return out

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
