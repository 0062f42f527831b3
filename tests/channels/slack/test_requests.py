"""What reaches /slack/events that should not change anything: unsigned, forged, stale,
retried, malformed or unexpected requests, and messages outside a DM."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from channels.slack.payloads import well_formed
from store.models import AuditRecord, Conversation, ProcessedEvent, Transfer
from tests.support.core import PDF
from tests.support.slack import SlackUser, Workspace, message_text, signed


async def count(ws: Workspace, model: type) -> int:
    query = select(func.count()).select_from(model)
    if model is AuditRecord:
        query = query.where(AuditRecord.action != "near_miss")
    async with ws.svc.db.read() as session:
        return int(await session.scalar(query) or 0)


async def nothing_changed(ws: Workspace) -> None:
    """Nothing but the count of forged requests, which is recorded as a near miss once per
    interval (docs/governance.md), possibly while the test runs."""
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
    # The next question was asked once, and the question message shows one answer.
    assert len([m for m in alice.messages()
                if "What kind of information" in message_text(m)]) == 1
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


@pytest.mark.parametrize(("text", "channel_name"), [
    ("help", "payload-review"), ("status payload", "directmessage")])
async def test_a_slash_command_with_payload_in_it_is_read(workspace: Workspace, text: str,
                                                          channel_name: str) -> None:
    """bolt takes a form with "payload" anywhere in it for an interactivity payload (and,
    finding none, reads nothing): the command was acknowledged and dropped."""
    body = urlencode({
        "token": "legacy", "team_id": "T0001", "team_domain": "example",
        "channel_id": "DUALICE01", "channel_name": channel_name, "user_id": "UALICE01",
        "user_name": "alice", "command": "/safehaven", "text": text, "api_app_id": "A0001",
        "response_url": f"{workspace.fake.url}/hooks/1", "trigger_id": "tr-payload"})
    status, _ = await workspace.post(body, "application/x-www-form-urlencoded")
    await workspace.settle()
    assert status == 200
    said = workspace.user("UALICE01").text
    assert ("Send me one or more files" if text == "help" else "PAYLOAD") in said


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


async def test_slack_errors_are_told_to_the_sender_and_the_archive_sent_again(
        workspace: Workspace) -> None:
    alice = workspace.user("UALICE01")
    workspace.fake.fail("files.getUploadURLExternal", error="invalid_arguments")
    await alice.send_files(("a.txt", b"case notes\n" * 20))
    await alice.click("CONTROLLED")
    await alice.tick("Contact details only", "Other personal data")
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

    # `archive REF`, as the message says, uploads it again; for the sender only.
    found = re.search(r"type `archive (SH-[A-Z0-9-]+)` to try again", alice.text)
    assert found, alice.text
    assert workspace.fake.called("files.completeUploadExternal") == []
    await alice.say(f"archive {found.group(1)}")
    [completed] = workspace.fake.called("files.completeUploadExternal")
    [upload] = workspace.fake.uploads.values()
    assert upload["data"][:2] == b"PK" and upload["filename"] == f"{found.group(1)}.zip"
    assert "the encrypted archive again" in str(completed.params)
    await workspace.user("UBOB0001").say(f"archive {found.group(1)}")
    assert "cannot find" in workspace.user("UBOB0001").text
    assert len(workspace.fake.called("files.completeUploadExternal")) == 1


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


# --- odd requests a fuzzer found, or could: refused at the door, never a 500 --------------


@pytest.mark.parametrize("headers", [
    {"X-Slack-Request-Timestamp": "²³", "X-Slack-Signature": "v0=00ff"},  # digits to isdigit
    {"X-Slack-Request-Timestamp": "1" * 5000, "X-Slack-Signature": "v0=00ff"},  # int() refuses
    {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=é"},
], ids=["superscript digits", "5000 digits", "signature not ASCII"])
async def test_odd_signature_headers_are_refused(workspace: Workspace,
                                                 headers: dict[str, str]) -> None:
    alice = workspace.user("UALICE01")
    status, _ = await workspace.post(workspace.event_body(alice.message_event("help")),
                                     "application/json", sign=False, headers=headers)
    assert status == 401
    await nothing_changed(workspace)


@pytest.mark.parametrize(("body", "content_type"), [
    ("[" * 100_000, "application/json"),
    ('{"type": "event_callback", "event": ' + "{\"a\": " * 50_000, "application/json"),
    (urlencode({"payload": "[" * 5000}), "application/x-www-form-urlencoded"),
], ids=["array", "object", "payload"])
async def test_bodies_nested_too_deeply_are_client_errors(workspace: Workspace, body: str,
                                                         content_type: str) -> None:
    status, _ = await workspace.post(body, content_type)
    assert status == 400
    await nothing_changed(workspace)


def _valid_payloads() -> list[dict[str, Any]]:
    """Payloads shaped as Slack documents them (with the fields the validation reads, and
    the nulls, empty strings and objects Slack puts where a test might not)."""
    auth = [{"enterprise_id": None, "team_id": "T0001", "user_id": "UBOT0000",
             "is_bot": True, "is_enterprise_install": False}]
    envelope = {"token": "legacy", "team_id": "T0001", "context_team_id": "T0001",
                "context_enterprise_id": None, "api_app_id": "A0001",
                "type": "event_callback", "event_id": "Ev0PV52K25", "event_time": 1700000000,
                "authorizations": auth, "is_ext_shared_channel": False,
                "event_context": "4-eyJldCI6Im1lc3NhZ2UiLCJ0aWQiOiJUMDAwMSJ9"}
    file_share = {
        "type": "message", "subtype": "file_share", "text": "", "user": "UALICE01",
        "channel": "DUALICE01", "channel_type": "im", "ts": "1700000000.000100",
        "event_ts": "1700000000.000100", "client_msg_id": "5a1d2c3b-0000-4000-8000-0000a1b2c3d4",
        "upload": False, "display_as_bot": False, "blocks": [],
        "files": [{"id": "F0000001", "created": 1700000000, "timestamp": 1700000000,
                   "name": "case notes (final).pdf", "title": "case notes", "user": "UALICE01",
                   "user_team": "T0001", "size": 1024, "mimetype": "application/pdf",
                   "url_private": "https://files.slack.com/files-pri/T0001-F0000001/case.pdf",
                   "url_private_download": "https://files.slack.com/files-pri/T0001-F0000001/"
                                           "download/case%20notes%20(final).pdf",
                   "permalink": "https://example.slack.com/files/UALICE01/F0000001/case.pdf",
                   "file_access": "visible", "is_external": False, "external_type": "",
                   "thumb_pdf_w": 909}]}
    mention = {"type": "app_mention", "user": "W0123ABCD", "team": "T0001",
               "user_team": "E0001", "source_team": "T0001", "channel": "C0GENERAL",
               "text": "<@UBOT0000> help", "ts": "1700000000.000200",
               "event_ts": "1700000000.000200", "client_msg_id": "b7e1c8f0-1a2b",
               "blocks": [{"type": "rich_text", "block_id": "Xy1",
                           "elements": [{"type": "rich_text_section", "elements": [
                               {"type": "user", "user_id": "UBOT0000"},
                               {"type": "text", "text": " help"}]}]}]}
    edited = {"type": "message", "subtype": "message_changed", "hidden": True,
              "channel": "DUALICE01", "channel_type": "im", "ts": "1700000000.000300",
              "event_ts": "1700000000.000300",
              "message": {"type": "message", "user": "UALICE01", "text": "edited",
                          "ts": "1700000000.000100", "edited": {"user": "UALICE01",
                                                                "ts": "1700000000.000300"}},
              "previous_message": {"type": "message", "user": "UALICE01", "text": "old",
                                   "ts": "1700000000.000100"}}
    user_change = {"type": "user_change", "event_ts": "1700000000.000400",
                   "cache_ts": 1700000000,
                   "user": {"id": "UALICE01", "team_id": "T0001", "name": "alice",
                            "real_name": "Alice Sender", "profile": {"title": "Lead"},
                            "is_bot": False, "enterprise_user": {"id": "W0123ABCD",
                                                                 "enterprise_id": "E0001"}}}
    channel_created = {"type": "channel_created", "event_ts": "1700000000.000500",
                       "channel": {"id": "C0NEW0001", "name": "new-channel",
                                   "created": 1700000000, "creator": "UALICE01"}}
    reaction = {"type": "reaction_added", "user": "UALICE01", "reaction": "thumbsup",
                "item_user": "UBOT0000", "event_ts": "1700000000.000600",
                "item": {"type": "message", "channel": "DUALICE01",
                         "ts": "1700000000.000100"}}
    events = [{**envelope, "event": e} for e in (file_share, mention, edited, user_change,
                                                 channel_created, reaction)]

    user = {"id": "UALICE01", "username": "alice", "name": "alice", "team_id": "T0001"}
    state = {"values": {
        "sh.q:call_time": {"sh.time.pick": {"type": "datetimepicker",
                                            "selected_date_time": 1795510800}},
        "f.name": {"v": {"type": "plain_text_input", "value": None}},
        "f.org": {"v": {"type": "static_select", "selected_option": None}},
        "f.ok": {"v": {"type": "checkboxes", "selected_options": []}},
        "f.many": {"v": {"type": "multi_users_select", "selected_users": ["UALICE01"]}},
        "f.when": {"v": {"type": "datepicker", "selected_date": "2026-11-24"}}}}
    view = {"id": "V0PKB1ZFV", "team_id": "T0001", "type": "modal", "private_metadata": "",
            "callback_id": "", "state": state, "hash": "1605.abc", "title": {
                "type": "plain_text", "text": "Recipient", "emoji": True},
            "clear_on_close": False, "notify_on_close": False, "close": None, "submit": None,
            "previous_view_id": None, "root_view_id": "V0PKB1ZFV", "app_id": "A0001",
            "external_id": "", "app_installed_team_id": "T0001", "bot_id": "B0001",
            "blocks": [{"type": "input", "block_id": "f.name",
                        "label": {"type": "plain_text", "text": "Name"},
                        "element": {"type": "plain_text_input", "action_id": "v"}}]}
    in_modal = {"type": "block_actions", "user": user, "api_app_id": "A0001",
                "token": "legacy", "trigger_id": "13345224609.738474920.8088930838d88f008e0",
                "team": {"id": "T0001", "domain": "example"}, "enterprise": None,
                "is_enterprise_install": False,
                "container": {"type": "view", "view_id": "V0PKB1ZFV"}, "view": view,
                "actions": [{"type": "datetimepicker", "action_id": "sh.time.pick",
                             "block_id": "sh.q:call_time", "selected_date_time": 1795510800,
                             "action_ts": "1700000000.000700"}]}
    submitted = {"type": "view_submission", "team": {"id": "T0001", "domain": "example"},
                 "user": user, "api_app_id": "A0001", "token": "legacy",
                 "trigger_id": "13345224609.738474920.8088930838d88f008e1",
                 "view": {**view, "callback_id": "elsewhere.view"}, "response_urls": [],
                 "is_enterprise_install": False, "enterprise": None}
    closed = {**submitted, "type": "view_closed", "is_cleared": False}
    org_wide = {**in_modal, "team": None, "enterprise": {"id": "E0001", "name": "Example"},
                "is_enterprise_install": True}
    shortcut = {"type": "shortcut", "token": "legacy", "action_ts": "1700000000.000800",
                "team": {"id": "T0001", "domain": "example"}, "user": user,
                "is_enterprise_install": False, "enterprise": None,
                "callback_id": "elsewhere", "trigger_id": "1.2.abc"}
    message_action = {**shortcut, "type": "message_action", "channel": {
        "id": "DUALICE01", "name": "directmessage"}, "message_ts": "1700000000.000100",
        "message": {"type": "message", "user": "UALICE01", "text": "x",
                    "ts": "1700000000.000100"}, "response_url": "https://hooks.slack.com/x"}
    suggestion = {"type": "block_suggestion", "user": user, "team": {"id": "T0001"},
                  "container": {"type": "message", "message_ts": "1700000000.000100",
                                "channel_id": "DUALICE01", "is_ephemeral": False},
                  "api_app_id": "A0001", "token": "legacy", "action_id": "elsewhere",
                  "block_id": "b1", "value": "UK", "enterprise": None,
                  "channel": {"id": "DUALICE01", "name": "directmessage"}}
    return [*events, in_modal, submitted, closed, org_wide, shortcut, message_action,
            suggestion]


VALID = _valid_payloads()


@pytest.mark.parametrize("payload", VALID, ids=[
    f"{p['type']}-{p['event']['type']}" if "event" in p else p["type"] for p in VALID])
async def test_slack_shaped_payloads_are_accepted(workspace: Workspace,
                                                  caplog: pytest.LogCaptureFixture,
                                                  payload: dict[str, Any]) -> None:
    assert well_formed(payload)
    # Files are fetched from the fake Slack, not Slack's file host.
    raw = json.dumps(payload).replace("https://files.slack.com", workspace.fake.url)
    if "event" in payload:
        body, content_type = raw, "application/json"
    else:
        body, content_type = urlencode({"payload": raw}), "application/x-www-form-urlencoded"
    status, _ = await workspace.post(body, content_type)
    assert status in (200, 404), status  # 404: bolt's answer to what no listener takes
    await workspace.settle()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
