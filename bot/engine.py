"""The guided secure-share conversation as a pure function: the state machine.

``step(state, event, ctx)`` takes the saved conversation state and one neutral event and
returns the replies, the new state, the audit entries to append and the effects to run
(:mod:`bot.state`). It does no I/O: newly received files are judged before the turn, off the
event loop (:func:`handlers.intake.check_files`), and their verdicts come in the context.
The caller saves the state (with a version check), the audit entries and the effects (as
outbox rows) in one transaction, and only then runs the effects. That makes every turn
atomic and lets a restart continue exactly where the conversation was.

The questions, in order: files, classification, what kind of information (the policy's
categories, several may apply), recipient, purpose, lawful basis, consent
limits, delivery, password delivery (and call time), summary and confirm; the recipient's
phone alone is reached straight from the password question and the summary, and returns
there. ``back`` and ``cancel`` work at every question; a cancel asks "yes or no" first
(unless the platform already asked, on the open question), the open question staying open
underneath; the confirmation names its transfer, so an older one's yes is stale. Every
answer is kept when the sender goes back and forth, and an empty answer keeps the earlier
one. This module holds the turn's dispatch and each
question's move to the next; files arriving are :mod:`bot.file_intake`'s, checking an answer
is :mod:`bot.answer_checks`'s, asking a question :mod:`bot.questions`'s and the confirm
screen :mod:`bot.summary`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, cast

from bot.answer_checks import (
    PURPOSE_MAX,
    call_time_as_typed,
    check_consent,
    check_phone,
    check_purpose,
    parse_call_time,
    refused_recipient,
    validate_recipient,
)
from bot.entries import Recipient
from bot.events import Answer, CancelRequest, Event, FilesReceived
from bot.file_intake import receive_files
from bot.messages import conversation as msg
from bot.messages.words import plural
from bot.options import (
    CANCEL_YES,
    CHANGE_PHONE,
    CONFIRM_OPTIONS,
    LAWFUL_NOT_SURE,
    SMS_METHODS,
    cancel_options,
    cancel_question,
    classification_options,
    delivery_options,
    files_options,
    information_category_options,
    is_cancel_question,
    lawful_options,
    level_password_options,
    password_options,
    pick,
    pick_several,
    recipient_pick_options,
    takes_sms,
)
from bot.questions import ask
from bot.replies import Ask, Choice, Reply, Text
from bot.sizes import human_size
from bot.state import (
    AuditEntry,
    CancelTransfer,
    DeleteFiles,
    State,
    StepResult,
    SubmitTransfer,
    TurnContext,
    chosen_level,
)
from bot.statuses import DeliveryMethod, PasswordMethod, Step
from bot.summary import approval_basis, needs_approval, transfer_record

STEPS = tuple(s for s in Step if s is not Step.IDLE)
# The most of a refused typed answer given back in the question's input.
TYPED_KEPT_MAX = PURPOSE_MAX


# --- entry points --------------------------------------------------------------------------


def step(state: State, event: Event, ctx: TurnContext) -> StepResult:
    """Apply one event to the conversation."""
    if isinstance(event, FilesReceived):  # files instead of a yes or no: the transfer is kept
        return receive_files(replace(state, cancel_pending=None), event.files, ctx)
    if isinstance(event, CancelRequest):
        return _request_cancel(state, event.reference, ctx, confirmed=event.confirmed)
    if isinstance(event, Answer):
        return _on_answer(state, event, ctx)
    return StepResult([Text(msg.HELP)], state)


def current_question(state: State, ctx: TurnContext) -> list[Reply]:
    """Re-ask whatever the conversation is waiting for (after a restart, or on `status`)."""
    if state.cancel_pending is not None:
        return [_cancel_question(state)]
    if state.step == Step.IDLE:
        return [Text(msg.IDLE)]
    return ask(state, ctx)


# --- moving between questions --------------------------------------------------------------


def _on_answer(state: State, answer: Answer, ctx: TurnContext) -> StepResult:
    value = answer.value
    word = value.strip().lower() if isinstance(value, str) else ""
    if is_cancel_question(answer.question):
        # Only the confirmation asked now, for the transfer it names, acts: one for another
        # transfer (an older card) or none asked is stale, never a cancel.
        pending = state.cancel_pending
        if pending is None or answer.question != cancel_question(pending):
            return _stale(state)
        return _on_cancel_answer(state, answer, word, ctx)
    if state.cancel_pending is not None:
        if answer.question is None:
            return _on_cancel_answer(state, answer, word, ctx)
        if answer.question != state.step:
            return _stale(state)
        # The open question answered instead (a button on it): the transfer is kept.
        state = replace(state, cancel_pending=None)
    if word == "cancel":
        # A cancel pressed on an older question (confirmed on the platform or not) asks first,
        # naming the transfer: the message it was on may be about another one.
        open_question = answer.question is None or answer.question == state.step
        return _request_cancel(state, state.reference, ctx,
                               confirmed=answer.confirmed and open_question)
    if state.step == Step.IDLE:
        return StepResult([Text(msg.IDLE)], state)
    if answer.question is not None and answer.question != state.step:
        return _stale(state)
    if word == "back":
        return _back(state, ctx)
    if state.step == Step.CONFIRM and pick(CONFIRM_OPTIONS, value) == "cancel":
        return _request_cancel(state, state.reference, ctx, confirmed=answer.confirmed)
    handler = _ANSWER_HANDLERS[state.step]
    return handler(state, value, ctx)


def _stale(state: State) -> StepResult:
    return StepResult([Text(msg.STALE_ANSWER)], state, error=msg.STALE_ANSWER, stale=True)


def _kept(value: str | dict[str, str], earlier: str | None) -> str | dict[str, str]:
    """An empty answer keeps the earlier one (Enter at a question answered before)."""
    if isinstance(value, str) and not value.strip() and earlier:
        return earlier
    return value


# --- cancelling ----------------------------------------------------------------------------


def _cancel_question(state: State) -> Choice:
    ref = state.cancel_pending or ""
    if ref == state.reference:
        prompt = msg.ASK_CANCEL.format(reference=ref, files=plural(len(state.files), "file"))
    else:
        prompt = msg.ASK_CANCEL_OTHER.format(reference=ref)
    return Choice(cancel_question(ref), prompt, cancel_options(ref))


def _request_cancel(state: State, reference: str | None, ctx: TurnContext, *,
                    confirmed: bool) -> StepResult:
    """Cancel ``reference`` (the conversation's own transfer, or another the sender may
    cancel): at once when the platform already confirmed, else asked "yes or no" first."""
    own = reference is not None and reference == state.reference
    if reference is None or (own and state.step == Step.IDLE):
        return StepResult([Text(msg.NOTHING_TO_CANCEL)], State())
    if confirmed:
        if own:
            return _cancel(state)
        return StepResult([], replace(state, cancel_pending=None), cancel_other=reference)
    new = replace(state, cancel_pending=reference)
    return StepResult([_cancel_question(new)], new)


def _on_cancel_answer(state: State, answer: Answer, word: str, ctx: TurnContext
                      ) -> StepResult:
    """Yes cancels; anything else keeps the transfer and asks the open question again."""
    ref = state.cancel_pending or ""
    kept = replace(state, cancel_pending=None)
    yes = word in ("y", "yes") or pick(cancel_options(ref), answer.value) == CANCEL_YES \
        or (answer.confirmed and word == "cancel")
    if not yes:
        return StepResult([Text(msg.CANCEL_KEPT.format(reference=ref)),
                           *current_question(kept, ctx)], kept)
    if ref == state.reference:
        return _cancel(kept)
    again = current_question(kept, ctx) if kept.step != Step.IDLE else []
    return StepResult(again, kept, cancel_other=ref)


def _cancel(state: State) -> StepResult:
    if state.step == Step.IDLE or not state.reference:
        return StepResult([Text(msg.NOTHING_TO_CANCEL)], State())
    ref = state.reference
    return StepResult(
        [Text(msg.CANCELLED.format(reference=ref))],
        State(),
        audit=[AuditEntry("cancelled", ref, {"by": "sender", "at_step": state.step})],
        effects=[DeleteFiles(tuple(f["path"] for f in state.files)), CancelTransfer(ref)],
    )


def _back(state: State, ctx: TurnContext) -> StepResult:
    if not state.history:
        return StepResult([Text(msg.NOTHING_TO_GO_BACK_TO), *ask(state, ctx)], state)
    new = replace(state, history=state.history[:-1], step=state.history[-1], return_to=None)
    return StepResult(ask(new, ctx), new)


def _to_phone(state: State, ctx: TurnContext) -> StepResult:
    """Straight to the recipient's phone, to come back here once it is answered."""
    new = replace(state, history=[*state.history, state.step], step=Step.PHONE,
                  return_to=state.step)
    return StepResult(ask(new, ctx), new)


