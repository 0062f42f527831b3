"""Direct messages acknowledged but not yet acted on, kept in the database until they are.

Slack hears 200 as soon as a message arrives and never sends it again; the work (download,
turn, reply) follows in the background. A process killed in between (``SIGKILL``, the OOM
killer, a host lost) would otherwise lose the message without a word to its sender. So each
message the bot will act on is written to the ``slack_inbox`` table before it is
acknowledged (:mod:`store.repositories.slack_inbox`), held by this replica under a lease,
and deleted when its work has ended.

Leases: while a replica lives it renews the leases of everything it holds every
:attr:`Inbox.tick` seconds (a sixth of the lease). A lease that lapses was a replica that
died; any live replica, at start-up and at every tick, takes such rows over and acts on them
(see :meth:`channels.slack.listeners.messages.Messages.resume`): a message whose work had
begun is not acted on twice and its sender is told, one that had only been acknowledged is
acted on. So a dead replica's messages are taken over within about a lease and a tick, with
no restart and by any replica sharing the database, whatever its disk. A replica shutting
down with work still in hand ends its leases at once. Leases are read against each
replica's own clock: replicas' clocks must agree to well within a lease (NTP does).

The row holds what the person sent (their typed text, the names and Slack URLs of their
files; never file contents, and never a password, which only the bot generates), sealed
with the vault (AES-256-GCM under the server key, bound to the event's key), so the database
never holds it in clear; the row goes once the work is done.

Writes are grouped (group commit): messages accepted, and messages finished, while a write
is under way go into the next one, so a burst costs one transaction per batch. An
acknowledgement waits at most :attr:`Inbox.ACCEPT_BUDGET` for its write: a database too slow
for that still gets the row shortly after, and one that is down costs the message only its
safety from a crash (the error is logged), never its answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.vault import Vault, VaultError
from store.db import Database
from store.repositories import slack_inbox as rows

log = logging.getLogger(__name__)
DEFAULT_LEASE = 30.0  # seconds; SLACK_INBOX_LEASE_SECONDS


@dataclass(frozen=True, eq=False)
class Ticket:
    """A message accepted into the inbox; hand it back to :meth:`Inbox.done`. ``row`` gives
    its row's number once written (None if the write failed)."""

    row: asyncio.Future[int | None]


@dataclass(frozen=True)
class Unfinished:
    """A message a replica that is gone accepted and did not finish, now held by this one."""

    body: dict[str, Any]
    ticket: Ticket


def _owner() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(4)}"


def _binding(key: str) -> str:
    """The event's key as the seal's associated data (ASCII, as the vault wants)."""
    return "slack-inbox:" + key[:180].encode("ascii", "replace").decode("ascii")


