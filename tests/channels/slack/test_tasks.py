"""The queue of work after the acknowledgements: in order, one job at a time per person, at
most its width at once, narrower while acknowledgements are short of CPU, and nothing
dropped except, at shutdown, what never started."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any

from channels.slack.tasks import JobQueue, KeyedLocks, TaskTracker


async def guard(work: Coroutine[Any, Any, None], *, user: str, channel: str | None) -> None:
    await work


def queue_of(tracker: TaskTracker, most: int) -> JobQueue:
    return JobQueue(tracker, KeyedLocks(), most=most, guard=guard)


class Recorder:
    def __init__(self, queue: JobQueue) -> None:
        self.queue = queue
        self.started: list[str] = []
        self.finished: list[str] = []
        self.most_at_once = 0
        self.gates: dict[str, asyncio.Event] = {}

    async def job(self, name: str, seconds: float = 0.0) -> None:
        self.started.append(name)
        self.most_at_once = max(self.most_at_once, self.queue.running)
        if name in self.gates:
            await self.gates[name].wait()
        await asyncio.sleep(seconds)
        self.finished.append(name)

    def put(self, name: str, *, key: str | None = None, seconds: float = 0.0) -> None:
        self.queue.put(self.job(name, seconds), name=name, key=key, user="U1", channel=None)


async def test_jobs_run_in_order_at_most_width_at_once() -> None:
    tracker = TaskTracker()
    queue = queue_of(tracker, 3)
    jobs = Recorder(queue)
    for i in range(10):
        jobs.put(f"j{i}", seconds=0.01)
    await tracker.join()
    assert jobs.started == [f"j{i}" for i in range(10)]
    assert sorted(jobs.finished) == sorted(jobs.started)
    assert jobs.most_at_once == 3
    assert queue.running == 0 and len(queue) == 0


async def test_a_burst_after_a_quiet_spell_starts_small_and_widens_while_the_loop_keeps_up(
        ) -> None:
    tracker = TaskTracker()
    queue = queue_of(tracker, 16)
    jobs = Recorder(queue)
    for i in range(400):
        jobs.put(f"j{i}", seconds=0.02)
    assert queue.running == JobQueue.FIRST < 16
    widest = queue.width
    for _ in range(6):
        queue.arrived()  # acknowledgements, but the loop keeps up: one more slot a tick
        await asyncio.sleep(queue.TICK * 1.5)
        widest = max(widest, queue.width)
    assert widest > JobQueue.FIRST
    await tracker.join()
    assert len(jobs.finished) == 400 and queue.width == JobQueue.FIRST


async def test_one_job_at_a_time_per_key_in_the_order_queued() -> None:
    tracker = TaskTracker()
    queue = queue_of(tracker, 8)
    jobs = Recorder(queue)
    jobs.gates["a1"] = asyncio.Event()
    jobs.put("a1", key="alice")
    jobs.put("b1", key="bob")
    jobs.put("a2", key="alice")
    jobs.put("a3", key="alice")
    await asyncio.sleep(0.01)
    assert jobs.started == ["a1", "b1"]  # alice's next ones wait for a1, bob's does not
    assert len(queue) == 2
    jobs.gates["a1"].set()
    await tracker.join()
    assert [n for n in jobs.finished if n.startswith("a")] == ["a1", "a2", "a3"]


async def test_requests_into_a_lagging_loop_narrow_it_and_quiet_widens_it_again() -> None:
    tracker = TaskTracker()
    queue = queue_of(tracker, 16)
    jobs = Recorder(queue)
    for i in range(400):
        jobs.put(f"j{i}", seconds=0.02)
    narrowest = queue.width
    for _ in range(10):  # acknowledgements arriving while the loop has more than it can run
        queue.arrived()
        time.sleep(queue.TICK + queue.LAG * 2)  # noqa: ASYNC251  # a loop busy with work
        await asyncio.sleep(0)
        narrowest = min(narrowest, queue.width)
    assert narrowest < 16
    await asyncio.sleep(queue.TICK * 10)  # no requests: back to full width
    assert len(queue) and queue.width == 16
    await tracker.join()
    assert len(jobs.finished) == 400


async def test_never_narrower_than_fewest() -> None:
    tracker = TaskTracker()
    queue = queue_of(tracker, 4)
    for _ in range(10):
        queue._resize(queue.width // 2)
    assert queue.width == JobQueue.FEWEST >= 1
    queue._resize(queue.width + 1)
    assert queue.width == JobQueue.FEWEST + 1


async def test_shutdown_drops_only_what_never_started() -> None:
    tracker = TaskTracker()
    queue = queue_of(tracker, 1)
    jobs = Recorder(queue)
    jobs.gates["first"] = asyncio.Event()
    jobs.put("first", key="alice")
    unstarted = [jobs.job(name) for name in ("second", "third")]
    for work in unstarted:
        queue.put(work, name="later", user="U1", channel=None)
    await asyncio.sleep(0.01)
    await tracker.drain(0.05, before_cancel=queue.close)
    assert jobs.started == ["first"] and jobs.finished == []  # cancelled after the wait
    assert all(work.cr_frame is None for work in unstarted)  # closed: never "never awaited"
    late = jobs.job("late")
    queue.put(late, name="late", user="U1", channel=None)
    assert late.cr_frame is None and queue.running == 0 and jobs.started == ["first"]
