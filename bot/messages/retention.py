"""What ``safehaven retention`` says about each artefact: its period and what goes when."""

from __future__ import annotations

CHAT_ARCHIVE_PERIOD = "{after} days after the password was delivered, {most} days at most"
CHAT_ARCHIVE_GOES = ("the archive handed back in the chat; at once when the transfer is "
                     "cancelled")
PORTAL_ARCHIVE_PERIOD = "until no download link can fetch it"
PORTAL_ARCHIVE_GOES = ("the archive held for the portal, once its links have expired, "
                       "been used up or been withdrawn")
DRAFT_PERIOD = "{hours} hours untouched"
DRAFT_GOES = "an unfinished transfer: cancelled, its uploaded files deleted"
CONVERSATION_PERIOD = "{days} days idle"
CONVERSATION_GOES = "the saved state of a conversation that waits on no question"
RECIPIENT_PERIOD = "{days} days unused"
RECIPIENT_GOES = "a recipient in a sender's address book (the transfer's record keeps its copy)"
INCIDENT_PERIOD = "{days} days after it was opened"
INCIDENT_GOES = "the record of a reported mistake"
AUDIT_PERIOD = "{days} days after it was written"
AUDIT_GOES = ("an audit record, pruned by the audit trail's own job behind a signed "
              "checkpoint (never the newest); kept longest, so the record outlives the files")

HEADER = "Retention under {source} (as of {now}):"
LINE = "- {artefact}: {period}. Goes: {goes}. Due now: {due}. Next due: {next_due}."
NONE_WAITING = "none waiting"
DELETED = "Deleted now: {counts}."
DELETED_NOTHING = "Deleted now: nothing was due."
