"""Slack settings, read from the environment and checked at start-up.

Slack is optional: with no ``SLACK_*`` variable set, :func:`load_slack_settings` returns None
and ``safehaven serve`` runs without it. Once any is set, a missing or malformed one stops
start-up with a sentence saying which variable to set and where to find its value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from bot.egress import HostRule, rule_for_url, service_url_problem
from bot.messages import slack as msg
from bot.settings import SettingsError

DEFAULT_API_URL = "https://slack.com/api/"
VARIABLES = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SLACK_API_URL",
             "SLACK_TEAM_IDS", "SLACK_INBOX_LEASE_SECONDS")
DEFAULT_INBOX_LEASE = 30.0
TEAM_ID = re.compile(r"^[TE][A-Z0-9]{2,20}$")


@dataclass(frozen=True)
class SlackSettings:
    bot_token: str
    signing_secret: str | None
    app_token: str | None
    api_url: str
    # Workspaces served besides the bot's own (found from its token): the other workspaces
    # of an Enterprise Grid organisation. Everyone else is refused.
    team_ids: frozenset[str] = frozenset()
    # Seconds a replica's acknowledged messages are leased to it (renewed while it lives);
    # a dead replica's are taken over by a live one after this (channels/slack/inbox.py).
    inbox_lease_seconds: float = DEFAULT_INBOX_LEASE

    @property
    def http_events(self) -> bool:
        """Requests arrive at ``POST /slack/events`` (they need the signing secret)."""
        return self.signing_secret is not None

    @property
    def socket_mode(self) -> bool:
        return self.app_token is not None

    @property
    def api_hosts(self) -> tuple[HostRule, ...]:
        """The host and port of ``SLACK_API_URL``, which may serve files too (a proxy, a
        test); Slack's own file host is in :data:`bot.egress.PLATFORM_HOSTS`."""
        parts = urlsplit(self.api_url)
        return (rule_for_url(parts.scheme, parts.hostname or "", parts.port),)

    def __repr__(self) -> str:  # never print the secrets
        return (f"SlackSettings(http_events={self.http_events}, socket_mode={self.socket_mode}, "
                f"api_url={self.api_url!r})")


def load_slack_settings(env: Mapping[str, str] | None = None) -> SlackSettings | None:
    """None when Slack is not configured at all; :class:`SettingsError` when half-configured."""
    env = os.environ if env is None else env
    values = {name: (env.get(name) or "").strip() for name in VARIABLES}
    if not any(values[name] for name in VARIABLES[:3]):
        return None
    token = values["SLACK_BOT_TOKEN"]
    if not token:
        raise SettingsError(msg.SETTING_BOT_TOKEN_MISSING)
    if not token.startswith("xoxb-"):
        raise SettingsError(msg.SETTING_BOT_TOKEN_FORMAT)
    secret = values["SLACK_SIGNING_SECRET"] or None
    app_token = values["SLACK_APP_TOKEN"] or None
    if secret is None and app_token is None:
        raise SettingsError(msg.SETTING_NO_WAY_IN)
    if app_token is not None and not app_token.startswith("xapp-"):
        raise SettingsError(msg.SETTING_APP_TOKEN_FORMAT)
    api_url = values["SLACK_API_URL"] or DEFAULT_API_URL
    parts = urlsplit(api_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(msg.SETTING_API_URL.format(value=api_url))
    problem = service_url_problem("SLACK_API_URL", api_url, production=(
        env.get("SAFEHAVEN_ENV") or "").strip().lower() == "production")
    if problem:  # the bot token goes there
        raise SettingsError(problem)
    if not api_url.endswith("/"):
        api_url += "/"
    teams = frozenset(t.strip() for t in values["SLACK_TEAM_IDS"].split(",") if t.strip())
    for team in teams:
        if not TEAM_ID.match(team):
            raise SettingsError(msg.SETTING_TEAM_IDS.format(value=team))
    lease = values["SLACK_INBOX_LEASE_SECONDS"] or str(DEFAULT_INBOX_LEASE)
    try:
        lease_seconds = float(lease)
    except ValueError:
        lease_seconds = 0.0
    if not 1 <= lease_seconds <= 3600:
        raise SettingsError(msg.SETTING_INBOX_LEASE.format(value=lease))
    return SlackSettings(bot_token=token, signing_secret=secret, app_token=app_token,
                         api_url=api_url, team_ids=teams, inbox_lease_seconds=lease_seconds)
