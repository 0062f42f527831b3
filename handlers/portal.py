"""Portal links: issue one for a transfer, look it up, withdraw it, and find the archives no
link can reach any more (``handlers/portal_archives.py`` deletes them).

The recipient's page and the download stream live in ``channels/portal``; this module is
the use case behind them, so ``handlers/transfers.py`` can issue and revoke links without
importing the web layer. Serving a download (a hold, then an outcome) is
``handlers/portal_downloads.py``. A link's token is 256 random bits shown once (to the
sender, for the recipient); only its SHA-256 is stored, and neither goes in logs or the
audit trail (the audit names a link by the first 12 hex digits of the hash).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from bot.messages import portal as msg
from bot.policy_rules import Level
from bot.settings import Settings
from bot.statuses import TransferStatus
from handlers.services import Services
from store import audit
from store import repositories as repo
from store.outbox import Session

TOKEN_BYTES = 32  # 256 bits
PATH_PREFIX = "/p/"


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


def _level(svc: Services, classification: str | None) -> Level:
    try:
        return svc.policy.level(classification or "")
    except KeyError:  # the policy changed since confirmation: apply its strictest level
        return svc.policy.levels[-1]


# --- issuing and revoking (inside the caller's transaction) ---------------------------------


class LinkedTransfer(Protocol):
    """What issuing a link reads of its transfer (a stored transfer, as read)."""

    @property
    def reference(self) -> str: ...

    @property
    def classification(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class IssuedLink:
    """What the sender is told: the URL (the only place the token exists) and its limits."""

    url: str
    expires_at: datetime
    download_limit: int


async def issue_link(session: Session, svc: Services, *, transfer: LinkedTransfer,
                     now: datetime) -> IssuedLink:
    """Create the transfer's link with the expiry and download limit of its level."""
    level = _level(svc, transfer.classification)
    token = new_token()
    digest = hash_token(token)
    expires = now + timedelta(hours=level.link_expiry_hours)
    await repo.add_portal_link(session, token_hash=digest, reference=transfer.reference,
                               expires_at=expires, download_limit=level.download_limit,
                               now=now)
    await audit.append(session, at=now, actor="safehaven", action="portal_link_created",
                       reference=transfer.reference, details={
                           "link": digest[:12], "expires_at": expires.isoformat(),
                           "download_limit": level.download_limit})
    return IssuedLink(link_url(svc.settings, token), expires, level.download_limit)


async def revoke_links(session: Session, *, reference: str, by: str, now: datetime) -> int:
    """Withdraw the transfer's links (cancel, by the sender or an admin): every one not
    withdrawn yet, including one whose last download is under way (it counts as used up
    while it runs, and must not count, or fire a receipt, when it finishes)."""
    count = await repo.revoke_portal_links(session, reference=reference, now=now)
    if count:
        await audit.append(session, at=now, actor=by, action="portal_link_revoked",
                           reference=reference, details={"links": count})
    return count


# --- the recipient's page -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkView:
    """What the download page shows about a usable link."""

    reference: str
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


async def find_usable(svc: Services, *, token_hash: str) -> LinkView | None:
    """The link if it can still be downloaded; None for unknown, expired, revoked or used
    up alike (callers must not tell these apart to the outside: one query answers all)."""
    now = svc.clock()
    async with svc.db.read() as session:
        found = await repo.usable_link(session, token_hash=token_hash, now=now)
    if found is None:
        return None
    link = found.link
    return LinkView(link.reference, found.archive_size, link.expires_at, link.downloads,
                    link.download_limit)


# --- archives no link can reach (handlers/portal_archives.py deletes them) ------------------


@dataclass(frozen=True, slots=True)
class DeadArchive:
    """A portal transfer's archive that no link can download any more, and why."""

    reference: str
    path: str
    sender_id: str
    reason: str  # "transfer <status>", "revoked", "download limit reached" or "expired"
    downloads: int
    limit: int


def _why_dead(status: str, links: list[repo.PortalLinkRecord]) -> str:
    if status != TransferStatus.READY:
        return f"transfer {status}"
    if any(link.revoked_at is not None for link in links):
        return "revoked"
    if any(link.downloads >= link.download_limit for link in links):
        return "download limit reached"
    return "expired"


async def dead_archives(svc: Services, *, now: datetime) -> AsyncIterator[DeadArchive]:
    """Every portal transfer with an archive that no link can download any more (expired,
    revoked or used up) and none is downloading (an interrupted download gives its place
    back, so the archive must still be there)."""
    async with svc.db.read() as session:
        unreachable = await repo.unreachable_archives(session, now=now)
    for archive in unreachable:
        async with svc.db.read() as session:
            links = await repo.portal_links_of(session, reference=archive.reference)
        downloads = sum(link.downloads for link in links)
        limit = max(link.download_limit for link in links)
        yield DeadArchive(archive.reference, archive.archive_path, archive.sender_id,
                          _why_dead(archive.status, links), downloads, limit)


async def forget_archive(svc: Services, dead: DeadArchive, *, now: datetime) -> bool:
    """Record that ``dead``'s archive file was deleted. False if another scheduler got there
    first."""
    async with svc.db.transaction() as session:
        if not await repo.forget_archive_path(session, reference=dead.reference,
                                              archive_path=dead.path):
            return False
        await audit.append(session, at=now, actor="safehaven", action="archive_deleted",
                           reference=dead.reference, details={
                               "archive": Path(dead.path).name, "reason": dead.reason,
                               "downloads": dead.downloads})
    return True
