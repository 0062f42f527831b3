"""The whole Slack flow, through signed requests and a fake Slack Web API: a file DM to
the archive upload, with approval by a Slack approver listed in the policy."""

from __future__ import annotations

import copy
import re
from typing import Any

import pyzipper
from sqlalchemy import select

from store.models import AuditRecord, Transfer
from tests.support.core import PDF, PURPOSE
from tests.support.objects import upload_objects
from tests.support.slack import SlackUser, Workspace, message_text

RECIPIENT = {"name": "Priya Shah", "job_title": "Safeguarding Lead",
             "organisation": "Northfield NHS Trust", "email": "priya.shah@nhs.net",
             "phone": "07911 123456"}
CONSENT = {"use_limits": "Only for the strategy meeting on Friday", "onward_sharing": "no",
           "delete_after_use": ["yes"]}


def reference_in(text: str) -> str:
    found = re.search(r"SH-[0-9A-Z]{4}-[0-9A-Z]{2}", text)
    assert found, text
    return found.group(0)


async def transfer(ws: Workspace, reference: str) -> Transfer:
    async with ws.svc.db.read() as session:
        row = await session.get(Transfer, reference)
    assert row is not None
    return row


async def answer_up_to_confirm(alice: SlackUser, *, classification: str,
                               password: str) -> None:
    await alice.click(classification)
    await alice.tick("Contact details only", "Other personal data")
    view = await alice.open_form()
    assert view["title"]["text"] == "Recipient"
    assert await alice.submit(view, RECIPIENT) == {}
    await alice.say(PURPOSE)
    await alice.click("UK GDPR Art 6(1)(e) public task")  # seven bases: a select menu
    assert await alice.submit(await alice.open_form(), CONSENT) == {}
    await alice.click("Encrypted archive")
    await alice.click(password)
    assert "Please check transfer" in message_text(alice.last)


async def test_file_dm_to_archive_upload_with_slack_approval(workspace: Workspace) -> None:
    fake = workspace.fake
    alice = workspace.user("UALICE01")
    await alice.send_files(("Julia Smith referral.pdf", PDF), ("notes.txt", b"case notes\n" * 30))
    first = alice.last
    reference = reference_in(message_text(first))
    assert "2 files" in message_text(first)
    assert "looks like it identifies a person" in message_text(first)
    assert [c.params["file_id"] for c in fake.called("download")], "files fetched"
    assert all(c.authorization == "Bearer xoxb-test-token" for c in fake.called("download"))

    await answer_up_to_confirm(alice, classification="RESTRICTED",
                               password="SMS once receipt is confirmed")
    # Each answered question is left on its message as a record, without its buttons.
    classification_message = next(m for m in alice.messages() if m.ts == first.ts)
    assert "✓ RESTRICTED" in message_text(classification_message)
    assert not [b for b in classification_message.blocks if b["type"] == "actions"]
    assert "Recipient" in alice.text and "Priya Shah" in alice.text

    await alice.click("Confirm and send")
    assert "needs authorising" in alice.text
    assert (await transfer(workspace, reference)).status == "awaiting_approval"

    boss = workspace.user("UBOSS01")
    request = boss.last
    assert f"Do you authorise {reference}?" in message_text(request)
    assert "<@UALICE01> asks you to authorise" in message_text(request)
    assert "Priya Shah" in message_text(request)
    assert not fake.uploads, "nothing handed back before approval"

    # Someone who is not an approver clicks the approver's button: refused, nothing changes.
    mallory = workspace.user("UMALLORY")
    await mallory.click("Approve", message=request)
    assert any("cannot find" in t for t in mallory.ephemeral())  # as a made-up one
    assert (await transfer(workspace, reference)).status == "awaiting_approval"
    assert any(b["type"] == "actions" for b in boss.last.blocks)

    await boss.click("Approve")
    row = await transfer(workspace, reference)
    assert row.status == "ready" and row.authorised_by == "slack:UBOSS01"

    # The approver's message shows who decided and when, and has no buttons any more.
    decided = message_text(boss.last)
    assert "✓ Approved by <@UBOSS01> on Mon 23 Nov 2026 09:30 (Europe/London)" in decided
    assert not [b for b in boss.last.blocks if b["type"] == "actions"]
    # The other listed approver's request is updated the same way.
    other = workspace.user("UBOSS02").last
    assert "Approved by <@UBOSS01>" in message_text(other)

    # The archive went back to the sender's DM, in the transfer's thread.
    assert [c.method for c in fake.calls if c.method.startswith(("files.", "upload"))] == [
        "files.getUploadURLExternal", "upload", "files.completeUploadExternal"]
    (upload,) = fake.uploads.values()
    assert upload["channel"] == alice.dm and upload["thread_ts"] == first.ts
    assert upload["filename"] == f"{reference}.zip"
    assert "AES-256" in upload["initial_comment"]
    archive = workspace.svc.settings.var_dir / "received.zip"
    archive.write_bytes(upload["data"])
    with pyzipper.AESZipFile(archive) as zf:
        assert "document-1.pdf" in zf.namelist()
        assert not any("Julia" in n for n in zf.namelist())
    thread = [m for m in alice.messages() if m.thread_ts == first.ts]
    assert any("approved transfer" in message_text(m) for m in thread)
    assert any(f"Subject: CONFIDENTIAL {reference}" in message_text(m) for m in thread)

    # The password is never in Slack, and receipts land in the thread.
    await alice.say(f"received {reference}")
    assert "texted" in alice.text
    outbox = workspace.svc.settings.outbox_path.read_text()
    password = re.search(rf"password for {reference} is (\S+) \.", outbox)
    assert password
    everything = " ".join(str(c.params) for c in fake.calls)
    assert password.group(1) not in everything
    assert not any(workspace.svc.settings.uploads_dir.rglob("*.bin"))
    assert await upload_objects(workspace.svc) == []


