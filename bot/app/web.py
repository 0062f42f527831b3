"""The aiohttp application factory: health endpoints, the database and the scheduler.

The channels' plugins (the portal, Teams, Slack, Twilio's webhooks) mount their routes on
the application this builds; its own lifecycle (open the database, run migrations, start
and stop the scheduler) lives in ``cleanup_ctx`` so nothing happens at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

from aiohttp import web

import channels.portal
from bot.app import forwarding, metrics
from bot.app.plugins import ChannelPlugin, mount_plugins
from handlers import housekeeping, near_misses
from handlers.services import Services, close_transport
from store.db import migrate_async

log = logging.getLogger(__name__)
SERVICES = web.AppKey("services", Services)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    if await svc.db.ping():
        return web.json_response({"status": "ready", "database": "reachable"})
    return web.json_response({"status": "not ready", "database": "unreachable"}, status=503)


async def _scheduler_loop(svc: Services) -> None:
    while True:
        await housekeeping.tick(svc)
        await asyncio.sleep(svc.settings.scheduler_interval_seconds)


async def _forged_request_loop(svc: Services) -> None:
    """Without the scheduler, this process still records the forged requests it counted."""
    while True:
        await asyncio.sleep(svc.settings.scheduler_interval_seconds)
        try:
            await near_misses.flush_forged(svc)
        except Exception:
            log.exception("recording forged requests failed; kept for the next try")


def create_app(svc: Services, *, plugins: Sequence[ChannelPlugin] | None = None,
               migrate: bool = True, scheduler: bool | None = None) -> web.Application:
    """The application with ``plugins`` mounted (default: the recipient portal alone), and
    ``/metrics`` when ``SAFEHAVEN_METRICS`` is on (else that path is 404)."""
    app = web.Application(client_max_size=1024 * 1024)
    app[SERVICES] = svc
    forwarding.install(app, svc.settings.trusted_proxies)  # request.remote: the client
    if svc.settings.metrics:
        metrics.install(app, svc)
    run_scheduler = svc.settings.run_scheduler if scheduler is None else scheduler

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        if migrate:
            await migrate_async(svc.settings.database_url)
        await housekeeping.at_startup(svc)
        task = asyncio.create_task(_scheduler_loop(svc) if run_scheduler
                                   else _forged_request_loop(svc))
        if not run_scheduler:
            log.info("scheduler not started in this process (SAFEHAVEN_SCHEDULER=off)")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        try:  # what was counted since the last tick (a crash loses it: docs/governance.md)
            await near_misses.flush_forged(svc)
        except Exception:
            log.exception("forged requests counted at shutdown could not be recorded")
        await svc.db.close()
        await close_transport(svc)
        await svc.inspector.close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    mount_plugins(app, (channels.portal.plugin(svc),) if plugins is None else plugins)
    return app
