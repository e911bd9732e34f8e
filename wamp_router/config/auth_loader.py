"""The loader's part for authentication and TLS: WAMP-Cryptosign and WAMP-SCRAM
principals, dynamic authenticators, failed-authentication limits, secrets
kept out of the config file, and listener TLS files.

Called by ``loader`` with its ``_Table`` / ``_RealmIndex`` helpers (issues are
reported the same way: file, path, problem). Rules as for the loader; the I/O
here is reading secret files and environment variables and checking that TLS
files are readable, all when the config is loaded. Secrets are never echoed.

Formats::

    [[listeners.auth.cryptosign]]          # static principals: an array of tables
    authid = "carol"
    pubkeys = ["<64 hex digits>", ...]     # Ed25519 public keys
    role = "user"
    realm = "realm2"                       # optional

    [[listeners.auth.scram]]               # authmethod "wamp-scram"
    authid = "dave"
    kdf = "argon2id13"                     # or "pbkdf2"
    iterations = 3
    memory = 65536                         # KiB, argon2id13 only
    salt = "<base64>"
    stored_key = "<base64>"                # 32 bytes; may be a secret reference
    server_key = "<base64>"
    role = "user"

    [listeners.auth.ticket]                # dynamic: a table instead of an array
    authenticator = "com.example.authenticate"
    authenticator_realm = "internal"       # optional: where it is registered
    authenticator_timeout = 5.0            # optional, seconds

    [listeners.auth.limits]                # optional: failed authentications
    max_failures = 5
    window = 60.0
    delay = 1.0

    ticket = { env = "ALICE_TICKET" }      # any secret: a string, an environment
    secret = { file = "secrets/bob" }      # variable, or a file (relative to the config)

    tls = { certificate = "cert.pem", key = "key.pem", chain = "chain.pem" }
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.auth.cryptosign import is_hex
from ..core.auth.ticket import parse_ticket_hash
from . import loader as _loader
from .model import (
    AuthLimits,
    CryptosignPrincipal,
    DynamicAuth,
    ScramPrincipal,
    Tls,
)

if TYPE_CHECKING:
    from .loader import _RealmIndex, _Table

# config key -> authmethod in HELLO
METHODS = {"ticket": "ticket", "wampcra": "wampcra", "cryptosign": "cryptosign",
           "scram": "wamp-scram"}
_CRYPTOSIGN_KEYS = ("authid", "pubkeys", "role", "realm")
_SCRAM_KEYS = ("authid", "role", "realm", "kdf", "salt", "iterations", "memory", "stored_key",
               "server_key")
_DYNAMIC_KEYS = ("authenticator", "authenticator_realm", "authenticator_timeout")
_LIMITS_KEYS = ("max_failures", "window", "delay")
_SECRET_KEYS = ("env", "file")
_TLS_KEYS = ("certificate", "key", "chain")


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def base_dir(source: str) -> Path:
    """Relative paths in a config file are relative to its directory."""
    path = Path(source)
    return path.parent if path.is_file() else Path.cwd()


def _path(table: _Table, text: str) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else base_dir(table.ctx.source) / path


def readable_path(table: _Table, key: str, text: str) -> str:
    """``text`` as a path (relative to the config file); reported if unreadable."""
    path = _path(table, text)
    if not path.is_file() or not os.access(path, os.R_OK):
        table.error(key, f"cannot read {_q(str(path))}: no such readable file")
    return str(path)


# ------------------------------------------------------------------- secrets


def secret(table: _Table, key: str, *, required: bool = False) -> str | None:
    """A secret: a string, or ``{ env = "VAR" }`` / ``{ file = "PATH" }`` read now
    (a file's trailing newline is dropped). Issues never show the secret."""
    value = table.data.get(key)
    if value is None:
        if required:
            table.error(key, "missing required key")
        return None
    if isinstance(value, str):
        if value == "":
            table.error(key, "must not be empty")
            return None
        return value
    if not isinstance(value, dict):
        table._wrong(key, "a string", value, reveal=False)
        return None
    ref = table.table(key)
    assert ref is not None
    ref.check_keys(_SECRET_KEYS)
    if len([k for k in _SECRET_KEYS if k in value]) != 1:
        table.error(key, 'expected exactly one of "env" and "file"')
        return None
    if "env" in value:
        return _from_env(ref)
    return _from_file(ref)


def _from_env(ref: _Table) -> str | None:
    name = ref.string("env", nonempty=True)
    if name is None:
        return None
    found = os.environ.get(name)
    if found is None:
        ref.error("env", f"environment variable {_q(name)} is not set")
    elif found == "":
        ref.error("env", f"environment variable {_q(name)} is empty")
    return found or None


def _from_file(ref: _Table) -> str | None:
    name = ref.string("file", nonempty=True)
    if name is None:
        return None
    path = _path(ref, name)
    try:
        text = path.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        ref.error("file", f"cannot read secret file {_q(str(path))}: {reason}")
        return None
    if not text:
        ref.error("file", f"secret file {_q(str(path))} is empty")
        return None
    return text


def ticket_secret(table: _Table) -> tuple[str, str | None]:
    """(ticket, ticket_hash) of a ticket principal: exactly one of them is set."""
    if "ticket" not in table.data and "ticket_hash" not in table.data:
        table.error("ticket", 'missing required key (or give "ticket_hash")')
        return "", None
    if "ticket" in table.data and "ticket_hash" in table.data:
        table.error("ticket", 'give only one of "ticket" and "ticket_hash"')
        return "", None
    if "ticket" in table.data:
        return secret(table, "ticket") or "", None
    hashed = secret(table, "ticket_hash")
    if hashed is not None:
        problem = parse_ticket_hash(hashed)
        if isinstance(problem, str):
            table.error("ticket_hash", f"invalid ticket hash: {problem}")
            return "", None
    return "", hashed


# ---------------------------------------------------------------- principals


def parse_cryptosign(table: _Table, index: _RealmIndex) -> CryptosignPrincipal:
    table.check_keys(_CRYPTOSIGN_KEYS)
    authid = table.string("authid", required=True, nonempty=True)
    if "pubkeys" not in table.data:
        table.error("pubkeys", "missing required key")
    keys: list[str] = []
    for path, key in table.strings("pubkeys") or []:
        if is_hex(key, 32):
            keys.append(key.lower())
        else:
            table.ctx.error(path, f"expected an Ed25519 public key as 64 hex digits, "
                            f"found {_q(key)}")
    if table.data.get("pubkeys") == []:
        table.error("pubkeys", "at least one public key is required")
    role, realm = _loader._parse_role_ref(table, index)
    return CryptosignPrincipal(authid=authid or "", pubkeys=tuple(keys), role=role, realm=realm)


def _base64(table: _Table, key: str, value: str | None, size: int | None) -> str | None:
    if value is None:
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        table.error(key, "expected base64")
        return None
    if size is not None and len(raw) != size:
        table.error(key, f"expected {size} bytes (base64), found {len(raw)}")
    elif size is None and len(raw) < 8:
        table.error(key, "a salt needs at least 8 bytes")
    return value


def parse_scram(table: _Table, index: _RealmIndex) -> ScramPrincipal:
    table.check_keys(_SCRAM_KEYS)
    authid = table.string("authid", required=True, nonempty=True)
    kdf = table.choice("kdf", ("argon2id13", "pbkdf2"), "SCRAM KDF", required=True)
    salt = _base64(table, "salt", table.string("salt", required=True), None)
    if "iterations" not in table.data:
        table.error("iterations", "missing required key")
    iterations = table.integer("iterations", 1)
    memory = table.integer("memory", 8, 4 * 1024 * 1024)
    if kdf == "argon2id13" and "memory" not in table.data:
        table.error("memory", 'missing required key (KiB) for kdf "argon2id13"')
    elif kdf == "pbkdf2" and "memory" in table.data:
        table.error("memory", '"memory" applies only to kdf "argon2id13"')
    stored = _base64(table, "stored_key", secret(table, "stored_key", required=True), 32)
    server = _base64(table, "server_key", secret(table, "server_key", required=True), 32)
    role, realm = _loader._parse_role_ref(table, index)
    return ScramPrincipal(authid=authid or "", kdf="pbkdf2" if kdf == "pbkdf2" else "argon2id13",
                          salt=salt or "", iterations=iterations or 1, stored_key=stored or "",
                          server_key=server or "", role=role, realm=realm,
                          memory=memory if kdf == "argon2id13" else None)


# ----------------------------------------------------- dynamic, limits, TLS


def parse_dynamic(auth: _Table, index: _RealmIndex) -> tuple[DynamicAuth, ...]:
    """The methods given as a table (``[listeners.auth.ticket]``): dynamic."""
    out: list[DynamicAuth] = []
    for key, method in METHODS.items():
        if not isinstance(auth.data.get(key), dict):
            continue
        table = auth.table(key)
        assert table is not None
        table.check_keys(_DYNAMIC_KEYS)
        procedure = table.string("authenticator", required=True)
        if procedure is not None:
            problem = _loader.check_pattern(procedure, "exact")
            if problem is not None:
                table.error("authenticator", f"invalid procedure URI {_q(procedure)}: {problem}")
        realm = table.string("authenticator_realm", nonempty=True)
        if realm is not None and not index.realm_known(realm):
            table.error("authenticator_realm", _loader._unknown_realm(realm, index))
        timeout = table.seconds("authenticator_timeout")
        if timeout == 0:
            table.error("authenticator_timeout", "must be more than 0")
        out.append(DynamicAuth(method, procedure or "", realm, timeout or 5.0))
    return tuple(out)


def parse_limits(auth: _Table) -> AuthLimits | None:
    table = auth.table("limits")
    if table is None:
        return None
    table.check_keys(_LIMITS_KEYS)
    default = AuthLimits()
    failures = table.integer("max_failures", 1)
    window = table.seconds("window")
    delay = table.seconds("delay")
    if window == 0:
        table.error("window", "must be more than 0")
    if delay is not None and delay > 60:
        table.error("delay", f"must be at most 60 seconds, found {delay}")
    return AuthLimits(max_failures=failures or default.max_failures,
                      window=window or default.window,
                      delay=default.delay if delay is None else delay)


def parse_tls(listener: _Table) -> Tls | None:
    table = listener.table("tls")
    if table is None:
        return None
    table.check_keys(_TLS_KEYS)
    paths: dict[str, str] = {}
    for key in _TLS_KEYS:
        text = table.string(key, required=key != "chain", nonempty=True)
        if text is None:
            continue
        paths[key] = readable_path(table, key, text)
    return Tls(certificate=paths.get("certificate", ""), key=paths.get("key", ""),
               chain=paths.get("chain"))
