"""Hostile answers at every question of the conversation.

First each question is reached with valid answers (through the conftest helpers and the
real store), then arbitrary answers are fed to the pure ``engine.step`` at that question:
only a re-ask or a valid transition may result, never an exception, and the state stays
JSON-serialisable with every stored answer valid. Then the same through ``take_turn`` on the
real store (SQLite and PostgreSQL), where NUL bytes and unpaired surrogates meet the
database, and hostile file names through intake."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot import engine
from bot.answer_checks import PURPOSE_MAX, parse_call_time
from bot.envelope import decrypt_stream, encrypt_stream
from bot.events import Answer, Command, FilesReceived, IncomingFile
from bot.objects import ObjectKey
from bot.options import CANCEL_QUESTION, is_cancel_question
from bot.recipients import check_email
from bot.replies import Ask, Choice, FileReply, Form, Reply, Text
from bot.state import State, StepResult, TurnContext
from bot.statuses import Step
from channels.console.render import render
from handlers.conversation import current_state, storable_event, take_turn
from handlers.intake import new_upload_key, new_upload_path
from handlers.services import Services
from store import repositories as repo
from tests.reliability.strategies import (
    answer_values,
    corrupted,
    file_names,
    fuzz_settings,
    tried,
)
from tests.support.core import PDF, Conversation, answer_all
from tests.support.objects import upload_objects

# Where a valid answer at each question can lead (besides staying put, `back` to the
# previous question, and `cancel`/confirm back to idle).
FORWARD = {
    "files": {"classification"},
    "classification": {"information_categories"},
    "information_categories": {"recipient_pick", "recipient"},
    "recipient_pick": {"recipient"},
    "recipient": {"purpose"},
    "purpose": {"lawful_basis"},
    "lawful_basis": {"consent"},
    "consent": {"delivery"},
    "delivery": {"password_method"},
    "password_method": {"call_time", "confirm", "phone"},
    "call_time": {"confirm"},
    "confirm": {"phone"},  # "change the recipient's phone" goes straight there
    "phone": {"password_method", "confirm"},  # and back where it came from
}


def reference_of(text: str) -> str:
    match = re.search(r"SH-[0-9A-Z]{4}-[0-9A-Z]{2}", text)
    assert match, text
    return match.group(0)


async def reach(chat: Conversation, step: str, make_file: Any) -> None:
    """Answer validly until the conversation asks ``step``."""
    await chat.send_files(make_file("case.pdf"), make_file("notes.txt"))
    if step == "files":
        await chat.say("back")
        assert chat.question == "files", chat.text
        return
    answers: list[tuple[str, Any]] = [
        ("classification", "CONTROLLED"), ("information_categories", "8, 9"),
        ("recipient_pick", "new"),
        ("recipient", {"name": "Priya Shah", "job_title": "Safeguarding Lead",
                       "organisation": "Northfield NHS Trust", "email": "priya.shah@nhs.net",
                       "phone": "07911 123456"}),
        ("purpose", "Strategy meeting about a child at risk, as agreed with the family"),
        ("lawful_basis", "1"),
        ("consent", {"use_limits": "Only for the strategy meeting", "onward_sharing": "no",
                     "delete_after_use": "yes"}),
        ("delivery", "archive"), ("password_method", "voice"),
        ("call_time", "2026-11-24 10:00"),
    ]
    for question, value in answers:
        if chat.question == step:
            return
        if chat.question == "password_method" and step == "phone":
            await chat.say("change-phone")
            break
        if chat.question == question:
            await chat.say(value)
    assert chat.question == step, (step, chat.text)


def options_of(replies: list[Reply]) -> list[str]:
    words: list[str] = []
    for reply in replies:
        if isinstance(reply, Choice):
            for i, opt in enumerate(reply.options, start=1):
                words += [opt.value, opt.label, str(i)]
    return words or ["1"]


def check_result(before: State, result: StepResult, ctx: TurnContext) -> None:
    after = result.state
    json.dumps(after.to_json())  # stays JSON-serialisable (it is stored as JSON)
    assert State.from_json(json.loads(json.dumps(after.to_json()))) == after
    for reply in result.replies:
        assert isinstance(reply, Text | Ask | Choice | Form | FileReply)
        render(reply)
    allowed = {before.step, "idle", *FORWARD[before.step]}
    if before.step == "confirm":  # a state saved before the categories question is asked it
        allowed.add("information_categories")
    if before.history:
        allowed.add(before.history[-1])
    assert after.step in allowed, (before.step, after.step)
    if result.error is not None:  # a re-ask: same question, nothing answered
        assert after.step == before.step
        assert not result.effects
        for name in ("classification", "recipient", "purpose", "lawful_basis", "delivery",
                     "password_method", "call_at", "files", "reference"):
            assert getattr(after, name) == getattr(before, name), name
    if after.step == "idle":
        assert after == State()
        return
    assert after.reference == before.reference
    # Whatever has been stored as answered is valid.
    if after.classification is not None:
        level = ctx.policy.level(after.classification)
        if after.delivery is not None:
            assert after.delivery in level.delivery_methods
        if after.password_method is not None:
            assert after.password_method in level.password_methods
    if after.recipient is not None and after.recipient != before.recipient:
        assert check_email(after.recipient["email"], protected=True,
                           webmail_domains=ctx.policy.webmail_domains,
                           generic_mailboxes=ctx.policy.generic_mailboxes)
    if after.purpose is not None and after.purpose != before.purpose:
        assert ctx.policy.purpose_min_length <= len(after.purpose) <= PURPOSE_MAX
    if after.lawful_basis is not None:
        assert after.lawful_basis in ctx.policy.lawful_bases
    if after.call_at is not None and after.call_at != before.call_at:
        assert isinstance(parse_call_time(after.call_at, ctx), type(ctx.now))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("step", [s for s in engine.STEPS])
async def test_any_answer_at_every_question_is_a_reask_or_a_valid_step(
        services: Services, conversation: Any, make_file: Any, step: str) -> None:
    if step == "recipient_pick":  # offered once the sender has used a recipient before
        first = conversation("console:alice")
        await first.send_files(make_file("earlier.pdf"))
        await answer_all(first)
        await first.say("confirm")
    chat = conversation("console:alice")
    await reach(chat, step, make_file)
    assert chat.last is not None
    state = await current_state(services, conversation_id=chat.user_id)
    async with services.db.read() as session:
        known = await repo.known_recipients(session, sender_id=chat.user_id)
    ctx = TurnContext(policy=services.policy, now=services.clock(), user_id=chat.user_id,
                      default_region="GB", new_reference=lambda: "SH-ZZZZ-99",
                      known_recipients=known)
    words = options_of(chat.last.replies)

    @fuzz_settings(250)
    @given(value=answer_values(words),
           question=st.one_of(st.just(step), st.none(), st.sampled_from(engine.STEPS)))
    def check(value: str | dict[str, str], question: str | None) -> None:
        tried("engine.step (every question)")
        # What take_turn hands the engine (NUL and unpaired surrogates made storable).
        result = engine.step(state, storable_event(Answer(value, question)), ctx)
        check_result(state, result, ctx)

    check()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_any_answer_when_idle_is_harmless(services: Services) -> None:
    ctx = TurnContext(policy=services.policy, now=services.clock(), user_id="console:alice",
                      default_region="GB", new_reference=lambda: "SH-ZZZZ-99")

    @fuzz_settings(200)
    @given(value=answer_values())
    def check(value: str | dict[str, str]) -> None:
        tried("engine.step (idle)")
        result = engine.step(State(), storable_event(Answer(value)), ctx)
        assert result.state == State() and not result.effects
        assert all(render(r) for r in result.replies)

    check()


# --- through the store ------------------------------------------------------------------------


VALID: dict[str, str | dict[str, str]] = {
    "files": "continue", "classification": "CONTROLLED",
    "information_categories": "8, 9", "recipient_pick": "new",
    "recipient": {"name": "Priya Shah", "job_title": "Safeguarding Lead",
                  "organisation": "Northfield NHS Trust", "email": "priya.shah@nhs.net",
                  "phone": "07911 123456"},
    "purpose": "Strategy meeting about a child at risk, as agreed with the family",
    "lawful_basis": "1",
    "consent": {"use_limits": "Only for the strategy meeting", "onward_sharing": "no",
                "delete_after_use": "yes"},
    "delivery": "archive", "password_method": "sms", "call_time": "2026-11-24 10:00",
    "confirm": "confirm", "phone": "07911 123456", "cancel_transfer": "no",
}


async def finish(chat: Conversation) -> None:
    """Answer validly from wherever the conversation is, through confirm."""
    for _ in range(15):
        question = chat.question
        if question is None:
            return
        value = VALID[CANCEL_QUESTION if is_cancel_question(question) else question]
        if question == "password_method" and chat.last and chat.last.error:
            value = "voice"  # the (hostile but valid) number is not a mobile
        await chat.say(value)


@pytest.fixture
async def waiting_states(services: Services, conversation: Any, make_file: Any
                         ) -> dict[str, dict[str, Any]]:
    """The saved state of a conversation waiting at each question."""
    states: dict[str, dict[str, Any]] = {}
    for i, step in enumerate(s for s in engine.STEPS if s != Step.RECIPIENT_PICK):
        chat = conversation(f"console:setup{i}")
        await reach(chat, step, make_file)
        states[step] = (await current_state(services, conversation_id=chat.user_id)).to_json()
    return states


async def seed(services: Services, user: str, template: dict[str, Any]) -> None:
    """A conversation for ``user`` in ``template``'s state, with its own reference and
    its own copies of the uploads."""
    state = State.from_json(json.loads(json.dumps(template)))
    state.reference = services.new_reference()
    for f in state.files:  # an envelope opens only under its own key: sealed afresh
        original, copy = ObjectKey(f["path"]), new_upload_key()
        plain = decrypt_stream(services.objects.get(original), services.vault,
                               context=original)
        await services.objects.put(copy, encrypt_stream(plain, services.vault, context=copy))
        f["path"] = str(copy)
    async with services.db.transaction() as session:
        assert await repo.save_conversation(session, conversation_id=user, user_id=user,
                                            state=state.to_json(), expected_version=None,
                                            now=services.clock())
        await repo.upsert_draft(session, reference=state.reference, sender_id=user,
                                files=state.files, classification=state.classification,
                                now=services.clock())


@fuzz_settings(40)
@given(step=st.sampled_from([s for s in engine.STEPS if s != Step.RECIPIENT_PICK]),
       data=st.data(), as_question=st.booleans())
async def test_hostile_answers_through_take_turn_never_raise(
        services: Services, waiting_states: dict[str, dict[str, Any]], step: str,
        data: st.DataObject, as_question: bool) -> None:
    """A hostile answer (often spliced into a valid one, so it passes the checks) through
    the real store, then valid answers to the end: NUL bytes and unpaired surrogates meet
    PostgreSQL at the confirm and packaging steps. Never an exception; the conversation
    stays usable (``status`` re-asks) and the transfer reaches a known status."""
    tried("take_turn (hostile answers to completion, real store)")
    value = data.draw(st.one_of(answer_values(["1", "2", "confirm"]), corrupted(VALID[step])))
    user = f"console:fuzz-{services.new_reference()}"
    await seed(services, user, waiting_states[step])
    chat = Conversation(services, user)
    await chat.event(Command("status"))
    assert chat.question == step
    await chat.event(Answer(value, step if as_question else None))
    assert all(render(r) for r in (chat.last.replies if chat.last else []))
    await finish(chat)
    status = await take_turn(services, conversation_id=user, user_id=user,
                             event=Command("list"))
    assert status.replies
    json.dumps((await current_state(services, conversation_id=user)).to_json())


@fuzz_settings(80)
@given(name=file_names(), content=st.sampled_from([PDF, b"case note\n" * 20, b"",
                                                   b"MZ" + b"\x00" * 200]))
async def test_hostile_file_names_through_intake(services: Services, name: str,
                                                 content: bytes) -> None:
    """Files named with traversal, NUL bytes, unpaired surrogates and mixed scripts: the
    upload is accepted under its safe path or refused, and a refused upload is deleted."""
    tried("take_turn (hostile file names, real store)")
    user = "console:names"
    path = new_upload_path(services.settings)
    path.write_bytes(content)
    incoming = IncomingFile(name=name, path=path, size=len(content))
    turn = await take_turn(services, conversation_id=user, user_id=user,
                           event=FilesReceived((incoming,)))
    assert all(render(r) for r in turn.replies)
    state = await current_state(services, conversation_id=user)
    kept = {f["path"] for f in state.files}
    assert (str(path) in kept) or not path.exists()
    assert not path.exists()  # sealed into the store or refused: never kept here
    for f in state.files:  # the sender's name is never part of the key
        assert f["path"].startswith("uploads/received/")
        assert ObjectKey(f["path"]) in await upload_objects(services)
    await take_turn(services, conversation_id=user, user_id=user, event=Answer("cancel"))
    await take_turn(services, conversation_id=user, user_id=user, event=Answer("yes"))
    assert await upload_objects(services) == []