def _history_before(history: list[Step], step: Step) -> list[Step]:
    """The history as it was when ``step`` was asked (the whole of it if never)."""
    if step not in history:
        return history
    return history[:len(history) - 1 - history[::-1].index(step)]


def _advance(state: State, ctx: TurnContext, next_step: Step, audit: AuditEntry | None
             ) -> StepResult:
    new = replace(state, history=[*state.history, state.step], step=next_step)
    return StepResult(ask(new, ctx), new, audit=[audit] if audit else [])


def _answered(state: State, question: str, details: dict[str, Any]) -> AuditEntry:
    return AuditEntry("answered", state.reference, {"question": question, **details})


def _reask(state: State, ctx: TurnContext, error: str, typed: str | None = None
           ) -> StepResult:
    """The question again with ``error``; a typed question keeps what was ``typed`` in its
    input (a Teams card's field), to correct rather than type again."""
    replies = ask(state, ctx, error)
    if typed is not None:
        replies = [replace(r, value=typed[:TYPED_KEPT_MAX]) if isinstance(r, Ask) else r
                   for r in replies]
    return StepResult(replies, state, error=error)


def _refused_form(new: State, ctx: TurnContext, errors: dict[str, str]) -> StepResult:
    return StepResult(ask(new, ctx, errors=errors), new,
                      error="; ".join(f"{k}: {v}" for k, v in errors.items()))


