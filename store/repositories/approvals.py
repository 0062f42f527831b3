"""Approval requests and decisions.

Each function takes the caller's session so several can share one transaction. Reads return
frozen records (:class:`ApprovalRecord`), never the ORM rows; a request changes only through the
conditional updates here, so of two callers racing to settle it one wins."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.statuses import ApprovalStatus
from store.models import (
    Approval,
)


@dataclass(frozen=True, slots=True)
class ApprovalRecord:
    """An approval request as read (the columns of ``approvals``)."""

    id: int
    reference: str
    approvers: tuple[str, ...]
    status: ApprovalStatus
    requested_at: datetime
    expires_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None


def _approval_record(row: Approval) -> ApprovalRecord:
    return ApprovalRecord(id=row.id, reference=row.reference, approvers=tuple(row.approvers),
                          status=ApprovalStatus(row.status), requested_at=row.requested_at,
                          expires_at=row.expires_at, decided_by=row.decided_by,
                          decided_at=row.decided_at, reason=row.reason)


async def add_approval_request(session: AsyncSession, *, reference: str,
                               approvers: Sequence[str], now: datetime, expires_at: datetime
                               ) -> None:
    """Record a pending request for one of ``approvers`` to authorise ``reference``."""
    session.add(Approval(reference=reference, approvers=list(approvers),
                         status=ApprovalStatus.PENDING, requested_at=now,
                         expires_at=expires_at))


async def get_approval(session: AsyncSession, *, reference: str) -> ApprovalRecord | None:
    row = (await session.scalars(
        select(Approval).where(Approval.reference == reference))).first()
    return _approval_record(row) if row is not None else None


async def decide_approval(session: AsyncSession, *, reference: str, status: str, by: str,
                          reason: str | None, now: datetime) -> bool:
    """Record a decision if the request is still pending; False if someone got there first."""
    result = await session.execute(
        update(Approval).where(Approval.reference == reference,
                               Approval.status == ApprovalStatus.PENDING)
        .values(status=status, decided_by=by, decided_at=now, reason=reason)
        .execution_options(synchronize_session=False))
    return bool(getattr(result, "rowcount", 0) == 1)


async def close_approval(session: AsyncSession, *, reference: str, status: ApprovalStatus
                         ) -> bool:
    """End a request still pending without a decision (its transfer was cancelled, or it
    expired): ``status`` only, nobody decided. False if it was no longer pending."""
    result = await session.execute(
        update(Approval).where(Approval.reference == reference,
                               Approval.status == ApprovalStatus.PENDING)
        .values(status=status).execution_options(synchronize_session=False))
    return bool(getattr(result, "rowcount", 0) == 1)


async def expired_approvals(session: AsyncSession, *, now: datetime) -> list[ApprovalRecord]:
    rows = (await session.scalars(
        select(Approval).where(Approval.status == ApprovalStatus.PENDING,
                               Approval.expires_at <= now))).all()
    return [_approval_record(row) for row in rows]
