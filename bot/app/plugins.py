"""What the composition root asks of every channel, and the one table that wires them in.

Each channel package exposes a ``plugin(svc, section)`` factory returning a
:class:`ChannelPlugin` (structurally: channels do not import the root) and a loader for its
configuration section. :data:`CHANNELS` names them, one :class:`Wiring` per channel; the
root reads every section from it (:mod:`bot.app.config`), builds every plugin from it
(:mod:`bot.app.runtime`), adds the commands it brings (:mod:`bot.app.cli`), registers each
plugin's notifier for its user-id prefix, mounts each on the web application, and prints
what each says. Adding a channel adds one line to :data:`CHANNELS`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

import channels.portal
import channels.slack
import channels.teams.app
import channels.teams.package
import channels.twilio
from bot.settings import Settings
from channels.slack.settings import load_slack_settings
from channels.twilio.settings import load_twilio_settings
from handlers.notify import NotifierRouter
from handlers.ports import Notifier
from handlers.services import Services


class ChannelPlugin(Protocol):
    @property
    def prefix(self) -> str | None:
        """The user-id prefix (``slack`` for ``slack:U123``) it reaches; None: no users."""

    @property
    def notifier(self) -> Notifier | None:
        """How it reaches its users outside a conversation; None when not configured."""

    def mount(self, app: web.Application) -> None:
        """Add its routes and lifecycle (nothing when not configured)."""

    def describe(self) -> Sequence[str]:
        """The lines ``safehaven serve`` prints about it."""


@dataclass(frozen=True)
class Command:
    """A ``safehaven`` subcommand a channel brings; it reads the core settings alone."""

    name: str
    add_parser: Callable[[Any], argparse.ArgumentParser]  # given the subparsers action
    run: Callable[[Settings, argparse.Namespace], int]


def no_section(core: Settings, env: Mapping[str, str]) -> None:
    """The loader of a channel configured by the core settings alone."""
    return None


@dataclass(frozen=True)
class Wiring:
    """One channel as the root wires it: ``load`` reads its section from the core settings
    and the environment (None: not configured; :class:`bot.settings.SettingsError` when
    half-configured), ``plugin`` builds it from that section."""

    name: str
    load: Callable[[Settings, Mapping[str, str]], Any]
    plugin: Callable[[Services, Any], ChannelPlugin]
    commands: tuple[Command, ...] = ()


# Sections are read in this order (the first half-configured one stops start-up), plugins
# built, mounted and described in it. The development console is not here: it is the
# runtime's fallback (bot/app/runtime.py), not a channel one configures.
CHANNELS: tuple[Wiring, ...] = (
    Wiring("portal", no_section, lambda svc, _: channels.portal.plugin(svc)),
    Wiring("twilio", lambda _, env: load_twilio_settings(env), channels.twilio.plugin),
    Wiring("teams", channels.teams.app.load_section, channels.teams.app.plugin, (Command(
        "teams-package", channels.teams.package.add_teams_package_parser,
        channels.teams.package.cmd_teams_package),)),
    Wiring("slack", lambda _, env: load_slack_settings(env), channels.slack.plugin),
)


def route_notices(router: NotifierRouter, plugins: Iterable[ChannelPlugin]) -> None:
    """Send each plugin's users' notices to its notifier."""
    for plugin in plugins:
        notifier = plugin.notifier
        if plugin.prefix is not None and notifier is not None:
            router.register(plugin.prefix, notifier)


def mount_plugins(app: web.Application, plugins: Iterable[ChannelPlugin]) -> None:
    for plugin in plugins:
        plugin.mount(app)
