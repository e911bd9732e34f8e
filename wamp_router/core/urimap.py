"""UriMap[T]: one URI-matching abstraction for broker, dealer and authorizer.

Entries are keyed by (pattern, policy) with policy ``exact``, ``prefix``
(string prefix of the URI) or ``wildcard`` (dot-separated components, an
empty component matches any one component). ``all_matches`` returns every
entry matching a URI; ``best_match`` picks by the spec's precedence: exact,
then the longest prefix, then the wildcard whose first non-wildcard
components come earliest (ties broken by the pattern string).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class UriMap(Generic[T]):
    __slots__ = ("_exact", "_prefix", "_wildcard")

    def __init__(self) -> None:
        self._exact: dict[str, T] = {}
        self._prefix: dict[str, T] = {}
        # component count -> pattern -> (components, value)
        self._wildcard: dict[int, dict[str, tuple[tuple[str, ...], T]]] = {}

    def get(self, pattern: str, match: str = "exact") -> T | None:
        if match == "exact":
            return self._exact.get(pattern)
        if match == "prefix":
            return self._prefix.get(pattern)
        entry = self._wildcard.get(pattern.count(".") + 1, {}).get(pattern)
        return None if entry is None else entry[1]

    def set(self, pattern: str, match: str, value: T) -> None:
        if match == "exact":
            self._exact[pattern] = value
        elif match == "prefix":
            self._prefix[pattern] = value
        else:
            parts = tuple(pattern.split("."))
            self._wildcard.setdefault(len(parts), {})[pattern] = (parts, value)

    def remove(self, pattern: str, match: str) -> None:
        if match == "exact":
            self._exact.pop(pattern, None)
        elif match == "prefix":
            self._prefix.pop(pattern, None)
        else:
            n = pattern.count(".") + 1
            group = self._wildcard.get(n)
            if group is not None:
                group.pop(pattern, None)
                if not group:
                    del self._wildcard[n]

    def exact(self, uri: str) -> T | None:
        """Only the exact entry (the hot path when no patterns exist)."""
        return self._exact.get(uri)

    def has_patterns(self) -> bool:
        return bool(self._prefix) or bool(self._wildcard)

    def _wildcards(self, uri: str) -> Iterator[tuple[str, tuple[str, ...], T]]:
        if not self._wildcard:
            return
        parts = uri.split(".")
        group = self._wildcard.get(len(parts))
        if not group:
            return
        for pattern, (pparts, value) in group.items():
            if all(p == "" or p == u for p, u in zip(pparts, parts, strict=True)):
                yield pattern, pparts, value

    def all_matches(self, uri: str) -> list[T]:
        out: list[T] = []
        value = self._exact.get(uri)
        if value is not None:
            out.append(value)
        for prefix, pvalue in self._prefix.items():
            if uri.startswith(prefix):
                out.append(pvalue)
        out.extend(v for _, _, v in self._wildcards(uri))
        return out

    def best_match(self, uri: str) -> T | None:
        value = self._exact.get(uri)
        if value is not None:
            return value
        best: str | None = None
        for prefix in self._prefix:
            if uri.startswith(prefix) and (best is None or len(prefix) > len(best)):
                best = prefix
        if best is not None:
            return self._prefix[best]
        candidates = [
            (tuple(p == "" for p in pparts), pattern, value)
            for pattern, pparts, value in self._wildcards(uri)
        ]
        if not candidates:
            return None
        candidates.sort(key=lambda c: (c[0], c[1]))
        return candidates[0][2]

    def values(self) -> Iterator[T]:
        yield from self._exact.values()
        yield from self._prefix.values()
        for group in self._wildcard.values():
            for _, value in group.values():
                yield value

    def __len__(self) -> int:
        return len(self._exact) + len(self._prefix) + sum(len(g) for g in self._wildcard.values())
