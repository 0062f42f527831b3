"""What the bot says during the guided secure-share conversation."""

from __future__ import annotations

HELP = (
    "I package confidential files safely for sending outside the organisation.\n"
    "• Send me one or more files to start a transfer, then answer my questions.\n"
    "• At any question you can type `back` or `cancel` (I ask before cancelling).\n"
    "• `status REF` shows where a transfer is; `list` shows your recent transfers.\n"
    "• `cancel REF` cancels a transfer that is not finished, once you say yes.\n"
    "• `archive REF` sends you a ready transfer's encrypted archive again.\n"
    "• `mistake REF` reports a transfer that went to the wrong person or should not have "
    "gone: I withdraw what I still can, tell you what had reached the recipient and tell "
    "information governance.\n"
    "• `received REF` tells me the recipient has the archive, so I can send the password "
    "(when you chose \"SMS once receipt is confirmed\").\n"
    "• `call REF YYYY-MM-DD HH:MM` books a password call at a time agreed with the "
    "recipient.\n"
    "The password is never shown to you or put in the email: it goes to the recipient by "
    "SMS or a phone call."
)
IDLE = "Send me the files you need to share to start a transfer. Type `help` for more."
NOTHING_TO_GO_BACK_TO = "There is no earlier question to go back to."
NOTHING_TO_CANCEL = "There is no transfer in progress to cancel."
CANCELLED = "Transfer {reference} is cancelled. The files you sent have been deleted."
ASK_CANCEL = (
    "Cancel {reference}? This deletes the files you sent ({files}) and everything you "
    "answered for it. Yes or no?"
)
ASK_CANCEL_OTHER = (
    "Cancel {reference}? This deletes its files, withdraws any download link and stops any "
    "password not yet sent. Yes or no?"
)
CANCEL_YES = "Yes, cancel {reference}"
CANCEL_NO = "No, keep it"
CANCEL_KEPT = "{reference} is kept; nothing was deleted."
STALE_ANSWER = "That question has already been answered; carry on from the latest question."
UNEXPECTED_FILES = (
    "Transfer {reference} is past the point where files can be added. Type `back` until "
    "the classification question to add them, or `cancel` to start again. "
    "The files you just sent were not kept."
)
ANSWER_WITH_CHOICE = "Please pick one of the options."
EARLIER_ANSWER = "Your earlier answer is kept unless you give a new one: {answer}"

# Files -------------------------------------------------------------------------------------
FILES_RECEIVED = "Transfer {reference}: I have {files}, {size} in total:"
FILES_ADDED = "Added to transfer {reference}; it now has {files}, {size} in total:"
FILE_LINE = "• {name} ({size}, {kind})"
FILE_REFUSED = "✗ Not accepted: {reason}"
FILE_TOO_LARGE = "{name} is {size}; the limit for one file is {limit}."
TOO_MANY_FILES = "{name} was not added: a transfer can hold at most {limit} files."
TOTAL_TOO_LARGE = "{name} was not added: the transfer would be {size}, over the {limit} limit."
NAME_FLAG = (
    "⚠ The name \"{name}\" looks like it identifies a person ({reasons}). Inside the archive "
    "it will be called {neutral}; the original name is kept only in the encrypted index. "
    "Avoid such names in emails too."
)
JOIN_HINT = "Send more files in the next {minutes} and they will join this transfer."
NO_FILES_ACCEPTED = "None of the files could be accepted, so no transfer was started."
FILES_REVIEW = "Transfer {reference} has these files. Send more, remove one, or continue."
FILES_CONTINUE = "Continue"
FILES_REMOVE = "Remove {name}"
FILES_EMPTY = "The transfer has no files left. Send a file, or type `cancel`."
FILE_REMOVED = "Removed {name} (deleted)."

# Classification ----------------------------------------------------------------------------
ASK_CLASSIFICATION = "How is this information classified? Pick its protective marking."
LEVEL_TOO_LARGE = (
    "{level} transfers may be at most {limit} in total; this one is {size}. Choose another "
    "marking if that is right, or type `back` to remove files."
)

# Information categories --------------------------------------------------------------------
ASK_INFORMATION_CATEGORIES = (
    "What kind of information is this? Pick every category that applies."
)
SPECIAL_CATEGORY_DESC = "Special category or criminal offence data (UK GDPR Art 9/10)"
SPECIAL_CATEGORY_SUFFIX = " (special category)"
SPECIAL_CATEGORY_APPROVAL = (
    "It carries special category or criminal offence data (UK GDPR Art 9/10): the policy "
    "requires a manager's authorisation for that at {classification}, agreement or not."
)
CATEGORIES_NONE_PICKED = "Pick at least one category: every one that applies."
CATEGORIES_UNKNOWN = (
    "\"{text}\" is not one of the categories. Give their numbers or names, separated by "
    "commas (e.g. 1, 3)."
)
SEVERAL_CHOICES_HINT = "Several may apply: type their numbers or names, separated by commas."
CATEGORIES_CONTINUE = "Continue"
CATEGORIES_NOT_ANSWERED = (
    "This transfer was started before Safe Haven asked what kind of information it is: "
    "please answer that first."
)

