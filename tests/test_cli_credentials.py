"""``wamp-router --scram-credential AUTHID --role ROLE`` and ``--ticket-hash``: the
printed TOML pastes into a config that loads, and holds credentials for the password
read from standard input or the terminal (never from the command line)."""

from __future__ import annotations

import base64
import io
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from wamp_router import cli
from wamp_router.config.loader import load_config_text
from wamp_router.core.auth.ticket import ticket_matches
from wamp_router.tools.kdf import salted_password, scram_keys

ROOT = Path(__file__).resolve().parents[1]

CONFIG = """
[[listeners]]
transport = "websocket"
endpoint = "127.0.0.1:0"

{principal}

[[realms]]
name = "app"
[[realms.roles]]
name = "user"
"""


def check_scram_entry(text: str, password: str, authid: str, realm: str | None) -> None:
    entry = tomllib.loads(text)["listeners"]["auth"]["scram"][0]
    assert (entry["authid"], entry["role"], entry.get("realm")) == (authid, "user", realm)
    salt = base64.b64decode(entry["salt"])
    stored, server = scram_keys(salted_password(password, entry["kdf"], salt,
                                                entry["iterations"], entry.get("memory")))
    assert base64.b64decode(entry["stored_key"]) == stored
    assert base64.b64decode(entry["server_key"]) == server
    assert password not in text
    # ready to paste: the block (it starts with [[listeners.auth.scram]]) loads as is
    config = load_config_text(CONFIG.format(principal=text), "<test>")
    [principal] = config.listeners[0].auth.scram
    assert principal.authid == authid


def test_scram_credential_subprocess_reads_the_password_from_stdin() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "wamp_router", "--scram-credential", "dave", "--role", "user",
         "--realm", "app", "--kdf", "pbkdf2"],
        input="correct horse\n", capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("[[listeners.auth.scram]]\n")
    entry = tomllib.loads(res.stdout)["listeners"]["auth"]["scram"][0]
    assert (entry["kdf"], entry["iterations"]) == ("pbkdf2", 600_000)
    check_scram_entry(res.stdout, "correct horse", "dave", "app")


def test_scram_credential_asks_twice_on_a_terminal(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    prompts: list[str] = []

    def getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return "s3cret pass"

    tty = io.StringIO()
    tty.isatty = lambda: True  # type: ignore[method-assign]
    monkeypatch.setattr(sys, "stdin", tty)
    monkeypatch.setattr("getpass.getpass", getpass)
    assert cli.main(["--scram-credential", "erin", "--role", "user"]) == 0
    assert len(prompts) == 2  # password and confirmation
    out = capsys.readouterr().out
    entry = tomllib.loads(out)["listeners"]["auth"]["scram"][0]
    assert (entry["kdf"], entry["iterations"], entry["memory"]) == ("argon2id13", 3, 65536)
    check_scram_entry(out, "s3cret pass", "erin", None)


def test_ticket_hash(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("a-long-random-ticket\n"))
    assert cli.main(["--ticket-hash"]) == 0
    out = capsys.readouterr().out
    encoded = tomllib.loads(out)["ticket_hash"]
    assert ticket_matches("a-long-random-ticket", encoded)
    assert not ticket_matches("another-ticket", encoded)
    assert "a-long-random-ticket" not in out


@pytest.mark.parametrize("argv", [
    ["--scram-credential", "dave"],                       # no role
    ["--role", "user"],                                   # no --scram-credential
    ["--ticket-hash", "--realm", "app"],
    ["--ticket-hash", "--scram-credential", "dave", "--role", "user"],
    ["--scram-credential", "dave", "--role", "user", "--kdf", "md5"],
])
def test_credential_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2


def test_empty_password_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n"))
    with pytest.raises(SystemExit, match="empty password"):
        cli.main(["--scram-credential", "dave", "--role", "user", "--kdf", "pbkdf2"])
