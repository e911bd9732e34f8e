#!/usr/bin/env python3
"""Data-sync writes against what users do without data-sync, interleaved.

    /work/bench-venv/bin/python bench/sync_compare.py --repeats 3

Variants (each a fresh router process per run, on free loopback ports):

* ours-memory        wamp-router, sync domain `bench.rec.` with store = "memory";
                     writes = CALL sync.patch(uri, ops)
* ours-sqlite        the same with store = "sqlite" (a fresh temp database per run)
* ours-publish       wamp-router without data-sync: PUBLISH {ops, cid} with acknowledge
                     to the same topics, the same observers (subscribed with get_retained)
* ours-retained      the same with retain: true (ours' event retention)
* crossbar-retained  Crossbar.io: PUBLISH with retain: true and acknowledge, observers
                     subscribed with get_retained
* ours-memory-pub / ours-sqlite-pub (not in the default set): data-sync written by
                     PUBLISH {ops} with acknowledge instead of the sync.patch CALL

Every case (writers x transport x serializer x op) runs once per variant per repeat,
the variant order reversed on every other repeat so that slow drifts of the machine hit
all variants alike. Before each run the driver waits (bounded) for the machine to be
quiet. Prints medians, the spread, the ratios and the consistency checks (observers
must see contiguous versions; a gap is a router bug and is printed loudly), and
writes bench/results/sync-compare-<stamp>.{jsonl,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from compare import check_bench_python, wait_quiet
from report import dig, fmt, median, spread
from routers import (
    DEFAULT_CROSSBAR_VENV,
    DEFAULT_CROSSBAR_VERSION,
    CrossbarRouter,
    OursRouter,
    Router,
    RouterStartError,
    ensure_crossbar,
    free_ports,
)

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PREFIX = "bench.rec."

# name -> (router, store or None, wampbench --write)
VARIANTS: dict[str, tuple[str, str | None, str]] = {
    "ours-memory": ("ours", "memory", "patch"),
    "ours-sqlite": ("ours", "sqlite", "patch"),
    "ours-publish": ("ours", None, "publish"),
    "ours-retained": ("ours", None, "publish-retain"),
    "crossbar-retained": ("crossbar", None, "publish-retain"),
    "ours-memory-pub": ("ours", "memory", "publish"),
    "ours-sqlite-pub": ("ours", "sqlite", "publish"),
}
DEFAULT_VARIANTS = "ours-memory,ours-sqlite,ours-publish,ours-retained,crossbar-retained"
# (numerator, denominator) of the ratio columns, when both were run
RATIOS = [
    ("ours-memory", "ours-publish"),
    ("ours-sqlite", "ours-publish"),
    ("ours-memory", "ours-retained"),
    ("ours-sqlite", "ours-retained"),
    ("ours-memory", "crossbar-retained"),
    ("ours-sqlite", "crossbar-retained"),
    ("ours-retained", "crossbar-retained"),
    ("ours-memory-pub", "ours-memory"),
    ("ours-sqlite-pub", "ours-sqlite"),
]

SYNC_TOML = """
[metrics]
endpoint = "127.0.0.1:{metrics}"

[realms.sync]
api_prefix = "sync."

