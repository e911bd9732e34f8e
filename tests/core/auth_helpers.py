"""Client-side computations for the authentication tests, written from the spec
texts (independently of the router's code), and a Harness config with every
method."""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from wamp_router.tools.kdf import salted_password, scram_keys

# Private keys from the spec's WAMP-Cryptosign test vectors.
PRIVATE_1 = "4d57d97a68f555696620a6d849c0ce582568518d729eb753dc7c732de2804510"
PRIVATE_2 = "d511fe78e23934b3dadb52fcd022974b80bd92bccc7c5cf404e46cc0a8a2f5cd"
PRIVATE_3 = "6e1fde9cf9e2359a87420b65a87dc0c66136e66945196ba2475990d8a0c3a25b"


def public_key(private_hex: str) -> str:
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(private_hex))
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def cryptosign_signature(private_hex: str, challenge_hex: str) -> str:
    """AUTHENTICATE.Signature: hex(Ed25519 signature (64 bytes) + challenge (32 bytes))."""
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(private_hex))
    challenge = bytes.fromhex(challenge_hex)
    return (key.sign(challenge) + challenge).hex()


def scram_credential(password: str, kdf: str, salt: bytes, iterations: int,
                     memory: int | None = None) -> dict[str, object]:
    stored, server = scram_keys(salted_password(password, kdf, salt, iterations, memory))
    return {"kdf": kdf, "salt": base64.b64encode(salt).decode(), "iterations": iterations,
            "memory": memory, "stored_key": base64.b64encode(stored).decode(),
            "server_key": base64.b64encode(server).decode()}


def scram_proof(password: str, authid: str, client_nonce: str,
                extra: dict[str, object]) -> tuple[str, str]:
    """(base64 ClientProof, expected base64 ServerSignature) for a CHALLENGE.Extra,
    following the spec's SCRAM algorithms."""
    salt, nonce = str(extra["salt"]), str(extra["nonce"])
    memory = extra.get("memory")
    iterations = int(str(extra["iterations"]))
    salted = salted_password(password, str(extra["kdf"]), base64.b64decode(salt), iterations,
                             int(str(memory)) if memory is not None else None)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    auth_message = (f"n={authid},r={client_nonce},r={nonce},s={salt},i={iterations},"
                    f"c=biws,r={nonce}").encode()
    signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    server_sig = hmac.new(server_key, auth_message, hashlib.sha256).digest()
    return base64.b64encode(proof).decode(), base64.b64encode(server_sig).decode()


PBKDF2_CRED = scram_credential("dave-password", "pbkdf2", b"dave-salt-16byte", 1000)
ARGON_CRED = scram_credential("erin-password", "argon2id13", b"erin-salt-16byte", 2, 256)


def scram_toml(authid: str, cred: dict[str, object]) -> str:
    lines = ["[[listeners.auth.scram]]", f'authid = "{authid}"', 'role = "user"',
             'realm = "realm2"']
    for key, value in cred.items():
        if value is not None:
            lines.append(f'{key} = "{value}"' if isinstance(value, str) else f"{key} = {value}")
    return "\n".join(lines) + "\n"


STATIC_CONFIG = f"""
[[listeners]]
transport = "websocket"
endpoint = "127.0.0.1:0"

[listeners.auth.anonymous]
role = "anonymous"
realms = ["realm1"]

[[listeners.auth.ticket]]
authid = "alice"
ticket = "secret123"
role = "user"
realm = "realm2"

[[listeners.auth.ticket]]
authid = "hashed"
ticket_hash = "pbkdf2-sha256$1000$c2FsdHNhbHRzYWx0$wUsiOCD46dEeuIHviolrs2K71zdJhPOlw4/y1jkVoow="  # hashed-ticket
role = "user"
realm = "realm2"

[[listeners.auth.cryptosign]]
authid = "carol"
pubkeys = ["{public_key(PRIVATE_1)}", "{public_key(PRIVATE_2)}"]
role = "user"
realm = "realm2"

{scram_toml("dave", PBKDF2_CRED)}
{scram_toml("erin", ARGON_CRED)}

[[realms]]
name = "realm1"
[[realms.roles]]
name = "anonymous"
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = ["call", "register", "publish", "subscribe"]

[[realms]]
name = "realm2"
[[realms.roles]]
name = "user"
[[realms.roles.permissions]]
uri = "com.example."
match = "prefix"
allow = ["call", "register", "publish", "subscribe"]
"""
