"""Serving a portal download: a hold, then an outcome (the link itself is
``handlers/portal.py``; the stream is ``channels/portal``).

:func:`start_download` takes one of the link's downloads before a byte is sent (a
conditional update, so concurrent requests, on any replica, never pass the limit) and
records the hold, which lapses after the longest a download is allowed
(:func:`time_allowed`) plus a margin. Only :func:`finish_download`, once the whole archive
was written, makes it a download (audited, the receipt fired, the sender told);
:func:`interrupt_download` gives the place back. A hold whose process died is given back by
:func:`release_lapsed_holds` once it lapses, so a live download is never released under it.

Giving back is not free for ever: a client can stop reading just before the end, again and
again, and take nearly all of an archive (a ZIP's local headers let it extract most members)
without a download being counted. So downloads the client broke off (hung up, or stopped
reading until cut off) are counted on the link, and the :data:`MAX_INTERRUPTED_DOWNLOADS`-th
locks it: withdrawn as a cancel would, audited ``portal_link_locked``, the sender told. A
download that finishes after its link was withdrawn (a cancel, a lock) counts nothing and
fires no receipt: it is audited ``download_after_withdrawal``.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.messages import portal as msg
from bot.replies import Reply, Text
from handlers.password_sends import dispatch, scheduling
from handlers.services import Services
from store import audit
from store import repositories as repo

log = logging.getLogger(__name__)

USER_AGENT_MAX = 300
DOWNLOAD_GRACE = timedelta(minutes=10)
DOWNLOAD_WORST_BYTES_PER_SECOND = 25_000  # 200 kbit/s: a download slower than this is cut
HOLD_MARGIN = timedelta(minutes=5)  # between a download's deadline and its hold lapsing
MAX_INTERRUPTED_DOWNLOADS = 3  # downloads a client broke off before the link is locked


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


@dataclass(frozen=True, slots=True)
class DownloadHold:
    """A download in progress: it holds one of its link's downloads until it ends."""

    attempt: str
    token_hash: str
    reference: str
    sender_id: str
    ip: str
    user_agent: str
    size: int
    allowed: timedelta

    @property
    def held(self) -> repo.HeldDownload:
        return repo.HeldDownload(self.token_hash, self.attempt)


@dataclass(frozen=True, slots=True)
class Download:
    """One finished download."""

    reference: str
    sender_id: str
    count: int
    limit: int
    at: datetime


async def start_download(svc: Services, *, token_hash: str, ip: str, user_agent: str,
                         size: int) -> DownloadHold | None:
    """Hold one download of the link, atomically: the conditional update only succeeds while
    the link is usable and under its limit (counting downloads in progress), so concurrent
    requests can never exceed it. None if the link cannot be downloaded."""
    now = svc.clock()
    allowed = time_allowed(size)
    attempt = secrets.token_hex(8)
    agent = user_agent[:USER_AGENT_MAX]
    async with svc.db.transaction() as session:
        taken = await repo.hold_download(session, token_hash=token_hash, attempt=attempt,
                                         now=now, lapses_at=now + allowed + HOLD_MARGIN)
        if taken is None:
            return None
        reference = taken.link.reference
        await audit.append(session, at=now, actor="recipient", action="download_started",
                           reference=reference, details={
                               "method": "portal", "link": token_hash[:12],
                               "attempt": attempt, "ip": ip, "user_agent": agent,
                               "size": size})
    return DownloadHold(attempt, token_hash, reference, taken.sender_id, ip, agent, size,
                        allowed)


