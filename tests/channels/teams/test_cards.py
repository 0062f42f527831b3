"""Teams rendering without a server: text only in the formatting Teams documents, buttons
that fit, and people by name (the flows in test_flow.py and the guard in
test_card_guard.py show the same through the real app)."""

from __future__ import annotations

from typing import Any

from bot.replies import Ask, Choice, Form, FormField, Option, OptionRole, Text
from channels.teams import cards, people
from channels.teams.records import remember_reference
from handlers.services import Services
from tests.support.teams_render import action_titles, static_problems

APPROVER = "teams:6a1d2c3b-0000-4000-8000-0000000b0b00"
STRANGER = "teams:6a1d2c3b-0000-4000-8000-00000000beef"


def test_messages_are_markdown_that_nothing_typed_can_format() -> None:
    text = cards.text_message(
        "Transfer SH-AB12-34:\n• <b>Case</b> *notes*_v2.pdf\n• # not a heading\n\n"
        "Type `status` or open https://safehaven.example/p/a_b-c_d")["text"]
    assert text == ("Transfer SH-AB12-34:\n\n- \\<b\\>Case\\</b\\> \\*notes\\*\\_v2.pdf\n"
                    "- \\# not a heading\n\nType “status” or open https://safehaven.example/p/a_b-c_d")
    assert "`" not in text and "<br>" not in text and "<code>" not in text


def test_options_are_a_choice_set_and_long_buttons_go_one_per_row() -> None:
    many = Choice("password", "How will the password reach them?", (
        Option("sms", "SMS now"), Option("sms_later", "SMS once receipt is confirmed"),
        Option("voice", "Phone call at an agreed time")))
    card = cards.choice_card(many)
    assert action_titles(card) == ["Continue", "Back", "Cancel transfer"]
    (choices,) = [e for e in card["body"] if e["type"] == "Input.ChoiceSet"]
    assert [c["title"] for c in choices["choices"]] == [o.label for o in many.options]
    assert choices["label"] and choices["isRequired"]

    confirm = Choice("confirm", "Is everything right?", (
        Option("confirm", "Confirm and send", role=OptionRole.PRIMARY),
        Option("back", "Go back and change something", role=OptionRole.BACK),
        Option("cancel", "Cancel the transfer", role=OptionRole.CANCEL)))
    card = cards.choice_card(confirm)
    assert "actions" not in card  # too long to sit side by side: a row each
    rows = [e["actions"] for e in card["body"] if e["type"] == "ActionSet"]
    assert [[a["title"] for a in row] for row in rows] == [
        ["Confirm and send"], ["Go back and change something"], ["Cancel the transfer"]]
    assert [row[0]["data"]["sh_v"] for row in rows] == ["confirm", "back", "cancel"]


def test_errors_sit_under_their_input_and_every_required_input_is_labelled() -> None:
    ask = cards.ask_card(Ask("purpose", "Why is it needed?", error="Too short."))
    kinds = [(e["type"], e.get("color")) for e in ask["body"]]
    assert kinds[-2:] == [("Input.Text", None), ("TextBlock", "Attention")]
    form = cards.form_card(Form("recipient", "Recipient", (
        FormField("email", "Work email", kind="email", value="someone@gmail.com",
                  error="gmail.com is a personal email service."),
        FormField("phone", "Phone", kind="tel", value="12"))))
    body = form["body"]
    at = next(i for i, e in enumerate(body) if e.get("id") == "email")
    assert body[at]["value"] == "someone@gmail.com"
    assert body[at + 1]["color"] == "Attention" and "gmail.com" in body[at + 1]["text"]
    for card in (ask, form):
        assert static_problems(card) == []


def test_a_refused_card_asked_again_is_a_new_answer_not_a_double_click() -> None:
    card = cards.ask_card(Ask("purpose", "Why is it needed?"))
    again = cards.attempt(card, "activity-2")
    assert {a["data"][cards.TRY] for a in again["actions"]} == {"activity-2"}
    assert cards.asking([cards.card_message(card)], "purpose") is card


async def test_people_are_named_never_shown_by_id(services: Services) -> None:
    reference: dict[str, Any] = {"user": {"id": "29:x", "name": "Morgan  Manager"},
                                 "serviceUrl": "https://smba.trafficmanager.net/uk/"}
    await remember_reference(services.db, user_id=APPROVER, reference=reference,
                             now=services.clock())
    replies = await people.with_names(services.db, [
        Text(f"• Approval: needed from {APPROVER.upper().replace('TEAMS:', 'teams:')}"),
        Text(f"{STRANGER} approved transfer SH-AB12-34."),
        Text(f"I could not reach your approver {STRANGER}: no chat."),
        Text(f"I have asked {STRANGER}; you will hear here."),
    ])
    texts = [r.text for r in replies if isinstance(r, Text)]
    assert texts == ["• Approval: needed from Morgan Manager",
                     "A colleague approved transfer SH-AB12-34.",
                     "I could not reach your approver: no chat.",
                     "I have asked your approver; you will hear here."]