# Recipient ---------------------------------------------------------------------------------
ASK_RECIPIENT_PICK = "Who is it for? Pick someone you have sent to before, or a new recipient."
NEW_RECIPIENT = "New recipient"
RECIPIENT_TITLE = "Recipient"
RECIPIENT_INTRO = "Who will receive it? Use their work details, not a personal account."
RECIPIENT_RECONFIRM = (
    "Check every detail is still correct, and correct anything that has changed: always use "
    "the latest details, never rely on previous correspondence."
)
RECIPIENT_PHONE_HELP = (
    "A mobile for an SMS password. For a phone call, a main switchboard number with the "
    "extension (e.g. 020 7946 0000 ext 123) is preferred."
)
FIELD_NAME = "Full name"
FIELD_JOB_TITLE = "Job title"
FIELD_DEPARTMENT = "Department"
DEPARTMENT_HELP = "Their team or department, if the organisation has them (optional)."
FIELD_ORGANISATION = "Organisation"
FIELD_EMAIL = "Work email"
FIELD_PHONE = "Phone"
FORM_HAS_ERRORS = "Some details need correcting."

# Purpose and lawful basis ------------------------------------------------------------------
ASK_PURPOSE = (
    "Why is this being shared? Say what the recipient needs it for (at least {min} "
    "characters). It goes on the record and is shown to the approver."
)
PURPOSE_TOO_SHORT = "Please say a little more: at least {min} characters ({got} given)."
PURPOSE_TOO_LONG = "Please keep the purpose under {max} characters."
ASK_LAWFUL_BASIS = "What is the lawful basis for sharing?"
# The shipped policy's lawful bases in plain English (at most 75 characters: Slack's limit
# for an option's description); a basis a policy adds without one is shown as named.
LAWFUL_BASIS_EXPLAINED: dict[str, str] = {
    "UK GDPR Art 6(1)(e) public task": "It is part of our public duties or official functions.",
    "UK GDPR Art 6(1)(c) legal obligation": "A law requires us to share it.",
    "UK GDPR Art 6(1)(a) consent": "The person has clearly agreed to this sharing.",
    "UK GDPR Art 6(1)(d) vital interests": "It is needed to protect someone's life.",
    "UK GDPR Art 6(1)(b) contract": "It is needed for a contract with the person.",
    "Safeguarding: Children Act 1989 / 2004": "It is needed to protect a child at risk of harm.",
    "Data Protection Act 2018 Sch 1 (substantial public interest)":
        "Sensitive data shared for a substantial public interest, e.g. safeguarding.",
}
LAWFUL_NOT_SURE = "Not sure"
LAWFUL_NOT_SURE_DESC = "Nothing is recorded; I will tell you who to ask."
LAWFUL_NOT_SURE_REPLY = (
    "Please check with your information governance contact{contact} before sharing. The "
    "question stays open: pick the basis when you know it, or type `cancel`."
)
LAWFUL_CONTACT = " ({contact})"

# Consent limits ----------------------------------------------------------------------------
CONSENT_TITLE = "Consent limits"
CONSENT_INTRO = (
    "The recipient must understand what they may do with this information, and that any "
    "further handling must be fair and secure."
)
FIELD_USE_LIMITS = "What may the recipient do with it?"
USE_LIMITS_HELP = "e.g. \"Use only for the child protection conference on 3 March.\""
FIELD_ONWARD = "May they share it onward with other agencies?"
ONWARD_NO = "No onward sharing"
ONWARD_YES = "Onward sharing allowed (within the purpose)"
FIELD_DELETE_ACK = "The recipient must delete it after use"
DELETE_ACK_YES = "Yes, I will tell them"
USE_LIMITS_REQUIRED = "Say what the recipient may do with the information."
USE_LIMITS_TOO_LONG = "Please keep what the recipient may do under {max} characters."
DELETE_ACK_REQUIRED = "You must confirm the recipient will be told to delete it after use."
CHOOSE_ONE = "Choose one of the options."

