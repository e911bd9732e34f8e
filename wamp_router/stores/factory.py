"""Open the record stores the realms' data-sync domains name (one store per
SQLite file, shared by the domains that name the same file)."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from ..config.model import SyncDomain
from ..core.sync.memory import MemoryStore, ReplicaStore
from ..core.sync.store import RecordStore

if TYPE_CHECKING:
    from ..core.sync.engine import OpenStore


def open_stores() -> OpenStore:
    opened: dict[str, RecordStore] = {}

    def open_store(domain: SyncDomain) -> RecordStore:
        if domain.store == "memory":
            return MemoryStore(secrets.token_hex(8))
        if domain.store == "redis":  # this node's copy; the cluster backplane fills it
            return ReplicaStore()
        from .sqlite import SqliteStore

        path = domain.database
        assert path is not None  # the loader gives every SQLite domain its file
        store = opened.get(path)
        if store is None:
            store = opened[path] = SqliteStore(path)
        return store

    return open_store
