"""Plain-text rendering of neutral replies for the terminal.

What is printed carries no control characters but line breaks and tabs: no escape
sequence (ANSI colours, cursor moves, a terminal title) in a file name or an answer reaches
the terminal.
"""

from __future__ import annotations

import re

from bot.messages import console as say
from bot.messages import conversation as msg
from bot.messages.words import labelled
from bot.replies import (
    ApprovalRequest,
    Ask,
    Choice,
    FileReply,
    Form,
    LinkReply,
    MistakeButton,
    Reply,
    Text,
)

_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _marked(label: str, mark: str) -> str:
    """``label`` with ``mark`` (" (chosen)"), one bracket for both when the label ends in
    one: "Secure download link (recommended; press Enter for this)"."""
    if mark.startswith(" (") and label.endswith(")"):
        return f"{label[:-1]}; {mark[2:]}"
    return label + mark


def render(reply: Reply) -> str:
    return _CONTROLS.sub("", _render(reply))


def _render(reply: Reply) -> str:
    if isinstance(reply, ApprovalRequest):
        # No buttons in a terminal: the commands that decide it.
        lines = [reply.intro, *(f"  {f.label}: {f.value}" for f in reply.facts()),
                 *(f"  {f.label}: {f.value}" for f in reply.details()), reply.prompt,
                 say.APPROVAL_HOW.format(reference=reply.reference)]
        return "\n".join(lines)
    if isinstance(reply, Text):
        return reply.text
    if isinstance(reply, Ask):
        parts = [f"⚠ {reply.error}"] if reply.error else []
        return "\n".join([*parts, reply.prompt])
    if isinstance(reply, Choice):
        lines = [f"⚠ {reply.error}"] if reply.error else []
        lines.append(reply.prompt)
        for i, opt in enumerate(reply.options, start=1):
            mark = (msg.CHOICE_KEPT_MARK if reply.default == opt.value and not reply.multiple
                    else msg.CHOICE_CHOSEN_MARK if opt.value in reply.chosen else "")
            desc = f" — {opt.description}" if opt.description else ""
            lines.append(f"  {i}. {_marked(opt.label, mark)}{desc}")
        if reply.multiple:
            lines.append(msg.SEVERAL_CHOICES_HINT)
        return "\n".join(lines)
    if isinstance(reply, Form):
        lines = [f"⚠ {reply.error}"] if reply.error else []
        lines.append(f"[{reply.title}] {reply.intro}".rstrip())
        for f in reply.fields:
            if not f.value and not f.error:
                continue  # asked for one by one next; only what is already given is shown
            err = f"  ⚠ {f.error}" if f.error else ""
            lines.append(f"  {labelled(f.label)} {f.value}{err}".rstrip())
        return "\n".join(lines)
    if isinstance(reply, FileReply):
        return f"{reply.caption}\n  → {reply.key}"
    if isinstance(reply, LinkReply):
        return f"{reply.label}: {reply.url}"
    if isinstance(reply, MistakeButton):  # no buttons in a terminal: the command to type
        return reply.text
    raise TypeError(type(reply))
