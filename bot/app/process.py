"""What every ``safehaven`` command shares: exit codes, printing a line, and the services a
command uses for its length (migrated first, closed after)."""

from __future__ import annotations

import asyncio
import getpass
import logging
import sys
from collections.abc import Awaitable, Callable

from bot.app.config import Config
from bot.app.runtime import build_runtime
from bot.messages import console as console_msg
from channels.console.notifier import PREFIX as CONSOLE
from handlers import audit_housekeeping
from handlers.services import Services, close_transport
from store.db import migrate_async

EXIT_INVALID = 1
EXIT_CONFIG = 2


def default_user() -> str:
    """Who runs a command when ``--sender`` is not given: this account, at the console."""
    return f"console:{getpass.getuser()}"


def console_only(config: Config, command: str, flag: str, user_id: str | None) -> int | None:
    """In production a terminal acts only for ``console:`` people: ``--sender`` or
    ``--approver`` naming a Slack or Teams user (whose messages, kept for them, a command
    would print and hand over) is a usage error, said on stderr; None when it may go on."""
    if user_id is None or not config.core.is_production \
            or user_id.partition(":")[0] == CONSOLE:
        return None
    sys.stderr.write(f"safehaven {command}: error: "
                     f"{console_msg.CONSOLE_ONLY.format(flag=flag, value=user_id)}\n")
    return EXIT_CONFIG


def out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


async def with_services(config: Config, job: Callable[[Services], Awaitable[int]]) -> int:
    """Run ``job`` with this process's services; its result is the exit code."""
    await migrate_async(config.core.database_url)
    svc = build_runtime(config).svc
    try:
        return await job(svc)
    finally:
        # A command's audit records are covered by a signed checkpoint when one is due,
        # as the scheduler would (a command may be all that runs).
        try:
            await audit_housekeeping.checkpoint_if_due(svc)
        except Exception:  # the command's own outcome stands; the next one tries again
            logging.getLogger(__name__).exception("audit checkpoint failed")
        await svc.db.close()
        await close_transport(svc)
        await svc.inspector.close()


def run_with_services(config: Config, job: Callable[[Services], Awaitable[int]]) -> int:
    """:func:`with_services` from a synchronous command."""
    return asyncio.run(with_services(config, job))
