"""Hostile Twilio webhooks: correctly signed requests whose form fields and paths are
fuzzed (junk ids, huge numbers, NUL bytes, very long values, wrong types of value) never
get a 5xx; wrongly signed ones get 403 and change nothing. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.passwords import spell_for_voice
from handlers.password_sends import dispatch, outcomes
from handlers.services import Services
from store.models import AuditRecord, PasswordSend, Transfer
from tests.reliability.conftest import post_signed
from tests.reliability.strategies import fuzz_settings, hostile_text, tried
from tests.support.fake_twilio import FakeTwilio

PHONE = "+447911123456"
PASSWORD = "Sealed-Only-Here-22222"
SPOKEN = [p for p in spell_for_voice(PASSWORD) if "for" in p]  # "capital S for Sierra", …


async def seed(tw: Services) -> dict[str, list[str]]:
    """Two packaged transfers, one with an SMS sent and one with a call in progress, so the
    fuzzer can aim at real ids as well as junk."""
    now = tw.clock()
    async with tw.db.transaction() as s:
        for ref, method in (("SH-FZ22-SM", "sms"), ("SH-FZ22-VC", "voice")):
            s.add(Transfer(reference=ref, sender_id="console:alice", status="ready",
                           classification="CONTROLLED", password_method=method,
                           recipient={"name": "Priya Shah", "phone": PHONE,
                                      "phone_display": "+44 7911 123456"},
                           file_count=1, total_bytes=1, created_at=now, updated_at=now,
                           call_code="482913", call_at=now,
                           password_sealed=tw.vault.seal(PASSWORD,
                                                         reference=ref)))
        await s.flush()
        for ref, kind in (("SH-FZ22-SM", "sms"), ("SH-FZ22-VC", "voice")):
            s.add(PasswordSend(reference=ref, kind=kind, status="due", due_at=now, phone=PHONE,
                               attempts=0, code_failures=0, created_at=now, updated_at=now))
    for ref in ("SH-FZ22-SM", "SH-FZ22-VC"):  # one after the other: SIDs in a known order
        await dispatch.run_due(tw, reference=ref)
    async with tw.db.read() as s:
        found = (await s.scalars(select(PasswordSend).order_by(PasswordSend.id))).all()
    return {"ids": [str(d.id) for d in found],
            "sids": [d.provider_sid or "" for d in found],
            "phones": [PHONE, "+44 7911 123456"]}


def junk() -> st.SearchStrategy[str]:
    return hostile_text(surrogates=False)


def field(real: list[str], *extra: str) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from([*real, *extra]), junk())


def voice_id(ids: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from([*ids, "0", "-1", str(2**31), str(2**63), str(10**30),
                                      "1_0", "+5", "007"]),
                     st.from_regex(r"\A[A-Za-z0-9_~-][A-Za-z0-9_.~-]{0,29}\Z"))


def requests(real: dict[str, list[str]]) -> st.SearchStrategy[tuple[str, dict[str, str]]]:
    extra = st.dictionaries(st.from_regex(r"\A[A-Za-z][A-Za-z0-9]{0,20}\Z"), junk(),
                            max_size=3)
    sids, ids = real["sids"], real["ids"]
    status = st.builds(  # the callback URL names its delivery: ?d=<id>, fuzzed too
        lambda sid, st_, err, query, to, more: (f"/twilio/sms/status{query}", {
            **more, "MessageSid": sid, "MessageStatus": st_, "ErrorCode": err, "To": to}),
        field(sids), field([], "delivered", "failed", "undelivered", "sent", "DELIVERED"),
        field([], "", "30003", "21211"),
        st.one_of(st.just(""), voice_id(ids).map(lambda d: f"?d={d}"),
                  st.sampled_from(["?d=", "?d=1&d=2", "?x=1"])),
        field(real["phones"], ""), extra)
    inbound = st.builds(
        lambda frm, body, more: ("/twilio/sms/inbound", {**more, "From": frm, "Body": body}),
        field(real["phones"], "+" + "9" * 60, ""),
        field([], "STOP", "START", "CALL", "stop please", "call me", ""), extra)
    voice = st.builds(
        lambda did, step, sid, digits, answered, call_status, more: (
            f"/twilio/voice/{did}/{step}", {
                **more, "CallSid": sid, "Digits": digits, "AnsweredBy": answered,
                "CallStatus": call_status}),
        voice_id(ids), st.one_of(st.sampled_from(["answer", "code", "repeat", "status"]),
                                 st.from_regex(r"\A[a-z]{1,8}\Z")),
        field(sids), field([], "482913", "1", "000000", "#", ""),
        field([], "human", "machine_start", "unknown", ""),
        field([], "completed", "busy", "no-answer", "failed", "canceled"), extra)
    return st.one_of(status, inbound, voice)


async def audit_count(tw: Services) -> int:
    """Audit records but the counted near misses: forged requests are counted, and a web
    process without the scheduler records the count on its own timer (docs/governance.md)."""
    async with tw.db.read() as s:
        return int(await s.scalar(select(func.count()).select_from(AuditRecord)
                                  .where(AuditRecord.action != "near_miss")) or 0)


@pytest.fixture
async def real_ids(tw: Services, fake: FakeTwilio) -> dict[str, list[str]]:
    real = await seed(tw)
    assert len(fake.messages) == 1 and len(fake.calls) == 1
    return real


# Built once: the ids of the seeded rows are the same in every fresh database.
REAL = {"ids": ["1", "2"], "sids": ["SM" + "0" * 31 + "1", "CA" + "0" * 31 + "2"],
        "phones": [PHONE, "+44 7911 123456"]}


@fuzz_settings(300)
@given(request=requests(REAL), forge=st.sampled_from([None, None, None, "", "junk"]))
async def test_fuzzed_signed_webhooks_never_get_a_server_error(
        tw: Services, client: TestClient, real_ids: dict[str, list[str]],
        request: tuple[str, dict[str, str]], forge: str | None) -> None:
    assert real_ids == REAL
    tried("twilio webhooks (signed, fuzzed fields)")
    path, form = request
    if forge is None:
        resp = await post_signed(client, path, form)
        assert resp.status < 500, (resp.status, path, await resp.text())
        if len(urlencode(form)) < 1024**2:  # aiohttp's body limit: larger is refused
            assert resp.status in (200, 204, 404, 405), resp.status
    else:
        before = await audit_count(tw)
        resp = await client.post(path, data=form, headers={"X-Twilio-Signature": forge})
        assert resp.status in (403, 413)  # 413: over aiohttp's body limit
        assert await audit_count(tw) == before
    voice_path = f"/twilio/voice/{REAL['ids'][1]}/"
    may_speak = (forge is None and path.startswith(voice_path)
                 and path.endswith(("/code", "/repeat")) and form["CallSid"] == REAL["sids"][1])
    if not may_speak:  # only the right code on the real call may hear the password
        body = await resp.text()
        assert not any(phrase in body for phrase in SPOKEN), (path, form)


async def test_scheduler_still_works_after_fuzzed_callbacks(
        tw: Services, client: TestClient, real_ids: dict[str, list[str]],
        fake: FakeTwilio) -> None:
    for path, form in [
            ("/twilio/sms/status", {"MessageSid": "SM\x00", "MessageStatus": "x"}),
            ("/twilio/sms/inbound", {"From": "\x00" * 50, "Body": "STOP"}),
            ("/twilio/voice/99999999999999999999/code", {"CallSid": "CA", "Digits": "1"})]:
        assert (await post_signed(client, path, form)).status < 500
    right = await post_signed(client, f"/twilio/voice/{REAL['ids'][1]}/code",
                              {"CallSid": REAL["sids"][1], "Digits": "482913"})
    assert SPOKEN[0] in await right.text()  # the check in the fuzz test can see a leak
    tw.clock.advance(minutes=20)  # type: ignore[attr-defined]
    await dispatch.recover_interrupted(tw)
    await dispatch.run_due(tw)
    assert len(fake.messages) == 1  # nothing re-sent


async def test_oversized_and_odd_bodies_are_client_errors(tw: Services,
                                                          client: TestClient) -> None:
    """Not form-encoded, huge, or binary bodies: refused (403 unsigned) without a 5xx."""
    bodies: list[tuple[dict[str, str], Any]] = [
        ({"Content-Type": "application/json"}, b'{"MessageSid": 1}'),
        ({"Content-Type": "application/x-www-form-urlencoded"}, b"%ZZ=%00&&=&a=" + b"x" * 5000),
        ({"Content-Type": "application/x-www-form-urlencoded"}, bytes(range(256))),
        ({"Content-Type": "multipart/form-data; boundary=x"}, b"--x\r\nbroken"),
        ({}, b"A" * (2 * 1024 * 1024)),
    ]
    for headers, body in bodies:
        for path in ("/twilio/sms/status", "/twilio/sms/inbound", "/twilio/voice/1/code"):
            tried("twilio webhooks (malformed bodies)")
            resp = await client.post(path, data=body,
                                     headers={**headers, "X-Twilio-Signature": "x"})
            assert 400 <= resp.status < 500, (path, resp.status)


def test_backoff_never_overflows() -> None:
    from types import SimpleNamespace

    from bot.policy import load_policy

    svc: Any = SimpleNamespace(policy=load_policy())
    for attempt in (1, 10, 40, 1000, 10**6):
        assert outcomes._backoff(svc, attempt, "sms") <= timedelta(days=1)
