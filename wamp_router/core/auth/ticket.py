"""Ticket authentication (advanced profile, authentication_ticket) against
static principals. An unknown authid gets the same CHALLENGE as a known one,
so that the existence of a principal is not revealed.

A principal's ticket is stored in the clear (``ticket``) or as a hash
(``ticket_hash = "pbkdf2-sha256$ITERATIONS$SALT$HASH"``, salt and hash in
base64, HASH = PBKDF2-HMAC-SHA256(ticket, salt, ITERATIONS)). Checking a hash
runs PBKDF2 on the router's thread: keep ITERATIONS moderate (the default of
``python -m wamp_router.tools.ticket_hash`` costs ~30 ms) and use the
failed-authentication limits. An unknown authid is checked against a dummy hash
of the same cost, so timing does not reveal it either.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any

from ...config.model import TicketPrincipal
from ..messages import Authenticate, Hello
from .base import Accept, AuthContext, Challenging, Outcome, failed

HASH_SCHEME = "pbkdf2-sha256"


def hash_ticket(ticket: str, salt: bytes, iterations: int) -> str:
    digest = hashlib.pbkdf2_hmac("sha256", ticket.encode("utf-8"), salt, iterations)
    return "$".join((HASH_SCHEME, str(iterations), base64.b64encode(salt).decode("ascii"),
                     base64.b64encode(digest).decode("ascii")))


def parse_ticket_hash(encoded: str) -> tuple[int, bytes, bytes] | str:
    """(iterations, salt, hash) of a ticket hash, or what is wrong with it."""
    parts = encoded.split("$")
    if len(parts) != 4 or parts[0] != HASH_SCHEME:
        return f'expected "{HASH_SCHEME}$ITERATIONS$SALT$HASH"'
    if not parts[1].isdigit() or not 1 <= int(parts[1]) <= 10_000_000:
        return "ITERATIONS must be an integer in 1..10000000"
    try:
        salt = base64.b64decode(parts[2], validate=True)
        digest = base64.b64decode(parts[3], validate=True)
    except (binascii.Error, ValueError):
        return "SALT and HASH must be base64"
    if len(salt) < 8 or len(digest) < 16:
        return "SALT must have at least 8 bytes and HASH at least 16"
    return int(parts[1]), salt, digest


def ticket_matches(ticket: str, encoded: str) -> bool:
    parsed = parse_ticket_hash(encoded)
    if isinstance(parsed, str):
        return False
    iterations, salt, digest = parsed
    candidate = hashlib.pbkdf2_hmac("sha256", ticket.encode("utf-8"), salt, iterations,
                                    len(digest))
    return hmac.compare_digest(candidate, digest)


class TicketAuthenticator:
    method = "ticket"

    def __init__(self, principals: tuple[TicketPrincipal, ...]) -> None:
        self._principals = {p.authid: p for p in principals}
        self._dummy: str | None = None  # an unknown authid costs as much as a hashed one
        for p in principals:
            parsed = parse_ticket_hash(p.ticket_hash) if p.ticket_hash else "plain"
            if not isinstance(parsed, str):
                self._dummy = hash_ticket("", b"dummy-salt", parsed[0])
                break

    def applies_to(self, realm: str) -> bool:
        return any(p.realm is None or p.realm == realm for p in self._principals.values())

    def start(self, hello: Hello, ctx: AuthContext) -> Outcome:
        authid = hello.details.get("authid")
        if not isinstance(authid, str) or not authid:
            return failed("ticket authentication requires an authid in HELLO.Details")
        return Challenging("ticket", {}, authid)

    def _valid(self, principal: TicketPrincipal | None, ticket: str) -> bool:
        if principal is None:
            if self._dummy is not None:
                ticket_matches(ticket, self._dummy)
            return False
        if principal.ticket_hash:
            return ticket_matches(ticket, principal.ticket_hash)
        return hmac.compare_digest(ticket.encode("utf-8"), principal.ticket.encode("utf-8"))

    def finish(self, state: Any, msg: Authenticate, ctx: AuthContext) -> Outcome:
        principal = self._principals.get(state)
        if not self._valid(principal, msg.signature) or principal is None:
            return failed("invalid authid or ticket")
        if principal.realm is not None and principal.realm != ctx.realm:
            return failed(f"principal {state!r} may not join realm {ctx.realm!r}")
        return Accept(principal.authid, principal.role, "ticket", "static")
