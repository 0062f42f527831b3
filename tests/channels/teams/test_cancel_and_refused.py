"""Through the Teams app: a yes on an older cancel card never cancels another transfer, a
refused typed answer comes back with what was typed, and a form field that is a bare
command word is the field's value."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.messages import conversation as msg
from store.models import Transfer
from tests.channels.teams.test_flow import controlled_transfer, reference_in
from tests.support.core import CONSENT, PURPOSE, RECIPIENT
from tests.support.fake_teams import TeamsUser
from tests.support.teams import SENDER_AAD, TeamsWorld


async def _status(teams: TeamsWorld, reference: str) -> str | None:
    async with teams.services.db.read() as s:
        row = (await s.scalars(select(Transfer).where(Transfer.reference == reference))
               ).one_or_none()
    return row.status if row else None


def _inputs(card: dict[str, Any]) -> dict[str, Any]:
    return {e["id"]: e.get("value") for e in card["body"] if e["type"].startswith("Input.")}


async def test_a_yes_on_an_older_cancel_card_cancels_nothing(teams: TeamsWorld) -> None:
    sender = teams.user(SENDER_AAD, "Casey Sender")
    first = await controlled_transfer(teams, sender)
    mark = len(sender.received)
    await sender.send_file("second.txt", teams.files.serve(b"Another chronology\n" * 50))
    second = reference_in(sender.text_since(mark))
    assert second != first
    await sender.say(f"cancel {first}")
    asked_first = sender.last_card()
    await sender.say(f"cancel {second}")
    asked_second = sender.last_card()
    assert f"Cancel {second}?" in asked_second.words

    mark = len(sender.received)
    await sender.click(asked_first, msg.CANCEL_YES.format(reference=first))
    assert msg.STALE_ANSWER in sender.text_since(mark)
    assert await _status(teams, second) == "draft"  # not the one asked about now
    assert await _status(teams, first) == "ready"  # nor the one the old card named

    await sender.click(asked_second, msg.CANCEL_YES.format(reference=second))
    assert await _status(teams, second) == "cancelled"
    assert await _status(teams, first) == "ready"


async def _to_purpose(teams: TeamsWorld, sender: TeamsUser, recipient: dict[str, str]
                      ) -> None:
    await sender.send_file("chronology.txt", teams.files.serve(b"Chronology of contact\n" * 50))
    await sender.click(sender.last_card(), "CONTROLLED")
    await sender.tick("Contact details only", "Other personal data")
    await sender.click(sender.last_card(), "Continue", recipient)


async def test_a_refused_typed_answer_keeps_what_was_typed(teams: TeamsWorld) -> None:
    sender = teams.user(SENDER_AAD, "Casey Sender")
    await _to_purpose(teams, sender, RECIPIENT)
    purpose = sender.last_card()
    await sender.click(purpose, "Send", {"sh_text": "meeting on Friday"})
    update = teams.connector.updates(sender.conversation)[-1]
    assert update.activity_id == purpose.id
    assert _inputs(update.card) == {"sh_text": "meeting on Friday"}
    assert "at least 20 characters" in update.words

    await sender.click(sender.last_card(), "Send", {"sh_text": PURPOSE})
    card = sender.last_card()
    basis = next(e for e in card.card["body"] if e["type"] == "Input.ChoiceSet")
    await sender.click(card, "Continue", {"sh_v": basis["choices"][0]["value"]})
    await sender.click(sender.last_card(), "Continue", CONSENT)
    delivery = sender.last_card()
    await sender.click(delivery, sender.option_title(delivery, "archive"))
    await sender.click(sender.last_card(), "Phone call at an agreed time")
    when = sender.last_card()
    await sender.click(when, "Send", {"sh_date": "2026-11-24", "sh_time": "23:30"})  # night
    update = teams.connector.updates(sender.conversation)[-1]
    assert update.activity_id == when.id
    assert _inputs(update.card) == {"sh_date": "2026-11-24", "sh_time": "23:30"}
    assert "Calls are only made" in update.words
    await sender.click(sender.last_card(), "Send", {"sh_date": "2026-11-24", "sh_time": "14:30"})
    assert "Tue 24 Nov 2026 14:30" in sender.last_card().words


async def test_a_job_title_that_is_a_command_word_is_the_job_title(teams: TeamsWorld) -> None:
    sender = teams.user(SENDER_AAD, "Casey Sender")
    await _to_purpose(teams, sender, {**RECIPIENT, "job_title": "Status"})
    # Taken as the job title (not the `status` command): the form is recorded as answered
    # with it, and the next question is asked.
    answered = teams.connector.updates(sender.conversation)[-1]
    assert "✓" in answered.words and "Status" in answered.words
    assert msg.ASK_PURPOSE.format(min=20).split("\n")[0] in sender.last_card().words
