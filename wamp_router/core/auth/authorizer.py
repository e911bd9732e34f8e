"""The dynamic authorizer: a WAMP procedure that decides what the static
permissions do not allow (realm option ``authorizer``).

For a request that no static permission of the session's role allows, the
realm calls ``authorizer(session_details, uri, action, options)`` as a
router-originated call (``Dealer.call_internal``) and parks the request; the
answer resumes it. The answer is ``true`` / ``false`` or
``{"allow": bool, "disclose": bool, "cache": bool}``:

- ``disclose`` forces caller / publisher disclosure of an allowed call / publication;
- ``cache: true`` keeps the decision for this session and (action, uri, match)
  until the session leaves or ``wamp.authorizer.invalidate`` is published.

An error raised by the authorizer, no registration, or no answer within the
realm's ``authorizer_timeout`` answers the request with ERROR
``wamp.error.authorization_failed``; ``false`` with ``wamp.error.not_authorized``.

Ordering: while one request of a session waits for the authorizer, the
session's later requests wait behind it (answers to invocations do not), so a
session's requests are still handled in the order they were sent. At most
``MAX_HELD`` requests wait; more are refused.

A pattern subscription the authorizer allowed receives every event matching
its pattern (the authorizer saw the pattern and its ``match`` option; events
cannot wait for it).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..effects import Effect, Send
from ..errors import (
    AUTHORIZATION_FAILED,
    NOT_AUTHORIZED,
    PROTOCOL_VIOLATION,
    ProtocolViolation,
    WampError,
)
from ..messages import Error, Message, Result
from ..meta import session_info
from ..session import Session

if TYPE_CHECKING:
    from ..realm import Realm

INVALIDATE = "wamp.authorizer.invalidate"
MAX_HELD = 1000  # requests of one session waiting behind a parked one
MAX_CACHE = 1000  # cached decisions per session
TIMEOUT = "wamp.error.timeout"

Decision = tuple[bool, bool | None]  # (allowed, forced disclosure or None)
# continues an authorized request: (session, message, now, forced disclosure) -> effects
Proceed = Callable[[Session, Any, float, bool | None], list[Effect]]


class SessionAuthz:
    """A session's dynamic-authorization state (``Session.authz``)."""

    __slots__ = ("cache", "subscriptions", "request", "queue", "realm")

    def __init__(self, realm: Realm) -> None:
        self.realm = realm
        self.cache: dict[tuple[str, str, str], Decision] = {}
        self.subscriptions: set[int] = set()  # subscription ids the authorizer allowed
        self.request = 0  # handle of the authorizer call a request waits for (0 = none)
        self.queue: deque[Message] = deque()  # later requests, waiting behind it

    def hold(self, msg: Message) -> list[Effect]:
        if len(self.queue) >= MAX_HELD:
            raise WampError(AUTHORIZATION_FAILED, f"more than {MAX_HELD} requests are waiting "
                            "for the authorizer")
        self.queue.append(msg)
        return []


def release(session: Session) -> list[Effect]:
    """The session leaves: forget its state, abandon the authorizer call it waits for."""
    state: SessionAuthz | None = session.authz
    session.authz = None
    if state is None or not state.request:
        return []
    return state.realm.dealer.abandon(state.request)


def decision_of(msg: Result | Error, procedure: str,
                timeout: float) -> tuple[bool, bool | None, bool]:
    """(allow, disclose, cache) from the authorizer's answer; raises WampError."""
    if type(msg) is Error:
        if msg.error == TIMEOUT:
            raise WampError(AUTHORIZATION_FAILED, f"the authorizer {procedure!r} did not "
                            f"answer within {timeout} s")
        text = msg.args[0] if msg.args and isinstance(msg.args[0], str) else msg.error
        raise WampError(AUTHORIZATION_FAILED, f"the authorizer {procedure!r} failed: {text}")
    value = msg.args[0] if msg.args else msg.kwargs
    if isinstance(value, bool):
        return value, None, False
    if isinstance(value, dict) and isinstance(value.get("allow"), bool):
        disclose = value.get("disclose")
        return (value["allow"], disclose if isinstance(disclose, bool) else None,
                value.get("cache") is True)
    raise WampError(AUTHORIZATION_FAILED, f"the authorizer {procedure!r} answered neither "
                    'true/false nor {"allow": ...}')


def error_reply(session: Session, msg: Any, exc: WampError) -> Send:
    """The ERROR answering request ``msg`` (as ``realm.error_reply``)."""
    return Send(session.conn, Error(msg.TYPE, getattr(msg, "request", 0), {}, exc.uri,
                                    exc.args_, exc.kwargs))


