"""The router: realms, connections, and the session handshake.

Entry points (all pure; ``now`` is wall-clock seconds from the adapter):

- ``open(conn, transport)``: a transport connected.
- ``receive(conn, msg, now) -> effects``: a parsed message arrived.
- ``violation(conn, reason) -> effects``: the adapter could not decode or
  parse what the peer sent (answered with ABORT protocol_violation).
- ``lost(conn) -> effects``: the transport is gone.
- ``shutdown() -> effects``: GOODBYE ``wamp.close.system_shutdown`` to all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..config.model import Listener, NodeConfig
from .auth.anonymous import AnonymousAuthenticator
from .auth.base import Accept, Answer, Ask, AuthContext, Authenticator, Challenging, Reject
from .auth.cryptosign import CryptosignAuthenticator
from .auth.dynamic import DynamicAuthenticator
from .auth.limits import DelayedAborts, FailureLog, peer_host
from .auth.scram import ScramAuthenticator
from .auth.ticket import TicketAuthenticator
from .auth.wampcra import CraAuthenticator
from .effects import Close, Effect, Hold, Send, Timer
from .errors import (
    AUTHENTICATION_FAILED,
    GOODBYE_AND_OUT,
    NO_AUTH_METHOD,
    NO_SUCH_REALM,
    NO_SUCH_ROLE,
    PAYLOAD_SIZE_EXCEEDED,
    PROTOCOL_VIOLATION,
    SYSTEM_SHUTDOWN,
    ProtocolViolation,
    WampError,
)
from .features import CLIENT_ROLES, router_roles
from .ids import RandomSource, SequentialIds, global_id
from .messages import (
    Abort,
    Authenticate,
    Challenge,
    Error,
    Goodbye,
    Hello,
    Message,
    Result,
    Welcome,
)
from .meta import session_info
from .realm import Realm, error_reply
from .remote import RemoteRpc
from .session import Session, State, TransportInfo
from .stats import Stats
from .uri import is_valid_uri

if TYPE_CHECKING:
    from .sync.engine import OpenStore, SyncEngine

TOO_MANY_SESSIONS = "router.error.too_many_sessions"


def build_authenticators(listener: Listener) -> list[Authenticator]:
    auth = listener.auth
    out: list[Authenticator] = []
    if auth.anonymous is not None:
        out.append(AnonymousAuthenticator(auth.anonymous))
    if auth.ticket:
        out.append(TicketAuthenticator(auth.ticket))
    if auth.wampcra:
        out.append(CraAuthenticator(auth.wampcra))
    if auth.cryptosign:
        out.append(CryptosignAuthenticator(auth.cryptosign))
    if auth.scram:
        out.append(ScramAuthenticator(auth.scram))
    out.extend(DynamicAuthenticator(d) for d in auth.dynamic)
    return out


class _Waiting:
    """A session whose dynamic authenticator was asked (``pending_auth`` while
    AUTHENTICATING): the realm of the call and its handle."""

    __slots__ = ("realm", "request")

    def __init__(self, realm: Realm, request: int) -> None:
        self.realm = realm
        self.request = request


def answer_of(msg: Result | Error) -> Answer:
    if type(msg) is Error:
        args = msg.args or []
        text = args[0] if args and isinstance(args[0], str) else msg.error
        return Answer(error=msg.error, message=text)
    value = msg.args[0] if msg.args else (msg.kwargs or None)
    return Answer(value=value)


def _log_fields(s: Session) -> dict[str, Any]:
    """What the join/leave log line says about a session (taken now: a session
    object is reused after GOODBYE)."""
    return {"session": s.session_id, "realm": s.realm_name, "authid": s.authid,
            "authrole": s.authrole, "authmethod": s.authmethod, "transport": s.transport.kind,
            "serializer": s.transport.serializer, "peer": s.transport.peer}


class Router:
    def __init__(self, config: NodeConfig, rng: RandomSource,
                 open_store: OpenStore | None = None) -> None:
        self._rng = rng
        self.stats = Stats()
        self._open_store = open_store  # data-sync record stores (None: memory only)
        self.realms: dict[str, Realm] = {r.name: Realm(r, rng, self.stats, open_store)
                                         for r in config.realms}
        self._clustered = config.cluster is not None
        self._prefer_local = config.cluster is not None and config.cluster.prefer_local_callees
        self._virtual: dict[int, RemoteRpc] = {}  # proxy/link conn -> its realm's RemoteRpc
        self._last_virtual = 0
        self.node_id = ""  # a cluster: this node's id (the backplane's), set by the adapter
        for realm in self.realms.values():
            realm.kill_session = self._kill
            if self._clustered:
                self._cluster_realm(realm)
        self.conns: dict[int, Session] = {}
        self._auth_by_listener: dict[int, list[Authenticator]] = {}
        self._failures = FailureLog()  # failed authentications (listener auth limits)
        self._delayed = DelayedAborts()  # ABORTs of failed authentications, sent later
        # (event, session) for the adapters' log: "join" / "leave"; they drain it
        self.journal: list[tuple[str, dict[str, Any]]] = []

    # -- connections ------------------------------------------------------
    def open(self, conn: int, transport: TransportInfo) -> None:
        self.conns[conn] = Session(conn, transport)

    def lost(self, conn: int) -> list[Effect]:
        session = self.conns.pop(conn, None)
        if session is None:
            return []
        effects = self._leave(session)
        if session.state is State.AUTHENTICATING:  # nobody waits for the authenticator now
            waiting: _Waiting = session.pending_auth
            session.pending_auth = None
            effects.extend(waiting.realm.dealer.abandon(waiting.request))
        session.state = State.CLOSED
        return effects

    def _leave(self, session: Session) -> list[Effect]:
        if session.state in (State.ESTABLISHED, State.CLOSING) and session.realm is not None:
            realm: Realm = session.realm
            session.realm = None
            self.journal.append(("leave", _log_fields(session)))
            return realm.leave(session)
        return []

    def session(self, conn: int) -> Session | None:
        return self.conns.get(conn)

    # -- messages ---------------------------------------------------------
    def receive(self, conn: int, msg: Message, now: float) -> list[Effect]:
        session = self.conns.get(conn)
        if session is None or session.state is State.CLOSED:
            return []
        try:
            if session.state is State.ESTABLISHED:
                if type(msg) is Goodbye:
                    return self._peer_goodbye(session)
                if type(msg) is Hello or type(msg) is Authenticate:
                    raise ProtocolViolation(
                        f"{type(msg).__name__.upper()} is not allowed in session state established"
                    )
                try:
                    return session.realm.handle(session, msg, now)  # type: ignore[no-any-return]
                except WampError as exc:
                    return [error_reply(session, msg, exc)]
            return self._handshake(session, msg, now)
        except ProtocolViolation as exc:
            return self.violation(conn, exc.message)

    def violation(self, conn: int, reason: str) -> list[Effect]:
        session = self.conns.get(conn)
        if session is None:
            return []
        effects = self._leave(session)
        if session.state is not State.CLOSED:
            effects.append(Send(conn, Abort({"message": reason}, PROTOCOL_VIOLATION)))
            session.state = State.CLOSED
        effects.append(Close(conn, f"protocol violation: {reason}"))
        return effects

    def _kill(self, session: Session, reason: str, message: str | None) -> list[Effect]:
        """Close a session from the router side (``wamp.session.kill``)."""
        effects = self._leave(session)
        details = {} if message is None else {"message": message}
        effects.append(Send(session.conn, Goodbye(details, reason)))
        session.move(State.CLOSING)
        return effects

    def invocation_undeliverable(self, conn: int, invocation: int, size: int,
                                 uri: str = PAYLOAD_SIZE_EXCEEDED,
                                 why: str = "") -> list[Effect]:
        """The adapter could not deliver an INVOCATION (larger than the callee
        accepts, or not representable in its serializer)."""
        session = self.conns.get(conn)
        if session is None or session.realm is None:
            return []
        dealer = session.realm.dealer
        return dealer.undeliverable(conn, invocation, size, uri, why)  # type: ignore[no-any-return]

    def next_deadline(self) -> float | None:
        deadlines = [d for r in self.realms.values() if (d := r.next_deadline()) is not None]
        delayed = self._delayed.next_deadline()
        if delayed is not None:
            deadlines.append(delayed)
        return min(deadlines) if deadlines else None

    def on_timer(self, now: float) -> list[Effect]:
        effects: list[Effect] = []
        for realm in self.realms.values():
            effects.extend(realm.on_timer(now))
        for conn, (session, reason, message) in self._delayed.due(now):
            if self.conns.get(conn) is session:
                effects.extend([Send(conn, Abort({"message": message}, reason)),
                                Close(conn, f"abort {reason}: {message}")])
        return effects

    def reconfigure(self, config: NodeConfig) -> list[Effect]:
        """Apply a reloaded config: realms added, changed or removed. Sessions the
        new config still allows stay; those that lost their realm or role get
        GOODBYE with the reason. New authentication settings apply to new joins."""
        effects: list[Effect] = []
        new = {r.name: r for r in config.realms}
        for name, realm in list(self.realms.items()):
            if name not in new:
                for s in list(realm.sessions.values()):
                    effects.extend(self._kill(s, NO_SUCH_REALM, f"realm {name!r} was removed "
                                              "by a configuration reload"))
                if realm.sync is not None:
                    effects.extend(realm.sync.commit())
                    realm.sync.close()
                del self.realms[name]
                continue
            realm.reconfigure(new[name])
            for s in list(realm.sessions.values()):
                if not realm.authorizer.has_role(s.authrole):
                    effects.extend(self._kill(s, NO_SUCH_ROLE, f"role {s.authrole!r} was removed "
                                              f"from realm {name!r} by a configuration reload"))
        for name, realm_config in new.items():
            if name not in self.realms:
                realm = Realm(realm_config, self._rng, self.stats, self._open_store)
                realm.kill_session = self._kill
                if self._clustered:
                    self._cluster_realm(realm)
                self.realms[name] = realm
        self._auth_by_listener.clear()
        return effects

    def abort(self, conn: int, reason: str, message: str) -> list[Effect]:
        """End a connection's session from the router side with ABORT (limits)."""
        session = self.conns.get(conn)
        if session is None or session.state is State.CLOSED:
            return []
        effects = self._leave(session)
        effects.extend(self._abort(session, reason, message))
        return effects

    def _new_session_id(self, realm: Realm) -> int:
        """A random id (global scope) no session of the realm has, here or, in a
        cluster, on the other nodes this node knows of."""
        while True:
            sid = global_id(self._rng)
            if sid not in realm.sessions and (realm.remote is None
                                              or sid not in realm.remote.sessions):
                return sid

    # -- cluster -------------------------------------------------------------
    def _cluster_realm(self, realm: Realm) -> None:
        realm.broker.cluster = realm.name
        realm.dealer.shared_ids = True
        realm.dealer.prefer_local = self._prefer_local
        remote = RemoteRpc(realm, lambda: self._virtual_conn(remote), lambda: self.node_id)
        realm.remote = remote
        realm.broker.remote_has = remote.has_subscribers

    def _virtual_conn(self, remote: RemoteRpc) -> int:
        """A connection number for a proxy or link session: negative, never reused."""
        self._last_virtual -= 1
        self._virtual[self._last_virtual] = remote
        return self._last_virtual

    def outbound_remote(self, conn: int, msg: Message) -> list[Effect]:
        """A message the core addressed to a proxy or link session (conn < 0)."""
        remote = self._virtual.get(conn)
        return [] if remote is None else remote.outbound(conn, msg)

    def remote_rpc(self, realm: str, node: str, payload: dict[str, Any],
                   now: float) -> list[Effect]:
        r = self.realms.get(realm)
        if r is None or r.remote is None:
            return []
        return r.remote.inbound(node, payload, now)

    def remote_directory(self, realm: str, node: str, op: str, entry: dict[str, Any],
                         now: float) -> list[Effect]:
        """Another node's callee registered ("reg+") or went away ("reg-")."""
        r = self.realms.get(realm)
        if r is None or r.remote is None:
            return []
        if op == "reg+":
            return r.remote.remote_registered(node, entry, now)
        if op == "reg-":
            return r.remote.remote_unregistered(node, entry, now)
        if op in ("sub+", "sub-"):
            r.remote.remote_subscription(node, op, entry)
            return []
        return r.remote.remote_session(node, op, entry)

    def node_gone(self, node: str, dead: bool = False) -> list[Effect]:
        """A node left the cluster (``dead``: this node declared it dead, and says
        goodbye for its sessions)."""
        effects: list[Effect] = []
        for realm in self.realms.values():
            if realm.remote is not None:
                effects.extend(realm.remote.node_gone(node, dead))
        return effects

    def relay_failed(self, realm: str, node: str, payload: dict[str, Any], uri: str,
                     why: str) -> list[Effect]:
        r = self.realms.get(realm)
        if r is None or r.remote is None:
            return []
        return r.remote.relay_failed(node, payload, uri, why)

    def isolate(self) -> list[Effect]:
        """This node lost the cluster (Redis unreachable): every other node is gone
        for it (calls to them fail now, calls from them are interrupted)."""
        effects: list[Effect] = []
        for realm in self.realms.values():
            if realm.remote is not None:
                for node in sorted(realm.remote.nodes()):
                    effects.extend(realm.remote.node_gone(node))
        return effects

    def fence(self) -> list[Effect]:
        """The cluster declared this node dead while it was alive (a long pause): the
        other nodes already ended its sessions (and fired their testaments), so it
        ends them too, without firing the testaments again; clients reconnect."""
        effects = self.isolate()
        for session in self.conns.values():
            session.testaments = None
        effects.extend(self.shutdown())
        return effects

    def advertisements(self) -> list[Effect]:
        """Every local callee, for a backplane that (re)connects."""
        out: list[Effect] = []
        for realm in self.realms.values():
            remote = realm.remote
            if remote is None:
                continue
            for reg in realm.dealer.registrations():
                for c in reg.callees:
                    if c.session.conn > 0:
                        out.append(remote.advertise("reg+", remote.entry(
                            c.session, reg.procedure, reg.match, reg.invoke, c.concurrency,
                            c.forward_timeout, c.created)))
            for s in realm.sessions.values():
                out.append(remote.advertise("sess+", session_info(s)))
                if s.testaments:
                    out.extend(realm.testaments_changed(s))
            for sub in realm.broker.subscriptions():
                for subscriber in sub.subscribers.values():
                    out.append(remote.advertise("sub+", realm.broker.entry(subscriber, sub)))
        return out

    def remote_publication(self, realm: str, envelope: dict[str, Any],
                           kind: str) -> list[Effect]:
        """A publication another node of the cluster made (see Broker.deliver_remote)."""
        r = self.realms.get(realm)
        if r is None:
            return []
        return r.broker.deliver_remote(envelope, kind)

    # -- shared data-sync records (store = "redis"; see SyncEngine) -------------
    def _sync_of(self, realm: str) -> SyncEngine | None:
        r = self.realms.get(realm)
        return None if r is None else r.sync

    def sync_committed(self, realm: str, batch: int,
                       results: list[tuple[Any, ...]]) -> list[Effect]:
        sync = self._sync_of(realm)
        return [] if sync is None else sync.sync_committed(batch, results)

    def sync_remote(self, realm: str, env: dict[str, Any]) -> list[Effect]:
        sync = self._sync_of(realm)
        return [] if sync is None else sync.remote_version(env)

    def sync_fetch_from(self, realm: str, uri: str) -> int | None:
        sync = self._sync_of(realm)
        return None if sync is None else sync.sync_fetch_from(uri)

    def sync_fetched(self, realm: str, uri: str, after: int, state: dict[str, Any] | None,
                     patches: list[dict[str, Any]],
                     checkpoints: list[tuple[int, Any, bool]]) -> list[Effect]:
        sync = self._sync_of(realm)
        return [] if sync is None else sync.sync_fetched(uri, state, patches, checkpoints,
                                                         after)

    def sync_loading(self, realm: str) -> None:
        sync = self._sync_of(realm)
        if sync is not None:
            sync.sync_loading()

    def sync_loaded(self, realm: str, epoch: str, records: list[Any]) -> list[Effect]:
        sync = self._sync_of(realm)
        return [] if sync is None else sync.sync_loaded(epoch, records)

    def sync_domains(self) -> dict[str, list[str]]:
        """Realm -> the prefixes of its shared data-sync domains (kept in Redis)."""
        out: dict[str, list[str]] = {}
        for name, r in self.realms.items():
            prefixes = [d.prefix for d in r.sync.domains if d.shared] if r.sync else []
            if prefixes:
                out[name] = prefixes
        return out

    def commit(self) -> list[Effect]:
        """Commit the data-sync writes queued during this reactor turn (the
        ``Commit`` effect), then broadcast them and answer their writers."""
        effects: list[Effect] = []
        for realm in self.realms.values():
            if realm.sync is not None:
                effects.extend(realm.sync.commit())
        return effects

    def close(self) -> None:
        """Close the record stores (the last thing at shutdown: a clean stop)."""
        for realm in self.realms.values():
            if realm.sync is not None:
                realm.sync.close()

    def shutdown(self) -> list[Effect]:
        effects: list[Effect] = []
        for session in list(self.conns.values()):
            if session.state is State.ESTABLISHED:
                effects.append(
                    Send(session.conn, Goodbye({"message": "the router is shutting down"},
                                               SYSTEM_SHUTDOWN))
                )
                effects.extend(self._leave(session))
                session.move(State.CLOSING)
            else:
                effects.append(Close(session.conn, "router shutdown"))
        return effects

    # -- handshake --------------------------------------------------------
    def _handshake(self, session: Session, msg: Message, now: float) -> list[Effect]:
        state = session.state
        if state is State.AWAIT_HELLO and type(msg) is Hello:
            return self._hello(session, msg, now)
        if state is State.CHALLENGING and type(msg) is Authenticate:
            return self._authenticate(session, msg, now)
        if state is State.CLOSING:
            if type(msg) is Goodbye:
                session.move(State.CLOSED)
                return [Close(session.conn, "goodbye")]
            return []  # messages in flight while we wait for GOODBYE are dropped
        raise ProtocolViolation(
            f"{type(msg).__name__.upper()} is not allowed in session state {state.value}"
        )

    def _abort(self, session: Session, reason: str, message: str) -> list[Effect]:
        session.state = State.CLOSED
        return [Send(session.conn, Abort({"message": message}, reason)),
                Close(session.conn, f"abort {reason}: {message}")]

    def _check_hello(self, msg: Hello) -> None:
        roles = msg.details.get("roles")
        if not isinstance(roles, dict) or not roles:
            raise ProtocolViolation("HELLO.Details.roles must be a non-empty dict")
        unknown = [r for r in roles if r not in CLIENT_ROLES]
        if unknown:
            raise ProtocolViolation(f"HELLO.Details.roles: unknown role(s) {unknown}")
        methods = msg.details.get("authmethods", ["anonymous"])
        if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods):
            raise ProtocolViolation("HELLO.Details.authmethods must be a list of strings")
        authid = msg.details.get("authid")
        if authid is not None and not isinstance(authid, str):
            raise ProtocolViolation("HELLO.Details.authid must be a string")

    def _authenticators(self, session: Session) -> list[Authenticator]:
        listener = session.transport.listener
        found = self._auth_by_listener.get(id(listener))
        if found is None:
            found = build_authenticators(listener)
            self._auth_by_listener[id(listener)] = found
        return found

    def _hello(self, session: Session, msg: Hello, now: float) -> list[Effect]:
        self._check_hello(msg)
        realm = self.realms.get(msg.realm)
        if realm is None:
            if not is_valid_uri(msg.realm):
                return self._abort(session, "wamp.error.invalid_uri",
                                   f"invalid realm URI {msg.realm!r}")
            return self._abort(session, NO_SUCH_REALM, f"no realm {msg.realm!r} on this router")
        limit = realm.config.max_sessions
        if limit and len(realm.sessions) >= limit:
            return self._abort(session, TOO_MANY_SESSIONS,
                               f"realm {realm.name!r} is at its max_sessions limit ({limit})")
        offered = msg.details.get("authmethods") or ["anonymous"]
        available = [a for a in self._authenticators(session) if a.applies_to(realm.name)]
        chosen = next((a for m in offered for a in available if a.method == m), None)
        if chosen is None:
            names = sorted({a.method for a in available})
            return self._abort(
                session, NO_AUTH_METHOD,
                f"none of the offered authmethods {offered} is accepted for realm "
                f"{realm.name!r} on this listener (accepted: {names})",
            )
        session.session_id = self._new_session_id(realm)
        session.realm_name = realm.name
        session.authid = msg.details.get("authid") or ""  # as requested, until WELCOME
        session.set_roles(msg.details["roles"])
        ctx = self._ctx(session, now)
        if self._refused(session, now):
            return self._rejected(session, Reject(
                AUTHENTICATION_FAILED, "too many failed authentication attempts from this "
                "address or for this authid; try again later", failure=False), now)
        return self._outcome(session, chosen, chosen.start(msg, ctx), ctx)

    def _authenticate(self, session: Session, msg: Authenticate, now: float) -> list[Effect]:
        authenticator, state = session.pending_auth
        session.pending_auth = None
        ctx = self._ctx(session, now)
        return self._outcome(session, authenticator, authenticator.finish(state, msg, ctx), ctx)

    def _ctx(self, session: Session, now: float) -> AuthContext:
        t = session.transport
        return AuthContext(session.realm_name, session.session_id, now, self._rng,
                           {"type": t.kind, "peer": t.peer, "serializer": t.serializer,
                            "tls": getattr(t.listener, "tls", None) is not None})

    # -- failed authentications: limits and delayed ABORT -------------------
    def _limit_keys(self, session: Session) -> list[str]:
        keys = [f"peer:{peer_host(session.transport.peer)}"]
        if session.authid:
            keys.append(f"authid:{session.realm_name}:{session.authid}")
        return keys

    def _refused(self, session: Session, now: float) -> bool:
        limits = session.transport.listener.auth.limits
        return limits is not None and self._failures.refused(self._limit_keys(session),
                                                             limits, now)

    def _rejected(self, session: Session, reject: Reject, now: float) -> list[Effect]:
        """ABORT a failed authentication: counted against the peer and the authid
        and, with the listener's auth limits, answered after their ``delay``."""
        limits = session.transport.listener.auth.limits
        if limits is None or reject.reason != AUTHENTICATION_FAILED:
            return self._abort(session, reject.reason, reject.message)
        if reject.failure:
            self._failures.record(self._limit_keys(session), limits, now)
        if limits.delay <= 0:
            return self._abort(session, reject.reason, reject.message)
        session.state = State.CLOSED  # no more input; the ABORT follows after the delay
        self._delayed.add(now + limits.delay, session.conn,
                          (session, reject.reason, reject.message))
        return [Timer(now + limits.delay)]

    # -- the dynamic authenticator --------------------------------------------
    def _ask(self, session: Session, authenticator: Authenticator, ask: Ask,
             ctx: AuthContext) -> list[Effect]:
        """Call the dynamic authenticator; the session waits (AUTHENTICATING) and
        its answer resumes the handshake (``_answered``)."""
        realm = self.realms.get(ask.realm or ctx.realm)
        if realm is None:
            return self._rejected(session, Reject(
                AUTHENTICATION_FAILED, f"the authenticator's realm {ask.realm!r} does not "
                "exist", failure=False), ctx.now)
        waiting = _Waiting(realm, 0)

        def then(msg: Result | Error, now: float) -> list[Effect]:
            return self._answered(session, waiting, authenticator, ask, answer_of(msg), now)

        try:
            waiting.request, effects = realm.dealer.call_internal(
                ask.procedure, ask.args, ctx.now, ask.timeout, then)
        except WampError as exc:  # nobody registered it
            return self._rejected(session, Reject(
                AUTHENTICATION_FAILED, f"the authenticator {ask.procedure!r} is not available "
                f"on realm {realm.name!r}: {exc.args_[0] if exc.args_ else exc.uri}",
                failure=False), ctx.now)
        session.move(State.AUTHENTICATING)
        session.pending_auth = waiting
        return effects

    def _answered(self, session: Session, waiting: _Waiting, authenticator: Authenticator,
                  ask: Ask, answer: Answer, now: float) -> list[Effect]:
        if session.state is not State.AUTHENTICATING or session.pending_auth is not waiting:
            return []  # the session is gone (abandoned calls are answered no more)
        session.pending_auth = None
        if answer.error == "wamp.error.timeout":
            answer.message = f"no answer within {ask.timeout} s"
        ctx = self._ctx(session, now)
        return self._outcome(session, authenticator, ask.resume(answer, ctx), ctx)

    def _outcome(self, session: Session, authenticator: Authenticator,
                 outcome: Accept | Reject | Challenging | Ask,
                 ctx: AuthContext) -> list[Effect]:
        if isinstance(outcome, Reject):
            return self._rejected(session, outcome, ctx.now)
        if isinstance(outcome, Ask):
            return self._ask(session, authenticator, outcome, ctx)
        if isinstance(outcome, Challenging):
            session.pending_auth = (authenticator, outcome.state)
            session.move(State.CHALLENGING)
            return [Send(session.conn, Challenge(outcome.method, outcome.extra))]
        return self._welcome(session, outcome)

    def _welcome(self, session: Session, accept: Accept) -> list[Effect]:
        if accept.realm is not None:  # a dynamic authenticator chose the realm
            session.realm_name = accept.realm
        realm = self.realms.get(session.realm_name)
        if realm is None:  # removed by a reload while the session was authenticating
            return self._abort(session, NO_SUCH_REALM, f"no realm {session.realm_name!r}")
        if not realm.authorizer.has_role(accept.authrole):
            return self._abort(session, NO_SUCH_ROLE,
                               f"role {accept.authrole!r} does not exist on realm {realm.name!r}")
        session.authid = accept.authid
        session.authrole = accept.authrole
        session.authmethod = accept.authmethod
        session.authprovider = accept.authprovider
        session.realm = realm
        session.move(State.ESTABLISHED)
        details: dict[str, Any] = {
            "realm": realm.name,
            "authid": accept.authid,
            "authrole": accept.authrole,
            "authmethod": accept.authmethod,
            "authprovider": accept.authprovider,
            "roles": router_roles(),
        }
        if realm.sync is not None:  # a vendor feature key (clients ignore unknown ones)
            details["roles"]["broker"]["features"]["x_data_sync"] = True
        if accept.authextra:
            details["authextra"] = session.authextra = accept.authextra
        effects: list[Effect] = [Send(session.conn, Welcome(session.session_id, details))]
        if realm.remote is not None:  # WELCOME once every node knows the session
            effects.insert(0, Hold(session.conn))
        effects.extend(realm.join(session))
        self.journal.append(("join", _log_fields(session)))
        return effects

    def join_internal(self, conn: int, realm: str, authid: str, authrole: str,
                      authmethod: str) -> list[Effect]:
        """Join a connection the router itself authenticated (the HTTP bridge's
        principals) without a HELLO; the WELCOME goes to that connection."""
        session = self.conns[conn]
        if realm not in self.realms:
            return self._abort(session, NO_SUCH_REALM, f"no realm {realm!r} on this router")
        session.session_id = self._new_session_id(self.realms[realm])
        session.realm_name = realm
        session.set_roles({"caller": {}, "publisher": {}})
        return self._welcome(session, Accept(authid, authrole, authmethod, "static"))

    def _peer_goodbye(self, session: Session) -> list[Effect]:
        realm = session.realm
        callee = bool(session.registrations)
        effects = self._leave(session)
        if callee and realm is not None and realm.remote is not None:
            # GOODBYE once no node routes calls to its registrations any more
            effects.insert(0, Hold(session.conn))
        session.move(State.AWAIT_HELLO)
        session.session_id = 0
        session.out_ids = SequentialIds()
        effects.append(Send(session.conn, Goodbye({}, GOODBYE_AND_OUT)))
        return effects
