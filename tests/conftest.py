"""Shared fixtures: a migrated database (SQLite always, PostgreSQL when
SAFEHAVEN_TEST_DATABASE_URL is set), a controllable clock, recording ports, sample files and
conversations (the helpers themselves are in :mod:`tests.support.core`)."""

from __future__ import annotations

import asyncio
import io
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from bot.policy import load_policy
from bot.policy_rules import Policy
from bot.settings import Settings, load_settings
from bot.vault import Vault, _decode_key, generate_key
from channels.console.transport import ConsoleTransport
from handlers.services import Services
from store.db import Database, migrate
from store.objects import LocalObjectStore
from tests.reliability import secret_scan
from tests.support.core import PDF, Clock, Conversation, RecordingNotifier

PG_URL = os.environ.get("SAFEHAVEN_TEST_DATABASE_URL")
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _pg_admin_url() -> str:
    assert PG_URL
    return PG_URL


async def _pg_exec(sql: str) -> None:
    import asyncpg

    url = make_url(_pg_admin_url())
    conn = await asyncpg.connect(host=url.host, port=url.port, user=url.username,
                                 password=url.password, database=url.database)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


_PG_TEMPLATE = f"sh_tpl_{os.getpid()}"


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    if not PG_URL:
        pytest.skip("PostgreSQL-specific: set SAFEHAVEN_TEST_DATABASE_URL to run")
    asyncio.run(_pg_exec(f'DROP DATABASE IF EXISTS "{_PG_TEMPLATE}"'))
    asyncio.run(_pg_exec(f'CREATE DATABASE "{_PG_TEMPLATE}"'))
    url = make_url(PG_URL).set(database=_PG_TEMPLATE).render_as_string(hide_password=False)
    migrate(url)
    yield _PG_TEMPLATE
    asyncio.run(_pg_exec(f'DROP DATABASE IF EXISTS "{_PG_TEMPLATE}" WITH (FORCE)'))


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'var' / 'safehaven.db'}"
        migrate(url)
        yield url
        return
    template = request.getfixturevalue("pg_template")
    name = f"sh_t_{secrets.token_hex(6)}"
    asyncio.run(_pg_exec(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    try:
        asyncio.run(secret_scan.scan_postgres(url))  # before the database is dropped
    finally:
        asyncio.run(_pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# --- secrets: after the suite, no generated password may be found anywhere it was written
# but the console transport's outbox.log (tests/reliability/secret_scan.py) -----------------


@pytest.fixture(scope="session", autouse=True)
def _capture_passwords(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    secret_scan.start(tmp_path_factory.getbasetemp())
    yield
    secret_scan.stop()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    secret_scan.scan_report(report)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if secret_scan.SCAN.base is not None and secret_scan.scan_tree(secret_scan.SCAN.base):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if secret_scan.SCAN.leaks:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if secret_scan.SCAN.base is None:
        return
    lines = secret_scan.summary()
    terminalreporter.write_sep("=" if secret_scan.SCAN.leaks else "-", lines[0],
                               red=bool(secret_scan.SCAN.leaks), bold=True)
    for line in lines[1:]:
        terminalreporter.write_line(line, red=True)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return load_settings({
        "SAFEHAVEN_VAR_DIR": str(tmp_path / "var"),
        "SAFEHAVEN_DATABASE_URL": database_url,
        "SAFEHAVEN_SECRET_KEY": generate_key(),
    })


@pytest.fixture
def policy() -> Policy:
    return load_policy()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def services(settings: Settings, policy: Policy, clock: Clock
                   ) -> AsyncIterator[Services]:
    assert settings.secret_key
    svc = Services(
        settings=settings, policy=policy, db=Database(settings.database_url),
        vault=Vault(_decode_key(settings.secret_key)), notifier=RecordingNotifier(),
        transport=ConsoleTransport(outbox=settings.outbox_path, production=False,
                                   stream=io.StringIO()),
        objects=LocalObjectStore(settings.var_dir.resolve() / "objects"), clock=clock,
    )
    yield svc
    await svc.db.close()
    await svc.inspector.close()


# --- sample files --------------------------------------------------------------------------


@pytest.fixture
def make_file(tmp_path: Path) -> Any:
    folder = tmp_path / "outbox-files"
    folder.mkdir()

    def make(name: str, content: bytes | None = None, size: int | None = None) -> Path:
        path = folder / name
        if content is None:
            content = PDF if name.endswith(".pdf") else (b"case note line\n" * 40)
        if size is not None:
            content = (content * (size // max(1, len(content)) + 1))[:size]
        path.write_bytes(content)
        return path

    return make


# --- conversations -------------------------------------------------------------------------


@pytest.fixture
def conversation(services: Services) -> Any:
    def make(user_id: str = "console:alice") -> Conversation:
        return Conversation(services, user_id)

    return make
