"""The Slack channel (slack-bolt): direct messages with the bot, in-chat approvals, and
receipts, on the same aiohttp server as everything else or over Socket Mode.

The composition root wires it through :func:`plugin`: with Slack settings present, the
plugin's notifier reaches ``slack:`` user ids in every process (``serve``, ``worker``,
``approve`` at the command line), and in ``serve`` its :meth:`SlackPlugin.mount` adds the
``/slack/events`` route, Socket Mode and the lifecycle.

Importing this package does not import slack-bolt, so a server without Slack settings never
loads it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from bot.messages import slack as msg
from channels.slack.settings import SlackSettings

if TYPE_CHECKING:
    from aiohttp import web

    from channels.slack.channel import SlackChannel
    from channels.slack.notifier import SlackNotifier
    from handlers.services import Services


class SlackPlugin:
    """Slack in one process: ``slack:`` users' notifier and, in ``serve``, the routes.

    Without settings it is inert: no notifier, nothing mounted, and ``serve`` says so."""

    prefix = "slack"

    def __init__(self, svc: Services, settings: SlackSettings | None) -> None:
        self.svc = svc
        self.channel: SlackChannel | None = None
        self.notifier: SlackNotifier | None = None
        if settings is not None:
            from channels.slack.channel import SlackChannel
            from channels.slack.notifier import SlackNotifier

            self.channel = SlackChannel(svc, settings)
            self.notifier = SlackNotifier(self.channel)

    def mount(self, app: web.Application) -> None:
        """Serve Slack on ``app`` (nothing without settings).

        The lifecycle: Socket Mode connects at start-up and disconnects first at shutdown;
        work in hand is awaited while the database is still open; the HTTP session closes
        last, after the scheduler (which may notify Slack users) has stopped.
        """
        from channels.slack.http import PATH, SLACK_CHANNEL, slack_events

        channel = self.channel
        if channel is None:
            return
        app[SLACK_CHANNEL] = channel
        if channel.settings.http_events:
            app.router.add_post(PATH, slack_events)

        async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
            await channel.startup()
            yield
            await channel.drain()

        app.cleanup_ctx.append(lifecycle)
        app.on_shutdown.append(channel.stop_receiving)
        app.on_cleanup.append(channel.close)

    def describe(self) -> list[str]:
        settings = self.svc.settings
        return describe(self.channel, base_url=f"http://{settings.host}:{settings.port}")


def plugin(svc: Services, settings: SlackSettings | None) -> SlackPlugin:
    """Slack for these services: ``settings`` is the root's Slack section (None: not
    configured)."""
    return SlackPlugin(svc, settings)


def describe(channel: SlackChannel | None, *, base_url: str) -> list[str]:
    """What ``safehaven serve`` prints about Slack."""
    if channel is None:
        return [msg.SERVE_WITHOUT_SLACK]
    lines = []
    if channel.settings.http_events:
        lines.append(msg.SERVE_SLACK_HTTP.format(url=base_url))
    if channel.settings.socket_mode:
        lines.append(msg.SERVE_SLACK_SOCKET)
    return lines
