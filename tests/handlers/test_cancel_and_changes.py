"""Issue 15 in the core, whatever the channel: a cancel asks first, a command typed into a
form is the command, a landline is offered only what it can do, "change the recipient's
phone" goes straight there and back, and no answer is lost going back and forth."""

from __future__ import annotations

from typing import Any

from bot.events import Answer
from bot.messages import conversation as msg
from bot.options import CHANGE_PHONE, cancel_question, is_cancel_question
from bot.replies import Ask, Choice, Form
from bot.state import State
from bot.statuses import Step
from handlers.conversation import current_state
from handlers.services import Services
from store.models import Transfer
from tests.support.core import CONSENT, PURPOSE, RECIPIENT, Conversation, answer_all
from tests.support.objects import upload_objects

LANDLINE = "0121 234 5678"  # a Birmingham fixed line
MOBILE = "07911 123456"


async def _status(svc: Services, reference: str) -> str:
    async with svc.db.read() as s:
        row = await s.get(Transfer, reference)
    assert row is not None
    return str(row.status)


def _answers(state: State) -> dict[str, Any]:
    """Everything answered, without where the conversation is."""
    data = state.to_json()
    for key in ("step", "history", "cancel_pending", "return_to"):
        data.pop(key)
    return data


async def _state(chat: Conversation) -> State:
    return await current_state(chat.svc, conversation_id=chat.user_id)


# --- a cancel asks first ----------------------------------------------------------------------


async def test_typed_cancel_asks_and_no_keeps_everything(
        services: Services, conversation: Any, make_file: Any) -> None:
    chat = conversation()
    await chat.send_files(make_file("a.pdf"))
    await chat.say("CONTROLLED")
    await chat.say("contact-details")
    await chat.say(RECIPIENT)
    await chat.say(PURPOSE)
    assert chat.question == "lawful_basis"
    before = await _state(chat)
    stored = await upload_objects(services)
    await chat.say("cancel")
    asked = chat.pending
    assert isinstance(asked, Choice) and is_cancel_question(asked.question)
    assert str(before.reference) in asked.prompt and "deletes the files" in asked.prompt
    assert await _status(services, str(before.reference)) == "draft"
    await chat.say("no")
    assert msg.CANCEL_KEPT.format(reference=before.reference) in chat.text
    assert chat.question == "lawful_basis"  # the open question, asked again
    after = await _state(chat)
    assert after == before  # every answer, the files, where it was
    assert await upload_objects(services) == stored
    assert await _status(services, str(before.reference)) == "draft"
    # An answer to the open question given instead is not taken for it: asked again.
    await chat.say("cancel")
    await chat.say("UK GDPR Art 6(1)(e) public task")
    assert chat.question == "lawful_basis" and await _state(chat) == before


async def test_yes_cancels_and_anything_else_keeps(
        services: Services, conversation: Any, make_file: Any) -> None:
    chat = conversation()
    await chat.send_files(make_file("a.pdf"))
    ref = (await _state(chat)).reference
    assert ref is not None
    await chat.say("CONTROLLED")
    await chat.say("cancel")
    await chat.say("maybe later")
    assert chat.question == "information_categories"
    assert (await _state(chat)).classification == "CONTROLLED"
    await chat.say("cancel")
    await chat.say("yes")
    assert msg.CANCELLED.format(reference=ref) in chat.text
    assert await _status(services, ref) == "cancelled"
    assert await upload_objects(services) == []
    assert await _state(chat) == State()


async def test_a_button_on_the_open_question_while_asked_keeps_the_transfer(
        services: Services, conversation: Any, make_file: Any) -> None:
    chat = conversation()
    await chat.send_files(make_file("a.pdf"))
    await chat.say("cancel")
    await chat.event(Answer("CONTROLLED", "classification"))  # the earlier message's button
    assert chat.question == "information_categories"
    assert (await _state(chat)).cancel_pending is None


