"""The commands that act on transfers: ``chat``, ``share``, ``approve``, ``status``,
``cancel`` and ``received``, through the same handlers as the chat channels."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.app.config import Config
from bot.app.process import EXIT_INVALID, out, run_with_services
from bot.app.share import share
from bot.reference import normalise_reference
from bot.replies import DecisionNote
from channels.console.render import render
from handlers import approvals
from handlers.conversation import cancel_by_sender, transfer_status
from handlers.password_sends.scheduling import confirm_receipt
from handlers.services import Services


def cmd_chat(config: Config, args: argparse.Namespace) -> int:
    """The chat; Ctrl-C stops it at once with exit code 130 (``main`` gives it for the
    KeyboardInterrupt ``asyncio.run`` raises once the chat is cancelled)."""
    from channels.console.chat import LineReader, run_chat

    async def job(svc: Services) -> int:
        read = LineReader(sys.stdin.fileno(), sys.stdout)
        return await run_chat(svc, user_id=args.sender, files=[Path(f) for f in args.files],
                              read=read, out=sys.stdout)

    return run_with_services(config, job)


def cmd_share(config: Config, args: argparse.Namespace) -> int:
    return run_with_services(config, lambda svc: share(svc, args))


def cmd_approve(config: Config, args: argparse.Namespace) -> int:
    async def job(svc: Services) -> int:
        replies = await approvals.decide(
            svc, approver_id=args.approver, reference=normalise_reference(args.reference),
            approve=not args.reject, reason=args.reason or "")
        for r in replies:
            out(render(r))
        return 0 if replies and isinstance(replies[0], DecisionNote) else EXIT_INVALID

    return run_with_services(config, job)


def cmd_status(config: Config, args: argparse.Namespace) -> int:
    async def job(svc: Services) -> int:
        out(await transfer_status(svc, reference=normalise_reference(args.reference),
                                  user_id=None))
        return 0

    return run_with_services(config, job)


def cmd_cancel(config: Config, args: argparse.Namespace) -> int:
    async def job(svc: Services) -> int:
        text = await cancel_by_sender(svc, reference=normalise_reference(args.reference),
                                      user_id=args.sender)
        out(text)
        return 0 if "is cancelled" in text else EXIT_INVALID

    return run_with_services(config, job)


def cmd_received(config: Config, args: argparse.Namespace) -> int:
    async def job(svc: Services) -> int:
        for r in await confirm_receipt(svc, reference=normalise_reference(args.reference),
                                       by=args.sender):
            out(render(r))
        return 0

    return run_with_services(config, job)
