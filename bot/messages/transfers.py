"""What the bot says about a transfer after the questions: approval, hand-back, receipts."""

from __future__ import annotations

from bot.statuses import TransferStatus

AWAITING_APPROVAL = (
    "Transfer {reference} needs authorising under the {classification} rules. I have asked "
    "{approvers}; you will hear here when they decide (the request expires in {hours} h)."
)
APPROVAL_REQUEST = (
    "{sender} asks you to authorise transfer {reference}. You see the details, never the "
    "files. Approve only if sharing is necessary, proportionate and to the right person."
)
APPROVAL_QUESTION = "Do you authorise {reference}?"
# The facts of an approval request (bot.replies.ApprovalRequest), in the order shown.
FACT_CLASSIFICATION = "Classification"
FACT_INFORMATION = "Information"
FACT_DEPARTMENT = "Department"
FACT_RECIPIENT = "Recipient"
FACT_ORGANISATION = "Organisation"
FACT_EMAIL_DOMAIN = "Email domain"
FACT_PURPOSE = "Purpose"
FACT_LAWFUL_BASIS = "Lawful basis"
FACT_FILES = "Files"
FACT_FILES_VALUE = "{files}, {size} in all"
FACT_JOB_TITLE = "Job title"
FACT_EMAIL = "Email"
FACT_PHONE = "Phone"
FACT_USE_LIMITS = "May be used for"
FACT_ONWARD = "Onward sharing"
FACT_DELIVERY = "Delivery"
FACT_PASSWORD = "Password"
APPROVE = "Approve"
REJECT = "Reject (give a reason)"
APPROVED_SENDER = "{approver} approved transfer {reference}. Packaging it now."
REJECTED_SENDER = (
    "{approver} rejected transfer {reference}: \"{reason}\". Nothing was sent; the files "
    "have been deleted."
)
APPROVAL_EXPIRED_SENDER = (
    "Nobody authorised transfer {reference} within {hours} h, so it has expired. Nothing "
    "was sent and the files have been deleted. Send them again to start over."
)
APPROVAL_EXPIRED_APPROVER = "The request to authorise {reference} has expired."
DECISION_RECORDED = "Recorded: you {decision} transfer {reference}."
DECISION_APPROVED = "approved"
DECISION_REJECTED = "rejected"
SELF_APPROVAL = "You cannot authorise your own transfer ({reference}); ask another approver."
ALREADY_DECIDED = "Transfer {reference} was already {status} by {by}."
APPROVAL_NOT_PENDING = "Transfer {reference} is not waiting for approval (it is {status})."
REASON_REQUIRED = "Please give a reason for rejecting {reference}; the sender will see it."
# The one answer for a reference that does not exist and for someone else's (never say which).
UNKNOWN_TRANSFER = "I cannot find a transfer {reference} that you can act on."

ARCHIVE_READY = (
    "Transfer {reference} is packaged: {filename} ({size}), AES-256. Email it to "
    "{recipient_email} with the text below. The password is not shown to you and must not "
    "go in the email."
)
ARCHIVE_AGAIN = (
    "Transfer {reference}: the encrypted archive again, {filename} ({size}). Email it with "
    "the text I gave when it was ready; the password plan is unchanged."
)
ARCHIVE_BY_LINK = (
    "Transfer {reference} is shared by a download link, not an archive in the chat: "
    "`status {reference}` shows the link's state."
)
ARCHIVE_GONE = "Transfer {reference} is {status}: there is no archive to send again."
PASSWORD_PLAN_SMS = "The password will be texted to {phone} now."
PASSWORD_PLAN_ON_RECEIPT = (
    "When the recipient confirms they have the archive, type `received {reference}` and I "
    "will text the password to {phone}."
)
PASSWORD_PLAN_VOICE = (
    "I will phone {phone} with the password at {when}. They will be asked to key in the "
    "code {code} first; it is in the email text."
)
PACKAGING_FAILED = (
    "Packaging transfer {reference} failed, so nothing was sent. The files are kept for "
    "now; type `cancel {reference}` and send them again, or contact the service desk."
)
PACKAGING_TAMPERED = (
    "Packaging transfer {reference} stopped: a stored copy of one of your files failed its "
    "integrity check (it was changed or replaced in storage), so no archive was made from "
    "it and nothing was sent. Type `cancel {reference}` and send the files again; the check "
    "is in the audit log for the service desk."
)
ARCHIVE_TAMPERED = (
    "The encrypted archive of transfer {reference} failed its integrity check when it was "
    "read from storage (it was changed or replaced there), so it was not handed out. Type "
    "`cancel {reference}` and send the files again; the check is in the audit log for the "
    "service desk."
)
PACKAGING_INTERRUPTED = (
    "Transfer {reference} was interrupted while it was being packaged (the server stopped), "
    "so nothing was sent and no password exists. Its files have been deleted and no archive "
    "was kept: send the files to me again to start a new transfer."
)
PACKAGING_FAILED_CLOSED = (
    "Transfer {reference} could not be packaged and was left for {hours} h, so it has been "
    "closed and its files deleted. Send them to me again to start a new transfer."
)

