"""Answers by click and by form: a button, a select, a picked date and time, a form opened
in a modal and submitted. Each names the question it answers (:mod:`channels.slack.controls`);
the answer goes to the core as an :class:`~bot.events.Answer`, and the question's message
then shows the answer in place of its controls. A click on an approval request goes to
:mod:`.decisions`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from bot.answers import Decision, approval_answer
from bot.answers import confirmed as confirmed_on_slack
from bot.answers import decode as decode_answer
from bot.events import Answer
from bot.messages import slack as msg
from bot.replies import Form
from channels.slack import blocks
from channels.slack.blocks import Block
from channels.slack.controls import QUESTION_BLOCK
from channels.slack.inputs import (
    Click,
    click,
    dig,
    first_action,
    form_values,
    metadata,
    picked_time,
    submitted_summary,
    text_of,
    ticked,
)
from channels.slack.listeners.decisions import Decisions
from channels.slack.runtime import ACK_BUDGET, Ack, SlackRuntime
from handlers.conversation import Turn, current_question


class Answers:
    def __init__(self, slack: SlackRuntime, decisions: Decisions) -> None:
        self.slack = slack
        self.decisions = decisions

    async def acknowledge(self, ack: Ack) -> None:
        """Clicks we do not act on: the picker's changes, buttons of an old version."""
        await ack()

    # --- clicks ----------------------------------------------------------------------------

    async def on_button(self, ack: Ack, body: dict[str, Any]) -> None:
        await ack()
        action = first_action(body)
        decoded = decode_answer(dig(action, "value"))
        if decoded is None:
            return
        question, value = decoded
        label = text_of(dig(action, "text", "text")) or value
        self._answer_later(body, question, value, label,
                           confirmed=confirmed_on_slack(dig(action, "value")))

    async def on_select(self, ack: Ack, body: dict[str, Any]) -> None:
        await ack()
        action = first_action(body)
        block_id = text_of(dig(action, "block_id"))
        value = text_of(dig(action, "selected_option", "value"))
        if not block_id.startswith(QUESTION_BLOCK) or not value:
            return
        label = text_of(dig(action, "selected_option", "text", "text")) or value
        self._answer_later(body, block_id[len(QUESTION_BLOCK):], value, label)

    async def on_use_time(self, ack: Ack, body: dict[str, Any]) -> None:
        await ack()
        decoded = decode_answer(dig(first_action(body), "value"))
        if decoded is None:
            return
        question = decoded[0]
        picked = picked_time(dig(body, "state", "values") or {}, question,
                             self.slack.svc.policy.timezone)
        clicked = click(body)
        if picked is None:
            if clicked.user and clicked.channel:
                self.slack.background(self.slack.api.ephemeral(
                    clicked.channel, clicked.user, blocks.escape(msg.PICK_A_TIME_FIRST)),
                    name="slack pick a time", user=clicked.user, channel=clicked.channel)
            return
        self._answer_later(body, question, picked, picked)

    async def on_use_checked(self, ack: Ack, body: dict[str, Any]) -> None:
        await ack()
        decoded = decode_answer(dig(first_action(body), "value"))
        if decoded is None:
            return
        question = decoded[0]
        values, labels = ticked(dig(body, "state", "values") or {}, question)
        clicked = click(body)
        if not values:
            if clicked.user and clicked.channel:
                self.slack.background(self.slack.api.ephemeral(
                    clicked.channel, clicked.user, blocks.escape(msg.TICK_SOME_FIRST)),
                    name="slack tick first", user=clicked.user, channel=clicked.channel)
            return
        self._answer_later(body, question, values, labels)

    def _answer_later(self, body: Mapping[str, Any], question: str, value: str,
                      label: str, *, confirmed: bool = False) -> None:
        clicked = click(body)
        user, channel = clicked.user, clicked.channel
        if not user or not channel:
            return
        decided = approval_answer(question, value)
        if decided is not None:  # a click on an ApprovalRequest
            # Reject opens a modal, which Slack allows only within 3 s of the click: it
            # does not wait for a slot. Approve packages the files: it does.
            approve = decided.decision is Decision.APPROVE
            self.slack.background(
                self.decisions.approval_click(clicked, text_of(body.get("trigger_id")),
                                              reference=decided.reference,
                                              approve=approve),
                name="slack approval click", user=user, channel=channel, queued=approve)
        else:
            self.slack.background(self._answer(clicked, Answer(value, question, confirmed),
                                               label),
                                  name="slack answer click", user=user, channel=channel,
                                  serial=True)

    async def _answer(self, clicked: Click, answer: Answer, label: str) -> None:
        turn = await self.slack.take(f"slack:{clicked.user}", answer)
        await self._after_answer(clicked.user, clicked.channel, clicked.ts, clicked.blocks,
                                 clicked.text, turn, label)

    async def _after_answer(self, user: str, channel: str, ts: str,
                            known: list[Block] | None, fallback: str, turn: Turn,
                            label: str) -> None:
        """Leave the answer on the question's message, then post what comes next."""
        slack = self.slack
        if turn.stale:
            # A double click: the first click has already left its answer on the message
            # (the payload we hold predates it), so only a message still showing its
            # buttons (answered by typing) gets the note.
            current = await slack.api.message_blocks(channel, ts) if ts else None
            if ts and (current is None or any(b.get("type") == "actions" for b in current)):
                await slack.amend(channel, ts, msg.STALE_IN_PLACE, current or known, fallback)
            return
        if ts:
            note = msg.NOT_ACCEPTED if turn.error else msg.ANSWERED
            await slack.amend(channel, ts, note.format(answer=label), known, fallback)
            slack.asked.forget_message(user, ts)
        await slack.send(channel, user, turn.replies)

    # --- forms -----------------------------------------------------------------------------

    async def on_open_form(self, ack: Ack, body: dict[str, Any]) -> None:
        await ack()
        decoded = decode_answer(dig(first_action(body), "value"))
        trigger = text_of(body.get("trigger_id"))
        clicked = click(body)
        if decoded is None or not trigger or not clicked.user:
            return
        # A modal may be opened only within 3 s of the click: this does not wait for a slot.
        self.slack.background(self._open_form(clicked, decoded[0], trigger),
                              name="slack open form", user=clicked.user,
                              channel=clicked.channel, queued=False)

    async def _open_form(self, clicked: Click, question: str, trigger: str) -> None:
        slack = self.slack
        user_id = f"slack:{clicked.user}"
        # The current question again: the form with its saved values.
        form = await current_question(slack.svc, conversation_id=user_id, user_id=user_id)
        if not isinstance(form, Form) or form.question != question:
            if clicked.ts:
                await slack.amend(clicked.channel, clicked.ts, msg.STALE_IN_PLACE,
                                  clicked.blocks, clicked.text)
            return
        data = json.dumps({"q": question, "c": clicked.channel, "ts": clicked.ts})
        await slack.api.open_view(trigger, blocks.form_modal(form, metadata=data))

    async def on_form_submitted(self, ack: Ack, body: dict[str, Any]) -> None:
        view = body.get("view")
        meta = metadata(view)
        user = text_of(dig(body, "user", "id"))
        question, channel, ts = meta.get("q"), meta.get("c", ""), meta.get("ts", "")
        if not user or not question or not channel:
            await ack()
            return
        values = form_values(dig(view, "state", "values") or {})
        summary = submitted_summary(view if isinstance(view, Mapping) else {})
        # The acknowledgement waits for the turn to be saved: its writes go first.
        with self.slack.svc.db.urgent():
            turn_task = self.slack.spawn(self.slack.turn(f"slack:{user}",
                                                         Answer(values, question)),
                                         name="slack form turn")
        done, _ = await asyncio.wait({turn_task}, timeout=ACK_BUDGET)
        if turn_task in done and turn_task.exception() is None:
            turn: Turn = turn_task.result()
            form = next((r for r in turn.replies
                         if isinstance(r, Form) and r.question == question), None)
            if turn.error and not turn.stale and form is not None:
                await ack(response_action="errors", errors=blocks.form_errors(form))
                return
        await ack()
        self.slack.background(self._after_form(turn_task, user, channel, ts, summary),
                              name="slack form replies", user=user, channel=channel,
                              queued=False)

    async def _after_form(self, turn_task: asyncio.Task[Turn], user: str, channel: str,
                          ts: str, summary: str) -> None:
        turn = await turn_task
        await self._after_answer(user, channel, ts, None, "", turn, summary)
