"""What Safe Haven says in Microsoft Teams only: card buttons and labels, the file consent
flow, and the personal-chat rule. Everything the conversation itself says is in
:mod:`bot.messages.conversation` and :mod:`bot.messages.transfers`."""

from __future__ import annotations

WELCOME = (
    "Hello, I am Safe Haven. I package confidential files safely for sending outside the "
    "organisation. Send me the files to share here, in this chat, to start. Type `help` for "
    "more."
)
PERSONAL_CHAT_ONLY = (
    "I only work in a personal chat, so that nobody else sees what you share. Open a chat "
    "with Safe Haven (Apps, then Safe Haven, then Chat) and send the files there. Nothing "
    "posted here was kept."
)
SOMETHING_WENT_WRONG = (
    "Something went wrong on my side and your last message was not acted on. Your "
    "transfer is safe. Please try again, or type `status` to see where you are."
)
CARD_NOT_UNDERSTOOD = (
    "I could not read that card. Type `status` to see the current question again."
)

# Files sent to the bot ----------------------------------------------------------------------
DOWNLOAD_TOO_LARGE = "“{name}” is over the {limit} limit for one file, so I did not take it."
DOWNLOAD_FAILED = "I could not fetch “{name}” from Teams. Please send it again."
DOWNLOAD_NOT_ALLOWED = (
    "I could not fetch “{name}”: it is not stored in OneDrive or SharePoint, where Teams "
    "keeps the files you attach, so I did not take it. Attach the file with the paperclip "
    "(Attach file) and send it again."
)
ATTACHMENT_NOT_A_FILE = (
    "I can only take files attached with the paperclip (Attach file), not pictures pasted "
    "into the message or links. Nothing was kept."
)

# Someone the bot has never seen in Teams (a person is never shown by their id).
SOMEONE = "a colleague"
YOUR_APPROVER = "your approver"

# Question cards -----------------------------------------------------------------------------
BUTTON_CONTINUE = "Continue"
BUTTON_SEND = "Send"
BUTTON_BACK = "Back"
BUTTON_CANCEL = "Cancel transfer"
FIELD_REQUIRED = "Please fill this in."
CHOICE_REQUIRED = "Please pick an option."
CHOICE_LABEL_ONE = "Pick one"
CHOICE_LABEL_SEVERAL = "Tick all that apply"
ANSWER_LABEL = "Your answer"
CALL_DATE = "Date"
CALL_TIME = "Time"
CALL_DATE_REQUIRED = "Pick the date agreed with the recipient."
CALL_TIME_REQUIRED = "Pick the time agreed with the recipient."
ANSWERED = "✓ {answer}"
ANSWERED_FIELD = "{label} {value}"  # label as words.labelled gives it

# Approval cards -----------------------------------------------------------------------------
APPROVAL_REASON = "Reason (needed to reject; the sender will see it)"
APPROVAL_DECIDED_REASON = "Reason: {reason}"

# The archive, through the Teams file consent card --------------------------------------------
CONSENT_DESCRIPTION = (
    "Encrypted archive for transfer {reference} (AES-256). Allow saves it to your OneDrive, "
    "ready to attach to the email. The password is not in it, nor in this chat."
)
UPLOADED = (
    "{filename} is saved in your OneDrive (Microsoft Teams Chat Files). Attach it to the "
    "email from there."
)
UPLOAD_NOT_ALLOWED = (
    "I did not save archive {reference}: the place Teams named for it is not your OneDrive, "
    "so nothing was sent anywhere. Select “Offer it again” to retry."
)
UPLOAD_FAILED = (
    "I could not save {filename} to your OneDrive; nothing was sent anywhere. Select "
    "“Offer it again” to retry, or type `archive {reference}`."
)
UPLOAD_INTERRUPTED = (
    "Saving {filename} to your OneDrive was interrupted (the server doing it stopped); "
    "nothing was sent anywhere. Select “Offer it again” to retry, or type "
    "`archive {reference}`."
)
DECLINED = (
    "You declined the archive for {reference}, so it was not saved to your OneDrive. To get "
    "it again, select “Offer it again” or type `archive {reference}`."
)
DECLINED_LINK = "The recipient can also download it from the secure link: {url}"
OFFER_AGAIN = "Offer it again"
ARCHIVE_GONE = (
    "The archive for {reference} is no longer kept on the server. Send the files again to "
    "start a new transfer."
)
ARCHIVE_BUSY = "The archive for {reference} is being saved to your OneDrive already."
OFFER_UNKNOWN = "I cannot find that archive offer. Type `list` to see your transfers."
