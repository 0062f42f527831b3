"""Narrow, keyword-only data access used by the handlers.

Each function takes the caller's session so several can share one transaction. Writes that
must happen at most once (saving a turn, deciding an approval, claiming a delivery) are
conditional updates whose row count says whether this caller won.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.statuses import ApprovalStatus, SendKind, SendStatus, TransferStatus
from store.models import (
    Approval,
    Conversation,
    Delivery,
    HeldNotice,
    RecipientEntry,
    SmsOptOut,
    Transfer,
    TransferFile,
)

# --- conversations -------------------------------------------------------------------------


async def load_conversation(session: AsyncSession, *, conversation_id: str
                            ) -> tuple[dict[str, Any], int] | None:
    row = await session.get(Conversation, conversation_id)
    return (dict(row.state), row.version) if row else None


async def save_conversation(
    session: AsyncSession, *, conversation_id: str, user_id: str, state: Mapping[str, Any],
    expected_version: int | None, now: datetime,
) -> bool:
    """Save the state if nobody saved since ``expected_version`` was read (None: new)."""
    if expected_version is None:
        try:
            async with session.begin_nested():
                session.add(Conversation(id=conversation_id, user_id=user_id, state=dict(state),
                                         version=1, updated_at=now))
            return True
        except IntegrityError:
            return False
    result = await session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id, Conversation.version == expected_version)
        .values(state=dict(state), version=expected_version + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


@dataclass(frozen=True, slots=True)
class SavedConversation:
    """A saved conversation as read: its state (JSON) and the version to save over."""

    id: str
    user_id: str
    state: dict[str, Any]
    version: int


async def conversations_untouched_since(session: AsyncSession, *, before: datetime
                                        ) -> list[SavedConversation]:
    rows = (await session.scalars(
        select(Conversation).where(Conversation.updated_at < before))).all()
    return [SavedConversation(id=r.id, user_id=r.user_id, state=dict(r.state), version=r.version)
            for r in rows]


# --- transfers -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TransferSummary:
    """The few fields of a transfer the periodic jobs decide on."""

    reference: str
    sender_id: str
    total_bytes: int
    updated_at: datetime


async def transfers_in(session: AsyncSession, *, status: str,
                       updated_before: datetime | None = None) -> list[TransferSummary]:
    """Transfers in ``status`` (last changed before ``updated_before`` if given)."""
    query = select(Transfer).where(Transfer.status == status)
    if updated_before is not None:
        query = query.where(Transfer.updated_at < updated_before)
    return [TransferSummary(reference=t.reference, sender_id=t.sender_id,
                            total_bytes=t.total_bytes or 0, updated_at=t.updated_at)
            for t in (await session.scalars(query)).all()]


async def references_in(session: AsyncSession, *, references: Collection[str], status: str
                        ) -> set[str]:
    """Which of ``references`` are transfers in ``status``."""
    return set((await session.scalars(select(Transfer.reference).where(
        Transfer.reference.in_(list(references)), Transfer.status == status))).all())


async def stored_paths_in_use(session: AsyncSession, *, paths: Collection[str]) -> set[str]:
    """Which of ``paths`` a transfer's file list still refers to."""
    rows = await session.scalars(select(TransferFile.stored_path).where(
        TransferFile.stored_path.in_(list(paths))))
    return {path for path in rows.all() if path is not None}


async def forget_stored_paths(session: AsyncSession, *, reference: str) -> None:
    """Record that the plaintext files of ``reference`` are (being) deleted."""
    await session.execute(
        update(TransferFile).where(TransferFile.reference == reference)
        .values(stored_path=None).execution_options(synchronize_session=False))


async def get_transfer(session: AsyncSession, *, reference: str) -> Transfer | None:
    return await session.get(Transfer, reference)


async def reference_taken(session: AsyncSession, *, reference: str) -> bool:
    return await session.get(Transfer, reference) is not None


