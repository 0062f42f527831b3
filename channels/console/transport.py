"""The development password transport: shows what would be texted or said.

It writes the exact SMS text, or the call script, to standard output and appends it to
``var/outbox.log`` (0600): a stand-in for the recipient's phone while no Twilio account is set up.
It necessarily contains the password, so it is refused when ``SAFEHAVEN_ENV=production``.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from bot.private import open_private, private_dir
from bot.settings import SettingsError
from bot.statuses import SendStatus
from handlers.ports import SendOutcome

BANNER = "DEVELOPMENT ONLY - console password transport (no SMS or call is really made)"


class ConsoleTransportRefused(SettingsError):
    """Production must use a real transport."""


class ConsoleTransport:
    name = "console-transport"
    interactive_calls = False

    def __init__(self, *, outbox: Path, production: bool, stream: TextIO | None = None) -> None:
        if production:
            raise ConsoleTransportRefused(
                "The console password transport is for development only and is refused when "
                "SAFEHAVEN_ENV=production. Configure Twilio (TWILIO_ACCOUNT_SID, "
                "TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER).")
        self.outbox = outbox
        self.stream = stream

    def _write(self, block: str) -> None:
        private_dir(self.outbox.parent)
        with open_private(self.outbox, "a", encoding="utf-8") as fh:
            fh.write(block)
        out = self.stream if self.stream is not None else sys.stdout
        out.write(block)
        out.flush()

    async def send_sms(self, *, to: str, text: str, reference: str,
                       delivery_id: int) -> SendOutcome:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        block = f"\n--- {BANNER}\n--- {stamp} SMS to {to} ({reference})\n{text}\n---\n"
        await asyncio.to_thread(self._write, block)
        return SendOutcome(SendStatus.DELIVERED, "console transport")

    async def place_call(self, *, to: str, extension: str | None,
                         script: Sequence[str] | None, reference: str,
                         delivery_id: int) -> SendOutcome:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        dial = f"{to} ext {extension}" if extension else to
        body = "\n".join(f"  {line}" for line in script or ())
        block = f"\n--- {BANNER}\n--- {stamp} voice call to {dial} ({reference})\n{body}\n---\n"
        await asyncio.to_thread(self._write, block)
        return SendOutcome(SendStatus.DELIVERED, "console transport")
