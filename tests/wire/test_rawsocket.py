"""Tests for wamp_router.wire.rawsocket (pure: no sockets)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wamp_router.wire import rawsocket as rs
from wamp_router.wire.rawsocket import (
    Accepted,
    ConnectionLost,
    InvalidStateError,
    Message,
    MessageTooLarge,
    PongReceived,
    ProtocolError,
    RawSocketServer,
    Rejected,
    RsState,
    frame_message,
    length_code,
)

T_MESSAGE, T_PING, T_PONG = 0, 1, 2

# ---------------------------------------------------------------- client-side helpers


def handshake(serializer: int = 1, length: int = 15, reserved: bytes = b"\x00\x00") -> bytes:
    return bytes((0x7F, length << 4 | serializer)) + reserved


def cframe(payload: bytes, frame_type: int = T_MESSAGE, *, length: int | None = None) -> bytes:
    n = len(payload) if length is None else length
    return struct.pack(">I", frame_type << 24 | n) + payload


def parse_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Client-side parser for router frames: (type, payload)."""
    frames = []
    pos = 0
    while pos < len(data):
        (word,) = struct.unpack_from(">I", data, pos)
        assert word >> 28 == 0, "reserved bits set"
        n = word & 0xFFFFFF
        if word & 0x08000000:
            assert n == 0
            n = 1 << 24
        assert pos + 4 + n <= len(data), "truncated frame"
        frames.append(((word >> 24) & 0x07, data[pos + 4 : pos + 4 + n]))
        pos += 4 + n
    return frames


def server(
    serializers: tuple[str, ...] = ("json", "msgpack", "cbor"), max_message_size: int = 1 << 20
) -> RawSocketServer:
    return RawSocketServer(serializers=serializers, max_message_size=max_message_size)


def open_server(max_message_size: int = 1 << 20, client_length: int = 15) -> RawSocketServer:
    s = server(max_message_size=max_message_size)
    events = s.receive_data(handshake(1, client_length))
    assert isinstance(events[0], Accepted)
    s.data_to_send()
    return s


def assert_failed(s: RawSocketServer, events: list[rs.RsEvent]) -> ProtocolError:
    assert isinstance(events[-1], ProtocolError), events
    assert s.state is RsState.CLOSED
    assert s.data_to_send() == b""
    return events[-1]


# ---------------------------------------------------------------- handshake


@pytest.mark.parametrize(
    ("max_size", "code"),
    [
        (0, 0),
        (100, 0),
        (511, 0),
        (512, 0),
        (1023, 0),
        (1024, 1),
        (65536, 7),
        (1 << 20, 11),
        ((1 << 20) + 1, 11),
        ((1 << 24) - 1, 14),
        (1 << 24, 15),
        (1 << 30, 15),
    ],
)
def test_length_code(max_size: int, code: int) -> None:
    assert length_code(max_size) == code


@pytest.mark.parametrize(("name", "ser_id"), [("json", 1), ("msgpack", 2), ("cbor", 3)])
def test_handshake_accepted(name: str, ser_id: int) -> None:
    s = server(max_message_size=1 << 20)
    events = s.receive_data(handshake(ser_id, length=3))
    assert events == [Accepted(name, 4096)]
    assert s.state is RsState.OPEN
    assert s.serializer == name
    assert s.peer_max_message_size == 4096
    # we announce 2**(9+11) = 1 MiB and echo the serializer
    assert s.data_to_send() == bytes((0x7F, 0xB0 | ser_id, 0, 0))
    assert s.data_to_send() == b""


@pytest.mark.parametrize("length", range(16))
def test_handshake_peer_max_message_size(length: int) -> None:
    s = server()
    assert s.receive_data(handshake(2, length)) == [Accepted("msgpack", 2 ** (9 + length))]


def test_handshake_split_at_every_byte() -> None:
    raw = handshake(3, 5) + cframe(b"hello")
    for cut in range(len(raw) + 1):
        s = server()
        events = s.receive_data(raw[:cut]) if cut else []
        events += s.receive_data(raw[cut:]) if cut < len(raw) else []
        assert events == [Accepted("cbor", 2**14), Message(b"hello")], cut
    s = server()
    events = []
    for i in range(len(raw)):
        events += s.receive_data(raw[i : i + 1])
    assert events == [Accepted("cbor", 2**14), Message(b"hello")]


