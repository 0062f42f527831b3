"""The Slack channel (slack-bolt): direct messages with the bot, in-chat approvals, and
receipts, on the same aiohttp server as everything else or over Socket Mode.

Two entry points for the composition root:

* :func:`attach_slack`, when services are built: with Slack settings present, it registers
  the Slack notifier for ``slack:`` user ids, so every process (``serve``, ``worker``,
  ``approve`` at the command line) can tell a Slack user what happened;
* :func:`mount_slack`, in ``serve`` only: the ``/slack/events`` route, Socket Mode, and the
  lifecycle.

Importing this package does not import slack-bolt, so a server without Slack settings never
loads it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING

from bot.messages import slack as msg
from channels.slack.settings import SlackSettings, load_slack_settings

if TYPE_CHECKING:
    from aiohttp import web

    from channels.slack.channel import SlackChannel
    from handlers.services import Services


def attach_slack(svc: Services, *, settings: SlackSettings | None = None,
                 env: Mapping[str, str] | None = None) -> SlackChannel | None:
    """Build the Slack channel when Slack is configured (``settings``, else ``SLACK_*``
    variables) and route ``slack:`` notifications to it; None when it is not."""
    from channels.slack.channel import SlackChannel
    from channels.slack.notifier import SlackNotifier
    from handlers.notify import NotifierRouter

    settings = settings or load_slack_settings(env)
    if settings is None:
        return None
    channel = SlackChannel(svc, settings)
    if isinstance(svc.notifier, NotifierRouter):
        svc.notifier.register("slack", SlackNotifier(channel))
    return channel


def attached(svc: Services) -> SlackChannel | None:
    """The channel :func:`attach_slack` registered for these services, if any."""
    from channels.slack.notifier import SlackNotifier
    from handlers.notify import NotifierRouter

    if isinstance(svc.notifier, NotifierRouter):
        notifier = svc.notifier.routes.get("slack")
        if isinstance(notifier, SlackNotifier):
            return notifier.channel
    return None


def mount_slack(app: web.Application, svc: Services) -> SlackChannel | None:
    """Serve Slack on an application built by :func:`bot.app.web.create_app`; None (and nothing
    mounted) when Slack is not attached to ``svc``.

    The lifecycle: Socket Mode connects at start-up and disconnects first at shutdown; work
    in hand is awaited while the database is still open; the HTTP session closes last, after
    the scheduler (which may notify Slack users) has stopped.
    """
    from channels.slack.http import PATH, SLACK_CHANNEL, slack_events

    channel = attached(svc)
    if channel is None:
        return None
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
    return channel


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
