"""Where channels put incoming files, and where they are judged, before the engine sees them.

Each upload gets its own random folder under ``var/uploads`` and a fixed file name, so a
sender's file name (which may identify a person, or try ``../``) is never part of a path.
The folders are 0700 and the file is created 0600 before any channel writes to it.

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
from collections.abc import Collection, Iterable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.context import BaseContext
from pathlib import Path

from bot import filecheck
from bot.events import IncomingFile
from bot.filecheck import FileVerdict
from bot.policy_rules import Policy
from bot.private import DIR_MODE, open_private, private_dir, touch_private
from bot.settings import Settings

log = logging.getLogger(__name__)
CHUNK = 1024 * 1024
MB = 1024 * 1024
CHECK_SECONDS = 30.0
CHECK_MEMORY_BYTES = 1024 * MB


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
