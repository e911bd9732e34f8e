"""The JSON-patch engine of the data-sync extension (pure: no I/O).

``apply_ops`` applies an RFC 6902 op list, which may also hold the router's
intent ops (``x-set``, ``x-merge``, ``x-inc``, ``x-append-unique``,
``x-remove-value``, ``x-now``), and ``apply_merge`` applies an RFC 7386 merge
patch at the root. Both return an ``Applied``: the new document, the
*normalised* ops (plain RFC 6902 ``add``/``remove``/``replace``/``move``/``copy``
with concrete array indices, which a client applies to the old document to get
the new one) and the conflict units the write touched (for rebasing stale
writes, see ``conflicts``).

Documents are shared with committed state and are never mutated. Writes copy
only the containers on the path to the changed location ("path copying"); a
container copied during a call belongs to that call and is changed in place by
its later ops, so each container is copied at most once per call. A failing op
raises ``PatchError`` and the caller's document stays as it was.

The input document is trusted to be JSON within the limits (run ``check_value``
on a document once when it enters the system); everything a patch inserts is
checked: key hygiene (JS clients apply our patches, so ``__proto__`` and
friends are refused), nesting depth, and JSON types.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from wamp_router.core.sync.store import Unit

__all__ = [
    "DEFAULT_LIMITS",
    "Applied",
    "Limits",
    "PatchError",
    "apply_merge",
    "apply_normalised",
    "apply_ops",
    "check_value",
    "conflicts",
    "format_pointer",
    "json_equal",
    "parse_pointer",
]

FORBIDDEN_KEYS = frozenset({"__proto__", "constructor", "prototype"})
_INDEX = re.compile(r"0|[1-9][0-9]{0,15}")  # longer indices cannot exist in memory
_BAD_ESCAPE = re.compile(r"~(?![01])")
_RFC6902 = frozenset({"add", "remove", "replace", "move", "copy", "test"})
_COMMUTING = frozenset({"append", "inc"})


class PatchError(Exception):
    """A patch that cannot be applied.

    ``kind`` is ``"invalid_patch"``, ``"test_failed"``, ``"invalid_key"``,
    ``"too_deep"`` or ``"invalid_value"``; ``index`` is the index of the
    offending op in the input list (None when not about one op).
    """

    def __init__(self, kind: str, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.index = index

    def __repr__(self) -> str:
        return f"PatchError({self.kind!r}, {self.message!r}, {self.index!r})"


@dataclass(frozen=True, slots=True)
class Limits:
    max_depth: int = 64
    max_key_length: int = 256


DEFAULT_LIMITS = Limits()


@dataclass(slots=True)
class Applied:
    value: Any  # the new document (shares structure with the old one)
    ops: list[dict[str, Any]]  # normalised RFC 6902 ops
    units: list[Unit]  # conflict units touched, deduplicated, in order


class _Fail(Exception):
    """Internal: why an op failed, before the op's index and path are known.
    ``missing``: the failure is "this location does not exist"."""

    def __init__(self, kind: str, reason: str, missing: bool = False) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.missing = missing


def _invalid(reason: str, missing: bool = False) -> _Fail:
    return _Fail("invalid_patch", reason, missing)


def _short(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "...")


def _label(op: dict[str, Any]) -> str:
    """ "name path" of an op for messages (never the repr of junk)."""
    name, path = op.get("op"), op.get("path")
    label = name if isinstance(name, str) and len(name) <= 40 else "?"
    if isinstance(path, str):
        label += " " + (path if len(path) <= 200 else path[:200] + "...")
    return label


# ------------------------------------------------------------------ pointers


def parse_pointer(pointer: str) -> list[str]:
    """The reference tokens of an RFC 6901 JSON Pointer (``""`` is the root)."""
    try:
        return _parse(pointer)
    except _Fail as fail:
        raise PatchError(fail.kind, fail.reason) from None


def _parse(pointer: Any) -> list[str]:
    if not isinstance(pointer, str):
        raise _invalid(f"pointer must be a string, not {type(pointer).__name__}")
    if pointer == "":
        return []
    if pointer[0] != "/":
        raise _invalid(f"pointer {_short(pointer)} does not start with '/'")
    if "~" not in pointer:
        return pointer[1:].split("/")
    if _BAD_ESCAPE.search(pointer):
        raise _invalid(f"pointer {_short(pointer)} has an invalid '~' escape")
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def format_pointer(tokens: Sequence[str]) -> str:
    """The RFC 6901 JSON Pointer of ``tokens`` (escaping ``~`` and ``/``)."""
    return "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in tokens)


def _index_of(token: str) -> int | None:
    """An array index token's value (no leading zeros), or None."""
    return int(token) if _INDEX.fullmatch(token) else None


