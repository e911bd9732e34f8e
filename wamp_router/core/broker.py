"""The broker: subscriptions and the fan-out of publications.

Owns the subscription index (a ``UriMap`` of ``Subscription``s, plus ids).
One publication becomes one ``Broadcast`` per matching subscription: the
adapters serialize it once per serializer in use, not once per subscriber.
Authorization and URI checks are done by the realm before calling in here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .effects import Broadcast, Effect, Send
from .errors import NO_SUCH_SUBSCRIPTION, WampError
from .ids import RandomSource, SequentialIds, global_id
from .messages import Event, Publish, Published, Subscribe, Subscribed, Unsubscribe, Unsubscribed
from .session import Session
from .urimap import UriMap


@dataclass(slots=True, eq=False)
class Subscription:
    id: int
    topic: str
    match: str
    created: float
    subscribers: dict[int, Session] = field(default_factory=dict)  # conn -> session


class Broker:
    def __init__(self, rng: RandomSource) -> None:
        self._rng = rng
        self._ids = SequentialIds()
        self._subs: UriMap[Subscription] = UriMap()
        self._by_id: dict[int, Subscription] = {}

    def subscribe(self, session: Session, msg: Subscribe, match: str, now: float) -> list[Effect]:
        sub = self._subs.get(msg.topic, match)
        if sub is None:
            sub = Subscription(self._ids.next(), msg.topic, match, now)
            self._subs.set(msg.topic, match, sub)
            self._by_id[sub.id] = sub
        sub.subscribers[session.conn] = session
        session.subscriptions.add(sub.id)
        return [Send(session.conn, Subscribed(msg.request, sub.id))]

    def unsubscribe(self, session: Session, msg: Unsubscribe) -> list[Effect]:
        sub = self._by_id.get(msg.subscription)
        if sub is None or session.conn not in sub.subscribers:
            raise WampError(
                NO_SUCH_SUBSCRIPTION, f"no subscription {msg.subscription} for this session"
            )
        self._remove(session, sub)
        return [Send(session.conn, Unsubscribed(msg.request))]

    def _remove(self, session: Session, sub: Subscription) -> None:
        sub.subscribers.pop(session.conn, None)
        session.subscriptions.discard(sub.id)
        if not sub.subscribers:
            self._subs.remove(sub.topic, sub.match)
            del self._by_id[sub.id]

    def publish(self, session: Session, msg: Publish) -> list[Effect]:
        options = msg.options
        publication = global_id(self._rng)
        exclude_me = options.get("exclude_me", True) is not False
        effects: list[Effect] = []
        if self._subs.has_patterns():
            matches = self._subs.all_matches(msg.topic)
        else:
            exact = self._subs.exact(msg.topic)
            matches = [] if exact is None else [exact]
        for sub in matches:
            conns = list(sub.subscribers)
            if exclude_me and session.conn in sub.subscribers:
                conns.remove(session.conn)
            if not conns:
                continue
            details: dict[str, Any] = {} if sub.match == "exact" else {"topic": msg.topic}
            event = Event(sub.id, publication, details, msg.args, msg.kwargs)
            effects.append(Broadcast(conns, event))
        if options.get("acknowledge"):
            effects.append(Send(session.conn, Published(msg.request, publication)))
        return effects

    def session_left(self, session: Session) -> None:
        for sub_id in list(session.subscriptions):
            sub = self._by_id.get(sub_id)
            if sub is not None:
                self._remove(session, sub)
        session.subscriptions.clear()

    def subscription(self, sub_id: int) -> Subscription | None:
        return self._by_id.get(sub_id)
