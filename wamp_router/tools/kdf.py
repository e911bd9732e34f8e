"""Password key derivation for WAMP-SCRAM credentials (used by the credential
tool and by tests acting as SCRAM clients; the router itself never runs a KDF).

- ``saslprep``: RFC 4013 (stringprep profile for user names and passwords),
  stored-strings flavour (unassigned code points are refused).
- ``salted_password``: Argon2id v1.3 (``argon2id13``, parallelism 1, 32 bytes,
  memory in KiB) or PBKDF2-HMAC-SHA256 (``pbkdf2``, 32 bytes) of the normalized
  password with the (decoded) salt, as authentication_scram.md describes.
- ``scram_keys``: StoredKey and ServerKey from the salted password.
"""

from __future__ import annotations

import hashlib
import hmac
import stringprep
import unicodedata


def saslprep(text: str) -> str:
    mapped = "".join(
        " " if stringprep.in_table_c12(ch) else ch
        for ch in text if not stringprep.in_table_b1(ch))
    normalized = unicodedata.normalize("NFKC", mapped)
    prohibited = (stringprep.in_table_c12, stringprep.in_table_c21, stringprep.in_table_c22,
                  stringprep.in_table_c3, stringprep.in_table_c4, stringprep.in_table_c5,
                  stringprep.in_table_c6, stringprep.in_table_c7, stringprep.in_table_c8,
                  stringprep.in_table_c9, stringprep.in_table_a1)
    for ch in normalized:
        if any(check(ch) for check in prohibited):
            raise ValueError(f"SASLprep: prohibited character U+{ord(ch):04X}")
    if any(stringprep.in_table_d1(ch) for ch in normalized):
        if any(stringprep.in_table_d2(ch) for ch in normalized):
            raise ValueError("SASLprep: mixed right-to-left and left-to-right text")
        if not (stringprep.in_table_d1(normalized[0]) and stringprep.in_table_d1(normalized[-1])):
            raise ValueError("SASLprep: right-to-left text must start and end with RTL characters")
    return normalized


def salted_password(password: str, kdf: str, salt: bytes, iterations: int,
                    memory: int | None = None) -> bytes:
    secret = saslprep(password).encode("utf-8")
    if kdf == "pbkdf2":
        return hashlib.pbkdf2_hmac("sha256", secret, salt, iterations, 32)
    if kdf == "argon2id13":
        from argon2.low_level import Type, hash_secret_raw

        if memory is None:
            raise ValueError("argon2id13 needs the memory cost (KiB)")
        return bytes(hash_secret_raw(secret, salt, time_cost=iterations, memory_cost=memory,
                                     parallelism=1, hash_len=32, type=Type.ID, version=19))
    raise ValueError(f"unknown KDF {kdf!r} (argon2id13 or pbkdf2)")


def scram_keys(salted: bytes) -> tuple[bytes, bytes]:
    """(StoredKey, ServerKey)."""
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return hashlib.sha256(client_key).digest(), server_key