EMAIL_SUBJECT = "CONFIDENTIAL {reference}"
# Which programs open an AES-256 zip, for the recipient: in both emails and on the portal
# page. Plain words only: it is shown in Slack, Teams, the terminal and a browser.
ZIP_OPENERS = (
    "Open it with 7-Zip, WinZip, PeaZip or bsdtar (libarchive) once you have the password. "
    "The zip openers built into Windows (File Explorer) and macOS (Archive Utility, used by "
    "Finder) cannot open it."
)
EMAIL_BODY = (
    "Hello,\n\n"
    "Attached is {filename}, encrypted with AES-256. {zip_openers}\n\n"
    "{password_line}\n\n"
    "Why it is shared: {purpose}\n"
    "You may use it only for: {use_limits}\n"
    "Onward sharing: {onward}\n\n"
    "{deletion_statement}\n\n"
    "Reference: {reference}"
)
EMAIL_PASSWORD_SMS = "The password will reach you separately by text message."
EMAIL_PASSWORD_ON_RECEIPT = (
    "Please reply to confirm you have received this email; the password will then reach you "
    "by text message."
)
EMAIL_PASSWORD_VOICE = (
    "You will receive an automated phone call with the password at the time we agreed. "
    "When asked, key in the code {code}."
)
EMAIL_ONWARD_NO = "not allowed"
EMAIL_ONWARD_YES = "allowed only for the purpose above"
EMAIL_HEADER = "Ready-to-paste email (subject and body):"

PASSWORD_SENT = "Transfer {reference}: the password was {how} to {phone}."
PASSWORD_HOW_SMS = "texted"
PASSWORD_HOW_VOICE = "read out in a call"
PASSWORD_FAILED = (
    "Transfer {reference}: the password could not be {how} to {phone}: {detail}. Check the "
    "number with the recipient."
)
RECEIPT_NOT_EXPECTED = "Transfer {reference} is not waiting for a receipt."
RECEIPT_RECORDED = "Receipt of {reference} recorded."

STATUS_LINE = "{reference}: {status} · {classification} · {files} · created {created}"
STATUS_DELIVERY = "  password {kind}: {status}{when}"
STATUS_APPROVAL = "  approval: {status}{by}"
STATUS_LABELS: dict[str, str] = {
    TransferStatus.DRAFT: "being prepared",
    TransferStatus.SUBMITTED: "submitted",
    TransferStatus.AWAITING_APPROVAL: "waiting for approval",
    TransferStatus.APPROVED: "approved",
    TransferStatus.PACKAGING: "packaging",
    TransferStatus.READY: "archive handed back",
    TransferStatus.REJECTED: "rejected",
    TransferStatus.CANCELLED: "cancelled",
    TransferStatus.EXPIRED: "expired",
    TransferStatus.PACKAGE_FAILED: "packaging failed",
    TransferStatus.WITHDRAWN: "withdrawn after a reported mistake",
}
NO_TRANSFERS = "You have no transfers yet."
LIST_HEADER = "Your recent transfers:"
CANCELLED_REF = (
    "Transfer {reference} is cancelled. Plaintext files were deleted and no password will be "
    "sent."
)
CANNOT_CANCEL = "Transfer {reference} is {status}, so it can no longer be cancelled."
ALREADY_CANCELLED = "Transfer {reference} is already cancelled."
DRAFT_EXPIRED = (
    "Transfer {reference} was left unfinished for {hours} h, so it has been cancelled and "
    "its files deleted."
)
COMMAND_NEEDS_REFERENCE = "Say which transfer, e.g. `{command} SH-7K3Q-9F`."
