"""Retention per artefact deletes exactly what the policy says and nothing else: with the
clock a second before and a second after each period, through the scheduler tick and
through ``safehaven retention --apply``, every other artefact untouched, every deletion
audited without personal data."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import retention as retention_cli
from bot.policy_rules import ArchiveRetention, RetentionPeriods
from bot.retention import Artefact
from bot.state import State
from bot.statuses import DeliveryMethod, IncidentStatus, Step, TransferStatus
from handlers import housekeeping, retention
from handlers.retention_view import retention_view
from handlers.services import Services
from store import audit
from store import repositories as repo
from store.db import Database
from store.models import AuditRecord, Conversation, Incident, RecipientEntry, Transfer
from tests.support.core import Clock

LONG = 3650  # days: every period but the one under test is this long
SECOND = timedelta(seconds=1)


def only(artefact: Artefact, period: int) -> RetentionPeriods:
    """Periods where only ``artefact`` (of the three) goes within ``LONG``."""
    days = {"conversation_days": LONG, "recipient_days": LONG, "incident_days": LONG * 10}
    key = {Artefact.CONVERSATION: "conversation_days", Artefact.RECIPIENT: "recipient_days",
           Artefact.INCIDENT: "incident_days"}.get(artefact)
    if key:
        days[key] = period
    return RetentionPeriods(**days)


def policy_for(services: Services, artefact: Artefact, period: int) -> Services:
    """``services`` whose policy keeps everything ``LONG`` but ``artefact`` (``period``
    days; hours for a draft; a chat archive's maximum age)."""
    archive = period if artefact == Artefact.CHAT_ARCHIVE else LONG
    policy = replace(services.policy, retention=only(artefact, period),
                     draft_expiry_hours=period if artefact == Artefact.DRAFT else LONG * 24,
                     archive_retention=ArchiveRetention(archive, archive))
    return replace(services, policy=policy)


@dataclass(frozen=True)
class Seeded:
    idle: str  # conversation id
    draft: str  # conversation id of an unfinished transfer
    draft_reference: str
    recipient: int
    incident: int
    archive: str  # reference of a transfer keeping a chat archive


async def seed(svc: Services, tag: str) -> Seeded:
    """One of every artefact, made now (``svc.clock()``)."""
    now = svc.clock()
    draft_ref = f"SH-DR{tag}-01"
    archive_ref = f"SH-AR{tag}-01"
    async with svc.db.transaction() as s:
        await repo.save_conversation(s, conversation_id=f"console:idle-{tag}",
                                     user_id=f"console:idle-{tag}", state=State().to_json(),
                                     expected_version=None, now=now)
        await repo.save_conversation(
            s, conversation_id=f"console:draft-{tag}", user_id=f"console:draft-{tag}",
            state=State(step=Step.CLASSIFICATION, reference=draft_ref).to_json(),
            expected_version=None, now=now)
        await repo.upsert_draft(s, reference=draft_ref, sender_id=f"console:draft-{tag}",
                                files=[], classification=None, now=now)
        entry = RecipientEntry(sender_id=f"console:s-{tag}", name="Priya Shah",
                               job_title="Safeguarding Lead", organisation="Northfield NHS",
                               email=f"priya.{tag}@nhs.net", phone="07911 123456",
                               last_used_at=now)
        incident = Incident(reference=f"SH-IN{tag}-01", opened_at=now,
                            reported_by=f"console:s-{tag}", ico_decision_due=now,
                            status=IncidentStatus.OPEN, facts={})
        s.add_all([entry, incident, Transfer(
            reference=archive_ref, sender_id=f"console:s-{tag}", status=TransferStatus.READY,
            delivery_method=DeliveryMethod.ARCHIVE, archive_path=f"archives/{archive_ref}.zip",
            archive_size=10, file_count=1, total_bytes=10, created_at=now, updated_at=now)])
        await s.flush()
        return Seeded(f"console:idle-{tag}", f"console:draft-{tag}", draft_ref, entry.id,
                      incident.id, archive_ref)


async def snapshot(svc: Services) -> dict[Artefact, set[Any]]:
    """What is kept now, by artefact."""
    async with svc.db.read() as s:
        conversations = (await s.execute(select(Conversation.id, Conversation.state))).all()
        return {
            Artefact.CONVERSATION: {c.id for c in conversations
                                    if State.from_json(c.state).step == Step.IDLE},
            Artefact.DRAFT: {c.id for c in conversations
                             if State.from_json(c.state).step != Step.IDLE},
            Artefact.RECIPIENT: set((await s.scalars(select(RecipientEntry.id))).all()),
            Artefact.INCIDENT: set((await s.scalars(select(Incident.id))).all()),
            Artefact.CHAT_ARCHIVE: set((await s.scalars(select(Transfer.reference).where(
                Transfer.archive_path.is_not(None)))).all()),
        }


async def records(svc: Services, *actions: str) -> list[AuditRecord]:
    async with svc.db.read() as s:
        return list((await s.scalars(select(AuditRecord).where(
            AuditRecord.action.in_(actions)).order_by(AuditRecord.seq))).all())


def key_of(artefact: Artefact, seeded: Seeded) -> Any:
    return {Artefact.CONVERSATION: seeded.idle, Artefact.DRAFT: seeded.draft,
            Artefact.RECIPIENT: seeded.recipient, Artefact.INCIDENT: seeded.incident,
            Artefact.CHAT_ARCHIVE: seeded.archive}[artefact]


async def run_tick(svc: Services) -> None:
    await housekeeping.tick(svc)


async def run_cli(svc: Services) -> None:
    document = json.loads(await retention_cli.show(svc, apply=True, as_json=True))
    assert set(document["deleted"]) == {a.value for a, _job in housekeeping.RETENTION_JOBS}


DELETIONS = ("retention_deleted", "incident_deleted", "expired", "archive_deleted")
RUNNERS: dict[str, Callable[[Services], Any]] = {"tick": run_tick, "cli": run_cli}
PERIODS = {Artefact.CONVERSATION: timedelta(days=30), Artefact.RECIPIENT: timedelta(days=90),
           Artefact.INCIDENT: timedelta(days=2192), Artefact.DRAFT: timedelta(hours=24),
           Artefact.CHAT_ARCHIVE: timedelta(days=30)}  # its password never delivered


@pytest.mark.parametrize("runner", sorted(RUNNERS))
@pytest.mark.parametrize("artefact", list(PERIODS))
async def test_an_artefact_goes_exactly_when_its_period_passes(
        services: Services, clock: Clock, artefact: Artefact, runner: str) -> None:
    period = PERIODS[artefact]
    amount = int(period / timedelta(hours=1)) if artefact == Artefact.DRAFT else period.days
    svc = policy_for(services, artefact, amount)
    run = RUNNERS[runner]
    start = clock.now
    old = await seed(svc, "A")
    clock.advance(hours=1)
    newer = await seed(svc, "B")  # an hour younger: kept when the older goes
    before = await snapshot(svc)

    clock.now = start + period - SECOND  # just before: kept
    await run(svc)
    assert await snapshot(svc) == before
    assert await records(svc, *DELETIONS) == []

    clock.advance(seconds=2)  # just after: the older goes, nothing else
    await run(svc)
    after = await snapshot(svc)
    expected = {k: set(v) for k, v in before.items()}
    expected[artefact].discard(key_of(artefact, old))
    if artefact == Artefact.DRAFT:  # the draft's conversation is kept, saved idle
        expected[Artefact.CONVERSATION].add(old.draft)
    assert after == expected
    assert key_of(artefact, newer) in after[artefact]

    if artefact in (Artefact.CONVERSATION, Artefact.RECIPIENT):
        [record] = await records(svc, "retention_deleted")
        assert record.reference is None and record.actor == "safehaven"
        assert record.details["artefact"] == artefact.value
        assert record.details["count"] == 1 and record.details["days"] == amount
        assert "priya" not in json.dumps(record.details).lower()
        assert "idle-A" not in json.dumps(record.details)
    elif artefact == Artefact.INCIDENT:
        [record] = await records(svc, "incident_deleted")
        assert record.reference == "SH-INA-01"
        assert record.details == {"incident": old.incident, "days": amount,
                                  "opened_at": start.isoformat()}
    elif artefact == Artefact.CHAT_ARCHIVE:
        [record] = await records(svc, "archive_deleted")
        assert record.reference == old.archive
        assert record.details == {"archive": f"{old.archive}.zip",
                                  "reason": "kept for the longest time allowed"}
    else:
        [record] = await records(svc, "expired")
        assert record.reference == old.draft_reference
        assert record.details["reason"] == "left unfinished"

    await run(svc)  # nothing more is due: nothing more goes, nothing more recorded
    assert await snapshot(svc) == after
    async with svc.db.read() as s:
        assert (await audit.verify(s)).ok


async def test_a_conversation_saved_meanwhile_is_kept(services: Services,
                                                     clock: Clock) -> None:
    svc = policy_for(services, Artefact.CONVERSATION, 30)
    seeded = await seed(svc, "A")
    async with svc.db.read() as s:
        [idle] = await repo.idle_conversations(s, untouched_before=clock.now + SECOND)
    async with svc.db.transaction() as s:  # a turn saves it after the sweep read it
        assert await repo.save_conversation(
            s, conversation_id=seeded.idle, user_id=seeded.idle, state=State().to_json(),
            expected_version=idle.version, now=clock.now)
    async with svc.db.transaction() as s:
        assert not await repo.delete_conversation(s, conversation_id=idle.id,
                                                  version=idle.version)
    assert seeded.idle in (await snapshot(svc))[Artefact.CONVERSATION]


async def test_a_recipient_used_again_is_kept(services: Services, clock: Clock) -> None:
    svc = policy_for(services, Artefact.RECIPIENT, 90)
    seeded = await seed(svc, "A")
    clock.advance(days=60)
    async with svc.db.transaction() as s:  # the sender shares with them again
        await repo.remember_recipient(s, sender_id="console:s-A", recipient={
            "email": "priya.A@nhs.net", "phone_display": "07911 123456", "name": "Priya Shah",
            "job_title": "Safeguarding Lead", "organisation": "Northfield NHS"}, now=clock.now)
    clock.advance(days=31)
    await housekeeping.tick(svc)
    assert seeded.recipient in (await snapshot(svc))[Artefact.RECIPIENT]
    clock.advance(days=60)
    await housekeeping.tick(svc)
    assert seeded.recipient not in (await snapshot(svc))[Artefact.RECIPIENT]


async def test_the_view_counts_what_is_due_and_when_the_next_falls_due(
        services: Services, clock: Clock) -> None:
    svc = policy_for(services, Artefact.RECIPIENT, 90)
    svc = replace(svc, policy=replace(svc.policy, retention=RetentionPeriods(
        conversation_days=30, recipient_days=90, incident_days=2192), draft_expiry_hours=24,
        archive_retention=ArchiveRetention(7, 30)))
    start = clock.now
    await seed(svc, "A")
    clock.advance(days=10)
    await seed(svc, "B")
    clock.advance(days=25)  # A's conversation (30 days) is due, B's falls due in 5 days

    kept = await snapshot(svc)
    view = {item.artefact: item for item in await retention_view(svc)}
    assert set(view) == set(Artefact)
    assert view[Artefact.CONVERSATION].due_now == 1
    assert view[Artefact.CONVERSATION].next_due == start + timedelta(days=40)
    assert view[Artefact.DRAFT].due_now == 2  # both drafts untouched for over 24 hours
    assert view[Artefact.DRAFT].next_due is None
    assert view[Artefact.RECIPIENT].due_now == 0
    assert view[Artefact.RECIPIENT].next_due == start + timedelta(days=90)
    assert view[Artefact.INCIDENT].due_now == 0
    assert view[Artefact.INCIDENT].next_due == start + timedelta(days=2192)
    # Both archives are past 30 days' maximum? A's is (35 days), B's is not (25 days).
    assert view[Artefact.CHAT_ARCHIVE].due_now == 1
    assert view[Artefact.CHAT_ARCHIVE].next_due == start + timedelta(days=40)
    assert view[Artefact.PORTAL_ARCHIVE].due_now == 0
    assert view[Artefact.AUDIT_RECORD].due_now == 0
    assert view[Artefact.AUDIT_RECORD].next_due is None  # nothing recorded yet

    text = await retention_cli.show(svc, apply=False, as_json=False)
    assert "- conversation: 30 days idle." in text and "Due now: 1." in text
    assert "- recipient: 90 days unused." in text
    document = json.loads(await retention_cli.show(svc, apply=False, as_json=True))
    assert "deleted" not in document
    lines = {item["artefact"]: item for item in document["artefacts"]}
    assert lines["conversation"]["next_due"] == (start + timedelta(days=40)).isoformat()
    assert await snapshot(svc) == kept  # showing deletes nothing
    assert await records(svc, *DELETIONS) == []

    deleted = json.loads(await retention_cli.show(svc, apply=True, as_json=True))["deleted"]
    assert deleted["conversation"] == 1 and deleted["draft"] == 2
    assert deleted["chat_archive"] == 1 and deleted["recipient"] == 0
    after = {item.artefact: item for item in await retention_view(svc)}
    assert after[Artefact.CHAT_ARCHIVE].due_now == 0
    assert after[Artefact.DRAFT].due_now == 0
    # The deletions were recorded now; such records go after seven years by default.
    assert after[Artefact.AUDIT_RECORD].next_due == clock.now + timedelta(days=2557)


async def test_two_processes_delete_each_artefact_once(services: Services,
                                                      clock: Clock) -> None:
    svc = replace(services, policy=replace(services.policy, retention=RetentionPeriods(
        conversation_days=30, recipient_days=30, incident_days=30)))
    for tag in "ABC":
        await seed(svc, tag)
    clock.advance(days=31)
    other = replace(svc, db=Database(svc.settings.database_url))
    jobs = (retention.delete_idle_conversations, retention.delete_unused_recipients,
            retention.delete_old_incidents)
    try:
        for job in jobs:
            counts = await asyncio.gather(job(svc), job(other))
            assert sum(counts) == 3, job.__name__
    finally:
        await other.db.close()
    kept = await snapshot(svc)
    assert kept[Artefact.RECIPIENT] == kept[Artefact.INCIDENT] == set()
    assert kept[Artefact.CONVERSATION] == set()
    batches = await records(svc, "retention_deleted")
    for artefact in (Artefact.CONVERSATION, Artefact.RECIPIENT):
        assert sum(r.details["count"] for r in batches
                   if r.details["artefact"] == artefact.value) == 3
    assert len(await records(svc, "incident_deleted")) == 3
