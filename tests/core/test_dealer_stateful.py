"""Stateful property: every CALL from a caller that stays connected gets
exactly one final RESULT or ERROR, whatever callees do or however they leave."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.helpers import Harness
from wamp_router.core.messages import Call, Error, Invocation, Register, Result, Yield

PROCS = ["com.p1", "com.p2", "com.p3"]


class DealerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.h = Harness()
        self.callees: list[int] = []
        self.callers: list[int] = [self.h.join(), self.h.join()]
        self.next_request = 0
        self.answers: dict[tuple[int, int], int] = {}  # (caller, request) -> final answers
        self.invocations: dict[int, list[int]] = {}  # callee -> open invocation ids

    def _collect(self) -> None:
        for caller in self.callers:
            for msg in self.h.take(caller):
                if isinstance(msg, (Result, Error)):
                    key = (caller, msg.request)
                    assert key in self.answers, f"answer to unknown call {msg}"
                    self.answers[key] += 1
        for callee in self.callees:
            for msg in self.h.take(callee):
                if isinstance(msg, Invocation):
                    self.invocations.setdefault(callee, []).append(msg.request)

    @rule(proc=st.sampled_from(PROCS))
    def add_callee(self, proc: str) -> None:
        callee = self.h.join()
        self.callees.append(callee)
        self.h.send(callee, Register(1, {}, proc))
        self._collect()

    @rule(caller_index=st.integers(0, 1), proc=st.sampled_from(PROCS))
    def call(self, caller_index: int, proc: str) -> None:
        caller = self.callers[caller_index]
        self.next_request += 1
        self.answers[(caller, self.next_request)] = 0
        self.h.apply(self.h.router.receive(caller, Call(self.next_request, {}, proc), 0.0))
        self._collect()

    @precondition(lambda self: any(self.invocations.values()))
    @rule(data=st.data(), fail=st.booleans())
    def answer(self, data: st.DataObject, fail: bool) -> None:
        callee = data.draw(st.sampled_from([c for c, i in self.invocations.items() if i]))
        inv = self.invocations[callee].pop(0)
        msg = Error(Invocation.TYPE, inv, {}, "com.err") if fail else Yield(inv, {}, [1])
        self.h.apply(self.h.router.receive(callee, msg, 0.0))
        self._collect()

    @precondition(lambda self: bool(self.callees))
    @rule(data=st.data())
    def lose_callee(self, data: st.DataObject) -> None:
        callee = data.draw(st.sampled_from(self.callees))
        self.callees.remove(callee)
        self.invocations.pop(callee, None)
        self.h.lose(callee)
        self._collect()

    @invariant()
    def at_most_one_answer(self) -> None:
        assert all(n <= 1 for n in self.answers.values()), self.answers

    def teardown(self) -> None:
        for callee in list(self.callees):
            self.h.lose(callee)
        self.callees.clear()
        self._collect()
        assert all(n == 1 for n in self.answers.values()), self.answers
        assert len(self.h.router.realms["realm1"].dealer.calls) == 0


TestDealer = DealerMachine.TestCase
TestDealer.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
