"""The administrator's commands: ``migrate``, ``generate-key``, ``audit verify`` and
``audit export`` (the only place the audit trail is exported)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from bot.app.config import Config
from bot.app.process import EXIT_INVALID, out, run_with_services
from bot.private import open_private
from bot.settings import SettingsError
from bot.vault import generate_key
from handlers.services import Services
from store import audit
from store.db import migrate


def cmd_migrate(config: Config, args: argparse.Namespace) -> int:
    migrate(config.core.database_url)
    out("database is up to date")
    return 0


def cmd_generate_key(config: Config, args: argparse.Namespace) -> int:
    out(generate_key())
    return 0


def cmd_audit_verify(config: Config, args: argparse.Namespace) -> int:
    async def job(svc: Services) -> int:
        async with svc.db.read() as session:
            result = await audit.verify(session)
        if result.ok:
            out(f"audit trail intact: {result.records} records, hash chain verified")
            return 0
        out(f"audit trail BROKEN at record {result.first_broken}: {result.problem}")
        return EXIT_INVALID

    return run_with_services(config, job)


def _parse_since(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise SettingsError(f"--since {text!r} is not a date; use YYYY-MM-DD") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def cmd_audit_export(config: Config, args: argparse.Namespace) -> int:
    since = _parse_since(args.since) if args.since else None

    async def job(svc: Services) -> int:
        sink = (open_private(Path(args.out), "w", encoding="utf-8", newline="") if args.out
                else sys.stdout)
        try:
            async with svc.db.read() as session:
                async for chunk in audit.export(session, since=since, fmt=args.format):
                    sink.write(chunk)
        finally:
            if sink is not sys.stdout:
                sink.close()
        return 0

    return run_with_services(config, job)
