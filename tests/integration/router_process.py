"""Run the router as a real subprocess on free ports, for integration tests.

The router prints one ``listening transport=... address=...`` line per
listener; we read the ports from those lines. The process is always stopped
(terminate, then kill) when the context exits, also when a test fails.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_LISTEN = re.compile(r"listening transport=(\w+) address=(\S+)")


@dataclass
class RouterProcess:
    proc: subprocess.Popen[str]
    ws_urls: list[str] = field(default_factory=list)
    raw_addrs: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    metrics_url: str = ""
    config_path: str = ""

    @property
    def ws_url(self) -> str:
        return self.ws_urls[0]

    @property
    def ws_port(self) -> int:
        return int(self.ws_url.rsplit(":", 1)[1].split("/")[0])

    @property
    def raw_port(self) -> int:
        return int(self.raw_addrs[0].rsplit(":", 1)[1])

    @property
    def raw_url(self) -> str:
        return f"rs://127.0.0.1:{self.raw_port}"

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, fragment: str, timeout: float = 10) -> str:
        """The first output line containing ``fragment`` (waits for it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if fragment in line:
                    return line
            time.sleep(0.02)
        raise AssertionError(f"no line with {fragment!r} in the router output:\n{self.output()}")


def interop_config(unix_path: str | None = None) -> str:
    text = (ROOT / "realms" / "interop.toml").read_text()
    text = text.replace("127.0.0.1:8080", "127.0.0.1:0").replace("127.0.0.1:8081", "127.0.0.1:0")
    if unix_path:
        text = f'[[listeners]]\ntransport = "rawsocket"\nendpoint = "unix:{unix_path}"\n\n' + text
    return text


def _reader(rp: RouterProcess) -> None:
    assert rp.proc.stdout is not None
    for line in rp.proc.stdout:
        rp.lines.append(line.rstrip("\n"))


@contextmanager
def run_router(config_text: str, *, expect_listeners: int = 2,
               extra_args: tuple[str, ...] = ()) -> Iterator[RouterProcess]:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "router.toml")
        Path(path).write_text(config_text)
        proc = subprocess.Popen(
            [sys.executable, "-m", "wamp_router", "--config", path, *extra_args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
        )
        rp = RouterProcess(proc, config_path=path)
        threading.Thread(target=_reader, args=(rp,), daemon=True).start()
        try:
            _wait_listening(rp, expect_listeners)
            yield rp
        finally:
            stop(rp)


def _wait_listening(rp: RouterProcess, n: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = [m for line in list(rp.lines) if (m := _LISTEN.search(line))]
        if len(found) >= n:
            for m in found:
                if m.group(1) == "metrics":
                    rp.metrics_url = m.group(2)
                else:
                    (rp.ws_urls if m.group(1) == "websocket" else rp.raw_addrs).append(m.group(2))
            return
        if rp.proc.poll() is not None:
            time.sleep(0.2)
            raise RuntimeError(f"router exited with {rp.proc.returncode}:\n{rp.output()}")
        time.sleep(0.02)
    raise RuntimeError(f"router did not start listening:\n{rp.output()}")


def stop(rp: RouterProcess) -> None:
    if rp.proc.poll() is None:
        rp.proc.terminate()
        try:
            rp.proc.wait(10)
        except subprocess.TimeoutExpired:
            rp.proc.kill()
            rp.proc.wait(5)
