"""Neutral replies rendered as Teams messages: Adaptive Cards for questions, plain messages
for text, and the Teams file cards for the archive.

Everything here is a pure function from replies to JSON-ready dicts (the Bot Framework
activity shape), so rendering can be tested without a server and a rendered message can be
stored and sent later. Every card button carries ``sh_q``, the question it answers, so an
answer finds its question however late it arrives; ``sh_title`` and ``sh_labels`` let the
submitted card be replaced by a read-only record of the answer without another lookup.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.messages import teams as msg
from bot.replies import (
    ApprovalRequest,
    Ask,
    Choice,
    Fact,
    FileReply,
    Form,
    FormField,
    InputKind,
    LinkReply,
    MistakeButton,
    OptionRole,
    Reply,
    Text,
)

# Card data keys (what a submitted card sends back).
Q = "sh_q"          # the question id answered
V = "sh_v"          # the option picked (buttons, choice sets)
TEXT = "sh_text"    # a free-text answer
DATE = "sh_date"    # a date input
TIME = "sh_time"    # a time input
REASON = "sh_reason"
TITLE = "sh_title"
LABELS = "sh_labels"
REOFFER = "teams:reoffer"

ADAPTIVE = "application/vnd.microsoft.card.adaptive"
FILE_CONSENT = "application/vnd.microsoft.teams.card.file.consent"
FILE_INFO = "application/vnd.microsoft.teams.card.file.info"
FILE_DOWNLOAD = "application/vnd.microsoft.teams.file.download.info"
CARD_VERSION = "1.4"
MAX_ACTIONS = 6      # Teams shows at most six card buttons
TEXT_MAX = 2000


@dataclass(frozen=True)
class ConsentOffer:
    """A :class:`FileReply` once the channel has recorded the offer it makes."""

    offer_id: str
    reference: str
    filename: str
    size: int
    caption: str


Outgoing = Reply | ConsentOffer


# --- building blocks -----------------------------------------------------------------------


def _xml(text: str) -> str:
    """Teams message text as its XML (HTML subset) form: escaped, `code` kept, line
    breaks kept (Markdown in Teams drops single newlines)."""
    escaped = html.escape(text, quote=False)
    escaped = re.sub(r"`([^`\n]+)`", r"<code>\1</code>", escaped)
    return escaped.replace("\n", "<br>")


def text_message(text: str) -> dict[str, Any]:
    return {"type": "message", "textFormat": "xml", "text": _xml(text)}


def card_message(card: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "message", "attachments": [{"contentType": ADAPTIVE, "content": card}]}


def _card(body: list[dict[str, Any]], actions: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    card: dict[str, Any] = {
        "type": "AdaptiveCard", "version": CARD_VERSION,
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "body": body}
    if actions:
        card["actions"] = list(actions)
    return card


def _blocks(text: str, **style: Any) -> list[dict[str, Any]]:
    """One TextBlock per line: renderers disagree on newlines inside a TextBlock."""
    blocks: list[dict[str, Any]] = []
    gap = False
    for line in text.split("\n"):
        if not line.strip():
            gap = True
            continue
        block = {"type": "TextBlock", "text": line, "wrap": True, **style}
        if blocks:
            block["spacing"] = "Medium" if gap else "None"
        blocks.append(block)
        gap = False
    return blocks


def _error(text: str | None) -> list[dict[str, Any]]:
    return _blocks(f"⚠ {text}", color="Attention", weight="Bolder") if text else []


def _submit(title: str, data: Mapping[str, Any], *, inputs: bool = True) -> dict[str, Any]:
    action: dict[str, Any] = {"type": "Action.Submit", "title": title, "data": dict(data)}
    if not inputs:
        action["associatedInputs"] = "none"
    return action


def _title(prompt: str) -> str:
    first = prompt.strip().split("\n", 1)[0]
    return first if len(first) <= 160 else first[:157] + "…"


def _navigation(question: str, title: str) -> list[dict[str, Any]]:
    """Back and cancel, without requiring the card's inputs to be filled."""
    return [_submit(msg.BUTTON_BACK, {Q: question, V: "back", TITLE: title}, inputs=False),
            _submit(msg.BUTTON_CANCEL, {Q: question, V: "cancel", TITLE: title},
                    inputs=False)]


# --- questions ----------------------------------------------------------------------------