def denied(session: Session, action: str, uri: str, by: str = "") -> WampError:
    return WampError(NOT_AUTHORIZED, f"session {session.session_id} (authrole "
                     f"{session.authrole!r}) is not authorized to {action} {uri!r}{by}")


class DynamicAuthorizer:
    def __init__(self, realm: Realm, procedure: str, timeout: float) -> None:
        self.realm = realm
        self.procedure = procedure
        self.timeout = timeout

    def authorize(self, session: Session, msg: Any, action: str, uri: str, match: str,
                  now: float, proceed: Proceed) -> list[Effect]:
        state: SessionAuthz | None = session.authz
        if state is None:
            state = session.authz = SessionAuthz(self.realm)
        key = (action, uri, match)
        cached = state.cache.get(key)
        if cached is not None:
            return self._decided(session, state, msg, key, cached, now, proceed)
        options = dict(msg.options)
        if action in ("subscribe", "register"):
            options["match"] = match
        box = [0]

        def then(answer: Result | Error, at: float) -> list[Effect]:
            return self._answered(session, state, box[0], msg, key, answer, at, proceed)

        try:
            box[0], effects = self.realm.dealer.call_internal(
                self.procedure, [self.details(session), uri, action, options], now,
                self.timeout, then)
        except WampError as exc:
            reason = exc.args_[0] if exc.args_ else exc.uri
            raise WampError(AUTHORIZATION_FAILED, f"the authorizer {self.procedure!r} is not "
                            f"available: {reason}") from None
        state.request = box[0]
        return effects

    @staticmethod
    def details(session: Session) -> dict[str, Any]:
        info = session_info(session)
        info["authextra"] = session.authextra or {}
        return info

    def _decided(self, session: Session, state: SessionAuthz, msg: Any,
                 key: tuple[str, str, str], decision: Decision, now: float,
                 proceed: Proceed) -> list[Effect]:
        action, uri, match = key
        if not decision[0]:
            raise denied(session, action, uri, " (dynamic authorizer)")
        effects = proceed(session, msg, now, decision[1])
        if action == "subscribe":
            sub = self.realm.broker.lookup(uri, match)
            if sub is not None and session.conn in sub.subscribers:
                state.subscriptions.add(sub.id)
        return effects

    def _answered(self, session: Session, state: SessionAuthz, request: int, msg: Any,
                  key: tuple[str, str, str], answer: Result | Error, now: float,
                  proceed: Proceed) -> list[Effect]:
        if session.authz is not state or state.request != request:
            return []  # the session left, or the call was abandoned
        state.request = 0
        try:
            allow, disclose, cache = decision_of(answer, self.procedure, self.timeout)
            if cache:
                if len(state.cache) >= MAX_CACHE:
                    state.cache.clear()
                state.cache[key] = (allow, disclose)
            effects = self._decided(session, state, msg, key, (allow, disclose), now, proceed)
        except WampError as exc:
            effects = [error_reply(session, msg, exc)]
        except ProtocolViolation as exc:
            return self.realm.kill(session, PROTOCOL_VIOLATION, exc.message)
        effects.extend(drain(session, state, now))
        return effects

    def invalidate(self, kwargs: dict[str, Any]) -> int:
        """Drop cached decisions of the realm's sessions (filtered by ``session``,
        ``authid``, ``authrole`` when given); returns how many sessions."""
        wanted = {k: kwargs[k] for k in ("session", "authid", "authrole") if k in kwargs}
        count = 0
        for s in self.realm.sessions.values():
            state: SessionAuthz | None = s.authz
            if state is None or not state.cache:
                continue
            actual = {"session": s.session_id, "authid": s.authid, "authrole": s.authrole}
            if all(actual[k] == v for k, v in wanted.items()):
                state.cache.clear()
                count += 1
        return count


def drain(session: Session, state: SessionAuthz, now: float) -> list[Effect]:
    """Handle the requests that waited behind a parked one, until one parks again."""
    effects: list[Effect] = []
    realm = state.realm
    while state.queue and not state.request and session.authz is state:
        msg = state.queue.popleft()
        try:
            effects.extend(realm.handle(session, msg, now))
        except WampError as exc:
            effects.append(error_reply(session, msg, exc))
        except ProtocolViolation as exc:
            effects.extend(realm.kill(session, PROTOCOL_VIOLATION, exc.message))
            break
    return effects
