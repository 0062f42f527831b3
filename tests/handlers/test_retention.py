"""Archives handed back in the chat are deleted once the policy's retention passes (so many
days after the password was delivered, at most so many after the transfer was created, at
once when it is cancelled), from any process, recorded once, the audit trail kept."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from typing import Any

from sqlalchemy import select

from bot.objects import archive_key
from bot.policy_rules import ArchiveRetention
from bot.replies import FileReply
from bot.statuses import SendStatus
from handlers import housekeeping, retention
from handlers.archive_reads import legacy_path
from handlers.services import Services
from store import audit
from store.db import Database
from store.models import AuditRecord, PasswordSend, Transfer
from tests.support.core import Clock, Conversation, answer_all


async def _ready_archive(services: Services, conversation: Any, make_file: Any, *,
                         password: str = "sms") -> str:
    """A transfer delivered by archive, ready, its archive kept in the object store."""
    chat: Conversation = conversation()
    await chat.send_files(make_file("a.pdf"))
    match = re.search(r"SH-[A-Z0-9]{4}-[A-Z0-9]{2}", chat.text)
    assert match, chat.text
    ref = match.group(0)
    await answer_all(chat, password=password)
    turn = await chat.say("confirm")
    archive = next(r for r in turn.replies if isinstance(r, FileReply))
    key = archive_key(ref)
    if await services.objects.head(key) is None:  # packaging wrote a local file only

        async def body() -> Any:
            yield legacy_path(services.settings.archives_dir, archive.reference).read_bytes()

        await services.objects.put(key, body())
    assert await services.objects.head(key) is not None
    return ref


async def _deliver_password(services: Services, ref: str) -> None:
    """The provider reports the password SMS delivered now (as its callback would)."""
    async with services.db.transaction() as s:
        send = (await s.scalars(select(PasswordSend).where(PasswordSend.reference == ref))).one()
        send.status = SendStatus.DELIVERED
        send.updated_at = services.clock()


async def housekeeping_pass(services: Services) -> int:
    return await retention.delete_expired_archives(services)


async def _deletions(services: Services, ref: str) -> list[AuditRecord]:
    async with services.db.read() as s:
        return list((await s.scalars(select(AuditRecord).where(
            AuditRecord.reference == ref, AuditRecord.action == "archive_deleted"))).all())


async def _kept(services: Services, ref: str) -> tuple[bool, str | None, int | None]:
    async with services.db.read() as s:
        row = await s.get(Transfer, ref)
    assert row is not None
    present = await services.objects.head(archive_key(ref)) is not None
    return present, row.archive_path, row.archive_size


async def test_archive_deleted_once_retention_after_delivery_passes(
        services: Services, conversation: Any, make_file: Any, clock: Clock) -> None:
    ref = await _ready_archive(services, conversation, make_file)
    await _deliver_password(services, ref)
    days = services.policy.archive_retention.days_after_password
    clock.advance(days=days - 1)
    assert await housekeeping_pass(services) == 0
    present, path, size = await _kept(services, ref)
    assert present and path is not None and size  # within retention: kept

    clock.advance(days=1, seconds=1)
    await housekeeping.tick(services)  # the scheduler runs the job
    assert await _kept(services, ref) == (False, None, None)
    assert not list(services.settings.archives_dir.glob(f"{ref}*"))
    [deleted] = await _deletions(services, ref)
    assert deleted.details == {"archive": f"{ref}.zip", "reason": "password delivered"}
    assert await retention.delete_expired_archives(services) == 0  # nothing left to do
    assert len(await _deletions(services, ref)) == 1

    async with services.db.read() as s:
        records = await s.scalars(select(AuditRecord).where(AuditRecord.reference == ref))
        assert "packaged" in [r.action for r in records]  # the trail is kept
        assert (await audit.verify(s)).ok

    chat = Conversation(services, "console:alice")
    turn = await chat.say(f"archive {ref}")
    assert "no archive to send again" in chat.text
    assert not any(isinstance(r, FileReply) for r in turn.replies)


async def test_undelivered_password_keeps_archive_until_the_maximum(
        services: Services, conversation: Any, make_file: Any, clock: Clock) -> None:
    ref = await _ready_archive(services, conversation, make_file, password="sms-on-receipt")
    keep = services.policy.archive_retention
    clock.advance(days=keep.days_after_password + 1)
    assert await housekeeping_pass(services) == 0
    assert (await _kept(services, ref))[0]
    clock.advance(days=keep.max_days)
    assert await housekeeping_pass(services) == 1
    assert not (await _kept(services, ref))[0]
    [deleted] = await _deletions(services, ref)
    assert deleted.details["reason"] == "kept for the longest time allowed"


async def test_cancelled_transfer_loses_its_archive(
        services: Services, conversation: Any, make_file: Any) -> None:
    ref = await _ready_archive(services, conversation, make_file)
    chat = Conversation(services, "console:alice")
    await chat.cancel(ref)
    assert await _kept(services, ref) == (False, None, None)  # at once, not at a pass
    [deleted] = await _deletions(services, ref)
    assert deleted.details["reason"] == "transfer over"
    assert await housekeeping_pass(services) == 0  # nothing left for the pass
    assert len(await _deletions(services, ref)) == 1


async def test_a_cancelled_transfer_whose_archive_could_not_go_loses_it_at_the_next_pass(
        services: Services, conversation: Any, make_file: Any) -> None:
    ref = await _ready_archive(services, conversation, make_file)

    class Unreachable:
        async def delete(self, key: Any) -> None:
            raise OSError("object store unreachable")

        def __getattr__(self, name: str) -> Any:
            return getattr(services.objects, name)

    down = replace(services, objects=Unreachable())
    chat = Conversation(down, "console:alice")
    await chat.cancel(ref)
    assert (await _kept(services, ref))[1] is not None  # still kept, and still on record
    assert await _deletions(services, ref) == []
    assert await housekeeping_pass(services) == 1
    assert await _kept(services, ref) == (False, None, None)
    [deleted] = await _deletions(services, ref)
    assert deleted.details["reason"] == "transfer over"


async def test_delete_archive_records_once_and_only_when_kept(
        services: Services, conversation: Any, make_file: Any) -> None:
    ref = await _ready_archive(services, conversation, make_file)
    assert await retention.delete_archive(services, ref, reason="cancelled by the sender")
    assert not await retention.delete_archive(services, ref, reason="cancelled by the sender")
    assert not await retention.delete_archive(services, "SH-NONE-00", reason="x")
    [deleted] = await _deletions(services, ref)
    assert deleted.details["reason"] == "cancelled by the sender"


async def test_two_processes_delete_and_audit_once(
        services: Services, conversation: Any, make_file: Any, clock: Clock) -> None:
    refs = [await _ready_archive(services, conversation, make_file) for _ in range(3)]
    for ref in refs:
        await _deliver_password(services, ref)
    clock.advance(days=services.policy.archive_retention.days_after_password, seconds=1)
    other = replace(services, db=Database(services.settings.database_url))
    try:
        counts = await asyncio.gather(retention.delete_expired_archives(services),
                                      retention.delete_expired_archives(other))
    finally:
        await other.db.close()
    assert sum(counts) == 3
    for ref in refs:
        assert len(await _deletions(services, ref)) == 1
        assert await _kept(services, ref) == (False, None, None)


async def test_retention_follows_the_policy(
        services: Services, conversation: Any, make_file: Any, clock: Clock) -> None:
    svc = replace(services, policy=replace(
        services.policy, archive_retention=ArchiveRetention(days_after_password=1,
                                                            max_days=2)))
    ref = await _ready_archive(svc, conversation, make_file)
    await _deliver_password(svc, ref)
    clock.advance(hours=23)
    assert await retention.delete_expired_archives(svc) == 0
    clock.advance(hours=2)
    assert await retention.delete_expired_archives(svc) == 1
