"""``wamp-router --workers N``: N router processes on one machine, sharing the
listening ports (SO_REUSEPORT: the kernel spreads new connections over them)
and one realm through the cluster backplane. This process only supervises:
it starts the workers, passes SIGHUP (reload) and SIGTERM/SIGINT (stop) on to
them, and starts a worker again when it dies."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any

RESTART_DELAY = 1.0  # seconds before a dead worker is started again
STOP_GRACE = 10.0  # seconds the workers get to stop before they are killed


class Supervisor:
    def __init__(self, count: int, config_path: str, argv_tail: list[str]) -> None:
        self.config_path = config_path
        self.argv_tail = argv_tail
        self.stopping = False
        self.workers = {i: self._spawn(i) for i in range(count)}

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, "-m", "wamp_router", "--config",
                                 self.config_path, "--worker-index", str(index),
                                 *self.argv_tail])
        print(f"wamp-router: worker {index} started pid={proc.pid}", flush=True)
        return proc

    def _signal_all(self, signum: int) -> None:
        for proc in self.workers.values():
            if proc.poll() is None:
                proc.send_signal(signum)

    def stop(self, signum: int, frame: Any) -> None:
        self.stopping = True
        self._signal_all(signal.SIGTERM)

    def reload(self, signum: int, frame: Any) -> None:
        self._signal_all(signal.SIGHUP)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, self.reload)
        while not self.stopping:
            self._restart_dead()
            time.sleep(0.1)
        deadline = time.monotonic() + STOP_GRACE
        for proc in self.workers.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        print("wamp-router: all workers stopped", flush=True)
        return 0

    def _restart_dead(self) -> None:
        for index, proc in list(self.workers.items()):
            code = proc.poll()
            if code is None or self.stopping:
                continue
            print(f"wamp-router: worker {index} (pid {proc.pid}) exited with {code}; "
                  f"starting it again in {RESTART_DELAY:g} s", flush=True)
            time.sleep(RESTART_DELAY)
            if not self.stopping:
                self.workers[index] = self._spawn(index)


def supervise(count: int, config_path: str, argv_tail: list[str]) -> int:
    return Supervisor(count, config_path, argv_tail).run()
