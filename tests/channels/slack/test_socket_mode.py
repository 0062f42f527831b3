"""Socket Mode, for organisations with no public HTTPS endpoint: the same listeners over a
WebSocket opened by the app (here, to the fake Slack on 127.0.0.1). And the tokens checked
at start-up, so a wrong one stops the server with the fix instead of failing every event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app.plugins import route_notices
from bot.app.web import create_app
from bot.policy_rules import Policy
from bot.settings import SettingsError
from channels.slack import plugin as slack_plugin
from channels.slack.channel import SlackChannel
from channels.slack.settings import SlackSettings
from handlers.notify import NotifierRouter
from handlers.services import Services
from tests.support.core import RecordingNotifier
from tests.support.fake_slack import APP_TOKEN, TOKEN, FakeSlack
from tests.support.slack import message_text


def socket_settings(fake: FakeSlack, app_token: str = APP_TOKEN) -> SlackSettings:
    return SlackSettings(bot_token=TOKEN, signing_secret=None, app_token=app_token,
                         api_url=f"{fake.url}/api/")


@pytest.fixture
async def socket_app(services: Services, slack_policy: Policy, fake_slack: FakeSlack
                     ) -> AsyncIterator[tuple[TestClient[object, object], SlackChannel]]:
    services.policy = slack_policy
    services.notifier = router = NotifierRouter(RecordingNotifier())
    slack = slack_plugin(services, socket_settings(fake_slack))
    route_notices(router, [slack])
    app = create_app(services, migrate=False, scheduler=False)
    slack.mount(app)
    channel = slack.channel
    assert channel is not None
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client, channel


async def wait_for(condition: object, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


async def test_events_arrive_and_are_acknowledged_over_the_socket(
        socket_app: tuple[TestClient[object, object], SlackChannel],
        fake_slack: FakeSlack) -> None:
    client, channel = socket_app
    await channel.tasks.join()  # connected
    assert fake_slack.sockets
    assert (await client.post("/slack/events", data=b"{}")).status in (404, 405)
    event = {"type": "message", "channel": "DUALICE01", "channel_type": "im",
             "user": "UALICE01", "text": "help", "ts": "1700000001.000100"}
    envelope = await fake_slack.push("events_api", {
        "type": "event_callback", "team_id": "T0001", "api_app_id": "A0001",
        "event_id": "EvSOCKET01", "event": event})
    await wait_for(lambda: any(a["envelope_id"] == envelope for a in fake_slack.socket_acks))
    await wait_for(lambda: bool(fake_slack.in_channel("DUALICE01")))
    await channel.tasks.join()
    assert "Send me one or more files" in message_text(fake_slack.in_channel("DUALICE01")[0])

    command = await fake_slack.push("slash_commands", {
        "command": "/safehaven", "text": "list", "user_id": "UALICE01",
        "channel_id": "DUALICE01", "team_id": "T0001", "api_app_id": "A0001"})
    await wait_for(lambda: any(a["envelope_id"] == command for a in fake_slack.socket_acks))
    await wait_for(lambda: len(fake_slack.in_channel("DUALICE01")) == 2)


async def test_a_refused_app_token_stops_start_up(services: Services,
                                                  fake_slack: FakeSlack) -> None:
    services.notifier = router = NotifierRouter(RecordingNotifier())
    slack = slack_plugin(services, socket_settings(fake_slack, app_token="xapp-revoked"))
    route_notices(router, [slack])
    app = create_app(services, migrate=False, scheduler=False)
    slack.mount(app)
    assert slack.channel is not None
    server = TestServer(app, host="127.0.0.1")
    with pytest.raises(SettingsError, match="invalid_auth"):
        await server.start_server()
    await server.close()


async def test_a_refused_bot_token_stops_start_up(services: Services,
                                                 fake_slack: FakeSlack) -> None:
    services.notifier = router = NotifierRouter(RecordingNotifier())
    settings = SlackSettings(bot_token="xoxb-revoked", signing_secret="s", app_token=None,
                             api_url=f"{fake_slack.url}/api/")
    slack = slack_plugin(services, settings)
    route_notices(router, [slack])
    app = create_app(services, migrate=False, scheduler=False)
    slack.mount(app)
    assert slack.channel is not None
    server = TestServer(app, host="127.0.0.1")
    with pytest.raises(SettingsError, match="refused SLACK_BOT_TOKEN"):
        await server.start_server()
    await server.close()


async def test_a_malformed_payload_over_the_socket_is_acknowledged_and_dropped(
        socket_app: tuple[TestClient[object, object], SlackChannel],
        fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture) -> None:
    """The same door as HTTP: what http.well_formed refuses never reaches bolt."""
    _client, channel = socket_app
    await channel.tasks.join()  # connected
    event = {"type": ["message"], "channel": "DUALICE01", "channel_type": "im",
             "user": "UALICE01\ud800", "text": "help", "ts": "1700000001.000100"}
    envelope = await fake_slack.push("events_api", {
        "type": "event_callback", "team_id": "T0001", "api_app_id": "A0001",
        "event_id": "EvSOCKET02", "event": event})
    await wait_for(lambda: any(a["envelope_id"] == envelope for a in fake_slack.socket_acks))
    await channel.tasks.join()
    assert fake_slack.in_channel("DUALICE01") == []
    assert "refused a malformed Socket Mode events_api payload" in caplog.text
    assert "Traceback" not in caplog.text
