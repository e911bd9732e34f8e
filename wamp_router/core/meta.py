"""The WAMP meta API procedures of a realm: ``wamp.session.*``,
``wamp.subscription.*``, ``wamp.registration.*`` and the testament
procedures. Each handler takes the calling session and the call's args and
kwargs, and returns the result's args plus any further effects (a killed
session's GOODBYE); errors are raised as ``WampError``. Meta *events* are
emitted by the broker, dealer and realm themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .broker import iso, parse_filter
from .effects import Effect
from .errors import (
    INVALID_ARGUMENT,
    INVALID_URI,
    NO_SUCH_REGISTRATION,
    NO_SUCH_SUBSCRIPTION,
    WampError,
)
from .remote import RemoteRpc
from .session import Session
from .uri import is_valid_pattern, is_valid_uri

if TYPE_CHECKING:
    from .realm import Realm

NO_SUCH_SESSION = "wamp.error.no_such_session"
KILLED = "wamp.close.killed"
SCOPES = ("destroyed", "detached")

Outcome = tuple[list[Any] | None, list[Effect]]
Handler = Callable[[Session, list[Any], dict[str, Any]], Outcome]


def _arg(args: list[Any], i: int, kind: type | tuple[type, ...], name: str,
         default: Any = ...) -> Any:
    if len(args) <= i:
        if default is ...:
            raise WampError(INVALID_ARGUMENT, f"missing argument {i + 1} ({name})")
        return default
    value = args[i]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise WampError(INVALID_ARGUMENT, f"argument {i + 1} ({name}) has the wrong type "
                        f"{type(value).__name__}")
    return value


def session_info(s: Session) -> dict[str, Any]:
    """The session details of ``wamp.session.get`` and ``wamp.session.on_join``: what
    the session meta API lists, plus ``authextra`` (WELCOME.Details.authextra) when the
    session has one."""
    info: dict[str, Any] = {
        "session": s.session_id, "authid": s.authid, "authrole": s.authrole,
        "authmethod": s.authmethod, "authprovider": s.authprovider,
        "transport": {"type": s.transport.kind, "peer": s.transport.peer,
                      "serializer": s.transport.serializer},
    }
    if s.authextra:
        info["authextra"] = s.authextra
    return info


class Meta:
    def __init__(self, realm: Realm) -> None:
        self.realm = realm
        self.handlers: dict[str, Handler] = {
            "wamp.session.count": self.session_count,
            "wamp.session.list": self.session_list,
            "wamp.session.get": self.session_get,
            "wamp.session.kill": self.session_kill,
            "wamp.session.kill_by_authid": self.kill_by_authid,
            "wamp.session.kill_by_authrole": self.kill_by_authrole,
            "wamp.session.kill_all": self.kill_all,
            "wamp.session.add_testament": self.add_testament,
            "wamp.session.flush_testaments": self.flush_testaments,
            "wamp.subscription.list": self.subscription_list,
            "wamp.subscription.lookup": self.subscription_lookup,
            "wamp.subscription.match": self.subscription_match,
            "wamp.subscription.get": self.subscription_get,
            "wamp.subscription.list_subscribers": self.list_subscribers,
            "wamp.subscription.count_subscribers": self.count_subscribers,
            "wamp.registration.list": self.registration_list,
            "wamp.registration.lookup": self.registration_lookup,
            "wamp.registration.match": self.registration_match,
            "wamp.registration.get": self.registration_get,
            "wamp.registration.list_callees": self.list_callees,
            "wamp.registration.count_callees": self.count_callees,
        }

    # -- sessions ---------------------------------------------------------
    def _filtered(self, args: list[Any]) -> list[int]:
        """Session ids of the realm (on every node of a cluster), by authrole."""
        roles = _arg(args, 0, list, "filter_authroles", None)
        ids = [s.session_id for s in self.realm.sessions.values()
               if roles is None or s.authrole in roles]
        remote = self.realm.remote
        if remote is not None:
            ids += [sid for sid, (_, info, _) in remote.sessions.items()
                    if roles is None or info.get("authrole") in roles]
        return ids

    def session_count(self, caller: Session, args: list[Any], kw: dict[str, Any]) -> Outcome:
        return [len(self._filtered(args))], []

    def session_list(self, caller: Session, args: list[Any], kw: dict[str, Any]) -> Outcome:
        return [self._filtered(args)], []

    def session_get(self, caller: Session, args: list[Any], kw: dict[str, Any]) -> Outcome:
        sid = _arg(args, 0, int, "session")
        target = self.realm.sessions.get(sid)
        if target is not None:
            return [session_info(target)], []
        remote = self.realm.remote.remote_of(sid) if self.realm.remote is not None else None
        if remote is None:
            raise WampError(NO_SUCH_SESSION, f"no session {args[0]} in this realm")
        return [remote[1]], []

    @staticmethod
    def _reason(kw: dict[str, Any]) -> tuple[str, str | None]:
        reason = kw.get("reason", KILLED)
        if not isinstance(reason, str) or not is_valid_uri(reason):
            raise WampError(INVALID_URI, f"invalid reason URI {reason!r}")
        message = kw.get("message")
        if message is not None and not isinstance(message, str):
            raise WampError(INVALID_ARGUMENT, "message must be a string")
        return reason, message

    def _kill(self, targets: list[Session], kw: dict[str, Any],
              remote: list[int] | None = None) -> Outcome:
        """Kill local ``targets`` and the sessions ``remote`` of other nodes (their
        nodes end them; the answer does not wait for that)."""
        reason, message = self._reason(kw)
        effects: list[Effect] = []
        for target in targets:
            effects.extend(self.realm.kill(target, reason, message))
        for sid in remote or []:
            assert self.realm.remote is not None
            effects.extend(self.realm.remote.kill_remote(sid, reason, message))
        return [[t.session_id for t in targets] + (remote or [])], effects

    def _remote_where(self, key: str, value: str) -> list[int]:
        remote = self.realm.remote
        if remote is None:
            return []
        return [sid for sid, (_, info, _) in remote.sessions.items() if info.get(key) == value]

    def session_kill(self, caller: Session, args: list[Any], kw: dict[str, Any]) -> Outcome:
        sid = _arg(args, 0, int, "session")
        target = self.realm.sessions.get(sid)
        if target is None and self.realm.remote is not None and self.realm.remote.remote_of(sid):
            _, effects = self._kill([], kw, [sid])
            return None, effects
        if target is None or target is caller:
            raise WampError(NO_SUCH_SESSION, f"no other session {sid} in this realm")
        _, effects = self._kill([target], kw)
        return None, effects

    def kill_by_authid(self, caller: Session, args: list[Any], kw: dict[str, Any]) -> Outcome:
        authid = _arg(args, 0, str, "authid")
        return self._kill([s for s in self.realm.sessions.values()
                           if s.authid == authid and s is not caller], kw,
                          self._remote_where("authid", authid))

    def kill_by_authrole(self, caller: Session, args: list[Any], kw: dict[str, Any]) -> Outcome:
        authrole = _arg(args, 0, str, "authrole")
        killed, effects = self._kill([s for s in self.realm.sessions.values()
                                      if s.authrole == authrole and s is not caller], kw,
                                     self._remote_where("authrole", authrole))
        assert killed is not None
        return [len(killed[0])], effects

    def kill_all(self, caller: Session, args: list[Any], kw: dict[str, Any]) -> Outcome:
        remote = list(self.realm.remote.sessions) if self.realm.remote is not None else []
        killed, effects = self._kill(
            [s for s in self.realm.sessions.values() if s is not caller], kw, remote)
        assert killed is not None
        return [len(killed[0])], effects

    # -- testaments -------------------------------------------------------
    @staticmethod
    def _scope(kw: dict[str, Any]) -> str:
        scope = kw.get("scope", "destroyed")
        if scope not in SCOPES:
            raise WampError(INVALID_ARGUMENT, f"scope must be one of {', '.join(SCOPES)}")
        return str(scope)

    def add_testament(self, caller: Session, args: list[Any], kw: dict[str, Any]) -> Outcome:
        topic = _arg(args, 0, str, "topic")
        t_args = _arg(args, 1, list, "args", None)
        t_kwargs = _arg(args, 2, dict, "kwargs", None)
        options = kw.get("publish_options") or {}
        if not isinstance(options, dict):
            raise WampError(INVALID_ARGUMENT, "publish_options must be a dict")
        scope = self._scope(kw)
        self.realm.check_publish(caller, topic)  # authorization when the testament is added
        parse_filter(options)  # a malformed black/whitelist is refused now, not at leave
        if caller.testaments is None:
            caller.testaments = {s: [] for s in SCOPES}
        options = {k: v for k, v in options.items() if k != "acknowledge"}
        caller.testaments[scope].append((topic, t_args, t_kwargs, options))
        return None, self.realm.testaments_changed(caller)

    def flush_testaments(self, caller: Session, args: list[Any], kw: dict[str, Any]) -> Outcome:
        scope = self._scope(kw)
        flushed = 0
        if caller.testaments is not None:
            flushed = len(caller.testaments[scope])
            caller.testaments[scope] = []
        return [flushed], self.realm.testaments_changed(caller) if flushed else []

    # -- subscriptions -------------------------------------------------------
    # In a cluster every node derives the same id for a (topic, match), so the
    # answers combine this node's subscriptions with the other nodes' subscribers
    # (RemoteRpc.subs, kept from their "sub+"/"sub-" announcements).
    def _remote_subs(self) -> dict[tuple[str, str], dict[int, tuple[str, float]]]:
        return self.realm.remote.subs if self.realm.remote is not None else {}

    def subscription_list(self, caller: Session, args: list[Any], kw: dict[str, Any]) -> Outcome:
        lists: dict[str, list[int]] = {"exact": [], "prefix": [], "wildcard": []}
        broker = self.realm.broker
        for sub in broker.subscriptions():
            lists[sub.match].append(sub.id)
        for key in self._remote_subs():
            if broker.lookup(*key) is None:
                lists[key[1]].append(RemoteRpc.sub_id(key))
        return [lists], []

    @staticmethod
    def _match_option(args: list[Any]) -> str:
        options = _arg(args, 1, dict, "options", {})
        match = options.get("match", "exact")
        if match not in ("exact", "prefix", "wildcard"):
            raise WampError(INVALID_ARGUMENT, f"unknown match policy {match!r}")
        return str(match)

    def subscription_lookup(self, caller: Session, args: list[Any], kw: dict[str, Any]) -> Outcome:
        topic = _arg(args, 0, str, "topic")
        match = self._match_option(args)
        sub = self.realm.broker.lookup(topic, match)
        if sub is not None:
            return [sub.id], []
        return [RemoteRpc.sub_id((topic, match)) if (topic, match) in self._remote_subs()
                else None], []

    def subscription_match(self, caller: Session, args: list[Any], kw: dict[str, Any]) -> Outcome:
        topic = _arg(args, 0, str, "topic")
        if not is_valid_uri(topic):
            raise WampError(INVALID_URI, f"invalid topic URI {topic!r}")
        broker = self.realm.broker
        ids = [sub.id for sub in broker.matching(topic)]
        remote = self.realm.remote
        if remote is not None and remote.subs:
            ids += [RemoteRpc.sub_id(key) for key in remote.sub_map.all_matches(topic)
                    if broker.lookup(*key) is None]
        return [ids or None], []

    def _subscription(self, args: list[Any]) -> tuple[Any, tuple[str, str] | None]:
        """(the local subscription or None, its key when other nodes have subscribers)."""
        sub_id = _arg(args, 0, int, "subscription")
        sub = self.realm.broker.subscription(sub_id)
        key = (sub.topic, sub.match) if sub is not None else None
        if key is None and self.realm.remote is not None:
            key = self.realm.remote.sub_keys.get(sub_id)
        if sub is None and key is None:
            raise WampError(NO_SUCH_SUBSCRIPTION, f"no subscription {args[0]}")
        return sub, key if key in self._remote_subs() else None

    def subscription_get(self, caller: Session, args: list[Any], kw: dict[str, Any]) -> Outcome:
        sub, key = self._subscription(args)
        created = [c for _, c in self._remote_subs()[key].values()] if key is not None else []
        if sub is not None:  # (created: the cluster's first subscriber's time)
            return [{**self.realm.broker.details(sub),
                     "created": iso(min([sub.created, *created]))}], []
        assert key is not None
        return [{"id": RemoteRpc.sub_id(key), "created": iso(min(created)), "uri": key[0],
                 "match": key[1]}], []

    def _subscribers(self, args: list[Any]) -> list[int]:
        sub, key = self._subscription(args)
        local = [s.session_id for s in sub.subscribers.values()] if sub is not None else []
        return local + (list(self._remote_subs()[key]) if key is not None else [])

    def list_subscribers(self, caller: Session, args: list[Any], kw: dict[str, Any]) -> Outcome:
        return [self._subscribers(args)], []

    def count_subscribers(self, caller: Session, args: list[Any], kw: dict[str, Any]) -> Outcome:
        return [len(self._subscribers(args))], []

    # -- registrations -------------------------------------------------------
    def registration_list(self, caller: Session, args: list[Any], kw: dict[str, Any]) -> Outcome:
        lists: dict[str, list[int]] = {"exact": [], "prefix": [], "wildcard": []}
        for reg in self.realm.dealer.registrations():
            lists[reg.match].append(reg.id)
        return [lists], []

    def registration_lookup(self, caller: Session, args: list[Any], kw: dict[str, Any]) -> Outcome:
        procedure = _arg(args, 0, str, "procedure")
        match = self._match_option(args)
        if not is_valid_pattern(procedure, match):
            raise WampError(INVALID_URI, f"invalid procedure URI {procedure!r}")
        reg = self.realm.dealer.get_exact(procedure, match)
        return [None if reg is None else reg.id], []

    def registration_match(self, caller: Session, args: list[Any], kw: dict[str, Any]) -> Outcome:
        procedure = _arg(args, 0, str, "procedure")
        reg = self.realm.dealer.lookup(procedure)
        return [None if reg is None else reg.id], []

    def _registration(self, args: list[Any]) -> Any:
        reg = self.realm.dealer.registration(_arg(args, 0, int, "registration"))
        if reg is None:
            raise WampError(NO_SUCH_REGISTRATION, f"no registration {args[0]}")
        return reg

    def registration_get(self, caller: Session, args: list[Any], kw: dict[str, Any]) -> Outcome:
        return [self.realm.dealer.details(self._registration(args))], []

    def list_callees(self, caller: Session, args: list[Any], kw: dict[str, Any]) -> Outcome:
        return [[c.session.session_id for c in self._registration(args).callees]], []

    def count_callees(self, caller: Session, args: list[Any], kw: dict[str, Any]) -> Outcome:
        return [len(self._registration(args).callees)], []
