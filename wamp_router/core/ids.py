"""WAMP ids (building blocks, "Identifiers"): global scope ids are random in
[1, 2^53]; router and session scope ids are sequential from 1, wrapping to 1
after 2^53 (in a cluster, subscription and registration ids are derived from
their URI and match policy instead, so every node gives the same id).
Randomness is injected (a ``random.Random``-like object).
"""

from __future__ import annotations

import hashlib
from collections.abc import Container
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


def derived_id(kind: str, uri: str, match: str) -> int:
    """A router scope id every node of a cluster computes alike for the same
    subscription or registration (``kind``): a hash of it, in [1, 2^53]."""
    digest = hashlib.blake2b(f"{kind}\0{match}\0{uri}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % MAX_ID + 1


def fresh_id(kind: str, uri: str, match: str, taken: Container[int],
             ids: SequentialIds, shared: bool) -> int:
    """The id of a new subscription or registration: derived when ``shared`` (a
    cluster), else the next sequential one; never one in ``taken`` (a derived id
    that collides falls back to the sequence)."""
    if shared:
        candidate = derived_id(kind, uri, match)
        if candidate not in taken:
            return candidate
    while True:
        candidate = ids.next()
        if candidate not in taken:
            return candidate