[[realms.sync.domains]]
prefix = "{prefix}"
store = "{store}"
{database}"""


class OursSyncRouter(OursRouter):
    """wamp-router with a data-sync domain (`store` memory or sqlite; None: none) and
    a metrics listener (for the sync counters: writes per group commit)."""

    def __init__(
        self, name: str, workdir: Path, ws: int, raw: int, binary: str | None, store: str | None
    ) -> None:
        self.name = name
        super().__init__(workdir, ws, raw, binary)
        self.store = store
        self.metrics_port = free_ports(1)[0]
        self.db = workdir / f"{name}.sqlite3"
        self.version = "wamp-router (this repo)" + (f", sync store {store}" if store else "")

    def command(self) -> list[str]:
        cmd = super().command()  # writes ours.toml
        cfg = self.workdir / "ours.toml"
        text = cfg.read_text()
        if self.store:
            for suffix in ("", "-wal", "-shm"):  # a fresh database for every run
                Path(str(self.db) + suffix).unlink(missing_ok=True)
            database = f'database = "{self.db}"\n' if self.store == "sqlite" else ""
            text += SYNC_TOML.format(
                metrics=self.metrics_port, prefix=PREFIX, store=self.store, database=database
            )
        cfg.write_text(text)
        return cmd

    def sync_counters(self) -> dict[str, float]:
        return read_sync_counters(self.metrics_port) if self.store else {}

    def stop(self, timeout: float = 15.0) -> None:
        super().stop(timeout)
        for suffix in ("", "-wal", "-shm"):
            Path(str(self.db) + suffix).unlink(missing_ok=True)


def read_sync_counters(metrics_port: int) -> dict[str, float]:
    """The router's wamp_sync_*_total counters (summed over realms) from its /metrics;
    {} when the endpoint does not answer."""
    try:
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("wamp_sync_") and "_total" in line and "{" in line:
            name = line.split("{", 1)[0].removeprefix("wamp_sync_").removesuffix("_total")
            out[name] = out.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


_CROSSBAR: dict[str, str] = {}  # the installed version, looked up once


def make_router(a: argparse.Namespace, variant: str, workdir: Path) -> Router:
    kind, store, _ = VARIANTS[variant]
    ws, raw = free_ports(2)
    if kind == "ours":
        return OursSyncRouter(variant, workdir / variant, ws, raw, a.ours_cmd, store)
    if "crossbar" not in _CROSSBAR:
        _CROSSBAR["crossbar"] = ensure_crossbar(Path(a.crossbar_venv), a.crossbar_version)
    v = _CROSSBAR["crossbar"]
    r = CrossbarRouter(workdir / variant, ws, raw, Path(a.crossbar_venv), v)
    r.name = variant
    r.log = r.workdir / f"{variant}.log"
    return r


# =============================================================================== runs


def build_cases(a: argparse.Namespace) -> list[dict[str, Any]]:
    return [
        {"writers": w, "observers": o, "transport": tr, "serializer": ser, "op": op}
        for op in a.ops
        for w in a.writers
        for o in a.observers
        for tr in a.transports
        for ser in a.serializers
    ]


def case_key(c: dict[str, Any]) -> str:
    return (
        f"W={c['writers']} O={c['observers']} K={c.get('records', '')} {c['op']} "
        f"{c['transport']}/{c['serializer']}"
    )


def wampbench_argv(
    a: argparse.Namespace, r: Router, variant: str, case: dict[str, Any], out: Path
) -> list[str]:
    argv = [a.bench_python, str(HERE / "wampbench.py")]
    argv += ["--url", r.url] if case["transport"] == "websocket" else ["--rawsocket", r.rawsocket]
    argv += ["--workload", "sync", "--serializer", case["serializer"]]
    argv += ["--writers", str(case["writers"]), "--observers", str(case["observers"])]
    argv += ["--records", str(a.records), "--op", case["op"], "--write", VARIANTS[variant][2]]
    argv += ["--topic-prefix", PREFIX, "--payload", str(a.payload)]
    argv += ["--duration", str(a.duration), "--warmup", str(a.warmup)]
    if a.procs:
        argv += ["--procs", str(a.procs)]
    argv += ["--router-pid", str(r.pid), "--label", variant, "--out", str(out), "--quiet"]
    return argv


def run_one(
    a: argparse.Namespace, variant: str, case: dict[str, Any], rep: int, workdir: Path
) -> dict[str, Any]:
    base = {"variant": variant, "repeat": rep, "case": case_key(dict(case, records=a.records))}
    r = make_router(a, variant, workdir)
    try:
        r.start()
    except RouterStartError as e:
        print(f"\n*** {variant} did not start: {e}\n", file=sys.stderr)
        return {**base, "status": "error", "reason": f"router did not start: {e}"[:300]}
    tmp = RESULTS / f"sync-current-{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    try:
        quiet = wait_quiet(a.quiet_threshold, a.quiet_wait)
        timeout = a.duration + a.warmup + 120
        try:
            subprocess.run(wampbench_argv(a, r, variant, case, tmp), timeout=timeout, check=False)
            rec = json.loads(tmp.read_text().splitlines()[-1])
        except subprocess.TimeoutExpired:
            rec = {"status": "error", "reason": f"wampbench timed out after {timeout:.0f} s"}
        except (OSError, IndexError, ValueError) as e:
            rec = {"status": "error", "reason": f"no result from wampbench: {e}"}
        if isinstance(r, OursSyncRouter):
            counters = r.sync_counters()
            if counters.get("commits"):
                rec["sync_counters"] = counters
                rec["writes_per_commit"] = round(counters["writes"] / counters["commits"], 2)
        rec["router_version"] = r.version
        rec["idle_busy_before"] = quiet
    finally:
        r.stop()
        tmp.unlink(missing_ok=True)
    rec.update(base)
    return rec


def progress(rec: dict[str, Any]) -> str:
    if rec.get("status") != "ok":
        return f"{rec.get('status')}: {rec.get('reason', '')}"
    lat, dl = rec.get("latency") or {}, rec.get("delivery_latency") or {}
    ro, chk = rec.get("router") or {}, rec.get("check") or {}
    s = (
        f"{fmt(rec.get('throughput'))} writes/s p50/p99 {fmt(lat.get('p50_ms'), 2)}/"
        f"{fmt(lat.get('p99_ms'), 2)} ms  {fmt(rec.get('deliveries_per_s'))} deliv/s "
        f"p50/p99 {fmt(dl.get('p50_ms'), 2)}/{fmt(dl.get('p99_ms'), 2)} ms  router "
        f"{fmt(ro.get('cpu'), 2)} core {fmt(ro.get('us_per_op'), 0)} µs/write  client "
        f"{fmt((rec.get('client') or {}).get('cpu'), 2)}  other {fmt(rec.get('other_busy'), 2)}"
    )
    if rec.get("writes_per_commit"):
        s += f"  {rec['writes_per_commit']} writes/commit"
    if not chk.get("ok", True):
        s += f"\n*** CHECK FAILED: {chk.get('problems')} {chk.get('examples')}"
    return s


# =============================================================================== summary








COLS = [
    ("writes/s", "throughput", 0),
    ("write p50 ms", "latency.p50_ms", 2),
    ("write p99 ms", "latency.p99_ms", 2),
    ("deliveries/s", "deliveries_per_s", 0),
    ("delivery p50 ms", "delivery_latency.p50_ms", 2),
    ("delivery p99 ms", "delivery_latency.p99_ms", 2),
    ("router CPU", "router.cpu", 2),
    ("router µs/write", "router.us_per_op", 0),
    ("client CPU", "client.cpu", 2),
    ("other CPU", "other_busy", 2),
    ("writes/commit", "writes_per_commit", 1),
]


def _medians(records: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(case, variant) -> medians of the COLS, spread, failed checks."""
    by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:
        by.setdefault((r["case"], r["variant"]), []).append(r)
    med: dict[tuple[str, str], dict[str, Any]] = {}
    for key, rs in by.items():
        ok = [r for r in rs if r.get("status") == "ok"]
        m: dict[str, Any] = {"n": len(ok), "of": len(rs)}
        for _, path, _ in COLS:
            m[path] = median([dig(r, path) for r in ok])
        m["spread"] = spread([r.get("throughput") for r in ok])
        m["failed_checks"] = sum(1 for r in ok if not (r.get("check") or {}).get("ok", True))
        m["gaps"] = sum((r.get("check") or {}).get("gaps", 0) for r in ok)
        if not ok and rs:
            m["why"] = f"{rs[0].get('status')}: {rs[0].get('reason', '')}"[:100]
        med[key] = m
    return med


