"""The broker: subscriptions and the fan-out of publications.

Owns the subscription index (a ``UriMap`` of ``Subscription``s, plus ids)
and the retained events. One publication becomes one ``Broadcast`` per
matching subscription: the adapters serialize it once per serializer in use,
not once per subscriber. Implements publisher exclusion, subscriber black-
and whitelisting, publisher identification, pattern-based subscriptions,
event retention, and emits the subscription meta events. URI checks and
authorization are done by the realm before calling in here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .effects import Advertise, Broadcast, Effect, Forward, Hold, Interest, Send
from .errors import INVALID_ARGUMENT, NO_SUCH_SUBSCRIPTION, WampError
from .ids import RandomSource, SequentialIds, fresh_id, global_id
from .messages import Event, Publish, Published, Subscribe, Subscribed, Unsubscribe, Unsubscribed
from .session import NONE, Session
from .urimap import UriMap

Emit = Callable[[str, list[Any]], list[Effect]]
# may (session) receive an event on (topic) through (subscription)?
MayReceive = Callable[[Session, str, "Subscription"], bool]

FILTER_KEYS = ("exclude", "exclude_authid", "exclude_authrole",
                "eligible", "eligible_authid", "eligible_authrole")


@dataclass(slots=True, eq=False)
class Subscription:
    id: int
    topic: str
    match: str
    created: float
    subscribers: dict[int, Session] = field(default_factory=dict)  # conn -> session


@dataclass(slots=True)
class Filter:
    """Black- and whitelists of one publication (the spec's six options)."""

    exclude: frozenset[int] | None = None
    exclude_authid: frozenset[str] | None = None
    exclude_authrole: frozenset[str] | None = None
    eligible: frozenset[int] | None = None
    eligible_authid: frozenset[str] | None = None
    eligible_authrole: frozenset[str] | None = None

    def allows(self, s: Session) -> bool:
        return not (
            (self.eligible is not None and s.session_id not in self.eligible)
            or (self.eligible_authid is not None and s.authid not in self.eligible_authid)
            or (self.eligible_authrole is not None and s.authrole not in self.eligible_authrole)
            or (self.exclude is not None and s.session_id in self.exclude)
            or (self.exclude_authid is not None and s.authid in self.exclude_authid)
            or (self.exclude_authrole is not None and s.authrole in self.exclude_authrole)
        )


def parse_filter(options: dict[str, Any]) -> Filter | None:
    """The publication's filter, or None when it has none (the fast path)."""
    if not any(key in options for key in FILTER_KEYS):
        return None
    values: dict[str, frozenset[Any]] = {}
    for key in FILTER_KEYS:
        if key not in options:
            continue
        value = options[key]
        kind = int if key in ("exclude", "eligible") else str
        if type(value) is not list or any(type(v) is not kind for v in value):
            what = "session ids" if kind is int else "strings"
            raise WampError(INVALID_ARGUMENT, f"PUBLISH option {key!r} must be a list of {what}")
        values[key] = frozenset(value)
    return Filter(**values)


@dataclass(slots=True)
class Retained:
    publication: int
    args: list[Any] | None
    kwargs: dict[str, Any] | None
    identity: dict[str, Any]  # publisher disclosure details, if disclosed
    filter: Filter | None
    publisher: int  # session id of the publisher
    exclude_me: bool


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


class Broker:
    def __init__(self, rng: RandomSource, emit: Emit, may_receive: MayReceive) -> None:
        self._rng = rng
        self._emit = emit
        self._may_receive = may_receive  # per-topic subscribe permission (pattern subscriptions)
        self._ids = SequentialIds()
        self._subs: UriMap[Subscription] = UriMap()
        self._by_id: dict[int, Subscription] = {}
        self.retained: dict[str, Retained] = {}
        # cluster: the realm's name when publications go to other nodes too (Forward)
        self.cluster: str | None = None
        # the retained event of a data-sync record topic (None: not a record topic)
        self.snapshot: Callable[[str], dict[str, Any] | None] | None = None
        # cluster: do other nodes have subscribers to (topic, match)? (meta events)
        self.remote_has: Callable[[str, str], bool] | None = None

    # -- subscriptions --------------------------------------------------------
    def subscribe(self, session: Session, msg: Subscribe, match: str, now: float) -> list[Effect]:
        sub = self._subs.get(msg.topic, match)
        created = sub is None
        if sub is None:
            sub = Subscription(fresh_id("sub", msg.topic, match, self._by_id,
                                        self._ids, self.cluster is not None),
                               msg.topic, match, now)
            self._subs.set(msg.topic, match, sub)
            self._by_id[sub.id] = sub
        effects: list[Effect] = [Send(session.conn, Subscribed(msg.request, sub.id))]
        if self.cluster is not None:  # SUBSCRIBED once every node knows (see Hold)
            effects.insert(0, Hold(session.conn))
        if msg.options.get("get_retained") is True:
            effects.extend(self._retained_for(session, sub))
        if session.conn in sub.subscribers:
            return effects  # subscribing again: same subscription, no meta events
        sub.subscribers[session.conn] = session
        session.add_subscription(sub.id)
        if self.cluster is not None:
            effects.append(Advertise(self.cluster, "sub+", self.entry(session, sub)))
        if created:
            if self.cluster is not None:
                effects.append(Interest(self.cluster, sub.topic, match, True))
            if self.remote_has is None or not self.remote_has(sub.topic, match):
                effects.extend(self._emit("wamp.subscription.on_create",
                                          [session.session_id, self.details(sub)]))
        effects.extend(self._emit("wamp.subscription.on_subscribe", [session.session_id, sub.id]))
        return effects

    def _retained_for(self, session: Session, sub: Subscription) -> list[Effect]:
        if sub.match == "exact" and self.snapshot is not None:
            state = self.snapshot(sub.topic)  # a record: its committed state, always
            if state is not None:
                return [Send(session.conn, Event(sub.id, global_id(self._rng),
                                                 {"retained": True}, [], state))]
        if sub.match == "exact":
            found = self.retained.get(sub.topic)
            topics = [(sub.topic, found)] if found is not None else []
        else:
            matcher: UriMap[bool] = UriMap()
            matcher.set(sub.topic, sub.match, True)
            topics = [(t, r) for t, r in self.retained.items() if matcher.best_match(t)]
        effects: list[Effect] = []
        for topic, r in topics:
            if r.exclude_me and r.publisher == session.session_id:
                continue
            if r.filter is not None and not r.filter.allows(session):
                continue
            if not self._may_receive(session, topic, sub):
                continue
            details: dict[str, Any] = {"retained": True, **r.identity}
            if sub.match != "exact":
                details["topic"] = topic
            effects.append(Send(session.conn, Event(sub.id, r.publication, details,
                                                    r.args, r.kwargs)))
        return effects

    def unsubscribe(self, session: Session, msg: Unsubscribe) -> list[Effect]:
        sub = self._by_id.get(msg.subscription)
        if sub is None or session.conn not in sub.subscribers:
            raise WampError(
                NO_SUCH_SUBSCRIPTION, f"no subscription {msg.subscription} for this session"
            )
        effects: list[Effect] = [Send(session.conn, Unsubscribed(msg.request))]
        effects.extend(self._remove(session, sub))
        return effects

    def _remove(self, session: Session, sub: Subscription,
                announce: bool = True) -> list[Effect]:
        sub.subscribers.pop(session.conn, None)
        if session.subscriptions:
            session.subscriptions.discard(sub.id)  # type: ignore[union-attr]
        effects = self._emit("wamp.subscription.on_unsubscribe", [session.session_id, sub.id])
        if self.cluster is not None and announce:  # (a leaving session: its "sess-" says it)
            effects.append(Advertise(self.cluster, "sub-", self.entry(session, sub)))
        if not sub.subscribers:
            self._subs.remove(sub.topic, sub.match)
            del self._by_id[sub.id]
            if self.cluster is not None:
                effects.append(Interest(self.cluster, sub.topic, sub.match, False))
            if self.remote_has is None or not self.remote_has(sub.topic, sub.match):
                effects.extend(self._emit("wamp.subscription.on_delete",
                                          [session.session_id, sub.id]))
        return effects

    @staticmethod
    def entry(session: Session, sub: Subscription) -> dict[str, Any]:
        """A subscriber as the other nodes of a cluster know it (the meta API)."""
        return {"session": session.session_id, "topic": sub.topic, "match": sub.match,
                "created": sub.created}

    def session_left(self, session: Session) -> list[Effect]:
        effects: list[Effect] = []
        for sub_id in sorted(session.subscriptions):
            sub = self._by_id.get(sub_id)
            if sub is not None:
                effects.extend(self._remove(session, sub, announce=False))
        session.subscriptions = NONE
        return effects

    # -- publications ---------------------------------------------------------
    def _matches(self, topic: str) -> list[Subscription]:
        if self._subs.has_patterns():
            return self._subs.all_matches(topic)
        exact = self._subs.exact(topic)
        return [] if exact is None else [exact]

    def publish(self, session: Session, msg: Publish, disclose: bool) -> list[Effect]:
        options = msg.options
        publication = global_id(self._rng)
        if not options and not disclose:  # the common case: no options at all
            effects = self._fan_out(msg.topic, publication, msg.args, msg.kwargs, None,
                                    session.conn, None)
            if self.cluster is not None:
                effects.append(self._forward(msg.topic, publication, msg.args, msg.kwargs, {},
                                             session.session_id, None, False))
            return effects
        pfilter = parse_filter(options)
        exclude_me = options.get("exclude_me", True) is not False
        identity: dict[str, Any] = {}
        if disclose:
            identity = {"publisher": session.session_id, "publisher_authid": session.authid,
                        "publisher_authrole": session.authrole}
        effects = self._fan_out(msg.topic, publication, msg.args, msg.kwargs, pfilter,
                                session.conn if exclude_me else 0, identity)
        retain = options.get("retain") is True
        if retain:
            self.retained[msg.topic] = Retained(publication, msg.args, msg.kwargs, identity,
                                                pfilter, session.session_id, exclude_me)
        if self.cluster is not None:
            filters = {k: options[k] for k in FILTER_KEYS if k in options}
            effects.append(self._forward(msg.topic, publication, msg.args, msg.kwargs, filters,
                                         session.session_id if exclude_me else 0, identity,
                                         retain, session.session_id))
        if options.get("acknowledge"):
            effects.append(Send(session.conn, Published(msg.request, publication)))
        return effects

    def publish_internal(self, topic: str, args: list[Any] | None,
                         kwargs: dict[str, Any] | None = None, skip: int = 0,
                         identity: dict[str, Any] | None = None,
                         publication: int = 0, forward: bool = True) -> list[Effect]:
        """A publication by the router itself (meta events, data-sync patch events;
        ``skip``: a connection not to deliver to; ``publication``: its id, if the
        caller already drew one; ``forward``: False for this node's subscribers only)."""
        publication = publication or global_id(self._rng)
        effects = self._fan_out(topic, publication, args, kwargs, None, skip, identity)
        if self.cluster is not None and forward:
            effects.append(self._forward(topic, publication, args, kwargs, {}, 0, identity,
                                         False))
        return effects

    def publish_local(self, topic: str, args: list[Any] | None,
                      kwargs: dict[str, Any] | None, skip: int,
                      identity: dict[str, Any] | None, publication: int) -> list[Effect]:
        """A data-sync version event for this node's subscribers (every node of a
        cluster sends each version to its own)."""
        return self.publish_internal(topic, args, kwargs, skip, identity, publication,
                                     forward=False)

    # -- cluster ----------------------------------------------------------------
    def _forward(self, topic: str, publication: int, args: list[Any] | None,
                 kwargs: dict[str, Any] | None, filters: dict[str, Any], exclude: int,
                 identity: dict[str, Any] | None, retain: bool, publisher: int = 0) -> Forward:
        """The envelope other nodes deliver from: filters travel with it and are
        applied there by ``deliver_remote``, exactly as for a local publication."""
        assert self.cluster is not None
        exact = self.remote_has is None or self.remote_has(topic, "exact")
        return Forward(self.cluster, {"t": topic, "p": publication, "a": args, "k": kwargs,
                                      "f": filters, "x": exclude, "i": identity or {},
                                      "r": retain, "s": publisher}, exact)

    def deliver_remote(self, env: dict[str, Any], kind: str) -> list[Effect]:
        """A publication made on another node. ``kind``: "exact" (deliver to this
        node's exact subscriptions), "pattern" (to its pattern subscriptions) or
        "retained" (keep it as the topic's retained event; nothing is delivered)."""
        topic = env["t"]
        filters = env.get("f") or {}
        pfilter = parse_filter(filters) if filters else None
        identity = env.get("i") or None
        if kind == "retained":
            self.retained[topic] = Retained(env["p"], env.get("a"), env.get("k"), identity or {},
                                            pfilter, env.get("s", 0), bool(env.get("x")))
            return []
        # exclude_me ("x") needs nothing here: the publisher is a session of another node
        if kind == "exact":
            sub = self._subs.exact(topic)
            subs = [] if sub is None else [sub]
        else:
            subs = [s for s in self._subs.all_matches(topic) if s.match != "exact"]
        effects: list[Effect] = []
        for sub in subs:
            conns = [c for c, s in sub.subscribers.items()
                     if (pfilter is None or pfilter.allows(s))
                     and (sub.match == "exact" or self._may_receive(s, topic, sub))]
            if not conns:
                continue
            details: dict[str, Any] = {} if sub.match == "exact" else {"topic": topic}
            if identity:
                details.update(identity)
            effects.append(Broadcast(conns, Event(sub.id, env["p"], details, env.get("a"),
                                                  env.get("k"))))
        return effects

    def interests(self) -> list[tuple[str, str]]:
        """(topic, match) of every subscription on this node (a backplane re-asserts them)."""
        return [(s.topic, s.match) for s in self._by_id.values()]

    def _fan_out(self, topic: str, publication: int, args: list[Any] | None,
                 kwargs: dict[str, Any] | None, pfilter: Filter | None, skip: int,
                 identity: dict[str, Any] | None) -> list[Effect]:
        effects: list[Effect] = []
        may_receive = self._may_receive
        for sub in self._matches(topic):
            subscribers = sub.subscribers
            if sub.match != "exact":
                # a pattern subscription was authorized for its pattern: each concrete
                # topic is checked too, so that a narrower deny still holds
                conns = [c for c, s in subscribers.items() if c != skip
                         and (pfilter is None or pfilter.allows(s))
                         and may_receive(s, topic, sub)]
            elif pfilter is None:
                conns = [c for c in subscribers if c != skip] if skip in subscribers else list(
                    subscribers)
            else:
                conns = [c for c, s in subscribers.items() if c != skip and pfilter.allows(s)]
            if not conns:
                continue
            details: dict[str, Any] = {} if sub.match == "exact" else {"topic": topic}
            if identity:
                details.update(identity)
            effects.append(Broadcast(conns, Event(sub.id, publication, details, args, kwargs)))
        return effects

    # -- introspection (meta API) ---------------------------------------------
    def subscription(self, sub_id: int) -> Subscription | None:
        return self._by_id.get(sub_id)

    def subscriptions(self) -> list[Subscription]:
        return list(self._by_id.values())

    def lookup(self, topic: str, match: str) -> Subscription | None:
        return self._subs.get(topic, match)

    def matching(self, topic: str) -> list[Subscription]:
        return self._subs.all_matches(topic)

    @staticmethod
    def details(sub: Subscription) -> dict[str, Any]:
        return {"id": sub.id, "created": iso(sub.created), "uri": sub.topic, "match": sub.match}
