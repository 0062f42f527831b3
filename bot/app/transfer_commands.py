"""The commands that act on transfers: ``chat``, ``share``, ``approve``, ``status``,
``cancel`` and ``received``, through the same handlers as the chat channels."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.app.config import Config
from bot.app.process import EXIT_INVALID, console_only, out, run_with_services
from bot.app.share import EXIT_USAGE, share
from bot.messages import console as say
from bot.reference import is_reference, normalise_reference
from bot.replies import DecisionNote
from channels.console.notifier import PREFIX as CONSOLE
from channels.console.notifier import ConsoleNotifier
from channels.console.render import render
from handlers import approvals
from handlers.conversation import cancel_by_sender, transfer_status
from handlers.notify import NotifierRouter, deliver_held
from handlers.password_sends.scheduling import confirm_receipt
from handlers.services import Services


def reference_arg(text: str) -> str:
    """A reference given on the command line, normalised; argparse names the argument and
    the form a reference takes when it is not one."""
    if not is_reference(text):
        raise argparse.ArgumentTypeError(say.NOT_A_REFERENCE.format(value=text))
    return normalise_reference(text)


def at_terminal(svc: Services, user_id: str | None) -> None:
    """Tell the console notifier who is at this terminal: their messages are printed here,
    everyone else's kept for them (none: an administrator, whose terminal shows nobody's)."""
    router = svc.notifier
    console = router.routes.get(CONSOLE) if isinstance(router, NotifierRouter) else None
    if isinstance(console, ConsoleNotifier):
        console.at_terminal(svc.policy.person_of(user_id).ids if user_id else ())


async def show_held(svc: Services, user_id: str) -> None:
    """Print what was kept for ``user_id`` since they last ran a command."""
    for reply in await deliver_held(svc, user_id=user_id):
        out(render(reply))


def cmd_chat(config: Config, args: argparse.Namespace) -> int:
    """The chat; Ctrl-C stops it at once with exit code 130 (``main`` gives it for the
    KeyboardInterrupt ``asyncio.run`` raises once the chat is cancelled)."""
    from channels.console.chat import LineReader, run_chat

    for name in args.files:
        if not Path(name).is_file():
            sys.stderr.write("safehaven chat: error: argument files: "
                             f"{say.NOT_A_FILE.format(value=name)}\n")
            return EXIT_USAGE
    refused = console_only(config, "chat", "--sender", args.sender)
    if refused is not None:
        return refused

    async def job(svc: Services) -> int:
        at_terminal(svc, args.sender)
        read = LineReader(sys.stdin.fileno(), sys.stdout)
        return await run_chat(svc, user_id=args.sender, files=[Path(f) for f in args.files],
                              read=read, out=sys.stdout)

    return run_with_services(config, job)


def cmd_share(config: Config, args: argparse.Namespace) -> int:
    refused = console_only(config, "share", "--sender", args.sender)
    if refused is not None:
        return refused

    async def job(svc: Services) -> int:
        at_terminal(svc, args.sender)
        return await share(svc, args)

    return run_with_services(config, job)


def cmd_approve(config: Config, args: argparse.Namespace) -> int:
    if args.reject and not args.reason.strip():
        sys.stderr.write(f"safehaven approve: error: {say.REASON_NEEDED}\n")
        return EXIT_USAGE
    refused = console_only(config, "approve", "--approver", args.approver)
    if refused is not None:
        return refused

    async def job(svc: Services) -> int:
        at_terminal(svc, args.approver)
        replies = await approvals.decide(
            svc, approver_id=args.approver, reference=normalise_reference(args.reference),
            approve=not args.reject, reason=args.reason or "")
        for r in replies:
            out(render(r))
        await show_held(svc, args.approver)  # theirs alone (the decided request is dropped)
        return 0 if replies and isinstance(replies[0], DecisionNote) else EXIT_INVALID

    return run_with_services(config, job)


def cmd_status(config: Config, args: argparse.Namespace) -> int:
    async def job(svc: Services) -> int:
        out(await transfer_status(svc, reference=normalise_reference(args.reference),
                                  user_id=None))
        return 0

    return run_with_services(config, job)


def cmd_cancel(config: Config, args: argparse.Namespace) -> int:
    refused = console_only(config, "cancel", "--sender", args.sender)
    if refused is not None:
        return refused

    async def job(svc: Services) -> int:
        at_terminal(svc, args.sender)
        text = await cancel_by_sender(svc, reference=normalise_reference(args.reference),
                                      user_id=args.sender)
        out(text)
        return 0 if "is cancelled" in text else EXIT_INVALID

    return run_with_services(config, job)


def cmd_received(config: Config, args: argparse.Namespace) -> int:
    refused = console_only(config, "received", "--sender", args.sender)
    if refused is not None:
        return refused

    async def job(svc: Services) -> int:
        at_terminal(svc, args.sender)
        await show_held(svc, args.sender)
        for r in await confirm_receipt(svc, reference=normalise_reference(args.reference),
                                       by=args.sender):
            out(render(r))
        return 0

    return run_with_services(config, job)
