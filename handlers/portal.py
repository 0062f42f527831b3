"""Portal links: issue one for a transfer, look it up, count a download, revoke it, and
find the archives no link can reach any more (``handlers/portal_archives.py`` deletes them).

The recipient's page and the download stream live in ``channels/portal``; this module is
the use case behind them, so ``handlers/transfers.py`` can issue and revoke links without
importing the web layer. A link's token is 256 random bits shown once (to the sender, for
the recipient); only its SHA-256 is stored, and neither goes in logs or the audit trail (the
audit names a link by the first 12 hex digits of the hash).

A download is a hold, then an outcome. :func:`start_download` takes one of the link's
downloads before a byte is sent (the same conditional update as ever, so concurrent requests,
on any replica, never pass the limit) and records the hold as a ``processed_events`` row
(``portal-hold:<token hash>:<attempt>``, ``seen_at`` = when the hold lapses): no schema change
was needed. Only :func:`finish_download`, once the whole archive was written, makes it a
download (audited, the receipt fired, the sender told); :func:`interrupt_download` gives the
place back. A hold whose process died is given back by :func:`release_lapsed_holds` once it
lapses, after the longest a download is allowed (:func:`time_allowed`) plus a margin, so a live
download is never released under it.

Giving back is not free for ever: a client can stop reading just before the end, again and
again, and take nearly all of an archive (a ZIP's local headers let it extract most members)
without a download being counted. So downloads the client broke off (hung up, or stopped
reading until cut off) are counted on the link, and the :data:`MAX_INTERRUPTED_DOWNLOADS`-th
locks it: withdrawn as a cancel would, audited ``portal_link_locked``, the sender told. A
download that finishes after its link was withdrawn (a cancel, a lock) counts nothing and
fires no receipt: it is audited ``download_after_withdrawal``.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from bot.messages import portal as msg
from bot.policy_rules import Level
from bot.replies import Reply, Text
from bot.settings import Settings
from bot.statuses import DeliveryMethod, TransferStatus
from handlers.delivery import dispatch, scheduling
from handlers.services import Services
from store import audit
from store.models import PortalLink, ProcessedEvent, Transfer

log = logging.getLogger(__name__)

TOKEN_BYTES = 32  # 256 bits
PATH_PREFIX = "/p/"
USER_AGENT_MAX = 300
HOLD_PREFIX = "portal-hold:"
DOWNLOAD_GRACE = timedelta(minutes=10)
DOWNLOAD_WORST_BYTES_PER_SECOND = 25_000  # 200 kbit/s: a download slower than this is cut
HOLD_MARGIN = timedelta(minutes=5)  # between a download's deadline and its hold lapsing
MAX_INTERRUPTED_DOWNLOADS = 3  # downloads a client broke off before the link is locked


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def link_url(settings: Settings, token: str) -> str:
    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    return f"{base}{PATH_PREFIX}{token}"


def describe_expiry(svc: Services, when: datetime) -> str:
    """An expiry time in the organisation's time zone, e.g. ``Thu 26 Nov 2026 09:30
    (Europe/London)``."""
    local = when.astimezone(svc.policy.timezone)
    return msg.EXPIRY_WITH_ZONE.format(when=local.strftime(msg.EXPIRY_FORMAT),
                                       zone=svc.policy.timezone.key)


def _active(now: datetime) -> list[ColumnElement[bool]]:
    return [PortalLink.revoked_at.is_(None), PortalLink.expires_at > now,
            PortalLink.downloads < PortalLink.download_limit]


def _level(svc: Services, classification: str | None) -> Level:
    try:
        return svc.policy.level(classification or "")
    except KeyError:  # the policy changed since confirmation: apply its strictest level
        return svc.policy.levels[-1]


# --- issuing and revoking (inside the caller's transaction) ---------------------------------


@dataclass(frozen=True)
class IssuedLink:
    """What the sender is told: the URL (the only place the token exists) and its limits."""

    url: str
    expires_at: datetime
    download_limit: int


async def issue_link(session: AsyncSession, svc: Services, *, transfer: Transfer,
                     now: datetime) -> IssuedLink:
    """Create the transfer's link with the expiry and download limit of its level."""
    level = _level(svc, transfer.classification)
    token = new_token()
    digest = hash_token(token)
    expires = now + timedelta(hours=level.link_expiry_hours)
    session.add(PortalLink(token_hash=digest, reference=transfer.reference, expires_at=expires,
                           download_limit=level.download_limit, downloads=0, revoked_at=None,
                           created_at=now))
    await audit.append(session, at=now, actor="safehaven", action="portal_link_created",
                       reference=transfer.reference, details={
                           "link": digest[:12], "expires_at": expires.isoformat(),
                           "download_limit": level.download_limit})
    return IssuedLink(link_url(svc.settings, token), expires, level.download_limit)


