"""Neutral replies rendered as Slack Block Kit: the messages, their question controls and
the modals, with no I/O (posting them is :mod:`channels.slack.runtime`'s, reading Slack's
input back :mod:`channels.slack.inputs`').

A reply that asks carries its question id (:mod:`channels.slack.controls`) into every
button value, select block and modal. Everything the user typed or we print is escaped
(``&``, ``<``, ``>``), so a file name or a purpose such as ``<!channel>`` cannot mention
anyone or forge a link; the facts of an approval request go further and are
``plain_text``, which Slack shows as typed.

Slack limits are applied here (3000 characters per section, 75 per button, 24 per modal
title, 150 per option value, 50 blocks per message, 2000 for the notification text)
so the Web API never refuses a reply for its size.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.answers import encode as encode_answer
from bot.messages import slack as msg
from bot.messages.words import labelled
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
from channels.slack.controls import (
    ANSWER,
    CHECK,
    FIELD_BLOCK,
    FORM_VIEW,
    MAX_CHECKBOXES,
    OPEN_FORM,
    PICK_TIME,
    QUESTION_BLOCK,
    REASON_FIELD,
    REJECT_VIEW,
    SELECT,
    TIME_FORMAT,
    USE_CHECKED,
    USE_TIME,
    question_block,
)

Block = dict[str, Any]

SECTION_MAX = 3000
BUTTON_MAX = 75
TITLE_MAX = 24
OPTION_VALUE_MAX = 150
MAX_BUTTONS = 5
MAX_BLOCKS = 50
FALLBACK_MAX = 2000  # the notification text beside blocks: a summary, not the message

_MENTION = re.compile(r"slack:([UW][A-Z0-9]{2,})")


# --- text ----------------------------------------------------------------------------------


def escape(text: str) -> str:
    """Text for a mrkdwn field: Slack's three control characters escaped, and our
    channel-qualified Slack user ids turned into mentions Slack shows as names."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MENTION.sub(r"<@\1>", escaped)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plain(text: str, limit: int = BUTTON_MAX) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit) or " ", "emoji": True}


def _chunks(text: str, limit: int = SECTION_MAX) -> list[str]:
    """Split at line ends so each piece fits one section."""
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:
            if current:
                pieces.append(current)
                current = ""
            pieces.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            pieces.append(current)
            current = line
        else:
            current = candidate
    if current or not pieces:
        pieces.append(current)
    return pieces


def sections(text: str) -> list[Block]:
    return [{"type": "section", "text": {"type": "mrkdwn", "text": piece or " "}}
            for piece in _chunks(escape(text))]


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn",
                                             "text": clip(escape(text), SECTION_MAX)}]}


def _with_error(prompt: str, error: str | None) -> str:
    return f"⚠ {error}\n{prompt}" if error else prompt


# --- replies -> messages -------------------------------------------------------------------


@dataclass(frozen=True)
class Post:
    """One chat message: blocks, the plain fallback Slack shows in notifications, and the
    question it asks (if any)."""

    blocks: list[Block]
    text: str
    question: str | None = None


@dataclass(frozen=True)
class Upload:
    """An archive to hand back: read from the object store by its transfer's reference."""

    reference: str
    filename: str
    caption: str


Outgoing = Post | Upload


def _button(text: str, action_id: str, value: str, style: str | None = None) -> Block:
    button: Block = {"type": "button", "text": _plain(text), "action_id": action_id,
                     "value": value}
    if style:
        button["style"] = style
    return button


def _confirmed(button: Block, option: Option, question: str) -> Block:
    """A Cancel button asks Slack to confirm before the press is sent (files are deleted),
    and says so in its value, so the press is not asked about again."""
    if option.role is OptionRole.CANCEL:
        button["value"] = encode_answer(question, option.value, confirmed=True)
        button["confirm"] = {"title": _plain(msg.CANCEL_CONFIRM_TITLE),
                             "text": _plain(msg.CANCEL_CONFIRM_TEXT),
                             "confirm": _plain(msg.CANCEL_CONFIRM_YES),
                             "deny": _plain(msg.CANCEL_CONFIRM_NO), "style": "danger"}
    return button


