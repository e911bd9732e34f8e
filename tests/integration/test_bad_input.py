"""Bad input from a peer gets the spec's answer and only that peer is
affected; the router keeps serving everyone else."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from .rawclient import RsPeer, WsClosed, WsPeer, is_closed
from .router_process import RouterProcess, run_router

SMALL_LIMIT_CONFIG = """
[[listeners]]
transport = "websocket"
endpoint = "127.0.0.1:0"
max_message_size = 1024
[[listeners]]
transport = "rawsocket"
endpoint = "127.0.0.1:0"
max_message_size = 1024
serializers = ["json", "msgpack"]
[[listeners]]
transport = "rawsocket"
endpoint = "127.0.0.1:0"
max_message_size = 8192
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
def small() -> Iterator[RouterProcess]:
    with run_router(SMALL_LIMIT_CONFIG, expect_listeners=3) as rp:
        yield rp


def joined(router: RouterProcess) -> WsPeer:
    peer = WsPeer(router.ws_port)
    welcome = peer.hello()
    assert welcome[0] == 2, welcome
    return peer


def assert_alive(router: RouterProcess) -> None:
    """Another session can still join and call."""
    peer = joined(router)
    peer.send([48, 1, {}, "com.example.nothing"])
    assert peer.recv()[:5] == [8, 48, 1, {}, "wamp.error.no_such_procedure"]
    peer.close()


def assert_aborted(peer: WsPeer | RsPeer, reason: str = "wamp.error.protocol_violation") -> str:
    msg = peer.recv()
    assert msg[0] == 3 and msg[2] == reason, msg
    assert isinstance(msg[1].get("message"), str) and msg[1]["message"]
    assert is_closed(peer.sock)
    return str(msg[1]["message"])


@pytest.mark.parametrize("request_msg", [
    [48, 1, {}, "com..example"],
    [48, 1, {}, "com.exa mple"],
    [48, 1, {}, "com.#x"],
    [48, 1, {}, ""],
    [16, 1, {"acknowledge": True}, "com..x"],
    [32, 1, {}, "com. x"],
    [32, 1, {"match": "bogus"}, "com.x"],
    [64, 1, {}, "com..x"],
    [64, 1, {}, "wamp.reserved.proc"],
])
def test_invalid_uri_gets_error_and_session_continues(router: RouterProcess,
                                                      request_msg: list[Any]) -> None:
    peer = joined(router)
    peer.send(request_msg)
    reply = peer.recv()
    assert reply[:5] == [8, request_msg[0], 1, {}, "wamp.error.invalid_uri"]
    assert isinstance(reply[5][0], str)
    peer.send([48, 2, {}, "com.example.still.here"])
    assert peer.recv()[:5] == [8, 48, 2, {}, "wamp.error.no_such_procedure"]
    peer.close()


@pytest.mark.parametrize("request_msg", [
    [16, 1, {"acknowledge": 1}, "com.x"],
    [16, 1, {"exclude_me": "no"}, "com.x"],
    [16, 1, {"retain": "x"}, "com.x"],
    [32, 1, {"get_retained": 1}, "com.x"],
    [48, 1, {"receive_progress": "y"}, "com.x"],
    [48, 1, {"disclose_me": 3}, "com.x"],
    [64, 1, {"forward_timeout": "true"}, "com.x"],
])
def test_a_flag_option_that_is_not_a_boolean_is_refused(router: RouterProcess,
                                                        request_msg: list[Any]) -> None:
    peer = joined(router)
    peer.send(request_msg)
    reply = peer.recv()
    assert reply[:5] == [8, request_msg[0], 1, {}, "wamp.error.invalid_argument"]
    name = next(iter(request_msg[2]))
    assert reply[5][0].startswith(f"option '{name}' must be true or false")
    peer.send([48, 2, {}, "com.example.still.here"])
    assert peer.recv()[:5] == [8, 48, 2, {}, "wamp.error.no_such_procedure"]
    peer.close()


