"""Putting near misses on the record (:mod:`bot.near_misses` says what they are).

:func:`record` appends one inside the caller's transaction, so a near miss is recorded
exactly when the turn or decision that refused it is saved (a turn retried after a conflict
records nothing twice). :func:`flush_forged` writes the forged webhook requests counted in
this process since the last flush, one record per channel with the count and the window;
the scheduler calls it on every tick, and the web application once more when it stops.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from bot.filecheck import FileRefusal
from bot.near_misses import FINGERPRINT_LABEL, NEAR_MISS, NearMiss, NearMissKind
from handlers.services import Services
from store import audit

log = logging.getLogger(__name__)
FORGED_ACTOR = "unauthenticated"  # nobody can say who sent a request that fails its check


async def record(session: Any, svc: Services, *, at: datetime, actor: str,
                 near_miss: NearMiss) -> None:
    """Append ``near_miss`` (by ``actor``) in the caller's transaction; its subject, if any,
    only as a keyed fingerprint."""
    key = svc.vault.derive_key(FINGERPRINT_LABEL) if near_miss.subject else None
    details = near_miss.details(key)
    if "fingerprint" in details:
        # Which server key made it: fingerprints compare only under one key, and a key
        # rotation cannot re-key them (they are one-way).
        details["fingerprint_key"] = svc.vault.key_id
    await audit.append(session, at=at, actor=actor, action=NEAR_MISS,
                       reference=near_miss.reference, details=details)


async def record_refused_downloads(svc: Services, *, actor: str, count: int) -> None:
    """Files a channel refused to fetch for being over the policy's size limit (Slack and
    Teams say a file's size before it is downloaded): one ``file_refused`` each, before any
    transfer exists, so without a reference."""
    if count <= 0:
        return
    async with svc.db.transaction() as session:
        for _ in range(count):
            await record(session, svc, at=svc.clock(), actor=actor, near_miss=NearMiss(
                NearMissKind.FILE_REFUSED, FileRefusal.TOO_LARGE.value, None,
                {"file_kind": "file", "stage": "download"}))


async def flush_forged(svc: Services) -> int:
    """Record the forged requests counted since the last flush: one ``near_miss`` per
    channel, with the count and the window. Returns how many requests were recorded; on a
    database error the counts are kept for the next flush."""
    counts = svc.forged_requests.take()
    if not counts:
        return 0
    now = svc.clock()
    try:
        async with svc.db.transaction() as session:
            for channel, held in sorted(counts.items()):
                await audit.append(session, at=now, actor=FORGED_ACTOR, action=NEAR_MISS,
                                   details={
                                       "kind": NearMissKind.FORGED_REQUEST.value,
                                       "reason": "signature or token did not verify",
                                       "channel": channel.value, "count": held.count,
                                       "first": held.first.isoformat(),
                                       "last": held.last.isoformat()})
    except Exception:
        svc.forged_requests.give_back(counts)
        raise
    return sum(held.count for held in counts.values())
