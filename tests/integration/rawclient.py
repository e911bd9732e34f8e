"""Minimal blocking WAMP peers over plain sockets, for sending what real
client libraries refuse to send (bad URIs, malformed frames, garbage)."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
from typing import Any

import cbor2
import msgpack

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
HELLO_ROLES = {"roles": {"caller": {}, "callee": {}, "publisher": {}, "subscriber": {}}}


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


class WsPeer:
    """A WebSocket client speaking one WAMP subprotocol."""

    def __init__(self, port: int, path: str = "/ws", protocol: str | None = "wamp.2.json",
                 host: str = "127.0.0.1", timeout: float = 5) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        if protocol:
            lines.append(f"Sec-WebSocket-Protocol: {protocol}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            head += chunk
        self.response, _, self._buf = head.partition(b"\r\n\r\n")
        self.status = int(self.response.split(b" ", 2)[1]) if self.response else 0
        self.protocol = protocol

    def send_frame(self, payload: bytes, opcode: int = 1, fin: bool = True) -> None:
        mask = os.urandom(4)
        n = len(payload)
        b0 = (0x80 if fin else 0) | opcode
        if n < 126:
            head = struct.pack("!BB", b0, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", b0, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", b0, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if n < 4096 else (
            (int.from_bytes(payload, "big") ^ int.from_bytes((mask * (n // 4 + 1))[:n], "big"))
            .to_bytes(n, "big"))
        self.sock.sendall(head + mask + masked)

    def _read(self, n: int) -> bytes:
        while len(self._buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self._buf += chunk
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def recv_frame(self) -> tuple[int, bytes]:
        b0, b1 = self._read(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._read(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read(8))[0]
        return b0 & 0x0F, self._read(n)

    def send(self, msg: list[Any]) -> None:
        if self.protocol == "wamp.2.msgpack":
            self.send_frame(msgpack.packb(msg), opcode=2)
        elif self.protocol == "wamp.2.cbor":
            self.send_frame(cbor2.dumps(msg), opcode=2)
        else:
            self.send_frame(json.dumps(msg).encode())

    def recv(self) -> list[Any]:
        """The next WAMP message (skipping pings); raises on a close frame."""
        while True:
            opcode, payload = self.recv_frame()
            if opcode == 8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                raise WsClosed(code, payload[2:].decode("utf-8", "replace"))
            if opcode in (1, 2):
                if self.protocol == "wamp.2.msgpack":
                    return msgpack.unpackb(payload)  # type: ignore[no-any-return]
                if self.protocol == "wamp.2.cbor":
                    return cbor2.loads(payload)  # type: ignore[no-any-return]
                return json.loads(payload)  # type: ignore[no-any-return]

    def hello(self, realm: str = "realm1", **details: Any) -> list[Any]:
        self.send([1, realm, {**HELLO_ROLES, **details}])
        return self.recv()

    def close(self) -> None:
        self.sock.close()


class WsClosed(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


class RsPeer:
    """A RawSocket client (JSON unless told otherwise)."""

    def __init__(self, port: int, serializer: int = 1, length_code: int = 15,
                 host: str = "127.0.0.1", handshake: bytes | None = None,
                 timeout: float = 5, unix: str | None = None) -> None:
        if unix:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(unix)
        else:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        self.serializer = serializer
        if handshake is None:
            handshake = bytes([0x7F, (length_code << 4) | serializer, 0, 0])
        self.sock.sendall(handshake)
        self.reply = _recv_exact(self.sock, 4) if handshake[:1] == b"\x7f" else b""

    def send_raw(self, frame_type: int, payload: bytes) -> None:
        self.sock.sendall(struct.pack("!I", (frame_type << 24) | len(payload)) + payload)

    def send(self, msg: list[Any]) -> None:
        data = {1: lambda m: json.dumps(m).encode(), 2: msgpack.packb, 3: cbor2.dumps}[
            self.serializer](msg)
        self.send_raw(0, data)

    def recv_frame(self) -> tuple[int, bytes]:
        head = struct.unpack("!I", _recv_exact(self.sock, 4))[0]
        return head >> 24, _recv_exact(self.sock, head & 0xFFFFFF)

    def recv(self) -> list[Any]:
        while True:
            ftype, payload = self.recv_frame()
            if ftype == 0:
                return {1: json.loads, 2: msgpack.unpackb, 3: cbor2.loads}[self.serializer](payload)

    def hello(self, realm: str = "realm1", **details: Any) -> list[Any]:
        self.send([1, realm, {**HELLO_ROLES, **details}])
        return self.recv()

    def close(self) -> None:
        self.sock.close()


def is_closed(sock: socket.socket, timeout: float = 3) -> bool:
    """True when the peer closed the connection (EOF) within ``timeout``."""
    sock.settimeout(timeout)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
