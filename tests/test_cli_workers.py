"""``wamp-router --workers N`` refuses what cannot work, with a message saying why."""

from __future__ import annotations

from pathlib import Path

import pytest

from wamp_router.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_workers_need_a_cluster_backplane(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(ROOT / "realms" / "default.toml"), "--workers", "2"]) == 2
    assert "[cluster]" in capsys.readouterr().err


def test_workers_need_fixed_ports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.toml"
    text = (ROOT / "realms" / "cluster.toml").read_text().replace("127.0.0.1:8080", "127.0.0.1:0")
    config.write_text(text)
    assert main(["--config", str(config), "--workers", "2"]) == 2
    assert "listeners[0] has port 0" in capsys.readouterr().err


def test_the_number_of_workers_is_checked(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(ROOT / "realms" / "cluster.toml"), "--workers", "-1"]) == 2
    assert "between 1 and 256" in capsys.readouterr().err
