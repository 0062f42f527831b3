"""The audit trail: chained, verifiable, exportable, never holding a password. (Keys,
checkpoints, truncation and pruning: test_audit_keyed.py; export filters: test_audit_export.py.)"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from store import audit
from store.db import Database
from store.models import AuditRecord

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


async def _fill(db: Database, n: int) -> None:
    for i in range(n):
        async with db.transaction() as s:
            await audit.append(s, at=T0 + timedelta(minutes=i), actor="console:alice",
                               action="answered", reference="SH-AAAA-22",
                               details={"question": "purpose", "purpose": f"reason {i}",
                                        "recipient": {"name": "Priya Shah",
                                                      "job_title": "Lead",
                                                      "organisation": "Trust",
                                                      "phone": "+44 7911 123456"}})


async def test_chain_verifies_and_names_first_tampered_record(database_url: str) -> None:
    db = Database(database_url)
    await _fill(db, 6)
    async with db.read() as s:
        result = await audit.verify(s)
    assert result.ok and result.records == 6 and result.checkpoint is None
    async with db.transaction() as s:
        await s.execute(update(AuditRecord).where(AuditRecord.seq == 4)
                        .values(details={"question": "purpose", "purpose": "edited"}))
    async with db.read() as s:
        result = await audit.verify(s)
    assert not result.ok and result.first_broken == 4
    await db.close()


async def test_deleted_record_is_detected(database_url: str) -> None:
    db = Database(database_url)
    await _fill(db, 4)
    async with db.transaction() as s:
        await s.delete(await s.get(AuditRecord, 2))
    async with db.read() as s:
        result = await audit.verify(s)
    assert not result.ok and result.first_broken == 2
    await db.close()


async def test_concurrent_appends_keep_one_chain(database_url: str) -> None:
    db = Database(database_url)

    async def one(i: int) -> None:
        async with db.transaction() as s:
            await audit.append(s, at=T0, actor=f"u{i}", action="received", details={"i": i})

    import asyncio

    await asyncio.gather(*(one(i) for i in range(20)))
    async with db.read() as s:
        result = await audit.verify(s)
    assert result.ok and result.records == 20
    await db.close()


async def test_refuses_secret_fields(database_url: str) -> None:
    db = Database(database_url)
    with pytest.raises(ValueError, match="password"):
        async with db.transaction() as s:
            await audit.append(s, at=T0, actor="x", action="y",
                               details={"nested": {"password": "hunter2"}})
    await db.close()


async def test_export_csv_and_json_since(database_url: str) -> None:
    db = Database(database_url)
    await _fill(db, 3)
    async with db.read() as s:
        rows = "".join([c async for c in audit.export(s, since=T0 + timedelta(minutes=1),
                                                       fmt="csv")])
        lines = "".join([c async for c in audit.export(s, since=None, fmt="json")])
    parsed = list(csv.DictReader(io.StringIO(rows)))
    assert [r["seq"] for r in parsed] == ["2", "3"]
    assert parsed[0]["recipient_name"] == "Priya Shah"
    assert parsed[0]["recipient_phone"] == "+44 7911 123456"
    assert parsed[0]["purpose"] == "reason 1"
    records = [json.loads(line) for line in lines.splitlines()]
    assert len(records) == 3 and records[1]["prev_hash"] == records[0]["hash"]
    await db.close()


async def test_csv_export_neutralises_formulas(database_url: str) -> None:
    db = Database(database_url)
    async with db.transaction() as s:
        await audit.append(s, at=T0, actor="console:alice", action="answered",
                           reference="SH-AAAA-22",
                           details={"purpose": "=HYPERLINK(\"http://x\",\"click\")"})
    async with db.read() as s:
        text = "".join([c async for c in audit.export(s, since=None, fmt="csv")])
    row = next(csv.DictReader(io.StringIO(text)))
    assert row["purpose"].startswith("'=HYPERLINK")
    assert all(not v.startswith("=") for v in row.values())
    await db.close()
