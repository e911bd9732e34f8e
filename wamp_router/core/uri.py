"""URI validation by the spec's rules (building blocks, "Relaxed/Loose URIs"
and "Strict URIs"), for exact URIs and for patterns with empty (wildcard)
components. Pure functions over compiled regular expressions.
"""

from __future__ import annotations

import re
from typing import Literal

UriCheck = Literal["loose", "strict"]

_LOOSE = re.compile(r"^([^\s.#]+\.)*([^\s.#]+)$")
_STRICT = re.compile(r"^([0-9a-z_]+\.)*([0-9a-z_]+)$")
_LOOSE_EMPTY = re.compile(r"^(([^\s.#]+\.)|\.)*([^\s.#]+)?$")
_STRICT_EMPTY = re.compile(r"^(([0-9a-z_]+\.)|\.)*([0-9a-z_]+)?$")


def is_valid_uri(uri: str, check: UriCheck = "loose") -> bool:
    """An exact URI: non-empty components."""
    rx = _STRICT if check == "strict" else _LOOSE
    return rx.fullmatch(uri) is not None


def is_valid_pattern(uri: str, match: str, check: UriCheck = "loose") -> bool:
    """A subscription/registration URI under a match policy."""
    if match == "exact":
        return is_valid_uri(uri, check)
    rx = _STRICT_EMPTY if check == "strict" else _LOOSE_EMPTY
    if match == "prefix":
        return uri == "" or rx.fullmatch(uri) is not None
    if match == "wildcard":
        return rx.fullmatch(uri) is not None and uri.replace(".", "") != ""
    return False
