"""Heartbeats: a silent peer is pinged and dropped when it does not answer;
a peer that answers pings (or talks) stays."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from .rawclient import RsPeer, WsPeer, is_closed
from .router_process import RouterProcess, run_router

CONFIG = """
[[listeners]]
transport = "websocket"
endpoint = "127.0.0.1:0"
heartbeat = { interval = 0.3, timeout = 0.3 }
[[listeners]]
transport = "rawsocket"
endpoint = "127.0.0.1:0"
heartbeat = { interval = 0.3, timeout = 0.3 }
[[realms]]
name = "realm1"
[[realms.roles]]
name = "anonymous"
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = ["call", "register", "publish", "subscribe"]
"""


@pytest.fixture(scope="module")
def router() -> Iterator[RouterProcess]:
    with run_router(CONFIG) as rp:
        yield rp


def test_silent_websocket_peer_is_pinged_then_dropped(router: RouterProcess) -> None:
    peer = WsPeer(router.ws_port)
    assert peer.hello()[0] == 2
    opcode, payload = peer.recv_frame()  # the router pings us after 0.3 s of silence
    assert opcode == 9
    assert is_closed(peer.sock, timeout=3)  # we never answer: dropped
    deadline = time.monotonic() + 3
    while not any("heartbeat_timeout" in line for line in router.lines):
        assert time.monotonic() < deadline, "no heartbeat_timeout log line"
        time.sleep(0.05)


def test_websocket_peer_answering_pings_stays(router: RouterProcess) -> None:
    peer = WsPeer(router.ws_port)
    assert peer.hello()[0] == 2
    deadline = time.monotonic() + 2.0
    pings = 0
    while time.monotonic() < deadline:
        opcode, payload = peer.recv_frame()
        if opcode == 9:
            pings += 1
            peer.send_frame(payload, opcode=10)
    assert pings >= 2
    peer.send([48, 1, {}, "com.example.alive"])
    assert peer.recv()[4] == "wamp.error.no_such_procedure"


def test_silent_rawsocket_peer_is_pinged_then_dropped(router: RouterProcess) -> None:
    peer = RsPeer(router.raw_port)
    assert peer.hello()[0] == 2
    ftype, _ = peer.recv_frame()
    assert ftype == 1  # PING
    assert is_closed(peer.sock, timeout=3)


def test_rawsocket_peer_answering_pings_stays(router: RouterProcess) -> None:
    peer = RsPeer(router.raw_port)
    assert peer.hello()[0] == 2
    deadline = time.monotonic() + 2.0
    pings = 0
    while time.monotonic() < deadline:
        ftype, payload = peer.recv_frame()
        if ftype == 1:
            pings += 1
            peer.send_raw(2, payload)
    assert pings >= 2
    peer.send([48, 1, {}, "com.example.alive"])
    assert peer.recv()[4] == "wamp.error.no_such_procedure"
