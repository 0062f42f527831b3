"""Deleting what the policy's ``[retention]`` says is kept no longer (scheduler jobs, run
by ``handlers/housekeeping.py`` and by ``safehaven retention --apply``): archives handed
back in the chat once their retention passes or the transfer is over, idle conversation
state, unused recipient-book entries and old incidents. Each deletion is audited: an
archive or incident by its own record; conversations and recipients (personal data that
must not go into the record) by one record per pass with how many went.

The archive is the object ``archive_key(reference)`` in the shared store, so any process
deletes it (and its own copy in its archives folder, if it has one); deleting one that is
gone already is fine. Forgetting it in the database is a
conditional update, so when two processes delete the same archive at once only one records
the ``archive_deleted`` audit entry. The audit trail keeps every earlier record.
:func:`delete_archive` is also called at once on cancel (``handlers/transfers.py``) and on
a reported mistake (``handlers/mistakes.py``).
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from datetime import datetime, timedelta

from bot.objects import ObjectKey, archive_key
from bot.retention import Artefact
from bot.settings import Settings
from handlers.services import Services
from store import audit
from store import repositories as repo

log = logging.getLogger(__name__)


def _unlink_local_copy(settings: Settings, key: ObjectKey) -> None:
    """Delete this host's copy of the archive in its archives folder, if it has one (an
    archive packaged before archives went into the store, or the copy kept for a chat
    reply); gone already is fine."""
    with suppress(FileNotFoundError):
        (settings.archives_dir / key.parts[-1]).unlink()


async def delete_archive(svc: Services, reference: str, *, reason: str) -> bool:
    """Delete the transfer's kept archive from the object store and record it (audit
    ``archive_deleted`` with ``reason``). True if this call recorded the deletion; False when
    no archive was kept or another process recorded it first. Safe to call from any process,
    any number of times."""
    async with svc.db.read() as session:
        if await repo.kept_archive(session, reference=reference) is None:
            return False
    key = archive_key(reference)
    await svc.objects.delete(key)
    await asyncio.to_thread(_unlink_local_copy, svc.settings, key)
    now = svc.clock()
    async with svc.db.transaction() as session:
        if not await repo.forget_kept_archive(session, reference=reference):
            return False
        await audit.append(session, at=now, actor="safehaven", action="archive_deleted",
                           reference=reference, details={"archive": key.parts[-1],
                                                         "reason": reason})
    return True


async def delete_expired_archives(svc: Services) -> int:
    """Delete every archive delivered by ``archive`` whose retention has passed
    (:func:`repo.archives_past_retention`); returns how many this process recorded."""
    now = svc.clock()
    keep = svc.policy.archive_retention
    async with svc.db.read() as session:
        expired = await repo.archives_past_retention(
            session, delivered_before=now - timedelta(days=keep.days_after_password),
            created_before=now - timedelta(days=keep.max_days))
    deleted = 0
    for archive in expired:
        try:
            if await delete_archive(svc, archive.reference, reason=archive.reason):
                deleted += 1
        except Exception as exc:  # the store may be unreachable: the next pass retries
            log.error("could not delete the archive of %s: %s", archive.reference,
                      type(exc).__name__)
    return deleted


async def _record_batch(session: repo.Session, svc: Services, *, artefact: Artefact,
                        count: int, days: int, before: datetime) -> None:
    """One audit record for a pass that deleted ``count`` of ``artefact``: how many, the
    period and the cut-off, nothing about the people."""
    await audit.append(session, at=svc.clock(), actor="safehaven", action="retention_deleted",
                       details={"artefact": artefact.value, "count": count, "days": days,
                                "last_used_before": before.isoformat()})


async def delete_idle_conversations(svc: Services) -> int:
    """Delete the saved state of conversations waiting on no question and untouched for
    the policy's ``conversation_days`` (one saved meanwhile is kept); how many went. A
    conversation left mid-way is the draft expiry's: cancelling its draft saves it idle."""
    days = svc.policy.retention.conversation_days
    before = svc.clock() - timedelta(days=days)
    async with svc.db.read() as session:
        idle = await repo.idle_conversations(session, untouched_before=before)
    if not idle:
        return 0
    async with svc.db.transaction() as session:
        deleted = 0
        for conv in idle:
            deleted += await repo.delete_conversation(session, conversation_id=conv.id,
                                                      version=conv.version)
        if deleted:
            await _record_batch(session, svc, artefact=Artefact.CONVERSATION, count=deleted,
                                days=days, before=before)
    return deleted


async def delete_unused_recipients(svc: Services) -> int:
    """Delete the address-book entries no sender has used for the policy's
    ``recipient_days``; how many went (a transfer keeps its own copy of its recipient)."""
    days = svc.policy.retention.recipient_days
    before = svc.clock() - timedelta(days=days)
    async with svc.db.transaction() as session:
        deleted = await repo.delete_recipients_unused_since(session, before=before)
        if deleted:
            await _record_batch(session, svc, artefact=Artefact.RECIPIENT, count=deleted,
                                days=days, before=before)
    return deleted


async def delete_old_incidents(svc: Services) -> int:
    """Delete the incidents opened more than the policy's ``incident_days`` ago, each with
    an ``incident_deleted`` audit record (its id and when it was opened); how many went."""
    days = svc.policy.retention.incident_days
    before = svc.clock() - timedelta(days=days)
    async with svc.db.read() as session:
        old = await repo.incidents_opened_before(session, before=before)
    deleted = 0
    for incident in old:
        async with svc.db.transaction() as session:
            if not await repo.delete_incident(session, incident_id=incident.id, before=before):
                continue
            await audit.append(session, at=svc.clock(), actor="safehaven",
                               action="incident_deleted", reference=incident.reference,
                               details={"incident": incident.id, "days": days,
                                        "opened_at": incident.opened_at.isoformat()})
        deleted += 1
    return deleted
