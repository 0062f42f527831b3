"""On every channel: a typed cancel asks first and "no" keeps everything; a command typed
into a form is the command, not a value; a landline is offered only a phone call; "change
the recipient's phone" goes straight there and comes back, keeping every answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.options import CANCEL_QUESTION
from handlers.conversation import current_state
from store.models import Transfer
from tests.scenarios.test_every_channel import (
    CATEGORIES,
    CONSENT,
    PURPOSE,
    RECIPIENT,
    answer_up_to_summary,
)
from tests.support.chat import ChatUser, World, cancel, reference_in
from tests.support.core import PDF
from tests.support.objects import upload_objects

LANDLINE = "0121 234 5678"


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "referral.pdf").write_bytes(PDF)
    (tmp_path / "chronology.txt").write_bytes(b"Chronology of contact\n" * 40)
    return tmp_path / "referral.pdf", tmp_path / "chronology.txt"


def _answers(state: Any) -> dict[str, Any]:
    data = state.to_json()
    for key in ("step", "history", "cancel_pending", "return_to"):
        data.pop(key)
    return dict(data)


async def _state(world: World, user: ChatUser) -> Any:
    state = await current_state(world.svc, conversation_id=user.conversation_id)
    assert state.reference is not None or await user.current_question() is None
    return state


async def _status(world: World, reference: str) -> str:
    async with world.svc.db.read() as s:
        row = await s.get(Transfer, reference)
    assert row is not None
    return str(row.status)


async def test_typed_cancel_asks_no_keeps_everything_yes_cancels(
        world: World, files: tuple[Path, Path]) -> None:
    alice = await world.sender()
    reference = await answer_up_to_summary(alice, files)
    before = await _state(world, alice)
    kept = await upload_objects(world.svc)
    await alice.say("cancel")
    assert await alice.current_question() == CANCEL_QUESTION
    assert f"Cancel {reference}?" in alice.text
    await alice.choose("No, keep it")
    assert f"{reference} is kept" in alice.text
    assert await alice.current_question() == "confirm"
    assert _answers(await _state(world, alice)) == _answers(before)
    assert await upload_objects(world.svc) == kept
    assert await _status(world, reference) == "draft"
    await cancel(alice)
    assert f"Transfer {reference} is cancelled" in alice.text
    assert await upload_objects(world.svc) == []
    assert await _status(world, reference) == "cancelled"


async def test_a_command_in_a_form_field_is_not_a_value(
        world: World, files: tuple[Path, Path]) -> None:
    alice = await world.sender()
    await alice.send_files(files[0])
    reference = reference_in(alice.text)
    await alice.choose("CONTROLLED")
    await alice.choose_several(*CATEGORIES)
    assert await alice.current_question() == "recipient"
    await alice.fill({**RECIPIENT, "job_title": f"cancel {reference}"})
    assert await alice.current_question() == CANCEL_QUESTION
    await alice.choose("No, keep it")
    assert await alice.current_question() == "recipient"
    state = await _state(world, alice)
    assert state.recipient is None
    assert f"cancel {reference}" not in str(state.recipient_draft)
    await alice.fill(RECIPIENT)
    assert await alice.current_question() == "purpose"
    assert (await _state(world, alice)).recipient["job_title"] == "Safeguarding Lead"


async def test_a_landline_is_offered_a_call_and_the_phone_changes_in_place(
        world: World, files: tuple[Path, Path]) -> None:
    alice = await world.sender()
    await alice.send_files(files[0])
    await alice.choose("CONTROLLED")
    await alice.choose_several(*CATEGORIES)
    await alice.fill({**RECIPIENT, "phone": LANDLINE})
    await alice.answer(PURPOSE)
    await alice.choose("UK GDPR Art 6(1)(e) public task")
    await alice.fill(CONSENT)
    mark = alice.mark()
    await alice.choose("Encrypted archive")
    asked = alice.since(mark)
    assert "+44 121 234 5678 is a landline, so it can't receive a text" in asked
    assert "SMS now" not in asked and "Phone call at an agreed time" in asked
    before = _answers(await _state(world, alice))
    await alice.choose("Change the recipient's phone")
    assert await alice.current_question() == "phone"
    await alice.answer(RECIPIENT["phone"])
    assert await alice.current_question() == "password_method"
    after = _answers(await _state(world, alice))
    assert after["recipient"]["phone_display"] == "+44 7911 123456"
    assert {k: v for k, v in after.items() if k != "recipient"} == \
        {k: v for k, v in before.items() if k != "recipient"}
    assert after["purpose"] == PURPOSE
    await alice.choose("SMS now")
    assert await alice.current_question() == "confirm"
    # From the summary too: straight there and back to the summary.
    await alice.choose("Change the recipient's phone")
    assert await alice.current_question() == "phone"
    await alice.answer("07400 123456")
    assert await alice.current_question() == "confirm"
    assert "+44 7400 123456" in alice.text
