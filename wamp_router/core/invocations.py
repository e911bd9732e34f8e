"""InvocationTable: the in-flight calls and every index over them.

Single owner of the cross-indexes: by (callee conn, invocation id), by
callee conn, and by caller conn. Nothing else keeps references to pending
invocations, so the indexes cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True, eq=False)
class Pending:
    caller: int  # caller conn; 0 once the caller has left
    caller_request: int
    callee: int  # callee conn
    invocation: int  # invocation request id (callee's session scope)
    registration: int


class InvocationTable:
    __slots__ = ("_by_key", "_by_callee", "_by_caller")

    def __init__(self) -> None:
        self._by_key: dict[tuple[int, int], Pending] = {}
        self._by_callee: dict[int, set[tuple[int, int]]] = {}
        self._by_caller: dict[int, set[tuple[int, int]]] = {}

    def add(self, pending: Pending) -> None:
        key = (pending.callee, pending.invocation)
        self._by_key[key] = pending
        self._by_callee.setdefault(pending.callee, set()).add(key)
        self._by_caller.setdefault(pending.caller, set()).add(key)

    def pop(self, callee: int, invocation: int) -> Pending | None:
        key = (callee, invocation)
        pending = self._by_key.pop(key, None)
        if pending is None:
            return None
        self._discard(self._by_callee, pending.callee, key)
        self._discard(self._by_caller, pending.caller, key)
        return pending

    @staticmethod
    def _discard(index: dict[int, set[tuple[int, int]]], conn: int, key: tuple[int, int]) -> None:
        keys = index.get(conn)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del index[conn]

    def pop_callee(self, callee: int) -> list[Pending]:
        """Remove and return every call pending on a callee."""
        out = []
        for key in self._by_callee.pop(callee, set()):
            pending = self._by_key.pop(key)
            self._discard(self._by_caller, pending.caller, key)
            out.append(pending)
        out.sort(key=lambda p: p.invocation)
        return out

    def forget_caller(self, caller: int) -> None:
        """The caller left: its calls stay until the callee answers, which is dropped."""
        for key in self._by_caller.pop(caller, set()):
            self._by_key[key].caller = 0
            self._by_caller.setdefault(0, set()).add(key)

    def __len__(self) -> int:
        return len(self._by_key)