def choice_card(choice: Choice, preface: Sequence[str] = ()) -> dict[str, Any]:
    q = choice.question
    body = [b for text in preface for b in _blocks(text)]
    body += _error(choice.error) + _blocks(choice.prompt, weight="Bolder")
    title = _title(choice.prompt)
    base = {Q: q, TITLE: title, LABELS: {o.value: o.label for o in choice.options}}
    # Back and cancel are added unless the question offers them itself.
    with_navigation = not any(o.role in (OptionRole.BACK, OptionRole.CANCEL)
                              for o in choice.options)
    extra = 2 if with_navigation else 0
    for option in choice.options:
        if option.description:
            body += _blocks(f"{option.label}: {option.description}", isSubtle=True,
                            size="Small")
    if choice.multiple:  # several may apply: Teams sends the ticked values comma-separated
        body.append({
            "type": "Input.ChoiceSet", "id": V, "style": "expanded", "isMultiSelect": True,
            "isRequired": True, "errorMessage": msg.FIELD_REQUIRED,
            "value": ",".join(choice.chosen),
            "choices": [{"title": o.label, "value": o.value} for o in choice.options]})
        actions = [_submit(msg.BUTTON_CONTINUE, base)]
    elif len(choice.options) + extra <= MAX_ACTIONS:
        actions = [_submit(o.label, {**base, V: o.value}, inputs=False)
                   for o in choice.options]
    else:
        body.append({
            "type": "Input.ChoiceSet", "id": V, "style": "expanded", "isRequired": True,
            "errorMessage": msg.FIELD_REQUIRED, "value": choice.default or "",
            "choices": [{"title": o.label, "value": o.value} for o in choice.options]})
        actions = [_submit(msg.BUTTON_CONTINUE, base)]
    if with_navigation:
        actions += _navigation(q, title)
    return _card(body, actions)


def _split_example(example: str) -> tuple[str, str]:
    match = re.match(r"^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2})", example.strip())
    return (match.group(1), match.group(2)) if match else ("", "")


def ask_card(ask: Ask, preface: Sequence[str] = ()) -> dict[str, Any]:
    q = ask.question
    body = [b for text in preface for b in _blocks(text)]
    body += _error(ask.error) + _blocks(ask.prompt, weight="Bolder")
    if ask.input_kind is InputKind.DATE_TIME:
        # Prefilled only with an earlier answer: the time must be the one agreed, not ours.
        day, at = _split_example(ask.value)
        example_day, example_at = _split_example(ask.placeholder)
        body += [
            {"type": "Input.Date", "id": DATE, "label": msg.CALL_DATE, "value": day,
             "placeholder": example_day, "isRequired": True,
             "errorMessage": msg.CALL_DATE_REQUIRED},
            {"type": "Input.Time", "id": TIME, "label": msg.CALL_TIME, "value": at,
             "placeholder": example_at, "isRequired": True,
             "errorMessage": msg.CALL_TIME_REQUIRED},
        ]
    else:
        field: dict[str, Any] = {"type": "Input.Text", "id": TEXT, "isRequired": True,
                                 "errorMessage": msg.FIELD_REQUIRED, "maxLength": TEXT_MAX,
                                 "isMultiline": ask.multiline, "value": ask.value}
        if ask.placeholder:
            field["placeholder"] = ask.placeholder
        body.append(field)
    data = {Q: q, TITLE: _title(ask.prompt)}
    return _card(body, [_submit(msg.BUTTON_SEND, data), *_navigation(q, data[TITLE])])


def _field_inputs(f: FormField) -> list[dict[str, Any]]:
    base: dict[str, Any] = {"id": f.name, "label": f.label, "isRequired": f.required,
                            "errorMessage": msg.FIELD_REQUIRED}
    if f.kind == "select":
        element = {**base, "type": "Input.ChoiceSet", "style": "compact", "value": f.value,
                   "choices": [{"title": o.label, "value": o.value} for o in f.options]}
    elif f.kind == "checkbox":
        on = f.options[0] if f.options else None
        value_on = on.value if on else "yes"
        element = {**base, "type": "Input.Toggle", "title": on.label if on else f.label,
                   "valueOn": value_on, "valueOff": "",
                   "value": value_on if f.value else ""}
    else:
        element = {**base, "type": "Input.Text", "value": f.value, "maxLength": TEXT_MAX,
                   "isMultiline": f.kind == "textarea"}
        if f.kind in ("email", "tel"):
            element["style"] = f.kind
    blocks = [element]
    if f.help:
        blocks += _blocks(f.help, isSubtle=True, size="Small", spacing="None")
    if f.error:
        blocks += _blocks(f.error, color="Attention", spacing="None")
    return blocks


def form_card(form: Form, preface: Sequence[str] = ()) -> dict[str, Any]:
    body = [b for text in preface for b in _blocks(text)]
    body += _blocks(form.title, weight="Bolder", size="Medium")
    if form.intro:
        body += _blocks(form.intro)
    body += _error(form.error)
    for f in form.fields:
        body += _field_inputs(f)
    data = {Q: form.question, TITLE: form.title, LABELS: {f.name: f.label for f in form.fields}}
    return _card(body, [_submit(msg.BUTTON_CONTINUE, data),
                        *_navigation(form.question, form.title)])


def _facts(facts: Sequence[Fact], **run_style: Any) -> list[dict[str, Any]]:
    """Each fact a RichTextBlock of two TextRuns, the label bold: a TextRun is shown as
    typed (Markdown is not read in it, unlike a TextBlock or a FactSet's values), so no
    ``**bold**``, link, list or line break in a value changes the card."""
    return [{"type": "RichTextBlock", "spacing": "None", "inlines": [
        {"type": "TextRun", "text": f"{f.label}: ", "weight": "Bolder", **run_style},
        {"type": "TextRun", "text": " ".join(f.value.split()), **run_style}]} for f in facts]


