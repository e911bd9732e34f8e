#!/usr/bin/env python3
"""Data-sync records across cluster nodes (store = "redis") against one plain router.

    /work/bench-venv/bin/python bench/sync_cluster_bench.py --repeats 3        # ~5 min
    /work/bench-venv/bin/python bench/sync_cluster_bench.py --summarize bench/results/sync-cluster-<stamp>.jsonl

Variants (fresh processes per variant and repeat, on free loopback ports; the cluster
machinery -- redis-server, node configs, node placement -- is bench/cluster_bench.py's,
the sync domain / metrics config and the Crossbar.io setup are bench/sync_compare.py's):

* memory    one wamp-router, sync domain `bench.rec.` with store = "memory" (no [cluster])
* sqlite    the same with store = "sqlite" (a fresh database)
* redis1    redis-server + 1 node, [cluster] backplane, store = "redis"
* redis2    redis-server + 2 nodes, store = "redis": writers and observers dealt over them
* crossbar  Crossbar.io, retained publish with acknowledge (no versions, no counter)

Cases (wampbench's `sync` workload through bench/runner.py, WebSocket/json, one write in
flight per writer, writes = CALL sync.patch(uri, [x-inc /n]); sessions dealt round robin
over the nodes, so with 2 nodes half the writers and half the observers of every record
are on each node):

* spread  W writers, each writing only its own records (K records, writer g: g, g+W, ...):
          no two writers share a record, so no compare-and-set contention; P observers per
          record (`get_retained`). writes/s, write and write->event latency.
* hot     W writers incrementing ONE record concurrently, a few observers on it: writes/s,
          compare-and-set retries per write (the nodes' `wamp_sync_cas_retries_total`,
          read from their [metrics] endpoints before and after the case).

Checks, on top of wampbench's (contiguous versions and per-writer order at every
observer, nobody behind at the end, no write error, nothing unanswered): after the run
each node is asked for every record (`sync.get_many`); every node must give the same
{v, value}, each record's counter must equal its version count since the seed (n = v - 1),
and the counters must add up to the number of writes acknowledged during the whole
case (warm-up and drain included). A mismatch is a router bug and is printed loudly
(exit code 1). Router CPU is summed over the nodes; Redis CPU is sampled from /proc
over the measured window (and INFO cpu over the whole case), as in cluster_bench.py.
Output: bench/results/sync-cluster-<stamp>.{jsonl,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cluster_bench import PY_SPY, Cluster, ClusterNode, finish_profile, start_profile
from compare import wait_quiet
from report import dig, fmt, median, spread
from routers import (
    DEFAULT_CROSSBAR_VENV,
    DEFAULT_CROSSBAR_VERSION,
    OURS_TOML,
    REPO,
    RouterStartError,
    find_ours,
    free_ports,
)
from runner import run_case
from sync_compare import (
    PREFIX,
    SYNC_TOML,
    make_router,
    read_sync_counters,
)
from wampclient import CALL, RESULT, Session, Target, connect, get_serializer

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

# name -> (cluster nodes: 0 = plain router without [cluster], store; None = Crossbar.io)
VARIANTS: dict[str, tuple[int, str | None]] = {
    "memory": (0, "memory"),
    "sqlite": (0, "sqlite"),
    "redis1": (1, "redis"),
    "redis2": (2, "redis"),
    "crossbar": (0, None),
}
BASES = ("memory", "sqlite")  # the ratio columns
CASE_PREFIX = {"spread": PREFIX + "s.", "hot": PREFIX + "h."}


# =============================================================================== deployments


def snapshot_router(rev: str, workdir: Path) -> tuple[str, str]:
    """`git archive` of wamp_router/ at `rev` into the workdir (git itself is only read),
    and a wrapper that runs it with the installed router's interpreter: the routers then
    run a known commit even while the working tree is being edited. -> (command, sha)."""
    sha = subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.strip()
    dest = workdir / f"router-{sha}"
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "archive", sha, "wamp_router"], cwd=REPO, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    installed = find_ours()
    python = "/work/venv/bin/python"
    if installed:
        first = Path(installed).read_text(errors="replace").splitlines()[0]
        python = first[2:].strip() if first.startswith("#!") else python
    wrapper = dest / "wamp-router"
    # -m puts the cwd first on sys.path: the routers run in their own workdir, not the repo
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{dest}" exec {python} -m wamp_router "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper), sha


class SyncNode(ClusterNode):
    """A cluster node (or, without backplane, a plain router) with the sync domain
    `bench.rec.` of the given store and a [metrics] listener."""

    def __init__(
        self,
        workdir: Path,
        ws: int,
        raw: int,
        binary: str | None,
        backplane: str | None,
        idx: int,
        store: str,
    ) -> None:
        super().__init__(workdir, ws, raw, binary, backplane, idx)
        self.store = store
        self.metrics_port = free_ports(1)[0]
        self.db = workdir / f"{self.name}.sqlite3"

    def command(self) -> list[str]:
        if not self.binary:
            raise RouterStartError("wamp-router not found (looked on PATH, .venv, /work/venv)")
        database = f'database = "{self.db}"\n' if self.store == "sqlite" else ""
        text = OURS_TOML.format(ws=self.ws_port, raw=self.raw_port) + SYNC_TOML.format(
            metrics=self.metrics_port, prefix=PREFIX, store=self.store, database=database
        )
        if self.backplane:
            text += f'\n[cluster]\nbackplane = "{self.backplane}"\nprefix = "wrbench:"\n'
        cfg = self.workdir / f"{self.name}.toml"
        cfg.write_text(text)
        return [self.binary, "--config", str(cfg), "--log-level", "warn"]

    def stop(self, timeout: float = 15.0) -> None:
        super().stop(timeout)
        for suffix in ("", "-wal", "-shm"):
            Path(str(self.db) + suffix).unlink(missing_ok=True)


class SyncCluster(Cluster):
    """cluster_bench's Cluster (Redis when n >= 1, n nodes) with sync nodes; store None:
    one Crossbar.io router instead."""

    def __init__(self, n: int, workdir: Path, a: argparse.Namespace, store: str | None) -> None:
        super().__init__(n, workdir, a.ours_cmd)
        self.a = a
        self.store = store

    def make_node(self, ws: int, raw: int, backplane: str | None, i: int) -> Any:
        if self.store is None:
            r = make_router(self.a, "crossbar-retained", self.workdir)  # its own free ports
            r.name = "node0"
            return r
        return SyncNode(self.workdir, ws, raw, self.binary, backplane, i, self.store)

    def counters(self) -> list[dict[str, float]]:
        return [read_sync_counters(n.metrics_port) for n in self.nodes if isinstance(n, SyncNode)]


def redis_cmdstats(cl: SyncCluster) -> dict[str, tuple[int, int]]:
    """Redis INFO commandstats: command -> (calls, usec); {} without Redis."""
    if cl.redis is None:
        return {}
    try:
        text = cl.redis.command("INFO", "commandstats").decode(errors="replace")
    except OSError:
        return {}
    out: dict[str, tuple[int, int]] = {}
    for line in text.splitlines():
        if line.startswith("cmdstat_") and ":" in line:
            name, _, rest = line.partition(":")
            kv = dict(x.split("=", 1) for x in rest.split(",") if "=" in x)
            out[name.removeprefix("cmdstat_")] = (int(kv.get("calls", 0)), int(kv.get("usec", 0)))
    return out


def redis_reset(cl: SyncCluster) -> None:
    """Zero Redis's command stats, latency percentiles and slow log (commands >= 1 ms)."""
    if cl.redis is None:
        return
    try:
        cl.redis.command("CONFIG", "RESETSTAT")
        cl.redis.command("CONFIG", "SET", "slowlog-log-slower-than", "1000")
        cl.redis.command("CONFIG", "SET", "slowlog-max-len", "100000")
        cl.redis.command("SLOWLOG", "RESET")
    except OSError:
        pass


