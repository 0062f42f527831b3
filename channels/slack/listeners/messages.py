"""What people write to the bot: direct messages (text or files), mentions elsewhere, the
``/safehaven`` command, and a direct message from another workspace.

A direct message is written to the inbox before it is acknowledged
(:mod:`channels.slack.inbox`), acted on once per event (:meth:`SlackRuntime.claim`), and
struck from the inbox when done; at start-up and while serving, :meth:`Messages.resume`
takes over the ones a replica that died left unfinished.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine, Mapping, Sequence
from datetime import datetime
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.events import Command, FilesReceived
from bot.messages import slack as msg
from bot.replies import Reply, Text
from channels.slack import blocks, files, records
from channels.slack.api import error_code
from channels.slack.inbox import Ticket, Unfinished
from channels.slack.inputs import dig, from_slack, text_of
from channels.slack.questions import OpenQuestion
from channels.slack.runtime import Ack, SlackRuntime
from handlers import near_misses
from handlers.conversation import Turn, current_state, parse_text

log = logging.getLogger(__name__)
# Message subtypes that are a person writing: plain text, or files with an optional comment.
PERSON_SUBTYPES = (None, "file_share", "thread_broadcast")


def _from_a_person(event: Mapping[str, Any]) -> bool:
    """A direct message a person wrote (the bot reads only those; not our own messages,
    edits, deletions, joins), with its sender and conversation."""
    return (event.get("channel_type") == "im" and not event.get("bot_id")
            and event.get("subtype") in PERSON_SUBTYPES
            and bool(text_of(event.get("user"))) and bool(text_of(event.get("channel"))))


def event_key(body: Mapping[str, Any], *fallbacks: Any) -> str:
    """The key an event is claimed by: Slack's ``event_id``, else the first fallback."""
    return "slack:event:" + text_of(body.get("event_id") or next(
        (f for f in fallbacks if f), ""))


