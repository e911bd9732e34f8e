"""Static authorization: role -> permissions, matched with ``UriMap``.

A permission grants actions on URIs matching its pattern; the best match
(exact, then longest prefix, then wildcard) decides. A permission may force
identity disclosure (``disclose_caller`` for call, ``disclose_publisher`` for
publish) of what it authorizes. Decisions are cached per (role, action, uri),
bounded. What is not allowed here may still be allowed by the realm's dynamic
authorizer (``auth/authorizer.py``).
"""

from __future__ import annotations

from ..config.model import Permission, Role
from .urimap import UriMap

_CACHE_LIMIT = 10_000

Decision = tuple[bool, bool | None]  # (allowed, forced disclosure or None)
_DENY: Decision = (False, None)


def decide(permission: Permission | None, action: str) -> Decision:
    """The decision of the best matching ``permission`` (None: nothing matched)."""
    if permission is None or action not in permission.allow:
        return _DENY
    if action == "call":
        return True, permission.disclose_caller
    if action == "publish":
        return True, permission.disclose_publisher
    return True, None


class Authorizer:
    def __init__(self, roles: tuple[Role, ...]) -> None:
        self._maps: dict[str, UriMap[Permission]] = {}
        for role in roles:
            umap: UriMap[Permission] = UriMap()
            for perm in role.permissions:
                umap.set(perm.uri, perm.match, perm)
            self._maps[role.name] = umap
        self._cache: dict[tuple[str, str, str], Decision] = {}

    def has_role(self, role: str) -> bool:
        return role in self._maps

    def check(self, role: str, action: str, uri: str) -> Decision:
        key = (role, action, uri)
        decision = self._cache.get(key)
        if decision is None:
            umap = self._maps.get(role)
            decision = decide(None if umap is None else umap.best_match(uri), action)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = decision
        return decision

    def allowed(self, role: str, action: str, uri: str) -> bool:
        return self.check(role, action, uri)[0]