def _existing_index(token: str, length: int) -> int:
    """The index of an existing element ("-" is never one)."""
    if token == "-":
        raise _invalid("'-' (the end of the array) is not an element", missing=True)
    index = _index_of(token)
    if index is None:
        raise _invalid(f"invalid array index {_short(token)}")
    if index >= length:
        raise _invalid(f"index {index} out of range (length {length})", missing=True)
    return index


def _insert_index(token: str, length: int) -> int:
    """Where ``add`` inserts: 0..length, "-" is the end."""
    if token == "-":
        return length
    index = _index_of(token)
    if index is None:
        raise _invalid(f"invalid array index {_short(token)}")
    if index > length:
        raise _invalid(f"index {index} out of range (length {length})")
    return index


# ------------------------------------------------------------------ equality


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but booleans never equal numbers; objects
    regardless of key order, arrays elementwise. Iterative (any depth)."""
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        if x is y:
            continue
        if isinstance(x, dict):
            if not isinstance(y, dict) or x.keys() != y.keys():
                return False
            stack.extend((v, y[k]) for k, v in x.items())
        elif isinstance(x, list):
            if not isinstance(y, list) or len(x) != len(y):
                return False
            stack.extend(zip(x, y, strict=True))
        elif not _scalar_equal(x, y):
            return False
    return True


def _scalar_equal(x: Any, y: Any) -> bool:
    if isinstance(x, bool) or isinstance(y, bool):
        return isinstance(x, bool) and isinstance(y, bool) and x == y
    if isinstance(x, int | float):
        return isinstance(y, int | float) and x == y
    if isinstance(x, str):
        return isinstance(y, str) and x == y
    return x is None and y is None


# ------------------------------------------------------------------ hygiene


def check_value(value: Any, depth: int, limits: Limits) -> None:
    """Check a whole value placed at nesting ``depth``: JSON types only, safe
    keys, total depth within ``limits.max_depth``. Raises ``PatchError``."""
    try:
        _check(value, depth, limits)
    except _Fail as fail:
        raise PatchError(fail.kind, fail.reason) from None


def _too_deep(limits: Limits) -> _Fail:
    return _Fail("too_deep", f"nested deeper than {limits.max_depth} levels")


def _check_key(key: Any, limits: Limits) -> None:
    if not isinstance(key, str):
        raise _Fail("invalid_value", f"object key of type {type(key).__name__} is not a string")
    if key in FORBIDDEN_KEYS:
        raise _Fail("invalid_key", f"forbidden key {key!r}")
    if "\x00" in key:
        raise _Fail("invalid_key", f"key {_short(key)} contains NUL")
    if len(key) > limits.max_key_length:
        raise _Fail("invalid_key", f"key longer than {limits.max_key_length} characters")


def _check_scalar(value: Any) -> None:
    if value is None or isinstance(value, str | int):  # int includes bool
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Fail("invalid_value", f"{value!r} is not a JSON number")
        return
    raise _Fail("invalid_value", f"a {type(value).__name__} is not a JSON value")


def _check(value: Any, depth: int, limits: Limits) -> None:
    """Breadth-first, one level at a time, each distinct container's content
    checked once (bounded by ``max_depth`` levels, so cycles and deep nesting
    end in too_deep, and shared structure is not walked exponentially)."""
    if depth > limits.max_depth:
        raise _too_deep(limits)
    if not isinstance(value, dict | list):
        _check_scalar(value)
        return
    seen: set[int] = set()
    level: list[Any] = [value]
    while level:
        if depth >= limits.max_depth:  # a container here has total depth > max
            raise _too_deep(limits)
        depth += 1
        children: dict[int, Any] = {}
        for container in level:
            first = id(container) not in seen
            seen.add(id(container))
            if first and isinstance(container, dict):
                for key in container:
                    _check_key(key, limits)
            _check_children(_values(container), children, first)
        level = list(children.values())


def _values(container: Any) -> Iterable[Any]:
    return container.values() if isinstance(container, dict) else container


def _check_children(values: Iterable[Any], children: dict[int, Any], first: bool) -> None:
    for child in values:
        if isinstance(child, dict | list):
            children[id(child)] = child
        elif first:
            _check_scalar(child)


def _deeper_than(value: Any, budget: int) -> bool:
    """Whether depth(value) > budget (scalars 0, a container 1 + its deepest child)."""
    level: list[Any] = [value] if isinstance(value, dict | list) else []
    depth = 0
    while level:
        depth += 1
        if depth > budget:
            return True
        children: dict[int, Any] = {}
        for container in level:
            for child in _values(container):
                if isinstance(child, dict | list):
                    children[id(child)] = child
        level = list(children.values())
    return depth > budget


def _strip_nulls(patch: dict[str, Any]) -> dict[str, Any]:
    """An RFC 7386 merge patch applied to a non-object: its null members removed
    recursively (through objects only). ``patch`` itself if it has none.
    Recursion is bounded by the depth limit (checked before)."""
    out: dict[str, Any] = {}
    changed = False
    for key, value in patch.items():
        if value is None:
            changed = True
        elif isinstance(value, dict):
            stripped = _strip_nulls(value)
            changed = changed or stripped is not value
            out[key] = stripped
        else:
            out[key] = value
    return out if changed else patch


# ------------------------------------------------------------------ applier

_REQUIRED: dict[str, tuple[str, ...]] = {
    "add": ("value",),
    "remove": (),
    "replace": ("value",),
    "move": ("from",),
    "copy": ("from",),
    "test": ("value",),
    "x-set": ("value",),
    "x-merge": ("value",),
    "x-inc": ("by",),
    "x-append-unique": ("value",),
    "x-remove-value": ("value",),
    "x-now": (),
}


class _Tx:
    """One call's state: the current root, the containers this call created
    (``owned``: id → container, which also keeps them alive so ids stay
    unique), the normalised ops and the units so far.

    Invariant: an owned container may hold owned and foreign values, a foreign
    one (from the input document or an op) only foreign ones; only owned
    containers are ever mutated."""

    __slots__ = ("limits", "now", "ops", "owned", "root", "units")

    def __init__(self, root: Any, limits: Limits | None, now: str) -> None:
        self.root = root
        self.limits = limits  # None: trusted input (apply_normalised), no hygiene
        self.now = now
        self.owned: dict[int, Any] = {}
        self.ops: list[dict[str, Any]] = []
        self.units: dict[Unit, None] = {}

    # -------------------------------------------------------------- driver

    def run(self, index: int, op: Any, trusted: bool = False) -> None:
        if not isinstance(op, dict):
            raise PatchError("invalid_patch", f"op {index}: not an object", index)
        label = _label(op)
        try:
            handler = self._handler(op, trusted)
            handler(self, op, self._pointer(op, "path"))
        except _Fail as fail:
            raise PatchError(fail.kind, f"op {index} ({label}): {fail.reason}", index) from None

    @staticmethod
    def _handler(op: dict[str, Any], trusted: bool) -> _Handler:
        if "op" not in op:
            raise _invalid("missing member 'op'")
        name = op["op"]
        if not isinstance(name, str):
            raise _invalid("member 'op' must be a string")
        if name not in _HANDLERS or (trusted and name not in _RFC6902):
            raise _invalid(f"unknown op {_short(name)}")
        for member in ("path", *_REQUIRED[name]):
            if member not in op:
                raise _invalid(f"missing member {member!r}")
        return _HANDLERS[name]

    def _pointer(self, op: dict[str, Any], member: str) -> list[str]:
        pointer = op[member]
        if not isinstance(pointer, str):
            raise _invalid(f"member {member!r} must be a string")
        tokens = _parse(pointer)
        if self.limits is not None and len(tokens) > self.limits.max_depth:
            raise _too_deep(self.limits)
        return tokens

    def _check(self, value: Any, depth: int) -> None:
        if self.limits is not None:
            _check(value, depth, self.limits)

    def _unit(self, tokens: list[str], kind: str) -> None:
        """Record the unit of ``tokens`` walked in the current document: cut at
        the first array met. ``kind`` "add": "append" if that array is the
        direct parent and the index is its end, else "set"."""
        node = self.root
        for n, token in enumerate(tokens):
            if isinstance(node, list):
                if kind == "add":
                    at_end = token == "-" or _index_of(token) == len(node)
                    kind = "append" if n == len(tokens) - 1 and at_end else "set"
                self.units[(format_pointer(tokens[:n]), kind)] = None
                return
            if not isinstance(node, dict) or token not in node:
                break
            node = node[token]
        self.units[(format_pointer(tokens), "set" if kind == "add" else kind)] = None

    # -------------------------------------------------------------- reading

    def _get(self, tokens: list[str]) -> Any:
        node = self.root
        for token in tokens:
            if isinstance(node, dict):
                if token not in node:
                    raise _invalid("path not found", missing=True)
                node = node[token]
            elif isinstance(node, list):
                node = node[_existing_index(token, len(node))]
            else:
                raise _invalid("path not found", missing=True)
        return node

    def _parent(self, tokens: list[str]) -> Any:
        try:
            parent = self._get(tokens[:-1])
        except _Fail as fail:
            raise _Fail(fail.kind, f"parent: {fail.reason}", fail.missing) from None
        if not isinstance(parent, dict | list):
            raise _invalid("parent is not an object or array", missing=True)
        return parent

    def _lookup(self, tokens: list[str], allow_end: bool) -> tuple[bool, Any]:
        """(True, value), or (False, None) when an object member on the way is
        missing or the last token is the end of an array (its length, or "-"
        with ``allow_end``). A scalar on the way or a bad index: invalid."""
        node = self.root
        last = len(tokens) - 1
        for n, token in enumerate(tokens):
            if isinstance(node, dict):
                if token not in node:
                    return False, None
                node = node[token]
            elif isinstance(node, list):
                if n == last and ((allow_end and token == "-") or _index_of(token) == len(node)):
                    return False, None
                node = node[_existing_index(token, len(node))]
            else:
                raise _invalid("parent is not an object or array")
        return True, node

    # -------------------------------------------------------------- writing

    def _own(self, container: Any) -> Any:
        copy = dict(container) if isinstance(container, dict) else list(container)
        self.owned[id(copy)] = copy
        return copy

    def _writable(self, tokens: list[str]) -> Any:
        """The (existing, validated) container at ``tokens``, owned: copy the
        foreign containers on the way."""
        node = self.root
        if id(node) not in self.owned:
            node = self.root = self._own(node)
        for token in tokens:
            key: Any = token if isinstance(node, dict) else int(token)
            child = node[key]
            if id(child) not in self.owned:
                child = node[key] = self._own(child)
            node = child
        return node

    def _disown(self, value: Any) -> None:
        """``value`` is about to be referenced twice (copy): make it and its
        owned descendants foreign so neither reference is changed in place."""
        stack = [value]
        while stack:
            node = stack.pop()
            if self.owned.pop(id(node), None) is not None:
                stack.extend(c for c in _values(node) if isinstance(c, dict | list))

    def add(self, tokens: list[str], value: Any) -> list[str]:
        """RFC 6902 add; returns the concrete path ("-" resolved)."""
        if not tokens:
            self.root = value
            return tokens
        parent = self._parent(tokens)
        key = tokens[-1]
        if isinstance(parent, dict):
            if self.limits is not None:
                _check_key(key, self.limits)
            self._writable(tokens[:-1])[key] = value
            return tokens
        index = _insert_index(key, len(parent))
        self._writable(tokens[:-1]).insert(index, value)
        return [*tokens[:-1], str(index)]

    def remove(self, tokens: list[str]) -> Any:
        """RFC 6902 remove; returns the removed value."""
        if not tokens:
            raise _invalid("cannot remove the root")
        parent = self._parent(tokens)
        key = tokens[-1]
        if isinstance(parent, dict):
            if key not in parent:
                raise _invalid("path not found", missing=True)
            return self._writable(tokens[:-1]).pop(key)
        return self._writable(tokens[:-1]).pop(_existing_index(key, len(parent)))

    def replace(self, tokens: list[str], value: Any) -> None:
        if not tokens:
            self.root = value
            return
        parent = self._parent(tokens)
        key = tokens[-1]
        if isinstance(parent, dict):
            if key not in parent:
                raise _invalid("path not found", missing=True)
            self._writable(tokens[:-1])[key] = value
        else:
            self._writable(tokens[:-1])[_existing_index(key, len(parent))] = value

    def emit(self, op: str, tokens: list[str], value: Any = None) -> None:
        """Apply and record one normalised add/replace/remove."""
        if op == "add":
            tokens = self.add(tokens, value)
        elif op == "replace":
            self.replace(tokens, value)
        else:
            self.remove(tokens)
            self.ops.append({"op": op, "path": format_pointer(tokens)})
            return
        self.ops.append({"op": op, "path": format_pointer(tokens), "value": value})

    # -------------------------------------------------------------- RFC 6902

    def op_add(self, op: dict[str, Any], path: list[str]) -> None:
        self._check(op["value"], len(path))
        self._unit(path, "add")
        self.emit("add", path, op["value"])

    def op_remove(self, op: dict[str, Any], path: list[str]) -> None:
        self._unit(path, "set")
        self.emit("remove", path)

    def op_replace(self, op: dict[str, Any], path: list[str]) -> None:
        self._check(op["value"], len(path))
        self._unit(path, "set")
        self.emit("replace", path, op["value"])

    def op_test(self, op: dict[str, Any], path: list[str]) -> None:
        try:
            current = self._get(path)
        except _Fail as fail:
            if fail.missing:
                raise _Fail("test_failed", fail.reason) from None
            raise
        if not json_equal(current, op["value"]):
            raise _Fail("test_failed", "value differs")

    def _from(self, op: dict[str, Any], path: list[str]) -> list[str]:
        source = self._pointer(op, "from")
        self._unit(path, "set")
        self._unit(source, "set")
        return source

    def _check_moved(self, value: Any, source: list[str], path: list[str]) -> None:
        # the document is trusted: only a deeper placement can break the depth limit
        if self.limits is not None and len(path) > len(source):
            if _deeper_than(value, self.limits.max_depth - len(path)):
                raise _too_deep(self.limits)

    def op_move(self, op: dict[str, Any], path: list[str]) -> None:
        source = self._from(op, path)
        if len(source) < len(path) and path[: len(source)] == source:
            raise _invalid("cannot move a value into one of its own children")
        self._get_from(source)
        if source == path:  # a no-op, nothing to emit
            return
        value = self.remove(source)
        self._check_moved(value, source, path)
        target = self.add(path, value)
        self.ops.append(
            {"op": "move", "from": format_pointer(source), "path": format_pointer(target)}
        )

    def op_copy(self, op: dict[str, Any], path: list[str]) -> None:
        source = self._from(op, path)
        value = self._get_from(source)
        self._check_moved(value, source, path)
        self._disown(value)
        target = self.add(path, value)
        self.ops.append(
            {"op": "copy", "from": format_pointer(source), "path": format_pointer(target)}
        )

    def _get_from(self, source: list[str]) -> Any:
        try:
            return self._get(source)
        except _Fail as fail:
            raise _Fail(fail.kind, f"'from': {fail.reason}", fail.missing) from None

    # -------------------------------------------------------------- intent ops

    def x_set(self, tokens: list[str], value: Any) -> None:
        """x-set: add or replace, creating missing parent objects."""
        node = self.root
        for n, token in enumerate(tokens[:-1]):
            if isinstance(node, dict):
                if token not in node:
                    for m in range(n + 1, len(tokens)):
                        self.emit("add", tokens[:m], {})
                    self.emit("add", tokens, value)
                    return
                node = node[token]
            elif isinstance(node, list):
                node = node[_existing_index(token, len(node))]
            else:
                raise _invalid("parent is not an object or array")
        if not tokens:
            self.emit("replace", tokens, value)
        elif isinstance(node, dict):
            self.emit("replace" if tokens[-1] in node else "add", tokens, value)
        elif isinstance(node, list):
            key = tokens[-1]
            at_end = key == "-" or _index_of(key) == len(node)
            self.emit("add" if at_end else "replace", tokens, value)
        else:
            raise _invalid("parent is not an object or array")

    def merge(self, tokens: list[str], patch: Any) -> None:
        """RFC 7386 merge of ``patch`` into the value at ``tokens``."""
        found, target = self._lookup(tokens, allow_end=False)
        if not isinstance(patch, dict):
            self.x_set(tokens, patch)
        elif not found or not isinstance(target, dict):
            self.x_set(tokens, _strip_nulls(patch))
        else:
            for key, value in patch.items():
                if value is None:
                    if key in target:
                        self.emit("remove", [*tokens, key])
                elif isinstance(value, dict):
                    self.merge([*tokens, key], value)
                else:
                    self.emit("replace" if key in target else "add", [*tokens, key], value)

    def op_x_set(self, op: dict[str, Any], path: list[str]) -> None:
        self._check(op["value"], len(path))
        self._unit(path, "set")
        self.x_set(path, op["value"])

    def op_x_now(self, op: dict[str, Any], path: list[str]) -> None:
        self._check(self.now, len(path))
        self._unit(path, "set")
        self.x_set(path, self.now)

    def op_x_merge(self, op: dict[str, Any], path: list[str]) -> None:
        self._check(op["value"], len(path))
        self._unit(path, "set")
        self.merge(path, op["value"])

    def op_x_inc(self, op: dict[str, Any], path: list[str]) -> None:
        by = op["by"]
        if isinstance(by, bool) or not isinstance(by, int | float):
            raise _invalid("member 'by' must be a number")
        self._check(by, len(path))
        self._unit(path, "inc")
        found, target = self._lookup(path, allow_end=False)
        if not found:
            self.x_set(path, by)
            return
        if isinstance(target, bool) or not isinstance(target, int | float):
            raise _invalid("target is not a number")
        try:
            result = target + by
        except OverflowError:
            raise _Fail("invalid_value", "result out of range") from None
        self._check(result, len(path))
        self.emit("replace", path, result)

    def op_x_append_unique(self, op: dict[str, Any], path: list[str]) -> None:
        value = op["value"]
        self._check(value, len(path) + 1)
        self._unit(path, "append")
        found, target = self._lookup(path, allow_end=False)
        if not found:
            self.x_set(path, [value])
        elif not isinstance(target, list):
            raise _invalid("target is not an array")
        elif not any(json_equal(item, value) for item in target):
            self.emit("add", [*path, str(len(target))], value)

    def op_x_remove_value(self, op: dict[str, Any], path: list[str]) -> None:
        self._unit(path, "set")
        found, target = self._lookup(path, allow_end=False)
        if not found:
            return
        if not isinstance(target, list):
            raise _invalid("target is not an array")
        matches = [i for i, item in enumerate(target) if json_equal(item, op["value"])]
        for index in reversed(matches):
            self.emit("remove", [*path, str(index)])


_Handler = Callable[[_Tx, dict[str, Any], list[str]], None]

_HANDLERS: dict[str, _Handler] = {
    "add": _Tx.op_add,
    "remove": _Tx.op_remove,
    "replace": _Tx.op_replace,
    "move": _Tx.op_move,
    "copy": _Tx.op_copy,
    "test": _Tx.op_test,
    "x-set": _Tx.op_x_set,
    "x-merge": _Tx.op_x_merge,
    "x-inc": _Tx.op_x_inc,
    "x-append-unique": _Tx.op_x_append_unique,
    "x-remove-value": _Tx.op_x_remove_value,
    "x-now": _Tx.op_x_now,
}


# ------------------------------------------------------------------ API


def apply_ops(doc: Any, ops: Any, *, now: str = "", limits: Limits = DEFAULT_LIMITS) -> Applied:
    """Apply an op list (RFC 6902 plus intent ops) to ``doc`` without mutating
    it. ``now``: the ISO 8601 timestamp ``x-now`` writes."""
    if not isinstance(ops, list):
        raise PatchError("invalid_patch", "ops must be a list of ops")
    tx = _Tx(doc, limits, now)
    for index, op in enumerate(ops):
        tx.run(index, op)
    return Applied(tx.root, tx.ops, list(tx.units))


def apply_merge(doc: Any, merge: Any, *, limits: Limits = DEFAULT_LIMITS) -> Applied:
    """Apply an RFC 7386 merge patch at the root of ``doc`` without mutating it.

    The units are those of the emitted ops (each "set"), not one unit for the
    root: a merge patch touching ``/title`` only conflicts with writes near
    ``/title``."""
    tx = _Tx(doc, limits, "")
    try:
        _check(merge, 0, limits)
        tx.merge([], merge)
    except _Fail as fail:
        raise PatchError(fail.kind, f"merge: {fail.reason}") from None
    units: dict[Unit, None] = {}
    for op in tx.ops:
        units[(op["path"], "set")] = None
    return Applied(tx.root, tx.ops, list(units))


def apply_normalised(doc: Any, ops: list[dict[str, Any]]) -> Any:
    """Replay normalised (RFC 6902) ops, e.g. from the patch log, without
    mutating ``doc``; no hygiene checks. Raises PatchError if they do not apply."""
    if not isinstance(ops, list):
        raise PatchError("invalid_patch", "ops must be a list of ops")
    tx = _Tx(doc, None, "")
    for index, op in enumerate(ops):
        tx.run(index, op, trusted=True)
    return tx.root


def conflicts(incoming: list[Unit], history: list[Unit]) -> list[str]:
    """The sorted pointers of ``incoming`` units that conflict with a
    ``history`` unit: one path equals or is an ancestor of the other
    (token-wise), except two "append" (or two "inc") units of the same path."""
    kinds: dict[tuple[str, ...], set[str]] = {}  # history path -> its kinds
    below: set[tuple[str, ...]] = set()  # proper ancestors of history paths
    for pointer, kind in history:
        tokens = tuple(parse_pointer(pointer))
        kinds.setdefault(tokens, set()).add(kind)
        below.update(tokens[:n] for n in range(len(tokens)))
    found: set[str] = set()
    for pointer, kind in incoming:
        tokens = tuple(parse_pointer(pointer))
        same = kinds.get(tokens, set())
        if (
            (same - {kind} if kind in _COMMUTING else same)
            or tokens in below
            or any(tokens[:n] in kinds for n in range(len(tokens)))
        ):
            found.add(pointer)
    return sorted(found)
