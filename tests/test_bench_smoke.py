"""Keeps the benchmark harness working: a few seconds of each workload
against a real router. No timing is asserted (benchmarks are not tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.router_process import ROOT, interop_config, run_router

WORKLOADS = [
    ["--workload", "rpc", "--callers", "1,2", "--shared", "1,2"],
    ["--workload", "fanout", "--subscribers", "3", "--window", "4"],
    ["--workload", "connect", "--sessions", "30"],
]


@pytest.mark.parametrize("args", WORKLOADS, ids=["rpc", "fanout", "connect"])
@pytest.mark.parametrize("transport", ["websocket", "rawsocket"])
def test_wampbench_smoke(tmp_path: Path, args: list[str], transport: str) -> None:
    out = tmp_path / "runs.jsonl"
    with run_router(interop_config()) as rp:
        target = (["--url", rp.ws_url] if transport == "websocket"
                  else ["--rawsocket", f"127.0.0.1:{rp.raw_port}"])
        done = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "wampbench.py"), *target, *args,
             "--serializer", "json", "--duration", "1", "--warmup", "0.2", "--procs", "1",
             "--router-pid", str(rp.proc.pid), "--out", str(out), "--quiet"],
            capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records and all(r.get("status") == "ok" for r in records), records
    assert all(r.get("throughput", 0) > 0 for r in records), records


SYNC_CONFIG = """
[[listeners]]
transport = "websocket"
endpoint = "127.0.0.1:0"
path = "/ws"

[[listeners]]
transport = "rawsocket"
endpoint = "127.0.0.1:0"

[[realms]]
name = "realm1"

[[realms.roles]]
name = "anonymous"

[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = ["call", "register", "publish", "subscribe"]

[realms.sync]
api_prefix = "sync."

[[realms.sync.domains]]
prefix = "bench.rec."
store = "memory"
"""


@pytest.mark.parametrize("transport", ["websocket", "rawsocket"])
def test_wampbench_sync_smoke(tmp_path: Path, transport: str) -> None:
    """The data-sync workload: sync.patch writers + get_retained observers, checks pass."""
    out = tmp_path / "runs.jsonl"
    with run_router(SYNC_CONFIG) as rp:
        target = (["--url", rp.ws_url] if transport == "websocket"
                  else ["--rawsocket", f"127.0.0.1:{rp.raw_port}"])
        done = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "wampbench.py"), *target,
             "--workload", "sync", "--writers", "2", "--observers", "2", "--records", "5",
             "--write", "patch,publish", "--serializer", "json", "--duration", "0.5",
             "--warmup", "0.2", "--procs", "1", "--router-pid", str(rp.proc.pid),
             "--out", str(out), "--quiet"],
            capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 2 and all(r.get("status") == "ok" for r in records), records
    for r in records:
        assert r["throughput"] > 0 and r["deliveries"] > 0, r
        assert r["check"]["ok"], r["check"]
    patch = next(r for r in records if r["params"]["write"] == "patch")
    assert patch["check"]["records_written"] > 0, patch["check"]
    assert patch["check"]["retained_events"] >= 2 * 5, patch["check"]  # one per subscription
