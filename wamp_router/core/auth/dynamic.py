"""Dynamic authentication: a WAMP procedure decides, the way Crossbar.io does it.

The router calls ``authenticator(realm, authid, details)`` (an ordinary parked
invocation inside the core, see ``Ask``); ``details`` carries ``authmethod``,
``authid``, ``authextra`` (from HELLO), ``session`` and ``transport``, and for
ticket the ``ticket`` itself. When it is called:

- ticket: after AUTHENTICATE (the ticket is part of the question);
- wampcra, cryptosign, wamp-scram: after HELLO, to learn the principal's
  credential, then the router challenges the client as for a static principal.

The answer is a dict: ``role`` (required), optionally ``authid``, ``realm`` (join
this realm instead), ``extra`` (sent as WELCOME.Details.authextra); wampcra adds
``secret`` (and ``salt``, ``iterations``, ``keylen``), cryptosign ``pubkey`` (hex),
wamp-scram ``kdf``, ``salt``, ``iterations``, ``memory``, ``stored_key``,
``server_key`` (base64). A plain string answer is the role. An error raised by
the authenticator is a failed authentication (its message goes into ABORT);
no registration, no answer in time or a malformed answer is an authentication
failure that is not held against the client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...config.model import DynamicAuth
from ..errors import AUTHENTICATION_FAILED
from ..messages import Authenticate, Hello
from . import cryptosign, scram, wampcra
from .base import (
    Accept,
    Answer,
    Ask,
    AuthContext,
    Challenging,
    Outcome,
    Reject,
    failed,
    hello_authextra,
    hello_authid,
)

METHODS = ("ticket", "wampcra", "cryptosign", "wamp-scram")
# errors that say the authenticator could not answer, not that the client is wrong
UNAVAILABLE = frozenset({"wamp.error.timeout", "wamp.error.no_such_procedure",
                         "wamp.error.no_available_callee", "wamp.error.canceled",
                         "wamp.error.payload_size_exceeded", "wamp.error.not_authorized"})


@dataclass(slots=True)
class Principal:
    authid: str
    role: str
    realm: str | None
    extra: dict[str, Any]
    answer: dict[str, Any] = field(default_factory=dict)

    def accept(self, method: str, extra: dict[str, Any] | None = None) -> Accept:
        authextra = dict(self.extra)
        if extra:
            authextra.update(extra)
        return Accept(self.authid, self.role, method, "dynamic", authextra, self.realm)


def unusable(message: str) -> Reject:
    return Reject(AUTHENTICATION_FAILED, message, failure=False)


def principal(answer: Answer, procedure: str, authid: str | None) -> Principal | Reject:
    """The principal the authenticator answered, or the ABORT."""
    if answer.error is not None:
        if answer.error in UNAVAILABLE:
            return unusable(f"the authenticator {procedure!r} is not available: "
                            f"{answer.message or answer.error}")
        return failed(answer.message or answer.error)
    value = {"role": answer.value} if isinstance(answer.value, str) else answer.value
    if not isinstance(value, dict):
        return unusable(f"the authenticator {procedure!r} answered neither a dict nor a role")
    role, new_authid, realm = value.get("role"), value.get("authid", authid), value.get("realm")
    extra = value.get("extra") or {}
    if not isinstance(role, str) or not role:
        return unusable(f"the authenticator {procedure!r} answered no role")
    if not isinstance(new_authid, str) or not new_authid:
        return unusable(f"the authenticator {procedure!r} answered no authid")
    if realm is not None and not isinstance(realm, str) or not isinstance(extra, dict):
        return unusable(f"the authenticator {procedure!r} answered a malformed realm or extra")
    return Principal(new_authid, role, realm, extra, value)


class DynamicAuthenticator:
    def __init__(self, config: DynamicAuth) -> None:
        self.method = config.method
        self._config = config

    def applies_to(self, realm: str) -> bool:
        return True

    def _ask(self, hello: Hello, ctx: AuthContext, extra: dict[str, Any],
             then: Any) -> Ask:
        authid = hello_authid(hello)
        details = {"authmethod": self.method, "authid": authid,
                   "authextra": hello_authextra(hello), "session": ctx.session,
                   "transport": ctx.transport, **extra}
        cfg = self._config
        return Ask(cfg.authenticator, cfg.realm, [ctx.realm, authid, details], cfg.timeout,
                   then)

    def _principal(self, answer: Answer, hello: Hello,
                   default_authid: str | None = None) -> Principal | Reject:
        return principal(answer, self._config.authenticator,
                         hello_authid(hello) or default_authid)

    # -- HELLO ---------------------------------------------------------------
    def start(self, hello: Hello, ctx: AuthContext) -> Outcome:
        if self.method == "ticket":
            return Challenging("ticket", {}, hello)
        if self.method == "cryptosign":
            pubkey = cryptosign.parse_hello(hello)
            if isinstance(pubkey, Reject):
                return pubkey
            return self._ask(hello, ctx, {}, lambda a, c: self._cryptosign(a, c, hello, pubkey))
        if self.method == "wamp-scram":
            parsed = scram.parse_hello(hello)
            if isinstance(parsed, Reject):
                return parsed
            return self._ask(hello, ctx, {}, lambda a, c: self._scram(a, c, hello, parsed[1]))
        if hello_authid(hello) is None:
            return failed("wampcra authentication requires an authid in HELLO.Details")
        return self._ask(hello, ctx, {}, lambda a, c: self._wampcra(a, c, hello))

    def _wampcra(self, answer: Answer, ctx: AuthContext, hello: Hello) -> Outcome:
        p = self._principal(answer, hello)
        if isinstance(p, Reject):
            return p
        raw = p.answer
        secret, salt = raw.get("secret"), raw.get("salt")
        iterations, keylen = raw.get("iterations", 1000), raw.get("keylen", 32)
        if not isinstance(secret, str) or not (salt is None or isinstance(salt, str)) or not (
                type(iterations) is int and type(keylen) is int and iterations > 0 < keylen):
            return unusable("the authenticator answered no usable wampcra secret")
        cra = wampcra.CraSecret(secret, salt, iterations, keylen)
        ch = wampcra.challenge(p.authid, p.role, "dynamic", cra, ctx)
        return Challenging(ch.method, ch.extra, (p, ch.state, cra.key()))

    def _cryptosign(self, answer: Answer, ctx: AuthContext, hello: Hello,
                    pubkey: str) -> Outcome:
        p = self._principal(answer, hello, pubkey)
        if isinstance(p, Reject):
            return p
        authorized = p.answer.get("pubkey", pubkey)
        if not cryptosign.is_hex(authorized, 32):
            return unusable("the authenticator answered no usable cryptosign pubkey")
        challenge = cryptosign.new_challenge(ctx)
        return Challenging(cryptosign.METHOD, cryptosign.challenge_extra(challenge),
                           (p, authorized.lower(), challenge))

    def _scram(self, answer: Answer, ctx: AuthContext, hello: Hello, nonce: str) -> Outcome:
        p = self._principal(answer, hello)
        if isinstance(p, Reject):
            return p
        cred = scram_credential(p.answer)
        if cred is None:
            return unusable("the authenticator answered no usable wamp-scram credential")
        ch = scram.challenge(hello_authid(hello) or p.authid, nonce, cred, ctx)
        return Challenging(ch.method, ch.extra, (p, ch.state))

    # -- AUTHENTICATE -----------------------------------------------------------
    def finish(self, state: Any, msg: Authenticate, ctx: AuthContext) -> Outcome:
        if self.method == "ticket":
            hello: Hello = state
            return self._ask(hello, ctx, {"ticket": msg.signature},
                             lambda a, c: self._ticket(a, hello))
        p: Principal = state[0]
        if self.method == "wampcra":
            (_, text), key = state[1], state[2]
            ok = wampcra.signature_valid(key, text, msg.signature)
            return p.accept(self.method) if ok else failed("invalid authid or signature")
        if self.method == "cryptosign":
            ok = cryptosign.verify(state[1], state[2], msg.signature)
            return p.accept(self.method) if ok else failed("invalid public key or signature")
        verifier = scram.check(state[1], msg)
        if verifier is None:
            return failed("invalid authid or password")
        return p.accept(self.method, {"verifier": verifier})

    def _ticket(self, answer: Answer, hello: Hello) -> Outcome:
        p = self._principal(answer, hello)
        return p if isinstance(p, Reject) else p.accept("ticket")


def scram_credential(answer: dict[str, Any]) -> scram.Credential | None:
    kdf, salt, iterations, memory = (answer.get(k) for k in ("kdf", "salt", "iterations",
                                                             "memory"))
    stored, server = scram.b64decode(answer.get("stored_key")), scram.b64decode(
        answer.get("server_key"))
    if kdf not in scram.KDFS or scram.b64decode(salt) is None or type(iterations) is not int:
        return None
    if memory is not None and type(memory) is not int or stored is None or server is None:
        return None
    assert isinstance(kdf, str) and isinstance(salt, str)
    return scram.Credential(kdf, salt, iterations, memory, stored, server)
