"""Portal links (the `portal_links` table) and the downloads they hold.

A download in progress is a ``processed_events`` row keyed ``portal-hold:<token hash>:<attempt>``
whose ``seen_at`` is when the hold lapses; only this module knows that key. Writes that only
one caller may win (taking a download, ending a hold, withdrawing or locking a link,
forgetting an archive) are conditional updates whose row count says whether this caller won.
Each function takes the caller's session so several can share one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from bot.statuses import DeliveryMethod, TransferStatus
from store.models import PortalLink, ProcessedEvent, Transfer

HOLD_PREFIX = "portal-hold:"


@dataclass(frozen=True, slots=True)
class PortalLinkRecord:
    """A portal link as read (only the token's hash is stored)."""

    token_hash: str
    reference: str
    expires_at: datetime
    download_limit: int
    downloads: int
    interrupted_downloads: int
    revoked_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class LinkedArchive:
    """A usable link and the archive of its transfer."""

    link: PortalLinkRecord
    archive_path: str | None
    archive_size: int | None


@dataclass(frozen=True, slots=True)
class SenderLink:
    """A link and the sender of its transfer (who is told what happens to it)."""

    link: PortalLinkRecord
    sender_id: str


@dataclass(frozen=True, slots=True)
class HeldDownload:
    """Which download a hold is for: the link's token hash and the attempt."""

    token_hash: str
    attempt: str


@dataclass(frozen=True, slots=True)
class UnreachableArchive:
    """A portal transfer's archive that no link can download and none is downloading."""

    reference: str
    archive_path: str
    sender_id: str
    status: str


def _record(link: PortalLink) -> PortalLinkRecord:
    return PortalLinkRecord(
        token_hash=link.token_hash, reference=link.reference, expires_at=link.expires_at,
        download_limit=link.download_limit, downloads=link.downloads,
        interrupted_downloads=link.interrupted_downloads or 0, revoked_at=link.revoked_at,
        created_at=link.created_at)


def _hold_key(token_hash: str, attempt: str) -> str:
    return f"{HOLD_PREFIX}{token_hash}:{attempt}"


def _won(result: Any) -> bool:
    return bool(getattr(result, "rowcount", 0) == 1)


def _active(now: datetime) -> list[ColumnElement[bool]]:
    return [PortalLink.revoked_at.is_(None), PortalLink.expires_at > now,
            PortalLink.downloads < PortalLink.download_limit]


def _ready_transfers() -> Any:
    return select(Transfer.reference).where(Transfer.status == TransferStatus.READY,
                                            Transfer.archive_path.is_not(None))


def _holds_of(token_hash: str) -> ColumnElement[bool]:
    return ProcessedEvent.key.startswith(f"{HOLD_PREFIX}{token_hash}:", autoescape=True)


def _held_references() -> Any:
    """References of links with a download in progress."""
    return select(PortalLink.reference).join(ProcessedEvent, ProcessedEvent.key.startswith(
        literal(HOLD_PREFIX) + PortalLink.token_hash + literal(":")))


async def _with_sender(session: AsyncSession, token_hash: str) -> SenderLink:
    link, sender = (await session.execute(
        select(PortalLink, Transfer.sender_id)
        .join(Transfer, Transfer.reference == PortalLink.reference)
        .where(PortalLink.token_hash == token_hash)
        .execution_options(populate_existing=True))).one()
    return SenderLink(_record(link), sender)


# --- issuing and withdrawing ----------------------------------------------------------------


async def add_portal_link(session: AsyncSession, *, token_hash: str, reference: str,
                          expires_at: datetime, download_limit: int, now: datetime) -> None:
    session.add(PortalLink(token_hash=token_hash, reference=reference, expires_at=expires_at,
                           download_limit=download_limit, downloads=0, revoked_at=None,
                           created_at=now))


async def revoke_portal_links(session: AsyncSession, *, reference: str, now: datetime) -> int:
    """Withdraw every link of ``reference`` not withdrawn yet; returns how many this call
    withdrew."""
    result = await session.execute(
        update(PortalLink).where(PortalLink.reference == reference,
                                 PortalLink.revoked_at.is_(None))
        .values(revoked_at=now).execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


async def lock_portal_link(session: AsyncSession, *, token_hash: str, now: datetime) -> bool:
    """Withdraw one link; False if it was withdrawn already (by a cancel, or another lock)."""
    return _won(await session.execute(
        update(PortalLink).where(PortalLink.token_hash == token_hash,
                                 PortalLink.revoked_at.is_(None))
        .values(revoked_at=now).execution_options(synchronize_session=False)))


# --- downloads ------------------------------------------------------------------------------


async def usable_link(session: AsyncSession, *, token_hash: str, now: datetime
                      ) -> LinkedArchive | None:
    """The link if it can still be downloaded (not withdrawn, not expired, under its limit,
    its transfer ready with an archive); None for every other case alike, in one query."""
    row = (await session.execute(
        select(PortalLink, Transfer.archive_path, Transfer.archive_size)
        .join(Transfer, Transfer.reference == PortalLink.reference)
        .where(PortalLink.token_hash == token_hash, *_active(now),
               PortalLink.reference.in_(_ready_transfers())))).first()
    if row is None:
        return None
    link, path, size = row
    return LinkedArchive(_record(link), path, size)


async def hold_download(session: AsyncSession, *, token_hash: str, attempt: str, now: datetime,
                        lapses_at: datetime) -> SenderLink | None:
    """Take one of the link's downloads and record the hold (lapsing at ``lapses_at``). The
    conditional update only succeeds while the link is usable and under its limit (counting
    downloads in progress), so concurrent callers never pass it. None if it cannot."""
    result = await session.execute(
        update(PortalLink)
        .where(PortalLink.token_hash == token_hash, *_active(now),
               PortalLink.reference.in_(_ready_transfers()))
        .values(downloads=PortalLink.downloads + 1)
        .execution_options(synchronize_session=False))
    if not _won(result):
        return None
    taken = await _with_sender(session, token_hash)
    session.add(ProcessedEvent(key=_hold_key(token_hash, attempt), seen_at=lapses_at))
    return taken


async def link_for_update(session: AsyncSession, *, token_hash: str) -> PortalLinkRecord:
    """The link, locked until the transaction ends (concurrent finishes then go one by
    one)."""
    link = (await session.scalars(
        select(PortalLink).where(PortalLink.token_hash == token_hash).with_for_update()
        .execution_options(populate_existing=True))).one()
    return _record(link)


async def end_download_hold(session: AsyncSession, hold: HeldDownload, *,
                            lapsed_by: datetime | None = None) -> bool:
    """End the hold (only if it lapsed by ``lapsed_by``, when given). False if it had ended
    already: each hold ends once, whoever gets there first."""
    condition = [ProcessedEvent.key == _hold_key(hold.token_hash, hold.attempt)]
    if lapsed_by is not None:
        condition.append(ProcessedEvent.seen_at <= lapsed_by)
    return _won(await session.execute(delete(ProcessedEvent).where(*condition)
                                      .execution_options(synchronize_session=False)))


async def downloads_in_progress(session: AsyncSession, *, token_hash: str) -> int:
    return int(await session.scalar(
        select(func.count()).select_from(ProcessedEvent).where(_holds_of(token_hash))) or 0)


async def give_back_download(session: AsyncSession, *, token_hash: str,
                             interrupted_by_client: bool) -> SenderLink:
    """Give the link its download back; one broken off by the client is counted in
    ``interrupted_downloads``. Returns the link as it now is."""
    await session.execute(
        update(PortalLink).where(PortalLink.token_hash == token_hash, PortalLink.downloads > 0)
        .values(downloads=PortalLink.downloads - 1)
        .execution_options(synchronize_session=False))
    if interrupted_by_client:
        await session.execute(
            update(PortalLink).where(PortalLink.token_hash == token_hash)
            .values(interrupted_downloads=PortalLink.interrupted_downloads + 1)
            .execution_options(synchronize_session=False))
    return await _with_sender(session, token_hash)


async def lapsed_download_holds(session: AsyncSession, *, now: datetime) -> list[HeldDownload]:
    """Holds lapsed by ``now`` (their process died mid-download)."""
    keys = (await session.scalars(
        select(ProcessedEvent.key).where(ProcessedEvent.key.startswith(HOLD_PREFIX),
                                         ProcessedEvent.seen_at <= now))).all()
    holds = []
    for key in keys:
        token_hash, attempt = key.removeprefix(HOLD_PREFIX).split(":", 1)
        holds.append(HeldDownload(token_hash, attempt))
    return holds


# --- archives no link can reach -------------------------------------------------------------


async def unreachable_archives(session: AsyncSession, *, now: datetime
                               ) -> list[UnreachableArchive]:
    """Portal transfers with an archive that no link can download any more (expired,
    withdrawn or used up) and none is downloading."""
    usable = select(PortalLink.reference).where(*_active(now))
    rows = (await session.execute(
        select(Transfer.reference, Transfer.archive_path, Transfer.sender_id, Transfer.status)
        .where(Transfer.delivery_method == DeliveryMethod.PORTAL,
               Transfer.archive_path.is_not(None),
               Transfer.reference.in_(select(PortalLink.reference)),
               Transfer.reference.not_in(usable),
               Transfer.reference.not_in(_held_references())))).all()
    return [UnreachableArchive(reference, str(path), sender, status)
            for reference, path, sender, status in rows]


async def portal_links_of(session: AsyncSession, *, reference: str) -> list[PortalLinkRecord]:
    return [_record(link) for link in (await session.scalars(
        select(PortalLink).where(PortalLink.reference == reference))).all()]


async def forget_archive_path(session: AsyncSession, *, reference: str, archive_path: str
                              ) -> bool:
    """Record that the transfer's archive at ``archive_path`` was deleted; False if another
    caller got there first."""
    return _won(await session.execute(
        update(Transfer).where(Transfer.reference == reference,
                               Transfer.archive_path == archive_path)
        .values(archive_path=None).execution_options(synchronize_session=False)))