async def upsert_draft(
    session: AsyncSession, *, reference: str, sender_id: str, files: Sequence[Mapping[str, Any]],
    classification: str | None, now: datetime,
) -> Transfer:
    """Create or refresh a draft transfer and its file list from the conversation state."""
    transfer = await session.get(Transfer, reference)
    if transfer is None:
        transfer = Transfer(reference=reference, sender_id=sender_id, status=TransferStatus.DRAFT,
                            created_at=now, updated_at=now, file_count=0, total_bytes=0)
        session.add(transfer)
        await session.flush()
    transfer.classification = classification
    transfer.file_count = len(files)
    transfer.total_bytes = sum(int(f["size"]) for f in files)
    transfer.updated_at = now
    existing = {f.position: f for f in (await session.scalars(
        select(TransferFile).where(TransferFile.reference == reference))).all()}
    wanted = {int(f["position"]): f for f in files}
    for position, row in existing.items():
        if position not in wanted:
            await session.delete(row)
    for position, f in wanted.items():
        if position not in existing:
            session.add(TransferFile(reference=reference, position=position,
                                     original_name=str(f["name"]), stored_path=str(f["path"]),
                                     size=int(f["size"]), kind=str(f["kind"])))
    return transfer


async def transfer_files(session: AsyncSession, *, reference: str) -> list[TransferFile]:
    return list((await session.scalars(
        select(TransferFile).where(TransferFile.reference == reference)
        .order_by(TransferFile.position))).all())


async def set_status(session: AsyncSession, *, reference: str, status: str, now: datetime,
                     only_from: Sequence[str] | None = None, **values: Any) -> bool:
    """Move a transfer to ``status`` (only from ``only_from`` if given); True if it moved."""
    query = update(Transfer).where(Transfer.reference == reference)
    if only_from is not None:
        query = query.where(Transfer.status.in_(list(only_from)))
    result = await session.execute(
        query.values(status=status, updated_at=now, **values)
        .execution_options(synchronize_session=False))
    return bool(getattr(result, "rowcount", 0) == 1)


async def recent_transfers(session: AsyncSession, *, sender_id: str, limit: int = 10
                           ) -> list[Transfer]:
    return list((await session.scalars(
        select(Transfer).where(Transfer.sender_id == sender_id)
        .order_by(Transfer.created_at.desc()).limit(limit))).all())


async def stale_drafts(session: AsyncSession, *, before: datetime) -> list[Transfer]:
    return list((await session.scalars(
        select(Transfer).where(Transfer.status == TransferStatus.DRAFT,
                               Transfer.updated_at < before))).all())


# --- approvals -----------------------------------------------------------------------------


async def get_approval(session: AsyncSession, *, reference: str) -> Approval | None:
    return (await session.scalars(
        select(Approval).where(Approval.reference == reference))).first()


async def decide_approval(session: AsyncSession, *, reference: str, status: str, by: str,
                          reason: str | None, now: datetime) -> bool:
    """Record a decision if the request is still pending; False if someone got there first."""
    result = await session.execute(
        update(Approval).where(Approval.reference == reference,
                               Approval.status == ApprovalStatus.PENDING)
        .values(status=status, decided_by=by, decided_at=now, reason=reason)
        .execution_options(synchronize_session=False))
    return bool(getattr(result, "rowcount", 0) == 1)


async def expired_approvals(session: AsyncSession, *, now: datetime) -> list[Approval]:
    return list((await session.scalars(
        select(Approval).where(Approval.status == ApprovalStatus.PENDING,
                               Approval.expires_at <= now))).all())


# --- deliveries ----------------------------------------------------------------------------


async def due_deliveries(session: AsyncSession, *, now: datetime, limit: int = 50
                         ) -> list[Delivery]:
    return list((await session.scalars(
        select(Delivery).where(Delivery.status == SendStatus.DUE, Delivery.due_at <= now)
        .order_by(Delivery.due_at).limit(limit))).all())


async def claim_delivery(session: AsyncSession, *, delivery_id: int, now: datetime) -> bool:
    """Mark a due delivery as being sent; only one caller can win the claim."""
    result = await session.execute(
        update(Delivery).where(Delivery.id == delivery_id, Delivery.status == SendStatus.DUE)
        .values(status=SendStatus.SENDING, attempts=Delivery.attempts + 1, updated_at=now)
        .execution_options(synchronize_session=False))
    return bool(getattr(result, "rowcount", 0) == 1)


