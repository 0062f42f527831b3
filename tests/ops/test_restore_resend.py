"""Restoring a dump older than the failure never sends a password twice (docs/operations.md,
"Restoring an older dump"), performed with the real tools: `safehaven share` processes, a
`pg_dump -Fc` taken while password sends are pending, then `safehaven worker` and `serve`
sending them (an SMS retry, an SMS released by a portal download, a voice call), a
checkpoint at the live audit anchor, the database destroyed and the dump restored with
`pg_restore`, and the services started again on it with the same anchor configured. The
restored database holds those sends as due or waiting again; the services find it behind
the anchor, ask the fake Twilio what went, and record them as sent: the fake Twilio, which
counts everything it ever accepted, sees each message and call once. A send that had not
gone (a portal SMS waiting for a download that came only after the restore) still goes, once.

On PostgreSQL (skipped, saying so, when ``SAFEHAVEN_TEST_DATABASE_URL`` is unset; needs
``pg_dump`` and ``pg_restore``), and on SQLite, the embedded shape, where the dump is a copy
of the database file taken while nothing runs and `serve` alone runs the scheduler.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Awaitable, Callable
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from bot.statuses import SendStatus
from tests.ops.test_restore_drill import (
    PATIENCE,
    Site,
    _admin,
    _libpq,
    databases,
    sent_to,
)
from tests.reliability.test_faults import wait_for
from tests.support.fake_twilio import FakeTwilio

__all__ = ["databases"]  # the fixture, shared with the drill

# One recipient number per transfer, so the fake Twilio's records say which was which.
SMS_RETRY, PORTAL_USED, VOICE, PORTAL_LATER = ("07911 223451", "07911 223452",
                                               "07911 223453", "07911 223454")
CALL_LEAD = timedelta(seconds=60)  # the call is booked this far ahead of the share


async def _download(site: Site, path: str) -> None:
    async with aiohttp.ClientSession() as session, \
            session.post(f"http://127.0.0.1:{site.port}{path}") as response:
        assert response.status == 200, await response.text()
        assert (await response.read())[:2] == b"PK"


def _json(value: Any) -> Any:
    """A JSON column read with plain SQL (a string on SQLite)."""
    return json.loads(value) if isinstance(value, str) else value


def _link(shown: str) -> str:
    found = re.search(r"^Secure download link for \S+: \S+(/p/\S+)$", shown, re.M)
    assert found, shown
    return found.group(1)


class SqliteSite(Site):
    """The embedded shape: a SQLite file in the data folder; `serve` runs the scheduler."""

    def use(self, database: str) -> None:
        self.database = f"sqlite+aiosqlite:///{database}"
        self.env["SAFEHAVEN_DATABASE_URL"] = self.database


@pytest.mark.postgres
async def test_sends_made_after_the_dump_are_not_made_again(databases: tuple[str, str],
                                                             tmp_path: Path) -> None:
    original, restored = databases
    twilio = FakeTwilio()
    await twilio.start()
    site = Site(tmp_path / "site", twilio, original)
    dump = tmp_path / "safehaven.dump"

    async def take() -> None:
        await site.tool("pg_dump", "-Fc", "--no-owner", "-f", str(dump), _libpq(site.database))

    async def put_back() -> None:
        await _admin(f'DROP DATABASE "{original}" WITH (FORCE)')
        await _admin(f'CREATE DATABASE "{restored}"')
        site.use(restored)
        await site.tool("pg_restore", "--no-owner", "--exit-on-error", "-d",
                        _libpq(site.database), str(dump))

    async def resume(after_restore: bool) -> None:
        await site.start("worker")
        if after_restore:  # (the worker first, so one process does the check)
            await wait_for(checked(site), PATIENCE,
                           f"the restore check:\n{site.errors()[-3000:]}", every=0.2)
        await site.start("serve", SAFEHAVEN_SCHEDULER="off")
        await site.serving()

    try:
        await scenario(site, twilio, tmp_path, take, put_back, resume)
    finally:
        await site.stop()
        await twilio.close()


async def test_sqlite_file_copied_back(tmp_path: Path) -> None:
    twilio = FakeTwilio()
    await twilio.start()
    db_file = tmp_path / "site" / "var" / "safehaven.db"
    site = SqliteSite(tmp_path / "site", twilio, str(db_file))
    copy = tmp_path / "backup" / "safehaven.db"

    async def take() -> None:  # nothing runs: copy the database file (and any side file)
        copy.parent.mkdir()
        for side in ("", "-wal"):
            if db_file.with_name(db_file.name + side).exists():
                shutil.copy2(db_file.with_name(db_file.name + side),
                             copy.with_name(copy.name + side))

    async def put_back() -> None:  # nothing runs: the copy back in place of the file
        for side in ("", "-wal", "-shm", "-journal"):
            db_file.with_name(db_file.name + side).unlink(missing_ok=True)
            if copy.with_name(copy.name + side).exists():
                shutil.copy2(copy.with_name(copy.name + side),
                             db_file.with_name(db_file.name + side))

    async def resume(after_restore: bool) -> None:
        await site.start("serve")  # the scheduler in the same process
        await site.serving()  # (its start-up check is done before it listens)

    try:
        await scenario(site, twilio, tmp_path, take, put_back, resume)
    finally:
        await site.stop()
        await twilio.close()


def checked(site: Site) -> Callable[[], Awaitable[bool]]:
    async def done() -> bool:
        rows = await site.rows("SELECT count(*) FROM audit_records "
                               "WHERE action = 'restore_checked'")
        held = await site.rows("SELECT count(*) FROM password_sends WHERE status = :s",
                               s=SendStatus.UNCONFIRMED)
        return rows == [(1,)] and held == [(0,)]

    return done


async def scenario(site: Site, twilio: FakeTwilio, tmp_path: Path,
                   take: Callable[[], Awaitable[None]], put_back: Callable[[], Awaitable[None]],
                   resume: Callable[[bool], Awaitable[None]]) -> None:
    """The sends made after the dump ``take`` takes, the restore ``put_back`` makes, the
    services ``resume`` starts (before the restore, and after it)."""
    note = tmp_path / "chronology.txt"
    note.write_text("Chronology of contact\n" * 200, encoding="utf-8")
    code, output = await site.run("migrate")
    assert code == 0, output
    # --- before the dump: four sends pending, nothing gone yet ----------------------
    twilio.fail_next(503, 20503, "Service Unavailable")  # the first try refused
    retry, _ = await site.share(note, SMS_RETRY, "--password-via", "sms")
    used, shown = await site.share(note, PORTAL_USED, "--delivery", "portal",
                                   "--password-via", "sms-on-receipt")
    used_link = _link(shown)
    later, shown = await site.share(note, PORTAL_LATER, "--delivery", "portal",
                                    "--password-via", "sms-on-receipt")
    later_link = _link(shown)
    when = datetime.now(ZoneInfo("Europe/London")) + CALL_LEAD
    if when.time() >= time(23, 59):  # the drill policy's window ends at 23:59
        when += timedelta(minutes=2)
    voice, _ = await site.share(note, VOICE, "--password-via", "voice", "--call-at",
                                when.strftime("%Y-%m-%d %H:%M:%S"))
    assert twilio.messages == [] and twilio.calls == []
    pending = dict(await site.rows("SELECT reference, status FROM password_sends"))
    assert pending == {retry: SendStatus.DUE, used: SendStatus.WAITING,
                       later: SendStatus.WAITING, voice: SendStatus.DUE}

    # --- the backup ---------------------------------------------------------------
    code, output = await site.run("audit", "checkpoint")
    assert code == 0, output
    await take()

    # --- after the dump: the services send three of the four -------------------------
    await resume(False)
    await _download(site, used_link)  # releases its SMS

    def three_out() -> bool:
        return (sent_to(twilio, SMS_RETRY) == (1, 0) and sent_to(twilio, PORTAL_USED)
                == (1, 0) and sent_to(twilio, VOICE) == (0, 1))

    await wait_for(three_out, PATIENCE, "the sends to go out before the disaster "
                   f"(messages {len(twilio.messages)}, calls {len(twilio.calls)})",
                   every=0.2)
    await site.stop()
    site.procs.clear()
    code, output = await site.run("audit", "checkpoint")  # the live anchor sees them
    assert code == 0, output

    # --- the disaster and the restore; the anchor (kept apart) stays as configured ---
    await put_back()
    again = dict(await site.rows("SELECT reference, status FROM password_sends"))
    assert again == pending, "the restored database holds them as pending again"

    # --- the services start on the restored database ---------------------------------
    await resume(True)
    await _download(site, used_link)  # the restored database never saw this download
    await _download(site, later_link)  # its first download: its SMS goes now

    def later_out() -> bool:
        return sent_to(twilio, PORTAL_LATER) >= (1, 0)

    await wait_for(later_out, PATIENCE, "the SMS that never went to go out", every=0.2)
    # Once more round the worker's loop, then count everything Twilio ever accepted.
    code, output = await site.run("audit", "verify")  # (it takes a full tick's time)
    assert sent_to(twilio, SMS_RETRY) == (1, 0)
    assert sent_to(twilio, PORTAL_USED) == (1, 0)
    assert sent_to(twilio, VOICE) == (0, 1)
    assert sent_to(twilio, PORTAL_LATER) == (1, 0)
    assert twilio.duplicates() == 0

    statuses = dict(await site.rows("SELECT reference, status FROM password_sends"))
    assert statuses == {retry: SendStatus.SENT, used: SendStatus.SENT,
                        later: SendStatus.SENT, voice: SendStatus.SENT}, statuses
    [(details,)] = [(_json(d),) for (d,) in await site.rows(
        "SELECT details FROM audit_records WHERE action = 'restore_checked'")]
    assert details["sends"] == 4 and details["checkpoint_head"] > details["trail_head"]
    assert "07911" not in str(details) and "+447911" not in str(details)
    results = sorted((ref, _json(d)["result"]) for ref, d in await site.rows(
        "SELECT reference, details FROM audit_records WHERE action = 'password_checked'")
        if _json(d).get("after_restore"))
    assert results == sorted([(retry, "found"), (used, "found"), (voice, "found"),
                              (later, "not found")]), results
    assert "BEHIND its audit anchor" in site.errors(), site.errors()[-3000:]
    # The trail names the restore against the live anchor until the operator moves on.
    assert code != 0 and "audit trail BROKEN" in output, output

    # A later start against the same anchor does not check again.
    code, output = await site.run("worker", "--exit-when-idle")
    assert code == 0, output
    assert await site.rows("SELECT count(*) FROM audit_records "
                           "WHERE action = 'restore_checked'") == [(1,)]
    assert twilio.duplicates() == 0 and len(twilio.messages) == 3
    assert "Traceback" not in site.errors(), site.errors()[-3000:]
