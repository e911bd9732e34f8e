"""Real autobahn-python (asyncio) clients for integration tests."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlparse

from autobahn.asyncio.rawsocket import WampRawSocketClientFactory
from autobahn.asyncio.wamp import ApplicationSession
from autobahn.asyncio.websocket import WampWebSocketClientFactory
from autobahn.wamp import auth, types
from autobahn.wamp.serializer import CBORSerializer, JsonSerializer, MsgPackSerializer

SERIALIZERS = {"json": JsonSerializer, "msgpack": MsgPackSerializer, "cbor": CBORSerializer}


class JoinFailed(Exception):
    def __init__(self, reason: str, message: str | None) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class Client(ApplicationSession):
    """An ApplicationSession that resolves ``joined`` (or fails it) and
    records how the session ended."""

    def __init__(self, realm: str, authmethods: list[str] | None, authid: str | None,
                 secret: str | None) -> None:
        super().__init__(types.ComponentConfig(realm=realm))
        self._authmethods = authmethods
        self._authid = authid
        self._secret = secret
        self.joined: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
        self.left: asyncio.Future[types.CloseDetails] = asyncio.get_running_loop().create_future()
        self.challenges: list[types.Challenge] = []

    def onConnect(self) -> None:
        self.join(self.config.realm, authmethods=self._authmethods, authid=self._authid)

    def onChallenge(self, challenge: types.Challenge) -> str:
        self.challenges.append(challenge)
        assert self._secret is not None
        if challenge.method == "ticket":
            return self._secret
        if challenge.method == "wampcra":
            key = self._secret.encode()
            if "salt" in challenge.extra:
                key = auth.derive_key(self._secret, challenge.extra["salt"],
                                      challenge.extra["iterations"], challenge.extra["keylen"])
            return auth.compute_wcs(key, challenge.extra["challenge"]).decode()
        raise RuntimeError(f"unexpected challenge {challenge.method}")

    def onJoin(self, details: types.SessionDetails) -> None:
        self.details = details
        if not self.joined.done():
            self.joined.set_result(self)

    def onLeave(self, details: types.CloseDetails) -> None:
        if not self.joined.done():
            self.joined.set_exception(JoinFailed(details.reason, details.message))
        if not self.left.done():
            self.left.set_result(details)
        self.disconnect()


async def join(url: str, realm: str = "realm1", serializer: str = "json",
               authmethods: list[str] | None = None, authid: str | None = None,
               secret: str | None = None, timeout: float = 10) -> Client:
    """Connect over WebSocket (``ws://``) or RawSocket (``rs://``) and join."""
    loop = asyncio.get_running_loop()
    session = Client(realm, authmethods, authid, secret)
    ser = SERIALIZERS[serializer]()
    parsed = urlparse(url)
    factory: Any
    if parsed.scheme == "ws":
        factory = WampWebSocketClientFactory(lambda: session, url=url, serializers=[ser])
        await loop.create_connection(factory, parsed.hostname, parsed.port)
    elif parsed.scheme == "rs":
        factory = WampRawSocketClientFactory(lambda: session, serializer=ser)
        await loop.create_connection(factory, parsed.hostname, parsed.port)
    elif parsed.scheme == "unix":
        factory = WampRawSocketClientFactory(lambda: session, serializer=ser)
        await loop.create_unix_connection(factory, parsed.path)
    else:
        raise ValueError(url)
    return await asyncio.wait_for(session.joined, timeout)


async def close(*sessions: Client) -> None:
    for s in sessions:
        if s.is_attached():
            s.leave()
    for s in sessions:
        try:
            await asyncio.wait_for(s.left, 5)
        except TimeoutError:
            pass
