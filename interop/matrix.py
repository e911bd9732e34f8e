#!/usr/bin/env python3
"""The interop matrix: every WAMP client stack against one router, one table.

    python interop/matrix.py                    # against this checkout's router
    python interop/matrix.py --router crossbar  # the same against Crossbar.io (PyPI)
    python interop/matrix.py --router both

1. installs / builds every client stack that is missing or out of date (npm ci, a pip
   venv under ~/.cache/wamp-router-interop, go build, mvn package, cargo build); a stack
   whose toolchain is missing is reported as SKIP with the reason;
2. starts the router (``sys.executable -m wamp_router`` with a copy of
   realms/interop.toml on free ports, or Crossbar.io with an equivalent node config)
   and the autobahn-python peer (interop/python_peer.py);
3. runs the autobahn-js driver (interop/js/driver.js) and, through each stack's adapter,
   the common scenarios of interop/scenarios.py, over every transport and serializer the
   stack supports;
4. prints a scenario x client table of PASS/FAIL/SKIP, writes interop/RESULTS.md (the
   section of the router it ran against), and exits 1 if anything FAILed (2 if the setup
   failed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run as js_run  # noqa: E402  (interop/run.py: router/peer helpers, autobahn-js)
import scenarios  # noqa: E402
from run import Child, SetupError  # noqa: E402

REPO = HERE.parent
CACHE = Path(os.environ.get("WAMP_INTEROP_CACHE", Path.home() / ".cache" / "wamp-router-interop"))
PY_VENV = CACHE / "py-clients"
CROSSBAR_VENV_REUSE = Path.home() / ".cache" / "wamp-router-bench" / "crossbar-venv"
CROSSBAR_VENV = CACHE / "crossbar-venv"
CROSSBAR_VERSION = "26.10.1"
RESULTS = HERE / "RESULTS.md"
SHORT = {"websocket": "ws", "rawsocket": "rs"}


def say(*parts: Any) -> None:
    print("matrix:", *parts, file=sys.stderr, flush=True)


def sh(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None,
       timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=dict(os.environ, **(env or {})),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)


def digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        if p.is_file():
            h.update(str(p.relative_to(HERE)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def stamped(name: str, sources: list[Path], build: Callable[[], None],
            outputs: list[Path]) -> None:
    """Run build() unless the sources are unchanged since the last good build."""
    stamp = CACHE / f"{name}.stamp"
    want = digest(sources)
    if all(p.exists() for p in outputs) and stamp.exists() and stamp.read_text() == want:
        return
    build()
    CACHE.mkdir(parents=True, exist_ok=True)
    stamp.write_text(want)


def need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise SetupError(f"{' and '.join(missing)} not on PATH")


def check(res: subprocess.CompletedProcess[str], what: str) -> None:
    if res.returncode != 0:
        raise SetupError(f"{what} failed ({res.returncode}):\n{res.stdout[-3000:]}\n"
                         f"{res.stderr[-3000:]}")


# --------------------------------------------------------------------------------------
# client stacks
# --------------------------------------------------------------------------------------


@dataclass
class Stack:
    name: str
    install: Callable[[bool], None]  # install(offline_ok) raises SetupError
    command: Callable[[], list[str]]
    cwd: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    js_driver: bool = False


def install_npm(folder: Path) -> Callable[[bool], None]:
    def install(_: bool) -> None:
        need("node", "npm")
        lock = folder / "package-lock.json"
        mark = folder / "node_modules" / ".package-lock.json"
        if mark.exists() and mark.stat().st_mtime >= lock.stat().st_mtime:
            return
        say(f"npm ci in {folder.relative_to(REPO)}")
        if sh(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=folder).returncode:
            # npm 11 refuses `ci` when a dependency's optional platform packages are
            # missing from the lock file (wampy's cbor-extract); install from the lock
            say(f"npm install in {folder.relative_to(REPO)} (npm ci refused the lock file)")
            check(sh(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
                     cwd=folder), f"npm install in {folder}")
    return install


def py_venv_python() -> Path:
    return PY_VENV / "bin" / "python"


def install_py_clients(_: bool) -> None:
    req = HERE / "python" / "requirements.txt"

    def build() -> None:
        if not py_venv_python().exists():
            say(f"creating {PY_VENV}")
            check(sh([sys.executable, "-m", "venv", str(PY_VENV)]), "python -m venv")
        say("pip install -r interop/python/requirements.txt")
        check(sh([str(py_venv_python()), "-m", "pip", "install", "-q", "-r", str(req)]),
              "pip install")

    stamped("py-clients", [req], build, [py_venv_python()])


GO_BIN = CACHE / "bin" / "nexus-adapter"


def install_go(_: bool) -> None:
    need("go")
    src = HERE / "go"

    def build() -> None:
        say("go build interop/go")
        check(sh(["go", "build", "-o", str(GO_BIN), "."], cwd=src,
                 env={"GOFLAGS": "-mod=readonly"}), "go build")

    stamped("nexus", [*src.glob("*.go"), src / "go.mod", src / "go.sum"], build, [GO_BIN])


JAVA_TARGET = CACHE / "java-target"


def java_classpath_file() -> Path:
    return JAVA_TARGET / "classpath.txt"


def install_java(offline_ok: bool) -> None:
    need("java", "mvn")
    src = HERE / "java"

    def build() -> None:
        base = ["mvn", "-q", "-B", f"-Dinterop.build={JAVA_TARGET}", "package",
                "dependency:build-classpath", f"-Dmdep.outputFile={java_classpath_file()}"]
        say("mvn package in interop/java (offline first)")
        res = sh([*base[:1], "-o", *base[1:]], cwd=src)
        if res.returncode != 0:
            res = sh(base, cwd=src)
        check(res, "mvn package")

    stamped("autobahn-java", [*src.rglob("*.java"), src / "pom.xml"], build,
            [java_classpath_file(), JAVA_TARGET / "classes"])


def java_command() -> list[str]:
    cp = java_classpath_file().read_text().strip()
    return ["java", "-cp", f"{JAVA_TARGET / 'classes'}:{cp}", "interop.AutobahnJavaAdapter"]


RUST_TARGET = CACHE / "rust-target"
RUST_BIN = RUST_TARGET / "release" / "wamp-async-adapter"


def install_rust(_: bool) -> None:
    need("cargo")
    src = HERE / "rust"

    def build() -> None:
        say("cargo build --release in interop/rust (offline first)")
        env = {"CARGO_TARGET_DIR": str(RUST_TARGET)}
        res = sh(["cargo", "build", "--release", "--locked", "--offline", "-q"], cwd=src, env=env)
        if res.returncode != 0:
            res = sh(["cargo", "build", "--release", "--locked", "-q"], cwd=src, env=env)
        check(res, "cargo build")

    stamped("wamp_async", [*src.rglob("*.rs"), src / "Cargo.toml", src / "Cargo.lock"], build,
            [RUST_BIN])


STACKS: dict[str, Stack] = {
    s.name: s for s in [
        Stack("autobahn-js", install_npm(HERE / "js"), lambda: ["node", str(HERE / "js" / "driver.js")],
              cwd=HERE / "js", js_driver=True),
        Stack("autobahn-python-twisted", install_py_clients,
              lambda: [str(py_venv_python()), str(HERE / "python" / "autobahn_twisted_adapter.py")]),
        Stack("swampyer", install_py_clients,
              lambda: [str(py_venv_python()), str(HERE / "python" / "swampyer_adapter.py")]),
        Stack("wampy.js", install_npm(HERE / "wampy"),
              lambda: ["node", str(HERE / "wampy" / "adapter.js")], cwd=HERE / "wampy"),
        Stack("nexus", install_go, lambda: [str(GO_BIN)]),
        Stack("autobahn-java", install_java, java_command),
        Stack("wamp_async", install_rust, lambda: [str(RUST_BIN)]),
    ]
}


# --------------------------------------------------------------------------------------
# routers
# --------------------------------------------------------------------------------------


def start_ours(log_dir: Path, children: list[Child]) -> tuple[str, str, str]:
    config = log_dir / "interop-router.toml"
    js_run.write_config(config)
    router = Child("router", [sys.executable, "-m", "wamp_router", "--config", str(config)],
                   log_dir, cwd=REPO)
    children.append(router)
    return (*wait_listening(router), "wamp-router (this checkout)")


def wait_listening(router: Child) -> tuple[str, str]:
    def both(lines: list[str]) -> bool:
        kinds = {m.group(1) for m in map(js_run.LISTENING.search, lines) if m}
        return kinds >= {"websocket", "rawsocket"}

    lines = router.wait_for(both, 30, "'listening' lines for websocket and rawsocket")
    addrs = {m.group(1): m.group(2) for m in map(js_run.LISTENING.search, lines) if m}
    return addrs["websocket"], "rs://" + addrs["rawsocket"].split("://", 1)[1]


def crossbar_venv() -> Path:
    for venv in (CROSSBAR_VENV_REUSE, CROSSBAR_VENV):
        if (venv / "bin" / "crossbar").exists():
            res = sh([str(venv / "bin" / "python"), "-c",
                      "import crossbar, importlib.metadata as m; print(m.version('crossbar'))"])
            if res.returncode == 0:
                return venv
    say(f"installing crossbar=={CROSSBAR_VERSION} into {CROSSBAR_VENV} (once; minutes)")
    check(sh([sys.executable, "-m", "venv", str(CROSSBAR_VENV)]), "python -m venv")
    check(sh([str(CROSSBAR_VENV / "bin" / "pip"), "install", "-q",
              f"crossbar=={CROSSBAR_VERSION}"], timeout=1800), "pip install crossbar")
    return CROSSBAR_VENV


def crossbar_config(ws_port: int, rs_port: int) -> dict[str, Any]:
    """The Crossbar.io equivalent of realms/interop.toml."""
    allow = {"call": True, "register": True, "publish": True, "subscribe": True}
    auth = {
        "anonymous": {"type": "static", "role": "anonymous"},
        "ticket": {"type": "static", "principals": {
            "alice": {"ticket": "secret123", "role": "user"}}},
        "wampcra": {"type": "static", "users": {"bob": {"secret": "bobsecret", "role": "user"}}},
    }
    sers = ["json", "msgpack", "cbor"]

    def listener(kind: str, port: int) -> dict[str, Any]:
        t: dict[str, Any] = {"type": kind, "serializers": sers, "auth": auth,
                             "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": port}}
        if kind == "websocket":
            t["options"] = {"max_message_size": 16 * 1024 * 1024,
                            "max_frame_size": 16 * 1024 * 1024}
        else:
            t["options"] = {"max_message_size": 16 * 1024 * 1024}
        return t

    def perm(uri: str) -> dict[str, Any]:
        return {"uri": uri, "match": "prefix", "allow": allow,
                "disclose": {"caller": False, "publisher": False}, "cache": True}

    return {"version": 2, "controller": {}, "workers": [{
        "type": "router",
        "realms": [
            {"name": "realm1", "roles": [{"name": "anonymous", "permissions": [perm("")]}]},
            {"name": "realm2", "roles": [{"name": "user", "permissions": [perm("com.example.")]}]},
        ],
        "transports": [listener("websocket", ws_port), listener("rawsocket", rs_port)],
    }]}


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_crossbar(log_dir: Path, children: list[Child]) -> tuple[str, str, str]:
    venv = crossbar_venv()
    version = sh([str(venv / "bin" / "python"), "-c",
                  "import importlib.metadata as m; print(m.version('crossbar'))"]).stdout.strip()
    ws_port, rs_port = free_port(), free_port()
    cbdir = log_dir / "crossbar" / ".crossbar"
    cbdir.mkdir(parents=True, exist_ok=True)
    cfg = crossbar_config(ws_port, rs_port)
    (cbdir / "config.json").write_text(json.dumps(cfg, indent=2))
    router = Child("router", [str(venv / "bin" / "crossbar"), "start", "--cbdir", str(cbdir),
                              "--loglevel", "info"], log_dir, cwd=cbdir.parent)
    children.append(router)
    router.wait_for(lambda ls: any("NODE_BOOT_COMPLETE" in x for x in ls), 90,
                    "Crossbar.io's NODE_BOOT_COMPLETE line")
    return (f"ws://127.0.0.1:{ws_port}/ws", f"rs://127.0.0.1:{rs_port}",
            f"Crossbar.io {version}")


# --------------------------------------------------------------------------------------
# running the stacks
# --------------------------------------------------------------------------------------


def run_js_driver(stack: Stack, ws: str, rs: str, args: argparse.Namespace, log_dir: Path,
                  children: list[Child]) -> tuple[list[dict[str, Any]], str]:
    cmd = [*stack.command(), "--url", ws, "--rawsocket-url", rs, "--timeout", str(args.timeout),
           "--serializers", args.serializers]
    if args.scenarios:
        known = sh(["node", str(HERE / "js" / "driver.js"), "--list"]).stdout.split()
        wanted = [n for s in args.scenarios.split(",") for n in (s, f"{s}_js") if n in known]
        if not wanted:
            return [], "autobahn-js (no scenario selected)"
        cmd += ["--scenarios", ",".join(wanted)]
    driver = Child("autobahn-js", cmd, log_dir, cwd=stack.cwd, capture_stdout=False)
    children.append(driver)
    try:
        driver.proc.wait(args.driver_timeout)
    except subprocess.TimeoutExpired:
        say(f"autobahn-js driver did not finish within {args.driver_timeout}s")
    driver.stop()
    out = []
    for line in driver.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("{"):
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if isinstance(r, dict) and r.get("client") == "autobahn-js":
                name = r["scenario"]
                r["scenario"] = name[:-3] if name.endswith("_js") else name
                out.append(r)
    version = json.loads((HERE / "js" / "node_modules" / "autobahn" / "package.json")
                         .read_text())["version"]
    return out, f"autobahn-js {version} (Node {sh(['node', '--version']).stdout.strip()})"


def run_adapter(stack: Stack, ws: str, rs: str, args: argparse.Namespace,
                log_dir: Path) -> tuple[list[dict[str, Any]], str]:
    adapter = scenarios.Adapter(stack.name, stack.command(), log_dir / f"{stack.name}.log",
                                cwd=stack.cwd, env=stack.env)
    try:
        only = args.scenarios.split(",") if args.scenarios else None
        results = scenarios.run_all(
            adapter, {"websocket": ws, "rawsocket": rs}, args.serializers.split(","), only,
            args.timeout, emit=lambda r: progress(stack.name, r, args.verbose))
        for r in results:
            r["client"] = stack.name
        return results, str(adapter.hello.get("library", stack.name))
    finally:
        adapter.close()


def progress(name: str, r: dict[str, Any], verbose: bool) -> None:
    if verbose or r["result"] == "FAIL":
        say(f"{name} {SHORT[r['transport']]}/{r['serializer']} {r['scenario']}: {r['result']} "
            f"{r['detail'][:300] if r['result'] != 'PASS' else ''}")


def all_skipped(stack: str, reason: str) -> list[dict[str, Any]]:
    names = scenarios.SCENARIO_NAMES
    return [{"client": stack, "transport": "websocket", "serializer": "-", "scenario": n,
             "result": "SKIP", "detail": reason} for n in names]


# --------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------


def cell(rs: list[dict[str, Any]]) -> str:
    if not rs:
        return "-"
    fails = [r for r in rs if r["result"] == "FAIL"]
    if fails:
        where = ",".join(f"{SHORT.get(r['transport'], '?')}/{r['serializer']}" for r in fails)
        return f"FAIL ({where})"
    passed = [r for r in rs if r["result"] == "PASS"]
    if not passed:
        return "SKIP"
    if len(passed) < len(rs):
        return f"PASS {len(passed)}/{len(rs)}"
    return "PASS"


def table(results: list[dict[str, Any]], clients: list[str]) -> list[str]:
    ran = {r["scenario"] for r in results}
    rows = [sc for sc in scenarios.SCENARIO_NAMES if sc in ran]  # a missing one is reported below
    for r in results:
        if r["scenario"] not in rows:
            rows.append(r["scenario"])
    by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in results:
        by.setdefault((r["scenario"], r["client"]), []).append(r)
    out = ["| scenario | " + " | ".join(clients) + " |",
           "| --- | " + " | ".join("---" for _ in clients) + " |"]
    for sc in rows:
        cells = []
        for c in clients:
            rs = by.get((sc, c), [])
            if not rs and c != "autobahn-js" and sc.endswith("_py"):
                cells.append("n/a")
            elif not rs:
                cells.append("FAIL (no result)" if sc in scenarios.SCENARIO_NAMES else "n/a")
            else:
                cells.append(cell(rs))
        out.append(f"| {sc} | " + " | ".join(cells) + " |")
    return out


def missing_results(results: list[dict[str, Any]], clients: list[str]) -> list[str]:
    have = {(r["scenario"], r["client"]) for r in results}
    return [f"{c}: {sc}" for c in clients for sc in scenarios.SCENARIO_NAMES
            if (sc, c) not in have]


def cells_table(results: list[dict[str, Any]], client: str) -> list[str]:
    rs = [r for r in results if r["client"] == client]
    cols: list[tuple[str, str]] = []
    for r in rs:
        k = (r["transport"], r["serializer"])
        if k not in cols:
            cols.append(k)
    rows: list[str] = []
    for r in rs:
        if r["scenario"] not in rows:
            rows.append(r["scenario"])
    m = {(r["scenario"], r["transport"], r["serializer"]): r["result"] for r in rs}
    out = ["| scenario | " + " | ".join(f"{SHORT.get(t, t)}/{s}" for t, s in cols) + " |",
           "| --- | " + " | ".join("---" for _ in cols) + " |"]
    for sc in rows:
        out.append(f"| {sc} | " + " | ".join(m.get((sc, t, s), "-") for t, s in cols) + " |")
    return out


def reasons(results: list[dict[str, Any]], client: str, kind: str) -> list[str]:
    """One line per reason: SKIPs grouped by reason, FAILs by scenario (first detail)."""
    groups: dict[str, tuple[str, list[str], list[str]]] = {}  # key -> detail, names, cells
    for r in results:
        if r["client"] != client or r["result"] != kind:
            continue
        key = r["detail"] if kind == "SKIP" else r["scenario"]
        detail, names, cells = groups.setdefault(key, (r["detail"], [], []))
        names.append(r["scenario"])
        cells.append(f"{SHORT.get(r['transport'], '?')}/{r['serializer']}")
    out = []
    for key, (detail, names, cells) in groups.items():
        where = ", ".join(sorted(set(cells)))
        if kind == "SKIP":
            uniq = sorted(set(names))
            scope = "all scenarios" if len(uniq) == len(scenarios.SCENARIO_NAMES) else \
                ", ".join(uniq)
            out.append(f"- {scope} [{where}]: {detail}")
        else:
            out.append(f"- {key} [{where}]: {detail}")
    return out


def section(router: str, results: list[dict[str, Any]], clients: list[str],
            versions: dict[str, str], elapsed: float, setup: dict[str, str]) -> str:
    counts = {k: sum(1 for r in results if r["result"] == k) for k in ("PASS", "FAIL", "SKIP")}
    lines = [f"## {router}", "",
             f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {elapsed:.0f} s; "
             f"scenario runs: PASS {counts['PASS']}, FAIL {counts['FAIL']}, SKIP {counts['SKIP']}.",
             "", "Clients: " + "; ".join(f"{c}: {versions.get(c, '?')}" for c in clients), "",
             "A cell sums up every transport/serializer the client ran: PASS (all passed), "
             "PASS n/m (n passed, the rest SKIPped), FAIL (where), SKIP (nothing runnable), "
             "n/a (an autobahn-js-only scenario with the autobahn-python peer).", ""]
    lines += table(results, clients)
    for c in clients:
        lines += ["", f"### {c}", ""]
        if c in setup:
            lines += [f"Not run: {setup[c]}"]
            continue
        lines += cells_table(results, c)
        fails = reasons(results, c, "FAIL")
        skips = reasons(results, c, "SKIP")
        if fails:
            lines += ["", "FAIL:", ""] + fails
        if skips:
            lines += ["", "SKIP:", ""] + skips
    return "\n".join(lines) + "\n"


def write_results(router_key: str, text: str) -> None:
    start, end = f"<!-- matrix:{router_key} -->", f"<!-- /matrix:{router_key} -->"
    head = ("# Interop matrix results\n\nWritten by `python interop/matrix.py` "
            "(`--router crossbar` for Crossbar.io); each router's section is replaced by its "
            "latest run. See interop/README.md.\n\n")
    old = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else head
    block = f"{start}\n{text}{end}\n"
    if start in old and end in old:
        a, b = old.index(start), old.index(end) + len(end)
        new = old[:a] + block.rstrip("\n") + old[b:]
    else:
        new = old.rstrip("\n") + "\n\n" + block
    if not new.startswith("# Interop"):
        new = head + new
    RESULTS.write_text(with_differences(new), encoding="utf-8")


def summary_rows(text: str, key: str) -> tuple[list[str], dict[str, list[str]]]:
    """The clients and rows of one router's summary table in RESULTS.md."""
    start, end = f"<!-- matrix:{key} -->", f"<!-- /matrix:{key} -->"
    if start not in text or end not in text:
        return [], {}
    clients: list[str] = []
    rows: dict[str, list[str]] = {}
    for line in text[text.index(start):text.index(end)].splitlines():
        if line.startswith("### "):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| scenario |"):
            clients = cells[1:]
        elif line.startswith("| ") and clients and not line.startswith("| ---"):
            rows[cells[0]] = cells[1:]
    return clients, rows


