"""The data-sync JSON-patch engine (``wamp_router.core.sync.patch``).

Unit tests per op, error kind, intent-op expansion, unit and conflict rule, and
properties against independent naive references written here: a deepcopy-based
RFC 6902 + intent-op applier and a recursive RFC 7386 merge. (1) Random op
lists drawn against the current document: each op is accepted exactly when the
naive applier accepts it, the results agree, the input is never mutated, and
the normalised ops replay (with ``apply_normalised`` and the naive applier) to
the same document. (2) ``apply_merge`` agrees with the RFC 7386 reference and
its ops replay. (3) Junk ops only ever raise ``PatchError``.
"""

from __future__ import annotations

import copy
import math
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wamp_router.core.sync import patch as patch_module
from wamp_router.core.sync.patch import (
    Applied,
    Limits,
    PatchError,
    apply_merge,
    apply_normalised,
    apply_ops,
    check_value,
    conflicts,
    format_pointer,
    json_equal,
    parse_pointer,
)

NOW = "2024-05-06T07:08:09.123Z"


def run(doc: Any, *ops: dict[str, Any], **kwargs: Any) -> Applied:
    """Apply, and check the invariants every successful call must keep."""
    before = copy.deepcopy(doc)
    applied = apply_ops(doc, list(ops), now=NOW, **kwargs)
    assert strict_equal(doc, before), "the input document was mutated"
    assert strict_equal(apply_normalised(doc, applied.ops), applied.value)
    assert strict_equal(naive_apply(doc, applied.ops), applied.value)
    assert_normalised(doc, applied.ops)
    return applied


def fails(doc: Any, ops: Any, kind: str, index: int | None = 0, **kwargs: Any) -> PatchError:
    before = copy.deepcopy(doc)
    with pytest.raises(PatchError) as info:
        apply_ops(doc, ops, now=NOW, **kwargs)
    assert strict_equal(doc, before), "the input document was mutated"
    assert (info.value.kind, info.value.index) == (kind, index), info.value.message
    return info.value


# ====================================================================== references


