"""Outcomes of authentication steps and the authenticator interface.

An authenticator answers HELLO (``start``) and AUTHENTICATE (``finish``) with an
``Outcome``: ``Accept`` (WELCOME), ``Reject`` (ABORT), ``Challenging`` (send a
CHALLENGE, keep ``state`` for ``finish``) or ``Ask`` (call the dynamic
authenticator, a WAMP procedure; its answer goes to ``Ask.resume``, which
returns the next outcome). Pure: no I/O, time and randomness in ``AuthContext``.
"""

from __future__ import annotations

from collections.abc import Callable
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
    transport: dict[str, Any] = field(default_factory=dict)  # type, peer, serializer, tls


@dataclass(slots=True)
class Accept:
    authid: str
    authrole: str
    authmethod: str
    authprovider: str = "static"
    authextra: dict[str, Any] = field(default_factory=dict)
    realm: str | None = None  # a dynamic authenticator may move the session to another realm


@dataclass(slots=True)
class Reject:
    reason: str
    message: str
    failure: bool = True  # counts as a failed authentication (abuse limits)


@dataclass(slots=True)
class Challenging:
    """A CHALLENGE to send; ``state`` is kept for ``finish``."""

    method: str
    extra: dict[str, Any]
    state: Any


@dataclass(slots=True)
class Answer:
    """The dynamic authenticator's answer: its first result ``value`` (the kwargs
    when it returned no positional result), or an ``error`` URI and ``message``."""

    value: Any = None
    error: str | None = None
    message: str = ""


@dataclass(slots=True)
class Ask:
    """Call the dynamic authenticator ``procedure`` (registered on ``realm``, None =
    the realm being joined) with ``args``; ``resume(answer, ctx)`` gives the next
    outcome. No answer within ``timeout`` seconds is an error answer."""

    procedure: str
    realm: str | None
    args: list[Any]
    timeout: float
    resume: Callable[[Answer, AuthContext], Outcome]


Outcome = Accept | Reject | Challenging | Ask


class Authenticator(Protocol):
    method: str

    def applies_to(self, realm: str) -> bool: ...

    def start(self, hello: Hello, ctx: AuthContext) -> Outcome: ...

    def finish(self, state: Any, msg: Authenticate, ctx: AuthContext) -> Outcome: ...


def failed(message: str = "authentication failed") -> Reject:
    return Reject(AUTHENTICATION_FAILED, message)


def random_bytes(ctx: AuthContext, n: int) -> bytes:
    """``n`` random bytes from the injected random source."""
    return ctx.rng.getrandbits(8 * n).to_bytes(n, "big")


def hello_authid(hello: Hello) -> str | None:
    authid = hello.details.get("authid")
    return authid if isinstance(authid, str) and authid else None


def hello_authextra(hello: Hello) -> dict[str, Any]:
    extra = hello.details.get("authextra")
    return extra if isinstance(extra, dict) else {}
