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
* fanout-spread -- --publishers P (default 4) publishers dealt round robin over the nodes
             (c4: one per node; c2: two per node; plain/c1: all P on the one node), all
             publishing to the one topic of the 100 subscribers (dealt as in fanout), each
             with ceil(W/P) publications in flight (so about W in all, as in fanout). The
             offered load is the same in every variant, only the number of nodes changes.
             events/s and publish->event latency as for fanout; a publication must reach
             every subscriber (duplicates / out-of-order events are counted as errors, one
             not complete after 10 s fails the case).
* rpc     -- 10 callers dealt over the nodes, N callees (one per node, invoke=roundrobin),
             so calls cross nodes; calls/s, round trip.
* rpc-affine -- the same callers, one callee per node registering its node's own
             procedure; each caller calls the procedure of its own node, so no call
             crosses nodes (a partitioned workload, e.g. per tenant).
* call-same / call-cross -- 1 caller, 1 callee (node 0), the caller on node 0 / node 1:
             sequential calls, the unloaded round trip.
* event-same / event-cross -- 1 publisher (node 0), 1 subscriber on node 0 / node 1, one
             publication in flight: the unloaded publish->event latency.

Variants are interleaved (order reversed on every other repeat); every process started
here is stopped (also on errors / Ctrl-C). Router CPU is summed over the nodes; each
node's CPU and Redis's CPU (utime+stime from /proc, the same counters as Redis's
`INFO cpu`) are sampled over the measured window too (`aux_cpu`).

--cpu-quota Q (scaling on a small machine): every router process (plain included) runs in
its own cgroup v1 cpu group (/sys/fs/cgroup/cpu/wr-bench-<pid>-<variant>-r<rep>-<node>)
with cpu.cfs_period_us 10000 and cpu.cfs_quota_us Q*10000, so N nodes get N*Q cores however
many the host has; the groups are removed at the end (also on errors / Ctrl-C). The jsonl
records the quota and, per node, cpu.stat's nr_periods / nr_throttled / throttled_time over
the measured window (`cgroup`); the report gives throughput relative to c1 under the same
quota, per node CPU against the quota, throttling, client and Redis CPU. The default cases
are then fanout, fanout-spread, rpc and rpc-affine with --callers-per-node callers per node.

    /work/bench-venv/bin/python bench/cluster_bench.py --repeats 3 --duration 3
    /work/bench-venv/bin/python bench/cluster_bench.py --cpu-quota 0.2 --repeats 3 --duration 3
    /work/bench-venv/bin/python bench/cluster_bench.py --summarize bench/results/cluster-<stamp>.jsonl
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import runner
from compare import wait_quiet
from metrics import children_of
from report import median, spread
from routers import OURS_TOML, OursRouter, RouterStartError, free_ports
from runner import run_case

HERE = Path(__file__).resolve().parent
VARIANTS = {"plain": 0, "c1": 1, "c2": 2, "c4": 4}  # 0 = no [cluster]
QUOTA_CALLERS_PER_NODE = 8  # --cpu-quota default: enough to keep a throttled node busy
QUOTA_WINDOW = 64  # --cpu-quota default fanout window (best of 32/64/128/256 at c1-c4)
SPREAD_PUBLISHERS = 4  # fanout-spread: one per node at c4, the same load in every variant


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


# --------------------------------------------------------------------------- cgroups

CG_ROOT = Path("/sys/fs/cgroup/cpu")  # cgroup v1 cpu controller
CG_PERIOD_US = 10_000  # 10 ms: throttling pauses stay short


def cpu_stat(path: Path) -> dict[str, int]:
    """cpu.stat of a cgroup v1 cpu group (nr_periods, nr_throttled, throttled_time ns, ...)."""
    out: dict[str, int] = {}
    for line in (path / "cpu.stat").read_text().splitlines():
        k, _, v = line.partition(" ")
        if v.strip().isdigit():
            out[k] = int(v)
    return out


