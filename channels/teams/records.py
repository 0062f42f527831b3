"""The Teams channel's bookkeeping in the store, behind small keyword-only functions.

Writes that must happen once (acting on an activity, uploading an archive) are an insert on
a primary key or a conditional update, so a retried request or a second replica finds the
work already claimed, on SQLite as on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from channels.teams.models import OfferStatus, TeamsConversationRef, TeamsFileOffer
from store.db import Database
from store.models import ProcessedEvent

# An offer in one of these can be offered again (not while its upload is running).
OFFERABLE_AGAIN = (OfferStatus.DECLINED, OfferStatus.FAILED, OfferStatus.UPLOADED,
                   OfferStatus.OFFERED)
KEEP_KEYS = timedelta(days=2)  # Bot Framework retries within seconds; keep keys far longer
PRUNE_ONE_IN = 200


def teams_key(*parts: str) -> str:
    """A ``processed_events`` key for Teams: conversation and activity ids can be long, so
    they are hashed to a fixed length."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return f"teams:{digest}"


async def claim(db: Database, *, key: str, now: datetime) -> bool:
    """True for the first caller with ``key``; False for a repeat (retry, double click,
    second replica). Now and then, keys older than :data:`KEEP_KEYS` are pruned."""
    try:
        async with db.transaction() as session:
            session.add(ProcessedEvent(key=key, seen_at=now))
            await session.flush()
    except IntegrityError:
        return False
    if secrets.randbelow(PRUNE_ONE_IN) == 0:
        async with db.transaction() as session:
            await session.execute(delete(ProcessedEvent).where(
                ProcessedEvent.key.like("teams:%"), ProcessedEvent.seen_at < now - KEEP_KEYS))
    return True


# --- conversation references ---------------------------------------------------------------


async def remember_reference(db: Database, *, user_id: str, reference: Mapping[str, Any],
                             now: datetime) -> bool:
    """Store where ``user_id`` can be reached; True when the bot did not know them yet."""
    async with db.read() as session:
        row = await session.get(TeamsConversationRef, user_id)
        if row is not None and row.reference == dict(reference):
            return False
    async with db.transaction() as session:
        row = await session.get(TeamsConversationRef, user_id)
        if row is None:
            session.add(TeamsConversationRef(user_id=user_id, reference=dict(reference),
                                             updated_at=now))
            try:
                await session.flush()
            except IntegrityError:  # another replica stored it first
                return False
            return True
        row.reference, row.updated_at = dict(reference), now
        return False


async def forget_reference(db: Database, *, user_id: str) -> None:
    """The user removed the app: the bot can no longer message them."""
    async with db.transaction() as session:
        await session.execute(delete(TeamsConversationRef)
                              .where(TeamsConversationRef.user_id == user_id))


async def display_names(db: Database, *, user_ids: Collection[str]) -> dict[str, str]:
    """The names Teams gave the people of ``user_ids`` who have a chat with the bot (the
    ``user.name`` of their stored conversation reference); others are left out."""
    if not user_ids:
        return {}
    async with db.read() as session:
        rows = (await session.scalars(select(TeamsConversationRef).where(
            TeamsConversationRef.user_id.in_(list(user_ids))))).all()
    names: dict[str, str] = {}
    for row in rows:
        user = row.reference.get("user") if isinstance(row.reference, dict) else None
        name = user.get("name") if isinstance(user, dict) else None
        if isinstance(name, str) and " ".join(name.split()):
            names[row.user_id] = " ".join(name.split())[:100]
    return names


async def reference_for(db: Database, *, user_id: str) -> dict[str, Any] | None:
    async with db.read() as session:
        row = await session.get(TeamsConversationRef, user_id)
    return dict(row.reference) if row is not None else None


# --- archive offers ------------------------------------------------------------------------


@dataclass(frozen=True)
class Offer:
    id: str
    user_id: str
    reference: str
    archive_key: str  # where the archive is in the object store (a host path in old rows)
    filename: str
    size: int
    link_url: str | None
    status: OfferStatus


