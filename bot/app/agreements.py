"""``safehaven agreements``: the register of information-sharing agreements in the policy,
with what is due for review (lapsed, or due within ``--within`` days, 30 by default).
``--check`` exits non-zero when any agreement has lapsed, for a scheduled job or a CI run on
the policy file.

The day is the organisation's (``[organisation] timezone``) on the clock the engine uses
(:func:`handlers.services.utc_now`), so the command and the approval rule agree on which
agreements are live. It reads the policy alone: no database, no channel.
"""

from __future__ import annotations

import argparse
from datetime import date

from bot.agreements import SharingAgreement, due_for_review
from bot.app.config import Config
from bot.app.process import EXIT_INVALID, out
from bot.messages import agreements as msg
from bot.messages.words import plural
from bot.policy import load_policy
from bot.policy_rules import Policy
from handlers.services import utc_now

DUE_WITHIN_DAYS = 30


def _status(agreement: SharingAgreement, today: date, within_days: int) -> str:
    if agreement.lapsed(today):
        return msg.STATUS_LAPSED
    if (agreement.review_by - today).days <= within_days:
        return msg.STATUS_DUE
    return msg.STATUS_LIVE


def render(policy: Policy, *, today: date, within_days: int) -> str:
    """The register, then what is due for review, as text for a person."""
    if not policy.agreements:
        return msg.REGISTER_EMPTY.format(source=policy.source)
    lines = [msg.REGISTER_HEADER.format(source=policy.source, today=today.isoformat(),
                                        timezone=policy.timezone.key)]
    width = max(len(s) for s in (msg.STATUS_LAPSED, msg.STATUS_DUE, msg.STATUS_LIVE))
    for agreement in policy.agreements:
        lines.append(msg.REGISTER_ENTRY.format(
            status=_status(agreement, today, within_days).ljust(width), name=agreement.name,
            ref=msg.AGREEMENT_REF.format(reference=agreement.reference)
            if agreement.reference else "",
            organisation=agreement.organisation, domains=", ".join(agreement.domains),
            classifications=", ".join(agreement.classifications),
            categories=", ".join(agreement.information_categories) or msg.CATEGORIES_ANY,
            review_by=agreement.review_by.isoformat(),
            owner=msg.REGISTER_OWNER.format(owner=agreement.owner) if agreement.owner else ""))
    lapsed, soon = due_for_review(policy.agreements, today=today, within_days=within_days)
    if not lapsed and not soon:
        lines.append(msg.DUE_NONE.format(days=within_days))
    else:
        lines.append(msg.DUE_HEADER)
        lines += [msg.DUE_LAPSED.format(days=plural((today - a.review_by).days, "day"), name=a.name,
                                        review_by=a.review_by.isoformat()) for a in lapsed]
        lines += [msg.DUE_SOON.format(days=plural((a.review_by - today).days, "day"), name=a.name,
                                      review_by=a.review_by.isoformat()) for a in soon]
    return "\n".join(lines)


def cmd_agreements(config: Config, args: argparse.Namespace) -> int:
    policy = load_policy(config.core.policy_path)
    today = policy.today(utc_now())
    out(render(policy, today=today, within_days=args.within))
    lapsed, _ = due_for_review(policy.agreements, today=today, within_days=args.within)
    if args.check and lapsed:
        out(msg.CHECK_FAILED.format(agreements=plural(len(lapsed), "agreement")))
        return EXIT_INVALID
    return 0


def _days(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 3650:
        raise argparse.ArgumentTypeError("must be 0 to 3650 days")
    return value


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser("agreements", help="the information-sharing agreements and what is "
                       "due for review")
    s.add_argument("--check", action="store_true",
                   help="exit non-zero if any agreement is past its review-by date")
    s.add_argument("--within", type=_days, default=DUE_WITHIN_DAYS, metavar="DAYS",
                   help=f"list as due those to review within DAYS (default {DUE_WITHIN_DAYS})")
    s.set_defaults(func=cmd_agreements)
