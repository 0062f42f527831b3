"""Approval requests and decisions.

Each function takes the caller's session so several can share one transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.statuses import ApprovalStatus
from store.models import (
    Approval,
)


async def get_approval(session: AsyncSession, *, reference: str) -> Approval | None:
    return (await session.scalars(
        select(Approval).where(Approval.reference == reference))).first()


async def decide_approval(session: AsyncSession, *, reference: str, status: str, by: str,
                          reason: str | None, now: datetime) -> bool:
    """Record a decision if the request is still pending; False if someone got there first."""
    result = await session.execute(
        update(Approval).where(Approval.reference == reference,
                               Approval.status == ApprovalStatus.PENDING)
        .values(status=status, decided_by=by, decided_at=now, reason=reason)
        .execution_options(synchronize_session=False))
    return bool(getattr(result, "rowcount", 0) == 1)


async def expired_approvals(session: AsyncSession, *, now: datetime) -> list[Approval]:
    return list((await session.scalars(
        select(Approval).where(Approval.status == ApprovalStatus.PENDING,
                               Approval.expires_at <= now))).all())
