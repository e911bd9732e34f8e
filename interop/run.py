#!/usr/bin/env python3
"""Run the autobahn-js interop suite against wamp-router, end to end.

    python interop/run.py

1. `npm ci` in interop/js if its node_modules is missing;
2. starts `wamp-router --config <copy of realms/interop.toml on free ports>`;
3. starts the autobahn-python peer (interop/python_peer.py) and waits for READY;
4. runs the autobahn-js driver (interop/js/driver.js) over WebSocket (json, msgpack,
   cbor) and RawSocket;
5. prints a scenario x transport/serializer table of PASS/FAIL/SKIP, stops everything,
   and exits 1 if anything FAILed (2 if the setup itself failed).

Every child process is stopped in a `finally` (terminate, then kill after a timeout).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, TextIO

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
JS_DIR = HERE / "js"
CONFIG = REPO / "realms" / "interop.toml"

LISTENING = re.compile(r"\blistening transport=(\w+) address=(\S+)")
ENDPOINT = re.compile(r'^(\s*endpoint\s*=\s*)"[^"]*"', re.MULTILINE)
COLUMNS = [(t, s) for t in ("websocket", "rawsocket") for s in ("json", "msgpack", "cbor")]
SHORT = {"websocket": "ws", "rawsocket": "rs"}


class SetupError(Exception):
    pass


def say(*parts: Any) -> None:
    print("run.py:", *parts, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------
# child processes
# --------------------------------------------------------------------------------------


class Child:
    """A subprocess whose stdout lines are read by a thread (kept, and matched by
    wait_for) and whose stderr goes to a log file."""

    def __init__(self, name: str, cmd: list[str], log_dir: Path, cwd: Path | None = None,
                 capture_stdout: bool = True) -> None:
        self.name = name
        self.cmd = cmd
        self.log_path = log_dir / f"{name}.log"
        self._log: TextIO = open(self.log_path, "w", encoding="utf-8")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture_stdout else self._log,
            stderr=subprocess.STDOUT if capture_stdout else self._log,
            text=True, encoding="utf-8", errors="replace", bufsize=1,
        )
        self.lines: deque[str] = deque(maxlen=5000)
        self._cond = threading.Condition()
        self._eof = False
        self._reader: threading.Thread | None = None
        if capture_stdout:
            self._reader = threading.Thread(target=self._read, daemon=True)
            self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._log.write(line)
            self._log.flush()
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def wait_for(self, pred: Any, timeout: float, what: str) -> list[str]:
        """Wait until pred(list of lines so far) is true; return the lines."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                lines = list(self.lines)
                if pred(lines):
                    return lines
                if self._eof:
                    try:
                        code = self.proc.wait(5)
                    except subprocess.TimeoutExpired:
                        code = None
                    raise SetupError(f"{self.name} exited (code {code}) before {what}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SetupError(f"{self.name}: no {what} after {timeout:.0f}s")
                self._cond.wait(min(left, 0.5))

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                say(f"{self.name} did not stop after SIGTERM; killing it")
                self.proc.kill()
                self.proc.wait(timeout)
        if self._reader is not None:
            self._reader.join(2)
        self._log.close()

    def tail(self, n: int = 40) -> str:
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])


def router_command() -> list[str]:
    exe = Path(sys.executable).parent / "wamp-router"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("wamp-router")
    if found:
        return [found]
    return [sys.executable, "-m", "wamp_router"]


def write_config(dest: Path) -> str:
    """Copy realms/interop.toml with every endpoint on 127.0.0.1:0 (free ports)."""
    if not CONFIG.exists():
        raise SetupError(f"{CONFIG} is missing")
    text, n = ENDPOINT.subn(r'\g<1>"127.0.0.1:0"', CONFIG.read_text(encoding="utf-8"))
    if n < 2:
        raise SetupError(f"{CONFIG}: expected 2 listener endpoints, found {n}")
    source = str(CONFIG.relative_to(REPO)) if CONFIG.is_relative_to(REPO) else str(CONFIG)
    dest.write_text(text, encoding="utf-8")
    return source


