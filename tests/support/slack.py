"""The Slack channel as a :class:`~tests.support.chat.ChatUser`: a person in the workspace of
``tests/channels/slack/conftest.py`` (genuinely signed requests into the running app, a fake
Slack Web API on 127.0.0.1) who DMs files, types, clicks buttons and menu options, fills in
modals, uses the date-time picker, and reads their DM as Slack shows it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from handlers.services import Services
from tests.channels.slack.conftest import SlackUser, Workspace, controls, message_text
from tests.support.chat import conversation_step
from tests.support.fake_slack import Message
from tests.support.fake_twilio import FakeTwilio


class SlackChatUser:
    def __init__(self, workspace: Workspace, slack_id: str) -> None:
        self.ws = workspace
        self.person = SlackUser(workspace, slack_id)
        self.user_id = f"slack:{slack_id}"
        # What Slack shows outside the DM's messages (a modal's field errors, an ephemeral
        # note), with the number of DM messages there were when it was shown.
        self.notes: list[tuple[int, str]] = []

    def _note(self, text: str) -> None:
        self.notes.append((len(self.person.messages()), text))

    def _with_control(self, label: str, reference: str) -> Message:
        """The latest message in the DM about ``reference`` with a control ``label``."""
        for message in reversed(self.person.messages()):
            if reference in message_text(message) and any(
                    (e.get("text") or {}).get("text", "").startswith(label)
                    for _, e in controls(message)):
                return message
        raise AssertionError(f"no {label!r} for {reference} in {self.person.dm}:\n{self.text}")

    # --- what they do ----------------------------------------------------------------------

    async def send_files(self, *paths: Path) -> None:
        await self.person.send_files(*((p.name, p.read_bytes()) for p in paths))

    async def say(self, text: str) -> None:
        await self.person.say(text)

    async def choose(self, label: str) -> None:
        status, body = await self.person.click(label)
        assert status == 200, body

    async def answer(self, text: str) -> None:
        await self.person.say(text)  # a free-text question is answered in the DM

    async def fill(self, values: Mapping[str, str]) -> None:
        ack = await self.person.submit(await self.person.open_form(), dict(values))
        if ack.get("response_action") == "errors":
            for error in ack["errors"].values():
                self._note(f"⚠ {error}")

    async def pick_time(self, when: datetime) -> None:
        """Pick ``when`` in the question's date-time picker, then press its button."""
        question = self.person.last
        block, picker = next((b, e) for b, e in controls(question)
                             if e.get("type") == "datetimepicker")
        button = next(e for b, e in controls(question) if e.get("type") == "button"
                      and b is block)
        state = {block["block_id"]: {picker["action_id"]: {
            "type": "datetimepicker", "selected_date_time": int(when.timestamp())}}}
        status, body = await self.person.click(button["text"]["text"], message=question,
                                               state=state)
        assert status == 200, body

    async def approve(self, reference: str) -> None:
        status, body = await self.person.click(
            "Approve", message=self._with_control("Approve", reference))
        assert status == 200, body

    async def reject(self, reference: str, reason: str) -> None:
        views = len(self.ws.fake.views)
        await self.person.click("Reject", message=self._with_control("Reject", reference))
        assert len(self.ws.fake.views) == views + 1, "no reason was asked for"
        view: dict[str, Any] = self.ws.fake.views[-1]
        fields = [b["block_id"].removeprefix("f.") for b in view["blocks"]
                  if b.get("type") == "input"]
        await self.person.submit(view, dict.fromkeys(fields, reason))

    async def archive(self, reference: str) -> bytes:
        found = [u for u in self.ws.fake.uploads.values()
                 if u.get("channel") == self.person.dm and u["filename"] == f"{reference}.zip"]
        assert found and found[-1]["data"], f"no archive for {reference} in {self.person.dm}"
        return bytes(found[-1]["data"])

    # --- what they see ---------------------------------------------------------------------

    async def current_question(self) -> str | None:
        return await conversation_step(self.ws.svc, self.user_id)

    @property
    def text(self) -> str:
        return self.since(0)

    def mark(self) -> int:
        return len(self.person.messages())

    def since(self, mark: int) -> str:
        shown = [message_text(m) for m in self.person.messages()[mark:]]
        shown += [text for at, text in self.notes if at >= mark]
        if mark == 0:  # an ephemeral note has no place among the DM's messages
            shown += self.person.ephemeral()
        return "\n".join(shown)


class SlackWorld:
    channel = "slack"

    def __init__(self, workspace: Workspace, twilio: FakeTwilio) -> None:
        self.workspace = workspace
        self.svc: Services = workspace.svc
        self.twilio = twilio
        self.portal: TestClient = workspace.client  # type: ignore[type-arg]

    async def sender(self) -> SlackChatUser:
        return SlackChatUser(self.workspace, "UALICE01")

    async def approver(self) -> SlackChatUser:
        return SlackChatUser(self.workspace, "UBOSS01")
