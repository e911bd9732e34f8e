"""autobahn-js with transports [websocket, longpoll] falls back to long-poll
when the WebSocket is refused, and works with a WebSocket peer."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from .rawclient import WsPeer
from .router_process import ROOT, run_router
from .test_longpoll import CONFIG

JS = ROOT / "interop" / "longpoll-js"


@pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None,
                    reason="autobahn-js long-poll fallback needs Node.js and npm on PATH")
def test_autobahn_js_falls_back_to_longpoll() -> None:
    if not (JS / "node_modules").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=JS,
                       check=True, timeout=300)
    with run_router(CONFIG, expect_listeners=1) as rp:
        peer = WsPeer(rp.ws_port)
        assert peer.hello()[0] == 2
        peer.send([64, 1, {}, "com.example.peer.echo"])
        assert peer.recv()[0] == 65
        stop = threading.Event()

        def serve() -> None:  # answer the echo procedure while the JS client runs
            peer.sock.settimeout(0.5)
            while not stop.is_set():
                try:
                    msg = peer.recv()
                except (TimeoutError, OSError):
                    continue
                if msg[0] == 68:
                    peer.send([70, msg[1], {}, msg[4]])

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            out = subprocess.run(["node", str(Path(JS / "fallback.js")),
                                  f"127.0.0.1:{rp.ws_port}"], capture_output=True, text=True,
                                 timeout=60)
        finally:
            stop.set()
            thread.join(5)
        assert out.returncode == 0 and "PASS transport=longpoll" in out.stdout, (
            out.stdout + out.stderr + rp.output())