async def test_the_summary_cancel_asks_unless_the_platform_confirmed(
        services: Services, conversation: Any, make_file: Any) -> None:
    chat = conversation()
    await chat.send_files(make_file("a.pdf"))
    ref = (await _state(chat)).reference
    assert ref is not None
    await answer_all(chat)
    await chat.event(Answer("cancel", "confirm"))  # Teams' Cancel action: no dialog there
    assert chat.question == cancel_question(ref)
    await chat.say("no")
    assert chat.question == "confirm"
    assert await _status(services, ref) == "draft"
    # Slack's Cancel button carries its confirm dialog: not asked twice.
    await chat.event(Answer("cancel", "confirm", confirmed=True))
    assert msg.CANCELLED.format(reference=ref) in chat.text
    assert await _status(services, ref) == "cancelled"


async def test_cancel_ref_of_a_submitted_transfer_asks_first(
        services: Services, conversation: Any, make_file: Any) -> None:
    alice = conversation("console:alice")
    await alice.send_files(make_file("a.pdf"))
    ref = (await _state(alice)).reference
    assert ref is not None
    await answer_all(alice, classification="RESTRICTED", password="sms-on-receipt")
    await alice.say("confirm")
    assert await _status(services, ref) == "awaiting_approval"
    await alice.say(f"cancel {ref}")
    assert alice.question == cancel_question(ref) and ref in alice.text
    await alice.say("no")
    assert await _status(services, ref) == "awaiting_approval"
    bob = conversation("console:bob")
    await bob.say(f"cancel {ref}")  # not his: told as for a made-up one, nothing asked
    assert "cannot find" in bob.text and bob.question is None
    await alice.say(f"cancel {ref}")
    await alice.say("yes")
    assert "cancelled" in alice.text
    assert await _status(services, ref) == "cancelled"
    await alice.say(f"cancel {ref}")  # nothing left to confirm
    assert "already cancelled" in alice.text and alice.question is None


async def test_cancel_ref_while_answering_another_returns_to_its_question(
        services: Services, conversation: Any, make_file: Any) -> None:
    alice = conversation("console:alice")
    await alice.send_files(make_file("a.pdf"))
    first = (await _state(alice)).reference
    await answer_all(alice)
    await alice.say("confirm")
    assert first is not None
    await alice.send_files(make_file("b.pdf"))
    await alice.say("CONTROLLED")
    assert alice.question == "information_categories"
    await alice.say(f"cancel {first}")
    assert alice.question == cancel_question(first)
    await alice.say("yes")
    assert await _status(services, first) == "cancelled"
    assert alice.question == "information_categories"  # the other transfer goes on


# --- commands typed into a form are commands --------------------------------------------------


async def test_a_command_typed_into_a_form_field_is_the_command(
        services: Services, conversation: Any, make_file: Any) -> None:
    chat = conversation()
    await chat.send_files(make_file("a.pdf"))
    ref = (await _state(chat)).reference
    await chat.say("CONTROLLED")
    await chat.say("contact-details")
    assert chat.question == "recipient"
    # As Slack's modal or Teams' card hands it over: the job title holds a command.
    await chat.event(Answer({**RECIPIENT, "job_title": f"cancel {ref}"}, "recipient"))
    assert chat.question == cancel_question(ref or "")
    await chat.say("no")
    assert chat.question == "recipient"
    assert (await _state(chat)).recipient is None
    for command, shows in ((f"status {ref}", ref or ""), (f"mistake {ref}", ref or "")):
        await chat.event(Answer({**RECIPIENT, "name": command}, "recipient"))
        assert shows.lower() in chat.text.lower(), (command, chat.text)
        state = await _state(chat)
        assert state.recipient is None and state.step == Step.RECIPIENT, command
        assert not (state.recipient_draft or {}).get("name", "").startswith(command)


