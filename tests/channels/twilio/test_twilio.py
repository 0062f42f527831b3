"""Twilio delivery end to end: a fake Twilio REST API, genuinely signed webhooks, the call
script, retries, dead letters, restarts, several workers on PostgreSQL, and sends Twilio may
have taken without saying so (answered after our timeout): adopted by callback or by asking
Twilio, never sent twice."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from bot.app.web import create_app
from bot.passwords import spell_for_voice
from channels.twilio.settings import TwilioSettings, load_twilio_settings
from channels.twilio.transport import TwilioTransport
from channels.twilio.webhooks import mount_twilio
from handlers.password_sends import callbacks, dispatch, reconcile
from handlers.services import Services
from store.db import Database
from store.models import AuditRecord, PasswordSend, SmsOptOut, Transfer
from tests.support.core import RECIPIENT, Clock, Conversation, answer_all
from tests.support.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, seed_due_sms

PUBLIC = "https://safehaven.example.gov.uk"
CHAT: list[str] = []  # what the sender saw in their own turns (receipts for their transfer)


@pytest.fixture
async def fake(clock: Clock) -> AsyncIterator[FakeTwilio]:
    CHAT.clear()
    server = await FakeTwilio(clock=clock).start()
    yield server
    await server.close()


@pytest.fixture
def twilio_settings(fake: FakeTwilio) -> TwilioSettings:
    settings = load_twilio_settings({
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": "+441632960001", "SAFEHAVEN_PUBLIC_URL": PUBLIC,
        "TWILIO_API_URL": fake.url})
    assert settings is not None
    return settings


@pytest.fixture
async def tw(services: Services, twilio_settings: TwilioSettings) -> AsyncIterator[Services]:
    transport = TwilioTransport(twilio_settings)
    services.transport = transport
    yield services
    await transport.close()


@pytest.fixture
async def client(tw: Services, twilio_settings: TwilioSettings) -> AsyncIterator[TestClient]:
    app = create_app(tw, migrate=False, scheduler=False)
    mount_twilio(app, tw, twilio_settings)
    async with TestClient(TestServer(app)) as c:
        yield c


async def post_signed(client: TestClient, path: str, form: dict[str, str], *,
                      signature: str | None = None) -> Any:
    sig = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC + path, form)
    headers = {"X-Twilio-Signature": sig if signature is None else signature}
    return await client.post(path, data=form, headers=headers)


async def share(tw: Services, **kwargs: Any) -> str:
    chat = Conversation(tw, "console:alice")
    path = tw.settings.var_dir.parent / "case.pdf"
    path.write_bytes(b"%PDF-1.4\n%%EOF\n")
    await chat.send_files(path)
    ref = re.search(r"SH-[0-9A-Z]{4}-[0-9A-Z]{2}", chat.text)
    assert ref
    await answer_all(chat, **kwargs)
    await chat.say("confirm")
    CHAT.append(chat.text)
    return ref.group(0)


async def row(tw: Services, ref: str, kind: str = "sms") -> PasswordSend:
    async with tw.db.read() as s:
        d = (await s.scalars(select(PasswordSend).where(PasswordSend.reference == ref,
                                                        PasswordSend.kind == kind))).one()
    return d


async def sealed(tw: Services, ref: str) -> str | None:
    async with tw.db.read() as s:
        t = await s.get(Transfer, ref)
    assert t is not None
    return t.password_sealed


def receipts(tw: Services, user: str = "console:alice") -> str:
    notifier: Any = tw.notifier
    return " ".join([*CHAT, *(getattr(r, "text", "") for r in notifier.for_user(user))])


async def test_sms_sent_then_delivered_by_signed_callback(tw: Services, fake: FakeTwilio,
                                                          client: TestClient) -> None:
    ref = await share(tw)
    assert len(fake.messages) == 1
    sms = fake.messages[0]
    assert sms["To"] == "+447911123456" and sms["From"] == "+441632960001"
    d = await row(tw, ref)
    status_path = f"/twilio/sms/status?d={d.id}"  # the delivery id rides in the URL
    assert ref in sms["Body"] and sms["StatusCallback"] == PUBLIC + status_path
    password = re.search(r"is (\S+) \.", sms["Body"])
    assert password and "case.pdf" not in sms["Body"] and "CONTROLLED" not in sms["Body"]
    assert d.status == "sent" and d.provider_sid == sms["Sid"]
    assert await sealed(tw, ref) is not None

    form = {"MessageSid": sms["Sid"], "MessageStatus": "delivered", "AccountSid": ACCOUNT_SID}
    for bad in ("", "bm90LWEtc2lnbmF0dXJl"):
        resp = await post_signed(client, status_path, form, signature=bad)
        assert resp.status == 403
    assert (await row(tw, ref)).status == "sent"
    forged = dict(form, MessageStatus="failed")
    resp = await client.post(status_path, data=forged, headers={
        "X-Twilio-Signature": RequestValidator(AUTH_TOKEN).compute_signature(
            PUBLIC + status_path, form)})
    assert resp.status == 403
    # The query string is signed too: a signature over another delivery's URL, or over the
    # URL without it, does not let a request name this delivery.
    for signed_for in ("/twilio/sms/status", f"/twilio/sms/status?d={d.id + 1}"):
        resp = await client.post(status_path, data=form, headers={
            "X-Twilio-Signature": RequestValidator(AUTH_TOKEN).compute_signature(
                PUBLIC + signed_for, form)})
        assert resp.status == 403
    assert (await row(tw, ref)).status == "sent"

    resp = await post_signed(client, status_path, form)
    assert resp.status == 204
    assert (await row(tw, ref)).status == "delivered"
    assert await sealed(tw, ref) is None
    assert "the password was texted" in receipts(tw)


async def test_transient_errors_retry_with_backoff_then_send(tw: Services, fake: FakeTwilio,
                                                             clock: Clock) -> None:
    fake.fail_next(500)
    fake.fail_next(429, 20429, "Too Many Requests")
    ref = await share(tw)
    d = await row(tw, ref)
    assert d.status == "due" and d.attempts == 1 and not fake.messages
    await dispatch.run_due(tw)
    assert (await row(tw, ref)).attempts == 1  # not due yet: backoff
    clock.advance(seconds=31)
    await dispatch.run_due(tw)
    d = await row(tw, ref)
    assert d.status == "due" and d.attempts == 2
    clock.advance(seconds=61)
    await dispatch.run_due(tw)
    assert (await row(tw, ref)).status == "sent" and len(fake.messages) == 1
    async with tw.db.read() as s:
        retries = await s.scalar(select(func.count()).select_from(AuditRecord).where(
            AuditRecord.reference == ref, AuditRecord.action == "password_retry"))
    assert retries == 2


QUICK = 0.5  # the client's timeout in seconds where a test makes Twilio answer too late


@pytest.fixture
async def quick(services: Services, twilio_settings: TwilioSettings
                ) -> AsyncIterator[Services]:
    """Twilio-backed services whose client gives up on an answer after :data:`QUICK`."""
    transport = TwilioTransport(twilio_settings, timeout=QUICK)
    services.transport = transport
    yield services
    await transport.close()


@pytest.fixture
async def quick_client(quick: Services, twilio_settings: TwilioSettings
                       ) -> AsyncIterator[TestClient]:
    app = create_app(quick, migrate=False, scheduler=False)
    mount_twilio(app, quick, twilio_settings)
    async with TestClient(TestServer(app)) as c:
        yield c


async def actions(tw: Services, ref: str) -> list[str]:
    async with tw.db.read() as s:
        return list((await s.scalars(select(AuditRecord.action).where(
            AuditRecord.reference == ref).order_by(AuditRecord.seq))).all())


async def audit_details(tw: Services, ref: str, action: str) -> list[dict[str, Any]]:
    async with tw.db.read() as s:
        return [dict(x) for x in (await s.scalars(select(AuditRecord.details).where(
            AuditRecord.reference == ref, AuditRecord.action == action)
            .order_by(AuditRecord.seq))).all()]


def test_failures_are_told_apart_by_whether_twilio_can_have_taken_the_message() -> None:
    """Certainly not sent (cannot connect; Twilio said no): ``failed``, retried when
    transient. Possibly taken (no answer after sending, dropped or garbled answer):
    ``unconfirmed``, never retried blindly."""
    import ssl

    import aiohttp
    from aiohttp.client_reqrep import ConnectionKey
    from twilio.base.exceptions import TwilioRestException

    from channels.twilio.transport import _outcome

    key = ConnectionKey("api.twilio.com", 443, True, True, None, None, None)
    refused = ConnectionRefusedError(111, "Connection refused")
    not_sent = [aiohttp.ClientConnectorError(key, refused),
                aiohttp.ClientConnectorDNSError(key, OSError(-2, "Name or service not known")),
                aiohttp.ClientConnectorCertificateError(key, ssl.SSLCertVerificationError()),
                aiohttp.ConnectionTimeoutError("Connection timeout to host")]
    for exc in not_sent:
        outcome = _outcome(exc)
        assert (outcome.status, outcome.retryable) == ("failed", True), exc
        assert "unreachable" in outcome.detail
    for status, retryable in ((500, True), (503, True), (429, True), (400, False),
                              (401, False), (404, False)):
        outcome = _outcome(TwilioRestException(status, "https://api.twilio.com", "no", 20000))
        assert (outcome.status, outcome.retryable) == ("failed", retryable), status
    ambiguous = [TimeoutError(), aiohttp.SocketTimeoutError("Timeout on reading data"),
                 aiohttp.ServerDisconnectedError(), aiohttp.ClientPayloadError("cut"),
                 aiohttp.ClientOSError(104, "Connection reset by peer"),
                 ValueError("Expecting value: line 1 column 1")]  # a 201 with a garbled body
    for exc in ambiguous:
        outcome = _outcome(exc)
        assert outcome.status == "unconfirmed" and not outcome.retryable, exc


async def test_late_answer_is_settled_by_the_signed_status_callback(
        quick: Services, fake: FakeTwilio, quick_client: TestClient, clock: Clock) -> None:
    """Twilio takes the SMS but answers after our timeout: no second SMS; the signed status
    callback (which names the delivery) adopts the message; the sender hears as usual."""
    fake.answer_late()
    ref = await share(quick)
    assert len(fake.messages) == 1  # Twilio has it; we never heard so
    d = await row(quick, ref)
    assert d.status == "unconfirmed" and d.attempts == 1 and d.provider_sid is None
    assert "will not send it twice" in receipts(quick)
    await dispatch.run_due(quick)  # not due for a check yet, and never re-sent
    assert len(fake.messages) == 1 and not fake.lookups

    sms = fake.messages[0]
    callback = sms["StatusCallback"]
    assert callback == f"{PUBLIC}/twilio/sms/status?d={d.id}"
    path = callback.removeprefix(PUBLIC)
    stranger = {"MessageSid": "SM" + "f" * 32, "MessageStatus": "sent",
                "To": "+447700900999"}  # another number: not this delivery's message
    assert (await post_signed(quick_client, path, stranger)).status == 204
    assert (await row(quick, ref)).status == "unconfirmed"

    form = {"MessageSid": sms["Sid"], "MessageStatus": "sent", "To": sms["To"],
            "AccountSid": ACCOUNT_SID}
    assert (await post_signed(quick_client, path, form)).status == 204
    d = await row(quick, ref)
    assert d.status == "sent" and d.provider_sid == sms["Sid"]
    assert "is with the network" in receipts(quick)
    sent = await audit_details(quick, ref, "password_sent")
    assert sent[-1]["confirmed_by"] == "status callback"
    assert sent[-1]["provider_id"] == sms["Sid"]

    resp = await post_signed(quick_client, path, dict(form, MessageStatus="delivered"))
    assert resp.status == 204
    assert (await row(quick, ref)).status == "delivered"
    assert await sealed(quick, ref) is None
    assert "the password was texted" in receipts(quick)
    clock.advance(minutes=reconcile.UNCONFIRMED_WAIT.total_seconds() / 60 + 1)
    await dispatch.run_due(quick)
    assert len(fake.messages) == 1 and fake.sent_to(ref) == 1 and not fake.lookups
    assert ["password_unconfirmed", "sms_status", "password_sent", "sms_status",
            "password_delivered"] == [a for a in await actions(quick, ref) if a in (
                "password_unconfirmed", "sms_status", "password_sent", "password_delivered",
                "password_retry")]


async def test_callback_overtaking_twilio_s_late_answer_is_adopted(
        tw: Services, fake: FakeTwilio, client: TestClient, clock: Clock) -> None:
    """Twilio's status callback arrives while we are still waiting for its answer to the
    create request (the row is ``sending``): it adopts the message; recording the attempt
    (the answer never comes: the connection drops) then leaves the row alone."""
    fake.answer_late()
    sharing = asyncio.create_task(share(tw))
    await fake.wait_accepted(1)
    sms = fake.messages[0]
    path = sms["StatusCallback"].removeprefix(PUBLIC)
    ref = re.findall(r"SH-[0-9A-Z]{4}-[0-9A-Z]{2}", sms["Body"])[0]
    assert (await row(tw, ref)).status == "sending"
    resp = await post_signed(client, path, {"MessageSid": sms["Sid"], "To": sms["To"],
                                            "MessageStatus": "sent"})
    assert resp.status == 204
    assert (await row(tw, ref)).status == "sent"
    fake.release_held()
    assert await sharing == ref
    d = await row(tw, ref)
    assert d.status == "sent" and d.provider_sid == sms["Sid"]
    assert "password_unconfirmed" not in await actions(tw, ref)
    assert "is with the network" in receipts(tw)
    clock.advance(hours=1)
    await dispatch.run_due(tw)
    assert len(fake.messages) == 1 and not fake.lookups


async def test_late_answer_without_callback_is_found_by_asking_twilio(
        quick: Services, fake: FakeTwilio, clock: Clock) -> None:
    """No callback comes: after the wait the scheduler lists Twilio's messages to the
    number since the attempt, finds it and adopts it: exactly one SMS, delivery sent."""
    fake.answer_late()
    ref = await share(quick)
    d = await row(quick, ref)
    assert d.status == "unconfirmed" and len(fake.messages) == 1
    clock.advance(seconds=reconcile.UNCONFIRMED_WAIT.total_seconds() - 1)
    await dispatch.run_due(quick)
    assert not fake.lookups  # still waiting for the callback
    clock.advance(seconds=2)
    await dispatch.run_due(quick)
    assert len(fake.lookups) == 1
    lookup = fake.lookups[0]
    assert lookup["kind"] == "messages" and lookup["To"] == "+447911123456"
    assert "DateSent>" not in lookup  # a message still queued at Twilio has no send date
    d = await row(quick, ref)
    assert d.status == "sent" and d.provider_sid == fake.messages[0]["Sid"]
    assert len(fake.messages) == 1 and fake.sent_to(ref) == 1
    checked = await audit_details(quick, ref, "password_checked")
    assert [c["result"] for c in checked] == ["found"]
    assert (await audit_details(quick, ref, "password_sent"))[-1]["confirmed_by"] == \
        "provider list"
    assert "is with the network" in receipts(quick)

    # Twilio's later callbacks match on the adopted id as for any sent message.
    ok = await callbacks.sms_status(quick, provider_sid=fake.messages[0]["Sid"],
                                   status="delivered")
    assert ok and (await row(quick, ref)).status == "delivered"
    clock.advance(hours=1)
    await dispatch.run_due(quick)
    assert len(fake.messages) == 1 and len(fake.lookups) == 1


async def test_connection_dropped_after_twilio_took_it_is_found_not_resent(
        tw: Services, fake: FakeTwilio, clock: Clock) -> None:
    """The connection closes mid-answer (no timing involved): unconfirmed, then found."""
    fake.drop_after_accepting()
    ref = await share(tw)
    assert (await row(tw, ref)).status == "unconfirmed" and len(fake.messages) == 1
    clock.advance(minutes=10)
    await dispatch.run_due(tw)
    assert (await row(tw, ref)).status == "sent" and len(fake.messages) == 1


async def test_connection_refused_is_retried_and_sent_once(tw: Services, fake: FakeTwilio,
                                                           clock: Clock) -> None:
    """Nothing reached Twilio: an ordinary retry, no waiting, no lookup."""
    await fake.close()
    ref = await share(tw)
    d = await row(tw, ref)
    assert d.status == "due" and d.attempts == 1 and "unreachable" in (d.last_error or "")
    await fake.restart()
    clock.advance(seconds=31)
    await dispatch.run_due(tw)
    d = await row(tw, ref)
    assert d.status == "sent" and d.attempts == 2, (d.status, d.attempts, d.last_error)
    assert len(fake.messages) == 1 and not fake.lookups
    assert "password_unconfirmed" not in await actions(tw, ref)


async def test_unconfirmed_and_not_at_twilio_is_retried_once(quick: Services,
                                                             fake: FakeTwilio,
                                                             clock: Clock) -> None:
    """Our timeout ran out before Twilio took it: the list shows nothing, so it is safe to
    retry, once, as normal: one SMS in all."""
    fake.stall_next()
    ref = await share(quick)
    d = await row(quick, ref)
    assert d.status == "unconfirmed" and not fake.messages
    assert "TimeoutError" in (d.last_error or "")
    clock.advance(seconds=reconcile.UNCONFIRMED_WAIT.total_seconds())
    await dispatch.run_due(quick)
    d = await row(quick, ref)
    assert d.status == "due" and d.attempts == 1 and len(fake.lookups) == 1
    assert "no record of it" in (d.last_error or "") and "trying again" in receipts(quick)
    assert [c["result"] for c in await audit_details(quick, ref, "password_checked")] == \
        ["not found"]
    clock.advance(seconds=31)
    await dispatch.run_due(quick)
    d = await row(quick, ref)
    assert d.status == "sent" and d.attempts == 2
    assert len(fake.messages) == 1 and fake.sent_to(ref) == 1 and len(fake.lookups) == 1
    assert len(await audit_details(quick, ref, "password_retry")) == 1


async def test_unconfirmed_and_twilio_cannot_be_asked_is_reported_never_resent(
        quick: Services, fake: FakeTwilio, clock: Clock) -> None:
    """Twilio took it, answered late, and the list fails too: reported like an interrupted
    send (the sender told it cannot be known, and how to book a call); never sent again."""
    fake.answer_late()
    fake.fail_lists(503)
    ref = await share(quick)
    clock.advance(minutes=6)
    await dispatch.run_due(quick)
    d = await row(quick, ref)
    assert d.status == "interrupted" and len(fake.lookups) == 1
    told = receipts(quick)
    assert "cannot tell whether it arrived" in told and f"call {ref} YYYY-MM-DD" in told
    checked = await audit_details(quick, ref, "password_checked")
    assert [c["result"] for c in checked] == ["could not ask"]
    assert checked[0]["error"].startswith("Twilio")  # the SDK's error for the 503
    assert len(await audit_details(quick, ref, "password_interrupted")) == 1
    for _ in range(3):
        clock.advance(hours=1)
        await dispatch.recover_interrupted(quick)
        await dispatch.run_due(quick)
    assert len(fake.messages) == 1 and len(fake.lookups) == 1
    assert (await row(quick, ref)).status == "interrupted"
    assert await sealed(quick, ref) is not None  # kept, so `call REF …` can still read it


async def test_another_attempt_s_or_another_delivery_s_message_is_not_adopted(
        tw: Services, fake: FakeTwilio, client: TestClient, clock: Clock) -> None:
    """A callback for an earlier attempt, or for a message another delivery owns, does not
    settle an unconfirmed attempt; nor does the list's record of them."""
    first = await share(tw)  # sent normally, to the same number
    fake.fail_next(503)
    second = await share(tw)
    d2 = await row(tw, second)
    assert d2.status == "due"
    fake.drop_after_accepting()
    clock.advance(seconds=31)
    await dispatch.run_due(tw)
    d2 = await row(tw, second)
    assert d2.status == "unconfirmed" and d2.attempts == 2
    owned = (await row(tw, first)).provider_sid
    assert owned
    path = f"/twilio/sms/status?d={d2.id}"
    resp = await post_signed(client, path, {"MessageSid": owned, "MessageStatus": "delivered",
                                            "To": "+447911123456"})
    assert resp.status == 204
    assert (await row(tw, second)).status == "unconfirmed"
    assert (await row(tw, first)).status == "delivered"  # it was the first one's news
    # The list holds both messages; only the unowned one naming the reference is adopted.
    clock.advance(minutes=6)
    await dispatch.run_due(tw)
    d2 = await row(tw, second)
    assert d2.status == "sent" and d2.provider_sid == fake.messages[1]["Sid"]
    assert second in fake.messages[1]["Body"] and len(fake.messages) == 2


