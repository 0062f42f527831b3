"""An archive packaged by one process is handed back by another: a process with its own
var folder (its own disk) that shares only the database and the object store downloads it
through the portal and re-sends it on ``archive REF``; when the object is gone, both say so
plainly and nothing crashes."""

from __future__ import annotations

import dataclasses
import io
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app.web import create_app
from bot.objects import archive_key
from bot.policy_rules import Policy
from bot.replies import FileReply, LinkReply
from bot.settings import Settings
from bot.vault import Vault, _decode_key
from channels.console.transport import ConsoleTransport
from handlers.archive_reads import open_archive
from handlers.services import Services
from store.db import Database
from tests.support.core import Clock, Conversation, RecordingNotifier, answer_all

REFERENCE = re.compile(r"SH-[0-9A-Z]{4}-[0-9A-Z]{2}")


@pytest.fixture
async def other(services: Services, settings: Settings, policy: Policy, clock: Clock,
                tmp_path: Path) -> AsyncIterator[Services]:
    """Another process: its own var folder, the same database, object store and key."""
    assert settings.secret_key
    mine = dataclasses.replace(settings, var_dir=tmp_path / "var-b")
    svc = Services(
        settings=mine, policy=policy, db=Database(mine.database_url),
        vault=Vault(_decode_key(settings.secret_key)), notifier=RecordingNotifier(),
        transport=ConsoleTransport(outbox=mine.outbox_path, production=False,
                                   stream=io.StringIO()),
        objects=services.objects, clock=clock)
    yield svc
    await svc.db.close()
    await svc.inspector.close()


async def _stored(svc: Services, reference: str) -> bytes:
    opened = await open_archive(svc.objects, svc.settings.archives_dir, reference,
                                vault=svc.vault)
    assert opened is not None
    return b"".join([chunk async for chunk in opened.chunks])


async def _packaged(services: Services, make_file: Any, *, delivery: str
                    ) -> tuple[str, list[Any]]:
    chat = Conversation(services, "console:alice")
    await chat.send_files(make_file("case notes.pdf"))
    await answer_all(chat, delivery=delivery)
    turn = await chat.say("confirm")
    match = REFERENCE.search(chat.text)
    assert match, chat.text
    return match.group(0), list(turn.replies)


async def test_another_process_downloads_and_resends_the_archive(
        services: Services, other: Services, make_file: Any) -> None:
    assert other.settings.var_dir != services.settings.var_dir
    linked, replies = await _packaged(services, make_file, delivery="portal")
    link = next(r for r in replies if isinstance(r, LinkReply))
    handed, replies = await _packaged(services, make_file, delivery="archive")
    first = next(r for r in replies if isinstance(r, FileReply))
    assert first.reference == handed and first.key == archive_key(handed)
    assert not any(other.settings.archives_dir.glob("*.zip"))  # nothing on B's disk

    app = create_app(other, migrate=False, scheduler=False)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        response = await client.post(urlsplit(link.url).path)
        body = await response.read()
    assert response.status == 200 and response.content_length == len(body)
    assert body[:2] == b"PK" and body == await _stored(services, linked)

    bob = Conversation(other, "console:alice")
    await bob.say(f"archive {handed}")
    again = [r for r in bob.last.replies if isinstance(r, FileReply)]
    assert [(r.reference, r.key, r.size) for r in again] == [
        (handed, first.key, first.size)]
    assert await _stored(other, handed) == await _stored(services, handed)


async def test_a_missing_archive_is_said_plainly_in_another_process(
        services: Services, other: Services, make_file: Any) -> None:
    linked, replies = await _packaged(services, make_file, delivery="portal")
    link = next(r for r in replies if isinstance(r, LinkReply))
    handed, _ = await _packaged(services, make_file, delivery="archive")
    for reference in (linked, handed):
        await services.objects.delete(archive_key(reference))

    app = create_app(other, migrate=False, scheduler=False)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        response = await client.post(urlsplit(link.url).path)
        assert response.status == 404 and "not available" in (await response.text()).lower()
    chat = Conversation(other, "console:alice")
    turn = await chat.say(f"archive {handed}")
    assert turn.error is None and "no archive to send again" in chat.text
    assert not any(isinstance(r, FileReply) for r in chat.last.replies)