def ensure_node_modules() -> None:
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise SetupError(f"{tool} is not on PATH")
    if (JS_DIR / "node_modules" / "autobahn" / "package.json").exists():
        return
    say("installing interop/js dependencies: npm ci --no-audit --no-fund")
    res = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=JS_DIR,
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    if res.returncode != 0:
        raise SetupError(f"npm ci failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")


# --------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------


def print_table(results: list[dict[str, Any]], out: TextIO) -> None:
    scenarios: list[str] = []
    cells: dict[tuple[str, str, str], str] = {}
    for r in results:
        if r["scenario"] not in scenarios:
            scenarios.append(r["scenario"])
        cells[(r["scenario"], r.get("transport", "websocket"), r["serializer"])] = r["result"]
    cols = [c for c in COLUMNS if any((s, *c) in cells for s in scenarios)]
    heads = [f"{SHORT[t]}/{s}" for t, s in cols]
    w0 = max([len("scenario")] + [len(s) for s in scenarios])
    widths = [max(len(h), 4) for h in heads]
    print("  ".join(["scenario".ljust(w0)] + [h.ljust(w) for h, w in zip(heads, widths, strict=True)]), file=out)
    print("  ".join(["-" * w0] + ["-" * w for w in widths]), file=out)
    for sc in scenarios:
        row = [sc.ljust(w0)]
        for (t, s), w in zip(cols, widths, strict=True):
            row.append(cells.get((sc, t, s), "-").ljust(w))
        print("  ".join(row).rstrip(), file=out)
    print("(ws = WebSocket, rs = RawSocket; columns are the autobahn-js serializer)", file=out)


def print_details(results: list[dict[str, Any]], out: TextIO) -> None:
    skips: dict[str, list[str]] = {}
    for r in results:
        if r["result"] == "SKIP":
            key = f"{SHORT.get(r.get('transport', ''), '?')}/{r['serializer']}"
            skips.setdefault(r["detail"], [])
            if key not in skips[r["detail"]]:
                skips[r["detail"]].append(key)
    if skips:
        print("\nSKIP reasons:", file=out)
        for reason, where in skips.items():
            print(f"  [{', '.join(where)}] {reason}", file=out)
    fails = [r for r in results if r["result"] == "FAIL"]
    if fails:
        print("\nFAIL details:", file=out)
        for r in fails:
            print(f"  {r['scenario']} {SHORT.get(r.get('transport', ''), '?')}/{r['serializer']}: "
                  f"{r['detail']}", file=out)
            for w in r.get("wire", []):
                print(f"      {w}", file=out)


# --------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="autobahn-js <-> wamp-router interop suite")
    p.add_argument("--serializers", default="json,msgpack,cbor",
                   help="autobahn-js serializers to test (default: json,msgpack,cbor)")
    p.add_argument("--scenarios", default=None, help="comma separated subset (default: all)")
    p.add_argument("--no-rawsocket", action="store_true",
                   help="test the WebSocket listener only")
    p.add_argument("--peer-transport", choices=("websocket", "rawsocket"), default="websocket",
                   help="how the python peer connects (default: websocket)")
    p.add_argument("--peer-serializer", choices=("json", "msgpack", "cbor"), default="json",
                   help="the python peer's serializer (default: json)")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="per-step timeout in the driver, seconds (default 10)")
    p.add_argument("--driver-timeout", type=float, default=150.0,
                   help="time limit for the whole driver run, seconds (default 150)")
    p.add_argument("--log-dir", default=None,
                   help="keep router/peer/driver logs here (default: a temp dir, removed)")
    return p.parse_args(argv)


def start_router(log_dir: Path, children: list[Child]) -> tuple[str, str]:
    """Start the router on free ports; return (ws://... url, rawsocket://... address)."""
    config = log_dir / "interop-router.toml"
    source = write_config(config)
    say(f"router config: {source} with endpoints on 127.0.0.1:0")
    router = Child("router", [*router_command(), "--config", str(config)], log_dir)
    children.append(router)

    def both(lines: list[str]) -> bool:
        kinds = {m.group(1) for m in map(LISTENING.search, lines) if m}
        return kinds >= {"websocket", "rawsocket"}

    lines = router.wait_for(both, 20, "'listening' lines for websocket and rawsocket")
    addrs = {m.group(1): m.group(2) for m in map(LISTENING.search, lines) if m}
    say(f"router: {addrs['websocket']} {addrs['rawsocket']}")
    return addrs["websocket"], addrs["rawsocket"]


