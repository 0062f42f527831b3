"""Issue 11, finding 3: the approval request an approver decides on cannot be made to lie.

A sender controls the recipient's details, the purpose, the consent limits and the file
names. Each attack here goes in through the real entry point (signed Slack requests, Teams
activities over HTTP, the ``safehaven share`` process) and plants live mentions, markup,
a line break followed by a forged "• Classification: PUBLIC" line, invisible characters and
a 150,000-character file name; the approver's request must show the real facts (the
classification, the recipient, the email domain, the purpose), each on a line of its own,
with nothing hidden, within the platform's limits, and still be decided by a click.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.answers import approval_reference
from bot.replies import ApprovalRequest
from bot.vault import generate_key
from channels.console.render import render as console_render
from channels.slack import blocks as slack_blocks
from channels.teams import cards as teams_cards
from store.models import Transfer, TransferFile
from tests.support.core import PDF, SHARE_RECORD_FLAGS
from tests.support.fake_slack import Message
from tests.support.fake_teams import Call
from tests.support.slack import (  # noqa: F401 (fixtures)
    Workspace,
    fake_slack,
    slack_policy,
    workspace,
)
from tests.support.teams import (  # noqa: F401 (fixture)
    APPROVER_AAD,
    SENDER_AAD,
    TeamsWorld,
    teams,
)

ROOT = Path(__file__).resolve().parents[2]
INVISIBLE = "\u200b\ufeff\u00ad\u3164\u2060\u200d\u202e"
MANAGER = "UMGR0001"
FORGED = "\n• Classification: PUBLIC\n"
# What a hostile sender types. Slack sends a typed mention as <@U…>; "slack:U…" is how our
# own ids look (and Slack text would turn them into a mention if they were not plain text).
NAME = f"Priya Shah <@{MANAGER}> slack:{MANAGER} *PUBLIC* ~struck~ \u200b\ufeff\u00ad\u3164"
ORGANISATION = "Northfield NHS Trust\u200b _italic_ **bold** [link](https://evil.example)"
PURPOSE = (f"Strategy meeting about a child at risk{FORGED}<!channel> <@{MANAGER}> "
           "*approved already* \u200b\ufeff")
USE_LIMITS = "Only for the meeting\n• Onward sharing: allowed\u00ad **yes**"
LONG_NAME = "A" * 150_000 + ".pdf"

SLACK_SECTION_MAX = 3000
SLACK_BUTTON_MAX = 75
TEAMS_MESSAGE_MAX = 28_000  # bytes: what Teams takes in one bot message


def no_invisible(text: str) -> bool:
    return not any(ch in text for ch in INVISIBLE)


def assert_facts(lines: list[str], *, prefix: str = "") -> None:
    """The facts an approver decides on, each on one line of its own; nothing forged (a
    forged line may only be text inside the fact it was typed into)."""
    classification = [line for line in lines if line.startswith(f"{prefix}Classification:")]
    assert classification == [f"{prefix}Classification: RESTRICTED"], lines
    assert not any(line.lstrip().startswith("•") for line in lines), lines
    assert f"{prefix}Email domain: nhs.net" in lines, lines
    assert any(line.startswith(f"{prefix}Recipient: Priya Shah") for line in lines), lines
    assert any(line.startswith(f"{prefix}Organisation: Northfield NHS Trust")
               for line in lines), lines
    assert any(line.startswith(f"{prefix}Purpose: Strategy meeting about a child at risk")
               for line in lines), lines
    assert any(line.startswith(f"{prefix}Files: 1 file,") for line in lines), lines
    assert all(no_invisible(line) for line in lines), lines


# --- Slack ---------------------------------------------------------------------------------


def slack_texts(message: Message) -> list[tuple[str, str]]:
    """(type, text) of every text object a person reads in a message."""
    found: list[tuple[str, str]] = []
    for block in message.blocks:
        if "text" in block:
            found.append((block["text"]["type"], block["text"]["text"]))
        for item in [*block.get("fields", []), *block.get("elements", [])]:
            if "type" in item and "text" in item and isinstance(item["text"], str):
                found.append((item["type"], item["text"]))
            elif isinstance(item.get("text"), dict):
                found.append((item["text"]["type"], item["text"]["text"]))
    return found


def assert_slack_request_is_honest(message: Message) -> None:
    assert len(message.blocks) <= 50
    assert len(message.text) <= SLACK_SECTION_MAX
    for block in message.blocks:
        assert len(block.get("block_id", "")) <= 255
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= SLACK_SECTION_MAX
        for element in block.get("elements", []):
            if element.get("type") == "button":
                assert len(element["text"]["text"]) <= SLACK_BUTTON_MAX
    texts = slack_texts(message)
    # Markup is read only in mrkdwn: there, the only mention is the sender's (ours).
    for kind, text in [*texts, ("mrkdwn", message.text)]:
        if kind == "mrkdwn":
            assert re.findall(r"<[@!#]([^>|]*)", text) in ([], ["UALICE01"]), text
            assert MANAGER not in text and "PUBLIC" not in text, text
    lines = [line for kind, text in texts if kind == "plain_text" for line in text.split("\n")]
    assert_facts(lines)
    assert no_invisible(json.dumps(message.blocks, ensure_ascii=False) + message.text)
    assert "AAAAAAAAAAAAAAAA" not in json.dumps(message.blocks)  # files: a count, no names


async def test_slack_approval_request_cannot_be_forged(
        workspace: Workspace) -> None:  # noqa: F811 (the fixture imported above)
    alice = workspace.user("UALICE01")
    await alice.send_files((LONG_NAME, PDF))
    reference = re.search(r"SH-[0-9A-Z]{4}-[0-9A-Z]{2}", alice.text)
    assert reference, alice.text[:500]
    ref = reference.group(0)
    async with workspace.svc.db.read() as session:
        (stored,) = (await session.scalars(select(TransferFile.original_name))).all()
    assert len(stored) == 255 and stored.endswith("….pdf")  # clipped on the way in

    await alice.click("RESTRICTED")

    await alice.tick("Contact details only", "Other personal data")
    view = await alice.open_form()
    recipient: dict[str, str | list[str]] = {
        "name": NAME, "job_title": "Safeguarding Lead\u200b", "organisation": ORGANISATION,
        "email": "priya.shah@nhs.net", "phone": "07911 123456"}
    # A line break in a one-line detail is refused with the reason, in the modal.
    refused = await alice.submit(view, {**recipient, "name": f"Priya Shah{FORGED}"})
    assert refused.get("response_action") == "errors", refused
    assert await alice.submit(view, recipient) == {}
    await alice.say(PURPOSE)
    await alice.click("UK GDPR Art 6(1)(e) public task")
    assert await alice.submit(await alice.open_form(), {
        "use_limits": USE_LIMITS, "onward_sharing": "no", "delete_after_use": ["yes"]}) == {}
    await alice.click("Encrypted archive")
    await alice.click("SMS once receipt is confirmed")
    await alice.click("Confirm and send")
    assert "needs authorising" in alice.text

    boss = workspace.user("UBOSS01")
    request = boss.last
    assert_slack_request_is_honest(request)
    # The details are kept, visible (as typed text, not markup), not dropped.
    assert f"<@{MANAGER}> slack:{MANAGER} *PUBLIC* ~struck~" in json.dumps(request.blocks)

    async with workspace.svc.db.read() as session:
        row = await session.get(Transfer, ref)
    assert row is not None and row.recipient is not None
    assert row.recipient["name"] == f"Priya Shah <@{MANAGER}> slack:{MANAGER} *PUBLIC* ~struck~"
    assert row.purpose is not None and "\n" not in row.purpose and no_invisible(row.purpose)

    # Clicks on the typed request still reach the approval handler.
    await boss.click("Approve")
    async with workspace.svc.db.read() as session:
        row = await session.get(Transfer, ref)
    assert row is not None and row.status == "ready" and row.authorised_by == "slack:UBOSS01"


# --- Teams ---------------------------------------------------------------------------------


def assert_teams_request_is_honest(call: Call) -> None:
    body = json.dumps(call.body, ensure_ascii=False)
    assert len(body.encode()) < TEAMS_MESSAGE_MAX
    assert "entities" not in call.body  # no mention of anyone
    assert no_invisible(body)
    card = call.card
    lines: list[str] = []
    for element in card["body"]:
        if element["type"] == "TextBlock":  # Markdown is read here: only our own words
            assert MANAGER not in element["text"] and "PUBLIC" not in element["text"]
            assert "**" not in element["text"] and "](" not in element["text"]
            assert "<at>" not in element["text"]
        elif element["type"] == "RichTextBlock":  # TextRuns: shown as typed
            runs = [run["text"] for run in element["inlines"]]
            assert all(run["type"] == "TextRun" for run in element["inlines"])
            assert not any("\n" in run or "\r" in run for run in runs)
            lines.append("".join(runs))
        else:
            assert element["type"].startswith("Input."), element
    assert_facts(lines)


async def test_teams_approval_request_cannot_be_forged(
        teams: TeamsWorld) -> None:  # noqa: F811 (the fixture imported above)
    approver = teams.user(APPROVER_AAD, "Morgan Manager")
    await approver.install()
    sender = teams.user(SENDER_AAD, "Alex Sender")
    await sender.send_file(LONG_NAME, teams.files.serve(PDF))
    ref = re.search(r"SH-[0-9A-Z]{4}-[0-9A-Z]{2}", sender.text_since(0))
    assert ref, sender.text_since(0)[:500]
    await sender.click(sender.last_card(), "RESTRICTED")
    await sender.tick("Contact details only", "Other personal data")
    recipient = {"name": NAME, "job_title": "Safeguarding Lead", "organisation": ORGANISATION,
                 "email": "priya.shah@nhs.net", "phone": "07911 123456"}
    form = sender.last_card()
    await sender.click(form, "Continue", {**recipient, "name": f"Priya Shah{FORGED}"})
    assert "can't be used" in sender.text_since(0)  # refused, asked again
    await sender.click(sender.last_card(), "Continue", recipient)
    await sender.click(sender.last_card(), "Send", {"sh_text": PURPOSE})
    card = sender.last_card()
    basis = next(e for e in card.card["body"] if e["type"] == "Input.ChoiceSet")
    await sender.click(card, "Continue", {"sh_v": basis["choices"][0]["value"]})
    await sender.click(sender.last_card(), "Continue", {
        "use_limits": USE_LIMITS, "onward_sharing": "no", "delete_after_use": "yes"})
    delivery = sender.last_card()
    await sender.click(delivery, sender.option_title(delivery, "archive"))
    await sender.click(sender.last_card(), "SMS once receipt is confirmed")
    await sender.click(sender.last_card(), "Confirm and send")
    assert "needs authorising" in sender.text_since(0)

    request = approver.last_card()
    assert_teams_request_is_honest(request)
    await approver.click(request, "Approve")
    async with teams.services.db.read() as session:
        row = await session.get(Transfer, ref.group(0))
    assert row is not None and row.status == "ready"


# --- the terminal --------------------------------------------------------------------------


def test_terminal_approval_request_cannot_be_forged(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAFEHAVEN_", "TWILIO_"))}
    env.update(SAFEHAVEN_VAR_DIR=str(tmp_path / "var"), SAFEHAVEN_SECRET_KEY=generate_key(),
               SAFEHAVEN_LOG_LEVEL="WARNING")
    upload = tmp_path / "referral\u202e\u200bfdp.pdf"
    upload.write_bytes(PDF)
    escapes = "\x1b]0;owned\x07\x1b[2J\x1b[31m"
    result = subprocess.run(
        [sys.executable, "-m", "bot.app.cli", "share", str(upload), "--classification",
         "RESTRICTED", "--recipient-name", NAME, "--recipient-title", "Safeguarding Lead",
         "--recipient-org", ORGANISATION, "--recipient-email", "priya.shah@nhs.net",
         "--recipient-phone", "07911 123456", "--purpose", PURPOSE + escapes,
         "--consent", USE_LIMITS + escapes, "--password-via", "sms-on-receipt",
         "--sender", "console:alice", *SHARE_RECORD_FLAGS],
        env=env, text=True, capture_output=True, timeout=120, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Do you authorise" not in result.stdout  # the sender never sees the manager's card
    # The request is kept for the manager and shown when they next open a chat.
    shown = subprocess.run(
        [sys.executable, "-m", "bot.app.cli", "chat", "--sender", "console:manager"],
        env=env, text=True, capture_output=True, timeout=120, cwd=ROOT, check=False,
        stdin=subprocess.DEVNULL)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "Do you authorise" in shown.stdout, shown.stdout
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", shown.stdout)  # no escapes
    request = shown.stdout.split("Do you authorise", 1)[0]
    lines = [line.strip() for line in request.splitlines()]
    assert_facts(lines)


# --- stored before the fix: every renderer still shows one line per fact ------------------


def test_every_channel_renders_hostile_stored_values_as_one_line_each() -> None:
    """A request built from values that were never cleaned (a transfer stored before this
    fix): the renderers still show each fact on one line, clipped, with nothing hidden."""
    request = ApprovalRequest(
        reference="SH-AB12-34", sender="slack:UALICE01", classification="RESTRICTED",
        recipient_name=NAME + FORGED * 5000, recipient_organisation=ORGANISATION,
        recipient_email="priya.shah@nhs.net", purpose=PURPOSE * 2000,
        lawful_basis="UK GDPR Art 6(1)(e) public task\x1b[2J", file_count=1,
        total_size="1.2 MB", use_limits=USE_LIMITS * 1000)
    posts = slack_blocks.render([request], ZoneInfo("Europe/London"))
    assert len(posts) == 1 and isinstance(posts[0], slack_blocks.Post)
    post = posts[0]
    assert post.question == "approval:SH-AB12-34"
    assert_slack_request_is_honest(Message("D1", "1.0", post.text, post.blocks))
    assert any("…" in text for _kind, text in slack_texts(
        Message("D1", "1.0", post.text, post.blocks)))  # clipped, not dropped

    (activity,) = teams_cards.render([request])
    call = Call("POST", "a:1", None, activity, "")
    assert_teams_request_is_honest(call)
    assert call.card["actions"][0]["data"]["sh_q"] == "approval:SH-AB12-34"

    text = console_render(request)
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", text)
    assert_facts([line.strip() for line in text.splitlines()])


@pytest.mark.parametrize("question", ["approval:SH-AB12-34", "approval:", "approvalSH", "x"])
def test_an_answer_names_an_approval_only_by_its_question(question: str) -> None:
    expected = question.removeprefix("approval:") if question.startswith("approval:") else None
    assert approval_reference(question) == expected


# --- invisible marks that are not format characters ----------------------------------------

# Default-ignorable marks (Mn) and an unassigned code point: each shows as nothing.
DISGUISED = ("J\u034fohn Sm\u17b4ith "
             "9\u180b4\u180f3\ufe0f4\U000e01007\u17b56\U000e01ef5\u03789\u180d19.pdf")


def test_a_name_disguised_by_invisible_marks_still_gets_the_warning(tmp_path: Path) -> None:
    """Issue 11 (second review): U+034F, U+17B4/5, U+180B–F, variation selectors and
    unassigned code points split "John Smith 9434765919" invisibly; the terminal chat (a real
    ``safehaven chat`` process) shows the clean name and warns as for the plain one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAFEHAVEN_", "TWILIO_"))}
    env.update(SAFEHAVEN_VAR_DIR=str(tmp_path / "var"), SAFEHAVEN_SECRET_KEY=generate_key(),
               SAFEHAVEN_LOG_LEVEL="WARNING")
    upload = tmp_path / DISGUISED
    upload.write_bytes(PDF)
    result = subprocess.run(
        [sys.executable, "-m", "bot.app.cli", "chat", str(upload), "--sender", "console:alice"],
        env=env, text=True, input="\n", capture_output=True, timeout=120, cwd=ROOT,
        check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "• John Smith 9434765919.pdf (" in result.stdout
    assert "looks like it identifies a person" in result.stdout
    assert "“John Smith” looks like a person's name" in result.stdout
    assert "“9434765919” looks like an NHS number" in result.stdout
