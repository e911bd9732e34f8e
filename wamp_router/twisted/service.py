"""The composition root: build the driver and one listening endpoint per
configured listener; stop gracefully (GOODBYE to every session first)."""

from __future__ import annotations

import os
import socket
from typing import Any

from twisted.internet import defer, task
from twisted.internet.endpoints import TCP4ServerEndpoint, TCP6ServerEndpoint, UNIXServerEndpoint
from twisted.web.resource import Resource

from ..config.model import Listener, Metrics, NodeConfig, TcpEndpoint, UnixEndpoint
from . import tls
from .base import WampFactory, log
from .driver import Driver
from .rawsocket import WampRawSocketFactory
from .websocket import WampWebSocketFactory

SHUTDOWN_GRACE = 3.0  # seconds to wait for peers to answer GOODBYE
BACKLOG = 1024  # listen backlog: connection storms must not stall in SYN retries


def _endpoint(reactor: Any, listener: Listener) -> Any:
    ep = listener.endpoint
    if isinstance(ep, UnixEndpoint):
        if os.path.exists(ep.path):
            os.unlink(ep.path)  # a stale socket file from an earlier run
        return UNIXServerEndpoint(reactor, ep.path, backlog=BACKLOG)
    assert isinstance(ep, TcpEndpoint)
    if ":" in ep.host:
        return TCP6ServerEndpoint(reactor, ep.port, backlog=BACKLOG, interface=ep.host)
    return TCP4ServerEndpoint(reactor, ep.port, backlog=BACKLOG, interface=ep.host)


def _address(listener: Listener, port: Any) -> str:
    if isinstance(listener.endpoint, UnixEndpoint):
        return f"unix:{listener.endpoint.path}"
    addr = port.getHost()
    host = addr.host
    host = f"[{host}]" if ":" in host else host
    secure = "s" if listener.tls is not None else ""
    if listener.transport == "websocket":
        return f"ws{secure}://{host}:{addr.port}{listener.path}"
    return f"rawsocket{'+tls' if secure else ''}://{host}:{addr.port}"


def _listener_key(listener: Listener) -> tuple[str, str]:
    ep = listener.endpoint
    where = f"unix:{ep.path}" if isinstance(ep, UnixEndpoint) else f"{ep.host}:{ep.port}"
    return listener.transport, where


def _shared_port(reactor: Any, listener: Listener, factory: Any) -> Any:
    """Listen on a TCP port that other worker processes listen on too (SO_REUSEPORT)."""
    ep = listener.endpoint
    assert isinstance(ep, TcpEndpoint)
    family = socket.AF_INET6 if ":" in ep.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((ep.host, ep.port))
        sock.listen(BACKLOG)
        sock.setblocking(False)
        return reactor.adoptStreamPort(sock.fileno(), family, factory)
    finally:
        sock.close()  # the reactor holds its own duplicate of the descriptor


