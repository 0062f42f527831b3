"""A single-tenant deployment serves only its own Microsoft 365 tenant."""

from __future__ import annotations

import json
from dataclasses import replace

from sqlalchemy import func, select

from handlers.services import Services
from store.models import Transfer
from tests.channels.teams.conftest import SENDER_AAD, auth_off, start_world, stop_world

OWN_TENANT = "11111111-2222-3333-4444-555555555555"


async def test_user_of_another_tenant_is_refused(services: Services) -> None:
    world = await start_world(services, replace(auth_off(services), tenant_id=OWN_TENANT))
    try:
        outsider = world.user(SENDER_AAD, "Mallory Outsider")
        status = await outsider.post(outsider.activity(text="help"))
        assert status[0] < 300
        said = json.dumps([c.body.get("text", "") for c in
                           world.connector.to(outsider.conversation)])
        assert "serves only its own organisation" in said

        insider = world.user("99999999-8888-7777-6666-555555555555", "Alice Insider")
        body = insider.activity(text="help")
        body["conversation"]["tenantId"] = OWN_TENANT
        body["channelData"] = {"tenant": {"id": OWN_TENANT}}
        await insider.post(body)
        said = json.dumps([c.body.get("text", "") for c in
                           world.connector.to(insider.conversation)])
        assert "serves only its own organisation" not in said
        assert "Send me one or more files" in said

        async with services.db.read() as s:
            assert await s.scalar(select(func.count()).select_from(Transfer)) == 0
    finally:
        await stop_world(world)
