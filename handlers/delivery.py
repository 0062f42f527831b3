"""Out-of-band password delivery on a durable scheduler.

Every delivery is a row with a due time: an SMS now, an SMS once receipt is confirmed
(``waiting`` until then), a voice call at the agreed time, a heads-up SMS before the call.
``run_due`` claims due rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several workers
never take the same row; one writer at a time on SQLite), marks them ``sending`` with a
lease, sends them concurrently, and records every outcome and its audit record in one
transaction. Failures where the provider certainly did not take the message (unreachable,
or it answered with an error) are retried with backoff up to the policy's attempts when
transient, then dead-lettered and the sender told; permanent ones (an invalid number) are not
retried. A row still ``sending`` after its lease was interrupted mid-send: it is reported,
never re-sent blindly, because a second SMS with the password is worse than asking the
sender to check.

A send whose request may have reached the provider without an answer coming back (a timeout
after it was sent) is ``unconfirmed``: never retried blindly. It waits
:data:`UNCONFIRMED_WAIT` for the provider's signed status callback, which names the delivery
and so adopts the message (then sent, delivered or failed as usual). Failing that,
``run_due`` reconciles: it asks the provider what it sent to that number since the attempt
began. Found: adopted, no second SMS. Certainly not there: retried as normal. The provider
cannot be asked: reported like an interrupted send, never re-sent.

Provider callbacks (SMS status, call progress, the code check in a call) arrive through the
functions at the end; channels/twilio translates webhooks into them. The sealed password is
wiped once every delivery of the transfer has reached the recipient, and on cancel/expiry.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncSession

from bot import engine
from bot.messages import delivery as dmsg
from bot.messages import transfers as msg
from bot.passwords import spell_for_voice
from bot.replies import Reply, Text
from bot.vault import VaultError
from handlers import access
from handlers.ports import ProviderRecord, Reconciler, SendOutcome
from handlers.services import Services
from store import audit
from store import repositories as repo
from store.models import Delivery, SmsOptOut, Transfer

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
BATCH = 100
CONCURRENCY = 32
FINAL = ("delivered", "failed", "dead", "cancelled", "interrupted")
MAX_BACKOFF_SECONDS = 86_400
RECORD_PATIENCE = 30.0  # seconds without the database that recording outcomes rides out
# An unconfirmed send (the provider may have taken it; no answer came) waits this long from
# the attempt for the provider's status callback before the provider is asked. Its row's
# due_at is the attempt's start plus this, and the check looks back from due_at minus this:
# raising it while rows wait widens the look-back; lowering it narrows it by the difference.
UNCONFIRMED_WAIT = timedelta(minutes=5)
# Asking the provider, messages and calls created from this long before the attempt began
# count (the provider's clock against ours). Earlier attempts' ids are excluded by id.
CLOCK_SKEW = timedelta(minutes=2)
# An SMS a turn makes due and sends itself at once (the hand-back, "received REF", the first
# portal download) is due this much later for everyone else: the scheduler running in the
# same process must not send it between the turn's commit and the turn's own send, or the
# receipt would reach the sender before the archive. If the turn's process dies first, the
# scheduler sends it after this grace.
INLINE_GRACE = timedelta(seconds=30)


# --- scheduling ----------------------------------------------------------------------------


def call_script(*, organisation: str, reference: str, code: str, password: str) -> list[str]:
    """What a non-interactive transport says (development console). The interactive Twilio
    call follows the same order through :func:`call_answered` and :func:`call_code`."""
    return [
        dmsg.CALL_GREETING.format(organisation=organisation),
        dmsg.CALL_ASK_CODE,
        f"[recipient keys in {code}: correct]",
        dmsg.CALL_PASSWORD_INTRO.format(reference=" ".join(reference)),
        *spell_for_voice(password),
        dmsg.CALL_REPEAT_PROMPT,
    ]


async def schedule(session: AsyncSession, svc: Services, *, transfer: Transfer,
                   now: datetime) -> str:
    """Create the delivery rows for the chosen method; returns the plan for the sender."""
    recipient = transfer.recipient or {}
    phone = str(recipient.get("phone_display", ""))
    method = transfer.password_method
    rows: list[Delivery] = []
    if method == "voice":
        assert transfer.call_at is not None
        rows.append(Delivery(reference=transfer.reference, kind="voice", status="due",
                             due_at=transfer.call_at, phone=recipient["phone"],
                             extension=recipient.get("extension"), created_at=now,
                             updated_at=now))
        heads_up = svc.policy.delivery.heads_up_minutes
        heads_up_at = transfer.call_at - timedelta(minutes=heads_up)
        if heads_up and heads_up_at > now and recipient.get("is_mobile") \
                and not recipient.get("extension"):
            rows.append(Delivery(reference=transfer.reference, kind="heads-up", status="due",
                                 due_at=heads_up_at, phone=recipient["phone"], created_at=now,
                                 updated_at=now))
        local = transfer.call_at.astimezone(svc.policy.timezone)
        plan = msg.PASSWORD_PLAN_VOICE.format(phone=phone, when=f"{local:%a %d %b %H:%M}",
                                              code=transfer.call_code)
    else:
        waiting = method == "sms-on-receipt"
        rows.append(Delivery(reference=transfer.reference, kind="sms",
                             status="waiting" if waiting else "due",
                             due_at=None if waiting else now + INLINE_GRACE,
                             phone=recipient["phone"],
                             created_at=now, updated_at=now))
        plan = (msg.PASSWORD_PLAN_ON_RECEIPT.format(reference=transfer.reference, phone=phone)
                if waiting else msg.PASSWORD_PLAN_SMS.format(phone=phone))
    for row in rows:
        session.add(row)
        await audit.append(session, at=now, actor="safehaven", action="password_scheduled",
                           reference=transfer.reference, details={
                               "method": row.kind, "phone": phone,
                               "due_at": row.due_at.isoformat() if row.due_at else "on receipt"})
    return plan


async def confirm_receipt(svc: Services, *, reference: str, by: str) -> list[Reply]:
    """The sender says the recipient has the archive: release the waiting SMS."""
    if await access.transfer_for(svc, reference=reference, actor=by, role=access.Role.SENDER,
                                 command="received") is None:
        return [Text(access.unknown(reference))]
    released = await release_on_receipt(svc, reference=reference, actor=by, source="sender")
    if not released:
        return [Text(msg.RECEIPT_NOT_EXPECTED.format(reference=reference))]
    return [Text(msg.RECEIPT_RECORDED.format(reference=reference)),
            *await run_due(svc, reference=reference)]


async def release_on_receipt(svc: Services, *, reference: str, actor: str, source: str) -> bool:
    """Make a transfer's "SMS once receipt is confirmed" delivery due now (the sender said
    so, or the portal saw the first download). False if nothing was waiting."""
    now = svc.clock()
    async with svc.db.transaction() as session:
        waiting = [d for d in await repo.deliveries_for(session, reference=reference)
                   if d.status == "waiting"]
        if not waiting:
            return False
        for d in waiting:
            d.status, d.due_at, d.updated_at = "due", now + INLINE_GRACE, now  # sent inline
        await audit.append(session, at=now, actor=actor, action="receipt_confirmed",
                           reference=reference, details={"by": source})
    return True


async def book_call(svc: Services, *, reference: str, by: str, when_text: str) -> list[Reply]:
    """The sender agreed a call time (e.g. after the recipient replied CALL to the SMS)."""
    now = svc.clock()
    ctx = engine.TurnContext(policy=svc.policy, now=now, user_id=by,
                             default_region=svc.settings.default_region,
                             new_reference=svc.new_reference)
    when = engine.parse_call_time(when_text, ctx)
    if isinstance(when, str):
        return [Text(when)]
    if await access.transfer_for(svc, reference=reference, actor=by, role=access.Role.SENDER,
                                 command="call") is None:
        return [Text(access.unknown(reference))]
    async with svc.db.transaction() as session:
        transfer = await repo.get_transfer(session, reference=reference)
        if transfer is None:
            return [Text(access.unknown(reference))]
        if transfer.password_sealed is None:
            return [Text(dmsg.CALL_NOT_POSSIBLE.format(reference=reference,
                                                       status=transfer.status))]
        recipient = transfer.recipient or {}
        existing = {d.kind: d for d in await repo.deliveries_for(session, reference=reference)}
        voice = existing.get("voice")
        if voice is None:
            voice = Delivery(reference=reference, kind="voice", phone=recipient["phone"],
                             extension=recipient.get("extension"), created_at=now,
                             attempts=0, code_failures=0)
            session.add(voice)
        voice.status, voice.due_at, voice.updated_at = "due", when, now
        voice.attempts, voice.code_failures, voice.verified_call_sid = 0, 0, None
        sms = existing.get("sms")
        if sms is not None and sms.status in ("waiting", "due"):
            sms.status, sms.updated_at = "cancelled", now
        await audit.append(session, at=now, actor=by, action="password_scheduled",
                           reference=reference, details={"method": "voice",
                                                         "due_at": when.isoformat(),
                                                         "reason": "call booked by sender"})
    local = when.astimezone(svc.policy.timezone)
    return [Text(dmsg.CALL_BOOKED.format(phone=recipient.get("phone_display", ""),
                                         reference=reference,
                                         when=f"{local:%a %d %b %H:%M}"))]


# --- sending -------------------------------------------------------------------------------


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
    outcome: SendOutcome = field(default_factory=lambda: SendOutcome("failed"))
    skip: bool = False  # decided without sending (the number opted out)


async def _claim(svc: Services, now: datetime, reference: str | None) -> list[_Attempt]:
    async with svc.db.transaction() as session:
        query = select(Delivery).where(Delivery.status == "due", Delivery.due_at <= now)
        if reference is not None:  # the turn's own send: its inline SMS too (INLINE_GRACE)
            query = select(Delivery).where(
                Delivery.status == "due", Delivery.reference == reference,
                (Delivery.due_at <= now) | ((Delivery.kind == "sms") & (Delivery.attempts == 0)
                                            & (Delivery.due_at <= now + INLINE_GRACE)))
        query = query.order_by(Delivery.due_at).limit(BATCH)
        if not svc.db.is_sqlite:
            query = query.with_for_update(skip_locked=True)
        rows = (await session.scalars(query)).all()
        claimed: list[_Attempt] = []
        for d in rows:
            d.status, d.attempts = "sending", d.attempts + 1
            d.lease_until, d.updated_at = now + LEASE, now
        if not rows:
            return []
        refs = {d.reference for d in rows}
        transfers = {t.reference: t for t in (await session.scalars(
            select(Transfer).where(Transfer.reference.in_(refs)))).all()}
        for d in rows:
            t = transfers[d.reference]
            claimed.append(_Attempt(
                delivery_id=d.id, reference=d.reference, kind=d.kind, phone=d.phone,
                extension=d.extension, attempts=d.attempts, sender_id=t.sender_id,
                phone_display=str((t.recipient or {}).get("phone_display", d.phone)),
                call_code=t.call_code or "", call_at=t.call_at, sealed=t.password_sealed,
                started_at=now))
        opted_out = set((await session.scalars(select(SmsOptOut.phone).where(
            SmsOptOut.phone.in_({d.phone for d in rows})))).all())
        for a in claimed:
            if a.kind != "voice" and a.phone in opted_out:
                a.sealed = None
                a.outcome = SendOutcome("failed", dmsg.RECEIPT_OPTED_OUT)
                a.skip = True
    return claimed


async def _send(svc: Services, a: _Attempt) -> None:
    if a.skip:
        return
    try:
        if a.kind == "heads-up":
            local = (a.call_at or svc.clock()).astimezone(svc.policy.timezone)
            text = dmsg.HEADS_UP_SMS.format(organisation=svc.policy.organisation,
                                            time=f"{local:%H:%M}", reference=a.reference)
            a.outcome = await svc.transport.send_sms(to=a.phone, text=text,
                                                     reference=a.reference,
                                                     delivery_id=a.delivery_id)
            return
        if a.sealed is None:
            a.outcome = SendOutcome("failed", "the password is no longer held "
                                    "(cancelled or expired)")
            return
        if a.kind == "voice" and svc.transport.interactive_calls:
            a.outcome = await svc.transport.place_call(
                to=a.phone, extension=a.extension, script=None, reference=a.reference,
                delivery_id=a.delivery_id)
            return
        password = svc.vault.open(a.sealed, reference=a.reference)
        if a.kind == "voice":
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
        a.outcome = SendOutcome("failed", "the stored password cannot be opened with this "
                                "server's key")
    except Exception as exc:  # a transport bug must not lose the row or leak the secret
        log.error("password delivery for %s failed: %s", a.reference, type(exc).__name__)
        a.outcome = SendOutcome("failed", f"transport error ({type(exc).__name__})",
                                retryable=True)


def _how(kind: str) -> str:
    return {"voice": dmsg.HOW_VOICE, "heads-up": dmsg.HOW_HEADS_UP}.get(kind, dmsg.HOW_SMS)


def _backoff(svc: Services, attempts: int, kind: str) -> timedelta:
    rules = svc.policy.delivery
    if kind == "voice":
        return timedelta(minutes=rules.call_retry_minutes)
    # Doubling stops at a day: a policy allowing dozens of attempts must not overflow dates.
    doubled = rules.retry_backoff_seconds * 2 ** min(max(0, attempts - 1), 32)
    return timedelta(seconds=min(doubled, MAX_BACKOFF_SECONDS))


async def _after_failure(session: AsyncSession, svc: Services, d: Delivery, *, detail: str,
                         retryable: bool, now: datetime) -> Reply:
    """Retry later (transient), or give up and say why. Returns the sender's receipt."""
    how = _how(d.kind)
    transfer = await repo.get_transfer(session, reference=d.reference)
    phone = str(((transfer.recipient if transfer else None) or {}).get("phone_display",
                                                                       d.phone))
    if retryable and d.attempts < svc.policy.delivery.max_attempts:
        d.status, d.due_at = "due", now + _backoff(svc, d.attempts, d.kind)
        d.last_error, d.updated_at, d.lease_until = detail, now, None
        await audit.append(session, at=now, actor=svc.transport.name, action="password_retry",
                           reference=d.reference, details={
                               "method": d.kind, "attempt": d.attempts, "detail": detail,
                               "next_attempt_at": d.due_at.isoformat()})
        local = d.due_at.astimezone(svc.policy.timezone)
        return Text(dmsg.RECEIPT_RETRYING.format(reference=d.reference, how=how, phone=phone,
                                                 detail=detail, when=f"{local:%H:%M}"))
    d.status = "dead" if retryable else "failed"
    d.last_error, d.updated_at, d.lease_until = detail, now, None
    await audit.append(session, at=now, actor=svc.transport.name, action="password_failed",
                       reference=d.reference, details={
                           "method": d.kind, "attempts": d.attempts, "detail": detail,
                           "dead_lettered": retryable})
    return Text(dmsg.RECEIPT_DEAD.format(reference=d.reference, how=how, phone=phone,
                                         attempts=d.attempts, detail=detail))


