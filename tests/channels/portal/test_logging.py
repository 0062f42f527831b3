"""Portal tokens never reach the logs: not the access log, not the Referer, not ours."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app.web import create_app
from channels.portal import RedactingAccessLogger, redact
from handlers.services import Services
from tests.channels.portal.conftest import Share, remove_archive

TOKEN = "Ab3_" + "x" * 39


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
