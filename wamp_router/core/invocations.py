"""InvocationTable: the in-flight calls and every index over them.

Single owner of the cross-indexes: by (callee conn, invocation id), by
(caller conn, call request id), by callee conn, by caller conn, and the
deadline heap. Nothing else keeps references to pending invocations, so the
indexes cannot drift apart.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class CallState(Enum):
    ACTIVE = "active"  # waiting for the callee's YIELD/ERROR
    KILLING = "killing"  # canceled in mode "kill": the callee's answer ends the call


@dataclass(slots=True, eq=False)
class Pending:
    caller: int  # caller conn
    caller_request: int
    callee: int  # callee conn
    invocation: int  # invocation request id (callee's session scope)
    registration: Any  # dealer.Registration
    callee_entry: Any  # dealer.Callee (concurrency accounting)
    receive_progress: bool = False
    streaming: bool = False  # progressive call invocation still receiving CALL chunks
    deadline: float = 0.0  # 0 = none
    state: CallState = CallState.ACTIVE
    call: Any = None  # the original CALL (first chunk), kept for rerouting
    caller_identity: tuple[int, str, str] | None = None  # disclosed to the callee
    caller_finished: Any = None  # the caller's set of completed progressive call ids
    tried: list[int] = field(default_factory=list)  # callee conns that answered "unavailable"
    started: float = 0.0  # when the CALL arrived (call latency)
    # a router-originated call (caller conn 0): the final RESULT/ERROR goes to
    # then(message, now) instead of a caller session
    then: Any = None


class InvocationTable:
    __slots__ = ("_by_invocation", "_by_call", "_by_callee", "_by_caller", "_deadlines")

    def __init__(self) -> None:
        self._by_invocation: dict[tuple[int, int], Pending] = {}
        self._by_call: dict[tuple[int, int], Pending] = {}
        self._by_callee: dict[int, dict[tuple[int, int], Pending]] = {}
        self._by_caller: dict[int, dict[tuple[int, int], Pending]] = {}
        self._deadlines: list[tuple[float, int, int]] = []  # (deadline, callee, invocation)

    def add(self, p: Pending) -> None:
        ikey = (p.callee, p.invocation)
        ckey = (p.caller, p.caller_request)
        self._by_invocation[ikey] = p
        self._by_call[ckey] = p
        self._by_callee.setdefault(p.callee, {})[ikey] = p
        self._by_caller.setdefault(p.caller, {})[ckey] = p
        if p.deadline:
            heapq.heappush(self._deadlines, (p.deadline, p.callee, p.invocation))

    def by_invocation(self, callee: int, invocation: int) -> Pending | None:
        return self._by_invocation.get((callee, invocation))

    def by_call(self, caller: int, request: int) -> Pending | None:
        return self._by_call.get((caller, request))

    def remove(self, p: Pending) -> None:
        ikey = (p.callee, p.invocation)
        if self._by_invocation.get(ikey) is not p:
            return
        del self._by_invocation[ikey]
        ckey = (p.caller, p.caller_request)
        if self._by_call.get(ckey) is p:
            del self._by_call[ckey]
        self._drop(self._by_callee, p.callee, ikey)
        self._drop(self._by_caller, p.caller, ckey)

    @staticmethod
    def _drop(index: dict[int, dict[tuple[int, int], Pending]], conn: int,
              key: tuple[int, int]) -> None:
        entries = index.get(conn)
        if entries is not None:
            entries.pop(key, None)
            if not entries:
                del index[conn]

    def of_callee(self, callee: int) -> list[Pending]:
        return sorted(self._by_callee.get(callee, {}).values(), key=lambda p: p.invocation)

    def of_caller(self, caller: int) -> list[Pending]:
        return sorted(self._by_caller.get(caller, {}).values(), key=lambda p: p.caller_request)

    def next_deadline(self) -> float | None:
        heap = self._deadlines
        while heap:
            deadline, callee, invocation = heap[0]
            p = self._by_invocation.get((callee, invocation))
            if p is not None and p.deadline == deadline:
                return deadline
            heapq.heappop(heap)  # answered, canceled or re-timed: stale entry
        return None

    def expired(self, now: float) -> list[Pending]:
        out: list[Pending] = []
        while (deadline := self.next_deadline()) is not None and deadline <= now:
            _, callee, invocation = heapq.heappop(self._deadlines)
            out.append(self._by_invocation[(callee, invocation)])
        return out

    def __len__(self) -> int:
        return len(self._by_invocation)

    def index_sizes(self) -> tuple[int, int, int, int]:
        """Sizes of all indexes (for invariant checks in tests)."""
        return (len(self._by_invocation), len(self._by_call),
                sum(map(len, self._by_callee.values())), sum(map(len, self._by_caller.values())))
