"""Narrow, keyword-only data access used by the handlers, one module per aggregate.

Each function takes the caller's session so several can share one transaction. Writes that
must happen at most once (saving a turn, deciding an approval, claiming a delivery) are
conditional updates whose row count says whether this caller won. Handlers import this
package (``from store import repositories as repo``); the names below are its surface.
"""

from __future__ import annotations

from store.repositories.approvals import (
    decide_approval,
    expired_approvals,
    get_approval,
)
from store.repositories.conversations import (
    SavedConversation,
    conversations_untouched_since,
    load_conversation,
    save_conversation,
)
from store.repositories.notices import (
    drop_held_requests,
    held_notices,
    hold_notice,
    prune_held_notices,
    take_held_notice,
)
from store.repositories.recipients import (
    known_recipients,
    remember_recipient,
)
from store.repositories.sends import (
    claim_delivery,
    deliveries_for,
    due_deliveries,
    latest_sms_reference,
    opt_in_sms,
    opt_out_sms,
)
from store.repositories.transfers import (
    TransferSummary,
    forget_stored_paths,
    get_transfer,
    recent_transfers,
    reference_taken,
    references_in,
    set_status,
    stale_drafts,
    stored_paths_in_use,
    transfer_files,
    transfers_in,
    upsert_draft,
)

__all__ = [
    "SavedConversation",
    "TransferSummary",
    "claim_delivery",
    "conversations_untouched_since",
    "decide_approval",
    "deliveries_for",
    "drop_held_requests",
    "due_deliveries",
    "expired_approvals",
    "forget_stored_paths",
    "get_approval",
    "get_transfer",
    "held_notices",
    "hold_notice",
    "known_recipients",
    "latest_sms_reference",
    "load_conversation",
    "opt_in_sms",
    "opt_out_sms",
    "prune_held_notices",
    "recent_transfers",
    "reference_taken",
    "references_in",
    "remember_recipient",
    "save_conversation",
    "set_status",
    "stale_drafts",
    "stored_paths_in_use",
    "take_held_notice",
    "transfer_files",
    "transfers_in",
    "upsert_draft",
]