async def _wipe_if_done(session: AsyncSession, reference: str, now: datetime) -> None:
    """Wipe the sealed password once nothing left needs it."""
    pending = [x for x in await repo.deliveries_for(session, reference=reference)
               if x.kind != "heads-up" and x.status not in FINAL]
    transfer = await repo.get_transfer(session, reference=reference)
    if pending or transfer is None or transfer.password_sealed is None:
        return
    transfer.password_sealed = None
    await audit.append(session, at=now, actor="safehaven", action="password_wiped",
                       reference=reference, details={"reason": "delivered"})


async def _record(svc: Services, attempts: Sequence[_Attempt]) -> list[tuple[str, Reply]]:
    now = svc.clock()
    receipts: list[tuple[str, Reply]] = []
    async with svc.db.transaction() as session:
        rows = {d.id: d for d in (await session.scalars(select(Delivery).where(
            Delivery.id.in_([a.delivery_id for a in attempts])))).all()}
        for a in attempts:
            d = rows.get(a.delivery_id)
            if d is None or d.status != "sending":
                continue
            o = a.outcome
            d.provider_sid = o.provider_sid or d.provider_sid
            how = _how(a.kind)
            if o.status == "failed":
                receipts.append((a.sender_id, await _after_failure(
                    session, svc, d, detail=o.detail, retryable=o.retryable, now=now)))
                continue
            if o.status == "unconfirmed":
                # It may have been accepted: never retried blindly (see reconcile_unconfirmed).
                d.status, d.lease_until, d.updated_at = "unconfirmed", None, now
                d.due_at, d.last_error = a.started_at + UNCONFIRMED_WAIT, o.detail
                await audit.append(session, at=now, actor=svc.transport.name,
                                   action="password_unconfirmed", reference=a.reference,
                                   details={"method": a.kind, "phone": a.phone_display,
                                            "attempt": d.attempts, "detail": o.detail,
                                            "check_at": d.due_at.isoformat()})
                if a.kind != "heads-up":
                    local = d.due_at.astimezone(svc.policy.timezone)
                    receipts.append((a.sender_id, Text(dmsg.RECEIPT_UNCONFIRMED.format(
                        reference=a.reference, how=how, phone=a.phone_display,
                        when=f"{local:%H:%M}"))))
                continue
            d.status, d.lease_until, d.updated_at = o.status, None, now
            d.last_error = None
            action = "password_delivered" if o.status == "delivered" else "password_sent"
            if a.kind == "heads-up":
                action = "heads_up_sent"
            await audit.append(session, at=now, actor=svc.transport.name, action=action,
                               reference=a.reference, details={
                                   "method": a.kind, "phone": a.phone_display,
                                   "attempt": d.attempts, "provider_id": o.provider_sid})
            if o.status == "delivered":
                await _wipe_if_done(session, a.reference, now)
                receipts.append((a.sender_id, Text(msg.PASSWORD_SENT.format(
                    reference=a.reference, how=how, phone=a.phone_display))))
            elif a.kind != "heads-up":
                queued = dmsg.RECEIPT_CALLING if a.kind == "voice" else dmsg.RECEIPT_QUEUED
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
            return await _record(svc, attempts)
        except (DBAPIError, OSError) as exc:
            if isinstance(exc, IntegrityError | ProgrammingError | DataError):
                raise
            now = time.monotonic()
            deadline = deadline if deadline is not None else now + RECORD_PATIENCE
            if now >= deadline:
                raise
            log.warning("recording %d delivery outcomes failed (database unreachable: %s); "
                        "retrying", len(attempts), type(exc).__name__)
            await asyncio.sleep(min(pause, deadline - now))
            pause = min(pause * 2, 4.0)


