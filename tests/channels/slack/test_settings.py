"""Slack settings: absent means no Slack; half-set stops start-up with the fix."""

from __future__ import annotations

import pytest

from bot.egress import PLATFORM_HOSTS, Destination, HostRule
from bot.settings import SettingsError
from channels.slack.settings import load_slack_settings


def test_no_slack_variables_means_no_slack() -> None:
    assert load_slack_settings({}) is None
    assert load_slack_settings({"SLACK_API_URL": "http://127.0.0.1:1/api/"}) is None


def test_http_mode_and_api_url_override() -> None:
    settings = load_slack_settings({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s",
                                    "SLACK_API_URL": "http://127.0.0.1:9/api"})
    assert settings is not None
    assert settings.http_events and not settings.socket_mode
    assert settings.api_url == "http://127.0.0.1:9/api/"
    # Files may come from Slack's file host and from the API host (port included).
    assert settings.api_hosts == (HostRule("127.0.0.1", 9),)
    assert PLATFORM_HOSTS[Destination.SLACK_FILES] == (HostRule("files.slack.com", 443),)
    assert "xoxb" not in repr(settings) and "'s'" not in repr(settings)


def test_socket_mode_needs_no_signing_secret() -> None:
    settings = load_slack_settings({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"})
    assert settings is not None and settings.socket_mode and not settings.http_events
    assert settings.api_url == "https://slack.com/api/"


@pytest.mark.parametrize(("env", "names"), [
    ({"SLACK_SIGNING_SECRET": "s"}, "SLACK_BOT_TOKEN is not set"),
    ({"SLACK_BOT_TOKEN": "xoxp-user", "SLACK_SIGNING_SECRET": "s"}, "must start with xoxb-"),
    ({"SLACK_BOT_TOKEN": "xoxb-1"}, "set SLACK_SIGNING_SECRET"),
    ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xoxb-2"}, "must start with xapp-"),
    ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "SLACK_API_URL": "slack.com"},
     "SLACK_API_URL is 'slack.com'"),
])
def test_half_configured_slack_says_what_to_set(env: dict[str, str], names: str) -> None:
    with pytest.raises(SettingsError, match=names):
        load_slack_settings(env)
