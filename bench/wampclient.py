"""Minimal, fast WAMP v2 client for load generation (asyncio, optional uvloop).

Only what the benchmark needs: WebSocket client framing (masked, as RFC 6455
requires) and RawSocket framing, the json (orjson), msgpack and cbor
serializers, and the WAMP messages of the basic profile used by the workloads.
It is written for speed: callbacks instead of coroutines on the hot path, no
per-message allocation beyond the decoded message itself.

It is deliberately not a general WAMP client: no authentication (anonymous
only), no progressive results, no cancel, no payload passthru.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from random import randbytes
from typing import Any
from urllib.parse import urlparse

# WAMP message codes
HELLO, WELCOME, ABORT, GOODBYE, ERROR = 1, 2, 3, 6, 8
PUBLISH, PUBLISHED, SUBSCRIBE, SUBSCRIBED = 16, 17, 32, 33
EVENT, CALL, RESULT, REGISTER, REGISTERED = 36, 48, 50, 64, 65
INVOCATION, YIELD = 68, 70

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class ProtocolError(Exception):
    """The peer broke the transport or WAMP protocol, or refused us."""


# --------------------------------------------------------------------------- serializers


@dataclass(frozen=True)
class Serializer:
    name: str
    ws_subprotocol: str
    rawsocket_id: int
    binary: bool
    dumps: Callable[[Any], bytes]
    loads: Callable[[bytes], Any]


def get_serializer(name: str) -> Serializer:
    if name == "json":
        import orjson

        return Serializer("json", "wamp.2.json", 1, False, orjson.dumps, orjson.loads)
    if name == "msgpack":
        import msgpack

        packer = msgpack.Packer(use_bin_type=True)

        def mp_loads(b: bytes) -> Any:
            return msgpack.unpackb(b, raw=False, strict_map_key=False)

        return Serializer("msgpack", "wamp.2.msgpack", 2, True, packer.pack, mp_loads)
    if name == "cbor":
        import cbor2

        return Serializer("cbor", "wamp.2.cbor", 3, True, cbor2.dumps, cbor2.loads)
    raise ValueError(f"unknown serializer {name!r} (json, msgpack, cbor)")


# --------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class Target:
    kind: str  # "ws" or "raw"
    host: str
    port: int
    path: str = "/"

    @classmethod
    def from_url(cls, url: str) -> Target:
        u = urlparse(url)
        if u.scheme != "ws":
            raise ValueError(f"only ws:// URLs are supported, got {url!r}")
        return cls("ws", u.hostname or "127.0.0.1", u.port or 80, u.path or "/")

    @classmethod
    def from_hostport(cls, hp: str) -> Target:
        host, _, port = hp.rpartition(":")
        return cls("raw", host or "127.0.0.1", int(port))

    def describe(self) -> str:
        if self.kind == "ws":
            return f"ws://{self.host}:{self.port}{self.path}"
        return f"rawsocket://{self.host}:{self.port}"


# --------------------------------------------------------------------------- framing


def _mask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    if n == 0:
        return payload
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


class _Conn(asyncio.Protocol):
    """Common part of both transports: one instance per TCP connection."""

    def __init__(self, ser: Serializer, on_message: Callable[[Any], None]) -> None:
        self.ser = ser
        self.loads = ser.loads
        self.dumps = ser.dumps
        self.on_message = on_message
        self.on_lost: Callable[[BaseException | None], None] | None = None
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.is_open = False
        self.loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[bool] = self.loop.create_future()
        self.closed: asyncio.Future[bool] = self.loop.create_future()
        self.wbuf: list[bytes] = []  # frames queued in this loop iteration

    def queue(self, frame: bytes) -> None:
        """Queue a frame; all frames queued in one loop iteration go out in one write."""
        if not self.wbuf:
            self.loop.call_soon(self.flush)
        self.wbuf.append(frame)

    def flush(self) -> None:
        wbuf = self.wbuf
        if not wbuf:
            return
        self.wbuf = []
        t = self.transport
        if t is not None and not t.is_closing():
            t.write(wbuf[0] if len(wbuf) == 1 else b"".join(wbuf))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self.send_handshake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.is_open = False
        if not self.opened.done():
            self.opened.set_exception(ProtocolError(f"connection lost during handshake: {exc}"))
        if not self.closed.done():
            self.closed.set_result(True)
        if self.on_lost is not None:
            self.on_lost(exc)

    def fail(self, why: str) -> None:
        if not self.opened.done():
            self.opened.set_exception(ProtocolError(why))
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        self.flush()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def send_handshake(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def send(self, msg: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class WsConn(_Conn):
    """RFC 6455 client: HTTP upgrade, masked frames out, unmasked frames in."""

    def __init__(
        self, ser: Serializer, on_message: Callable[[Any], None], target: Target, zero_mask: bool
    ) -> None:
        super().__init__(ser, on_message)
        self.target = target
        self.key = base64.b64encode(os.urandom(16))
        self.opcode = 0x82 if ser.binary else 0x81
        self.zero_mask = zero_mask
        self.frag: list[bytes] = []

    def send_handshake(self) -> None:
        t = self.target
        req = (
            f"GET {t.path} HTTP/1.1\r\n"
            f"Host: {t.host}:{t.port}\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {self.key.decode()}\r\n"
            "Sec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Protocol: {self.ser.ws_subprotocol}\r\n"
            "\r\n"
        )
        assert self.transport is not None
        self.transport.write(req.encode())

    def _handshake_reply(self, data: bytes) -> bytes | None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > 65536:
                self.fail("oversized HTTP upgrade response")
            return None
        head, rest = self.buf[:end].decode("latin-1"), self.buf[end + 4 :]
        self.buf = b""
        lines = head.split("\r\n")
        if " 101 " not in lines[0] + " ":
            self.fail(f"WebSocket upgrade refused: {lines[0]!r}")
            return None
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        accept = base64.b64encode(hashlib.sha1(self.key + WS_GUID).digest()).decode()
        if hdrs.get("sec-websocket-accept") != accept:
            self.fail("bad Sec-WebSocket-Accept")
            return None
        if hdrs.get("sec-websocket-protocol") != self.ser.ws_subprotocol:
            self.fail(
                f"server did not accept subprotocol {self.ser.ws_subprotocol} "
                f"(got {hdrs.get('sec-websocket-protocol')!r})"
            )
            return None
        self.is_open = True
        self.opened.set_result(True)
        return rest

    def data_received(self, data: bytes) -> None:  # noqa: C901 (hot path, kept flat)
        if not self.is_open:
            rest = self._handshake_reply(data)
            if not rest:
                return
            data = rest
        buf = self.buf + data if self.buf else data
        pos, n = 0, len(buf)
        while n - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            ln, hl = b1 & 0x7F, 2
            if ln == 126:
                if n - pos < 4:
                    break
                ln, hl = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif ln == 127:
                if n - pos < 10:
                    break
                ln, hl = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            if b1 & 0x80:  # server frames must not be masked; tolerate anyway
                hl += 4
            end = pos + hl + ln
            if end > n:
                break
            payload = buf[pos + hl : end]
            if b1 & 0x80:
                payload = _mask(payload, buf[pos + hl - 4 : pos + hl])
            pos = end
            op = b0 & 0x0F
            if op == 1 or op == 2:
                if b0 & 0x80:
                    self.on_message(self.loads(payload))
                else:
                    self.frag = [payload]
            else:
                self._other_frame(b0, op, payload)
        self.buf = buf[pos:]

    def _other_frame(self, b0: int, op: int, payload: bytes) -> None:
        if op == 0:
            self.frag.append(payload)
            if b0 & 0x80:
                msg, self.frag = b"".join(self.frag), []
                self.on_message(self.loads(msg))
        elif op == 9:
            self._send_frame(0x8A, payload)
        elif op == 8:
            if self.transport is not None and not self.transport.is_closing():
                self._send_frame(0x88, payload[:2])
                self.close()
        # op == 10 (pong): ignore

    def _send_frame(self, b0: int, payload: bytes) -> None:
        n = len(payload)
        if n < 126:
            head = bytes((b0, 0x80 | n))
        elif n < 65536:
            head = struct.pack("!BBH", b0, 0xFE, n)
        else:
            head = struct.pack("!BBQ", b0, 0xFF, n)
        if self.zero_mask:
            self.queue(head + b"\x00\x00\x00\x00" + payload)
        else:
            key = randbytes(4)
            self.queue(head + key + _mask(payload, key))

    def send(self, msg: Any) -> None:
        self._send_frame(self.opcode, self.dumps(msg))

    def send_close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self._send_frame(0x88, struct.pack("!H", 1000))


class RawConn(_Conn):
    """WAMP RawSocket: 4-byte handshake, then 4-byte headers (type + 24-bit length)."""

    MAX_LEN_EXP = 0xF  # 2**24 bytes

    def send_handshake(self) -> None:
        assert self.transport is not None
        self.transport.write(bytes((0x7F, (self.MAX_LEN_EXP << 4) | self.ser.rawsocket_id, 0, 0)))

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        pos, n = 0, len(buf)
        if not self.is_open:
            if n < 4:
                self.buf = buf
                return
            if buf[0] != 0x7F:
                self.fail(f"not a RawSocket server (first byte {buf[0]:#x})")
                return
            if buf[1] & 0x0F != self.ser.rawsocket_id:
                code = buf[1] >> 4
                self.fail(f"RawSocket handshake refused (error code {code}) for {self.ser.name}")
                return
            self.is_open = True
            self.opened.set_result(True)
            pos = 4
        while n - pos >= 4:
            h = int.from_bytes(buf[pos : pos + 4], "big")
            end = pos + 4 + (h & 0xFFFFFF)
            if end > n:
                break
            payload = buf[pos + 4 : end]
            pos = end
            typ = (h >> 24) & 0x07
            if typ == 0:
                self.on_message(self.loads(payload))
            elif typ == 1:  # ping -> pong
                self._write_frame(2, payload)
        self.buf = buf[pos:]

    def _write_frame(self, typ: int, payload: bytes) -> None:
        self.queue(((typ << 24) | len(payload)).to_bytes(4, "big") + payload)

    def send(self, msg: Any) -> None:
        p = self.dumps(msg)
        self.queue(len(p).to_bytes(4, "big") + p)

    def send_close(self) -> None:
        pass


# --------------------------------------------------------------------------- session

ROLES = {
    "caller": {"features": {}},
    "callee": {"features": {"shared_registration": True}},
    "publisher": {"features": {}},
    "subscriber": {"features": {}},
}


class Session:
    """One WAMP session. Subclasses override `on_app_message` for the hot path.

    Control-plane requests (subscribe/register/goodbye) are awaitable; data-plane
    messages are handled by callbacks in subclasses.
    """

    def __init__(self) -> None:
        self.conn: _Conn | None = None
        self.session_id: int | None = None
        self.welcomed: asyncio.Future[int] | None = None
        self.goodbye: asyncio.Future[bool] | None = None
        self.pending: dict[tuple[int, int], asyncio.Future[Any]] = {}
        self.next_req = 1
        self.errors = 0
        self.lost = False

    # -- plumbing
    def on_message(self, msg: Any) -> None:
        code = msg[0]
        if code == WELCOME:
            self.session_id = msg[1]
            if self.welcomed is not None and not self.welcomed.done():
                self.welcomed.set_result(msg[1])
        elif code == ABORT:
            if self.welcomed is not None and not self.welcomed.done():
                self.welcomed.set_exception(ProtocolError(f"ABORT {msg[2]}: {msg[1]}"))
            self.close()
        elif code == GOODBYE:
            if self.goodbye is not None and not self.goodbye.done():
                self.goodbye.set_result(True)
            else:  # router-initiated: answer
                self.send([GOODBYE, {}, "wamp.close.goodbye_and_out"])
            self.close()
        elif code in (SUBSCRIBED, REGISTERED, PUBLISHED):
            fut = self.pending.pop((code, msg[1]), None)
            if fut is not None and not fut.done():
                fut.set_result(msg[2])
        elif code == ERROR:
            self.on_error(msg)
        else:
            self.on_app_message(msg)

    def on_error(self, msg: Any) -> None:
        reply = {SUBSCRIBE: SUBSCRIBED, REGISTER: REGISTERED, PUBLISH: PUBLISHED}.get(msg[1])
        fut = self.pending.pop((reply, msg[2]), None) if reply else None
        if fut is not None and not fut.done():
            fut.set_exception(ProtocolError(f"{msg[4]} {msg[5:] if len(msg) > 5 else ''}"))
        else:
            self.errors += 1

    def on_app_message(self, msg: Any) -> None:
        """Data-plane message (EVENT, RESULT, INVOCATION...). Override."""

    def on_lost(self, exc: BaseException | None) -> None:
        self.lost = True
        for fut in (self.welcomed, self.goodbye):
            if fut is not None and not fut.done():
                fut.set_exception(ProtocolError(f"connection lost: {exc}"))
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(ProtocolError(f"connection lost: {exc}"))
        self.pending.clear()

    def send(self, msg: Any) -> None:
        assert self.conn is not None
        self.conn.send(msg)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()

    def _request(self, reply_code: int, msg: list[Any]) -> asyncio.Future[Any]:
        req = self.next_req
        self.next_req += 1
        msg[1] = req
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[(reply_code, req)] = fut
        self.send(msg)
        return fut

    # -- control plane
    async def join(self, realm: str) -> int:
        self.welcomed = asyncio.get_running_loop().create_future()
        self.send([HELLO, realm, {"roles": ROLES, "agent": "wampbench"}])
        return await self.welcomed

    def subscribe(self, topic: str, options: dict[str, Any] | None = None) -> asyncio.Future[Any]:
        return self._request(SUBSCRIBED, [SUBSCRIBE, 0, options or {}, topic])

    def register(self, proc: str, options: dict[str, Any] | None = None) -> asyncio.Future[Any]:
        return self._request(REGISTERED, [REGISTER, 0, options or {}, proc])

    async def leave(self, timeout: float = 2.0) -> None:
        """GOODBYE handshake, then close the transport (WebSocket close frame first)."""
        conn = self.conn
        if conn is None or self.lost:
            return
        self.goodbye = asyncio.get_running_loop().create_future()
        try:
            self.send([GOODBYE, {}, "wamp.close.system_shutdown"])
            await asyncio.wait_for(self.goodbye, timeout)
        except (TimeoutError, ProtocolError, ConnectionError):
            pass
        if isinstance(conn, WsConn | RawConn):
            conn.send_close()
        conn.close()


async def connect(
    target: Target,
    ser: Serializer,
    session: Session,
    realm: str,
    *,
    zero_mask: bool = False,
    timeout: float = 10.0,
) -> Session:
    """Open the transport, do the transport handshake and HELLO/WELCOME."""
    loop = asyncio.get_running_loop()

    def factory() -> _Conn:
        if target.kind == "ws":
            return WsConn(ser, session.on_message, target, zero_mask)
        return RawConn(ser, session.on_message)

    async def _go() -> Session:
        _, conn = await loop.create_connection(factory, target.host, target.port)
        assert isinstance(conn, _Conn)
        session.conn = conn
        conn.on_lost = session.on_lost
        await conn.opened
        await session.join(realm)
        return session

    try:
        return await asyncio.wait_for(_go(), timeout)
    except BaseException:
        session.close()
        raise


def install_fast_loop() -> str:
    """Use uvloop when it is installed; return the loop's name."""
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"
