"""Ticket authentication (advanced profile, authentication_ticket) against
static principals. An unknown authid gets the same CHALLENGE as a known one,
so that the existence of a principal is not revealed."""

from __future__ import annotations

import hmac
from typing import Any

from ...config.model import TicketPrincipal
from ..messages import Authenticate, Hello
from .base import Accept, AuthContext, Challenging, Outcome, Reject, failed


class TicketAuthenticator:
    method = "ticket"

    def __init__(self, principals: tuple[TicketPrincipal, ...]) -> None:
        self._principals = {p.authid: p for p in principals}

    def applies_to(self, realm: str) -> bool:
        return any(p.realm is None or p.realm == realm for p in self._principals.values())

    def start(self, hello: Hello, ctx: AuthContext) -> Outcome:
        authid = hello.details.get("authid")
        if not isinstance(authid, str) or not authid:
            return failed("ticket authentication requires an authid in HELLO.Details")
        return Challenging("ticket", {}, authid)

    def finish(self, state: Any, msg: Authenticate, ctx: AuthContext) -> Accept | Reject:
        principal = self._principals.get(state)
        if principal is None or not hmac.compare_digest(
            msg.signature.encode("utf-8"), principal.ticket.encode("utf-8")
        ):
            return failed("invalid authid or ticket")
        if principal.realm is not None and principal.realm != ctx.realm:
            return failed(f"principal {state!r} may not join realm {ctx.realm!r}")
        return Accept(principal.authid, principal.role, "ticket", "static")
