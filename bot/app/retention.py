"""``safehaven retention``: what the policy keeps and for how long, per artefact, with how
many are due now and when the next falls due (``--json`` for scripts); ``--apply`` first
deletes what is due, exactly as a scheduler pass does, audited the same way."""

from __future__ import annotations

import argparse
import json

from bot.app.config import Config
from bot.app.process import out, run_with_services
from bot.messages import retention as msg
from bot.retention import Artefact, ArtefactRetention
from handlers import housekeeping
from handlers.retention_view import retention_view
from handlers.services import Services


def _line(item: ArtefactRetention) -> str:
    return msg.LINE.format(
        artefact=item.artefact.value, period=item.period, goes=item.goes,
        due=item.due_now,
        next_due=item.next_due.isoformat(timespec="seconds") if item.next_due
        else msg.NONE_WAITING)


def render(svc: Services, view: list[ArtefactRetention],
           deleted: dict[Artefact, int] | None) -> str:
    """The view as text for a person."""
    lines = [msg.HEADER.format(source=svc.policy.source,
                               now=svc.clock().isoformat(timespec="seconds"))]
    lines += [_line(item) for item in view]
    if deleted is not None:
        went = ", ".join(f"{count} {artefact.value}" for artefact, count in deleted.items()
                         if count)
        lines.append(msg.DELETED.format(counts=went) if went else msg.DELETED_NOTHING)
    return "\n".join(lines)


def render_json(svc: Services, view: list[ArtefactRetention],
                deleted: dict[Artefact, int] | None) -> str:
    """The view as one JSON document."""
    document: dict[str, object] = {
        "policy": svc.policy.source, "as_of": svc.clock().isoformat(),
        "artefacts": [item.as_json() for item in view]}
    if deleted is not None:
        document["deleted"] = {artefact.value: count for artefact, count in deleted.items()}
    return json.dumps(document, indent=2)


async def show(svc: Services, *, apply: bool, as_json: bool) -> str:
    """Delete what is due (``apply``), then describe what is kept."""
    deleted = await housekeeping.apply_retention(svc) if apply else None
    view = await retention_view(svc)
    return (render_json if as_json else render)(svc, view, deleted)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser("retention", help="what is kept, for how long, and what goes when")
    s.add_argument("--json", action="store_true", help="one JSON document (for scripts)")
    s.add_argument("--apply", action="store_true",
                   help="delete what is due now first (as the scheduler does), audited")
    s.set_defaults(func=cmd_retention)


def cmd_retention(config: Config, args: argparse.Namespace) -> int:
    async def job(svc: Services) -> int:
        out(await show(svc, apply=args.apply, as_json=args.json))
        return 0

    return run_with_services(config, job)
