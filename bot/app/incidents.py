"""``safehaven incidents``: the mistakes reported on transfers, each with when it was found,
the deadline for deciding whether to report it to the ICO (72 hours later) and the time
left, or how long it is overdue (those stand out, and a last line counts them); a decided
one with its decision. ``--open`` lists only the open (undecided) ones. ``safehaven
incidents decide REF --ico reported|not-reported --reason TEXT --by NAME`` records the
decision and closes the incident. ``safehaven mistake REF`` reports one from the
terminal, as ``mistake REF`` does in a chat."""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta

from bot.app.config import Config
from bot.app.process import (
    EXIT_INVALID,
    console_only,
    default_user,
    out,
    run_with_services,
)
from bot.messages import incidents as msg
from bot.messages.words import plural
from bot.reference import normalise_reference
from bot.statuses import IcoDecision, IncidentStatus
from handlers import mistakes
from handlers.services import Services
from store.repositories import IncidentRecord


def time_left(now: datetime, due: datetime) -> str:
    """Hours and minutes until ``due``, or how long past it."""
    left = due - now
    hours, minutes = _duration(left)
    text = msg.TIME_LEFT if left >= timedelta(0) else msg.OVERDUE
    return text.format(hours=hours, minutes=minutes)


def _duration(span: timedelta) -> tuple[int, int]:
    minutes = int(abs(span) // timedelta(minutes=1))
    return minutes // 60, minutes % 60


def _stamp(svc: Services, at: datetime) -> str:
    return f"{at.astimezone(svc.policy.timezone):%Y-%m-%d %H:%M}"


def decision_text(incident: IncidentRecord) -> str:
    """The ICO decision as said: reported (with the ICO's reference) or not."""
    if incident.ico_decision == IcoDecision.REPORTED:
        if incident.ico_reference:
            return msg.DECISION_REPORTED_CASE.format(ico_reference=incident.ico_reference)
        return msg.DECISION_REPORTED
    return msg.DECISION_NOT_REPORTED


def decision_line(svc: Services, incident: IncidentRecord, *, indent: str = "") -> str:
    """Who decided what, when, whether late, and why."""
    late = ""
    if incident.decided_at is not None and incident.decided_late:
        hours, minutes = _duration(incident.decided_at - incident.ico_decision_due)
        late = msg.DECISION_LATE.format(hours=hours, minutes=minutes)
    return msg.DECISION_LINE.format(
        indent=indent, at=_stamp(svc, incident.decided_at) if incident.decided_at else "-",
        by=incident.decided_by or "-", decision=decision_text(incident), late=late,
        reason=incident.decision_reason or "-")


def render(svc: Services, incidents: list[IncidentRecord], *, only_open: bool) -> str:
    """The incidents as a table, times in the policy's time zone: an open one past its
    deadline stands out, a decided one has its decision on the line below."""
    if not incidents:
        return msg.NO_OPEN_INCIDENTS if only_open else msg.NO_INCIDENTS
    now = svc.clock()
    lines = [msg.INCIDENT_HEADER]
    overdue = 0
    for i in incidents:
        is_open = i.status == IncidentStatus.OPEN
        left = time_left(now, i.ico_decision_due) if is_open else "-"
        status = str(i.status)
        if is_open and now > i.ico_decision_due:
            overdue += 1
            status = msg.OVERDUE_STATUS.format(status=status)
        lines.append(msg.INCIDENT_LINE.format(
            reference=i.reference, found=_stamp(svc, i.opened_at),
            due=_stamp(svc, i.ico_decision_due), left=left, status=status))
        if i.decided_at is not None:
            lines.append(decision_line(svc, i, indent="    "))
    if overdue:
        lines += ["", msg.OVERDUE_FOOTER.format(incidents=plural(overdue, "incident"))]
    return "\n".join(lines)


def cmd_incidents(config: Config, args: argparse.Namespace) -> int:
    async def job(svc: Services) -> int:
        found = await mistakes.list_incidents(svc, only_open=args.open)
        out(render(svc, found, only_open=args.open))
        return 0
    return run_with_services(config, job)


def cmd_mistake(config: Config, args: argparse.Namespace) -> int:
    refused = console_only(config, "mistake", "--sender", args.sender)
    if refused is not None:
        return refused

    async def job(svc: Services) -> int:
        reference = normalise_reference(args.reference)
        for reply in await mistakes.report_mistake(svc, reference=reference,
                                                   user_id=args.sender):
            out(getattr(reply, "text", ""))
        reported = await mistakes.incident_of(svc, reference=reference)
        return 0 if reported is not None else EXIT_INVALID
    return run_with_services(config, job)


def cmd_decide(config: Config, args: argparse.Namespace) -> int:
    decision = IcoDecision(args.ico)
    problem = mistakes.decision_problem(decision=decision, ico_reference=args.ico_reference,
                                        reason=args.reason, decided_by=args.by)
    if problem is not None:
        out(problem)
        return EXIT_INVALID

    async def job(svc: Services) -> int:
        reference = normalise_reference(args.reference)
        done = await mistakes.decide_incident(
            svc, reference=reference, decision=decision, ico_reference=args.ico_reference,
            reason=args.reason, decided_by=args.by)
        incident = done.incident
        if done.outcome == mistakes.Decided.NO_INCIDENT or incident is None:
            out(msg.DECIDE_NO_INCIDENT.format(reference=reference))
            return EXIT_INVALID
        at = _stamp(svc, incident.decided_at) if incident.decided_at else "-"
        if done.outcome == mistakes.Decided.ALREADY_DECIDED:
            out(msg.DECIDE_ALREADY.format(reference=reference, by=incident.decided_by or "-",
                                          at=at, decision=decision_text(incident)))
            return EXIT_INVALID
        out(msg.DECIDED.format(reference=reference, decision=decision_text(incident),
                               by=incident.decided_by, at=at))
        if incident.decided_at is not None and incident.decided_late:
            hours, minutes = _duration(incident.decided_at - incident.ico_decision_due)
            out(msg.DECIDED_LATE.format(due=_stamp(svc, incident.ico_decision_due),
                                        hours=hours, minutes=minutes))
        return 0
    return run_with_services(config, job)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser("incidents", help="reported mistakes and their ICO decision deadlines")
    s.add_argument("--open", action="store_true", help="only the incidents still open")
    s.set_defaults(func=cmd_incidents)
    actions = s.add_subparsers(dest="incidents_action", required=False, metavar="decide")
    d = actions.add_parser(
        "decide", help="record whether an incident was reported to the ICO, and close it")
    d.add_argument("reference", help="the transfer's reference (SH-XXXX-XX)")
    d.add_argument("--ico", required=True, choices=[str(c) for c in IcoDecision],
                   help="reported: reported to the ICO; not-reported: decided not to")
    d.add_argument("--ico-reference", default=None, metavar="CASE",
                   help="the ICO's case reference (only with --ico reported)")
    d.add_argument("--reason", required=True, metavar="TEXT",
                   help="why it was, or was not, reported")
    d.add_argument("--by", required=True, metavar="NAME",
                   help="who made the decision (name or user id)")
    d.set_defaults(func=cmd_decide)

    s = sub.add_parser("mistake", help="report a transfer that went wrong: withdraw what can "
                       "be, tell governance, open an incident")
    s.add_argument("reference", help="the transfer's reference, e.g. SH-7K3Q-9F")
    s.add_argument("--sender", default=default_user(),
                   help="who reports it: the sender or an approver (console:NAME)")
    s.set_defaults(func=cmd_mistake)