class Messages:
    def __init__(self, slack: SlackRuntime) -> None:
        self.slack = slack

    async def ignore(self) -> None:
        """Events we subscribe to but do not act on."""

    # --- direct messages -------------------------------------------------------------------

    async def resume(self) -> int:
        """Act on the direct messages a replica that is gone had acknowledged and not
        finished (see :mod:`channels.slack.inbox`). Returns how many were taken over."""
        unfinished = await self.slack.inbox.take_over()
        await self.act_on(unfinished)
        return len(unfinished)

    async def act_on(self, unfinished: Sequence[Unfinished]) -> None:
        """Messages taken over: each is acted on as if it had just arrived, except that a
        message whose work had begun is not acted on twice: its sender is told it may not
        have been (see :meth:`_message`)."""
        if unfinished:
            log.warning("taking over %d Slack message(s) left unfinished by a process that "
                        "stopped", len(unfinished))
        for item in unfinished:
            if not self._handle(item.body, item.ticket, resumed=True):
                await self.slack.inbox.done(item.ticket)

    async def on_message(self, body: dict[str, Any]) -> None:
        event = body.get("event")
        if isinstance(event, Mapping) and _from_a_person(event):
            key = event_key(body, event.get("client_msg_id"),
                            f"{text_of(event.get('channel'))}:{event.get('ts')}")
            # before the acknowledgement: see the inbox
            self._handle(body, await self.slack.inbox.accept(key, body))

    def _handle(self, body: Mapping[str, Any], ticket: Ticket, *,
                resumed: bool = False) -> bool:
        """Queue a message's work, to be struck from the inbox when it ends; False (nothing
        queued) for what the bot does not act on."""
        event = body.get("event")
        if not isinstance(event, Mapping) or not _from_a_person(event):
            return False
        user, channel = text_of(event.get("user")), text_of(event.get("channel"))
        key = event_key(body, event.get("client_msg_id"), f"{channel}:{event.get('ts')}")
        self.slack.background(
            self._settled(self._message(key, event, user, channel, resumed), ticket,
                          user=user, channel=channel),
            name=f"slack message {key}", user=user, channel=channel, serial=True)
        return True

    async def _settled(self, work: Coroutine[Any, Any, None], ticket: Ticket, *,
                       user: str, channel: str) -> None:
        """Run a message's work, then strike it from the inbox: done whether it succeeded
        or the person was told it failed; left there if the process stops first."""
        await self.slack._guarded(work, channel=channel, user=user)
        await self.slack.inbox.done(ticket)

    async def _message(self, key: str, event: Mapping[str, Any], user: str,
                       channel: str, resumed: bool = False) -> None:
        slack = self.slack
        if not await slack.claim(key):
            if resumed:  # begun by the process that stopped: it may or may not have acted
                await self._tell_interrupted(event, user, channel)
            else:
                log.info("ignoring a repeated Slack event %s", key)
            return
        user_id = f"slack:{user}"
        ts, thread = text_of(event.get("ts")), text_of(event.get("thread_ts"))
        reply_in = thread if thread and thread != ts else None
        shared = [f for f in event.get("files") or [] if isinstance(f, Mapping)]
        if not shared:
            text = from_slack(text_of(event.get("text")))
            if not text.strip():
                return
            before = slack.asked.get(user)
            turn = await slack.take(user_id, parse_text(text))
            await self._typed_over(user, before, text, turn)
            await slack.send(channel, user, turn.replies, thread_ts=reply_in)
            return
        incoming, refused = await files.receive(
            slack.ensure_session(), slack.client, shared, token=slack.settings.bot_token,
            egress=files.egress_policy(slack.svc.settings, slack.settings),
            settings=slack.svc.settings, limit=slack.svc.policy.max_file_bytes)
        replies: list[Reply] = [Text("\n".join(r.text for r in refused))] if refused else []
        await near_misses.record_refused_downloads(
            slack.svc, actor=user_id, count=sum(r.too_large for r in refused))
        if incoming:
            turn = await slack.take(user_id, FilesReceived(tuple(incoming)))
            replies += turn.replies
        posted = await slack.send(channel, user, replies, thread_ts=reply_in)
        if incoming:
            await self._remember_transfer(user_id, channel, posted)

    async def _typed_over(self, user: str, before: OpenQuestion | None, typed: str,
                          turn: Turn) -> None:
        """A message typed while a question with buttons was open: if it answered the
        question (or was refused, and the question asked again below), the question's
        message shows so and loses its buttons, as after a click. A message that leaves
        the question open (``help``) leaves it alone."""
        if before is None:
            return
        slack = self.slack
        if not turn.error and (await current_state(
                slack.svc, conversation_id=f"slack:{user}")).step == before.question:
            return
        slack.asked.forget(user, before)
        current = await slack.api.message_blocks(before.channel, before.ts)
        if not current:  # could not be read back: better its buttons than a lost question
            return
        label = blocks.clip(" ".join(typed.split()), 80)
        note = msg.NOT_ACCEPTED if turn.error else msg.ANSWERED
        await slack.amend(before.channel, before.ts, note.format(answer=label), current)

    async def _tell_interrupted(self, event: Mapping[str, Any], user: str,
                                channel: str) -> None:
        try:
            sent = datetime.fromtimestamp(float(text_of(event.get("ts"))),
                                          self.slack.svc.policy.timezone).strftime("%H:%M")
        except (ValueError, OverflowError, OSError):
            sent = "?"
        await self.slack.say(channel, msg.INTERRUPTED.format(time=sent), user=user,
                             thread_ts=text_of(event.get("thread_ts")) or None)

    async def _remember_transfer(self, user_id: str, channel: str,
                                 posted: Sequence[tuple[blocks.Outgoing, str | None]]) -> None:
        """The first message of a transfer is where its receipts will be threaded."""
        svc = self.slack.svc
        state = await current_state(svc, conversation_id=user_id)
        first = next((ts for _item, ts in posted if ts), None)
        if state.reference and first:
            await records.remember(svc.db, reference=state.reference, user_id=user_id,
                                   kind=records.Posted.TRANSFER, channel=channel, ts=first,
                                   now=svc.clock())

    def refuse_foreign(self, body: Mapping[str, Any]) -> None:
        """A direct message from someone outside the workspace: told why, once."""
        event = body.get("event")
        if not isinstance(event, Mapping) or event.get("channel_type") != "im" \
                or event.get("bot_id") or event.get("type") != "message":
            return
        user, channel = text_of(event.get("user")), text_of(event.get("channel"))
        if not user or not channel:
            return
        key = event_key(body, f"{channel}:{event.get('ts')}")

        async def refuse() -> None:
            if await self.slack.claim(key):
                await self.slack.say(channel, msg.OTHER_WORKSPACE)

        self.slack.background(refuse(), name=f"slack refusal {key}", user=user,
                              channel=channel)

    # --- mentions --------------------------------------------------------------------------

    async def on_mention(self, body: dict[str, Any]) -> None:
        event = body.get("event")
        user = text_of(dig(event, "user"))
        channel = text_of(dig(event, "channel"))
        if not user or not channel:
            return
        key = event_key(body, f"{channel}:{dig(event, 'ts')}")
        self.slack.background(self._dms_only(key, channel, user), name=f"slack mention {key}",
                              user=user, channel=None)

    async def _dms_only(self, key: str, channel: str, user: str) -> None:
        slack = self.slack
        if not await slack.claim(key):
            return
        try:
            await slack.api.ephemeral(channel, user, blocks.escape(msg.DMS_ONLY))
        except SlackApiError as exc:
            log.info("could not answer a mention in place (%s); answering by DM",
                     error_code(exc))
            await slack.say(await slack.api.open_dm(user), msg.DMS_ONLY, user=user)

    # --- the slash command -----------------------------------------------------------------

    async def on_command(self, ack: Ack, body: dict[str, Any]) -> None:
        user = text_of(body.get("user_id"))
        in_dm = text_of(body.get("channel_id")).startswith("D")
        if in_dm:
            await ack()
        else:  # the answer goes to the DM; say so where the command was typed
            await ack(text=msg.COMMAND_ANSWERED_IN_DM)
        if not user:
            return
        text = text_of(body.get("text")).strip() or "help"
        self.slack.background(self._command(user, text), name="slack command", user=user,
                              channel=None, serial=True)

    async def _command(self, user: str, text: str) -> None:
        event = parse_text(from_slack(text))
        if not isinstance(event, Command):
            event = Command("help")
        channel = await self.slack.api.open_dm(user)
        turn = await self.slack.take(f"slack:{user}", event)
        await self.slack.send(channel, user, turn.replies)
