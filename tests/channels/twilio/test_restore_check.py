"""A database behind its audit anchor (restored from an older dump) never sends a password
twice: the services check its pending sends with the fake Twilio first. Here the restore is
made in place, on SQLite (and PostgreSQL when set): the sends put back as they were at the
"dump" and the audit records since deleted, after a checkpoint named them. The real
pg_dump/pg_restore drill with the real processes is tests/ops/test_restore_resend.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update

from bot.messages import delivery as dmsg
from handlers.password_sends import dispatch, reconcile, restore_check, scheduling
from handlers.services import Services
from store import audit
from store import repositories as repo
from store.models import AuditRecord, PasswordSend
from tests.channels.twilio.test_twilio import (
    CHAT,
    fake,
    receipts,
    row,
    share,
    tw,
    twilio_settings,
)
from tests.support.core import RECIPIENT, Clock
from tests.support.fake_twilio import FakeTwilio

__all__ = ["fake", "tw", "twilio_settings"]  # fixtures

_COLUMNS = ("status", "due_at", "attempts", "provider_sid", "last_error", "lease_until")


@pytest.fixture
async def svc(tw: Services) -> AsyncIterator[Services]:
    trail = audit.trail_from_settings(tw.settings, vault=tw.vault, objects=tw.objects)
    audit.attach(tw.db, trail)
    yield tw


async def dump(svc: Services) -> tuple[int, dict[int, dict[str, Any]]]:
    """What a dump taken now would bring back: the newest audit record, every send."""
    async with svc.db.read() as s:
        head = int((await s.execute(select(func.max(AuditRecord.seq)))).scalar() or 0)
        sends = {d.id: {c: getattr(d, c) for c in _COLUMNS}
                 for d in (await s.scalars(select(PasswordSend))).all()}
    return head, sends


async def restore(svc: Services, taken: tuple[int, dict[int, dict[str, Any]]]) -> None:
    """After a checkpoint at the anchor: the database as the dump held it."""
    trail = audit.trail_of(svc.db)
    assert trail is not None
    await trail.checkpoint(svc.db, now=svc.clock())
    head, sends = taken
    async with svc.db.transaction() as s:
        await s.execute(delete(AuditRecord).where(AuditRecord.seq > head))
        for send_id, values in sends.items():
            await s.execute(update(PasswordSend).where(PasswordSend.id == send_id)
                            .values(**values))


async def checked(svc: Services) -> list[dict[str, Any]]:
    async with svc.db.read() as s:
        return [dict(d) for d in (await s.scalars(select(AuditRecord.details).where(
            AuditRecord.action == audit.RESTORE_CHECKED))).all()]


async def test_sent_after_the_dump_is_found_and_the_unsent_goes_once(
        svc: Services, fake: FakeTwilio, clock: Clock) -> None:
    fake.fail_next(503, times=2)  # both refused at first: retries due
    went = await share(svc)
    unsent = await share(svc)  # the same number: only the reference tells them apart
    assert (await row(svc, went)).status == "due" and not fake.messages
    taken = await dump(svc)
    clock.advance(minutes=1)
    async with svc.db.transaction() as s:  # only `went` goes before the disaster
        await s.execute(update(PasswordSend).where(PasswordSend.reference == unsent)
                        .values(due_at=clock.now.replace(year=clock.now.year + 1)))
    await dispatch.run_due(svc)
    assert fake.sent_to(went) == 1 and fake.sent_to(unsent) == 0
    await restore(svc, taken)
    assert (await row(svc, went)).status == "due"

    assert await restore_check.check_after_restore(svc) == 2
    assert (await row(svc, went)).status == "sent"
    assert (await row(svc, went)).provider_sid == fake.messages[0]["Sid"]
    assert (await row(svc, unsent)).status == "due"
    for _ in range(3):
        clock.advance(minutes=10)
        await dispatch.run_due(svc)
    assert fake.sent_to(went) == 1 and fake.sent_to(unsent) == 1
    assert fake.duplicates() == 0
    [record] = await checked(svc)
    assert record["sends"] == 2 and record["checkpoint_head"] > record["trail_head"]
    # Started again against the same anchor: not checked again.
    assert await restore_check.check_after_restore(svc) is None
    assert len(await checked(svc)) == 1


async def test_twilio_cannot_be_asked_nothing_is_sent(svc: Services, fake: FakeTwilio,
                                                      clock: Clock) -> None:
    fake.fail_next(503)
    ref = await share(svc)
    taken = await dump(svc)
    clock.advance(minutes=1)
    await dispatch.run_due(svc)
    assert fake.sent_to(ref) == 1
    await restore(svc, taken)
    fake.fail_lists(503)
    assert await restore_check.check_after_restore(svc) == 1
    assert (await row(svc, ref)).status == "interrupted"
    assert "restored from a backup" in receipts(svc)
    for _ in range(3):
        clock.advance(hours=1)
        await dispatch.recover_interrupted(svc)
        await dispatch.run_due(svc)
    assert fake.sent_to(ref) == 1


async def test_a_call_answered_after_the_dump_is_not_made_again(
        svc: Services, fake: FakeTwilio, clock: Clock) -> None:
    recipient = dict(RECIPIENT, phone="020 7946 0000")
    ref = await share(svc, recipient=recipient, password="voice", call_at="2026-11-24 10:00")
    taken = await dump(svc)
    clock.advance(days=1, minutes=31)
    await dispatch.run_due(svc)
    assert len(fake.calls) == 1
    fake.status[fake.calls[0]["Sid"]] = "completed"
    await restore(svc, taken)
    assert (await row(svc, ref, "voice")).status == "due"
    CHAT.clear()
    assert await restore_check.check_after_restore(svc) == 1
    assert (await row(svc, ref, "voice")).status == "sent"
    assert "cannot tell whether the password was read out" in receipts(svc)
    for _ in range(3):
        clock.advance(hours=1)
        await dispatch.run_due(svc)
    assert len(fake.calls) == 1


async def test_receipt_during_the_check_makes_the_waiting_sms_due(
        svc: Services, fake: FakeTwilio, clock: Clock) -> None:
    ref = await share(svc, password="sms-on-receipt")
    assert (await row(svc, ref)).status == "waiting"
    taken = await dump(svc)
    async with svc.db.transaction() as s:  # something after the dump, then lost
        await audit.append(s, at=clock(), actor="console:alice", action="answered")
    await restore(svc, taken)
    async with svc.db.transaction() as s:  # held, as the check holds it...
        held = await repo.hold_for_provider_check(
            s, now=clock(), due_mark=dmsg.DETAIL_RESTORE_CHECK_DUE,
            waiting_mark=dmsg.DETAIL_RESTORE_CHECK_WAITING)
    assert [d.reference for d in held] == [ref]
    # ...when the recipient's receipt comes in: no trace at Twilio, so it goes now.
    assert await scheduling.release_on_receipt(svc, reference=ref, actor="console:alice",
                                               source="sender")
    await reconcile.reconcile_unconfirmed(svc)
    assert (await row(svc, ref)).status == "due"
    clock.advance(minutes=1)
    await dispatch.run_due(svc)
    assert fake.sent_to(ref) == 1 and (await row(svc, ref)).status == "sent"


async def test_waiting_sms_with_no_trace_waits_again(svc: Services, fake: FakeTwilio,
                                                     clock: Clock) -> None:
    ref = await share(svc, password="sms-on-receipt")
    taken = await dump(svc)
    async with svc.db.transaction() as s:
        await audit.append(s, at=clock(), actor="console:alice", action="answered")
    await restore(svc, taken)
    assert await restore_check.check_after_restore(svc) == 1
    assert (await row(svc, ref)).status == "waiting" and not fake.messages
