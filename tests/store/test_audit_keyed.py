"""The keyed audit trail against a database administrator: every edit, deletion, reordering
and truncation is named by ``verify``, recomputing the chain with plain SHA-256 does not
pass, the anchor's checkpoints cannot be altered unseen, pruning keeps the trail verifiable,
and two processes appending at once leave one chain (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from bot.audit_keys import GENESIS, AuditKeys, Scheme
from bot.objects import ObjectKey
from bot.vault import Vault
from store import audit
from store.audit_anchor import FileAnchor, ObjectAnchor, open_anchor
from store.db import Database
from store.models import AuditRecord
from store.objects import LocalObjectStore

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


def make_trail(tmp_path: Path, key: bytes | None = None, **kw: object) -> audit.AuditTrail:
    keys = AuditKeys.from_vault(Vault(key or secrets.token_bytes(32)))
    return audit.AuditTrail(keys=keys, anchor=FileAnchor(tmp_path / "anchor.jsonl"), **kw)  # type: ignore[arg-type]


async def fill(db: Database, n: int, *, start: datetime = T0,
               step: timedelta = timedelta(minutes=1)) -> None:
    for i in range(n):
        async with db.transaction() as s:
            await audit.append(s, at=start + step * i, actor="console:alice",
                               action="answered", reference="SH-AAAA-22",
                               details={"question": "purpose", "purpose": f"reason {i}"})


async def check(db: Database, trail: audit.AuditTrail) -> audit.VerifyResult:
    checkpoints = await trail.checkpoints()
    async with db.read() as s:
        return await audit.verify(s, keys=trail.keys, checkpoints=checkpoints)


async def keyed(database_url: str, tmp_path: Path, n: int = 6
                ) -> tuple[Database, audit.AuditTrail]:
    db = Database(database_url)
    trail = make_trail(tmp_path)
    audit.attach(db, trail)
    await fill(db, n)
    await trail.checkpoint(db, now=T0 + timedelta(hours=1))
    return db, trail


async def test_keyed_records_verify_against_their_checkpoint(database_url: str,
                                                             tmp_path: Path) -> None:
    db, trail = await keyed(database_url, tmp_path)
    async with db.read() as s:
        schemes = set((await s.scalars(select(AuditRecord.scheme))).all())
    assert schemes == {Scheme.HMAC_SHA256.value}
    result = await check(db, trail)
    assert result.ok and result.records == 6
    assert result.checkpoint is not None and result.checkpoint.head_seq == 6
    assert "checked against the checkpoint of" in result.message()
    await db.close()


async def test_edited_record_is_named(database_url: str, tmp_path: Path) -> None:
    db, trail = await keyed(database_url, tmp_path)
    async with db.transaction() as s:
        await s.execute(update(AuditRecord).where(AuditRecord.seq == 3)
                        .values(details={"question": "purpose", "purpose": "edited"}))
    result = await check(db, trail)
    assert not result.ok and result.first_broken == 3 and "altered" in (result.problem or "")
    await db.close()


async def test_deleted_record_is_named(database_url: str, tmp_path: Path) -> None:
    db, trail = await keyed(database_url, tmp_path)
    async with db.transaction() as s:
        await s.execute(delete(AuditRecord).where(AuditRecord.seq == 2))
    result = await check(db, trail)
    assert not result.ok and result.first_broken == 2 and "missing" in (result.problem or "")
    await db.close()


async def test_reordered_records_are_named(database_url: str, tmp_path: Path) -> None:
    db, trail = await keyed(database_url, tmp_path)
    async with db.transaction() as s:  # swap records 3 and 4
        await s.execute(update(AuditRecord).where(AuditRecord.seq == 3).values(seq=-3))
        await s.execute(update(AuditRecord).where(AuditRecord.seq == 4).values(seq=3))
        await s.execute(update(AuditRecord).where(AuditRecord.seq == -3).values(seq=4))
    result = await check(db, trail)
    assert not result.ok and result.first_broken == 3
    await db.close()


@pytest.mark.parametrize("deleted", [1, 3])
async def test_truncation_is_named_from_the_checkpoint(database_url: str, tmp_path: Path,
                                                       deleted: int) -> None:
    db, trail = await keyed(database_url, tmp_path)
    async with db.read() as s:  # without the checkpoints, the shorter chain looks fine...
        async with db.transaction() as w:
            await w.execute(delete(AuditRecord).where(AuditRecord.seq > 6 - deleted))
        assert (await audit.verify(s, keys=trail.keys)).ok
    result = await check(db, trail)  # ...against them, it is cut short
    assert not result.ok and result.first_broken == 7 - deleted
    assert "truncated" in (result.problem or "")
    assert result.checkpoint is not None and result.checkpoint.head_seq == 6
    # and no checkpoint is ever signed over the truncated trail
    with pytest.raises(audit.AuditBroken):
        await trail.checkpoint(db, now=T0 + timedelta(hours=2))
    assert not (await check(db, trail)).ok
    await db.close()


async def test_recomputing_the_chain_with_sha256_does_not_pass(database_url: str,
                                                               tmp_path: Path) -> None:
    """An administrator edits record 2 and rewrites the whole chain as unkeyed records with
    fresh SHA-256 hashes: the chain is consistent, and still refused."""
    db, trail = await keyed(database_url, tmp_path)
    async with db.transaction() as s:
        rows = (await s.scalars(select(AuditRecord).order_by(AuditRecord.seq))).all()
        prev = GENESIS
        for rec in rows:
            details = {"question": "purpose", "purpose": "edited"} if rec.seq == 2 \
                else rec.details
            new = audit.record_hash(seq=rec.seq, at=rec.at, reference=rec.reference,
                                    actor=rec.actor, action=rec.action, details=details,
                                    prev_hash=prev)
            await s.execute(update(AuditRecord).where(AuditRecord.seq == rec.seq).values(
                details=details, prev_hash=prev, hash=new, scheme=Scheme.SHA256.value,
                key_id=None))
            prev = new
    async with db.read() as s:  # the forged chain is internally consistent...
        assert (await audit.verify(s, keys=trail.keys)).ok
    result = await check(db, trail)  # ...but the checkpoint says record 1 on are keyed
    assert not result.ok and result.first_broken == 1
    assert "keyed MAC" in (result.problem or "")
    await db.close()


async def test_recomputing_with_another_key_does_not_pass(database_url: str,
                                                          tmp_path: Path) -> None:
    db, trail = await keyed(database_url, tmp_path)
    other = AuditKeys.from_vault(Vault(secrets.token_bytes(32)))
    async with db.transaction() as s:  # a forger with a key of their own, same key_id
        rec = await s.get(AuditRecord, 6)
        assert rec is not None
        rec.details = {"question": "purpose", "purpose": "edited"}
        rec.hash = other.mac(b"anything")
    result = await check(db, trail)
    assert not result.ok and result.first_broken == 6
    await db.close()


async def test_unkeyed_records_before_the_switch_stay_verifiable_and_cannot_be_added_after(
        database_url: str, tmp_path: Path) -> None:
    db = Database(database_url)
    await fill(db, 3)  # written before migration 0012's keys: unkeyed SHA-256
    trail = make_trail(tmp_path)
    audit.attach(db, trail)
    await fill(db, 3, start=T0 + timedelta(hours=1))
    checkpoint = await trail.checkpoint(db, now=T0 + timedelta(hours=2))
    assert checkpoint.keyed_from == 4
    result = await check(db, trail)
    assert result.ok and result.records == 6
    # An old, unkeyed writer (or a forger) appends after the switch-over: refused.
    legacy = Database(database_url)
    await fill(legacy, 1, start=T0 + timedelta(hours=3))
    result = await check(db, trail)
    assert not result.ok and result.first_broken == 7 and "unkeyed" in (result.problem or "")
    await legacy.close()
    await db.close()


async def test_a_checkpoint_over_an_old_unkeyed_trail_fixes_the_switch_over(
        database_url: str, tmp_path: Path) -> None:
    """The first checkpoint after the upgrade, with no keyed record yet, says every record
    after its head must be keyed: an unkeyed record appended later is refused."""
    db = Database(database_url)
    await fill(db, 2)
    trail = make_trail(tmp_path)
    checkpoint = await trail.checkpoint(db, now=T0 + timedelta(hours=1))
    assert checkpoint.keyed_from == 3
    await fill(db, 1, start=T0 + timedelta(hours=2))  # still unkeyed: no trail attached
    result = await check(db, trail)
    assert not result.ok and result.first_broken == 3
    await db.close()


async def test_anchor_tampering_is_detected(database_url: str, tmp_path: Path) -> None:
    db, trail = await keyed(database_url, tmp_path)
    anchor = tmp_path / "anchor.jsonl"
    line = json.loads(anchor.read_text())
    line["count"], line["head_seq"] = 5, 5  # "there were only five"
    anchor.write_text(json.dumps(line) + "\n")
    result = await check(db, trail)
    assert not result.ok and "signature" in (result.problem or "")
    anchor.write_text('{"format": "safehaven-audit-checkpoint/1", "head_seq": 9\n')
    result = await check(db, trail)
    assert not result.ok and "cannot be read" in (result.problem or "")
    anchor.unlink()  # the anchor gone: the trail cannot be vouched for
    result = await check(db, trail)
    assert not result.ok and "no signed checkpoint" in (result.problem or "")
    await db.close()


async def test_a_checkpoint_signed_by_another_key_is_refused(database_url: str,
                                                             tmp_path: Path) -> None:
    db, trail = await keyed(database_url, tmp_path)
    forger = make_trail(tmp_path)  # same anchor, a key of their own
    async with db.transaction() as s:
        await s.execute(delete(AuditRecord).where(AuditRecord.seq == 6))
    with pytest.raises(audit.AuditBroken):  # the forger's key does not check the records
        await forger.checkpoint(db, now=T0 + timedelta(hours=2))
    result = await check(db, trail)
    assert not result.ok and result.first_broken == 6
    await db.close()


async def test_object_store_anchor(database_url: str, tmp_path: Path) -> None:
    db = Database(database_url)
    store = LocalObjectStore(tmp_path / "objects")
    trail = make_trail(tmp_path)
    trail.anchor = open_anchor("objects:audit/checkpoints", objects=store)
    assert isinstance(trail.anchor, ObjectAnchor)
    audit.attach(db, trail)
    await fill(db, 4)
    await trail.checkpoint(db, now=T0 + timedelta(hours=1))
    await fill(db, 2, start=T0 + timedelta(hours=2))
    await trail.checkpoint(db, now=T0 + timedelta(hours=3))
    names = sorted([i.key async for i in store.list(ObjectKey("audit/checkpoints"))])
    assert len(names) == 2  # one object per checkpoint: the history is kept
    assert (await check(db, trail)).ok
    async with db.transaction() as s:
        await s.execute(delete(AuditRecord).where(AuditRecord.seq == 6))
    result = await check(db, trail)
    assert not result.ok and result.first_broken == 6
    path = store.root / names[-1]
    path.write_text(path.read_text().replace('"count": 6', '"count": 5'))
    result = await check(db, trail)
    assert not result.ok and "signature" in (result.problem or "")
    await db.close()


async def test_checkpoints_are_written_when_due(database_url: str, tmp_path: Path) -> None:
    db = Database(database_url)
    trail = make_trail(tmp_path, every_records=5, every=timedelta(minutes=10))
    audit.attach(db, trail)
    await fill(db, 1)
    assert await trail.checkpoint_if_due(db, now=T0) is not None  # the first one at once
    await fill(db, 3)
    assert await trail.checkpoint_if_due(db, now=T0 + timedelta(minutes=1)) is None
    assert await trail.checkpoint_if_due(db, now=T0 + timedelta(minutes=11)) is not None
    await fill(db, 5)
    due = await trail.checkpoint_if_due(db, now=T0 + timedelta(minutes=12))
    assert due is not None and due.head_seq == 9
    assert await trail.checkpoint_if_due(db, now=T0 + timedelta(hours=5)) is None  # none new
    assert len(await trail.checkpoints()) == 3
    await db.close()


async def test_pruning_keeps_verify_green(database_url: str, tmp_path: Path) -> None:
    db = Database(database_url)
    trail = make_trail(tmp_path)
    audit.attach(db, trail)
    await fill(db, 10, step=timedelta(days=1))
    await trail.checkpoint(db, now=T0 + timedelta(days=10))
    now = T0 + timedelta(days=20)
    pruned = await audit.prune(db, trail=trail, before=T0 + timedelta(days=5), now=now)
    assert pruned == 5
    async with db.read() as s:
        seqs = (await s.scalars(select(AuditRecord.seq).order_by(AuditRecord.seq))).all()
        last = await s.get(AuditRecord, seqs[-1])
    assert seqs[0] == 6 and last is not None and last.action == "audit_pruned"
    result = await check(db, trail)
    assert result.ok and result.records == 6
    assert result.checkpoint is not None and result.checkpoint.base_seq == 5
    # Pruning again keeps the newest record (the chain's tail) whatever its age.
    await audit.prune(db, trail=trail, before=now + timedelta(days=1), now=now)
    async with db.read() as s:
        left = (await s.scalars(select(AuditRecord.seq).order_by(AuditRecord.seq))).all()
    assert len(left) == 2  # the old tail, and the record of this pruning
    assert (await check(db, trail)).ok
    # Deleting the first record left after the pruning point is still named.
    async with db.transaction() as s:
        await s.execute(delete(AuditRecord).where(AuditRecord.seq == left[0]))
    result = await check(db, trail)
    assert not result.ok and result.first_broken == left[0]
    await db.close()


_APPENDER = textwrap.dedent("""
    import asyncio, sys
    from datetime import UTC, datetime
    from pathlib import Path
    from bot.audit_keys import AuditKeys
    from bot.vault import Vault
    from store import audit
    from store.audit_anchor import FileAnchor
    from store.db import Database

    async def main(url, key_hex, anchor, who):
        db = Database(url)
        trail = audit.AuditTrail(keys=AuditKeys.from_vault(Vault(bytes.fromhex(key_hex))),
                                 anchor=FileAnchor(Path(anchor)), every_records=3)
        audit.attach(db, trail)
        for i in range(25):
            async with db.transaction() as s:
                await audit.append(s, at=datetime.now(UTC), actor=who, action="received",
                                   details={"i": i})
            await trail.checkpoint_if_due(db, now=datetime.now(UTC))
        await db.close()

    asyncio.run(main(*sys.argv[1:]))
