"""RFC 6455 WebSocket, server side, as a pure (sans-I/O) state machine.

Responsibility: turn the bytes a client sends into events (handshake accepted or
rejected, complete data messages, pongs, close, protocol errors) and turn what the
router wants to say into bytes (handshake response, data frames, pings, pongs,
close frames). Nothing else: no sockets, no timers, no WAMP.

Rules:

* Pure: imports only the standard library (no twisted, autobahn, txaio, socket, time,
  random, asyncio). Inputs are method calls, outputs are return values; the adapter
  owns the connection and writes whatever ``data_to_send()`` returns.
* The connection phase lives in one ``WsState`` enum; the reassembly of a fragmented
  message lives in a second (private) enum. No boolean phase flags.
* The receive path never loops over bytes in Python: frames are located with an
  offset into the received chunk, payloads are unmasked as one big integer XOR, and a
  frame whose bytes are incomplete is kept as a list of chunks that is joined once,
  when enough bytes have arrived (no quadratic re-copying of large messages).
* ``frame_message`` frames a payload once so a broadcast can write the same bytes to
  many connections.
* Extensions (``Sec-WebSocket-Extensions``) are ignored: none is ever negotiated.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TypeAlias

__all__ = [
    "MAX_HEAD_SIZE",
    "Accepted",
    "CloseReceived",
    "ConnectionLost",
    "HttpError",
    "HttpRequest",
    "InvalidStateError",
    "Message",
    "PongReceived",
    "ProtocolError",
    "Rejected",
    "WebSocketServer",
    "WsEvent",
    "WsState",
    "accept_key",
    "frame_message",
    "parse_request_head",
]

MAX_HEAD_SIZE = 16 * 1024
"""Largest HTTP request head (request line + headers + blank line) we buffer."""

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_HEAD_END = b"\r\n\r\n"

_OP_CONT = 0x0
_OP_TEXT = 0x1
_OP_BINARY = 0x2
_OP_CLOSE = 0x8
_OP_PING = 0x9
_OP_PONG = 0xA

_FIN_TEXT = 0x80 | _OP_TEXT
_FIN_BINARY = 0x80 | _OP_BINARY

_H16 = struct.Struct("!BBH")
_H64 = struct.Struct("!BBQ")
_U16 = struct.Struct("!H")
_U64 = struct.Struct("!Q")

# Two-byte headers of small unmasked server frames, indexed by payload length.
_SMALL_TEXT = tuple(bytes((_FIN_TEXT, n)) for n in range(126))
_SMALL_BINARY = tuple(bytes((_FIN_BINARY, n)) for n in range(126))

_STATUS_TEXT = {
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    426: "Upgrade Required",
    431: "Request Header Fields Too Large",
}

_Utf8Decoder = codecs.getincrementaldecoder("utf-8")


class WsState(Enum):
    """Phase of a server-side WebSocket connection."""

    HANDSHAKE = "handshake"  # waiting for / parsing the HTTP upgrade request
    OPEN = "open"  # handshake done, frames flow both ways
    CLOSING = "closing"  # we sent a close frame, waiting for the peer's close
    CLOSED = "closed"  # closing handshake done, rejected, failed, or EOF


class _Assembly(Enum):
    """Which data message, if any, is being reassembled from fragments."""

    NONE = "none"
    TEXT = "text"
    BINARY = "binary"


# ---------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Accepted:
    """The upgrade request was good; the 101 response is queued."""

    subprotocol: str
    path: str  # request path without the query string
    headers: dict[str, str]  # request headers, names lower-cased


@dataclass(frozen=True, slots=True)
class Rejected:
    """The upgrade request was bad; an HTTP error response is queued.

    The adapter writes ``data_to_send()`` and closes the connection.
    """

    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class Message:
    """One complete (reassembled) data message."""

    payload: bytes
    binary: bool


@dataclass(frozen=True, slots=True)
class PongReceived:
    payload: bytes


@dataclass(frozen=True, slots=True)
class CloseReceived:
    """The peer sent a close frame (code 1005 if it carried none).

    If we had not sent a close frame yet, the echo close frame is queued.
    """

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """The peer broke the protocol; a close frame with ``code`` is queued (unless we
    had already sent one). The adapter writes ``data_to_send()`` and closes."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class ConnectionLost:
    """The peer closed the TCP connection (``receive_data(b"")``)."""


