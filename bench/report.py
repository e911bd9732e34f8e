"""Markdown rendering of wampbench records (one row per run)."""

from __future__ import annotations

import statistics
from typing import Any


def median(vals: list[Any]) -> float | None:
    """The median of the values that are not None (None when there are none)."""
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def spread(vals: list[Any]) -> str:
    """(max - min) / median of the values that are not None, as a percentage."""
    vals = [v for v in vals if v is not None]
    if len(vals) < 2 or not statistics.median(vals):
        return "–"
    return f"{(max(vals) - min(vals)) / statistics.median(vals) * 100:.0f}%"


def dig(rec: dict[str, Any], path: str) -> Any:
    """``rec["a"]["b"]`` for the path "a.b" (None when a step is missing)."""
    cur: Any = rec
    for p in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(p)
    return cur


def fmt(v: Any, nd: int = 0) -> str:
    if v is None or v == "":
        return "–"
    if isinstance(v, float | int):
        if nd == 0:
            return f"{v:,.0f}"
        return f"{v:,.{nd}f}"
    return str(v)


def case_params(r: dict[str, Any]) -> str:
    p = r.get("params", {})
    wl = r["workload"]
    if wl in ("rpc", "echo"):
        s = f"M={p.get('callers')}"
        if p.get("inflight", 1) != 1:
            s += f"×{p['inflight']}"
        if p.get("shared", 1) > 1:
            s += f" shared={p['shared']}"
        return s
    if wl == "fanout":
        return f"N={p.get('subscribers')} W={p.get('window')}"
    if wl == "connect":
        return f"S={p.get('sessions')}"
    if wl == "sync":
        o, per = p.get("observers"), p.get("per_record")
        s = f"W={p.get('writers')}"
        if p.get("inflight", 1) != 1:
            s += f"×{p['inflight']}"
        s += f" O={o}" + (f"({per}/rec)" if per and per != o else "")
        return s + f" K={p.get('records')} {p.get('op')} {p.get('write')}"
    return ""


def case_key(r: dict[str, Any]) -> str:
    return f"{r['workload']} {case_params(r)} {r['transport']}/{r['serializer']}"


def markdown_runs(records: list[dict[str, Any]]) -> str:
    head = (
        "| workload | params | transport | ser | throughput | unit | p50 ms | p99 ms "
        "| router CPU | router µs/op | router RSS MB | client CPU | client µs/op | other CPU | status |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    rows = [head]
    for r in records:
        lat = r.get("latency") or {}
        ro = r.get("router") or {}
        cl = r.get("client") or {}
        status = r["status"] if r["status"] == "ok" else f"{r['status']}: {r.get('reason', '')}"
        if r["workload"] == "connect" and r.get("rss"):
            status += f"; {r['rss']['per_session_kb']} KB/session, closed RSS {r['rss']['closed_kb'] / 1024:.1f} MB"
        if r["workload"] == "sync" and r["status"] == "ok":
            chk = r.get("check") or {}
            dl = r.get("delivery_latency") or {}
            status += (
                f"; {fmt(r.get('deliveries_per_s'))} deliveries/s, delivery p50/p99 "
                f"{fmt(dl.get('p50_ms'), 2)}/{fmt(dl.get('p99_ms'), 2)} ms; checks "
                + ("ok" if chk.get("ok") else f"FAILED {chk.get('problems')}")
            )
        rss = ro.get("rss_kb")
        rows.append(
            "| "
            + " | ".join(
                [
                    r["workload"],
                    case_params(r),
                    r["transport"],
                    r["serializer"],
                    fmt(r.get("throughput")),
                    r.get("unit", ""),
                    fmt(lat.get("p50_ms"), 2),
                    fmt(lat.get("p99_ms"), 2),
                    fmt(ro.get("cpu"), 2),
                    fmt(ro.get("us_per_op"), 1),
                    fmt(rss / 1024 if rss else None, 1),
                    fmt(cl.get("cpu"), 2),
                    fmt(cl.get("us_per_op"), 1),
                    fmt(r.get("other_busy"), 2),
                    status.replace("|", "/"),
                ]
            )
            + " |"
        )
    return "\n".join(rows)
