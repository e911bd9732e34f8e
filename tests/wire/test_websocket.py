"""Tests for wamp_router.wire.websocket (pure: no sockets)."""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wamp_router.wire import websocket as ws
from wamp_router.wire.websocket import (
    Accepted,
    CloseReceived,
    ConnectionLost,
    HttpError,
    InvalidStateError,
    Message,
    PongReceived,
    ProtocolError,
    Rejected,
    WebSocketServer,
    WsState,
    accept_key,
    frame_message,
    parse_request_head,
)

SUBPROTOCOLS = ("wamp.2.json", "wamp.2.msgpack", "wamp.2.cbor")
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
KEY_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455, section 1.3
MASK = b"\x37\xfa\x21\x3d"

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA

# ---------------------------------------------------------------- client-side helpers


def cframe(
    payload: bytes,
    opcode: int = OP_TEXT,
    *,
    fin: bool = True,
    mask: bytes | None = MASK,
    rsv: int = 0,
    length: int | None = None,
) -> bytes:
    """A client frame (masked unless mask is None); ``length`` overrides the header."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    mbit = 0x80 if mask is not None else 0
    if n < 126:
        head = bytes((b0, mbit | n))
    elif n < 0x10000:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if mask is None:
        return head + payload
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


@dataclass(frozen=True)
class SFrame:
    fin: bool
    opcode: int
    payload: bytes


def parse_server_frames(data: bytes) -> list[SFrame]:
    """Client-side parser for server frames (must be unmasked, RSV 0)."""
    frames = []
    pos = 0
    while pos < len(data):
        b0, b1 = data[pos], data[pos + 1]
        assert b0 & 0x70 == 0, "server frame with RSV bits"
        assert b1 & 0x80 == 0, "server frame is masked"
        n = b1 & 0x7F
        pos += 2
        if n == 126:
            (n,) = struct.unpack_from("!H", data, pos)
            assert n >= 126, "non-minimal length encoding"
            pos += 2
        elif n == 127:
            (n,) = struct.unpack_from("!Q", data, pos)
            assert n >= 0x10000, "non-minimal length encoding"
            pos += 8
        assert pos + n <= len(data), "truncated server frame"
        frames.append(SFrame(bool(b0 & 0x80), b0 & 0x0F, data[pos : pos + n]))
        pos += n
    return frames


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


def request(
    path: str = "/ws",
    *,
    method: str = "GET",
    version: str = "HTTP/1.1",
    headers: dict[str, str] | None = None,
    drop: tuple[str, ...] = (),
) -> bytes:
    base = {
        "Host": "localhost:8080",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": KEY,
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Protocol": "wamp.2.json",
    }
    base.update(headers or {})
    lines = [f"{method} {path} {version}"]
    lines += [f"{k}: {v}" for k, v in base.items() if k not in drop]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def server(path: str | None = "/ws", max_message_size: int = 1 << 20) -> WebSocketServer:
    return WebSocketServer(path=path, subprotocols=SUBPROTOCOLS, max_message_size=max_message_size)


def open_server(max_message_size: int = 1 << 20) -> WebSocketServer:
    s = server(max_message_size=max_message_size)
    events = s.receive_data(request())
    assert isinstance(events[0], Accepted)
    s.data_to_send()
    return s


def sent_frames(s: WebSocketServer) -> list[SFrame]:
    return parse_server_frames(s.data_to_send())


def reject(raw: bytes, path: str | None = "/ws") -> tuple[Rejected, bytes, WebSocketServer]:
    s = server(path)
    events = s.receive_data(raw)
    assert len(events) == 1
    assert isinstance(events[0], Rejected)
    assert s.state is WsState.CLOSED
    return events[0], s.data_to_send(), s


def split_response(raw: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(": ")
        headers[name.lower()] = value
    return lines[0], headers, body


def assert_protocol_error(s: WebSocketServer, events: list[ws.WsEvent], code: int) -> None:
    assert isinstance(events[-1], ProtocolError), events
    assert events[-1].code == code
    assert s.state is WsState.CLOSED
    frames = sent_frames(s)
    assert len(frames) == 1
    assert frames[0].opcode == OP_CLOSE and frames[0].fin
    assert struct.unpack("!H", frames[0].payload[:2])[0] == code
    frames[0].payload[2:].decode("utf-8")


# ---------------------------------------------------------------- handshake


def test_accept_key_rfc_example() -> None:
    assert accept_key(KEY) == KEY_ACCEPT


def test_handshake_accepted_exact_response() -> None:
    s = server()
    events = s.receive_data(request())
    assert len(events) == 1
    event = events[0]
    assert isinstance(event, Accepted)
    assert event.subprotocol == "wamp.2.json"
    assert event.path == "/ws"
    assert event.headers["host"] == "localhost:8080"
    assert event.headers["sec-websocket-key"] == KEY
    assert s.state is WsState.OPEN
    assert s.subprotocol == "wamp.2.json"
    assert s.data_to_send() == (
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        b"Sec-WebSocket-Protocol: wamp.2.json\r\n"
        b"\r\n"
    )
    assert s.data_to_send() == b""


def test_handshake_header_names_and_values_case_insensitive() -> None:
    raw = (
        b"GET /ws HTTP/1.1\r\nhOsT: x\r\nUPGRADE: WebSocket\r\nconnection: keep-alive, UPGRADE\r\n"
        b"sec-websocket-key: " + KEY.encode() + b"\r\nSEC-WEBSOCKET-VERSION: 13\r\n"
        b"Sec-Websocket-Protocol: wamp.2.cbor\r\n\r\n"
    )
    s = server()
    events = s.receive_data(raw)
    assert events[0] == Accepted("wamp.2.cbor", "/ws", events[0].headers)  # type: ignore[union-attr]
    assert s.subprotocol == "wamp.2.cbor"


def test_subprotocol_client_order_wins() -> None:
    s = server()
    events = s.receive_data(
        request(headers={"Sec-WebSocket-Protocol": "foo, wamp.2.cbor, wamp.2.json"})
    )
    assert isinstance(events[0], Accepted)
    assert events[0].subprotocol == "wamp.2.cbor"
    assert b"Sec-WebSocket-Protocol: wamp.2.cbor\r\n" in s.data_to_send()


def test_subprotocol_repeated_header_lines() -> None:
    raw = request(drop=("Sec-WebSocket-Protocol",)).replace(
        b"\r\n\r\n",
        b"\r\nSec-WebSocket-Protocol: bar\r\nSec-WebSocket-Protocol: wamp.2.msgpack\r\n\r\n",
    )
    events = server().receive_data(raw)
    assert isinstance(events[0], Accepted)
    assert events[0].subprotocol == "wamp.2.msgpack"
    assert events[0].headers["sec-websocket-protocol"] == "bar, wamp.2.msgpack"


def test_subprotocol_unsupported_rejected_400() -> None:
    event, raw, _ = reject(request(headers={"Sec-WebSocket-Protocol": "wamp.2.ubjson, mqtt"}))
    expected = (
        "unsupported WebSocket subprotocol: offered [wamp.2.ubjson, mqtt], "
        "supported: wamp.2.json, wamp.2.msgpack, wamp.2.cbor"
    )
    assert event == Rejected(400, expected)
    status, headers, body = split_response(raw)
    assert status == "HTTP/1.1 400 Bad Request"
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["content-length"] == str(len(body))
    assert headers["connection"] == "close"
    assert body == (expected + "\n").encode()


def test_subprotocol_none_offered_rejected_400() -> None:
    event, raw, _ = reject(request(drop=("Sec-WebSocket-Protocol",)))
    assert event.status == 400
    assert event.reason.startswith("unsupported WebSocket subprotocol: offered []")
    assert raw.startswith(b"HTTP/1.1 400 Bad Request\r\n")


def test_extensions_are_ignored() -> None:
    s = server()
    events = s.receive_data(
        request(headers={"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits"})
    )
    assert isinstance(events[0], Accepted)
    assert b"Extensions" not in s.data_to_send()
    # and RSV1 (compression) is then a protocol error
    assert_protocol_error(s, s.receive_data(cframe(b"x", rsv=4)), 1002)


def test_path_mismatch_404() -> None:
    event, raw, _ = reject(request("/other"))
    assert event.status == 404
    assert "/other" in event.reason
    assert raw.startswith(b"HTTP/1.1 404 Not Found\r\n")


def test_path_query_string_ignored() -> None:
    events = server().receive_data(request("/ws?ticket=abc&x=1"))
    assert isinstance(events[0], Accepted)
    assert events[0].path == "/ws"


def test_path_none_accepts_any_path() -> None:
    events = server(path=None).receive_data(request("/anything/else"))
    assert isinstance(events[0], Accepted)
    assert events[0].path == "/anything/else"


def test_method_not_get_405() -> None:
    event, raw, _ = reject(request(method="POST"))
    assert event.status == 405
    status, headers, _ = split_response(raw)
    assert status == "HTTP/1.1 405 Method Not Allowed"
    assert headers["allow"] == "GET"


def test_http_version_not_11_400() -> None:
    event, raw, _ = reject(request(version="HTTP/1.0"))
    assert event.status == 400
    assert "HTTP/1.0" in event.reason


def test_not_an_upgrade_426() -> None:
    raw = b"GET /ws HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n"
    event, response, _ = reject(raw)
    assert event.status == 426
    status, headers, body = split_response(response)
    assert status == "HTTP/1.1 426 Upgrade Required"
    assert headers["upgrade"] == "websocket"
    assert body == (event.reason + "\n").encode()


def test_upgrade_not_websocket_400() -> None:
    event, _, _ = reject(request(headers={"Upgrade": "h2c"}))
    assert event.status == 400
    assert "Upgrade" in event.reason


def test_connection_without_upgrade_token_400() -> None:
    event, _, _ = reject(request(headers={"Connection": "keep-alive"}))
    assert event.status == 400
    assert "Connection" in event.reason
    event, _, _ = reject(request(headers={"Connection": "upgrades"}))
    assert event.status == 400


@pytest.mark.parametrize("version", ["8", "12", "14", ""])
def test_websocket_version_not_13_426(version: str) -> None:
    event, raw, _ = reject(request(headers={"Sec-WebSocket-Version": version}))
    assert event.status == 426
    status, headers, _ = split_response(raw)
    assert status == "HTTP/1.1 426 Upgrade Required"
    assert headers["sec-websocket-version"] == "13"


def test_websocket_version_missing_426() -> None:
    event, raw, _ = reject(request(drop=("Sec-WebSocket-Version",)))
    assert event.status == 426
    assert b"Sec-WebSocket-Version: 13\r\n" in raw


@pytest.mark.parametrize(
    "key",
    [
        "",
        "not base64!!",
        base64.b64encode(b"x" * 15).decode(),
        base64.b64encode(b"x" * 17).decode(),
        KEY[:-2],
        "dGhlIHNhbXBsZSBub25jZQ",  # missing padding
    ],
)
def test_invalid_key_400(key: str) -> None:
    event, _, _ = reject(request(headers={"Sec-WebSocket-Key": key}))
    assert event.status == 400
    assert "Sec-WebSocket-Key" in event.reason


def test_missing_key_400() -> None:
    event, _, _ = reject(request(drop=("Sec-WebSocket-Key",)))
    assert event == Rejected(400, "missing Sec-WebSocket-Key")


def test_head_too_large_431_without_terminator() -> None:
    s = server()
    assert s.receive_data(b"GET /ws HTTP/1.1\r\nX-Pad: " + b"a" * 8000) == []
    events = s.receive_data(b"a" * 9000)
    assert len(events) == 1 and isinstance(events[0], Rejected)
    assert events[0].status == 431
    assert s.data_to_send().startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert s.state is WsState.CLOSED


def test_head_size_limit_is_16_kib() -> None:
    base = request()
    pad_line = b"X-Pad: \r\n"
    fill = ws.MAX_HEAD_SIZE - len(base) - len(pad_line)
    exact = base[:-2] + b"X-Pad: " + b"p" * fill + b"\r\n\r\n"
    assert len(exact) == ws.MAX_HEAD_SIZE
    assert isinstance(server().receive_data(exact)[0], Accepted)
    too_big = base[:-2] + b"X-Pad: " + b"p" * (fill + 1) + b"\r\n\r\n"
    event, _, _ = reject(too_big)
    assert event.status == 431


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /ws\r\n\r\n",
        b"GET  /ws HTTP/1.1\r\n\r\n",
        b"GET /ws FTP/1.1\r\n\r\n",
        b"\r\n\r\n",
        b"GET /ws HTTP/1.1\r\nno colon here\r\n\r\n",
        b"GET /ws HTTP/1.1\r\n: empty name\r\n\r\n",
        b"GET /ws HTTP/1.1\r\nBad Name: x\r\n\r\n",
        b"GET /ws HTTP/1.1\r\nHost: a\r\n folded: continuation\r\n\r\n",
    ],
)
def test_malformed_head_400(raw: bytes) -> None:
    event, response, _ = reject(raw)
    assert event.status == 400
    assert response.startswith(b"HTTP/1.1 400 Bad Request\r\n")


def test_handshake_split_at_every_byte() -> None:
    raw = request()
    for cut in range(1, len(raw)):
        s = server()
        assert s.receive_data(raw[:cut]) == []
        events = s.receive_data(raw[cut:])
        assert len(events) == 1 and isinstance(events[0], Accepted), cut
    s = server()
    events = []
    for i in range(len(raw)):
        events += s.receive_data(raw[i : i + 1])
    assert len(events) == 1 and isinstance(events[0], Accepted)
    assert parse_server_frames(b"") == []


def test_frames_in_same_chunk_as_head_are_processed() -> None:
    s = server()
    tail = cframe(b"hello") + cframe(b"\x01\x02", OP_BINARY) + cframe(b"x", OP_PING)
    events = s.receive_data(request() + tail)
    assert isinstance(events[0], Accepted)
    assert events[1:] == [Message(b"hello", False), Message(b"\x01\x02", True)]
    out = s.data_to_send()
    assert out.startswith(b"HTTP/1.1 101 ")
    assert parse_server_frames(out.partition(b"\r\n\r\n")[2]) == [SFrame(True, OP_PONG, b"x")]


def test_large_frame_in_same_chunk_as_head() -> None:
    s = server()
    payload = b"z" * 100_000  # the chunk is far larger than the 16 KiB head limit
    events = s.receive_data(request() + cframe(payload, OP_BINARY))
    assert isinstance(events[0], Accepted)
    assert events[1:] == [Message(payload, True)]


def test_partial_frame_in_same_chunk_as_head() -> None:
    s = server()
    frame = cframe(b"x" * 300, OP_BINARY)
    events = s.receive_data(request() + frame[:3])
    assert len(events) == 1
    assert s.receive_data(frame[3:]) == [Message(b"x" * 300, True)]


def test_data_after_rejection_ignored() -> None:
    _, _, s = reject(request("/nope"))
    assert s.receive_data(cframe(b"x")) == []
    assert s.data_to_send() == b""


def test_eof_during_handshake() -> None:
    s = server()
    s.receive_data(b"GET /ws HT")
    assert s.receive_data(b"") == [ConnectionLost()]
    assert s.state is WsState.CLOSED
    assert s.data_to_send() == b""


def test_parse_request_head() -> None:
    assert parse_request_head(b"GET / HTTP/1.1\r\nHost: x\r\n") is None
    data = b"POST /lp/abc?x=1 HTTP/1.1\r\nHost:  a \r\nX-A: 1\r\nx-a: 2\r\n\r\nBODY"
    req = parse_request_head(data)
    assert req is not None
    assert (req.method, req.target, req.version, req.path) == (
        "POST",
        "/lp/abc?x=1",
        "HTTP/1.1",
        "/lp/abc",
    )
    assert req.headers == {"host": "a", "x-a": "1, 2"}
    assert data[req.head_length :] == b"BODY"
    with pytest.raises(HttpError) as info:
        parse_request_head(b"GET / HTTP/1.1\r\n" + b"a" * 100, max_size=64)
    assert info.value.status == 431


# ---------------------------------------------------------------- data frames


def test_text_and_binary_messages() -> None:
    s = open_server()
    assert s.receive_data(cframe(b"hello")) == [Message(b"hello", False)]
    assert s.receive_data(cframe(b"\x00\xff", OP_BINARY)) == [Message(b"\x00\xff", True)]
    assert s.receive_data(cframe(b"")) == [Message(b"", False)]
    assert s.receive_data(cframe("h\u00e9\u20ac\U0001f600".encode())) == [
        Message("h\u00e9\u20ac\U0001f600".encode(), False)
    ]
    assert s.data_to_send() == b""


@pytest.mark.parametrize("size", [125, 126, 127, 65535, 65536, 70000])
def test_extended_lengths(size: int) -> None:
    s = open_server()
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert s.receive_data(cframe(payload, OP_BINARY)) == [Message(payload, True)]


def test_non_minimal_length_encoding_accepted() -> None:
    s = open_server()
    frame = struct.pack("!BBH", 0x82, 0x80 | 126, 3) + MASK + cframe(b"abc", OP_BINARY)[6:]
    assert s.receive_data(frame) == [Message(b"abc", True)]


def test_many_frames_in_one_chunk() -> None:
    s = open_server()
    payloads = [str(i).encode() * (i % 200) for i in range(300)]
    chunk = b"".join(cframe(p, OP_BINARY if i % 2 else OP_TEXT) for i, p in enumerate(payloads))
    events = s.receive_data(chunk)
    assert events == [Message(p, bool(i % 2)) for i, p in enumerate(payloads)]


def test_frames_split_at_every_byte() -> None:
    stream = (
        cframe(b"a" * 10)
        + cframe(b"b" * 300, OP_BINARY)
        + cframe(b"frag1-", fin=False)
        + cframe(b"ping", OP_PING)
        + cframe(b"frag2", OP_CONT)
        + cframe(b"c" * 70000, OP_BINARY)
    )
    expected = [
        Message(b"a" * 10, False),
        Message(b"b" * 300, True),
        Message(b"frag1-frag2", False),
        Message(b"c" * 70000, True),
    ]
    for cut in list(range(1, 400)) + [len(stream) - 5, len(stream) - 1]:
        s = open_server()
        events = s.receive_data(stream[:cut]) + s.receive_data(stream[cut:])
        assert events == expected, cut
        assert sent_frames(s) == [SFrame(True, OP_PONG, b"ping")]


def test_frames_fed_one_byte_at_a_time() -> None:
    stream = cframe(b"x" * 200) + cframe(b"yz", OP_BINARY, fin=False) + cframe(b"w", OP_CONT)
    s = open_server()
    events = []
    for i in range(len(stream)):
        events += s.receive_data(stream[i : i + 1])
    assert events == [Message(b"x" * 200, False), Message(b"yzw", True)]


def test_fragmented_message_reassembled() -> None:
    s = open_server()
    assert s.receive_data(cframe(b"he", OP_BINARY, fin=False)) == []
    assert s.receive_data(cframe(b"ll", OP_CONT, fin=False)) == []
    assert s.receive_data(cframe(b"", OP_CONT, fin=False)) == []
    assert s.receive_data(cframe(b"o", OP_CONT)) == [Message(b"hello", True)]
    # the next message is independent
    assert s.receive_data(cframe(b"next")) == [Message(b"next", False)]


def test_control_frames_between_fragments() -> None:
    s = open_server()
    chunk = (
        cframe(b"ab", fin=False)
        + cframe(b"p1", OP_PING)
        + cframe(b"cd", OP_CONT, fin=False)
        + cframe(b"p2", OP_PONG)
        + cframe(b"ef", OP_CONT)
    )
    assert s.receive_data(chunk) == [PongReceived(b"p2"), Message(b"abcdef", False)]
    assert sent_frames(s) == [SFrame(True, OP_PONG, b"p1")]


def test_close_between_fragments() -> None:
    s = open_server()
    events = s.receive_data(cframe(b"ab", fin=False) + cframe(close_payload(1001), OP_CLOSE))
    assert events == [CloseReceived(1001, "")]


def test_unmasked_frame_1002() -> None:
    s = open_server()
    assert_protocol_error(s, s.receive_data(cframe(b"hello", mask=None)), 1002)


def test_unmasked_frame_after_good_frames_in_same_chunk() -> None:
    s = open_server()
    events = s.receive_data(cframe(b"ok") + cframe(b"bad", mask=None) + cframe(b"never"))
    assert events[0] == Message(b"ok", False)
    assert len(events) == 2
    assert_protocol_error(s, events, 1002)


@pytest.mark.parametrize("rsv", [1, 2, 4, 7])
def test_reserved_bits_1002(rsv: int) -> None:
    s = open_server()
    assert_protocol_error(s, s.receive_data(cframe(b"x", rsv=rsv)), 1002)


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_unknown_opcode_1002(opcode: int) -> None:
    s = open_server()
    assert_protocol_error(s, s.receive_data(cframe(b"x", opcode)), 1002)


@pytest.mark.parametrize("opcode", [OP_CLOSE, OP_PING, OP_PONG])
def test_fragmented_control_frame_1002(opcode: int) -> None:
    s = open_server()
    assert_protocol_error(s, s.receive_data(cframe(b"", opcode, fin=False)), 1002)


@pytest.mark.parametrize("opcode", [OP_CLOSE, OP_PING, OP_PONG])
def test_control_frame_too_long_1002(opcode: int) -> None:
    s = open_server()
    ok = s.receive_data(
        cframe(b"\x03\xe8" + b"a" * 123 if opcode == OP_CLOSE else b"a" * 125, opcode)
    )
    assert not any(isinstance(event, ProtocolError) for event in ok)
    s = open_server()
    # 126 bytes needs a 16-bit length; the header alone is enough to fail
    frame = cframe(b"\x03\xe8" + b"a" * 124, opcode)
    assert_protocol_error(s, s.receive_data(frame[:4]), 1002)


def test_continuation_without_start_1002() -> None:
    s = open_server()
    assert_protocol_error(s, s.receive_data(cframe(b"x", OP_CONT)), 1002)


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
def test_new_data_frame_during_fragmented_message_1002(opcode: int) -> None:
    s = open_server()
    assert s.receive_data(cframe(b"a", OP_BINARY, fin=False)) == []
    assert_protocol_error(s, s.receive_data(cframe(b"b", opcode)), 1002)


def test_64bit_length_with_msb_set_1002() -> None:
    s = open_server()
    frame = struct.pack("!BBQ", 0x82, 0xFF, 1 << 63)
    assert_protocol_error(s, s.receive_data(frame), 1002)


def test_message_too_large_detected_from_header_1009() -> None:
    s = open_server(max_message_size=1000)
    assert s.receive_data(cframe(b"a" * 1000, OP_BINARY)) == [Message(b"a" * 1000, True)]
    frame = cframe(b"a" * 1001, OP_BINARY)
    # only the 4-byte header (no mask, no payload) has arrived
    assert_protocol_error(s, s.receive_data(frame[:4]), 1009)


def test_message_too_large_64bit_header_1009() -> None:
    s = open_server(max_message_size=1 << 20)
    assert_protocol_error(s, s.receive_data(struct.pack("!BBQ", 0x81, 0xFF, 1 << 40)), 1009)


def test_small_max_message_size_applies_to_7bit_lengths() -> None:
    s = open_server(max_message_size=10)
    assert s.receive_data(cframe(b"a" * 10)) == [Message(b"a" * 10, False)]
    assert_protocol_error(s, s.receive_data(cframe(b"a" * 11)), 1009)


def test_fragmented_message_too_large_1009() -> None:
    s = open_server(max_message_size=100)
    assert s.receive_data(cframe(b"a" * 60, OP_BINARY, fin=False)) == []
    assert s.receive_data(cframe(b"a" * 40, OP_CONT, fin=False)) == []
    frame = cframe(b"a", OP_CONT)
    assert_protocol_error(s, s.receive_data(frame[:2]), 1009)


def test_control_frames_do_not_count_towards_message_size() -> None:
    s = open_server(max_message_size=10)
    events = s.receive_data(
        cframe(b"a" * 10, fin=False) + cframe(b"p" * 100, OP_PING) + cframe(b"", OP_CONT)
    )
    assert events == [Message(b"a" * 10, False)]


@pytest.mark.parametrize(
    "payload",
    [b"\xff", b"\xc3", b"\xed\xa0\x80", b"abc\xc0\xaf", b"\xf4\x90\x80\x80", b"ok\xe2\x82"],
)
def test_invalid_utf8_text_1007(payload: bytes) -> None:
    s = open_server()
    assert_protocol_error(s, s.receive_data(cframe(payload)), 1007)


def test_invalid_utf8_binary_is_fine() -> None:
    s = open_server()
    assert s.receive_data(cframe(b"\xff\xfe", OP_BINARY)) == [Message(b"\xff\xfe", True)]


def test_utf8_codepoint_split_across_fragments_is_valid() -> None:
    s = open_server()
    euro = "\u20ac".encode()
    assert s.receive_data(cframe(b"a" + euro[:1], fin=False)) == []
    assert s.receive_data(cframe(euro[1:2], OP_CONT, fin=False)) == []
    assert s.receive_data(cframe(euro[2:], OP_CONT)) == [Message(b"a" + euro, False)]


def test_invalid_utf8_fails_fast_in_first_fragment() -> None:
    s = open_server()
    assert_protocol_error(s, s.receive_data(cframe(b"ok\xff", fin=False)), 1007)


def test_invalid_utf8_fails_in_later_fragment() -> None:
    s = open_server()
    assert s.receive_data(cframe(b"ok", fin=False)) == []
    assert_protocol_error(s, s.receive_data(cframe(b"\xc0\x80", OP_CONT, fin=False)), 1007)


def test_truncated_utf8_at_end_of_fragmented_message_1007() -> None:
    s = open_server()
    assert s.receive_data(cframe(b"ok\xe2\x82", fin=False)) == []
    assert_protocol_error(s, s.receive_data(cframe(b"", OP_CONT)), 1007)


# ---------------------------------------------------------------- control frames


def test_ping_is_answered_with_pong() -> None:
    s = open_server()
    assert s.receive_data(cframe(b"are you there", OP_PING)) == []
    assert sent_frames(s) == [SFrame(True, OP_PONG, b"are you there")]
    assert s.receive_data(cframe(b"", OP_PING)) == []
    assert s.data_to_send() == b"\x8a\x00"


def test_pong_received() -> None:
    s = open_server()
    assert s.receive_data(cframe(b"x1", OP_PONG)) == [PongReceived(b"x1")]
    assert s.data_to_send() == b""


def test_close_without_code() -> None:
    s = open_server()
    assert s.receive_data(cframe(b"", OP_CLOSE)) == [CloseReceived(1005, "")]
    assert s.state is WsState.CLOSED
    assert s.data_to_send() == b"\x88\x02\x03\xe8"  # echo: 1000


def test_close_with_code_and_reason_is_echoed() -> None:
    s = open_server()
    events = s.receive_data(cframe(close_payload(4001, "bye \u00e9".encode()), OP_CLOSE))
    assert events == [CloseReceived(4001, "bye \u00e9")]
    assert sent_frames(s) == [SFrame(True, OP_CLOSE, close_payload(4001))]
    assert s.state is WsState.CLOSED


def test_close_with_one_byte_payload_1002() -> None:
    s = open_server()
    assert_protocol_error(s, s.receive_data(cframe(b"\x03", OP_CLOSE)), 1002)


@pytest.mark.parametrize(
    "code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]
)
def test_close_with_invalid_code_1002(code: int) -> None:
    s = open_server()
    assert_protocol_error(s, s.receive_data(cframe(close_payload(code), OP_CLOSE)), 1002)


@pytest.mark.parametrize(
    "code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999]
)
def test_close_with_valid_code(code: int) -> None:
    s = open_server()
    assert s.receive_data(cframe(close_payload(code), OP_CLOSE)) == [CloseReceived(code, "")]
    assert sent_frames(s) == [SFrame(True, OP_CLOSE, close_payload(code))]


def test_close_with_invalid_utf8_reason_1002() -> None:
    s = open_server()
    assert_protocol_error(s, s.receive_data(cframe(close_payload(1000, b"\xff"), OP_CLOSE)), 1002)


def test_data_after_close_received_is_ignored() -> None:
    s = open_server()
    events = s.receive_data(cframe(b"", OP_CLOSE) + cframe(b"late"))
    assert events == [CloseReceived(1005, "")]
    assert s.receive_data(cframe(b"later")) == []
    assert s.receive_data(b"\xff\xff garbage") == []
    assert s.data_to_send() == b"\x88\x02\x03\xe8"


def test_server_initiated_close() -> None:
    s = open_server()
    s.close(1001, "going away")
    assert s.state is WsState.CLOSING
    assert sent_frames(s) == [SFrame(True, OP_CLOSE, close_payload(1001, b"going away"))]
    # data still arrives while closing
    assert s.receive_data(cframe(b"in flight")) == [Message(b"in flight", False)]
    # pings are not answered any more
    assert s.receive_data(cframe(b"p", OP_PING)) == []
    # the peer's close completes the handshake without a second close frame
    assert s.receive_data(cframe(close_payload(1001), OP_CLOSE)) == [CloseReceived(1001, "")]
    assert s.state is WsState.CLOSED
    assert s.data_to_send() == b""
    s.close(1000)  # no-op
    assert s.data_to_send() == b""


def test_protocol_error_while_closing_queues_no_second_close() -> None:
    s = open_server()
    s.close(1000)
    s.data_to_send()
    events = s.receive_data(cframe(b"x", mask=None))
    assert events == [ProtocolError(1002, "client frame is not masked")]
    assert s.state is WsState.CLOSED
    assert s.data_to_send() == b""


def test_close_reason_truncated_to_valid_utf8() -> None:
    s = open_server()
    s.close(1000, "\u20ac" * 100)
    (frame,) = sent_frames(s)
    assert len(frame.payload) <= 125
    assert frame.payload[2:].decode("utf-8") == "\u20ac" * 41


@pytest.mark.parametrize("code", [999, 1005, 1006, 1015, 2000, 5000])
def test_close_with_unsendable_code_raises(code: int) -> None:
    s = open_server()
    with pytest.raises(ValueError):
        s.close(code)
    assert s.state is WsState.OPEN


def test_close_during_handshake() -> None:
    s = server()
    s.close(1000)
    assert s.state is WsState.CLOSED
    assert s.data_to_send() == b""
    assert s.receive_data(request()) == []


def test_eof() -> None:
    s = open_server()
    s.receive_data(cframe(b"abc")[:3])
    assert s.receive_data(b"") == [ConnectionLost()]
    assert s.state is WsState.CLOSED
    assert s.receive_data(cframe(b"abc")) == []


# ---------------------------------------------------------------- sending


def test_ping_queues_ping_frame() -> None:
    s = open_server()
    s.ping(b"hb-1")
    s.ping()
    assert sent_frames(s) == [SFrame(True, OP_PING, b"hb-1"), SFrame(True, OP_PING, b"")]
    with pytest.raises(ValueError):
        s.ping(b"x" * 126)


def test_send_message_and_ping_only_when_open() -> None:
    s = server()
    with pytest.raises(InvalidStateError):
        s.send_message(b"x", False)
    with pytest.raises(InvalidStateError):
        s.ping()
    s = open_server()
    assert s.send_message(b"x", True) == b"\x82\x01x"
    assert s.data_to_send() == b""  # not queued
    s.close(1000)
    with pytest.raises(InvalidStateError):
        s.send_message(b"x", False)


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 100000])
def test_frame_message_headers(size: int) -> None:
    payload = b"\x07" * size
    for binary, opcode in ((True, 0x82), (False, 0x81)):
        framed = frame_message(payload, binary)
        if size < 126:
            assert framed[:2] == bytes((opcode, size))
        elif size < 65536:
            assert framed[:4] == struct.pack("!BBH", opcode, 126, size)
        else:
            assert framed[:10] == struct.pack("!BBQ", opcode, 127, size)
        assert framed.endswith(payload)
        assert parse_server_frames(framed) == [SFrame(True, opcode & 0x0F, payload)]


@given(st.binary(max_size=70000), st.booleans())
@settings(max_examples=50, deadline=None)
def test_frame_message_round_trips_through_client_parser(payload: bytes, binary: bool) -> None:
    assert parse_server_frames(frame_message(payload, binary)) == [
        SFrame(True, OP_BINARY if binary else OP_TEXT, payload)
    ]


def test_frame_message_matches_autobahn_server_framing() -> None:
    """Cross-check: autobahn's (unmasked, server-side) frame writer gives the same bytes."""
    txaio = pytest.importorskip("txaio")
    protocol = pytest.importorskip("autobahn.websocket.protocol")
    try:
        txaio.use_twisted()
    except RuntimeError:
        pass  # another test selected asyncio already; sendFrame works under either
    written: list[bytes] = []
    proto = protocol.WebSocketProtocol()
    proto.factory = SimpleNamespace(isServer=True)
    proto.maskServerFrames = False
    proto.trafficStats = SimpleNamespace(outgoingWebSocketFrames=0)
    proto.logFrames = False
    proto.sendData = lambda data, sync=False, chopsize=None: written.append(data)
    for size in (0, 5, 125, 126, 65535, 65536):
        payload = bytes([size % 251]) * size
        for opcode in (OP_TEXT, OP_BINARY):
            written.clear()
            proto.sendFrame(opcode=opcode, payload=payload, fin=True)
            assert b"".join(written) == frame_message(payload, opcode == OP_BINARY), size


