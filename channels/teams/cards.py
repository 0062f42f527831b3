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
    Option,
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
TRY = "sh_try"      # which asking of the question (a card asked again after a refusal)
TITLE = "sh_title"
LABELS = "sh_labels"
CHOICES = "sh_choices"  # a form's fields with options: {field: {value: label}}
REOFFER = "teams:reoffer"

ADAPTIVE = "application/vnd.microsoft.card.adaptive"
FILE_CONSENT = "application/vnd.microsoft.teams.card.file.consent"
FILE_INFO = "application/vnd.microsoft.teams.card.file.info"
FILE_DOWNLOAD = "application/vnd.microsoft.teams.file.download.info"
CARD_VERSION = "1.4"
MAX_ACTIONS = 3      # side by side, each readable at Teams' card width (460 px)...
ROW_CHARACTERS = 44  # ...when their titles, each with
BUTTON_CHROME = 4    # its padding counted as characters, add up to this
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


_CODE = re.compile(r"`([^`\n]+)`")
# Characters Markdown would read as formatting, escaped in text that is not ours to format.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>~|])")
_MD_LINE_START = re.compile(r"^(\s*)([#>+-]|\d+[.)])(?=\s|$)")
_BULLET = "• "


_URL = re.compile(r"https?://[^\s<>\"“”]+")


def _md_escaped(text: str) -> str:
    """``text`` with Markdown's formatting characters escaped, except in web addresses
    (Teams makes them links as they are)."""
    out, last = [], 0
    for url in _URL.finditer(text):
        out += [_MD_SPECIAL.sub(r"\\\1", text[last:url.start()]), url.group(0)]
        last = url.end()
    out.append(_MD_SPECIAL.sub(r"\\\1", text[last:]))
    return _MD_LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), "".join(out))


def quoted(text: str) -> str:
    """A `command` in backticks as “command”: Teams documents no code formatting for
    TextBlocks or messages (it shows the backticks as typed)."""
    return _CODE.sub(r"“\1”", text)


def markdown(text: str) -> str:
    """One line of our text as Teams message Markdown: commands quoted, and everything
    escaped, so that a file name or a typed value cannot format the message."""
    return _md_escaped(quoted(text))


def _message_markdown(text: str) -> str:
    """A message's lines for Teams, where Markdown drops a single newline: each line its
    own paragraph, lines starting "• " a list."""
    parts: list[str] = []
    for line in text.split("\n"):
        if not line.strip():
            continue
        if line.startswith(_BULLET):
            item = "- " + markdown(line[len(_BULLET):])
            if parts and parts[-1].startswith("- "):
                parts[-1] += "\n" + item
                continue
            parts.append(item)
        else:
            parts.append(markdown(line))
    return "\n\n".join(parts)


def text_message(text: str) -> dict[str, Any]:
    return {"type": "message", "textFormat": "markdown", "text": _message_markdown(text)}


def card_message(card: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "message", "attachments": [{"contentType": ADAPTIVE, "content": card}]}


def _fit_in_a_row(actions: Sequence[dict[str, Any]]) -> bool:
    """Whether the buttons fit side by side at Teams' card width, titles whole: at most
    MAX_ACTIONS, and their titles short enough together (measured with the official renderer
    and Teams' host config by tests/support/teams_render.py)."""
    return len(actions) <= MAX_ACTIONS and sum(
        len(a["title"]) + BUTTON_CHROME for a in actions) <= ROW_CHARACTERS


