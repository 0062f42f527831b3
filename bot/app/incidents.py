"""``safehaven incidents``: the mistakes reported on transfers, each with when it was found,
the deadline for deciding whether to report it to the ICO (72 hours later) and the time
left, or how long it is overdue; ``--open`` lists only the open ones. ``safehaven mistake
REF`` reports one from the terminal, as ``mistake REF`` does in a chat."""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta

from bot.app.config import Config
from bot.app.process import EXIT_INVALID, default_user, out, run_with_services
from bot.messages import incidents as msg
from bot.reference import normalise_reference
from bot.statuses import IncidentStatus
from handlers import mistakes
from handlers.services import Services
from store.repositories import IncidentRecord


def time_left(now: datetime, due: datetime) -> str:
    """Hours and minutes until ``due``, or how long past it."""
    left = due - now
    minutes = int(abs(left) // timedelta(minutes=1))
    text = msg.TIME_LEFT if left >= timedelta(0) else msg.OVERDUE
    return text.format(hours=minutes // 60, minutes=minutes % 60)


def render(svc: Services, incidents: list[IncidentRecord], *, only_open: bool) -> str:
    """The incidents as a table, times in the policy's time zone."""
    if not incidents:
        return msg.NO_OPEN_INCIDENTS if only_open else msg.NO_INCIDENTS
    now = svc.clock()
    zone = svc.policy.timezone
    lines = [msg.INCIDENT_HEADER]
    for i in incidents:
        left = time_left(now, i.ico_decision_due) if i.status == IncidentStatus.OPEN else "-"
        lines.append(msg.INCIDENT_LINE.format(
            reference=i.reference, found=f"{i.opened_at.astimezone(zone):%Y-%m-%d %H:%M}",
            due=f"{i.ico_decision_due.astimezone(zone):%Y-%m-%d %H:%M}", left=left,
            status=i.status))
    return "\n".join(lines)


def cmd_incidents(config: Config, args: argparse.Namespace) -> int:
    async def job(svc: Services) -> int:
        found = await mistakes.list_incidents(svc, only_open=args.open)
        out(render(svc, found, only_open=args.open))
        return 0
    return run_with_services(config, job)


def cmd_mistake(config: Config, args: argparse.Namespace) -> int:
    async def job(svc: Services) -> int:
        reference = normalise_reference(args.reference)
        for reply in await mistakes.report_mistake(svc, reference=reference,
                                                   user_id=args.sender):
            out(getattr(reply, "text", ""))
        reported = await mistakes.incident_of(svc, reference=reference)
        return 0 if reported is not None else EXIT_INVALID
    return run_with_services(config, job)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser("incidents", help="reported mistakes and their ICO decision deadlines")
    s.add_argument("--open", action="store_true", help="only the incidents still open")
    s.set_defaults(func=cmd_incidents)

    s = sub.add_parser("mistake", help="report a transfer that went wrong: withdraw what can "
                       "be, tell governance, open an incident")
    s.add_argument("reference")
    s.add_argument("--sender", default=default_user(),
                   help="who reports it: the sender or an approver (console:NAME)")
    s.set_defaults(func=cmd_mistake)