def with_differences(text: str) -> str:
    """(Re)write the section comparing the two routers' summary tables."""
    start, end = "<!-- matrix:differences -->", "<!-- /matrix:differences -->"
    if start in text and end in text:
        text = (text[:text.index(start)] + text[text.index(end) + len(end):]).rstrip("\n")
        text += "\n"
    c1, ours = summary_rows(text, "ours")
    c2, theirs = summary_rows(text, "crossbar")
    if not ours or not theirs:
        return text
    clients = [c for c in c1 if c in c2]
    lines = ["## Differences: wamp-router / Crossbar.io", "",
             "Every scenario whose cell differs for some client between the two sections "
             "(ours / Crossbar's); see each section for the details.", "",
             "| scenario | " + " | ".join(clients) + " |",
             "| --- | " + " | ".join("---" for _ in clients) + " |"]
    for sc, cells in ours.items():
        other = theirs.get(sc)
        if other is None:
            continue
        a = dict(zip(c1, cells, strict=False))
        b = dict(zip(c2, other, strict=False))
        if all(a.get(c) == b.get(c) for c in clients):
            continue
        row = [f"{a.get(c)} / {b.get(c)}" if a.get(c) != b.get(c) else "=" for c in clients]
        lines.append(f"| {sc} | " + " | ".join(row) + " |")
    block = "\n".join(lines)
    return f"{text.rstrip()}\n\n{start}\n{block}\n{end}\n"