async def test_late_answer_to_a_call_is_adopted_by_the_answer_webhook(
        quick: Services, fake: FakeTwilio, quick_client: TestClient, clock: Clock) -> None:
    recipient = dict(RECIPIENT, phone="020 7946 0000")
    ref = await share(quick, recipient=recipient, password="voice", call_at="2026-11-24 10:00")
    fake.answer_late()
    clock.advance(days=1, minutes=31)
    await dispatch.run_due(quick)
    d = await row(quick, ref, "voice")
    assert d.status == "unconfirmed" and len(fake.calls) == 1
    sid, base = fake.calls[0]["Sid"], f"/twilio/voice/{d.id}"
    answer = await post_signed(quick_client, f"{base}/answer", {"CallSid": sid,
                                                                "AnsweredBy": "human"})
    assert "<Gather" in await answer.text()
    d = await row(quick, ref, "voice")
    assert d.status == "sent" and d.provider_sid == sid
    assert "calling +44 20 7946 0000 now" in receipts(quick)
    async with quick.db.read() as s:
        t = await s.get(Transfer, ref)
    assert t is not None and t.call_code and t.password_sealed
    first_phrase = spell_for_voice(quick.vault.open(t.password_sealed, reference=ref))[1]
    right = await post_signed(quick_client, f"{base}/code", {"CallSid": sid,
                                                             "Digits": t.call_code})
    assert first_phrase in await right.text()
    await post_signed(quick_client, f"{base}/status", {"CallSid": sid,
                                                       "CallStatus": "completed"})
    assert (await row(quick, ref, "voice")).status == "delivered"
    clock.advance(hours=1)
    await dispatch.run_due(quick)
    assert len(fake.calls) == 1 and not fake.lookups


