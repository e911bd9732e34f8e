"""The dealer: registrations and routed calls.

Owns the registration index (a ``UriMap`` of ``Registration``s) and, through
``InvocationTable``, the in-flight calls. Authorization and URI checks are
done by the realm before calling in here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .effects import Effect, Send
from .errors import (
    CANCELED,
    NO_SUCH_PROCEDURE,
    NO_SUCH_REGISTRATION,
    PROCEDURE_ALREADY_EXISTS,
    WampError,
)
from .ids import SequentialIds
from .invocations import InvocationTable, Pending
from .messages import (
    Call,
    Error,
    Invocation,
    Register,
    Registered,
    Result,
    Unregister,
    Unregistered,
    Yield,
)
from .session import Session
from .urimap import UriMap


@dataclass(slots=True, eq=False)
class Registration:
    id: int
    procedure: str
    match: str
    created: float
    callees: list[Session] = field(default_factory=list)


class Dealer:
    def __init__(self) -> None:
        self._ids = SequentialIds()
        self._regs: UriMap[Registration] = UriMap()
        self._by_id: dict[int, Registration] = {}
        self.calls = InvocationTable()

    def register(self, session: Session, msg: Register, match: str, now: float) -> list[Effect]:
        if self._regs.get(msg.procedure, match) is not None:
            raise WampError(
                PROCEDURE_ALREADY_EXISTS,
                f"procedure {msg.procedure!r} (match {match!r}) is already registered",
            )
        reg = Registration(self._ids.next(), msg.procedure, match, now, [session])
        self._regs.set(msg.procedure, match, reg)
        self._by_id[reg.id] = reg
        session.registrations.add(reg.id)
        return [Send(session.conn, Registered(msg.request, reg.id))]

    def unregister(self, session: Session, msg: Unregister) -> list[Effect]:
        reg = self._by_id.get(msg.registration)
        if reg is None or session not in reg.callees:
            raise WampError(
                NO_SUCH_REGISTRATION, f"no registration {msg.registration} for this session"
            )
        self._remove(session, reg)
        return [Send(session.conn, Unregistered(msg.request))]

    def _remove(self, session: Session, reg: Registration) -> None:
        reg.callees.remove(session)
        session.registrations.discard(reg.id)
        if not reg.callees:
            self._regs.remove(reg.procedure, reg.match)
            del self._by_id[reg.id]

    def call(self, session: Session, msg: Call) -> list[Effect]:
        reg = self._regs.exact(msg.procedure)
        if reg is None and self._regs.has_patterns():
            reg = self._regs.best_match(msg.procedure)
        if reg is None:
            raise WampError(NO_SUCH_PROCEDURE, f"no callee registered for procedure {msg.procedure!r}")
        callee = reg.callees[0]
        invocation_id = callee.out_ids.next()
        self.calls.add(Pending(session.conn, msg.request, callee.conn, invocation_id, reg.id))
        details: dict[str, Any] = {} if reg.match == "exact" else {"procedure": msg.procedure}
        return [Send(callee.conn, Invocation(invocation_id, reg.id, details, msg.args, msg.kwargs))]

    def yield_(self, session: Session, msg: Yield) -> list[Effect]:
        pending = self.calls.pop(session.conn, msg.request)
        if pending is None or not pending.caller:
            return []  # unknown or abandoned invocation: ignored, as the spec says
        return [Send(pending.caller, Result(pending.caller_request, {}, msg.args, msg.kwargs))]

    def error(self, session: Session, msg: Error) -> list[Effect]:
        pending = self.calls.pop(session.conn, msg.request)
        if pending is None or not pending.caller:
            return []
        return [
            Send(
                pending.caller,
                Error(Call.TYPE, pending.caller_request, {}, msg.error, msg.args, msg.kwargs),
            )
        ]

    def session_left(self, session: Session) -> list[Effect]:
        for reg_id in list(session.registrations):
            reg = self._by_id.get(reg_id)
            if reg is not None:
                self._remove(session, reg)
        effects: list[Effect] = []
        for pending in self.calls.pop_callee(session.conn):
            if pending.caller:
                effects.append(
                    Send(
                        pending.caller,
                        Error(
                            Call.TYPE,
                            pending.caller_request,
                            {},
                            CANCELED,
                            ["the callee left before answering the call"],
                        ),
                    )
                )
        self.calls.forget_caller(session.conn)
        return effects

    def registration(self, reg_id: int) -> Registration | None:
        return self._by_id.get(reg_id)
