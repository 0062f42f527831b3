"""Three `safehaven serve` replicas started at once on an empty PostgreSQL database: the
migrations run under an advisory lock (:func:`store.db.migrate`), so one replica builds the
schema while the others wait, and all three come up on the schema at head."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, make_url

from bot.vault import generate_key
from store.db import alembic_config
from tests.reliability.test_faults import output, safehaven, wait_for

pytestmark = pytest.mark.postgres
PG_URL = os.environ.get("SAFEHAVEN_TEST_DATABASE_URL", "")
REPLICAS = 3


async def _admin(url: URL, sql: str) -> None:
    conn = await asyncpg.connect(host=url.host, port=url.port, user=url.username,
                                 password=url.password, database=url.database, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
async def empty_database() -> AsyncIterator[str]:
    """A fresh database with no schema at all, dropped afterwards."""
    if not PG_URL.startswith("postgresql"):
        pytest.skip("PostgreSQL-specific: set SAFEHAVEN_TEST_DATABASE_URL to run")
    admin = make_url(PG_URL)
    name = f"sh_race_{secrets.token_hex(6)}"
    try:
        await _admin(admin, f'CREATE DATABASE "{name}"')
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"PostgreSQL at {admin.host}:{admin.port} not reachable "
                    f"({type(exc).__name__})")
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        await _admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _ready(port: int, proc: asyncio.subprocess.Process) -> bool:
    try:
        async with aiohttp.ClientSession() as session, \
                session.get(f"http://127.0.0.1:{port}/readyz") as response:
            return response.status == 200
    except aiohttp.ClientError:
        assert proc.returncode is None, output(proc, ".err")[-3000:]
        return False


async def test_three_replicas_start_at_once_on_an_empty_database(
        empty_database: str, tmp_path: Path) -> None:
    key = generate_key()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SAFEHAVEN_", "TWILIO_",
                                                                      "SLACK_", "TEAMS_"))}
    ports = [_free_port() for _ in range(REPLICAS)]
    envs = [{**base, "SAFEHAVEN_VAR_DIR": str(tmp_path / f"replica-{n}" / "var"),
             "SAFEHAVEN_DATABASE_URL": empty_database, "SAFEHAVEN_SECRET_KEY": key,
             "SAFEHAVEN_PORT": str(port), "SAFEHAVEN_SCHEDULER": "off",
             "SAFEHAVEN_LOG_LEVEL": "INFO"} for n, port in enumerate(ports)]
    procs = list(await asyncio.gather(*(safehaven(env, "serve") for env in envs)))
    try:
        for port, proc in zip(ports, procs, strict=True):
            async def ready(port: int = port, proc: asyncio.subprocess.Process = proc) -> bool:
                return await _ready(port, proc)

            await wait_for(ready, 60, f"replica on port {port} to be ready", every=0.1)
        assert all(proc.returncode is None for proc in procs)
        head = ScriptDirectory.from_config(alembic_config(empty_database)).get_current_head()
        url = make_url(empty_database)
        conn = await asyncpg.connect(host=url.host, port=url.port, user=url.username,
                                     password=url.password, database=url.database)
        try:
            versions = [row[0] for row in await conn.fetch(
                "SELECT version_num FROM alembic_version")]
        finally:
            await conn.close()
        assert versions == [head]
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.terminate()
        await asyncio.gather(*(proc.wait() for proc in procs))
    for proc in procs:
        err = output(proc, ".err")
        assert "Traceback" not in err and "pg_type_typname_nsp_index" not in err, err[-3000:]
