"""The Twisted adapters over in-memory transports and a fake clock: no
sockets, no global reactor."""

from __future__ import annotations

import json
import struct

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from wamp_router.config.loader import load_config_text
from wamp_router.twisted.base import OPENING_TIMEOUT
from wamp_router.twisted.driver import Driver
from wamp_router.twisted.rawsocket import WampRawSocketFactory

CONFIG = """
[[listeners]]
transport = "rawsocket"
endpoint = "127.0.0.1:0"
heartbeat = { interval = 5.0, timeout = 2.0 }
[[realms]]
name = "realm1"
[[realms.roles]]
name = "anonymous"
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = ["call", "register", "publish", "subscribe"]
"""


def frame(msg: object) -> bytes:
    data = json.dumps(msg).encode()
    return struct.pack("!I", len(data)) + data


def connect() -> tuple[Clock, Driver, object, StringTransport]:
    config = load_config_text(CONFIG, "<test>")
    clock = Clock()
    driver = Driver(config, clock)
    factory = WampRawSocketFactory(driver, config.listeners[0], clock)
    proto = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
    transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 5555))
    proto.makeConnection(transport)
    return clock, driver, proto, transport


def test_peer_that_never_joins_is_dropped_after_the_opening_timeout() -> None:
    clock, driver, proto, transport = connect()
    proto.dataReceived(b"\x7f\xf1\x00\x00")  # RawSocket handshake, but no HELLO
    assert transport.value()[:1] == b"\x7f"
    clock.advance(OPENING_TIMEOUT - 1)
    assert not transport.disconnecting
    clock.advance(2)
    assert transport.disconnecting or getattr(transport, "disconnected", False)


def test_joined_peer_survives_the_opening_timeout_and_is_pinged_when_silent() -> None:
    clock, driver, proto, transport = connect()
    proto.dataReceived(b"\x7f\xf1\x00\x00" + frame(
        [1, "realm1", {"roles": {"caller": {}}}]))
    out = transport.value()
    assert out[4:8] != b"" and b'[2,' in out
    transport.clear()
    clock.advance(5)  # the HELLO counted as a sign of life
    assert transport.value() == b""
    clock.advance(5)  # silent for a whole interval: a PING goes out
    assert transport.value()[:1] == b"\x01"
    proto.dataReceived(b"\x02" + transport.value()[1:])  # PONG with the same payload
    clock.advance(2)
    clock.advance(OPENING_TIMEOUT)
    assert not transport.disconnecting


def test_silent_peer_is_dropped_after_ping_timeout() -> None:
    clock, driver, proto, transport = connect()
    proto.dataReceived(b"\x7f\xf1\x00\x00" + frame(
        [1, "realm1", {"roles": {"caller": {}}}]))
    clock.advance(5)
    clock.advance(5)
    assert transport.value()[-15:-11] == b"\x01\x00\x00\x0b"  # PING "wamp-router"
    clock.advance(2.1)
    assert transport.disconnecting or getattr(transport, "disconnected", False)
    proto.connectionLost(None)
    assert driver.connection_count() == 0
