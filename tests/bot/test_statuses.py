"""The domain's words are StrEnums, and conversation state saved as plain JSON words by the
code before them still loads, carries on, and saves back as the same JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from bot.answer_checks import validate_recipient
from bot.engine import step
from bot.entries import Consent, FileEntry, Recipient
from bot.events import Answer
from bot.policy import load_policy
from bot.state import State, TurnContext
from bot.statuses import DeliveryMethod, PasswordMethod, Step

# A conversation at the summary, as the code before the enums stored it (dataclasses.asdict
# of a State whose step, history and methods were bare strings), through JSON.
OLD_STATE: dict[str, Any] = {
    "step": "confirm",
    "reference": "SH-7K2P-QD",
    "files": [{"name": "case notes.pdf", "path": "/tmp/uploads/x/case notes.pdf",
               "size": 1234, "kind": "PDF document", "flags": [], "position": 1}],
    "last_file_at": "2026-03-02T09:00:00+00:00",
    "classification": "CONTROLLED",
    "recipient": {"name": "Sam Doe", "job_title": "Social worker", "organisation": "Trust",
                  "email": "sam@trust.nhs.net", "email_domain": "trust.nhs.net",
                  "phone": "+447700900123", "phone_display": "07700 900123",
                  "extension": None, "is_mobile": True},
    "recipient_draft": None,
    "purpose": "Continuity of care for a shared client.",
    "lawful_basis": "public task",
    "consent": {"use_limits": "care planning only", "onward_sharing": False,
                "delete_after_use": True},
    "delivery": "archive",
    "password_method": "sms",
    "call_at": None,
    "history": ["files", "classification", "recipient", "purpose", "lawful_basis", "consent",
                "delivery", "password_method"],
}


def _ctx() -> TurnContext:
    return TurnContext(policy=load_policy(), now=datetime(2026, 3, 2, 10, 0, tzinfo=UTC),
                       user_id="console:alice", default_region="GB",
                       new_reference=lambda: "SH-0000-00")


def test_old_json_state_loads_as_members_and_saves_back_unchanged() -> None:
    state = State.from_json(json.loads(json.dumps(OLD_STATE)))
    assert state.step is Step.CONFIRM
    assert state.delivery is DeliveryMethod.ARCHIVE
    assert state.password_method is PasswordMethod.SMS
    assert all(isinstance(s, Step) for s in state.history)
    assert state.history[-1] is Step.PASSWORD_METHOD
    assert state.information_categories is None  # saved before the question was asked
    saved = json.dumps(state.to_json(), sort_keys=True)
    # The same words; the one answer the old code never asked, and the later fields (a
    # cancel waiting for a yes, where a phone change returns to), as not given.
    assert saved == json.dumps({**OLD_STATE, "information_categories": None,
                                "cancel_pending": None, "return_to": None}, sort_keys=True)


def test_old_state_at_the_summary_is_asked_the_kind_of_information_before_confirming() -> None:
    """Nothing is filled in for the sender: confirming a state saved before the question
    existed asks it, then comes back to the summary, and the record carries the answer."""
    state = State.from_json(json.loads(json.dumps(OLD_STATE)))
    asked = step(state, Answer("confirm", "confirm"), _ctx())
    assert asked.state.step is Step.INFORMATION_CATEGORIES
    assert not asked.effects and not asked.audit
    assert "What kind of information is this?" in " ".join(
        getattr(r, "prompt", getattr(r, "text", "")) for r in asked.replies)
    answered = step(asked.state, Answer("health, 8", "information_categories"), _ctx())
    assert answered.state.step is Step.CONFIRM
    assert answered.state.information_categories == ("health", "contact-details")
    saved = State.from_json(json.loads(json.dumps(answered.state.to_json())))
    assert saved.information_categories == ("health", "contact-details")
    confirmed = step(saved, Answer("confirm", "confirm"), _ctx())
    (record,) = [a for a in confirmed.audit if a.action == "confirmed"]
    assert record.details["information_categories"] == ["health", "contact-details"]
    assert record.details["approval"]["required"] is True  # health is special category


def test_old_json_state_carries_on() -> None:
    state = State.from_json(json.loads(json.dumps(OLD_STATE)))
    back = step(state, Answer("back"), _ctx()).state
    assert back.step is Step.PASSWORD_METHOD
    on = step(back, Answer("sms-on-receipt"), _ctx()).state
    assert on.step is Step.CONFIRM
    assert on.password_method is PasswordMethod.SMS_ON_RECEIPT
    assert json.loads(json.dumps(on.to_json()))["password_method"] == "sms-on-receipt"


def test_empty_state_is_idle() -> None:
    assert State.from_json(None).step is Step.IDLE
    assert State.from_json({"step": "idle"}) == State()


def test_policy_methods_are_members() -> None:
    for level in load_policy().levels:
        assert all(isinstance(m, DeliveryMethod) for m in level.delivery_methods)
        assert isinstance(level.default_delivery, DeliveryMethod)
        assert all(isinstance(m, PasswordMethod) for m in level.password_methods)


def test_entry_types_name_the_keys_the_engine_stores() -> None:
    ctx = _ctx()
    recipient, errors = validate_recipient(
        {"name": "Sam Doe", "job_title": "Social worker", "organisation": "Trust",
         "email": "sam@trust.nhs.net", "phone": "07400 123456"},
        ctx.policy.level("CONTROLLED"), ctx)
    assert not errors and recipient is not None
    assert set(recipient) == set(Recipient.__annotations__)
    assert set(OLD_STATE["files"][0]) == set(FileEntry.__annotations__)
    assert set(OLD_STATE["consent"]) <= set(Consent.__annotations__)
