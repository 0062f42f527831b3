"""The SQLite driver (store/sqlite_driver.py): statements in one trip to aiosqlite's thread
behave as SQLAlchemy's aiosqlite adapter did: rows, row counts, generated keys, errors,
rollbacks, and a modal's urgent writes committed like any other (PostgreSQL too, as a
reference)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from store.db import Database
from store.models import HeldNotice, ProcessedEvent
from store.sqlite_driver import OneHopConnection


async def test_rows_counts_keys_and_errors_come_back_as_before(database_url: str) -> None:
    db = Database(database_url)
    now = datetime.now(UTC)
    try:
        async with db.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            assert isinstance(raw.driver_connection, OneHopConnection) == db.is_sqlite
        async with db.transaction() as session:
            session.add_all([ProcessedEvent(key=f"k{n}", seen_at=now) for n in range(3)])
            notice = HeldNotice(user_id="slack:U1", reference=None, kind="notice", sealed="x",
                                created_at=now)
            session.add(notice)
            await session.flush()
            assert notice.id is not None  # the generated key, read back
            changed = await session.execute(update(ProcessedEvent).values(seen_at=now))
            assert changed.rowcount == 3  # type: ignore[attr-defined]
        with pytest.raises(IntegrityError):  # sqlite3's error, as SQLAlchemy's
            async with db.transaction() as session:
                await session.execute(insert(ProcessedEvent).values(key="k0", seen_at=now))
        with pytest.raises(RuntimeError):  # a failed block leaves nothing behind
            async with db.transaction() as session:
                await session.execute(insert(ProcessedEvent).values(key="k9", seen_at=now))
                raise RuntimeError("the turn fails")
        with db.urgent():  # a modal's turn: ahead of the queue, committed as any other
            async with db.transaction() as session:
                await session.execute(insert(ProcessedEvent).values(key="k4", seen_at=now))
        async with db.read() as session:
            keys = (await session.scalars(select(ProcessedEvent.key)
                                          .order_by(ProcessedEvent.key))).all()
            count = await session.scalar(select(func.count()).select_from(HeldNotice))
        assert keys == ["k0", "k1", "k2", "k4"] and count == 1
    finally:
        await db.close()
