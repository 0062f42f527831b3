"""The organisation's sharing policy as the code asks it: the classification levels and
their rules, the call window, the password delivery rules, the people and their approvers,
and the information-sharing agreements. Read from TOML and validated by :mod:`bot.policy`.

Two rules here decide who may do what, so both are strict. An information-sharing agreement
(:mod:`bot.agreements`) matches only the recipient's (validated) email domain, never text a
sender types, and only while it is within its review-by date. Identity is a person, not an
id: the ``[people]`` table names each person's ids on every channel, and every "same
person?" question (self-approval, only the sender, a listed approver) is answered
by :meth:`Policy.same_person`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from bot.agreements import AgreementCheck, SharingAgreement, check_agreements
from bot.statuses import DeliveryMethod, PasswordMethod

# What follows "teams:": a Microsoft Entra object id, which Teams sends in lower case.
TEAMS_PREFIX = "teams:"
ENTRA_ID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)

# The statement closing a link email when the policy names none (policies written before
# `[email] link_statement` existed): true of a link, where the deletion statement speaks of
# an attachment.
DEFAULT_LINK_STATEMENT = (
    "This email contains a link to download a file which contains personal information. "
    "If you are not the intended recipient you should not open the link or download the "
    "file. You should permanently delete the email and contact the sender. The data must "
    "be deleted once it has been used for the purpose stated."
)


@dataclass(frozen=True)
class Level:
    """One classification level (protective marking) and the rules attached to it."""

    name: str
    description: str
    encryption_required: bool
    recipient_checks: bool
    approval: str
    delivery_methods: tuple[DeliveryMethod, ...]
    default_delivery: DeliveryMethod
    password_methods: tuple[PasswordMethod, ...]
    max_total_bytes: int
    email_limit_bytes: int
    link_expiry_hours: int
    download_limit: int
    # Whether special category or criminal offence data (UK GDPR Art 9/10) at this level
    # needs an approver, whatever else the approval rule says.
    special_category_approval: bool = False

    @property
    def is_protected(self) -> bool:
        """Anything above public must go by a secure method (seed 004)."""
        return self.encryption_required or self.recipient_checks


@dataclass(frozen=True)
class InformationCategory:
    """A kind of information a share may carry (health, safeguarding, education, ...):
    ``key`` is what the record and agreements name, ``label`` what the sender reads, and
    ``special`` whether it is special category or criminal offence data (UK GDPR Art 9/10)."""

    key: str
    label: str
    special: bool = False


@dataclass(frozen=True)
class CallWindow:
    """When voice calls with the password may be placed, in the organisation's time zone."""

    start: time
    end: time
    days: tuple[int, ...]  # 0 = Monday
    min_lead_minutes: int
    max_days_ahead: int


@dataclass(frozen=True)
class DeliveryRules:
    """How hard to try getting the password through, and how the call sounds."""

    max_attempts: int  # per delivery, transient failures included
    retry_backoff_seconds: int  # first retry after this, doubling each time
    call_retry_minutes: int  # no answer / busy / machine: call again after this
    heads_up_minutes: int  # SMS this long before a call; 0 = none
    voice_language: str
    voice_name: str
    code_attempts: int  # wrong codes before the call ends and the sender is alerted


@dataclass(frozen=True)
class ArchiveRetention:
    """How long an archive handed back in the chat (delivery by archive) is kept: so many
    days after its password was delivered, and never longer than so many days after it was
    made, delivered or not. Cancelling the transfer deletes it at once."""

    days_after_password: int = 7
    max_days: int = 30


@dataclass(frozen=True)
class Governance:
    """``[governance]``: who hears of a reported mistake (ids or persons from ``[people]``,
    told through their channel), and an email address the reporter is given to write to."""

    contacts: tuple[str, ...] = ()
    email: str | None = None


@dataclass(frozen=True)
class RetentionPeriods:
    """How long the other artefacts are kept (``[retention]``; see docs/governance.md for
    why each default): saved conversation state idle this many days, recipient
    address-book entries unused this many days, incident records this many days after
    they were opened, audit records this many days after they were written (pruned by
    ``store.audit.prune``). Unfinished drafts go after ``[intake] draft_expiry_hours``."""

    conversation_days: int = 30
    recipient_days: int = 365
    incident_days: int = 2192  # six years (Limitation Act 1980), counting leap days
    # The audit trail outlives everything it describes: seven years (2557 days) by default.
    audit_days: int = 2557


@dataclass(frozen=True)
class Person:
    """Someone the policy knows: a ``[people]`` entry with all their ids, or (``name`` None)
    an id the table does not list, which is a person of its own."""

    name: str | None
    ids: tuple[str, ...]


def canonical_user_id(user_id: str) -> str:
    """The one spelling of ``user_id`` that identity checks compare: a ``teams:`` id's
    Microsoft Entra object id (a GUID) in lower case, as Teams sends it, so that one person
    written in two cases is not two people. Other ids are case-sensitive and kept as given."""
    if user_id.startswith(TEAMS_PREFIX) and ENTRA_ID_RE.fullmatch(user_id[len(TEAMS_PREFIX):]):
        return user_id.lower()
    return user_id


