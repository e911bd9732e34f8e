"""Calls between the nodes of a cluster, for one realm (pure).

A callee on another node is represented here by a *proxy* session: the dealer
registers it (``register_proxy``) next to the local callees, so the invocation
policies, concurrency, progressive results and invocations, cancel modes,
timeouts and rerouting all run in the caller's node's dealer exactly as for a
local callee. What the dealer sends to a proxy (INVOCATION, INTERRUPT) becomes
a ``Relay`` to the callee's node; there, a *link* session stands for the
calling node and the call is made to the named local callee with
``Dealer.call_remote``; what the dealer sends to the link (RESULT, ERROR)
becomes a ``Relay`` back, and arrives here as the proxy's YIELD or ERROR.

Proxies and links have negative connection numbers (the router hands them out)
so the adapter can tell them from transports. A node that leaves the cluster
takes its proxies (their calls in flight fail at once) and its link (the calls
it made are interrupted) with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .dealer import UNAVAILABLE
from .effects import Advertise, Effect, Relay
from .errors import WampError
from .ids import SequentialIds, derived_id
from .messages import Call, Cancel, Error, Interrupt, Invocation, Message, Result, Yield
from .session import Session, State, TransportInfo
from .urimap import UriMap

if TYPE_CHECKING:
    from .realm import Realm

NODE_LOST = "the callee's router node left the cluster before answering the call"
SESSION_ID_TAKEN = "router.close.session_id_collision"
# the reason of a registration revoked because another node's registration of the
# same procedure came first (see RemoteRpc._contest)
REVOKED = "another router node of the cluster registered this procedure first"


@dataclass(slots=True)
class Proxy:
    node: str
    session: Session  # session_id, authid, authrole, callee features of the remote callee


class RemoteRpc:
    def __init__(self, realm: Realm, next_conn: Callable[[], int],
                 own_node: Callable[[], str] = lambda: "") -> None:
        self.realm = realm
        self._own_node = own_node  # this node's id (the backplane's)
        self.dealer = realm.dealer
        self._next_conn = next_conn
        self.proxies: dict[int, Proxy] = {}  # conn -> remote callee
        self._proxy_of: dict[tuple[str, int], int] = {}  # (node, session id) -> conn
        self.links: dict[str, Session] = {}  # node -> the stand-in for its callers
        self._link_node: dict[int, str] = {}  # link conn -> node
        self._fwd_ids = SequentialIds()
        self._sent: set[tuple[int, int]] = set()  # (proxy conn, invocation) relayed once
        # registrations of other nodes refused here (a "single" both took at once):
        # retried when the local one goes away
        self._rejected: dict[tuple[str, int, str, str], dict[str, Any]] = {}
        # sessions of other nodes: id -> (node, session details, testaments)
        self.sessions: dict[int, tuple[str, dict[str, Any], dict[str, Any] | None]] = {}
        # subscribers on other nodes: (topic, match) -> {session id: (node, created)}
        self.subs: dict[tuple[str, str], dict[int, tuple[str, float]]] = {}
        self.sub_map: UriMap[tuple[str, str]] = UriMap()  # the same keys, for matching
        self._subs_of: dict[int, set[tuple[str, str]]] = {}  # session id -> its keys
        self.sub_keys: dict[int, tuple[str, str]] = {}  # subscription id -> (topic, match)
        self._forwards: dict[tuple[str, int, int], int] = {}  # (node, proxy conn, inv) -> fwd
        self._origin: dict[tuple[int, int], tuple[str, int, int]] = {}  # (link, fwd) -> key

    def conns(self) -> list[int]:
        return [*self.proxies, *self._link_node]

    def nodes(self) -> set[str]:
        """The other nodes this realm has proxies or a link for."""
        return {p.node for p in self.proxies.values()} | set(self.links) | {
            owner for owner, _, _ in self.sessions.values()}

    # -- the directory: callees on other nodes ----------------------------------
    @staticmethod
    def entry(session: Session, procedure: str, match: str, invoke: str,
              concurrency: int, forward_timeout: bool = False,
              created: float = 0.0) -> dict[str, Any]:
        return {"proc": procedure, "match": match, "invoke": invoke, "conc": concurrency,
                "ft": forward_timeout, "sid": session.session_id, "authid": session.authid,
                "authrole": session.authrole, "features": sorted(session.callee_features),
                "created": created}

    def advertise(self, op: str, entry: dict[str, Any]) -> Advertise:
        return Advertise(self.realm.name, op, entry)

    def remote_session(self, node: str, op: str, entry: dict[str, Any]) -> list[Effect]:
        """Another node's session joined ("sess+"), left ("sess-") or set its
        testaments ("test")."""
        sid = entry["session"]
        if op == "sess+":
            old = self.sessions.get(sid)
            if old is not None and old[0] != node and old[0] < node:
                return []  # two nodes drew this id: the smaller node id keeps it (below)
            self.sessions[sid] = (node, entry, old[2] if old is not None and old[0] == node
                                  else None)
            local = self.realm.sessions.get(sid)
            if local is not None and self._own_node() > node:
                # both nodes drew this id within the moment a join takes to reach
                # the other: the node with the greater id ends its session (the
                # other node keeps its own); the client joins again with a new id
                return self.realm.kill(local, SESSION_ID_TAKEN, "another router node of "
                                       "the cluster gave the same session id at the same "
                                       "moment; join again")
        elif op == "sess-":
            for key in list(self._subs_of.get(sid, ())):
                self._unsubscribed(sid, key, node)  # (only that node's, see below)
            known = self.sessions.get(sid)
            if known is not None and known[0] != node:
                return []  # the other node's session with this id (a collision's loser left)
            self.sessions.pop(sid, None)
        elif op == "test":
            known = self.sessions.get(sid)
            if known is not None and known[0] == node:
                self.sessions[sid] = (known[0], known[1], entry.get("testaments"))
        return []

    def remote_subscription(self, node: str, op: str, entry: dict[str, Any]) -> None:
        """A session of another node subscribed ("sub+") or unsubscribed ("sub-")."""
        sid, key = entry["session"], (entry["topic"], entry["match"])
        if op == "sub-":
            self._unsubscribed(sid, key, node)
            return
        subscribers = self.subs.get(key)
        if subscribers is None:
            subscribers = self.subs[key] = {}
            self.sub_map.set(key[0], key[1], key)
            self.sub_keys[self.sub_id(key)] = key
        old = subscribers.get(sid)
        if old is not None and old[0] != node and old[0] < node:
            return  # (a session id two nodes drew: the smaller node id keeps it)
        subscribers[sid] = (node, float(entry.get("created", 0.0)))
        self._subs_of.setdefault(sid, set()).add(key)

    def _unsubscribed(self, sid: int, key: tuple[str, str], node: str | None = None) -> None:
        subscribers = self.subs.get(key)
        if subscribers is None or sid not in subscribers:
            return
        if node is not None and subscribers[sid][0] != node:
            return  # another node's session with the same id
        del subscribers[sid]
        if not subscribers:
            del self.subs[key]
            self.sub_map.remove(key[0], key[1])
            self.sub_keys.pop(self.sub_id(key), None)
        keys = self._subs_of.get(sid)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._subs_of[sid]

    def has_subscribers(self, topic: str, match: str) -> bool:
        return (topic, match) in self.subs

    @staticmethod
    def sub_id(key: tuple[str, str]) -> int:
        """The id every node gives the subscription (topic, match)."""
        return derived_id("sub", key[0], key[1])

    def remote_of(self, sid: int) -> tuple[str, dict[str, Any]] | None:
        known = self.sessions.get(sid)
        return None if known is None else (known[0], known[1])

    def kill_remote(self, sid: int, reason: str, message: str | None) -> list[Effect]:
        known = self.sessions.get(sid)
        if known is None:
            return []
        return [Relay(known[0], self.realm.name, {"op": "kill", "sid": sid, "reason": reason,
                                                  "message": message})]

    def remote_registered(self, node: str, entry: dict[str, Any], now: float) -> list[Effect]:
        key = (node, entry["sid"])
        conn = self._proxy_of.get(key)
        if conn is None:
            conn = self._next_conn()
            session = Session(conn, TransportInfo("cluster", f"node:{node}", None),
                              State.ESTABLISHED, entry["sid"], None, self.realm.name,
                              entry.get("authid", ""), entry.get("authrole", ""))
            session.callee_features = frozenset(entry.get("features", ()))
            self.proxies[conn] = Proxy(node, session)
            self._proxy_of[key] = conn
        proxy = self.proxies[conn].session
        ok = self.dealer.register_proxy(proxy, entry["proc"], entry["match"], entry["invoke"],
                                        int(entry.get("conc", 0)), now,
                                        entry.get("ft") is True,
                                        float(entry.get("created", 0.0)))
        if not ok:
            self._rejected[(node, entry["sid"], entry["proc"], entry["match"])] = entry
            self._maybe_drop(conn)
            return self._contest(node, entry, now)
        return []

    def _contest(self, node: str, entry: dict[str, Any], now: float) -> list[Effect]:
        """Another node's registration conflicts with this node's (both took a
        "single" procedure, or different policies, before hearing of the other):
        the one created first wins (then the smaller node id); if this node's
        loses, its callees' registration is revoked, and the other node's one
        takes its place here."""
        reg = self.dealer.get_exact(entry["proc"], entry["match"])
        if reg is None:
            return []
        local = [c.session for c in reg.callees if c.session.conn > 0]
        if not local:
            return []
        # every node decides alike: the first callee of the cluster (created, then the
        # smaller node id) wins; the callees whose policy agrees with it stay
        own = self._own_node()
        known: list[tuple[float, str, int, str]] = []
        for c in reg.callees:
            proxy = self.proxies.get(c.session.conn)
            owner = own if c.session.conn > 0 else proxy.node if proxy is not None else node
            known.append((c.created, owner, c.session.session_id, reg.invoke))
        for (owner, sid, proc, match), other in self._rejected.items():
            if proc == reg.procedure and match == reg.match:
                known.append((float(other.get("created", 0.0)), owner, sid,
                              other.get("invoke", "single")))
        first = min(known)
        if first[1] == own or (first[3] == reg.invoke != "single"):
            return []  # this node's callees stay (the others revoke theirs)
        effects: list[Effect] = []
        for session in local:
            effects.append(self.advertise("reg-", self.entry(session, reg.procedure, reg.match,
                                                             reg.invoke, 0)))
            effects.extend(self.dealer.revoke(session, reg, REVOKED))
        if self.dealer.get_exact(reg.procedure, reg.match) is None:
            self.local_gone(reg.procedure, reg.match, now)
        return effects

    def local_gone(self, procedure: str, match: str, now: float) -> None:
        """A local registration went away: another node's registration of the same
        procedure that was refused here (both took a "single" at once) now counts."""
        for key, entry in list(self._rejected.items()):
            if key[2] == procedure and key[3] == match:
                del self._rejected[key]
                self.remote_registered(key[0], entry, now)

    def remote_unregistered(self, node: str, entry: dict[str, Any], now: float) -> list[Effect]:
        self._rejected.pop((node, entry["sid"], entry["proc"], entry["match"]), None)
        conn = self._proxy_of.get((node, entry["sid"]))
        if conn is None:
            return []
        proxy = self.proxies[conn].session
        self.dealer.unregister_proxy(proxy, entry["proc"], entry["match"])
        if self.dealer.get_exact(entry["proc"], entry["match"]) is None:
            self.local_gone(entry["proc"], entry["match"], now)  # a refused one may count now
        # calls already relayed to it get their answer from its node (an ERROR, or
        # wamp.error.unavailable, which reroutes them); the proxy goes after them
        self._maybe_drop(conn)
        return []

    def _maybe_drop(self, conn: int) -> None:
        proxy = self.proxies.get(conn)
        if (proxy is not None and not proxy.session.registrations
                and not self.dealer.calls.of_callee(conn)):
            del self.proxies[conn]
            self._proxy_of.pop((proxy.node, proxy.session.session_id), None)

    def _drop_proxy(self, conn: int, why: str) -> list[Effect]:
        proxy = self.proxies.pop(conn)
        self._proxy_of.pop((proxy.node, proxy.session.session_id), None)
        return self.dealer.session_left(proxy.session, quiet=True, why=why)

    def node_gone(self, node: str, dead: bool = False) -> list[Effect]:
        """``node`` left the cluster: its callees and the calls it made here go. When
        this node declared it ``dead``, it also says goodbye for its sessions: their
        ``wamp.session.on_leave`` events and their testaments."""
        effects: list[Effect] = []
        for sid, (owner, info, testaments) in list(self.sessions.items()):
            if owner != node:
                continue
            del self.sessions[sid]
            if dead:
                effects.extend(self.realm.orphan_left(info, testaments))
        effects.extend(self._forget_subscribers(node, dead))
        effects.extend(self._drop_callees(node, dead))
        self._rejected = {k: v for k, v in self._rejected.items() if k[0] != node}
        link = self.links.pop(node, None)
        if link is not None:
            del self._link_node[link.conn]
            effects.extend(self.dealer.session_left(link, quiet=True))
            for key in [k for k in self._forwards if k[0] == node]:
                fwd = self._forwards.pop(key)
                self._origin.pop((link.conn, fwd), None)
        return [e for e in effects if not isinstance(e, Relay) or e.node != node]

    def _forget_subscribers(self, node: str, dead: bool) -> list[Effect]:
        """The subscribers of a node that left; when this node declared it dead, the
        meta events the dead node cannot send."""
        effects: list[Effect] = []
        emit = self.realm.emit
        for sub_key, subscribers in list(self.subs.items()):
            gone = [s for s, (owner, _) in subscribers.items() if owner == node]
            for sid in gone:
                self._unsubscribed(sid, sub_key, node)
                if dead:
                    effects.extend(emit("wamp.subscription.on_unsubscribe",
                                        [sid, self.sub_id(sub_key)]))
            if (dead and gone and sub_key not in self.subs
                    and self.realm.broker.lookup(*sub_key) is None):
                effects.extend(emit("wamp.subscription.on_delete",
                                    [gone[-1], self.sub_id(sub_key)]))
        return effects

    def _drop_callees(self, node: str, dead: bool) -> list[Effect]:
        """The callees of a node that left (their calls in flight fail); when this
        node declared it dead, the meta events the dead node cannot send."""
        effects: list[Effect] = []
        for conn in [c for c, p in self.proxies.items() if p.node == node]:
            self._sent = {k for k in self._sent if k[0] != conn}
            session = self.proxies[conn].session
            regs = [r for r in map(self.dealer.registration, sorted(session.registrations))
                    if r] if dead else []
            effects.extend(self._drop_proxy(conn, NODE_LOST))
            for reg in regs:
                effects.extend(self.realm.emit("wamp.registration.on_unregister",
                                               [session.session_id, reg.id]))
                if self.dealer.registration(reg.id) is None:
                    effects.extend(self.realm.emit("wamp.registration.on_delete",
                                                   [session.session_id, reg.id]))
        return effects

    def _link(self, node: str) -> Session:
        link = self.links.get(node)
        if link is None:
            conn = self._next_conn()
            link = Session(conn, TransportInfo("cluster", f"node:{node}", None),
                           State.ESTABLISHED, 0, None, self.realm.name)
            self.links[node] = link
            self._link_node[conn] = node
        return link

    # -- what the dealer sends to proxies and links ------------------------------
    def outbound(self, conn: int, msg: Message) -> list[Effect]:
        proxy = self.proxies.get(conn)
        if proxy is not None:  # this node calls a remote callee
            sid = proxy.session.session_id
            if type(msg) is Invocation:
                p = self.dealer.calls.by_invocation(conn, msg.request)
                procedure = p.call.procedure if p is not None else ""
                key = (conn, msg.request)
                op = "chunk" if key in self._sent else "inv"  # chunk: of a progressive call
                self._sent.add(key)
                return [Relay(proxy.node, self.realm.name, {
                    "op": op, "s": sid, "c": conn, "i": msg.request, "proc": procedure,
                    "d": msg.details, "a": msg.args, "k": msg.kwargs})]
            if type(msg) is Interrupt:
                return [Relay(proxy.node, self.realm.name, {
                    "op": "int", "s": sid, "c": conn, "i": msg.request, "o": msg.options})]
            return []
        node = self._link_node.get(conn)
        if node is None:
            return []
        origin = self._origin.get((conn, getattr(msg, "request", 0)))
        if origin is None:
            return []
        _, proxy_conn, inv = origin
        if type(msg) is Result:
            if not msg.details.get("progress"):
                self._forget(conn, msg.request)
            return [Relay(node, self.realm.name, {"op": "res", "c": proxy_conn, "i": inv,
                                                  "d": msg.details, "a": msg.args,
                                                  "k": msg.kwargs})]
        if type(msg) is Error:
            self._forget(conn, msg.request)
            return [Relay(node, self.realm.name, {"op": "err", "c": proxy_conn, "i": inv,
                                                  "e": msg.error, "d": msg.details,
                                                  "a": msg.args, "k": msg.kwargs})]
        return []

    def relay_failed(self, node: str, payload: dict[str, Any], uri: str,
                     why: str) -> list[Effect]:
        """The backplane could not send ``payload`` to ``node``: the call it belongs
        to ends with an ERROR instead of hanging."""
        op = payload.get("op")
        if op == "inv":
            self._sent.discard((payload["c"], payload["i"]))
            return self.dealer.undeliverable(payload["c"], payload["i"], 0, uri, why)
        if op == "res" and payload.get("e") is None:
            return [Relay(node, self.realm.name, {"op": "err", "c": payload["c"],
                                                  "i": payload["i"], "e": uri, "d": {},
                                                  "a": [why], "k": None})]
        return []

    def _forget(self, link_conn: int, fwd: int) -> None:
        key = self._origin.pop((link_conn, fwd), None)
        if key is not None:
            self._forwards.pop(key, None)

    # -- what another node relays here ------------------------------------------
    def inbound(self, node: str, payload: dict[str, Any], now: float) -> list[Effect]:
        op = payload.get("op")
        if op in ("res", "err"):
            proxy = self.proxies.get(payload["c"])
            if proxy is None or proxy.node != node:
                return []
            final = op == "err" or not (payload.get("d") or {}).get("progress")
            if final:
                self._sent.discard((payload["c"], payload["i"]))
            if op == "res":
                options = {} if final else {"progress": True}
                effects = self.dealer.yield_(proxy.session, Yield(
                    payload["i"], options, payload.get("a"), payload.get("k")), now)
            else:
                effects = self.dealer.error(proxy.session, Error(
                    Invocation.TYPE, payload["i"], payload.get("d") or {}, payload["e"],
                    payload.get("a"), payload.get("k")), now)
            self._maybe_drop(payload["c"])
            return effects
        if op in ("inv", "chunk"):
            return self._invocation(node, payload, now)
        if op == "kill":
            target = self.realm.sessions.get(payload["sid"])
            if target is None:
                return []
            return self.realm.kill(target, payload["reason"], payload.get("message"))
        if op == "int":
            fwd = self._forwards.get((node, payload["c"], payload["i"]))
            link = self.links.get(node)
            if fwd is None or link is None:
                return []
            options = payload.get("o") or {}
            return self.dealer.cancel(link, Cancel(fwd, {"mode": options.get("mode", "kill")}))
        return []

    def _invocation(self, node: str, payload: dict[str, Any], now: float) -> list[Effect]:
        link = self._link(node)
        key = (node, payload["c"], payload["i"])
        details = payload.get("d") or {}
        fwd = self._forwards.get(key)
        if payload["op"] == "chunk":  # the next chunk of a progressive call invocation
            if fwd is None:
                return []  # its call is over: discarded, as on one router
            chunk = Call(fwd, {"progress": details.get("progress") is True},
                         payload.get("proc", ""), payload.get("a"), payload.get("k"))
            return self.dealer.call(link, chunk, now, False)
        if fwd is not None:
            return []  # a duplicate
        callee = self.realm.sessions.get(payload["s"])
        fwd = self._fwd_ids.next()
        self._forwards[key] = fwd
        self._origin[(link.conn, fwd)] = key
        try:
            if callee is None or callee.state is not State.ESTABLISHED:
                raise WampError(UNAVAILABLE, "the callee is no longer on this node")
            return self.dealer.call_remote(link, fwd, callee, payload["proc"], details,
                                           payload.get("a"), payload.get("k"), now)
        except WampError as exc:
            self._forget(link.conn, fwd)
            return [Relay(node, self.realm.name, {"op": "err", "c": payload["c"],
                                                  "i": payload["i"], "e": exc.uri, "d": {},
                                                  "a": exc.args_, "k": exc.kwargs})]
