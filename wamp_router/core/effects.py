"""What the core asks the adapters to do. The core returns lists of these.

- ``Send(conn, msg)``: serialize ``msg`` for connection ``conn`` and write it.
- ``Broadcast(conns, msg)``: the same message to many connections: the
  adapter serializes it once per serializer and frames it once per framing.
- ``Close(conn, reason)``: close the connection's transport after what was
  sent before (``reason`` for the log).
- ``Commit()``: call ``router.commit()`` once the current reactor turn is done
  (data-sync writes wait for it: group commit, then broadcast and answers).
- ``Forward(realm, envelope, exact)``: a publication for the other nodes of a
  cluster (only when a cluster backplane is configured); ``exact``: another node
  has an exact subscriber to its topic, as far as this node knows.
- ``Interest(realm, topic, match, added)``: this node's first subscription to
  ``(topic, match)`` was created (or its last one removed): the backplane
  subscribes to the publications other nodes make there (or stops).
- ``Advertise(realm, op, entry)``: a local callee registered ("reg+") or went
  away ("reg-"): other nodes of the cluster route calls to it (or stop).
- ``Hold(conn)``: (a cluster) what is sent to ``conn`` from here on (a WELCOME,
  SUBSCRIBED or REGISTERED, and everything after it) waits until every other
  node has seen what this node announced so far (the backplane's barrier), so a
  client that got the reply can count on the whole cluster knowing of it.
- ``Withdraw(conn, request, instead, otherwise)``: (a cluster) a local callee's
  registration was taken back because another node's came first: if the
  REGISTERED answering ``request`` is still held, ``instead`` (an ERROR) goes in
  its place; if it has left, ``otherwise`` (the revocation notice, or None).
- ``Relay(node, realm, payload)``: a piece of a call between this node and
  another (an invocation, interrupt, result or error), for that node's inbox.
- ``SyncCommit(realm, batch, items)``: commit data-sync versions to the shared
  record store of a cluster (a compare-and-set per version, in order), then call
  ``router.sync_committed(realm, batch, results)``.
- ``SyncFetch(realm, uri)``: a record may have to be read back from the shared
  store: after a short wait (the versions it misses may be on their way), ask
  ``router.sync_fetch_from(realm, uri)``; unless that says it is no longer
  needed (None), read the record's state and its log after the version it gives
  (all of it, with the checkpoints, for 0), then call ``router.sync_fetched(...)``.
- ``SyncReset(realm, epoch)``: Redis lacks versions of the realm's shared records
  that this node has (it lost data in the same ``epoch``): start a new epoch in
  Redis if it is still ``epoch``, and make every node reload the records.
- ``Timer(at)``: call ``router.on_timer(now)`` no later than ``at`` (then ask
  ``router.next_deadline()`` for the next one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .messages import Message


@dataclass(slots=True)
class Send:
    conn: int
    msg: Message


@dataclass(slots=True)
class Broadcast:
    conns: list[int]
    msg: Message


@dataclass(slots=True)
class Close:
    conn: int
    reason: str


@dataclass(slots=True)
class Timer:
    at: float


@dataclass(slots=True)
class Commit:
    pass


COMMIT = Commit()


@dataclass(slots=True)
class Forward:
    realm: str
    envelope: dict[str, Any]
    exact: bool = True  # another node has an exact subscriber to the topic (as far as known)


@dataclass(slots=True)
class Interest:
    realm: str
    topic: str
    match: str
    added: bool


@dataclass(slots=True)
class Advertise:
    realm: str
    op: str  # "reg+" | "reg-"
    entry: dict[str, Any]


@dataclass(slots=True)
class Hold:
    conn: int


@dataclass(slots=True)
class Withdraw:
    conn: int
    request: int
    instead: Message
    otherwise: Message | None


@dataclass(slots=True)
class Relay:
    node: str
    realm: str
    payload: dict[str, Any]


@dataclass(slots=True)
class SyncCommit:
    realm: str
    batch: int
    items: list[dict[str, Any]]  # one per version, see SyncEngine.commit


@dataclass(slots=True)
class SyncFetch:
    realm: str
    uri: str


@dataclass(slots=True)
class SyncReset:
    realm: str
    epoch: str


Effect = (Send | Broadcast | Close | Timer | Commit | Forward | Interest | Advertise | Hold
          | Withdraw | Relay | SyncCommit | SyncFetch | SyncReset)
