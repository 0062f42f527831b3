"""Cleaning up after a process that died mid-way (SIGKILL, power cut, out of memory).

A transfer moves to ``packaging`` in one transaction and to ``ready`` in another; a process
killed in between leaves it ``packaging`` for ever, with its sealed uploads in the object
store, a scratch folder on its host (``var/packaging/<reference>.*``: envelopes copied down,
a partial archive) or a complete archive in the store whose password died with the process.
Nothing had been handed out yet (that follows ``ready``), so once it is clearly dead any
process takes its hold over and packages it afresh, with a new password, from the sealed
uploads (:func:`recover_packaging`); the sender hears what a turn would have told them.

"Clearly dead": a live packager renews its hold (the transfer's ``updated_at``) every
minute (:class:`handlers.transfers.PackagingHold`); the hold has not been renewed for a grace
period plus 1 MB/s of its size, and, on this host, nothing has been written to its scratch
folder for a minute. A packager whose hold was taken over stops without changing anything.

Also: a transfer whose packaging failed keeps its files for a retry; one left like that past
the policy's draft expiry is closed and its files deleted. Sealed uploads no transfer refers
to (a process killed between sealing a file and recording it) are deleted from the store
once an hour old, and each host removes its own staged uploads, packaging scratch folders
and (local store) partial object writes left untouched for an hour.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
import weakref
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path

from bot.chunks import read_chunks
from bot.envelope import encrypt_stream
from bot.messages import transfers as msg
from bot.objects import UPLOADS, ObjectKey, archive_key
from bot.replies import Text
from bot.statuses import OPEN_TRANSFER_STATUSES, TransferStatus
from handlers import intake, transfers
from handlers.services import Services
from store import audit
from store import repositories as repo

log = logging.getLogger(__name__)

PACKAGING_GRACE = timedelta(minutes=10)  # the default of SAFEHAVEN_PACKAGING_GRACE_SECONDS
PACKAGING_WORST_BYTES_PER_SECOND = 1_000_000
QUIET_SECONDS = 60.0  # a live packager writes its partial archive far more often
ORPHAN_UPLOAD_SECONDS = 3600.0


def packaging_deadline(transfer: repo.TransferSummary,
                       grace: timedelta = PACKAGING_GRACE) -> datetime:
    """When a transfer still ``packaging`` is certainly not being packaged any more: its
    hold not renewed for ``grace`` plus an allowance for its size."""
    slowest = timedelta(seconds=transfer.total_bytes / PACKAGING_WORST_BYTES_PER_SECOND)
    return transfer.updated_at + grace + slowest


def scratch_of(svc: Services, reference: str) -> list[Path]:
    """This host's packaging scratch folders of ``reference``."""
    folder = transfers.packaging_dir(svc.settings)
    return list(folder.glob(f"{reference}.*")) if folder.is_dir() else []


def _newest_write(entry: Path) -> float | None:
    """The latest modification time of the files in folder ``entry`` (of the folder itself
    when it holds none), or of the file ``entry``; None when it is gone."""
    try:
        if not entry.is_dir():
            return entry.stat().st_mtime
        times = []
        for path in entry.rglob("*"):
            try:
                if path.is_file():
                    times.append(path.stat().st_mtime)
            except FileNotFoundError:
                continue
        return max(times) if times else entry.stat().st_mtime
    except FileNotFoundError:
        return None


def _written_recently(folders: list[Path]) -> bool:
    now = time.time()
    return any(newest is not None and now - newest < QUIET_SECONDS
               for newest in map(_newest_write, folders))


def _remove_folders(folders: list[Path]) -> None:
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


