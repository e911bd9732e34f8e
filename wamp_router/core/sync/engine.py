"""The data-sync engine of one realm: records on managed topics.

A *record* is a topic under a configured domain prefix. Its retained event is
the record's committed state ``{v, epoch, value}``; every accepted write is
broadcast on the same topic as ``{v, ops | value | deleted, cid, ts}``. The
engine is the sequencer: it checks a write (limits, version, conflict policy),
applies it to the record's head with the pure patch engine, gives it the next
version and queues it for the store. ``commit()`` (called by the adapter at the
end of the reactor turn: the ``Commit`` effect) makes the queued versions
durable in one transaction per store and only then broadcasts them and answers
the writers, so no client ever sees a version the store could lose. Snapshots
and reads always come from the committed state.

Writes arrive by PUBLISH on the record topic (``publish``) or by CALL of the
``<api_prefix>*`` procedures (``call``); both are authorized as WAMP actions
on the record URI: read = subscribe, write = publish.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from ...config.model import Sync, SyncDomain
from ..broker import FILTER_KEYS, iso
from ..effects import COMMIT, Effect, Hold, Send, SyncCommit, SyncFetch, SyncReset
from ..errors import INVALID_ARGUMENT, WampError
from ..ids import RandomSource, global_id
from ..messages import Call, Error, Publish, Published, Result
from . import patch as jp
from .memory import ReplicaStore
from .store import PatchRow, RecordRow, RecordStore, Unit, Write

if TYPE_CHECKING:
    from ..session import Session

# gate(session, msg, action, uri, now, proceed) -> effects: the realm's authorization
# (static permissions, then the dynamic authorizer, which may answer later)
Gate = Callable[..., list[Effect]]
# allowed_now(session, action, uri) -> bool: a decision that cannot wait
AllowedNow = Callable[["Session", str, str], bool]
# fan_out(topic, args, kwargs, skip_conn, identity, publication id) -> effects
FanOut = Callable[[str, list[Any], dict[str, Any], int, dict[str, Any] | None, int],
                  list[Effect]]
OpenStore = Callable[[SyncDomain], RecordStore]

_BODY_KINDS = ("ops", "merge", "value", "delete")
_BODY_KEYS = frozenset((*_BODY_KINDS, "base", "cid", "epoch"))
_PATCH_ERRORS = {"invalid_patch": "invalid_patch", "test_failed": "test_failed",
                 "invalid_key": "invalid_key", "too_deep": "too_deep",
                 "invalid_value": "invalid_value"}
MAX_CONFLICT_PATCHES = 50  # a conflict error carries at most this many missing patches
MAX_CONFLICT_VALUE = 65536  # ... or the value, when its JSON is at most this large
MAX_LIST = 1000
MAX_CACHED = 50_000  # records kept in memory (least recently loaded go first)
MAX_ATTEMPTS = 50  # a write that lost this many races to other nodes fails (contention)

# procedure (after the API prefix) -> parameter names, in positional order
PARAMS: dict[str, tuple[str, ...]] = {
    "get": ("uri", "since", "epoch"),
    "head": ("uri",),
    "get_many": ("records",),
    "patch": ("uri", "ops", "base", "cid", "epoch"),
    "merge": ("uri", "merge", "base", "cid", "epoch"),
    "set": ("uri", "value", "base", "cid", "epoch"),
    "create": ("uri", "value", "if_absent", "cid"),
    "delete": ("uri", "base", "cid", "epoch"),
    "list": ("prefix", "after", "limit"),
    "history": ("uri", "from_v", "to_v", "limit"),
    "get_at": ("uri", "v", "ts"),
    "describe": (),
}
_REQUIRED = {"get": 1, "head": 1, "get_many": 1, "patch": 2, "merge": 2, "set": 2, "create": 2,
             "delete": 1, "list": 1, "history": 1, "get_at": 1, "describe": 0}
_READS = ("get", "head", "history", "get_at")
_WRITES = ("patch", "merge", "set", "create", "delete")


class Domain:
    def __init__(self, config: SyncDomain, store: RecordStore) -> None:
        self.config = config
        self.prefix = config.prefix
        self.store = store
        self.limits = jp.Limits(max_depth=config.limits.max_depth,
                                max_key_length=config.limits.max_key_length)
        self.records: int | None = None  # count, loaded when max_records needs it
        # a cluster's shared records (store = "redis"): versions are ordered by Redis
        self.shared = isinstance(store, ReplicaStore)

    def describe(self) -> dict[str, Any]:
        c = self.config
        return {"prefix": c.prefix, "store": c.store, "conflict": c.conflict,
                "create": c.create, "history": {"max_versions": c.history_versions,
                                                "max_age": c.history_age},
                "checkpoint_every": c.checkpoint_every, "disclose_author": c.disclose_author,
                "limits": {"max_record_bytes": c.limits.max_record_bytes,
                           "max_ops": c.limits.max_ops, "max_depth": c.limits.max_depth,
                           "max_key_length": c.limits.max_key_length,
                           "max_records": c.limits.max_records}}


@dataclass(slots=True, eq=False)
class Rec:
    """A record in memory: its committed state and its head (ahead of the
    committed state while versions wait for the store)."""

    uri: str
    domain: Domain
    v: int
    value: Any
    deleted: bool
    hv: int
    hvalue: Any
    hdeleted: bool
    pending: list[PatchRow] = field(default_factory=list)  # versions v+1 .. hv
    tok: str = ""  # shared records: the committed version's token
    htok: str = ""  # ... and the head's

    @property
    def exists(self) -> bool:
        return self.v > 0 and not self.deleted

    def reset_head(self) -> None:
        """The head is the committed state again (nothing of ours on its way)."""
        self.hv, self.hvalue, self.hdeleted, self.htok = self.v, self.value, self.deleted, self.tok


@dataclass(slots=True)
class Body:
    kind: str  # ops | merge | value | delete | create
    data: Any
    base: int | None = None
    cid: str | None = None
    epoch: str | None = None
    if_absent: bool = True


@dataclass(slots=True, eq=False)
class _Writer:
    """One write and how to answer it (kept: a shared record's write may have to
    run again after another node's version came first)."""

    uri: str
    session: Session
    body: Body
    now: float
    reply: Callable[[int, bool], list[Effect]]  # (publication id, rebased) -> the answer
    fail: Callable[[WampError], list[Effect]]  # the answer when it failed
    skip: int = 0  # connection not to echo the patch event to (PUBLISH exclude_me)
    identity: dict[str, Any] | None = None
    on_noop: Callable[[Rec, bool], list[Effect]] | None = None  # nothing changed
    seq: int = 0  # arrival order (the writes of a shared record keep it)
    attempt: int = 0  # compare-and-sets lost so far


def _seq(w: _Writer) -> int:
    return w.seq


@dataclass(slots=True)
class _Queued:
    rec: Rec
    write: Write
    w: _Writer
    rebased: bool
    shared: bool = False
    tok: str = ""  # shared records: this version's token, and the one it was computed on
    prev: str = ""
    flight: _Flight | None = None  # the record's flight when it was sent to Redis
    known: tuple[int, str] = (0, "")  # the record's committed (v, token) when sent


@dataclass(slots=True)
class _Flight:
    """A shared record's versions on their way to or from Redis."""

    inflight: int = 0  # own versions sent, not yet answered
    # writes waiting for the record to catch up (after a lost compare-and-set), by seq
    waiting: list[_Writer] | None = None
    target: int = 0  # the version Redis had when a compare-and-set was lost
    buffer: dict[int, dict[str, Any]] = field(default_factory=dict)  # other nodes' versions
    fetching: bool = False
    # the record's committed (v, token) when the read-back was sent: Redis's answer
    # cannot be older unless Redis lost versions (answers may be older than pushes)
    mark: tuple[int, str] = (0, "")
    full: bool = False  # the next read-back takes the whole record (a delta did not do)

    @property
    def idle(self) -> bool:
        return (not self.inflight and self.waiting is None and not self.buffer
                and not self.fetching)


class SyncEngine:
    def __init__(self, config: Sync, open_store: OpenStore, rng: RandomSource,
                 fan_out: FanOut, realm: str = "") -> None:
        self.realm = realm
        self.api = config.api_prefix
        self.error_prefix = config.api_prefix + "error."
        self.domains = [Domain(d, open_store(d)) for d in config.domains]
        self._rng = rng
        self._fan_out = fan_out
        self._cache: dict[str, Rec] = {}
        self._queue: list[_Queued] = []
        # shared records: per record in motion, and the batches sent to Redis
        self._flights: dict[str, _Flight] = {}
        self._batches: dict[int, list[_Queued]] = {}
        self._next_batch = 0
        self._seq = 0  # arrival order of shared records' writes
        self._reset_sent: str | None = None  # the epoch a SyncReset was asked for
        self._marks: dict[str, tuple[int, str]] = {}  # see sync_loading
        self.counters: dict[str, int] = {
            "writes": 0, "conflicts": 0, "rebased": 0, "snapshots": 0, "deltas": 0,
            "commits": 0, "commit_failures": 0, "cas_retries": 0, "remote_versions": 0,
            "resyncs": 0, "readbacks": 0}
        self.gate: Gate | None = None  # set by the realm
        # the topics of this node's exact subscriptions (set by the realm): the records
        # whose observers get a fresh state after a first load or an epoch change
        self.subscribed: Callable[[], list[str]] = list
        self.allowed_now: AllowedNow | None = None

    # -- lookup -------------------------------------------------------------
    def domain_of(self, uri: str) -> Domain | None:
        for d in self.domains:
            if uri.startswith(d.prefix) and len(uri) > len(d.prefix):
                return d
        return None

    def managed(self, uri: str) -> bool:
        return self.domain_of(uri) is not None

    def _rec(self, uri: str, domain: Domain) -> Rec:
        rec = self._cache.get(uri)
        if rec is not None:
            return rec
        row = domain.store.load(uri)
        if row is None:
            rec = Rec(uri, domain, 0, None, False, 0, None, False)
        else:
            rec = Rec(uri, domain, row.v, row.value, row.deleted, row.v, row.value, row.deleted)
        if domain.shared:
            assert isinstance(domain.store, ReplicaStore)
            rec.tok = rec.htok = domain.store.tok.get(uri, "")
        if len(self._cache) >= MAX_CACHED:
            self._evict()
        self._cache[uri] = rec
        return rec

    def _evict(self) -> None:
        for uri in list(self._cache)[: MAX_CACHED // 10]:
            if not self._cache[uri].pending and uri not in self._flights:
                del self._cache[uri]

    def _error(self, name: str, message: str, **kwargs: Any) -> WampError:
        return WampError(self.error_prefix + name, message, kwargs=kwargs or None)

    def _record(self, uri: Any) -> tuple[str, Domain]:
        if type(uri) is not str:
            raise WampError(INVALID_ARGUMENT, f"a record URI must be a string, not {uri!r}")
        domain = self.domain_of(uri)
        if domain is None:
            raise self._error("not_managed", f"{uri!r} is in no data-sync domain (domains: "
                              f"{', '.join(d.prefix for d in self.domains)})", uri=uri)
        self._check_ready(domain)
        return uri, domain

    def _check_ready(self, domain: Domain) -> None:
        if domain.shared and not getattr(domain.store, "ready", True):
            raise self._error("unavailable", f"the records of {domain.prefix!r} are not loaded "
                              "from Redis yet (is Redis reachable?)")

    # -- snapshots and reads (committed state only) -------------------------
    def snapshot(self, uri: str) -> dict[str, Any] | None:
        """The retained event of a managed topic (None: not managed)."""
        domain = self.domain_of(uri)
        if domain is None or (domain.shared and not getattr(domain.store, "ready", True)):
            return None
        self.counters["snapshots"] += 1
        return self._state(self._rec(uri, domain))

    def _state(self, rec: Rec) -> dict[str, Any]:
        out: dict[str, Any] = {"v": rec.v, "epoch": rec.domain.store.epoch, "value": rec.value}
        if rec.deleted:
            out["deleted"] = True
        elif rec.v == 0:
            out["exists"] = False
        return out

    def _head(self, rec: Rec) -> dict[str, Any]:
        return {"v": rec.v, "epoch": rec.domain.store.epoch, "exists": rec.exists,
                "deleted": rec.deleted}

    def _event(self, p: PatchRow, domain: Domain, *, by: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"v": p.v}
        if p.deleted:
            out["deleted"] = True
        elif p.ops is not None:
            out["ops"] = p.ops
        else:
            out["value"] = p.value
        if p.cid is not None:
            out["cid"] = p.cid
        if (by or domain.config.disclose_author) and p.by is not None:
            out["by"] = p.by
        out["ts"] = p.ts
        return out

    def _get(self, rec: Rec, since: Any, epoch: Any) -> dict[str, Any]:
        store = rec.domain.store
        if since is not None:
            if type(since) is not int or since < 0:
                raise WampError(INVALID_ARGUMENT, f"since must be a version >= 0, not {since!r}")
            if epoch is not None and type(epoch) is not str:
                raise WampError(INVALID_ARGUMENT, f"epoch must be a string, not {epoch!r}")
            if (epoch is None or epoch == store.epoch) and since <= rec.v:
                patches = store.patches(rec.uri, since, rec.v) if since < rec.v else []
                if len(patches) == rec.v - since:
                    self.counters["deltas"] += 1
                    return {"v": rec.v, "epoch": store.epoch,
                            "patches": [self._event(p, rec.domain) for p in patches]}
        self.counters["snapshots"] += 1
        return self._state(rec)

    # -- writes -------------------------------------------------------------
    def publish(self, session: Session, msg: Publish, identity: dict[str, Any] | None,
                now: float) -> list[Effect]:
        """A PUBLISH to a record topic (already authorized as publish on it)."""
        ack = bool(msg.options.get("acknowledge"))
        try:
            domain = self.domain_of(msg.topic)
            assert domain is not None
            self._check_options(msg.options, "PUBLISH")
            body = self._publish_body(msg.args, msg.kwargs)
            exclude_me = msg.options.get("exclude_me", True) is not False

            def reply(publication: int, rebased: bool) -> list[Effect]:
                if not ack:
                    return []
                return [Send(session.conn, Published(msg.request, publication))]

            def fail(exc: WampError) -> list[Effect]:
                if not ack:
                    return []
                return [Send(session.conn, Error(Publish.TYPE, msg.request, {}, exc.uri,
                                                 exc.args_, exc.kwargs))]

            return self._write(self._rec(msg.topic, domain), _Writer(
                msg.topic, session, body, now, reply, fail, session.conn if exclude_me else 0,
                identity or None, lambda rec, rebased: reply(global_id(self._rng), rebased)))
        except WampError as exc:
            return fail_publish(session, msg, exc) if ack else []

    def testament(self, session: Session, topic: str, kwargs: dict[str, Any] | None,
                  now: float) -> list[Effect]:
        """A session's testament on a record topic: an on-disconnect write."""
        domain = self.domain_of(topic)
        if domain is None:
            return []
        try:
            body = self._publish_body([], kwargs)
            return self._write(self._rec(topic, domain), _Writer(
                topic, session, body, now, lambda p, r: [], lambda e: []))
        except WampError:
            return []

    def _check_options(self, options: dict[str, Any], what: str) -> None:
        bad = [k for k in FILTER_KEYS if k in options]
        if bad:
            raise self._error("invalid_options", f"{what} option(s) {', '.join(bad)} cannot be "
                              "used on a record: every observer sees every version")
        if "ppt_scheme" in options:
            raise self._error("invalid_options", "payload passthru (ppt_scheme) cannot be used "
                              "on a record: the router must read the data")

    def _publish_body(self, args: list[Any] | None, kwargs: dict[str, Any] | None) -> Body:
        if args:
            raise self._error("invalid_patch", "record writes carry their data in kwargs "
                              "(ops, merge, value or delete), not in args")
        kw = kwargs or {}
        unknown = sorted(k for k in kw if k not in _BODY_KEYS)
        if unknown:
            raise self._error("invalid_patch", f"unknown member(s) {', '.join(unknown)} in the "
                              "write (allowed: ops, merge, value, delete, base, cid, epoch)")
        kinds = [k for k in _BODY_KINDS if k in kw]
        if len(kinds) != 1:
            raise self._error("invalid_patch", "a write needs exactly one of ops, merge, value "
                              f"or delete (found: {', '.join(kinds) or 'none'})")
        kind = kinds[0]
        if kind == "delete" and kw["delete"] is not True:
            raise self._error("invalid_patch", "delete must be true")
        return self._body(kind, kw.get(kind), kw.get("base"), kw.get("cid"), kw.get("epoch"))

    def _body(self, kind: str, data: Any, base: Any, cid: Any, epoch: Any,
              if_absent: Any = True) -> Body:
        if base is not None and (type(base) is not int or base < 0):
            raise WampError(INVALID_ARGUMENT, f"base must be a version >= 0, not {base!r}")
        if cid is not None and (type(cid) is not str or len(cid) > 64):
            raise WampError(INVALID_ARGUMENT, "cid must be a string of at most 64 characters")
        if epoch is not None and type(epoch) is not str:
            raise WampError(INVALID_ARGUMENT, f"epoch must be a string, not {epoch!r}")
        if type(if_absent) is not bool:
            raise WampError(INVALID_ARGUMENT, f"if_absent must be true or false, not {if_absent!r}")
        return Body(kind, data, base, cid, epoch, if_absent)

    def _write(self, rec: Rec, w: _Writer) -> list[Effect]:
        """Check and apply one write to the record's head and queue it for commit."""
        shared = rec.domain.shared
        if shared and self._waits(rec, w):
            return []
        body, now = w.body, w.now
        exists = rec.hv > 0 and not rec.hdeleted
        self._admit(rec, body, exists)
        rebase_against = self._check_version(rec, body)
        ts = iso(now)
        value, ops, units, deleted = self._rebased(rec, body, exists, ts, rebase_against)
        rebased = rebase_against is not None
        if ops is not None and not ops and exists:
            # nothing changes (tests only, a value already there): no new version
            return w.on_noop(rec, rebased) if w.on_noop is not None else w.reply(0, rebased)
        value_json = self._encode(rec.domain, value)
        # a new version
        config = rec.domain.config
        v = rec.hv + 1
        by = w.session.authid
        if ops is not None and not exists:
            # the record did not exist: the patch applied to {} -- clients see the whole value
            ops = None
        patch = PatchRow(v, ops, None if (deleted or ops is not None) else value, deleted, by,
                         body.cid, ts, units)
        row = RecordRow(rec.uri, v, value, deleted, ts, by)
        min_ts = iso(now - config.history_age) if config.history_age else None
        write = Write(row, patch, value_json, config.history_versions, min_ts,
                      config.checkpoint_every)
        if rec.hv == 0 and rec.domain.records is not None:
            rec.domain.records += 1
        rec.hv, rec.hvalue, rec.hdeleted = v, value, deleted
        rec.pending.append(patch)
        self.counters["writes"] += 1
        if rebased:
            self.counters["rebased"] += 1
        queued = _Queued(rec, write, w, rebased)
        if shared:
            queued.shared, queued.prev, queued.tok = True, rec.htok, _token(self._rng)
            rec.htok = queued.tok
        self._queue.append(queued)
        return [COMMIT] if len(self._queue) == 1 else []

    def _rebased(self, rec: Rec, body: Body, exists: bool, ts: str,
                 rebase_against: list[Unit] | None,
                 ) -> tuple[Any, list[dict[str, Any]] | None, list[Unit], bool]:
        """``_apply``, and a conflict when a rebased write touches what it missed."""
        try:
            value, ops, units, deleted = self._apply(rec, body, exists, ts)
        except WampError:
            if rebase_against is not None:  # it may fail because of what it missed
                clash = jp.conflicts(_raw_units(body), rebase_against)
                if clash:
                    raise self._conflict(rec, body, clash,
                                         f"version conflict on {rec.uri}") from None
            raise
        if rebase_against is not None:
            clash = jp.conflicts(units, rebase_against)
            if clash:
                raise self._conflict(rec, body, clash, f"version conflict on {rec.uri}")
        return value, ops, units, deleted

    def _waits(self, rec: Rec, w: _Writer) -> bool:
        """A write to a shared record: it waits (True) while the record catches up
        with Redis after a lost compare-and-set; writes keep their arrival order."""
        self._check_ready(rec.domain)
        if not w.seq:
            self._seq += 1
            w.seq = self._seq
        flight = self._flights.get(rec.uri)
        if flight is None or flight.waiting is None:
            return False
        insort(flight.waiting, w, key=_seq)
        return True

    def _rerun(self, w: _Writer) -> list[Effect]:
        """A shared record's write, again (it waited, or lost a compare-and-set)."""
        domain = self.domain_of(w.uri)
        if domain is None:
            return []
        if w.attempt >= MAX_ATTEMPTS:
            return w.fail(self._error(
                "contention", f"{w.uri!r} changed on other router nodes {w.attempt} times "
                "while this write was being committed; it was not applied: try again",
                attempts=w.attempt))
        try:
            return self._write(self._rec(w.uri, domain), w)
        except WampError as exc:
            return w.fail(exc)

    def _admit(self, rec: Rec, body: Body, exists: bool) -> None:
        """Checks that need no patching: op count, create/delete rules, record count."""
        domain = rec.domain
        limits = domain.config.limits
        if body.kind == "ops" and (type(body.data) is not list):
            raise self._error("invalid_patch", "ops must be a list of RFC 6902 operations")
        if body.kind == "ops" and len(body.data) > limits.max_ops:
            raise self._error("too_many_ops", f"{len(body.data)} ops in one write; this domain "
                              f"allows at most {limits.max_ops}", max_ops=limits.max_ops)
        if body.kind == "delete" and not exists:
            raise self._error("not_found", f"record {rec.uri!r} does not exist", uri=rec.uri)
        if body.kind == "create" and exists and body.if_absent:
            raise self._error("exists", f"record {rec.uri!r} already exists", uri=rec.uri,
                              v=rec.v)
        if (not exists and body.kind not in ("create", "delete")
                and domain.config.create == "explicit"):
            raise self._error("not_found", f"record {rec.uri!r} does not exist (this domain "
                              f"creates records only with {self.api}create)", uri=rec.uri)
        if not exists and rec.hv == 0 and limits.max_records:
            if domain.records is None:
                domain.records = domain.store.count(domain.prefix)
            if domain.records >= limits.max_records:
                raise self._error("too_many_records", f"domain {domain.prefix!r} holds its "
                                  f"maximum of {limits.max_records} records")

    def _check_version(self, rec: Rec, body: Body) -> list[Unit] | None:
        """The conflict policy for a conditional write; the units of the versions
        after ``base`` when the write must be rebased over them."""
        store = rec.domain.store
        if body.epoch is not None and body.epoch != store.epoch:
            raise self._conflict(rec, body, [], f"epoch {body.epoch!r} is not the store's "
                                 f"current epoch; read the record again")
        if body.base is None or body.base == rec.hv:
            return None
        if body.base > rec.hv:
            raise self._conflict(rec, body, [], f"base {body.base} is ahead of the "
                                 f"record's version {rec.hv}")
        policy = rec.domain.config.conflict
        if policy == "reject":
            raise self._conflict(rec, body, [], f"version conflict on {rec.uri}")
        if policy == "lww":
            return None
        units = self._units_since(rec, body.base)
        if units is None:
            raise self._conflict(rec, body, [], f"version conflict on {rec.uri}: the "
                                 f"history no longer covers version {body.base}")
        return units

    def _apply(self, rec: Rec, body: Body, exists: bool,
               ts: str) -> tuple[Any, list[dict[str, Any]] | None, list[Unit], bool]:
        """(new value, normalised ops or None, units, deleted), applied at the head."""
        doc = rec.hvalue if exists else {}
        limits = rec.domain.limits
        try:
            if body.kind == "ops":
                applied = jp.apply_ops(doc, body.data, now=ts, limits=limits)
                return applied.value, applied.ops, applied.units, False
            if body.kind == "merge":
                applied = jp.apply_merge(doc, body.data, limits=limits)
                return applied.value, applied.ops, applied.units, False
            if body.kind == "delete":
                return None, None, [("", "set")], True
            jp.check_value(body.data, 0, limits)  # value / create
            return body.data, None, [("", "set")], False
        except jp.PatchError as exc:
            name = _PATCH_ERRORS.get(exc.kind, "invalid_patch")
            raise self._error(name, exc.message, index=exc.index) from None

    def _encode(self, domain: Domain, value: Any) -> bytes:
        try:
            value_json = orjson.dumps(value)
        except (TypeError, orjson.JSONEncodeError) as exc:
            raise self._error("invalid_value", f"the record's value is not JSON: {exc}") from None
        limit = domain.config.limits.max_record_bytes
        if len(value_json) > limit:
            raise self._error("too_large", f"the record would be {len(value_json)} bytes as JSON; "
                              f"this domain allows {limit}", max_record_bytes=limit)
        return value_json

    def _units_since(self, rec: Rec, base: int) -> list[Unit] | None:
        """The units touched by versions base+1 .. head, or None if not all are known."""
        units: list[Unit] = []
        if base < rec.v:
            committed = rec.domain.store.patches(rec.uri, base, rec.v)
            if len(committed) != rec.v - base:
                return None
            for p in committed:
                units.extend(p.units)
        for p in rec.pending:
            if p.v > base:
                units.extend(p.units)
        return units

    def _conflict(self, rec: Rec, body: Body, paths: list[str], message: str) -> WampError:
        """A conflict, described from the committed state (what the client may see)."""
        self.counters["conflicts"] += 1
        store = rec.domain.store
        kwargs: dict[str, Any] = {"v": rec.v, "epoch": store.epoch, "base": body.base,
                                  "conflicts": paths}
        base = body.base if body.epoch in (None, store.epoch) else None
        if base is not None and base < rec.v and rec.v - base <= MAX_CONFLICT_PATCHES:
            patches = store.patches(rec.uri, base, rec.v)
            if len(patches) == rec.v - base:
                kwargs["patches"] = [self._event(p, rec.domain) for p in patches]
        if "patches" not in kwargs:
            size = len(orjson.dumps(rec.value))
            if size <= MAX_CONFLICT_VALUE:
                kwargs["value"] = rec.value
                if rec.deleted:
                    kwargs["deleted"] = True
        return self._error("conflict", message, **kwargs)

    # -- commit -------------------------------------------------------------
    def commit(self) -> list[Effect]:
        """Make the queued versions durable, then broadcast them and answer."""
        queue, self._queue = self._queue, []
        if not queue:
            return []
        effects: list[Effect] = []
        shared = [q for q in queue if q.shared]
        if shared:
            queue = [q for q in queue if not q.shared]
            effects.append(self._send(shared))
        failed: dict[int, str] = {}
        by_store: dict[int, tuple[RecordStore, list[Write]]] = {}
        for q in queue:
            store = q.rec.domain.store
            by_store.setdefault(id(store), (store, []))[1].append(q.write)
        for key, (store, writes) in by_store.items():
            try:
                store.commit(writes)
                self.counters["commits"] += 1
            except Exception as exc:  # the store failed: these versions never happened
                self.counters["commit_failures"] += 1
                failed[key] = f"{type(exc).__name__}: {exc}"
        reverted: set[int] = set()
        for q in queue:
            rec = q.rec
            why = failed.get(id(rec.domain.store))
            if why is not None:
                if id(rec) not in reverted:
                    reverted.add(id(rec))
                    rec.reset_head()
                    rec.pending.clear()
                    rec.domain.records = None
                effects.extend(q.w.fail(self._error(
                    "unavailable", f"the record store failed ({why}); the write was not "
                    "applied")))
                continue
            effects.extend(self._committed(q))
        return effects

    def _committed(self, q: _Queued, shared: bool = False) -> list[Effect]:
        """A version is durable: it becomes the record's state, its observers get it
        and its writer gets the answer; for a shared record, once every node of the
        cluster has it (Hold: a read on any node after the answer sees the version)."""
        rec, patch = q.rec, q.write.patch
        rec.v, rec.value, rec.deleted, rec.tok = patch.v, q.write.row.value, patch.deleted, q.tok
        if rec.pending and rec.pending[0] is patch:
            rec.pending.pop(0)
        if not rec.pending:  # (a shared record's head may have been reset meanwhile)
            rec.reset_head()
        publication = global_id(self._rng)  # the event's id, also in PUBLISHED
        effects = self._fan_out(rec.uri, [], self._event(patch, rec.domain), q.w.skip,
                                q.w.identity, publication)
        reply = q.w.reply(publication, q.rebased)
        if shared and reply:
            effects.append(Hold(q.w.session.conn))
        effects.extend(reply)
        return effects

    def close(self) -> None:
        for store in {id(d.store): d.store for d in self.domains}.values():
            store.close()

    # -- shared records (a cluster: store = "redis") ----------------------------
    # Redis orders the versions of a shared record: each version is committed by
    # compare-and-set against the token of the version it was computed on. The
    # node that committed it broadcasts it to its own observers; Redis pushes it
    # to the other nodes, which apply it to their replica in version order (a gap
    # is filled by reading the record back) and broadcast it to theirs. A write
    # that lost its compare-and-set waits until this node has the winning
    # versions, then goes through the conflict policy again (unconditional writes
    # simply apply to the new state), in the order the writes came.

    def _send(self, queue: list[_Queued]) -> SyncCommit:
        items: list[dict[str, Any]] = []
        for q in queue:
            w, p = q.write, q.write.patch
            q.flight = self._flight(q.rec.uri)
            q.flight.inflight += 1
            q.known = (q.rec.v, q.rec.tok)
            items.append({"u": q.rec.uri, "dom": q.rec.domain.prefix, "pv": p.v - 1,
                          "pt": q.prev, "value": w.value_json,
                          "p": _pack_patch(p, q.tok, q.prev, w), "i": q.w.identity,
                          "max": q.rec.domain.config.limits.max_records})
        self._next_batch += 1
        self._batches[self._next_batch] = queue
        return SyncCommit(self.realm, self._next_batch, items)

    def _flight(self, uri: str) -> _Flight:
        flight = self._flights.get(uri)
        if flight is None:
            flight = self._flights[uri] = _Flight()
        return flight

    def sync_committed(self, batch: int, results: list[tuple[Any, ...]]) -> list[Effect]:
        """Redis answered a ``SyncCommit``: per version ("ok",), ("conflict", v)
        (another node's version came first), ("too_many",) (max_records),
        ("refused", why) (not committed: Redis unreachable or an error reply) or
        ("error", why) (the connection was lost on the way: the outcome is unknown)."""
        queue = self._batches.pop(batch, None)
        if queue is None:
            return []
        effects: list[Effect] = []
        touched: dict[str, Rec] = {}
        for q, result in zip(queue, results, strict=True):
            if q.flight is not None:
                q.flight.inflight -= 1
            # the record as this node holds it now (a new epoch replaced the objects)
            rec = q.rec = self._cache.get(q.rec.uri) or self._rec(q.rec.uri, q.rec.domain)
            flight = self._flight(rec.uri)
            touched[rec.uri] = rec
            status = result[0]
            if status == "ok" and q.write.patch.v == rec.v + 1 and q.prev == rec.tok:
                store = rec.domain.store
                assert isinstance(store, ReplicaStore)
                store.add(q.write, q.tok)
                self.counters["commits"] += 1
                effects.extend(self._committed(q, shared=True))
                continue
            effects.extend(self._not_committed(q, flight, result))
        for rec in touched.values():
            effects.extend(self._drain(rec))
            effects.extend(self._resume(rec))
        return effects

    def _not_committed(self, q: _Queued, flight: _Flight,
                       result: tuple[Any, ...]) -> list[Effect]:
        rec, status = q.rec, result[0]
        if flight.waiting is None:  # the head was built on versions Redis does not have
            flight.waiting = []
            rec.reset_head()
            rec.pending.clear()
            rec.domain.records = None
            # writes queued on that head and not sent yet cannot succeed: they wait too
            unsent = [u for u in self._queue if u.rec is rec]
            if unsent:
                self._queue = [u for u in self._queue if u.rec is not rec]
                for u in unsent:
                    insort(flight.waiting, u.w, key=_seq)
        if status == "ok":  # committed, but not in order here: read the record back
            flight.target = max(flight.target, q.write.patch.v)
            return q.w.reply(global_id(self._rng), q.rebased)
        if status == "conflict":
            cur = int(result[1])
            if q.prev == q.known[1]:  # it lost a race (the writes after it just follow)
                q.w.attempt += 1
                self.counters["cas_retries"] += 1
            insort(flight.waiting, q.w, key=_seq)
            if _older((cur, result[2] if len(result) > 2 else None), q.known):
                # Redis no longer has a version it had when this write was sent
                return self._reset(rec.domain.store.epoch)
            flight.target = max(flight.target, cur)
            return []
        if status == "too_many":
            limit = rec.domain.config.limits.max_records
            return q.w.fail(self._error("too_many_records", f"domain {rec.domain.prefix!r} holds "
                                      f"its maximum of {limit} records", max_records=limit))
        self.counters["commit_failures"] += 1
        if status == "refused":
            return q.w.fail(self._error("unavailable", "the write was not applied: the shared "
                                      f"record store refused it ({result[1]})"))
        return q.w.fail(self._error(
            "unavailable", f"the connection to the shared record store was lost ({result[1]}) "
            "while the write was committed: it may or may not have been applied (the "
            "record's versions tell)"))

    def remote_version(self, env: dict[str, Any]) -> list[Effect]:
        """A version another node committed (pushed by Redis): ``{u: uri, p: patch,
        i: publisher identity}``."""
        uri = env.get("u")
        domain = self.domain_of(uri) if type(uri) is str else None
        if domain is None or not domain.shared:
            return []
        assert type(uri) is str
        rec = self._rec(uri, domain)  # (before the first load: kept until it is in)
        v = env["p"]["v"]
        if v < rec.v or (v == rec.v and env["p"].get("t") == rec.tok):
            return []  # known already (a read-back got it first)
        flight = self._flight(uri)
        if v > rec.v:
            flight.buffer[v] = env
        if not getattr(domain.store, "ready", False):
            return []
        return self._drain(rec) + self._resume(rec)

    def sync_fetch_from(self, uri: str) -> int | None:
        """A read-back is due (``SyncFetch``): from which version (0: the whole
        record), or None when the versions it waited for arrived meanwhile."""
        flight = self._flights.get(uri)
        rec = self._cache.get(uri)
        if flight is None or rec is None or not flight.fetching:
            return None
        if not flight.full and not flight.buffer and flight.target <= rec.v:
            flight.fetching = False
            return None
        flight.mark = (rec.v, rec.tok)
        self.counters["readbacks"] += 1
        after = 0 if flight.full else rec.v
        flight.full = False
        return after

    def sync_fetched(self, uri: str, state: dict[str, Any] | None,
                     patches: list[dict[str, Any]],
                     checkpoints: list[tuple[int, Any, bool]], after: int = 0) -> list[Effect]:
        """Redis's copy of one record (its log after ``after``), read back after a
        gap (see ``SyncFetch``)."""
        domain = self.domain_of(uri)
        if domain is None or not domain.shared:
            return []
        rec = self._rec(uri, domain)
        flight = self._flight(uri)
        flight.fetching = False
        if _older(_vt(state), flight.mark):
            # Redis lost versions it had when this read was sent: every node starts a
            # new epoch from what Redis has (clients must replace what they hold)
            return self._reset(rec.domain.store.epoch)
        if after and state is not None and state["v"] > rec.v and not _chains(rec, state,
                                                                              patches):
            flight.full = flight.fetching = True  # the delta does not fill the gap
            return [SyncFetch(self.realm, uri)]
        effects = self._reconcile(rec, state, patches, checkpoints)
        # Redis answered: what it has is the target (an older hint cannot hold)
        flight.target = min(flight.target, state["v"] if state is not None else 0)
        for v in [v for v in flight.buffer if v <= rec.v]:
            del flight.buffer[v]
        return effects + self._drain(rec) + self._resume(rec)

    def sync_loaded(self, epoch: str,
                    records: list[tuple[str, dict[str, Any], list[dict[str, Any]],
                                        list[tuple[int, Any, bool]]]]) -> list[Effect]:
        """Every shared record as Redis has it (at start and after a reconnect):
        what this node missed reaches its observers."""
        if self._lost_versions(epoch, records):
            return self._reset(epoch)
        effects, fresh = self._epoch(epoch)
        for uri, state, patches, checkpoints in records:
            domain = self.domain_of(uri)
            if domain is None or not domain.shared or state is None:
                continue
            rec = self._rec(uri, domain)
            if id(domain) in fresh:
                self._replace(rec, state, patches, checkpoints)
            else:
                effects.extend(self._reconcile(rec, state, patches, checkpoints))
        return effects + self._loaded(fresh)

    def _loaded(self, fresh: set[int]) -> list[Effect]:
        """After a load: observers of records loaded afresh get their state; what
        waited for the load goes on."""
        effects: list[Effect] = []
        for domain in self.domains:
            if isinstance(domain.store, ReplicaStore):
                domain.store.ready = True
        for topic in self.subscribed():  # observers that have no (or an old) state
            of = self.domain_of(topic)
            if of is not None and id(of) in fresh:
                effects.extend(self._announce(self._rec(topic, of)))
        for uri, flight in list(self._flights.items()):
            flight.fetching = False  # (a read-back lost with the connection: this is newer)
            cached = self._cache.get(uri)
            if cached is not None:
                effects.extend(self._drain(cached))
                effects.extend(self._resume(cached))
        return effects

    def _epoch(self, epoch: str) -> tuple[list[Effect], set[int]]:
        """Take Redis's epoch: the answers to writes that cannot happen any more, and
        the domains (by id) loaded afresh (the first load, or a new epoch)."""
        effects: list[Effect] = []
        fresh: set[int] = set()
        for domain in self.domains:
            store = domain.store
            if not isinstance(store, ReplicaStore):
                continue
            if store.ready and store.epoch != epoch:
                # Redis came back without the records (no persistence?): a new epoch
                effects.extend(self._drop_domain(domain))
                store.clear()
            if not store.ready or store.epoch != epoch:
                fresh.add(id(domain))
            store.epoch = epoch
            domain.records = None
        return effects, fresh

    def _lost_epoch(self) -> WampError:
        return self._error("unavailable", "the shared record store lost its records (Redis "
                           "came back empty: a new epoch); the write was not applied")

    def _drop_domain(self, domain: Domain) -> list[Effect]:
        """Forget what this node held of a domain's records: the writes waiting for
        them fail (the records they were computed on are gone)."""
        effects: list[Effect] = []
        for uri in [u for u, r in self._cache.items() if r.domain is domain]:
            flight = self._flights.pop(uri, None)
            for w in (flight.waiting or []) if flight is not None else []:
                effects.extend(w.fail(self._lost_epoch()))
            del self._cache[uri]
        unsent = [q for q in self._queue if q.rec.domain is domain]
        if unsent:
            self._queue = [q for q in self._queue if q.rec.domain is not domain]
            for q in unsent:
                effects.extend(q.w.fail(self._lost_epoch()))
        return effects

    def _announce(self, rec: Rec) -> list[Effect]:
        """The record's state to its observers, as the retained event of a subscribe
        (clients replace what they hold when the epoch differs)."""
        return self._fan_out(rec.uri, [], self._state(rec), 0, {"retained": True},
                             global_id(self._rng))

    def sync_loading(self) -> None:
        """The adapter starts reading every shared record: what this node has now is
        what Redis must still have (see ``_lost_versions``)."""
        self._marks = {}
        for domain in self.domains:
            store = domain.store
            if isinstance(store, ReplicaStore) and store.ready:
                self._marks.update((uri, (row.v, store.tok.get(uri, "")))
                                   for uri, row in store.rows())

    def _lost_versions(self, epoch: str, records: list[Any]) -> bool:
        """Does Redis (same epoch) lack versions this node had when the load began?"""
        marks, self._marks = self._marks, {}
        if not marks or any(getattr(d.store, "epoch", epoch) != epoch for d in self.domains):
            return False
        found = {uri: _vt(state) for uri, state, _, _ in records}
        return any(_older(found.get(uri, (0, None)), mark) for uri, mark in marks.items())

    def _reset(self, epoch: str) -> list[Effect]:
        """Ask for a new epoch (once per epoch: the reload that follows settles it)."""
        if self._reset_sent == epoch:
            return []
        self._reset_sent = epoch
        return [SyncReset(self.realm, epoch)]

    def _drain(self, rec: Rec) -> list[Effect]:
        """Apply the other nodes' versions that follow the record's state."""
        flight = self._flights.get(rec.uri)
        if flight is None:
            return []
        effects: list[Effect] = []
        buffer = flight.buffer
        while buffer:
            env = buffer.get(rec.v + 1)
            if env is None or env["p"].get("pt") != rec.tok:
                break
            del buffer[rec.v + 1]
            applied = self._apply_remote(rec, env["p"], env.get("i") or None)
            if applied is None:  # this replica cannot apply it: read the record back
                buffer.clear()
                flight.target = max(flight.target, rec.v + 1)
                break
            effects.extend(applied)
        for v in [v for v in buffer if v <= rec.v]:
            del buffer[v]
        if (buffer or flight.target > rec.v) and not flight.inflight and not flight.fetching:
            flight.fetching = True  # a gap no answer of ours will fill (unless its push
            effects.append(SyncFetch(self.realm, rec.uri))  # comes meanwhile: see above)
        return effects

    def _resume(self, rec: Rec) -> list[Effect]:
        """Run the writes that waited for the record to catch up."""
        flight = self._flights.get(rec.uri)
        if flight is None:
            return []
        effects: list[Effect] = []
        if flight.waiting is not None and not flight.inflight and rec.v >= flight.target:
            waiting, flight.waiting = flight.waiting, None
            flight.target = 0
            for w in waiting:
                effects.extend(self._rerun(w))
        if flight.idle and self._flights.get(rec.uri) is flight:
            del self._flights[rec.uri]
        return effects

    def _apply_remote(self, rec: Rec, p: dict[str, Any],
                      identity: dict[str, Any] | None) -> list[Effect] | None:
        """Another node's version ``p`` (the next one) into the replica, then to the
        observers here (None: it does not apply to this replica)."""
        patch = _unpack_patch(p)
        if patch.deleted:
            value, deleted = None, True
        elif patch.ops is not None:
            try:
                value = jp.apply_normalised(rec.value if rec.exists else {}, patch.ops)
            except jp.PatchError:
                return None
            deleted = False
        else:
            value, deleted = patch.value, False
        store = rec.domain.store
        assert isinstance(store, ReplicaStore)
        store.add(Write(RecordRow(rec.uri, patch.v, value, deleted, patch.ts, patch.by),
                        patch, b"", p.get("k", 0), p.get("m") or None, p.get("c", 0)), p["t"])
        if rec.v == 0:
            rec.domain.records = None
        self._take(rec, patch.v, value, deleted, p["t"])
        self.counters["remote_versions"] += 1
        publication = global_id(self._rng)
        return self._fan_out(rec.uri, [], self._event(patch, rec.domain), 0, identity,
                             publication)

    def _take(self, rec: Rec, v: int, value: Any, deleted: bool, tok: str) -> None:
        rec.v, rec.value, rec.deleted, rec.tok = v, value, deleted, tok
        if not rec.pending:  # no own version on its way: the head is the new state
            rec.reset_head()

    def _reconcile(self, rec: Rec, state: dict[str, Any] | None,
                   patches: list[dict[str, Any]],
                   checkpoints: list[tuple[int, Any, bool]]) -> list[Effect]:
        """Bring the replica of ``rec`` up to Redis's ``state``: version by version
        when the log covers the gap, else at once (observers get the whole value)."""
        if state is None or state["v"] <= rec.v:
            return []
        if _chains(rec, state, patches):
            effects: list[Effect] = []
            for p in (p for p in patches if p["v"] > rec.v):
                applied = self._apply_remote(rec, p, None)
                if applied is None:
                    break
                effects.extend(applied)
            else:
                return effects
        self._replace(rec, state, patches, checkpoints)
        self.counters["resyncs"] += 1
        event: dict[str, Any] = {"v": rec.v}
        if rec.deleted:
            event["deleted"] = True
        else:
            event["value"] = rec.value
        event["ts"] = state.get("ts", "")
        return self._fan_out(rec.uri, [], event, 0, None, global_id(self._rng))

    def _replace(self, rec: Rec, state: dict[str, Any], patches: list[dict[str, Any]],
                 checkpoints: list[tuple[int, Any, bool]]) -> None:
        store = rec.domain.store
        assert isinstance(store, ReplicaStore)
        row = RecordRow(rec.uri, state["v"], state["value"], bool(state["d"]),
                        state.get("ts", ""), state.get("by") or None)
        store.replace(row, state["t"], [_unpack_patch(p) for p in patches], checkpoints)
        rec.domain.records = None
        self._take(rec, row.v, row.value, row.deleted, state["t"])

    # -- procedures ---------------------------------------------------------
    def handles(self, procedure: str) -> bool:
        return procedure.startswith(self.api) and procedure[len(self.api):] in PARAMS

    def call(self, session: Session, msg: Call, now: float) -> list[Effect]:
        """A CALL of one of the sync procedures (raises WampError to answer ERROR)."""
        name = msg.procedure[len(self.api):]
        self._check_options(msg.options, "CALL")
        params = self._params(name, msg.args or [], msg.kwargs or {})
        assert self.gate is not None
        if name in _READS:
            uri, _ = self._record(params["uri"])
            return self.gate(session, msg, "subscribe", uri, now,
                             lambda s, m, n, d: self._read(s, m, name, params))
        if name in _WRITES:
            uri, _ = self._record(params["uri"])
            return self.gate(session, msg, "publish", uri, now,
                             lambda s, m, n, d: self._call_write(s, m, n, name, params, d))
        return [Send(session.conn, Result(msg.request, {}, [self._other(session, name, params)]))]

    def _params(self, name: str, args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
        names = PARAMS[name]
        if len(args) > len(names):
            raise WampError(INVALID_ARGUMENT, f"{self.api}{name} takes at most {len(names)} "
                            f"positional arguments ({', '.join(names) or 'none'})")
        params = dict(zip(names, args, strict=False))
        for key, value in kwargs.items():
            if key not in names:
                raise WampError(INVALID_ARGUMENT, f"{self.api}{name}: unknown argument {key!r} "
                                f"(arguments: {', '.join(names) or 'none'})")
            if key in params:
                raise WampError(INVALID_ARGUMENT, f"{self.api}{name}: argument {key!r} given "
                                "both by position and by name")
            params[key] = value
        missing = [n for n in names[: _REQUIRED[name]] if params.get(n) is None]
        if missing:
            raise WampError(INVALID_ARGUMENT, f"{self.api}{name}: missing argument(s) "
                            f"{', '.join(missing)}")
        return params

    def _read(self, session: Session, msg: Call, name: str,
              params: dict[str, Any]) -> list[Effect]:
        uri, domain = self._record(params["uri"])
        rec = self._rec(uri, domain)
        if name == "get":
            out = self._get(rec, params.get("since"), params.get("epoch"))
        elif name == "head":
            out = self._head(rec)
        elif name == "history":
            out = self._history(rec, params)
        else:
            out = self._get_at(rec, params)
        return [Send(session.conn, Result(msg.request, {}, [out]))]

    def _call_write(self, session: Session, msg: Call, now: float, name: str,
                    params: dict[str, Any], forced: bool | None) -> list[Effect]:
        uri, domain = self._record(params["uri"])
        rec = self._rec(uri, domain)
        if name == "create":
            body = self._body("create", params["value"], None, params.get("cid"), None,
                              True if params.get("if_absent") is None else params["if_absent"])
        elif name == "delete":
            body = self._body("delete", True, params.get("base"), params.get("cid"),
                              params.get("epoch"))
        else:
            kind = {"patch": "ops", "merge": "merge", "set": "value"}[name]
            body = self._body(kind, params[kind], params.get("base"), params.get("cid"),
                              params.get("epoch"))
        disclose = forced if forced is not None else msg.options.get("disclose_me") is True
        identity = None
        if disclose:
            identity = {"publisher": session.session_id, "publisher_authid": session.authid,
                        "publisher_authrole": session.authrole}
        conn, request = session.conn, msg.request

        def reply(publication: int, rebased: bool) -> list[Effect]:
            v = self._cache[uri].v if uri in self._cache else rec.v
            return [Send(conn, Result(request, {}, [{"v": v, "rebased": rebased}]))]

        def fail(err: WampError) -> list[Effect]:
            return [Send(conn, Error(Call.TYPE, request, {}, err.uri, err.args_, err.kwargs))]

        def unchanged(r: Rec, rebased: bool) -> list[Effect]:  # the committed version
            return [Send(conn, Result(request, {}, [{"v": r.v, "rebased": rebased,
                                                     "unchanged": True}]))]

        return self._write(rec, _Writer(uri, session, body, now, reply, fail, 0, identity,
                                        unchanged))

    def _history(self, rec: Rec, params: dict[str, Any]) -> dict[str, Any]:
        lo = _version(params.get("from_v"), "from_v", 1)
        hi = _version(params.get("to_v"), "to_v", rec.v)
        limit = _version(params.get("limit"), "limit", MAX_LIST)
        limit = max(1, min(limit, MAX_LIST))
        hi = min(hi, rec.v)
        patches = rec.domain.store.patches(rec.uri, max(lo, 1) - 1, hi, limit) if hi >= lo else []
        return {"v": rec.v, "epoch": rec.domain.store.epoch,
                "patches": [self._event(p, rec.domain) for p in patches]}

    def _get_at(self, rec: Rec, params: dict[str, Any]) -> dict[str, Any]:
        store = rec.domain.store
        target = params.get("v")
        ts = params.get("ts")
        if target is not None and ts is not None:
            raise WampError(INVALID_ARGUMENT, "give v or ts, not both")
        if ts is not None:
            if type(ts) is not str:
                raise WampError(INVALID_ARGUMENT, "ts must be an ISO 8601 time string")
            found = store.version_at(rec.uri, ts)
            if found is None:
                raise self._error("not_found", f"no kept version of {rec.uri!r} at or before "
                                  f"{ts}", uri=rec.uri)
            target = found
        target = _version(target, "v", rec.v)
        if target > rec.v:
            raise self._error("not_found", f"{rec.uri!r} has no version {target} (current: "
                              f"{rec.v})", uri=rec.uri, v=rec.v)
        if target == rec.v:
            return {"v": rec.v, "value": rec.value, "deleted": rec.deleted}
        return self._replay(rec, target)

    def _replay(self, rec: Rec, target: int) -> dict[str, Any]:
        """The record at version ``target``: the newest checkpoint at or below it,
        then the kept changes up to it."""
        store = rec.domain.store
        cp = store.checkpoint(rec.uri, target)
        start, value, deleted = cp if cp is not None else (0, None, False)
        patches = store.patches(rec.uri, start, target) if target > start else []
        if len(patches) != target - start:
            raise self._error("not_found", f"the history of {rec.uri!r} no longer covers "
                              f"version {target}", uri=rec.uri, v=rec.v)
        for p in patches:
            if p.deleted:
                value, deleted = None, True
            elif p.ops is not None:
                try:
                    existed = p.v > 1 and not deleted  # the state before p
                    value = jp.apply_normalised(value if existed else {}, p.ops)
                except jp.PatchError as exc:  # a damaged history
                    raise self._error("not_found", f"cannot replay version {p.v} of "
                                      f"{rec.uri!r}: {exc.message}") from None
                deleted = False
            else:
                value, deleted = p.value, False
        return {"v": target, "value": value, "deleted": deleted}

    def _other(self, session: Session, name: str, params: dict[str, Any]) -> Any:
        if name == "describe":
            return {"api_prefix": self.api, "domains": [d.describe() for d in self.domains],
                    "features": ["ops", "merge", "value", "intent_ops", "conditional",
                                 "rebase", "history", "get_at", "tombstones"]}
        if name == "get_many":
            return self._get_many(session, params["records"])
        return self._list(session, params)

    def _get_many(self, session: Session, records: Any) -> list[Any]:
        if type(records) is not list or len(records) > MAX_LIST:
            raise WampError(INVALID_ARGUMENT, f"records must be a list of at most {MAX_LIST} "
                            "URIs or {uri, since, epoch} dicts")
        out: list[Any] = []
        assert self.allowed_now is not None
        for item in records:
            spec = {"uri": item} if type(item) is str else item
            uri = spec.get("uri") if type(spec) is dict else None
            try:
                if type(spec) is not dict:
                    raise WampError(INVALID_ARGUMENT, f"not a URI or a dict: {item!r}")
                uri, domain = self._record(uri)
                if not self.allowed_now(session, "subscribe", uri):
                    raise WampError("wamp.error.not_authorized", f"not authorized to read "
                                    f"{uri!r}")
                result = self._get(self._rec(uri, domain), spec.get("since"), spec.get("epoch"))
                out.append({"uri": uri, **result})
            except WampError as exc:
                message = exc.args_[0] if exc.args_ else exc.uri
                out.append({"uri": uri, "error": exc.uri, "message": message})
        return out

    def _list(self, session: Session, params: dict[str, Any]) -> dict[str, Any]:
        prefix, after, limit = params["prefix"], params.get("after"), params.get("limit")
        if type(prefix) is not str or (after is not None and type(after) is not str):
            raise WampError(INVALID_ARGUMENT, "prefix and after must be strings")
        limit = max(1, min(_version(limit, "limit", 100), MAX_LIST))
        domains = [d for d in self.domains
                   if prefix.startswith(d.prefix) or d.prefix.startswith(prefix)]
        if not domains:
            raise self._error("not_managed", f"{prefix!r} covers no data-sync domain", uri=prefix)
        assert self.allowed_now is not None
        uris: list[str] = []
        for d in domains:
            scan = prefix if len(prefix) > len(d.prefix) else d.prefix
            uris.extend(d.store.list(scan, after, limit))
        uris.sort()
        uris = [u for u in uris if self.allowed_now(session, "subscribe", u)][:limit]
        return {"uris": uris, "next": uris[-1] if len(uris) == limit else None}


def _version(value: Any, name: str, default: int) -> int:
    if value is None:
        return default
    if type(value) is not int or value < 0:
        raise WampError(INVALID_ARGUMENT, f"{name} must be an integer >= 0, not {value!r}")
    return value



def _raw_units(body: Body) -> list[Unit]:
    """The paths a write names, as written (for a write that no longer applies)."""
    if body.kind != "ops" or type(body.data) is not list:
        return [("", "set")]
    units: list[Unit] = []
    for op in body.data:
        if type(op) is not dict or op.get("op") == "test":
            continue
        for key in ("path", "from"):
            path = op.get(key)
            if type(path) is str and (path == "" or path.startswith("/")):
                units.append((path, "set"))
    return units


def _chains(rec: Rec, state: dict[str, Any], patches: list[dict[str, Any]]) -> bool:
    """Do ``patches`` lead from the record's version to Redis's ``state``, one by one?"""
    chain = [p for p in patches if p["v"] > rec.v]
    return bool(chain and chain[0]["v"] == rec.v + 1 and chain[0].get("pt") == rec.tok
                and chain[-1]["v"] == state["v"] and len(chain) == state["v"] - rec.v)


def _vt(state: dict[str, Any] | None) -> tuple[int, str | None]:
    return (0, None) if state is None else (state["v"], state["t"])


def _older(redis: tuple[int, str | None], known: tuple[int, str]) -> bool:
    """Is what Redis answers (v, token; token None: not told) older than, or beside,
    a version it had already committed (``known``)? Only if Redis lost data."""
    if redis[0] != known[0]:
        return redis[0] < known[0]
    return redis[0] > 0 and redis[1] is not None and redis[1] != known[1]


def _token(rng: RandomSource) -> str:
    return format(rng.getrandbits(64), "016x")


def _pack_patch(p: PatchRow, tok: str, prev: str, w: Write) -> dict[str, Any]:
    """A version as the shared store keeps it (and as other nodes apply it)."""
    return {"v": p.v, "ops": p.ops, "value": p.value, "d": p.deleted, "by": p.by,
            "cid": p.cid, "ts": p.ts, "units": [list(u) for u in p.units], "t": tok,
            "pt": prev, "k": w.keep_versions, "m": w.min_ts or "", "c": w.checkpoint_every}


def _unpack_patch(p: dict[str, Any]) -> PatchRow:
    return PatchRow(p["v"], p.get("ops"), p.get("value"), bool(p.get("d")), p.get("by"),
                    p.get("cid"), p.get("ts", ""),
                    [(u[0], u[1]) for u in p.get("units") or ()])


def memory_store(rng: RandomSource) -> OpenStore:
    """The store factory of the pure core: memory stores only (the adapters add SQLite)."""
    from .memory import MemoryStore

    def open_store(domain: SyncDomain) -> RecordStore:
        if domain.store == "redis":  # a cluster node's copy (filled through the router)
            return ReplicaStore()
        if domain.store != "memory":
            raise ValueError(f"store {domain.store!r} of domain {domain.prefix!r} needs the "
                             "router's store adapters")
        return MemoryStore(format(rng.getrandbits(64), "016x"))

    return open_store


def fail_publish(session: Session, msg: Publish, exc: WampError) -> list[Effect]:
    return [Send(session.conn, Error(Publish.TYPE, msg.request, {}, exc.uri, exc.args_,
                                     exc.kwargs))]
