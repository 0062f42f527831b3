"""A running Safe Haven with Teams mounted, a fake Bot Connector and a fake OneDrive.

The fakes listen on 127.0.0.1, which Safe Haven reaches only when the operator names it:
:func:`start_world` names them in ``SAFEHAVEN_ALLOWED_FETCH_HOSTS`` as a test deployment
would (``fetch_hosts`` chooses which: ``"connector"``, ``"files"`` or a literal host:port).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.app.plugins import route_notices
from bot.app.web import create_app
from bot.settings import load_settings
from channels.teams.app import plugin as teams_plugin
from channels.teams.channel import TeamsChannel
from channels.teams.settings import TeamsSettings, load_teams_settings
from handlers.notify import HeldNotices, NotifierRouter
from handlers.services import Services
from tests.support.core import RecordingNotifier
from tests.support.fake_teams import FakeConnector, FakeFileHost, TeamsUser

SENDER_AAD = "6a1d2c3b-0000-4000-8000-00000000a11c"
APPROVER_AAD = "6a1d2c3b-0000-4000-8000-0000000b0b00"
INTRUDER_AAD = "6a1d2c3b-0000-4000-8000-000000000bad"


@dataclass
class TeamsWorld:
    services: Services
    channel: TeamsChannel
    client: TestClient[web.Request, web.Application]
    connector: FakeConnector
    files: FakeFileHost

    def user(self, aad: str, name: str, **kwargs: Any) -> TeamsUser:
        return TeamsUser(self.client, self.connector, aad=aad, name=name, **kwargs)


def host_of(url: str) -> str:
    """``127.0.0.1:PORT`` of a fake, as SAFEHAVEN_ALLOWED_FETCH_HOSTS names it."""
    return url.split("://", 1)[1].split("/", 1)[0]


def auth_off(services: Services) -> TeamsSettings:
    """Teams without credentials, as ``TEAMS_AUTH=off`` serves it (loopback, development)."""
    return load_teams_settings(services.settings, {"TEAMS_AUTH": "off"})


def allow_fetch_hosts(services: Services, *hosts: str) -> None:
    """Set SAFEHAVEN_ALLOWED_FETCH_HOSTS, read by the real settings loader."""
    named = load_settings({"SAFEHAVEN_ALLOWED_FETCH_HOSTS": ",".join(hosts)})
    services.settings = replace(services.settings,
                                allowed_fetch_hosts=named.allowed_fetch_hosts)


async def start_world(services: Services, settings: TeamsSettings, *,
                      connector: FakeConnector | None = None,
                      fetch_hosts: tuple[str, ...] = ("connector", "files"),
                      **options: Any) -> TeamsWorld:
    if connector is None:
        connector = FakeConnector()
        await connector.start()
    files = FakeFileHost()
    await files.start()
    fakes = {"connector": host_of(connector.url), "files": host_of(files.url)}
    allow_fetch_hosts(services, *(fakes.get(name, name) for name in fetch_hosts))
    services.policy = replace(services.policy, approvers={"*": (f"teams:{APPROVER_AAD}",)})
    # As build_runtime wires it: what Teams cannot deliver is kept (sealed) for the person.
    services.notifier = router = NotifierRouter(
        RecordingNotifier(), keep=HeldNotices(services.db, services.vault, clock=services.clock))
    teams = teams_plugin(services, settings, upload_chunk_bytes=4096, **options)
    notifier = teams.notifier
    assert notifier is not None
    route_notices(router, [teams])
    app = create_app(services, migrate=False, scheduler=False)
    teams.mount(app)
    channel = teams.channel
    assert channel is not None and channel is notifier.channel()
    client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    return TeamsWorld(services, channel, client, connector, files)


async def stop_world(world: TeamsWorld) -> None:
    await world.client.close()
    await world.connector.close()
    await world.files.close()


@pytest.fixture
async def teams(services: Services) -> AsyncIterator[TeamsWorld]:
    """Teams with authentication off (``TEAMS_AUTH=off``)."""
    world = await start_world(services, auth_off(services))
    yield world
    await stop_world(world)
