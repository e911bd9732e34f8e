"""Static authorization: role -> permissions, matched with ``UriMap``.

A permission grants actions on URIs matching its pattern; the best match
(exact, then longest prefix, then wildcard) decides. Decisions are cached
per (role, action, uri), bounded.
"""

from __future__ import annotations

from ..config.model import Role
from .urimap import UriMap

_CACHE_LIMIT = 10_000


class Authorizer:
    def __init__(self, roles: tuple[Role, ...]) -> None:
        self._maps: dict[str, UriMap[frozenset[str]]] = {}
        for role in roles:
            umap: UriMap[frozenset[str]] = UriMap()
            for perm in role.permissions:
                umap.set(perm.uri, perm.match, frozenset(perm.allow))
            self._maps[role.name] = umap
        self._cache: dict[tuple[str, str, str], bool] = {}

    def has_role(self, role: str) -> bool:
        return role in self._maps

    def allowed(self, role: str, action: str, uri: str) -> bool:
        key = (role, action, uri)
        decision = self._cache.get(key)
        if decision is None:
            umap = self._maps.get(role)
            allow = None if umap is None else umap.best_match(uri)
            decision = allow is not None and action in allow
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = decision
        return decision
