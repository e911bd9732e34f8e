"""autobahn-python (asyncio) clients for the advanced authentication tests:
ticket, WAMP-CRA, WAMP-Cryptosign (autobahn's own ``CryptosignKey``) and
WAMP-SCRAM (the proof computed in ``onChallenge`` as the spec describes:
autobahn's built-in SCRAM speaks an older draft), over ws://, wss://, rs://
and rs+tls:// (RawSocket over TLS)."""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
from typing import Any
from urllib.parse import urlparse

from autobahn.asyncio.rawsocket import WampRawSocketClientFactory
from autobahn.asyncio.wamp import ApplicationSession
from autobahn.asyncio.websocket import WampWebSocketClientFactory
from autobahn.wamp import auth, types
from autobahn.wamp.cryptosign import CryptosignKey

from tests.core.auth_helpers import scram_proof

from .clients import SERIALIZERS, JoinFailed


class AuthClient(ApplicationSession):
    """Joins with one authentication method; ``joined`` resolves (or fails)."""

    def __init__(self, realm: str, method: str, authid: str | None, secret: str | None,
                 private_key: str | None, authextra: dict[str, Any] | None) -> None:
        super().__init__(types.ComponentConfig(realm=realm))
        self._method = method
        self._authid = authid
        self._secret = secret
        self._key = CryptosignKey.from_bytes(bytes.fromhex(private_key)) if private_key else None
        self._authextra = dict(authextra or {})
        self._nonce = base64.b64encode(os.urandom(16)).decode()
        self.verifier: str | None = None
        loop = asyncio.get_running_loop()
        self.joined: asyncio.Future[AuthClient] = loop.create_future()
        self.left: asyncio.Future[types.CloseDetails] = loop.create_future()

    def onConnect(self) -> None:
        extra = dict(self._authextra)
        if self._key is not None:
            extra["pubkey"] = self._key.public_key()
        if self._method == "wamp-scram":
            extra["nonce"] = self._nonce
        self.join(self.config.realm, authmethods=[self._method], authid=self._authid,
                  authextra=extra or None)

    def onChallenge(self, challenge: types.Challenge) -> Any:
        if challenge.method == "cryptosign":
            assert self._key is not None
            return self._key.sign_challenge(challenge)
        assert self._secret is not None
        if challenge.method == "ticket":
            return self._secret
        if challenge.method == "wampcra":
            key = self._secret.encode()
            if "salt" in challenge.extra:
                key = auth.derive_key(self._secret, challenge.extra["salt"],
                                      challenge.extra["iterations"], challenge.extra["keylen"])
            return auth.compute_wcs(key, challenge.extra["challenge"]).decode()
        if challenge.method == "wamp-scram":
            assert self._authid is not None
            if not challenge.extra["nonce"].startswith(self._nonce):
                raise RuntimeError("the server nonce does not extend ours")
            proof, self.verifier = scram_proof(self._secret, self._authid, self._nonce,
                                               challenge.extra)
            return proof
        raise RuntimeError(f"unexpected challenge {challenge.method}")

    def onJoin(self, details: types.SessionDetails) -> None:
        self.details = details
        if self.verifier is not None and details.authextra.get("verifier") != self.verifier:
            self.joined.set_exception(RuntimeError("wrong SCRAM verifier: the router does "
                                                   "not know the password"))
            return
        if not self.joined.done():
            self.joined.set_result(self)

    def onLeave(self, details: types.CloseDetails) -> None:
        if not self.joined.done():
            self.joined.set_exception(JoinFailed(details.reason, details.message))
        if not self.left.done():
            self.left.set_result(details)
        self.disconnect()


def client_tls(cafile: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False  # the test certificate is for "localhost", we dial 127.0.0.1
    return ctx


async def connect(session: ApplicationSession, url: str, serializer: str = "json",
                  cafile: str | None = None) -> None:
    """Connect over ws://, wss://, rs:// or rs+tls:// (``cafile``: trusted certificate)."""
    loop = asyncio.get_running_loop()
    ser = SERIALIZERS[serializer]()
    parsed = urlparse(url)
    tls = client_tls(cafile) if parsed.scheme in ("wss", "rs+tls") else None
    factory: Any
    if parsed.scheme in ("ws", "wss"):
        factory = WampWebSocketClientFactory(lambda: session, url=url, serializers=[ser])
    elif parsed.scheme in ("rs", "rs+tls"):
        factory = WampRawSocketClientFactory(lambda: session, serializer=ser)
    else:
        raise ValueError(url)
    await loop.create_connection(factory, parsed.hostname, parsed.port, ssl=tls)


async def join_as(url: str, realm: str, method: str, authid: str | None = None,
                  secret: str | None = None, private_key: str | None = None,
                  authextra: dict[str, Any] | None = None, serializer: str = "json",
                  cafile: str | None = None, timeout: float = 15) -> AuthClient:
    session = AuthClient(realm, method, authid, secret, private_key, authextra)
    await connect(session, url, serializer, cafile)
    return await asyncio.wait_for(session.joined, timeout)
