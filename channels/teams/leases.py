"""Leases on accepted archive offers, so an upload a dead replica started is not lost.

Accepting a file consent card moves the offer to ``uploading`` and one replica uploads the
archive to the sender's OneDrive in the background. While it lives, that replica renews the
lease of every upload it runs every :attr:`UploadLeases.tick` seconds (a third of the lease).
A replica killed mid-upload stops renewing; within a lease and a tick any live replica
sharing the database gives the offer back (``failed``, so "Offer it again" and
``archive REF`` offer it anew instead of saying it is busy for ever) and tells the sender,
once, with an "Offer it again" card. The upload itself is not resumed elsewhere: the upload
URL Teams gave belongs to the consent the sender accepted, and a fresh consent costs them
one click. Leases are read against each replica's own clock (NTP keeps them close).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import datetime, timedelta
from typing import Any

from bot.messages import teams as msg
from channels.teams import cards, records
from store.db import Database

log = logging.getLogger(__name__)
DEFAULT_LEASE = 60.0  # seconds
SendTo = Callable[[dict[str, Any], Sequence[dict[str, Any]]], Awaitable[None]]


class UploadLeases:
    """This replica's uploads under lease, and the taking back of dead replicas' ones."""

    def __init__(self, db: Database, clock: Callable[[], datetime], send_to: SendTo, *,
                 lease: float = DEFAULT_LEASE) -> None:
        self.db = db
        self.clock = clock
        self.send_to = send_to
        self.lease = timedelta(seconds=lease)
        self.tick = lease / 3
        self._held: set[str] = set()  # offer ids this replica is uploading now

    async def holding(self, offer_id: str, upload: Coroutine[Any, Any, None]) -> None:
        """Run ``upload`` while this replica renews ``offer_id``'s lease."""
        self._held.add(offer_id)
        try:
            await upload
        finally:
            self._held.discard(offer_id)

    async def renew(self) -> None:
        await records.renew_uploads(self.db, offer_ids=sorted(self._held), now=self.clock())

    async def give_back_lapsed(self) -> int:
        """Give back every upload whose lease lapsed and tell its sender; how many this
        replica gave back."""
        now = self.clock()
        cutoff = now - self.lease
        given = 0
        for offer in await records.lapsed_uploads(self.db, renewed_before=cutoff):
            if offer.id in self._held:
                continue  # ours, alive: renewed on the next tick
            if not await records.give_back_upload(self.db, offer_id=offer.id,
                                                  renewed_before=cutoff, now=now):
                continue  # renewed, or another replica gave it back first
            given += 1
            log.warning("the upload of archive %s lapsed (its replica stopped); offered again",
                        offer.reference)
            await self._tell(offer)
        return given

    async def _tell(self, offer: records.Offer) -> None:
        try:
            target = await records.reference_for(self.db, user_id=offer.user_id)
            if target is None:
                return
            text = msg.UPLOAD_INTERRUPTED.format(filename=offer.filename,
                                                 reference=offer.reference)
            await self.send_to(target, [cards.card_message(cards.offer_again_card(
                text, offer.id))])
        except Exception as exc:  # they can still type `archive REF`
            log.error("could not tell the sender of %s that its upload lapsed: %s",
                      offer.reference, type(exc).__name__)

    async def keep(self) -> None:
        """Every :attr:`tick` while the replica lives: renew this replica's leases, then give
        back lapsed ones. Errors are logged; the loop goes on."""
        while True:
            try:
                await self.renew()
                await self.give_back_lapsed()
            except Exception as exc:
                log.error("could not keep the Teams upload leases (%s)", type(exc).__name__)
            await asyncio.sleep(self.tick)
