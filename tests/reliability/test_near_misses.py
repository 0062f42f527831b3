"""Near misses on the record, through the real entry points: forged webhooks (Slack, Teams,
Twilio) are counted, not recorded one by one, and the scheduler writes one record per channel
and interval with the count (the rest at shutdown); a wrong code on the password call is one
record per code with the attempt number and never the digits; deciding one's own transfer is
a near miss, and someone not listed deciding is the refused look-up ``access_refused``.
On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select

from bot.app.web import create_app
from channels.twilio.settings import TwilioSettings
from channels.twilio.webhooks import mount_twilio
from handlers import approvals, housekeeping
from handlers.services import Services
from store.models import AuditRecord
from tests.channels.teams.test_auth import secure_world, token
from tests.reliability.conftest import post_signed
from tests.reliability.test_hostile_webhooks import seed
from tests.support.core import answer_all
from tests.support.fake_twilio import FakeTwilio
from tests.support.slack import (  # noqa: F401 (fixtures)
    SECRET,
    Workspace,
    fake_slack,
    slack_policy,
    workspace,
)
from tests.support.teams import SENDER_AAD, stop_world

FLOOD = 50


async def records(svc: Services, action: str = "near_miss") -> list[AuditRecord]:
    async with svc.db.read() as s:
        return list((await s.scalars(select(AuditRecord).where(AuditRecord.action == action)
                                     .order_by(AuditRecord.seq))).all())


async def whole_record(svc: Services) -> str:
    async with svc.db.read() as s:
        rows = (await s.scalars(select(AuditRecord))).all()
    return json.dumps([[r.reference, r.actor, r.action, r.details] for r in rows])


def forged_counts(rows: list[AuditRecord]) -> list[tuple[str, int]]:
    assert all(r.details["kind"] == "forged_request" and r.actor == "unauthenticated"
               for r in rows)
    return [(r.details["channel"], r.details["count"]) for r in rows]


async def test_a_forged_twilio_flood_is_one_counted_record_per_interval(
        tw: Services, client: TestClient) -> None:  # type: ignore[type-arg]
    for n in range(FLOOD):
        resp = await client.post(f"/twilio/voice/{n}/code", data={"Digits": "123456"},
                                 headers={"X-Twilio-Signature": "forged" if n % 2 else ""})
        assert resp.status == 403
    assert await records(tw) == []  # counted in memory, not one record per request
    await housekeeping.tick(tw)
    (first,) = await records(tw)
    assert forged_counts([first]) == [("twilio", FLOOD)]
    assert first.details["first"] <= first.details["last"]
    await housekeeping.tick(tw)  # nothing new: nothing written
    assert len(await records(tw)) == 1
    for _ in range(3):
        assert (await client.post("/twilio/sms/inbound", data={"Body": "hi"})).status == 403
    await housekeeping.tick(tw)
    assert forged_counts(await records(tw)) == [("twilio", FLOOD), ("twilio", 3)]


async def test_forged_requests_counted_since_the_last_tick_are_recorded_at_shutdown(
        tw: Services, twilio_settings: TwilioSettings) -> None:
    app = create_app(tw, migrate=False, scheduler=False)
    mount_twilio(app, tw, twilio_settings)
    async with TestClient(TestServer(app)) as c:
        for _ in range(7):
            assert (await c.post("/twilio/sms/status", data={"MessageSid": "SM1"},
                                 headers={"X-Twilio-Signature": "forged"})).status == 403
        assert await records(tw) == []
    assert forged_counts(await records(tw)) == [("twilio", 7)]


async def test_a_forged_slack_flood_is_one_counted_record(
        workspace: Workspace) -> None:  # noqa: F811 (the fixture)
    body = workspace.event_body({"type": "message", "channel_type": "im", "user": "UALICE1",
                                 "channel": "D0001", "text": "status"})
    for n in range(FLOOD):
        if n % 3 == 0:  # no signature at all
            status, _ = await workspace.post(body, "application/json", sign=False)
        elif n % 3 == 1:  # signed with another secret
            status, _ = await workspace.post(body, "application/json", secret="not-" + SECRET)
        else:  # signed, but long ago
            status, _ = await workspace.post(body, "application/json",
                                             stamp=int(time.time()) - 3600)
        assert status == 401, n
    # A correctly signed request is no near miss.
    status, _ = await workspace.post(body, "application/json")
    assert status == 200
    await workspace.settle()
    await housekeeping.tick(workspace.svc)
    assert forged_counts(await records(workspace.svc)) == [("slack", FLOOD)]


@pytest.fixture
async def secured_teams(services: Services) -> AsyncIterator[tuple[Any, rsa.RSAPrivateKey]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    world, _factory = await secure_world(services, key)
    yield world, key
    await stop_world(world)


async def test_a_forged_teams_flood_is_one_counted_record(
        secured_teams: tuple[Any, rsa.RSAPrivateKey]) -> None:
    world, key = secured_teams
    user = world.user(SENDER_AAD, "Alex Sender")
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    body = user.activity(text="help")
    for n in range(FLOOD):
        forged = [None, "Bearer not-a-token", token(other, body["serviceUrl"])][n % 3]
        user.headers = {"Authorization": forged} if forged else {}
        status, _ = await user.post(user.activity(text="help"))
        assert status == 401, n
    user.headers = {"Authorization": token(key, body["serviceUrl"])}
    status, _ = await user.post(body)
    assert status == 200
    await housekeeping.tick(world.services)
    assert forged_counts(await records(world.services)) == [("teams", FLOOD)]


async def test_each_wrong_call_code_is_one_near_miss_without_the_digits(
        tw: Services, client: TestClient, fake: FakeTwilio) -> None:  # type: ignore[type-arg]
    real = await seed(tw)
    voice_id, call_sid = real["ids"][1], real["sids"][1]
    path = f"/twilio/voice/{voice_id}/code"
    wrong = ["917364", "503", "77777777"]
    for digits in wrong:
        resp = await post_signed(client, path, {"CallSid": call_sid, "Digits": digits})
        assert resp.status == 200
    rows = await records(tw)
    assert [(r.details["kind"], r.details["attempt"], r.details["attempts_allowed"],
             r.reference, r.actor) for r in rows] == [
        ("wrong_call_code", n, 3, "SH-FZ22-VC", "twilio") for n in (1, 2, 3)]
    assert await records(tw, "call_code_wrong") == []  # recorded once, as a near miss
    everything = await whole_record(tw)
    for digits in wrong:
        assert digits not in everything, digits
    (failed,) = await records(tw, "password_failed")
    assert failed.reference == "SH-FZ22-VC"  # the third ended the send, as before


async def test_self_approval_is_a_near_miss_and_a_stranger_an_access_refusal(
        services: Services, conversation: Any, make_file: Any) -> None:
    alice = conversation("console:alice")
    await alice.send_files(make_file("a.pdf"))
    await answer_all(alice, classification="RESTRICTED", password="sms-on-receipt")
    await alice.say("confirm")
    ref = next(w.strip(".,:") for w in alice.text.split() if w.startswith("SH-"))
    # As `safehaven approve REF --approver ID [--reject --reason ...]` runs it.
    for approve in (True, False):
        replies = await approvals.decide(services, approver_id="console:alice", reference=ref,
                                         approve=approve, reason="looks fine")
        assert "cannot authorise your own" in replies[0].text  # type: ignore[union-attr]
    replies = await approvals.decide(services, approver_id="console:mallory", reference=ref,
                                     approve=True)
    assert "cannot find" in replies[0].text  # type: ignore[union-attr]

    rows = await records(services)
    assert [(r.actor, r.reference, r.details["kind"], r.details["decision"]) for r in rows] == [
        ("console:alice", ref, "self_approval", "approve"),
        ("console:alice", ref, "self_approval", "reject")]
    assert await records(services, "approval_refused") == []
    refused = await records(services, "access_refused")
    assert [(r.actor, r.reference, r.details["command"]) for r in refused] == [
        ("console:mallory", ref, "approve")]
