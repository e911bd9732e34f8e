"""Process orchestration: fork client workers, drive the phases, read the router's /proc.

One call of `run_case(cfg)` is one benchmark run and returns one result record
(a JSON-able dict). The main process does no network I/O itself: it only times
the phases, samples the router and merges what the workers report.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import time
import traceback
from multiprocessing.connection import Connection, wait
from typing import Any

from metrics import Hist, ProcSnap, host_busy, raise_nofile, snap_pids
from wampclient import Serializer, Target, get_serializer, install_fast_loop
from workloads import WORKLOADS, Skip, Times, WorkerCtx

now_ns = time.monotonic_ns


class CaseFailed(Exception):
    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status  # "skipped" or "error"
        self.reason = reason


# =============================================================================== worker side


def _serializer(cfg: dict[str, Any]) -> Serializer:
    if cfg["workload"] == "echo":  # raw payloads, no WAMP
        return Serializer("echo", "wamp.2.json", 1, False, bytes, bytes)
    return get_serializer(cfg["serializer"])


def _worker_main(
    index: int,
    nworkers: int,
    cfg: dict[str, Any],
    pipe: Connection,
    read_fds: list[int],
    write_fd: int | None,
) -> None:
    install_fast_loop()
    raise_nofile()
    try:
        asyncio.run(_worker_async(index, nworkers, cfg, pipe, read_fds, write_fd))
    except Exception:  # last resort: tell the main process
        pipe.send(("error", f"worker {index}: {traceback.format_exc(limit=3)}"))


async def _worker_async(
    index: int,
    nworkers: int,
    cfg: dict[str, Any],
    pipe: Connection,
    read_fds: list[int],
    write_fd: int | None,
) -> None:
    loop = asyncio.get_running_loop()

    async def recv() -> Any:
        return await loop.run_in_executor(None, pipe.recv)

    ctx = WorkerCtx(
        index=index,
        nworkers=nworkers,
        spec=cfg["spec"],
        target=Target(**cfg["target"]),
        ser=_serializer(cfg),
        realm=cfg["realm"],
        recv=recv,
        send=pipe.send,
        peer_read_fds=read_fds,
        peer_write_fd=write_fd,
        targets=[Target(**t) for t in cfg.get("targets") or []],
    )
    wl = WORKLOADS[cfg["workload"]](ctx)
    try:
        info = await asyncio.wait_for(wl.setup(), cfg["setup_timeout"])
    except Skip as e:
        pipe.send(("skip", str(e)))
        await wl.teardown()
        return
    except Exception as e:
        pipe.send(("error", f"worker {index} setup: {type(e).__name__}: {e or 'timed out'}"))
        await wl.teardown()
        return
    pipe.send(("ready", info))
    cmd = await recv()
    if cmd[0] == "run":
        try:
            res = await wl.run(Times(*cmd[1:]))
        except Exception as e:
            pipe.send(("error", f"worker {index} run: {type(e).__name__}: {e}"))
            await wl.teardown()
            return
        pipe.send(("result", res))
        await recv()  # ("teardown",)
    await wl.teardown()
    pipe.send(("bye", None))


# =============================================================================== main side


class Workers:
    def __init__(self, cfg: dict[str, Any], n: int) -> None:
        ctx = mp.get_context("fork")
        self.pipes: list[Connection] = []
        self.procs: list[Any] = []
        peer = [os.pipe() for _ in range(n - 1)]  # worker i>0 -> worker 0
        for i in range(n):
            mine, theirs = ctx.Pipe()
            read_fds = [r for r, _ in peer] if i == 0 else []
            write_fd = peer[i - 1][1] if i > 0 else None
            p = ctx.Process(
                target=_worker_main,
                args=(i, n, cfg, theirs, read_fds, write_fd),
                daemon=True,
                name=f"wampbench-{i}",
            )
            p.start()
            theirs.close()
            self.pipes.append(mine)
            self.procs.append(p)
        for r, w in peer:
            os.close(r)
            os.close(w)

    def broadcast(self, msg: Any) -> None:
        for p in self.pipes:
            try:
                p.send(msg)
            except (BrokenPipeError, OSError):
                pass

    def gather(self, kind: str, timeout: float) -> list[Any]:
        """Wait for message `kind` from every worker; raise CaseFailed on skip/error."""
        out: dict[int, Any] = {}
        deadline = time.monotonic() + timeout
        while len(out) < len(self.pipes):
            left = deadline - time.monotonic()
            waiting = [p for i, p in enumerate(self.pipes) if i not in out]
            ready = wait(waiting, timeout=max(0.0, left))
            if not ready:
                raise CaseFailed("error", f"timed out after {timeout:.0f} s waiting for '{kind}'")
            for p in ready:
                i = self.pipes.index(p)  # type: ignore[arg-type]
                try:
                    tag, payload = p.recv()  # type: ignore[union-attr]
                except EOFError:
                    raise CaseFailed("error", f"worker {i} died") from None
                if tag == "skip":
                    raise CaseFailed("skipped", payload)
                if tag == "error":
                    raise CaseFailed("error", payload)
                if tag == kind:
                    out[i] = payload
        return [out[i] for i in range(len(self.pipes))]

    def stop(self, timeout: float = 15.0) -> None:
        self.broadcast(("teardown",))
        deadline = time.monotonic() + timeout
        for p in self.procs:
            p.join(max(0.1, deadline - time.monotonic()))
        for p in self.procs:
            if p.is_alive():
                p.kill()
                p.join(2)
        for p in self.pipes:
            p.close()


def _sleep_until(t_ns: int) -> None:
    d = (t_ns - now_ns()) / 1e9
    if d > 0:
        time.sleep(d)


def _router(pids: list[int], a: ProcSnap | None, b: ProcSnap | None, ops: float) -> dict[str, Any]:
    if not pids or a is None or b is None:
        return {}
    dt = max(1e-9, b.t - a.t)
    cpu = (b.cpu_s - a.cpu_s) / dt
    return {
        "pids": pids,
        "cpu": round(cpu, 3),
        "us_per_op": round((b.cpu_s - a.cpu_s) * 1e6 / ops, 2) if ops else None,
        "rss_kb": b.rss_kb,
        "hwm_kb": b.hwm_kb,
        "alive": b.alive,
    }


def _merge(hists: list[dict[str, Any]]) -> Hist:
    h = Hist()
    for s in hists:
        h.merge_sparse(s)
    return h


def _client(results: list[dict[str, Any]], window: float, ops: float) -> dict[str, Any]:
    cpus = [r.get("cpu_s", 0.0) for r in results]
    return {
        "procs": len(results),
        "cpu": round(sum(cpus) / window, 3),
        "max_proc_cpu": round(max(cpus) / window, 3),
        "us_per_op": round(sum(cpus) * 1e6 / ops, 2) if ops else None,
    }


def _steady(w: Workers, cfg: dict[str, Any], pids: list[int]) -> dict[str, Any]:
    """rpc / fanout / echo: warm-up, then a measured window."""
    warm, dur = float(cfg["warmup"]), float(cfg["duration"])
    start = now_ns() + 100_000_000
    meas = start + int(warm * 1e9)
    end = meas + int(dur * 1e9)
    w.broadcast(("run", start, meas, end))
    _sleep_until(meas)
    r0, h0, a0 = snap_pids(pids) if pids else None, host_busy(), _snap_aux(cfg)
    _sleep_until(end)
    r1, h1, a1 = snap_pids(pids) if pids else None, host_busy(), _snap_aux(cfg)
    results = w.gather("result", timeout=dur + warm + 30)
    windows = [r["window_s"] for r in results if r.get("window_s")]
    window = sum(windows) / len(windows) if windows else dur
    count = sum(r["count"] for r in results)
    rec: dict[str, Any] = {
        "window_s": round(window, 3),
        "errors": sum(r["errors"] for r in results),
    }
    wl = cfg["workload"]
    if wl == "sync":
        rec.update(_sync_rec(results, cfg["spec"], window, count))
    elif wl == "fanout":
        pub = results[0]["pub"]
        rec["unit"] = "events/s"
        rec["throughput"] = round(count / window, 1)
        rec["publications_per_s"] = round(pub["count"] / window, 1)
        rec["latency"] = _merge([pub["hist"]]).summary_ms()  # publication reached all N
        rec["delivery_latency"] = _merge([r["hist"] for r in results]).summary_ms()
    else:
        rec["unit"] = "calls/s" if wl == "rpc" else "msgs/s"
        rec["throughput"] = round(count / window, 1)
        rec["latency"] = _merge([r["hist"] for r in results]).summary_ms()
        if "per_callee" in results[0]:
            rec["per_callee"] = results[0]["per_callee"]
    rec["router"] = _router(pids, r0, r1, count)
    if rec["router"] and rec.get("deliveries"):  # sync: also per delivered event
        cpu_s = rec["router"]["cpu"] * window
        rec["router"]["us_per_delivery"] = round(cpu_s * 1e6 / rec["deliveries"], 2)
    rec["client"] = _client(results, window, count)
    rec["host_busy"] = round((h1[0] - h0[0]) / window, 3)
    rec["other_busy"] = _other(rec)
    if a0:  # CPU (cores) of other processes of interest over the same window
        rec["aux_cpu"] = _aux_cpu(a0, a1)
    return rec


def _snap_aux(cfg: dict[str, Any]) -> dict[str, ProcSnap]:
    """cfg["aux_pids"]: name -> pids of other processes to sample (e.g. redis, node1)."""
    return {k: snap_pids(v) for k, v in (cfg.get("aux_pids") or {}).items()}


def _aux_cpu(a0: dict[str, ProcSnap], a1: dict[str, ProcSnap]) -> dict[str, float]:
    return {k: round((a1[k].cpu_s - a0[k].cpu_s) / max(1e-9, a1[k].t - a0[k].t), 3) for k in a0}


def _sync_rec(
    results: list[dict[str, Any]], spec: dict[str, Any], window: float, count: int
) -> dict[str, Any]:
    """sync: writes/s and write latency, deliveries, and the consistency checks."""
    deliveries = sum(r["obs"]["count"] for r in results)
    counts: dict[str, int] = {}
    examples: dict[str, list[str]] = {}
    acked_v: dict[int, int] = {}
    sent_seq: dict[tuple[int, int], int] = {}
    for r in results:
        c = r["check"]
        for key, n in c["counts"].items():
            counts[key] = counts.get(key, 0) + n
        for key, ex in c["examples"].items():
            examples.setdefault(key, []).extend(ex)
        for k, v in c["acked_v"].items():
            acked_v[k] = max(v, acked_v.get(k, 0))
        sent_seq.update(c["sent_seq"])
    behind, missing_tail, seq_behind, seq_missing_tail = _tail_check(
        results, spec, acked_v, sent_seq, examples
    )
    check: dict[str, Any] = {
        "gaps": counts.pop("gaps", 0),
        "missing_versions": counts.pop("missing_versions", 0),
        "dups": counts.pop("dups", 0),
        "seq_gaps": counts.pop("seq_gaps", 0),
        "seq_missing": counts.pop("seq_missing", 0),
        "seq_dups": counts.pop("seq_dups", 0),
        "behind_at_end": behind,
        "missing_at_end": missing_tail,
        "seq_behind_at_end": seq_behind,
        "seq_missing_at_end": seq_missing_tail,
        "write_errors": counts.pop("write_errors", 0),
        "unacked_at_end": sum(r["check"]["unacked"] for r in results),
        "acked_total": sum(r["check"].get("acked_total", 0) for r in results),
        "errors_by_writer": {
            g: n for r in results for g, n in r["check"].get("errors_by_writer", {}).items()
        },
        "lost_sessions": sum(r["check"]["lost_sessions"] for r in results),
        "retained_events": counts.pop("retained", 0),
        "records_written": len(acked_v),
        **counts,
    }
    bad = {
        k: v
        for k, v in check.items()
        if v
        and k
        not in (
            "retained_events",
            "records_written",
            "acked_total",
            "errors_by_writer",
            "dups",
            "missing_versions",
            "seq_missing",
            "missing_at_end",
            "seq_missing_at_end",
        )
    }
    check["ok"] = not bad
    check["problems"] = bad
    check["examples"] = {k: v[:3] for k, v in examples.items() if v}
    return {
        "unit": "writes/s",
        "throughput": round(count / window, 1),
        "latency": _merge([r["hist"] for r in results]).summary_ms(),  # write -> ack
        "deliveries": deliveries,
        "deliveries_per_s": round(deliveries / window, 1),
        "delivery_latency": _merge([r["obs"]["hist"] for r in results]).summary_ms(),
        "check": check,
    }


def _tail_check(
    results: list[dict[str, Any]],
    spec: dict[str, Any],
    acked_v: dict[int, int],
    sent_seq: dict[tuple[int, int], int],
    examples: dict[str, list[str]],
) -> tuple[int, int, int, int]:
    """After the drain every observer must hold the last acknowledged version of each
    record it watches, and the last write of every writer to it."""
    from workloads import watches

    n_obs = int(spec["observers"])
    per = int(spec.get("per_record") or n_obs)
    behind = missing = seq_behind = seq_missing = 0
    for o in (o for r in results for o in r["check"]["obs"]):
        j, last_v, last_seq = o["j"], o["last_v"], o["last_seq"]
        for k, v in acked_v.items():
            if watches(j, k, n_obs, per) and last_v.get(k, 0) < v:
                behind += 1
                missing += v - last_v.get(k, 0)
                examples.setdefault("behind", []).append(
                    f"observer {j} record {k}: v{last_v.get(k, 0)}, last acked v{v}"
                )
        for (g, k), s in sent_seq.items():
            if watches(j, k, n_obs, per) and last_seq.get((g, k), 0) < s:
                seq_behind += 1
                seq_missing += s - last_seq.get((g, k), 0)
                examples.setdefault("seq_behind", []).append(
                    f"observer {j} record {k}: writer {g} seq {last_seq.get((g, k), 0)}, "
                    f"last sent {s}"
                )
    return behind, missing, seq_behind, seq_missing


def _other(rec: dict[str, Any]) -> float | None:
    """Host CPU used by neither the router nor the client (noise from other processes)."""
    r, c = rec.get("router") or {}, rec.get("client") or {}
    if "cpu" not in r:
        return None
    return round(rec["host_busy"] - r["cpu"] - c.get("cpu", 0.0), 3)


def _connect(w: Workers, cfg: dict[str, Any], pids: list[int]) -> dict[str, Any]:
    """Session storm, then idle RSS, then close all and RSS after close."""
    settle_open = float(cfg["spec"].get("settle_open", 1.0))
    settle_close = float(cfg["spec"].get("settle_close", 2.0))
    time.sleep(0.5)
    base = snap_pids(pids) if pids else None
    start = now_ns() + 100_000_000
    w.broadcast(("run", start, start, start))
    _sleep_until(start)
    r0, h0 = snap_pids(pids) if pids else None, host_busy()
    opened = w.gather("opened", timeout=float(cfg["spec"].get("storm_timeout", 120)))
    r1, h1 = snap_pids(pids) if pids else None, host_busy()
    ok = sum(o["ok"] for o in opened)
    storm = (max(o["t_last"] for o in opened) - min(o["t_begin"] for o in opened)) / 1e9
    storm = max(storm, 1e-6)
    time.sleep(settle_open)
    idle = snap_pids(pids) if pids else None
    w.broadcast(("close",))
    closed = w.gather("result", timeout=120)
    time.sleep(settle_close)
    after = snap_pids(pids) if pids else None
    rec: dict[str, Any] = {
        "unit": "sessions/s",
        "throughput": round(ok / storm, 1),
        "window_s": round(storm, 3),
        "sessions_ok": ok,
        "errors": sum(o["failed"] for o in opened),
        "first_errors": [e for o in opened for e in o["first_errors"]][:3],
        "latency": _merge([o["hist"] for o in opened]).summary_ms(),  # connect -> WELCOME
        "close_s": round(max(c["close_s"] for c in closed), 3),
        "router": _router(pids, r0, r1, ok),
        "client": _client(opened, storm, ok),
        "host_busy": round((h1[0] - h0[0]) / max(1e-6, (r1.t - r0.t) if r1 and r0 else storm), 3),
    }
    rec["other_busy"] = _other(rec)
    if base and idle and after:
        rec["rss"] = {
            "base_kb": base.rss_kb,
            "open_kb": idle.rss_kb,
            "closed_kb": after.rss_kb,
            "hwm_kb": after.hwm_kb,
            "per_session_kb": round((idle.rss_kb - base.rss_kb) / ok, 2) if ok else None,
            "retained_after_close_kb": after.rss_kb - base.rss_kb,
        }
    return rec


def _warnings(rec: dict[str, Any]) -> list[str]:
    w = []
    cl = rec.get("client") or {}
    if cl.get("max_proc_cpu", 0) > 0.85:
        w.append(
            f"a client process used {cl['max_proc_cpu']:.2f} core: the client may be the "
            "bottleneck (try --procs N)"
        )
    chk = rec.get("check")
    if chk is not None and not chk.get("ok", True):
        w.append(
            "*** DATA-SYNC CHECK FAILED (a bug in the router under test): "
            f"{chk['problems']}; examples: {chk['examples']}"
        )
    elif chk is not None and chk.get("dups"):
        w.append(f"observers saw {chk['dups']} duplicate versions: {chk['examples'].get('dups')}")
    other = rec.get("other_busy")
    if other is not None and other > 0.3:
        w.append(f"other processes used {other:.2f} cores during the run: numbers may be low")
    return w


def auto_procs(workload: str, spec: dict[str, Any]) -> int:
    """Client processes: 2 where one would approach a full core, else 1."""
    if workload == "rpc":
        return 2 if int(spec["callers"]) * int(spec.get("inflight", 1)) >= 10 else 1
    if workload == "fanout":
        return 2 if int(spec["subscribers"]) >= 100 else 1
    if workload == "connect":
        return 2 if int(spec["sessions"]) >= 1000 else 1
    if workload == "sync":
        n = int(spec["writers"]) * int(spec.get("inflight", 1)) + int(spec["observers"])
        return 2 if n >= 10 else 1
    if workload == "echo":
        return 2 if int(spec["callers"]) * int(spec.get("inflight", 1)) >= 10 else 1
    return 1


def run_case(cfg: dict[str, Any]) -> dict[str, Any]:
    """Run one case. cfg keys: workload, target{kind,host,port,path}, serializer,
    realm, procs, warmup, duration, setup_timeout, router_pids, spec{...}."""
    pids = list(cfg.get("router_pids") or [])
    nprocs = int(cfg.get("procs") or auto_procs(cfg["workload"], cfg["spec"]))
    cfg = dict(cfg, procs=nprocs)
    t = Target(**cfg["target"])
    rec: dict[str, Any] = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "label": cfg.get("label", ""),
        "workload": cfg["workload"],
        "transport": "websocket" if t.kind == "ws" else "rawsocket",
        "serializer": cfg["serializer"] if cfg["workload"] != "echo" else "-",
        "target": t.describe(),
        "params": dict(cfg["spec"], procs=nprocs),
        "warmup_s": cfg["warmup"],
        "duration_s": cfg["duration"],
    }
    w = Workers(cfg, nprocs)
    try:
        w.gather("ready", timeout=float(cfg["setup_timeout"]) + 5)
        time.sleep(float(cfg.get("settle", 0.0)))  # cluster: let announcements propagate
        driver = _connect if cfg["workload"] == "connect" else _steady
        rec.update(driver(w, cfg, pids))
        rec["status"] = "ok"
        rec["warnings"] = _warnings(rec)
        if pids and not rec.get("router", {}).get("alive", True):
            rec.update(status="error", reason="router process exited during the run")
    except CaseFailed as e:
        rec.update(status=e.status, reason=e.reason)
    finally:
        w.stop()
    return rec
