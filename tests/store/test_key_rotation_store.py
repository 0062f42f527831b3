"""``rotate-key``'s re-sealing against a live system (SQLite and PostgreSQL): two rotations
at once while deliveries clear passwords re-seal each value exactly once, never bring back
a cleared one, and leave every envelope opening with the new key alone."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select, update

from bot.app.rotation import SEALED_COLUMNS
from bot.envelope import decrypt_stream, encrypt_stream
from bot.objects import UPLOADS, upload_key
from bot.replies import Text
from bot.vault import Vault
from handlers.notify import open_replies, seal_replies
from store.db import Database
from store.key_rotation import left_in_column, left_in_objects, reseal_column, reseal_objects
from store.models import HeldNotice, SlackInboxEntry, Transfer
from store.objects import LocalObjectStore
from tests.support.fake_twilio import seed_due_sms

PASSWORDS = SEALED_COLUMNS[0]


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_two_rotations_at_once_while_deliveries_clear_passwords(
        database_url: str, tmp_path: Path) -> None:
    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    db = Database(database_url)
    refs = await seed_due_sms(db, Vault(old), count=60, now=datetime.now(UTC))
    objects = LocalObjectStore(tmp_path / "objects")
    for n, ref in enumerate(refs[:6], start=1):
        key = upload_key(ref, 1)
        await objects.put(key, encrypt_stream(_once(f"file {n}".encode()), Vault(old),
                                              context=str(key)))
    rotated = Vault(new, [old])
    delivered = refs[::7]

    async def deliver() -> None:
        for ref in delivered:
            async with db.transaction() as s:
                await s.execute(update(Transfer).where(Transfer.reference == ref)
                                .values(password_sealed=None))
            await asyncio.sleep(0)

    first, second, _ = await asyncio.gather(reseal_column(db, rotated, PASSWORDS),
                                            reseal_column(db, rotated, PASSWORDS), deliver())
    assert first.unopenable == second.unopenable == 0
    # Each value re-sealed once at most, across both runs (a compare-and-swap each).
    assert len(refs) - len(delivered) <= first.resealed + second.resealed <= len(refs)
    async with db.read() as s:
        rows = dict((await s.execute(select(Transfer.reference, Transfer.password_sealed)
                                     .where(Transfer.reference.in_(refs)))).all())
    assert all(rows[ref] is None for ref in delivered)  # never brought back
    alone = Vault(new)
    for ref in set(refs) - set(delivered):
        sealed = rows[ref]
        assert sealed is not None and alone.open(sealed, reference=ref) == f"Pw-{ref}"
    assert await left_in_column(db, alone, PASSWORDS) == 0

    a, b = await asyncio.gather(reseal_objects(objects, db, rotated, UPLOADS),
                                reseal_objects(objects, db, rotated, UPLOADS))
    assert a.unopenable == b.unopenable == 0
    assert await left_in_objects(objects, alone, UPLOADS) == 0
    for n, ref in enumerate(refs[:6], start=1):
        key = upload_key(ref, 1)
        plain = b"".join([c async for c in decrypt_stream(objects.get(key), alone,
                                                           context=str(key))])
        assert plain == f"file {n}".encode()
    await db.close()


async def test_held_notices_and_slack_inbox_bodies_are_resealed(database_url: str) -> None:
    """Each column is re-sealed with the associated data its reader opens it with."""
    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    db = Database(database_url)
    now = datetime.now(UTC)
    binding = "slack-inbox:T1:Ev123"
    async with db.transaction() as s:
        s.add(HeldNotice(user_id="slack:U1", reference=None, kind="notice", created_at=now,
                         sealed=seal_replies(Vault(old), "slack:U1", [Text("for you")])))
        s.add(SlackInboxEntry(event_key=binding, owner="host:1", lease_until=now,
                              status="accepted", accepted_at=now,
                              body=Vault(old).seal('{"text":"hello"}', reference=binding)))
    rotated = Vault(new, [old])
    for spec in SEALED_COLUMNS:
        tally = await reseal_column(db, rotated, spec)
        assert tally.unopenable == 0, spec.kind
    alone = Vault(new)
    async with db.read() as s:
        notice = (await s.scalars(select(HeldNotice))).one()
        entry = (await s.scalars(select(SlackInboxEntry))).one()
    assert open_replies(alone, "slack:U1", notice.sealed) == [Text("for you")]
    assert alone.open(entry.body, reference=entry.event_key) == '{"text":"hello"}'
    for spec in SEALED_COLUMNS:
        assert await left_in_column(db, alone, spec) == 0
    await db.close()
