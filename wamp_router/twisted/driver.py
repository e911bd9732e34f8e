"""The driver: owns the core ``Router`` and applies its effects to transports.

Inbound: a transport hands over one complete message payload; the driver
decodes it (the connection's serializer), parses it (``core.codec``), feeds
the router and applies the effects. Outbound: ``Send`` is encoded and framed
for one connection; ``Broadcast`` is encoded once per serializer and framed
once per framing, and the same bytes are written to every transport. In a
cluster, ``Hold`` keeps a connection's output back until the backplane's
barrier confirms that the other nodes know what the reply announced.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

from twisted.logger import Logger

from ..config.model import NodeConfig
from ..core import codec
from ..core.dealer import NO_AVAILABLE_CALLEE
from ..core.effects import (
    Advertise,
    Broadcast,
    Close,
    Commit,
    Effect,
    Forward,
    Hold,
    Interest,
    Relay,
    Send,
    SyncCommit,
    SyncFetch,
    SyncReset,
    Timer,
    Withdraw,
)
from ..core.errors import INVALID_ARGUMENT, PAYLOAD_SIZE_EXCEEDED, ProtocolViolation
from ..core.messages import (
    Call,
    Error,
    Event,
    Invocation,
    Message,
    Publish,
    Register,
    Registered,
    Result,
    Subscribe,
    Unregister,
    Unsubscribe,
)
from ..core.router import Router
from ..core.session import State, TransportInfo
from ..stores.factory import open_stores
from ..wire.serializers import DecodeError, EncodeError, Serializer

log = Logger(namespace="wamp_router")

RATE_LIMIT_EXCEEDED = "router.error.rate_limit_exceeded"
_REQUESTS = (Call, Publish, Subscribe, Unsubscribe, Register, Unregister)


class Connection(Protocol):
    """What the driver needs of a transport adapter."""

    serializer: Serializer
    frame_key: Any  # connections with equal keys frame a payload identically
    max_out: int  # largest payload the peer accepts

    def frame(self, payload: bytes) -> bytes: ...

    def write(self, data: bytes) -> None: ...

    def flush(self) -> None: ...

    def queued(self) -> int: ...

    def close_after_send(self, reason: str) -> None: ...

    rate_limit_action: str

    def rate_limited(self) -> bool: ...


class Driver:
    def __init__(self, config: NodeConfig, reactor: Any,
                 rng: random.Random | None = None) -> None:
        self.router = Router(config, rng or random.SystemRandom(), open_stores())
        self.stats = self.router.stats
        self._reactor = reactor
        self._clock: Callable[[], float] = reactor.seconds
        self._timer: Any = None  # one IDelayedCall for the core's next deadline
        self._timer_at = 0.0
        self._conns: dict[int, Connection] = {}
        self._next_conn = 0
        self._dirty: list[Connection] = []  # connections with queued output
        self._commit_call: Any = None  # the pending data-sync group commit
        self.cluster: Any = None  # the Redis backplane, when the node is part of a cluster
        # cluster: output held until the other nodes have seen what this node announced
        # (see Hold): conn -> segments (barrier, [(message or None, framed bytes or a
        # close reason)])
        self._held: dict[int, deque[tuple[int, list[tuple[Message | None, bytes | str]]]]] = {}
        self._barrier = 0  # the barrier this turn's holds wait for (0: none yet)
        self._barriers = 0  # the last barrier number handed out
        self._held_size: dict[int, int] = {}  # conn -> bytes held (see _held_add)

    # -- connections ------------------------------------------------------
    def attach(self, conn: Connection, transport: TransportInfo) -> int:
        self._next_conn += 1
        cid = self._next_conn
        self._conns[cid] = conn
        self.router.open(cid, transport)
        return cid

    def detach(self, cid: int) -> None:
        self._held.pop(cid, None)
        self._held_size.pop(cid, None)
        if self._conns.pop(cid, None) is not None:
            self.apply(self.router.lost(cid))
            self.flush()
            if self.router.journal:
                self.log_journal()

    def mark_dirty(self, conn: Connection) -> None:
        self._dirty.append(conn)

    def flush(self) -> None:
        """Send the output queued while handling one inbound chunk (or timer)."""
        if self._barrier:  # after this turn's announcements: ask the cluster to confirm
            barrier, self._barrier = self._barrier, 0
            self.cluster.barrier(lambda: self._release(barrier))
        if self.cluster is not None:  # what went to Redis leaves before the replies
            self.cluster.flush()
        dirty = self._dirty
        while dirty:
            self._dirty = []
            for conn in dirty:
                conn.flush()
            dirty = self._dirty

    def established(self, cid: int) -> bool:
        session = self.router.session(cid)
        return session is not None and session.state is State.ESTABLISHED

    def connection_count(self) -> int:
        return len(self._conns)

    def queued_bytes(self) -> int:
        return sum(conn.queued() for conn in self._conns.values())

    # -- inbound ----------------------------------------------------------
    def received(self, cid: int, payload: bytes) -> None:
        conn = self._conns.get(cid)
        if conn is None:
            return
        try:
            msg = codec.parse(conn.serializer.decode(payload))
        except (DecodeError, ProtocolViolation) as exc:
            self.protocol_violation(cid, str(exc))
            return
        except Exception as exc:  # a decoder failing in a way it does not document
            self.protocol_violation(cid, f"undecodable message ({type(exc).__name__})")
            return
        counts = self.stats.messages_in
        code = msg.TYPE
        counts[code] = counts.get(code, 0) + 1
        if conn.rate_limited():
            self._rate_limited(cid, conn, msg)
            return
        try:
            effects = self.router.receive(cid, msg, self._clock())
        except Exception:
            log.failure("internal error handling {msg} from connection {cid}",
                        msg=type(msg).__name__, cid=cid)
            self.apply(self.router.violation(cid, "internal router error"))
            return
        if effects:
            self.apply(effects)
        if self.router.journal:
            self.log_journal()

    def log_journal(self) -> None:
        """One log line per session join and leave."""
        journal, self.router.journal = self.router.journal, []
        for event, fields in journal:
            if event == "join":
                log.info("session joined session={session} realm={realm} authid={authid} "
                         "authrole={authrole} authmethod={authmethod} transport={transport} "
                         "serializer={serializer} peer={peer}", **fields)
            else:
                log.info("session left session={session} realm={realm} authid={authid} "
                         "peer={peer}", **fields)

    def inject(self, cid: int, msg: Message) -> None:
        """A message from an internal connection (the HTTP bridge), already parsed."""
        conn = self._conns.get(cid)
        if conn is None:
            return
        counts = self.stats.messages_in
        counts[msg.TYPE] = counts.get(msg.TYPE, 0) + 1
        if conn.rate_limited():
            self._rate_limited(cid, conn, msg)
        else:
            self.apply(self.router.receive(cid, msg, self._clock()))
        self.flush()

    def _rate_limited(self, cid: int, conn: Connection, msg: Message) -> None:
        """A message over the listener's ``max_message_rate``."""
        self.stats.rate_limited += 1
        if conn.rate_limit_action == "error":
            request = getattr(msg, "request", None)
            if type(msg) in _REQUESTS and request is not None:
                self.apply([Send(cid, Error(msg.TYPE, request, {}, RATE_LIMIT_EXCEEDED, [
                    "too many messages: the listener's max_message_rate was exceeded"]))])
            return
        session = self.router.session(cid)
        log.info("rejected peer={peer} reason=rate_limit_exceeded",
                 peer=session.transport.peer if session else "?")
        self.apply(self.router.abort(cid, RATE_LIMIT_EXCEEDED,
                                     "too many messages: the listener's max_message_rate "
                                     "was exceeded"))

    def protocol_violation(self, cid: int, reason: str) -> None:
        session = self.router.session(cid)
        peer = session.transport.peer if session else "?"
        log.info("rejected peer={peer} reason=protocol_violation detail={detail!r}",
                 peer=peer, detail=reason)
        self.apply(self.router.violation(cid, reason))

    # -- outbound ---------------------------------------------------------
    def apply(self, effects: list[Effect]) -> None:
        for effect in effects:
            if type(effect) is Send:
                self._send(effect.conn, effect.msg)
            elif type(effect) is Broadcast:
                self._broadcast(effect.conns, effect.msg)
            elif type(effect) is Close:
                conn = self._conns.get(effect.conn)
                if conn is not None:
                    held = self._held.get(effect.conn)
                    if held:
                        held[-1][1].append((None, effect.reason))  # after what is held
                    else:
                        conn.close_after_send(effect.reason)
            elif type(effect) is Hold:
                self._hold(effect.conn)
            elif type(effect) is Withdraw:
                self._withdraw(effect)
            elif type(effect) is Timer:
                self._schedule(effect.at)
            else:
                self._apply_other(effect)

    _CLUSTER_EFFECTS: ClassVar[dict[type, str]] = {
        Forward: "forward", Interest: "interest", Relay: "relay", Advertise: "advertise",
        SyncCommit: "sync_commit", SyncFetch: "sync_fetch", SyncReset: "sync_reset"}

    def _apply_other(self, effect: Effect) -> None:
        if type(effect) is Commit:
            if self._commit_call is None:
                self._commit_call = self._reactor.callLater(0, self._commit)
            return
        method = self._CLUSTER_EFFECTS.get(type(effect))
        if method is None:
            return
        if self.cluster is not None:
            getattr(self.cluster, method)(effect)
        elif type(effect) is SyncCommit:  # (the config refuses shared records without one)
            self._reactor.callLater(0, self.sync_committed, effect.realm, effect.batch,
                                    [("refused", "no cluster backplane")] * len(effect.items))

    def _hold(self, cid: int) -> None:
        """Hold what goes to ``cid`` from now on until the cluster has seen this
        turn's announcements (the barrier flush() asks for)."""
        if self.cluster is None or cid not in self._conns:
            return
        if not self._barrier:
            self._barriers += 1
            self._barrier = self._barriers
        segments = self._held.get(cid)
        if segments is None:
            segments = self._held[cid] = deque()
        segments.append((self._barrier, []))

    def _held_add(self, cid: int, conn: Connection, msg: Message | None, data: bytes) -> None:
        """Queue ``data`` behind the held reply; a peer whose held output passes its
        send buffer bound (``max_send_buffer``: the cluster did not confirm for that
        long) is dropped as a slow consumer, as when its socket buffer fills."""
        segments = self._held[cid]
        segments[-1][1].append((msg, data))
        bound = getattr(conn, "_max_buffer", None)
        if bound is None:
            return  # (long-poll: its message bound applies when the output is released)
        size = self._held_size.get(cid, 0) + len(data)
        self._held_size[cid] = size
        if size > bound:
            del self._held[cid]
            self._held_size.pop(cid, None)
            conn.slow_consumer(size)  # type: ignore[attr-defined]

    def _release(self, barrier: int) -> None:
        """The cluster confirmed ``barrier`` (and every one before it): send what
        waited for it, in order."""
        for cid in list(self._held):
            segments = self._held.get(cid)
            conn = self._conns.get(cid)
            if conn is None:
                continue  # (detach dropped what was held for it)
            # (writing may close the connection: a slow long-poll peer, a bridge)
            while segments and segments[0][0] <= barrier and cid in self._conns:
                for _, item in segments.popleft()[1]:
                    if cid not in self._conns:
                        break
                    if type(item) is str:
                        conn.close_after_send(item)
                    else:
                        conn.write(item)
            self._held_size.pop(cid, None)  # (what stays held is counted from here on)
            if not segments or cid not in self._conns:
                self._held.pop(cid, None)
        self.flush()

    def _withdraw(self, effect: Withdraw) -> None:
        """A registration taken back: its REGISTERED, if still held, becomes the
        refusal; else the callee gets the revocation notice (if any)."""
        conn = self._conns.get(effect.conn)
        registration = 0
        dropped: list[int] = []
        for _, items in self._held.get(effect.conn, ()):
            for i, (msg, _) in enumerate(items):
                if registration:  # invocations the callee must not see either
                    if type(msg) is Invocation and msg.registration == registration:
                        dropped.append(msg.request)
                elif type(msg) is Registered and msg.request == effect.request:
                    assert conn is not None
                    payload = self._encode(conn, effect.instead)
                    if payload is not None:
                        items[i] = (effect.instead, conn.frame(payload))
                    registration = msg.registration
            if dropped:
                items[:] = [(m, d) for m, d in items
                            if type(m) is not Invocation or m.request not in dropped]
        for request in dropped:  # their calls end (the callers may call again)
            self.apply(self.router.invocation_undeliverable(
                effect.conn, request, 0, NO_AVAILABLE_CALLEE, "the callee's registration was "
                "taken back: another router node registered the procedure first"))
        if not registration and effect.otherwise is not None:
            self._send(effect.conn, effect.otherwise)

    def remote(self, realm: str, envelope: dict[str, Any], kind: str) -> None:
        """A publication another node of the cluster made (the backplane flushes once
        after all it read from Redis at once)."""
        try:
            effects = self.router.remote_publication(realm, envelope, kind)
            self.apply(effects)
        except Exception:
            log.failure("internal error delivering a publication from another node")

    def _cluster_input(self, effects: Callable[[], list[Effect]], what: str) -> None:
        try:
            self.apply(effects())
        except Exception:
            log.failure("internal error handling {what} from another node", what=what)
        self.flush()

    def remote_rpc(self, realm: str, node: str, payload: dict[str, Any]) -> None:
        """A piece of a call another node relayed here."""
        self._cluster_input(lambda: self.router.remote_rpc(realm, node, payload,
                                                           self._clock()), "a call")

    def remote_directory(self, realm: str, node: str, op: str, entry: dict[str, Any]) -> None:
        self._cluster_input(lambda: self.router.remote_directory(realm, node, op, entry,
                                                                 self._clock()), "a registration")

    def relay_failed(self, effect: Relay, uri: str, why: str) -> None:
        self._cluster_input(lambda: self.router.relay_failed(effect.realm, effect.node,
                                                             effect.payload, uri, why),
                            "a call that could not be relayed")

    def isolate(self) -> None:
        self._cluster_input(self.router.isolate, "the loss of the cluster")

    def fence(self) -> None:
        self._cluster_input(self.router.fence, "a fence")
        if self.router.journal:
            self.log_journal()

    def node_gone(self, node: str, dead: bool = False) -> None:
        self._cluster_input(lambda: self.router.node_gone(node, dead), "a node leaving")

    # shared data-sync records (store = "redis")
    def sync_domains(self) -> dict[str, list[str]]:
        return self.router.sync_domains()

    def sync_committed(self, realm: str, batch: int, results: list[tuple[Any, ...]]) -> None:
        self._cluster_input(lambda: self.router.sync_committed(realm, batch, results),
                            "a data-sync commit")

    def sync_remote(self, realm: str, env: dict[str, Any]) -> None:
        try:  # (the backplane flushes once after all it read from Redis at once)
            self.apply(self.router.sync_remote(realm, env))
        except Exception:
            log.failure("internal error applying a data-sync version from another node")

    def sync_fetch_from(self, realm: str, uri: str) -> int | None:
        return self.router.sync_fetch_from(realm, uri)

    def sync_fetched(self, realm: str, uri: str, after: int, state: dict[str, Any] | None,
                     patches: list[dict[str, Any]],
                     checkpoints: list[tuple[int, Any, bool]]) -> None:
        self._cluster_input(lambda: self.router.sync_fetched(realm, uri, after, state, patches,
                                                             checkpoints), "a record read back")

    def sync_loading(self, realm: str) -> None:
        self.router.sync_loading(realm)

    def sync_loaded(self, realm: str, epoch: str, records: list[Any]) -> None:
        self._cluster_input(lambda: self.router.sync_loaded(realm, epoch, records),
                            "the shared records")

    def advertisements(self) -> list[Advertise]:
        return [e for e in self.router.advertisements() if type(e) is Advertise]

    def interests(self, realm: str) -> list[tuple[str, str]]:
        r = self.router.realms.get(realm)
        return [] if r is None else r.broker.interests()

    def _commit(self) -> None:
        """Group commit of the data-sync writes accepted in the last reactor turn."""
        self._commit_call = None
        self.apply(self.router.commit())
        self.flush()

    # -- timers -----------------------------------------------------------
    def _schedule(self, at: float) -> None:
        if self._timer is not None and self._timer.active():
            if self._timer_at <= at:
                return
            self._timer.cancel()
        self._timer_at = at
        self._timer = self._reactor.callLater(max(0.0, at - self._clock()), self._fire)

    def _fire(self) -> None:
        self._timer = None
        self.apply(self.router.on_timer(self._clock()))
        self.flush()
        nxt = self.router.next_deadline()
        if nxt is not None:
            self._schedule(nxt)

    def _encode(self, conn: Connection, msg: Message) -> bytes | None:
        try:
            return conn.serializer.encode(codec.to_list(msg))
        except EncodeError as exc:
            log.warn("cannot encode {msg} for {ser}: {exc}", msg=type(msg).__name__,
                     ser=conn.serializer.name, exc=exc)
            return None

    def _unencodable(self, cid: int, msg: Message) -> None:
        """A message the receiver's serializer cannot carry: the call it belongs to
        ends with an ERROR instead of hanging."""
        why = "the payload cannot be represented in the receiver's serializer"
        if type(msg) is Result:
            self._send(cid, Error(Call.TYPE, msg.request, {}, INVALID_ARGUMENT, [why]))
        elif type(msg) is Invocation:
            self.apply(self.router.invocation_undeliverable(cid, msg.request, 0, INVALID_ARGUMENT,
                                                            why))

    def _send(self, cid: int, msg: Message) -> None:
        conn = self._conns.get(cid)
        if conn is None:
            if cid < 0:  # a callee or caller on another node of the cluster
                self.apply(self.router.outbound_remote(cid, msg))
            return
        payload = self._encode(conn, msg)
        if payload is None:
            self._unencodable(cid, msg)
            return
        if len(payload) > conn.max_out:
            self._too_large(cid, conn, msg, len(payload))
            return
        held = self._held
        if held and cid in held:
            self._held_add(cid, conn, msg, conn.frame(payload))
        else:
            conn.write(conn.frame(payload))
        counts = self.stats.messages_out
        code = msg.TYPE
        counts[code] = counts.get(code, 0) + 1
        if code == 8 or code == 3:  # ERROR / ABORT: count by URI
            uri = msg.error if code == 8 else msg.reason  # type: ignore[attr-defined]
            self.stats.errors[uri] = self.stats.errors.get(uri, 0) + 1

    def _too_large(self, cid: int, conn: Connection, msg: Message, size: int) -> None:
        """A message larger than the peer accepts (RawSocket's announced maximum)."""
        log.warn("dropped {msg} of {size} bytes to connection {cid}: peer accepts at most {max}",
                 msg=type(msg).__name__, size=size, cid=cid, max=conn.max_out)
        if type(msg) is Result:
            self._send(cid, Error(Call.TYPE, msg.request, {}, PAYLOAD_SIZE_EXCEEDED,
                                  [f"the result ({size} bytes) exceeds the transport limit"]))
        elif type(msg) is Invocation:
            self.apply(self.router.invocation_undeliverable(cid, msg.request, size))
        elif type(msg) is not Event:
            # a session message the peer cannot receive (e.g. a WELCOME larger than a
            # tiny RawSocket limit): the session cannot work, close it instead of hanging
            # (after what is held for it)
            self.apply([Close(cid, f"{type(msg).__name__} larger than the peer accepts")])

    def _broadcast(self, cids: list[int], msg: Message) -> None:
        encoded: dict[str, bytes | None] = {}
        framed: dict[Any, bytes] = {}
        conns = self._conns
        held = self._held
        counts = self.stats.messages_out
        counts[msg.TYPE] = counts.get(msg.TYPE, 0) + len(cids)
        for cid in cids:
            conn = conns.get(cid)
            if conn is None:
                continue
            key = conn.frame_key
            data = framed.get(key)
            if data is None:
                name = conn.serializer.name
                if name in encoded:
                    payload = encoded[name]
                else:
                    payload = encoded[name] = self._encode(conn, msg)
                if payload is None:
                    continue
                if len(payload) > conn.max_out:
                    self._too_large(cid, conn, msg, len(payload))
                    continue
                data = framed[key] = conn.frame(payload)
            if held and cid in held:
                self._held_add(cid, conn, None, data)
            else:
                conn.write(data)

    def shutdown(self) -> None:
        self.apply(self.router.shutdown())
        self.flush()
        self.log_journal()

    def close(self) -> None:
        """Commit what is queued and close the record stores (a clean stop)."""
        if self._commit_call is not None and self._commit_call.active():
            self._commit_call.cancel()
        self._commit()
        self.router.close()

    def abort_all(self) -> None:
        """Close what is left after the shutdown grace period."""
        for conn in list(self._conns.values()):
            conn.close_after_send("shutdown grace period over")