WsEvent: TypeAlias = (
    Accepted | Rejected | Message | PongReceived | CloseReceived | ProtocolError | ConnectionLost
)


class InvalidStateError(RuntimeError):
    """An operation was called in a state that does not allow it."""


# ---------------------------------------------------------------------------- HTTP


class HttpError(ValueError):
    """A request head that cannot be served: ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, reason: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason
        self.headers = headers


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A parsed HTTP/1.x request head."""

    method: str
    target: str
    version: str
    headers: dict[str, str]  # names lower-cased; repeated headers joined with ", "
    head_length: int  # bytes of the head including the final CRLF CRLF

    @property
    def path(self) -> str:
        """The request target without the query string."""
        return self.target.split("?", 1)[0]


def parse_request_head(data: bytes, max_size: int = MAX_HEAD_SIZE) -> HttpRequest | None:
    """Parse the HTTP request head at the start of ``data``.

    Returns None while the head is incomplete (no blank line yet). Raises
    ``HttpError`` (431) if the head is, or would be, larger than ``max_size`` and
    ``HttpError`` (400) if it is malformed. Bytes after the head (``head_length``
    onwards) are not looked at.
    """
    end = data.find(_HEAD_END, 0, max_size)
    if end < 0:
        if len(data) >= max_size:
            raise HttpError(431, f"request head larger than {max_size} bytes")
        return None
    lines = data[:end].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0] or not parts[1] or not parts[2].startswith("HTTP/"):
        raise HttpError(400, "malformed HTTP request line")
    return HttpRequest(
        method=parts[0],
        target=parts[1],
        version=parts[2],
        headers=_parse_headers(lines[1:]),
        head_length=end + len(_HEAD_END),
    )


