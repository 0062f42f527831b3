"""One running Safe Haven per channel for the cross-channel scenarios: ``world`` is the
console, Slack or Teams (each through its real entry point and fakes), always with a fake
Twilio behind the password sends and the app on a local port for the recipient's portal."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app.web import create_app
from channels.twilio.settings import load_twilio_settings
from channels.twilio.transport import TwilioTransport
from handlers.services import Services
from tests.support.chat import World
from tests.support.console import ConsoleWorld
from tests.support.core import Clock
from tests.support.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.support.slack import SlackWorld, fake_slack, slack_policy, workspace  # noqa: F401
from tests.support.teams import (
    TeamsChatWorld,
    teams,  # noqa: F401
)

CHANNELS = ("console", "slack", "teams")


@pytest.fixture
async def twilio(services: Services, clock: Clock) -> AsyncIterator[FakeTwilio]:
    """A fake Twilio on 127.0.0.1, the password transport of ``services``."""
    fake = await FakeTwilio(clock=clock).start()
    settings = load_twilio_settings({
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": "+441632960001", "TWILIO_API_URL": fake.url,
        "SAFEHAVEN_PUBLIC_URL": "https://safehaven.example.gov.uk"})
    assert settings is not None
    transport = TwilioTransport(settings)
    services.transport = transport
    yield fake
    await transport.close()
    await fake.close()


@pytest.fixture
async def console_portal(services: Services) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    app = create_app(services, migrate=False, scheduler=False)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


@pytest.fixture(params=CHANNELS)
def world(request: pytest.FixtureRequest, services: Services, twilio: FakeTwilio) -> World:
    """Safe Haven on one channel (the parameter), with its fakes running."""
    if request.param == "slack":
        return SlackWorld(request.getfixturevalue("workspace"), twilio)
    if request.param == "teams":
        return TeamsChatWorld(request.getfixturevalue("teams"), twilio)
    return ConsoleWorld(services, twilio, request.getfixturevalue("console_portal"))
