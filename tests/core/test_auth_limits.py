"""Failed-authentication limits through the pure core: per peer address and per
authid, a sliding window, and the ABORT delayed through the core's timer."""

from __future__ import annotations

import pytest

from tests.helpers import ROLES, Harness
from wamp_router.config.loader import load_config_text
from wamp_router.config.model import AuthLimits
from wamp_router.core.auth.limits import FailureLog, peer_host
from wamp_router.core.messages import Abort, Authenticate, Challenge, Hello, Welcome
from wamp_router.core.session import TransportInfo

CONFIG = """
[[listeners]]
transport = "websocket"
endpoint = "127.0.0.1:0"
[[listeners.auth.ticket]]
authid = "alice"
ticket = "secret123"
role = "user"
[[listeners.auth.ticket]]
authid = "bob"
ticket = "bobticket"
role = "user"
[listeners.auth.limits]
max_failures = 3
window = 60.0
delay = 1.0

[[realms]]
name = "realm1"
[[realms.roles]]
name = "user"
"""


@pytest.fixture
def h() -> Harness:
    return Harness(load_config_text(CONFIG, "<test>"))


def connect(h: Harness, peer: str = "tcp:10.0.0.1") -> int:
    h._next += 1
    conn = h._next
    h.inbox[conn] = []
    h.router.open(conn, TransportInfo("websocket", f"{peer}:{40000 + conn}",
                                      h.config.listeners[0], "json"))
    return conn


def attempt(h: Harness, authid: str, ticket: str, peer: str = "tcp:10.0.0.1") -> tuple[
        int, list[object]]:
    conn = connect(h, peer)
    out = h.send(conn, Hello("realm1", {"roles": ROLES, "authmethods": ["ticket"],
                                        "authid": authid}))
    if out and isinstance(out[0], Challenge):
        out = h.send(conn, Authenticate(ticket, {}))
    return conn, out


def test_failure_abort_is_delayed(h: Harness) -> None:
    conn, out = attempt(h, "alice", "wrong")
    assert out == [] and h.timers == [h.now + 1.0]
    assert conn not in h.closed
    h.advance(0.5)
    assert h.take(conn) == []
    h.advance(0.6)
    [abort] = h.take(conn)
    assert isinstance(abort, Abort) and abort.reason == "wamp.error.authentication_failed"
    assert conn in h.closed


def test_input_during_the_delay_is_ignored(h: Harness) -> None:
    conn, _ = attempt(h, "alice", "wrong")
    assert h.send(conn, Authenticate("again", {})) == []


def test_lost_during_the_delay(h: Harness) -> None:
    conn, _ = attempt(h, "alice", "wrong")
    h.lose(conn)
    h.advance(2)
    assert h.take(conn) == []


def test_too_many_failures_per_authid(h: Harness) -> None:
    for i in range(3):
        attempt(h, "alice", "wrong", peer=f"tcp:10.0.1.{i}")
    h.advance(2)
    conn, out = attempt(h, "alice", "secret123", peer="tcp:10.0.2.1")  # right ticket, refused
    assert out == []
    h.advance(2)
    [abort] = h.take(conn)
    assert isinstance(abort, Abort) and "too many failed" in abort.details["message"]
    _, out = attempt(h, "bob", "bobticket", peer="tcp:10.0.2.2")  # other authids are fine
    assert isinstance(out[0], Welcome)


def test_too_many_failures_per_peer(h: Harness) -> None:
    for authid in ("x", "y", "z"):
        attempt(h, authid, "wrong", peer="tcp:10.9.9.9")
    h.advance(2)
    conn, _ = attempt(h, "bob", "bobticket", peer="tcp:10.9.9.9")
    h.advance(2)
    [abort] = h.take(conn)
    assert isinstance(abort, Abort) and "too many failed" in abort.details["message"]
    _, out = attempt(h, "bob", "bobticket", peer="tcp:10.9.9.8")
    assert isinstance(out[0], Welcome)


def test_the_window_slides(h: Harness) -> None:
    for _ in range(3):
        attempt(h, "alice", "wrong")
    h.advance(61)
    _, out = attempt(h, "alice", "secret123")
    assert isinstance(out[0], Welcome)


def test_no_limits_table_no_delay() -> None:
    h = Harness(load_config_text(CONFIG.replace("[listeners.auth.limits]\nmax_failures = 3\n"
                                                "window = 60.0\ndelay = 1.0\n", ""), "<test>"))
    for _ in range(10):
        _, out = attempt(h, "alice", "wrong")
        assert isinstance(out[0], Abort)
    _, out = attempt(h, "alice", "secret123")
    assert isinstance(out[0], Welcome)


def test_failure_log_is_bounded_and_peer_hosts() -> None:
    log = FailureLog()
    limits = AuthLimits(max_failures=2, window=10, delay=0)
    log.record(["a"], limits, 0.0)
    log.record(["a"], limits, 1.0)
    assert log.refused(["a"], limits, 2.0) and not log.refused(["b"], limits, 2.0)
    assert not log.refused(["a"], limits, 10.5)
    assert len(log) == 1
    assert peer_host("tcp:127.0.0.1:5000") == "tcp:127.0.0.1"
    assert peer_host("tcp:::1:5000") == "tcp:::1"
    assert peer_host("unix:/tmp/s") == "unix:/tmp/s"
