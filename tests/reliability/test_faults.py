"""Faults, with real processes: `safehaven share` killed (SIGKILL) mid-packaging,
`safehaven worker` killed mid-delivery, Twilio down and slow, PostgreSQL connections
dropped under load. After each, a restart: the transfer fails cleanly or the delivery is
reported, with the sender told; nothing is sent twice; no plaintext or partial archive is
left behind."""

from __future__ import annotations

import asyncio
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.engine import make_url

from bot.passwords import generate_password
from bot.settings import Settings
from channels.twilio.settings import TwilioSettings
from channels.twilio.transport import TwilioTransport
from handlers import recovery
from handlers.password_sends import dispatch
from handlers.services import Services
from store.models import AuditRecord, PasswordSend, Transfer, TransferFile
from tests.reliability.conftest import twilio_env
from tests.reliability.strategies import FIGURES
from tests.support.core import SHARE_RECORD_FLAGS, Clock
from tests.support.fake_twilio import FakeTwilio, seed_due_sms

ROOT = Path(__file__).resolve().parents[2]
SHARE = ["--classification", "CONTROLLED", *SHARE_RECORD_FLAGS, "--recipient-name", "Priya Shah",
         "--recipient-title", "Safeguarding Lead", "--recipient-org", "Northfield NHS Trust",
         "--recipient-email", "priya.shah@nhs.net", "--recipient-phone", "07911 123456",
         "--purpose", "Strategy meeting about a child at risk", "--consent",
         "Only for the strategy meeting", "--password-via", "sms", "--sender", "console:alice"]


