"""Sends left ``unconfirmed``, settled by asking the provider what it sent.

A send whose request may have reached the provider without an answer coming back (a timeout
after it was sent) is ``unconfirmed``: never retried blindly, because a second SMS with the
password is worse than asking. It waits :data:`UNCONFIRMED_WAIT` for the provider's signed
status callback, which names the send and so adopts the message (``callbacks``, ``calls``).
Failing that, :func:`reconcile_unconfirmed` (run by ``dispatch.run_due``) asks the provider
what it sent to that number since the attempt began. Found: adopted, no second SMS. Certainly
not there: retried as normal. The provider cannot be asked: reported like an interrupted send,
never re-sent.

The same check settles the sends :mod:`handlers.password_sends.restore_check` holds when the
database turns out to be older than its audit anchor (restored from an earlier dump): due or
waiting sends that may have gone out after the dump. They are asked about from their
creation on, and with no trace at the provider they go back to what they were (due, or
waiting for receipt) without counting an attempt.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.messages import delivery as dmsg
from bot.replies import MistakeButton, Reply, Text
from bot.statuses import SendKind, SendStatus
from handlers.password_sends.outcomes import (
    BATCH,
    CONCURRENCY,
    LEASE,
    PROVIDER_ID,
    adopt,
    after_failure,
    call_ended,
    how,
    phone_of,
    sms_outcome,
)
from handlers.ports import ProviderRecord, Reconciler
from handlers.services import Services
from store import audit
from store import repositories as repo

log = logging.getLogger(__name__)

# An unconfirmed send (the provider may have taken it; no answer came) waits this long from
# the attempt for the provider's status callback before the provider is asked. Its row's
# due_at is the attempt's start plus this, and the check looks back from due_at minus this:
# raising it while rows wait widens the look-back; lowering it narrows it by the difference.
UNCONFIRMED_WAIT = timedelta(minutes=5)
# Asking the provider, messages and calls created from this long before the attempt began
# count (the provider's clock against ours). Earlier attempts' ids are excluded by id.
CLOCK_SKEW = timedelta(minutes=2)


@dataclass
class _Check:
    delivery_id: int
    reference: str
    kind: str
    phone: str
    attempts: int
    since: datetime  # the attempt began at or after this (less CLOCK_SKEW)
    restored: SendStatus | None = None  # held after a restore: what it goes back to
    records: Sequence[ProviderRecord] | None = None  # None: the provider could not be asked
    error: str = ""


# Provider statuses of a message or call that did not get through (and will not).
_NOT_THROUGH = ("failed", "undelivered", "canceled", "busy", "no-answer")
_CALL_ENDED = ("completed", "busy", "no-answer", "failed", "canceled")
# Sends held after a restore, by their mark: the status each goes back to when the provider
# has no trace of it.
_RESTORE_MARKS = {dmsg.DETAIL_RESTORE_CHECK_DUE: SendStatus.DUE,
                  dmsg.DETAIL_RESTORE_CHECK_WAITING: SendStatus.WAITING}


async def _claim_unconfirmed(svc: Services, now: datetime, reference: str | None
                             ) -> list[_Check]:
    """Unconfirmed rows whose wait is over, held by a lease while the provider is asked
    (asking is read-only: a worker dying meanwhile only means another asks again)."""
    async with svc.db.transaction() as session:
        rows = await repo.lease_unconfirmed_sends(
            session, now=now, lease_until=now + LEASE, limit=BATCH,
            skip_locked=not svc.db.is_sqlite, reference=reference)
        checks = []
        for d in rows:
            restored = _RESTORE_MARKS.get(d.last_error or "")
            since = (d.created_at if restored is not None
                     else (d.due_at or now) - UNCONFIRMED_WAIT) - CLOCK_SKEW
            checks.append(_Check(delivery_id=d.id, reference=d.reference, kind=d.kind,
                                 phone=d.phone, attempts=d.attempts, since=since,
                                 restored=restored))
        return checks


async def _ask(svc: Services, c: _Check) -> None:
    transport = svc.transport
    if not isinstance(transport, Reconciler):
        c.error = f"the {transport.name} transport cannot list what it sent"
        return
    try:
        if c.kind == SendKind.VOICE:
            c.records = await transport.list_calls(to=c.phone, since=c.since)
        else:
            c.records = await transport.list_messages(to=c.phone, since=c.since,
                                                      reference=c.reference)
    except Exception as exc:  # any failure to ask means: cannot tell
        log.warning("asking %s about an unconfirmed %s for %s failed: %s", transport.name,
                    c.kind, c.reference, type(exc).__name__)
        c.error = type(exc).__name__


def _pick(records: Sequence[ProviderRecord], owned: set[str], since: datetime
          ) -> ProviderRecord | None:
    """The provider's record of this attempt, if it holds one. Anything to the number since
    the attempt began that no other send (nor an earlier attempt) owns and that does not
    plainly name another transfer counts: when in doubt it is ours, because adopting a
    message wrongly costs a "sent" receipt, while missing one costs a second SMS. A record
    that got through is preferred to one that did not."""
    mine = [r for r in records
            if PROVIDER_ID.fullmatch(r.sid) and r.sid not in owned
            and r.mentions_reference is not False
            and (r.created_at is None or r.created_at >= since)]
    if not mine:
        return None
    oldest = datetime.min.replace(tzinfo=since.tzinfo)
    return max(mine, key=lambda r: (r.mentions_reference is True,
                                    r.status not in _NOT_THROUGH, r.created_at or oldest))


async def _record_checks(svc: Services, checks: Sequence[_Check]) -> list[tuple[str, Reply]]:
    now = svc.clock()
    receipts: list[tuple[str, Reply]] = []
    async with svc.db.transaction() as session:
        seen = {r.sid for c in checks for r in (c.records or ())}
        owned = await repo.owned_provider_sids(session, provider_sids=seen)
        for c in checks:
            found_send = await repo.get_send(session, send_id=c.delivery_id)
            if found_send is None or found_send.attempts != c.attempts:
                continue  # a callback settled it meanwhile
            d = await repo.move_send(session, send_id=c.delivery_id, now=None,
                                     only_from=(SendStatus.UNCONFIRMED,), lease_until=None)
            if d is None:
                continue  # a callback settled it meanwhile
            transfer = await repo.get_transfer(session, reference=d.reference)
            phone = phone_of(transfer, d)
            sender = transfer.sender_id if transfer is not None else None
            kind = how(d.kind)
            details: dict[str, object] = {"method": d.kind, "attempt": d.attempts,
                                          "records": len(c.records or ())}
            if c.restored is not None:
                details["after_restore"] = True
            if c.records is None:
                last_error = f"{dmsg.DETAIL_CANNOT_CHECK} ({c.error})"
                await repo.move_send(session, send_id=d.id, only_from=(SendStatus.UNCONFIRMED,),
                                     now=now, status=SendStatus.INTERRUPTED,
                                     last_error=last_error)
                await audit.append(session, at=now, actor="safehaven", action="password_checked",
                                   reference=d.reference, details={
                                       **details, "result": "could not ask", "error": c.error})
                await audit.append(session, at=now, actor="safehaven",
                                   action="password_interrupted", reference=d.reference,
                                   details={"method": d.kind, "attempt": d.attempts,
                                            "detail": last_error})
                if sender is not None and d.kind != SendKind.HEADS_UP:
                    unknown = (dmsg.RECEIPT_RESTORE_UNKNOWN if c.restored is not None
                               else dmsg.RECEIPT_UNCONFIRMED_UNKNOWN)
                    receipts.append((sender, Text(unknown.format(
                        reference=d.reference, how=kind, phone=phone))))
                continue
            found = _pick(c.records, owned, c.since)
            if found is None:
                await audit.append(session, at=now, actor="safehaven", action="password_checked",
                                   reference=d.reference, details={**details,
                                                                   "result": "not found"})
                if transfer is None or transfer.password_sealed is None:
                    await repo.move_send(  # nothing left to send
                        session, send_id=d.id, only_from=(SendStatus.UNCONFIRMED,), now=now,
                        status=SendStatus.CANCELLED, last_error=dmsg.DETAIL_NOT_AT_TWILIO)
                    continue
                # It never went: back to what it was. The mark is read as the row is now
                # (held by this transaction): receipt may have come meanwhile.
                back = _RESTORE_MARKS.get(d.last_error or "")
                if back is not None:
                    await repo.move_send(
                        session, send_id=d.id, only_from=(SendStatus.UNCONFIRMED,), now=now,
                        status=back, last_error=None,
                        due_at=now if back == SendStatus.DUE else None)
                    continue
                reply = await after_failure(session, svc, d, detail=dmsg.DETAIL_NOT_AT_TWILIO,
                                            retryable=True, now=now)
                if sender is not None and reply is not None:
                    receipts.append((sender, reply))
                continue
            owned.add(found.sid)  # no other send in this batch can take it too
            await audit.append(session, at=now, actor="safehaven", action="password_checked",
                               reference=d.reference, details={
                                   **details, "result": "found", "provider_id": found.sid,
                                   "provider_status": found.status})
            adopted = await adopt(session, svc, d, found.sid, transfer=transfer,
                                  actor=svc.transport.name, by="provider list", now=now)
            if transfer is None or adopted is None:
                continue
            d = adopted
            if d.kind == SendKind.VOICE:
                if c.restored is not None and found.status == "completed":
                    # Answered after the dump: whether the password was read out went with
                    # the records the restore lost. Never called twice: the sender asks.
                    out: Reply | None = Text(dmsg.RECEIPT_RESTORE_CALL_MADE.format(
                        reference=d.reference, phone=phone))
                elif found.status in _CALL_ENDED:
                    out = await call_ended(session, svc, d, status=found.status,
                                           answered_by=None, now=now)
                else:
                    out = Text(dmsg.RECEIPT_CALLING.format(reference=d.reference, phone=phone))
            else:
                out = await sms_outcome(session, svc, d, transfer, status=found.status,
                                        error=found.error, now=now, adopted=True)
            if out is not None:
                receipts.append((transfer.sender_id, out))
                if d.kind != SendKind.VOICE and found.status == "delivered":
                    receipts.append((transfer.sender_id, MistakeButton(d.reference)))
    return receipts


async def reconcile_unconfirmed(svc: Services, *, reference: str | None = None
                                ) -> list[tuple[str, Reply]]:
    """Settle unconfirmed sends whose wait for a callback is over by asking the provider.
    Returns the senders' receipts."""
    receipts: list[tuple[str, Reply]] = []
    sem = asyncio.Semaphore(CONCURRENCY)

    async def ask(c: _Check) -> None:
        async with sem:
            await _ask(svc, c)

    while True:
        checks = await _claim_unconfirmed(svc, svc.clock(), reference)
        if not checks:
            return receipts
        await asyncio.gather(*(ask(c) for c in checks))
        receipts += await _record_checks(svc, checks)