# --- unconfirmed sends: asking the provider ------------------------------------------------


@dataclass
class _Check:
    delivery_id: int
    reference: str
    kind: str
    phone: str
    attempts: int
    since: datetime  # the attempt began at or after this (less CLOCK_SKEW)
    records: Sequence[ProviderRecord] | None = None  # None: the provider could not be asked
    error: str = ""


# Provider statuses of a message or call that did not get through (and will not).
_NOT_THROUGH = ("failed", "undelivered", "canceled", "busy", "no-answer")
_CALL_ENDED = ("completed", "busy", "no-answer", "failed", "canceled")


async def _claim_unconfirmed(svc: Services, now: datetime, reference: str | None
                             ) -> list[_Check]:
    """Unconfirmed rows whose wait is over, held by a lease while the provider is asked
    (asking is read-only: a worker dying meanwhile only means another asks again)."""
    async with svc.db.transaction() as session:
        query = select(Delivery).where(
            Delivery.status == "unconfirmed", Delivery.due_at <= now,
            or_(Delivery.lease_until.is_(None), Delivery.lease_until <= now))
        if reference is not None:
            query = query.where(Delivery.reference == reference)
        query = query.order_by(Delivery.due_at).limit(BATCH)
        if not svc.db.is_sqlite:
            query = query.with_for_update(skip_locked=True)
        rows = (await session.scalars(query)).all()
        for d in rows:
            d.lease_until = now + LEASE
        return [_Check(delivery_id=d.id, reference=d.reference, kind=d.kind, phone=d.phone,
                       attempts=d.attempts,
                       since=(d.due_at or now) - UNCONFIRMED_WAIT - CLOCK_SKEW)
                for d in rows]


