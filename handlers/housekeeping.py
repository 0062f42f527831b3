"""Periodic work: run the outbox entries a dead process left, expire approval requests and
abandoned drafts, send due passwords, delete archives no portal link can reach any more
and archives handed back in the chat past their retention, delete idle conversation state,
unused recipient-book entries and old incidents, drop held messages nobody needs. The
jobs that carry out the policy's retention also run on demand (``safehaven retention
--apply``)."""

from __future__ import annotations

import logging
from datetime import timedelta

from bot.messages import transfers as msg
from bot.replies import Text
from bot.retention import Artefact
from bot.state import State
from bot.statuses import Step, TransferStatus
from handlers import (
    audit_housekeeping,
    near_misses,
    notify,
    outbox,
    portal_archives,
    portal_downloads,
    recovery,
    retention,
    transfers,
)
from handlers.password_sends import dispatch, restore_check
from handlers.services import Services
from store import repositories as repo

log = logging.getLogger(__name__)


async def expire_approvals(svc: Services) -> int:
    now = svc.clock()
    async with svc.db.read() as session:
        expired = await repo.expired_approvals(session, now=now)
    count = 0
    for approval in expired:
        if not await transfers.cancel(svc, reference=approval.reference, by="safehaven",
                                      reason="approval request expired",
                                      status=TransferStatus.EXPIRED):
            continue
        count += 1
        async with svc.db.read() as session:
            transfer = await repo.get_transfer(session, reference=approval.reference)
        if transfer is not None:
            await svc.notifier.notify(transfer.sender_id, [Text(msg.APPROVAL_EXPIRED_SENDER.format(
                reference=approval.reference, hours=svc.policy.approval_expiry_hours))],
                reference=approval.reference)
        for approver in approval.approvers:
            await svc.notifier.notify(approver, [Text(msg.APPROVAL_EXPIRED_APPROVER.format(
                reference=approval.reference))], reference=approval.reference)
    return count


async def expire_drafts(svc: Services) -> int:
    """Conversations left mid-way past the policy's draft expiry: cancel, delete files.
    The reset and what follows it (an outbox entry) are saved together."""
    now = svc.clock()
    hours = svc.policy.draft_expiry_hours
    cutoff = now - timedelta(hours=hours)
    async with svc.db.read() as session:
        stale = await repo.conversations_untouched_since(session, before=cutoff)
    count = 0
    for conv in stale:
        state = State.from_json(conv.state)
        if state.step == Step.IDLE:
            continue
        async with svc.db.transaction() as session:
            saved = await repo.save_conversation(
                session, conversation_id=conv.id, user_id=conv.user_id,
                state=State().to_json(), expected_version=conv.version, now=now)
            if saved:
                key = await outbox.add_expire_draft(
                    session, key=outbox.turn_key(conv.id, conv.version + 1, 0),
                    reference=state.reference, paths=[f["path"] for f in state.files],
                    sender_id=conv.user_id, now=now)
        if not saved:
            continue
        told = await outbox.run(svc, [key])
        if told:
            await svc.notifier.notify(conv.user_id, told, reference=state.reference)
        count += 1
    return count


# The jobs that delete what the policy keeps no longer, by the artefact each deletes.
RETENTION_JOBS = (
    (Artefact.DRAFT, expire_drafts),
    (Artefact.PORTAL_ARCHIVE, portal_archives.delete_dead_archives),
    (Artefact.CHAT_ARCHIVE, retention.delete_expired_archives),
    (Artefact.CONVERSATION, retention.delete_idle_conversations),
    (Artefact.RECIPIENT, retention.delete_unused_recipients),
    (Artefact.INCIDENT, retention.delete_old_incidents),
    (Artefact.AUDIT_RECORD, audit_housekeeping.prune),
)


async def apply_retention(svc: Services) -> dict[Artefact, int]:
    """Run the retention jobs once, now (as the scheduler does); how many of each went.
    A job that fails is logged and counted as none, like a scheduler pass."""
    counts: dict[Artefact, int] = {}
    for artefact, job in RETENTION_JOBS:
        try:
            counts[artefact] = await job(svc)
        except Exception:
            log.exception("retention job %s failed", job.__name__)
            counts[artefact] = 0
    return counts


async def at_startup(svc: Services) -> None:
    """Once when ``serve`` or ``worker`` starts, before the scheduler or the web server:
    clean this host's leftover temporary files
    (:func:`handlers.recovery.clean_host_at_startup`), and, if the database is behind its
    audit anchor (restored from an older dump), check the pending password sends with the
    provider before any goes (:mod:`handlers.password_sends.restore_check`). Errors are
    logged, never raised."""
    try:
        await recovery.clean_host_at_startup(svc)
    except Exception:
        log.exception("start-up clean-up of temporary files failed")
    try:
        await restore_check.check_after_restore(svc)
    except Exception:
        log.exception("start-up check of the database against the audit anchor failed")


async def tick(svc: Services) -> None:
    """One scheduler pass; errors are logged, never raised, so the loop keeps running."""
    for job in (recovery.seal_legacy_files, outbox.sweep, expire_approvals, expire_drafts,
                dispatch.recover_interrupted,
                dispatch.run_due, portal_downloads.release_lapsed_holds,
                portal_archives.delete_dead_archives, retention.delete_expired_archives,
                retention.delete_idle_conversations, retention.delete_unused_recipients,
                retention.delete_old_incidents,
                recovery.recover_packaging, recovery.close_failed_packaging,
                recovery.delete_orphan_uploads, notify.prune_held,
                near_misses.flush_forged,
                audit_housekeeping.prune, audit_housekeeping.checkpoint_if_due):
        try:
            await job(svc)
        except Exception:
            log.exception("scheduler job %s failed", job.__name__)


async def work_pending(svc: Services) -> bool:
    """Whether any password send is due now, or an outbox entry is left to sweep (for workers
    that stop when idle)."""
    async with svc.db.read() as session:
        if await repo.due_sends(session, now=svc.clock(), limit=1):
            return True
    return await outbox.sweep_pending(svc)
