"""A throw-away ``redis-server`` on a free loopback port for the cluster tests
(no persistence unless asked: an append-only file in a temporary directory;
always stopped, also when a test fails)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RedisServer:
    port: int
    proc: subprocess.Popen[bytes] | None = None
    workdir: str = ""
    persist: bool = False  # appendonly: a restart keeps the data
    extra: tuple[str, ...] = ()  # more redis-server options (TLS, a Unix socket, ACL users)
    password: str | None = None  # requirepass: the tests' own commands authenticate

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not found: the cluster tests need it "
                               "(scripts/test installs it: apt-get install redis-server)")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes" if self.persist else "no", "--appendfsync", "always",
             "--dir", self.workdir, "--loglevel", "warning",
             *(("--requirepass", self.password) if self.password else ()), *self.extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(self._auth() + b"PING\r\n")
                    time.sleep(0.02)
                    if b"+PONG" in s.recv(64):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def command(self, *args: str) -> bytes:
        """One command over a plain socket (test assertions on Redis state)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(self._auth() + _encode(args))
            time.sleep(0.05)
            reply = s.recv(65536)
            return reply[5:] if self.password else reply  # (without AUTH's "+OK\r\n")

    def _auth(self) -> bytes:
        return _encode(("AUTH", self.password)) if self.password else b""


def _encode(args: tuple[str, ...]) -> bytes:
    payload = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
    return payload.encode()


@contextmanager
def redis_server(persist: bool = False, extra: tuple[str, ...] = (),
                 password: str | None = None) -> Iterator[RedisServer]:
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(free_port(), workdir=tmp, persist=persist, extra=extra,
                             password=password)
        server.start()
        try:
            yield server
        finally:
            server.stop()
