"""Outcomes of authentication steps and the authenticator interface."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import AUTHENTICATION_FAILED
from ..ids import RandomSource
from ..messages import Authenticate, Hello


@dataclass(slots=True)
class AuthContext:
    """What an authenticator may know about the joining session."""

    realm: str
    session: int
    now: float
    rng: RandomSource


@dataclass(slots=True)
class Accept:
    authid: str
    authrole: str
    authmethod: str
    authprovider: str = "static"
    authextra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Reject:
    reason: str
    message: str


@dataclass(slots=True)
class Challenging:
    """A CHALLENGE to send; ``state`` is kept for ``finish``."""

    method: str
    extra: dict[str, Any]
    state: Any


Outcome = Accept | Reject | Challenging


class Authenticator(Protocol):
    method: str

    def applies_to(self, realm: str) -> bool: ...

    def start(self, hello: Hello, ctx: AuthContext) -> Outcome: ...

    def finish(self, state: Any, msg: Authenticate, ctx: AuthContext) -> Accept | Reject: ...


def failed(message: str = "authentication failed") -> Reject:
    return Reject(AUTHENTICATION_FAILED, message)
