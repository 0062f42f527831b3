"""``safehaven chat``: the whole conversation in a terminal, same engine and store.

Questions are rendered as numbered options or field-by-field forms; the answer typed is
sent as a neutral event, exactly as a Slack or Teams click would be.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TextIO

from bot.events import Answer, Command, Event, FilesReceived
from bot.replies import Ask, Choice, Form, Reply
from channels.console.render import render
from handlers.conversation import parse_text, take_turn
from handlers.intake import stage_local_file
from handlers.services import Services

InputFn = Callable[[str], Awaitable[str | None]]
QUIT = ("quit", "exit", ":q")


def _pending(replies: Sequence[Reply]) -> Choice | Ask | Form | None:
    for reply in reversed(replies):
        if isinstance(reply, Choice | Ask | Form):
            return reply
    return None


async def _ask_form(form: Form, read: InputFn, out: TextIO) -> dict[str, str] | None:
    values: dict[str, str] = {}
    for f in form.fields:
        hint = f" [{f.value}]" if f.value else ""
        if f.options:
            opts = ", ".join(f"{o.value} = {o.label}" for o in f.options)
            out.write(f"  ({opts})\n")
        if f.help:
            out.write(f"  {f.help}\n")
        line = await read(f"{f.label}{hint}: ")
        if line is None or line.strip().lower() in QUIT:
            return None
        if line.strip().lower() in ("back", "cancel"):
            return {"__word__": line.strip().lower()}
        values[f.name] = line.strip() or f.value
    return values


async def run_chat(svc: Services, *, user_id: str, files: Sequence[Path], read: InputFn,
                   out: TextIO) -> int:
    conversation_id = f"{user_id}"
    event: Event | None = None
    if files:
        staged = [await asyncio.to_thread(stage_local_file, svc.settings, p) for p in files]
        event = FilesReceived(tuple(staged))
    else:
        event = parse_text("status")
    pending: Choice | Ask | Form | None = None
    while event is not None:
        turn = await take_turn(svc, conversation_id=conversation_id, user_id=user_id,
                               event=event)
        for reply in turn.replies:
            out.write(render(reply) + "\n")
        out.flush()
        asked = _pending(turn.replies)
        if asked is None and (pending is None or not isinstance(event, Command)):
            return 0
        pending = asked or pending
        assert pending is not None
        if isinstance(pending, Form):
            values = await _ask_form(pending, read, out)
            if values is None:
                return 0
            word = values.get("__word__")
            event = Answer(word, pending.question) if word else Answer(values, pending.question)
            continue
        line = await read("> ")
        if line is None or line.strip().lower() in QUIT:
            out.write("Left the conversation; run `safehaven chat` to carry on.\n")
            return 0
        event = parse_text(line, question=pending.question)
    return 0
