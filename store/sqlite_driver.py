"""aiosqlite with one hop to its thread per statement.

SQLAlchemy's aiosqlite adapter makes four trips to aiosqlite's thread for every statement
(open a cursor, execute, fetch the rows, close the cursor), each a queue put, a thread
wake-up and an event loop wake-up. :class:`OneHopConnection` is aiosqlite's connection with
a cursor that does all four in the thread in one trip: the same ``sqlite3`` calls, in the
same order, on the same thread and connection, so transactions, commits and durability are
SQLite's as before; only the hand-offs between threads are fewer. A commit or rollback with
no transaction open (most sessions that only read) makes none.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Generator, Iterable, Sequence
from typing import Any

import aiosqlite
from sqlalchemy.engine import URL


class OneHopCursor:
    """The part of aiosqlite's cursor SQLAlchemy's adapter uses. ``execute`` runs the
    statement, reads every row and closes the ``sqlite3`` cursor in one trip to the
    connection's thread; the rest is answered from what that trip brought back."""

    arraysize = 1

    def __init__(self, connection: OneHopConnection) -> None:
        self._connection = connection
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: list[Any] = []

    def __await__(self) -> Generator[Any, None, OneHopCursor]:
        yield from ()
        return self

    async def __aenter__(self) -> OneHopCursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    def _run(self, call: str, sql: str, parameters: Any) -> None:
        cursor = self._connection._conn.cursor()
        try:
            getattr(cursor, call)(sql, parameters)
            self.description = cursor.description
            self.rowcount = cursor.rowcount
            self.lastrowid = cursor.lastrowid
            self._rows = cursor.fetchall() if cursor.description else []
        finally:
            cursor.close()

    async def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> OneHopCursor:
        await self._connection._execute(  # type: ignore[no-untyped-call]
            self._run, "execute", sql, () if parameters is None else parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Iterable[Any]]
                          ) -> OneHopCursor:
        await self._connection._execute(  # type: ignore[no-untyped-call]
            self._run, "executemany", sql, parameters)
        return self

    async def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        return rows

    async def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    async def fetchmany(self, size: int | None = None) -> Sequence[Any]:
        n = self.arraysize if size is None else size
        rows, self._rows = self._rows[:n], self._rows[n:]
        return rows

    async def close(self) -> None:
        self._rows = []


class OneHopConnection(aiosqlite.Connection):
    """aiosqlite's connection whose cursors are :class:`OneHopCursor`, and whose commit and
    rollback make no trip when no transaction is open (``sqlite3`` would do nothing then;
    a session that only read, in the ``sqlite3`` module's default transaction handling,
    never began one). The flag is read while the connection's thread has nothing of this
    connection's to run: SQLAlchemy issues one operation at a time on a connection."""

    def cursor(self) -> OneHopCursor:  # type: ignore[override]
        return OneHopCursor(self)

    def _idle(self) -> bool:
        return self._connection is not None and not self._connection.in_transaction

    async def commit(self) -> None:
        if not self._idle():
            await super().commit()

    async def rollback(self) -> None:
        if not self._idle():
            await super().rollback()


def one_hop_creator(url: str | URL) -> Any:
    """For ``create_async_engine(url, async_creator=...)``: opens the SQLite database of
    ``url`` with the arguments SQLAlchemy's aiosqlite dialect would give ``sqlite3.connect``.
    """
    from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
    from sqlalchemy.engine import make_url

    dialect = SQLiteDialect_aiosqlite(dbapi=SQLiteDialect_aiosqlite.import_dbapi())
    args, kwargs = dialect.create_connect_args(make_url(url))

    def connector() -> sqlite3.Connection:
        return sqlite3.connect(*args, **kwargs)  # type: ignore[call-overload,no-any-return]

    def creator() -> OneHopConnection:
        connection = OneHopConnection(connector, 64)
        connection._thread.daemon = True   # as SQLAlchemy's dialect does for aiosqlite's
        return connection

    return creator
