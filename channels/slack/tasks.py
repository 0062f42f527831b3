"""Background work after the acknowledgement, tracked so shutdown can wait for it.

Slack wants an answer within 3 seconds; downloading, packaging and posting take longer, so
every listener acknowledges first and hands the rest to :class:`TaskTracker`, most of it
through :class:`JobQueue` (in order, a few jobs at once, fewer while acknowledgements are
short of CPU). Unlike a bare ``asyncio.ensure_future``, the tracker keeps a reference to
each task (so none is garbage collected mid-way), logs failures, and lets the
application's cleanup wait for the work in hand before the database closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
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
            # asyncio.wait, not gather: cancelling the wait (a drain's timeout) must leave
            # the tasks to :meth:`drain`, which stops new work from starting first.
            await asyncio.wait(list(self._tasks))

    async def drain(self, seconds: float, *,
                    before_cancel: Callable[[], None] | None = None) -> None:
        """Shutdown: wait up to ``seconds`` for the work in hand, then cancel the rest
        (after ``before_cancel``, which should stop anything from starting more)."""
        try:
            await asyncio.wait_for(self.join(), seconds)
        except TimeoutError:
            if before_cancel is not None:
                before_cancel()
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


@dataclass(eq=False, slots=True)
class _Job:
    work: Coroutine[Any, Any, None]
    name: str
    key: str | None
    user: str
    channel: str | None


Guard = Callable[..., Coroutine[Any, Any, None]]  # guard(work, user=..., channel=...)


class JobQueue:
    """Background work after the acknowledgements: run in the order it came, at most
    :attr:`width` jobs at once, and one at a time per key (a person), with the width
    following the acknowledgements so that they come first when the CPU runs short.

    Why the width moves: acknowledgements have a hard deadline (Slack gives up after 3 s,
    retries the event and, if that keeps happening, turns the app's events off); the work
    after them has none, only a person waiting for a reply. Both share one event loop, which
    runs ready callbacks in turn, so every job running takes its share of the CPU from the
    acknowledgements. While there is work in hand, a monitor wakes every :attr:`TICK` s and
    looks at how late it woke (the loop's lag: how long ready work waits before it runs) and
    whether requests arrived since its last look:

    * requests arriving into a lagging loop halve the width, down to :attr:`FEWEST`;
    * requests arriving into a loop that keeps up add a slot, up to ``most``;
    * no request at all doubles it (nothing to protect; but one quiet tick in a burst,
      when the senders stall for a moment, must not start ``most`` jobs at once).

    Work arriving after a quiet spell starts at :attr:`FIRST` jobs at once rather than
    ``most`` (a slow start: the monitor has not looked yet, and a burst would otherwise
    start ``most`` jobs before it does). Queued jobs wait, in order; none is dropped, and
    :attr:`FEWEST` keeps replies moving however busy the acknowledgements are.

    In production each job mostly waits on Slack's Web API (100 ms or more a call), the loop
    does not lag and the width grows to ``most`` within a few ticks; it narrows only when
    the CPU, not Slack, is the limit, and then more jobs at once would not answer more
    events per second anyway, only acknowledge fewer.

    A queued job is a small record (the coroutine and who it is for), not a task, until it
    starts: a burst of thousands of events costs a deque entry each, not a task, a lock
    wait and a semaphore wait each, and leaves less for the garbage collector to go over.
    """

    TICK = 0.01      # seconds between looks at the loop, while there is work in hand
    LAG = 0.002      # woken later than this: the loop has more ready work than it can run
    FIRST = 4        # jobs at once when work arrives after a quiet spell
    FEWEST = 1       # jobs at once, however busy the acknowledgements are

    def __init__(self, tracker: TaskTracker, locks: KeyedLocks, *, most: int,
                 guard: Guard) -> None:
        self.tracker = tracker
        self.locks = locks
        self.guard = guard
        self.most = most
        self.first = min(self.FIRST, most)
        self.width = self.first
        self.running = 0
        self.arrivals = 0  # requests since the monitor's last look (see :meth:`arrived`)
        self._ready: deque[_Job] = deque()
        self._behind: dict[str, deque[_Job]] = {}  # keys with a job ready or running
        self._watching = False
        self._closed = False

    def __len__(self) -> int:
        """Jobs queued, not yet started."""
        return len(self._ready) + sum(len(jobs) for jobs in self._behind.values())

    def arrived(self) -> None:
        """A request is being acknowledged."""
        self.arrivals += 1

    def put(self, work: Coroutine[Any, Any, None], *, name: str, user: str,
            channel: str | None, key: str | None = None) -> None:
        """Queue ``work``, to be run as ``guard(work, user=user, channel=channel)``; with
        ``key``, after every job queued earlier with that key has finished, and holding the
        key's lock (so work outside the queue can take turns with it)."""
        job = _Job(work, name, key, user, channel)
        if self._closed:
            work.close()
            return
        if key is not None:
            if key in self._behind:
                self._behind[key].append(job)
                return
            self._behind[key] = deque()
        self._ready.append(job)
        self._start()
        if not self._watching:
            self._watching = True
            self.tracker.spawn(self._monitor(), name="slack background width")

    def close(self) -> int:
        """Shutdown: start nothing more; drop the jobs not yet started (returns how many)."""
        self._closed = True
        jobs = [*self._ready, *(job for behind in self._behind.values() for job in behind)]
        self._ready.clear()
        self._behind.clear()
        for job in jobs:
            job.work.close()
        return len(jobs)

    def _start(self) -> None:
        while self._ready and self.running < self.width and not self._closed:
            job = self._ready.popleft()
            self.running += 1
            self.tracker.spawn(self._run(job), name=job.name)

    async def _run(self, job: _Job) -> None:
        try:
            if job.key is None:
                await self.guard(job.work, user=job.user, channel=job.channel)
            else:
                async with self.locks.hold(job.key):
                    await self.guard(job.work, user=job.user, channel=job.channel)
        finally:
            self.running -= 1
            if job.key is not None:
                behind = self._behind.get(job.key)
                if behind:
                    self._ready.append(behind.popleft())
                elif behind is not None:
                    del self._behind[job.key]
            self._start()

    def _resize(self, width: int) -> None:
        self.width = max(self.FEWEST, min(self.most, width))
        self._start()

    async def _monitor(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while (self.running or self._ready) and not self._closed:
                due = loop.time() + self.TICK
                await asyncio.sleep(self.TICK)
                lagging = loop.time() - due > self.LAG
                if not self.arrivals:
                    self._resize(self.width * 2)
                elif lagging:
                    self._resize(self.width // 2)
                else:
                    self._resize(self.width + 1)
                self.arrivals = 0
        finally:
            self._watching = False
            self.width = self.first