def redis_latency(cl: SyncCluster) -> dict[str, Any]:
    """Per command p50/p99/p99.9 µs (INFO latencystats) and the slow log's length."""
    if cl.redis is None:
        return {}
    out: dict[str, Any] = {}
    try:
        text = cl.redis.command("INFO", "latencystats").decode(errors="replace")
        slow = cl.redis.command("SLOWLOG", "LEN").decode(errors="replace")
    except OSError:
        return {}
    for line in text.splitlines():
        if line.startswith("latency_percentiles_usec_") and ":" in line:
            name, _, rest = line.partition(":")
            kv = dict(x.split("=", 1) for x in rest.split(",") if "=" in x)
            out[name.removeprefix("latency_percentiles_usec_")] = {
                k: float(v) for k, v in kv.items()
            }
    if slow.startswith(":"):
        out["slowlog_1ms"] = int(slow[1:].strip())
    return out


# =============================================================================== final read


class Reader(Session):
    """One session that CALLs and awaits the RESULT (or raises on ERROR)."""

    def on_app_message(self, msg: Any) -> None:
        if msg[0] == RESULT:
            fut = self.pending.pop((RESULT, msg[1]), None)
            if fut is not None and not fut.done():
                fut.set_result(msg)

    def on_error(self, msg: Any) -> None:
        if msg[1] == CALL:
            fut = self.pending.pop((RESULT, msg[2]), None)
            if fut is not None and not fut.done():
                fut.set_exception(RuntimeError(f"{msg[4]} {msg[5:] if len(msg) > 5 else ''}"))
                return
        super().on_error(msg)

    async def call(self, proc: str, args: list[Any]) -> Any:
        msg = await asyncio.wait_for(self._request(RESULT, [CALL, 0, {}, proc, args]), 10)
        return msg[3][0] if len(msg) > 3 and msg[3] else None


