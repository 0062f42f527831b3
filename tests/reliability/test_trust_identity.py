"""Issue 11, attacks on who may do what, through the command line and the terminal chat as
real processes against a real store:

1. an information-sharing agreement is a word the sender could type (``--recipient-org
   nhs.net``) and skipped approval: now only the recipient's email domain matches;
7. commands naming a transfer told another person's reference ("not yours") from a made-up
   one ("cannot find"): now both get the same answer, and nothing changes;
8. one person listed under two ids approved their own transfer under the second: now the
   policy's ``[people]`` makes them one person, and the refusal is audited.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.support.core import RECIPIENT, SHARE_RECORD_FLAGS, Conversation, answer_all

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_POLICY = ROOT / "bot" / "policies" / "default.toml"
FAKE = "SH-ZZZZ-99"  # a well-formed reference nobody was given


def run(env: dict[str, str], *args: str, stdin: str | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot.app.cli", *args], env=env, text=True,
                          capture_output=True, input=stdin, timeout=120, cwd=ROOT, check=False)


def share_args(*, org: str = "Northfield NHS Trust", email: str = "priya.shah@nhs.net",
               classification: str = "CONTROLLED", password: str = "sms",
               sender: str = "console:alice") -> list[str]:
    return ["--classification", classification, *SHARE_RECORD_FLAGS,
            "--recipient-name", "Priya Shah",
            "--recipient-title", "Safeguarding Lead", "--recipient-org", org,
            "--recipient-email", email, "--recipient-phone", "07911 123456",
            "--purpose", "Strategy meeting about a child at risk",
            "--consent", "Only for the strategy meeting", "--password-via", password,
            "--sender", sender]


def reference_from(result: subprocess.CompletedProcess[str]) -> str:
    found = re.search(r"reference: (SH-\S+)", result.stdout)
    assert result.returncode == 0 and found, result.stdout + result.stderr
    return found.group(1)


def audit_records(env: dict[str, str], reference: str) -> list[dict[str, Any]]:
    result = run(env, "audit", "export", "--format", "json")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return [r for r in records if r["reference"] == reference]


def outbox(env: dict[str, str]) -> str:
    path = Path(env["SAFEHAVEN_VAR_DIR"]) / "outbox.log"
    return path.read_text() if path.exists() else ""


def archives(env: dict[str, str]) -> list[Path]:
    return sorted((Path(env["SAFEHAVEN_VAR_DIR"]) / "archives").glob("*.zip"))


# --- 1. an agreement matches only the recipient's email domain ------------------------------


@pytest.mark.parametrize("email", ["eve@evil-exfil.example", "eve@evilnhs.net",
                                   "eve@nhs.net.evil.example"])
def test_a_typed_organisation_name_does_not_skip_approval(
        cli_env: dict[str, str], pdf: Path, tmp_path: Path, email: str) -> None:
    out = tmp_path / "out"
    result = run(cli_env, "share", str(pdf), *share_args(org="nhs.net", email=email),
                 "--out", str(out))
    ref = reference_from(result)
    assert "needs authorising" in result.stdout, result.stdout
    assert "archive:" not in result.stdout
    assert not out.exists() and archives(cli_env) == []  # nothing packaged
    assert ref not in outbox(cli_env)  # and no password texted
    assert "waiting for approval" in run(cli_env, "status", ref).stdout
    (confirmed,) = [r for r in audit_records(cli_env, ref) if r["action"] == "confirmed"]
    approval = confirmed["details"]["approval"]
    assert (approval["rule"], approval["required"], approval["sharing_agreement"],
            approval["agreement_gap"]) == ("without-agreement", True, None, "no-agreement")


def test_an_agreement_covers_its_exact_domain_and_is_recorded(
        cli_env: dict[str, str], pdf: Path) -> None:
    """The organisation name is irrelevant either way: the address decides. The shipped
    NHS agreement lists "nhs.net" exactly, so trust.nhs.net is not covered."""
    result = run(cli_env, "share", str(pdf), *share_args(org="Anything Ltd",
                                                         email="priya.shah@nhs.net"))
    ref = reference_from(result)
    assert "needs authorising" not in result.stdout
    assert f"archive: {Path(cli_env['SAFEHAVEN_VAR_DIR']) / 'archives' / ref}.zip" \
        in result.stdout
    assert f"password for {ref} is" in outbox(cli_env)
    (confirmed,) = [r for r in audit_records(cli_env, ref) if r["action"] == "confirmed"]
    approval = confirmed["details"]["approval"]
    assert (approval["rule"], approval["required"]) == ("without-agreement", False)
    assert approval["sharing_agreement"]["name"] == "NHS health and care partners"
    assert approval["sharing_agreement"]["reference"] == "ISA-2025-004"
    assert confirmed["details"]["recipient"]["organisation"] == "Anything Ltd"
    subdomain = run(cli_env, "share", str(pdf), *share_args(org="Anything Ltd",
                                                            email="priya.shah@trust.nhs.net"))
    assert "needs authorising" in subdomain.stdout, subdomain.stdout


async def test_the_summary_names_the_agreement_that_matched(conversation: Any,
                                                            make_file: Any) -> None:
    alice: Conversation = conversation("console:alice")
    await alice.send_files(make_file("a.pdf"))
    await answer_all(alice, recipient={**RECIPIENT, "email": "priya.shah@nhs.net"})
    assert ('covered by the information-sharing agreement "NHS health and care partners" '
            "(ISA-2025-004)") in alice.text
    bob: Conversation = conversation("console:bob")
    await bob.send_files(make_file("b.pdf"))
    await answer_all(bob, recipient={**RECIPIENT, "organisation": "nhs.net",
                                     "email": "eve@evilnhs.net"})
    assert "Approval: needed from console:manager" in bob.text
    assert "No information-sharing agreement covers evilnhs.net for CONTROLLED data" in bob.text
    assert "covered by the information-sharing agreement" not in bob.text


def test_a_policy_with_an_organisation_name_as_agreement_does_not_start(
        cli_env: dict[str, str], tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    text = DEFAULT_POLICY.read_text()
    policy.write_text(text.replace('domains = ["nhs.net"]',
                                   'domains = ["Northfield NHS Trust", "nhs.net"]', 1))
    result = run(dict(cli_env, SAFEHAVEN_POLICY=str(policy)), "status", FAKE)
    assert result.returncode == 2
    assert "agreement[0].domains" in result.stderr
    assert "'Northfield NHS Trust' is not an email domain" in result.stderr


# --- 8. one person, two ids ------------------------------------------------------------------


def policy_with_people(tmp_path: Path, *, people: bool = True) -> Path:
    """Jane is console:manager in the terminal and slack:UMGR0001 in Slack; both ids (and a
    director) are listed as approvers for everyone."""
    text = DEFAULT_POLICY.read_text()
    text, n = re.subn(r'^"\*" = \[.*\]$',
                      '"*" = ["console:manager", "slack:UMGR0001", "console:director"]',
                      text, flags=re.M)
    assert n == 1
    if people:
        text, n = re.subn(r"^\[people\]$",
                          '[people]\njane-manager = ["console:manager", "slack:UMGR0001"]',
                          text, flags=re.M)
        assert n == 1
    path = tmp_path / ("people.toml" if people else "no-people.toml")
    path.write_text(text)
    return path


@pytest.mark.parametrize(("sent_as", "approves_as"), [("console:manager", "slack:UMGR0001"),
                                                      ("slack:UMGR0001", "console:manager")])
def test_one_person_under_two_ids_cannot_approve_their_own_transfer(
        cli_env: dict[str, str], pdf: Path, tmp_path: Path, sent_as: str,
        approves_as: str) -> None:
    env = dict(cli_env, SAFEHAVEN_POLICY=str(policy_with_people(tmp_path)))
    result = run(env, "share", str(pdf), *share_args(classification="RESTRICTED",
                                                     password="sms-on-receipt",
                                                     sender=sent_as))
    ref = reference_from(result)
    asked = re.search(r"I have asked (.*?); you will hear", result.stdout)
    assert asked and asked.group(1) == "console:director", result.stdout  # not her other id
    for extra in ([], ["--reject", "--reason", "fine by me"]):
        refused = run(env, "approve", ref, "--approver", approves_as, *extra)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "You cannot authorise your own transfer" in refused.stdout
    assert "waiting for approval" in run(env, "status", ref).stdout
    refusals = [r for r in audit_records(env, ref) if r["action"] == "near_miss"]
    assert [r["actor"] for r in refusals] == [approves_as, approves_as]
    assert all(r["details"]["kind"] == "self_approval" for r in refusals)
    assert archives(env) == []
    # Someone else can: the refusal is about the person, not a broken approval.
    approved = run(env, "approve", ref, "--approver", "console:director")
    assert approved.returncode == 0, approved.stdout + approved.stderr


def test_a_request_made_before_the_people_table_still_refuses_the_other_id(
        cli_env: dict[str, str], pdf: Path, tmp_path: Path) -> None:
    """The decision itself compares people: a request that lists Jane's other id (made
    before [people] named her) cannot be approved by her under it."""
    before = dict(cli_env, SAFEHAVEN_POLICY=str(policy_with_people(tmp_path, people=False)))
    result = run(before, "share", str(pdf), *share_args(classification="RESTRICTED",
                                                        password="sms-on-receipt",
                                                        sender="slack:UMGR0001"))
    ref = reference_from(result)
    assert "console:manager" in result.stdout  # asked, as one id among others
    after = dict(cli_env, SAFEHAVEN_POLICY=str(policy_with_people(tmp_path)))
    refused = run(after, "approve", ref, "--approver", "console:manager")
    assert refused.returncode == 1 and "own transfer" in refused.stdout, refused.stdout
    assert "waiting for approval" in run(after, "status", ref).stdout
    assert [r["actor"] for r in audit_records(after, ref)
            if r["action"] == "near_miss"] == ["console:manager"]


def test_an_id_listed_under_two_people_stops_start_up(cli_env: dict[str, str],
                                                      tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(DEFAULT_POLICY.read_text().replace(
        "[people]\n", '[people]\njane = ["console:manager", "slack:UMGR0001"]\n'
                      'john = ["slack:UMGR0001"]\n'))
    result = run(dict(cli_env, SAFEHAVEN_POLICY=str(policy)), "status", FAKE)
    assert result.returncode == 2
    assert "people.john" in result.stderr and "already listed for 'jane'" in result.stderr


# --- 7. another person's reference is answered like a made-up one ----------------------------


def next_call_time() -> str:
    """A time inside the default call window (weekdays 09:00-17:00 London), tomorrow or
    later: the chat checks the time before it looks the transfer up."""
    day = datetime.now(UTC).astimezone(ZoneInfo("Europe/London")) + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return f"{day:%Y-%m-%d} 11:00"


def same_answer(real: str, real_ref: str, made_up: str) -> None:
    assert real.replace(real_ref, "REF") == made_up.replace(FAKE, "REF"), (real, made_up)


def test_another_persons_reference_gets_the_made_up_answer_everywhere(
        cli_env: dict[str, str], pdf: Path, tmp_path: Path) -> None:
    # Alice's transfers: one waiting for approval, one packaged with its SMS held for receipt.
    waiting = reference_from(run(cli_env, "share", str(pdf), *share_args(
        classification="RESTRICTED", password="sms-on-receipt")))
    ready = reference_from(run(cli_env, "share", str(pdf), *share_args(
        password="sms-on-receipt")))
    statuses = {ref: run(cli_env, "status", ref).stdout for ref in (waiting, ready)}
    sent = outbox(cli_env)
    recorded = audit_records(cli_env, waiting) + audit_records(cli_env, ready)

    # The terminal chat: Mallory starts a conversation and types commands with references.
    commands = ["status {}", "cancel {}", "received {}", "archive {}",
                f"call {{}} {next_call_time()}"]
    lines = [c.format(r) for real in (waiting, ready) for c in commands for r in (real, FAKE)]
    chat = run(cli_env, "chat", str(pdf), "--sender", "console:mallory",
               stdin="\n".join([*lines, "quit"]) + "\n")
    assert chat.returncode == 0, chat.stdout + chat.stderr
    answers = chat.stdout.split("> ")[1:1 + len(lines)]
    assert len(answers) == len(lines), chat.stdout
    for i in range(0, len(lines), 2):
        real_ref = waiting if i < len(lines) // 2 else ready
        same_answer(answers[i], real_ref, answers[i + 1])
        assert answers[i + 1] == f"I cannot find a transfer {FAKE} that you can act on.\n"

    # The command line, acting as Mallory: same words and the same exit code.
    for ref in (waiting, ready):
        for command in (["cancel", "--sender", "console:mallory"],
                        ["received", "--sender", "console:mallory"],
                        ["approve", "--approver", "console:mallory"],
                        ["approve", "--approver", "console:mallory", "--reject",
                         "--reason", "no"]):
            real = run(cli_env, command[0], ref, *command[1:])
            made_up = run(cli_env, command[0], FAKE, *command[1:])
            same_answer(real.stdout, ref, made_up.stdout)
            assert real.returncode == made_up.returncode
            assert "cannot find" in made_up.stdout

    # Nothing changed: statuses, deliveries (no password released), and the record holds
    # only the refused attempts.
    assert {ref: run(cli_env, "status", ref).stdout for ref in (waiting, ready)} == statuses
    assert outbox(cli_env) == sent
    records = audit_records(cli_env, waiting) + audit_records(cli_env, ready)
    assert [r for r in records if r["actor"] != "console:mallory"] == recorded
    attempts = [r for r in records if r["actor"] == "console:mallory"]
    assert attempts and {r["action"] for r in attempts} == {"access_refused"}
    assert run(cli_env, "audit", "verify").returncode == 0


async def test_uniform_answers_through_the_chat_turns(services: Any, conversation: Any,
                                                      make_file: Any) -> None:
    """The same through the turn every chat channel uses, for an approver too (who may read
    the status of a transfer waiting for them, and nothing else)."""
    alice: Conversation = conversation("console:alice")
    await alice.send_files(make_file("a.pdf"))
    await answer_all(alice, password="sms-on-receipt")
    await alice.say("confirm")
    ref = re.search(r"SH-[0-9A-Z]{4}-[0-9A-Z]{2}", alice.text)
    assert ref
    for who in ("console:mallory", "console:manager"):
        chat: Conversation = conversation(who)
        for command in ("status {}", "cancel {}", "received {}", "archive {}",
                        "call {} 2026-11-24 11:00"):
            await chat.say(command.format(ref.group(0)))
            real = chat.text
            await chat.say(command.format(FAKE))
            same_answer(real, ref.group(0), chat.text)


def test_identity_and_the_unknown_answer_each_live_in_one_place() -> None:
    """Kept true by a tool, not a docstring: no module compares a transfer's sender or an
    approval's approvers by id (they ask the policy, which compares people), and only the
    look-up helper words the answer for a reference someone may not act on."""
    compares = re.compile(r"(==|!=)\s*\w+\.sender_id\b|\.sender_id\s*(==|!=)"
                          r"|\bin\s+\w+\.approvers\b|\.decided_by\s*(==|!=)")
    found, worded = [], []
    for folder in ("bot", "handlers", "channels"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            text = path.read_text()
            name = path.relative_to(ROOT).as_posix()
            found += [f"{name}: {line.strip()}" for line in text.splitlines()
                      if compares.search(line) and not line.strip().startswith("for ")]
            if "UNKNOWN_TRANSFER" in text:
                worded.append(name)
    assert found == []
    assert worded == ["bot/messages/transfers.py", "handlers/access.py"]
