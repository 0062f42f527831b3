"""Issue 11 through signed Slack requests: one person's second id cannot approve their own
transfer (finding 8), and another person's reference is answered exactly like a made-up one,
in DMs, slash commands and approval clicks (finding 7)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.policy import load_policy
from bot.policy_rules import Policy
from store.models import Approval, AuditRecord
from tests.channels.slack.test_flow import answer_up_to_confirm, reference_in, transfer
from tests.support.core import PDF, Conversation, answer_all
from tests.support.fake_slack import Message
from tests.support.slack import SlackUser, Workspace, message_text

FAKE = "SH-ZZZZ-99"


@pytest.fixture
def people_policy(slack_policy: Policy, tmp_path: Path) -> Policy:
    """The Slack test policy, where the approver UBOSS01 is also console:boss."""
    text = (tmp_path / "policy-slack.toml").read_text()
    text, n = re.subn(r"^\[people\]$", '[people]\nboss = ["slack:UBOSS01", "console:boss"]',
                      text, flags=re.M)
    assert n == 1
    path = tmp_path / "policy-people.toml"
    path.write_text(text)
    return load_policy(path)


async def actions_by(ws: Workspace, reference: str, actor: str) -> list[str]:
    async with ws.svc.db.read() as session:
        return list((await session.scalars(select(AuditRecord.action).where(
            AuditRecord.reference == reference, AuditRecord.actor == actor)
            .order_by(AuditRecord.seq))).all())


async def test_an_approver_cannot_approve_under_their_slack_id_what_they_sent_elsewhere(
        workspace: Workspace, people_policy: Policy, make_file: Any) -> None:
    workspace.svc.policy = people_policy
    boss = Conversation(workspace.svc, "console:boss")  # the terminal: same person
    await boss.send_files(make_file("a.pdf"))
    ref = reference_in(boss.text)
    await answer_all(boss, classification="RESTRICTED", password="sms-on-receipt")
    await boss.say("confirm")
    assert "needs authorising" in boss.text
    me_on_slack, other = workspace.user("UBOSS01"), workspace.user("UBOSS02")
    assert me_on_slack.messages() == []  # not asked under their other id
    request = other.last
    assert f"Do you authorise {ref}?" in message_text(request)

    await me_on_slack.click("Approve", message=request)
    await me_on_slack.click("Reject", message=request)
    refusals = me_on_slack.ephemeral()
    assert len(refusals) == 2 and all("cannot authorise your own transfer" in t
                                      for t in refusals), refusals
    assert workspace.fake.views == []  # no rejection form opened for them either
    assert (await transfer(workspace, ref)).status == "awaiting_approval"
    async with workspace.svc.db.read() as session:
        approval = (await session.scalars(select(Approval).where(
            Approval.reference == ref))).one()
    assert approval.status == "pending" and approval.decided_by is None
    assert await actions_by(workspace, ref, "slack:UBOSS01") == ["near_miss"] * 2  # self
    # The other approver still can.
    await other.click("Approve", message=request)
    assert (await transfer(workspace, ref)).status == "ready"


def new_text(user: SlackUser, before: int) -> str:
    return "\n".join(message_text(m) for m in user.messages()[before:])


def forged(message: Message, real: str) -> Message:
    """The approver's request as if it were for a reference nobody was given."""
    copied = copy.deepcopy(message)
    copied.blocks = json.loads(json.dumps(message.blocks).replace(real, FAKE))
    copied.text = message.text.replace(real, FAKE)
    return copied


async def test_another_persons_reference_is_answered_like_a_made_up_one(
        workspace: Workspace) -> None:
    alice = workspace.user("UALICE01")
    await alice.send_files(("case.pdf", PDF))
    ref = reference_in(alice.text)
    await answer_up_to_confirm(alice, classification="RESTRICTED",
                               password="SMS once receipt is confirmed")
    await alice.click("Confirm and send")
    assert (await transfer(workspace, ref)).status == "awaiting_approval"
    outbox = workspace.svc.settings.outbox_path
    sent = outbox.read_text() if outbox.exists() else ""

    bob = workspace.user("UBOB0001")
    for command in ("status {}", "cancel {}", "received {}", "archive {}",
                    "call {} 2026-11-24 11:00"):
        answers = []
        for reference in (ref, FAKE):
            before = len(bob.messages())
            await bob.say(command.format(reference))
            answers.append(new_text(bob, before).replace(reference, "REF"))
        assert answers[0] == answers[1], (command, answers)
        assert "cannot find a transfer REF" in answers[0]
    for command in ("status {}", "cancel {}"):  # the slash command answers in the DM too
        answers = []
        for reference in (ref, FAKE):
            before = len(bob.messages())
            status, body = await workspace.command("UBOB0001", command.format(reference))
            assert status == 200
            answers.append(body + new_text(bob, before).replace(reference, "REF"))
        assert answers[0] == answers[1], (command, answers)

    # An approval button for someone else's transfer, and the same for a made-up one.
    request = workspace.user("UBOSS01").last
    mallory = workspace.user("UMALLORY")
    views = len(workspace.fake.views)
    for label in ("Approve", "Reject"):
        await mallory.click(label, message=request)
        await mallory.click(label, message=forged(request, ref))
    said = [t.replace(ref, "REF").replace(FAKE, "REF") for t in mallory.ephemeral()]
    assert len(said) == 4 and len(set(said)) == 1 and "cannot find" in said[0], said
    assert len(workspace.fake.views) == views  # no rejection form for either

    # Nothing changed.
    assert (await transfer(workspace, ref)).status == "awaiting_approval"
    assert (outbox.read_text() if outbox.exists() else "") == sent
    assert not workspace.fake.uploads
    assert set(await actions_by(workspace, ref, "slack:UBOB0001")) == {"access_refused"}
