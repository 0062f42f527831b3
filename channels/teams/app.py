"""Wiring Teams into a process: the notifier (every process) and the route (``serve``).

The composition root reads its Teams section with :func:`load_section` and calls
:func:`plugin` with it. The plugin's notifier
reaches ``teams:`` users from any process (``serve``, ``worker``, the CLI's ``approve``); it
builds the botbuilder machinery only when a Teams user is first notified, so commands that
never talk to Teams do not pay for importing it. :meth:`TeamsPlugin.mount` adds
``POST /api/messages`` to the aiohttp application and, when the application stops, finishes
uploads in flight and closes the channel's HTTP client. Neither happens without credentials
unless ``TEAMS_AUTH=off`` says so (:class:`TeamsSettings.servable`): without them the route
does not exist.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from bot.replies import Reply
from bot.settings import Settings
from channels.teams.settings import TeamsSettings, load_teams_settings
from handlers.ports import NoticeOutcome
from handlers.services import Services

if TYPE_CHECKING:
    from aiohttp import web

    from channels.teams.channel import TeamsChannel

log = logging.getLogger(__name__)
ROUTE = "/api/messages"
AUTH_OFF_LINE = (
    "Microsoft Teams: %s takes UNAUTHENTICATED activities (TEAMS_AUTH=off): for tests on "
    "this machine only, refused in production and off loopback"
)


class TeamsNotifier:
    """The notifier registered for ``teams:`` users; the channel is built on first use."""

    def __init__(self, svc: Services, settings: TeamsSettings, **options: Any) -> None:
        self.svc = svc
        self.settings = settings
        self.options = options
        self._channel: TeamsChannel | None = None

    def channel(self) -> TeamsChannel:
        if self._channel is None:
            from channels.teams.channel import TeamsChannel

            self._channel = TeamsChannel(self.svc, self.settings, **self.options)
        return self._channel

    async def notify(self, user_id: str, replies: Sequence[Reply], *,
                     reference: str | None = None) -> NoticeOutcome:
        return await self.channel().notify(user_id, replies, reference=reference)


class TeamsPlugin:
    """Teams in one process; inert (no notifier, no route) when it is not servable."""

    prefix = "teams"

    def __init__(self, svc: Services, settings: TeamsSettings | None,
                 **options: Any) -> None:
        self.notifier: TeamsNotifier | None = (
            TeamsNotifier(svc, settings, **options)
            if settings is not None and settings.servable else None)

    @property
    def channel(self) -> TeamsChannel | None:
        """The channel, built on first use; None when Teams is not served."""
        return self.notifier.channel() if self.notifier is not None else None

    def mount(self, app: web.Application) -> None:
        """Serve Teams on ``app`` (nothing when it is not servable)."""
        channel = self.channel
        if channel is None:
            return
        if channel.settings.auth_enabled:
            log.info("Microsoft Teams: %s for bot %s", ROUTE, channel.settings.app_id)
        app.router.add_post(ROUTE, channel.handle)

        async def lifecycle(app: web.Application) -> AsyncIterator[None]:
            keeper = asyncio.create_task(channel.uploads.keep(), name="teams upload leases")
            yield
            await channel.close()  # uploads still running keep their leases until they end
            keeper.cancel()
            with suppress(asyncio.CancelledError):
                await keeper

        app.cleanup_ctx.append(lifecycle)

    def describe(self) -> list[str]:
        return [describe(self.channel)]


def load_section(core: Settings, env: Mapping[str, str]) -> TeamsSettings | None:
    """The root's Teams section: the Teams variables when Teams is servable, else None."""
    settings = load_teams_settings(core, env)
    return settings if settings.servable else None


def plugin(svc: Services, settings: TeamsSettings | None, **options: Any) -> TeamsPlugin:
    """Teams for these services: ``settings`` is the root's Teams section (None: not
    served); ``options`` go to :class:`channels.teams.channel.TeamsChannel`."""
    return TeamsPlugin(svc, settings, **options)


def describe(channel: TeamsChannel | None) -> str:
    """The line ``safehaven serve`` prints about Teams."""
    if channel is None:
        return ("Microsoft Teams: not served (set MicrosoftAppId and MicrosoftAppPassword; "
                "see docs/teams.md)")
    if not channel.settings.auth_enabled:
        return AUTH_OFF_LINE % f"POST {ROUTE}"
    return f"Microsoft Teams: POST {ROUTE} (see docs/teams.md)"
