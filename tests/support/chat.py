"""One way to drive a person's conversation with Safe Haven, whatever the channel.

A :class:`ChatUser` does what a person does (send files, type, press a button, fill in a form,
pick a date and time, approve or reject, save the archive) and shows what they were told as
text. Each channel implements it through its own real entry point: the console through the
turns the terminal chat takes, Slack through signed requests to ``/slack/events`` against a
fake Slack Web API, Teams through activities posted to ``/api/messages`` against a fake Bot
Connector and OneDrive. A :class:`World` is one running Safe Haven with one channel, a fake
Twilio for the password, and the app on a local port for the recipient's portal downloads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from aiohttp.test_utils import TestClient

from bot.options import CANCEL_QUESTION
from handlers.conversation import current_state
from handlers.services import Services
from tests.support.fake_twilio import FakeTwilio

CANCEL_YES_LABEL = "Yes, cancel"  # how the confirmation's yes starts (bot.messages)
REFERENCE = re.compile(r"SH-[0-9A-Z]{4}-[0-9A-Z]{2}")
PORTAL_LINK = re.compile(r"https?://[^\s<>|\"']+/p/[A-Za-z0-9_-]{20,}")


class ChatUser(Protocol):
    """One person in a conversation with Safe Haven on one channel."""

    user_id: str  # channel-qualified: console:NAME, slack:UXXXX, teams:AAD-ID

    async def send_files(self, *paths: Path) -> None:
        """Send these files to the bot, in one message."""

    async def say(self, text: str) -> None:
        """Type a message (an answer, or a command such as ``received REF``)."""

    async def choose(self, label: str) -> None:
        """Pick the option of the open question whose label starts with ``label``."""

    async def choose_several(self, *labels: str) -> None:
        """Pick every option of the open several-choice question whose label starts with
        one of ``labels`` (ticked boxes and the button on Slack, a multi-select on Teams,
        numbers separated by commas in the terminal), and send them."""

    async def answer(self, text: str) -> None:
        """Answer the open free-text question the way this channel asks it."""

    async def fill(self, values: Mapping[str, str]) -> None:
        """Fill in the open form (field name to value) and submit it."""

    async def pick_time(self, when: datetime) -> None:
        """Answer the date-and-time question with ``when`` (local time)."""

    async def approve(self, reference: str) -> None:
        """As an approver: approve the request for ``reference``."""

    async def reject(self, reference: str, reason: str) -> None:
        """As an approver: reject the request for ``reference``, giving ``reason``."""

    async def archive(self, reference: str) -> bytes:
        """Save the archive handed back for ``reference`` (as this channel hands it over)."""

    async def current_question(self) -> str | None:
        """The question Safe Haven is waiting for this person to answer (None when idle)."""

    @property
    def conversation_id(self) -> str:
        """The core's id of this person's conversation with Safe Haven."""

    @property
    def text(self) -> str:
        """Everything Safe Haven has shown this person, as they read it."""

    def mark(self) -> int:
        """A place in what this person was shown, for :meth:`since`."""

    def since(self, mark: int) -> str:
        """What this person was shown after ``mark`` (cards replaced since included)."""


class World(Protocol):
    """One running Safe Haven with one channel, a fake Twilio, and the app on a port."""

    channel: str
    svc: Services
    twilio: FakeTwilio
    portal: TestClient  # type: ignore[type-arg]

    async def sender(self) -> ChatUser:
        """Alice, who shares files."""

    async def approver(self) -> ChatUser:
        """The manager listed as approver for every sender."""


@dataclass(frozen=True)
class Share:
    """How a share is answered, question by question, in a scenario."""

    classification: str = "CONTROLLED"
    categories: tuple[str, ...] = ("Contact details only", "Other personal data")
    delivery: str = "Encrypted archive"
    password: str = "SMS now"
    call_at: datetime | None = None


async def conversation_step(svc: Services, conversation_id: str) -> str | None:
    """The question the core waits on in ``conversation_id`` (None when idle): the
    confirmation of a cancel (:data:`~bot.options.CANCEL_QUESTION`) while one is asked."""
    state = await current_state(svc, conversation_id=conversation_id)
    if state.cancel_pending is not None:
        return CANCEL_QUESTION
    return None if state.step == "idle" else str(state.step)


async def confirm_cancel(user: ChatUser) -> None:
    """Say yes when Safe Haven asks to confirm a cancel (Slack's Cancel button asked on the
    platform already, so nothing is asked there)."""
    if await user.current_question() == CANCEL_QUESTION:
        await user.choose(CANCEL_YES_LABEL)


async def cancel(user: ChatUser, reference: str | None = None) -> None:
    """Type ``cancel`` (or ``cancel REF``) and confirm it, as a person does."""
    await user.say(f"cancel {reference}" if reference else "cancel")
    assert await user.current_question() == CANCEL_QUESTION, user.text[-500:]
    await user.choose(CANCEL_YES_LABEL)


def reference_in(text: str) -> str:
    found = REFERENCE.search(text)
    assert found, text
    return found.group(0)


def portal_link_in(text: str) -> str:
    found = PORTAL_LINK.findall(text)
    assert found, text
    return str(found[-1])
