"""What Safe Haven says about information-sharing agreements: why a share needs a manager's
authorisation, which agreement covered it, and the register as ``safehaven agreements``
lists it."""

from __future__ import annotations

# Why approval is needed (shown to the sender, on the approval card, in the record) --------
NO_AGREEMENT = (
    "No information-sharing agreement covers {domain} for {classification} data; a manager "
    "must authorise it."
)
LAPSED = (
    "The information-sharing agreement \"{name}\" with {organisation} was due for review by "
    "{review_by} and has lapsed, so it no longer covers {domain}; a manager must authorise "
    "this share."
)
CLASSIFICATION_NOT_COVERED = (
    "The information-sharing agreement \"{name}\" covers {domain} but not {classification} "
    "data; a manager must authorise it."
)
CATEGORY_NOT_COVERED = (
    "The information-sharing agreement \"{name}\" covers {domain} for {classification} data "
    "but not this kind of information: {categories}; a manager must authorise it."
)
ALWAYS = "The policy requires a manager's authorisation for every {classification} share."
CATEGORIES_JOIN = ", "
UNKNOWN_DOMAIN = "this address"

# The summary and the approval card ---------------------------------------------------------
SUMMARY_APPROVAL_REASON = "  Why: {reason}"
SUMMARY_NO_APPROVAL_AGREEMENT = (
    "• Approval: not needed: covered by the information-sharing agreement \"{name}\"{ref} "
    "with {organisation}"
)
AGREEMENT_REF = " ({reference})"
AWAITING_APPROVAL_REASON = "Why: {reason}"
FACT_REASON = "Why approval is needed"

# safehaven agreements ----------------------------------------------------------------------
REGISTER_HEADER = "Information-sharing agreements in {source} (today: {today}, {timezone}):"
REGISTER_EMPTY = (
    "No information-sharing agreements are listed in {source}: every share under a "
    "\"without-agreement\" level needs a manager's authorisation."
)
REGISTER_ENTRY = (
    "{status}  {name}{ref}\n"
    "    organisation: {organisation}\n"
    "    domains: {domains}\n"
    "    classifications: {classifications}\n"
    "    information: {categories}\n"
    "    review by: {review_by}{owner}"
)
REGISTER_OWNER = " (owner: {owner})"
STATUS_LAPSED = "LAPSED"
STATUS_DUE = "DUE"
STATUS_LIVE = "live"
CATEGORIES_ANY = "(the policy asks no information categories)"
DUE_HEADER = "Due for review:"
DUE_LAPSED = (
    "  LAPSED {days} ago: {name} (review by {review_by}); it covers nothing until "
    "reviewed"
)
DUE_SOON = "  due in {days}: {name} (review by {review_by})"
DUE_NONE = "Due for review: none within {days} days."
CHECK_FAILED = (
    "{agreements} past their review-by date count as absent: shares they covered "
    "now need a manager's authorisation. Review them and update review_by in the policy."
)