def strict_equal(a: Any, b: Any) -> bool:
    """Equality that also compares types (True != 1, 1 != 1.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(strict_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def ref_equal(a: Any, b: Any) -> bool:
    """JSON equality, written independently of ``json_equal``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return bool(a == b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(ref_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(ref_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def ref_merge(target: Any, patch: Any) -> Any:
    """RFC 7386 section 2, literally (on copies)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = ref_merge(result.get(key), value)
    return result


class Invalid(Exception):
    pass


def n_tokens(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/") or re.search("~[^01]|~$", pointer):
        raise Invalid(pointer)
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]


def n_index(token: str, limit: int) -> int:
    if not re.fullmatch("0|[1-9][0-9]*", token) or int(token) > limit:
        raise Invalid(token)
    return int(token)


def n_get(doc: Any, tokens: list[str]) -> Any:
    for token in tokens:
        if isinstance(doc, dict) and token in doc:
            doc = doc[token]
        elif isinstance(doc, list):
            doc = doc[n_index(token, len(doc) - 1)]
        else:
            raise Invalid(tokens)
    return doc


def n_add(doc: Any, tokens: list[str], value: Any, dash: bool = True) -> Any:
    if not tokens:
        return value
    parent = n_get(doc, tokens[:-1])
    if isinstance(parent, dict):
        parent[tokens[-1]] = value
    elif isinstance(parent, list):
        at_end = tokens[-1] == "-" and dash
        index = len(parent) if at_end else n_index(tokens[-1], len(parent))
        parent.insert(index, value)
    else:
        raise Invalid(tokens)
    return doc


def n_remove(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        raise Invalid("root")
    parent = n_get(doc, tokens[:-1])
    if isinstance(parent, dict) and tokens[-1] in parent:
        return parent.pop(tokens[-1])
    if isinstance(parent, list):
        return parent.pop(n_index(tokens[-1], len(parent) - 1))
    raise Invalid(tokens)


def n_lookup(doc: Any, tokens: list[str]) -> tuple[bool, Any]:
    for n, token in enumerate(tokens):
        if isinstance(doc, dict):
            if token not in doc:
                return False, None
            doc = doc[token]
        elif isinstance(doc, list):
            if n == len(tokens) - 1 and token == str(len(doc)):
                return False, None
            doc = doc[n_index(token, len(doc) - 1)]
        else:
            raise Invalid(tokens)
    return True, doc


def n_set(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict):
            node = node.setdefault(token, {})
        elif isinstance(node, list):
            node = node[n_index(token, len(node) - 1)]
        else:
            raise Invalid(tokens)
    if isinstance(node, dict):
        node[tokens[-1]] = value
    elif isinstance(node, list) and tokens[-1] in ("-", str(len(node))):
        node.append(value)
    elif isinstance(node, list):
        node[n_index(tokens[-1], len(node) - 1)] = value
    else:
        raise Invalid(tokens)
    return doc


def n_intent(doc: Any, op: dict[str, Any], path: list[str]) -> Any:
    name = op["op"]
    if name == "x-set":
        return n_set(doc, path, copy.deepcopy(op["value"]))
    if name == "x-now":
        return n_set(doc, path, NOW)
    found, target = n_lookup(doc, path)
    if name == "x-merge":
        return n_set(doc, path, ref_merge(target, op["value"]))
    if name == "x-inc":
        if not found:
            return n_set(doc, path, op["by"])
        if isinstance(target, bool) or not isinstance(target, int | float):
            raise Invalid("not a number")
        return n_set(doc, path, target + op["by"])
    return n_list_intent(doc, op, path, found, target)


def n_list_intent(doc: Any, op: dict[str, Any], path: list[str], found: bool, target: Any) -> Any:
    if found and not isinstance(target, list):
        raise Invalid("not an array")
    if op["op"] == "x-append-unique":
        if not found:
            return n_set(doc, path, [copy.deepcopy(op["value"])])
        if not any(ref_equal(item, op["value"]) for item in target):
            target.append(copy.deepcopy(op["value"]))
    elif found:  # x-remove-value
        target[:] = [item for item in target if not ref_equal(item, op["value"])]
    return doc


def n_op(doc: Any, op: dict[str, Any], dash: bool = True) -> Any:
    """One op (``dash``: whether "-" may name the end of an array)."""
    name, path = op["op"], n_tokens(op["path"])
    if name.startswith("x-"):
        return n_intent(doc, op, path)
    if name in ("move", "copy"):
        return n_move_copy(doc, op, path, dash)
    if name == "add":
        return n_add(doc, path, copy.deepcopy(op["value"]), dash)
    if name == "remove":
        n_remove(doc, path)
        return doc
    if name == "replace":
        n_get(doc, path)
        if not path:
            return copy.deepcopy(op["value"])
        n_remove(doc, path)
        return n_add(doc, path, copy.deepcopy(op["value"]))
    if not ref_equal(n_get(doc, path), op["value"]):  # test
        raise Invalid("test")
    return doc


def n_move_copy(doc: Any, op: dict[str, Any], path: list[str], dash: bool) -> Any:
    source = n_tokens(op["from"])
    value = n_get(doc, source)
    if op["op"] == "copy":
        return n_add(doc, path, copy.deepcopy(value), dash)
    if path[: len(source)] == source and len(source) < len(path):
        raise Invalid("move into own child")
    if source == path:
        return doc
    n_remove(doc, source)
    return n_add(doc, path, value, dash)


def naive_apply(doc: Any, ops: list[dict[str, Any]], dash: bool = True) -> Any:
    doc = copy.deepcopy(doc)
    for op in ops:
        doc = n_op(doc, op, dash)
    return doc


def assert_normalised(doc: Any, ops: list[dict[str, Any]]) -> None:
    """Plain RFC 6902 with exactly the needed members, and no "-" index."""
    naive_apply(doc, ops, dash=False)
    for op in ops:
        assert op["op"] in ("add", "remove", "replace", "move", "copy"), op
        members = {"op", "path"} | {"add": {"value"}, "replace": {"value"}}.get(op["op"], set())
        if op["op"] in ("move", "copy"):
            members = {"op", "path", "from"}
        assert set(op) == members, op


# ====================================================================== pointers


@pytest.mark.parametrize(
    ("pointer", "tokens"),
    [
        ("", []),
        ("/", [""]),
        ("/a/b", ["a", "b"]),
        ("/a~1b/~0c", ["a/b", "~c"]),
        ("/~01", ["~1"]),
        ("/~10", ["/0"]),
        ("//x/", ["", "x", ""]),
        ("/ /%25", [" ", "%25"]),
    ],
)
def test_pointer_parse_and_format(pointer: str, tokens: list[str]) -> None:
    assert parse_pointer(pointer) == tokens
    assert format_pointer(tokens) == pointer


@pytest.mark.parametrize("pointer", ["a", "a/b", "/~", "/~2", "/a~", "/~a/b", "#/a"])
def test_invalid_pointers(pointer: str) -> None:
    with pytest.raises(PatchError) as info:
        parse_pointer(pointer)
    assert info.value.kind == "invalid_patch"


def test_pointer_must_be_a_string() -> None:
    with pytest.raises(PatchError):
        parse_pointer(5)  # type: ignore[arg-type]


@given(st.lists(st.text(max_size=5), max_size=5))
@settings(max_examples=100)
def test_pointer_roundtrip(tokens: list[str]) -> None:
    assert parse_pointer(format_pointer(tokens)) == tokens


# ====================================================================== json_equal


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        (1, 1.0, True),
        (True, 1, False),
        (1, True, False),
        (False, 0, False),
        (0.0, False, False),
        (True, True, True),
        (None, False, False),
        (None, None, True),
        ("1", 1, False),
        ({"a": 1, "b": [1, 2]}, {"b": [1.0, 2], "a": 1}, True),
        ({"a": 1}, {"a": 1, "b": None}, False),
        ([1, 2], [2, 1], False),
        ([1, [True]], [1, [1]], False),
        ([], {}, False),
        ({}, {}, True),
        ([[]], [[]], True),
    ],
)
def test_json_equal(a: Any, b: Any, equal: bool) -> None:
    assert json_equal(a, b) is equal
    assert json_equal(b, a) is equal


def test_json_equal_deep_is_iterative() -> None:
    a: list[Any] = []
    b: list[Any] = []
    x, y = a, b
    for _ in range(20_000):
        x.append([])
        y.append([])
        x, y = x[0], y[0]
    assert json_equal(a, b)
    y.append(1)
    assert not json_equal(a, b)


# ====================================================================== RFC 6902


def test_add_object_member_new_and_existing() -> None:
    applied = run({"a": 1}, {"op": "add", "path": "/b", "value": 2})
    assert applied.value == {"a": 1, "b": 2}
    applied = run({"a": 1}, {"op": "add", "path": "/a", "value": [3]})  # replaces
    assert applied.value == {"a": [3]}
    assert applied.ops == [{"op": "add", "path": "/a", "value": [3]}]


def test_add_inserts_into_arrays_and_resolves_dash() -> None:
    doc = {"l": ["a", "b"]}
    assert run(doc, {"op": "add", "path": "/l/0", "value": "x"}).value == {"l": ["x", "a", "b"]}
    assert run(doc, {"op": "add", "path": "/l/2", "value": "x"}).value == {"l": ["a", "b", "x"]}
    applied = run(
        doc,
        {"op": "add", "path": "/l/-", "value": "x"},
        {"op": "add", "path": "/l/-", "value": "y"},
    )
    assert applied.value == {"l": ["a", "b", "x", "y"]}
    assert applied.ops == [
        {"op": "add", "path": "/l/2", "value": "x"},
        {"op": "add", "path": "/l/3", "value": "y"},
    ]


@pytest.mark.parametrize(
    "path", ["/l/3", "/l/01", "/l/-1", "/l/x", "/l/1.0", "/l/", "/l/0/x", "/l/-/x"]
)
def test_add_bad_array_index(path: str) -> None:
    fails({"l": [1, 2]}, [{"op": "add", "path": path, "value": 0}], "invalid_patch")


def test_add_needs_an_existing_container_parent() -> None:
    fails({"a": 1}, [{"op": "add", "path": "/b/c", "value": 0}], "invalid_patch")
    fails({"a": 1}, [{"op": "add", "path": "/a/c", "value": 0}], "invalid_patch")
    fails({"a": None}, [{"op": "add", "path": "/a/c", "value": 0}], "invalid_patch")


def test_add_and_replace_at_root_replace_the_document() -> None:
    assert run({"a": 1}, {"op": "add", "path": "", "value": [1]}).value == [1]
    assert run({"a": 1}, {"op": "replace", "path": "", "value": None}).value is None
    assert run(None, {"op": "add", "path": "", "value": {"x": 1}}).value == {"x": 1}


def test_remove() -> None:
    applied = run(
        {"a": 1, "l": [1, 2, 3]}, {"op": "remove", "path": "/a"}, {"op": "remove", "path": "/l/1"}
    )
    assert applied.value == {"l": [1, 3]}
    assert applied.ops == [{"op": "remove", "path": "/a"}, {"op": "remove", "path": "/l/1"}]
    fails({"a": 1}, [{"op": "remove", "path": "/b"}], "invalid_patch")
    fails({"l": [1]}, [{"op": "remove", "path": "/l/1"}], "invalid_patch")
    fails({"l": [1]}, [{"op": "remove", "path": "/l/-"}], "invalid_patch")
    fails({"a": 1}, [{"op": "remove", "path": ""}], "invalid_patch")


def test_replace_needs_the_target() -> None:
    assert run({"a": 1}, {"op": "replace", "path": "/a", "value": 2}).value == {"a": 2}
    assert run({"l": [1, 2]}, {"op": "replace", "path": "/l/1", "value": 5}).value == {"l": [1, 5]}
    error = fails(
        {"a": {"c": 1}},
        [
            {"op": "test", "path": "/a/c", "value": 1},
            {"op": "add", "path": "/x", "value": 1},
            {"op": "replace", "path": "/a/b", "value": 1},
        ],
        "invalid_patch",
        2,
    )
    assert error.message == "op 2 (replace /a/b): path not found"
    fails({"l": [1]}, [{"op": "replace", "path": "/l/1", "value": 0}], "invalid_patch")
    fails({"l": [1]}, [{"op": "replace", "path": "/l/-", "value": 0}], "invalid_patch")


def test_move() -> None:
    applied = run({"a": {"b": 1}, "c": []}, {"op": "move", "from": "/a/b", "path": "/c/0"})
    assert applied.value == {"a": {}, "c": [1]}
    assert applied.ops == [{"op": "move", "from": "/a/b", "path": "/c/0"}]
    # within one array: remove first, then insert
    applied = run({"l": ["x", "y", "z"]}, {"op": "move", "from": "/l/0", "path": "/l/2"})
    assert applied.value == {"l": ["y", "z", "x"]}


def test_move_dash_resolves_after_the_removal() -> None:
    applied = run({"l": ["x", "y", "z"]}, {"op": "move", "from": "/l/0", "path": "/l/-"})
    assert applied.value == {"l": ["y", "z", "x"]}
    assert applied.ops == [{"op": "move", "from": "/l/0", "path": "/l/2"}]


def test_move_into_own_child_is_invalid() -> None:
    fails({"a": {"b": {}}}, [{"op": "move", "from": "/a", "path": "/a/b"}], "invalid_patch")
    fails({"a": {"b": {}}}, [{"op": "move", "from": "/a", "path": "/a/b/c"}], "invalid_patch")
    fails({"l": [[1]]}, [{"op": "move", "from": "/l", "path": "/l/-"}], "invalid_patch")
    fails({"a": 1}, [{"op": "move", "from": "", "path": "/b"}], "invalid_patch")
    # "/a" is not a prefix of "/ab"
    assert run({"a": 1}, {"op": "move", "from": "/a", "path": "/ab"}).value == {"ab": 1}


def test_move_to_itself_and_to_root() -> None:
    applied = run({"a": {"b": 1}}, {"op": "move", "from": "/a", "path": "/a"})
    assert applied.value == {"a": {"b": 1}}
    assert applied.ops == []
    assert run({"a": {"b": 1}}, {"op": "move", "from": "/a", "path": ""}).value == {"b": 1}


def test_move_and_copy_from_missing_location() -> None:
    for name in ("move", "copy"):
        error = fails({"a": 1}, [{"op": name, "from": "/x", "path": "/b"}], "invalid_patch")
        assert "'from'" in error.message
        fails({"l": []}, [{"op": name, "from": "/l/-", "path": "/b"}], "invalid_patch")
        fails({"a": 1}, [{"op": name, "path": "/b"}], "invalid_patch")
        fails({"a": 1}, [{"op": name, "from": 3, "path": "/b"}], "invalid_patch")


def test_copy() -> None:
    applied = run({"a": {"b": [1]}}, {"op": "copy", "from": "/a/b", "path": "/c"})
    assert applied.value == {"a": {"b": [1]}, "c": [1]}
    assert applied.ops == [{"op": "copy", "from": "/a/b", "path": "/c"}]
    assert applied.value["c"] is applied.value["a"]["b"]  # shared, never mutated
    applied = run({"l": [1, 2]}, {"op": "copy", "from": "/l/0", "path": "/l/-"})
    assert applied.ops == [{"op": "copy", "from": "/l/0", "path": "/l/2"}]
    assert run({"a": 1}, {"op": "copy", "from": "", "path": "/b"}).value == {"a": 1, "b": {"a": 1}}


def test_copy_of_a_container_changed_earlier_stays_independent() -> None:
    applied = run(
        {},
        {"op": "add", "path": "/a", "value": {}},
        {"op": "add", "path": "/a/x", "value": 1},  # /a is now a container of this call
        {"op": "copy", "from": "/a", "path": "/b"},
        {"op": "add", "path": "/b/y", "value": 2},
        {"op": "add", "path": "/a/z", "value": 3},
        {"op": "copy", "from": "", "path": "/c"},
        {"op": "add", "path": "/c/a/w", "value": 4},
    )
    assert applied.value == {
        "a": {"x": 1, "z": 3},
        "b": {"x": 1, "y": 2},
        "c": {"a": {"x": 1, "z": 3, "w": 4}, "b": {"x": 1, "y": 2}},
    }
    assert applied.ops[0] == {"op": "add", "path": "/a", "value": {}}  # not changed later


def test_test_op() -> None:
    doc = {"a": 1, "l": [True, {"x": None}]}
    applied = run(
        doc,
        {"op": "test", "path": "/a", "value": 1.0},
        {"op": "test", "path": "/l/1", "value": {"x": None}},
    )
    assert applied.ops == [] and applied.units == [] and applied.value is doc
    error = fails(doc, [{"op": "test", "path": "/l/0", "value": 1}], "test_failed")
    assert error.message.startswith("op 0 (test /l/0)")
    fails(doc, [{"op": "test", "path": "/a", "value": True}], "test_failed")
    fails(doc, [{"op": "test", "path": "/b", "value": None}], "test_failed")
    fails(doc, [{"op": "test", "path": "/l/5", "value": None}], "test_failed")
    fails(
        doc,
        [{"op": "add", "path": "/b", "value": 1}, {"op": "test", "path": "/b", "value": 2}],
        "test_failed",
        1,
    )
    fails(doc, [{"op": "test", "path": "/l/01", "value": True}], "invalid_patch")
    fails(doc, [{"op": "test", "path": "/a"}], "invalid_patch")


def test_ops_apply_in_order() -> None:
    applied = run(
        {},
        {"op": "add", "path": "/a", "value": []},
        {"op": "add", "path": "/a/-", "value": 1},
        {"op": "replace", "path": "/a/0", "value": 2},
        {"op": "test", "path": "/a", "value": [2]},
        {"op": "move", "from": "/a", "path": "/b"},
    )
    assert applied.value == {"b": [2]}


# ====================================================================== op validation


@pytest.mark.parametrize("ops", [None, {"op": "add"}, "ops", 1])
def test_ops_must_be_a_list(ops: Any) -> None:
    fails({}, ops, "invalid_patch", None)


@pytest.mark.parametrize(
    ("op", "member"),
    [
        ([1], "not an object"),
        ({"path": "/a", "value": 1}, "'op'"),
        ({"op": 1, "path": "/a"}, "'op'"),
        ({"op": "frobnicate", "path": "/a"}, "frobnicate"),
        ({"op": "add", "value": 1}, "'path'"),
        ({"op": "add", "path": None, "value": 1}, "'path'"),
        ({"op": "add", "path": "a", "value": 1}, "'/'"),
        ({"op": "add", "path": "/a"}, "'value'"),
        ({"op": "replace", "path": "/a"}, "'value'"),
        ({"op": "copy", "path": "/a"}, "'from'"),
        ({"op": "x-inc", "path": "/a"}, "'by'"),
        ({"op": "x-inc", "path": "/a", "by": True}, "'by'"),
        ({"op": "x-inc", "path": "/a", "by": "1"}, "'by'"),
        ({"op": "x-set", "path": "/a"}, "'value'"),
        ({"op": "x-merge", "path": "/a"}, "'value'"),
        ({"op": "x-append-unique", "path": "/a"}, "'value'"),
        ({"op": "x-remove-value", "path": "/a"}, "'value'"),
    ],
)
def test_malformed_ops(op: Any, member: str) -> None:
    error = fails({"a": 0}, [{"op": "test", "path": "", "value": {"a": 0}}, op], "invalid_patch", 1)
    assert error.message.startswith("op 1")
    assert member in error.message


def test_unknown_members_are_ignored_and_dropped() -> None:
    applied = run({"a": 1}, {"op": "replace", "path": "/a", "value": 2, "from": "/zz", "x": [1]})
    assert applied.ops == [{"op": "replace", "path": "/a", "value": 2}]
    applied = run({"a": 1}, {"op": "remove", "path": "/a", "value": 5})
    assert applied.ops == [{"op": "remove", "path": "/a"}]


def test_normalised_ops_need_no_rfc_extensions() -> None:
    # a value that is None is a value
    assert run({"a": 1}, {"op": "add", "path": "/b", "value": None}).value == {"a": 1, "b": None}


# ====================================================================== intent ops


def test_x_set_creates_missing_parent_objects() -> None:
    applied = run({"a": {}}, {"op": "x-set", "path": "/a/b/c/d", "value": 1})
    assert applied.value == {"a": {"b": {"c": {"d": 1}}}}
    assert applied.ops == [
        {"op": "add", "path": "/a/b", "value": {}},
        {"op": "add", "path": "/a/b/c", "value": {}},
        {"op": "add", "path": "/a/b/c/d", "value": 1},
    ]
    assert applied.units == [("/a/b/c/d", "set")]


def test_x_set_existing_and_arrays() -> None:
    assert run({"a": 1}, {"op": "x-set", "path": "/a", "value": 2}).ops == [
        {"op": "replace", "path": "/a", "value": 2}
    ]
    assert run({"a": 1}, {"op": "x-set", "path": "", "value": 2}).ops == [
        {"op": "replace", "path": "", "value": 2}
    ]
    doc = {"l": [{"x": 1}]}
    assert run(doc, {"op": "x-set", "path": "/l/0/y/z", "value": 2}).ops == [
        {"op": "add", "path": "/l/0/y", "value": {}},
        {"op": "add", "path": "/l/0/y/z", "value": 2},
    ]
    assert run(doc, {"op": "x-set", "path": "/l/-", "value": 2}).ops == [
        {"op": "add", "path": "/l/1", "value": 2}
    ]
    assert run(doc, {"op": "x-set", "path": "/l/1", "value": 2}).ops == [
        {"op": "add", "path": "/l/1", "value": 2}
    ]
    assert run(doc, {"op": "x-set", "path": "/l/0", "value": 2}).ops == [
        {"op": "replace", "path": "/l/0", "value": 2}
    ]


@pytest.mark.parametrize("path", ["/s/x", "/n/x/y", "/l/1/x", "/l/-/x", "/l/2", "/l/01"])
def test_x_set_through_scalars_or_missing_elements_is_invalid(path: str) -> None:
    fails(
        {"s": "str", "n": None, "l": [{}]},
        [{"op": "x-set", "path": path, "value": 1}],
        "invalid_patch",
    )


def test_x_merge_expansion() -> None:
    doc = {"cfg": {"a": 1, "b": {"c": 2, "d": 3}, "e": 4, "f": "s"}}
    merge = {
        "a": 10,
        "b": {"c": None, "x": 1, "y": {"z": None}},
        "e": None,
        "g": None,
        "f": {"k": None, "j": 1},
    }
    applied = run(doc, {"op": "x-merge", "path": "/cfg", "value": merge})
    assert applied.ops == [
        {"op": "replace", "path": "/cfg/a", "value": 10},
        {"op": "remove", "path": "/cfg/b/c"},
        {"op": "add", "path": "/cfg/b/x", "value": 1},
        {"op": "add", "path": "/cfg/b/y", "value": {}},
        {"op": "remove", "path": "/cfg/e"},
        {"op": "replace", "path": "/cfg/f", "value": {"j": 1}},
    ]
    assert applied.value == {"cfg": {"a": 10, "b": {"d": 3, "x": 1, "y": {}}, "f": {"j": 1}}}
    assert applied.units == [("/cfg", "set")]


def test_x_merge_non_objects() -> None:
    # value not an object: replaces the target (null included)
    assert run({"a": {"b": 1}}, {"op": "x-merge", "path": "/a", "value": [1]}).ops == [
        {"op": "replace", "path": "/a", "value": [1]}
    ]
    assert run({"a": {"b": 1}}, {"op": "x-merge", "path": "/a", "value": None}).value == {"a": None}
    # target not an object: replaced by the value without its nulls
    applied = run(
        {"a": [1]},
        {"op": "x-merge", "path": "/a", "value": {"x": None, "y": {"z": None, "w": [None]}}},
    )
    assert applied.ops == [{"op": "replace", "path": "/a", "value": {"y": {"w": [None]}}}]
    # missing target and parents: created
    applied = run({}, {"op": "x-merge", "path": "/p/q", "value": {"x": 1, "n": None}})
    assert applied.ops == [
        {"op": "add", "path": "/p", "value": {}},
        {"op": "add", "path": "/p/q", "value": {"x": 1}},
    ]
    # a merge that changes nothing emits nothing, but has its unit
    applied = run({"a": {}}, {"op": "x-merge", "path": "/a", "value": {"gone": None}})
    assert (applied.ops, applied.units) == ([], [("/a", "set")])
    fails({"l": []}, [{"op": "x-merge", "path": "/l/-", "value": {}}], "invalid_patch")


def test_x_inc() -> None:
    applied = run(
        {"n": 1, "l": [2.5]},
        {"op": "x-inc", "path": "/n", "by": 2},
        {"op": "x-inc", "path": "/l/0", "by": -1},
    )
    assert applied.ops == [
        {"op": "replace", "path": "/n", "value": 3},
        {"op": "replace", "path": "/l/0", "value": 1.5},
    ]
    assert applied.units == [("/n", "inc"), ("/l", "inc")]
    applied = run({}, {"op": "x-inc", "path": "/a/b", "by": 0.5})
    assert applied.ops == [
        {"op": "add", "path": "/a", "value": {}},
        {"op": "add", "path": "/a/b", "value": 0.5},
    ]
    assert strict_equal(run({"n": 1}, {"op": "x-inc", "path": "/n", "by": 1.0}).value, {"n": 2.0})
    target: Any
    for target in (True, "1", None, [1], {}):
        fails({"n": target}, [{"op": "x-inc", "path": "/n", "by": 1}], "invalid_patch")
    fails({"l": []}, [{"op": "x-inc", "path": "/l/-", "by": 1}], "invalid_patch")
    fails({"n": 1}, [{"op": "x-inc", "path": "/n", "by": math.nan}], "invalid_value")
    fails({"n": 1e308}, [{"op": "x-inc", "path": "/n", "by": 1e308}], "invalid_value")
    fails({"n": 10**400}, [{"op": "x-inc", "path": "/n", "by": 0.5}], "invalid_value")


def test_x_append_unique() -> None:
    doc = {"tags": ["a", 1, {"k": [1]}]}
    applied = run(doc, {"op": "x-append-unique", "path": "/tags", "value": "b"})
    assert applied.ops == [{"op": "add", "path": "/tags/3", "value": "b"}]
    assert applied.units == [("/tags", "append")]
    for present in ("a", 1.0, {"k": [1.0]}):
        applied = run(doc, {"op": "x-append-unique", "path": "/tags", "value": present})
        assert (applied.ops, applied.units) == ([], [("/tags", "append")])
    assert run(doc, {"op": "x-append-unique", "path": "/tags", "value": True}).ops == [
        {"op": "add", "path": "/tags/3", "value": True}
    ]
    assert run({}, {"op": "x-append-unique", "path": "/t/u", "value": 5}).ops == [
        {"op": "add", "path": "/t", "value": {}},
        {"op": "add", "path": "/t/u", "value": [5]},
    ]
    fails({"t": {}}, [{"op": "x-append-unique", "path": "/t", "value": 5}], "invalid_patch")


def test_x_remove_value() -> None:
    doc = {"l": [1, "a", 1.0, True, {"x": 1}, 1]}
    applied = run(doc, {"op": "x-remove-value", "path": "/l", "value": 1})
    assert applied.ops == [
        {"op": "remove", "path": "/l/5"},
        {"op": "remove", "path": "/l/2"},
        {"op": "remove", "path": "/l/0"},
    ]
    assert applied.value == {"l": ["a", True, {"x": 1}]}
    assert run(doc, {"op": "x-remove-value", "path": "/l", "value": {"x": 1}}).ops == [
        {"op": "remove", "path": "/l/4"}
    ]
    applied = run(doc, {"op": "x-remove-value", "path": "/missing/deeper", "value": 1})
    assert (applied.ops, applied.units) == ([], [("/missing/deeper", "set")])
    assert run(doc, {"op": "x-remove-value", "path": "/l", "value": 7}).ops == []
    fails(doc, [{"op": "x-remove-value", "path": "/l/1", "value": 1}], "invalid_patch")


def test_x_now() -> None:
    applied = run({}, {"op": "x-now", "path": "/meta/updated"})
    assert applied.value == {"meta": {"updated": NOW}}
    assert applied.ops[-1] == {"op": "add", "path": "/meta/updated", "value": NOW}


def test_intent_op_value_is_not_changed_by_later_ops() -> None:
    value = {"k": {"j": 1}}
    applied = run(
        {},
        {"op": "x-set", "path": "/a", "value": value},
        {"op": "add", "path": "/a/k/z", "value": 2},
    )
    assert value == {"k": {"j": 1}}
    assert applied.ops[0]["value"] == {"k": {"j": 1}}
    assert applied.value == {"a": {"k": {"j": 1, "z": 2}}}


# ====================================================================== hygiene


@pytest.mark.parametrize("key", ["__proto__", "constructor", "prototype", "a\x00b", "k" * 257])
def test_bad_keys(key: str) -> None:
    fails({}, [{"op": "add", "path": "/a", "value": {"ok": {key: 1}}}], "invalid_key")
    fails({}, [{"op": "add", "path": format_pointer([key]), "value": 1}], "invalid_key")
    fails({}, [{"op": "x-set", "path": format_pointer([key, "x"]), "value": 1}], "invalid_key")
    fails({}, [{"op": "x-merge", "path": "", "value": {key: None}}], "invalid_key")
    fails({"a": 1}, [{"op": "move", "from": "/a", "path": format_pointer([key])}], "invalid_key")
    with pytest.raises(PatchError) as info:
        apply_merge({}, {"x": {key: 1}})
    assert (info.value.kind, info.value.index) == ("invalid_key", None)


def test_key_length_limit_is_configurable() -> None:
    run({}, {"op": "add", "path": "/" + "k" * 256, "value": 1})
    fails(
        {},
        [{"op": "add", "path": "/abcd", "value": 1}],
        "invalid_key",
        limits=Limits(max_key_length=3),
    )


def test_bad_keys_in_arrays_and_test_values() -> None:
    fails({}, [{"op": "add", "path": "/a", "value": [[{"__proto__": 1}]]}], "invalid_key")
    # a test value is only compared, never inserted
    fails({"a": 1}, [{"op": "test", "path": "/a", "value": {"__proto__": 1}}], "test_failed")


@pytest.mark.parametrize(
    "value",
    [b"x", {1, 2}, (1,), math.nan, math.inf, -math.inf, object(), {1: "a"}, [1, {"a": [b"x"]}], 1j],
)
def test_non_json_values(value: Any) -> None:
    fails({}, [{"op": "add", "path": "/a", "value": value}], "invalid_value")
    fails({}, [{"op": "x-set", "path": "/a", "value": value}], "invalid_value")
    fails({"a": 1}, [{"op": "replace", "path": "/a", "value": value}], "invalid_value")
    with pytest.raises(PatchError) as info:
        check_value(value, 0, Limits())
    assert info.value.kind == "invalid_value"


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def test_depth_limit_boundaries() -> None:
    limits = Limits(max_depth=5)
    check_value(nested(5), 0, limits)
    check_value(nested(3), 2, limits)
    check_value(nested(4, {}), 0, limits)  # {} has depth 1
    check_value("x", 5, limits)
    for value, depth in (
        (nested(6), 0),
        (nested(4), 2),
        (nested(5, {}), 0),
        ("x", 6),
        ({"a": {}}, 4),
    ):
        with pytest.raises(PatchError) as info:
            check_value(value, depth, limits)
        assert (info.value.kind, info.value.index) == ("too_deep", None)


def test_depth_of_placed_values() -> None:
    limits = Limits(max_depth=4)
    doc: dict[str, Any] = {"a": {"b": {}}}
    run(doc, {"op": "add", "path": "/a/b/c", "value": [1]}, limits=limits)  # 3 + 1
    fails(doc, [{"op": "add", "path": "/a/b/c", "value": [[1]]}], "too_deep", limits=limits)
    fails(doc, [{"op": "x-set", "path": "/a/b/c/d/e", "value": 1}], "too_deep", limits=limits)
    fails(doc, [{"op": "remove", "path": "/a/b/c/d/e"}], "too_deep", limits=limits)  # a path alone
    fails(
        {"a": {"b": [1]}},
        [{"op": "x-append-unique", "path": "/a/b", "value": [[1]]}],
        "too_deep",
        limits=limits,
    )
    run({"a": {"b": [1]}}, {"op": "x-append-unique", "path": "/a/b", "value": [1]}, limits=limits)
    # move/copy deeper
    doc2 = {"x": [[1]], "a": {"b": {}}}
    run(doc2, {"op": "copy", "from": "/x", "path": "/a/y"}, limits=limits)
    fails(doc2, [{"op": "copy", "from": "/x", "path": "/a/b/y"}], "too_deep", limits=limits)
    fails(doc2, [{"op": "move", "from": "/x", "path": "/a/b/y"}], "too_deep", limits=limits)


def test_adversarial_depth_gives_too_deep_not_recursion_error() -> None:
    deep = nested(100_000)
    for ops in (
        [{"op": "add", "path": "/a", "value": deep}],
        [{"op": "x-merge", "path": "", "value": {"a": deep}}],
        [{"op": "x-append-unique", "path": "/l", "value": deep}],
        [{"op": "add", "path": "/a" * 100_000, "value": 1}],
    ):
        fails({"l": []}, ops, "too_deep")
    with pytest.raises(PatchError) as info:
        apply_merge({}, {"a": deep})
    assert info.value.kind == "too_deep"
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises(PatchError) as info:
        check_value(cyclic, 0, Limits())
    assert info.value.kind == "too_deep"


def test_deep_junk_in_messages_gives_patch_error() -> None:
    key: Any = 1
    for _ in range(100_000):
        key = (key,)
    error = fails({}, [{"op": nested(100_000), "path": "/a"}], "invalid_patch")
    assert error.message == "op 0 (? /a): member 'op' must be a string"
    fails({}, [{"op": "add", "path": nested(100_000), "value": 1}], "invalid_patch")
    fails({}, [{"op": "add", "path": "/a", "value": {key: 1}}], "invalid_value")
    error = fails({}, [{"op": "add", "path": "/a" * 100_000, "value": 1}], "too_deep")
    assert len(error.message) < 300


def test_shared_structure_is_checked_without_blowup() -> None:
    value: Any = 1
    for _ in range(60):
        value = [value, value]  # 2**60 leaves as a tree, 60 distinct lists
    check_value(value, 0, Limits())
    doc = {"v": value, "a": {}}
    # (not run(): the references would walk the 2**60-leaf tree)
    new = apply_ops(
        doc, [{"op": "copy", "from": "/v", "path": "/a/v"}], limits=Limits(max_depth=64)
    ).value
    assert new["a"]["v"] is value
    with pytest.raises(PatchError) as info:
        apply_ops(doc, [{"op": "copy", "from": "/v", "path": "/a/v"}], limits=Limits(max_depth=61))
    assert info.value.kind == "too_deep"
    assert doc["a"] == {}


def test_check_value_accepts_json() -> None:
    check_value({"a": [1, 2.5, "s", None, True, {"b": []}], "": {}}, 0, Limits())
    check_value(10**30, 0, Limits())


# ====================================================================== units


@pytest.mark.parametrize(
    ("ops", "units"),
    [
        ([{"op": "replace", "path": "/a/b", "value": 1}], [("/a/b", "set")]),
        ([{"op": "replace", "path": "/l/1/name", "value": 1}], [("/l", "set")]),
        ([{"op": "remove", "path": "/l/0"}], [("/l", "set")]),
        ([{"op": "replace", "path": "/l", "value": []}], [("/l", "set")]),
        ([{"op": "add", "path": "/l/-", "value": 1}], [("/l", "append")]),
        ([{"op": "add", "path": "/l/2", "value": 1}], [("/l", "append")]),
        ([{"op": "add", "path": "/l/0", "value": 1}], [("/l", "set")]),
        ([{"op": "add", "path": "/l/0/tags/-", "value": 1}], [("/l", "set")]),
        ([{"op": "add", "path": "/a/new", "value": 1}], [("/a/new", "set")]),
        ([{"op": "x-append-unique", "path": "/l/0/tags", "value": 1}], [("/l", "append")]),
        ([{"op": "x-append-unique", "path": "/a/t", "value": 1}], [("/a/t", "append")]),
        ([{"op": "x-inc", "path": "/a/n", "by": 1}], [("/a/n", "inc")]),
        ([{"op": "x-inc", "path": "/l/1/n", "by": 1}], [("/l", "inc")]),
        ([{"op": "move", "from": "/a/b", "path": "/c"}], [("/c", "set"), ("/a/b", "set")]),
        ([{"op": "move", "from": "/l/0", "path": "/l/-"}], [("/l", "set")]),
        ([{"op": "copy", "from": "/l/1", "path": "/a/x"}], [("/a/x", "set"), ("/l", "set")]),
        ([{"op": "test", "path": "/a/b", "value": 2}], []),
        ([{"op": "replace", "path": "", "value": 1}], [("", "set")]),
        ([{"op": "x-set", "path": "/x/y/z", "value": 1}], [("/x/y/z", "set")]),
        ([{"op": "x-set", "path": "/p~1q/~0", "value": 1}], [("/p~1q/~0", "set")]),
        ([{"op": "x-remove-value", "path": "/l", "value": 9}], [("/l", "set")]),
        (
            [
                {"op": "add", "path": "/l/-", "value": 1},
                {"op": "add", "path": "/l/3", "value": 1},  # len is 3 after the first
                {"op": "replace", "path": "/l/0", "value": 1},
                {"op": "add", "path": "/l/-", "value": 1},
            ],
            [("/l", "append"), ("/l", "set")],
        ),
        (
            [{"op": "remove", "path": "/a"}, {"op": "x-set", "path": "/a/b/c", "value": 1}],
            [("/a", "set"), ("/a/b/c", "set")],
        ),
    ],
)
def test_units(ops: list[dict[str, Any]], units: list[tuple[str, str]]) -> None:
    doc = {"a": {"b": 2}, "l": [{"tags": []}, {"name": "x", "n": 1}], "p/q": {}}
    assert run(doc, *ops).units == units


def test_units_in_array_roots() -> None:
    assert run([1], {"op": "add", "path": "/-", "value": 2}).units == [("", "append")]
    assert run([{"a": 1}], {"op": "replace", "path": "/0/a", "value": 2}).units == [("", "set")]


def test_merge_units_are_per_changed_path() -> None:
    applied = apply_merge({"a": {"b": 1}, "c": 1}, {"a": {"b": 2, "x": None}, "c": None, "d": 4})
    assert applied.units == [("/a/b", "set"), ("/c", "set"), ("/d", "set")]
    assert apply_merge([1], {"a": 1}).units == [("", "set")]
    assert apply_merge({"a": 1}, {"b": None}).units == []


# ====================================================================== conflicts


@pytest.mark.parametrize(
    ("incoming", "history", "expected"),
    [
        ([("/a", "set")], [("/a", "set")], ["/a"]),
        ([("/a", "set")], [("/a/b", "set")], ["/a"]),
        ([("/a/b", "set")], [("/a", "set")], ["/a/b"]),
        ([("/a", "set")], [("/ab", "set")], []),
        ([("/ab", "set")], [("/a", "set")], []),
        ([("/a", "set")], [("/b", "set")], []),
        ([("/a~1b", "set")], [("/a/b", "set")], []),
        ([("/a/b", "set")], [("/a~1b", "set")], []),
        ([("", "set")], [("/x/y", "set")], [""]),
        ([("/x/y", "set")], [("", "set")], ["/x/y"]),
        ([("/l", "append")], [("/l", "append")], []),
        ([("/n", "inc")], [("/n", "inc")], []),
        ([("/l", "append")], [("/l", "inc")], ["/l"]),
        ([("/l", "append")], [("/l", "set")], ["/l"]),
        ([("/l", "set")], [("/l", "append")], ["/l"]),
        ([("/l", "append")], [("/l", "append"), ("/l", "set")], ["/l"]),
        ([("/l", "append")], [("/l/0", "set")], ["/l"]),
        ([("/l/x", "append")], [("/l", "append")], ["/l/x"]),
        ([("", "append")], [("", "append")], []),
        (
            [("/b", "set"), ("/a", "set"), ("/c", "set"), ("/a", "inc")],
            [("/a/x", "set"), ("/b", "set")],
            ["/a", "/b"],
        ),
        ([("/a", "set")], [], []),
        ([], [("/a", "set")], []),
    ],
)
def test_conflicts(
    incoming: list[tuple[str, str]], history: list[tuple[str, str]], expected: list[str]
) -> None:
    assert conflicts(incoming, history) == expected


def test_units_feed_conflicts() -> None:
    doc = {"todo": ["a"], "title": "t", "n": 0}
    history = apply_ops(
        doc,
        [{"op": "add", "path": "/todo/-", "value": "x"}, {"op": "x-inc", "path": "/n", "by": 1}],
    )
    mine = apply_ops(
        doc,
        [
            {"op": "x-append-unique", "path": "/todo", "value": "y"},
            {"op": "x-inc", "path": "/n", "by": 2},
        ],
    )
    assert conflicts(mine.units, history.units) == []
    mine = apply_ops(
        doc,
        [
            {"op": "replace", "path": "/title", "value": "u"},
            {"op": "add", "path": "/todo/0", "value": "z"},
        ],
    )
    assert conflicts(mine.units, history.units) == ["/todo"]


# ====================================================================== sharing, apply_normalised


def test_structure_sharing_copies_only_the_spine() -> None:
    doc = {f"k{i}": {"v": [i], "w": {"x": i}} for i in range(1000)}
    ops = [
        {"op": "replace", "path": "/k5/w/x", "value": -1},
        {"op": "add", "path": "/k5/w/y", "value": 1},
        {"op": "remove", "path": "/k7/v/0"},
    ]
    tx = patch_module._Tx(doc, Limits(), "")
    for index, op in enumerate(ops):
        tx.run(index, op)
    assert len(tx.owned) == 5  # the root, /k5, /k5/w, /k7, /k7/v: each copied once
    new = apply_ops(doc, ops).value
    assert new is not doc and new["k5"] is not doc["k5"] and new["k7"]["v"] == []
    assert doc["k7"]["v"] == [7] and doc["k5"]["w"] == {"x": 5}
    assert new["k5"]["v"] is doc["k5"]["v"] and new["k7"]["w"] is doc["k7"]["w"]
    assert sum(new[k] is doc[k] for k in doc) == 998


def test_no_ops_return_the_same_document() -> None:
    doc = {"a": [1]}
    assert apply_ops(doc, []).value is doc
    assert apply_merge(doc, {}).value is doc
    assert apply_normalised(doc, []) is doc


def test_apply_normalised() -> None:
    doc = {"a": {"b": [1, 2]}}
    ops: list[dict[str, Any]] = [
        {"op": "move", "from": "/a/b/0", "path": "/a/c"},
        {"op": "add", "path": "/a/b/-", "value": 3},
    ]
    assert apply_normalised(doc, ops) == {"a": {"b": [2, 3], "c": 1}}
    assert doc == {"a": {"b": [1, 2]}}
    # trusted: no hygiene checks
    assert apply_normalised({}, [{"op": "add", "path": "/__proto__", "value": 1}]) == {
        "__proto__": 1
    }
    bad: Any
    for bad in (
        [{"op": "x-set", "path": "/a", "value": 1}],
        [{"op": "remove", "path": "/zz"}],
        [{"op": "test", "path": "/a", "value": 0}],
        ["junk"],
    ):
        with pytest.raises(PatchError):
            apply_normalised(doc, bad)
    with pytest.raises(PatchError):
        apply_normalised(doc, "junk")  # type: ignore[arg-type]


def test_apply_merge_examples() -> None:
    # the examples of RFC 7386 appendix A
    cases = [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ]
    for doc, merge, expected in cases:
        applied = apply_merge(doc, merge)
        assert strict_equal(applied.value, expected), (doc, merge)
        assert strict_equal(naive_apply(doc, applied.ops), expected)
    assert apply_merge([1, 2], {"a": "b", "c": None}).ops == [
        {"op": "replace", "path": "", "value": {"a": "b"}}
    ]
    assert apply_merge({"a": 1}, None).ops == [{"op": "replace", "path": "", "value": None}]


def test_patch_error_fields() -> None:
    error = PatchError("invalid_patch", "msg", 3)
    assert (error.kind, error.message, error.index, str(error)) == (
        "invalid_patch",
        "msg",
        3,
        "msg",
    )
    assert PatchError("too_deep", "m").index is None


# ====================================================================== properties

KEYS = st.sampled_from(["a", "b", "c", "", "0", "1", "-", "x~y", "p/q", "~1"])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "s", "t"]),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12,
)
DOCS = st.one_of(st.dictionaries(KEYS, JSON, max_size=5), JSON)
OP_NAMES = [
    "add", "remove", "replace", "move", "copy", "test",
    "x-set", "x-merge", "x-inc", "x-append-unique", "x-remove-value", "x-now",
]  # fmt: skip


def all_paths(doc: Any, prefix: tuple[str, ...] = ()) -> list[list[str]]:
    paths = [list(prefix)]
    if isinstance(doc, dict):
        for key, value in doc.items():
            paths += all_paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            paths += all_paths(value, (*prefix, str(index)))
    return paths


@st.composite
def target_paths(draw: st.DrawFn, doc: Any) -> list[str]:
    """Mostly an existing path, or one/two tokens past an existing container."""
    path = draw(st.sampled_from(all_paths(doc)))
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2]))):
        try:
            node = n_get(doc, path)
        except Invalid:
            node = None
        if isinstance(node, list):
            path = [*path, draw(st.sampled_from([*map(str, range(len(node) + 2)), "-", "01"]))]
        else:
            path = [*path, draw(KEYS)]
    return path


def _value_for(draw: st.DrawFn, doc: Any, name: str, path: list[str]) -> Any:
    try:
        current = n_get(doc, path)
    except Invalid:
        current = None
    if name == "test" and draw(st.booleans()):
        return copy.deepcopy(current)
    if name in ("x-append-unique", "x-remove-value") and isinstance(current, list) and current:
        if draw(st.booleans()):
            return copy.deepcopy(draw(st.sampled_from(current)))
    if name == "x-merge" and draw(st.booleans()):
        return draw(st.dictionaries(KEYS, st.none() | JSON, max_size=4))
    return draw(JSON)


@st.composite
def ops_for(draw: st.DrawFn, doc: Any) -> dict[str, Any]:
    name = draw(st.sampled_from(OP_NAMES))
    path = draw(target_paths(doc))
    op: dict[str, Any] = {"op": name, "path": format_pointer(path)}
    if name in ("move", "copy"):
        op["from"] = format_pointer(draw(target_paths(doc)))
    elif name == "x-inc":
        op["by"] = draw(st.integers(-3, 3) | st.floats(-10, 10, allow_nan=False))
    elif name not in ("remove", "x-now"):
        op["value"] = _value_for(draw, doc, name, path)
    if draw(st.integers(0, 4)) == 0:
        op["extra"] = "ignored"
    return op


@given(doc=DOCS, data=st.data())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_random_ops_agree_with_the_naive_applier(doc: Any, data: st.DataObject) -> None:
    original = copy.deepcopy(doc)
    current = copy.deepcopy(doc)
    ops: list[dict[str, Any]] = []
    for _ in range(data.draw(st.integers(1, 8))):
        op = data.draw(ops_for(current))
        try:
            expected = n_op(copy.deepcopy(current), op)
        except Invalid:
            expected = Invalid
        try:
            got = apply_ops(current, [op], now=NOW).value
        except PatchError as error:
            assert expected is Invalid, (current, op, error)
            continue
        assert expected is not Invalid, (current, op, got)
        assert strict_equal(got, expected), (current, op, got, expected)
        ops.append(op)
        current = expected
    applied = apply_ops(doc, ops, now=NOW)
    assert strict_equal(doc, original)
    assert strict_equal(applied.value, current)
    assert strict_equal(apply_normalised(doc, applied.ops), current)
    assert strict_equal(naive_apply(doc, applied.ops), current)
    assert strict_equal(doc, original)
    assert_normalised(doc, applied.ops)
    assert len(applied.units) == len(set(applied.units))


MERGE_PATCHES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=10,
)
MERGE_DOCS = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=14,
)


@given(
    doc=MERGE_DOCS, merge=st.one_of(st.dictionaries(KEYS, MERGE_PATCHES, max_size=5), MERGE_PATCHES)
)
@settings(max_examples=150, deadline=None)
def test_merge_agrees_with_rfc_7386(doc: Any, merge: Any) -> None:
    original = copy.deepcopy(doc)
    expected = ref_merge(doc, merge)
    applied = apply_merge(doc, merge)
    assert strict_equal(doc, original)
    assert strict_equal(applied.value, expected)
    assert strict_equal(apply_normalised(doc, applied.ops), expected)
    assert strict_equal(naive_apply(doc, applied.ops), expected)
    assert_normalised(doc, applied.ops)
    via_op = apply_ops(doc, [{"op": "x-merge", "path": "", "value": merge}])
    assert strict_equal(via_op.value, expected) and via_op.ops == applied.ops
    assert strict_equal(doc, original)


JUNK_SCALARS = st.one_of(
    SCALARS,
    st.floats(),
    st.integers(),
    st.binary(max_size=3),
    st.text(max_size=5),
    st.sampled_from(["__proto__", "\x00", "-", "~", "/", "/-", "/0", "/01", "/a/-", ""]),
    st.just(()),
    st.just(frozenset()),
)
JUNK = st.recursive(
    JUNK_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.one_of(KEYS, st.text(max_size=3), st.integers()), inner, max_size=3)
    ),
    max_leaves=8,
)
POINTERS = st.one_of(
    st.lists(
        st.sampled_from(["a", "b", "0", "1", "2", "-", "01", "__proto__", "~", ""]), max_size=4
    ).map(lambda tokens: "/" + "/".join(tokens) if tokens else ""),
    st.text(alphabet="/~01a-", max_size=6),
    JUNK,
)
JUNK_OPS = st.fixed_dictionaries(
    {},
    optional={
        "op": st.one_of(st.sampled_from(OP_NAMES), JUNK),
        "path": POINTERS,
        "from": POINTERS,
        "value": JUNK,
        "by": JUNK,
    },
)


@given(
    doc=DOCS,
    ops=st.one_of(st.lists(st.one_of(JUNK_OPS, JUNK), max_size=5), JUNK),
    depth=st.integers(0, 6),
)
@settings(max_examples=150, deadline=None)
def test_junk_only_raises_patch_error(doc: Any, ops: Any, depth: int) -> None:
    original = copy.deepcopy(doc)
    limits = Limits(max_depth=depth, max_key_length=2)
    for call in (
        lambda: apply_ops(doc, ops, now=NOW),
        lambda: apply_ops(doc, ops, limits=limits),
        lambda: apply_normalised(doc, ops),
        lambda: apply_merge(doc, ops, limits=limits),
        lambda: check_value(ops, depth, limits),
    ):
        try:
            call()
        except PatchError as error:
            assert error.kind in (
                "invalid_patch",
                "test_failed",
                "invalid_key",
                "too_deep",
                "invalid_value",
            )
            assert isinstance(error.message, str)
    assert strict_equal(doc, original)
