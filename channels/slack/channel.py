"""The Slack channel: slack-bolt listeners that turn Slack payloads into neutral events,
take the turn, and post the neutral replies back as Block Kit.

Every listener acknowledges at once and hands the work to a tracked background task
(queued, see :class:`~channels.slack.tasks.JobQueue`), so Slack hears back well inside its
3 seconds whatever the work costs, and under a burst acknowledgements get the CPU first.
Direct messages and mentions are routed by a middleware rather than listeners (see
:class:`EventRoutes`). We run bolt with ``process_before_response=True`` although no FaaS
is involved: our listeners only acknowledge and spawn, so the HTTP answer is still
immediate, but the spawned task is ours (tracked and awaited at shutdown) instead of an
untracked ``ensure_future`` that bolt then polls every 10 ms for the acknowledgement. The
one exception is a modal submission: Slack shows per-field errors only in the
acknowledgement, so the turn gets up to :data:`ACK_BUDGET` seconds before we acknowledge
with or without errors.

Idempotency: an event is acted on once per ``event_id`` (a row in ``processed_events``),
so Slack's retries (``X-Slack-Retry-Num``) and a second replica change nothing. Clicks and
form submissions carry their question id; the core refuses a second answer to an answered
question, and an approval is decided once by a conditional update.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.events import Answer, Command, Event, FilesReceived, IncomingFile
from bot.messages import conversation as cmsg
from bot.messages import slack as msg
from bot.replies import Form, Reply, Text, approval_reference
from bot.settings import SettingsError
from channels.egress import checked_connector
from channels.slack import blocks, records
from channels.slack.api import SlackApi, error_code, retry_handlers
from channels.slack.blocks import Block, Post, render
from channels.slack.files import Refused, download, egress_policy
from channels.slack.inbox import Inbox, Ticket
from channels.slack.settings import SlackSettings
from channels.slack.tasks import JobQueue, KeyedLocks, TaskTracker
from handlers import approvals
from handlers.conversation import Turn, current_state, parse_text, run_command, take_turn
from handlers.services import Services
from store import repositories as repo
from store.models import Approval

log = logging.getLogger(__name__)
ACK_BUDGET = 2.0        # seconds a modal submission may take before we acknowledge anyway
# Queued background jobs running at once, at most (see SlackChannel.background; fewer while
# acknowledgements are short of CPU, see JobQueue). Jobs mostly wait on Slack's Web API
# (100 ms or more a call), so 32 keep up with far more than an organisation's traffic,
# while a burst cannot open more database sessions than the pool can serve.
BACKGROUND_SLOTS = 32
DRAIN_SECONDS = 30.0    # shutdown waits this long for work in hand
ASKED_KEPT = 10_000     # people whose open question message is remembered (see asked)
PRUNE_EVERY = 3600.0
# Message subtypes that are a person writing: plain text, or files with an optional comment.
PERSON_SUBTYPES = (None, "file_share", "thread_broadcast")
Ack = Callable[..., Awaitable[Any]]
T = TypeVar("T")


def dig(data: Any, *path: str) -> Any:
    """``data[path0][path1]...`` or None, whatever shape a payload turns out to have."""
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def text_of(value: Any) -> str:
    return value if isinstance(value, str) else ""


class EventRoutes(AsyncMiddleware):
    """The events that arrive at volume (every direct message), handed to their handler by
    a global middleware instead of a listener.

    A listener costs every request bolt's listener matching and, twice (once for the
    matcher, once for the listener), its keyword-argument injection, which builds every
    argument any listener could ask for: together about 40 % of bolt's work per request.
    Registered with ``AsyncApp.use``, this runs after all of bolt's own middleware (the
    signature and timestamp check, authorisation, ignoring the bot's own events, URL
    verification), so it sees exactly what a listener would; it then acknowledges the way
    bolt's own middleware does (``context.ack()``, without calling ``next``). Everything else
    (other events, interactivity, the slash command) goes on to the listeners.
    """

    def __init__(self, routes: Mapping[str, Callable[[dict[str, Any]], Awaitable[None]]],
                 *, arrived: Callable[[], None]) -> None:
        self.routes = routes
        self.arrived = arrived

    async def async_process(self, *, req: AsyncBoltRequest, resp: BoltResponse,
                            next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse:
        self.arrived()
        body = req.body
        if body.get("type") == "event_callback":
            kind = dig(body, "event", "type")
            route = self.routes.get(kind) if isinstance(kind, str) else None
            if route is not None:
                await route(body)
                response: BoltResponse = await req.context.ack()
                return response
        return await next()


def person_team(body: Mapping[str, Any]) -> str:
    """The workspace (or Enterprise Grid organisation) of the person behind a request:
    the person's own team where Slack gives it (``event.user_team`` in a Slack Connect
    conversation, ``user.team_id`` in interactivity), else the request's team."""
    event = body.get("event")
    if isinstance(event, Mapping):
        own = event.get("user_team") or event.get("team")
        if isinstance(own, str) and own:
            return own
    own = dig(body, "user", "team_id") or body.get("user_team")
    if isinstance(own, str) and own:
        return own
    team = body.get("team")
    if isinstance(team, Mapping):
        team = team.get("id")
    return text_of(team or body.get("team_id"))


