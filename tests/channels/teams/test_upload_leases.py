"""An accepted archive offer is uploaded under a lease: a replica that dies mid-upload stops
renewing it, and within a lease any live replica gives the offer back and offers it to the
sender again, once; a live upload keeps its lease however long it runs."""

from __future__ import annotations

import asyncio

from channels.teams import records
from channels.teams.leases import UploadLeases
from channels.teams.models import OfferStatus
from tests.channels.teams.test_flow import accept, consent_call, controlled_transfer
from tests.support.core import Clock
from tests.support.teams import SENDER_AAD, TeamsWorld

SENDER = f"teams:{SENDER_AAD}"


def other_replica(teams: TeamsWorld) -> UploadLeases:
    """A second replica's leases on the same database (its messages go nowhere)."""
    sent: list[object] = []

    async def send_to(reference: object, activities: object) -> None:
        sent.append(activities)

    return UploadLeases(teams.services.db, teams.services.clock, send_to)


async def test_upload_of_a_dead_replica_is_offered_again_once(teams: TeamsWorld) -> None:
    svc = teams.services
    clock = svc.clock
    assert isinstance(clock, Clock)
    sender = teams.user(SENDER_AAD, "Alex Sender")
    ref = await controlled_transfer(teams, sender)
    consent_call(sender)
    offer = await records.latest_offer(svc.db, user_id=SENDER, reference=ref)
    assert offer is not None
    # Replica A took the accept (offer uploading) and was killed before its upload ended.
    assert await records.move_offer(svc.db, offer_id=offer.id, to=OfferStatus.UPLOADING,
                                    only_from=(OfferStatus.OFFERED,), now=clock())
    before = len(sender.received)
    await sender.say(f"archive {ref}")  # the notice, then the "Report a mistake" button
    assert any("being saved to your OneDrive already" in c.words
               for c in sender.received[before:])

    leases, other = teams.channel.uploads, other_replica(teams)
    clock.advance(seconds=leases.lease.total_seconds() - 1)
    assert await leases.give_back_lapsed() == 0  # within the lease: still A's

    clock.advance(seconds=2)
    told = len(sender.received)
    given = await asyncio.gather(leases.give_back_lapsed(), other.give_back_lapsed())
    assert sorted(given) == [0, 1]  # given back once, whichever replica won
    back = await records.get_offer(svc.db, offer_id=offer.id)
    assert back is not None and back.status is OfferStatus.FAILED
    if given[0]:  # this replica won: the sender hears it, once
        assert len(sender.received) == told + 1
        card = sender.last_card()
        assert "was interrupted" in card.words and f"archive {ref}" in card.words
        await sender.click(card, "Offer it again")
    else:
        await sender.say(f"archive {ref}")
    session, _ = await accept(sender, teams, consent_call(sender))
    assert teams.files.uploads[session].done
    done = await records.get_offer(svc.db, offer_id=offer.id)
    assert done is not None and done.status is OfferStatus.UPLOADED


async def test_a_live_upload_keeps_its_lease(teams: TeamsWorld) -> None:
    svc = teams.services
    clock = svc.clock
    assert isinstance(clock, Clock)
    sender = teams.user(SENDER_AAD, "Alex Sender")
    ref = await controlled_transfer(teams, sender)
    offer = await records.latest_offer(svc.db, user_id=SENDER, reference=ref)
    assert offer is not None
    assert await records.move_offer(svc.db, offer_id=offer.id, to=OfferStatus.UPLOADING,
                                    only_from=(OfferStatus.OFFERED,), now=clock())
    leases, other = teams.channel.uploads, other_replica(teams)
    finish = asyncio.Event()

    async def slow_upload() -> None:
        await finish.wait()

    running = asyncio.create_task(leases.holding(offer.id, slow_upload()))
    await asyncio.sleep(0)
    for _ in range(6):  # two leases' worth of ticks on this replica
        clock.advance(seconds=leases.tick)
        await leases.renew()
        assert await other.give_back_lapsed() == 0
    still = await records.get_offer(svc.db, offer_id=offer.id)
    assert still is not None and still.status is OfferStatus.UPLOADING
    finish.set()
    await running
    clock.advance(seconds=leases.lease.total_seconds() + 1)
    assert await other.give_back_lapsed() == 1  # no longer renewed once its upload ended
