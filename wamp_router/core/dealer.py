"""The dealer: registrations and routed calls (Basic and Advanced Profile).

Owns the registration index (a ``UriMap`` of ``Registration``s) and, through
``InvocationTable``, the in-flight calls. Implements shared registrations
(``invoke`` policies, per-callee ``concurrency``), pattern-based registrations,
progressive call results and invocations, call canceling (skip / kill /
killnowait), dealer-enforced call timeouts, call rerouting on
``wamp.error.unavailable``, and emits the registration meta events.
Router-originated calls (``call_internal``: the dynamic authenticator and
authorizer) are ordinary pending invocations with caller conn 0 whose final
answer goes to a continuation instead of a caller session.
URI checks and authorization are done by the realm before calling in here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .effects import Effect, Send, Timer, Withdraw
from .errors import (
    CANCELED,
    INVALID_ARGUMENT,
    NO_SUCH_PROCEDURE,
    NO_SUCH_REGISTRATION,
    PAYLOAD_SIZE_EXCEEDED,
    PROCEDURE_ALREADY_EXISTS,
    ProtocolViolation,
    WampError,
)
from .ids import RandomSource, SequentialIds, fresh_id
from .invocations import CallState, InvocationTable, Pending
from .messages import (
    Call,
    Cancel,
    Error,
    Interrupt,
    Invocation,
    Register,
    Registered,
    Result,
    Unregister,
    Unregistered,
    Yield,
)
from .session import Session
from .stats import Stats
from .urimap import UriMap

TIMEOUT = "wamp.error.timeout"
UNAVAILABLE = "wamp.error.unavailable"
NO_AVAILABLE_CALLEE = "wamp.error.no_available_callee"
FEATURE_NOT_SUPPORTED = "wamp.error.feature_not_supported"
POLICIES = ("single", "roundrobin", "random", "first", "last")
CANCEL_MODES = ("skip", "kill", "killnowait")

Emit = Callable[[str, list[Any]], list[Effect]]


@dataclass(slots=True, eq=False)
class Callee:
    session: Session
    concurrency: int = 0  # 0 = unlimited
    forward_timeout: bool = False
    inflight: int = 0
    created: float = 0.0  # when it registered (on its own node, for a remote callee)
    request: int = 0  # its REGISTER's request id (a local callee)


@dataclass(slots=True, eq=False)
class Registration:
    id: int
    procedure: str
    match: str
    invoke: str
    created: float
    callees: list[Callee] = field(default_factory=list)
    next_rr: int = 0


def _interrupt(p: Pending, mode: str, reason: str) -> Send:
    return Send(p.callee, Interrupt(p.invocation, {"mode": mode, "reason": reason}))


def _caller_error(p: Pending, uri: str, message: str) -> Error:
    return Error(Call.TYPE, p.caller_request, {}, uri, [message])


# The continuation of a router-originated call: (final RESULT or ERROR, now) -> effects.
Then = Callable[[Result | Error, float], list[Effect]]


class Dealer:
    def __init__(self, rng: RandomSource, emit: Emit, stats: Stats | None = None) -> None:
        self._rng = rng
        self._emit = emit
        self._stats = stats or Stats()
        self._ids = SequentialIds()
        self.shared_ids = False  # a cluster: registration ids derived from the URI
        # a cluster: roundrobin / random choose among this node's callees first
        self.prefer_local = False
        self._internal_ids = SequentialIds()  # request ids of router-originated calls
        self._map: UriMap[Registration] = UriMap()
        self._by_id: dict[int, Registration] = {}
        self.calls = InvocationTable()
        self.now = 0.0  # the latest time the dealer was told (for continuations)

    # -- registrations ------------------------------------------------------
    def _new_id(self, procedure: str, match: str) -> int:
        return fresh_id("reg", procedure, match, self._by_id,
                        self._ids, self.shared_ids)

    def register(self, session: Session, msg: Register, match: str, now: float) -> list[Effect]:
        options = msg.options
        invoke = options.get("invoke", "single")
        if invoke not in POLICIES:
            raise WampError(INVALID_ARGUMENT, f"unknown invocation policy {invoke!r} "
                            f"(one of {', '.join(POLICIES)})")
        concurrency = options.get("concurrency", 0)
        if type(concurrency) is not int or concurrency < 0:
            raise WampError(INVALID_ARGUMENT, "option 'concurrency' must be an integer >= 0")
        callee = Callee(session, concurrency, options.get("forward_timeout") is True,
                        created=now, request=msg.request)
        reg = self._map.get(msg.procedure, match)
        effects: list[Effect] = []
        if reg is None:
            reg = Registration(self._new_id(msg.procedure, match), msg.procedure, match, invoke,
                               now)
            self._map.set(msg.procedure, match, reg)
            self._by_id[reg.id] = reg
            effects.extend(self._emit("wamp.registration.on_create",
                                      [session.session_id, self.details(reg)]))
        elif reg.invoke == "single" or invoke != reg.invoke:
            raise WampError(
                PROCEDURE_ALREADY_EXISTS,
                f"procedure {msg.procedure!r} is already registered with invocation policy "
                f"{reg.invoke!r}" + ("" if reg.invoke == "single" else f", not {invoke!r}"),
            )
        elif any(c.session is session for c in reg.callees):
            raise WampError(PROCEDURE_ALREADY_EXISTS,
                            f"this session already registered {msg.procedure!r}")
        self._add_callee(reg, callee)
        session.add_registration(reg.id)
        effects.insert(0, Send(session.conn, Registered(msg.request, reg.id)))
        effects.extend(self._emit("wamp.registration.on_register", [session.session_id, reg.id]))
        return effects

    def _add_callee(self, reg: Registration, callee: Callee) -> None:
        """In a cluster, "first" and "last" callees are ordered by when they
        registered (each on its own node's clock, then by session id), so every
        node agrees which one is first, whatever order it heard of them in."""
        callees = reg.callees
        if not self.shared_ids or reg.invoke not in ("first", "last"):
            callees.append(callee)
            return
        key = (callee.created, callee.session.session_id)
        i = len(callees)
        while i and (callees[i - 1].created, callees[i - 1].session.session_id) > key:
            i -= 1
        callees.insert(i, callee)

    def unregister(self, session: Session, msg: Unregister) -> list[Effect]:
        reg = self._by_id.get(msg.registration)
        if reg is None or not any(c.session is session for c in reg.callees):
            raise WampError(
                NO_SUCH_REGISTRATION, f"no registration {msg.registration} for this session"
            )
        effects: list[Effect] = [Send(session.conn, Unregistered(msg.request))]
        effects.extend(self._detach(session, reg))
        return effects

    def _detach(self, session: Session, reg: Registration, quiet: bool = False) -> list[Effect]:
        reg.callees = [c for c in reg.callees if c.session is not session]
        if session.registrations:
            session.registrations.discard(reg.id)  # type: ignore[union-attr]
        effects = [] if quiet else self._emit("wamp.registration.on_unregister",
                                              [session.session_id, reg.id])
        if not reg.callees:
            self._map.remove(reg.procedure, reg.match)
            del self._by_id[reg.id]
            if not quiet:
                effects.extend(self._emit("wamp.registration.on_delete",
                                          [session.session_id, reg.id]))
        return effects

    # -- callees on other nodes of a cluster ---------------------------------
    def register_proxy(self, proxy: Session, procedure: str, match: str, invoke: str,
                       concurrency: int, now: float, forward_timeout: bool = False,
                       created: float = 0.0) -> bool:
        """A callee on another node (``proxy`` stands for it): it takes part in
        this node's callee choice. No REGISTERED and no meta events (its own node
        sends those). False when it conflicts with what is registered here."""
        reg = self._map.get(procedure, match)
        if reg is None:
            reg = Registration(self._new_id(procedure, match), procedure, match, invoke, now)
            self._map.set(procedure, match, reg)
            self._by_id[reg.id] = reg
        elif reg.invoke == "single" or invoke != reg.invoke:
            return False
        if any(c.session is proxy for c in reg.callees):
            return True
        self._add_callee(reg, Callee(proxy, concurrency, forward_timeout, created=created or now))
        reg.created = min(reg.created, created or now)  # the cluster's first callee's time
        proxy.add_registration(reg.id)
        return True

    def revoke(self, session: Session, reg: Registration, reason: str) -> list[Effect]:
        """Take ``reg`` away from its callee ``session``: if its REGISTERED has not
        left yet (a cluster holds it), the callee gets ERROR procedure_already_exists
        instead; else a revocation (UNREGISTERED with request 0, for callees that
        announced the feature). The registration itself lives on (another node's
        callee takes it): no on_delete."""
        request = next((c.request for c in reg.callees if c.session is session), 0)
        notice = None
        if "registration_revocation" in session.callee_features:
            notice = Unregistered(0, {"registration": reg.id, "reason": reason})
        refusal = Error(Register.TYPE, request, {}, PROCEDURE_ALREADY_EXISTS, [reason])
        effects: list[Effect] = [Withdraw(session.conn, request, refusal, notice)]
        effects.extend(self._emit("wamp.registration.on_unregister",
                                  [session.session_id, reg.id]))
        effects.extend(self._detach(session, reg, quiet=True))
        return effects

    def unregister_proxy(self, proxy: Session, procedure: str, match: str) -> None:
        reg = self._map.get(procedure, match)
        if reg is not None and any(c.session is proxy for c in reg.callees):
            self._detach(proxy, reg, quiet=True)

    def call_remote(self, link: Session, request: int, callee: Session, procedure: str,
                    details: dict[str, Any], args: list[Any] | None,
                    kwargs: dict[str, Any] | None, now: float) -> list[Effect]:
        """A call routed here by another node to the local ``callee`` (its caller is
        ``link``, this node's stand-in for the calling node). Raises WampError
        ``wamp.error.unavailable`` when the callee cannot take it (the calling node
        then tries another callee)."""
        regs = [r for r in self._map.all_matches(procedure)
                if any(c.session is callee for c in r.callees)]
        best = self.lookup(procedure)
        reg = best if best in regs else (regs[0] if regs else None)
        entry = None if reg is None else next(c for c in reg.callees if c.session is callee)
        if reg is None or entry is None or (entry.concurrency
                                            and entry.inflight >= entry.concurrency):
            raise WampError(UNAVAILABLE, f"the callee of {procedure!r} on this node cannot "
                            "take the call")
        options: dict[str, Any] = {}  # what _invoke reads back (as for a local CALL)
        if details.get("timeout") and entry.forward_timeout:
            options["timeout"] = details["timeout"]
        for key in ("receive_progress", "progress"):
            if details.get(key) is True:
                options[key] = True
        p = Pending(link.conn, request, callee.conn, 0, reg, entry,
                    call=Call(request, options, procedure, args, kwargs), started=now)
        p.receive_progress = details.get("receive_progress") is True
        if details.get("progress") is True:
            p.streaming = True
            p.caller_finished = link.progressive_done()
        if "caller" in details:
            p.caller_identity = (details["caller"], details.get("caller_authid", ""),
                                 details.get("caller_authrole", ""))
        return [self._invoke(p, entry)]

    # -- calls --------------------------------------------------------------
    def lookup(self, procedure: str) -> Registration | None:
        reg = self._map.exact(procedure)
        if reg is None and self._map.has_patterns():
            reg = self._map.best_match(procedure)
        return reg

    def call(self, session: Session, msg: Call, now: float, disclose: bool) -> list[Effect]:
        options = msg.options
        if self.calls.by_call(session.conn, msg.request) is not None or (
            session.finished_progressive and msg.request in session.finished_progressive
        ):
            return self._continuation(session, msg)
        reg = self.lookup(msg.procedure)
        if reg is None:
            raise WampError(NO_SUCH_PROCEDURE,
                            f"no callee registered for procedure {msg.procedure!r}")
        callee = self._pick(reg, ())
        if callee is None:
            raise WampError(NO_AVAILABLE_CALLEE, f"every callee of {msg.procedure!r} is at its "
                            "concurrency limit")
        pending = Pending(session.conn, msg.request, callee.session.conn, 0, reg, callee, call=msg,
                          started=now)
        if disclose:
            pending.caller_identity = (session.session_id, session.authid, session.authrole)
        if options:
            self._apply_options(pending, session, callee, msg, now)
            if pending.deadline:
                return [self._invoke(pending, callee), Timer(pending.deadline)]
        return [self._invoke(pending, callee)]

    def _apply_options(self, p: Pending, caller: Session, callee: Callee, msg: Call,
                       now: float) -> None:
        options = msg.options
        if options.get("receive_progress") is True:
            p.receive_progress = True
        if options.get("progress") is True:
            if "progressive_call_invocations" not in caller.caller_features:
                raise ProtocolViolation("CALL with progress=true, but the caller did not announce "
                                        "progressive_call_invocations")
            features = callee.session.callee_features
            if ("progressive_call_invocations" not in features
                    or not features & {"call_canceling", "call_cancelling"}):
                raise WampError(FEATURE_NOT_SUPPORTED, "the callee does not support progressive "
                                "call invocations")
            p.streaming = True
            p.caller_finished = caller.progressive_done()
        timeout = options.get("timeout", 0)
        if timeout:
            if type(timeout) is not int or timeout < 0:
                raise WampError(INVALID_ARGUMENT, "CALL option 'timeout' must be an integer "
                                "number of milliseconds >= 0")
            if not callee.forward_timeout:
                p.deadline = now + timeout / 1000.0

    def _invoke(self, p: Pending, callee: Callee) -> Send:
        msg: Call = p.call
        callee_session = callee.session
        p.callee = callee_session.conn
        p.callee_entry = callee
        p.invocation = callee_session.out_ids.next()
        callee.inflight += 1
        self.calls.add(p)
        reg = p.registration
        details: dict[str, Any] = {} if reg.match == "exact" else {"procedure": msg.procedure}
        if msg.options:
            if p.receive_progress:
                details["receive_progress"] = True
            if p.streaming:
                details["progress"] = True
            timeout = msg.options.get("timeout")
            if timeout and callee.forward_timeout:
                details["timeout"] = timeout
        if p.caller_identity is not None:
            details["caller"], details["caller_authid"], details["caller_authrole"] = (
                p.caller_identity)
        return Send(p.callee, Invocation(p.invocation, reg.id, details, msg.args, msg.kwargs))

    def _continuation(self, session: Session, msg: Call) -> list[Effect]:
        """A CALL reusing the request id of a call in flight: the next chunk of a
        progressive call invocation; a chunk of an already completed one is
        discarded (the spec's "continuations on completed calls")."""
        p = self.calls.by_call(session.conn, msg.request)
        if p is None:
            return []
        if not p.streaming:
            raise ProtocolViolation(f"CALL request id {msg.request} is already in use by a "
                                    "call in flight")
        if msg.options.get("progress") is not True:
            p.streaming = False
        details: dict[str, Any] = {"progress": True} if p.streaming else {}
        return [Send(p.callee, Invocation(p.invocation, p.registration.id, details,
                                          msg.args, msg.kwargs))]

    def _pick(self, reg: Registration, exclude: tuple[int, ...] | list[int]) -> Callee | None:
        callees = reg.callees
        if len(callees) == 1 and not exclude:
            only = callees[0]
            return only if not only.concurrency or only.inflight < only.concurrency else None
        eligible = [c for c in callees if c.session.conn not in exclude
                    and (not c.concurrency or c.inflight < c.concurrency)]
        if not eligible:
            return None
        if self.prefer_local and reg.invoke in ("roundrobin", "random"):
            local = [c for c in eligible if c.session.conn > 0]  # (proxies: < 0)
            if local:
                eligible = local
        if reg.invoke == "last":
            return eligible[-1]
        if reg.invoke == "random":
            return eligible[self._rng.getrandbits(32) % len(eligible)]
        if reg.invoke == "roundrobin":
            n = len(callees)
            for step in range(n):
                candidate = callees[(reg.next_rr + step) % n]
                if candidate in eligible:
                    reg.next_rr = (reg.next_rr + step + 1) % n
                    return candidate
        return eligible[0]

    # -- answers from callees ----------------------------------------------
    def _finish(self, p: Pending) -> None:
        self.calls.remove(p)
        p.callee_entry.inflight -= 1
        finished = p.caller_finished
        if finished is not None:  # remember completed progressive calls (bounded)
            if len(finished) >= 256:
                finished.clear()
            finished.add(p.caller_request)

    def yield_(self, session: Session, msg: Yield, now: float = 0.0) -> list[Effect]:
        p = self.calls.by_invocation(session.conn, msg.request)
        if p is None:
            return []  # unknown or abandoned invocation: ignored, as the spec says
        if msg.options.get("progress") is True:
            if not p.receive_progress:
                return []  # the caller did not ask for progressive results
            return [Send(p.caller, Result(p.caller_request, {"progress": True},
                                          msg.args, msg.kwargs))]
        self._finish(p)
        if now:
            self.now = now
            self._stats.call_finished(now - p.started)
        if p.then is not None:
            return self._reply(p, Result(p.caller_request, {}, msg.args, msg.kwargs))
        return [Send(p.caller, Result(p.caller_request, {}, msg.args, msg.kwargs))]

    def _reply(self, p: Pending, msg: Result | Error) -> list[Effect]:
        """The final answer of a call: to its caller, or to the router's continuation."""
        if p.then is None:
            return [Send(p.caller, msg)]
        then: Then = p.then
        return then(msg, self.now)

    def error(self, session: Session, msg: Error, now: float = 0.0) -> list[Effect]:
        p = self.calls.by_invocation(session.conn, msg.request)
        if p is None:
            return []
        if now:
            self.now = now
        if msg.error == UNAVAILABLE and p.state is CallState.ACTIVE and not p.streaming:
            return self._reroute(p)
        self._finish(p)
        if now:
            self._stats.call_finished(now - p.started)
        return self._reply(p, Error(Call.TYPE, p.caller_request, {}, msg.error,
                                    msg.args, msg.kwargs))

    def _reroute(self, p: Pending) -> list[Effect]:
        self._finish(p)
        p.tried.append(p.callee)
        reg: Registration = p.registration
        nxt: Callee | None
        if reg.invoke == "single" or self._by_id.get(reg.id) is not reg:
            nxt = None
        else:
            nxt = self._pick(reg, p.tried)
        if nxt is None:
            return self._reply(p, _caller_error(p, NO_AVAILABLE_CALLEE,
                                                f"no callee of {p.call.procedure!r} is available"))
        p.state = CallState.ACTIVE
        return [self._invoke(p, nxt)]

    def undeliverable(self, callee: int, invocation: int, size: int,
                      uri: str = PAYLOAD_SIZE_EXCEEDED, why: str = "") -> list[Effect]:
        """The adapter could not deliver the INVOCATION: the call ends with an ERROR."""
        p = self.calls.by_invocation(callee, invocation)
        if p is None:
            return []
        self._finish(p)
        return self._reply(p, _caller_error(p, uri, why or f"the invocation ({size} bytes) "
                                            "exceeds what the callee's transport accepts"))

    # -- cancel and timeouts -------------------------------------------------
    def cancel(self, session: Session, msg: Cancel) -> list[Effect]:
        mode = msg.options.get("mode", "killnowait")
        if mode not in CANCEL_MODES:
            raise WampError(INVALID_ARGUMENT, f"unknown cancel mode {mode!r} "
                            f"(one of {', '.join(CANCEL_MODES)})")
        p = self.calls.by_call(session.conn, msg.request)
        if p is None or p.state is not CallState.ACTIVE:
            return []  # already answered (or being killed): nothing to cancel
        return self._stop(p, mode, CANCELED, "canceled by the caller")

    def _stop(self, p: Pending, mode: str, uri: str, message: str) -> list[Effect]:
        cancels = p.callee_entry.session.callee_features & {"call_canceling", "call_cancelling"}
        if not cancels:
            mode = "skip"
        if mode == "kill":
            p.state = CallState.KILLING
            p.deadline = 0.0
            return [_interrupt(p, "kill", uri)]
        self._finish(p)
        effects: list[Effect] = []
        if mode == "killnowait":
            effects.append(_interrupt(p, "killnowait", uri))
        effects[:0] = self._reply(p, _caller_error(p, uri, message))
        return effects

    def next_deadline(self) -> float | None:
        return self.calls.next_deadline()

    def on_timer(self, now: float) -> list[Effect]:
        self.now = now
        effects: list[Effect] = []
        for p in self.calls.expired(now):
            effects.extend(self._stop(p, "killnowait", TIMEOUT, (
                "no answer in time" if p.then is not None
                else "the call timed out (CALL option 'timeout')")))
        return effects

    # -- router-originated calls ---------------------------------------------
    def call_internal(self, procedure: str, args: list[Any], now: float, timeout: float,
                      then: Then) -> tuple[int, list[Effect]]:
        """A call made by the router itself (dynamic authenticator and authorizer):
        no caller session (caller conn 0), no identity disclosed; the final RESULT
        or ERROR (also ``wamp.error.timeout`` after ``timeout`` s, or
        ``wamp.error.canceled`` when the callee leaves) goes to ``then``. Raises
        ``WampError`` when nobody can take the call. Returns the call's handle
        (for ``abandon``) and the effects."""
        self.now = now
        reg = self.lookup(procedure)
        if reg is None:
            raise WampError(NO_SUCH_PROCEDURE, f"no callee registered for procedure "
                            f"{procedure!r}")
        callee = self._pick(reg, ())
        if callee is None:
            raise WampError(NO_AVAILABLE_CALLEE, f"every callee of {procedure!r} is at its "
                            "concurrency limit")
        request = self._internal_ids.next()
        call = Call(request, {}, procedure, args)
        p = Pending(0, request, callee.session.conn, 0, reg, callee, call=call, started=now,
                    then=then, deadline=now + timeout if timeout > 0 else 0.0)
        effects: list[Effect] = [self._invoke(p, callee)]
        if p.deadline:
            effects.append(Timer(p.deadline))
        return request, effects

    def abandon(self, request: int) -> list[Effect]:
        """Forget a router-originated call whose answer is no longer wanted; a callee
        that supports canceling gets INTERRUPT."""
        p = self.calls.by_call(0, request)
        if p is None:
            return []
        self._finish(p)
        if p.callee_entry.session.callee_features & {"call_canceling", "call_cancelling"}:
            return [_interrupt(p, "killnowait", CANCELED)]
        return []

    # -- sessions leaving ----------------------------------------------------
    def session_left(self, session: Session, quiet: bool = False,
                     why: str = "the callee left before answering the call") -> list[Effect]:
        effects: list[Effect] = []
        for reg_id in sorted(session.registrations):
            reg = self._by_id.get(reg_id)
            if reg is not None:
                effects.extend(self._detach(session, reg, quiet))
        for p in self.calls.of_callee(session.conn):
            self._finish(p)
            effects.extend(self._reply(p, _caller_error(p, CANCELED, why)))
        for p in self.calls.of_caller(session.conn):
            self._finish(p)
            if p.callee_entry.session.callee_features & {"call_canceling", "call_cancelling"}:
                effects.append(_interrupt(p, "killnowait", CANCELED))
        return effects

    # -- introspection (meta API) -------------------------------------------
    def registration(self, reg_id: int) -> Registration | None:
        return self._by_id.get(reg_id)

    def registrations(self) -> list[Registration]:
        return list(self._by_id.values())

    def get_exact(self, procedure: str, match: str) -> Registration | None:
        return self._map.get(procedure, match)

    @staticmethod
    def details(reg: Registration) -> dict[str, Any]:
        created = datetime.fromtimestamp(reg.created, UTC).isoformat().replace("+00:00", "Z")
        return {"id": reg.id, "created": created, "uri": reg.procedure, "match": reg.match,
                "invoke": reg.invoke}
