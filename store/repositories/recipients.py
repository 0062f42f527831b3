"""A sender's recipient book.

Each function takes the caller's session so several can share one transaction."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import (
    RecipientEntry,
)


async def remember_recipient(session: AsyncSession, *, sender_id: str,
                             recipient: Mapping[str, Any], now: datetime) -> None:
    # Locked (PostgreSQL), so retention's delete of an entry unused for too long waits and
    # then keeps it, or has deleted it already and a new one is added: never an update of
    # a row deleted meanwhile.
    existing = (await session.scalars(select(RecipientEntry).where(
        RecipientEntry.sender_id == sender_id, RecipientEntry.email == recipient["email"],
        RecipientEntry.phone == recipient["phone_display"]).with_for_update())).first()
    if existing is None:
        existing = RecipientEntry(sender_id=sender_id, email=recipient["email"],
                                  phone=recipient["phone_display"], name="", job_title="",
                                  organisation="", last_used_at=now)
        session.add(existing)
    existing.name = recipient["name"]
    existing.job_title = recipient["job_title"]
    existing.department = recipient.get("department") or None
    existing.organisation = recipient["organisation"]
    existing.last_used_at = now


async def known_recipients(session: AsyncSession, *, sender_id: str, limit: int = 8
                           ) -> list[dict[str, str]]:
    rows = (await session.scalars(
        select(RecipientEntry).where(RecipientEntry.sender_id == sender_id)
        .order_by(RecipientEntry.last_used_at.desc()).limit(limit))).all()
    return [{"name": r.name, "job_title": r.job_title, "department": r.department or "",
             "organisation": r.organisation, "email": r.email, "phone": r.phone}
            for r in rows]