async def revoke_links(session: AsyncSession, *, reference: str, by: str, now: datetime) -> int:
    """Withdraw the transfer's links (cancel, by the sender or an admin): every one not
    withdrawn yet, including one whose last download is under way (it counts as used up
    while it runs, and must not count, or fire a receipt, when it finishes)."""
    result = await session.execute(
        update(PortalLink).where(PortalLink.reference == reference,
                                 PortalLink.revoked_at.is_(None))
        .values(revoked_at=now).execution_options(synchronize_session=False))
    count = int(getattr(result, "rowcount", 0) or 0)
    if count:
        await audit.append(session, at=now, actor=by, action="portal_link_revoked",
                           reference=reference, details={"links": count})
    return count


# --- the recipient's side -------------------------------------------------------------------


@dataclass(frozen=True)
class LinkView:
    """What the download page shows about a usable link."""

    reference: str
    archive_path: Path
    size: int | None
    expires_at: datetime
    downloads: int
    download_limit: int

    @property
    def filename(self) -> str:
        return f"{self.reference}.zip"

    @property
    def remaining(self) -> int:
        return self.download_limit - self.downloads


def _ready_transfers() -> Any:
    return select(Transfer.reference).where(Transfer.status == TransferStatus.READY,
                                            Transfer.archive_path.is_not(None))


async def find_usable(svc: Services, *, token_hash: str) -> LinkView | None:
    """The link if it can still be downloaded; None for unknown, expired, revoked or used
    up alike (callers must not tell these apart to the outside)."""
    now = svc.clock()
    async with svc.db.read() as session:
        row = (await session.execute(
            select(PortalLink, Transfer.archive_path, Transfer.archive_size)
            .join(Transfer, Transfer.reference == PortalLink.reference)
            .where(PortalLink.token_hash == token_hash, *_active(now),
                   PortalLink.reference.in_(_ready_transfers())))).first()
    if row is None:
        return None
    link, path, size = row
    return LinkView(link.reference, Path(path or ""), size, link.expires_at, link.downloads,
                    link.download_limit)


def time_allowed(size: int) -> timedelta:
    """The longest a download of ``size`` bytes may take before it is cut off."""
    return DOWNLOAD_GRACE + timedelta(seconds=size / DOWNLOAD_WORST_BYTES_PER_SECOND)


class Interruption(StrEnum):
    """Why a download did not finish (the ``reason`` of a ``download_interrupted`` record)."""

    CLIENT_GONE = "client disconnected"
    TOO_SLOW = "not finished in time"
    INCOMPLETE = "archive shorter than announced"
    SERVER_STOPPED = "server stopped"
    SERVER_ERROR = "server error"
    LAPSED = "hold lapsed: the process serving it stopped"


# Interruptions the client chose (it hung up, or stopped reading): these count towards
# locking the link. The server's own failures do not.
BY_THE_CLIENT = frozenset((Interruption.CLIENT_GONE, Interruption.TOO_SLOW))


@dataclass(frozen=True)
class DownloadHold:
    """A download in progress: it holds one of its link's downloads until it ends."""

    key: str
    attempt: str
    token_hash: str
    reference: str
    sender_id: str
    ip: str
    user_agent: str
    size: int
    allowed: timedelta


