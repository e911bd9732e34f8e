"""Print the config entry of a WAMP-SCRAM principal (no password in it).

    python -m wamp_router.tools.scram --authid alice --role user [--realm realm2]
        [--kdf argon2id13|pbkdf2] [--iterations N] [--memory KiB] [PASSWORD]

Without PASSWORD it is read from the terminal (or the first line of standard
input), so that it does not land in the shell history. The salt is 16 random
bytes. Defaults: argon2id13 with 3 iterations and 64 MiB; pbkdf2 with 600000
iterations (OWASP's recommendation for PBKDF2-HMAC-SHA256). The client runs the
KDF when it logs in; the router only compares HMACs.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import json
import os
import sys
from collections.abc import Sequence

from .kdf import salted_password, scram_keys

DEFAULTS = {"argon2id13": (3, 65536), "pbkdf2": (600_000, None)}


def credential(password: str, kdf: str, iterations: int, memory: int | None,
               salt: bytes | None = None) -> dict[str, object]:
    salt = salt or os.urandom(16)
    stored, server = scram_keys(salted_password(password, kdf, salt, iterations, memory))
    out: dict[str, object] = {"kdf": kdf, "iterations": iterations}
    if kdf == "argon2id13":
        out["memory"] = memory
    out.update(salt=base64.b64encode(salt).decode(), stored_key=base64.b64encode(stored).decode(),
               server_key=base64.b64encode(server).decode())
    return out


def toml_entry(authid: str, role: str, realm: str | None, cred: dict[str, object]) -> str:
    lines = ["[[listeners.auth.scram]]", f"authid = {json.dumps(authid)}",
             f"role = {json.dumps(role)}"]
    if realm:
        lines.append(f"realm = {json.dumps(realm)}")
    lines += [f"{key} = {json.dumps(value)}" for key, value in cred.items()]
    return "\n".join(lines)


def read_password(given: str | None) -> str:
    if given is not None:
        return given
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise SystemExit("the passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m wamp_router.tools.scram",
                                description="Print the config entry of a WAMP-SCRAM principal.")
    p.add_argument("password", nargs="?", help="the password (default: ask)")
    p.add_argument("--authid", required=True)
    p.add_argument("--role", required=True)
    p.add_argument("--realm")
    p.add_argument("--kdf", choices=sorted(DEFAULTS), default="argon2id13")
    p.add_argument("--iterations", type=int)
    p.add_argument("--memory", type=int, help="KiB (argon2id13)")
    args = p.parse_args(argv)
    iterations, memory = DEFAULTS[args.kdf]
    password = read_password(args.password)
    if not password:
        raise SystemExit("empty password")
    cred = credential(password, args.kdf, args.iterations or iterations,
                      (args.memory or memory) if args.kdf == "argon2id13" else None)
    print(toml_entry(args.authid, args.role, args.realm, cred))
    return 0


if __name__ == "__main__":
    sys.exit(main())