async def test_controlled_transfer_without_approval_hands_back_in_the_dm(
        workspace: Workspace) -> None:
    alice = workspace.user("UALICE01")
    await alice.send_files(("chronology.txt", b"Chronology of contact\n" * 50))
    reference = reference_in(alice.text)
    await answer_up_to_confirm(alice, classification="CONTROLLED", password="SMS now")
    await alice.click("Confirm and send")
    (upload,) = workspace.fake.uploads.values()
    assert upload["channel"] == alice.dm and upload["thread_ts"] is None
    assert (await transfer(workspace, reference)).status == "ready"
    assert "the password was texted" in alice.text
    async with workspace.svc.db.read() as session:
        actions = (await session.scalars(select(AuditRecord.action).where(
            AuditRecord.reference == reference))).all()
    assert actions.count("confirmed") == 1 and "password_delivered" in actions


async def test_rejection_asks_for_a_reason_in_a_modal(workspace: Workspace) -> None:
    alice = workspace.user("UALICE01")
    await alice.send_files(("case.pdf", PDF))
    first = alice.last
    reference = reference_in(alice.text)
    await answer_up_to_confirm(alice, classification="RESTRICTED",
                               password="SMS once receipt is confirmed")
    await alice.click("Confirm and send")
    boss = workspace.user("UBOSS02")
    other = workspace.user("UBOSS01")
    stale = copy.deepcopy(other.last)  # the other approver's request, as it was
    await boss.click("Reject")
    view: dict[str, Any] = workspace.fake.views[-1]
    assert view["title"]["text"] == "Reject transfer"
    assert (await transfer(workspace, reference)).status == "awaiting_approval"
    ack = await boss.submit(view, {"reason": "Not proportionate: send a summary instead"})
    assert ack == {}
    assert (await transfer(workspace, reference)).status == "rejected"
    assert "✗ Rejected by <@UBOSS02>" in message_text(boss.last)
    assert "Not proportionate" in message_text(boss.last)
    thread = [message_text(m) for m in alice.messages() if m.thread_ts == first.ts]
    assert any("rejected transfer" in t and "Not proportionate" in t for t in thread)
    # Both requests now show the decision; a late click on an old copy is refused.
    assert "✗ Rejected by <@UBOSS02>" in message_text(other.last)
    await other.click("Approve", message=stale)
    assert any("already rejected" in t for t in other.ephemeral())
    assert (await transfer(workspace, reference)).status == "rejected"
