"""The console channel as a :class:`~tests.support.chat.ChatUser`: the turns ``safehaven
chat`` takes (files staged from disk, a typed line parsed against the open question, an option
picked by its number, a form sent with the field values the terminal asked for one by one), an
approver's decision as ``safehaven approve`` takes it, and what the terminal prints, rendered
by the console renderer. Messages for a person outside their own turns (an approval request,
a decision, a download receipt) reach their transcript through the notifier."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from aiohttp.test_utils import TestClient

from bot.events import Answer, Event, FilesReceived
from bot.replies import Ask, Choice, FileReply, Form, Reply
from channels.console.render import render
from handlers import approvals
from handlers.archive_reads import open_archive
from handlers.conversation import parse_text, take_turn
from handlers.intake import stage_local_file
from handlers.notify import NotifierRouter
from handlers.ports import NoticeOutcome
from handlers.services import Services
from tests.support.chat import conversation_step
from tests.support.fake_twilio import FakeTwilio


class Transcripts:
    """A notifier that keeps every message for a person in that person's transcript."""

    def __init__(self) -> None:
        self.by_user: dict[str, list[Reply]] = {}

    def of(self, user_id: str) -> list[Reply]:
        return self.by_user.setdefault(user_id, [])

    async def notify(self, user_id: str, replies: Sequence[Reply], *,
                     reference: str | None = None) -> NoticeOutcome:
        self.of(user_id).extend(replies)
        return NoticeOutcome.DELIVERED


class ConsoleUser:
    def __init__(self, svc: Services, user_id: str, transcripts: Transcripts) -> None:
        self.svc = svc
        self.user_id = user_id
        self.shown = transcripts.of(user_id)

    # --- what they do ----------------------------------------------------------------------

    async def _turn(self, event: Event) -> None:
        turn = await take_turn(self.svc, conversation_id=self.user_id, user_id=self.user_id,
                               event=event)
        self.shown.extend(turn.replies)

    def _asked(self) -> Choice | Ask | Form | None:
        """The question the terminal last printed (it stays open until another is)."""
        for reply in reversed(self.shown):
            if isinstance(reply, Choice | Ask | Form):
                return reply
        return None

    async def send_files(self, *paths: Path) -> None:
        await self._turn(FilesReceived(tuple(stage_local_file(self.svc.settings, p)
                                             for p in paths)))

    async def say(self, text: str) -> None:
        asked = self._asked()
        await self._turn(parse_text(text, question=asked.question if asked else None))

    async def choose(self, label: str) -> None:
        asked = self._asked()
        assert isinstance(asked, Choice), f"no choice is open:\n{self.text}"
        number = next((i for i, o in enumerate(asked.options, start=1)
                       if o.label.startswith(label)), None)
        assert number is not None, f"no option {label!r}: {[o.label for o in asked.options]}"
        await self.say(str(number))  # the terminal lists options by number

    async def choose_several(self, *labels: str) -> None:
        asked = self._asked()
        assert isinstance(asked, Choice) and asked.multiple, f"no several-choice:\n{self.text}"
        numbers = [str(i) for i, o in enumerate(asked.options, start=1)
                   if any(o.label.startswith(label) for label in labels)]
        assert len(numbers) == len(labels), f"not all of {labels}: {asked.options}"
        await self.say(", ".join(numbers))  # as the terminal asks: numbers, with commas

    async def answer(self, text: str) -> None:
        await self.say(text)

    async def fill(self, values: Mapping[str, str]) -> None:
        form = self._asked()
        assert isinstance(form, Form), f"no form is open:\n{self.text}"
        # As the terminal asks: field by field, an empty line keeping the value shown.
        given = {f.name: values.get(f.name) or f.value for f in form.fields}
        await self._turn(Answer(given, form.question))

    async def pick_time(self, when: datetime) -> None:
        await self.say(when.strftime("%Y-%m-%d %H:%M"))

    async def approve(self, reference: str) -> None:
        # What `safehaven approve REF --approver ID` runs.
        self.shown.extend(await approvals.decide(self.svc, approver_id=self.user_id,
                                                 reference=reference, approve=True))

    async def reject(self, reference: str, reason: str) -> None:
        # What `safehaven approve REF --approver ID --reject --reason ...` runs.
        self.shown.extend(await approvals.decide(self.svc, approver_id=self.user_id,
                                                 reference=reference, approve=False,
                                                 reason=reason))

    async def archive(self, reference: str) -> bytes:
        found = [r for r in self.shown if isinstance(r, FileReply)
                 and r.filename == f"{reference}.zip"]
        assert found, f"no archive for {reference}:\n{self.text}"
        archive = await open_archive(self.svc.objects, self.svc.settings.archives_dir,
                                     found[-1].reference, vault=self.svc.vault)
        assert archive is not None, f"the archive of {reference} is not kept"
        return b"".join([chunk async for chunk in archive.chunks])

    # --- what they see ---------------------------------------------------------------------

    async def current_question(self) -> str | None:
        return await conversation_step(self.svc, self.user_id)

    @property
    def conversation_id(self) -> str:
        return self.user_id

    @property
    def text(self) -> str:
        return self.since(0)

    def mark(self) -> int:
        return len(self.shown)

    def since(self, mark: int) -> str:
        return "\n".join(render(r) for r in self.shown[mark:])


class ConsoleWorld:
    channel = "console"

    def __init__(self, svc: Services, twilio: FakeTwilio, portal: TestClient) -> None:  # type: ignore[type-arg]
        self.svc = svc
        self.twilio = twilio
        self.portal = portal
        self.transcripts = Transcripts()
        svc.notifier = NotifierRouter(self.transcripts)

    async def sender(self) -> ConsoleUser:
        return ConsoleUser(self.svc, "console:alice", self.transcripts)

    async def approver(self) -> ConsoleUser:
        return ConsoleUser(self.svc, "console:manager", self.transcripts)