def _checks_cell(m: dict[str, Any]) -> str:
    if not m["n"]:
        return str(m.get("why", "no run"))
    cell = "ok" if not m["failed_checks"] else f"**FAILED in {m['failed_checks']} runs**"
    if m["gaps"]:
        cell += f" (**{m['gaps']} version gaps**)"
    return cell


def ratio_table(
    cases: list[str], variants: list[str], med: dict[Any, dict[str, Any]], path: str = "throughput"
) -> str:
    ratios = [(x, y) for x, y in RATIOS if x in variants and y in variants]
    lines = [
        "| case | " + " | ".join(f"{x} / {y}" for x, y in ratios) + " |",
        "|---|" + "---|" * len(ratios),
    ]
    for c in cases:
        cells = []
        for x, y in ratios:
            nx = (med.get((c, x)) or {}).get(path)
            ny = (med.get((c, y)) or {}).get(path)
            cells.append(f"{nx / ny:.2f}" if nx and ny else "–")
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def variant_table(cases: list[str], variants: list[str], med: dict[Any, dict[str, Any]]) -> str:
    lines = [
        "| case | variant | runs ok | "
        + " | ".join(h for h, _, _ in COLS)
        + " | spread | checks |",
        "|---|---|---|" + "---|" * (len(COLS) + 2),
    ]
    for c in cases:
        for v in variants:
            m = med.get((c, v))
            if m is not None:
                cells = " | ".join(fmt(m[path], nd) for _, path, nd in COLS)
                lines.append(
                    f"| {c} | {v} | {m['n']}/{m['of']} | {cells} | {m['spread']} "
                    f"| {_checks_cell(m)} |"
                )
    return "\n".join(lines)


