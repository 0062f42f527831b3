"""Password sends (the `deliveries` table) and SMS opt-outs.

Each function takes the caller's session so several can share one transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.statuses import SendKind, SendStatus
from store.models import (
    Delivery,
    SmsOptOut,
)


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
