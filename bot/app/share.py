"""``safehaven share``: the guided conversation answered from command-line flags.

Each question the core asks is answered from the flag for its step
(:class:`bot.statuses.Step`); a choice the flags leave open takes the option the question
leads with (its primary option, as confirm's), else its default, else its first option.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from bot.app.process import EXIT_INVALID, out
from bot.chunks import write_chunks
from bot.events import Answer, FilesReceived
from bot.messages import conversation as conversation_msg
from bot.private import private_dir
from bot.replies import Choice, FileReply, OptionRole, Question, Reply
from bot.statuses import Step
from channels.console.render import render
from handlers.archive_reads import legacy_path, open_archive
from handlers.conversation import current_state, take_turn
from handlers.intake import stage_local_file
from handlers.notify import deliver_held
from handlers.services import Services

AnswerValue = str | dict[str, str]


def _recipient(args: argparse.Namespace) -> AnswerValue:
    return {"name": args.recipient_name, "job_title": args.recipient_title,
            "organisation": args.recipient_org, "email": args.recipient_email,
            "phone": args.recipient_phone}


def _consent(args: argparse.Namespace) -> AnswerValue:
    return {"use_limits": args.consent, "onward_sharing": "yes" if args.onward_sharing else "no",
            "delete_after_use": "yes"}


def _new_recipient(question: Question) -> AnswerValue:
    """Always a new recipient, described by the flags (never one the sender used before)."""
    assert isinstance(question, Choice)
    return next(o.value for o in question.options
                if o.label == conversation_msg.NEW_RECIPIENT)


# The answer each step takes from the flags; None: the flag was not given.
FROM_FLAGS: dict[Step, Callable[[argparse.Namespace], AnswerValue | None]] = {
    Step.CLASSIFICATION: lambda a: a.classification,
    Step.RECIPIENT: _recipient,
    Step.PURPOSE: lambda a: a.purpose,
    Step.LAWFUL_BASIS: lambda a: a.lawful_basis,
    Step.CONSENT: _consent,
    Step.DELIVERY: lambda a: a.delivery,
    Step.PASSWORD_METHOD: lambda a: a.password_via,
    Step.CALL_TIME: lambda a: a.call_at or "",
}


def _leading_option(choice: Choice) -> str:
    primary = next((o.value for o in choice.options if o.role is OptionRole.PRIMARY), None)
    return primary or choice.default or choice.options[0].value


def share_answer(question: Question, args: argparse.Namespace) -> AnswerValue:
    """The answer the flags give ``question``."""
    step = Step(question.question)
    if step is Step.RECIPIENT_PICK:
        return _new_recipient(question)
    read = FROM_FLAGS.get(step)
    given = read(args) if read is not None else None
    if given is not None:
        return str(given) if isinstance(given, str) else given
    if isinstance(question, Choice):
        return _leading_option(question)
    raise RuntimeError(f"no flag answers the question {step}")


def _pending(replies: Sequence[Reply]) -> Question | None:
    return next((r for r in reversed(replies) if isinstance(r, Question)), None)


async def _hand_back(svc: Services, reply: FileReply, args: argparse.Namespace) -> None:
    """Write the archive out of the object store into ``--out`` (default: this host's
    archives folder) and print where it is."""
    folder = Path(args.out) if args.out else svc.settings.archives_dir
    target = private_dir(folder, own=not args.out) / reply.filename
    if target == legacy_path(svc.settings.archives_dir, reply.reference) \
            and await asyncio.to_thread(target.is_file):
        out(f"archive: {target}")  # packaged here before archives went into the store
        return
    archive = await open_archive(svc.objects, svc.settings.archives_dir, reply.reference)
    if archive is None:
        out(f"error: the archive of {reply.reference} is no longer kept")
        return
    await write_chunks(archive.chunks, target)
    out(f"archive: {target}")


async def share(svc: Services, args: argparse.Namespace) -> int:
    """Take the files through the conversation; print what it said and the reference."""
    for f in args.files:
        if not await asyncio.to_thread(Path(f).is_file):
            out(f"error: {f} is not a readable file")
            return EXIT_INVALID
    for held in await deliver_held(svc, user_id=args.sender):
        out(render(held))
    staged = [await asyncio.to_thread(stage_local_file, svc.settings, Path(f))
              for f in args.files]
    conversation_id = f"cli:{args.sender}:{datetime.now(UTC).timestamp()}"
    turn = await take_turn(svc, conversation_id=conversation_id, user_id=args.sender,
                           event=FilesReceived(tuple(staged)))
    reference: str | None = None
    while True:
        for reply in turn.replies:
            if isinstance(reply, FileReply):
                await _hand_back(svc, reply, args)
        text_lines = [render(r) for r in turn.replies if not isinstance(r, FileReply)]
        if reference is None:
            reference = (await current_state(svc, conversation_id=conversation_id)).reference
        if turn.error:
            out(f"error: {turn.error}")
            if reference:
                await take_turn(svc, conversation_id=conversation_id, user_id=args.sender,
                                event=Answer("cancel"))
            return EXIT_INVALID
        pending = _pending(turn.replies)
        if pending is None:
            out("\n".join(text_lines if args.verbose else [line for line in text_lines
                                                             if line]))
            if reference:
                out(f"reference: {reference}")
            return 0
        turn = await take_turn(svc, conversation_id=conversation_id, user_id=args.sender,
                               event=Answer(share_answer(pending, args), pending.question))
