"""Console notifications: each person at a terminal sees their own messages, and only those.

The terminal has one person at a time: whoever runs the command (``safehaven chat
--sender``, ``approve --approver``, ...), told to the notifier with :meth:`at_terminal`. A
message for them is printed at once. A message for another ``console:`` user (the approver
asked to authorise, a sender told of a decision made with ``safehaven approve``) is kept for
that person (``keep``: :class:`handlers.notify.HeldNotices`, sealed in the database) and
shown when they next run ``safehaven chat``, ``share``, ``approve`` or ``received``; a
running ``safehaven chat`` shows it as it arrives. A message for someone on a channel not
configured here is for a developer to read in the log alone.

Every message is also appended to ``var/notifications.log`` (0600) for the developer.
Those messages name recipients and carry download links, so this is development only: it is
refused when ``SAFEHAVEN_ENV=production``, where every message for someone not reached is
kept in the database for its person instead.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from bot.private import open_private, private_dir
from bot.replies import Reply
from bot.settings import SettingsError
from channels.console.render import render
from handlers.ports import NoticeOutcome, Notifier

PREFIX = "console"


class ConsoleNotifierRefused(SettingsError):
    """Production keeps messages for people it cannot reach; it never prints them."""


class ConsoleNotifier:
    def __init__(self, *, log_path: Path, production: bool, keep: Notifier | None = None,
                 stream: TextIO | None = None) -> None:
        """``keep`` holds the messages of ``console:`` users not at this terminal (None:
        the log alone)."""
        if production:
            raise ConsoleNotifierRefused(
                "The console notifier is for development only and is refused when "
                "SAFEHAVEN_ENV=production: messages for people on a channel that is not "
                "configured are kept for them in the database instead.")
        self.log_path = log_path
        self.keep = keep
        self.stream = stream
        self.present: frozenset[str] = frozenset()

    def at_terminal(self, user_ids: Iterable[str]) -> None:
        """The ids of the person at this terminal: their messages are printed here."""
        self.present = frozenset(user_ids)

    async def notify(self, user_id: str, replies: Sequence[Reply], *,
                     reference: str | None = None) -> NoticeOutcome:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        text = "\n".join(render(r) for r in replies)
        private_dir(self.log_path.parent)
        with open_private(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(f"\n[{stamp}] message for {user_id}:\n{text}\n")
        if user_id in self.present:
            out = self.stream if self.stream is not None else sys.stdout
            out.write(f"\n{text}\n")
            out.flush()
        elif user_id.split(":", 1)[0] == PREFIX and self.keep is not None:
            # The terminal's way of delivering: on the person's next command.
            await self.keep.notify(user_id, replies, reference=reference)
        return NoticeOutcome.DELIVERED
