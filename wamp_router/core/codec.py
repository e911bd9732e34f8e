"""Validated conversion between decoded WAMP lists and message objects.

``parse(obj)`` turns what a serializer decoded into a ``Message`` or raises
``ProtocolViolation`` with a readable reason (not a list, unknown type, wrong
length, wrong field type, id out of range). ``to_list(msg)`` is the inverse.
URI *syntax* is not checked here: that depends on the realm's URI rules and
is answered with ERROR ``wamp.error.invalid_uri`` by the realm.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import ProtocolViolation
from .messages import BY_TYPE, NAMES, Call, Event, Invocation, Message, Publish, Result, Yield

MAX_ID = 2**53

# Field kinds of each message after the type code, in wire order.
ID, DICT, STR, INT = "id", "dict", "str", "int"
_FIELDS: dict[int, tuple[str, ...]] = {
    1: (STR, DICT),  # HELLO realm, details
    2: (ID, DICT),  # WELCOME
    3: (DICT, STR),  # ABORT
    4: (STR, DICT),  # CHALLENGE
    5: (STR, DICT),  # AUTHENTICATE
    6: (DICT, STR),  # GOODBYE
    8: (INT, ID, DICT, STR),  # ERROR
    16: (ID, DICT, STR),  # PUBLISH
    17: (ID, ID),  # PUBLISHED
    32: (ID, DICT, STR),  # SUBSCRIBE
    33: (ID, ID),  # SUBSCRIBED
    34: (ID, ID),  # UNSUBSCRIBE
    35: (ID,),  # UNSUBSCRIBED (+ optional details)
    36: (ID, ID, DICT),  # EVENT
    48: (ID, DICT, STR),  # CALL
    49: (ID, DICT),  # CANCEL
    50: (ID, DICT),  # RESULT
    64: (ID, DICT, STR),  # REGISTER
    65: (ID, ID),  # REGISTERED
    66: (ID, ID),  # UNREGISTER
    67: (ID,),  # UNREGISTERED (+ optional details)
    68: (ID, ID, DICT),  # INVOCATION
    69: (ID, DICT),  # INTERRUPT
    70: (ID, DICT),  # YIELD
}
# Messages that may carry Arguments|list and ArgumentsKw|dict after the fixed fields.
_PAYLOAD = frozenset({8, 16, 36, 48, 50, 68, 70})
# Messages that may carry one optional trailing Details|dict.
_OPTIONAL_DETAILS = frozenset({35, 67})

_NAMES_OF_FIELDS: dict[int, tuple[str, ...]] = {
    1: ("Realm", "Details"),
    2: ("Session", "Details"),
    3: ("Details", "Reason"),
    4: ("AuthMethod", "Extra"),
    5: ("Signature", "Extra"),
    6: ("Details", "Reason"),
    8: ("REQUEST.Type", "REQUEST.Request", "Details", "Error"),
    16: ("Request", "Options", "Topic"),
    17: ("Request", "Publication"),
    32: ("Request", "Options", "Topic"),
    33: ("Request", "Subscription"),
    34: ("Request", "Subscription"),
    35: ("Request",),
    36: ("Subscription", "Publication", "Details"),
    48: ("Request", "Options", "Procedure"),
    49: ("Request", "Options"),
    50: ("Request", "Details"),
    64: ("Request", "Options", "Procedure"),
    65: ("Request", "Registration"),
    66: ("Request", "Registration"),
    67: ("Request",),
    68: ("Request", "Registration", "Details"),
    69: ("Request", "Options"),
    70: ("Request", "Options"),
}


def _bad(code: int, index: int, expected: str, value: Any) -> ProtocolViolation:
    field = _NAMES_OF_FIELDS[code][index]
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return ProtocolViolation(
        f"{NAMES[code]}: {field} must be {expected}, got {type(value).__name__} {shown}"
    )


def _check_id(code: int, index: int, value: Any) -> None:
    if type(value) is not int or not 1 <= value <= MAX_ID:
        raise _bad(code, index, "an id (integer in [1, 2^53])", value)


def _check_field(code: int, index: int, kind: str, value: Any) -> None:
    if kind == ID:
        _check_id(code, index, value)
    elif kind == DICT:
        if type(value) is not dict:
            raise _bad(code, index, "a dict", value)
        for key in value:
            if type(key) is not str:
                raise _bad(code, index, "a dict with string keys", value)
    elif kind == STR:
        if type(value) is not str:
            raise _bad(code, index, "a string", value)
    elif type(value) is not int:
        raise _bad(code, index, "an integer", value)


def _check_payload(code: int, rest: list[Any]) -> None:
    if len(rest) > 2:
        raise ProtocolViolation(f"{NAMES[code]}: too many elements")
    if rest and type(rest[0]) is not list:
        raise ProtocolViolation(
            f"{NAMES[code]}: Arguments must be a list, got {type(rest[0]).__name__}"
        )
    if len(rest) == 2:
        kwargs = rest[1]
        if type(kwargs) is not dict or any(type(k) is not str for k in kwargs):
            raise ProtocolViolation(
                f"{NAMES[code]}: ArgumentsKw must be a dict with string keys, "
                f"got {type(kwargs).__name__}"
            )


def _str_keys(d: dict[Any, Any]) -> bool:
    for key in d:
        if type(key) is not str:
            return False
    return True


def _fast_request(obj: list[Any], cls: Callable[..., Message]) -> Message | None:
    """CALL and PUBLISH, the hot inbound messages: [T, id, dict, str, list?, dict?].
    Returns None when anything is off; the generic path then says what."""
    n = len(obj)
    if n < 4 or n > 6:
        return None
    request, options, uri = obj[1], obj[2], obj[3]
    if (type(request) is not int or not 0 < request <= MAX_ID or type(options) is not dict
            or type(uri) is not str or (options and not _str_keys(options))):
        return None
    args = kwargs = None
    if n > 4:
        args = obj[4]
        if type(args) is not list:
            return None
        if n > 5:
            kwargs = obj[5]
            if type(kwargs) is not dict or not _str_keys(kwargs):
                return None
    return cls(request, options, uri, args, kwargs)


def _fast_yield(obj: list[Any]) -> Message | None:
    """YIELD: [70, id, dict, list?, dict?]."""
    n = len(obj)
    if n < 3 or n > 5:
        return None
    request, options = obj[1], obj[2]
    if (type(request) is not int or not 0 < request <= MAX_ID or type(options) is not dict
            or (options and not _str_keys(options))):
        return None
    args = kwargs = None
    if n > 3:
        args = obj[3]
        if type(args) is not list:
            return None
        if n > 4:
            kwargs = obj[4]
            if type(kwargs) is not dict or not _str_keys(kwargs):
                return None
    return Yield(request, options, args, kwargs)


def parse(obj: Any) -> Message:
    """Validate a decoded WAMP message and build its message object."""
    if type(obj) is list and obj and type(obj[0]) is int:  # not 48.0 or True
        code = obj[0]
        fast: Message | None = None
        if code == 48:
            fast = _fast_request(obj, Call)
        elif code == 70:
            fast = _fast_yield(obj)
        elif code == 16:
            fast = _fast_request(obj, Publish)
        if fast is not None:
            return fast
    return _parse(obj)


def _parse(obj: Any) -> Message:
    if type(obj) is not list or not obj:
        raise ProtocolViolation(
            f"a WAMP message must be a non-empty list, got {type(obj).__name__}"
        )
    code = obj[0]
    if type(code) is not int or code not in _FIELDS:
        raise ProtocolViolation(f"unknown WAMP message type {code!r}")
    kinds = _FIELDS[code]
    n = len(kinds)
    if len(obj) <= n:
        raise ProtocolViolation(
            f"{NAMES[code]}: expected at least {n + 1} elements, got {len(obj)}"
        )
    for i in range(n):
        _check_field(code, i, kinds[i], obj[i + 1])
    rest = obj[n + 1 :]
    if code in _PAYLOAD:
        _check_payload(code, rest)
    elif code in _OPTIONAL_DETAILS:
        if len(rest) > 1 or (rest and (
                type(rest[0]) is not dict or any(type(k) is not str for k in rest[0]))):
            raise ProtocolViolation(f"{NAMES[code]}: Details must be a dict with string keys")
    elif rest:
        raise ProtocolViolation(f"{NAMES[code]}: expected {n + 1} elements, got {len(obj)}")
    factory: Callable[..., Message] = BY_TYPE[code]
    return factory(*obj[1:])


def _payload(head: list[Any], args: list[Any] | None, kwargs: dict[str, Any] | None) -> list[Any]:
    if kwargs is not None:
        head.append([] if args is None else args)
        head.append(kwargs)
    elif args is not None:
        head.append(args)
    return head


def to_list(msg: Message) -> list[Any]:
    """The wire list of a message (optional payload/details omitted when absent)."""
    cls = type(msg)
    if cls is Invocation:
        m: Any = msg
        return _payload([68, m.request, m.registration, m.details], m.args, m.kwargs)
    if cls is Result:
        m = msg
        return _payload([50, m.request, m.details], m.args, m.kwargs)
    if cls is Event:
        m = msg
        return _payload([36, m.subscription, m.publication, m.details], m.args, m.kwargs)
    return _to_list(msg)


def _to_list(msg: Message) -> list[Any]:
    code = msg.TYPE
    names: tuple[str, ...] = msg.__slots__
    values = [getattr(msg, name) for name in names]
    if code in _PAYLOAD:
        kwargs = values.pop()
        args = values.pop()
        if kwargs is not None:
            values.append([] if args is None else args)
            values.append(kwargs)
        elif args is not None:
            values.append(args)
    elif code in _OPTIONAL_DETAILS:
        if values[-1] is None:
            values.pop()
    return [code, *values]
