"""The ``safehaven`` command line: serve, chat, share, approve, status, cancel, audit.

Every command uses the same settings, policy, engine and store as the chat channels, so a
transfer started in one place can be followed or decided in another.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.app.config import Config, load_config
from bot.app.runtime import build_runtime, configure_logging
from bot.events import Answer, FilesReceived
from bot.policy import PolicyError
from bot.private import UMASK, copy_private, open_private, private_dir
from bot.reference import normalise_reference
from bot.replies import Ask, Choice, FileReply, Form, Reply
from bot.settings import SettingsError
from bot.statuses import DeliveryMethod, PasswordMethod
from bot.vault import generate_key
from channels.console.render import render
from channels.teams.package import add_teams_package_parser, cmd_teams_package
from handlers import approvals, housekeeping
from handlers.conversation import cancel_by_sender, take_turn, transfer_status
from handlers.delivery.scheduling import confirm_receipt
from handlers.intake import stage_local_file
from handlers.notify import deliver_held
from handlers.services import Services, close_transport
from store import audit
from store.db import migrate, migrate_async

EXIT_INVALID = 1
EXIT_CONFIG = 2
# Commands that talk to no channel and read only the core settings.
CORE_ONLY = ("generate-key", "migrate", "teams-package")


def _default_user() -> str:
    return f"console:{getpass.getuser()}"


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


async def _with_services(config: Config, job: Any) -> int:
    await migrate_async(config.core.database_url)
    svc = build_runtime(config).svc
    try:
        result: int = await job(svc)
        return result
    finally:
        await svc.db.close()
        await close_transport(svc)
        await svc.inspector.close()


# --- serve / worker ------------------------------------------------------------------------


def cmd_serve(config: Config, args: argparse.Namespace) -> int:
    from aiohttp import web

    from bot.app.web import create_app
    from channels.portal import RedactingAccessLogger

    settings = config.core
    runtime = build_runtime(config)
    svc = runtime.svc
    app = create_app(svc, plugins=runtime.plugins,
                     scheduler=False if args.no_scheduler else None)
    _out(f"Safe Haven serving on http://{settings.host}:{settings.port} "
         f"(policy: {svc.policy.source}; database: {settings.database_url.split('://')[0]})")
    for plugin in runtime.plugins:
        for line in plugin.describe():
            _out(line)
    web.run_app(app, host=settings.host, port=settings.port, print=None,
                access_log_class=RedactingAccessLogger)
    return 0


async def _worker(svc: Services, *, exit_when_idle: bool = False) -> int:
    """The scheduler alone. Several workers may share one PostgreSQL: each delivery is
    claimed by exactly one of them."""
    _out("Safe Haven scheduler running; Ctrl-C to stop.")
    while True:
        await housekeeping.tick(svc)
        if exit_when_idle and not await housekeeping.work_pending(svc):
            return 0
        await asyncio.sleep(svc.settings.scheduler_interval_seconds)


# --- chat ----------------------------------------------------------------------------------


async def _read_line(prompt: str) -> str | None:
    try:
        return await asyncio.to_thread(input, prompt)
    except EOFError:
        return None


def cmd_chat(config: Config, args: argparse.Namespace) -> int:
    from channels.console.chat import run_chat

    async def job(svc: Services) -> int:
        return await run_chat(svc, user_id=args.sender, files=[Path(f) for f in args.files],
                              read=_read_line, out=sys.stdout)

    return asyncio.run(_with_services(config, job))


# --- share (non-interactive) ---------------------------------------------------------------


def _pending(replies: Sequence[Reply]) -> Choice | Ask | Form | None:
    for reply in reversed(replies):
        if isinstance(reply, Choice | Ask | Form):
            return reply
    return None


def _share_answer(pending: Choice | Ask | Form, args: argparse.Namespace
                  ) -> str | dict[str, str]:
    q = pending.question
    if q == "classification":
        return str(args.classification)
    if q == "recipient_pick":
        return "new"
    if q == "recipient":
        phone = args.recipient_phone
        return {"name": args.recipient_name, "job_title": args.recipient_title,
                "organisation": args.recipient_org, "email": args.recipient_email,
                "phone": phone}
    if q == "purpose":
        return str(args.purpose)
    if q == "lawful_basis":
        assert isinstance(pending, Choice)
        return str(args.lawful_basis or pending.options[0].value)
    if q == "consent":
        return {"use_limits": args.consent,
                "onward_sharing": "yes" if args.onward_sharing else "no",
                "delete_after_use": "yes"}
    if q == "delivery":
        assert isinstance(pending, Choice)
        return str(args.delivery or pending.default or pending.options[0].value)
    if q == "password_method":
        assert isinstance(pending, Choice)
        return str(args.password_via or pending.options[0].value)
    if q == "call_time":
        return str(args.call_at or "")
    if q == "confirm":
        return "confirm"
    raise RuntimeError(f"unexpected question {q}")


async def _share(svc: Services, args: argparse.Namespace) -> int:
    for f in args.files:
        if not Path(f).is_file():
            _out(f"error: {f} is not a readable file")
            return EXIT_INVALID
    for held in await deliver_held(svc, user_id=args.sender):
        _out(render(held))
    staged = [await asyncio.to_thread(stage_local_file, svc.settings, Path(f))
              for f in args.files]
    conversation_id = f"cli:{args.sender}:{datetime.now(UTC).timestamp()}"
    turn = await take_turn(svc, conversation_id=conversation_id, user_id=args.sender,
                           event=FilesReceived(tuple(staged)))
    reference: str | None = None
    while True:
        for reply in turn.replies:
            if isinstance(reply, FileReply):
                target = reply.path
                if args.out:
                    target = private_dir(Path(args.out), own=False) / reply.filename
                    await asyncio.to_thread(copy_private, reply.path, target)
                _out(f"archive: {target}")
        text_lines = [render(r) for r in turn.replies if not isinstance(r, FileReply)]
        if turn.error:
            _out(f"error: {turn.error}")
            if reference:
                await take_turn(svc, conversation_id=conversation_id, user_id=args.sender,
                                event=Answer("cancel"))
            return EXIT_INVALID
        pending = _pending(turn.replies)
        if reference is None:
            reference = next((w.strip(":,") for line in text_lines for w in line.split()
                              if w.startswith("SH-")), None)
        if pending is None:
            if args.verbose:
                _out("\n".join(text_lines))
            else:
                _out("\n".join(line for line in text_lines if line))
            if reference:
                _out(f"reference: {reference}")
            return 0
        turn = await take_turn(svc, conversation_id=conversation_id, user_id=args.sender,
                               event=Answer(_share_answer(pending, args), pending.question))


def cmd_share(config: Config, args: argparse.Namespace) -> int:
    return asyncio.run(_with_services(config, lambda svc: _share(svc, args)))


# --- approve / status / cancel / received --------------------------------------------------


def cmd_approve(config: Config, args: argparse.Namespace) -> int:
    async def job(svc: Services) -> int:
        replies = await approvals.decide(
            svc, approver_id=args.approver, reference=normalise_reference(args.reference),
            approve=not args.reject, reason=args.reason or "")
        for r in replies:
            _out(render(r))
        return 0 if replies and "Recorded" in render(replies[0]) else EXIT_INVALID

    return asyncio.run(_with_services(config, job))


def cmd_status(config: Config, args: argparse.Namespace) -> int:
    async def job(svc: Services) -> int:
        _out(await transfer_status(svc, reference=normalise_reference(args.reference),
                                   user_id=None))
        return 0

    return asyncio.run(_with_services(config, job))


def cmd_cancel(config: Config, args: argparse.Namespace) -> int:
    async def job(svc: Services) -> int:
        text = await cancel_by_sender(svc, reference=normalise_reference(args.reference),
                                      user_id=args.sender)
        _out(text)
        return 0 if "is cancelled" in text else EXIT_INVALID

    return asyncio.run(_with_services(config, job))


def cmd_received(config: Config, args: argparse.Namespace) -> int:
    async def job(svc: Services) -> int:
        for r in await confirm_receipt(svc, reference=normalise_reference(args.reference),
                                       by=args.sender):
            _out(render(r))
        return 0

    return asyncio.run(_with_services(config, job))


# --- audit ---------------------------------------------------------------------------------


def cmd_audit_verify(config: Config, args: argparse.Namespace) -> int:
    async def job(svc: Services) -> int:
        async with svc.db.read() as session:
            result = await audit.verify(session)
        if result.ok:
            _out(f"audit trail intact: {result.records} records, hash chain verified")
            return 0
        _out(f"audit trail BROKEN at record {result.first_broken}: {result.problem}")
        return EXIT_INVALID

    return asyncio.run(_with_services(config, job))


def _parse_since(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise SettingsError(f"--since {text!r} is not a date; use YYYY-MM-DD") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def cmd_audit_export(config: Config, args: argparse.Namespace) -> int:
    since = _parse_since(args.since) if args.since else None

    async def job(svc: Services) -> int:
        out = (open_private(Path(args.out), "w", encoding="utf-8", newline="") if args.out
               else sys.stdout)
        try:
            async with svc.db.read() as session:
                async for chunk in audit.export(session, since=since, fmt=args.format):
                    out.write(chunk)
        finally:
            if out is not sys.stdout:
                out.close()
        return 0

    return asyncio.run(_with_services(config, job))


def cmd_migrate(config: Config, args: argparse.Namespace) -> int:
    migrate(config.core.database_url)
    _out("database is up to date")
    return 0


def cmd_generate_key(config: Config, args: argparse.Namespace) -> int:
    _out(generate_key())
    return 0


# --- parser --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="safehaven", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the HTTP server (channels, health, scheduler)")
    s.add_argument("--no-scheduler", action="store_true",
                   help="do not run password deliveries and expiry in this process")
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("worker", help="run only the scheduler (deliveries, expiry)")
    s.add_argument("--exit-when-idle", action="store_true",
                   help="stop once no delivery is due (for batch runs and tests)")
    s.set_defaults(func=lambda config, a: asyncio.run(_with_services(
        config, lambda svc: _worker(svc, exit_when_idle=a.exit_when_idle))))

    s = sub.add_parser("migrate", help="create or upgrade the database schema")
    s.set_defaults(func=cmd_migrate)

    s = sub.add_parser("generate-key", help="print a new SAFEHAVEN_SECRET_KEY")
    s.set_defaults(func=cmd_generate_key)

    add_teams_package_parser(sub).set_defaults(
        func=lambda config, a: cmd_teams_package(config.core, a))

    s = sub.add_parser("chat", help="the guided conversation in this terminal")
    s.add_argument("files", nargs="*", help="files to share (none: carry on where you were)")
    s.add_argument("--sender", default=_default_user(), help="who you are (console:NAME)")
    s.set_defaults(func=cmd_chat)

    s = sub.add_parser("share", help="the same flow without questions (for scripts)")
    s.add_argument("files", nargs="+")
    s.add_argument("--classification", required=True)
    s.add_argument("--recipient-name", required=True)
    s.add_argument("--recipient-title", required=True)
    s.add_argument("--recipient-org", required=True)
    s.add_argument("--recipient-email", required=True)
    s.add_argument("--recipient-phone", required=True)
    s.add_argument("--purpose", required=True)
    s.add_argument("--consent", required=True, help="what the recipient may do with it")
    s.add_argument("--onward-sharing", action="store_true",
                   help="the recipient may share it onward (default: not allowed)")
    s.add_argument("--lawful-basis")
    s.add_argument("--password-via", choices=[m.value for m in PasswordMethod])
    s.add_argument("--call-at", help="ISO-8601 time agreed for the password call")
    s.add_argument("--delivery", choices=[m.value for m in DeliveryMethod])
    s.add_argument("--sender", default=_default_user())
    s.add_argument("--out", help="copy the archive into this folder")
    s.add_argument("--verbose", action="store_true")
    s.set_defaults(func=cmd_share)

    s = sub.add_parser("approve", help="approve (or --reject) a transfer waiting for you")
    s.add_argument("reference")
    s.add_argument("--approver", required=True)
    s.add_argument("--reject", action="store_true")
    s.add_argument("--reason", default="")
    s.set_defaults(func=cmd_approve)

    s = sub.add_parser("status", help="where a transfer is")
    s.add_argument("reference")
    s.set_defaults(func=cmd_status)

    s = sub.add_parser("cancel", help="cancel an unfinished transfer")
    s.add_argument("reference")
    s.add_argument("--sender", default=None,
                   help="act as this sender (default: as an administrator)")
    s.set_defaults(func=cmd_cancel)

    s = sub.add_parser("received", help="the recipient has the archive: send the SMS password")
    s.add_argument("reference")
    s.add_argument("--sender", default=_default_user())
    s.set_defaults(func=cmd_received)

    a = sub.add_parser("audit", help="verify or export the audit trail")
    asub = a.add_subparsers(dest="audit_command", required=True)
    s = asub.add_parser("verify", help="check the hash chain")
    s.set_defaults(func=cmd_audit_verify)
    s = asub.add_parser("export", help="write the records as CSV or JSON lines")
    s.add_argument("--since", help="YYYY-MM-DD (UTC) or an ISO-8601 time")
    s.add_argument("--format", choices=("csv", "json"), default="csv")
    s.add_argument("--out", help="file to write (default: standard output)")
    s.set_defaults(func=cmd_audit_export)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    # What Safe Haven writes is for this account only (bot/private.py): files created
    # without an explicit mode still come out 0600, folders 0700.
    os.umask(UMASK)
    args = build_parser().parse_args(argv)
    try:
        config = load_config(channels=args.command not in CORE_ONLY)
        if args.command not in ("generate-key",):
            configure_logging(config.core)
        code: int = args.func(config, args)
        return code
    except (SettingsError, PolicyError) as exc:
        sys.stderr.write(f"safehaven: {exc}\n")
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
