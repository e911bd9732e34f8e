"""Abuse limits on authentication: failed attempts per peer address and per authid.

``FailureLog`` remembers the times of recent failures under a key (``peer:HOST``
or ``authid:REALM:AUTHID``) within a sliding window; a key with ``max_failures``
or more failures in the window is refused without checking credentials.
Successful authentications do not reset a key (an attacker could otherwise
interleave a valid login); the window bounds how long a key stays refused.

``DelayedAborts`` holds the ABORTs of failed authentications until their time
(the listener's ``delay``): the session is closed for input at once, the
message goes out when the router's timer fires. Pure: time comes in as ``now``.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Any

from ...config.model import AuthLimits

_MAX_KEYS = 100_000  # bound on remembered keys (oldest activity dropped first)


def peer_host(peer: str) -> str:
    """``tcp:127.0.0.1:53211`` -> ``tcp:127.0.0.1`` (the port does not identify a peer)."""
    if peer.startswith("tcp") and peer.count(":") >= 2:
        return peer.rsplit(":", 1)[0]
    return peer


class FailureLog:
    def __init__(self) -> None:
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, limits: AuthLimits, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - limits.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def refused(self, keys: list[str], limits: AuthLimits, now: float) -> bool:
        for key in keys:
            times = self._recent(key, limits, now)
            if times is not None and len(times) >= limits.max_failures:
                return True
        return False

    def record(self, keys: list[str], limits: AuthLimits, now: float) -> None:
        for key in keys:
            times = self._recent(key, limits, now)
            if times is None:
                if len(self._failures) >= _MAX_KEYS:
                    del self._failures[next(iter(self._failures))]
                times = self._failures[key] = deque(maxlen=max(1, limits.max_failures))
            else:  # most recently active last (dicts keep insertion order)
                del self._failures[key]
                self._failures[key] = times
            times.append(now)

    def __len__(self) -> int:
        return len(self._failures)


class DelayedAborts:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int, Any]] = []  # (at, seq, conn, payload)
        self._seq = 0

    def add(self, at: float, conn: int, payload: Any) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, conn, payload))

    def next_deadline(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def due(self, now: float) -> list[tuple[int, Any]]:
        out: list[tuple[int, Any]] = []
        while self._heap and self._heap[0][0] <= now:
            _, _, conn, payload = heapq.heappop(self._heap)
            out.append((conn, payload))
        return out
