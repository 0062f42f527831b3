"""``audit export`` filters: by reference, time, sender and the recipient's organisation;
the sender and organisation come from the trail itself, so they hold after the transfer's
rows are gone."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from store import audit
from store.db import Database

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


async def _two_transfers(db: Database) -> None:
    rows: list[tuple[str, str | None, str, dict[str, Any]]] = [
        ("console:alice", "SH-AAAA-22", "answered",
         {"recipient": {"name": "Priya Shah", "organisation": "Northfield NHS Trust"}}),
        ("slack:U2", "SH-BBBB-33", "answered",
         {"recipient": {"name": "Sam Okafor", "organisation": "Riverside Council"}}),
        ("safehaven", "SH-AAAA-22", "packaged", {}),
        ("safehaven", None, "access_refused", {"reason": "not a sender"}),
        ("twilio", "SH-BBBB-33", "password_delivered", {}),
        ("console:alice", None, "signed_in", {}),
    ]
    for i, (actor, reference, action, details) in enumerate(rows):
        async with db.transaction() as s:
            await audit.append(s, at=T0 + timedelta(days=i), actor=actor, action=action,
                               reference=reference, details=details)


async def _seqs(db: Database, where: audit.ExportFilter) -> list[int]:
    async with db.read() as s:
        text = "".join([c async for c in audit.export(s, fmt="json", where=where)])
    return [json.loads(line)["seq"] for line in text.splitlines()]


async def test_filters(database_url: str) -> None:
    db = Database(database_url)
    await _two_transfers(db)
    assert await _seqs(db, audit.ExportFilter()) == [1, 2, 3, 4, 5, 6]
    assert await _seqs(db, audit.ExportFilter(reference="SH-AAAA-22")) == [1, 3]
    assert await _seqs(db, audit.ExportFilter(since=T0 + timedelta(days=2),
                                              until=T0 + timedelta(days=4))) == [3, 4]
    # the sender's transfers (records of the system on them too) and their own records
    assert await _seqs(db, audit.ExportFilter(sender="console:alice")) == [1, 3, 6]
    assert await _seqs(db, audit.ExportFilter(sender="slack:U2")) == [2, 5]
    assert await _seqs(db, audit.ExportFilter(organisation="riverside council")) == [2, 5]
    assert await _seqs(db, audit.ExportFilter(organisation="Nobody")) == []
    assert await _seqs(db, audit.ExportFilter(through_seq=2)) == [1, 2]
    async with db.read() as s:
        csv_text = "".join([c async for c in audit.export(
            s, fmt="csv", where=audit.ExportFilter(organisation="Northfield NHS Trust"))])
    lines = csv_text.splitlines()
    assert lines[0].startswith("seq,") and len(lines) == 3
    assert "Northfield NHS Trust" in lines[2]  # the packaged row carries the transfer's fields
    await db.close()
