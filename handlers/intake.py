"""Where channels put incoming files, where they are judged, and where they go once accepted,
before the engine sees them.

A channel stages each upload on the host that received it, in its own random folder under
``var/uploads`` with a fixed file name, so a sender's file name (which may identify a
person, or try ``../``) is never part of a path. The folders are 0700 and the file is
created 0600 before any channel writes to it. That plaintext lives only for the turn: a
file that passes its check is sealed (:func:`bot.envelope.encrypt_stream`) into the shared
object store under a random key of its own (:func:`new_upload_key`), which the
conversation and the transfer keep, and the staged file is deleted either way
(:func:`seal_accepted`). Every replica can then package it.

Judging a file (:func:`bot.filecheck.inspect_file`) is pure-Python parsing: a big ZIP
directory holds the CPU for a while. A thread would still hold the GIL and starve the event
loop (see bench/filecheck.py), so :class:`FileInspector` runs it in worker processes, with a
deadline (the worker is killed and the file refused) and a memory limit per worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import multiprocessing
import os
import secrets
import shutil
import time
from collections.abc import Collection, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.context import BaseContext
from pathlib import Path

from bot import filecheck
from bot.chunks import read_chunks
from bot.envelope import encrypt_stream
from bot.events import IncomingFile
from bot.filecheck import FileVerdict
from bot.objects import UPLOADS, ObjectKey, ObjectKeyError, ObjectStore
from bot.policy_rules import Policy
from bot.private import DIR_MODE, open_private, private_dir, touch_private
from bot.settings import Settings
from bot.vault import Vault

log = logging.getLogger(__name__)
CHUNK = 1024 * 1024
MB = 1024 * 1024
CHECK_SECONDS = 30.0
CHECK_MEMORY_BYTES = 1024 * MB
#: The folder of uploads sealed before their transfer's reference is known.
RECEIVED = UPLOADS.child("received")


def new_upload_key(now: float | None = None) -> ObjectKey:
    """A fresh key for a sealed upload: ``uploads/received/<unix seconds>-<random>``. The
    time it was made is part of it, so the orphan sweep can tell its age from a listing."""
    stamp = int(time.time() if now is None else now)
    return RECEIVED.child(f"{stamp}-{secrets.token_hex(16)}")


def upload_key_age(key: str, now: float) -> float | None:
    """Seconds since :func:`new_upload_key` made ``key``; None for any other key."""
    folder, _, name = key.rpartition("/")
    stamp, dash, _rest = name.partition("-")
    if folder != RECEIVED or not dash or not stamp.isdigit():
        return None
    return now - int(stamp)


def as_upload_key(stored: str) -> ObjectKey | None:
    """``stored`` (a file entry's or a transfer file's upload) as a key under ``uploads/``;
    None when it is something else (a host path from before uploads were sealed)."""
    try:
        key = ObjectKey(stored)
    except ObjectKeyError:
        return None
    return key if key.parts[0] == UPLOADS else None


def discard_staged(path: Path) -> None:
    """Delete a staged plaintext upload and its folder (blocking; gone already is fine)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    with contextlib.suppress(OSError):
        path.parent.rmdir()


async def seal_upload(objects: ObjectStore, vault: Vault, path: Path) -> ObjectKey:
    """Encrypt the staged file at ``path`` into ``objects`` under a new upload key (the key
    is the envelope's context) and return the key. The staged plaintext is deleted whether
    or not that worked."""
    key = new_upload_key()
    try:
        await objects.put(key, encrypt_stream(read_chunks(path), vault, context=key))
    finally:
        await asyncio.shield(asyncio.to_thread(discard_staged, path))
    return key


async def seal_accepted(objects: ObjectStore, vault: Vault, files: Iterable[IncomingFile],
                        verdicts: Mapping[str, FileVerdict]
                        ) -> tuple[tuple[IncomingFile, ...], dict[str, FileVerdict]]:
    """Seal every staged file its check accepted into ``objects`` and delete every staged
    file. Returns the files for the engine, an accepted one with its object ``key`` (what
    the conversation keeps), and the verdicts by :attr:`IncomingFile.location`; a refused
    file keeps its (deleted) path and its verdict, and is refused as before."""
    sealed: list[IncomingFile] = []
    by_key: dict[str, FileVerdict] = {}
    staged = list(files)
    try:
        for incoming in staged:
            verdict = verdicts.get(str(incoming.path))
            if verdict is None or not verdict.accepted:
                sealed.append(incoming)
                if verdict is not None:
                    by_key[str(incoming.path)] = verdict  # refused, with its reason
                continue
            key = await seal_upload(objects, vault, incoming.path)
            sealed.append(IncomingFile(name=incoming.name, path=incoming.path,
                                       size=incoming.size, key=key))
            by_key[key] = verdict
    finally:
        for incoming in staged:
            if incoming.key is None:  # a staged copy (sealed or refused): this host's to delete
                await asyncio.shield(asyncio.to_thread(discard_staged, incoming.path))
    return tuple(sealed), by_key


