"""The audit trail across a server-key rotation (SQLite and PostgreSQL): records MAC'd under
the old key and the new verify while both are held; the rotation checkpoint, signed by the
new key and the old, names the old key and covers every record so far with a signed
digest, so once the old key is gone the whole trail (old checkpoints included) still
verifies; an old record altered after the old key was dropped is still caught; pruning
after the rotation keeps it so; a forged link to an attacker's key is not believed."""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from bot.audit_keys import AuditKeys, SignedCheckpoint, key_id_of, load_public_key, raw_public
from bot.vault import Vault
from store import audit
from store.audit_anchor import FileAnchor
from store.db import Database
from store.models import AuditRecord
from tests.store.test_audit_keyed import T0, fill


def trail_of(tmp_path: Path, vault: Vault) -> audit.AuditTrail:
    return audit.AuditTrail(keys=AuditKeys.from_vault(vault),
                            anchor=FileAnchor(tmp_path / "anchor.jsonl"))


async def check(db: Database, trail: audit.AuditTrail) -> audit.VerifyResult:
    found = await trail.checkpoints()
    async with db.read() as s:
        return await audit.verify(s, keys=trail.keys, checkpoints=found)


async def rotated(database_url: str, tmp_path: Path
                  ) -> tuple[Database, audit.AuditTrail, audit.AuditTrail, bytes, bytes]:
    """Six records and a checkpoint under the old key, three more under the new key (the
    old one held as previous), then the rotation checkpoint."""
    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    db = Database(database_url)
    before = trail_of(tmp_path, Vault(old))
    audit.attach(db, before)
    await fill(db, 6)
    await before.checkpoint(db, now=T0 + timedelta(hours=1))
    during = trail_of(tmp_path, Vault(new, [old]))
    audit.attach(db, during)
    await fill(db, 3, start=T0 + timedelta(hours=2))
    assert (await check(db, during)).ok  # both keys held: every MAC checks
    written = await during.rotate(db, now=T0 + timedelta(hours=3))
    assert len(written) == 1
    link = written[0]
    assert link.sealed_through == 9 and link.key_id == during.keys.key_id
    assert key_id_of(load_public_key(link.previous_key)) == before.keys.key_id
    return db, before, during, old, new


async def test_trail_verifies_across_the_rotation_once_the_old_key_is_gone(
        database_url: str, tmp_path: Path) -> None:
    db, before, during, _old, new = await rotated(database_url, tmp_path)
    assert await during.rotate(db, now=T0 + timedelta(hours=4)) == []  # nothing more to do
    after = trail_of(tmp_path, Vault(new))  # the old key removed from the settings
    assert not after.keys.previous
    audit.attach(db, after)
    await fill(db, 2, start=T0 + timedelta(hours=5))
    await after.checkpoint(db, now=T0 + timedelta(hours=6))
    result = await check(db, after)
    assert result.ok, result.message()
    assert result.records == 11 and result.checkpoints == 3
    async with db.read() as s:
        ids = [r.key_id for r in (await s.scalars(select(AuditRecord)
                                                  .order_by(AuditRecord.seq))).all()]
    assert ids == [before.keys.key_id] * 6 + [after.keys.key_id] * 5

    # The anchor's history: the old checkpoint, signed by the old key, and the link signed
    # by both: an auditor holding only the old public key follows it to the new one.
    found = [c for c in await after.checkpoints() if c is not None]
    assert found[0].valid(before.keys.public_key)
    link = found[1]
    assert link.valid(after.keys.public_key) and link.valid(before.keys.public_key) is False
    assert link.link_valid()

    # An old record altered after the old key was dropped: the signed digest catches it.
    async with db.transaction() as s:
        await s.execute(update(AuditRecord).where(AuditRecord.seq == 3)
                        .values(details={"question": "purpose", "purpose": "rewritten"}))
    broken = await check(db, after)
    assert not broken.ok and broken.first_broken == 1
    assert "key-rotation checkpoint" in (broken.problem or "")
    await db.close()


async def test_pruning_after_the_rotation_keeps_the_old_records_verifiable(
        database_url: str, tmp_path: Path) -> None:
    db, _before, _during, _old, new = await rotated(database_url, tmp_path)
    after = trail_of(tmp_path, Vault(new))
    audit.attach(db, after)
    # Records 1-3 go; 4-6 (old key) stay, covered again from the new beginning.
    deleted = await audit.prune(db, trail=after, before=T0 + timedelta(minutes=3),
                                now=T0 + timedelta(hours=7))
    assert deleted == 3
    result = await check(db, after)
    assert result.ok, result.message()
    await db.close()