@dataclass(frozen=True)
class Download:
    """One finished download."""

    reference: str
    sender_id: str
    count: int
    limit: int
    at: datetime


def _holds_of(token_hash: str) -> ColumnElement[bool]:
    return ProcessedEvent.key.startswith(f"{HOLD_PREFIX}{token_hash}:", autoescape=True)


def _held_references() -> Any:
    """References of links with a download in progress."""
    return select(PortalLink.reference).join(ProcessedEvent, ProcessedEvent.key.startswith(
        literal(HOLD_PREFIX) + PortalLink.token_hash + literal(":")))


async def start_download(svc: Services, *, token_hash: str, ip: str, user_agent: str,
                         size: int) -> DownloadHold | None:
    """Hold one download of the link, atomically: the conditional update only succeeds while
    the link is usable and under its limit (counting downloads in progress), so concurrent
    requests can never exceed it. None if the link cannot be downloaded."""
    now = svc.clock()
    allowed = time_allowed(size)
    attempt = secrets.token_hex(8)
    key = f"{HOLD_PREFIX}{token_hash}:{attempt}"
    agent = user_agent[:USER_AGENT_MAX]
    async with svc.db.transaction() as session:
        result = await session.execute(
            update(PortalLink)
            .where(PortalLink.token_hash == token_hash, *_active(now),
                   PortalLink.reference.in_(_ready_transfers()))
            .values(downloads=PortalLink.downloads + 1)
            .execution_options(synchronize_session=False))
        if getattr(result, "rowcount", 0) != 1:
            return None
        reference, sender = (await session.execute(
            select(PortalLink.reference, Transfer.sender_id)
            .join(Transfer, Transfer.reference == PortalLink.reference)
            .where(PortalLink.token_hash == token_hash))).one()
        session.add(ProcessedEvent(key=key, seen_at=now + allowed + HOLD_MARGIN))
        await audit.append(session, at=now, actor="recipient", action="download_started",
                           reference=reference, details={
                               "method": "portal", "link": token_hash[:12],
                               "attempt": attempt, "ip": ip, "user_agent": agent,
                               "size": size})
    return DownloadHold(key, attempt, token_hash, reference, sender, ip, agent, size, allowed)


async def finish_download(svc: Services, hold: DownloadHold) -> Download | None:
    """The whole archive was written: count the download and audit it (time, IP, user
    agent, which download of the limit it was). None if the hold had already lapsed and
    been given back, or if the link was withdrawn meanwhile (a cancel, a lock): then it
    does not count, and no receipt may fire."""
    now = svc.clock()
    async with svc.db.transaction() as session:
        # Lock the link first: concurrent finishes then number themselves one by one.
        downloads, limit, revoked_at = (await session.execute(
            select(PortalLink.downloads, PortalLink.download_limit, PortalLink.revoked_at)
            .where(PortalLink.token_hash == hold.token_hash).with_for_update())).one()
        ended = await session.execute(
            delete(ProcessedEvent).where(ProcessedEvent.key == hold.key)
            .execution_options(synchronize_session=False))
        if getattr(ended, "rowcount", 0) != 1:
            return None
        if revoked_at is not None:
            await audit.append(session, at=now, actor="recipient",
                               action="download_after_withdrawal", reference=hold.reference,
                               details={"method": "portal", "link": hold.token_hash[:12],
                                        "attempt": hold.attempt, "ip": hold.ip,
                                        "user_agent": hold.user_agent, "size": hold.size,
                                        "withdrawn_at": revoked_at.isoformat()})
            return None
        in_progress = await session.scalar(
            select(func.count()).select_from(ProcessedEvent).where(_holds_of(hold.token_hash)))
        count = downloads - int(in_progress or 0)
        await audit.append(session, at=now, actor="recipient", action="downloaded",
                           reference=hold.reference, details={
                               "method": "portal", "link": hold.token_hash[:12],
                               "attempt": hold.attempt, "ip": hold.ip,
                               "user_agent": hold.user_agent, "download": count,
                               "limit": limit})
    return Download(hold.reference, hold.sender_id, count, limit, now)


