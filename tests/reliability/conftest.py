"""Fixtures for the reliability tests: the fake Twilio REST API, Twilio-backed services, a
client for the signed webhooks; and the end-of-session count of hostile inputs tried."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from twilio.request_validator import RequestValidator

from bot.app.web import create_app
from bot.vault import generate_key
from channels.twilio.settings import TwilioSettings, load_twilio_settings
from channels.twilio.transport import TwilioTransport
from channels.twilio.webhooks import mount_twilio
from handlers.services import Services
from tests.reliability.strategies import FIGURES, TRIED
from tests.support.core import PDF
from tests.support.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

PUBLIC = "https://safehaven.example.gov.uk"


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilio]:
    server = await FakeTwilio().start()
    yield server
    await server.close()


def twilio_env(fake: FakeTwilio) -> dict[str, str]:
    return {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_FROM_NUMBER": "+441632960001", "SAFEHAVEN_PUBLIC_URL": PUBLIC,
            "TWILIO_API_URL": fake.url}


@pytest.fixture
def twilio_settings(fake: FakeTwilio) -> TwilioSettings:
    settings = load_twilio_settings(twilio_env(fake))
    assert settings is not None
    return settings


@pytest.fixture
async def tw(services: Services, twilio_settings: TwilioSettings) -> AsyncIterator[Services]:
    transport = TwilioTransport(twilio_settings, timeout=2.0)
    services.transport = transport
    yield services
    await transport.close()


@pytest.fixture
async def client(tw: Services, twilio_settings: TwilioSettings) -> AsyncIterator[TestClient]:
    app = create_app(tw, migrate=False, scheduler=False)
    mount_twilio(app, tw, twilio_settings)
    async with TestClient(TestServer(app)) as c:
        yield c


async def post_signed(client: TestClient, path: str, form: dict[str, str]) -> Any:
    """POST ``form`` to ``path`` with a valid X-Twilio-Signature, as Twilio would."""
    sig = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC + path, form)
    return await client.post(path, data=form, headers={"X-Twilio-Signature": sig})


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """The environment for running ``safehaven`` as a process: a private var/ and key, none
    of this machine's Safe Haven or Twilio settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAFEHAVEN_", "TWILIO_"))}
    env.update(SAFEHAVEN_VAR_DIR=str(tmp_path / "var"), SAFEHAVEN_SECRET_KEY=generate_key(),
               SAFEHAVEN_LOG_LEVEL="WARNING")
    return env


@pytest.fixture
def pdf(tmp_path: Path) -> Path:
    path = tmp_path / "referral.pdf"
    path.write_bytes(PDF)
    return path


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TRIED:
        total = sum(TRIED.values())
        terminalreporter.write_sep("-", f"hostile input: {total:,} inputs tried "
                                        f"across {len(TRIED)} properties")
        for name, count in sorted(TRIED.items()):
            terminalreporter.write_line(f"  {count:>7,}  {name}")
    if FIGURES:
        terminalreporter.write_sep("-", "reliability figures")
        for name, value in sorted(FIGURES.items()):
            terminalreporter.write_line(f"  {name}: {value}")
