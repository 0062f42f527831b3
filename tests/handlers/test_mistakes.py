"""Reporting a mistake through the console chat, on SQLite and PostgreSQL: a send a worker
holds under its lease is left to finish and reported as "may have gone" (never as stopped),
and nothing can carry the password after; two reports at once open one incident; the
policy's [governance] contacts are read and checked; an incident past its 72 hours is shown
overdue; of two ICO decisions at once exactly one is recorded, and one after the deadline is
recorded late."""

from __future__ import annotations

import asyncio
import re
import tomllib
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

import pytest
from sqlalchemy import select

from bot.app.incidents import render, time_left
from bot.policy import PolicyError, load_policy, parse_policy
from bot.policy_rules import Governance
from bot.statuses import IcoDecision, IncidentStatus
from handlers import approvals, housekeeping, mistakes
from handlers.services import Services
from store import repositories as repo
from store.models import AuditRecord, Incident, PasswordSend, Transfer
from tests.support.core import Clock, Conversation, answer_all


def reference_of(chat: Conversation) -> str:
    found = re.search(r"SH-[0-9A-Z]{4}-[0-9A-Z]{2}", chat.text)
    assert found, chat.text
    return found.group(0)


async def shared(services: Services, conversation: Any, make_file: Any, **answers: Any
                 ) -> tuple[Conversation, str]:
    chat = conversation("console:alice")
    await chat.send_files(make_file("case.pdf"))
    ref = reference_of(chat)
    await answer_all(chat, **answers)
    await chat.say("confirm")
    return chat, ref


async def test_a_send_under_way_is_reported_as_may_have_gone_and_cannot_carry_the_password(
        services: Services, conversation: Any, make_file: Any, clock: Clock) -> None:
    chat, ref = await shared(services, conversation, make_file, password="voice",
                             call_at="2026-11-24 10:00")
    clock.now = datetime.fromisoformat("2026-11-24T10:00:00+00:00")
    # A worker claims the call and is placing it (its lease is running) when the sender
    # reports the mistake.
    async with services.db.transaction() as session:
        (claimed,) = [d for d in await repo.claim_due_sends(
            session, now=clock.now, lease_until=clock.now + timedelta(minutes=5), limit=10,
            skip_locked=False, reference=ref) if d.kind == "voice"]

    turn = await chat.say(f"mistake {ref}")
    said = "\n".join(getattr(r, "text", "") for r in turn.replies)
    assert "a password send was in progress and may have gone: call to +44 7911 123456" in said
    assert "the password had not reached them" not in said
    assert "destroyed the password" in said
    async with services.db.read() as session:
        send = await session.get(PasswordSend, claimed.id)
        transfer = await session.get(Transfer, ref)
    assert send is not None and send.status == "sending"  # left to the worker holding it
    assert transfer is not None and transfer.password_sealed is None

    # The worker dies; its lease lapses: reported, never placed again, nothing to read out.
    clock.advance(minutes=30)
    await housekeeping.tick(services)
    outbox = services.settings.outbox_path
    assert not outbox.exists() or f"voice call to +447911123456 ({ref})" not in \
        outbox.read_text()
    async with services.db.read() as session:
        send = await session.get(PasswordSend, claimed.id)
    assert send is not None and send.status in ("interrupted", "failed", "dead")


async def test_two_reports_at_once_open_one_incident(
        services: Services, conversation: Any, make_file: Any) -> None:
    _chat, ref = await shared(services, conversation, make_file)
    replies = await asyncio.gather(
        mistakes.report_mistake(services, reference=ref, user_id="console:alice"),
        mistakes.report_mistake(services, reference=ref, user_id="console:alice"))
    texts = sorted(r[0].text for r in replies)  # type: ignore[union-attr]
    assert texts[0].startswith(f"A mistake on transfer {ref} was already reported")
    assert texts[1].startswith(f"Mistake on transfer {ref} reported")
    async with services.db.read() as session:
        assert len((await session.scalars(select(Incident))).all()) == 1
        audits = (await session.scalars(select(AuditRecord).where(
            AuditRecord.action == "mistake_reported"))).all()
    assert len(audits) == 1


