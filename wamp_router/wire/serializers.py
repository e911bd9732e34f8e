"""WAMP serializers: bytes on the wire <-> Python lists, pure.

Three serializers: ``json`` (orjson), ``msgpack`` and ``cbor`` (cbor2).
JSON carries binary values by the spec's convention (serialization of binary
data in JSON): a string whose first character is ``\\u0000`` holds the
base64 of the bytes. Decoding turns such strings back into ``bytes`` (only
walking the decoded value when the raw text contains an escaped NUL at all),
encoding turns ``bytes`` into such strings. Hence a session on any
serializer can exchange binary payloads with a session on any other.

``decode`` raises ``DecodeError``; ``encode`` raises ``EncodeError``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Final

import cbor2
import msgpack
import orjson


class DecodeError(ValueError):
    """The bytes are not a valid message in this serializer's format."""


class EncodeError(ValueError):
    """The value cannot be represented in this serializer's format."""


class Serializer:
    """Interface: ``name``, ``subprotocol``, ``rawsocket_id``, ``binary``."""

    __slots__ = ()
    name: str = ""
    subprotocol: str = ""
    rawsocket_id: int = 0
    binary: bool = True  # WebSocket frame type: binary, or text for JSON

    def decode(self, data: bytes) -> Any:
        raise NotImplementedError

    def encode(self, obj: Any) -> bytes:
        raise NotImplementedError


def _bytes_to_json(obj: Any) -> Any:
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return "\x00" + base64.b64encode(bytes(obj)).decode("ascii")
    raise TypeError(f"type {type(obj).__name__} is not serializable")


def _json_binary(obj: Any) -> Any:
    """Replace strings that start with NUL by the bytes they encode."""
    if type(obj) is str:
        if obj and obj[0] == "\x00":
            try:
                return base64.b64decode(obj[1:], validate=True)
            except (binascii.Error, ValueError):
                raise DecodeError("invalid base64 in a binary (\\u0000-prefixed) string") from None
        return obj
    if type(obj) is list:
        return [_json_binary(v) for v in obj]
    if type(obj) is dict:
        return {k: _json_binary(v) for k, v in obj.items()}
    return obj


_JSON_OPTS: Final = orjson.OPT_NON_STR_KEYS


class JsonSerializer(Serializer):
    __slots__ = ()
    name = "json"
    subprotocol = "wamp.2.json"
    rawsocket_id = 1
    binary = False

    def decode(self, data: bytes) -> Any:
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"invalid JSON: {exc}") from None
        if b"\\u0000" in data:
            try:
                obj = _json_binary(obj)
            except RecursionError:
                raise DecodeError("JSON nested too deeply") from None
        return obj

    def encode(self, obj: Any) -> bytes:
        try:
            return orjson.dumps(obj, default=_bytes_to_json, option=_JSON_OPTS)
        except TypeError as exc:
            raise EncodeError(f"cannot encode as JSON: {exc}") from None


class MsgPackSerializer(Serializer):
    __slots__ = ()
    name = "msgpack"
    subprotocol = "wamp.2.msgpack"
    rawsocket_id = 2

    def decode(self, data: bytes) -> Any:
        try:
            return msgpack.unpackb(data, raw=False, strict_map_key=False)
        except Exception as exc:  # msgpack raises several unrelated types
            raise DecodeError(f"invalid MessagePack: {exc}") from None

    def encode(self, obj: Any) -> bytes:
        try:
            return msgpack.packb(obj, use_bin_type=True, datetime=False)  # type: ignore[no-any-return]
        except (TypeError, ValueError, OverflowError) as exc:
            raise EncodeError(f"cannot encode as MessagePack: {exc}") from None


def _cbor_tag(*args: Any) -> Any:
    """Tag 64 (an RFC 8746 uint8 typed array, what JavaScript clients send for a
    Uint8Array) is plain bytes; other tags stay tags (and a receiver whose
    serializer cannot carry them gets the call failed with an ERROR)."""
    # cbor2 5 calls hook(decoder, tag), cbor2 6 hook(tag, immutable)
    tag = next(a for a in args if isinstance(a, cbor2.CBORTag))
    if tag.tag == 64 and isinstance(tag.value, bytes):
        return tag.value
    return tag


class CborSerializer(Serializer):
    __slots__ = ()
    name = "cbor"
    subprotocol = "wamp.2.cbor"
    rawsocket_id = 3

    def decode(self, data: bytes) -> Any:
        try:
            return cbor2.loads(data, tag_hook=_cbor_tag)
        except Exception as exc:  # cbor2 raises several unrelated types
            raise DecodeError(f"invalid CBOR: {exc}") from None

    def encode(self, obj: Any) -> bytes:
        try:
            return cbor2.dumps(obj)
        except (TypeError, ValueError, cbor2.CBOREncodeError) as exc:
            raise EncodeError(f"cannot encode as CBOR: {exc}") from None


SERIALIZERS: Final[dict[str, Serializer]] = {
    s.name: s for s in (JsonSerializer(), MsgPackSerializer(), CborSerializer())
}
BY_SUBPROTOCOL: Final[dict[str, Serializer]] = {s.subprotocol: s for s in SERIALIZERS.values()}
BY_RAWSOCKET_ID: Final[dict[int, Serializer]] = {s.rawsocket_id: s for s in SERIALIZERS.values()}
