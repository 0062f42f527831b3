"""The pure engine: a cancel waits for a yes in the state (and survives being saved), the
password question offers a landline only what it can take, and an empty answer keeps the
earlier one."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bot import engine
from bot.events import Answer, CancelRequest
from bot.options import CHANGE_PHONE, cancel_question, password_options
from bot.policy import load_policy
from bot.replies import Choice
from bot.state import CancelTransfer, State, TurnContext
from bot.statuses import PasswordMethod, Step

T0 = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
FILE = {"position": 1, "name": "a.pdf", "size": 10, "kind": "PDF", "path": "uploads/x"}


def _ctx() -> TurnContext:
    return TurnContext(policy=load_policy(), now=T0, user_id="console:alice",
                       default_region="GB", new_reference=lambda: "SH-ZZZZ-99")


def _recipient(phone: str, e164: str, mobile: bool, extension: str | None = None
               ) -> dict[str, object]:
    return {"name": "Priya Shah", "job_title": "Lead", "department": "",
            "organisation": "Trust", "email": "priya.shah@nhs.net", "email_domain": "nhs.net",
            "phone": e164, "extension": extension, "phone_display": phone,
            "is_mobile": mobile}


def _at_password(phone: str, e164: str, mobile: bool, extension: str | None = None
                 ) -> State:
    return State(step=Step.PASSWORD_METHOD, reference="SH-AAAA-22", files=[FILE],  # type: ignore[list-item]
                 classification="CONTROLLED", recipient=_recipient(  # type: ignore[arg-type]
                     phone, e164, mobile, extension),
                 purpose="Strategy meeting about a child", lawful_basis="x",
                 history=[Step.CLASSIFICATION, Step.RECIPIENT, Step.PURPOSE,
                          Step.LAWFUL_BASIS, Step.CONSENT, Step.DELIVERY])


def test_cancel_waits_in_the_state_for_a_yes() -> None:
    ctx = _ctx()
    state = _at_password("+44 7911 123456", "+447911123456", True)
    asked = engine.step(state, Answer("cancel"), ctx)
    assert asked.state.cancel_pending == "SH-AAAA-22" and not asked.effects
    assert asked.state.step == Step.PASSWORD_METHOD
    (question,) = asked.replies
    assert isinstance(question, Choice) and question.question == cancel_question("SH-AAAA-22")
    saved = State.from_json(json.loads(json.dumps(asked.state.to_json())))
    assert saved == asked.state
    assert engine.current_question(saved, ctx) == [question]  # `status` asks it again
    kept = engine.step(saved, Answer("no", cancel_question("SH-AAAA-22")), ctx)
    assert kept.state == state and not kept.effects
    done = engine.step(saved, Answer("yes", cancel_question("SH-AAAA-22")), ctx)
    assert done.state == State() and CancelTransfer("SH-AAAA-22") in done.effects


@pytest.mark.parametrize("confirmed", [True, False])
def test_cancel_another_transfer(confirmed: bool) -> None:
    ctx = _ctx()
    result = engine.step(State(), CancelRequest("SH-BBBB-33", confirmed=confirmed), ctx)
    if confirmed:
        assert result.cancel_other == "SH-BBBB-33" and result.state == State()
        return
    assert result.cancel_other is None and result.state.cancel_pending == "SH-BBBB-33"
    yes = engine.step(result.state, Answer("yes"), ctx)
    assert yes.cancel_other == "SH-BBBB-33" and yes.state == State()


@pytest.mark.parametrize(("phone", "e164", "mobile", "extension", "why"), [
    ("+44 121 234 5678", "+441212345678", False, None, "is a landline"),
    ("+44 20 7946 0000 ext. 12", "+442079460000", False, "12", "has an extension"),
    ("+44 7911 123456", "+447911123456", True, None, None),
])
def test_password_options_fit_the_number(phone: str, e164: str, mobile: bool,
                                         extension: str | None, why: str | None) -> None:
    ctx = _ctx()
    state = _at_password(phone, e164, mobile, extension)
    options, note = password_options(state, ctx)
    values = [o.value for o in options]
    assert values[-1] == CHANGE_PHONE and PasswordMethod.VOICE in values
    sms = PasswordMethod.SMS in values or PasswordMethod.SMS_ON_RECEIPT in values
    assert sms is (why is None)
    assert (note is None) is (why is None)
    if why is not None:
        assert note is not None and why in note and "can't receive a text" in note
    picked = engine.step(state, Answer(CHANGE_PHONE), ctx)
    assert picked.state.step == Step.PHONE and picked.state.return_to == Step.PASSWORD_METHOD


def test_an_empty_answer_keeps_the_earlier_one() -> None:
    ctx = _ctx()
    state = State(step=Step.PURPOSE, reference="SH-AAAA-22", files=[FILE],  # type: ignore[list-item]
                  classification="CONTROLLED", purpose="Strategy meeting about a child",
                  history=[Step.CLASSIFICATION, Step.RECIPIENT])
    result = engine.step(state, Answer("", Step.PURPOSE), ctx)
    assert result.error is None and result.state.step == Step.LAWFUL_BASIS
    assert result.state.purpose == "Strategy meeting about a child"
