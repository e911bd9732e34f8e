"""The ``[realms.sync]`` table: data-sync domains of a realm.

    [realms.sync]
    api_prefix = "sync."                 # procedures sync.get, sync.patch, ...; never "wamp."

    [[realms.sync.domains]]
    prefix = "app.doc."                  # record topics app.doc.<anything>
    store = "sqlite"                     # "memory" (default), "sqlite" or "redis" (a cluster)
    database = "data/realm1.sqlite3"     # SQLite file, relative to the config file
    conflict = "rebase"                  # "reject", "rebase" (default) or "lww"
    create = "implicit"                  # "implicit" (first write creates) or "explicit"
    history = { max_versions = 1000, max_age = 604800 }   # per record; 0 = unbounded
    checkpoint_every = 100               # value checkpoints for sync.get_at
    disclose_author = false              # "by": the writer's authid in patch events
    limits = { max_record_bytes = 1048576, max_ops = 1000, max_depth = 64,
               max_key_length = 256, max_records = 0 }
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast

from .auth_loader import base_dir
from .model import Sync, SyncDomain, SyncLimits

if TYPE_CHECKING:
    from .loader import _Table

_SYNC_KEYS = ("api_prefix", "domains")
_DOMAIN_KEYS = ("prefix", "store", "database", "conflict", "create", "history",
                "checkpoint_every", "disclose_author", "limits")
_HISTORY_KEYS = ("max_versions", "max_age")
_LIMIT_KEYS = ("max_record_bytes", "max_ops", "max_depth", "max_key_length", "max_records")
STORES = ("memory", "sqlite", "redis")
CONFLICTS = ("reject", "rebase", "lww")
CREATES = ("implicit", "explicit")
Check = Callable[[str, str], "str | None"]  # check_pattern(uri, match) without an import cycle


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def parse_sync(table: _Table, realm: str, check: Check) -> Sync | None:
    sync = table.table("sync")
    if sync is None:
        return None
    sync.check_keys(_SYNC_KEYS)
    api = sync.string("api_prefix", nonempty=True)
    if api is not None:
        problem = check(api.rstrip("."), "exact")
        if problem is not None or not api.endswith("."):
            why = problem or 'must end with a dot, e.g. "sync."'
            sync.error("api_prefix", f"invalid URI prefix {_q(api)}: {why}")
        elif api.startswith("wamp."):
            sync.error("api_prefix", "the wamp. prefix is reserved for the WAMP protocol")
    api = api or "sync."
    domains: list[SyncDomain] = []
    for dt in sync.tables("domains", required=True) or []:
        domain = _parse_domain(dt, realm, check)
        if domain is None:
            continue
        for other in domains:
            if domain.prefix.startswith(other.prefix) or other.prefix.startswith(domain.prefix):
                dt.error("prefix", f"domain {_q(domain.prefix)} overlaps domain "
                         f"{_q(other.prefix)} (a record must belong to one domain)")
        if domain.prefix.startswith(api) or api.startswith(domain.prefix):
            dt.error("prefix", f"domain {_q(domain.prefix)} overlaps the API prefix {_q(api)}")
        domains.append(domain)
    return Sync(api_prefix=api, domains=tuple(domains))


def _parse_domain(t: _Table, realm: str, check: Check) -> SyncDomain | None:
    t.check_keys(_DOMAIN_KEYS)
    prefix = t.string("prefix", required=True, nonempty=True)
    if prefix is not None:
        problem = check(prefix, "prefix")
        if problem is not None:
            t.error("prefix", f"invalid URI prefix {_q(prefix)}: {problem}")
            prefix = None
        elif prefix.startswith("wamp."):
            t.error("prefix", "the wamp. prefix is reserved for the WAMP protocol")
            prefix = None
    store = t.choice("store", STORES, "store") or "memory"
    database = t.string("database", nonempty=True)
    if database is not None and store != "sqlite":
        t.error("database", 'only used with store = "sqlite"')
    path: str | None = None
    if store == "sqlite":
        raw = Path(database or f"data/{realm or 'realm'}.sqlite3").expanduser()
        path = str(raw if raw.is_absolute() else base_dir(t.ctx.source) / raw)
    conflict = t.choice("conflict", CONFLICTS, "conflict policy") or "rebase"
    create = t.choice("create", CREATES, "create mode") or "implicit"
    versions, age = 1000, 0.0
    history = t.table("history")
    if history is not None:
        history.check_keys(_HISTORY_KEYS)
        got = history.integer("max_versions", 0)
        versions = versions if got is None else got
        age = history.seconds("max_age") or 0.0
    checkpoint = t.integer("checkpoint_every", 0)
    disclose = t.boolean("disclose_author")
    limits = SyncLimits()
    lt = t.table("limits")
    if lt is not None:
        lt.check_keys(_LIMIT_KEYS)
        limits = SyncLimits(
            max_record_bytes=lt.integer("max_record_bytes", 2) or limits.max_record_bytes,
            max_ops=lt.integer("max_ops", 1) or limits.max_ops,
            max_depth=lt.integer("max_depth", 1, 10_000) or limits.max_depth,
            max_key_length=lt.integer("max_key_length", 1) or limits.max_key_length,
            max_records=lt.integer("max_records", 0) or 0,
        )
    if prefix is None:
        return None
    return SyncDomain(
        prefix=prefix,
        store=cast(Literal["memory", "sqlite", "redis"], store),
        database=path,
        conflict=cast(Literal["reject", "rebase", "lww"], conflict),
        create=cast(Literal["implicit", "explicit"], create),
        history_versions=versions,
        history_age=age,
        checkpoint_every=100 if checkpoint is None else checkpoint,
        disclose_author=bool(disclose),
        limits=limits,
    )
