"""A running Safe Haven with Teams mounted, a fake Bot Connector and a fake OneDrive.

The fakes listen on 127.0.0.1, which Safe Haven reaches only when the operator names it:
:func:`start_world` names them in ``SAFEHAVEN_ALLOWED_FETCH_HOSTS`` as a test deployment
would (``fetch_hosts`` chooses which: ``"connector"``, ``"files"`` or a literal host:port).

:class:`TeamsChatUser` is a person in a Teams personal chat with that app
(``TEAMS_AUTH=off``) as a :class:`~tests.support.chat.ChatUser`, for the scenarios run on
every channel: they attach files, type, press card buttons with the card's inputs filled in,
accept the file consent card, and read every message and card update the bot sent them. The
``teams`` fixture is imported by the conftest of each folder that uses it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.app.plugins import route_notices
from bot.app.web import create_app
from bot.settings import load_settings
from channels.teams.app import plugin as teams_plugin
from channels.teams.channel import TeamsChannel
from channels.teams.settings import TeamsSettings, load_teams_settings
from handlers.notify import HeldNotices, NotifierRouter
from handlers.services import Services
from tests.support.chat import conversation_step
from tests.support.core import RecordingNotifier
from tests.support.fake_teams import Call, FakeConnector, FakeFileHost, TeamsUser, card_actions
from tests.support.fake_twilio import FakeTwilio

SENDER_AAD = "6a1d2c3b-0000-4000-8000-00000000a11c"
APPROVER_AAD = "6a1d2c3b-0000-4000-8000-0000000b0b00"
INTRUDER_AAD = "6a1d2c3b-0000-4000-8000-000000000bad"


@dataclass
class TeamsWorld:
    services: Services
    channel: TeamsChannel
    client: TestClient[web.Request, web.Application]
    connector: FakeConnector
    files: FakeFileHost

    def user(self, aad: str, name: str, **kwargs: Any) -> TeamsUser:
        return TeamsUser(self.client, self.connector, aad=aad, name=name, **kwargs)


def host_of(url: str) -> str:
    """``127.0.0.1:PORT`` of a fake, as SAFEHAVEN_ALLOWED_FETCH_HOSTS names it."""
    return url.split("://", 1)[1].split("/", 1)[0]


def auth_off(services: Services) -> TeamsSettings:
    """Teams without credentials, as ``TEAMS_AUTH=off`` serves it (loopback, development)."""
    return load_teams_settings(services.settings, {"TEAMS_AUTH": "off"})


def allow_fetch_hosts(services: Services, *hosts: str) -> None:
    """Set SAFEHAVEN_ALLOWED_FETCH_HOSTS, read by the real settings loader."""
    named = load_settings({"SAFEHAVEN_ALLOWED_FETCH_HOSTS": ",".join(hosts)})
    services.settings = replace(services.settings,
                                allowed_fetch_hosts=named.allowed_fetch_hosts)


async def start_world(services: Services, settings: TeamsSettings, *,
                      connector: FakeConnector | None = None,
                      fetch_hosts: tuple[str, ...] = ("connector", "files"),
                      **options: Any) -> TeamsWorld:
    if connector is None:
        connector = FakeConnector()
        await connector.start()
    files = FakeFileHost()
    await files.start()
    fakes = {"connector": host_of(connector.url), "files": host_of(files.url)}
    allow_fetch_hosts(services, *(fakes.get(name, name) for name in fetch_hosts))
    services.policy = replace(services.policy, approvers={"*": (f"teams:{APPROVER_AAD}",)})
    # As build_runtime wires it: what Teams cannot deliver is kept (sealed) for the person.
    services.notifier = router = NotifierRouter(
        RecordingNotifier(), keep=HeldNotices(services.db, services.vault, clock=services.clock))
    teams = teams_plugin(services, settings, upload_chunk_bytes=4096, **options)
    notifier = teams.notifier
    assert notifier is not None
    route_notices(router, [teams])
    app = create_app(services, migrate=False, scheduler=False)
    teams.mount(app)
    channel = teams.channel
    assert channel is not None and channel is notifier.channel()
    client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    return TeamsWorld(services, channel, client, connector, files)


async def stop_world(world: TeamsWorld) -> None:
    await world.client.close()
    await world.connector.close()
    await world.files.close()


@pytest.fixture
async def teams(services: Services) -> AsyncIterator[TeamsWorld]:
    """Teams with authentication off (``TEAMS_AUTH=off``)."""
    world = await start_world(services, auth_off(services))
    yield world
    await stop_world(world)


FILE_CONSENT = "application/vnd.microsoft.teams.card.file.consent"  # Microsoft's, not ours
FILE_DOWNLOAD = "application/vnd.microsoft.teams.file.download.info"


def _inputs(card: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in card.get("body", []) if e.get("type") == kind]


def _submit(call: Call) -> str:
    """The title of the button that sends the card's inputs."""
    return str(next(a["title"] for a in card_actions(call.card)
                    if a.get("associatedInputs") != "none"))


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
                    a["title"].startswith(title) for a in card_actions(call.card)):
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
        title = next((a["title"] for a in card_actions(card.card)
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

    async def choose_several(self, *labels: str) -> None:
        await self.person.tick(*labels)

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
        title = next(a["title"] for a in card_actions(card.card)
                     if a["title"].startswith("Reject"))
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
        return await conversation_step(self.world.services, self.conversation_id)

    @property
    def conversation_id(self) -> str:
        return f"teams:{self.person.conversation}"

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
