"""Command line: parse arguments, load the config, run the node. No logic."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from . import __version__
from .config.loader import ConfigError, default_config, load_config
from .config.model import NodeConfig

LEVELS = ("debug", "info", "warn", "error")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="wamp-router",
        description="A WAMP v2 router. Without --config it runs the embedded default "
        "(realm realm1, anonymous; WebSocket ws://127.0.0.1:8080/ws, RawSocket 127.0.0.1:8081).",
    )
    p.add_argument("--config", "-c", metavar="FILE", help="realm config file (TOML)")
    p.add_argument("--check-config", metavar="FILE",
                   help="validate a config file, print the problems, exit (0 = valid)")
    p.add_argument("--log-level", choices=LEVELS, default="info")
    p.add_argument("--version", action="version", version=f"wamp-router {__version__}")
    return p.parse_args(argv)


def _load(path: str | None) -> NodeConfig | None:
    try:
        return default_config() if path is None else load_config(path)
    except ConfigError as exc:
        print(f"wamp-router: invalid config:\n{exc}", file=sys.stderr)
    except OSError as exc:
        print(f"wamp-router: cannot read config {path}: {exc.strerror}", file=sys.stderr)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.check_config:
        config = _load(args.check_config)
        if config is None:
            return 2
        print(f"{args.check_config}: ok ({len(config.listeners)} listener(s), "
              f"{len(config.realms)} realm(s))")
        return 0
    config = _load(args.config)
    if config is None:
        return 2
    return run(config, args.log_level)


def run(config: NodeConfig, level: str) -> int:
    from twisted.internet import reactor as _reactor

    from .twisted.logging import start_logging
    from .twisted.service import RouterNode

    reactor: Any = _reactor
    start_logging(level)
    node = RouterNode(config, reactor)
    status: dict[str, Any] = {"code": 0}

    def failed(failure: Any) -> None:
        print(f"wamp-router: cannot start: {failure.getErrorMessage()}", file=sys.stderr)
        status["code"] = 1
        reactor.stop()

    reactor.callWhenRunning(lambda: node.start().addErrback(failed))
    reactor.addSystemEventTrigger("before", "shutdown", node.stop)
    reactor.run()
    return int(status["code"])