class CpuCgroups:
    """One cgroup v1 cpu group per router process, with a CFS quota of `quota` cores.

    Every group created is remembered until it is removed; remove_all() (called from
    main's finally, and atexit) moves any process still inside to the parent group and
    removes the directories, so an aborted run leaves nothing behind."""

    def __init__(self, quota: float, period_us: int = CG_PERIOD_US, root: Path = CG_ROOT) -> None:
        self.quota = quota
        self.period_us = period_us
        self.quota_us = int(round(quota * period_us))
        self.root = root
        self.prefix = f"wr-bench-{os.getpid()}"
        self.paths: list[Path] = []

    def check(self) -> str | None:
        """Why quotas cannot be used here (None: they can); probes with a scratch group."""
        if not (self.root / "cpu.cfs_quota_us").exists():
            return (
                f"--cpu-quota needs the cgroup v1 cpu controller at {self.root} (a directory "
                "with cpu.cfs_quota_us); it is not mounted here (cgroup v2 only hosts are not "
                "supported by this option)"
            )
        if self.quota_us < 1000:
            return (
                f"--cpu-quota {self.quota} gives {self.quota_us} us per {self.period_us} us "
                "period; the kernel's minimum quota is 1000 us (raise Q or --cfs-period-us)"
            )
        if self.quota > (os.cpu_count() or 1):
            return f"--cpu-quota {self.quota} is more than the host's {os.cpu_count()} cores"
        try:
            probe = self.create("probe")
        except OSError as e:
            self.remove_all()
            return (
                f"cannot create a cgroup under {self.root} ({e}); --cpu-quota needs root "
                "and a writable cgroup v1 cpu hierarchy"
            )
        self.remove(probe)
        return None

    def create(self, name: str) -> Path:
        path = self.root / f"{self.prefix}-{name}"
        path.mkdir()
        self.paths.append(path)
        (path / "cpu.cfs_period_us").write_text(str(self.period_us))
        (path / "cpu.cfs_quota_us").write_text(str(self.quota_us))
        return path

    def attach(self, path: Path, pid: int) -> None:
        """Move pid (all its threads) and its descendants into the group."""
        todo, seen = [pid], set()
        while todo:
            p = todo.pop()
            if p in seen:
                continue
            seen.add(p)
            (path / "cgroup.procs").write_text(str(p))
            todo.extend(children_of(p))
        inside = set((path / "cgroup.procs").read_text().split())
        if str(pid) not in inside:
            raise RuntimeError(f"pid {pid} is not in {path} after attaching it")

    def remove(self, path: Path) -> None:
        parent = path.parent / "cgroup.procs"
        for _ in range(50):
            try:
                pids = (path / "cgroup.procs").read_text().split()
            except FileNotFoundError:
                break
            for pid in pids:  # still running (stop failed): give it back to the parent
                try:
                    parent.write_text(pid)
                except OSError:
                    pass  # exited meanwhile
            try:
                path.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.1)
        else:
            print(f"*** could not remove cgroup {path}", file=sys.stderr)
            return
        if path in self.paths:
            self.paths.remove(path)

    def remove_all(self) -> None:
        for path in list(self.paths):
            self.remove(path)


