"""Out-of-band password delivery: schedule it, send what is due, record receipts.

A delivery is a row with a due time. ``run_due`` claims each due row with a conditional
update before sending, so two schedulers (or a retry) never send the same password twice.
Once every delivery of a transfer has reached the recipient, the sealed password is wiped.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import transfers as msg
from bot.passwords import spell_for_voice
from bot.replies import Reply, Text
from bot.vault import VaultError
from handlers.ports import SendOutcome
from handlers.services import Services
from store import audit
from store import repositories as repo
from store.models import Delivery, Transfer

log = logging.getLogger(__name__)


def call_script(*, organisation: str, reference: str, code: str, password: str) -> list[str]:
    """What the voice call says, in order. The password comes only after the code check."""
    return [
        f"Hello. This is an automated call from {organisation}, Safe Haven secure transfer.",
        "Before I say anything else, please key in the six digit code from our email, "
        "then press hash.",
        f"[recipient keys in {code}: correct]",
        f"Thank you. Here is the password for transfer {' '.join(reference)}. "
        "I will spell it slowly.",
        *spell_for_voice(password),
        "To hear it again, press 1. Otherwise, goodbye.",
    ]


async def schedule(session: AsyncSession, svc: Services, *, transfer: Transfer,
                   now: datetime) -> str:
    """Create the delivery row for the chosen method; returns the plan to tell the sender."""
    recipient = transfer.recipient or {}
    phone = str(recipient.get("phone_display", ""))
    method = transfer.password_method
    if method == "voice":
        assert transfer.call_at is not None
        row = Delivery(reference=transfer.reference, kind="voice", status="due",
                       due_at=transfer.call_at, phone=recipient["phone"],
                       extension=recipient.get("extension"), created_at=now, updated_at=now)
        local = transfer.call_at.astimezone(svc.policy.timezone)
        plan = msg.PASSWORD_PLAN_VOICE.format(phone=phone, when=f"{local:%a %d %b %H:%M}",
                                              code=transfer.call_code)
    else:
        waiting = method == "sms-on-receipt"
        row = Delivery(reference=transfer.reference, kind="sms",
                       status="waiting" if waiting else "due", due_at=None if waiting else now,
                       phone=recipient["phone"], extension=None, created_at=now, updated_at=now)
        plan = (msg.PASSWORD_PLAN_ON_RECEIPT.format(reference=transfer.reference, phone=phone)
                if waiting else msg.PASSWORD_PLAN_SMS.format(phone=phone))
    session.add(row)
    await audit.append(session, at=now, actor="safehaven", action="password_scheduled",
                       reference=transfer.reference, details={
                           "method": method, "due_at": row.due_at.isoformat() if row.due_at
                           else "on receipt", "phone": phone})
    return plan


async def confirm_receipt(svc: Services, *, reference: str, by: str) -> list[Reply]:
    """The sender says the recipient has the archive: release the waiting SMS."""
    async with svc.db.read() as session:
        transfer = await repo.get_transfer(session, reference=reference)
    if transfer is None:
        return [Text(msg.UNKNOWN_TRANSFER.format(reference=reference))]
    if transfer.sender_id != by:
        return [Text(msg.NOT_YOUR_TRANSFER.format(reference=reference))]
    released = await release_on_receipt(svc, reference=reference, actor=by, source="sender")
    if not released:
        return [Text(msg.RECEIPT_NOT_EXPECTED.format(reference=reference))]
    return [Text(msg.RECEIPT_RECORDED.format(reference=reference)),
            *await run_due(svc, reference=reference)]


async def release_on_receipt(svc: Services, *, reference: str, actor: str, source: str) -> bool:
    """Make a transfer's "SMS once receipt is confirmed" delivery due now (the sender said
    so, or the portal saw the first download). False if nothing was waiting. Callers that
    are not the sender's own turn should then let the scheduler (or ``run_due``) send it."""
    now = svc.clock()
    async with svc.db.transaction() as session:
        waiting = [d for d in await repo.deliveries_for(session, reference=reference)
                   if d.status == "waiting"]
        if not waiting:
            return False
        for d in waiting:
            d.status, d.due_at, d.updated_at = "due", now, now
        await audit.append(session, at=now, actor=actor, action="receipt_confirmed",
                           reference=reference, details={"by": source})
    return True