@pytest.mark.parametrize("payload,fragment", [
    (b"this is not json", "invalid JSON"),
    (b'{"a": 1}', "must be a non-empty list"),
    (b"[]", "must be a non-empty list"),
    (b'[999, 1, {}]', "unknown WAMP message type"),
    (b'["48", 1, {}, "a.b"]', "unknown WAMP message type"),
    (b'[48, 0, {}, "a.b"]', "Request must be an id"),
    (b'[48, 9007199254740993, {}, "a.b"]', "Request must be an id"),
    (b'[48, -5, {}, "a.b"]', "Request must be an id"),
    (b'[48, 1.5, {}, "a.b"]', "Request must be an id"),
    (b'[48, true, {}, "a.b"]', "Request must be an id"),
    (b'[48, 1, [], "a.b"]', "Options must be a dict"),
    (b'[48, 1, {}, 17]', "Procedure must be a string"),
    (b'[48, 1, {}, "a.b", {"x": 1}]', "Arguments must be a list"),
    (b'[48, 1, {}, "a.b", [], []]', "ArgumentsKw must be a dict"),
    (b'[48, 1, {}]', "expected at least"),
    (b'[2, 1, {}]', "not a message a client may send"),
    (b'[36, 1, 2, {}]', "not a message a client may send"),
    (b'[1, "realm1", {"roles": {"caller": {}}}]', "not allowed in session state established"),
    (b'[8, 48, 1, {}, "a.b"]', "may only answer INVOCATION"),
])
def test_malformed_message_aborts_only_that_session(router: RouterProcess, payload: bytes,
                                                    fragment: str) -> None:
    bystander = joined(router)
    peer = joined(router)
    peer.send_frame(payload)
    assert fragment in assert_aborted(peer)
    assert_alive(router)
    bystander.send([48, 1, {}, "com.example.nothing"])
    assert bystander.recv()[4] == "wamp.error.no_such_procedure"


@pytest.mark.parametrize("first", [
    [48, 1, {}, "com.example.proc"],
    [5, "signature", {}],
    [6, {}, "wamp.close.close_realm"],
    [1, "realm1", {}],
    [1, "realm1", {"roles": {}}],
    [1, "realm1", {"roles": {"caller": {}, "emperor": {}}}],
    [1, "realm1", {"roles": {"caller": {}}, "authmethods": "anonymous"}],
])
def test_bad_handshake_aborts(router: RouterProcess, first: list[Any]) -> None:
    peer = WsPeer(router.ws_port)
    peer.send(first)
    assert_aborted(peer)
    assert_alive(router)


def test_unknown_realm(router: RouterProcess) -> None:
    peer = WsPeer(router.ws_port)
    assert peer.hello("no.such.realm")[:3] == [3, {"message": "no realm 'no.such.realm' on this router"}, "wamp.error.no_such_realm"]


def test_no_acceptable_auth_method(router: RouterProcess) -> None:
    peer = WsPeer(router.ws_port)
    abort = peer.hello("realm2")  # anonymous is not allowed on realm2
    assert abort[0] == 3 and abort[2] == "wamp.error.no_auth_method"
    assert "ticket" in abort[1]["message"] and "wampcra" in abort[1]["message"]


def test_wrong_ticket_and_unknown_principal(router: RouterProcess) -> None:
    for authid, ticket in [("alice", "wrong"), ("mallory", "secret123")]:
        peer = WsPeer(router.ws_port)
        challenge = peer.hello("realm2", authmethods=["ticket"], authid=authid)
        assert challenge == [4, "ticket", {}]
        peer.send([5, ticket, {}])
        assert_aborted(peer, "wamp.error.authentication_failed")


