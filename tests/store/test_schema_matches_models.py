"""Every table is known to Alembic: the migrated schema and the models Alembic's env imports
(``store.models``) describe the same tables, columns and indexes, so an autogenerate offers
nothing to add or drop. (Teams' tables once lived only in ``channels/teams``, which the env
does not import, and an autogenerate offered to drop them.)"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

import store.models


def _differences(url: str) -> list[Any]:
    async def compare() -> list[Any]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(lambda sync: list(compare_metadata(
                    MigrationContext.configure(sync), store.models.Base.metadata)))
        finally:
            await engine.dispose()
    return asyncio.run(compare())


def test_migrated_schema_is_what_the_models_say(database_url: str) -> None:
    differences = _differences(database_url)
    assert differences == [], differences


def test_a_table_missing_from_the_models_is_reported(database_url: str) -> None:
    """The comparison is not vacuous: a table only the database has is a difference."""
    async def add_table() -> None:
        engine = create_async_engine(database_url)
        async with engine.begin() as conn:
            await conn.exec_driver_sql("CREATE TABLE stray_table (id INTEGER PRIMARY KEY)")
        await engine.dispose()
    asyncio.run(add_table())
    kinds = [d[0] for d in _differences(database_url) if isinstance(d, tuple)]
    assert "remove_table" in kinds