def test_frames_in_same_chunk_as_handshake() -> None:
    s = server()
    events = s.receive_data(handshake() + cframe(b"a") + cframe(b"p", T_PING) + cframe(b"b"))
    assert events == [Accepted("json", 2**24), Message(b"a"), Message(b"b")]
    out = s.data_to_send()
    assert out[:4] == bytes((0x7F, 0xB1, 0, 0))
    assert parse_frames(out[4:]) == [(T_PONG, b"p")]


@pytest.mark.parametrize("first", [b"G", b"\x00", b"\x7e", b"\xff", b"GET / HTTP/1.1\r\n"])
def test_bad_magic_fails_immediately(first: bytes) -> None:
    s = server()
    events = s.receive_data(first)
    assert len(events) == 1
    assert isinstance(events[0], ProtocolError)
    assert "first octet" in events[0].reason
    assert s.state is RsState.CLOSED
    assert s.data_to_send() == b""
    assert s.receive_data(b"more") == []


@pytest.mark.parametrize("reserved", [b"\x00\x01", b"\x01\x00", b"\xff\xff"])
def test_reserved_handshake_octets_rejected_3(reserved: bytes) -> None:
    s = server()
    events = s.receive_data(handshake(reserved=reserved))
    assert len(events) == 1
    assert isinstance(events[0], Rejected)
    assert events[0].error_code == 3
    assert s.data_to_send() == b"\x7f\x30\x00\x00"
    assert s.state is RsState.CLOSED
    assert s.serializer is None


@pytest.mark.parametrize("ser_id", [0, 4, 5, 6, 15])
def test_unsupported_serializer_rejected_1(ser_id: int) -> None:
    s = server()
    events = s.receive_data(handshake(ser_id))
    assert len(events) == 1
    assert isinstance(events[0], Rejected)
    assert events[0].error_code == 1
    assert f"serializer id {ser_id}" in events[0].reason
    assert s.data_to_send() == b"\x7f\x10\x00\x00"
    assert s.state is RsState.CLOSED


def test_known_but_disabled_serializer_rejected_1() -> None:
    s = server(serializers=("json",))
    events = s.receive_data(handshake(2))
    assert events == [Rejected(1, "unsupported serializer id 2 (supported: json)")]
    assert s.data_to_send() == b"\x7f\x10\x00\x00"


def test_data_after_rejection_ignored() -> None:
    s = server()
    s.receive_data(handshake(9) + cframe(b"x"))
    assert s.data_to_send() == b"\x7f\x10\x00\x00"
    assert s.receive_data(cframe(b"y")) == []


def test_unknown_serializer_name_in_constructor() -> None:
    with pytest.raises(ValueError):
        RawSocketServer(serializers=("json", "ubjson"), max_message_size=1024)


def test_eof_during_handshake() -> None:
    s = server()
    s.receive_data(b"\x7f")
    assert s.receive_data(b"") == [ConnectionLost()]
    assert s.state is RsState.CLOSED
    assert s.data_to_send() == b""


# ---------------------------------------------------------------- receiving frames


def test_messages() -> None:
    s = open_server()
    assert s.receive_data(cframe(b"[1]")) == [Message(b"[1]")]
    assert s.receive_data(cframe(b"")) == [Message(b"")]
    assert s.data_to_send() == b""


def test_many_frames_in_one_chunk() -> None:
    s = open_server()
    payloads = [bytes([i % 256]) * (i * 7 % 1000) for i in range(500)]
    assert s.receive_data(b"".join(cframe(p) for p in payloads)) == [Message(p) for p in payloads]


def test_frames_split_at_every_byte() -> None:
    stream = cframe(b"a" * 10) + cframe(b"p1", T_PING) + cframe(b"b" * 700) + cframe(b"x", T_PONG)
    expected = [Message(b"a" * 10), Message(b"b" * 700), PongReceived(b"x")]
    for cut in range(1, len(stream)):
        s = open_server()
        assert s.receive_data(stream[:cut]) + s.receive_data(stream[cut:]) == expected, cut
        assert parse_frames(s.data_to_send()) == [(T_PONG, b"p1")]


