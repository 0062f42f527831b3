"""Sending what is due: claim the rows, send them, record every outcome.

:func:`run_due` claims due rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several workers
never take the same row; one writer at a time on SQLite), marks them ``sending`` with a
lease, sends them concurrently through the password transport, and records every outcome and
its audit record in one transaction (``outcomes``: retried with backoff, dead-lettered, sent,
delivered). A send the provider may have taken without answering is left ``unconfirmed`` for
``reconcile``, never re-sent blindly. A row still ``sending`` after its lease was interrupted
mid-send: :func:`recover_interrupted` reports it, never re-sends it blindly, because a second
SMS with the password is worse than asking the sender to check.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.messages import delivery as dmsg
from bot.messages import transfers as msg
from bot.replies import MistakeButton, Reply, Text
from bot.statuses import SendKind, SendStatus
from bot.vault import VaultError
from handlers.password_sends.calls import call_script
from handlers.password_sends.outcomes import (
    BATCH,
    CONCURRENCY,
    LEASE,
    after_failure,
    how,
    wipe_if_done,
)
from handlers.password_sends.reconcile import UNCONFIRMED_WAIT, reconcile_unconfirmed
from handlers.ports import SendOutcome
from handlers.services import Services
from store import audit
from store import repositories as repo

log = logging.getLogger(__name__)

RECORD_PATIENCE = 30.0  # seconds without the database that recording outcomes rides out
# An SMS a turn makes due and sends itself at once (the hand-back, "received REF", the first
# portal download) is due this much later for everyone else: the scheduler running in the
# same process must not send it between the turn's commit and the turn's own send, or the
# receipt would reach the sender before the archive. If the turn's process dies first, the
# scheduler sends it after this grace.
INLINE_GRACE = timedelta(seconds=30)


@dataclass
class _Attempt:
    delivery_id: int
    reference: str
    kind: str
    phone: str
    extension: str | None
    attempts: int
    sender_id: str
    phone_display: str
    call_code: str
    call_at: datetime | None
    sealed: str | None
    started_at: datetime
    outcome: SendOutcome = field(default_factory=lambda: SendOutcome(SendStatus.FAILED))
    skip: bool = False  # decided without sending (the number opted out)


async def _claim(svc: Services, now: datetime, reference: str | None) -> list[_Attempt]:
    async with svc.db.transaction() as session:
        rows = await repo.claim_due_sends(
            session, now=now, lease_until=now + LEASE, limit=BATCH,
            skip_locked=not svc.db.is_sqlite, reference=reference,
            # the turn's own send: its inline SMS too (INLINE_GRACE)
            inline_until=now + INLINE_GRACE if reference is not None else None)
        if not rows:
            return []
        transfers = await repo.send_targets(session, references={d.reference for d in rows})
        claimed: list[_Attempt] = []
        for d in rows:
            t = transfers[d.reference]  # password_sends.reference is a foreign key
            claimed.append(_Attempt(
                delivery_id=d.id, reference=d.reference, kind=d.kind, phone=d.phone,
                extension=d.extension, attempts=d.attempts, sender_id=t.sender_id,
                phone_display=str((t.recipient or {}).get("phone_display", d.phone)),
                call_code=t.call_code or "", call_at=t.call_at, sealed=t.password_sealed,
                started_at=now))
        opted_out = await repo.opted_out_phones(session, phones={d.phone for d in rows})
        for a in claimed:
            if a.kind != SendKind.VOICE and a.phone in opted_out:
                a.sealed = None
                a.outcome = SendOutcome(SendStatus.FAILED, dmsg.RECEIPT_OPTED_OUT)
                a.skip = True
    return claimed


async def _send(svc: Services, a: _Attempt) -> None:
    if a.skip:
        return
    try:
        if a.kind == SendKind.HEADS_UP:
            local = (a.call_at or svc.clock()).astimezone(svc.policy.timezone)
            text = dmsg.HEADS_UP_SMS.format(organisation=svc.policy.organisation,
                                            time=f"{local:%H:%M}", reference=a.reference)
            a.outcome = await svc.transport.send_sms(to=a.phone, text=text,
                                                     reference=a.reference,
                                                     delivery_id=a.delivery_id)
            return
        if a.sealed is None:
            a.outcome = SendOutcome(SendStatus.FAILED, "the password is no longer held "
                                    "(cancelled or expired)")
            return
        if a.kind == SendKind.VOICE and svc.transport.interactive_calls:
            a.outcome = await svc.transport.place_call(
                to=a.phone, extension=a.extension, script=None, reference=a.reference,
                delivery_id=a.delivery_id)
            return
        password = svc.vault.open(a.sealed, reference=a.reference)
        if a.kind == SendKind.VOICE:
            script = call_script(organisation=svc.policy.organisation, reference=a.reference,
                                 code=a.call_code, password=password)
            a.outcome = await svc.transport.place_call(
                to=a.phone, extension=a.extension, script=script, reference=a.reference,
                delivery_id=a.delivery_id)
        else:
            text = svc.policy.sms_template.format(reference=a.reference, password=password,
                                                  organisation=svc.policy.organisation)
            a.outcome = await svc.transport.send_sms(to=a.phone, text=text,
                                                     reference=a.reference,
                                                     delivery_id=a.delivery_id)
        del password
    except VaultError:
        if a.sealed is not None and not svc.vault.holds(a.sealed):
            # Sealed under a key this process was not given (during a key rotation, a
            # replica not yet restarted with the new settings): once it is, this opens.
            a.outcome = SendOutcome(SendStatus.FAILED, "the server's keys are being changed",
                                    retryable=True)
        else:
            a.outcome = SendOutcome(SendStatus.FAILED, "the stored password cannot be opened "
                                    "with this server's key")
    except Exception as exc:  # a transport bug must not lose the row or leak the secret
        log.error("password send for %s failed: %s", a.reference, type(exc).__name__)
        a.outcome = SendOutcome(SendStatus.FAILED, f"transport error ({type(exc).__name__})",
                                retryable=True)


async def _record(svc: Services, attempts: Sequence[_Attempt]) -> list[tuple[str, Reply]]:
    now = svc.clock()
    receipts: list[tuple[str, Reply]] = []
    async with svc.db.transaction() as session:
        rows = await repo.sends_by_id(session, send_ids=[a.delivery_id for a in attempts],
                                      hold=True)
        for a in attempts:
            d = rows.get(a.delivery_id)
            if d is None or d.status != SendStatus.SENDING:
                continue
            o = a.outcome
            sid: str | repo.Keep = o.provider_sid or repo.KEEP  # kept if none came back
            kind = how(a.kind)
            if o.status == SendStatus.FAILED:
                failed = await after_failure(session, svc, d, detail=o.detail,
                                             retryable=o.retryable, now=now,
                                             provider_sid=o.provider_sid)
                if failed is not None:
                    receipts.append((a.sender_id, failed))
                continue
            if o.status == SendStatus.UNCONFIRMED:
                # It may have been accepted: never retried blindly (see reconcile_unconfirmed).
                check_at = a.started_at + UNCONFIRMED_WAIT
                if await repo.move_send(session, send_id=d.id, only_from=(SendStatus.SENDING,),
                                        now=now, status=SendStatus.UNCONFIRMED, lease_until=None,
                                        due_at=check_at, last_error=o.detail,
                                        provider_sid=sid) is None:
                    continue
                await audit.append(session, at=now, actor=svc.transport.name,
                                   action="password_unconfirmed", reference=a.reference,
                                   details={"method": a.kind, "phone": a.phone_display,
                                            "attempt": d.attempts, "detail": o.detail,
                                            "check_at": check_at.isoformat()})
                if a.kind != SendKind.HEADS_UP:
                    local = check_at.astimezone(svc.policy.timezone)
                    receipts.append((a.sender_id, Text(dmsg.RECEIPT_UNCONFIRMED.format(
                        reference=a.reference, how=kind, phone=a.phone_display,
                        when=f"{local:%H:%M}"))))
                continue
            if await repo.move_send(session, send_id=d.id, only_from=(SendStatus.SENDING,),
                                    now=now, status=o.status, lease_until=None,
                                    last_error=None, provider_sid=sid) is None:
                continue
            action = "password_delivered" if o.status == SendStatus.DELIVERED else "password_sent"
            if a.kind == SendKind.HEADS_UP:
                action = "heads_up_sent"
            await audit.append(session, at=now, actor=svc.transport.name, action=action,
                               reference=a.reference, details={
                                   "method": a.kind, "phone": a.phone_display,
                                   "attempt": d.attempts, "provider_id": o.provider_sid})
            if o.status == SendStatus.DELIVERED:
                await wipe_if_done(session, a.reference, now)
                receipts.append((a.sender_id, Text(msg.PASSWORD_SENT.format(
                    reference=a.reference, how=kind, phone=a.phone_display))))
                receipts.append((a.sender_id, MistakeButton(a.reference)))
            elif a.kind != SendKind.HEADS_UP:
                queued = dmsg.RECEIPT_CALLING if a.kind == SendKind.VOICE else dmsg.RECEIPT_QUEUED
                receipts.append((a.sender_id, Text(queued.format(
                    reference=a.reference, phone=a.phone_display))))
    return receipts


async def _record_retrying(svc: Services, attempts: Sequence[_Attempt]
                           ) -> list[tuple[str, Reply]]:
    """The outcomes are only in memory: when the database goes away while they are being
    recorded (a dropped connection, or the server restarting: refused or "shutting down"
    connections), recording is retried on a fresh connection for up to
    :data:`RECORD_PATIENCE` seconds, rather than leaving the rows ``sending`` to be reported
    as interrupted. Errors a retry cannot cure (constraint, SQL, data) are raised at once.
    Safe to repeat: :func:`_record` skips rows no longer ``sending``."""
    deadline: float | None = None
    pause = 0.25
    while True:
        try:
            with repo.unreachable_translated():
                return await _record(svc, attempts)
        except repo.DatabaseUnreachable as exc:
            now = time.monotonic()
            deadline = deadline if deadline is not None else now + RECORD_PATIENCE
            if now >= deadline:
                raise
            log.warning("recording %d send outcomes failed (database unreachable: %s); "
                        "retrying", len(attempts), exc)
            await asyncio.sleep(min(pause, deadline - now))
            pause = min(pause * 2, 4.0)


async def run_due(svc: Services, *, reference: str | None = None) -> list[Reply]:
    """Settle unconfirmed sends whose wait is over, then send everything due (or only
    ``reference``'s). Receipts for the transfer named by ``reference`` come back as replies
    (its sender is the one talking); others go to their senders through the notifier.
    Returns when nothing due is left."""
    replies: list[Reply] = []
    sem = asyncio.Semaphore(CONCURRENCY)

    async def send(a: _Attempt) -> None:
        async with sem:
            await _send(svc, a)

    async def tell(receipts: list[tuple[str, Reply]]) -> None:
        # One message per sender's run of receipts (a receipt and its mistake button).
        for sender, run in itertools.groupby(receipts, key=lambda r: r[0]):
            batch = [receipt for _, receipt in run]
            if reference is not None:
                replies.extend(batch)
            else:
                await svc.notifier.notify(sender, batch)

    await tell(await reconcile_unconfirmed(svc, reference=reference))
    while True:
        claimed = await _claim(svc, svc.clock(), reference)
        if not claimed:
            return replies
        await asyncio.gather(*(send(a) for a in claimed))
        await tell(await _record_retrying(svc, claimed))


async def recover_interrupted(svc: Services) -> int:
    """Rows left ``sending`` past their lease (a worker died mid-send): report, don't resend."""
    now = svc.clock()
    told: list[tuple[str, Reply, str]] = []
    async with svc.db.transaction() as session:
        for d in await repo.interrupt_lapsed_sends(session, now=now):
            transfer = await repo.get_transfer(session, reference=d.reference)
            await audit.append(session, at=now, actor="safehaven",
                               action="password_interrupted", reference=d.reference,
                               details={"method": d.kind, "attempt": d.attempts})
            if transfer is not None and d.kind != SendKind.HEADS_UP:
                phone = str((transfer.recipient or {}).get("phone_display", d.phone))
                told.append((transfer.sender_id, Text(dmsg.RECEIPT_INTERRUPTED.format(
                    reference=d.reference, phone=phone)), d.reference))
    for sender, reply, ref in told:
        await svc.notifier.notify(sender, [reply], reference=ref)
    return len(told)
