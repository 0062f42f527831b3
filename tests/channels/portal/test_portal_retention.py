"""A portal archive is kept exactly while a link can download it: the scheduler deletes it
the first pass after its link expires (a second before: kept), ``safehaven retention``
counts it and names when it falls due, and nothing else of the share goes with it."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from bot.app import retention as retention_cli
from bot.retention import Artefact
from handlers import housekeeping
from handlers.retention_view import retention_view
from handlers.services import Services
from store.models import Conversation, RecipientEntry
from tests.channels.portal.conftest import Share, archive_kept, audit_rows, link_row
from tests.support.core import Clock

SECOND = timedelta(seconds=1)


async def _others(svc: Services) -> tuple[list[str], list[int]]:
    """The conversations and recipient-book entries: none of them portal archives."""
    async with svc.db.read() as s:
        return (list((await s.scalars(select(Conversation.id))).all()),
                list((await s.scalars(select(RecipientEntry.id))).all()))


async def test_a_portal_archive_goes_the_pass_after_its_link_expires(
        services: Services, share: Share, clock: Clock) -> None:
    link = await share(password="sms-on-receipt")  # never downloaded: kept for the link
    expires = (await link_row(services, link.reference)).expires_at
    others = await _others(services)
    assert others[0] and others[1]

    view = {i.artefact: i for i in await retention_view(services)}
    assert view[Artefact.PORTAL_ARCHIVE].due_now == 0
    assert view[Artefact.PORTAL_ARCHIVE].next_due == expires

    clock.now = expires - SECOND
    await housekeeping.tick(services)
    assert await archive_kept(services, link.reference)
    assert not [r for r in await audit_rows(services, link.reference)
                if r.action == "archive_deleted"]

    clock.now = expires + SECOND
    view = {i.artefact: i for i in await retention_view(services)}
    assert view[Artefact.PORTAL_ARCHIVE].due_now == 1
    assert view[Artefact.PORTAL_ARCHIVE].next_due is None
    await housekeeping.tick(services)
    assert not await archive_kept(services, link.reference)
    [deleted] = [r for r in await audit_rows(services, link.reference)
                 if r.action == "archive_deleted"]
    assert deleted.details["reason"] == "expired"
    assert await _others(services) == others  # the conversation and the recipient stay


async def test_retention_apply_deletes_a_cancelled_shares_portal_archive(
        services: Services, share: Share) -> None:
    kept = await share()
    cancelled = await share()
    await cancelled.chat.cancel(cancelled.reference)  # the link is withdrawn
    others = await _others(services)

    text = await retention_cli.show(services, apply=False, as_json=False)
    assert "- portal_archive: until no download link can fetch it." in text
    assert await archive_kept(services, cancelled.reference)  # showing deletes nothing

    document = json.loads(await retention_cli.show(services, apply=True, as_json=True))
    assert document["deleted"]["portal_archive"] == 1
    assert not await archive_kept(services, cancelled.reference)
    assert await archive_kept(services, kept.reference)
    assert await _others(services) == others
    [deleted] = [r for r in await audit_rows(services, cancelled.reference)
                 if r.action == "archive_deleted"]
    assert deleted.details["reason"] == "transfer cancelled"
