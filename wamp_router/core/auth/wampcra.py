"""WAMP-CRA (advanced profile, authentication_cra) against static secrets,
unsalted or salted (PBKDF2-HMAC-SHA256 key derivation, as the spec
describes). The challenge is a JSON string; the signature is the base64 of
HMAC-SHA256(key, challenge). Unknown authids get a challenge signed with a
random key, so the existence of a principal is not revealed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

from ...config.model import CraPrincipal
from ..messages import Authenticate, Hello
from .base import Accept, AuthContext, Challenging, Outcome, Reject, failed


def derive_key(secret: str, salt: str, iterations: int, keylen: int) -> bytes:
    """The salted WAMP-CRA key: base64 of PBKDF2-HMAC-SHA256(secret, salt)."""
    raw = hashlib.pbkdf2_hmac(
        "sha256", secret.encode("utf-8"), salt.encode("utf-8"), iterations, keylen
    )
    return base64.b64encode(raw)


def sign(key: bytes, challenge: str) -> str:
    digest = hmac.new(key, challenge.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


class CraAuthenticator:
    method = "wampcra"

    def __init__(self, principals: tuple[CraPrincipal, ...]) -> None:
        self._principals = {p.authid: p for p in principals}
        self._keys: dict[str, bytes] = {}

    def applies_to(self, realm: str) -> bool:
        return any(p.realm is None or p.realm == realm for p in self._principals.values())

    def _key(self, principal: CraPrincipal) -> bytes:
        key = self._keys.get(principal.authid)
        if key is None:
            if principal.salt is None:
                key = principal.secret.encode("utf-8")
            else:
                key = derive_key(
                    principal.secret, principal.salt, principal.iterations, principal.keylen
                )
            self._keys[principal.authid] = key
        return key

    def start(self, hello: Hello, ctx: AuthContext) -> Outcome:
        authid = hello.details.get("authid")
        if not isinstance(authid, str) or not authid:
            return failed("wampcra authentication requires an authid in HELLO.Details")
        principal = self._principals.get(authid)
        nonce = base64.b64encode(ctx.rng.getrandbits(128).to_bytes(16, "big")).decode()
        stamp = datetime.fromtimestamp(ctx.now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        challenge = json.dumps(
            {
                "authid": authid,
                "authrole": principal.role if principal else "user",
                "authmethod": "wampcra",
                "authprovider": "static",
                "nonce": nonce,
                "timestamp": stamp,
                "session": ctx.session,
            },
            separators=(",", ":"),
        )
        extra: dict[str, Any] = {"challenge": challenge}
        if principal is not None and principal.salt is not None:
            extra.update(salt=principal.salt, iterations=principal.iterations,
                         keylen=principal.keylen)
        return Challenging("wampcra", extra, (authid, challenge))

    def finish(self, state: Any, msg: Authenticate, ctx: AuthContext) -> Accept | Reject:
        authid, challenge = state
        principal = self._principals.get(authid)
        if principal is None:
            return failed("invalid authid or signature")
        expected = sign(self._key(principal), challenge)
        if not hmac.compare_digest(msg.signature.encode("utf-8"), expected.encode("ascii")):
            return failed("invalid authid or signature")
        if principal.realm is not None and principal.realm != ctx.realm:
            return failed(f"principal {authid!r} may not join realm {ctx.realm!r}")
        return Accept(principal.authid, principal.role, "wampcra", "static")
