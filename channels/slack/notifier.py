"""Messages for Slack users who are not the one talking to the bot right now: an approver
asked to decide, a sender told of a decision, a receipt, an expiry.

An approval request is a new message in the approver's DM, remembered so it can be updated
in place once decided or expired. Everything else about a transfer goes in the thread of
the transfer's first message in the sender's DM, so receipts stay with the transfer they
are about; when the archive arrives that way, its first line is also shown in the DM
itself, so the hand-back is not hidden in a thread.

A notification Slack does not take is logged (by Slack's error code, nothing of its text)
and answered ``UNREACHABLE``, never raised: the caller's work (a decision, a delivery) is
already recorded and must not be undone by it, and the router keeps the message for the
person (sealed) and the sender is told (:mod:`handlers.notify`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import aiohttp
from slack_sdk.errors import SlackApiError

from bot.replies import ApprovalRequest, FileReply, Reply
from channels.slack import blocks, records
from channels.slack.api import error_code
from channels.slack.blocks import Post
from channels.slack.channel import SlackChannel
from handlers.ports import NoticeOutcome

log = logging.getLogger(__name__)


class SlackNotifier:
    def __init__(self, channel: SlackChannel) -> None:
        self.channel = channel

    async def notify(self, user_id: str, replies: Sequence[Reply], *,
                     reference: str | None = None) -> NoticeOutcome:
        try:
            await self._notify(user_id, replies, reference)
        except SlackApiError as exc:
            log.error("Slack notification for %s not delivered: %s", reference or "-",
                      error_code(exc))
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.error("Slack notification for %s not delivered: %s", reference or "-",
                      type(exc).__name__)
        else:
            return NoticeOutcome.DELIVERED
        return NoticeOutcome.UNREACHABLE

    async def _notify(self, user_id: str, replies: Sequence[Reply],
                      reference: str | None) -> None:
        channel = self.channel
        user = user_id.split(":", 1)[1]
        svc = channel.svc
        items = blocks.render(replies, svc.policy.timezone)
        request = any(isinstance(r, ApprovalRequest) for r in replies)
        known = (await records.find(svc.db, reference=reference, user_id=user_id)
                 if reference else None)
        if request and reference:
            dm = await channel.api.open_dm(user)
            posted = await channel.api.deliver(dm, items, user=user)
            ts = next((ts for item, ts in posted
                       if isinstance(item, Post) and item.question and ts), None)
            if ts:
                await records.remember(svc.db, reference=reference, user_id=user_id,
                                       kind="approval", channel=dm, ts=ts, now=svc.clock())
        elif known is not None and known.kind == "approval":
            # A later word on a request (it expired, it was cancelled): shown on the request.
            note = "\n".join(blocks.plain_text(r) for r in replies)
            await channel.amend(known.channel, known.ts, note)
        elif known is not None:
            await channel.api.deliver(known.channel, items, user=user, thread_ts=known.ts,
                                      broadcast_first=any(isinstance(r, FileReply)
                                                          for r in replies))
        else:
            dm = await channel.api.open_dm(user)
            await channel.api.deliver(dm, items, user=user)
