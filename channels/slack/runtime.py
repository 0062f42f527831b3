"""What every Slack listener shares: the Web API client and its HTTP session, work run after
the acknowledgement (with the channel's one error policy), event claims, turns taken in
order, and a turn's replies posted as Block Kit.

Every listener acknowledges at once and hands the work to a tracked background task
(queued, see :class:`~channels.slack.tasks.JobQueue`), so Slack hears back well inside its
3 seconds whatever the work costs, and under a burst acknowledgements get the CPU first.
We run bolt with ``process_before_response=True`` although no FaaS is involved: our
listeners only acknowledge and spawn, so the HTTP answer is still immediate, but the spawned
task is ours (tracked and awaited at shutdown) instead of an untracked ``ensure_future``
that bolt then polls every 10 ms for the acknowledgement. The one exception is a modal
submission: Slack shows per-field errors only in the acknowledgement, so the turn gets up to
:data:`ACK_BUDGET` seconds before we acknowledge with or without errors.

Idempotency: an event is acted on once per ``event_id`` (a row in ``processed_events``, see
:meth:`SlackRuntime.claim`), so Slack's retries (``X-Slack-Retry-Num``) and a second replica
change nothing. Clicks and form submissions carry their question id; the core refuses a
second answer to an answered question, and an approval is decided once by a conditional
update.

The listeners (:mod:`channels.slack.listeners`) hold this object; the channel
(:class:`~channels.slack.channel.SlackChannel`) extends it with bolt and the lifecycle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any, TypeVar

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.events import Event
from bot.messages import slack as msg
from bot.replies import Reply
from channels.egress import checked_connector
from channels.slack import blocks, records
from channels.slack.api import SlackApi, error_code, retry_handlers
from channels.slack.blocks import Post, render
from channels.slack.controls import QUESTION_BLOCK
from channels.slack.files import egress_policy
from channels.slack.inbox import Inbox
from channels.slack.questions import OpenQuestion, OpenQuestions
from channels.slack.settings import SlackSettings
from channels.slack.tasks import JobQueue, KeyedLocks, TaskTracker
from handlers.archive_reads import opener
from handlers.conversation import Turn, take_turn
from handlers.services import Services

log = logging.getLogger(__name__)
ACK_BUDGET = 2.0        # seconds a modal submission may take before we acknowledge anyway
# Queued background jobs running at once, at most (see SlackRuntime.background; fewer while
# acknowledgements are short of CPU, see JobQueue). Jobs mostly wait on Slack's Web API
# (100 ms or more a call), so 32 keep up with far more than an organisation's traffic,
# while a burst cannot open more database sessions than the pool can serve.
BACKGROUND_SLOTS = 32
PRUNE_EVERY = 3600.0    # seconds between prunings of old event claims
T = TypeVar("T")
Ack = Callable[..., Awaitable[Any]]  # bolt's ack, as listeners receive it


class SlackRuntime:
    def __init__(self, svc: Services, settings: SlackSettings) -> None:
        self.svc = svc
        self.settings = settings
        self.tasks = TaskTracker()
        self.locks = KeyedLocks()
        self.queue = JobQueue(self.tasks, self.locks, most=BACKGROUND_SLOTS,
                              guard=self._guarded)
        self.client = AsyncWebClient(token=settings.bot_token, base_url=settings.api_url,
                                     retry_handlers=retry_handlers())
        self.api = SlackApi(self.client, opener(svc))
        self.session: aiohttp.ClientSession | None = None
        self.inbox = Inbox(svc.db, svc.vault, clock=lambda: self.svc.clock(),
                           spawn=lambda coro: self.spawn(coro, name="slack inbox writes"),
                           lease=settings.inbox_lease_seconds)
        self.asked = OpenQuestions()
        self._pruned_at = 0.0
        self.claims = records.EventClaims(
            svc.db, clock=lambda: self.svc.clock(),
            spawn=lambda coro: self.spawn(coro, name="slack event claims"))

    def ensure_session(self) -> aiohttp.ClientSession:
        """One HTTP session for the Web API and file downloads while serving, opened inside
        the running loop (an aiohttp session must not be created before it). Processes that
        only notify (``safehaven worker``, ``safehaven approve``) never open it: the Web API
        client then uses a short-lived session per call, so nothing is left unclosed."""
        if self.session is None or self.session.closed:
            # Web API calls carry their own 30 s timeout; this one bounds file downloads,
            # which may legitimately take minutes, by inactivity rather than by length.
            # Connections refuse addresses bot.egress does not allow (file URLs come from
            # events; the Web API host is SLACK_API_URL's, which is allowed).
            self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=30, sock_read=120), connector=checked_connector(
                egress_policy(self.svc.settings, self.settings)))
            self.client.session = self.session
        return self.session

    # --- work after the acknowledgement ----------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str) -> asyncio.Task[T]:
        """Tracked work that must not wait for a background slot (see :meth:`background`)."""
        return self.tasks.spawn(coro, name=name)

    def background(self, work: Coroutine[Any, Any, None], *, name: str, user: str,
                   channel: str | None, serial: bool = False, queued: bool = True) -> None:
        """Run ``work`` after the acknowledgement.

        ``serial``: in turn with the same person's other work (their messages are handled in
        the order they came; the person's lock is held while it runs, as a form submission's
        turn takes it too). ``queued``: in :attr:`queue`, which runs at most
        :data:`BACKGROUND_SLOTS` such jobs at once, fewer while acknowledgements are short
        of CPU (see :class:`JobQueue`), so a burst of events waits its turn instead of
        starving the acknowledgements of CPU and the database of connections; a modal's
        work is not queued, as Slack allows opening one only within 3 s of the click, and
        a submission's person is waiting.
        """
        key = f"slack:{user}" if serial else None
        if queued:
            self.queue.put(work, name=name, key=key, user=user, channel=channel)
            return

        async def run() -> None:
            started = False
            try:
                async with contextlib.AsyncExitStack() as stack:
                    if key is not None:
                        await stack.enter_async_context(self.locks.hold(key))
                    started = True
                    await self._guarded(work, channel=channel, user=user)
            finally:
                if not started:  # cancelled while waiting (shutdown): never started
                    work.close()

        self.tasks.spawn(run(), name=name)

    async def _guarded(self, work: Awaitable[None], *, channel: str | None, user: str) -> None:
        """Run background work; on an unexpected failure tell the person, never crash.
        The channel's one error policy: every listener's work runs through it."""
        try:
            await work
        except Exception as exc:
            if isinstance(exc, SlackApiError):
                log.error("Slack API error %s while handling a request", error_code(exc))
            else:
                log.exception("handling a Slack request failed")
            try:
                target = channel or await self.api.open_dm(user)
                await self.say(target, msg.SOMETHING_WENT_WRONG, user=user)
            except Exception as again:  # Slack itself unreachable: the log is all we have
                log.error("could not tell the user either: %s", type(again).__name__)

    async def claim(self, key: str) -> bool:
        """Whether this process is the one to act on event ``key`` (False: a retry, or
        another replica got there first)."""
        if time.monotonic() - self._pruned_at > PRUNE_EVERY:
            self._pruned_at = time.monotonic()
            await records.prune(self.svc.db, now=self.svc.clock())
        return await self.claims.claim(key)

    # --- turns -----------------------------------------------------------------------------

    async def take(self, user_id: str, event: Event) -> Turn:
        """A turn for someone whose lock the caller holds (see :meth:`background`)."""
        return await take_turn(self.svc, conversation_id=user_id, user_id=user_id,
                               event=event)

    async def turn(self, user_id: str, event: Event) -> Turn:
        async with self.locks.hold(user_id):
            return await self.take(user_id, event)

    # --- replies ---------------------------------------------------------------------------

    async def send(self, channel: str, user: str, replies: Sequence[Reply], *,
                   thread_ts: str | None = None) -> list[tuple[blocks.Outgoing, str | None]]:
        """Post a turn's replies; a question posted with controls becomes the person's
        open question (:mod:`channels.slack.questions`)."""
        if not replies:
            return []
        items = render(replies, self.svc.policy.timezone)
        posted = await self.api.deliver(channel, items, user=user, thread_ts=thread_ts)
        for item, ts in posted:
            if ts and isinstance(item, Post) and item.question and any(
                    str(b.get("block_id", "")).startswith(QUESTION_BLOCK)
                    for b in item.blocks):
                self.asked.remember(user, OpenQuestion(channel, ts, item.question))
        return posted

    async def amend(self, channel: str, ts: str, note: str,
                    known: Sequence[Mapping[str, Any]] | None = None,
                    fallback: str = "") -> None:
        """Replace a question's controls with ``note``, keeping the question's text."""
        current = list(known) if known is not None else (
            await self.api.message_blocks(channel, ts) or [])
        await self.api.update(channel, ts, blocks.amend(current, note),
                              fallback or blocks.escape(note))

    async def say(self, channel: str, text: str, *, user: str | None = None,
                  thread_ts: str | None = None) -> None:
        """Post one sentence of ours as a message."""
        await self.api.post(channel, Post(blocks.sections(text), blocks.escape(text)),
                            user=user, thread_ts=thread_ts)
