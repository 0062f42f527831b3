"""The process's configuration, read from the environment once, at start-up.

:func:`load_config` runs every settings loader in turn (the core ``SAFEHAVEN_*`` variables,
then Slack, Teams and Twilio) and returns one :class:`Config`; from then on nothing reads
the environment again: each channel is handed its own section. A section is None when that
channel is not configured (Teams: not servable); a half-configured one stops start-up with
the loader's :class:`bot.settings.SettingsError`, which names the variable to set. Commands
that reach no channel (``generate-key``, ``migrate``, ``teams-package``) read the core alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from bot.settings import Settings, load_settings
from channels.slack.settings import SlackSettings, load_slack_settings
from channels.teams.settings import TeamsSettings, load_teams_settings
from channels.twilio.settings import TwilioSettings, load_twilio_settings


@dataclass(frozen=True)
class Config:
    core: Settings
    slack: SlackSettings | None = None
    teams: TeamsSettings | None = None  # None: Teams is not served
    twilio: TwilioSettings | None = None  # None: the development console transport


def load_config(env: Mapping[str, str] | None = None, *, channels: bool = True) -> Config:
    """Read every section from ``env`` (default: the process environment); with
    ``channels=False``, the core alone (for commands that reach no channel)."""
    env = dict(os.environ) if env is None else env
    core = load_settings(env)
    if not channels:
        return Config(core=core)
    twilio = load_twilio_settings(env)
    teams = load_teams_settings(core, env)
    return Config(core=core, slack=load_slack_settings(env),
                  teams=teams if teams.servable else None, twilio=twilio)
