"""The aiohttp app factory: health and readiness endpoints on a real server."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from bot.app.web import create_app
from handlers.services import Services
from store.db import Database


async def test_healthz_and_readyz(services: Services) -> None:
    app = create_app(services, migrate=True, scheduler=True)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/healthz")
        assert resp.status == 200 and (await resp.json())["status"] == "ok"
        resp = await client.get("/readyz")
        assert resp.status == 200 and (await resp.json())["database"] == "reachable"


async def test_readyz_reports_unreachable_database(services: Services) -> None:
    services.db = Database("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    app = create_app(services, migrate=False, scheduler=False)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/readyz")
        assert resp.status == 503
        assert (await client.get("/healthz")).status == 200