def _parse_headers(lines: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or " " in name or "\t" in name:
            raise HttpError(400, "malformed HTTP header line")
        key = name.lower()
        value = value.strip(" \t")
        if key in headers:
            headers[key] = f"{headers[key]}, {value}"
        else:
            headers[key] = value
    return headers


def _tokens(value: str) -> list[str]:
    return [t.strip() for t in value.split(",") if t.strip()]


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key`` (RFC 6455, 4.2.2)."""
    digest = hashlib.sha1(key.encode("latin-1") + _GUID).digest()
    return base64.b64encode(digest).decode("ascii")


def _check_key(key: str | None) -> None:
    if key is None:
        raise HttpError(400, "missing Sec-WebSocket-Key")
    try:
        raw = base64.b64decode(key.encode("latin-1"), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        raise HttpError(400, "invalid Sec-WebSocket-Key (must be base64 of 16 bytes)")


def _check_request_line(request: HttpRequest, path: str | None) -> None:
    if request.method != "GET":
        raise HttpError(405, f"method {_clip(request.method, 20)} not allowed", (("Allow", "GET"),))
    if request.version != "HTTP/1.1":
        raise HttpError(400, f"unsupported HTTP version {_clip(request.version, 20)}")
    if path is not None and request.path != path:
        raise HttpError(404, f"no WebSocket endpoint at {_clip(request.path, 100)}")


def _check_upgrade(headers: dict[str, str]) -> None:
    upgrade = headers.get("upgrade")
    if upgrade is None:
        raise HttpError(
            426,
            "this endpoint only accepts WebSocket connections",
            (("Upgrade", "websocket"), ("Connection", "Upgrade")),
        )
    if "websocket" not in (t.lower() for t in _tokens(upgrade)):
        raise HttpError(400, f"unsupported Upgrade: {_clip(upgrade, 50)}")
    if "upgrade" not in (t.lower() for t in _tokens(headers.get("connection", ""))):
        raise HttpError(400, "Connection header must contain the token 'upgrade'")
    if headers.get("sec-websocket-version") != "13":
        raise HttpError(
            426, "unsupported Sec-WebSocket-Version (need 13)", (("Sec-WebSocket-Version", "13"),)
        )


def _choose_subprotocol(headers: dict[str, str], supported: Sequence[str]) -> str:
    offered = _tokens(headers.get("sec-websocket-protocol", ""))
    for name in offered:
        if name in supported:
            return name
    raise HttpError(
        400,
        f"unsupported WebSocket subprotocol: offered {_clip('[' + ', '.join(offered) + ']', 100)},"
        f" supported: {', '.join(supported)}",
    )


def _http_response(status: int, headers: Sequence[tuple[str, str]], body: bytes) -> bytes:
    lines = [f"HTTP/1.1 {status} {_STATUS_TEXT.get(status, 'Error')}"]
    lines.extend(f"{name}: {value}" for name, value in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _error_response(error: HttpError) -> bytes:
    body = (error.reason + "\n").encode("utf-8")
    headers = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        ("Connection", "close"),
        *error.headers,
    ]
    return _http_response(error.status, headers, body)


def _switching_protocols(key: str, subprotocol: str) -> bytes:
    return (
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept_key(key)}\r\n"
        f"Sec-WebSocket-Protocol: {subprotocol}\r\n"
        "\r\n"
    ).encode("latin-1")


# ---------------------------------------------------------------------------- frames


def _frame(b0: int, payload: bytes) -> bytes:
    """An unmasked server frame with first byte ``b0``."""
    n = len(payload)
    if n < 126:
        return bytes((b0, n)) + payload
    if n < 0x10000:
        return _H16.pack(b0, 126, n) + payload
    return _H64.pack(b0, 127, n) + payload


def frame_message(payload: bytes, binary: bool) -> bytes:
    """One unmasked, unfragmented server data frame (binary: opcode 2, else 1).

    Encode a broadcast once with this and write the same bytes to many connections.
    """
    n = len(payload)
    if n < 126:
        return (_SMALL_BINARY[n] if binary else _SMALL_TEXT[n]) + payload
    return _frame(_FIN_BINARY if binary else _FIN_TEXT, payload)


def _unmask(mask: bytes, payload: bytes) -> bytes:
    n = len(payload)
    key = (mask * ((n >> 2) + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


def _valid_close_code(code: int) -> bool:
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def _close_payload(code: int, reason: str) -> bytes:
    raw = reason.encode("utf-8")
    if len(raw) > 123:  # cut at a character boundary so the reason stays valid UTF-8
        raw = raw[:123].decode("utf-8", "ignore").encode("utf-8")
    return _U16.pack(code) + raw


class _Failure(Exception):
    """Internal: the peer broke the protocol; fail the connection with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _extended_length(data: bytes, pos: int, end: int, length7: int) -> tuple[int, int]:
    """(payload start, payload length) for a 16/64-bit length, or (-1, bytes needed).

    Only the length bytes need to be there (not the mask), so that the length can be
    checked as early as possible.
    """
    if length7 == 126:
        if end - pos < 4:
            return -1, 4
        return pos + 8, _U16.unpack_from(data, pos + 2)[0]
    if end - pos < 10:
        return -1, 10
    length: int = _U64.unpack_from(data, pos + 2)[0]
    if length >> 63:
        raise _Failure(1002, "64-bit payload length with the most significant bit set")
    return pos + 14, length


def _check_utf8(payload: bytes) -> None:
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        raise _Failure(1007, "text message is not valid UTF-8") from None


def _check_control(b0: int, length: int) -> None:
    opcode = b0 & 0x0F
    if opcode > _OP_PONG:
        raise _Failure(1002, f"unknown opcode {opcode:#x}")
    if b0 < 0x80:
        raise _Failure(1002, "fragmented control frame")
    if length > 125:
        raise _Failure(1002, "control frame payload longer than 125 bytes")


# ---------------------------------------------------------------------------- server


class WebSocketServer:
    """Server side of one WebSocket connection.

    HANDSHAKE: bytes are buffered until the request head is complete (at most
    ``MAX_HEAD_SIZE``), then the upgrade is checked and either ``Accepted`` (101
    queued, state OPEN) or ``Rejected`` (HTTP error queued, state CLOSED) is emitted;
    bytes after the head are frame data. OPEN/CLOSING: client frames are validated
    and turned into events; pings are answered in OPEN only (after our close frame
    nothing more is sent). A peer close in OPEN is echoed with its code (1000 if it
    carried none); in CLOSING it completes the closing handshake. A protocol error
    queues a close frame (in OPEN) and ends in CLOSED. CLOSED ignores further data.
    ``receive_data(b"")`` (EOF) always returns ``[ConnectionLost()]`` and ends in
    CLOSED.
    """

    __slots__ = (
        "_assembly",
        "_decoder",
        "_head",
        "_max",
        "_need",
        "_out",
        "_parts",
        "_path",
        "_size",
        "_stash",
        "_stashed",
        "_subprotocols",
        "state",
        "subprotocol",
    )

    def __init__(
        self, *, path: str | None, subprotocols: Sequence[str], max_message_size: int
    ) -> None:
        self.state = WsState.HANDSHAKE
        self.subprotocol: str | None = None
        self._path = path
        self._subprotocols = tuple(subprotocols)
        self._max = max_message_size
        self._out: list[bytes] = []
        self._head = b""
        # incomplete frame bytes, joined once at least ``_need`` bytes are there
        self._stash: list[bytes] = []
        self._stashed = 0
        self._need = 0
        # fragmented message being reassembled
        self._assembly = _Assembly.NONE
        self._parts: list[bytes] = []
        self._size = 0
        self._decoder: codecs.IncrementalDecoder | None = None

    # ------------------------------------------------------------------ inputs

    def receive_data(self, data: bytes) -> list[WsEvent]:
        """Feed bytes from the peer; ``b""`` means EOF. Returns the resulting events."""
        if not data:
            self._reset_buffers()
            self.state = WsState.CLOSED
            return [ConnectionLost()]
        if self.state is WsState.OPEN or self.state is WsState.CLOSING:
            if self._stash:
                self._stash.append(data)
                self._stashed += len(data)
                if self._stashed < self._need:
                    return []
                data = b"".join(self._stash)
                self._stash = []
            return self._receive_frames(data, [])
        if self.state is WsState.HANDSHAKE:
            return self._receive_handshake(data)
        return []

    def data_to_send(self) -> bytes:
        """Return and clear the bytes queued for the peer."""
        out = self._out
        if not out:
            return b""
        self._out = []
        return out[0] if len(out) == 1 else b"".join(out)

    def send_message(self, payload: bytes, binary: bool) -> bytes:
        """Frame one data message; returns the bytes (they are not queued)."""
        if self.state is not WsState.OPEN:
            raise InvalidStateError(f"cannot send a message in state {self.state.name}")
        return frame_message(payload, binary)

    def ping(self, payload: bytes = b"") -> None:
        """Queue a ping frame (payload at most 125 bytes)."""
        if self.state is not WsState.OPEN:
            raise InvalidStateError(f"cannot ping in state {self.state.name}")
        if len(payload) > 125:
            raise ValueError("ping payload longer than 125 bytes")
        self._out.append(_frame(0x80 | _OP_PING, payload))

    def close(self, code: int, reason: str = "") -> None:
        """Start the closing handshake: queue a close frame, state -> CLOSING.

        In HANDSHAKE there is nothing to send: the state just becomes CLOSED. In
        CLOSING or CLOSED this does nothing.
        """
        if not _valid_close_code(code):
            raise ValueError(f"close code {code} may not be sent")
        if self.state is WsState.OPEN:
            self._out.append(_frame(0x80 | _OP_CLOSE, _close_payload(code, reason)))
            self.state = WsState.CLOSING
        elif self.state is WsState.HANDSHAKE:
            self.state = WsState.CLOSED

    # ------------------------------------------------------------------ handshake

    def _receive_handshake(self, data: bytes) -> list[WsEvent]:
        scan_from = max(0, len(self._head) - 3)
        self._head += data
        head = self._head
        if head.find(_HEAD_END, scan_from) < 0 and len(head) < MAX_HEAD_SIZE:
            return []
        try:
            request = parse_request_head(head)
            if request is None:  # pragma: no cover - excluded by the check above
                return []
            subprotocol = self._negotiate(request)
        except HttpError as error:
            self._head = b""
            self.state = WsState.CLOSED
            self._out.append(_error_response(error))
            return [Rejected(error.status, error.reason)]
        self._head = b""
        self.state = WsState.OPEN
        self.subprotocol = subprotocol
        self._out.append(_switching_protocols(request.headers["sec-websocket-key"], subprotocol))
        events: list[WsEvent] = [Accepted(subprotocol, request.path, request.headers)]
        rest = head[request.head_length :]
        return self._receive_frames(rest, events) if rest else events

    def _negotiate(self, request: HttpRequest) -> str:
        _check_request_line(request, self._path)
        _check_upgrade(request.headers)
        _check_key(request.headers.get("sec-websocket-key"))
        return _choose_subprotocol(request.headers, self._subprotocols)

    # ------------------------------------------------------------------ frames

    def _receive_frames(self, data: bytes, events: list[WsEvent]) -> list[WsEvent]:
        try:
            self._parse_frames(data, events)
        except _Failure as failure:
            self._fail(failure.code, failure.reason, events)
        return events

    def _parse_frames(self, data: bytes, events: list[WsEvent]) -> None:
        pos = 0
        end = len(data)
        while pos < end:
            pos = self._simple_frames(data, pos, end, events)
            if pos >= end:
                return
            step = self._one_frame(data, pos, end, events)
            if step < 0:  # incomplete frame: keep the tail until -step bytes are there
                self._stash = [data[pos:]]
                self._stashed = end - pos
                self._need = -step
                return
            if self.state is WsState.CLOSED:
                return
            pos = step

    def _simple_frames(self, data: bytes, pos: int, end: int, events: list[WsEvent]) -> int:
        """The hot path: consume complete, unfragmented, masked data frames with a 7-bit
        length; return the offset of the first frame that needs the general path."""
        if self._assembly is not _Assembly.NONE:
            return pos
        b1_max = 0x80 | min(self._max, 125)
        append = events.append
        while end - pos >= 6:
            b0 = data[pos]
            b1 = data[pos + 1]
            if not 0x80 <= b1 <= b1_max or (b0 != _FIN_BINARY and b0 != _FIN_TEXT):
                return pos
            start = pos + 6
            stop = start + (b1 & 0x7F)
            if stop > end:
                return pos
            n = stop - start
            key = (data[pos + 2 : start] * ((n >> 2) + 1))[:n]
            payload = (
                int.from_bytes(data[start:stop], "big") ^ int.from_bytes(key, "big")
            ).to_bytes(n, "big")
            if b0 == _FIN_TEXT and not payload.isascii():
                _check_utf8(payload)
            append(Message(payload, b0 == _FIN_BINARY))
            pos = stop
        return pos

    def _one_frame(self, data: bytes, pos: int, end: int, events: list[WsEvent]) -> int:
        """Handle the frame at ``pos`` (any kind); the offset after it, or -(bytes
        needed from ``pos``) if it is incomplete."""
        if end - pos < 2:
            return -2
        b0 = data[pos]
        b1 = data[pos + 1]
        if b1 < 0x80:
            raise _Failure(1002, "client frame is not masked")
        length = b1 & 0x7F
        start = pos + 6
        if length > 125:
            start, length = _extended_length(data, pos, end, length)
            if start < 0:
                return -length
        self._check_frame(b0, length)
        stop = start + length
        if stop > end:
            return pos - stop
        payload = _unmask(data[start - 4 : start], data[start:stop]) if length else b""
        self._on_frame(b0, payload, events)
        return stop

    def _check_frame(self, b0: int, length: int) -> None:
        """Validate a frame header before its payload is buffered."""
        if b0 & 0x70:
            raise _Failure(1002, "reserved bits set (no extension was negotiated)")
        opcode = b0 & 0x0F
        if opcode & 0x08:
            _check_control(b0, length)
            return
        if opcode == _OP_CONT:
            if self._assembly is _Assembly.NONE:
                raise _Failure(1002, "continuation frame without a message in progress")
            length += self._size
        elif opcode <= _OP_BINARY:
            if self._assembly is not _Assembly.NONE:
                raise _Failure(1002, "new data frame while a fragmented message is in progress")
        else:
            raise _Failure(1002, f"unknown opcode {opcode:#x}")
        if length > self._max:
            raise _Failure(1009, f"message larger than {self._max} bytes")

    def _on_frame(self, b0: int, payload: bytes, events: list[WsEvent]) -> None:
        if b0 == _FIN_BINARY:
            events.append(Message(payload, True))
        elif b0 == _FIN_TEXT:
            if not payload.isascii():
                _check_utf8(payload)
            events.append(Message(payload, False))
        elif b0 & 0x08:
            self._on_control(b0 & 0x0F, payload, events)
        else:
            self._on_fragment(b0, payload, events)

    def _on_fragment(self, b0: int, payload: bytes, events: list[WsEvent]) -> None:
        opcode = b0 & 0x0F
        final = b0 >= 0x80
        if opcode == _OP_TEXT:
            self._assembly = _Assembly.TEXT
            self._decoder = _Utf8Decoder()
        elif opcode == _OP_BINARY:
            self._assembly = _Assembly.BINARY
        self._parts.append(payload)
        self._size += len(payload)
        if self._decoder is not None:
            try:
                self._decoder.decode(payload, final)
            except UnicodeDecodeError:
                raise _Failure(1007, "text message is not valid UTF-8") from None
        if final:
            binary = self._assembly is _Assembly.BINARY
            message = b"".join(self._parts)
            self._reset_assembly()
            events.append(Message(message, binary))

    def _on_control(self, opcode: int, payload: bytes, events: list[WsEvent]) -> None:
        if opcode == _OP_PING:
            if self.state is WsState.OPEN:
                self._out.append(_frame(0x80 | _OP_PONG, payload))
        elif opcode == _OP_PONG:
            events.append(PongReceived(payload))
        else:
            self._on_close(payload, events)

    def _on_close(self, payload: bytes, events: list[WsEvent]) -> None:
        code, reason = 1005, ""
        if payload:
            if len(payload) < 2:
                raise _Failure(1002, "close frame with a 1-byte payload")
            code = _U16.unpack_from(payload)[0]
            if not _valid_close_code(code):
                raise _Failure(1002, f"invalid close code {code}")
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                raise _Failure(1002, "close reason is not valid UTF-8") from None
        if self.state is WsState.OPEN:
            echo = 1000 if code == 1005 else code
            self._out.append(_frame(0x80 | _OP_CLOSE, _U16.pack(echo)))
        self.state = WsState.CLOSED
        self._reset_buffers()
        events.append(CloseReceived(code, reason))

    def _fail(self, code: int, reason: str, events: list[WsEvent]) -> None:
        if self.state is WsState.OPEN:
            self._out.append(_frame(0x80 | _OP_CLOSE, _close_payload(code, reason)))
        self.state = WsState.CLOSED
        self._reset_buffers()
        events.append(ProtocolError(code, reason))

    def _reset_assembly(self) -> None:
        self._assembly = _Assembly.NONE
        self._parts = []
        self._size = 0
        self._decoder = None

    def _reset_buffers(self) -> None:
        self._head = b""
        self._stash = []
        self._stashed = 0
        self._need = 0
        self._reset_assembly()