async def _read_records(targets: list[dict[str, Any]], uris: list[str]) -> list[dict[str, Any]]:
    """sync.get_many(uris) on every node: per node {uri: (v, n)}."""
    ser = get_serializer("json")
    out: list[dict[str, Any]] = []
    for t in targets:
        s = Reader()
        await connect(Target(**t), ser, s, "realm1")
        try:
            res = await s.call("sync.get_many", [uris])
            out.append({r["uri"]: (r.get("v"), (r.get("value") or {}).get("n")) for r in res})
        finally:
            await s.leave()
    return out


def final_check(cl: SyncCluster, uris: list[str], acked: int) -> dict[str, Any]:
    """Every node holds the same {v, n} of every record; n = v - 1 (seeded at v1 with n = 0,
    then one x-inc per version); the counters add up to the acknowledged writes. Replication
    to the other nodes is asynchronous: re-read for up to 3 s before calling it a mismatch."""
    t0 = time.monotonic()
    problems: list[str] = []
    while True:
        try:
            views = asyncio.run(_read_records(cl.targets(), uris))
        except Exception as e:  # reported as a failed check
            return {"ok": False, "problems": [f"final read failed: {type(e).__name__}: {e}"]}
        problems = []
        first = views[0]
        for i, view in enumerate(views[1:], start=1):
            diff = [u for u in uris if view.get(u) != first.get(u)]
            if diff:
                problems.append(
                    f"node{i} differs from node0 on {len(diff)} records, e.g. {diff[0]}: "
                    f"{view.get(diff[0])} vs {first.get(diff[0])}"
                )
        bad = [u for u in uris if not first.get(u) or first[u][1] != (first[u][0] or 0) - 1]
        if bad:
            problems.append(
                f"{len(bad)} records with n != v - 1, e.g. {bad[0]}: (v, n) = {first.get(bad[0])}"
            )
        total = sum((first.get(u) or (0, 0))[1] or 0 for u in uris)
        if total != acked:
            problems.append(f"counters add up to {total}, acknowledged writes {acked}")
        if not problems or time.monotonic() - t0 > 3.0:
            break
        time.sleep(0.5)
    return {
        "ok": not problems,
        "problems": problems,
        "counter_total": total,
        "acked_total": acked,
        "records": len(uris),
        "read_after_s": round(time.monotonic() - t0, 2),
    }


# =============================================================================== runs


def case_spec(case: str, a: argparse.Namespace) -> dict[str, Any]:
    base = {
        "op": "inc",
        "inflight": 1,
        "payload": 32,
        "write": "patch",
        "zero_mask": False,
        "topic_prefix": CASE_PREFIX[case],
        "writer_node": 0,
        "observer_node": 0,
    }
    if case == "spread":
        return dict(
            base,
            writers=a.writers,
            records=a.records,
            own_records=True,
            observers=a.observers,
            per_record=min(a.per_record, a.observers),
        )
    return dict(
        base,
        writers=a.hot_writers,
        records=1,
        own_records=False,
        observers=a.hot_observers,
        per_record=a.hot_observers,
    )