# --------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------


def install_all(clients: list[str]) -> dict[str, str]:
    """Install/build every stack; return {stack: why it cannot run} for the failures."""
    setup: dict[str, str] = {}
    for c in clients:
        try:
            STACKS[c].install(True)
            if c != "autobahn-js":
                STACKS[c].command()  # e.g. a missing classpath file
        except (SetupError, OSError, subprocess.TimeoutExpired) as e:
            setup[c] = str(e).splitlines()[0] if str(e) else repr(e)
            say(f"{c}: not runnable: {e}")
    install_py_clients(True)  # the python peer runs there
    return setup


def run_stack(c: str, ws: str, rs: str, args: argparse.Namespace, log_dir: Path,
              children: list[Child], setup: dict[str, str],
              versions: dict[str, str]) -> list[dict[str, Any]]:
    if c in setup:
        return all_skipped(c, f"not runnable here: {setup[c]}")
    t1 = time.monotonic()
    stack = STACKS[c]
    try:
        if stack.js_driver:
            rs_, versions[c] = run_js_driver(stack, ws, rs, args, log_dir, children)
        else:
            rs_, versions[c] = run_adapter(stack, ws, rs, args, log_dir)
    except scenarios.AdapterError as e:
        setup[c] = str(e)
        rs_ = all_skipped(c, str(e))
        for r in rs_:
            r["result"] = "FAIL"
    say(f"{c}: {time.monotonic() - t1:.0f}s")
    with open(log_dir / "results.jsonl", "a", encoding="utf-8") as f:
        for r in rs_:
            f.write(json.dumps(r) + "\n")
    return rs_