_CG_WINDOW: list[dict[str, Any]] = []  # cpu.stat etc. at the window's start / end
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def host_stat() -> dict[str, float]:
    """Host softirq and steal seconds (all CPUs) from /proc/stat: both count as busy in
    runner's host_busy, so in "other CPU"; steal is time the hypervisor gave to others."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return {"t": time.monotonic(), "softirq": v[6] / _CLK_TCK, "steal": v[7] / _CLK_TCK}


def _install_window_hook() -> None:
    """runner._steady samples the auxiliary processes (`_snap_aux`) exactly at the start and
    the end of the measured window; read the cgroups' cpu.stat at the same moments
    (cfg["cgroups"]: node name -> group path)."""
    orig = runner._snap_aux
    if getattr(orig, "cluster_bench_hook", False):
        return

    def snap_aux(cfg: dict[str, Any]) -> Any:
        snaps = orig(cfg)
        groups = cfg.get("cgroups")
        if groups:
            _CG_WINDOW.append(
                {"groups": {k: cpu_stat(Path(p)) for k, p in groups.items()}, "host": host_stat()}
            )
        return snaps

    snap_aux.cluster_bench_hook = True  # type: ignore[attr-defined]
    runner._snap_aux = snap_aux


def cg_delta(
    a: dict[str, dict[str, int]], b: dict[str, dict[str, int]], window: float
) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for k in a:
        periods = b[k].get("nr_periods", 0) - a[k].get("nr_periods", 0)
        thr = b[k].get("nr_throttled", 0) - a[k].get("nr_throttled", 0)
        ns = b[k].get("throttled_time", 0) - a[k].get("throttled_time", 0)
        out[k] = {
            "nr_periods": periods,
            "nr_throttled": thr,
            "throttled_ms": round(ns / 1e6, 1),
            "throttled_frac": round(thr / periods, 3) if periods else 0.0,
            "throttled_ms_per_s": round(ns / 1e6 / max(1e-9, window), 1),
        }
    return out


# --------------------------------------------------------------------------- nodes


# --prefer-local: every cluster node gets `prefer_local_callees = true` (the rpc case
# then calls each caller's own node's callee while it has one)
PREFER_LOCAL = [False]


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
            if PREFER_LOCAL[0]:
                text += "prefer_local_callees = true\n"
        cfg.write_text(text)
        return [self.binary, "--config", str(cfg), "--log-level", "warn"]


class Cluster:
    def __init__(
        self,
        n: int,
        workdir: Path,
        binary: str | None,
        cgroups: CpuCgroups | None = None,
        label: str = "",
    ) -> None:
        self.n = n
        self.workdir = workdir
        self.binary = binary
        self.redis: Redis | None = None
        self.nodes: list[ClusterNode] = []
        self.cgroups = cgroups  # --cpu-quota: each node in its own group
        self.label = label or workdir.name
        self.node_groups: dict[str, Path] = {}

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
                if self.cgroups is not None and node.pid:
                    # started unthrottled (imports), throttled from here on
                    group = self.cgroups.create(f"{self.label}-{node.name}")
                    self.node_groups[node.name] = group
                    self.cgroups.attach(group, node.pid)
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
        if self.cgroups is not None:
            for group in self.node_groups.values():
                self.cgroups.remove(group)
        self.node_groups = {}
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
    callers = a.callers_per_node * nodes if a.callers_per_node else a.callers
    out: list[tuple[str, str, dict[str, Any]]] = []
    if "fanout" in a.cases:
        out.append(
            ("fanout", "fanout", {"subscribers": a.subscribers, "window": a.window, "payload": 64})
        )
    if "fanout-spread" in a.cases:
        out.append(
            (
                "fanout-spread",
                "fanout",
                {
                    "subscribers": a.subscribers,
                    "publishers": a.publishers,
                    "window": a.window,
                    "payload": 64,
                },
            )
        )
    if "rpc" in a.cases:
        out.append(
            (
                "rpc",
                "rpc",
                {"callers": callers, "inflight": a.inflight, "shared": nodes, "payload": 32},
            )
        )
    if "rpc-affine" in a.cases:
        out.append(
            (
                "rpc-affine",
                "rpc",
                {"callers": callers, "inflight": a.inflight, "affine": True, "payload": 32},
            )
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
    cl = Cluster(n, workdir / f"{name}-r{rep}", a.ours_cmd, a.cgroups, f"{name}-r{rep}")
    try:
        cl.start()
    except (RouterStartError, RuntimeError, OSError) as e:
        print(f"*** {name} did not start: {e}", file=sys.stderr)
        return
    try:
        for cname, wl, spec in cases(n, a):
            rec = run_one(cl, a, name, cname, wl, spec)
            rec.update(variant=name, nodes=n, case=cname, repeat=rep)
            with open(out, "a") as f:
                f.write(json.dumps(rec) + "\n")
            print_rec(rec, name, cname, wl)
            if not cl.alive():
                print(f"*** {name}: a process died during {cname}", file=sys.stderr)
                for nd in cl.nodes:
                    print(nd.tail(), file=sys.stderr)
                return
    finally:
        cl.stop()


def run_one(
    cl: Cluster, a: argparse.Namespace, name: str, cname: str, wl: str, spec: dict[str, Any]
) -> dict[str, Any]:
    """One case on a running cluster -> its record (Redis, cgroup and host extras added)."""
    tg = cl.targets()
    cfg = {
        "workload": wl,
        "target": tg[0],
        "targets": tg if cl.n else [],
        "realm": "realm1",
        "procs": a.client_procs,
        "warmup": a.warmup,
        "duration": a.duration,
        "setup_timeout": 30.0,
        "router_pids": [nd.pid for nd in cl.nodes if nd.pid],
        "aux_pids": cl.aux(),
        "cgroups": {k: str(p) for k, p in cl.node_groups.items()},  # _install_window_hook
        "settle": 0.3 if cl.n else 0.0,
        "label": f"{name}:{cname}",
        "serializer": a.serializer,
        "spec": dict(spec, zero_mask=False),
    }
    idle = wait_quiet(0.3, a.quiet_wait)  # (busy cores before the case)
    r0 = cl.redis.cpu_s() if cl.redis else None
    g0 = {k: cpu_stat(p) for k, p in cl.node_groups.items()}
    t0 = time.monotonic()
    _CG_WINDOW.clear()
    spy = start_profile(cl, a, name, cname)
    try:
        rec = run_case(cfg)
    finally:
        if spy is not None:
            finish_profile(*spy)
    rec["idle_busy_before"] = idle
    if cl.redis and r0 is not None:
        rec["redis_info_cpu_s"] = round(cl.redis.cpu_s() - r0, 3)  # whole case
    if cl.cgroups is not None:
        add_cgroup_stats(rec, cl, g0, time.monotonic() - t0)
    return rec


def add_cgroup_stats(
    rec: dict[str, Any], cl: Cluster, g0: dict[str, dict[str, int]], case_s: float
) -> None:
    """The quota and each node's throttling over the measured window (from the samples
    _install_window_hook took), or over the whole case when it failed before its window."""
    assert cl.cgroups is not None
    rec["cpu_quota"] = cl.cgroups.quota
    rec["cfs_period_us"] = cl.cgroups.period_us
    rec["cfs_quota_us"] = cl.cgroups.quota_us
    if len(_CG_WINDOW) >= 2:
        w0, w1 = _CG_WINDOW[0], _CG_WINDOW[-1]
        rec["cgroup"] = cg_delta(w0["groups"], w1["groups"], rec["window_s"])
        rec["cgroup_scope"] = "window"
        dt = max(1e-9, w1["host"]["t"] - w0["host"]["t"])
        for k in ("steal", "softirq"):
            rec[f"host_{k}"] = round((w1["host"][k] - w0["host"][k]) / dt, 3)
    elif g0:
        g1 = {k: cpu_stat(p) for k, p in cl.node_groups.items()}
        rec["cgroup"] = cg_delta(g0, g1, case_s)
        rec["cgroup_scope"] = "case"


def print_rec(rec: dict[str, Any], name: str, cname: str, wl: str) -> None:
    lat = (rec.get("delivery_latency") if wl == "fanout" else rec.get("latency")) or {}
    print(
        f"  {name:5} {cname:13} {rec['status']:5} {rec.get('throughput', 0):>10,.0f} "
        f"{rec.get('unit', '')} p50 {lat.get('p50_ms', 0):.2f} p99 {lat.get('p99_ms', 0):.2f}"
        f" ms  router {rec.get('router', {}).get('cpu', 0):.2f}"
        f" client {rec.get('client', {}).get('cpu', 0):.2f} aux {rec.get('aux_cpu')}"
        f" err {rec.get('errors')} {rec.get('reason', '')}",
        flush=True,
    )
    if rec.get("cgroup"):
        thr = " ".join(
            f"{k} {v['throttled_frac']:.0%}/{v['throttled_ms_per_s']:.0f}ms/s"
            for k, v in rec["cgroup"].items()
        )
        print(f"        throttled ({rec.get('cgroup_scope')}): {thr}", flush=True)


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

CASE_ORDER = [
    "fanout",
    "fanout-spread",
    "rpc",
    "rpc-affine",
    "call-same",
    "call-cross",
    "event-same",
    "event-cross",
]


def summarize(path: Path) -> str:
    recs = [json.loads(line) for line in open(path) if line.strip()]
    if any(r.get("cpu_quota") for r in recs):
        return summarize_quota(recs)
    by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in recs:
        by.setdefault((r["case"], r["variant"]), []).append(r)
    lines = [
        "| case | variant | n ok | throughput (median) | vs plain | spread | p50 ms | "
        "p99 ms | router CPU (sum) | router µs/op | per node CPU | redis CPU | client CPU | other CPU |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    base: dict[str, float] = {}
    for case in CASE_ORDER:
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


def _f(v: float | None, nd: int = 2) -> str:
    return "–" if v is None else f"{v:.{nd}f}"


def _range(vals: list[float | None], nd: int = 2, pct: bool = False) -> str:
    """min–max of per node values (one value: that value)."""
    vs = [v for v in vals if v is not None]
    if not vs:
        return "–"
    lo, hi = (f"{100 * x:.0f}%" if pct else f"{x:.{nd}f}" for x in (min(vs), max(vs)))
    return lo if lo == hi else f"{lo}–{hi}"


def summarize_quota(recs: list[dict[str, Any]]) -> str:
    """--cpu-quota runs: scaling against c1 under the same quota, and whether the quota
    (not the load generator or Redis) was the limit."""
    by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in recs:
        by.setdefault((r["case"], r["variant"]), []).append(r)
    cases_ = [c for c in CASE_ORDER if any(k[0] == c for k in by)]
    cases_ += sorted({k[0] for k in by} - set(cases_))
    variants = [v for v in VARIANTS if any(k[1] == v for k in by)]
    ok = {k: [r for r in rs if r["status"] == "ok"] for k, rs in by.items()}
    tp = {k: median([r["throughput"] for r in rs]) for k, rs in ok.items() if rs}
    quotas = sorted({r["cpu_quota"] for r in recs if r.get("cpu_quota")})
    lines = [
        f"CPU quota per router process: {', '.join(map(str, quotas))} core "
        f"(cfs_period_us {recs[0].get('cfs_period_us')}); host cores {os.cpu_count()}; "
        "N nodes = N × quota cores of routers.",
        "",
        *_scaling_table(cases_, variants, ok, tp),
        "",
        "Per variant (medians over repeats; per node values: min–max over the nodes of the "
        "medians). node CPU / quota ≈ 1.00 with most periods throttled: the routers were the "
        "limit. client CPU: sum over the load generator's processes (the busiest process); "
        "other = host busy − routers − client − Redis (other sessions, softirq and steal); "
        "steal: time the hypervisor ran something else; idle before: host busy in the 0.5 s "
        "before the case.",
        "",
        "| case | variant | params | n ok | throughput | vs c1 | spread | p50 / p99 ms | "
        "router CPU sum | per node CPU | node CPU / quota | periods throttled | "
        "throttled ms/s | router µs/op | client CPU (max proc) | Redis CPU | other CPU | "
        "steal | idle before |",
        "|---|" + "---|" * 18,
    ]
    for c in cases_:
        for v in variants:
            if by.get((c, v)):
                lines.append(_quota_row(c, v, ok.get((c, v), []), by[(c, v)], tp.get((c, "c1"))))
    warn = [
        f"- {c}/{v} repeat {r.get('repeat')}: a client process at "
        f"{r['client']['max_proc_cpu']:.2f} core"
        for (c, v), rs in ok.items()
        for r in rs
        if (r.get("client") or {}).get("max_proc_cpu", 0) > 0.8
    ]
    if warn:
        lines += ["", "Load generator near a full core (the routers may not be the limit):"]
        lines += warn
    errs = [
        f"- {c}/{v} repeat {r.get('repeat')}: {r['errors']} errors"
        for (c, v), rs in ok.items()
        for r in rs
        if r.get("errors")
    ]
    if errs:
        lines += ["", "Runs with errors (fanout-spread: duplicate or out-of-order events):"]
        lines += errs
    return "\n".join(lines)


def _scaling_table(
    cases_: list[str],
    variants: list[str],
    ok: dict[tuple[str, str], list[dict[str, Any]]],
    tp: dict[tuple[str, str], float | None],
) -> list[str]:
    lines = [
        "Throughput (median) and scaling against c1 under the same quota (ideal: c2 2.00, "
        "c4 4.00):",
        "",
        "| case | " + " | ".join(variants) + " | c2/c1 | c4/c1 | c1/plain |",
        "|---|" + "---|" * (len(variants) + 3),
    ]
    for c in cases_:
        unit = next((rs[0].get("unit", "") for k, rs in ok.items() if k[0] == c and rs), "")
        cells = [f"{tp[(c, v)]:,.0f}" if tp.get((c, v)) else "–" for v in variants]

        def ratio(v: str, ref: str, c: str = c) -> str:
            x, y = tp.get((c, v)), tp.get((c, ref))
            return f"**{x / y:.2f}**" if x and y else "–"

        lines.append(
            f"| {c} ({unit}) | " + " | ".join(cells) + f" | {ratio('c2', 'c1')} | "
            f"{ratio('c4', 'c1')} | {ratio('c1', 'plain')} |"
        )
    return lines


def _quota_row(
    c: str, v: str, rs: list[dict[str, Any]], all_: list[dict[str, Any]], c1: float | None
) -> str:
    if not rs:
        return f"| {c} | {v} | | 0/{len(all_)} | {all_[0].get('reason', '')[:80]} |" + " |" * 14

    def med(get: Callable[[dict[str, Any]], Any]) -> float | None:
        return median([get(r) for r in rs])

    lk = "delivery_latency" if rs[0]["workload"] == "fanout" else "latency"
    t = med(lambda r: r["throughput"]) or 0.0
    nodes = sorted(k for k in rs[0].get("aux_cpu", {}) if k.startswith("node"))
    per = [median([r["aux_cpu"].get(k) for r in rs]) for k in nodes]
    quota = rs[0]["cpu_quota"]
    util = [x / quota if x is not None else None for x in per]
    cg = [
        [median([(r.get("cgroup") or {}).get(k, {}).get(f) for r in rs]) for k in nodes]
        for f in ("throttled_frac", "throttled_ms_per_s")
    ]
    red = med(lambda r: r.get("aux_cpu", {}).get("redis"))
    other = med(lambda r: (r.get("other_busy") or 0.0) - (r.get("aux_cpu", {}).get("redis") or 0))
    pr = rs[0].get("params", {})
    if rs[0]["workload"] == "fanout" and pr.get("publishers"):
        npub = int(pr["publishers"])
        ps = f"{pr.get('subscribers')} subs, {npub} pubs×{-(-int(pr.get('window', 32)) // npub)}"
    elif rs[0]["workload"] == "fanout":
        ps = f"{pr.get('subscribers')} subs, W={pr.get('window')}"
    else:
        ps = f"{pr.get('callers')} callers×{pr.get('inflight', 1)}"
    return (
        f"| {c} | {v} | {ps}, {pr.get('procs')} client procs | {len(rs)}/{len(all_)} | "
        f"{t:,.0f} {rs[0]['unit']} | {f'{t / c1:.2f}' if c1 else '–'} | "
        f"{spread([r['throughput'] for r in rs])} | "
        f"{_f(med(lambda r: r[lk]['p50_ms']))} / {_f(med(lambda r: r[lk]['p99_ms']))} | "
        f"{_f(med(lambda r: r['router']['cpu']))} | {' / '.join(_f(x) for x in per)} | "
        f"{_range(util)} | {_range(cg[0], pct=True)} | {_range(cg[1], nd=0)} | "
        f"{_f(med(lambda r: r['router'].get('us_per_op')), 1)} | "
        f"{_f(med(lambda r: r['client']['cpu']))} "
        f"({_f(med(lambda r: r['client'].get('max_proc_cpu')))}) | {_f(red)} | {_f(other)} | "
        f"{_f(med(lambda r: r.get('host_steal')))} | "
        f"{_f(med(lambda r: r.get('idle_busy_before')))} |"
    )


# --------------------------------------------------------------------------- main


def add_fanout_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--subscribers", type=int, default=100)
    p.add_argument(
        "--window",
        type=int,
        default=None,
        help="fanout / fanout-spread: publications in flight in all (default 32; with "
        f"--cpu-quota {QUOTA_WINDOW})",
    )
    p.add_argument(
        "--publishers",
        type=int,
        default=SPREAD_PUBLISHERS,
        help="fanout-spread: publishers in all, dealt round robin over the nodes, each with "
        f"ceil(window / publishers) publications in flight (default {SPREAD_PUBLISHERS})",
    )


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--variants", default="plain,c1,c2,c4")
    p.add_argument(
        "--cases",
        default=None,
        help="fanout,fanout-spread,rpc,rpc-affine,call,event (default fanout,rpc,call,event; "
        "with --cpu-quota fanout,fanout-spread,rpc,rpc-affine)",
    )
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--duration", type=float, default=3.0)
    p.add_argument("--warmup", type=float, default=1.0)
    add_fanout_args(p)
    p.add_argument("--callers", type=int, default=10, help="rpc / rpc-affine callers in all")
    p.add_argument(
        "--callers-per-node",
        type=int,
        default=None,
        metavar="K",
        help="rpc / rpc-affine: K callers per node instead of --callers in all "
        f"(default with --cpu-quota: {QUOTA_CALLERS_PER_NODE})",
    )
    p.add_argument("--inflight", type=int, default=1, help="calls in flight per caller")
    p.add_argument(
        "--client-procs",
        type=int,
        default=None,
        help="load generator processes (default: automatic; with --cpu-quota 2, so every "
        "variant has the same client layout)",
    )
    p.add_argument(
        "--cpu-quota",
        type=float,
        default=None,
        metavar="Q",
        help="run every router process in its own cgroup v1 cpu group limited to Q cores "
        "(needs root and /sys/fs/cgroup/cpu)",
    )
    p.add_argument("--cfs-period-us", type=int, default=CG_PERIOD_US)
    p.add_argument(
        "--router-rev",
        default=None,
        metavar="REV",
        help="run the routers from a git archive of REV (e.g. HEAD) instead of the working tree",
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=0.0,
        help="before each case wait up to this many s for the host to be idle (< 0.3 core)",
    )
    p.add_argument("--out", default=None, help="jsonl to append to (default bench/results/...)")
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
    p.add_argument("--prefer-local", action="store_true",
                   help="[cluster] prefer_local_callees = true on every node")
    a = p.parse_args()
    PREFER_LOCAL[0] = a.prefer_local
    quota = a.cpu_quota
    if a.cases is None:
        a.cases = "fanout,fanout-spread,rpc,rpc-affine" if quota else "fanout,rpc,call,event"
    a.cases = a.cases.split(",")
    if quota and a.callers_per_node is None:
        a.callers_per_node = QUOTA_CALLERS_PER_NODE
    if a.window is None:
        a.window = QUOTA_WINDOW if quota else 32
    if a.client_procs is None:
        a.client_procs = 2 if quota else 0  # 0: runner.auto_procs
    a.variants = [v for v in a.variants.split(",") if v]
    unknown = [v for v in a.variants if v not in VARIANTS]
    if unknown:
        p.error(f"unknown variants {unknown} (known: {', '.join(VARIANTS)})")
    return a


def main() -> int:
    a = parse_args()
    if a.summarize:
        print(summarize(Path(a.summarize)))
        return 0
    a.cgroups = None
    if a.cpu_quota:
        a.cgroups = CpuCgroups(a.cpu_quota, a.cfs_period_us)
        why = a.cgroups.check()
        if why:
            print(f"error: {why}", file=sys.stderr)
            return 2
        atexit.register(a.cgroups.remove_all)  # main's finally is the usual way out
        _install_window_hook()
        print(
            f"cpu quota {a.cpu_quota} core per router ({a.cgroups.quota_us} us / "
            f"{a.cgroups.period_us} us) in {CG_ROOT}/{a.cgroups.prefix}-*",
            flush=True,
        )
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(a.out) if a.out else HERE / "results" / f"cluster-{stamp}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(a.workdir or tempfile.mkdtemp(prefix="wamp-cluster-bench-"))
    print(f"workdir {workdir}\nresults {out}", flush=True)
    if a.router_rev:
        from sync_cluster_bench import snapshot_router  # it imports this module

        a.ours_cmd, sha = snapshot_router(a.router_rev, workdir)
        print(f"routers: git archive of {sha} ({a.ours_cmd})", flush=True)

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        for rep in range(a.repeats):
            order = a.variants if rep % 2 == 0 else list(reversed(a.variants))
            for v in order:
                print(f"repeat {rep + 1}/{a.repeats}: {v}", flush=True)
                run_variant(v, VARIANTS[v], a, rep, workdir, out)
    finally:
        if a.cgroups is not None:
            a.cgroups.remove_all()
    if not out.exists():
        print("no results", file=sys.stderr)
        return 1
    md = summarize(out)
    print(md)
    out.with_suffix(".md").write_text(md + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