def test_ping_answered_with_pong() -> None:
    s = open_server()
    assert s.receive_data(cframe(b"hello?", T_PING)) == []
    assert s.data_to_send() == b"\x02\x00\x00\x06hello?"
    assert s.receive_data(cframe(b"", T_PING)) == []
    assert s.data_to_send() == b"\x02\x00\x00\x00"


def test_pong_received() -> None:
    s = open_server()
    assert s.receive_data(cframe(b"hb", T_PONG)) == [PongReceived(b"hb")]
    assert s.data_to_send() == b""


@pytest.mark.parametrize("frame_type", [3, 4, 5, 6, 7])
def test_reserved_frame_type_fails(frame_type: int) -> None:
    s = open_server()
    events = s.receive_data(cframe(b"x", frame_type))
    assert "reserved frame type" in assert_failed(s, events).reason


@pytest.mark.parametrize("b0", [0x10, 0x20, 0x40, 0x80, 0xF0, 0x11])
def test_reserved_bits_in_frame_fail(b0: int) -> None:
    s = open_server()
    events = s.receive_data(bytes((b0, 0, 0, 1)) + b"x")
    assert "reserved bits" in assert_failed(s, events).reason


def test_x_bit_with_nonzero_length_fails() -> None:
    s = open_server(max_message_size=1 << 24)
    events = s.receive_data(b"\x08\x00\x00\x01x")
    assert "X bit" in assert_failed(s, events).reason


def test_frame_longer_than_our_max_fails_from_header() -> None:
    s = open_server(max_message_size=4096)  # announces 2**12
    assert s.receive_data(cframe(b"a" * 4096)) == [Message(b"a" * 4096)]
    # only the 4-byte header of a 4097-byte frame
    events = s.receive_data(cframe(b"", length=4097))
    assert "exceeds" in assert_failed(s, events).reason


def test_ping_longer_than_our_max_fails() -> None:
    s = open_server(max_message_size=512)
    events = s.receive_data(cframe(b"", T_PING, length=513))
    assert_failed(s, events)


def test_receive_limit_is_the_announced_length() -> None:
    # 1000 bytes allowed by the caller, but only 512 can be announced
    s = server(max_message_size=1000)
    s.receive_data(handshake())
    assert s.data_to_send() == b"\x7f\x01\x00\x00"
    assert s.max_message_size == 512
    assert s.receive_data(cframe(b"a" * 512)) == [Message(b"a" * 512)]
    assert_failed(s, s.receive_data(cframe(b"a" * 513)))


def test_receive_limit_below_512() -> None:
    s = server(max_message_size=100)
    s.receive_data(handshake())
    assert s.data_to_send() == b"\x7f\x01\x00\x00"
    assert s.receive_data(cframe(b"a" * 100)) == [Message(b"a" * 100)]
    assert_failed(s, s.receive_data(cframe(b"a" * 101)))


def test_16mib_frame_with_x_bit() -> None:
    payload = b"\x5a" * (1 << 24)
    s = open_server(max_message_size=1 << 24)
    framed = b"\x08\x00\x00\x00" + payload
    assert frame_message(payload) == framed
    events = s.receive_data(framed[:1000]) + s.receive_data(framed[1000:])
    assert len(events) == 1
    assert isinstance(events[0], Message)
    assert events[0].payload == payload
    # a 16 MiB PING is answered with a 16 MiB PONG (X bit set)
    assert s.receive_data(b"\x09\x00\x00\x00" + payload) == []
    assert s.data_to_send() == b"\x0a\x00\x00\x00" + payload
    # the same frame is too large for a smaller limit
    s = open_server(max_message_size=(1 << 24) - 1)
    assert_failed(s, s.receive_data(framed[:4]))


def test_eof_and_closed_ignores_data() -> None:
    s = open_server()
    s.receive_data(cframe(b"abc")[:5])
    assert s.receive_data(b"") == [ConnectionLost()]
    assert s.state is RsState.CLOSED
    assert s.receive_data(cframe(b"x")) == []


