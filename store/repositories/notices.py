"""Notices and approval requests held until the person can be reached.

Each function takes the caller's session so several can share one transaction. Reads return
frozen records (:class:`HeldNoticeRecord`), never the ORM rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.statuses import ApprovalStatus
from store.models import (
    Approval,
    HeldNotice,
)


@dataclass(frozen=True, slots=True)
class HeldNoticeRecord:
    """A message held for a person (the columns of ``held_notices``); ``sealed`` is the
    message sealed with the server key."""

    id: int
    user_id: str
    reference: str | None
    kind: str
    sealed: str
    created_at: datetime


def _notice_record(row: HeldNotice) -> HeldNoticeRecord:
    return HeldNoticeRecord(id=row.id, user_id=row.user_id, reference=row.reference,
                            kind=row.kind, sealed=row.sealed, created_at=row.created_at)


async def hold_notice(session: AsyncSession, *, user_id: str, reference: str | None,
                      kind: str, sealed: str, now: datetime) -> None:
    session.add(HeldNotice(user_id=user_id, reference=reference, kind=kind, sealed=sealed,
                           created_at=now))


async def held_notices(session: AsyncSession, *, user_ids: Sequence[str]
                       ) -> list[HeldNoticeRecord]:
    """What is held for any of ``user_ids``, oldest first."""
    rows = (await session.scalars(
        select(HeldNotice).where(HeldNotice.user_id.in_(list(user_ids)))
        .order_by(HeldNotice.id))).all()
    return [_notice_record(row) for row in rows]


async def take_held_notice(session: AsyncSession, *, notice_id: int) -> bool:
    """Remove one held notice; True for the one caller whose delete removed it."""
    result = await session.execute(
        delete(HeldNotice).where(HeldNotice.id == notice_id)
        .execution_options(synchronize_session=False))
    return bool(getattr(result, "rowcount", 0) == 1)


async def prune_held_notices(session: AsyncSession, *, before: datetime) -> int:
    """Drop requests whose approval is no longer pending, and anything held since before
    ``before``; returns how many went."""
    settled = select(Approval.reference).where(Approval.status != ApprovalStatus.PENDING)
    result = await session.execute(
        delete(HeldNotice).where(
            (HeldNotice.created_at < before)
            | ((HeldNotice.kind == "request") & HeldNotice.reference.in_(settled)))
        .execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


async def drop_held_requests(session: AsyncSession, *, reference: str) -> None:
    """Forget the requests kept about ``reference`` (it was decided or cancelled)."""
    await session.execute(
        delete(HeldNotice).where(HeldNotice.reference == reference,
                                 HeldNotice.kind == "request")
        .execution_options(synchronize_session=False))