async def test_a_field_that_is_a_bare_command_word_is_its_value(
        services: Services, conversation: Any, make_file: Any) -> None:
    """A job title of "Status" (or "Help", "List", "Received") names no transfer: it is what
    the sender typed in the field, not a command that throws the form away."""
    chat = conversation()
    await chat.send_files(make_file("a.pdf"))
    await chat.say("CONTROLLED")
    await chat.say("contact-details")
    for word in ("help", "list", "status", "received"):
        assert chat.question == "recipient"
        await chat.event(Answer({**RECIPIENT, "job_title": word, "email": "nobody"},
                                "recipient"))
        state = await _state(chat)
        assert state.step == Step.RECIPIENT and state.recipient_draft is not None, word
        assert state.recipient_draft["job_title"] == word  # kept, with the email's error
    await chat.event(Answer({**RECIPIENT, "job_title": "Status"}, "recipient"))
    state = await _state(chat)
    assert state.step == Step.PURPOSE and state.recipient is not None
    assert state.recipient["job_title"] == "Status"


# --- a landline, and changing the phone -------------------------------------------------------


async def _to_password(chat: Conversation, make_file: Any, phone: str) -> None:
    await chat.send_files(make_file("a.pdf"))
    await chat.say("CONTROLLED")
    await chat.say("contact-details, other-personal")
    await chat.say({**RECIPIENT, "phone": phone})
    await chat.say(PURPOSE)
    await chat.say("1")
    await chat.say(CONSENT)
    await chat.say("archive")
    assert chat.question == "password_method", chat.text


async def test_a_landline_is_offered_no_sms_and_told_why(
        services: Services, conversation: Any, make_file: Any) -> None:
    chat = conversation()
    await _to_password(chat, make_file, LANDLINE)
    asked = chat.pending
    assert isinstance(asked, Choice)
    values = [o.value for o in asked.options]
    assert "sms" not in values and "sms-on-receipt" not in values
    assert "voice" in values and CHANGE_PHONE in values
    assert "is a landline, so it can't receive a text" in asked.prompt
    await chat.say("sms")  # typed anyway: told why, nothing recorded
    assert "needs a mobile" in chat.text and chat.question == "password_method"
    # A mobile is offered SMS, without the note.
    other = conversation("console:bob")
    await _to_password(other, make_file, MOBILE)
    mobile = other.pending
    assert isinstance(mobile, Choice) and "sms" in [o.value for o in mobile.options]
    assert "landline" not in mobile.prompt


async def test_change_phone_goes_straight_there_and_back_keeping_every_answer(
        services: Services, conversation: Any, make_file: Any) -> None:
    chat = conversation()
    await _to_password(chat, make_file, LANDLINE)
    before = _answers(await _state(chat))
    await chat.say(msg.CHANGE_PHONE)
    asked = chat.pending
    assert isinstance(asked, Ask) and asked.question == "phone"
    assert "+44 121 234 5678" in asked.prompt
    await chat.say("not a number")
    assert chat.question == "phone" and chat.last and chat.last.error
    await chat.say(MOBILE)
    assert chat.question == "password_method"  # back where it was asked from
    after = _answers(await _state(chat))
    assert after["recipient"]["phone_display"] == "+44 7911 123456"
    assert after["recipient"]["is_mobile"] is True
    for key in before:
        if key != "recipient":
            assert after[key] == before[key], key
    assert {k: v for k, v in after["recipient"].items() if "phone" not in k
            and k not in ("is_mobile", "extension")} == {
        k: v for k, v in before["recipient"].items() if "phone" not in k
        and k not in ("is_mobile", "extension")}
    await chat.say("sms")  # now offered
    assert chat.question == "confirm"
    # From the summary: there and back to the summary, the history as it was.
    summary_state = await _state(chat)
    await chat.say(msg.CHANGE_PHONE)
    assert chat.question == "phone"
    await chat.say("07400 123456")
    assert chat.question == "confirm"
    back_at_summary = await _state(chat)
    assert back_at_summary.history == summary_state.history
    assert back_at_summary.recipient and back_at_summary.recipient["phone_display"] \
        == "+44 7400 123456"
    assert back_at_summary.purpose == PURPOSE and back_at_summary.password_method == "sms"
    # A landline from the summary: SMS no longer fits, so the password question comes.
    await chat.say(msg.CHANGE_PHONE)
    await chat.say(LANDLINE)
    assert chat.question == "password_method"
    assert (await _state(chat)).password_method is None
    await chat.say("back")  # and back leads to the question before it, as ever
    assert chat.question == "delivery"


