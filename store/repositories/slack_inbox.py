"""The Slack inbox's rows (:class:`~store.models.SlackInboxEntry`): direct messages
acknowledged and not yet acted on, each held by one replica under a lease.

The owner renews its leases while it works and deletes a row when the work has ended; a
lease that lapses was a replica that died, and any live replica takes the row over with a
conditional update (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so replicas looking at once
take different rows; SQLite's one writer serialises them). Bodies arrive here sealed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select, update

from store.db import Database
from store.models import InboxStatus, SlackInboxEntry


@dataclass(frozen=True)
class NewEntry:
    event_key: str
    sealed_body: str


@dataclass(frozen=True)
class HeldEntry:
    """A row taken over: its number, the key its body is sealed under, the sealed body."""

    seq: int
    event_key: str
    sealed_body: str


async def write(db: Database, *, owner: str, accepted: Sequence[NewEntry],
                finished: Iterable[int], now: datetime, lease_until: datetime) -> list[int]:
    """One short transaction an acknowledgement waits for (:meth:`Database.quick_write`:
    it survives the process being killed, as the per-process journal before it did): delete
    the ``finished`` rows, then add ``accepted`` ones held by ``owner`` until
    ``lease_until``. Returns the new rows' numbers, in order."""
    done = list(finished)
    async with db.quick_write() as session:
        if done:
            await session.execute(delete(SlackInboxEntry).where(SlackInboxEntry.seq.in_(done)))
        if not accepted:
            return []
        result = await session.execute(
            insert(SlackInboxEntry).returning(SlackInboxEntry.seq,
                                              sort_by_parameter_order=True),
            [{"event_key": entry.event_key, "body": entry.sealed_body, "owner": owner,
              "lease_until": lease_until, "status": InboxStatus.ACCEPTED.value,
              "accepted_at": now} for entry in accepted])
        return list(result.scalars().all())


async def renew(db: Database, *, owner: str, lease_until: datetime) -> int:
    """Extend every lease ``owner`` holds; returns how many rows it holds."""
    async with db.transaction() as session:
        result = await session.execute(
            update(SlackInboxEntry).where(SlackInboxEntry.owner == owner)
            .values(lease_until=lease_until))
    return int(getattr(result, "rowcount", 0) or 0)


async def release(db: Database, *, owner: str, now: datetime) -> int:
    """Shutdown with work still in hand: ``owner``'s leases end now, for any live replica
    (or the next start) to take over. Returns how many rows were released."""
    async with db.transaction() as session:
        result = await session.execute(
            update(SlackInboxEntry).where(SlackInboxEntry.owner == owner)
            .values(lease_until=now))
    return int(getattr(result, "rowcount", 0) or 0)


async def take_over(db: Database, *, owner: str, now: datetime, lease_until: datetime,
                    limit: int = 100) -> list[HeldEntry]:
    """Rows whose lease lapsed by ``now``, now held by ``owner`` until ``lease_until``,
    in the order they were accepted (at most ``limit``: call again for more)."""
    lapsed = (select(SlackInboxEntry.seq).where(SlackInboxEntry.lease_until <= now)
              .order_by(SlackInboxEntry.seq).limit(limit)
              .with_for_update(skip_locked=True))
    async with db.transaction() as session:
        rows = (await session.execute(
            update(SlackInboxEntry)
            .where(SlackInboxEntry.seq.in_(lapsed), SlackInboxEntry.lease_until <= now)
            .values(owner=owner, lease_until=lease_until,
                    status=InboxStatus.TAKEN_OVER.value)
            .returning(SlackInboxEntry.seq, SlackInboxEntry.event_key, SlackInboxEntry.body)
            .execution_options(synchronize_session=False))).all()
    return sorted((HeldEntry(seq, key, body) for seq, key, body in rows),
                  key=lambda entry: entry.seq)


async def held(db: Database) -> list[tuple[int, str, str, datetime]]:
    """Every row as (seq, owner, status, lease_until), oldest first: for tests and
    diagnostics (never the bodies)."""
    async with db.read() as session:
        rows = (await session.execute(
            select(SlackInboxEntry.seq, SlackInboxEntry.owner, SlackInboxEntry.status,
                   SlackInboxEntry.lease_until).order_by(SlackInboxEntry.seq))).all()
    return [(seq, owner, status, until) for seq, owner, status, until in rows]
