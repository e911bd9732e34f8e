"""Command line: parse arguments, load the config, run the node. No logic."""

from __future__ import annotations

import argparse
import signal
import socket
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
    p.add_argument("--log-format", choices=("text", "json"), default="text",
                   help="log lines as key=value text or as JSON objects")
    p.add_argument("--version", action="version", version=f"wamp-router {__version__}")
    p.add_argument("--workers", type=int, default=0, metavar="N",
                   help="run N router processes sharing the listening ports (SO_REUSEPORT); "
                   "needs a [cluster] backplane in the config")
    p.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)
    cred = p.add_argument_group(
        "credentials for the config file (the secret is read from the terminal or the first "
        "line of standard input; the TOML is printed, then it exits)")
    which = cred.add_mutually_exclusive_group()
    which.add_argument("--scram-credential", metavar="AUTHID",
                       help="print a [[listeners.auth.scram]] principal (salted credentials)")
    which.add_argument("--ticket-hash", action="store_true",
                       help="print a ticket_hash line for a WAMP-Ticket principal")
    cred.add_argument("--role", help="the principal's role (with --scram-credential)")
    cred.add_argument("--realm", help="restrict the principal to this realm (optional)")
    cred.add_argument("--kdf", choices=("argon2id13", "pbkdf2"), default="argon2id13",
                      help="WAMP-SCRAM key derivation (default argon2id13)")
    args = p.parse_args(argv)
    if args.scram_credential is not None and not args.role:
        p.error("--scram-credential needs --role")
    if args.scram_credential is None and (args.role or args.realm):
        p.error("--role and --realm go with --scram-credential")
    return args


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
    if args.scram_credential is not None or args.ticket_hash:
        return _credential(args)
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
    if args.workers:
        problem = _workers_problem(args, config)
        if problem:
            print(f"wamp-router: --workers: {problem}", file=sys.stderr)
            return 2
        from .workers import supervise

        return supervise(args.workers, args.config, ["--log-level", args.log_level,
                                                     "--log-format", args.log_format])
    return run(config, args.log_level, args.log_format, args.config, args.worker_index)


def _workers_problem(args: argparse.Namespace, config: NodeConfig) -> str | None:
    from .config.model import TcpEndpoint

    if args.workers < 1 or args.workers > 256:
        return "the number of workers must be between 1 and 256"
    if args.config is None or config.cluster is None:
        return ("the workers share realms through the cluster backplane: give a config "
                "with a [cluster] table (backplane = \"redis://...\")")
    if not hasattr(socket, "SO_REUSEPORT"):
        return "this system has no SO_REUSEPORT"
    for i, listener in enumerate(config.listeners):
        if isinstance(listener.endpoint, TcpEndpoint) and listener.endpoint.port == 0:
            return f"listeners[{i}] has port 0: workers share fixed ports"
        if not isinstance(listener.endpoint, TcpEndpoint):
            return f"listeners[{i}] is a Unix socket: workers share TCP ports only"
    return None


def _credential(args: argparse.Namespace) -> int:
    """--scram-credential / --ticket-hash: the tools in wamp_router.tools, with the
    secret never on the command line."""
    if args.ticket_hash:
        from .tools import ticket_hash

        return ticket_hash.main([])
    from .tools import scram

    tool_args = ["--authid", args.scram_credential, "--role", args.role, "--kdf", args.kdf]
    return scram.main(tool_args + (["--realm", args.realm] if args.realm else []))


def _reload(node: Any, path: str | None) -> None:
    """SIGHUP: load the config file again; apply it, or keep the old one."""
    from .twisted.base import log

    if path is None:
        log.warn("config reload requested, but the router runs the embedded default config")
        return
    try:
        config = load_config(path)
    except ConfigError as exc:
        for issue in exc.errors:
            log.error("config reload rejected: {issue}", issue=str(issue))
        log.error("config reload rejected: keeping the running config")
        return
    except OSError as exc:
        log.error("config reload rejected: cannot read {path}: {err}", path=path,
                  err=exc.strerror)
        return
    node.reload(config)


def run(config: NodeConfig, level: str, fmt: str = "text", path: str | None = None,
        worker: int | None = None) -> int:
    from twisted.internet import reactor as _reactor

    from .stores.sqlite import StoreError
    from .twisted.logging import start_logging
    from .twisted.service import RouterNode

    reactor: Any = _reactor
    start_logging(level, fmt)
    try:
        node = RouterNode(config, reactor, worker=worker)
    except StoreError as exc:
        print(f"wamp-router: cannot open a data-sync store: {exc}", file=sys.stderr)
        return 1
    status: dict[str, Any] = {"code": 0}

    def failed(failure: Any) -> None:
        print(f"wamp-router: cannot start: {failure.getErrorMessage()}", file=sys.stderr)
        status["code"] = 1
        reactor.stop()

    reactor.callWhenRunning(lambda: node.start().addErrback(failed))
    reactor.addSystemEventTrigger("before", "shutdown", node.stop)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP,
                      lambda *_: reactor.callFromThread(_reload, node, path))
    reactor.run()
    return int(status["code"])
