"""When a transfer's password goes out: the rows its method needs, and what changes them.

:func:`schedule` (in the packaging transaction) creates them: an SMS due now, an SMS
``waiting`` for receipt, or a voice call at the agreed time with a heads-up SMS before it.
Receipt, said by the sender or seen by the portal's first download, makes the waiting SMS
due (:func:`release_on_receipt`); the sender may instead book a call (:func:`book_call`),
which cancels an SMS not yet sent. ``dispatch`` sends whatever is due.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.answer_checks import parse_call_time
from bot.messages import delivery as dmsg
from bot.messages import transfers as msg
from bot.replies import Reply, Text
from bot.state import TurnContext
from bot.statuses import PasswordMethod, SendKind, SendStatus
from handlers import access
from handlers.password_sends.dispatch import INLINE_GRACE, run_due
from handlers.password_sends.outcomes import TransferView
from handlers.services import Services
from store import audit
from store import repositories as repo
from store.repositories import NewPasswordSend, Session


async def schedule(session: Session, svc: Services, *, transfer: TransferView,
                   now: datetime) -> str:
    """Create the send rows for the chosen method; returns the plan for the sender."""
    recipient = transfer.recipient or {}
    phone = str(recipient.get("phone_display", ""))
    method = transfer.password_method
    sends: list[NewPasswordSend] = []
    if method == PasswordMethod.VOICE:
        assert transfer.call_at is not None
        sends.append(NewPasswordSend(reference=transfer.reference, kind=SendKind.VOICE,
                                     status=SendStatus.DUE, due_at=transfer.call_at,
                                     phone=recipient["phone"],
                                     extension=recipient.get("extension")))
        heads_up = svc.policy.delivery.heads_up_minutes
        heads_up_at = transfer.call_at - timedelta(minutes=heads_up)
        if heads_up and heads_up_at > now and recipient.get("is_mobile") \
                and not recipient.get("extension"):
            sends.append(NewPasswordSend(reference=transfer.reference, kind=SendKind.HEADS_UP,
                                         status=SendStatus.DUE, due_at=heads_up_at,
                                         phone=recipient["phone"]))
        local = transfer.call_at.astimezone(svc.policy.timezone)
        plan = msg.PASSWORD_PLAN_VOICE.format(phone=phone, when=f"{local:%a %d %b %H:%M}",
                                              code=transfer.call_code)
    else:
        waiting = method == PasswordMethod.SMS_ON_RECEIPT
        sends.append(NewPasswordSend(reference=transfer.reference, kind=SendKind.SMS,
                                     status=SendStatus.WAITING if waiting else SendStatus.DUE,
                                     due_at=None if waiting else now + INLINE_GRACE,
                                     phone=recipient["phone"]))
        plan = (msg.PASSWORD_PLAN_ON_RECEIPT.format(reference=transfer.reference, phone=phone)
                if waiting else msg.PASSWORD_PLAN_SMS.format(phone=phone))
    await repo.add_sends(session, sends=sends, now=now)
    for send in sends:
        await audit.append(session, at=now, actor="safehaven", action="password_scheduled",
                           reference=transfer.reference, details={
                               "method": send.kind, "phone": phone,
                               "due_at": send.due_at.isoformat() if send.due_at
                               else "on receipt"})
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
    """Make a transfer's "SMS once receipt is confirmed" send due now (the sender said
    so, or the portal saw the first download). False if nothing was waiting."""
    now = svc.clock()
    async with svc.db.transaction() as session:
        # due after INLINE_GRACE: the caller sends it inline
        if not await repo.release_waiting_sends(
                session, reference=reference, due_at=now + INLINE_GRACE, now=now,
                held=(dmsg.DETAIL_RESTORE_CHECK_WAITING, dmsg.DETAIL_RESTORE_CHECK_DUE)):
            return False
        await audit.append(session, at=now, actor=actor, action="receipt_confirmed",
                           reference=reference, details={"by": source})
    return True


async def book_call(svc: Services, *, reference: str, by: str, when_text: str) -> list[Reply]:
    """The sender agreed a call time (e.g. after the recipient replied CALL to the SMS)."""
    now = svc.clock()
    ctx = TurnContext(policy=svc.policy, now=now, user_id=by,
                             default_region=svc.settings.default_region,
                             new_reference=svc.new_reference)
    when = parse_call_time(when_text, ctx)
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
        existing = {d.kind: d for d in await repo.sends_for(session, reference=reference)}
        await repo.book_voice_send(session, reference=reference, phone=recipient["phone"],
                                   extension=recipient.get("extension"), due_at=when, now=now)
        sms = existing.get(SendKind.SMS)
        if sms is not None:
            await repo.move_send(session, send_id=sms.id, now=now, status=SendStatus.CANCELLED,
                                 only_from=(SendStatus.WAITING, SendStatus.DUE))
        await audit.append(session, at=now, actor=by, action="password_scheduled",
                           reference=reference, details={"method": "voice",
                                                         "due_at": when.isoformat(),
                                                         "reason": "call booked by sender"})
    local = when.astimezone(svc.policy.timezone)
    return [Text(dmsg.CALL_BOOKED.format(phone=recipient.get("phone_display", ""),
                                         reference=reference,
                                         when=f"{local:%a %d %b %H:%M}"))]
