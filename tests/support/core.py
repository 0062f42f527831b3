"""Helpers for tests of the core and the console channel: a controllable clock, a notifier
that records what it was given, a sample file and valid answers, and :class:`Conversation`,
which takes turns directly (as the terminal chat does) so that multi-turn tests read like
conversations. The fixtures that build on them are in ``tests/conftest.py``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.events import Answer, Event, FilesReceived
from bot.options import is_cancel_question
from bot.replies import Ask, Choice, Form, Reply
from handlers.conversation import Turn, parse_text, take_turn
from handlers.intake import stage_local_file
from handlers.ports import NoticeOutcome
from handlers.services import Services

# A Monday morning in November, inside the default call window.
START = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@dataclass
class RecordingNotifier:
    sent: list[tuple[str, list[Reply]]] = field(default_factory=list)

    async def notify(self, user_id: str, replies: Sequence[Reply], *,
                     reference: str | None = None) -> NoticeOutcome:
        self.sent.append((user_id, list(replies)))
        return NoticeOutcome.DELIVERED

    def for_user(self, user_id: str) -> list[Reply]:
        return [r for u, rs in self.sent if u == user_id for r in rs]


PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]"
       b"/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")


class Conversation:
    """Drive one user's conversation: ``await chat.send_files(...)``, ``await chat.say(...)``."""

    def __init__(self, svc: Services, user_id: str) -> None:
        self.svc = svc
        self.user_id = user_id
        self.last: Turn | None = None

    @property
    def pending(self) -> Choice | Ask | Form | None:
        if self.last is None:
            return None
        for reply in reversed(self.last.replies):
            if isinstance(reply, Choice | Ask | Form):
                return reply
        return None

    @property
    def question(self) -> str | None:
        pending = self.pending
        return pending.question if pending else None

    @property
    def text(self) -> str:
        from channels.console.render import render

        return "\n".join(render(r) for r in (self.last.replies if self.last else []))

    async def event(self, event: Event) -> Turn:
        self.last = await take_turn(self.svc, conversation_id=self.user_id,
                                    user_id=self.user_id, event=event)
        return self.last

    async def send_files(self, *paths: Path) -> Turn:
        staged = [stage_local_file(self.svc.settings, p) for p in paths]
        return await self.event(FilesReceived(tuple(staged)))

    async def say(self, value: str | dict[str, str]) -> Turn:
        if isinstance(value, str):
            return await self.event(parse_text(value, question=self.question))
        return await self.event(Answer(value, self.question))

    async def cancel(self, reference: str | None = None) -> Turn:
        """Type ``cancel`` (``cancel REF`` with a reference), then ``yes`` when asked to
        confirm; returns the last turn (the question's, when none was asked)."""
        turn = await self.say(f"cancel {reference}" if reference else "cancel")
        if is_cancel_question(self.question):
            turn = await self.say("yes")
        return turn


# The `safehaven share` flags for the answers that go on the record besides the recipient,
# purpose and consent (bot.app.share.check_flags refuses a command line without any of them).
SHARE_RECORD_FLAGS = ("--category", "contact-details", "--category", "other-personal",
                      "--lawful-basis", "UK GDPR Art 6(1)(e) public task",
                      "--onward-sharing", "no", "--delete-after-use")
RECIPIENT = {
    "name": "Priya Shah", "job_title": "Safeguarding Lead", "organisation": "Northfield NHS Trust",
    "email": "priya.shah@nhs.net", "phone": "07911 123456",
}
CONSENT = {"use_limits": "Only for the strategy meeting on Friday", "onward_sharing": "no",
           "delete_after_use": "yes"}
PURPOSE = "Strategy meeting about a child at risk, as agreed with the family"
# The kinds of information most tests share: not special category, so the approval rules
# under test are the level's and the agreements' (tests of special category data pick it).
CATEGORIES = "contact-details, other-personal"


async def answer_all(chat: Conversation, *, classification: str = "CONTROLLED",
                     categories: str = CATEGORIES,
                     recipient: dict[str, str] | None = None, password: str = "sms",
                     delivery: str = "archive", call_at: str | None = None) -> Turn:
    """Answer every question after intake with valid answers; stops at the summary."""
    await chat.say(classification)
    if chat.question == "information_categories":
        await chat.say(categories)
    if chat.question == "recipient_pick":
        await chat.say("new")
    await chat.say(recipient or RECIPIENT)
    await chat.say(PURPOSE)
    await chat.say("1")
    await chat.say(CONSENT)
    await chat.say(delivery)
    turn = await chat.say(password)
    if password == "voice":
        turn = await chat.say(call_at or "2026-11-24 10:00")
    assert chat.question == "confirm", chat.text
    return turn


