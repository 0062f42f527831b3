"""The transactional outbox, with real processes: `safehaven share` and `safehaven approve`
killed (SIGKILL) right after the commit that calls for packaging and before packaging
starts, then `safehaven worker`: the archive is built once, the SMS sent once, the sender
told, the audit trail intact. And two workers sweeping at once run each entry once.

The kill is injected without a hook in the product: the process is `bot.app.cli.main` run
through ``python -c`` with :func:`handlers.outbox.run` wrapped to SIGKILL the process when it
is about to run the entry named (the turn's commit is done by then, its effects not begun).
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import signal
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from bot.settings import Settings
from handlers import outbox
from handlers.services import Services
from store.db import Database
from store.models import AuditRecord, EffectKind, EffectStatus, OutboxEntry, Transfer
from tests.reliability.conftest import twilio_env
from tests.reliability.test_faults import (
    ROOT,
    SHARE,
    archives,
    audit_actions,
    env_for,
    output,
    run_to_end,
    sealed_uploads,
)
from tests.support.core import Clock, Conversation, RecordingNotifier, answer_all
from tests.support.fake_twilio import FakeTwilio

# Runs the real command line with outbox.run wrapped: SIGKILL just before the entry whose
# key ends with sys.argv[1] runs. Everything else is the product as shipped.
KILLED_BEFORE = """
import os, signal, sys
from handlers import outbox
real, suffix = outbox.run, sys.argv.pop(1)

async def run(svc, keys):
    if any(key.endswith(suffix) for key in keys):
        os.kill(os.getpid(), signal.SIGKILL)
    return await real(svc, keys)

outbox.run = run
from bot.app.cli import main
sys.exit(main(sys.argv[1:]))
"""


async def killed_before(env: dict[str, str], suffix: str, *args: str) -> str:
    """Run ``safehaven ARGS`` killed before the outbox entry ``*suffix`` runs; its output."""
    logs = Path(env["SAFEHAVEN_VAR_DIR"], "process-logs")
    await asyncio.to_thread(logs.mkdir, parents=True, exist_ok=True)
    stem = logs / f"killed-{args[0]}-{suffix.strip(':')}"
    with stem.with_suffix(".out").open("wb") as out, stem.with_suffix(".err").open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", KILLED_BEFORE, suffix, *args, env=env, cwd=ROOT,
            stdout=out, stderr=err)
    await asyncio.wait_for(proc.wait(), 60)
    assert proc.returncode == -signal.SIGKILL, stem.with_suffix(".err").read_text()[-2000:]
    return stem.with_suffix(".out").read_text()


async def only_transfer(svc: Services) -> Transfer:
    async with svc.db.read() as s:
        rows = (await s.scalars(select(Transfer))).all()
    assert len(rows) == 1, rows
    return rows[0]


async def entry(svc: Services, key: str) -> OutboxEntry | None:
    async with svc.db.read() as s:
        return await s.get(OutboxEntry, key)


async def age_entries(svc: Services) -> None:
    """Make the outbox entries older than the sweep's grace for a live turn (as time would)."""
    async with svc.db.transaction() as s:
        await s.execute(update(OutboxEntry).values(
            created_at=datetime.now(UTC) - outbox.UNCLAIMED_GRACE - timedelta(seconds=1)))


def sms_sent(settings: Settings, reference: str) -> int:
    path = settings.outbox_path
    text = path.read_text() if path.exists() else ""
    return len(re.findall(rf"SMS to \+447911123456 \({re.escape(reference)}\)", text))


def told(settings: Settings) -> str:
    path = settings.var_dir / "notifications.log"
    return path.read_text() if path.exists() else ""


async def assert_done_once(svc: Services, settings: Settings, reference: str,
                           texted: int) -> None:
    """One archive, ``texted`` (the SMS the provider accepted) 1, one packaging, one send."""
    assert [p.name for p in archives(settings)] == [f"{reference}.zip"]
    assert texted == 1
    actions = Counter(await audit_actions(svc, reference))
    assert actions["packaged"] == 1, actions
    assert actions["password_sent"] + actions["password_delivered"] == 1, actions
    assert sealed_uploads(settings) == [], "upload left behind"


