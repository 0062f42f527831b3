"""The question each step of the conversation asks, as a neutral reply.

:func:`ask` renders the question the state is on (with the error that made it come back,
and a form's errors by field); :func:`describe_files` lists the files received so far.
The options come from :mod:`bot.options`, the confirm screen from :mod:`bot.summary`.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.messages import conversation as msg
from bot.messages.words import plural
from bot.options import (
    ACK_OPTIONS,
    CONFIRM_OPTIONS,
    ONWARD_OPTIONS,
    OPTIONAL_RECIPIENT_FIELDS,
    RECIPIENT_FIELDS,
    call_example,
    classification_options,
    days_text,
    delivery_options,
    files_options,
    information_category_options,
    lawful_options,
    password_options,
    recipient_pick_options,
)
from bot.replies import Ask, Choice, Form, FormField, InputKind, Reply, Text
from bot.sizes import human_size
from bot.state import State, TurnContext, chosen_level
from bot.statuses import Step
from bot.summary import summary_text


def describe_files(state: State, header: str) -> str:
    """``header`` (with the reference, count and total size), then a line per file."""
    lines = [header.format(reference=state.reference, files=plural(len(state.files), "file"),
                           size=human_size(state.total_bytes))]
    lines += [msg.FILE_LINE.format(name=f["name"], size=human_size(int(f["size"])),
                                   kind=f["kind"]) for f in state.files]
    return "\n".join(lines)


_FIELD_HELP = {"phone": msg.RECIPIENT_PHONE_HELP, "department": msg.DEPARTMENT_HELP}


def _recipient_form(state: State, error: str | None, errs: Mapping[str, str]) -> Form:
    draft = state.recipient_draft or {
        k: str(v) for k, v in (state.recipient or {}).items()
        if k in {f[0] for f in RECIPIENT_FIELDS}
    }
    if state.recipient and not state.recipient_draft:
        draft["phone"] = str(state.recipient.get("phone_display", ""))
    fields = tuple(
        FormField(name, label, kind, value=draft.get(name, ""), error=errs.get(name),
                  help=_FIELD_HELP.get(name, ""), required=name not in OPTIONAL_RECIPIENT_FIELDS)
        for name, label, kind in RECIPIENT_FIELDS
    )
    reconfirm = state.recipient_draft and not errs
    intro = msg.RECIPIENT_RECONFIRM if reconfirm else msg.RECIPIENT_INTRO
    return Form(Step.RECIPIENT, msg.RECIPIENT_TITLE, fields,
                error=msg.FORM_HAS_ERRORS if errs else error, intro=intro)


def _consent_form(state: State, error: str | None, errs: Mapping[str, str]) -> Form:
    consent = state.consent or {}
    draft = consent.get("draft") or {}
    use = draft.get("use_limits", consent.get("use_limits", ""))
    onward = draft.get("onward_sharing", "" if "onward_sharing" not in consent
                       else ("yes" if consent["onward_sharing"] else "no"))
    fields = (
        FormField("use_limits", msg.FIELD_USE_LIMITS, "textarea", value=str(use),
                  error=errs.get("use_limits"), help=msg.USE_LIMITS_HELP),
        FormField("onward_sharing", msg.FIELD_ONWARD, "select", value=str(onward),
                  error=errs.get("onward_sharing"), options=ONWARD_OPTIONS),
        FormField("delete_after_use", msg.FIELD_DELETE_ACK, "checkbox",
                  value="yes" if consent.get("delete_after_use") else "",
                  error=errs.get("delete_after_use"), options=ACK_OPTIONS),
    )
    return Form(Step.CONSENT, msg.CONSENT_TITLE, fields, intro=msg.CONSENT_INTRO,
                error=msg.FORM_HAS_ERRORS if errs else error)


def ask(state: State, ctx: TurnContext, error: str | None = None,
        errors: Mapping[str, str] | None = None) -> list[Reply]:
    """The question ``state`` is on; idle (or anything else) gets the idle prompt."""
    s = state.step
    if s == Step.FILES:
        if not state.files:
            return [Choice(Step.FILES, msg.FILES_EMPTY, files_options(state), error=error)]
        return [Choice(Step.FILES, describe_files(state, msg.FILES_REVIEW), files_options(state),
                       error=error)]
    if s == Step.CLASSIFICATION:
        return [Choice(Step.CLASSIFICATION, msg.ASK_CLASSIFICATION, classification_options(ctx),
                       error=error, default=state.classification)]
    if s == Step.INFORMATION_CATEGORIES:
        return [Choice(Step.INFORMATION_CATEGORIES, msg.ASK_INFORMATION_CATEGORIES,
                       information_category_options(ctx), error=error, multiple=True,
                       chosen=state.information_categories or ())]
    if s == Step.RECIPIENT_PICK:
        return [Choice(Step.RECIPIENT_PICK, msg.ASK_RECIPIENT_PICK, recipient_pick_options(ctx),
                       error=error)]
    if s == Step.RECIPIENT:
        return [_recipient_form(state, error, errors or {})]
    if s == Step.PURPOSE:
        prompt = msg.ASK_PURPOSE.format(min=ctx.policy.purpose_min_length)
        if state.purpose:
            prompt += "\n" + msg.EARLIER_ANSWER.format(answer=state.purpose)
        return [Ask(Step.PURPOSE, prompt, error=error, multiline=True,
                    value=state.purpose or "")]
    if s == Step.LAWFUL_BASIS:
        return [Choice(Step.LAWFUL_BASIS, msg.ASK_LAWFUL_BASIS, lawful_options(ctx), error=error,
                       default=state.lawful_basis)]
    if s == Step.CONSENT:
        return [_consent_form(state, error, errors or {})]
    if s == Step.DELIVERY:
        options, note = delivery_options(state, ctx)
        level = chosen_level(state, ctx)
        offered = {o.value for o in options}
        default = state.delivery if state.delivery in offered else (
            level.default_delivery if level.default_delivery in offered else None)
        prompt = f"{msg.ASK_DELIVERY}\n{note}" if note else msg.ASK_DELIVERY
        return [Choice(Step.DELIVERY, prompt, options, error=error, default=default)]
    if s == Step.PASSWORD_METHOD:
        methods, why = password_options(state, ctx)
        prompt = f"{msg.ASK_PASSWORD_METHOD}\n{why}" if why else msg.ASK_PASSWORD_METHOD
        kept = state.password_method if any(
            o.value == state.password_method for o in methods) else None
        return [Choice(Step.PASSWORD_METHOD, prompt, methods, error=error, default=kept)]
    if s == Step.PHONE:
        recipient = state.recipient or {}
        phone = str(recipient.get("phone_display", ""))
        return [Ask(Step.PHONE, msg.ASK_PHONE.format(name=recipient.get("name", ""),
                                                     phone=phone),
                    error=error, value=phone, placeholder=phone)]
    if s == Step.CALL_TIME:
        window = ctx.policy.call_window
        return [Ask(Step.CALL_TIME, msg.ASK_CALL_TIME.format(
            tz=ctx.policy.timezone.key, example=call_example(ctx), days=days_text(window.days),
            start=f"{window.start:%H:%M}", end=f"{window.end:%H:%M}"), error=error,
            placeholder=call_example(ctx), input_kind=InputKind.DATE_TIME)]
    if s == Step.CONFIRM:
        return [Text(summary_text(state, ctx), question=Step.CONFIRM),
                Choice(Step.CONFIRM, msg.ASK_CONFIRM, CONFIRM_OPTIONS, error=error)]
    return [Text(msg.IDLE)]