# Delivery ----------------------------------------------------------------------------------
ASK_DELIVERY = "How should the files reach the recipient?"
DELIVERY_ARCHIVE = "Encrypted archive, returned to you here to email"
DELIVERY_ARCHIVE_DESC = "An AES-256 zip named by reference, with a ready-to-paste email."
DELIVERY_PORTAL = "Secure download link"
DELIVERY_PORTAL_DESC = (
    "The recipient downloads it from an expiring link ({hours} h, {downloads})."
)
DELIVERY_TOO_BIG_FOR_EMAIL = (
    "The transfer is {size}, over the {limit} email limit, so it must go by secure link."
)
DELIVERY_NONE_POSSIBLE = (
    "The transfer is {size}, over the {limit} email limit, and {level} does not allow a "
    "download link. Type `back` to remove files."
)
DEFAULT_MARK = " (recommended)"
# The terminal: the answer Enter keeps, the options already ticked, a field's options.
CHOICE_KEPT_MARK = " (press Enter for this)"
CHOICE_CHOSEN_MARK = " (chosen)"
FIELD_OPTION = "{value} for \"{label}\""
FIELD_OPTIONS_HINT = "Type {options}."
FIELD_OPTIONS_JOIN = ", or "

# Password delivery -------------------------------------------------------------------------
ASK_PASSWORD_METHOD = (
    "The password never goes in the chat or the email. How should the recipient get it?"
)
PASSWORD_SMS = "SMS now"
PASSWORD_SMS_DESC = "Texted to {phone} as soon as the archive is ready."
PASSWORD_SMS_ON_RECEIPT = "SMS once receipt is confirmed"
PASSWORD_SMS_ON_RECEIPT_DESC = "Texted when they confirm they have the files."
PASSWORD_VOICE = "Phone call at an agreed time"
PASSWORD_VOICE_DESC = "An automated call to {phone}; they key in a code before hearing it."
SMS_NEEDS_MOBILE = (
    "An SMS needs a mobile number without an extension, and {phone} is not one. Choose a "
    "phone call, or change the recipient's phone."
)
NO_SMS_LANDLINE = "{phone} is a landline, so it can't receive a text: no SMS is offered."
NO_SMS_NOT_MOBILE = "{phone} is not a mobile, so it can't receive a text: no SMS is offered."
NO_SMS_EXTENSION = "{phone} has an extension, so it can't receive a text: no SMS is offered."
NO_PASSWORD_METHOD_LEFT = (
    "This marking sends the password only by SMS: change the recipient's phone to a mobile."
)
CHANGE_PHONE = "Change the recipient's phone"
ASK_PHONE = (
    "What is {name}'s phone number? It is now {phone}. Everything else you answered is kept."
)
PHONE_UNCHANGED = "The phone number is still {phone}."
ASK_CALL_TIME = (
    "When has the recipient agreed to take the call? Give a date and time ({tz}), e.g. "
    "{example}. Calls are made {days}, {start}–{end}."
)
CALL_TIME_UNREADABLE = "I could not read {text!r} as a date and time. Use the form {example}."
CALL_TIME_PAST = (
    "That time has passed or is too soon: choose a time at least {minutes} minutes from now."
)
CALL_TIME_TOO_FAR = "That is too far ahead: calls can be booked up to {days} days ahead."
CALL_TIME_OUTSIDE_HOURS = "Calls are only made {days}, {start}–{end} ({tz}). Choose a time then."

# Summary -----------------------------------------------------------------------------------
SUMMARY_TITLE = "Please check transfer {reference} before it goes:"
SUMMARY_LINES = (
    "• Files: {files}\n"
    "• Classification: {classification}\n"
    "• Information: {categories}\n"
    "• Recipient: {name}, {job_title}, {organisation}\n"
    "  {email} · {phone}\n"
    "• Purpose: {purpose}\n"
    "• Lawful basis: {lawful_basis}\n"
    "• May be used for: {use_limits}\n"
    "• Onward sharing: {onward}\n"
    "• Delete after use: the recipient will be told\n"
    "• Delivery: {delivery}\n"
    "• Password: {password_method}"
)
SUMMARY_APPROVAL = "• Approval: needed from {approvers} before packaging"
SUMMARY_NO_APPROVAL = "• Approval: not needed under policy"
ASK_CONFIRM = "Is everything right?"
CONFIRM = "Confirm and send"
CONFIRM_BACK = "Go back and change something"
CONFIRM_CANCEL = "Cancel the transfer"
CONFIRMED = "Transfer {reference} confirmed."
NO_APPROVERS = (
    "This transfer needs approval, but the policy lists no approver for you other than "
    "yourself. Ask information governance to add one; the transfer stays open."
)
