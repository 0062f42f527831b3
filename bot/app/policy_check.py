"""``safehaven policy check FILE``: read a policy file with the loader ``serve`` uses
(:func:`bot.policy.load_policy`) and print every error with its key, or, when it is valid,
what it will do for each classification: when approval is needed, how files and passwords
travel, how long links live, size limits, the agreements that cover it and their review
dates, and the information categories that are special.

It reads the file alone (no settings, database or channel), so it can run on a laptop or in
CI before a policy is deployed. Exit 0 when the policy is valid, 1 when it is not.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from bot.app.agreements import DUE_WITHIN_DAYS
from bot.app.process import EXIT_INVALID, out
from bot.messages import policy_check as msg
from bot.policy import MB, PolicyError, load_policy
from bot.policy_rules import Level, Policy
from handlers.services import utc_now

WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def render_errors(source: str, errors: Sequence[PolicyError]) -> str:
    count = msg.ERROR_COUNT.get(len(errors)) or msg.ERRORS_MANY.format(count=len(errors))
    lines = [msg.ERRORS_HEADER.format(source=source, count=count)]
    lines += [msg.ERROR_LINE.format(number=i, error=error)
              for i, error in enumerate(errors, start=1)]
    lines.append(msg.ERRORS_FOOTER.format(source=source))
    return "\n".join(lines)


def _protection(level: Level) -> str:
    if level.encryption_required:
        return (msg.PROTECTION_ENCRYPTED if level.recipient_checks
                else msg.PROTECTION_ENCRYPTED_NO_CHECKS)
    return msg.PROTECTION_CHECKS_ONLY if level.recipient_checks else msg.PROTECTION_NONE


def _approvers(policy: Policy) -> str:
    if not policy.approvers:
        return msg.APPROVERS_NONE
    listed = "; ".join(f"{sender} -> {', '.join(ids)}"
                       for sender, ids in policy.approvers.items())
    return msg.APPROVERS.format(approvers=listed)


def _special_labels(policy: Policy) -> str:
    return ", ".join(c.label for c in policy.information_categories if c.special)


def _approval(policy: Policy, level: Level) -> str:
    text = {"always": msg.APPROVAL_ALWAYS, "never": msg.APPROVAL_NEVER,
            "without-agreement": msg.APPROVAL_WITHOUT_AGREEMENT}[level.approval]
    if level.special_category_approval and level.approval != "always":
        labels = _special_labels(policy)
        text += (msg.APPROVAL_SPECIAL.format(labels=labels) if labels
                 else msg.APPROVAL_SPECIAL_NONE_LISTED)
    if level.approval != "never" or level.special_category_approval:
        text += _approvers(policy)
    return text


def _agreements(policy: Policy, level: Level, today: date) -> str:
    covering = [a for a in policy.agreements if level.name in a.classifications]
    if not covering:
        return msg.AGREEMENTS_NONE
    entries = []
    for agreement in covering:
        state = ""
        if agreement.lapsed(today):
            state = msg.AGREEMENT_LAPSED
        elif (agreement.review_by - today).days <= DUE_WITHIN_DAYS:
            state = msg.AGREEMENT_DUE.format(days=DUE_WITHIN_DAYS)
        entries.append(msg.AGREEMENT.format(
            name=agreement.name, domains=", ".join(agreement.domains),
            review_by=agreement.review_by.isoformat(), state=state))
    return "; ".join(entries)


def _special(policy: Policy, level: Level) -> str:
    if not policy.information_categories:
        return msg.SPECIAL_NONE
    labels = _special_labels(policy)
    if labels and level.approval == "always":
        return msg.SPECIAL_ALWAYS.format(labels=labels)
    if level.special_category_approval and labels:
        return msg.SPECIAL_APPROVED.format(labels=labels)
    return msg.SPECIAL_NOT_APPROVED


def _level_lines(policy: Policy, level: Level, today: date) -> list[str]:
    downloads = (msg.DOWNLOADS.get(level.download_limit)
                 or msg.DOWNLOADS_MANY.format(count=level.download_limit))
    fields = [
        (msg.LABEL_PROTECTION, _protection(level)),
        (msg.LABEL_APPROVAL, _approval(policy, level)),
        (msg.LABEL_DELIVERY, msg.DELIVERY.format(
            methods=", ".join(msg.DELIVERY_METHOD[m.value] for m in level.delivery_methods),
            default=level.default_delivery.value)),
        (msg.LABEL_PASSWORD, ", ".join(msg.PASSWORD_METHOD[m.value]
                                       for m in level.password_methods)),
        (msg.LABEL_LINKS, msg.LINKS.format(hours=level.link_expiry_hours,
                                           downloads=downloads)),
        (msg.LABEL_SIZES, msg.SIZES.format(total=level.max_total_bytes // MB,
                                           file=policy.max_file_bytes // MB,
                                           files=policy.max_files,
                                           email=level.email_limit_bytes // MB)),
        (msg.LABEL_AGREEMENTS, _agreements(policy, level, today)),
        (msg.LABEL_SPECIAL, _special(policy, level)),
    ]
    return [msg.LEVEL_HEADER.format(name=level.name, description=level.description)] + [
        msg.FIELD.format(label=label, value=value) for label, value in fields]


def render_summary(policy: Policy, *, today: date) -> str:
    """What a valid policy will do, per classification, as text for a person."""
    window, rules = policy.call_window, policy.delivery
    lines = [msg.OK_HEADER.format(source=policy.source, organisation=policy.organisation,
                                  timezone=policy.timezone.key, today=today.isoformat()),
             msg.LEVELS_HEADER]
    for level in policy.levels:
        lines += _level_lines(policy, level, today)
    heads_up = (msg.HEADS_UP.format(minutes=rules.heads_up_minutes) if rules.heads_up_minutes
                else msg.HEADS_UP_NONE)
    lines.append(msg.CALL_WINDOW.format(
        start=window.start.strftime("%H:%M"), end=window.end.strftime("%H:%M"),
        days=", ".join(WEEKDAY_NAMES[d] for d in window.days), timezone=policy.timezone.key,
        lead=window.min_lead_minutes, ahead=window.max_days_ahead,
        attempts=rules.max_attempts, heads_up=heads_up))
    lines.append(msg.APPROVAL_EXPIRY.format(hours=policy.approval_expiry_hours))
    return "\n".join(lines)


def check(path: Path) -> tuple[int, str]:
    """The exit code and the report for the policy file at ``path``."""
    try:
        policy = load_policy(path)
    except PolicyError as exc:
        return EXIT_INVALID, render_errors(str(path), exc.errors)
    return 0, render_summary(policy, today=policy.today(utc_now()))


def cmd_policy_check(args: argparse.Namespace) -> int:
    code, report = check(Path(args.file))
    out(report)
    return code


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("policy", help="check a policy file before deploying it",
                       description="Work with policy files (see docs/policy.md).")
    psub = p.add_subparsers(dest="policy_command", required=True)
    s = psub.add_parser(
        "check", help="list every error in a policy file, or what it will do",
        description="Read FILE as 'safehaven serve' would. Print every error with its key "
        "(exit 1), or what the policy will do for each classification (exit 0). Needs no "
        "settings, database or network.")
    s.add_argument("file", help="the policy file (TOML), e.g. bot/policies/default.toml")
    s.set_defaults(standalone=cmd_policy_check)
