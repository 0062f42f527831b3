"""A conversation turn: load state, step the engine, save with a version check, run effects.

This is the one entry point channels call for a user's message, files or button click.
State lives in the store, so any process can take the next turn and a restart continues
where the conversation was. Two concurrent turns on one conversation cannot both apply:
the loser of the version check re-runs its event on the winner's state, where an answer to
an already-answered question is recognised as stale. The turn's effects (submit the
transfer, delete plaintext) are written to the outbox in the same transaction as its state
and run right after the commit (:mod:`handlers.outbox`); if this process dies in between,
the scheduler runs them and tells the sender.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, replace
from typing import Any

from bot import engine
from bot.answers import command_answer
from bot.events import Answer, CancelRequest, Command, Event, FilesReceived
from bot.messages import conversation as cmsg
from bot.messages import incidents as imsg
from bot.messages import transfers as msg
from bot.messages.words import plural
from bot.observations import user_channel
from bot.reference import is_reference, normalise_reference
from bot.replies import Ask, Choice, Form, Question, Reply, Text
from bot.state import CancelTransfer, DeleteFiles, State, StepResult, SubmitTransfer, TurnContext
from bot.statuses import OPEN_TRANSFER_STATUSES, SendStatus, Step, TransferStatus
from handlers import access, intake, mistakes, near_misses, notify, outbox, transfers
from handlers.password_sends import scheduling
from handlers.services import Services
from store import audit
from store import repositories as repo
from store.db import roll_back

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8
RECIPIENT_BOOK_STEPS = (Step.CLASSIFICATION, Step.INFORMATION_CATEGORIES, Step.RECIPIENT_PICK,
                        Step.RECIPIENT)
COMMANDS = ("help", "status", "list", "cancel", "received", "call", "archive", "mistake")
# What a sender may still cancel (handlers.transfers.cancel).
CANCELLABLE = (*OPEN_TRANSFER_STATUSES, TransferStatus.READY)
# Commands a button may carry (bot.answers.command_question), with the reference as value.
BUTTON_COMMANDS = ("mistake",)


@dataclass(frozen=True)
class Turn:
    """What a turn produced for the user who took it; ``error`` is set when their answer was
    refused and the question re-asked (the non-interactive CLI exits on it), and ``stale``
    too when the answer was to a question no longer asked (a late or second click)."""

    replies: list[Reply]
    error: str | None = None
    stale: bool = False


class TurnConflict(RuntimeError):
    """The conversation kept changing under us; extremely unlikely outside a test."""


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> str:
    """``text`` with what UTF-8 and PostgreSQL cannot hold (NUL; unpaired surrogates, which
    JSON escapes and undecodable bytes in file names produce) replaced by U+FFFD."""
    return _UNSTORABLE.sub("\ufffd", text)


def storable_event(event: Event) -> Event:
    """The event as the engine and the store can take it (see :func:`storable`); answer
    forms become string-to-string dictionaries whatever a channel handed over."""
    if isinstance(event, Answer):
        value = event.value
        clean: str | dict[str, str] = (
            storable(value) if isinstance(value, str)
            else {storable(str(k)): storable(str(v)) for k, v in value.items()})
        question = None if event.question is None else storable(event.question)
        return Answer(clean, question, event.confirmed)
    if isinstance(event, FilesReceived):
        return FilesReceived(tuple(replace(f, name=storable(f.name)) for f in event.files))
    if isinstance(event, Command):
        return Command(event.name, tuple(storable(a) for a in event.args))
    return event


def parse_text(text: str, *, question: str | None = None) -> Event:
    """A typed message is a command (help, status, list, cancel REF, received REF) or an
    answer to the current question."""
    words = text.strip().split()
    if words:
        head = words[0].lower().lstrip("/")
        if head in ("help", "list") and len(words) == 1:
            return Command(head)
        if head == "status" and len(words) <= 2:
            return Command("status", tuple(words[1:]))
        if head in ("cancel", "received", "archive", "mistake") and len(words) == 2 \
                and is_reference(words[1]):
            return Command(head, (normalise_reference(words[1]),))
        if head == "received" and len(words) == 1:
            return Command("received")
        if head == "call" and len(words) >= 3 and is_reference(words[1]):
            return Command("call", (normalise_reference(words[1]), " ".join(words[2:])))
    return Answer(text, question)


def command_in_form(event: Event) -> Event:
    """A form answered with a command naming a transfer in one of its fields (``cancel SH-…``
    typed as the job title, ``status SH-…``) as that command: never taken as the field's
    value, on any channel. A bare word (a job title of ``Status`` or ``Help``) stays the
    field's value. Any other event as it is."""
    if not isinstance(event, Answer) or not isinstance(event.value, dict):
        return event
    for typed in event.value.values():
        command = parse_text(typed) if isinstance(typed, str) else None
        if isinstance(command, Command) and command.args and is_reference(command.args[0]):
            return command
    return event


