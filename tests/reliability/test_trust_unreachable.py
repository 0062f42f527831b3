"""Issue 11, second review of finding 5: a message a configured channel cannot deliver is
kept in the one store of kept messages, sealed, and the sender is told.

Before, Teams kept the rendered approval card of an approver who never opened a chat with
the bot (recipient, email, phone, purpose, use limits) in its own table, unsealed, never
pruned, never dropped once decided; and a Slack DM that failed was logged and counted as
delivered, so the approval request was silently lost. Each attack runs over HTTP into the
app (Teams activities, signed Slack requests) against fakes of the platforms.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from sqlalchemy import inspect, text

from handlers.notify import HeldNotices, NotifierRouter
from handlers.services import Services
from store.models import Transfer
from tests.channels.slack.test_flow import answer_up_to_confirm, reference_in
from tests.support.core import PDF
from tests.support.fake_teams import TeamsUser
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

OTHER_APPROVER_AAD = "6a1d2c3b-0000-4000-8000-0000000c0c00"
NAME, EMAIL, PHONE = "Priya Shah-Holdfast", "priya.holdfast@nhs.net", "07911 123456"
PURPOSE = "Strategy meeting about a child at risk of harm"
USE_LIMITS = "Only for the strategy meeting on Friday"
PERSONAL = (NAME, "Holdfast", EMAIL, "holdfast@", "7911", PURPOSE, "strategy meeting",
            USE_LIMITS)


def keep_what_channels_cannot_deliver(svc: Services) -> None:
    """As ``build_runtime`` wires every process: the router keeps in ``held_notices``
    what a channel could not deliver."""
    assert isinstance(svc.notifier, NotifierRouter)
    svc.notifier.keep = HeldNotices(svc.db, svc.vault, clock=svc.clock)


async def raw_held(svc: Services) -> list[dict[str, Any]]:
    """Every row of ``held_notices`` as the database has it."""
    async with svc.db.read() as session:
        rows = (await session.execute(text("SELECT * FROM held_notices"))).mappings().all()
    return [dict(r) for r in rows]


def assert_nothing_personal(rows: list[dict[str, Any]]) -> None:
    dumped = repr(rows).lower()
    for value in PERSONAL:
        assert value.lower() not in dumped, value


async def tables(svc: Services) -> set[str]:
    async with svc.db.engine.connect() as connection:
        names = await connection.run_sync(lambda c: inspect(c).get_table_names())
    return set(names)


async def status_of(svc: Services, reference: str) -> str:
    async with svc.db.read() as session:
        row = await session.get(Transfer, reference)
    assert row is not None
    return row.status


# --- Teams ---------------------------------------------------------------------------------


async def share_restricted(world: TeamsWorld, sender: TeamsUser) -> str:
    """The sender shares a RESTRICTED file (so a manager must authorise it) over Teams."""
    await sender.send_file("case notes.pdf", world.files.serve(PDF))
    reference = reference_in(sender.text_since(0))
    await sender.click(sender.last_card(), "RESTRICTED")
    await sender.tick("Contact details only", "Other personal data")
    await sender.click(sender.last_card(), "Continue", {
        "name": NAME, "job_title": "Safeguarding Lead", "organisation": "Northfield NHS Trust",
        "email": EMAIL, "phone": PHONE})
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
    return reference


def approval_cards(user: TeamsUser) -> list[Any]:
    return [c for c in user.received
            if any(a.get("title") == "Approve" for a in c.card.get("actions", []))]


async def test_a_teams_approver_without_a_chat_gets_the_request_sealed_then_once(
        teams: TeamsWorld) -> None:  # noqa: F811 (the fixture imported above)
    svc = teams.services
    keep_what_channels_cannot_deliver(svc)
    approver = teams.user(APPROVER_AAD, "Morgan Manager")  # never opened a chat
    sender = teams.user(SENDER_AAD, "Alex Sender")
    reference = await share_restricted(teams, sender)

    said = sender.text_since(0)
    # (Their name is not known yet, and an id is never shown.)
    assert "I could not reach your approver: " in said and APPROVER_AAD not in said
    assert "ask them to add the Safe Haven app" in said
    assert f"Your request {reference} is kept for them" in said
    assert not approver.received  # the bot has no conversation with them
    rows = await raw_held(svc)
    assert [(r["user_id"], r["reference"], r["kind"]) for r in rows] == [
        (f"teams:{APPROVER_AAD}", reference, "request")]
    assert_nothing_personal(rows)
    assert "teams_held_messages" not in await tables(svc)

    await approver.install()  # they open the chat: the request reaches them, once
    assert len(approval_cards(approver)) == 1
    assert "While I could not reach you, a message was kept" in approver.text_since(0)
    assert await raw_held(svc) == []
    await approver.install()
    await approver.say("help")
    assert len(approval_cards(approver)) == 1

    await approver.click(approval_cards(approver)[0], "Approve")
    assert await status_of(svc, reference) == "ready"


async def test_a_kept_teams_request_is_dropped_once_another_approver_decides(
        teams: TeamsWorld) -> None:  # noqa: F811 (the fixture imported above)
    svc = teams.services
    keep_what_channels_cannot_deliver(svc)
    svc.policy = replace(svc.policy, approvers={"*": (f"teams:{APPROVER_AAD}",
                                                      f"teams:{OTHER_APPROVER_AAD}")})
    absent = teams.user(APPROVER_AAD, "Morgan Manager")
    present = teams.user(OTHER_APPROVER_AAD, "Pat Deputy")
    await present.install()
    sender = teams.user(SENDER_AAD, "Alex Sender")
    reference = await share_restricted(teams, sender)
    assert [r["user_id"] for r in await raw_held(svc)] == [f"teams:{APPROVER_AAD}"]

    await present.click(approval_cards(present)[0], "Approve")
    assert await status_of(svc, reference) == "ready"
    assert await raw_held(svc) == []  # dropped with the decision
    await absent.install()
    assert approval_cards(absent) == []
    assert reference not in absent.text_since(0)


# --- Slack ---------------------------------------------------------------------------------


async def test_a_slack_dm_that_fails_is_kept_sealed_and_the_sender_told(
        workspace: Workspace) -> None:  # noqa: F811 (the fixture imported above)
    svc = workspace.svc
    keep_what_channels_cannot_deliver(svc)
    # Slack refuses every message to the first approver's DM (say, an account deactivated
    # and back, or a DM the workspace blocks); the second approver's arrives.
    workspace.fake.fail("chat.postMessage", error="cannot_dm_bot", times=1000,
                        channel="DUBOSS01")
    alice = workspace.user("UALICE01")
    await alice.send_files(("case notes.pdf", PDF))
    reference = reference_in(alice.text)
    await answer_up_to_confirm(alice, classification="RESTRICTED",
                               password="SMS once receipt is confirmed")
    await alice.click("Confirm and send")
    assert "needs authorising" in alice.text

    # Slack shows ids as mentions.
    assert "I could not reach your approver <@UBOSS01>: Slack did not take the message" \
        in alice.text
    assert re.findall(r"could not reach your approver (\S+):", alice.text) == ["<@UBOSS01>"]
    assert workspace.user("UBOSS01").messages() == []
    rows = await raw_held(svc)
    assert [(r["user_id"], r["reference"], r["kind"]) for r in rows] == [
        ("slack:UBOSS01", reference, "request")]
    dumped = repr(rows)
    assert "Priya Shah" not in dumped and "priya.shah@nhs.net" not in dumped
    assert "strategy" not in dumped.lower()

    # The other approver decides: the kept request goes with the decision.
    boss2 = workspace.user("UBOSS02")
    await boss2.click("Approve", message=boss2.last)
    assert await status_of(svc, reference) == "ready"
    assert await raw_held(svc) == []
