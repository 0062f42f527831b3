"""Issue 11, finding 5: in production, a message for someone whose channel is not configured
goes to no log and no terminal. It is kept for them (sealed, in ``held_notices``), the one
who caused it is told in their own conversation, and it reaches the person the next time
they talk to the bot. Run through the real ``safehaven`` command line, as a process, with
SAFEHAVEN_ENV=production and Twilio (the fake) configured."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from bot.policy_rules import Policy
from bot.vault import generate_key
from channels.console.notifier import ConsoleNotifier, ConsoleNotifierRefused
from handlers.notify import HeldNotices, NotifierRouter
from handlers.services import Services
from store import repositories as repo
from tests.reliability.conftest import twilio_env
from tests.support.core import PDF, SHARE_RECORD_FLAGS, Clock, Conversation, answer_all
from tests.support.core import RECIPIENT as RECIPIENT_FORM
from tests.support.fake_twilio import FakeTwilio
from tests.support.tls import trusting_env

ROOT = Path(__file__).resolve().parents[2]
RECIPIENT = "Priya Shah-Holdfast"
ORGANISATION = "Northfield Community Trust"
PURPOSE = "Strategy meeting about a child at risk of harm"
# Not a domain with a sharing agreement: CONTROLLED needs an approver.
EMAIL = "priya.holdfast@northfield-trust.org.uk"
PERSONAL = (RECIPIENT, ORGANISATION, PURPOSE, EMAIL, "/p/")


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str


async def cli(env: dict[str, str], *args: str, stdin: str = "") -> Ran:
    """``safehaven ARGS`` as a process; awaited, so the fake Twilio keeps serving."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.app.cli", *args, env=env, cwd=ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), 120)
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode())


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilio]:
    """The fake Twilio over https: production refuses a plain http TWILIO_API_URL."""
    server = FakeTwilio()
    server.tls = True
    await server.start()
    yield server
    await server.close()


def production_env(tmp_path: Path, fake: FakeTwilio) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SAFEHAVEN_", "TWILIO_", "SLACK_", "Microsoft"))}
    env.update(twilio_env(fake))
    env.update(trusting_env(), SAFEHAVEN_ENV="production",
               SAFEHAVEN_VAR_DIR=str(tmp_path / "var"), SAFEHAVEN_SECRET_KEY=generate_key(),
               SAFEHAVEN_LOG_LEVEL="DEBUG")
    return env


def share_args(case: Path, *extra: str) -> list[str]:
    return ["share", str(case), "--classification", "CONTROLLED", *SHARE_RECORD_FLAGS,
            "--recipient-name", RECIPIENT, "--recipient-title", "Safeguarding Lead",
            "--recipient-org", ORGANISATION, "--recipient-email", EMAIL,
            "--recipient-phone", "07911 123456", "--purpose", PURPOSE,
            "--consent", "Only for the strategy meeting", "--password-via", "sms",
            "--sender", "console:alice", *extra]


def assert_nothing_personal(var: Path, *runs: Ran) -> None:
    """No log, notification file or output holds the recipient, the purpose or a link.
    (The database holds the transfer itself; it is the store, not a log.)"""
    for ran in runs:
        for text in PERSONAL:
            assert text not in ran.stdout and text not in ran.stderr, (text, ran)
    files = [p for p in var.rglob("*") if p.is_file()
             and not p.name.startswith("safehaven.db") and p.suffix not in (".zip", ".bin")]
    assert files  # the log, at least
    for path in files:
        data = path.read_bytes()
        for text in PERSONAL:
            assert text.encode() not in data, (text, path)
    assert not (var / "notifications.log").exists()


def held_rows(var: Path) -> list[tuple[str, str | None, str, str]]:
    with sqlite3.connect(var / "safehaven.db") as db:
        return db.execute("SELECT user_id, reference, kind, sealed FROM held_notices "
                          "ORDER BY id").fetchall()


