"""The inbox: messages acknowledged and not yet acted on outlive the replica that took them,
in the database under leases that any live replica takes over once they lapse."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.settings import SettingsError
from channels.slack.inbox import Inbox, Unfinished
from channels.slack.settings import load_slack_settings
from handlers.services import Services
from store.db import Database
from store.models import InboxStatus, SlackInboxEntry
from store.repositories import slack_inbox as rows
from tests.support.core import Clock

LEASE = 30.0


def body(n: int) -> dict[str, object]:
    return {"event_id": f"Ev{n}", "event": {"type": "message", "text": f"message {n} ✓"}}


class Replica:
    """An inbox as one replica holds it, its writes run as tasks of the test's loop."""

    def __init__(self, services: Services, clock: Callable[[], Any] | None = None) -> None:
        self.tasks: set[asyncio.Task[None]] = set()
        self.inbox = Inbox(services.db, services.vault, clock=clock or services.clock,
                           spawn=self._spawn, lease=LEASE)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def settle(self) -> None:
        while self.tasks:
            await asyncio.gather(*self.tasks)


@pytest.fixture
async def replicas(services: Services) -> AsyncIterator[list[Replica]]:
    made: list[Replica] = []
    yield made
    for replica in made:
        await replica.settle()


async def held(services: Services) -> list[tuple[str, str]]:
    return [(owner, status) for _seq, owner, status, _until in await rows.held(services.db)]


def events(taken: list[Unfinished]) -> list[object]:
    return [item.body["event_id"] for item in taken]


async def test_a_row_lives_only_while_its_work_is_in_hand(
        services: Services, replicas: list[Replica]) -> None:
    replicas.append(a := Replica(services))
    first = await a.inbox.accept("slack:event:Ev1", body(1))
    second = await a.inbox.accept("slack:event:Ev2", body(2))
    assert await held(services) == [(a.inbox.owner, InboxStatus.ACCEPTED)] * 2
    await a.inbox.done(first)
    assert len(await held(services)) == 1
    await a.inbox.done(second)
    await a.inbox.done(second)  # twice: no harm
    assert await held(services) == []  # what it held is gone with it
    await a.inbox.accept("slack:event:Ev3", body(3))
    await a.inbox.close()  # still in hand at shutdown: kept, and released at once
    [(_seq, owner, _status, until)] = await rows.held(services.db)
    assert owner == a.inbox.owner and until <= services.clock()


async def test_what_the_person_sent_is_sealed_with_the_vault(
        services: Services, replicas: list[Replica]) -> None:
    replicas.append(a := Replica(services))
    await a.inbox.accept("slack:event:Ev1", body(1))
    async with services.db.read() as session:
        [row] = (await session.scalars(select(SlackInboxEntry))).all()
    assert "message 1" not in row.body and "Ev1" not in row.body
    assert json.loads(services.vault.open(row.body, reference=row.event_key)) == body(1)


async def test_a_dead_replica_s_messages_are_taken_over_in_order_once_its_lease_lapses(
        services: Services, clock: Clock, replicas: list[Replica]) -> None:
    replicas.extend([dead := Replica(services), live := Replica(services)])
    tickets = [await dead.inbox.accept(f"slack:event:Ev{n}", body(n)) for n in range(1, 5)]
    await dead.inbox.done(tickets[1])
    # ... and the dead replica is killed: nothing more from it, its leases left to lapse.
    assert await live.inbox.take_over() == []  # still within the lease
    clock.advance(seconds=LEASE + 1)
    taken = await live.inbox.take_over()
    assert events(taken) == ["Ev1", "Ev3", "Ev4"]
    assert await held(services) == [(live.inbox.owner, InboxStatus.TAKEN_OVER)] * 3
    assert await live.inbox.take_over() == []  # now the live replica's, under its lease
    for item in taken:
        await live.inbox.done(item.ticket)
    assert await held(services) == []


async def test_a_live_replica_s_renewed_leases_are_left_alone(
        services: Services, clock: Clock, replicas: list[Replica]) -> None:
    replicas.extend([working := Replica(services), other := Replica(services)])
    await working.inbox.accept("slack:event:Ev1", body(1))
    for _ in range(4):  # two leases' time, renewed as the keeper does
        clock.advance(seconds=LEASE / 2)
        await working.inbox.renew()
        assert await other.inbox.take_over() == []
    await working.inbox.close()  # shutdown with the work in hand: free for another at once
    assert [item.body for item in await other.inbox.take_over()] == [body(1)]