async def test_a_link_to_an_attackers_key_is_not_believed(database_url: str,
                                                          tmp_path: Path) -> None:
    db, _before, _during, _old, new = await rotated(database_url, tmp_path)
    after = trail_of(tmp_path, Vault(new))
    attacker = AuditKeys.from_vault(Vault(secrets.token_bytes(32)))
    stranger = AuditKeys.from_vault(Vault(secrets.token_bytes(32)))
    latest = [c for c in await after.checkpoints() if c is not None][-1].checkpoint
    # A "link" in which the attacker's key vouches for another key it made up.
    forged = replace(latest, key_id=attacker.key_id, previous_key=raw_public(stranger.public_key))
    await after.anchor.append(SignedCheckpoint.make(forged, attacker, stranger))
    result = await check(db, after)
    assert not result.ok and "does not carry a valid signature" in (result.problem or "")
    await db.close()


async def test_two_rotations_in_turn(database_url: str, tmp_path: Path) -> None:
    """Key 1 → key 2 → key 3, each old key removed after its rotation: the whole trail,
    and every checkpoint of the three keys, verifies with key 3 alone."""
    db, _before, _during, _old, second = await rotated(database_url, tmp_path)
    third = secrets.token_bytes(32)
    after_first = trail_of(tmp_path, Vault(second))
    audit.attach(db, after_first)
    await fill(db, 2, start=T0 + timedelta(hours=8))
    await after_first.checkpoint(db, now=T0 + timedelta(hours=9))
    during = trail_of(tmp_path, Vault(third, [second]))
    audit.attach(db, during)
    await fill(db, 2, start=T0 + timedelta(hours=10))
    assert len(await during.rotate(db, now=T0 + timedelta(hours=11))) == 1
    last = trail_of(tmp_path, Vault(third))
    audit.attach(db, last)
    result = await check(db, last)
    assert result.ok and result.records == 13, result.message()
    async with db.read() as s:
        assert len(set((await s.scalars(select(AuditRecord.key_id))).all())) == 3
    await db.close()


async def test_keys_retired_two_rotations_ago_sign_nothing_after_their_link(
        database_url: str, tmp_path: Path) -> None:
    """Key 1 → key 2 → key 3: key 1 is believed only up to its link (signed by key 2), key 2
    only up to its own (signed by key 3); a checkpoint either signs naming later records (a
    start point at the head, a digest of altered records) fails verify."""
    db, _before, _during, first, second = await rotated(database_url, tmp_path)
    third = secrets.token_bytes(32)
    during = trail_of(tmp_path, Vault(third, [second]))
    audit.attach(db, during)
    await fill(db, 2, start=T0 + timedelta(hours=8))
    assert len(await during.rotate(db, now=T0 + timedelta(hours=9))) == 1
    last = trail_of(tmp_path, Vault(third))
    audit.attach(db, last)
    await fill(db, 2, start=T0 + timedelta(hours=10))
    await last.checkpoint(db, now=T0 + timedelta(hours=11))
    assert (await check(db, last)).ok
    async with db.transaction() as s:
        await s.execute(update(AuditRecord).where(AuditRecord.seq == 4)
                        .values(details={"question": "purpose", "purpose": "rewritten"}))
    clean = (await last.anchor.read())
    latest = [c for c in clean if c is not None][-1].checkpoint
    async with db.read() as s:
        digest = await audit.segment_digest(s, after=0, through=latest.head_seq)
    for key in (first, second):
        retired = AuditKeys.from_vault(Vault(key))
        for forged in (replace(latest, key_id=retired.key_id, base_seq=latest.head_seq,
                               base_mac=latest.head_mac, count=0, sealed_through=0,
                               sealed_digest="", at=T0 + timedelta(hours=12)),
                       replace(latest, key_id=retired.key_id, sealed_through=latest.head_seq,
                               sealed_digest=digest, at=T0 + timedelta(hours=12))):
            anchor = FileAnchor(tmp_path / f"forged-{retired.key_id}-{forged.base_seq}.jsonl")
            for signed in clean:
                assert signed is not None
                await anchor.append(signed)
            await anchor.append(SignedCheckpoint.make(forged, retired))
            result = await check(db, replace(last, anchor=anchor))
            assert not result.ok and "retired key" in (result.problem or ""), result.message()
    await db.close()