async def finish_download(svc: Services, hold: DownloadHold) -> Download | None:
    """The whole archive was written: count the download and audit it (time, IP, user
    agent, which download of the limit it was). None if the hold had already lapsed and
    been given back, or if the link was withdrawn meanwhile (a cancel, a lock): then it
    does not count, and no receipt may fire."""
    now = svc.clock()
    async with svc.db.transaction() as session:
        # Lock the link first: concurrent finishes then number themselves one by one.
        link = await repo.link_for_update(session, token_hash=hold.token_hash)
        if not await repo.end_download_hold(session, hold.held):
            return None
        if link.revoked_at is not None:
            await audit.append(session, at=now, actor="recipient",
                               action="download_after_withdrawal", reference=hold.reference,
                               details={"method": "portal", "link": hold.token_hash[:12],
                                        "attempt": hold.attempt, "ip": hold.ip,
                                        "user_agent": hold.user_agent, "size": hold.size,
                                        "withdrawn_at": link.revoked_at.isoformat()})
            return None
        in_progress = await repo.downloads_in_progress(session, token_hash=hold.token_hash)
        count = link.downloads - in_progress
        await audit.append(session, at=now, actor="recipient", action="downloaded",
                           reference=hold.reference, details={
                               "method": "portal", "link": hold.token_hash[:12],
                               "attempt": hold.attempt, "ip": hold.ip,
                               "user_agent": hold.user_agent, "download": count,
                               "limit": link.download_limit})
    return Download(hold.reference, hold.sender_id, count, link.download_limit, now)


async def _give_back(svc: Services, held: repo.HeldDownload, *, reason: Interruption,
                     details: dict[str, Any], lapsed_by: datetime | None = None) -> bool:
    """End a hold without a download: the link gets the download back. False if the hold
    had already ended (each hold ends once, whoever gets there first). An interruption
    :data:`BY_THE_CLIENT` is counted on the link; the one that reaches
    :data:`MAX_INTERRUPTED_DOWNLOADS` locks it and the sender is told."""
    now = svc.clock()
    by_client = reason in BY_THE_CLIENT
    token_hash = held.token_hash
    locked: repo.SenderLink | None = None
    async with svc.db.transaction() as session:
        if not await repo.end_download_hold(session, held, lapsed_by=lapsed_by):
            return False
        given = await repo.give_back_download(session, token_hash=token_hash,
                                              interrupted_by_client=by_client)
        link = given.link
        await audit.append(session, at=now, actor="safehaven", action="download_interrupted",
                           reference=link.reference, details={
                               "method": "portal", "link": token_hash[:12],
                               "attempt": held.attempt, "reason": str(reason), **details})
        if by_client and link.interrupted_downloads >= MAX_INTERRUPTED_DOWNLOADS \
                and await repo.lock_portal_link(session, token_hash=token_hash, now=now):
            await audit.append(session, at=now, actor="safehaven", action="portal_link_locked",
                               reference=link.reference, details={
                                   "link": token_hash[:12],
                                   "interrupted": link.interrupted_downloads})
            locked = given
    if locked is not None:
        reference = locked.link.reference
        try:
            await svc.notifier.notify(locked.sender_id, [Text(msg.LINK_LOCKED_SENDER.format(
                reference=reference, count=locked.link.interrupted_downloads))],
                reference=reference)
        except Exception as exc:
            log.error("could not tell the sender of %s that its link was locked: %s",
                      reference, type(exc).__name__)
    return True


async def interrupt_download(svc: Services, hold: DownloadHold, *, reason: Interruption,
                             sent: int) -> None:
    """The archive did not reach the recipient whole: nothing is counted, nobody is told,
    no receipt fires; the audit records the attempt and how far it got."""
    await _give_back(svc, hold.held, reason=reason, details={"sent": sent, "size": hold.size})


async def release_lapsed_holds(svc: Services) -> int:
    """Give back the holds of downloads whose process died mid-way (they lapse after the
    longest a download may take, plus a margin); returns how many."""
    now = svc.clock()
    async with svc.db.read() as session:
        lapsed = await repo.lapsed_download_holds(session, now=now)
    released = 0
    for held in lapsed:
        if await _give_back(svc, held, reason=Interruption.LAPSED, details={}, lapsed_by=now):
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