def test_goodbye_handshake_then_rejoin_on_same_transport(router: RouterProcess) -> None:
    peer = joined(router)
    peer.send([6, {}, "wamp.close.close_realm"])
    assert peer.recv() == [6, {}, "wamp.close.goodbye_and_out"]
    welcome = peer.hello()
    assert welcome[0] == 2
    peer.send([48, 1, {}, "com.example.x"])
    assert peer.recv()[4] == "wamp.error.no_such_procedure"


def test_websocket_rejects_unsupported_subprotocol(router: RouterProcess) -> None:
    peer = WsPeer(router.ws_port, protocol="wamp.2.ubjson")
    assert peer.status == 400
    assert b"wamp.2.json" in peer._buf or b"subprotocol" in peer.response + peer._buf
    peer = WsPeer(router.ws_port, protocol=None)
    assert peer.status == 400


def test_websocket_wrong_path(router: RouterProcess) -> None:
    assert WsPeer(router.ws_port, path="/nope").status == 404


@pytest.mark.parametrize("protocol", ["wamp.2.json", "wamp.2.msgpack", "wamp.2.cbor"])
def test_websocket_each_subprotocol_raw(router: RouterProcess, protocol: str) -> None:
    peer = WsPeer(router.ws_port, protocol=protocol)
    assert peer.status == 101
    assert f"Sec-WebSocket-Protocol: {protocol}".lower().encode() in peer.response.lower()
    assert peer.hello()[0] == 2


def test_websocket_binary_payload_in_json(router: RouterProcess) -> None:
    """The JSON binary convention: \\u0000 + base64 arrives as bytes elsewhere."""
    sub = WsPeer(router.ws_port, protocol="wamp.2.msgpack")
    sub.hello()
    sub.send([32, 1, {}, "com.example.bin"])
    subscribed = sub.recv()
    pub = joined(router)
    pub.send_frame(json.dumps([16, 1, {"acknowledge": True}, "com.example.bin",
                               ["\u0000AAH/"]]).encode())
    assert pub.recv()[0] == 17
    event = sub.recv()
    assert event[0] == 36 and event[1] == subscribed[2] and event[4] == [b"\x00\x01\xff"]


def test_websocket_oversize_message_closes_1009(small: RouterProcess) -> None:
    peer = WsPeer(small.ws_port)
    assert peer.hello()[0] == 2
    peer.send_frame(json.dumps([16, 1, {}, "com.example.big", ["x" * 2000]]).encode())
    with pytest.raises(WsClosed) as closed:
        peer.recv()
    assert closed.value.code == 1009
    assert_alive(small)


def test_websocket_protocol_errors(small: RouterProcess) -> None:
    # an unmasked client frame is a protocol error (1002)
    peer = WsPeer(small.ws_port)
    peer.sock.sendall(b"\x81\x02[]")
    with pytest.raises(WsClosed) as closed:
        peer.recv()
    assert closed.value.code == 1002
    # invalid UTF-8 in a text frame (1007)
    peer = WsPeer(small.ws_port)
    peer.send_frame(b"[1, \"\xff\xfe\"]")
    with pytest.raises(WsClosed) as closed:
        peer.recv()
    assert closed.value.code == 1007
    assert_alive(small)


def test_websocket_ping_is_answered(small: RouterProcess) -> None:
    peer = WsPeer(small.ws_port)
    peer.send_frame(b"hb", opcode=9)
    assert peer.recv_frame() == (10, b"hb")


def test_rawsocket_handshake_errors(small: RouterProcess) -> None:
    assert RsPeer(small.raw_port, serializer=3).reply == b"\x7f\x10\x00\x00"  # cbor not enabled here
    assert RsPeer(small.raw_port, serializer=4).reply == b"\x7f\x10\x00\x00"  # ubjson unsupported
    assert RsPeer(small.raw_port, handshake=b"\x7f\xf1\x00\x01").reply == b"\x7f\x30\x00\x00"
    bad = RsPeer(small.raw_port, handshake=b"GET / HTTP/1.1\r\n\r\n")
    assert is_closed(bad.sock)
    assert_alive(small)