async def test_share_killed_between_commit_and_packaging_runs_once_after_restart(
        services: Services, settings: Settings, tmp_path: Path, fake: FakeTwilio) -> None:
    source = tmp_path / "chronology.txt"
    source.write_text("case note line\n" * 400)
    env = env_for(settings, **twilio_env(fake))
    out = await killed_before(env, ":submit", "share", str(source), *SHARE)
    assert "archive:" not in out

    # The confirming turn committed (transfer submitted, its entry written); nothing ran.
    transfer = await only_transfer(services)
    ref = transfer.reference
    assert transfer.status == "submitted"
    row = await entry(services, f"{ref}:{EffectKind.SUBMIT}")
    assert row is not None and row.status == EffectStatus.PENDING and row.attempts == 0
    assert row.payload == {"tell": "console:alice"}
    assert archives(settings) == [] and fake.sent_to(ref) == 0
    assert sealed_uploads(settings), "the sealed upload waits for packaging"

    # A worker started at once leaves an entry this young to the turn that wrote it.
    await run_to_end(env, "worker", "--exit-when-idle")
    assert (await only_transfer(services)).status == "submitted"

    # Once the grace has passed, the worker runs it: packaged once, SMS once, sender told.
    await age_entries(services)
    await run_to_end(env, "worker", "--exit-when-idle")
    await assert_done_once(services, settings, ref, fake.sent_to(ref))
    row = await entry(services, f"{ref}:{EffectKind.SUBMIT}")
    assert row is not None and row.status == EffectStatus.DONE and row.attempts == 1
    log = told(settings)
    assert "message for console:alice:" in log
    assert f"Transfer {ref} is packaged: {ref}.zip" in log
    assert "Subject: CONFIDENTIAL" in log

    # Further restarts do nothing more.
    await age_entries(services)
    await run_to_end(env, "worker", "--exit-when-idle")
    await assert_done_once(services, settings, ref, fake.sent_to(ref))
    assert told(settings) == log
    assert "intact" in await run_to_end(env, "audit", "verify")


async def test_approval_killed_between_decision_and_packaging_runs_once_after_restart(
        services: Services, settings: Settings, tmp_path: Path, fake: FakeTwilio) -> None:
    source = tmp_path / "chronology.txt"
    source.write_text("case note line\n" * 400)
    env = env_for(settings, **twilio_env(fake))
    restricted = [*SHARE[2:-4], "--password-via", "sms-on-receipt", *SHARE[-2:]]
    assert SHARE[-4] == "--password-via"
    shared = await run_to_end(env, "share", str(source), "--classification", "RESTRICTED",
                              *restricted)
    ref = (await only_transfer(services)).reference
    assert ref in shared and (await only_transfer(services)).status == "awaiting_approval"
    requested = await entry(services, f"{ref}:{EffectKind.REQUEST_APPROVAL}")
    assert requested is not None and requested.status == EffectStatus.DONE

    out = await killed_before(env, ":package", "approve", ref, "--approver",
                              "console:manager")
    assert "Recorded" not in out
    transfer = await only_transfer(services)
    assert transfer.status == "approved" and transfer.authorised_by == "console:manager"
    assert archives(settings) == [] and fake.sent_to(ref) == 0
    before = told(settings)

    await age_entries(services)
    await run_to_end(env, "worker", "--exit-when-idle")
    log = told(settings)[len(before):]
    assert f"console:manager approved transfer {ref}. Packaging it now." in log
    assert f"Transfer {ref} is packaged: {ref}.zip" in log
    assert fake.sent_to(ref) == 0  # the password waits for the sender to confirm receipt
    await run_to_end(env, "received", ref, "--sender", "console:alice")
    await assert_done_once(services, settings, ref, fake.sent_to(ref))

    # Deciding again, or another sweep, changes nothing.
    again = await safehaven_approve(env, ref)
    assert "already" in again
    await age_entries(services)
    await run_to_end(env, "worker", "--exit-when-idle")
    await assert_done_once(services, settings, ref, fake.sent_to(ref))
    assert "intact" in await run_to_end(env, "audit", "verify")


async def safehaven_approve(env: dict[str, str], ref: str) -> str:
    from tests.reliability.test_faults import safehaven

    proc = await safehaven(env, "approve", ref, "--approver", "console:manager")
    await asyncio.wait_for(proc.wait(), 60)
    return output(proc)


# --- two workers sweeping at once ----------------------------------------------------------