def _style(option: Option, default: str | None) -> str | None:
    if option.role in (OptionRole.DANGER, OptionRole.CANCEL):
        return "danger"
    if option.role is OptionRole.PRIMARY or option.value == default:
        return "primary"
    return None


def _option(option: Option, index: int) -> Block:
    value = option.value if len(option.value) <= OPTION_VALUE_MAX else str(index)
    item: Block = {"text": _plain(option.label), "value": value}
    if option.description:
        item["description"] = _plain(option.description)
    return item


def several_blocks(choice: Choice) -> list[Block]:
    """A question where several options may apply: checkboxes (a multi-select past Slack's
    ten) and a button that sends what is ticked (read back by
    :func:`channels.slack.inputs.ticked`)."""
    blocks = sections(_with_error(choice.prompt, choice.error))
    options = [_option(o, i) for i, o in enumerate(choice.options, start=1)]
    chosen = [opt for o, opt in zip(choice.options, options, strict=True)
              if o.value in choice.chosen]
    element: Block
    if len(options) <= MAX_CHECKBOXES:
        element = {"type": "checkboxes", "action_id": CHECK, "options": options}
    else:
        element = {"type": "multi_static_select", "action_id": CHECK,
                   "placeholder": _plain(msg.SELECT_PLACEHOLDER), "options": options[:100]}
    if chosen:
        element["initial_options"] = chosen
    blocks.append({"type": "actions", "block_id": question_block(choice.question),
                   "elements": [element, _button(msg.USE_CHECKED, USE_CHECKED,
                                                 encode_answer(choice.question, ""),
                                                 "primary")]})
    blocks.append(context(msg.TICK_OR_TYPE))
    return blocks


def choice_blocks(choice: Choice) -> list[Block]:
    if choice.multiple:
        return several_blocks(choice)
    prompt = _with_error(choice.prompt, choice.error)
    use_buttons = (len(choice.options) <= MAX_BUTTONS
                   and all(len(o.label) <= BUTTON_MAX for o in choice.options))
    if use_buttons and any(o.description for o in choice.options):
        prompt += "\n" + "\n".join(f"• {o.label}: {o.description}" if o.description
                                   else f"• {o.label}" for o in choice.options)
    blocks = sections(prompt)
    if use_buttons:
        blocks.append({
            "type": "actions", "block_id": question_block(choice.question),
            "elements": [_confirmed(_button(o.label, f"{ANSWER}.{i}",
                                            encode_answer(choice.question, o.value),
                                            _style(o, choice.default)), o,
                                    choice.question)
                         for i, o in enumerate(choice.options, start=1)]})
        return blocks
    options = [_option(o, i) for i, o in enumerate(choice.options, start=1)]
    select: Block = {"type": "static_select", "action_id": SELECT,
                     "placeholder": _plain(msg.SELECT_PLACEHOLDER), "options": options[:100]}
    initial = next((opt for o, opt in zip(choice.options, options, strict=True)
                    if o.value == choice.default), None)
    if initial is not None:
        select["initial_option"] = initial
    blocks.append({"type": "actions", "block_id": question_block(choice.question),
                   "elements": [select]})
    return blocks


def ask_blocks(ask: Ask, timezone: ZoneInfo) -> list[Block]:
    blocks = sections(_with_error(ask.prompt, ask.error))
    if ask.input_kind is not InputKind.DATE_TIME:
        blocks.append(context(msg.TYPE_ANSWER_HINT))
        return blocks
    picker: Block = {"type": "datetimepicker", "action_id": PICK_TIME}
    # Set to a refused time as it was given (to correct it), else to the example.
    for shown in (ask.value, ask.placeholder):
        try:
            start = datetime.strptime(shown, TIME_FORMAT).replace(tzinfo=timezone)
        except ValueError:
            continue
        picker["initial_date_time"] = int(start.timestamp())
        break
    blocks.append({"type": "actions", "block_id": question_block(ask.question),
                   "elements": [picker, _button(msg.USE_THIS_TIME, USE_TIME,
                                                encode_answer(ask.question, ""), "primary")]})
    blocks.append(context(msg.PICK_OR_TYPE_TIME.format(example=ask.placeholder)))
    return blocks


