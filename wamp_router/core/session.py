"""A peer connection and its WAMP session state.

States and their one table of transitions (``TRANSITIONS``):

    AWAIT_HELLO --HELLO--> CHALLENGING --AUTHENTICATE--> ESTABLISHED
    AWAIT_HELLO --HELLO--> ESTABLISHED              (no challenge needed)
    AWAIT_HELLO / CHALLENGING --HELLO / AUTHENTICATE--> AUTHENTICATING
                                                    (waiting for the dynamic authenticator,
                                                     then CHALLENGING, ESTABLISHED or CLOSED)
    ESTABLISHED --GOODBYE (peer)--> AWAIT_HELLO     (we reply GOODBYE_AND_OUT; the
                                                     transport may carry a new HELLO)
    ESTABLISHED --GOODBYE (ours)--> CLOSING         (waiting for the peer's GOODBYE)
    any --ABORT/violation/lost--> CLOSED

The handshake decisions (realm, authentication) live in ``router.py``; this
module only holds the state and checks that a transition is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .ids import SequentialIds

NONE: frozenset[int] = frozenset()
NONE_STR: frozenset[str] = frozenset()
# identical feature sets are shared between sessions (clients announce the same ones)
_INTERNED: dict[frozenset[str], frozenset[str]] = {}


class State(Enum):
    AWAIT_HELLO = "await_hello"
    CHALLENGING = "challenging"
    AUTHENTICATING = "authenticating"  # the dynamic authenticator has been asked
    ESTABLISHED = "established"
    CLOSING = "closing"
    CLOSED = "closed"


TRANSITIONS: dict[State, frozenset[State]] = {
    State.AWAIT_HELLO: frozenset({State.CHALLENGING, State.AUTHENTICATING, State.ESTABLISHED,
                                  State.CLOSED}),
    State.CHALLENGING: frozenset({State.AUTHENTICATING, State.ESTABLISHED, State.CLOSED}),
    State.AUTHENTICATING: frozenset({State.CHALLENGING, State.ESTABLISHED, State.CLOSED}),
    State.ESTABLISHED: frozenset({State.AWAIT_HELLO, State.CLOSING, State.CLOSED}),
    State.CLOSING: frozenset({State.CLOSED, State.AWAIT_HELLO}),
    State.CLOSED: frozenset(),
}


@dataclass(frozen=True, slots=True)
class TransportInfo:
    """What the adapter tells the core about a new connection."""

    kind: str  # "websocket" | "rawsocket"
    peer: str  # e.g. "tcp4:127.0.0.1:53211"
    listener: Any  # config.model.Listener
    serializer: str = ""


@dataclass(slots=True, eq=False)
class Session:
    conn: int
    transport: TransportInfo
    state: State = State.AWAIT_HELLO
    session_id: int = 0
    realm: Any = None  # realm.Realm once established
    realm_name: str = ""
    authid: str = ""
    authrole: str = ""
    authmethod: str = ""
    authprovider: str = ""
    pending_auth: Any = None  # (authenticator, state) while CHALLENGING / AUTHENTICATING
    authextra: Any = None  # WELCOME.Details.authextra (a dict) once established
    authz: Any = None  # auth.authorizer.SessionAuthz, once a dynamic authorizer was asked
    out_ids: SequentialIds = field(default_factory=SequentialIds)
    # Sets allocated on first use (an idle session should cost little memory).
    subscriptions: set[int] | frozenset[int] = NONE
    registrations: set[int] | frozenset[int] = NONE
    finished_progressive: set[int] | frozenset[int] = NONE
    caller_features: frozenset[str] = NONE_STR
    callee_features: frozenset[str] = NONE_STR
    publisher_features: frozenset[str] = NONE_STR
    subscriber_features: frozenset[str] = NONE_STR
    testaments: Any = None  # scope -> list of testaments, once the session adds one

    def set_roles(self, roles: dict[str, Any]) -> None:
        """Remember the features the client announced for each of its roles."""
        for role in ("caller", "callee", "publisher", "subscriber"):
            info = roles.get(role)
            features = info.get("features") if isinstance(info, dict) else None
            names = NONE_STR
            if isinstance(features, dict) and features:
                names = frozenset(k for k, v in features.items() if v is True)
                names = _INTERNED.setdefault(names, names) if len(_INTERNED) < 1000 else names
            setattr(self, f"{role}_features", names)

    def add_subscription(self, sub_id: int) -> None:
        if not self.subscriptions:
            self.subscriptions = set()
        self.subscriptions.add(sub_id)  # type: ignore[union-attr]

    def add_registration(self, reg_id: int) -> None:
        if not self.registrations:
            self.registrations = set()
        self.registrations.add(reg_id)  # type: ignore[union-attr]

    def progressive_done(self) -> set[int]:
        """The request ids of this caller's completed progressive calls."""
        if not self.finished_progressive:
            self.finished_progressive = set()
        return self.finished_progressive  # type: ignore[return-value]

    def move(self, new: State) -> None:
        if new not in TRANSITIONS[self.state]:
            raise RuntimeError(f"illegal session transition {self.state.name} -> {new.name}")
        self.state = new
