"""The Slack channel's own bookkeeping in the store: which events were already acted on,
and which Slack messages later notifications about a transfer follow.

Both are insert-once rows, so two replicas (or a retried delivery) racing on the same key
agree on one winner through the primary key (``INSERT … ON CONFLICT DO NOTHING
RETURNING``), on SQLite as on PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from store.db import Database
from store.models import ChannelMessage, ProcessedEvent

KEEP_EVENTS = timedelta(days=2)  # Slack retries for minutes; keep keys well beyond that


class Posted(StrEnum):
    """What a remembered message is: a transfer's first message (later notices about the
    transfer are threaded under it) or an approver's request (updated once decided)."""

    TRANSFER = "transfer"
    APPROVAL = "approval"


@dataclass(frozen=True)
class PostedMessage:
    kind: str  # a Posted
    channel: str
    ts: str


async def claim_many(db: Database, *, keys: Sequence[str], now: datetime) -> set[str]:
    """Record ``keys`` in one transaction; returns those that were new (the others were
    seen before: a retry, or another replica got there first)."""
    insert = sqlite_insert if db.is_sqlite else postgresql_insert
    statement = (insert(ProcessedEvent)
                 .values([{"key": key, "seen_at": now} for key in keys])
                 .on_conflict_do_nothing(index_elements=["key"])
                 .returning(ProcessedEvent.key))
    async with db.transaction() as session:
        return set((await session.execute(statement)).scalars().all())


class EventClaims:
    """Claims of event keys, written together (group commit): a key asked for while a
    write is under way goes into the next one, so a burst of events costs one transaction
    per batch instead of one each. A single event still costs one transaction and waits
    for nothing else."""

    BATCH = 400  # two bound values a key; far under SQLite's limit of 32766

    def __init__(self, db: Database, *, clock: Callable[[], datetime],
                 spawn: Callable[[Coroutine[Any, Any, None]], object]) -> None:
        self.db = db
        self.clock = clock
        self.spawn = spawn
        self._waiting: dict[str, list[asyncio.Future[bool]]] = {}
        self._writing = False

    async def claim(self, key: str) -> bool:
        """True for the first caller with ``key``; False for a repeat."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key[:200], []).append(future)
        if not self._writing:
            self._writing = True
            self.spawn(self._write())
        return await future

    async def _write(self) -> None:
        try:
            while self._waiting:
                keys = list(self._waiting)[: self.BATCH]
                batch = {key: self._waiting.pop(key) for key in keys}
                try:
                    new = await claim_many(self.db, keys=keys, now=self.clock())
                except Exception as exc:  # the database is down: every waiter hears it
                    for futures in batch.values():
                        for future in futures:
                            if not future.done():
                                future.set_exception(exc)
                    continue
                for key, futures in batch.items():
                    for i, future in enumerate(futures):
                        if not future.done():  # the first asker of a new key wins
                            future.set_result(key in new and i == 0)
        finally:
            self._writing = False


async def prune(db: Database, *, now: datetime) -> None:
    """Forget Slack's old event keys (the table is shared: other channels keep theirs)."""
    async with db.transaction() as session:
        await session.execute(delete(ProcessedEvent).where(
            ProcessedEvent.key.startswith("slack:"),
            ProcessedEvent.seen_at < now - KEEP_EVENTS))


async def remember(db: Database, *, reference: str, user_id: str, kind: str, channel: str,
                   ts: str, now: datetime) -> bool:
    """Record the message for (reference, user) unless one is already recorded."""
    try:
        async with db.transaction() as session:
            session.add(ChannelMessage(reference=reference, user_id=user_id, kind=str(kind),
                                       conversation=channel, message_id=ts, created_at=now))
            await session.flush()
    except IntegrityError:
        return False
    return True


async def find(db: Database, *, reference: str, user_id: str) -> PostedMessage | None:
    async with db.read() as session:
        row = await session.get(ChannelMessage, (reference, user_id))
    return PostedMessage(row.kind, row.conversation, row.message_id) if row else None


async def approval_messages(db: Database, *, reference: str
                            ) -> list[tuple[str, PostedMessage]]:
    """Every approver's request message for ``reference``, with the approver's id."""
    async with db.read() as session:
        rows = (await session.scalars(select(ChannelMessage).where(
            ChannelMessage.reference == reference,
            ChannelMessage.kind == Posted.APPROVAL.value))).all()
    return [(r.user_id, PostedMessage(r.kind, r.conversation, r.message_id)) for r in rows]
