"""Teams serves only the Microsoft 365 tenants in ``TEAMS_TENANT_IDS``: anyone can add a
bot to their own organisation's Teams by its id, and Microsoft then signs their activities
as it signs ours (issue 11 second review, finding 1)."""

from __future__ import annotations

import json
import re
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select

from channels.teams.cards import FILE_DOWNLOAD
from channels.teams.settings import load_teams_settings
from handlers.services import Services
from store.models import Approval, Transfer
from tests.channels.teams.test_auth import recorded, secure_world, signed
from tests.support.core import PDF, Conversation, answer_all
from tests.support.fake_teams import TENANT
from tests.support.teams import APPROVER_AAD, SENDER_AAD, start_world, stop_world

OWN_TENANT = "11111111-2222-3333-4444-555555555555"
OTHER_TENANT = "0e0e0e0e-0000-4000-8000-00000000e7e0"


async def test_user_of_another_tenant_is_refused(services: Services) -> None:
    settings = load_teams_settings(services.settings,
                                   {"TEAMS_AUTH": "off", "TEAMS_TENANT_IDS": OWN_TENANT})
    world = await start_world(services, settings)
    try:
        outsider = world.user(SENDER_AAD, "Mallory Outsider")  # of the fake's TENANT
        status = await outsider.post(outsider.activity(text="help"))
        assert status[0] == 403
        assert world.connector.to(outsider.conversation) == []  # refused at the door

        insider = world.user("99999999-8888-7777-6666-555555555555", "Alice Insider")
        body = insider.activity(text="help")
        body["conversation"]["tenantId"] = OWN_TENANT
        body["channelData"] = {"tenant": {"id": OWN_TENANT}}
        await insider.post(body)
        said = json.dumps([c.body.get("text", "") for c in
                           world.connector.to(insider.conversation)])
        assert "Send me one or more files" in said

        async with services.db.read() as s:
            assert await s.scalar(select(func.count()).select_from(Transfer)) == 0
    finally:
        await stop_world(world)


async def approval_status(services: Services, reference: str) -> str:
    async with services.db.read() as s:
        approval = (await s.scalars(select(Approval).where(
            Approval.reference == reference))).one()
    return approval.status


async def test_a_signed_activity_from_another_tenant_does_nothing(
        services: Services, conversation: Any, make_file: Any) -> None:
    """Another organisation sideloads the bot's manifest: its users' activities are signed
    by Microsoft and name our approver's object id, and still approve, send and record
    nothing."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    world, _ = await secure_world(services, key, fetch_hosts=("connector", "files"))
    try:
        # A transfer waiting for teams:APPROVER_AAD, made at the terminal.
        alice: Conversation = conversation("console:alice")
        await alice.send_files(make_file("a.pdf"))
        await answer_all(alice, classification="RESTRICTED", password="sms-on-receipt")
        await alice.say("confirm")
        found = re.search(r"SH-[0-9A-Z]{4}-[0-9A-Z]{2}", alice.text)
        assert found and "needs authorising" in alice.text, alice.text
        ref = found.group(0)
        before = await recorded(world)

        approve = {"sh_q": f"approval:{ref}", "sh_v": "approve"}
        attacks: list[tuple[str, dict[str, Any]]] = [
            (APPROVER_AAD, {"text": "help"}),
            (APPROVER_AAD, {"type": "conversationUpdate",
                            "membersAdded": [{"id": "28:safehaven-bot"}]}),
            (APPROVER_AAD, {"text": "", "value": approve}),
            (APPROVER_AAD, {"text": f"status {ref}"}),
            (SENDER_AAD, {"text": "", "attachments": [{
                "contentType": FILE_DOWNLOAD, "name": "a.pdf",
                "content": {"downloadUrl": world.files.serve(PDF)}}]}),
        ]
        for aad, fields in attacks:
            outsider = world.user(aad, "Someone Elsewhere", tenant=OTHER_TENANT)
            status, _ = await outsider.post(signed(outsider, key, outsider.activity(**fields)))
            assert status == 403, fields
        # Our tenant in one field and theirs in the other, or no tenant at all: refused too.
        approver = world.user(APPROVER_AAD, "Morgan Approver")
        mixed = approver.activity(text="", value=approve)
        mixed["conversation"]["tenantId"] = OTHER_TENANT
        botbuilders = approver.activity(text="", value=approve)
        botbuilders["conversation"]["tenantID"] = OTHER_TENANT  # the spelling botbuilder reads
        none = approver.activity(text="", value=approve)
        del none["conversation"]["tenantId"], none["channelData"]
        for body in (mixed, botbuilders, none):
            status, _ = await approver.post(signed(approver, key, body))
            assert status == 403

        assert await approval_status(services, ref) == "pending"
        assert world.files.downloads == []
        assert await recorded(world) == before  # no conversation kept, nothing claimed
        assert world.connector.calls == []  # nothing said to them either

        # The same approver from our own tenant can: the refusal was the tenant's. (Their
        # object id in upper case is still them: Teams ids are compared in lower case.)
        shouting = world.user(APPROVER_AAD.upper(), "Morgan Approver")
        status, _ = await shouting.post(signed(shouting, key,
                                               shouting.activity(text="", value=approve)))
        assert status == 200 and shouting.tenant == TENANT
        assert await approval_status(services, ref) == "approved"
    finally:
        await stop_world(world)
