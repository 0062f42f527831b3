"""Deleting archives handed back in the chat once the policy's retention passes, or the
transfer is cancelled (a scheduler job, and a call for the cancel path).

The archive is the object ``archive_key(reference)`` in the shared store, so any process
deletes it (and its own copy in its archives folder, if it has one); deleting one that is
gone already is fine. Forgetting it in the database is a
conditional update, so when two processes delete the same archive at once only one records
the ``archive_deleted`` audit entry. The audit trail keeps every earlier record.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from datetime import timedelta

from bot.objects import ObjectKey, archive_key
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
