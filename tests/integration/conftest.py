"""Fixtures: a router started from the shipped ``realms/interop.toml`` (on
free ports) shared by a test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .router_process import RouterProcess, interop_config, run_router


@pytest.fixture(scope="module")
def router() -> Iterator[RouterProcess]:
    with run_router(interop_config()) as rp:
        yield rp
