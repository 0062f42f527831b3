"""Cleaning up after a process that died mid-way (SIGKILL, power cut, out of memory).

A transfer moves to ``packaging`` in one transaction and to ``ready`` in another; a process
killed in between leaves it ``packaging`` for ever, with its plaintext uploads, a partial
archive (``.<reference>.*.partial``) or a complete archive whose password died with the
process. Nothing can resume it safely, so once it is clearly dead it is failed cleanly:
plaintext and archive deleted, the sender told, an audit record written.

"Clearly dead": the transfer has been ``packaging`` for longer than the slowest packaging
could take (a grace period plus 1 MB/s of its size; real packaging runs at 85-500 MB/s, see
docs/benchmarks.md) and nothing has been written to its partial archive for a minute.

Also: a transfer whose packaging failed keeps its files for a retry; one left like that past
the policy's draft expiry is closed and its files deleted. And plaintext uploads that no
transfer refers to (a process killed between staging a file and recording it), and partial
archives of transfers no longer packaging, are deleted once untouched for an hour.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from pathlib import Path

from bot.messages import transfers as msg
from bot.replies import Text
from bot.statuses import TransferStatus
from handlers import transfers
from handlers.services import Services
from store import audit
from store import repositories as repo

log = logging.getLogger(__name__)

PACKAGING_GRACE = timedelta(minutes=10)
PACKAGING_WORST_BYTES_PER_SECOND = 1_000_000
QUIET_SECONDS = 60.0  # a live packager writes its partial archive far more often
ORPHAN_UPLOAD_SECONDS = 3600.0


def packaging_deadline(transfer: repo.TransferSummary) -> datetime:
    """When a transfer still ``packaging`` is certainly not being packaged any more."""
    slowest = timedelta(seconds=transfer.total_bytes / PACKAGING_WORST_BYTES_PER_SECOND)
    return transfer.updated_at + PACKAGING_GRACE + slowest


def archive_leftovers(svc: Services, reference: str) -> list[Path]:
    """Partial archives of ``reference`` and a complete one whose password is lost."""
    folder = svc.settings.archives_dir
    found = list(folder.glob(f".{reference}.*.partial")) if folder.is_dir() else []
    final = folder / f"{reference}.zip"
    return [*found, final] if final.exists() else found


def _written_recently(paths: list[Path]) -> bool:
    now = time.time()
    for path in paths:
        try:
            if now - path.stat().st_mtime < QUIET_SECONDS:
                return True
        except FileNotFoundError:
            continue
    return False


async def recover_packaging(svc: Services) -> int:
    """Fail cleanly every transfer a dead process left half-packaged; returns how many."""
    now = svc.clock()
    async with svc.db.read() as session:
        stuck = await repo.transfers_in(session, status=TransferStatus.PACKAGING)
    count = 0
    for transfer in stuck:
        if now < packaging_deadline(transfer):
            continue
        leftovers = archive_leftovers(svc, transfer.reference)
        if _written_recently(leftovers):
            continue  # still being written: alive, only slow
        async with svc.db.transaction() as session:
            won = await repo.set_status(session, reference=transfer.reference,
                                        status=TransferStatus.PACKAGE_FAILED, now=now,
                                        only_from=[TransferStatus.PACKAGING],
                                        password_sealed=None)
            files = await repo.transfer_files(session, reference=transfer.reference)
            paths = [f.stored_path or "" for f in files]
            if won:
                await repo.forget_stored_paths(session, reference=transfer.reference)
                await audit.append(session, at=now, actor="safehaven",
                                   action="packaging_interrupted",
                                   reference=transfer.reference, details={
                                       "plaintext_deleted": True,
                                       "archive_deleted": bool(leftovers),
                                       "packaging_since": transfer.updated_at.isoformat()})
        if not won:
            continue
        # If this process dies here too, delete_orphan_uploads finds what is left.
        transfers.delete_plaintext(paths)
        for path in leftovers:
            path.unlink(missing_ok=True)
        log.warning("transfer %s was left half-packaged by a stopped process; failed it",
                    transfer.reference)
        await svc.notifier.notify(transfer.sender_id, [Text(msg.PACKAGING_INTERRUPTED.format(
            reference=transfer.reference))], reference=transfer.reference)
        count += 1
    return count


async def close_failed_packaging(svc: Services) -> int:
    """Transfers whose packaging failed and that nobody retried or cancelled within the
    draft expiry: close them (``expired``) and delete their files."""
    hours = svc.policy.draft_expiry_hours
    cutoff = svc.clock() - timedelta(hours=hours)
    async with svc.db.read() as session:
        stale = await repo.transfers_in(session, status=TransferStatus.PACKAGE_FAILED,
                                        updated_before=cutoff)
    count = 0
    for transfer in stale:
        async with svc.db.read() as session:
            files = await repo.transfer_files(session, reference=transfer.reference)
        if not any(f.stored_path for f in files):
            continue  # nothing left to delete (e.g. interrupted packaging, already clean)
        if not await transfers.cancel(svc, reference=transfer.reference, by="safehaven",
                                      reason="packaging failed and was not retried",
                                      status=TransferStatus.EXPIRED):
            continue
        await svc.notifier.notify(transfer.sender_id, [Text(msg.PACKAGING_FAILED_CLOSED.format(
            reference=transfer.reference, hours=hours))], reference=transfer.reference)
        count += 1
    return count


async def delete_orphan_uploads(svc: Services) -> int:
    """Plaintext uploads no transfer refers to, untouched for an hour (a process killed
    between staging a file and recording it): deleted. Returns how many files."""
    root = svc.settings.uploads_dir
    if not root.is_dir():
        return 0
    now = time.time()
    candidates: list[Path] = []
    for folder in root.iterdir():
        files = [p for p in folder.iterdir()] if folder.is_dir() else [folder]
        try:
            newest = max((p.stat().st_mtime for p in files), default=folder.stat().st_mtime)
        except FileNotFoundError:
            continue
        if now - newest >= ORPHAN_UPLOAD_SECONDS:
            candidates += files if files else [folder]
    if not candidates:
        return 0
    async with svc.db.read() as session:
        referenced = await repo.stored_paths_in_use(session, paths=[str(p) for p in candidates])
    orphans = [str(p) for p in candidates if str(p) not in referenced and p.is_file()]
    transfers.delete_plaintext(orphans)
    for folder in {p.parent for p in candidates if p.parent != root} | {
            p for p in candidates if p.is_dir()}:
        try:
            folder.rmdir()
        except OSError:
            pass
    if orphans:
        log.warning("deleted %d plaintext uploads no transfer referred to", len(orphans))
    return len(orphans) + await _delete_orphan_partials(svc, now)


async def _delete_orphan_partials(svc: Services, now: float) -> int:
    """Partial archives untouched for an hour whose transfer is not being packaged."""
    folder = svc.settings.archives_dir
    old = [p for p in folder.glob(".*.partial") if now - p.stat().st_mtime >= ORPHAN_UPLOAD_SECONDS
           ] if folder.is_dir() else []
    if not old:
        return 0
    refs = {p.name.split(".")[1] for p in old}
    async with svc.db.read() as session:
        packaging = await repo.references_in(session, references=refs,
                                             status=TransferStatus.PACKAGING)
    gone = [p for p in old if p.name.split(".")[1] not in packaging]
    for path in gone:
        path.unlink(missing_ok=True)
    return len(gone)