async def recover_packaging(svc: Services) -> int:
    """Finish, in this process, every packaging a dead process left half-done: take its hold
    over (:func:`store.repositories.hold_packaging`, so one process wins), clear what it
    left here, build a fresh archive with a fresh password from the sealed uploads, and tell
    the sender what a turn would have. Returns how many were taken over."""
    now = svc.clock()
    async with svc.db.read() as session:
        stuck = await repo.transfers_in(session, status=TransferStatus.PACKAGING)
    grace = timedelta(seconds=svc.settings.packaging_grace_seconds)
    count = 0
    for summary in stuck:
        if now < packaging_deadline(summary, grace):
            continue
        scratch = await asyncio.to_thread(scratch_of, svc, summary.reference)
        if await asyncio.to_thread(_written_recently, scratch):
            continue  # still being written: alive, only slow
        async with svc.db.transaction() as session:
            won = await repo.hold_packaging(session, reference=summary.reference,
                                            held_since=summary.updated_at, now=now)
            transfer = await repo.get_transfer(session, reference=summary.reference)
            files = await repo.transfer_files(session, reference=summary.reference)
            if won:
                await audit.append(session, at=now, actor="safehaven",
                                   action="packaging_resumed", reference=summary.reference,
                                   details={"packaging_since": summary.updated_at.isoformat()})
        if not won or transfer is None:
            continue  # renewed meanwhile, or another process took it over first
        await asyncio.to_thread(_remove_folders, scratch)
        log.warning("transfer %s was left half-packaged by a stopped process; packaging it "
                    "here", summary.reference)
        replies = await transfers.package_held(svc, transfer=transfer, files=files,
                                               held_since=now)
        if replies:
            await svc.notifier.notify(transfer.sender_id, replies, reference=transfer.reference)
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
    """Sealed uploads no transfer refers to, at least an hour old (a process killed between
    sealing a file and recording it), deleted from the object store; then this host's own
    leftovers (:func:`clean_host_scratch`). Returns how many objects and files went."""
    now = time.time()
    candidates: list[ObjectKey] = []
    closed_refs: set[str] = set()
    async for info in svc.objects.list(UPLOADS):
        age = intake.upload_key_age(info.key, now)
        if age is None or age >= ORPHAN_UPLOAD_SECONDS:
            candidates.append(info.key)
    orphans: list[ObjectKey] = []
    if candidates:
        async with svc.db.read() as session:
            referenced = await repo.stored_paths_in_use(session, paths=candidates)
            by_reference = {key.parts[1] for key in candidates
                            if len(key.parts) > 2 and key.parts[1] != intake.RECEIVED.parts[1]}
            open_refs = set()
            for status in OPEN_TRANSFER_STATUSES:
                open_refs |= await repo.references_in(session, references=by_reference,
                                                      status=status)
            closed_refs = by_reference - open_refs
        for key in candidates:
            if key in referenced:
                continue
            if intake.upload_key_age(key, now) is not None or key.parts[1] == "legacy" \
                    or key.parts[1] in closed_refs:
                orphans.append(key)
    for key in orphans:
        await svc.objects.delete(key)
    if orphans:
        log.warning("deleted %d sealed uploads no transfer referred to", len(orphans))
    return len(orphans) + await clean_host_scratch(svc)


def _stale_entries(folder: Path, now: float, idle: float = ORPHAN_UPLOAD_SECONDS
                   ) -> list[Path]:
    """The entries of ``folder`` with nothing in them written for ``idle`` seconds."""
    if not folder.is_dir():
        return []
    stale = []
    for entry in folder.iterdir():
        newest = _newest_write(entry)
        if newest is not None and now - newest >= idle:
            stale.append(entry)
    return stale


def _remove_entries(entries: list[Path]) -> int:
    removed = 0
    for entry in entries:
        if entry.is_dir():
            removed += sum(1 for p in entry.rglob("*") if p.is_file())
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
            removed += 1
    return removed


async def clean_host_scratch(svc: Services, *, idle: float = ORPHAN_UPLOAD_SECONDS) -> int:
    """What processes on this host left in its own folders, untouched for ``idle`` seconds
    (an hour on the scheduler's pass): staged uploads (plaintext a channel received but no
    turn sealed; those a migrated row still names, ``uploads/legacy/<folder>``, wait for
    :func:`seal_legacy_uploads`), packaging scratch folders, and the local object store's
    partial writes. Returns how many files."""
    now = time.time()
    staged = await asyncio.to_thread(_stale_entries, svc.settings.uploads_dir, now, idle)
    if staged:
        legacy = {str(UPLOADS.child("legacy").child(p.name)): p for p in staged
                  if intake.as_upload_key(f"uploads/legacy/{p.name}") is not None}
        async with svc.db.read() as session:
            waiting = await repo.stored_paths_in_use(session, paths=list(legacy))
        staged = [p for p in staged if p not in {legacy[key] for key in waiting}]
    scratch = await asyncio.to_thread(_stale_entries,
                                      transfers.packaging_dir(svc.settings), now, idle)
    removed = await asyncio.to_thread(_remove_entries, [*staged, *scratch])
    sweep: Callable[[], Awaitable[int]] | None = getattr(svc.objects, "remove_stale_partials",
                                                         None)
    if sweep is not None:
        removed += await sweep()
    return removed