async def test_an_approval_request_for_an_unconfigured_channel_is_kept_not_logged(
        tmp_path: Path, fake: FakeTwilio) -> None:
    env = production_env(tmp_path, fake)
    var = tmp_path / "var"
    case = tmp_path / "case.pdf"
    case.write_bytes(PDF)

    # The default policy's approver is console:manager; there is no console in production.
    shared = await cli(env, *share_args(case, "--verbose"))
    assert shared.code == 0, shared
    ref = re.search(r"reference: (SH-\S+)", shared.stdout)
    assert ref, shared.stdout
    reference = ref.group(1)
    # The sender is told, in their own conversation, that the approver was not reached.
    assert ("I could not reach your approver console:manager: the terminal is not set up"
            in shared.stdout)
    assert f"Your request {reference} is kept for them" in shared.stdout
    assert_nothing_personal(var, shared)

    # Kept for the approver, sealed: the stored row names nobody and links nowhere.
    rows = held_rows(var)
    assert [(u, r, k) for u, r, k, _ in rows] == [("console:manager", reference, "request")]
    for text in PERSONAL:
        assert text not in rows[0][3]

    # The approver talks to the bot: the request reaches them first, once.
    chat = await cli(env, "chat", "--sender", "console:manager", stdin="quit\n")
    assert chat.code == 0, chat
    assert "While I could not reach you, a message was kept for you:" in chat.stdout
    assert f"console:alice asks you to authorise transfer {reference}" in chat.stdout
    assert RECIPIENT in chat.stdout and PURPOSE in chat.stdout
    assert held_rows(var) == []
    again = await cli(env, "chat", "--sender", "console:manager", stdin="quit\n")
    assert "kept for you" not in again.stdout and RECIPIENT not in again.stdout
    assert_nothing_personal(var, again)


async def test_a_portal_link_for_an_unreachable_sender_is_kept_sealed(
        tmp_path: Path, fake: FakeTwilio) -> None:
    env = production_env(tmp_path, fake)
    var = tmp_path / "var"
    case = tmp_path / "case.pdf"
    case.write_bytes(PDF)
    shared = await cli(env, *share_args(case, "--delivery", "portal"))
    assert shared.code == 0, shared
    reference = re.search(r"reference: (SH-\S+)", shared.stdout).group(1)  # type: ignore[union-attr]

    # Approved at the command line: the archive's link is for the sender, who is on the
    # terminal, which production does not serve. The approver hears so; nothing is logged.
    approved = await cli(env, "approve", reference, "--approver", "console:manager")
    assert approved.code == 0, approved
    assert f"Recorded: you approved transfer {reference}." in approved.stdout
    assert "I could not reach console:alice: the terminal is not set up" in approved.stdout
    assert_nothing_personal(var, shared, approved)
    assert len(fake.messages) == 1  # the password went by SMS, as the sender chose
    rows = held_rows(var)
    assert [(u, r, k) for u, r, k, _ in rows] == [("console:alice", reference, "notice")]
    assert "/p/" not in rows[0][3]

    # The sender's next run of the command line hands them the link first.
    again = await cli(env, "chat", "--sender", "console:alice", stdin="quit\n")
    assert "While I could not reach you" in again.stdout
    assert "https://safehaven.example.gov.uk/p/" in again.stdout
    assert held_rows(var) == []


async def test_a_kept_request_reaches_the_person_on_another_channel_once_and_only_while_pending(
        services: Services, policy: Policy, clock: Clock, make_file: Any) -> None:
    """Kept under console:manager, it reaches Jane when she writes from Slack (the policy's
    [people] makes both ids hers); a request that expired meanwhile is not handed over."""
    services.policy = replace(policy, people={"jane": ("console:manager", "slack:UMGR0001")})
    services.notifier = NotifierRouter(HeldNotices(services.db, services.vault, clock))
    recipient = dict(RECIPIENT_FORM, email="priya.shah@northfield-trust.org.uk")

    alice = Conversation(services, "console:alice")
    await alice.send_files(make_file("first.pdf"))
    await answer_all(alice, recipient=recipient)
    await alice.say("confirm")
    assert "I could not reach your approver console:manager" in alice.text

    jane = Conversation(services, "slack:UMGR0001")
    await jane.say("help")
    assert "While I could not reach you, a message was kept for you:" in jane.text
    assert "console:alice asks you to authorise transfer" in jane.text
    await jane.say("help")
    assert "kept for you" not in jane.text

    # A second request expires before Jane writes again: it is dropped, not handed over.
    await alice.send_files(make_file("second.pdf"))
    await answer_all(alice, recipient=recipient)
    await alice.say("confirm")
    assert "I could not reach your approver" in alice.text
    clock.advance(hours=policy.approval_expiry_hours + 1)
    await jane.say("help")
    assert "kept for you" not in jane.text and "authorise" not in jane.text
    async with services.db.read() as session:
        assert await repo.held_notices(session, user_ids=("console:manager",)) == []


def test_production_refuses_the_console_notifier(tmp_path: Path) -> None:
    with pytest.raises(ConsoleNotifierRefused, match="SAFEHAVEN_ENV=production"):
        ConsoleNotifier(log_path=tmp_path / "notifications.log", production=True)
