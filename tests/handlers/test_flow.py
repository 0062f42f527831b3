"""Scenario tests through the engine and handlers, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path
from typing import Any

import pyzipper
from sqlalchemy import select

from bot.events import Answer, ApprovalDecision
from bot.replies import ApprovalRequest, Choice, FileReply, Form
from handlers import approvals, housekeeping
from handlers.archive_reads import open_archive
from handlers.password_sends import dispatch, scheduling
from handlers.services import Services
from store import audit
from store.models import AuditRecord, PasswordSend, Transfer, TransferFile
from tests.support.core import (
    CATEGORIES,
    CONSENT,
    PURPOSE,
    RECIPIENT,
    Clock,
    Conversation,
    answer_all,
)
from tests.support.objects import upload_objects

SMS_PASSWORD = re.compile(r"the password for (SH-[0-9A-Z-]+) is (\S+) \.")


def outbox_password(svc: Services, reference: str) -> str:
    text = svc.settings.outbox_path.read_text()
    found = [m.group(2) for m in SMS_PASSWORD.finditer(text) if m.group(1) == reference]
    assert found, text
    return found[-1]


def reference_of(chat: Conversation) -> str:
    match = re.search(r"SH-[0-9A-Z]{4}-[0-9A-Z]{2}", chat.text)
    assert match, chat.text
    return match.group(0)


async def transfer(svc: Services, reference: str) -> Transfer:
    async with svc.db.read() as s:
        row = await s.get(Transfer, reference)
    assert row is not None
    return row


async def actions(svc: Services, reference: str) -> list[str]:
    async with svc.db.read() as s:
        rows = (await s.scalars(select(AuditRecord).where(AuditRecord.reference == reference)
                                .order_by(AuditRecord.seq))).all()
    return [r.action for r in rows]


async def test_happy_path_controlled_to_partner_with_sms(services: Services, conversation: Any,
                                                         make_file: Any,
                                                         caplog: Any) -> None:
    caplog.set_level("DEBUG")
    chat = conversation()
    await chat.send_files(make_file("Julia Smith referral.pdf"), make_file("notes.txt"))
    ref = reference_of(chat)
    assert chat.question == "classification"
    assert "looks like it identifies a person" in chat.text
    await answer_all(chat)
    assert "Priya Shah" in chat.text and "No onward sharing" in chat.text
    turn = await chat.say("confirm")

    archive = next(r for r in turn.replies if isinstance(r, FileReply))
    assert archive.filename == f"{ref}.zip"
    assert f"Subject: CONFIDENTIAL {ref}" in chat.text
    assert "permanently delete the email" in chat.text
    password = outbox_password(services, ref)
    assert password not in chat.text
    assert password not in caplog.text
    opened = await open_archive(services.objects, services.settings.archives_dir, ref,
                                vault=services.vault)
    assert opened is not None
    data = b"".join([chunk async for chunk in opened.chunks])
    with pyzipper.AESZipFile(io.BytesIO(data)) as zf:
        zf.setpassword(password.encode())
        names = zf.namelist()
        assert "document-1.pdf" in names and "document-2.txt" in names
        assert not any("Julia" in n for n in names)
        assert zf.read("document-2.txt").startswith(b"case note line")

    row = await transfer(services, ref)
    assert row.status == "ready" and row.password_sealed is None
    assert row.authorised_by is None
    async with services.db.read() as s:
        files = (await s.scalars(select(TransferFile).where(TransferFile.reference == ref))).all()
        assert all(f.stored_path is None for f in files)
        assert (await audit.verify(s)).ok
    assert not any(services.settings.uploads_dir.rglob("*.bin"))
    assert await upload_objects(services) == []
    acts = await actions(services, ref)
    for expected in ("received", "answered", "confirmed", "packaged", "handed_back",
                     "password_scheduled", "password_delivered", "password_wiped"):
        assert expected in acts, acts
    assert "Transfer " + ref + ": the password was texted" in chat.text

    # Every exported row of the transfer carries the record-keeping fields (seed 001).
    import csv

    async with services.db.read() as s:
        rows = list(csv.DictReader(io.StringIO("".join(
            [c async for c in audit.export(s, since=None, fmt="csv")]))))
    delivered = next(r for r in rows if r["action"] == "password_delivered")
    assert delivered["recipient_name"] == "Priya Shah"
    assert delivered["recipient_job_title"] == "Safeguarding Lead"
    assert delivered["recipient_organisation"] == "Northfield NHS Trust"
    assert delivered["recipient_phone"] == "+44 7911 123456"
    assert delivered["purpose"] == PURPOSE and delivered["classification"] == "CONTROLLED"
    assert "strategy meeting" in delivered["consent"]
    assert password not in "".join(str(r) for r in rows)


async def test_every_question_reasks_on_bad_input(services: Services, conversation: Any,
                                                  make_file: Any) -> None:
    chat = conversation()
    await chat.send_files(make_file("a.pdf"))
    turn = await chat.say("TOP SECRET")
    assert turn.error and chat.question == "classification"
    await chat.say("CONTROLLED")
    await chat.say(CATEGORIES)

    bad = dict(RECIPIENT, email="priya@gmail.com", phone="12345", name="")
    turn = await chat.say(bad)
    form = chat.pending
    assert isinstance(form, Form) and turn.error
    errors = {f.name: f.error for f in form.fields}
    assert errors["email"] and "gmail.com" in errors["email"]
    assert errors["phone"] and errors["name"] and not errors["organisation"]
    assert next(f for f in form.fields if f.name == "job_title").value == "Safeguarding Lead"
    turn = await chat.say(dict(RECIPIENT, email="info@northfield.nhs.uk"))
    assert turn.error and chat.question == "recipient"
    await chat.say(dict(RECIPIENT, phone="020 7946 0000 ext 123"))

    turn = await chat.say("too short")
    assert turn.error and chat.question == "purpose"
    await chat.say(PURPOSE)
    turn = await chat.say("not a basis")
    assert turn.error and chat.question == "lawful_basis"
    await chat.say("1")
    turn = await chat.say(dict(CONSENT, delete_after_use="no"))
    assert turn.error and chat.question == "consent"
    await chat.say(CONSENT)
    turn = await chat.say("carrier pigeon")
    assert turn.error and chat.question == "delivery"
    await chat.say("archive")
    turn = await chat.say("sms")  # a switchboard with an extension cannot take an SMS
    assert turn.error and "mobile" in turn.error and chat.question == "password_method"
    await chat.say("voice")
    for when, why in (("yesterday at noon", "could not read"),
                      ("2026-11-23 09:35", "too soon"),
                      ("2026-11-28 10:00", "Calls are only made"),   # Saturday
                      ("2026-11-24 18:30", "Calls are only made"),
                      ("2027-06-01 10:00", "too far")):
        turn = await chat.say(when)
        assert turn.error and chat.question == "call_time", when
        assert why.lower() in turn.error.lower(), (when, turn.error)
    await chat.say("2026-11-24 14:30")
    assert chat.question == "confirm"
    assert "Tue 24 Nov 2026 14:30" in chat.text


async def test_public_allows_webmail_but_controlled_refuses(services: Services,
                                                            conversation: Any,
                                                            make_file: Any) -> None:
    chat = conversation()
    await chat.send_files(make_file("leaflet.pdf"))
    await chat.say("PUBLIC")
    await chat.say(CATEGORIES)
    turn = await chat.say(dict(RECIPIENT, email="someone@gmail.com"))
    assert turn.error is None and chat.question == "purpose"


async def test_back_and_cancel_anywhere(services: Services, conversation: Any,
                                        make_file: Any) -> None:
    chat = conversation()
    await chat.send_files(make_file("a.pdf"))
    ref = reference_of(chat)
    await chat.say("CONTROLLED")
    await chat.say(CATEGORIES)
    await chat.say(RECIPIENT)
    assert chat.question == "purpose"
    await chat.say("back")
    form = chat.pending
    assert isinstance(form, Form) and form.question == "recipient"
    assert {f.name: f.value for f in form.fields}["email"] == "priya.shah@nhs.net"
    await chat.say("back")
    assert chat.question == "information_categories"
    ticked = chat.pending
    assert isinstance(ticked, Choice) and ticked.chosen == ("contact-details", "other-personal")
    await chat.say("back")
    assert chat.question == "classification"
    await chat.say("back")
    assert chat.question == "files"
    await chat.say("continue")
    assert chat.question == "classification"
    assert not any(services.settings.uploads_dir.rglob("*.bin"))  # sealed, not kept here
    assert len(await upload_objects(services)) == 1
    await chat.cancel()
    assert "cancelled" in chat.text
    assert await upload_objects(services) == []
    assert (await transfer(services, ref)).status == "cancelled"
    turn = await chat.say("anything")
    assert "Send me the file" in chat.text and turn.error is None


async def test_files_join_within_window_and_are_checked(services: Services, conversation: Any,
                                                        make_file: Any, clock: Clock) -> None:
    chat = conversation()
    turn = await chat.send_files(make_file("empty.pdf", b""), make_file("tool.exe", b"MZ" +
                                                                         b"\0" * 200))
    assert turn.error and "No transfer" not in chat.text
    assert chat.question is None and not any(services.settings.uploads_dir.rglob("*.bin"))
    await chat.send_files(make_file("one.pdf"))
    ref = reference_of(chat)
    clock.advance(seconds=30)
    await chat.send_files(make_file("two.txt"), make_file("disguised.pdf", b"MZ" + b"\0" * 99))
    assert reference_of(chat) == ref and "2 files" in chat.text
    assert "Not accepted" in chat.text
    await chat.say("CONTROLLED")
    await chat.say(CATEGORIES)
    await chat.say(RECIPIENT)
    clock.advance(minutes=10)
    await chat.send_files(make_file("late.pdf"))
    assert "past the point where files can be added" in chat.text
    assert chat.question is None
    async with services.db.read() as s:
        t = await s.get(Transfer, ref)
        assert t is not None and t.file_count == 2


async def test_recipient_used_before_is_offered_with_every_detail(services: Services,
                                                                   conversation: Any,
                                                                   make_file: Any) -> None:
    chat = conversation()
    await chat.send_files(make_file("a.pdf"))
    await answer_all(chat, recipient=dict(RECIPIENT, department="Children's Safeguarding"))
    await chat.say("confirm")
    await chat.send_files(make_file("b.pdf"))
    await chat.say("CONTROLLED")
    await chat.say(CATEGORIES)
    pick = chat.pending
    assert isinstance(pick, Choice) and pick.question == "recipient_pick"
    assert "Priya Shah, Safeguarding Lead (Children's Safeguarding), Northfield NHS Trust" \
        in pick.options[0].label
    await chat.say("1")
    form = chat.pending
    assert isinstance(form, Form)
    values = {f.name: f.value for f in form.fields}
    assert values == {"name": "Priya Shah", "job_title": "Safeguarding Lead",
                      "department": "Children's Safeguarding",
                      "organisation": "Northfield NHS Trust", "email": "priya.shah@nhs.net",
                      "phone": "+44 7911 123456"}
    assert "latest details" in form.intro
    await chat.say(values)
    assert chat.question == "purpose"


async def test_restricted_needs_approval_and_approver_sees_summary_not_files(
        services: Services, conversation: Any, make_file: Any) -> None:
    chat = conversation("console:alice")
    await chat.send_files(make_file("case.pdf"))
    ref = reference_of(chat)
    await answer_all(chat, classification="RESTRICTED", password="sms-on-receipt")
    assert "needed from console:manager" in chat.text
    await chat.say("confirm")
    assert "needs authorising" in chat.text
    assert (await transfer(services, ref)).status == "awaiting_approval"
    notifier: Any = services.notifier
    request = notifier.for_user("console:manager")
    assert any(isinstance(r, ApprovalRequest) and r.question == f"approval:{ref}"
               for r in request)
    assert not any(isinstance(r, FileReply) for r in request)

    assert "cannot authorise your own" in (await approvals.decide(
        services, approver_id="console:alice", reference=ref, approve=True))[0].text
    assert "cannot find" in (await approvals.decide(  # as for a made-up reference
        services, approver_id="console:mallory", reference=ref, approve=True))[0].text
    assert "reason" in (await approvals.decide(
        services, approver_id="console:manager", reference=ref, approve=False))[0].text
    assert (await transfer(services, ref)).status == "awaiting_approval"

    replies = await approvals.decide(services, approver_id="console:manager", reference=ref,
                                     approve=True)
    assert "approved" in replies[0].text
    again = await approvals.decide(services, approver_id="console:manager", reference=ref,
                                   approve=True)
    assert "already" in again[0].text
    to_alice = notifier.for_user("console:alice")
    assert any(isinstance(r, FileReply) for r in to_alice)
    row = await transfer(services, ref)
    assert row.status == "ready" and row.authorised_by == "console:manager"
    assert row.password_sealed is not None  # held until receipt is confirmed

    chat2 = conversation("console:alice")
    await chat2.say(f"received {ref}")
    assert "texted" in chat2.text
    assert (await transfer(services, ref)).password_sealed is None
    acts = await actions(services, ref)
    assert acts.count("approval_decided") == 1 and "receipt_confirmed" in acts


async def test_rejection_deletes_files_and_tells_sender(services: Services, conversation: Any,
                                                         make_file: Any) -> None:
    chat = conversation("console:alice")
    await chat.send_files(make_file("case.pdf"))
    ref = reference_of(chat)
    await answer_all(chat, classification="RESTRICTED", password="sms-on-receipt")
    await chat.say("confirm")
    assert len(await upload_objects(services)) == 1
    await approvals.decide(services, approver_id="console:manager", reference=ref,
                           approve=False, reason="Not proportionate: send a summary instead")
    assert await upload_objects(services) == []
    assert "plaintext_deleted" in await actions(services, ref)
    assert (await transfer(services, ref)).status == "rejected"
    notifier: Any = services.notifier
    texts = " ".join(getattr(r, "text", "") for r in notifier.for_user("console:alice"))
    assert "Not proportionate" in texts


async def test_approval_expires_and_sender_is_told(services: Services, conversation: Any,
                                                   make_file: Any, clock: Clock) -> None:
    chat = conversation("console:alice")
    await chat.send_files(make_file("case.pdf"))
    ref = reference_of(chat)
    await answer_all(chat, classification="RESTRICTED", password="sms-on-receipt")
    await chat.say("confirm")
    clock.advance(hours=23)
    assert await housekeeping.expire_approvals(services) == 0
    clock.advance(hours=2)
    assert await housekeeping.expire_approvals(services) == 1
    assert (await transfer(services, ref)).status == "expired"
    notifier: Any = services.notifier
    assert any("expired" in getattr(r, "text", "") for r in notifier.for_user("console:alice"))
    late = await approvals.decide(services, approver_id="console:manager", reference=ref,
                                  approve=True)
    assert "not waiting for approval" in late[0].text
    assert not any(services.settings.uploads_dir.rglob("*.bin"))
    assert await upload_objects(services) == []


async def test_controlled_outside_sharing_agreement_needs_approval(services: Services,
                                                                   conversation: Any,
                                                                   make_file: Any) -> None:
    chat = conversation("console:alice")
    await chat.send_files(make_file("a.pdf"))
    await answer_all(chat, recipient=dict(RECIPIENT, email="p.shah@northfield-law.co.uk",
                                          organisation="Northfield Solicitors"))
    await chat.say("confirm")
    assert "needs authorising" in chat.text


async def test_restart_mid_conversation_continues(settings: Any, policy: Any, clock: Clock,
                                                  services: Services, make_file: Any) -> None:
    chat = Conversation(services, "console:alice")
    await chat.send_files(make_file("a.pdf"))
    await chat.say("CONTROLLED")
    await services.db.close()

    from store.db import Database

    services.db = Database(settings.database_url)  # a new process, same store
    chat2 = Conversation(services, "console:alice")
    await chat2.say("status")
    assert chat2.question == "information_categories"
    await chat2.say(CATEGORIES)
    assert chat2.question == "recipient"
    await chat2.say(RECIPIENT)
    assert chat2.question == "purpose"


async def test_concurrent_answers_apply_once(services: Services, conversation: Any,
                                             make_file: Any) -> None:
    chat = conversation()
    await chat.send_files(make_file("a.pdf"))
    a = Conversation(services, chat.user_id)
    b = Conversation(services, chat.user_id)
    turns = await asyncio.gather(
        a.event(Answer("CONTROLLED", "classification")),
        b.event(Answer("RESTRICTED", "classification")),
    )
    errors = [t.error for t in turns]
    assert sum(e is None for e in errors) == 1, errors
    ref = reference_of(chat)
    answered = [a for a in await actions(services, ref) if a == "answered"]
    assert len(answered) == 1


async def test_double_click_on_confirm_submits_once(services: Services, conversation: Any,
                                                    make_file: Any) -> None:
    chat = conversation()
    await chat.send_files(make_file("a.pdf"))
    ref = reference_of(chat)
    await answer_all(chat)
    await asyncio.gather(chat.event(Answer("confirm", "confirm")),
                         Conversation(services, chat.user_id).event(Answer("confirm",
                                                                           "confirm")))
    acts = await actions(services, ref)
    assert acts.count("confirmed") == 1 and acts.count("packaged") == 1
    assert acts.count("password_delivered") == 1


async def test_voice_call_waits_for_agreed_time(services: Services, conversation: Any,
                                                make_file: Any, clock: Clock) -> None:
    chat = conversation()
    await chat.send_files(make_file("a.pdf"))
    ref = reference_of(chat)
    await answer_all(chat, password="voice", call_at="2026-11-24 10:00")
    await chat.say("confirm")
    assert "I will phone" in chat.text
    code = (await transfer(services, ref)).call_code
    assert code and f"key in the code {code}" in chat.text
    clock.advance(days=1)  # Tue 09:30, half an hour before: only the heads-up SMS goes
    await dispatch.run_due(services)
    heads_up = services.settings.outbox_path.read_text()
    assert "automated call at 10:00" in heads_up and "voice call" not in heads_up
    assert (await transfer(services, ref)).password_sealed is not None
    clock.advance(minutes=31)
    await dispatch.run_due(services)
    outbox = services.settings.outbox_path.read_text()
    assert "voice call to +447911123456" in outbox
    script = outbox.split("voice call to", 1)[1]
    password_at = script.index("I will spell it slowly")
    assert script.index("key in the six digit code") < password_at
    notifier: Any = services.notifier
    assert any("read out in a call" in getattr(r, "text", "")
               for r in notifier.for_user("console:alice"))
    async with services.db.read() as s:
        d = (await s.scalars(select(PasswordSend).where(PasswordSend.reference == ref,
                                                        PasswordSend.kind == "voice"))).one()
    assert d.status == "delivered" and d.attempts == 1


async def test_commands_help_list_status_cancel(services: Services, conversation: Any,
                                                make_file: Any) -> None:
    alice = conversation("console:alice")
    await alice.say("help")
    assert "Send me one or more files" in alice.text
    await alice.say("list")
    assert "no transfers" in alice.text
    await alice.send_files(make_file("a.pdf"))
    ref = reference_of(alice)
    await answer_all(alice, classification="RESTRICTED", password="sms-on-receipt")
    await alice.say("confirm")
    await alice.say("list")
    assert ref in alice.text and "waiting for approval" in alice.text
    bob = conversation("console:bob")
    await bob.say(f"cancel {ref}")
    assert "cannot find" in bob.text  # as for a made-up reference
    await bob.say(f"status {ref}")
    assert "cannot find" in bob.text
    await alice.say(f"status {ref}")
    assert "approval: pending" in alice.text
    await alice.cancel(ref)
    assert "cancelled" in alice.text
    assert (await transfer(services, ref)).status == "cancelled"


async def test_abandoned_draft_expires(services: Services, conversation: Any,
                                       make_file: Any, clock: Clock) -> None:
    chat = conversation()
    await chat.send_files(make_file("a.pdf"))
    ref = reference_of(chat)
    clock.advance(hours=25)
    assert await housekeeping.expire_drafts(services) == 1
    assert (await transfer(services, ref)).status == "expired"
    assert not any(services.settings.uploads_dir.rglob("*.bin"))
    assert await upload_objects(services) == []
    await chat.say("status")
    assert "Send me the file" in chat.text


async def test_approval_decision_event_type_is_neutral() -> None:
    decision = ApprovalDecision("SH-AAAA-22", approve=False, reason="no")
    assert decision.reason == "no" and not decision.approve


def test_no_platform_types_in_core() -> None:
    root = Path(__file__).resolve().parents[2]
    for folder in ("bot", "handlers"):
        for path in (root / folder).rglob("*.py"):
            text = path.read_text()
            for sdk in ("slack_bolt", "slack_sdk", "botbuilder", "twilio"):
                assert f"import {sdk}" not in text and f"from {sdk}" not in text, path


async def test_archive_again_only_for_the_sender_while_ready(services: Services,
                                                             conversation: Any,
                                                             make_file: Any) -> None:
    alice = conversation("console:alice")
    await alice.send_files(make_file("a.pdf"))
    ref = reference_of(alice)
    await alice.say(f"archive {ref}")
    assert "no archive to send again" in alice.text  # a draft: no archive yet
    await answer_all(alice)
    await alice.say("confirm")
    first = next(r for r in alice.last.replies if isinstance(r, FileReply))
    await alice.say(f"archive {ref.lower()}")
    again = [r for r in alice.last.replies if isinstance(r, FileReply)]
    assert [r.key for r in again] == [first.key] and "the encrypted archive again" in \
        alice.text
    bob = conversation("console:bob")
    await bob.say(f"archive {ref}")
    assert "cannot find" in bob.text and not any(
        isinstance(r, FileReply) for r in bob.last.replies)
    async with services.db.read() as s:
        actions = (await s.scalars(select(AuditRecord.action).where(
            AuditRecord.reference == ref))).all()
    assert actions.count("archive_resent") == 1
    await alice.cancel(ref)
    await alice.say(f"archive {ref}")
    assert "no archive to send again" in alice.text


async def test_an_sms_a_turn_sends_itself_is_left_to_it_by_the_scheduler(
        services: Services, conversation: Any, make_file: Any, clock: Clock) -> None:
    """The scheduler in the same process must not send the SMS a turn has just made due
    and is about to send itself: the receipt would reach the sender before the archive."""
    alice = conversation("console:alice")
    await alice.send_files(make_file("a.pdf"))
    ref = reference_of(alice)
    await answer_all(alice, password="sms-on-receipt")
    await alice.say("confirm")
    assert await scheduling.release_on_receipt(services, reference=ref, actor="console:alice",
                                             source="sender")
    assert await dispatch.run_due(services) == []  # the scheduler's pass: not its to send
    outbox = services.settings.outbox_path
    assert not outbox.exists() or f"password for {ref}" not in outbox.read_text()
    replies = await dispatch.run_due(services, reference=ref)  # the turn's own send
    assert any("texted" in getattr(r, "text", "") for r in replies)
    assert outbox.read_text().count(f"password for {ref}") == 1

    # Had the turn's process died before sending, the scheduler sends it after the grace.
    bob = conversation("console:bob")
    await bob.send_files(make_file("b.pdf"))
    ref_b = reference_of(bob)
    await answer_all(bob, password="sms-on-receipt")
    await bob.say("confirm")
    assert await scheduling.release_on_receipt(services, reference=ref_b, actor="console:bob",
                                             source="sender")
    await dispatch.run_due(services)
    assert f"password for {ref_b}" not in outbox.read_text()
    clock.advance(seconds=dispatch.INLINE_GRACE.total_seconds() + 1)
    await dispatch.run_due(services)
    assert outbox.read_text().count(f"password for {ref_b}") == 1