def _card(body: list[dict[str, Any]], actions: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """A card; its buttons side by side when they fit, else one under the other (each in
    a row of its own, the whole width of the card)."""
    card: dict[str, Any] = {
        "type": "AdaptiveCard", "version": CARD_VERSION,
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "body": body}
    if actions and _fit_in_a_row(actions):
        card["actions"] = list(actions)
    elif actions:
        card["body"] = [*body, *({"type": "ActionSet", "actions": [a],
                                  "spacing": "Small" if i else "Medium"}
                                 for i, a in enumerate(actions))]
    return card


def _blocks(text: str, **style: Any) -> list[dict[str, Any]]:
    """One TextBlock per line (renderers disagree on newlines inside a TextBlock), each
    escaped as :func:`markdown`: a TextBlock reads Markdown, and the text carries what
    people typed or are called (a file name, a purpose, a display name), which must not
    become a link or bold. Our own emphasis is the block's style (``weight`` ...)."""
    blocks: list[dict[str, Any]] = []
    gap = False
    for line in text.split("\n"):
        if not line.strip():
            gap = True
            continue
        block = {"type": "TextBlock", "text": markdown(line), "wrap": True, **style}
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


def _navigation(question: str, title: str,
                options: Sequence[Option] = ()) -> list[dict[str, Any]]:
    """Back and cancel, without requiring the card's inputs to be filled: the question's own
    (its options with those roles) or ours."""
    if not options:
        options = (Option("back", msg.BUTTON_BACK, role=OptionRole.BACK),
                   Option("cancel", msg.BUTTON_CANCEL, role=OptionRole.CANCEL))
    return [_submit(o.label, {Q: question, V: o.value, TITLE: title,
                              LABELS: {o.value: o.label}}, inputs=False) for o in options]


def _styled(action: dict[str, Any], role: OptionRole) -> dict[str, Any]:
    style = _ACTION_STYLES.get(role)
    return {**action, "style": style} if style else action


_ACTION_STYLES = {OptionRole.PRIMARY: "positive", OptionRole.DANGER: "destructive"}
_NAVIGATION = (OptionRole.BACK, OptionRole.CANCEL)


# --- questions ----------------------------------------------------------------------------
#
# Teams shows a card's buttons side by side, each cut to its share of the card's width
# (about 460 px): so a card has at most MAX_ACTIONS short buttons, the one that answers and
# Back and Cancel, and the options of a question are a choice set, never a row of buttons.
# A decision (an option that goes ahead or refuses: Confirm and send, Yes, cancel) has its
# options as buttons, side by side when they fit, else one per row.


def _error_under(text: str | None) -> list[dict[str, Any]]:
    """A refusal shown right under the input it is about."""
    return _blocks(f"⚠ {text}", color="Attention", spacing="None") if text else []


def choice_card(choice: Choice, preface: Sequence[str] = ()) -> dict[str, Any]:
    q = choice.question
    body = [b for text in preface for b in _blocks(text)]
    body += _blocks(choice.prompt, weight="Bolder")
    title = _title(choice.prompt)
    base = {Q: q, TITLE: title, LABELS: {o.value: o.label for o in choice.options}}
    picks = [o for o in choice.options if o.role not in _NAVIGATION]
    navigation = _navigation(q, title, [o for o in choice.options if o.role in _NAVIGATION])
    for option in picks:
        if option.description:
            body += _blocks(f"{option.label}: {option.description}", isSubtle=True,
                            size="Small")
    decision = any(o.role in (OptionRole.PRIMARY, OptionRole.DANGER) for o in picks)
    if (len(picks) == 1 or decision) and not choice.multiple:
        # A decision (confirm, cancel for good): its options are its buttons, and it has
        # no Back or Cancel but its own.
        body += _error_under(choice.error)
        own = [o for o in choice.options if o.role in _NAVIGATION]
        return _card(body, [*(_styled(_submit(o.label, {**base, V: o.value}, inputs=False),
                                      o.role) for o in picks),
                            *(_navigation(q, title, own) if own or not decision else [])])
    chosen = ",".join(choice.chosen) if choice.multiple else (choice.default or "")
    body.append({
        "type": "Input.ChoiceSet", "id": V, "style": "expanded",
        "isMultiSelect": choice.multiple, "label": msg.CHOICE_LABEL_SEVERAL
        if choice.multiple else msg.CHOICE_LABEL_ONE, "isRequired": True,
        "errorMessage": msg.CHOICE_REQUIRED, "value": chosen, "wrap": True,
        "choices": [{"title": o.label, "value": o.value} for o in picks]})
    body += _error_under(choice.error)
    return _card(body, [_styled(_submit(msg.BUTTON_CONTINUE, base), OptionRole.PRIMARY),
                        *navigation])


def _split_example(example: str) -> tuple[str, str]:
    match = re.match(r"^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2})", example.strip())
    return (match.group(1), match.group(2)) if match else ("", "")


def ask_card(ask: Ask, preface: Sequence[str] = ()) -> dict[str, Any]:
    q = ask.question
    body = [b for text in preface for b in _blocks(text)]
    body += _blocks(ask.prompt, weight="Bolder")
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
        field: dict[str, Any] = {"type": "Input.Text", "id": TEXT, "label": msg.ANSWER_LABEL,
                                 "isRequired": True, "errorMessage": msg.FIELD_REQUIRED,
                                 "maxLength": TEXT_MAX, "isMultiline": ask.multiline,
                                 "value": ask.value}
        if ask.placeholder:
            field["placeholder"] = ask.placeholder
        body.append(field)
    body += _error_under(ask.error)
    data = {Q: q, TITLE: _title(ask.prompt)}
    return _card(body, [_styled(_submit(msg.BUTTON_SEND, data), OptionRole.PRIMARY),
                        *_navigation(q, data[TITLE])])


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
    blocks += _error_under(f.error)
    return blocks


def form_card(form: Form, preface: Sequence[str] = ()) -> dict[str, Any]:
    body = [b for text in preface for b in _blocks(text)]
    body += _blocks(form.title, weight="Bolder", size="Medium")
    if form.intro:
        body += _blocks(form.intro)
    body += _error(form.error)
    for f in form.fields:
        body += _field_inputs(f)
    data = {Q: form.question, TITLE: form.title, LABELS: {f.name: f.label for f in form.fields},
            CHOICES: {f.name: {o.value: o.label for o in f.options}
                      for f in form.fields if f.options}}
    return _card(body, [_styled(_submit(msg.BUTTON_CONTINUE, data), OptionRole.PRIMARY),
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
    return _card(body, [_styled(_submit(o.label, {**base, V: o.value}), o.role)
                        for o in request.options])


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


def card_of(activity: Mapping[str, Any]) -> dict[str, Any] | None:
    """The Adaptive Card a rendered message carries, if any."""
    for attachment in activity.get("attachments") or []:
        if attachment.get("contentType") == ADAPTIVE:
            content: dict[str, Any] = attachment["content"]
            return content
    return None


def _actions(card: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [*(a for e in card.get("body", []) if e.get("type") == "ActionSet"
              for a in e.get("actions", [])), *card.get("actions", [])]


def asking(activities: Sequence[Mapping[str, Any]], question: str) -> dict[str, Any] | None:
    """The last card among rendered ``activities`` that asks ``question``."""
    for activity in reversed(activities):
        card = card_of(activity)
        if card is not None and any(a.get("data", {}).get(Q) == question
                                    for a in _actions(card)):
            return card
    return None


def attempt(card: Mapping[str, Any], token: str) -> dict[str, Any]:
    """``card`` asked again in place of a refused one: its buttons carry ``token`` (the
    refused submission's id), so sending the same values again is a new answer, not a
    double click on the card that was refused."""
    def marked(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: marked(v) for k, v in node.items()}
            if str(node.get("type", "")).startswith("Action.") and isinstance(
                    node.get("data"), dict):
                out["data"] = {**node["data"], TRY: token}
            return out
        if isinstance(node, list):
            return [marked(v) for v in node]
        return node
    result: dict[str, Any] = marked(dict(card))
    return result


def asks_approval(replies: Iterable[Outgoing]) -> bool:
    return any(isinstance(r, ApprovalRequest) for r in replies)
