"""The unmodified JavaScript data-sync clients (autobahn-js, wampy.js, the README's
doc.js) against ``realms/cluster.toml``: ``wamp-router --workers 2`` on one port
(the kernel deals the connections over the two workers, so a driver's observers
and writers land on different nodes) with a ``redis-server`` started here. Every
scenario of the single-router drivers must hold the same way (JSON; the other
serializers are covered against one router)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import pytest

from .redis_server import free_port, redis_server
from .router_process import ROOT, RouterProcess, run_router
from .test_datasync_js import (
    AUTOBAHN_SCENARIOS,
    DOC_JS,
    JS_DIR,
    WAMPY_DIR,
    WAMPY_SCENARIOS,
    Drivers,
    Node,
    _check,
    _npm_install,
)

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None,
    reason="the data-sync JavaScript clients need Node.js and npm on PATH")


@pytest.fixture(scope="module")
def cluster_router() -> Iterator[RouterProcess]:
    text = (ROOT / "realms" / "cluster.toml").read_text()
    ws, rs, metrics = free_port(), free_port(), free_port()
    with redis_server() as redis:
        for old, new in (("127.0.0.1:8080", f"127.0.0.1:{ws}"),
                         ("127.0.0.1:8081", f"127.0.0.1:{rs}"),
                         ("127.0.0.1:9100", f"127.0.0.1:{metrics}"),
                         ("redis://127.0.0.1:6379/0", f"redis://127.0.0.1:{redis.port}/0")):
            assert old in text
            text = text.replace(old, new)
        with run_router(text, expect_listeners=6, extra_args=("--workers", "2")) as rp:
            deadline = time.monotonic() + 20
            while sum("cluster backplane: connected" in line for line in list(rp.lines)) < 2:
                assert time.monotonic() < deadline, rp.output()
                time.sleep(0.05)
            yield rp


@pytest.fixture(scope="module")
def js_packages() -> None:
    _npm_install(JS_DIR, "autobahn")
    _npm_install(WAMPY_DIR, "wampy")


@pytest.fixture(scope="module")
def drivers(cluster_router: RouterProcess, js_packages: None) -> Drivers:
    return Drivers(cluster_router)


@pytest.mark.parametrize("scenario", AUTOBAHN_SCENARIOS)
def test_autobahn_js_across_workers(drivers: Drivers, scenario: str) -> None:
    _check(drivers.result(JS_DIR, "json", scenario))


@pytest.mark.parametrize("scenario", WAMPY_SCENARIOS)
def test_wampy_js_across_workers(drivers: Drivers, scenario: str) -> None:
    _check(drivers.result(WAMPY_DIR, "json", scenario))


def test_readme_walkthrough_across_workers(cluster_router: RouterProcess,
                                           js_packages: None) -> None:
    """doc.js watch, then set and inc from other processes (any worker each)."""
    env = {"WAMP_URL": cluster_router.ws_url, "NODE_PATH": str(JS_DIR / "node_modules")}
    uri = "app.doc.cluster_hello"
    watcher = Node.start([str(DOC_JS), "watch", uri], cwd=DOC_JS.parent, env=env)
    try:
        watcher.wait_for_line("v0 (snapshot): null", 10)
        steps: list[tuple[list[str], str]] = [
            (["set", uri, "title", '"Hi"'], 'v1 (patch): {"title":"Hi"}'),
            (["inc", uri, "likes"], 'v2 (patch): {"title":"Hi","likes":1}'),
            (["inc", uri, "likes"], 'v3 (patch): {"title":"Hi","likes":2}'),
        ]
        for args, line in steps:
            writer = Node.start([str(DOC_JS), *args], cwd=DOC_JS.parent, env=env)
            try:
                assert writer.wait(15) == 0, writer.output()
            finally:
                writer.stop()
            watcher.wait_for_line(line, 10)
    finally:
        watcher.stop()


def test_the_clients_did_cross_workers(cluster_router: RouterProcess, drivers: Drivers) -> None:
    """(Run last) the scenarios above really had observers and writers on different
    workers: each worker applied versions the other committed."""
    import re

    from .test_operations import scrape

    drivers.result(JS_DIR, "json", AUTOBAHN_SCENARIOS[0])  # (the driver ran)
    urls = re.findall(r"listening transport=metrics address=(\S+)", cluster_router.output())
    assert len(urls) == 2
    key = 'wamp_sync_remote_versions_total{realm="realm1"}'
    remote = [scrape(u).get(key, 0.0) for u in urls]
    assert all(r > 0 for r in remote), remote
