"""TCP_NODELAY and TCP keep-alive reach the accepted socket also when the listener
has TLS, where the WAMP protocol's transport is Twisted's TLS wrapper
(``TLSMemoryBIOProtocol``), not the TCP connection: ``tune_socket`` goes through the
wrapper, which forwards ``setTcpNoDelay`` / ``setTcpKeepAlive`` to the TCP transport
underneath (``ProtocolWrapper.__getattr__``).

Real sockets on 127.0.0.1 and a private reactor instance (never the global one, never
``run()``): a client thread connects (TLS handshake, then the RawSocket handshake) while
the test iterates the reactor, then reads the options off the server-side socket.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import tcp
from twisted.internet.selectreactor import SelectReactor

from tests.integration.test_auth_advanced import self_signed
from wamp_router.config.loader import load_config_text
from wamp_router.config.model import Tls
from wamp_router.twisted import tls
from wamp_router.twisted.driver import Driver
from wamp_router.twisted.rawsocket import WampRawSocketFactory
from wamp_router.twisted.websocket import WampWebSocketFactory

CONFIG = """
[[listeners]]
transport = "{transport}"
endpoint = "127.0.0.1:0"

[[realms]]
name = "realm1"
[[realms.roles]]
name = "anonymous"
"""

RAWSOCKET_HELLO = b"\x7f\xf1\x00\x00"  # max length 2**24, JSON


def tcp_connection(transport: Any) -> tcp.Connection:
    """The TCP connection under any wrappers (the TLS one has it as .transport)."""
    while not isinstance(transport, tcp.Connection):
        transport = transport.transport
    return transport


def client(port: int, use_tls: bool, rawsocket: bool, done: dict[str, Any]) -> None:
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if use_tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE  # a throw-away self-signed certificate
            sock = ctx.wrap_socket(sock)  # the handshake happens here
            done["tls"] = sock.version()
        if rawsocket:
            sock.sendall(RAWSOCKET_HELLO)
            done["reply"] = sock.recv(4)
        done["sock"] = sock
    except Exception as exc:  # reported by the test
        done["error"] = exc
    finally:
        done["finished"] = True


def listen(reactor: SelectReactor, transport: str, use_tls: bool,
           tmp_path: Path) -> tuple[Any, list[Any]]:
    """A listener as the router makes it (the factory, TLS-wrapped or not) on a free
    port; returns the port and the list the protocols it builds are appended to."""
    config = load_config_text(CONFIG.format(transport=transport), "<test>")
    listener = config.listeners[0]
    factory_class = WampRawSocketFactory if transport == "rawsocket" else WampWebSocketFactory
    factory = factory_class(Driver(config, reactor), listener, reactor)
    protocols: list[Any] = []
    build = factory.buildProtocol

    def build_and_keep(addr: Any) -> Any:
        protocols.append(build(addr))
        return protocols[-1]

    factory.buildProtocol = build_and_keep  # type: ignore[method-assign]
    settings = None
    if use_tls:
        cert, key = self_signed(tmp_path)
        settings = Tls(certificate=str(cert), key=str(key))
    wrapped = tls.wrap(factory, settings)
    if use_tls:
        wrapped._clock = reactor  # it flushes small writes with callLater(0) on this clock
    return reactor.listenTCP(0, wrapped, interface="127.0.0.1"), protocols


@pytest.mark.parametrize("use_tls", [True, False], ids=["tls", "plain"])
@pytest.mark.parametrize("transport", ["rawsocket", "websocket"])
def test_nodelay_and_keepalive_on_the_accepted_socket(tmp_path: Path, transport: str,
                                                      use_tls: bool) -> None:
    reactor = SelectReactor()
    port, protocols = listen(reactor, transport, use_tls, tmp_path)
    done: dict[str, Any] = {}
    thread = threading.Thread(target=client, daemon=True,
                              args=(port.getHost().port, use_tls, transport == "rawsocket", done))
    thread.start()
    try:
        deadline = time.monotonic() + 15
        # the client may be done (plain, websocket: it only connects) before the
        # reactor has accepted the connection
        while not (done.get("finished") and protocols) and time.monotonic() < deadline:
            reactor.iterate(0.01)
        assert done.get("finished"), "the client did not finish within 15 s"
        assert "error" not in done, done.get("error")
        if use_tls:
            assert done["tls"] in ("TLSv1.2", "TLSv1.3")
        if transport == "rawsocket":
            assert done["reply"][:1] == b"\x7f"  # the router answered the handshake
        [proto] = protocols
        assert (type(proto.transport).__module__ == "twisted.protocols.tls") is use_tls
        sock = tcp_connection(proto.transport).getHandle()
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0
    finally:
        if "sock" in done:
            done["sock"].close()
        thread.join(5)
        port.stopListening()
        for proto in protocols:
            tcp_connection(proto.transport).loseConnection()
        for _ in range(20):
            reactor.iterate(0)
