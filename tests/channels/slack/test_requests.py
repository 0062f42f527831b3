"""What reaches /slack/events that should not change anything: unsigned, forged, stale,
retried, malformed or unexpected requests, and messages outside a DM."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from store.models import AuditRecord, Conversation, ProcessedEvent, Transfer
from tests.channels.slack.conftest import SlackUser, Workspace, message_text, signed
from tests.conftest import PDF


async def count(ws: Workspace, model: type) -> int:
    async with ws.svc.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def nothing_changed(ws: Workspace) -> None:
    await ws.settle()
    for model in (Transfer, Conversation, AuditRecord, ProcessedEvent):
        assert await count(ws, model) == 0, model
    assert not [c for c in ws.fake.calls if c.method != "auth.test"]


def dm_with_file(alice: SlackUser) -> str:
    return alice.ws.event_body(alice.file_event(("case.pdf", PDF)))


@pytest.mark.parametrize("headers", [
    {},                                                               # no signature at all
    {"X-Slack-Request-Timestamp": str(int(time.time()))},             # timestamp only
    {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=00ff"},
    {"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=00ff"},
    {"X-Slack-Request-Timestamp": "", "X-Slack-Signature": ""},
])
async def test_unsigned_or_forged_requests_are_refused(workspace: Workspace,
                                                       headers: dict[str, str]) -> None:
    alice = workspace.user("UALICE01")
    status, _ = await workspace.post(dm_with_file(alice), "application/json", sign=False,
                                     headers=headers)
    assert status == 401
    await nothing_changed(workspace)


async def test_signed_with_another_secret_is_refused(workspace: Workspace) -> None:
    alice = workspace.user("UALICE01")
    status, _ = await workspace.post(dm_with_file(alice), "application/json",
                                     secret="not-the-signing-secret")
    assert status == 401
    await nothing_changed(workspace)


async def test_stale_timestamp_is_refused_even_when_correctly_signed(
        workspace: Workspace) -> None:
    alice = workspace.user("UALICE01")
    status, _ = await workspace.post(dm_with_file(alice), "application/json",
                                     stamp=int(time.time()) - 6 * 60)
    assert status == 401
    await nothing_changed(workspace)


async def test_a_tampered_body_is_refused(workspace: Workspace) -> None:
    alice = workspace.user("UALICE01")
    body = workspace.event_body(alice.message_event("help"))
    headers = signed(body)
    status, _ = await workspace.post(body.replace("help", "list"), "application/json",
                                     sign=False, headers=headers)
    assert status == 401
    await nothing_changed(workspace)


async def test_retried_event_acts_once(workspace: Workspace) -> None:
    alice = workspace.user("UALICE01")
    event = alice.file_event(("case.pdf", PDF))
    assert await workspace.event(event, event_id="EvSAME0001") == 200
    # Slack retries (its first attempt "timed out"), and a duplicate arrives concurrently.
    statuses = await asyncio.gather(
        workspace.event(event, event_id="EvSAME0001", retry=1, settle=False),
        workspace.event(event, event_id="EvSAME0001", retry=2, settle=False))
    assert statuses == [200, 200]
    await workspace.settle()
    assert await count(workspace, Transfer) == 1
    assert len(workspace.fake.called("download")) == 1
    assert len([m for m in alice.messages() if "Transfer SH-" in message_text(m)]) == 1


async def test_concurrent_first_deliveries_act_once(workspace: Workspace) -> None:
    alice = workspace.user("UALICE01")
    event = alice.message_event("list")
    await asyncio.gather(*(workspace.event(event, event_id="EvTWICE001", settle=False)
                           for _ in range(4)))
    await workspace.settle()
    assert len(alice.messages()) == 1


async def test_the_bots_own_messages_are_acknowledged_and_ignored(workspace: Workspace) -> None:
    # Direct messages skip bolt's listeners (EventRoutes), but not its middleware: the
    # bot's own messages are still dropped before they reach us.
    ts = f"{time.time():.6f}"
    own = {"type": "message", "channel": "DUALICE01", "channel_type": "im",
           "user": "UBOT0000", "text": "help", "ts": ts, "event_ts": ts}
    assert await workspace.event(own) == 200
    await nothing_changed(workspace)


async def test_a_burst_of_messages_is_answered_in_order(workspace: Workspace) -> None:
    people = [workspace.user(f"UPERSON{i:02d}") for i in range(40)]
    for person in people:
        for text in ("help", "list"):
            assert await person.say(text, settle=False) == 200
    await workspace.settle()
    for person in people:
        first, second = (message_text(m) for m in person.messages())
        assert "Send me one or more files" in first and "no transfers yet" in second


async def test_double_click_answers_once(workspace: Workspace) -> None:
    alice = workspace.user("UALICE01")
    await alice.send_files(("case.pdf", PDF))
    question = alice.last
    results = await asyncio.gather(alice.click("CONTROLLED", message=question, settle=False),
                                   alice.click("RESTRICTED", message=question, settle=False))
    assert [status for status, _ in results] == [200, 200]
    await workspace.settle()
    async with workspace.svc.db.read() as session:
        answered = (await session.scalars(select(AuditRecord).where(
            AuditRecord.action == "answered"))).all()
    assert len(answered) == 1
    # The recipient question was asked once, and the question message shows one answer.
    assert len([m for m in alice.messages() if "Recipient" in message_text(m)]) == 1
    assert message_text(question).count("✓") == 1


async def test_click_on_an_already_answered_question_is_stale(workspace: Workspace) -> None:
    alice = workspace.user("UALICE01")
    await alice.send_files(("case.pdf", PDF))
    question = alice.last
    old = json.loads(json.dumps(question.__dict__))  # the message before it was answered
    await alice.say("CONTROLLED")  # typed instead of clicked
    question.blocks = old["blocks"]
    await alice.click("RESTRICTED", message=question)
    assert "already answered" in message_text(question)
    async with workspace.svc.db.read() as session:
        transfer = (await session.scalars(select(Transfer))).one()
    assert transfer.classification == "CONTROLLED"


@pytest.mark.parametrize(("body", "content_type"), [
    ("{not json", "application/json"),
    ('{"type": "event_callback", "event": ', "application/json"),
    ("payload=%7Bnot+json", "application/x-www-form-urlencoded"),
    (b"\xff\xfe{}".decode("latin-1"), "application/json"),
])
async def test_malformed_bodies_are_client_errors(workspace: Workspace, body: str,
                                                  content_type: str) -> None:
    status, _ = await workspace.post(body, content_type)
    assert 400 <= status < 500
    status, _ = await workspace.post(body, content_type, sign=False,
                                     headers={"X-Slack-Request-Timestamp": "1",
                                              "X-Slack-Signature": "v0=1"})
    assert status == 401
    await nothing_changed(workspace)
    assert (await workspace.client.get("/healthz")).status == 200


UNEXPECTED = [
    {},
    [],
    "just a string",
    {"type": "something_new"},
    {"type": "event_callback"},
    {"type": "event_callback", "event": "message"},
    {"type": "event_callback", "event": {"type": "message"}},
    {"type": "event_callback", "event": {"type": "message", "channel_type": "im",
                                         "user": "U1", "channel": "D1", "files": "x"}},
    {"type": "event_callback", "event": {"type": "reaction_added", "user": "U1"}},
    {"type": "event_callback", "event": {"type": "app_mention"}},
    {"type": "event_callback", "event": {"type": ["message"], "user": "U1"}},
    {"type": "event_callback", "event": {"type": {"message": 1}, "user": "U1"}},
    {"type": "block_actions"},
    {"type": "block_actions", "user": "U1", "actions": "x"},
    {"type": "block_actions", "user": {"id": "U1"}, "actions": []},
    {"type": "block_actions", "user": {"id": "U1"}, "actions": [{"action_id": "sh.answer.1",
                                                                 "value": "not json"}]},
    {"type": "block_actions", "user": {"id": "U1"}, "actions": [{"action_id": "mystery"}]},
    {"type": "block_actions", "user": {"id": "U1"}, "actions": [{"action_id": "sh.select",
                                                                 "block_id": "x"}]},
    {"type": "block_actions", "user": {"id": "U1"}, "actions": [{"action_id": "sh.form"}]},
    {"type": "block_actions", "user": {"id": "U1"}, "actions": [{"action_id": "sh.time",
                                                                 "value": "{}"}]},
    {"type": "view_submission", "user": {"id": "U1"}, "view": {"callback_id": "sh.form.view",
                                                              "private_metadata": "garbage"}},
    {"type": "view_submission", "user": {"id": "U1"},
     "view": {"callback_id": "sh.reject.view", "private_metadata": "[1]"}},
    {"type": "view_submission", "view": "x"},
    {"type": "view_closed", "view": {"callback_id": "sh.form.view"}},
    {"type": "shortcut", "callback_id": "nothing"},
    {"type": "block_suggestion", "action_id": "x"},
]


@pytest.mark.parametrize("payload", UNEXPECTED, ids=range(len(UNEXPECTED)))
async def test_unexpected_payloads_never_fail_the_server(workspace: Workspace,
                                                         payload: object) -> None:
    raw = json.dumps(payload)
    for body, content_type in ((raw, "application/json"),
                               (urlencode({"payload": raw}), "application/x-www-form-urlencoded")):
        status, _ = await workspace.post(body, content_type)
        assert status < 500, (body, status)
    await workspace.settle()
    async with workspace.svc.db.read() as session:
        assert (await session.scalar(select(func.count()).select_from(Transfer))) == 0
    assert not workspace.fake.called("chat.postMessage")


async def test_slash_command_certificate_check_is_answered(workspace: Workspace) -> None:
    status, _ = await workspace.post(urlencode({"ssl_check": "1", "token": "legacy"}),
                                     "application/x-www-form-urlencoded", sign=False)
    assert status == 200
    await nothing_changed(workspace)


async def test_url_verification_challenge(workspace: Workspace) -> None:
    body = json.dumps({"token": "legacy", "challenge": "c-123", "type": "url_verification"})
    status, text = await workspace.post(body, "application/json")
    assert status == 200 and "c-123" in text


async def test_channel_messages_are_ignored_and_a_mention_is_told_dms_only(
        workspace: Workspace) -> None:
    alice = workspace.user("UALICE01")
    in_channel = dict(alice.file_event(("case.pdf", PDF)), channel="C0GENERAL",
                      channel_type="channel")
    assert await workspace.event(in_channel) == 200
    assert not workspace.fake.called("download") and await count(workspace, Transfer) == 0
    assert not workspace.fake.called("chat.postMessage")

    mention = {"type": "app_mention", "user": "UALICE01", "channel": "C0GENERAL",
               "text": "<@UBOT0000> please send this", "ts": "1700000000.000100"}
    assert await workspace.event(mention) == 200
    (told,) = workspace.fake.ephemeral
    assert told["channel"] == "C0GENERAL" and told["user"] == "UALICE01"
    assert "only work in a direct message" in str(told["text"])
    assert await count(workspace, Transfer) == 0


async def test_a_mention_where_the_bot_cannot_post_is_answered_by_dm(
        workspace: Workspace) -> None:
    workspace.fake.fail("chat.postEphemeral", error="not_in_channel")
    mention = {"type": "app_mention", "user": "UALICE01", "channel": "C0ELSEWHERE",
               "text": "<@UBOT0000> hi", "ts": "1700000000.000200"}
    await workspace.event(mention)
    assert "only work in a direct message" in workspace.user("UALICE01").text


async def test_rate_limited_calls_are_retried_after_retry_after(workspace: Workspace) -> None:
    workspace.fake.fail("chat.postMessage", status=429, retry_after="0.3")
    alice = workspace.user("UALICE01")
    started = time.monotonic()
    await alice.say("help")
    assert time.monotonic() - started >= 0.3
    assert len(workspace.fake.called("chat.postMessage")) == 2
    assert "Send me one or more files" in alice.text


async def test_a_dm_gone_missing_is_reopened(workspace: Workspace) -> None:
    workspace.fake.fail("chat.postMessage", error="channel_not_found")
    alice = workspace.user("UALICE01")
    await alice.say("help")
    assert workspace.fake.called("conversations.open")
    assert "Send me one or more files" in alice.text


async def test_slack_errors_are_told_to_the_sender(workspace: Workspace) -> None:
    alice = workspace.user("UALICE01")
    workspace.fake.fail("files.getUploadURLExternal", error="invalid_arguments")
    await alice.send_files(("a.txt", b"case notes\n" * 20))
    await alice.click("CONTROLLED")
    await alice.submit(await alice.open_form(), {
        "name": "Priya Shah", "job_title": "Safeguarding Lead",
        "organisation": "Northfield NHS Trust", "email": "priya.shah@nhs.net",
        "phone": "07911 123456"})
    await alice.say("Strategy meeting about a child at risk, as agreed")
    await alice.click("UK GDPR Art 6(1)(e) public task")
    await alice.submit(await alice.open_form(), {
        "use_limits": "Only for the meeting", "onward_sharing": "no",
        "delete_after_use": ["yes"]})
    await alice.click("Encrypted archive")
    await alice.click("SMS now")
    await alice.click("Confirm and send")
    assert "could not put the archive SH-" in alice.text and "invalid_arguments" in alice.text
    assert "Ready-to-paste email" in alice.text  # the rest of the hand-back still arrives


async def test_old_event_keys_are_pruned_but_not_other_channels(workspace: Workspace,
                                                                 clock: Any) -> None:
    from channels.slack import records

    db = workspace.svc.db
    assert await records.claim_many(db, keys=["slack:event:old", "teams:x"], now=clock()) == {
        "slack:event:old", "teams:x"}
    clock.advance(days=3)
    await records.prune(db, now=clock())
    assert await records.claim_many(db, keys=["slack:event:old", "teams:x"], now=clock()) == {
        "slack:event:old"}
