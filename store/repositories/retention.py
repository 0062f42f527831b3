"""Archives handed back in the chat past their retention, and forgetting a deleted one.

An archive delivered by ``archive`` (not by portal link) is kept for ``archive REF`` until
the policy's retention (:class:`bot.policy_rules.ArchiveRetention`) passes: so many days
after its password was delivered, at most so many days after the transfer was created, and
no longer once the transfer is over without being ready (cancelled, expired). The transfer's
``archive_path`` (with its size) is the marker that an archive is kept; clearing it is a
conditional update, so one caller wins however many processes delete the same archive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.statuses import DeliveryMethod, SendKind, SendStatus, TransferStatus
from store.models import PasswordSend, Transfer

# The sends that carry the password (a heads-up SMS does not).
_PASSWORD_SENDS = (SendKind.SMS, SendKind.VOICE)


class RetentionReason(StrEnum):
    """Why a kept archive is deleted (recorded in the audit entry)."""

    PASSWORD_DELIVERED = "password delivered"  # days_after_password since the delivery
    MAX_AGE = "kept for the longest time allowed"  # max_days since the transfer was created
    TRANSFER_OVER = "transfer over"  # cancelled, expired or otherwise no longer ready


@dataclass(frozen=True, slots=True)
class ExpiredArchive:
    """A kept archive whose retention has passed, and why."""

    reference: str
    reason: RetentionReason


def _won(result: Any) -> bool:
    return bool(getattr(result, "rowcount", 0) == 1)


async def archives_past_retention(
    session: AsyncSession, *, delivered_before: datetime, created_before: datetime,
    limit: int = 200,
) -> list[ExpiredArchive]:
    """Transfers delivered by archive that still keep one and should not: their password was
    delivered before ``delivered_before``, they were created before ``created_before``, or
    they are no longer ready. Oldest first, at most ``limit``."""
    delivered = exists().where(
        PasswordSend.reference == Transfer.reference, PasswordSend.kind.in_(_PASSWORD_SENDS),
        PasswordSend.status == SendStatus.DELIVERED, PasswordSend.updated_at <= delivered_before)
    over = Transfer.status != TransferStatus.READY
    old = Transfer.created_at <= created_before
    rows = (await session.execute(
        select(Transfer.reference, over.label("over"), old.label("old"))
        .where(Transfer.delivery_method == DeliveryMethod.ARCHIVE,
               Transfer.archive_path.is_not(None), or_(over, old, delivered))
        .order_by(Transfer.created_at).limit(limit))).all()
    return [ExpiredArchive(row.reference,
                           RetentionReason.TRANSFER_OVER if row.over
                           else RetentionReason.MAX_AGE if row.old
                           else RetentionReason.PASSWORD_DELIVERED)
            for row in rows]


async def kept_archive(session: AsyncSession, *, reference: str) -> str | None:
    """The stored archive marker (``archive_path``) of a transfer, or None when none is kept."""
    return (await session.execute(
        select(Transfer.archive_path).where(Transfer.reference == reference))).scalar()


async def forget_kept_archive(session: AsyncSession, *, reference: str) -> bool:
    """Record that the transfer's archive was deleted (clear its marker and size); False if
    none was kept or another caller got there first."""
    return _won(await session.execute(
        update(Transfer).where(and_(Transfer.reference == reference,
                                    Transfer.archive_path.is_not(None)))
        .values(archive_path=None, archive_size=None)
        .execution_options(synchronize_session=False)))
