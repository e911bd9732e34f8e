"""WAMP-SCRAM (advanced profile, authentication_scram), authmethod "wamp-scram".

The router stores per principal only the salt, the KDF parameters, StoredKey and
ServerKey (no password), and never runs the KDF itself: the client does
(Argon2id 1.3 "argon2id13" or PBKDF2-HMAC-SHA256 "pbkdf2", 32-byte output).
Exchange (RFC 5802 / RFC 7677 with the spec's deviations):

    HELLO        authid, authextra.nonce (client nonce, base64)
    CHALLENGE    nonce = client nonce + server nonce, salt, kdf, iterations, memory
    AUTHENTICATE signature = base64(ClientProof), extra.nonce (the combined nonce)
    WELCOME      authextra.verifier = base64(ServerSignature)

AuthMessage = "n=" + Escape(authid) + ",r=" + client_nonce + "," + "r=" + nonce +
",s=" + salt + ",i=" + iterations + "," + "c=" + Base64("n,,") + ",r=" + nonce.
Channel binding is not supported: a HELLO asking for it is refused. An unknown
authid gets a mock challenge whose salt is the same each time for that authid.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from ...config.model import ScramPrincipal
from ..messages import Authenticate, Hello
from .base import (
    Accept,
    AuthContext,
    Challenging,
    Outcome,
    Reject,
    failed,
    hello_authextra,
    hello_authid,
    random_bytes,
)

METHOD = "wamp-scram"
KDFS = ("argon2id13", "pbkdf2")


@dataclass(frozen=True, slots=True)
class Credential:
    """What the router knows of a SCRAM principal."""

    kdf: str
    salt: str  # base64
    iterations: int
    memory: int | None
    stored_key: bytes
    server_key: bytes


@dataclass(frozen=True, slots=True)
class Pending:
    """A CHALLENGE sent, waiting for AUTHENTICATE."""

    authid: str
    client_nonce: str
    nonce: str  # client nonce + server nonce
    credential: Credential


def b64decode(text: object) -> bytes | None:
    if not isinstance(text, str):
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def credential_of(p: ScramPrincipal) -> Credential:
    stored, server = b64decode(p.stored_key), b64decode(p.server_key)
    assert stored is not None and server is not None  # checked by the config loader
    return Credential(p.kdf, p.salt, p.iterations, p.memory, stored, server)


def escape(name: str) -> str:
    return name.replace("=", "=3D").replace(",", "=2C")


def auth_message(authid: str, client_nonce: str, nonce: str, salt: str, iterations: int) -> bytes:
    cbind = base64.b64encode(b"n,,").decode("ascii")  # no channel binding
    return (f"n={escape(authid)},r={client_nonce},"
            f"r={nonce},s={salt},i={iterations},"
            f"c={cbind},r={nonce}").encode()


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def client_proof_valid(cred: Credential, message: bytes, proof_b64: str) -> bool:
    proof = b64decode(proof_b64)
    if proof is None or len(proof) != 32:
        return False
    signature = _hmac(cred.stored_key, message)
    client_key = bytes(a ^ b for a, b in zip(signature, proof, strict=True))
    return hmac.compare_digest(hashlib.sha256(client_key).digest(), cred.stored_key)


def server_signature(cred: Credential, message: bytes) -> str:
    return base64.b64encode(_hmac(cred.server_key, message)).decode("ascii")


def parse_hello(hello: Hello) -> tuple[str, str] | Reject:
    """(authid, client nonce) from HELLO, or why it is refused."""
    authid = hello_authid(hello)
    if authid is None:
        return failed("wamp-scram authentication requires an authid in HELLO.Details")
    extra = hello_authextra(hello)
    if extra.get("channel_binding") is not None:
        return failed(f"wamp-scram channel binding {extra['channel_binding']!r} is not "
                      "supported by this router")
    nonce = extra.get("nonce")
    if not nonce or b64decode(nonce) is None:
        return failed("wamp-scram requires HELLO.Details.authextra.nonce (base64)")
    assert isinstance(nonce, str)
    return authid, nonce


def challenge(authid: str, client_nonce: str, cred: Credential, ctx: AuthContext) -> Challenging:
    nonce = client_nonce + base64.b64encode(random_bytes(ctx, 16)).decode("ascii")
    extra: dict[str, Any] = {"nonce": nonce, "salt": cred.salt, "kdf": cred.kdf,
                             "iterations": cred.iterations, "memory": cred.memory}
    return Challenging(METHOD, extra, Pending(authid, client_nonce, nonce, cred))


def check(pending: Pending, msg: Authenticate) -> str | None:
    """The verifier (base64 ServerSignature) when AUTHENTICATE proves the password.
    ``extra.nonce`` must match when given; clients that cannot send AUTHENTICATE
    extras (autobahn-python) may leave it out: the proof covers the nonce anyway."""
    nonce = msg.extra.get("nonce", pending.nonce)
    if nonce != pending.nonce or msg.extra.get("channel_binding") is not None:
        return None
    cred = pending.credential
    message = auth_message(pending.authid, pending.client_nonce, pending.nonce, cred.salt,
                           cred.iterations)
    if not client_proof_valid(cred, message, msg.signature):
        return None
    return server_signature(cred, message)


class ScramAuthenticator:
    method = METHOD

    def __init__(self, principals: tuple[ScramPrincipal, ...]) -> None:
        self._principals = {p.authid: p for p in principals}
        self._credentials = {p.authid: credential_of(p) for p in principals}
        self._mock_key = b""  # per-router secret: stable mock salts for unknown authids
        first = principals[0] if principals else None
        self._mock_params = (first.kdf, first.iterations, first.memory) if first else (
            "pbkdf2", 4096, None)

    def applies_to(self, realm: str) -> bool:
        return any(p.realm is None or p.realm == realm for p in self._principals.values())

    def _mock(self, authid: str, ctx: AuthContext) -> Credential:
        if not self._mock_key:
            self._mock_key = random_bytes(ctx, 32)
        salt = base64.b64encode(_hmac(self._mock_key, authid.encode("utf-8"))[:16]).decode()
        kdf, iterations, memory = self._mock_params
        unusable = _hmac(self._mock_key, b"no such principal")
        return Credential(kdf, salt, iterations, memory, unusable, unusable)

    def start(self, hello: Hello, ctx: AuthContext) -> Outcome:
        parsed = parse_hello(hello)
        if isinstance(parsed, Reject):
            return parsed
        authid, client_nonce = parsed
        cred = self._credentials.get(authid) or self._mock(authid, ctx)
        return challenge(authid, client_nonce, cred, ctx)

    def finish(self, state: Any, msg: Authenticate, ctx: AuthContext) -> Outcome:
        principal = self._principals.get(state.authid)
        verifier = check(state, msg) if principal is not None else None
        if principal is None or verifier is None:
            return failed("invalid authid or password")
        if principal.realm is not None and principal.realm != ctx.realm:
            return failed(f"principal {principal.authid!r} may not join realm {ctx.realm!r}")
        return Accept(principal.authid, principal.role, METHOD, "static",
                      {"verifier": verifier})
