"""``safehaven share``: the guided conversation answered from command-line flags.

Each question the core asks is answered from the flag for its step
(:class:`bot.statuses.Step`). No answer that goes on the record is made up: before any file
is read, :func:`check_flags` stops the command (exit code 2, as for any bad command line)
naming each option left out or given a value the policy does not offer, with its choices.
Only two questions may be left to the flow: the delivery method takes the policy's default
for the classification (``default_delivery``, a rule of the policy, said so in ``--help``),
and the summary is confirmed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from bot.app.process import EXIT_INVALID, out
from bot.chunks import write_chunks
from bot.events import Answer, FilesReceived
from bot.file_intake import name_warning
from bot.messages import console as console_msg
from bot.messages import conversation as conversation_msg
from bot.messages import share as share_msg
from bot.options import CHANGE_PHONE
from bot.policy_rules import Policy
from bot.private import private_dir
from bot.replies import Choice, FileReply, Form, OptionRole, Question, Reply
from bot.statuses import PasswordMethod, Step
from channels.console.render import render
from handlers import overview
from handlers.archive_reads import legacy_path, opener
from handlers.conversation import current_state, take_turn
from handlers.intake import stage_local_file
from handlers.notify import deliver_held
from handlers.services import Services

AnswerValue = str | dict[str, str]
EXIT_USAGE = 2  # a command line that cannot be used, as argparse exits


def _quoted(choices: Sequence[str]) -> str:
    """``'a', 'b'``: each as typed after its flag (an enum member by its value)."""
    return ", ".join(repr(str(c)) for c in choices)


def check_flags(args: argparse.Namespace, policy: Policy) -> list[str]:
    """Why the flags cannot be used, one line each naming the option and its choices:
    every answer that goes on the record must be given (none is filled in by default)."""
    problems: list[str] = []

    def one_of(flag: str, value: str | None, choices: Sequence[str]) -> bool:
        if value is None:
            problems.append(share_msg.FLAG_REQUIRED.format(flag=flag, choices=_quoted(choices)))
            return False
        if value not in choices:
            problems.append(share_msg.FLAG_NOT_ONE_OF.format(flag=flag, value=value,
                                                             choices=_quoted(choices)))
            return False
        return True

    levels = [level.name for level in policy.levels]
    level = policy.level(args.classification) \
        if one_of("--classification", args.classification, levels) else None
    keys = [c.key for c in policy.information_categories]
    if keys:
        for key in args.categories or [None]:
            one_of("--category", key, keys)
    one_of("--lawful-basis", args.lawful_basis, policy.lawful_bases)
    if args.onward_sharing is None:
        problems.append(share_msg.FLAG_REQUIRED_FREE.format(flag="--onward-sharing",
                                                            what=share_msg.ONWARD_WHAT))
    if not args.delete_after_use:
        problems.append(share_msg.FLAG_REQUIRED_FREE.format(
            flag="--delete-after-use", what=share_msg.DELETE_AFTER_USE_WHAT))
    methods = [m.value for m in level.password_methods] if level else \
        [m.value for m in PasswordMethod]
    if one_of("--password-via", args.password_via, methods) \
            and args.password_via == PasswordMethod.VOICE and not args.call_at:
        problems.append(share_msg.CALL_AT_REQUIRED.format(example="2026-11-24T10:00"))
    if level is not None and args.delivery is not None \
            and args.delivery not in level.delivery_methods:
        problems.append(share_msg.FLAG_NOT_FOR_LEVEL.format(
            flag="--delivery", value=args.delivery, level=level.name,
            choices=_quoted([m.value for m in level.delivery_methods])))
    return problems


def _recipient(args: argparse.Namespace) -> AnswerValue:
    return {"name": args.recipient_name, "job_title": args.recipient_title,
            "department": args.recipient_department or "",
            "organisation": args.recipient_org, "email": args.recipient_email,
            "phone": args.recipient_phone}


def _consent(args: argparse.Namespace) -> AnswerValue:
    return {"use_limits": args.consent, "onward_sharing": args.onward_sharing or "",
            "delete_after_use": "yes" if args.delete_after_use else ""}


def _new_recipient(question: Question) -> AnswerValue:
    """Always a new recipient, described by the flags (never one the sender used before)."""
    assert isinstance(question, Choice)
    return next(o.value for o in question.options
                if o.label == conversation_msg.NEW_RECIPIENT)


# The answer each step takes from the flags; None: the flag was not given.
FROM_FLAGS: dict[Step, Callable[[argparse.Namespace], AnswerValue | None]] = {
    Step.CLASSIFICATION: lambda a: a.classification,
    Step.INFORMATION_CATEGORIES: lambda a: ",".join(a.categories) if a.categories else None,
    Step.RECIPIENT: _recipient,
    Step.PURPOSE: lambda a: a.purpose,
    Step.LAWFUL_BASIS: lambda a: a.lawful_basis,
    Step.CONSENT: _consent,
    Step.DELIVERY: lambda a: a.delivery,
    Step.PASSWORD_METHOD: lambda a: a.password_via,
    Step.CALL_TIME: lambda a: a.call_at or "",
}


# The questions the flags may leave open: the policy's default delivery for the level, and
# confirming the summary (its primary option).
LEFT_TO_THE_FLOW = (Step.DELIVERY, Step.CONFIRM)


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
    if isinstance(question, Choice) and step in LEFT_TO_THE_FLOW:
        return _leading_option(question)
    # check_flags refuses a command line that leaves any other question open.
    raise RuntimeError(f"no flag answers the question {step}")


# The option that answers each question (FROM_FLAGS), and each field of its forms.
STEP_FLAGS: dict[Step, str] = {
    Step.CLASSIFICATION: "--classification", Step.INFORMATION_CATEGORIES: "--category",
    Step.PURPOSE: "--purpose", Step.LAWFUL_BASIS: "--lawful-basis", Step.DELIVERY: "--delivery",
    Step.PASSWORD_METHOD: "--password-via", Step.CALL_TIME: "--call-at",
}
# Options that leave a question for another (not values of its flag), by the flag that
# gives that other answer.
NAVIGATION_FLAGS: dict[str, str] = {CHANGE_PHONE: "--recipient-phone"}
_NAVIGATION = (OptionRole.BACK, OptionRole.CANCEL)
FIELD_FLAGS = {
    "name": "--recipient-name", "job_title": "--recipient-title",
    "department": "--recipient-department", "organisation": "--recipient-org",
    "email": "--recipient-email", "phone": "--recipient-phone", "use_limits": "--consent",
    "onward_sharing": "--onward-sharing", "delete_after_use": "--delete-after-use",
}


def refusals(asked: Question | None, error: str) -> list[str]:
    """The conversation's refusal of a flag's value, each line naming the option (and
    the choices, for a question with options)."""
    if isinstance(asked, Form) and any(f.error for f in asked.fields):
        return [share_msg.FLAG_REFUSED.format(flag=FIELD_FLAGS.get(f.name, f.name),
                                              error=f.error)
                for f in asked.fields if f.error]
    try:
        flag = STEP_FLAGS.get(Step(asked.question)) if asked is not None else None
    except ValueError:
        flag = None
    if flag is None:
        return [error]
    if isinstance(asked, Choice) and asked.options:
        # Only the values the flag takes; a way out of the question (back, cancel, change
        # the phone) is not one, but a flag it stands for is named.
        values = [o.value for o in asked.options if o.role not in _NAVIGATION
                  and o.value not in NAVIGATION_FLAGS]
        others = "".join(share_msg.FLAG_OR_CHANGE.format(flag=NAVIGATION_FLAGS[o.value])
                         for o in asked.options if o.value in NAVIGATION_FLAGS)
        if not values:
            return [share_msg.FLAG_REFUSED.format(flag=flag, error=error) + others]
        return [share_msg.FLAG_REFUSED_CHOICES.format(
            flag=flag, error=error, choices=_quoted(values)) + others]
    return [share_msg.FLAG_REFUSED.format(flag=flag, error=error)]


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
    archive = await opener(svc)(reply.reference)
    if archive is None:
        out(f"error: the archive of {reply.reference} is no longer kept")
        return
    await write_chunks(archive.chunks, target)
    out(f"archive: {target}")


async def share(svc: Services, args: argparse.Namespace) -> int:
    """Take the files through the conversation; print what it said and the reference."""
    problems = check_flags(args, svc.policy)
    if problems:
        for problem in problems:
            sys.stderr.write(f"safehaven share: error: {problem}\n")
        return EXIT_USAGE
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
    for entry in (await current_state(svc, conversation_id=conversation_id)).files:
        warning = name_warning(entry)  # the chat's warning, by the same rules
        if warning:
            sys.stderr.write(warning + "\n")
    reference: str | None = None
    while True:
        for reply in turn.replies:
            if isinstance(reply, FileReply):
                await _hand_back(svc, reply, args)
        text_lines = [render(r) for r in turn.replies if not isinstance(r, FileReply)]
        if reference is None:
            reference = (await current_state(svc, conversation_id=conversation_id)).reference
        if turn.error:
            for line in refusals(_pending(turn.replies), turn.error):
                out(f"error: {line}")
            if reference:
                await take_turn(svc, conversation_id=conversation_id, user_id=args.sender,
                                event=Answer("cancel", confirmed=True))
            return EXIT_INVALID
        pending = _pending(turn.replies)
        if pending is None:
            out("\n".join(text_lines if args.verbose else [line for line in text_lines
                                                             if line]))
            if reference:
                out(f"reference: {reference}")
                if await overview.approvers_of(svc, reference=reference) is not None:
                    out(console_msg.SHARE_LATER)
            return 0
        turn = await take_turn(svc, conversation_id=conversation_id, user_id=args.sender,
                               event=Answer(share_answer(pending, args), pending.question))