def env_for(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAFEHAVEN_", "TWILIO_"))}
    assert settings.secret_key
    env.update(SAFEHAVEN_VAR_DIR=str(settings.var_dir),
               SAFEHAVEN_DATABASE_URL=settings.database_url,
               SAFEHAVEN_SECRET_KEY=settings.secret_key, SAFEHAVEN_LOG_LEVEL="INFO",
               SAFEHAVEN_SCHEDULER_INTERVAL="0.2")
    env.update(extra)
    return env


_RUNS = Counter[str]()


async def safehaven(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    """Start ``safehaven ARGS``; its output goes to files under var/process-logs (read by
    the end-of-suite secret scan, and never filling a pipe nobody reads)."""
    logs = Path(env["SAFEHAVEN_VAR_DIR"], "process-logs")
    await asyncio.to_thread(logs.mkdir, parents=True, exist_ok=True)
    _RUNS[args[0]] += 1
    stem = logs / f"{args[0]}-{_RUNS[args[0]]}"
    with stem.with_suffix(".out").open("wb") as out, stem.with_suffix(".err").open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.app.cli", *args, env=env, cwd=ROOT, stdout=out, stderr=err)
    proc.logs = stem  # type: ignore[attr-defined]
    return proc


def output(proc: asyncio.subprocess.Process, which: str = ".out") -> str:
    stem: Path = proc.logs  # type: ignore[attr-defined]
    return stem.with_suffix(which).read_text(errors="replace")


async def run_to_end(env: dict[str, str], *args: str) -> str:
    proc = await safehaven(env, *args)
    await asyncio.wait_for(proc.wait(), 60)
    assert proc.returncode == 0, (args, output(proc)[-2000:], output(proc, ".err")[-2000:])
    return output(proc)


async def wait_for(check: Any, seconds: float, what: str, every: float = 0.005) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = await check() if asyncio.iscoroutinefunction(check) else check()
        if result:
            return result
        await asyncio.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def big_text(path: Path, megabytes: int) -> None:
    """Case-note-like text that deflates (so packaging takes a while) without repeating
    within zlib's window (so it does not take no time at all)."""
    rng = random.Random(7)
    words = ("contact visit school referral meeting concern family health worker review "
             "agreed outcome plan safeguarding child mother father carer report notes "
             "telephone email attended").split()
    block = "\n".join(" ".join(rng.choices(words, k=12)) for _ in range(60_000)).encode()
    with path.open("wb") as fh:
        written = 0
        while written < megabytes * 1024 * 1024:
            fh.write(block)
            written += len(block)


async def seed_sms(svc: Services, count: int) -> list[str]:
    """``count`` packaged transfers with an SMS due now (real time: other processes send
    them), each sealing a real generated password so the secret scan looks for it."""
    refs = await seed_due_sms(svc.db, svc.vault, count=count, now=datetime.now(UTC))
    async with svc.db.transaction() as s:
        for ref in refs:
            await s.execute(update(Transfer).where(Transfer.reference == ref).values(
                password_sealed=svc.vault.seal(generate_password(), reference=ref)))
    return refs


def uploads(settings: Settings) -> list[Path]:
    return [p for p in settings.uploads_dir.rglob("*") if p.is_file()]


def sealed_uploads(settings: Settings) -> list[Path]:
    """Upload objects in the (default, local) object store."""
    return [p for p in (settings.var_dir / "objects" / "uploads").rglob("*") if p.is_file()]


def scratch(settings: Settings) -> list[Path]:
    """Files in this host's packaging scratch folders."""
    return [p for p in (settings.var_dir / "packaging").rglob("*") if p.is_file()]


def archives(settings: Settings) -> list[Path]:
    """Archives in the (default, local) object store."""
    folder = settings.var_dir / "objects" / "archives"
    return sorted(folder.iterdir()) if folder.is_dir() else []


async def audit_actions(svc: Services, reference: str) -> list[str]:
    async with svc.db.read() as s:
        return list((await s.scalars(select(AuditRecord.action).where(
            AuditRecord.reference == reference).order_by(AuditRecord.seq))).all())


# --- a share killed mid-packaging ----------------------------------------------------------


async def test_share_killed_mid_packaging_is_finished_once_by_the_worker(
        services: Services, settings: Settings, tmp_path: Path) -> None:
    source = tmp_path / "chronology.txt"
    await asyncio.to_thread(big_text, source, 160)
    env = env_for(settings)
    # The password goes when the recipient confirms receipt: none is printed by the worker.
    on_receipt = [*SHARE[:-3], "sms-on-receipt", *SHARE[-2:]]
    assert SHARE[-4:-2] == ["--password-via", "sms"]
    share = await safehaven(env, "share", str(source), *on_receipt)

    def partial() -> list[Path]:
        return [p for p in scratch(settings) if p.name.endswith(".partial")
                and p.stat().st_size > 1024 * 1024]

    try:
        found = await wait_for(partial, 60, "the partial archive")
    finally:
        share.send_signal(signal.SIGKILL)
        await share.wait()
    assert share.returncode == -signal.SIGKILL
    source.unlink()
    reference = found[0].name.split(".")[1]
    async with services.db.read() as s:
        transfer = await s.get(Transfer, reference)
    assert transfer is not None and transfer.status == "packaging"
    assert uploads(settings) == [], "plaintext staged on the host outlived the turn"
    assert sealed_uploads(settings), "the sealed upload is still there after the kill"
    assert not any(p.name == f"{reference}.zip" for p in archives(settings))

    # A restart soon after must not take a packaging that may still be running.
    await run_to_end(env, "worker", "--exit-when-idle")
    async with services.db.read() as s:
        assert (await s.get(Transfer, reference)).status == "packaging"  # type: ignore[union-attr]

    # Later (the deadline has passed and the partial archive has not grown for minutes):
    async with services.db.transaction() as s:
        await s.execute(update(Transfer).where(Transfer.reference == reference).values(
            updated_at=datetime.now(UTC) - timedelta(hours=1)))
    for p in [*scratch(settings), *(settings.var_dir / "packaging").rglob("*")]:
        old = time.time() - 600
        os.utime(p, (old, old))
    await run_to_end(env, "worker", "--exit-when-idle")

    async with services.db.read() as s:
        transfer = await s.get(Transfer, reference)
        files = (await s.scalars(select(TransferFile).where(
            TransferFile.reference == reference))).all()
    assert transfer is not None and transfer.status == "ready"
    assert transfer.password_sealed is not None  # kept for the receipt: a fresh one
    assert files and all(f.stored_path is None for f in files)
    assert uploads(settings) == [], "plaintext left behind"
    assert sealed_uploads(settings) == [], "sealed upload left behind"
    assert [p.name for p in archives(settings)] == [f"{reference}.zip"], "one archive"
    assert scratch(settings) == [], "partial archive or copied upload left behind"
    actions = await audit_actions(services, reference)
    assert actions.count("packaging_resumed") == 1 and actions.count("packaged") == 1
    told = (settings.var_dir / "notifications.log").read_text()
    assert told.count(f"Encrypted archive {reference}") + told.count(
        f"{reference}.zip") >= 1, told[-2000:]
    await run_to_end(env, "worker", "--exit-when-idle")  # again: nothing more happens
    assert (await audit_actions(services, reference)).count("packaged") == 1
    assert (settings.var_dir / "notifications.log").read_text() == told, "told once"
    password = services.vault.open(transfer.password_sealed, reference=reference)
    assert password not in told
    assert not settings.outbox_path.exists() or reference not in settings.outbox_path.read_text()
    status = await run_to_end(env, "status", reference)
    assert "ready" in status.lower() or "password" in status.lower(), status
    assert "intact" in await run_to_end(env, "audit", "verify")


async def test_orphan_uploads_and_failed_packaging_are_cleaned(services: Services,
                                                               clock: Clock) -> None:
    """A process killed between staging a file and sealing it leaves plaintext on its host,
    one killed between sealing and recording leaves an upload object nobody refers to; a
    transfer whose packaging failed keeps its upload only until draft expiry."""
    from handlers.intake import new_upload_key, new_upload_path, seal_upload
    from tests.support.objects import upload_objects

    orphan = new_upload_path(services.settings)
    orphan.write_bytes(b"plaintext nobody refers to")
    assert await recovery.delete_orphan_uploads(services) == 0  # young: may be in use
    old = time.time() - recovery.ORPHAN_UPLOAD_SECONDS - 1
    os.utime(orphan, (old, old))
    assert await recovery.delete_orphan_uploads(services) == 1
    assert not orphan.exists() and not orphan.parent.exists()

    async def sealed(text: bytes, age: float) -> str:
        path = new_upload_path(services.settings)
        path.write_bytes(text)
        key = await seal_upload(services.objects, services.vault, path)
        assert not path.exists()
        aged = new_upload_key(time.time() - age)  # as if sealed ``age`` seconds ago
        await services.objects.put(aged, services.objects.get(key))
        await services.objects.delete(key)
        return aged

    stray = await sealed(b"sealed, never recorded", recovery.ORPHAN_UPLOAD_SECONDS + 1)
    assert stray in await upload_objects(services)
    kept = await sealed(b"plaintext of a failed packaging", recovery.ORPHAN_UPLOAD_SECONDS + 1)
    now = clock()
    async with services.db.transaction() as s:
        s.add(Transfer(reference="SH-FAIL-22", sender_id="console:alice",
                       status="package_failed", file_count=1, total_bytes=31,
                       created_at=now, updated_at=now))
        await s.flush()
        s.add(TransferFile(reference="SH-FAIL-22", position=1, original_name="a.txt",
                           stored_path=kept, size=31, kind="text"))
    assert await recovery.delete_orphan_uploads(services) == 1  # the stray; kept referred to
    assert await upload_objects(services) == [kept]  # the stray went
    assert await recovery.close_failed_packaging(services) == 0  # not yet
    clock.advance(hours=services.policy.draft_expiry_hours + 1)
    assert await recovery.close_failed_packaging(services) == 1
    assert await upload_objects(services) == []
    assert "plaintext_deleted" in await audit_actions(services, "SH-FAIL-22")
    notifier: Any = services.notifier
    assert any("could not be packaged" in getattr(r, "text", "")
               for r in notifier.for_user("console:alice"))


# --- a worker killed mid-delivery ------------------------------------------------------------


async def test_worker_killed_mid_delivery_is_reported_and_never_resent(
        services: Services, settings: Settings, fake: FakeTwilio,
        twilio_settings: TwilioSettings) -> None:
    refs = await seed_sms(services, 3)
    fake.delay = 30.0  # Twilio stalls: the worker has claimed the rows and is waiting
    env = env_for(settings, **twilio_env(fake))
    worker = await safehaven(env, "worker")

    async def sending() -> bool:
        async with services.db.read() as s:
            n = await s.scalar(select(func.count()).select_from(PasswordSend).where(
                PasswordSend.status == "sending"))
        return n == len(refs)

    try:
        await wait_for(sending, 30, "the worker to claim the deliveries", every=0.05)
        await asyncio.sleep(0.5)  # the requests are at Twilio, unanswered
    finally:
        worker.send_signal(signal.SIGKILL)
        await worker.wait()
    assert worker.returncode == -signal.SIGKILL
    fake.delay = 0.0
    sent_before = len(fake.messages)

    # Restart once the lease (5 minutes) has run out.
    async with services.db.transaction() as s:
        await s.execute(update(PasswordSend).where(PasswordSend.status == "sending").values(
            lease_until=datetime.now(UTC) - timedelta(seconds=1)))
    await run_to_end(env, "worker", "--exit-when-idle")
    await run_to_end(env, "worker", "--exit-when-idle")  # and again: still nothing re-sent

    assert len(fake.messages) == sent_before <= len(refs) and fake.duplicates() == 0
    async with services.db.read() as s:
        rows = (await s.scalars(select(PasswordSend))).all()
    assert {d.status for d in rows} == {"interrupted"}
    told = (settings.var_dir / "notifications.log").read_text()
    for ref in refs:
        assert re.search(rf"message for console:alice:\n[^\n]*{ref}[^\n]*cannot tell whether",
                         told), told
        assert "password_interrupted" in await audit_actions(services, ref)


# --- Twilio down, Twilio slow --------------------------------------------------------------


@pytest.fixture
async def twilio(services: Services, twilio_settings: TwilioSettings, fake: FakeTwilio,
                 clock: Clock) -> AsyncIterator[Services]:
    fake.clock = clock  # Twilio dates its messages by the test's clock
    transport = TwilioTransport(twilio_settings, timeout=0.5)
    services.transport = transport
    yield services
    await transport.close()


async def statuses_of(svc: Services) -> Counter[str]:
    async with svc.db.read() as s:
        return Counter((await s.scalars(select(PasswordSend.status))).all())


async def test_twilio_down_then_back_sends_each_once(twilio: Services, fake: FakeTwilio,
                                                     clock: Clock) -> None:
    refs = await seed_due_sms(twilio.db, twilio.vault, count=20, now=clock())
    await fake.close()  # connection refused: certainly not sent, so retried
    await dispatch.run_due(twilio)
    async with twilio.db.read() as s:
        rows = (await s.scalars(select(PasswordSend))).all()
    assert {d.status for d in rows} == {"due"} and {d.attempts for d in rows} == {1}
    assert all("unreachable" in (d.last_error or "") for d in rows)
    for _ in range(2):  # still down at the first retry
        clock.advance(minutes=2)
        await dispatch.run_due(twilio)
    await fake.restart()
    clock.advance(minutes=5)
    await dispatch.run_due(twilio)
    assert len(fake.messages) == len(refs) and fake.duplicates() == 0
    assert await statuses_of(twilio) == {"sent": len(refs)}
    assert not fake.lookups  # nothing was in doubt


async def test_twilio_slow_and_failing_then_recovers_without_duplicates(
        twilio: Services, fake: FakeTwilio, clock: Clock) -> None:
    refs = await seed_due_sms(twilio.db, twilio.vault, count=40, now=clock())
    fake.stall_next(times=40)  # every request held past the 0.5 s timeout, none taken
    await dispatch.run_due(twilio)
    # Twilio may have taken them: none is retried until Twilio says it has not.
    assert await statuses_of(twilio) == {"unconfirmed": len(refs)} and not fake.messages
    fake.fail_next(503, times=10)
    fake.fail_next(429, 20429, "Too Many Requests", times=10)
    for _ in range(4):
        clock.advance(minutes=5)
        await dispatch.run_due(twilio)
    statuses = await statuses_of(twilio)
    assert statuses == {"sent": len(refs)}, statuses
    assert len(fake.messages) == len(refs) and fake.duplicates() == 0
    assert len(fake.lookups) == len(refs)  # each asked about once, found not sent


@pytest.mark.alone  # its client timeout is the fault under test: another worker's load
# can push answers past it and turn 'late' sends into 'interrupted' ones
async def test_twilio_answers_after_the_timeout_never_duplicates(
        twilio: Services, fake: FakeTwilio, clock: Clock) -> None:
    """60 SMS to one number: 20 taken by Twilio but answered after our timeout, 10 taken and
    the connection dropped mid-answer, 20 held until we gave up (not taken), 10 answered at
    once. No callbacks arrive. After the wait the scheduler asks Twilio: the 30 it holds are
    adopted (each by the reference it names, as all go to the same number), the 20 it does
    not are retried once. Then a second round where listing fails for 5: those are reported
    to their senders, never re-sent. Every SMS exactly once; none twice."""
    refs = await seed_due_sms(twilio.db, twilio.vault, count=60, now=clock())
    fake.answer_late(times=20)
    fake.drop_after_accepting(times=10)
    fake.stall_next(times=20)
    await dispatch.run_due(twilio)
    assert await statuses_of(twilio) == {"unconfirmed": 50, "sent": 10}
    assert len(fake.messages) == 40
    clock.advance(minutes=5)
    await dispatch.run_due(twilio)
    assert await statuses_of(twilio) == {"sent": 40, "due": 20}
    assert len(fake.lookups) == 50
    clock.advance(minutes=1)
    await dispatch.run_due(twilio)
    assert await statuses_of(twilio) == {"sent": 60}
    assert len(fake.messages) == 60 and fake.duplicates() == 0
    assert {fake.sent_to(ref) for ref in refs} == {1}
    async with twilio.db.read() as s:
        sids = [d.provider_sid for d in (await s.scalars(select(PasswordSend))).all()]
    assert sorted(sids) == sorted(m["Sid"] for m in fake.messages)  # each adopted its own

    more = await seed_due_sms(twilio.db, twilio.vault, count=10, now=clock(),
                              prefix="SX")
    fake.answer_late(times=10)
    fake.fail_lists(times=5)
    await dispatch.run_due(twilio)
    clock.advance(minutes=5)
    await dispatch.run_due(twilio)
    for _ in range(3):
        clock.advance(hours=1)
        await dispatch.recover_interrupted(twilio)
        await dispatch.run_due(twilio)
    assert await statuses_of(twilio) == {"sent": 65, "interrupted": 5}
    assert len(fake.messages) == 70 and fake.duplicates() == 0
    assert {fake.sent_to(ref) for ref in more} == {1}
    notifier: Any = twilio.notifier
    told = " ".join(getattr(r, "text", "") for r in notifier.for_user("console:alice"))
    assert told.count("cannot tell whether it arrived") == 5


# --- PostgreSQL connections dropped under load ----------------------------------------------


def worker_ports(workers: list[asyncio.subprocess.Process], server_port: int) -> list[int]:
    """The local ports of the workers' connections to PostgreSQL."""
    import psutil

    ports: list[int] = []
    for w in workers:
        try:
            connections = psutil.Process(w.pid).net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        ports += [c.laddr.port for c in connections if c.raddr and c.raddr.port == server_port]
    return ports


async def remaining_due(services: Services) -> int:
    async with services.db.read() as s:
        return int(await s.scalar(select(func.count()).select_from(PasswordSend).where(
            PasswordSend.status == "due")) or 0)


async def start_loaded_workers(services: Services, settings: Settings, fake: FakeTwilio,
                               count: int) -> tuple[list[str], dict[str, str],
                                                    list[asyncio.subprocess.Process]]:
    """``count`` SMS due, two worker processes past start-up (a worker that loses its
    connection while migrating exits non-zero, for its supervisor to restart) and sending."""
    refs = await seed_sms(services, count)
    fake.delay = 0.2
    env = env_for(settings, **twilio_env(fake), SAFEHAVEN_LOG_LEVEL="WARNING")
    workers = [await safehaven(env, "worker") for _ in range(2)]
    await wait_for(lambda: all("scheduler running" in output(w) for w in workers), 60,
                   "the workers to start", every=0.05)
    await wait_for(lambda: fake.messages, 30, "the first SMS", every=0.02)
    return refs, env, workers


async def stop_after_recording(services: Services,
                               workers: list[asyncio.subprocess.Process]) -> None:
    """Wait for the batches in hand to be recorded (1.6 s unchanged), check both workers
    lived through the fault, and stop them."""
    async def in_flight() -> int:
        async with services.db.read() as s:
            return int(await s.scalar(select(func.count()).select_from(PasswordSend).where(
                PasswordSend.status == "sending")) or 0)

    quiet, last = 0, -1
    while quiet < 8:
        now_sending = await in_flight()
        quiet = quiet + 1 if now_sending == last else 0
        last = now_sending
        await asyncio.sleep(0.2)
    for w in workers:
        assert w.returncode is None, "a worker died when the database went away"


async def stop_workers(workers: list[asyncio.subprocess.Process]) -> None:
    for w in workers:
        if w.returncode is None:
            w.send_signal(signal.SIGTERM)
    for w in workers:
        await w.wait()


async def each_sent_once_or_reported(services: Services, settings: Settings,
                                     env: dict[str, str], fake: FakeTwilio, refs: list[str],
                                     count: int) -> tuple[Counter[str], int]:
    """After a database fault: deliveries whose outcome could not be recorded are still
    'sending'; after the lease they are reported, never re-sent. Every delivery is sent
    once or reported to its sender; none twice, none lost; the audit chain intact.
    Returns the statuses and how many reported deliveries had in fact reached Twilio."""
    async with services.db.transaction() as s:
        await s.execute(update(PasswordSend).where(PasswordSend.status == "sending").values(
            lease_until=datetime.now(UTC) - timedelta(seconds=1)))
    await run_to_end(env, "worker", "--exit-when-idle")

    async with services.db.read() as s:
        rows = (await s.scalars(select(PasswordSend))).all()
    statuses = Counter(d.status for d in rows)
    per_ref = Counter(m["Body"].split(" is ")[0][-10:] for m in fake.messages)
    assert fake.duplicates() == 0 and max(per_ref.values()) == 1
    assert set(statuses) <= {"sent", "interrupted"}, statuses
    assert sum(statuses.values()) == count
    told = (settings.var_dir / "notifications.log").read_text() if statuses["interrupted"] \
        else ""
    for d in rows:
        if d.status == "sent":
            assert per_ref[d.reference] == 1, d.reference  # sent once, recorded once
        else:
            assert d.reference in told  # the sender is told; never sent blindly again
    assert set(per_ref) <= set(refs)
    assert "intact" in await run_to_end(env, "audit", "verify")
    reached = sum(1 for d in rows if d.status == "interrupted" and per_ref[d.reference])
    return statuses, reached


def retried(workers: list[asyncio.subprocess.Process]) -> str:
    return (f"{sum(output(w, '.err').count('scheduler job') for w in workers)} scheduler "
            "passes failed and were retried, "
            f"{sum(output(w, '.err').count('outcomes failed') for w in workers)} recordings "
            "of outcomes retried on a fresh connection")


@pytest.mark.postgres
async def test_postgres_connections_dropped_under_load(
        services: Services, settings: Settings, fake: FakeTwilio, database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("terminating backends is a PostgreSQL fault")
    import asyncpg

    count = 800
    refs, env, workers = await start_loaded_workers(services, settings, fake, count)
    url = make_url(database_url)
    admin = await asyncpg.connect(host=url.host, port=url.port, user=url.username,
                                  password=url.password, database="postgres")
    terminated = 0
    try:
        deadline = time.monotonic() + 60
        while await remaining_due(services) and time.monotonic() < deadline:
            rows = await admin.fetch(  # the workers' connections only, not this test's
                "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity "
                "WHERE datname = $1 AND client_port = ANY($2::int[])", url.database,
                worker_ports(workers, url.port or 5432))
            terminated += sum(1 for r in rows if r["ok"])
            await asyncio.sleep(0.05)
        assert await remaining_due(services) == 0, "the workers did not get through"
        await stop_after_recording(services, workers)
    finally:
        await stop_workers(workers)
        await admin.close()
    assert terminated > 0
    statuses, reached = await each_sent_once_or_reported(services, settings, env, fake,
                                                         refs, count)
    FIGURES["PostgreSQL backends terminated under load"] = (
        f"{count} deliveries by 2 worker processes, {terminated} backends terminated: "
        f"{statuses['sent']} sent once, {statuses['interrupted']} reported as interrupted "
        f"(sender told; {reached} of them had reached Twilio), 0 duplicates, 0 lost; "
        f"{retried(workers)}; audit chain intact")


def local_cluster(database_url: str) -> list[str] | None:
    """The command restarting the PostgreSQL the tests use, when this machine runs it and
    may restart it (Debian's pg_ctlcluster, as root); None otherwise."""
    url = make_url(database_url)
    clusters = Path("/etc/postgresql")
    if url.host not in ("127.0.0.1", "localhost") or os.geteuid() != 0 \
            or not clusters.is_dir() or shutil.which("pg_ctlcluster") is None:
        return None
    versions = sorted(p.name for p in clusters.iterdir() if (p / "main").is_dir())
    if len(versions) != 1:
        return None
    return ["pg_ctlcluster", "--skip-systemctl-redirect", versions[0], "main", "restart",
            "--mode", "fast"]


@pytest.mark.postgres
@pytest.mark.alone  # every other test's PostgreSQL connections would drop too
async def test_postgres_restarted_under_load(
        services: Services, settings: Settings, fake: FakeTwilio, database_url: str) -> None:
    """The database server itself restarted (fast shutdown: every session ends, new
    connections are refused until it is back) twice while two workers send 600 SMS."""
    if not database_url.startswith("postgresql"):
        pytest.skip("restarting the database server is a PostgreSQL fault")
    restart = local_cluster(database_url)
    if restart is None:
        pytest.skip("needs the PostgreSQL cluster on this machine and root to restart it")
    count = 600
    refs, env, workers = await start_loaded_workers(services, settings, fake, count)
    restarts: list[float] = []
    try:
        for _ in range(2):
            began = time.monotonic()
            done = await asyncio.to_thread(subprocess.run, restart, capture_output=True,
                                           timeout=120)
            assert done.returncode == 0, done.stderr
            restarts.append(time.monotonic() - began)
            await asyncio.sleep(1.0)

        async def all_taken() -> bool:
            return await remaining_due(services) == 0

        await wait_for(all_taken, 90, "the workers to get through", every=0.2)
        await stop_after_recording(services, workers)
    finally:
        await stop_workers(workers)
    statuses, reached = await each_sent_once_or_reported(services, settings, env, fake,
                                                         refs, count)
    FIGURES["PostgreSQL restarted under load"] = (
        f"{count} deliveries by 2 worker processes, the server restarted twice "
        f"({', '.join(f'{r:.1f}' for r in restarts)} s each): {statuses['sent']} sent once, "
        f"{statuses['interrupted']} reported as interrupted (sender told; {reached} of "
        f"them had reached Twilio), 0 duplicates, 0 lost; {retried(workers)}; audit chain "
        "intact")
