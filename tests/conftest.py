"""Shared fixtures: a migrated database (SQLite always, PostgreSQL when
SAFEHAVEN_TEST_DATABASE_URL is set), a controllable clock, recording ports, and a
conversation helper that makes multi-turn scenarios read like conversations."""

from __future__ import annotations

import asyncio
import io
import os
import secrets
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from bot.events import Answer, Event, FilesReceived
from bot.policy import Policy, load_policy
from bot.replies import Ask, Choice, Form, Reply
from bot.settings import Settings, load_settings
from bot.vault import Vault, _decode_key, generate_key
from channels.console.transport import ConsoleTransport
from handlers.conversation import Turn, parse_text, take_turn
from handlers.intake import stage_local_file
from handlers.services import Services
from store.db import Database, migrate
from tests.reliability import secret_scan

PG_URL = os.environ.get("SAFEHAVEN_TEST_DATABASE_URL")
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]

# A Monday morning in November, inside the default call window.
START = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@dataclass
class RecordingNotifier:
    sent: list[tuple[str, list[Reply]]] = field(default_factory=list)

    async def notify(self, user_id: str, replies: Sequence[Reply], *,
                     reference: str | None = None) -> None:
        self.sent.append((user_id, list(replies)))

    def for_user(self, user_id: str) -> list[Reply]:
        return [r for u, rs in self.sent if u == user_id for r in rs]


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
        clock=clock,
    )
    yield svc
    await svc.db.close()
    await svc.inspector.close()


# --- sample files --------------------------------------------------------------------------

PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]"
       b"/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")


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


# --- conversation helper -------------------------------------------------------------------


class Conversation:
    """Drive one user's conversation: ``await chat.send_files(...)``, ``await chat.say(...)``."""

    def __init__(self, svc: Services, user_id: str) -> None:
        self.svc = svc
        self.user_id = user_id
        self.last: Turn | None = None

    @property
    def pending(self) -> Choice | Ask | Form | None:
        if self.last is None:
            return None
        for reply in reversed(self.last.replies):
            if isinstance(reply, Choice | Ask | Form):
                return reply
        return None

    @property
    def question(self) -> str | None:
        pending = self.pending
        return pending.question if pending else None

    @property
    def text(self) -> str:
        from channels.console.render import render

        return "\n".join(render(r) for r in (self.last.replies if self.last else []))

    async def event(self, event: Event) -> Turn:
        self.last = await take_turn(self.svc, conversation_id=self.user_id,
                                    user_id=self.user_id, event=event)
        return self.last

    async def send_files(self, *paths: Path) -> Turn:
        staged = [stage_local_file(self.svc.settings, p) for p in paths]
        return await self.event(FilesReceived(tuple(staged)))

    async def say(self, value: str | dict[str, str]) -> Turn:
        if isinstance(value, str):
            return await self.event(parse_text(value, question=self.question))
        return await self.event(Answer(value, self.question))


RECIPIENT = {
    "name": "Priya Shah", "job_title": "Safeguarding Lead", "organisation": "Northfield NHS Trust",
    "email": "priya.shah@nhs.net", "phone": "07911 123456",
}
CONSENT = {"use_limits": "Only for the strategy meeting on Friday", "onward_sharing": "no",
           "delete_after_use": "yes"}
PURPOSE = "Strategy meeting about a child at risk, as agreed with the family"


async def answer_all(chat: Conversation, *, classification: str = "CONTROLLED",
                     recipient: dict[str, str] | None = None, password: str = "sms",
                     delivery: str = "archive", call_at: str | None = None) -> Turn:
    """Answer every question after intake with valid answers; stops at the summary."""
    await chat.say(classification)
    if chat.question == "recipient_pick":
        await chat.say("new")
    await chat.say(recipient or RECIPIENT)
    await chat.say(PURPOSE)
    await chat.say("1")
    await chat.say(CONSENT)
    await chat.say(delivery)
    turn = await chat.say(password)
    if password == "voice":
        turn = await chat.say(call_at or "2026-11-24 10:00")
    assert chat.question == "confirm", chat.text
    return turn


@pytest.fixture
def conversation(services: Services) -> Any:
    def make(user_id: str = "console:alice") -> Conversation:
        return Conversation(services, user_id)

    return make
