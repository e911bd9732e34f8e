"""Durable record stores of the data-sync extension (``wamp_router.core.sync.store``
describes the protocol they implement). They do I/O, so they live outside ``core``."""

from __future__ import annotations

from .sqlite import SqliteStore, StoreError

__all__ = ["SqliteStore", "StoreError"]
