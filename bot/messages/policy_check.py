"""What ``safehaven policy check FILE`` says: every error in a policy file, each naming its
key, or what the policy will do for each classification."""

from __future__ import annotations

ERRORS_HEADER = "{source}: {count} found; Safe Haven would refuse to start with this policy:"
ERROR_COUNT = {1: "1 error"}
ERRORS_MANY = "{count} errors"
ERROR_LINE = "  {number}. {error}"
ERRORS_FOOTER = ("Fix each key named above, then run 'safehaven policy check {source}' "
                 "again. The keys are described in docs/policy.md.")

OK_HEADER = "{source}: OK. Policy of {organisation} (time zone {timezone}, today {today})."
LEVELS_HEADER = "What it does for each classification, least to most sensitive:"
LEVEL_HEADER = "{name}: {description}"
FIELD = "  {label:<18} {value}"

LABEL_PROTECTION = "protection"
LABEL_APPROVAL = "approval"
LABEL_DELIVERY = "delivery"
LABEL_PASSWORD = "password by"
LABEL_LINKS = "download links"
LABEL_SIZES = "size limits"
LABEL_AGREEMENTS = "agreements"
LABEL_SPECIAL = "special categories"

PROTECTION_ENCRYPTED = "AES-256 archive required; recipient address checked"
PROTECTION_ENCRYPTED_NO_CHECKS = "AES-256 archive required; recipient address not checked"
PROTECTION_CHECKS_ONLY = "archive optional; recipient address checked"
PROTECTION_NONE = "none required (public information)"

APPROVAL_ALWAYS = "always: a listed approver authorises every share"
APPROVAL_NEVER = "never"
APPROVAL_WITHOUT_AGREEMENT = ("only when no live agreement covers the recipient's email "
                              "domain, this classification and every category ticked")
APPROVAL_SPECIAL = "; always when the share carries special category data ({labels})"
APPROVAL_SPECIAL_NONE_LISTED = ("; always when the share carries special category data "
                                "(the policy marks no category special, so never on this "
                                "ground)")
APPROVERS = " (approvers: {approvers})"
APPROVERS_NONE = " (no approvers listed)"

DELIVERY = "{methods}; default {default}"
PASSWORD_METHOD = {
    "sms": "SMS at once",
    "sms-on-receipt": "SMS once receipt is confirmed",
    "voice": "phone call at an agreed time",
}
DELIVERY_METHOD = {"archive": "archive handed to the sender (email attachment)",
                   "portal": "secure download link"}
LINKS = "expire after {hours} hours; {downloads}"
DOWNLOADS = {1: "1 download"}
DOWNLOADS_MANY = "{count} downloads"
SIZES = ("{total} MB per transfer, {file} MB per file, {files} files; an archive over "
         "{email} MB goes by download link, not email")
AGREEMENT = "{name} ({domains}; review by {review_by}{state})"
AGREEMENT_LAPSED = ", LAPSED: counts as absent until reviewed"
AGREEMENT_DUE = ", due for review within {days} days"
AGREEMENTS_NONE = "none"
SPECIAL_APPROVED = "need an approver at this level: {labels}"
SPECIAL_NOT_APPROVED = "no extra approval at this level"
SPECIAL_ALWAYS = "approved like every share at this level: {labels}"
SPECIAL_NONE = "the policy lists no information categories (the question is not asked)"

CALL_WINDOW = ("Password calls: {start}-{end} on {days} ({timezone}), booked {lead} minutes "
               "to {ahead} days ahead; {attempts} attempts; heads-up SMS {heads_up}.")
HEADS_UP_NONE = "none"
HEADS_UP = "{minutes} minutes before"
APPROVAL_EXPIRY = "Approval requests expire after {hours} hours."