async def run_due(svc: Services, *, reference: str | None = None) -> list[Reply]:
    """Send every due delivery (or only ``reference``'s). Receipts for senders other than
    the caller go through the notifier; the caller's own come back as replies."""
    now = svc.clock()
    async with svc.db.read() as session:
        due = await repo.due_deliveries(session, now=now)
    replies: list[Reply] = []
    for d in due:
        if reference is not None and d.reference != reference:
            continue
        receipt, sender = await _send_one(svc, d.id)
        if receipt is None or sender is None:
            continue
        if reference is not None:
            replies.append(receipt)
        else:
            await svc.notifier.notify(sender, [receipt], reference=d.reference)
    return replies


async def _send_one(svc: Services, delivery_id: int) -> tuple[Reply | None, str | None]:
    now = svc.clock()
    async with svc.db.transaction() as session:
        if not await repo.claim_delivery(session, delivery_id=delivery_id, now=now):
            return None, None
        d = await session.get(Delivery, delivery_id)
        assert d is not None
        transfer = await repo.get_transfer(session, reference=d.reference)
        assert transfer is not None
        sealed = transfer.password_sealed
    how = msg.PASSWORD_HOW_VOICE if d.kind == "voice" else msg.PASSWORD_HOW_SMS
    phone = str((transfer.recipient or {}).get("phone_display", d.phone))
    outcome: SendOutcome
    if sealed is None:
        outcome = SendOutcome("failed", "the password is no longer held (cancelled or expired)")
    else:
        try:
            password = svc.vault.open(sealed, reference=d.reference)
        except VaultError:
            outcome = SendOutcome("failed", "the stored password cannot be opened with this "
                                  "server's key")
        else:
            outcome = await _transmit(svc, d, transfer, password)
            del password
    now = svc.clock()
    async with svc.db.transaction() as session:
        row = await session.get(Delivery, delivery_id)
        assert row is not None
        # Retries with backoff for transient transport errors arrive with the Twilio
        # transport; the console transport either delivers or fails for good.
        row.status = outcome.status
        row.last_error = outcome.detail or None
        row.updated_at = now
        action = {"sent": "password_sent", "delivered": "password_delivered",
                  "failed": "password_failed"}[outcome.status]
        await audit.append(session, at=now, actor=svc.transport.name, action=action,
                           reference=d.reference, details={
                               "method": d.kind, "phone": phone, "attempt": row.attempts,
                               "detail": outcome.detail})
        if outcome.status == "delivered":
            pending = [x for x in await repo.deliveries_for(session, reference=d.reference)
                       if x.id != delivery_id and x.status in ("waiting", "due", "sending")]
            if not pending:
                t = await repo.get_transfer(session, reference=d.reference)
                assert t is not None
                t.password_sealed = None
                await audit.append(session, at=now, actor="safehaven", action="password_wiped",
                                   reference=d.reference, details={"reason": "delivered"})
    if outcome.status == "failed":
        receipt = Text(msg.PASSWORD_FAILED.format(reference=d.reference, how=how, phone=phone,
                                                  detail=outcome.detail))
    else:
        receipt = Text(msg.PASSWORD_SENT.format(reference=d.reference, how=how, phone=phone))
    return receipt, transfer.sender_id


async def _transmit(svc: Services, d: Delivery, transfer: Transfer, password: str
                    ) -> SendOutcome:
    try:
        if d.kind == "voice":
            script: Sequence[str] = call_script(
                organisation=svc.policy.organisation, reference=d.reference,
                code=transfer.call_code or "", password=password)
            return await svc.transport.place_call(to=d.phone, extension=d.extension,
                                                  script=script, reference=d.reference)
        text = svc.policy.sms_template.format(reference=d.reference, password=password,
                                              organisation=svc.policy.organisation)
        return await svc.transport.send_sms(to=d.phone, text=text, reference=d.reference)
    except Exception as exc:  # a transport bug must not lose the delivery or leak the secret
        log.error("password delivery for %s failed: %s", d.reference, type(exc).__name__)
        return SendOutcome("failed", f"transport error ({type(exc).__name__})")
