"""``safehaven rotate-key``: after ``SAFEHAVEN_SECRET_KEY`` was replaced (the old key moved
to ``SAFEHAVEN_PREVIOUS_SECRET_KEYS``), re-seal everything the old keys sealed under the new
one, link the audit trail's keys, and verify that the old keys are no longer needed.

Safe to run while ``serve`` and ``worker`` run with the same settings, and to run again
(store/key_rotation.py). The steps and why: docs/operations.md, "Key rotation".
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from bot.app.config import Config
from bot.app.process import EXIT_INVALID, out, run_with_services
from bot.audit_keys import AuditKeys
from bot.messages import rotation as text
from bot.messages.words import plural
from handlers.notify import _sealing_context as held_notice_context
from handlers.services import Services
from store import audit
from store.key_rotation import (
    OBJECT_KINDS,
    SealedColumn,
    Tally,
    left_in_column,
    left_in_objects,
    referenced_objects,
    reseal_column,
    reseal_objects,
)
from store.models import HeldNotice, SlackInboxEntry, Transfer

#: Objects the database refers to under an earlier key beyond those the store's listing found.
REFERENCED = "referenced objects"

#: Every column holding a value sealed with the server key, and its associated data.
SEALED_COLUMNS = (
    SealedColumn("passwords", Transfer.reference, Transfer.password_sealed,
                 (Transfer.reference,), lambda row: str(row[0])),
    SealedColumn("held notices", HeldNotice.id, HeldNotice.sealed, (HeldNotice.user_id,),
                 lambda row: held_notice_context(str(row[0]))),
    # (``event_key`` holds the binding the body was sealed with: channels/slack/inbox.py)
    SealedColumn("slack inbox", SlackInboxEntry.seq, SlackInboxEntry.body,
                 (SlackInboxEntry.event_key,), lambda row: str(row[0])),
)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser("rotate-key", help=text.HELP)
    s.add_argument("--check", action="store_true", help=text.CHECK_HELP)
    s.set_defaults(func=cmd_rotate_key)


@dataclass
class Left:
    """What is still sealed under an earlier key, per kind; ``audit``: why the audit trail
    would not verify with the current key alone (None when it would)."""

    counts: dict[str, int]
    audit: str | None = None
    referenced: int = 0  # objects the database refers to
    missing: int = 0  # ... that the object store does not hold

    @property
    def total(self) -> int:
        return sum(self.counts.values()) + (1 if self.audit else 0)

    def where(self) -> str:
        found = [f"{kind}: {n}" for kind, n in self.counts.items() if n]
        if self.audit:
            found.append(f"the audit trail without the earlier keys: {self.audit}")
        return "; ".join(found)


async def left_behind(svc: Services) -> Left:
    """Values not sealed by the current key, and audit records a previous key made that no
    signed rotation checkpoint covers (so they would not verify without that key)."""
    counts = {spec.kind: await left_in_column(svc.db, svc.vault, spec)
              for spec in SEALED_COLUMNS}
    for kind, prefix in OBJECT_KINDS:
        counts[kind] = await left_in_objects(svc.objects, svc.vault, prefix)
    # From the database's side too: an object store that is not the services' (another
    # data folder) lists nothing to re-seal, but misses what the database refers to.
    referenced = await referenced_objects(svc.db, svc.objects, svc.vault)
    counts[REFERENCED] = max(0, referenced.not_current - sum(
        counts[kind] for kind, _ in OBJECT_KINDS))
    trail = audit.trail_of(svc.db)
    problem = None
    if trail is not None:
        alone = AuditKeys.from_vault(svc.vault.without_previous())
        found = await trail.checkpoints()
        async with svc.db.read() as session:
            result = await audit.verify(session, keys=alone, checkpoints=found or None)
        problem = None if result.ok else result.message()
    return Left(counts, problem, referenced.total, referenced.missing)


def _show(kind: str, tally: Tally) -> None:
    out(text.COUNT.format(kind=kind, resealed=tally.resealed, current=tally.current,
                          unopenable=tally.unopenable))


async def rotate(svc: Services) -> int:
    vault = svc.vault
    out(text.STARTING.format(key_id=vault.key_id,
                             previous=plural(len(vault.previous_ids), "previous key")))
    unopenable = 0
    for spec in SEALED_COLUMNS:
        tally = await reseal_column(svc.db, vault, spec)
        _show(spec.kind, tally)
        unopenable += tally.unopenable
    for kind, prefix in OBJECT_KINDS:
        tally = await reseal_objects(svc.objects, svc.db, vault, prefix)
        _show(kind, tally)
        unopenable += tally.unopenable
    out(text.PORTAL_LINKS)
    out(text.FINGERPRINTS)
    trail = audit.trail_of(svc.db)
    audit_ok = True
    if trail is not None:
        try:
            written = await trail.rotate(svc.db, now=svc.clock())
        except audit.AuditBroken as exc:
            out(text.AUDIT_BROKEN.format(problem=exc))
            audit_ok = False
        else:
            out(text.AUDIT_LINKED.format(
                checkpoints=plural(len(written), "rotation checkpoint"),
                anchor=trail.anchor.description, key_id=trail.keys.key_id) if written
                else text.AUDIT_ALREADY.format(key_id=trail.keys.key_id))
    if unopenable:
        out(text.UNOPENABLE.format(values=plural(unopenable, "value")))
    return await _verdict(svc, audit_ok=audit_ok and not unopenable)


async def _verdict(svc: Services, *, audit_ok: bool) -> int:
    left = await left_behind(svc)
    if left.missing:
        out(text.MISSING.format(missing=left.missing, referenced=left.referenced,
                                store=svc.settings.object_store_url))
        return EXIT_INVALID
    if left.total:
        out(text.LEFT.format(left=left.total, where=left.where()))
        return EXIT_INVALID
    if not audit_ok:
        return EXIT_INVALID
    ids = svc.vault.previous_ids
    out(text.DONE.format(ids=", ".join(ids)) if ids else text.DONE_NO_PREVIOUS)
    return 0


def cmd_rotate_key(config: Config, args: argparse.Namespace) -> int:
    async def job(svc: Services) -> int:
        if args.check:
            return await _verdict(svc, audit_ok=True)
        return await rotate(svc)

    return run_with_services(config, job)