def summarize(a: argparse.Namespace, records: list[dict[str, Any]]) -> str:
    cases = list(dict.fromkeys(r["case"] for r in records))
    variants = list(dict.fromkeys(r["variant"] for r in records))
    med = _medians(records)
    versions = {r["variant"]: r.get("router_version", "") for r in records}
    out = [
        f"# data-sync vs plain / retained publish — {time.strftime('%Y-%m-%d %H:%M')}",
        "",
        f"repeats: {a.repeats}, {a.duration} s measured after {a.warmup} s warm-up; "
        f"{a.records} records, op payload {a.payload}; cores: {os.cpu_count()}; "
        + "; ".join(f"{k} = {v}" for k, v in versions.items()),
        "",
        "Medians over the repeats. Ratios are of the writes/s medians (> 1: the first is"
        " faster). Spread = (max − min) / median of writes/s. Checks: observers saw every"
        " version in order, none missing at the end (a gap is a router bug).",
        "",
        "## ratios (writes/s)",
        "",
        ratio_table(cases, variants, med),
        "",
        "## ratios of router CPU per write (µs/write; < 1: the first costs less)",
        "",
        ratio_table(cases, variants, med, "router.us_per_op"),
        "",
        "## per variant (medians)",
        "",
        variant_table(cases, variants, med),
    ]
    failed = [r for r in records if r.get("status") == "ok" and not r["check"].get("ok", True)]
    if failed:
        out += ["", "## *** CHECK FAILURES (router bugs) ***", ""]
        out += [
            f"- {r['case']} {r['variant']} repeat {r['repeat']}: {r['check']['problems']}; "
            f"examples {r['check']['examples']}"
            for r in failed
        ]
    return "\n".join(out) + "\n"


# =============================================================================== main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--duration", type=float, default=3.0, help="measured seconds per run")
    p.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per run")
    p.add_argument("--variants", default=DEFAULT_VARIANTS, help=", ".join(VARIANTS))
    p.add_argument("--writers", default="1,10")
    p.add_argument("--observers", default="10")
    p.add_argument("--records", type=int, default=100)
    p.add_argument("--ops", default="inc", help="inc,replace")
    p.add_argument("--payload", type=int, default=32, help="replace: string length")
    p.add_argument("--transports", default="websocket", help="websocket,rawsocket")
    p.add_argument("--serializers", default="json")
    p.add_argument("--procs", type=int, default=0, help="client processes (0 = auto)")
    p.add_argument("--ours-cmd", default=None)
    p.add_argument("--crossbar-venv", default=str(DEFAULT_CROSSBAR_VENV))
    p.add_argument("--crossbar-version", default=DEFAULT_CROSSBAR_VERSION)
    p.add_argument("--bench-python", default=sys.executable)
    p.add_argument("--quiet-threshold", type=float, default=0.5)
    p.add_argument("--quiet-wait", type=float, default=10.0)
    p.add_argument("--workdir", default=None)
    p.add_argument("--summarize", metavar="JSONL", default=None)
    a = p.parse_args(argv)
    for k in ("variants", "writers", "observers", "ops", "transports", "serializers"):
        setattr(a, k, [x.strip() for x in getattr(a, k).split(",") if x.strip()])
    a.writers = [int(x) for x in a.writers]
    a.observers = [int(x) for x in a.observers]
    bad = [v for v in a.variants if v not in VARIANTS]
    if bad:
        p.error(f"unknown variant(s) {bad}; known: {', '.join(VARIANTS)}")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.summarize:
        recs = [json.loads(x) for x in Path(a.summarize).read_text().splitlines() if x.strip()]
        a.repeats = 1 + max((r.get("repeat", 0) for r in recs), default=0)
        ok = [r for r in recs if "duration_s" in r]
        if ok:
            a.duration, a.warmup = ok[0]["duration_s"], ok[0]["warmup_s"]
            a.records, a.payload = ok[0]["params"]["records"], ok[0]["params"]["payload"]
        print(summarize(a, recs))
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    check_bench_python(a.bench_python)
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    workdir = Path(a.workdir) if a.workdir else Path(tempfile.mkdtemp(prefix="wamp-sync-"))
    cases = build_cases(a)
    print(
        f"{len(cases)} cases x {len(a.variants)} variants x {a.repeats} repeats; logs in {workdir}",
        flush=True,
    )
    records: list[dict[str, Any]] = []
    jsonl = RESULTS / f"sync-compare-{stamp}.jsonl"
    with open(jsonl, "w") as sink:
        for rep in range(a.repeats):
            order = a.variants if rep % 2 == 0 else list(reversed(a.variants))
            for i, case in enumerate(cases):
                for v in order:
                    rec = run_one(a, v, case, rep, workdir)
                    records.append(rec)
                    sink.write(json.dumps(rec) + "\n")
                    sink.flush()
                    print(
                        f"[rep {rep + 1}/{a.repeats} case {i + 1}/{len(cases)}] {v:17s} "
                        f"{rec['case']:36s} {progress(rec)}",
                        flush=True,
                    )
    text = summarize(a, records)
    md = RESULTS / f"sync-compare-{stamp}.md"
    md.write_text(text)
    print("\n" + text)
    print(f"records: {jsonl}\nsummary: {md}")
    failed = [r for r in records if r.get("status") == "ok" and not r["check"].get("ok", True)]
    if failed:
        print(
            f"\n*** {len(failed)} runs FAILED the data-sync checks (see above) ***", file=sys.stderr
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
