"""Wiring Teams into a process: the notifier (every process) and the route (``serve``).

``attach_teams`` registers a notifier for ``teams:`` users on the services' notifier
router, so any process (``serve``, ``worker``, the CLI's ``approve``) can reach Teams users;
it builds the botbuilder machinery only when a Teams user is first notified, so commands
that never talk to Teams do not pay for importing it. ``mount_teams`` adds
``POST /api/messages`` to the aiohttp application and, when the application stops, finishes
uploads in flight and closes the channel's HTTP client. Neither happens without credentials
unless ``TEAMS_AUTH=off`` says so (:class:`TeamsSettings.servable`): without them the route
does not exist.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from bot.replies import Reply
from channels.teams.settings import TeamsSettings, load_teams_settings
from handlers.notify import NotifierRouter
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
                     reference: str | None = None) -> None:
        await self.channel().notify(user_id, replies, reference=reference)


def attach_teams(svc: Services, settings: TeamsSettings | None = None,
                 **options: Any) -> TeamsNotifier | None:
    """Route ``teams:`` users to Teams if it is configured; None when it is not."""
    teams = settings if settings is not None else load_teams_settings(svc.settings)
    if not teams.servable or not isinstance(svc.notifier, NotifierRouter):
        return None
    notifier = TeamsNotifier(svc, teams, **options)
    svc.notifier.register("teams", notifier)
    return notifier


def mount_teams(app: web.Application, svc: Services) -> TeamsChannel | None:
    """Serve Teams on ``app`` when it is configured; returns the channel, or None."""
    routes = svc.notifier.routes if isinstance(svc.notifier, NotifierRouter) else {}
    notifier = routes.get("teams")
    if not isinstance(notifier, TeamsNotifier):
        notifier = attach_teams(svc)
    if notifier is None:
        return None
    channel = notifier.channel()
    if not channel.settings.servable:
        return None
    if channel.settings.auth_enabled:
        log.info("Microsoft Teams: %s for bot %s", ROUTE, channel.settings.app_id)
    app.router.add_post(ROUTE, channel.handle)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        yield
        await channel.close()

    app.cleanup_ctx.append(lifecycle)
    return channel


def describe(channel: TeamsChannel | None) -> str:
    """The line ``safehaven serve`` prints about Teams."""
    if channel is None:
        return ("Microsoft Teams: not served (set MicrosoftAppId and MicrosoftAppPassword; "
                "see docs/teams.md)")
    if not channel.settings.auth_enabled:
        return AUTH_OFF_LINE % f"POST {ROUTE}"
    return f"Microsoft Teams: POST {ROUTE} (see docs/teams.md)"