class RouterNode:
    def __init__(self, config: NodeConfig, reactor: Any, worker: int | None = None) -> None:
        self.config = config
        self.reactor = reactor
        self.worker = worker  # the index of this worker (wamp-router --workers)
        self.driver = Driver(config, reactor)
        self.backplane: Any = None
        if config.cluster is not None:
            from ..cluster.redis import RedisBackplane

            self.backplane = RedisBackplane(
                config.cluster, reactor, self.driver,
                lambda: list(self.driver.router.realms), self.driver.interests)
            self.driver.cluster = self.backplane
            self.driver.router.node_id = self.backplane.node_id
        # listener key -> (listener, factory, listening port)
        self.ports: dict[tuple[str, str], tuple[Listener, Any, Any]] = {}
        self.metrics_port: Any = None

    def _factory(self, listener: Listener) -> WampFactory:
        if listener.transport == "rawsocket":
            return WampRawSocketFactory(self.driver, listener, self.reactor)
        factory = WampWebSocketFactory(self.driver, listener, self.reactor)
        if listener.longpoll is not None or listener.bridge is not None:
            factory.http_site = self._http_site(listener)
        return factory

    def _http_site(self, listener: Listener) -> Any:
        """The HTTP resources sharing a websocket listener's port."""
        from twisted.web.server import Site

        from .bridge import BridgeResource
        from .longpoll import LongPollResource
        from .metrics import mount

        root = Resource()
        site = Site(root)
        site.noisy = False
        site.resources = []  # type: ignore[attr-defined]  # reconfigured on reload
        if listener.longpoll is not None:
            longpoll = LongPollResource(self.driver, listener, self.reactor)
            mount(root, listener.longpoll.path, longpoll)
            site.resources.append(longpoll)  # type: ignore[attr-defined]
        if listener.bridge is not None:
            bridge = BridgeResource(self.driver, listener, self.reactor)
            mount(root, listener.bridge.path, bridge)
            site.resources.append(bridge)  # type: ignore[attr-defined]
        return site

    @defer.inlineCallbacks
    def _listen(self, listener: Listener) -> Any:
        factory = self._factory(listener)
        if self.worker is not None and isinstance(listener.endpoint, TcpEndpoint):
            port = _shared_port(self.reactor, listener, tls.wrap(factory, listener.tls))
        else:
            port = yield _endpoint(self.reactor, listener).listen(tls.wrap(factory, listener.tls))
        self.ports[_listener_key(listener)] = (listener, factory, port)
        log.info("listening transport={transport} address={address} serializers={sers}",
                 transport=listener.transport, address=_address(listener, port),
                 sers=",".join(listener.serializers))

    @defer.inlineCallbacks
    def start(self) -> Any:
        if self.backplane is not None:
            # join the cluster before taking clients: what they do must reach the others
            self.backplane.start()
            log.info("cluster backplane redis={where} node={node}",
                     where=self.backplane.config.address, node=self.backplane.node_id)
            waited = 0.0
            limit = max(5.0, 2 * self.backplane.config.node_ttl)
            while not self.backplane.up and waited < limit:
                yield task.deferLater(self.reactor, 0.05, lambda: None)
                waited += 0.05
            if not self.backplane.up:
                why = f" ({self.backplane.error})" if self.backplane.error else ""
                log.warn("cluster backplane: Redis not reachable after {s:.0f} s{why}; "
                         "serving local traffic until it is", s=limit, why=why)
        for listener in self.config.listeners:
            yield self._listen(listener)
        if self.config.metrics is not None:
            yield self._start_metrics(self.config.metrics)
        realms = ",".join(r.name for r in self.config.realms)
        log.info("router started config={source} realms={realms}",
                 source=self.config.source, realms=realms)

    @defer.inlineCallbacks
    def _start_metrics(self, metrics: Metrics) -> Any:
        from twisted.web.server import Site

        from .metrics import make_site_root

        site = Site(make_site_root(self, metrics.path, metrics.health_path))
        site.noisy = False
        endpoint = metrics.endpoint
        if self.worker is not None and isinstance(endpoint, TcpEndpoint) and endpoint.port:
            # one metrics port per worker (a scrape must reach a known process)
            endpoint = TcpEndpoint(endpoint.host, endpoint.port + self.worker)
        probe = Listener(transport="websocket", endpoint=endpoint)
        self.metrics_port = yield _endpoint(self.reactor, probe).listen(site)
        addr = self.metrics_port.getHost()
        log.info("listening transport=metrics address=http://{host}:{port}{path} health={health}",
                 host=addr.host, port=addr.port, path=metrics.path, health=metrics.health_path)

    def listener_status(self) -> list[dict[str, Any]]:
        out = []
        for (transport, where), (_, _, port) in self.ports.items():
            up = bool(getattr(port, "connected", True))
            out.append({"transport": transport, "endpoint": where, "up": up})
        return out

    @defer.inlineCallbacks
    def reload(self, config: NodeConfig) -> Any:
        """Apply a new config to the running node (SIGHUP)."""
        effects = self.driver.router.reconfigure(config)
        self.driver.apply(effects)
        self.driver.flush()
        if self.backplane is not None:
            self.backplane.refresh()  # realms added by the reload
        wanted = {_listener_key(lst): lst for lst in config.listeners}
        for key in list(self.ports):
            if key not in wanted:
                _, _, port = self.ports.pop(key)
                yield port.stopListening()
                log.info("stopped listening transport={t} endpoint={e}", t=key[0], e=key[1])
        for key, listener in wanted.items():
            if key in self.ports:
                _, factory, port = self.ports[key]
                factory.listener = listener  # new auth and limits apply to new connections
                for resource in getattr(factory.http_site, "resources", ()):
                    resource.reconfigure(listener)
                self.ports[key] = (listener, factory, port)
            else:
                yield self._listen(listener)
        if config.metrics != self.config.metrics:
            log.warn("the metrics endpoint changed: it takes effect at the next restart")
        if config.cluster != self.config.cluster:
            log.warn("the [cluster] section changed: it takes effect at the next restart")
        self.config = config
        log.info("config reloaded source={source} realms={realms} closed_sessions={n}",
                 source=config.source, realms=",".join(r.name for r in config.realms),
                 n=sum(1 for e in effects if type(e).__name__ == "Send"))

    @defer.inlineCallbacks
    def stop(self) -> Any:
        log.info("router shutting down sessions={n}", n=self.driver.connection_count())
        if self.metrics_port is not None:
            yield self.metrics_port.stopListening()
        for _, _, port in self.ports.values():
            yield port.stopListening()
        self.driver.shutdown()
        waited = 0.0
        while self.driver.connection_count() and waited < SHUTDOWN_GRACE:
            yield task.deferLater(self.reactor, 0.05, lambda: None)
            waited += 0.05
        self.driver.abort_all()
        self.driver.close()
        if self.backplane is not None:
            yield self.backplane.stop()
        log.info("router stopped")
