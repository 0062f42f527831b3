"""The audit trail's part of the scheduler's tick: a signed checkpoint when one is due
(``SAFEHAVEN_AUDIT_CHECKPOINT_RECORDS`` / ``_MINUTES``), and pruning the records older than
the policy's ``[retention] audit_days`` behind a checkpoint naming the last one pruned. A
process with no trail attached (see store.audit.attach) does neither."""

from __future__ import annotations

import logging
from datetime import timedelta

from handlers.services import Services
from store import audit

log = logging.getLogger(__name__)


async def checkpoint_if_due(svc: Services) -> None:
    trail = audit.trail_of(svc.db)
    if trail is None:
        return
    try:
        await trail.checkpoint_if_due(svc.db, now=svc.clock())
    except audit.AuditBroken as exc:
        # Never sign a broken trail; say so loudly, every time, until someone looks.
        log.error("audit checkpoint NOT written: %s", exc)


async def prune(svc: Services) -> int:
    trail = audit.trail_of(svc.db)
    if trail is None:
        return 0
    now = svc.clock()
    before = now - timedelta(days=svc.policy.retention.audit_days)
    try:
        return await audit.prune(svc.db, trail=trail, before=before, now=now)
    except audit.AuditBroken as exc:
        log.error("audit records NOT pruned: %s", exc)
        return 0
