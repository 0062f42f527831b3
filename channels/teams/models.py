"""The Teams channel's own vocabulary for its tables.

The tables themselves (``teams_conversation_refs``: where to reach a Teams user, so the bot
can message them first from any process; ``teams_file_offers``: archives offered through
the file consent card, so an accept uploads once and a decline can be offered again) are
defined in :mod:`store.models`, with every other table, so Alembic knows the whole schema;
only ``channels/teams`` reads or writes them. Activities and clicks already acted on go in
the core's shared ``processed_events`` table, under ``teams:`` keys; messages for a user
the bot cannot reach yet are kept, sealed, in ``held_notices`` (``handlers.notify``).
"""

from __future__ import annotations

from enum import StrEnum

from store.models import TeamsConversationRef as TeamsConversationRef
from store.models import TeamsFileOffer as TeamsFileOffer


class OfferStatus(StrEnum):
    """Where an archive offer is (``teams_file_offers.status``; the stored values)."""

    OFFERED = "offered"      # a file consent card is out; accept or decline
    UPLOADING = "uploading"  # accepted: one upload to the sender's OneDrive is running
    UPLOADED = "uploaded"    # saved in the sender's OneDrive
    DECLINED = "declined"    # the sender declined the card
    FAILED = "failed"        # the upload failed or the archive was gone
