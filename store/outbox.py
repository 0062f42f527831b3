"""Data access for the transactional outbox (:class:`store.models.OutboxEntry`).

Entries are added in the caller's transaction, beside the state change that calls for them.
Taking one is a conditional update whose row count says whether this caller won it, so two
processes (a turn and the scheduler, or two workers) never run the same entry at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import EffectKind, EffectStatus, OutboxEntry

# The transaction handlers write entries in (they name it without importing SQLAlchemy).
Session = AsyncSession


@dataclass(frozen=True)
class PendingEffect:
    """An outbox entry this caller has claimed and is to run."""

    key: str
    kind: EffectKind
    reference: str | None
    payload: dict[str, Any]
    attempts: int


def transfer_key(reference: str, kind: EffectKind) -> str:
    """The key of a transfer's once-only effect: a second one cannot be written."""
    return f"{reference}:{kind}"


async def add(session: AsyncSession, *, key: str, kind: EffectKind, reference: str | None,
              payload: Mapping[str, Any], now: datetime) -> None:
    session.add(OutboxEntry(key=key, kind=str(kind), reference=reference, payload=dict(payload),
                            status=EffectStatus.PENDING, attempts=0, created_at=now))


async def claim(session: AsyncSession, *, key: str, now: datetime, until: datetime,
                pending_before: datetime | None = None) -> PendingEffect | None:
    """Take ``key`` until ``until``: a pending entry (written before ``pending_before``, if
    given), or one whose claim has lapsed when ``pending_before`` is given (the sweep).
    None if it is not there to take."""
    takeable = OutboxEntry.status == EffectStatus.PENDING
    if pending_before is not None:
        takeable = (takeable & (OutboxEntry.created_at <= pending_before)) | (
            (OutboxEntry.status == EffectStatus.RUNNING) & (OutboxEntry.claimed_until <= now))
    result = await session.execute(
        update(OutboxEntry).where(OutboxEntry.key == key, takeable)
        .values(status=EffectStatus.RUNNING, claimed_until=until,
                attempts=OutboxEntry.attempts + 1)
        .execution_options(synchronize_session=False))
    if getattr(result, "rowcount", 0) != 1:
        return None
    row = (await session.execute(
        select(OutboxEntry.kind, OutboxEntry.reference, OutboxEntry.payload,
               OutboxEntry.attempts).where(OutboxEntry.key == key))).one()
    return PendingEffect(key=key, kind=EffectKind(row.kind), reference=row.reference,
                         payload=dict(row.payload), attempts=int(row.attempts))


async def sweepable(session: AsyncSession, *, now: datetime, pending_before: datetime,
                    limit: int) -> list[str]:
    """Keys of entries nobody is running: pending since before ``pending_before`` (their
    turn died before taking them), or claimed by a process whose claim has lapsed."""
    return list((await session.scalars(
        select(OutboxEntry.key).where(
            ((OutboxEntry.status == EffectStatus.PENDING)
             & (OutboxEntry.created_at <= pending_before))
            | ((OutboxEntry.status == EffectStatus.RUNNING)
               & (OutboxEntry.claimed_until <= now)))
        .order_by(OutboxEntry.created_at).limit(limit))).all())


async def finish(session: AsyncSession, *, key: str, now: datetime,
                 status: EffectStatus = EffectStatus.DONE) -> None:
    await session.execute(
        update(OutboxEntry).where(OutboxEntry.key == key)
        .values(status=status, claimed_until=None, done_at=now)
        .execution_options(synchronize_session=False))


async def retry_at(session: AsyncSession, *, key: str, at: datetime) -> None:
    """A failed attempt: the claim lapses at ``at``, when the sweep takes it again."""
    await session.execute(
        update(OutboxEntry).where(OutboxEntry.key == key,
                                  OutboxEntry.status == EffectStatus.RUNNING)
        .values(claimed_until=at).execution_options(synchronize_session=False))


async def prune(session: AsyncSession, *, before: datetime) -> int:
    """Forget entries that finished before ``before``; returns how many."""
    result = await session.execute(
        delete(OutboxEntry).where(
            OutboxEntry.status.in_([EffectStatus.DONE, EffectStatus.FAILED]),
            OutboxEntry.done_at < before)
        .execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)