def _field_line(f: FormField) -> str | None:
    if not f.value and not f.error:
        return None
    shown = f.value
    if f.options:
        shown = next((o.label for o in f.options if o.value == f.value), f.value)
    line = f"• {labelled(f.label)} {shown}"
    return f"{line}  ⚠ {f.error}" if f.error else line


def form_blocks(form: Form) -> list[Block]:
    """A Form in the chat is a summary plus a button that opens it as a modal."""
    lines = [f"*{form.title}*" if not form.error else f"⚠ {form.error}\n{form.title}"]
    if form.intro:
        lines.append(form.intro)
    lines += [line for f in form.fields if (line := _field_line(f))]
    blocks = sections("\n".join(lines))
    blocks.append({"type": "actions", "block_id": question_block(form.question),
                   "elements": [_button(msg.OPEN_FORM, OPEN_FORM,
                                        encode_answer(form.question, ""), "primary")]})
    return blocks


def _fact_section(facts: Sequence[Fact]) -> list[Block]:
    """Facts as ``plain_text``: Slack shows it as typed, so no ``*bold*``, ``~strike~``,
    link or mention in a value does anything, and each value is one line of its own."""
    if not facts:
        return []
    text = "\n".join(f"{f.label}: {' '.join(f.value.split())}" for f in facts)
    return [{"type": "section", "text": {"type": "plain_text", "text": clip(text, SECTION_MAX),
                                         "emoji": False}}]


def approval_blocks(request: ApprovalRequest) -> list[Block]:
    """An approval request: who asks (ours, a mention), the facts, the rest of the
    details, then Approve and Reject; at most six blocks, each within Slack's limits."""
    return [*sections(request.intro), *_fact_section(request.facts()),
            *_fact_section(request.details()), *sections(request.prompt),
            {"type": "actions", "block_id": question_block(request.question),
             "elements": [_button(o.label, f"{ANSWER}.{i}",
                                  encode_answer(request.question, o.value), _style(o, None))
                          for i, o in enumerate(request.options, start=1)]}]


def mistake_blocks(button: MistakeButton) -> list[Block]:
    """The receipt's "Report a mistake" button, with its line: pressing it answers
    ``command:mistake`` with the reference, which the core reads as ``mistake REF``."""
    return [*sections(button.hint),
            {"type": "actions", "elements": [_button(
                button.label, f"{ANSWER}.1", encode_answer(button.question, button.reference),
                "danger")]}]


def reply_blocks(reply: Reply, timezone: ZoneInfo) -> list[Block]:
    if isinstance(reply, Text):
        return sections(reply.text)
    if isinstance(reply, MistakeButton):
        return mistake_blocks(reply)
    if isinstance(reply, Choice):
        return choice_blocks(reply)
    if isinstance(reply, ApprovalRequest):
        return approval_blocks(reply)
    if isinstance(reply, Ask):
        return ask_blocks(reply, timezone)
    if isinstance(reply, Form):
        return form_blocks(reply)
    if isinstance(reply, LinkReply):
        url = reply.url.replace("&", "&amp;").replace("<", "%3C").replace(">", "%3E")
        label = escape(reply.label).replace("|", "¦")
        return [{"type": "section", "text": {"type": "mrkdwn", "text": f"<{url}|{label}>"}}]
    raise TypeError(type(reply))


def plain_text(reply: Reply) -> str:
    if isinstance(reply, Text | MistakeButton):
        return reply.text
    if isinstance(reply, Ask | Choice):
        return _with_error(reply.prompt, reply.error)
    if isinstance(reply, ApprovalRequest):  # no sender-typed text in a notification
        return f"{reply.intro}\n{reply.prompt}"
    if isinstance(reply, Form):
        return _with_error(reply.title, reply.error)
    if isinstance(reply, LinkReply):
        return f"{reply.label}: {reply.url}"
    return reply.caption


