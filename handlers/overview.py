"""What is open for a person: their transfers not yet finished, and the requests waiting
for their decision. ``safehaven chat`` opens with it and shows it again on ``status``."""

from __future__ import annotations

from collections.abc import Sequence

from bot.messages import console as msg
from bot.messages.transfers import STATUS_LABELS
from bot.statuses import (
    OPEN_TRANSFER_STATUSES,
    ApprovalStatus,
    DeliveryMethod,
    TransferStatus,
)
from handlers.services import Services
from store import repositories as repo

# Transfers the overview shows: still changing, or ready with the password still to go.
SHOWN = (*OPEN_TRANSFER_STATUSES, TransferStatus.PACKAGING, TransferStatus.READY)


def names(svc: Services, user_ids: Sequence[str]) -> str:
    """People as a sentence names them: their name in the policy's ``[people]``, else
    their id; several joined by "or"."""
    shown: list[str] = []
    for user_id in user_ids:
        name = svc.policy.person_of(user_id).name or user_id
        if name not in shown:
            shown.append(name)
    return " or ".join(shown)


async def approvers_of(svc: Services, *, reference: str) -> str | None:
    """Who is yet to decide on ``reference``; None when no decision is pending."""
    async with svc.db.read() as session:
        approval = await repo.get_approval(session, reference=reference)
    if approval is None or approval.status != ApprovalStatus.PENDING:
        return None
    return names(svc, approval.approvers)


def _next(status: TransferStatus, reference: str, approvers: str | None) -> str:
    if status == TransferStatus.DRAFT:
        return msg.NEXT_DRAFT
    if status == TransferStatus.AWAITING_APPROVAL:
        return msg.NEXT_APPROVAL.format(approvers=approvers or "the approver")
    if status == TransferStatus.PACKAGE_FAILED:
        return msg.NEXT_FAILED.format(reference=reference)
    if status == TransferStatus.READY:
        return msg.NEXT_READY.format(reference=reference)
    return msg.NEXT_PACKAGING


async def open_transfers(svc: Services, *, user_id: str) -> list[str]:
    """A line for each of the sender's recent transfers still open: reference,
    recipient, status and what comes next."""
    async with svc.db.read() as session:
        rows = [t for t in await repo.recent_transfers(session, sender_id=user_id)
                if t.status in SHOWN]
    if not rows:
        return [msg.NO_OPEN]
    lines = [msg.OPEN_HEADER]
    for t in rows:
        recipient = (t.recipient or {}).get("name") or msg.NO_RECIPIENT_YET
        approvers = await approvers_of(svc, reference=t.reference) \
            if t.status == TransferStatus.AWAITING_APPROVAL else None
        status = msg.READY_LINK if t.status == TransferStatus.READY \
            and t.delivery_method == DeliveryMethod.PORTAL \
            else STATUS_LABELS.get(t.status, t.status)
        lines.append(msg.OPEN_LINE.format(
            reference=t.reference, recipient=recipient, status=status,
            next=_next(t.status, t.reference, approvers)))
    return lines


async def awaiting_decision(svc: Services, *, user_id: str) -> list[str]:
    """A line for each transfer waiting for this person's decision (none: empty)."""
    now = svc.clock()
    lines: list[str] = []
    async with svc.db.read() as session:
        for summary in await repo.transfers_in(session, status=TransferStatus.AWAITING_APPROVAL):
            approval = await repo.get_approval(session, reference=summary.reference)
            if approval is None or approval.status != ApprovalStatus.PENDING \
                    or approval.expires_at <= now \
                    or not svc.policy.is_one_of(user_id, approval.approvers) \
                    or svc.policy.same_person(user_id, summary.sender_id):
                continue
            # The request itself (with the recipient) is shown once, when it is handed over.
            lines.append(msg.DECIDE_LINE.format(reference=summary.reference,
                                                sender=names(svc, [summary.sender_id])))
    return [msg.DECIDE_HEADER, *lines] if lines else []
