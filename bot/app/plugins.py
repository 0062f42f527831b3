"""What the composition root asks of every channel, and how it wires them in.

Each channel package exposes a ``plugin(...)`` factory returning an object of this shape
(structurally: channels do not import the root). The root registers each plugin's notifier
for its user-id prefix, mounts each on the web application, and prints what each says.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from aiohttp import web

from handlers.notify import NotifierRouter
from handlers.ports import Notifier


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


def route_notices(router: NotifierRouter, plugins: Iterable[ChannelPlugin]) -> None:
    """Send each plugin's users' notices to its notifier."""
    for plugin in plugins:
        notifier = plugin.notifier
        if plugin.prefix is not None and notifier is not None:
            router.register(plugin.prefix, notifier)


def mount_plugins(app: web.Application, plugins: Iterable[ChannelPlugin]) -> None:
    for plugin in plugins:
        plugin.mount(app)
