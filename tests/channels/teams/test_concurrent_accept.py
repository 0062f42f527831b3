"""One file consent accepted twice at once (Teams retries an invoke, and the load balancer
sends each copy to another replica): the offer moves to ``uploading`` once, so the archive
is uploaded to OneDrive once and the sender told once."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.messages import teams as msg
from channels.teams import records
from channels.teams.cards import FILE_CONSENT
from channels.teams.models import OfferStatus
from tests.channels.teams.test_flow import consent_call, controlled_transfer
from tests.support.fake_teams import TeamsUser
from tests.support.teams import SENDER_AAD, TeamsWorld

SENDER = f"teams:{SENDER_AAD}"


def _accept(user: TeamsUser, teams: TeamsWorld, call: Any, upload_url: str) -> Any:
    consent = call.attachment(FILE_CONSENT)
    return user.send(type="invoke", name="fileConsent/invoke", replyToId=call.id, value={
        "type": "fileUpload", "action": "accept", "context": consent["content"]["acceptContext"],
        "uploadInfo": {"name": consent["name"], "uploadUrl": upload_url,
                       "contentUrl": f"https://contoso-my.sharepoint.com/{consent['name']}",
                       "uniqueId": "1150D938-8870-4044-9F2C-5BBDEBA70C8C",
                       "fileType": "zip"}})


async def test_two_accepts_at_once_upload_the_archive_once(teams: TeamsWorld) -> None:
    sender = teams.user(SENDER_AAD, "Alex Sender")
    ref = await controlled_transfer(teams, sender)
    call = consent_call(sender)
    urls = [teams.files.upload_url(), teams.files.upload_url()]
    await asyncio.gather(*(_accept(sender, teams, call, url) for url in urls))
    await teams.channel.drain()
    sessions = [url.rsplit("/", 1)[1] for url in urls]
    written = [s for s in sessions if teams.files.uploads[s].chunks]
    assert len(written) == 1, "the archive went to OneDrive more than once (or never)"
    assert teams.files.uploads[written[0]].done
    offer = await records.latest_offer(teams.services.db, user_id=SENDER, reference=ref)
    assert offer is not None and offer.status is OfferStatus.UPLOADED
    told = msg.UPLOADED.format(filename=offer.filename)
    assert sum(told in c.words for c in sender.received) == 1  # the sender told once
