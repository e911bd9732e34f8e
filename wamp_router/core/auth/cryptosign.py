"""WAMP-Cryptosign (advanced profile, authentication_cryptosign): Ed25519
challenge/response, client authentication only.

HELLO.Details.authextra.pubkey (32 bytes, hex) names the key; the router sends
CHALLENGE ``{"challenge": <32 random bytes, hex>, "channel_binding": null}``; the
client answers AUTHENTICATE with hex(signature (64 bytes) + challenge (32 bytes)).
TLS channel binding (``channel_binding`` in HELLO) is not supported: such a
client is refused with ABORT, since it asked for a guarantee we cannot give.
An unknown key gets a challenge like a known one, so keys cannot be probed.

Ed25519 comes from ``cryptography`` (pure computation, no I/O).
"""

from __future__ import annotations

from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ...config.model import CryptosignPrincipal
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

METHOD = "cryptosign"
_HEX = frozenset("0123456789abcdef")


def is_hex(text: object, nbytes: int) -> bool:
    return (isinstance(text, str) and len(text) == 2 * nbytes
            and frozenset(text.lower()) <= _HEX)


def parse_hello(hello: Hello) -> str | Reject:
    """The announced public key (lowercase hex), or why the HELLO is refused."""
    extra = hello_authextra(hello)
    binding = extra.get("channel_binding")
    if binding is not None:
        return failed(f"cryptosign channel binding {binding!r} is not supported by this "
                      "router; connect without channel_binding")
    pubkey = extra.get("pubkey")
    if not is_hex(pubkey, 32):
        return failed("cryptosign requires HELLO.Details.authextra.pubkey: an Ed25519 "
                      "public key of 32 bytes as 64 hex digits")
    assert isinstance(pubkey, str)
    return pubkey.lower()


def new_challenge(ctx: AuthContext) -> str:
    return random_bytes(ctx, 32).hex()


def challenge_extra(challenge: str) -> dict[str, Any]:
    return {"challenge": challenge, "channel_binding": None}


def verify(pubkey: str, challenge: str, signature: str) -> bool:
    """Whether ``signature`` (hex of the 64-byte Ed25519 signature followed by the
    32-byte challenge) signs ``challenge`` with the key ``pubkey``."""
    if not is_hex(signature, 96) or not is_hex(pubkey, 32):
        return False
    raw = bytes.fromhex(signature)
    if raw[64:] != bytes.fromhex(challenge):
        return False
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(pubkey)).verify(raw[:64], raw[64:])
    except (InvalidSignature, ValueError):
        return False
    return True


class CryptosignAuthenticator:
    method = METHOD

    def __init__(self, principals: tuple[CryptosignPrincipal, ...]) -> None:
        self._principals = principals
        self._by_key = {key.lower(): p for p in principals for key in p.pubkeys}

    def applies_to(self, realm: str) -> bool:
        return any(p.realm is None or p.realm == realm for p in self._principals)

    def start(self, hello: Hello, ctx: AuthContext) -> Outcome:
        pubkey = parse_hello(hello)
        if isinstance(pubkey, Reject):
            return pubkey
        challenge = new_challenge(ctx)
        return Challenging(METHOD, challenge_extra(challenge),
                           (pubkey, hello_authid(hello), challenge))

    def finish(self, state: Any, msg: Authenticate, ctx: AuthContext) -> Outcome:
        pubkey, authid, challenge = state
        principal = self._by_key.get(pubkey)
        if principal is None or not verify(pubkey, challenge, msg.signature):
            return failed("invalid public key or signature")
        if authid is not None and authid != principal.authid:
            return failed("invalid public key or signature")
        if principal.realm is not None and principal.realm != ctx.realm:
            return failed(f"principal {principal.authid!r} may not join realm {ctx.realm!r}")
        return Accept(principal.authid, principal.role, METHOD, "static")