def start_peer(args: argparse.Namespace, url: str, log_dir: Path, children: list[Child]) -> None:
    peer = Child("python_peer", [sys.executable, str(HERE / "python_peer.py"),
                                 "--url", url, "--serializer", args.peer_serializer], log_dir)
    children.append(peer)
    peer.wait_for(lambda ls: "READY" in ls, 20, "READY")
    say(f"python peer ready ({url}, {args.peer_serializer})")


def run_driver(args: argparse.Namespace, ws_url: str, rs_url: str, log_dir: Path,
               children: list[Child]) -> tuple[int | None, list[dict[str, Any]]]:
    """Run driver.js to completion; return (exit code or None on timeout, results)."""
    cmd = ["node", str(JS_DIR / "driver.js"), "--url", ws_url,
           "--serializers", args.serializers, "--timeout", str(args.timeout)]
    if not args.no_rawsocket:
        cmd += ["--rawsocket-url", rs_url]
    if args.scenarios:
        cmd += ["--scenarios", args.scenarios]
    # stdout and stderr both go to the log file; the JSON lines are picked out afterwards
    driver = Child("driver", cmd, log_dir, cwd=JS_DIR, capture_stdout=False)
    children.append(driver)
    code: int | None
    try:
        code = driver.proc.wait(args.driver_timeout)
    except subprocess.TimeoutExpired:
        code = None
    driver.stop()
    results: list[dict[str, Any]] = []
    for line in driver.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and obj.get("client") == "autobahn-js":
            results.append(obj)
    return code, results


def verdict(args: argparse.Namespace, code: int | None, results: list[dict[str, Any]],
            counts: dict[str, int]) -> str | None:
    """A problem with the run itself (not a scenario FAIL), or None."""
    if code is None:
        return f"driver did not finish within {args.driver_timeout:.0f}s"
    if code not in (0, 1):
        return f"driver exited with code {code}"
    if not results:
        return "driver reported no scenario"
    if (code == 1) != (counts["FAIL"] > 0):
        return f"driver exit code {code} does not match {counts['FAIL']} FAIL line(s)"
    return None


def run(args: argparse.Namespace, log_dir: Path) -> int:
    ensure_node_modules()
    children: list[Child] = []
    out = sys.stdout
    try:
        ws_url, rs_addr = start_router(log_dir, children)
        rs_url = "rs://" + rs_addr.split("://", 1)[1]
        start_peer(args, ws_url if args.peer_transport == "websocket" else rs_url,
                   log_dir, children)
        code, results = run_driver(args, ws_url, rs_url, log_dir, children)

        print(f"\nautobahn-js interop against wamp-router ({ws_url}, {rs_addr}); "
              f"python peer: {args.peer_transport}/{args.peer_serializer}\n", file=out)
        if results:
            print_table(results, out)
            print_details(results, out)
        counts = {k: sum(1 for r in results if r["result"] == k) for k in ("PASS", "FAIL", "SKIP")}
        print(f"\nautobahn-js interop: PASS={counts['PASS']} FAIL={counts['FAIL']} "
              f"SKIP={counts['SKIP']}", file=out)
        problem = verdict(args, code, results, counts)
        if problem:
            print(f"\nERROR: {problem}", file=out)
        if problem or counts["FAIL"]:
            for c in children:
                print(f"\n--- last lines of {c.name} log ---\n{c.tail()}", file=out)
            return 2 if problem else 1
        return 0
    except SetupError:
        for c in children:
            print(f"--- last lines of {c.name} log ---\n{c.tail()}", file=sys.stderr)
        raise
    finally:
        for c in reversed(children):
            try:
                c.stop()
            except Exception as exc:
                say(f"stopping {c.name}: {exc!r}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def on_signal(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    try:
        if args.log_dir:
            log_dir = Path(args.log_dir)
            log_dir.mkdir(parents=True, exist_ok=True)
            return run(args, log_dir)
        with tempfile.TemporaryDirectory(prefix="wamp-interop-") as tmp:
            return run(args, Path(tmp))
    except SetupError as exc:
        print(f"run.py: setup failed: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