""")


async def test_two_processes_appending_at_once_leave_one_verified_chain(
        database_url: str, tmp_path: Path) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite is the single-process store; replicas share PostgreSQL")
    key = secrets.token_bytes(32)
    anchor = tmp_path / "anchor.jsonl"
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, "-c", _APPENDER, database_url, key.hex(), str(anchor), f"p{n}",
        cwd=ROOT, stderr=subprocess.PIPE) for n in range(2)]
    for proc in procs:
        _, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
    db = Database(database_url)
    trail = make_trail(tmp_path, key)
    found = await trail.checkpoints()
    assert len(found) >= 2 and all(c is not None for c in found)
    await trail.checkpoint(db, now=datetime.now(UTC))
    result = await check(db, trail)
    assert result.ok and result.records == 50
    await db.close()


async def test_the_first_checkpoint_refuses_an_unkeyed_record_after_keyed_ones(
        database_url: str, tmp_path: Path) -> None:
    db = Database(database_url)
    trail = make_trail(tmp_path)
    audit.attach(db, trail)
    await fill(db, 2)
    legacy = Database(database_url)  # a process without the keys
    await fill(legacy, 1, start=T0 + timedelta(hours=1))
    with pytest.raises(audit.AuditBroken, match="record 3"):
        await trail.checkpoint(db, now=T0 + timedelta(hours=2))
    assert await trail.checkpoints() == []
    await legacy.close()
    await db.close()


async def test_an_object_store_url_anchor_is_a_store_of_its_own(database_url: str,
                                                                 tmp_path: Path) -> None:
    db = Database(database_url)
    trail = make_trail(tmp_path)
    folder = tmp_path / "worm"
    trail.anchor = open_anchor(folder.as_uri(), objects=LocalObjectStore(tmp_path / "main"))
    audit.attach(db, trail)
    await fill(db, 3)
    await trail.checkpoint(db, now=T0 + timedelta(hours=1))
    assert [p.name for p in (folder / "checkpoints").iterdir()] == [
        f"{3:016d}-{0:016d}.json"]
    assert not (tmp_path / "main" / "checkpoints").exists()
    assert (await check(db, trail)).ok
    await db.close()


async def test_backdated_records_are_not_pruned_away(database_url: str, tmp_path: Path) -> None:
    """A database administrator backdates every checkpointed record so retention would prune
    them (laundering any change away behind a fresh checkpoint): pruning checks them first
    and refuses, deletes nothing, and ``verify`` still names the first altered record."""
    db = Database(database_url)
    trail = make_trail(tmp_path)
    audit.attach(db, trail)
    await fill(db, 10, step=timedelta(days=1))
    await trail.checkpoint(db, now=T0 + timedelta(days=10))
    async with db.transaction() as s:
        await s.execute(update(AuditRecord).values(at=datetime(2000, 1, 1, tzinfo=UTC)))
    with pytest.raises(audit.AuditBroken):
        await audit.prune(db, trail=trail, before=T0, now=T0 + timedelta(days=20))
    async with db.read() as s:
        assert len((await s.scalars(select(AuditRecord.seq))).all()) == 10
    result = await check(db, trail)
    assert not result.ok and result.first_broken == 1
    await db.close()
