"""The router process as a user runs it: Twisted clients, Unix sockets,
--check-config, graceful shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from .clients import close, join
from .rawclient import RsPeer, WsPeer
from .router_process import ROOT, RouterProcess, interop_config, run_router


@pytest.mark.parametrize("transport,serializer", [
    ("ws", "json"), ("ws", "msgpack"), ("ws", "cbor"), ("rs", "json"), ("rs", "msgpack"),
])
def test_twisted_client(router: RouterProcess, transport: str, serializer: str) -> None:
    url = router.ws_url if transport == "ws" else f"rs://127.0.0.1:{router.raw_port}"
    out = subprocess.run([sys.executable, str(Path(__file__).with_name("twisted_client.py")),
                          url, serializer], capture_output=True, text=True, timeout=60)
    assert "OK anonymous" in out.stdout, out.stdout + out.stderr


def test_unix_socket_rawsocket() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sock = os.path.join(tmp, "wamp.sock")
        with run_router(interop_config(unix_path=sock), expect_listeners=3) as rp:
            assert any(a.startswith("unix:") for a in rp.raw_addrs)
            peer = RsPeer(0, unix=sock, serializer=2)
            assert peer.hello()[0] == 2

            async def scenario() -> None:
                s = await join(f"unix://{sock}", serializer="cbor")
                await s.register(lambda: "over unix", "com.example.unix")
                other = await join(rp.ws_url)
                assert await other.call("com.example.unix") == "over unix"
                await close(s, other)

            asyncio.run(scenario())


def test_sigterm_sends_goodbye_system_shutdown() -> None:
    with run_router(interop_config()) as rp:
        ws = WsPeer(rp.ws_port)
        assert ws.hello()[0] == 2
        raw = RsPeer(rp.raw_port, serializer=2)
        assert raw.hello()[0] == 2
        rp.proc.send_signal(signal.SIGTERM)
        for peer in (ws, raw):
            goodbye = peer.recv()
            assert goodbye[0] == 6 and goodbye[2] == "wamp.close.system_shutdown", goodbye
        ws.send([6, {}, "wamp.close.goodbye_and_out"])
        raw.send([6, {}, "wamp.close.goodbye_and_out"])
        assert rp.proc.wait(10) == 0
        assert "router stopped" in rp.output()


def test_sigint_also_shuts_down_gracefully() -> None:
    with run_router(interop_config()) as rp:
        ws = WsPeer(rp.ws_port)
        assert ws.hello()[0] == 2
        rp.proc.send_signal(signal.SIGINT)
        assert ws.recv()[2] == "wamp.close.system_shutdown"
        # no GOODBYE reply: the router still exits after its grace period
        assert rp.proc.wait(15) == 0


def check_config(path: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wamp_router", "--check-config", path],
                          capture_output=True, text=True, timeout=30, cwd=ROOT)


@pytest.mark.parametrize("name", ["default.toml", "interop.toml"])
def test_check_config_accepts_shipped_configs(name: str) -> None:
    out = check_config(str(ROOT / "realms" / name))
    assert out.returncode == 0, out.stderr
    assert "ok" in out.stdout


def test_bad_config_is_refused_with_file_path_and_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(interop_config().replace('uri = "com.example."', 'uri = "com..example."'))
    out = check_config(str(bad))
    assert out.returncode == 2
    assert str(bad) in out.stderr
    assert "realms[1].roles[0].permissions[0].uri" in out.stderr
    run = subprocess.run([sys.executable, "-m", "wamp_router", "--config", str(bad)],
                         capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert run.returncode == 2 and "realms[1].roles[0].permissions[0].uri" in run.stderr


def test_port_in_use_is_a_clear_startup_error() -> None:
    with run_router(interop_config()) as rp:
        clash = interop_config().replace(
            'endpoint = "127.0.0.1:0"', f'endpoint = "127.0.0.1:{rp.ws_port}"', 1)
        with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
            f.write(clash)
        try:
            out = subprocess.run([sys.executable, "-m", "wamp_router", "--config", f.name],
                                 capture_output=True, text=True, timeout=30, cwd=ROOT)
        finally:
            os.unlink(f.name)
        assert out.returncode == 1
        assert "cannot start" in out.stderr and "ddress already in use" in out.stderr
