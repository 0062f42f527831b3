"""A packaging whose process stalls past its grace period is taken over and finished once by
another (recovery); the stalled one, when it wakes, finds its hold gone and changes nothing:
one archive, the one the stored password opens, one ``packaged``, the sender told once."""

from __future__ import annotations

import asyncio
import io
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import pyzipper
from sqlalchemy import select

from bot.objects import ObjectKey, ObjectStore
from bot.replies import FileReply
from handlers import recovery, transfers
from handlers.services import Services
from store.models import AuditRecord, Transfer
from tests.channels.portal.conftest import outbox_password
from tests.support.core import Clock, Conversation, answer_all
from tests.support.objects import archive_objects, archive_plain, upload_objects

CONTENT = b"Case notes for the strategy meeting, not for anyone else.\n" * 400


class StallingStore:
    """The store, except that the first read of an upload stalls until :attr:`go` is set
    (a packager frozen mid-way: a long GC pause, a suspended VM)."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.stalled = asyncio.Event()
        self.go = asyncio.Event()
        self._first = True

    async def get(self, key: ObjectKey) -> AsyncIterator[bytes]:
        if self._first and key.startswith("uploads/"):
            self._first = False
            self.stalled.set()
            await self.go.wait()
        async for piece in self.inner.get(key):
            yield piece

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_a_stalled_packager_is_taken_over_and_the_transfer_finished_once(
        services: Services, conversation: Any, make_file: Any, clock: Clock) -> None:
    chat: Conversation = conversation("console:alice")
    await chat.send_files(make_file("notes.txt", CONTENT))
    await answer_all(chat)
    store = StallingStore(services.objects)
    services.objects = store
    confirming = asyncio.create_task(chat.say("confirm"))
    await asyncio.wait_for(store.stalled.wait(), 30)

    assert await recovery.recover_packaging(services) == 0  # within its grace: left alone
    clock.advance(hours=1)
    quiet = time.time() - 600  # and its scratch folder untouched for ten minutes
    for entry in transfers.packaging_dir(services.settings).rglob("*"):
        os.utime(entry, (quiet, quiet))
    assert await recovery.recover_packaging(services) == 1  # taken over and finished here
    store.go.set()
    turn = await asyncio.wait_for(confirming, 30)  # the stalled one wakes, finds it taken

    async with services.db.read() as s:
        row = (await s.scalars(select(Transfer))).one()
        actions = list((await s.scalars(select(AuditRecord.action).where(
            AuditRecord.reference == row.reference))).all())
    assert row.status == "ready"
    assert actions.count("packaging_resumed") == 1 and actions.count("packaged") == 1
    assert "packaging_failed" not in actions
    assert await archive_objects(services) == [f"archives/{row.reference}.zip"]
    assert await upload_objects(services) == []
    password = outbox_password(services, row.reference)  # texted once, the winner's
    assert password is not None
    assert services.settings.outbox_path.read_text().count(f"password for {row.reference}") == 1
    with pyzipper.AESZipFile(io.BytesIO(await archive_plain(services, row.reference))) as zf:
        zf.setpassword(password.encode())
        assert zf.read(zf.namelist()[-1]) == CONTENT
    notifier: Any = services.notifier
    handed = [r for r in notifier.for_user("console:alice") if isinstance(r, FileReply)]
    assert len(handed) == 1  # told once, by the process that finished it
    assert not [r for r in turn.replies if isinstance(r, FileReply)]  # not by the stalled one
