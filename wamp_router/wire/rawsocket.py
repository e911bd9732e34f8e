"""WAMP RawSocket transport, router side, as a pure (sans-I/O) state machine.

Responsibility: the 4-octet RawSocket handshake (serializer and maximum message
length negotiation) and the length-prefixed framing of WAMP messages, PINGs and
PONGs, as specified in the WAMP spec ("RawSocket Transport"). Nothing else: no
sockets, no timers, no serialization.

Rules:

* Pure: imports only the standard library (no twisted, autobahn, txaio, socket, time,
  random, asyncio). Inputs are method calls, outputs are return values; the adapter
  owns the connection and writes whatever ``data_to_send()`` returns.
* The connection phase lives in the ``RsState`` enum. No boolean phase flags.
* The receive path never loops over bytes in Python and never copies the buffer per
  frame: frames are located with an offset into the received chunk, each payload is
  sliced once, and the unconsumed tail is kept once at the end. A frame whose bytes
  are incomplete is kept as a list of chunks joined once when enough bytes are there.
* ``frame_message`` frames a payload once so a broadcast can write the same bytes to
  many connections.
"""

from __future__ import annotations

import struct
from collections.abc import Collection
from dataclasses import dataclass
from enum import Enum
from typing import TypeAlias

__all__ = [
    "ERROR_MAX_LENGTH_UNACCEPTABLE",
    "ERROR_RESERVED_BITS",
    "ERROR_SERIALIZER_UNSUPPORTED",
    "MAGIC",
    "MAX_FRAME_LENGTH",
    "SERIALIZER_IDS",
    "Accepted",
    "ConnectionLost",
    "InvalidStateError",
    "Message",
    "MessageTooLarge",
    "PongReceived",
    "ProtocolError",
    "RawSocketServer",
    "Rejected",
    "RsEvent",
    "RsState",
    "frame_message",
    "length_code",
]

MAGIC = 0x7F
MAX_FRAME_LENGTH = 1 << 24
"""Largest payload a RawSocket frame can carry (16 MiB, needs the X bit)."""

SERIALIZER_IDS: dict[str, int] = {"json": 1, "msgpack": 2, "cbor": 3}
"""Serializers this implementation can negotiate (ubjson=4 and flatbuffers=5 are not)."""

ERROR_SERIALIZER_UNSUPPORTED = 1
ERROR_MAX_LENGTH_UNACCEPTABLE = 2  # defined by the spec; this router never sends it
ERROR_RESERVED_BITS = 3

_TYPE_MESSAGE = 0
_TYPE_PING = 1
_TYPE_PONG = 2

_HDR = struct.Struct(">I")
_X_BIT_HEADER = b"\x08\x00\x00\x00"  # type 0, X bit set: payload of exactly 2**24 octets


class RsState(Enum):
    """Phase of a router-side RawSocket connection."""

    HANDSHAKE = "handshake"  # waiting for the client's 4-octet handshake
    OPEN = "open"  # handshake accepted, frames flow both ways
    CLOSED = "closed"  # rejected, failed, or EOF


# ---------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Accepted:
    """The handshake was accepted; the 4-octet success reply is queued."""

    serializer: str
    peer_max_message_size: int


