"""Tables the Teams channel keeps for itself (created by migration 0003_teams_channel).

They live on the core's declarative ``Base`` so one metadata describes the whole schema, but
only ``channels/teams`` reads or writes them. (Activities and clicks already acted on go in
the core's shared ``processed_events`` table, under ``teams:`` keys.)

- conversation references, so the bot can message a user first (approval requests,
  receipts) in any process, including ``safehaven worker``;
- archive offers made through the Teams file consent card, so an accept uploads once and a
  decline can be offered again.

Messages for a user the bot cannot reach yet are not kept here: the core keeps them, sealed,
in ``held_notices`` (``handlers.notify``; migration 0008 dropped ``teams_held_messages``).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, UTCDateTime


class TeamsConversationRef(Base):
    """Where to reach a Teams user: the Bot Framework conversation reference, as JSON."""

    __tablename__ = "teams_conversation_refs"

    user_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    reference: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OfferStatus(StrEnum):
    """Where an archive offer is (``teams_file_offers.status``; the stored values)."""

    OFFERED = "offered"      # a file consent card is out; accept or decline
    UPLOADING = "uploading"  # accepted: one upload to the sender's OneDrive is running
    UPLOADED = "uploaded"    # saved in the sender's OneDrive
    DECLINED = "declined"    # the sender declined the card
    FAILED = "failed"        # the upload failed or the archive was gone


class TeamsFileOffer(Base):
    """An archive offered to its sender with a file consent card."""

    __tablename__ = "teams_file_offers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200), index=True)
    reference: Mapped[str] = mapped_column(String(20), index=True)
    # The archive's object-store key (bot.objects.archive_key); the column kept its old name,
    # and rows written before hold a host path: the archive is found by ``reference``.
    archive_key: Mapped[str] = mapped_column("archive_path", Text)
    filename: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(BigInteger)
    link_url: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))  # an OfferStatus
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
