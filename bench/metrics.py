"""Measurement helpers: latency histogram, /proc readings of the router, client rusage."""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass, field
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# ----------------------------------------------------------------------------- histogram

_SUB = 512  # sub-buckets per power of two above 1024 µs: ~0.2 % resolution
_NBUCKETS = 1024 + 40 * _SUB


class Hist:
    """Log-linear latency histogram in microseconds (exact below 1 ms, ~0.2 % above).

    Cheap enough to record every delivery (a few integer operations), mergeable
    across processes (`to_sparse` / `merge_sparse`).
    """

    __slots__ = ("counts", "n", "total_us", "max_us")

    def __init__(self) -> None:
        self.counts = [0] * _NBUCKETS
        self.n = 0
        self.total_us = 0
        self.max_us = 0

    def add_ns(self, ns: int) -> None:
        us = ns // 1000
        if us < 1024:
            idx = us if us > 0 else 0
        else:
            e = us.bit_length() - 10
            idx = e * _SUB + (us >> e)
            if idx >= _NBUCKETS:
                idx = _NBUCKETS - 1
        self.counts[idx] += 1
        self.n += 1
        self.total_us += us
        if us > self.max_us:
            self.max_us = us

    @staticmethod
    def _value(idx: int) -> float:
        if idx < 1024:
            return idx + 0.5
        e = idx // _SUB - 1
        m = idx - e * _SUB
        return (m << e) + (1 << e) / 2

    def percentile(self, p: float) -> float | None:
        """Value in µs at percentile p (0..100), None if empty."""
        if self.n == 0:
            return None
        rank = max(1, int(round(self.n * p / 100.0)))
        seen = 0
        for idx, c in enumerate(self.counts):
            if c:
                seen += c
                if seen >= rank:
                    return min(self._value(idx), float(self.max_us))
        return float(self.max_us)

    def to_sparse(self) -> dict[str, Any]:
        return {
            "b": {i: c for i, c in enumerate(self.counts) if c},
            "n": self.n,
            "t": self.total_us,
            "m": self.max_us,
        }

    def merge_sparse(self, s: dict[str, Any]) -> None:
        for i, c in s["b"].items():
            self.counts[int(i)] += c
        self.n += s["n"]
        self.total_us += s["t"]
        self.max_us = max(self.max_us, s["m"])

    def summary_ms(self) -> dict[str, float | None]:
        def ms(v: float | None) -> float | None:
            return None if v is None else round(v / 1000.0, 3)

        return {
            "p50_ms": ms(self.percentile(50)),
            "p90_ms": ms(self.percentile(90)),
            "p99_ms": ms(self.percentile(99)),
            "max_ms": ms(float(self.max_us) if self.n else None),
            "mean_ms": ms(self.total_us / self.n if self.n else None),
            "samples": self.n,
        }


# ----------------------------------------------------------------------------- router /proc


@dataclass
class ProcSnap:
    t: float  # monotonic seconds
    cpu_s: float  # utime + stime, seconds, summed over the pids
    rss_kb: int
    hwm_kb: int
    alive: bool
    per_pid: dict[int, dict[str, float]] = field(default_factory=dict)


def _read_stat(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2 :].split()
    # fields[0] is state (field 3); utime/stime are fields 14/15 -> index 11/12
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _read_status(pid: int) -> tuple[int, int]:
    rss = hwm = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm


def snap_pids(pids: list[int]) -> ProcSnap:
    t = time.monotonic()
    cpu, rss, hwm, alive = 0.0, 0, 0, True
    per: dict[int, dict[str, float]] = {}
    for pid in pids:
        try:
            c = _read_stat(pid)
            r, h = _read_status(pid)
        except (OSError, ValueError, IndexError):
            alive = False
            continue
        cpu += c
        rss += r
        hwm += h
        per[pid] = {"cpu_s": c, "rss_kb": r, "hwm_kb": h}
    return ProcSnap(t, cpu, rss, hwm, alive, per)


def host_busy() -> tuple[float, float]:
    """(busy_seconds, total_seconds) summed over all CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    vals = [int(x) for x in parts[:8]]
    idle = vals[3] + vals[4]  # idle + iowait
    total = sum(vals)
    return (total - idle) / CLK_TCK, total / CLK_TCK


def rusage_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


def children_of(pid: int) -> list[int]:
    """Direct children of pid (by scanning /proc)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            out.append(int(name))
    return out


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
