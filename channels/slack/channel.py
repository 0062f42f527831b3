"""The Slack channel: slack-bolt with our middleware and listeners, on the same aiohttp
server as everything else (``POST /slack/events``, :mod:`channels.slack.http`) or over
Socket Mode, and its lifecycle.

The pieces, one concept each: the doors' payload check (:mod:`~channels.slack.payloads`),
middleware (:mod:`~channels.slack.middleware`), listeners by kind
(:mod:`~channels.slack.listeners`), what they share (:mod:`~channels.slack.runtime`: the Web
API, background work and its one error policy, posting replies), rendering
(:mod:`~channels.slack.blocks`) and reading input back (:mod:`~channels.slack.inputs`), the
open-question memory (:mod:`~channels.slack.questions`), file intake
(:mod:`~channels.slack.files`), the job queue (:mod:`~channels.slack.tasks`), the inbox
of acknowledged messages (:mod:`~channels.slack.inbox`) and the notifier
(:mod:`~channels.slack.notifier`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot.messages import slack as msg
from bot.settings import SettingsError
from channels.slack import controls
from channels.slack.api import error_code
from channels.slack.listeners.answers import Answers
from channels.slack.listeners.decisions import Decisions
from channels.slack.listeners.messages import Messages
from channels.slack.middleware import CheckedSocketMode, EventRoutes, OwnWorkspace
from channels.slack.runtime import SlackRuntime
from channels.slack.settings import SlackSettings
from handlers.services import Services

log = logging.getLogger(__name__)
DRAIN_SECONDS = 30.0    # shutdown waits this long for work in hand


class SlackChannel(SlackRuntime):
    def __init__(self, svc: Services, settings: SlackSettings) -> None:
        super().__init__(svc, settings)
        self.socket: AsyncSocketModeHandler | None = None
        self.keeper: asyncio.Task[None] | None = None  # the inbox's leases (see startup)
        self.messages = Messages(self)
        self.decisions = Decisions(self)
        self.answers = Answers(self, self.decisions)
        # Bolt's middleware for AI-assistant threads and workflow custom functions is off:
        # we use neither, and it costs every request (about a tenth of the dispatch).
        self.bolt = AsyncApp(client=self.client, name="safehaven",
                             signing_secret=settings.signing_secret or "",
                             request_verification_enabled=settings.http_events,
                             process_before_response=True,
                             attaching_conversation_kwargs_enabled=False,
                             attaching_function_token_enabled=False)
        self._listen()

    def _listen(self) -> None:
        app, messages, answers = self.bolt, self.messages, self.answers
        app.use(OwnWorkspace(listed=lambda: self.settings.team_ids,
                             refuse=messages.refuse_foreign))
        # Direct messages and mentions: see EventRoutes.
        app.use(EventRoutes({"message": messages.on_message,
                             "app_mention": messages.on_mention},
                            arrived=self.queue.arrived))
        on: list[tuple[Any, Callable[..., Awaitable[None]]]] = [
            (app.action(re.compile(rf"^{re.escape(controls.ANSWER)}\.\d+$")), answers.on_button),
            (app.action(controls.SELECT), answers.on_select),
            (app.action(controls.OPEN_FORM), answers.on_open_form),
            (app.action(controls.USE_TIME), answers.on_use_time),
            (app.action(controls.USE_CHECKED), answers.on_use_checked),
            (app.action(re.compile(".*")), answers.acknowledge),  # the picker, stale buttons
            (app.view(controls.FORM_VIEW), answers.on_form_submitted),
            (app.view(controls.REJECT_VIEW), self.decisions.on_reject_submitted),
            (app.command("/safehaven"), messages.on_command),
            (app.event(re.compile(".*")), messages.ignore),  # other events: acknowledged only
        ]
        for decorator, listener in on:
            decorator(listener)

    # --- lifecycle -------------------------------------------------------------------------

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
        await self.messages.resume()
        # Not a tracked task: it renews leases through the shutdown's drain, then stops.
        self.keeper = asyncio.get_running_loop().create_task(
            self.inbox.keep(self.messages.act_on), name="slack inbox leases")
        if self.settings.app_token is None:
            return
        self.socket = CheckedSocketMode(self.bolt, self.settings.app_token,
                                        web_client=self.client)
        # Connecting (and reconnecting) runs in the background: a network blip at start-up
        # must not hold the rest of the server back.
        self.spawn(self.socket.connect_async(),  # type: ignore[no-untyped-call]
                   name="slack socket mode")

    async def stop_receiving(self, app: web.Application | None = None) -> None:
        if self.socket is not None:
            await self.socket.close_async()  # type: ignore[no-untyped-call]
            self.socket = None

    async def drain(self) -> None:
        """Shutdown, while the database is open: the work in hand is awaited (the inbox's
        leases renewed meanwhile, nothing more taken over), then what is left of it is
        released to the other replicas."""
        self.inbox.taking_over = False
        await self.tasks.drain(DRAIN_SECONDS, before_cancel=self._close_queue)
        if self.keeper is not None:
            self.keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.keeper
            self.keeper = None
        await self.inbox.close()

    def _close_queue(self) -> None:
        dropped = self.queue.close()
        if dropped:
            log.warning("dropping %d queued Slack job(s) at shutdown", dropped)

    async def close(self, app: web.Application | None = None) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None
            self.client.session = None
