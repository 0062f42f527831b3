"""What Safe Haven says about portal links: to the sender in chat, and to the recipient on
the download page (the page's words live here too; its markup is in channels/portal)."""

from __future__ import annotations

from bot.messages.transfers import ZIP_OPENERS

# --- to the sender, in chat ------------------------------------------------------------------

LINK_READY = (
    "Transfer {reference} is packaged: {filename} ({size}), AES-256. Send the recipient "
    "({recipient_email}) the secure download link below, with the email text after it. The "
    "link works until {expires} and for {downloads}; type `cancel {reference}` to "
    "withdraw it. The password is not shown to you and must not go in the email."
)
LINK_LABEL = "Secure download link for {reference}"
PASSWORD_PLAN_ON_DOWNLOAD = (
    "I will text the password to {phone} as soon as the recipient first downloads the "
    "archive. If they confirm receipt another way, type `received {reference}`."
)
DOWNLOADED = (
    "Transfer {reference} was downloaded from the secure link at {when} ({count} of {limit} "
    "downloads used)."
)
DOWNLOADED_LAST = (
    "That was the last download allowed: the link no longer works and the archive will be "
    "deleted from the server."
)
LINK_LOCKED_SENDER = (
    "The secure download link for transfer {reference} was locked: {count} downloads were "
    "broken off before the end, so nobody can use it any more, and the archive will be "
    "deleted from the server. If the recipient cannot download it, check the link reached "
    "the right person; type `cancel {reference}` and send the files again with a new link."
)
LINK_EXPIRED_SENDER = (
    "The secure download link for transfer {reference} has expired after {count} of "
    "{limit} downloads; the archive has been deleted from the server."
)
LINK_EXPIRED_UNUSED_SENDER = (
    "The secure download link for transfer {reference} expired without being used, so the "
    "archive has been deleted and no password will be sent. Send the files again if they "
    "are still needed."
)

EXPIRY_FORMAT = "%a %d %b %Y %H:%M"
EXPIRY_WITH_ZONE = "{when} ({zone})"

# --- the ready-to-paste email ----------------------------------------------------------------

EMAIL_BODY = (
    "Hello,\n\n"
    "Please download {filename} from this secure link:\n{url}\n\n"
    "The link works until {expires} and for {downloads}. The file is encrypted "
    "with AES-256. {zip_openers}\n\n"
    "{password_line}\n\n"
    "Why it is shared: {purpose}\n"
    "You may use it only for: {use_limits}\n"
    "Onward sharing: {onward}\n\n"
    "{deletion_statement}\n\n"
    "Reference: {reference}"
)
EMAIL_PASSWORD_ON_DOWNLOAD = (
    "The password will reach you by text message as soon as you have downloaded the file."
)

# --- the recipient's page ------------------------------------------------------------------

PAGE_TITLE = "Secure download from {organisation}"
PAGE_HEADING = "Secure download"
PAGE_INTRO = "{organisation} has shared an encrypted file with you through Safe Haven."
PAGE_REFERENCE = "Reference"
PAGE_FILE = "File"
PAGE_EXPIRES = "Link expires"
PAGE_DOWNLOADS = "Downloads left"
PAGE_BUTTON = "Download the encrypted file"
PAGE_BUTTON_NOTE = (
    "Each press of the button uses one of the downloads left. Opening this page does not."
)
PAGE_PASSWORD = (
    "The file is protected with a password that reaches you separately, by text message "
    "or phone call, never by email."
)
PAGE_OPENERS = ZIP_OPENERS
PAGE_DELETE = "Please delete the file securely once you no longer need it."

NOT_FOUND_TITLE = "Link not available"
NOT_FOUND_HEADING = "This link is not available"
NOT_FOUND_BODY = (
    "The link may be mistyped, may have expired or been withdrawn, or may have been used "
    "the maximum number of times."
)
NOT_FOUND_NEXT = "Ask the person who sent it to you for a new link."

TOO_MANY_TITLE = "Too many requests"
TOO_MANY_HEADING = "Too many requests"
TOO_MANY_BODY = "Please wait a minute, then try again."

FOOTER = "Safe Haven secure transfer"
