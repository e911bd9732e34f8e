#!/usr/bin/env python3
"""Cluster benchmark: one realm on N router processes sharing a Redis backplane.

For each variant -- `plain` (one router, no [cluster]) and `c1`, `c2`, `c4` (1, 2, 4
router processes with `[cluster] backplane = "redis://..."`) -- a fresh redis-server
(free port, no persistence) and N fresh `wamp-router --config` processes are started,
**each node on its own free ports** (not `--workers`: with SO_REUSEPORT the kernel picks
the node of a connection, and the same-node / cross-node cases need to choose it). The
load generator (wampbench's runner) places its sessions on the nodes round robin
(`targets` + the `*_node` offsets of bench/workloads.py):

* fanout  -- 1 publisher on node 0, 100 subscribers dealt over the nodes (so with 2 nodes
             half of them are remote), W publications in flight; events/s, publish->event
             latency (`delivery_latency`).
* rpc     -- 10 callers dealt over the nodes, N callees (one per node, invoke=roundrobin),
             so calls cross nodes; calls/s, round trip.
* call-same / call-cross -- 1 caller, 1 callee (node 0), the caller on node 0 / node 1:
             sequential calls, the unloaded round trip.
* event-same / event-cross -- 1 publisher (node 0), 1 subscriber on node 0 / node 1, one
             publication in flight: the unloaded publish->event latency.

Variants are interleaved (order reversed on every other repeat); every process started
here is stopped (also on errors / Ctrl-C). Router CPU is summed over the nodes; each
node's CPU and Redis's CPU (utime+stime from /proc, the same counters as Redis's
`INFO cpu`) are sampled over the measured window too (`aux_cpu`).

    /work/bench-venv/bin/python bench/cluster_bench.py --repeats 3 --duration 3
    /work/bench-venv/bin/python bench/cluster_bench.py --summarize bench/results/cluster-<stamp>.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from report import median, spread
from routers import OURS_TOML, OursRouter, RouterStartError, free_ports
from runner import run_case

HERE = Path(__file__).resolve().parent
VARIANTS = {"plain": 0, "c1": 1, "c2": 2, "c4": 4}  # 0 = no [cluster]


# --------------------------------------------------------------------------- redis


class Redis:
    def __init__(self, workdir: Path) -> None:
        self.port = free_ports(1)[0]
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.command("PING").startswith(b"+PONG"):
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def command(self, *args: str) -> bytes:
        payload = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(payload.encode())
            time.sleep(0.02)
            return s.recv(65536)

    def cpu_s(self) -> float:
        """used_cpu_sys + used_cpu_user from INFO cpu."""
        out = self.command("INFO", "cpu").decode(errors="replace")
        vals = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        return float(vals.get("used_cpu_sys", 0)) + float(vals.get("used_cpu_user", 0))

    def stop(self) -> None:
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        self.proc = None


# --------------------------------------------------------------------------- nodes


class ClusterNode(OursRouter):
    def __init__(
        self, workdir: Path, ws: int, raw: int, binary: str | None, backplane: str | None, idx: int
    ) -> None:
        super().__init__(workdir, ws, raw, binary)
        self.name = f"node{idx}"
        self.log = workdir / f"{self.name}.log"
        self.backplane = backplane

    def command(self) -> list[str]:
        if not self.binary:
            raise RouterStartError("wamp-router not found (looked on PATH, .venv, /work/venv)")
        cfg = self.workdir / f"{self.name}.toml"
        text = OURS_TOML.format(ws=self.ws_port, raw=self.raw_port)
        if self.backplane:
            text += f'\n[cluster]\nbackplane = "{self.backplane}"\nprefix = "wrbench:"\n'
        cfg.write_text(text)
        return [self.binary, "--config", str(cfg), "--log-level", "warn"]


class Cluster:
    def __init__(self, n: int, workdir: Path, binary: str | None) -> None:
        self.n = n
        self.workdir = workdir
        self.binary = binary
        self.redis: Redis | None = None
        self.nodes: list[ClusterNode] = []

    def start(self) -> None:
        try:
            backplane = None
            if self.n:
                self.redis = Redis(self.workdir / "redis")
                self.redis.start()
                backplane = f"redis://127.0.0.1:{self.redis.port}/0"
            for i in range(max(1, self.n)):
                ws, raw = free_ports(2)
                node = self.make_node(ws, raw, backplane, i)
                self.nodes.append(node)  # stopped by stop() even if its start fails
                node.start()
            time.sleep(1.0 if self.n > 1 else 0.2)  # nodes see each other (heartbeat 1 s)
        except BaseException:
            self.stop()
            raise

    def make_node(self, ws: int, raw: int, backplane: str | None, i: int) -> ClusterNode:
        """Node i of this cluster (subclasses change its config, e.g. sync_cluster_bench)."""
        return ClusterNode(self.workdir, ws, raw, self.binary, backplane, i)

    def stop(self) -> None:
        for node in self.nodes:
            try:
                node.stop()
            except Exception as e:  # keep stopping the others
                print(f"stopping {node.name}: {e}", file=sys.stderr)
        self.nodes = []
        if self.redis:
            self.redis.stop()
            self.redis = None

    def alive(self) -> bool:
        return all(n.proc and n.proc.poll() is None for n in self.nodes) and (
            self.redis is None or (self.redis.proc is not None and self.redis.proc.poll() is None)
        )

    def targets(self) -> list[dict[str, Any]]:
        return [
            {"kind": "ws", "host": "127.0.0.1", "port": n.ws_port, "path": "/ws"}
            for n in self.nodes
        ]

    def aux(self) -> dict[str, list[int]]:
        a = {n.name: [n.pid] for n in self.nodes if n.pid}
        if self.redis and self.redis.proc:
            a["redis"] = [self.redis.proc.pid]
        return a


# --------------------------------------------------------------------------- cases


def cases(n: int, a: argparse.Namespace) -> list[tuple[str, str, dict[str, Any]]]:
    """(case name, workload, spec) for a variant with n nodes (0 = plain)."""
    nodes = max(1, n)
    out: list[tuple[str, str, dict[str, Any]]] = []
    if "fanout" in a.cases:
        out.append(
            ("fanout", "fanout", {"subscribers": a.subscribers, "window": a.window, "payload": 64})
        )
    if "rpc" in a.cases:
        out.append(
            ("rpc", "rpc", {"callers": a.callers, "inflight": 1, "shared": nodes, "payload": 32})
        )
    if "call" in a.cases:
        out.append(
            (
                "call-same",
                "rpc",
                {"callers": 1, "inflight": 1, "shared": 1, "payload": 32, "caller_node": 0},
            )
        )
        if nodes > 1:
            out.append(
                (
                    "call-cross",
                    "rpc",
                    {"callers": 1, "inflight": 1, "shared": 1, "payload": 32, "caller_node": 1},
                )
            )
    if "event" in a.cases:
        out.append(
            (
                "event-same",
                "fanout",
                {"subscribers": 1, "window": 1, "payload": 64, "subscriber_node": 0},
            )
        )
        if nodes > 1:
            out.append(
                (
                    "event-cross",
                    "fanout",
                    {"subscribers": 1, "window": 1, "payload": 64, "subscriber_node": 1},
                )
            )
    return out


def run_variant(
    name: str, n: int, a: argparse.Namespace, rep: int, workdir: Path, out: Path
) -> None:
    cl = Cluster(n, workdir / f"{name}-r{rep}", a.ours_cmd)
    try:
        cl.start()
    except (RouterStartError, RuntimeError) as e:
        print(f"*** {name} did not start: {e}", file=sys.stderr)
        return
    try:
        for cname, wl, spec in cases(n, a):
            spec = dict(spec, zero_mask=False)
            tg = cl.targets()
            cfg = {
                "workload": wl,
                "target": tg[0],
                "targets": tg if n else [],
                "realm": "realm1",
                "procs": 0,
                "warmup": a.warmup,
                "duration": a.duration,
                "setup_timeout": 30.0,
                "router_pids": [nd.pid for nd in cl.nodes if nd.pid],
                "aux_pids": cl.aux(),
                "settle": 0.3 if n else 0.0,
                "label": f"{name}:{cname}",
                "serializer": a.serializer,
                "spec": spec,
            }
            r0 = cl.redis.cpu_s() if cl.redis else None
            spy = start_profile(cl, a, name, cname)
            try:
                rec = run_case(cfg)
            finally:
                if spy is not None:
                    finish_profile(*spy)
            if cl.redis and r0 is not None:
                rec["redis_info_cpu_s"] = round(cl.redis.cpu_s() - r0, 3)  # whole case
            rec.update(variant=name, nodes=n, case=cname, repeat=rep)
            with open(out, "a") as f:
                f.write(json.dumps(rec) + "\n")
            lat = rec.get("delivery_latency") if wl == "fanout" else rec.get("latency")
            lat = lat or {}
            print(
                f"  {name:5} {cname:11} {rec['status']:5} {rec.get('throughput', 0):>10,.0f} "
                f"{rec.get('unit', '')} p50 {lat.get('p50_ms', 0):.2f} p99 {lat.get('p99_ms', 0):.2f}"
                f" ms  router {rec.get('router', {}).get('cpu', 0):.2f}"
                f" client {rec.get('client', {}).get('cpu', 0):.2f} aux {rec.get('aux_cpu')}"
                f" err {rec.get('errors')} {rec.get('reason', '')}",
                flush=True,
            )
            if not cl.alive():
                print(f"*** {name}: a process died during {cname}", file=sys.stderr)
                for nd in cl.nodes:
                    print(nd.tail(), file=sys.stderr)
                return
    finally:
        cl.stop()


# --------------------------------------------------------------------------- profiles

PY_SPY = "/work/bench-venv/bin/py-spy"


def start_profile(
    cl: Cluster, a: argparse.Namespace, variant: str, case: str
) -> tuple[subprocess.Popen[bytes], Path, str] | None:
    """--profile K: py-spy (raw collapsed stacks) on node K for the whole case."""
    if a.profile is None or a.profile >= len(cl.nodes) or not cl.nodes[a.profile].pid:
        return None
    node = cl.nodes[a.profile]
    raw = cl.workdir / f"spy-{variant}-{case}-{node.name}.raw"
    secs = int(a.warmup + a.duration + 3)
    proc = subprocess.Popen(
        [
            a.py_spy,
            "record",
            "-r",
            "200",
            "-d",
            str(secs),
            "--format",
            "raw",
            "--nonblocking",
            "-o",
            str(raw),
            "-p",
            str(node.pid),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    time.sleep(0.5)
    return proc, raw, f"{variant} {case} {node.name}"


def finish_profile(proc: subprocess.Popen[bytes], raw: Path, what: str) -> None:
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    if not raw.exists():
        print(f"  (py-spy wrote nothing for {what})", file=sys.stderr)
        return
    text = profile_summary(raw, what)
    out = HERE / "profiles" / f"cluster-{what.replace(' ', '-')}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"  profile: {out}")


def profile_summary(raw: Path, what: str, top: int = 25) -> str:
    """Self and inclusive time per frame from py-spy's collapsed stacks."""
    self_t: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        k = int(n)
        frames = [
            f
            for f in stack.split(";")
            if f and not f.startswith("process ") and not f.startswith("thread ")
        ]
        if not frames or "epoll" in frames[-1] or "doPoll" in frames[-1]:
            continue  # idle
        total += k
        self_t[frames[-1]] = self_t.get(frames[-1], 0) + k
        for f in set(frames):
            incl[f] = incl.get(f, 0) + k
    lines = [
        f"py-spy record -r 200 --format raw of {what} (bench/cluster_bench.py --profile),",
        f"whole case incl. setup; idle (epoll) samples removed; busy samples: {total}",
        "",
        "self time",
    ]
    for f, k in sorted(self_t.items(), key=lambda x: -x[1])[:top]:
        lines.append(f"{100 * k / max(1, total):5.1f}%  {f}")
    lines += ["", "inclusive time"]
    for f, k in sorted(incl.items(), key=lambda x: -x[1])[: top + 15]:
        lines.append(f"{100 * k / max(1, total):5.1f}%  {f}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- summary






def summarize(path: Path) -> str:
    recs = [json.loads(line) for line in open(path) if line.strip()]
    by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in recs:
        by.setdefault((r["case"], r["variant"]), []).append(r)
    lines = [
        "| case | variant | n ok | throughput (median) | vs plain | spread | p50 ms | "
        "p99 ms | router CPU (sum) | router µs/op | per node CPU | redis CPU | client CPU | other CPU |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    case_order = ["fanout", "rpc", "call-same", "call-cross", "event-same", "event-cross"]
    base: dict[str, float] = {}
    for case in case_order:
        for v in VARIANTS:
            rs = [r for r in by.get((case, v), []) if r["status"] == "ok"]
            if not rs:
                if by.get((case, v)):
                    lines.append(
                        f"| {case} | {v} | 0/{len(by[(case, v)])} | "
                        f"{by[(case, v)][0].get('reason', '')[:80]} |" + " |" * 10
                    )
                continue
            lk = "delivery_latency" if rs[0]["workload"] == "fanout" else "latency"
            tp = median([r["throughput"] for r in rs]) or 0.0
            if v == "plain":
                base[case] = tp
            ratio = f"{tp / base[case]:.2f}" if base.get(case) else "-"
            p50 = median([r[lk]["p50_ms"] for r in rs])
            p99 = median([r[lk]["p99_ms"] for r in rs])
            rcpu = median([r["router"]["cpu"] for r in rs])
            nodes = sorted(k for k in rs[0].get("aux_cpu", {}) if k.startswith("node"))
            per = " / ".join(f"{median([r['aux_cpu'][k] for r in rs]):.2f}" for k in nodes)
            red = median([r.get("aux_cpu", {}).get("redis") for r in rs])
            lines.append(
                f"| {case} | {v} | {len(rs)}/{len(by[(case, v)])} | {tp:,.0f} {rs[0]['unit']} | "
                f"{ratio} | {spread([r['throughput'] for r in rs])} | {p50:.2f} | {p99:.2f} | "
                f"{rcpu:.2f} | {median([r['router'].get('us_per_op') for r in rs]):.1f} | {per} | {'-' if red is None else f'{red:.2f}'} | "
                f"{median([r['client']['cpu'] for r in rs]):.2f} | "
                f"{median([r.get('other_busy') for r in rs]) or 0:.2f} |"
            )
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--variants", default="plain,c1,c2,c4")
    p.add_argument("--cases", default="fanout,rpc,call,event")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--duration", type=float, default=3.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--subscribers", type=int, default=100)
    p.add_argument("--window", type=int, default=32)
    p.add_argument("--callers", type=int, default=10)
    p.add_argument("--serializer", default="json")
    p.add_argument("--ours-cmd", default=None)
    p.add_argument("--workdir", default=None)
    p.add_argument(
        "--profile",
        type=int,
        default=None,
        metavar="K",
        help="py-spy node K during every case (separate run: it costs CPU)",
    )
    p.add_argument("--py-spy", default=PY_SPY)
    p.add_argument("--summarize", default=None, metavar="JSONL")
    a = p.parse_args()
    if a.summarize:
        print(summarize(Path(a.summarize)))
        return 0
    a.cases = a.cases.split(",")
    variants = [v for v in a.variants.split(",") if v]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = HERE / "results" / f"cluster-{stamp}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(a.workdir or tempfile.mkdtemp(prefix="wamp-cluster-bench-"))
    print(f"workdir {workdir}\nresults {out}", flush=True)

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    for rep in range(a.repeats):
        order = variants if rep % 2 == 0 else list(reversed(variants))
        for v in order:
            print(f"repeat {rep + 1}/{a.repeats}: {v}", flush=True)
            run_variant(v, VARIANTS[v], a, rep, workdir, out)
    md = summarize(out)
    print(md)
    out.with_suffix(".md").write_text(md + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
