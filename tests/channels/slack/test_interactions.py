"""Slack's own ways of answering: modals with per-field errors, the date-time picker, the
slash command, typed text with Slack markup; and notifications after the fact."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from channels.slack import blocks, controls, inputs
from handlers import housekeeping
from store.models import Transfer
from tests.channels.slack.test_flow import RECIPIENT, answer_up_to_confirm, reference_in
from tests.support.chat import conversation_step
from tests.support.core import PDF, Clock
from tests.support.slack import SlackUser, Workspace, message_text

LONDON = ZoneInfo("Europe/London")


async def only_transfer(ws: Workspace) -> Transfer:
    async with ws.svc.db.read() as session:
        return (await session.scalars(select(Transfer))).one()


async def test_recipient_errors_are_shown_in_the_modal_field_by_field(
        workspace: Workspace) -> None:
    alice = workspace.user("UALICE01")
    await alice.send_files(("case.pdf", PDF))
    await alice.click("CONTROLLED")
    await alice.tick("Contact details only", "Other personal data")
    view = await alice.open_form()
    posted = len(workspace.fake.called("chat.postMessage"))
    ack = await alice.submit(view, dict(RECIPIENT, email="priya@gmail.com", phone="12345"))
    assert ack["response_action"] == "errors"
    assert set(ack["errors"]) == {"f.email", "f.phone"}
    assert "personal email service" in ack["errors"]["f.email"]
    assert len(workspace.fake.called("chat.postMessage")) == posted, "the modal stays open"
    # Opened again, the form keeps what was typed.
    again = await alice.open_form()
    fields = {b["block_id"]: b["element"] for b in again["blocks"] if b["type"] == "input"}
    assert fields["f.job_title"]["initial_value"] == "Safeguarding Lead"
    assert await alice.submit(again, RECIPIENT) == {}
    form_message = next(m for m in alice.messages() if "Fill in the form" in str(m.history))
    assert "✓ Full name: Priya Shah" in message_text(form_message)
    assert "Why is this being shared?" in message_text(alice.last)


async def test_a_form_opened_for_an_answered_question_is_stale(workspace: Workspace) -> None:
    alice = workspace.user("UALICE01")
    await alice.send_files(("case.pdf", PDF))
    await alice.click("CONTROLLED")
    await alice.tick("Contact details only", "Other personal data")
    view = await alice.open_form()
    assert await alice.submit(view, RECIPIENT) == {}
    ack = await alice.submit(view, dict(RECIPIENT, name="Somebody Else"))
    assert ack == {}
    async with workspace.svc.db.read() as session:
        from store.models import AuditRecord

        answered = (await session.scalars(select(AuditRecord.details).where(
            AuditRecord.action == "answered"))).all()
    names = [d["recipient"]["name"] for d in answered if d.get("question") == "recipient"]
    assert names == ["Priya Shah"]


async def voice_transfer_at_call_time(alice: SlackUser) -> None:
    await alice.send_files(("case.pdf", PDF))
    await alice.click("CONTROLLED")
    await alice.tick("Contact details only", "Other personal data")
    await alice.submit(await alice.open_form(), RECIPIENT)
    await alice.say("Strategy meeting about a child at risk, as agreed")
    await alice.click("UK GDPR Art 6(1)(e) public task")
    await alice.submit(await alice.open_form(), {"use_limits": "Only for the meeting",
                                                 "onward_sharing": "no",
                                                 "delete_after_use": ["yes"]})
    await alice.click("Encrypted archive")
    await alice.click("Phone call at an agreed time")


async def test_call_time_from_the_date_time_picker(workspace: Workspace) -> None:
    alice = workspace.user("UALICE01")
    await voice_transfer_at_call_time(alice)
    question = alice.last
    picker = next(e for b in question.blocks if b["type"] == "actions"
                  for e in b["elements"] if e["type"] == "datetimepicker")
    suggested = datetime.fromtimestamp(picker["initial_date_time"], LONDON)
    assert (suggested.hour, suggested.minute) == (9, 0)
    # "Use this time" with nothing picked: asked to pick one, nothing answered.
    await alice.click("Use this time")
    assert any("Pick a date and a time first" in t for t in alice.ephemeral())
    block_id = next(b["block_id"] for b in question.blocks if b["type"] == "actions")
    chosen = int(datetime(2026, 11, 24, 14, 30, tzinfo=LONDON).timestamp())
    state = {block_id: {controls.PICK_TIME: {"type": "datetimepicker",
                                           "selected_date_time": chosen}}}
    await alice.click("Use this time", state=state)
    assert "✓ 2026-11-24 14:30" in message_text(question)
    assert "Tue 24 Nov 2026 14:30" in message_text(alice.last)


async def test_call_time_can_be_typed_and_a_bad_one_is_refused(workspace: Workspace) -> None:
    alice = workspace.user("UALICE01")
    await voice_transfer_at_call_time(alice)
    await alice.say("2026-11-28 10:00")  # a Saturday
    assert "Calls are only made" in message_text(alice.last)
    await alice.say("2026-11-24 10:00")
    assert "Please check transfer" in message_text(alice.last)


async def test_refused_button_answer_is_marked_and_asked_again(workspace: Workspace) -> None:
    alice = workspace.user("UALICE01")
    await alice.send_files(("case.pdf", PDF))
    await alice.click("CONTROLLED")
    await alice.tick("Contact details only", "Other personal data")
    await alice.submit(await alice.open_form(), dict(RECIPIENT, phone="020 7946 0000 ext 12"))
    await alice.say("Strategy meeting about a child at risk, as agreed")
    await alice.click("UK GDPR Art 6(1)(e) public task")
    await alice.submit(await alice.open_form(), {"use_limits": "Only for the meeting",
                                                 "onward_sharing": "no",
                                                 "delete_after_use": ["yes"]})
    await alice.click("Encrypted archive")
    question = alice.last
    # A switchboard number with an extension cannot take an SMS: not offered, and why.
    assert "SMS now" not in message_text(question)
    assert "has an extension, so it can't receive a text" in message_text(question)
    # A button the core refuses: Continue once every file is removed.
    for _ in range(8):  # delivery, consent, lawful basis, purpose, recipient, categories,
        await alice.say("back")  # classification, files
    assert await conversation_step(workspace.svc, "slack:UALICE01") == "files"
    await alice.click("Remove case.pdf")
    question = alice.last
    await alice.click("Continue")
    assert "✗ Continue: not accepted" in message_text(question)
    assert "The transfer has no files left" in message_text(alice.last)
    assert any(b["type"] == "actions" for b in alice.last.blocks)


async def test_typed_text_arrives_as_typed(workspace: Workspace) -> None:
    alice = workspace.user("UALICE01")
    await alice.send_files(("case.pdf", PDF))
    await alice.click("CONTROLLED")
    await alice.tick("Contact details only", "Other personal data")
    await alice.submit(await alice.open_form(), RECIPIENT)
    await alice.say("Review &amp; planning for <mailto:a@b.nhs.uk|a@b.nhs.uk> &lt;urgent&gt;")
    async with workspace.svc.db.read() as session:
        from store.models import Conversation

        state = (await session.scalars(select(Conversation.state))).one()
    assert state["purpose"] == "Review & planning for a@b.nhs.uk <urgent>"


async def test_slash_command_answers_in_the_dm(workspace: Workspace) -> None:
    alice = workspace.user("UALICE01")
    status, body = await workspace.command("UALICE01", "")
    assert status == 200 and body == ""
    assert "Send me one or more files" in alice.text
    status, body = await workspace.command("UALICE01", "list", channel_id="C0GENERAL")
    assert status == 200 and "answered in our direct message" in body
    assert "You have no transfers yet." in alice.text
    await alice.send_files(("case.pdf", PDF))
    reference = reference_in(alice.text)
    await workspace.command("UALICE01", f"status {reference}")
    assert f"{reference}: being prepared" in alice.text
    await workspace.command("UBOB0001", f"cancel {reference}")
    assert f"cannot find a transfer {reference}" in workspace.user("UBOB0001").text
    await workspace.command("UALICE01", f"cancel {reference}")
    assert (await only_transfer(workspace)).status == "draft"  # asked first, in the DM
    await alice.click("Yes, cancel")
    assert (await only_transfer(workspace)).status == "cancelled"


async def test_help_and_status_typed_in_the_dm(workspace: Workspace) -> None:
    alice = workspace.user("UALICE01")
    await alice.say("help")
    assert "Send me one or more files" in alice.text
    await alice.send_files(("case.pdf", PDF))
    await alice.say("status")
    # `status` re-asks the current question, with its buttons.
    assert any(e.get("text", {}).get("text") == "CONTROLLED"
               for b in alice.last.blocks if b["type"] == "actions" for e in b["elements"])


async def test_expired_request_is_updated_and_sender_told_in_thread(workspace: Workspace,
                                                                    clock: Clock) -> None:
    alice = workspace.user("UALICE01")
    await alice.send_files(("case.pdf", PDF))
    first = alice.last
    await answer_up_to_confirm(alice, classification="RESTRICTED",
                               password="SMS once receipt is confirmed")
    await alice.click("Confirm and send")
    clock.advance(hours=25)
    assert await housekeeping.expire_approvals(workspace.svc) == 1
    boss = workspace.user("UBOSS01")
    assert "has expired" in message_text(boss.last)
    assert not [b for b in boss.last.blocks if b["type"] == "actions"]
    thread = [message_text(m) for m in alice.messages() if m.thread_ts == first.ts]
    assert any("it has expired" in t for t in thread)


async def test_shutdown_waits_for_work_in_hand(workspace: Workspace) -> None:
    alice = workspace.user("UALICE01")
    finished: list[str] = []

    async def slow() -> None:
        await asyncio.sleep(0.2)
        finished.append("done")

    workspace.channel.spawn(slow(), name="slow")
    await alice.say("help", settle=False)
    await workspace.client.close()  # the application's cleanup runs here
    assert finished == ["done"]
    assert "Send me one or more files" in alice.text


def test_blocks_respect_slack_limits() -> None:
    from bot.replies import Choice, Option, Text

    long = Text("line\n" * 2000)
    (post,) = blocks.render([long], LONDON)
    assert isinstance(post, blocks.Post)
    assert all(len(b["text"]["text"]) <= 3000 for b in post.blocks)
    many = Choice("files", "Which?", tuple(Option(f"remove:{i}", f"Remove file {i} " + "x" * 90)
                                           for i in range(120)))
    (post,) = blocks.render([many], LONDON)
    assert isinstance(post, blocks.Post)
    select: dict[str, Any] = post.blocks[-1]["elements"][0]
    assert select["type"] == "static_select" and len(select["options"]) == 100
    assert all(len(o["text"]["text"]) <= 75 for o in select["options"])


def test_from_slack_and_escape_round_trip() -> None:
    assert inputs.from_slack("a &amp; b <https://x.example|site> <mailto:p@q.uk|p@q.uk>") == \
        "a & b site p@q.uk"
    assert blocks.escape("slack:UABC123 & <!here>") == "<@UABC123> &amp; &lt;!here&gt;"


async def test_a_request_for_a_cancelled_transfer_loses_its_buttons_when_clicked(
        workspace: Workspace) -> None:
    alice = workspace.user("UALICE01")
    await alice.send_files(("case.pdf", PDF))
    reference = reference_in(alice.text)
    await answer_up_to_confirm(alice, classification="RESTRICTED",
                               password="SMS once receipt is confirmed")
    await alice.click("Confirm and send")
    await alice.say(f"cancel {reference}")
    await alice.click("Yes, cancel")
    boss = workspace.user("UBOSS01")
    await boss.click("Approve")
    assert any("not waiting for approval" in t for t in boss.ephemeral())
    assert f"{reference} is no longer waiting for a decision: it is cancelled" in \
        message_text(boss.last)
    assert not [b for b in boss.last.blocks if b["type"] == "actions"]
    assert (await only_transfer(workspace)).status == "cancelled"
