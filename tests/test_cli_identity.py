"""Who a terminal command acts for, and what it says about a flag, through the real
``safehaven`` process: in production a terminal acts only for ``console:`` people (a Slack
or Teams user's kept messages are not printed, nor handed over, at a terminal), and a
refused flag names only the values that flag takes."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.vault import generate_key
from tests.reliability.conftest import twilio_env
from tests.support.core import PDF, SHARE_RECORD_FLAGS
from tests.support.fake_twilio import FakeTwilio
from tests.support.tls import trusting_env

ROOT = Path(__file__).resolve().parents[1]
LINK = "https://safehaven.example/p/secret-token-of-alice"
HOLD = f"""
import sys
from bot.app.config import load_config
from bot.app.process import run_with_services
from bot.replies import Text
from handlers.notify import HeldNotices
async def job(svc):
    await HeldNotices(svc.db, svc.vault).notify(
        "slack:U0ALICE", [Text("Your transfer SH-ABCD-23 was approved; link {LINK}")],
        reference="SH-ABCD-23")
    return 0
sys.exit(run_with_services(load_config(), job))
"""


async def run(env: dict[str, str], *args: str, stdin: str = "") -> tuple[int, str, str]:
    """``python ARGS`` as a process; awaited, so the fake Twilio keeps serving."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, *args, env=env, cwd=ROOT, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate(stdin.encode())
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilio]:
    server = FakeTwilio()
    server.tls = True  # production refuses a plain http TWILIO_API_URL
    await server.start()
    yield server
    await server.close()


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SAFEHAVEN_", "TWILIO_", "SLACK_", "Microsoft"))}
    env.update(SAFEHAVEN_VAR_DIR=str(tmp_path / "var"), SAFEHAVEN_SECRET_KEY=generate_key(),
               **extra)
    return env


def _held(var: Path) -> int:
    with sqlite3.connect(var / "safehaven.db") as db:
        return int(db.execute("select count(*) from held_notices").fetchone()[0])


async def test_in_production_a_terminal_acts_only_for_console_people(
        tmp_path: Path, fake: FakeTwilio) -> None:
    env = _env(tmp_path, SAFEHAVEN_ENV="production", **twilio_env(fake), **trusting_env())
    var = tmp_path / "var"
    code, _, err = await run(env, "-c", HOLD)
    assert code == 0, err
    assert _held(var) == 1

    for args in (["chat", "--sender", "slack:U0ALICE"],
                 ["chat", "--sender", "teams:6a1d2c3b-0000-4000-8000-0000000b0b01"],
                 ["approve", "SH-ABCD-23", "--approver", "slack:U0ALICE"],
                 ["received", "SH-ABCD-23", "--sender", "slack:U0ALICE"],
                 ["cancel", "SH-ABCD-23", "--sender", "slack:U0ALICE"],
                 ["mistake", "SH-ABCD-23", "--sender", "slack:U0ALICE"]):
        code, out, err = await run(env, "-m", "bot.app.cli", *args, stdin="quit\n")
        assert code == 2, (args, out, err)
        assert "acts only for console: people" in err and "Traceback" not in err, err
        assert LINK not in out + err and "SH-ABCD-23 was approved" not in out
    assert _held(var) == 1  # still kept for Alice, for her Slack app

    # A console person goes on as before.
    code, out, err = await run(env, "-m", "bot.app.cli", "chat", "--sender", "console:bob",
                               stdin="quit\n")
    assert code == 0, out + err
    assert LINK not in out and _held(var) == 1


async def test_in_development_any_id_may_be_given(tmp_path: Path) -> None:
    env = _env(tmp_path)
    code, _, err = await run(env, "-c", HOLD)
    assert code == 0, err
    code, out, err = await run(env, "-m", "bot.app.cli", "chat", "--sender", "slack:U0ALICE",
                               stdin="quit\n")
    assert code == 0, out + err
    assert LINK in out and _held(tmp_path / "var") == 0


async def test_a_refused_password_method_names_only_what_the_flag_takes(
        tmp_path: Path) -> None:
    case = tmp_path / "case.pdf"
    case.write_bytes(PDF)
    code, out, err = await run(
        _env(tmp_path), "-m", "bot.app.cli", "share", str(case),
        "--classification", "CONTROLLED", *SHARE_RECORD_FLAGS, "--recipient-name", "Priya Shah",
        "--recipient-title", "Safeguarding Lead", "--recipient-org", "Northfield NHS Trust",
        "--recipient-email", "priya.shah@nhs.net", "--recipient-phone", "01212345678",
        "--purpose", "Strategy meeting about a child at risk",
        "--consent", "Only for the strategy meeting", "--password-via", "sms",
        "--sender", "console:alice")
    assert code == 1, out + err
    assert "--password-via: An SMS needs a mobile number" in out, out
    assert "Choices: 'voice' (or change --recipient-phone)" in out, out
    assert "<PasswordMethod" not in out and "'change-phone'" not in out
