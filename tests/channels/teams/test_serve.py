"""`safehaven serve` as a real process: Teams is mounted only with credentials or an explicit
``TEAMS_AUTH=off``, which is refused off loopback; ``serve`` says which in one line."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.app.cli import EXIT_CONFIG
from bot.vault import generate_key
from tests.channels.slack.test_serve import ROOT, free_port
from tests.support.fake_teams import FakeConnector, TeamsUser
from tests.support.teams import SENDER_AAD

# Variables that decide whether Teams is served; the test's own environment must not leak in.
TEAMS_VARIABLES = ("MicrosoftAppId", "MicrosoftAppPassword", "MicrosoftAppTenantId",
                   "MicrosoftAppType", "TEAMS_AUTH", "TEAMS_TENANT_IDS")


def environment(var: Path, **env: str) -> dict[str, str]:
    full = {k: v for k, v in os.environ.items()
            if not k.startswith(("SAFEHAVEN_", "SLACK_", "TWILIO_")) and k not in TEAMS_VARIABLES}
    full.update(SAFEHAVEN_VAR_DIR=str(var), SAFEHAVEN_LOG_LEVEL="WARNING",
                SAFEHAVEN_SCHEDULER="off", SAFEHAVEN_SECRET_KEY=generate_key(), **env)
    return full


@contextlib.asynccontextmanager
async def serve(var: Path, **env: str) -> AsyncIterator[tuple[str, list[str]]]:
    """Run ``safehaven serve``; yield its base URL and what it printed once it answered."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.app.cli", "serve", cwd=ROOT,
        env=environment(var, SAFEHAVEN_PORT=str(port), **env),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    assert process.stdout is not None
    base = f"http://127.0.0.1:{port}"
    lines: list[str] = []
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                try:
                    async with session.get(base + "/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError("server did not start")
        while True:
            try:
                line = await asyncio.wait_for(process.stdout.readline(), 0.5)
            except TimeoutError:
                break
            if not line:
                break
            lines.append(line.decode())
        yield base, lines
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)


def teams_rows(var: Path) -> tuple[int, int]:
    with contextlib.closing(sqlite3.connect(var / "safehaven.db")) as db:
        refs = db.execute("SELECT count(*) FROM teams_conversation_refs").fetchone()[0]
        claims = db.execute(
            "SELECT count(*) FROM processed_events WHERE key LIKE 'teams:%'").fetchone()[0]
    return int(refs), int(claims)


async def test_without_credentials_api_messages_does_not_exist(tmp_path: Path) -> None:
    var = tmp_path / "var"
    connector = FakeConnector()  # where the caller asks for replies to go
    await connector.start()
    try:
        async with serve(var, SAFEHAVEN_ALLOWED_FETCH_HOSTS=connector.url.split("://")[1]
                         ) as (base, lines):
            teams_lines = [line for line in lines if "Microsoft Teams" in line]
            assert teams_lines == ["Microsoft Teams: not served (set MicrosoftAppId and "
                                   "MicrosoftAppPassword; see docs/teams.md)\n"], lines
            # An unauthenticated activity naming a Teams user, as the review posted it.
            user = TeamsUser(None, connector, aad=SENDER_AAD,  # type: ignore[arg-type]
                             name="Alex Sender")
            async with aiohttp.ClientSession() as session, \
                    session.post(base + "/api/messages",
                                 json=user.activity(text="help")) as response:
                assert response.status == 404
        assert connector.calls == [] and teams_rows(var) == (0, 0)
    finally:
        await connector.close()


async def test_auth_off_is_said_in_one_line(tmp_path: Path) -> None:
    async with serve(tmp_path / "var", TEAMS_AUTH="off") as (base, lines):
        teams_lines = [line for line in lines if "Teams" in line]
        assert len(teams_lines) == 1
        assert "UNAUTHENTICATED activities (TEAMS_AUTH=off)" in teams_lines[0]
        assert not any("!!!" in line for line in lines)
        async with aiohttp.ClientSession() as session, \
                session.post(base + "/api/messages", json={}) as response:
            assert response.status == 400  # mounted: it reads the body


@pytest.mark.parametrize("env", [{"SAFEHAVEN_HOST": "0.0.0.0"},
                                 # bound to 127.0.0.1, but ngrok or nginx forwards to it
                                 {"SAFEHAVEN_PUBLIC_URL": "https://3f2a.ngrok-free.app"},
                                 {"SAFEHAVEN_PUBLIC_URL": "http://safehaven.council.local"},
                                 {"SAFEHAVEN_ENV": "production",
                                  "SAFEHAVEN_PUBLIC_URL": "https://safehaven.example.gov.uk",
                                  "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
                                  "TWILIO_AUTH_TOKEN": "not-used",
                                  "TWILIO_FROM_NUMBER": "+441632960000"}])
async def test_auth_off_is_refused_in_production_and_off_loopback(
        tmp_path: Path, env: dict[str, str]) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.app.cli", "serve", cwd=ROOT,
        env=environment(tmp_path / "var", SAFEHAVEN_PORT=str(free_port()), TEAMS_AUTH="off",
                        **env),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == EXIT_CONFIG
    assert "TEAMS_AUTH=off is refused" in err.decode()
    assert next(iter(env)) in err.decode()  # and the variable that makes it unsafe
