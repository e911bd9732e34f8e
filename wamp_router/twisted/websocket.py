"""WAMP over WebSocket: a Twisted protocol over the pure ``wire.websocket``.

Subprotocols ``wamp.2.json`` (text frames), ``wamp.2.msgpack`` and
``wamp.2.cbor`` (binary frames); others are refused in the handshake.
"""

from __future__ import annotations

from typing import Any

from ..core.session import TransportInfo
from ..wire import websocket as ws
from ..wire.serializers import BY_SUBPROTOCOL, SERIALIZERS
from .base import WampFactory, WampProtocolBase, log


class WampWebSocketProtocol(WampProtocolBase):
    def setup(self) -> None:
        protocols = [SERIALIZERS[name].subprotocol for name in self.listener.serializers]
        self.ws = ws.WebSocketServer(path=self.listener.path, subprotocols=protocols,
                                     max_message_size=self.listener.max_message_size)
        # sharing the port with RawSocket and/or HTTP: look at the first bytes first
        self._sniff: bytes | None = (
            b"" if self.listener.rawsocket or self.listener.longpoll or self.listener.bridge
            else None)

    def frame(self, payload: bytes) -> bytes:
        return ws.frame_message(payload, self.serializer.binary)

    def refuse_overload(self) -> None:
        body = b"the listener is at its max_sessions limit\n"
        self.drop(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                  b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))

    def send_ping(self) -> bool:
        if self.ws.state is not ws.WsState.OPEN:
            return False
        self.ws.ping(b"wamp-router")
        self._flush()
        self.flush()
        return True

    def close_after_send(self, reason: str) -> None:
        if self.ws.state is ws.WsState.OPEN:
            self.ws.close(1000, "")
        self.drop(self.ws.data_to_send())

    def _flush(self) -> None:
        out = self.ws.data_to_send()
        if out:
            self.write(out)

    def dataReceived(self, data: bytes) -> None:
        if self._closing:
            return
        if self._sniff is not None:
            data = self._sniff + data
            self._sniff = None
            if self._route(data):
                return
        self.heartbeat.alive = True
        events = self.ws.receive_data(data)
        for event in events:
            if type(event) is ws.Message:
                if self.cid:
                    self.driver.received(self.cid, event.payload)
            else:
                self._event(event)
        self._flush()
        self.driver.flush()

    def _route(self, data: bytes) -> bool:
        """On a shared port: hand the connection to RawSocket (first octet 0x7F) or
        to the HTTP resources (a request that is not a WebSocket upgrade).
        True when the connection was handed over or more bytes are needed."""
        if self.listener.rawsocket and data[:1] == b"\x7f":
            from .rawsocket import WampRawSocketProtocol

            self._hand_over(WampRawSocketProtocol(self.driver, self.listener, self.clock,
                                                  self.owner), data)
            return True
        if self.owner is None or getattr(self.owner, "http_site", None) is None:
            return False
        try:
            head = ws.parse_request_head(data)
        except ws.HttpError:
            return False  # the WebSocket handshake answers it
        if head is None:
            self._sniff = data  # wait for the whole request head
            return True
        if "websocket" in head.headers.get("upgrade", "").lower():
            return False
        self._hand_over(self.owner.http_site.buildProtocol(self.transport.getPeer()), data)
        return True

    def _hand_over(self, protocol: Any, data: bytes) -> None:
        """Let another protocol own this connection from now on."""
        self.heartbeat.stop()
        if self.owner is not None:
            self.owner.open_connections -= 1
            self.owner = None
        self._closing = True
        transport = self.transport
        transport.protocol = protocol
        protocol.makeConnection(transport)
        protocol.dataReceived(data)

    def _event(self, event: Any) -> None:
        if type(event) is ws.Accepted:
            self._accepted(event)
        elif type(event) is ws.Rejected:
            log.info("rejected peer={peer} reason=websocket_handshake status={status} "
                     "detail={detail!r}", peer=self.peer, status=event.status,
                     detail=event.reason)
            self.drop(self.ws.data_to_send())
        elif type(event) is ws.ProtocolError:
            log.info("rejected peer={peer} reason=websocket_protocol code={code} detail={detail!r}",
                     peer=self.peer, code=event.code, detail=event.reason)
            self.drop(self.ws.data_to_send())
        elif type(event) is ws.CloseReceived:
            self.drop(self.ws.data_to_send())

    def _accepted(self, event: ws.Accepted) -> None:
        self.serializer = BY_SUBPROTOCOL[event.subprotocol]
        self.frame_key = ("ws", self.serializer.name)
        self.transport.write(self.ws.data_to_send())
        info = TransportInfo("websocket", self.peer, self.listener, self.serializer.name)
        self.cid = self.driver.attach(self, info)


class WampWebSocketFactory(WampFactory):
    protocol_class = WampWebSocketProtocol
