"""Counts for monitoring: how many transfers, approvals, password sends and outbox entries
are in each state, and how long the oldest waiting ones have waited.

Read at each scrape of ``/metrics`` (``handlers/monitoring.py``), so every replica reports
the same database-wide numbers. One grouped count per table, over indexed status columns;
no row is read, only counts and the oldest time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.statuses import ApprovalStatus, EffectStatus
from store.models import Approval, OutboxEntry, PasswordSend, Transfer


@dataclass(frozen=True, slots=True)
class StateCounts:
    """Rows per stored status word (as stored: the handler maps them onto the enums)."""

    transfers: dict[str, int]
    sends: dict[tuple[str, str], int]  # (kind, status)
    outbox: dict[str, int]
    approvals_waiting: int
    oldest_approval: datetime | None  # requested_at of the longest-waiting pending one
    oldest_outbox: datetime | None  # created_at of the oldest pending entry


async def state_counts(session: AsyncSession) -> StateCounts:
    transfers = {str(status): int(n) for status, n in await session.execute(
        select(Transfer.status, func.count()).group_by(Transfer.status))}
    sends = {(str(kind), str(status)): int(n) for kind, status, n in await session.execute(
        select(PasswordSend.kind, PasswordSend.status, func.count())
        .group_by(PasswordSend.kind, PasswordSend.status))}
    outbox = {str(status): int(n) for status, n in await session.execute(
        select(OutboxEntry.status, func.count()).group_by(OutboxEntry.status))}
    waiting, oldest_approval = (await session.execute(
        select(func.count(), func.min(Approval.requested_at))
        .where(Approval.status == ApprovalStatus.PENDING))).one()
    oldest_outbox = await session.scalar(
        select(func.min(OutboxEntry.created_at))
        .where(OutboxEntry.status == EffectStatus.PENDING))
    return StateCounts(transfers=transfers, sends=sends, outbox=outbox,
                       approvals_waiting=int(waiting or 0), oldest_approval=oldest_approval,
                       oldest_outbox=oldest_outbox)