# --- each question's answer ----------------------------------------------------------------


def _answer_files(state: State, value: str | dict[str, str], ctx: TurnContext) -> StepResult:
    picked = pick(files_options(state), value)
    if picked is None:
        return _reask(state, ctx, msg.ANSWER_WITH_CHOICE)
    if picked == "continue":
        if not state.files:
            return _reask(state, ctx, msg.FILES_EMPTY)
        return _advance(state, ctx, Step.CLASSIFICATION, None)
    position = int(picked.split(":", 1)[1])
    gone = next(f for f in state.files if f["position"] == position)
    new = replace(state, files=[f for f in state.files if f["position"] != position])
    return StepResult([Text(msg.FILE_REMOVED.format(name=gone["name"])), *ask(new, ctx)], new,
                      audit=[AuditEntry("file_removed", state.reference,
                                        {"position": position})],
                      effects=[DeleteFiles((gone["path"],))])


def _answer_classification(state: State, value: str | dict[str, str], ctx: TurnContext
                           ) -> StepResult:
    picked = pick(classification_options(ctx), _kept(value, state.classification))
    if picked is None:
        return _reask(state, ctx, msg.ANSWER_WITH_CHOICE)
    level = ctx.policy.level(picked)
    if state.total_bytes > level.max_total_bytes:
        return _reask(state, ctx, msg.LEVEL_TOO_LARGE.format(
            level=level.name, limit=human_size(level.max_total_bytes),
            size=human_size(state.total_bytes)))
    new = replace(state, classification=picked)
    if level.delivery_methods == (new.delivery,) or new.delivery not in level.delivery_methods:
        new.delivery = None
    if new.password_method not in level.password_methods:
        new.password_method = None
    next_step = Step.INFORMATION_CATEGORIES if ctx.policy.information_categories \
        else _recipient_step(ctx)
    return _advance(new, ctx, next_step, _answered(state, Step.CLASSIFICATION,
                                                    {"classification": picked}))


def _recipient_step(ctx: TurnContext) -> Step:
    return Step.RECIPIENT_PICK if ctx.known_recipients else Step.RECIPIENT


def _answer_information_categories(state: State, value: str | dict[str, str],
                                   ctx: TurnContext) -> StepResult:
    earlier = ", ".join(state.information_categories or ())
    picked, unknown = pick_several(information_category_options(ctx), _kept(value, earlier))
    if unknown is not None:
        return _reask(state, ctx, msg.CATEGORIES_UNKNOWN.format(text=unknown[:60]))
    if not picked:
        return _reask(state, ctx, msg.CATEGORIES_NONE_PICKED)
    new = replace(state, information_categories=picked)
    # Sent here from the confirm question (state saved before this question existed):
    # back to the summary.
    from_confirm = bool(state.history) and state.history[-1] == Step.CONFIRM
    return _advance(new, ctx, Step.CONFIRM if from_confirm else _recipient_step(ctx),
                    _answered(state, Step.INFORMATION_CATEGORIES,
                              {"information_categories": list(picked)}))