async def test_unconfirmed_call_is_found_by_asking_twilio(quick: Services, fake: FakeTwilio,
                                                          clock: Clock) -> None:
    recipient = dict(RECIPIENT, phone="020 7946 0000")
    ref = await share(quick, recipient=recipient, password="voice", call_at="2026-11-24 10:00")
    fake.answer_late()
    clock.advance(days=1, minutes=31)
    await dispatch.run_due(quick)
    assert (await row(quick, ref, "voice")).status == "unconfirmed"
    sid = fake.calls[0]["Sid"]
    fake.status[sid] = "in-progress"
    clock.advance(minutes=6)
    await dispatch.run_due(quick)
    d = await row(quick, ref, "voice")
    assert d.status == "sent" and d.provider_sid == sid and len(fake.calls) == 1
    lookup = fake.lookups[0]
    assert lookup["kind"] == "calls" and lookup["To"] == "+442079460000"
    assert "StartTime>" not in lookup  # nor a call still queued or ringing a start time


async def test_invalid_number_is_not_retried_and_sender_told(tw: Services, fake: FakeTwilio,
                                                              clock: Clock) -> None:
    fake.fail_next(400, 21211, "The 'To' number is not a valid phone number.")
    ref = await share(tw)
    d = await row(tw, ref)
    assert d.status == "failed" and d.attempts == 1
    clock.advance(hours=1)
    await dispatch.run_due(tw)
    assert not fake.messages
    assert "not a valid phone number" in receipts(tw)
    async with tw.db.read() as s:
        audit_text = str((await s.scalars(select(AuditRecord.details).where(
            AuditRecord.reference == ref, AuditRecord.action == "password_failed"))).all())
    assert "21211" in audit_text


