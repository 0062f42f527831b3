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
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bot.settings import SettingsError
from store.sqlite_driver import one_hop_creator

# The PostgreSQL advisory lock key the schema upgrade runs under (store/migrations/env.py):
# fixed, so every replica of every version agrees on it ("SafeHavn" in ASCII).
MIGRATION_LOCK = 0x536166654861766E

# Set (see Database.urgent) where an acknowledgement waits for the writes.
_URGENT: ContextVar[bool] = ContextVar("safehaven_urgent_writes", default=False)

# The files SQLite keeps beside a database; it creates them with the database file's mode.
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def prepare_sqlite_file(url: str) -> None:
    """For an SQLite database in a file: its folder exists (created 0700), and the file
    exists and is 0600 before SQLite opens it, so SQLite (which gives its -wal and -shm
    files the database file's mode) never creates anything readable by others. Existing
    files from a looser past are tightened. Other databases: nothing to do."""
    parsed = database_url(url)
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


def _sqlite_no_fsync(dbapi_conn: object, _record: object) -> None:
    """A quick-write connection (:meth:`Database.quick_write`) commits without an fsync."""
    cursor = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class WriterLock:
    """SQLite's one writer at a time, in arrival order, except that an urgent writer (one an
    acknowledgement waits for, see channels/slack/inbox.py) goes before every ordinary one
    still waiting: it waits for the transaction under way, not for the queue behind it."""

    def __init__(self) -> None:
        self._held = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._ordinary: deque[asyncio.Future[None]] = deque()

    async def acquire(self, *, urgent: bool = False) -> None:
        if not self._held:
            self._held = True
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._urgent if urgent else self._ordinary
        queue.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release()  # handed the lock as it was cancelled: pass it on
            elif turn in queue:
                queue.remove(turn)
            raise

    def release(self) -> None:
        for queue in (self._urgent, self._ordinary):
            while queue:
                turn = queue.popleft()
                if not turn.done():
                    turn.set_result(None)  # still held: handed over
                    return
        self._held = False


INVALID_DATABASE_URL = (
    "SAFEHAVEN_DATABASE_URL is not a valid database URL (its text is not shown: it may hold "
    "the password). It must look like postgresql+asyncpg://USER:PASSWORD@HOST:5432/DATABASE "
    "or sqlite+aiosqlite:////path/safehaven.db, with a port in digits.")


def database_url(url: str) -> URL:
    """``url`` parsed; :class:`SettingsError` (without the text) when it cannot be."""
    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        raise SettingsError(INVALID_DATABASE_URL) from None


class Database:
    """The engine plus a session factory; open it once per process, close it on shutdown."""

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = database_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        prepare_sqlite_file(url)
        # hide_parameters: a failed statement's log line must not carry bound values
        # (recipients' phone numbers, sealed passwords). SQLite: one trip to aiosqlite's
        # thread per statement (store/sqlite_driver.py).
        driver = {"async_creator": one_hop_creator(url)} if self.is_sqlite else {}
        self.engine: AsyncEngine = create_async_engine(
            url, pool_pre_ping=not self.is_sqlite, hide_parameters=True, **driver)
        # Quick writes (see quick_write) have a connection of their own, so an
        # acknowledgement never waits for the pool that the work after it keeps busy.
        # (An in-memory SQLite database exists once per connection pool: it has no other.)
        in_memory = self.is_sqlite and (parsed.database in (None, "", ":memory:")
                                        or "mode=memory" in url)
        self.quick_engine: AsyncEngine = self.engine if in_memory else create_async_engine(
            url, pool_pre_ping=not self.is_sqlite, hide_parameters=True, pool_size=1,
            max_overflow=1, **driver)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            if self.quick_engine is not self.engine:  # quick writes alone use it
                event.listen(self.quick_engine.sync_engine, "connect", _sqlite_pragmas)
                event.listen(self.quick_engine.sync_engine, "connect", _sqlite_no_fsync)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._quick_sessions = async_sessionmaker(self.quick_engine, expire_on_commit=False)
        self._writer = WriterLock()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction; commits when the block ends without an exception."""
        if self.is_sqlite:
            await self._writer.acquire(urgent=_URGENT.get())
            try:
                async with self.sessions() as session, session.begin():
                    yield session
            finally:
                self._writer.release()
        else:
            async with self.sessions() as session, session.begin():
                yield session

    @staticmethod
    @contextmanager
    def urgent() -> Iterator[None]:
        """Transactions begun in this block, or in tasks created in it, are ones an
        acknowledgement waits for (a modal's submission is acknowledged once its turn is
        saved): on SQLite they go ahead of the ordinary writes waiting, as quick writes do;
        each is committed as any other (with its fsync). No effect on PostgreSQL."""
        token = _URGENT.set(True)
        try:
            yield
        finally:
            _URGENT.reset(token)

    @asynccontextmanager
    async def quick_write(self) -> AsyncIterator[AsyncSession]:
        """A short write an acknowledgement waits for (channels/slack/inbox.py): ahead of
        the other writes waiting, and committed without waiting for the disk, so it
        survives the process being killed but not the machine losing power (the database
        is never corrupted either way). SQLite: ``synchronous=NORMAL`` on the quick
        engine's own connections, which nothing else uses (a WAL commit then costs no
        fsync; for an in-memory database, on the shared connection for this commit alone);
        PostgreSQL: ``synchronous_commit`` off for this transaction alone."""
        if not self.is_sqlite:
            async with self._quick_sessions() as session, session.begin():
                await session.execute(text("SET LOCAL synchronous_commit TO OFF"))
                yield session
            return
        await self._writer.acquire(urgent=True)
        try:
            if self.quick_engine is not self.engine:  # its connections commit so already
                async with self._quick_sessions() as session, session.begin():
                    yield session
                return
            async with self.quick_engine.connect() as conn:
                # Outside a transaction: SQLite refuses to change it inside one.
                level = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar()
                await conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
                await conn.commit()
                try:
                    async with AsyncSession(bind=conn, expire_on_commit=False) as session, \
                            session.begin():
                        yield session
                finally:
                    await conn.rollback()  # (nothing left open: the block committed or not)
                    await conn.exec_driver_sql(f"PRAGMA synchronous={int(level or 2)}")
                    await conn.commit()
        finally:
            self._writer.release()

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
        if self.quick_engine is not self.engine:
            await self.quick_engine.dispose()


async def roll_back(session: AsyncSession) -> None:
    """Undo everything this unit of work (a :meth:`Database.transaction`) wrote so far;
    the block then commits nothing. For a handler that finds, part-way, that it lost a
    race (handlers never call the session themselves)."""
    await session.rollback()


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