async def _give_back(svc: Services, *, key: str, reason: Interruption,
                     details: dict[str, Any], lapsed_by: datetime | None = None) -> bool:
    """End a hold without a download: the link gets the download back. False if the hold
    had already ended (each hold ends once, whoever gets there first). An interruption
    :data:`BY_THE_CLIENT` is counted on the link; the one that reaches
    :data:`MAX_INTERRUPTED_DOWNLOADS` locks it and the sender is told."""
    token_hash, attempt = key.removeprefix(HOLD_PREFIX).split(":", 1)
    now = svc.clock()
    locked: tuple[str, str, int] | None = None  # reference, sender, interruptions
    async with svc.db.transaction() as session:
        condition = [ProcessedEvent.key == key]
        if lapsed_by is not None:
            condition.append(ProcessedEvent.seen_at <= lapsed_by)
        ended = await session.execute(delete(ProcessedEvent).where(*condition)
                                      .execution_options(synchronize_session=False))
        if getattr(ended, "rowcount", 0) != 1:
            return False
        await session.execute(
            update(PortalLink).where(PortalLink.token_hash == token_hash,
                                     PortalLink.downloads > 0)
            .values(downloads=PortalLink.downloads - 1)
            .execution_options(synchronize_session=False))
        if reason in BY_THE_CLIENT:
            await session.execute(
                update(PortalLink).where(PortalLink.token_hash == token_hash)
                .values(interrupted_downloads=PortalLink.interrupted_downloads + 1)
                .execution_options(synchronize_session=False))
        reference, interrupted, revoked_at, sender = (await session.execute(
            select(PortalLink.reference, PortalLink.interrupted_downloads,
                   PortalLink.revoked_at, Transfer.sender_id)
            .join(Transfer, Transfer.reference == PortalLink.reference)
            .where(PortalLink.token_hash == token_hash))).one()
        await audit.append(session, at=now, actor="safehaven", action="download_interrupted",
                           reference=reference, details={
                               "method": "portal", "link": token_hash[:12],
                               "attempt": attempt, "reason": str(reason), **details})
        if reason in BY_THE_CLIENT and interrupted >= MAX_INTERRUPTED_DOWNLOADS \
                and revoked_at is None:
            await session.execute(
                update(PortalLink).where(PortalLink.token_hash == token_hash)
                .values(revoked_at=now).execution_options(synchronize_session=False))
            await audit.append(session, at=now, actor="safehaven", action="portal_link_locked",
                               reference=reference, details={
                                   "link": token_hash[:12], "interrupted": interrupted})
            locked = (reference, sender, interrupted)
    if locked is not None:
        reference, sender, interrupted = locked
        try:
            await svc.notifier.notify(sender, [Text(msg.LINK_LOCKED_SENDER.format(
                reference=reference, count=interrupted))], reference=reference)
        except Exception as exc:
            log.error("could not tell the sender of %s that its link was locked: %s",
                      reference, type(exc).__name__)
    return True


async def interrupt_download(svc: Services, hold: DownloadHold, *, reason: Interruption,
                             sent: int) -> None:
    """The archive did not reach the recipient whole: nothing is counted, nobody is told,
    no receipt fires; the audit records the attempt and how far it got."""
    await _give_back(svc, key=hold.key, reason=reason,
                     details={"sent": sent, "size": hold.size})


async def release_lapsed_holds(svc: Services) -> int:
    """Give back the holds of downloads whose process died mid-way (they lapse after the
    longest a download may take, plus a margin); returns how many."""
    now = svc.clock()
    async with svc.db.read() as session:
        keys = (await session.scalars(
            select(ProcessedEvent.key).where(ProcessedEvent.key.startswith(HOLD_PREFIX),
                                             ProcessedEvent.seen_at <= now))).all()
    released = 0
    for key in keys:
        if await _give_back(svc, key=key, reason=Interruption.LAPSED, details={},
                            lapsed_by=now):
            released += 1
    return released