async def test_dead_letter_after_policy_attempts(tw: Services, fake: FakeTwilio,
                                                 clock: Clock) -> None:
    fake.fail_next(503, times=10)
    ref = await share(tw)
    for _ in range(6):
        clock.advance(minutes=10)
        await dispatch.run_due(tw)
    d = await row(tw, ref)
    assert d.status == "dead" and d.attempts == tw.policy.delivery.max_attempts
    assert not fake.messages


async def test_call_script_right_code(tw: Services, fake: FakeTwilio, client: TestClient,
                                      clock: Clock) -> None:
    recipient = dict(RECIPIENT, phone="020 7946 0000 ext 123")
    ref = await share(tw, recipient=recipient, password="voice", call_at="2026-11-24 10:00")
    clock.advance(days=1, minutes=31)
    await dispatch.run_due(tw)
    assert len(fake.calls) == 1 and not fake.messages  # no heads-up SMS to a landline
    call = fake.calls[0]
    d = await row(tw, ref, "voice")
    assert call["To"] == "+442079460000" and call["SendDigits"] == "wwww123"
    # No answering-machine detection on a switchboard: its greeting is not the recipient.
    assert "MachineDetection" not in call and "AsyncAmd" not in call
    assert call["Url"] == f"{PUBLIC}/twilio/voice/{d.id}/answer"
    sid = call["Sid"]
    base = f"/twilio/voice/{d.id}"

    answer = await post_signed(client, f"{base}/answer", {"CallSid": sid, "AnsweredBy": "human"})
    twiml = await answer.text()
    assert "<Gather" in twiml and "Example County Council" in twiml
    assert 'language="en-GB"' in twiml

    async with tw.db.read() as s:
        t = await s.get(Transfer, ref)
    assert t is not None and t.call_code and t.password_sealed
    password = tw.vault.open(t.password_sealed, reference=ref)
    first_phrase = spell_for_voice(password)[1]

    other = await post_signed(client, f"{base}/code", {"CallSid": "CAother", "Digits": t.call_code})
    assert first_phrase not in await other.text()  # the right code, but not on this call
    right = await post_signed(client, f"{base}/code", {"CallSid": sid, "Digits": t.call_code})
    spoken = await right.text()
    assert first_phrase in spoken and "<Gather" in spoken
    again = await post_signed(client, f"{base}/repeat", {"CallSid": sid, "Digits": "1"})
    assert first_phrase in await again.text()
    stranger = await post_signed(client, f"{base}/repeat", {"CallSid": "CAx", "Digits": "1"})
    assert first_phrase not in await stranger.text()
    done = await post_signed(client, f"{base}/status", {"CallSid": sid,
                                                        "CallStatus": "completed"})
    assert done.status == 204
    assert (await row(tw, ref, "voice")).status == "delivered"
    assert await sealed(tw, ref) is None
    assert "read out in a call" in receipts(tw)


