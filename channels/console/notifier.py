"""Console notifications: messages for users other than the one at the terminal.

In the terminal there is one person; messages for anyone else (an approver, a sender told
of a decision made with ``safehaven approve``) are printed with who they are for, and kept
in ``var/notifications.log`` so they can be read later.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from bot.replies import Reply
from channels.console.render import render


class ConsoleNotifier:
    def __init__(self, *, log_path: Path, stream: TextIO | None = None) -> None:
        self.log_path = log_path
        self.stream = stream

    async def notify(self, user_id: str, replies: Sequence[Reply], *,
                     reference: str | None = None) -> None:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        text = "\n".join(render(r) for r in replies)
        block = f"\n[{stamp}] message for {user_id}:\n{text}\n"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a", encoding="utf-8") as fh:
            fh.write(block)
        (self.stream if self.stream is not None else sys.stdout).write(block)
