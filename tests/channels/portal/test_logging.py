"""Portal tokens never reach the logs: not the access log, not the Referer, not ours."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app.web import create_app
from channels.portal import RedactingAccessLogger, redact
from handlers.services import Services
from tests.channels.portal.conftest import Share, remove_archive

TOKEN = "Ab3_" + "x" * 39
ROOT = Path(__file__).resolve().parents[3]


def test_redact_keeps_the_shape_of_the_line() -> None:
    assert redact(f"POST /p/{TOKEN}?a=1 HTTP/1.1") == "POST /p/[redacted]?a=1 HTTP/1.1"
    assert redact(f"https://safehaven.example/p/{TOKEN}") == \
        "https://safehaven.example/p/[redacted]"
    assert redact("GET /healthz HTTP/1.1") == "GET /healthz HTTP/1.1"


def _everything(records: list[logging.LogRecord]) -> str:
    return "\n".join(f"{r.getMessage()} {r.__dict__!r}" for r in records)


async def test_access_log_of_a_default_server_is_redacted(services: Services, share: Share,
                                                          client: TestClient[Any, Any],
                                                          caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    caplog.set_level(logging.DEBUG)
    link = await share()
    await client.get(link.path, headers={"Referer": link.url})
    await client.head(link.path)
    await (await client.post(link.path)).read()
    await remove_archive(services, link.reference)
    await client.get(f"/p/{TOKEN}")
    access = [r for r in caplog.records if r.name == "aiohttp.access"]
    assert len(access) >= 4
    assert all("/p/[redacted]" in r.getMessage() for r in access)
    assert link.token not in _everything(caplog.records)
    assert TOKEN not in _everything(caplog.records)


async def test_redacting_access_logger_class(services: Services, share: Share) -> None:
    link = await share()
    logger = logging.getLogger("tests.portal.access")  # no filter: the class alone
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        server = TestServer(create_app(services, migrate=False, scheduler=False))
        await server.start_server(access_log_class=RedactingAccessLogger, access_log=logger)
        async with TestClient(server) as client:
            await client.get(link.path, headers={"Referer": link.url})
            await client.get("/healthz")
    finally:
        logger.removeHandler(handler)
    text = _everything(records)
    assert len(records) == 2 and "/p/[redacted]" in records[0].getMessage()
    assert "GET /healthz" in records[1].getMessage()
    assert link.token not in text


SERVE_TOKENS = {  # request path -> the token it carries (each must be redacted)
    "/%70/TokenSecret5aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa": "TokenSecret5",  # routed to /p/
    "/p/TokenSecret6aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa": "TokenSecret6",
    "/%70%2FTokenSecret7aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa": "TokenSecret7",
    "/p/%54okenSecret8aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa": "okenSecret8",
}
REFERER_TOKEN = "TokenSecret9"


async def _raw_get(port: int, path: str, referer: str = "") -> bytes:
    """One request sent byte for byte (``curl --path-as-is``): no client normalises it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    extra = f"Referer: {referer}\r\n" if referer else ""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Connection: close\r\n\r\n"
                 .encode())
    answer = await reader.read()
    writer.close()
    return answer.split(b"\r\n", 1)[0]


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_a_percent_encoded_token_is_redacted_by_the_running_server(
        tmp_path: Path, log_format: str) -> None:
    """``safehaven serve`` routes /%70/<token> to the portal (aiohttp decodes the path): its
    access log, on stderr and in the log file, in either format, holds no token."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    var = tmp_path / "var"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SAFEHAVEN_", "SLACK_", "TWILIO_", "Microsoft", "TEAMS_"))}
    env.update(SAFEHAVEN_VAR_DIR=str(var), SAFEHAVEN_PORT=str(port), SAFEHAVEN_SCHEDULER="off",
               SAFEHAVEN_LOG_FORMAT=log_format)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.app.cli", "serve", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    assert process.stderr is not None
    stderr_task = asyncio.ensure_future(process.stderr.read())
    try:
        for _ in range(1200):
            try:
                if (await _raw_get(port, "/healthz")).endswith(b"200 OK"):
                    break
            except OSError:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("serve did not start")
        for path in SERVE_TOKENS:
            assert (await _raw_get(port, path)).startswith(b"HTTP/1.1 404"), path
        await _raw_get(port, "/healthz", referer=f"http://127.0.0.1/%70/{REFERER_TOKEN}xxxxx")
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), 60)
    text = (await stderr_task).decode() + (var / "safehaven.log").read_text(encoding="utf-8")
    access = [line for line in text.splitlines() if "aiohttp.access" in line]
    assert len(access) >= 2 * (len(SERVE_TOKENS) + 2), text  # stderr and the file
    assert sum("[redacted]" in line for line in access) >= 2 * (len(SERVE_TOKENS) + 1), text
    if log_format == "json":
        assert all(json.loads(line)["logger"] == "aiohttp.access" for line in access)
    for token in (*SERVE_TOKENS.values(), REFERER_TOKEN):
        assert token not in text, token
