"""The end-of-suite secret scan is not vacuous: it recognises every generated password,
finds one planted in a file, a log line or a PostgreSQL row, and allows only outbox.log."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bot.passwords import generate_password
from handlers import transfers
from store.models import Transfer
from tests.reliability import secret_scan


def test_the_shape_matches_every_generated_password() -> None:
    for _ in range(2000):
        password = generate_password()
        assert secret_scan.SHAPE.fullmatch(password), "update secret_scan.SHAPE"


def test_generated_passwords_are_captured() -> None:
    password = transfers.generate_password()  # the handlers' own reference to it
    assert password in secret_scan.SCAN.generated


def test_a_planted_password_is_found_and_outbox_is_allowed(tmp_path: Path) -> None:
    password = generate_password()
    root = tmp_path / "planted"
    (root / "var" / "logs").mkdir(parents=True)
    (root / "var" / "outbox.log").write_text(f"SMS: the password is {password} .\n")
    (root / "var" / "logs" / "app.log").write_text("nothing here\n")
    (root / "var" / "db.sqlite").write_bytes(b"\x00" * (secret_scan.CHUNK - 10)
                                             + password.encode() + b"\x00" * 10)
    saved = (list(secret_scan.SCAN.leaks), secret_scan.SCAN.files, secret_scan.SCAN.bytes)
    try:
        leaks = secret_scan.scan_tree(root)
        assert [(Path(leak.where).name, leak.password, leak.known) for leak in leaks] == [
            ("db.sqlite", password, True)]  # found across a chunk boundary; outbox allowed
        assert password in secret_scan.SCAN.from_outboxes
    finally:
        secret_scan.SCAN.leaks[:], secret_scan.SCAN.files, secret_scan.SCAN.bytes = saved
        for path in sorted(root.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()


def test_a_password_in_captured_output_is_found() -> None:
    password = generate_password()
    report: Any = type("Report", (), {"nodeid": "t::x", "sections": [
        ("Captured log call", f"INFO handlers: sent {password}")], "longrepr": None})()
    saved = list(secret_scan.SCAN.leaks)
    try:
        secret_scan.scan_report(report)
        assert [leak.password for leak in secret_scan.SCAN.leaks[len(saved):]] == [password]
    finally:
        secret_scan.SCAN.leaks[:] = saved


@pytest.mark.postgres
async def test_a_password_in_a_postgresql_row_is_found(database_url: str, services: Any) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL rows")
    password = generate_password()
    now = services.clock()
    async with services.db.transaction() as s:
        s.add(Transfer(reference="SH-LEAK-22", sender_id="console:alice", status="ready",
                       purpose=f"oops {password}", file_count=0, total_bytes=0,
                       created_at=now, updated_at=now))
    saved = list(secret_scan.SCAN.leaks)
    try:
        await secret_scan.scan_postgres(database_url)
        assert [leak.password for leak in secret_scan.SCAN.leaks[len(saved):]] == [password]
    finally:
        secret_scan.SCAN.leaks[:] = saved
        async with services.db.transaction() as s:
            row = await s.get(Transfer, "SH-LEAK-22")
            await s.delete(row)
    await asyncio.sleep(0)
