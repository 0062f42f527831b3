"""SQLite's writer lock (one writer at a time, in order, an urgent one ahead of the queue)
and the quick write an acknowledgement waits for."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from store.db import Database, WriterLock
from store.models import ProcessedEvent


async def test_an_urgent_writer_waits_only_for_the_write_under_way() -> None:
    lock, order = WriterLock(), []

    async def write(name: str, *, urgent: bool = False) -> None:
        await lock.acquire(urgent=urgent)
        try:
            order.append(name)
            await asyncio.sleep(0)
        finally:
            lock.release()

    await lock.acquire()  # a write under way
    waiting = [asyncio.create_task(write(f"ordinary {n}")) for n in range(3)]
    await asyncio.sleep(0)
    urgent = asyncio.create_task(write("urgent", urgent=True))
    await asyncio.sleep(0)
    lock.release()
    await asyncio.gather(*waiting, urgent)
    assert order == ["urgent", "ordinary 0", "ordinary 1", "ordinary 2"]


async def test_a_cancelled_waiter_never_keeps_the_lock() -> None:
    lock = WriterLock()
    await lock.acquire()
    gone = asyncio.create_task(lock.acquire())
    handed = asyncio.create_task(lock.acquire())
    after = asyncio.create_task(lock.acquire())
    await asyncio.sleep(0)
    gone.cancel()  # cancelled while waiting: leaves the queue
    await asyncio.sleep(0)
    lock.release()  # to the next waiter, ...
    handed.cancel()  # ... cancelled before it could run: it passes the lock on
    await asyncio.wait_for(after, 1)
    assert gone.cancelled() and handed.cancelled()
    lock.release()
    await asyncio.wait_for(lock.acquire(), 1)  # free again


async def test_a_quick_write_commits_and_leaves_the_connection_as_it_was(
        database_url: str) -> None:
    db = Database(database_url)
    now = datetime.now(UTC)
    try:
        async with db.quick_write() as session:
            session.add(ProcessedEvent(key="quick:1", seen_at=now))
        with pytest.raises(RuntimeError):
            async with db.quick_write() as session:
                session.add(ProcessedEvent(key="quick:2", seen_at=now))
                await session.flush()
                raise RuntimeError("the write fails")
        async with db.read() as session:
            keys = (await session.scalars(select(ProcessedEvent.key).where(
                ProcessedEvent.key.startswith("quick:")))).all()
        assert keys == ["quick:1"]  # committed; the failed one rolled back
        if db.is_sqlite:  # every pooled connection still commits with a full fsync
            async with db.engine.connect() as conn:
                level = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar()
            assert level == 2  # FULL
    finally:
        await db.close()
