#!/usr/bin/env python3
"""Side-by-side comparison: our router (wamp-router) against Crossbar.io.

    /work/bench-venv/bin/python bench/compare.py --repeats 3 --quick

* installs Crossbar.io from PyPI into its own venv (~/.cache/wamp-router-bench/
  crossbar-venv, reused when present);
* writes an equivalent node config for each router (realm1, anonymous role allowed
  everything, WebSocket /ws with json+msgpack+cbor and a RawSocket listener, free
  loopback ports) and starts each router as a subprocess (fresh for every repeat,
  and again before every `connect` case so RSS numbers start from a clean process);
* runs every case against both routers interleaved (A B, then B A next repeat, ...),
  each case as one `wampbench.py` run;
* prints, per case, the median of each router, the ratio ours/crossbar and the
  spread, and writes everything to bench/results/compare-<stamp>.{jsonl,md}.

If `wamp-router` does not start, "ours" is skipped with a message and Crossbar is
measured alone. See bench/README.md for how to read the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from metrics import host_busy
from report import case_key, dig, fmt, median, spread
from routers import (
    DEFAULT_CROSSBAR_VENV,
    DEFAULT_CROSSBAR_VERSION,
    CeilingServer,
    CrossbarRouter,
    OursRouter,
    Router,
    RouterStartError,
    ensure_crossbar,
    free_ports,
)

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


# =============================================================================== the suite


def build_suite(a: argparse.Namespace) -> list[dict[str, Any]]:
    """Cases as wampbench argument dicts. Steady-state cases first, connect last."""
    rpc = [{"callers": 1}, {"callers": 10}, {"callers": 50}, {"callers": 10, "shared": 2}]
    fan = [
        {"subscribers": 1, "window": 32},
        {"subscribers": 10, "window": 32},
        {"subscribers": 100, "window": 32},
        {"subscribers": 1000, "window": 4},
        {"subscribers": 10, "window": 1},  # unloaded: one publication in flight
    ]
    if not a.quick:
        rpc.append({"callers": 50, "shared": 2})
        fan += [{"subscribers": 1000, "window": 1}]
    con = [{"sessions": 1000}, {"sessions": 5000}]
    groups = {"rpc": rpc, "fanout": fan, "connect": con}
    cases = []
    for wl in a.workloads:
        for params in groups[wl]:
            for tr in a.transports:
                for ser in a.serializers:
                    cases.append({"workload": wl, "transport": tr, "serializer": ser, **params})
    return sorted(cases, key=lambda c: c["workload"] == "connect")


def wampbench_argv(a: argparse.Namespace, r: Router, case: dict[str, Any], out: Path) -> list[str]:
    argv = [a.bench_python, str(HERE / "wampbench.py")]
    argv += ["--url", r.url] if case["transport"] == "websocket" else ["--rawsocket", r.rawsocket]
    argv += ["--workload", case["workload"], "--serializer", case["serializer"]]
    for k in ("callers", "shared", "subscribers", "window", "sessions", "inflight"):
        if k in case:
            argv += [f"--{k}", str(case[k])]
    if case["workload"] != "connect":
        argv += ["--duration", str(a.duration), "--warmup", str(a.warmup)]
    argv += ["--router-pid", str(r.pid), "--label", r.name, "--out", str(out), "--quiet"]
    return argv


# =============================================================================== running


def wait_quiet(threshold: float, max_wait: float) -> float:
    """Wait (bounded) until other processes use < threshold cores; return the last reading."""
    deadline = time.monotonic() + max_wait
    while True:
        b0, _ = host_busy()
        time.sleep(0.5)
        b1, _ = host_busy()
        busy = (b1 - b0) / 0.5
        if busy < threshold or time.monotonic() > deadline:
            return round(busy, 2)
        time.sleep(1.0)


def run_one(a: argparse.Namespace, r: Router, case: dict[str, Any], rep: int) -> dict[str, Any]:
    tmp = RESULTS / f"current-{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    quiet = wait_quiet(a.quiet_threshold, a.quiet_wait)
    timeout = a.duration + a.warmup + 240
    base = {
        "router_name": r.name,
        "router_version": r.version,
        "repeat": rep,
        "idle_busy_before": quiet,
    }
    try:
        subprocess.run(wampbench_argv(a, r, case, tmp), timeout=timeout, check=False)
        rec = json.loads(tmp.read_text().splitlines()[-1])
    except subprocess.TimeoutExpired:
        rec = {"status": "error", "reason": f"wampbench timed out after {timeout:.0f} s"}
    except (OSError, IndexError, ValueError) as e:
        rec = {"status": "error", "reason": f"no result from wampbench: {e}"}
    tmp.unlink(missing_ok=True)
    rec.update(base)
    rec.setdefault("workload", case["workload"])
    rec.setdefault("transport", case["transport"])
    rec.setdefault("serializer", case["serializer"])
    rec.setdefault(
        "params",
        {k: v for k, v in case.items() if k not in ("workload", "transport", "serializer")},
    )
    return rec


START_FAILURES: dict[str, str] = {}


def start_router(r: Router) -> bool:
    try:
        r.start()
        return True
    except RouterStartError as e:
        START_FAILURES[r.name] = str(e).splitlines()[0]
        print(f"\n*** {r.name} did not start: {e}\n*** skipping '{r.name}'.\n", file=sys.stderr)
        return False


def restart(routers: list[Router]) -> list[Router]:
    for r in routers:
        r.stop()
    return [r for r in routers if start_router(r)]


def progress(rec: dict[str, Any]) -> str:
    if rec.get("status") != "ok":
        return f"{rec['status']}: {rec.get('reason', '')}"
    lat = rec.get("latency") or {}
    ro = rec.get("router") or {}
    s = (
        f"{fmt(rec.get('throughput'))} {rec.get('unit', '')}  p50 {fmt(lat.get('p50_ms'), 2)} ms"
        f"  p99 {fmt(lat.get('p99_ms'), 2)} ms  router {fmt(ro.get('cpu'), 2)} core"
        f"  client {fmt((rec.get('client') or {}).get('cpu'), 2)}  other {fmt(rec.get('other_busy'), 2)}"
    )
    if rec.get("rss"):
        s += f"  {rec['rss']['per_session_kb']} KB/session"
    return s


def run_repeat(
    a: argparse.Namespace, routers: list[Router], cases: list[dict[str, Any]], rep: int, sink: Any
) -> list[dict[str, Any]]:
    recs = []
    live = restart(routers)
    order = live if rep % 2 == 0 else list(reversed(live))
    for i, case in enumerate(cases):
        if case["workload"] == "connect" and not a.no_restart:
            live = restart(routers)
            order = live if rep % 2 == 0 else list(reversed(live))
        for r in order:
            if r.proc is None or r.proc.poll() is not None:
                print(f"  {r.name} is not running; restarting", file=sys.stderr)
                if not start_router(r):
                    continue
            rec = run_one(a, r, case, rep)
            recs.append(rec)
            sink.write(json.dumps(rec) + "\n")
            sink.flush()
            print(
                f"[rep {rep + 1}/{a.repeats} case {i + 1}/{len(cases)}] {r.name:8s} {case_key(rec):42s} "
                f"{progress(rec)}",
                flush=True,
            )
    for r in routers:
        r.stop()
    return recs


# =============================================================================== ceiling


def ceiling_python(a: argparse.Namespace) -> str:
    for py in (
        a.ceiling_python,
        "/work/venv/bin/python",
        str(Path(a.crossbar_venv) / "bin" / "python"),
    ):
        if (
            py
            and subprocess.run(
                [py, "-c", "import autobahn.twisted, twisted"], capture_output=True
            ).returncode
            == 0
        ):
            return py
    raise RouterStartError("no python with twisted+autobahn for bench/ceiling.py")


def run_ceiling(a: argparse.Namespace, workdir: Path, sink: Any) -> list[dict[str, Any]]:
    ws, raw = free_ports(2)
    srv = CeilingServer(workdir / "ceiling", ws, raw, ceiling_python(a))
    recs: list[dict[str, Any]] = []
    try:
        for rep in range(a.repeats):
            if not start_router(srv):
                return recs
            recs += ceiling_repeat(a, srv, rep, sink)
            srv.stop()
    finally:
        srv.stop()
    return recs


def ceiling_repeat(a: argparse.Namespace, srv: Router, rep: int, sink: Any) -> list[dict[str, Any]]:
    recs = []
    for tr in a.transports:
        for m in (1, 10, 50):
            case = {"workload": "echo", "transport": tr, "serializer": "json", "callers": m}
            rec = run_one(a, srv, case, rep)
            recs.append(rec)
            sink.write(json.dumps(rec) + "\n")
            print(f"[ceiling rep {rep + 1}] {case_key(rec):42s} {progress(rec)}", flush=True)
    return recs


# =============================================================================== summary








def _stats(recs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in recs if r.get("status") == "ok"]
    out: dict[str, Any] = {"n": len(ok), "of": len(recs)}
    for key, path in [
        ("thr", "throughput"),
        ("p50", "latency.p50_ms"),
        ("p99", "latency.p99_ms"),
        ("cpu", "router.cpu"),
        ("us", "router.us_per_op"),
        ("ccpu", "client.cpu"),
        ("kbs", "rss.per_session_kb"),
        ("closed", "rss.closed_kb"),
        ("hwm", "rss.hwm_kb"),
        ("other", "other_busy"),
    ]:
        vals = [dig(r, path) for r in ok]
        out[key] = median(vals)
        out[key + "_all"] = vals
    if not ok and recs:
        out["why"] = f"{recs[0].get('status')}: {recs[0].get('reason', '')}"
    return out


def _ratio(ours: Any, cb: Any, nd: int = 2) -> str:
    if ours is None or cb in (None, 0):
        return "–"
    return f"{ours / cb:.{nd}f}"


def _pair(s: dict[str, dict[str, Any]], key: str, nd: int) -> str:
    cb, ours = s.get("crossbar", {}).get(key), s.get("ours", {}).get(key)
    return f"{fmt(cb, nd)} / {fmt(ours, nd)}"


def _unit(rs: list[dict[str, Any]]) -> str:
    for r in rs:
        if r.get("unit"):
            return r["unit"]
    return ""


def summary_table(records: list[dict[str, Any]], workload: str, ceiling: dict[str, float]) -> str:
    keys: list[str] = []
    by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:
        if r["workload"] != workload:
            continue
        k = case_key(r)
        if k not in keys:
            keys.append(k)
        by.setdefault((k, r["router_name"]), []).append(r)
    extra = (
        " | KB/session cb / ours | RSS after close MB cb / ours | peak RSS MB cb / ours"
        if workload == "connect"
        else ""
    )
    extra += " | % of ceiling cb / ours" if workload == "rpc" and ceiling else ""
    lines = [
        f"| case | unit | crossbar (median) | ours (median) | ours/crossbar | spread cb / ours "
        f"| p50 ms cb / ours | p99 ms cb / ours | router CPU cb / ours | router µs/op cb / ours "
        f"| client CPU cb / ours | other CPU cb / ours{extra} |",
        "|" + "---|" * (12 + extra.count("|")),
    ]
    for k in keys:
        s = {name: _stats(by.get((k, name), [])) for name in ("crossbar", "ours")}
        cb, ours = s["crossbar"], s["ours"]
        unit = _unit(by.get((k, "crossbar"), []) + by.get((k, "ours"), []))
        cell_cb = fmt(cb.get("thr")) if cb.get("n") else cb.get("why", "–")[:90]
        cell_ours = fmt(ours.get("thr")) if ours.get("n") else ours.get("why", "not run")[:90]
        row = [
            k,
            unit,
            cell_cb,
            cell_ours,
            _ratio(ours.get("thr"), cb.get("thr")),
            f"{spread(cb.get('thr_all', []))} / {spread(ours.get('thr_all', []))}",
            _pair(s, "p50", 2),
            _pair(s, "p99", 2),
            _pair(s, "cpu", 2),
            _pair(s, "us", 1),
            _pair(s, "ccpu", 2),
            _pair(s, "other", 2),
        ]
        if workload == "connect":
            row.append(_pair(s, "kbs", 1))
            row.append(f"{_mb(cb.get('closed'))} / {_mb(ours.get('closed'))}")
            row.append(f"{_mb(cb.get('hwm'))} / {_mb(ours.get('hwm'))}")
        if workload == "rpc" and ceiling:
            c = ceiling.get(k.split(" ")[1] + " " + k.split(" ")[-1].split("/")[0])
            row.append(f"{_pct(cb.get('thr'), c)} / {_pct(ours.get('thr'), c)}")
        lines.append("| " + " | ".join(str(x).replace("|", "/") for x in row) + " |")
    return "\n".join(lines)


def _mb(kb: float | None) -> str:
    return fmt(kb / 1024 if kb else None, 1)


def _pct(v: float | None, c: float | None) -> str:
    return f"{v / c * 100:.0f}%" if v and c else "–"


def ceiling_map(recs: list[dict[str, Any]]) -> dict[str, float]:
    """'M=10 websocket' -> RPC ceiling in calls/s (= echo msgs/s at M connections / 2)."""
    out: dict[str, list[float]] = {}
    for r in recs:
        if r.get("status") == "ok":
            out.setdefault(f"M={r['params']['callers']} {r['transport']}", []).append(
                r["throughput"] / 2
            )
    return {k: statistics.median(v) for k, v in out.items()}


def ceiling_table(recs: list[dict[str, Any]]) -> str:
    lines = [
        "| echo case | msgs/s (median) | spread | server CPU | server µs/msg | RPC ceiling calls/s (÷2) |",
        "|---|---|---|---|---|---|",
    ]
    keys: list[str] = []
    for r in recs:
        if case_key(r) not in keys:
            keys.append(case_key(r))
    for k in keys:
        st = _stats([r for r in recs if case_key(r) == k])
        lines.append(
            f"| {k} | {fmt(st['thr'])} | {spread(st['thr_all'])} | {fmt(st['cpu'], 2)} "
            f"| {fmt(st['us'], 1)} | {fmt(st['thr'] / 2 if st['thr'] else None)} |"
        )
    return "\n".join(lines)


def summarize(
    a: argparse.Namespace,
    records: list[dict[str, Any]],
    ceil: list[dict[str, Any]],
    versions: dict[str, str],
) -> str:
    out = [
        f"# wamp-router vs Crossbar.io — {time.strftime('%Y-%m-%d %H:%M')}",
        "",
        f"repeats: {a.repeats}, duration {a.duration} s after {a.warmup} s warm-up"
        f"{' (quick)' if a.quick else ''}; routers: "
        + ", ".join(f"{k} = {v}" for k, v in versions.items())
        + f"; cores: {os.cpu_count()}",
        "",
        "Cells are medians over the repeats; 'ours/crossbar' > 1 means ours is faster (throughput);"
        " for latency, CPU and RSS columns lower is better. Spread = (max − min) / median.",
    ]
    cm = ceiling_map(ceil)
    for wl in ("rpc", "fanout", "connect"):
        if any(r["workload"] == wl for r in records):
            out += ["", f"## {wl}", "", summary_table(records, wl, cm)]
    if ceil:
        out += [
            "",
            "## stack ceiling (bench/ceiling.py, bare Twisted echo)",
            "",
            ceiling_table(ceil),
        ]
    return "\n".join(out) + "\n"


# =============================================================================== main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--quick", action="store_true", help="2 s runs after 0.5 s warm-up, smaller suite"
    )
    p.add_argument(
        "--duration", type=float, default=None, help="measured seconds per run (8; quick 2)"
    )
    p.add_argument(
        "--warmup", type=float, default=None, help="warm-up seconds per run (2; quick 0.5)"
    )
    p.add_argument("--workloads", default="rpc,fanout,connect")
    p.add_argument("--serializers", default="json,msgpack")
    p.add_argument("--transports", default="websocket,rawsocket")
    p.add_argument("--routers", default="ours,crossbar", help="ours,crossbar (or one of them)")
    p.add_argument(
        "--ours-cmd", default=None, help="path of wamp-router (default: PATH, .venv, /work/venv)"
    )
    p.add_argument("--crossbar-venv", default=str(DEFAULT_CROSSBAR_VENV))
    p.add_argument("--crossbar-version", default=DEFAULT_CROSSBAR_VERSION)
    p.add_argument(
        "--bench-python", default=sys.executable, help="python with orjson/msgpack(/uvloop)"
    )
    p.add_argument(
        "--ceiling", action="store_true", help="also measure bench/ceiling.py echo servers"
    )
    p.add_argument("--ceiling-python", default=None, help="python with twisted+autobahn")
    p.add_argument(
        "--no-restart", action="store_true", help="do not restart routers before connect cases"
    )
    p.add_argument(
        "--quiet-threshold",
        type=float,
        default=0.5,
        help="wait before each run until other processes use fewer cores than this",
    )
    p.add_argument("--quiet-wait", type=float, default=10.0, help="max seconds to wait for quiet")
    p.add_argument(
        "--workdir", default=None, help="where router configs/logs go (default: a temp dir)"
    )
    p.add_argument(
        "--summarize",
        metavar="JSONL",
        default=None,
        help="only print the summary of an earlier run's records",
    )
    a = p.parse_args(argv)
    a.duration = a.duration if a.duration is not None else (2.0 if a.quick else 8.0)
    a.warmup = a.warmup if a.warmup is not None else (0.5 if a.quick else 2.0)
    for k in ("workloads", "serializers", "transports", "routers"):
        setattr(a, k, [x.strip() for x in getattr(a, k).split(",") if x.strip()])
    return a


def check_bench_python(py: str) -> None:
    r = subprocess.run([py, "-c", "import orjson, msgpack"], capture_output=True)
    if r.returncode:
        sys.exit(
            f"{py} lacks orjson/msgpack: create the harness venv first:\n"
            f"  python3 -m venv /work/bench-venv && /work/bench-venv/bin/pip install -r {HERE}/requirements.txt\n"
            f"  /work/bench-venv/bin/python bench/compare.py ..."
        )


def make_routers(a: argparse.Namespace, workdir: Path) -> tuple[list[Router], dict[str, str]]:
    routers: list[Router] = []
    versions: dict[str, str] = {}
    for name in a.routers:
        ws, raw = free_ports(2)
        if name == "ours":
            r: Router = OursRouter(workdir / "ours", ws, raw, a.ours_cmd)
        elif name == "crossbar":
            v = ensure_crossbar(Path(a.crossbar_venv), a.crossbar_version)
            r = CrossbarRouter(workdir / "crossbar", ws, raw, Path(a.crossbar_venv), v)
        else:
            sys.exit(f"unknown router {name!r}")
        if not start_router(r):
            versions[name] = f"NOT STARTED ({START_FAILURES.get(name, '')})"
            continue
        r.stop()
        routers.append(r)
        versions[name] = r.version
    return routers, versions


def resummarize(a: argparse.Namespace) -> int:
    recs = [json.loads(x) for x in Path(a.summarize).read_text().splitlines() if x.strip()]
    ceil = [r for r in recs if r.get("workload") == "echo"]
    runs = [r for r in recs if r.get("workload") != "echo"]
    versions = {r["router_name"]: r.get("router_version", "") for r in runs}
    a.repeats = 1 + max((r.get("repeat", 0) for r in recs), default=0)
    steady = [r for r in runs if r.get("workload") != "connect" and "duration_s" in r]
    if steady:
        a.duration, a.warmup = steady[0]["duration_s"], steady[0]["warmup_s"]
        a.quick = a.duration <= 2.0
    print(summarize(a, runs, ceil, versions))
    return 0


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.summarize:
        return resummarize(a)
    # SIGTERM -> SystemExit, so the `finally` below stops the routers we started
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    check_bench_python(a.bench_python)
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    import tempfile

    workdir = Path(a.workdir) if a.workdir else Path(tempfile.mkdtemp(prefix="wamp-compare-"))
    routers, versions = make_routers(a, workdir)
    if not routers:
        print("no router could be started; nothing to compare", file=sys.stderr)
        return 1
    cases = build_suite(a)
    print(
        f"{len(cases)} cases x {len(routers)} routers x {a.repeats} repeats; logs in {workdir}",
        flush=True,
    )
    records: list[dict[str, Any]] = []
    ceil: list[dict[str, Any]] = []
    jsonl = RESULTS / f"compare-{stamp}.jsonl"
    with open(jsonl, "w") as sink:
        try:
            if a.ceiling:
                ceil = run_ceiling(a, workdir, sink)
            for rep in range(a.repeats):
                records += run_repeat(a, routers, cases, rep, sink)
        finally:
            for r in routers:
                r.stop()
    text = summarize(a, records, ceil, versions)
    md = RESULTS / f"compare-{stamp}.md"
    md.write_text(text)
    print("\n" + text)
    print(f"records: {jsonl}\nsummary: {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
