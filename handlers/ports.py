"""The ports handlers talk to; channels provide the implementations.

Handlers never import a Slack, Teams or Twilio type: they send neutral replies through a
:class:`Notifier` and passwords through a :class:`PasswordTransport`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Protocol, runtime_checkable

from bot.replies import Reply
from bot.statuses import SendStatus


class NoticeOutcome(Enum):
    """What became of a notification: handed to the person's channel; ``UNREACHABLE``: their
    channel is set up but could not take it (a Teams user who never opened a chat with the
    bot, a Slack error), said by a channel's notifier; ``HELD``: kept for them (see
    :mod:`handlers.notify`), as the router does with both an unreachable person's messages and
    those for a channel that is not configured here."""

    DELIVERED = "delivered"
    UNREACHABLE = "unreachable"
    HELD = "held"


class Notifier(Protocol):
    """Delivers replies to a user who is not the one currently talking to the bot
    (an approver, or a sender receiving a receipt), and says what became of them: a
    channel's notifier never keeps a message it could not deliver (it answers
    ``UNREACHABLE``, and the router keeps it, sealed, in one place)."""

    async def notify(self, user_id: str, replies: Sequence[Reply], *,
                     reference: str | None = None) -> NoticeOutcome: ...


@dataclass(frozen=True)
class SendOutcome:
    """What a transport reports for one attempt.

    ``delivered``: it knows the recipient got it (the console transport). ``sent``: the
    provider accepted it and will report the outcome by callback (``provider_sid`` names the
    attempt). ``failed``: the provider certainly did not take it (it could not be reached,
    or it answered with an error), with ``detail`` the sender can act on, and ``retryable``
    when trying again later may help (connection refused, provider 5xx, 429).
    ``unconfirmed``: the request may have reached the provider but no answer came (a read
    timeout after it was sent, a dropped connection, a garbled answer): it may have been
    accepted, so it is never simply retried; the scheduler waits for a callback, then asks
    the provider (:class:`Reconciler`)."""

    status: SendStatus  # SENT | DELIVERED | FAILED | UNCONFIRMED
    detail: str = ""
    retryable: bool = False
    provider_sid: str | None = None


class PasswordTransport(Protocol):
    """Sends the archive password out of band (SMS or a voice call).

    A transport with ``interactive_calls`` runs the call itself through webhooks (the code
    check, then the password): ``place_call`` gets no script. Otherwise ``script`` holds the
    lines to say, password included (the development console transport). A transport that
    can report ``unconfirmed`` should also be a :class:`Reconciler`; without one, an
    unconfirmed send is reported as interrupted when its wait is over."""

    name: str
    interactive_calls: bool

    async def send_sms(self, *, to: str, text: str, reference: str,
                       delivery_id: int) -> SendOutcome: ...

    async def place_call(self, *, to: str, extension: str | None,
                         script: Sequence[str] | None, reference: str,
                         delivery_id: int) -> SendOutcome: ...


@dataclass(frozen=True)
class ProviderRecord:
    """One message or call the provider holds, as its list shows it (no message text: the
    text holds the password). ``mentions_reference``: whether the message text names the
    delivery's reference (None when the provider does not show the text, e.g. redacted, and
    for calls)."""

    sid: str
    status: str  # the provider's status, lower case (queued, sent, delivered, completed, …)
    created_at: datetime | None
    mentions_reference: bool | None = None
    error: str | None = None


@runtime_checkable
class Reconciler(Protocol):
    """A transport that can say what it sent, for an ``unconfirmed`` attempt. Each method
    returns what the provider holds to ``to`` since ``since`` (it may return more; the
    caller filters), and raises when the provider cannot be asked."""

    async def list_messages(self, *, to: str, since: datetime,
                            reference: str) -> Sequence[ProviderRecord]: ...

    async def list_calls(self, *, to: str, since: datetime) -> Sequence[ProviderRecord]: ...
