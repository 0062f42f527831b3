"""Shared fixtures: a migrated database (SQLite always, PostgreSQL when
SAFEHAVEN_TEST_DATABASE_URL is set), a controllable clock, recording ports, sample files and
conversations (the helpers themselves are in :mod:`tests.support.core`)."""

from __future__ import annotations

import asyncio
import io
import os
import secrets
import shutil
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
from store.db import Database, migrate, prepare_sqlite_file
from store.objects import LocalObjectStore
from tests.reliability import secret_scan
from tests.reliability.strategies import FIGURES, TRIED
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


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file migrated once per process: each test's database starts as a copy of
    it, byte for byte what migrating an empty file gives, without running Alembic again."""
    path = tmp_path_factory.mktemp("sqlite-template") / "safehaven.db"
    migrate(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "var" / "safehaven.db"
        url = f"sqlite+aiosqlite:///{path}"
        prepare_sqlite_file(url)  # var/ 0700 and the file 0600, as migrate() leaves them
        template: Path = request.getfixturevalue("sqlite_template")
        with template.open("rb") as source, path.open("wb") as copy:
            shutil.copyfileobj(source, copy)
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


# --- parallel runs (scripts/test: pytest-xdist workers, ``--dist loadfile``) ----------------
# Each test file runs in one worker, so a module-scoped fixture is set up once. The files in
# HEAVY, each starting several processes or servers (replicas and a worker, a Slack app it
# kills, Chromium, Azurite and moto), are one unit of work: they run one after another in one
# worker, never beside each other. (``--dist loadgroup`` and ``xdist_group`` marks would say
# this too, but pytest-xdist 3.8 drops the groups under pytest 9.2: they ride on node ids.)
# A test marked ``alone`` restarts something every test shares (the PostgreSQL server), so
# no other test may run beside it at all: scripts/test runs the others in parallel with
# ``--alone-tests=defer``, then these in one process with ``--alone-tests=only``.
HEAVY = frozenset({
    "tests/scale/test_replicas.py",
    "tests/reliability/test_kill_slack.py",
    "tests/channels/portal/test_browser.py",
    "tests/store/test_object_store.py",
})


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByFileHeavyTogether(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "heavy" if path in HEAVY else path

    return ByFileHeavyTogether(config, log)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--alone-tests", choices=("run", "defer", "only"), default="run",
                     help="tests marked alone: run them with the others (the default), "
                          "leave them out (defer, for a parallel run), or run only them")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mode = config.getoption("--alone-tests")
    if mode == "run":
        return
    wanted = mode == "only"
    kept = [item for item in items if (item.get_closest_marker("alone") is not None) == wanted]
    if len(kept) < len(items):
        ids = {id(item) for item in kept}
        config.hook.pytest_deselected(items=[item for item in items if id(item) not in ids])
        items[:] = kept


# --- secrets: after the suite, no generated password may be found anywhere it was written
# but the console transport's outbox.log (tests/reliability/secret_scan.py) -----------------


@pytest.fixture(scope="session", autouse=True)
def _capture_passwords(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    secret_scan.start(tmp_path_factory.getbasetemp())
    yield
    secret_scan.stop()


# With pytest-xdist (scripts/test runs two workers) each worker scans what it saw and puts its
# findings in ``workeroutput``; the controller, which runs no tests, adds them up in
# ``pytest_testnodedown``, prints them and fails the run (a worker's own exit status is lost).
_ROLE = {"controller": False}  # set at session start; the report hook has no config


def pytest_sessionstart(session: pytest.Session) -> None:
    _ROLE["controller"] = session.config.pluginmanager.has_plugin("dsession")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not _ROLE["controller"]:  # a worker's reports are scanned by the worker
        secret_scan.scan_report(report)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    output = getattr(node, "workeroutput", {})
    worker = getattr(node, "workerinput", {}).get("workerid", "?")
    if "secret_scan" in output:
        secret_scan.merge(output["secret_scan"])
    else:
        secret_scan.SCAN.unreported.append(worker)
    for name, count in output.get("tried", {}).items():
        TRIED[name] += int(count)
    for name, value in output.get("figures", {}).items():
        mine = FIGURES.get(name, "")  # a count (digits) is summed; a description replaced
        FIGURES[name] = str(int(mine) + int(value)) if mine.isdigit() and value.isdigit() else value


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if secret_scan.SCAN.base is not None:
        secret_scan.scan_tree(secret_scan.SCAN.base)
    if hasattr(session.config, "workeroutput"):  # an xdist worker: the controller decides
        session.config.workeroutput.update(secret_scan=secret_scan.export(),
                                           tried=dict(TRIED), figures=dict(FIGURES))
    if secret_scan.failed():
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    scan = secret_scan.SCAN
    if scan.base is None and not scan.workers and not scan.unreported:
        return
    lines = secret_scan.summary()
    terminalreporter.write_sep("=" if secret_scan.failed() else "-", lines[0],
                               red=secret_scan.failed(), bold=True)
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