async def submitted_but_not_run(services: Services, make_file: object, count: int,
                                monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``count`` confirmed transfers whose turn died after its commit (its entries written,
    none run)."""

    async def died(svc: Services, keys: object) -> list[object]:
        return []

    refs = []
    with monkeypatch.context() as patch:
        patch.setattr(outbox, "run", died)
        for n in range(count):
            chat = Conversation(services, f"console:sender{n}")
            await chat.send_files(make_file(f"notes-{n}.txt"))  # type: ignore[operator]
            await answer_all(chat)
            await chat.say("confirm")
            refs.append((await services_transfer_of(services, chat.user_id)).reference)
    return refs


async def services_transfer_of(svc: Services, sender: str) -> Transfer:
    async with svc.db.read() as s:
        found = (await s.scalars(select(Transfer).where(Transfer.sender_id == sender))).one()
    return found


async def test_two_workers_sweeping_at_once_run_each_entry_once(
        services: Services, clock: Clock, make_file: object,
        monkeypatch: pytest.MonkeyPatch) -> None:
    refs = await submitted_but_not_run(services, make_file, 6, monkeypatch)
    async with services.db.read() as s:
        statuses = (await s.scalars(select(Transfer.status))).all()
    assert set(statuses) == {"submitted"}
    assert await outbox.sweep(services) == 0  # too young: the turns may still be running

    clock.advance(seconds=outbox.UNCLAIMED_GRACE.total_seconds() + 1)
    # A second worker: its own connections (on SQLite, one process shares one database).
    other_db = services.db if services.db.is_sqlite else Database(services.settings.database_url)
    other = dataclasses.replace(services, db=other_db, notifier=RecordingNotifier())
    try:
        ran = await asyncio.gather(outbox.sweep(services), outbox.sweep(other))
    finally:
        if other_db is not services.db:
            await other_db.close()
    assert sum(ran) == len(refs), ran

    for ref in refs:
        actions = Counter(await audit_actions(services, ref))
        assert actions["packaged"] == 1, (ref, actions)
        assert actions["password_sent"] + actions["password_delivered"] == 1, (ref, actions)
        assert sms_sent(services.settings, ref) == 1
    assert sorted(p.name for p in archives(services.settings)) == sorted(
        f"{ref}.zip" for ref in refs)
    async with services.db.read() as s:
        states = Counter((await s.scalars(select(OutboxEntry.status))).all())
        attempts = set((await s.scalars(select(OutboxEntry.attempts))).all())
    assert states == {EffectStatus.DONE: len(refs)} and attempts == {1}
    # Each sender told once, by whichever worker ran their entry.
    notified = [user for svc in (services, other)
                for user, _ in svc.notifier.sent]  # type: ignore[attr-defined]
    assert sorted(notified) == sorted(f"console:sender{n}" for n in range(len(refs)))

    # Nothing is left for a later sweep.
    clock.advance(hours=1)
    assert await outbox.sweep(services) == 0
    async with services.db.read() as s:
        assert await s.scalar(select(func.count()).select_from(AuditRecord).where(
            AuditRecord.action == "packaged")) == len(refs)


async def test_an_entry_whose_claim_lapsed_mid_packaging_is_not_done_twice(
        services: Services, clock: Clock, make_file: object,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that died while running an entry (claimed, transfer ``packaging``): after
    the claim lapses the sweep takes it again and finds the work past the point it could
    redo; the packaging recovery fails the transfer cleanly."""
    [ref] = await submitted_but_not_run(services, make_file, 1, monkeypatch)
    key = f"{ref}:{EffectKind.SUBMIT}"
    async with services.db.transaction() as s:
        await s.execute(update(OutboxEntry).where(OutboxEntry.key == key).values(
            status=EffectStatus.RUNNING, attempts=1,
            claimed_until=clock() + outbox.LEASE))
        await s.execute(update(Transfer).where(Transfer.reference == ref).values(
            status="packaging"))
    assert await outbox.sweep(services) == 0  # claimed: someone may be running it

    clock.advance(seconds=outbox.LEASE.total_seconds() + 1)
    assert await outbox.sweep(services) == 1
    row = await entry(services, key)
    assert row is not None and row.status == EffectStatus.DONE and row.attempts == 2
    assert (await services_transfer_of(services, "console:sender0")).status == "packaging"
    assert archives(services.settings) == [] and sms_sent(services.settings, ref) == 0
    assert services.notifier.sent == []  # type: ignore[attr-defined]


async def test_a_draft_expiry_cut_short_after_its_reset_is_finished_by_the_sweep(
        services: Services, clock: Clock, make_file: object,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The scheduler resets a conversation left unfinished and dies before closing its
    draft: the draft would stay open for ever with its plaintext (still referenced, so no
    orphan clean-up). The sweep closes it, deletes the plaintext and tells the sender."""
    from handlers import housekeeping

    chat = Conversation(services, "console:alice")
    await chat.send_files(make_file("notes.txt"))  # type: ignore[operator]
    ref = (await services_transfer_of(services, chat.user_id)).reference
    clock.advance(hours=services.policy.draft_expiry_hours + 1)

    async def died(svc: Services, keys: object) -> list[object]:
        return []

    with monkeypatch.context() as patch:
        patch.setattr(outbox, "run", died)
        assert await housekeeping.expire_drafts(services) == 1
    assert (await services_transfer_of(services, chat.user_id)).status == "draft"
    assert sealed_uploads(services.settings), "the sealed upload is still there"
    assert await housekeeping.expire_drafts(services) == 0  # the conversation is reset

    clock.advance(seconds=outbox.UNCLAIMED_GRACE.total_seconds() + 1)
    assert await outbox.sweep(services) == 1
    assert (await services_transfer_of(services, chat.user_id)).status == "expired"
    assert sealed_uploads(services.settings) == []
    sent = services.notifier.sent  # type: ignore[attr-defined]
    assert [user for user, _ in sent] == ["console:alice"]
    assert f"Transfer {ref}" in str(sent[0][1][0])
    assert await outbox.sweep(services) == 0
