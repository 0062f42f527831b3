"""The register of information-sharing agreements, and which one (if any) covers a share.

Seed 004: a confidentiality clause or agreement "should be in place to ensure the protection
of information distributed to external agencies" and agreements "need to be regularly
reviewed and documented". Each :class:`SharingAgreement` names the organisation, the exact
email domains it covers, the classifications and information categories it allows, and the
date by which it must be reviewed. :func:`check_agreements` answers, for one share, which
live agreement covers it or why none does (:class:`AgreementGap`); an agreement past its
review-by date counts as absent.

Domains are explicit. ``nhs.net`` covers addresses ``x@nhs.net`` and nothing else;
``*.nhs.net`` covers every subdomain (``x@trust.nhs.net``, ``x@a.b.nhs.net``) but not
``nhs.net`` itself. Only the recipient's validated email domain is matched, never an
organisation name the sender typed (the policy refuses entries that are not domains).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

WILDCARD = "*."


@dataclass(frozen=True)
class SharingAgreement:
    """One entry in the register (a ``[[agreement]]`` table of the policy)."""

    name: str
    organisation: str
    domains: tuple[str, ...]  # lower-case ASCII: "nhs.net" exactly, "*.nhs.net" subdomains
    classifications: tuple[str, ...]  # level names
    information_categories: tuple[str, ...]  # the policy's category keys
    review_by: date  # live up to and including this day, in the policy's time zone
    reference: str | None = None
    owner: str | None = None

    def covers_domain(self, email_domain: str) -> bool:
        """Whether the recipient's (ASCII, lower-case) email domain is one this agreement
        lists: equal to a plain entry, or a strict subdomain of a ``*.`` entry."""
        for entry in self.domains:
            if entry.startswith(WILDCARD):
                if email_domain.endswith("." + entry[len(WILDCARD):]):
                    return True
            elif email_domain == entry:
                return True
        return False

    def lapsed(self, today: date) -> bool:
        """Past its review-by date: it counts as absent until reviewed and re-dated."""
        return today > self.review_by

    def uncovered_categories(self, categories: Iterable[str]) -> tuple[str, ...]:
        return tuple(c for c in categories if c not in self.information_categories)

    def record(self) -> dict[str, str | None]:
        """What the audit record says about the agreement a share relied on."""
        return {"name": self.name, "reference": self.reference,
                "organisation": self.organisation, "review_by": self.review_by.isoformat()}


class AgreementGap(StrEnum):
    """Why no live agreement covers a share (recorded as these values)."""

    NO_AGREEMENT = "no-agreement"  # no agreement lists the recipient's domain
    LAPSED = "lapsed"  # the one that would cover it is past its review-by date
    CLASSIFICATION = "classification-not-covered"  # covers the domain, not this level
    CATEGORY = "category-not-covered"  # covers domain and level, not these categories


@dataclass(frozen=True)
class AgreementCheck:
    """The answer for one share: the live ``agreement`` that covers it, or the ``gap`` and
    the agreement it concerns (``None`` for :attr:`AgreementGap.NO_AGREEMENT`), with the
    categories it does not allow for :attr:`AgreementGap.CATEGORY`."""

    agreement: SharingAgreement | None
    gap: AgreementGap | None = None
    categories: tuple[str, ...] = ()

    @property
    def covered(self) -> bool:
        return self.gap is None and self.agreement is not None


def check_agreements(register: Sequence[SharingAgreement], *, email_domain: str, level: str,
                     categories: Sequence[str] | None, today: date) -> AgreementCheck:
    """Which live agreement covers a share of ``level`` (and, when known, ``categories``)
    to ``email_domain``, else the most useful reason none does: a matching agreement that
    lapsed, then one that allows the level but not a category, then one for the domain only.
    ``categories`` None (not answered yet) checks the domain and level only."""
    domain = email_domain.strip().rstrip(".").lower()
    candidates = [a for a in register if domain and a.covers_domain(domain)]
    if not candidates:
        return AgreementCheck(None, AgreementGap.NO_AGREEMENT)
    asked = tuple(categories or ())
    fits = [a for a in candidates
            if level in a.classifications and not a.uncovered_categories(asked)]
    for agreement in fits:
        if not agreement.lapsed(today):
            return AgreementCheck(agreement)
    if fits:
        return AgreementCheck(fits[0], AgreementGap.LAPSED)
    for agreement in candidates:
        if level in agreement.classifications:
            return AgreementCheck(agreement, AgreementGap.CATEGORY,
                                  agreement.uncovered_categories(asked))
    return AgreementCheck(candidates[0], AgreementGap.CLASSIFICATION)


def due_for_review(register: Sequence[SharingAgreement], *, today: date, within_days: int
                   ) -> tuple[list[SharingAgreement], list[SharingAgreement]]:
    """The agreements that have lapsed, and those whose review-by date falls within
    ``within_days`` of ``today`` (both soonest first)."""
    ordered = sorted(register, key=lambda a: (a.review_by, a.name))
    lapsed = [a for a in ordered if a.lapsed(today)]
    soon = [a for a in ordered if not a.lapsed(today)
            and (a.review_by - today).days <= within_days]
    return lapsed, soon
