"""Slack input read back as plain values: what a person typed (from Slack's markup), a
submitted modal's fields, the date and time a picker holds, and the fields of a payload.

Input is read whatever its shape turns out to be (:func:`channels.slack.payloads.well_formed`
keeps most odd shapes out at both doors, but the listeners do not rely on it): what is not
where and what Slack puts it reads as nothing, never as an exception.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from bot.messages import slack as msg
from bot.messages.words import labelled
from channels.slack.blocks import clip
from channels.slack.controls import CHECK, FIELD_BLOCK, PICK_TIME, TIME_FORMAT, question_block

_SLACK_LINK = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")


def from_slack(text: str) -> str:
    """What the person typed, from Slack's message markup: links and mailto links become
    their visible text, mentions stay as ids, and ``&amp;``/``&lt;``/``&gt;`` are decoded."""

    def link(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        if target.startswith(("@", "#", "!")):
            return f"<{target}>"
        if label:
            return label
        return target.removeprefix("mailto:")

    return html.unescape(_SLACK_LINK.sub(link, text))


def dig(data: Any, *path: str) -> Any:
    """``data[path0][path1]...`` or None, whatever shape a payload turns out to have."""
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def text_of(value: Any) -> str:
    return value if isinstance(value, str) else ""


def items(value: Any) -> list[Mapping[str, Any]]:
    """The objects of a list (Slack's ``blocks``, ``selected_options``)."""
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def form_values(state: Any) -> dict[str, str]:
    """Field values from a submitted modal's ``view.state.values``."""
    values: dict[str, str] = {}
    if not isinstance(state, Mapping):
        return values
    for block_id, elements in state.items():
        if not isinstance(block_id, str) or not block_id.startswith(FIELD_BLOCK):
            continue
        element = dig(elements, "v")
        if not isinstance(element, Mapping):
            continue
        name = block_id[len(FIELD_BLOCK):]
        kind = element.get("type")
        if kind == "static_select":
            values[name] = text_of(dig(element, "selected_option", "value"))
        elif kind == "checkboxes":
            values[name] = ",".join(text_of(o.get("value"))
                                    for o in items(element.get("selected_options")))
        else:
            values[name] = text_of(element.get("value"))
    return values


def ticked(state: Any, question: str) -> tuple[str, str]:
    """The options ticked in a several-choice question's checkboxes (or multi-select): their
    values separated by commas, as the engine reads a typed list, and their labels."""
    chosen = items(dig(state, question_block(question), CHECK, "selected_options"))
    values = [text_of(o.get("value")) for o in chosen]
    labels = [text_of(dig(o, "text", "text")) or v for o, v in zip(chosen, values, strict=True)]
    return ",".join(v for v in values if v), ", ".join(label for label in labels if label)


def picked_time(state: Any, question: str, timezone: ZoneInfo) -> str | None:
    """The date and time chosen in a question's picker, as the engine reads typed times
    (local to the policy's time zone); None when nothing was picked (or what came is not
    a time)."""
    stamp = dig(state, question_block(question), PICK_TIME, "selected_date_time")
    if isinstance(stamp, str) and stamp.isascii() and stamp.isdigit() and len(stamp) <= 12:
        stamp = int(stamp)
    if isinstance(stamp, bool) or not isinstance(stamp, int) or stamp < 0:
        return None
    try:
        return datetime.fromtimestamp(stamp, timezone).strftime(TIME_FORMAT)
    except (OverflowError, OSError, ValueError):
        return None  # before year 1 or after 9999


def submitted_summary(view: Any) -> str:
    """"Label: value" ("Question? value") for each field of a submitted modal, as the
    person saw them (option labels, not their values), to leave on the form's message as
    the record of the answer."""
    state = dig(view, "state", "values")
    parts: list[str] = []
    for block in items(dig(view, "blocks")):
        block_id = block.get("block_id")
        if block.get("type") != "input" or not isinstance(block_id, str):
            continue
        label = text_of(dig(block, "label", "text"))
        element = dig(state, block_id, "v")
        if not isinstance(element, Mapping):
            continue
        if element.get("type") == "static_select":
            shown = text_of(dig(element, "selected_option", "text", "text"))
        elif element.get("type") == "checkboxes":
            shown = ", ".join(text_of(dig(o, "text", "text"))
                              for o in items(element.get("selected_options")))
        else:
            shown = " ".join(text_of(element.get("value")).split())
        if shown:
            parts.append(f"{labelled(label)} {clip(shown, 200)}")
    return msg.ANSWER_SEPARATOR.join(parts)


class Click(NamedTuple):
    """Where a click came from: who, in which conversation, on which message (its ts, its
    blocks and its text as the payload carries them)."""

    user: str
    channel: str
    ts: str
    blocks: list[dict[str, Any]]
    text: str


def click(body: Mapping[str, Any]) -> Click:
    message = dig(body, "message") or {}
    raw_blocks = message.get("blocks") if isinstance(message, Mapping) else None
    return Click(text_of(dig(body, "user", "id")),
                 text_of(dig(body, "channel", "id") or dig(body, "container", "channel_id")),
                 text_of(dig(body, "container", "message_ts") or dig(message, "ts")),
                 [b for b in raw_blocks if isinstance(b, dict)]
                 if isinstance(raw_blocks, list) else [],
                 text_of(dig(message, "text")))


def first_action(body: Mapping[str, Any]) -> Any:
    """The action a block_actions payload is about (bolt routes on the first)."""
    return (body.get("actions") or [{}])[0]


def metadata(view: Any) -> dict[str, str]:
    """A modal's ``private_metadata`` as we wrote it (a JSON object of texts); empty when
    it is anything else."""
    try:
        data = json.loads(text_of(dig(view, "private_metadata")) or "{}")
    except ValueError:
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str)} \
        if isinstance(data, dict) else {}