STARTUP_IDLE_SECONDS = 300.0  # a live download or packaging writes far more often than this


async def clean_host_at_startup(svc: Services) -> int:
    """At ``serve`` / ``worker`` start-up: this host's temporary files a previous run left.
    Packaging scratch of a transfer that is no longer being packaged goes at once, whatever
    its age; everything else (staged uploads, partial writes, scratch of a transfer still
    ``packaging``, which recovery takes over) once untouched for five minutes, so a live
    process sharing this var dir keeps what it is writing. Returns how many files went;
    logged as a count, never with a file name."""
    folder = transfers.packaging_dir(svc.settings)
    entries = await asyncio.to_thread(lambda: list(folder.iterdir()) if folder.is_dir() else [])
    by_reference = {entry: entry.name.split(".", 1)[0] for entry in entries}
    removed = 0
    if by_reference:
        async with svc.db.read() as session:
            packaging = await repo.references_in(session, references=set(by_reference.values()),
                                                 status=TransferStatus.PACKAGING)
        finished = [entry for entry, ref in by_reference.items() if ref not in packaging]
        removed += await asyncio.to_thread(_remove_entries, finished)
    removed += await clean_host_scratch(svc, idle=STARTUP_IDLE_SECONDS)
    if removed:
        log.warning("start-up: removed %d temporary files a previous run on this host left",
                    removed)
    return removed


_LEGACY_SEALED: set[int] = set()  # id() of the Services whose legacy files were adopted


async def seal_legacy_files(svc: Services) -> int:
    """Once per process: move what this host kept from before uploads and archives lived in
    the object store (migration 0010) into the store. An upload a row names
    ``uploads/legacy/<folder>`` is sealed from ``var/uploads/<folder>/upload.bin`` under that
    key and its plaintext deleted; an archive ``var/archives/<reference>.zip`` a transfer
    still keeps is sealed at ``archive_key(reference)`` (as packaging does) and deleted
    here. Files another host has are that host's to move. Returns how many moved."""
    if id(svc) in _LEGACY_SEALED:
        return 0
    moved = 0
    legacy = UPLOADS.child("legacy")
    async with svc.db.read() as session:
        waiting = await repo.stored_keys_under(session, prefix=f"{legacy}/")
    for _reference, stored in waiting:
        key = intake.as_upload_key(stored)
        if key is None:
            continue
        staged = svc.settings.uploads_dir / key.parts[-1] / "upload.bin"
        if not await asyncio.to_thread(staged.is_file):
            continue
        if await svc.objects.head(key) is None:
            await svc.objects.put(key, encrypt_stream(read_chunks(staged), svc.vault,
                                                      context=key))
        await asyncio.to_thread(intake.discard_staged, staged)
        moved += 1
    moved += await _adopt_legacy_archives(svc)
    _LEGACY_SEALED.add(id(svc))
    weakref.finalize(svc, _LEGACY_SEALED.discard, id(svc))  # an id is reused once freed
    return moved


async def _adopt_legacy_archives(svc: Services) -> int:
    folder = svc.settings.archives_dir
    found = await asyncio.to_thread(
        lambda: {p.name.removesuffix(".zip"): p for p in folder.glob("*.zip")}
        if folder.is_dir() else {})
    if not found:
        return 0
    async with svc.db.read() as session:
        kept = await repo.archive_keys_of(session, references=list(found))
    moved = 0
    for reference in kept:
        key = archive_key(reference)
        if await svc.objects.head(key) is None:
            await svc.objects.put(key, encrypt_stream(read_chunks(found[reference]),
                                                      svc.vault, context=key))
            await asyncio.to_thread(found[reference].unlink, missing_ok=True)
            moved += 1
    return moved
