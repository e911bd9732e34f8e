"""WAMP-CRA (advanced profile, authentication_cra) against static secrets,
unsalted or salted (PBKDF2-HMAC-SHA256 key derivation, as the spec
describes). The challenge is a JSON string; the signature is the base64 of
HMAC-SHA256(key, challenge). Unknown authids get a challenge like known ones,
so the existence of a principal is not revealed. ``challenge`` and
``signature_valid`` are shared with the dynamic authenticator."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ...config.model import CraPrincipal
from ..messages import Authenticate, Hello
from .base import Accept, AuthContext, Challenging, Outcome, failed, random_bytes

METHOD = "wampcra"


@dataclass(frozen=True, slots=True)
class CraSecret:
    """A principal's secret and, for salted WAMP-CRA, the key derivation."""

    secret: str
    salt: str | None = None
    iterations: int = 1000
    keylen: int = 32

    def key(self) -> bytes:
        if self.salt is None:
            return self.secret.encode("utf-8")
        return derive_key(self.secret, self.salt, self.iterations, self.keylen)


def derive_key(secret: str, salt: str, iterations: int, keylen: int) -> bytes:
    """The salted WAMP-CRA key: base64 of PBKDF2-HMAC-SHA256(secret, salt)."""
    raw = hashlib.pbkdf2_hmac(
        "sha256", secret.encode("utf-8"), salt.encode("utf-8"), iterations, keylen
    )
    return base64.b64encode(raw)


def sign(key: bytes, challenge: str) -> str:
    digest = hmac.new(key, challenge.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signature_valid(key: bytes, challenge: str, signature: str) -> bool:
    return hmac.compare_digest(signature.encode("utf-8"), sign(key, challenge).encode("ascii"))


def challenge(authid: str, role: str, provider: str, secret: CraSecret | None,
              ctx: AuthContext) -> Challenging:
    """The CHALLENGE for ``authid``; ``state`` is (authid, challenge string)."""
    nonce = base64.b64encode(random_bytes(ctx, 16)).decode()
    stamp = datetime.fromtimestamp(ctx.now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    text = json.dumps(
        {
            "authid": authid,
            "authrole": role,
            "authmethod": METHOD,
            "authprovider": provider,
            "nonce": nonce,
            "timestamp": stamp,
            "session": ctx.session,
        },
        separators=(",", ":"),
    )
    extra: dict[str, Any] = {"challenge": text}
    if secret is not None and secret.salt is not None:
        extra.update(salt=secret.salt, iterations=secret.iterations, keylen=secret.keylen)
    return Challenging(METHOD, extra, (authid, text))


class CraAuthenticator:
    method = METHOD

    def __init__(self, principals: tuple[CraPrincipal, ...]) -> None:
        self._principals = {p.authid: p for p in principals}
        self._keys: dict[str, bytes] = {}

    def applies_to(self, realm: str) -> bool:
        return any(p.realm is None or p.realm == realm for p in self._principals.values())

    @staticmethod
    def _secret(p: CraPrincipal) -> CraSecret:
        return CraSecret(p.secret, p.salt, p.iterations, p.keylen)

    def _key(self, principal: CraPrincipal) -> bytes:
        key = self._keys.get(principal.authid)
        if key is None:
            key = self._keys[principal.authid] = self._secret(principal).key()
        return key

    def start(self, hello: Hello, ctx: AuthContext) -> Outcome:
        authid = hello.details.get("authid")
        if not isinstance(authid, str) or not authid:
            return failed("wampcra authentication requires an authid in HELLO.Details")
        principal = self._principals.get(authid)
        secret = self._secret(principal) if principal is not None else None
        return challenge(authid, principal.role if principal else "user", "static", secret, ctx)

    def finish(self, state: Any, msg: Authenticate, ctx: AuthContext) -> Outcome:
        authid, text = state
        principal = self._principals.get(authid)
        if principal is None or not signature_valid(self._key(principal), text, msg.signature):
            return failed("invalid authid or signature")
        if principal.realm is not None and principal.realm != ctx.realm:
            return failed(f"principal {authid!r} may not join realm {ctx.realm!r}")
        return Accept(principal.authid, principal.role, METHOD, "static")