async def test_the_approver_who_decided_may_report_and_the_sender_is_told(
        services: Services, conversation: Any, make_file: Any) -> None:
    _chat, ref = await shared(services, conversation, make_file, classification="RESTRICTED",
                              password="sms-on-receipt")
    manager = conversation("console:manager")
    await approvals.decide(services, approver_id="console:manager", reference=ref, approve=True)
    turn = await manager.say(f"mistake {ref}")
    said = "\n".join(getattr(r, "text", "") for r in turn.replies)
    assert f"Mistake on transfer {ref} reported" in said
    assert "- the sender: console:alice" in said
    notifier: Any = services.notifier
    told = "\n".join(getattr(r, "text", "") for r in notifier.for_user("console:alice"))
    assert f"console:manager reported a mistake on transfer {ref}" in told
    governance = "\n".join(getattr(r, "text", "")
                           for r in notifier.for_user("console:governance"))
    assert f"reported a mistake on transfer {ref}" in governance


def test_governance_contacts_are_read_and_checked() -> None:
    text = resources.files("bot").joinpath("policies/default.toml").read_text("utf-8")
    document = tomllib.loads(text)
    assert load_policy().governance == Governance(contacts=("console:governance",))

    document["people"] = {"ig-officer": ["console:ig", "slack:UIG00001"]}
    document["governance"] = {"contacts": ["ig-officer", "console:dpo"],
                              "email": "information.governance@example.gov.uk"}
    policy = parse_policy(document)
    assert policy.governance_ids() == ("console:ig", "slack:UIG00001", "console:dpo")
    assert policy.governance.email == "information.governance@example.gov.uk"

    for bad, key in (({"contacts": ["nobody"]}, "governance.contacts"),
                     ({"email": "not an address"}, "governance.email"),
                     ({"contact": []}, "governance.contact")):
        document["governance"] = bad
        with pytest.raises(PolicyError, match=key.replace(".", r"\.")):
            parse_policy(document)


async def test_an_incident_past_its_deadline_is_shown_overdue(
        services: Services, conversation: Any, make_file: Any, clock: Clock) -> None:
    _chat, ref = await shared(services, conversation, make_file)
    await mistakes.report_mistake(services, reference=ref, user_id="console:alice")
    found = await mistakes.list_incidents(services)
    assert [i.reference for i in found] == [ref]
    assert found[0].ico_decision_due - found[0].opened_at == timedelta(hours=72)
    clock.advance(hours=1)
    assert "71 h 00 min" in render(services, found, only_open=False)
    clock.advance(hours=73, minutes=5)
    shown = render(services, found, only_open=True)
    assert ref in shown and "overdue 2 h 05 min" in shown and "open" in shown
    assert time_left(clock.now, clock.now + timedelta(minutes=59)) == "0 h 59 min"


async def test_two_decisions_at_once_record_one_and_a_late_one_says_so(
        services: Services, conversation: Any, make_file: Any, clock: Clock) -> None:
    _chat, ref = await shared(services, conversation, make_file)
    await mistakes.report_mistake(services, reference=ref, user_id="console:alice")
    clock.advance(hours=72, minutes=1)
    outcomes = await asyncio.gather(*(
        mistakes.decide_incident(services, reference=ref, decision=decision,
                                 ico_reference=None, reason=f"{decision} because", decided_by=by)
        for decision, by in ((IcoDecision.REPORTED, "console:ig"),
                             (IcoDecision.NOT_REPORTED, "console:dpo"))))
    assert sorted(o.outcome for o in outcomes) == [mistakes.Decided.ALREADY_DECIDED,
                                                   mistakes.Decided.DECIDED]
    (won,) = [o.incident for o in outcomes if o.outcome == mistakes.Decided.DECIDED]
    assert won is not None
    (stored,) = await mistakes.list_incidents(services)
    assert stored.status == IncidentStatus.CLOSED and stored.decided_late
    assert (stored.decided_by, stored.ico_decision, stored.decision_reason) == (
        won.decided_by, won.ico_decision, f"{won.ico_decision} because")
    assert stored.decided_at == clock.now
    async with services.db.read() as session:
        audits = (await session.scalars(select(AuditRecord).where(
            AuditRecord.action == "incident_decided"))).all()
    assert [(a.actor, a.details["late"]) for a in audits] == [(won.decided_by, True)]
    assert await mistakes.list_incidents(services, only_open=True) == []
    shown = render(services, [stored], only_open=False)
    assert "(late: 0 h 01 min after the deadline)" in shown and "OVERDUE" not in shown

    with pytest.raises(ValueError, match="--ico-reference"):
        await mistakes.decide_incident(services, reference=ref,
                                       decision=IcoDecision.NOT_REPORTED,
                                       ico_reference="IC-1", reason="r", decided_by="x")
