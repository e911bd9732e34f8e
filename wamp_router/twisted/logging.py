"""Log output: one line per event, ``TIME LEVEL message``, to stdout.
Peer errors are logged as one line each, never with a traceback."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    formatEvent,
    globalLogBeginner,
)


def _observer(event: dict[str, Any]) -> None:
    stamp = datetime.fromtimestamp(event.get("log_time", 0), UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    level = event.get("log_level", LogLevel.info).name
    text = formatEvent(event)
    failure = event.get("log_failure")
    if failure is not None:
        text += "\n" + failure.getTraceback()
    sys.stdout.write(f"{stamp[:-3]}Z {level:<5} {text}\n")
    sys.stdout.flush()


def start_logging(level: str) -> None:
    predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.levelWithName(level))
    observer: Any = FilteringLogObserver(_observer, [predicate])  # type: ignore[arg-type, list-item]
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
