"""Transfers and their files.

Each function takes the caller's session so several can share one transaction. Reads return
frozen records (:class:`TransferRecord`, :class:`TransferFileRecord`), never the ORM rows;
every change goes through a function here, as an update of its own."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.statuses import DeliveryMethod, PasswordMethod, TransferStatus
from store.models import (
    Transfer,
    TransferFile,
)


@dataclass(frozen=True, slots=True)
class TransferRecord:
    """A transfer as read (the columns of ``transfers``). ``password_sealed`` is the
    password sealed with the server key, never the password."""

    reference: str
    sender_id: str
    status: TransferStatus
    classification: str | None
    recipient: dict[str, Any] | None
    purpose: str | None
    lawful_basis: str | None
    consent: dict[str, Any] | None
    delivery_method: DeliveryMethod | None
    password_method: PasswordMethod | None
    call_at: datetime | None
    password_sealed: str | None
    archive_path: str | None
    archive_size: int | None
    file_count: int
    total_bytes: int
    authorised_by: str | None
    call_code: str | None
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    information_categories: tuple[str, ...] | None = None  # keys; None: never asked


@dataclass(frozen=True, slots=True)
class TransferFileRecord:
    """A file received for a transfer; ``stored_path`` is its sealed upload's object key
    (``uploads/...``), None once the upload is deleted."""

    id: int
    reference: str
    position: int
    original_name: str
    stored_path: str | None
    size: int
    kind: str


@dataclass(frozen=True, slots=True)
class TransferSummary:
    """The few fields of a transfer the periodic jobs decide on."""

    reference: str
    sender_id: str
    total_bytes: int
    updated_at: datetime


def _transfer_record(row: Transfer) -> TransferRecord:
    return TransferRecord(
        reference=row.reference, sender_id=row.sender_id, status=TransferStatus(row.status),
        classification=row.classification,
        recipient=dict(row.recipient) if row.recipient is not None else None,
        purpose=row.purpose, lawful_basis=row.lawful_basis,
        consent=dict(row.consent) if row.consent is not None else None,
        delivery_method=DeliveryMethod(row.delivery_method) if row.delivery_method else None,
        password_method=PasswordMethod(row.password_method) if row.password_method else None,
        call_at=row.call_at, password_sealed=row.password_sealed,
        archive_path=row.archive_path, archive_size=row.archive_size,
        file_count=row.file_count or 0, total_bytes=row.total_bytes or 0,
        authorised_by=row.authorised_by, call_code=row.call_code, created_at=row.created_at,
        updated_at=row.updated_at, submitted_at=row.submitted_at,
        information_categories=(tuple(row.information_categories)
                                if row.information_categories is not None else None))


def _file_record(row: TransferFile) -> TransferFileRecord:
    return TransferFileRecord(id=row.id, reference=row.reference, position=row.position,
                              original_name=row.original_name, stored_path=row.stored_path,
                              size=row.size, kind=row.kind)


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


async def stored_keys_under(session: AsyncSession, *, prefix: str) -> list[tuple[str, str]]:
    """(reference, key) of every transfer file whose upload key starts with ``prefix``."""
    rows = await session.execute(select(TransferFile.reference, TransferFile.stored_path)
                                 .where(TransferFile.stored_path.startswith(prefix)))
    return [(reference, key) for reference, key in rows.all() if key is not None]


async def archive_keys_of(session: AsyncSession, *, references: Collection[str]) -> set[str]:
    """Which of ``references`` are transfers keeping an archive (``archive_path`` set)."""
    return set((await session.scalars(select(Transfer.reference).where(
        Transfer.reference.in_(list(references)), Transfer.archive_path.is_not(None)))).all())


async def forget_stored_paths(session: AsyncSession, *, reference: str) -> None:
    """Record that the plaintext files of ``reference`` are (being) deleted."""
    await session.execute(
        update(TransferFile).where(TransferFile.reference == reference)
        .values(stored_path=None).execution_options(synchronize_session=False))


async def get_transfer(session: AsyncSession, *, reference: str) -> TransferRecord | None:
    row = await session.get(Transfer, reference)
    return _transfer_record(row) if row is not None else None


async def reference_taken(session: AsyncSession, *, reference: str) -> bool:
    return await session.get(Transfer, reference) is not None


async def upsert_draft(
    session: AsyncSession, *, reference: str, sender_id: str, files: Sequence[Mapping[str, Any]],
    classification: str | None, now: datetime, files_changed: bool = True,
) -> None:
    """Create or refresh a draft transfer and its file list from the conversation state.
    Core statements, not the ORM (a conversation's every step runs this): one UPDATE (an
    INSERT the first time), then, unless the caller knows the state's files are the ones
    already recorded (``files_changed`` False, with the row already there), one SELECT of
    the file positions and the files that changed."""
    values = {"classification": classification, "file_count": len(files),
              "total_bytes": sum(int(f["size"]) for f in files), "updated_at": now}
    refreshed = await session.execute(
        _REFRESH_DRAFT, {"ref": reference, **{f"new_{k}": v for k, v in values.items()}})
    if getattr(refreshed, "rowcount", 0) != 1:
        await session.execute(insert(Transfer).values(
            reference=reference, sender_id=sender_id, status=TransferStatus.DRAFT,
            created_at=now, **values))
    elif not files_changed:
        return
    existing = set((await session.scalars(
        select(TransferFile.position).where(TransferFile.reference == reference))).all())
    wanted = {int(f["position"]): f for f in files}
    gone = [position for position in existing if position not in wanted]
    if gone:
        await session.execute(
            delete(TransferFile).where(TransferFile.reference == reference,
                                       TransferFile.position.in_(gone))
            .execution_options(synchronize_session=False))
    new = [{"reference": reference, "position": position, "original_name": str(f["name"]),
            "stored_path": str(f["path"]), "size": int(f["size"]), "kind": str(f["kind"])}
           for position, f in wanted.items() if position not in existing]
    if new:
        await session.execute(insert(TransferFile), new)


# Built once (every conversation step runs it).
_REFRESH_DRAFT = (
    update(Transfer).where(Transfer.reference == bindparam("ref"))
    .values(classification=bindparam("new_classification"),
            file_count=bindparam("new_file_count"), total_bytes=bindparam("new_total_bytes"),
            updated_at=bindparam("new_updated_at", type_=Transfer.updated_at.type))
    .execution_options(synchronize_session=False))


async def transfer_files(session: AsyncSession, *, reference: str) -> list[TransferFileRecord]:
    rows = (await session.scalars(
        select(TransferFile).where(TransferFile.reference == reference)
        .order_by(TransferFile.position))).all()
    return [_file_record(row) for row in rows]


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


async def hold_packaging(session: AsyncSession, *, reference: str, held_since: datetime,
                         now: datetime) -> bool:
    """Renew (or take over) the packaging of a transfer: its ``updated_at`` moves to ``now``
    only while it is ``packaging`` and ``updated_at`` is still ``held_since``, the value its
    holder last wrote. True if this caller holds it now; a packager that gets False lost it
    (another process took it over) and must stop without changing anything."""
    result = await session.execute(
        update(Transfer).where(Transfer.reference == reference,
                               Transfer.status == TransferStatus.PACKAGING,
                               Transfer.updated_at == held_since)
        .values(updated_at=now).execution_options(synchronize_session=False))
    return bool(getattr(result, "rowcount", 0) == 1)


async def recent_transfers(session: AsyncSession, *, sender_id: str, limit: int = 10
                           ) -> list[TransferRecord]:
    rows = (await session.scalars(
        select(Transfer).where(Transfer.sender_id == sender_id)
        .order_by(Transfer.created_at.desc()).limit(limit))).all()
    return [_transfer_record(row) for row in rows]


async def stale_drafts(session: AsyncSession, *, before: datetime) -> list[TransferRecord]:
    rows = (await session.scalars(
        select(Transfer).where(Transfer.status == TransferStatus.DRAFT,
                               Transfer.updated_at < before))).all()
    return [_transfer_record(row) for row in rows]