def test_rawsocket_accepts_and_announces_limit(small: RouterProcess) -> None:
    peer = RsPeer(small.raw_port, serializer=2, length_code=3)
    # the router accepts 1024 bytes = 2**(9+1): LENGTH code 1, serializer echoed
    assert peer.reply == bytes([0x7F, (1 << 4) | 2, 0, 0])
    assert peer.hello()[0] == 2


def test_rawsocket_ping_oversize_and_garbage(small: RouterProcess) -> None:
    peer = RsPeer(small.raw_port)
    peer.send_raw(1, b"ping!")
    assert peer.recv_frame() == (2, b"ping!")
    assert peer.hello()[0] == 2
    peer.send_raw(0, b"x" * 2000)  # over the 1024-byte limit: the connection fails
    assert is_closed(peer.sock)
    peer = RsPeer(small.raw_port)
    assert peer.hello()[0] == 2
    peer.send_raw(0, b"\xff\x00 not json")
    assert_aborted(peer)
    peer = RsPeer(small.raw_port)
    peer.send_raw(5, b"reserved frame type")
    assert is_closed(peer.sock)
    assert_alive(small)


def large_port(router: RouterProcess) -> int:
    return int(router.raw_addrs[1].rsplit(":", 1)[1])


def test_rawsocket_result_larger_than_caller_accepts(small: RouterProcess) -> None:
    """A RESULT the caller could not receive becomes payload_size_exceeded."""
    callee = RsPeer(large_port(small), length_code=4)
    assert callee.hello()[0] == 2
    callee.send([64, 1, {}, "com.example.big"])
    assert callee.recv()[0] == 65
    caller = RsPeer(large_port(small), length_code=1)  # accepts 1024 bytes
    assert caller.hello()[0] == 2
    caller.send([48, 7, {}, "com.example.big"])
    invocation = callee.recv()
    callee.send([70, invocation[1], {}, ["y" * 2000]])
    error = caller.recv()
    assert error[:5] == [8, 48, 7, {}, "wamp.error.payload_size_exceeded"]
    # and an INVOCATION the callee could not receive fails the call the same way
    caller.send([64, 8, {}, "com.example.small_callee"])
    assert caller.recv()[0] == 65
    callee.send([48, 9, {}, "com.example.small_callee", ["z" * 2000]])
    error = callee.recv()
    assert error[:5] == [8, 48, 9, {}, "wamp.error.payload_size_exceeded"]
    caller.send([48, 10, {}, "com.example.missing"])
    assert caller.recv()[4] == "wamp.error.no_such_procedure"  # nothing was delivered


def test_welcome_larger_than_client_accepts_closes_instead_of_hanging(
        small: RouterProcess) -> None:
    tiny = RsPeer(large_port(small), length_code=0)  # 512 bytes: less than our WELCOME
    tiny.send([1, "realm1", {"roles": {"caller": {}}}])
    assert is_closed(tiny.sock)


def test_payload_the_callee_cannot_decode_fails_the_call(router: RouterProcess) -> None:
    """A CBOR caller sends a value JSON cannot carry: the caller gets an ERROR."""
    import cbor2

    callee = joined(router)  # JSON
    callee.send([64, 1, {}, "com.example.json_callee"])
    assert callee.recv()[0] == 65
    caller = RsPeer(router.raw_port, serializer=3)
    assert caller.hello()[0] == 2
    caller.send([48, 5, {}, "com.example.json_callee", [cbor2.CBORTag(4000, "x")]])
    error = caller.recv()
    assert error[:5] == [8, 48, 5, {}, "wamp.error.invalid_argument"]
    # a Uint8Array sent as a CBOR typed array (tag 64) arrives as bytes
    caller.send([48, 6, {}, "com.example.json_callee", [cbor2.CBORTag(64, b"\x01\x02")]])
    invocation = callee.recv()
    assert invocation[4] == ["\x00AQI="]