def pressed_command(event: Event) -> Event:
    """A press of a command button (the receipt's "Report a mistake") as the command it
    stands for; any other event as it is. A value that is not a reference stays an answer
    (and is then stale)."""
    if not isinstance(event, Answer):
        return event
    pressed = command_answer(event.question, event.value)
    if pressed is None or pressed[0] not in BUTTON_COMMANDS or not is_reference(pressed[1]):
        return event
    return Command(pressed[0], (normalise_reference(pressed[1]),))


async def _new_reference(svc: Services) -> str:
    async with svc.db.read() as session:
        for _ in range(20):
            ref = svc.new_reference()
            if not await repo.reference_taken(session, reference=ref):
                return ref
    raise RuntimeError("could not find a free reference")


async def take_turn(svc: Services, *, conversation_id: str, user_id: str, event: Event
                    ) -> Turn:
    """Handle one event from ``user_id``; returns the replies for that user, after what was
    kept for them while they could not be reached (:func:`handlers.notify.deliver_held`).
    How long it took is reported to ``svc.observations``, by channel."""
    started = time.perf_counter()
    try:
        held = await notify.deliver_held(svc, user_id=user_id)
        turn = await _take_turn(svc, conversation_id=conversation_id, user_id=user_id,
                                event=event)
    finally:
        svc.observations.turn_taken(user_channel(user_id), time.perf_counter() - started)
    return replace(turn, replies=[*held, *turn.replies]) if held else turn


async def _take_turn(svc: Services, *, conversation_id: str, user_id: str, event: Event
                     ) -> Turn:
    """One event, without handing over held messages (also for turns taken on a user's
    behalf, such as an administrator's ``cancel``)."""
    event = storable_event(command_in_form(pressed_command(event)))
    if isinstance(event, Command):
        return Turn(await run_command(svc, conversation_id=conversation_id, user_id=user_id,
                                      command=event))
    fresh_reference = await _new_reference(svc) if isinstance(event, FilesReceived) else None
    verdicts = await intake.check_files(svc.inspector, svc.policy, event.files) \
        if isinstance(event, FilesReceived) else {}
    if isinstance(event, FilesReceived):  # accepted files sealed into the store, none left here
        files, verdicts = await intake.seal_accepted(svc.objects, svc.vault, event.files,
                                                     verdicts)
        event = FilesReceived(files)
    for _attempt in range(MAX_ATTEMPTS):
        async with svc.db.read() as session:
            loaded = await repo.load_conversation(session, conversation_id=conversation_id)
            state = State.from_json(loaded[0] if loaded else None)
            # Only the answers that decide whether to offer recipients used before
            # (classification, information categories) and the pick need the recipient book.
            known = (await repo.known_recipients(session, sender_id=user_id)
                     if state.step in RECIPIENT_BOOK_STEPS else [])
        version = loaded[1] if loaded else None
        now = svc.clock()
        ctx = TurnContext(
            policy=svc.policy, now=now, user_id=user_id,
            default_region=svc.settings.default_region,
            new_reference=lambda: fresh_reference or svc.new_reference(),
            known_recipients=known, file_verdicts=verdicts)
        result = engine.step(state, event, ctx)
        if _changes_nothing(state, result):
            return Turn(result.replies, result.error, result.stale)
        keys = await _save(svc, conversation_id=conversation_id, user_id=user_id,
                           before=state, result=result, version=version)
        if keys is not None:
            done: list[Reply] = []
            if result.cancel_other is not None:  # confirmed: cancelled now, as it stands
                done.append(Text(await cancel_by_sender(svc, reference=result.cancel_other,
                                                        user_id=user_id)))
            return Turn([*done, *result.replies, *await outbox.run(svc, keys)], result.error,
                        result.stale)
    raise TurnConflict(conversation_id)


def _changes_nothing(before: State, result: StepResult) -> bool:
    """A turn that only re-asks or explains (a refused answer, a message while idle) has
    nothing to save: skipping the write keeps such turns to one read."""
    return not result.audit and not result.effects and not result.near_misses \
        and result.state == before


