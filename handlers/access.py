"""Who may act on a transfer named by reference, and the one answer everyone else gets.

Every command that names a transfer (``status``, ``cancel``, ``received``, ``call``,
``archive``, an approval decision; in any chat and at the command line) loads it through
:func:`transfer_for`. Someone who may not act on it hears :func:`unknown`, word for word
what a reference that was never issued gets, so trying references reveals nothing about
which exist. Identity is compared by person (:meth:`bot.policy_rules.Policy.same_person`), so one
person's ids on several channels are one sender, and one approver.

Every refused look-up is recorded in the audit trail (which only an administrator reads),
of a real transfer or of a reference nobody was given (a near miss: the reference as typed,
clipped to the column, is no personal data), so both cost the same reads and the same write:
neither the answer nor the time it takes tells them apart.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bot.cleantext import one_line
from bot.messages import transfers as msg
from bot.policy_rules import Policy
from handlers.services import Services
from store import audit
from store import repositories as repo

MAX_REFERENCE = 20  # the audit trail's reference column


class Role(enum.Enum):
    """What a command needs the person to be."""

    SENDER = "the sender"  # change, cancel, confirm receipt, book a call, get the archive
    SENDER_OR_APPROVER = "the sender or a listed approver"  # read the status, decide


@dataclass(frozen=True)
class Found:
    transfer: repo.TransferRecord
    approval: repo.ApprovalRecord | None


def may_act(policy: Policy, actor: str, transfer: repo.TransferRecord,
            approval: repo.ApprovalRecord | None, role: Role) -> bool:
    """Whether ``actor`` (a user id) is ``role`` for this transfer, comparing people."""
    if policy.same_person(actor, transfer.sender_id):
        return True
    return role is Role.SENDER_OR_APPROVER and approval is not None and policy.is_one_of(
        actor, approval.approvers)


def unknown(reference: str) -> str:
    """The answer for a reference that does not exist or is not the person's to act on."""
    return msg.UNKNOWN_TRANSFER.format(reference=reference)


async def transfer_for(svc: Services, *, reference: str, actor: str | None, role: Role,
                       command: str) -> Found | None:
    """The transfer and its approval if ``actor`` may act on it as ``role`` (``actor`` None:
    an administrator at the command line); None, to be answered with :func:`unknown`, when
    it does not exist or is someone else's. Both are audited alike (``access_refused``)."""
    async with svc.db.read() as session:
        transfer = await repo.get_transfer(session, reference=reference)
        approval = await repo.get_approval(session, reference=reference)
    if transfer is not None and (actor is None or may_act(svc.policy, actor, transfer,
                                                          approval, role)):
        return Found(transfer, approval)
    if actor is None:  # an administrator naming a reference that does not exist
        return None
    async with svc.db.transaction() as session:
        await audit.append(session, at=svc.clock(), actor=actor, action="access_refused",
                           reference=one_line(reference[:80])[:MAX_REFERENCE],
                           details={"command": command, "needs": role.value})
    return None
