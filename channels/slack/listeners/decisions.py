"""Approvers' decisions: Approve on a request decides at once; Reject opens a modal for the
reason, whose submission decides. The core records the decision (:mod:`handlers.approvals`)
and says why a decision is refused; afterwards every approver's copy of the request shows
how it was decided, so no stale buttons are left.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.messages import slack as msg
from bot.replies import Text
from bot.statuses import ApprovalStatus
from channels.slack import blocks, records
from channels.slack.api import error_code
from channels.slack.blocks import Block
from channels.slack.controls import FIELD_BLOCK, REASON_FIELD
from channels.slack.inputs import Click, dig, form_values, metadata, text_of
from channels.slack.runtime import ACK_BUDGET, Ack, SlackRuntime
from handlers import approvals
from store import repositories as repo

log = logging.getLogger(__name__)
# The message clicked: (channel, ts, its blocks if the payload carried them).
Clicked = tuple[str, str, list[Block] | None]


class Decisions:
    def __init__(self, slack: SlackRuntime) -> None:
        self.slack = slack

    async def approval_click(self, clicked: Click, trigger: str, *, reference: str,
                             approve: bool) -> None:
        slack = self.slack
        user, channel, ts = clicked.user, clicked.channel, clicked.ts
        user_id = f"slack:{user}"
        if approve:
            refusal = await self._decide(user_id, reference, approve=True, reason="",
                                         clicked=(channel, ts, clicked.blocks))
        else:
            async with slack.svc.db.read() as session:
                approval = await repo.get_approval(session, reference=reference)
            may_decide = (approval is not None and approval.status == ApprovalStatus.PENDING
                          and slack.svc.policy.is_one_of(user_id, approval.approvers))
            if may_decide and trigger:
                data = json.dumps({"ref": reference, "c": channel, "ts": ts})
                await slack.api.open_view(trigger, blocks.reject_modal(reference,
                                                                       metadata=data))
                return
            # Not theirs to decide: the core says why (and records the refused attempt).
            refusal = await self._decide(user_id, reference, approve=False, reason="",
                                         clicked=(channel, ts, clicked.blocks))
        if refusal is not None:
            await slack.api.ephemeral(channel, user, blocks.escape(refusal))

    async def on_reject_submitted(self, ack: Ack, body: dict[str, Any]) -> None:
        view = body.get("view")
        meta = metadata(view)
        user = text_of(dig(body, "user", "id"))
        reference = meta.get("ref")
        if not user or not reference:
            await ack()
            return
        reason = form_values(dig(view, "state", "values") or {}).get(REASON_FIELD, "")
        clicked = (meta.get("c", ""), meta.get("ts", ""), None)
        task = self.slack.spawn(self._guarded_decide(f"slack:{user}", reference, reason,
                                                     clicked), name="slack reject")
        done, _ = await asyncio.wait({task}, timeout=ACK_BUDGET)
        if task in done:
            refusal = task.result()
            if refusal is not None:
                await ack(response_action="errors",
                          errors={FIELD_BLOCK + REASON_FIELD: refusal})
                return
            await ack()
            return
        await ack()  # slow (the sender is being told): any refusal comes as a message
        self.slack.background(self._late_refusal(task, user, clicked[0]),
                              name="slack late refusal", user=user, channel=None,
                              queued=False)

    async def _late_refusal(self, task: asyncio.Task[str | None], user: str,
                            channel: str) -> None:
        refusal = await task
        if refusal is not None:
            await self.slack.say(channel or await self.slack.api.open_dm(user), refusal,
                                 user=user)

    async def _guarded_decide(self, user_id: str, reference: str, reason: str,
                              clicked: Clicked) -> str | None:
        try:
            return await self._decide(user_id, reference, approve=False, reason=reason,
                                      clicked=clicked)
        except Exception:
            log.exception("recording a rejection from Slack failed")
            return msg.SOMETHING_WENT_WRONG

    async def _decide(self, user_id: str, reference: str, *, approve: bool, reason: str,
                      clicked: Clicked) -> str | None:
        """Record the decision, then show the request's state on every approver's request
        message (also when it was decided by someone else, cancelled or expired, so stale
        buttons go). Returns the refusal to show the person, or None."""
        svc = self.slack.svc
        replies = await approvals.decide(svc, approver_id=user_id, reference=reference,
                                         approve=approve, reason=reason)
        async with svc.db.read() as session:
            approval = await repo.get_approval(session, reference=reference)
        if approval is not None and approval.status != ApprovalStatus.PENDING:
            await self.refresh_requests(reference, self._decision_note(approval),
                                        clicked=clicked)
            if approval.decided_by and svc.policy.same_person(approval.decided_by, user_id):
                return None  # theirs (a double click finds it already recorded)
        first = next((r for r in replies if isinstance(r, Text)), None)
        return first.text if first is not None else msg.SOMETHING_WENT_WRONG

    def _decision_note(self, approval: repo.ApprovalRecord) -> str:
        policy = self.slack.svc.policy
        if approval.status not in (ApprovalStatus.APPROVED, ApprovalStatus.REJECTED) \
                or approval.decided_at is None:
            return msg.DECIDED_OTHER.format(reference=approval.reference,
                                            status=approval.status)
        decided_at: datetime = approval.decided_at.astimezone(policy.timezone)
        rejected = approval.status == ApprovalStatus.REJECTED
        template = msg.DECIDED_WITH_REASON if rejected and approval.reason else msg.DECIDED
        return template.format(
            mark="✗" if rejected else "✓",
            decision=msg.DECIDED_REJECTED if rejected else msg.DECIDED_APPROVED,
            who=approval.decided_by, when=f"{decided_at:%a %d %b %Y %H:%M}",
            tz=policy.timezone.key, reason=approval.reason)

    async def refresh_requests(self, reference: str, note: str, *,
                               clicked: Clicked | None = None) -> None:
        """Put ``note`` in place of the buttons on every approver's request for
        ``reference`` (and on the message clicked, if it was never recorded)."""
        targets = [(m.channel, m.ts) for _u, m in
                   await records.approval_messages(self.slack.svc.db, reference=reference)]
        if clicked is not None and clicked[0] and clicked[1] and \
                (clicked[0], clicked[1]) not in targets:
            targets.append((clicked[0], clicked[1]))
        for channel, ts in targets:
            known = clicked[2] if clicked is not None and (channel, ts) == clicked[:2] else None
            try:
                await self.slack.amend(channel, ts, note, known)
            except SlackApiError as exc:
                log.warning("could not update an approval request: %s", error_code(exc))
