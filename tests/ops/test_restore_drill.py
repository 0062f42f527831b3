"""The restore drill of docs/operations.md ("Backups and restore"), performed as an operator
would, with the real tools: transfers made by the `safehaven share` process against a fresh
PostgreSQL database, password sends left pending (an SMS scheduled for a retry, a voice call
booked for later, a portal link not yet downloaded), a backup taken (`safehaven audit
checkpoint`, a copy of the audit anchor, `pg_dump -Fc`, a copy of the object store folder),
the database destroyed, `pg_restore` into a fresh one, `safehaven audit verify` run, then
`safehaven worker` and `safehaven serve` started on the restored database with the live anchor
configured (they find it behind the anchor and check the pending sends with Twilio first):
every pending delivery goes out once (the fake Twilio counts every message and call it ever
accepted, before and after), and no transfer or send is left stranded.

The negative half: a transfer made after the dump, followed by a checkpoint at the live
anchor, is lost with the database; `audit verify` of the restored database against that
live anchor names the records the restore lost (what the anchor is for). The restored trail
then moves to a new anchor seeded with the backup's copy, where it verifies.

PostgreSQL only (skipped, saying so, when ``SAFEHAVEN_TEST_DATABASE_URL`` is unset), and
needs ``pg_dump`` and ``pg_restore`` (postgresql-client, installed by scripts/setup).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import sys
from collections.abc import AsyncIterator
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bot.statuses import SendKind, SendStatus, TransferStatus
from bot.vault import generate_key
from tests.reliability.test_faults import wait_for
from tests.support.core import SHARE_RECORD_FLAGS
from tests.support.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.support.replicas import free_port

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
PG_URL = os.environ.get("SAFEHAVEN_TEST_DATABASE_URL", "")
DEFAULT_POLICY = ROOT / "bot" / "policies" / "default.toml"
SENDER = "console:alice"
# One recipient number per transfer, so the fake Twilio's records say which transfer each
# message or call was for.
SMS_RETRY, VOICE, PORTAL, AFTER_DUMP = ("07911 123451", "07911 123452", "07911 123453",
                                        "07911 123454")
CALL_LEAD = timedelta(minutes=2)  # the voice call is booked this far ahead of the share
PATIENCE = 300.0  # seconds a pending delivery may take to go out once the worker runs


def e164(number: str) -> str:
    return "+44" + number.replace(" ", "")[1:]


async def _admin(sql: str) -> None:
    url = make_url(PG_URL)
    conn = await asyncpg.connect(host=url.host, port=url.port, user=url.username,
                                 password=url.password, database=url.database, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _url(name: str) -> str:
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


def _libpq(url: str) -> str:
    """The database URL as pg_dump and pg_restore take it (no SQLAlchemy driver name)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
async def databases() -> AsyncIterator[tuple[str, str]]:
    """Two names for fresh databases (the original and the restored one), dropped after."""
    if not PG_URL.startswith("postgresql"):
        pytest.skip("PostgreSQL only (pg_dump and pg_restore): "
                    "set SAFEHAVEN_TEST_DATABASE_URL to run")
    missing = [tool for tool in ("pg_dump", "pg_restore") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed (postgresql-client; scripts/setup "
                    "installs it)")
    tag = secrets.token_hex(5)
    names = (f"drill_{tag}", f"drill_restored_{tag}")
    try:
        await _admin(f'CREATE DATABASE "{names[0]}"')
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"PostgreSQL not reachable ({type(exc).__name__})")
    try:
        yield names
    finally:
        for name in names:
            await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def drill_policy(folder: Path) -> Path:
    """The default policy with a call window open all day every day and no lead time (the
    call is booked two minutes ahead), no heads-up SMS before it, and a one-second first
    retry; everything else as shipped."""
    text_ = DEFAULT_POLICY.read_text(encoding="utf-8")
    for pattern, value in [
        (r'^start = "09:00"$', 'start = "00:00"'), (r'^end = "17:00"$', 'end = "23:59"'),
        (r'^days = \["mon", "tue", "wed", "thu", "fri"\]$',
         'days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]'),
        (r"^min_lead_minutes = 10$", "min_lead_minutes = 0"),
        (r"^heads_up_minutes = 30 ", "heads_up_minutes = 0 "),
        (r"^retry_backoff_seconds = 30 ", "retry_backoff_seconds = 1 "),
    ]:
        text_, count = re.subn(pattern, value, text_, flags=re.M)
        assert count == 1, pattern
    path = folder / "policy.toml"
    path.write_text(text_, encoding="utf-8")
    return path


