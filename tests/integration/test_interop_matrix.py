"""The interop matrix: every client stack of interop/matrix.py against this router.

``python interop/matrix.py --no-write`` installs/builds what is missing (npm ci, a pip
venv under ~/.cache/wamp-router-interop, go build, mvn package, cargo build; a stack whose toolchain
is missing is reported as SKIP by the matrix itself), starts the router from
realms/interop.toml on free ports with the autobahn-python peer, runs the scenarios over
every transport/serializer each stack supports, and exits 0 only if nothing FAILed.
interop/RESULTS.md is not rewritten here (``--no-write``): run the command by hand for that.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

MATRIX = Path(__file__).resolve().parents[2] / "interop" / "matrix.py"
TIMEOUT = 900  # the first run on a new machine also installs and builds every stack


@pytest.mark.timeout(TIMEOUT + 30)
def test_interop_matrix() -> None:
    if shutil.which("node") is None:
        pytest.skip("the interop matrix needs Node.js (autobahn-js, wampy.js): node not on PATH")
    missing = [t for t in ("go", "mvn", "java") if shutil.which(t) is None]
    # stacks without their toolchain are SKIPped by matrix.py itself; say so here too
    if missing:
        print(f"note: {', '.join(missing)} not on PATH: those stacks are reported as SKIP")
    proc = subprocess.Popen(
        [sys.executable, str(MATRIX), "--no-write"],
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
        pytest.fail(f"interop/matrix.py did not finish within {TIMEOUT}s; output:\n{output}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, f"interop/matrix.py exited {proc.returncode}:\n{output[-20000:]}"
