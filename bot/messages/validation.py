"""What Safe Haven says when a recipient detail, a file or a file name is not acceptable.

Used by :mod:`bot.recipients`, :mod:`bot.filecheck` (with :mod:`bot.zip_directory`) and
:mod:`bot.naming`. Each sentence says what is wrong and what the person can do about it;
the chat shows it and asks again.
Placeholders are filled with :meth:`str.format`; values that came from the user are
shortened and cleaned by the calling module before they are put in.
"""

# --- Email addresses (bot.recipients.check_email) -------------------------------------

EMAIL_MISSING = "Enter the recipient's email address, for example name@organisation.gov.uk."
EMAIL_TOO_LONG = (
    "That email address is too long to be real. Check it and enter just the one address, "
    "for example name@organisation.gov.uk."
)
EMAIL_SYNTAX = (
    "That email address isn't valid: {explanation} Check it and enter it again, "
    "for example name@organisation.gov.uk."
)
# Fillers for {explanation} when the email library gives no usable one.
EMAIL_SYNTAX_UNKNOWN = "It is not in the form name@organisation."
EMAIL_SYNTAX_CHARACTERS = "It contains characters that can't be used."
EMAIL_WEBMAIL = (
    "{domain} is a personal email service. Protected information must not go to personal "
    "accounts such as Gmail, Yahoo or Hotmail. Enter the recipient's work email address instead."
)
EMAIL_INTERNATIONAL_DOMAIN = (
    "{domain} is written with letters outside A to Z (to email systems it is {ascii_domain}). "
    "Such letters can make a domain look like another organisation's (a Cyrillic \"һ\" looks "
    "like \"h\"), so protected information goes only to domains written in plain letters, "
    "digits and hyphens. Check the address with the recipient and enter it again."
)
EMAIL_GENERIC_MAILBOX = (
    "{address} is a shared mailbox ({local}@), so you can't know who will read it. Protected "
    "information must go to a named person. Enter the recipient's own work email address."
)
EMAIL_DISTRIBUTION_LIST = (
    "{address} looks like a distribution list that sends to many people. Protected information "
    "must go to a named person. Enter the recipient's own work email address."
)

# --- Phone numbers (bot.recipients.parse_phone) ---------------------------------------

PHONE_MISSING = "Enter the recipient's phone number, for example {example}."
PHONE_TOO_LONG = (
    "That is too long to be a phone number. Enter just one number, for example {example}."
)
PHONE_BAD_CHARACTERS = (
    "That phone number contains characters that can't be used. Type it again on one line, "
    "for example {example}."
)
PHONE_INVALID = (
    "That isn't a valid phone number. Enter the full number including the area code, for "
    "example {example}, or a mobile such as {mobile}. For a number in another country, start "
    "with + and the country code, for example +33 1 23 45 67 89."
)
# Used instead of PHONE_INVALID where mobiles and landlines look alike (the US, Canada...).
PHONE_INVALID_ONE_EXAMPLE = (
    "That isn't a valid phone number. Enter the full number including the area code, for "
    "example {example}. For a number in another country, start with + and the country code, "
    "for example +33 1 23 45 67 89."
)
PHONE_UNKNOWN_COUNTRY = (
    "Safe Haven can't tell which country that phone number is in. Start it with + and the "
    "country code, for example +44 20 7946 0000."
)
# Used when the policy's region has no example number in the phone-number library.
PHONE_FALLBACK_EXAMPLE = "+44 20 7946 0000"
PHONE_FALLBACK_MOBILE_EXAMPLE = "+44 7400 123456"
PHONE_EXTENSION_DISPLAY = "{number} ext. {extension}"

# --- Names and other free-text details (bot.recipients.check_name) --------------------

NAME_MISSING = "Enter the {label}."
NAME_TOO_LONG = "The {label} is too long. Keep it under {max_len} characters."
NAME_BAD_CHARACTERS = (
    "The {label} contains characters that can't be used, such as line breaks or hidden "
    "formatting characters. Type it again on one line."
)
NAME_NO_LETTERS = "The {label} must contain letters or numbers. Enter it again."

# --- Files (bot.filecheck.inspect_file) -----------------------------------------------

UNNAMED_FILE = "unnamed file"  # a file whose name has nothing visible (bot.events)

