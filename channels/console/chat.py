"""``safehaven chat``: the whole conversation in a terminal, same engine and store.

Questions are rendered as numbered options or field-by-field forms; the answer typed is
sent as a neutral event, exactly as a Slack or Teams click would be.

Once the conversation waits on nobody at the terminal (a transfer waiting for its approver),
or when the chat is opened without files, the chat takes commands (``status``, ``list``,
``archive REF``, ``mistake REF``, ... through the same handlers as Slack and Teams, and
``approve``/``reject`` for an approver) and shows each message kept for the person at the
terminal as it arrives, until they leave.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TextIO

from bot.events import Answer, Command, Event, FilesReceived
from bot.file_intake import can_join
from bot.messages import console as say
from bot.messages import conversation as msg
from bot.messages.words import plural
from bot.reference import is_reference, normalise_reference
from bot.replies import Ask, Choice, Form, Reply
from bot.statuses import Step
from channels.console.render import render
from handlers import approvals, overview
from handlers.conversation import (
    cancel_by_sender,
    current_question,
    current_state,
    parse_text,
    take_turn,
)
from handlers.intake import stage_local_file
from handlers.notify import deliver_held
from handlers.services import Services
from handlers.transfers import context_for

InputFn = Callable[[str], Awaitable[str | None]]
QUIT = ("quit", "exit", ":q")
# How often a chat waiting on others looks for messages kept for its person.
POLL_SECONDS = 1.0


class LineReader:
    """Lines typed at a file descriptor (standard input), read by the event loop itself:
    a wait for a line is cancelled at once when the chat is (Ctrl-C), where ``input`` in a
    thread would hold the process until Enter."""

    def __init__(self, fd: int, out: TextIO) -> None:
        self.fd = fd
        self.out = out
        self.buffer = b""
        self.ended = False

    async def __call__(self, prompt: str) -> str | None:
        """The next line without its line break, after showing ``prompt``; None at the end
        of input."""
        self.out.write(prompt)
        self.out.flush()
        while b"\n" not in self.buffer and not self.ended:
            chunk = await self._chunk()
            self.ended = not chunk
            self.buffer += chunk
        if not self.buffer:
            return None
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode("utf-8", "replace").rstrip("\r")

    async def _chunk(self) -> bytes:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            if not ready.done():
                ready.set_result(None)

        try:
            loop.add_reader(self.fd, readable)
        except (OSError, NotImplementedError):  # a regular file (never blocks), or no selector
            return os.read(self.fd, 65536)
        try:
            await ready
        finally:
            loop.remove_reader(self.fd)
        return os.read(self.fd, 65536)


def _pending(replies: Sequence[Reply]) -> Choice | Ask | Form | None:
    for reply in reversed(replies):
        if isinstance(reply, Choice | Ask | Form):
            return reply
    return None


async def _ask_form(form: Form, read: InputFn, out: TextIO
                    ) -> dict[str, str] | Command | None:
    values: dict[str, str] = {}
    for f in form.fields:
        hint = f" [{f.value}]" if f.value else ""
        if f.options:
            opts = msg.FIELD_OPTIONS_JOIN.join(
                msg.FIELD_OPTION.format(value=o.value, label=o.label) for o in f.options)
            out.write("  " + msg.FIELD_OPTIONS_HINT.format(options=opts) + "\n")
        if f.help:
            out.write(f"  {f.help}\n")
        colon = "" if f.label.endswith("?") else ":"
        line = await read(f"{f.label}{hint}{colon} ")
        if line is None or line.strip().lower() in QUIT:
            return None
        if line.strip().lower() in ("back", "cancel"):
            return {"__word__": line.strip().lower()}
        typed = parse_text(line)
        if isinstance(typed, Command):  # `status`, `cancel SH-…`: a command, not the value
            return typed
        values[f.name] = line.strip() or f.value
    return values


async def _open_transfer_kept(svc: Services, *, user_id: str, files: Sequence[Path],
                              read: InputFn, out: TextIO) -> bool | None:
    """When ``files`` would join the sender's unfinished transfer, ask first: True to add
    them, False once the open one is cancelled for a new one, None to send nothing. True
    without asking when there is nothing they would join."""
    state = await current_state(svc, conversation_id=user_id)
    if (state.step == Step.IDLE or not state.reference
            or not can_join(state, context_for(svc, user_id=user_id))):
        return True
    ref = state.reference
    count = len(state.files)
    out.write(say.OPEN_TRANSFER.format(
        reference=ref, files=plural(count, "file"),
        names=", ".join(p.name for p in files)) + "\n")
    options = (say.ADD_TO_OPEN, say.START_NEW, say.LEAVE_AS_IS)
    out.write("".join(f"  {i}. {o.format(reference=ref)}\n"
                      for i, o in enumerate(options, start=1)))
    while True:
        line = await read("> ")
        picked = "3" if line is None else line.strip().lower()
        if picked in QUIT or picked == "3":
            out.write(say.LEFT_AS_IS.format(reference=ref) + "\n")
            return None
        if picked in ("1", "2"):
            break
        out.write(say.PICK_ONE + "\n")
    if picked == "1":
        return True
    # The choice was the confirmation: cancelled as `safehaven cancel` would.
    out.write(await cancel_by_sender(svc, reference=ref, user_id=user_id) + "\n")
    return False


async def run_chat(svc: Services, *, user_id: str, files: Sequence[Path], read: InputFn,
                   out: TextIO) -> int:
    """The conversation until it waits on nobody at the terminal, or the person leaves;
    Ctrl-C (the task cancelled) stops it at once, every answer given so far kept."""
    try:
        return await _converse(svc, user_id=user_id, files=files, read=read, out=out)
    except asyncio.CancelledError:
        out.write(f"\n{say.STOPPED}\n")
        out.flush()
        raise


async def _converse(svc: Services, *, user_id: str, files: Sequence[Path], read: InputFn,
                    out: TextIO, staying: bool = False) -> int:
    """The conversation; ``staying``: it was entered from the command prompt (a command
    asked something), which it goes back to once nothing more is asked."""
    conversation_id = f"{user_id}"
    event: Event | None = None
    if files and await _open_transfer_kept(svc, user_id=user_id, files=files, read=read,
                                           out=out) is None:
        return 0
    if files:
        staged = [await asyncio.to_thread(stage_local_file, svc.settings, p) for p in files]
        event = FilesReceived(tuple(staged))
    elif await current_question(svc, conversation_id=conversation_id, user_id=user_id) is None:
        return await _commands(svc, user_id=user_id, read=read, out=out, opening=True)
    else:
        event = parse_text("status")  # held messages, then the question it waits on
    pending: Choice | Ask | Form | None = None
    reference: str | None = None
    while event is not None:
        turn = await take_turn(svc, conversation_id=conversation_id, user_id=user_id,
                               event=event)
        for reply in turn.replies:
            out.write(render(reply) + "\n")
        out.flush()
        reference = (await current_state(svc, conversation_id=conversation_id)).reference \
            or reference
        asked = _pending(turn.replies)
        if asked is None and pending is not None and isinstance(event, Command):
            # a command (`cancel SH-…`) may have closed the question it interrupted
            pending = await current_question(svc, conversation_id=conversation_id,
                                             user_id=user_id)
        if asked is None and (pending is None or not isinstance(event, Command)):
            if staying:
                return await _commands(svc, user_id=user_id, read=read, out=out,
                                       opening=False)
            return await _after_the_flow(svc, user_id=user_id, reference=reference,
                                         read=read, out=out)
        pending = asked or pending
        assert pending is not None
        if isinstance(pending, Form):
            values = await _ask_form(pending, read, out)
            if values is None:
                return 0
            if isinstance(values, Command):
                event = values
                continue
            word = values.get("__word__")
            event = Answer(word, pending.question) if word else Answer(values, pending.question)
            continue
        line = await read("> ")
        if line is None or line.strip().lower() in QUIT:
            out.write(say.LEFT + "\n")
            return 0
        if not line.strip() and isinstance(pending, Choice) and pending.default \
                and not pending.multiple:  # Enter keeps the marked earlier answer
            event = Answer(pending.default, pending.question)
            continue
        event = parse_text(line, question=pending.question)
    return 0


async def _after_the_flow(svc: Services, *, user_id: str, reference: str | None,
                          read: InputFn, out: TextIO) -> int:
    """Once the conversation asks nothing more: if its transfer (``reference``) waits for
    an approver, wait with the person (taking commands) for the answer; else it is done."""
    approvers = None if reference is None \
        else await overview.approvers_of(svc, reference=reference)
    if approvers is None:
        return 0
    out.write(say.WAITING_FOR.format(approvers=approvers, reference=reference) + "\n")
    return await _commands(svc, user_id=user_id, read=read, out=out, opening=False)


async def _show_overview(svc: Services, *, user_id: str, out: TextIO) -> None:
    lines = [*await overview.open_transfers(svc, user_id=user_id),
             *await overview.awaiting_decision(svc, user_id=user_id)]
    out.write("\n".join(lines) + "\n")


async def _show_held(svc: Services, *, user_id: str, out: TextIO, prompt: str = "") -> None:
    """What was kept for the person; with ``prompt`` (a chat waiting at it), as it arrives,
    without saying it was kept."""
    held = await deliver_held(svc, user_id=user_id, header=not prompt)
    if held:
        out.write(("\n" if prompt else "") + "\n".join(render(r) for r in held) + "\n" + prompt)
        out.flush()


async def _watch(svc: Services, *, user_id: str, out: TextIO) -> None:
    """Show each message kept for the person as it arrives (until cancelled)."""
    while True:
        await asyncio.sleep(POLL_SECONDS)
        await _show_held(svc, user_id=user_id, out=out, prompt="> ")


async def _decide(svc: Services, *, user_id: str, words: list[str]) -> list[Reply] | None:
    """``approve REF`` or ``reject REF REASON`` typed by an approver, decided as their
    buttons would; None when the words are not such a command."""
    if len(words) < 2 or words[0].lower() not in ("approve", "reject") \
            or not is_reference(words[1]):
        return None
    return await approvals.decide(svc, approver_id=user_id,
                                  reference=normalise_reference(words[1]),
                                  approve=words[0].lower() == "approve",
                                  reason=" ".join(words[2:]))


async def _commands(svc: Services, *, user_id: str, read: InputFn, out: TextIO,
                    opening: bool) -> int:
    """Commands typed at the prompt, each through the same handler as on Slack or Teams,
    while messages kept for the person are shown as they arrive; ``opening``: first show
    what was kept and what is open."""
    if opening:
        await _show_held(svc, user_id=user_id, out=out)
        await _show_overview(svc, user_id=user_id, out=out)
        out.write(say.COMMANDS_HINT + "\n")
    out.flush()
    watcher = asyncio.create_task(_watch(svc, user_id=user_id, out=out))
    try:
        while True:
            line = await read("> ")
            if line is None or line.strip().lower() in QUIT:
                out.write(say.LEFT + "\n")
                return 0
            words = line.split()
            if not words:
                continue
            decided = await _decide(svc, user_id=user_id, words=words)
            event = parse_text(line)
            if decided is not None:
                replies = decided
            elif words[0].lower() in ("approve", "reject"):
                replies = []
                out.write(say.DECIDE_USAGE + "\n")
            elif isinstance(event, Command) and event.name == "status" and not event.args:
                await _show_held(svc, user_id=user_id, out=out)
                await _show_overview(svc, user_id=user_id, out=out)
                replies = []
            elif isinstance(event, Command) and event.name != "help":
                turn = await take_turn(svc, conversation_id=user_id, user_id=user_id,
                                       event=event)
                replies = turn.replies
            else:
                replies = []
                out.write(say.COMMANDS_HINT + "\n" + say.APPROVER_COMMANDS_HINT + "\n")
            if _pending(replies) is not None:  # it asks something (to confirm a cancel)
                watcher.cancel()
                return await _converse(svc, user_id=user_id, files=(), read=read, out=out,
                                       staying=True)
            for reply in replies:
                out.write(render(reply) + "\n")
            out.flush()
    finally:
        watcher.cancel()