def _answer_recipient_pick(state: State, value: str | dict[str, str], ctx: TurnContext
                           ) -> StepResult:
    picked = pick(recipient_pick_options(ctx), value)
    if picked is None:
        return _reask(state, ctx, msg.ANSWER_WITH_CHOICE)
    draft = None if picked == "new" else dict(ctx.known_recipients[int(picked[1:]) - 1])
    new = replace(state, recipient_draft=draft)
    return _advance(new, ctx, Step.RECIPIENT, None)


def _answer_recipient(state: State, value: str | dict[str, str], ctx: TurnContext
                      ) -> StepResult:
    if not isinstance(value, dict):
        return _reask(state, ctx, msg.FORM_HAS_ERRORS)
    values = {k: str(v) for k, v in value.items()}
    clean, errors = validate_recipient(values, chosen_level(state, ctx), ctx)
    if clean is None:
        result = _refused_form(replace(state, recipient_draft=values), ctx, errors)
        result.near_misses = refused_recipient(values, chosen_level(state, ctx), ctx,
                                               state.reference)
        return result
    new = replace(state, recipient=clean, recipient_draft=None)
    if new.password_method in SMS_METHODS and not takes_sms(clean):
        new.password_method = None
    details = {k: clean.get(k, "") for k in ("name", "job_title", "department",
                                             "organisation", "email")}
    details["phone"] = clean["phone_display"]
    return _advance(new, ctx, Step.PURPOSE,
                    _answered(state, Step.RECIPIENT, {"recipient": details}))


def _answer_purpose(state: State, value: str | dict[str, str], ctx: TurnContext) -> StepResult:
    typed = _kept(value, state.purpose)
    text, error = check_purpose(typed, ctx.policy.purpose_min_length)
    if error is not None:
        return _reask(state, ctx, error, typed if isinstance(typed, str) else None)
    new = replace(state, purpose=text)
    return _advance(new, ctx, Step.LAWFUL_BASIS, _answered(state, Step.PURPOSE, {"purpose": text}))


def _answer_lawful_basis(state: State, value: str | dict[str, str], ctx: TurnContext
                         ) -> StepResult:
    picked = pick(lawful_options(ctx), _kept(value, state.lawful_basis))
    if picked is None:
        return _reask(state, ctx, msg.ANSWER_WITH_CHOICE)
    if picked == LAWFUL_NOT_SURE:  # nothing recorded: who to ask, and the question again
        governance = ctx.policy.governance
        who = governance.email or ", ".join(ctx.policy.governance_ids())
        contact = msg.LAWFUL_CONTACT.format(contact=who) if who else ""
        return StepResult([Text(msg.LAWFUL_NOT_SURE_REPLY.format(contact=contact)),
                           *ask(state, ctx)], state)
    new = replace(state, lawful_basis=picked)
    return _advance(new, ctx, Step.CONSENT, _answered(state, Step.LAWFUL_BASIS,
                                                    {"lawful_basis": picked}))


def _answer_consent(state: State, value: str | dict[str, str], ctx: TurnContext) -> StepResult:
    values = value if isinstance(value, dict) else {}
    consent, errors = check_consent(values)
    if consent is None:
        draft = {k: str(v) for k, v in values.items()}
        return _refused_form(replace(state, consent={"draft": draft}), ctx, errors)
    new = replace(state, consent=consent)
    return _advance(new, ctx, Step.DELIVERY, _answered(state, Step.CONSENT, {"consent": consent}))


def _answer_delivery(state: State, value: str | dict[str, str], ctx: TurnContext) -> StepResult:
    options, note = delivery_options(state, ctx)
    picked = pick(options, _kept(value, state.delivery))
    if picked is None:
        return _reask(state, ctx, note or msg.ANSWER_WITH_CHOICE)
    new = replace(state, delivery=DeliveryMethod(picked))
    return _advance(new, ctx, Step.PASSWORD_METHOD, _answered(state, Step.DELIVERY,
                                                            {"method": picked}))