class Site:
    """One deployment's settings and folders; commands run as real `safehaven` processes."""

    def __init__(self, root: Path, twilio: FakeTwilio, database: str) -> None:
        self.root = root
        self.objects = root / "objects"  # SAFEHAVEN_OBJECT_STORE, a file:// folder
        self.anchor = root / "anchor" / "audit-anchor.jsonl"  # apart from the database
        self.logs = root / "process-logs"
        self.logs.mkdir(parents=True)
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("SAFEHAVEN_", "TWILIO_", "SLACK_", "TEAMS_", "AWS_"))}
        self.env.update(
            SAFEHAVEN_VAR_DIR=str(root / "var"), SAFEHAVEN_SECRET_KEY=generate_key(),
            SAFEHAVEN_POLICY=str(drill_policy(root)),
            SAFEHAVEN_OBJECT_STORE=self.objects.as_uri(),
            SAFEHAVEN_AUDIT_ANCHOR=str(self.anchor), SAFEHAVEN_SCHEDULER_INTERVAL="0.2",
            SAFEHAVEN_PORT=str(self.port), SAFEHAVEN_LOG_LEVEL="INFO",
            SAFEHAVEN_PUBLIC_URL="https://safehaven.example.gov.uk",
            TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
            TWILIO_FROM_NUMBER="+441632960001", TWILIO_API_URL=twilio.url)
        self.use(database)
        self.procs: list[asyncio.subprocess.Process] = []

    def use(self, database: str) -> None:
        self.database = _url(database)
        self.env["SAFEHAVEN_DATABASE_URL"] = self.database

    async def run(self, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
        """A `safehaven` command to its end: its exit code and what it printed."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.app.cli", *args, env={**self.env, **(env or {})},
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        output, _ = await asyncio.wait_for(proc.communicate(), 300)
        assert proc.returncode is not None
        return proc.returncode, output.decode(errors="replace")

    async def tool(self, *argv: str) -> None:
        """A PostgreSQL client tool (pg_dump, pg_restore) that must succeed."""
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        output, _ = await asyncio.wait_for(proc.communicate(), 300)
        assert proc.returncode == 0, f"{argv[0]} failed:\n{output.decode(errors='replace')}"

    async def share(self, path: Path, phone: str, *how: str) -> tuple[str, str]:
        """`safehaven share` of one file to a recipient at ``phone``: the reference, and what
        the sender was shown."""
        code, output = await self.run(
            "share", str(path), "--classification", "CONTROLLED", *SHARE_RECORD_FLAGS,
            "--recipient-name", "Priya Shah", "--recipient-title", "Safeguarding Lead",
            "--recipient-org", "Northfield NHS Trust", "--recipient-email", "priya.shah@nhs.net",
            "--recipient-phone", phone, "--purpose", "Strategy meeting about a child at risk",
            "--consent", "Only for the strategy meeting", "--sender", SENDER, *how)
        assert code == 0, output
        found = re.search(r"^reference: (SH-\S+)", output, re.M)
        assert found, output
        return found.group(1), output

    async def start(self, command: str, **env: str) -> asyncio.subprocess.Process:
        """`safehaven serve` or `safehaven worker`, left running (stopped by :meth:`stop`)."""
        with (self.logs / f"{command}.out").open("ab") as out, \
                (self.logs / f"{command}.err").open("ab") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot.app.cli", command, env={**self.env, **env},
                cwd=ROOT, stdout=out, stderr=err)
        self.procs.append(proc)
        return proc

    async def serving(self) -> None:
        """Until this site's ``serve`` answers /readyz."""
        async def ready() -> bool:
            try:
                async with aiohttp.ClientSession() as session, \
                        session.get(f"http://127.0.0.1:{self.port}/readyz") as response:
                    return response.status == 200
            except aiohttp.ClientError:
                return False

        await wait_for(ready, 120, f"serve to be ready:\n{self.errors()[-3000:]}", every=0.2)

    def errors(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.logs.glob("*.err")))

    async def stop(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                proc.terminate()
        for proc in self.procs:
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()

    async def rows(self, sql: str, **params: object) -> list[tuple[Any, ...]]:
        engine = create_async_engine(self.database)
        try:
            async with engine.connect() as conn:
                return [tuple(r) for r in (await conn.execute(text(sql), params)).all()]
        finally:
            await engine.dispose()


def sent_to(twilio: FakeTwilio, phone: str) -> tuple[int, int]:
    """How many messages and calls the fake Twilio ever accepted for ``phone``."""
    to = e164(phone)
    return (sum(1 for m in twilio.messages if m.get("To") == to),
            sum(1 for c in twilio.calls if c.get("To") == to))


async def test_restore_drill(databases: tuple[str, str], tmp_path: Path) -> None:
    original, restored = databases
    twilio = FakeTwilio()
    await twilio.start()
    site = Site(tmp_path / "site", twilio, original)
    note = tmp_path / "chronology.txt"
    note.write_text("Chronology of contact\n" * 200, encoding="utf-8")
    try:
        # --- before: a working deployment with password sends pending -------------------
        code, output = await site.run("migrate")
        assert code == 0, output
        # A voice call booked two minutes ahead (the worker is not running: nothing calls).
        tz = ZoneInfo("Europe/London")  # the policy's time zone
        when = datetime.now(tz) + CALL_LEAD
        if when.time() >= time(23, 59):  # the window ends at 23:59: a minute past midnight
            when += timedelta(minutes=2)
        call_at = when.strftime("%Y-%m-%d %H:%M:%S")
        voice, _ = await site.share(note, VOICE, "--password-via", "voice", "--call-at", call_at)
        # An SMS whose first try Twilio refused (503): scheduled again, a retry due.
        twilio.fail_next(503, 20503, "Service Unavailable")
        retry, _ = await site.share(note, SMS_RETRY, "--password-via", "sms")
        # A portal link live: the password is texted at the first download.
        portal, shown = await site.share(note, PORTAL, "--delivery", "portal",
                                         "--password-via", "sms-on-receipt")
        link = re.search(r"^Secure download link for \S+: \S+(/p/\S+)$", shown, re.M)
        assert link, shown
        links = await site.rows("SELECT count(*) FROM portal_links WHERE reference = :r",
                                r=portal)
        assert links == [(1,)]
        assert twilio.messages == [] and twilio.calls == [], "nothing may have gone yet"
        pending = dict(await site.rows("SELECT reference, status FROM password_sends"))
        assert pending == {voice: SendStatus.DUE, retry: SendStatus.DUE,
                           portal: SendStatus.WAITING}

        # --- the backup, in the runbook's order -------------------------------------------
        backup = tmp_path / "backup"
        backup.mkdir()
        code, output = await site.run("audit", "checkpoint")
        assert code == 0, output
        shutil.copy2(site.anchor, backup / "audit-anchor.jsonl")  # 1. the anchor, first
        dump = backup / "safehaven.dump"  # 2. the database
        await site.tool("pg_dump", "-Fc", "--no-owner", "-f", str(dump), _libpq(site.database))
        shutil.copytree(site.objects, backup / "objects")  # 3. the object store, last

        # --- after the backup: a transfer the restore will lose, and a checkpoint naming it -
        lost, _ = await site.share(note, AFTER_DUMP, "--password-via", "sms-on-receipt")
        lost_seqs = [seq for (seq,) in await site.rows(
            "SELECT seq FROM audit_records WHERE reference = :r", r=lost)]
        code, output = await site.run("audit", "checkpoint")
        assert code == 0, output
        live_anchor = tmp_path / "live-anchor.jsonl"  # kept apart: it outlives the database
        shutil.copy2(site.anchor, live_anchor)

        # --- the disaster: the database and the store's folder are gone -------------------
        await _admin(f'DROP DATABASE "{original}" WITH (FORCE)')
        shutil.rmtree(site.objects)

        # --- the restore ------------------------------------------------------------------
        await _admin(f'CREATE DATABASE "{restored}"')
        site.use(restored)
        await site.tool("pg_restore", "--no-owner", "--exit-on-error", "-d",
                        _libpq(site.database), str(dump))
        shutil.copytree(backup / "objects", site.objects)
        # The anchor copy from the backup, at a new place; the live anchor stays configured.
        restored_anchor = tmp_path / "anchor-restored" / "audit-anchor.jsonl"
        restored_anchor.parent.mkdir()
        shutil.copy2(backup / "audit-anchor.jsonl", restored_anchor)

        # Against the anchor as it was at the backup: intact.
        code, output = await site.run("audit", "verify",
                                      env={"SAFEHAVEN_AUDIT_ANCHOR": str(restored_anchor)})
        assert code == 0 and "audit trail intact" in output, output
        # Against the live anchor, which saw records made after the dump: the records the
        # restore lost are named.
        code, output = await site.run("audit", "verify")
        assert code != 0, output
        [(kept,)] = await site.rows("SELECT max(seq) FROM audit_records")
        newest = max(json.loads(line)["head_seq"] for line in live_anchor.read_text().splitlines())
        assert isinstance(kept, int) and newest > kept
        assert "audit trail BROKEN" in output and f"records {kept + 1} to {newest} were " \
            "deleted from the end (truncated)" in output, output
        # ...which are the records of the transfer made after the dump (it is not restored).
        assert (await site.rows("SELECT count(*) FROM transfers WHERE reference = :r",
                                r=lost)) == [(0,)]
        assert lost_seqs and min(lost_seqs) > kept and max(lost_seqs) <= newest

        # --- the services resume: every pending delivery goes out once ---------------------
        # They find the database behind the live anchor and check the pending sends with
        # Twilio first (the worker first here, so one process does it).
        await site.start("worker")

        async def checked() -> bool:
            return await site.rows("SELECT count(*) FROM audit_records "
                                   "WHERE action = 'restore_checked'") == [(1,)]

        await wait_for(checked, PATIENCE, f"the restore check:\n{site.errors()[-3000:]}",
                       every=0.2)
        await site.start("serve", SAFEHAVEN_SCHEDULER="off")

        await site.serving()
        # The recipient downloads from the portal link the sender was given before the
        # disaster (the database keeps only the token's hash).
        async with aiohttp.ClientSession() as session, \
                session.post(f"http://127.0.0.1:{site.port}{link.group(1)}") as response:
            assert response.status == 200, await response.text()
            assert (await response.read())[:2] == b"PK"

        def all_out() -> bool:
            return (sent_to(twilio, SMS_RETRY) >= (1, 0) and sent_to(twilio, VOICE)[1] >= 1
                    and sent_to(twilio, PORTAL) >= (1, 0))

        await wait_for(all_out, PATIENCE, "every pending delivery to go out "
                       f"(messages {twilio.messages!r:.300}, calls {len(twilio.calls)})",
                       every=0.2)
        # Then once more round the worker's loop (a full tick at least); no checkpoint can
        # be written at the live anchor now: the trail is behind it for good.
        code, output = await site.run("audit", "checkpoint")
        assert code != 0, output
        assert sent_to(twilio, SMS_RETRY) == (1, 0)
        assert sent_to(twilio, VOICE) == (0, 1)
        assert sent_to(twilio, PORTAL) == (1, 0)
        assert sent_to(twilio, AFTER_DUMP) == (0, 0)
        assert twilio.duplicates() == 0

        # No transfer or send stranded.
        transfers = dict(await site.rows("SELECT reference, status FROM transfers"))
        assert transfers == {voice: TransferStatus.READY, retry: TransferStatus.READY,
                             portal: TransferStatus.READY}
        sends = await site.rows("SELECT reference, kind, status FROM password_sends")
        assert sorted(sends) == sorted([(voice, SendKind.VOICE, SendStatus.SENT),
                                        (retry, SendKind.SMS, SendStatus.SENT),
                                        (portal, SendKind.SMS, SendStatus.SENT)]), sends
        # The restored trail moves to a new anchor, seeded with the backup's copy: with
        # what the resumed services added it verifies there, and is checkpointed there.
        site.env["SAFEHAVEN_AUDIT_ANCHOR"] = str(restored_anchor)
        code, output = await site.run("audit", "verify")
        assert code == 0 and "audit trail intact" in output, output
        code, output = await site.run("audit", "checkpoint")
        assert code == 0, output
        # ...while the live anchor still names what the restore lost.
        code, output = await site.run("audit", "verify",
                                      env={"SAFEHAVEN_AUDIT_ANCHOR": str(site.anchor)})
        assert code != 0 and "audit trail BROKEN" in output, output
        assert "Traceback" not in site.errors(), site.errors()[-3000:]
    finally:
        await site.stop()
        await twilio.close()
