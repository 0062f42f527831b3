"""The long-running commands: ``serve`` (the HTTP server: channels, health, scheduler) and
``worker`` (the scheduler alone)."""

from __future__ import annotations

import argparse
import asyncio

from bot.app.config import Config
from bot.app.process import out, run_with_services
from bot.app.runtime import build_runtime
from handlers import housekeeping
from handlers.services import Services


def cmd_serve(config: Config, args: argparse.Namespace) -> int:
    from aiohttp import web

    from bot.app.web import create_app
    from channels.portal import RedactingAccessLogger

    settings = config.core
    runtime = build_runtime(config)
    svc = runtime.svc
    app = create_app(svc, plugins=runtime.plugins,
                     scheduler=False if args.no_scheduler else None)
    out(f"Safe Haven serving on http://{settings.host}:{settings.port} "
        f"(policy: {svc.policy.source}; database: {settings.database_url.split('://')[0]})")
    for plugin in runtime.plugins:
        for line in plugin.describe():
            out(line)
    web.run_app(app, host=settings.host, port=settings.port, print=None,
                access_log_class=RedactingAccessLogger)
    return 0


async def _worker(svc: Services, *, exit_when_idle: bool = False) -> int:
    """The scheduler alone. Several workers may share one PostgreSQL: each delivery is
    claimed by exactly one of them."""
    out("Safe Haven scheduler running; Ctrl-C to stop.")
    await housekeeping.at_startup(svc)
    while True:
        await housekeeping.tick(svc)
        if exit_when_idle and not await housekeeping.work_pending(svc):
            return 0
        await asyncio.sleep(svc.settings.scheduler_interval_seconds)


def cmd_worker(config: Config, args: argparse.Namespace) -> int:
    return run_with_services(
        config, lambda svc: _worker(svc, exit_when_idle=args.exit_when_idle))