def render(replies: Sequence[Reply], timezone: ZoneInfo) -> list[Outgoing]:
    """Group the replies of one turn into as few messages as possible: consecutive texts
    and the question they lead to share one message; each archive is its own upload."""
    out: list[Outgoing] = []
    blocks: list[Block] = []
    texts: list[str] = []
    question: str | None = None

    def flush() -> None:
        nonlocal blocks, texts, question
        if blocks:
            out.append(Post(blocks, clip(escape("\n".join(texts)), FALLBACK_MAX), question))
        blocks, texts, question = [], [], None

    for reply in replies:
        if isinstance(reply, FileReply):
            flush()
            out.append(Upload(reply.reference, reply.filename, reply.caption))
            continue
        new = reply_blocks(reply, timezone)
        if len(blocks) + len(new) > MAX_BLOCKS or question is not None:
            flush()
        blocks += new[:MAX_BLOCKS]
        texts.append(plain_text(reply))
        if isinstance(reply, Ask | Choice | Form | ApprovalRequest):
            question = reply.question
    flush()
    return out


def amend(blocks: Iterable[Mapping[str, Any]], note: str) -> list[Block]:
    """A question message after the fact: its text kept, its controls replaced by a note."""
    kept = [dict(b) for b in blocks if b.get("type") not in ("actions", "input")
            and not str(b.get("block_id", "")).startswith(QUESTION_BLOCK)]
    if kept and kept[-1].get("type") == "context":
        kept.pop()  # a hint such as "type your answer" no longer applies
    return [*kept[: MAX_BLOCKS - 1], context(note)]


# --- modals --------------------------------------------------------------------------------


def _input(f: FormField) -> Block:
    element: Block
    if f.kind == "select":
        options = [{"text": _plain(o.label), "value": o.value} for o in f.options]
        element = {"type": "static_select", "action_id": "v", "options": options,
                   "placeholder": _plain(msg.SELECT_PLACEHOLDER)}
        initial = next((opt for o, opt in zip(f.options, options, strict=True)
                        if o.value == f.value), None)
        if initial is not None:
            element["initial_option"] = initial
    elif f.kind == "checkbox":
        options = [{"text": _plain(o.label), "value": o.value} for o in f.options]
        element = {"type": "checkboxes", "action_id": "v", "options": options}
        chosen = [opt for o, opt in zip(f.options, options, strict=True) if o.value == f.value]
        if chosen:
            element["initial_options"] = chosen
    else:
        element = {"type": "plain_text_input", "action_id": "v",
                   "multiline": f.kind == "textarea"}
        if f.value:
            element["initial_value"] = clip(f.value, SECTION_MAX)
    block: Block = {"type": "input", "block_id": FIELD_BLOCK + f.name,
                    "label": _plain(f.label, 2000), "optional": not f.required,
                    "element": element}
    if f.help:
        block["hint"] = _plain(f.help, 2000)
    return block


def form_modal(form: Form, *, metadata: str) -> Block:
    head = "\n".join(p for p in (f"⚠ {form.error}" if form.error else "", form.intro) if p)
    return {
        "type": "modal", "callback_id": FORM_VIEW, "private_metadata": metadata,
        "title": _plain(form.title, TITLE_MAX), "submit": _plain(msg.SUBMIT),
        "close": _plain(msg.CLOSE),
        "blocks": [*(sections(head) if head else []), *(_input(f) for f in form.fields)],
    }


def form_errors(form: Form) -> dict[str, str]:
    """Per-field errors for ``response_action: errors``; a form-level error with no field
    to blame goes on the first field so it is still seen."""
    errors = {FIELD_BLOCK + f.name: f.error for f in form.fields if f.error}
    if not errors and form.error and form.fields:
        errors[FIELD_BLOCK + form.fields[0].name] = form.error
    return errors


def reject_modal(reference: str, *, metadata: str) -> Block:
    return {
        "type": "modal", "callback_id": REJECT_VIEW, "private_metadata": metadata,
        "title": _plain(msg.REJECT_TITLE, TITLE_MAX), "submit": _plain(msg.REJECT_SUBMIT),
        "close": _plain(msg.CLOSE),
        "blocks": [{"type": "input", "block_id": FIELD_BLOCK + REASON_FIELD,
                    "label": _plain(msg.REJECT_REASON_LABEL.format(reference=reference), 2000),
                    "hint": _plain(msg.REJECT_REASON_HINT, 2000),
                    "element": {"type": "plain_text_input", "action_id": "v",
                                "multiline": True, "max_length": 1000}}],
    }