# ---------------------------------------------------------------- properties


@st.composite
def message_streams(draw: st.DrawFn) -> tuple[bytes, list[Message], list[bytes]]:
    """A byte stream of client frames, the messages it carries, and the ping payloads."""
    texts = st.text(max_size=300).map(lambda t: (t.encode("utf-8"), False))
    blobs = st.binary(max_size=3000).map(lambda b: (b, True))
    items = draw(st.lists(st.one_of(texts, blobs), max_size=12))
    stream: list[bytes] = []
    messages: list[Message] = []
    pings: list[bytes] = []
    for payload, binary in items:
        cuts = sorted(draw(st.lists(st.integers(0, len(payload)), max_size=4)))
        bounds = [0, *cuts, len(payload)]
        pieces = [payload[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
        for i, piece in enumerate(pieces):
            opcode = (OP_BINARY if binary else OP_TEXT) if i == 0 else OP_CONT
            mask = draw(st.binary(min_size=4, max_size=4))
            stream.append(cframe(piece, opcode, fin=i == len(pieces) - 1, mask=mask))
            if draw(st.booleans()):
                ping = draw(st.binary(max_size=125))
                pings.append(ping)
                stream.append(cframe(ping, OP_PING))
        messages.append(Message(payload, binary))
    return b"".join(stream), messages, pings


@given(message_streams(), st.lists(st.integers(min_value=0), max_size=30))
@settings(max_examples=300, deadline=None)
def test_property_messages_survive_arbitrary_splitting(
    case: tuple[bytes, list[Message], list[bytes]], cut_seeds: list[int]
) -> None:
    stream, messages, pings = case
    cuts = sorted({c % (len(stream) + 1) for c in cut_seeds})
    bounds = [0, *cuts, len(stream)]
    s = open_server()
    events: list[ws.WsEvent] = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        if b > a:
            events += s.receive_data(stream[a:b])
    assert events == messages
    assert sent_frames(s) == [SFrame(True, OP_PONG, p) for p in pings]
    assert s.state is WsState.OPEN


@given(st.binary(min_size=1, max_size=2000))
@settings(max_examples=300, deadline=None)
def test_property_garbage_never_raises(garbage: bytes) -> None:
    s = open_server(max_message_size=1000)
    events = s.receive_data(garbage)
    for event in events[:-1]:
        assert isinstance(event, (Message, PongReceived))
    if s.state is WsState.CLOSED:
        assert isinstance(events[-1], (CloseReceived, ProtocolError))
    out = s.data_to_send()
    parse_server_frames(out)


@given(st.binary(min_size=16, max_size=16))
def test_property_accept_key(raw_key: bytes) -> None:
    key = base64.b64encode(raw_key).decode()
    expected = base64.b64encode(
        hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
    ).decode()
    s = server()
    events = s.receive_data(request(headers={"Sec-WebSocket-Key": key}))
    assert isinstance(events[0], Accepted)
    assert f"Sec-WebSocket-Accept: {expected}\r\n".encode() in s.data_to_send()