async def test_call_wrong_code_three_times_ends_call_and_alerts(
        tw: Services, fake: FakeTwilio, client: TestClient, clock: Clock) -> None:
    ref = await share(tw, password="voice", call_at="2026-11-24 10:00")
    clock.advance(days=1)
    await dispatch.run_due(tw)  # heads-up SMS only
    assert len(fake.messages) == 1 and "automated call at 10:00" in fake.messages[0]["Body"]
    clock.advance(minutes=31)
    await dispatch.run_due(tw)
    d = await row(tw, ref, "voice")
    sid, base = fake.calls[0]["Sid"], f"/twilio/voice/{d.id}"
    async with tw.db.read() as s:
        t = await s.get(Transfer, ref)
    assert t is not None and t.password_sealed
    password = tw.vault.open(t.password_sealed, reference=ref)
    bodies = []
    for digits in ("111111", "222222", "333333"):
        resp = await post_signed(client, f"{base}/code", {"CallSid": sid, "Digits": digits})
        bodies.append(await resp.text())
    assert "<Hangup" in bodies[-1] and "<Gather" in bodies[0]
    for body in bodies:
        for phrase in spell_for_voice(password)[:3]:
            assert phrase not in body
    late = await post_signed(client, f"{base}/code", {"CallSid": sid, "Digits": t.call_code})
    assert "<Hangup" in await late.text()
    assert (await row(tw, ref, "voice")).status == "failed"
    assert "wrong code 3 times" in receipts(tw)


