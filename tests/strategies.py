"""Shared hypothesis strategies for WAMP values and messages.

- ``ids``: WAMP ids, integers in [1, 2^53].
- ``loose_uris`` / ``strict_uris``: URIs by the spec's loose and strict rules
  (non-empty components; loose: no ``.``, ``#`` or whitespace; strict:
  ``[0-9a-z_]`` only).
- ``payload_values``: what an application may put into Arguments/ArgumentsKw
  or a Details/Options dict and expect to get back unchanged from every
  serializer: None, bool, ints within +-2^53, finite floats, text, bytes, and
  bounded lists and str-keyed dicts of those.
- ``messages()``: any of the 24 message classes with valid fields.
- ``json_like`` / ``wamp_like_lists``: arbitrary decoded values (non-string
  keys, NaN, huge ints, ...) for fuzzing ``codec.parse``.

Two deliberate restrictions of ``payload_values`` and of the text fields of
``messages()`` (limits of JSON, not of the router): text never starts with
``"\\x00"`` (in JSON such a string *is* the spec's encoding of binary data, so
it comes back as ``bytes``; NUL is even a valid loose-URI character), and floats
are finite (JSON has no infinity; orjson writes ``null``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import strategies as st

from wamp_router.core.messages import ALL_MESSAGES, Message

MAX_ID = 2**53

ids = st.integers(min_value=1, max_value=MAX_ID)

# --------------------------------------------------------------------- URIs
STRICT_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz_"


# Every character with str.isspace() (what the spec's regex \s means in Python)
# is in Zs/Zl/Zp/Cc; the non-space control characters are added back by hand.
_loose_chars = st.one_of(
    st.characters(exclude_categories=("Cs", "Zs", "Zl", "Zp", "Cc"), exclude_characters=".#"),
    st.sampled_from("\x00\x01\x1b\x7f"),
)
loose_components = st.text(_loose_chars, min_size=1, max_size=8)
strict_components = st.text(STRICT_ALPHABET, min_size=1, max_size=8)

loose_uris = st.lists(loose_components, min_size=1, max_size=5).map(".".join)
strict_uris = st.lists(strict_components, min_size=1, max_size=5).map(".".join)
# URIs for message fields: like all text in messages, never starting with NUL.
uris = st.one_of(strict_uris, loose_uris.filter(lambda u: not u.startswith("\x00")))

# ----------------------------------------------------------------- payloads
_text_chars = st.characters(exclude_categories=("Cs",))  # surrogates are not UTF-8
payload_text = st.text(_text_chars, max_size=12).filter(lambda s: not s.startswith("\x00"))
dict_keys = st.text(_text_chars, max_size=8)

payload_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-MAX_ID, max_value=MAX_ID),
    st.floats(allow_nan=False, allow_infinity=False),
    payload_text,
    st.binary(max_size=16),
)
payload_values = st.recursive(
    payload_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(dict_keys, children, max_size=4),
    ),
    max_leaves=12,
)
payload_lists = st.lists(payload_values, max_size=4)
payload_dicts = st.dictionaries(dict_keys, payload_values, max_size=4)

# ----------------------------------------------------------------- messages
# Kind of each message field, by field name (the wire types of the spec).
ID_FIELDS = frozenset({"request", "session", "subscription", "publication", "registration"})
DICT_FIELDS = frozenset({"details", "options", "extra"})
URI_FIELDS = frozenset({"realm", "reason", "error", "topic", "procedure"})
TEXT_FIELDS = frozenset({"method", "signature"})
INT_FIELDS = frozenset({"request_type"})
PAYLOAD_FIELDS = frozenset({"args", "kwargs"})

# Message types an ERROR can answer.
ERROR_REQUEST_TYPES = (16, 32, 34, 48, 64, 66, 68)

_FIELD_STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    **{name: ids for name in ID_FIELDS},
    **{name: payload_dicts for name in DICT_FIELDS},
    **{name: uris for name in URI_FIELDS},
    "method": st.one_of(st.sampled_from(["anonymous", "ticket", "wampcra"]), payload_text),
    "signature": payload_text,
    "request_type": st.sampled_from(ERROR_REQUEST_TYPES),
    "args": payload_lists,
    "kwargs": payload_dicts,
}


def field_kind(name: str) -> str:
    """``id``, ``dict``, ``str``, ``int``, ``args`` or ``kwargs`` for a field name."""
    if name in ID_FIELDS:
        return "id"
    if name in DICT_FIELDS:
        return "dict"
    if name in URI_FIELDS or name in TEXT_FIELDS:
        return "str"
    if name in INT_FIELDS:
        return "int"
    if name in PAYLOAD_FIELDS:
        return name
    raise KeyError(f"unknown message field {name!r}")


def _field_strategy(field: dataclasses.Field[Any]) -> st.SearchStrategy[Any]:
    base = _FIELD_STRATEGIES[field.name]
    if field.default is None:  # optional on the wire
        return st.one_of(st.none(), base)
    return base


def _canonical(values: dict[str, Any]) -> dict[str, Any]:
    # On the wire ArgumentsKw needs Arguments before it: a message with kwargs
    # and no args is sent (and read back) with args == [].
    if values.get("kwargs") is not None and values.get("args") is None:
        values["args"] = []
    return values


def message_of(cls: type[Message]) -> st.SearchStrategy[Message]:
    """Any valid message of class ``cls`` (canonical: kwargs imply args)."""
    fields = dataclasses.fields(cls)
    return st.fixed_dictionaries({f.name: _field_strategy(f) for f in fields}).map(
        lambda values: cls(**_canonical(values))
    )


def messages(classes: tuple[type[Message], ...] = ALL_MESSAGES) -> st.SearchStrategy[Message]:
    """Any valid message of any of ``classes`` (default: all 24)."""
    return st.sampled_from(classes).flatmap(message_of)


# ---------------------------------------------------------------- fuzzing
_weird_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-2, max_value=2),
    st.sampled_from([0, MAX_ID, MAX_ID + 1, -MAX_ID, 2**63, 2**64]),
    st.floats(),
    st.text(max_size=8),
    st.binary(max_size=8),
)
_weird_keys = st.one_of(
    st.text(max_size=4), st.integers(), st.none(), st.booleans(), st.binary(max_size=4)
)
json_like = st.recursive(
    _weird_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.text(max_size=4), children, max_size=3),
        st.dictionaries(_weird_keys, children, max_size=3),
    ),
    max_leaves=15,
)
"""Anything a decoder might hand to the codec (including non-str keys and NaN)."""

_message_codes = st.sampled_from(sorted(cls.TYPE for cls in ALL_MESSAGES))
_near_fields = st.one_of(ids, payload_dicts, uris, payload_lists, json_like)
wamp_like_lists = st.builds(
    lambda code, rest: [code, *rest],
    st.one_of(_message_codes, json_like),
    st.lists(_near_fields, max_size=7),
)
"""Lists that look like WAMP messages: a (mostly) known code, then field-like values."""