def approval_card(request: ApprovalRequest) -> dict[str, Any]:
    """An approval request: who asks, the facts, the rest of the details, a reason box,
    Approve and Reject."""
    body = _blocks(request.intro)
    body += _facts(request.facts())
    details = _facts(request.details(), isSubtle=True)
    if details:
        details[0] = {**details[0], "spacing": "Medium"}
    body += details
    body += _blocks(request.prompt, weight="Bolder", spacing="Medium")
    body.append({"type": "Input.Text", "id": REASON, "label": msg.APPROVAL_REASON,
                 "isMultiline": True, "maxLength": 1000})
    base = {Q: request.question, TITLE: _title(request.prompt),
            LABELS: {o.value: o.label for o in request.options}}
    return _card(body, [_submit(o.label, {**base, V: o.value}) for o in request.options])


# --- records that replace a submitted card ---------------------------------------------------


def answered_card(title: str, lines: Sequence[str]) -> dict[str, Any]:
    body = _blocks(title, isSubtle=True)
    for i, line in enumerate(lines):
        body += _blocks(msg.ANSWERED.format(answer=line) if i == 0 else line,
                        weight="Bolder" if i == 0 else "Default")
    return _card(body)


def decided_card(text: str, reason: str = "") -> dict[str, Any]:
    body = _blocks(text, weight="Bolder")
    if reason:
        body += _blocks(msg.APPROVAL_DECIDED_REASON.format(reason=reason))
    return _card(body)


# --- the archive -------------------------------------------------------------------------


def consent_attachment(offer: ConsentOffer) -> dict[str, Any]:
    context = {"offer": offer.offer_id}
    return {"contentType": FILE_CONSENT, "name": offer.filename, "content": {
        "description": msg.CONSENT_DESCRIPTION.format(reference=offer.reference),
        "sizeInBytes": offer.size, "acceptContext": context, "declineContext": context}}


def file_info_attachment(upload_info: Mapping[str, Any]) -> dict[str, Any]:
    return {"contentType": FILE_INFO, "contentUrl": str(upload_info.get("contentUrl", "")),
            "name": str(upload_info.get("name", "")), "content": {
                "uniqueId": str(upload_info.get("uniqueId", "")),
                "fileType": str(upload_info.get("fileType", ""))}}


def mistake_card(button: MistakeButton) -> dict[str, Any]:
    """The receipt's "Report a mistake" button: a submit answering ``command:mistake``
    with the reference, which the core reads as ``mistake REF``."""
    title = _title(button.hint)
    return _card(_blocks(button.hint), [_submit(button.label, {
        Q: button.question, V: button.reference, TITLE: title,
        LABELS: {button.reference: button.label}}, inputs=False)])


def offer_again_card(text: str, offer_id: str) -> dict[str, Any]:
    return _card(_blocks(text), [_submit(msg.OFFER_AGAIN, {Q: REOFFER, V: offer_id,
                                                            TITLE: msg.OFFER_AGAIN})])


# --- a whole batch ---------------------------------------------------------------------------


def _asks(reply: Outgoing) -> str | None:
    return reply.question if isinstance(reply, Choice | Ask | Form | ApprovalRequest) else None


def render(replies: Sequence[Outgoing]) -> list[dict[str, Any]]:
    """Turn a turn's replies into Teams message activities, in order. A text that belongs
    to the question right after it (the summary before "Is everything right?") goes into
    that question's card."""
    out: list[dict[str, Any]] = []
    preface: list[str] = []
    for i, reply in enumerate(replies):
        following = replies[i + 1] if i + 1 < len(replies) else None
        if isinstance(reply, Text):
            if reply.question and following is not None and _asks(following) == reply.question:
                preface.append(reply.text)
            else:
                out.append(text_message(reply.text))
        elif isinstance(reply, Choice):
            out.append(card_message(choice_card(reply, preface)))
            preface = []
        elif isinstance(reply, ApprovalRequest):
            out += [text_message(text) for text in preface]
            out.append(card_message(approval_card(reply)))
            preface = []
        elif isinstance(reply, Ask):
            out.append(card_message(ask_card(reply, preface)))
            preface = []
        elif isinstance(reply, Form):
            out.append(card_message(form_card(reply, preface)))
            preface = []
        elif isinstance(reply, ConsentOffer):
            out.append(text_message(reply.caption))
            out.append({"type": "message", "attachments": [consent_attachment(reply)]})
        elif isinstance(reply, LinkReply):
            out.append({"type": "message", "textFormat": "xml", "text":
                        f'{html.escape(reply.label, quote=False)}: <a href="'
                        f'{html.escape(reply.url)}">{html.escape(reply.url, quote=False)}</a>'})
        elif isinstance(reply, MistakeButton):
            out += [text_message(text) for text in preface]
            out.append(card_message(mistake_card(reply)))
            preface = []
        elif isinstance(reply, FileReply):
            raise TypeError("a FileReply must become a ConsentOffer before rendering")
        else:
            raise TypeError(type(reply))
    out += [text_message(text) for text in preface]
    return out


def asks_approval(replies: Iterable[Outgoing]) -> bool:
    return any(isinstance(r, ApprovalRequest) for r in replies)
