"""What the bot says about messages it kept for someone it could not reach."""

from __future__ import annotations

# Where a person's channel is named in a sentence, by the prefix of their id.
CHANNEL_NAMES = {"console": "the terminal", "slack": "Slack", "teams": "Microsoft Teams"}
UNKNOWN_CHANNEL = "their channel"

APPROVER_HELD = (
    "I could not reach your approver {approver}: {channel} is not set up on this Safe Haven. "
    "Your request {reference} is kept for them and reaches them as soon as they next message "
    "Safe Haven, on any channel."
)
PERSON_HELD = (
    "I could not reach {person}: {channel} is not set up on this Safe Haven. The message "
    "about {reference} is kept for them and reaches them as soon as they next message "
    "Safe Haven."
)
HELD_HEADER = "While I could not reach you, {count} message(s) were kept for you:"
HELD_ARCHIVE_GONE = (
    "(An archive was handed back to you here for {reference}; it is no longer kept. "
    "`status {reference}` shows where the transfer is.)"
)
HELD_UNREADABLE = (
    "(A message kept for you could not be opened: the server key has changed since. "
    "`list` shows your transfers.)"
)