FILE_UNREADABLE = "Safe Haven couldn't read “{name}”. Please send the file again."
FILE_EMPTY = (
    "“{name}” is empty (0 bytes), so there is nothing to send. Check you picked the right "
    "file, save it again if needed, and send it again."
)
FILE_TOO_LARGE = (
    "“{name}” is {size_mb} MB, which is over the {limit_mb} MB limit for one file. Split it "
    "into smaller files or reduce its size (for example by compressing images), then send "
    "the smaller files."
)
# In FILE_DISGUISED and FILE_BLOCKED_MACRO_DOCUMENT, {claimed} and {kind} come with their
# article ("a PDF document (.pdf)", "an Excel workbook"); elsewhere {kind} is a bare label.
FILE_DISGUISED = (
    "“{name}” is named as {claimed}, but its content is {kind}. Files whose content "
    "doesn't match their name can't be sent. Check you picked the right file; if you did, "
    "ask your IT service desk to look at it."
)
FILE_BLOCKED_EXECUTABLE = (
    "“{name}” is a program ({kind}). Programs can't be sent through Safe Haven because they "
    "could harm the recipient's computer. If software needs to be shared, ask your IT "
    "service desk."
)
FILE_BLOCKED_SCRIPT = (
    "“{name}” is a script ({kind}) that could run commands on the recipient's computer, so "
    "it can't be sent. If the recipient needs to read it, copy the text into a document "
    "(for example a PDF) and send that instead."
)
FILE_BLOCKED_SHORTCUT = (
    "“{name}” is a shortcut ({kind}), not the file itself, and shortcuts can start programs. "
    "Send the original file instead."
)
FILE_BLOCKED_MACRO_DOCUMENT = (
    "“{name}” is {kind} containing macros, which can run code when it is opened. Save a "
    "copy without macros (for example File > Save As > Word Document (.docx) or Excel "
    "Workbook (.xlsx), or as a PDF) and send that copy."
)
FILE_BLOCKED_DISK_IMAGE = (
    "“{name}” is a disk image ({kind}). Disk images can contain programs and can't be "
    "checked, so they can't be sent. Send the individual files you need instead."
)
FILE_BLOCKED_ARCHIVE = (
    "“{name}” is a compressed archive ({kind}). Files inside archives can't be checked, so "
    "your organisation doesn't allow them. Extract the files and send them individually; "
    "Safe Haven protects them for you."
)
FILE_BLOCKED_OTHER = "“{name}” ({kind}) is a kind of file your organisation doesn't allow."
# {count} is "1,350,000" or "more than 100,000"; {limit} is "100,000".
FILE_TOO_MANY_ENTRIES = (
    "“{name}” lists {count} files inside it, more than the {limit} Safe Haven can check, so "
    "it can't be sent. Send the files you need on their own, or in smaller archives."
)
FILE_ARCHIVE_INDEX_TOO_LARGE = (
    "“{name}” has a {size_mb} MB list of contents, more than the {limit_mb} MB Safe Haven can "
    "check, so it can't be sent. Send the files you need on their own, or in smaller archives."
)
FILE_ZIP_AMBIGUOUS = (
    "“{name}” is a damaged ZIP file: its list of contents disagrees with itself, so different "
    "programs would see different files in it and Safe Haven can't check what it holds. Save "
    "or export the file again and send the new copy."
)
FILE_NOT_CHECKED_IN_TIME = (
    "“{name}” could not be checked in time, so it can't be sent. Send it again in a few "
    "minutes; if this happens again, ask your IT service desk to look at the file."
)
FILE_NOT_CHECKED = (
    "“{name}” could not be checked, so it can't be sent. Send it again; if this happens "
    "again, ask your IT service desk to look at the file."
)

# Human-readable kinds used in the sentences above (FileVerdict.kind).
KIND_UNKNOWN = "file of unrecognised type"
KIND_EMPTY = "empty file"
KIND_PLAIN_TEXT = "plain text"
KIND_DAMAGED_ZIP = "damaged ZIP archive"
KIND_ARCHIVE_TOO_BIG = "archive too big to check"
KIND_UNCHECKED = "file not checked"

# --- File names that may identify a person (bot.naming) -------------------------------

NAMING_PERSON = "“{text}” looks like a person's name"
NAMING_TITLE_NAME = "“{text}” looks like a person's title and name"
NAMING_DOB_WORD = "“{text}” suggests a date of birth"
NAMING_DATE = "“{text}” is a full date, which could be someone's date of birth"
NAMING_NI_NUMBER = "“{text}” looks like a National Insurance number"
NAMING_NHS_NUMBER = "“{text}” looks like an NHS number"
NAMING_SSN = "“{text}” looks like a US Social Security number"
NAMING_EMAIL = "“{text}” is an email address"
NAMING_PHONE = "“{text}” looks like a phone number"
NAMING_SUMMARY = (
    "The file name “{name}” may identify someone: {reasons}. File names are not encrypted, "
    "so rename the file using a neutral description or your case reference instead (for "
    "example “Case 12345 referral.pdf”), then send it again."
)
NAMING_REASON_JOINER = "; "