def test_data_after_protocol_error_ignored() -> None:
    s = open_server()
    events = s.receive_data(cframe(b"ok") + cframe(b"x", 5) + cframe(b"never"))
    assert events[0] == Message(b"ok")
    assert len(events) == 2
    assert_failed(s, events)
    assert s.receive_data(cframe(b"y")) == []


# ---------------------------------------------------------------- sending


def test_send_message() -> None:
    s = open_server(client_length=0)  # peer accepts 512 bytes
    assert s.send_message(b"[1]") == b"\x00\x00\x00\x03[1]"
    assert s.send_message(b"a" * 512) == b"\x00\x00\x02\x00" + b"a" * 512
    assert s.data_to_send() == b""  # not queued
    with pytest.raises(MessageTooLarge):
        s.send_message(b"a" * 513)
    assert issubclass(MessageTooLarge, ValueError)


def test_send_message_requires_open() -> None:
    s = server()
    with pytest.raises(InvalidStateError):
        s.send_message(b"x")
    with pytest.raises(InvalidStateError):
        s.ping(b"x")
    s = open_server()
    s.receive_data(b"")
    with pytest.raises(InvalidStateError):
        s.send_message(b"x")


def test_ping_queues_ping_frame() -> None:
    s = open_server(client_length=0)
    s.ping(b"hb-1")
    s.ping(b"")
    assert s.data_to_send() == b"\x01\x00\x00\x04hb-1\x01\x00\x00\x00"
    with pytest.raises(MessageTooLarge):
        s.ping(b"x" * 513)


@pytest.mark.parametrize("size", [0, 1, 255, 256, 65536, (1 << 24) - 1])
def test_frame_message(size: int) -> None:
    payload = b"\x01" * size
    framed = frame_message(payload)
    assert framed[:4] == struct.pack(">I", size)
    assert parse_frames(framed) == [(T_MESSAGE, payload)]


def test_frame_message_too_large() -> None:
    with pytest.raises(MessageTooLarge):
        frame_message(b"\x00" * ((1 << 24) + 1))


# ---------------------------------------------------------------- properties


@st.composite
def frame_streams(draw: st.DrawFn) -> tuple[bytes, list[bytes], list[bytes]]:
    """A stream of client frames, the messages it carries, and the ping payloads."""
    stream: list[bytes] = []
    messages: list[bytes] = []
    pings: list[bytes] = []
    for payload in draw(st.lists(st.binary(max_size=3000), max_size=20)):
        if draw(st.booleans()):
            ping = draw(st.binary(max_size=200))
            pings.append(ping)
            stream.append(cframe(ping, T_PING))
        stream.append(cframe(payload))
        messages.append(payload)
    return b"".join(stream), messages, pings


@given(frame_streams(), st.lists(st.integers(min_value=0), max_size=30), st.integers(0, 15))
@settings(max_examples=300, deadline=None)
def test_property_frames_survive_arbitrary_splitting(
    case: tuple[bytes, list[bytes], list[bytes]], cut_seeds: list[int], client_length: int
) -> None:
    body, messages, pings = case
    stream = handshake(2, client_length) + body
    cuts = sorted({c % (len(stream) + 1) for c in cut_seeds})
    bounds = [0, *cuts, len(stream)]
    s = server(max_message_size=4096)
    events: list[rs.RsEvent] = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        if b > a:
            events += s.receive_data(stream[a:b])
    assert events == [Accepted("msgpack", 2 ** (9 + client_length)), *map(Message, messages)]
    out = s.data_to_send()
    assert out[:4] == b"\x7f\x32\x00\x00"
    assert parse_frames(out[4:]) == [(T_PONG, p) for p in pings]
    assert s.state is RsState.OPEN


@given(st.binary(min_size=1, max_size=3000))
@settings(max_examples=300, deadline=None)
def test_property_garbage_never_raises(garbage: bytes) -> None:
    s = open_server(max_message_size=1024)
    events = s.receive_data(garbage)
    for event in events[:-1]:
        assert isinstance(event, (Message, PongReceived))
    if s.state is RsState.CLOSED:
        assert isinstance(events[-1], ProtocolError)
    parse_frames(s.data_to_send())


@given(st.binary(max_size=5000))
def test_property_frame_message_round_trip(payload: bytes) -> None:
    s = open_server()
    assert s.receive_data(frame_message(payload)) == [Message(payload)]
