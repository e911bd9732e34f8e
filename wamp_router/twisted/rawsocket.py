"""WAMP over RawSocket (TCP or Unix): a Twisted protocol over the pure
``wire.rawsocket``."""

from __future__ import annotations

from typing import Any

from ..core.session import TransportInfo
from ..wire import rawsocket as rs
from ..wire.serializers import SERIALIZERS
from .base import WampFactory, WampProtocolBase, log


class WampRawSocketProtocol(WampProtocolBase):
    def setup(self) -> None:
        self.rs = rs.RawSocketServer(serializers=self.listener.serializers,
                                     max_message_size=self.listener.max_message_size)

    def frame(self, payload: bytes) -> bytes:
        return rs.frame_message(payload)

    def refuse_overload(self) -> None:
        self.drop(b"\x7f\x40\x00\x00")  # handshake error 4: maximum connection count reached

    def send_ping(self) -> bool:
        if self.rs.state is not rs.RsState.OPEN:
            return False
        self.rs.ping(b"wamp-router")
        self._flush()
        self.flush()
        return True

    def close_after_send(self, reason: str) -> None:
        self.drop()

    def _flush(self) -> None:
        out = self.rs.data_to_send()
        if out:
            self.write(out)

    def dataReceived(self, data: bytes) -> None:
        if self._closing:
            return
        self.heartbeat.alive = True
        for event in self.rs.receive_data(data):
            if type(event) is rs.Message:
                if self.cid:
                    self.driver.received(self.cid, event.payload)
            else:
                self._event(event)
        self._flush()
        self.driver.flush()

    def _event(self, event: Any) -> None:
        if type(event) is rs.Accepted:
            self.serializer = SERIALIZERS[event.serializer]
            self.max_out = event.peer_max_message_size
            self.frame_key = ("raw", self.serializer.name, self.max_out)
            self.transport.write(self.rs.data_to_send())
            info = TransportInfo("rawsocket", self.peer, self.listener, self.serializer.name)
            self.cid = self.driver.attach(self, info)
        elif type(event) is rs.Rejected:
            log.info("rejected peer={peer} reason=rawsocket_handshake code={code} detail={detail!r}",
                     peer=self.peer, code=event.error_code, detail=event.reason)
            self.drop(self.rs.data_to_send())
        elif type(event) is rs.ProtocolError:
            log.info("rejected peer={peer} reason=rawsocket_protocol detail={detail!r}",
                     peer=self.peer, detail=event.reason)
            self.drop(self.rs.data_to_send())


class WampRawSocketFactory(WampFactory):
    protocol_class = WampRawSocketProtocol
