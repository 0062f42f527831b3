"""Authorisation, each rule a test: only the sender changes or cancels a transfer (in the
chat and at the command line), only a listed approver decides it and never their own, and
the audit trail is exported only by the admin command line: nothing typed in a chat
reaches it. On SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bot.events import ApprovalDecision
from bot.policy import parse_policy
from bot.settings import Settings
from handlers import approvals
from handlers.conversation import COMMANDS, current_state, take_turn
from handlers.password_sends import scheduling
from handlers.services import Services
from store.models import Approval, AuditRecord, PasswordSend, Transfer
from tests.support.core import Conversation, answer_all

ROOT = Path(__file__).resolve().parents[2]


def reference_of(chat: Conversation) -> str:
    match = re.search(r"SH-[0-9A-Z]{4}-[0-9A-Z]{2}", chat.text)
    assert match, chat.text
    return match.group(0)


async def row(svc: Services, ref: str) -> Transfer:
    async with svc.db.read() as s:
        t = await s.get(Transfer, ref)
    assert t is not None
    return t


async def deliveries(svc: Services, ref: str) -> list[tuple[str, str]]:
    async with svc.db.read() as s:
        rows = (await s.scalars(select(PasswordSend).where(PasswordSend.reference == ref))).all()
    return sorted((d.kind, d.status) for d in rows)


async def audit_count(svc: Services) -> int:
    async with svc.db.read() as s:
        return int(await s.scalar(select(func.count()).select_from(AuditRecord)) or 0)


async def shares(conversation: Any, make_file: Any) -> dict[str, str]:
    """Alice's transfers in four states: a draft mid-conversation, one waiting for approval,
    one packaged with its SMS waiting for receipt, one packaged with its SMS sent."""
    refs: dict[str, str] = {}
    alice = conversation("console:alice")
    await alice.send_files(make_file("a.pdf"))
    refs["awaiting"] = reference_of(alice)
    await answer_all(alice, classification="RESTRICTED", password="sms-on-receipt")
    await alice.say("confirm")
    await alice.send_files(make_file("b.pdf"))
    refs["on_receipt"] = reference_of(alice)
    await answer_all(alice, password="sms-on-receipt")
    await alice.say("confirm")
    await alice.send_files(make_file("c.pdf"))
    refs["sent"] = reference_of(alice)
    await answer_all(alice)
    await alice.say("confirm")
    await alice.send_files(make_file("d.pdf"))
    refs["draft"] = reference_of(alice)
    await alice.say("CONTROLLED")
    return refs


async def test_only_the_sender_cancels_or_changes_a_transfer(
        services: Services, conversation: Any, make_file: Any) -> None:
    refs = await shares(conversation, make_file)
    before = {name: (await row(services, ref)).status for name, ref in refs.items()}
    assert before == {"awaiting": "awaiting_approval", "on_receipt": "ready", "sent": "ready",
                      "draft": "draft"}
    alice_state = await current_state(services, conversation_id="console:alice")
    outbox = services.settings.outbox_path.read_text()
    mallory = conversation("console:mallory")
    manager = conversation("console:manager")  # an approver is not the sender either
    for other in (mallory, manager):
        for ref in refs.values():  # the answer a made-up reference gets
            await other.say(f"cancel {ref}")
            assert f"cannot find a transfer {ref}" in other.text, other.text
            await other.say(f"received {ref}")
            assert f"cannot find a transfer {ref}" in other.text, other.text
            await other.say(f"call {ref} 2026-11-24 11:00")
            assert f"cannot find a transfer {ref}" in other.text, other.text
            await other.say(f"status {ref}")
            if other is mallory or ref != refs["awaiting"]:
                assert "cannot find" in other.text  # says nothing about someone else's
    after = {name: (await row(services, ref)).status for name, ref in refs.items()}
    assert after == before
    assert await current_state(services, conversation_id="console:alice") == alice_state
    assert services.settings.outbox_path.read_text() == outbox  # no password released
    assert await deliveries(services, refs["on_receipt"]) == [("sms", "waiting")]
    assert await deliveries(services, refs["sent"]) == [("sms", "delivered")]
    # The sender can.
    alice = conversation("console:alice")
    await alice.say(f"received {refs['on_receipt']}")
    assert "texted" in alice.text
    await alice.say(f"cancel {refs['awaiting']}")
    assert (await row(services, refs["awaiting"])).status == "awaiting_approval"  # asked
    await alice.say("yes")
    assert (await row(services, refs["awaiting"])).status == "cancelled"


async def test_handler_level_checks_refuse_another_user(services: Services, conversation: Any,
                                                        make_file: Any) -> None:
    """The same rules below the chat: the use cases themselves check who is asking."""
    from handlers.conversation import cancel_by_sender

    refs = await shares(conversation, make_file)
    for ref in refs.values():
        assert "cannot find" in await cancel_by_sender(services, reference=ref,
                                                       user_id="console:mallory")
        replies = await scheduling.confirm_receipt(services, reference=ref, by="console:mallory")
        assert "cannot find" in replies[0].text  # type: ignore[union-attr]
        replies = await scheduling.book_call(services, reference=ref, by="console:mallory",
                                           when_text="2026-11-24 11:00")
        assert "cannot find" in replies[0].text  # type: ignore[union-attr]
    assert await deliveries(services, refs["on_receipt"]) == [("sms", "waiting")]


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAFEHAVEN_", "TWILIO_"))}
    assert settings.secret_key
    env.update(SAFEHAVEN_VAR_DIR=str(settings.var_dir),
               SAFEHAVEN_DATABASE_URL=settings.database_url,
               SAFEHAVEN_SECRET_KEY=settings.secret_key, SAFEHAVEN_LOG_LEVEL="WARNING")
    return subprocess.run([sys.executable, "-m", "bot.app.cli", *args], env=env, text=True,
                          capture_output=True, timeout=120, cwd=ROOT, check=False)


async def test_command_line_cancel_and_received_as_another_sender_are_refused(
        services: Services, conversation: Any, make_file: Any) -> None:
    refs = await shares(conversation, make_file)
    result = cli(services.settings, "cancel", refs["awaiting"], "--sender", "console:mallory")
    assert result.returncode == 1 and "cannot find" in result.stdout, result
    result = cli(services.settings, "received", refs["on_receipt"], "--sender",
                 "console:mallory")
    assert "cannot find" in result.stdout, result
    assert (await row(services, refs["awaiting"])).status == "awaiting_approval"
    assert await deliveries(services, refs["on_receipt"]) == [("sms", "waiting")]


async def test_only_a_listed_approver_decides_and_never_their_own(
        services: Services, conversation: Any, make_file: Any) -> None:
    refs = await shares(conversation, make_file)
    ref = refs["awaiting"]
    for who, expected in (("console:alice", "cannot authorise your own"),
                          ("console:mallory", "cannot find"),  # as a made-up reference
                          ("slack:UMANAGER", "cannot find"),  # same name, other channel
                          ("console:Manager", "cannot find")):
        for approve in (True, False):
            replies = await approvals.decide(services, approver_id=who, reference=ref,
                                             approve=approve, reason="because")
            assert expected in replies[0].text, (who, replies)  # type: ignore[union-attr]
    assert (await row(services, ref)).status == "awaiting_approval"
    # Typed in a chat, "approve" is just text; a decision event through a turn is ignored.
    for who in ("console:mallory", "console:alice", "console:manager"):
        chat = conversation(who)
        await chat.say(f"approve {ref}")
        await chat.event(ApprovalDecision(ref, approve=True))
    assert (await row(services, ref)).status == "awaiting_approval"
    async with services.db.read() as s:
        approval = (await s.scalars(select(Approval).where(Approval.reference == ref))).one()
    assert approval.status == "pending" and approval.decided_by is None
    # The listed approver decides, once.
    replies = await approvals.decide(services, approver_id="console:manager", reference=ref,
                                     approve=True)
    assert "approved" in replies[0].text  # type: ignore[union-attr]
    again = await approvals.decide(services, approver_id="console:manager", reference=ref,
                                   approve=False, reason="changed my mind")
    assert "already" in again[0].text  # type: ignore[union-attr]
    t = await row(services, ref)
    assert t.status == "ready" and t.authorised_by == "console:manager"


async def test_a_sender_listed_as_their_own_approver_still_cannot_approve(
        services: Services, conversation: Any, make_file: Any) -> None:
    text = resources.files("bot").joinpath("policies/default.toml").read_text()
    doc = copy.deepcopy(tomllib.loads(text))
    doc["approval"]["approvers"] = {"console:alice": ["console:alice", "console:manager"],
                                    "*": ["console:manager"]}
    services.policy = parse_policy(doc)
    assert services.policy.approvers_for("console:alice") == ("console:manager",)
    alice = conversation("console:alice")
    await alice.send_files(make_file("a.pdf"))
    ref = reference_of(alice)
    await answer_all(alice, classification="RESTRICTED", password="sms-on-receipt")
    await alice.say("confirm")
    async with services.db.transaction() as s:  # even if the request listed her
        approval = (await s.scalars(select(Approval).where(Approval.reference == ref))).one()
        assert approval.approvers == ["console:manager"]
        approval.approvers = ["console:alice", "console:manager"]
    replies = await approvals.decide(services, approver_id="console:alice", reference=ref,
                                     approve=True)
    assert "cannot authorise your own" in replies[0].text  # type: ignore[union-attr]
    assert (await row(services, ref)).status == "awaiting_approval"


EXPORT_WORDS = ["export", "audit", "audit export", "/audit export --format csv",
                "safehaven audit export --since 2026-01-01", "export all", "audit verify",
                "export SH-AAAA-22", "download audit", "/export", "log", "records", "history"]


async def test_audit_export_is_not_reachable_from_a_chat(services: Services, conversation: Any,
                                                         make_file: Any) -> None:
    refs = await shares(conversation, make_file)
    async with services.db.read() as s:
        hashes = set((await s.scalars(select(AuditRecord.hash))).all())
    assert hashes
    assert not {"export", "audit"} & set(COMMANDS)
    for who in ("console:mallory", "console:alice", "console:manager"):
        chat = conversation(who)
        for word in EXPORT_WORDS:
            before = await audit_count(services)
            turn = await take_turn(services, conversation_id=who, user_id=who,
                                   event=__import__("handlers.conversation", fromlist=["x"])
                                   .parse_text(word, question=chat.question))
            chat.last = turn
            text = chat.text
            assert not any(h in text for h in hashes), (who, word)
            assert not re.search(r"\b[0-9a-f]{64}\b", text)
            for action in ("password_scheduled", "approval_requested", "packaged"):
                assert action not in text
            if who == "console:mallory":  # nobody else's transfers either
                assert not any(ref in text for ref in refs.values())
            assert await audit_count(services) - before <= 1  # an answer at most, no export
    # Only the admin command line exports (and it does).
    result = cli(services.settings, "audit", "export", "--format", "json")
    assert result.returncode == 0 and len(result.stdout.splitlines()) >= len(hashes)


def test_only_the_command_line_calls_the_audit_export() -> None:
    callers = []
    for folder in ("bot", "handlers", "channels"):
        for path in (ROOT / folder).rglob("*.py"):
            if re.search(r"\baudit\.export\(|\bexport\(session", path.read_text()):
                callers.append(path.relative_to(ROOT).as_posix())
    assert callers == ["bot/app/admin.py"], callers


async def test_a_hostile_rejection_reason_is_stored_and_shown(services: Services,
                                                              conversation: Any,
                                                              make_file: Any) -> None:
    """The approver's free text reaches the database and the sender: NUL bytes and unpaired
    surrogates (from JSON escapes in a Slack or Teams payload) must not crash the decision."""
    refs = await shares(conversation, make_file)
    reason = "Not proportionate\x00 \ud800 <script>alert(1)</script> " + "x" * 5000
    replies = await approvals.decide(services, approver_id="console:manager",
                                     reference=refs["awaiting"], approve=False, reason=reason)
    assert "rejected" in replies[0].text  # type: ignore[union-attr]
    assert (await row(services, refs["awaiting"])).status == "rejected"
    async with services.db.read() as s:
        approval = (await s.scalars(select(Approval).where(
            Approval.reference == refs["awaiting"]))).one()
    assert approval.reason is not None and len(approval.reason) == 1000
    assert "\x00" not in approval.reason and "Not proportionate" in approval.reason
