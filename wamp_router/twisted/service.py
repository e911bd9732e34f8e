"""The composition root: build the driver and one listening endpoint per
configured listener; stop gracefully (GOODBYE to every session first)."""

from __future__ import annotations

import os
from typing import Any

from twisted.internet import defer, task
from twisted.internet.endpoints import TCP4ServerEndpoint, TCP6ServerEndpoint, UNIXServerEndpoint
from twisted.internet.protocol import Factory

from ..config.model import Listener, NodeConfig, TcpEndpoint, UnixEndpoint
from .base import log
from .driver import Driver
from .rawsocket import WampRawSocketFactory
from .websocket import WampWebSocketFactory

SHUTDOWN_GRACE = 3.0  # seconds to wait for peers to answer GOODBYE


def _endpoint(reactor: Any, listener: Listener) -> Any:
    ep = listener.endpoint
    if isinstance(ep, UnixEndpoint):
        if os.path.exists(ep.path):
            os.unlink(ep.path)  # a stale socket file from an earlier run
        return UNIXServerEndpoint(reactor, ep.path)  # type: ignore[no-untyped-call]
    assert isinstance(ep, TcpEndpoint)
    if ":" in ep.host:
        return TCP6ServerEndpoint(reactor, ep.port, interface=ep.host)  # type: ignore[no-untyped-call]
    return TCP4ServerEndpoint(reactor, ep.port, interface=ep.host)  # type: ignore[no-untyped-call]


def _address(listener: Listener, port: Any) -> str:
    if isinstance(listener.endpoint, UnixEndpoint):
        return f"unix:{listener.endpoint.path}"
    addr = port.getHost()
    host = addr.host
    host = f"[{host}]" if ":" in host else host
    if listener.transport == "websocket":
        return f"ws://{host}:{addr.port}{listener.path}"
    return f"rawsocket://{host}:{addr.port}"


class RouterNode:
    def __init__(self, config: NodeConfig, reactor: Any) -> None:
        self.config = config
        self.reactor = reactor
        self.driver = Driver(config, reactor)
        self.ports: list[tuple[Listener, Any]] = []

    def _factory(self, listener: Listener) -> Factory:
        if listener.transport == "websocket":
            return WampWebSocketFactory(self.driver, listener, self.reactor)
        return WampRawSocketFactory(self.driver, listener, self.reactor)

    @defer.inlineCallbacks
    def start(self) -> Any:
        for listener in self.config.listeners:
            port = yield _endpoint(self.reactor, listener).listen(self._factory(listener))
            self.ports.append((listener, port))
            log.info("listening transport={transport} address={address} serializers={sers}",
                     transport=listener.transport, address=_address(listener, port),
                     sers=",".join(listener.serializers))
        realms = ",".join(r.name for r in self.config.realms)
        log.info("router started config={source} realms={realms}",
                 source=self.config.source, realms=realms)

    @defer.inlineCallbacks
    def stop(self) -> Any:
        log.info("router shutting down sessions={n}", n=self.driver.connection_count())
        for _, port in self.ports:
            yield port.stopListening()
        self.driver.shutdown()
        waited = 0.0
        while self.driver.connection_count() and waited < SHUTDOWN_GRACE:
            yield task.deferLater(self.reactor, 0.05, lambda: None)
            waited += 0.05
        self.driver.abort_all()
        log.info("router stopped")
