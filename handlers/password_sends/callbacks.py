"""The provider's signed status callbacks: what became of an SMS, how a call ended.

``channels/twilio`` checks the signature and calls these. A callback names its send (in
the URL our send request gave the provider), so one for a send left ``unconfirmed`` (or still
``sending``: it overtook the provider's slow answer) adopts the message instead of a second
one being sent. Callbacks about an earlier attempt, or for a row already settled, are
audited and change nothing.
"""

from __future__ import annotations

from bot.replies import MistakeButton, Reply
from bot.statuses import SendKind, SendStatus
from handlers.password_sends.outcomes import (
    FINAL,
    PROVIDER_ID,
    adopt,
    adoptable,
    by_id,
    by_sid,
    call_ended,
    sms_outcome,
    wipe_if_done,
)
from handlers.services import Services
from store import audit
from store import repositories as repo


async def sms_status(svc: Services, *, provider_sid: str, status: str,
                     error: str | None = None, delivery_id: int | None = None,
                     to: str | None = None) -> bool:
    """A provider status callback for an SMS. False if it matches no send.

    ``delivery_id`` is the one our callback URL names (``?d=``): a callback for a send left
    ``unconfirmed`` (or still ``sending``) adopts its message id, if ``to`` is the
    send's number."""
    if not PROVIDER_ID.fullmatch(provider_sid):
        return False
    now = svc.clock()
    receipt: tuple[str, Reply, str] | None = None
    async with svc.db.transaction() as session:
        d = await by_sid(session, provider_sid)
        adopting = False
        if d is None and delivery_id is not None:
            d = await by_id(session, delivery_id)
            adopting = (await adoptable(session, d, provider_sid) and d is not None
                        and d.kind != SendKind.VOICE and (to is None or to == d.phone))
            if not adopting:
                return False
        if d is None:
            return False
        await audit.append(session, at=now, actor="twilio", action="sms_status",
                           reference=d.reference, details={"method": d.kind, "status": status,
                                                           "error": error})
        if d.status in FINAL or (d.status in (SendStatus.UNCONFIRMED, SendStatus.SENDING)
                                  and not adopting):
            return True  # settled, or about an earlier attempt than the one in doubt
        transfer = await repo.get_transfer(session, reference=d.reference)
        assert transfer is not None
        if adopting:
            d = await adopt(session, svc, d, provider_sid, transfer=transfer, actor="twilio",
                            by="status callback", now=now)
            if d is None:
                return True  # another caller settled it meanwhile
        reply = await sms_outcome(session, svc, d, transfer, status=status, error=error,
                                  now=now, adopted=adopting)
        if reply is not None:
            receipt = (transfer.sender_id, reply, d.reference)
    if receipt is not None:
        # The password delivered: the receipt carries the button that reports a mistake.
        button = [MistakeButton(receipt[2])] if status == "delivered" else []
        await svc.notifier.notify(receipt[0], [receipt[1], *button], reference=receipt[2])
    return True


async def call_status(svc: Services, *, delivery_id: int, call_sid: str, status: str,
                      answered_by: str | None = None) -> bool:
    """Final call status: completed, busy, no-answer, failed, canceled. A call whose
    placing was left ``unconfirmed`` is adopted here, as in ``calls.call_answered``."""
    now = svc.clock()
    receipt: tuple[str, Reply, str] | None = None
    async with svc.db.transaction() as session:
        d = await by_id(session, delivery_id)
        if d is not None and d.kind == SendKind.VOICE and await adoptable(session, d, call_sid):
            d = await adopt(session, svc, d, call_sid,
                            transfer=await repo.get_transfer(session, reference=d.reference),
                            actor="twilio", by="call status callback", now=now)
        if d is None or d.provider_sid != call_sid:
            return False
        await audit.append(session, at=now, actor="twilio", action="call_status",
                           reference=d.reference, details={"status": status,
                                                           "answered_by": answered_by})
        if d.status == SendStatus.DELIVERED:
            await wipe_if_done(session, d.reference, now)
            return True
        if d.status != SendStatus.SENT:
            return True
        transfer = await repo.get_transfer(session, reference=d.reference)
        assert transfer is not None
        reply = await call_ended(session, svc, d, status=status, answered_by=answered_by,
                                 now=now)
        if reply is not None:
            receipt = (transfer.sender_id, reply, d.reference)
    if receipt is not None:
        await svc.notifier.notify(receipt[0], [receipt[1]], reference=receipt[2])
    return True
