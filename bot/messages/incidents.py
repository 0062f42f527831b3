"""What the bot says about a reported mistake (``mistake REF``) and in ``safehaven
incidents``: to the reporter, the sender, the approver and information governance.

Every sentence about what reached the recipient states only what the record shows, and
says "may have" where Safe Haven cannot know (an archive handed back to the sender, a send
that was under way)."""

from __future__ import annotations

MISTAKE_BUTTON = "Report a mistake"
MISTAKE_HINT = (
    "Sent to the wrong person, or something that should not have gone? Type "
    "`mistake {reference}` (or press the button): I withdraw what I still can and tell "
    "information governance."
)
MISTAKE_HINT_PLAIN = (
    "Sent to the wrong person, or something that should not have gone? Type "
    "`mistake {reference}`: I withdraw what I still can and tell information governance."
)

REPORTED = (
    "Mistake on transfer {reference} reported: incident opened at {opened}. A decision on "
    "whether to report it to the Information Commissioner's Office (ICO) is due by {due} "
    "(72 hours)."
)
ALREADY_REPORTED = (
    "A mistake on transfer {reference} was already reported by {by} at {opened}; the "
    "incident is {status}. Nothing more was done."
)
BEING_PACKAGED = (
    "Transfer {reference} is being packaged at this moment; report the mistake again in a "
    "minute, once it is ready (`mistake {reference}`)."
)
STILL_A_DRAFT = (
    "Transfer {reference} is still being prepared: nothing has been packaged or sent. Type "
    "`cancel` to stop it."
)

DONE_HEADER = "What I did:"
DONE_LINKS = "- withdrew the download link: it no longer downloads anything"
DONE_SENDS = "- cancelled {sends} of the password not yet made (text messages or calls)"
DONE_ARCHIVE = "- deleted the encrypted archive from Safe Haven"
DONE_ARCHIVE_FAILED = (
    "- could NOT delete the encrypted archive from storage just now; the service desk has "
    "the audit record and it will be retried"
)
DONE_PASSWORD = "- destroyed the password, so no message or call can carry it any more"
DONE_STOPPED = "- stopped the transfer before anything was packaged"
DONE_NOTHING = "- nothing was left to withdraw"

REACHED_HEADER = "What had already reached the recipient, as far as Safe Haven knows:"
REACHED_NOTHING = (
    "- nothing: the transfer was {stage} and no archive or password had been made"
)
REACHED_HANDED_BACK = (
    "- the encrypted archive was handed back to you: if you emailed it on, the recipient "
    "may have it, and Safe Haven cannot recall an email"
)
REACHED_LINK_UNUSED = "- the download link had not been used: the archive was not downloaded"
REACHED_DOWNLOADS = "- the archive was downloaded {times} through the download link"
REACHED_DOWNLOADING = (
    "- {downloads} of the archive under way may have finished"
)
REACHED_PASSWORD_DELIVERED = "- the password was delivered: {what}"
REACHED_PASSWORD_SENT = (
    "- the password was sent but its delivery was not confirmed: {what}; assume it arrived"
)
REACHED_PASSWORD_IN_FLIGHT = (
    "- a password send was in progress and may have gone: {what}"
)
REACHED_PASSWORD_NOT = "- the password had not reached them"
WHAT_SMS_DELIVERED = "text message delivered to {phone}"
WHAT_CALL_COMPLETED = "call to {phone} completed"
WHAT_SMS = "text message to {phone}"
WHAT_CALL = "call to {phone}"

TOLD_HEADER = "Who I told:"
TOLD_APPROVER = "- the approver: {who}"
TOLD_SENDER = "- the sender: {who}"
TOLD_GOVERNANCE = "- information governance: {who}"
TOLD_GOVERNANCE_EMAIL = "- information governance: please also email {email}"
TOLD_NOBODY = "- no approver or governance contact is listed in the policy"
LINE_MANAGER = (
    "The policy asks you to tell your line manager now (or, if they are away, a more "
    "senior manager), and to ask the recipient to delete anything they received."
)

NOTICE = (
    "{reporter} reported a mistake on transfer {reference} ({classification}, to "
    "{organisation}). Incident opened at {opened}; the decision on reporting to the ICO is "
    "due by {due}."
)

CANCELLED_FINISHED = (
    "Transfer {reference} is cancelled: nothing more will be sent from now on. It had "
    "already gone out, though:"
)
CANNOT_CANCEL_FINISHED = "Transfer {reference} is {status}, so it can no longer be cancelled."
POINT_TO_MISTAKE = (
    "If it went to the wrong person or should not have gone, type `mistake {reference}`: "
    "that withdraws the link and the archive, stops the password, and opens an incident "
    "for information governance."
)

# safehaven incidents
NO_INCIDENTS = "No incidents."
NO_OPEN_INCIDENTS = "No open incidents."
INCIDENT_HEADER = "reference      found              ICO decision due   time left        status"
INCIDENT_LINE = "{reference:<14} {found:<18} {due:<18} {left:<16} {status}"
TIME_LEFT = "{hours} h {minutes:02d} min"
OVERDUE = "overdue {hours} h {minutes:02d} min"
OVERDUE_STATUS = "{status}, DECISION OVERDUE"
OVERDUE_FOOTER = (
    "{incidents} past the 72-hour deadline with no decision recorded. Record it: "
    "`safehaven incidents decide REF --ico reported|not-reported --reason TEXT --by NAME`."
)
DECISION_LINE = "{indent}decided {at} by {by}: {decision}{late}. Reason: {reason}"
DECISION_REPORTED = "reported to the ICO"
DECISION_REPORTED_CASE = "reported to the ICO (ICO reference {ico_reference})"
DECISION_NOT_REPORTED = "not reported to the ICO"
DECISION_LATE = " (late: {hours} h {minutes:02d} min after the deadline)"

# safehaven incidents decide
DECIDED = "Incident on transfer {reference} closed: {decision}, decided by {by} at {at}."
DECIDED_LATE = (
    "The decision was due by {due}: it is recorded as late ({hours} h {minutes:02d} min "
    "after the deadline)."
)
DECIDE_NO_INCIDENT = (
    "No mistake was reported on transfer {reference}, so there is no incident to decide. "
    "`safehaven incidents` lists the incidents."
)
DECIDE_ALREADY = (
    "The incident on transfer {reference} was already decided by {by} at {at}: {decision}. "
    "A decision is recorded once; nothing was changed."
)
DECIDE_NO_BY = "Say who made the decision: `--by NAME` must not be empty."
DECIDE_NO_REASON = (
    "Give the reason for the decision: `--reason TEXT` must not be empty (why it was, or "
    "was not, reported to the ICO)."
)
DECIDE_TOO_LONG = "`{flag}` is too long: at most {limit} characters."
DECIDE_REFERENCE_NOT_REPORTED = (
    "`--ico-reference` is the ICO's case reference for an incident reported to it: give it "
    "only with `--ico reported`."
)
DECIDE_EMPTY_REFERENCE = (
    "`--ico-reference` is empty: give the ICO's case reference, or leave the flag out."
)
