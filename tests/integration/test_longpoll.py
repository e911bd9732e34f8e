"""HTTP long-poll transport and one port for WebSocket, long-poll and
RawSocket, against a real router process."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest

from .rawclient import RsPeer, WsPeer
from .router_process import RouterProcess, run_router

CONFIG = """
[[listeners]]
transport = "websocket"
endpoint = "127.0.0.1:0"
rawsocket = true
longpoll = { path = "/lp", request_timeout = 0.5, session_timeout = 1.0, max_queue = 50 }
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
    with run_router(CONFIG, expect_listeners=1) as rp:
        yield rp


def post(url: str, body: bytes = b"", timeout: float = 5) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


class LongPollPeer:
    def __init__(self, router: RouterProcess, protocol: str = "wamp.2.json") -> None:
        self.base = f"http://127.0.0.1:{router.ws_port}/lp"
        status, body = post(self.base + "/open", json.dumps({"protocols": [protocol]}).encode())
        assert status == 200, body
        info = json.loads(body)
        assert info["protocol"] == protocol
        self.url = f"{self.base}/{info['transport']}"
        self.packb = json.dumps if protocol == "wamp.2.json" else msgpack.packb
        self.unpackb = json.loads if protocol == "wamp.2.json" else msgpack.unpackb

    def send(self, msg: list[Any]) -> None:
        data = self.packb(msg)
        status, body = post(self.url + "/send", data if isinstance(data, bytes) else data.encode())
        assert status == 204, (status, body)

    def recv(self, timeout: float = 5) -> list[Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, body = post(self.url + "/receive")
            if status == 200:
                return self.unpackb(body)  # type: ignore[no-any-return]
            assert status == 204, (status, body)
        raise AssertionError("no message")


@pytest.mark.parametrize("protocol", ["wamp.2.json", "wamp.2.msgpack"])
def test_longpoll_session_talks_to_websocket_and_rawsocket(router: RouterProcess,
                                                           protocol: str) -> None:
    lp = LongPollPeer(router, protocol)
    lp.send([1, "realm1", {"roles": {"caller": {}, "subscriber": {}, "publisher": {}}}])
    welcome = lp.recv()
    assert welcome[0] == 2
    ws = WsPeer(router.ws_port)  # WebSocket on the same port
    assert ws.hello()[0] == 2
    raw = RsPeer(router.ws_port)  # and RawSocket, recognised by its first octet
    assert raw.hello()[0] == 2
    ws.send([64, 1, {}, "com.example.double"])
    assert ws.recv()[0] == 65
    raw.send([32, 1, {}, "com.example.news"])
    sub = raw.recv()
    lp.send([48, 7, {}, "com.example.double", [21]])
    invocation = ws.recv()
    ws.send([70, invocation[1], {}, [42]])
    assert lp.recv() == [50, 7, {}, [42]]
    lp.send([16, 8, {"acknowledge": True}, "com.example.news", ["hello"]])
    assert lp.recv()[0] == 17
    event = raw.recv()
    assert event[0] == 36 and event[1] == sub[2] and event[4] == ["hello"]
    lp.send([32, 9, {}, "com.example.back"])
    assert lp.recv()[0] == 33
    ws.send([16, 2, {}, "com.example.back", [1, 2]])
    assert lp.recv()[4] == [1, 2]
    lp.send([6, {}, "wamp.close.close_realm"])
    assert lp.recv()[2] == "wamp.close.goodbye_and_out"
    assert post(lp.url + "/close")[0] == 204
    assert post(lp.url + "/receive")[0] == 404


def test_parked_receive_is_answered_when_a_message_arrives(router: RouterProcess) -> None:
    lp = LongPollPeer(router)
    lp.send([1, "realm1", {"roles": {"subscriber": {}}}])
    assert lp.recv()[0] == 2
    lp.send([32, 1, {}, "com.example.later"])
    assert lp.recv()[0] == 33
    got: list[Any] = []
    poller = threading.Thread(target=lambda: got.append(post(lp.url + "/receive")))
    poller.start()
    time.sleep(0.2)  # the receive request is parked now
    ws = WsPeer(router.ws_port)
    assert ws.hello()[0] == 2
    ws.send([16, 1, {}, "com.example.later", ["now"]])
    poller.join(5)
    status, body = got[0]
    assert status == 200 and json.loads(body)[4] == ["now"]


def test_idle_poll_gets_204_and_silent_sessions_expire(router: RouterProcess) -> None:
    lp = LongPollPeer(router)
    lp.send([1, "realm1", {"roles": {"caller": {}}}])
    assert lp.recv()[0] == 2
    start = time.monotonic()
    assert post(lp.url + "/receive")[0] == 204  # after request_timeout
    assert 0.3 < time.monotonic() - start < 3
    time.sleep(2.5)  # the client stopped polling: the session is closed
    assert post(lp.url + "/receive")[0] == 404
    router.wait_for_line("reason=longpoll_session_timeout")


def test_bad_longpoll_requests(router: RouterProcess) -> None:
    base = f"http://127.0.0.1:{router.ws_port}/lp"
    status, body = post(base + "/open", b'{"protocols": ["wamp.2.ubjson"]}')
    assert status == 400 and b"wamp.2.json" in body
    assert post(base + "/open", b"not json")[0] == 400
    assert post(base + "/nosuch/send", b"[]")[0] == 404
    lp = LongPollPeer(router)
    lp.send([1, "realm1", {"roles": {"caller": {}}}])
    assert lp.recv()[0] == 2
    lp.send([999])  # a protocol violation: ABORT, then the transport is gone
    abort = lp.recv()
    assert abort[0] == 3 and abort[2] == "wamp.error.protocol_violation"
    time.sleep(0.2)
    assert post(lp.url + "/send", b"[]")[0] in (404, 410)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(base + "/open", timeout=5)  # GET
    assert err.value.code == 405