def _answer_password_method(state: State, value: str | dict[str, str], ctx: TurnContext
                            ) -> StepResult:
    options, _note = password_options(state, ctx)
    chosen = pick(options, _kept(value, state.password_method))
    if chosen == CHANGE_PHONE:
        return _to_phone(state, ctx)
    if chosen is None:
        recipient = state.recipient or {}
        if pick(level_password_options(state, ctx), value) in SMS_METHODS:  # typed "sms"
            return _reask(state, ctx, msg.SMS_NEEDS_MOBILE.format(
                phone=recipient.get("phone_display", "")))
        return _reask(state, ctx, msg.ANSWER_WITH_CHOICE)
    picked = PasswordMethod(chosen)
    new = replace(state, password_method=picked, call_at=None if picked != PasswordMethod.VOICE else
                  state.call_at)
    audit = _answered(state, Step.PASSWORD_METHOD, {"password_method": picked})
    return _advance(new, ctx, Step.CALL_TIME if picked == PasswordMethod.VOICE else Step.CONFIRM,
                    audit)


def _answer_call_time(state: State, value: str | dict[str, str], ctx: TurnContext
                      ) -> StepResult:
    value = _kept(value, state.call_at)
    typed = value if isinstance(value, str) else ""
    result = parse_call_time(typed, ctx)
    if isinstance(result, str):
        return _reask(state, ctx, result, call_time_as_typed(typed))
    new = replace(state, call_at=result.isoformat())
    return _advance(new, ctx, Step.CONFIRM, _answered(state, Step.CALL_TIME,
                                                    {"call_at": result.isoformat()}))


def _answer_confirm(state: State, value: str | dict[str, str], ctx: TurnContext) -> StepResult:
    picked = pick(CONFIRM_OPTIONS, value)
    if picked is None:
        return _reask(state, ctx, msg.ANSWER_WITH_CHOICE)
    if picked == "back":
        return _back(state, ctx)
    if picked == CHANGE_PHONE:
        return _to_phone(state, ctx)
    if ctx.policy.information_categories and state.information_categories is None:
        # Saved before the question existed: it is asked, never filled in for the sender.
        new = replace(state, history=[*state.history, state.step],
                      step=Step.INFORMATION_CATEGORIES)
        return StepResult([Text(msg.CATEGORIES_NOT_ANSWERED), *ask(new, ctx)], new)
    if needs_approval(state, ctx) and not ctx.policy.approvers_for(ctx.user_id):
        return _reask(state, ctx, msg.NO_APPROVERS)
    assert state.reference is not None
    return StepResult(
        [Text(msg.CONFIRMED.format(reference=state.reference))],
        State(),
        audit=[AuditEntry("confirmed", state.reference,
                          {**transfer_record(state), "approval": approval_basis(state, ctx)})],
        effects=[SubmitTransfer(state.reference)],
    )


def _answer_phone(state: State, value: str | dict[str, str], ctx: TurnContext) -> StepResult:
    """The recipient's new phone; then back where it was asked from (the password question
    instead of the summary when the password method no longer fits the number)."""
    recipient = dict(state.recipient or {})
    if isinstance(value, dict):
        value = value.get("phone", value.get("value", ""))
    text = value.strip() or str(recipient.get("phone_display", ""))
    phone, error, misses = check_phone(text, ctx, state.reference)
    if phone is None:
        result = _reask(state, ctx, error or msg.ANSWER_WITH_CHOICE, text)
        result.near_misses = misses
        return result
    new = replace(state, recipient=cast(Recipient, {**recipient, **phone}))
    if new.password_method in SMS_METHODS and not takes_sms(phone):
        new.password_method = None
    target = state.return_to or Step.PASSWORD_METHOD
    if target == Step.CONFIRM and new.password_method is None:
        target = Step.PASSWORD_METHOD
    new = replace(new, step=target, history=_history_before(state.history, target),
                  return_to=None)
    audit = _answered(state, Step.PHONE, {"phone": phone["phone_display"]})
    return StepResult(ask(new, ctx), new, audit=[audit])


_ANSWER_HANDLERS: dict[str, Callable[[State, str | dict[str, str], TurnContext], StepResult]] = {
    Step.FILES: _answer_files,
    Step.CLASSIFICATION: _answer_classification,
    Step.INFORMATION_CATEGORIES: _answer_information_categories,
    Step.RECIPIENT_PICK: _answer_recipient_pick,
    Step.RECIPIENT: _answer_recipient,
    Step.PURPOSE: _answer_purpose,
    Step.LAWFUL_BASIS: _answer_lawful_basis,
    Step.CONSENT: _answer_consent,
    Step.DELIVERY: _answer_delivery,
    Step.PASSWORD_METHOD: _answer_password_method,
    Step.CALL_TIME: _answer_call_time,
    Step.CONFIRM: _answer_confirm,
    Step.PHONE: _answer_phone,
}
