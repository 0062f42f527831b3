"""Background work after the acknowledgement, tracked so shutdown can wait for it.

Slack wants an answer within 3 seconds; downloading, packaging and posting take longer, so
every listener acknowledges first and hands the rest to :class:`TaskTracker`. Unlike a bare
``asyncio.ensure_future``, the tracker keeps a reference to each task (so none is garbage
collected mid-way), logs failures, and lets the application's cleanup wait for the work in
hand before the database closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class TaskTracker:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("background task %s failed", task.get_name(),
                      exc_info=(type(error), error, error.__traceback__))

    async def join(self) -> None:
        """Wait until no task is running, including tasks spawned by running tasks."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def drain(self, seconds: float) -> None:
        """Shutdown: wait up to ``seconds`` for the work in hand, then cancel the rest."""
        try:
            await asyncio.wait_for(self.join(), seconds)
        except TimeoutError:
            pending = list(self._tasks)
            log.warning("cancelling %d Slack task(s) still running at shutdown", len(pending))
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


class KeyedLocks:
    """One lock per key (a user), dropped when nobody holds or waits for it, so one person's
    messages are handled in the order they arrived while different people run in parallel."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
