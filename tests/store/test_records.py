"""The repositories hand out frozen records, never ORM rows, and change transfers and
approvals only through their own conditional updates."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from bot.statuses import ApprovalStatus, DeliveryMethod, TransferStatus
from store import repositories as repo
from store.db import Database

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
FILES = [{"position": 1, "name": "a.pdf", "path": "/up/1/a.pdf", "size": 10, "kind": "pdf"},
         {"position": 2, "name": "b.pdf", "path": "/up/1/b.pdf", "size": 5, "kind": "pdf"}]


async def _submitted(db: Database, reference: str) -> None:
    async with db.transaction() as s:
        await repo.upsert_draft(s, reference=reference, sender_id="console:alice", files=FILES,
                                classification="Official-Sensitive", now=NOW)
        await repo.set_status(s, reference=reference, status=TransferStatus.SUBMITTED, now=NOW,
                              recipient={"name": "Priya"}, delivery_method="portal")
        await repo.add_approval_request(s, reference=reference, approvers=["console:manager"],
                                        now=NOW, expires_at=NOW + timedelta(hours=24))


async def test_reads_are_frozen_records_of_the_rows(database_url: str) -> None:
    db = Database(database_url)
    await _submitted(db, "SH-AAAA-01")
    async with db.read() as s:
        transfer = await repo.get_transfer(s, reference="SH-AAAA-01")
        files = await repo.transfer_files(s, reference="SH-AAAA-01")
        approval = await repo.get_approval(s, reference="SH-AAAA-01")
        assert await repo.get_transfer(s, reference="SH-NONE-00") is None
    assert isinstance(transfer, repo.TransferRecord)
    assert (transfer.status, transfer.delivery_method, transfer.total_bytes) == (
        TransferStatus.SUBMITTED, DeliveryMethod.PORTAL, 15)
    assert transfer.recipient == {"name": "Priya"}
    assert [(f.position, f.original_name, f.stored_path) for f in files] == [
        (1, "a.pdf", "/up/1/a.pdf"), (2, "b.pdf", "/up/1/b.pdf")]
    assert isinstance(approval, repo.ApprovalRecord)
    assert (approval.status, approval.approvers) == (ApprovalStatus.PENDING,
                                                     ("console:manager",))
    for record, field in ((transfer, "status"), (files[0], "stored_path"),
                          (approval, "status")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(record, field, None)
    await db.close()


async def test_closing_a_request_wins_once_and_never_overrides_a_decision(
        database_url: str) -> None:
    db = Database(database_url)
    await _submitted(db, "SH-AAAA-02")
    await _submitted(db, "SH-AAAA-03")
    async with db.transaction() as s:
        assert await repo.close_approval(s, reference="SH-AAAA-02",
                                         status=ApprovalStatus.CANCELLED)
        assert not await repo.close_approval(s, reference="SH-AAAA-02",
                                             status=ApprovalStatus.EXPIRED)
        assert await repo.decide_approval(s, reference="SH-AAAA-03",
                                          status=ApprovalStatus.APPROVED, by="console:manager",
                                          reason=None, now=NOW)
        assert not await repo.close_approval(s, reference="SH-AAAA-03",
                                             status=ApprovalStatus.CANCELLED)
    async with db.read() as s:
        cancelled = await repo.get_approval(s, reference="SH-AAAA-02")
        approved = await repo.get_approval(s, reference="SH-AAAA-03")
    assert cancelled is not None and approved is not None
    assert (cancelled.status, cancelled.decided_by) == (ApprovalStatus.CANCELLED, None)
    assert (approved.status, approved.decided_by) == (ApprovalStatus.APPROVED, "console:manager")
    await db.close()


async def test_forgetting_stored_paths_clears_every_file_of_the_transfer_only(
        database_url: str) -> None:
    db = Database(database_url)
    await _submitted(db, "SH-AAAA-04")
    await _submitted(db, "SH-AAAA-05")
    async with db.transaction() as s:
        await repo.forget_stored_paths(s, reference="SH-AAAA-04")
    async with db.read() as s:
        gone = await repo.transfer_files(s, reference="SH-AAAA-04")
        kept = await repo.transfer_files(s, reference="SH-AAAA-05")
    assert [f.stored_path for f in gone] == [None, None]
    assert [f.stored_path for f in kept] == ["/up/1/a.pdf", "/up/1/b.pdf"]
    await db.close()
