"""The typed interaction model the channels render: ``current_question`` re-asks from the
saved state without changing it, questions carry their input kind and options their role."""

from __future__ import annotations

from typing import Any

from bot.answers import Decision, approval_answer
from bot.events import Answer
from bot.replies import ApprovalRequest, Ask, Choice, DecisionNote, Form, InputKind, OptionRole
from handlers import approvals
from handlers.conversation import current_question, current_state
from handlers.services import Services
from tests.support.core import CATEGORIES, answer_all


async def test_current_question_re_asks_without_changing_anything(
        services: Services, conversation: Any, make_file: Any) -> None:
    chat = conversation()
    ids = {"conversation_id": chat.user_id, "user_id": chat.user_id}
    assert await current_question(services, **ids) is None  # idle: nothing asked

    await chat.send_files(make_file("notes.txt"))
    asked = await current_question(services, **ids)
    assert isinstance(asked, Choice) and asked.question == chat.question == "classification"
    assert asked.input_kind is InputKind.CHOICE
    before = await current_state(services, conversation_id=chat.user_id)
    assert await current_question(services, **ids) == asked
    assert await current_state(services, conversation_id=chat.user_id) == before

    await chat.say("CONTROLLED")
    await chat.say(CATEGORIES)
    if chat.question == "recipient_pick":
        await chat.say("new")
    form = await current_question(services, **ids)
    assert isinstance(form, Form) and form.question == "recipient"
    assert form.input_kind is InputKind.FORM


async def test_roles_and_input_kinds_are_set_by_the_engine(
        services: Services, conversation: Any, make_file: Any) -> None:
    chat = conversation()
    await chat.send_files(make_file("notes.txt"))
    await answer_all(chat)
    confirm = chat.pending
    assert isinstance(confirm, Choice) and confirm.question == "confirm"
    assert {o.value: o.role for o in confirm.options} == {
        "confirm": OptionRole.PRIMARY, "change-phone": OptionRole.DEFAULT,
        "back": OptionRole.BACK, "cancel": OptionRole.CANCEL}

    await chat.say("back")
    assert chat.question == "password_method"
    picked = chat.pending
    assert isinstance(picked, Choice)
    assert all(o.role is OptionRole.DEFAULT for o in picked.options)
    await chat.say("voice")
    ask = chat.pending
    assert isinstance(ask, Ask) and ask.question == "call_time"
    assert ask.input_kind is InputKind.DATE_TIME
    for _ in range(5):  # call time, password, delivery, consent, lawful basis
        await chat.say("back")
    purpose = chat.pending
    assert isinstance(purpose, Ask) and purpose.question == "purpose", chat.question
    assert purpose.input_kind is InputKind.TEXT


async def test_a_stale_answer_is_typed_on_the_turn(
        services: Services, conversation: Any, make_file: Any) -> None:
    chat = conversation()
    await chat.send_files(make_file("notes.txt"))
    refused = await chat.say("no such level")
    assert refused.error and not refused.stale and chat.question == "classification"
    await chat.say("CONTROLLED")
    asked = chat.question
    late = await chat.event(Answer("OFFICIAL", "classification"))  # a second, late click
    assert late.stale and late.error
    assert (await current_state(services, conversation_id=chat.user_id)).step == asked


async def test_a_decision_is_a_typed_note_to_approver_and_sender(
        services: Services, conversation: Any, make_file: Any) -> None:
    chat = conversation("console:alice")
    await chat.send_files(make_file("case.pdf"))
    await answer_all(chat, classification="RESTRICTED", password="sms-on-receipt")
    await chat.say("confirm")
    notifier: Any = services.notifier
    request = next(r for r in notifier.for_user("console:manager")
                   if isinstance(r, ApprovalRequest))
    decided = approval_answer(request.question, request.options[1].value)
    assert decided is not None and decided.decision is Decision.REJECT
    mine = await approvals.decide(services, approver_id="console:manager",
                                  reference=decided.reference, approve=False,
                                  reason="not needed")
    recorded = [r for r in mine if isinstance(r, DecisionNote)]
    assert len(recorded) == 1 and recorded[0].decision is Decision.REJECT
    assert recorded[0].reference == request.reference
    told = [r for r in notifier.for_user("console:alice") if isinstance(r, DecisionNote)]
    assert len(told) == 1 and told[0].decision is Decision.REJECT
    assert (told[0].approver, told[0].reason) == ("console:manager", "not needed")
    assert "not needed" in told[0].text