async def _save(svc: Services, *, conversation_id: str, user_id: str, before: State,
                result: StepResult, version: int | None) -> list[str] | None:
    """Save the turn: its state, its transfer, its audit records and its effects (as
    outbox entries), in one transaction. Returns the entries' keys, in the order the
    engine gave the effects; None if another turn saved first."""
    now = svc.clock()
    after = result.state
    keys: list[str] = []
    async with svc.db.transaction() as session:
        if not await repo.save_conversation(session, conversation_id=conversation_id,
                                            user_id=user_id, state=after.to_json(),
                                            expected_version=version, now=now):
            await roll_back(session)
            return None
        if after.reference and after.step != Step.IDLE:
            # The files are recorded by the turn that received them: later turns of the
            # same transfer only refresh the row.
            await repo.upsert_draft(session, reference=after.reference, sender_id=user_id,
                                    files=after.files, classification=after.classification,
                                    now=now, files_changed=before.reference != after.reference
                                    or before.files != after.files)
        saved = (version or 0) + 1
        for n, effect in enumerate(result.effects):
            if isinstance(effect, SubmitTransfer):
                await transfers.record_submission(session, svc, state=before,
                                                  sender_id=user_id, now=now)
                keys.append(await outbox.add_submit(session, reference=effect.reference,
                                                    sender_id=user_id, now=now))
            elif isinstance(effect, CancelTransfer):
                await repo.set_status(session, reference=effect.reference,
                                      status=TransferStatus.CANCELLED, now=now,
                                      only_from=[TransferStatus.DRAFT])
            elif isinstance(effect, DeleteFiles) and effect.paths:
                keys.append(await outbox.add_delete_files(
                    session, key=outbox.turn_key(conversation_id, saved, n),
                    reference=before.reference or after.reference, paths=effect.paths,
                    now=now))
        for entry in result.audit:
            await audit.append(session, at=now, actor=user_id, action=entry.action,
                               reference=entry.reference, details=entry.details)
        for near_miss in result.near_misses:
            await near_misses.record(session, svc, at=now, actor=user_id, near_miss=near_miss)
    return keys


async def current_state(svc: Services, *, conversation_id: str) -> State:
    async with svc.db.read() as session:
        loaded = await repo.load_conversation(session, conversation_id=conversation_id)
    return State.from_json(loaded[0] if loaded else None)


# --- commands ------------------------------------------------------------------------------


async def _ask_again(svc: Services, *, conversation_id: str, user_id: str) -> list[Reply]:
    """The replies that ask the conversation's current question again (or say it is idle),
    from the saved state; nothing is changed."""
    state = await current_state(svc, conversation_id=conversation_id)
    ctx = transfers.context_for(svc, user_id=user_id)
    if state.step in RECIPIENT_BOOK_STEPS:
        async with svc.db.read() as session:
            known = await repo.known_recipients(session, sender_id=user_id)
        ctx = replace(ctx, known_recipients=known)
    return engine.current_question(state, ctx)


async def current_question(svc: Services, *, conversation_id: str, user_id: str
                           ) -> Question | None:
    """The question the conversation waits on, rendered again from the saved state (a form
    with its saved values), or None when it waits on none; nothing is changed."""
    replies = await _ask_again(svc, conversation_id=conversation_id, user_id=user_id)
    return next((r for r in replies if isinstance(r, Ask | Choice | Form)), None)


def _status_lines(transfer: Any, sends: list[Any], approval: Any, svc: Services
                  ) -> list[str]:
    created = transfer.created_at.astimezone(svc.policy.timezone)
    lines = [msg.STATUS_LINE.format(
        reference=transfer.reference,
        status=msg.STATUS_LABELS.get(transfer.status, transfer.status),
        classification=transfer.classification or "not classified yet",
        files=plural(transfer.file_count, "file"), created=f"{created:%d %b %Y %H:%M}")]
    if approval is not None:
        by = f" by {approval.decided_by}" if approval.decided_by else ""
        lines.append(msg.STATUS_APPROVAL.format(status=approval.status, by=by))
    for d in sends:
        when = ""
        if d.due_at is not None and d.status == SendStatus.DUE:
            when = f" at {d.due_at.astimezone(svc.policy.timezone):%d %b %H:%M}"
        lines.append(msg.STATUS_DELIVERY.format(kind=d.kind, status=d.status, when=when))
    return lines


async def transfer_status(svc: Services, *, reference: str, user_id: str | None) -> str:
    """Status of one transfer, for its sender or one of its approvers (None: admin CLI)."""
    found = await access.transfer_for(svc, reference=reference, actor=user_id,
                                      role=access.Role.SENDER_OR_APPROVER, command="status")
    if found is None:
        return access.unknown(reference)
    async with svc.db.read() as session:
        sends = await repo.sends_for(session, reference=reference)
    return "\n".join(_status_lines(found.transfer, sends, found.approval, svc))


