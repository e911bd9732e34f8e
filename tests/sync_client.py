"""The client side of the data-sync protocol, for tests: a plain RFC 6902
applier written independently of the router's patch engine."""

from __future__ import annotations

import copy
from typing import Any


def pointer(path: str) -> list[str]:
    return [t.replace("~1", "/").replace("~0", "~") for t in path.split("/")[1:]]


def _walk(doc: Any, tokens: list[str]) -> Any:
    for t in tokens:
        doc = doc[int(t)] if isinstance(doc, list) else doc[t]
    return doc


def _put(doc: Any, path: str, value: Any, insert: bool) -> Any:
    tokens = pointer(path)
    if not tokens:
        return copy.deepcopy(value)
    c, k = _walk(doc, tokens[:-1]), tokens[-1]
    if isinstance(c, list) and insert:
        c.insert(int(k), copy.deepcopy(value))
    else:
        c[int(k) if isinstance(c, list) else k] = copy.deepcopy(value)
    return doc


def _remove(doc: Any, path: str) -> None:
    tokens = pointer(path)
    c, k = _walk(doc, tokens[:-1]), tokens[-1]
    del c[int(k) if isinstance(c, list) else k]


def apply_patch(doc: Any, ops: list[dict[str, Any]]) -> Any:
    """A plain RFC 6902 applier (the client side; independent of the router's)."""
    doc = copy.deepcopy(doc)
    for op in ops:
        kind, path = op["op"], op["path"]
        if kind == "remove":
            _remove(doc, path)
        elif kind in ("add", "replace"):
            doc = _put(doc, path, op["value"], kind == "add")
        else:  # move / copy
            value = copy.deepcopy(_walk(doc, pointer(op["from"])))
            if kind == "move":
                _remove(doc, op["from"])
            doc = _put(doc, path, value, True)
    return doc


class RecordState:
    """A replica of one record following the client rules of the protocol: a
    snapshot with another epoch replaces the state; a snapshot or change not above
    the version held is a duplicate; a change one above applies; a gap fails."""

    def __init__(self) -> None:
        self.v = -1
        self.epoch: str | None = None
        self.value: Any = None
        self.deleted = False
        self.log: list[tuple[str, int]] = []  # ("snapshot"|"patch", v) as received

    def snapshot(self, s: dict[str, Any]) -> None:
        self.log.append(("snapshot", s["v"]))
        if s["epoch"] != self.epoch or s["v"] > self.v:
            self.v, self.epoch, self.value = s["v"], s["epoch"], s["value"]
            self.deleted = bool(s.get("deleted"))

    def patch(self, p: dict[str, Any]) -> None:
        self.log.append(("patch", p["v"]))
        if p["v"] <= self.v:
            return
        assert p["v"] == self.v + 1, f"a gap: at v{self.v}, received v{p['v']}"
        if p.get("deleted"):
            self.value, self.deleted = None, True
        elif "ops" in p:
            self.value, self.deleted = apply_patch(self.value, p["ops"]), False
        else:
            self.value, self.deleted = p["value"], False
        self.v = p["v"]

    def resync(self, got: dict[str, Any]) -> None:
        """Apply what ``sync.get`` answered: missing patches or a snapshot."""
        if "patches" in got:
            for p in got["patches"]:
                self.patch(p)
        else:
            self.snapshot(got)