def _offer(row: TeamsFileOffer) -> Offer:
    return Offer(id=row.id, user_id=row.user_id, reference=row.reference,
                 archive_key=row.archive_key, filename=row.filename, size=row.size,
                 link_url=row.link_url, status=OfferStatus(row.status))


async def create_offer(db: Database, *, user_id: str, reference: str, archive_key: str,
                       filename: str, size: int, link_url: str | None, now: datetime) -> Offer:
    row = TeamsFileOffer(id=secrets.token_hex(16), user_id=user_id, reference=reference,
                         archive_key=archive_key, filename=filename[:200], size=size,
                         link_url=link_url, status=OfferStatus.OFFERED, created_at=now,
                         updated_at=now)
    async with db.transaction() as session:
        session.add(row)
    return _offer(row)


async def get_offer(db: Database, *, offer_id: str) -> Offer | None:
    async with db.read() as session:
        row = await session.get(TeamsFileOffer, offer_id)
    return _offer(row) if row is not None else None


async def latest_offer(db: Database, *, user_id: str, reference: str) -> Offer | None:
    async with db.read() as session:
        row = (await session.scalars(
            select(TeamsFileOffer).where(TeamsFileOffer.user_id == user_id,
                                         TeamsFileOffer.reference == reference)
            .order_by(TeamsFileOffer.created_at.desc()).limit(1))).first()
    return _offer(row) if row is not None else None


async def move_offer(db: Database, *, offer_id: str, to: OfferStatus,
                     only_from: Sequence[OfferStatus], now: datetime) -> bool:
    """Move an offer to ``to`` if it is in one of ``only_from``; True if this call moved it."""
    async with db.transaction() as session:
        result = await session.execute(
            update(TeamsFileOffer)
            .where(TeamsFileOffer.id == offer_id, TeamsFileOffer.status.in_(list(only_from)))
            .values(status=to, updated_at=now).execution_options(synchronize_session=False))
    return bool(getattr(result, "rowcount", 0) == 1)


# --- upload leases ---------------------------------------------------------------------------
# An accepted offer is ``uploading`` while one replica uploads it. That replica renews the
# offer's ``updated_at`` every tick (:class:`channels.teams.leases.UploadLeases`), so
# ``updated_at`` is the upload's heartbeat and a lease ends a lease period after it. An upload
# whose lease lapsed was a replica that died mid-upload: any replica gives it back (``failed``,
# so it can be offered again), and only the one whose conditional update wins tells the sender.


async def renew_uploads(db: Database, *, offer_ids: Sequence[str], now: datetime) -> int:
    """Renew the leases of the uploads this replica is running; how many are still uploading
    (one given back by another replica is not renewed)."""
    if not offer_ids:
        return 0
    async with db.transaction() as session:
        result = await session.execute(
            update(TeamsFileOffer)
            .where(TeamsFileOffer.id.in_(list(offer_ids)),
                   TeamsFileOffer.status == OfferStatus.UPLOADING)
            .values(updated_at=now).execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


async def lapsed_uploads(db: Database, *, renewed_before: datetime, limit: int = 100
                         ) -> list[Offer]:
    """Offers still ``uploading`` whose lease was last renewed before ``renewed_before``."""
    async with db.read() as session:
        rows = (await session.scalars(
            select(TeamsFileOffer).where(TeamsFileOffer.status == OfferStatus.UPLOADING,
                                         TeamsFileOffer.updated_at < renewed_before)
            .order_by(TeamsFileOffer.updated_at).limit(limit))).all()
    return [_offer(row) for row in rows]


async def give_back_upload(db: Database, *, offer_id: str, renewed_before: datetime,
                           now: datetime) -> bool:
    """Move a lapsed upload to ``failed`` (offerable again); True if this call moved it (a
    renewal, or another replica, got there first otherwise)."""
    async with db.transaction() as session:
        result = await session.execute(
            update(TeamsFileOffer)
            .where(TeamsFileOffer.id == offer_id,
                   TeamsFileOffer.status == OfferStatus.UPLOADING,
                   TeamsFileOffer.updated_at < renewed_before)
            .values(status=OfferStatus.FAILED, updated_at=now)
            .execution_options(synchronize_session=False))
    return bool(getattr(result, "rowcount", 0) == 1)