async def run_command(svc: Services, *, conversation_id: str, user_id: str, command: Command
                      ) -> list[Reply]:
    name, args = command.name, command.args
    if name == "help":
        return [Text(cmsg.HELP)]
    if name == "list":
        async with svc.db.read() as session:
            rows = await repo.recent_transfers(session, sender_id=user_id)
            if not rows:
                return [Text(msg.NO_TRANSFERS)]
            lines = [msg.LIST_HEADER]
            for t in rows:
                lines += _status_lines(t, [], None, svc)
        return [Text("\n".join(lines))]
    if name == "status":
        if args:
            ref = normalise_reference(args[0])
            return [Text(await transfer_status(svc, reference=ref, user_id=user_id))]
        return await _ask_again(svc, conversation_id=conversation_id, user_id=user_id)
    if name == "received":
        if not args:
            return [Text(msg.COMMAND_NEEDS_REFERENCE.format(command="received"))]
        return await scheduling.confirm_receipt(svc, reference=args[0], by=user_id)
    if name == "archive":
        return await transfers.archive_again(svc, reference=args[0], user_id=user_id)
    if name == "mistake":
        return await mistakes.report_mistake(svc, reference=args[0], user_id=user_id)
    if name == "call":
        return await scheduling.book_call(svc, reference=args[0], by=user_id, when_text=args[1])
    if name == "cancel":
        return await _ask_to_cancel(svc, conversation_id=conversation_id, user_id=user_id,
                                    reference=args[0])
    return [Text(cmsg.HELP)]


async def _ask_to_cancel(svc: Services, *, conversation_id: str, user_id: str,
                         reference: str) -> list[Reply]:
    """``cancel REF`` typed: the sender is asked to confirm (in the conversation's state)
    when the transfer is theirs and can still be cancelled; otherwise told why not."""
    state = await current_state(svc, conversation_id=conversation_id)
    if state.reference != reference:
        found = await access.transfer_for(svc, reference=reference, actor=user_id,
                                          role=access.Role.SENDER, command="cancel")
        if found is None:
            return [Text(access.unknown(reference))]
        if found.transfer.status not in CANCELLABLE:  # nothing to confirm: say why not
            return [Text(await cancel_by_sender(svc, reference=reference, user_id=user_id))]
    turn = await _take_turn(svc, conversation_id=conversation_id, user_id=user_id,
                            event=CancelRequest(reference))
    return turn.replies


async def cancel_by_sender(svc: Services, *, reference: str, user_id: str | None) -> str:
    """Only the sender (or an admin at the command line, ``user_id`` None) may cancel."""
    found = await access.transfer_for(svc, reference=reference, actor=user_id,
                                      role=access.Role.SENDER, command="cancel")
    if found is None:
        return access.unknown(reference)
    transfer = found.transfer
    if transfer.status == TransferStatus.DRAFT:
        # A draft belongs to a conversation: cancel through it so its state resets too.
        convs = await _conversations_holding(svc, reference, transfer.sender_id)
        for conv_id, owner in convs:
            await _take_turn(svc, conversation_id=conv_id, user_id=owner,
                             event=Answer("cancel", confirmed=True))
        if convs:
            return msg.CANCELLED_REF.format(reference=reference)
    # What had gone out already, read before the cancel stops what had not.
    before = await mistakes.reached_now(svc, reference=reference)
    if await transfers.cancel(svc, reference=reference, by=user_id or "admin"):
        if before is not None and before.packaged:
            return mistakes.finished_cancel_text(reference, before)
        return msg.CANCELLED_REF.format(reference=reference)
    if transfer.status == TransferStatus.CANCELLED:
        return msg.ALREADY_CANCELLED.format(reference=reference)
    label = msg.STATUS_LABELS.get(transfer.status, transfer.status)
    text = msg.CANNOT_CANCEL.format(reference=reference, status=label)
    if before is not None and before.packaged and transfer.status != TransferStatus.WITHDRAWN:
        text += "\n" + imsg.POINT_TO_MISTAKE.format(reference=reference)
    return text


async def _conversations_holding(svc: Services, reference: str, sender_id: str
                                 ) -> list[tuple[str, str]]:
    async with svc.db.read() as session:
        saved = await repo.conversations_of(session, user_id=sender_id)
    return [(c.id, c.user_id) for c in saved if c.state.get("reference") == reference]
