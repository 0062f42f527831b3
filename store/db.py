"""Database engine, sessions and migrations.

``Database.transaction()`` is the one way to write: it yields a session inside a
transaction that commits on success. On SQLite (the embedded, single-process shape) writes
are serialised with a lock, because SQLite allows one writer and a deferred transaction
that reads before it writes would otherwise fail under concurrency; on PostgreSQL,
transactions run concurrently and rely on row-level checks (version columns, conditional
updates, advisory locks) for correctness.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

# The PostgreSQL advisory lock key the schema upgrade runs under (store/migrations/env.py):
# fixed, so every replica of every version agrees on it ("SafeHavn" in ASCII).
MIGRATION_LOCK = 0x536166654861766E

# The files SQLite keeps beside a database; it creates them with the database file's mode.
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def prepare_sqlite_file(url: str) -> None:
    """For an SQLite database in a file: its folder exists (created 0700), and the file
    exists and is 0600 before SQLite opens it, so SQLite (which gives its -wal and -shm
    files the database file's mode) never creates anything readable by others. Existing
    files from a looser past are tightened. Other databases: nothing to do."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database \
            or parsed.database == ":memory:" or parsed.database.startswith("file:"):
        return
    path = Path(parsed.database)
    missing = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    for suffix in SQLITE_SIDE_FILES:
        side = Path(f"{path}{suffix}")
        if side.exists():
            os.chmod(side, 0o600)


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    cursor = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class Database:
    """The engine plus a session factory; open it once per process, close it on shutdown."""

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        prepare_sqlite_file(url)
        # hide_parameters: a failed statement's log line must not carry bound values
        # (recipients' phone numbers, sealed passwords).
        self.engine: AsyncEngine = create_async_engine(
            url, pool_pre_ping=not self.is_sqlite, hide_parameters=True)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction; commits when the block ends without an exception."""
        if self.is_sqlite:
            async with self._write_lock, self.sessions() as session, session.begin():
                yield session
        else:
            async with self.sessions() as session, session.begin():
                yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:  # any driver error means "not reachable"
            return False

    async def close(self) -> None:
        await self.engine.dispose()


def alembic_config(url: str) -> Config:
    location = resources.files("store").joinpath("migrations")
    cfg = Config()
    cfg.set_main_option("script_location", str(location))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (blocking; runs its own event loop in env.py).
    On PostgreSQL under an advisory lock, so replicas starting at once take turns."""
    prepare_sqlite_file(url)
    command.upgrade(alembic_config(url), revision)


async def migrate_async(url: str) -> None:
    await asyncio.to_thread(migrate, url)
