"""Saved conversations: load, save over a version, find the untouched.

Each function takes the caller's session so several can share one transaction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import (
    Conversation,
)


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
    result = await session.execute(_SAVE_OVER_VERSION, {
        "conversation_id": conversation_id, "expected_version": expected_version,
        "new_state": dict(state), "new_version": expected_version + 1, "at": now})
    return bool(getattr(result, "rowcount", 0) == 1)


# Built once: every step of every conversation runs it (building a statement and its cache
# key each time cost more than running it).
_SAVE_OVER_VERSION = (
    update(Conversation)
    .where(Conversation.id == bindparam("conversation_id"),
           Conversation.version == bindparam("expected_version"))
    .values(state=bindparam("new_state", type_=Conversation.state.type),
            version=bindparam("new_version"),
            updated_at=bindparam("at", type_=Conversation.updated_at.type))
    .execution_options(synchronize_session=False))


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


async def conversations_of(session: AsyncSession, *, user_id: str) -> list[SavedConversation]:
    """Every saved conversation of ``user_id``."""
    rows = (await session.scalars(
        select(Conversation).where(Conversation.user_id == user_id))).all()
    return [SavedConversation(id=r.id, user_id=r.user_id, state=dict(r.state), version=r.version)
            for r in rows]
