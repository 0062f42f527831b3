"""A database that cannot be reached is a sentence for the operator, never a traceback, and
never its password: through the real ``safehaven`` process, for the long-running services
and a one-shot command."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

PASSWORD = "S3cretDbPassw0rd"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAFEHAVEN_", "SLACK_"))}
    env.update(SAFEHAVEN_VAR_DIR=str(tmp_path / "var"), SAFEHAVEN_DATABASE_URL=url)
    return subprocess.run([sys.executable, "-m", "bot.app.cli", *args], env=env, text=True,
                          capture_output=True, timeout=120, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("command", [["serve"], ["worker"], ["migrate"], ["audit", "verify"]])
def test_a_refused_connection_is_said_plainly(tmp_path: Path, command: list[str]) -> None:
    port = closed_port()
    url = f"postgresql+asyncpg://postgres:{PASSWORD}@127.0.0.1:{port}/safehaven"
    result = run(tmp_path, url, *command)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert f"cannot reach the database postgresql+asyncpg://postgres:***@127.0.0.1:{port}" \
        in result.stderr
    assert "SAFEHAVEN_DATABASE_URL" in result.stderr
    assert PASSWORD not in result.stdout + result.stderr


def test_an_unknown_host_is_said_plainly(tmp_path: Path) -> None:
    result = run(tmp_path, f"postgresql+asyncpg://postgres:{PASSWORD}@nowhere.invalid/x",
                 "worker")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "cannot reach the database" in result.stderr
    assert PASSWORD not in result.stdout + result.stderr
