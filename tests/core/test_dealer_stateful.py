"""Stateful property of the dealer against a simple model: random register /
unregister / call / yield / progress / error / cancel / timeout / leave.

- every CALL from a caller that stays gets exactly one final RESULT or ERROR;
- no message ever goes to a session that left;
- the in-flight tables are empty once every callee is gone, and their
  indexes always agree in size;
- ``wamp.registration.count_callees`` agrees with the model.
"""

from __future__ import annotations

from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.helpers import ROLES, Harness
from wamp_router.core.messages import (
    Call,
    Cancel,
    Error,
    Hello,
    Invocation,
    Register,
    Registered,
    Result,
    Unregister,
    Welcome,
    Yield,
)

PROCS = ["com.p1", "com.p2"]
CANCELING = {**ROLES, "callee": {"features": {"call_canceling": True}}}


class DealerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.h = Harness()
        self.callers = [self._join(ROLES), self._join(ROLES)]
        self.callees: dict[int, dict[str, int]] = {}  # conn -> procedure -> registration id
        self.gone: set[int] = set()
        self.next_request = 0
        self.answers: dict[tuple[int, int], int] = {}  # (caller, request) -> final answers
        self.open_calls: dict[tuple[int, int], bool] = {}  # unanswered (caller, request)
        self.invocations: dict[int, list[int]] = {}  # callee -> open invocation ids
        self.meta_caller = self._join(ROLES)

    def _join(self, roles: dict[str, Any]) -> int:
        conn = self.h.connect()
        [welcome] = self.h.send(conn, Hello("realm1", {"roles": roles}))
        assert isinstance(welcome, Welcome)
        return conn

    def _collect(self) -> None:
        for conn in self.gone:
            assert self.h.take(conn) == [], "a message went to a session that left"
        for caller in self.callers:
            for msg in self.h.take(caller):
                if isinstance(msg, (Result, Error)):
                    if isinstance(msg, Result) and msg.details.get("progress"):
                        continue
                    key = (caller, msg.request)
                    assert key in self.answers, f"answer to unknown call {msg}"
                    self.answers[key] += 1
                    self.open_calls.pop(key, None)
        for callee in self.callees:
            for msg in self.h.take(callee):
                if isinstance(msg, Invocation):
                    self.invocations.setdefault(callee, []).append(msg.request)

    @rule(proc=st.sampled_from(PROCS), cancels=st.booleans(),
          policy=st.sampled_from(["single", "roundrobin", "first"]))
    def add_callee(self, proc: str, cancels: bool, policy: str) -> None:
        callee = self._join(CANCELING if cancels else ROLES)
        self.callees[callee] = {}
        [reply] = self.h.send(callee, Register(1, {"invoke": policy}, proc))
        if isinstance(reply, Registered):
            self.callees[callee][proc] = reply.registration
        self._collect()

    @precondition(lambda self: any(self.callees.values()))
    @rule(data=st.data())
    def unregister(self, data: st.DataObject) -> None:
        callee = data.draw(st.sampled_from([c for c, r in self.callees.items() if r]))
        proc = data.draw(st.sampled_from(sorted(self.callees[callee])))
        reg = self.callees[callee].pop(proc)
        self.h.send(callee, Unregister(2, reg))
        self._collect()

    @rule(caller_index=st.integers(0, 1), proc=st.sampled_from(PROCS),
          timeout=st.sampled_from([0, 0, 100]), progress=st.booleans())
    def call(self, caller_index: int, proc: str, timeout: int, progress: bool) -> None:
        caller = self.callers[caller_index]
        self.next_request += 1
        key = (caller, self.next_request)
        self.answers[key] = 0
        self.open_calls[key] = True
        options: dict[str, Any] = {"timeout": timeout} if timeout else {}
        if progress:
            options["receive_progress"] = True
        self.h.apply(self.h.router.receive(caller, Call(key[1], options, proc), self.h.now))
        self._collect()

    @precondition(lambda self: any(self.invocations.values()))
    @rule(data=st.data(), kind=st.sampled_from(["yield", "error", "progress", "unavailable"]))
    def answer(self, data: st.DataObject, kind: str) -> None:
        callee = data.draw(st.sampled_from([c for c, i in self.invocations.items() if i]))
        inv = self.invocations[callee][0]
        if kind == "progress":
            msg: Any = Yield(inv, {"progress": True}, [0])
        else:
            self.invocations[callee].pop(0)
            msg = (Yield(inv, {}, [1]) if kind == "yield" else Error(
                Invocation.TYPE, inv, {}, "wamp.error.unavailable" if kind == "unavailable"
                else "com.err"))
        self.h.apply(self.h.router.receive(callee, msg, self.h.now))
        self._collect()

    @precondition(lambda self: bool(self.open_calls))
    @rule(data=st.data(), mode=st.sampled_from(["skip", "kill", "killnowait"]))
    def cancel(self, data: st.DataObject, mode: str) -> None:
        caller, request = data.draw(st.sampled_from(sorted(self.open_calls)))
        self.h.apply(self.h.router.receive(caller, Cancel(request, {"mode": mode}), self.h.now))
        self._collect()

    @rule()
    def time_passes(self) -> None:
        self.h.advance(0.06)
        self._collect()

    @precondition(lambda self: bool(self.callees))
    @rule(data=st.data())
    def lose_callee(self, data: st.DataObject) -> None:
        callee = data.draw(st.sampled_from(sorted(self.callees)))
        del self.callees[callee]
        self.invocations.pop(callee, None)
        self.gone.add(callee)
        self.h.lose(callee)
        self._collect()

    @invariant()
    def consistent(self) -> None:
        assert all(n <= 1 for n in self.answers.values()), self.answers
        sizes = self.h.router.realms["realm1"].dealer.calls.index_sizes()
        assert len(set(sizes)) == 1, sizes

    @invariant()
    def meta_agrees(self) -> None:
        counts: dict[int, int] = {}
        for regs in self.callees.values():
            for reg in regs.values():
                counts[reg] = counts.get(reg, 0) + 1
        for reg, n in counts.items():
            [res] = self.h.send(self.meta_caller, Call(
                1, {}, "wamp.registration.count_callees", [reg]))
            assert isinstance(res, Result) and res.args == [n], (reg, n, res)

    def teardown(self) -> None:
        for callee in list(self.callees):
            self.gone.add(callee)
            self.h.lose(callee)
        self.callees.clear()
        self._collect()
        # killed-in-"kill"-mode calls end when their callee leaves, too
        assert all(n == 1 for n in self.answers.values()), self.answers
        assert self.h.router.realms["realm1"].dealer.calls.index_sizes() == (0, 0, 0, 0)


TestDealer = DealerMachine.TestCase
TestDealer.settings = settings(max_examples=80, stateful_step_count=35, deadline=None)