@dataclass(frozen=True, slots=True)
class Rejected:
    """The handshake was refused; the 4-octet error reply is queued.

    The adapter writes ``data_to_send()`` and closes the connection.
    """

    error_code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Message:
    """One regular WAMP message (frame type 0)."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class PongReceived:
    payload: bytes


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """The peer broke the protocol; the adapter closes the connection (nothing queued)."""

    reason: str


@dataclass(frozen=True, slots=True)
class ConnectionLost:
    """The peer closed the TCP connection (``receive_data(b"")``)."""


RsEvent: TypeAlias = Accepted | Rejected | Message | PongReceived | ProtocolError | ConnectionLost


class MessageTooLarge(ValueError):
    """A payload is larger than the peer accepts (or than a frame can carry)."""


class InvalidStateError(RuntimeError):
    """An operation was called in a state that does not allow it."""


class _Failure(Exception):
    """Internal: the peer broke the protocol."""


# ---------------------------------------------------------------------------- helpers


def length_code(max_message_size: int) -> int:
    """The largest LENGTH code L (0..15) with 2**(9+L) <= max_message_size, at least 0."""
    code = 0
    while code < 15 and 1 << (10 + code) <= max_message_size:
        code += 1
    return code


def _frame(frame_type: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < MAX_FRAME_LENGTH:
        return _HDR.pack(frame_type << 24 | n) + payload
    if n == MAX_FRAME_LENGTH:
        return bytes((0x08 | frame_type, 0, 0, 0)) + payload
    raise MessageTooLarge(f"payload of {n} bytes exceeds the RawSocket maximum of 2**24")


def frame_message(payload: bytes) -> bytes:
    """One regular-message frame (type 0, 24-bit length, payload).

    Encode a broadcast once with this and write the same bytes to many connections.
    Raises ``MessageTooLarge`` above 2**24 bytes (no peer can accept that).
    """
    n = len(payload)
    if n < MAX_FRAME_LENGTH:
        return _HDR.pack(n) + payload
    if n == MAX_FRAME_LENGTH:
        return _X_BIT_HEADER + payload
    raise MessageTooLarge(f"payload of {n} bytes exceeds the RawSocket maximum of 2**24")


# ---------------------------------------------------------------------------- server


class RawSocketServer:
    """Router side of one RawSocket connection.

    HANDSHAKE: a first octet other than 0x7F fails at once (``ProtocolError``, nothing
    queued). Once 4 octets are there, either ``Accepted`` (success reply queued, state
    OPEN) or ``Rejected`` (error reply queued, state CLOSED) is emitted; bytes after
    the handshake are frame data. OPEN: type-0 frames become ``Message``, PINGs are
    answered with a PONG, PONGs become ``PongReceived``; reserved bits or types, or a
    frame longer than ``max_message_size``, give ``ProtocolError`` (nothing queued,
    state CLOSED). CLOSED ignores further data. ``receive_data(b"")`` (EOF) always
    returns ``[ConnectionLost()]`` and ends in CLOSED.

    We announce the largest LENGTH code L with 2**(9+L) <= ``max_message_size`` and
    accept frames up to min(``max_message_size``, 2**(9+L)) bytes.
    """

    __slots__ = (
        "_head",
        "_length_code",
        "_max",
        "_need",
        "_out",
        "_serializer_ids",
        "_stash",
        "_stashed",
        "peer_max_message_size",
        "serializer",
        "state",
    )

    def __init__(self, *, serializers: Collection[str], max_message_size: int) -> None:
        unknown = [name for name in serializers if name not in SERIALIZER_IDS]
        if unknown:
            raise ValueError(f"unsupported RawSocket serializers: {unknown}")
        self.state = RsState.HANDSHAKE
        self.serializer: str | None = None
        self.peer_max_message_size: int | None = None
        self._serializer_ids = {SERIALIZER_IDS[name]: name for name in serializers}
        self._length_code = length_code(max_message_size)
        # what we accept: what we announce, or less if max_message_size < 512
        self._max = min(max_message_size, 1 << (9 + self._length_code))
        self._out: list[bytes] = []
        self._head = b""
        # incomplete frame bytes, joined once at least ``_need`` bytes are there
        self._stash: list[bytes] = []
        self._stashed = 0
        self._need = 0

    @property
    def max_message_size(self) -> int:
        """The largest payload we accept from the peer."""
        return self._max

    # ------------------------------------------------------------------ inputs

    def receive_data(self, data: bytes) -> list[RsEvent]:
        """Feed bytes from the peer; ``b""`` means EOF. Returns the resulting events."""
        if not data:
            self._head = b""
            self._stash = []
            self.state = RsState.CLOSED
            return [ConnectionLost()]
        if self.state is RsState.OPEN:
            if self._stash:
                self._stash.append(data)
                self._stashed += len(data)
                if self._stashed < self._need:
                    return []
                data = b"".join(self._stash)
                self._stash = []
            return self._receive_frames(data, [])
        if self.state is RsState.HANDSHAKE:
            return self._receive_handshake(data)
        return []

    def data_to_send(self) -> bytes:
        """Return and clear the bytes queued for the peer."""
        out = self._out
        if not out:
            return b""
        self._out = []
        return out[0] if len(out) == 1 else b"".join(out)

    def send_message(self, payload: bytes) -> bytes:
        """Frame one WAMP message; returns the bytes (they are not queued).

        Raises ``MessageTooLarge`` if the peer does not accept a payload this large.
        """
        limit = self.peer_max_message_size
        if limit is None or self.state is not RsState.OPEN:
            raise InvalidStateError(f"cannot send a message in state {self.state.name}")
        if len(payload) > limit:
            raise MessageTooLarge(
                f"message of {len(payload)} bytes exceeds the peer's maximum of {limit}"
            )
        return frame_message(payload)

    def ping(self, payload: bytes) -> None:
        """Queue a PING frame (type 1); the peer must answer with a PONG."""
        limit = self.peer_max_message_size
        if limit is None or self.state is not RsState.OPEN:
            raise InvalidStateError(f"cannot ping in state {self.state.name}")
        if len(payload) > limit:
            raise MessageTooLarge(f"ping of {len(payload)} bytes exceeds the peer's maximum")
        self._out.append(_frame(_TYPE_PING, payload))

    # ------------------------------------------------------------------ handshake

    def _receive_handshake(self, data: bytes) -> list[RsEvent]:
        head = self._head + data
        if head[0] != MAGIC:
            self._head = b""
            self.state = RsState.CLOSED
            return [ProtocolError(f"not a RawSocket handshake (first octet {head[0]:#04x})")]
        if len(head) < 4:
            self._head = head
            return []
        self._head = b""
        event = self._handshake(head[1], head[2], head[3])
        if not isinstance(event, Accepted):
            self.state = RsState.CLOSED
            self._out.append(bytes((MAGIC, event.error_code << 4, 0, 0)))
            return [event]
        self.state = RsState.OPEN
        self._out.append(bytes((MAGIC, self._length_code << 4 | head[1] & 0x0F, 0, 0)))
        rest = head[4:]
        return self._receive_frames(rest, [event]) if rest else [event]

    def _handshake(self, octet2: int, octet3: int, octet4: int) -> Accepted | Rejected:
        if octet3 or octet4:
            return Rejected(ERROR_RESERVED_BITS, "reserved handshake octets are not zero")
        serializer = self._serializer_ids.get(octet2 & 0x0F)
        if serializer is None:
            supported = ", ".join(sorted(self._serializer_ids.values()))
            return Rejected(
                ERROR_SERIALIZER_UNSUPPORTED,
                f"unsupported serializer id {octet2 & 0x0F} (supported: {supported})",
            )
        self.serializer = serializer
        self.peer_max_message_size = 1 << (9 + (octet2 >> 4))
        return Accepted(serializer, self.peer_max_message_size)

    # ------------------------------------------------------------------ frames

    def _receive_frames(self, data: bytes, events: list[RsEvent]) -> list[RsEvent]:
        try:
            self._parse_frames(data, events)
        except _Failure as failure:
            self.state = RsState.CLOSED
            self._stash = []
            events.append(ProtocolError(str(failure)))
        return events

    def _parse_frames(self, data: bytes, events: list[RsEvent]) -> None:
        pos = 0
        end = len(data)
        limit = min(self._max, MAX_FRAME_LENGTH - 1)
        unpack = _HDR.unpack_from
        need = 4
        while end - pos >= 4:
            word: int = unpack(data, pos)[0]
            start = pos + 4
            if word <= limit:  # type 0, no reserved bits, no X bit: a regular message
                stop = start + word
                if stop > end:
                    need = stop - pos
                    break
                events.append(Message(data[start:stop]))
            else:
                stop = start + self._check_header(word)
                if stop > end:
                    need = stop - pos
                    break
                self._on_other(word >> 24 & 0x07, data[start:stop], events)
            pos = stop
        if pos < end:
            self._stash = [data[pos:]]
            self._stashed = end - pos
            self._need = need

    def _check_header(self, word: int) -> int:
        """Validate a frame header that is not a small regular message; its length."""
        b0 = word >> 24
        if b0 & 0xF0:
            raise _Failure(f"reserved bits set in frame header ({b0:#04x})")
        length = word & 0xFFFFFF
        if b0 & 0x08:
            if length:
                raise _Failure("X bit set with a non-zero 24-bit length")
            length = MAX_FRAME_LENGTH
        if b0 & 0x07 > _TYPE_PONG:
            raise _Failure(f"reserved frame type {b0 & 0x07}")
        if length > self._max:
            raise _Failure(f"frame of {length} bytes exceeds our maximum of {self._max}")
        return length

    def _on_other(self, frame_type: int, payload: bytes, events: list[RsEvent]) -> None:
        if frame_type == _TYPE_PING:
            self._out.append(_frame(_TYPE_PONG, payload))
        elif frame_type == _TYPE_PONG:
            events.append(PongReceived(payload))
        else:  # a regular message of exactly 2**24 bytes (X bit)
            events.append(Message(payload))
