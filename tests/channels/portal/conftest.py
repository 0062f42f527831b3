"""Portal fixtures: a transfer shared by link, and a real HTTP client against the app."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.app.web import create_app
from bot.objects import archive_key
from bot.replies import LinkReply
from handlers.archive_reads import archive_size, legacy_path
from handlers.services import Services
from store.models import AuditRecord, PortalLink, Transfer
from tests.support.core import Conversation, answer_all
from tests.support.objects import put_sealed_archive

SMS_PASSWORD = re.compile(r"the password for (SH-[0-9A-Z-]+) is (\S+) \.")


MB = 1024 * 1024


@dataclass
class SharedLink:
    reference: str
    url: str
    path: str
    token: str
    chat: Conversation


Share = Callable[..., Awaitable[SharedLink]]


@pytest.fixture
def share(conversation: Any, make_file: Any) -> Share:
    """Share a file by portal link through the whole conversation; returns the link."""

    async def make(*, password: str = "sms", classification: str = "CONTROLLED",
                   sender: str = "console:alice") -> SharedLink:
        chat: Conversation = conversation(sender)
        await chat.send_files(make_file("case notes.pdf"), make_file("chronology.txt"))
        await answer_all(chat, classification=classification, delivery="portal",
                         password=password)
        turn = await chat.say("confirm")
        link = next(r for r in turn.replies if isinstance(r, LinkReply))
        path = urlsplit(link.url).path
        match = re.search(r"SH-[0-9A-Z]{4}-[0-9A-Z]{2}", link.label)
        assert match, link.label
        return SharedLink(match.group(0), link.url, path, path.rsplit("/", 1)[1], chat)

    return make


@pytest.fixture
async def client(services: Services) -> AsyncIterator[TestClient[Any, Any]]:
    """The whole application (health, portal) on a real local port."""
    app = create_app(services, migrate=False, scheduler=False)
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c


def outbox_password(svc: Services, reference: str) -> str | None:
    """The password the console transport "texted" for ``reference``, if any."""
    if not svc.settings.outbox_path.exists():
        return None
    text = svc.settings.outbox_path.read_text()
    found = [m.group(2) for m in SMS_PASSWORD.finditer(text) if m.group(1) == reference]
    return found[-1] if found else None


async def link_row(svc: Services, reference: str) -> PortalLink:
    async with svc.db.read() as s:
        row = (await s.scalars(select(PortalLink).where(PortalLink.reference == reference))
               ).one()
    return row


async def transfer_row(svc: Services, reference: str) -> Transfer:
    async with svc.db.read() as s:
        row = await s.get(Transfer, reference)
    assert row is not None
    return row


async def audit_rows(svc: Services, reference: str) -> list[AuditRecord]:
    async with svc.db.read() as s:
        return list((await s.scalars(select(AuditRecord).where(
            AuditRecord.reference == reference).order_by(AuditRecord.seq))).all())


async def audited(svc: Services, reference: str, action: str, *, times: int = 1
                  ) -> list[AuditRecord]:
    """Wait until ``action`` has been audited ``times`` times for ``reference`` (the server
    records the end of a download after the client has the last byte), then return those
    records. Fails after 30 s rather than hanging."""
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        found = [r for r in await audit_rows(svc, reference) if r.action == action]
        if len(found) >= times or asyncio.get_running_loop().time() > deadline:
            assert len(found) == times, (action, len(found))
            return found
        await asyncio.sleep(0.01)


def told_downloaded(svc: Services, reference: str, sender: str = "console:alice") -> int:
    notifier: Any = svc.notifier
    return sum(f"Transfer {reference} was downloaded" in getattr(r, "text", "")
               for r in notifier.for_user(sender))


async def download_settled(svc: Services, reference: str, *, times: int = 1,
                           sender: str = "console:alice") -> None:
    """Wait until the server has finished handling ``times`` downloads of ``reference``:
    telling the sender is the last thing a download does (after any receipt)."""
    deadline = asyncio.get_running_loop().time() + 30
    while told_downloaded(svc, reference, sender) < times:
        assert asyncio.get_running_loop().time() < deadline, "the download never settled"
        await asyncio.sleep(0.01)
    assert told_downloaded(svc, reference, sender) == times


# --- the archive a link serves (in the shared object store; once on the packaging host) ----


async def put_archive(svc: Services, reference: str, *, megabytes: int,
                      fill: Callable[[int], bytes] = bytes) -> None:
    """Replace the transfer's archive with ``megabytes`` MB from ``fill``, in the store."""

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(megabytes):
            yield fill(MB)

    await remove_archive(svc, reference)
    await put_sealed_archive(svc, reference, chunks())


async def remove_archive(svc: Services, reference: str) -> None:
    """The archive is gone from everywhere it could be read from."""
    await svc.objects.delete(archive_key(reference))
    legacy_path(svc.settings.archives_dir, reference).unlink(missing_ok=True)


async def archive_kept(svc: Services, reference: str) -> bool:
    """Whether the transfer's archive can still be read."""
    return await archive_size(svc.objects, svc.settings.archives_dir, reference) is not None