@dataclass(frozen=True)
class Policy:
    """The whole policy. Levels are ordered from least to most sensitive."""

    organisation: str
    timezone: ZoneInfo
    levels: tuple[Level, ...]
    max_file_bytes: int
    max_files: int
    join_window_seconds: int
    draft_expiry_hours: int
    blocked_kinds: tuple[str, ...]
    flag_identifying_names: bool
    neutral_member_names: bool
    webmail_domains: tuple[str, ...]
    generic_mailboxes: tuple[str, ...]
    agreements: tuple[SharingAgreement, ...]  # the register ([[agreement]] tables)
    purpose_min_length: int
    lawful_bases: tuple[str, ...]
    approval_expiry_hours: int
    approvers: Mapping[str, tuple[str, ...]]  # sender (id, person or "*") -> ids, persons
    people: Mapping[str, tuple[str, ...]]  # person -> every id they use
    sms_template: str
    call_window: CallWindow
    delivery: DeliveryRules
    deletion_statement: str  # closes an email that carries the archive as an attachment
    source: str
    archive_retention: ArchiveRetention = ArchiveRetention()
    retention: RetentionPeriods = RetentionPeriods()
    # The kinds of information the sender says a share carries (several may apply); none
    # listed: the question is not asked.
    information_categories: tuple[InformationCategory, ...] = ()
    governance: Governance = Governance()
    # Closes an email that carries a download link instead (policy `[email] link_statement`).
    link_statement: str = DEFAULT_LINK_STATEMENT

    def level(self, name: str) -> Level:
        for level in self.levels:
            if level.name == name:
                return level
        raise KeyError(name)

    def information_category(self, key: str) -> InformationCategory:
        for category in self.information_categories:
            if category.key == key:
                return category
        raise KeyError(key)

    def any_special(self, keys: Iterable[str]) -> bool:
        """Whether any of the category ``keys`` is special category or criminal offence data
        (a key the policy no longer lists counts as special: the safe reading)."""
        known = {c.key: c.special for c in self.information_categories}
        return any(known.get(key, True) for key in keys)

    # --- people --------------------------------------------------------------------------

    def person_of(self, user_id: str) -> Person:
        """The person using ``user_id``; an id not in ``[people]`` is a person of its own."""
        user_id = canonical_user_id(user_id)
        for name, ids in self.people.items():
            if user_id in ids:
                return Person(name, ids)
        return Person(None, (user_id,))

    def same_person(self, a: str, b: str) -> bool:
        """Whether two user ids belong to one person. Every identity check goes through
        here: self-approval, "only the sender", "a listed approver"."""
        return self.person_of(a) == self.person_of(b)

    def is_one_of(self, user_id: str, ids: Iterable[str]) -> bool:
        """Whether ``user_id``'s person is the person of any of ``ids``."""
        return any(self.same_person(user_id, other) for other in ids)

    def approvers_for(self, sender: str) -> tuple[str, ...]:
        """The ids to ask for this sender's approval: the entry for the sender's id, else for
        their person, else ``"*"``; a person listed as approver stands for all their ids.
        Never the sender, under any of their ids."""
        person = self.person_of(sender)
        listed = self.approvers.get(canonical_user_id(sender))
        if listed is None and person.name is not None:
            listed = self.approvers.get(person.name)
        if listed is None:
            listed = self.approvers.get("*", ())
        ids: list[str] = []
        for entry in listed:
            for user_id in self.people.get(entry, (entry,)):
                if user_id not in ids and not self.same_person(user_id, sender):
                    ids.append(user_id)
        return tuple(ids)

    def governance_ids(self) -> tuple[str, ...]:
        """The ids to tell of a reported mistake: each contact, a person standing for all
        their ids."""
        ids: list[str] = []
        for entry in self.governance.contacts:
            for user_id in self.people.get(entry, (entry,)):
                if user_id not in ids:
                    ids.append(user_id)
        return tuple(ids)

    # --- agreements ------------------------------------------------------------------------

    def today(self, now: datetime) -> date:
        """The organisation's calendar day at ``now`` (the engine's clock), in its time zone:
        the day review-by dates are compared with."""
        return now.astimezone(self.timezone).date()

    def agreement_check(self, level: Level, *, email_domain: str, now: datetime,
                        categories: Iterable[str] | None = None) -> AgreementCheck:
        """Which live agreement in the register covers a share of ``level`` to a recipient
        at ``email_domain`` (the ASCII domain the address validated to,
        :class:`bot.recipients.EmailAddress`, never recomputed here: another IDNA codec can
        read a different domain into the same text), or why none does. Only the address
        counts: an organisation name is typed by the sender and proves nothing.
        ``categories`` None (not answered yet) checks the domain and level only."""
        return check_agreements(self.agreements, email_domain=email_domain, level=level.name,
                                categories=None if categories is None else tuple(categories),
                                today=self.today(now))

    def approval_required(self, level: Level, *, email_domain: str, now: datetime,
                          categories: Iterable[str] | None = None) -> bool:
        """Whether ``level`` needs an approver for a recipient at ``email_domain`` (ASCII, as
        validated), checked against the agreements live at ``now``. Special category or
        criminal offence data among ``categories`` (keys) needs one at a level with
        ``special_category_approval``, agreement or not."""
        if level.special_category_approval and self.any_special(categories or ()):
            return True
        if level.approval == "always":
            return True
        if level.approval == "without-agreement":
            return not self.agreement_check(level, email_domain=email_domain, now=now,
                                            categories=categories).covered
        return False