async def after_download(svc: Services, download: Download) -> None:
    """Release a password waiting for receipt (the first finished download is the receipt;
    later calls find nothing waiting), then tell the sender, with what the release did: that
    message is the last thing a download does. Failures are logged, never raised: the
    recipient's download must not fail because a chat or SMS provider did."""
    receipts: list[Reply] = []
    try:
        if await scheduling.release_on_receipt(svc, reference=download.reference,
                                               actor="recipient", source="portal download"):
            receipts = await dispatch.run_due(svc, reference=download.reference)
    except Exception as exc:
        log.error("releasing the password of %s after a download failed: %s",
                  download.reference, type(exc).__name__)
    local = download.at.astimezone(svc.policy.timezone)
    text = msg.DOWNLOADED.format(reference=download.reference, when=f"{local:%a %d %b %H:%M}",
                                 count=download.count, limit=download.limit)
    if download.count >= download.limit:
        text = f"{text} {msg.DOWNLOADED_LAST}"
    try:
        await svc.notifier.notify(download.sender_id, [Text(text), *receipts],
                                  reference=download.reference)
    except Exception as exc:
        log.error("could not tell the sender of %s about a download: %s",
                  download.reference, type(exc).__name__)


# --- archives no link can reach (handlers/portal_archives.py deletes them) ------------------


@dataclass(frozen=True)
class DeadArchive:
    """A portal transfer's archive that no link can download any more, and why."""

    reference: str
    path: str
    sender_id: str
    reason: str  # "transfer <status>", "revoked", "download limit reached" or "expired"
    downloads: int
    limit: int


async def dead_archives(svc: Services, *, now: datetime) -> AsyncIterator[DeadArchive]:
    """Every portal transfer with an archive that no link can download any more (expired,
    revoked or used up) and none is downloading (an interrupted download gives its place
    back, so the archive must still be there)."""
    async with svc.db.read() as session:
        usable = select(PortalLink.reference).where(*_active(now))
        rows = (await session.execute(
            select(Transfer.reference, Transfer.archive_path, Transfer.sender_id,
                   Transfer.status)
            .where(Transfer.delivery_method == DeliveryMethod.PORTAL,
                   Transfer.archive_path.is_not(None),
                   Transfer.reference.in_(select(PortalLink.reference)),
                   Transfer.reference.not_in(usable),
                   Transfer.reference.not_in(_held_references())))).all()
    for reference, stored, sender, status in rows:
        async with svc.db.read() as session:
            links = (await session.scalars(
                select(PortalLink).where(PortalLink.reference == reference))).all()
        downloads = sum(link.downloads for link in links)
        limit = max(link.download_limit for link in links)
        if status != TransferStatus.READY:
            reason = f"transfer {status}"
        elif any(link.revoked_at is not None for link in links):
            reason = "revoked"
        elif any(link.downloads >= link.download_limit for link in links):
            reason = "download limit reached"
        else:
            reason = "expired"
        yield DeadArchive(reference, str(stored), sender, reason, downloads, limit)


async def forget_archive(svc: Services, dead: DeadArchive, *, now: datetime) -> bool:
    """Record that ``dead``'s archive file was deleted. False if another scheduler got there
    first."""
    async with svc.db.transaction() as session:
        result = await session.execute(
            update(Transfer).where(Transfer.reference == dead.reference,
                                   Transfer.archive_path == dead.path)
            .values(archive_path=None).execution_options(synchronize_session=False))
        if getattr(result, "rowcount", 0) != 1:
            return False
        await audit.append(session, at=now, actor="safehaven", action="archive_deleted",
                           reference=dead.reference, details={
                               "archive": Path(dead.path).name, "reason": dead.reason,
                               "downloads": dead.downloads})
    return True
