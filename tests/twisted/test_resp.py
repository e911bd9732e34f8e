"""The Redis connection on an in-memory transport: its opening commands (AUTH,
SELECT, PING) decide whether it becomes ready, a refusal is reported once and
closes it, and commands whose answer nobody waits for still have a refusal
logged."""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure

from wamp_router.cluster.resp import RedisConnectionLost, RespProtocol, encode
from wamp_router.cluster.sentinel import is_master


class Opened:
    def __init__(self, hello: tuple[tuple[Any, ...], ...], verify: Any = None) -> None:
        self.ready: list[RespProtocol] = []
        self.lost: list[RespProtocol] = []
        self.refused: list[tuple[str, str]] = []
        self.clock = Clock()
        self.proto = RespProtocol(self.ready.append, self.lost.append, hello=hello,
                                  on_refused=lambda what, why: self.refused.append((what, why)),
                                  verify=verify, clock=self.clock)
        self.transport = StringTransport()
        self.proto.makeConnection(self.transport)


HELLO = (("AUTH", "app", "pw"), ("SELECT", 2), ("PING",))


def test_ready_once_every_opening_command_succeeded() -> None:
    o = Opened(HELLO)
    assert o.transport.value() == b"".join(encode(args) for args in HELLO)
    o.proto.dataReceived(b"+OK\r\n+OK\r\n")
    assert o.ready == []  # PING not answered yet
    o.proto.dataReceived(b"+PONG\r\n")
    assert o.ready == [o.proto] and o.refused == [] and not o.transport.disconnecting


def test_a_refused_password_is_reported_once_and_closes_the_connection() -> None:
    o = Opened(HELLO)
    o.proto.dataReceived(b"-WRONGPASS invalid username-password pair\r\n"
                         b"-NOAUTH Authentication required.\r\n"
                         b"-NOAUTH Authentication required.\r\n")
    assert o.refused == [("AUTH", "WRONGPASS invalid username-password pair")]
    assert o.ready == [] and o.transport.disconnecting
    o.proto.connectionLost(None)
    assert o.lost == []  # it never was ready: nothing to take back
    assert o.refused == [("AUTH", "WRONGPASS invalid username-password pair")]


def test_a_connection_closed_while_opening_is_reported() -> None:
    o = Opened((("PING",),))
    o.proto.connectionLost(Failure(ConnectionError("certificate verify failed")))
    assert o.refused == [("connect", "certificate verify failed")] and o.ready == []


def test_fire_logs_a_refusal_and_ignores_a_lost_connection() -> None:
    o = Opened(())
    assert o.ready == [o.proto]
    logged: list[str] = []

    def observe(event: dict[str, Any]) -> None:
        if event.get("log_namespace") == "wamp_router.cluster.resp":
            logged.append(f"{event.get('command')}: {event.get('why')}")

    globalLogPublisher.addObserver(observe)
    try:
        o.proto.fire("PUBLISH", "ch", "x")
        d = o.proto.command("GET", "k")
        o.proto.fire("EVAL", "script", 0)
        o.proto.dataReceived(b"-NOPERM no permissions to access a channel\r\n$1\r\nv\r\n")
        got: list[Any] = []
        d.addCallback(got.append)
        assert got == [b"v"]  # the replies stay in order
        assert logged == ["PUBLISH: NOPERM no permissions to access a channel"]
        lost = o.proto.command("GET", "k")
        errors: list[Any] = []
        lost.addErrback(errors.append)
        o.proto.connectionLost(None)  # EVAL's answer never comes: nothing to say
        assert len(errors) == 1 and errors[0].check(RedisConnectionLost)
        assert o.lost == [o.proto] and len(logged) == 1
    finally:
        globalLogPublisher.removeObserver(observe)


def test_behind_sentinel_a_replica_is_refused_and_readonly_reconnects() -> None:
    o = Opened((("ROLE",),), verify=is_master)
    o.proto.dataReceived(b"*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:6379\r\n"
                         b"$9\r\nconnected\r\n:1\r\n")
    assert o.refused == [("ROLE", "it is a slave, not the master (a failover is under way?)")]
    assert o.ready == [] and o.transport.disconnecting
    o = Opened((("ROLE",),), verify=is_master)
    o.proto.dataReceived(b"*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n")
    assert o.ready == [o.proto]
    o.proto.fire("PUBLISH", "ch", "x")  # the master became a replica since
    o.proto.dataReceived(b"-READONLY You can't write against a read only replica.\r\n")
    assert o.transport.disconnecting  # the next connection asks the Sentinels again


def test_commands_of_one_turn_leave_together_at_flush_or_in_the_next_turn() -> None:
    o = Opened(())
    o.transport.clear()
    o.proto.fire("PUBLISH", "a", "1")
    o.proto.command("GET", "k")
    assert o.transport.value() == b""  # not yet: more may come in this turn
    o.proto.flush()  # the driver, before it answers its clients
    assert o.transport.value() == encode(("PUBLISH", "a", "1")) + encode(("GET", "k"))
    o.transport.clear()
    o.proto.fire("PUBLISH", "b", "2")  # outside the driver's turn (a timer, a reply)
    o.clock.advance(0)
    assert o.transport.value() == encode(("PUBLISH", "b", "2"))
    assert not o.clock.getDelayedCalls()


def test_a_connection_that_stops_answering_is_stalled() -> None:
    o = Opened(())
    o.clock.advance(100)
    assert not o.proto.stalled(o.clock.seconds(), 3.0)  # nothing asked: silence is fine
    d = o.proto.command("GET", "k")
    o.clock.advance(2)
    assert not o.proto.stalled(o.clock.seconds(), 3.0)
    o.clock.advance(2)
    assert o.proto.stalled(o.clock.seconds(), 3.0)  # asked 4 s ago, no answer
    o.proto.dataReceived(b"$1\r\nv\r\n")
    assert not o.proto.stalled(o.clock.seconds(), 3.0)
    d.addErrback(lambda _: None)


def test_behind_sentinel_a_user_without_the_right_to_run_role_is_not_refused() -> None:
    o = Opened((("AUTH", "u", "pw"), ("ROLE",)), verify=is_master)
    o.proto.dataReceived(b"+OK\r\n-NOPERM this user has no permissions to run the 'role' "
                         b"command\r\n")
    assert o.ready == [o.proto] and o.refused == []