def new_upload_path(settings: Settings) -> Path:
    folder = private_dir(settings.uploads_dir) / secrets.token_hex(16)
    folder.mkdir(mode=DIR_MODE)
    return touch_private(folder / "upload.bin")


def stage_local_file(settings: Settings, source: Path, *, name: str | None = None
                     ) -> IncomingFile:
    """Copy a local file into the uploads area by streaming (blocking; use a thread)."""
    target = new_upload_path(settings)
    with source.open("rb") as src, open_private(target, "wb") as dst:
        shutil.copyfileobj(src, dst, CHUNK)
    return IncomingFile(name=name or source.name, path=target, size=target.stat().st_size)


def _limit_memory(limit: int) -> None:
    """Worker start-up: cap the address space, so a file cannot make a check use more."""
    try:
        import resource
    except ImportError:  # not on Windows: the deadline still bounds the check
        return
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


class FileInspector:
    """Judges files in up to ``workers`` worker processes, off the event loop.

    A check that takes longer than ``seconds`` (counted from when a worker is free for it)
    is given up: the file is refused ("could not be checked in time") and the pool's
    workers are killed, so a stuck check stops using the CPU; checks that were running
    beside it are retried on a fresh pool. Each worker's address space is capped at
    ``memory_bytes``; a check that fails (out of memory, a crashed worker) refuses the file.
    Workers start on first use; :meth:`close` (the app's and the CLI's cleanup) stops them.
    """

    def __init__(self, *, workers: int | None = None, seconds: float = CHECK_SECONDS,
                 memory_bytes: int = CHECK_MEMORY_BYTES) -> None:
        self.workers = workers or min(2, os.cpu_count() or 1)
        self.seconds = seconds
        self.memory_bytes = memory_bytes
        self._pool: ProcessPoolExecutor | None = None
        self._free: asyncio.Semaphore | None = None

    def _current_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # forkserver: workers are forked from a small clean process, not from this one
            # (with its threads, sockets and database connections). Either way a worker
            # imports the main module, as multiprocessing does (it must guard its start).
            if "forkserver" in multiprocessing.get_all_start_methods():
                context: BaseContext = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(["bot.filecheck"])
            else:  # Windows
                context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(self.workers, mp_context=context,
                                             initializer=_limit_memory,
                                             initargs=(self.memory_bytes,))
        return self._pool

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        """Kill ``pool``'s workers (a stuck check) and let the next check start a new one."""
        if self._pool is pool:
            self._pool = None
        workers = getattr(pool, "_processes", None) or {}  # no public way in Python 3.11
        for process in list(workers.values()):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                process.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    async def inspect(self, path: Path, *, display_name: str, blocked: Collection[str],
                      max_bytes: int | None = None) -> FileVerdict:
        """:func:`bot.filecheck.inspect_file` in a worker process; never raises for the
        file's sake."""
        if self._free is None:
            self._free = asyncio.Semaphore(self.workers)
        job = functools.partial(filecheck.inspect_file, path, display_name=display_name,
                                blocked=tuple(blocked), max_bytes=max_bytes)
        async with self._free:
            for _attempt in range(2):
                pool = self._current_pool()
                try:
                    # Submitting may start a worker (the first time, the forkserver too):
                    # done in a thread, so that wait is not the event loop's either.
                    submitted = await asyncio.to_thread(pool.submit, job)
                    return await asyncio.wait_for(asyncio.wrap_future(submitted),
                                                  self.seconds)
                except TimeoutError:
                    log.warning("a file check ran out of time (%.0f s); file refused",
                                self.seconds)
                    self._discard(pool)
                    return filecheck.unchecked(display_name, timed_out=True)
                except (BrokenProcessPool, RuntimeError) as error:
                    if self._pool is not pool:
                        continue  # another check's deadline killed the pool: try again
                    if not isinstance(error, BrokenProcessPool):
                        log.exception("a file check failed; file refused")
                        break
                    log.warning("a file check's worker stopped; file refused")
                    self._discard(pool)
                    break
                except Exception:  # MemoryError in the worker, or a bug: refuse the file
                    log.exception("a file check failed; file refused")
                    break
        return filecheck.unchecked(display_name, timed_out=False)

    async def close(self) -> None:
        """Stop the workers (waiting, off the event loop, for them to exit)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, True, cancel_futures=True)


async def check_files(inspector: FileInspector, policy: Policy,
                      files: Iterable[IncomingFile]) -> dict[str, FileVerdict]:
    """Judge every file the engine may accept (not those over the size limit, which it
    refuses unread), concurrently; verdicts by upload path, for :class:`bot.state.TurnContext`.
    """
    wanted = [f for f in files if f.size <= policy.max_file_bytes]
    verdicts = await asyncio.gather(*(
        inspector.inspect(f.path, display_name=f.name, blocked=policy.blocked_kinds,
                          max_bytes=policy.max_file_bytes) for f in wanted))
    return {str(f.path): verdict for f, verdict in zip(wanted, verdicts, strict=True)}