async def test_the_keeper_renews_and_takes_over_without_a_restart(
        services: Services, clock: Clock, replicas: list[Replica]) -> None:
    replicas.extend([dead := Replica(services), live := Replica(services)])
    live.inbox.tick = 0.01
    await dead.inbox.accept("slack:event:Ev1", body(1))
    mine = await live.inbox.accept("slack:event:Ev2", body(2))
    acted: list[Unfinished] = []
    arrived = asyncio.Event()

    async def act(taken: list[Unfinished]) -> None:
        acted.extend(taken)
        arrived.set()

    keeper = asyncio.get_running_loop().create_task(live.inbox.keep(act))
    try:
        clock.advance(seconds=LEASE + 1)  # the dead replica's lease lapses; live renews its own
        await asyncio.wait_for(arrived.wait(), 10)
    finally:
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)
    assert [item.body for item in acted] == [body(1)]  # not its own
    await live.inbox.done(mine)
    await live.inbox.done(acted[0].ticket)
    assert await held(services) == []


async def test_replicas_taking_over_at_once_share_the_work_without_overlap(
        services: Services, clock: Clock, replicas: list[Replica]) -> None:
    replicas.append(dead := Replica(services))
    for n in range(30):
        await dead.inbox.accept(f"slack:event:Ev{n}", body(n))
    clock.advance(seconds=LEASE + 1)
    replicas.extend(takers := [Replica(services) for _ in range(3)])
    results = await asyncio.gather(*(taker.inbox.take_over() for taker in takers))
    taken = [event for result in results for event in events(result)]
    assert sorted(taken) == sorted(f"Ev{n}" for n in range(30))  # each exactly once


async def test_a_burst_of_messages_is_written_in_few_transactions(
        services: Services, replicas: list[Replica], monkeypatch: pytest.MonkeyPatch) -> None:
    replicas.append(a := Replica(services))
    writes = 0
    write = rows.write

    async def counted(*args: Any, **kwargs: Any) -> list[int]:
        nonlocal writes
        writes += 1
        return await write(*args, **kwargs)

    monkeypatch.setattr(rows, "write", counted)
    tickets = await asyncio.gather(*(a.inbox.accept(f"slack:event:Ev{n}", body(n))
                                     for n in range(200)))
    assert len(await held(services)) == 200
    assert writes < 20, writes
    numbers = [await ticket.row for ticket in tickets]
    assert numbers == sorted(numbers)  # in the order they arrived


async def test_an_unwritable_inbox_is_logged_and_the_message_still_handled(
        services: Services, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    broken = Database(f"sqlite+aiosqlite:///{tmp_path / 'unmigrated.db'}")  # no such table
    tasks: list[asyncio.Task[None]] = []
    inbox = Inbox(broken, services.vault, clock=services.clock, lease=LEASE,
                  spawn=lambda coro: tasks.append(asyncio.get_running_loop().create_task(coro)))
    try:
        with caplog.at_level(logging.ERROR):
            ticket = await inbox.accept("slack:event:Ev1", body(1))
        assert await ticket.row is None
        assert "could not write the Slack inbox" in caplog.text
        assert "message 1" not in caplog.text
        await inbox.done(ticket)  # nothing to strike: no harm
        await asyncio.gather(*tasks)
    finally:
        await broken.close()


async def test_a_row_that_cannot_be_opened_is_dropped_not_acted_on(
        services: Services, clock: Clock, replicas: list[Replica],
        caplog: pytest.LogCaptureFixture) -> None:
    replicas.extend([dead := Replica(services), live := Replica(services)])
    await dead.inbox.accept("slack:event:Ev1", body(1))
    async with services.db.transaction() as session:
        row = (await session.scalars(select(SlackInboxEntry))).one()
        row.event_key = "slack-inbox:slack:event:Ev2"  # another event's key: the seal refuses
    clock.advance(seconds=LEASE + 1)
    with caplog.at_level(logging.ERROR):
        assert await live.inbox.take_over() == []
    assert "could not open a Slack inbox entry" in caplog.text
    await live.settle()
    assert await held(services) == []


def test_the_lease_and_its_tick() -> None:
    inbox = Inbox(Database("sqlite+aiosqlite://"), object(),  # type: ignore[arg-type]
                  clock=lambda: None, spawn=lambda coro: None, lease=30)  # type: ignore[arg-type,return-value]
    assert inbox.lease == timedelta(seconds=30) and inbox.tick == 5


def test_the_lease_is_set_in_seconds_and_checked() -> None:
    base = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}
    default = load_slack_settings(base)
    assert default is not None and default.inbox_lease_seconds == 30
    short = load_slack_settings({**base, "SLACK_INBOX_LEASE_SECONDS": "2.5"})
    assert short is not None and short.inbox_lease_seconds == 2.5
    for wrong in ("0", "-4", "soon", "nan", "86400"):
        with pytest.raises(SettingsError, match="SLACK_INBOX_LEASE_SECONDS"):
            load_slack_settings({**base, "SLACK_INBOX_LEASE_SECONDS": wrong})
