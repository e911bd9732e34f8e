"""WAMP ids (building blocks, "Identifiers"): global scope ids are random in
[1, 2^53]; router and session scope ids are sequential from 1, wrapping to 1
after 2^53. Randomness is injected (a ``random.Random``-like object).
"""

from __future__ import annotations

from typing import Protocol

MAX_ID = 2**53


class RandomSource(Protocol):
    def getrandbits(self, k: int, /) -> int: ...


def global_id(rng: RandomSource) -> int:
    """A random id, uniform over [1, 2^53]."""
    return rng.getrandbits(53) + 1


class SequentialIds:
    """Router/session scope ids: 1, 2, 3, ... wrapping to 1 after 2^53."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        self._last = 1 if self._last >= MAX_ID else self._last + 1
        return self._last
