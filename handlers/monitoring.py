"""What monitoring asks of the database: the backlog in every state, as enum-keyed counts.

:func:`backlog` is read when ``/metrics`` is scraped (``bot/app/metrics.py``), never on a
request's path, and answers for the whole database, so every replica reports the same
numbers. Every key is a member of a status enum: a stored word the enums do not know (which
only a hand-edited row could hold) is counted under ``other``, never shown as stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

from bot.statuses import EffectStatus, SendKind, SendStatus, TransferStatus
from handlers.services import Services
from store.repositories.monitoring import state_counts

OTHER = "other"
"""The label of a stored word no enum knows."""

E = TypeVar("E", bound=StrEnum)


@dataclass(frozen=True)
class Backlog:
    """Database-wide counts at one moment. Every enum member is present (0 for none)."""

    transfers: dict[str, int]  # by TransferStatus (and OTHER)
    sends: dict[tuple[str, str], int]  # by (SendKind, SendStatus) (and OTHER)
    outbox: dict[str, int]  # by EffectStatus other than done (and OTHER)
    approvals_waiting: int
    oldest_approval_seconds: float  # how long the longest-waiting one has waited; 0 if none
    oldest_outbox_seconds: float  # how long the oldest pending entry has waited; 0 if none


def _known(enum: type[E], word: str) -> str:
    return word if word in {member.value for member in enum} else OTHER


def _by_enum(enum: type[E], counts: Mapping[str, int], *, skip: tuple[E, ...] = ()
             ) -> dict[str, int]:
    result = {member.value: 0 for member in enum if member not in skip}
    for word, n in counts.items():
        if word in {member.value for member in skip}:
            continue
        key = _known(enum, word)
        result[key] = result.get(key, 0) + n
    return result


async def backlog(svc: Services) -> Backlog:
    """The counts now, in one read transaction."""
    async with svc.db.read() as session:
        counts = await state_counts(session)
    now = svc.clock()
    sends = {(kind.value, status.value): 0 for kind in SendKind for status in SendStatus}
    for (kind, status), n in counts.sends.items():
        key = (_known(SendKind, kind), _known(SendStatus, status))
        sends[key] = sends.get(key, 0) + n

    def age(since: datetime | None) -> float:
        return max(0.0, (now - since).total_seconds()) if since is not None else 0.0

    return Backlog(
        transfers=_by_enum(TransferStatus, counts.transfers),
        sends=sends,
        outbox=_by_enum(EffectStatus, counts.outbox, skip=(EffectStatus.DONE,)),
        approvals_waiting=counts.approvals_waiting,
        oldest_approval_seconds=age(counts.oldest_approval),
        oldest_outbox_seconds=age(counts.oldest_outbox))
