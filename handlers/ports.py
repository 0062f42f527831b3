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
    """What a transport reports for one attempt.

    ``delivered``: it knows the recipient got it (the console transport). ``sent``: the
    provider accepted it and will report the outcome by callback (``provider_sid`` names the
    attempt). ``failed``: with ``detail`` the sender can act on, and ``retryable`` when trying
    again later may help (provider 5xx, 429, timeouts)."""

    status: str  # sent | delivered | failed
    detail: str = ""
    retryable: bool = False
    provider_sid: str | None = None


class PasswordTransport(Protocol):
    """Sends the archive password out of band (SMS or a voice call).

    A transport with ``interactive_calls`` runs the call itself through webhooks (the code
    check, then the password): ``place_call`` gets no script. Otherwise ``script`` holds the
    lines to say, password included (the development console transport)."""

    name: str
    interactive_calls: bool

    async def send_sms(self, *, to: str, text: str, reference: str,
                       delivery_id: int) -> SendOutcome: ...

    async def place_call(self, *, to: str, extension: str | None,
                         script: Sequence[str] | None, reference: str,
                         delivery_id: int) -> SendOutcome: ...
