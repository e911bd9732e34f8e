"""Advanced Profile pub/sub and the session/subscription meta API, end to end:
real autobahn-python (asyncio) clients over WebSocket and RawSocket, plus raw
peers for what autobahn-python cannot send (``disclose_me``, badly typed
options, an abrupt TCP reset).

Most tests run against the router from ``realms/interop.toml`` (the
``router`` fixture); tests that need other roles (forced disclosure, a role
that may add testaments but publish only under ``com.example.``, several
authids and authroles in one realm) run against ``CUSTOM_CONFIG``.

"Nothing else arrived" is checked with a fence: a marker publication from the
same publisher on the same topic, which the subscriber receives after
everything published before it.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from autobahn.wamp import types
from autobahn.wamp.exception import ApplicationError

from .clients import Client, close, join
from .rawclient import RsPeer, WsPeer
from .router_process import RouterProcess, run_router

TRANSPORTS = ["ws", "rs"]
ACK = types.PublishOptions(acknowledge=True)
KILLED = "wamp.close.killed"

CUSTOM_REALM = "custom"
_ANY = """[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = ["call", "register", "publish", "subscribe"]
"""
_TICKETS = "".join(
    f'[[listeners.auth.ticket]]\nauthid = "{authid}"\nticket = "{authid}-secret"\n'
    f'role = "{role}"\n\n'
    for authid, role in [("loud", "loud"), ("quiet", "quiet"), ("limited", "limited"),
                         ("alice", "user"), ("bob", "user")])
CUSTOM_CONFIG = f"""
[[listeners]]
transport = "websocket"
endpoint = "127.0.0.1:0"
path = "/ws"

[listeners.auth.anonymous]
role = "admin"

{_TICKETS}
[[listeners]]
transport = "rawsocket"
endpoint = "127.0.0.1:0"

[listeners.auth.anonymous]
role = "admin"

{_TICKETS}
[[realms]]
name = "{CUSTOM_REALM}"

[[realms.roles]]
name = "admin"
{_ANY}
[[realms.roles]]
name = "user"
{_ANY}
[[realms.roles]]
name = "loud"
disclose = {{ publisher = true }}
{_ANY}
[[realms.roles]]
name = "quiet"
disclose = {{ publisher = false }}
{_ANY}
[[realms.roles]]
name = "limited"

[[realms.roles.permissions]]
uri = "com.example."
match = "prefix"
allow = ["call", "register", "publish", "subscribe"]

[[realms.roles.permissions]]
uri = "wamp.session.add_testament"
match = "exact"
allow = ["call"]

[[realms.roles.permissions]]
uri = "wamp.session.flush_testaments"
match = "exact"
allow = ["call"]
"""


@pytest.fixture(scope="module")
def custom() -> Iterator[RouterProcess]:
    """A router from CUSTOM_CONFIG shared by the tests of this module."""
    with run_router(CUSTOM_CONFIG) as rp:
        yield rp


@pytest.fixture()
def fresh() -> Iterator[RouterProcess]:
    """A router from CUSTOM_CONFIG of its own, for exact session counts."""
    with run_router(CUSTOM_CONFIG) as rp:
        yield rp


# -- helpers --------------------------------------------------------------------------


def url(router: RouterProcess, transport: str) -> str:
    return router.ws_url if transport == "ws" else router.raw_url


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 45))


def unique(prefix: str = "com.example.adv") -> str:
    return f"{prefix}.{uuid.uuid4().hex[:12]}"


async def alice(router: RouterProcess, transport: str = "ws", serializer: str = "json") -> Client:
    return await join(url(router, transport), "realm2", serializer, ["ticket"], "alice",
                      "secret123")


async def bob(router: RouterProcess, transport: str = "ws", serializer: str = "json") -> Client:
    return await join(url(router, transport), "realm2", serializer, ["wampcra"], "bob",
                      "bobsecret")


async def login(router: RouterProcess, authid: str | None = None, transport: str = "ws",
                serializer: str = "json") -> Client:
    """Join CUSTOM_REALM anonymously (role admin) or as a ticket principal."""
    if authid is None:
        return await join(url(router, transport), CUSTOM_REALM, serializer)
    return await join(url(router, transport), CUSTOM_REALM, serializer, ["ticket"], authid,
                      f"{authid}-secret")


@dataclass
class Ev:
    args: list[Any]
    kwargs: dict[str, Any]
    details: Any  # types.EventDetails


class Inbox:
    """An event handler that queues what it gets, in arrival order."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Ev] = asyncio.Queue()

    def __call__(self, *args: Any, details: Any = None, **kwargs: Any) -> None:
        self.queue.put_nowait(Ev(list(args), kwargs, details))

    async def get(self, timeout: float = 5) -> Ev:
        return await asyncio.wait_for(self.queue.get(), timeout)

    async def until(self, marker: str, timeout: float = 5) -> list[Ev]:
        """The events before the first one whose args are ``[marker]``."""
        out: list[Ev] = []
        while True:
            ev = await self.get(timeout)
            if ev.args == [marker]:
                return out
            out.append(ev)


async def subscribe(session: Client, topic: str, inbox: Inbox | None = None,
                    **options: Any) -> tuple[Inbox, Any]:
    inbox = inbox or Inbox()
    sub = await session.subscribe(inbox, topic, options=types.SubscribeOptions(
        details_arg="details", **options))
    return inbox, sub


async def drain(publisher: Client, topic: str, inbox: Inbox,
                exclude_me: bool = True) -> list[Ev]:
    """Publish a marker to ``topic``; what ``inbox`` got before it."""
    [events] = await fence_events(publisher, topic, inbox, exclude_me=exclude_me)
    return events


async def fence_events(publisher: Client, topic: str, *inboxes: Inbox,
                       exclude_me: bool = True) -> list[list[Ev]]:
    marker = f"fence-{uuid.uuid4().hex}"
    await publisher.publish(topic, marker, options=types.PublishOptions(
        acknowledge=True, exclude_me=exclude_me))
    return [await inbox.until(marker) for inbox in inboxes]


async def fence(publisher: Client, topic: str, *inboxes: Inbox,
                exclude_me: bool = True) -> list[list[list[Any]]]:
    """Publish a marker to ``topic``; per inbox, the args of what arrived before it."""
    got = await fence_events(publisher, topic, *inboxes, exclude_me=exclude_me)
    return [[ev.args for ev in events] for events in got]


async def wait_event(inbox: Inbox, session: int, timeout: float = 5) -> tuple[Ev, list[Ev]]:
    """The next session meta event about ``session`` (on_join: details dict, on_leave:
    session id first), and the events about other sessions skipped before it."""
    skipped = []
    while True:
        ev = await inbox.get(timeout)
        first = ev.args[0]
        if (first.get("session") if isinstance(first, dict) else first) == session:
            return ev, skipped
        skipped.append(ev)


async def wamp_error(awaitable: Any) -> str:
    """The error URI the awaitable fails with (it must fail)."""
    with pytest.raises(ApplicationError) as err:
        await awaitable
    return str(err.value.error)


class Raw:
    """A raw WAMP peer (JSON over WebSocket or RawSocket) with request ids."""

    def __init__(self, router: RouterProcess, transport: str, realm: str = "realm1",
                 authid: str | None = None, ticket: str | None = None) -> None:
        self.peer: WsPeer | RsPeer = (WsPeer(router.ws_port) if transport == "ws"
                                      else RsPeer(router.raw_port))
        details: dict[str, Any] = {}
        if ticket is not None:
            details = {"authmethods": ["ticket"], "authid": authid}
        reply = self.peer.hello(realm, **details)
        if reply[0] == 4:
            self.peer.send([5, ticket, {}])
            reply = self.peer.recv()
        assert reply[0] == 2, reply
        self.session: int = reply[1]
        self.authid: str = reply[2]["authid"]
        self.authrole: str = reply[2]["authrole"]
        self.request = 0

    def send(self, msg: list[Any]) -> None:
        self.peer.send(msg)

    async def recv(self) -> list[Any]:
        return await asyncio.to_thread(self.peer.recv)

    async def request_reply(self, msg: list[Any]) -> list[Any]:
        """Send a request (msg[1] is set to a fresh request id); its reply, skipping events."""
        self.request += 1
        msg[1] = self.request
        self.send(msg)
        while True:
            reply = await self.recv()
            if (reply[0] == 8 and reply[2] == self.request) or (
                    reply[0] in (17, 33, 35, 50) and reply[1] == self.request):
                return reply

    async def publish(self, topic: str, options: dict[str, Any], *args: Any) -> list[Any]:
        return await self.request_reply([16, 0, {"acknowledge": True, **options}, topic,
                                         list(args)])

    async def call(self, procedure: str, args: list[Any],
                   kwargs: dict[str, Any] | None = None) -> list[Any]:
        return await self.request_reply([48, 0, {}, procedure, args, kwargs or {}])

    def abort(self) -> None:
        """Drop the TCP connection with a reset: no WAMP or WebSocket goodbye."""
        self.peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.peer.sock.close()

    def close(self) -> None:
        self.peer.close()


def iso8601(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- publisher exclusion ----------------------------------------------------------------


@pytest.mark.parametrize("transport,serializer", [
    ("ws", "json"), ("rs", "msgpack"), ("ws", "cbor"), ("rs", "cbor")])
def test_publisher_exclusion(router: RouterProcess, transport: str, serializer: str) -> None:
    """exclude_me defaults to true; exclude_me=false delivers to the publisher too."""
    async def scenario() -> None:
        topic = unique()
        pub = await join(url(router, transport), serializer=serializer)
        other = await join(url(router, "rs" if transport == "ws" else "ws"))
        mine, _ = await subscribe(pub, topic)
        theirs, _ = await subscribe(other, topic)
        await pub.publish(topic, "default", options=ACK)
        await pub.publish(topic, "true", options=types.PublishOptions(acknowledge=True,
                                                                      exclude_me=True))
        await pub.publish(topic, "false", options=types.PublishOptions(acknowledge=True,
                                                                       exclude_me=False))
        got_mine, got_theirs = await fence(pub, topic, mine, theirs, exclude_me=False)
        assert got_mine == [["false"]]
        assert got_theirs == [["default"], ["true"], ["false"]]
        await close(pub, other)

    run(scenario())


# -- black- and whitelisting -----------------------------------------------------------

Case = tuple[str, dict[str, Any], str]  # label, publish options, who receives it


async def check_cases(pub: Client, topic: str, inboxes: dict[str, Inbox],
                      cases: list[Case]) -> None:
    """Publish every case, then fence: each inbox got exactly its cases, in order."""
    for label, options, _ in cases:
        await pub.publish(topic, label, options=types.PublishOptions(acknowledge=True,
                                                                     **options))
    got = await fence(pub, topic, *inboxes.values(), exclude_me=False)
    for name, received in zip(inboxes, got, strict=True):
        want = [[label] for label, _, who in cases if name in who]
        assert received == want, (name, received, want)


@pytest.mark.parametrize("specs", [
    [("ws", "json"), ("rs", "msgpack"), ("ws", "cbor"), ("rs", "cbor")],
    [("rs", "json"), ("ws", "msgpack"), ("rs", "cbor"), ("ws", "json")],
], ids=["pub-ws", "pub-rs"])
def test_blackwhite_listing_by_session_authid_authrole(router: RouterProcess,
                                                       specs: list[tuple[str, str]]) -> None:
    """The six options alone and combined (AND of all present lists), in realm1."""
    async def scenario() -> None:
        topic = unique()
        sessions = [await join(url(router, t), serializer=s) for t, s in specs]
        pub = sessions[0]
        inboxes = {name: (await subscribe(s, topic))[0] for name, s in zip("PABC", sessions,
                                                                              strict=True)}
        p, a, b, c = (s.details.session for s in sessions)
        _, ida, idb, idc = (s.details.authid for s in sessions)
        assert len({ida, idb, idc}) == 3
        cases: list[Case] = [
            ("plain", {}, "ABC"),
            ("exclude-a", {"exclude": [a]}, "BC"),
            ("exclude-a-c", {"exclude": [a, c]}, "B"),
            ("eligible-b", {"eligible": [b]}, "B"),
            ("eligible-p-a-b", {"eligible": [p, a, b]}, "AB"),
            ("eligible-unknown", {"eligible": [4242]}, ""),
            ("and-eligible-exclude", {"eligible": [a, b, c], "exclude": [b]}, "AC"),
            ("and-same", {"eligible": [a], "exclude": [a]}, ""),
            ("exclude-authid", {"exclude_authid": [idb]}, "AC"),
            ("eligible-authid", {"eligible_authid": [ida, idc]}, "AC"),
            ("and-authid-exclude", {"eligible_authid": [ida, idc], "exclude": [c]}, "A"),
            ("eligible-role", {"eligible_authrole": ["anonymous"]}, "ABC"),
            ("eligible-other-role", {"eligible_authrole": ["user"]}, ""),
            ("exclude-role", {"exclude_authrole": ["anonymous"]}, ""),
            ("exclude-other-role", {"exclude_authrole": ["user"]}, "ABC"),
            ("and-two-whitelists", {"eligible": [a, b], "eligible_authid": [idb, idc]}, "B"),
            ("and-three", {"eligible_authrole": ["anonymous"], "exclude_authid": [ida],
                           "exclude": [c]}, "B"),
            ("me-eligible", {"exclude_me": False, "eligible": [p, a]}, "PA"),
            ("me-excluded", {"exclude_me": False, "exclude": [p]}, "ABC"),
            ("me-role", {"exclude_me": False, "exclude_authrole": ["anonymous"]}, ""),
        ]
        await check_cases(pub, topic, inboxes, cases)
        await close(*sessions)

    run(scenario())


def test_blackwhite_listing_by_authid_realm2(router: RouterProcess) -> None:
    """authid / authrole lists across alice (ticket) and bob (WAMP-CRA) sessions."""
    async def scenario() -> None:
        topic = unique()
        pub = await bob(router, "rs", "msgpack")
        alice1, alice2 = await alice(router, "ws"), await alice(router, "rs", "cbor")
        bob1 = await bob(router, "ws", "cbor")
        named = {"P": pub, "1": alice1, "2": alice2, "B": bob1}
        inboxes = {name: (await subscribe(s, topic))[0] for name, s in named.items()}
        cases: list[Case] = [
            ("plain", {}, "12B"),
            ("eligible-alice", {"eligible_authid": ["alice"]}, "12"),
            ("exclude-alice", {"exclude_authid": ["alice"]}, "B"),
            ("eligible-bob", {"eligible_authid": ["bob"]}, "B"),
            ("eligible-bob-me", {"eligible_authid": ["bob"], "exclude_me": False}, "PB"),
            ("alice-not-1", {"eligible_authid": ["alice"],
                             "exclude": [alice1.details.session]}, "2"),
            ("both-not-bob", {"eligible_authid": ["alice", "bob"],
                              "exclude_authid": ["bob"]}, "12"),
            ("user-not-alice", {"eligible_authrole": ["user"], "exclude_authid": ["alice"]},
             "B"),
            ("exclude-user", {"exclude_authrole": ["user"]}, ""),
            ("eligible-carol", {"eligible_authid": ["carol"]}, ""),
            ("and-session-authid", {"eligible": [bob1.details.session],
                                    "eligible_authid": ["alice"]}, ""),
        ]
        await check_cases(pub, topic, inboxes, cases)
        await close(*named.values())

    run(scenario())


BAD_FILTERS = [
    {"exclude": "x"}, {"exclude": [1, "2"]}, {"exclude": [1.5]}, {"eligible": 5},
    {"eligible": [True]}, {"eligible": {"a": 1}}, {"exclude_authid": "alice"},
    {"exclude_authid": [1]}, {"eligible_authid": [None]}, {"eligible_authrole": "user"},
    {"exclude_authrole": [["user"]]},
]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("options", BAD_FILTERS, ids=lambda o: repr(o))
def test_badly_typed_filter_options_are_invalid_argument(router: RouterProcess, transport: str,
                                                         options: dict[str, Any]) -> None:
    """A PUBLISH with a badly typed black/whitelist: ERROR invalid_argument, no event."""
    async def scenario() -> None:
        topic = unique()
        pub = Raw(router, transport)
        sub = Raw(router, "rs" if transport == "ws" else "ws")
        assert (await sub.request_reply([32, 0, {}, topic]))[0] == 33
        reply = await pub.publish(topic, options, "bad")
        assert reply[:3] == [8, 16, pub.request] and reply[4] == "wamp.error.invalid_argument", (
            reply)
        assert (await pub.publish(topic, {}, "good"))[0] == 17
        event = await sub.recv()
        assert event[0] == 36 and event[4] == ["good"], event
        pub.close()
        sub.close()

    run(scenario())


# -- publisher identification ----------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_disclose_me(router: RouterProcess, transport: str) -> None:
    """disclose_me=true: EVENT carries publisher, publisher_authid, publisher_authrole;
    without it (or with false) no identity at all."""
    async def scenario() -> None:
        topic = unique()
        sub = await join(url(router, transport), serializer="msgpack")
        inbox, _ = await subscribe(sub, topic)
        pub = Raw(router, "rs" if transport == "ws" else "ws")
        for options in ({"disclose_me": True}, {}, {"disclose_me": False}):
            assert (await pub.publish(topic, options, "x"))[0] == 17
        disclosed, plain, refused = [(await inbox.get()).details for _ in range(3)]
        assert (disclosed.publisher, disclosed.publisher_authid, disclosed.publisher_authrole) == (
            pub.session, pub.authid, "anonymous")
        for details in (plain, refused):
            assert (details.publisher, details.publisher_authid,
                    details.publisher_authrole) == (None, None, None)
        pub.close()
        await close(sub)

    run(scenario())


def test_disclose_me_realm2_identity(router: RouterProcess) -> None:
    """A ticket-authenticated publisher is disclosed with its authid and authrole."""
    async def scenario() -> None:
        topic = unique()
        sub = await bob(router, "rs")
        inbox, _ = await subscribe(sub, topic)
        pub = Raw(router, "ws", "realm2", authid="alice", ticket="secret123")
        assert (await pub.publish(topic, {"disclose_me": True}, "hi"))[0] == 17
        details = (await inbox.get()).details
        assert (details.publisher, details.publisher_authid, details.publisher_authrole) == (
            pub.session, "alice", "user")
        pub.close()
        await close(sub)

    run(scenario())


def test_role_config_forces_disclosure_on(custom: RouterProcess) -> None:
    """disclose = { publisher = true }: identity even without (or against) disclose_me."""
    async def scenario() -> None:
        topic = unique()
        sub = await login(custom, transport="rs")
        inbox, _ = await subscribe(sub, topic)
        loud = await login(custom, "loud")
        await loud.publish(topic, "ack-only", options=ACK)
        raw = Raw(custom, "rs", CUSTOM_REALM, authid="loud", ticket="loud-secret")
        assert (await raw.publish(topic, {"disclose_me": False}, "refused"))[0] == 17
        first, second = await inbox.get(), await inbox.get()
        assert first.args == ["ack-only"] and second.args == ["refused"]
        assert (first.details.publisher, first.details.publisher_authid,
                first.details.publisher_authrole) == (loud.details.session, "loud", "loud")
        assert (second.details.publisher, second.details.publisher_authid) == (raw.session,
                                                                              "loud")
        raw.close()
        await close(sub, loud)

    run(scenario())


def test_role_config_forces_disclosure_off(custom: RouterProcess) -> None:
    """disclose = { publisher = false }: disclose_me is not honoured; a role without the
    setting is disclosed on request."""
    async def scenario() -> None:
        topic = unique()
        sub = await login(custom)
        inbox, _ = await subscribe(sub, topic)
        quiet = Raw(custom, "ws", CUSTOM_REALM, authid="quiet", ticket="quiet-secret")
        admin = Raw(custom, "rs", CUSTOM_REALM)
        assert (await quiet.publish(topic, {"disclose_me": True}, "quiet"))[0] == 17
        assert (await admin.publish(topic, {"disclose_me": True}, "admin"))[0] == 17
        got = {}
        for _ in range(2):
            ev = await inbox.get()
            got[ev.args[0]] = (ev.details.publisher, ev.details.publisher_authid,
                               ev.details.publisher_authrole)
        assert got == {"quiet": (None, None, None),
                       "admin": (admin.session, admin.authid, "admin")}
        quiet.close()
        admin.close()
        await close(sub)

    run(scenario())


def test_role_config_forces_disclosure_on_for_publish_without_options(
        custom: RouterProcess) -> None:
    async def scenario() -> None:
        topic = unique()
        sub = await login(custom)
        inbox, _ = await subscribe(sub, topic)
        loud = await login(custom, "loud", "rs")
        loud.publish(topic, "plain")  # PUBLISH with Options {}
        ev = await inbox.get()
        await close(sub, loud)
        assert (ev.details.publisher, ev.details.publisher_authid,
                ev.details.publisher_authrole) == (loud.details.session, "loud", "loud")

    run(scenario())


# -- pattern-based subscriptions --------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_pattern_subscriptions_carry_the_topic(router: RouterProcess, transport: str) -> None:
    """prefix and wildcard matching; EVENT.Details.topic is the concrete topic."""
    async def scenario() -> None:
        base = unique("com.example.pat")
        sub = await join(url(router, transport), serializer="cbor")
        pub = await join(router.ws_url)
        by_prefix, psub = await subscribe(sub, base, match="prefix")
        by_wildcard, wsub = await subscribe(sub, base + "..w", match="wildcard")
        topics = [base, base + "-low", base + ".a.w", base + ".a.w.x", base + ".w",
                  base + ".b.c", "com.example.other"]
        for topic in topics:
            await pub.publish(topic, topic, options=ACK)
        prefix_events = [await by_prefix.get() for _ in range(6)]
        wildcard_event = await by_wildcard.get()
        assert [e.args[0] for e in prefix_events] == topics[:6]
        assert all(e.details.topic == e.args[0] for e in prefix_events)
        assert {e.details.subscription.id for e in prefix_events} == {psub.id}
        assert wildcard_event.args == [base + ".a.w"]
        assert wildcard_event.details.topic == base + ".a.w"
        assert wildcard_event.details.subscription.id == wsub.id != psub.id
        assert prefix_events[2].details.publication == wildcard_event.details.publication
        await pub.publish(base + ".z.w", "fence", options=ACK)  # matches both
        assert (await by_wildcard.get()).args == ["fence"]
        assert (await by_prefix.get()).args == ["fence"]
        await close(sub, pub)

    run(scenario())


def test_one_event_per_matching_subscription(router: RouterProcess) -> None:
    """Subscribed with exact, prefix and wildcard: one publication arrives three times,
    under three subscription ids, with the same publication id."""
    async def scenario() -> None:
        base = unique("com.example.multi")
        topic = base + ".x.y"
        sub = await join(router.raw_url, serializer="msgpack")
        pub = await join(router.ws_url)
        exact, esub = await subscribe(sub, topic)
        prefix, psub = await subscribe(sub, base, match="prefix")
        wildcard, wsub = await subscribe(sub, base + "..y", match="wildcard")
        assert len({esub.id, psub.id, wsub.id}) == 3
        await pub.publish(topic, "once", options=ACK)
        got = await fence(pub, topic, exact, prefix, wildcard)
        assert got == [[["once"]], [["once"]], [["once"]]]
        await pub.publish(topic, "again", options=ACK)
        events = [await exact.get(), await prefix.get(), await wildcard.get()]
        assert [e.details.subscription.id for e in events] == [esub.id, psub.id, wsub.id]
        assert len({e.details.publication for e in events}) == 1
        assert [e.details.topic for e in events] == [topic] * 3
        await close(sub, pub)

    run(scenario())


def test_same_uri_and_policy_share_one_subscription(router: RouterProcess) -> None:
    """Two sessions subscribing to the same URI and policy get the same subscription id;
    another policy on the same URI is another subscription."""
    async def scenario() -> None:
        uri = unique("com.example.shared")
        s1 = await join(router.ws_url)
        s2 = await join(router.raw_url, serializer="cbor")
        pub = await join(router.ws_url)
        ids = {}
        for policy in ("exact", "prefix"):
            _, a = await subscribe(s1, uri, match=policy)
            _, b = await subscribe(s2, uri, match=policy)
            assert a.id == b.id
            ids[policy] = a.id
        _, w1 = await subscribe(s1, uri + "..z", match="wildcard")
        _, w2 = await subscribe(s2, uri + "..z", match="wildcard")
        assert w1.id == w2.id
        assert len({ids["exact"], ids["prefix"], w1.id}) == 3
        for policy, sub_id in ids.items():
            assert await s1.call("wamp.subscription.lookup", uri, {"match": policy}) == sub_id
            assert await pub.call("wamp.subscription.count_subscribers", sub_id) == 2
        await close(s1, s2, pub)

    run(scenario())


# -- event retention --------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_retained_event_is_the_last_one(router: RouterProcess, transport: str) -> None:
    """retain keeps the last retained event per topic; get_retained delivers it right
    after SUBSCRIBED with retained=true; no get_retained, no retained event."""
    async def scenario() -> None:
        topic = unique()
        pub = await join(url(router, transport))
        await pub.publish(topic, "r1", options=types.PublishOptions(acknowledge=True,
                                                                    retain=True))
        r2 = await pub.publish(topic, "r2", options=types.PublishOptions(acknowledge=True,
                                                                         retain=True))
        await pub.publish(topic, "not-retained", options=ACK)
        wants = await join(router.ws_url, serializer="msgpack")
        inbox, _ = await subscribe(wants, topic, get_retained=True)
        ev = await inbox.get()
        assert ev.args == ["r2"] and ev.details.retained is True
        assert ev.details.publication == r2.id
        others = [await join(url(router, t)) for t in TRANSPORTS]
        plain, _ = await subscribe(others[0], topic)
        refused, _ = await subscribe(others[1], topic, get_retained=False)
        await pub.publish(topic, "live", options=ACK)
        got = await fence(pub, topic, inbox, plain, refused)
        assert got == [[["live"]]] * 3
        live = await join(router.raw_url)
        live_inbox, _ = await subscribe(live, topic)
        await pub.publish(topic, "live2", options=ACK)
        assert not (await live_inbox.get()).details.retained
        await close(pub, wants, live, *others)

    run(scenario())


def test_retained_event_for_pattern_subscription(router: RouterProcess) -> None:
    """A prefix subscription with get_retained gets every matching retained topic's
    event, with the concrete topic."""
    async def scenario() -> None:
        base = unique("com.example.ret")
        pub = await join(router.ws_url)
        for topic in (base + ".a", base + ".b.c", unique("com.example.elsewhere")):
            await pub.publish(topic, topic, options=types.PublishOptions(acknowledge=True,
                                                                         retain=True))
        sub = await join(router.raw_url, serializer="cbor")
        inbox, psub = await subscribe(sub, base, match="prefix", get_retained=True)
        events = [await inbox.get(), await inbox.get()]
        assert {e.args[0] for e in events} == {base + ".a", base + ".b.c"}
        assert all(e.details.topic == e.args[0] and e.details.retained is True
                   and e.details.subscription.id == psub.id for e in events)
        assert await fence(pub, base + ".a", inbox) == [[]]
        await close(pub, sub)

    run(scenario())


def test_retained_event_obeys_session_and_role_lists(router: RouterProcess) -> None:
    """A retained event goes only to subscribers the original publication's exclude /
    eligible lists would have allowed (realm1: session ids, authids, authroles)."""
    async def scenario() -> None:
        base = unique("com.example.retf")
        pub = await join(router.ws_url)
        a, b = await join(router.raw_url), await join(router.ws_url, serializer="cbor")
        sa, sb = a.details.session, b.details.session
        retained = {
            "eligible-a": {"eligible": [sa]},
            "exclude-a": {"exclude": [sa]},
            "eligible-user": {"eligible_authrole": ["user"]},
            "exclude-authid-a": {"exclude_authid": [a.details.authid]},
            "eligible-anonymous-not-b": {"eligible_authrole": ["anonymous"], "exclude": [sb]},
            "everyone": {},
        }
        for name, options in retained.items():
            await pub.publish(f"{base}.{name}", name, options=types.PublishOptions(
                acknowledge=True, retain=True, **options))
        got = {}
        for name, session in (("a", a), ("b", b)):
            inbox, _ = await subscribe(session, base, match="prefix", get_retained=True)
            [received] = await fence(pub, f"{base}.everyone", inbox)
            got[name] = sorted(args[0] for args in received)
        assert got == {"a": ["eligible-a", "eligible-anonymous-not-b", "everyone"],
                       "b": ["everyone", "exclude-a", "exclude-authid-a"]}
        await close(pub, a, b)

    run(scenario())


def test_retained_event_obeys_authid_lists_realm2(router: RouterProcess) -> None:
    """Exact subscriptions with get_retained, alice vs bob: authid / authrole lists."""
    async def scenario() -> None:
        base = unique("com.example.reta")
        pub = await bob(router, "rs")
        retained = {
            "only-alice": {"eligible_authid": ["alice"]},
            "not-alice": {"exclude_authid": ["alice"]},
            "users-not-bob": {"eligible_authrole": ["user"], "exclude_authid": ["bob"]},
            "no-users": {"exclude_authrole": ["user"]},
        }
        for name, options in retained.items():
            await pub.publish(f"{base}.{name}", name, options=types.PublishOptions(
                acknowledge=True, retain=True, **options))
        got = {}
        for name, session in (("alice", await alice(router, "rs", "msgpack")),
                              ("bob", await bob(router, "ws", "cbor"))):
            inbox = Inbox()
            for topic in retained:
                await subscribe(session, f"{base}.{topic}", inbox, get_retained=True)
            [received] = await fence(pub, f"{base}.no-users", inbox)
            got[name] = sorted(args[0] for args in received)
            await close(session)
        assert got == {"alice": ["only-alice", "users-not-bob"], "bob": ["not-alice"]}
        await close(pub)

    run(scenario())


# -- subscription meta API ---------------------------------------------------------------




def _related(ev: Ev, topics: set[str], ids: set[int]) -> bool:
    second = ev.args[1] if len(ev.args) > 1 else None
    if isinstance(second, dict):
        return second.get("uri") in topics
    return second in ids


def test_subscription_meta_events_in_order(router: RouterProcess) -> None:
    """on_create / on_subscribe / on_unsubscribe / on_delete with the spec's arguments,
    on_create before on_subscribe, on_unsubscribe before on_delete (also when the last
    subscriber leaves); nothing when a session subscribes again to what it has."""
    async def scenario() -> None:
        topic, topic2, fence_topic = unique(), unique("com.example.pfx"), unique()
        observer = await join(router.ws_url)
        inbox, _ = await subscribe(observer, "wamp.subscription.on_", match="prefix")
        await subscribe(observer, fence_topic, inbox)
        b, c = await join(router.raw_url, serializer="msgpack"), await join(router.ws_url)
        d = await join(router.ws_url, serializer="cbor")
        _, bsub = await subscribe(b, topic)
        await subscribe(c, topic)
        _, bsub_again = await subscribe(b, topic)  # the same subscription: no meta event
        assert bsub_again.id == bsub.id
        await bsub.unsubscribe()
        await bsub_again.unsubscribe()  # autobahn sends UNSUBSCRIBE with the last handler
        await close(c)  # the last subscriber leaves
        _, dsub = await subscribe(d, topic2, match="prefix")
        await dsub.unsubscribe()
        events = await drain(d, fence_topic, inbox)
        t, t2 = bsub.id, dsub.id
        seen = [(e.details.topic.rsplit(".", 1)[1], e.args) for e in events
                if _related(e, {topic, topic2}, {t, t2})]
        sb, sc, sd = b.details.session, c.details.session, d.details.session
        created = [args[1] for name, args in seen if name == "on_create"]
        assert len(created) == 2, seen
        assert seen == [
            ("on_create", [sb, created[0]]), ("on_subscribe", [sb, t]),
            ("on_subscribe", [sc, t]), ("on_unsubscribe", [sb, t]),
            ("on_unsubscribe", [sc, t]), ("on_delete", [sc, t]),
            ("on_create", [sd, created[1]]), ("on_subscribe", [sd, t2]),
            ("on_unsubscribe", [sd, t2]), ("on_delete", [sd, t2]),
        ], seen
        for details, (sub_id, uri, match) in zip(created, [(t, topic, "exact"),
                                                           (t2, topic2, "prefix")], strict=True):
            assert {k: v for k, v in details.items() if k != "created"} == {
                "id": sub_id, "uri": uri, "match": match}
            assert iso8601(details["created"]).tzinfo is not None
        await close(observer, b, d)

    run(scenario())


def test_subscription_meta_procedures(router: RouterProcess) -> None:
    """list, lookup, match, get, list_subscribers, count_subscribers, and
    no_such_subscription for an id that is not (or no longer) a subscription."""
    async def scenario() -> None:
        base = unique("com.example.proc")
        topic = base + ".x.y"
        s1, s2 = await join(router.ws_url), await join(router.raw_url, serializer="msgpack")
        _, e1 = await subscribe(s1, topic)
        _, e2 = await subscribe(s2, topic)
        _, p = await subscribe(s1, base, match="prefix")
        _, w = await subscribe(s2, base + "..y", match="wildcard")
        t, sid1, sid2 = e1.id, s1.details.session, s2.details.session
        assert e2.id == t
        lists = await s1.call("wamp.subscription.list")
        assert sorted(lists) == ["exact", "prefix", "wildcard"]
        assert t in lists["exact"] and p.id in lists["prefix"] and w.id in lists["wildcard"]
        assert t not in lists["prefix"] + lists["wildcard"]
        for args, want in [((topic,), t), ((topic, {"match": "exact"}), t),
                           ((base, {"match": "prefix"}), p.id), ((base,), None),
                           ((base + "..y", {"match": "wildcard"}), w.id),
                           ((topic, {"match": "prefix"}), None), ((unique(),), None)]:
            assert await s2.call("wamp.subscription.lookup", *args) == want, args
        assert sorted(await s1.call("wamp.subscription.match", topic)) == sorted([t, p.id, w.id])
        assert await s1.call("wamp.subscription.match", base + ".q") == [p.id]
        assert await s1.call("wamp.subscription.match", unique("org.nothing")) is None
        got = await s1.call("wamp.subscription.get", t)
        assert {k: v for k, v in got.items() if k != "created"} == {
            "id": t, "uri": topic, "match": "exact"}
        assert iso8601(got["created"]).tzinfo is not None
        assert (await s1.call("wamp.subscription.get", w.id))["match"] == "wildcard"
        assert sorted(await s1.call("wamp.subscription.list_subscribers", t)) == sorted(
            [sid1, sid2])
        assert await s1.call("wamp.subscription.list_subscribers", p.id) == [sid1]
        assert await s1.call("wamp.subscription.count_subscribers", t) == 2
        assert await s1.call("wamp.subscription.count_subscribers", w.id) == 1
        await _no_such_subscription(s1, 2**53 - 7)
        await e2.unsubscribe()
        assert await s1.call("wamp.subscription.list_subscribers", t) == [sid1]
        await e1.unsubscribe()
        await _no_such_subscription(s2, t)
        assert await s2.call("wamp.subscription.lookup", topic) is None
        assert t not in (await s2.call("wamp.subscription.list"))["exact"]
        assert sorted(await s1.call("wamp.subscription.match", topic)) == sorted([p.id, w.id])
        await close(s1, s2)

    run(scenario())


async def _no_such_subscription(session: Client, sub_id: int) -> None:
    for procedure in ("get", "list_subscribers", "count_subscribers"):
        assert await wamp_error(session.call(f"wamp.subscription.{procedure}", sub_id)) == (
            "wamp.error.no_such_subscription"), procedure


# -- session meta API --------------------------------------------------------------------


def test_session_count_list_get(fresh: RouterProcess) -> None:
    """count / list with and without the authrole filter; get; no_such_session."""
    async def scenario() -> None:
        admin = await login(fresh)
        others = [await login(fresh, None, "rs", "cbor"), await login(fresh, "loud", "rs"),
                  await login(fresh, "alice", "rs", "msgpack"), await login(fresh, "bob")]
        everyone = [admin, *others]
        _, loud, a, b = others
        ids = [s.details.session for s in everyone]
        for args, want in [((), 5), ((["user"],), 2), ((["user", "loud"],), 3),
                           ((["admin"],), 2), ((["nobody"],), 0), (([],), 0)]:
            assert await admin.call("wamp.session.count", *args) == want, args
        assert sorted(await a.call("wamp.session.list")) == sorted(ids)
        assert sorted(await a.call("wamp.session.list", ["user"])) == sorted(
            [a.details.session, b.details.session])
        assert await a.call("wamp.session.list", ["nobody"]) == []
        info = await admin.call("wamp.session.get", a.details.session)
        assert {k: info[k] for k in ("session", "authid", "authrole", "authmethod")} == {
            "session": a.details.session, "authid": "alice", "authrole": "user",
            "authmethod": "ticket"}
        assert isinstance(info["authprovider"], str) and isinstance(info["transport"], dict)
        info = await loud.call("wamp.session.get", admin.details.session)
        assert (info["authrole"], info["authmethod"], info["authid"]) == (
            "admin", "anonymous", admin.details.authid)
        assert await wamp_error(admin.call("wamp.session.get", 2**53 - 3)) == (
            "wamp.error.no_such_session")
        await close(b)
        assert await admin.call("wamp.session.count") == 4
        assert await wamp_error(admin.call("wamp.session.get", b.details.session)) == (
            "wamp.error.no_such_session")
        await close(*everyone)

    run(scenario())


def test_session_meta_is_per_realm(router: RouterProcess) -> None:
    """A session of another realm is not counted, listed or found."""
    async def scenario() -> None:
        s = await join(router.ws_url)
        a = await alice(router, "rs")
        assert await s.call("wamp.session.count", ["user"]) == 0
        assert a.details.session not in await s.call("wamp.session.list")
        assert s.details.session in await s.call("wamp.session.list", ["anonymous"])
        assert await wamp_error(s.call("wamp.session.get", a.details.session)) == (
            "wamp.error.no_such_session")
        await close(s, a)

    run(scenario())


def test_session_kill(router: RouterProcess) -> None:
    """kill: GOODBYE with the given reason and message, or wamp.close.killed without a
    message; killing yourself or a gone session is no_such_session; a bad reason is
    invalid_uri; the killed session's on_leave and testament are published."""
    async def scenario() -> None:
        killer, observer = await join(router.ws_url), await join(router.raw_url)
        v1 = await join(router.raw_url, serializer="msgpack")
        v2, v3 = await join(router.ws_url, serializer="cbor"), await join(router.ws_url)
        leaves, _ = await subscribe(observer, "wamp.session.on_leave")
        will = unique()
        wills, _ = await subscribe(observer, will)
        await v1.call("wamp.session.add_testament", will, ["v1 is gone"], {})
        assert await killer.call("wamp.session.kill", v1.details.session,
                                 reason="com.example.maintenance", message="go away") is None
        gone = await asyncio.wait_for(v1.left, 5)
        assert (gone.reason, gone.message) == ("com.example.maintenance", "go away")
        await killer.call("wamp.session.kill", v2.details.session)
        gone = await asyncio.wait_for(v2.left, 5)
        assert (gone.reason, gone.message) == (KILLED, None)
        for victim, kwargs, error in [
                (killer, {}, "wamp.error.no_such_session"),
                (v1, {}, "wamp.error.no_such_session"),
                (v3, {"reason": "not a uri!"}, "wamp.error.invalid_uri"),
                (v3, {"reason": ""}, "wamp.error.invalid_uri")]:
            assert await wamp_error(killer.call("wamp.session.kill", victim.details.session,
                                                **kwargs)) == error
        assert v3.is_attached() and await v3.call("wamp.session.count") >= 3
        for victim in (v1, v2):
            ev, _ = await wait_event(leaves, victim.details.session)
            assert ev.args == [victim.details.session, victim.details.authid, "anonymous"]
        assert (await wills.get()).args == ["v1 is gone"]
        await close(killer, observer, v3)

    run(scenario())


def test_kill_by_authid(fresh: RouterProcess) -> None:
    """kill_by_authid kills every other session of that authid, returns their ids."""
    async def scenario() -> None:
        a1, a2 = await login(fresh, "alice"), await login(fresh, "alice", "rs", "msgpack")
        caller, b = await login(fresh, "alice", "rs"), await login(fresh, "bob")
        killed = await caller.call("wamp.session.kill_by_authid", "alice", message="bye alice")
        assert sorted(killed) == sorted([a1.details.session, a2.details.session])
        for victim in (a1, a2):
            gone = await asyncio.wait_for(victim.left, 5)
            assert (gone.reason, gone.message) == (KILLED, "bye alice")
        assert sorted(await b.call("wamp.session.list")) == sorted(
            [caller.details.session, b.details.session])
        assert await caller.call("wamp.session.kill_by_authid", "nobody") == []
        assert await wamp_error(caller.call("wamp.session.kill_by_authid", "bob",
                                            reason="bad reason")) == "wamp.error.invalid_uri"
        assert b.is_attached()
        await close(caller, b)

    run(scenario())


def test_kill_by_authrole(fresh: RouterProcess) -> None:
    """kill_by_authrole kills every other session of that role, with the given reason."""
    async def scenario() -> None:
        caller, loud = await login(fresh, "bob"), await login(fresh, "loud", "rs")
        a1, a2 = await login(fresh, "alice"), await login(fresh, "alice", "rs", "cbor")
        admin = await login(fresh)
        await caller.call("wamp.session.kill_by_authrole", "user", reason="com.example.maint")
        for victim in (a1, a2):
            gone = await asyncio.wait_for(victim.left, 5)
            assert (gone.reason, gone.message) == ("com.example.maint", None)
        assert sorted(await admin.call("wamp.session.list")) == sorted(
            s.details.session for s in (caller, loud, admin))
        await close(caller, loud, admin)

    run(scenario())


def test_kill_by_authrole_returns_the_count(fresh: RouterProcess) -> None:
    async def scenario() -> None:
        caller = await login(fresh)
        victims = [await login(fresh, "alice"), await login(fresh, "bob", "rs")]
        try:
            result = await caller.call("wamp.session.kill_by_authrole", "user")
        finally:
            await close(caller, *victims)
        assert result == 2

    run(scenario())


def test_kill_all(fresh: RouterProcess) -> None:
    """kill_all kills every session but the caller's and returns how many."""
    async def scenario() -> None:
        caller = await login(fresh, "bob", "rs")
        others = [await login(fresh), await login(fresh, "alice", "rs", "msgpack"),
                  await login(fresh, "bob", "ws", "cbor"), await login(fresh, "quiet")]
        assert await caller.call("wamp.session.kill_all", reason="com.example.shutdown",
                                 message="all out") == 4
        for victim in others:
            gone = await asyncio.wait_for(victim.left, 5)
            assert (gone.reason, gone.message) == ("com.example.shutdown", "all out")
        assert await caller.call("wamp.session.count") == 1
        last = await login(fresh)
        assert await caller.call("wamp.session.kill_all") == 1
        gone = await asyncio.wait_for(last.left, 5)
        assert (gone.reason, gone.message) == (KILLED, None)
        assert await caller.call("wamp.session.list") == [caller.details.session]
        await close(caller)

    run(scenario())


def test_session_on_join_and_on_leave(router: RouterProcess) -> None:
    """on_join (details dict) and on_leave (session, authid, authrole): on a clean leave,
    on an abrupt TCP reset over WebSocket and RawSocket, and only for the own realm."""
    async def scenario() -> None:
        observer = await join(router.ws_url)
        joins, _ = await subscribe(observer, "wamp.session.on_join")
        leaves, _ = await subscribe(observer, "wamp.session.on_leave")
        s = await join(router.raw_url, serializer="msgpack")
        sid, authid = s.details.session, s.details.authid
        ev, _ = await wait_event(joins, sid)
        details = ev.args[0]
        assert {k: details[k] for k in ("session", "authid", "authrole", "authmethod")} == {
            "session": sid, "authid": authid, "authrole": "anonymous",
            "authmethod": "anonymous"}
        assert isinstance(details["authprovider"], str)
        assert isinstance(details.get("transport", {}), dict)
        await close(s)
        ev, _ = await wait_event(leaves, sid)
        assert ev.args == [sid, authid, "anonymous"]
        for transport in TRANSPORTS:
            raw = Raw(router, transport)
            ev, _ = await wait_event(joins, raw.session)
            assert ev.args[0]["authid"] == raw.authid
            raw.abort()
            ev, _ = await wait_event(leaves, raw.session)
            assert ev.args == [raw.session, raw.authid, "anonymous"]
        other_realm = await alice(router)
        await close(other_realm)
        raw = Raw(router, "ws")
        _, skipped = await wait_event(joins, raw.session)
        assert other_realm.details.session not in [e.args[0]["session"] for e in skipped]
        raw.close()
        _, skipped = await wait_event(leaves, raw.session)
        assert other_realm.details.session not in [e.args[0] for e in skipped]
        await close(observer)

    run(scenario())


# -- testaments -----------------------------------------------------------------------


async def _watch_wills(router: RouterProcess) -> tuple[Client, str, Inbox, Inbox]:
    """An observer of a fresh testament topic prefix and of on_leave."""
    observer = await join(router.ws_url)
    base = unique("com.example.will")
    wills, _ = await subscribe(observer, base, match="prefix")
    leaves, _ = await subscribe(observer, "wamp.session.on_leave")
    return observer, base, wills, leaves


async def _wills_after_leave(observer: Client, base: str, wills: Inbox, leaves: Inbox,
                             session: int) -> list[tuple[str, list[Any], dict[str, Any]]]:
    await wait_event(leaves, session)
    events = await drain(observer, base + ".fence", wills, exclude_me=False)
    return [(e.details.topic[len(base) + 1:], e.args, e.kwargs) for e in events]


@pytest.mark.parametrize("transport,serializer", [("ws", "json"), ("rs", "cbor")])
def test_testaments_on_clean_leave(router: RouterProcess, transport: str,
                                   serializer: str) -> None:
    """Testaments are published on leave, in order, detached scope before destroyed
    scope (the default), with their args and kwargs."""
    async def scenario() -> None:
        observer, base, wills, leaves = await _watch_wills(router)
        s = await join(url(router, transport), serializer=serializer)
        add = "wamp.session.add_testament"
        await s.call(add, base + ".d1", ["d1"], {"n": 1})
        await s.call(add, base + ".x1", ["x1"], {"n": 2}, scope="detached")
        await s.call(add, base + ".d2", ["d2", 2], {}, scope="destroyed")
        await s.call(add, base + ".x2", ["x2"], {"n": 4}, scope="detached")
        await close(s)
        assert await _wills_after_leave(observer, base, wills, leaves, s.details.session) == [
            ("x1", ["x1"], {"n": 2}), ("x2", ["x2"], {"n": 4}),
            ("d1", ["d1"], {"n": 1}), ("d2", ["d2", 2], {})]
        await close(observer)

    run(scenario())


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_testaments_on_abrupt_transport_loss(router: RouterProcess, transport: str) -> None:
    """A TCP reset (no GOODBYE) publishes the testaments too, detached first."""
    async def scenario() -> None:
        observer, base, wills, leaves = await _watch_wills(router)
        raw = Raw(router, transport)
        add = "wamp.session.add_testament"
        for name, scope in [("d1", "destroyed"), ("x1", "detached"), ("d2", None)]:
            kwargs = {} if scope is None else {"scope": scope}
            reply = await raw.call(add, [f"{base}.{name}", [name], {"lost": True}], kwargs)
            assert reply[0] == 50, reply
        raw.abort()
        assert await _wills_after_leave(observer, base, wills, leaves, raw.session) == [
            ("x1", ["x1"], {"lost": True}), ("d1", ["d1"], {"lost": True}),
            ("d2", ["d2"], {"lost": True})]
        await close(observer)

    run(scenario())


def test_flush_testaments(router: RouterProcess) -> None:
    """flush_testaments removes the testaments of one scope (default: destroyed)."""
    async def scenario() -> None:
        observer, base, wills, leaves = await _watch_wills(router)
        add, flush = "wamp.session.add_testament", "wamp.session.flush_testaments"
        s = await join(router.raw_url, serializer="msgpack")
        await s.call(add, base + ".d1", ["d1"], {})
        await s.call(add, base + ".x1", ["x1"], {}, scope="detached")
        await s.call(add, base + ".d2", ["d2"], {})
        await s.call(flush)
        await s.call(add, base + ".d3", ["d3"], {})
        await close(s)
        assert await _wills_after_leave(observer, base, wills, leaves, s.details.session) == [
            ("x1", ["x1"], {}), ("d3", ["d3"], {})]
        s = await join(router.ws_url)
        await s.call(add, base + ".x1", ["x1"], {}, scope="detached")
        await s.call(add, base + ".d1", ["d1"], {}, scope="destroyed")
        await s.call(flush, scope="detached")
        await close(s)
        assert await _wills_after_leave(observer, base, wills, leaves, s.details.session) == [
            ("d1", ["d1"], {})]
        s = await join(router.ws_url)
        await s.call(add, base + ".x1", ["x1"], {}, scope="detached")
        await s.call(flush, scope="destroyed")
        await s.call(flush, scope="detached")
        await close(s)
        assert await _wills_after_leave(observer, base, wills, leaves,
                                        s.details.session) == []
        await close(observer)

    run(scenario())


def test_testament_topic_is_authorized_when_added(custom: RouterProcess) -> None:
    """A role that may add testaments but publish only under com.example.: a testament
    on another topic is refused with not_authorized when added; the allowed one is
    published when the session leaves."""
    async def scenario() -> None:
        observer = await login(custom)
        ok_topic, bad_topic = unique("com.example.will"), unique("org.other.will")
        inbox, _ = await subscribe(observer, ok_topic)
        await subscribe(observer, bad_topic, inbox)
        leaves, _ = await subscribe(observer, "wamp.session.on_leave")
        limited = await login(custom, "limited", "rs")
        add = "wamp.session.add_testament"
        assert await wamp_error(limited.call(add, bad_topic, ["no"], {})) == (
            "wamp.error.not_authorized")
        assert await wamp_error(limited.call(add, bad_topic, ["no"], {}, scope="detached")) == (
            "wamp.error.not_authorized")
        await limited.call(add, ok_topic, ["yes"], {})
        assert await wamp_error(limited.call("wamp.session.count")) == (
            "wamp.error.not_authorized")
        await close(limited)
        await wait_event(leaves, limited.details.session)
        assert await fence(observer, ok_topic, inbox, exclude_me=False) == [[["yes"]]]
        await close(observer)

    run(scenario())


def test_testament_with_unusable_publish_options_does_not_break_leave(
        router: RouterProcess) -> None:
    async def scenario() -> None:
        observer = await join(router.ws_url)
        leaves, _ = await subscribe(observer, "wamp.session.on_leave")
        s = await join(router.raw_url)
        try:
            await s.call("wamp.session.add_testament", unique(), ["x"], {},
                         publish_options={"exclude": "x"})
        except ApplicationError as exc:  # refusing it when added is fine, too
            assert exc.error == "wamp.error.invalid_argument"
        await close(s)
        try:
            ev, _ = await wait_event(leaves, s.details.session, timeout=3)
            assert ev.args[0] == s.details.session
            assert (await s.left).reason == "wamp.close.goodbye_and_out"
        finally:
            await close(observer)

    run(scenario())


# -- authorization of the meta API -------------------------------------------------------


def test_meta_api_obeys_authorization(router: RouterProcess) -> None:
    """realm2's role `user` may use only com.example.: meta procedures (including
    add_testament) and meta topics are not_authorized for it."""
    async def scenario() -> None:
        a, b = await alice(router, "rs", "msgpack"), await bob(router, "ws", "cbor")
        for s in (a, b):
            for procedure, args in [
                    ("wamp.session.count", []), ("wamp.session.list", []),
                    ("wamp.session.get", [s.details.session]), ("wamp.session.kill_all", []),
                    ("wamp.subscription.list", []),
                    ("wamp.session.add_testament", ["org.other.will", [], {}]),
                    ("wamp.session.add_testament", ["com.example.will", [], {}])]:
                assert await wamp_error(s.call(procedure, *args)) == (
                    "wamp.error.not_authorized"), procedure
            for topic, match in [("wamp.session.on_join", "exact"),
                                 ("wamp.session.on_leave", "exact"),
                                 ("wamp.subscription.on_create", "exact"),
                                 ("wamp.session.", "prefix"), ("wamp..on_join", "wildcard")]:
                assert await wamp_error(s.subscribe(print, topic, options=types.SubscribeOptions(
                    match=match))) == "wamp.error.not_authorized", topic
        topic = unique()
        inbox, _ = await subscribe(a, topic)
        await b.publish(topic, "still here", options=ACK)
        assert (await inbox.get()).args == ["still here"]
        await close(a, b)

    run(scenario())


def test_clients_cannot_forge_meta_events(router: RouterProcess) -> None:
    async def scenario() -> None:
        observer = await join(router.ws_url)
        inbox, _ = await subscribe(observer, "wamp.session.on_leave")
        fence_topic = unique()
        await subscribe(observer, fence_topic, inbox)
        forger = await join(router.raw_url)
        try:
            error = await wamp_error(forger.publish(
                "wamp.session.on_leave", observer.details.session, "forged", "anonymous",
                options=ACK))
            assert error in ("wamp.error.invalid_uri", "wamp.error.not_authorized")
            assert await fence(forger, fence_topic, inbox) == [[]]
        finally:
            await close(observer, forger)

    run(scenario())
