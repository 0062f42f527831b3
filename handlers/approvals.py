"""An approver decides a transfer: checks, one decision only, then package or stop.

What follows the decision (package and tell the sender, or close and tell the sender) is an
outbox entry written in the decision's transaction and run right after it
(:mod:`handlers.outbox`): a process that dies in between leaves it to the scheduler.

Who decides is compared by person (the policy's ``[people]``), so nobody approves their own
transfer under another of their ids; anyone who is neither the sender nor a listed approver
hears what a made-up reference gets (:mod:`handlers.access`).
"""

from __future__ import annotations

from bot.answers import Decision
from bot.messages import notices as notice_msg
from bot.messages import transfers as msg
from bot.near_misses import NearMiss, NearMissKind
from bot.replies import DecisionNote, Reply, Text
from bot.statuses import ApprovalStatus, TransferStatus
from handlers import access, near_misses, notify, outbox
from handlers.conversation import storable
from handlers.services import Services
from store import audit
from store import repositories as repo

_NEAR_MISS_REASONS = {
    NearMissKind.SELF_APPROVAL: "the sender tried to decide their own transfer",
    NearMissKind.NOT_APPROVER: "not a listed approver for this transfer",
}


async def decide(svc: Services, *, approver_id: str, reference: str, approve: bool,
                 reason: str = "") -> list[Reply]:
    """Record ``approver_id``'s decision; returns the replies for the approver. The sender
    hears the outcome through the notifier."""
    reason = " ".join(storable(reason).split())[:1000]
    policy = svc.policy
    if await access.transfer_for(svc, reference=reference, actor=approver_id,
                                 role=access.Role.SENDER_OR_APPROVER, command="approve") is None:
        return [Text(access.unknown(reference))]
    now = svc.clock()
    async with svc.db.transaction() as session:
        transfer = await repo.get_transfer(session, reference=reference)
        approval = await repo.get_approval(session, reference=reference)
        if transfer is None or approval is None:
            return [Text(access.unknown(reference))]
        refusal: str | None = None
        near_miss: NearMissKind | None = None
        if policy.same_person(approver_id, transfer.sender_id):
            refusal = msg.SELF_APPROVAL.format(reference=reference)
            near_miss = NearMissKind.SELF_APPROVAL
        elif not policy.is_one_of(approver_id, approval.approvers):  # as transfer_for
            refusal = access.unknown(reference)
            near_miss = NearMissKind.NOT_APPROVER
        elif approval.status in (ApprovalStatus.APPROVED, ApprovalStatus.REJECTED):
            refusal = msg.ALREADY_DECIDED.format(reference=reference, status=approval.status,
                                                 by=approval.decided_by)
        elif approval.status != ApprovalStatus.PENDING or approval.expires_at <= now:
            now_is = (ApprovalStatus.EXPIRED if approval.status == ApprovalStatus.PENDING
                      else approval.status)
            refusal = msg.APPROVAL_NOT_PENDING.format(reference=reference, status=now_is)
        elif not approve and not reason:
            refusal = msg.REASON_REQUIRED.format(reference=reference)
        if near_miss is not None:  # on the record as a near miss (and only as one)
            await near_misses.record(session, svc, at=now, actor=approver_id, near_miss=NearMiss(
                near_miss, _NEAR_MISS_REASONS[near_miss], reference,
                {"decision": "approve" if approve else "reject"}))
        elif refusal is not None:
            await audit.append(session, at=now, actor=approver_id, action="approval_refused",
                               reference=reference, details={"why": refusal})
        if refusal is not None:
            return [Text(refusal)]
        status = ApprovalStatus.APPROVED if approve else ApprovalStatus.REJECTED
        won = await repo.decide_approval(session, reference=reference, status=status,
                                         by=approver_id, reason=reason or None, now=now)
        if not won:
            return [Text(msg.ALREADY_DECIDED.format(reference=reference, status="decided",
                                                    by="another approver"))]
        await repo.drop_held_requests(session, reference=reference)
        if approve:
            await repo.set_status(session, reference=reference,
                                  status=TransferStatus.APPROVED, now=now,
                                  only_from=[TransferStatus.AWAITING_APPROVAL],
                                  authorised_by=approver_id)
        await audit.append(session, at=now, actor=approver_id, action="approval_decided",
                           reference=reference, details={
                               "decision": status, "authorised_by": approver_id if approve
                               else None, "reason": reason or None})
        sender = transfer.sender_id
        key = await outbox.add_decision(session, reference=reference, sender_id=sender,
                                        approver_id=approver_id, approve=approve,
                                        reason=reason, now=now)
    decision = msg.DECISION_APPROVED if approve else msg.DECISION_REJECTED
    mine: list[Reply] = [DecisionNote(
        msg.DECISION_RECORDED.format(decision=decision, reference=reference),
        reference=reference, decision=Decision.APPROVE if approve else Decision.REJECT,
        approver=approver_id, reason=reason)]
    to_sender = await outbox.run(svc, [key])
    if not to_sender:
        return mine  # the scheduler took it (this process was slow): it tells the sender
    unreached = await notify.notify_people(svc, [sender], to_sender, reference=reference)
    mine += [Text(notice_msg.PERSON_HELD.format(person=person, reason=notify.unreached_reason(
        svc, person), reference=reference)) for person in unreached]
    return mine
