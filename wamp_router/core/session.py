"""A peer connection and its WAMP session state.

States and their one table of transitions (``TRANSITIONS``):

    AWAIT_HELLO --HELLO--> CHALLENGING --AUTHENTICATE--> ESTABLISHED
    AWAIT_HELLO --HELLO--> ESTABLISHED              (no challenge needed)
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


class State(Enum):
    AWAIT_HELLO = "await_hello"
    CHALLENGING = "challenging"
    ESTABLISHED = "established"
    CLOSING = "closing"
    CLOSED = "closed"


TRANSITIONS: dict[State, frozenset[State]] = {
    State.AWAIT_HELLO: frozenset({State.CHALLENGING, State.ESTABLISHED, State.CLOSED}),
    State.CHALLENGING: frozenset({State.ESTABLISHED, State.CLOSED}),
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
    roles: dict[str, Any] = field(default_factory=dict)
    pending_auth: Any = None  # (authenticator, state) while CHALLENGING
    out_ids: SequentialIds = field(default_factory=SequentialIds)
    subscriptions: set[int] = field(default_factory=set)
    registrations: set[int] = field(default_factory=set)
    caller_features: frozenset[str] = frozenset()
    callee_features: frozenset[str] = frozenset()
    publisher_features: frozenset[str] = frozenset()
    subscriber_features: frozenset[str] = frozenset()
    finished_progressive: set[int] = field(default_factory=set)
    testaments: Any = None  # realm.Testaments, once the session adds one

    def set_roles(self, roles: dict[str, Any]) -> None:
        """Remember the client's roles and the features it announced for each."""
        self.roles = roles
        for role in ("caller", "callee", "publisher", "subscriber"):
            info = roles.get(role)
            features = info.get("features") if isinstance(info, dict) else None
            names = frozenset(k for k, v in features.items() if v is True) if isinstance(
                features, dict) else frozenset()
            setattr(self, f"{role}_features", names)

    def move(self, new: State) -> None:
        if new not in TRANSITIONS[self.state]:
            raise RuntimeError(f"illegal session transition {self.state.name} -> {new.name}")
        self.state = new