class OwnWorkspace(AsyncMiddleware):
    """Only people of the bot's own Slack workspace (or its Enterprise Grid organisation,
    or a workspace listed in ``SLACK_TEAM_IDS``) are served. The bot's workspace is the
    one its token belongs to (bolt's ``auth.test``, cached). A request from anyone else,
    say a Slack Connect user in a shared conversation, is acknowledged and refused: their
    files are never downloaded, and a direct message or command is answered with why."""

    def __init__(self, channel: SlackChannel) -> None:
        self.channel = channel

    async def async_process(self, *, req: AsyncBoltRequest, resp: BoltResponse,
                            next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse:
        authorised = req.context.authorize_result
        own = {getattr(authorised, "team_id", None), getattr(authorised, "enterprise_id", None),
               *self.channel.settings.team_ids} - {None, ""}
        team = person_team(req.body)
        if team in own:
            return await next()
        log.warning("refused a Slack request from another workspace (%s)", team or "none")
        body = req.body
        if team and body.get("command"):  # (every real request names its team)
            response: BoltResponse = await req.context.ack(msg.OTHER_WORKSPACE)
            return response
        if team and body.get("type") == "event_callback":
            self.channel.refuse_foreign(body)
        response = await req.context.ack()
        return response


class CheckedSocketMode(AsyncSocketModeHandler):
    """Socket Mode with the same door as ``POST /slack/events``: a payload that is not
    :func:`~channels.slack.http.well_formed` is acknowledged (or Slack sends it again) and
    dropped, never handed to bolt or the channel."""

    async def handle(self, client: SocketModeClient,  # type: ignore[override]
                     req: SocketModeRequest) -> None:
        from channels.slack.http import well_formed  # (http imports this module)

        if req.type in ("events_api", "interactive", "slash_commands") \
                and not well_formed(req.payload):
            log.warning("refused a malformed Socket Mode %s payload", req.type)
            await client.send_socket_mode_response(
                SocketModeResponse(envelope_id=req.envelope_id))
            return
        await super().handle(client, req)


class SlackChannel:
    def __init__(self, svc: Services, settings: SlackSettings) -> None:
        self.svc = svc
        self.settings = settings
        self.tasks = TaskTracker()
        self.locks = KeyedLocks()
        self.queue = JobQueue(self.tasks, self.locks, most=BACKGROUND_SLOTS,
                              guard=self._guarded)
        self.client = AsyncWebClient(token=settings.bot_token, base_url=settings.api_url,
                                     retry_handlers=retry_handlers())
        self.api = SlackApi(self.client)
        self.session: aiohttp.ClientSession | None = None
        self.socket: AsyncSocketModeHandler | None = None
        self.inbox = Inbox(svc.settings.var_dir / "slack-inbox")
        # Per person, the last question message posted with buttons or a picker, so that a
        # question answered by typing is updated in place as a click would (see
        # :meth:`_typed_over`). In memory: after a restart, or on another replica, its
        # buttons stay, and a late click on them is answered as a stale click is.
        self.asked: collections.OrderedDict[str, tuple[str, str, str]] = \
            collections.OrderedDict()
        self._pruned_at = 0.0
        self.claims = records.EventClaims(
            svc.db, clock=lambda: self.svc.clock(),
            spawn=lambda coro: self.spawn(coro, name="slack event claims"))
        # Bolt's middleware for AI-assistant threads and workflow custom functions is off:
        # we use neither, and it costs every request (about a tenth of the dispatch).
        self.bolt = AsyncApp(client=self.client, name="safehaven",
                             signing_secret=settings.signing_secret or "",
                             request_verification_enabled=settings.http_events,
                             process_before_response=True,
                             attaching_conversation_kwargs_enabled=False,
                             attaching_function_token_enabled=False)
        self._listen()

    # --- wiring ----------------------------------------------------------------------------

    def _listen(self) -> None:
        app = self.bolt
        app.use(OwnWorkspace(self))
        # Direct messages and mentions: see EventRoutes.
        app.use(EventRoutes({"message": self.on_message, "app_mention": self.on_mention},
                            arrived=self.queue.arrived))
        on: list[tuple[Any, Callable[..., Awaitable[None]]]] = [
            (app.action(re.compile(rf"^{re.escape(blocks.ANSWER)}\.\d+$")), self.on_button),
            (app.action(blocks.SELECT), self.on_select),
            (app.action(blocks.OPEN_FORM), self.on_open_form),
            (app.action(blocks.USE_TIME), self.on_use_time),
            (app.action(re.compile(".*")), self.acknowledge),  # the picker, stale buttons
            (app.view(blocks.FORM_VIEW), self.on_form_submitted),
            (app.view(blocks.REJECT_VIEW), self.on_reject_submitted),
            (app.command("/safehaven"), self.on_command),
            (app.event(re.compile(".*")), self.ignore),  # other events: acknowledged only
        ]
        for decorator, listener in on:
            decorator(listener)

    async def startup(self) -> None:
        # A wrong bot token would only show as every event failing: check it now. Slack
        # being unreachable at start-up is not fatal (bolt checks again on the first event).
        try:
            identity = await self.client.auth_test()
            log.info("Slack: signed in as %s in %s", identity.get("user"), identity.get("team"))
        except SlackApiError as exc:
            raise SettingsError(msg.BOT_TOKEN_REFUSED.format(error=error_code(exc))) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("Slack not reachable at start-up (%s); carrying on",
                        type(exc).__name__)
        if self.settings.app_token is not None:
            # A refused token would make the SDK retry for ever without a word: check it
            # once, and stop start-up with the fix if Slack says no.
            try:
                await self.client.apps_connections_open(app_token=self.settings.app_token)
            except SlackApiError as exc:
                raise SettingsError(msg.SOCKET_TOKEN_REFUSED.format(
                    error=error_code(exc))) from exc
        self.ensure_session()
        await self.resume()
        if self.settings.app_token is None:
            return
        self.socket = CheckedSocketMode(self.bolt, self.settings.app_token,
                                        web_client=self.client)
        # Connecting (and reconnecting) runs in the background: a network blip at start-up
        # must not hold the rest of the server back.
        self.spawn(self.socket.connect_async(),  # type: ignore[no-untyped-call]
                   name="slack socket mode")

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

    async def stop_receiving(self, app: web.Application | None = None) -> None:
        if self.socket is not None:
            await self.socket.close_async()  # type: ignore[no-untyped-call]
            self.socket = None

    async def drain(self) -> None:
        await self.tasks.drain(DRAIN_SECONDS, before_cancel=self._close_queue)

    def _close_queue(self) -> None:
        dropped = self.queue.close()
        if dropped:
            log.warning("dropping %d queued Slack job(s) at shutdown", dropped)

    async def close(self, app: web.Application | None = None) -> None:
        self.inbox.close()
        if self.session is not None:
            await self.session.close()
            self.session = None
            self.client.session = None

    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str) -> asyncio.Task[T]:
        """Tracked work that must not wait for a background slot (see :meth:`background`)."""
        return self.tasks.spawn(coro, name=name)

    # --- small helpers ---------------------------------------------------------------------

    async def _claim(self, key: str) -> bool:
        if time.monotonic() - self._pruned_at > PRUNE_EVERY:
            self._pruned_at = time.monotonic()
            await records.prune(self.svc.db, now=self.svc.clock())
        return await self.claims.claim(key)

    async def send(self, channel: str, user: str, replies: Sequence[Reply], *,
                   thread_ts: str | None = None) -> list[tuple[blocks.Outgoing, str | None]]:
        if not replies:
            return []
        items = render(replies, self.svc.policy.timezone)
        posted = await self.api.deliver(channel, items, user=user, thread_ts=thread_ts)
        for item, ts in posted:
            if ts and isinstance(item, Post) and item.question and any(
                    str(b.get("block_id", "")).startswith(blocks.QUESTION_BLOCK)
                    for b in item.blocks):
                self.asked[user] = (channel, ts, item.question)  # ids only: ~200 B a person
                self.asked.move_to_end(user)
                if len(self.asked) > ASKED_KEPT:
                    self.asked.popitem(last=False)
        return posted

    async def _typed_over(self, user: str, before: tuple[str, str, str] | None,
                          typed: str, turn: Turn) -> None:
        """A message typed while a question with buttons was open: if it answered the
        question (or was refused, and the question asked again below), the question's
        message shows so and loses its buttons, as after a click. A message that leaves
        the question open (``help``) leaves it alone."""
        if before is None:
            return
        channel, ts, question = before
        if not turn.error and (await current_state(
                self.svc, conversation_id=f"slack:{user}")).step == question:
            return
        if self.asked.get(user) is before:
            del self.asked[user]
        current = await self.api.message_blocks(channel, ts)
        if not current:  # could not be read back: better its buttons than a lost question
            return
        label = blocks.clip(" ".join(typed.split()), 80)
        note = msg.NOT_ACCEPTED if turn.error else msg.ANSWERED
        await self.amend(channel, ts, note.format(answer=label), current)

    async def _take(self, user_id: str, event: Event) -> Turn:
        """A turn for someone whose lock the caller holds (see :meth:`background`)."""
        return await take_turn(self.svc, conversation_id=user_id, user_id=user_id,
                               event=event)

    async def _turn(self, user_id: str, event: Event) -> Turn:
        async with self.locks.hold(user_id):
            return await self._take(user_id, event)

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

    async def amend(self, channel: str, ts: str, note: str,
                     known: Sequence[Mapping[str, Any]] | None = None,
                     fallback: str = "") -> None:
        """Replace a question's controls with ``note``, keeping the question's text."""
        current = list(known) if known is not None else (
            await self.api.message_blocks(channel, ts) or [])
        await self.api.update(channel, ts, blocks.amend(current, note),
                              fallback or blocks.escape(note))

    async def _guarded(self, work: Awaitable[None], *, channel: str | None, user: str) -> None:
        """Run background work; on an unexpected failure tell the person, never crash."""
        try:
            await work
        except Exception as exc:
            if isinstance(exc, SlackApiError):
                log.error("Slack API error %s while handling a request", error_code(exc))
            else:
                log.exception("handling a Slack request failed")
            try:
                target = channel or await self.api.open_dm(user)
                await self.api.post(target, Post(blocks.sections(msg.SOMETHING_WENT_WRONG),
                                                 blocks.escape(msg.SOMETHING_WENT_WRONG)),
                                    user=user)
            except Exception as again:  # Slack itself unreachable: the log is all we have
                log.error("could not tell the user either: %s", type(again).__name__)

    # --- events ----------------------------------------------------------------------------

    async def ignore(self) -> None:
        """Events we subscribe to but do not act on."""

    async def acknowledge(self, ack: Ack) -> None:
        await ack()

    def refuse_foreign(self, body: Mapping[str, Any]) -> None:
        """A direct message from someone outside the workspace: told why, once."""
        event = body.get("event")
        if not isinstance(event, Mapping) or event.get("channel_type") != "im" \
                or event.get("bot_id") or event.get("type") != "message":
            return
        user, channel = text_of(event.get("user")), text_of(event.get("channel"))
        if not user or not channel:
            return
        key = "slack:event:" + text_of(body.get("event_id") or f"{channel}:{event.get('ts')}")

        async def refuse() -> None:
            if await self._claim(key):
                await self.api.post(channel, Post(blocks.sections(msg.OTHER_WORKSPACE),
                                                  blocks.escape(msg.OTHER_WORKSPACE)))

        self.background(refuse(), name=f"slack refusal {key}", user=user, channel=channel)

    async def resume(self) -> int:
        """Start-up: act on the direct messages a process that is gone had acknowledged
        and not finished (see :mod:`channels.slack.inbox`). A message whose work had begun
        is not acted on twice: its sender is told it may not have been (see
        :meth:`_message`). Returns how many messages were taken over."""
        unfinished = self.inbox.take_over()
        if unfinished:
            log.warning("taking over %d Slack message(s) left unfinished by a process that "
                        "stopped", len(unfinished))
        for item in unfinished:
            await self.on_message(item.body, resumed=True)
        return len(unfinished)

    async def on_message(self, body: dict[str, Any], *, resumed: bool = False) -> None:
        event = body.get("event")
        if not isinstance(event, Mapping) or event.get("channel_type") != "im":
            return  # the bot only reads direct messages
        if event.get("bot_id") or event.get("subtype") not in PERSON_SUBTYPES:
            return  # our own messages, edits, deletions, joins
        user, channel = text_of(event.get("user")), text_of(event.get("channel"))
        if not user or not channel:
            return
        key = "slack:event:" + text_of(body.get("event_id") or event.get("client_msg_id")
                                       or f"{channel}:{event.get('ts')}")
        ticket = self.inbox.accept(body)  # before the acknowledgement: see the inbox
        self.background(self._settled(self._message(key, event, user, channel, resumed),
                                      ticket, user=user, channel=channel),
                        name=f"slack message {key}", user=user, channel=channel, serial=True)

    async def _settled(self, work: Coroutine[Any, Any, None], ticket: Ticket | None, *,
                       user: str, channel: str) -> None:
        """Run a message's work, then strike it from the inbox: done whether it succeeded
        or the person was told it failed; left there if the process stops first."""
        await self._guarded(work, channel=channel, user=user)
        self.inbox.done(ticket)

    async def _message(self, key: str, event: Mapping[str, Any], user: str,
                       channel: str, resumed: bool = False) -> None:
        if not await self._claim(key):
            if resumed:  # begun by the process that stopped: it may or may not have acted
                await self._tell_interrupted(event, user, channel)
            else:
                log.info("ignoring a repeated Slack event %s", key)
            return
        user_id = f"slack:{user}"
        ts, thread = text_of(event.get("ts")), text_of(event.get("thread_ts"))
        reply_in = thread if thread and thread != ts else None
        files = [f for f in event.get("files") or [] if isinstance(f, Mapping)]
        if not files:
            text = blocks.from_slack(text_of(event.get("text")))
            if not text.strip():
                return
            before = self.asked.get(user)
            turn = await self._take(user_id, parse_text(text))
            await self._typed_over(user, before, text, turn)
            await self.send(channel, user, turn.replies, thread_ts=reply_in)
            return
        session = self.ensure_session()
        incoming: list[IncomingFile] = []
        refused: list[str] = []
        for shared in files:
            info = await self._file_details(shared)
            result = await download(session, info, token=self.settings.bot_token,
                                    egress=egress_policy(self.svc.settings, self.settings),
                                    settings=self.svc.settings,
                                    limit=self.svc.policy.max_file_bytes)
            if isinstance(result, Refused):
                refused.append(result.text)
            else:
                incoming.append(result)
        replies: list[Reply] = [Text("\n".join(refused))] if refused else []
        if incoming:
            turn = await self._take(user_id, FilesReceived(tuple(incoming)))
            replies += turn.replies
        posted = await self.send(channel, user, replies, thread_ts=reply_in)
        if incoming:
            await self._remember_transfer(user_id, channel, posted)

    async def _tell_interrupted(self, event: Mapping[str, Any], user: str,
                                channel: str) -> None:
        try:
            sent = datetime.fromtimestamp(float(text_of(event.get("ts"))),
                                          self.svc.policy.timezone).strftime("%H:%M")
        except (ValueError, OverflowError, OSError):
            sent = "?"
        text = msg.INTERRUPTED.format(time=sent)
        thread = text_of(event.get("thread_ts"))
        await self.api.post(channel, Post(blocks.sections(text), blocks.escape(text)),
                            user=user, thread_ts=thread or None)

    async def _file_details(self, shared: Mapping[str, Any]) -> Mapping[str, Any]:
        """Slack sends only the id of some files (``file_access: check_file_info``, e.g.
        from a Slack Connect DM); their size and download URL come from ``files.info``."""
        if shared.get("url_private_download") or shared.get("url_private") \
                or not isinstance(shared.get("id"), str):
            return shared
        try:
            response = await self.client.files_info(file=shared["id"])
        except SlackApiError as exc:
            log.warning("files.info refused: %s", error_code(exc))
            return shared
        details = response.get("file")
        return {**shared, **details} if isinstance(details, Mapping) else shared

    async def _remember_transfer(self, user_id: str, channel: str,
                                 posted: Sequence[tuple[blocks.Outgoing, str | None]]) -> None:
        """The first message of a transfer is where its receipts will be threaded."""
        state = await current_state(self.svc, conversation_id=user_id)
        first = next((ts for _item, ts in posted if ts), None)
        if state.reference and first:
            await records.remember(self.svc.db, reference=state.reference, user_id=user_id,
                                   kind="transfer", channel=channel, ts=first,
                                   now=self.svc.clock())

    async def on_mention(self, body: dict[str, Any]) -> None:
        event = body.get("event")
        user = text_of(dig(event, "user"))
        channel = text_of(dig(event, "channel"))
        if not user or not channel:
            return
        key = "slack:event:" + text_of(body.get("event_id") or f"{channel}:{dig(event, 'ts')}")
        self.background(self._dms_only(key, channel, user), name=f"slack mention {key}",
                        user=user, channel=None)

    async def _dms_only(self, key: str, channel: str, user: str) -> None:
        if not await self._claim(key):
            return
        try:
            await self.api.ephemeral(channel, user, blocks.escape(msg.DMS_ONLY))
        except SlackApiError as exc:
            log.info("could not answer a mention in place (%s); answering by DM",
                     error_code(exc))
            dm = await self.api.open_dm(user)
            await self.api.post(dm, Post(blocks.sections(msg.DMS_ONLY),
                                         blocks.escape(msg.DMS_ONLY)), user=user)

    # --- slash command ---------------------------------------------------------------------

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
        self.background(self._command(user, text), name="slack command", user=user,
                        channel=None, serial=True)

    async def _command(self, user: str, text: str) -> None:
        event = parse_text(blocks.from_slack(text))
        if not isinstance(event, Command):
            event = Command("help")
        user_id = f"slack:{user}"
        channel = await self.api.open_dm(user)
        turn = await self._take(user_id, event)
        await self.send(channel, user, turn.replies)

    # --- answers by click ------------------------------------------------------------------

    def _click(self, body: Mapping[str, Any]) -> tuple[str, str, str, list[Block], str]:
        """(user, channel, message ts, message blocks, message text) of a click."""
        message = dig(body, "message") or {}
        raw_blocks = message.get("blocks") if isinstance(message, Mapping) else None
        return (text_of(dig(body, "user", "id")),
                text_of(dig(body, "channel", "id") or dig(body, "container", "channel_id")),
                text_of(dig(body, "container", "message_ts") or dig(message, "ts")),
                [b for b in raw_blocks if isinstance(b, dict)]
                if isinstance(raw_blocks, list) else [],
                text_of(dig(message, "text")))

    async def on_button(self, ack: Ack, body: dict[str, Any]) -> None:
        await ack()
        action = (body.get("actions") or [{}])[0]
        decoded = blocks.decode_answer(dig(action, "value"))
        if decoded is None:
            return
        question, value = decoded
        label = text_of(dig(action, "text", "text")) or value
        self._answer_later(body, question, value, label)

    async def on_select(self, ack: Ack, body: dict[str, Any]) -> None:
        await ack()
        action = (body.get("actions") or [{}])[0]
        block_id = text_of(dig(action, "block_id"))
        value = text_of(dig(action, "selected_option", "value"))
        if not block_id.startswith(blocks.QUESTION_BLOCK) or not value:
            return
        label = text_of(dig(action, "selected_option", "text", "text")) or value
        self._answer_later(body, block_id[len(blocks.QUESTION_BLOCK):], value, label)

    async def on_use_time(self, ack: Ack, body: dict[str, Any]) -> None:
        await ack()
        action = (body.get("actions") or [{}])[0]
        decoded = blocks.decode_answer(dig(action, "value"))
        if decoded is None:
            return
        question = decoded[0]
        picked = blocks.picked_time(dig(body, "state", "values") or {}, question,
                                    self.svc.policy.timezone)
        user, channel, *_ = self._click(body)
        if picked is None:
            if user and channel:
                self.background(self.api.ephemeral(
                    channel, user, blocks.escape(msg.PICK_A_TIME_FIRST)),
                    name="slack pick a time", user=user, channel=channel)
            return
        self._answer_later(body, question, picked, picked)

    def _answer_later(self, body: Mapping[str, Any], question: str, value: str,
                      label: str) -> None:
        user, channel, ts, known, fallback = self._click(body)
        if not user or not channel:
            return
        reference = approval_reference(question)
        if reference is not None:  # a click on an ApprovalRequest
            # Reject opens a modal, which Slack allows only within 3 s of the click: it
            # does not wait for a slot. Approve packages the files: it does.
            approve = value == "approve"
            self.background(self._approval_click(user, channel, ts, known, body,
                                                 reference=reference, approve=approve),
                            name="slack approval click", user=user, channel=channel,
                            queued=approve)
        else:
            self.background(self._answer(user, channel, ts, known, fallback,
                                         Answer(value, question), label),
                            name="slack answer click", user=user, channel=channel,
                            serial=True)

    async def _answer(self, user: str, channel: str, ts: str, known: list[Block],
                      fallback: str, answer: Answer, label: str) -> None:
        turn = await self._take(f"slack:{user}", answer)
        await self._after_answer(user, channel, ts, known, fallback, turn, label)

    async def _after_answer(self, user: str, channel: str, ts: str,
                            known: list[Block] | None, fallback: str, turn: Turn,
                            label: str) -> None:
        """Leave the answer on the question's message, then post what comes next."""
        if turn.error == cmsg.STALE_ANSWER:
            # A double click: the first click has already left its answer on the message
            # (the payload we hold predates it), so only a message still showing its
            # buttons (answered by typing) gets the note.
            current = await self.api.message_blocks(channel, ts) if ts else None
            if ts and (current is None or any(b.get("type") == "actions" for b in current)):
                await self.amend(channel, ts, msg.STALE_IN_PLACE, current or known, fallback)
            return
        if ts:
            note = msg.NOT_ACCEPTED if turn.error else msg.ANSWERED
            await self.amend(channel, ts, note.format(answer=label), known, fallback)
            if self.asked.get(user, ("", ""))[1] == ts:
                del self.asked[user]
        await self.send(channel, user, turn.replies)

    # --- forms -----------------------------------------------------------------------------

    async def on_open_form(self, ack: Ack, body: dict[str, Any]) -> None:
        await ack()
        action = (body.get("actions") or [{}])[0]
        decoded = blocks.decode_answer(dig(action, "value"))
        trigger = text_of(body.get("trigger_id"))
        user, channel, ts, known, fallback = self._click(body)
        if decoded is None or not trigger or not user:
            return
        # A modal may be opened only within 3 s of the click: this does not wait for a slot.
        self.background(self._open_form(user, channel, ts, known, fallback, decoded[0],
                                        trigger),
                        name="slack open form", user=user, channel=channel, queued=False)

    async def _open_form(self, user: str, channel: str, ts: str, known: list[Block],
                         fallback: str, question: str, trigger: str) -> None:
        user_id = f"slack:{user}"
        # `status` re-asks the current question: the form with its saved values and errors.
        current = await run_command(self.svc, conversation_id=user_id, user_id=user_id,
                                    command=Command("status"))
        form = next((r for r in current if isinstance(r, Form) and r.question == question),
                    None)
        if form is None:
            if ts:
                await self.amend(channel, ts, msg.STALE_IN_PLACE, known, fallback)
            return
        metadata = json.dumps({"q": question, "c": channel, "ts": ts})
        await self.api.open_view(trigger, blocks.form_modal(form, metadata=metadata))

    def _metadata(self, view: Any) -> dict[str, str]:
        try:
            data = json.loads(text_of(dig(view, "private_metadata")) or "{}")
        except ValueError:
            return {}
        return {k: v for k, v in data.items() if isinstance(v, str)} \
            if isinstance(data, dict) else {}

    async def on_form_submitted(self, ack: Ack, body: dict[str, Any]) -> None:
        view = body.get("view")
        meta = self._metadata(view)
        user = text_of(dig(body, "user", "id"))
        question, channel, ts = meta.get("q"), meta.get("c", ""), meta.get("ts", "")
        if not user or not question or not channel:
            await ack()
            return
        values = blocks.form_values(dig(view, "state", "values") or {})
        summary = blocks.submitted_summary(view if isinstance(view, Mapping) else {})
        turn_task = self.spawn(self._turn(f"slack:{user}", Answer(values, question)),
                               name="slack form turn")
        done, _ = await asyncio.wait({turn_task}, timeout=ACK_BUDGET)
        if turn_task in done and turn_task.exception() is None:
            turn: Turn = turn_task.result()
            form = next((r for r in turn.replies
                         if isinstance(r, Form) and r.question == question), None)
            if turn.error and turn.error != cmsg.STALE_ANSWER and form is not None:
                await ack(response_action="errors", errors=blocks.form_errors(form))
                return
        await ack()
        self.background(self._after_form(turn_task, user, channel, ts, summary),
                        name="slack form replies", user=user, channel=channel, queued=False)

    async def _after_form(self, turn_task: asyncio.Task[Turn], user: str, channel: str,
                          ts: str, summary: str) -> None:
        turn = await turn_task
        await self._after_answer(user, channel, ts, None, "", turn, summary)

    # --- approvals -------------------------------------------------------------------------

    async def _approval_click(self, user: str, channel: str, ts: str, known: list[Block],
                              body: Mapping[str, Any], *, reference: str,
                              approve: bool) -> None:
        user_id = f"slack:{user}"
        if approve:
            refusal = await self._decide(user_id, reference, approve=True, reason="",
                                         clicked=(channel, ts, known))
        else:
            async with self.svc.db.read() as session:
                approval = await repo.get_approval(session, reference=reference)
            may_decide = (approval is not None and approval.status == "pending"
                          and self.svc.policy.is_one_of(user_id, approval.approvers))
            trigger = text_of(body.get("trigger_id"))
            if may_decide and trigger:
                metadata = json.dumps({"ref": reference, "c": channel, "ts": ts})
                await self.api.open_view(trigger, blocks.reject_modal(reference,
                                                                      metadata=metadata))
                return
            # Not theirs to decide: the core says why (and records the refused attempt).
            refusal = await self._decide(user_id, reference, approve=False, reason="",
                                         clicked=(channel, ts, known))
        if refusal is not None:
            await self.api.ephemeral(channel, user, blocks.escape(refusal))

    async def on_reject_submitted(self, ack: Ack, body: dict[str, Any]) -> None:
        view = body.get("view")
        meta = self._metadata(view)
        user = text_of(dig(body, "user", "id"))
        reference = meta.get("ref")
        if not user or not reference:
            await ack()
            return
        reason = blocks.form_values(dig(view, "state", "values") or {}).get("reason", "")
        clicked = (meta.get("c", ""), meta.get("ts", ""), None)
        task = self.spawn(self._guarded_decide(f"slack:{user}", reference, reason, clicked),
                          name="slack reject")
        done, _ = await asyncio.wait({task}, timeout=ACK_BUDGET)
        if task in done:
            refusal = task.result()
            if refusal is not None:
                await ack(response_action="errors",
                          errors={blocks.FIELD_BLOCK + "reason": refusal})
                return
            await ack()
            return
        await ack()  # slow (the sender is being told): any refusal comes as a message
        self.background(self._late_refusal(task, user, clicked[0]), name="slack late refusal",
                        user=user, channel=None, queued=False)

    async def _late_refusal(self, task: asyncio.Task[str | None], user: str,
                            channel: str) -> None:
        refusal = await task
        if refusal is not None:
            await self.api.post(channel or await self.api.open_dm(user),
                                Post(blocks.sections(refusal), blocks.escape(refusal)),
                                user=user)

    async def _guarded_decide(self, user_id: str, reference: str, reason: str,
                              clicked: tuple[str, str, list[Block] | None]) -> str | None:
        try:
            return await self._decide(user_id, reference, approve=False, reason=reason,
                                      clicked=clicked)
        except Exception:
            log.exception("recording a rejection from Slack failed")
            return msg.SOMETHING_WENT_WRONG

    async def _decide(self, user_id: str, reference: str, *, approve: bool, reason: str,
                      clicked: tuple[str, str, list[Block] | None]) -> str | None:
        """Record the decision, then show the request's state on every approver's request
        message (also when it was decided by someone else, cancelled or expired, so stale
        buttons go). Returns the refusal to show the person, or None."""
        replies = await approvals.decide(self.svc, approver_id=user_id, reference=reference,
                                         approve=approve, reason=reason)
        async with self.svc.db.read() as session:
            approval = await repo.get_approval(session, reference=reference)
        if approval is not None and approval.status != "pending":
            await self.refresh_requests(reference, self._decision_note(approval),
                                        clicked=clicked)
            if approval.decided_by and self.svc.policy.same_person(approval.decided_by,
                                                                    user_id):
                return None  # theirs (a double click finds it already recorded)
        first = next((r for r in replies if isinstance(r, Text)), None)
        return first.text if first is not None else msg.SOMETHING_WENT_WRONG

    def _decision_note(self, approval: Approval) -> str:
        if approval.status not in ("approved", "rejected") or approval.decided_at is None:
            return msg.DECIDED_OTHER.format(reference=approval.reference,
                                            status=approval.status)
        decided_at: datetime = approval.decided_at.astimezone(self.svc.policy.timezone)
        rejected = approval.status == "rejected"
        template = msg.DECIDED_WITH_REASON if rejected and approval.reason else msg.DECIDED
        return template.format(
            mark="✗" if rejected else "✓",
            decision=msg.DECIDED_REJECTED if rejected else msg.DECIDED_APPROVED,
            who=approval.decided_by, when=f"{decided_at:%a %d %b %Y %H:%M}",
            tz=self.svc.policy.timezone.key, reason=approval.reason)

    async def refresh_requests(self, reference: str, note: str, *,
                               clicked: tuple[str, str, list[Block] | None] | None = None
                               ) -> None:
        """Put ``note`` in place of the buttons on every approver's request for
        ``reference`` (and on the message clicked, if it was never recorded)."""
        targets = [(m.channel, m.ts) for _u, m in
                   await records.approval_messages(self.svc.db, reference=reference)]
        if clicked is not None and clicked[0] and clicked[1] and \
                (clicked[0], clicked[1]) not in targets:
            targets.append((clicked[0], clicked[1]))
        for channel, ts in targets:
            known = clicked[2] if clicked is not None and (channel, ts) == clicked[:2] else None
            try:
                await self.amend(channel, ts, note, known)
            except SlackApiError as exc:
                log.warning("could not update an approval request: %s", error_code(exc))

