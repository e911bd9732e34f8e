"""Helpers shared by the Python adapters (see interop/scenarios.py, PROTOCOL)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any


def decode(v: Any) -> Any:
    """Control protocol -> Python values ({"$bytes": b64} -> bytes)."""
    if isinstance(v, dict):
        if len(v) == 1 and "$bytes" in v:
            return base64.b64decode(v["$bytes"])
        return {k: decode(x) for k, x in v.items()}
    if isinstance(v, list):
        return [decode(x) for x in v]
    return v


def encode(v: Any) -> Any:
    """Python values -> control protocol."""
    if isinstance(v, bytes | bytearray | memoryview):
        return {"$bytes": base64.b64encode(bytes(v)).decode("ascii")}
    if isinstance(v, list | tuple):
        return [encode(x) for x in v]
    if isinstance(v, dict):
        return {str(k): encode(x) for k, x in v.items()}
    return v


def has_bytes(v: Any) -> bool:
    if isinstance(v, bytes | bytearray):
        return True
    if isinstance(v, list | tuple):
        return any(has_bytes(x) for x in v)
    if isinstance(v, dict):
        return any(has_bytes(x) for x in v.values())
    return False


def wampcra_signature(secret: str, extra: dict[str, Any]) -> str:
    """WAMP-CRA: base64(HMAC-SHA256(key, challenge)); key derived with PBKDF2 when salted.
    Used by clients that leave the signing to the application."""
    key = secret.encode("utf-8")
    if extra.get("salt"):
        derived = hashlib.pbkdf2_hmac("sha256", key, extra["salt"].encode("utf-8"),
                                      int(extra.get("iterations") or 1000),
                                      int(extra.get("keylen") or 32))
        key = base64.b64encode(derived)
    digest = hmac.new(key, extra["challenge"].encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")