async def test_machine_gets_nothing_then_no_answer_retries(tw: Services, fake: FakeTwilio,
                                                           client: TestClient,
                                                           clock: Clock) -> None:
    ref = await share(tw, password="voice", call_at="2026-11-24 10:00")
    clock.advance(days=1, minutes=31)
    await dispatch.run_due(tw)
    d = await row(tw, ref, "voice")
    sid, base = fake.calls[0]["Sid"], f"/twilio/voice/{d.id}"
    machine = await post_signed(client, f"{base}/answer", {"CallSid": sid,
                                                           "AnsweredBy": "machine_start"})
    body = await machine.text()
    assert "<Hangup" in body and "<Say" not in body
    await post_signed(client, f"{base}/status", {"CallSid": sid, "CallStatus": "completed",
                                                 "AnsweredBy": "machine_start"})
    d = await row(tw, ref, "voice")
    assert d.status == "due" and "answering machine" in receipts(tw)
    clock.advance(minutes=16)
    await dispatch.run_due(tw)
    assert len(fake.calls) == 2
    sid2 = fake.calls[1]["Sid"]
    await post_signed(client, f"{base}/status", {"CallSid": sid2, "CallStatus": "no-answer"})
    d = await row(tw, ref, "voice")
    assert d.status == "due" and d.attempts == 2 and "no answer" in receipts(tw)
    stale = await post_signed(client, f"{base}/status", {"CallSid": sid, "CallStatus": "busy"})
    assert stale.status == 204 and (await row(tw, ref, "voice")).attempts == 2


