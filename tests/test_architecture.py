"""Architecture rule: the pure layers do no I/O.

Every module under wamp_router/core, wamp_router/wire and wamp_router/ext (those that
exist) must not import an I/O framework, the network, clocks, randomness or threads.
Those belong in the adapters (wamp_router/twisted).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "wamp_router"
PURE_LAYERS = ("core", "wire", "ext")
FORBIDDEN = frozenset(
    {"twisted", "autobahn", "txaio", "socket", "time", "random", "asyncio", "select", "threading"}
)


def pure_files() -> list[Path]:
    files: list[Path] = []
    for layer in PURE_LAYERS:
        root = PACKAGE / layer
        if root.is_dir():
            files.extend(sorted(root.rglob("*.py")))
    return files


def forbidden_imports(source: str, filename: str) -> list[str]:
    """``"line N: import X"`` for each import of a forbidden top-level module."""
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            if name.split(".")[0] in FORBIDDEN:
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_pure_layers_exist() -> None:
    assert pure_files(), f"no pure-layer modules found under {PACKAGE}"


@pytest.mark.parametrize("path", pure_files(), ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_no_io_imports_in_pure_layers(path: Path) -> None:
    bad = forbidden_imports(path.read_text(encoding="utf-8"), str(path))
    assert not bad, f"{path.relative_to(PACKAGE.parent)} imports I/O modules: " + "; ".join(bad)


@pytest.mark.parametrize(
    "source",
    [
        "import time",
        "import os, socket",
        "from twisted.internet import reactor",
        "import autobahn.wamp.message as m",
        "from asyncio import sleep",
        "def f():\n    import random\n",
        "try:\n    import threading\nexcept ImportError:\n    pass\n",
        "from select import epoll",
        "import txaio",
    ],
)
def test_checker_catches_forbidden_imports(source: str) -> None:
    assert forbidden_imports(source, "<test>")


@pytest.mark.parametrize(
    "source",
    [
        "import hashlib, struct",
        "from . import time",
        "from .socket import x",
        "import timeit",
        "from typing import TYPE_CHECKING",
        "import randomness_helpers",
    ],
)
def test_checker_allows_other_imports(source: str) -> None:
    assert not forbidden_imports(source, "<test>")
