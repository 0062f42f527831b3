"""`safehaven serve` as a real process: without Slack settings it says so and serves the
rest; with them it answers signed Slack requests at /slack/events and refuses others."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.vault import generate_key
from tests.support.fake_slack import TOKEN, FakeSlack
from tests.support.slack import SECRET, signed

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def serve(env: dict[str, str]) -> AsyncIterator[tuple[str, list[str]]]:
    port = free_port()
    full = {k: v for k, v in os.environ.items()
            if not k.startswith(("SAFEHAVEN_", "SLACK_"))}
    full.update(env, SAFEHAVEN_PORT=str(port), SAFEHAVEN_SCHEDULER="off",
                SAFEHAVEN_SECRET_KEY=generate_key())
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.app.cli", "serve", cwd=ROOT, env=full,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    assert process.stdout is not None
    lines: list[str] = []
    base = f"http://127.0.0.1:{port}"
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
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), 30)


@pytest.fixture
def var(tmp_path: Path) -> dict[str, str]:
    return {"SAFEHAVEN_VAR_DIR": str(tmp_path / "var"), "SAFEHAVEN_LOG_LEVEL": "WARNING"}


async def test_serve_without_slack_says_so(var: dict[str, str]) -> None:
    async with serve(var) as (base, lines):
        assert any(line.startswith("Slack: not configured") for line in lines), lines
        async with aiohttp.ClientSession() as session, \
                session.post(base + "/slack/events", data=b"{}") as response:
            assert response.status in (404, 405)


async def test_serve_with_slack_answers_signed_requests(var: dict[str, str]) -> None:
    fake = await FakeSlack().start()
    env = dict(var, SLACK_BOT_TOKEN=TOKEN, SLACK_SIGNING_SECRET=SECRET,
               SLACK_API_URL=f"{fake.url}/api/")
    try:
        async with serve(env) as (base, lines):
            assert any("Slack: events, interactivity and /safehaven at" in line
                       for line in lines), lines
            body = json.dumps({"type": "url_verification", "challenge": "ok-123"})
            async with aiohttp.ClientSession() as session:
                async with session.post(base + "/slack/events", data=body.encode(),
                                        headers={"Content-Type": "application/json",
                                                 **signed(body)}) as response:
                    assert response.status == 200
                    assert "ok-123" in await response.text()
                async with session.post(base + "/slack/events", data=body.encode(),
                                        headers={"Content-Type": "application/json"}
                                        ) as response:
                    assert response.status == 401
    finally:
        await fake.close()
