"""Print a ``ticket_hash`` for a WAMP-Ticket principal (the ticket is not stored).

    python -m wamp_router.tools.ticket_hash [--iterations N] [TICKET]

Without TICKET it is read from the terminal (or standard input). The router
runs PBKDF2 with this cost for every ticket login on its own thread, so the
default (60000 iterations, ~30 ms) is lower than for password databases:
use long random tickets, and the listener's failed-authentication limits.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ..core.auth.ticket import hash_ticket
from .scram import read_password

DEFAULT_ITERATIONS = 60_000


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m wamp_router.tools.ticket_hash",
                                description="Print the ticket_hash of a WAMP-Ticket principal.")
    p.add_argument("ticket", nargs="?", help="the ticket (default: ask)")
    p.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS)
    args = p.parse_args(argv)
    ticket = read_password(args.ticket)
    if not ticket:
        raise SystemExit("empty ticket")
    print(f'ticket_hash = "{hash_ticket(ticket, os.urandom(16), args.iterations)}"')
    return 0


if __name__ == "__main__":
    sys.exit(main())
