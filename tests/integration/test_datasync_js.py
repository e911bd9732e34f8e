"""Data-sync end to end with unmodified JavaScript clients (Node) against ONE router
started from ``realms/datasync.toml`` for this module (free ports, a temporary SQLite
file):

- autobahn-js 22.11.1: ``interop/js/datasync.js`` (observe with get_retained, writes by
  PUBLISH and CALL, a second observer, message ordering, conflicts, rebase, resync after
  a disconnect, delete and re-create), once per serializer;
- wampy.js 8.0.2: ``interop/wampy/datasync.js`` (the same protocol without subscribe
  options: subscribe, buffer, sync.get), once per serializer;
- the README walk-through client ``examples/datasync/doc.js`` (watch, set, inc).

Each driver runs all of its scenarios in one node process per serializer (the results
are cached per module) and prints one JSON line per scenario; every scenario is its own
test id here. Every process started is stopped in a ``finally``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .router_process import ROOT, RouterProcess, run_router

JS_DIR = ROOT / "interop" / "js"
WAMPY_DIR = ROOT / "interop" / "wampy"
DOC_JS = ROOT / "examples" / "datasync" / "doc.js"
SERIALIZERS = ["json", "msgpack", "cbor"]
DRIVER_TIMEOUT = 60  # one node process: every scenario of one client and serializer

AUTOBAHN_SCENARIOS = [
    "observe", "write_publish", "write_call", "second_observer", "ordering", "conflict",
    "conflict_removed_path", "rebase", "resync", "delete_recreate",
]
WAMPY_SCENARIOS = [
    "observe", "observe_get_retained", "write_publish", "own_publish_echo", "write_call",
    "conflict", "rebase", "resync", "delete_recreate",
]
# Router bugs the drivers detect; strict: the test fails once the router is fixed, so
# that the mark gets removed.
KNOWN_ROUTER_BUGS: dict[str, str] = {}  # scenario -> reason (xfail, strict)

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None,
    reason="the data-sync JavaScript clients need Node.js and npm on PATH")


def datasync_config(database: Path) -> str:
    text = (ROOT / "realms" / "datasync.toml").read_text()
    text = text.replace("127.0.0.1:8080", "127.0.0.1:0").replace("127.0.0.1:8081", "127.0.0.1:0")
    assert 'database = "data/datasync.sqlite3"' in text
    return text.replace('database = "data/datasync.sqlite3"', f'database = "{database}"')


def _npm_install(folder: Path, package: str) -> None:
    """``npm ci`` in ``folder`` unless ``package`` is installed there; npm 11 refuses
    ``ci`` for wampy's lock file (cbor-extract's optional packages): then ``npm install``
    (as interop/matrix.py does)."""
    if (folder / "node_modules" / package / "package.json").exists():
        return
    out = ""
    for cmd in (["npm", "ci"], ["npm", "install"]):
        res = subprocess.run([*cmd, "--no-audit", "--no-fund", "--loglevel=error"], cwd=folder,
                             capture_output=True, text=True, timeout=300)
        out += f"$ {' '.join(cmd)}\n{res.stdout}{res.stderr}"
        if res.returncode == 0:
            return
    pytest.fail(f"cannot install the node packages of {folder}:\n{out}")


@dataclass
class Node:
    """A node process whose stdout lines are collected by a thread."""

    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, args: list[str], cwd: Path, env: dict[str, str] | None = None) -> Node:
        proc = subprocess.Popen(
            ["node", *args], cwd=cwd, env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, encoding="utf-8", errors="replace", start_new_session=True)
        node = cls(proc)
        for stream, into in ((proc.stdout, node.lines), (proc.stderr, node.err)):
            threading.Thread(target=_read, args=(stream, into), daemon=True).start()
        return node

    def wait_for_line(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.lines:
                return
            if self.proc.poll() is not None:
                time.sleep(0.1)  # let the readers drain
                if text in self.lines:
                    return
                break
            time.sleep(0.02)
        raise AssertionError(f"no line {text!r} from node (exit {self.proc.poll()}):\n"
                             f"{self.output()}")

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"node did not finish within {timeout}s:\n"
                                 f"{self.output()}") from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(5)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(5)

    def output(self, tail: int = 40) -> str:
        return ("stdout:\n" + "\n".join(self.lines[-tail:]) +
                "\nstderr:\n" + "\n".join(self.err[-tail:]))


def _read(stream: Any, into: list[str]) -> None:
    for line in stream:
        into.append(line.rstrip("\n"))


@pytest.fixture(scope="module")
def datasync_router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterProcess]:
    database = tmp_path_factory.mktemp("datasync_js") / "records.sqlite3"
    with run_router(datasync_config(database)) as rp:
        yield rp


@pytest.fixture(scope="module")
def node_packages() -> None:
    _npm_install(JS_DIR, "autobahn")
    _npm_install(WAMPY_DIR, "wampy")


@dataclass
class DriverRun:
    results: dict[str, dict[str, Any]]
    returncode: int | None
    output: str


class Drivers:
    """Runs a driver once per serializer and keeps its results for every scenario."""

    def __init__(self, router: RouterProcess) -> None:
        self.router = router
        self.runs: dict[tuple[str, str], DriverRun] = {}

    def result(self, folder: Path, serializer: str, scenario: str) -> dict[str, Any]:
        key = (str(folder), serializer)
        if key not in self.runs:
            self.runs[key] = self._run(folder, serializer)
        run = self.runs[key]
        if scenario not in run.results:
            pytest.fail(f"{folder.name}/datasync.js ({serializer}) reported nothing for "
                        f"{scenario!r} (exit {run.returncode}):\n{run.output}\n"
                        f"router:\n{self.router.output()[-4000:]}")
        return run.results[scenario]

    def _run(self, folder: Path, serializer: str) -> DriverRun:
        tag = f"py{os.getpid()}"
        node = Node.start(["datasync.js", "--url", self.router.ws_url, "--serializer", serializer,
                           "--tag", tag, "--timeout", "15"], cwd=folder)
        try:
            code: int | None = node.wait(DRIVER_TIMEOUT)
        except AssertionError:
            code = None
        finally:
            node.stop()
        time.sleep(0.05)  # the reader threads see EOF
        results = {}
        for line in node.lines:
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict) and "scenario" in item:
                results[item["scenario"]] = item
        return DriverRun(results, code, node.output())


@pytest.fixture(scope="module")
def drivers(datasync_router: RouterProcess, node_packages: None) -> Drivers:
    return Drivers(datasync_router)


def _cases(scenarios: list[str]) -> list[Any]:
    cases = []
    for serializer in SERIALIZERS:
        for scenario in scenarios:
            marks = []
            if scenario in KNOWN_ROUTER_BUGS:
                marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_ROUTER_BUGS[scenario]))
            cases.append(pytest.param(serializer, scenario, marks=marks,
                                      id=f"{serializer}-{scenario}"))
    return cases


def _check(item: dict[str, Any]) -> None:
    if item["result"] == "SKIP":  # what the client cannot express, and why
        pytest.skip(f"{item['client']} {item['serializer']}: {item['detail']}")
    if item["result"] != "PASS":
        wire = "\n".join(item.get("wire") or [])
        pytest.fail(f"{item['client']} {item['serializer']} scenario {item['scenario']}: "
                    f"{item['result']}: {item['detail']}" + (f"\nreceived:\n{wire}" if wire else ""),
                    pytrace=False)
    for note in item.get("notes") or []:
        print(f"{item['client']} {item['scenario']}: {note}")


@pytest.mark.parametrize(("serializer", "scenario"), _cases(AUTOBAHN_SCENARIOS))
def test_autobahn_js(drivers: Drivers, serializer: str, scenario: str) -> None:
    _check(drivers.result(JS_DIR, serializer, scenario))


@pytest.mark.parametrize(("serializer", "scenario"), _cases(WAMPY_SCENARIOS))
def test_wampy_js(drivers: Drivers, serializer: str, scenario: str) -> None:
    _check(drivers.result(WAMPY_DIR, serializer, scenario))


@pytest.mark.parametrize(("folder", "expected"), [(JS_DIR, AUTOBAHN_SCENARIOS),
                                                  (WAMPY_DIR, WAMPY_SCENARIOS)],
                         ids=["autobahn-js", "wampy.js"])
def test_every_driver_scenario_is_a_test(node_packages: None, folder: Path,
                                         expected: list[str]) -> None:
    out = subprocess.run(["node", "datasync.js", "--list"], cwd=folder, capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.split() == expected


def test_readme_walkthrough_doc_js(datasync_router: RouterProcess, node_packages: None) -> None:
    """README "Five minutes with it": doc.js watch, then set and inc from other processes."""
    env = {"WAMP_URL": datasync_router.ws_url, "NODE_PATH": str(JS_DIR / "node_modules")}
    uri = "app.doc.hello"
    watcher = Node.start([str(DOC_JS), "watch", uri], cwd=DOC_JS.parent, env=env)
    try:
        watcher.wait_for_line("v0 (snapshot): null", 10)
        for args, version in ((["set", uri, "title", '"Hi"'], 1), (["inc", uri, "likes"], 2)):
            cmd = Node.start([str(DOC_JS), *args], cwd=DOC_JS.parent, env=env)
            try:
                code = cmd.wait(20)
                time.sleep(0.05)
                assert code == 0, f"doc.js {' '.join(args)} exited {code}:\n{cmd.output()}"
                cmd.wait_for_line(f"{uri} is now at version {version}", 2)
            finally:
                cmd.stop()
        watcher.wait_for_line('v2 (patch): {"title":"Hi","likes":1}', 10)
        versions = [line for line in watcher.lines if line.startswith("v")]
        assert versions == ["v0 (snapshot): null", 'v1 (patch): {"title":"Hi"}',
                            'v2 (patch): {"title":"Hi","likes":1}'], watcher.output()
    finally:
        watcher.stop()