async def _ask(svc: Services, c: _Check) -> None:
    transport = svc.transport
    if not isinstance(transport, Reconciler):
        c.error = f"the {transport.name} transport cannot list what it sent"
        return
    try:
        if c.kind == "voice":
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
    the attempt began that no other delivery (nor an earlier attempt) owns and that does not
    plainly name another transfer counts: when in doubt it is ours, because adopting a
    message wrongly costs a "sent" receipt, while missing one costs a second SMS. A record
    that got through is preferred to one that did not."""
    mine = [r for r in records
            if _PROVIDER_ID.fullmatch(r.sid) and r.sid not in owned
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
        owned = {sid for sid in await session.scalars(select(Delivery.provider_sid).where(
            Delivery.provider_sid.in_(seen))) if sid} if seen else set()
        for c in checks:
            d = await session.get(Delivery, c.delivery_id)
            if d is None or d.status != "unconfirmed" or d.attempts != c.attempts:
                continue  # a callback settled it meanwhile
            d.lease_until = None
            transfer = await repo.get_transfer(session, reference=d.reference)
            phone = _phone(transfer, d)
            sender = transfer.sender_id if transfer is not None else None
            how = _how(d.kind)
            details: dict[str, object] = {"method": d.kind, "attempt": d.attempts,
                                          "records": len(c.records or ())}
            if c.records is None:
                d.status, d.updated_at = "interrupted", now
                d.last_error = f"{dmsg.DETAIL_CANNOT_CHECK} ({c.error})"
                await audit.append(session, at=now, actor="safehaven", action="password_checked",
                                   reference=d.reference, details={
                                       **details, "result": "could not ask", "error": c.error})
                await audit.append(session, at=now, actor="safehaven",
                                   action="password_interrupted", reference=d.reference,
                                   details={"method": d.kind, "attempt": d.attempts,
                                            "detail": d.last_error})
                if sender is not None and d.kind != "heads-up":
                    receipts.append((sender, Text(dmsg.RECEIPT_UNCONFIRMED_UNKNOWN.format(
                        reference=d.reference, how=how, phone=phone))))
                continue
            found = _pick(c.records, owned, c.since)
            if found is None:
                await audit.append(session, at=now, actor="safehaven", action="password_checked",
                                   reference=d.reference, details={**details,
                                                                   "result": "not found"})
                if transfer is None or transfer.password_sealed is None:
                    d.status, d.updated_at = "cancelled", now  # nothing left to send
                    d.last_error = dmsg.DETAIL_NOT_AT_TWILIO
                    continue
                reply = await _after_failure(session, svc, d, detail=dmsg.DETAIL_NOT_AT_TWILIO,
                                             retryable=True, now=now)
                if sender is not None:
                    receipts.append((sender, reply))
                continue
            owned.add(found.sid)  # no other delivery in this batch can take it too
            await audit.append(session, at=now, actor="safehaven", action="password_checked",
                               reference=d.reference, details={
                                   **details, "result": "found", "provider_id": found.sid,
                                   "provider_status": found.status})
            await _adopt(session, svc, d, found.sid, transfer=transfer,
                         actor=svc.transport.name, by="provider list", now=now)
            if transfer is None:
                continue
            if d.kind == "voice":
                if found.status in _CALL_ENDED:
                    out: Reply | None = await _call_ended(session, svc, d, status=found.status,
                                                          answered_by=None, now=now)
                else:
                    out = Text(dmsg.RECEIPT_CALLING.format(reference=d.reference, phone=phone))
            else:
                out = await _sms_outcome(session, svc, d, transfer, status=found.status,
                                         error=found.error, now=now, adopted=True)
            if out is not None:
                receipts.append((transfer.sender_id, out))
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


async def run_due(svc: Services, *, reference: str | None = None) -> list[Reply]:
    """Settle unconfirmed sends whose wait is over, then send every due delivery (or only
    ``reference``'s). Receipts for the transfer named by ``reference`` come back as replies
    (its sender is the one talking); others go to their senders through the notifier.
    Returns when nothing due is left."""
    replies: list[Reply] = []
    sem = asyncio.Semaphore(CONCURRENCY)

    async def send(a: _Attempt) -> None:
        async with sem:
            await _send(svc, a)

    async def tell(receipts: list[tuple[str, Reply]]) -> None:
        for sender, receipt in receipts:
            if reference is not None:
                replies.append(receipt)
            else:
                await svc.notifier.notify(sender, [receipt])

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
        rows = (await session.scalars(select(Delivery).where(
            Delivery.status == "sending", Delivery.lease_until < now))).all()
        for d in rows:
            d.status, d.updated_at = "interrupted", now
            transfer = await repo.get_transfer(session, reference=d.reference)
            await audit.append(session, at=now, actor="safehaven",
                               action="password_interrupted", reference=d.reference,
                               details={"method": d.kind, "attempt": d.attempts})
            if transfer is not None and d.kind != "heads-up":
                phone = str((transfer.recipient or {}).get("phone_display", d.phone))
                told.append((transfer.sender_id, Text(dmsg.RECEIPT_INTERRUPTED.format(
                    reference=d.reference, phone=phone)), d.reference))
    for sender, reply, ref in told:
        await svc.notifier.notify(sender, [reply], reference=ref)
    return len(told)


# --- provider callbacks --------------------------------------------------------------------


_MAX_ID = 2**31 - 1  # deliveries.id is a 32-bit integer column
_PROVIDER_ID = re.compile(r"[A-Za-z0-9]{1,64}")  # Twilio SIDs (deliveries.provider_sid)
_SENDER = re.compile(r"\+?[A-Za-z0-9]{1,32}")  # E.164 or a short code (sms_optouts.phone)


async def _delivery(session: AsyncSession, delivery_id: int) -> Delivery | None:
    """The row a callback URL names; None for ids no row can have (junk from outside)."""
    if not 0 < delivery_id <= _MAX_ID:
        return None
    return await session.get(Delivery, delivery_id)


async def _by_sid(session: AsyncSession, sid: str) -> Delivery | None:
    return (await session.scalars(select(Delivery).where(Delivery.provider_sid == sid))).first()


def _phone(transfer: Transfer | None, d: Delivery) -> str:
    return str(((transfer.recipient if transfer else None) or {}).get("phone_display",
                                                                       d.phone))


async def _adopt(session: AsyncSession, svc: Services, d: Delivery, sid: str, *,
                 transfer: Transfer | None, actor: str, by: str, now: datetime) -> None:
    """An unconfirmed attempt turns out to have been accepted (``by`` a signed callback
    naming the delivery, or the provider's list): record it as sent, as a prompt answer
    would have been."""
    d.provider_sid, d.status, d.lease_until, d.updated_at = sid, "sent", None, now
    d.last_error = None
    await audit.append(session, at=now, actor=actor,
                       action="heads_up_sent" if d.kind == "heads-up" else "password_sent",
                       reference=d.reference, details={
                           "method": d.kind, "phone": _phone(transfer, d),
                           "attempt": d.attempts, "provider_id": sid, "confirmed_by": by})


async def _adoptable(session: AsyncSession, d: Delivery | None, sid: str) -> bool:
    """Whether a signed callback naming delivery ``d`` (in its URL) may adopt ``sid``: ``d``
    is ``unconfirmed``, or still ``sending`` (the callback overtook Twilio's slow answer;
    recording the attempt then leaves the row alone), and ``sid`` is not an earlier
    attempt's id (kept in ``provider_sid``) nor another delivery's."""
    return (d is not None and d.status in ("unconfirmed", "sending") and d.provider_sid != sid
            and _PROVIDER_ID.fullmatch(sid) is not None and await _by_sid(session, sid) is None)


async def _sms_outcome(session: AsyncSession, svc: Services, d: Delivery, transfer: Transfer,
                       *, status: str, error: str | None, now: datetime,
                       adopted: bool = False) -> Reply | None:
    """Apply an SMS status (from a callback or the provider's list) to a sent row; returns
    the sender's receipt, if any."""
    phone = _phone(transfer, d)
    if status == "delivered":
        d.status, d.updated_at = "delivered", now
        await audit.append(session, at=now, actor="twilio", action="password_delivered"
                           if d.kind != "heads-up" else "heads_up_delivered",
                           reference=d.reference, details={"method": d.kind,
                                                           "phone": phone})
        await _wipe_if_done(session, d.reference, now)
        if d.kind != "heads-up":
            return Text(msg.PASSWORD_SENT.format(reference=d.reference, how=_how(d.kind),
                                                 phone=phone))
        return None
    if status in ("undelivered", "failed", "canceled"):
        detail = f"the network reported it {status}" + (f" (error {error})" if error else "")
        return await _after_failure(session, svc, d, detail=detail, retryable=True, now=now)
    if adopted and d.kind != "heads-up":  # on its way: the receipt a prompt answer gives
        return Text(dmsg.RECEIPT_QUEUED.format(reference=d.reference, phone=phone))
    return None


async def sms_status(svc: Services, *, provider_sid: str, status: str,
                     error: str | None = None, delivery_id: int | None = None,
                     to: str | None = None) -> bool:
    """A provider status callback for an SMS. False if it matches no delivery.

    ``delivery_id`` is the one our callback URL names (``?d=``): a callback for a send left
    ``unconfirmed`` (or still ``sending``) adopts its message id, if ``to`` is the
    delivery's number."""
    if not _PROVIDER_ID.fullmatch(provider_sid):
        return False
    now = svc.clock()
    receipt: tuple[str, Reply, str] | None = None
    async with svc.db.transaction() as session:
        d = await _by_sid(session, provider_sid)
        adopt = False
        if d is None and delivery_id is not None:
            d = await _delivery(session, delivery_id)
            adopt = (await _adoptable(session, d, provider_sid) and d is not None
                     and d.kind != "voice" and (to is None or to == d.phone))
            if not adopt:
                return False
        if d is None:
            return False
        await audit.append(session, at=now, actor="twilio", action="sms_status",
                           reference=d.reference, details={"method": d.kind, "status": status,
                                                           "error": error})
        if d.status in FINAL or (d.status in ("unconfirmed", "sending") and not adopt):
            return True  # settled, or about an earlier attempt than the one in doubt
        transfer = await repo.get_transfer(session, reference=d.reference)
        assert transfer is not None
        if adopt:
            await _adopt(session, svc, d, provider_sid, transfer=transfer, actor="twilio",
                         by="status callback", now=now)
        reply = await _sms_outcome(session, svc, d, transfer, status=status, error=error,
                                   now=now, adopted=adopt)
        if reply is not None:
            receipt = (transfer.sender_id, reply, d.reference)
    if receipt is not None:
        await svc.notifier.notify(receipt[0], [receipt[1]], reference=receipt[2])
    return True


@dataclass(frozen=True)
class Say:
    text: str


@dataclass(frozen=True)
class Pause:
    seconds: int


@dataclass(frozen=True)
class Gather:
    """Collect keypad digits, then continue at ``step`` (code | repeat)."""

    step: str
    digits: int
    prompt: tuple[Say | Pause, ...]
    timeout_seconds: int = 10


@dataclass(frozen=True)
class Hangup:
    pass


CallAction = Say | Pause | Gather | Hangup


def _ask_code(svc: Services, *, first: bool) -> list[CallAction]:
    greeting: list[Say | Pause] = [Say(dmsg.CALL_GREETING.format(
        organisation=svc.policy.organisation)), Pause(1)] if first else []
    return [Gather("code", 6, (*greeting, Say(dmsg.CALL_ASK_CODE))),
            Say(dmsg.CALL_NO_CODE), Gather("code", 6, (Say(dmsg.CALL_ASK_CODE),)),
            Say(dmsg.CALL_GOODBYE), Hangup()]


async def call_answered(svc: Services, *, delivery_id: int, call_sid: str,
                        answered_by: str | None) -> list[CallAction]:
    """The call connected. A machine gets nothing; a person is asked for the code first.
    A call whose placing was left ``unconfirmed`` is adopted here (the signed request names
    the delivery in its URL, which only our create request for it gave Twilio)."""
    now = svc.clock()
    calling: tuple[str, Reply, str] | None = None
    async with svc.db.transaction() as session:
        d = await _delivery(session, delivery_id)
        if d is not None and d.kind == "voice" and await _adoptable(session, d, call_sid):
            transfer = await repo.get_transfer(session, reference=d.reference)
            await _adopt(session, svc, d, call_sid, transfer=transfer, actor="twilio",
                         by="call webhook", now=now)
            if transfer is not None:
                calling = (transfer.sender_id, Text(dmsg.RECEIPT_CALLING.format(
                    reference=d.reference, phone=_phone(transfer, d))), d.reference)
        if d is None or d.kind != "voice" or d.provider_sid != call_sid or d.status != "sent":
            return [Hangup()]
        machine = _is_machine(answered_by)
        if machine:
            d.last_error = dmsg.RECEIPT_MACHINE
            await audit.append(session, at=now, actor="twilio", action="call_machine",
                               reference=d.reference, details={"answered_by": answered_by})
        else:
            await audit.append(session, at=now, actor="twilio", action="call_answered",
                               reference=d.reference, details={"answered_by": answered_by})
    if calling is not None:
        await svc.notifier.notify(calling[0], [calling[1]], reference=calling[2])
    return [Hangup()] if machine else _ask_code(svc, first=True)


def _is_machine(answered_by: str | None) -> bool:
    """Twilio's ``AnsweredBy``: ``machine_start``, ``machine_end_*`` or ``fax``."""
    return bool(answered_by) and str(answered_by).startswith(("machine", "fax"))


async def call_machine_verdict(svc: Services, *, delivery_id: int, call_sid: str,
                               answered_by: str) -> bool:
    """The asynchronous answering-machine verdict on a direct call that is already speaking.
    It ends nothing: the code check keeps the password from a machine, and a person judged
    a machine by mistake must still hear the call. A machine verdict only tells the sender,
    should no code come back, why. False if it matches no call of ours."""
    now = svc.clock()
    async with svc.db.transaction() as session:
        d = await _delivery(session, delivery_id)
        if d is None or d.kind != "voice" or d.provider_sid != call_sid:
            return False
        machine = _is_machine(answered_by)
        await audit.append(session, at=now, actor="twilio",
                           action="call_machine" if machine else "call_machine_check",
                           reference=d.reference, details={"answered_by": answered_by[:40],
                                                           "detection": "async"})
        if machine and d.status == "sent":
            d.last_error, d.updated_at = dmsg.RECEIPT_MACHINE, now
    return True


async def _spell(svc: Services, d: Delivery, sealed: str) -> list[CallAction]:
    password = svc.vault.open(sealed, reference=d.reference)
    actions: list[CallAction] = [Say(dmsg.CALL_PASSWORD_INTRO.format(
        reference=" ".join(d.reference)))]
    for phrase in spell_for_voice(password):
        actions += [Say(phrase), Pause(1)]
    del password
    actions += [Gather("repeat", 1, (Say(dmsg.CALL_REPEAT_PROMPT),)), Say(dmsg.CALL_GOODBYE),
                Hangup()]
    return actions


async def call_code(svc: Services, *, delivery_id: int, call_sid: str, digits: str
                    ) -> list[CallAction]:
    """The recipient keyed in a code. Only the right code, on this call, hears the password."""
    now = svc.clock()
    alert: tuple[str, Reply, str] | None = None
    async with svc.db.transaction() as session:
        d = await _delivery(session, delivery_id)
        if d is None or d.kind != "voice" or d.provider_sid != call_sid or d.status != "sent":
            return [Hangup()]
        transfer = await repo.get_transfer(session, reference=d.reference)
        assert transfer is not None
        expected = (transfer.call_code or "").encode()
        if expected and hmac.compare_digest(digits.strip().encode(), expected):
            if transfer.password_sealed is None:
                return [Say(dmsg.CALL_GOODBYE), Hangup()]
            d.verified_call_sid, d.status, d.updated_at = call_sid, "delivered", now
            await audit.append(session, at=now, actor="twilio", action="password_delivered",
                               reference=d.reference, details={
                                   "method": "voice", "code_check": "passed",
                                   "phone": (transfer.recipient or {}).get("phone_display")})
            actions = await _spell(svc, d, transfer.password_sealed)
            alert = (transfer.sender_id, Text(msg.PASSWORD_SENT.format(
                reference=d.reference, how=dmsg.HOW_VOICE,
                phone=(transfer.recipient or {}).get("phone_display", d.phone))), d.reference)
        else:
            d.code_failures += 1
            await audit.append(session, at=now, actor="twilio", action="call_code_wrong",
                               reference=d.reference, details={"failures": d.code_failures})
            if d.code_failures < svc.policy.delivery.code_attempts:
                return [Say(dmsg.CALL_WRONG_CODE), *_ask_code(svc, first=False)]
            d.status, d.last_error, d.updated_at = "failed", "wrong code", now
            await audit.append(session, at=now, actor="twilio", action="password_failed",
                               reference=d.reference, details={
                                   "method": "voice", "detail": "wrong code too many times"})
            phone = (transfer.recipient or {}).get("phone_display", d.phone)
            alert = (transfer.sender_id, Text(dmsg.RECEIPT_WRONG_CODE.format(
                reference=d.reference, phone=phone, count=d.code_failures)), d.reference)
            actions = [Say(dmsg.CALL_TOO_MANY), Hangup()]
    if alert is not None:
        await svc.notifier.notify(alert[0], [alert[1]], reference=alert[2])
    return actions


async def call_repeat(svc: Services, *, delivery_id: int, call_sid: str, digits: str
                      ) -> list[CallAction]:
    async with svc.db.read() as session:
        d = await _delivery(session, delivery_id)
        if d is None or d.verified_call_sid != call_sid or digits.strip() != "1":
            return [Say(dmsg.CALL_GOODBYE), Hangup()]
        transfer = await repo.get_transfer(session, reference=d.reference)
    if transfer is None or transfer.password_sealed is None:
        return [Say(dmsg.CALL_GOODBYE), Hangup()]
    return await _spell(svc, d, transfer.password_sealed)


async def call_status(svc: Services, *, delivery_id: int, call_sid: str, status: str,
                      answered_by: str | None = None) -> bool:
    """Final call status: completed, busy, no-answer, failed, canceled. A call whose
    placing was left ``unconfirmed`` is adopted here, as in :func:`call_answered`."""
    now = svc.clock()
    receipt: tuple[str, Reply, str] | None = None
    async with svc.db.transaction() as session:
        d = await _delivery(session, delivery_id)
        if d is not None and d.kind == "voice" and await _adoptable(session, d, call_sid):
            await _adopt(session, svc, d, call_sid,
                         transfer=await repo.get_transfer(session, reference=d.reference),
                         actor="twilio", by="call status callback", now=now)
        if d is None or d.provider_sid != call_sid:
            return False
        await audit.append(session, at=now, actor="twilio", action="call_status",
                           reference=d.reference, details={"status": status,
                                                           "answered_by": answered_by})
        if d.status == "delivered":
            await _wipe_if_done(session, d.reference, now)
            return True
        if d.status != "sent":
            return True
        transfer = await repo.get_transfer(session, reference=d.reference)
        assert transfer is not None
        reply = await _call_ended(session, svc, d, status=status, answered_by=answered_by,
                                  now=now)
        receipt = (transfer.sender_id, reply, d.reference)
    await svc.notifier.notify(receipt[0], [receipt[1]], reference=receipt[2])
    return True


async def _call_ended(session: AsyncSession, svc: Services, d: Delivery, *, status: str,
                      answered_by: str | None, now: datetime) -> Reply:
    """A sent call ended without the password being read out: retry or give up."""
    machine = _is_machine(answered_by)
    detail = (dmsg.RECEIPT_MACHINE if machine else
              {"busy": dmsg.RECEIPT_BUSY, "no-answer": dmsg.RECEIPT_NO_ANSWER}.get(
                  status, d.last_error or (dmsg.RECEIPT_NO_CODE if status == "completed"
                                           else f"the call ended ({status})")))
    return await _after_failure(session, svc, d, detail=detail,
                                retryable=status != "failed" or machine, now=now)


STOP_WORDS = ("stop", "stopall", "unsubscribe", "cancel", "end", "quit")
START_WORDS = ("start", "unstop", "yes")


async def sms_reply(svc: Services, *, from_phone: str, body: str) -> None:
    """A recipient replied to our SMS: STOP/START (carrier rules) or CALL."""
    if not _SENDER.fullmatch(from_phone):
        log.warning("ignored an SMS reply from an unusable sender id")
        return
    word = body.strip().split()[0].lower() if body.strip() else ""
    now = svc.clock()
    notify: tuple[str, Reply, str] | None = None
    async with svc.db.transaction() as session:
        if word in STOP_WORDS:
            if await session.get(SmsOptOut, from_phone) is None:
                session.add(SmsOptOut(phone=from_phone, opted_out_at=now))
            await audit.append(session, at=now, actor="recipient", action="sms_opt_out",
                               details={"phone": from_phone})
            return
        if word in START_WORDS:
            await session.execute(delete(SmsOptOut).where(SmsOptOut.phone == from_phone))
            await audit.append(session, at=now, actor="recipient", action="sms_opt_in",
                               details={"phone": from_phone})
            return
        if word != "call":
            return
        latest = (await session.scalars(
            select(Delivery).where(Delivery.phone == from_phone, Delivery.kind == "sms")
            .order_by(Delivery.created_at.desc(), Delivery.id.desc()).limit(1))).first()
        if latest is None:
            return
        transfer = await repo.get_transfer(session, reference=latest.reference)
        if transfer is None:
            return
        await audit.append(session, at=now, actor="recipient", action="call_requested",
                           reference=latest.reference, details={"phone": from_phone})
        notify = (transfer.sender_id, Text(dmsg.RECIPIENT_ASKS_CALL.format(
            reference=latest.reference)), latest.reference)
    if notify is not None:
        await svc.notifier.notify(notify[0], [notify[1]], reference=notify[2])
