#!/usr/bin/env python3
"""wampbench: a load generator for any WAMP v2 router (WebSocket or RawSocket).

Examples (see bench/README.md for all of them):

    python bench/wampbench.py --url ws://127.0.0.1:8090/ws --workload rpc --callers 1,10,50
    python bench/wampbench.py --rawsocket 127.0.0.1:8091 --serializer msgpack \
        --workload fanout --subscribers 10,100 --window 32 --router-pid 12345
    python bench/wampbench.py --url ws://127.0.0.1:8090/ws --workload connect --sessions 1000
    python bench/wampbench.py --url ws://127.0.0.1:8090/ws --workload sync --writers 1,10 \
        --observers 10 --records 100 --op inc --write patch     # needs a sync domain bench.rec.

Each run appends one JSON line to --out and a row to the markdown table printed at
the end. Every run is bounded: warm-up + duration (+ setup and drain time-outs).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from report import markdown_runs
from runner import run_case
from wampclient import Target

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "results", "wampbench.jsonl")


def _ints(s: str) -> list[int]:
    return [int(x) for x in s.split(",") if x.strip()]


def _strs(s: str) -> list[str]:
    return [x.strip() for x in s.split(",") if x.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    tgt = p.add_mutually_exclusive_group(required=True)
    tgt.add_argument("--url", help="WebSocket URL, e.g. ws://127.0.0.1:8090/ws")
    tgt.add_argument("--rawsocket", metavar="HOST:PORT", help="RawSocket (TCP) endpoint")
    p.add_argument("--realm", default="realm1")
    p.add_argument(
        "--workload", default="rpc", choices=["rpc", "fanout", "connect", "echo", "sync"]
    )
    p.add_argument("--serializer", default="json", type=_strs, help="json,msgpack,cbor (list)")
    g = p.add_argument_group("rpc / echo")
    g.add_argument("--callers", default=[10], type=_ints, help="callers (list), default 10")
    g.add_argument(
        "--inflight", default=1, type=int, help="calls (sync: writes) in flight per caller (writer)"
    )
    g.add_argument("--shared", default=[1], type=_ints, help="callees; >1 = invoke=roundrobin")
    g = p.add_argument_group("fanout")
    g.add_argument("--subscribers", default=[10], type=_ints, help="subscribers (list)")
    g.add_argument("--window", default=32, type=int, help="publications in flight (to all N)")
    g = p.add_argument_group("connect")
    g.add_argument("--sessions", default=[1000], type=_ints, help="sessions to open (list)")
    g.add_argument("--concurrency", default=100, type=int, help="handshakes in flight per process")
    g = p.add_argument_group("sync (data-sync records; see bench/README.md)")
    g.add_argument("--writers", default=[1], type=_ints, help="writer sessions (list), default 1")
    g.add_argument(
        "--observers", default=[10], type=_ints, help="observer sessions (list), default 10"
    )
    g.add_argument("--records", default=100, type=int, help="records (topics), default 100")
    g.add_argument(
        "--per-record", default=0, type=int, help="observers per record (0 = every observer)"
    )
    g.add_argument(
        "--op", default=["inc"], type=_strs, help="inc (x-inc /n) or replace (/f, --payload chars)"
    )
    g.add_argument(
        "--write",
        default=["patch"],
        type=_strs,
        help="patch = CALL sync.patch; publish = PUBLISH {ops} with acknowledge; "
        "publish-retain = the same with retain (list)",
    )
    g.add_argument("--topic-prefix", default="bench.rec.", help="record topics: PREFIX0..")
    g.add_argument("--api-prefix", default="sync.", help="the router's data-sync API prefix")
    g = p.add_argument_group("run control")
    g.add_argument(
        "--payload", type=int, default=None, help="payload string length (rpc 32, fanout 64)"
    )
    g.add_argument("--duration", default=5.0, type=float, help="measured seconds")
    g.add_argument(
        "--warmup", default=None, type=float, help="warm-up seconds (default min(1, duration))"
    )
    g.add_argument("--procs", default=0, type=int, help="client processes (0 = auto)")
    g.add_argument("--setup-timeout", default=120.0, type=float)
    g.add_argument("--zero-mask", action="store_true", help="WebSocket mask key 0 (cheaper client)")
    p.add_argument("--router-pid", default="", help="PID[,PID] of the router to sample CPU/RSS")
    p.add_argument("--label", default="", help="free text stored in each record (e.g. router name)")
    p.add_argument(
        "--out", default=DEFAULT_OUT, help=f"JSON-lines file to append to ({DEFAULT_OUT})"
    )
    p.add_argument("--quiet", action="store_true", help="no markdown table on stdout")
    return p.parse_args(argv)


def build_cases(a: argparse.Namespace) -> list[dict[str, Any]]:
    t = Target.from_url(a.url) if a.url else Target.from_hostport(a.rawsocket)
    base = {
        "workload": a.workload,
        "target": {"kind": t.kind, "host": t.host, "port": t.port, "path": t.path},
        "realm": a.realm,
        "procs": a.procs,
        "warmup": a.warmup if a.warmup is not None else min(1.0, a.duration),
        "duration": a.duration,
        "setup_timeout": a.setup_timeout,
        "router_pids": [int(x) for x in a.router_pid.split(",") if x.strip()],
        "label": a.label,
    }
    common: dict[str, Any] = {"zero_mask": a.zero_mask}
    if a.workload in ("rpc", "echo"):
        specs = [
            dict(common, callers=c, inflight=a.inflight, shared=s, payload=a.payload or 32)
            for c, s in itertools.product(a.callers, a.shared)
        ]
    elif a.workload == "fanout":
        specs = [
            dict(common, subscribers=n, window=a.window, payload=a.payload or 64)
            for n in a.subscribers
        ]
    elif a.workload == "sync":
        specs = [
            dict(
                common,
                writers=w,
                observers=o,
                records=a.records,
                per_record=min(a.per_record or o, o),
                op=op,
                write=wr,
                inflight=a.inflight,
                payload=a.payload or 32,
                topic_prefix=a.topic_prefix,
                api_prefix=a.api_prefix,
            )
            for wr, op, w, o in itertools.product(a.write, a.op, a.writers, a.observers)
        ]
    elif a.workload == "connect":
        specs = [dict(common, sessions=n, concurrency=a.concurrency) for n in a.sessions]
    else:
        raise ValueError(a.workload)
    sers = a.serializer if a.workload != "echo" else ["json"]
    return [dict(base, serializer=ser, spec=spec) for ser in sers for spec in specs]


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    cases = build_cases(a)
    records = []
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    for case in cases:
        rec = run_case(case)
        records.append(rec)
        if rec["status"] != "ok":
            print(
                f"{rec['status'].upper()}: {rec['workload']} {rec['params']}: {rec.get('reason')}",
                file=sys.stderr,
            )
        for w in rec.get("warnings", []):
            print(f"WARNING: {rec['workload']} {rec['params']}: {w}", file=sys.stderr)
        if a.out:
            with open(a.out, "a") as f:
                f.write(json.dumps(rec) + "\n")
    if not a.quiet:
        print(markdown_runs(records))
    failed_checks = [r for r in records if not r.get("check", {}).get("ok", True)]
    for r in failed_checks:
        print(
            f"\n*** DATA-SYNC CHECK FAILED: {r['workload']} {r['params']}:\n"
            f"***   {r['check']['problems']}\n***   examples: {r['check']['examples']}",
            file=sys.stderr,
        )
    return 1 if failed_checks or any(r["status"] == "error" for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
