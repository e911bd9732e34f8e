"""Anonymous authentication: every HELLO is accepted with a configured role
and a random authid."""

from __future__ import annotations

from typing import Any

from ...config.model import AnonymousAuth
from ..messages import Authenticate, Hello
from .base import Accept, AuthContext, Outcome, Reject, failed

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def random_authid(ctx: AuthContext) -> str:
    bits = ctx.rng.getrandbits(60)
    chars = [_ALPHABET[(bits >> (5 * i)) & 31] for i in range(12)]
    return "".join(chars[:4]) + "-" + "".join(chars[4:8]) + "-" + "".join(chars[8:])


class AnonymousAuthenticator:
    method = "anonymous"

    def __init__(self, config: AnonymousAuth) -> None:
        self._config = config

    def applies_to(self, realm: str) -> bool:
        return self._config.realms is None or realm in self._config.realms

    def start(self, hello: Hello, ctx: AuthContext) -> Outcome:
        return Accept(random_authid(ctx), self._config.role, "anonymous", "static")

    def finish(self, state: Any, msg: Authenticate, ctx: AuthContext) -> Accept | Reject:
        return failed("anonymous authentication has no challenge")