async def test_stop_and_call_replies(tw: Services, fake: FakeTwilio, client: TestClient,
                                     clock: Clock) -> None:
    resp = await post_signed(client, "/twilio/sms/inbound", {"From": "+447911123456",
                                                             "Body": "STOP"})
    assert resp.status == 200 and "<Response" in await resp.text()
    async with tw.db.read() as s:
        assert await s.get(SmsOptOut, "+447911123456") is not None
    ref = await share(tw)
    assert not fake.messages and (await row(tw, ref)).status == "failed"
    assert "opted out" in receipts(tw)
    await post_signed(client, "/twilio/sms/inbound", {"From": "+447911123456", "Body": "start"})
    ref2 = await share(tw)
    assert len(fake.messages) == 1
    await post_signed(client, "/twilio/sms/inbound", {"From": "+447911123456", "Body": "Call"})
    assert f"type `call {ref2}" in receipts(tw)
    chat = Conversation(tw, "console:alice")
    await chat.say(f"call {ref2} 2026-11-24 11:00")
    assert "I will phone" in chat.text
    assert (await row(tw, ref2, "voice")).status == "due"


async def test_restart_with_deliveries_due_sends_each_once(tw: Services, fake: FakeTwilio,
                                                           settings: Any,
                                                           clock: Clock) -> None:
    refs = await seed_due_sms(tw.db, tw.vault, count=25, now=clock())
    await tw.db.close()
    for _ in range(2):  # two "processes" one after the other, each from a fresh engine
        tw.db = Database(settings.database_url)
        await dispatch.run_due(tw)
        await tw.db.close()
    tw.db = Database(settings.database_url)
    assert len(fake.messages) == 25 and fake.duplicates() == 0
    assert {m["Body"].split(" is ")[0][-10:] for m in fake.messages} == set(refs)


