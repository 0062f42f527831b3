"""The transactional outbox: work a state change calls for, done exactly once.

A turn that confirms a transfer, a decision on an approval, a submission that needs one:
each writes what must follow (package, send the request, close, delete plaintext) as an
:class:`~store.models.OutboxEntry` in the same transaction as the state change, so either
both are stored or neither is. Right after the commit the same process claims its entries
and runs them (:func:`run`), so the person who acted still gets the replies at once. A
process that dies after the commit leaves the entries pending (or claimed with a lapsing
claim); the scheduler's :func:`sweep` takes them and tells the person named in the entry
through the notifier. Each entry is taken by one caller at a time (a conditional update),
and each kind is idempotent through the domain's own conditional updates (a transfer moves
``submitted``/``approved`` → ``packaging`` once), so an entry run again after a crash
mid-way does nothing twice.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from bot.answers import Decision
from bot.messages import transfers as msg
from bot.replies import DecisionNote, Reply, Text
from bot.statuses import EffectKind, EffectStatus, TransferStatus
from handlers import notify, transfers
from handlers.services import Services
from store import outbox as store
from store.outbox import PendingEffect, Session, transfer_key

log = logging.getLogger(__name__)

# A claim lasts longer than any packaging takes; one that lapses was a process that died
# (running an entry again is safe: see the module docstring).
LEASE = timedelta(minutes=10)
# The sweep leaves a pending entry this long to the turn that wrote it, which claims it
# within milliseconds of its commit unless it died.
UNCLAIMED_GRACE = timedelta(minutes=1)
RETRY_AFTER = timedelta(minutes=1)
MAX_ATTEMPTS = 5
KEEP_DONE = timedelta(days=7)
BATCH = 50


def turn_key(conversation_id: str, version: int, n: int) -> str:
    """The key of the ``n``-th effect of the turn that saved ``version`` of a conversation
    (the version check lets one turn save each version)."""
    digest = hashlib.sha256(f"{conversation_id}\0{version}".encode()).hexdigest()[:32]
    return f"turn:{digest}:{n}"


async def add_submit(session: Session, *, reference: str, sender_id: str,
                     now: datetime) -> str:
    key = transfer_key(reference, EffectKind.SUBMIT)
    await store.add(session, key=key, kind=EffectKind.SUBMIT, reference=reference,
                    payload={"tell": sender_id}, now=now)
    return key


async def add_delete_files(session: Session, *, key: str, reference: str | None,
                           paths: Sequence[str], now: datetime) -> str:
    await store.add(session, key=key, kind=EffectKind.DELETE_FILES, reference=reference,
                    payload={"paths": list(paths)}, now=now)
    return key


async def add_decision(session: Session, *, reference: str, sender_id: str,
                       approver_id: str, approve: bool, reason: str, now: datetime) -> str:
    """What follows a decision: package (approved) or close (rejected), then the sender
    hears of it."""
    kind = EffectKind.PACKAGE if approve else EffectKind.REJECT
    key = transfer_key(reference, kind)
    await store.add(session, key=key, kind=kind, reference=reference, now=now, payload={
        "tell": sender_id, "approver": approver_id, "reason": reason})
    return key


async def add_expire_draft(session: Session, *, key: str, reference: str | None,
                           paths: Sequence[str], sender_id: str, now: datetime) -> str:
    """What follows resetting a conversation left unfinished: its draft closed, its
    plaintext deleted, its sender told."""
    await store.add(session, key=key, kind=EffectKind.EXPIRE_DRAFT, reference=reference,
                    payload={"tell": sender_id, "paths": list(paths)}, now=now)
    return key


# --- what each kind does; each returns the replies for the person in payload["tell"] -------


async def _submit(svc: Services, effect: PendingEffect) -> list[Reply]:
    assert effect.reference is not None
    replies = await transfers.submit(svc, reference=effect.reference)
    # A transfer that needs approval wrote its request as an entry of its own.
    return [*replies, *await run(svc, [transfer_key(effect.reference,
                                                    EffectKind.REQUEST_APPROVAL)])]


async def _request_approval(svc: Services, effect: PendingEffect) -> list[Reply]:
    assert effect.reference is not None
    return await transfers.request_approval(svc, reference=effect.reference)


async def _package(svc: Services, effect: PendingEffect) -> list[Reply]:
    assert effect.reference is not None
    packaged = await transfers.package(svc, reference=effect.reference)
    if not packaged:
        return []  # packaged already, or cancelled since: nothing to say
    approver = str(effect.payload["approver"])
    return [DecisionNote(msg.APPROVED_SENDER.format(approver=approver,
                                                    reference=effect.reference),
                         reference=effect.reference, decision=Decision.APPROVE,
                         approver=approver), *packaged]


async def _reject(svc: Services, effect: PendingEffect) -> list[Reply]:
    assert effect.reference is not None
    approver, reason = str(effect.payload["approver"]), str(effect.payload["reason"])
    await transfers.cancel(svc, reference=effect.reference, by=approver, reason=reason,
                           status=TransferStatus.REJECTED)
    return [DecisionNote(msg.REJECTED_SENDER.format(approver=approver,
                                                    reference=effect.reference, reason=reason),
                         reference=effect.reference, decision=Decision.REJECT,
                         approver=approver, reason=reason)]


async def _delete_files(svc: Services, effect: PendingEffect) -> list[Reply]:
    await transfers.delete_uploads(svc, [str(p) for p in effect.payload["paths"]])
    return []


async def _expire_draft(svc: Services, effect: PendingEffect) -> list[Reply]:
    await transfers.delete_uploads(svc, [str(p) for p in effect.payload["paths"]])
    if effect.reference is None or not await transfers.cancel(
            svc, reference=effect.reference, by="safehaven", reason="left unfinished",
            status=TransferStatus.EXPIRED):
        return []  # nothing to close, or closed already (and its sender told then)
    return [Text(msg.DRAFT_EXPIRED.format(reference=effect.reference,
                                          hours=svc.policy.draft_expiry_hours))]


RUNNERS: dict[EffectKind, Callable[[Services, PendingEffect], Awaitable[list[Reply]]]] = {
    EffectKind.SUBMIT: _submit,
    EffectKind.REQUEST_APPROVAL: _request_approval,
    EffectKind.PACKAGE: _package,
    EffectKind.REJECT: _reject,
    EffectKind.DELETE_FILES: _delete_files,
    EffectKind.EXPIRE_DRAFT: _expire_draft,
}


# --- running -------------------------------------------------------------------------------


async def _attempt(svc: Services, effect: PendingEffect) -> list[Reply]:
    """Run one claimed entry; a failure leaves it to the sweep after :data:`RETRY_AFTER`."""
    # The reference and the effect's kind ride on the record for JSON logs (bot/app/logs.py).
    facts = {"reference": effect.reference, "event": str(effect.kind)}
    try:
        replies = await RUNNERS[effect.kind](svc, effect)
    except Exception as exc:
        log.error("outbox entry %s (%s) failed: %s", effect.key, effect.kind,
                  type(exc).__name__, extra=facts)
        async with svc.db.transaction() as session:
            await store.retry_at(session, key=effect.key, at=svc.clock() + RETRY_AFTER)
        raise
    log.info("%s done for %s", effect.kind, effect.reference or "no transfer", extra=facts)
    return replies


async def _finish(svc: Services, key: str, status: EffectStatus = EffectStatus.DONE) -> None:
    async with svc.db.transaction() as session:
        await store.finish(session, key=key, now=svc.clock(), status=status)


async def run(svc: Services, keys: Sequence[str]) -> list[Reply]:
    """Claim and run the entries just committed under ``keys``, in order; returns their
    replies for the person who acted. An entry someone else took is theirs to run."""
    replies: list[Reply] = []
    for key in keys:
        now = svc.clock()
        async with svc.db.transaction() as session:
            effect = await store.claim(session, key=key, now=now, until=now + LEASE)
        if effect is None:
            continue
        replies += await _attempt(svc, effect)
        await _finish(svc, key)
    return replies


async def sweep(svc: Services) -> int:
    """Run what a dead process left: entries pending past :data:`UNCLAIMED_GRACE`, or whose
    claim lapsed. The replies go to the person each entry names, through the notifier,
    before the entry is marked done. Returns how many entries ran."""
    now = svc.clock()
    async with svc.db.read() as session:
        keys = await store.sweepable(session, now=now, pending_before=now - UNCLAIMED_GRACE,
                                     limit=BATCH)
    ran = 0
    for key in keys:
        now = svc.clock()
        async with svc.db.transaction() as session:
            effect = await store.claim(session, key=key, now=now, until=now + LEASE,
                                       pending_before=now - UNCLAIMED_GRACE)
        if effect is None:
            continue  # another worker took it
        if effect.attempts > MAX_ATTEMPTS:
            log.error("outbox entry %s (%s) given up after %d attempts", key, effect.kind,
                      MAX_ATTEMPTS)
            await _finish(svc, key, EffectStatus.FAILED)
            continue
        try:
            replies = await _attempt(svc, effect)
        except Exception:
            log.info("outbox entry %s will be tried again in %s", key, RETRY_AFTER)
            continue
        tell = effect.payload.get("tell")
        if replies and tell:
            await notify.notify_people(svc, [str(tell)], replies, reference=effect.reference)
        await _finish(svc, key)
        ran += 1
    async with svc.db.transaction() as session:
        await store.prune(session, before=svc.clock() - KEEP_DONE)
    return ran


async def sweep_pending(svc: Services) -> bool:
    """Whether the sweep has anything to take now (for workers that stop when idle)."""
    now = svc.clock()
    async with svc.db.read() as session:
        return bool(await store.sweepable(session, now=now,
                                          pending_before=now - UNCLAIMED_GRACE, limit=1))
