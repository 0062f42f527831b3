"""The Teams channel as a :class:`~tests.support.chat.ChatUser`: a person in a Teams personal
chat with the running app of ``tests/channels/teams/conftest.py`` (``TEAMS_AUTH=off``, a fake
Bot Connector and a fake OneDrive on 127.0.0.1), who attaches files, types, presses card
buttons with the card's inputs filled in, accepts the file consent card, and reads every
message and card update the bot sent to the chat."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from handlers.services import Services
from tests.channels.teams.conftest import APPROVER_AAD, SENDER_AAD, TeamsWorld
from tests.support.chat import conversation_step
from tests.support.fake_teams import Call, TeamsUser
from tests.support.fake_twilio import FakeTwilio

FILE_CONSENT = "application/vnd.microsoft.teams.card.file.consent"  # Microsoft's, not ours
FILE_DOWNLOAD = "application/vnd.microsoft.teams.file.download.info"


def _inputs(card: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in card.get("body", []) if e.get("type") == kind]


def _submit(call: Call) -> str:
    """The title of the card's first button, the one that sends its inputs."""
    return str(call.card["actions"][0]["title"])


class TeamsChatUser:
    def __init__(self, world: TeamsWorld, aad: str, name: str) -> None:
        self.world = world
        self.person = TeamsUser(world.client, world.connector, aad=aad, name=name)
        self.user_id = self.person.user_id

    def _shown(self) -> list[Call]:
        """Every message and card update the bot sent to this chat, in order."""
        return [c for c in self.world.connector.calls
                if c.conversation == self.person.conversation]

    def _card_about(self, reference: str, title: str) -> Call:
        for call in reversed(self.person.received):
            if reference in call.words and any(
                    a["title"].startswith(title) for a in call.card.get("actions", [])):
                return call
        raise AssertionError(f"no card about {reference} with {title!r}:\n{self.text}")

    async def _press(self, call: Call, title: str, inputs: Mapping[str, str] | None = None
                     ) -> None:
        await self.person.click(call, title, dict(inputs or {}))

    # --- what they do ----------------------------------------------------------------------

    async def send_files(self, *paths: Path) -> None:
        await self.person.send(text="", attachments=[{
            "contentType": FILE_DOWNLOAD,
            "contentUrl": f"https://contoso.sharepoint.com/personal/files/{p.name}",
            "name": p.name,
            "content": {"downloadUrl": self.world.files.serve(p.read_bytes()),
                        "uniqueId": f"file-{i}", "fileType": p.suffix.lstrip(".")}}
            for i, p in enumerate(paths)])

    async def say(self, text: str) -> None:
        await self.person.say(text)

    async def choose(self, label: str) -> None:
        card = self.person.last_card()
        title = next((a["title"] for a in card.card["actions"]
                      if a["title"].startswith(label)), None)
        if title is not None:
            await self._press(card, title)
            return
        # Too many options for buttons: a choice set, sent with the card's first button.
        for choices in _inputs(card.card, "Input.ChoiceSet"):
            value = next((c["value"] for c in choices["choices"]
                          if c["title"].startswith(label)), None)
            if value is not None:
                await self._press(card, _submit(card), {choices["id"]: value})
                return
        raise AssertionError(f"no option {label!r} on the last card:\n{card.words}")

    async def answer(self, text: str) -> None:
        card = self.person.last_card()
        (box,) = _inputs(card.card, "Input.Text")
        await self._press(card, _submit(card), {box["id"]: text})

    async def fill(self, values: Mapping[str, str]) -> None:
        card = self.person.last_card()
        await self._press(card, _submit(card), values)

    async def pick_time(self, when: datetime) -> None:
        card = self.person.last_card()
        (day,) = _inputs(card.card, "Input.Date")
        (at,) = _inputs(card.card, "Input.Time")
        await self._press(card, _submit(card), {day["id"]: when.strftime("%Y-%m-%d"),
                                                at["id"]: when.strftime("%H:%M")})

    async def approve(self, reference: str) -> None:
        await self._press(self._card_about(reference, "Approve"), "Approve")

    async def reject(self, reference: str, reason: str) -> None:
        card = self._card_about(reference, "Reject")
        title = next(a["title"] for a in card.card["actions"] if a["title"].startswith("Reject"))
        (box,) = _inputs(card.card, "Input.Text")
        await self._press(card, title, {box["id"]: reason})

    async def archive(self, reference: str) -> bytes:
        """Accept the file consent card for the archive: the bot uploads it to OneDrive."""
        offer = next((c for c in reversed(self.person.received)
                      if c.attachment(FILE_CONSENT).get("name") == f"{reference}.zip"), None)
        assert offer is not None, f"no archive offered for {reference}:\n{self.text}"
        consent = offer.attachment(FILE_CONSENT)
        upload_url = self.world.files.upload_url()
        await self.person.send(type="invoke", name="fileConsent/invoke", replyToId=offer.id,
                               value={
            "type": "fileUpload", "action": "accept",
            "context": consent["content"]["acceptContext"],
            "uploadInfo": {"name": consent["name"], "uploadUrl": upload_url,
                           "contentUrl": f"https://contoso-my.sharepoint.com/{consent['name']}",
                           "uniqueId": "1150D938-8870-4044-9F2C-5BBDEBA70C8C",
                           "fileType": "zip"}})
        await self.world.channel.drain()
        upload = self.world.files.uploads[upload_url.rsplit("/", 1)[1]]
        assert upload.done, f"the archive for {reference} was not saved:\n{self.text}"
        return upload.data

    # --- what they see ---------------------------------------------------------------------

    async def current_question(self) -> str | None:
        return await conversation_step(self.world.services, f"teams:{self.person.conversation}")

    @property
    def text(self) -> str:
        return self.since(0)

    def mark(self) -> int:
        return len(self._shown())

    def since(self, mark: int) -> str:
        return "\n".join(c.words for c in self._shown()[mark:])


class TeamsChatWorld:
    channel = "teams"

    def __init__(self, world: TeamsWorld, twilio: FakeTwilio) -> None:
        self.world = world
        self.svc: Services = world.services
        self.twilio = twilio
        self.portal: TestClient = world.client  # type: ignore[type-arg]

    async def sender(self) -> TeamsChatUser:
        return TeamsChatUser(self.world, SENDER_AAD, "Alex Sender")

    async def approver(self) -> TeamsChatUser:
        """The approver, who has installed the app (so the bot can reach them)."""
        approver = TeamsChatUser(self.world, APPROVER_AAD, "Morgan Manager")
        await approver.person.install()
        return approver
