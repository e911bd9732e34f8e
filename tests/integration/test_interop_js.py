"""Interop with autobahn-js (Node): runs ``interop/run.py`` end to end.

run.py installs interop/js (``npm ci``) if needed, starts the router on free ports, the
autobahn-python peer and the autobahn-js driver, and exits 0 only if no scenario FAILed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

RUN_PY = Path(__file__).resolve().parents[2] / "interop" / "run.py"
TIMEOUT = 180


@pytest.mark.timeout(TIMEOUT + 30)
def test_autobahn_js_interop() -> None:
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"autobahn-js interop needs Node.js: {' and '.join(missing)} not on PATH")

    # its own process group, so that on a timeout run.py's children (router, peer, node)
    # go down with it
    proc = subprocess.Popen(
        [sys.executable, str(RUN_PY)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, encoding="utf-8", errors="replace", start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            output, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
        pytest.fail(f"interop/run.py did not finish within {TIMEOUT}s; output:\n{output}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    assert proc.returncode == 0, f"interop/run.py exited {proc.returncode}:\n{output}"