class Inbox:
    """This replica's messages in hand, in the shared table (see the module's docstring)."""

    ACCEPT_BUDGET = 1.0  # seconds an acknowledgement waits for its row

    def __init__(self, db: Database, vault: Vault, *, clock: Callable[[], datetime],
                 spawn: Callable[[Coroutine[Any, Any, None]], object],
                 lease: float = DEFAULT_LEASE) -> None:
        self.db = db
        self.vault = vault
        self.clock = clock
        self.spawn = spawn
        self.lease = timedelta(seconds=lease)
        self.tick = lease / 6
        self.owner = _owner()
        self.taking_over = True  # cleared at shutdown: a stopping replica takes nothing on
        self._accepted: list[tuple[rows.NewEntry, asyncio.Future[int | None]]] = []
        self._finished: dict[int, list[asyncio.Future[None]]] = {}
        self._writing = False

    # --- the acknowledgement path and the end of the work ----------------------------------

    async def accept(self, key: str, body: Mapping[str, Any]) -> Ticket:
        """Record ``body`` (a Slack event claimed by ``key``) before the acknowledgement."""
        binding = _binding(key)
        sealed = self.vault.seal(json.dumps(body, separators=(",", ":")), reference=binding)
        row: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._accepted.append((rows.NewEntry(binding, sealed), row))
        self._write_soon()
        try:
            await asyncio.wait_for(asyncio.shield(row), self.ACCEPT_BUDGET)
        except TimeoutError:
            log.warning("the Slack inbox write is slow: acknowledging without waiting for it")
        return Ticket(row)

    async def done(self, ticket: Ticket) -> None:
        """The message's work has ended (acted on, or the person told why not): its row
        goes (a row the database refuses to delete now is tried again at the next tick)."""
        seq = await ticket.row
        if seq is None:
            return
        finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._finished.setdefault(seq, []).append(finished)
        self._write_soon()
        await finished

    def _write_soon(self) -> None:
        if not self._writing:
            self._writing = True
            self.spawn(self._write())

    async def _write(self) -> None:
        try:
            while self._accepted or self._finished:
                accepted, self._accepted = self._accepted, []
                finished, self._finished = self._finished, {}
                now = self.clock()
                numbers: list[int | None]
                try:
                    numbers = list(await rows.write(
                        self.db, owner=self.owner, accepted=[entry for entry, _ in accepted],
                        finished=finished, now=now, lease_until=now + self.lease))
                    failed = False
                except Exception as exc:  # the database is down: said once per batch
                    log.error("could not write the Slack inbox (%s): messages in hand would "
                              "be lost if the process were killed", type(exc).__name__)
                    numbers, failed = [None] * len(accepted), True
                    for undeleted in finished:  # deleted at a later write (see renew)
                        self._finished.setdefault(undeleted, [])
                for (_, row), seq in zip(accepted, numbers, strict=True):
                    if not row.done():
                        row.set_result(seq)
                _settle(finished.values())
                if failed and not self._accepted:
                    return  # the deletions left wait for the next tick, not a busy loop
        finally:
            self._writing = False

    # --- leases ----------------------------------------------------------------------------

    async def renew(self) -> None:
        """Extend this replica's leases, and retry deletions a failed write left."""
        await rows.renew(self.db, owner=self.owner, lease_until=self.clock() + self.lease)
        if self._finished:
            self._write_soon()

    async def take_over(self) -> list[Unfinished]:
        """The messages of replicas whose leases lapsed, now this replica's, in the order
        they arrived."""
        found: list[Unfinished] = []
        while True:
            now = self.clock()
            batch = await rows.take_over(self.db, owner=self.owner, now=now,
                                         lease_until=now + self.lease)
            for entry in batch:
                row: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
                row.set_result(entry.seq)
                try:
                    body = json.loads(self.vault.open(entry.sealed_body,
                                                      reference=entry.event_key))
                except (VaultError, ValueError):  # another key, or damaged: cannot be acted on
                    log.error("could not open a Slack inbox entry taken over (row %d); "
                              "dropped", entry.seq)
                    await self.done(Ticket(row))
                    continue
                if isinstance(body, dict):
                    found.append(Unfinished(body, Ticket(row)))
            if not batch:
                return found

    async def keep(self, act: Callable[[list[Unfinished]], Awaitable[None]]) -> None:
        """Every :attr:`tick` while the replica lives: renew this replica's leases, then
        take over lapsed ones (while not shutting down) and ``act`` on them. Runs until
        cancelled; a database error is logged and tried again at the next tick."""
        while True:
            await asyncio.sleep(self.tick)
            try:
                await self.renew()
                if self.taking_over:
                    taken = await self.take_over()
                    if taken:
                        await act(taken)
            except Exception as exc:
                log.error("could not keep the Slack inbox's leases (%s)", type(exc).__name__)

    async def close(self) -> None:
        """Shutdown: what this replica still holds is released at once, for a live replica
        (or the next start) to take over."""
        try:
            released = await rows.release(self.db, owner=self.owner, now=self.clock())
        except Exception as exc:
            log.error("could not release the Slack inbox's leases (%s); they lapse in %s",
                      type(exc).__name__, self.lease)
            return
        if released:
            log.warning("released %d Slack message(s) still in hand at shutdown", released)


def _settle(groups: Iterable[list[asyncio.Future[None]]]) -> None:
    for futures in groups:
        for future in futures:
            if not future.done():
                future.set_result(None)
