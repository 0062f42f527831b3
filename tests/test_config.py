"""The composition root reads the environment once, into one Config, and wires every channel
from its section: nothing reads the environment again afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web

from bot.app.config import load_config
from bot.app.plugins import mount_plugins
from bot.app.runtime import build_runtime
from bot.settings import SettingsError
from bot.vault import generate_key
from channels.console.transport import ConsoleTransport
from channels.slack.notifier import SlackNotifier
from channels.twilio.transport import TwilioTransport
from handlers.notify import NotifierRouter

SLACK = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s",
         "SLACK_API_URL": "http://127.0.0.1:9/api/"}
TWILIO = {"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "t",
          "TWILIO_FROM_NUMBER": "+441632960001", "TWILIO_API_URL": "http://127.0.0.1:9"}


def env(tmp_path: Path, **more: str) -> dict[str, str]:
    return {"SAFEHAVEN_VAR_DIR": str(tmp_path), "SAFEHAVEN_SECRET_KEY": generate_key(),
            "SAFEHAVEN_PUBLIC_URL": "https://safehaven.example.gov.uk", **more}


def paths(app: web.Application) -> set[str]:
    return {r.resource.canonical for r in app.router.routes() if r.resource is not None}


def test_unconfigured_channels_are_none(tmp_path: Path) -> None:
    config = load_config(env(tmp_path))
    assert dict(config.sections) == {"portal": None, "twilio": None, "teams": None,
                                     "slack": None}
    assert config.core.var_dir == tmp_path


def test_a_half_configured_channel_stops_start_up_unless_the_command_reaches_none(
        tmp_path: Path) -> None:
    half = env(tmp_path, SLACK_BOT_TOKEN="xoxb-1", TWILIO_ACCOUNT_SID="AC1")
    with pytest.raises(SettingsError, match="TWILIO_AUTH_TOKEN"):
        load_config(half)
    assert not load_config(half, channels=False).sections  # generate-key, migrate, ...
    with pytest.raises(SettingsError, match="SLACK_SIGNING_SECRET"):
        load_config(env(tmp_path, SLACK_BOT_TOKEN="xoxb-1"))


async def test_the_runtime_wires_each_channel_from_its_section_not_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(env(tmp_path, TEAMS_AUTH="off",  # loopback only, URL too
                             SAFEHAVEN_PUBLIC_URL="http://127.0.0.1:8080", **SLACK, **TWILIO))
    # Read once: a later environment, even a broken one, changes nothing.
    for name in (*SLACK, *TWILIO, "TEAMS_AUTH", "SAFEHAVEN_VAR_DIR"):
        monkeypatch.setenv(name, "broken")
    runtime = build_runtime(config)
    svc = runtime.svc
    try:
        assert isinstance(svc.transport, TwilioTransport)
        assert isinstance(svc.notifier, NotifierRouter)
        assert isinstance(svc.notifier.routes["slack"], SlackNotifier)
        assert "teams" in svc.notifier.routes and "console" in svc.notifier.routes
        app = web.Application()
        mount_plugins(app, runtime.plugins)
        assert {"/slack/events", "/api/messages", "/twilio/sms/status",
                "/p/{token}"} <= paths(app)
        assert any("Twilio" in line for p in runtime.plugins for line in p.describe())
    finally:
        await svc.db.close()
        await svc.transport.close()  # type: ignore[attr-defined]


async def test_without_channel_sections_only_the_portal_is_served(tmp_path: Path) -> None:
    runtime = build_runtime(load_config(env(tmp_path)))
    svc = runtime.svc
    try:
        assert isinstance(svc.transport, ConsoleTransport)
        assert isinstance(svc.notifier, NotifierRouter)
        assert set(svc.notifier.routes) == {"console"}
        app = web.Application()
        mount_plugins(app, runtime.plugins)
        assert paths(app) == {"/p/{token}"}
        lines = [line for p in runtime.plugins for line in p.describe()]
        assert any(line.startswith("Slack: not configured") for line in lines), lines
        assert any(line.startswith("Microsoft Teams: not served") for line in lines), lines
    finally:
        await svc.db.close()