def run_router(router_key: str, args: argparse.Namespace, log_dir: Path) -> int:
    clients = [c for c in args.clients.split(",") if c]
    unknown = [c for c in clients if c not in STACKS]
    if unknown:
        raise SetupError(f"unknown client(s) {unknown}; known: {', '.join(STACKS)}")
    t0 = time.monotonic()
    setup = install_all(clients)
    children: list[Child] = []
    results: list[dict[str, Any]] = []
    versions: dict[str, str] = {}
    try:
        ws, rs, router_name = (start_crossbar if router_key == "crossbar" else start_ours)(
            log_dir, children)
        say(f"{router_name}: {ws} {rs}")
        peer = Child("python_peer", [str(py_venv_python()), str(HERE / "python_peer.py"),
                                     "--url", ws], log_dir)
        children.append(peer)
        peer.wait_for(lambda ls: "READY" in ls, 30, "READY")
        for c in clients:
            results += run_stack(c, ws, rs, args, log_dir, children, setup, versions)
    finally:
        for ch in reversed(children):
            try:
                ch.stop()
            except Exception as exc:
                say(f"stopping {ch.name}: {exc!r}")
    return report(router_key, router_name, args, results, clients, versions,
                  time.monotonic() - t0, setup)


def report(router_key: str, router_name: str, args: argparse.Namespace,
           results: list[dict[str, Any]], clients: list[str], versions: dict[str, str],
           elapsed: float, setup: dict[str, str]) -> int:
    title = f"Against {router_name}"
    print(f"\n{title}\n")
    for line in table(results, clients):
        print(line)
    for c in clients:
        for line in reasons(results, c, "FAIL"):
            print(f"FAIL {c}: {line[2:]}")
    missing = [] if args.scenarios else missing_results(results, clients)
    counts = {k: sum(1 for r in results if r["result"] == k) for k in ("PASS", "FAIL", "SKIP")}
    print(f"\n{router_name}: PASS={counts['PASS']} FAIL={counts['FAIL']} SKIP={counts['SKIP']} "
          f"in {elapsed:.0f}s" + (f"; no result for {missing}" if missing else ""))
    if not args.no_write and not args.scenarios and clients == list(STACKS):
        write_results(router_key, section(title, results, clients, versions, elapsed, setup))
    return 1 if (counts["FAIL"] or missing) else 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="WAMP interop matrix")
    p.add_argument("--router", choices=("ours", "crossbar", "both"), default="ours")
    p.add_argument("--clients", default=",".join(STACKS),
                   help=f"comma separated (default: all: {','.join(STACKS)}); with a subset "
                        "RESULTS.md is not written")
    p.add_argument("--scenarios", default=None,
                   help="comma separated subset (then RESULTS.md is not written)")
    p.add_argument("--serializers", default="json,msgpack,cbor")
    p.add_argument("--timeout", type=float, default=10.0, help="per-step timeout, seconds")
    p.add_argument("--driver-timeout", type=float, default=240.0,
                   help="time limit for the autobahn-js driver, seconds")
    p.add_argument("--log-dir", default=None, help="keep the logs here")
    p.add_argument("--no-write", action="store_true", help="do not write interop/RESULTS.md")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def on_signal(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    routers = ["ours", "crossbar"] if args.router == "both" else [args.router]
    code = 0
    try:
        for rk in routers:
            if args.log_dir:
                d = Path(args.log_dir) / rk
                d.mkdir(parents=True, exist_ok=True)
                code = max(code, run_router(rk, args, d))
            else:
                with tempfile.TemporaryDirectory(prefix=f"wamp-matrix-{rk}-") as tmp:
                    code = max(code, run_router(rk, args, Path(tmp)))
    except SetupError as exc:
        print(f"matrix.py: setup failed: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
