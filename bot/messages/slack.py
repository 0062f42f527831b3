"""What Safe Haven says only in Slack: button labels, modal titles, Slack-specific refusals,
and the set-up sentences a Slack administrator reads.

Everything the conversation itself says comes from :mod:`bot.messages.conversation` and
:mod:`bot.messages.transfers`; this module holds only what exists because of Slack (buttons,
modals, threads, mentions in channels, file downloads from Slack).
"""

from __future__ import annotations

# --- Conversation furniture ---------------------------------------------------------------
OPEN_FORM = "Fill in the form"
SUBMIT = "Submit"
CLOSE = "Close"
USE_THIS_TIME = "Use this time"
TYPE_ANSWER_HINT = "Type your answer here as a message."
PICK_OR_TYPE_TIME = (
    "Pick the date and time, then press “Use this time”; or type it, e.g. {example}."
)
PICK_A_TIME_FIRST = "Pick a date and a time first, then press “Use this time”."
SELECT_PLACEHOLDER = "Choose…"
USE_CHECKED = "Continue with these"
TICK_SOME_FIRST = "Tick every option that applies first, then press “Continue with these”."
TICK_OR_TYPE = "Tick every one that applies; or type their numbers separated by commas."
ANSWERED = "✓ {answer}"
NOT_ACCEPTED = "✗ {answer}: not accepted, see below."
ANSWER_SEPARATOR = " · "
STALE_IN_PLACE = "This question was already answered; carry on from the latest message."

# --- Only in direct messages --------------------------------------------------------------
DMS_ONLY = (
    "I only work in a direct message with you, so nothing shared here is read or kept. "
    "Open a direct message with me (Apps → Safe Haven) and send the files there."
)
COMMAND_ANSWERED_IN_DM = "I have answered in our direct message."
OTHER_WORKSPACE = (
    "Safe Haven here serves only its own organisation's Slack workspace. Nothing you sent "
    "was read or kept; please use your own organisation's way of sharing files."
)

# --- After a restart ----------------------------------------------------------------------
INTERRUPTED = (
    "Safe Haven was restarted while it was handling your message of {time}, so it may not "
    "have been acted on. Type `status` to see where your transfer is, and send that message "
    "again if it is still needed."
)

# --- Files from Slack ---------------------------------------------------------------------
DOWNLOAD_FAILED = (
    "✗ Not accepted: I could not fetch {name} from Slack ({why}). Please send it again."
)
WHY_EXPIRED = "the file is no longer available there"
WHY_REFUSED = "Slack refused access to it"
WHY_BUSY = "Slack is busy; try again in a minute"
WHY_NETWORK = "the connection to Slack failed"
WHY_NOT_A_FILE = "it is not a file I can download, such as a post or an external link"
WHY_NOT_ALLOWED = (
    "Slack sent me on to another address, which is not one Safe Haven may fetch files from"
)
UNNAMED_FILE = "unnamed file"
MORE_THAN = "more than {limit}"

# --- Approvals ----------------------------------------------------------------------------
REJECT_TITLE = "Reject transfer"
REJECT_SUBMIT = "Reject"
REJECT_REASON_LABEL = "Why are you rejecting {reference}?"
REJECT_REASON_HINT = "The sender sees this reason; it also goes on the audit record."
DECIDED = "{mark} {decision} by {who} on {when} ({tz})."
DECIDED_WITH_REASON = "{mark} {decision} by {who} on {when} ({tz}): “{reason}”"
DECIDED_APPROVED = "Approved"
DECIDED_REJECTED = "Rejected"
DECIDED_OTHER = "{reference} is no longer waiting for a decision: it is {status}."

# --- Failures -----------------------------------------------------------------------------
UPLOAD_FAILED = (
    "✗ I could not put the archive {filename} in this chat: Slack answered “{error}”. The "
    "archive is kept on the server: type `archive {reference}` to try again, or contact "
    "the service desk and quote {filename}."
)
ARCHIVE_GONE = (
    "✗ The archive for {reference} is no longer kept on the server, so I cannot put it in "
    "this chat. Send the files again to start a new transfer."
)
SOMETHING_WENT_WRONG = (
    "Something went wrong while handling that, so it may not have been recorded. Type "
    "`status` to see where your transfer is, and try again."
)

# --- Start-up (read by the administrator who runs `safehaven serve`) ----------------------
SERVE_WITHOUT_SLACK = (
    "Slack: not configured, serving without it (set SLACK_BOT_TOKEN with SLACK_SIGNING_SECRET, "
    "or SLACK_APP_TOKEN for Socket Mode; see docs/slack.md)"
)
SERVE_SLACK_HTTP = "Slack: events, interactivity and /safehaven at {url}/slack/events"
SERVE_SLACK_SOCKET = "Slack: Socket Mode (no public URL needed)"
SETTING_BOT_TOKEN_MISSING = (
    "SLACK_BOT_TOKEN is not set, but other SLACK_* variables are. Set it to the app's Bot "
    "User OAuth Token (Slack app settings → OAuth & Permissions; it starts with xoxb-), or "
    "unset every SLACK_* variable to run without Slack."
)
SETTING_BOT_TOKEN_FORMAT = (
    "SLACK_BOT_TOKEN does not look like a bot token: it must start with xoxb-. Copy the Bot "
    "User OAuth Token from the Slack app settings → OAuth & Permissions."
)
SETTING_NO_WAY_IN = (
    "Slack needs a way to reach Safe Haven: set SLACK_SIGNING_SECRET (Slack app settings → "
    "Basic Information → Signing Secret) to receive requests at /slack/events, or "
    "SLACK_APP_TOKEN (an app-level token starting with xapp-, with the connections:write "
    "scope) to use Socket Mode."
)
SETTING_APP_TOKEN_FORMAT = (
    "SLACK_APP_TOKEN does not look like an app-level token: it must start with xapp-. Create "
    "one under Slack app settings → Basic Information → App-Level Tokens (connections:write)."
)
BOT_TOKEN_REFUSED = (
    "Slack refused SLACK_BOT_TOKEN ({error}). Copy the Bot User OAuth Token (xoxb-…) again "
    "from the Slack app settings → OAuth & Permissions, after installing the app."
)
SOCKET_TOKEN_REFUSED = (
    "Slack refused SLACK_APP_TOKEN ({error}). Enable Socket Mode in the Slack app settings "
    "and create an app-level token with the connections:write scope."
)
SETTING_API_URL = (
    "SLACK_API_URL is {value!r}; set it to an http(s) URL such as https://slack.com/api/ "
    "(or leave it unset to use Slack's own)."
)
SETTING_TEAM_IDS = (
    "SLACK_TEAM_IDS holds {value!r}, which is not a Slack workspace id; list the ids "
    "(T… or E…, from each workspace's About page) separated by commas, or leave it unset "
    "to serve only the bot's own workspace."
)
SETTING_INBOX_LEASE = (
    "SLACK_INBOX_LEASE_SECONDS is {value!r}; set it to a number of seconds between 1 and 3600 "
    "(how long a replica's acknowledged messages wait before another takes them over), or "
    "leave it unset for 30."
)

# The confirmation Slack shows before a Cancel press is sent (Block Kit `confirm`).
CANCEL_CONFIRM_TITLE = "Cancel this transfer?"
CANCEL_CONFIRM_TEXT = "Its files will be deleted and nothing more will be sent."
CANCEL_CONFIRM_YES = "Yes, cancel it"
CANCEL_CONFIRM_NO = "No, keep it"
