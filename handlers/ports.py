"""The ports handlers talk to; channels provide the implementations.

Handlers never import a Slack, Teams or Twilio type: they send neutral replies through a
:class:`Notifier` and passwords through a :class:`PasswordTransport`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.replies import Reply


class Notifier(Protocol):
    """Delivers replies to a user who is not the one currently talking to the bot
    (an approver, or a sender receiving a receipt)."""

    async def notify(self, user_id: str, replies: Sequence[Reply], *,
                     reference: str | None = None) -> None: ...


@dataclass(frozen=True)
class SendOutcome:
    """What a transport reports: ``delivered`` when it knows the message arrived, ``sent``
    when it was handed on, ``failed`` with a reason the sender can act on."""

    status: str  # sent | delivered | failed
    detail: str = ""
    retryable: bool = False


class PasswordTransport(Protocol):
    """Sends the archive password out of band (SMS or a voice call)."""

    name: str

    async def send_sms(self, *, to: str, text: str, reference: str) -> SendOutcome: ...

    async def place_call(self, *, to: str, extension: str | None, script: Sequence[str],
                         reference: str) -> SendOutcome: ...
