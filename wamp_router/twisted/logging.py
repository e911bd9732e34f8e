"""Log output: one line per event to stdout, ``TIME LEVEL message`` with
key=value pairs, or one JSON object per line (``--log-format json``).
Peer errors are logged as one line each, never with a traceback."""

from __future__ import annotations

import json
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


def _json_observer(event: dict[str, Any]) -> None:
    record: dict[str, Any] = {
        "time": datetime.fromtimestamp(event.get("log_time", 0), UTC).isoformat(),
        "level": event.get("log_level", LogLevel.info).name,
        "message": formatEvent(event),
    }
    for key, value in event.items():
        if not key.startswith("log_") and isinstance(value, str | int | float | bool):
            record[key] = value
    failure = event.get("log_failure")
    if failure is not None:
        record["traceback"] = failure.getTraceback()
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def start_logging(level: str, fmt: str = "text") -> None:
    predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.levelWithName(level))
    if level != "debug":  # (the backplane says itself when Redis is lost and back)
        predicate.setLogLevelForNamespace("twisted.application._client_service", LogLevel.warn)
    sink = _json_observer if fmt == "json" else _observer
    observer: Any = FilteringLogObserver(sink, [predicate])  # type: ignore[list-item]
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
