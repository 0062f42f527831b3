"""Artefacts past their retention: archives handed back in the chat (and forgetting a
deleted one), idle conversation state, unused recipient-book entries, old incidents; and
the times the ``safehaven retention`` view counts from.

An archive delivered by ``archive`` (not by portal link) is kept for ``archive REF`` until
the policy's retention (:class:`bot.policy_rules.ArchiveRetention`) passes: so many days
after its password was delivered, at most so many days after the transfer was created, and
no longer once the transfer is over without being ready (cancelled, expired). The transfer's
``archive_path`` (with its size) is the marker that an archive is kept; clearing it is a
conditional update, so one caller wins however many processes delete the same archive.
Every other deletion here is conditional too (on the version, or on the time it tests), so
a conversation saved or a recipient used meanwhile is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.statuses import DeliveryMethod, SendKind, SendStatus, Step, TransferStatus
from store.models import (
    AuditRecord,
    Conversation,
    Incident,
    PasswordSend,
    PortalLink,
    RecipientEntry,
    Transfer,
)

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


# --- conversation state ----------------------------------------------------------------------

# A conversation waits on no question (no draft) when its saved state's step is idle.
_STEP = func.coalesce(Conversation.state["step"].as_string(), Step.IDLE.value)
_IDLE = _STEP == Step.IDLE.value


@dataclass(frozen=True, slots=True)
class IdleConversation:
    """A saved conversation that waits on nothing, and the version to delete it at."""

    id: str
    version: int


async def idle_conversations(session: AsyncSession, *, untouched_before: datetime,
                             limit: int = 500) -> list[IdleConversation]:
    """Conversations waiting on no question, last saved before ``untouched_before``."""
    rows = (await session.execute(
        select(Conversation.id, Conversation.version)
        .where(_IDLE, Conversation.updated_at < untouched_before)
        .order_by(Conversation.updated_at).limit(limit))).all()
    return [IdleConversation(row.id, row.version) for row in rows]


async def delete_conversation(session: AsyncSession, *, conversation_id: str, version: int
                              ) -> bool:
    """Delete a saved conversation unless it was saved since ``version`` was read."""
    return _won(await session.execute(
        delete(Conversation).where(Conversation.id == conversation_id,
                                   Conversation.version == version)
        .execution_options(synchronize_session=False)))


# --- the recipient book ---------------------------------------------------------------------


async def delete_recipients_unused_since(session: AsyncSession, *, before: datetime) -> int:
    """Delete every address-book entry last used before ``before``; how many."""
    result = await session.execute(
        delete(RecipientEntry).where(RecipientEntry.last_used_at < before)
        .execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


# --- incidents --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OldIncident:
    """An incident opened before the retention cut-off."""

    id: int
    reference: str
    opened_at: datetime


async def incidents_opened_before(session: AsyncSession, *, before: datetime,
                                  limit: int = 200) -> list[OldIncident]:
    """Incidents opened before ``before``, oldest first, at most ``limit``."""
    rows = (await session.execute(
        select(Incident.id, Incident.reference, Incident.opened_at)
        .where(Incident.opened_at < before).order_by(Incident.opened_at).limit(limit))).all()
    return [OldIncident(row.id, row.reference, row.opened_at) for row in rows]


async def delete_incident(session: AsyncSession, *, incident_id: int, before: datetime
                          ) -> bool:
    """Delete the incident if it is still there and opened before ``before``; False if
    another caller deleted it first."""
    return _won(await session.execute(
        delete(Incident).where(Incident.id == incident_id, Incident.opened_at < before)
        .execution_options(synchronize_session=False)))


# --- what the view counts from -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeptArchive:
    """An archive handed back in the chat, still kept: when its transfer was made, when its
    password was first delivered (None: not yet), and whether the transfer is still ready."""

    reference: str
    created_at: datetime
    delivered_at: datetime | None
    ready: bool


async def kept_chat_archives(session: AsyncSession) -> list[KeptArchive]:
    """Every archive delivered by ``archive`` that is still kept."""
    delivered = (select(func.min(PasswordSend.updated_at))
                 .where(PasswordSend.reference == Transfer.reference,
                        PasswordSend.kind.in_(_PASSWORD_SENDS),
                        PasswordSend.status == SendStatus.DELIVERED)
                 .correlate(Transfer).scalar_subquery())
    rows = (await session.execute(
        select(Transfer.reference, Transfer.created_at, delivered.label("delivered"),
               Transfer.status)
        .where(Transfer.delivery_method == DeliveryMethod.ARCHIVE,
               Transfer.archive_path.is_not(None)))).all()
    return [KeptArchive(row.reference, row.created_at, row.delivered,
                        row.status == TransferStatus.READY) for row in rows]


async def portal_archive_link_ends(session: AsyncSession) -> list[datetime]:
    """For each portal archive still kept, when its last link expires (it goes then, or
    sooner when its links are used up or withdrawn)."""
    return list((await session.execute(
        select(func.max(PortalLink.expires_at))
        .join(Transfer, Transfer.reference == PortalLink.reference)
        .where(Transfer.delivery_method == DeliveryMethod.PORTAL,
               Transfer.archive_path.is_not(None))
        .group_by(Transfer.reference))).scalars().all())


@dataclass(frozen=True, slots=True)
class Ages:
    """How many rows are older than a cut-off, and the oldest of those that are not."""

    older: int
    oldest_newer: datetime | None


async def _ages(session: AsyncSession, column: Any, cutoff: datetime, *where: Any) -> Ages:
    older = (await session.execute(
        select(func.count()).where(column < cutoff, *where))).scalar_one()
    newer = (await session.execute(
        select(func.min(column)).where(column >= cutoff, *where))).scalar()
    return Ages(int(older), newer)


async def draft_ages(session: AsyncSession, *, cutoff: datetime) -> Ages:
    """Conversations waiting on a question (an unfinished draft), by last save."""
    return await _ages(session, Conversation.updated_at, cutoff, ~_IDLE)


async def idle_conversation_ages(session: AsyncSession, *, cutoff: datetime) -> Ages:
    """Conversations waiting on nothing, by last save."""
    return await _ages(session, Conversation.updated_at, cutoff, _IDLE)


async def recipient_ages(session: AsyncSession, *, cutoff: datetime) -> Ages:
    """Recipient-book entries, by last use."""
    return await _ages(session, RecipientEntry.last_used_at, cutoff)


async def incident_ages(session: AsyncSession, *, cutoff: datetime) -> Ages:
    """Incidents, by when they were opened."""
    return await _ages(session, Incident.opened_at, cutoff)


async def audit_ages(session: AsyncSession, *, cutoff: datetime) -> Ages:
    """Audit records, by when they were written."""
    return await _ages(session, AuditRecord.at, cutoff)
