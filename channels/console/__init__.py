"""The terminal: ``safehaven chat``, and the development stand-ins for the other doors.

:func:`plugin` gives the composition root, in development, the console notifier (messages
for people not at the terminal, kept in ``var/notifications.log``) and, while Twilio is not
configured, the console password transport. Both refuse ``SAFEHAVEN_ENV=production``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bot.settings import Settings
from channels.console.notifier import ConsoleNotifier
from channels.console.transport import ConsoleTransport
from handlers.ports import Notifier

if TYPE_CHECKING:
    from aiohttp import web


class ConsolePlugin:
    """``console:`` users' notifier (development only: None in production, where the root
    keeps their messages) and the console transport when no real one is configured."""

    prefix = "console"

    def __init__(self, settings: Settings, *, password_transport: bool,
                 keep: Notifier | None = None) -> None:
        self.notifier: ConsoleNotifier | None = (
            None if settings.is_production
            else ConsoleNotifier(log_path=Path(settings.var_dir, "notifications.log"),
                                 production=False, keep=keep))
        self.transport: ConsoleTransport | None = (
            ConsoleTransport(outbox=settings.outbox_path, production=settings.is_production)
            if password_transport else None)

    def mount(self, app: web.Application) -> None:
        """The terminal has no routes."""

    def describe(self) -> list[str]:
        if self.transport is None:
            return []
        return ["Password delivery: console transport (development only): see var/outbox.log"]


def plugin(settings: Settings, *, password_transport: bool,
           keep: Notifier | None = None) -> ConsolePlugin:
    """The console for a process; ``password_transport``: no other transport is configured
    (the console one refuses production); ``keep``: where messages for ``console:`` users
    not at this terminal wait for them."""
    return ConsolePlugin(settings, password_transport=password_transport, keep=keep)
