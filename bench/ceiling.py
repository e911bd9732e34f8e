#!/usr/bin/env python3
"""Bare Twisted echo servers: the ceiling of the Python/Twisted stack, no WAMP logic.

One process (one core), two listeners:

* an autobahn WebSocket echo (accepts any offered subprotocol, e.g. wamp.2.json,
  and echoes each message as it came: text or binary);
* a plain 4-byte length-prefix echo in the RawSocket layout (type byte + 24-bit
  length). It answers the 4-byte RawSocket handshake so the same client can be
  pointed at it, then echoes every frame as-is.

Drive it with the `echo` workload of wampbench (M connections x k in flight):

    python bench/ceiling.py --ws-port 19100 --raw-port 19101 &
    python bench/wampbench.py --url ws://127.0.0.1:19100/ws --workload echo --callers 10 --router-pid $!
    python bench/wampbench.py --rawsocket 127.0.0.1:19101 --workload echo --callers 10 --router-pid $!

One WAMP call is two echoes' worth of transport work (CALL in + INVOCATION out,
YIELD in + RESULT out), so the RPC ceiling for M sequential callers is about
echo msgs/s at M connections / 2. compare.py --ceiling does this arithmetic.

Needs Twisted and autobahn: run it with the project's venv (autobahn is in the
`test` extra) or with the Crossbar venv that compare.py creates.
"""

from __future__ import annotations

import argparse
import os
import sys


def _install_reactor(name: str) -> None:
    if name == "asyncio":
        import asyncio

        from twisted.internet import asyncioreactor

        asyncioreactor.install(asyncio.new_event_loop())
    elif name == "epoll":
        from twisted.internet import epollreactor

        epollreactor.install()


def whole_frames(buf: bytes, pos: int) -> int:
    """End offset of the complete 4-byte-header frames in buf starting at pos."""
    n = len(buf)
    while n - pos >= 4:
        end = pos + 4 + (int.from_bytes(buf[pos : pos + 4], "big") & 0xFFFFFF)
        if end > n:
            break
        pos = end
    return pos


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="bare Twisted echo servers (stack ceiling)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--ws-port", type=int, default=19100)
    p.add_argument("--raw-port", type=int, default=19101)
    p.add_argument("--reactor", default="epoll", choices=["epoll", "asyncio", "default"])
    p.add_argument("--backlog", type=int, default=4096)
    a = p.parse_args(argv)
    _install_reactor(a.reactor)

    from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
    from twisted.internet import protocol, reactor

    class WsEcho(WebSocketServerProtocol):
        def onConnect(self, request):
            return request.protocols[0] if request.protocols else None

        def onMessage(self, payload, isBinary):
            self.sendMessage(payload, isBinary)

    class RawEcho(protocol.Protocol):
        def connectionMade(self) -> None:
            self.buf = b""
            self.shook = False
            self.transport.setTcpNoDelay(True)

        def dataReceived(self, data: bytes) -> None:
            buf = self.buf + data if self.buf else data
            start = 0
            if not self.shook:
                if len(buf) < 4:
                    self.buf = buf
                    return
                if buf[0] == 0x7F:  # RawSocket handshake: accept whatever was asked
                    self.transport.write(buf[:4])
                    start = 4
                self.shook = True
            pos = whole_frames(buf, start)
            if pos > start:
                self.transport.write(buf[start:pos])  # echo whole frames as they came
            self.buf = buf[pos:]

    wsf = WebSocketServerFactory(f"ws://{a.host}:{a.ws_port}")
    wsf.protocol = WsEcho
    wsf.setProtocolOptions(openHandshakeTimeout=30, closeHandshakeTimeout=5)
    rawf = protocol.Factory.forProtocol(RawEcho)
    reactor.listenTCP(a.ws_port, wsf, backlog=a.backlog, interface=a.host)
    reactor.listenTCP(a.raw_port, rawf, backlog=a.backlog, interface=a.host)
    print(
        f"ceiling echo pid={os.getpid()} ws://{a.host}:{a.ws_port}/ws raw={a.host}:{a.raw_port}",
        flush=True,
    )
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
