"""Route notifications to the channel a user belongs to, by the prefix of their id.

User ids are channel-qualified (``console:alice``, ``slack:U123``, ``teams:29:1a…``); each
channel registers its notifier for its prefix, and the console notifier takes the rest.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.replies import Reply
from handlers.ports import Notifier


class NotifierRouter:
    def __init__(self, fallback: Notifier) -> None:
        self.fallback = fallback
        self.routes: dict[str, Notifier] = {}

    def register(self, prefix: str, notifier: Notifier) -> None:
        """Send to ``notifier`` every user id starting with ``prefix + ':'``."""
        self.routes[prefix] = notifier

    async def notify(self, user_id: str, replies: Sequence[Reply], *,
                     reference: str | None = None) -> None:
        prefix = user_id.split(":", 1)[0]
        target = self.routes.get(prefix, self.fallback)
        await target.notify(user_id, replies, reference=reference)
