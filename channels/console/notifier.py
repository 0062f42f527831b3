"""Console notifications: messages for users other than the one at the terminal.

In the terminal there is one person; messages for anyone else (an approver, a sender told
of a decision made with ``safehaven approve``) are printed with who they are for, and kept
in ``var/notifications.log`` (0600) so they can be read later. Those messages name
recipients and carry download links, so like the console transport this is development
only: it is refused when ``SAFEHAVEN_ENV=production``, where such messages are kept in the
database for their person instead (``handlers.notify.HeldNotices``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from bot.private import open_private, private_dir
from bot.replies import Reply
from bot.settings import SettingsError
from channels.console.render import render
from handlers.ports import NoticeOutcome


class ConsoleNotifierRefused(SettingsError):
    """Production keeps messages for people it cannot reach; it never prints them."""


class ConsoleNotifier:
    def __init__(self, *, log_path: Path, production: bool,
                 stream: TextIO | None = None) -> None:
        if production:
            raise ConsoleNotifierRefused(
                "The console notifier is for development only and is refused when "
                "SAFEHAVEN_ENV=production: messages for people on a channel that is not "
                "configured are kept for them in the database instead.")
        self.log_path = log_path
        self.stream = stream

    async def notify(self, user_id: str, replies: Sequence[Reply], *,
                     reference: str | None = None) -> NoticeOutcome:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        text = "\n".join(render(r) for r in replies)
        block = f"\n[{stamp}] message for {user_id}:\n{text}\n"
        private_dir(self.log_path.parent)
        with open_private(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(block)
        (self.stream if self.stream is not None else sys.stdout).write(block)
        return NoticeOutcome.DELIVERED
