"""What the bot says about messages it kept for someone it could not reach."""

from __future__ import annotations

# Where a person's channel is named in a sentence, by the prefix of their id.
CHANNEL_NAMES = {"console": "the terminal", "slack": "Slack", "teams": "Microsoft Teams"}
UNKNOWN_CHANNEL = "their channel"

# Why someone was not reached ({reason} below): their channel is not configured here, or it
# is but could not take the message (by the prefix of their id; UNREACHABLE_ON_OTHER else).
NOT_SET_UP = "{channel} is not set up on this Safe Haven"
UNREACHABLE_ON = {
    "teams": ("Microsoft Teams could not take the message (if they have not installed "
              "Safe Haven there yet, ask them to add the Safe Haven app: Apps, then search "
              "for Safe Haven, and open a chat with it)"),
    "slack": "Slack did not take the message",
}
UNREACHABLE_ON_OTHER = "{channel} did not take the message"
APPROVER_HELD = (
    "I could not reach your approver {approver}: {reason}. Your request {reference} is kept "
    "for them and reaches them as soon as they next message Safe Haven, on any channel."
)
PERSON_HELD = (
    "I could not reach {person}: {reason}. The message about {reference} is kept for them "
    "and reaches them as soon as they next message Safe Haven."
)
HELD_HEADER = "While I could not reach you, {messages} kept for you:"
HELD_ONE = "a message was"
HELD_MANY = "{count} messages were"
HELD_ARCHIVE_GONE = (
    "(An archive was handed back to you here for {reference}; it is no longer kept. "
    "`status {reference}` shows where the transfer is.)"
)
HELD_UNREADABLE = (
    "(A message kept for you could not be opened: the server key has changed since. "
    "`list` shows your transfers.)"
)
