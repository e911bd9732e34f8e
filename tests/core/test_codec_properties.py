"""Properties of ``codec.parse``/``codec.to_list`` and the three serializers.

(a) ``parse`` inverts ``to_list`` for any message; (b) so does every serializer
in between (bytes stay bytes, also across JSON); (c) every malformed message
is a ``ProtocolViolation``, never another exception. Fuzzing: any decoded
value is parsed or rejected with ``ProtocolViolation``, any bytes are decoded
or rejected with ``DecodeError``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.strategies import (
    MAX_ID,
    field_kind,
    json_like,
    message_of,
    messages,
    payload_dicts,
    payload_lists,
    payload_values,
    wamp_like_lists,
)
from wamp_router.core import codec
from wamp_router.core.errors import ProtocolViolation
from wamp_router.core.messages import (
    ALL_MESSAGES,
    BY_TYPE,
    Event,
    Message,
    Publish,
    Result,
    Unregistered,
    Unsubscribed,
)
from wamp_router.wire.serializers import SERIALIZERS, DecodeError

MODEST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SERIALIZER_NAMES = sorted(SERIALIZERS)


def _fields(cls: type[Message]) -> tuple[dataclasses.Field[Any], ...]:
    return dataclasses.fields(cls)  # type: ignore[arg-type]


def _classes_with(*kinds: str) -> tuple[type[Message], ...]:
    return tuple(c for c in ALL_MESSAGES if any(field_kind(f.name) in kinds for f in _fields(c)))


PAYLOAD_CLASSES = _classes_with("args")
OPTIONAL_DETAILS_CLASSES = (Unsubscribed, Unregistered)
ID_CLASSES = _classes_with("id")
TYPED_CLASSES = _classes_with("dict", "str", "int")


def _typed(value: Any) -> Any:
    """``value`` with the exact type of every node made part of it (1 != 1.0 != True)."""
    if type(value) is list:
        return ("list", [_typed(v) for v in value])
    if type(value) is dict:
        return ("dict", sorted((repr(k), _typed(v)) for k, v in value.items()))
    return (type(value).__name__, value)


def _required_length(cls: type[Message]) -> int:
    return 1 + sum(1 for f in _fields(cls) if f.default is dataclasses.MISSING)


def _full_list(msg: Message) -> list[Any]:
    """The wire list of ``msg`` with every optional element present."""
    filled = {
        f.name: ([] if f.name == "args" else {})
        for f in _fields(type(msg))
        if f.default is None and getattr(msg, f.name) is None
    }
    return codec.to_list(dataclasses.replace(msg, **filled))  # type: ignore[type-var]


def _positions(cls: type[Message], *kinds: str) -> list[int]:
    """List indexes (1-based after the type code) of the fields of the given kinds."""
    return [i + 1 for i, f in enumerate(_fields(cls)) if field_kind(f.name) in kinds]


# ===================================================== (a) and (b): round trips
@MODEST
@given(messages())
def test_parse_inverts_to_list(msg: Message) -> None:
    wire = codec.to_list(msg)
    assert wire[0] == msg.TYPE
    again = codec.parse(wire)
    assert type(again) is type(msg)
    assert again == msg


@pytest.mark.parametrize("ser", SERIALIZER_NAMES)
@MODEST
@given(msg=messages())
def test_serializer_round_trip(ser: str, msg: Message) -> None:
    serializer = SERIALIZERS[ser]
    data = serializer.encode(codec.to_list(msg))
    assert type(data) is bytes
    again = codec.parse(serializer.decode(data))
    assert again == msg
    # exact types too: bytes stay bytes (also in JSON), ints stay ints, ...
    assert _typed(codec.to_list(again)) == _typed(codec.to_list(msg))


@pytest.mark.parametrize("ser", SERIALIZER_NAMES)
@MODEST
@given(value=payload_values)
def test_payload_values_survive_every_serializer(ser: str, value: Any) -> None:
    msg = Publish(1, {"v": value}, "com.example.topic", [value], {"v": value})
    again = codec.parse(SERIALIZERS[ser].decode(SERIALIZERS[ser].encode(codec.to_list(msg))))
    assert _typed(codec.to_list(again)) == _typed(codec.to_list(msg))


@MODEST
@given(msg=messages(PAYLOAD_CLASSES))
def test_messages_cross_serializers(msg: Message) -> None:
    # What the router does: read from one serializer, forward on another.
    for ser in SERIALIZERS.values():
        first = codec.parse(ser.decode(ser.encode(codec.to_list(msg))))
        for other in SERIALIZERS.values():
            second = codec.parse(other.decode(other.encode(codec.to_list(first))))
            assert _typed(codec.to_list(second)) == _typed(codec.to_list(msg)), (ser, other)


def test_kwargs_without_args_are_sent_with_empty_args() -> None:
    # Not canonical in memory, but the wire needs Arguments before ArgumentsKw.
    msg = Result(7, {}, None, {"a": 1})
    assert codec.to_list(msg) == [50, 7, {}, [], {"a": 1}]
    assert codec.parse(codec.to_list(msg)) == Result(7, {}, [], {"a": 1})


@pytest.mark.parametrize(
    ("msg", "wire"),
    [
        (Event(1, 2, {}), [36, 1, 2, {}]),
        (Event(1, 2, {}, []), [36, 1, 2, {}, []]),
        (Event(1, 2, {}, [1], {}), [36, 1, 2, {}, [1], {}]),
        (Unsubscribed(3), [35, 3]),
        (Unsubscribed(3, {}), [35, 3, {}]),
        (Unregistered(4, {"reason": "x"}), [67, 4, {"reason": "x"}]),
    ],
)
def test_optional_elements_are_omitted_only_when_absent(msg: Message, wire: list[Any]) -> None:
    assert codec.to_list(msg) == wire
    assert codec.parse(wire) == msg


@pytest.mark.parametrize("value", [1, MAX_ID])
def test_id_bounds_are_accepted(value: int) -> None:
    assert codec.parse([33, value, value]) == BY_TYPE[33](value, value)


# ============================================== (c): invalid input is rejected
def _rejected(obj: Any) -> None:
    with pytest.raises(ProtocolViolation) as info:
        codec.parse(obj)
    assert str(info.value)


@MODEST
@given(
    st.one_of(
        json_like.filter(lambda v: type(v) is not list),
        messages().map(lambda m: tuple(codec.to_list(m))),
    )
)
def test_non_lists_are_rejected(value: Any) -> None:
    _rejected(value)


def test_empty_list_is_rejected() -> None:
    _rejected([])


_unknown_codes = st.one_of(
    st.integers().filter(lambda c: c not in BY_TYPE),
    st.sampled_from([0, 7, 9, 37, 71, 337, -48]),
    st.booleans(),
    st.floats(),
    st.sampled_from([48.0, "48", b"0"]),
    st.text(max_size=4),
    st.none(),
    st.lists(st.integers(), max_size=2),
)


@MODEST
@given(messages(), _unknown_codes)
def test_unknown_type_codes_are_rejected(msg: Message, code: Any) -> None:
    _rejected([code, *codec.to_list(msg)[1:]])


@MODEST
@given(messages(), st.data())
def test_too_short_is_rejected(msg: Message, data: st.DataObject) -> None:
    wire = codec.to_list(msg)
    length = data.draw(st.integers(1, _required_length(type(msg)) - 1), label="length")
    _rejected(wire[:length])


@MODEST
@given(messages(), st.lists(payload_values, min_size=1, max_size=3))
def test_too_long_is_rejected(msg: Message, extra: list[Any]) -> None:
    _rejected(_full_list(msg) + extra)


_bad_ids = st.one_of(
    st.sampled_from(
        [
            0,
            -1,
            -MAX_ID,
            MAX_ID + 1,
            2**63,
            2**64,
            True,
            False,
            1.0,
            7.5,
            "1",
            b"\x01",
            None,
            [1],
            {"id": 1},
        ]
    ),
    st.integers(max_value=0),
    st.integers(min_value=MAX_ID + 1),
    st.floats(),
    st.text(max_size=5),
)


@MODEST
@given(messages(ID_CLASSES), st.data())
def test_ids_out_of_range_or_of_wrong_type_are_rejected(msg: Message, data: st.DataObject) -> None:
    wire = _full_list(msg)
    position = data.draw(st.sampled_from(_positions(type(msg), "id")), label="position")
    wire[position] = data.draw(_bad_ids, label="bad id")
    _rejected(wire)


_not_dicts = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=5),
    st.binary(max_size=5),
    st.lists(st.integers(), max_size=2),
)
_not_strs = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.binary(max_size=5),
    st.lists(st.text(max_size=3), max_size=2),
    st.dictionaries(st.text(max_size=3), st.none()),
)
_not_ints = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(),
    st.sampled_from([48.0, "48"]),
    st.text(max_size=3),
    st.binary(max_size=3),
    st.lists(st.integers(), max_size=2),
)
_WRONG_VALUES = {"dict": _not_dicts, "str": _not_strs, "int": _not_ints}


@MODEST
@given(messages(TYPED_CLASSES), st.data())
def test_fields_of_wrong_type_are_rejected(msg: Message, data: st.DataObject) -> None:
    wire = _full_list(msg)
    fields = [
        (i + 1, field_kind(f.name))
        for i, f in enumerate(_fields(type(msg)))
        if field_kind(f.name) in _WRONG_VALUES
    ]
    position, kind = data.draw(st.sampled_from(fields), label="field")
    wire[position] = data.draw(_WRONG_VALUES[kind], label="wrong value")
    _rejected(wire)


_non_str_keys = st.one_of(
    st.integers(),
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False),
    st.binary(max_size=3),
    st.tuples(st.integers()),
)


@st.composite
def _dicts_with_a_non_str_key(draw: st.DrawFn) -> dict[Any, Any]:
    value = dict(draw(payload_dicts))
    value[draw(_non_str_keys)] = draw(payload_values)
    return value


def _mandatory_dict_positions(cls: type[Message]) -> list[int]:
    # The optional trailing Details of UNSUBSCRIBED/UNREGISTERED has its own test below.
    return [
        i + 1
        for i, f in enumerate(_fields(cls))
        if field_kind(f.name) in ("dict", "kwargs")
        and not (cls in OPTIONAL_DETAILS_CLASSES and f.name == "details")
    ]


@MODEST
@given(messages(_classes_with("dict", "kwargs")), st.data())
def test_non_string_dict_keys_are_rejected(msg: Message, data: st.DataObject) -> None:
    wire = _full_list(msg)
    positions = _mandatory_dict_positions(type(msg))
    if not positions:
        return
    position = data.draw(st.sampled_from(positions), label="dict")
    wire[position] = data.draw(_dicts_with_a_non_str_key(), label="bad dict")
    _rejected(wire)


@pytest.mark.parametrize("wire", [[35, 1, {None: []}], [67, 1, {1: "x"}]])
def test_optional_details_with_non_string_keys_are_rejected(wire: list[Any]) -> None:
    _rejected(wire)


_not_lists = st.one_of(
    _not_dicts.filter(lambda v: type(v) is not list), payload_dicts, st.tuples(st.integers())
)


@MODEST
@given(messages(PAYLOAD_CLASSES), _not_lists, st.booleans())
def test_arguments_not_a_list_are_rejected(msg: Message, bad: Any, with_kwargs: bool) -> None:
    wire = _full_list(msg)
    position = _positions(type(msg), "args")[0]
    wire[position] = bad
    if not with_kwargs:
        del wire[position + 1]
    _rejected(wire)


@MODEST
@given(messages(PAYLOAD_CLASSES), st.one_of(_not_dicts, payload_lists.filter(bool)))
def test_arguments_kw_not_a_dict_are_rejected(msg: Message, bad: Any) -> None:
    wire = _full_list(msg)
    wire[_positions(type(msg), "kwargs")[0]] = bad
    _rejected(wire)


@MODEST
@given(messages(OPTIONAL_DETAILS_CLASSES), _not_dicts)
def test_optional_details_not_a_dict_are_rejected(msg: Message, bad: Any) -> None:
    _rejected([*codec.to_list(msg)[:2], bad])


@pytest.mark.parametrize(
    "wire",
    [
        [1, "realm1"],  # HELLO without Details
        [1, "realm1", {}, {}],  # HELLO with an extra element
        [2, 0, {}],  # WELCOME session 0
        [2, 2**53 + 1, {}],  # WELCOME session above 2^53
        [2, True, {}],  # bool is no id
        [8, 48.0, 1, {}, "com.error"],  # ERROR REQUEST.Type as float
        [8, 48, 1, {}, "com.error", {}],  # Arguments as dict
        [16, 1, {}, "t", [], []],  # ArgumentsKw as list
        [16, 1, {}, "t", None],  # Arguments null
        [16, 1, {}, "t", [], {}, []],  # three payload elements
        [32, 1, {1: True}, "t"],  # non-string Options key
        [48, 1, {}, "p", [], {b"k": 1}],  # non-string ArgumentsKw key
        [48, 1, [], "p"],  # Options as list
        [48, 1, {}, b"p"],  # Procedure as bytes
        [35, 1, None],  # UNSUBSCRIBED Details null
        [35, 1, {}, {}],  # UNSUBSCRIBED with two Details
        [66, 1],  # UNREGISTER without Registration
        [True, "realm1", {}],  # type code True == 1
    ],
)
def test_invalid_examples_are_rejected(wire: list[Any]) -> None:
    _rejected(wire)


# ============================================================== fuzzing
@FUZZ
@given(st.one_of(json_like, wamp_like_lists))
def test_parse_either_returns_a_message_or_raises_protocol_violation(value: Any) -> None:
    try:
        msg = codec.parse(value)
    except ProtocolViolation:
        return
    assert isinstance(msg, Message)
    assert type(msg) is BY_TYPE[value[0]]
    assert codec.to_list(msg) == value  # a valid list is already canonical


@st.composite
def _damaged_encodings(draw: st.DrawFn, ser: str) -> bytes:
    value = draw(st.one_of(messages().map(codec.to_list), payload_values))
    data = bytearray(SERIALIZERS[ser].encode(value))
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["truncate", "flip", "insert"]))
        index = draw(st.integers(0, len(data)))
        if action == "truncate":
            del data[index:]
        elif action == "flip" and index < len(data):
            data[index] ^= draw(st.integers(1, 255))
        else:
            data[index:index] = draw(st.binary(min_size=1, max_size=3))
    return bytes(data)


def _decode_or_decode_error(ser: str, data: bytes) -> None:
    try:
        SERIALIZERS[ser].decode(data)
    except DecodeError:
        pass


@pytest.mark.parametrize("ser", SERIALIZER_NAMES)
@FUZZ
@given(data=st.binary(max_size=64))
def test_decode_of_any_bytes_returns_or_raises_decode_error(ser: str, data: bytes) -> None:
    _decode_or_decode_error(ser, data)


@pytest.mark.parametrize("ser", SERIALIZER_NAMES)
@FUZZ
@given(data=st.data())
def test_decode_of_damaged_encodings_returns_or_raises_decode_error(
    ser: str, data: st.DataObject
) -> None:
    _decode_or_decode_error(ser, data.draw(_damaged_encodings(ser)))


@pytest.mark.parametrize(
    "data",
    [
        b'[16, 1, {}, "t", ["\\u0000not base64!"]]',  # invalid base64 after the NUL marker
        b'["\\u0000YQ"]',  # missing base64 padding
        b'[16, 1, {}, "t", ["\\u0000\\n"]]',
        b"\xff\xfe",  # not UTF-8
        b"[1, 2",  # truncated
        b"",
    ],
)
def test_json_invalid_inputs_raise_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        SERIALIZERS["json"].decode(data)


def test_json_binary_convention() -> None:
    json_ser = SERIALIZERS["json"]
    assert json_ser.encode([b"\x00\x01"]) == b'["\\u0000AAE="]'
    assert json_ser.decode(b'["\\u0000AAE=", "a\\u0000b", {"\\u0000k": "\\u0000"}]') == [
        b"\x00\x01",
        "a\x00b",
        {"\x00k": b""},
    ]


def test_json_deeply_nested_binary_string_raises_decode_error_or_decodes() -> None:
    depth = 1000  # orjson itself accepts this depth
    data = b"[" * depth + b'"\\u0000AA=="' + b"]" * depth
    _decode_or_decode_error("json", data)


@pytest.mark.parametrize("ser", SERIALIZER_NAMES)
def test_deep_nesting_within_decoder_limits_does_not_escape_as_other_errors(ser: str) -> None:
    for depth in (100, 2000):
        value: Any = []
        for _ in range(depth):
            value = [value]
        try:
            data = SERIALIZERS[ser].encode(value)
        except ValueError:  # EncodeError is a ValueError: refused cleanly
            continue
        _decode_or_decode_error(ser, data)


# A strategy sanity check: every class is produced with valid fields.
@pytest.mark.parametrize("cls", ALL_MESSAGES, ids=lambda c: c.__name__)
@settings(max_examples=5, deadline=None)
@given(data=st.data())
def test_strategy_produces_valid_messages_of_every_class(cls: type[Message], data: Any) -> None:
    msg = data.draw(message_of(cls))
    assert type(msg) is cls
    assert codec.parse(codec.to_list(msg)) == msg