async def test_back_from_the_phone_returns_without_changing_it(
        services: Services, conversation: Any, make_file: Any) -> None:
    chat = conversation()
    await _to_password(chat, make_file, LANDLINE)
    before = await _state(chat)
    await chat.say(CHANGE_PHONE)
    await chat.say("back")
    assert chat.question == "password_method"
    assert await _state(chat) == before


async def test_the_issue_landline_scenario(
        services: Services, conversation: Any, make_file: Any) -> None:
    """A landline, SMS not offered; the phone changed straight away; the purpose typed
    earlier still there; SMS to the new mobile; confirmed with every answer."""
    chat = conversation()
    await _to_password(chat, make_file, LANDLINE)
    assert "SMS now" not in chat.text
    await chat.say(CHANGE_PHONE)
    await chat.say(MOBILE)
    await chat.say("SMS now")
    assert chat.question == "confirm"
    state = await _state(chat)
    assert state.purpose == PURPOSE and state.consent and state.lawful_basis
    assert "SMS now" in chat.text and PURPOSE in chat.text


# --- never lose an answer ---------------------------------------------------------------------


def _keep_answer(pending: Choice | Ask | Form | None) -> str | dict[str, str]:
    """What a person does to keep the answer shown: Enter at a question (the terminal),
    a form sent back as it is shown (every channel shows a form with its saved values)."""
    if isinstance(pending, Form):
        return {f.name: f.value for f in pending.fields}
    if isinstance(pending, Choice) and pending.multiple:
        return ", ".join(pending.chosen)
    return ""


async def test_back_through_every_question_and_forward_again_keeps_every_answer(
        services: Services, conversation: Any, make_file: Any) -> None:
    """From the summary, back 1, 2, ... questions, then forward again keeping each shown
    answer: back at the summary with exactly the answers it had."""
    for voice in (False, True):
        chat = conversation(f"console:walker{int(voice)}")
        await chat.send_files(make_file("a.pdf"))
        await answer_all(chat, password="voice" if voice else "sms",
                         delivery="portal")
        summary = await _state(chat)
        depth = len(summary.history)
        for steps_back in range(1, depth):
            for _ in range(steps_back):
                await chat.say("back")
            walked: list[str] = []
            for _ in range(steps_back + 1):
                if chat.question == "confirm":
                    break
                walked.append(str(chat.question))
                await chat.say(_keep_answer(chat.pending))
                assert not (chat.last and chat.last.error), (walked, chat.text)
            assert chat.question == "confirm", (steps_back, walked, chat.text)
            again = await _state(chat)
            assert _answers(again) == _answers(summary), (steps_back, walked)
            assert again.history == summary.history


async def test_changing_classification_and_recipient_keeps_the_rest(
        services: Services, conversation: Any, make_file: Any) -> None:
    chat = conversation()
    await chat.send_files(make_file("a.pdf"))
    await answer_all(chat)
    summary = await _state(chat)
    while chat.question != "classification":
        await chat.say("back")
    await chat.say("CONTROLLED")
    while chat.question != "recipient":
        await chat.say(_keep_answer(chat.pending))
    await chat.say({**RECIPIENT, "job_title": "Head of Safeguarding"})
    assert chat.question == "purpose"
    purpose = chat.pending
    assert isinstance(purpose, Ask) and purpose.value == PURPOSE
    while chat.question != "confirm":
        await chat.say(_keep_answer(chat.pending))
    after = await _state(chat)
    assert after.recipient and after.recipient["job_title"] == "Head of Safeguarding"
    for key in ("purpose", "lawful_basis", "consent", "delivery", "password_method",
                "information_categories", "files"):
        assert getattr(after, key) == getattr(summary, key), key
