"""Alembic environment: runs migrations on the async engine given in the config.

On PostgreSQL the whole upgrade runs under a session-level advisory lock
(:data:`store.db.MIGRATION_LOCK`), taken before Alembic looks at ``alembic_version``: replicas
started at once on one database migrate one after the other, and the later ones find the
schema at head and do nothing. The lock goes when the connection does, however the upgrade
ends. SQLite needs none: one process owns the file (the embedded shape).
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from store.db import MIGRATION_LOCK
from store.models import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _main() -> None:
    engine = create_async_engine(context.config.get_main_option("sqlalchemy.url") or "")
    try:
        async with engine.connect() as conn:
            locked = conn.dialect.name == "postgresql"
            if locked:  # waits for any replica migrating now; committed, the lock stays
                await conn.execute(text("SELECT pg_advisory_lock(:key)"),
                                   {"key": MIGRATION_LOCK})
                await conn.commit()
            await conn.run_sync(_run)
            await conn.commit()
            if locked:
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"),
                                   {"key": MIGRATION_LOCK})
                await conn.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=context.config.get_main_option("sqlalchemy.url"),
                      target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_main())