async def test_interrupted_send_is_reported_not_resent(tw: Services, fake: FakeTwilio,
                                                       clock: Clock) -> None:
    refs = await seed_due_sms(tw.db, tw.vault, count=1, now=clock())
    async with tw.db.transaction() as s:  # a worker claimed it, then died
        d = (await s.scalars(select(PasswordSend))).one()
        d.status, d.attempts, d.lease_until = "sending", 1, clock()
    clock.advance(minutes=1)
    assert await dispatch.recover_interrupted(tw) == 1
    await dispatch.run_due(tw)
    assert not fake.messages
    assert (await row(tw, refs[0])).status == "interrupted"
    assert "cannot tell whether it arrived" in receipts(tw)


@pytest.mark.postgres
async def test_two_worker_processes_send_1000_exactly_once(fake: FakeTwilio, tmp_path: Path,
                                                           database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("exactly-once across processes is a PostgreSQL property (SKIP LOCKED)")
    from datetime import UTC, datetime

    from bot.vault import Vault, _decode_key, generate_key

    key = generate_key()
    db = Database(database_url)
    await seed_due_sms(db, Vault(_decode_key(key)), count=1000, now=datetime.now(UTC))
    await db.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAFEHAVEN_", "TWILIO_"))}
    env.update(SAFEHAVEN_DATABASE_URL=database_url, SAFEHAVEN_SECRET_KEY=key,
               SAFEHAVEN_VAR_DIR=str(tmp_path / "var"), SAFEHAVEN_SCHEDULER_INTERVAL="0.2",
               SAFEHAVEN_LOG_LEVEL="WARNING", TWILIO_ACCOUNT_SID=ACCOUNT_SID,
               TWILIO_AUTH_TOKEN=AUTH_TOKEN, TWILIO_FROM_NUMBER="+441632960001",
               SAFEHAVEN_PUBLIC_URL=PUBLIC, TWILIO_API_URL=fake.url)
    workers = [await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.app.cli", "worker", "--exit-when-idle", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE) for _ in range(2)]
    results = await asyncio.wait_for(asyncio.gather(*(w.communicate() for w in workers)), 120)
    for w, (_, err) in zip(workers, results, strict=True):
        assert w.returncode == 0, err.decode()[-2000:]
    assert len(fake.messages) == 1000 and fake.duplicates() == 0
    db = Database(database_url)
    async with db.read() as s:
        sent = await s.scalar(select(func.count()).select_from(PasswordSend).where(
            PasswordSend.status == "sent"))
    await db.close()
    assert sent == 1000