def _delta(c0: list[dict[str, float]], c1: list[dict[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for a0, a1 in zip(c0, c1, strict=False):
        for k, v in a1.items():
            out[k] = out.get(k, 0.0) + v - a0.get(k, 0.0)
    return out


def run_variant(
    name: str, a: argparse.Namespace, rep: int, workdir: Path, sink: Any
) -> list[dict[str, Any]]:
    """Start the variant's processes, run every case on them, stop them (also on errors)."""
    n, store = VARIANTS[name]
    cl = SyncCluster(n, workdir / f"{name}-r{rep}", a, store)
    recs: list[dict[str, Any]] = []
    try:
        cl.start()
    except (RouterStartError, RuntimeError) as e:
        print(f"*** {name} did not start: {e}", file=sys.stderr)
        for case in a.cases:
            rec = {"variant": name, "nodes": n, "case": case, "repeat": rep}
            rec.update(status="error", reason=f"did not start: {e}"[:300])
            sink.write(json.dumps(rec) + "\n")
            recs.append(rec)
        return recs
    try:
        for case in a.cases:
            rec = run_one(cl, name, case, a, rep)
            sink.write(json.dumps(rec) + "\n")
            sink.flush()
            recs.append(rec)
            print(f"  {name:8} {case:6} {progress(rec)}", flush=True)
            if not cl.alive():
                print(f"*** {name}: a process died during {case}", file=sys.stderr)
                for nd in cl.nodes:
                    print(nd.tail(), file=sys.stderr)
                break
    finally:
        cl.stop()
    return recs


def run_one(
    cl: SyncCluster, name: str, case: str, a: argparse.Namespace, rep: int
) -> dict[str, Any]:
    """One case on a running deployment: the run, the nodes' sync counters and Redis's
    CPU and command counts around it, the final state check."""
    n, store = VARIANTS[name]
    spec = case_spec(case, a)
    if store is None:
        spec["write"] = "publish-retain"
    quiet = wait_quiet(a.quiet_threshold, a.quiet_wait)
    tg = cl.targets()
    cfg = {
        "workload": "sync",
        "target": tg[0],
        "targets": tg,
        "realm": "realm1",
        "procs": a.procs,
        "warmup": a.warmup,
        "duration": a.duration,
        "setup_timeout": 30.0,
        "router_pids": [nd.pid for nd in cl.nodes if nd.pid],
        "aux_pids": cl.aux(),
        "settle": 0.3 if n else 0.0,
        "label": f"{name}:{case}",
        "serializer": "json",
        "spec": spec,
    }
    redis_reset(cl)
    c0, r0, s0 = cl.counters(), cl.redis.cpu_s() if cl.redis else None, redis_cmdstats(cl)
    spy = start_profile(cl, a, f"sync-{name}", case)  # --profile K: py-spy node K
    try:
        rec = run_case(cfg)
    finally:
        if spy is not None:
            finish_profile(*spy)
    c1 = cl.counters()
    if cl.redis and r0 is not None:
        rec["redis_info_cpu_s"] = round(cl.redis.cpu_s() - r0, 3)  # the whole case
        s1 = redis_cmdstats(cl)  # the whole case, too: calls and usec per command
        zero = (0, 0)
        rec["redis_latency_us"] = redis_latency(cl)  # the whole case
        rec["redis_cmds"] = {
            k: [c - s0.get(k, zero)[0], u - s0.get(k, zero)[1]]
            for k, (c, u) in s1.items()
            if c > s0.get(k, zero)[0]
        }
    rec.update(variant=name, nodes=n, store=store, case=case, repeat=rep)
    rec.update(idle_busy_before=quiet, wamp_router=getattr(a, "router_label", ""))
    if c0:
        rec["sync_counters"] = _delta(c0, c1)
        rec["sync_counters_per_node"] = [_delta([x], [y]) for x, y in zip(c0, c1, strict=False)]
    if rec.get("status") == "ok" and store is not None:
        uris = [f"{spec['topic_prefix']}{k}" for k in range(spec["records"])]
        rec["final_check"] = final_check(cl, uris, rec["check"]["acked_total"])
    _derive(rec)
    return rec


def _derive(rec: dict[str, Any]) -> None:
    """Per-write numbers (CAS retries, remote versions, Redis CPU); write errors per node,
    and whether the observers' missing writer sequences are exactly the failed writes."""
    if rec.get("status") != "ok":
        return
    chk = rec.get("check") or {}
    acked = chk.get("acked_total") or 0
    errs = chk.get("write_errors") or 0
    rec["write_errors"] = errs
    if errs:
        n, spec = max(1, rec.get("nodes") or 0), rec.get("params") or {}
        by_node = [0] * n
        for g, k in (chk.get("errors_by_writer") or {}).items():
            by_node[(int(spec.get("writer_node", 0)) + int(g)) % n] += k
        rec["write_errors_by_node"] = by_node
        per = int(spec.get("per_record") or spec.get("observers") or 0)
        missing = (chk.get("seq_missing") or 0) + (chk.get("seq_missing_at_end") or 0)
        rec["seq_missing_not_from_errors"] = missing - errs * per
    sc = rec.get("sync_counters") or {}
    if acked and sc:
        rec["cas_retries_per_write"] = round(sc.get("cas_retries", 0) / acked, 4)
        rec["remote_versions_per_write"] = round(sc.get("remote_versions", 0) / acked, 4)
        rec["resyncs"] = sc.get("resyncs", 0)
    cmds = rec.get("redis_cmds") or {}
    if acked and cmds:
        # EVALSHA = one compare-and-set (lost ones too); a read-back of a record by a node
        # is HGETALL record + XRANGE log + HGETALL checkpoints (the commit script uses no
        # HGETALL; it does XRANGE/XTRIM itself once the log is at history.max_versions)
        calls, usec = cmds.get("evalsha", [0, 0])
        rec["evalsha_per_write"] = round(calls / acked, 3)
        rec["evalsha_us"] = round(usec / calls, 1) if calls else None  # mean, all scripts
        lat = (rec.get("redis_latency_us") or {}).get("evalsha") or {}
        rec["evalsha_p999_us"] = lat.get("p99.9")
        rec["redis_slow_1ms"] = (rec.get("redis_latency_us") or {}).get("slowlog_1ms")
        rec["readbacks"] = cmds.get("hgetall", [0])[0] // 2
        rec["readbacks_per_write"] = round(rec["readbacks"] / acked, 4)
    red = (rec.get("aux_cpu") or {}).get("redis")
    count = (rec.get("throughput") or 0) * (rec.get("window_s") or 0)
    if red is not None and count:
        rec["redis_us_per_write"] = round(red * rec["window_s"] * 1e6 / count, 2)


def checks_ok(rec: dict[str, Any]) -> bool:
    wampbench_ok = (rec.get("check") or {}).get("ok", True)
    return bool(wampbench_ok and (rec.get("final_check") or {}).get("ok", True))


def checks_cell(ok: list[dict[str, Any]]) -> str:
    """What failed, over the runs: wampbench's checks by name, the final state check."""
    bad: dict[str, int] = {}
    for r in ok:
        for k in (r.get("check") or {}).get("problems") or {}:
            bad[k] = bad.get(k, 0) + 1
        if not (r.get("final_check") or {}).get("ok", True):
            bad["FINAL STATE"] = bad.get("FINAL STATE", 0) + 1
    counter = "" if any("final_check" in r for r in ok) else " (order only: no counter)"
    if not bad:
        return "ok" + counter
    cell = "**" + ", ".join(f"{k} in {n}" for k, n in sorted(bad.items())) + "**"
    if "write_errors" in bad and all(not r.get("seq_missing_not_from_errors") for r in ok):
        cell += " (seq gaps = the failed writes)"
    if "FINAL STATE" not in bad and counter == "":
        cell += "; counters = acked writes"
    return cell


def progress(rec: dict[str, Any]) -> str:
    if rec.get("status") != "ok":
        return f"{rec.get('status')}: {rec.get('reason', '')}"
    lat, dl = rec.get("latency") or {}, rec.get("delivery_latency") or {}
    ro = rec.get("router") or {}
    s = (
        f"{fmt(rec.get('throughput'))} writes/s p50/p99 {fmt(lat.get('p50_ms'), 2)}/"
        f"{fmt(lat.get('p99_ms'), 2)} ms  event p50/p99 {fmt(dl.get('p50_ms'), 2)}/"
        f"{fmt(dl.get('p99_ms'), 2)} ms  router {fmt(ro.get('cpu'), 2)} core "
        f"{fmt(ro.get('us_per_op'), 0)} µs/write  redis {fmt((rec.get('aux_cpu') or {}).get('redis'), 2)}"
        f"  client {fmt((rec.get('client') or {}).get('cpu'), 2)}  other {fmt(rec.get('other_busy'), 2)}"
    )
    if "cas_retries_per_write" in rec:
        s += f"  cas/write {rec['cas_retries_per_write']:.3f}"
    if "evalsha_per_write" in rec:
        s += (
            f"  evalsha/write {rec['evalsha_per_write']:.2f} (mean {fmt(rec['evalsha_us'], 0)} µs,"
            f" p99.9 {fmt(rec['evalsha_p999_us'], 0)} µs) read-backs {rec['readbacks']},"
            f" Redis cmds >= 1 ms {rec['redis_slow_1ms']}"
        )
    fc = rec.get("final_check")
    if fc:
        s += f"  counter {fc.get('counter_total')}/{fc.get('acked_total')} acked"
    if rec.get("write_errors"):
        s += f"  write errors {rec['write_errors']} by node {rec.get('write_errors_by_node')}"
    if not (rec.get("check") or {}).get("ok", True):
        s += f"\n*** DATA-SYNC CHECK FAILED: {rec['check']['problems']} {rec['check']['examples']}"
    if fc and not fc["ok"]:
        s += f"\n*** FINAL STATE CHECK FAILED: {fc['problems']}"
    return s


# =============================================================================== summary








COLS = [  # header, path, decimals
    ("writes/s", "throughput", 0),
    ("write p50 ms", "latency.p50_ms", 2),
    ("write p99 ms", "latency.p99_ms", 2),
    ("event p50 ms", "delivery_latency.p50_ms", 2),
    ("event p99 ms", "delivery_latency.p99_ms", 2),
    ("router CPU (sum)", "router.cpu", 2),
    ("router µs/write", "router.us_per_op", 0),
    ("Redis CPU", "aux_cpu.redis", 2),
    ("Redis µs/write", "redis_us_per_write", 0),
    ("CAS retries/write", "cas_retries_per_write", 3),
    ("write errors", "write_errors", 0),
    ("EVALSHA/write", "evalsha_per_write", 2),
    ("EVALSHA mean µs", "evalsha_us", 0),
    ("EVALSHA p99.9 µs", "evalsha_p999_us", 0),
    ("Redis cmds ≥ 1 ms", "redis_slow_1ms", 0),
    ("read-backs/write", "readbacks_per_write", 3),
    ("client CPU", "client.cpu", 2),
    ("other CPU", "other_busy", 2),
]


Groups = dict[tuple[str, str], list[dict[str, Any]]]  # (case, variant) -> records


def _medians(by: Groups) -> dict[tuple[str, str], dict[str, Any]]:
    med: dict[tuple[str, str], dict[str, Any]] = {}
    for key, rs in by.items():
        ok = [r for r in rs if r.get("status") == "ok"]
        m: dict[str, Any] = {p: median([dig(r, p) for r in ok]) for _, p, _ in COLS}
        m["n"], m["of"] = len(ok), len(rs)
        m["spread"] = spread([r.get("throughput") for r in ok])
        aux = (ok[0].get("aux_cpu") or {}) if ok else {}
        nodes = sorted(k for k in aux if k.startswith("node"))
        m["per_node"] = " / ".join(fmt(median([r["aux_cpu"].get(k) for r in ok]), 2) for k in nodes)
        m["remote"] = median([r.get("remote_versions_per_write") for r in ok])
        m["resyncs"] = sum(r.get("resyncs") or 0 for r in ok)
        m["why"] = "" if ok else f"{rs[0].get('status')}: {rs[0].get('reason', '')}"[:100]
        m["checks"] = checks_cell(ok)
        med[key] = m
    return med


def _ratio_rows(cases: list[str], variants: list[str], med: dict[Any, dict[str, Any]]) -> list[str]:
    def ratio(x: float | None, y: float | None) -> str:
        return f"{x / y:.2f}" if x and y else "–"

    rows = [
        "| case | variant | writes/s vs memory | vs sqlite | router µs/write vs memory | vs sqlite "
        "| (router + Redis) µs/write vs memory | vs sqlite |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c, v in ((c, v) for c in cases for v in variants if (c, v) in med):
        m, bases = med[(c, v)], [med.get((c, b)) or {} for b in BASES]
        us = m["router.us_per_op"]
        tot = us + (m["redis_us_per_write"] or 0) if us is not None and v != "crossbar" else None
        cells = [ratio(m["throughput"], b.get("throughput")) for b in bases]
        cells += [ratio(us, b.get("router.us_per_op")) for b in bases]
        cells += [ratio(tot, b.get("router.us_per_op")) for b in bases]
        rows.append(f"| {c} | {v} | " + " | ".join(cells) + " |")
    return rows


def _variant_rows(
    cases: list[str], variants: list[str], med: dict[Any, dict[str, Any]]
) -> list[str]:
    rows = [
        "| case | variant | runs ok | "
        + " | ".join(h for h, _, _ in COLS)
        + " | per node CPU | remote versions/write | resyncs | spread | checks |",
        "|---|---|---|" + "---|" * (len(COLS) + 5),
    ]
    for c, v in ((c, v) for c in cases for v in variants if (c, v) in med):
        m = med[(c, v)]
        if not m["n"]:
            rows.append(f"| {c} | {v} | 0/{m['of']} | {m['why']} |" + " |" * (len(COLS) + 4))
            continue
        rows.append(
            f"| {c} | {v} | {m['n']}/{m['of']} | "
            + " | ".join(fmt(m[p], nd) for _, p, nd in COLS)
            + f" | {m['per_node']} | {fmt(m['remote'], 2)} | {m['resyncs']:.0f} | {m['spread']}"
            f" | {m['checks']} |"
        )
    return rows


def _problem_rows(records: list[dict[str, Any]]) -> list[str]:
    rows: list[str] = []
    failed = [r for r in records if r.get("status") == "ok" and not checks_ok(r)]
    if failed:
        rows += ["", "## *** CHECK FAILURES (router bugs) ***", ""]
        for r in failed:
            c, fc = r.get("check") or {}, r.get("final_check") or {}
            rows.append(
                f"- {r['case']} {r['variant']} repeat {r['repeat']}: "
                f"{c.get('problems') or ''} {c.get('examples') or ''} {fc.get('problems') or ''}"
            )
    errs = [r for r in records if r.get("status") != "ok"]
    if errs:
        rows += ["", "## runs that did not complete", ""]
        rows += [
            f"- {r['case']} {r['variant']} repeat {r['repeat']}: {r.get('status')}: "
            f"{r.get('reason', '')[:200]}"
            for r in errs
        ]
    return rows


def summarize(records: list[dict[str, Any]], meta: str = "") -> str:
    cases = list(dict.fromkeys(r["case"] for r in records))
    variants = [v for v in VARIANTS if any(r["variant"] == v for r in records)]
    by: Groups = {}
    for r in records:
        by.setdefault((r["case"], r["variant"]), []).append(r)
    med = _medians(by)
    out = [
        f"# data-sync across cluster nodes — {time.strftime('%Y-%m-%d %H:%M')}",
        "",
        meta,
        "",
        "Medians over the repeats; ratios are of medians (writes/s: > 1 faster; router µs/write:"
        " < 1 cheaper, summed over the nodes). Spread = (max − min) / median of writes/s.",
        "",
        "## ratios",
        "",
        *_ratio_rows(cases, variants, med),
        "",
        "## per variant (medians)",
        "",
        *_variant_rows(cases, variants, med),
        *_problem_rows(records),
    ]
    return "\n".join(out) + "\n"


# =============================================================================== main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--variants", default=",".join(VARIANTS), help=", ".join(VARIANTS))
    p.add_argument("--cases", default="spread,hot")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--duration", type=float, default=3.0, help="measured seconds per run")
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--writers", type=int, default=8, help="spread: writers")
    p.add_argument("--records", type=int, default=64, help="spread: records (>= writers)")
    p.add_argument("--observers", type=int, default=8, help="spread: observers")
    p.add_argument("--per-record", type=int, default=4, help="spread: observers per record")
    p.add_argument("--hot-writers", type=int, default=8)
    p.add_argument("--hot-observers", type=int, default=4)
    p.add_argument("--procs", type=int, default=2, help="client processes")
    p.add_argument("--ours-cmd", default=None)
    p.add_argument(
        "--router-rev",
        default=None,
        metavar="REV",
        help="run the routers from a git archive of REV (e.g. HEAD) instead of the working tree",
    )
    p.add_argument("--crossbar-venv", default=str(DEFAULT_CROSSBAR_VENV))
    p.add_argument("--crossbar-version", default=DEFAULT_CROSSBAR_VERSION)
    p.add_argument(
        "--profile",
        type=int,
        default=None,
        metavar="K",
        help="py-spy node K during every case (a separate run: it costs CPU); "
        "bench/profiles/cluster-sync-<variant>-<case>-nodeK.txt",
    )
    p.add_argument("--py-spy", default=PY_SPY)
    p.add_argument("--quiet-threshold", type=float, default=0.5)
    p.add_argument("--quiet-wait", type=float, default=5.0)
    p.add_argument("--workdir", default=None)
    p.add_argument("--summarize", metavar="JSONL", default=None)
    a = p.parse_args(argv)
    a.variants = [v for v in a.variants.split(",") if v]
    a.cases = [c for c in a.cases.split(",") if c]
    bad = [v for v in a.variants if v not in VARIANTS] + [
        c for c in a.cases if c not in CASE_PREFIX
    ]
    if bad:
        p.error(f"unknown variant(s)/case(s) {bad}")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.summarize:
        recs = [json.loads(x) for x in Path(a.summarize).read_text().splitlines() if x.strip()]
        print(summarize(recs, f"(re-rendered from {a.summarize})"))
        return 0

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # unwinds through the finally blocks that stop processes

    signal.signal(signal.SIGTERM, on_term)
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    jsonl = RESULTS / f"sync-cluster-{stamp}.jsonl"
    workdir = Path(a.workdir) if a.workdir else Path(tempfile.mkdtemp(prefix="wamp-sync-cluster-"))
    print(f"workdir {workdir}\nresults {jsonl}", flush=True)
    router = "the working tree"
    if a.router_rev:
        a.ours_cmd, sha = snapshot_router(a.router_rev, workdir)
        router = f"git archive of {sha}"
        print(f"routers: {router} ({a.ours_cmd})", flush=True)
    a.router_label = router
    meta = (
        f"repeats {a.repeats}, {a.duration} s measured after {a.warmup} s warm-up, websocket/json, "
        f"x-inc writes by sync.patch, 1 in flight per writer; spread: {a.writers} writers on their "
        f"own records of {a.records}, {a.observers} observers, {a.per_record} per record; hot: "
        f"{a.hot_writers} writers on 1 record, {a.hot_observers} observers; client procs {a.procs}; "
        f"cores {os.cpu_count()}; wamp-router: {router}"
    )
    records: list[dict[str, Any]] = []
    t0 = time.monotonic()
    with open(jsonl, "w") as sink:
        for rep in range(a.repeats):
            order = a.variants if rep % 2 == 0 else list(reversed(a.variants))
            for v in order:
                print(f"repeat {rep + 1}/{a.repeats}: {v}", flush=True)
                records += run_variant(v, a, rep, workdir, sink)
    text = summarize(records, meta + f"; wall time {time.monotonic() - t0:.0f} s")
    md = jsonl.with_suffix(".md")
    md.write_text(text)
    print("\n" + text + f"\nrecords: {jsonl}\nsummary: {md}")
    failed = [r for r in records if r.get("status") == "ok" and not checks_ok(r)]
    if failed:
        print(
            f"\n*** {len(failed)} runs FAILED a consistency check (see above) ***", file=sys.stderr
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
