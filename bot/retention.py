"""What Safe Haven keeps, and for how long: the artefacts the policy's ``[retention]`` (and
``[intake] draft_expiry_hours``) governs, and one line of the ``safehaven retention`` view.

The scheduler deletes each artefact once its period passes (``handlers/retention.py``,
run from ``handlers/housekeeping.py``) and records every deletion in the audit trail; the
audit trail itself is kept longest, so the record outlives the files it describes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Artefact(StrEnum):
    """A kind of thing Safe Haven keeps for a while (as named in the audit and ``--json``)."""

    CHAT_ARCHIVE = "chat_archive"  # an archive handed back in the chat (delivery by archive)
    PORTAL_ARCHIVE = "portal_archive"  # an archive held for the recipient's download link
    DRAFT = "draft"  # a conversation left mid-way: its transfer and uploaded files
    CONVERSATION = "conversation"  # saved conversation state waiting on nothing
    RECIPIENT = "recipient"  # a recipient in a sender's address book
    INCIDENT = "incident"  # a reported mistake
    AUDIT_RECORD = "audit_record"  # the record of every share


@dataclass(frozen=True, slots=True)
class ArtefactRetention:
    """One artefact's line in the view: its period in words, what goes when, how many are
    due now and when the next one falls due (None when none waits)."""

    artefact: Artefact
    period: str
    goes: str
    due_now: int
    next_due: datetime | None

    def as_json(self) -> dict[str, object]:
        return {"artefact": self.artefact.value, "period": self.period, "goes": self.goes,
                "due_now": self.due_now,
                "next_due": self.next_due.isoformat() if self.next_due else None}