async def deliveries_for(session: AsyncSession, *, reference: str) -> list[Delivery]:
    return list((await session.scalars(
        select(Delivery).where(Delivery.reference == reference))).all())


async def latest_sms_reference(session: AsyncSession, *, phone: str) -> str | None:
    """The reference of the latest SMS sent to ``phone``, if any."""
    return (await session.scalars(
        select(Delivery.reference).where(Delivery.phone == phone, Delivery.kind == SendKind.SMS)
        .order_by(Delivery.created_at.desc(), Delivery.id.desc()).limit(1))).first()


async def opt_out_sms(session: AsyncSession, *, phone: str, now: datetime) -> None:
    """``phone`` replied STOP: no further SMS to it (kept from the first STOP)."""
    if await session.get(SmsOptOut, phone) is None:
        session.add(SmsOptOut(phone=phone, opted_out_at=now))


async def opt_in_sms(session: AsyncSession, *, phone: str) -> None:
    """``phone`` replied START: SMS to it may go again."""
    await session.execute(delete(SmsOptOut).where(SmsOptOut.phone == phone))


# --- recipient book ------------------------------------------------------------------------


async def remember_recipient(session: AsyncSession, *, sender_id: str,
                             recipient: Mapping[str, Any], now: datetime) -> None:
    existing = (await session.scalars(select(RecipientEntry).where(
        RecipientEntry.sender_id == sender_id, RecipientEntry.email == recipient["email"],
        RecipientEntry.phone == recipient["phone_display"]))).first()
    if existing is None:
        existing = RecipientEntry(sender_id=sender_id, email=recipient["email"],
                                  phone=recipient["phone_display"], name="", job_title="",
                                  organisation="", last_used_at=now)
        session.add(existing)
    existing.name = recipient["name"]
    existing.job_title = recipient["job_title"]
    existing.organisation = recipient["organisation"]
    existing.last_used_at = now


async def known_recipients(session: AsyncSession, *, sender_id: str, limit: int = 8
                           ) -> list[dict[str, str]]:
    rows = (await session.scalars(
        select(RecipientEntry).where(RecipientEntry.sender_id == sender_id)
        .order_by(RecipientEntry.last_used_at.desc()).limit(limit))).all()
    return [{"name": r.name, "job_title": r.job_title, "organisation": r.organisation,
             "email": r.email, "phone": r.phone} for r in rows]


# --- held notices --------------------------------------------------------------------------


async def hold_notice(session: AsyncSession, *, user_id: str, reference: str | None,
                      kind: str, sealed: str, now: datetime) -> None:
    session.add(HeldNotice(user_id=user_id, reference=reference, kind=kind, sealed=sealed,
                           created_at=now))


async def held_notices(session: AsyncSession, *, user_ids: Sequence[str]) -> list[HeldNotice]:
    """What is held for any of ``user_ids``, oldest first."""
    return list((await session.scalars(
        select(HeldNotice).where(HeldNotice.user_id.in_(list(user_ids)))
        .order_by(HeldNotice.id))).all())


async def take_held_notice(session: AsyncSession, *, notice_id: int) -> bool:
    """Remove one held notice; True for the one caller whose delete removed it."""
    result = await session.execute(
        delete(HeldNotice).where(HeldNotice.id == notice_id)
        .execution_options(synchronize_session=False))
    return bool(getattr(result, "rowcount", 0) == 1)


async def prune_held_notices(session: AsyncSession, *, before: datetime) -> int:
    """Drop requests whose approval is no longer pending, and anything held since before
    ``before``; returns how many went."""
    settled = select(Approval.reference).where(Approval.status != ApprovalStatus.PENDING)
    result = await session.execute(
        delete(HeldNotice).where(
            (HeldNotice.created_at < before)
            | ((HeldNotice.kind == "request") & HeldNotice.reference.in_(settled)))
        .execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


async def drop_held_requests(session: AsyncSession, *, reference: str) -> None:
    """Forget the requests kept about ``reference`` (it was decided or cancelled)."""
    await session.execute(
        delete(HeldNotice).where(HeldNotice.reference == reference,
                                 HeldNotice.kind == "request")
        .execution_options(synchronize_session=False))
