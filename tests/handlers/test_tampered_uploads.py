"""A sealed upload altered in the object store never goes into an archive: confirming the
transfer fails closed, says why to the sender, audits it and puts no archive in the store.
Each envelope is bound to its own random key, so swapping two transfers' uploads is caught
as surely as a flipped byte."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from bot.envelope import CHUNK_SIZE
from bot.messages import transfers as msg
from bot.objects import ObjectKey
from handlers.services import Services
from store.models import AuditRecord, Transfer
from tests.support.core import Conversation, answer_all
from tests.support.objects import archive_objects, object_bytes, upload_objects

#: Two chunks and a bit, so the change can be in a chunk before the last.
CONTENT = b"Julia Smith, born 3 March 2015, disclosed at school on Monday.\n" * 2200


async def _put(svc: Services, key: ObjectKey, data: bytes) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield data

    await svc.objects.put(key, chunks())


async def _failed_closed(svc: Services, chat: Conversation, reference: str) -> None:
    assert msg.PACKAGING_TAMPERED.format(reference=reference) in chat.text
    async with svc.db.read() as s:
        row = await s.get(Transfer, reference)
        records = (await s.scalars(select(AuditRecord).where(
            AuditRecord.reference == reference))).all()
    assert row is not None and row.status == "package_failed" and row.archive_path is None
    assert row.password_sealed is None
    failed = [r.details for r in records if r.action == "packaging_failed"]
    assert failed == [{"error": "EnvelopeError", "integrity": "failed"}]
    assert not [r for r in records if r.action in ("packaged", "handed_back")]


async def _ready(svc: Services, conversation: Any, make_file: Any,
                 sender: str) -> tuple[Conversation, str]:
    chat: Conversation = conversation(sender)
    await chat.send_files(make_file("notes.txt", CONTENT))
    await answer_all(chat)
    async with svc.db.read() as s:
        reference = (await s.scalars(select(Transfer.reference).where(
            Transfer.sender_id == sender))).one()
    return chat, reference


@pytest.mark.parametrize("attack", ["byte flipped in the first chunk",
                                    "byte flipped in the last chunk",
                                    "last chunk cut off", "cut inside a chunk"])
async def test_an_altered_upload_is_never_packaged(
        services: Services, conversation: Any, make_file: Any, attack: str) -> None:
    chat, reference = await _ready(services, conversation, make_file, "console:alice")
    [key] = await upload_objects(services)
    sealed = await object_bytes(services.objects, key)
    assert len(CONTENT) > 2 * CHUNK_SIZE
    at = {"byte flipped in the first chunk": 200,
          "byte flipped in the last chunk": len(sealed) - 3}.get(attack)
    if at is not None:
        forged = sealed[:at] + bytes([sealed[at] ^ 0x80]) + sealed[at + 1:]
    elif attack == "last chunk cut off":
        forged = sealed[:-(len(CONTENT) % CHUNK_SIZE + 16)]
    else:
        forged = sealed[:-100]
    await _put(services, key, forged)
    await chat.say("confirm")
    await _failed_closed(services, chat, reference)
    assert await archive_objects(services) == []


async def test_two_transfers_uploads_swapped_in_the_store_are_both_refused(
        services: Services, conversation: Any, make_file: Any) -> None:
    alice, first = await _ready(services, conversation, make_file, "console:alice")
    [mine] = await upload_objects(services)
    bob, second = await _ready(services, conversation, make_file, "console:bob")
    [theirs] = [k for k in await upload_objects(services) if k != mine]
    a, b = (await object_bytes(services.objects, mine),
            await object_bytes(services.objects, theirs))
    await _put(services, mine, b)
    await _put(services, theirs, a)
    await alice.say("confirm")
    await bob.say("confirm")
    await _failed_closed(services, alice, first)
    await _failed_closed(services, bob, second)
    assert await archive_objects(services) == []
